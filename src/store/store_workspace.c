/* store: workspaces. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

/* ---- workspaces ---- */

/* plan of a workspace, ENOENT when it does not exist; inside the caller's lock */
int tl__ws_plan(struct tl_store *s, const char *op, const char *ws, enum tl_plan *plan,
                struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    int ret = tl__row_one(s, op, "SELECT plan FROM workspaces WHERE id = ?1", &ws, 1, &st, err);
    if (ret == ENOENT) {
        ret = tl__not_found(err, "workspace");
    } else if (ret == 0) {
        int p = tl_plan_parse(tl__col_str(st, 0));
        if (p < 0)
            ret = tl__corrupt(op, ws, "plan", err);
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
    int ret = tl__row_one(s, "workspace_get",
                          s->version >= 6 ? "SELECT " WS_COLS6 " FROM workspaces WHERE id = ?1"
                                          : "SELECT " WS_COLS " FROM workspaces WHERE id = ?1",
                          &id, 1, &st, err);
    if (ret == 0)
        ret = tl__ws_row(st, out, &seq, err);
    else if (ret == ENOENT)
        ret = tl__not_found(err, "workspace");
    tl_db_finalize(st);
    return ret;
}

int tl_store_workspace_create(struct tl_store *s, struct tl_workspace *w, struct tl_err *err)
{
    static const char op[] = "workspace_create";
    struct tl_db_stmt *st = NULL;
    char agent_id[TL_ID_MAX];
    int ret;

    tl__lock(s);
    tl_id_new(w->id, "ws");
    tl_id_new(agent_id, "ag");
    w->created_at = w->updated_at = tl_now_ms();
    if (!w->region[0])
        tl_strlcpy(w->region, "eu", sizeof w->region);

    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = tl__prep(s, op,
                   "INSERT INTO workspaces (id, name, plan, region, created_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                   &st, err);
    if (ret != 0)
        goto out;
    ret = tl__step_fin(s, op, &st,
                       tl__bind_str(st, 1, w->id) || tl__bind_str(st, 2, w->name) ||
                           tl__bind_str(st, 3, tl__opt_name(tl_plan_name(w->plan))) ||
                           tl__bind_str(st, 4, w->region) || tl_db_bind_int64(st, 5, w->created_at),
                       err);
    if (ret != 0)
        goto out;

    /* every workspace starts with something a number can be pointed at right away */
    ret = tl__prep(s, op,
                   "INSERT INTO agents (id, workspace_id, name, kind, builtin, created_at, "
                   "updated_at) VALUES (?1, ?2, 'echo', ?3, 'echo', ?4, ?4)",
                   &st, err);
    if (ret != 0)
        goto out;
    ret =
        tl__step_fin(s, op, &st,
                     tl__bind_str(st, 1, agent_id) || tl__bind_str(st, 2, w->id) ||
                         tl__bind_str(st, 3, tl__opt_name(tl_agent_kind_name(TL_AGENT_BUILTIN))) ||
                         tl_db_bind_int64(st, 4, w->created_at),
                     err);
    if (ret != 0)
        goto out;
    ret = tl__tx_commit(s, op, err);
out:
    tl__tx_end(s, st);
    return ret;
}

int tl_store_workspace_get(struct tl_store *s, const char *id, struct tl_workspace *out)
{
    tl__lock(s);
    int ret = ws_read(s, id, out, NULL);
    tl__unlock(s);
    return ret;
}

int tl_store_workspace_update(struct tl_store *s, struct tl_workspace *w, struct tl_err *err)
{
    static const char op[] = "workspace_update";
    struct tl_db_stmt *st = NULL;
    int ret;

    tl__lock(s);
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
    ret = tl__prep(s, op,
                   "UPDATE workspaces SET name = ?1, plan = ?2, "
                   "region = coalesce(nullif(?3, ''), region), updated_at = ?4, "
                   "outbound_prefixes_json = ?6 WHERE id = ?5",
                   &st, err);
    if (ret == 0)
        ret = tl__step_fin(s, op, &st,
                           tl__bind_str(st, 1, w->name) ||
                               tl__bind_str(st, 2, tl__opt_name(tl_plan_name(w->plan))) ||
                               tl__bind_str(st, 3, w->region) ||
                               tl_db_bind_int64(st, 4, w->updated_at) ||
                               tl__bind_str(st, 5, w->id) || tl__bind_str(st, 6, prefixes),
                           err);
    free(prefixes);
    if (ret != 0)
        goto out;
    if (tl_db_changes(s->db) == 0) {
        ret = tl__not_found(err, "workspace");
        goto out;
    }
    ret = ws_read(s, w->id, w, err);
out:
    tl_db_finalize(st);
    tl__unlock(s);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_WORKSPACE_UPDATED, w->id, w->id, NULL);
    return ret;
}

int tl_store_workspace_country_codes(struct tl_store *s, const char *workspace_id,
                                     char (*out)[TL_PREFIX_MAX + 1], size_t cap, size_t *n)
{
    static const char op[] = "workspace_country_codes";
    struct tl_db_stmt *st = NULL;
    *n = 0;
    tl__lock(s);
    /* a country code has at most 3 digits: the distinct 4-byte heads are few, however many
     * numbers the workspace holds */
    int ret = tl__prep(
        s, op, "SELECT DISTINCT substr(number, 1, 4) FROM phone_numbers WHERE workspace_id = ?1",
        &st, NULL);
    if (ret == 0 && tl__bind_str(st, 1, workspace_id))
        ret = tl__db_fail(s, op, NULL);
    int rc;
    while (ret == 0 && (rc = tl_db_step(st)) == TL_DB_ROW) {
        char cc[TL_CC_MAX + 1];
        if (tl_e164_country_code(tl__col_str(st, 0), cc))
            continue;
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = !strcmp(out[i], cc);
        if (!seen && *n < cap)
            tl_strlcpy(out[(*n)++], cc, TL_PREFIX_MAX + 1);
    }
    if (ret == 0 && rc != TL_DB_DONE)
        ret = tl__db_fail(s, op, NULL);
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

int tl_store_workspace_list(struct tl_store *s, const struct tl_page *pg, tl_workspace_cb cb,
                            void *arg, char next_cursor[TL_CURSOR_MAX], struct tl_err *err)
{
    struct tl_workspace *items;
    size_t n;
    int ret = tl__list_page(
        s, "workspace_list",
        s->version >= 6 ? "SELECT " WS_COLS6 " FROM workspaces WHERE seq > ?1 ORDER BY seq LIMIT ?2"
                        : "SELECT " WS_COLS " FROM workspaces WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        NULL, 0, pg, sizeof *items, tl__ws_row, (void **)&items, &n, next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}
