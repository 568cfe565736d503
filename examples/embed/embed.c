/*
 * embed.c - the smallest program that embeds ingot through libingot.
 *
 * Imports a CSV file through a pipeline and prints a summary: the counts,
 * the per-target counts, and each failed row with its reasons and original
 * values. It includes nothing of ingot's but "ingot.h" and links only
 * libingot; settings come from the environment and ./.env (DATABASE_URL,
 * IMPORT_BATCH_SIZE, ...), like the ingot program.
 *
 *     embed PIPELINE FILE [--buffer]
 *
 * PIPELINE is a name in the pipeline directory or a path to a .yaml file.
 * With --buffer the file is read into memory first and imported with
 * ingot_run_buffer(); otherwise ingot_run_path() reads it. The exit code is
 * ingot_result_exit_code(): 0 all rows imported, 1 some failed, 2 none
 * imported or the import failed.
 */
#include "ingot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Read a whole file into memory. Owned; NULL on failure (message printed). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;

    if (f == NULL) {
        perror(path);
        return NULL;
    }
    do {
        if (n == cap) {
            char *bigger;
            cap = cap ? 2 * cap : 65536;
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                fprintf(stderr, "%s: out of memory\n", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = bigger;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        perror(path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static const char *or_dash(const char *s)
{
    return s != NULL ? s : "-";
}

/* Print one failed row: where, why (every reason), and its values. */
static void print_failed(const ingot_result *r, size_t i)
{
    size_t nreasons = ingot_result_failed_nreasons(r, i);
    size_t nvalues = ingot_result_failed_nvalues(r, i);

    printf("failed row %lld (line %lld):\n", ingot_result_failed_row(r, i),
           ingot_result_failed_line(r, i));
    for (size_t j = 0; j < nreasons; j++) {
        const char *target, *column, *code, *constraint, *msg;
        msg = ingot_result_failed_reason(r, i, j, &target, &column, &code,
                                         &constraint);
        printf("  reason: target=%s column=%s code=%s constraint=%s: %s\n",
               or_dash(target), or_dash(column), or_dash(code),
               or_dash(constraint), or_dash(msg));
    }
    printf("  values:");
    for (size_t k = 0; k < nvalues; k++)
        printf(" [%s]", or_dash(ingot_result_failed_value(r, i, k)));
    printf("\n");
}

static void print_summary(const ingot_result *r)
{
    static const char *const names[] = {"read", "inserted", "updated",
                                        "unchanged", "skipped", "failed"};
    size_t nt = ingot_result_ntargets(r);

    printf("pipeline: %s\n", ingot_result_pipeline(r));
    printf("status: %s\n", ingot_result_status_name(r));
    if (ingot_result_status(r) != INGOT_DONE)
        printf("error: %s\n", ingot_result_error(r));
    printf("counts:");
    for (int w = INGOT_READ; w <= INGOT_FAILED_ROWS; w++)
        printf(" %s=%lld", names[w], ingot_result_count(r, w));
    printf("\n");
    for (size_t t = 0; t < nt; t++) {
        printf("target %s:", ingot_result_target(r, t));
        for (int w = INGOT_INSERTED; w <= INGOT_SKIPPED; w++)
            printf(" %s=%lld", names[w], ingot_result_target_count(r, t, w));
        printf("\n");
    }
    for (size_t i = 0; i < ingot_result_nfailed(r); i++)
        print_failed(r, i);
}

int main(int argc, char **argv)
{
    ingot_settings s;
    ingot *in = NULL;
    ingot_result *r = NULL;
    char errbuf[512];
    char *buf = NULL;
    size_t len = 0;
    int use_buffer = argc == 4 && strcmp(argv[3], "--buffer") == 0;
    int code = 2;

    if (argc != 3 && !use_buffer) {
        fprintf(stderr, "usage: %s PIPELINE FILE [--buffer]\n", argv[0]);
        return 2;
    }
    if (ingot_settings_init(&s, errbuf, sizeof(errbuf)) != 0) {
        fprintf(stderr, "settings: %s\n", errbuf);
        return 2;
    }
    s.reject_file = NULL; /* failed rows are read through the API below */
    in = ingot_open(&s, errbuf, sizeof(errbuf));
    if (in == NULL) {
        fprintf(stderr, "ingot_open: %s\n", errbuf);
        goto out;
    }
    printf("libingot %s\n", ingot_version());
    if (use_buffer) {
        buf = slurp(argv[2], &len);
        if (buf == NULL)
            goto out;
        r = ingot_run_buffer(in, argv[1], buf, len, argv[2], NULL);
    } else {
        r = ingot_run_path(in, argv[1], argv[2], NULL);
    }
    print_summary(r);
    code = ingot_result_exit_code(r);
    printf("exit: %d\n", code);

out:
    ingot_result_free(r);
    ingot_close(in);
    free(buf);
    return code;
}
