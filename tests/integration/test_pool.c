/*
 * test_pool.c - the connection pool's background connect (ig_pool_warm)
 * against the real PostgreSQL of DATABASE_URL, and against peers that
 * refuse connections or never answer.
 *
 * A warmed connection is the one the next acquire gets, prepared like any
 * other, unless an idle one is there; a failed warm attempt counts as the
 * first of the acquire's own tries (a refused password is not retried);
 * freeing the pool or giving the attempt up stops it at once, even one
 * waiting on a server that never answers, and frees its slot. An owner's
 * connection whose server has been silent past the grace is found, and
 * aborting the owner's connections ends a query it waits on at once and
 * touches no other borrower's. Fails when DATABASE_URL is unset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ig_pool *pool_on(const char *conninfo, int size, int budget_ms)
{
    ig_pool_opts o;
    ig_err err;
    ig_pool *p;

    memset(&o, 0, sizeof(o));
    o.conninfo = conninfo;
    o.size = size;
    o.connect_timeout_ms = budget_ms;
    o.statement_timeout_ms = 4321;
    p = ig_pool_new(&o, &err);
    if (p == NULL)
        fail_msg("ig_pool_new: %s", err.msg);
    return p;
}

static char *one_value(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    char *v;

    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* The next acquire hands out the session whose backend pid is pid. */
static void assert_next_is(ig_pool *p, const char *pid)
{
    ig_pool_conn *c = NULL;
    ig_err err;
    char *again;

    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_OK);
    again = one_value(ig_pool_conn_pg(c), "SELECT pg_backend_pid()");
    assert_string_equal(pid, again);
    ig_pool_release(p, c, IG_POOL_KEEP);
    free(again);
}

/* A listening socket on 127.0.0.1 that never accepts: the kernel
 * completes the TCP handshake, and a client then waits for an answer
 * that never comes. Its port in *port. */
static int silent_listener(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_warmed_connection_is_the_next_acquired(void **state)
{
    ig_pool *p = pool_on(getenv("DATABASE_URL"), 1, 10000);
    ig_pool_conn *c = NULL;
    ig_err err;
    char *pid, *timeout;

    (void)state;
    ig_pool_warm(p);
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_OK);
    /* Prepared like any connection of the pool. */
    timeout = one_value(ig_pool_conn_pg(c), "SHOW statement_timeout");
    assert_string_equal(timeout, "4321ms");
    pid = one_value(ig_pool_conn_pg(c), "SELECT pg_backend_pid()");
    ig_pool_release(p, c, IG_POOL_KEEP);
    /* An idle connection: warming again opens nothing, and the pool of
     * one hands out the same session (a second warm connection would
     * have taken the only slot, or been handed out instead). */
    ig_pool_warm(p);
    assert_next_is(p, pid);
    ig_pool_free(p);
    free(pid);
    free(timeout);
}

/* Read the peer's bytes until it closes (1) or for up to ms (0). */
static int peer_closes(int fd, int ms)
{
    double until = now_s() + ms / 1000.0;
    char buf[256];

    while (now_s() < until) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        n = read(fd, buf, sizeof(buf));
        if (n == 0)
            return 1;
        if (n < 0)
            return 0;
    }
    return 0;
}

static void test_free_stops_an_attempt_at_a_silent_server(void **state)
{
    char conninfo[128];
    int port, fd = silent_listener(&port), peer;
    ig_pool *p;
    double t0;

    (void)state;
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d dbname=x user=x", port);
    p = pool_on(conninfo, 2, 10000);
    ig_pool_warm(p);
    sleep_ms(100); /* the attempt now waits for an answer */
    t0 = now_s();
    ig_pool_free(p);
    assert_true(now_s() - t0 < 0.5);
    /* The attempt was given up, not left running: its connection, still
     * in the listener's queue, is closed once its first bytes are read
     * (a thread left inside libpq at exit once aborted the process). */
    peer = accept(fd, NULL, NULL);
    assert_true(peer >= 0);
    assert_true(peer_closes(peer, 1000));
    close(peer);
    close(fd);
}

static void test_unwarm_gives_the_slot_back(void **state)
{
    ig_pool *p = pool_on(getenv("DATABASE_URL"), 1, 10000);
    ig_pool_conn *c = NULL;
    ig_err err;

    (void)state;
    ig_pool_warm(p);
    ig_pool_unwarm(p);
    ig_pool_unwarm(p); /* nothing left: a no-op */
    /* A pool of one whose slot the warm attempt still held would wait
     * here for ever. */
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_OK);
    ig_pool_release(p, c, IG_POOL_KEEP);
    ig_pool_free(p);
}

static void test_idle_connection_goes_before_the_warm_one(void **state)
{
    ig_pool *p = pool_on(getenv("DATABASE_URL"), 2, 10000);
    ig_pool_conn *c = NULL;
    ig_err err;
    char *pid;

    (void)state;
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_OK);
    pid = one_value(ig_pool_conn_pg(c), "SELECT pg_backend_pid()");
    ig_pool_warm(p); /* none idle, room for one more */
    ig_pool_release(p, c, IG_POOL_KEEP);
    assert_next_is(p, pid);
    ig_pool_free(p);
    free(pid);
}

static void test_refused_warm_attempt_is_retried_within_budget(void **state)
{
    ig_pool *p;
    ig_pool_conn *c = NULL;
    ig_err err;
    int port, fd = silent_listener(&port);
    char conninfo[128];
    double t0;

    (void)state;
    close(fd); /* nobody listens there now: refused */
    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%d dbname=x user=x", port);
    p = pool_on(conninfo, 1, 700);
    t0 = now_s();
    ig_pool_warm(p);
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_DB_RETRY);
    assert_null(c);
    assert_non_null(strstr(err.msg, "refused"));
    /* The warm attempt was the first try: the acquire retried after it
     * (100, 200 ms backoff) and stopped at its budget. */
    assert_true(now_s() - t0 >= 0.25);
    assert_true(now_s() - t0 < 1.5);
    /* The slot the warm attempt held is free again. */
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_DB_RETRY);
    ig_pool_free(p);
}

static void test_refused_password_is_not_retried(void **state)
{
    const char *url = getenv("DATABASE_URL");
    const char *at = strchr(url, '@');
    const char *colon = NULL;
    char bad[512];
    ig_pool *p;
    ig_pool_conn *c = NULL;
    ig_err err;
    double t0;

    (void)state;
    /* postgresql://user:password@host...: swap the password. */
    for (const char *q = strstr(url, "//"); q && q < at; q++)
        if (*q == ':')
            colon = q;
    assert_non_null(at);
    assert_non_null(colon);
    snprintf(bad, sizeof(bad), "%.*s:not-the-password%s",
             (int)(colon - url), url, at);
    p = pool_on(bad, 1, 10000);
    t0 = now_s();
    ig_pool_warm(p);
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_DB);
    assert_null(c);
    assert_non_null(strstr(err.msg, "password"));
    assert_null(strstr(err.msg, "not-the-password"));
    assert_true(now_s() - t0 < 3.0);
    ig_pool_free(p);
}

/* A query run on its own thread. */
typedef struct waiter {
    PGconn *c;
    const char *sql;
    ExecStatusType status;
    double took;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;
    double t0 = now_s();
    PGresult *r = PQexec(w->c, w->sql);

    w->status = PQresultStatus(r);
    w->took = now_s() - t0;
    PQclear(r);
    return NULL;
}

static void test_abort_owned_ends_only_that_owners_waits(void **state)
{
    ig_pool_opts po = {.conninfo = getenv("DATABASE_URL"), .size = 3,
                       .connect_timeout_ms = 10000};
    ig_pool *p = ig_pool_new(&po, NULL); /* no statement timeout */
    int owner_a, owner_b;
    ig_pool_conn *a = NULL, *b = NULL, *c = NULL;
    waiter wa = {0}, wb = {0};
    pthread_t ta, tb;
    ig_err err;
    char *pid_a, *v;
    double t0;
    (void)state;

    assert_non_null(p);
    assert_int_equal(ig_pool_acquire_owned(p, &owner_a, NULL, NULL, &a, &err),
                     IG_OK);
    assert_int_equal(ig_pool_acquire_owned(p, &owner_b, NULL, NULL, &b, &err),
                     IG_OK);
    assert_int_equal(ig_pool_acquire(p, &c, &err), IG_OK);
    pid_a = one_value(ig_pool_conn_pg(a), "SELECT pg_backend_pid()");
    wa.c = ig_pool_conn_pg(a);
    wa.sql = "SELECT pg_sleep(30)"; /* a server that does not answer */
    wb.c = ig_pool_conn_pg(b);
    wb.sql = "SELECT pg_sleep(1.5)";
    assert_int_equal(pthread_create(&ta, NULL, wait_main, &wa), 0);
    assert_int_equal(pthread_create(&tb, NULL, wait_main, &wb), 0);
    sleep_ms(300);
    /* A's server has sent nothing for 300 ms: silent past a 200 ms grace
     * (and no statement timeout), not past a minute */
    assert_int_equal(ig_pool_silent_owned(p, &owner_a, 200), 1);
    assert_int_equal(ig_pool_silent_owned(p, &owner_a, 60000), 0);
    assert_int_equal(ig_pool_silent_owned(p, NULL, 0), 0);
    assert_int_equal(ig_pool_abort_owned(p, &owner_a, 60000), 0);
    assert_int_equal(ig_pool_abort_owned(p, NULL, -1), 0);
    t0 = now_s();
    assert_int_equal(ig_pool_abort_owned(p, &owner_a, -1), 1);
    pthread_join(ta, NULL);
    assert_true(now_s() - t0 < 2.0); /* not the 30 s */
    assert_int_equal(wa.status, PGRES_FATAL_ERROR);
    assert_int_equal(PQstatus(ig_pool_conn_pg(a)), CONNECTION_BAD);
    pthread_join(tb, NULL);
    assert_int_equal(wb.status, PGRES_TUPLES_OK); /* B's query went on */
    v = one_value(ig_pool_conn_pg(c), "SELECT 1"); /* and so does C */
    assert_string_equal(v, "1");
    free(v);
    /* the server side of A still sleeps: end it */
    {
        char q[128];
        snprintf(q, sizeof(q), "SELECT pg_terminate_backend(%s)", pid_a);
        v = one_value(ig_pool_conn_pg(c), q);
        free(v);
    }
    ig_pool_release(p, a, IG_POOL_KEEP); /* dead: discarded regardless */
    ig_pool_release(p, b, IG_POOL_KEEP);
    ig_pool_release(p, c, IG_POOL_KEEP);
    /* the pool goes on: a released connection is no longer A's */
    assert_int_equal(ig_pool_acquire_owned(p, &owner_a, NULL, NULL, &a, &err),
                     IG_OK);
    v = one_value(ig_pool_conn_pg(a), "SELECT 2");
    assert_string_equal(v, "2");
    free(v);
    ig_pool_release(p, a, IG_POOL_KEEP);
    free(pid_a);
    ig_pool_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_warmed_connection_is_the_next_acquired),
        cmocka_unit_test(test_free_stops_an_attempt_at_a_silent_server),
        cmocka_unit_test(test_unwarm_gives_the_slot_back),
        cmocka_unit_test(test_idle_connection_goes_before_the_warm_one),
        cmocka_unit_test(test_refused_warm_attempt_is_retried_within_budget),
        cmocka_unit_test(test_refused_password_is_not_retried),
        cmocka_unit_test(test_abort_owned_ends_only_that_owners_waits),
    };

    if (getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "DATABASE_URL is not set: start the servers with "
                        "scripts/servers.sh (scripts/test.sh does)\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
