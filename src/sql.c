/*
 * sql.c - statement splitting and identifier quoting; see sql.h.
 */
#include "sql.h"

#include "db.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Length of a dollar-quote tag starting at s ("$$" or "$tag$"), 0 if s does
 * not start one. */
static size_t dollar_tag(const char *s)
{
    size_t i = 1;

    if (s[0] != '$')
        return 0;
    if (isdigit((unsigned char)s[1])) /* $1 is a parameter, not a tag */
        return 0;
    while (s[i] == '_' || isalnum((unsigned char)s[i]) ||
           (unsigned char)s[i] >= 0x80)
        i++;
    return s[i] == '$' ? i + 1 : 0;
}

/* 1 when s[0..n) holds anything but blanks and comments. */
static int has_code(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        if (isspace((unsigned char)s[i])) {
            i++;
        } else if (s[i] == '-' && i + 1 < n && s[i + 1] == '-') {
            while (i < n && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < n && depth > 0) {
                if (s[i] == '/' && i + 1 < n && s[i + 1] == '*')
                    depth++, i += 2;
                else if (s[i] == '*' && i + 1 < n && s[i + 1] == '/')
                    depth--, i += 2;
                else
                    i++;
            }
        } else {
            return 1;
        }
    }
    return 0;
}

static void push_stmt(char ***list, size_t *n, size_t *cap, const char *s,
                      size_t len)
{
    if (!has_code(s, len))
        return;
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *list = ig_xrealloc(*list, *cap * sizeof(**list));
    }
    (*list)[*n] = ig_xmalloc(len + 1);
    memcpy((*list)[*n], s, len);
    (*list)[*n][len] = '\0';
    (*n)++;
}

/* Advance past a quoted run starting at s[i] == q; returns the index after
 * the closing quote or (size_t)-1 when unterminated. backslash: E'' rules */
static size_t skip_quoted(const char *s, size_t i, char q, int backslash)
{
    i++;
    while (s[i]) {
        if (backslash && s[i] == '\\' && s[i + 1]) {
            i += 2;
        } else if (s[i] == q) {
            if (s[i + 1] == q) { /* doubled quote */
                i += 2;
                continue;
            }
            return i + 1;
        } else {
            i++;
        }
    }
    return (size_t)-1;
}

int ig_sql_split(const char *s, char ***out, size_t *nout, ig_err *err)
{
    char **list = NULL;
    size_t n = 0, cap = 0, start = 0, i = 0;
    int line = 1;

    while (s[i]) {
        size_t tag;
        if (s[i] == '\n') {
            line++;
            i++;
        } else if (s[i] == '\'' || s[i] == '"') {
            int bs = s[i] == '\'' && i > 0 && (s[i - 1] == 'E' ||
                                               s[i - 1] == 'e');
            size_t j = skip_quoted(s, i, s[i], bs);
            if (j == (size_t)-1)
                goto unterminated;
            for (; i < j; i++)
                line += s[i] == '\n';
        } else if (s[i] == '-' && s[i + 1] == '-') {
            while (s[i] && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (s[i] && depth > 0) {
                if (s[i] == '/' && s[i + 1] == '*')
                    depth++, i += 2;
                else if (s[i] == '*' && s[i + 1] == '/')
                    depth--, i += 2;
                else
                    line += s[i++] == '\n';
            }
            if (depth > 0)
                goto unterminated;
        } else if ((tag = dollar_tag(s + i)) > 0) {
            const char *end;
            char t[128];
            if (tag >= sizeof(t))
                goto unterminated;
            memcpy(t, s + i, tag);
            t[tag] = '\0';
            end = strstr(s + i + tag, t);
            if (end == NULL)
                goto unterminated;
            for (; s + i < end + tag; i++)
                line += s[i] == '\n';
        } else if (s[i] == ';') {
            push_stmt(&list, &n, &cap, s + start, i - start);
            start = ++i;
        } else {
            i++;
        }
    }
    push_stmt(&list, &n, &cap, s + start, i - start);
    *out = list;
    *nout = n;
    return IG_OK;

unterminated:
    ig_sql_free_list(list, n);
    *out = NULL;
    *nout = 0;
    return ig_err_set(err, IG_DATA,
                      "line %d: unterminated quote, comment or dollar-quoted "
                      "string",
                      line);
}

void ig_sql_free_list(char **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

char *ig_sql_qualified(const char *name)
{
    const char *dot = strchr(name, '.');
    char *schema, *a, *b, *q;

    if (dot == NULL)
        return ig_db_quote_ident(name);
    schema = ig_xmalloc((size_t)(dot - name) + 1);
    memcpy(schema, name, (size_t)(dot - name));
    schema[dot - name] = '\0';
    a = ig_db_quote_ident(schema);
    b = ig_db_quote_ident(dot + 1);
    q = ig_xasprintf("%s.%s", a, b);
    free(schema);
    free(a);
    free(b);
    return q;
}
