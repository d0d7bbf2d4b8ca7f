/* The store of a unit test, on either backend (issue 13: the whole store suite runs against
 * SQLite and PostgreSQL): a fresh SQLite file in a new directory, or, when
 * TRUNKLINE_TEST_PG holds a conninfo (tests/pg/with-postgres.sh sets it), a fresh schema
 * in that PostgreSQL, dropped afterwards. Header-only: each test binary gets its own copy. */
#ifndef TL_STORE_TEST_UTIL_H
#define TL_STORE_TEST_UTIL_H

#include <ctype.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/db.h"
#include "store/store.h"

#define TEST_TARGET_MAX 320

static inline bool test_pg(void)
{
    const char *e = getenv("TRUNKLINE_TEST_PG");
    return e && *e;
}

/* runs sql (no rows) on target through the backend interface; 0 on success */
static inline int test_sql_exec(const char *target, const char *sql)
{
    struct tl_db *db = NULL;
    char msg[256];
    const struct tl_db_ops *ops = tl_db_backend_for(target);
    int ret = ops->open(&db, target, NULL, msg, sizeof msg);
    if (ret == 0)
        ret = tl_db_exec(db, sql);
    if (ret != 0)
        fprintf(stderr, "test_sql_exec: %s\n", db ? tl_db_errmsg(db) : msg);
    if (db)
        ops->close(db);
    return ret;
}

/* the first column of the first row: -1 without a row (or on failure), -2 for NULL; text
 * into out when out is given */
static inline long long test_sql_row(const char *target, const char *sql, char *out, size_t cap)
{
    struct tl_db *db = NULL;
    struct tl_db_stmt *st = NULL;
    char msg[256];
    long long v = -1;
    const struct tl_db_ops *ops = tl_db_backend_for(target);

    if (out)
        out[0] = '\0';
    if (ops->open(&db, target, NULL, msg, sizeof msg) != 0 || tl_db_prepare(db, sql, &st) != 0) {
        fprintf(stderr, "test_sql_row: %s\n", db ? tl_db_errmsg(db) : msg);
    } else {
        int rc = tl_db_step(st);
        if (rc == TL_DB_ROW) {
            v = tl_db_column_is_null(st, 0) ? -2 : tl_db_column_int64(st, 0);
            if (out && tl_db_column_text(st, 0))
                snprintf(out, cap, "%s", tl_db_column_text(st, 0));
        } else if (rc != TL_DB_DONE) {
            fprintf(stderr, "test_sql_row: %s\n", tl_db_errmsg(db));
        }
    }
    tl_db_finalize(st);
    if (db)
        ops->close(db);
    return v;
}

/* A store target named `name` for a test whose files go to dir: dir/name.db, or a new
 * schema of its own in the test PostgreSQL (search_path set in the conninfo). */
static inline int test_target(const char *dir, const char *name, char *out, size_t cap)
{
    static unsigned counter;
    if (!test_pg()) {
        snprintf(out, cap, "%s/%s.db", dir, name);
        return 0;
    }
    char schema[64];
    int n = snprintf(schema, sizeof schema, "tl_%d_%u_%s", (int)getpid(), ++counter, name);
    for (int i = 0; i < n && schema[i]; i++)
        schema[i] = isalnum((unsigned char)schema[i]) ? (char)tolower(schema[i]) : '_';
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
    const char *admin = getenv("TRUNKLINE_TEST_PG");
    if (test_sql_exec(admin, sql) != 0)
        return -1;
    snprintf(out, cap, "%s options='-csearch_path=%s'", admin, schema);
    return 0;
}

/* removes what test_target made: the schema, or the file with its WAL and shared memory */
static inline void test_target_drop(const char *target)
{
    const char *sp = strstr(target, "search_path=");
    if (test_pg() && sp) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA %.*s CASCADE", (int)strcspn(sp + 12, "'"), sp + 12);
        test_sql_exec(getenv("TRUNKLINE_TEST_PG"), sql);
        return;
    }
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[TEST_TARGET_MAX + 8];
        snprintf(p, sizeof p, "%s%s", target, sfx[i]);
        unlink(p);
    }
}

/* tmpl: a mkdtemp template ("/tmp/tl_x_XXXXXX") that fits dir[64]; the store is
 * test_target(dir, "trunkline"), with a random key. -1 on any failure. */
static inline int tmp_store_open(char dir[64], char db[TEST_TARGET_MAX], struct tl_store **s,
                                 const char *tmpl)
{
    struct tl_err err = {0};
    uint8_t key[32];

    if (sodium_init() < 0)
        return -1;
    snprintf(dir, 64, "%s", tmpl);
    if (!mkdtemp(dir) || test_target(dir, "trunkline", db, TEST_TARGET_MAX) != 0)
        return -1;
    randombytes_buf(key, sizeof key);
    if (tl_store_open(s, db, key, &err) != 0) {
        fprintf(stderr, "tl_store_open: %s\n", err.message);
        return -1;
    }
    return 0;
}

static inline void tmp_store_close(const char *dir, const char *db, struct tl_store *s)
{
    tl_store_close(s);
    test_target_drop(db);
    rmdir(dir);
}

#endif
