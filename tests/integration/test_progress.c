/*
 * test_progress.c - the progress store against real Redis servers: values
 * and TTL in the hash, memory-only mode, a Redis that dies mid-import and
 * comes back (updates stay fast, gets keep working, the store switches back
 * and rewrites the latest values), a Redis absent at start, and concurrent
 * updates from several threads.
 *
 * Outage tests start their own throwaway redis-server (random free port,
 * a password, no persistence) and kill and restart it; the shared server
 * of REDIS_URL is only written to under a key unique to this process and
 * never stopped. Fails when redis-server is not installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

#define PASSWORD "s3cret-pw"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- a throwaway redis-server ----------------------------------------- */

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        fail_msg("cannot find a free port");
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* A test connection to 127.0.0.1:port, authenticated when pw != NULL;
 * NULL when the server does not answer PING. */
static redisContext *test_conn(int port, const char *pw)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply *r;

    if (c == NULL || c->err) {
        redisFree(c);
        return NULL;
    }
    if (pw != NULL) {
        r = redisCommand(c, "AUTH %s", pw);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (r == NULL) {
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

static pid_t redis_start(int port)
{
    char portbuf[16];
    pid_t pid;
    double t0 = now_s();

    snprintf(portbuf, sizeof(portbuf), "%d", port);
    pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        /* Dies with the test even when a failed assertion skips
         * redis_stop(). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("redis-server", "redis-server", "--port", portbuf, "--bind",
               "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass",
               PASSWORD, (char *)NULL);
        _exit(127);
    }
    assert_true(pid > 0);
    while (now_s() - t0 < 10.0) {
        redisContext *c = test_conn(port, PASSWORD);
        if (c != NULL) {
            redisFree(c);
            return pid;
        }
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("redis-server on port %d did not start", port);
    return -1;
}

static void redis_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* HGET field of the job's hash on c, as a long long; -999 when absent. */
static long long hget_ll(redisContext *c, long long job, const char *field)
{
    redisReply *r =
        redisCommand(c, "HGET " IG_PROGRESS_KEY_PREFIX "%lld %s", job, field);
    long long v = -999;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

static ig_progress_info running(long long total, long long processed)
{
    ig_progress_info in;

    memset(&in, 0, sizeof(in));
    snprintf(in.state, sizeof(in.state), "running");
    in.total = total;
    in.processed = processed;
    in.inserted = processed - processed / 10;
    in.failed = processed / 10;
    in.started_at = wall_s() - 10.0;
    return in;
}

static int wait_backend(ig_progress *p, ig_progress_backend want, double s)
{
    double t0 = now_s();
    while (now_s() - t0 < s) {
        if (ig_progress_active(p) == want)
            return 1;
        usleep(20 * 1000);
    }
    return ig_progress_active(p) == want;
}

/* ---- tests ------------------------------------------------------------- */

static void test_progress_values_and_ttl_in_redis(void **state)
{
    const char *url = getenv("REDIS_URL");
    ig_progress_opts o;
    ig_progress_info in, out;
    ig_progress *p;
    ig_progress_url u;
    redisContext *c;
    redisReply *r;
    long long job = 900000000LL + getpid(); /* unique on the shared server */
    ig_err err;
    (void)state;

    if (url == NULL || url[0] == '\0')
        skip();
    memset(&o, 0, sizeof(o));
    o.redis_url = url;
    o.expiry_seconds = 120;
    p = ig_progress_new(&o, &err);
    assert_non_null(p);
    assert_int_equal(ig_progress_active(p), IG_PROGRESS_REDIS);

    in = running(1000, 250);
    in.updated = 3;
    in.unchanged = 2;
    in.skipped = 1;
    in.job_created_at = 1764800000.123456;
    in.attempt = 2;
    ig_progress_update(p, job, &in);

    assert_int_equal(ig_progress_parse_url(url, &u, &err), IG_OK);
    c = test_conn(u.port, u.password[0] ? u.password : NULL);
    assert_non_null(c);
    if (u.db != 0)
        freeReplyObject(redisCommand(c, "SELECT %d", u.db));
    r = redisCommand(c, "HGETALL " IG_PROGRESS_KEY_PREFIX "%lld", job);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 30);
    freeReplyObject(r);
    r = redisCommand(c, "HGET " IG_PROGRESS_KEY_PREFIX "%lld state", job);
    assert_string_equal(r->str, "running");
    freeReplyObject(r);
    assert_int_equal(hget_ll(c, job, "total"), 1000);
    assert_int_equal(hget_ll(c, job, "processed"), 250);
    assert_int_equal(hget_ll(c, job, "inserted"), 225);
    assert_int_equal(hget_ll(c, job, "updated"), 3);
    assert_int_equal(hget_ll(c, job, "unchanged"), 2);
    assert_int_equal(hget_ll(c, job, "skipped"), 1);
    assert_int_equal(hget_ll(c, job, "failed"), 25);
    assert_int_equal(hget_ll(c, job, "percent"), 25);
    assert_int_equal(hget_ll(c, job, "rows_per_sec"), 25); /* 250 in 10 s */
    assert_int_equal(hget_ll(c, job, "eta_seconds"), 30);
    assert_true(hget_ll(c, job, "updated_at") >= (long long)wall_s() - 5);
    assert_int_equal(hget_ll(c, job, "attempt"), 2);
    r = redisCommand(c, "HGET " IG_PROGRESS_KEY_PREFIX "%lld job_created_at",
                     job);
    assert_string_equal(r->str, "1764800000.123456");
    freeReplyObject(r);
    r = redisCommand(c, "TTL " IG_PROGRESS_KEY_PREFIX "%lld", job);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 110 && r->integer <= 120);
    freeReplyObject(r);

    /* TTL is refreshed by every update. */
    freeReplyObject(
        redisCommand(c, "EXPIRE " IG_PROGRESS_KEY_PREFIX "%lld 5", job));
    in.processed = 500;
    ig_progress_update(p, job, &in);
    r = redisCommand(c, "TTL " IG_PROGRESS_KEY_PREFIX "%lld", job);
    assert_true(r->integer > 110);
    freeReplyObject(r);

    assert_int_equal(ig_progress_get(p, job, &out, &err), IG_OK);
    assert_string_equal(out.state, "running");
    assert_int_equal(out.processed, 500);
    assert_int_equal(out.total, 1000);
    assert_int_equal(out.attempt, 2);
    assert_true(fabs(out.job_created_at - 1764800000.123456) < 1e-6);
    assert_true(out.percent > 49.9 && out.percent < 50.1);
    assert_int_equal(ig_progress_get(p, job + 1, &out, &err), IG_NOTFOUND);

    freeReplyObject(redisCommand(c, "DEL " IG_PROGRESS_KEY_PREFIX "%lld", job));
    redisFree(c);
    ig_progress_free(p);
}

static void test_progress_memory_only_without_url(void **state)
{
    ig_progress_info in, out;
    ig_progress_stats st;
    ig_progress *p;
    ig_err err;
    (void)state;

    p = ig_progress_new(NULL, &err);
    assert_non_null(p);
    assert_int_equal(ig_progress_active(p), IG_PROGRESS_MEMORY);
    assert_string_equal(ig_progress_backend_name(ig_progress_active(p)),
                        "memory");
    assert_int_equal(ig_progress_get(p, 7, &out, &err), IG_NOTFOUND);
    in = running(0, 10);
    ig_progress_update(p, 7, &in);
    in.processed = 20;
    ig_progress_update(p, 7, &in);
    assert_int_equal(ig_progress_get(p, 7, &out, &err), IG_OK);
    assert_int_equal(out.processed, 20);
    assert_true(out.percent < 0); /* total unknown */
    ig_progress_get_stats(p, &st);
    assert_int_equal(st.memory_jobs, 1);
    assert_int_equal(st.fallbacks, 0);
    ig_progress_free(p);
}

/* Redirect stderr into a temp file while an outage is logged. */
typedef struct capture {
    int saved;
    FILE *f;
} capture;

static void capture_begin(capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    c->saved = dup(2);
    dup2(fileno(c->f), 2);
}

static char *capture_end(capture *c)
{
    long n;
    char *buf;

    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    n = ftell(c->f);
    buf = calloc(1, (size_t)n + 1);
    rewind(c->f);
    if (n > 0 && fread(buf, 1, (size_t)n, c->f) != (size_t)n)
        buf[0] = '\0';
    fclose(c->f);
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *s = strstr(hay, needle); s; s = strstr(s + 1, needle))
        n++;
    return n;
}

static void test_progress_survives_redis_restart(void **state)
{
    int port = free_port();
    pid_t pid = redis_start(port);
    char url[128];
    ig_progress_opts o;
    ig_progress_info in, out;
    ig_progress_stats st;
    ig_progress *p;
    redisContext *c;
    capture cap;
    char *log;
    double worst = 0;
    ig_err err;
    (void)state;

    snprintf(url, sizeof(url), "redis://:" PASSWORD "@127.0.0.1:%d/0", port);
    memset(&o, 0, sizeof(o));
    o.redis_url = url;
    o.expiry_seconds = 600;
    o.retry_ms = 200;
    p = ig_progress_new(&o, &err);
    assert_non_null(p);
    assert_int_equal(ig_progress_active(p), IG_PROGRESS_REDIS);
    in = running(1000, 100);
    ig_progress_update(p, 1, &in);
    c = test_conn(port, PASSWORD);
    assert_int_equal(hget_ll(c, 1, "processed"), 100);
    redisFree(c);

    /* Redis dies mid-import. */
    capture_begin(&cap);
    redis_stop(pid);
    for (int i = 1; i <= 40; i++) {
        double t0 = now_s(), dt;
        in.processed = 100 + i * 10;
        ig_progress_update(p, 1, &in);
        dt = now_s() - t0;
        if (dt > worst)
            worst = dt;
        assert_true(dt < 0.050);
        usleep(10 * 1000); /* spans two reconnect attempts */
    }
    assert_int_equal(ig_progress_active(p), IG_PROGRESS_MEMORY);
    assert_int_equal(ig_progress_get(p, 1, &out, &err), IG_OK);
    assert_int_equal(out.processed, 500);
    assert_true(out.percent > 49.9 && out.percent < 50.1);
    log = capture_end(&cap);
    assert_int_equal(count_of(log, "unavailable"), 1);
    assert_null(strstr(log, PASSWORD));
    free(log);
    printf("# slowest update while Redis was down: %.2f ms\n", worst * 1e3);

    /* It comes back on the same port: the store switches back and writes
     * the latest values. */
    pid = redis_start(port);
    assert_true(wait_backend(p, IG_PROGRESS_REDIS, 5.0));
    c = test_conn(port, PASSWORD);
    assert_non_null(c);
    assert_int_equal(hget_ll(c, 1, "processed"), 500);
    assert_int_equal(hget_ll(c, 1, "total"), 1000);
    {
        redisReply *r = redisCommand(c, "TTL " IG_PROGRESS_KEY_PREFIX "1");
        assert_true(r->integer > 500 && r->integer <= 600);
        freeReplyObject(r);
    }
    in.processed = 600;
    ig_progress_update(p, 1, &in);
    assert_int_equal(hget_ll(c, 1, "processed"), 600);
    assert_int_equal(ig_progress_get(p, 1, &out, &err), IG_OK);
    assert_int_equal(out.processed, 600);
    ig_progress_get_stats(p, &st);
    assert_int_equal(st.fallbacks, 1);
    assert_int_equal(st.reconnects, 1);
    redisFree(c);

    ig_progress_free(p);
    redis_stop(pid);
}

static void test_progress_redis_absent_at_start(void **state)
{
    int port = free_port();
    char url[128];
    ig_progress_opts o;
    ig_progress_info in, out;
    ig_progress *p;
    redisContext *c;
    pid_t pid;
    double t0;
    capture cap;
    char *log;
    ig_err err;
    (void)state;

    snprintf(url, sizeof(url), "redis://:" PASSWORD "@127.0.0.1:%d", port);
    memset(&o, 0, sizeof(o));
    o.redis_url = url;
    o.retry_ms = 100;
    capture_begin(&cap);
    t0 = now_s();
    p = ig_progress_new(&o, &err);
    assert_true(now_s() - t0 < 0.5);
    log = capture_end(&cap);
    assert_non_null(p);
    assert_int_equal(count_of(log, "unavailable"), 1);
    assert_null(strstr(log, PASSWORD));
    free(log);
    assert_int_equal(ig_progress_active(p), IG_PROGRESS_MEMORY);
    in = running(10, 5);
    ig_progress_update(p, 77, &in);
    assert_int_equal(ig_progress_get(p, 77, &out, &err), IG_OK);
    assert_int_equal(out.processed, 5);

    pid = redis_start(port);
    assert_true(wait_backend(p, IG_PROGRESS_REDIS, 5.0));
    c = test_conn(port, PASSWORD);
    assert_int_equal(hget_ll(c, 77, "processed"), 5);
    redisFree(c);
    ig_progress_free(p);
    redis_stop(pid);
}

/* A key Redis refuses (wrong type) makes that update fall back, but the
 * reconnect still succeeds and the store does not stay in memory. */
static void test_progress_refused_key_does_not_pin_memory(void **state)
{
    int port = free_port();
    pid_t pid = redis_start(port);
    char url[128];
    ig_progress_opts o;
    ig_progress_info in, out;
    ig_progress *p;
    redisContext *c;
    capture cap;
    char *log;
    ig_err err;
    (void)state;

    snprintf(url, sizeof(url), "redis://:" PASSWORD "@127.0.0.1:%d", port);
    memset(&o, 0, sizeof(o));
    o.redis_url = url;
    o.retry_ms = 50;
    p = ig_progress_new(&o, &err);
    assert_non_null(p);
    c = test_conn(port, PASSWORD);
    freeReplyObject(redisCommand(c, "SET " IG_PROGRESS_KEY_PREFIX "5 x"));

    capture_begin(&cap);
    in = running(10, 1);
    ig_progress_update(p, 5, &in); /* WRONGTYPE */
    assert_int_equal(ig_progress_get(p, 5, &out, &err), IG_OK);
    assert_true(wait_backend(p, IG_PROGRESS_REDIS, 5.0));
    log = capture_end(&cap);
    assert_non_null(strstr(log, "WRONGTYPE"));
    assert_non_null(strstr(log, "refused 1"));
    free(log);
    ig_progress_update(p, 6, &in);
    assert_int_equal(hget_ll(c, 6, "processed"), 1);
    redisFree(c);
    ig_progress_free(p);
    redis_stop(pid);
}

/* ---- concurrency ------------------------------------------------------- */

#define WRITERS 6
#define UPDATES 300

typedef struct writer {
    ig_progress *p;
    int index;
} writer;

static void *writer_main(void *arg)
{
    writer *w = arg;
    ig_progress_info in = running(UPDATES, 0), out;
    ig_err err;

    for (int i = 1; i <= UPDATES; i++) {
        in.processed = i;
        in.inserted = i;
        in.failed = 0;
        ig_progress_update(w->p, 1000 + w->index, &in);
        ig_progress_update(w->p, 999, &in); /* a contended job */
        if (i % 50 == 0 &&
            ig_progress_get(w->p, 1000 + w->index, &out, &err) != IG_OK)
            fprintf(stderr, "writer %d: get failed\n", w->index);
        usleep(500); /* keep writing until well after the outage */
    }
    return NULL;
}

static void test_progress_concurrent_updates_across_an_outage(void **state)
{
    int port = free_port();
    pid_t pid = redis_start(port);
    char url[128];
    ig_progress_opts o;
    ig_progress_info out;
    ig_progress *p;
    pthread_t th[WRITERS];
    writer w[WRITERS];
    ig_progress_stats st;
    redisContext *c;
    capture cap;
    char *log;
    ig_err err;
    (void)state;

    snprintf(url, sizeof(url), "redis://:" PASSWORD "@127.0.0.1:%d/2", port);
    memset(&o, 0, sizeof(o));
    o.redis_url = url;
    o.retry_ms = 50;
    p = ig_progress_new(&o, &err);
    assert_non_null(p);

    capture_begin(&cap);
    for (int i = 0; i < WRITERS; i++) {
        w[i].p = p;
        w[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    usleep(20 * 1000);
    redis_stop(pid); /* mid-way, under load */
    usleep(100 * 1000);
    pid = redis_start(port);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    log = capture_end(&cap);
    free(log);

    for (int i = 0; i < WRITERS; i++) {
        assert_int_equal(ig_progress_get(p, 1000 + i, &out, &err), IG_OK);
        assert_int_equal(out.processed, UPDATES);
    }
    assert_true(wait_backend(p, IG_PROGRESS_REDIS, 5.0));
    ig_progress_get_stats(p, &st);
    assert_true(st.fallbacks >= 1);
    assert_true(st.reconnects >= 1);
    /* Whatever was written during the outage is in Redis now. */
    c = test_conn(port, PASSWORD);
    freeReplyObject(redisCommand(c, "SELECT 2"));
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(hget_ll(c, 1000 + i, "processed"), UPDATES);
    assert_int_equal(hget_ll(c, 999, "processed"), UPDATES);
    redisFree(c);
    ig_progress_free(p);
    redis_stop(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_values_and_ttl_in_redis),
        cmocka_unit_test(test_progress_memory_only_without_url),
        cmocka_unit_test(test_progress_survives_redis_restart),
        cmocka_unit_test(test_progress_redis_absent_at_start),
        cmocka_unit_test(test_progress_refused_key_does_not_pin_memory),
        cmocka_unit_test(test_progress_concurrent_updates_across_an_outage),
    };

    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        fprintf(stderr, "redis-server is not installed: run "
                        "scripts/deps.sh\n");
        return 1;
    }
    ig_log_set_level(IG_LOG_INFO);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
