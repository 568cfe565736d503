/*
 * itdb.h - a throwaway database for the C integration tests.
 *
 * itdb_create() makes a database of its own on the server of DATABASE_URL
 * (the role has CREATEDB), connects to it and applies migrations/;
 * itdb_drop() removes it. Header-only (static inline) so each test program
 * stays one .c file. Test code only: failures print to stderr and return
 * non-zero, the cmocka group setup convention.
 */
#ifndef IG_ITDB_H
#define IG_ITDB_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "migrate.h"

typedef struct itdb {
    char name[64];
    PGconn *admin; /* on the DATABASE_URL database: create / drop */
    PGconn *conn;  /* on the test database */
} itdb;

/* Connect to dbname (NULL: DATABASE_URL's own database) with the
 * DATABASE_URL role. Owned; NULL after printing why. */
static inline PGconn *itdb_connect(const char *dbname)
{
    const char *kw[] = {"dbname", "dbname", "application_name", NULL};
    const char *vals[] = {getenv("DATABASE_URL"), dbname, "ingot-test", NULL};
    PGconn *c = PQconnectdbParams(kw, vals, 1);

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect %s: %s", dbname ? dbname : "(default)",
                PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Create "<prefix>_<pid>_<time>", connect, migrate. 0 or -1. */
static inline int itdb_create(itdb *d, const char *prefix)
{
    char q[160];
    ig_migset *set;
    ig_err err;

    if (getenv("DATABASE_URL") == NULL || getenv("DATABASE_URL")[0] == '\0') {
        fprintf(stderr, "DATABASE_URL is not set: start the servers with "
                        "scripts/servers.sh (scripts/test.sh does)\n");
        return -1;
    }
    snprintf(d->name, sizeof(d->name), "%s_%ld_%ld", prefix, (long)getpid(),
             (long)time(NULL));
    d->admin = itdb_connect(NULL);
    if (d->admin == NULL)
        return -1;
    snprintf(q, sizeof(q), "CREATE DATABASE %s", d->name);
    if (ig_db_exec(d->admin, q, "create test database", &err) != IG_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    d->conn = itdb_connect(d->name);
    if (d->conn == NULL)
        return -1;
    set = ig_migset_load(TEST_SOURCE_DIR "/migrations", &err);
    if (set == NULL || ig_migrate_up(d->conn, set, -1, NULL, &err) != IG_OK) {
        fprintf(stderr, "migrate: %s\n", err.msg);
        ig_migset_free(set);
        return -1;
    }
    ig_migset_free(set);
    return 0;
}

/* Close and drop the database. Cannot fail (problems are printed). */
static inline void itdb_drop(itdb *d)
{
    char q[160];
    ig_err err;

    PQfinish(d->conn);
    d->conn = NULL;
    if (d->admin == NULL)
        return;
    snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             d->name);
    if (ig_db_exec(d->admin, q, "drop test database", &err) != IG_OK)
        fprintf(stderr, "%s\n", err.msg);
    PQfinish(d->admin);
    d->admin = NULL;
}

#endif /* IG_ITDB_H */
