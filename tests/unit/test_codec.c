/* JSON codec (src/api/codec.c): request bodies in, every refusal with its exact code and
 * field path, responses out without secrets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/codec.h"

static struct tl_err E;

static const char AGENT_ID[] = "ag_0123456789abcdefghjkmnpqrs";

/* The import of the product guide (Step 1-4): the example number, Telnyx as outbound
 * trunk with digest credentials, inbound over TLS from the provider's addresses. */
static const char SPEC_IMPORT[] =
    "{\n"
    "  \"number\": \"+493012345678\",\n"
    "  \"label\": \"Berlin office\",\n"
    "  \"agent_id\": null,\n"
    "  \"outbound_trunk\": {\n"
    "    \"address\": \"sip.telnyx.com\",\n"
    "    \"username\": \"acme_trunk\",\n"
    "    \"password\": \"s3cret-Pa55\",\n"
    "    \"transport\": \"tls\",\n"
    "    \"media_encryption\": \"required\",\n"
    "    \"headers\": [{\"name\": \"X-Customer-Id\", \"value\": \"4711\"}]\n"
    "  },\n"
    "  \"inbound_trunk\": {\n"
    "    \"transport\": \"tls\",\n"
    "    \"media_encryption\": \"required\",\n"
    "    \"allowed_addresses\": [\"203.0.113.0/24\", \"198.51.100.7\"],\n"
    "    \"origination_url\": null,\n"
    "    \"headers\": []\n"
    "  }\n"
    "}\n";

static json_t *parse(const char *s)
{
    memset(&E, 0, sizeof E);
    json_t *j = tl_json_parse_body(s, strlen(s), &E);
    if (!j)
        print_error("parse failed: %s\n  %s\n", E.message, s);
    assert_non_null(j);
    return j;
}

static void expect_err(const char *code, const char *field, const char *sub)
{
    assert_int_equal(E.status, 400);
    if (strcmp(E.code, code) || strcmp(E.field, field))
        print_error("got code=%s field=%s message=%s\n", E.code, E.field, E.message);
    assert_string_equal(E.code, code);
    assert_string_equal(E.field, field);
    if (sub && !strstr(E.message, sub))
        print_error("message \"%s\" lacks \"%s\"\n", E.message, sub);
    assert_true(!sub || strstr(E.message, sub));
}

/* decode a number body; rc expected */
static int number(const char *body, bool is_import, bool allow_platform, struct tl_phone_number *n,
                  bool *agent_given, struct tl_warnings *w)
{
    json_t *j = parse(body);
    memset(&E, 0, sizeof E);
    int rc = tl_codec_number_decode(j, is_import, allow_platform, n, agent_given, w, &E);
    json_decref(j);
    return rc;
}

static void number_refused(const char *body, bool is_import, const char *code, const char *field,
                           const char *sub)
{
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    bool ag;
    int rc = number(body, is_import, false, &n, &ag, &w);
    if (rc != EINVAL)
        print_error("accepted: %s\n", body);
    assert_int_equal(rc, EINVAL);
    expect_err(code, field, sub);
}

static void parse_refused(const char *body, size_t len, const char *sub)
{
    memset(&E, 0, sizeof E);
    json_t *j = tl_json_parse_body(body, len, &E);
    if (j)
        print_error("parsed: %.*s\n", (int)len, body);
    assert_null(j);
    expect_err("invalid_json", "", sub);
}

/* ---- the spec's import ---- */

static void spec_import(void **state)
{
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    bool ag = false;
    assert_int_equal(number(SPEC_IMPORT, true, false, &n, &ag, &w), 0);
    assert_string_equal(n.number, "+493012345678");
    assert_string_equal(n.label, "Berlin office");
    assert_int_equal(n.source, TL_SOURCE_SIP_TRUNK);
    assert_true(ag);
    assert_string_equal(n.agent_id, "");
    assert_string_equal(n.outbound.address, "sip.telnyx.com");
    assert_string_equal(n.outbound.username, "acme_trunk");
    assert_string_equal(n.outbound.password, "s3cret-Pa55");
    assert_true(n.outbound.password_given);
    assert_int_equal(n.outbound.transport, TL_TRANSPORT_TLS);
    assert_int_equal(n.outbound.media_encryption, TL_MEDIA_REQUIRED);
    assert_int_equal(n.outbound.n_headers, 1);
    assert_string_equal(n.outbound.headers[0].name, "X-Customer-Id");
    assert_string_equal(n.outbound.headers[0].value, "4711");
    assert_true(n.has_inbound);
    assert_int_equal(n.inbound.transport, TL_TRANSPORT_TLS);
    assert_int_equal(n.inbound.n_allowed, 2);
    assert_string_equal(n.inbound.allowed_addresses[0], "203.0.113.0/24");
    assert_string_equal(n.inbound.allowed_addresses[1], "198.51.100.7");
    assert_string_equal(n.inbound.origination_url, "");
    assert_false(n.inbound.password_given);
    assert_int_equal(w.n, 0);
}

static void minimal_import_defaults(void **state)
{
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    bool ag = true;
    assert_int_equal(number("{\"number\":\"+14155550100\",\"outbound_trunk\":{\"address\":"
                            "\"yourname.pstn.twilio.com\"}}",
                            true, false, &n, &ag, &w),
                     0);
    assert_false(ag);
    assert_int_equal(n.outbound.transport, TL_TRANSPORT_TLS);
    assert_int_equal(n.outbound.media_encryption, TL_MEDIA_REQUIRED);
    assert_false(n.outbound.password_given);
    assert_false(n.has_inbound);
    assert_int_equal(w.n, 0);

    /* inbound null = disabled; inbound {} = enabled with defaults */
    assert_int_equal(number("{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.example\"},"
                            "\"inbound_trunk\":null}",
                            true, false, &n, &ag, &w),
                     0);
    assert_false(n.has_inbound);
    assert_int_equal(number("{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.example\"},"
                            "\"inbound_trunk\":{\"allowed_addresses\":[\"10.0.0.0/8\"]}}",
                            true, false, &n, &ag, &w),
                     0);
    assert_true(n.has_inbound);
    assert_int_equal(n.inbound.transport, TL_TRANSPORT_TLS);
    assert_int_equal(n.inbound.media_encryption, TL_MEDIA_REQUIRED);

    /* the canonical form of allowed addresses is what is stored */
    assert_int_equal(number("{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.example\"},"
                            "\"inbound_trunk\":{\"allowed_addresses\":[\"2001:DB8::/32\","
                            "\"203.0.113.7/32\"]}}",
                            true, false, &n, &ag, &w),
                     0);
    assert_string_equal(n.inbound.allowed_addresses[0], "2001:db8::/32");
    assert_string_equal(n.inbound.allowed_addresses[1], "203.0.113.7");
    assert_int_equal(n.inbound.rtp_latching, TL_LATCHING_DEFAULT); /* absent */

    /* rtp_latching: a media-layer name, or null for the gateway's setting */
    static const struct {
        const char *v;
        enum tl_rtp_latching want;
    } lt[] = {{"\"any\"", TL_LATCHING_ANY},
              {"\"sdp-ip\"", TL_LATCHING_SDP_IP},
              {"\"off\"", TL_LATCHING_OFF},
              {"null", TL_LATCHING_DEFAULT}};
    for (size_t i = 0; i < sizeof lt / sizeof lt[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.example\"},"
                 "\"inbound_trunk\":{\"allowed_addresses\":[\"10.0.0.0/8\"],\"rtp_latching\":%s}}",
                 lt[i].v);
        memset(&w, 0, sizeof w);
        assert_int_equal(number(body, true, false, &n, &ag, &w), 0);
        assert_int_equal(n.inbound.rtp_latching, lt[i].want);
        assert_int_equal(w.n, 0);
    }
    /* any without SRTP: saved, with a warning naming the field */
    memset(&w, 0, sizeof w);
    assert_int_equal(number("{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.example\"},"
                            "\"inbound_trunk\":{\"media_encryption\":\"disabled\",\"transport\":"
                            "\"tcp\",\"rtp_latching\":\"any\",\"allow_any_source\":true}}",
                            true, false, &n, &ag, &w),
                     0);
    bool warned = false;
    for (size_t i = 0; i < w.n; i++)
        warned |= !strcmp(w.w[i].code, "rtp_latching_any") &&
                  !strcmp(w.w[i].field, "inbound_trunk.rtp_latching");
    assert_true(warned);
}

/* ---- refusals: code and field path ---- */

#define OB(members)  "{\"number\":\"+493012345678\",\"outbound_trunk\":{" members "}}"
#define OBA(members) OB("\"address\":\"sip.telnyx.com\"," members)
#define IB(members)                                                                                \
    "{\"number\":\"+493012345678\",\"outbound_trunk\":{\"address\":\"sip.telnyx.com\"},"           \
    "\"inbound_trunk\":{" members "}}"

static void unknown_fields(void **state)
{
    number_refused("{\"nmber\":\"+1\"}", true, "unknown_field", "nmber", "did you mean \"number\"");
    number_refused(OB("\"adress\":\"sip.telnyx.com\""), true, "unknown_field",
                   "outbound_trunk.adress", "did you mean \"address\"");
    number_refused(OBA("\"media_encrpytion\":\"required\""), true, "unknown_field",
                   "outbound_trunk.media_encrpytion", "allowed members: address, username");
    number_refused(OBA("\"headers\":[{\"name\":\"X-A\",\"val\":\"1\"}]"), true, "unknown_field",
                   "outbound_trunk.headers[0].val", "allowed members: name, value");
    number_refused(IB("\"allowed\":[]"), true, "unknown_field", "inbound_trunk.allowed",
                   "allowed_addresses");
    number_refused(IB("\"address\":\"x.example\""), true, "unknown_field", "inbound_trunk.address",
                   NULL);
    /* read-only members of the response are not accepted back */
    number_refused(OBA("\"has_password\":true"), true, "unknown_field",
                   "outbound_trunk.has_password", NULL);
    number_refused("{\"id\":\"pn_x\"}", true, "unknown_field", "id", NULL);
}

static void wrong_types(void **state)
{
    number_refused(OBA("\"transport\":1"), true, "invalid_type", "outbound_trunk.transport",
                   "outbound_trunk.transport must be a string");
    number_refused(OBA("\"transport\":null"), true, "invalid_type", "outbound_trunk.transport",
                   "must be a string");
    number_refused("{\"number\":493012345678,\"outbound_trunk\":{\"address\":\"a.example\"}}", true,
                   "invalid_type", "number", "number must be a string");
    number_refused("{\"number\":\"+1\",\"outbound_trunk\":\"sip.telnyx.com\"}", true,
                   "invalid_type", "outbound_trunk", "must be an object");
    number_refused("{\"number\":\"+1\",\"outbound_trunk\":[]}", true, "invalid_type",
                   "outbound_trunk", "must be an object, not an array");
    number_refused(OBA("\"headers\":{}"), true, "invalid_type", "outbound_trunk.headers",
                   "must be an array");
    number_refused(OBA("\"headers\":[\"X-A: 1\"]"), true, "invalid_type",
                   "outbound_trunk.headers[0]", "must be an object");
    number_refused(OBA("\"headers\":[{\"name\":\"X-A\",\"value\":1}]"), true, "invalid_type",
                   "outbound_trunk.headers[0].value", "must be a string");
    number_refused(OBA("\"username\":true"), true, "invalid_type", "outbound_trunk.username",
                   "a string or null");
    number_refused(IB("\"allowed_addresses\":\"10.0.0.0/8\""), true, "invalid_type",
                   "inbound_trunk.allowed_addresses", "must be an array");
    number_refused(IB("\"allowed_addresses\":[167772160]"), true, "invalid_type",
                   "inbound_trunk.allowed_addresses[0]", "must be a string");
    number_refused("{\"number\":\"+1\",\"agent_id\":5,\"outbound_trunk\":{\"address\":\"a.b\"}}",
                   true, "invalid_type", "agent_id", "a string or null");
    number_refused("{\"number\":\"+1\",\"label\":[],\"outbound_trunk\":{\"address\":\"a.b\"}}",
                   true, "invalid_type", "label", NULL);
    number_refused("{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.b\"},"
                   "\"inbound_trunk\":true}",
                   true, "invalid_type", "inbound_trunk", "must be an object");
}

static void too_long(void **state)
{
    char body[4096], s[1024];
    memset(s, 'l', 129);
    s[129] = '\0';
    snprintf(body, sizeof body,
             "{\"number\":\"+1\",\"label\":\"%s\",\"outbound_trunk\":{\"address\":\"a.b\"}}", s);
    number_refused(body, true, "invalid_field", "label", "129 bytes long; at most 128");
    memset(s, 'v', 257);
    s[257] = '\0';
    snprintf(body, sizeof body, OBA("\"headers\":[{\"name\":\"X-A\",\"value\":\"%s\"}]"), s);
    number_refused(body, true, "invalid_field", "outbound_trunk.headers[0].value", "at most 256");
    memset(s, 'n', 65);
    s[65] = '\0';
    snprintf(body, sizeof body, OBA("\"headers\":[{\"name\":\"%s\",\"value\":\"1\"}]"), s);
    number_refused(body, true, "invalid_field", "outbound_trunk.headers[0].name", "at most 64");
    memset(s, 'a', 600);
    s[600] = '\0';
    snprintf(body, sizeof body, OB("\"address\":\"%s\""), s);
    number_refused(body, true, "invalid_field", "outbound_trunk.address", "at most 512");
    snprintf(body, sizeof body, OBA("\"password\":\"%.129s\""), s);
    number_refused(body, true, "invalid_field", "outbound_trunk.password", "at most 128");
    memset(s, '9', 70);
    s[0] = '+';
    s[70] = '\0';
    snprintf(body, sizeof body, "{\"number\":\"%s\",\"outbound_trunk\":{\"address\":\"a.b\"}}", s);
    number_refused(body, true, "invalid_field", "number", "at most 63");
    s[20] = '\0';
    snprintf(body, sizeof body, "{\"number\":\"%s\",\"outbound_trunk\":{\"address\":\"a.b\"}}", s);
    number_refused(body, true, "invalid_field", "number", "at most 15");
}

static void header_rules(void **state)
{
    number_refused(OBA("\"headers\":[{\"name\":\"X-A\",\"value\":\"b\\r\\nVia: evil\"}]"), true,
                   "invalid_field", "outbound_trunk.headers[0].value", "line breaks");
    number_refused(OBA("\"headers\":[{\"name\":\"X-A: b\\r\\nVia: evil\",\"value\":\"1\"}]"), true,
                   "invalid_field", "outbound_trunk.headers[0].name", "without ':'");
    number_refused(OBA("\"headers\":[{\"name\":\"via\",\"value\":\"SIP/2.0/TLS evil\"}]"), true,
                   "invalid_field", "outbound_trunk.headers[0].name", "Via is set by the gateway");
    number_refused(IB("\"headers\":[{\"name\":\"X-A\",\"value\":\"1\"},{\"name\":\"Call-ID\","
                      "\"value\":\"x\"}]"),
                   true, "invalid_field", "inbound_trunk.headers[1].name", "Call-ID");
    number_refused(OBA("\"headers\":[{\"name\":\"X-A\",\"value\":\"1\"},{\"name\":\"x-a\","
                       "\"value\":\"2\"}]"),
                   true, "invalid_field", "outbound_trunk.headers[1].name", "already given");
    number_refused(OBA("\"headers\":[{\"value\":\"1\"}]"), true, "invalid_field",
                   "outbound_trunk.headers[0].name", "required");
    number_refused(OBA("\"headers\":[{\"name\":\"X-A\"}]"), true, "invalid_field",
                   "outbound_trunk.headers[0].value", "required");

    char body[4096];
    size_t at = (size_t)snprintf(body, sizeof body, "%s",
                                 "{\"number\":\"+1\",\"outbound_trunk\":{\"address\":\"a.b\","
                                 "\"headers\":[");
    for (int i = 0; i < 17; i++)
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "%s{\"name\":\"X-H%d\",\"value\":\"v\"}", i ? "," : "", i);
    snprintf(body + at, sizeof body - at, "]}}");
    number_refused(body, true, "invalid_field", "outbound_trunk.headers", "at most 16");

    /* 16 are fine */
    char *p = strstr(body, ",{\"name\":\"X-H16\"");
    assert_non_null(p);
    strcpy(p, "]}}");
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    assert_int_equal(number(body, true, false, &n, NULL, &w), 0);
    assert_int_equal(n.outbound.n_headers, 16);
}

static void missing_and_rules(void **state)
{
    number_refused("{\"outbound_trunk\":{\"address\":\"a.b\"}}", true, "invalid_field", "number",
                   "required");
    number_refused("{\"number\":\"+1\"}", true, "invalid_field", "outbound_trunk", "required");
    number_refused("{\"number\":\"+1\",\"outbound_trunk\":null}", true, "invalid_field",
                   "outbound_trunk", "required");
    number_refused("{\"outbound_trunk\":{\"address\":\"a.b\"}}", true, "invalid_field", "number",
                   "required");
    number_refused("{\"number\":\"+1\",\"outbound_trunk\":{}}", true, "invalid_field",
                   "outbound_trunk.address", "required");
    number_refused("{\"number\":\"493012345678\",\"outbound_trunk\":{\"address\":\"a.b\"}}", true,
                   "invalid_field", "number", "use \"+493012345678\"");
    number_refused("{\"number\":\"+49 30 1234 5678\",\"outbound_trunk\":{\"address\":\"a.b\"}}",
                   true, "invalid_field", "number", "use \"+493012345678\"");
    number_refused(OB("\"address\":\"sip:sip.telnyx.com:5060\""), true, "invalid_field",
                   "outbound_trunk.address", "use \"sip.telnyx.com\"");
    number_refused(OBA("\"transport\":\"TLS\""), true, "invalid_field", "outbound_trunk.transport",
                   "use \"tls\"");
    number_refused(OBA("\"transport\":\"sctp\""), true, "invalid_field", "outbound_trunk.transport",
                   "tls, tcp, udp");
    number_refused(OBA("\"media_encryption\":\"srtp\""), true, "invalid_field",
                   "outbound_trunk.media_encryption", "required, allowed, disabled");
    number_refused(IB("\"transport\":\"udp\""), true, "invalid_field", "inbound_trunk.transport",
                   "inbound calls over UDP are not accepted; choose tls or tcp");
    number_refused(IB("\"allowed_addresses\":[\"10.0.0.5/24\"]"), true, "invalid_field",
                   "inbound_trunk.allowed_addresses[0]", "use \"10.0.0.0/24\"");
    number_refused(IB("\"allowed_addresses\":[\"10.0.0.0/24\",\"10.0.0.0/24\"]"), true,
                   "invalid_field", "inbound_trunk.allowed_addresses[1]", "already given");
    number_refused(IB("\"origination_url\":\"pbx.example.com\""), true, "invalid_field",
                   "inbound_trunk.origination_url", "sip: or sips:");
    number_refused(IB("\"rtp_latching\":\"first\""), true, "invalid_field",
                   "inbound_trunk.rtp_latching", "sdp-ip, any, off");
    number_refused(IB("\"rtp_latching\":\"ANY\""), true, "invalid_field",
                   "inbound_trunk.rtp_latching", "use \"any\"");
    number_refused(IB("\"rtp_latching\":true"), true, "invalid_type", "inbound_trunk.rtp_latching",
                   "must be a string");
    number_refused("{\"number\":\"+1\",\"agent_id\":\"agent-1\",\"outbound_trunk\":"
                   "{\"address\":\"a.b\"}}",
                   true, "invalid_field", "agent_id", "ag_");
    number_refused("{\"number\":\"+1\",\"agent_id\":\"ws_0123456789abcdefghjkmnpqrs\","
                   "\"outbound_trunk\":{\"address\":\"a.b\"}}",
                   true, "invalid_field", "agent_id", NULL);
}

static void password_on_import_and_put(void **state)
{
    const char *body = OBA("\"username\":\"acme_trunk\"");
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    number_refused(body, true, "invalid_field", "outbound_trunk.password",
                   "required when a username is given");
    number_refused(OBA("\"username\":\"acme_trunk\",\"password\":null"), true, "invalid_field",
                   "outbound_trunk.password", "required when a username is given");
    number_refused(IB("\"username\":\"zeeg\""), true, "invalid_field", "inbound_trunk.password",
                   "required when a username is given");
    /* PUT: the store keeps the stored password when the username is unchanged */
    assert_int_equal(number(body, false, false, &n, NULL, &w), 0);
    assert_false(n.outbound.password_given);
    /* but an explicit empty password next to a username is wrong on PUT too */
    number_refused(OBA("\"username\":\"acme_trunk\",\"password\":\"\""), false, "invalid_field",
                   "outbound_trunk.password", "required");
    /* PUT without number is fine (the handler checks it equals the stored one) */
    assert_int_equal(
        number("{\"outbound_trunk\":{\"address\":\"a.b\"}}", false, false, &n, NULL, &w), 0);
    assert_string_equal(n.number, "");
}

static void source_and_agent(void **state)
{
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    bool ag;
    const char *plat =
        "{\"number\":\"+1\",\"source\":\"platform\",\"outbound_trunk\":{\"address\":\"a.b\"}}";
    number_refused(plat, true, "invalid_field", "source",
                   "numbers bought from the platform are provisioned by the operator");
    assert_int_equal(number(plat, true, true, &n, &ag, &w), 0);
    assert_int_equal(n.source, TL_SOURCE_PLATFORM);
    assert_int_equal(number("{\"number\":\"+1\",\"source\":\"sip_trunk\",\"outbound_trunk\":"
                            "{\"address\":\"a.b\"}}",
                            true, false, &n, &ag, &w),
                     0);
    assert_int_equal(n.source, TL_SOURCE_SIP_TRUNK);
    number_refused("{\"number\":\"+1\",\"source\":\"twilio\",\"outbound_trunk\":"
                   "{\"address\":\"a.b\"}}",
                   true, "invalid_field", "source", "sip_trunk, platform");

    char body[512];
    snprintf(body, sizeof body,
             "{\"number\":\"+1\",\"agent_id\":\"%s\",\"outbound_trunk\":{\"address\":\"a.b\"}}",
             AGENT_ID);
    ag = false;
    assert_int_equal(number(body, true, false, &n, &ag, &w), 0);
    assert_true(ag);
    assert_string_equal(n.agent_id, AGENT_ID);
    ag = false;
    assert_int_equal(number("{\"number\":\"+1\",\"agent_id\":\"\",\"outbound_trunk\":"
                            "{\"address\":\"a.b\"}}",
                            true, false, &n, &ag, &w),
                     0);
    assert_true(ag);
    assert_string_equal(n.agent_id, "");
}

static void warnings(void **state)
{
    struct tl_phone_number n;
    struct tl_warnings w = {0};
    assert_int_equal(number(OBA("\"transport\":\"tls\",\"media_encryption\":\"disabled\""), true,
                            false, &n, NULL, &w),
                     0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "media_unencrypted");
    assert_string_equal(w.w[0].field, "outbound_trunk.media_encryption");

    memset(&w, 0, sizeof w);
    assert_int_equal(number(OBA("\"transport\":\"udp\",\"media_encryption\":\"required\""), true,
                            false, &n, NULL, &w),
                     0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "srtp_keys_in_clear");
    assert_non_null(strstr(w.w[0].message, "udp"));

    /* the warnings reach the response, only when there are some */
    strcpy(n.id, "pn_0123456789abcdefghjkmnpqrs");
    json_t *o = tl_codec_number_encode(&n, &w);
    assert_non_null(o);
    json_t *wa = json_object_get(o, "warnings");
    assert_true(json_is_array(wa));
    assert_int_equal(json_array_size(wa), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(wa, 0), "code")),
                        "srtp_keys_in_clear");
    assert_string_equal(json_string_value(json_object_get(json_array_get(wa, 0), "field")),
                        "outbound_trunk.media_encryption");
    json_decref(o);
    w.n = 0;
    o = tl_codec_number_encode(&n, &w);
    assert_null(json_object_get(o, "warnings"));
    json_decref(o);
    o = tl_codec_number_encode(&n, NULL);
    assert_null(json_object_get(o, "warnings"));
    json_decref(o);
}

/* ---- body parsing ---- */

static void body_parsing(void **state)
{
    char deep[64];
    /* 9 levels: refused before jansson; 8 levels parse */
    strcpy(deep, "{\"a\":[[[[[[[[1]]]]]]]]}");
    parse_refused(deep, strlen(deep), "nesting deeper than 8");
    strcpy(deep, "{\"a\":[[[[[[[1]]]]]]]}");
    json_t *j = parse(deep);
    json_decref(j);
    /* brackets inside strings are not nesting, escaped quotes do not end a string */
    j = parse("{\"a\":\"[[[[[[[[[[{{{{{{{{{\",\"b\":\"\\\"[[[[[[[[[[[[\"}");
    json_decref(j);
    strcpy(deep, "[[[[[[[[[");
    parse_refused(deep, strlen(deep), "deeper than 8");

    parse_refused("{\"number\":\"+1\",\"number\":\"+2\"}", 29, "duplicate");
    parse_refused("{\"number\":", 10, "line 1");
    parse_refused("{\"a\":1,}", 8, "not valid JSON");
    parse_refused("[]", 2, "must be a JSON object");
    parse_refused("\"x\"", 3, "must be a JSON object");
    parse_refused("42", 2, "must be a JSON object");
    parse_refused("null", 4, "must be a JSON object");
    parse_refused("", 0, "empty");
    parse_refused(NULL, 0, "empty");
    parse_refused("{\"a\":\"x\\u0000y\"}", 16, "\\u0000");
    parse_refused("{\"a\":\"x\0y\"}", 10, NULL);                /* raw NUL byte */
    parse_refused("{\"a\":\"\xff\"}", 8, NULL);                 /* invalid UTF-8 */
    parse_refused("{\"a\":1} {\"b\":2}", 15, "not valid JSON"); /* trailing data */
    /* body not NUL-terminated: only len bytes are read */
    j = tl_json_parse_body("{\"a\":1}XXXX", 7, &E);
    assert_non_null(j);
    json_decref(j);
    /* a non-object to a decoder */
    struct tl_phone_number n;
    j = json_array();
    assert_int_equal(tl_codec_number_decode(j, true, false, &n, NULL, NULL, &E), EINVAL);
    assert_string_equal(E.code, "invalid_type");
    json_decref(j);
}

/* ---- encoding ---- */

static void fill_number(struct tl_phone_number *n)
{
    memset(n, 0, sizeof *n);
    strcpy(n->id, "pn_0123456789abcdefghjkmnpqrs");
    strcpy(n->workspace_id, "ws_0123456789abcdefghjkmnpqrs");
    strcpy(n->number, "+493012345678");
    strcpy(n->label, "Berlin");
    strcpy(n->outbound.address, "sip.telnyx.com");
    strcpy(n->outbound.username, "acme_trunk");
    strcpy(n->outbound.password, "TopSecret-Outbound-123");
    n->outbound.password_given = true;
    n->outbound.has_password = true;
    strcpy(n->outbound.headers[0].name, "X-Customer-Id");
    strcpy(n->outbound.headers[0].value, "4711");
    n->outbound.n_headers = 1;
    n->has_inbound = true;
    n->inbound.transport = TL_TRANSPORT_TCP;
    strcpy(n->inbound.username, "zeeg");
    strcpy(n->inbound.password, "TopSecret-Inbound-456");
    n->inbound.password_given = true;
    strcpy(n->inbound.allowed_addresses[0], "203.0.113.0/24");
    n->inbound.n_allowed = 1;
    n->created_at = 1795681524123; /* 2026-11-26T08:25:24.123Z */
    n->updated_at = 1795681524123;
}

static void number_encode(void **state)
{
    struct tl_phone_number n;
    fill_number(&n);
    json_t *o = tl_codec_number_encode(&n, NULL);
    assert_non_null(o);
    char *s = json_dumps(o, JSON_COMPACT);
    assert_non_null(s);
    /* never a password: not its value, not a member of that name */
    assert_null(strstr(s, "TopSecret"));
    assert_null(strstr(s, "\"password\""));
    free(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "phone_number");
    assert_string_equal(json_string_value(json_object_get(o, "id")), n.id);
    assert_string_equal(json_string_value(json_object_get(o, "number")), "+493012345678");
    assert_string_equal(json_string_value(json_object_get(o, "source")), "sip_trunk");
    assert_true(json_is_null(json_object_get(o, "agent_id")));
    json_t *ob = json_object_get(o, "outbound_trunk");
    assert_string_equal(json_string_value(json_object_get(ob, "address")), "sip.telnyx.com");
    assert_string_equal(json_string_value(json_object_get(ob, "username")), "acme_trunk");
    assert_true(json_is_true(json_object_get(ob, "has_password")));
    assert_string_equal(json_string_value(json_object_get(ob, "transport")), "tls");
    assert_string_equal(json_string_value(json_object_get(ob, "media_encryption")), "required");
    json_t *h = json_array_get(json_object_get(ob, "headers"), 0);
    assert_string_equal(json_string_value(json_object_get(h, "name")), "X-Customer-Id");
    assert_string_equal(json_string_value(json_object_get(h, "value")), "4711");
    json_t *ib = json_object_get(o, "inbound_trunk");
    assert_true(json_is_object(ib));
    assert_string_equal(json_string_value(json_object_get(ib, "transport")), "tcp");
    assert_true(json_is_true(json_object_get(ib, "has_password")));
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(ib, "allowed_addresses"), 0)),
        "203.0.113.0/24");
    assert_true(json_is_null(json_object_get(ib, "origination_url")));
    assert_int_equal(json_array_size(json_object_get(ib, "headers")), 0);
    assert_true(json_is_null(json_object_get(ib, "rtp_latching"))); /* the gateway's setting */
    assert_string_equal(json_string_value(json_object_get(o, "created_at")),
                        "2026-11-26T08:25:24.123Z");
    json_decref(o);
    n.inbound.rtp_latching = TL_LATCHING_ANY;
    o = tl_codec_number_encode(&n, NULL);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "inbound_trunk"), "rtp_latching")),
        "any");
    json_decref(o);

    /* inbound disabled, no username */
    n.has_inbound = false;
    n.outbound.username[0] = '\0';
    n.outbound.password_given = false;
    n.outbound.has_password = false;
    strcpy(n.agent_id, AGENT_ID);
    o = tl_codec_number_encode(&n, NULL);
    assert_true(json_is_null(json_object_get(o, "inbound_trunk")));
    ob = json_object_get(o, "outbound_trunk");
    assert_true(json_is_null(json_object_get(ob, "username")));
    assert_true(json_is_false(json_object_get(ob, "has_password")));
    assert_string_equal(json_string_value(json_object_get(o, "agent_id")), AGENT_ID);
    json_decref(o);

    /* round trip: decoded spec import, encoded, passwords absent */
    struct tl_warnings w = {0};
    assert_int_equal(number(SPEC_IMPORT, true, false, &n, NULL, &w), 0);
    o = tl_codec_number_encode(&n, &w);
    s = json_dumps(o, 0);
    assert_null(strstr(s, "s3cret-Pa55"));
    free(s);
    json_decref(o);
}

/* ---- agents ---- */

static int agent(const char *body, bool is_create, struct tl_agent *a)
{
    json_t *j = parse(body);
    memset(&E, 0, sizeof E);
    int rc = tl_codec_agent_decode(j, is_create, a, &E);
    json_decref(j);
    return rc;
}

static void agent_refused(const char *body, bool is_create, struct tl_agent *a, const char *code,
                          const char *field, const char *sub)
{
    struct tl_agent tmp;
    if (!a) {
        memset(&tmp, 0, sizeof tmp);
        a = &tmp;
    }
    int rc = agent(body, is_create, a);
    if (rc != EINVAL)
        print_error("accepted: %s\n", body);
    assert_int_equal(rc, EINVAL);
    expect_err(code, field, sub);
}

static void agent_decode(void **state)
{
    struct tl_agent a;
    assert_int_equal(
        agent("{\"name\":\"Echo\",\"kind\":\"builtin\",\"builtin\":\"echo\"}", true, &a), 0);
    assert_int_equal(a.kind, TL_AGENT_BUILTIN);
    assert_string_equal(a.builtin, "echo");

    assert_int_equal(agent("{\"name\":\"Reception\",\"kind\":\"websocket\",\"url\":"
                           "\"wss://agent.example.com/media\",\"parameters\":{\"lang\":\"de\","
                           "\"customer_id\":\"4711\"},\"headers\":[{\"name\":\"Authorization\","
                           "\"value\":\"Bearer sk-live-SECRET\"}]}",
                           true, &a),
                     0);
    assert_int_equal(a.kind, TL_AGENT_WEBSOCKET);
    assert_string_equal(a.url, "wss://agent.example.com/media");
    assert_int_equal(a.n_params, 2);
    assert_string_equal(a.params[0].key, "lang");
    assert_string_equal(a.params[1].value, "4711");
    assert_int_equal(a.n_headers, 1);
    assert_string_equal(a.headers[0].value, "Bearer sk-live-SECRET");
    assert_false(a.values_hidden);

    /* encode: no header values */
    strcpy(a.id, AGENT_ID);
    json_t *o = tl_codec_agent_encode(&a, NULL);
    char *s = json_dumps(o, 0);
    assert_null(strstr(s, "SECRET"));
    assert_null(strstr(s, "\"value\""));
    assert_null(strstr(s, "\"builtin\""));
    free(s);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "agent");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "websocket");
    assert_string_equal(json_string_value(json_object_get(o, "url")), a.url);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(o, "parameters"), "customer_id")),
        "4711");
    json_t *h = json_array_get(json_object_get(o, "headers"), 0);
    assert_string_equal(json_string_value(json_object_get(h, "name")), "Authorization");
    assert_true(json_is_true(json_object_get(h, "value_set")));
    json_decref(o);

    /* PATCH merges: name only; header without value keeps the stored one */
    struct tl_agent stored = a;
    stored.headers[0].value[0] = '\0';
    stored.values_hidden = true;
    a = stored;
    assert_int_equal(agent("{\"name\":\"Front desk\"}", false, &a), 0);
    assert_string_equal(a.name, "Front desk");
    assert_string_equal(a.url, stored.url);
    assert_int_equal(a.n_params, 2);
    a = stored;
    assert_int_equal(agent("{\"headers\":[{\"name\":\"Authorization\"},{\"name\":\"X-Org\","
                           "\"value\":\"acme\"}],\"parameters\":null}",
                           false, &a),
                     0);
    assert_int_equal(a.n_headers, 2);
    assert_true(a.values_hidden);
    assert_int_equal(a.n_params, 0);
    /* switching kind drops the other kind's member */
    a = stored;
    assert_int_equal(agent("{\"kind\":\"builtin\",\"builtin\":\"echo\"}", false, &a), 0);
    assert_string_equal(a.url, "");
    assert_string_equal(a.builtin, "echo");
    o = tl_codec_agent_encode(&a, NULL);
    assert_null(json_object_get(o, "url"));
    assert_string_equal(json_string_value(json_object_get(o, "builtin")), "echo");
    json_decref(o);
}

/* kind twiml: voice_url (stored in url), method, fallback_url, status_callback, timeout_ms */
static void agent_twiml_codec(void **state)
{
    struct tl_agent a;
    assert_int_equal(agent("{\"name\":\"Pipecat\",\"kind\":\"twiml\",\"voice_url\":"
                           "\"https://bot.example.com/voice\",\"method\":\"GET\","
                           "\"fallback_url\":\"https://backup.example.com/v\",\"timeout_ms\":8000}",
                           true, &a),
                     0);
    assert_int_equal(a.kind, TL_AGENT_TWIML);
    assert_string_equal(a.url, "https://bot.example.com/voice");
    assert_true(a.method_get);
    assert_string_equal(a.fallback_url, "https://backup.example.com/v");
    assert_string_equal(a.status_callback, "");
    assert_int_equal(a.connect_timeout_ms, 8000);
    json_t *o = tl_codec_agent_encode(&a, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "voice_url")),
                        "https://bot.example.com/voice");
    assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
    assert_true(json_is_null(json_object_get(o, "status_callback")));
    assert_int_equal(json_integer_value(json_object_get(o, "timeout_ms")), 8000);
    assert_null(json_object_get(o, "url"));
    assert_null(json_object_get(o, "connect_timeout_ms"));
    json_decref(o);
    /* PATCH: null clears the fallback, method back to POST, a status callback added */
    assert_int_equal(agent("{\"fallback_url\":null,\"method\":\"POST\",\"status_callback\":"
                           "\"https://bot.example.com/status\"}",
                           false, &a),
                     0);
    assert_string_equal(a.fallback_url, "");
    assert_false(a.method_get);
    assert_string_equal(a.status_callback, "https://bot.example.com/status");
    /* to websocket: the twiml members go */
    assert_int_equal(
        agent("{\"kind\":\"websocket\",\"url\":\"wss://bot.example.com/ws\"}", false, &a), 0);
    assert_string_equal(a.status_callback, "");
    assert_string_equal(a.url, "wss://bot.example.com/ws");

    agent_refused("{\"name\":\"A\",\"kind\":\"twiml\"}", true, NULL, "invalid_field", "voice_url",
                  "required");
    agent_refused("{\"name\":\"A\",\"kind\":\"twiml\",\"url\":\"https://x.example/v\"}", true, NULL,
                  "invalid_field", "url", "a twiml agent takes voice_url");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"voice_url\":\"https://x.example/v\"}",
                  true, NULL, "invalid_field", "voice_url", "that belongs to twiml agents");
    agent_refused("{\"name\":\"A\",\"kind\":\"twiml\",\"voice_url\":\"https://x.example/v\","
                  "\"method\":\"PUT\"}",
                  true, NULL, "invalid_field", "method", "\"POST\"");
    agent_refused("{\"name\":\"A\",\"kind\":\"twiml\",\"voice_url\":\"https://x.example/v\","
                  "\"timeout_ms\":99}",
                  true, NULL, "invalid_field", "timeout_ms", "between 100");
    agent_refused("{\"name\":\"A\",\"kind\":\"twiml\",\"voice_url\":\"https://x.example/v\","
                  "\"connect_timeout_ms\":1000}",
                  true, NULL, "invalid_field", "connect_timeout_ms", "timeout_ms");
}

static void agent_refusals(void **state)
{
    agent_refused("{\"kind\":\"builtin\",\"builtin\":\"echo\"}", true, NULL, "invalid_field",
                  "name", "required");
    agent_refused("{\"name\":\"A\"}", true, NULL, "invalid_field", "kind", "required");
    agent_refused("{\"name\":\"A\",\"kind\":\"builtin\",\"builtin\":\"echo\",\"url\":\"wss://x\"}",
                  true, NULL, "invalid_field", "url", "a builtin agent has no url");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"builtin\":\"echo\"}",
                  true, NULL, "invalid_field", "builtin", "a websocket agent has no builtin");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\"}", true, NULL, "invalid_field", "url",
                  "required");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"https://x.example/a\"}", true,
                  NULL, "invalid_field", "url", "use \"wss://x.example/a\"");
    agent_refused("{\"name\":\"A\",\"kind\":\"robot\"}", true, NULL, "invalid_field", "kind",
                  "builtin, websocket");
    agent_refused("{\"name\":\"A\",\"kind\":\"builtin\",\"builtin\":\"echo\",\"prompt\":\"x\"}",
                  true, NULL, "unknown_field", "prompt", NULL);
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"parameters\":{\"a\":1}}",
                  true, NULL, "invalid_type", "parameters.a", "must be a string");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"parameters\":{\"a b\":\"1\"}}",
                  true, NULL, "invalid_field", "parameters.a b", NULL);
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"parameters\":[]}",
                  true, NULL, "invalid_type", "parameters", NULL);
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"headers\":[{\"name\":\"Host\",\"value\":\"evil\"}]}",
                  true, NULL, "invalid_field", "headers[0].name", "handshake");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"headers\":[{\"name\":\"X-Key\",\"value\":\"a\\r\\nHost: evil\"}]}",
                  true, NULL, "invalid_field", "headers[0].value", "line breaks");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"headers\":[{\"name\":\"X-Key\"}]}",
                  true, NULL, "invalid_field", "headers[0].value", "required");
    agent_refused("{\"name\":\"A\",\"kind\":\"websocket\",\"url\":\"wss://x.example\","
                  "\"headers\":[{\"name\":\"X-Key\",\"value\":\"\"}]}",
                  true, NULL, "invalid_field", "headers[0].value", "required");

    /* PATCH of a builtin agent with a url, without changing kind */
    struct tl_agent a;
    memset(&a, 0, sizeof a);
    strcpy(a.name, "Echo");
    strcpy(a.builtin, "echo");
    agent_refused("{\"url\":\"wss://x.example\"}", false, &a, "invalid_field", "url",
                  "a builtin agent has no url");
    agent_refused("{\"name\":\"\"}", false, &a, "invalid_field", "name", "required");
    agent_refused("{\"name\":null}", false, &a, "invalid_type", "name", NULL);
}

/* ---- workspaces and tokens ---- */

static void workspace_codec(void **state)
{
    struct tl_workspace w;
    json_t *j = parse("{\"name\":\"Acme GmbH\"}");
    assert_int_equal(tl_codec_workspace_decode(j, true, &w, &E), 0);
    json_decref(j);
    assert_string_equal(w.name, "Acme GmbH");
    assert_int_equal(w.plan, TL_PLAN_FREE);
    assert_string_equal(w.region, "eu");

    j = parse("{\"plan\":\"professional\",\"region\":\"eu-central\"}");
    assert_int_equal(tl_codec_workspace_decode(j, false, &w, &E), 0);
    json_decref(j);
    assert_string_equal(w.name, "Acme GmbH");
    assert_int_equal(w.plan, TL_PLAN_PROFESSIONAL);
    assert_string_equal(w.region, "eu-central");

    const struct {
        const char *body;
        bool create;
        const char *code, *field, *sub;
    } bad[] = {
        {"{}", true, "invalid_field", "name", "required"},
        {"{\"name\":\"\"}", false, "invalid_field", "name", "required"},
        {"{\"name\":\"A\",\"plan\":\"gold\"}", true, "invalid_field", "plan", "enterprise"},
        {"{\"name\":\"A\",\"plan\":\"Professional\"}", true, "invalid_field", "plan",
         "use \"professional\""},
        {"{\"name\":\"A\",\"region\":\"EU\"}", true, "invalid_field", "region", "use \"eu\""},
        {"{\"name\":\"A\",\"region\":7}", true, "invalid_type", "region", NULL},
        {"{\"name\":\"A\",\"owner\":\"x\"}", true, "unknown_field", "owner", "name, plan, region"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i].body);
        memset(&E, 0, sizeof E);
        assert_int_equal(tl_codec_workspace_decode(j, bad[i].create, &w, &E), EINVAL);
        json_decref(j);
        expect_err(bad[i].code, bad[i].field, bad[i].sub);
    }

    memset(&w, 0, sizeof w);
    strcpy(w.id, "ws_0123456789abcdefghjkmnpqrs");
    strcpy(w.name, "Acme");
    w.plan = TL_PLAN_ENTERPRISE;
    strcpy(w.region, "eu");
    json_t *o = tl_codec_workspace_encode(&w);
    assert_string_equal(json_string_value(json_object_get(o, "object")), "workspace");
    assert_string_equal(json_string_value(json_object_get(o, "plan")), "enterprise");
    assert_string_equal(json_string_value(json_object_get(o, "region")), "eu");
    assert_non_null(json_object_get(o, "updated_at"));
    json_decref(o);
}

static void token_codec(void **state)
{
    struct tl_token t;
    json_t *j = parse("{\"role\":\"admin\",\"name\":\"ci\","
                      "\"workspace_id\":\"ws_0123456789abcdefghjkmnpqrs\"}");
    assert_int_equal(tl_codec_token_decode(j, &t, &E), 0);
    json_decref(j);
    assert_int_equal(t.role, TL_ROLE_ADMIN);
    assert_string_equal(t.name, "ci");
    assert_string_equal(t.workspace_id, "ws_0123456789abcdefghjkmnpqrs");

    j = parse("{\"role\":\"operator\",\"workspace_id\":null}");
    assert_int_equal(tl_codec_token_decode(j, &t, &E), 0);
    json_decref(j);
    assert_int_equal(t.role, TL_ROLE_OPERATOR);
    assert_string_equal(t.workspace_id, "");

    const struct {
        const char *body, *code, *field;
    } bad[] = {
        {"{}", "invalid_field", "role"},
        {"{\"role\":\"root\"}", "invalid_field", "role"},
        {"{\"role\":\"member\",\"workspace_id\":\"acme\"}", "invalid_field", "workspace_id"},
        {"{\"role\":\"member\",\"workspace_id\":1}", "invalid_type", "workspace_id"},
        {"{\"role\":\"member\",\"secret\":\"x\"}", "unknown_field", "secret"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i].body);
        memset(&E, 0, sizeof E);
        assert_int_equal(tl_codec_token_decode(j, &t, &E), EINVAL);
        json_decref(j);
        expect_err(bad[i].code, bad[i].field, NULL);
    }

    memset(&t, 0, sizeof t);
    strcpy(t.id, "tk_0123456789abcdefghjkmnpqrs");
    t.role = TL_ROLE_OPERATOR;
    strcpy(t.prefix, "tlk_AbC");
    json_t *o = tl_codec_token_encode(&t, NULL);
    assert_true(json_is_null(json_object_get(o, "workspace_id")));
    assert_string_equal(json_string_value(json_object_get(o, "role")), "operator");
    assert_string_equal(json_string_value(json_object_get(o, "object")), "token");
    assert_null(json_object_get(o, "token"));
    json_decref(o);
    o = tl_codec_token_encode(&t, "tlk_AbCsecretsecret");
    assert_string_equal(json_string_value(json_object_get(o, "token")), "tlk_AbCsecretsecret");
    json_decref(o);
}

static void error_encode(void **state)
{
    struct tl_err e;
    tl_err_set(&e, EINVAL, 400, "invalid_field", "outbound_trunk.address", "%s", "bad");
    json_t *o = tl_codec_error(&e);
    json_t *x = json_object_get(o, "error");
    assert_string_equal(json_string_value(json_object_get(x, "code")), "invalid_field");
    assert_string_equal(json_string_value(json_object_get(x, "field")), "outbound_trunk.address");
    assert_string_equal(json_string_value(json_object_get(x, "message")), "bad");
    json_decref(o);
    tl_err_set(&e, ENOENT, 404, "not_found", "", "%s", "no such number");
    o = tl_codec_error(&e);
    assert_null(json_object_get(json_object_get(o, "error"), "field"));
    json_decref(o);
    /* a message cut inside a UTF-8 sequence still encodes */
    tl_err_set(&e, EINVAL, 400, "invalid_field", "x", "%s", "ab\xc3");
    o = tl_codec_error(&e);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "message")),
                        "ab");
    json_decref(o);
    o = tl_codec_error(NULL);
    assert_non_null(o);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spec_import),       cmocka_unit_test(minimal_import_defaults),
        cmocka_unit_test(unknown_fields),    cmocka_unit_test(wrong_types),
        cmocka_unit_test(too_long),          cmocka_unit_test(header_rules),
        cmocka_unit_test(missing_and_rules), cmocka_unit_test(password_on_import_and_put),
        cmocka_unit_test(source_and_agent),  cmocka_unit_test(warnings),
        cmocka_unit_test(body_parsing),      cmocka_unit_test(number_encode),
        cmocka_unit_test(agent_decode),      cmocka_unit_test(agent_twiml_codec),
        cmocka_unit_test(agent_refusals),    cmocka_unit_test(workspace_codec),
        cmocka_unit_test(token_codec),       cmocka_unit_test(error_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
