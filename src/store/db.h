/* db: the database backend interface below the store's domain rules (issue 13), in the
 * manner of Kamailio's db_func_t: one table of operations per backend, with capability
 * bits for what not every backend offers. Two backends: SQLite (db_sqlite.c, the default)
 * and PostgreSQL through libpq (db_pg.c).
 *
 * Everything the store decides (plan gating, uniqueness answers, tenancy, sealing, change
 * notification) is written once above this line; below it is only "run this SQL". The SQL
 * the store sends is the common subset of both dialects, with numbered placeholders ?1..?N
 * (a number may repeat; a backend without them translates).
 *
 * Not thread-safe: the store serialises every use of one connection with its mutex.
 *
 * Step results: TL_DB_ROW, TL_DB_DONE, or a negative tl_db_error, classified so that the
 * domain code can answer a conflict (409) without knowing which backend refused. */
#ifndef TL_STORE_DB_H
#define TL_STORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum tl_db_error {
    TL_DB_E_OTHER = -1,
    TL_DB_E_UNIQUE = -2,      /* a UNIQUE or PRIMARY KEY constraint */
    TL_DB_E_FOREIGN_KEY = -3, /* a FOREIGN KEY constraint */
    TL_DB_E_CHECK = -4,       /* a CHECK (or NOT NULL) constraint */
    TL_DB_E_BUSY = -5,        /* locked by someone else past the timeout; may be retried */
};

#define TL_DB_ROW  1
#define TL_DB_DONE 2

/* capability bits */
#define TL_DB_CAP_RETURNING 0x1u /* INSERT … RETURNING */
#define TL_DB_CAP_NOTIFY    0x2u /* LISTEN/NOTIFY between connections (cluster change feed) */
#define TL_DB_CAP_LOCALFILE 0x4u /* the database is a local file (precreated owner-only) */

/* Each backend's connection and statement start with these (C11 6.7.2.1: a pointer to a
 * structure points to its first member), so one set of wrappers dispatches to any. */
struct tl_db {
    const struct tl_db_ops *ops;
};
struct tl_db_stmt {
    struct tl_db *db;
};

struct tl_db_ops {
    const char *name; /* "sqlite", "postgresql" */
    unsigned caps;
    /* target: a file path (SQLite) or a libpq conninfo (PostgreSQL); password: NULL or the
     * PostgreSQL password, which never appears in target. On failure *db may be set anyway
     * (close it); errbuf gets a message fit for an operator (no password). */
    int (*open)(struct tl_db **db, const char *target, const char *password, char *errbuf,
                size_t cap);
    void (*close)(struct tl_db *db);
    /* one or more statements without parameters or rows (DDL) */
    int (*exec)(struct tl_db *db, const char *script);
    int (*prepare)(struct tl_db *db, const char *sql, struct tl_db_stmt **st);
    /* parameters are 1-based; values are copied; 0 on success */
    int (*bind_text)(struct tl_db_stmt *st, int i, const char *v); /* NULL v: SQL NULL */
    int (*bind_int64)(struct tl_db_stmt *st, int i, int64_t v);
    int (*bind_double)(struct tl_db_stmt *st, int i, double v);
    int (*bind_blob)(struct tl_db_stmt *st, int i, const void *p, size_t len);
    int (*bind_null)(struct tl_db_stmt *st, int i);
    int (*step)(struct tl_db_stmt *st); /* TL_DB_ROW, TL_DB_DONE or a tl_db_error */
    /* columns are 0-based, valid after step gave TL_DB_ROW until the next step/reset */
    int (*column_count)(struct tl_db_stmt *st);
    bool (*column_is_null)(struct tl_db_stmt *st, int i);
    const char *(*column_text)(struct tl_db_stmt *st, int i); /* NULL for SQL NULL */
    int64_t (*column_int64)(struct tl_db_stmt *st, int i);    /* 0 for NULL; true = 1 */
    double (*column_double)(struct tl_db_stmt *st, int i);
    const void *(*column_blob)(struct tl_db_stmt *st, int i);
    int (*column_bytes)(struct tl_db_stmt *st, int i);
    void (*reset)(struct tl_db_stmt *st); /* ready to step again; bindings cleared */
    void (*finalize)(struct tl_db_stmt *st);
    /* begin takes the write lock up front where the backend has one (SQLite IMMEDIATE) */
    int (*begin)(struct tl_db *db);
    int (*commit)(struct tl_db *db);
    void (*rollback)(struct tl_db *db);   /* no-op outside a transaction */
    int64_t (*changes)(struct tl_db *db); /* rows changed by the last INSERT/UPDATE/DELETE */
    enum tl_db_error (*last_error)(struct tl_db *db);
    const char *(*errmsg)(struct tl_db *db); /* for the log only: names tables, constraints */
    /* where the schema stands (migrations): read inside or outside a transaction; write
     * inside the migration's transaction. lock_schema serialises migrating processes. */
    int (*schema_version)(struct tl_db *db, int *v);
    int (*set_schema_version)(struct tl_db *db, int v);
    int (*lock_schema)(struct tl_db *db);
    /* TL_DB_CAP_NOTIFY only (NULL elsewhere): the cluster change feed (store.h). notify
     * sends payload on channel (delivered to listeners when the sender's transaction, or
     * this statement, commits); listen subscribes this connection; wait_notify waits up
     * to timeout_ms, or until wake_fd is readable, and hands every payload received to fn.
     * wait_notify: 0 (notifications, a timeout or a wake), -1 the connection is lost. */
    int (*notify)(struct tl_db *db, const char *channel, const char *payload);
    int (*listen)(struct tl_db *db, const char *channel);
    int (*wait_notify)(struct tl_db *db, int timeout_ms, int wake_fd,
                       void (*fn)(const char *payload, void *arg), void *arg);
};

extern const struct tl_db_ops tl_db_sqlite;
extern const struct tl_db_ops tl_db_pg;
/* The backend a store target names: PostgreSQL for "postgresql://…", "postgres://…" or a
 * libpq keyword string ("host=… dbname=…"), else SQLite (a path). */
const struct tl_db_ops *tl_db_backend_for(const char *target);

static inline int tl_db_exec(struct tl_db *db, const char *sql)
{
    return db->ops->exec(db, sql);
}
static inline int tl_db_prepare(struct tl_db *db, const char *sql, struct tl_db_stmt **st)
{
    return db->ops->prepare(db, sql, st);
}
static inline int tl_db_bind_text(struct tl_db_stmt *st, int i, const char *v)
{
    return st->db->ops->bind_text(st, i, v);
}
static inline int tl_db_bind_int64(struct tl_db_stmt *st, int i, int64_t v)
{
    return st->db->ops->bind_int64(st, i, v);
}
static inline int tl_db_bind_double(struct tl_db_stmt *st, int i, double v)
{
    return st->db->ops->bind_double(st, i, v);
}
static inline int tl_db_bind_blob(struct tl_db_stmt *st, int i, const void *p, size_t len)
{
    return st->db->ops->bind_blob(st, i, p, len);
}
static inline int tl_db_bind_null(struct tl_db_stmt *st, int i)
{
    return st->db->ops->bind_null(st, i);
}
static inline int tl_db_step(struct tl_db_stmt *st)
{
    return st->db->ops->step(st);
}
static inline int tl_db_column_count(struct tl_db_stmt *st)
{
    return st->db->ops->column_count(st);
}
static inline bool tl_db_column_is_null(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_is_null(st, i);
}
static inline const char *tl_db_column_text(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_text(st, i);
}
static inline int64_t tl_db_column_int64(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_int64(st, i);
}
static inline double tl_db_column_double(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_double(st, i);
}
static inline const void *tl_db_column_blob(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_blob(st, i);
}
static inline int tl_db_column_bytes(struct tl_db_stmt *st, int i)
{
    return st->db->ops->column_bytes(st, i);
}
static inline void tl_db_reset(struct tl_db_stmt *st)
{
    st->db->ops->reset(st);
}
static inline void tl_db_finalize(struct tl_db_stmt *st) /* NULL: nothing */
{
    if (st)
        st->db->ops->finalize(st);
}
static inline int tl_db_begin(struct tl_db *db)
{
    return db->ops->begin(db);
}
static inline int tl_db_commit(struct tl_db *db)
{
    return db->ops->commit(db);
}
static inline void tl_db_rollback(struct tl_db *db)
{
    db->ops->rollback(db);
}
static inline int64_t tl_db_changes(struct tl_db *db)
{
    return db->ops->changes(db);
}
static inline enum tl_db_error tl_db_last_error(struct tl_db *db)
{
    return db->ops->last_error(db);
}
static inline const char *tl_db_errmsg(struct tl_db *db)
{
    return db->ops->errmsg(db);
}

#endif
