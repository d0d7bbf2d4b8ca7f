/* codec: JSON request bodies -> domain structs (with every rule of store/validate.c) and
 * domain structs -> JSON responses.
 *
 * The decoders are strict on purpose. A typo in a member name ("adress", "media_encrpytion")
 * that vanished silently would leave a trunk on a default the person never chose, so
 * unknown members are errors that name the allowed ones. Every string's length is checked
 * on the jansson value before it is copied into a fixed-size field. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "api/codec.h"

#define FIELD_CAP sizeof(((struct tl_err *)0)->field)
#define N_OF(a)   (sizeof(a) / sizeof((a)[0]))

/* ---- errors and paths ---- */

static int fail(struct tl_err *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct tl_err *err, const char *code, const char *field, const char *fmt, ...)
{
    char msg[sizeof(((struct tl_err *)0)->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tl_err_set(err, EINVAL, 400, code, field, "%s", msg);
}

/* vsnprintf, not snprintf: truncating a long path is right (it only points a person at
 * the field), and gcc's -Wformat-truncation cannot tell that from a bug */
static const char *pathf(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return buf;
}

static const char *join(char *buf, size_t cap, const char *path, const char *key)
{
    return path[0] ? pathf(buf, cap, "%s.%s", path, key) : pathf(buf, cap, "%s", key);
}

static const char *indexed(char *buf, size_t cap, const char *path, size_t i)
{
    return pathf(buf, cap, "%s[%zu]", path, i);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int type_err(struct tl_err *err, const char *f, const char *want, const json_t *got)
{
    return fail(err, "invalid_type", f, "%s must be %s, not %s", f, want, type_name(got));
}

/* The longest prefix of at most max bytes that does not split a UTF-8 sequence: a
 * message quoting part of a member name must stay valid UTF-8 or jansson will not
 * encode it. */
static int utf8_clip(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max)
        return (int)n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    return (int)n;
}

/* json_string() of text that may end in a sequence cut by a bounded copy (messages and
 * field paths quote user input): drop the cut tail rather than lose the whole answer */
static json_t *text(const char *s)
{
    json_t *v = json_string(s);
    size_t n = strlen(s);
    for (size_t k = 1; !v && k <= 3 && k <= n; k++)
        v = json_stringn(s, n - k);
    return v ? v : json_string("");
}

/* ---- unknown members ---- */

struct shape {
    const char *where; /* for the message: "the request body", "outbound_trunk", … */
    const char *const *names;
    size_t n;
};

#define SHAPE(where, arr)                                                                          \
    {                                                                                              \
        where, arr, N_OF(arr)                                                                      \
    }

/* Levenshtein distance, for "did you mean": member names are short */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int check_members(const json_t *obj, const char *path, const struct shape *sh,
                         struct tl_err *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool known = false;
        for (size_t i = 0; i < sh->n && !known; i++)
            known = strcmp(key, sh->names[i]) == 0;
        if (known)
            continue;
        char allowed[256] = "", hint[96] = "", f[FIELD_CAP];
        size_t best = 3, at = 0;
        const char *guess = NULL;
        for (size_t i = 0; i < sh->n; i++) {
            at += (size_t)snprintf(allowed + at, at < sizeof allowed ? sizeof allowed - at : 0,
                                   "%s%s", i ? ", " : "", sh->names[i]);
            if (at >= sizeof allowed)
                at = sizeof allowed;
            size_t d = edit_distance(key, sh->names[i]);
            if (d < best && d < strlen(sh->names[i]) / 2) {
                best = d;
                guess = sh->names[i];
            }
        }
        if (guess)
            snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", guess);
        return fail(err, "unknown_field", join(f, sizeof f, path, key),
                    "unknown member \"%.*s\" in %s%s; allowed members: %s", utf8_clip(key, 64), key,
                    sh->where, hint, allowed);
    }
    return 0;
}

/* ---- typed member access ---- */

/* Copies string member `key` (at most max bytes) into dst[max + 1]. Absent, or null when
 * null_ok, leaves dst untouched and *found false. */
static int get_str(const json_t *obj, const char *path, const char *key, size_t max, char *dst,
                   bool null_ok, bool *found, struct tl_err *err)
{
    char f[FIELD_CAP];
    json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v || (null_ok && json_is_null(v)))
        return 0;
    join(f, sizeof f, path, key);
    if (!json_is_string(v))
        return type_err(err, f, null_ok ? "a string or null" : "a string", v);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    /* jansson refuses \u0000 unless JSON_ALLOW_NUL, which we never pass; checked again
     * because a NUL would cut the value short after validation saw all of it */
    if (memchr(s, '\0', n))
        return fail(err, "invalid_field", f, "%s must not contain NUL characters", f);
    if (n > max)
        return fail(err, "invalid_field", f, "%s is %zu bytes long; at most %zu are allowed", f, n,
                    max);
    memcpy(dst, s, n);
    dst[n] = '\0';
    *found = true;
    return 0;
}

typedef int (*enum_parse_fn)(const char *s);

/* An enum member given as its wire name. "TLS" is refused with the spelling to use:
 * accepting it would give one value two spellings in stored data. */
static int get_enum(const json_t *obj, const char *path, const char *key, enum_parse_fn parse,
                    const char *choices, int *out, bool *found, struct tl_err *err)
{
    char f[FIELD_CAP], s[33];
    join(f, sizeof f, path, key);
    json_t *v = json_object_get(obj, key);
    *found = false;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return fail(err, "invalid_type", f, "%s must be a string, one of %s; not %s", f, choices,
                    type_name(v));
    if (json_string_length(v) < sizeof s) {
        memcpy(s, json_string_value(v), json_string_length(v) + 1);
        int r = parse(s);
        if (r >= 0) {
            *out = r;
            *found = true;
            return 0;
        }
        for (char *p = s; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        if (parse(s) >= 0)
            return fail(err, "invalid_field", f, "%s must be one of %s (lowercase); use \"%s\"", f,
                        choices, s);
    }
    return fail(err, "invalid_field", f, "%s must be one of %s", f, choices);
}

/* an optional object member: absent and null both mean "not given" */
static int get_object(const json_t *obj, const char *path, const char *key, json_t **out,
                      struct tl_err *err)
{
    char f[FIELD_CAP];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return type_err(err, join(f, sizeof f, path, key), "an object", v);
    *out = v;
    return 0;
}

/* an optional array member of at most max elements: absent and null mean "none" */
static int get_array(const json_t *obj, const char *path, const char *key, size_t max,
                     const char *want, json_t **out, struct tl_err *err)
{
    char f[FIELD_CAP];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    join(f, sizeof f, path, key);
    if (!json_is_array(v))
        return type_err(err, f, want, v);
    if (json_array_size(v) > max)
        return fail(err, "invalid_field", f, "%s: at most %zu are allowed; this request has %zu", f,
                    max, json_array_size(v));
    *out = v;
    return 0;
}

static const char *const kv_members[] = {"name", "value"};
/* Agent reads show "value_set" instead of the sealed value; accepting (and ignoring) it on
 * writes lets a client send back what it read without editing it first. */
static const char *const agent_kv_members[] = {"name", "value", "value_set"};

/* [{"name": …, "value": …}] into hs; value_optional for agent updates, where a missing
 * or empty value keeps the stored one. The rules on names and values are the caller's
 * (tl_valid_sip_header / tl_valid_ws_header via the whole-object check). */
static int get_headers(const json_t *obj, const char *path, struct tl_kv *hs, size_t *n,
                       bool value_optional, struct tl_err *err)
{
    static const char want[] = "an array of {\"name\": …, \"value\": …} objects";
    char f[FIELD_CAP], ef[FIELD_CAP];
    json_t *arr;
    int rc = get_array(obj, path, "headers", TL_HEADERS_MAX, want, &arr, err);
    *n = 0;
    if (rc || !arr)
        return rc;
    join(f, sizeof f, path, "headers");
    struct shape sh = SHAPE(NULL, kv_members);
    struct shape ash = SHAPE(NULL, agent_kv_members);
    if (value_optional)
        sh = ash;
    sh.where = f;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        indexed(ef, sizeof ef, f, i);
        if (!json_is_object(e))
            return type_err(err, ef, "an object {\"name\": …, \"value\": …}", e);
        sh.where = ef;
        bool found;
        if ((rc = check_members(e, ef, &sh, err)))
            return rc;
        memset(&hs[i], 0, sizeof hs[i]);
        if ((rc = get_str(e, ef, "name", TL_HEADER_NAME_MAX, hs[i].name, false, &found, err)))
            return rc;
        if (!found) {
            char nf[FIELD_CAP];
            return fail(err, "invalid_field", join(nf, sizeof nf, ef, "name"), "%s is required",
                        nf);
        }
        if ((rc = get_str(e, ef, "value", TL_HEADER_VALUE_MAX, hs[i].value, value_optional, &found,
                          err)))
            return rc;
        if (!found && !value_optional) {
            char vf[FIELD_CAP];
            return fail(err, "invalid_field", join(vf, sizeof vf, ef, "value"), "%s is required",
                        vf);
        }
        *n = i + 1;
    }
    return 0;
}

/* ---- body ---- */

/* Nesting is counted on the raw bytes, outside strings, before jansson builds anything:
 * the deepest legal body (a header object inside a trunk) is 4 levels, and a deep
 * "[[[[…" costs the parser recursion and allocations for nothing. */
static bool too_deep(const char *b, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = b[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > TL_JSON_DEPTH_MAX)
                return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

json_t *tl_json_parse_body(const char *body, size_t len, struct tl_err *err)
{
    if (!body || len == 0) {
        fail(err, "invalid_json", "", "the request body is empty; send a JSON object");
        return NULL;
    }
    if (too_deep(body, len)) {
        fail(err, "invalid_json", "",
             "the body is not accepted: JSON nesting deeper than %d levels", TL_JSON_DEPTH_MAX);
        return NULL;
    }
    json_error_t je;
    /* JSON_DECODE_ANY so that a scalar root gets our message, not jansson's; no
     * JSON_ALLOW_NUL, so "\u0000" is refused (C strings end there) */
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j) {
        if (strstr(je.text, "\\u0000"))
            fail(err, "invalid_json", "", "strings must not contain \\u0000 (line %d, column %d)",
                 je.line, je.column);
        else
            fail(err, "invalid_json", "", "the body is not valid JSON: %s (line %d, column %d)",
                 je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        fail(err, "invalid_json", "", "the body must be a JSON object ({…}), not %s", type_name(j));
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- phone numbers ---- */

static const char *const number_members[] = {"number",   "label",          "source",
                                             "agent_id", "outbound_trunk", "inbound_trunk"};
static const char *const outbound_members[] = {
    "address", "username", "password", "transport", "media_encryption", "headers", "number_format"};
static const char *const inbound_members[] = {"transport", "media_encryption",  "username",
                                              "password",  "allowed_addresses", "origination_url",
                                              "headers",   "rtp_latching",      "allow_any_source"};

static const char transports_out[] = "tls, tcp, udp";
static const char transports_in[] = "tls, tcp";
static const char media_choices[] = "required, allowed, disabled";
static const char latching_choices[] = "sdp-ip, any, off (or null: the gateway's rtp_latching)";

/* the members both directions share */
static int get_trunk_common(const json_t *o, const char *path, const char *transports,
                            enum tl_transport *transport, enum tl_media_enc *media,
                            char user[TL_USER_MAX + 1], char pass[TL_PASSWORD_MAX + 1],
                            bool *pass_given, struct tl_err *err)
{
    bool found;
    int v, rc;
    if ((rc = get_enum(o, path, "transport", tl_transport_parse, transports, &v, &found, err)))
        return rc;
    if (found)
        *transport = (enum tl_transport)v;
    if ((rc = get_enum(o, path, "media_encryption", tl_media_enc_parse, media_choices, &v, &found,
                       err)))
        return rc;
    if (found)
        *media = (enum tl_media_enc)v;
    if ((rc = get_str(o, path, "username", TL_USER_MAX, user, true, &found, err)))
        return rc;
    /* null means "not given", like absence: to drop credentials, send username "" (the
     * store then keeps no password) */
    return get_str(o, path, "password", TL_PASSWORD_MAX, pass, true, pass_given, err);
}

/* On import there is no stored password to keep, so a username needs one now. On PUT
 * the store keeps the stored password when the username is unchanged. */
static int import_password_rule(bool is_import, const char *user, const char *pass, bool given,
                                const char *prefix, struct tl_err *err)
{
    char f[FIELD_CAP];
    if (is_import && user[0] && (!given || !pass[0]))
        return fail(err, "invalid_field", join(f, sizeof f, prefix, "password"),
                    "%s is required when a username is given", f);
    return 0;
}

static int decode_outbound(const json_t *o, struct tl_outbound_trunk *t, struct tl_err *err)
{
    static const char P[] = "outbound_trunk";
    struct shape sh = SHAPE(P, outbound_members);
    int rc;
    bool found;
    char f[FIELD_CAP];
    t->transport = TL_TRANSPORT_TLS;
    t->media_encryption = TL_MEDIA_REQUIRED;
    if ((rc = check_members(o, P, &sh, err)))
        return rc;
    /* read into a larger buffer than the field so that a pasted SIP URI still reaches the
     * validator, which shows the bare host to use instead of just "too long" */
    char addr[TL_URI_MAX + 1];
    if ((rc = get_str(o, P, "address", TL_URI_MAX, addr, false, &found, err)))
        return rc;
    if (!found)
        return fail(err, "invalid_field", join(f, sizeof f, P, "address"),
                    "%s is required: the hostname or IP address of your provider's SIP trunk, "
                    "e.g. sip.telnyx.com",
                    f);
    if ((rc = tl_valid_trunk_address(addr, join(f, sizeof f, P, "address"), err)))
        return rc;
    tl_strlcpy(t->address, addr, sizeof t->address);
    if ((rc = get_trunk_common(o, P, transports_out, &t->transport, &t->media_encryption,
                               t->username, t->password, &t->password_given, err)))
        return rc;
    if ((rc = get_headers(o, P, t->headers, &t->n_headers, false, err)))
        return rc;
    int fmt = TL_NUMFMT_E164;
    if ((rc = get_enum(o, P, "number_format", tl_number_format_parse, "e164, no_plus", &fmt, &found,
                       err)))
        return rc;
    t->number_format = (enum tl_number_format)fmt;
    return 0;
}

static int decode_inbound(const json_t *o, struct tl_inbound_trunk *t, struct tl_err *err)
{
    static const char P[] = "inbound_trunk";
    struct shape sh = SHAPE(P, inbound_members);
    int rc;
    bool found;
    t->transport = TL_TRANSPORT_TLS;
    t->media_encryption = TL_MEDIA_REQUIRED;
    if ((rc = check_members(o, P, &sh, err)))
        return rc;
    /* udp is parsed so that tl_valid_inbound can say why it is refused */
    if ((rc = get_trunk_common(o, P, transports_in, &t->transport, &t->media_encryption,
                               t->username, t->password, &t->password_given, err)))
        return rc;
    json_t *arr, *e;
    size_t i;
    if ((rc = get_array(o, P, "allowed_addresses", TL_ALLOWED_MAX,
                        "an array of IP addresses or CIDR blocks", &arr, err)))
        return rc;
    json_array_foreach(arr, i, e)
    {
        char ef[FIELD_CAP], tmp[64];
        indexed(ef, sizeof ef, "inbound_trunk.allowed_addresses", i);
        if (!json_is_string(e))
            return type_err(err, ef, "a string (an IP address or CIDR block)", e);
        size_t n = json_string_length(e);
        if (n >= sizeof tmp || memchr(json_string_value(e), '\0', n))
            return fail(err, "invalid_field", ef,
                        "%s must be an IP address or CIDR block, e.g. 203.0.113.0/24", ef);
        memcpy(tmp, json_string_value(e), n + 1);
        if ((rc = tl_valid_cidr(tmp, t->allowed_addresses[i], ef, err)))
            return rc;
        t->n_allowed = i + 1;
    }
    if ((rc = get_str(o, P, "origination_url", TL_URI_MAX, t->origination_url, true, &found, err)))
        return rc;
    json_t *any = json_object_get(o, "allow_any_source");
    if (any && !json_is_null(any)) {
        if (!json_is_boolean(any))
            return type_err(err, "inbound_trunk.allow_any_source", "true or false", any);
        t->allow_any_source = json_is_true(any);
    }
    /* null like absence: the gateway's rtp_latching setting (docs/configuration.md) */
    if (!json_is_null(json_object_get(o, "rtp_latching"))) {
        int v;
        if ((rc = get_enum(o, P, "rtp_latching", tl_rtp_latching_parse, latching_choices, &v,
                           &found, err)))
            return rc;
        if (found)
            t->rtp_latching = (enum tl_rtp_latching)v;
    }
    return get_headers(o, P, t->headers, &t->n_headers, false, err);
}

int tl_codec_number_decode(const json_t *j, bool is_import, bool allow_platform,
                           struct tl_phone_number *out, bool *agent_given, struct tl_warnings *w,
                           struct tl_err *err)
{
    struct shape sh = SHAPE("the request body", number_members);
    int rc, v;
    bool found;
    memset(out, 0, sizeof *out);
    out->source = TL_SOURCE_SIP_TRUNK;
    if (agent_given)
        *agent_given = false;
    if (!json_is_object(j))
        return fail(err, "invalid_type", "", "the body must be a JSON object");
    if ((rc = check_members(j, "", &sh, err)))
        return rc;

    /* wider than the field, so "+49 30 1234 5678" gets its compact form suggested */
    char num[64];
    if ((rc = get_str(j, "", "number", sizeof num - 1, num, false, &found, err)))
        return rc;
    if (found) {
        if ((rc = tl_valid_e164(num, "number", err)))
            return rc;
        tl_strlcpy(out->number, num, sizeof out->number);
    } else if (is_import) {
        return fail(err, "invalid_field", "number",
                    "number is required, in E.164 format: + then country code and number, "
                    "e.g. +493012345678");
    }

    if ((rc = get_str(j, "", "label", TL_NAME_MAX, out->label, true, &found, err)) ||
        (rc = tl_valid_name(out->label, false, "label", err)))
        return rc;

    if ((rc = get_enum(j, "", "source", tl_source_parse, "sip_trunk, platform", &v, &found, err)))
        return rc;
    if (found) {
        if (v == TL_SOURCE_PLATFORM && !allow_platform)
            return fail(err, "invalid_field", "source",
                        "numbers bought from the platform are provisioned by the operator; "
                        "import your own number with source \"sip_trunk\" (or leave source out)");
        out->source = (enum tl_number_source)v;
    }

    json_t *ag = json_object_get(j, "agent_id");
    if (ag) {
        if (agent_given)
            *agent_given = true;
        if (!json_is_null(ag)) {
            if (!json_is_string(ag))
                return type_err(err, "agent_id", "a string or null", ag);
            const char *s = json_string_value(ag);
            size_t n = json_string_length(ag);
            /* "" is what a form's "None" choice often sends: the same as null */
            if (n > 0 && (n >= sizeof out->agent_id || strlen(s) != n || !tl_id_valid(s, "ag")))
                return fail(err, "invalid_field", "agent_id",
                            "agent_id must be the id of an agent (ag_…), or null to leave the "
                            "number unassigned");
            if (n > 0)
                memcpy(out->agent_id, s, n + 1);
        }
    }

    json_t *ob, *ib;
    if ((rc = get_object(j, "", "outbound_trunk", &ob, err)))
        return rc;
    if (!ob)
        return fail(err, "invalid_field", "outbound_trunk",
                    "outbound_trunk is required (a number is saved with its outbound "
                    "configuration), e.g. {\"address\": \"sip.telnyx.com\"}");
    struct tl_outbound_trunk *ot = &out->outbound;
    if ((rc = decode_outbound(ob, ot, err)) ||
        (rc = tl_valid_outbound(ot, "outbound_trunk", w, err)) ||
        (rc = import_password_rule(is_import, ot->username, ot->password, ot->password_given,
                                   "outbound_trunk", err)))
        return rc;

    if ((rc = get_object(j, "", "inbound_trunk", &ib, err)))
        return rc;
    if (ib) {
        struct tl_inbound_trunk *it = &out->inbound;
        out->has_inbound = true;
        if ((rc = decode_inbound(ib, it, err)) ||
            (rc = tl_valid_inbound(it, "inbound_trunk", w, err)) ||
            (rc = import_password_rule(is_import, it->username, it->password, it->password_given,
                                       "inbound_trunk", err)))
            return rc;
    }
    return 0;
}

/* ---- agents ---- */

static const char *const agent_members[] = {"name",
                                            "kind",
                                            "builtin",
                                            "url",
                                            "parameters",
                                            "headers",
                                            "connect_timeout_ms",
                                            "voice_url",
                                            "method",
                                            "fallback_url",
                                            "status_callback",
                                            "timeout_ms"};

/* The members each kind takes besides name, kind and parameters; one given to another
 * kind is refused with what to do instead. */
struct kind_member {
    const char *member;
    enum tl_agent_kind kind;
};
static const struct kind_member kind_members[] = {
    {"builtin", TL_AGENT_BUILTIN},    {"url", TL_AGENT_WEBSOCKET},
    {"headers", TL_AGENT_WEBSOCKET},  {"connect_timeout_ms", TL_AGENT_WEBSOCKET},
    {"voice_url", TL_AGENT_TWIML},    {"method", TL_AGENT_TWIML},
    {"fallback_url", TL_AGENT_TWIML}, {"status_callback", TL_AGENT_TWIML},
    {"timeout_ms", TL_AGENT_TWIML},
};

static int get_timeout(const json_t *j, const char *key, uint32_t *out, struct tl_err *err)
{
    json_t *tv = json_object_get(j, key);
    if (tv && !json_is_null(tv)) {
        if (!json_is_integer(tv))
            return type_err(err, key, "a whole number of milliseconds", tv);
        json_int_t t = json_integer_value(tv);
        if (t < 100 || t > TL_AGENT_TIMEOUT_MAX_MS)
            return fail(err, "invalid_field", key, "%s must be between 100 and %d (ms)", key,
                        TL_AGENT_TIMEOUT_MAX_MS);
        *out = (uint32_t)t;
    } else if (tv) {
        *out = 5000; /* null: back to the default */
    }
    return 0;
}

static int get_params(const json_t *o, struct tl_param *params, size_t *n_params,
                      struct tl_err *err)
{
    char f[FIELD_CAP];
    json_t *p = json_object_get(o, "parameters");
    if (!p)
        return 0;
    *n_params = 0;
    if (json_is_null(p))
        return 0;
    if (!json_is_object(p))
        return type_err(err, "parameters", "an object of string values", p);
    if (json_object_size(p) > TL_PARAMS_MAX)
        return fail(err, "invalid_field", "parameters",
                    "parameters: at most %d are allowed; this request has %zu", TL_PARAMS_MAX,
                    json_object_size(p));
    const char *key;
    json_t *v;
    int rc;
    json_object_foreach(p, key, v)
    {
        join(f, sizeof f, "parameters", key);
        if ((rc = tl_valid_param_key(key, f, err)))
            return rc;
        bool found;
        size_t i = *n_params;
        if ((rc = get_str(p, "parameters", key, TL_PARAM_VALUE_MAX, params[i].value, false, &found,
                          err)))
            return rc;
        memcpy(params[i].key, key, strlen(key) + 1); /* ≤ TL_PARAM_KEY_MAX, checked */
        *n_params = i + 1;
    }
    return 0;
}

int tl_codec_agent_decode(const json_t *j, bool is_create, struct tl_agent *out, struct tl_err *err)
{
    struct shape sh = SHAPE("the request body", agent_members);
    int rc, v;
    bool found;
    if (is_create)
        memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return fail(err, "invalid_type", "", "the body must be a JSON object");
    if ((rc = check_members(j, "", &sh, err)))
        return rc;

    if ((rc = get_str(j, "", "name", TL_NAME_MAX, out->name, false, &found, err)))
        return rc;
    if ((found || is_create) && (rc = tl_valid_name(out->name, true, "name", err)))
        return rc;

    if ((rc = get_enum(j, "", "kind", tl_agent_kind_parse, "builtin, websocket, twiml", &v, &found,
                       err)))
        return rc;
    if (!found && is_create)
        return fail(err, "invalid_field", "kind",
                    "kind is required: \"builtin\" (with builtin: \"echo\"), \"websocket\" "
                    "(with url: \"wss://…\") or \"twiml\" (with voice_url: \"https://…\")");
    if (found && (enum tl_agent_kind)v != out->kind) {
        /* switching kind drops the members of the old kind */
        out->builtin[0] = out->url[0] = out->fallback_url[0] = out->status_callback[0] = '\0';
        out->method_get = false;
        out->n_headers = 0;
        out->connect_timeout_ms = 5000;
    }
    if (found)
        out->kind = (enum tl_agent_kind)v;
    static const char *const kind_hint[] = {
        [TL_AGENT_BUILTIN] = "builtin: \"echo\"",
        [TL_AGENT_WEBSOCKET] = "url: \"wss://…\"",
        [TL_AGENT_TWIML] = "voice_url: \"https://…\"",
    };
    for (size_t i = 0; i < sizeof kind_members / sizeof kind_members[0]; i++) {
        json_t *mv = json_object_get(j, kind_members[i].member);
        if (!mv || json_is_null(mv) || kind_members[i].kind == out->kind)
            continue;
        return fail(err, "invalid_field", kind_members[i].member,
                    "a %s agent has no %s (that belongs to %s agents); a %s agent takes %s",
                    tl_agent_kind_name(out->kind), kind_members[i].member,
                    tl_agent_kind_name(kind_members[i].kind), tl_agent_kind_name(out->kind),
                    kind_hint[out->kind]);
    }
    json_t *bv = json_object_get(j, "builtin"), *uv = json_object_get(j, "url");
    if (bv && json_is_null(bv))
        out->builtin[0] = '\0';
    if (uv && json_is_null(uv))
        out->url[0] = '\0';
    if ((rc = get_str(j, "", "builtin", TL_BUILTIN_MAX, out->builtin, true, &found, err)) ||
        (rc = get_str(j, "", "url", TL_AGENT_URL_MAX, out->url, true, &found, err)))
        return rc;
    if (out->kind == TL_AGENT_TWIML) {
        json_t *vv = json_object_get(j, "voice_url");
        if (vv && json_is_null(vv))
            out->url[0] = '\0';
        if ((rc = get_str(j, "", "voice_url", TL_AGENT_URL_MAX, out->url, true, &found, err)))
            return rc;
        static const char *const nullable[] = {"fallback_url", "status_callback"};
        char *dst[] = {out->fallback_url, out->status_callback};
        for (size_t i = 0; i < 2; i++) {
            json_t *nv = json_object_get(j, nullable[i]);
            if (nv && json_is_null(nv))
                dst[i][0] = '\0';
            if ((rc = get_str(j, "", nullable[i], TL_AGENT_URL_MAX, dst[i], true, &found, err)))
                return rc;
        }
        json_t *mv = json_object_get(j, "method");
        if (mv && json_is_null(mv)) {
            out->method_get = false;
        } else if (mv) {
            const char *m = json_string_value(mv);
            if (!m)
                return type_err(err, "method", "\"POST\" or \"GET\"", mv);
            if (strcmp(m, "POST") && strcmp(m, "GET"))
                return fail(err, "invalid_field", "method",
                            "method must be \"POST\" (the default, as at Twilio) or \"GET\"");
            out->method_get = !strcmp(m, "GET");
        }
    }

    if ((rc = get_params(j, out->params, &out->n_params, err)))
        return rc;

    if (is_create)
        out->connect_timeout_ms = 5000;
    if ((rc = get_timeout(j, "connect_timeout_ms", &out->connect_timeout_ms, err)) ||
        (rc = get_timeout(j, "timeout_ms", &out->connect_timeout_ms, err)))
        return rc;

    json_t *hv = json_object_get(j, "headers");
    if (hv) {
        /* a value left out or "" on update keeps the stored one: reads never return
         * values, so a client cannot send them back */
        if ((rc = get_headers(j, "", out->headers, &out->n_headers, !is_create, err)))
            return rc;
        out->values_hidden = !is_create;
        for (size_t i = 0; is_create && i < out->n_headers; i++)
            if (!out->headers[i].value[0]) {
                char f[FIELD_CAP];
                pathf(f, sizeof f, "headers[%zu].value", i);
                return fail(err, "invalid_field", f, "%s is required", f);
            }
    }
    return tl_valid_agent(out, err);
}

/* ---- outbound calls ---- */

static const char *const call_members[] = {
    "from", "to", "agent_id", "parameters", "headers", "ringing_timeout_s", "max_duration_s"};

/* an optional whole number of seconds in lo..hi; absent or null leaves *out */
static int get_seconds(const json_t *j, const char *key, uint32_t lo, uint32_t hi, uint32_t *out,
                       struct tl_err *err)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return type_err(err, key, "a whole number of seconds", v);
    json_int_t t = json_integer_value(v);
    if (t < (json_int_t)lo || t > (json_int_t)hi)
        return fail(err, "invalid_field", key, "%s must be between %u and %u (seconds)", key, lo,
                    hi);
    *out = (uint32_t)t;
    return 0;
}

int tl_codec_call_order_decode(const json_t *j, struct tl_call_order *out, struct tl_err *err)
{
    struct shape sh = SHAPE("the request body", call_members);
    int rc;
    bool found;
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return fail(err, "invalid_type", "", "the body must be a JSON object");
    if ((rc = check_members(j, "", &sh, err)))
        return rc;
    if ((rc = get_str(j, "", "from", sizeof out->from - 1, out->from, false, &found, err)))
        return rc;
    if (!found || !out->from[0])
        return fail(err, "invalid_field", "from",
                    "from is required: the phone number to call from (its id pn_… or its "
                    "E.164), one of this workspace's numbers");
    if (out->from[0] == 'p' && !tl_id_valid(out->from, "pn"))
        return fail(err, "invalid_field", "from",
                    "from is neither a phone number id (pn_…) nor an E.164 number");
    if (out->from[0] != 'p' && (rc = tl_valid_e164(out->from, "from", err)))
        return rc;
    char to[TL_URI_MAX + 1];
    if ((rc = get_str(j, "", "to", TL_URI_MAX, to, false, &found, err)))
        return rc;
    if (!found || !to[0])
        return fail(err, "invalid_field", "to",
                    "to is required: the number to call, in E.164 "
                    "(e.g. +4915123456789)");
    if ((rc = tl_valid_e164(to, "to", err)))
        return rc;
    tl_strlcpy(out->to, to, sizeof out->to);
    if ((rc = get_str(j, "", "agent_id", TL_ID_MAX - 1, out->agent_id, true, &found, err)))
        return rc;
    if (found && out->agent_id[0] && !tl_id_valid(out->agent_id, "ag"))
        return fail(err, "invalid_field", "agent_id", "agent_id is not an agent id (ag_…)");
    if ((rc = get_params(j, out->params, &out->n_params, err)))
        return rc;
    if ((rc = get_headers(j, "", out->headers, &out->n_headers, false, err)))
        return rc;
    for (size_t i = 0; i < out->n_headers; i++) {
        char f[FIELD_CAP];
        pathf(f, sizeof f, "headers[%zu]", i);
        if ((rc = tl_valid_call_header(&out->headers[i], f, err)))
            return rc;
        for (size_t k = 0; k < i; k++)
            if (!strcasecmp(out->headers[k].name, out->headers[i].name)) {
                pathf(f, sizeof f, "headers[%zu].name", i);
                return fail(err, "invalid_field", f, "%s: %s is given twice", f,
                            out->headers[i].name);
            }
    }
    out->ringing_timeout_s = TL_RINGING_TIMEOUT_DEFAULT;
    if ((rc = get_seconds(j, "ringing_timeout_s", 1, TL_RINGING_TIMEOUT_MAX,
                          &out->ringing_timeout_s, err)) ||
        (rc = get_seconds(j, "max_duration_s", 1, TL_CALL_DURATION_MAX, &out->max_duration_s, err)))
        return rc;
    return 0;
}

/* ---- workspaces ---- */

static const char *const workspace_members[] = {"name", "plan", "region", "outbound_prefixes"};

int tl_codec_workspace_decode(const json_t *j, bool is_create, struct tl_workspace *out,
                              struct tl_err *err)
{
    struct shape sh = SHAPE("the request body", workspace_members);
    int rc, v;
    bool found;
    if (is_create) {
        memset(out, 0, sizeof *out);
        /* the operator raises the plan explicitly; nobody gets a paid plan by default */
        out->plan = TL_PLAN_FREE;
        tl_strlcpy(out->region, "eu", sizeof out->region);
    }
    if (!json_is_object(j))
        return fail(err, "invalid_type", "", "the body must be a JSON object");
    if ((rc = check_members(j, "", &sh, err)))
        return rc;
    if ((rc = get_str(j, "", "name", TL_NAME_MAX, out->name, false, &found, err)))
        return rc;
    if ((found || is_create) && (rc = tl_valid_name(out->name, true, "name", err)))
        return rc;
    if ((rc = get_enum(j, "", "plan", tl_plan_parse, "free, starter, professional, enterprise", &v,
                       &found, err)))
        return rc;
    if (found)
        out->plan = (enum tl_plan)v;
    char region[64];
    if ((rc = get_str(j, "", "region", sizeof region - 1, region, false, &found, err)))
        return rc;
    if (found) {
        if ((rc = tl_valid_region(region, "region", err)))
            return rc;
        tl_strlcpy(out->region, region, sizeof out->region);
    }
    /* where outbound calls may go: null or [] = the country codes of its own numbers */
    json_t *pv = json_object_get(j, "outbound_prefixes");
    if (pv && !json_is_null(pv) && !json_is_array(pv))
        return type_err(err, "outbound_prefixes", "an array of E.164 prefixes", pv);
    if (pv) {
        if (json_array_size(pv) > TL_PREFIXES_MAX)
            return fail(err, "invalid_field", "outbound_prefixes",
                        "outbound_prefixes: at most %d are allowed; this request has %zu",
                        TL_PREFIXES_MAX, json_array_size(pv));
        out->n_out_prefixes = 0;
        size_t i;
        json_t *e;
        json_array_foreach(pv, i, e)
        {
            char f[FIELD_CAP];
            indexed(f, sizeof f, "outbound_prefixes", i);
            if (!json_is_string(e))
                return type_err(err, f, "a string (+49, or + for every number)", e);
            if ((rc = tl_valid_prefix(json_string_value(e), f, err)))
                return rc;
            tl_strlcpy(out->out_prefixes[out->n_out_prefixes++], json_string_value(e),
                       TL_PREFIX_MAX + 1);
        }
    }
    return 0;
}

/* ---- tokens ---- */

static const char *const token_members[] = {"role", "name", "workspace_id", "expires_in_s"};
#define TOKEN_TTL_MIN_S 60
#define TOKEN_TTL_MAX_S (10LL * 366 * 86400)

int tl_codec_token_decode(const json_t *j, struct tl_token *out, struct tl_err *err)
{
    struct shape sh = SHAPE("the request body", token_members);
    int rc, v;
    bool found;
    memset(out, 0, sizeof *out);
    if (!json_is_object(j))
        return fail(err, "invalid_type", "", "the body must be a JSON object");
    if ((rc = check_members(j, "", &sh, err)))
        return rc;
    if ((rc = get_enum(j, "", "role", tl_role_parse, "admin, member, operator", &v, &found, err)))
        return rc;
    if (!found)
        return fail(err, "invalid_field", "role", "role is required: admin, member or operator");
    out->role = (enum tl_role)v;
    if ((rc = get_str(j, "", "name", TL_NAME_MAX, out->name, true, &found, err)) ||
        (rc = tl_valid_name(out->name, false, "name", err)))
        return rc;
    json_t *ws = json_object_get(j, "workspace_id");
    if (ws && !json_is_null(ws)) {
        if (!json_is_string(ws))
            return type_err(err, "workspace_id", "a string or null", ws);
        size_t n = json_string_length(ws);
        const char *s = json_string_value(ws);
        if (n >= sizeof out->workspace_id || strlen(s) != n || !tl_id_valid(s, "ws"))
            return fail(err, "invalid_field", "workspace_id",
                        "workspace_id must be the id of a workspace (ws_…)");
        memcpy(out->workspace_id, s, n + 1);
    }
    json_t *ttl = json_object_get(j, "expires_in_s");
    if (ttl && !json_is_null(ttl)) {
        if (!json_is_integer(ttl))
            return type_err(err, "expires_in_s", "a whole number of seconds or null", ttl);
        json_int_t secs = json_integer_value(ttl);
        if (secs < TOKEN_TTL_MIN_S || secs > TOKEN_TTL_MAX_S)
            return fail(err, "invalid_field", "expires_in_s",
                        "expires_in_s must be from %d (a minute) to %lld (ten years); leave it "
                        "out for a token that does not expire",
                        TOKEN_TTL_MIN_S, (long long)TOKEN_TTL_MAX_S);
        out->expires_at = tl_now_ms() + (int64_t)secs * 1000;
    }
    return 0;
}

/* ---- encoders ---- */

/* Each set records a failure (allocation, or a string jansson refuses as invalid UTF-8)
 * instead of returning early; the encoder then answers NULL, never a partial object. */
static void set(json_t *o, const char *key, json_t *v, bool *bad)
{
    if (!v || json_object_set_new(o, key, v) != 0)
        *bad = true;
}

static void push(json_t *a, json_t *v, bool *bad)
{
    if (!v || json_array_append_new(a, v) != 0)
        *bad = true;
}

/* The resource's "id" and its kind as "object": every encoded resource starts so. */
static void set_id(json_t *o, const char *id, const char *kind, bool *bad)
{
    set(o, "id", json_string(id), bad);
    set(o, "object", json_string(kind), bad);
}

/* true when all of v[0..n) were allocated; otherwise frees the ones that were */
static bool alloc_all(json_t *const *v, size_t n)
{
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok = ok && v[i];
    for (size_t i = 0; !ok && i < n; i++)
        json_decref(v[i]);
    return ok;
}

static json_t *str_or_null(const char *s)
{
    return s[0] ? json_string(s) : json_null();
}

static json_t *iso_time(int64_t ms)
{
    char b[32];
    tl_time_iso(ms, b);
    return json_string(b);
}

static json_t *finish(json_t *o, bool bad)
{
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *kv_array(const struct tl_kv *hs, size_t n)
{
    json_t *a = json_array();
    bool bad = !a;
    for (size_t i = 0; a && i < n && i < TL_HEADERS_MAX; i++) {
        json_t *h = json_object();
        if (h) {
            set(h, "name", json_string(hs[i].name), &bad);
            set(h, "value", json_string(hs[i].value), &bad);
        }
        push(a, h, &bad);
    }
    return finish(a, bad);
}

/* "warnings": [{code, field, message}] of an accepted write, when there are any */
static void set_warnings(json_t *o, const struct tl_warnings *w, bool *bad)
{
    if (!w || w->n == 0)
        return;
    json_t *wa = json_array();
    for (size_t i = 0; wa && i < w->n && i < TL_WARNINGS_MAX; i++) {
        json_t *e = json_object();
        if (e) {
            set(e, "code", json_string(w->w[i].code), bad);
            set(e, "field", json_string(w->w[i].field), bad);
            set(e, "message", json_string(w->w[i].message), bad);
        }
        push(wa, e, bad);
    }
    set(o, "warnings", wa, bad);
}

json_t *tl_codec_number_encode(const struct tl_phone_number *n, const struct tl_warnings *w)
{
    json_t *o = json_object(), *ob = json_object(), *ib = NULL;
    if (!alloc_all((json_t *[]){o, ob}, 2))
        return NULL;
    bool bad = false;
    set_id(o, n->id, "phone_number", &bad);
    set(o, "workspace_id", json_string(n->workspace_id), &bad);
    set(o, "number", json_string(n->number), &bad);
    set(o, "label", json_string(n->label), &bad);
    set(o, "source", json_string(tl_source_name(n->source)), &bad);
    set(o, "agent_id", str_or_null(n->agent_id), &bad);

    const struct tl_outbound_trunk *t = &n->outbound;
    set(ob, "address", json_string(t->address), &bad);
    set(ob, "username", str_or_null(t->username), &bad);
    set(ob, "has_password", json_boolean(t->has_password || (t->password_given && t->password[0])),
        &bad);
    set(ob, "transport", json_string(tl_transport_name(t->transport)), &bad);
    set(ob, "media_encryption", json_string(tl_media_enc_name(t->media_encryption)), &bad);
    set(ob, "headers", kv_array(t->headers, t->n_headers), &bad);
    set(ob, "number_format", json_string(tl_number_format_name(t->number_format)), &bad);
    set(o, "outbound_trunk", ob, &bad);

    if (n->has_inbound) {
        const struct tl_inbound_trunk *it = &n->inbound;
        ib = json_object();
        json_t *al = json_array();
        if (ib && al) {
            set(ib, "transport", json_string(tl_transport_name(it->transport)), &bad);
            set(ib, "media_encryption", json_string(tl_media_enc_name(it->media_encryption)), &bad);
            set(ib, "username", str_or_null(it->username), &bad);
            set(ib, "has_password",
                json_boolean(it->has_password || (it->password_given && it->password[0])), &bad);
            for (size_t i = 0; i < it->n_allowed && i < TL_ALLOWED_MAX; i++)
                push(al, json_string(it->allowed_addresses[i]), &bad);
            set(ib, "allowed_addresses", al, &bad);
            al = NULL;
            set(ib, "origination_url", str_or_null(it->origination_url), &bad);
            set(ib, "headers", kv_array(it->headers, it->n_headers), &bad);
            const char *latch = tl_rtp_latching_name(it->rtp_latching);
            set(ib, "rtp_latching", latch ? json_string(latch) : json_null(), &bad);
            set(ib, "allow_any_source", json_boolean(it->allow_any_source), &bad);
        }
        json_decref(al);
        set(o, "inbound_trunk", ib, &bad);
    } else {
        set(o, "inbound_trunk", json_null(), &bad);
    }
    set(o, "created_at", iso_time(n->created_at), &bad);
    set(o, "updated_at", iso_time(n->updated_at), &bad);

    set_warnings(o, w, &bad);
    return finish(o, bad);
}

json_t *tl_codec_agent_encode(const struct tl_agent *a, const struct tl_warnings *w)
{
    json_t *o = json_object(), *params = json_object(), *hs = json_array();
    if (!alloc_all((json_t *[]){o, params, hs}, 3))
        return NULL;
    bool bad = false;
    set_id(o, a->id, "agent", &bad);
    set(o, "workspace_id", json_string(a->workspace_id), &bad);
    set(o, "name", json_string(a->name), &bad);
    set(o, "kind", json_string(tl_agent_kind_name(a->kind)), &bad);
    if (a->kind == TL_AGENT_BUILTIN) {
        set(o, "builtin", json_string(a->builtin), &bad);
    } else if (a->kind == TL_AGENT_WEBSOCKET) {
        set(o, "url", json_string(a->url), &bad);
        set(o, "connect_timeout_ms", json_integer(a->connect_timeout_ms), &bad);
    } else {
        set(o, "voice_url", json_string(a->url), &bad);
        set(o, "method", json_string(a->method_get ? "GET" : "POST"), &bad);
        set(o, "fallback_url", str_or_null(a->fallback_url), &bad);
        set(o, "status_callback", str_or_null(a->status_callback), &bad);
        set(o, "timeout_ms", json_integer(a->connect_timeout_ms), &bad);
    }
    for (size_t i = 0; i < a->n_params && i < TL_PARAMS_MAX; i++)
        set(params, a->params[i].key, json_string(a->params[i].value), &bad);
    set(o, "parameters", params, &bad);
    /* values often carry API keys: write-only, so only say that one is set */
    for (size_t i = 0; i < a->n_headers && i < TL_HEADERS_MAX; i++) {
        json_t *h = json_object();
        if (h) {
            set(h, "name", json_string(a->headers[i].name), &bad);
            set(h, "value_set", json_boolean(a->values_hidden || a->headers[i].value[0]), &bad);
        }
        push(hs, h, &bad);
    }
    set(o, "headers", hs, &bad);
    set(o, "created_at", iso_time(a->created_at), &bad);
    set(o, "updated_at", iso_time(a->updated_at), &bad);
    set_warnings(o, w, &bad);
    return finish(o, bad);
}

json_t *tl_codec_workspace_encode(const struct tl_workspace *w)
{
    json_t *o = json_object();
    bool bad = !o;
    if (bad)
        return NULL;
    set_id(o, w->id, "workspace", &bad);
    set(o, "name", json_string(w->name), &bad);
    set(o, "plan", json_string(tl_plan_name(w->plan)), &bad);
    set(o, "region", json_string(w->region), &bad);
    json_t *pa = json_array();
    for (size_t i = 0; pa && i < w->n_out_prefixes && i < TL_PREFIXES_MAX; i++)
        if (json_array_append_new(pa, json_string(w->out_prefixes[i])))
            bad = true;
    set(o, "outbound_prefixes", pa, &bad);
    set(o, "created_at", iso_time(w->created_at), &bad);
    set(o, "updated_at", iso_time(w->updated_at), &bad);
    return finish(o, bad);
}

json_t *tl_codec_token_encode(const struct tl_token *t, const char *secret)
{
    json_t *o = json_object();
    bool bad = !o;
    if (bad)
        return NULL;
    set_id(o, t->id, "token", &bad);
    set(o, "workspace_id", str_or_null(t->workspace_id), &bad);
    set(o, "role", json_string(tl_role_name(t->role)), &bad);
    set(o, "name", json_string(t->name), &bad);
    set(o, "prefix", json_string(t->prefix), &bad);
    set(o, "created_at", iso_time(t->created_at), &bad);
    set(o, "expires_at", t->expires_at ? iso_time(t->expires_at) : json_null(), &bad);
    set(o, "last_used_at", t->last_used_at ? iso_time(t->last_used_at) : json_null(), &bad);
    /* the secret is shown once, in the creation response, and never again */
    if (secret && secret[0])
        set(o, "token", json_string(secret), &bad);
    return finish(o, bad);
}

static json_t *time_or_null(int64_t ms)
{
    return ms ? iso_time(ms) : json_null();
}

json_t *tl_codec_call_encode(const struct tl_call_record *c)
{
    json_t *o = json_object(), *rtp = json_object();
    if (!alloc_all((json_t *[]){o, rtp}, 2))
        return NULL;
    bool bad = false;
    set_id(o, c->id, "call", &bad);
    set(o, "workspace_id", json_string(c->workspace_id), &bad);
    set(o, "number_id", str_or_null(c->number_id), &bad);
    set(o, "number", json_string(c->number), &bad);
    set(o, "agent_id", str_or_null(c->agent_id), &bad);
    set(o, "direction", json_string(tl_call_direction_name(c->direction)), &bad);
    set(o, "status", json_string(tl_call_status_name(c->status)), &bad);
    /* the caller as a person reads it: the user part (a number), else the whole URI */
    set(o, "from", text(c->from_user[0] ? c->from_user : c->from_uri), &bad);
    set(o, "to", text(c->to_user), &bad);
    set(o, "sip_call_id", text(c->sip_call_id), &bad);
    set(o, "created_at", iso_time(c->created_at), &bad);
    set(o, "answered_at", time_or_null(c->answered_at), &bad);
    set(o, "ended_at", time_or_null(c->ended_at), &bad);
    set(o, "end_reason", str_or_null(c->end_reason), &bad);
    set(o, "final_status", c->final_status ? json_integer(c->final_status) : json_null(), &bad);
    set(o, "sip_reason", c->sip_reason[0] ? text(c->sip_reason) : json_null(), &bad);
    set(o, "hint", c->hint[0] ? text(c->hint) : json_null(), &bad);
    set(o, "codec", str_or_null(c->codec), &bad);
    set(o, "media_encryption", json_string(c->srtp ? "srtp" : "rtp"), &bad);
    set(rtp, "packets_sent", json_integer((json_int_t)c->packets_sent), &bad);
    set(rtp, "packets_received", json_integer((json_int_t)c->packets_received), &bad);
    set(rtp, "packets_lost", json_integer((json_int_t)c->packets_lost), &bad);
    set(rtp, "jitter_ms", json_real(c->jitter_ms), &bad);
    json_t *dr = json_object();
    if (dr) {
        set(dr, "source", json_integer((json_int_t)c->dropped_source), &bad);
        set(dr, "srtp_auth", json_integer((json_int_t)c->dropped_auth), &bad);
        set(dr, "malformed", json_integer((json_int_t)c->dropped_malformed), &bad);
        set(dr, "payload_type", json_integer((json_int_t)c->dropped_pt), &bad);
        set(dr, "before_answer", json_integer((json_int_t)c->dropped_early), &bad);
        set(dr, "agent_audio_bytes", json_integer((json_int_t)c->audio_dropped_bytes), &bad);
    }
    set(rtp, "dropped", dr, &bad);
    set(o, "rtp", rtp, &bad);
    return finish(o, bad);
}

json_t *tl_codec_event_encode(const struct tl_event *e)
{
    json_t *o = json_object();
    bool bad = !o;
    if (bad)
        return NULL;
    json_t *details = e->details[0] ? json_loads(e->details, 0, NULL) : NULL;
    if (!json_is_object(details)) {
        json_decref(details);
        details = json_object();
    }
    set_id(o, e->id, "event", &bad);
    set(o, "number_id", str_or_null(e->number_id), &bad);
    set(o, "code", text(e->code), &bad);
    set(o, "message", text(e->message), &bad);
    set(o, "hint", text(e->hint), &bad);
    set(o, "details", details, &bad);
    set(o, "created_at", iso_time(e->created_at), &bad);
    return finish(o, bad);
}

json_t *tl_codec_error(const struct tl_err *err)
{
    json_t *o = json_object(), *e = json_object();
    if (!alloc_all((json_t *[]){o, e}, 2))
        return NULL;
    bool bad = false;
    const char *code = err && err->code[0] ? err->code : "internal_error";
    const char *msg = err && err->message[0] ? err->message : "internal error";
    set(e, "code", text(code), &bad);
    if (err && err->field[0])
        set(e, "field", text(err->field), &bad);
    set(e, "message", text(msg), &bad);
    set(o, "error", e, &bad);
    return finish(o, bad);
}
