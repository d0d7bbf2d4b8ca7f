/* store: agents, their sealed header values. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

/* ---- agents ---- */

static int ag_read(struct tl_store *s, const char *op, const char *ws, const char *id,
                   struct tl_agent *out, bool open_values, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {ws, id};
    int64_t seq;
    int ret = tl__row_one(s, op,
                          "SELECT " AG_COLS ", headers_sealed FROM agents "
                          "WHERE workspace_id = ?1 AND id = ?2",
                          args, 2, &st, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "agent");
    if (ret == 0)
        ret = tl__ag_row(st, out, &seq, err);
    if (ret != 0 || !open_values || tl_db_column_is_null(st, AG_COL_SEALED))
        goto out;
    /* the sealed blob is authoritative: names and values come from it together */
    const void *b = tl_db_column_blob(st, AG_COL_SEALED);
    int len = tl_db_column_bytes(st, AG_COL_SEALED);
    if (!b || len < TL_SEAL_OVERHEAD || len > HDR_SEALED_MAX ||
        tl__headers_open(s, out->id, b, (size_t)len, out->headers, &out->n_headers) != 0) {
        ret = tl__corrupt(op, out->id, "headers_sealed", err);
        goto out;
    }
    out->values_hidden = false;
out:
    tl_db_finalize(st);
    return ret;
}

/* agent of this workspace? EINVAL for the caller's "agent_id" field otherwise */
int tl__check_agent(struct tl_store *s, const char *op, const char *ws, const char *agent_id,
                    struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    const char *args[] = {ws, agent_id};
    int ret = tl__row_one(s, op, "SELECT 1 FROM agents WHERE workspace_id = ?1 AND id = ?2", args,
                          2, &st, err);
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
    int ret = tl__params_to_json(a, &params);
    if (ret == 0)
        ret = tl__header_names_to_json(a, &names);
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
        ret = tl__headers_seal(s, a->id, a->headers, a->n_headers, sealed, &sealed_len);
        if (ret != 0) {
            ret = tl_err_set(err, EINVAL, 400, "invalid_field", "headers",
                             "A header name or value is too long.");
            goto out;
        }
    }
    if (tl__bind_str(st, first, a->name) ||
        tl__bind_str(st, first + 1, tl__opt_name(tl_agent_kind_name(a->kind))) ||
        tl__bind_str(st, first + 2, a->builtin) || tl__bind_str(st, first + 3, a->url) ||
        tl__bind_str(st, first + 4, params) || tl__bind_str(st, first + 5, names) ||
        tl__bind_blob(st, first + 6, sealed, sealed_len, sealed != NULL) ||
        tl_db_bind_int64(st, first + 7, a->connect_timeout_ms) ||
        tl__bind_str(st, first + 8, a->method_get ? "GET" : "POST") ||
        tl__bind_str(st, first + 9, a->fallback_url) ||
        tl__bind_str(st, first + 10, a->status_callback))
        ret = tl__db_fail(s, op, err);
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
        ret = tl__step_fin(s, op, st, 0, err);
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
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

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = tl__ws_plan(s, op, a->workspace_id, &plan, err);
    if (ret != 0)
        goto out;
    tl_id_new(a->id, "ag");
    a->created_at = a->updated_at = tl_now_ms();
    ret = tl__prep(s, op,
                   "INSERT INTO agents (id, workspace_id, name, kind, builtin, url, params_json, "
                   "header_names_json, headers_sealed, connect_timeout_ms, voice_method, "
                   "fallback_url, status_callback, created_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
                   &st, err);
    if (ret != 0)
        goto out;
    if (tl__bind_str(st, 1, a->id) || tl__bind_str(st, 2, a->workspace_id) ||
        tl_db_bind_int64(st, 14, a->created_at)) {
        ret = tl__db_fail(s, op, err);
        goto out;
    }
    ret = ag_write(s, op, &st, 3, a, err);
out:
    tl__tx_end(s, st);
    return ret;
}

int tl_store_agent_get(struct tl_store *s, const char *workspace_id, const char *id,
                       struct tl_agent *out)
{
    tl__lock(s);
    int ret = ag_read(s, "agent_get", workspace_id, id, out, false, NULL);
    tl__unlock(s);
    return ret;
}

int tl_store_agent_secrets(struct tl_store *s, const char *workspace_id, const char *id,
                           struct tl_agent *out)
{
    tl__lock(s);
    int ret = ag_read(s, "agent_secrets", workspace_id, id, out, true, NULL);
    tl__unlock(s);
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
    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
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
    ret = tl__prep(
        s, op,
        "UPDATE agents SET name = ?1, kind = ?2, builtin = ?3, url = ?4, params_json = ?5, "
        "header_names_json = ?6, headers_sealed = ?7, connect_timeout_ms = ?8, "
        "voice_method = ?9, fallback_url = ?10, status_callback = ?11, "
        "updated_at = ?12 WHERE workspace_id = ?13 AND id = ?14",
        &st, err);
    if (ret != 0)
        goto out;
    if (tl_db_bind_int64(st, 12, a->updated_at) || tl__bind_str(st, 13, a->workspace_id) ||
        tl__bind_str(st, 14, a->id)) {
        ret = tl__db_fail(s, op, err);
        goto out;
    }
    ret = ag_write(s, op, &st, 1, a, err);
out:
    tl__tx_end(s, st);
    sodium_memzero(stored, sizeof *stored);
    free(stored);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_AGENT_UPDATED, a->workspace_id, a->id, NULL);
    return ret;
}

int tl_store_agent_delete(struct tl_store *s, const char *workspace_id, const char *id,
                          struct tl_err *err)
{
    static const char op[] = "agent_delete";
    struct tl_db_stmt *st = NULL;
    int64_t in_use = 0;
    int ret;

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = tl__check_agent(s, op, workspace_id, id, err);
    if (ret == EINVAL)
        ret = tl__not_found(err, "agent");
    if (ret != 0)
        goto out;
    ret = tl__prep(s, op,
                   "SELECT count(*) FROM phone_numbers WHERE workspace_id = ?1 AND agent_id = ?2",
                   &st, err);
    if (ret != 0)
        goto out;
    if (tl__bind_str(st, 1, workspace_id) || tl__bind_str(st, 2, id) ||
        tl_db_step(st) != TL_DB_ROW) {
        ret = tl__db_fail(s, op, err);
        goto out;
    }
    in_use = tl_db_column_int64(st, 0);
    tl__fin(&st);
    if (in_use > 0) {
        ret = tl_err_set(err, EBUSY, 409, "agent_in_use", "",
                         "This agent answers %lld phone number%s; assign %s to another agent "
                         "or unassign %s first.",
                         (long long)in_use, in_use == 1 ? "" : "s", in_use == 1 ? "it" : "them",
                         in_use == 1 ? "it" : "them");
        goto out;
    }
    ret = tl__exec_args(s, op, "DELETE FROM agents WHERE workspace_id = ?1 AND id = ?2",
                        (const char *[]){workspace_id, id}, 2, err);
    /* PostgreSQL's transactions do not lock what the count read: a number pointed at the
     * agent since then makes the composite foreign key refuse the delete, which is the
     * same conflict */
    if (ret != 0 && tl_db_last_error(s->db) == TL_DB_E_FOREIGN_KEY)
        ret = tl_err_set(err, EBUSY, 409, "agent_in_use", "",
                         "This agent answers a phone number; assign it to another agent or "
                         "unassign it first.");
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
out:
    tl__tx_end(s, st);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_AGENT_DELETED, workspace_id, id, NULL);
    return ret;
}

int tl_store_agent_list(struct tl_store *s, const char *workspace_id, const struct tl_page *pg,
                        tl_agent_cb cb, void *arg, char next_cursor[TL_CURSOR_MAX],
                        struct tl_err *err)
{
    struct tl_agent *items;
    size_t n;
    int ret = tl__list_page(s, "agent_list",
                            "SELECT " AG_COLS " FROM agents WHERE workspace_id = ?1 AND seq > ?2 "
                            "ORDER BY seq LIMIT ?3",
                            &workspace_id, 1, pg, sizeof *items, tl__ag_row, (void **)&items, &n,
                            next_cursor, err);
    for (size_t i = 0; ret == 0 && i < n; i++)
        ret = cb(&items[i], arg);
    free(items);
    return ret;
}
