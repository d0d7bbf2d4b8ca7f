/* store: the schema of both backends, one migration per version each, and opening,
 * migrating and closing the store. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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

    /* v9: store_meta, facts about the database itself; first the master key check
     * (secrets.c tl_key_check_make), so a node with the wrong key refuses to start */
    "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);",

    /* v10: node_calls, each node's calls in progress per workspace, so that the
     * per-workspace caps hold across the nodes sharing a database (store/cluster.h). A
     * node writes only its own rows; workspace_id '' is its heartbeat, whose updated_at
     * (epoch ms, the database's clock) says whether its counts still count. No foreign
     * key: a workspace deleted during a call keeps its count until the call ends. Only the
     * shared backend (PostgreSQL) uses it; SQLite has it so both stay at one version. */
    "CREATE TABLE node_calls ("
    " node_id TEXT NOT NULL,"
    " workspace_id TEXT NOT NULL,"
    " inbound INTEGER NOT NULL DEFAULT 0,"
    " outbound INTEGER NOT NULL DEFAULT 0,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (node_id, workspace_id));",

    /* v11: the node that holds each call, so that a node starting on a shared database
     * closes the calls of dead nodes only, not those of the living (records.h: a restart
     * closes the calls the last process left up). The partial index keeps that sweep to
     * the calls in progress. */
    "ALTER TABLE calls ADD COLUMN node_id TEXT;"
    "CREATE INDEX calls_open_node ON calls (node_id) WHERE ended_at IS NULL;",
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

    /* v9 */
    "CREATE TABLE store_meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);",

    /* v10 */
    "CREATE TABLE node_calls ("
    " node_id TEXT NOT NULL,"
    " workspace_id TEXT NOT NULL,"
    " inbound BIGINT NOT NULL DEFAULT 0,"
    " outbound BIGINT NOT NULL DEFAULT 0,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (node_id, workspace_id));",

    /* v11 */
    "ALTER TABLE calls ADD COLUMN node_id TEXT;"
    "CREATE INDEX calls_open_node ON calls (node_id) WHERE ended_at IS NULL;",
};
_Static_assert(sizeof migrations_pg / sizeof migrations_pg[0] ==
                   sizeof migrations_sqlite / sizeof migrations_sqlite[0],
               "every schema version has a migration for each backend");
#define N_MIGRATIONS ((int)(sizeof migrations_sqlite / sizeof migrations_sqlite[0]))
#define META_VERSION 9 /* the first schema with store_meta */

/* ---- open, close, migrations ---- */

int tl_store_latest_version(void)
{
    return N_MIGRATIONS;
}

static int read_version(struct tl_store *s, int *v, struct tl_err *err)
{
    return s->db->ops->schema_version(s->db, v) != 0 ? tl__db_fail(s, "schema_version", err) : 0;
}

static int migrate(struct tl_store *s, int target, struct tl_err *err)
{
    const char *const *steps = s->db->ops == &tl_db_pg ? migrations_pg : migrations_sqlite;
    int ret = 0;
    for (int v = s->version + 1; v <= target; v++) {
        int cur = 0;

        ret = tl__tx_begin(s, "migrate", err);
        if (ret != 0)
            return ret;
        /* re-read under the schema lock: another process (or node) may have migrated
         * meanwhile */
        if (s->db->ops->lock_schema(s->db) != 0) {
            ret = tl__db_fail(s, "migrate", err);
            goto fail;
        }
        ret = read_version(s, &cur, err);
        if (ret != 0)
            goto fail;
        if (cur >= v) {
            tl__tx_rollback(s);
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
        ret = tl__tx_commit(s, "migrate", err);
        if (ret != 0)
            return ret;
        tl_info("store", "store.migrated", "version=%d", v);
        s->version = v;
    }
    return 0;
fail:
    tl__tx_rollback(s);
    return ret;
}

/* A database from before the check may hold secrets already. The key that writes the
 * check must open one of them: else a wrong key given at the upgrade would be written
 * into the check, and the right key refused from then on. */
static int key_opens_existing(struct tl_store *s, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    struct sealed sl;
    char pw[TL_PASSWORD_MAX + 1] = "", want[TL_KEY_ID_LEN + 1];
    int ret = tl__prep(s, "key_check",
                       "SELECT id, outbound_password, inbound_password FROM phone_numbers WHERE "
                       "outbound_password IS NOT NULL OR inbound_password IS NOT NULL LIMIT 1",
                       &st, err);
    int rc = ret == 0 ? tl_db_step(st) : TL_DB_E_OTHER;
    if (ret == 0 && rc == TL_DB_ROW) {
        int col = !tl_db_column_is_null(st, 1) ? 1 : 2;
        if (tl__col_sealed(st, col, &sl) ||
            tl__open_password(s, tl__col_str(st, 0),
                              col == 1 ? "outbound_password" : "inbound_password", &sl, pw)) {
            tl_master_key_id(s->key, want);
            ret = tl_err_set(err, EKEYREJECTED, 500, "master_key", "",
                             "wrong master key: this database's trunk passwords do not open "
                             "with this node's key (id %s). Start it with the key the database "
                             "was made with; no key check was written",
                             want);
        }
    } else if (ret == 0 && rc != TL_DB_DONE) {
        ret = tl__db_fail(s, "key_check", err);
    }
    sodium_memzero(pw, sizeof pw);
    tl__fin(&st);
    return ret;
}

/* Every node of one database must hold the key its secrets are sealed with. Checked at
 * open, before any write (migrations included), so a node given the wrong key refuses to
 * start instead of failing to open a trunk password in the middle of a call; the first
 * open with store_meta writes the check. Under the write lock: two first starts at once
 * write one check, and the second verifies it. */
static int key_check(struct tl_store *s, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    uint8_t mine[TL_KEY_CHECK_LEN];
    char found[TL_KEY_ID_LEN + 1], want[TL_KEY_ID_LEN + 1];
    bool wrote = false, raced = false;
    int ret = tl__tx_begin(s, "key_check", err);
    if (ret != 0)
        return ret;
    tl_master_key_id(s->key, want);
    ret = tl__prep(s, "key_check", "SELECT value FROM store_meta WHERE name = ?1", &st, err);
    if (ret == 0 && tl__bind_str(st, 1, TL_STORE_META_KEY_CHECK))
        ret = tl__db_fail(s, "key_check", err);
    int rc = ret == 0 ? tl_db_step(st) : TL_DB_E_OTHER;
    if (ret == 0 && rc == TL_DB_ROW) {
        if (tl_key_check_verify(s->key, tl_db_column_blob(st, 0), (size_t)tl_db_column_bytes(st, 0),
                                found) != 0)
            ret = tl_err_set(
                err, EKEYREJECTED, 500, "master_key", "",
                "wrong master key: this database's secrets are sealed with the key whose id is "
                "%s, and this node's key has id %s. Start it with the key of the other nodes "
                "(the same TRUNKLINE_MASTER_KEY or master_key_file; `trunkline` logs "
                "master_key.loaded key_id=… at start). Nothing was written",
                found, want);
    } else if (ret == 0 && rc == TL_DB_DONE) {
        tl__fin(&st);
        ret = key_opens_existing(s, err);
        if (ret == 0 && tl_key_check_make(s->key, mine) != 0)
            ret = tl_err_set(err, EIO, 500, "internal", "", "cannot seal the key check");
        if (ret == 0)
            ret = tl__prep(s, "key_check", "INSERT INTO store_meta (name, value) VALUES (?1, ?2)",
                           &st, err);
        if (ret == 0 && (tl__bind_str(st, 1, TL_STORE_META_KEY_CHECK) ||
                         tl__bind_blob(st, 2, mine, sizeof mine, true)))
            ret = tl__db_fail(s, "key_check", err);
        if (ret == 0)
            ret = tl__step_done(s, "key_check", st, err);
        /* PostgreSQL does not lock what the SELECT found missing: another node's first
         * start wrote its check meanwhile, and this one is verified against it */
        raced = ret != 0 && tl_db_last_error(s->db) == TL_DB_E_UNIQUE;
        wrote = ret == 0;
    } else if (ret == 0) {
        ret = tl__db_fail(s, "key_check", err);
    }
    tl__fin(&st);
    if (wrote)
        ret = tl__tx_commit(s, "key_check", err);
    else
        tl__tx_rollback(s);
    if (wrote && ret == 0)
        tl_info("store", "key_check.written", "key_id=%s", want);
    if (raced)
        return key_check(s, err);
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
    if (tl__feed_init(s, target_db, password) != 0) {
        ret = tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
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
    if (cur >= META_VERSION && (ret = key_check(s, err)) != 0)
        goto out;
    if (cur < target) {
        ret = migrate(s, target, err);
        if (ret == 0 && cur < META_VERSION && target >= META_VERSION)
            ret = key_check(s, err); /* a database from before store_meta: first check */
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
    tl__feed_free(s);
    if (s->db)
        s->db->ops->close(s->db);
    pthread_mutex_destroy(&s->mu);
    sodium_memzero(s->key, sizeof s->key);
    free(s);
}

int tl_store_ping(struct tl_store *s)
{
    struct tl_db_stmt *st = NULL;
    tl__lock(s);
    int ret = tl__prep(s, "ping", "SELECT 1", &st, NULL);
    if (ret == 0 && tl_db_step(st) != TL_DB_ROW)
        ret = tl__db_fail(s, "ping", NULL);
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

int tl_store_schema_version(struct tl_store *s)
{
    tl__lock(s);
    int v = s->version;
    tl__unlock(s);
    return v;
}

int tl_store_workspace_count(struct tl_store *s, int64_t *n)
{
    struct tl_db_stmt *st = NULL;
    *n = 0;
    tl__lock(s);
    int ret = tl__prep(s, "workspace_count", "SELECT count(*) FROM workspaces", &st, NULL);
    if (ret == 0) {
        if (tl_db_step(st) == TL_DB_ROW)
            *n = tl_db_column_int64(st, 0);
        else
            ret = tl__db_fail(s, "workspace_count", NULL);
    }
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}
