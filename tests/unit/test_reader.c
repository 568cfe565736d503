/*
 * test_reader.c - the streaming CSV reader: RFC 4180 parsing, positions
 * (recno, line, byte offset), malformed records as data, encodings, chunk
 * boundaries, and flat memory over a large input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "reader.h"

/* An input given as a literal keeps its embedded NULs. */
#define MEM(s) (s), (sizeof(s) - 1)

/* check_fields(rec, "a", "b") compares count, bytes and lengths. */
#define FIELDS(rec, ...)                                                       \
    check_fields((rec), (const char *const[]){__VA_ARGS__},                    \
                 sizeof((const char *const[]){__VA_ARGS__}) /                  \
                     sizeof(const char *))

static void check_fields(const ig_record *rec, const char *const *want,
                         size_t n)
{
    assert_int_equal(rec->nfields, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rec->fields[i].is_null, 0);
        assert_int_equal(rec->fields[i].len, strlen(want[i]));
        assert_string_equal(rec->fields[i].p, want[i]);
    }
}

static ig_reader *open_opts(ig_reader_opts o)
{
    ig_err err;
    ig_reader *r = ig_reader_new(&o, &err);

    if (r == NULL)
        fail_msg("ig_reader_new: %s", err.msg);
    return r;
}

static ig_reader *open_mem(const char *s, size_t n, int header)
{
    ig_reader_opts o = {.buf = s, .buf_len = n, .header = header};
    return open_opts(o);
}

static void next(ig_reader *r, ig_arena *a, ig_record *rec)
{
    ig_err err;
    int got = 0;

    if (ig_reader_next(r, a, rec, &got, &err) != IG_OK)
        fail_msg("ig_reader_next: %s", err.msg);
    assert_int_equal(got, 1);
}

static void at_end(ig_reader *r, ig_arena *a)
{
    ig_record rec;
    ig_err err;
    int got = 1;

    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_OK);
    assert_int_equal(got, 0);
    /* ... and it stays there. */
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_OK);
    assert_int_equal(got, 0);
}

static void pos(const ig_record *rec, long long recno, long long line,
                long long offset)
{
    assert_int_equal(rec->recno, recno);
    assert_int_equal(rec->line, line);
    assert_int_equal(rec->offset, offset);
}

static void ok(const ig_record *rec)
{
    if (rec->error_code != NULL)
        fail_msg("unexpected %s: %s", rec->error_code, rec->error);
    assert_null(rec->error);
}

static void bad(const ig_record *rec, const char *code, const char *frag)
{
    assert_non_null(rec->error_code);
    assert_string_equal(rec->error_code, code);
    assert_non_null(rec->error);
    if (strstr(rec->error, frag) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", rec->error, frag);
}

static FILE *file_with(const char *s, size_t n)
{
    FILE *f = tmpfile();

    assert_non_null(f);
    assert_int_equal(fwrite(s, 1, n, f), n);
    rewind(f);
    return f;
}

/* ------------------------------------------------------------------ */

static void test_reader_simple_file(void **state)
{
    static const char in[] = "id,name\n1,apple\n2,pear\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    assert_int_equal(ig_reader_ncolumns(r), 2);
    assert_string_equal(ig_reader_column(r, 0), "id");
    assert_string_equal(ig_reader_column(r, 1), "name");
    assert_null(ig_reader_column(r, 2));
    assert_int_equal(ig_reader_bytes(r), 8);
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 8);
    FIELDS(&rec, "1", "apple");
    assert_int_equal(ig_reader_bytes(r), 16);
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 16);
    FIELDS(&rec, "2", "pear");
    at_end(r, a);
    assert_int_equal(ig_reader_bytes(r), (long long)sizeof(in) - 1);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_header_names_trimmed(void **state)
{
    static const char in[] = " id ,\tname \t,\" q \"\n1,2,3\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    assert_int_equal(ig_reader_ncolumns(r), 3);
    assert_string_equal(ig_reader_column(r, 0), "id");
    assert_string_equal(ig_reader_column(r, 1), "name");
    assert_int_equal(ig_reader_find_column(r, "name"), 1);
    assert_int_equal(ig_reader_find_column(r, "id"), 0);
    assert_int_equal(ig_reader_find_column(r, "nope"), -1);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "2", "3");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_header_spaces_in_data_are_kept(void **state)
{
    static const char in[] = "a,b\n 1 , x\t\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, " 1 ", " x\t");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_quoted_fields_and_embedded_newlines(void **state)
{
    static const char in[] = "a,b\n"                        /* line 1 */
                             "\"x,y\",\"say \"\"hi\"\"\"\n" /* 2 */
                             "\"l1\r\nl2\",\"m1\nm2\n\"\n"  /* 3-6 */
                             "last,\"\"\n";                 /* 7 */
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 4);
    FIELDS(&rec, "x,y", "say \"hi\"");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 23);
    FIELDS(&rec, "l1\r\nl2", "m1\nm2\n");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 3, 7, 41);
    FIELDS(&rec, "last", "");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_crlf_and_lone_cr(void **state)
{
    static const char crlf[] = "a,b\r\n1,2\r\n\"3\",4\r\n";
    static const char cr[] = "a,b\r1,2\r\r3,4";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(crlf), 1);
    ig_record rec;

    (void)state;
    assert_string_equal(ig_reader_column(r, 1), "b");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 5);
    FIELDS(&rec, "1", "2");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 10);
    FIELDS(&rec, "3", "4");
    at_end(r, a);
    ig_reader_free(r);

    r = open_mem(MEM(cr), 1);
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 4);
    FIELDS(&rec, "1", "2");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 4, 9);
    FIELDS(&rec, "3", "4");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_no_trailing_newline(void **state)
{
    static const char in1[] = "a,b\n1,2";
    static const char in2[] = "a,b\n1,\"two\"";
    static const char in3[] = "a,b\n1,";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in1), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 4);
    FIELDS(&rec, "1", "2");
    at_end(r, a);
    ig_reader_free(r);

    r = open_mem(MEM(in2), 1);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "two");
    at_end(r, a);
    ig_reader_free(r);

    r = open_mem(MEM(in3), 1);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_bom_stripped(void **state)
{
    static const char in[] = "\xEF\xBB\xBFid,name\n1,x\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    assert_string_equal(ig_reader_column(r, 0), "id");
    assert_int_equal(ig_reader_find_column(r, "id"), 0);
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 2, 11); /* offsets count the BOM: they are the file's */
    FIELDS(&rec, "1", "x");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

/* A UTF-16 file (with or without its BOM, either byte order) is refused
 * at the header with what to do, with or without a header row; a file
 * merely starting with ASCII is not mistaken for one. */
static void test_reader_utf16_refused(void **state)
{
    static const char le_bom[] = "\xFF\xFEi\0d\0\n\0";
    static const char be_bom[] = "\xFE\xFF\0i\0d\0\n";
    static const char le[] = "i\0d\0,\0n\0\n\0";
    static const char be[] = "\0i\0d\0,\0n\0\n";
    static const struct {
        const char *s;
        size_t n;
    } in[] = {{le_bom, sizeof(le_bom) - 1}, {be_bom, sizeof(be_bom) - 1},
              {le, sizeof(le) - 1}, {be, sizeof(be) - 1}};
    ig_arena *a = ig_arena_new(0);
    ig_reader *r;
    ig_record rec;
    ig_err err;
    int got;

    (void)state;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        ig_reader_opts o = {.buf = in[i].s, .buf_len = in[i].n,
                            .header = 1, .name = "u.csv"};

        assert_null(ig_reader_new(&o, &err));
        assert_int_equal(err.code, IG_DATA);
        assert_string_equal(err.msg,
                            "u.csv: the file is UTF-16, which ingot does "
                            "not read: save it as \"CSV UTF-8\", or "
                            "convert it (iconv -f UTF-16 -t UTF-8)");
        o.header = 0;
        r = open_opts(o);
        assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_DATA);
        assert_non_null(strstr(err.msg, "UTF-16"));
        ig_reader_free(r);
    }
    r = open_mem(MEM("ab\ncd\n"), 1);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "cd");
    ig_reader_free(r);
    ig_arena_free(a);
}

/* A workbook or a gzip file is named for what it is. */
static void test_reader_zip_and_gzip_refused(void **state)
{
    static const char zip[] = "PK\x03\x04\x14\0\x06\0";
    static const char gz[] = "\x1F\x8B\x08\0\0\0";
    ig_reader_opts o = {.buf = zip, .buf_len = sizeof(zip) - 1,
                        .header = 1, .name = "book.xlsx"};
    ig_err err;

    (void)state;
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_DATA);
    assert_string_equal(err.msg, "book.xlsx: the file is a ZIP archive (an "
                                 ".xlsx or .ods workbook?), not CSV: save "
                                 "the sheet as CSV");
    o.buf = gz;
    o.buf_len = sizeof(gz) - 1;
    o.name = "x.csv.gz";
    assert_null(ig_reader_new(&o, &err));
    assert_non_null(strstr(err.msg, "x.csv.gz: the file is gzip-compressed"));
}

/* The one data row of r is (f0, f1), clean, then the input ends; frees
 * r. */
static void one_row(ig_reader *r, ig_arena *a, const char *f0,
                    const char *f1)
{
    ig_record rec;

    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, f0, f1);
    at_end(r, a);
    ig_reader_free(r);
}

/* A Ctrl-Z as the input's last byte (DOS end of file) is not data, from
 * memory or a file, after a line end or not, whatever the chunk size;
 * elsewhere it is. */
static void test_reader_trailing_ctrl_z_dropped(void **state)
{
    static const char crlf[] = "a,b\r\n1,x\r\n\x1a";
    static const char bare[] = "a,b\n1,x\x1a";
    static const char inner[] = "a,b\n1,\x1ay\n";
    static const char *const in[] = {crlf, bare, inner};
    static const size_t len[] = {sizeof(crlf) - 1, sizeof(bare) - 1,
                                 sizeof(inner) - 1};
    static const char *const last[] = {"x", "x", "\x1ay"};
    ig_arena *a = ig_arena_new(0);

    (void)state;
    for (int k = 0; k < 3; k++) {
        /* 7: a chunk of inner ends on its Ctrl-Z */
        for (size_t chunk = 0; chunk <= 11; chunk += chunk ? 1 : 4) {
            FILE *f = file_with(in[k], len[k]);

            one_row(open_opts((ig_reader_opts){.file = f, .header = 1,
                                               .chunk_size = chunk}),
                    a, "1", last[k]);
            fclose(f);
        }
        one_row(open_mem(in[k], len[k], 1), a, "1", last[k]);
    }
    ig_arena_free(a);
}

static int stop_flag;
static int stop_when_flagged(void *ud)
{
    (void)ud;
    return stop_flag;
}

static FILE *pipe_with(const char *s, int *wfd)
{
    int fds[2];
    FILE *f;

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], s, strlen(s)), (ssize_t)strlen(s));
    f = fdopen(fds[0], "r");
    assert_non_null(f);
    *wfd = fds[1];
    return f;
}

/* A reader of pipe f with a header, stopped by stop_flag. */
static ig_reader *open_pipe(FILE *f)
{
    return open_opts((ig_reader_opts){.file = f, .header = 1,
                                      .stop = stop_when_flagged});
}

/* Free r and both ends of its pipe. */
static void close_pipe(ig_reader *r, FILE *f, int wfd)
{
    ig_reader_free(r);
    fclose(f);
    if (wfd >= 0)
        close(wfd);
}

/* A pipe is read as its bytes arrive: the rows its writer has written
 * come out while the writer is still busy (a whole 64 KiB chunk was
 * awaited before), and opts.stop ends a wait for more (sticky). Bytes
 * stdio already buffered come first; a Ctrl-Z that ends a read is data
 * when more follows. SIGALRM fails the test if a read blocks. */
static void test_reader_pipe_rows_as_they_arrive(void **state)
{
    ig_arena *a = ig_arena_new(0);
    ig_record rec;
    ig_err err;
    int got, wfd, c;
    FILE *f;
    ig_reader *r;

    (void)state;
    alarm(20);
    stop_flag = 0;
    f = pipe_with("a,b\n1,x\n2,", &wfd);
    r = open_pipe(f);
    next(r, a, &rec);
    FIELDS(&rec, "1", "x");
    stop_flag = 1; /* row 2 is cut: the reader waits for the rest */
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_CANCELED);
    assert_int_equal(got, 0);
    assert_non_null(strstr(err.msg, "stopped while waiting for more input"));
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_CANCELED);
    close_pipe(r, f, wfd);

    /* A pipe that keeps trickling rows in does not hold a stop up: asked
     * every 100 ms, data or not. */
    stop_flag = 0;
    f = pipe_with("a,b\n1,x\n", &wfd);
    r = open_pipe(f);
    next(r, a, &rec);
    FIELDS(&rec, "1", "x");
    assert_int_equal(write(wfd, "2,y\n", 4), 4);
    stop_flag = 1;
    usleep(150000);
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_CANCELED);
    close_pipe(r, f, wfd);

    /* stdio's buffer holds the first rows; the rest comes by read(2) */
    stop_flag = 0;
    f = pipe_with("a,b\n1,x\n", &wfd);
    c = fgetc(f);
    assert_int_equal(ungetc(c, f), 'a');
    assert_int_equal(write(wfd, "2,y\n", 4), 4);
    close(wfd);
    r = open_pipe(f);
    next(r, a, &rec);
    FIELDS(&rec, "1", "x");
    next(r, a, &rec);
    FIELDS(&rec, "2", "y");
    at_end(r, a);
    close_pipe(r, f, -1);

    /* a 7-byte chunk ends on the Ctrl-Z: data, since "y" follows */
    f = pipe_with("a,b\n1,\x1ay\n", &wfd);
    close(wfd);
    one_row(open_opts((ig_reader_opts){.file = f, .header = 1,
                                       .chunk_size = 7}),
            a, "1", "\x1ay");
    fclose(f);
    /* ... and dropped where the input ends */
    f = pipe_with("a,b\n1,x\x1a", &wfd);
    close(wfd);
    one_row(open_opts((ig_reader_opts){.file = f, .header = 1,
                                       .chunk_size = 7}),
            a, "1", "x");
    fclose(f);
    alarm(0);
    ig_arena_free(a);
}

/* In a file whose first line ends with a bare LF, a CR inside an
 * unquoted field is data (scripts write it unquoted), not a line end that
 * cuts the row short; a CRLF line in it still ends cleanly, quoted or
 * not, and a CRLF blank line is skipped. A file that starts with CRLF
 * keeps a lone CR as a line end. */
static void test_reader_lone_cr_in_lf_file_is_data(void **state)
{
    static const char lf[] = "code,qty,note\nC1,1,first\rpart two\n"
                             "C2,2,\"q\"\r\n\r\nC3,x,y\r\n";
    static const char crlf[] = "a,b\r\n1,x\ry\r\n";
    static const size_t chunks[] = {0, 4, 7, 16};
    ig_arena *a = ig_arena_new(0);
    ig_record rec;
    ig_reader *r;

    (void)state;
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        FILE *f = file_with(MEM(lf));

        r = open_opts((ig_reader_opts){.file = f, .header = 1,
                                       .chunk_size = chunks[i]});
        assert_int_equal(ig_reader_lf_only(r), 1);
        next(r, a, &rec);
        ok(&rec);
        pos(&rec, 1, 2, 14);
        FIELDS(&rec, "C1", "1", "first\rpart two");
        next(r, a, &rec);
        ok(&rec);
        pos(&rec, 2, 3, 34);
        FIELDS(&rec, "C2", "2", "q");
        next(r, a, &rec);
        ok(&rec);
        pos(&rec, 3, 5, 46);
        FIELDS(&rec, "C3", "x", "y");
        at_end(r, a);
        ig_reader_free(r);
        fclose(f);
    }
    r = open_mem(MEM(crlf), 1);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "x");
    assert_int_equal(ig_reader_lf_only(r), 0);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_semicolon_and_tab_delimiters(void **state)
{
    static const char semi[] = "a;b\n1;\"x;y\"\n2,5;z\n";
    static const char tab[] = "a\tb\n1\t\"x\ty\"\n\t\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {.buf = semi,
                        .buf_len = sizeof(semi) - 1,
                        .header = 1,
                        .delimiter = ';'};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    assert_string_equal(ig_reader_column(r, 1), "b");
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "x;y");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 12);
    FIELDS(&rec, "2,5", "z");
    at_end(r, a);
    ig_reader_free(r);

    o = (ig_reader_opts){
        .buf = tab, .buf_len = sizeof(tab) - 1, .header = 1, .delimiter = '\t'};
    r = open_opts(o);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "1", "x\ty");
    next(r, a, &rec); /* a lone tab is two empty fields, not a blank */
    ok(&rec);
    pos(&rec, 2, 3, 12);
    FIELDS(&rec, "", "");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_custom_quote(void **state)
{
    static const char in[] = "a,b\n'x,y','it''s'\n\"q\",2\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {
        .buf = in, .buf_len = sizeof(in) - 1, .header = 1, .quote = '\''};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "x,y", "it's");
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "\"q\"", "2"); /* '"' is plain data now */
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_blank_lines_skipped(void **state)
{
    static const char in[] = "\n\na,b\n\n1,2\n\r\n  \t\n3,4\n\n\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    assert_string_equal(ig_reader_column(r, 0), "a");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 5, 7);
    FIELDS(&rec, "1", "2");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 8, 17);
    FIELDS(&rec, "3", "4");
    at_end(r, a);
    assert_int_equal(ig_reader_bytes(r), (long long)sizeof(in) - 1);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_no_header_mode(void **state)
{
    static const char in[] = "1,2\n3,4,5\n6,7\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 0);
    ig_record rec;

    (void)state;
    assert_int_equal(ig_reader_ncolumns(r), 0);
    assert_null(ig_reader_column(r, 0));
    assert_int_equal(ig_reader_find_column(r, "1"), -1);
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 1, 1, 0);
    FIELDS(&rec, "1", "2");
    next(r, a, &rec);
    bad(&rec, "CSV_RAGGED", "input:2: 3 fields, expected 2");
    pos(&rec, 2, 2, 4);
    FIELDS(&rec, "3", "4", "5");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 3, 3, 10);
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_ragged_rows_then_good_row(void **state)
{
    static const char in[] = "a,b,c\n1,2\n1,2,3,4\n5,6,7\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {
        .buf = in, .buf_len = sizeof(in) - 1, .header = 1, .name = "items.csv"};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    bad(&rec, "CSV_RAGGED",
        "items.csv:2: 2 fields, expected 3 (record at byte offset 6)");
    pos(&rec, 1, 2, 6);
    FIELDS(&rec, "1", "2");
    next(r, a, &rec);
    bad(&rec, "CSV_RAGGED", "items.csv:3: 4 fields, expected 3");
    pos(&rec, 2, 3, 10);
    FIELDS(&rec, "1", "2", "3", "4");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 3, 4, 18);
    FIELDS(&rec, "5", "6", "7");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_too_many_fields_capped(void **state)
{
    static const char in[] = "a,b\n1,2,3,4,5\n6,7\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {
        .buf = in, .buf_len = sizeof(in) - 1, .header = 1, .max_fields = 3};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    bad(&rec, "CSV_RAGGED", "input:2: more than 3 fields");
    FIELDS(&rec, "1", "2", "3");
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "6", "7");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_unterminated_quote_at_eof(void **state)
{
    static const char in[] = "a,b\n1,2\n3,\"oops\n4,5\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    next(r, a, &rec);
    bad(&rec, "CSV_QUOTE",
        "input:3: field 2: quoted field not closed before the end");
    pos(&rec, 2, 3, 8);
    FIELDS(&rec, "3", "oops\n4,5\n"); /* what it swallowed */
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

/* A misplaced quote ends the record's parsing; the rest of its line is
 * kept as read in the last field (nothing lost for the reject file), and
 * the next line reads normally. */
static void test_reader_stray_quote_keeps_rest_of_line(void **state)
{
    static const char in[] = "a,b,c\n"         /* 1 */
                             "1,x\"y,z\n"      /* 2: quote in unquoted */
                             "2,3,4\n"         /* 3 */
                             "\"ab\"c,d,e\n"   /* 4: text after quote */
                             "\"p\nq\" ,r,s\n" /* 5-6: space after it */
                             "5,6,7\n";        /* 7 */
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    bad(&rec, "CSV_QUOTE",
        "input:2: field 2: misplaced quote near byte offset 9; the rest "
        "of the line is kept, as read, in that field");
    pos(&rec, 1, 2, 6);
    FIELDS(&rec, "1", "x\"y,z");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 14);
    FIELDS(&rec, "2", "3", "4");
    next(r, a, &rec);
    bad(&rec, "CSV_QUOTE",
        "input:4: field 1: misplaced quote near byte "
        "offset 24");
    pos(&rec, 3, 4, 20);
    FIELDS(&rec, "abc,d,e");
    next(r, a, &rec);
    bad(&rec, "CSV_QUOTE", "input:5: field 1");
    pos(&rec, 4, 5, 30);
    FIELDS(&rec, "p\nq ,r,s");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 5, 7, 41);
    FIELDS(&rec, "5", "6", "7");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

/* in[offset, end) is the record as written, then its line end: the
 * reject file copies rows it could not parse from there. */
static void span(const char *in, const ig_record *rec, const char *want)
{
    size_t n = (size_t)(rec->end - rec->offset);

    assert_true(rec->end > rec->offset);
    while (n > 0 && (in[rec->offset + (long long)n - 1] == '\n' ||
                     in[rec->offset + (long long)n - 1] == '\r'))
        n--;
    assert_int_equal(n, strlen(want));
    assert_memory_equal(in + rec->offset, want, n);
}

static void test_reader_record_bytes(void **state)
{
    static const char in[] = "a,b,c\r\n"
                             "1,x\"y,z\r\n"        /* misplaced quote */
                             "\"p\r\nq\",2\r\n"    /* ragged, two lines */
                             "\r\n"                 /* blank */
                             "\"ab\"c,d,e\r\n"      /* text after a quote */
                             "5,6,\"7";             /* unterminated, EOF */
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    span(in, &rec, "1,x\"y,z");
    next(r, a, &rec);
    span(in, &rec, "\"p\r\nq\",2");
    next(r, a, &rec);
    span(in, &rec, "\"ab\"c,d,e");
    next(r, a, &rec);
    span(in, &rec, "5,6,\"7");
    assert_int_equal(rec.end, (long long)strlen(in));
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_invalid_utf8_then_good_row(void **state)
{
    static const char in[] = "a,b\n"                /* 0 */
                             "ok,caf\xC3\xA9\n"     /* 4: valid */
                             "x,\xFFy\n"            /* 13: bad byte */
                             "\xC3,z\n"             /* 18: truncated */
                             "q,\xC0\xAF\n"         /* 22: overlong 2 */
                             "r,\xE0\x80\xAF\n"     /* 27: overlong 3 */
                             "s,\xED\xA0\x80\n"     /* 33: surrogate */
                             "t,\xF4\x90\x80\x80\n" /* 39: > U+10FFFF */
                             "u,\xE2\x82\n"         /* 46: cut by LF */
                             "v,\xF0\x9F\x98\x80\n" /* 51: valid emoji */
                             "w,\xE2\x82";          /* 58: cut by EOF */
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "ok", "caf\xC3\xA9");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8", "input:3: field 2: invalid UTF-8 at byte offset 15");
    bad(&rec, "CSV_UTF8", "(if the file is Latin-1 or Windows-1252, set "
                          "source.encoding)");
    pos(&rec, 2, 3, 13);
    FIELDS(&rec, "x", "\xFFy"); /* bytes kept as they came */
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8",
        "input:4: field 1: invalid UTF-8 at byte "
        "offset 18");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8", "field 2: invalid UTF-8 at byte offset 24");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8", "field 2: invalid UTF-8 at byte offset 29");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8", "field 2: invalid UTF-8 at byte offset 35");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8", "field 2: invalid UTF-8 at byte offset 41");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8",
        "input:9: field 2: invalid UTF-8 at byte "
        "offset 48");
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 9, 10, 51);
    FIELDS(&rec, "v", "\xF0\x9F\x98\x80");
    next(r, a, &rec);
    bad(&rec, "CSV_UTF8",
        "input:11: field 2: invalid UTF-8 at byte "
        "offset 60");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_nul_byte(void **state)
{
    static const char in[] = "a,b\n1,x\0y\n2,3\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM(in), 1);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    bad(&rec, "CSV_NUL", "input:2: field 2: NUL byte at byte offset 7");
    pos(&rec, 1, 2, 4);
    assert_int_equal(rec.nfields, 2);
    assert_int_equal(rec.fields[1].len, 3);
    assert_memory_equal(rec.fields[1].p, "x\0y", 3);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "2", "3");
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_field_too_long_then_good_row(void **state)
{
    static const char in[] = "a,b\n"
                             "1,123456789\n"                          /* 2 */
                             "2,\"quoted, long\nand \"\"more\"\"\"\n" /* 3 */
                             "3,\"12345678\"\n"                       /* 5 */
                             "4,\"runaway\n5,6\n";                    /* 6 */
    ig_arena *a = ig_arena_new(0);

    (void)state;
    /* Tiny chunks make libcsv's buffer outgrow the limit mid-field. */
    for (size_t chunk = 4; chunk <= 64; chunk *= 4) {
        ig_reader_opts o = {.buf = in,
                            .buf_len = sizeof(in) - 1,
                            .header = 1,
                            .max_field_bytes = 8,
                            .chunk_size = chunk};
        ig_reader *r = open_opts(o);
        ig_record rec;

        next(r, a, &rec);
        bad(&rec, "CSV_FIELD_SIZE",
            "input:2: field 2 is longer than 8 bytes (record at byte "
            "offset 4)");
        pos(&rec, 1, 2, 4);
        FIELDS(&rec, "1", "");
        next(r, a, &rec);
        bad(&rec, "CSV_FIELD_SIZE", "input:3: field 2");
        pos(&rec, 2, 3, 16);
        FIELDS(&rec, "2", "");
        next(r, a, &rec);
        ok(&rec); /* exactly at the limit */
        pos(&rec, 3, 5, 46);
        FIELDS(&rec, "3", "12345678");
        next(r, a, &rec);
        bad(&rec, "CSV_QUOTE", "input:6: field 2: quoted field not closed");
        pos(&rec, 4, 6, 59);
        at_end(r, a);
        ig_reader_free(r);
        ig_arena_reset(a);
    }
    ig_arena_free(a);
}

/* Where the input is cut into chunks changes nothing about a record's
 * problem (found by test_reader_props.c): a misplaced quote outranks a NUL
 * byte after it in the same segment; a quoted field exactly at the limit
 * is not too long when a chunk ends right after its closing quote; and a
 * blank line stays blank however long it is. */
static void test_reader_problems_whatever_the_chunk_size(void **state)
{
    static const char quote_nul[] = "a\nxyz\"\0\n1\n";
    static const char at_limit[] = "a,b\n\"123\",x\n\"456\"";
    static const char blank[] = "a\n   \n1\n";
    static const size_t chunks[] = {4, 5, 7, 64, 0};
    ig_arena *a = ig_arena_new(0);

    (void)state;
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        ig_reader_opts o = {.buf = quote_nul,
                            .buf_len = sizeof(quote_nul) - 1,
                            .header = 1,
                            .chunk_size = chunks[i]};
        ig_reader *r = open_opts(o);
        ig_record rec;

        next(r, a, &rec);
        bad(&rec, "CSV_QUOTE",
            "input:2: field 1: misplaced quote near byte offset 5");
        next(r, a, &rec);
        ok(&rec);
        FIELDS(&rec, "1");
        at_end(r, a);
        ig_reader_free(r);

        o.buf = at_limit;
        o.buf_len = sizeof(at_limit) - 1;
        o.max_field_bytes = 3;
        r = open_opts(o);
        next(r, a, &rec);
        ok(&rec);
        FIELDS(&rec, "123", "x");
        next(r, a, &rec); /* ends the input right after its quote */
        bad(&rec, "CSV_RAGGED", "input:3:");
        FIELDS(&rec, "456");
        at_end(r, a);
        ig_reader_free(r);

        o.buf = blank;
        o.buf_len = sizeof(blank) - 1;
        o.max_field_bytes = 2;
        r = open_opts(o);
        next(r, a, &rec);
        ok(&rec);
        pos(&rec, 1, 3, 6);
        FIELDS(&rec, "1");
        at_end(r, a);
        ig_reader_free(r);
        ig_arena_reset(a);
    }
    ig_arena_free(a);
}

static void test_reader_latin1_and_windows1252(void **state)
{
    static const char in[] = "name,price\ncaf\xE9,\x80 5\n\x81,\xFF\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {.buf = in,
                        .buf_len = sizeof(in) - 1,
                        .header = 1,
                        .encoding = IG_ENCODING_LATIN1};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "caf\xC3\xA9", "\xC2\x80 5"); /* U+0080 in latin-1 */
    next(r, a, &rec);
    ok(&rec);
    pos(&rec, 2, 3, 20); /* offsets are in the original bytes */
    FIELDS(&rec, "\xC2\x81", "\xC3\xBF");
    at_end(r, a);
    ig_reader_free(r);

    o.encoding = IG_ENCODING_WIN1252;
    r = open_opts(o);
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "caf\xC3\xA9", "\xE2\x82\xAC 5"); /* the euro sign */
    next(r, a, &rec);
    ok(&rec);
    FIELDS(&rec, "\xC2\x81", "\xC3\xBF"); /* undefined 0x81 -> U+0081 */
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_latin1_stray_quote_offset_is_raw(void **state)
{
    static const char in[] = "a\n\xE9\xE9\"x\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {.buf = in,
                        .buf_len = sizeof(in) - 1,
                        .header = 1,
                        .encoding = IG_ENCODING_LATIN1};
    ig_reader *r = open_opts(o);
    ig_record rec;

    (void)state;
    next(r, a, &rec);
    bad(&rec, "CSV_QUOTE", "near byte offset 4;");
    FIELDS(&rec, "\xC3\xA9\xC3\xA9\"x"); /* the rest, converted too */
    at_end(r, a);
    ig_reader_free(r);
    ig_arena_free(a);
}

/* Read everything, printing each record as one line into a buffer, so two
 * ways of reading the same input can be compared whole. */
static char *transcript(ig_reader *r, ig_arena *a)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ig_record rec;
    ig_err err;
    int got;

    assert_non_null(out);
    for (;;) {
        assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_OK);
        if (!got)
            break;
        fprintf(out, "%lld@%lld+%lld %s|", rec.recno, rec.line, rec.offset,
                rec.error_code ? rec.error : "-");
        for (size_t i = 0; i < rec.nfields; i++) {
            fwrite(rec.fields[i].p, 1, rec.fields[i].len, out);
            fputc('|', out);
        }
        fputc('\n', out);
        ig_arena_reset(a);
    }
    fprintf(out, "bytes %lld\n", ig_reader_bytes(r));
    fclose(out);
    return buf;
}

static void test_reader_same_records_whatever_the_chunk_size(void **state)
{
    static const char in[] =
        "\xEF\xBB\xBFid,\"na\"\"me\"\r\n"
        "1,\"multi\r\nline, with \xE2\x82\xAC and \"\"q\"\"\"\r\n"
        "\r\n"
        "2,caf\xC3\xA9\xF0\x9F\x98\x80\n"
        "3,x\"y\n"
        "4,\xE2\x82\n"
        "5,ok,extra\r"
        "6,\"\"\n"
        "7,\"open\n";
    ig_arena *a = ig_arena_new(0);
    ig_reader_opts o = {.buf = in, .buf_len = sizeof(in) - 1, .header = 1};
    ig_reader *r = open_opts(o);
    char *want = transcript(r, a);

    (void)state;
    ig_reader_free(r);
    assert_non_null(strstr(want, "1@2+16 -|1|multi\r\nline, with"));
    assert_non_null(strstr(want, "2@5+55 -|2|caf"));
    assert_non_null(strstr(want, "3@6+67 input:6: field 2: misplaced quote "
                                 "near byte offset 70"));
    assert_non_null(strstr(want, "4@7+73 input:7: field 2: invalid UTF-8 "
                                 "at byte offset 75"));
    assert_non_null(strstr(want, "5@8+78 input:8: 3 fields"));
    assert_non_null(strstr(want, "6@9+89 -|6||\n"));
    assert_non_null(strstr(want, "7@10+94 input:10: field 2: quoted field "
                                 "not closed"));
    assert_non_null(strstr(want, "bytes 102\n"));
    for (size_t chunk = 4; chunk <= 24; chunk++) {
        for (int use_file = 0; use_file <= 1; use_file++) {
            FILE *f = use_file ? file_with(in, sizeof(in) - 1) : NULL;
            char *got;

            o = (ig_reader_opts){.buf = in,
                                 .buf_len = sizeof(in) - 1,
                                 .file = f,
                                 .header = 1,
                                 .chunk_size = chunk};
            r = open_opts(o);
            assert_string_equal(ig_reader_column(r, 1), "na\"me");
            got = transcript(r, a);
            if (strcmp(got, want) != 0)
                fail_msg("chunk %zu file %d:\n%s\nwant:\n%s", chunk, use_file,
                         got, want);
            free(got);
            ig_reader_free(r);
            if (f)
                fclose(f);
        }
    }
    free(want);
    ig_arena_free(a);
}

/* Append rows of filler, then blank lines, until buf holds exactly at
 * bytes; returns the number of rows written. */
static long long pad_to(char *buf, size_t *len, size_t at, long long *line)
{
    long long rows = 0;

    while (*len + 17 <= at) {
        *len += (size_t)sprintf(buf + *len, "%07lld,plain...\n", ++rows);
        ++*line;
    }
    while (*len < at) {
        buf[(*len)++] = '\n';
        ++*line;
    }
    return rows;
}

/* A real 64 KiB chunk boundary from a FILE: first inside a quoted field
 * (opening quote 2 bytes before it), then inside a three-byte character,
 * with the line numbers after each still right. */
static void test_reader_file_chunk_boundaries(void **state)
{
    const size_t chunk = 64 * 1024;
    char *buf = malloc(3 * chunk);
    ig_arena *a = ig_arena_new(0);
    size_t len = 0, q_off, e_off;
    long long line = 1, q_line, e_line, last_line, n = 0;
    ig_record rec;
    ig_reader *r;
    FILE *f;

    (void)state;
    len += (size_t)sprintf(buf, "id,text\n");
    line++;
    n += pad_to(buf, &len, chunk - 5, &line);
    q_off = len;
    q_line = line;
    len += (size_t)sprintf(buf + len, "q1,\"q,\nuoted\"\n");
    line += 2;
    n += pad_to(buf, &len, 2 * chunk - 4, &line);
    e_off = len;
    e_line = line;
    len += (size_t)sprintf(buf + len, "e1,\xE2\x82\xAC!\n");
    line++;
    last_line = line;
    len += (size_t)sprintf(buf + len, "z,last\n");
    n += 3;

    f = file_with(buf, len);
    r = open_opts((ig_reader_opts){.file = f, .header = 1});
    for (long long i = 1; i <= n; i++) {
        next(r, a, &rec);
        ok(&rec);
        assert_int_equal(rec.recno, i);
        assert_int_equal(rec.nfields, 2);
        if (strcmp(rec.fields[0].p, "q1") == 0) {
            assert_int_equal(rec.offset, (long long)q_off);
            assert_int_equal(rec.line, q_line);
            assert_string_equal(rec.fields[1].p, "q,\nuoted");
        } else if (strcmp(rec.fields[0].p, "e1") == 0) {
            assert_int_equal(rec.offset, (long long)e_off);
            assert_int_equal(rec.line, e_line);
            assert_string_equal(rec.fields[1].p, "\xE2\x82\xAC!");
        } else if (strcmp(rec.fields[0].p, "z") == 0) {
            assert_int_equal(rec.line, last_line);
            assert_int_equal(i, n);
        }
        ig_arena_reset(a);
    }
    at_end(r, a);
    assert_int_equal(ig_reader_bytes(r), (long long)len);
    ig_reader_free(r);
    fclose(f);
    free(buf);
    ig_arena_free(a);
}

static void test_reader_large_input_memory_stays_flat(void **state)
{
    const long long rows = 200000, batch = 1000;
    FILE *f = tmpfile();
    ig_arena *a = ig_arena_new(0);
    size_t max_reserved = 0, reserved_early = 0;
    long long size, n = 0;
    ig_reader *r;
    ig_record rec;

    (void)state;
    assert_non_null(f);
    fprintf(f, "id,name,note\n");
    for (long long i = 1; i <= rows; i++)
        fprintf(f, "%lld,item %lld,\"a, \"\"quoted\"\" note\"\n", i, i);
    size = ftell(f);
    rewind(f);
    r = open_opts((ig_reader_opts){.file = f, .header = 1});
    for (;;) {
        ig_err err;
        int got;

        assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_OK);
        if (!got)
            break;
        n++;
        if (rec.recno != n || rec.error_code || rec.nfields != 3)
            fail_msg("record %lld: %s", n, rec.error ? rec.error : "?");
        if (n % batch == 0) {
            size_t res = ig_arena_reserved(a);
            if (res > max_reserved)
                max_reserved = res;
            if (n == 10 * batch)
                reserved_early = res;
            ig_arena_reset(a);
        }
    }
    FIELDS(&rec, "200000", "item 200000", "a, \"quoted\" note");
    assert_int_equal(n, rows);
    assert_int_equal(rec.line, rows + 1);
    assert_int_equal(ig_reader_bytes(r), size);
    /* A batch of 1000 such rows needs ~100 KiB; it must not creep. */
    assert_true(max_reserved <= 512 * 1024);
    assert_int_equal(max_reserved, reserved_early);
    ig_reader_free(r);
    fclose(f);
    ig_arena_free(a);
}

static void test_reader_empty_input_with_header_is_an_error(void **state)
{
    static const char blanks[] = "\n\r\n  \n";
    ig_reader_opts o = {.buf = "", .buf_len = 0, .header = 1, .name = "e.csv"};
    ig_err err;

    (void)state;
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_DATA);
    assert_string_equal(err.msg, "e.csv: empty input: no header row");
    o.buf = blanks;
    o.buf_len = sizeof(blanks) - 1;
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_DATA);
    /* Without a header an empty input is just zero records. */
    o.header = 0;
    {
        ig_arena *a = ig_arena_new(0);
        ig_reader *r = open_opts(o);
        at_end(r, a);
        ig_reader_free(r);
        ig_arena_free(a);
    }
}

static void test_reader_header_only_gives_zero_records(void **state)
{
    ig_arena *a = ig_arena_new(0);
    ig_reader *r = open_mem(MEM("a,b\n"), 1);

    (void)state;
    assert_int_equal(ig_reader_ncolumns(r), 2);
    at_end(r, a);
    ig_reader_free(r);
    r = open_mem(MEM("a,b"), 1);
    assert_string_equal(ig_reader_column(r, 1), "b");
    at_end(r, a);
    assert_int_equal(ig_reader_bytes(r), 3);
    ig_reader_free(r);
    ig_arena_free(a);
}

static void test_reader_malformed_header_is_an_error(void **state)
{
    ig_reader_opts o = {.buf = "a,\"b\n", .buf_len = 5, .header = 1};
    ig_err err;

    (void)state;
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_DATA);
    assert_non_null(strstr(err.msg, "input:1: field 2: quoted field not"));
    assert_non_null(strstr(err.msg, "(header row)"));
}

static void test_reader_bad_options_rejected(void **state)
{
    ig_reader_opts o = {.buf = "a", .buf_len = 1, .delimiter = '"'};
    ig_err err;

    (void)state;
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_CONFIG);
    o = (ig_reader_opts){.buf = "a", .buf_len = 1, .delimiter = '\n'};
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_CONFIG);
    o = (ig_reader_opts){.buf = NULL, .buf_len = 4};
    assert_null(ig_reader_new(&o, &err));
    assert_int_equal(err.code, IG_CONFIG);
    ig_reader_free(NULL);
}

static void test_reader_read_error_is_sticky(void **state)
{
    FILE *f = fopen("/dev/null", "w"); /* reading it fails */
    ig_arena *a = ig_arena_new(0);
    ig_reader *r;
    ig_record rec;
    ig_err err;
    int got = 1;

    (void)state;
    assert_non_null(f);
    assert_null(ig_reader_new(
        &(ig_reader_opts){.file = f, .header = 1, .name = "in.csv"}, &err));
    assert_int_equal(err.code, IG_IO);
    assert_non_null(strstr(err.msg, "in.csv: read error"));
    r = open_opts((ig_reader_opts){.file = f, .name = "in.csv"});
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_IO);
    assert_int_equal(got, 0);
    assert_int_equal(ig_reader_next(r, a, &rec, &got, &err), IG_IO);
    assert_non_null(strstr(err.msg, "in.csv: read error"));
    ig_reader_free(r);
    fclose(f);
    ig_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_simple_file),
        cmocka_unit_test(test_reader_header_names_trimmed),
        cmocka_unit_test(test_reader_header_spaces_in_data_are_kept),
        cmocka_unit_test(test_reader_quoted_fields_and_embedded_newlines),
        cmocka_unit_test(test_reader_crlf_and_lone_cr),
        cmocka_unit_test(test_reader_no_trailing_newline),
        cmocka_unit_test(test_reader_bom_stripped),
        cmocka_unit_test(test_reader_utf16_refused),
        cmocka_unit_test(test_reader_zip_and_gzip_refused),
        cmocka_unit_test(test_reader_trailing_ctrl_z_dropped),
        cmocka_unit_test(test_reader_lone_cr_in_lf_file_is_data),
        cmocka_unit_test(test_reader_semicolon_and_tab_delimiters),
        cmocka_unit_test(test_reader_custom_quote),
        cmocka_unit_test(test_reader_blank_lines_skipped),
        cmocka_unit_test(test_reader_no_header_mode),
        cmocka_unit_test(test_reader_ragged_rows_then_good_row),
        cmocka_unit_test(test_reader_too_many_fields_capped),
        cmocka_unit_test(test_reader_unterminated_quote_at_eof),
        cmocka_unit_test(test_reader_stray_quote_keeps_rest_of_line),
        cmocka_unit_test(test_reader_record_bytes),
        cmocka_unit_test(test_reader_invalid_utf8_then_good_row),
        cmocka_unit_test(test_reader_nul_byte),
        cmocka_unit_test(test_reader_field_too_long_then_good_row),
        cmocka_unit_test(test_reader_problems_whatever_the_chunk_size),
        cmocka_unit_test(test_reader_latin1_and_windows1252),
        cmocka_unit_test(test_reader_latin1_stray_quote_offset_is_raw),
        cmocka_unit_test(test_reader_same_records_whatever_the_chunk_size),
        cmocka_unit_test(test_reader_file_chunk_boundaries),
        cmocka_unit_test(test_reader_large_input_memory_stays_flat),
        cmocka_unit_test(test_reader_empty_input_with_header_is_an_error),
        cmocka_unit_test(test_reader_header_only_gives_zero_records),
        cmocka_unit_test(test_reader_malformed_header_is_an_error),
        cmocka_unit_test(test_reader_bad_options_rejected),
        cmocka_unit_test(test_reader_read_error_is_sticky),
        cmocka_unit_test(test_reader_pipe_rows_as_they_arrive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
