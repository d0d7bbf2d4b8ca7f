/* handlers_numbers: the /v1/phone-numbers routes — import, list, show, edit (PUT
 * replaces the trunk configuration), reassign (PATCH agent_id/label), delete, release.
 *
 * A struct tl_phone_number is ~20 KiB (two trunks with header and address tables), so
 * handlers keep them on the heap. Decoded requests may carry trunk passwords in plain
 * text: they are wiped before they are freed. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/codec.h"

static struct tl_phone_number *number_new(struct tl_api_resp *out)
{
    struct tl_phone_number *n = calloc(1, sizeof *n);
    if (!n)
        tl_api_reply(out, 500, NULL);
    return n;
}

static void number_free(struct tl_phone_number *n)
{
    if (!n)
        return;
    explicit_bzero(n, sizeof *n);
    free(n);
}

/* The number as stored (has_password, never a password), with the write's warnings. */
static void reply_number(struct tl_api_req *r, struct tl_api_resp *out, int status, const char *ws,
                         const char *id, const struct tl_warnings *w)
{
    struct tl_phone_number *n = number_new(out);
    if (!n)
        return;
    int rc = tl_store_number_get(r->store, ws, id, n);
    struct tl_warnings rw = {0};
    if (!rc && !w && n->has_inbound) { /* a read: the stored trunk's risk stays visible */
        tl_inbound_open_warning(&n->inbound, "inbound_trunk", &rw);
        w = &rw;
    }
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, status, tl_codec_number_encode(n, w && w->n ? w : NULL));
    number_free(n);
}

/* A list item: the number, and its newest diagnostic event in brief (null when it has
 * none), so that a list shows which numbers have trouble without a request per number. */
static int add_number(const struct tl_phone_number *n, const struct tl_event_brief *ev, void *arg)
{
    struct tl_warnings w = {0};
    if (n->has_inbound)
        tl_inbound_open_warning(&n->inbound, "inbound_trunk", &w);
    json_t *j = tl_codec_number_encode(n, w.n ? &w : NULL);
    if (!j)
        return ENOMEM;
    json_t *e = json_null();
    if (ev) {
        char at[32];
        tl_time_iso(ev->created_at, at);
        e = json_pack("{s:s, s:s, s:s%, s:s}", "id", ev->id, "code", ev->code, "message",
                      ev->message, strlen(ev->message), "created_at", at);
    }
    if (!e || json_object_set_new(j, "latest_event", e) || json_array_append_new(arg, j)) {
        json_decref(j);
        return ENOMEM;
    }
    return 0;
}

void tl_h_number_list(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    struct tl_number_filter f = {0};
    char ws[TL_ID_MAX], next[TL_CURSOR_MAX] = "";

    if (tl_api_scope(r, ws, out) || tl_api_page(r, &pg, out))
        return;
    f.agent_id = tl_api_query(r, "agent_id");
    f.number = tl_api_query(r, "number");
    f.q = tl_api_query(r, "q");
    if (f.agent_id && !tl_id_valid(f.agent_id, "ag")) {
        tl_api_error(out, 400, "invalid_field", "agent_id", "agent_id is not an agent id (ag_…)");
        return;
    }
    if (f.number && tl_valid_e164(f.number, "number", &err)) {
        tl_api_fail(out, &err);
        return;
    }
    if (f.q && strnlen(f.q, TL_NAME_MAX + 1) > TL_NAME_MAX) {
        tl_api_error(out, 400, "invalid_field", "q", "q is longer than %d bytes", TL_NAME_MAX);
        return;
    }
    json_t *data = json_array();
    int rc =
        data ? tl_store_number_list_latest(r->store, ws, &f, &pg, add_number, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}

void tl_h_number_import(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    struct tl_warnings w = {0};
    struct tl_phone_number *n = NULL;
    char ws[TL_ID_MAX];
    bool agent_given = false;
    json_t *j = NULL;
    int rc;

    if (tl_api_scope(r, ws, out))
        goto out;
    j = tl_api_body(r, out);
    if (!j)
        goto out;
    n = number_new(out);
    if (!n)
        goto out;
    /* only the operator may create platform numbers (bought through us, not imported) */
    rc =
        tl_codec_number_decode(j, true, r->tok.role == TL_ROLE_OPERATOR, n, &agent_given, &w, &err);
    if (!rc) {
        tl_strlcpy(n->workspace_id, ws, sizeof n->workspace_id);
        rc = tl_store_number_create(r->store, n, &err); /* plan, number_taken, agent */
    }
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    snprintf(out->location, sizeof out->location, "/v1/phone-numbers/%s", n->id);
    reply_number(r, out, 201, ws, n->id, &w);
out:
    json_decref(j);
    number_free(n);
}

void tl_h_number_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    reply_number(r, out, 200, ws, r->id, NULL);
}

/* The start of an edit (PUT, PATCH) of the number r->id: the stored number into *n, then
 * the body into *j. 0, or -1 with out filled; the caller frees what is set either way. */
static int edit_start(struct tl_api_req *r, struct tl_api_resp *out, char ws[TL_ID_MAX],
                      struct tl_phone_number **n, json_t **j)
{
    if (tl_api_scope(r, ws, out))
        return -1;
    *n = number_new(out);
    if (!*n)
        return -1;
    /* 404 before the body is judged: a foreign id must learn nothing */
    int rc = tl_store_number_get(r->store, ws, r->id, *n);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return -1;
    }
    *j = tl_api_body(r, out);
    return *j ? 0 : -1;
}

/* PUT: the edit form. Replaces label and both trunk configurations; the agent stays
 * unless the body names one, and the number itself never changes (a different number is
 * an import). */
void tl_h_number_put(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    struct tl_warnings w = {0};
    struct tl_phone_number *old = NULL, *n = NULL;
    char ws[TL_ID_MAX];
    bool agent_given = false;
    json_t *j = NULL;
    int rc;

    if (edit_start(r, out, ws, &old, &j))
        goto out;
    n = number_new(out);
    if (!n)
        goto out;
    rc = tl_codec_number_decode(j, false, r->tok.role == TL_ROLE_OPERATOR, n, &agent_given, &w,
                                &err);
    if (rc) {
        tl_api_fail(out, &err);
        goto out;
    }
    if (n->number[0] && strcmp(n->number, old->number) != 0) {
        tl_api_error(out, 400, "invalid_field", "number",
                     "the number itself cannot change; import the new number instead");
        goto out;
    }
    tl_strlcpy(n->id, old->id, sizeof n->id);
    tl_strlcpy(n->workspace_id, ws, sizeof n->workspace_id);
    tl_strlcpy(n->number, old->number, sizeof n->number);
    n->source = old->source;
    if (!agent_given)
        tl_strlcpy(n->agent_id, old->agent_id, sizeof n->agent_id);
    rc = tl_store_number_replace(r->store, n, &w, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    reply_number(r, out, 200, ws, r->id, &w);
out:
    json_decref(j);
    number_free(old);
    number_free(n);
}

/* A member name quoted back in an error: at most 64 bytes, cut before a partial UTF-8
 * character so that the answer stays valid JSON text. */
static void member_name(char out[65], const char *key)
{
    size_t n = strnlen(key, 65);
    if (n > 64) {
        n = 64;
        while (n > 0 && ((unsigned char)key[n] & 0xC0) == 0x80)
            n--; /* key[n] now starts the character that did not fit */
    }
    memcpy(out, key, n);
    out[n] = '\0';
}

/* PATCH: {"agent_id": "ag_…" | null, "label": "…"} and nothing else — the reassign and
 * rename actions of the numbers list, which must not need the trunk form. */
void tl_h_number_patch(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    struct tl_phone_number *n = NULL;
    char ws[TL_ID_MAX], agent[TL_ID_MAX] = "";
    const char *label = NULL;
    bool agent_given = false;
    json_t *j = NULL, *v;
    const char *key;
    int rc;

    if (edit_start(r, out, ws, &n, &j))
        goto out;
    json_object_foreach(j, key, v)
    {
        if (!strcmp(key, "agent_id")) {
            if (json_is_null(v)) {
                agent[0] = '\0';
            } else if (json_is_string(v)) {
                /* an over-long value cannot be an id: let the store refuse it by name */
                if (!tl_strlcpy(agent, json_string_value(v), sizeof agent))
                    tl_strlcpy(agent, "ag_", sizeof agent);
            } else {
                tl_api_error(out, 400, "invalid_type", "agent_id",
                             "agent_id must be an agent id (string) or null to unassign");
                goto out;
            }
            agent_given = true;
        } else if (!strcmp(key, "label")) {
            if (!json_is_string(v)) {
                tl_api_error(out, 400, "invalid_type", "label", "label must be a string");
                goto out;
            }
            label = json_string_value(v);
            if (tl_valid_name(label, false, "label", &err)) {
                tl_api_fail(out, &err);
                goto out;
            }
        } else {
            char name[65];
            member_name(name, key);
            tl_api_error(out, 400, "unknown_field", name,
                         "unknown member \"%s\": PATCH changes agent_id and label only; use "
                         "PUT to edit the trunk configuration",
                         name);
            goto out;
        }
    }
    if (label) {
        /* a rename goes through replace with the stored trunks: no password is given and
         * the usernames are unchanged, so the store keeps the stored passwords */
        tl_strlcpy(n->label, label, sizeof n->label);
        if (agent_given)
            tl_strlcpy(n->agent_id, agent, sizeof n->agent_id);
        rc = tl_store_number_replace(r->store, n, NULL, &err);
    } else if (agent_given) {
        rc = tl_store_number_set_agent(r->store, ws, r->id, agent, n, &err);
    } else {
        rc = 0;
    }
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    reply_number(r, out, 200, ws, r->id, NULL);
out:
    json_decref(j);
    number_free(n);
}

void tl_h_number_delete(struct tl_api_req *r, struct tl_api_resp *out)
{
    tl_api_remove(r, out, tl_store_number_delete);
}

/* Release hands a platform number back (its monthly fee stops); imported SIP numbers are
 * deleted instead, which the store refuses here with 409 release_not_supported. */
void tl_h_number_release(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    struct tl_phone_number *n = NULL;
    char ws[TL_ID_MAX];
    int rc;

    if (tl_api_scope(r, ws, out))
        goto out;
    n = number_new(out);
    if (!n)
        goto out;
    rc = tl_store_number_get(r->store, ws, r->id, n);
    if (!rc)
        rc = tl_store_number_release(r->store, ws, r->id, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    tl_api_reply(out, 200,
                 json_pack("{s:b, s:s, s:s}", "released", 1, "id", n->id, "number", n->number));
out:
    number_free(n);
}
