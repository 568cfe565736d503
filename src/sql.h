/*
 * sql.h - SQL text helpers that carry no data: splitting a script into
 * statements and building quoted identifiers.
 *
 * ingot never builds SQL with data values in it: values travel through COPY
 * or bound parameters. What is built here is structure only, from validated
 * identifiers, always quoted.
 */
#ifndef IG_SQL_H
#define IG_SQL_H

#include <stddef.h>

#include "err.h"

/* Split a SQL script into statements at top-level semicolons, honouring
 * '...' and E'...' strings, "..." identifiers, $tag$...$tag$ bodies,
 * -- and nested block comments. Statements that are empty or only comments
 * are dropped. On IG_OK *out is an owned array of *n owned strings (free
 * with ig_sql_free_list); IG_DATA when a quote or comment is unterminated. */
int ig_sql_split(const char *script, char ***out, size_t *n, ig_err *err)
    IG_MUSTCHECK;

/* Free a list from ig_sql_split. NULL is a no-op. */
void ig_sql_free_list(char **list, size_t n);

/* Quote a possibly schema-qualified name "schema.table" as
 * "schema"."table". Owned; aborts on OOM. The parts must already be
 * validated identifiers (no dot inside a part). */
char *ig_sql_qualified(const char *name);

#endif /* IG_SQL_H */
