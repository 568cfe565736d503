/*
 * cmd_worker.c - "ingot worker": the long-running service. Starts the
 * progress store, the import threads (src/worker.c) and the HTTP API
 * (src/http.c), then waits for SIGTERM or SIGINT and shuts down
 * gracefully: no new claims, running imports stop at their next batch
 * boundary and go back to the queue without burning an attempt, running
 * HTTP requests finish; exit 0.
 *
 * Signals: SIGTERM, SIGINT and SIGPIPE are blocked in every thread (the
 * mask is set before any thread starts and inherited) and the main thread
 * takes the first two with sigwait(), so there is no signal handler and no
 * flag shared with one.
 */
#include "cmd_worker.h"

#include "db.h"
#include "http.h"
#include "log.h"
#include "progress.h"
#include "worker.h"

#include <ctype.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const ig_cli_opt worker_opts[] = {
    {"no-http", NULL,
     "run the import threads only (no HTTP API, no token "
     "needed)"},
    {NULL, NULL, NULL},
};

/* A database that answers but has no job queue is a setup mistake the
 * worker would otherwise retry forever (one warning a second): say what
 * to do. A database that does not answer yet is retried as usual, and a
 * setting it refuses (password, database name) is said at once. */
static int check_schema(const ig_conf *conf, ig_err *err)
{
    PGconn *conn = NULL;
    PGresult *res;
    int rc = ig_db_connect(conf->database_url, &conn, err), missing;

    if (rc == IG_DB_RETRY) {
        ig_log(IG_LOG_WARN, "%s; the import threads will keep trying",
               err->msg);
        return IG_OK;
    }
    if (rc != IG_OK)
        return rc;
    /* The queue, and its newest column (migration 0006). */
    res = PQexec(conn, "SELECT to_regclass('import_jobs') IS NULL, "
                       "NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid "
                       "= to_regclass('import_jobs') AND attname = "
                       "'attempt_started_at')");
    missing = PQresultStatus(res) != PGRES_TUPLES_OK ? 0
              : strcmp(PQgetvalue(res, 0, 0), "t") == 0 ? 1
              : strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? 2
                                                          : 0;
    PQclear(res);
    PQfinish(conn);
    if (missing == 1)
        return ig_err_set(err, IG_CONFIG,
                          "the database has no job queue (table "
                          "import_jobs): run 'ingot migrate up' first");
    if (missing == 2)
        return ig_err_set(err, IG_CONFIG,
                          "the database's job queue is older than this "
                          "ingot (migration 0006_import_jobs_attempt is not "
                          "applied): run 'ingot migrate up' first");
    return IG_OK;
}

static int run_worker(ig_cli *cli)
{
    const ig_conf *conf = ig_cli_conf(cli);
    int no_http = ig_cli_opt_value(cli, "no-http") != NULL;
    const char *pdir = ig_cli_data_dir(conf->pipeline_dir, "pipelines");
    ig_progress_opts popts;
    ig_progress *progress = NULL;
    ig_worker_opts wo;
    ig_worker *w = NULL;
    ig_http_opts ho;
    ig_http *http = NULL;
    char id[101];
    sigset_t set;
    ig_err err;
    int sig = 0, rc = IG_EXIT_OK;

    if (!no_http && conf->api_token == NULL)
        return ig_cli_fail(cli,
                           "INGOT_API_TOKEN is not set: the HTTP API "
                           "will not start without a token. Set it in the "
                           "environment or .env (it has no flag, so it never "
                           "shows in ps), or run with --no-http.");
    if (!no_http && (isspace((unsigned char)conf->api_token[0]) ||
                     isspace((unsigned char)conf->api_token[strlen(
                         conf->api_token) - 1])))
        return ig_cli_fail(cli,
                           "INGOT_API_TOKEN starts or ends with a space or "
                           "tab (not shown): no client could send it in an "
                           "Authorization header; remove it.");
    if (conf->worker_id != NULL) {
        snprintf(id, sizeof(id), "%s", conf->worker_id);
    } else {
        char host[64] = "localhost";
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(id, sizeof(id), "%s:%ld", host, (long)getpid());
    }

    if (check_schema(conf, &err) != IG_OK)
        return ig_cli_fail(cli, "%s", err.msg);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    memset(&popts, 0, sizeof(popts));
    popts.redis_url = conf->redis_url;
    popts.expiry_seconds = conf->progress_expiry;
    progress = ig_progress_new(&popts, &err);
    if (progress == NULL) {
        rc = ig_cli_fail(cli, "%s", err.msg);
        goto out;
    }
    memset(&wo, 0, sizeof(wo));
    wo.conf = conf;
    wo.threads = (int)conf->worker_threads;
    wo.worker_id = id;
    wo.pipeline_dir = pdir;
    wo.progress = progress;
    w = ig_worker_start(&wo, &err);
    if (w == NULL) {
        rc = ig_cli_fail(cli, "%s", err.msg);
        goto out;
    }
    if (!no_http) {
        memset(&ho, 0, sizeof(ho));
        ho.conf = conf;
        ho.listen = conf->http_listen;
        ho.token = conf->api_token;
        ho.pipeline_dir = pdir;
        ho.progress = progress;
        ho.worker = w;
        http = ig_http_start(&ho, &err);
        if (http == NULL) {
            rc = ig_cli_fail(cli, "%s", err.msg);
            goto out;
        }
    }
    ig_log(IG_LOG_INFO,
           "worker %s: %ld import thread(s), pipelines in %s, "
           "progress in %s%s%s",
           id, conf->worker_threads, pdir,
           ig_progress_backend_name(ig_progress_active(progress)),
           http ? ", HTTP API on " : ", no HTTP API",
           http ? conf->http_listen : "");

    sigdelset(&set, SIGPIPE);
    while (sig != SIGTERM && sig != SIGINT)
        if (sigwait(&set, &sig) != 0)
            break;
    ig_log(IG_LOG_INFO,
           "worker %s: %s received; stopping (running imports "
           "stop at their next batch boundary and go back to the queue; "
           "again to quit at once)",
           id, sig == SIGINT ? "SIGINT" : "SIGTERM");
    /* A second SIGTERM or SIGINT ends the process at once (its jobs are
     * rescued when their leases expire): the default action, delivered to
     * this thread, the only one that no longer blocks them. */
    if (sig == SIGTERM || sig == SIGINT) {
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
    }

out:
    ig_worker_stop(w);
    ig_http_free(http);
    ig_worker_free(w);
    ig_progress_free(progress);
    if (rc == IG_EXIT_OK)
        ig_log(IG_LOG_INFO, "worker %s: stopped", id);
    return rc;
}

const ig_cli_cmd ig_cmd_worker = {
    .name = "worker",
    .summary = "run import threads on the job queue and serve the HTTP API",
    .usage = "worker [--threads N] [--listen ADDR:PORT] [--no-http]",
    .help =
        "Run until SIGTERM or SIGINT: INGOT_WORKER_THREADS threads claim jobs\n"
        "from the import_jobs queue (FOR UPDATE SKIP LOCKED), run them batch\n"
        "by batch with a checkpoint per batch, heartbeat their lease, and\n"
        "finish, retry (transient errors, with backoff) or fail them. A\n"
        "housekeeper rescues jobs of dead workers (they resume from their\n"
        "checkpoint) and prunes old finished jobs hourly. The HTTP API\n"
        "(docs/api.md) listens on INGOT_HTTP_LISTEN and requires the bearer\n"
        "token INGOT_API_TOKEN. Run as many workers on as many machines as\n"
        "you like. On SIGTERM running imports stop at a batch boundary and\n"
        "go back to the queue without using up an attempt; exit 0.",
    .opts = worker_opts,
    .min_args = 0,
    .max_args = 0,
    .run = run_worker,
};
