/* store: call records and events, the webhook deliveries their status changes queue,
 * and their listings. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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

/* The call record's columns (schema v11 adds node_id, bound as ?31 where the database has
 * it): a call is written at its start and again at its end; identity columns stay on the
 * update (an outbound call's SIP Call-ID is filled in once its INVITE exists; the node
 * that holds it never changes), the rest takes the newer values. */
#define NODE_ID_VERSION 11
#define CALL_COLS                                                                                  \
    "id, workspace_id, number_id, number, agent_id, direction, from_uri, from_user, to_user, "     \
    "sip_call_id, created_at, answered_at, ended_at, end_reason, final_status, codec, "            \
    "media_encryption, packets_sent, packets_received, packets_lost, jitter_ms, "                  \
    "rtp_dropped_source, rtp_dropped_auth, rtp_dropped_malformed, rtp_dropped_pt, "                \
    "rtp_dropped_early, audio_dropped_bytes, status, sip_reason, hint"
#define CALL_VALS                                                                                  \
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, "  \
    "?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30"
#define CALL_UPSERT                                                                                \
    " ON CONFLICT(id) DO UPDATE SET agent_id = excluded.agent_id, "                                \
    "answered_at = excluded.answered_at, ended_at = excluded.ended_at, "                           \
    "end_reason = excluded.end_reason, final_status = excluded.final_status, "                     \
    "codec = excluded.codec, media_encryption = excluded.media_encryption, "                       \
    "packets_sent = excluded.packets_sent, packets_received = excluded.packets_received, "         \
    "packets_lost = excluded.packets_lost, jitter_ms = excluded.jitter_ms, "                       \
    "rtp_dropped_source = excluded.rtp_dropped_source, "                                           \
    "rtp_dropped_auth = excluded.rtp_dropped_auth, "                                               \
    "rtp_dropped_malformed = excluded.rtp_dropped_malformed, "                                     \
    "rtp_dropped_pt = excluded.rtp_dropped_pt, rtp_dropped_early = excluded.rtp_dropped_early, "   \
    "audio_dropped_bytes = excluded.audio_dropped_bytes, status = excluded.status, "               \
    "sip_reason = excluded.sip_reason, hint = excluded.hint, "                                     \
    "sip_call_id = CASE WHEN calls.sip_call_id = '' THEN excluded.sip_call_id "                    \
    "ELSE calls.sip_call_id END"

static int call_bind(struct tl_store *s, struct tl_db_stmt *st, const struct tl_call_record *c)
{
    if (s->version >= NODE_ID_VERSION && tl__bind_opt(st, 31, s->node_id))
        return -1;
    return tl__bind_str(st, 1, c->id) || tl__bind_str(st, 2, c->workspace_id) ||
           tl__bind_opt(st, 3, c->number_id) || tl__bind_str(st, 4, c->number) ||
           tl__bind_opt(st, 5, c->agent_id) ||
           tl__bind_str(st, 6, tl_call_direction_name(c->direction)) ||
           tl__bind_str(st, 7, c->from_uri) || tl__bind_str(st, 8, c->from_user) ||
           tl__bind_str(st, 9, c->to_user) || tl__bind_str(st, 10, c->sip_call_id) ||
           tl_db_bind_int64(st, 11, c->created_at) || bind_time(st, 12, c->answered_at) ||
           bind_time(st, 13, c->ended_at) || tl__bind_str(st, 14, c->end_reason) ||
           tl_db_bind_int64(st, 15, c->final_status) || tl__bind_str(st, 16, c->codec) ||
           tl__bind_str(st, 17, c->srtp ? "srtp" : "rtp") ||
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
           tl__bind_str(st, 28, tl_call_status_name(c->status)) ||
           tl__bind_str(st, 29, c->sip_reason) || tl__bind_str(st, 30, c->hint);
}

static int event_bind(struct tl_db_stmt *st, const struct tl_event *e)
{
    return tl__bind_str(st, 1, e->id) || tl__bind_opt(st, 2, e->workspace_id) ||
           tl__bind_opt(st, 3, e->number_id) || tl__bind_str(st, 4, e->code) ||
           tl__bind_str(st, 5, e->message) || tl__bind_str(st, 6, e->hint) ||
           tl__bind_str(st, 7, e->details[0] ? e->details : "{}") ||
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
    bad = bad || tl__json_put(d, "id", json_string(c->id)) ||
          tl__json_put(d, "object", json_string("call")) ||
          tl__json_put(d, "workspace_id", json_string(c->workspace_id)) ||
          tl__json_put(d, "direction", json_string(tl_call_direction_name(c->direction))) ||
          tl__json_put(d, "status", json_string(tl_call_status_name(c->status))) ||
          tl__json_put(d, "number_id", json_text(c->number_id)) ||
          tl__json_put(d, "number", json_string(c->number)) ||
          tl__json_put(d, "agent_id", json_text(c->agent_id)) ||
          tl__json_put(d, "from", json_string(c->from_user[0] ? c->from_user : c->from_uri)) ||
          tl__json_put(d, "to", json_string(c->to_user)) ||
          tl__json_put(d, "sip_call_id", json_string(c->sip_call_id)) ||
          tl__json_put(d, "created_at", json_time(c->created_at)) ||
          tl__json_put(d, "answered_at", json_time(c->answered_at)) ||
          tl__json_put(d, "ended_at", json_time(c->ended_at)) ||
          tl__json_put(d, "end_reason", json_text(c->end_reason)) ||
          tl__json_put(d, "final_status",
                       c->final_status ? json_integer(c->final_status) : json_null()) ||
          tl__json_put(d, "sip_reason", json_text(c->sip_reason)) ||
          tl__json_put(d, "hint", json_text(c->hint)) || tl__json_put(o, "id", json_string(id)) ||
          tl__json_put(o, "object", json_string("event")) ||
          tl__json_put(o, "type", json_string(type)) ||
          tl__json_put(o, "created_at", json_time(at)) || tl__json_put(o, "data", json_incref(d));
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
    if (tl__bind_str(hst, 1, c->workspace_id))
        return tl__db_fail(s, op, err);
    int rc = tl_db_step(hst);
    if (rc == TL_DB_DONE)
        return 0; /* no webhook */
    if (rc != TL_DB_ROW)
        return tl__db_fail(s, op, err);
    tl_db_reset(pst);
    if (tl__bind_str(pst, 1, c->id))
        return tl__db_fail(s, op, err);
    rc = tl_db_step(pst);
    if (rc != TL_DB_ROW && rc != TL_DB_DONE)
        return tl__db_fail(s, op, err);
    bool is_new = rc == TL_DB_DONE;
    int prev = is_new ? -1 : tl_call_status_parse(tl__col_str(pst, 0));
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
        int ret = tl__bind_str(dst, 1, id) || tl__bind_str(dst, 2, c->workspace_id) ||
                          tl__bind_str(dst, 3, ev[i]) || tl__bind_str(dst, 4, body) ||
                          tl_db_bind_int64(dst, 5, now)
                      ? tl__db_fail(s, op, err)
                      : tl__step_done(s, op, dst, err);
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

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret == 0)
        ret = tl__prep(s, op,
                       s->version >= NODE_ID_VERSION
                           ? "INSERT INTO calls (" CALL_COLS ", node_id) VALUES (" CALL_VALS
                             ", ?31)" CALL_UPSERT
                           : "INSERT INTO calls (" CALL_COLS ") VALUES (" CALL_VALS ")" CALL_UPSERT,
                       &cst, err);
    if (ret == 0)
        ret = tl__prep(s, op,
                       "INSERT INTO events (id, workspace_id, number_id, code, message, hint, "
                       "details_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                       &est, err);
    bool hooks = s->version >= 6; /* a database opened at an older version has no table */
    if (ret == 0 && hooks)
        ret = tl__prep(s, op, "SELECT 1 FROM webhooks WHERE workspace_id = ?1", &hst, err);
    if (ret == 0 && hooks)
        ret = tl__prep(s, op, "SELECT status FROM calls WHERE id = ?1", &pst, err);
    if (ret == 0 && hooks)
        ret = tl__prep(s, op,
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
        if (v[i].call ? call_bind(s, st, v[i].call) : event_bind(st, v[i].event))
            ret = tl__db_fail(s, op, err);
        else
            ret = tl__step_done(s, op, st, err);
    }
    tl_db_finalize(cst);
    tl_db_finalize(est);
    tl_db_finalize(hst);
    tl_db_finalize(pst);
    tl_db_finalize(dst);
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
    tl__tx_rollback(s);
    tl__unlock(s);
    if (deliveries)
        *deliveries = ret == 0 ? queued : 0;
    return ret;
}

int tl_store_calls_close_open(struct tl_store *s, const char *end_reason, int64_t now_ms,
                              int64_t dead_ms, int64_t *closed, struct tl_err *err)
{
    static const char op[] = "calls_close_open";
    struct tl_db_stmt *st = NULL;
    *closed = 0;
#define CLOSE_SET                                                                                  \
    "UPDATE calls SET ended_at = CASE WHEN ?1 >= created_at AND ?1 >= "                            \
    "coalesce(answered_at, 0) THEN ?1 WHEN created_at >= coalesce(answered_at, 0) "                \
    "THEN created_at ELSE answered_at END, "                                                       \
    "end_reason = ?2, status = CASE WHEN answered_at IS NULL THEN 'failed' "                       \
    "ELSE 'completed' END WHERE ended_at IS NULL"
    /* Shared by several nodes, the open calls of the nodes still alive are theirs: only
     * those of a node whose heartbeat (node_calls, the database's clock) is older than
     * dead_ms, or of none (written before v11), are closed. The partial index
     * calls_open_node keeps this to the calls in progress. */
    bool shared = tl_store_shared(s) && s->version >= NODE_ID_VERSION;
    tl__lock(s);
    int ret = tl__prep(s, op,
                       shared ? CLOSE_SET " AND (node_id IS NULL OR node_id NOT IN (SELECT "
                                          "node_id FROM node_calls WHERE workspace_id = '' AND "
                                          "updated_at >= (extract(epoch FROM now()) * "
                                          "1000)::bigint - ?3))"
                              : CLOSE_SET,
                       &st, err);
    if (ret == 0 && (tl_db_bind_int64(st, 1, now_ms) || tl__bind_str(st, 2, end_reason) ||
                     (shared && tl_db_bind_int64(st, 3, dead_ms))))
        ret = tl__db_fail(s, op, err);
    if (ret == 0)
        ret = tl__step_done(s, op, st, err);
    if (ret == 0)
        *closed = tl_db_changes(s->db);
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
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
    tl__col_text(st, 1, c->id, sizeof c->id);
    tl__col_text(st, 2, c->workspace_id, sizeof c->workspace_id);
    tl__col_text(st, 3, c->number_id, sizeof c->number_id);
    tl__col_text(st, 4, c->number, sizeof c->number);
    tl__col_text(st, 5, c->agent_id, sizeof c->agent_id);
    c->direction = strcmp(tl__col_str(st, 6), "outbound") == 0 ? TL_CALL_OUTBOUND : TL_CALL_INBOUND;
    tl__col_text(st, 7, c->from_uri, sizeof c->from_uri);
    tl__col_text(st, 8, c->from_user, sizeof c->from_user);
    tl__col_text(st, 9, c->to_user, sizeof c->to_user);
    tl__col_text(st, 10, c->sip_call_id, sizeof c->sip_call_id);
    c->created_at = tl_db_column_int64(st, 11);
    c->answered_at = tl_db_column_int64(st, 12); /* NULL reads as 0 */
    c->ended_at = tl_db_column_int64(st, 13);
    tl__col_text(st, 14, c->end_reason, sizeof c->end_reason);
    c->final_status = tl_db_column_int64(st, 15);
    tl__col_text(st, 16, c->codec, sizeof c->codec);
    c->srtp = strcmp(tl__col_str(st, 17), "srtp") == 0;
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
    int cs = tl_call_status_parse(tl__col_str(st, 28));
    c->status = cs < 0 ? TL_CALL_FAILED : (enum tl_call_status)cs;
    tl__col_text(st, 29, c->sip_reason, sizeof c->sip_reason);
    tl__col_text(st, 30, c->hint, sizeof c->hint);
    return 0;
}

#define EV_COLS "seq, id, workspace_id, number_id, code, message, hint, details_json, created_at"

static int ev_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_event *e = out;
    (void)err;
    memset(e, 0, sizeof *e);
    *seq = tl_db_column_int64(st, 0);
    tl__col_text(st, 1, e->id, sizeof e->id);
    tl__col_text(st, 2, e->workspace_id, sizeof e->workspace_id);
    tl__col_text(st, 3, e->number_id, sizeof e->number_id);
    tl__col_text(st, 4, e->code, sizeof e->code);
    tl__col_text(st, 5, e->message, sizeof e->message);
    tl__col_text(st, 6, e->hint, sizeof e->hint);
    /* a cut JSON text would not parse: longer than the cap (never written by us) is {} */
    if (tl_db_column_bytes(st, 7) <= TL_EVENT_DETAILS_MAX)
        tl__col_text(st, 7, e->details, sizeof e->details);
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
    int ret =
        tl__list_page(s, "call_list",
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

    tl__lock(s);
    int ret = tl__row_one(s, "call_get",
                          "SELECT " CA_COLS " FROM calls WHERE workspace_id = ?1 AND id = ?2", args,
                          2, &st, NULL);
    if (ret == 0)
        ret = ca_row(st, out, &seq, NULL);
    tl_db_finalize(st);
    tl__unlock(s);
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
    tl__lock(s);
    int ret = tl__row_one(s, "event_list",
                          "SELECT 1 FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2", args,
                          2, &st, err);
    tl_db_finalize(st);
    tl__unlock(s);
    if (ret == ENOENT)
        return tl__not_found(err, "phone number");
    if (ret != 0)
        return ret;
    ret = tl__list_page(s, "event_list",
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
    int ret =
        tl__list_page(s, "event_list_operator",
                      "SELECT " EV_COLS " FROM events WHERE workspace_id IS NULL "
                      "AND (?1 = 0 OR seq < ?1) ORDER BY seq DESC LIMIT ?2",
                      NULL, 0, pg, sizeof *items, ev_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}
