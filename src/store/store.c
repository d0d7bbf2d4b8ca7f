/* store: the domain rules of store.h above the database backend interface (db.h): SQLite
 * by default, PostgreSQL when the store setting names one. This file holds what every
 * domain object's file (store_workspace.c, store_token.c, store_agent.c, store_number.c,
 * store_calls.c, store_webhook.c, store_twilio.c; the schema in store_schema.c) shares:
 * locking, statements, cursors, JSON columns, sealing, row readers (store_int.h). The SQL here is
 * the subset both dialects share; what differs (the schema's DDL, the version record, durability
 * settings, error codes) lives in the backends and in the per-backend migrations below.
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
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

/* ---- small helpers ---- */

void tl__lock(struct tl_store *s)
{
    pthread_mutex_lock(&s->mu);
}

void tl__unlock(struct tl_store *s)
{
    pthread_mutex_unlock(&s->mu);
}

/* The database's message goes to the log only: it can name tables and constraints, which
 * is nothing a tenant needs to see. */
int tl__db_fail(struct tl_store *s, const char *op, struct tl_err *err)
{
    tl_error("store", "store.db_error", "op=%s class=%d detail=\"%s\"", op,
             (int)tl_db_last_error(s->db), tl_db_errmsg(s->db));
    return tl_err_set(err, EIO, 500, "internal", "",
                      "The database could not complete the request.");
}

int tl__corrupt(const char *op, const char *id, const char *what, struct tl_err *err)
{
    tl_error("store", "store.corrupt", "op=%s id=%s what=\"%s\"", op, id, what);
    return tl_err_set(err, EIO, 500, "internal", "", "A stored record could not be read.");
}

int tl__not_found(struct tl_err *err, const char *what)
{
    return tl_err_set(err, ENOENT, 404, "not_found", "", "No such %s in this workspace.", what);
}

void tl__fin(struct tl_db_stmt **st)
{
    tl_db_finalize(*st);
    *st = NULL;
}

int tl__prep(struct tl_store *s, const char *op, const char *sql, struct tl_db_stmt **st,
             struct tl_err *err)
{
    if (tl_db_prepare(s->db, sql, st) != 0) {
        *st = NULL;
        return tl__db_fail(s, op, err);
    }
    return 0;
}

/* binders return 0 on success, so calls chain with || */
int tl__bind_str(struct tl_db_stmt *st, int i, const char *v)
{
    return tl_db_bind_text(st, i, v);
}

/* NULL and "" both store SQL NULL (no agent, operator token, no inbound trunk) */
int tl__bind_opt(struct tl_db_stmt *st, int i, const char *v)
{
    if (!v || !*v)
        return tl_db_bind_null(st, i);
    return tl__bind_str(st, i, v);
}

int tl__bind_blob(struct tl_db_stmt *st, int i, const void *p, size_t len, bool present)
{
    if (!present)
        return tl_db_bind_null(st, i);
    return tl_db_bind_blob(st, i, p, len);
}

const char *tl__col_str(struct tl_db_stmt *st, int i)
{
    const char *t = tl_db_column_text(st, i);
    return t ? t : "";
}

/* Values from the file are copied with their bounds: a database edited by hand or
 * damaged must not overflow a struct field. */
void tl__col_text(struct tl_db_stmt *st, int i, char *dst, size_t cap)
{
    tl_strlcpy(dst, tl__col_str(st, i), cap);
}

/* the backend takes its write lock up front where it has one (SQLite: BEGIN IMMEDIATE),
 * so check-then-write sequences (number taken?, agent in use?) cannot interleave with
 * another process on the same file (the CLI); PostgreSQL's constraints catch the rest */
int tl__tx_begin(struct tl_store *s, const char *op, struct tl_err *err)
{
    return tl_db_begin(s->db) != 0 ? tl__db_fail(s, op, err) : 0;
}

void tl__tx_rollback(struct tl_store *s)
{
    tl_db_rollback(s->db);
}

int tl__tx_commit(struct tl_store *s, const char *op, struct tl_err *err)
{
    int ret = tl_db_commit(s->db) != 0 ? tl__db_fail(s, op, err) : 0;
    if (ret != 0)
        tl__tx_rollback(s);
    return ret;
}

/* step a statement expected to finish without rows */
int tl__step_done(struct tl_store *s, const char *op, struct tl_db_stmt *st, struct tl_err *err)
{
    if (tl_db_step(st) != TL_DB_DONE)
        return tl__db_fail(s, op, err);
    return 0;
}

/* binds args[0..n) at ?1..?n; a NULL arg binds SQL NULL (bind_text does that) */
int tl__bind_args(struct tl_db_stmt *st, const char *const *args, int n)
{
    for (int i = 0; i < n; i++)
        if (tl__bind_str(st, i + 1, args[i]))
            return 1;
    return 0;
}

/* Prepares sql, binds args and steps once: 0 with *st on the row, ENOENT (err left alone,
 * each caller words its own "missing") when there is none, else the database failure. The
 * caller finalizes *st in every case. */
int tl__row_one(struct tl_store *s, const char *op, const char *sql, const char *const *args, int n,
                struct tl_db_stmt **st, struct tl_err *err)
{
    int ret = tl__prep(s, op, sql, st, err);
    if (ret != 0)
        return ret;
    if (tl__bind_args(*st, args, n))
        return tl__db_fail(s, op, err);
    int rc = tl_db_step(*st);
    if (rc == TL_DB_ROW)
        return 0;
    if (rc == TL_DB_DONE)
        return ENOENT;
    return tl__db_fail(s, op, err);
}

/* a statement with only text parameters that returns no rows (DELETE by id) */
int tl__exec_args(struct tl_store *s, const char *op, const char *sql, const char *const *args,
                  int n, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    int ret = tl__prep(s, op, sql, &st, err);
    if (ret == 0 && tl__bind_args(st, args, n))
        ret = tl__db_fail(s, op, err);
    if (ret == 0)
        ret = tl__step_done(s, op, st, err);
    tl_db_finalize(st);
    return ret;
}

/* Runs a write statement to completion and finalizes it; `bound` is the ||-chain of its
 * binders (0 when all took). On failure *st is left to the caller's exit path. */
int tl__step_fin(struct tl_store *s, const char *op, struct tl_db_stmt **st, int bound,
                 struct tl_err *err)
{
    if (bound)
        return tl__db_fail(s, op, err);
    int ret = tl__step_done(s, op, *st, err);
    if (ret == 0)
        tl__fin(st);
    return ret;
}

/* The exit of a write under lock: drops the statement, undoes a transaction left open
 * (after a commit there is none), unlocks. */
void tl__tx_end(struct tl_store *s, struct tl_db_stmt *st)
{
    tl_db_finalize(st);
    tl__tx_rollback(s);
    tl__unlock(s);
}

static void safe_zero(void *p, size_t n)
{
    sodium_memzero(p, n);
}

/* after a commit, with the lock released (store.h: the hook may read the store again) */
void tl__notify(struct tl_store *s, enum tl_store_change_kind kind, const char *ws, const char *id,
                const char *number)
{
    struct tl_store_change c = {kind, ws, id, number};
    tl__feed_send(s, &c);
    if (!s->change_fn)
        return;
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
            ret = tl__db_fail(s, op, err);
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
int tl__list_page(struct tl_store *s, const char *op, const char *sql, const char *const *args,
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
    tl__lock(s);
    ret = tl__prep(s, op, sql, &st, err);
    if (ret == 0) {
        if (tl__bind_args(st, args, n_args) || tl_db_bind_int64(st, n_args + 1, after) ||
            tl_db_bind_int64(st, n_args + 2, (int64_t)limit + 1))
            ret = tl__db_fail(s, op, err);
        else
            ret = collect(s, op, st, limit, item_size, rd, items, n, next_cursor, err);
    }
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

/* ---- JSON columns (non-secret trunk and agent fields) ---- */

int tl__json_put(json_t *o, const char *k, json_t *v)
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

const char *tl__opt_name(const char *n)
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
    return tl__json_put(o, "username", json_string(username)) ||
           tl__json_put(o, "transport", json_string(tl__opt_name(tl_transport_name(transport)))) ||
           tl__json_put(o, "media_encryption",
                        json_string(tl__opt_name(tl_media_enc_name(media)))) ||
           tl__json_put(o, "headers", kv_to_json(headers, n));
}

int tl__outbound_to_json(const struct tl_outbound_trunk *t, char **out)
{
    json_t *o = json_object();
    if (!o || tl__json_put(o, "address", json_string(t->address)) ||
        trunk_common_to_json(o, t->username, t->transport, t->media_encryption, t->headers,
                             t->n_headers) ||
        (t->number_format != TL_NUMFMT_E164 &&
         tl__json_put(o, "number_format",
                      json_string(tl__opt_name(tl_number_format_name(t->number_format)))))) {
        json_decref(o);
        o = NULL;
    }
    return dump(o, out);
}

int tl__inbound_to_json(const struct tl_inbound_trunk *t, char **out)
{
    json_t *o = json_object();
    json_t *allowed = json_array();
    bool bad = !o || !allowed;

    for (size_t i = 0; !bad && i < t->n_allowed && i < TL_ALLOWED_MAX; i++)
        bad = json_array_append_new(allowed, json_string(t->allowed_addresses[i])) != 0;
    if (bad ||
        trunk_common_to_json(o, t->username, t->transport, t->media_encryption, t->headers,
                             t->n_headers) ||
        tl__json_put(o, "allowed_addresses", json_incref(allowed)) ||
        tl__json_put(o, "origination_url", json_string(t->origination_url)) ||
        (t->rtp_latching &&
         tl__json_put(o, "rtp_latching",
                      json_string(tl__opt_name(tl_rtp_latching_name(t->rtp_latching))))) ||
        (t->allow_any_source && tl__json_put(o, "allow_any_source", json_true()))) {
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

int tl__params_to_json(const struct tl_agent *a, char **out)
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

int tl__header_names_to_json(const struct tl_agent *a, char **out)
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

static void seal_ad(char *ad, size_t cap, const char *row_id, const char *field)
{
    /* binds a ciphertext to its row and column: copied elsewhere it fails to open */
    snprintf(ad, cap, "%s:%s", row_id, field);
}

int tl__col_sealed(struct tl_db_stmt *st, int i, struct sealed *out)
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

int tl__seal_password(struct tl_store *s, const char *row_id, const char *field, const char *pw,
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

int tl__open_password(struct tl_store *s, const char *row_id, const char *field,
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
int tl__headers_seal(struct tl_store *s, const char *agent_id, const struct tl_kv *h, size_t n,
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

int tl__headers_open(struct tl_store *s, const char *agent_id, const void *sealed, size_t len,
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

int tl__ws_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_workspace *w = out;
    memset(w, 0, sizeof *w);
    *seq = tl_db_column_int64(st, 0);
    tl__col_text(st, 1, w->id, sizeof w->id);
    tl__col_text(st, 2, w->name, sizeof w->name);
    int plan = tl_plan_parse(tl__col_str(st, 3));
    if (plan < 0)
        return tl__corrupt("workspace", w->id, "plan", err);
    w->plan = (enum tl_plan)plan;
    tl__col_text(st, 4, w->region, sizeof w->region);
    w->created_at = tl_db_column_int64(st, 5);
    w->updated_at = tl_db_column_int64(st, 6);
    if (tl_db_column_count(st) > 7)
        prefixes_from_json(tl__col_str(st, 7), w->out_prefixes, &w->n_out_prefixes);
    return 0;
}

int tl__tk_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_token *t = out;
    memset(t, 0, sizeof *t);
    *seq = tl_db_column_int64(st, 0);
    tl__col_text(st, 1, t->id, sizeof t->id);
    tl__col_text(st, 2, t->workspace_id, sizeof t->workspace_id);
    int role = tl_role_parse(tl__col_str(st, 3));
    if (role < 0)
        return tl__corrupt("token", t->id, "role", err);
    t->role = (enum tl_role)role;
    tl__col_text(st, 4, t->name, sizeof t->name);
    tl__col_text(st, 5, t->prefix, sizeof t->prefix);
    t->created_at = tl_db_column_int64(st, 6);
    if (tl_db_column_count(st) > 8) {
        t->last_used_at = tl_db_column_int64(st, 7); /* NULL reads 0 */
        t->expires_at = tl_db_column_int64(st, 8);
    }
    return 0;
}

int tl__ag_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_agent *a = out;
    size_t i;
    json_t *j, *v;

    memset(a, 0, sizeof *a);
    *seq = tl_db_column_int64(st, 0);
    tl__col_text(st, 1, a->id, sizeof a->id);
    tl__col_text(st, 2, a->workspace_id, sizeof a->workspace_id);
    tl__col_text(st, 3, a->name, sizeof a->name);
    int kind = tl_agent_kind_parse(tl__col_str(st, 4));
    if (kind < 0)
        return tl__corrupt("agent", a->id, "kind", err);
    a->kind = (enum tl_agent_kind)kind;
    tl__col_text(st, 5, a->builtin, sizeof a->builtin);
    tl__col_text(st, 6, a->url, sizeof a->url);

    j = json_loads(tl__col_str(st, 7), 0, NULL);
    if (!json_is_array(j)) {
        json_decref(j);
        return tl__corrupt("agent", a->id, "params_json", err);
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

    j = json_loads(tl__col_str(st, 8), 0, NULL);
    if (!json_is_array(j)) {
        json_decref(j);
        return tl__corrupt("agent", a->id, "header_names_json", err);
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
    a->method_get = !strcmp(tl__col_str(st, 12), "GET");
    tl__col_text(st, 13, a->fallback_url, sizeof a->fallback_url);
    tl__col_text(st, 14, a->status_callback, sizeof a->status_callback);
    return 0;
}

int tl__pn_row(struct tl_db_stmt *st, void *out, int64_t *seq, struct tl_err *err)
{
    struct tl_phone_number *n = out;
    memset(n, 0, sizeof *n);
    *seq = tl_db_column_int64(st, 0);
    tl__col_text(st, 1, n->id, sizeof n->id);
    tl__col_text(st, 2, n->workspace_id, sizeof n->workspace_id);
    tl__col_text(st, 3, n->number, sizeof n->number);
    tl__col_text(st, 4, n->label, sizeof n->label);
    int src = tl_source_parse(tl__col_str(st, 5));
    if (src < 0)
        return tl__corrupt("number", n->id, "source", err);
    n->source = (enum tl_number_source)src;
    tl__col_text(st, 6, n->agent_id, sizeof n->agent_id);
    if (outbound_from_json(tl__col_str(st, 7), &n->outbound) != 0)
        return tl__corrupt("number", n->id, "outbound_json", err);
    n->outbound.has_password = tl_db_column_int64(st, 8) != 0;
    if (!tl_db_column_is_null(st, 9)) {
        n->has_inbound = true;
        if (inbound_from_json(tl__col_str(st, 9), &n->inbound) != 0)
            return tl__corrupt("number", n->id, "inbound_json", err);
        n->inbound.has_password = tl_db_column_int64(st, 10) != 0;
    }
    n->created_at = tl_db_column_int64(st, 11);
    n->updated_at = tl_db_column_int64(st, 12);
    return 0;
}

/* ---- change hook ---- */

void tl_store_set_change_hook(struct tl_store *s, tl_store_change_fn fn, void *arg)
{
    tl__lock(s);
    s->change_fn = fn;
    s->change_arg = fn ? arg : NULL;
    tl__unlock(s);
}
