/* handlers_calls: the read-only routes of call records and diagnostic events —
 * GET /v1/calls (?number_id, paged), GET /v1/calls/{id} and
 * GET /v1/phone-numbers/{id}/events, and GET /v1/events (operator only: the events that
 * matched no number, e.g. number_not_routed). The recorder thread writes them
 * (store/records.h); these only read. Scoped like phone numbers: a workspace token sees its
 * own workspace, the operator names one with ?workspace_id; anything else answers 404. */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>

#include "api/codec.h"

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
    int rc = tl_store_call_get(r->store, ws, r->id, c);
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, 200, tl_codec_call_encode(c));
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
