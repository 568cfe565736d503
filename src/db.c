/*
 * db.c - libpq helpers: connect, exec, SQLSTATE classification.
 */
#include "db.h"
#include "clock.h"
#include "log.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The SQLSTATEs a batch is retried after (besides class 08). */
static const char *const transient_states[] = {
    "40001", /* serialization_failure */
    "40P01", /* deadlock_detected */
    "53300", /* too_many_connections */
    "57P01", /* admin_shutdown */
    "57P02", /* crash_shutdown */
    "57P03", /* cannot_connect_now */
    "57014", /* query_canceled: statement_timeout, e.g. an application
                holding row locks longer; never a row's fault */
    "55P03", /* lock_not_available (lock_timeout) */
    NULL,
};

const char *const *ig_db_transient_states(void)
{
    return transient_states;
}

int ig_db_sqlstate_transient(const char *s)
{
    if (s == NULL)
        return 0;
    if (strncmp(s, "08", 2) == 0) /* connection_exception class */
        return 1;
    for (int i = 0; transient_states[i]; i++)
        if (strcmp(s, transient_states[i]) == 0)
            return 1;
    return 0;
}

/* Copy a libpq message without its trailing newline. */
static void chomp_into(char *dst, size_t n, const char *src)
{
    size_t len;

    snprintf(dst, n, "%s", src ? src : "");
    len = strlen(dst);
    while (len > 0 && (dst[len - 1] == '\n' || dst[len - 1] == ' '))
        dst[--len] = '\0';
}

int ig_db_err(ig_err *err, PGconn *conn, const PGresult *res,
              const char *fmt, ...)
{
    char ctx[256], msg[600], extra[256] = "";
    const char *state = NULL, *constraint = NULL, *table = NULL;
    int code;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);

    if (res != NULL) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
        chomp_into(msg, sizeof(msg), PQresultErrorMessage(res));
    } else {
        msg[0] = '\0';
    }
    if (msg[0] == '\0' && conn != NULL)
        chomp_into(msg, sizeof(msg), PQerrorMessage(conn));
    if (msg[0] == '\0')
        snprintf(msg, sizeof(msg), "unknown failure");

    if (state || constraint || table)
        snprintf(extra, sizeof(extra), " [%s%s%s%s%s%s]",
                 state ? "SQLSTATE " : "", state ? state : "",
                 table ? " table " : "", table ? table : "",
                 constraint ? " constraint " : "",
                 constraint ? constraint : "");

    code = IG_DB;
    if (ig_db_sqlstate_transient(state) ||
        (conn != NULL && PQstatus(conn) == CONNECTION_BAD))
        code = IG_DB_RETRY;
    return ig_err_set(err, code, "%s: %s%s", ctx, msg, extra);
}

/* libpq's notice processor: what the server says outside a query's
 * result (a WARNING, or the FATAL of a backend being terminated) goes
 * through ingot's log, with its level and time, not bare to stderr. */
static void log_notice(void *arg, const char *message)
{
    char msg[600];

    (void)arg;
    chomp_into(msg, sizeof(msg), message);
    for (char *p = msg; *p; p++) /* DETAIL / HINT: one log line */
        if (*p == '\n')
            *p = ' ';
    ig_log(IG_LOG_WARN, "postgres: %s", msg);
}

int ig_db_connect(const char *conninfo, PGconn **out, ig_err *err)
{
    return ig_db_connect_within(conninfo, 10, out, err);
}

/* A malformed URL is a setting error, not a transient one, and libpq's
 * message may quote a piece of it (a password): say it without it.
 * *several: the conninfo names more than one host (or address). */
static int check_conninfo(const char *conninfo, int *several, ig_err *err)
{
    PQconninfoOption *parsed;
    char *perr = NULL;

    *several = 0;
    if (conninfo == NULL || conninfo[0] == '\0')
        conninfo = "";
    parsed = PQconninfoParse(conninfo, &perr);
    PQfreemem(perr);
    if (parsed == NULL)
        return ig_err_set(err, IG_CONFIG,
                          "DATABASE_URL is not a valid PostgreSQL URL "
                          "or conninfo string (check its quoting and "
                          "%%-escapes)");
    for (PQconninfoOption *o = parsed; o->keyword; o++) {
        const char *v = o->val;
        /* Unset here, libpq takes PGHOST / PGHOSTADDR. */
        if (v == NULL && strcmp(o->keyword, "host") == 0)
            v = getenv("PGHOST");
        else if (v == NULL && strcmp(o->keyword, "hostaddr") == 0)
            v = getenv("PGHOSTADDR");
        if ((strcmp(o->keyword, "host") == 0 ||
             strcmp(o->keyword, "hostaddr") == 0) &&
            v != NULL && strchr(v, ',') != NULL)
            *several = 1;
    }
    PQconninfoFree(parsed);
    return IG_OK;
}

/* The connection c (owned) made or not: *out, or why not. */
static int connected(PGconn *c, PGconn **out, ig_err *err)
{
    if (c == NULL)
        return ig_err_set(err, IG_NOMEM, "cannot allocate a connection");
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[600];
        /* A refused password, a database or role that does not exist, a
         * setting libpq refuses ("invalid sslmode value", "invalid integer
         * value .. for connection option") or an SSL requirement the
         * server cannot meet will not get better by retrying (a server
         * still starting up says so with another message); nor will a
         * server's refusal of the start-up options (an unknown setting or
         * a bad value in `options`), of the role's access to the database
         * (no CONNECT privilege) or of the client's address (pg_hba). */
        const char *m = PQerrorMessage(c);
        int permanent = (PQconnectionUsedPassword(c) &&
                         strstr(m, "password") != NULL) ||
                        strstr(m, "does not exist") != NULL ||
                        (strstr(m, "invalid ") != NULL &&
                         strstr(m, " value") != NULL) ||
                        strstr(m, "SSL was required") != NULL ||
                        strstr(m, "unrecognized configuration parameter") !=
                            NULL ||
                        strstr(m, "permission denied for database") != NULL ||
                        strstr(m, "no pg_hba.conf entry") != NULL;
        chomp_into(msg, sizeof(msg), PQerrorMessage(c));
        PQfinish(c);
        return ig_err_set(err, permanent ? IG_DB : IG_DB_RETRY,
                          "cannot connect to PostgreSQL: %s", msg);
    }
    PQsetNoticeProcessor(c, log_notice, NULL);
    *out = c;
    return IG_OK;
}

/* Keepalives and a TCP user timeout notice a peer that vanished (host
 * down, network cut) instead of waiting on the socket forever, and a
 * connect_timeout bounds an attempt at a host that does not answer (the
 * kernel's own SYN retries take two minutes). The conninfo's own
 * settings win: dbname (the expanded URL or conninfo) comes last, and
 * later parameters override earlier ones; expand_dbname=1 lets it carry
 * a full URL or conninfo string. timeout: room for the seconds. */
#define CONNECT_KEYWORDS                                                     \
    {"fallback_application_name", "keepalives", "keepalives_idle",           \
     "keepalives_interval", "keepalives_count", "tcp_user_timeout",          \
     "connect_timeout", "dbname", NULL}
#define CONNECT_VALUES(timeout, conninfo)                                    \
    {"ingot", "1", "30", "10", "3", "60000", timeout,                        \
     (conninfo) ? (conninfo) : "", NULL}

int ig_db_connect_within(const char *conninfo, int timeout_s, PGconn **out,
                         ig_err *err)
{
    char timeout[16];
    const char *kw[] = CONNECT_KEYWORDS;
    const char *vals[] = CONNECT_VALUES(timeout, conninfo);
    int several, rc;

    snprintf(timeout, sizeof(timeout), "%d", timeout_s > 2 ? timeout_s : 2);
    *out = NULL;
    if ((rc = check_conninfo(conninfo, &several, err)) != IG_OK)
        return rc;
    return connected(PQconnectdbParams(kw, vals, 1), out, err);
}

int ig_db_connect_stoppable(const char *conninfo)
{
    int several = 0;

    return check_conninfo(conninfo, &several, NULL) == IG_OK && !several;
}

int ig_db_connect_until(const char *conninfo, int timeout_s,
                        int (*stop)(const void *), const void *ud,
                        PGconn **out, ig_err *err)
{
    char timeout[16];
    const char *kw[] = CONNECT_KEYWORDS;
    const char *vals[] = CONNECT_VALUES(timeout, conninfo);
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    long long deadline;
    int several, rc;
    PGconn *c;

    if (timeout_s < 2)
        timeout_s = 2;
    snprintf(timeout, sizeof(timeout), "%d", timeout_s);
    *out = NULL;
    if ((rc = check_conninfo(conninfo, &several, err)) != IG_OK)
        return rc;
    if (several) /* libpq tries the next host only in its own loop */
        return connected(PQconnectdbParams(kw, vals, 1), out, err);
    deadline = ig_clock_ms() + 1000LL * timeout_s;
    c = PQconnectStartParams(kw, vals, 1);
    while (c != NULL && PQstatus(c) != CONNECTION_BAD &&
           st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {PQsocket(c), 0, 0};
        long long left = deadline - ig_clock_ms();
        int ready;
        if (stop != NULL && stop(ud)) {
            PQfinish(c);
            return ig_err_set(err, IG_DB_RETRY, "cannot connect to "
                              "PostgreSQL: given up (stopped)");
        }
        if (left <= 0) {
            rc = ig_err_set(err, IG_DB_RETRY, "cannot connect to "
                            "PostgreSQL: connection to server at \"%s\", "
                            "port %s failed: timeout expired",
                            PQhost(c) ? PQhost(c) : "",
                            PQport(c) ? PQport(c) : "");
            PQfinish(c);
            return rc;
        }
        pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        ready = poll(&pfd, 1, left < 20 ? (int)left : 20);
        if (ready > 0 || pfd.fd < 0)
            st = PQconnectPoll(c);
    }
    return connected(c, out, err);
}

int ig_db_exec(PGconn *conn, const char *sql, const char *what, ig_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = IG_OK;

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = ig_db_err(err, conn, res, "%s", what);
    PQclear(res);
    return rc;
}

int ig_db_exec_within(PGconn *conn, const char *sql, long timeout_ms,
                      const char *what, ig_err *err)
{
    return ig_db_exec_until(conn, sql, timeout_ms, NULL, NULL, what, err);
}

int ig_db_exec_until(PGconn *conn, const char *sql, long timeout_ms,
                     int (*stop)(const void *), const void *ud,
                     const char *what, ig_err *err)
{
    long long deadline = ig_clock_ms() + timeout_ms;
    PGresult *res, *last = NULL;
    int rc = IG_OK;

    if (!PQsendQuery(conn, sql))
        return ig_db_err(err, conn, NULL, "%s", what);
    /* Every result, and the end of them (which waits for the server's
     * ReadyForQuery), only once it is there: PQgetResult blocks
     * otherwise. */
    for (;;) {
        struct pollfd pfd = {PQsocket(conn), POLLIN, 0};
        long long left;
        if (!PQconsumeInput(conn)) {
            PQclear(last);
            return ig_db_err(err, conn, NULL, "%s", what);
        }
        while (!PQisBusy(conn)) {
            res = PQgetResult(conn);
            if (res == NULL)
                goto done;
            PQclear(last);
            last = res;
        }
        left = deadline - ig_clock_ms();
        if (stop != NULL && stop(ud)) {
            PQclear(last);
            return ig_err_set(err, IG_DB_RETRY, "%s: given up (stopped)",
                              what);
        }
        if (left <= 0 ||
            (poll(&pfd, 1, stop != NULL && left > 20 ? 20 : (int)left) == 0 &&
             ig_clock_ms() >= deadline)) {
            PQclear(last);
            return ig_err_set(err, IG_DB_RETRY, "%s: no answer from "
                              "PostgreSQL within %ld ms", what, timeout_ms);
        }
    }
done:
    if (last == NULL || (PQresultStatus(last) != PGRES_COMMAND_OK &&
                         PQresultStatus(last) != PGRES_TUPLES_OK))
        rc = ig_db_err(err, conn, last, "%s", what);
    PQclear(last);
    return rc;
}

int ig_db_query(PGconn *conn, const char *sql, int nparams,
                const char *const *params, PGresult **out, const char *what,
                ig_err *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL,
                                 NULL, 0);
    ExecStatusType st = PQresultStatus(res);

    *out = NULL;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        int rc = ig_db_err(err, conn, res, "%s", what);
        PQclear(res);
        return rc;
    }
    *out = res;
    return IG_OK;
}

char *ig_db_quote_ident(const char *ident)
{
    size_t n = strlen(ident);
    char *q = ig_xmalloc(2 * n + 3);
    char *p = q;

    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        if (ident[i] == '"')
            *p++ = '"';
        *p++ = ident[i];
    }
    *p++ = '"';
    *p = '\0';
    return q;
}
