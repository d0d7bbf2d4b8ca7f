/* Validation rules (src/store/validate.c): every rule accepted and refused, with the
 * field path and the corrected form the message must show. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "store/store.h"

static struct tl_err E;

#define ACCEPT(call)                                                                               \
    do {                                                                                           \
        memset(&E, 0, sizeof E);                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            print_error("refused: %s\n  field=%s message=%s\n", #call, E.field, E.message);        \
        assert_int_equal(rc_, 0);                                                                  \
    } while (0)

/* refused with status 400 invalid_field at `field`; message contains `sub` (if not NULL) */
#define REFUSE(call, fld, sub)                                                                     \
    do {                                                                                           \
        memset(&E, 0, sizeof E);                                                                   \
        int rc_ = (call);                                                                          \
        if (rc_ != EINVAL)                                                                         \
            print_error("accepted: %s\n", #call);                                                  \
        assert_int_equal(rc_, EINVAL);                                                             \
        assert_int_equal(E.status, 400);                                                           \
        assert_string_equal(E.code, "invalid_field");                                              \
        assert_string_equal(E.field, (fld));                                                       \
        assert_true(E.message[0] != '\0');                                                         \
        const char *sub_ = (sub);                                                                  \
        if (sub_ && !strstr(E.message, sub_))                                                      \
            print_error("message \"%s\" lacks \"%s\"\n", E.message, sub_);                         \
        assert_true(!sub_ || strstr(E.message, sub_));                                             \
    } while (0)

static char *rep(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- E.164 ---- */

static void e164_accepts(void **state)
{
    ACCEPT(tl_valid_e164("+493012345678", "number", &E));
    ACCEPT(tl_valid_e164("+1", "number", &E));
    ACCEPT(tl_valid_e164("+123456789012345", "number", &E)); /* 15 digits */
}

static void e164_refuses(void **state)
{
    REFUSE(tl_valid_e164("", "number", &E), "number", "required");
    REFUSE(tl_valid_e164(NULL, "number", &E), "number", "required");
    REFUSE(tl_valid_e164("493012345678", "number", &E), "number", "use \"+493012345678\"");
    REFUSE(tl_valid_e164("+0493012345678", "number", &E), "number", "never 0");
    REFUSE(tl_valid_e164("+1234567890123456", "number", &E), "number", "at most 15");
    REFUSE(tl_valid_e164("+49 30 1234 5678", "number", &E), "number", "use \"+493012345678\"");
    REFUSE(tl_valid_e164("+49-30-1234-5678", "number", &E), "number", "use \"+493012345678\"");
    REFUSE(tl_valid_e164("+49 (30) 1234/5678", "number", &E), "number", "use \"+493012345678\"");
    REFUSE(tl_valid_e164("0049 30 12345678", "number", &E), "number", "use \"+493012345678\"");
    REFUSE(tl_valid_e164("030 12345678", "number", &E), "number", "national");
    REFUSE(tl_valid_e164("+", "number", &E), "number", "followed by");
    REFUSE(tl_valid_e164("+49abc", "number", &E), "number", "E.164");
    REFUSE(tl_valid_e164("1234567890123456", "number", &E), "number", "1 to 15 digits");
    REFUSE(tl_valid_e164("+49+30", "number", &E), "number", "E.164");
    REFUSE(tl_valid_e164("+49\n30", "number", &E), "number", "E.164");
}

/* ---- trunk address ---- */

static void address_accepts(void **state)
{
    char buf[300];
    const char *ok[] = {"sip.telnyx.com",  "sip.telnyx.eu",  "yourname.pstn.twilio.com",
                        "pbx.zadarma.com", "203.0.113.7",    "localhost",
                        "a-b.example",     "SIP.Telnyx.COM", "0.0.0.0",
                        "1a.example",      "x.123a"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ACCEPT(tl_valid_trunk_address(ok[i], "outbound_trunk.address", &E));
    rep(buf, 'a', 63);
    strcat(buf, ".com");
    ACCEPT(tl_valid_trunk_address(buf, "a", &E));
    /* 253 = 4 labels of 63 + 3 dots - 2 */
    snprintf(buf, sizeof buf, "%s", "");
    for (int i = 0; i < 4; i++) {
        char l[64];
        strcat(buf, rep(l, 'a' + (char)i, i == 3 ? 61 : 63));
        if (i < 3)
            strcat(buf, ".");
    }
    assert_int_equal(strlen(buf), 253);
    ACCEPT(tl_valid_trunk_address(buf, "a", &E));
}

static void address_refuses(void **state)
{
    const char *f = "outbound_trunk.address";
    char buf[300];
    REFUSE(tl_valid_trunk_address("", f, &E), f, "required");
    REFUSE(tl_valid_trunk_address(NULL, f, &E), f, "required");
    REFUSE(tl_valid_trunk_address("sip:sip.telnyx.com:5060", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("user@host;transport=tcp", f, &E), f, "use \"host\"");
    REFUSE(tl_valid_trunk_address("SIPS:sip.telnyx.com", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("Sip:sip.telnyx.com", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip.telnyx.com:5060", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip.telnyx.com/trunk", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip:acme@sip.telnyx.com:5061;transport=tls", f, &E), f,
           "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip:yourname.pstn.twilio.com", f, &E), f,
           "use \"yourname.pstn.twilio.com\"");
    REFUSE(tl_valid_trunk_address("https://sip.telnyx.com/", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address(" sip.telnyx.com ", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip.telnyx.com\r\n", f, &E), f, "use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("sip telnyx.com", f, &E), f, "no sip: prefix");
    REFUSE(tl_valid_trunk_address("sip:", f, &E), f, "no sip: prefix");
    REFUSE(tl_valid_trunk_address("2001:db8::1", f, &E), f, "IPv6");
    REFUSE(tl_valid_trunk_address("[2001:db8::1]:5060", f, &E), f, "IPv6");
    REFUSE(tl_valid_trunk_address("sip:[2001:db8::1]", f, &E), f, "IPv6");
    REFUSE(tl_valid_trunk_address("sip.telnyx.com.", f, &E), f,
           "must not end with a dot; use \"sip.telnyx.com\"");
    REFUSE(tl_valid_trunk_address("1.2.3", f, &E), f, "IPv4");
    REFUSE(tl_valid_trunk_address("256.1.1.1", f, &E), f, "IPv4");
    REFUSE(tl_valid_trunk_address("1.2.3.4.5", f, &E), f, "IPv4");
    REFUSE(tl_valid_trunk_address("01.2.3.4", f, &E), f, "IPv4");
    REFUSE(tl_valid_trunk_address("123", f, &E), f, "IPv4");
    REFUSE(tl_valid_trunk_address("-a.com", f, &E), f, "hyphen");
    REFUSE(tl_valid_trunk_address("a-.com", f, &E), f, "hyphen");
    REFUSE(tl_valid_trunk_address("a.com-", f, &E), f, "hyphen");
    REFUSE(tl_valid_trunk_address("a..com", f, &E), f, "two dots");
    REFUSE(tl_valid_trunk_address(".a.com", f, &E), f, "dot");
    REFUSE(tl_valid_trunk_address(".", f, &E), f, "dot");
    REFUSE(tl_valid_trunk_address("a_b.com", f, &E), f, "letters, digits, hyphens");
    REFUSE(tl_valid_trunk_address("b\xc3\xbcro.de", f, &E), f, "letters, digits, hyphens");
    rep(buf, 'a', 64);
    strcat(buf, ".com");
    REFUSE(tl_valid_trunk_address(buf, f, &E), f, "63");
    rep(buf, 'a', 254);
    for (size_t i = 50; i < 254; i += 50)
        buf[i] = '.';
    REFUSE(tl_valid_trunk_address(buf, f, &E), f, "253");
}

/* ---- names and credentials ---- */

static void name_rules(void **state)
{
    char buf[200];
    ACCEPT(tl_valid_name("Berlin office", true, "name", &E));
    ACCEPT(tl_valid_name("B\xc3\xbcro K\xc3\xb6ln", true, "name", &E));
    ACCEPT(tl_valid_name("", false, "label", &E));
    ACCEPT(tl_valid_name(rep(buf, 'n', 128), true, "name", &E));
    REFUSE(tl_valid_name("", true, "name", &E), "name", "required");
    REFUSE(tl_valid_name(NULL, true, "name", &E), "name", "required");
    REFUSE(tl_valid_name(rep(buf, 'n', 129), true, "name", &E), "name", "at most 128");
    REFUSE(tl_valid_name("a\nb", false, "label", &E), "label", "line breaks");
    REFUSE(tl_valid_name("a\x7f", false, "label", &E), "label", "control");
}

static void username_rules(void **state)
{
    const char *f = "outbound_trunk.username";
    char buf[200];
    ACCEPT(tl_valid_username("", f, &E));
    ACCEPT(tl_valid_username(NULL, f, &E));
    ACCEPT(tl_valid_username("acme_trunk", f, &E));
    ACCEPT(tl_valid_username("100@pbx.zadarma.com", f, &E));
    ACCEPT(tl_valid_username(rep(buf, 'u', 128), f, &E));
    REFUSE(tl_valid_username(rep(buf, 'u', 129), f, &E), f, "at most 128");
    REFUSE(tl_valid_username("acme trunk", f, &E), f, "spaces");
    REFUSE(tl_valid_username("acme\ttrunk", f, &E), f, "spaces");
    REFUSE(tl_valid_username("acme\r\nVia: x", f, &E), f, "line breaks");
    REFUSE(tl_valid_username("j\xc3\xbcrgen", f, &E), f, "printable ASCII");
    REFUSE(tl_valid_username("a\x01", f, &E), f, "printable ASCII");
}

static void password_rules(void **state)
{
    const char *f = "outbound_trunk.password";
    char buf[200];
    ACCEPT(tl_valid_password("", f, &E));
    ACCEPT(tl_valid_password("p@ss w0rd;:/\"", f, &E));
    ACCEPT(tl_valid_password(rep(buf, 'p', 128), f, &E));
    REFUSE(tl_valid_password(rep(buf, 'p', 129), f, &E), f, "at most 128");
    REFUSE(tl_valid_password("secret\r\n", f, &E), f, "line breaks");
    REFUSE(tl_valid_password("sec\nret", f, &E), f, "line breaks");
    /* the password never appears in the message */
    REFUSE(tl_valid_password("hunter2\r", f, &E), f, NULL);
    assert_null(strstr(E.message, "hunter2"));
}

/* ---- SIP headers ---- */

static int sip_hdr(const char *name, const char *value)
{
    struct tl_kv h;
    memset(&h, 0, sizeof h);
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.value, sizeof h.value, "%s", value);
    return tl_valid_sip_header(&h, "outbound_trunk.headers[0]", &E);
}

static void sip_header_rules(void **state)
{
    const char *nf = "outbound_trunk.headers[0].name", *vf = "outbound_trunk.headers[0].value";
    char buf[400];
    ACCEPT(sip_hdr("X-Customer-Id", "4711"));
    ACCEPT(sip_hdr("P-Asserted-Identity", "<sip:+493012345678@sip.telnyx.com>"));
    ACCEPT(sip_hdr("X-Weird.!%*_+`'~", "tab\tinside"));
    ACCEPT(sip_hdr(rep(buf, 'X', 64), rep(buf + 100, 'v', 256)));
    REFUSE(sip_hdr("", "x"), nf, "required");
    REFUSE(sip_hdr("X A", "x"), nf, "token");
    REFUSE(sip_hdr("X-A:", "x"), nf, "without ':'");
    REFUSE(sip_hdr("X-\xc3\xa4", "x"), nf, "token");
    const char *owned[] = {"Via",
                           "via",
                           "VIA",
                           "From",
                           "To",
                           "Call-ID",
                           "call-id",
                           "CSeq",
                           "Contact",
                           "Max-Forwards",
                           "Content-Length",
                           "Content-Type",
                           "Content-Encoding",
                           "Route",
                           "Record-Route",
                           "Authorization",
                           "Proxy-Authorization",
                           "WWW-Authenticate",
                           "Proxy-Authenticate",
                           "Require",
                           "Proxy-Require",
                           "Supported",
                           "Allow",
                           "Expires",
                           "Session-Expires",
                           "Min-SE",
                           "RAck",
                           "RSeq",
                           "Refer-To",
                           "Event",
                           "Subscription-State"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        REFUSE(sip_hdr(owned[i], "x"), nf, "set by the gateway");
    const char *compact[] = {"v", "f", "t", "i", "m", "l", "c", "e", "k", "o", "r", "s", "x"};
    for (size_t i = 0; i < sizeof compact / sizeof compact[0]; i++)
        REFUSE(sip_hdr(compact[i], "x"), nf, "compact");
    REFUSE(sip_hdr("V", "x"), nf, "compact");
    /* 65 characters: tl_kv cannot hold more, so build it by hand */
    struct tl_kv h;
    memset(&h, 0, sizeof h);
    memset(h.name, 'X', sizeof h.name);
    strcpy(h.value, "x");
    REFUSE(tl_valid_sip_header(&h, "outbound_trunk.headers[0]", &E), nf, "at most 64");
    REFUSE(sip_hdr("X-A", ""), vf, "required");
    REFUSE(sip_hdr("X-A", "b\r\nVia: evil"), vf, "line breaks");
    assert_null(strstr(E.message, "evil"));
    REFUSE(sip_hdr("X-A", "b\n"), vf, "line breaks");
    REFUSE(sip_hdr("X-A", "b\r"), vf, "line breaks");
    REFUSE(sip_hdr("X-A", "b\x01"), vf, "control");
    memset(&h, 0, sizeof h);
    strcpy(h.name, "X-A");
    memset(h.value, 'v', sizeof h.value);
    REFUSE(tl_valid_sip_header(&h, "outbound_trunk.headers[0]", &E), vf, "at most 256");
}

/* ---- CIDR ---- */

static void cidr_accepts(void **state)
{
    char out[TL_CIDR_MAX + 1];
    struct {
        const char *in, *out;
    } ok[] = {
        {"203.0.113.7", "203.0.113.7"},
        {"203.0.113.7/32", "203.0.113.7"},
        {"10.0.0.0/24", "10.0.0.0/24"},
        {"10.0.0.0/8", "10.0.0.0/8"},
        {"0.0.0.0/0", "0.0.0.0/0"},
        {"2001:DB8::/32", "2001:db8::/32"},
        {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
        {"2001:db8::1/128", "2001:db8::1"},
        {"::1", "::1"},
        {"::/0", "::/0"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ACCEPT(tl_valid_cidr(ok[i].in, out, "a", &E));
        assert_string_equal(out, ok[i].out);
    }
}

static void cidr_refuses(void **state)
{
    const char *f = "inbound_trunk.allowed_addresses[0]";
    char out[TL_CIDR_MAX + 1];
    REFUSE(tl_valid_cidr("10.0.0.5/24", out, f, &E), f, "use \"10.0.0.0/24\"");
    REFUSE(tl_valid_cidr("10.0.0.5/24", out, f, &E), f, "\"10.0.0.5\" for that single");
    REFUSE(tl_valid_cidr("2001:db8::1/64", out, f, &E), f, "use \"2001:db8::/64\"");
    REFUSE(tl_valid_cidr("203.0.113.7/31", out, f, &E), f, "use \"203.0.113.6/31\"");
    REFUSE(tl_valid_cidr("10.0.0.0/33", out, f, &E), f, "0 to 32");
    REFUSE(tl_valid_cidr("::/129", out, f, &E), f, "0 to 128");
    REFUSE(tl_valid_cidr("10.0.0.0/", out, f, &E), f, "prefix length");
    REFUSE(tl_valid_cidr("10.0.0.0/024", out, f, &E), f, "prefix length");
    REFUSE(tl_valid_cidr("10.0.0.0/-1", out, f, &E), f, "prefix length");
    REFUSE(tl_valid_cidr("10.0.0.0/2a", out, f, &E), f, "prefix length");
    REFUSE(tl_valid_cidr("10.0.0.0/24/8", out, f, &E), f, "prefix length");
    REFUSE(tl_valid_cidr("1.2.3", out, f, &E), f, "not an IPv4 or IPv6");
    REFUSE(tl_valid_cidr("sip.telnyx.com", out, f, &E), f, "not an IPv4 or IPv6");
    REFUSE(tl_valid_cidr("fe80::1%eth0", out, f, &E), f, "not an IPv4 or IPv6");
    REFUSE(tl_valid_cidr("", out, f, &E), f, "e.g.");
    REFUSE(tl_valid_cidr(" 1.2.3.4", out, f, &E), f, "spaces");
    REFUSE(tl_valid_cidr("::ffff:1.2.3.4", out, f, &E), f, "use \"1.2.3.4\"");
    REFUSE(
        tl_valid_cidr("1111:2222:3333:4444:5555:6666:7777:8888/128//////////////////", out, f, &E),
        f, "too long");
}

/* ---- URIs ---- */

static void sip_uri_rules(void **state)
{
    const char *f = "inbound_trunk.origination_url";
    char buf[600];
    const char *ok[] = {"",
                        "sip:pbx.example.com",
                        "sips:agent@pbx.example.com:5061;transport=tls",
                        "sip:+493012345678@203.0.113.7",
                        "SIP:[2001:db8::1]:5060",
                        "sip:user;npdi@host.example",
                        "sip:host.example?Subject=x"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ACCEPT(tl_valid_sip_uri(ok[i], f, &E));
    REFUSE(tl_valid_sip_uri("http://pbx.example.com", f, &E), f, "sip: or sips:");
    REFUSE(tl_valid_sip_uri("pbx.example.com", f, &E), f, "sip: or sips:");
    REFUSE(tl_valid_sip_uri("sip:", f, &E), f, "no host");
    REFUSE(tl_valid_sip_uri("sip:user@", f, &E), f, "no host");
    REFUSE(tl_valid_sip_uri("sip:user@;transport=tls", f, &E), f, "no host");
    REFUSE(tl_valid_sip_uri("sip::5060", f, &E), f, "no host");
    REFUSE(tl_valid_sip_uri("sip:host:0", f, &E), f, "port");
    REFUSE(tl_valid_sip_uri("sip:host:70000", f, &E), f, "port");
    REFUSE(tl_valid_sip_uri("sip:host:50a", f, &E), f, "port");
    REFUSE(tl_valid_sip_uri("sip:ho st", f, &E), f, "spaces");
    REFUSE(tl_valid_sip_uri("sip:host\r\nVia: x", f, &E), f, "line breaks");
    REFUSE(tl_valid_sip_uri("sip:[zz::1]", f, &E), f, "IPv6");
    REFUSE(tl_valid_sip_uri("sip:[2001:db8::1]x", f, &E), f, "only :port");
    REFUSE(tl_valid_sip_uri("sip:ho_st", f, &E), f, "letters, digits");
    strcpy(buf, "sip:");
    rep(buf + 4, 'a', 509);
    REFUSE(tl_valid_sip_uri(buf, f, &E), f, "at most 512");
}

static void agent_url_rules(void **state)
{
    static char buf[2100];
    const char *ok[] = {"wss://agent.example.com/media", "ws://127.0.0.1:8080/x?y=1",
                        "WSS://[::1]:9000/", "wss://agent.example.com",
                        "wss://agent.example.com?token=x#frag"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ACCEPT(tl_valid_agent_url(ok[i], "url", &E));
    REFUSE(tl_valid_agent_url("", "url", &E), "url", "required");
    REFUSE(tl_valid_agent_url("https://agent.example.com/x", "url", &E), "url",
           "use \"wss://agent.example.com/x\"");
    REFUSE(tl_valid_agent_url("http://agent.example.com", "url", &E), "url",
           "use \"ws://agent.example.com\"");
    REFUSE(tl_valid_agent_url("ftp://agent.example.com", "url", &E), "url", "ws:// or wss://");
    REFUSE(tl_valid_agent_url("agent.example.com", "url", &E), "url", "ws:// or wss://");
    REFUSE(tl_valid_agent_url("wss://user:pw@agent.example.com/", "url", &E), "url",
           "credentials in a header");
    REFUSE(tl_valid_agent_url("wss:///path", "url", &E), "url", "no host");
    REFUSE(tl_valid_agent_url("wss://host:0/", "url", &E), "url", "port");
    REFUSE(tl_valid_agent_url("wss://host:/", "url", &E), "url", "port");
    REFUSE(tl_valid_agent_url("wss://ho st/", "url", &E), "url", "spaces");
    REFUSE(tl_valid_agent_url("wss://host/\r\n", "url", &E), "url", "line breaks");
    REFUSE(tl_valid_agent_url("wss://1.2.3/", "url", &E), "url", "IPv4");
    strcpy(buf, "wss://a.example/");
    rep(buf + 16, 'p', 2033);
    REFUSE(tl_valid_agent_url(buf, "url", &E), "url", "at most 2048");
    buf[2048] = '\0';
    ACCEPT(tl_valid_agent_url(buf, "url", &E));
}

static int ws_hdr(const char *name, const char *value)
{
    struct tl_kv h;
    memset(&h, 0, sizeof h);
    snprintf(h.name, sizeof h.name, "%s", name);
    snprintf(h.value, sizeof h.value, "%s", value);
    return tl_valid_ws_header(&h, "headers[0]", &E);
}

static void ws_header_rules(void **state)
{
    ACCEPT(ws_hdr("Authorization", "Bearer sk-123"));
    ACCEPT(ws_hdr("X-Api-Key", "")); /* empty: keep the stored value on update */
    ACCEPT(ws_hdr("Origin", "https://example.com"));
    const char *owned[] = {"Host",
                           "host",
                           "Upgrade",
                           "Connection",
                           "Content-Length",
                           "Transfer-Encoding",
                           "Sec-WebSocket-Key",
                           "sec-websocket-protocol",
                           "Sec-WebSocket-Version",
                           "Sec-WebSocket-Extensions"};
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        REFUSE(ws_hdr(owned[i], "x"), "headers[0].name", "handshake");
    REFUSE(ws_hdr("", "x"), "headers[0].name", "required");
    REFUSE(ws_hdr("X Key", "x"), "headers[0].name", "HTTP token");
    REFUSE(ws_hdr("X-Key:", "x"), "headers[0].name", "without ':'");
    REFUSE(ws_hdr("X-Key", "a\r\nHost: evil"), "headers[0].value", "line breaks");
    REFUSE(ws_hdr("X-Key", "a\n"), "headers[0].value", "line breaks");
}

static void small_rules(void **state)
{
    char buf[100];
    ACCEPT(tl_valid_param_key("customer_id", "parameters.customer_id", &E));
    ACCEPT(tl_valid_param_key("x.y-z", "p", &E));
    ACCEPT(tl_valid_param_key(rep(buf, 'k', 64), "p", &E));
    REFUSE(tl_valid_param_key("", "parameters.", &E), "parameters.", "empty");
    REFUSE(tl_valid_param_key("a b", "parameters.a b", &E), "parameters.a b", "letters");
    REFUSE(tl_valid_param_key("a:b", "p", &E), "p", "letters");
    REFUSE(tl_valid_param_key(rep(buf, 'k', 65), "p", &E), "p", "at most 64");

    ACCEPT(tl_valid_builtin("echo", "builtin", &E));
    REFUSE(tl_valid_builtin("", "builtin", &E), "builtin", "required");
    REFUSE(tl_valid_builtin("Echo", "builtin", &E), "builtin", "\"echo\"");
    REFUSE(tl_valid_builtin("tts", "builtin", &E), "builtin", "\"echo\"");

    ACCEPT(tl_valid_region("eu", "region", &E));
    ACCEPT(tl_valid_region("us-east-1", "region", &E));
    ACCEPT(tl_valid_region(rep(buf, 'r', 32), "region", &E));
    REFUSE(tl_valid_region("", "region", &E), "region", "required");
    REFUSE(tl_valid_region("EU", "region", &E), "region", "use \"eu\"");
    REFUSE(tl_valid_region("Eu-West", "region", &E), "region", "use \"eu-west\"");
    REFUSE(tl_valid_region("eu_west", "region", &E), "region", "lowercase letters");
    REFUSE(tl_valid_region("-eu", "region", &E), "region", "hyphen");
    REFUSE(tl_valid_region("eu-", "region", &E), "region", "hyphen");
    REFUSE(tl_valid_region(rep(buf, 'r', 33), "region", &E), "region", "at most 32");
}

static void enums(void **state)
{
    assert_string_equal(tl_plan_name(TL_PLAN_FREE), "free");
    assert_string_equal(tl_plan_name(TL_PLAN_STARTER), "starter");
    assert_string_equal(tl_plan_name(TL_PLAN_PROFESSIONAL), "professional");
    assert_string_equal(tl_plan_name(TL_PLAN_ENTERPRISE), "enterprise");
    assert_int_equal(tl_plan_parse("professional"), TL_PLAN_PROFESSIONAL);
    assert_int_equal(tl_plan_parse("enterprise"), TL_PLAN_ENTERPRISE);
    assert_int_equal(tl_plan_parse("Free"), -1);
    assert_int_equal(tl_plan_parse(NULL), -1);
    assert_string_equal(tl_transport_name(TL_TRANSPORT_TLS), "tls");
    assert_string_equal(tl_transport_name(TL_TRANSPORT_TCP), "tcp");
    assert_string_equal(tl_transport_name(TL_TRANSPORT_UDP), "udp");
    assert_int_equal(tl_transport_parse("udp"), TL_TRANSPORT_UDP);
    assert_int_equal(tl_transport_parse("TLS"), -1);
    assert_int_equal(tl_transport_parse("sctp"), -1);
    assert_string_equal(tl_media_enc_name(TL_MEDIA_REQUIRED), "required");
    assert_string_equal(tl_media_enc_name(TL_MEDIA_ALLOWED), "allowed");
    assert_string_equal(tl_media_enc_name(TL_MEDIA_DISABLED), "disabled");
    assert_int_equal(tl_media_enc_parse("allowed"), TL_MEDIA_ALLOWED);
    assert_int_equal(tl_media_enc_parse(""), -1);
    assert_string_equal(tl_source_name(TL_SOURCE_SIP_TRUNK), "sip_trunk");
    assert_string_equal(tl_source_name(TL_SOURCE_PLATFORM), "platform");
    assert_int_equal(tl_source_parse("platform"), TL_SOURCE_PLATFORM);
    assert_int_equal(tl_source_parse("sip-trunk"), -1);
    assert_string_equal(tl_agent_kind_name(TL_AGENT_BUILTIN), "builtin");
    assert_string_equal(tl_agent_kind_name(TL_AGENT_WEBSOCKET), "websocket");
    assert_int_equal(tl_agent_kind_parse("websocket"), TL_AGENT_WEBSOCKET);
    assert_int_equal(tl_agent_kind_parse("ws"), -1);
    assert_string_equal(tl_role_name(TL_ROLE_OPERATOR), "operator");
    assert_string_equal(tl_role_name(TL_ROLE_ADMIN), "admin");
    assert_string_equal(tl_role_name(TL_ROLE_MEMBER), "member");
    assert_int_equal(tl_role_parse("member"), TL_ROLE_MEMBER);
    assert_int_equal(tl_role_parse("owner"), -1);
    assert_string_equal(tl_role_name((enum tl_role)42), "unknown");
    assert_string_equal(tl_plan_name((enum tl_plan) - 1), "unknown");

    assert_false(tl_plan_allows_sip_import(TL_PLAN_FREE));
    assert_false(tl_plan_allows_sip_import(TL_PLAN_STARTER));
    assert_true(tl_plan_allows_sip_import(TL_PLAN_PROFESSIONAL));
    assert_true(tl_plan_allows_sip_import(TL_PLAN_ENTERPRISE));
}

/* ---- whole trunks ---- */

static void outbound_init(struct tl_outbound_trunk *t)
{
    memset(t, 0, sizeof *t);
    strcpy(t->address, "sip.telnyx.com");
    t->transport = TL_TRANSPORT_TLS;
    t->media_encryption = TL_MEDIA_REQUIRED;
}

static void add_hdr(struct tl_kv *hs, size_t *n, const char *name, const char *value)
{
    snprintf(hs[*n].name, sizeof hs[*n].name, "%s", name);
    snprintf(hs[*n].value, sizeof hs[*n].value, "%s", value);
    (*n)++;
}

static void outbound_rules(void **state)
{
    struct tl_outbound_trunk t;
    struct tl_warnings w = {0};
    const char *P = "outbound_trunk";

    outbound_init(&t);
    ACCEPT(tl_valid_outbound(&t, P, &w, &E));
    assert_int_equal(w.n, 0);

    /* username with a password */
    strcpy(t.username, "acme_trunk");
    strcpy(t.password, "s3cret");
    t.password_given = true;
    ACCEPT(tl_valid_outbound(&t, P, &w, &E));
    /* username without a password in this write: the store keeps the stored one (PUT) */
    t.password_given = false;
    t.password[0] = '\0';
    ACCEPT(tl_valid_outbound(&t, P, &w, &E));
    /* an explicit empty password next to a username */
    t.password_given = true;
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.password",
           "required when a username is given");
    /* a password without a username */
    t.username[0] = '\0';
    strcpy(t.password, "s3cret");
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.username",
           "required when a password is given");
    outbound_init(&t);
    strcpy(t.username, "bad user");
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.username", "spaces");
    outbound_init(&t);
    strcpy(t.address, "sip:sip.telnyx.com:5060");
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.address", "use \"sip.telnyx.com\"");
    outbound_init(&t);
    t.transport = (enum tl_transport)7;
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.transport", "tls, tcp or udp");
    outbound_init(&t);
    t.media_encryption = (enum tl_media_enc)7;
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.media_encryption", "required");

    /* headers: valid, duplicate (case-insensitive), bad at an index, too many */
    outbound_init(&t);
    add_hdr(t.headers, &t.n_headers, "X-Customer-Id", "1");
    add_hdr(t.headers, &t.n_headers, "X-Route", "2");
    ACCEPT(tl_valid_outbound(&t, P, &w, &E));
    add_hdr(t.headers, &t.n_headers, "x-customer-id", "3");
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.headers[2].name",
           "already given in outbound_trunk.headers[0]");
    t.n_headers = 2;
    add_hdr(t.headers, &t.n_headers, "Via", "SIP/2.0/UDP evil");
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.headers[2].name", "Via");
    outbound_init(&t);
    for (int i = 0; i < TL_HEADERS_MAX; i++) {
        char n[16];
        snprintf(n, sizeof n, "X-H%d", i);
        add_hdr(t.headers, &t.n_headers, n, "v");
    }
    ACCEPT(tl_valid_outbound(&t, P, &w, &E));
    t.n_headers = TL_HEADERS_MAX + 1;
    REFUSE(tl_valid_outbound(&t, P, &w, &E), "outbound_trunk.headers", "at most 16");
    assert_int_equal(w.n, 0);
}

static void outbound_warnings(void **state)
{
    struct tl_outbound_trunk t;
    struct {
        enum tl_transport tr;
        enum tl_media_enc me;
        const char *code, *sub;
    } cases[] = {
        {TL_TRANSPORT_TLS, TL_MEDIA_REQUIRED, NULL, NULL},
        {TL_TRANSPORT_TLS, TL_MEDIA_ALLOWED, NULL, NULL},
        {TL_TRANSPORT_TCP, TL_MEDIA_DISABLED, NULL, NULL},
        {TL_TRANSPORT_UDP, TL_MEDIA_DISABLED, NULL, NULL},
        {TL_TRANSPORT_TCP, TL_MEDIA_REQUIRED, "srtp_keys_in_clear", "in the clear over tcp"},
        {TL_TRANSPORT_UDP, TL_MEDIA_REQUIRED, "srtp_keys_in_clear", "in the clear over udp"},
        {TL_TRANSPORT_TLS, TL_MEDIA_DISABLED, "media_unencrypted",
         "signalling is encrypted but audio is not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tl_warnings w = {0};
        outbound_init(&t);
        t.transport = cases[i].tr;
        t.media_encryption = cases[i].me;
        ACCEPT(tl_valid_outbound(&t, "outbound_trunk", &w, &E));
        if (!cases[i].code) {
            assert_int_equal(w.n, 0);
            continue;
        }
        assert_int_equal(w.n, 1);
        assert_string_equal(w.w[0].code, cases[i].code);
        assert_string_equal(w.w[0].field, "outbound_trunk.media_encryption");
        assert_non_null(strstr(w.w[0].message, cases[i].sub));
    }
    /* NULL warnings: accepted, nothing written */
    outbound_init(&t);
    t.transport = TL_TRANSPORT_UDP;
    ACCEPT(tl_valid_outbound(&t, "outbound_trunk", NULL, &E));
}

static void inbound_init(struct tl_inbound_trunk *t)
{
    memset(t, 0, sizeof *t);
    t->transport = TL_TRANSPORT_TLS;
    t->media_encryption = TL_MEDIA_REQUIRED;
    strcpy(t->allowed_addresses[0], "203.0.113.0/24");
    t->n_allowed = 1;
}

static void inbound_rules(void **state)
{
    struct tl_inbound_trunk t;
    struct tl_warnings w = {0};
    const char *P = "inbound_trunk";

    inbound_init(&t);
    ACCEPT(tl_valid_inbound(&t, P, &w, &E));
    t.transport = TL_TRANSPORT_TCP;
    t.media_encryption = TL_MEDIA_ALLOWED;
    ACCEPT(tl_valid_inbound(&t, P, &w, &E));
    assert_int_equal(w.n, 0);
    t.transport = TL_TRANSPORT_UDP;
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.transport",
           "inbound calls over UDP are not accepted; choose tls or tcp");

    inbound_init(&t);
    strcpy(t.allowed_addresses[1], "198.51.100.7");
    strcpy(t.allowed_addresses[2], "198.51.100.7/32");
    t.n_allowed = 3;
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.allowed_addresses[2]",
           "already given in allowed_addresses[1]");
    strcpy(t.allowed_addresses[2], "10.0.0.5/8");
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.allowed_addresses[2]",
           "use \"10.0.0.0/8\"");
    t.n_allowed = TL_ALLOWED_MAX + 1;
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.allowed_addresses", "at most 32");

    inbound_init(&t);
    strcpy(t.origination_url, "sips:agent@pbx.example.com");
    ACCEPT(tl_valid_inbound(&t, P, &w, &E));
    strcpy(t.origination_url, "pbx.example.com");
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.origination_url", "sip: or sips:");

    inbound_init(&t);
    strcpy(t.username, "zeeg");
    strcpy(t.password, "pw");
    t.password_given = true;
    ACCEPT(tl_valid_inbound(&t, P, &w, &E));
    t.password[0] = '\0';
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.password", "required");

    inbound_init(&t);
    add_hdr(t.headers, &t.n_headers, "X-A", "1");
    add_hdr(t.headers, &t.n_headers, "X-B", "b\r\nVia: evil");
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.headers[1].value", "line breaks");
    assert_int_equal(w.n, 0);

    inbound_init(&t);
    t.rtp_latching = TL_LATCHING_OFF;
    ACCEPT(tl_valid_inbound(&t, P, &w, &E));
    t.rtp_latching = (enum tl_rtp_latching)(TL_LATCHING_OFF + 1);
    REFUSE(tl_valid_inbound(&t, P, &w, &E), "inbound_trunk.rtp_latching", "sdp-ip, any or off");
    /* the wire names are the media layer's, DEFAULT has none */
    assert_string_equal(tl_rtp_latching_name(TL_LATCHING_SDP_IP), "sdp-ip");
    assert_null(tl_rtp_latching_name(TL_LATCHING_DEFAULT));
    assert_int_equal(tl_rtp_latching_parse("off"), TL_LATCHING_OFF);
    assert_int_equal(tl_rtp_latching_parse(""), -1);
}

static void inbound_warnings(void **state)
{
    struct tl_inbound_trunk t;
    struct tl_warnings w = {0};
    inbound_init(&t);
    t.media_encryption = TL_MEDIA_DISABLED;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "media_unencrypted");
    assert_string_equal(w.w[0].field, "inbound_trunk.media_encryption");

    memset(&w, 0, sizeof w);
    inbound_init(&t);
    t.transport = TL_TRANSPORT_TCP;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "srtp_keys_in_clear");

    /* neither an address list nor credentials: anyone can reach the agent. Refused
     * (issue 11 item 4) unless the request opts in, which keeps the warning */
    memset(&w, 0, sizeof w);
    inbound_init(&t);
    t.n_allowed = 0;
    assert_int_equal(tl_valid_inbound(&t, "inbound_trunk", &w, &E), EINVAL);
    assert_string_equal(E.field, "inbound_trunk.allowed_addresses");
    assert_non_null(strstr(E.message, "inbound_trunk.allow_any_source"));
    t.allow_any_source = true;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "inbound_unauthenticated");
    t.allow_any_source = false;
    memset(&w, 0, sizeof w);
    strcpy(t.username, "zeeg");
    strcpy(t.password, "pw");
    t.password_given = true;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 0);

    /* latching any without required SRTP: whoever sends first gets the audio */
    memset(&w, 0, sizeof w);
    inbound_init(&t);
    t.rtp_latching = TL_LATCHING_ANY;
    t.media_encryption = TL_MEDIA_ALLOWED;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "rtp_latching_any");
    assert_string_equal(w.w[0].field, "inbound_trunk.rtp_latching");
    memset(&w, 0, sizeof w);
    t.media_encryption = TL_MEDIA_REQUIRED;
    ACCEPT(tl_valid_inbound(&t, "inbound_trunk", &w, &E));
    assert_int_equal(w.n, 0);
}

/* ---- agents ---- */

static void agent_init(struct tl_agent *a, enum tl_agent_kind k)
{
    memset(a, 0, sizeof *a);
    strcpy(a->name, "Reception");
    a->kind = k;
    if (k == TL_AGENT_BUILTIN)
        strcpy(a->builtin, "echo");
    else if (k == TL_AGENT_WEBSOCKET)
        strcpy(a->url, "wss://agent.example.com/media");
    else
        strcpy(a->url, "https://bot.example.com/voice");
}

static void agent_rules(void **state)
{
    struct tl_agent a;
    agent_init(&a, TL_AGENT_BUILTIN);
    ACCEPT(tl_valid_agent(&a, &E));
    strcpy(a.url, "wss://x.example");
    REFUSE(tl_valid_agent(&a, &E), "url", "a builtin agent has no url");
    agent_init(&a, TL_AGENT_BUILTIN);
    strcpy(a.builtin, "tts");
    REFUSE(tl_valid_agent(&a, &E), "builtin", "\"echo\"");
    agent_init(&a, TL_AGENT_WEBSOCKET);
    ACCEPT(tl_valid_agent(&a, &E));
    strcpy(a.builtin, "echo");
    REFUSE(tl_valid_agent(&a, &E), "builtin", "a websocket agent has no builtin");
    agent_init(&a, TL_AGENT_WEBSOCKET);
    a.url[0] = '\0';
    REFUSE(tl_valid_agent(&a, &E), "url", "required");
    agent_init(&a, TL_AGENT_WEBSOCKET);
    a.name[0] = '\0';
    REFUSE(tl_valid_agent(&a, &E), "name", "required");
    agent_init(&a, TL_AGENT_WEBSOCKET);
    a.kind = (enum tl_agent_kind)9;
    REFUSE(tl_valid_agent(&a, &E), "kind", "builtin, websocket or twiml");

    /* twiml: an http(s) voice URL, optional fallback and status callback, no headers */
    agent_init(&a, TL_AGENT_TWIML);
    ACCEPT(tl_valid_agent(&a, &E));
    strcpy(a.url, "http://127.0.0.1:8000/voice?x=1");
    ACCEPT(tl_valid_agent(&a, &E)); /* http:// is the API's call (agent_insecure_hosts) */
    strcpy(a.url, "wss://bot.example.com/ws");
    REFUSE(tl_valid_agent(&a, &E), "voice_url", "<Connect><Stream");
    strcpy(a.url, "https://user:pw@bot.example.com/voice");
    REFUSE(tl_valid_agent(&a, &E), "voice_url", "X-Twilio-Signature");
    a.url[0] = '\0';
    REFUSE(tl_valid_agent(&a, &E), "voice_url", "required");
    agent_init(&a, TL_AGENT_TWIML);
    strcpy(a.fallback_url, "ftp://bot.example.com/");
    REFUSE(tl_valid_agent(&a, &E), "fallback_url", "https://");
    agent_init(&a, TL_AGENT_TWIML);
    strcpy(a.status_callback, "https://bot.example.com/status");
    strcpy(a.fallback_url, "https://backup.example.com/voice");
    ACCEPT(tl_valid_agent(&a, &E));
    strcpy(a.status_callback, "https:///status");
    REFUSE(tl_valid_agent(&a, &E), "status_callback", "no host");
    agent_init(&a, TL_AGENT_TWIML);
    a.connect_timeout_ms = 50;
    REFUSE(tl_valid_agent(&a, &E), "timeout_ms", "between 100 and 30000");
    agent_init(&a, TL_AGENT_TWIML);
    add_hdr(a.headers, &a.n_headers, "Authorization", "Bearer x");
    REFUSE(tl_valid_agent(&a, &E), "headers", "X-Twilio-Signature");

    agent_init(&a, TL_AGENT_WEBSOCKET);
    strcpy(a.params[0].key, "customer_id");
    strcpy(a.params[0].value, "4711");
    strcpy(a.params[1].key, "lang");
    strcpy(a.params[1].value, "de");
    a.n_params = 2;
    ACCEPT(tl_valid_agent(&a, &E));
    strcpy(a.params[1].key, "customer_id");
    REFUSE(tl_valid_agent(&a, &E), "parameters.customer_id", "twice");
    strcpy(a.params[1].key, "a b");
    REFUSE(tl_valid_agent(&a, &E), "parameters.a b", "letters");
    a.n_params = TL_PARAMS_MAX + 1;
    REFUSE(tl_valid_agent(&a, &E), "parameters", "at most 32");

    agent_init(&a, TL_AGENT_WEBSOCKET);
    add_hdr(a.headers, &a.n_headers, "Authorization", "Bearer x");
    add_hdr(a.headers, &a.n_headers, "X-Key", "");
    ACCEPT(tl_valid_agent(&a, &E));
    add_hdr(a.headers, &a.n_headers, "authorization", "y");
    REFUSE(tl_valid_agent(&a, &E), "headers[2].name", "already given in headers[0]");
    a.n_headers = 2;
    add_hdr(a.headers, &a.n_headers, "Sec-WebSocket-Protocol", "x");
    REFUSE(tl_valid_agent(&a, &E), "headers[2].name", "handshake");
}

/* E.164 country codes (the default destinations of a workspace's outbound calls) */
static void country_codes(void **state)
{
    (void)state;
    static const struct {
        const char *in, *cc;
    } ok[] = {
        {"+4930123456", "+49"},    {"+15551234567", "+1"},   {"+79161234567", "+7"},
        {"+35312345678", "+353"},  {"+441632960000", "+44"}, {"+8613800000000", "+86"},
        {"+972501234567", "+972"}, {"+2125551234", "+212"},  {"+201001234567", "+20"},
        {"+4930", "+49"},          {"+353", "+353"},         {"+1", "+1"},
    };
    char cc[TL_CC_MAX + 1];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(tl_e164_country_code(ok[i].in, cc), 0);
        assert_string_equal(cc, ok[i].cc);
    }
    static const char *const bad[] = {"4930123", "+0123", "+", "+4",
                                      "+35",     "+49a1", "",  "+1234567890123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tl_e164_country_code(bad[i], cc), EINVAL);
    assert_int_equal(tl_e164_country_code(NULL, cc), EINVAL);
}

static void prefixes(void **state)
{
    (void)state;
    struct tl_err err = {0};
    char v[4][TL_PREFIX_MAX + 1];
    size_t n = 9;
    assert_int_equal(tl_prefix_list_parse(" +49, +1900 ,+", v, 4, &n, "f", &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "+49");
    assert_string_equal(v[1], "+1900");
    assert_string_equal(v[2], "+");
    assert_int_equal(tl_prefix_list_parse("", v, 4, &n, "f", &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tl_prefix_list_parse("+49,49", v, 4, &n, "deny", &err), EINVAL);
    assert_string_equal(err.field, "deny");
    assert_int_equal(tl_prefix_list_parse("+1,+2,+3,+4,+5", v, 4, &n, "f", &err), E2BIG);
    assert_int_equal(tl_prefix_list_parse("+12345678901234567", v, 4, &n, "f", &err), EINVAL);
    assert_int_equal(tl_valid_prefix("+049", "p", &err), EINVAL);
    assert_int_equal(tl_valid_prefix("+49 30", "p", &err), EINVAL);
    assert_int_equal(tl_valid_prefix("+", "p", &err), 0);

    /* the longest match is the one named */
    assert_int_equal(tl_prefix_list_parse("+49,+49900,+1", v, 4, &n, "f", &err), 0);
    const char *hit = NULL;
    assert_true(tl_prefix_match("+499001234", (const char(*)[TL_PREFIX_MAX + 1]) v, n, &hit));
    assert_string_equal(hit, "+49900");
    assert_true(tl_prefix_match("+4930123", (const char(*)[TL_PREFIX_MAX + 1]) v, n, &hit));
    assert_string_equal(hit, "+49");
    assert_false(tl_prefix_match("+4415123", (const char(*)[TL_PREFIX_MAX + 1]) v, n, &hit));
    assert_null(hit);
    /* the default deny-list parses and holds what it says */
    char deny[64][TL_PREFIX_MAX + 1];
    assert_int_equal(tl_prefix_list_parse(TL_DENY_PREFIXES_DEFAULT, deny, 64, &n, "d", &err), 0);
    assert_true(tl_prefix_match("+19005551234", (const char(*)[TL_PREFIX_MAX + 1]) deny, n, &hit));
    assert_true(tl_prefix_match("+8821234567", (const char(*)[TL_PREFIX_MAX + 1]) deny, n, &hit));
    assert_false(
        tl_prefix_match("+4915112345678", (const char(*)[TL_PREFIX_MAX + 1]) deny, n, &hit));
}

static void call_headers(void **state)
{
    (void)state;
    struct tl_err err = {0};
    struct tl_kv h = {"X-Campaign", "spring"};
    assert_int_equal(tl_valid_call_header(&h, "headers[0]", &err), 0);
    strcpy(h.name, "x-lower");
    assert_int_equal(tl_valid_call_header(&h, "headers[0]", &err), 0);
    strcpy(h.name, "P-Asserted-Identity");
    assert_int_equal(tl_valid_call_header(&h, "headers[1]", &err), EINVAL);
    assert_string_equal(err.field, "headers[1].name");
    strcpy(h.name, "X-");
    assert_int_equal(tl_valid_call_header(&h, "headers[0]", &err), EINVAL);
    strcpy(h.name, "X-Inject");
    strcpy(h.value, "a\r\nVia: evil");
    assert_int_equal(tl_valid_call_header(&h, "headers[0]", &err), EINVAL);
    assert_string_equal(err.field, "headers[0].value");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(e164_accepts),
        cmocka_unit_test(e164_refuses),
        cmocka_unit_test(address_accepts),
        cmocka_unit_test(address_refuses),
        cmocka_unit_test(name_rules),
        cmocka_unit_test(username_rules),
        cmocka_unit_test(password_rules),
        cmocka_unit_test(sip_header_rules),
        cmocka_unit_test(cidr_accepts),
        cmocka_unit_test(cidr_refuses),
        cmocka_unit_test(sip_uri_rules),
        cmocka_unit_test(agent_url_rules),
        cmocka_unit_test(ws_header_rules),
        cmocka_unit_test(small_rules),
        cmocka_unit_test(enums),
        cmocka_unit_test(outbound_rules),
        cmocka_unit_test(outbound_warnings),
        cmocka_unit_test(inbound_rules),
        cmocka_unit_test(inbound_warnings),
        cmocka_unit_test(agent_rules),
        cmocka_unit_test(country_codes),
        cmocka_unit_test(prefixes),
        cmocka_unit_test(call_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
