/* store: a workspace's webhook and its queued deliveries. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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
    if (tl__seal_password(s, workspace_id, "webhook_secret", secret, &sl)) {
        sodium_memzero(secret, TL_WEBHOOK_SECRET_LEN + 1);
        return tl_err_set(err, EIO, 500, "internal", "", "cannot seal the secret");
    }
    int64_t now = tl_now_ms();
    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret == 0)
        ret = tl__ws_plan(s, op, workspace_id, &plan, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "workspace");
    if (ret == 0)
        ret =
            tl__prep(s, op,
                     "INSERT INTO webhooks (workspace_id, url, secret_sealed, created_at) VALUES "
                     "(?1, ?2, ?3, ?4) ON CONFLICT(workspace_id) DO UPDATE SET url = excluded.url, "
                     "secret_sealed = excluded.secret_sealed, created_at = excluded.created_at",
                     &st, err);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st,
                           tl__bind_str(st, 1, workspace_id) || tl__bind_str(st, 2, url) ||
                               tl__bind_blob(st, 3, sl.buf, sl.len, true) ||
                               tl_db_bind_int64(st, 4, now),
                           err);
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
    tl__tx_end(s, st);
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
    tl__lock(s);
    int ret = tl__row_one(s, "webhook_get",
                          "SELECT url, created_at, last_success_at, last_failure_at, last_error, "
                          "(SELECT count(*) FROM webhook_deliveries WHERE workspace_id = ?1) "
                          "FROM webhooks WHERE workspace_id = ?1",
                          args, 1, &st, NULL);
    if (ret == 0) {
        tl_strlcpy(out->workspace_id, workspace_id, sizeof out->workspace_id);
        tl__col_text(st, 0, out->url, sizeof out->url);
        out->created_at = tl_db_column_int64(st, 1);
        out->last_success_at = tl_db_column_int64(st, 2);
        out->last_failure_at = tl_db_column_int64(st, 3);
        tl__col_text(st, 4, out->last_error, sizeof out->last_error);
        out->pending = tl_db_column_int64(st, 5);
    }
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

int tl_store_webhook_delete(struct tl_store *s, const char *workspace_id)
{
    static const char op[] = "webhook_delete";
    struct tl_db_stmt *st = NULL;
    tl__lock(s);
    int ret = tl__tx_begin(s, op, NULL);
    if (ret == 0)
        ret = tl__prep(s, op, "DELETE FROM webhooks WHERE workspace_id = ?1", &st, NULL);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st, tl__bind_str(st, 1, workspace_id), NULL);
    if (ret == 0 && tl_db_changes(s->db) == 0)
        ret = ENOENT;
    if (ret == 0)
        ret = tl__prep(s, op, "DELETE FROM webhook_deliveries WHERE workspace_id = ?1", &st, NULL);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st, tl__bind_str(st, 1, workspace_id), NULL);
    if (ret == 0)
        ret = tl__tx_commit(s, op, NULL);
    tl__tx_end(s, st);
    return ret;
}

int tl_store_webhook_secret(struct tl_store *s, const char *workspace_id,
                            char url[TL_AGENT_URL_MAX + 1], char secret[TL_WEBHOOK_SECRET_LEN + 1])
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {workspace_id};
    struct sealed sl;
    char pw[TL_PASSWORD_MAX + 1];
    tl__lock(s);
    int ret = tl__row_one(s, "webhook_secret",
                          "SELECT url, secret_sealed FROM webhooks WHERE workspace_id = ?1", args,
                          1, &st, NULL);
    if (ret == 0) {
        tl_strlcpy(url, tl__col_str(st, 0), TL_AGENT_URL_MAX + 1);
        if (tl__col_sealed(st, 1, &sl) ||
            tl__open_password(s, workspace_id, "webhook_secret", &sl, pw) ||
            strlen(pw) != TL_WEBHOOK_SECRET_LEN)
            ret = tl__corrupt("webhook_secret", workspace_id, "secret_sealed", NULL);
        else
            memcpy(secret, pw, TL_WEBHOOK_SECRET_LEN + 1);
        sodium_memzero(pw, sizeof pw);
        sodium_memzero(&sl, sizeof sl);
    }
    tl_db_finalize(st);
    tl__unlock(s);
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
    tl__lock(s);
    ret = tl__prep(s, op,
                   "SELECT id, workspace_id, event, body, attempts, created_at, next_at FROM "
                   "webhook_deliveries ORDER BY next_at, seq LIMIT ?1",
                   &st, NULL);
    if (ret == 0 && tl_db_bind_int64(st, 1, (int64_t)cap + 1))
        ret = tl__db_fail(s, op, NULL);
    while (ret == 0 && (rc = tl_db_step(st)) == TL_DB_ROW) {
        int64_t at = tl_db_column_int64(st, 6);
        if (at > now_ms || *n == cap) {
            *next_at = at > now_ms ? at : now_ms;
            break;
        }
        struct tl_delivery *d = &out[(*n)++];
        memset(d, 0, sizeof *d);
        tl__col_text(st, 0, d->id, sizeof d->id);
        tl__col_text(st, 1, d->workspace_id, sizeof d->workspace_id);
        tl__col_text(st, 2, d->event, sizeof d->event);
        tl__col_text(st, 3, d->body, sizeof d->body);
        d->attempts = (uint32_t)tl_db_column_int64(st, 4);
        d->created_at = tl_db_column_int64(st, 5);
        d->next_at = at;
    }
    if (ret == 0 && rc != TL_DB_ROW && rc != TL_DB_DONE)
        ret = tl__db_fail(s, op, NULL);
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

/* a delivery's row: rescheduled (next_at > 0) or removed, and the webhook's last outcome */
static int delivery_update(struct tl_store *s, const struct tl_delivery *d, bool ok,
                           uint32_t attempts, int64_t next_at, const char *error, int64_t at)
{
    static const char op[] = "delivery_update";
    struct tl_db_stmt *st = NULL;
    tl__lock(s);
    int ret = tl__tx_begin(s, op, NULL);
    if (ret == 0 && next_at)
        ret = tl__prep(s, op,
                       "UPDATE webhook_deliveries SET attempts = ?2, next_at = ?3 WHERE id = ?1",
                       &st, NULL);
    else if (ret == 0)
        ret = tl__prep(s, op, "DELETE FROM webhook_deliveries WHERE id = ?1", &st, NULL);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st,
                           tl__bind_str(st, 1, d->id) ||
                               (next_at && (tl_db_bind_int64(st, 2, attempts) ||
                                            tl_db_bind_int64(st, 3, next_at))),
                           NULL);
    if (ret == 0)
        ret = tl__prep(s, op,
                       ok ? "UPDATE webhooks SET last_success_at = ?2 WHERE workspace_id = ?1"
                          : "UPDATE webhooks SET last_failure_at = ?2, last_error = ?3 WHERE "
                            "workspace_id = ?1",
                       &st, NULL);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st,
                           tl__bind_str(st, 1, d->workspace_id) || tl_db_bind_int64(st, 2, at) ||
                               (!ok && tl__bind_str(st, 3, error ? error : "")),
                           NULL);
    if (ret == 0)
        ret = tl__tx_commit(s, op, NULL);
    tl__tx_end(s, st);
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
