/*
 * pool.c - pooled libpq connections; see pool.h.
 */
#include "pool.h"
#include "clock.h"

#include "db.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ig_pool_conn {
    PGconn *pg;
    unsigned long long tag;
    struct ig_pool_conn *next; /* idle list link */
};

struct ig_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *conninfo;
    int size;
    int open;                /* connections open (idle + borrowed) */
    int connect_timeout_ms;
    long statement_timeout_ms;
    long idle_tx_timeout_ms;
    int interrupted;         /* see ig_pool_interrupt; guarded by mu */
    ig_pool_conn *idle;
};

ig_pool *ig_pool_new(const ig_pool_opts *opts, ig_err *err)
{
    ig_pool *p;

    if (opts->size < 1)
        return ig_err_set(err, IG_CONFIG, "pool size must be >= 1"), NULL;
    p = ig_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->conninfo = ig_xstrdup(opts->conninfo ? opts->conninfo : "");
    p->size = opts->size;
    p->connect_timeout_ms = opts->connect_timeout_ms > 0
                                ? opts->connect_timeout_ms
                                : 30000;
    p->statement_timeout_ms = opts->statement_timeout_ms;
    p->idle_tx_timeout_ms =
        opts->idle_tx_timeout_ms > 0 ? opts->idle_tx_timeout_ms : 60000;
    return p;
}

void ig_pool_free(ig_pool *p)
{
    ig_pool_conn *c, *next;

    if (p == NULL)
        return;
    for (c = p->idle; c; c = next) {
        next = c->next;
        PQfinish(c->pg);
        free(c);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->conninfo);
    free(p);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int is_interrupted(ig_pool *p)
{
    int v;

    pthread_mutex_lock(&p->mu);
    v = p->interrupted;
    pthread_mutex_unlock(&p->mu);
    return v;
}

void ig_pool_interrupt(ig_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->interrupted = 1;
    pthread_mutex_unlock(&p->mu);
}

/* Whether the caller's stop(ud) asks to give up (NULL stop: never). */
static int stopped(int (*stop)(const void *), const void *ud)
{
    return stop != NULL && stop(ud);
}

/* Sleep ms, in steps of at most 100 ms, returning early once the pool is
 * interrupted or stop(ud) asks to stop. */
static void nap(ig_pool *p, long ms, int (*stop)(const void *),
                const void *ud)
{
    while (ms > 0 && !is_interrupted(p) && !stopped(stop, ud)) {
        sleep_ms(ms > 100 ? 100 : ms);
        ms -= 100;
    }
}

/* Open and prepare one connection, retrying transient failures with
 * backoff within the pool's budget (not once interrupted, nor once
 * stop(ud) says so). Called without the lock held. */
static int open_conn(ig_pool *p, PGconn **out,
                     int (*stop)(const void *), const void *ud, ig_err *err)
{
    long long deadline = ig_clock_ms() + p->connect_timeout_ms;
    long delay = 100;
    char setup[200];
    int rc;

    snprintf(setup, sizeof(setup),
             "SET statement_timeout = %ld; "
             "SET idle_in_transaction_session_timeout = %ld; "
             "SET client_min_messages = warning",
             p->statement_timeout_ms, p->idle_tx_timeout_ms);
    for (;;) {
        /* An attempt at a host that does not answer ends within what is
         * left of the budget (2-10 s; libpq's own bound). */
        long long left = deadline - ig_clock_ms();
        rc = ig_db_connect_within(p->conninfo,
                                  left >= 10000 ? 10 : (int)(left / 1000),
                                  out, err);
        if (rc == IG_OK) {
            rc = ig_db_exec(*out, setup, "preparing the session", err);
            if (rc == IG_OK)
                return IG_OK;
            PQfinish(*out);
            *out = NULL;
        }
        if (rc != IG_DB_RETRY || ig_clock_ms() + delay > deadline ||
            is_interrupted(p) || stopped(stop, ud))
            return rc;
        ig_log(IG_LOG_WARN, "pool: %s; retrying in %ld ms",
               err ? err->msg : "connect failed", delay);
        nap(p, delay, stop, ud);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
}

/* Whether an idle connection may still be used. An idle connection has
 * nothing to say: readable means the server ended it (a terminated
 * backend, a restart, idle_session_timeout send their goodbye and close)
 * or broke protocol, and its next query would fail. */
static int idle_alive(PGconn *pg)
{
    struct pollfd pfd;
    int rc;

    if (PQstatus(pg) != CONNECTION_OK)
        return 0;
    pfd.fd = PQsocket(pg);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0)
        return 0;
    while ((rc = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
        ;
    return rc == 0;
}

int ig_pool_acquire(ig_pool *p, ig_pool_conn **out, ig_err *err)
{
    return ig_pool_acquire_while(p, NULL, NULL, out, err);
}

int ig_pool_acquire_while(ig_pool *p, int (*stop)(const void *),
                          const void *ud, ig_pool_conn **out, ig_err *err)
{
    ig_pool_conn *c = NULL;
    PGconn *pg = NULL;
    int rc;

    *out = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->idle == NULL && p->open >= p->size)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->idle == NULL)
            break;
        c = p->idle;
        p->idle = c->next;
        c->next = NULL;
        if (idle_alive(c->pg)) {
            pthread_mutex_unlock(&p->mu);
            *out = c;
            return IG_OK;
        }
        /* Dropped while idle: close it and look again (its slot is free
         * for a new connection now, for us or a waiter). */
        p->open--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        ig_log(IG_LOG_INFO, "pool: an idle connection was closed by the "
                            "server; opening another");
        PQfinish(c->pg);
        free(c);
        c = NULL;
        pthread_mutex_lock(&p->mu);
    }
    p->open++; /* reserve the slot, then connect without the lock */
    pthread_mutex_unlock(&p->mu);

    rc = open_conn(p, &pg, stop, ud, err);
    if (rc != IG_OK) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    c = ig_xcalloc(1, sizeof(*c));
    c->pg = pg;
    *out = c;
    return IG_OK;
}

void ig_pool_release(ig_pool *p, ig_pool_conn *c, int how)
{
    if (c == NULL)
        return;
    if (how == IG_POOL_KEEP &&
        (PQstatus(c->pg) != CONNECTION_OK ||
         PQtransactionStatus(c->pg) != PQTRANS_IDLE))
        how = IG_POOL_DISCARD;
    pthread_mutex_lock(&p->mu);
    if (how == IG_POOL_DISCARD) {
        p->open--;
        pthread_mutex_unlock(&p->mu);
        PQfinish(c->pg);
        free(c);
        pthread_mutex_lock(&p->mu);
    } else {
        c->next = p->idle;
        p->idle = c;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

PGconn *ig_pool_conn_pg(const ig_pool_conn *c)
{
    return c->pg;
}

unsigned long long ig_pool_conn_tag(const ig_pool_conn *c)
{
    return c->tag;
}

void ig_pool_conn_set_tag(ig_pool_conn *c, unsigned long long tag)
{
    c->tag = tag;
}
