/*
 * db.h - thin helpers over libpq shared by every module that talks to
 * PostgreSQL: connecting, running a command, and turning a failed result
 * into an ig_err classified by SQLSTATE.
 *
 * Classification: connection loss (class 08 or a dead PGconn), admin or
 * crash shutdown (57P01..57P03), too many connections (53300), serialization
 * failure (40001) and deadlock (40P01) are IG_DB_RETRY: retry the work on a
 * fresh connection. Everything else is IG_DB: report it.
 *
 * No function here logs or returns the conninfo: it may hold a password.
 */
#ifndef IG_DB_H
#define IG_DB_H

#include <libpq-fe.h>

#include "err.h"

/* Open a connection (NULL conninfo = libpq defaults) with
 * fallback_application_name=ingot and TCP keepalives (the
 * conninfo's own settings win). IG_OK and *out set (owned, PQfinish()), or
 * IG_DB_RETRY with *err naming the failure; *out is NULL then. */
int ig_db_connect(const char *conninfo, PGconn **out, ig_err *err)
    IG_MUSTCHECK;

/* ig_db_connect with a host that does not answer given up on after
 * timeout_s seconds (libpq's connect_timeout; at least 2) instead of 10. */
int ig_db_connect_within(const char *conninfo, int timeout_s, PGconn **out,
                         ig_err *err) IG_MUSTCHECK;

/* ig_db_connect_within, made step by step so that stop(ud) (may be NULL)
 * ends the attempt within about 20 ms of asking: an attempt waiting on a
 * server that does not answer can be given up. IG_DB_RETRY when stopped.
 * A conninfo naming several hosts is connected the blocking way (libpq
 * moves to the next host on a timeout only there), deaf to stop. */
int ig_db_connect_until(const char *conninfo, int timeout_s,
                        int (*stop)(const void *), const void *ud,
                        PGconn **out, ig_err *err) IG_MUSTCHECK;

/* Whether ig_db_connect_until can hear stop for this conninfo (valid,
 * one host). */
int ig_db_connect_stoppable(const char *conninfo);

/* 1 when sqlstate (may be NULL) names a transient failure, else 0. */
int ig_db_sqlstate_transient(const char *sqlstate);

/* The transient SQLSTATEs (class 08 aside), NULL-terminated; static. */
const char *const *ig_db_transient_states(void);

/* Fill *err from a failed result (res may be NULL: then the connection's
 * message is used) with the formatted context first, the server message,
 * and SQLSTATE / constraint / table when present. Returns IG_DB or
 * IG_DB_RETRY by the rules above. */
int ig_db_err(ig_err *err, PGconn *conn, const PGresult *res,
              const char *fmt, ...) IG_PRINTF(4, 5);

/* Run sql (no parameters, may hold several statements); IG_OK when the
 * last result is COMMAND_OK or TUPLES_OK, else the ig_db_err() code with
 * "what" as context. */
int ig_db_exec(PGconn *conn, const char *sql, const char *what, ig_err *err)
    IG_MUSTCHECK;

/* ig_db_exec, but a server that gives no answer within timeout_ms (a
 * frozen host or network) is IG_DB_RETRY: the connection is then in an
 * unknown state, the caller drops it. */
int ig_db_exec_within(PGconn *conn, const char *sql, long timeout_ms,
                      const char *what, ig_err *err) IG_MUSTCHECK;

/* ig_db_exec_within, given up within about 20 ms once stop(ud) (may be
 * NULL) says so: IG_DB_RETRY, the connection then in an unknown state. */
int ig_db_exec_until(PGconn *conn, const char *sql, long timeout_ms,
                     int (*stop)(const void *), const void *ud,
                     const char *what, ig_err *err) IG_MUSTCHECK;

/* Run a parameterised query returning rows (text params and results).
 * IG_OK and *out (owned, PQclear()) or an error code. */
int ig_db_query(PGconn *conn, const char *sql, int nparams,
                const char *const *params, PGresult **out, const char *what,
                ig_err *err) IG_MUSTCHECK;

/* Quote an identifier ("my ""table""") into an owned string; a
 * schema-qualified "a.b" must be split by the caller. Aborts on OOM. */
char *ig_db_quote_ident(const char *ident);

#endif /* IG_DB_H */
