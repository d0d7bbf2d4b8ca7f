/* store: API tokens (keyed hashes, last use, expiry). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    if (t->workspace_id[0]) {
        enum tl_plan plan;
        ret = tl__ws_plan(s, op, t->workspace_id, &plan, err);
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

    ret = tl__prep(
        s, op,
        s->version >= 6
            ? "INSERT INTO tokens (id, workspace_id, role, name, prefix, hash, created_at, "
              "expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            : "INSERT INTO tokens (id, workspace_id, role, name, prefix, hash, created_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        &st, err);
    if (ret != 0)
        goto out;
    ret =
        tl__step_fin(s, op, &st,
                     tl__bind_str(st, 1, t->id) || tl__bind_opt(st, 2, t->workspace_id) ||
                         tl__bind_str(st, 3, tl__opt_name(tl_role_name(t->role))) ||
                         tl__bind_str(st, 4, t->name) || tl__bind_str(st, 5, t->prefix) ||
                         tl__bind_blob(st, 6, hash, sizeof hash, true) ||
                         tl_db_bind_int64(st, 7, t->created_at) ||
                         (s->version >= 6 && (t->expires_at ? tl_db_bind_int64(st, 8, t->expires_at)
                                                            : tl_db_bind_null(st, 8))),
                     err);
    if (ret != 0)
        goto out;
    ret = tl__tx_commit(s, op, err);
out:
    tl_db_finalize(st);
    if (ret != 0) {
        tl__tx_rollback(s);
        sodium_memzero(secret, TL_TOKEN_MAX + 1);
    }
    tl__unlock(s);
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

    tl__lock(s);
    char q[256];
    snprintf(q, sizeof q, "SELECT %s FROM tokens WHERE hash = ?1", TK_COLS_RD(s));
    ret = tl__prep(s, op, q, &st, NULL);
    if (ret != 0)
        goto out;
    if (tl__bind_blob(st, 1, hash, sizeof hash, true)) {
        ret = tl__db_fail(s, op, NULL);
        goto out;
    }
    int rc = tl_db_step(st);
    if (rc == TL_DB_DONE) {
        ret = ENOENT;
        goto out;
    }
    if (rc != TL_DB_ROW) {
        ret = tl__db_fail(s, op, NULL);
        goto out;
    }
    ret = tl__tk_row(st, out, &seq, NULL);
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
    tl__fin(&st);

    if (touch) {
        /* bookkeeping only: a failure here must not refuse a valid token */
        if (tl__prep(s, op, "UPDATE tokens SET last_used_at = ?1 WHERE seq = ?2", &st, NULL) == 0 &&
            (tl_db_bind_int64(st, 1, now) || tl_db_bind_int64(st, 2, seq) ||
             tl_db_step(st) != TL_DB_DONE))
            tl_warnl("store", "store.token_touch_failed", "id=%s detail=\"%s\"", out->id,
                     tl_db_errmsg(s->db));
    }
out:
    tl_db_finalize(st);
    tl__unlock(s);
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
    int ret = tl__list_page(s, "token_list", q, &workspace_id, 1, pg, sizeof *items, tl__tk_row,
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

    tl__lock(s);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT %s FROM tokens WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2)",
             TK_COLS_RD(s));
    int ret = tl__row_one(s, "token_get", q, args, 2, &st, NULL);
    if (ret == 0)
        ret = tl__tk_row(st, out, &seq, NULL);
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

int tl_store_token_delete(struct tl_store *s, const char *workspace_id, const char *id)
{
    static const char op[] = "token_delete";
    const char *args[] = {id, workspace_id};

    tl__lock(s);
    int ret = tl__tx_begin(s, op, NULL);
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
        ret = tl__prep(s, op, q, &st, NULL);
        if (ret == 0 && (tl__bind_args(st, args, 2) ||
                         (s->version >= 6 && tl_db_bind_int64(st, 3, tl_now_ms()))))
            ret = tl__db_fail(s, op, NULL);
        if (ret == 0)
            ret = tl__step_done(s, op, st, NULL);
        tl_db_finalize(st);
    }
    if (ret == 0 && tl_db_changes(s->db) == 0) {
        /* nothing deleted: no such token, or the last operator one */
        struct tl_db_stmt *st = NULL;
        ret = tl__row_one(
            s, op, "SELECT role FROM tokens WHERE id = ?1 AND (?2 IS NULL OR workspace_id = ?2)",
            args, 2, &st, NULL);
        if (ret == 0)
            ret = EBUSY;
        tl_db_finalize(st);
    }
    if (ret == 0)
        ret = tl__tx_commit(s, op, NULL);
    tl__tx_rollback(s);
    tl__unlock(s);
    return ret;
}
