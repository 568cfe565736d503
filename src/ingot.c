/*
 * ingot.c - the exported embedding API (src/ingot.h), a thin layer over
 * conf, pipeline, pool, results and runner. The ingot CLI's "run" command
 * is built on it, so the program and embedders share one code path.
 */
#include "ingot.h"

#include "conf.h"
#include "log.h"
#include "pipeline.h"
#include "pool.h"
#include "report.h"
#include "results.h"
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ingot {
    ingot_settings s;
    char *database_url;
    char *pipeline_dir;
    char *reject_file;
    ig_pool *pool;
};

struct ingot_result {
    char *pipeline;
    int status;
    char error[1024];
    double seconds;
    ig_results *results; /* NULL when the import could not start */
    ig_counts counts;
};

/* ingot_settings_init's strings (documented as valid until its next call;
 * like getenv's results, not for concurrent callers). */
static char g_database_url[4097];
static char g_pipeline_dir[4097];

const char *ingot_version(void)
{
    return INGOT_VERSION;
}

int ingot_settings_init(ingot_settings *s, char *errbuf, size_t errlen)
{
    ig_conf c;
    ig_err err;

    /* The settings an import uses, those below; a bad worker setting
     * (INGOT_WORKER_THREADS=many, say) is not the embedding program's
     * concern. */
    static const char *const used[] = {
        "DATABASE_URL", "INGOT_PIPELINE_DIR", "IMPORT_BATCH_SIZE",
        "IMPORT_MAX_ROWS", "IMPORT_TIMEOUT_SECONDS",
        "IMPORT_STATEMENT_TIMEOUT_MS", "IMPORT_POOL_SIZE", "IMPORT_WRITERS",
        "IMPORT_INSERT_FIRST", "IMPORT_MERGE", "INGOT_LOG_LEVEL", NULL};

    memset(s, 0, sizeof(*s));
    ig_conf_init(&c);
    if (ig_conf_load_only(&c, ".env", 0, used, &err) != IG_OK) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "%s", err.msg);
        ig_conf_fini(&c);
        return -1;
    }
    /* .env values are not in the environment: keep copies that outlive
     * the conf (ingot.h: valid until the next ingot_settings_init). */
    snprintf(g_database_url, sizeof(g_database_url), "%s",
             c.database_url ? c.database_url : "");
    snprintf(g_pipeline_dir, sizeof(g_pipeline_dir), "%s",
             c.pipeline_dir ? c.pipeline_dir : "");
    s->database_url = c.database_url ? g_database_url : NULL;
    s->pipeline_dir = c.pipeline_dir ? g_pipeline_dir : NULL;
    s->batch_size = c.batch_size;
    s->max_rows = c.max_rows;
    s->timeout_seconds = c.timeout_seconds;
    s->statement_timeout_ms = c.statement_timeout_ms;
    s->pool_size = (int)c.pool_size;
    s->writers = (int)c.writers;
    s->insert_first = (int)c.insert_first;
    s->merge = (int)c.merge;
    /* The library's log lines (retries, warnings) go to stderr at this
     * level, process-wide: ingot.h says so. */
    ig_log_set_level((ig_log_level)c.log_level);
    ig_conf_fini(&c);
    return 0;
}

/* Whether v is in the range of the settings table's key (conf.c) or, with
 * zero_ok, 0 (none / the default); otherwise say which field and setting
 * in errbuf. */
static int in_range(const char *field, const char *key, long long v,
                    int zero_ok, char *errbuf, size_t errlen)
{
    const ig_conf_key *k = ig_conf_find(key);

    if ((zero_ok && v == 0) || k == NULL || (v >= k->min && v <= k->max))
        return 1;
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "ingot_open: %s = %lld is out of range: "
                 "%ld..%ld%s, as %s", field, v, k->min, k->max,
                 zero_ok ? " or 0" : "", key);
    return 0;
}

/* ingot_open's check of every numeric setting and the pipeline dir. */
static int settings_ok(const ingot_settings *s, char *errbuf, size_t errlen)
{
    if (s == NULL) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "ingot_open: no settings (fill them "
                     "with ingot_settings_init)");
        return 0;
    }
    if (s->pipeline_dir != NULL && s->pipeline_dir[0] == '\0') {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "ingot_open: pipeline_dir is empty "
                     "(NULL searches the default places)");
        return 0;
    }
    return in_range("batch_size", "IMPORT_BATCH_SIZE", s->batch_size, 0,
                    errbuf, errlen) &&
           in_range("max_rows", "IMPORT_MAX_ROWS", s->max_rows, 0, errbuf,
                    errlen) &&
           in_range("timeout_seconds", "IMPORT_TIMEOUT_SECONDS",
                    s->timeout_seconds, 1, errbuf, errlen) &&
           in_range("statement_timeout_ms", "IMPORT_STATEMENT_TIMEOUT_MS",
                    s->statement_timeout_ms, 0, errbuf, errlen) &&
           in_range("pool_size", "IMPORT_POOL_SIZE", s->pool_size, 1, errbuf,
                    errlen) &&
           in_range("writers", "IMPORT_WRITERS", s->writers, 1, errbuf,
                    errlen) &&
           in_range("insert_first", "IMPORT_INSERT_FIRST", s->insert_first, 0,
                    errbuf, errlen) &&
           in_range("merge", "IMPORT_MERGE", s->merge, 0, errbuf, errlen);
}

ingot *ingot_open(const ingot_settings *s, char *errbuf, size_t errlen)
{
    ingot *in;
    ig_pool_opts po;
    ig_err err;

    if (!settings_ok(s, errbuf, errlen))
        return NULL;
    in = ig_xcalloc(1, sizeof(*in));
    in->s = *s;
    in->database_url = ig_strdup(s->database_url);
    in->pipeline_dir = ig_strdup(s->pipeline_dir);
    in->reject_file = ig_strdup(s->reject_file);
    memset(&po, 0, sizeof(po));
    po.conninfo = in->database_url;
    /* Each writer holds a connection; one more can ask a lost COMMIT's
     * fate. */
    po.size = s->pool_size;
    if (po.size < (s->writers > 1 ? s->writers : 1) + 1)
        po.size = (s->writers > 1 ? s->writers : 1) + 1;
    po.statement_timeout_ms = s->statement_timeout_ms;
    in->pool = ig_pool_new(&po, &err);
    if (in->pool == NULL) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "%s", err.msg);
        ingot_close(in);
        return NULL;
    }
    return in;
}

void ingot_close(ingot *in)
{
    if (in == NULL)
        return;
    ig_pool_free(in->pool);
    free(in->database_url);
    free(in->pipeline_dir);
    free(in->reject_file);
    free(in);
}

/* A name ("items") or a path ("x/items.yaml"). */
static ig_pipeline *load_pipeline(const ingot *in, const char *name,
                                  ig_err *err)
{
    ig_pipeline_opts po;
    size_t n = strlen(name);
    char dir[4096];
    struct stat st;

    memset(&po, 0, sizeof(po));
    po.check_hooks = 1;
    if (strchr(name, '/') != NULL ||
        (n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
        (n > 4 && strcmp(name + n - 4, ".yml") == 0))
        return ig_pipeline_load(name, &po, err);
    if (in->pipeline_dir)
        snprintf(dir, sizeof(dir), "%s", in->pipeline_dir);
    else if (stat("pipelines", &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(dir, sizeof(dir), "pipelines");
    else {
        snprintf(dir, sizeof(dir), "%s/pipelines", INGOT_DATA_DIR);
        if (stat(dir, &st) != 0)
            snprintf(dir, sizeof(dir), "%s/pipelines", INGOT_SOURCE_DIR);
    }
    return ig_pipeline_load_named(dir, name, &po, err);
}

static void progress_cb(const ig_run_progress *p, void *ud)
{
    const ingot *in = ud;
    if (in->s.progress)
        in->s.progress(p->rows, p->total_rows, p->bytes, p->bytes_total,
                       p->elapsed, in->s.progress_ud);
}

static int map_status(ig_run_status s)
{
    switch (s) {
    case IG_RUN_DONE: return INGOT_DONE;
    case IG_RUN_TIMED_OUT: return INGOT_TIMED_OUT;
    case IG_RUN_CANCELED: return INGOT_CANCELED;
    case IG_RUN_LIMIT: return INGOT_LIMIT;
    case IG_RUN_FAILED: return INGOT_FAILED;
    }
    return INGOT_FAILED;
}

/* Refuse, before any row is read, a reject file that is the input itself
 * (created at the first failed row, it would cut the input short) or
 * that could not be created. */
static int check_reject(const char *path, FILE *input, ig_err *err)
{
    struct stat rs, is;
    char *dir, *slash;
    int ok;

    if (path[0] == '\0')
        return ig_err_set(err, IG_CONFIG, "the reject file path is empty");
    if (stat(path, &rs) == 0) {
        if (input != NULL && fstat(fileno(input), &is) == 0 &&
            rs.st_dev == is.st_dev && rs.st_ino == is.st_ino)
            return ig_err_set(err, IG_CONFIG,
                              "%s: the reject file would be the input "
                              "itself; choose another path", path);
        if (S_ISDIR(rs.st_mode))
            return ig_err_set(err, IG_IO, "%s: cannot write the reject "
                              "file: it is a directory", path);
        if (access(path, W_OK) != 0)
            return ig_err_set(err, IG_IO, "%s: cannot write the reject "
                              "file: %s", path, strerror(errno));
        return IG_OK;
    }
    if (errno != ENOENT)
        return ig_err_set(err, IG_IO, "%s: cannot write the reject file: %s",
                          path, strerror(errno));
    dir = ig_xstrdup(path); /* a new file: its directory must take it */
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    ok = access(slash ? dir : ".", W_OK | X_OK) == 0;
    if (!ok)
        ig_err_set(err, IG_IO, "%s: cannot write the reject file: %s", path,
                   strerror(errno));
    free(dir);
    return ok ? IG_OK : IG_IO;
}

/* The one path every ingot_run_* takes. */
/* A result that failed before any work: bad arguments, an input that
 * cannot be opened. */
static ingot_result *refused(const char *pipeline, const char *fmt, ...)
{
    ingot_result *r = ig_xcalloc(1, sizeof(*r));
    va_list ap;

    r->pipeline = ig_xstrdup(pipeline ? pipeline : "");
    r->status = INGOT_FAILED;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    return r;
}

static ingot_result *run(ingot *in, const char *pipeline, FILE *f,
                         const char *buf, size_t len, const char *name,
                         int seekable, long long size, volatile int *cancel)
{
    ingot_result *res = ig_xcalloc(1, sizeof(*res));
    ig_pipeline *p = NULL;
    ig_run_opts o;
    ig_run_progress fin;
    ig_run_status st = IG_RUN_FAILED;
    ig_err err;
    int rc;

    ig_err_clear(&err);
    res->pipeline = ig_xstrdup(pipeline);
    res->status = INGOT_FAILED;
    p = load_pipeline(in, pipeline, &err);
    if (p == NULL)
        goto out;
    {
        size_t nt = ig_pipeline_ntargets(p);
        const char **names = ig_xcalloc(nt ? nt : 1, sizeof(char *));
        ig_results_opts ro = {nt, names, 1000};
        for (size_t t = 0; t < nt; t++)
            names[t] = ig_pipeline_target(p, t)->name;
        res->results = ig_results_new(&ro);
        free(names);
    }
    if (in->reject_file && check_reject(in->reject_file, f, &err) != IG_OK)
        goto out;
    memset(&o, 0, sizeof(o));
    o.pipeline = p;
    o.pool = in->pool;
    o.file = f;
    o.buf = buf;
    o.buf_len = len;
    o.input_name = name;
    o.bytes_total = size;
    o.batch_size = in->s.batch_size;
    o.max_rows = in->s.max_rows;
    o.timeout_seconds = in->s.timeout_seconds;
    o.dry_run = in->s.dry_run;
    o.seekable = seekable;
    o.reject = in->reject_file;
    o.progress = progress_cb;
    o.progress_ud = in;
    o.cancel = cancel;
    o.writers = in->s.writers;
    o.no_insert_first = !in->s.insert_first;
    o.no_merge = !in->s.merge;
    memset(&fin, 0, sizeof(fin));
    rc = ig_run(&o, res->results, &st, &fin, &err);
    res->seconds = fin.elapsed;
    res->status = map_status(st);
    if (rc != IG_OK)
        res->status = INGOT_FAILED;
out:
    if (res->status != INGOT_DONE)
        snprintf(res->error, sizeof(res->error), "%s",
                 err.msg[0] ? err.msg : "import failed");
    if (res->results)
        res->counts = ig_results_counts(res->results);
    ig_pipeline_free(p);
    return res;
}

ingot_result *ingot_run_file(ingot *in, const char *pipeline, FILE *f,
                             const char *name, volatile int *cancel)
{
    struct stat st;
    int seekable;

    if (in == NULL || pipeline == NULL || f == NULL)
        return refused(pipeline, "ingot_run_file: %s is NULL",
                       in == NULL ? "the runner" : pipeline == NULL
                                                       ? "the pipeline"
                                                       : "the FILE");
    seekable = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
               ftell(f) == 0;
    return run(in, pipeline, f, NULL, 0, name ? name : "input", seekable,
               seekable ? (long long)st.st_size : 0, cancel);
}

ingot_result *ingot_run_path(ingot *in, const char *pipeline,
                             const char *path, volatile int *cancel)
{
    ingot_result *r;
    FILE *f;
    struct stat st;

    if (in == NULL || pipeline == NULL || path == NULL)
        return refused(pipeline, "ingot_run_path: %s is NULL",
                       in == NULL ? "the runner" : pipeline == NULL
                                                       ? "the pipeline"
                                                       : "the path");
    if (strcmp(path, "-") == 0)
        return ingot_run_file(in, pipeline, stdin, "-", cancel);
    f = fopen(path, "rb");
    if (f == NULL)
        return refused(pipeline, "%s: cannot open: %s", path,
                       strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return refused(pipeline, "%s: is a directory, not a CSV file", path);
    }
    r = ingot_run_file(in, pipeline, f, path, cancel);
    fclose(f);
    return r;
}

ingot_result *ingot_run_buffer(ingot *in, const char *pipeline,
                               const char *buf, size_t len, const char *name,
                               volatile int *cancel)
{
    if (in == NULL || pipeline == NULL || (buf == NULL && len > 0))
        return refused(pipeline, "ingot_run_buffer: %s is NULL",
                       in == NULL ? "the runner" : pipeline == NULL
                                                       ? "the pipeline"
                                                       : "the buffer");
    return run(in, pipeline, NULL, buf ? buf : "", len, name ? name : "buffer", 1,
               (long long)len, cancel);
}

void ingot_result_free(ingot_result *r)
{
    if (r == NULL)
        return;
    ig_results_free(r->results);
    free(r->pipeline);
    free(r);
}

int ingot_result_status(const ingot_result *r)
{
    return r ? r->status : INGOT_FAILED;
}

const char *ingot_result_status_name(const ingot_result *r)
{
    static const char *const names[] = {"done", "timed_out", "canceled",
                                        "limit", "failed"};
    return r && r->status >= 0 && r->status <= INGOT_FAILED
               ? names[r->status]
               : "failed";
}

const char *ingot_result_error(const ingot_result *r)
{
    if (r == NULL)
        return "no result (NULL)";
    return r->status == INGOT_DONE ? "" : r->error;
}

int ingot_result_exit_code(const ingot_result *r)
{
    if (r == NULL || r->status != INGOT_DONE)
        return 2;
    if (r->counts.failed == 0)
        return 0;
    return r->counts.failed < r->counts.read ? 1 : 2;
}

static long long pick(const ig_counts *c, int which)
{
    switch (which) {
    case INGOT_READ: return c->read;
    case INGOT_INSERTED: return c->inserted;
    case INGOT_UPDATED: return c->updated;
    case INGOT_UNCHANGED: return c->unchanged;
    case INGOT_SKIPPED: return c->skipped;
    case INGOT_FAILED_ROWS: return c->failed;
    default: return 0;
    }
}

long long ingot_result_count(const ingot_result *r, int which)
{
    return r ? pick(&r->counts, which) : 0;
}

double ingot_result_seconds(const ingot_result *r)
{
    return r ? r->seconds : 0.0;
}

double ingot_result_success_rate(const ingot_result *r, int decimals)
{
    if (r == NULL)
        return 0.0;
    return ig_report_success_rate(r->counts.read, r->counts.failed,
                                  decimals < 0   ? 0
                                  : decimals > 6 ? 6
                                                 : decimals);
}

const char *ingot_result_pipeline(const ingot_result *r)
{
    return r ? r->pipeline : "";
}

size_t ingot_result_ntargets(const ingot_result *r)
{
    return r && r->results ? ig_results_ntargets(r->results) : 0;
}

const char *ingot_result_target(const ingot_result *r, size_t t)
{
    return r && r->results ? ig_results_target_name(r->results, t) : NULL;
}

long long ingot_result_target_count(const ingot_result *r, size_t t,
                                    int which)
{
    ig_counts c;
    if (r == NULL || r->results == NULL)
        return 0;
    c = ig_results_target_counts(r->results, t);
    return pick(&c, which);
}

static const ig_failed_row *frow(const ingot_result *r, size_t i)
{
    return r && r->results ? ig_results_failed_row(r->results, i) : NULL;
}

size_t ingot_result_nfailed(const ingot_result *r)
{
    return r && r->results ? ig_results_nfailed_kept(r->results) : 0;
}

long long ingot_result_failed_row(const ingot_result *r, size_t i)
{
    const ig_failed_row *f = frow(r, i);
    return f ? f->row : 0;
}

long long ingot_result_failed_line(const ingot_result *r, size_t i)
{
    const ig_failed_row *f = frow(r, i);
    return f ? f->line : 0;
}

size_t ingot_result_failed_nreasons(const ingot_result *r, size_t i)
{
    const ig_failed_row *f = frow(r, i);
    return f ? f->nreasons : 0;
}

const char *ingot_result_failed_reason(const ingot_result *r, size_t i,
                                       size_t j, const char **target,
                                       const char **column, const char **code,
                                       const char **constraint)
{
    const ig_failed_row *f = frow(r, i);
    const ig_reason *e;

    if (target)
        *target = NULL;
    if (column)
        *column = NULL;
    if (code)
        *code = NULL;
    if (constraint)
        *constraint = NULL;
    if (f == NULL || j >= f->nreasons)
        return NULL;
    e = &f->reasons[j];
    if (target)
        *target = e->target;
    if (column)
        *column = e->column;
    if (code)
        *code = e->code;
    if (constraint)
        *constraint = e->constraint;
    return e->message;
}

size_t ingot_result_failed_nvalues(const ingot_result *r, size_t i)
{
    const ig_failed_row *f = frow(r, i);
    return f ? f->nvalues : 0;
}

const char *ingot_result_failed_value(const ingot_result *r, size_t i,
                                      size_t k)
{
    const ig_failed_row *f = frow(r, i);
    return f && k < f->nvalues ? f->values[k] : NULL;
}
