/* codec: JSON (jansson) <-> domain objects, with validation. Pure: no I/O, no store.
 *
 * Decoders refuse unknown members (400 unknown_field naming the path: typos must not
 * vanish silently), wrong types (400 invalid_type), and every rule in store/validate.c,
 * with err->field set to the JSON path ("outbound_trunk.headers[2].name").
 * Encoders never emit a password or a sealed header value. */
#ifndef TL_CODEC_H
#define TL_CODEC_H

#include <jansson.h>

#include "store/store.h"

/* Parses a request body: size already capped by the server; refuses nesting deeper than
 * TL_JSON_DEPTH_MAX before jansson sees it, duplicate keys, and non-object roots. */
#define TL_JSON_DEPTH_MAX 8
json_t *tl_json_parse_body(const char *body, size_t len, struct tl_err *err);

/* POST /v1/phone-numbers and PUT /v1/phone-numbers/{id}.
 * import: "number" required; PUT: "number" optional but must equal the stored one (the
 * handler checks), "source" refused unless allow_platform (operator) */
int tl_codec_number_decode(const json_t *j, bool is_import, bool allow_platform,
                           struct tl_phone_number *out, bool *agent_given, struct tl_warnings *w,
                           struct tl_err *err);
json_t *tl_codec_number_encode(const struct tl_phone_number *n, const struct tl_warnings *w);

/* POST /v1/agents (is_create) and PATCH /v1/agents/{id} (merges into *out as read) */
int tl_codec_agent_decode(const json_t *j, bool is_create, struct tl_agent *out,
                          struct tl_err *err);
json_t *tl_codec_agent_encode(const struct tl_agent *a, const struct tl_warnings *w);

/* POST /v1/workspaces and PATCH /v1/workspaces/{id} (merge) */
int tl_codec_workspace_decode(const json_t *j, bool is_create, struct tl_workspace *out,
                              struct tl_err *err);
json_t *tl_codec_workspace_encode(const struct tl_workspace *w);

/* POST /v1/tokens: {role, name, workspace_id?} */
int tl_codec_token_decode(const json_t *j, struct tl_token *out, struct tl_err *err);
/* secret != NULL only in the creation response */
json_t *tl_codec_token_encode(const struct tl_token *t, const char *secret);

/* POST /v1/calls: {from, to, agent_id?, parameters?, headers?, ringing_timeout_s?,
 * max_duration_s?}; from is a pn_… id (checked by the handler) or E.164 */
int tl_codec_call_order_decode(const json_t *j, struct tl_call_order *out, struct tl_err *err);
/* GET /v1/calls: a call record; answered_at/ended_at null while unset */
json_t *tl_codec_call_encode(const struct tl_call_record *c);
/* GET /v1/phone-numbers/{id}/events: details is the stored JSON object ({} if unreadable) */
json_t *tl_codec_event_encode(const struct tl_event *e);

/* {"error":{"code","field","message"}} */
json_t *tl_codec_error(const struct tl_err *err);

#endif
