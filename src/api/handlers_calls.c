/* handlers_calls: call records and diagnostic events — GET /v1/calls (?number_id, paged),
 * GET /v1/calls/{id} (live while the call runs), GET /v1/phone-numbers/{id}/events, and
 * GET /v1/events (operator only: the events that matched no number, e.g.
 * number_not_routed) — and outbound calls: POST /v1/calls places one, POST
 * /v1/calls/{id}/hangup (or DELETE) cancels or hangs up. The recorder thread writes records
 * (store/records.h); the loop owns live calls (call/control.c), reached through
 * api->calls. Scoped like phone numbers: a workspace token sees its own workspace, the
 * operator names one with ?workspace_id; anything else answers 404. */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/codec.h"
#include "store/records.h"

/* the live-call functions the daemon set (a copy: set and cleared under the lock) */
static struct tl_api_calls calls_of(struct tl_api *a)
{
    pthread_mutex_lock(&a->mu);
    struct tl_api_calls c = a->calls;
    pthread_mutex_unlock(&a->mu);
    return c;
}

static int add_call(const struct tl_call_record *c, void *arg)
{
    json_t *j = tl_codec_call_encode(c);
    return j && json_array_append_new(arg, j) == 0 ? 0 : ENOMEM;
}

static int add_event(const struct tl_event *e, void *arg)
{
    json_t *j = tl_codec_event_encode(e);
    return j && json_array_append_new(arg, j) == 0 ? 0 : ENOMEM;
}

void tl_h_call_list(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    char ws[TL_ID_MAX], next[TL_CURSOR_MAX] = "";

    if (tl_api_scope(r, ws, out) || tl_api_page(r, &pg, out))
        return;
    const char *number_id = tl_api_query(r, "number_id");
    if (number_id && !tl_id_valid(number_id, "pn")) {
        tl_api_error(out, 400, "invalid_field", "number_id",
                     "number_id is not a phone number id (pn_…)");
        return;
    }
    json_t *data = json_array();
    int rc =
        data ? tl_store_call_list(r->store, ws, number_id, &pg, add_call, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}

/* The call as it is now: an ended call from the store; a live one from the loop (its
 * record in the store lags by the recorder's batch); a call that ended a moment ago once
 * the recorder has written its end. 0 or an errno (ENOENT: no such call here). */
static int call_now(struct tl_api_req *r, const char *ws, const char *id, struct tl_call_record *c)
{
    struct tl_api_calls calls = calls_of(r->api);
    int rc = tl_store_call_get(r->store, ws, id, c);
    if (rc && rc != ENOENT)
        return rc;
    if (!rc && tl_call_status_final(c->status))
        return 0;
    if (calls.snapshot && !calls.snapshot(calls.arg, ws, id, c))
        return 0;
    if (calls.flush)
        calls.flush(calls.arg);
    return tl_store_call_get(r->store, ws, id, c);
}

void tl_h_call_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    struct tl_call_record *c = calloc(1, sizeof *c);
    if (!c) {
        tl_api_reply(out, 500, NULL);
        return;
    }
    int rc = call_now(r, ws, r->id, c);
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, 200, tl_codec_call_encode(c));
    free(c);
}

/* ---- outbound calls ---- */

/* from: a number of this workspace, by id or E.164, with its trunk password opened */
static int call_number(struct tl_api_req *r, const char *ws, const char *from,
                       struct tl_phone_number *n, struct tl_api_resp *out)
{
    int rc = 0;
    char e164[TL_E164_MAX + 1];
    if (from[0] == 'p') {
        rc = tl_store_number_get(r->store, ws, from, n);
        tl_strlcpy(e164, n->number, sizeof e164);
    } else {
        tl_strlcpy(e164, from, sizeof e164);
    }
    if (!rc)
        rc = tl_store_number_secrets(r->store, e164, n);
    if (!rc && strcmp(n->workspace_id, ws))
        rc = ENOENT; /* another tenant's number reads as no number at all */
    if (rc == ENOENT)
        tl_api_error(out, 400, "invalid_field", "from",
                     "from names no phone number of this workspace: give the id (pn_…) or the "
                     "E.164 of one of its numbers");
    else if (rc)
        tl_api_fail_rc(out, rc, NULL);
    return rc;
}

/* A refusal the API decides (before the call exists): an event on the number, with the
 * same hint the answer's message carries. */
static void refusal_event(struct tl_api_req *r, const struct tl_phone_number *n, const char *code,
                          const char *hint, int status, const char *to)
{
    struct tl_api_calls calls = calls_of(r->api);
    struct tl_event *e = calloc(1, sizeof *e);
    if (!calls.event || !e) {
        free(e);
        return;
    }
    tl_strlcpy(e->workspace_id, n->workspace_id, sizeof e->workspace_id);
    tl_strlcpy(e->number_id, n->id, sizeof e->number_id);
    tl_strlcpy(e->code, code, sizeof e->code);
    tl_strlcpy(e->hint, hint, sizeof e->hint);
    snprintf(e->message, sizeof e->message, "outbound call from %s to %s refused (%d %s)",
             n->number, to, status, code);
    snprintf(e->details, sizeof e->details, "{\"status\":%d,\"source\":\"api\",\"to\":\"%s\"}",
             status, to); /* to: E.164, checked by the codec */
    calls.event(calls.arg, e, "api");
    free(e);
}

/* Toll-fraud guards on the destination (docs/calls.md): never a premium-rate or
 * satellite range of the deny list; else the country codes of the workspace's own numbers,
 * widened by the prefixes the operator allowed it. -1 with out filled. */
static int destination_check(struct tl_api_req *r, const struct tl_workspace *w,
                             const struct tl_call_request *rq, struct tl_api_resp *out)
{
    const char *to = rq->order.to, *hit = NULL;
    char hint[TL_EVENT_HINT_MAX + 1];
    if (tl_prefix_match(to, (const char(*)[TL_PREFIX_MAX + 1]) r->api->deny, r->api->n_deny,
                        &hit)) {
        snprintf(hint, sizeof hint,
                 "%s is in a premium-rate or high-cost range (%s) that this gateway never calls "
                 "(its outbound_deny_prefixes setting), a guard against toll fraud. The "
                 "operator changes that list.",
                 to, hit);
    } else {
        char(*allowed)[TL_PREFIX_MAX + 1] = calloc(2 * TL_PREFIXES_MAX, sizeof *allowed);
        size_t n = 0;
        int rc = allowed ? tl_store_workspace_country_codes(r->store, w->id, allowed,
                                                            TL_PREFIXES_MAX, &n)
                         : ENOMEM;
        if (rc) {
            free(allowed);
            tl_api_fail_rc(out, rc, NULL);
            return -1;
        }
        for (size_t i = 0; i < w->n_out_prefixes && i < TL_PREFIXES_MAX; i++)
            tl_strlcpy(allowed[n++], w->out_prefixes[i], TL_PREFIX_MAX + 1);
        bool ok = tl_prefix_match(to, (const char(*)[TL_PREFIX_MAX + 1]) allowed, n, NULL);
        /* the allowed prefixes as the hint shows them: the first few, then "…" */
        char list[72] = "";
        for (size_t i = 0, used = 0; !ok && i < n; i++) {
            if (used + strlen(allowed[i]) + 2 + 4 >= sizeof list) {
                tl_strlcpy(list + used, ", …", sizeof list - used);
                break;
            }
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                     allowed[i]);
        }
        free(allowed);
        if (ok)
            return 0;
        snprintf(hint, sizeof hint,
                 "%s is outside the destinations this workspace may call (%s): the country codes "
                 "of its own numbers and what the operator added, a guard against toll fraud. "
                 "The operator widens them: PATCH /v1/workspaces/%s {\"outbound_prefixes\": "
                 "[\"+44\"]}.",
                 to, list[0] ? list : "none", w->id);
    }
    refusal_event(r, &rq->number, TL_EV_DESTINATION_NOT_ALLOWED, hint, 403, to);
    tl_api_error(out, 403, "destination_not_allowed", "to", "%s", hint);
    return -1;
}

void tl_h_call_place(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    char ws[TL_ID_MAX];
    struct tl_call_request *rq = NULL;
    struct tl_call_record *rec = NULL;
    struct tl_workspace w;
    json_t *j = NULL;
    int rc;

    if (tl_api_scope(r, ws, out) || !(j = tl_api_body(r, out)))
        goto out;
    if (!(rq = calloc(1, sizeof *rq)) || !(rec = calloc(1, sizeof *rec))) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    if ((rc = tl_codec_call_order_decode(j, &rq->order, &err))) {
        tl_api_fail(out, &err);
        goto out;
    }
    /* the plan gate of SIP trunk imports: calling out through a trunk is the same product */
    if ((rc = tl_store_workspace_get(r->store, ws, &w))) {
        tl_api_fail_rc(out, rc, NULL);
        goto out;
    }
    if (!tl_plan_allows_sip_import(w.plan)) {
        tl_api_error(out, 403, "plan_required", "",
                     "Outbound calls through a SIP trunk need the professional plan or higher; "
                     "this workspace is on %s.",
                     tl_plan_name(w.plan));
        goto out;
    }
    if (call_number(r, ws, rq->order.from, &rq->number, out))
        goto out;
    const char *agent_id = rq->order.agent_id[0] ? rq->order.agent_id : rq->number.agent_id;
    if (!agent_id[0]) {
        tl_api_error(out, 400, "invalid_field", "agent_id",
                     "agent_id is required: the number %s has no agent assigned; name one here "
                     "or assign one to the number",
                     rq->number.number);
        goto out;
    }
    if ((rc = tl_store_agent_secrets(r->store, ws, agent_id, &rq->agent))) {
        if (rc == ENOENT)
            tl_api_error(out, 400, "invalid_field", "agent_id",
                         "agent_id names no agent of this workspace");
        else
            tl_api_fail_rc(out, rc, NULL);
        goto out;
    }
    if (destination_check(r, &w, rq, out))
        goto out;
    tl_store_account_sid(r->store, ws, rq->account_sid);
    struct tl_api_calls calls = calls_of(r->api);
    if (!calls.place) {
        tl_api_error(out, 503, "calls_unavailable", "",
                     "this gateway does not place calls right now (it is starting, stopping, or "
                     "runs without its call layer)");
        out->retry_after = "5";
        goto out;
    }
    rc = calls.place(calls.arg, rq, rec);
    switch (rc) {
    case 0:
        snprintf(out->location, sizeof out->location, "/v1/calls/%s", rec->id);
        tl_api_reply(out, 201, tl_codec_call_encode(rec));
        break;
    case ESHUTDOWN:
        tl_api_error(out, 503, "shutting_down", "",
                     "the gateway is stopping (draining its calls); place the call through "
                     "another node or try again");
        out->retry_after = "30";
        break;
    case ENOSPC:
        tl_api_error(out, 503, "capacity", "",
                     "the gateway carries as many calls as it may (max_calls); try again later");
        out->retry_after = "30";
        break;
    case EINVAL:
        tl_api_error(out, 400, "invalid_field", "agent_id",
                     "the agent's kind cannot take calls on this gateway");
        break;
    case EBUSY: /* the loop wrote the event */
        tl_api_error(out, 429, "outbound_rate", "",
                     "the workspace has as many outbound calls going as it may "
                     "(outbound_calls_per_workspace); try again when one has ended");
        out->retry_after = "10";
        break;
    case EAGAIN:
        tl_api_error(out, 429, "outbound_rate", "",
                     "the workspace has started as many outbound calls this minute as it may "
                     "(outbound_calls_per_minute); try again later");
        out->retry_after = "10";
        break;
    case ETIMEDOUT:
        tl_api_error(out, 503, "busy", "", "the gateway did not take the call in time; try again");
        out->retry_after = "1";
        break;
    default:
        tl_api_fail_rc(out, rc, NULL);
    }
out:
    json_decref(j);
    if (rq) {
        sodium_memzero(rq, sizeof *rq); /* the trunk password, the agent's header values */
        free(rq);
    }
    free(rec);
}

/* Cancels a call not yet answered (queued, dialing, ringing: CANCEL) or hangs up one in
 * progress (BYE). A call that has ended already answers as it is: hanging up twice is no
 * error. */
void tl_h_call_hangup(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX], status[16];
    if (tl_api_scope(r, ws, out))
        return;
    struct tl_call_record *c = calloc(1, sizeof *c);
    if (!c) {
        tl_api_reply(out, 500, NULL);
        return;
    }
    struct tl_api_calls calls = calls_of(r->api);
    int rc = calls.control ? calls.control(calls.arg, ws, r->id, TL_API_CALL_HANGUP, NULL, status)
                           : ENOENT;
    if (rc && rc != ENOENT) {
        tl_api_fail_rc(out, rc, NULL);
    } else {
        if (calls.flush)
            calls.flush(calls.arg); /* the end the loop just queued */
        rc = tl_store_call_get(r->store, ws, r->id, c);
        if (rc)
            tl_api_fail_rc(out, rc, NULL);
        else
            tl_api_reply(out, 200, tl_codec_call_encode(c));
    }
    free(c);
}

void tl_h_number_events(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    char ws[TL_ID_MAX], next[TL_CURSOR_MAX] = "";

    if (tl_api_scope(r, ws, out) || tl_api_page(r, &pg, out))
        return;
    json_t *data = json_array();
    int rc = data ? tl_store_event_list(r->store, ws, r->id, &pg, add_event, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}

/* The route table admits operator tokens only (403 forbidden for the others), so no scope. */
void tl_h_operator_events(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    char next[TL_CURSOR_MAX] = "";

    if (tl_api_page(r, &pg, out))
        return;
    json_t *data = json_array();
    int rc = data ? tl_store_event_list_operator(r->store, &pg, add_event, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}
