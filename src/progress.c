/*
 * progress.c - per-job progress in Redis hashes, with an in-memory table
 * that always holds the latest update and serves when Redis is down.
 *
 * State machine (backend, guarded by mu):
 *   REDIS  --command fails-->  MEMORY  (warn once, wake the thread)
 *   MEMORY --thread reconnects and flushes dirty entries-->  REDIS  (info)
 * Callers never connect: only ig_progress_new() (once) and the reconnect
 * thread do, and the thread connects without holding mu, so a slow connect
 * never blocks an update. Redis commands run under mu (the context is not
 * thread-safe), bounded by the command timeout.
 *
 * A memory entry is "dirty" when its latest update did not reach Redis;
 * those, and only those, are written back on reconnect, with the TTL they
 * have left.
 */
#include "progress.h"

#include "jobq.h"
#include "log.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct entry {
    long long job_id;
    ig_progress_info info;
    double expires_at; /* epoch seconds */
    int dirty;         /* latest update not in Redis */
} entry;

struct ig_progress {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the reconnect thread (stop, fallback) */
    int sync_ready;    /* mu and cv initialised */
    int thread_started;
    pthread_t thread;
    int stop;

    ig_progress_url url; /* has the password: never log it */
    char where[300];     /* "host:port/db" for log lines */
    int use_redis;       /* a URL was given */
    long expiry;
    int timeout_ms, retry_ms;
    size_t max_jobs;

    /* guarded by mu */
    ig_progress_backend backend;
    redisContext *rc; /* non-NULL iff backend == REDIS */
    int outage_logged;
    long long fallbacks, reconnects;
    entry *v;
    size_t n, cap;
};

/* ------------------------------------------------------------------------
 * Small helpers
 */

static double now_epoch(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *ig_progress_backend_name(ig_progress_backend b)
{
    switch (b) {
    case IG_PROGRESS_MEMORY:
        return "memory";
    case IG_PROGRESS_REDIS:
        return "redis";
    default:
        break;
    }
    return "?";
}

void ig_progress_compute(ig_progress_info *in, double now)
{
    double elapsed = 0.0;
    ig_jobq_state st;
    int final = ig_jobq_state_parse(in->state, &st) == IG_OK &&
                ig_jobq_state_is_final(st);

    in->updated_at = now;
    /* A queued job (never run, or put back) or one waiting to be retried
     * is not moving. */
    if (in->started_at > 0 && now > in->started_at &&
        strcmp(in->state, "queued") != 0 && strcmp(in->state, "retryable") != 0)
        elapsed = now - in->started_at;
    in->rows_per_sec = elapsed > 0 ? (double)in->processed / elapsed : 0.0;
    in->percent = -1.0;
    in->eta_seconds = -1.0;
    if (in->total > 0) {
        long long left = in->total - in->processed;
        in->percent = 100.0 * (double)in->processed / (double)in->total;
        if (in->percent > 100.0)
            in->percent = 100.0;
        if (in->percent < 0.0)
            in->percent = 0.0;
        if (left <= 0)
            in->eta_seconds = 0.0;
        else if (in->rows_per_sec > 0)
            in->eta_seconds = (double)left / in->rows_per_sec;
    }
    if (final) {
        in->eta_seconds = 0.0;
        if (st == IG_JOBQ_SUCCEEDED || st == IG_JOBQ_PARTIALLY_SUCCEEDED)
            in->percent = 100.0;
    }
}

/* ------------------------------------------------------------------------
 * URL
 */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into dst (size cap). 0 or -1 (too long / bad). */
static int pct_decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n)
                return -1;
            h = hexval(s[i + 1]);
            l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

int ig_progress_parse_url(const char *url, ig_progress_url *out, ig_err *err)
{
    const char *p, *auth_end, *at, *hp, *hp_end, *colon = NULL;
    char num[16];

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (url == NULL)
        return ig_err_set(err, IG_CONFIG, "REDIS_URL: empty");
    if (strncmp(url, "rediss://", 9) == 0)
        return ig_err_set(err, IG_CONFIG,
                          "REDIS_URL: TLS (rediss://) is "
                          "not supported");
    if (strncmp(url, "redis://", 8) != 0)
        return ig_err_set(err, IG_CONFIG,
                          "REDIS_URL: expected "
                          "redis://[[user]:password@]host[:port][/db]");
    p = url + 8;
    auth_end = p + strcspn(p, "/?#");
    /* The last '@' before the path ends the userinfo. */
    at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@')
            at = q;
    if (at != NULL) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        const char *uend = c ? c : at;
        if (pct_decode(p, (size_t)(uend - p), out->user, sizeof(out->user)) !=
                0 ||
            (c && pct_decode(c + 1, (size_t)(at - c - 1), out->password,
                             sizeof(out->password)) != 0))
            return ig_err_set(err, IG_CONFIG,
                              "REDIS_URL: bad user or "
                              "password encoding");
        hp = at + 1;
    } else {
        hp = p;
    }
    /* host[:port], host may be [v6]. */
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));
        if (rb == NULL || (size_t)(rb - hp - 1) >= sizeof(out->host))
            return ig_err_set(err, IG_CONFIG, "REDIS_URL: bad IPv6 host");
        memcpy(out->host, hp + 1, (size_t)(rb - hp - 1));
        hp_end = rb + 1;
        if (hp_end < auth_end && *hp_end == ':')
            colon = hp_end;
        else if (hp_end != auth_end)
            return ig_err_set(err, IG_CONFIG, "REDIS_URL: bad host");
    } else {
        colon = memchr(hp, ':', (size_t)(auth_end - hp));
        hp_end = colon ? colon : auth_end;
        if ((size_t)(hp_end - hp) >= sizeof(out->host))
            return ig_err_set(err, IG_CONFIG, "REDIS_URL: host too long");
        memcpy(out->host, hp, (size_t)(hp_end - hp));
    }
    if (out->host[0] == '\0')
        snprintf(out->host, sizeof(out->host), "127.0.0.1");
    if (colon != NULL) {
        size_t len = (size_t)(auth_end - colon - 1);
        char *end;
        long port;
        if (len == 0 || len >= sizeof(num))
            return ig_err_set(err, IG_CONFIG, "REDIS_URL: bad port");
        memcpy(num, colon + 1, len);
        num[len] = '\0';
        errno = 0;
        port = strtol(num, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535)
            return ig_err_set(err, IG_CONFIG, "REDIS_URL: bad port '%s'", num);
        out->port = (int)port;
    }
    if (*auth_end == '/') {
        const char *d = auth_end + 1;
        size_t len = strcspn(d, "?#");
        char *end;
        long db;
        if (len > 0) {
            if (len >= sizeof(num))
                return ig_err_set(err, IG_CONFIG, "REDIS_URL: bad database");
            memcpy(num, d, len);
            num[len] = '\0';
            db = strtol(num, &end, 10);
            if (*end != '\0' || db < 0 || db > 65535)
                return ig_err_set(err, IG_CONFIG,
                                  "REDIS_URL: bad database "
                                  "number '%s'",
                                  num);
            out->db = (int)db;
        }
    }
    return IG_OK;
}

/* ------------------------------------------------------------------------
 * Redis I/O. hiredis writes with write(2): a peer that went away would
 * raise SIGPIPE and kill the process, so, as libpq does, SIGPIPE is
 * blocked in the calling thread around every exchange and a SIGPIPE that
 * arrived meanwhile is consumed.
 */

typedef struct sigpipe_guard {
    sigset_t old;
    int was_pending;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *g)
{
    sigset_t s, pending;

    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &g->old);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(sigpipe_guard *g)
{
    sigset_t s, pending;
    struct timespec zero = {0, 0};

    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        while (sigtimedwait(&s, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Run one command given as argv; returns the reply (owned,
 * freeReplyObject) or NULL when the connection failed. An error reply is
 * returned as such. */
static redisReply *command(redisContext *c, int argc, const char **argv)
{
    sigpipe_guard g;
    redisReply *r;

    sigpipe_block(&g);
    r = redisCommandArgv(c, argc, argv, NULL);
    sigpipe_restore(&g);
    return r;
}

/* Connect (waiting at most timeout_ms), authenticate, select the db.
 * Owned context or NULL; *why gets a short reason without secrets. */
static redisContext *redis_open(const ig_progress *p, char *why, size_t n)
{
    struct timeval tv;
    redisContext *c;
    redisReply *r = NULL;

    tv.tv_sec = p->timeout_ms / 1000;
    tv.tv_usec = (p->timeout_ms % 1000) * 1000;
    c = redisConnectWithTimeout(p->url.host, p->url.port, tv);
    if (c == NULL) {
        snprintf(why, n, "cannot allocate a Redis context");
        return NULL;
    }
    if (c->err) {
        snprintf(why, n, "%s", c->errstr);
        goto fail;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, n, "cannot set the command timeout");
        goto fail;
    }
    if (p->url.password[0] != '\0') {
        const char *argv[3] = {"AUTH", p->url.user, p->url.password};
        if (p->url.user[0] != '\0')
            r = command(c, 3, argv);
        else {
            argv[1] = p->url.password;
            r = command(c, 2, argv);
        }
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, n, "AUTH failed%s%s", r ? ": " : "", r ? r->str : "");
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (p->url.db != 0) {
        char db[16];
        const char *argv[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", p->url.db);
        r = command(c, 2, argv);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(why, n, "SELECT %d failed", p->url.db);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    return c;
fail:
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

#define HASH_FIELDS 15

/* Format info as HSET field/value pairs into vals (HASH_FIELDS slots of
 * 32 bytes) and argv (2 * HASH_FIELDS). */
static void hash_fields(const ig_progress_info *in, char vals[][32],
                        const char **argv)
{
    static const char *const names[HASH_FIELDS] = {
        "state",       "total",      "processed", "inserted", "updated",
        "unchanged",   "skipped",    "failed",    "percent",  "rows_per_sec",
        "eta_seconds", "started_at", "updated_at", "job_created_at",
        "attempt"};
    int i = 0;

    snprintf(vals[i++], 32, "%s", in->state);
    snprintf(vals[i++], 32, "%lld", in->total);
    snprintf(vals[i++], 32, "%lld", in->processed);
    snprintf(vals[i++], 32, "%lld", in->inserted);
    snprintf(vals[i++], 32, "%lld", in->updated);
    snprintf(vals[i++], 32, "%lld", in->unchanged);
    snprintf(vals[i++], 32, "%lld", in->skipped);
    snprintf(vals[i++], 32, "%lld", in->failed);
    snprintf(vals[i++], 32, "%.2f", in->percent);
    snprintf(vals[i++], 32, "%.1f", in->rows_per_sec);
    snprintf(vals[i++], 32, "%.1f", in->eta_seconds);
    snprintf(vals[i++], 32, "%.3f", in->started_at);
    snprintf(vals[i++], 32, "%.3f", in->updated_at);
    snprintf(vals[i++], 32, "%.6f", in->job_created_at);
    snprintf(vals[i++], 32, "%d", in->attempt);
    for (i = 0; i < HASH_FIELDS; i++) {
        argv[2 * i] = names[i];
        argv[2 * i + 1] = vals[i];
    }
}

/* Queue MULTI / HSET / EXPIRE / EXEC for one job on c (not sent yet). */
static int append_write(redisContext *c, long long job_id,
                        const ig_progress_info *in, long ttl)
{
    char key[64], ttlbuf[24], vals[HASH_FIELDS][32];
    const char *hset[2 + 2 * HASH_FIELDS];
    const char *expire[3] = {"EXPIRE", key, ttlbuf};
    const char *multi[1] = {"MULTI"}, *exec[1] = {"EXEC"};

    snprintf(key, sizeof(key), IG_PROGRESS_KEY_PREFIX "%lld", job_id);
    snprintf(ttlbuf, sizeof(ttlbuf), "%ld", ttl > 0 ? ttl : 1);
    hset[0] = "HSET";
    hset[1] = key;
    hash_fields(in, vals, hset + 2);
    if (redisAppendCommandArgv(c, 1, multi, NULL) != REDIS_OK ||
        redisAppendCommandArgv(c, 2 + 2 * HASH_FIELDS, hset, NULL) !=
            REDIS_OK ||
        redisAppendCommandArgv(c, 3, expire, NULL) != REDIS_OK ||
        redisAppendCommandArgv(c, 1, exec, NULL) != REDIS_OK)
        return -1;
    return 0;
}

/* Read the four replies of one append_write(): 0 when EXEC ran both
 * commands, 1 when Redis answered with an error (WRONGTYPE, OOM...), -1
 * when the connection broke (the context is dead then). Reads all four
 * after an error reply so the pipeline stays in step. */
static int read_write_replies(redisContext *c, char *why, size_t n)
{
    int ok = 1;

    for (int i = 0; i < 4; i++) {
        void *v = NULL;
        redisReply *r;
        if (redisGetReply(c, &v) != REDIS_OK || v == NULL) {
            snprintf(why, n, "%s", c->err ? c->errstr : "no reply");
            return -1;
        }
        r = v;
        if (r->type == REDIS_REPLY_ERROR && ok) {
            snprintf(why, n, "%s", r->str);
            ok = 0;
        }
        if (i == 3) {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                ok = 0;
            for (size_t k = 0; ok && k < r->elements; k++) {
                if (r->element[k]->type == REDIS_REPLY_ERROR) {
                    snprintf(why, n, "%s", r->element[k]->str);
                    ok = 0;
                }
            }
        }
        freeReplyObject(r);
    }
    return ok ? 0 : 1;
}

/* Write one entry (only != NULL: an update; any failure is -1 and makes
 * the caller fall back) or every dirty entry (only == NULL: the flush on
 * reconnect; only a broken connection is -1, and entries Redis refuses
 * are dropped from the flush, since retrying them would keep the store
 * off Redis for good). Clears the dirty flags written. Called with mu
 * held. 0 or -1. */
static int redis_write(ig_progress *p, redisContext *c, entry *only, char *why,
                       size_t n)
{
    double now = now_epoch();
    size_t sent = 0;
    sigpipe_guard g;
    int broken = 0, refused = 0;

    for (size_t i = 0; i < p->n; i++) {
        entry *e = only ? only : &p->v[i];
        if (only || e->dirty) {
            if (append_write(c, e->job_id, &e->info,
                             (long)ceil(e->expires_at - now)) != 0) {
                snprintf(why, n, "out of memory");
                return -1;
            }
            sent++;
        }
        if (only)
            break;
    }
    sigpipe_block(&g);
    for (size_t i = 0; i < sent && !broken; i++) {
        int r = read_write_replies(c, why, n);
        broken = r < 0;
        refused += r > 0;
    }
    sigpipe_restore(&g);
    if (broken || (only && refused))
        return -1;
    if (refused)
        ig_log(IG_LOG_WARN,
               "progress: Redis at %s refused %d of %zu "
               "progress hashes on reconnect (%s)",
               p->where, refused, sent, why);
    if (only)
        only->dirty = 0;
    else
        for (size_t i = 0; i < p->n; i++)
            p->v[i].dirty = 0;
    return 0;
}

/* Switch to memory after a Redis failure; called with mu held. */
static void fall_back(ig_progress *p, const char *reason)
{
    char why[256];

    /* reason may point into p->rc: copy it before freeing the context. */
    snprintf(why, sizeof(why), "%s", reason ? reason : "unknown failure");
    if (p->rc != NULL) {
        redisFree(p->rc);
        p->rc = NULL;
    }
    if (p->backend == IG_PROGRESS_REDIS)
        p->fallbacks++;
    p->backend = IG_PROGRESS_MEMORY;
    if (!p->outage_logged) {
        ig_log(IG_LOG_WARN,
               "progress: Redis at %s unavailable (%s); keeping "
               "progress in memory and retrying every %d ms",
               p->where, why, p->retry_ms);
        p->outage_logged = 1;
    }
    pthread_cond_signal(&p->cv);
}

/* ------------------------------------------------------------------------
 * Memory table (mu held for all of these)
 */

static void purge_expired(ig_progress *p, double now)
{
    size_t o = 0;

    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].expires_at > now)
            p->v[o++] = p->v[i];
    p->n = o;
}

static entry *find(ig_progress *p, long long job_id)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].job_id == job_id)
            return &p->v[i];
    return NULL;
}

/* The entry for job_id, created (evicting the stalest when full). */
static entry *find_or_add(ig_progress *p, long long job_id, double now)
{
    entry *e = find(p, job_id);

    if (e != NULL)
        return e;
    if (p->n >= p->max_jobs)
        purge_expired(p, now);
    if (p->n >= p->max_jobs) {
        size_t oldest = 0;
        for (size_t i = 1; i < p->n; i++)
            if (p->v[i].info.updated_at < p->v[oldest].info.updated_at)
                oldest = i;
        p->v[oldest] = p->v[--p->n];
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = ig_xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    e = &p->v[p->n++];
    memset(e, 0, sizeof(*e));
    e->job_id = job_id;
    return e;
}

/* ------------------------------------------------------------------------
 * Reconnect thread
 */

static void wait_ms(ig_progress *p, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static void *reconnect_main(void *arg)
{
    ig_progress *p = arg;

    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        char why[256] = "";
        redisContext *c;

        if (p->backend == IG_PROGRESS_REDIS) {
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        pthread_mutex_unlock(&p->mu);
        c = redis_open(p, why, sizeof(why)); /* without the lock */
        pthread_mutex_lock(&p->mu);
        if (c != NULL && !p->stop &&
            redis_write(p, c, NULL, why, sizeof(why)) == 0) {
            p->rc = c;
            p->backend = IG_PROGRESS_REDIS;
            p->reconnects++;
            if (p->outage_logged)
                ig_log(IG_LOG_INFO,
                       "progress: Redis at %s is back; progress "
                       "is in Redis again",
                       p->where);
            p->outage_logged = 0;
            continue;
        }
        if (c != NULL)
            redisFree(c);
        if (!p->stop)
            wait_ms(p, p->retry_ms);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ------------------------------------------------------------------------
 * Public API
 */

ig_progress *ig_progress_new(const ig_progress_opts *opts, ig_err *err)
{
    static const ig_progress_opts none;
    const ig_progress_opts *o = opts ? opts : &none;
    ig_progress *p = ig_xcalloc(1, sizeof(*p));
    char why[256] = "";

    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto fail_sync;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        goto fail_sync;
    }
    p->sync_ready = 1;
    p->expiry = o->expiry_seconds > 0 ? o->expiry_seconds : 86400;
    p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 200;
    p->retry_ms = o->retry_ms > 0 ? o->retry_ms : 1000;
    p->max_jobs = o->max_jobs > 0 ? o->max_jobs : 10000;
    p->backend = IG_PROGRESS_MEMORY;
    if (o->redis_url == NULL || o->redis_url[0] == '\0')
        return p; /* memory only */

    if (ig_progress_parse_url(o->redis_url, &p->url, err) != IG_OK)
        goto fail;
    p->use_redis = 1;
    snprintf(p->where, sizeof(p->where), "%s:%d/%d", p->url.host, p->url.port,
             p->url.db);
    p->rc = redis_open(p, why, sizeof(why));
    if (p->rc != NULL)
        p->backend = IG_PROGRESS_REDIS;
    else
        fall_back(p, why);
    if (pthread_create(&p->thread, NULL, reconnect_main, p) != 0) {
        ig_err_set(err, IG_INTERNAL,
                   "progress: cannot start the Redis "
                   "reconnect thread");
        goto fail;
    }
    p->thread_started = 1;
    return p;

fail_sync:
    ig_err_set(err, IG_NOMEM, "progress: cannot create a mutex");
fail:
    ig_progress_free(p);
    return NULL;
}

void ig_progress_free(ig_progress *p)
{
    if (p == NULL)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    if (p->rc != NULL)
        redisFree(p->rc);
    if (p->sync_ready) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    memset(&p->url, 0, sizeof(p->url)); /* the password */
    free(p->v);
    free(p);
}

void ig_progress_update(ig_progress *p, long long job_id,
                        const ig_progress_info *info)
{
    double now = now_epoch();
    char why[256] = "";
    entry *e;

    pthread_mutex_lock(&p->mu);
    e = find_or_add(p, job_id, now);
    e->info = *info;
    e->info.state[sizeof(e->info.state) - 1] = '\0';
    ig_progress_compute(&e->info, now);
    e->expires_at = now + (double)p->expiry;
    e->dirty = 1;
    if (p->backend == IG_PROGRESS_REDIS &&
        redis_write(p, p->rc, e, why, sizeof(why)) != 0)
        fall_back(p, why);
    pthread_mutex_unlock(&p->mu);
}

/* Fill *out from an HGETALL reply (field, value, field, value...). */
static void info_from_hash(const redisReply *r, ig_progress_info *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r->element[i]->str, *v = r->element[i + 1]->str;
        if (f == NULL || v == NULL)
            continue;
        if (strcmp(f, "state") == 0)
            snprintf(out->state, sizeof(out->state), "%s", v);
        else if (strcmp(f, "total") == 0)
            out->total = strtoll(v, NULL, 10);
        else if (strcmp(f, "processed") == 0)
            out->processed = strtoll(v, NULL, 10);
        else if (strcmp(f, "inserted") == 0)
            out->inserted = strtoll(v, NULL, 10);
        else if (strcmp(f, "updated") == 0)
            out->updated = strtoll(v, NULL, 10);
        else if (strcmp(f, "unchanged") == 0)
            out->unchanged = strtoll(v, NULL, 10);
        else if (strcmp(f, "skipped") == 0)
            out->skipped = strtoll(v, NULL, 10);
        else if (strcmp(f, "failed") == 0)
            out->failed = strtoll(v, NULL, 10);
        else if (strcmp(f, "percent") == 0)
            out->percent = strtod(v, NULL);
        else if (strcmp(f, "rows_per_sec") == 0)
            out->rows_per_sec = strtod(v, NULL);
        else if (strcmp(f, "eta_seconds") == 0)
            out->eta_seconds = strtod(v, NULL);
        else if (strcmp(f, "started_at") == 0)
            out->started_at = strtod(v, NULL);
        else if (strcmp(f, "updated_at") == 0)
            out->updated_at = strtod(v, NULL);
        else if (strcmp(f, "job_created_at") == 0)
            out->job_created_at = strtod(v, NULL);
        else if (strcmp(f, "attempt") == 0)
            out->attempt = atoi(v);
    }
}

int ig_progress_get(ig_progress *p, long long job_id, ig_progress_info *out,
                    ig_err *err)
{
    char key[64];
    const char *argv[2] = {"HGETALL", key};
    redisReply *r = NULL;
    entry *e;
    int rc = IG_OK;

    snprintf(key, sizeof(key), IG_PROGRESS_KEY_PREFIX "%lld", job_id);
    pthread_mutex_lock(&p->mu);
    if (p->backend == IG_PROGRESS_REDIS) {
        r = command(p->rc, 2, argv);
        if (r != NULL && r->type == REDIS_REPLY_ARRAY) {
            if (r->elements == 0)
                rc = ig_err_set(err, IG_NOTFOUND, "no progress for job %lld",
                                job_id);
            else
                info_from_hash(r, out);
            goto out;
        }
        fall_back(p, r == NULL                      ? p->rc->errstr
                     : r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "bad reply");
    }
    purge_expired(p, now_epoch());
    e = find(p, job_id);
    if (e != NULL)
        *out = e->info;
    else
        rc = ig_err_set(err, IG_NOTFOUND, "no progress for job %lld", job_id);
out:
    pthread_mutex_unlock(&p->mu);
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

ig_progress_backend ig_progress_check(ig_progress *p)
{
    const char *argv[1] = {"PING"};
    ig_progress_backend b;
    redisReply *r = NULL;

    pthread_mutex_lock(&p->mu);
    if (p->backend == IG_PROGRESS_REDIS) {
        r = command(p->rc, 1, argv);
        if (r == NULL || r->type == REDIS_REPLY_ERROR)
            fall_back(p, r == NULL ? p->rc->errstr : r->str);
    }
    b = p->backend;
    pthread_mutex_unlock(&p->mu);
    if (r != NULL)
        freeReplyObject(r);
    return b;
}

ig_progress_backend ig_progress_active(ig_progress *p)
{
    ig_progress_backend b;

    pthread_mutex_lock(&p->mu);
    b = p->backend;
    pthread_mutex_unlock(&p->mu);
    return b;
}

void ig_progress_get_stats(ig_progress *p, ig_progress_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->backend = p->backend;
    out->fallbacks = p->fallbacks;
    out->reconnects = p->reconnects;
    out->memory_jobs = p->n;
    pthread_mutex_unlock(&p->mu);
}
