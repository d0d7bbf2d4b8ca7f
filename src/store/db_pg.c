/* db_pg: the PostgreSQL backend of db.h, through libpq (issue 13: many nodes, one
 * database).
 *
 * The store's SQL uses ?N placeholders; they become $N here, outside quoted literals,
 * quoted identifiers and comments. Parameters go as text (TEXT), or binary (BIGINT,
 * DOUBLE PRECISION, BYTEA: no decimal round trip, no bytea escaping); results come back
 * binary and are decoded by column type.
 *
 * Durability (store.h: a 2xx is on disk before it is sent): the session runs with
 * synchronous_commit on, and a server with fsync off is refused at open, since a COMMIT
 * there is not on disk whatever the session says.
 *
 * The schema version is a row in trunkline_schema; migrations of concurrent nodes are
 * serialised by a transaction-scoped advisory lock. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "core/core.h"
#include "store/db.h"

/* pg_type OIDs (src/include/catalog/pg_type.dat; stable across releases) */
#define OID_BOOL    16
#define OID_BYTEA   17
#define OID_INT8    20
#define OID_INT2    21
#define OID_INT4    23
#define OID_TEXT    25
#define OID_FLOAT4  700
#define OID_FLOAT8  701
#define OID_VARCHAR 1043

#define PG_PARAMS_MAX 64
/* pg_advisory_xact_lock key of schema migrations: "trunklin" in ASCII */
#define SCHEMA_LOCK_KEY "8390898172853774702"

struct pg_db {
    struct tl_db base;
    PGconn *c;
    int64_t changes;
    enum tl_db_error last;
    char msg[512];
};

struct pg_stmt {
    struct tl_db_stmt base;
    char *sql; /* with $N */
    int nparams;
    char *values[PG_PARAMS_MAX];
    int lengths[PG_PARAMS_MAX];
    int formats[PG_PARAMS_MAX];
    Oid types[PG_PARAMS_MAX];
    PGresult *res;
    int row, nrows;
    char scratch[32]; /* column_text of a number */
};

static struct pg_db *DB(struct tl_db *d)
{
    return (struct pg_db *)d;
}

static struct pg_stmt *ST(struct tl_db_stmt *s)
{
    return (struct pg_stmt *)s;
}

static void set_msg(struct pg_db *d, const char *m)
{
    tl_strlcpy(d->msg, m && *m ? m : "unknown error", sizeof d->msg);
    size_t n = strlen(d->msg);
    while (n && (d->msg[n - 1] == '\n' || d->msg[n - 1] == ' '))
        d->msg[--n] = '\0';
}

/* SQLSTATE class 23 (integrity constraint violation), 40P01/55P03 (lock) */
static enum tl_db_error classify(const char *state)
{
    if (!state)
        return TL_DB_E_OTHER;
    if (!strcmp(state, "23505"))
        return TL_DB_E_UNIQUE;
    if (!strcmp(state, "23503"))
        return TL_DB_E_FOREIGN_KEY;
    if (!strcmp(state, "23514") || !strcmp(state, "23502"))
        return TL_DB_E_CHECK;
    if (!strcmp(state, "40P01") || !strcmp(state, "55P03") || !strcmp(state, "40001"))
        return TL_DB_E_BUSY;
    return TL_DB_E_OTHER;
}

static int fail_res(struct pg_db *d, PGresult *r)
{
    d->last = classify(r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL);
    set_msg(d, r ? PQresultErrorMessage(r) : PQerrorMessage(d->c));
    if (!r || !*PQresultErrorMessage(r))
        set_msg(d, PQerrorMessage(d->c));
    return -1;
}

static int fail_msg(struct pg_db *d, const char *m)
{
    d->last = TL_DB_E_OTHER;
    set_msg(d, m);
    return -1;
}

/* A connection lost between transactions (server restart, failover) is reopened once
 * before the next statement; inside a transaction the statement fails and the caller's
 * rollback ends it. */
static void ensure_conn(struct pg_db *d)
{
    if (PQstatus(d->c) == CONNECTION_BAD) {
        PQreset(d->c);
        if (PQstatus(d->c) == CONNECTION_OK)
            tl_warnl("store", "store.pg_reconnected", "detail=\"connection was lost\"");
    }
}

/* ?N → $N, a bare ? → the next number; quoted text, identifiers and comments are copied
 * as they are. nparams: the highest number. NULL on a number out of range. */
static char *translate(const char *sql, int *nparams)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 2 + 1); /* "?" → "$NN" at most doubles */
    size_t o = 0;
    int next = 0, max = 0;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        char ch = sql[i];
        if (ch == '\'' || ch == '"') {
            out[o++] = sql[i++];
            while (i < len) {
                out[o++] = sql[i];
                if (sql[i++] == ch) {
                    if (i < len && sql[i] == ch) { /* doubled quote: still inside */
                        out[o++] = sql[i++];
                        continue;
                    }
                    break;
                }
            }
        } else if (ch == '-' && i + 1 < len && sql[i + 1] == '-') {
            while (i < len && sql[i] != '\n')
                out[o++] = sql[i++];
        } else if (ch == '?') {
            i++;
            int n = 0;
            if (i < len && sql[i] >= '0' && sql[i] <= '9') {
                while (i < len && sql[i] >= '0' && sql[i] <= '9' && n <= PG_PARAMS_MAX)
                    n = n * 10 + (sql[i++] - '0');
            } else {
                n = ++next;
            }
            if (n < 1 || n > PG_PARAMS_MAX) {
                free(out);
                return NULL;
            }
            if (n > max)
                max = n;
            o += (size_t)sprintf(out + o, "$%d", n);
        } else {
            out[o++] = sql[i++];
        }
    }
    out[o] = '\0';
    *nparams = max;
    return out;
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like: not for stderr */
}

/* one text value of a SHOW or SELECT, into out */
static int query_value(struct pg_db *d, const char *sql, char *out, size_t cap)
{
    PGresult *r = PQexec(d->c, sql);
    int ret = 0;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        ret = fail_res(d, r);
    else
        tl_strlcpy(out, PQgetvalue(r, 0, 0), cap);
    PQclear(r);
    return ret;
}

static int pg_exec(struct tl_db *db, const char *sql);

static int pg_open(struct tl_db **out, const char *target, const char *password, char *errbuf,
                   size_t cap)
{
    struct pg_db *d = calloc(1, sizeof *d);
    char v[64];

    *out = NULL;
    if (!d) {
        snprintf(errbuf, cap, "out of memory");
        return -1;
    }
    d->base.ops = &tl_db_pg;
    *out = &d->base;
    /* expand_dbname: target is a URL or keyword string; the later keywords (the password,
     * the encoding) override whatever it says */
    /* TCP keep-alives first, so that the target may override them: a listening connection
     * (the change feed) only reads, and without them a server gone silently (a network
     * partition) would go unnoticed until the kernel gives up, hours later */
    const char *keys[] = {"keepalives_idle", "keepalives_interval", "keepalives_count", "dbname",
                          "password",        "client_encoding",     "connect_timeout",  NULL};
    /* a NULL or empty value is skipped: no password means libpq's own sources (~/.pgpass) */
    const char *vals[] = {"10", "5", "3", target, password, "UTF8", "10", NULL};
    d->c = PQconnectdbParams(keys, vals, 1);
    if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
        set_msg(d, d->c ? PQerrorMessage(d->c) : "out of memory");
        snprintf(errbuf, cap, "cannot connect to PostgreSQL: %s", d->msg);
        return -1;
    }
    PQsetNoticeProcessor(d->c, ignore_notice, NULL);
    /* a COMMIT that returned is on disk: the session insists on synchronous_commit, and a
     * server that does not fsync at all cannot keep that promise */
    if (pg_exec(&d->base, "SET synchronous_commit = on; SET client_min_messages = warning") != 0 ||
        query_value(d, "SHOW synchronous_commit", v, sizeof v) != 0) {
        snprintf(errbuf, cap, "cannot configure the PostgreSQL session: %s", d->msg);
        return -1;
    }
    if (strcmp(v, "on") != 0) {
        snprintf(errbuf, cap, "PostgreSQL synchronous_commit is %s, not on", v);
        return -1;
    }
    if (query_value(d, "SHOW fsync", v, sizeof v) != 0) {
        snprintf(errbuf, cap, "cannot read the PostgreSQL fsync setting: %s", d->msg);
        return -1;
    }
    if (strcmp(v, "on") != 0) {
        snprintf(errbuf, cap,
                 "PostgreSQL runs with fsync = %s: a commit would not be on disk; turn fsync on "
                 "in postgresql.conf",
                 v);
        return -1;
    }
    /* the version record, created once under a session advisory lock (two nodes starting
     * together must not both create it) */
    if (pg_exec(&d->base, "SELECT pg_advisory_lock(" SCHEMA_LOCK_KEY ")") != 0 ||
        pg_exec(&d->base,
                "CREATE TABLE IF NOT EXISTS trunkline_schema (id INTEGER PRIMARY KEY CHECK (id = "
                "1), version INTEGER NOT NULL); INSERT INTO trunkline_schema VALUES (1, 0) ON "
                "CONFLICT (id) DO NOTHING") != 0) {
        snprintf(errbuf, cap, "cannot create the PostgreSQL schema record: %s", d->msg);
        return -1;
    }
    pg_exec(&d->base, "SELECT pg_advisory_unlock(" SCHEMA_LOCK_KEY ")");
    return 0;
}

static void pg_close(struct tl_db *db)
{
    struct pg_db *d = DB(db);
    if (!d)
        return;
    if (d->c)
        PQfinish(d->c);
    free(d);
}

static int pg_exec(struct tl_db *db, const char *sql)
{
    struct pg_db *d = DB(db);
    ensure_conn(d);
    PGresult *r = PQexec(d->c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ret = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : fail_res(d, r);
    PQclear(r);
    return ret;
}

static int pg_prepare(struct tl_db *db, const char *sql, struct tl_db_stmt **out)
{
    struct pg_db *d = DB(db);
    struct pg_stmt *s = calloc(1, sizeof *s);

    *out = NULL;
    if (!s)
        return fail_msg(d, "out of memory");
    s->base.db = db;
    s->sql = translate(sql, &s->nparams);
    if (!s->sql) {
        free(s);
        return fail_msg(d, "bad placeholder in SQL");
    }
    s->row = -1;
    *out = &s->base;
    return 0;
}

static int set_param(struct tl_db_stmt *st, int i, const void *p, size_t len, int format, Oid type,
                     bool nul)
{
    struct pg_stmt *s = ST(st);
    if (i < 1 || i > s->nparams || len > INT32_MAX)
        return fail_msg(DB(st->db), "parameter index out of range");
    free(s->values[i - 1]);
    s->values[i - 1] = NULL;
    s->lengths[i - 1] = 0;
    s->formats[i - 1] = format;
    s->types[i - 1] = type;
    if (!p)
        return 0;
    char *c = malloc(len + (nul ? 1 : 0) + 1);
    if (!c)
        return fail_msg(DB(st->db), "out of memory");
    memcpy(c, p, len);
    c[len] = '\0';
    s->values[i - 1] = c;
    s->lengths[i - 1] = (int)len;
    return 0;
}

static int pg_bind_text(struct tl_db_stmt *st, int i, const char *v)
{
    return set_param(st, i, v, v ? strlen(v) : 0, 0, OID_TEXT, true);
}

static void be64(uint64_t v, uint8_t b[8])
{
    for (int k = 7; k >= 0; k--, v >>= 8)
        b[k] = (uint8_t)v;
}

static int pg_bind_int64(struct tl_db_stmt *st, int i, int64_t v)
{
    uint8_t b[8];
    be64((uint64_t)v, b);
    return set_param(st, i, b, 8, 1, OID_INT8, false);
}

static int pg_bind_double(struct tl_db_stmt *st, int i, double v)
{
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, &v, 8);
    be64(u, b);
    return set_param(st, i, b, 8, 1, OID_FLOAT8, false);
}

static int pg_bind_blob(struct tl_db_stmt *st, int i, const void *p, size_t len)
{
    /* a zero-length blob is not NULL */
    return set_param(st, i, p ? p : "", len, 1, OID_BYTEA, false);
}

/* type 0: the server infers it from the context (the column of an INSERT or UPDATE) */
static int pg_bind_null(struct tl_db_stmt *st, int i)
{
    return set_param(st, i, NULL, 0, 0, 0, false);
}

static int pg_step(struct tl_db_stmt *st)
{
    struct pg_stmt *s = ST(st);
    struct pg_db *d = DB(st->db);

    if (!s->res) {
        ensure_conn(d);
        s->res = PQexecParams(d->c, s->sql, s->nparams, s->types, (const char *const *)s->values,
                              s->lengths, s->formats, 1);
        ExecStatusType rs = PQresultStatus(s->res);
        if (rs == PGRES_COMMAND_OK) {
            const char *n = PQcmdTuples(s->res);
            d->changes = n && *n ? strtoll(n, NULL, 10) : 0;
            s->nrows = 0;
        } else if (rs == PGRES_TUPLES_OK) {
            const char *n = PQcmdTuples(s->res); /* INSERT … RETURNING counts too */
            if (n && *n)
                d->changes = strtoll(n, NULL, 10);
            s->nrows = PQntuples(s->res);
        } else {
            fail_res(d, s->res);
            PQclear(s->res);
            s->res = NULL;
            return d->last;
        }
        s->row = -1;
    }
    if (s->row + 1 >= s->nrows) {
        s->row = s->nrows;
        return TL_DB_DONE;
    }
    s->row++;
    return TL_DB_ROW;
}

static bool valid(struct pg_stmt *s, int i)
{
    return s->res && s->row >= 0 && s->row < s->nrows && i >= 0 && i < PQnfields(s->res);
}

static int pg_column_count(struct tl_db_stmt *st)
{
    struct pg_stmt *s = ST(st);
    return s->res ? PQnfields(s->res) : 0;
}

static bool pg_column_is_null(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    return !valid(s, i) || PQgetisnull(s->res, s->row, i);
}

static uint64_t rd_be(const char *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = v << 8 | (uint8_t)p[k];
    return v;
}

/* binary integers and floats of any width, as the two accessors want them */
static bool num(struct pg_stmt *s, int i, int64_t *iv, double *dv)
{
    const char *p = PQgetvalue(s->res, s->row, i);
    int len = PQgetlength(s->res, s->row, i);
    Oid t = PQftype(s->res, i);
    uint64_t u;
    float f;
    *iv = 0;
    *dv = 0;
    if (t == OID_BOOL && len == 1) {
        *iv = p[0] != 0;
    } else if (t == OID_INT2 && len == 2) {
        *iv = (int16_t)rd_be(p, 2);
    } else if (t == OID_INT4 && len == 4) {
        *iv = (int32_t)rd_be(p, 4);
    } else if (t == OID_INT8 && len == 8) {
        *iv = (int64_t)rd_be(p, 8);
    } else if (t == OID_FLOAT8 && len == 8) {
        u = rd_be(p, 8);
        memcpy(dv, &u, 8);
        *iv = (int64_t)*dv;
        return true;
    } else if (t == OID_FLOAT4 && len == 4) {
        uint32_t w = (uint32_t)rd_be(p, 4);
        memcpy(&f, &w, 4);
        *dv = f;
        *iv = (int64_t)f;
        return true;
    } else if (t == OID_TEXT || t == OID_VARCHAR) {
        *iv = strtoll(p, NULL, 10);
        *dv = strtod(p, NULL);
        return true;
    } else {
        return false;
    }
    *dv = (double)*iv;
    return true;
}

static const char *pg_column_text(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    if (pg_column_is_null(st, i))
        return NULL;
    Oid t = PQftype(s->res, i);
    if (t == OID_TEXT || t == OID_VARCHAR || t == OID_BYTEA)
        return PQgetvalue(s->res, s->row, i); /* libpq terminates binary values too */
    int64_t iv;
    double dv;
    if (!num(s, i, &iv, &dv))
        return PQgetvalue(s->res, s->row, i);
    if (t == OID_FLOAT8 || t == OID_FLOAT4)
        snprintf(s->scratch, sizeof s->scratch, "%.17g", dv);
    else
        snprintf(s->scratch, sizeof s->scratch, "%" PRId64, iv);
    return s->scratch;
}

static int64_t pg_column_int64(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    int64_t iv = 0;
    double dv;
    if (!pg_column_is_null(st, i))
        num(s, i, &iv, &dv);
    return iv;
}

static double pg_column_double(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    int64_t iv;
    double dv = 0;
    if (!pg_column_is_null(st, i))
        num(s, i, &iv, &dv);
    return dv;
}

static const void *pg_column_blob(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    return pg_column_is_null(st, i) ? NULL : PQgetvalue(s->res, s->row, i);
}

static int pg_column_bytes(struct tl_db_stmt *st, int i)
{
    struct pg_stmt *s = ST(st);
    return pg_column_is_null(st, i) ? 0 : PQgetlength(s->res, s->row, i);
}

static void pg_reset(struct tl_db_stmt *st)
{
    struct pg_stmt *s = ST(st);
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    s->nrows = 0;
    for (int i = 0; i < s->nparams; i++) {
        free(s->values[i]);
        s->values[i] = NULL;
        s->lengths[i] = 0;
        s->formats[i] = 0;
        s->types[i] = 0;
    }
}

static void pg_finalize(struct tl_db_stmt *st)
{
    struct pg_stmt *s = ST(st);
    pg_reset(st);
    free(s->sql);
    free(s);
}

static int pg_begin(struct tl_db *db)
{
    return pg_exec(db, "BEGIN");
}

/* COMMIT of a transaction that failed answers "ROLLBACK" with success: that is a failure */
static int pg_commit(struct tl_db *db)
{
    struct pg_db *d = DB(db);
    PGresult *r = PQexec(d->c, "COMMIT");
    int ret = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        ret = fail_res(d, r);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        ret = fail_msg(d, "the transaction was rolled back by an earlier error");
    PQclear(r);
    return ret;
}

static void pg_rollback(struct tl_db *db)
{
    struct pg_db *d = DB(db);
    if (PQtransactionStatus(d->c) != PQTRANS_IDLE && PQtransactionStatus(d->c) != PQTRANS_UNKNOWN)
        PQclear(PQexec(d->c, "ROLLBACK"));
}

static int64_t pg_changes(struct tl_db *db)
{
    return DB(db)->changes;
}

static enum tl_db_error pg_last_error(struct tl_db *db)
{
    return DB(db)->last;
}

static const char *pg_errmsg(struct tl_db *db)
{
    return DB(db)->msg;
}

static int pg_schema_version(struct tl_db *db, int *v)
{
    struct pg_db *d = DB(db);
    char b[32];
    if (query_value(d, "SELECT version FROM trunkline_schema WHERE id = 1", b, sizeof b) != 0)
        return -1;
    *v = atoi(b);
    return 0;
}

static int pg_set_schema_version(struct tl_db *db, int v)
{
    char sql[96]; /* our own integer, never user data */
    snprintf(sql, sizeof sql, "UPDATE trunkline_schema SET version = %d WHERE id = 1", v);
    return pg_exec(db, sql);
}

/* held until the migration's transaction ends: another node waits, then sees the new
 * version and skips */
static int pg_lock_schema(struct tl_db *db)
{
    return pg_exec(db, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")");
}

/* pg_notify() takes the channel and payload as parameters: no identifier or literal is
 * ever built from them */
static int pg_notify(struct tl_db *db, const char *channel, const char *payload)
{
    struct pg_db *d = DB(db);
    const char *vals[2] = {channel, payload};
    ensure_conn(d);
    PGresult *r = PQexecParams(d->c, "SELECT pg_notify($1, $2)", 2, NULL, vals, NULL, NULL, 0);
    int ret = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : fail_res(d, r);
    PQclear(r);
    return ret;
}

static int pg_listen(struct tl_db *db, const char *channel)
{
    struct pg_db *d = DB(db);
    /* the channel holds the schema's name: quoted, every '"' doubled, it may take twice
     * its 63 bytes; a LISTEN cut short would listen on another channel, so refuse it */
    char *id = PQescapeIdentifier(d->c, channel, strnlen(channel, 64));
    char sql[160];
    if (!id)
        return fail_msg(d, PQerrorMessage(d->c));
    int n = snprintf(sql, sizeof sql, "LISTEN %s", id);
    PQfreemem(id);
    if (n < 0 || (size_t)n >= sizeof sql)
        return fail_msg(d, "channel name too long");
    return pg_exec(db, sql);
}

/* libpq's asynchronous notification interface: PQconsumeInput reads what the socket has,
 * PQnotifies hands the queued notifications over one by one. A dead server shows as a
 * failed PQconsumeInput or a connection that went CONNECTION_BAD; TCP keep-alives (the
 * conninfo's keepalives settings) bound how long a silent network failure goes unseen. */
static int pg_wait_notify(struct tl_db *db, int timeout_ms, int wake_fd,
                          void (*fn)(const char *payload, void *arg), void *arg)
{
    struct pg_db *d = DB(db);
    int sock = PQsocket(d->c);
    if (sock < 0 || PQstatus(d->c) != CONNECTION_OK)
        return fail_msg(d, "the connection is lost");
    struct pollfd p[2] = {{.fd = sock, .events = POLLIN}, {.fd = wake_fd, .events = POLLIN}};
    int n = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR)
        return fail_msg(d, "poll failed");
    if (n > 0 && p[0].revents) {
        if (!PQconsumeInput(d->c))
            return fail_res(d, NULL);
        PGnotify *nf;
        while ((nf = PQnotifies(d->c)) != NULL) {
            fn(nf->extra ? nf->extra : "", arg);
            PQfreemem(nf);
        }
    }
    return PQstatus(d->c) == CONNECTION_OK ? 0 : fail_msg(d, "the connection is lost");
}

const struct tl_db_ops tl_db_pg = {
    .name = "postgresql",
    .caps = TL_DB_CAP_RETURNING | TL_DB_CAP_NOTIFY,
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .bind_text = pg_bind_text,
    .bind_int64 = pg_bind_int64,
    .bind_double = pg_bind_double,
    .bind_blob = pg_bind_blob,
    .bind_null = pg_bind_null,
    .step = pg_step,
    .column_count = pg_column_count,
    .column_is_null = pg_column_is_null,
    .column_text = pg_column_text,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_blob = pg_column_blob,
    .column_bytes = pg_column_bytes,
    .reset = pg_reset,
    .finalize = pg_finalize,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .changes = pg_changes,
    .last_error = pg_last_error,
    .errmsg = pg_errmsg,
    .schema_version = pg_schema_version,
    .set_schema_version = pg_set_schema_version,
    .lock_schema = pg_lock_schema,
    .notify = pg_notify,
    .listen = pg_listen,
    .wait_notify = pg_wait_notify,
};
