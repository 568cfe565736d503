/*
 * pool.c - pooled libpq connections; see pool.h.
 */
#include "pool.h"
#include "clock.h"

#include "db.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct ig_pool_conn {
    PGconn *pg;
    unsigned long long tag;
    struct ig_pool_conn *next; /* idle list link */
    /* While borrowed: the borrowed list's links, and a dup of the socket
     * for ig_pool_abort_owned (a dup, because libpq closes its own
     * descriptor when it finds the connection lost, and the number could
     * then name someone else's file). -1 when not borrowed. */
    struct ig_pool_conn *bprev, *bnext;
    int fd;
    const void *owner; /* ig_pool_acquire_owned's, while borrowed */
    long long lent_ms; /* ig_clock_ms() when borrowed */
};

/* A connection being opened in the background (ig_pool_warm), shared by
 * the pool and the thread opening it, under its own lock; the thread
 * never touches the pool. Whoever lets go last frees it: the acquirer
 * that takes the result (warm_take), the pool that gives it up
 * (warm_release) once the thread is done, or the thread itself when the
 * pool stopped waiting for it (orphaned). */
enum { WARM_RUNNING, WARM_DONE, WARM_ORPHANED };

typedef struct warm {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;
    int abandon;       /* the pool gave it up: stop connecting (atomic) */
    int rc;            /* WARM_DONE: IG_OK with pg, or why not in err */
    PGconn *pg;
    ig_err err;
    char *conninfo;
    char setup[200];
    int timeout_s;
    long long started; /* ig_clock_ms() */
} warm;

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
    ig_pool_conn *borrowed;  /* handed out, not yet released */
    warm *warm;              /* see ig_pool_warm; counted in open */
};

static void warm_release(warm *w);
static int idle_alive(PGconn *pg);

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
    if (p->warm != NULL)
        warm_release(p->warm);
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

static void setup_sql(const ig_pool *p, char *out, size_t size)
{
    snprintf(out, size,
             "SET statement_timeout = %ld; "
             "SET idle_in_transaction_session_timeout = %ld; "
             "SET client_min_messages = warning",
             p->statement_timeout_ms, p->idle_tx_timeout_ms);
}

/* One attempt: connect within timeout_s (given up when stop(ud) says so,
 * if stop is not NULL) and run setup. */
static int connect_once(const char *conninfo, int timeout_s,
                        const char *setup, int (*stop)(const void *),
                        const void *ud, PGconn **out, ig_err *err)
{
    int rc = stop != NULL ? ig_db_connect_until(conninfo, timeout_s, stop,
                                                ud, out, err)
                          : ig_db_connect_within(conninfo, timeout_s, out,
                                                 err);

    if (rc == IG_OK) {
        /* A server that authenticates and then never answers must not
         * hold up giving the attempt up either. */
        rc = stop != NULL
                 ? ig_db_exec_until(*out, setup, 1000L * timeout_s, stop, ud,
                                    "preparing the session", err)
                 : ig_db_exec(*out, setup, "preparing the session", err);
        if (rc != IG_OK) {
            PQfinish(*out);
            *out = NULL;
        }
    }
    return rc;
}

static int warm_take(warm *w, int (*stop)(const void *), const void *ud,
                     PGconn **out, ig_err *err);

/* Open and prepare one connection, retrying transient failures with
 * backoff within the pool's budget, not once interrupted, nor once
 * stop(ud) says so. The first attempt is w's, when not NULL (it may have
 * failed long ago, while the input was slow to come: the budget counts
 * from now all the same). Called without the lock held. */
static int open_conn(ig_pool *p, warm *w, PGconn **out,
                     int (*stop)(const void *), const void *ud, ig_err *err)
{
    long long deadline = ig_clock_ms() + p->connect_timeout_ms;
    long delay = 100;
    char setup[200];
    int rc;

    setup_sql(p, setup, sizeof(setup));
    for (;;) {
        /* An attempt at a host that does not answer ends within what is
         * left of the budget (2-10 s; libpq's own bound). */
        long long left = deadline - ig_clock_ms();
        if (w != NULL) {
            rc = warm_take(w, stop, ud, out, err);
            w = NULL;
        } else {
            rc = connect_once(p->conninfo,
                              left >= 10000 ? 10 : (int)(left / 1000),
                              setup, NULL, NULL, out, err);
        }
        if (rc == IG_OK)
            return IG_OK;
        if (rc != IG_DB_RETRY || ig_clock_ms() + delay > deadline ||
            is_interrupted(p) || stopped(stop, ud))
            return rc;
        ig_log(IG_LOG_WARN, "pool: %s; retrying in %ld ms",
               err ? err->msg : "connect failed", delay);
        nap(p, delay, stop, ud);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
}

static void warm_free(warm *w)
{
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->conninfo);
    free(w);
}

static int warm_stop(const void *ud)
{
    const warm *w = ud;

    return __atomic_load_n(&w->abandon, __ATOMIC_ACQUIRE);
}

static void *warm_main(void *arg)
{
    warm *w = arg;
    PGconn *pg = NULL;
    ig_err err;
    int rc, orphaned;

    ig_err_clear(&err);
    rc = connect_once(w->conninfo, w->timeout_s, w->setup, warm_stop, w,
                      &pg, &err);
    pthread_mutex_lock(&w->mu);
    orphaned = w->state == WARM_ORPHANED;
    w->state = WARM_DONE;
    w->rc = rc;
    w->pg = pg;
    w->err = err;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (orphaned) {
        PQfinish(pg);
        warm_free(w);
    }
    return NULL;
}

/* Give w up: ask its thread to stop connecting and wait for it (about
 * 20 ms, a step of the handshake at most), so that no attempt is left
 * inside libpq, OpenSSL or Kerberos when the program exits and their
 * exit handlers run (a thread inside Kerberos then aborted the process).
 * One stuck longer (a name lookup) is left to free itself. */
static void warm_release(warm *w)
{
    struct timespec until = ig_clock_cond_deadline(2000);
    int done;

    __atomic_store_n(&w->abandon, 1, __ATOMIC_RELEASE);
    pthread_mutex_lock(&w->mu);
    while (w->state == WARM_RUNNING &&
           pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
        ;
    done = w->state == WARM_DONE;
    if (!done)
        w->state = WARM_ORPHANED;
    pthread_mutex_unlock(&w->mu);
    if (done) {
        PQfinish(w->pg);
        warm_free(w);
    }
}

/* The background attempt w's outcome, once it has one; frees w. When
 * stop(ud) (may be NULL) says so (a cancel, the time limit) and the
 * attempt has had a second (a server that answers would have), it is
 * given up instead, as a retry would not be made. A connection the
 * server has closed since is a transient failure. */
static int warm_take(warm *w, int (*stop)(const void *), const void *ud,
                     PGconn **out, ig_err *err)
{
    int rc;

    pthread_mutex_lock(&w->mu);
    while (w->state == WARM_RUNNING) {
        struct timespec until = ig_clock_cond_deadline(20);
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
        if (w->state == WARM_RUNNING && stop != NULL &&
            ig_clock_ms() - w->started >= 1000 && stop(ud)) {
            pthread_mutex_unlock(&w->mu);
            warm_release(w);
            *out = NULL;
            return ig_err_set(err, IG_DB_RETRY, "cannot connect to "
                              "PostgreSQL: given up (stopped)");
        }
    }
    pthread_mutex_unlock(&w->mu);
    rc = w->rc;
    *out = w->pg;
    if (rc != IG_OK && err)
        *err = w->err;
    warm_free(w);
    if (rc == IG_OK && !idle_alive(*out)) {
        PQfinish(*out);
        *out = NULL;
        rc = ig_err_set(err, IG_DB_RETRY, "cannot connect to PostgreSQL: "
                        "the server closed the new connection");
    }
    return rc;
}

void ig_pool_warm(ig_pool *p)
{
    warm *w;
    pthread_t th;
    pthread_attr_t attr;
    int started;

    /* Only where it can be given up at once (see warm_release). */
    if (!ig_db_connect_stoppable(p->conninfo))
        return;
    pthread_mutex_lock(&p->mu);
    started = p->warm == NULL && p->idle == NULL && p->open < p->size &&
              !p->interrupted;
    pthread_mutex_unlock(&p->mu);
    if (!started)
        return;
    w = ig_xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->state = WARM_RUNNING;
    w->conninfo = ig_xstrdup(p->conninfo);
    setup_sql(p, w->setup, sizeof(w->setup));
    w->started = ig_clock_ms();
    w->timeout_s = p->connect_timeout_ms >= 10000
                       ? 10
                       : p->connect_timeout_ms / 1000;
    /* Detached: an attempt given up but stuck longer than warm_release
     * waits (a name lookup) finishes and frees itself on its own. */
    started = pthread_attr_init(&attr) == 0;
    if (started) {
        started = pthread_attr_setdetachstate(&attr,
                                              PTHREAD_CREATE_DETACHED) == 0 &&
                  pthread_create(&th, &attr, warm_main, w) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        warm_free(w);
        return;
    }
    pthread_mutex_lock(&p->mu);
    if (p->warm == NULL && p->open < p->size) {
        p->warm = w;
        p->open++;
        w = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (w != NULL) /* another thread opened one meanwhile */
        warm_release(w);
}

void ig_pool_unwarm(ig_pool *p)
{
    warm *w;

    pthread_mutex_lock(&p->mu);
    w = p->warm;
    p->warm = NULL;
    if (w != NULL) {
        p->open--;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    if (w != NULL)
        warm_release(w);
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

/* Put c on the borrowed list. Under p->mu. */
static void lend(ig_pool *p, ig_pool_conn *c, const void *owner)
{
    int fd = PQsocket(c->pg);

    c->owner = owner;
    c->lent_ms = ig_clock_ms();
    c->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    c->bprev = NULL;
    c->bnext = p->borrowed;
    if (p->borrowed)
        p->borrowed->bprev = c;
    p->borrowed = c;
}

/* Take c off the borrowed list. Under p->mu. */
static void unlend(ig_pool *p, ig_pool_conn *c)
{
    if (c->bprev)
        c->bprev->bnext = c->bnext;
    else
        p->borrowed = c->bnext;
    if (c->bnext)
        c->bnext->bprev = c->bprev;
    c->bprev = c->bnext = NULL;
    c->owner = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* How long the server of c has sent nothing, in ms: over TCP, since the
 * last data received (TCP_INFO); elsewhere (a Unix socket), since c was
 * borrowed. Under p->mu. */
static long long silence_ms(const ig_pool_conn *c, long long now)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= sizeof(ti))
        return (long long)ti.tcpi_last_data_recv;
    return now - c->lent_ms;
}

/* Whether the server of c has been silent too long: longer than its
 * statement_timeout, which it would have enforced, plus grace_ms. */
static int silent(const ig_pool *p, const ig_pool_conn *c, long grace_ms,
                  long long now)
{
    return c->fd >= 0 &&
           silence_ms(c, now) >= (long long)p->statement_timeout_ms + grace_ms;
}

/* Owner's borrowed connections, all of them (grace_ms < 0) or the silent
 * ones; shut down when shut. How many. */
static int owned(ig_pool *p, const void *owner, long grace_ms, int shut)
{
    long long now = ig_clock_ms();
    int n = 0;

    if (owner == NULL)
        return 0;
    pthread_mutex_lock(&p->mu);
    for (ig_pool_conn *c = p->borrowed; c; c = c->bnext) {
        if (c->owner != owner || c->fd < 0 ||
            (grace_ms >= 0 && !silent(p, c, grace_ms, now)))
            continue;
        if (!shut || shutdown(c->fd, SHUT_RDWR) == 0)
            n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

int ig_pool_silent_owned(ig_pool *p, const void *owner, long grace_ms)
{
    return owned(p, owner, grace_ms < 0 ? 0 : grace_ms, 0);
}

int ig_pool_abort_owned(ig_pool *p, const void *owner, long grace_ms)
{
    return owned(p, owner, grace_ms, 1);
}

/* The end of an acquire that reserved a slot in open and tried to fill
 * it: hand out pg, or give the slot back. */
static int opened(ig_pool *p, int rc, PGconn *pg, const void *owner,
                  ig_pool_conn **out)
{
    ig_pool_conn *c;

    if (rc != IG_OK) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    c = ig_xcalloc(1, sizeof(*c));
    c->pg = pg;
    pthread_mutex_lock(&p->mu);
    lend(p, c, owner);
    pthread_mutex_unlock(&p->mu);
    *out = c;
    return IG_OK;
}

int ig_pool_acquire(ig_pool *p, ig_pool_conn **out, ig_err *err)
{
    return ig_pool_acquire_while(p, NULL, NULL, out, err);
}

/* ig_pool_acquire_while; with wait_ms >= 0, waiting that long at most
 * for a connection to come free (IG_TIMEOUT). */
static int acquire(ig_pool *p, const void *owner, int (*stop)(const void *),
                   const void *ud, long wait_ms, ig_pool_conn **out,
                   ig_err *err)
{
    ig_pool_conn *c = NULL;
    PGconn *pg = NULL;
    struct timespec until;
    int rc;

    *out = NULL;
    if (wait_ms >= 0)
        until = ig_clock_cond_deadline(wait_ms);
    pthread_mutex_lock(&p->mu);
    if (p->warm != NULL && p->idle == NULL) {
        warm *w = p->warm;
        p->warm = NULL; /* its slot in open is ours now */
        pthread_mutex_unlock(&p->mu);
        rc = open_conn(p, w, &pg, stop, ud, err);
        return opened(p, rc, pg, owner, out);
    }
    for (;;) {
        while (p->idle == NULL && p->open >= p->size) {
            if (wait_ms < 0) {
                pthread_cond_wait(&p->cv, &p->mu);
            } else if (pthread_cond_timedwait(&p->cv, &p->mu, &until) ==
                           ETIMEDOUT &&
                       p->idle == NULL && p->open >= p->size) {
                pthread_mutex_unlock(&p->mu);
                return ig_err_set(err, IG_TIMEOUT, "all %d connections of "
                                  "the pool are in use", p->size);
            }
        }
        if (p->idle == NULL)
            break;
        c = p->idle;
        p->idle = c->next;
        c->next = NULL;
        if (idle_alive(c->pg)) {
            lend(p, c, owner);
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
    rc = open_conn(p, NULL, &pg, stop, ud, err);
    return opened(p, rc, pg, owner, out);
}

int ig_pool_acquire_while(ig_pool *p, int (*stop)(const void *),
                          const void *ud, ig_pool_conn **out, ig_err *err)
{
    return acquire(p, NULL, stop, ud, -1, out, err);
}

int ig_pool_acquire_owned(ig_pool *p, const void *owner,
                          int (*stop)(const void *), const void *ud,
                          ig_pool_conn **out, ig_err *err)
{
    return acquire(p, owner, stop, ud, -1, out, err);
}

int ig_pool_acquire_for(ig_pool *p, long wait_ms, ig_pool_conn **out,
                        ig_err *err)
{
    return acquire(p, NULL, NULL, NULL, wait_ms < 0 ? 0 : wait_ms, out, err);
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
    unlend(p, c);
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
