/* db_sqlite: the SQLite backend of db.h, the default store (one file, no server).
 *
 * Durability: WAL + synchronous=FULL fsyncs the WAL on every COMMIT, so a write the store
 * reported done survives kill -9 and power loss (store.h's promise to the API).
 * The schema version is PRAGMA user_version. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/core.h"
#include "store/db.h"

#define BUSY_TIMEOUT_MS 5000

struct sq_db {
    struct tl_db base;
    sqlite3 *h;
    int last_rc; /* extended result code of the last failure */
};

struct sq_stmt {
    struct tl_db_stmt base;
    sqlite3_stmt *st;
};

static struct sq_db *DB(struct tl_db *d)
{
    return (struct sq_db *)d;
}

static sqlite3_stmt *ST(struct tl_db_stmt *s)
{
    return ((struct sq_stmt *)s)->st;
}

static int fail(struct sq_db *d, int rc)
{
    d->last_rc = rc;
    return -1;
}

/* The database holds sealed secrets and token hashes: create it owner-only (SQLite gives
 * its -wal and -shm files the main file's mode), and make the new directory entry
 * durable, since SQLite syncs the directory for its journals but not for the main file. */
static int precreate(const char *path, char *errbuf, size_t cap)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        snprintf(errbuf, cap, "cannot create database %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);

    char *copy = strdup(path);
    if (!copy) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(copy);
    return 0;
}

static int sq_open(struct tl_db **out, const char *path, const char *password, char *errbuf,
                   size_t cap)
{
    sqlite3_stmt *st = NULL;
    bool mem = strcmp(path, ":memory:") == 0;
    struct sq_db *d = calloc(1, sizeof *d);

    *out = NULL;
    if (!d) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    d->base.ops = &tl_db_sqlite;
    *out = &d->base;
    if (!mem && precreate(path, errbuf, cap) != 0)
        return -1;
    /* NOMUTEX: the store's mutex already serialises every use of the connection */
    if (sqlite3_open_v2(path, &d->h,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(errbuf, cap, "cannot open database %s: %s", path,
                 d->h ? sqlite3_errmsg(d->h) : "out of memory");
        return -1;
    }
    sqlite3_extended_result_codes(d->h, 1);
    /* another process (the CLI) may hold the write lock briefly */
    sqlite3_busy_timeout(d->h, BUSY_TIMEOUT_MS);

    /* WAL: readers never block the writer; the PRAGMA answers the mode actually in
     * force, which stays "delete" on file systems without shared memory support */
    int rc = sqlite3_prepare_v2(d->h, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && !mem) {
        const unsigned char *mode = NULL;
        if (sqlite3_step(st) == SQLITE_ROW)
            mode = sqlite3_column_text(st, 0);
        if (!mode || strcmp((const char *)mode, "wal") != 0)
            rc = SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        snprintf(errbuf, cap, "cannot put database %s in WAL mode (%s)", path,
                 sqlite3_errmsg(d->h));
        return -1;
    }
    if (sqlite3_exec(d->h, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON", NULL, NULL,
                     NULL) != SQLITE_OK) {
        snprintf(errbuf, cap, "cannot configure database %s: %s", path, sqlite3_errmsg(d->h));
        return -1;
    }
    (void)password;
    return 0;
}

static void sq_close(struct tl_db *db)
{
    struct sq_db *d = DB(db);
    if (!d)
        return;
    if (d->h && sqlite3_close(d->h) != SQLITE_OK)
        tl_error("store", "store.close_failed", "detail=\"%s\"", sqlite3_errmsg(d->h));
    free(d);
}

static int sq_exec(struct tl_db *db, const char *sql)
{
    struct sq_db *d = DB(db);
    int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(d, sqlite3_extended_errcode(d->h));
}

static int sq_prepare(struct tl_db *db, const char *sql, struct tl_db_stmt **out)
{
    struct sq_db *d = DB(db);
    struct sq_stmt *s = calloc(1, sizeof *s);

    *out = NULL;
    if (!s)
        return fail(d, SQLITE_NOMEM);
    s->base.db = db;
    int rc = sqlite3_prepare_v2(d->h, sql, -1, &s->st, NULL);
    if (rc != SQLITE_OK) {
        free(s);
        return fail(d, sqlite3_extended_errcode(d->h));
    }
    *out = &s->base;
    return 0;
}

static int bound(struct tl_db_stmt *s, int rc)
{
    return rc == SQLITE_OK ? 0 : fail(DB(s->db), rc);
}

static int sq_bind_text(struct tl_db_stmt *s, int i, const char *v)
{
    return bound(s, sqlite3_bind_text(ST(s), i, v, -1, SQLITE_TRANSIENT));
}

static int sq_bind_int64(struct tl_db_stmt *s, int i, int64_t v)
{
    return bound(s, sqlite3_bind_int64(ST(s), i, v));
}

static int sq_bind_double(struct tl_db_stmt *s, int i, double v)
{
    return bound(s, sqlite3_bind_double(ST(s), i, v));
}

static int sq_bind_blob(struct tl_db_stmt *s, int i, const void *p, size_t len)
{
    if (len > INT32_MAX)
        return fail(DB(s->db), SQLITE_TOOBIG);
    return bound(s, sqlite3_bind_blob(ST(s), i, p, (int)len, SQLITE_TRANSIENT));
}

static int sq_bind_null(struct tl_db_stmt *s, int i)
{
    return bound(s, sqlite3_bind_null(ST(s), i));
}

static int sq_step(struct tl_db_stmt *s)
{
    struct sq_db *d = DB(s->db);
    int rc = sqlite3_step(ST(s));
    if (rc == SQLITE_ROW)
        return TL_DB_ROW;
    if (rc == SQLITE_DONE)
        return TL_DB_DONE;
    fail(d, sqlite3_extended_errcode(d->h));
    return d->base.ops->last_error(&d->base);
}

static int sq_column_count(struct tl_db_stmt *s)
{
    return sqlite3_column_count(ST(s));
}

static bool sq_column_is_null(struct tl_db_stmt *s, int i)
{
    return sqlite3_column_type(ST(s), i) == SQLITE_NULL;
}

static const char *sq_column_text(struct tl_db_stmt *s, int i)
{
    return (const char *)sqlite3_column_text(ST(s), i);
}

static int64_t sq_column_int64(struct tl_db_stmt *s, int i)
{
    return sqlite3_column_int64(ST(s), i);
}

static double sq_column_double(struct tl_db_stmt *s, int i)
{
    return sqlite3_column_double(ST(s), i);
}

static const void *sq_column_blob(struct tl_db_stmt *s, int i)
{
    return sqlite3_column_blob(ST(s), i);
}

static int sq_column_bytes(struct tl_db_stmt *s, int i)
{
    return sqlite3_column_bytes(ST(s), i);
}

static void sq_reset(struct tl_db_stmt *s)
{
    sqlite3_reset(ST(s));
    sqlite3_clear_bindings(ST(s));
}

static void sq_finalize(struct tl_db_stmt *s)
{
    sqlite3_finalize(ST(s));
    free(s);
}

/* IMMEDIATE: take the write lock up front so check-then-write sequences (number taken?,
 * agent in use?) cannot interleave with another process on the same file (the CLI). */
static int sq_begin(struct tl_db *db)
{
    return sq_exec(db, "BEGIN IMMEDIATE");
}

static int sq_commit(struct tl_db *db)
{
    return sq_exec(db, "COMMIT");
}

static void sq_rollback(struct tl_db *db)
{
    struct sq_db *d = DB(db);
    if (!sqlite3_get_autocommit(d->h))
        sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
}

static int64_t sq_changes(struct tl_db *db)
{
    return sqlite3_changes(DB(db)->h);
}

static enum tl_db_error sq_last_error(struct tl_db *db)
{
    switch (DB(db)->last_rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return TL_DB_E_UNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return TL_DB_E_FOREIGN_KEY;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return TL_DB_E_CHECK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return TL_DB_E_BUSY;
    default:
        return (DB(db)->last_rc & 0xff) == SQLITE_BUSY ? TL_DB_E_BUSY : TL_DB_E_OTHER;
    }
}

static const char *sq_errmsg(struct tl_db *db)
{
    struct sq_db *d = DB(db);
    return d->h ? sqlite3_errmsg(d->h) : "no connection";
}

static int sq_schema_version(struct tl_db *db, int *v)
{
    struct sq_db *d = DB(db);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(d->h, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : fail(d, sqlite3_extended_errcode(d->h));
}

static int sq_set_schema_version(struct tl_db *db, int v)
{
    char pragma[64]; /* our own integer, never user data */
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
    return sq_exec(db, pragma);
}

/* BEGIN IMMEDIATE already holds the file's write lock */
static int sq_lock_schema(struct tl_db *db)
{
    return 0;
}

const struct tl_db_ops tl_db_sqlite = {
    .name = "sqlite",
    .caps = TL_DB_CAP_RETURNING | TL_DB_CAP_LOCALFILE,
    .open = sq_open,
    .close = sq_close,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .bind_text = sq_bind_text,
    .bind_int64 = sq_bind_int64,
    .bind_double = sq_bind_double,
    .bind_blob = sq_bind_blob,
    .bind_null = sq_bind_null,
    .step = sq_step,
    .column_count = sq_column_count,
    .column_is_null = sq_column_is_null,
    .column_text = sq_column_text,
    .column_int64 = sq_column_int64,
    .column_double = sq_column_double,
    .column_blob = sq_column_blob,
    .column_bytes = sq_column_bytes,
    .reset = sq_reset,
    .finalize = sq_finalize,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .changes = sq_changes,
    .last_error = sq_last_error,
    .errmsg = sq_errmsg,
    .schema_version = sq_schema_version,
    .set_schema_version = sq_set_schema_version,
    .lock_schema = sq_lock_schema,
};
