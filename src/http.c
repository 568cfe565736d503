/*
 * http.c - the HTTP API on libmicrohttpd; see http.h for the routes and
 * docs/api.md for examples.
 *
 * Request life: libmicrohttpd calls on_request() once when the headers are
 * in (we route, authenticate and check Content-Type / Content-Length
 * there, so an oversized or unauthorised upload is refused before its body
 * is read), then once per body chunk (appended to the request's buffer,
 * bounded by INGOT_MAX_BODY_BYTES), then once more with no data: the
 * request is handled and answered. A request's state lives in its `req`,
 * freed by on_completed(). Each connection has its own thread, so a
 * synchronous import may take its time without blocking other requests.
 *
 * Never logged: the token, conninfo, request bodies and row values.
 */
#include "http.h"

#include "db.h"
#include "jobq.h"
#include "jsontext.h"
#include "log.h"
#include "pipeline.h"
#include "pool.h"
#include "report.h"
#include "results.h"
#include "rules.h"
#include "runner.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PIPELINE_NAME_MAX 64
#define HTTP_POOL_MIN 4
#define HTTP_CONNECT_TIMEOUT_MS 3000 /* /healthz answers 503 within it */
#define SHUTDOWN_WAIT_S 25 /* for synchronous imports to answer at a stop
                              (under Kubernetes' default 30 s grace) */

struct ig_http {
    const ig_conf *conf;
    char *token;
    size_t token_len;
    char *pipeline_dir;
    ig_progress *progress;
    ig_worker *worker;
    ig_pool *pool;        /* the routes' queries */
    ig_pool *import_pool; /* synchronous imports: a few of them waiting on
                             row locks must not leave the other routes
                             without a connection */
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu; /* guards the synchronous-import counters below */
    long long sync_finished[IG_JOBQ__STATE_COUNT];
    long long sync_rows[6]; /* read, inserted, updated, unchanged, skipped,
                               failed */
    double sync_duration_sum;
    long long sync_duration_count;
    /* Shutdown (ig_http_free): synchronous imports stop at a batch
     * boundary and their answers are sent before the daemon stops. */
    volatile int stopping;  /* the runner's cancel input */
    int imports_open;       /* guarded by mu: imports accepted (uploading
                               or running) whose answer is not sent yet */
    pthread_cond_t idle;    /* signalled when imports_open drops */
};

typedef enum {
    ROUTE_NONE,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_JOBS,
    ROUTE_IMPORT,   /* POST /api/imports/<pipeline> */
    ROUTE_PROGRESS, /* GET /api/imports/<id>/progress */
    ROUTE_RESULTS,  /* GET /api/imports/<id>/results */
    ROUTE_CANCEL    /* POST /api/imports/<id>/cancel */
} route;

typedef enum { FMT_CSV, FMT_JSON } body_format;

typedef struct req {
    route r;
    int answered;  /* a response was queued already (early refusal) */
    int counted;   /* an import: counted in h->imports_open */
    int too_large; /* body went over the limit: discarding the rest */
    long long id;  /* job id routes */
    char pipeline[PIPELINE_NAME_MAX + 1];
    body_format fmt;
    char charset[32]; /* Content-Type's charset, lower-cased, or "" */
    char *body; /* owned; NUL-terminated */
    size_t len, cap;
} req;

/* ------------------------------------------------------------------ */
/* Responses                                                           */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *ctype, char *owned, size_t len,
                                 const char *extra_name,
                                 const char *extra_value)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, owned, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;

    if (resp == NULL) {
        free(owned);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Send o (takes ownership) as the JSON body. */
static enum MHD_Result send_json_h(struct MHD_Connection *c, unsigned status,
                                   json_t *o, const char *hname,
                                   const char *hvalue)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                                JSON_REAL_PRECISION(10));
    size_t n;

    json_decref(o);
    if (s == NULL)
        return MHD_NO;
    n = strlen(s);
    s = ig_xrealloc(s, n + 2);
    s[n++] = '\n';
    s[n] = '\0';
    return send_text(c, status, "application/json", s, n, hname, hvalue);
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 json_t *o)
{
    return send_json_h(c, status, o, NULL, NULL);
}

/* An {"error": {code, message}} answer, with header hname: hvalue when
 * hname is not NULL (a 401 always says how to authenticate). */
static enum MHD_Result send_error_h(struct MHD_Connection *c, unsigned status,
                                    const char *hname, const char *hvalue,
                                    const char *code, const char *fmt, ...)
    IG_PRINTF(6, 7);

static enum MHD_Result send_error_h(struct MHD_Connection *c, unsigned status,
                                    const char *hname, const char *hvalue,
                                    const char *code, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (hname == NULL && status == MHD_HTTP_UNAUTHORIZED) {
        hname = "WWW-Authenticate";
        hvalue = "Bearer";
    }
    /* The message may quote the request (a query value, a path): bytes
     * that are not UTF-8 would make jansson refuse it, and no answer go. */
    return send_json_h(
        c, status,
        json_pack("{s:{s:s,s:o}}", "error", "code", code, "message",
                  ig_report_text(msg, strlen(msg))),
        hname, hvalue);
}

#define send_error(c, status, ...) send_error_h(c, status, NULL, NULL, __VA_ARGS__)

/* A database failure: 503 when it is transient: "database_busy" when the
 * database answered but could not do it now (a statement or lock timeout
 * behind other sessions' row locks, a serialization failure, a
 * deadlock), else "database_unavailable" (unreachable, shutting down, out
 * of connections); 500 otherwise. */
static enum MHD_Result send_db_error(struct MHD_Connection *c, int rc,
                                     const ig_err *err)
{
    static const char *const busy[] = {"[SQLSTATE 57014", "[SQLSTATE 55P03",
                                       "[SQLSTATE 40001", "[SQLSTATE 40P01"};
    if (rc == IG_DB_RETRY) {
        for (size_t i = 0; i < sizeof(busy) / sizeof(busy[0]); i++)
            if (strstr(err->msg, busy[i]) != NULL)
                return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                                  "database_busy", "%s", err->msg);
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                          "database_unavailable", "%s", err->msg);
    }
    return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "database_error", "%s",
                      err->msg);
}

/* ------------------------------------------------------------------ */
/* Routing and auth                                                    */

static int valid_pipeline_name(const char *s, size_t n)
{
    if (n == 0 || n > PIPELINE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

/* Parse url into r; method checks happen in the caller. */
static route parse_route(const char *url, const char *method, req *r)
{
    static const char prefix[] = "/api/imports/";
    const char *rest, *slash;
    char *end = NULL;

    if (strcmp(url, "/healthz") == 0)
        return ROUTE_HEALTH;
    if (strcmp(url, "/metrics") == 0)
        return ROUTE_METRICS;
    if (strncmp(url, prefix, sizeof(prefix) - 1) != 0)
        return ROUTE_NONE;
    rest = url + sizeof(prefix) - 1;
    slash = strchr(rest, '/');
    if (slash == NULL) {
        /* GET /api/imports/jobs lists jobs; POST imports into a pipeline
         * that may be named jobs. */
        if (strcmp(rest, "jobs") == 0 && strcmp(method, "POST") != 0)
            return ROUTE_JOBS;
        if (!valid_pipeline_name(rest, strlen(rest)))
            return ROUTE_NONE;
        snprintf(r->pipeline, sizeof(r->pipeline), "%s", rest);
        return ROUTE_IMPORT;
    }
    if (!isdigit((unsigned char)rest[0]))
        return ROUTE_NONE;
    errno = 0;
    r->id = strtoll(rest, &end, 10);
    if (end != slash || r->id < 1 || errno == ERANGE) /* no such job */
        return ROUTE_NONE;
    if (strcmp(slash, "/progress") == 0)
        return ROUTE_PROGRESS;
    if (strcmp(slash, "/results") == 0)
        return ROUTE_RESULTS;
    if (strcmp(slash, "/cancel") == 0)
        return ROUTE_CANCEL;
    return ROUTE_NONE;
}

static const char *route_method(route r)
{
    switch (r) {
    case ROUTE_IMPORT:
    case ROUTE_CANCEL:
        return "POST";
    case ROUTE_HEALTH:
    case ROUTE_METRICS:
    case ROUTE_JOBS:
    case ROUTE_PROGRESS:
    case ROUTE_RESULTS:
        return "GET";
    case ROUTE_NONE:
        return "";
    default:
        ig_assert(0);
    }
    return "";
}

/* Constant-time: the time taken depends on the expected token's length
 * only, never on where the given one differs. */
static int token_ok(const ig_http *h, const char *given)
{
    size_t glen = given ? strlen(given) : 0;
    unsigned char diff = (unsigned char)(glen != h->token_len);

    for (size_t i = 0; i < h->token_len; i++) {
        unsigned char g = i < glen ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)h->token[i]);
    }
    return given != NULL && diff == 0;
}

static int authorized(const ig_http *h, struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
        return 0;
    a += 7;
    while (*a == ' ')
        a++;
    return token_ok(h, a);
}

static const char *query(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

/* A query number in [min, max], def when absent; -1 when bad. */
static long long query_num(struct MHD_Connection *c, const char *name,
                           long long def, long long min, long long max)
{
    const char *s = query(c, name);
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0')
        return def;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < min || v > max)
        return -1;
    return v;
}

static int pipeline_exists(const ig_http *h, const char *name)
{
    char path[4200];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s.yaml", h->pipeline_dir, name);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        return 1;
    snprintf(path, sizeof(path), "%s/%s.yml", h->pipeline_dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ------------------------------------------------------------------ */
/* JSON rows -> CSV                                                    */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    char quote; /* the pipeline's: the CSV is read in its dialect */
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = ig_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* One field, quoted by libcsv; an absent or null value is left empty. */
static void sb_field(strbuf *b, const char *s, size_t n)
{
    size_t need;

    if (s == NULL)
        return;
    need = csv_write2(NULL, 0, s, n, (unsigned char)b->quote);
    if (b->len + need + 1 > b->cap) {
        b->cap = (b->len + need + 1) * 2;
        b->p = ig_xrealloc(b->p, b->cap);
    }
    b->len += csv_write2(b->p + b->len, need, s, n, (unsigned char)b->quote);
    b->p[b->len] = '\0';
}

/* A parse error jerr of the quoted body (ig_jsontext_rewrite), as a position in
 * the body as sent: less the quotes put in before it (on its line, for the
 * column; no quote is a line break). */
static void unquote_error(json_error_t *jerr, const char *quoted,
                          const size_t *spans, size_t nspans)
{
    size_t pos = jerr->position > 0 ? (size_t)jerr->position : 0;
    size_t line_start = pos, before = 0, on_line = 0;

    while (line_start > 0 && quoted[line_start - 1] != '\n')
        line_start--;
    /* quote k of the quoted body sits at spans[k] + k */
    for (size_t k = 0; k < nspans && spans[k] + k < pos; k++) {
        before++;
        if (spans[k] + k >= line_start)
            on_line++;
    }
    jerr->position -= (int)before;
    jerr->column -= (int)on_line;
}

/* Append the CSV text of one scalar JSON value. IG_DATA for an object or
 * array (nested values have no column to go to). */
static int put_scalar(strbuf *b, json_t *v)
{
    char *txt;

    switch (json_typeof(v)) {
    case JSON_NULL:
        return IG_OK;
    case JSON_STRING:
        sb_field(b, json_string_value(v), json_string_length(v));
        return IG_OK;
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_INTEGER:
    case JSON_REAL:
        txt = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
        sb_field(b, txt, strlen(txt));
        free(txt);
        return IG_OK;
    case JSON_OBJECT:
    case JSON_ARRAY:
        return IG_DATA;
    default:
        ig_assert(0);
    }
    return IG_DATA;
}

/* Convert a JSON array of flat objects into CSV (owned in *out): header =
 * the union of keys in first-seen order. IG_DATA with a message naming
 * the row for anything else. */
/* Before jansson builds the body (tens of bytes per value it holds): the
 * number of rows (elements of the top-level array) and whether anything
 * nests deeper than a flat object in it, read off the bytes outside
 * strings. *rows may be over for a malformed body, which the parse then
 * refuses anyway. IG_OK, or IG_DATA for a nested value. */
static int json_shape(const char *p, size_t n, long long *rows, ig_err *err)
{
    int depth = 0, in_str = 0, esc = 0, any = 0;
    size_t str = 0, key = 0, keylen = 0; /* the last string at depth 2 */

    *rows = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (esc) {
                esc = 0;
            } else if (c == '\\') {
                esc = 1;
            } else if (c == '"') {
                in_str = 0;
                if (depth == 2)
                    key = str, keylen = i - str;
            }
            continue;
        }
        if (c == '"') {
            in_str = 1;
            str = i + 1;
        } else if (c == '[' || c == '{') {
            if (++depth > 2 && keylen > 0)
                return ig_err_set(err, IG_DATA,
                                  "row %lld, key \"%.*s\": nested objects "
                                  "and arrays are not supported; send flat "
                                  "objects", *rows + 1,
                                  (int)(keylen > 200 ? 200 : keylen),
                                  p + key);
            if (depth > 2)
                return ig_err_set(err, IG_DATA,
                                  "row %lld: nested objects and arrays are "
                                  "not supported; send flat objects",
                                  *rows + 1);
            if (depth == 2)
                keylen = 0;
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == ',' && depth == 1) {
            (*rows)++;
        }
        if (depth == 1 && c != '[' && c != ',' && c != ' ' && c != '\t' &&
            c != '\n' && c != '\r')
            any = 1;
        else if (depth == 2)
            any = 1;
    }
    *rows += any;
    return IG_OK;
}

static int json_rows_to_csv(json_t *rows, size_t max_bytes, char delim,
                            char quote, char **out, size_t *outlen,
                            ig_err *err)
{
    json_t *cols = json_object(); /* key -> index (insertion-ordered) */
    strbuf b = {NULL, 0, 0, quote ? quote : '"'};
    char sep = delim ? delim : ',';
    size_t i, ncols;
    json_t *row;
    const char *key;
    json_t *v;
    int rc = IG_OK;

    *out = NULL;
    if (!json_is_array(rows)) {
        rc = ig_err_set(err, IG_DATA,
                        "the body must be a JSON array of "
                        "objects, one per row");
        goto out;
    }
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(row)) {
            rc = ig_err_set(err, IG_DATA, "row %zu: expected an object", i + 1);
            goto out;
        }
        json_object_foreach(row, key, v)
        {
            if (json_object_get(cols, key) == NULL)
                json_object_set_new(
                    cols, key,
                    json_integer((json_int_t)json_object_size(cols)));
        }
    }
    ncols = json_object_size(cols);
    if (ncols == 0) {
        rc = ig_err_set(err, IG_DATA,
                        "no rows (or only empty objects): "
                        "nothing to import");
        goto out;
    }
    /* The CSV has a field per key in every row: many rows with keys of
     * their own would be rows x keys fields, far more than the body. */
    if (ncols > 16384 ||
        json_array_size(rows) * ncols > max_bytes) {
        rc = ig_err_set(err, IG_DATA,
                        "%zu rows with %zu distinct keys between them would "
                        "be %zu CSV fields, more than %s; send the same keys "
                        "in every row",
                        json_array_size(rows), ncols,
                        json_array_size(rows) * ncols,
                        ncols > 16384 ? "16384 columns"
                                      : "INGOT_MAX_BODY_BYTES");
        goto out;
    }
    {
        size_t k = 0;
        json_object_foreach(cols, key, v)
        {
            if (k++ > 0)
                sb_put(&b, &sep, 1);
            sb_field(&b, key, strlen(key));
        }
        sb_put(&b, "\n", 1);
    }
    json_array_foreach(rows, i, row)
    {
        size_t k = 0;
        json_object_foreach(cols, key, v)
        {
            json_t *val = json_object_get(row, key);
            if (k++ > 0)
                sb_put(&b, &sep, 1);
            if (val != NULL && put_scalar(&b, val) != IG_OK) {
                rc = ig_err_set(err, IG_DATA,
                                "row %zu, key \"%s\": nested "
                                "objects and arrays are not supported; send "
                                "flat objects",
                                i + 1, key);
                goto out;
            }
        }
        sb_put(&b, "\n", 1);
    }
    *out = b.p;
    *outlen = b.len;
    b.p = NULL;
out:
    free(b.p);
    json_decref(cols);
    return rc;
}

/* ------------------------------------------------------------------ */
/* POST /api/imports/<pipeline>                                        */

static void count_sync(ig_http *h, ig_jobq_state st, const ig_counts *c,
                       double secs)
{
    pthread_mutex_lock(&h->mu);
    h->sync_finished[st]++;
    h->sync_rows[0] += c->read;
    h->sync_rows[1] += c->inserted;
    h->sync_rows[2] += c->updated;
    h->sync_rows[3] += c->unchanged;
    h->sync_rows[4] += c->skipped;
    h->sync_rows[5] += c->failed;
    h->sync_duration_sum += secs;
    h->sync_duration_count++;
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result enqueue(ig_http *h, struct MHD_Connection *c,
                               const req *r, const char *csv, size_t len,
                               long long rows)
{
    ig_jobq_enqueue_opts eo;
    ig_pool_conn *pc = NULL;
    long long id = 0;
    char loc[80];
    json_t *o;
    ig_err err;
    int rc;

    ig_err_clear(&err);
    rc = ig_pool_acquire(h->pool, &pc, &err);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    memset(&eo, 0, sizeof(eo));
    eo.pipeline = r->pipeline;
    eo.source = csv;
    eo.source_len = len;
    eo.source_name = query(c, "name")     ? query(c, "name")
                     : r->fmt == FMT_JSON ? "upload.json"
                                          : "upload.csv";
    eo.format = "csv"; /* JSON rows were converted on the way in */
    eo.total_rows = rows;
    rc = ig_jobq_enqueue(ig_pool_conn_pg(pc), &eo, &id, &err);
    ig_pool_release(h->pool, pc,
                    rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    ig_log_job(id, r->pipeline, IG_LOG_INFO,
               "queued over HTTP: %lld rows, "
               "%zu bytes",
               rows, len);
    o = json_object();
    json_object_set_new(o, "job_id", json_integer(id));
    json_object_set_new(o, "state", json_string("queued"));
    json_object_set_new(o, "pipeline", json_string(r->pipeline));
    json_object_set_new(o, "total_rows", json_integer(rows));
    json_object_set_new(o, "links", ig_report_links(id));
    snprintf(loc, sizeof(loc), "/api/imports/%lld/progress", id);
    return send_json_h(c, MHD_HTTP_ACCEPTED, o, MHD_HTTP_HEADER_LOCATION, loc);
}

static enum MHD_Result run_sync(ig_http *h, struct MHD_Connection *c,
                                const req *r, const ig_pipeline *p,
                                const char *csv, size_t len)
{
    const ig_conf *conf = h->conf;
    ig_results *results;
    ig_run_opts o;
    ig_run_progress fin;
    ig_run_status st = IG_RUN_FAILED;
    ig_counts counts;
    enum MHD_Result ret;
    ig_err err;
    int rc;

    {
        size_t nt = ig_pipeline_ntargets(p);
        const char **names = ig_xcalloc(nt ? nt : 1, sizeof(char *));
        ig_results_opts ro = {nt, names, 1000};
        for (size_t t = 0; t < nt; t++)
            names[t] = ig_pipeline_target(p, t)->name;
        results = ig_results_new(&ro);
        free(names);
    }
    ig_err_clear(&err);
    memset(&o, 0, sizeof(o));
    memset(&fin, 0, sizeof(fin));
    o.pipeline = p;
    o.pool = h->import_pool;
    o.buf = csv;
    o.buf_len = len;
    o.input_name = r->fmt == FMT_JSON ? "upload.json" : "upload.csv";
    o.bytes_total = (long long)len;
    o.batch_size = conf->batch_size;
    o.max_rows = conf->max_rows;
    o.timeout_seconds = conf->timeout_seconds;
    o.no_insert_first = !conf->insert_first;
    o.no_merge = !conf->merge;
    o.seekable = 1;
    o.cancel = &h->stopping;
    rc = ig_run(&o, results, &st, &fin, &err);
    counts = ig_results_counts(results);
    if (rc == IG_DB_RETRY) {
        ret = send_db_error(c, rc, &err);
    } else if (rc == IG_DATA || rc == IG_CONFIG || rc == IG_SCRIPT) {
        ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "unprocessable",
                         "%s", err.msg);
    } else if (rc != IG_OK) {
        ret = send_db_error(c, rc, &err);
    } else {
        ig_jobq_state fs =
            ig_report_final_state(st, counts.read, counts.failed);
        count_sync(h, fs, &counts, fin.elapsed);
        ig_log(IG_LOG_INFO,
               "pipeline=%s: synchronous import over HTTP: %s, "
               "%lld rows, %lld failed, %.2f s",
               r->pipeline, ig_jobq_state_name(fs), counts.read, counts.failed,
               fin.elapsed);
        ret = send_json(c, MHD_HTTP_OK,
                        ig_report_run(r->pipeline, o.input_name, st, err.msg,
                                      results, fin.elapsed));
    }
    ig_results_free(results);
    return ret;
}

/* Whether a body in charset cs (charset_of; "" = none said) can be read
 * as encoding enc. */
static int charset_fits(const char *cs, ig_encoding enc)
{
    switch (enc) {
    case IG_ENCODING_UTF8:
        return !cs[0] || strcmp(cs, "utf-8") == 0 ||
               strcmp(cs, "utf8") == 0 || strcmp(cs, "us-ascii") == 0;
    case IG_ENCODING_LATIN1:
        return !cs[0] || strcmp(cs, "iso-8859-1") == 0 ||
               strcmp(cs, "latin1") == 0 || strcmp(cs, "latin-1") == 0;
    case IG_ENCODING_WIN1252:
        return !cs[0] || strcmp(cs, "windows-1252") == 0 ||
               strcmp(cs, "cp1252") == 0;
    }
    return 0;
}

static const char *encoding_name(ig_encoding enc)
{
    return enc == IG_ENCODING_UTF8     ? "utf-8"
           : enc == IG_ENCODING_LATIN1 ? "latin-1"
                                       : "windows-1252";
}

static enum MHD_Result handle_import(ig_http *h, struct MHD_Connection *c,
                                     req *r)
{
    const ig_conf *conf = h->conf;
    ig_pipeline_opts po;
    ig_pipeline *p = NULL;
    json_t *rows_json = NULL;
    char *csv = NULL; /* owned when converted from JSON */
    char *quoted = NULL; /* the JSON body, numbers as strings */
    const char *data = r->body ? r->body : "";
    size_t len = r->len;
    const char *bg = query(c, "background");
    int background = bg && (strcmp(bg, "1") == 0 || strcmp(bg, "true") == 0);
    long long rows = 0;
    json_error_t jerr;
    ig_run_opts ro;
    enum MHD_Result ret;
    ig_err err;
    int rc;

    ig_err_clear(&err);
    memset(&po, 0, sizeof(po));
    po.check_hooks = 1;
    p = ig_pipeline_load_named(h->pipeline_dir, r->pipeline, &po, &err);
    if (p == NULL) {
        ret = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "pipeline_invalid",
                         "%s", err.msg);
        goto out;
    }
    if (!charset_fits(r->charset, r->fmt == FMT_JSON
                                      ? IG_ENCODING_UTF8
                                      : ig_pipeline_source(p)->encoding)) {
        ret = send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                         "unsupported_media_type",
                         "charset=%s is not what pipeline %s reads (%s)",
                         r->charset, r->pipeline,
                         r->fmt == FMT_JSON
                             ? "JSON, in UTF-8"
                             : encoding_name(ig_pipeline_source(p)->encoding));
        goto out;
    }
    if (r->fmt == FMT_JSON) {
        const ig_source *src = ig_pipeline_source(p);
        long long nrows = 0;

        /* A UTF-8 BOM (RFC 8259 allows a parser to ignore it). */
        if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0) {
            data += 3;
            len -= 3;
        }
        /* JSON rows become CSV with a header, in UTF-8: a pipeline that
         * maps by position or reads another encoding would misread it. */
        if (!src->header || src->encoding != IG_ENCODING_UTF8) {
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                             "unprocessable",
                             "pipeline %s %s: JSON rows cannot be read by "
                             "it; send CSV", r->pipeline,
                             !src->header ? "maps columns by position "
                                            "(source.header: false)"
                                          : "reads files in another "
                                            "encoding than UTF-8 "
                                            "(source.encoding)");
            goto out;
        }
        /* An empty body is an empty import (422, as an empty CSV one),
         * not malformed JSON. */
        if (strspn(data, " \t\r\n") >= len) {
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                             "unprocessable", "the body is empty: send a "
                             "JSON array of objects, one per row");
            goto out;
        }
        /* Bounded before jansson holds it: 64 MiB of [{},{},...] would
         * be gigabytes of objects. */
        if (json_shape(data, len, &nrows, &err) != IG_OK) {
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                             "unprocessable", "%s", err.msg);
            goto out;
        }
        if (nrows > conf->max_rows) {
            ret = send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_rows",
                             "the body has %lld rows, more than "
                             "IMPORT_MAX_ROWS=%ld", nrows, conf->max_rows);
            goto out;
        }
        /* JSON_REJECT_DUPLICATES: jansson would keep the last of two
         * equal keys and drop the first value without a word. */
        /* JSON_DECODE_ANY: a scalar is well-formed JSON of the wrong shape
         * (422 below), not malformed. */
        {
            size_t *spans, nspans, qlen = 0;
            ig_jsontext_numbers(data, len, 1, &spans, &nspans);
            /* A row's numbers as strings of their own text: jansson
             * would hold them as an int64 or a double (15 significant
             * digits, 1.10 as 1.1, longer integers refused). */
            if (nspans > 0)
                quoted = ig_jsontext_rewrite(data, len, spans, nspans,
                                             IG_JSONTEXT_QUOTE, &qlen);
            rows_json = json_loadb(quoted ? quoted : data,
                                   quoted ? qlen : len,
                                   JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                   &jerr);
            /* Malformed: jansson's message on the body as sent (its
             * tokens unquoted), unless all it finds there is a number too
             * long for it, which the quoting took care of: then the
             * quoted body's message, its position moved back. */
            if (rows_json == NULL && quoted != NULL) {
                json_error_t orig;
                json_t *again = json_loadb(
                    data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                    &orig);
                json_decref(again);
                if (again == NULL &&
                    json_error_code(&orig) != json_error_numeric_overflow)
                    jerr = orig;
                else
                    unquote_error(&jerr, quoted, spans, nspans);
            }
            free(spans);
        }
        if (rows_json == NULL &&
            json_error_code(&jerr) == json_error_numeric_overflow) {
            /* A long number where a row should be ([1e400]): not rows. */
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "unprocessable",
                             "the body must be a JSON array of objects, one "
                             "per row");
            goto out;
        }
        if (rows_json == NULL &&
            json_error_code(&jerr) == json_error_duplicate_key) {
            /* Valid JSON (RFC 8259: names SHOULD be unique), but which
             * value the row means is anyone's guess. */
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                             "duplicate_field",
                             "line %d, column %d: an object has the same "
                             "key twice; send each field once",
                             jerr.line, jerr.column);
            goto out;
        }
        if (rows_json == NULL &&
            json_error_code(&jerr) == json_error_null_character) {
            /* Refused whole: no text column or COPY can hold a NUL. */
            ret = send_error(c, MHD_HTTP_BAD_REQUEST, "malformed_json",
                             "line %d, column %d: a string holds \\u0000 "
                             "(NUL), which text cannot store",
                             jerr.line, jerr.column);
            goto out;
        }
        if (rows_json == NULL) {
            ret = send_error(c, MHD_HTTP_BAD_REQUEST, "malformed_json",
                             "line %d, column %d: %s", jerr.line, jerr.column,
                             jerr.text);
            goto out;
        }
        if (json_is_array(rows_json) &&
            json_array_size(rows_json) > (size_t)conf->max_rows) {
            ret = send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_rows",
                             "the body has %zu rows, more than "
                             "IMPORT_MAX_ROWS=%ld",
                             json_array_size(rows_json), conf->max_rows);
            goto out;
        }
        if (json_rows_to_csv(rows_json, (size_t)conf->max_body_bytes,
                             src->delimiter, src->quote, &csv, &len,
                             &err) != IG_OK) {
            ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "unprocessable",
                             "%s", err.msg);
            goto out;
        }
        data = csv;
    }
    memset(&ro, 0, sizeof(ro));
    ro.pipeline = p;
    ro.buf = data;
    ro.buf_len = len;
    ro.input_name = r->fmt == FMT_JSON ? "upload.json" : "upload.csv";
    rc = ig_run_preflight(&ro, &rows, &err);
    if (rc != IG_OK) {
        ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "unprocessable",
                         "%s", err.msg);
        goto out;
    }
    if (rows > conf->max_rows) {
        ret = send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "too_many_rows",
                         "the body has %lld rows, more than "
                         "IMPORT_MAX_ROWS=%ld",
                         rows, conf->max_rows);
        goto out;
    }
    if (rows == 0) { /* as JSON [] is */
        ret = send_error(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "unprocessable",
                         "the body has no data rows");
        goto out;
    }
    if (background || rows >= conf->background_threshold)
        ret = enqueue(h, c, r, data, len, rows);
    else
        ret = run_sync(h, c, r, p, data, len);
out:
    ig_pipeline_free(p);
    json_decref(rows_json);
    free(quoted);
    free(csv);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Job routes                                                          */

/* Borrow a connection and read job r->id; answers 404 / 503 itself.
 * IG_OK with *pc and *job set (release / free them). */
static int get_job(ig_http *h, struct MHD_Connection *c, const req *r,
                   ig_pool_conn **pc, ig_jobq_job **job, enum MHD_Result *ret)
{
    ig_err err;
    int rc;

    *job = NULL;
    ig_err_clear(&err);
    rc = ig_pool_acquire(h->pool, pc, &err);
    if (rc != IG_OK) {
        *pc = NULL;
        *ret = send_db_error(c, rc, &err);
        return rc;
    }
    rc = ig_jobq_get(ig_pool_conn_pg(*pc), r->id, job, &err);
    if (rc == IG_NOTFOUND)
        *ret = send_error(c, MHD_HTTP_NOT_FOUND, "job_not_found",
                          "no import job %lld", r->id);
    else if (rc != IG_OK)
        *ret = send_db_error(c, rc, &err);
    if (rc != IG_OK) {
        ig_pool_release(h->pool, *pc,
                        rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
        *pc = NULL;
    }
    return rc;
}

static enum MHD_Result handle_progress(ig_http *h, struct MHD_Connection *c,
                                       const req *r)
{
    ig_pool_conn *pc = NULL;
    ig_jobq_job *job = NULL;
    ig_progress_info info;
    enum MHD_Result ret = MHD_NO;
    ig_err err;
    int have;

    if (get_job(h, c, r, &pc, &job, &ret) != IG_OK)
        return ret;
    ig_pool_release(h->pool, pc, IG_POOL_KEEP);
    have = ig_progress_get(h->progress, r->id, &info, &err) == IG_OK;
    ret = send_json(c, MHD_HTTP_OK,
                    ig_report_progress(job, have ? &info : NULL,
                                       ig_progress_backend_name(
                                           ig_progress_active(h->progress))));
    ig_jobq_job_free(job);
    return ret;
}

static enum MHD_Result handle_results(ig_http *h, struct MHD_Connection *c,
                                      const req *r)
{
    long long limit = query_num(c, "limit", 100, 1, 10000);
    long long offset = query_num(c, "offset", 0, 0, 1000000000000LL);
    ig_pool_conn *pc = NULL;
    ig_jobq_job *job = NULL;
    ig_jobq_rows *rows = NULL;
    enum MHD_Result ret = MHD_NO;
    json_t *o;
    ig_err err;
    int rc;

    if (limit < 0 || offset < 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                          "limit must be 1..10000 and offset >= 0");
    if (get_job(h, c, r, &pc, &job, &ret) != IG_OK)
        return ret;
    rc = ig_jobq_results(ig_pool_conn_pg(pc), r->id, (long)limit, (long)offset,
                         &rows, &err);
    ig_pool_release(h->pool, pc,
                    rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
    if (rc != IG_OK) {
        ret = send_db_error(c, rc, &err);
        goto out;
    }
    o = json_object();
    json_object_set_new(o, "job", ig_report_job(job));
    json_object_set_new(o, "limit", json_integer(limit));
    json_object_set_new(o, "offset", json_integer(offset));
    json_object_set_new(o, "results", ig_report_rows(rows));
    ret = send_json(c, MHD_HTTP_OK, o);
out:
    ig_jobq_rows_free(rows);
    ig_jobq_job_free(job);
    return ret;
}

static enum MHD_Result handle_cancel(ig_http *h, struct MHD_Connection *c,
                                     const req *r)
{
    ig_pool_conn *pc = NULL;
    ig_jobq_cancel_result res = IG_JOBQ_CANCEL_FINISHED;
    ig_jobq_state st = IG_JOBQ_QUEUED;
    unsigned status = MHD_HTTP_OK;
    const char *what = "";
    ig_err err;
    int rc;

    ig_err_clear(&err);
    rc = ig_pool_acquire(h->pool, &pc, &err);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    rc = ig_jobq_cancel(ig_pool_conn_pg(pc), r->id, &res, &st, &err);
    ig_pool_release(h->pool, pc,
                    rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
    if (rc == IG_NOTFOUND)
        return send_error(c, MHD_HTTP_NOT_FOUND, "job_not_found",
                          "no import job %lld", r->id);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    switch (res) {
    case IG_JOBQ_CANCEL_DONE:
        what = "cancelled";
        break;
    case IG_JOBQ_CANCEL_REQUESTED:
        status = MHD_HTTP_ACCEPTED;
        what = "cancel_requested";
        break;
    case IG_JOBQ_CANCEL_FINISHED:
        return send_error(c, MHD_HTTP_CONFLICT, "already_finished",
                          "job %lld already finished (%s)", r->id,
                          ig_jobq_state_name(st));
    default:
        ig_assert(0);
    }
    return send_json(c, status,
                     json_pack("{s:I,s:s,s:s}", "job_id", (json_int_t)r->id,
                               "result", what, "state",
                               ig_jobq_state_name(st)));
}

static enum MHD_Result handle_jobs(ig_http *h, struct MHD_Connection *c)
{
    ig_jobq_filter f;
    ig_jobq_job **jobs = NULL;
    size_t n = 0;
    ig_pool_conn *pc = NULL;
    const char *states = query(c, "state");
    long long limit = query_num(c, "limit", 50, 1, 1000);
    long long offset = query_num(c, "offset", 0, 0, 1000000000000LL);
    enum MHD_Result ret;
    json_t *o, *a;
    ig_err err;
    int rc;

    memset(&f, 0, sizeof(f));
    if (limit < 0 || offset < 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                          "limit must be 1..1000 and offset >= 0");
    f.limit = (long)limit;
    f.offset = (long)offset;
    f.pipeline = query(c, "pipeline");
    if (f.pipeline != NULL &&
        !valid_pipeline_name(f.pipeline, strlen(f.pipeline)))
        return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                          "pipeline must be a pipeline name "
                          "([A-Za-z0-9_-], at most 64)");
    if (states != NULL && *states != '\0') {
        ig_err perr;
        if (ig_jobq_states_parse(states, &f.states, &perr) != IG_OK)
            return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query", "%s",
                              perr.msg);
    }
    ig_err_clear(&err);
    rc = ig_pool_acquire(h->pool, &pc, &err);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    rc = ig_jobq_list(ig_pool_conn_pg(pc), &f, &jobs, &n, &err);
    ig_pool_release(h->pool, pc,
                    rc == IG_DB_RETRY ? IG_POOL_DISCARD : IG_POOL_KEEP);
    if (rc != IG_OK)
        return send_db_error(c, rc, &err);
    o = json_object();
    a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, ig_report_job(jobs[i]));
    json_object_set_new(o, "jobs", a);
    json_object_set_new(o, "limit", json_integer(limit));
    json_object_set_new(o, "offset", json_integer(offset));
    ret = send_json(c, MHD_HTTP_OK, o);
    ig_jobq_jobs_free(jobs, n);
    return ret;
}

/* ------------------------------------------------------------------ */
/* Health and metrics                                                  */

/* IG_OK when SELECT 1 works on a pooled connection, within about
 * HTTP_CONNECT_TIMEOUT_MS. When every pooled connection is busy (long
 * requests, or imports waiting on row locks) for HEALTH_WAIT_MS, on a
 * connection of its own: a busy worker is a healthy one, and a health
 * check that waited for a free connection would have it restarted. */
#define HEALTH_WAIT_MS 500

static int db_ping(ig_http *h, ig_err *err)
{
    ig_pool_conn *pc = NULL;
    PGconn *own = NULL;
    int rc = ig_pool_acquire_for(h->pool, HEALTH_WAIT_MS, &pc, err);

    if (rc == IG_TIMEOUT) {
        /* 0.5 + 2 + 1 s at most, for a database that does not answer */
        rc = ig_db_connect_within(h->conf->database_url, 2, &own, err);
        if (rc != IG_OK)
            return rc;
        rc = ig_db_exec_within(own, "SELECT 1", 1000, "health check", err);
        PQfinish(own);
        return rc;
    }
    if (rc != IG_OK)
        return rc;
    rc = ig_db_exec_within(ig_pool_conn_pg(pc), "SELECT 1",
                           HTTP_CONNECT_TIMEOUT_MS, "health check", err);
    ig_pool_release(h->pool, pc, rc == IG_OK ? IG_POOL_KEEP : IG_POOL_DISCARD);
    return rc;
}

static const char *redis_state(const ig_http *h)
{
    if (h->conf->redis_url == NULL)
        return "disabled";
    return ig_progress_check(h->progress) == IG_PROGRESS_REDIS ? "ok"
                                                               : "fallback";
}

static enum MHD_Result handle_health(ig_http *h, struct MHD_Connection *c)
{
    ig_err err;
    int rc;

    ig_err_clear(&err);
    rc = db_ping(h, &err);
    if (rc != IG_OK) {
        /* No token is needed here: the reason (host, port, role) goes to
         * the log, not to whoever asks. */
        ig_log(IG_LOG_WARN, "healthz: the database is down: %s", err.msg);
        return send_json(c, MHD_HTTP_SERVICE_UNAVAILABLE,
                         json_pack("{s:s,s:s,s:s}", "status", "unavailable",
                                   "database", "down", "redis",
                                   redis_state(h)));
    }
    return send_json(c, MHD_HTTP_OK,
                     json_pack("{s:s,s:s,s:s}", "status", "ok", "database",
                               "ok", "redis", redis_state(h)));
}

static void metric(strbuf *b, const char *fmt, ...) IG_PRINTF(2, 3);

static void metric(strbuf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, line,
               (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static const ig_jobq_state final_states[] = {IG_JOBQ_SUCCEEDED,
                                             IG_JOBQ_PARTIALLY_SUCCEEDED,
                                             IG_JOBQ_FAILED, IG_JOBQ_CANCELLED};
static const char *const row_outcomes[] = {"processed", "inserted", "updated",
                                           "unchanged", "skipped",  "failed"};

static void metrics_imports(ig_http *h, strbuf *b, const ig_worker_stats *ws)
{
    metric(b, "# HELP ingot_imports_total Imports this process ended, by "
              "mode and outcome.\n# TYPE ingot_imports_total counter\n");
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < 4; i++) {
        ig_jobq_state s = final_states[i];
        metric(b, "ingot_imports_total{mode=\"sync\",outcome=\"%s\"} %lld\n",
               ig_jobq_state_name(s), h->sync_finished[s]);
        if (ws)
            metric(b,
                   "ingot_imports_total{mode=\"background\",outcome="
                   "\"%s\"} %lld\n",
                   ig_jobq_state_name(s), ws->finished[s]);
    }
    if (ws) {
        metric(b,
               "ingot_imports_total{mode=\"background\",outcome="
               "\"retried\"} %lld\n",
               ws->retried);
        metric(b,
               "ingot_imports_total{mode=\"background\",outcome="
               "\"released\"} %lld\n",
               ws->released);
        metric(b,
               "ingot_imports_total{mode=\"background\",outcome="
               "\"lease_lost\"} %lld\n",
               ws->lease_lost);
    }
    metric(b, "# HELP ingot_rows_total Rows imported by this process, by "
              "mode and outcome.\n# TYPE ingot_rows_total counter\n");
    for (int i = 0; i < 6; i++) {
        long long bgv[6] = {0, 0, 0, 0, 0, 0};
        if (ws) {
            bgv[0] = ws->rows_processed;
            bgv[1] = ws->rows_inserted;
            bgv[2] = ws->rows_updated;
            bgv[3] = ws->rows_unchanged;
            bgv[4] = ws->rows_skipped;
            bgv[5] = ws->rows_failed;
            metric(b,
                   "ingot_rows_total{mode=\"background\",outcome=\"%s\"} "
                   "%lld\n",
                   row_outcomes[i], bgv[i]);
        }
        metric(b, "ingot_rows_total{mode=\"sync\",outcome=\"%s\"} %lld\n",
               row_outcomes[i], h->sync_rows[i]);
    }
    metric(b, "# HELP ingot_import_duration_seconds Wall time of ended "
              "imports (attempts, for background jobs).\n"
              "# TYPE ingot_import_duration_seconds summary\n");
    metric(b,
           "ingot_import_duration_seconds_sum{mode=\"sync\"} %.6f\n"
           "ingot_import_duration_seconds_count{mode=\"sync\"} %lld\n",
           h->sync_duration_sum, h->sync_duration_count);
    pthread_mutex_unlock(&h->mu);
    if (ws)
        metric(b,
               "ingot_import_duration_seconds_sum{mode=\"background\"} "
               "%.6f\ningot_import_duration_seconds_count{mode="
               "\"background\"} %lld\n",
               ws->duration_sum, ws->duration_count);
}

static enum MHD_Result handle_metrics(ig_http *h, struct MHD_Connection *c)
{
    strbuf b = {NULL, 0, 0, 0};
    ig_worker_stats ws;
    ig_progress_stats ps;
    long long depth[IG_JOBQ__STATE_COUNT];
    ig_pool_conn *pc = NULL;
    ig_err err;
    int rc;

    memset(&ws, 0, sizeof(ws));
    if (h->worker)
        ig_worker_get_stats(h->worker, &ws);
    metrics_imports(h, &b, h->worker ? &ws : NULL);
    ig_err_clear(&err);
    rc = ig_pool_acquire(h->pool, &pc, &err);
    if (rc == IG_OK) {
        rc = ig_jobq_count_by_state(ig_pool_conn_pg(pc), depth, &err);
        ig_pool_release(h->pool, pc,
                        rc == IG_OK ? IG_POOL_KEEP : IG_POOL_DISCARD);
    }
    metric(&b,
           "# HELP ingot_database_up 1 when the job queue could be "
           "read for this scrape.\n# TYPE ingot_database_up gauge\n"
           "ingot_database_up %d\n",
           rc == IG_OK);
    if (rc == IG_OK) {
        metric(&b, "# HELP ingot_queue_jobs Jobs in import_jobs, by state."
                   "\n# TYPE ingot_queue_jobs gauge\n");
        for (int s = 0; s < IG_JOBQ__STATE_COUNT; s++)
            metric(&b, "ingot_queue_jobs{state=\"%s\"} %lld\n",
                   ig_jobq_state_name((ig_jobq_state)s), depth[s]);
    }
    if (h->conf->redis_url != NULL)
        (void)ig_progress_check(h->progress); /* an idle store's Redis */
    ig_progress_get_stats(h->progress, &ps);
    metric(&b,
           "# HELP ingot_progress_redis 1 when progress goes to Redis, "
           "0 when it fell back to memory.\n# TYPE ingot_progress_redis "
           "gauge\ningot_progress_redis %d\n"
           "# TYPE ingot_progress_fallbacks_total counter\n"
           "ingot_progress_fallbacks_total %lld\n"
           "# TYPE ingot_progress_reconnects_total counter\n"
           "ingot_progress_reconnects_total %lld\n",
           ps.backend == IG_PROGRESS_REDIS, ps.fallbacks, ps.reconnects);
    if (h->worker)
        metric(&b,
               "# HELP ingot_worker_threads Import threads of this "
               "worker.\n# TYPE ingot_worker_threads gauge\n"
               "ingot_worker_threads %d\n"
               "# HELP ingot_worker_threads_busy Import threads running "
               "a job now.\n# TYPE ingot_worker_threads_busy gauge\n"
               "ingot_worker_threads_busy %d\n"
               "# TYPE ingot_jobs_rescued_total counter\n"
               "ingot_jobs_rescued_total %lld\n"
               "# TYPE ingot_jobs_pruned_total counter\n"
               "ingot_jobs_pruned_total %lld\n",
               ws.threads, ws.busy, ws.rescued, ws.pruned);
    return send_text(c, MHD_HTTP_OK, "text/plain; version=0.0.4", b.p, b.len,
                     NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* libmicrohttpd callbacks                                             */

/* MHD's unescaping, except that a path or argument holding %00 is left
 * escaped: decoded, the NUL would end the string there, and
 * /api/imports/colors%00x would import into colors. Escaped, it is no
 * pipeline, job id or valid argument. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    if (strstr(s, "%00") != NULL)
        return strlen(s);
    return MHD_http_unescape(s);
}

/* The charset parameter of Content-Type ct, lower-cased and unquoted,
 * into buf ("" when there is none). */
static void charset_of(const char *ct, char *buf, size_t n)
{
    const char *p = ct ? strchr(ct, ';') : NULL;
    size_t i = 0;

    buf[0] = '\0';
    while (p != NULL) {
        p++;
        while (*p == ' ')
            p++;
        if (strncasecmp(p, "charset=", 8) == 0) {
            p += 8;
            if (*p == '"')
                p++;
            while (*p && *p != ';' && *p != '"' && *p != ' ' && i + 1 < n)
                buf[i++] = (char)tolower((unsigned char)*p++);
            buf[i] = '\0';
            return;
        }
        p = strchr(p, ';');
    }
}

/* Content-Type without parameters, lower-cased, into buf. */
static void media_type(const char *ct, char *buf, size_t n)
{
    size_t i = 0;
    if (ct == NULL)
        ct = "";
    while (*ct == ' ')
        ct++;
    while (*ct && *ct != ';' && *ct != ' ' && i + 1 < n)
        buf[i++] = (char)tolower((unsigned char)*ct++);
    buf[i] = '\0';
}

/* First call for a request: route, authenticate, and refuse uploads that
 * cannot succeed before their body is read. Returns MHD_YES to go on
 * (r->answered says whether a response is queued already). */
/* MHD_KeyValueIterator: stop at the first query parameter that is not
 * UTF-8 (it would reach the database or a message), naming it. */
static enum MHD_Result utf8_arg(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
    const char **bad = cls;

    (void)kind;
    if (ig_utf8_len(key, strlen(key)) < 0 ||
        (value != NULL && ig_utf8_len(value, strlen(value)) < 0)) {
        *bad = key;
        return MHD_NO;
    }
    return MHD_YES;
}

static enum MHD_Result on_headers(ig_http *h, struct MHD_Connection *c,
                                  const char *url, const char *method, req *r)
{
    const char *want;
    const char *cl;
    char mt[128];

    r->r = parse_route(url, method, r);
    if (r->r != ROUTE_HEALTH && !authorized(h, c)) {
        r->answered = 1;
        return send_error(c, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                          "missing or wrong bearer token (send "
                          "'Authorization: Bearer <INGOT_API_TOKEN>')");
    }
    if (r->r == ROUTE_NONE) {
        r->answered = 1;
        return send_error(c, MHD_HTTP_NOT_FOUND, "not_found", "no route %s %s",
                          method, url);
    }
    want = route_method(r->r);
    if (strcmp(method, want) != 0 &&
        !(strcmp(method, "HEAD") == 0 && strcmp(want, "GET") == 0)) {
        /* 405 names the methods the route takes, in Allow too (RFC 9110);
         * /api/imports/jobs also takes POST (an import into a pipeline
         * named jobs). */
        int jobs = r->r == ROUTE_JOBS;
        r->answered = 1;
        return send_error_h(c, MHD_HTTP_METHOD_NOT_ALLOWED, "Allow",
                            jobs ? "GET, HEAD, POST"
                            : strcmp(want, "GET") == 0 ? "GET, HEAD"
                                                       : want,
                            "method_not_allowed", "%s %s: use %s", method,
                            url, jobs ? "GET or POST" : want);
    }
    {
        const char *bad = NULL;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, utf8_arg, &bad);
        if (bad != NULL) {
            r->answered = 1;
            return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                              "query parameter '%s' is not UTF-8", bad);
        }
    }
    if (r->r == ROUTE_IMPORT) {
        const char *bg = query(c, "background");
        if (bg != NULL && strcmp(bg, "1") != 0 && strcmp(bg, "true") != 0 &&
            strcmp(bg, "0") != 0 && strcmp(bg, "false") != 0) {
            r->answered = 1;
            return send_error(c, MHD_HTTP_BAD_REQUEST, "bad_query",
                              "background must be 1, true, 0 or false, not "
                              "'%s'", bg);
        }
    }
    if (r->r != ROUTE_IMPORT)
        return MHD_YES;
    if (!pipeline_exists(h, r->pipeline)) {
        r->answered = 1;
        return send_error(c, MHD_HTTP_NOT_FOUND, "pipeline_not_found",
                          "no pipeline '%s' in the pipeline directory",
                          r->pipeline);
    }
    media_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_CONTENT_TYPE),
               mt, sizeof(mt));
    charset_of(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                           MHD_HTTP_HEADER_CONTENT_TYPE),
               r->charset, sizeof(r->charset));
    if (strcmp(mt, "text/csv") == 0) {
        r->fmt = FMT_CSV;
    } else if (strcmp(mt, "application/json") == 0) {
        r->fmt = FMT_JSON;
    } else {
        r->answered = 1;
        return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                          "unsupported_media_type",
                          "Content-Type '%s' is not supported: send text/csv "
                          "or application/json",
                          mt);
    }
    cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl != NULL && strtoll(cl, NULL, 10) > h->conf->max_body_bytes) {
        r->answered = 1;
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                          "the body has %lld bytes, more than "
                          "INGOT_MAX_BODY_BYTES=%ld",
                          strtoll(cl, NULL, 10), h->conf->max_body_bytes);
    }
    /* From here the request is an import being uploaded: a stop waits
     * for its answer (see ig_http_free). */
    pthread_mutex_lock(&h->mu);
    h->imports_open++;
    r->counted = 1;
    pthread_mutex_unlock(&h->mu);
    return MHD_YES;
}

static void append_body(ig_http *h, req *r, const char *data, size_t n)
{
    if (r->too_large)
        return;
    if (r->len + n > (size_t)h->conf->max_body_bytes) {
        r->too_large = 1; /* chunked upload: refused once it is read */
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->len + n + 1)
            cap *= 2;
        r->body = ig_xrealloc(r->body, cap);
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
}

static enum MHD_Result dispatch(ig_http *h, struct MHD_Connection *c, req *r)
{
    switch (r->r) {
    case ROUTE_HEALTH:
        return handle_health(h, c);
    case ROUTE_METRICS:
        return handle_metrics(h, c);
    case ROUTE_JOBS:
        return handle_jobs(h, c);
    case ROUTE_IMPORT:
        if (r->too_large)
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "body_too_large",
                              "the body is larger than "
                              "INGOT_MAX_BODY_BYTES=%ld",
                              h->conf->max_body_bytes);
        return handle_import(h, c, r);
    case ROUTE_PROGRESS:
        return handle_progress(h, c, r);
    case ROUTE_RESULTS:
        return handle_results(h, c, r);
    case ROUTE_CANCEL:
        return handle_cancel(h, c, r);
    case ROUTE_NONE:
    default:
        ig_assert(0);
    }
    return MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    ig_http *h = cls;
    req *r = *con_cls;

    (void)version;
    if (r == NULL) {
        r = ig_xcalloc(1, sizeof(*r));
        *con_cls = r;
        return on_headers(h, c, url, method, r);
    }
    if (*upload_data_size > 0) {
        if (!r->answered && r->r == ROUTE_IMPORT)
            append_body(h, r, upload_data, *upload_data_size);
        *upload_data_size = 0; /* consumed (or discarded) */
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    r->answered = 1;
    return dispatch(h, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    ig_http *h = cls;
    req *r = *con_cls;

    (void)c;
    (void)toe;
    if (r != NULL && r->counted) {
        pthread_mutex_lock(&h->mu);
        h->imports_open--;
        pthread_cond_broadcast(&h->idle);
        pthread_mutex_unlock(&h->mu);
    }
    if (r != NULL) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

/* "host:port" / "[v6]:port" -> a bindable address. */
static int resolve_listen(const char *listen, struct addrinfo **out,
                          ig_err *err)
{
    const char *setting = listen ? listen : "";
    char host[256], port[16];
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    struct addrinfo hints;
    size_t hl;
    int g;

    if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(port))
        return ig_err_set(err, IG_USAGE,
                          "INGOT_HTTP_LISTEN=%s: expected "
                          "HOST:PORT",
                          listen ? listen : "");
    hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
    snprintf(port, sizeof(port), "%s", colon + 1);
    /* getaddrinfo() takes 83714 as 83714 mod 65536: refuse it. */
    if (strspn(port, "0123456789") != strlen(port) || atol(port) < 1 ||
        atol(port) > 65535)
        return ig_err_set(err, IG_USAGE,
                          "INGOT_HTTP_LISTEN=%s: the port must be a number "
                          "from 1 to 65535", setting);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    g = getaddrinfo(host[0] ? host : NULL, port, &hints, out);
    if (g != 0)
        return ig_err_set(err, IG_USAGE, "INGOT_HTTP_LISTEN=%s: %s", listen,
                          gai_strerror(g));
    return IG_OK;
}

ig_http *ig_http_start(const ig_http_opts *opts, ig_err *err)
{
    ig_http *h = NULL;
    struct addrinfo *ai = NULL;
    ig_pool_opts po;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ITC; /* for MHD_quiesce_daemon */
    const union MHD_DaemonInfo *info;

    if (opts == NULL || opts->conf == NULL || opts->token == NULL ||
        opts->token[0] == '\0' || opts->pipeline_dir == NULL ||
        opts->progress == NULL) {
        ig_err_set(err, IG_USAGE,
                   "http: an API token, a pipeline dir and a "
                   "progress store are required");
        return NULL;
    }
    if (resolve_listen(opts->listen, &ai, err) != IG_OK)
        return NULL;
    h = ig_xcalloc(1, sizeof(*h));
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->idle, NULL);
    h->conf = opts->conf;
    h->token = ig_xstrdup(opts->token);
    h->token_len = strlen(h->token);
    h->pipeline_dir = ig_xstrdup(opts->pipeline_dir);
    h->progress = opts->progress;
    h->worker = opts->worker;
    memset(&po, 0, sizeof(po));
    po.conninfo = opts->conf->database_url;
    po.size = opts->conf->pool_size > HTTP_POOL_MIN ? (int)opts->conf->pool_size
                                                    : HTTP_POOL_MIN;
    po.connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS;
    po.statement_timeout_ms = opts->conf->statement_timeout_ms;
    po.idle_tx_timeout_ms = opts->conf->lease_seconds * 1000L;
    h->pool = ig_pool_new(&po, err);
    if (h->pool == NULL)
        goto fail;
    h->import_pool = ig_pool_new(&po, err);
    if (h->import_pool == NULL)
        goto fail;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)IG_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)IG_HTTP_MAX_CONNECTIONS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IG_HTTP_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (h->d == NULL) {
        ig_err_set(err, IG_IO,
                   "cannot listen on %s (address in use or not "
                   "local?)",
                   opts->listen);
        goto fail;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    freeaddrinfo(ai);
    return h;
fail:
    freeaddrinfo(ai);
    ig_http_free(h);
    return NULL;
}

int ig_http_port(const ig_http *h)
{
    return h->port;
}

void ig_http_free(ig_http *h)
{
    MHD_socket listener = MHD_INVALID_SOCKET;
    struct timespec until;

    if (h == NULL)
        return;
    if (h->d) {
        /* No new connections; synchronous imports stop at their next
         * batch boundary and answer with what they committed (stopping
         * the daemon first would shut their sockets before the answer). */
        listener = MHD_quiesce_daemon(h->d);
        /* The daemon no longer uses it: closed now, a new client is
         * refused at once instead of waiting in the backlog. */
        if (listener != MHD_INVALID_SOCKET)
            close(listener);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += SHUTDOWN_WAIT_S;
        pthread_mutex_lock(&h->mu);
        h->stopping = 1;
        while (h->imports_open > 0 &&
               pthread_cond_timedwait(&h->idle, &h->mu, &until) == 0)
            ;
        pthread_mutex_unlock(&h->mu);
        MHD_stop_daemon(h->d);
    }
    ig_pool_free(h->import_pool);
    ig_pool_free(h->pool);
    free(h->token);
    free(h->pipeline_dir);
    pthread_cond_destroy(&h->idle);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
