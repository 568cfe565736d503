/*
 * pool.h - pooled libpq connections for the upsert executor.
 *
 * A pool keeps up to opts.size open PGconn to one database. Callers borrow
 * one with ig_pool_acquire() and give it back with ig_pool_release() on
 * every path. A connection that failed is released with IG_POOL_DISCARD and
 * reopened lazily by a later acquire. Opening a connection retries with
 * exponential backoff (100 ms doubling, capped at 2 s) for up to
 * opts.connect_timeout_ms, so a server that is briefly unreachable delays
 * an import instead of failing it.
 *
 * Every new connection gets the session settings an import needs:
 * statement_timeout, application_name, and client_min_messages=warning.
 * All functions are thread-safe (one mutex + condition variable inside); a
 * borrowed connection belongs to the borrowing thread until released.
 */
#ifndef IG_POOL_H
#define IG_POOL_H

#include <libpq-fe.h>

#include "err.h"

typedef struct ig_pool ig_pool;           /* opaque */
typedef struct ig_pool_conn ig_pool_conn; /* opaque; one borrowed conn */

typedef struct ig_pool_opts {
    const char *conninfo;       /* copied; never logged (may hold a password) */
    int size;                   /* max open connections, >= 1 */
    int connect_timeout_ms;     /* total retry budget per open; 0 = 30000 */
    long statement_timeout_ms;  /* 0 = none */
    long idle_tx_timeout_ms;    /* idle_in_transaction_session_timeout:
                                   the server ends a session that sits in a
                                   transaction that long (a client frozen
                                   with its row locks: SIGSTOP, a paused VM,
                                   a half-open network), and its batch is
                                   retried; 0 = 60000 */
} ig_pool_opts;

enum { IG_POOL_KEEP = 0, IG_POOL_DISCARD = 1 };

/* Create a pool; opens no connection yet. Owned; NULL with *err. */
ig_pool *ig_pool_new(const ig_pool_opts *opts, ig_err *err) IG_MUSTCHECK;

/* Close all idle connections, give up a background one (ig_pool_unwarm),
 * and free. Every borrowed connection must have been released. NULL is a
 * no-op. */
void ig_pool_free(ig_pool *p);

/* Borrow a connection, opening one if none is idle and the pool is below
 * size (waiting for a release otherwise). An idle connection the server
 * has closed meanwhile (a terminated backend, a restart) is dropped, not
 * handed out. IG_OK with *out set, or IG_DB_RETRY when no connection could
 * be opened within the budget. */
int ig_pool_acquire(ig_pool *p, ig_pool_conn **out, ig_err *err)
    IG_MUSTCHECK;

/* ig_pool_acquire, but opening a connection is not retried (and a wait
 * between tries is cut short, within 100 ms) once stop(ud) returns
 * non-zero: a run that is canceled or out of time gives up on a database
 * that is down instead of waiting out the budget. stop may be NULL. */
int ig_pool_acquire_while(ig_pool *p, int (*stop)(const void *),
                          const void *ud, ig_pool_conn **out,
                          ig_err *err) IG_MUSTCHECK;

/* Start opening one connection in the background when the pool has no
 * idle one and room for one, so that an import's connection is made
 * while it reads its input. The next acquire that finds no idle
 * connection takes it (waiting for it if it is not ready, unless its
 * stop says so); one attempt, and if it failed transiently that acquire
 * opens one as usual, within its own budget. Not for a conninfo naming
 * several hosts, in it or in PGHOST (the attempt could not be given up).
 * Thread-safe. */
void ig_pool_warm(ig_pool *p);

/* Give up a background connection nobody took (see ig_pool_warm): its
 * attempt is stopped and waited for (about 20 ms), so the program may
 * exit at once. ig_pool_free does the same. Thread-safe. */
void ig_pool_unwarm(ig_pool *p);

/* ig_pool_acquire, but waiting at most wait_ms for a connection to come
 * free when all are borrowed: IG_TIMEOUT then. (Opening one, when there
 * is room, takes the pool's own budget.) */
int ig_pool_acquire_for(ig_pool *p, long wait_ms, ig_pool_conn **out,
                        ig_err *err) IG_MUSTCHECK;

/* From now on a connection that cannot be opened is not retried: the
 * owner is stopping, and waiting out the budget for a database that is
 * down would only hold the stop up. Thread-safe. */
void ig_pool_interrupt(ig_pool *p);

/* ig_pool_acquire_while, remembering owner (not NULL) as the borrower
 * until the connection is released, for ig_pool_abort_owned. */
int ig_pool_acquire_owned(ig_pool *p, const void *owner,
                          int (*stop)(const void *), const void *ud,
                          ig_pool_conn **out, ig_err *err) IG_MUSTCHECK;

/* How many of the connections owner has borrowed right now have heard
 * nothing from their server for longer than the pool's statement_timeout
 * plus grace_ms: a server running a statement would have answered or
 * cancelled it by then, so one that owes an answer is stopped or stuck
 * (over TCP, measured from the last byte received; on a Unix socket,
 * from the borrowing). Thread-safe. */
int ig_pool_silent_owned(ig_pool *p, const void *owner, long grace_ms);

/* Shut down the socket (shutdown(2), SHUT_RDWR) of those connections (all
 * of owner's when grace_ms < 0), so that a thread waiting in libpq gets
 * "connection lost" at once and handles it like any lost connection. The
 * pool's other borrowers are not touched. Returns how many were shut
 * down. Thread-safe. */
int ig_pool_abort_owned(ig_pool *p, const void *owner, long grace_ms);

/* Give back a borrowed connection; how = IG_POOL_KEEP or IG_POOL_DISCARD.
 * A connection in a bad state or inside a transaction is discarded
 * regardless. NULL c is a no-op. */
void ig_pool_release(ig_pool *p, ig_pool_conn *c, int how);

/* Borrowed: valid until ig_pool_release(). Never PQfinish() it. */
PGconn *ig_pool_conn_pg(const ig_pool_conn *c);

/* A per-connection integer the executor uses to remember which stage
 * table it created on this connection (0 = none). */
unsigned long long ig_pool_conn_tag(const ig_pool_conn *c);
void ig_pool_conn_set_tag(ig_pool_conn *c, unsigned long long tag);

#endif /* IG_POOL_H */
