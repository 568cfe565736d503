/*
 * http.h - the HTTP API that `ingot worker` serves (libmicrohttpd + jansson).
 *
 * Routes (docs/api.md has examples): POST /api/imports/<pipeline> (CSV or
 * JSON rows; run synchronously below IMPORT_BACKGROUND_THRESHOLD rows and
 * answered 200 with the results, else queued and answered 202),
 * GET /api/imports/<id>/progress, GET /api/imports/<id>/results,
 * POST /api/imports/<id>/cancel, GET /api/imports/jobs, GET /healthz
 * (no auth) and GET /metrics. Every route but /healthz needs
 * "Authorization: Bearer <INGOT_API_TOKEN>" (compared in constant time).
 * Errors are {"error": {"code": "...", "message": "..."}} with the status
 * that fits (400, 401, 404, 409, 413, 415, 422, 503).
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded by
 * IG_HTTP_MAX_CONNECTIONS, and per client address). Request threads share one ig_pool (queue calls
 * and synchronous imports) and the thread-safe progress store; a
 * synchronous import builds its own Lua state on the request thread.
 * Nothing here logs the token, conninfo or row values.
 */
#ifndef IG_HTTP_H
#define IG_HTTP_H

#include "conf.h"
#include "err.h"
#include "progress.h"
#include "worker.h"

#define IG_HTTP_MAX_CONNECTIONS 64
/* One client address may hold at most half of them, so a client that
 * opens connections and trickles bytes cannot take /healthz's slots. */
#define IG_HTTP_MAX_CONNECTIONS_PER_IP 32
/* A connection idle this long (no byte read or written) is closed. */
#define IG_HTTP_IDLE_TIMEOUT_S 30

typedef struct ig_http ig_http; /* opaque */

typedef struct ig_http_opts {
    const ig_conf *conf;      /* borrowed; must outlive the server (limits,
                                 database URL, threshold) */
    const char *listen;       /* copied; "HOST:PORT" (PORT 0 = any free) */
    const char *token;        /* copied; required, never logged */
    const char *pipeline_dir; /* copied */
    ig_progress *progress;    /* borrowed, shared */
    ig_worker *worker;        /* borrowed; NULL = no worker in this process
                                 (its metrics are left out) */
} ig_http_opts;

/* Bind and start serving. Owned server (ig_http_free), or NULL with *err:
 * IG_USAGE for a bad listen address or missing token, IG_IO when the
 * address cannot be bound. */
ig_http *ig_http_start(const ig_http_opts *opts, ig_err *err) IG_MUSTCHECK;

/* The bound port (useful with PORT 0). Cannot fail. */
int ig_http_port(const ig_http *h);

/* Stop accepting, wait for running requests, free. NULL is a no-op. */
void ig_http_free(ig_http *h);

#endif /* IG_HTTP_H */
