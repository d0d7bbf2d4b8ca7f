/* store: phone numbers with their trunk configuration and sealed passwords. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <sodium.h>

#include "store/store_int.h"

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
    int ret = tl__row_one(s, op,
                          ws ? "SELECT " PN_COLS ", outbound_password, inbound_password "
                               "FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2"
                             : "SELECT " PN_COLS ", outbound_password, inbound_password "
                               "FROM phone_numbers WHERE number = ?2",
                          args, 2, &st, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "phone number");
    if (ret == 0)
        ret = tl__pn_row(st, &out->n, &seq, err);
    if (ret == 0 && (tl__col_sealed(st, PN_COL_OUT_PW, &out->out_pw) != 0 ||
                     tl__col_sealed(st, PN_COL_IN_PW, &out->in_pw) != 0))
        ret = tl__corrupt(op, out->n.id, "sealed password", err);
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
        if (tl__seal_password(s, row_id, ad_field, password, out) != 0)
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
    ret = tl__outbound_to_json(&n->outbound, &c->out_json);
    if (ret != 0)
        return trunk_json_err(ret, "outbound_trunk", err);
    if (n->has_inbound) {
        ret = tl__inbound_to_json(&n->inbound, &c->in_json);
        if (ret != 0)
            return trunk_json_err(ret, "inbound_trunk", err);
    }
    return 0;
}

/* outbound_json, outbound_password, inbound_json, inbound_password at first..first+3 */
static int pn_trunks_bind(struct tl_db_stmt *st, int first, const struct pn_trunks *c)
{
    return tl__bind_str(st, first, c->out_json) ||
           tl__bind_blob(st, first + 1, c->out_pw.buf, c->out_pw.len, c->out_pw.present) ||
           tl__bind_opt(st, first + 2, c->in_json) ||
           tl__bind_blob(st, first + 3, c->in_pw.buf, c->in_pw.len, c->in_pw.present);
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

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = tl__ws_plan(s, op, n->workspace_id, &plan, err);
    if (ret != 0)
        goto out;
    if (n->source == TL_SOURCE_SIP_TRUNK && !tl_plan_allows_sip_import(plan)) {
        ret = tl_err_set(err, EPERM, 403, "plan_required", "",
                         "Importing SIP trunk numbers needs the professional plan or higher; "
                         "this workspace is on %s.",
                         tl__opt_name(tl_plan_name(plan)));
        goto out;
    }
    const char *number = n->number;
    ret = tl__row_one(s, op, "SELECT 1 FROM phone_numbers WHERE number = ?1", &number, 1, &st, err);
    if (ret == 0)
        ret = number_taken(err, n->number);
    else if (ret == ENOENT)
        ret = 0;
    if (ret != 0)
        goto out;
    tl__fin(&st);
    if (n->agent_id[0]) {
        ret = tl__check_agent(s, op, n->workspace_id, n->agent_id, err);
        if (ret != 0)
            goto out;
    }

    tl_id_new(n->id, "pn");
    n->created_at = n->updated_at = tl_now_ms();
    ret = pn_trunks_make(s, n, NULL, &c, NULL, err);
    if (ret != 0)
        goto out;

    ret = tl__prep(s, op,
                   "INSERT INTO phone_numbers (id, workspace_id, number, label, source, agent_id, "
                   "outbound_json, outbound_password, inbound_json, inbound_password, created_at, "
                   "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                   &st, err);
    if (ret != 0)
        goto out;
    if (tl__bind_str(st, 1, n->id) || tl__bind_str(st, 2, n->workspace_id) ||
        tl__bind_str(st, 3, n->number) || tl__bind_str(st, 4, n->label) ||
        tl__bind_str(st, 5, tl__opt_name(tl_source_name(n->source))) ||
        tl__bind_opt(st, 6, n->agent_id) || pn_trunks_bind(st, 7, &c) ||
        tl_db_bind_int64(st, 11, n->created_at)) {
        ret = tl__db_fail(s, op, err);
        goto out;
    }
    int rc = tl_db_step(st);
    if (rc == TL_DB_E_UNIQUE) {
        ret = number_taken(err, n->number);
        goto out;
    }
    if (rc != TL_DB_DONE) {
        ret = tl__db_fail(s, op, err);
        goto out;
    }
    tl__fin(&st);
    ret = tl__tx_commit(s, op, err);
    /* hand back what was stored: has_password set, plain passwords gone from memory */
    if (ret == 0)
        ret = pn_read_public(s, op, n->workspace_id, n->id, n, err);
out:
    tl__tx_end(s, st);
    pn_trunks_free(&c);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_NUMBER_CREATED, n->workspace_id, n->id, n->number);
    return ret;
}

int tl_store_number_get(struct tl_store *s, const char *workspace_id, const char *id,
                        struct tl_phone_number *out)
{
    tl__lock(s);
    int ret = pn_read_public(s, "number_get", workspace_id, id, out, NULL);
    tl__unlock(s);
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
    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = pn_read(s, op, n->workspace_id, n->id, old, err);
    if (ret != 0)
        goto out;
    if (n->agent_id[0]) {
        ret = tl__check_agent(s, op, n->workspace_id, n->agent_id, err);
        if (ret != 0)
            goto out;
    }
    ret = pn_trunks_make(s, n, old, &c, w, err);
    if (ret != 0)
        goto out;
    n->updated_at = tl_now_ms();
    /* number and source are identity, not configuration: never changed here */
    ret = tl__prep(s, op,
                   "UPDATE phone_numbers SET label = ?1, agent_id = ?2, outbound_json = ?3, "
                   "outbound_password = ?4, inbound_json = ?5, inbound_password = ?6, "
                   "updated_at = ?7 WHERE workspace_id = ?8 AND id = ?9",
                   &st, err);
    if (ret != 0)
        goto out;
    ret = tl__step_fin(s, op, &st,
                       tl__bind_str(st, 1, n->label) || tl__bind_opt(st, 2, n->agent_id) ||
                           pn_trunks_bind(st, 3, &c) || tl_db_bind_int64(st, 7, n->updated_at) ||
                           tl__bind_str(st, 8, n->workspace_id) || tl__bind_str(st, 9, n->id),
                       err);
    if (ret != 0)
        goto out;
    ret = tl__tx_commit(s, op, err);
    if (ret == 0)
        ret = pn_read_public(s, op, n->workspace_id, n->id, n, err);
out:
    tl__tx_end(s, st);
    pn_trunks_free(&c);
    free(old);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_NUMBER_REPLACED, n->workspace_id, n->id, n->number);
    return ret;
}

int tl_store_number_set_agent(struct tl_store *s, const char *workspace_id, const char *id,
                              const char *agent_id, struct tl_phone_number *out, struct tl_err *err)
{
    static const char op[] = "number_set_agent";
    struct tl_db_stmt *st = NULL;
    char number[TL_E164_MAX + 1] = "";
    int ret;

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    if (agent_id && agent_id[0]) {
        ret = tl__check_agent(s, op, workspace_id, agent_id, err);
        if (ret != 0)
            goto out;
    }
    ret = tl__prep(s, op,
                   "UPDATE phone_numbers SET agent_id = ?1, updated_at = ?2 "
                   "WHERE workspace_id = ?3 AND id = ?4",
                   &st, err);
    if (ret != 0)
        goto out;
    ret = tl__step_fin(s, op, &st,
                       tl__bind_opt(st, 1, agent_id) || tl_db_bind_int64(st, 2, tl_now_ms()) ||
                           tl__bind_str(st, 3, workspace_id) || tl__bind_str(st, 4, id),
                       err);
    if (ret != 0)
        goto out;
    if (tl_db_changes(s->db) == 0) {
        ret = tl__not_found(err, "phone number");
        goto out;
    }
    /* the E.164 for the change hook (the routing cache is keyed by it) */
    ret = tl__row_one(s, op, "SELECT number FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2",
                      (const char *[]){workspace_id, id}, 2, &st, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "phone number");
    if (ret != 0)
        goto out;
    tl__col_text(st, 0, number, sizeof number);
    tl__fin(&st);
    ret = tl__tx_commit(s, op, err);
    if (ret == 0 && out)
        ret = pn_read_public(s, op, workspace_id, id, out, err);
out:
    tl__tx_end(s, st);
    if (ret == 0)
        tl__notify(s, TL_CHANGE_NUMBER_ASSIGNED, workspace_id, id, number);
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

    tl__lock(s);
    ret = tl__tx_begin(s, op, err);
    if (ret != 0)
        goto out;
    ret = tl__row_one(
        s, op, "SELECT source, number FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2", args,
        2, &st, err);
    if (ret == ENOENT)
        ret = tl__not_found(err, "phone number");
    if (ret != 0)
        goto out;
    int src = tl_source_parse(tl__col_str(st, 0));
    tl__col_text(st, 1, number, sizeof number);
    tl__fin(&st);
    if (src < 0) {
        ret = tl__corrupt(op, id, "source", err);
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
    ret = tl__exec_args(s, op, "DELETE FROM phone_numbers WHERE workspace_id = ?1 AND id = ?2",
                        args, 2, err);
    if (ret == 0)
        ret = tl__tx_commit(s, op, err);
out:
    tl__tx_end(s, st);
    if (ret == 0)
        tl__notify(
            s, allowed == TL_SOURCE_PLATFORM ? TL_CHANGE_NUMBER_RELEASED : TL_CHANGE_NUMBER_DELETED,
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
    tl__lock(s);
    ret = pn_read(s, op, NULL, number_e164, p, NULL);
    if (ret == 0 &&
        (tl__open_password(s, p->n.id, "outbound_password", &p->out_pw, p->n.outbound.password) ||
         (p->n.has_inbound &&
          tl__open_password(s, p->n.id, "inbound_password", &p->in_pw, p->n.inbound.password)))) {
        /* wrong master key or a tampered row: never fall back to "no password" */
        ret = tl__corrupt(op, p->n.id, "password does not open", NULL);
    }
    tl__unlock(s);
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
    int ret = tl__list_page(s, "number_list",
                            "SELECT " PN_COLS " FROM phone_numbers WHERE " PN_LIST_WHERE, args, 4,
                            pg, sizeof *items, tl__pn_row, (void **)&items, &n, next_cursor, err);
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
    int ret = tl__pn_row(st, &p->n, seq, err);
    memset(&p->ev, 0, sizeof p->ev);
    if (ret == 0 && !tl_db_column_is_null(st, 14)) {
        tl__col_text(st, 14, p->ev.id, sizeof p->ev.id);
        tl__col_text(st, 15, p->ev.code, sizeof p->ev.code);
        tl__col_text(st, 16, p->ev.message, sizeof p->ev.message);
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
    int ret = tl__list_page(
        s, "number_list_latest",
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

int tl_store_number_secrets_each(struct tl_store *s, tl_number_cb cb, void *arg)
{
    static const char op[] = "number_secrets_each";
    struct tl_db_stmt *st = NULL;
    char(*nums)[TL_E164_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    int ret;

    /* the numbers first, then one locked read each: the lock is never held across cb */
    tl__lock(s);
    ret = tl__prep(s, op, "SELECT number FROM phone_numbers ORDER BY seq", &st, NULL);
    while (ret == 0) {
        int rc = tl_db_step(st);
        if (rc == TL_DB_DONE)
            break;
        if (rc != TL_DB_ROW) {
            ret = tl__db_fail(s, op, NULL);
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
        tl__col_text(st, 0, nums[n++], sizeof nums[0]);
    }
    tl_db_finalize(st);
    tl__unlock(s);

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
