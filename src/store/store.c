/* store: the domain rules of store.h above the database backend interface (db.h): SQLite
 * by default, PostgreSQL when the store setting names one. The SQL here is the subset both
 * dialects share; what differs (the schema's DDL, the version record, durability settings,
 * error codes) lives in the backends and in the per-backend migrations below.
 *
 * One connection, serialised by s->mu: a single connection keeps transactions simple (no
 * lock conflicts between our own threads) and the API, the only writer, is not
 * throughput-bound. Every public function takes the lock for its whole duration; list
 * callbacks run after it is released, so a callback may call back into the store.
 *
 * Durability: each backend commits to disk before COMMIT returns (SQLite: WAL +
 * synchronous=FULL; PostgreSQL: synchronous_commit on, checked at open), so a function that
 * returned 0 survives kill -9 and power loss (store.h's promise to the API).
 *
 * Values only ever reach SQL as bound parameters; the few SQL texts built at run time
 * carry our own column lists and integers, never user data. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "store/db.h"
#include "store/store.h"

#define TOKEN_PREFIX_LEN 12    /* "tlk_" + 8 characters: enough to tell tokens apart */
#define TOKEN_SECRET_LEN 47    /* "tlk_" + 43 base64url characters */
#define TOKEN_TOUCH_MS   60000 /* last_used_at granularity: at most one write a minute */
#define SEALED_PW_MAX    (TL_PASSWORD_MAX + TL_SEAL_OVERHEAD)
/* sealed agent headers: per header 1-byte name length, name, 2-byte value length, value */
#define HDR_PLAIN_MAX  (TL_HEADERS_MAX * (1 + TL_HEADER_NAME_MAX + 2 + TL_HEADER_VALUE_MAX))
#define HDR_SEALED_MAX (HDR_PLAIN_MAX + TL_SEAL_OVERHEAD)

struct tl_store {
    pthread_mutex_t mu;
    struct tl_db *db;
    int version; /* schema version of the open database */
    uint8_t key[32];
    tl_store_change_fn change_fn; /* set before other threads write: read without mu */
    void *change_arg;
};

/* ---- schema ----
 * Each entry moves the schema from version i to i+1 in one transaction; PRAGMA
 * user_version records where a database stands. Entries are never edited once released:
 * a change is a new entry.
 *
 * `seq` (the rowid) gives creation order for pagination; `id` is the public id. Enum
 * values are stored by their wire names so the file reads well in the sqlite3 shell and
 * reordering a C enum cannot silently change stored meaning. phone_numbers.number is
 * UNIQUE across all workspaces: a number can be routed to one place only. The composite
 * foreign key makes SQLite itself refuse a number assigned to another workspace's agent. */
static const char *const migrations_sqlite[] = {
    /* v1: base tables */
    "CREATE TABLE workspaces ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " plan TEXT NOT NULL,"
    " region TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);"
    "CREATE TABLE tokens ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE," /* NULL: operator */
    " role TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " prefix TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX tokens_workspace ON tokens(workspace_id);"
    "CREATE TABLE agents ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " builtin TEXT NOT NULL DEFAULT '',"
    " url TEXT NOT NULL DEFAULT '',"
    " params_json TEXT NOT NULL DEFAULT '[]',"
    " header_names_json TEXT NOT NULL DEFAULT '[]',"
    " headers_sealed BLOB," /* names and values, sealed; NULL when there are no headers */
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " UNIQUE (workspace_id, id));"
    "CREATE TABLE phone_numbers ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " number TEXT NOT NULL UNIQUE,"
    " label TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL,"
    " agent_id TEXT,"
    " outbound_json TEXT NOT NULL,"
    " outbound_password BLOB,"
    " inbound_json TEXT,"
    " inbound_password BLOB,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " FOREIGN KEY (workspace_id, agent_id) REFERENCES agents(workspace_id, id));"
    "CREATE INDEX phone_numbers_workspace ON phone_numbers(workspace_id);",

    /* v2: agent-in-use checks and the agent_id filter without a table scan; token
     * last-use time for operators auditing stale credentials */
    "CREATE INDEX phone_numbers_agent ON phone_numbers(agent_id);"
    "ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;",

    /* v3: call records and diagnostic events. No foreign keys on purpose: they are
     * history, and outlive the number (or agent) they name. Indexes serve the listings,
     * newest first, per workspace and per number; events of no workspace (a REGISTER for
     * a number nobody imported) get a partial index of their own. */
    "CREATE TABLE calls ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL,"
    " number_id TEXT,"
    " number TEXT NOT NULL DEFAULT '',"
    " agent_id TEXT,"
    " direction TEXT NOT NULL,"
    " from_uri TEXT NOT NULL DEFAULT '',"
    " from_user TEXT NOT NULL DEFAULT '',"
    " to_user TEXT NOT NULL DEFAULT '',"
    " sip_call_id TEXT NOT NULL DEFAULT '',"
    " created_at INTEGER NOT NULL,"
    " answered_at INTEGER,"
    " ended_at INTEGER,"
    " end_reason TEXT NOT NULL DEFAULT '',"
    " final_status INTEGER NOT NULL DEFAULT 0,"
    " codec TEXT NOT NULL DEFAULT '',"
    " media_encryption TEXT NOT NULL DEFAULT 'rtp',"
    " packets_sent INTEGER NOT NULL DEFAULT 0,"
    " packets_received INTEGER NOT NULL DEFAULT 0,"
    " packets_lost INTEGER NOT NULL DEFAULT 0,"
    " jitter_ms REAL NOT NULL DEFAULT 0);"
    "CREATE INDEX calls_workspace ON calls(workspace_id, seq);"
    "CREATE INDEX calls_number ON calls(number_id, seq);"
    "CREATE TABLE events ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT," /* NULL: operator-level */
    " number_id TEXT,"
    " code TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " hint TEXT NOT NULL DEFAULT '',"
    " details_json TEXT NOT NULL DEFAULT '{}',"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX events_number ON events(number_id, seq);"
    "CREATE INDEX events_operator ON events(seq) WHERE workspace_id IS NULL;",

    /* v4: what each call's media dropped, by reason: a carrier whose RTP comes from another
     * address than its SDP (one-way audio) shows as rtp_dropped_source, not as silence */
    "ALTER TABLE calls ADD COLUMN rtp_dropped_source INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_auth INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_malformed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_pt INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_early INTEGER NOT NULL DEFAULT 0;",

    /* v5: WebSocket agents get a connect timeout; a workspace may get Twilio-style
     * credentials (AccountSid + auth token) for the REST call-update emulation that bots
     * built for Twilio use to hang up. The token is sealed, not hashed: it also keys the
     * X-Twilio-Signature HMAC of requests we send to bots. */
    "ALTER TABLE agents ADD COLUMN connect_timeout_ms INTEGER NOT NULL DEFAULT 5000;"
    "ALTER TABLE calls ADD COLUMN audio_dropped_bytes INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE twilio_accounts ("
    " workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,"
    " account_sid TEXT NOT NULL UNIQUE,"
    " token_sealed BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);",

    /* v6: TwiML agents (Twilio voice webhooks): the voice URL lives in url; the method of
     * its requests, the fallback URL and the status callback here */
    "ALTER TABLE agents ADD COLUMN voice_method TEXT NOT NULL DEFAULT 'POST';"
    "ALTER TABLE agents ADD COLUMN fallback_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN status_callback TEXT NOT NULL DEFAULT '';",

    /* v7: tokens may expire (issue 11: a leaked token of a departed contractor should not
     * live forever) */
    "ALTER TABLE tokens ADD COLUMN expires_at INTEGER;",

    /* v8: outbound calls. A call has a status (store.h: queued … completed, busy,
     * no_answer, failed, canceled), the far end's reason phrase with its final status, and
     * the hint of its failure. Rows of older versions get the status their times imply. A
     * workspace gets the E.164 prefixes its outbound calls may reach (the operator's), and
     * may have a webhook; its deliveries are rows until they are delivered (a restart loses
     * none). */
    "ALTER TABLE calls ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';"
    "ALTER TABLE calls ADD COLUMN sip_reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN hint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE workspaces ADD COLUMN outbound_prefixes_json TEXT NOT NULL DEFAULT '[]';"
    "CREATE TABLE webhooks ("
    " workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,"
    " url TEXT NOT NULL,"
    " secret_sealed BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " last_success_at INTEGER,"
    " last_failure_at INTEGER,"
    " last_error TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE webhook_deliveries ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " event TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at);"
    "CREATE INDEX webhook_deliveries_workspace ON webhook_deliveries(workspace_id);"
    "UPDATE calls SET status = CASE"
    " WHEN ended_at IS NULL AND answered_at IS NULL THEN 'ringing'"
    " WHEN ended_at IS NULL THEN 'in_progress'"
    " WHEN answered_at IS NOT NULL THEN 'completed'"
    " WHEN end_reason = 'canceled' THEN 'canceled'"
    " ELSE 'failed' END;",
};
/* The same versions for PostgreSQL: one entry per version, as above (an entry is never
 * edited once released; a new version appends one entry to each list). BIGINT for
 * INTEGER, BYTEA for BLOB, an identity column for the rowid `seq` (creation order), the
 * same constraints, the composite foreign key and the CHECKs included. */
static const char *const migrations_pg[] = {
    /* v1 */
    "CREATE TABLE workspaces ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " plan TEXT NOT NULL,"
    " region TEXT NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE TABLE tokens ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT REFERENCES workspaces(id) ON DELETE CASCADE," /* NULL: operator */
    " role TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " prefix TEXT NOT NULL,"
    " hash BYTEA NOT NULL UNIQUE CHECK (length(hash) = 32),"
    " created_at BIGINT NOT NULL);"
    "CREATE INDEX tokens_workspace ON tokens(workspace_id);"
    "CREATE TABLE agents ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " builtin TEXT NOT NULL DEFAULT '',"
    " url TEXT NOT NULL DEFAULT '',"
    " params_json TEXT NOT NULL DEFAULT '[]',"
    " header_names_json TEXT NOT NULL DEFAULT '[]',"
    " headers_sealed BYTEA," /* names and values, sealed; NULL when there are no headers */
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " UNIQUE (workspace_id, id));"
    "CREATE TABLE phone_numbers ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " number TEXT NOT NULL UNIQUE,"
    " label TEXT NOT NULL DEFAULT '',"
    " source TEXT NOT NULL,"
    " agent_id TEXT,"
    " outbound_json TEXT NOT NULL,"
    " outbound_password BYTEA,"
    " inbound_json TEXT,"
    " inbound_password BYTEA,"
    " created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " FOREIGN KEY (workspace_id, agent_id) REFERENCES agents(workspace_id, id));"
    "CREATE INDEX phone_numbers_workspace ON phone_numbers(workspace_id);"
    /* SQLite's instr(), which the number search uses */
    "CREATE FUNCTION instr(text, text) RETURNS integer LANGUAGE sql IMMUTABLE AS "
    "'SELECT strpos($1, $2)';",

    /* v2 */
    "CREATE INDEX phone_numbers_agent ON phone_numbers(agent_id);"
    "ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;",

    /* v3 */
    "CREATE TABLE calls ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL,"
    " number_id TEXT,"
    " number TEXT NOT NULL DEFAULT '',"
    " agent_id TEXT,"
    " direction TEXT NOT NULL,"
    " from_uri TEXT NOT NULL DEFAULT '',"
    " from_user TEXT NOT NULL DEFAULT '',"
    " to_user TEXT NOT NULL DEFAULT '',"
    " sip_call_id TEXT NOT NULL DEFAULT '',"
    " created_at BIGINT NOT NULL,"
    " answered_at BIGINT,"
    " ended_at BIGINT,"
    " end_reason TEXT NOT NULL DEFAULT '',"
    " final_status BIGINT NOT NULL DEFAULT 0,"
    " codec TEXT NOT NULL DEFAULT '',"
    " media_encryption TEXT NOT NULL DEFAULT 'rtp',"
    " packets_sent BIGINT NOT NULL DEFAULT 0,"
    " packets_received BIGINT NOT NULL DEFAULT 0,"
    " packets_lost BIGINT NOT NULL DEFAULT 0,"
    " jitter_ms DOUBLE PRECISION NOT NULL DEFAULT 0);"
    "CREATE INDEX calls_workspace ON calls(workspace_id, seq);"
    "CREATE INDEX calls_number ON calls(number_id, seq);"
    "CREATE TABLE events ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT," /* NULL: operator-level */
    " number_id TEXT,"
    " code TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " hint TEXT NOT NULL DEFAULT '',"
    " details_json TEXT NOT NULL DEFAULT '{}',"
    " created_at BIGINT NOT NULL);"
    "CREATE INDEX events_number ON events(number_id, seq);"
    "CREATE INDEX events_operator ON events(seq) WHERE workspace_id IS NULL;",

    /* v4 */
    "ALTER TABLE calls ADD COLUMN rtp_dropped_source BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_auth BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_malformed BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_pt BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE calls ADD COLUMN rtp_dropped_early BIGINT NOT NULL DEFAULT 0;",

    /* v5 */
    "ALTER TABLE agents ADD COLUMN connect_timeout_ms BIGINT NOT NULL DEFAULT 5000;"
    "ALTER TABLE calls ADD COLUMN audio_dropped_bytes BIGINT NOT NULL DEFAULT 0;"
    "CREATE TABLE twilio_accounts ("
    " workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,"
    " account_sid TEXT NOT NULL UNIQUE,"
    " token_sealed BYTEA NOT NULL,"
    " created_at BIGINT NOT NULL);",

    /* v6 */
    "ALTER TABLE agents ADD COLUMN voice_method TEXT NOT NULL DEFAULT 'POST';"
    "ALTER TABLE agents ADD COLUMN fallback_url TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE agents ADD COLUMN status_callback TEXT NOT NULL DEFAULT '';",

    /* v7 */
    "ALTER TABLE tokens ADD COLUMN expires_at BIGINT;",

    /* v8 */
    "ALTER TABLE calls ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';"
    "ALTER TABLE calls ADD COLUMN sip_reason TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE calls ADD COLUMN hint TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE workspaces ADD COLUMN outbound_prefixes_json TEXT NOT NULL DEFAULT '[]';"
    "CREATE TABLE webhooks ("
    " workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id) ON DELETE CASCADE,"
    " url TEXT NOT NULL,"
    " secret_sealed BYTEA NOT NULL,"
    " created_at BIGINT NOT NULL,"
    " last_success_at BIGINT,"
    " last_failure_at BIGINT,"
    " last_error TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE webhook_deliveries ("
    " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,"
    " event TEXT NOT NULL,"
    " body TEXT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0,"
    " next_at BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at);"
    "CREATE INDEX webhook_deliveries_workspace ON webhook_deliveries(workspace_id);"
    "UPDATE calls SET status = CASE"
    " WHEN ended_at IS NULL AND answered_at IS NULL THEN 'ringing'"
    " WHEN ended_at IS NULL THEN 'in_progress'"
    " WHEN answered_at IS NOT NULL THEN 'completed'"
    " WHEN end_reason = 'canceled' THEN 'canceled'"
    " ELSE 'failed' END;",
};
_Static_assert(sizeof migrations_pg / sizeof migrations_pg[0] ==
                   sizeof migrations_sqlite / sizeof migrations_sqlite[0],
               "every schema version has a migration for each backend");
#define N_MIGRATIONS ((int)(sizeof migrations_sqlite / sizeof migrations_sqlite[0]))

/* ---- small helpers ---- */

static void lock(struct tl_store *s)
{
    pthread_mutex_lock(&s->mu);
}

static void unlock(struct tl_store *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* The database's message goes to the log only: it can name tables and constraints, which
 * is nothing a tenant needs to see. */
static int db_fail(struct tl_store *s, const char *op, struct tl_err *err)
{
    tl_error("store", "store.db_error", "op=%s class=%d detail=\"%s\"", op,
             (int)tl_db_last_error(s->db), tl_db_errmsg(s->db));
    return tl_err_set(err, EIO, 500, "internal", "",
                      "The database could not complete the request.");
}

static int corrupt(const char *op, const char *id, const char *what, struct tl_err *err)
{
    tl_error("store", "store.corrupt", "op=%s id=%s what=\"%s\"", op, id, what);
    return tl_err_set(err, EIO, 500, "internal", "", "A stored record could not be read.");
}

static int not_found(struct tl_err *err, const char *what)
{
    return tl_err_set(err, ENOENT, 404, "not_found", "", "No such %s in this workspace.", what);
}

static void fin(struct tl_db_stmt **st)
{
    tl_db_finalize(*st);
    *st = NULL;
}

static int prep(struct tl_store *s, const char *op, const char *sql, struct tl_db_stmt **st,
                struct tl_err *err)
{
    if (tl_db_prepare(s->db, sql, st) != 0) {
        *st = NULL;
        return db_fail(s, op, err);
    }
    return 0;
}

/* binders return 0 on success, so calls chain with || */
static int bind_str(struct tl_db_stmt *st, int i, const char *v)
{
    return tl_db_bind_text(st, i, v);
}

/* NULL and "" both store SQL NULL (no agent, operator token, no inbound trunk) */
static int bind_opt(struct tl_db_stmt *st, int i, const char *v)
{
    if (!v || !*v)
        return tl_db_bind_null(st, i);
    return bind_str(st, i, v);
}

static int bind_blob(struct tl_db_stmt *st, int i, const void *p, size_t len, bool present)
{
    if (!present)
        return tl_db_bind_null(st, i);
    return tl_db_bind_blob(st, i, p, len);
}

static const char *col_str(struct tl_db_stmt *st, int i)
{
    const char *t = tl_db_column_text(st, i);
    return t ? t : "";
}

/* Values from the file are copied with their bounds: a database edited by hand or
 * damaged must not overflow a struct field. */
static void col_text(struct tl_db_stmt *st, int i, char *dst, size_t cap)
{
    tl_strlcpy(dst, col_str(st, i), cap);
}

/* the backend takes its write lock up front where it has one (SQLite: BEGIN IMMEDIATE),
 * so check-then-write sequences (number taken?, agent in use?) cannot interleave with
 * another process on the same file (the CLI); PostgreSQL's constraints catch the rest */
static int tx_begin(struct tl_store *s, const char *op, struct tl_err *err)
{
    return tl_db_begin(s->db) != 0 ? db_fail(s, op, err) : 0;
}

static void tx_rollback(struct tl_store *s)
{
    tl_db_rollback(s->db);
}

static int tx_commit(struct tl_store *s, const char *op, struct tl_err *err)
{
    int ret = tl_db_commit(s->db) != 0 ? db_fail(s, op, err) : 0;
    if (ret != 0)
        tx_rollback(s);
    return ret;
}

/* step a statement expected to finish without rows */
static int step_done(struct tl_store *s, const char *op, struct tl_db_stmt *st, struct tl_err *err)
{
    if (tl_db_step(st) != TL_DB_DONE)
        return db_fail(s, op, err);
    return 0;
}

/* binds args[0..n) at ?1..?n; a NULL arg binds SQL NULL (bind_text does that) */
static int bind_args(struct tl_db_stmt *st, const char *const *args, int n)
{
    for (int i = 0; i < n; i++)
        if (bind_str(st, i + 1, args[i]))
            return 1;
    return 0;
}

/* Prepares sql, binds args and steps once: 0 with *st on the row, ENOENT (err left alone,
 * each caller words its own "missing") when there is none, else the database failure. The
 * caller finalizes *st in every case. */
static int row_one(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                   int n, struct tl_db_stmt **st, struct tl_err *err)
{
    int ret = prep(s, op, sql, st, err);
    if (ret != 0)
        return ret;
    if (bind_args(*st, args, n))
        return db_fail(s, op, err);
    int rc = tl_db_step(*st);
    if (rc == TL_DB_ROW)
        return 0;
    if (rc == TL_DB_DONE)
        return ENOENT;
    return db_fail(s, op, err);
}

/* a statement with only text parameters that returns no rows (DELETE by id) */
static int exec_args(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                     int n, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    int ret = prep(s, op, sql, &st, err);
    if (ret == 0 && bind_args(st, args, n))
        ret = db_fail(s, op, err);
    if (ret == 0)
        ret = step_done(s, op, st, err);
    tl_db_finalize(st);
    return ret;
}

/* Runs a write statement to completion and finalizes it; `bound` is the ||-chain of its
 * binders (0 when all took). On failure *st is left to the caller's exit path. */
static int step_fin(struct tl_store *s, const char *op, struct tl_db_stmt **st, int bound,
                    struct tl_err *err)
{
    if (bound)
        return db_fail(s, op, err);
    int ret = step_done(s, op, *st, err);
    if (ret == 0)
        fin(st);
    return ret;
}

/* The exit of a write under lock: drops the statement, undoes a transaction left open
 * (after a commit there is none), unlocks. */
static void tx_end(struct tl_store *s, struct tl_db_stmt *st)
{
    tl_db_finalize(st);
    tx_rollback(s);
    unlock(s);
}

static void safe_zero(void *p, size_t n)
{
    sodium_memzero(p, n);
}

/* after a commit, with the lock released (store.h: the hook may read the store again) */
static void notify(struct tl_store *s, enum tl_store_change_kind kind, const char *ws,
                   const char *id, const char *number)
{
    if (!s->change_fn)
        return;
    struct tl_store_change c = {kind, ws, id, number};
    s->change_fn(&c, s->change_arg);
}

/* ---- cursors ----
 * "c" + lowercase hex of the last row's seq. Opaque to clients; strict on input so a
 * garbled cursor is a clear 400 instead of a silently wrong page. */
static void cursor_make(int64_t seq, char out[TL_CURSOR_MAX])
{
    snprintf(out, TL_CURSOR_MAX, "c%" PRIx64, (uint64_t)seq);
}

static int cursor_parse(const char *c, int64_t *after, struct tl_err *err)
{
    *after = 0;
    if (!c || !*c)
        return 0;
    size_t len = strnlen(c, TL_CURSOR_MAX);
    if (c[0] != 'c' || len < 2 || len > 16 || c[1] == '0')
        goto bad;
    uint64_t v = 0;
    for (size_t i = 1; i < len; i++) {
        int d;
        if (c[i] >= '0' && c[i] <= '9')
            d = c[i] - '0';
        else if (c[i] >= 'a' && c[i] <= 'f')
            d = c[i] - 'a' + 10;
        else
            goto bad;
        v = v << 4 | (uint64_t)d;
    }
    if (v > INT64_MAX)
        goto bad;
    *after = (int64_t)v;
    return 0;
bad:
    return tl_err_set(err, EINVAL, 400, "invalid_field", "cursor",
                      "This cursor is not valid; pass the next_cursor of the previous page, or "
                      "no cursor to start from the beginning.");
}

static size_t page_limit(const struct tl_page *pg)
{
    if (!pg)
        return TL_PAGE_DEFAULT;
    if (pg->limit < 1)
        return 1;
    if (pg->limit > TL_PAGE_MAX)
        return TL_PAGE_MAX;
    return pg->limit;
}

typedef int (*row_reader)(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err);

/* Reads up to `limit` rows of a query that asked for limit + 1, into a fresh array, so
 * the callbacks can run without the lock. */
static int collect(struct tl_store *s, const char *op, struct tl_db_stmt *st, size_t limit,
                   size_t item_size, row_reader rd, void **items, size_t *n,
                   char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    int ret = 0;
    int64_t seq = 0, last = 0;
    uint8_t *buf = calloc(limit, item_size);

    *items = NULL;
    *n = 0;
    if (!buf)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    for (;;) {
        int rc = tl_db_step(st);
        if (rc == TL_DB_DONE)
            break;
        if (rc != TL_DB_ROW) {
            ret = db_fail(s, op, err);
            goto out;
        }
        if (*n == limit) { /* the extra row: there is a next page */
            cursor_make(last, next_cursor);
            break;
        }
        ret = rd(st, buf + *n * item_size, &seq, err);
        if (ret != 0)
            goto out;
        last = seq;
        (*n)++;
    }
out:
    if (ret != 0) {
        free(buf);
        *n = 0;
        next_cursor[0] = '\0';
        return ret;
    }
    *items = buf;
    return 0;
}

/* One page of a list query, read under the lock into a fresh array (*items, free it) so
 * that the caller runs its callbacks without the lock. sql takes args at ?1..?n_args, the
 * seq of the cursor at ?n_args+1 and the row limit at ?n_args+2; it asks for one row more
 * than the page, to know whether a next page exists. */
static int list_page(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                     int n_args, const struct tl_page *pg, size_t item_size, row_reader rd,
                     void **items, size_t *n, char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    size_t limit = page_limit(pg);
    int64_t after;

    *items = NULL;
    *n = 0;
    next_cursor[0] = '\0';
    int ret = cursor_parse(pg ? pg->cursor : NULL, &after, err);
    if (ret != 0)
        return ret;
    lock(s);
    ret = prep(s, op, sql, &st, err);
    if (ret == 0) {
        if (bind_args(st, args, n_args) || tl_db_bind_int64(st, n_args + 1, after) ||
            tl_db_bind_int64(st, n_args + 2, (int64_t)limit + 1))
            ret = db_fail(s, op, err);
        else
            ret = collect(s, op, st, limit, item_size, rd, items, n, next_cursor, err);
    }
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

/* ---- JSON columns (non-secret trunk and agent fields) ---- */

static int json_put(json_t *o, const char *k, json_t *v)
{
    /* json_string() is NULL for invalid UTF-8; json_object_set_new then fails too */
    return json_object_set_new(o, k, v);
}

static json_t *kv_to_json(const struct tl_kv *h, size_t n)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    for (size_t i = 0; i < n && i < TL_HEADERS_MAX; i++) {
        /* json_pack is NULL for text that is not UTF-8; append_new frees on failure */
        if (json_array_append_new(a, json_pack("[ss]", h[i].name, h[i].value))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static void kv_from_json(json_t *a, struct tl_kv *h, size_t *n)
{
    size_t i;
    json_t *pair;

    *n = 0;
    json_array_foreach(a, i, pair)
    {
        if (*n == TL_HEADERS_MAX)
            break;
        const char *k = json_string_value(json_array_get(pair, 0));
        const char *v = json_string_value(json_array_get(pair, 1));
        tl_strlcpy(h[*n].name, k ? k : "", sizeof h[*n].name);
        tl_strlcpy(h[*n].value, v ? v : "", sizeof h[*n].value);
        (*n)++;
    }
}

static void jstr(json_t *o, const char *k, char *dst, size_t cap)
{
    const char *v = json_string_value(json_object_get(o, k));
    tl_strlcpy(dst, v ? v : "", cap);
}

static const char *jname(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

static const char *opt_name(const char *n)
{
    return n ? n : "";
}

/* dump and free j; NULL j (a failed build) or a failed dump is EINVAL: the only way to
 * get here with valid memory is text that is not UTF-8 */
static int dump(json_t *j, char **out)
{
    *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return *out ? 0 : EINVAL;
}

/* the members both trunk directions store; the caller adds its own and dumps o */
static int trunk_common_to_json(json_t *o, const char *username, enum tl_transport transport,
                                enum tl_media_enc media, const struct tl_kv *headers, size_t n)
{
    return json_put(o, "username", json_string(username)) ||
           json_put(o, "transport", json_string(opt_name(tl_transport_name(transport)))) ||
           json_put(o, "media_encryption", json_string(opt_name(tl_media_enc_name(media)))) ||
           json_put(o, "headers", kv_to_json(headers, n));
}

static int outbound_to_json(const struct tl_outbound_trunk *t, char **out)
{
    json_t *o = json_object();
    if (!o || json_put(o, "address", json_string(t->address)) ||
        trunk_common_to_json(o, t->username, t->transport, t->media_encryption, t->headers,
                             t->n_headers) ||
        (t->number_format != TL_NUMFMT_E164 &&
         json_put(o, "number_format",
                  json_string(opt_name(tl_number_format_name(t->number_format)))))) {
        json_decref(o);
        o = NULL;
    }
    return dump(o, out);
}

static int inbound_to_json(const struct tl_inbound_trunk *t, char **out)
{
    json_t *o = json_object();
    json_t *allowed = json_array();
    bool bad = !o || !allowed;

    for (size_t i = 0; !bad && i < t->n_allowed && i < TL_ALLOWED_MAX; i++)
        bad = json_array_append_new(allowed, json_string(t->allowed_addresses[i])) != 0;
    if (bad ||
        trunk_common_to_json(o, t->username, t->transport, t->media_encryption, t->headers,
                             t->n_headers) ||
        json_put(o, "allowed_addresses", json_incref(allowed)) ||
        json_put(o, "origination_url", json_string(t->origination_url)) ||
        (t->rtp_latching &&
         json_put(o, "rtp_latching",
                  json_string(opt_name(tl_rtp_latching_name(t->rtp_latching))))) ||
        (t->allow_any_source && json_put(o, "allow_any_source", json_true()))) {
        json_decref(o);
        o = NULL;
    }
    json_decref(allowed);
    return dump(o, out);
}

/* Parses a stored trunk column and reads the members both directions share: the object
 * (json_decref it) or NULL when the text or an enum name is not what we write (EIO). */
static json_t *trunk_common_from_json(const char *text, char *username, size_t cap,
                                      enum tl_transport *transport, enum tl_media_enc *media,
                                      struct tl_kv *headers, size_t *n)
{
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o))
        goto bad;
    int tr = tl_transport_parse(jname(o, "transport"));
    int me = tl_media_enc_parse(jname(o, "media_encryption"));
    if (tr < 0 || me < 0)
        goto bad;
    *transport = (enum tl_transport)tr;
    *media = (enum tl_media_enc)me;
    jstr(o, "username", username, cap);
    kv_from_json(json_object_get(o, "headers"), headers, n);
    return o;
bad:
    json_decref(o);
    return NULL;
}

static int outbound_from_json(const char *text, struct tl_outbound_trunk *t)
{
    json_t *o = trunk_common_from_json(text, t->username, sizeof t->username, &t->transport,
                                       &t->media_encryption, t->headers, &t->n_headers);
    if (!o)
        return EIO;
    jstr(o, "address", t->address, sizeof t->address);
    /* absent (the default, and rows written before the member existed): E.164 with '+' */
    t->number_format = TL_NUMFMT_E164;
    if (json_object_get(o, "number_format")) {
        int f = tl_number_format_parse(jname(o, "number_format"));
        if (f < 0) {
            json_decref(o);
            return EIO;
        }
        t->number_format = (enum tl_number_format)f;
    }
    json_decref(o);
    return 0;
}

static int inbound_from_json(const char *text, struct tl_inbound_trunk *t)
{
    size_t i;
    json_t *v;
    json_t *o = trunk_common_from_json(text, t->username, sizeof t->username, &t->transport,
                                       &t->media_encryption, t->headers, &t->n_headers);
    if (!o)
        return EIO;
    jstr(o, "origination_url", t->origination_url, sizeof t->origination_url);
    t->allow_any_source = json_is_true(json_object_get(o, "allow_any_source"));
    /* absent (rows written before the member existed) = the gateway's setting */
    t->rtp_latching = TL_LATCHING_DEFAULT;
    if (json_object_get(o, "rtp_latching")) {
        int l = tl_rtp_latching_parse(jname(o, "rtp_latching"));
        if (l < 0) {
            json_decref(o);
            return EIO;
        }
        t->rtp_latching = (enum tl_rtp_latching)l;
    }
    t->n_allowed = 0;
    json_array_foreach(json_object_get(o, "allowed_addresses"), i, v)
    {
        if (t->n_allowed == TL_ALLOWED_MAX)
            break;
        const char *a = json_string_value(v);
        tl_strlcpy(t->allowed_addresses[t->n_allowed++], a ? a : "",
                   sizeof t->allowed_addresses[0]);
    }
    json_decref(o);
    return 0;
}

static int params_to_json(const struct tl_agent *a, char **out)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < a->n_params && i < TL_PARAMS_MAX; i++) {
        if (json_array_append_new(arr, json_pack("[ss]", a->params[i].key, a->params[i].value))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return dump(arr, out);
}

static int header_names_to_json(const struct tl_agent *a, char **out)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < a->n_headers && i < TL_HEADERS_MAX; i++) {
        if (json_array_append_new(arr, json_string(a->headers[i].name))) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return dump(arr, out);
}

/* ---- sealing ---- */

struct sealed {
    bool present;
    size_t len;
    uint8_t buf[SEALED_PW_MAX];
};

static void seal_ad(char *ad, size_t cap, const char *row_id, const char *field)
{
    /* binds a ciphertext to its row and column: copied elsewhere it fails to open */
    snprintf(ad, cap, "%s:%s", row_id, field);
}

static int col_sealed(struct tl_db_stmt *st, int i, struct sealed *out)
{
    memset(out, 0, sizeof *out);
    if (tl_db_column_is_null(st, i))
        return 0;
    const void *b = tl_db_column_blob(st, i);
    int n = tl_db_column_bytes(st, i);
    if (!b || n < TL_SEAL_OVERHEAD || (size_t)n > sizeof out->buf)
        return EIO;
    memcpy(out->buf, b, (size_t)n);
    out->len = (size_t)n;
    out->present = true;
    return 0;
}

static int seal_password(struct tl_store *s, const char *row_id, const char *field, const char *pw,
                         struct sealed *out)
{
    char ad[TL_ID_MAX + 32];
    size_t len = strnlen(pw, TL_PASSWORD_MAX + 1);

    memset(out, 0, sizeof *out);
    if (len > TL_PASSWORD_MAX)
        return EINVAL;
    seal_ad(ad, sizeof ad, row_id, field);
    int ret = tl_seal(s->key, ad, pw, len, out->buf, sizeof out->buf, &out->len);
    out->present = ret == 0;
    return ret;
}

static int open_password(struct tl_store *s, const char *row_id, const char *field,
                         const struct sealed *in, char out[TL_PASSWORD_MAX + 1])
{
    char ad[TL_ID_MAX + 32];
    size_t len = 0;

    out[0] = '\0';
    if (!in->present)
        return 0;
    seal_ad(ad, sizeof ad, row_id, field);
    int ret = tl_unseal(s->key, ad, in->buf, in->len, out, TL_PASSWORD_MAX, &len);
    if (ret != 0)
        return ret;
    out[len] = '\0';
    return 0;
}

/* agent headers (names and values) in a small length-prefixed form, sealed as one blob */
static int headers_seal(struct tl_store *s, const char *agent_id, const struct tl_kv *h, size_t n,
                        uint8_t *out, size_t *out_len)
{
    uint8_t plain[HDR_PLAIN_MAX];
    size_t p = 0;
    char ad[TL_ID_MAX + 32];

    for (size_t i = 0; i < n && i < TL_HEADERS_MAX; i++) {
        size_t nl = strnlen(h[i].name, TL_HEADER_NAME_MAX + 1);
        size_t vl = strnlen(h[i].value, TL_HEADER_VALUE_MAX + 1);
        if (nl > TL_HEADER_NAME_MAX || vl > TL_HEADER_VALUE_MAX) {
            safe_zero(plain, p);
            return EINVAL;
        }
        plain[p++] = (uint8_t)nl;
        memcpy(plain + p, h[i].name, nl);
        p += nl;
        plain[p++] = (uint8_t)(vl >> 8);
        plain[p++] = (uint8_t)vl;
        memcpy(plain + p, h[i].value, vl);
        p += vl;
    }
    seal_ad(ad, sizeof ad, agent_id, "headers");
    int ret = tl_seal(s->key, ad, plain, p, out, HDR_SEALED_MAX, out_len);
    safe_zero(plain, sizeof plain);
    return ret;
}

static int headers_open(struct tl_store *s, const char *agent_id, const void *sealed, size_t len,
                        struct tl_kv *h, size_t *n)
{
    uint8_t plain[HDR_PLAIN_MAX];
    size_t plen = 0, p = 0;
    char ad[TL_ID_MAX + 32];
    int ret;

    *n = 0;
    seal_ad(ad, sizeof ad, agent_id, "headers");
    ret = tl_unseal(s->key, ad, sealed, len, plain, sizeof plain, &plen);
    if (ret != 0)
        return ret;
    while (p < plen) {
        if (*n == TL_HEADERS_MAX)
            goto bad;
        size_t nl = plain[p++];
        if (nl > TL_HEADER_NAME_MAX || plen - p < nl + 2)
            goto bad;
        memcpy(h[*n].name, plain + p, nl);
        h[*n].name[nl] = '\0';
        p += nl;
        size_t vl = (size_t)plain[p] << 8 | plain[p + 1];
        p += 2;
        if (vl > TL_HEADER_VALUE_MAX || plen - p < vl)
            goto bad;
        memcpy(h[*n].value, plain + p, vl);
        h[*n].value[vl] = '\0';
        p += vl;
        (*n)++;
    }
    safe_zero(plain, sizeof plain);
    return 0;
bad:
    safe_zero(plain, sizeof plain);
    safe_zero(h, sizeof *h * TL_HEADERS_MAX);
    *n = 0;
    return EBADMSG;
}

/* ---- row readers ---- */

#define WS_COLS "seq, id, name, plan, region, created_at, updated_at"
/* the columns of schema v6 and later */
#define WS_COLS6 WS_COLS ", outbound_prefixes_json"

static void prefixes_from_json(const char *text, char (*v)[TL_PREFIX_MAX + 1], size_t *n)
{
    json_t *a = json_loads(text, 0, NULL);
    size_t i;
    json_t *e;
    *n = 0;
    json_array_foreach(a, i, e)
    {
        if (*n < TL_PREFIXES_MAX && json_is_string(e) &&
            !tl_valid_prefix(json_string_value(e), "", NULL))
            tl_strlcpy(v[(*n)++], json_string_value(e), TL_PREFIX_MAX + 1);
    }
    json_decref(a);
}

static int ws_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_workspace *w = out;
    memset(w, 0, sizeof *w);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, w->id, sizeof w->id);
    col_text(st, 2, w->name, sizeof w->name);
    int plan = tl_plan_parse(col_str(st, 3));
    if (plan < 0)
        return corrupt("workspace", w->id, "plan", err);
    w->plan = (enum tl_plan)plan;
    col_text(st, 4, w->region, sizeof w->region);
    w->created_at = tl_db_column_int64(st, 5);
    w->updated_at = tl_db_column_int64(st, 6);
    if (tl_db_column_count(st) > 7)
        prefixes_from_json(col_str(st, 7), w->out_prefixes, &w->n_out_prefixes);
    return 0;
}

#define TK_COLS "seq, id, workspace_id, role, name, prefix, created_at"
/* TK_COLS and the bookkeeping columns, for reads; a store opened at an older schema
 * (migration tests) reads NULLs */
#define TK_COLS_RD(s)                                                                              \
    ((s)->version >= 6   ? TK_COLS ", last_used_at, expires_at"                                    \
     : (s)->version >= 2 ? TK_COLS ", last_used_at, NULL"                                          \
                         : TK_COLS ", NULL, NULL")

static int tk_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_token *t = out;
    memset(t, 0, sizeof *t);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, t->id, sizeof t->id);
    col_text(st, 2, t->workspace_id, sizeof t->workspace_id);
    int role = tl_role_parse(col_str(st, 3));
    if (role < 0)
        return corrupt("token", t->id, "role", err);
    t->role = (enum tl_role)role;
    col_text(st, 4, t->name, sizeof t->name);
    col_text(st, 5, t->prefix, sizeof t->prefix);
    t->created_at = tl_db_column_int64(st, 6);
    if (tl_db_column_count(st) > 8) {
        t->last_used_at = tl_db_column_int64(st, 7); /* NULL reads 0 */
        t->expires_at = tl_db_column_int64(st, 8);
    }
    return 0;
}

#define AG_COLS                                                                                    \
    "seq, id, workspace_id, name, kind, builtin, url, params_json, header_names_json, "            \
    "created_at, updated_at, connect_timeout_ms, voice_method, fallback_url, status_callback"
#define AG_COL_SEALED 15 /* headers_sealed, when a query appends it */

static int ag_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_agent *a = out;
    size_t i;
    json_t *j, *v;

    memset(a, 0, sizeof *a);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, a->id, sizeof a->id);
    col_text(st, 2, a->workspace_id, sizeof a->workspace_id);
    col_text(st, 3, a->name, sizeof a->name);
    int kind = tl_agent_kind_parse(col_str(st, 4));
    if (kind < 0)
        return corrupt("agent", a->id, "kind", err);
    a->kind = (enum tl_agent_kind)kind;
    col_text(st, 5, a->builtin, sizeof a->builtin);
    col_text(st, 6, a->url, sizeof a->url);

    j = json_loads(col_str(st, 7), 0, NULL);
    if (!json_is_array(j)) {
        json_decref(j);
        return corrupt("agent", a->id, "params_json", err);
    }
    json_array_foreach(j, i, v)
    {
        if (a->n_params == TL_PARAMS_MAX)
            break;
        const char *k = json_string_value(json_array_get(v, 0));
        const char *val = json_string_value(json_array_get(v, 1));
        tl_strlcpy(a->params[a->n_params].key, k ? k : "", sizeof a->params[0].key);
        tl_strlcpy(a->params[a->n_params].value, val ? val : "", sizeof a->params[0].value);
        a->n_params++;
    }
    json_decref(j);

    j = json_loads(col_str(st, 8), 0, NULL);
    if (!json_is_array(j)) {
        json_decref(j);
        return corrupt("agent", a->id, "header_names_json", err);
    }
    json_array_foreach(j, i, v)
    {
        if (a->n_headers == TL_HEADERS_MAX)
            break;
        const char *name = json_string_value(v);
        tl_strlcpy(a->headers[a->n_headers++].name, name ? name : "", sizeof a->headers[0].name);
    }
    json_decref(j);
    a->values_hidden = true;
    a->created_at = tl_db_column_int64(st, 9);
    a->updated_at = tl_db_column_int64(st, 10);
    int64_t t = tl_db_column_int64(st, 11);
    a->connect_timeout_ms = t > 0 && t <= TL_AGENT_TIMEOUT_MAX_MS ? (uint32_t)t : 5000;
    a->method_get = !strcmp(col_str(st, 12), "GET");
    col_text(st, 13, a->fallback_url, sizeof a->fallback_url);
    col_text(st, 14, a->status_callback, sizeof a->status_callback);
    return 0;
}

#define PN_COLS                                                                                    \
    "seq, id, workspace_id, number, label, source, agent_id, outbound_json, "                      \
    "outbound_password IS NOT NULL, inbound_json, inbound_password IS NOT NULL, created_at, "      \
    "updated_at"
#define PN_COL_OUT_PW 13 /* outbound_password, inbound_password, when a query appends them */
#define PN_COL_IN_PW  14

static int pn_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_phone_number *n = out;
    memset(n, 0, sizeof *n);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, n->id, sizeof n->id);
    col_text(st, 2, n->workspace_id, sizeof n->workspace_id);
    col_text(st, 3, n->number, sizeof n->number);
    col_text(st, 4, n->label, sizeof n->label);
    int src = tl_source_parse(col_str(st, 5));
    if (src < 0)
        return corrupt("number", n->id, "source", err);
    n->source = (enum tl_number_source)src;
    col_text(st, 6, n->agent_id, sizeof n->agent_id);
    if (outbound_from_json(col_str(st, 7), &n->outbound) != 0)
        return corrupt("number", n->id, "outbound_json", err);
    n->outbound.has_password = tl_db_column_int64(st, 8) != 0;
    if (!tl_db_column_is_null(st, 9)) {
        n->has_inbound = true;
        if (inbound_from_json(col_str(st, 9), &n->inbound) != 0)
            return corrupt("number", n->id, "inbound_json", err);
        n->inbound.has_password = tl_db_column_int64(st, 10) != 0;
    }
    n->created_at = tl_db_column_int64(st, 11);
    n->updated_at = tl_db_column_int64(st, 12);
    return 0;
}

/* ---- open, close, migrations ---- */

int tl_store_latest_version(void)
{
    return N_MIGRATIONS;
}

static int read_version(struct tl_store *s, int *v, struct tl_err *err)
{
    return s->db->ops->schema_version(s->db, v) != 0 ? db_fail(s, "schema_version", err) : 0;
}

static int migrate(struct tl_store *s, int target, struct tl_err *err)
{
    const char *const *steps = s->db->ops == &tl_db_pg ? migrations_pg : migrations_sqlite;
    int ret = 0;
    for (int v = s->version + 1; v <= target; v++) {
        int cur = 0;

        ret = tx_begin(s, "migrate", err);
        if (ret != 0)
            return ret;
        /* re-read under the schema lock: another process (or node) may have migrated
         * meanwhile */
        if (s->db->ops->lock_schema(s->db) != 0) {
            ret = db_fail(s, "migrate", err);
            goto fail;
        }
        ret = read_version(s, &cur, err);
        if (ret != 0)
            goto fail;
        if (cur >= v) {
            tx_rollback(s);
            s->version = cur;
            continue;
        }
        if (tl_db_exec(s->db, steps[v - 1]) != 0 || s->db->ops->set_schema_version(s->db, v) != 0) {
            tl_error("store", "store.migrate_failed", "version=%d detail=\"%s\"", v,
                     tl_db_errmsg(s->db));
            ret = tl_err_set(err, EIO, 500, "internal", "",
                             "database migration to schema v%d failed: %s", v, tl_db_errmsg(s->db));
            goto fail;
        }
        ret = tx_commit(s, "migrate", err);
        if (ret != 0)
            return ret;
        tl_info("store", "store.migrated", "version=%d", v);
        s->version = v;
    }
    return 0;
fail:
    tx_rollback(s);
    return ret;
}

int tl_store_open_ex(struct tl_store **sp, const char *target_db, const char *password,
                     const uint8_t key[32], int target, struct tl_err *err)
{
    struct tl_store *s = NULL;
    const struct tl_db_ops *ops;
    char detail[512] = "";
    int ret = 0, cur = 0;

    *sp = NULL;
    if (target < 1 || target > N_MIGRATIONS)
        return tl_err_set(err, EINVAL, 500, "internal", "", "no schema version %d (latest v%d)",
                          target, N_MIGRATIONS);
    if (!target_db || !*target_db)
        return tl_err_set(err, EINVAL, 500, "internal", "", "no database path given");
    ops = tl_db_backend_for(target_db);
    s = calloc(1, sizeof *s);
    if (!s)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    pthread_mutex_init(&s->mu, NULL);
    memcpy(s->key, key, sizeof s->key);

    if (ops->open(&s->db, target_db, password, detail, sizeof detail) != 0) {
        ret = tl_err_set(err, EIO, 500, "internal", "", "%s", detail);
        goto out;
    }
    ret = read_version(s, &cur, err);
    if (ret != 0)
        goto out;
    if (cur > N_MIGRATIONS) {
        ret = tl_err_set(err, EINVAL, 500, "schema_too_new", "",
                         "database schema v%d is newer than this trunkline (v%d): upgrade "
                         "trunkline",
                         cur, N_MIGRATIONS);
        goto out;
    }
    s->version = cur;
    if (cur < target) {
        ret = migrate(s, target, err);
        if (ret != 0)
            goto out;
    }
out:
    if (ret != 0) {
        tl_store_close(s);
        return ret;
    }
    *sp = s;
    return 0;
}

int tl_store_open_at(struct tl_store **sp, const char *db_path, const uint8_t key[32], int target,
                     struct tl_err *err)
{
    return tl_store_open_ex(sp, db_path, NULL, key, target, err);
}

int tl_store_open(struct tl_store **sp, const char *db_path, const uint8_t key[32],
                  struct tl_err *err)
{
    return tl_store_open_ex(sp, db_path, NULL, key, N_MIGRATIONS, err);
}

const char *tl_store_backend(struct tl_store *s)
{
    return s->db->ops->name;
}

void tl_store_close(struct tl_store *s)
{
    if (!s)
        return;
    if (s->db)
        s->db->ops->close(s->db);
    pthread_mutex_destroy(&s->mu);
    sodium_memzero(s->key, sizeof s->key);
    free(s);
}

int tl_store_ping(struct tl_store *s)
{
    struct tl_db_stmt *st = NULL;
    lock(s);
    int ret = prep(s, "ping", "SELECT 1", &st, NULL);
    if (ret == 0 && tl_db_step(st) != TL_DB_ROW)
        ret = db_fail(s, "ping", NULL);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_schema_version(struct tl_store *s)
{
    lock(s);
    int v = s->version;
    unlock(s);
    return v;
}

int tl_store_workspace_count(struct tl_store *s, int64_t *n)
{
    struct tl_db_stmt *st = NULL;
    *n = 0;
    lock(s);
    int ret = prep(s, "workspace_count", "SELECT count(*) FROM workspaces", &st, NULL);
    if (ret == 0) {
        if (tl_db_step(st) == TL_DB_ROW)
            *n = tl_db_column_int64(st, 0);
        else
            ret = db_fail(s, "workspace_count", NULL);
    }
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

/* ---- workspaces ---- */

/* plan of a workspace, ENOENT when it does not exist; inside the caller's lock */
static int ws_plan(struct tl_store *s, const char *op, const char *ws, enum tl_plan *plan,
                   struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    int ret = row_one(s, op, "SELECT plan FROM workspaces WHERE id = ?1", &ws, 1, &st, err);
    if (ret == ENOENT) {
        ret = not_found(err, "workspace");
    } else if (ret == 0) {
        int p = tl_plan_parse(col_str(st, 0));
        if (p < 0)
            ret = corrupt(op, ws, "plan", err);
        else
            *plan = (enum tl_plan)p;
    }
    tl_db_finalize(st);
    return ret;
}

static int ws_read(struct tl_store *s, const char *id, struct tl_workspace *out, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    int64_t seq;
    int ret = row_one(s, "workspace_get",
                      s->version >= 6 ? "SELECT " WS_COLS6 " FROM workspaces WHERE id = ?1"
                                      : "SELECT " WS_COLS " FROM workspaces WHERE id = ?1",
                      &id, 1, &st, err);
    if (ret == 0)
        ret = ws_row(st, out, &seq, err);
    else if (ret == ENOENT)
        ret = not_found(err, "workspace");
    tl_db_finalize(st);
    return ret;
}

int tl_store_workspace_create(struct tl_store *s, struct tl_workspace *w, struct tl_err *err)
{
    static const char op[] = "workspace_create";
    struct tl_db_stmt *st = NULL;
    char agent_id[TL_ID_MAX];
    int ret;

    lock(s);
    tl_id_new(w->id, "ws");
    tl_id_new(agent_id, "ag");
    w->created_at = w->updated_at = tl_now_ms();
    if (!w->region[0])
        tl_strlcpy(w->region, "eu", sizeof w->region);

    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = prep(s, op,
               "INSERT INTO workspaces (id, name, plan, region, created_at, updated_at) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
               &st, err);
    if (ret != 0)
        goto out;
    ret = step_fin(s, op, &st,
                   bind_str(st, 1, w->id) || bind_str(st, 2, w->name) ||
                       bind_str(st, 3, opt_name(tl_plan_name(w->plan))) ||
                       bind_str(st, 4, w->region) || tl_db_bind_int64(st, 5, w->created_at),
                   err);
    if (ret != 0)
        goto out;

    /* every workspace starts with something a number can be pointed at right away */
    ret = prep(s, op,
               "INSERT INTO agents (id, workspace_id, name, kind, builtin, created_at, "
               "updated_at) VALUES (?1, ?2, 'echo', ?3, 'echo', ?4, ?4)",
               &st, err);
    if (ret != 0)
        goto out;
    ret = step_fin(s, op, &st,
                   bind_str(st, 1, agent_id) || bind_str(st, 2, w->id) ||
                       bind_str(st, 3, opt_name(tl_agent_kind_name(TL_AGENT_BUILTIN))) ||
                       tl_db_bind_int64(st, 4, w->created_at),
                   err);
    if (ret != 0)
        goto out;
    ret = tx_commit(s, op, err);
out:
    tx_end(s, st);
    return ret;
}

int tl_store_workspace_get(struct tl_store *s, const char *id, struct tl_workspace *out)
{
    lock(s);
    int ret = ws_read(s, id, out, NULL);
    unlock(s);
    return ret;
}

int tl_store_workspace_update(struct tl_store *s, struct tl_workspace *w, struct tl_err *err)
{
    static const char op[] = "workspace_update";
    struct tl_db_stmt *st = NULL;
    int ret;

    lock(s);
    w->updated_at = tl_now_ms();
    /* an empty region keeps the stored one: residency is not cleared by omission */
    json_t *pa = json_array();
    for (size_t i = 0; pa && i < w->n_out_prefixes && i < TL_PREFIXES_MAX; i++)
        json_array_append_new(pa, json_string(w->out_prefixes[i]));
    char *prefixes = pa ? json_dumps(pa, JSON_COMPACT) : NULL;
    json_decref(pa);
    if (!prefixes) {
        ret = tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
        goto out;
    }
    ret = prep(s, op,
               "UPDATE workspaces SET name = ?1, plan = ?2, "
               "region = coalesce(nullif(?3, ''), region), updated_at = ?4, "
               "outbound_prefixes_json = ?6 WHERE id = ?5",
               &st, err);
    if (ret == 0)
        ret =
            step_fin(s, op, &st,
                     bind_str(st, 1, w->name) || bind_str(st, 2, opt_name(tl_plan_name(w->plan))) ||
                         bind_str(st, 3, w->region) || tl_db_bind_int64(st, 4, w->updated_at) ||
                         bind_str(st, 5, w->id) || bind_str(st, 6, prefixes),
                     err);
    free(prefixes);
    if (ret != 0)
        goto out;
    if (tl_db_changes(s->db) == 0) {
        ret = not_found(err, "workspace");
        goto out;
    }
    ret = ws_read(s, w->id, w, err);
out:
    tl_db_finalize(st);
    unlock(s);
    if (ret == 0)
        notify(s, TL_CHANGE_WORKSPACE_UPDATED, w->id, w->id, NULL);
    return ret;
}

int tl_store_workspace_country_codes(struct tl_store *s, const char *workspace_id,
                                     char (*out)[TL_PREFIX_MAX + 1], size_t cap, size_t *n)
{
    static const char op[] = "workspace_country_codes";
    struct tl_db_stmt *st = NULL;
    *n = 0;
    lock(s);
    /* a country code has at most 3 digits: the distinct 4-byte heads are few, however many
     * numbers the workspace holds */
    int ret = prep(
        s, op, "SELECT DISTINCT substr(number, 1, 4) FROM phone_numbers WHERE workspace_id = ?1",
        &st, NULL);
    if (ret == 0 && bind_str(st, 1, workspace_id))
        ret = db_fail(s, op, NULL);
    int rc;
    while (ret == 0 && (rc = tl_db_step(st)) == TL_DB_ROW) {
        char cc[TL_CC_MAX + 1];
        if (tl_e164_country_code(col_str(st, 0), cc))
            continue;
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = !strcmp(out[i], cc);
        if (!seen && *n < cap)
            tl_strlcpy(out[(*n)++], cc, TL_PREFIX_MAX + 1);
    }
    if (ret == 0 && rc != TL_DB_DONE)
        ret = db_fail(s, op, NULL);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_workspace_list(struct tl_store *s, const struct tl_page *pg, tl_workspace_cb cb,
                            void *arg, char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_workspace *items;
    size_t n;
    int ret = list_page(
        s, "workspace_list",
        s->version >= 6 ? "SELECT " WS_COLS6 " FROM workspaces WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                        : "SELECT " WS_COLS " FROM workspaces WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        NULL, 0, pg, sizeof *items, ws_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

/* ---- tokens ---- */

int tl_store_token_create(struct tl_store *s, struct tl_token *t, char secret[TL_TOKEN_MAX + 1],
                          struct tl_err *err)
{
    static const char op[] = "token_create";
    struct tl_db_stmt *st = NULL;
    uint8_t hash[32];
    int ret;

    secret[0] = '\0';
    if (t->role == TL_ROLE_OPERATOR && t->workspace_id[0])
        return tl_err_set(err, EINVAL, 400, "invalid_field", "workspace_id",
                          "Operator tokens are not bound to a workspace; leave workspace_id "
                          "out.");
    if (t->role != TL_ROLE_OPERATOR && !t->workspace_id[0])
        return tl_err_set(err, EINVAL, 400, "invalid_field", "workspace_id",
                          "Admin and member tokens belong to a workspace; give its "
                          "workspace_id.");

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    if (t->workspace_id[0]) {
        enum tl_plan plan;
        ret = ws_plan(s, op, t->workspace_id, &plan, err);
        if (ret == ENOENT)
            ret = tl_err_set(err, EINVAL, 400, "invalid_field", "workspace_id",
                             "No workspace with this id exists.");
        if (ret != 0)
            goto out;
    }
    tl_id_new(t->id, "tk");
    t->created_at = tl_now_ms();
    tl_token_new(secret);
    tl_token_hash(s->key, secret, hash);
    tl_strlcpy(t->prefix, secret, TOKEN_PREFIX_LEN + 1);

    ret = prep(s, op,
               s->version >= 6
                   ? "INSERT INTO tokens (id, workspace_id, role, name, prefix, hash, created_at, "
                     "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                   : "INSERT INTO tokens (id, workspace_id, role, name, prefix, hash, created_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
               &st, err);
    if (ret != 0)
        goto out;
    ret =
        step_fin(s, op, &st,
                 bind_str(st, 1, t->id) || bind_opt(st, 2, t->workspace_id) ||
                     bind_str(st, 3, opt_name(tl_role_name(t->role))) || bind_str(st, 4, t->name) ||
                     bind_str(st, 5, t->prefix) || bind_blob(st, 6, hash, sizeof hash, true) ||
                     tl_db_bind_int64(st, 7, t->created_at) ||
                     (s->version >= 6 && (t->expires_at ? tl_db_bind_int64(st, 8, t->expires_at)
                                                        : tl_db_bind_null(st, 8))),
                 err);
    if (ret != 0)
        goto out;
    ret = tx_commit(s, op, err);
out:
    tl_db_finalize(st);
    if (ret != 0) {
        tx_rollback(s);
        sodium_memzero(secret, TL_TOKEN_MAX + 1);
    }
    unlock(s);
    return ret;
}

int tl_store_token_auth(struct tl_store *s, const char *secret, struct tl_token *out)
{
    static const char op[] = "token_auth";
    struct tl_db_stmt *st = NULL;
    uint8_t hash[32];
    int64_t seq, last_used = 0, now;
    bool touch = false;
    int ret;

    /* cheap shape check first: junk in an Authorization header costs no hashing or SQL */
    if (!secret || strnlen(secret, TOKEN_SECRET_LEN + 1) != TOKEN_SECRET_LEN ||
        memcmp(secret, "tlk_", 4) != 0)
        return ENOENT;
    /* the lookup compares a keyed 32-byte hash, not the secret: timing differences in the
     * index search reveal nothing usable about a token */
    tl_token_hash(s->key, secret, hash);

    lock(s);
    char q[256];
    snprintf(q, sizeof q, "SELECT %s FROM tokens WHERE hash = ?1", TK_COLS_RD(s));
    ret = prep(s, op, q, &st, NULL);
    if (ret != 0)
        goto out;
    if (bind_blob(st, 1, hash, sizeof hash, true)) {
        ret = db_fail(s, op, NULL);
        goto out;
    }
    int rc = tl_db_step(st);
    if (rc == TL_DB_DONE) {
        ret = ENOENT;
        goto out;
    }
    if (rc != TL_DB_ROW) {
        ret = db_fail(s, op, NULL);
        goto out;
    }
    ret = tk_row(st, out, &seq, NULL);
    if (ret != 0)
        goto out;
    now = tl_now_ms();
    if (out->expires_at && now >= out->expires_at) {
        ret = ENOENT; /* expired: answered like an unknown token */
        goto out;
    }
    if (s->version >= 2) {
        last_used = tl_db_column_int64(st, 7);
        /* one write a minute at most: a request never waits for an fsync of bookkeeping */
        touch = tl_db_column_is_null(st, 7) || now - last_used >= TOKEN_TOUCH_MS;
    }
    fin(&st);

    if (touch) {
        /* bookkeeping only: a failure here must not refuse a valid token */
        if (prep(s, op, "UPDATE tokens SET last_used_at = ?1 WHERE seq = ?2", &st, NULL) == 0 &&
            (tl_db_bind_int64(st, 1, now) || tl_db_bind_int64(st, 2, seq) ||
             tl_db_step(st) != TL_DB_DONE))
            tl_warnl("store", "store.token_touch_failed", "id=%s detail=\"%s\"", out->id,
                     tl_db_errmsg(s->db));
    }
out:
    tl_db_finalize(st);
    unlock(s);
    sodium_memzero(hash, sizeof hash);
    if (ret != 0)
        memset(out, 0, sizeof *out);
    return ret;
}

int tl_store_token_list(struct tl_store *s, const char *workspace_id, const struct tl_page *pg,
                        tl_token_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                        struct tl_err *err)
{
    struct tl_token *items;
    size_t n;
    char q[300];
    snprintf(q, sizeof q,
             "SELECT %s FROM tokens WHERE (?1 IS NULL OR workspace_id = ?1) "
             "AND seq > ?2 ORDER BY seq LIMIT ?3",
             TK_COLS_RD(s));
    int ret = list_page(s, "token_list", q, &workspace_id, 1, pg, sizeof *items, tk_row,
                        (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

/* workspace_id NULL: any token (operator view); else only that workspace's */
int tl_store_token_get(struct tl_store *s, const char *workspace_id, const char *id,
                       struct tl_token *out)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {id, workspace_id};
    int64_t seq;

    lock(s);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT %s FROM tokens WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2)",
             TK_COLS_RD(s));
    int ret = row_one(s, "token_get", q, args, 2, &st, NULL);
    if (ret == 0)
        ret = tk_row(st, out, &seq, NULL);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_token_delete(struct tl_store *s, const char *workspace_id, const char *id)
{
    static const char op[] = "token_delete";
    const char *args[] = {id, workspace_id};

    lock(s);
    int ret = tx_begin(s, op, NULL);
    /* never the last operator token (that locks everyone out of the operator routes;
     * docs/api.md has the offline recovery); expired ones do not count as a way in */
    if (ret == 0) {
        char q[400];
        snprintf(q, sizeof q,
                 "DELETE FROM tokens WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2) AND NOT "
                 "(role = 'operator'%s AND (SELECT count(*) FROM tokens WHERE role = "
                 "'operator'%s) <= 1)",
                 s->version >= 6 ? " AND (expires_at IS NULL OR expires_at > ?3)" : "",
                 s->version >= 6 ? " AND (expires_at IS NULL OR expires_at > ?3)" : "");
        struct tl_db_stmt *st = NULL;
        ret = prep(s, op, q, &st, NULL);
        if (ret == 0 &&
            (bind_args(st, args, 2) || (s->version >= 6 && tl_db_bind_int64(st, 3, tl_now_ms()))))
            ret = db_fail(s, op, NULL);
        if (ret == 0)
            ret = step_done(s, op, st, NULL);
        tl_db_finalize(st);
    }
    if (ret == 0 && tl_db_changes(s->db) == 0) {
        /* nothing deleted: no such token, or the last operator one */
        struct tl_db_stmt *st = NULL;
        ret = row_one(s, op,
                      "SELECT role FROM tokens WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2)",
                      args, 2, &st, NULL);
        if (ret == 0)
            ret = EBUSY;
        tl_db_finalize(st);
    }
    if (ret == 0)
        ret = tx_commit(s, op, NULL);
    tx_rollback(s);
    unlock(s);
    return ret;
}

/* ---- Twilio-shaped credentials (REST call-update emulation) ---- */

void tl_store_account_sid(struct tl_store *s, const char *workspace_id,
                          char out[TL_TWILIO_SID_LEN + 1])
{
    /* keyed: who knows a workspace id cannot compute its AccountSid, and the same
     * workspace always has the same one (start frames, credentials, signatures) */
    uint8_t h[16];
    char in[TL_ID_MAX + 16];
    int n = snprintf(in, sizeof in, "twilio-account:%s", workspace_id);
    crypto_generichash(h, sizeof h, (const uint8_t *)in, (size_t)n, s->key, 32);
    out[0] = 'A';
    out[1] = 'C';
    sodium_bin2hex(out + 2, 33, h, sizeof h);
}

int tl_store_twilio_issue(struct tl_store *s, const char *workspace_id,
                          struct tl_twilio_account *out, char token[TL_TWILIO_TOKEN_LEN + 1],
                          struct tl_err *err)
{
    static const char op[] = "twilio_issue";
    struct tl_db_stmt *st = NULL;
    struct sealed sl;
    uint8_t rnd[16];
    enum tl_plan plan;
    int ret;

    memset(out, 0, sizeof *out);
    tl_strlcpy(out->workspace_id, workspace_id, sizeof out->workspace_id);
    tl_store_account_sid(s, workspace_id, out->account_sid);
    randombytes_buf(rnd, sizeof rnd); /* Twilio's auth tokens are 32 hex digits, too */
    sodium_bin2hex(token, TL_TWILIO_TOKEN_LEN + 1, rnd, sizeof rnd);
    sodium_memzero(rnd, sizeof rnd);
    out->created_at = tl_now_ms();
    if (seal_password(s, workspace_id, "twilio_token", token, &sl)) {
        sodium_memzero(token, TL_TWILIO_TOKEN_LEN + 1);
        return tl_err_set(err, EIO, 500, "internal", "", "cannot seal the token");
    }
    lock(s);
    ret = tx_begin(s, op, err);
    if (ret == 0)
        ret = ws_plan(s, op, workspace_id, &plan, err);
    if (ret == ENOENT)
        ret = not_found(err, "workspace");
    if (ret == 0)
        ret = prep(s, op,
                   "INSERT INTO twilio_accounts (workspace_id, account_sid, token_sealed, "
                   "created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(workspace_id) DO UPDATE SET "
                   "token_sealed = excluded.token_sealed, created_at = excluded.created_at",
                   &st, err);
    if (ret == 0)
        ret = step_fin(s, op, &st,
                       bind_str(st, 1, workspace_id) || bind_str(st, 2, out->account_sid) ||
                           bind_blob(st, 3, sl.buf, sl.len, true) ||
                           tl_db_bind_int64(st, 4, out->created_at),
                       err);
    if (ret == 0)
        ret = tx_commit(s, op, err);
    tx_end(s, st);
    sodium_memzero(&sl, sizeof sl);
    if (ret)
        sodium_memzero(token, TL_TWILIO_TOKEN_LEN + 1);
    else /* the routing cache holds the token of TwiML agents (it keys their signatures) */
        notify(s, TL_CHANGE_WORKSPACE_UPDATED, workspace_id, workspace_id, NULL);
    return ret;
}

/* the row of a workspace or of an AccountSid, token opened when token != NULL */
static int twilio_read(struct tl_store *s, const char *op, const char *where, const char *key,
                       struct tl_twilio_account *out, char *token)
{
    struct tl_db_stmt *st = NULL;
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT workspace_id, account_sid, token_sealed, created_at FROM twilio_accounts "
             "WHERE %s = ?1",
             where);
    const char *args[] = {key};
    struct sealed sl;
    int ret = row_one(s, op, sql, args, 1, &st, NULL);
    if (ret == 0) {
        memset(out, 0, sizeof *out);
        col_text(st, 0, out->workspace_id, sizeof out->workspace_id);
        col_text(st, 1, out->account_sid, sizeof out->account_sid);
        out->created_at = tl_db_column_int64(st, 3);
        if (token) {
            char pw[TL_PASSWORD_MAX + 1];
            if (col_sealed(st, 2, &sl) ||
                open_password(s, out->workspace_id, "twilio_token", &sl, pw) ||
                strlen(pw) != TL_TWILIO_TOKEN_LEN)
                ret = corrupt(op, out->workspace_id, "token_sealed", NULL);
            else
                memcpy(token, pw, TL_TWILIO_TOKEN_LEN + 1);
            sodium_memzero(pw, sizeof pw);
            sodium_memzero(&sl, sizeof sl);
        }
    }
    tl_db_finalize(st);
    return ret;
}

int tl_store_twilio_get(struct tl_store *s, const char *workspace_id, struct tl_twilio_account *out)
{
    lock(s);
    int ret = twilio_read(s, "twilio_get", "workspace_id", workspace_id, out, NULL);
    unlock(s);
    return ret;
}

int tl_store_twilio_token(struct tl_store *s, const char *workspace_id,
                          char token[TL_TWILIO_TOKEN_LEN + 1])
{
    struct tl_twilio_account a;
    lock(s);
    int ret = twilio_read(s, "twilio_token", "workspace_id", workspace_id, &a, token);
    unlock(s);
    return ret;
}

int tl_store_twilio_auth(struct tl_store *s, const char *account_sid, const char *token,
                         char workspace_id[TL_ID_MAX])
{
    struct tl_twilio_account a;
    char want[TL_TWILIO_TOKEN_LEN + 1];
    if (!account_sid || !token || strlen(account_sid) != TL_TWILIO_SID_LEN)
        return EPERM;
    lock(s);
    int ret = twilio_read(s, "twilio_auth", "account_sid", account_sid, &a, want);
    unlock(s);
    /* constant time over the token; an unknown AccountSid answers like a wrong token */
    bool ok = ret == 0 && strlen(token) == TL_TWILIO_TOKEN_LEN &&
              sodium_memcmp(want, token, TL_TWILIO_TOKEN_LEN) == 0;
    sodium_memzero(want, sizeof want);
    if (ret && ret != ENOENT)
        return ret;
    if (!ok)
        return EPERM;
    tl_strlcpy(workspace_id, a.workspace_id, TL_ID_MAX);
    return 0;
}

int tl_store_twilio_delete(struct tl_store *s, const char *workspace_id)
{
    const char *args[] = {workspace_id};
    lock(s);
    int ret = exec_args(s, "twilio_delete", "DELETE FROM twilio_accounts WHERE workspace_id = ?1",
                        args, 1, NULL);
    if (ret == 0 && tl_db_changes(s->db) == 0)
        ret = ENOENT;
    unlock(s);
    if (ret == 0) /* the routing cache drops the token that signed TwiML requests */
        notify(s, TL_CHANGE_WORKSPACE_UPDATED, workspace_id, workspace_id, NULL);
    return ret;
}

/* ---- agents ---- */

static int ag_read(struct tl_store *s, const char *op, const char *ws, const char *id,
                   struct tl_agent *out, bool open_values, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {ws, id};
    int64_t seq;
    int ret = row_one(s, op,
                      "SELECT " AG_COLS ", headers_sealed FROM agents "
                      "WHERE workspace_id = ?1 AND id = ?2",
                      args, 2, &st, err);
    if (ret == ENOENT)
        ret = not_found(err, "agent");
    if (ret == 0)
        ret = ag_row(st, out, &seq, err);
    if (ret != 0 || !open_values || tl_db_column_is_null(st, AG_COL_SEALED))
        goto out;
    /* the sealed blob is authoritative: names and values come from it together */
    const void *b = tl_db_column_blob(st, AG_COL_SEALED);
    int len = tl_db_column_bytes(st, AG_COL_SEALED);
    if (!b || len < TL_SEAL_OVERHEAD || len > HDR_SEALED_MAX ||
        headers_open(s, out->id, b, (size_t)len, out->headers, &out->n_headers) != 0) {
        ret = corrupt(op, out->id, "headers_sealed", err);
        goto out;
    }
    out->values_hidden = false;
out:
    tl_db_finalize(st);
    return ret;
}

/* agent of this workspace? EINVAL for the caller's "agent_id" field otherwise */
static int check_agent(struct tl_store *s, const char *op, const char *ws, const char *agent_id,
                       struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {ws, agent_id};
    int ret = row_one(s, op, "SELECT 1 FROM agents WHERE workspace_id = ?1 AND id = ?2", args, 2,
                      &st, err);
    if (ret == ENOENT)
        ret = tl_err_set(err, EINVAL, 400, "invalid_field", "agent_id",
                         "No agent with this id exists in this workspace.");
    tl_db_finalize(st);
    return ret;
}

/* binds name..headers_sealed, connect_timeout_ms, voice_method, fallback_url,
 * status_callback of an agent at parameters first..first+10 */
static int ag_bind_fields(struct tl_store *s, const char *op, struct tl_db_stmt *st, int first,
                          const struct tl_agent *a, struct tl_err *err)
{
    char *params = NULL, *names = NULL;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    int ret = params_to_json(a, &params);
    if (ret == 0)
        ret = header_names_to_json(a, &names);
    if (ret != 0) {
        ret = tl_err_set(err, EINVAL, 400, "invalid_field", "", "Text must be valid UTF-8.");
        goto out;
    }
    if (a->n_headers > 0) {
        sealed = malloc(HDR_SEALED_MAX);
        if (!sealed) {
            ret = tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
            goto out;
        }
        ret = headers_seal(s, a->id, a->headers, a->n_headers, sealed, &sealed_len);
        if (ret != 0) {
            ret = tl_err_set(err, EINVAL, 400, "invalid_field", "headers",
                             "A header name or value is too long.");
            goto out;
        }
    }
    if (bind_str(st, first, a->name) ||
        bind_str(st, first + 1, opt_name(tl_agent_kind_name(a->kind))) ||
        bind_str(st, first + 2, a->builtin) || bind_str(st, first + 3, a->url) ||
        bind_str(st, first + 4, params) || bind_str(st, first + 5, names) ||
        bind_blob(st, first + 6, sealed, sealed_len, sealed != NULL) ||
        tl_db_bind_int64(st, first + 7, a->connect_timeout_ms) ||
        bind_str(st, first + 8, a->method_get ? "GET" : "POST") ||
        bind_str(st, first + 9, a->fallback_url) || bind_str(st, first + 10, a->status_callback))
        ret = db_fail(s, op, err);
out:
    free(params);
    free(names);
    free(sealed);
    return ret;
}

/* Binds the agent's fields at first.., runs the INSERT or UPDATE *st, commits and reads
 * the stored agent back into a (values hidden). */
static int ag_write(struct tl_store *s, const char *op, struct tl_db_stmt **st, int first,
                    struct tl_agent *a, struct tl_err *err)
{
    int ret = ag_bind_fields(s, op, *st, first, a, err);
    if (ret == 0)
        ret = step_fin(s, op, st, 0, err);
    if (ret == 0)
        ret = tx_commit(s, op, err);
    if (ret == 0)
        ret = ag_read(s, op, a->workspace_id, a->id, a, false, err);
    return ret;
}

int tl_store_agent_create(struct tl_store *s, struct tl_agent *a, struct tl_err *err)
{
    static const char op[] = "agent_create";
    struct tl_db_stmt *st = NULL;
    enum tl_plan plan;
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = ws_plan(s, op, a->workspace_id, &plan, err);
    if (ret != 0)
        goto out;
    tl_id_new(a->id, "ag");
    a->created_at = a->updated_at = tl_now_ms();
    ret = prep(s, op,
               "INSERT INTO agents (id, workspace_id, name, kind, builtin, url, params_json, "
               "header_names_json, headers_sealed, connect_timeout_ms, voice_method, "
               "fallback_url, status_callback, created_at, updated_at) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
               &st, err);
    if (ret != 0)
        goto out;
    if (bind_str(st, 1, a->id) || bind_str(st, 2, a->workspace_id) ||
        tl_db_bind_int64(st, 14, a->created_at)) {
        ret = db_fail(s, op, err);
        goto out;
    }
    ret = ag_write(s, op, &st, 3, a, err);
out:
    tx_end(s, st);
    return ret;
}

int tl_store_agent_get(struct tl_store *s, const char *workspace_id, const char *id,
                       struct tl_agent *out)
{
    lock(s);
    int ret = ag_read(s, "agent_get", workspace_id, id, out, false, NULL);
    unlock(s);
    return ret;
}

int tl_store_agent_secrets(struct tl_store *s, const char *workspace_id, const char *id,
                           struct tl_agent *out)
{
    lock(s);
    int ret = ag_read(s, "agent_secrets", workspace_id, id, out, true, NULL);
    unlock(s);
    return ret;
}

int tl_store_agent_update(struct tl_store *s, struct tl_agent *a, struct tl_warnings *w,
                          struct tl_err *err)
{
    static const char op[] = "agent_update";
    struct tl_db_stmt *st = NULL;
    struct tl_agent *stored = NULL;
    int ret;

    stored = malloc(sizeof *stored);
    if (!stored)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = ag_read(s, op, a->workspace_id, a->id, stored, true, err);
    if (ret != 0)
        goto out;
    /* A client that read the agent got names with hidden values; sending them back
     * unchanged must not wipe the API keys they carry — unless the URL now leads somewhere
     * else: a stored secret never follows a change of destination (scheme, host or port),
     * or whoever may edit the URL could send the workspace's bot credentials to a server
     * of their own. Headers left without a value are then dropped, and the response says
     * which (w). */
    bool same_dest = tl_agent_url_same_dest(stored->url, a->url);
    if (a->values_hidden) {
        size_t keep = 0;
        char dropped[320] = "";
        for (size_t i = 0; i < a->n_headers && i < TL_HEADERS_MAX; i++) {
            for (size_t j = 0; same_dest && !a->headers[i].value[0] && j < stored->n_headers; j++) {
                if (strcasecmp(a->headers[i].name, stored->headers[j].name) == 0) {
                    memcpy(a->headers[i].value, stored->headers[j].value,
                           sizeof a->headers[i].value);
                    break;
                }
            }
            if (!a->headers[i].value[0]) {
                size_t dl = strlen(dropped);
                snprintf(dropped + dl, sizeof dropped - dl, "%s%s", dl ? ", " : "",
                         a->headers[i].name);
                continue;
            }
            if (keep != i)
                a->headers[keep] = a->headers[i];
            keep++;
        }
        for (size_t i = keep; i < a->n_headers; i++)
            sodium_memzero(&a->headers[i], sizeof a->headers[i]);
        if (keep < a->n_headers)
            tl_warn(w, "header_values_dropped", "headers",
                    "The agent's URL now leads to another destination, so the stored values of "
                    "%s were dropped (stored header values never follow a change of host). Send "
                    "them again in this request to keep them.",
                    dropped);
        a->n_headers = keep;
    }
    a->created_at = stored->created_at;
    a->updated_at = tl_now_ms();
    ret = prep(s, op,
               "UPDATE agents SET name = ?1, kind = ?2, builtin = ?3, url = ?4, params_json = ?5, "
               "header_names_json = ?6, headers_sealed = ?7, connect_timeout_ms = ?8, "
               "voice_method = ?9, fallback_url = ?10, status_callback = ?11, "
               "updated_at = ?12 WHERE workspace_id = ?13 AND id = ?14",
               &st, err);
    if (ret != 0)
        goto out;
    if (tl_db_bind_int64(st, 12, a->updated_at) || bind_str(st, 13, a->workspace_id) ||
        bind_str(st, 14, a->id)) {
        ret = db_fail(s, op, err);
        goto out;
    }
    ret = ag_write(s, op, &st, 1, a, err);
out:
    tx_end(s, st);
    sodium_memzero(stored, sizeof *stored);
    free(stored);
    if (ret == 0)
        notify(s, TL_CHANGE_AGENT_UPDATED, a->workspace_id, a->id, NULL);
    return ret;
}

int tl_store_agent_delete(struct tl_store *s, const char *workspace_id, const char *id,
                          struct tl_err *err)
{
    static const char op[] = "agent_delete";
    struct tl_db_stmt *st = NULL;
    int64_t in_use = 0;
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = check_agent(s, op, workspace_id, id, err);
    if (ret == EINVAL)
        ret = not_found(err, "agent");
    if (ret != 0)
        goto out;
    ret =
        prep(s, op, "SELECT count(*) FROM phone_numbers WHERE workspace_id = ?1 AND agent_id = ?2",
             &st, err);
    if (ret != 0)
        goto out;
    if (bind_str(st, 1, workspace_id) || bind_str(st, 2, id) || tl_db_step(st) != TL_DB_ROW) {
        ret = db_fail(s, op, err);
        goto out;
    }
    in_use = tl_db_column_int64(st, 0);
    fin(&st);
    if (in_use > 0) {
        ret = tl_err_set(err, EBUSY, 409, "agent_in_use", "",
                         "This agent answers %lld phone number%s; assign %s to another agent "
                         "or unassign %s first.",
                         (long long)in_use, in_use == 1 ? "" : "s", in_use == 1 ? "it" : "them",
                         in_use == 1 ? "it" : "them");
        goto out;
    }
    ret = exec_args(s, op, "DELETE FROM agents WHERE workspace_id = ?1 AND id = ?2",
                    (const char *[]){workspace_id, id}, 2, err);
    if (ret == 0)
        ret = tx_commit(s, op, err);
out:
    tx_end(s, st);
    if (ret == 0)
        notify(s, TL_CHANGE_AGENT_DELETED, workspace_id, id, NULL);
    return ret;
}

int tl_store_agent_list(struct tl_store *s, const char *workspace_id, const struct tl_page *pg,
                        tl_agent_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                        struct tl_err *err)
{
    struct tl_agent *items;
    size_t n;
    int ret = list_page(s, "agent_list",
                        "SELECT " AG_COLS " FROM agents WHERE workspace_id = ?1 AND seq > ?2 "
                        "ORDER BY seq LIMIT ?3",
                        &workspace_id, 1, pg, sizeof *items, ag_row, (void **)&items, &n,
                        next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

/* ---- phone numbers ---- */

/* a stored number with its sealed passwords, for replace and the call path */
struct pn_stored {
    struct tl_phone_number n;
    struct sealed out_pw, in_pw;
};

/* ws NULL: by E.164 across all workspaces (the call path); else by id in ws */
static int pn_read(struct tl_store *s, const char *op, const char *ws, const char *key,
                   struct pn_stored *out, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {ws, key}; /* by number, ?1 is bound but unused */
    int64_t seq;
    int ret = row_one(s, op,
                      ws ? "SELECT " PN_COLS ", outbound_password, inbound_password "
                           "FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2"
                         : "SELECT " PN_COLS ", outbound_password, inbound_password "
                           "FROM phone_numbers WHERE number = ?2",
                      args, 2, &st, err);
    if (ret == ENOENT)
        ret = not_found(err, "phone number");
    if (ret == 0)
        ret = pn_row(st, &out->n, &seq, err);
    if (ret == 0 && (col_sealed(st, PN_COL_OUT_PW, &out->out_pw) != 0 ||
                     col_sealed(st, PN_COL_IN_PW, &out->in_pw) != 0))
        ret = corrupt(op, out->n.id, "sealed password", err);
    tl_db_finalize(st);
    return ret;
}

static int pn_read_public(struct tl_store *s, const char *op, const char *ws, const char *id,
                          struct tl_phone_number *out, struct tl_err *err)
{
    struct pn_stored *p = malloc(sizeof *p);
    if (!p)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    int ret = pn_read(s, op, ws, id, p, err);
    if (ret == 0)
        memcpy(out, &p->n, sizeof *out);
    free(p);
    return ret;
}

/* The password of a trunk after a write (store.h): a given password replaces the stored
 * one; without one, the stored one stays only for the same username, because a password
 * kept across a username change would authenticate as someone it was never set for. */
static int trunk_password(struct tl_store *s, const char *row_id, const char *ad_field,
                          const char *prefix, bool given, const char *password, const char *user,
                          const char *old_user, const struct sealed *old, struct sealed *out,
                          struct tl_err *err)
{
    char field[64];

    memset(out, 0, sizeof *out);
    if (given) {
        if (!password[0])
            return 0;
        snprintf(field, sizeof field, "%s.password", prefix);
        if (seal_password(s, row_id, ad_field, password, out) != 0)
            return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                              "The password must be at most %d bytes.", TL_PASSWORD_MAX);
        return 0;
    }
    if (old && strcmp(user, old_user) == 0) {
        *out = *old;
        return 0;
    }
    if (user[0]) {
        snprintf(field, sizeof field, "%s.password", prefix);
        return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                          "A password is required when the username changes.");
    }
    return 0;
}

static int trunk_json_err(int ret, const char *prefix, struct tl_err *err)
{
    if (ret == ENOMEM)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    return tl_err_set(err, EINVAL, 400, "invalid_field", prefix, "Text must be valid UTF-8.");
}

/* the trunk columns of a number write */
struct pn_trunks {
    struct sealed out_pw, in_pw;
    char *out_json, *in_json; /* in_json NULL: no inbound trunk */
};

/* Fills c from n (both passwords per trunk_password, then both JSON texts). old: the
 * stored number on replace, NULL on create, where there is no password to keep and the
 * codec has already required a password with a username. Free c with pn_trunks_free. */
static int pn_trunks_make(struct tl_store *s, const struct tl_phone_number *n,
                          const struct pn_stored *old, struct pn_trunks *c, struct tl_warnings *w,
                          struct tl_err *err)
{
    /* an inbound trunk new with this request has no stored password to keep */
    bool had_in = old && old->n.has_inbound;
    /* A stored password never follows a change of destination: whoever may edit the number
     * must not be able to send the trunk's digest to a host of their choosing (the same
     * rule as agent header values, tl_store_agent_update). It stays only when the request
     * gives it again. */
    bool moved = old && strcasecmp(old->n.outbound.address, n->outbound.address) != 0;
    int ret;

    memset(c, 0, sizeof *c);
    /* (a changed username needs a password anyway: trunk_password says so) */
    if (moved && !n->outbound.password_given && old->out_pw.present &&
        !strcmp(n->outbound.username, old->n.outbound.username)) {
        tl_warn(w, "password_dropped", "outbound_trunk.password",
                "The stored password was not kept: outbound_trunk.address changed from %s to %s, "
                "and a stored password never follows a change of destination. Send the "
                "password again (outbound_trunk.password) with the new address.",
                old->n.outbound.address, n->outbound.address);
        ret = 0;
    } else {
        ret = trunk_password(s, n->id, "outbound_password", "outbound_trunk",
                             n->outbound.password_given, n->outbound.password,
                             old ? n->outbound.username : "", old ? old->n.outbound.username : "",
                             old ? &old->out_pw : NULL, &c->out_pw, err);
    }
    if (ret == 0 && n->has_inbound)
        ret = trunk_password(s, n->id, "inbound_password", "inbound_trunk",
                             n->inbound.password_given, n->inbound.password,
                             old ? n->inbound.username : "", had_in ? old->n.inbound.username : "",
                             had_in ? &old->in_pw : NULL, &c->in_pw, err);
    if (ret != 0)
        return ret;
    ret = outbound_to_json(&n->outbound, &c->out_json);
    if (ret != 0)
        return trunk_json_err(ret, "outbound_trunk", err);
    if (n->has_inbound) {
        ret = inbound_to_json(&n->inbound, &c->in_json);
        if (ret != 0)
            return trunk_json_err(ret, "inbound_trunk", err);
    }
    return 0;
}

/* outbound_json, outbound_password, inbound_json, inbound_password at first..first+3 */
static int pn_trunks_bind(struct tl_db_stmt *st, int first, const struct pn_trunks *c)
{
    return bind_str(st, first, c->out_json) ||
           bind_blob(st, first + 1, c->out_pw.buf, c->out_pw.len, c->out_pw.present) ||
           bind_opt(st, first + 2, c->in_json) ||
           bind_blob(st, first + 3, c->in_pw.buf, c->in_pw.len, c->in_pw.present);
}

static void pn_trunks_free(struct pn_trunks *c)
{
    free(c->out_json);
    free(c->in_json);
}

/* deliberately silent about which workspace holds it */
static int number_taken(struct tl_err *err, const char *number)
{
    return tl_err_set(err, EEXIST, 409, "number_taken", "number",
                      "The number %s is already imported in this system; a number can "
                      "belong to one workspace only.",
                      number);
}

int tl_store_number_create(struct tl_store *s, struct tl_phone_number *n, struct tl_err *err)
{
    static const char op[] = "number_create";
    struct tl_db_stmt *st = NULL;
    struct pn_trunks c = {0};
    enum tl_plan plan;
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = ws_plan(s, op, n->workspace_id, &plan, err);
    if (ret != 0)
        goto out;
    if (n->source == TL_SOURCE_SIP_TRUNK && !tl_plan_allows_sip_import(plan)) {
        ret = tl_err_set(err, EPERM, 403, "plan_required", "",
                         "Importing SIP trunk numbers needs the professional plan or higher; "
                         "this workspace is on %s.",
                         opt_name(tl_plan_name(plan)));
        goto out;
    }
    const char *number = n->number;
    ret = row_one(s, op, "SELECT 1 FROM phone_numbers WHERE number = ?1", &number, 1, &st, err);
    if (ret == 0)
        ret = number_taken(err, n->number);
    else if (ret == ENOENT)
        ret = 0;
    if (ret != 0)
        goto out;
    fin(&st);
    if (n->agent_id[0]) {
        ret = check_agent(s, op, n->workspace_id, n->agent_id, err);
        if (ret != 0)
            goto out;
    }

    tl_id_new(n->id, "pn");
    n->created_at = n->updated_at = tl_now_ms();
    ret = pn_trunks_make(s, n, NULL, &c, NULL, err);
    if (ret != 0)
        goto out;

    ret = prep(s, op,
               "INSERT INTO phone_numbers (id, workspace_id, number, label, source, agent_id, "
               "outbound_json, outbound_password, inbound_json, inbound_password, created_at, "
               "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
               &st, err);
    if (ret != 0)
        goto out;
    if (bind_str(st, 1, n->id) || bind_str(st, 2, n->workspace_id) || bind_str(st, 3, n->number) ||
        bind_str(st, 4, n->label) || bind_str(st, 5, opt_name(tl_source_name(n->source))) ||
        bind_opt(st, 6, n->agent_id) || pn_trunks_bind(st, 7, &c) ||
        tl_db_bind_int64(st, 11, n->created_at)) {
        ret = db_fail(s, op, err);
        goto out;
    }
    int rc = tl_db_step(st);
    if (rc == TL_DB_E_UNIQUE) {
        ret = number_taken(err, n->number);
        goto out;
    }
    if (rc != TL_DB_DONE) {
        ret = db_fail(s, op, err);
        goto out;
    }
    fin(&st);
    ret = tx_commit(s, op, err);
    /* hand back what was stored: has_password set, plain passwords gone from memory */
    if (ret == 0)
        ret = pn_read_public(s, op, n->workspace_id, n->id, n, err);
out:
    tx_end(s, st);
    pn_trunks_free(&c);
    if (ret == 0)
        notify(s, TL_CHANGE_NUMBER_CREATED, n->workspace_id, n->id, n->number);
    return ret;
}

int tl_store_number_get(struct tl_store *s, const char *workspace_id, const char *id,
                        struct tl_phone_number *out)
{
    lock(s);
    int ret = pn_read_public(s, "number_get", workspace_id, id, out, NULL);
    unlock(s);
    return ret;
}

int tl_store_number_replace(struct tl_store *s, struct tl_phone_number *n, struct tl_warnings *w,
                            struct tl_err *err)
{
    static const char op[] = "number_replace";
    struct tl_db_stmt *st = NULL;
    struct pn_stored *old = NULL;
    struct pn_trunks c = {0};
    int ret;

    old = malloc(sizeof *old);
    if (!old)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = pn_read(s, op, n->workspace_id, n->id, old, err);
    if (ret != 0)
        goto out;
    if (n->agent_id[0]) {
        ret = check_agent(s, op, n->workspace_id, n->agent_id, err);
        if (ret != 0)
            goto out;
    }
    ret = pn_trunks_make(s, n, old, &c, w, err);
    if (ret != 0)
        goto out;
    n->updated_at = tl_now_ms();
    /* number and source are identity, not configuration: never changed here */
    ret = prep(s, op,
               "UPDATE phone_numbers SET label = ?1, agent_id = ?2, outbound_json = ?3, "
               "outbound_password = ?4, inbound_json = ?5, inbound_password = ?6, "
               "updated_at = ?7 WHERE workspace_id = ?8 AND id = ?9",
               &st, err);
    if (ret != 0)
        goto out;
    ret = step_fin(s, op, &st,
                   bind_str(st, 1, n->label) || bind_opt(st, 2, n->agent_id) ||
                       pn_trunks_bind(st, 3, &c) || tl_db_bind_int64(st, 7, n->updated_at) ||
                       bind_str(st, 8, n->workspace_id) || bind_str(st, 9, n->id),
                   err);
    if (ret != 0)
        goto out;
    ret = tx_commit(s, op, err);
    if (ret == 0)
        ret = pn_read_public(s, op, n->workspace_id, n->id, n, err);
out:
    tx_end(s, st);
    pn_trunks_free(&c);
    free(old);
    if (ret == 0)
        notify(s, TL_CHANGE_NUMBER_REPLACED, n->workspace_id, n->id, n->number);
    return ret;
}

int tl_store_number_set_agent(struct tl_store *s, const char *workspace_id, const char *id,
                              const char *agent_id, struct tl_phone_number *out, struct tl_err *err)
{
    static const char op[] = "number_set_agent";
    struct tl_db_stmt *st = NULL;
    char number[TL_E164_MAX + 1] = "";
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    if (agent_id && agent_id[0]) {
        ret = check_agent(s, op, workspace_id, agent_id, err);
        if (ret != 0)
            goto out;
    }
    ret = prep(s, op,
               "UPDATE phone_numbers SET agent_id = ?1, updated_at = ?2 "
               "WHERE workspace_id = ?3 AND id = ?4",
               &st, err);
    if (ret != 0)
        goto out;
    ret = step_fin(s, op, &st,
                   bind_opt(st, 1, agent_id) || tl_db_bind_int64(st, 2, tl_now_ms()) ||
                       bind_str(st, 3, workspace_id) || bind_str(st, 4, id),
                   err);
    if (ret != 0)
        goto out;
    if (tl_db_changes(s->db) == 0) {
        ret = not_found(err, "phone number");
        goto out;
    }
    /* the E.164 for the change hook (the routing cache is keyed by it) */
    ret = row_one(s, op, "SELECT number FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2",
                  (const char *[]){workspace_id, id}, 2, &st, err);
    if (ret == ENOENT)
        ret = not_found(err, "phone number");
    if (ret != 0)
        goto out;
    col_text(st, 0, number, sizeof number);
    fin(&st);
    ret = tx_commit(s, op, err);
    if (ret == 0 && out)
        ret = pn_read_public(s, op, workspace_id, id, out, err);
out:
    tx_end(s, st);
    if (ret == 0)
        notify(s, TL_CHANGE_NUMBER_ASSIGNED, workspace_id, id, number);
    return ret;
}

/* delete and release both remove the row; they differ in which source they accept,
 * because releasing a platform number also ends its billing upstream */
static int number_remove(struct tl_store *s, const char *op, const char *workspace_id,
                         const char *id, enum tl_number_source allowed, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {workspace_id, id};
    char number[TL_E164_MAX + 1] = "";
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = row_one(s, op,
                  "SELECT source, number FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2",
                  args, 2, &st, err);
    if (ret == ENOENT)
        ret = not_found(err, "phone number");
    if (ret != 0)
        goto out;
    int src = tl_source_parse(col_str(st, 0));
    col_text(st, 1, number, sizeof number);
    fin(&st);
    if (src < 0) {
        ret = corrupt(op, id, "source", err);
        goto out;
    }
    if ((enum tl_number_source)src != allowed) {
        if (allowed == TL_SOURCE_PLATFORM)
            ret = tl_err_set(err, EINVAL, 409, "release_not_supported", "",
                             "Release is for numbers bought from the platform; an imported SIP "
                             "number is deleted instead (DELETE /v1/phone-numbers/{id}).");
        else
            ret = tl_err_set(err, EINVAL, 409, "delete_not_supported", "",
                             "Delete is for imported SIP numbers; a number bought from the "
                             "platform is released instead, which also stops its billing.");
        goto out;
    }
    ret = exec_args(s, op, "DELETE FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2", args, 2,
                    err);
    if (ret == 0)
        ret = tx_commit(s, op, err);
out:
    tx_end(s, st);
    if (ret == 0)
        notify(s,
               allowed == TL_SOURCE_PLATFORM ? TL_CHANGE_NUMBER_RELEASED : TL_CHANGE_NUMBER_DELETED,
               workspace_id, id, number);
    return ret;
}

int tl_store_number_delete(struct tl_store *s, const char *workspace_id, const char *id,
                           struct tl_err *err)
{
    return number_remove(s, "number_delete", workspace_id, id, TL_SOURCE_SIP_TRUNK, err);
}

int tl_store_number_release(struct tl_store *s, const char *workspace_id, const char *id,
                            struct tl_err *err)
{
    return number_remove(s, "number_release", workspace_id, id, TL_SOURCE_PLATFORM, err);
}

int tl_store_number_secrets(struct tl_store *s, const char *number_e164,
                            struct tl_phone_number *out)
{
    static const char op[] = "number_secrets";
    struct pn_stored *p = malloc(sizeof *p);
    int ret;

    if (!p)
        return ENOMEM;
    lock(s);
    ret = pn_read(s, op, NULL, number_e164, p, NULL);
    if (ret == 0 &&
        (open_password(s, p->n.id, "outbound_password", &p->out_pw, p->n.outbound.password) ||
         (p->n.has_inbound &&
          open_password(s, p->n.id, "inbound_password", &p->in_pw, p->n.inbound.password)))) {
        /* wrong master key or a tampered row: never fall back to "no password" */
        ret = corrupt(op, p->n.id, "password does not open", NULL);
    }
    unlock(s);
    if (ret == 0)
        memcpy(out, &p->n, sizeof *out);
    sodium_memzero(p, sizeof *p);
    free(p);
    return ret;
}

/* The filters of a number list: ?1 workspace, ?2 agent ("" = unassigned), ?3 exact number,
 * ?4 a search text found in the number or (ASCII case-insensitively) in the label; ?5 the
 * cursor and ?6 the page size + 1 (list_page). A search reads the workspace's rows through
 * its index and compares text: well under a millisecond a thousand numbers. */
#define PN_LIST_WHERE                                                                              \
    "workspace_id = ?1 AND (?2 IS NULL OR (?2 = '' AND agent_id IS NULL) OR agent_id = ?2) "       \
    "AND (?3 IS NULL OR number = ?3) "                                                             \
    "AND (?4 IS NULL OR instr(number, ?4) > 0 OR instr(lower(label), lower(?4)) > 0) "             \
    "AND seq > ?5 ORDER BY seq LIMIT ?6"

int tl_store_number_list(struct tl_store *s, const char *workspace_id,
                         const struct tl_number_filter *f, const struct tl_page *pg,
                         tl_number_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                         struct tl_err *err)
{
    struct tl_phone_number *items;
    size_t n;
    const char *args[] = {workspace_id, f ? f->agent_id : NULL, f ? f->number : NULL,
                          f && f->q && *f->q ? f->q : NULL};
    int ret =
        list_page(s, "number_list", "SELECT " PN_COLS " FROM phone_numbers WHERE " PN_LIST_WHERE,
                  args, 4, pg, sizeof *items, pn_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

struct pn_latest {
    struct tl_phone_number n;
    struct tl_event_brief ev;
};

static int pn_latest_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct pn_latest *p = out;
    int ret = pn_row(st, &p->n, seq, err);
    memset(&p->ev, 0, sizeof p->ev);
    if (ret == 0 && !tl_db_column_is_null(st, 14)) {
        col_text(st, 14, p->ev.id, sizeof p->ev.id);
        col_text(st, 15, p->ev.code, sizeof p->ev.code);
        col_text(st, 16, p->ev.message, sizeof p->ev.message);
        p->ev.created_at = tl_db_column_int64(st, 17);
    }
    return ret;
}

int tl_store_number_list_latest(struct tl_store *s, const char *workspace_id,
                                const struct tl_number_filter *f, const struct tl_page *pg,
                                tl_number_latest_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                                struct tl_err *err)
{
    struct pn_latest *items;
    size_t n;
    const char *args[] = {workspace_id, f ? f->agent_id : NULL, f ? f->number : NULL,
                          f && f->q && *f->q ? f->q : NULL};
    /* the page first, then for each of its rows the newest event's seq (events_number:
     * (number_id, seq), one index probe) and that row by its rowid: one statement, no
     * query per number */
    int ret =
        list_page(s, "number_list_latest",
                  "SELECT p.*, e.id, e.code, e.message, e.created_at FROM (SELECT " PN_COLS
                  ", (SELECT max(seq) FROM events WHERE number_id = phone_numbers.id) AS ev_seq "
                  "FROM phone_numbers WHERE " PN_LIST_WHERE ") AS p "
                  "LEFT JOIN events AS e ON e.seq = p.ev_seq ORDER BY p.seq",
                  args, 4, pg, sizeof *items, pn_latest_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i].n, items[i].ev.id[0] ? &items[i].ev : NULL, arg);
    free(items);
    return ret;
}

/* ---- change hook ---- */

void tl_store_set_change_hook(struct tl_store *s, tl_store_change_fn fn, void *arg)
{
    lock(s);
    s->change_fn = fn;
    s->change_arg = fn ? arg : NULL;
    unlock(s);
}

int tl_store_number_secrets_each(struct tl_store *s, tl_number_cb cb, void *arg)
{
    static const char op[] = "number_secrets_each";
    struct tl_db_stmt *st = NULL;
    char(*nums)[TL_E164_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    int ret;

    /* the numbers first, then one locked read each: the lock is never held across cb */
    lock(s);
    ret = prep(s, op, "SELECT number FROM phone_numbers ORDER BY seq", &st, NULL);
    while (ret == 0) {
        int rc = tl_db_step(st);
        if (rc == TL_DB_DONE)
            break;
        if (rc != TL_DB_ROW) {
            ret = db_fail(s, op, NULL);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            void *p = realloc(nums, nc * sizeof *nums);
            if (!p) {
                ret = ENOMEM;
                break;
            }
            nums = p;
            cap = nc;
        }
        col_text(st, 0, nums[n++], sizeof nums[0]);
    }
    tl_db_finalize(st);
    unlock(s);

    struct tl_phone_number *pn = ret == 0 ? malloc(sizeof *pn) : NULL;
    if (ret == 0 && !pn)
        ret = ENOMEM;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        int rc = tl_store_number_secrets(s, nums[i], pn);
        if (rc == ENOENT)
            continue; /* deleted meanwhile: the change hook has seen to it */
        ret = rc ? rc : cb(pn, arg);
        sodium_memzero(pn, sizeof *pn);
    }
    free(pn);
    free(nums);
    return ret;
}

/* ---- call records and events ---- */

const char *tl_call_direction_name(enum tl_call_direction d)
{
    return d == TL_CALL_OUTBOUND ? "outbound" : "inbound";
}

static const char *const call_status_names[] = {
    [TL_CALL_QUEUED] = "queued",       [TL_CALL_DIALING] = "dialing",
    [TL_CALL_RINGING] = "ringing",     [TL_CALL_IN_PROGRESS] = "in_progress",
    [TL_CALL_COMPLETED] = "completed", [TL_CALL_BUSY] = "busy",
    [TL_CALL_NO_ANSWER] = "no_answer", [TL_CALL_FAILED] = "failed",
    [TL_CALL_CANCELED] = "canceled",
};

const char *tl_call_status_name(enum tl_call_status st)
{
    return (size_t)st < sizeof call_status_names / sizeof call_status_names[0]
               ? call_status_names[st]
               : "failed";
}

int tl_call_status_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof call_status_names / sizeof call_status_names[0]; i++)
        if (!strcmp(s, call_status_names[i]))
            return (int)i;
    return -1;
}

bool tl_call_status_final(enum tl_call_status st)
{
    return st >= TL_CALL_COMPLETED;
}

static int64_t clamp_u64(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int bind_time(struct tl_db_stmt *st, int i, int64_t ms)
{
    return ms ? tl_db_bind_int64(st, i, ms) : tl_db_bind_null(st, i);
}

static int call_bind(struct tl_db_stmt *st, const struct tl_call_record *c)
{
    return bind_str(st, 1, c->id) || bind_str(st, 2, c->workspace_id) ||
           bind_opt(st, 3, c->number_id) || bind_str(st, 4, c->number) ||
           bind_opt(st, 5, c->agent_id) || bind_str(st, 6, tl_call_direction_name(c->direction)) ||
           bind_str(st, 7, c->from_uri) || bind_str(st, 8, c->from_user) ||
           bind_str(st, 9, c->to_user) || bind_str(st, 10, c->sip_call_id) ||
           tl_db_bind_int64(st, 11, c->created_at) || bind_time(st, 12, c->answered_at) ||
           bind_time(st, 13, c->ended_at) || bind_str(st, 14, c->end_reason) ||
           tl_db_bind_int64(st, 15, c->final_status) || bind_str(st, 16, c->codec) ||
           bind_str(st, 17, c->srtp ? "srtp" : "rtp") ||
           tl_db_bind_int64(st, 18, clamp_u64(c->packets_sent)) ||
           tl_db_bind_int64(st, 19, clamp_u64(c->packets_received)) ||
           tl_db_bind_int64(st, 20, clamp_u64(c->packets_lost)) ||
           tl_db_bind_double(st, 21, c->jitter_ms) ||
           tl_db_bind_int64(st, 22, clamp_u64(c->dropped_source)) ||
           tl_db_bind_int64(st, 23, clamp_u64(c->dropped_auth)) ||
           tl_db_bind_int64(st, 24, clamp_u64(c->dropped_malformed)) ||
           tl_db_bind_int64(st, 25, clamp_u64(c->dropped_pt)) ||
           tl_db_bind_int64(st, 26, clamp_u64(c->dropped_early)) ||
           tl_db_bind_int64(st, 27, clamp_u64(c->audio_dropped_bytes)) ||
           bind_str(st, 28, tl_call_status_name(c->status)) || bind_str(st, 29, c->sip_reason) ||
           bind_str(st, 30, c->hint);
}

static int event_bind(struct tl_db_stmt *st, const struct tl_event *e)
{
    return bind_str(st, 1, e->id) || bind_opt(st, 2, e->workspace_id) ||
           bind_opt(st, 3, e->number_id) || bind_str(st, 4, e->code) ||
           bind_str(st, 5, e->message) || bind_str(st, 6, e->hint) ||
           bind_str(st, 7, e->details[0] ? e->details : "{}") ||
           tl_db_bind_int64(st, 8, e->created_at);
}

/* ---- webhook deliveries of call status changes ---- */

/* the event names of a status change, in order (at most 3: a new record that is at once
 * ringing and … cannot be; a refused inbound call is initiated and failed) */
static size_t call_events(bool is_new, int prev, enum tl_call_status st, const char *out[3])
{
    size_t n = 0;
    if (is_new)
        out[n++] = "call.initiated";
    if (st == TL_CALL_RINGING && prev != (int)TL_CALL_RINGING)
        out[n++] = "call.ringing";
    if (st == TL_CALL_IN_PROGRESS && prev != (int)TL_CALL_IN_PROGRESS)
        out[n++] = "call.answered";
    if (tl_call_status_final(st) && !(prev >= 0 && tl_call_status_final((enum tl_call_status)prev)))
        out[n++] = st == TL_CALL_COMPLETED ? "call.completed" : "call.failed";
    return n;
}

static json_t *json_time(int64_t ms)
{
    char b[32];
    if (!ms)
        return json_null();
    tl_time_iso(ms, b);
    return json_string(b);
}

static json_t *json_text(const char *s) /* "" reads as null, as the API's call object does */
{
    return s && s[0] ? json_string(s) : json_null();
}

/* {"id","object":"event","type","created_at","data":{the call}}: what the workspace's
 * webhook receives (docs/api.md "Webhooks"); the texts are UTF-8 (the recorder repaired
 * them) */
static char *call_event_body(const struct tl_call_record *c, const char *type, const char *id,
                             int64_t at)
{
    json_t *d = json_object(), *o = json_object();
    bool bad = !d || !o;
    bad = bad || json_put(d, "id", json_string(c->id)) ||
          json_put(d, "object", json_string("call")) ||
          json_put(d, "workspace_id", json_string(c->workspace_id)) ||
          json_put(d, "direction", json_string(tl_call_direction_name(c->direction))) ||
          json_put(d, "status", json_string(tl_call_status_name(c->status))) ||
          json_put(d, "number_id", json_text(c->number_id)) ||
          json_put(d, "number", json_string(c->number)) ||
          json_put(d, "agent_id", json_text(c->agent_id)) ||
          json_put(d, "from", json_string(c->from_user[0] ? c->from_user : c->from_uri)) ||
          json_put(d, "to", json_string(c->to_user)) ||
          json_put(d, "sip_call_id", json_string(c->sip_call_id)) ||
          json_put(d, "created_at", json_time(c->created_at)) ||
          json_put(d, "answered_at", json_time(c->answered_at)) ||
          json_put(d, "ended_at", json_time(c->ended_at)) ||
          json_put(d, "end_reason", json_text(c->end_reason)) ||
          json_put(d, "final_status",
                   c->final_status ? json_integer(c->final_status) : json_null()) ||
          json_put(d, "sip_reason", json_text(c->sip_reason)) ||
          json_put(d, "hint", json_text(c->hint)) || json_put(o, "id", json_string(id)) ||
          json_put(o, "object", json_string("event")) || json_put(o, "type", json_string(type)) ||
          json_put(o, "created_at", json_time(at)) || json_put(o, "data", json_incref(d));
    char *txt = bad ? NULL : json_dumps(o, JSON_COMPACT);
    json_decref(d);
    json_decref(o);
    if (txt && strlen(txt) > TL_WEBHOOK_BODY_MAX) {
        free(txt); /* the caps of every member keep it far below; never cut JSON */
        txt = NULL;
    }
    return txt;
}

/* Before the upsert of c: queue the deliveries its status change causes, when its workspace
 * has a webhook. The statements are the batch's (prepared once). */
static int call_deliveries(struct tl_store *s, struct tl_db_stmt *hst, struct tl_db_stmt *pst,
                           struct tl_db_stmt *dst, const struct tl_call_record *c, size_t *queued,
                           struct tl_err *err)
{
    static const char op[] = "records_write";
    tl_db_reset(hst);
    if (bind_str(hst, 1, c->workspace_id))
        return db_fail(s, op, err);
    int rc = tl_db_step(hst);
    if (rc == TL_DB_DONE)
        return 0; /* no webhook */
    if (rc != TL_DB_ROW)
        return db_fail(s, op, err);
    tl_db_reset(pst);
    if (bind_str(pst, 1, c->id))
        return db_fail(s, op, err);
    rc = tl_db_step(pst);
    if (rc != TL_DB_ROW && rc != TL_DB_DONE)
        return db_fail(s, op, err);
    bool is_new = rc == TL_DB_DONE;
    int prev = is_new ? -1 : tl_call_status_parse(col_str(pst, 0));
    const char *ev[3];
    size_t n = call_events(is_new, prev, c->status, ev);
    int64_t now = tl_now_ms();
    for (size_t i = 0; i < n; i++) {
        char id[TL_ID_MAX];
        tl_id_new(id, "wd");
        char *body = call_event_body(c, ev[i], id, now);
        if (!body) {
            tl_error("store", "webhook.body_failed", "call=%s", c->id);
            continue;
        }
        tl_db_reset(dst);
        int ret = bind_str(dst, 1, id) || bind_str(dst, 2, c->workspace_id) ||
                          bind_str(dst, 3, ev[i]) || bind_str(dst, 4, body) ||
                          tl_db_bind_int64(dst, 5, now)
                      ? db_fail(s, op, err)
                      : step_done(s, op, dst, err);
        free(body);
        if (ret)
            return ret;
        (*queued)++;
    }
    return 0;
}

int tl_store_records_write(struct tl_store *s, const struct tl_record_ref *v, size_t n,
                           struct tl_err *err)
{
    return tl_store_records_write_hooks(s, v, n, NULL, err);
}

int tl_store_records_write_hooks(struct tl_store *s, const struct tl_record_ref *v, size_t n,
                                 size_t *deliveries, struct tl_err *err)
{
    static const char op[] = "records_write";
    struct tl_db_stmt *cst = NULL, *est = NULL, *hst = NULL, *pst = NULL, *dst = NULL;
    size_t queued = 0;
    int ret;

    lock(s);
    ret = tx_begin(s, op, err);
    /* a call is written at its start and again at its end: identity columns stay (an
     * outbound call's SIP Call-ID is filled in once its INVITE exists), the
     * rest takes the newer values */
    if (ret == 0)
        ret = prep(s, op,
                   "INSERT INTO calls (id, workspace_id, number_id, number, agent_id, direction, "
                   "from_uri, from_user, to_user, sip_call_id, created_at, answered_at, ended_at, "
                   "end_reason, final_status, codec, media_encryption, packets_sent, "
                   "packets_received, packets_lost, jitter_ms, rtp_dropped_source, "
                   "rtp_dropped_auth, rtp_dropped_malformed, rtp_dropped_pt, rtp_dropped_early, "
                   "audio_dropped_bytes, status, sip_reason, hint) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                   "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) "
                   "ON CONFLICT(id) DO UPDATE SET agent_id = excluded.agent_id, "
                   "answered_at = excluded.answered_at, ended_at = excluded.ended_at, "
                   "end_reason = excluded.end_reason, final_status = excluded.final_status, "
                   "codec = excluded.codec, media_encryption = excluded.media_encryption, "
                   "packets_sent = excluded.packets_sent, "
                   "packets_received = excluded.packets_received, "
                   "packets_lost = excluded.packets_lost, jitter_ms = excluded.jitter_ms, "
                   "rtp_dropped_source = excluded.rtp_dropped_source, "
                   "rtp_dropped_auth = excluded.rtp_dropped_auth, "
                   "rtp_dropped_malformed = excluded.rtp_dropped_malformed, "
                   "rtp_dropped_pt = excluded.rtp_dropped_pt, "
                   "rtp_dropped_early = excluded.rtp_dropped_early, "
                   "audio_dropped_bytes = excluded.audio_dropped_bytes, "
                   "status = excluded.status, sip_reason = excluded.sip_reason, "
                   "hint = excluded.hint, sip_call_id = CASE WHEN calls.sip_call_id = '' "
                   "THEN excluded.sip_call_id ELSE calls.sip_call_id END",
                   &cst, err);
    if (ret == 0)
        ret = prep(s, op,
                   "INSERT INTO events (id, workspace_id, number_id, code, message, hint, "
                   "details_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                   &est, err);
    bool hooks = s->version >= 6; /* a database opened at an older version has no table */
    if (ret == 0 && hooks)
        ret = prep(s, op, "SELECT 1 FROM webhooks WHERE workspace_id = ?1", &hst, err);
    if (ret == 0 && hooks)
        ret = prep(s, op, "SELECT status FROM calls WHERE id = ?1", &pst, err);
    if (ret == 0 && hooks)
        ret = prep(s, op,
                   "INSERT INTO webhook_deliveries (id, workspace_id, event, body, next_at, "
                   "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                   &dst, err);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        struct tl_db_stmt *st = v[i].call ? cst : est;
        if (v[i].call && hooks)
            ret = call_deliveries(s, hst, pst, dst, v[i].call, &queued, err);
        if (ret)
            break;
        tl_db_reset(st);
        if (v[i].call ? call_bind(st, v[i].call) : event_bind(st, v[i].event))
            ret = db_fail(s, op, err);
        else
            ret = step_done(s, op, st, err);
    }
    tl_db_finalize(cst);
    tl_db_finalize(est);
    tl_db_finalize(hst);
    tl_db_finalize(pst);
    tl_db_finalize(dst);
    if (ret == 0)
        ret = tx_commit(s, op, err);
    tx_rollback(s);
    unlock(s);
    if (deliveries)
        *deliveries = ret == 0 ? queued : 0;
    return ret;
}

int tl_store_calls_close_open(struct tl_store *s, const char *end_reason, int64_t now_ms,
                              int64_t *closed, struct tl_err *err)
{
    static const char op[] = "calls_close_open";
    struct tl_db_stmt *st = NULL;
    *closed = 0;
    lock(s);
    /* one statement: a full scan of calls once per start, no index to keep for it */
    int ret = prep(s, op,
                   "UPDATE calls SET ended_at = CASE WHEN ?1 >= created_at AND ?1 >= "
                   "coalesce(answered_at, 0) THEN ?1 WHEN created_at >= coalesce(answered_at, 0) "
                   "THEN created_at ELSE answered_at END, "
                   "end_reason = ?2, status = CASE WHEN answered_at IS NULL THEN 'failed' "
                   "ELSE 'completed' END WHERE ended_at IS NULL",
                   &st, err);
    if (ret == 0 && (tl_db_bind_int64(st, 1, now_ms) || bind_str(st, 2, end_reason)))
        ret = db_fail(s, op, err);
    if (ret == 0)
        ret = step_done(s, op, st, err);
    if (ret == 0)
        *closed = tl_db_changes(s->db);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

/* ---- webhooks ---- */

int tl_store_webhook_set(struct tl_store *s, const char *workspace_id, const char *url,
                         struct tl_webhook *out, char secret[TL_WEBHOOK_SECRET_LEN + 1],
                         struct tl_err *err)
{
    static const char op[] = "webhook_set";
    struct tl_db_stmt *st = NULL;
    struct sealed sl;
    uint8_t rnd[32];
    enum tl_plan plan;
    int ret;

    memcpy(secret, "whsec_", 6);
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2base64(secret + 6, TL_WEBHOOK_SECRET_LEN + 1 - 6, rnd, sizeof rnd,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(rnd, sizeof rnd);
    if (seal_password(s, workspace_id, "webhook_secret", secret, &sl)) {
        sodium_memzero(secret, TL_WEBHOOK_SECRET_LEN + 1);
        return tl_err_set(err, EIO, 500, "internal", "", "cannot seal the secret");
    }
    int64_t now = tl_now_ms();
    lock(s);
    ret = tx_begin(s, op, err);
    if (ret == 0)
        ret = ws_plan(s, op, workspace_id, &plan, err);
    if (ret == ENOENT)
        ret = not_found(err, "workspace");
    if (ret == 0)
        ret = prep(s, op,
                   "INSERT INTO webhooks (workspace_id, url, secret_sealed, created_at) VALUES "
                   "(?1, ?2, ?3, ?4) ON CONFLICT(workspace_id) DO UPDATE SET url = excluded.url, "
                   "secret_sealed = excluded.secret_sealed, created_at = excluded.created_at",
                   &st, err);
    if (ret == 0)
        ret = step_fin(s, op, &st,
                       bind_str(st, 1, workspace_id) || bind_str(st, 2, url) ||
                           bind_blob(st, 3, sl.buf, sl.len, true) || tl_db_bind_int64(st, 4, now),
                       err);
    if (ret == 0)
        ret = tx_commit(s, op, err);
    tx_end(s, st);
    sodium_memzero(&sl, sizeof sl);
    if (ret) {
        sodium_memzero(secret, TL_WEBHOOK_SECRET_LEN + 1);
        return ret;
    }
    return tl_store_webhook_get(s, workspace_id, out);
}

int tl_store_webhook_get(struct tl_store *s, const char *workspace_id, struct tl_webhook *out)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {workspace_id};
    memset(out, 0, sizeof *out);
    lock(s);
    int ret = row_one(s, "webhook_get",
                      "SELECT url, created_at, last_success_at, last_failure_at, last_error, "
                      "(SELECT count(*) FROM webhook_deliveries WHERE workspace_id = ?1) "
                      "FROM webhooks WHERE workspace_id = ?1",
                      args, 1, &st, NULL);
    if (ret == 0) {
        tl_strlcpy(out->workspace_id, workspace_id, sizeof out->workspace_id);
        col_text(st, 0, out->url, sizeof out->url);
        out->created_at = tl_db_column_int64(st, 1);
        out->last_success_at = tl_db_column_int64(st, 2);
        out->last_failure_at = tl_db_column_int64(st, 3);
        col_text(st, 4, out->last_error, sizeof out->last_error);
        out->pending = tl_db_column_int64(st, 5);
    }
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_webhook_delete(struct tl_store *s, const char *workspace_id)
{
    static const char op[] = "webhook_delete";
    struct tl_db_stmt *st = NULL;
    lock(s);
    int ret = tx_begin(s, op, NULL);
    if (ret == 0)
        ret = prep(s, op, "DELETE FROM webhooks WHERE workspace_id = ?1", &st, NULL);
    if (ret == 0)
        ret = step_fin(s, op, &st, bind_str(st, 1, workspace_id), NULL);
    if (ret == 0 && tl_db_changes(s->db) == 0)
        ret = ENOENT;
    if (ret == 0)
        ret = prep(s, op, "DELETE FROM webhook_deliveries WHERE workspace_id = ?1", &st, NULL);
    if (ret == 0)
        ret = step_fin(s, op, &st, bind_str(st, 1, workspace_id), NULL);
    if (ret == 0)
        ret = tx_commit(s, op, NULL);
    tx_end(s, st);
    return ret;
}

int tl_store_webhook_secret(struct tl_store *s, const char *workspace_id,
                            char url[TL_AGENT_URL_MAX + 1], char secret[TL_WEBHOOK_SECRET_LEN + 1])
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {workspace_id};
    struct sealed sl;
    char pw[TL_PASSWORD_MAX + 1];
    lock(s);
    int ret = row_one(s, "webhook_secret",
                      "SELECT url, secret_sealed FROM webhooks WHERE workspace_id = ?1", args, 1,
                      &st, NULL);
    if (ret == 0) {
        tl_strlcpy(url, col_str(st, 0), TL_AGENT_URL_MAX + 1);
        if (col_sealed(st, 1, &sl) || open_password(s, workspace_id, "webhook_secret", &sl, pw) ||
            strlen(pw) != TL_WEBHOOK_SECRET_LEN)
            ret = corrupt("webhook_secret", workspace_id, "secret_sealed", NULL);
        else
            memcpy(secret, pw, TL_WEBHOOK_SECRET_LEN + 1);
        sodium_memzero(pw, sizeof pw);
        sodium_memzero(&sl, sizeof sl);
    }
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_deliveries_due(struct tl_store *s, int64_t now_ms, struct tl_delivery *out, size_t cap,
                            size_t *n, int64_t *next_at)
{
    static const char op[] = "deliveries_due";
    struct tl_db_stmt *st = NULL;
    int rc, ret;
    *n = 0;
    *next_at = 0;
    lock(s);
    ret = prep(s, op,
               "SELECT id, workspace_id, event, body, attempts, created_at, next_at FROM "
               "webhook_deliveries ORDER BY next_at, seq LIMIT ?1",
               &st, NULL);
    if (ret == 0 && tl_db_bind_int64(st, 1, (int64_t)cap + 1))
        ret = db_fail(s, op, NULL);
    while (ret == 0 && (rc = tl_db_step(st)) == TL_DB_ROW) {
        int64_t at = tl_db_column_int64(st, 6);
        if (at > now_ms || *n == cap) {
            *next_at = at > now_ms ? at : now_ms;
            break;
        }
        struct tl_delivery *d = &out[(*n)++];
        memset(d, 0, sizeof *d);
        col_text(st, 0, d->id, sizeof d->id);
        col_text(st, 1, d->workspace_id, sizeof d->workspace_id);
        col_text(st, 2, d->event, sizeof d->event);
        col_text(st, 3, d->body, sizeof d->body);
        d->attempts = (uint32_t)tl_db_column_int64(st, 4);
        d->created_at = tl_db_column_int64(st, 5);
        d->next_at = at;
    }
    if (ret == 0 && rc != TL_DB_ROW && rc != TL_DB_DONE)
        ret = db_fail(s, op, NULL);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

/* a delivery's row: rescheduled (next_at > 0) or removed, and the webhook's last outcome */
static int delivery_update(struct tl_store *s, const struct tl_delivery *d, bool ok,
                           uint32_t attempts, int64_t next_at, const char *error, int64_t at)
{
    static const char op[] = "delivery_update";
    struct tl_db_stmt *st = NULL;
    lock(s);
    int ret = tx_begin(s, op, NULL);
    if (ret == 0 && next_at)
        ret = prep(s, op, "UPDATE webhook_deliveries SET attempts = ?2, next_at = ?3 WHERE id = ?1",
                   &st, NULL);
    else if (ret == 0)
        ret = prep(s, op, "DELETE FROM webhook_deliveries WHERE id = ?1", &st, NULL);
    if (ret == 0)
        ret = step_fin(s, op, &st,
                       bind_str(st, 1, d->id) || (next_at && (tl_db_bind_int64(st, 2, attempts) ||
                                                              tl_db_bind_int64(st, 3, next_at))),
                       NULL);
    if (ret == 0)
        ret = prep(s, op,
                   ok ? "UPDATE webhooks SET last_success_at = ?2 WHERE workspace_id = ?1"
                      : "UPDATE webhooks SET last_failure_at = ?2, last_error = ?3 WHERE "
                        "workspace_id = ?1",
                   &st, NULL);
    if (ret == 0)
        ret = step_fin(s, op, &st,
                       bind_str(st, 1, d->workspace_id) || tl_db_bind_int64(st, 2, at) ||
                           (!ok && bind_str(st, 3, error ? error : "")),
                       NULL);
    if (ret == 0)
        ret = tx_commit(s, op, NULL);
    tx_end(s, st);
    return ret;
}

int tl_store_delivery_done(struct tl_store *s, const struct tl_delivery *d, int64_t at)
{
    return delivery_update(s, d, true, 0, 0, NULL, at);
}

int tl_store_delivery_failed(struct tl_store *s, const struct tl_delivery *d, uint32_t attempts,
                             int64_t next_at, const char *error, int64_t at)
{
    char e[TL_WEBHOOK_ERROR_MAX + 1];
    tl_strlcpy(e, error ? error : "", sizeof e);
    return delivery_update(s, d, false, attempts, next_at, e, at);
}

#define CA_COLS                                                                                    \
    "seq, id, workspace_id, number_id, number, agent_id, direction, from_uri, from_user, "         \
    "to_user, sip_call_id, created_at, answered_at, ended_at, end_reason, final_status, codec, "   \
    "media_encryption, packets_sent, packets_received, packets_lost, jitter_ms, "                  \
    "rtp_dropped_source, rtp_dropped_auth, rtp_dropped_malformed, rtp_dropped_pt, "                \
    "rtp_dropped_early, audio_dropped_bytes, status, sip_reason, hint"

static uint64_t col_u64(struct tl_db_stmt *st, int i)
{
    int64_t v = tl_db_column_int64(st, i);
    return v < 0 ? 0 : (uint64_t)v;
}

static int ca_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_call_record *c = out;
    (void)err;
    memset(c, 0, sizeof *c);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, c->id, sizeof c->id);
    col_text(st, 2, c->workspace_id, sizeof c->workspace_id);
    col_text(st, 3, c->number_id, sizeof c->number_id);
    col_text(st, 4, c->number, sizeof c->number);
    col_text(st, 5, c->agent_id, sizeof c->agent_id);
    c->direction = strcmp(col_str(st, 6), "outbound") == 0 ? TL_CALL_OUTBOUND : TL_CALL_INBOUND;
    col_text(st, 7, c->from_uri, sizeof c->from_uri);
    col_text(st, 8, c->from_user, sizeof c->from_user);
    col_text(st, 9, c->to_user, sizeof c->to_user);
    col_text(st, 10, c->sip_call_id, sizeof c->sip_call_id);
    c->created_at = tl_db_column_int64(st, 11);
    c->answered_at = tl_db_column_int64(st, 12); /* NULL reads as 0 */
    c->ended_at = tl_db_column_int64(st, 13);
    col_text(st, 14, c->end_reason, sizeof c->end_reason);
    c->final_status = tl_db_column_int64(st, 15);
    col_text(st, 16, c->codec, sizeof c->codec);
    c->srtp = strcmp(col_str(st, 17), "srtp") == 0;
    c->packets_sent = col_u64(st, 18);
    c->packets_received = col_u64(st, 19);
    c->packets_lost = col_u64(st, 20);
    c->jitter_ms = tl_db_column_double(st, 21);
    c->dropped_source = col_u64(st, 22);
    c->dropped_auth = col_u64(st, 23);
    c->dropped_malformed = col_u64(st, 24);
    c->dropped_pt = col_u64(st, 25);
    c->dropped_early = col_u64(st, 26);
    c->audio_dropped_bytes = col_u64(st, 27);
    int cs = tl_call_status_parse(col_str(st, 28));
    c->status = cs < 0 ? TL_CALL_FAILED : (enum tl_call_status)cs;
    col_text(st, 29, c->sip_reason, sizeof c->sip_reason);
    col_text(st, 30, c->hint, sizeof c->hint);
    return 0;
}

#define EV_COLS "seq, id, workspace_id, number_id, code, message, hint, details_json, created_at"

static int ev_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_event *e = out;
    (void)err;
    memset(e, 0, sizeof *e);
    *seq = tl_db_column_int64(st, 0);
    col_text(st, 1, e->id, sizeof e->id);
    col_text(st, 2, e->workspace_id, sizeof e->workspace_id);
    col_text(st, 3, e->number_id, sizeof e->number_id);
    col_text(st, 4, e->code, sizeof e->code);
    col_text(st, 5, e->message, sizeof e->message);
    col_text(st, 6, e->hint, sizeof e->hint);
    /* a cut JSON text would not parse: longer than the cap (never written by us) is {} */
    if (tl_db_column_bytes(st, 7) <= TL_EVENT_DETAILS_MAX)
        col_text(st, 7, e->details, sizeof e->details);
    e->created_at = tl_db_column_int64(st, 8);
    return 0;
}

/* Newest-first pages reuse list_page: its cursor is the seq of the last row shown, and
 * "no cursor" binds 0, which the queries read as "from the top". */
int tl_store_call_list(struct tl_store *s, const char *workspace_id, const char *number_id,
                       const struct tl_page *pg, tl_call_cb cb, void *arg,
                       char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_call_record *items;
    size_t n;
    const char *args[] = {workspace_id, number_id};
    int ret = list_page(s, "call_list",
                        "SELECT " CA_COLS " FROM calls WHERE workspace_id = ?1 "
                        "AND (?2 IS NULL OR number_id = ?2) AND (?3 = 0 OR seq < ?3) "
                        "ORDER BY seq DESC LIMIT ?4",
                        args, 2, pg, sizeof *items, ca_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

int tl_store_call_get(struct tl_store *s, const char *workspace_id, const char *id,
                      struct tl_call_record *out)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {workspace_id, id};
    int64_t seq;

    lock(s);
    int ret =
        row_one(s, "call_get", "SELECT " CA_COLS " FROM calls WHERE workspace_id = ?1 AND id = ?2",
                args, 2, &st, NULL);
    if (ret == 0)
        ret = ca_row(st, out, &seq, NULL);
    tl_db_finalize(st);
    unlock(s);
    return ret;
}

int tl_store_event_list(struct tl_store *s, const char *workspace_id, const char *number_id,
                        const struct tl_page *pg, tl_event_cb cb, void *arg,
                        char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    struct tl_event *items;
    size_t n;
    const char *args[] = {workspace_id, number_id};

    next_cursor[0] = '\0';
    /* the number must be this workspace's: events of a foreign number are a 404 */
    lock(s);
    int ret =
        row_one(s, "event_list", "SELECT 1 FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2",
                args, 2, &st, err);
    tl_db_finalize(st);
    unlock(s);
    if (ret == ENOENT)
        return not_found(err, "phone number");
    if (ret != 0)
        return ret;
    ret = list_page(s, "event_list",
                    "SELECT " EV_COLS " FROM events WHERE number_id = ?2 AND workspace_id = ?1 "
                    "AND (?3 = 0 OR seq < ?3) ORDER BY seq DESC LIMIT ?4",
                    args, 2, pg, sizeof *items, ev_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}

int tl_store_event_list_operator(struct tl_store *s, const struct tl_page *pg, tl_event_cb cb,
                                 void *arg, char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_event *items;
    size_t n;
    int ret = list_page(s, "event_list_operator",
                        "SELECT " EV_COLS " FROM events WHERE workspace_id IS NULL "
                        "AND (?1 = 0 OR seq < ?1) ORDER BY seq DESC LIMIT ?2",
                        NULL, 0, pg, sizeof *items, ev_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}
