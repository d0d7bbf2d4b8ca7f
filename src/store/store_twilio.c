/* store: Twilio-shaped credentials of a workspace (REST call-update emulation). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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
    if (tl__seal_password(s, workspace_id, "twilio_token", token, &sl)) {
        sodium_memzero(token, TL_TWILIO_TOKEN_LEN + 1);
        return tl_err_set(err, EIO, 500, "internal", "", "cannot seal the token");
    }
    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret == 0)
        ret = tl__ws_plan(s, op, workspace_id, &plan, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "workspace");
    if (ret == 0)
        ret =
            tl__prep(s, op,
                     "INSERT INTO twilio_accounts (workspace_id, account_sid, token_sealed, "
                     "created_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(workspace_id) DO UPDATE SET "
                     "token_sealed = excluded.token_sealed, created_at = excluded.created_at",
                     &st, err);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st,
                           tl__bind_str(st, 1, workspace_id) ||
                               tl__bind_str(st, 2, out->account_sid) ||
                               tl__bind_blob(st, 3, sl.buf, sl.len, true) ||
                               tl_db_bind_int64(st, 4, out->created_at),
                           err);
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
    tl__tx_end(s, st);
    sodium_memzero(&sl, sizeof sl);
    if (ret)
        sodium_memzero(token, TL_TWILIO_TOKEN_LEN + 1);
    else /* the routing cache holds the token of TwiML agents (it keys their signatures) */
        tl__notify(s, TL_CHANGE_WORKSPACE_UPDATED, workspace_id, workspace_id, NULL);
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
    int ret = tl__row_one(s, op, sql, args, 1, &st, NULL);
    if (ret == 0) {
        memset(out, 0, sizeof *out);
        tl__col_text(st, 0, out->workspace_id, sizeof out->workspace_id);
        tl__col_text(st, 1, out->account_sid, sizeof out->account_sid);
        out->created_at = tl_db_column_int64(st, 3);
        if (token) {
            char pw[TL_PASSWORD_MAX + 1];
            if (tl__col_sealed(st, 2, &sl) ||
                tl__open_password(s, out->workspace_id, "twilio_token", &sl, pw) ||
                strlen(pw) != TL_TWILIO_TOKEN_LEN)
                ret = tl__corrupt(op, out->workspace_id, "token_sealed", NULL);
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
    tl__lock(s);
    int ret = twilio_read(s, "twilio_get", "workspace_id", workspace_id, out, NULL);
    tl__unlock(s);
    return ret;
}

int tl_store_twilio_token(struct tl_store *s, const char *workspace_id,
                          char token[TL_TWILIO_TOKEN_LEN + 1])
{
    struct tl_twilio_account a;
    tl__lock(s);
    int ret = twilio_read(s, "twilio_token", "workspace_id", workspace_id, &a, token);
    tl__unlock(s);
    return ret;
}

int tl_store_twilio_auth(struct tl_store *s, const char *account_sid, const char *token,
                         char workspace_id[TL_ID_MAX])
{
    struct tl_twilio_account a;
    char want[TL_TWILIO_TOKEN_LEN + 1];
    if (!account_sid || !token || strlen(account_sid) != TL_TWILIO_SID_LEN)
        return EPERM;
    tl__lock(s);
    int ret = twilio_read(s, "twilio_auth", "account_sid", account_sid, &a, want);
    tl__unlock(s);
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
    tl__lock(s);
    int ret = tl__exec_args(s, "twilio_delete",
                            "DELETE FROM twilio_accounts WHERE workspace_id = ?1", args, 1, NULL);
    if (ret == 0 && tl_db_changes(s->db) == 0)
        ret = ENOENT;
    tl__unlock(s);
    if (ret == 0) /* the routing cache drops the token that signed TwiML requests */
        tl__notify(s, TL_CHANGE_WORKSPACE_UPDATED, workspace_id, workspace_id, NULL);
    return ret;
}
