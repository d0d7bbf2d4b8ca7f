/* validate: the rules for everything a person types into the API or the CLI.
 *
 * Pure functions, no I/O, no allocation. Every refusal names the JSON path of the value
 * and says the rule and, where one can be computed, the corrected form: most bad input is
 * a copy-paste from a carrier portal ("sip:sip.telnyx.com:5060", "+49 30 1234 5678"), and
 * the fastest fix is to show what we would have accepted.
 *
 * Values that may carry secrets or control characters (passwords, header values) are
 * never echoed back into a message. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

/* ---- enum <-> wire name ---- */

static const char *const plan_names[] = {"free", "starter", "professional", "enterprise"};
static const char *const transport_names[] = {"tls", "tcp", "udp"};
static const char *const media_names[] = {"required", "allowed", "disabled"};
static const char *const source_names[] = {"sip_trunk", "platform"};
static const char *const kind_names[] = {"builtin", "websocket", "twiml"};
static const char *const role_names[] = {"operator", "admin", "member"};
static const char *const numfmt_names[] = {"e164", "no_plus"};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Out-of-range values come only from memory corruption or a bad migration; "unknown"
 * keeps printf and json_string() callers from dereferencing NULL. */
static const char *enum_name(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t)v < n ? names[v] : "unknown";
}

/* Wire names are case-sensitive: one spelling per value keeps stored data and API output
 * canonical. The codec tells a person who typed "TLS" which spelling to use. */
static int enum_parse(const char *const *names, size_t n, const char *s)
{
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

/* the public name/parse pair of one enum over its table */
#define WIRE_NAMES(type, name_fn, parse_fn, names)                                                 \
    const char *name_fn(type v)                                                                    \
    {                                                                                              \
        return enum_name(names, N_OF(names), (int)v);                                              \
    }                                                                                              \
    int parse_fn(const char *s)                                                                    \
    {                                                                                              \
        return enum_parse(names, N_OF(names), s);                                                  \
    }

WIRE_NAMES(enum tl_plan, tl_plan_name, tl_plan_parse, plan_names)
WIRE_NAMES(enum tl_transport, tl_transport_name, tl_transport_parse, transport_names)
WIRE_NAMES(enum tl_media_enc, tl_media_enc_name, tl_media_enc_parse, media_names)
WIRE_NAMES(enum tl_number_source, tl_source_name, tl_source_parse, source_names)
WIRE_NAMES(enum tl_agent_kind, tl_agent_kind_name, tl_agent_kind_parse, kind_names)
WIRE_NAMES(enum tl_role, tl_role_name, tl_role_parse, role_names)
WIRE_NAMES(enum tl_number_format, tl_number_format_name, tl_number_format_parse, numfmt_names)

/* Not WIRE_NAMES: DEFAULT has no wire name (the member is absent or null). The names are
 * the media layer's (tl_media_latch_name). */
static const char *const latching_names[] = {NULL, "sdp-ip", "any", "off"};

const char *tl_rtp_latching_name(enum tl_rtp_latching l)
{
    return (unsigned)l < N_OF(latching_names) ? latching_names[l] : NULL;
}

int tl_rtp_latching_parse(const char *s)
{
    for (size_t i = 1; s && i < N_OF(latching_names); i++)
        if (strcmp(s, latching_names[i]) == 0)
            return (int)i;
    return -1;
}

bool tl_plan_allows_sip_import(enum tl_plan p)
{
    /* product rule: "SIP trunk import is available from the Professional plan onwards" */
    return p == TL_PLAN_PROFESSIONAL || p == TL_PLAN_ENTERPRISE;
}

/* ---- helpers ---- */

#define FIELD_CAP sizeof(((struct tl_err *)0)->field)

static int bad(struct tl_err *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct tl_err *err, const char *field, const char *fmt, ...)
{
    char msg[sizeof(((struct tl_err *)0)->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tl_err_set(err, EINVAL, 400, "invalid_field", field ? field : "", "%s", msg);
}

/* "outbound_trunk" + ".address"; vsnprintf truncates silently, which is right for a
 * label that only points a person at the field */
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

/* ASCII classes without <ctype.h>: its answers depend on the locale and on the sign of
 * char, and these rules are about bytes on the wire. */
static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_alnum(unsigned char c)
{
    return is_digit(c) || is_alpha(c);
}
static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
static bool is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
 * "'" / "~") */
static bool is_sip_token_char(unsigned char c)
{
    return c && (is_alnum(c) || strchr("-.!%*_+`'~", c));
}

/* RFC 9110 §5.6.2 tchar, for WebSocket upgrade headers and agent parameter keys */
static bool is_tchar(unsigned char c)
{
    return c && (is_alnum(c) || strchr("!#$%&'*+-.^_`|~", c));
}

/* Header values: HTAB is legal folding-free whitespace, every other control byte is
 * refused. CR and LF are the threat (a value "b\r\nVia: evil" would add a header of
 * the attacker's choosing to every INVITE or upgrade request); the rest have no business
 * in a header either. */
static bool value_has_ctl(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (is_ctl(*p) && *p != '\t')
            return true;
    return false;
}

/* Host name (RFC 1123 §2.1 LDH labels) or IPv4 dotted quad, on a slice. Returns NULL
 * when valid, else the rule that was broken. A last label of digits only is not a host
 * name (RFC 3696 §2: top-level domains are never all-numeric), so "1.2.3" and "300.1.1.1"
 * must parse as IPv4 or be refused instead of being sent to DNS. */
static const char *host_problem(const char *h, size_t n)
{
    if (n == 0)
        return "the host name is empty";
    if (n > TL_HOST_MAX)
        return "a host name has at most 253 characters";
    if (h[n - 1] == '.')
        return "a host name must not end with a dot";
    size_t label = 0, last = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0)
                return "a host name must not start with a dot or contain two dots in a row";
            if (h[i - 1] == '-')
                return "a part of a host name must not end with a hyphen";
            label = 0;
            last = i + 1;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return "a host name may contain only letters, digits, hyphens and dots";
        if (c == '-' && label == 0)
            return "a part of a host name must not start with a hyphen";
        if (++label > 63)
            return "each dot-separated part of a host name has at most 63 characters";
    }
    if (h[n - 1] == '-')
        return "a part of a host name must not end with a hyphen";
    bool numeric = true;
    for (size_t i = last; i < n; i++)
        numeric = numeric && is_digit((unsigned char)h[i]);
    if (numeric) {
        char buf[TL_HOST_MAX + 1];
        struct in_addr a;
        memcpy(buf, h, n);
        buf[n] = '\0';
        if (inet_pton(AF_INET, buf, &a) != 1)
            return "an IPv4 address is four numbers from 0 to 255 separated by dots "
                   "(like 203.0.113.7), and a host name does not end in a number";
    }
    return NULL;
}

/* "[v6]" on a slice including the brackets */
static bool ipv6_literal(const char *h, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 2];
    struct in6_addr a;
    if (n < 3 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= sizeof buf)
        return false;
    memcpy(buf, h + 1, n - 2);
    buf[n - 2] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* ":5060" etc. on a slice of the digits: 1..65535, no sign, no leading zero */
static bool port_ok(const char *p, size_t n)
{
    if (n == 0 || n > 5 || p[0] == '0')
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)p[i]))
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    return v <= 65535;
}

/* ---- phone numbers ---- */

/* The compact E.164 form a person most likely meant, or false when we cannot tell.
 * Separators people copy from business cards and portals are dropped; "00" is the
 * international call prefix in most of the world (ITU-T E.164 Annex), so "0049…" is
 * "+49…". A single leading 0 is a national trunk prefix and needs a country code we do
 * not know, so no guess is made. */
static bool e164_suggest(const char *s, char out[TL_E164_MAX + 1], bool *national)
{
    char digits[64];
    size_t nd = 0;
    bool plus = false, seen = false;
    *national = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '+' && !seen && !plus) {
            plus = true;
            continue;
        }
        if (*p == ' ' || *p == '-' || *p == '.' || *p == '(' || *p == ')' || *p == '/')
            continue;
        if (!is_digit(*p) || nd + 1 >= sizeof digits)
            return false;
        digits[nd++] = (char)*p;
        seen = true;
    }
    digits[nd] = '\0';
    const char *d = digits;
    if (!plus && nd >= 2 && d[0] == '0' && d[1] == '0')
        d += 2;
    else if (!plus && nd >= 1 && d[0] == '0') {
        *national = true;
        return false;
    }
    size_t n = strlen(d);
    if (n < 1 || n > 15 || d[0] == '0')
        return false;
    out[0] = '+';
    memcpy(out + 1, d, n + 1);
    return true;
}

int tl_valid_e164(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return bad(err, field,
                   "%s is required, in E.164 format: + then country code and number, "
                   "e.g. +493012345678",
                   field);
    if (s[0] == '+') {
        size_t nd = 0;
        bool digits_only = true;
        for (const char *p = s + 1; *p; p++, nd++)
            digits_only = digits_only && is_digit((unsigned char)*p);
        if (digits_only) {
            if (nd == 0)
                return bad(err, field,
                           "%s: + must be followed by the country code and the number, "
                           "e.g. +493012345678",
                           field);
            if (s[1] == '0')
                return bad(err, field,
                           "%s: the first digit after + starts the country code, which is "
                           "never 0; write + then the country code (e.g. +49 for Germany) "
                           "and the number without its leading 0",
                           field);
            if (nd > 15)
                return bad(err, field,
                           "%s has %zu digits after the +; an E.164 number has at most 15", field,
                           nd);
            return 0;
        }
    }
    char sug[TL_E164_MAX + 1];
    bool national;
    if (e164_suggest(s, sug, &national))
        return bad(err, field,
                   "%s must be in E.164 format: + followed by 1 to 15 digits, no spaces or "
                   "dashes; use \"%s\"",
                   field, sug);
    if (national)
        return bad(err, field,
                   "%s looks like a national number (leading 0); E.164 needs + and the "
                   "country code instead of the 0, e.g. 030 12345678 in Germany is "
                   "+493012345678",
                   field);
    return bad(err, field,
               "%s must be in E.164 format: + followed by 1 to 15 digits, e.g. +493012345678",
               field);
}

/* ---- trunk address ---- */

static bool starts_with_ci(const char *s, const char *prefix)
{
    return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* From what people paste out of carrier portals ("sip:user@sip.telnyx.com:5060;
 * transport=tls", Twilio's "Termination SIP URI") derive the bare host: drop the scheme,
 * user@, port, ;params, ?headers and /path. Sets *ipv6 when the host is an IPv6
 * literal, which has no bare form we accept. */
static bool address_fix(const char *s, char out[TL_HOST_MAX + 1], bool *ipv6)
{
    const char *p = s, *end = s + strlen(s);
    *ipv6 = false;
    while (p < end && is_space((unsigned char)*p))
        p++;
    while (end > p && is_space((unsigned char)end[-1]))
        end--;
    if (starts_with_ci(p, "sips:"))
        p += 5;
    else if (starts_with_ci(p, "sip:"))
        p += 4;
    else {
        const char *sep = strstr(p, "://");
        if (sep && sep < end)
            p = sep + 3;
    }
    for (const char *q = p; q < end; q++)
        if (*q == '/' || *q == ';' || *q == '?') {
            end = q;
            break;
        }
    for (const char *q = end; q > p; q--)
        if (q[-1] == '@') {
            p = q;
            break;
        }
    if (p < end && *p == '[') {
        *ipv6 = true;
        return false;
    }
    const char *colon = memchr(p, ':', (size_t)(end - p));
    if (colon) {
        if (memchr(colon + 1, ':', (size_t)(end - colon - 1))) {
            *ipv6 = true;
            return false;
        }
        end = colon;
    }
    if (end > p && end[-1] == '.')
        end--;
    size_t n = (size_t)(end - p);
    for (size_t i = 0; i < n; i++)
        if (is_space((unsigned char)p[i]))
            return false;
    if (host_problem(p, n))
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

int tl_valid_trunk_address(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return bad(err, field,
                   "%s is required: the hostname or IP address of your provider's SIP trunk, "
                   "e.g. sip.telnyx.com",
                   field);
    bool forbidden = starts_with_ci(s, "sip:") || starts_with_ci(s, "sips:");
    for (const unsigned char *p = (const unsigned char *)s; *p && !forbidden; p++)
        forbidden = *p == ':' || *p == '/' || *p == ';' || *p == '@' || is_space(*p) || is_ctl(*p);
    if (forbidden) {
        char fix[TL_HOST_MAX + 1];
        bool ipv6;
        bool fixed = address_fix(s, fix, &ipv6);
        if (ipv6)
            return bad(err, field,
                       "%s must be a hostname or IPv4 address; IPv6 addresses are not "
                       "accepted here, use your provider's hostname instead",
                       field);
        if (fixed)
            return bad(err, field,
                       "%s must be the hostname or IP address only: no sip: prefix, no user@, "
                       "no port, no ;parameters or path (: / ; @ and spaces are not allowed); "
                       "use \"%s\"",
                       field, fix);
        return bad(err, field,
                   "%s must be the hostname or IP address only: no sip: prefix, no user@, no "
                   "port, no ;parameters or path (: / ; @ and spaces are not allowed), "
                   "e.g. sip.telnyx.com",
                   field);
    }
    size_t n = strlen(s);
    if (n > TL_HOST_MAX)
        return bad(err, field, "%s is %zu characters long; a host name has at most %d", field, n,
                   TL_HOST_MAX);
    /* The root dot of a fully qualified name is legal DNS, but TLS certificates and SNI
     * (RFC 6066 §3) never carry it, so "host." would fail certificate verification at
     * call time. Refuse now and show the form that works. */
    if (s[n - 1] == '.' && n > 1 && !host_problem(s, n - 1))
        return bad(err, field, "%s must not end with a dot; use \"%.*s\"", field, (int)(n - 1), s);
    const char *why = host_problem(s, n);
    if (why)
        return bad(err, field,
                   "%s must be a hostname or IPv4 address, e.g. sip.telnyx.com or 203.0.113.7: "
                   "%s",
                   field, why);
    return 0;
}

/* ---- names, credentials ---- */

int tl_valid_name(const char *s, bool required, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return required ? bad(err, field, "%s is required", field) : 0;
    size_t n = strlen(s);
    if (n > TL_NAME_MAX)
        return bad(err, field, "%s is %zu bytes long; at most %d are allowed", field, n,
                   TL_NAME_MAX);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (is_ctl(*p))
            return bad(err, field, "%s must not contain line breaks, tabs or control characters",
                       field);
    return 0;
}

int tl_valid_username(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    if (n > TL_USER_MAX)
        return bad(err, field, "%s is %zu characters long; at most %d are allowed", field, n,
                   TL_USER_MAX);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_space(*p))
            return bad(err, field, "%s must not contain spaces or line breaks", field);
        /* the digest username travels in a quoted-string (RFC 3261 §25.1) and is hashed
         * by the carrier: only printable ASCII survives every implementation unchanged */
        if (*p < 0x21 || *p > 0x7e)
            return bad(err, field,
                       "%s may contain only printable ASCII characters (letters, digits, "
                       "punctuation)",
                       field);
    }
    return 0;
}

int tl_valid_password(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    if (n > TL_PASSWORD_MAX)
        return bad(err, field, "%s is %zu bytes long; at most %d are allowed", field, n,
                   TL_PASSWORD_MAX);
    if (strpbrk(s, "\r\n"))
        return bad(err, field, "%s must not contain line breaks", field);
    return 0;
}

/* ---- SIP headers ---- */

/* Headers the gateway writes itself (RFC 3261 §20 and the extensions we implement):
 * dialog and transaction identity, routing, body framing, authentication, the option
 * tags of what we support, session timers (RFC 4028), PRACK (RFC 3262), REFER
 * (RFC 3515) and events (RFC 6665). A custom value for any of them would break the call
 * or take it somewhere else. */
static const char *const sip_owned[] = {
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
    "Content-Encoding",
    "Content-Disposition",
    "Route",
    "Record-Route",
    "Authorization",
    "Proxy-Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Require",
    "Proxy-Require",
    "Supported",
    "Unsupported",
    "Allow",
    "Allow-Events",
    "Expires",
    "Session-Expires",
    "Min-SE",
    "RAck",
    "RSeq",
    "Refer-To",
    "Referred-By",
    "Replaces",
    "Event",
    "Subscription-State",
};

/* A custom header name (SIP or WebSocket upgrade): present, within cap, and made of the
 * protocol's token characters (is_char; allowed says which, for the message). *len: its
 * length. */
static int check_header_name(const char name[TL_HEADER_NAME_MAX + 1], const char *nf,
                             bool (*is_char)(unsigned char), const char *allowed, size_t *len,
                             struct tl_err *err)
{
    size_t nl = strnlen(name, TL_HEADER_NAME_MAX + 1);
    *len = nl;
    if (nl == 0)
        return bad(err, nf, "%s is required", nf);
    if (nl > TL_HEADER_NAME_MAX)
        return bad(err, nf, "%s has at most %d characters", nf, TL_HEADER_NAME_MAX);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == ':')
            return bad(err, nf,
                       "%s is the header name only, without ':'; put what follows it in value", nf);
        if (!is_char(c))
            return bad(err, nf, "%s may contain only letters, digits and %s", nf, allowed);
    }
    return 0;
}

int tl_valid_sip_header(const struct tl_kv *h, const char *field, struct tl_err *err)
{
    char nf[FIELD_CAP], vf[FIELD_CAP];
    pathf(nf, sizeof nf, "%s.name", field);
    pathf(vf, sizeof vf, "%s.value", field);
    size_t nl;
    int rc = check_header_name(h->name, nf, is_sip_token_char,
                               "- . ! % * _ + ` ' ~ (a SIP token, RFC 3261 §25.1), "
                               "e.g. X-Customer-Id",
                               &nl, err);
    if (rc)
        return rc;
    /* RFC 3261 §7.3.3: one-letter names are compact forms of standard headers (v = Via,
     * f = From, i = Call-ID, …), so "v" would smuggle in a second Via */
    if (nl == 1)
        return bad(err, nf,
                   "%s: one-letter names are SIP compact forms of standard headers (v is Via, "
                   "f is From, …) and cannot be set; use the full name of a custom header",
                   nf);
    for (size_t i = 0; i < N_OF(sip_owned); i++)
        if (strcasecmp(h->name, sip_owned[i]) == 0)
            return bad(err, nf, "%s: %s is set by the gateway itself and cannot be overridden", nf,
                       sip_owned[i]);
    size_t vl = strnlen(h->value, sizeof h->value);
    if (vl == 0)
        return bad(err, vf, "%s is required", vf);
    if (vl > TL_HEADER_VALUE_MAX)
        return bad(err, vf, "%s has at most %d characters", vf, TL_HEADER_VALUE_MAX);
    if (value_has_ctl(h->value))
        return bad(err, vf,
                   "%s must not contain line breaks or control characters (they would let the "
                   "value add SIP headers of its own)",
                   vf);
    return 0;
}

int tl_valid_call_header(const struct tl_kv *h, const char *field, struct tl_err *err)
{
    int rc = tl_valid_sip_header(h, field, err);
    if (rc)
        return rc;
    /* a call's own headers are data for the far end (customer ids, campaign tags), never
     * signalling: the X- prefix keeps them from naming a header that means something */
    if ((h->name[0] != 'X' && h->name[0] != 'x') || h->name[1] != '-' || !h->name[2]) {
        char nf[FIELD_CAP];
        pathf(nf, sizeof nf, "%s.name", field);
        return bad(err, nf,
                   "%s: a call's own headers must start with X- (e.g. X-Campaign-Id); trunk-wide "
                   "headers belong in the number's outbound_trunk.headers",
                   nf);
    }
    return 0;
}

/* ITU-T E.164 country codes: 1 and 7 are one digit, the two-digit ones below, every other
 * assigned code three digits (the first digit decides the zone; zones 2-9 mix lengths). */
static const char *const cc2[] = {"20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
                                  "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
                                  "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
                                  "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};

int tl_e164_country_code(const char *e164, char out[TL_CC_MAX + 1])
{
    if (!e164 || e164[0] != '+' || e164[1] < '1' || e164[1] > '9')
        return EINVAL;
    size_t n = strspn(e164 + 1, "0123456789");
    if (n > 15 || e164[1 + n])
        return EINVAL;
    size_t len = 3;
    if (e164[1] == '1' || e164[1] == '7')
        len = 1;
    for (size_t i = 0; len == 3 && n >= 2 && i < N_OF(cc2); i++)
        if (e164[1] == cc2[i][0] && e164[2] == cc2[i][1])
            len = 2;
    if (n < len) /* a head too short to hold its code ("+4" of "+49…") */
        return EINVAL;
    out[0] = '+';
    memcpy(out + 1, e164 + 1, len);
    out[1 + len] = '\0';
    return 0;
}

int tl_valid_prefix(const char *s, const char *field, struct tl_err *err)
{
    size_t n = s ? strlen(s) : 0;
    if (!s || s[0] != '+' || n > TL_PREFIX_MAX || strspn(s + 1, "0123456789") != n - 1 ||
        (n > 1 && s[1] == '0'))
        return bad(err, field,
                   "%s must be an E.164 prefix: + and up to 15 digits, the first not 0 (+49, "
                   "+1212, or + alone for every number)",
                   field);
    return 0;
}

int tl_prefix_list_parse(const char *csv, char (*out)[TL_PREFIX_MAX + 1], size_t cap, size_t *n,
                         const char *field, struct tl_err *err)
{
    *n = 0;
    for (const char *p = csv ? csv : ""; *p;) {
        p += strspn(p, " ,");
        size_t len = strcspn(p, " ,");
        if (!len)
            break;
        char item[TL_PREFIX_MAX + 2];
        if (len > TL_PREFIX_MAX) {
            return bad(err, field, "%s: \"%.*s\" is too long for an E.164 prefix", field,
                       (int)(len > 32 ? 32 : len), p);
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (tl_valid_prefix(item, field, err))
            return EINVAL;
        if (*n >= cap)
            return err ? tl_err_set(err, E2BIG, 400, "invalid_field", field,
                                    "%s: at most %zu prefixes", field, cap)
                       : E2BIG;
        tl_strlcpy(out[(*n)++], item, TL_PREFIX_MAX + 1);
        p += len;
    }
    return 0;
}

bool tl_prefix_match(const char *e164, const char (*v)[TL_PREFIX_MAX + 1], size_t n,
                     const char **which)
{
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (!strncmp(e164, v[i], l) && (!best || l > strlen(best)))
            best = v[i];
    }
    if (which)
        *which = best;
    return best != NULL;
}

/* ---- addresses ---- */

int tl_valid_cidr(const char *s, char out[TL_CIDR_MAX + 1], const char *field, struct tl_err *err)
{
    static const char example[] = "e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8::/32";
    if (!s || !*s)
        return bad(err, field, "%s must be an IP address or CIDR block, %s", field, example);
    size_t n = strnlen(s, TL_CIDR_MAX + 1);
    if (n > TL_CIDR_MAX)
        return bad(err, field, "%s is too long for an IP address or CIDR block, %s", field,
                   example);
    char addr[TL_CIDR_MAX + 1];
    const char *slash = strchr(s, '/');
    size_t al = slash ? (size_t)(slash - s) : n;
    memcpy(addr, s, al);
    addr[al] = '\0';
    for (size_t i = 0; i < n; i++)
        if (is_space((unsigned char)s[i]) || is_ctl((unsigned char)s[i]))
            return bad(err, field, "%s must not contain spaces, %s", field, example);
    int af = strchr(addr, ':') ? AF_INET6 : AF_INET;
    unsigned char bytes[16];
    if (inet_pton(af, addr, bytes) != 1)
        return bad(err, field, "%s: \"%s\" is not an IPv4 or IPv6 address, %s", field, addr,
                   example);
    unsigned maxlen = af == AF_INET ? 32 : 128;
    size_t nbytes = af == AF_INET ? 4 : 16;
    /* Sources are matched as the kernel reports them; an IPv4 peer appears as IPv4, so a
     * mapped form (::ffff:a.b.c.d) would silently never match. */
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (af == AF_INET6 && memcmp(bytes, mapped, 12) == 0) {
        char v4[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, bytes + 12, v4, sizeof v4);
        return bad(err, field, "%s: write IPv4 addresses in IPv4 form; use \"%s%s\"", field, v4,
                   slash ? "/…" : "");
    }
    unsigned len = maxlen;
    if (slash) {
        const char *p = slash + 1;
        size_t pl = strlen(p);
        bool ok = pl >= 1 && pl <= 3 && !(pl > 1 && p[0] == '0');
        len = 0;
        for (size_t i = 0; ok && i < pl; i++) {
            ok = is_digit((unsigned char)p[i]);
            len = len * 10 + (unsigned)(p[i] - '0');
        }
        if (!ok || len > maxlen)
            return bad(err, field, "%s: the prefix length after / must be a number from 0 to %u",
                       field, maxlen);
    }
    unsigned char net[16];
    memcpy(net, bytes, nbytes);
    for (unsigned bit = len; bit < maxlen; bit++)
        net[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    char text[INET6_ADDRSTRLEN];
    if (memcmp(net, bytes, nbytes) != 0) {
        inet_ntop(af, net, text, sizeof text);
        return bad(err, field,
                   "%s: %s has bits set after the first %u; the block is written with its "
                   "network address: use \"%s/%u\" (or \"%s\" for that single address)",
                   field, s, len, text, len, addr);
    }
    inet_ntop(af, net, text, sizeof text);
    /* a full-length prefix is the plain address: one spelling, so duplicates are found */
    if (len == maxlen)
        snprintf(out, TL_CIDR_MAX + 1, "%s", text);
    else
        snprintf(out, TL_CIDR_MAX + 1, "%s/%u", text, len);
    return 0;
}

/* host[:port] slice of a URI authority; "what" names the URI kind for the message */
static int check_hostport(const char *h, size_t n, const char *field, const char *example,
                          struct tl_err *err)
{
    size_t hl = n;
    const char *port = NULL;
    if (n > 0 && h[0] == '[') {
        const char *rb = memchr(h, ']', n);
        if (!rb || !ipv6_literal(h, (size_t)(rb - h) + 1))
            return bad(err, field, "%s: the IPv6 address in brackets is not valid, %s", field,
                       example);
        hl = (size_t)(rb - h) + 1;
        if (hl < n && h[hl] != ':')
            return bad(err, field, "%s: only :port may follow the host, %s", field, example);
    } else {
        const char *colon = memchr(h, ':', n);
        if (colon)
            hl = (size_t)(colon - h);
        if (hl == 0)
            return bad(err, field, "%s has no host, %s", field, example);
        const char *why = host_problem(h, hl);
        if (why)
            return bad(err, field, "%s: %s, %s", field, why, example);
    }
    if (hl < n) {
        port = h + hl + 1;
        if (!port_ok(port, n - hl - 1))
            return bad(err, field, "%s: the port must be a number from 1 to 65535, %s", field,
                       example);
    }
    return 0;
}

/* what every URI typed into a form must be: within max, no spaces or control characters
 * (a line break would split a header or a log line) */
static int uri_text(const char *s, size_t n, size_t max, const char *field, struct tl_err *err)
{
    if (n > max)
        return bad(err, field, "%s is %zu characters long; at most %zu are allowed", field, n, max);
    for (size_t i = 0; i < n; i++)
        if (is_space((unsigned char)s[i]) || is_ctl((unsigned char)s[i]))
            return bad(err, field, "%s must not contain spaces, line breaks or control characters",
                       field);
    return 0;
}

/* the authority of an http(s)/ws(s) URL at p: no user:password@ (the URL is returned by
 * every read of the agent, so credentials there would be readable by every member of the
 * workspace; how to send them instead is creds), a host, a valid port */
static int url_authority(const char *p, const char *field, const char *example, const char *creds,
                         struct tl_err *err)
{
    size_t al = strcspn(p, "/?#");
    if (memchr(p, '@', al))
        return bad(err, field, "%s must not contain user:password@; %s", field, creds);
    if (al == 0)
        return bad(err, field, "%s has no host, %s", field, example);
    return check_hostport(p, al, field, example, err);
}

int tl_valid_sip_uri(const char *s, const char *field, struct tl_err *err)
{
    static const char example[] = "e.g. sips:pbx.example.com or sip:agent@203.0.113.7:5060";
    if (!s || !*s)
        return 0;
    size_t n = strlen(s);
    int rc = uri_text(s, n, TL_URI_MAX, field, err);
    if (rc)
        return rc;
    const char *p;
    if (starts_with_ci(s, "sips:"))
        p = s + 5;
    else if (starts_with_ci(s, "sip:"))
        p = s + 4;
    else
        return bad(err, field, "%s must be a sip: or sips: URI, %s", field, example);
    /* userinfo may itself contain ';' (RFC 3261 §25.1 user-unreserved), never an
     * unescaped '@' after it, so the host starts after the last '@' before '?' */
    const char *end = p + strcspn(p, "?");
    for (const char *q = end; q > p; q--)
        if (q[-1] == '@') {
            p = q;
            break;
        }
    size_t hp = strcspn(p, ";?");
    if (hp == 0)
        return bad(err, field, "%s has no host, %s", field, example);
    return check_hostport(p, hp, field, example, err);
}

int tl_valid_agent_url(const char *s, const char *field, struct tl_err *err)
{
    static const char example[] = "e.g. wss://agent.example.com/media";
    if (!s || !*s)
        return bad(err, field, "%s is required for a websocket agent: a ws:// or wss:// URL, %s",
                   field, example);
    size_t n = strlen(s);
    int rc = uri_text(s, n, TL_AGENT_URL_MAX, field, err);
    if (rc)
        return rc;
    const char *p;
    if (starts_with_ci(s, "wss://"))
        p = s + 6;
    else if (starts_with_ci(s, "ws://"))
        p = s + 5;
    else if (starts_with_ci(s, "https://"))
        return bad(err, field, "%s must be a WebSocket URL; use \"wss://%.*s\"", field,
                   (int)(n - 8 > 300 ? 300 : n - 8), s + 8);
    else if (starts_with_ci(s, "http://"))
        return bad(err, field, "%s must be a WebSocket URL; use \"ws://%.*s\"", field,
                   (int)(n - 7 > 300 ? 300 : n - 7), s + 7);
    else
        return bad(err, field, "%s must start with ws:// or wss://, %s", field, example);
    return url_authority(p, field, example,
                         "send credentials in a header instead (header values are never shown "
                         "again)",
                         err);
}

int tl_valid_http_url(const char *s, const char *field, bool required, struct tl_err *err)
{
    static const char example[] = "e.g. https://bot.example.com/voice";
    if (!s || !*s)
        return required ? bad(err, field, "%s is required: an https:// URL, %s", field, example)
                        : 0;
    size_t n = strlen(s);
    int rc = uri_text(s, n, TL_AGENT_URL_MAX, field, err);
    if (rc)
        return rc;
    const char *p;
    if (starts_with_ci(s, "https://"))
        p = s + 8;
    else if (starts_with_ci(s, "http://"))
        p = s + 7;
    else if (starts_with_ci(s, "wss://") || starts_with_ci(s, "ws://"))
        return bad(err, field,
                   "%s is the bot's HTTP address (Twilio's voice URL), not its WebSocket; the "
                   "WebSocket comes in the TwiML it answers (<Connect><Stream url=\"wss://…\">)",
                   field);
    else
        return bad(err, field, "%s must start with https://, %s", field, example);
    return url_authority(p, field, example,
                         "the bot can check the X-Twilio-Signature of our requests instead", err);
}

/* scheme, host and port of a ws(s):// URL, for comparisons; false when it does not parse */
static bool url_dest(const char *u, bool *tls, char *host, size_t cap, unsigned *port)
{
    const char *p;
    if (starts_with_ci(u, "wss://"))
        p = u + 6, *tls = true;
    else if (starts_with_ci(u, "ws://"))
        p = u + 5, *tls = false;
    else
        return false;
    size_t al = strcspn(p, "/?#");
    const char *end = p + al, *colon = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', al);
        if (!rb)
            return false;
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', al);
    }
    size_t hl = (size_t)((colon ? colon : end) - p);
    if (hl == 0 || hl >= cap)
        return false;
    for (size_t i = 0; i < hl; i++)
        host[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
    host[hl] = '\0';
    *port = *tls ? 443 : 80;
    if (colon) {
        unsigned v = 0;
        for (const char *q = colon + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || v > 65535)
                return false;
            v = v * 10 + (unsigned)(*q - '0');
        }
        *port = v;
    }
    return true;
}

bool tl_agent_url_same_dest(const char *a, const char *b)
{
    bool ta, tb;
    char ha[TL_HOST_MAX + 3], hb[TL_HOST_MAX + 3];
    unsigned pa, pb;
    if (!a || !b || !url_dest(a, &ta, ha, sizeof ha, &pa) || !url_dest(b, &tb, hb, sizeof hb, &pb))
        return false;
    return ta == tb && pa == pb && !strcmp(ha, hb);
}

/* RFC 6455 §4.1 and RFC 9110 §7.6.1: the upgrade handshake and message framing are ours;
 * overriding them breaks the connection or smuggles a request */
static bool ws_owned(const char *name)
{
    static const char *const owned[] = {"Host", "Upgrade", "Connection", "Content-Length",
                                        "Transfer-Encoding"};
    for (size_t i = 0; i < N_OF(owned); i++)
        if (strcasecmp(name, owned[i]) == 0)
            return true;
    return strncasecmp(name, "Sec-WebSocket-", 14) == 0;
}

int tl_valid_ws_header(const struct tl_kv *h, const char *field, struct tl_err *err)
{
    char nf[FIELD_CAP], vf[FIELD_CAP];
    pathf(nf, sizeof nf, "%s.name", field);
    pathf(vf, sizeof vf, "%s.value", field);
    size_t nl;
    int rc = check_header_name(h->name, nf, is_tchar,
                               "! # $ % & ' * + - . ^ _ ` | ~ (an HTTP token), e.g. Authorization",
                               &nl, err);
    if (rc)
        return rc;
    if (ws_owned(h->name))
        return bad(err, nf,
                   "%s: %s is part of the WebSocket handshake and is set by the gateway itself", nf,
                   h->name);
    /* an empty value is legal here: on update it means "keep the stored value" */
    size_t vl = strnlen(h->value, sizeof h->value);
    if (vl > TL_HEADER_VALUE_MAX)
        return bad(err, vf, "%s has at most %d characters", vf, TL_HEADER_VALUE_MAX);
    if (value_has_ctl(h->value))
        return bad(err, vf,
                   "%s must not contain line breaks or control characters (they would let the "
                   "value add HTTP headers of its own)",
                   vf);
    return 0;
}

int tl_valid_param_key(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return bad(err, field, "parameter names must not be empty");
    size_t n = strlen(s);
    if (n > TL_PARAM_KEY_MAX)
        return bad(err, field, "parameter names have at most %d characters", TL_PARAM_KEY_MAX);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (!is_tchar(*p))
            return bad(err, field,
                       "parameter names may contain only letters, digits and ! # $ %% & ' * + "
                       "- . ^ _ ` | ~, e.g. customer_id");
    return 0;
}

int tl_valid_builtin(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return bad(err, field, "%s is required for a builtin agent: \"echo\"", field);
    if (strcmp(s, "echo") != 0)
        return bad(err, field, "%s must be \"echo\", the only builtin agent", field);
    return 0;
}

int tl_valid_region(const char *s, const char *field, struct tl_err *err)
{
    if (!s || !*s)
        return bad(err, field, "%s is required, e.g. \"eu\"", field);
    size_t n = strlen(s);
    if (n > TL_REGION_MAX)
        return bad(err, field, "%s has at most %d characters", field, TL_REGION_MAX);
    bool upper = false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            upper = true;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '-'))
            return bad(err, field,
                       "%s may contain only lowercase letters, digits and hyphens, e.g. \"eu\"",
                       field);
    }
    if (upper) {
        char low[TL_REGION_MAX + 1];
        for (size_t i = 0; i <= n; i++)
            low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
        return bad(err, field, "%s must be lowercase; use \"%s\"", field, low);
    }
    if (s[0] == '-' || s[n - 1] == '-')
        return bad(err, field, "%s must not start or end with a hyphen", field);
    return 0;
}

/* ---- whole objects ---- */

typedef int (*header_check_fn)(const struct tl_kv *h, const char *field, struct tl_err *err);

/* each header valid, at most TL_HEADERS_MAX, and no name twice: a repeated custom
 * header reaches the carrier in an order it may not expect, and on a PUT a duplicate
 * is almost always a forgotten old entry */
static int check_headers(const struct tl_kv *hs, size_t n, const char *base, const char *what,
                         header_check_fn check, struct tl_err *err)
{
    char f[FIELD_CAP];
    if (n > TL_HEADERS_MAX)
        return bad(err, pathf(f, sizeof f, "%s", base), "%s: at most %d %s are allowed", base,
                   TL_HEADERS_MAX, what);
    for (size_t i = 0; i < n; i++) {
        int rc = check(&hs[i], pathf(f, sizeof f, "%s[%zu]", base, i), err);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(hs[i].name, hs[j].name) == 0)
                return bad(err, pathf(f, sizeof f, "%s[%zu].name", base, i),
                           "%s: %s is already given in %s[%zu] (names are compared ignoring "
                           "case); give each header once",
                           f, hs[i].name, base, j);
    }
    return 0;
}

/* username/password pair shared by both directions. A missing password on a write with
 * a username is the codec's (import) or the store's (replace keeps the stored one)
 * business; here only the combinations that are wrong in every case. */
static int check_credentials(const char *user, const char *pass, bool pass_given,
                             const char *prefix, struct tl_err *err)
{
    char f[FIELD_CAP];
    int rc = tl_valid_username(user, pathf(f, sizeof f, "%s.username", prefix), err);
    if (rc)
        return rc;
    if (!pass_given)
        return 0;
    rc = tl_valid_password(pass, pathf(f, sizeof f, "%s.password", prefix), err);
    if (rc)
        return rc;
    if (user[0] && !pass[0])
        return bad(err, f, "%s is required when a username is given", f);
    if (!user[0] && pass[0])
        return bad(err, pathf(f, sizeof f, "%s.username", prefix),
                   "%s is required when a password is given (digest authentication needs "
                   "both); add the username or remove the password",
                   f);
    return 0;
}

static int check_enums(enum tl_transport t, enum tl_media_enc m, const char *prefix,
                       struct tl_err *err)
{
    char f[FIELD_CAP];
    if ((unsigned)t > TL_TRANSPORT_UDP)
        return bad(err, pathf(f, sizeof f, "%s.transport", prefix), "%s must be tls, tcp or udp",
                   f);
    if ((unsigned)m > TL_MEDIA_DISABLED)
        return bad(err, pathf(f, sizeof f, "%s.media_encryption", prefix),
                   "%s must be required, allowed or disabled", f);
    return 0;
}

static void warn_media(enum tl_transport t, enum tl_media_enc m, const char *prefix,
                       struct tl_warnings *w)
{
    char f[FIELD_CAP];
    pathf(f, sizeof f, "%s.media_encryption", prefix);
    /* RFC 4568 §8.3: SDES puts the SRTP master key in the SDP body, so anyone who can
     * read the signalling can decrypt the audio */
    if (m == TL_MEDIA_REQUIRED && t != TL_TRANSPORT_TLS)
        tl_warn(w, "srtp_keys_in_clear", f,
                "SRTP keys (SDES) would cross the network in the clear over %s signalling; "
                "use tls",
                tl_transport_name(t));
    if (m == TL_MEDIA_DISABLED && t == TL_TRANSPORT_TLS)
        tl_warn(w, "media_unencrypted", f,
                "signalling is encrypted but audio is not; set media_encryption to required "
                "(or allowed if your provider cannot do SRTP)");
}

int tl_valid_outbound(const struct tl_outbound_trunk *t, const char *field_prefix,
                      struct tl_warnings *w, struct tl_err *err)
{
    char f[FIELD_CAP];
    int rc =
        tl_valid_trunk_address(t->address, pathf(f, sizeof f, "%s.address", field_prefix), err);
    if (!rc)
        rc = check_credentials(t->username, t->password, t->password_given, field_prefix, err);
    if (!rc)
        rc = check_enums(t->transport, t->media_encryption, field_prefix, err);
    if (!rc)
        rc = check_headers(t->headers, t->n_headers, pathf(f, sizeof f, "%s.headers", field_prefix),
                           "headers", tl_valid_sip_header, err);
    if (rc)
        return rc;
    warn_media(t->transport, t->media_encryption, field_prefix, w);
    return 0;
}

int tl_valid_inbound(const struct tl_inbound_trunk *t, const char *field_prefix,
                     struct tl_warnings *w, struct tl_err *err)
{
    char f[FIELD_CAP], g[FIELD_CAP];
    int rc = check_enums(t->transport, t->media_encryption, field_prefix, err);
    if (rc)
        return rc;
    /* the product promise: "UDP fallbacks won't work for inbound". Over UDP a spoofed
     * source address passes allowed_addresses, and large INVITEs fragment. */
    if (t->transport == TL_TRANSPORT_UDP)
        return bad(err, pathf(f, sizeof f, "%s.transport", field_prefix),
                   "%s: inbound calls over UDP are not accepted; choose tls or tcp", f);
    rc = check_credentials(t->username, t->password, t->password_given, field_prefix, err);
    if (rc)
        return rc;
    if (t->n_allowed > TL_ALLOWED_MAX)
        return bad(err, pathf(f, sizeof f, "%s.allowed_addresses", field_prefix),
                   "%s: at most %d addresses or blocks are allowed", f, TL_ALLOWED_MAX);
    char canon[TL_ALLOWED_MAX][TL_CIDR_MAX + 1];
    for (size_t i = 0; i < t->n_allowed; i++) {
        pathf(f, sizeof f, "%s.allowed_addresses[%zu]", field_prefix, i);
        rc = tl_valid_cidr(t->allowed_addresses[i], canon[i], f, err);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(canon[i], canon[j]) == 0)
                return bad(err, f, "%s: %s is already given in allowed_addresses[%zu]", f, canon[i],
                           j);
    }
    rc = tl_valid_sip_uri(t->origination_url,
                          pathf(f, sizeof f, "%s.origination_url", field_prefix), err);
    if (rc)
        return rc;
    rc = check_headers(t->headers, t->n_headers, pathf(g, sizeof g, "%s.headers", field_prefix),
                       "headers", tl_valid_sip_header, err);
    if (rc)
        return rc;
    if ((unsigned)t->rtp_latching > TL_LATCHING_OFF)
        return bad(err, pathf(f, sizeof f, "%s.rtp_latching", field_prefix),
                   "%s must be sdp-ip, any or off, or null for the gateway's rtp_latching "
                   "setting",
                   f);
    warn_media(t->transport, t->media_encryption, field_prefix, w);
    /* README "Latching policy": under any, whoever sends plain RTP first gets the audio;
     * SRTP moves only to authenticated packets, so required closes that race */
    if (t->rtp_latching == TL_LATCHING_ANY && t->media_encryption != TL_MEDIA_REQUIRED)
        tl_warn(w, "rtp_latching_any", pathf(f, sizeof f, "%s.rtp_latching", field_prefix),
                "with any, plain RTP goes back to whoever sends first, which an attacker who "
                "guesses the port can race; prefer media_encryption required, under which only "
                "authenticated SRTP moves the audio");
    if (t->n_allowed == 0 && !t->username[0] && !(t->password_given || t->has_password)) {
        /* issue 11: a warning alone was ignored by scripts and the CLI, and then anyone's
         * INVITE reached the paid agent. Open only on explicit request. */
        if (!t->allow_any_source)
            return bad(err, pathf(f, sizeof f, "%s.allowed_addresses", field_prefix),
                       "an inbound trunk needs allowed_addresses (your provider's signalling "
                       "addresses) or a username and password: without either, anyone who sends "
                       "SIP to the gateway reaches this number's agent. To accept that, set "
                       "%s.allow_any_source to true",
                       field_prefix);
        tl_inbound_open_warning(t, field_prefix, w);
    }
    return 0;
}

void tl_inbound_open_warning(const struct tl_inbound_trunk *t, const char *field_prefix,
                             struct tl_warnings *w)
{
    if (t->n_allowed == 0 && !t->username[0] && !(t->password_given || t->has_password))
        tl_warn(w, "inbound_unauthenticated", field_prefix,
                "anyone who sends SIP to the gateway can reach this number's agent; set "
                "allowed_addresses to your provider's signalling addresses, or a username and "
                "password");
}

int tl_valid_agent(const struct tl_agent *a, struct tl_err *err)
{
    char f[FIELD_CAP];
    int rc = tl_valid_name(a->name, true, "name", err);
    if (rc)
        return rc;
    switch (a->kind) {
    case TL_AGENT_BUILTIN:
        if (a->url[0])
            return bad(err, "url",
                       "a builtin agent has no url; remove url, or set kind to \"websocket\"");
        rc = tl_valid_builtin(a->builtin, "builtin", err);
        break;
    case TL_AGENT_WEBSOCKET:
        if (a->builtin[0])
            return bad(err, "builtin",
                       "a websocket agent has no builtin; remove builtin, or set kind to "
                       "\"builtin\"");
        rc = tl_valid_agent_url(a->url, "url", err);
        if (!rc && a->connect_timeout_ms && /* 0: the default, 5000 */
            (a->connect_timeout_ms < 100 || a->connect_timeout_ms > TL_AGENT_TIMEOUT_MAX_MS))
            return bad(err, "connect_timeout_ms",
                       "connect_timeout_ms must be between 100 and %d (ms): the carrier hears "
                       "ringing while the agent connects, and gives up after a while",
                       TL_AGENT_TIMEOUT_MAX_MS);
        break;
    case TL_AGENT_TWIML:
        if (a->builtin[0])
            return bad(err, "builtin",
                       "a twiml agent has no builtin; remove builtin, or set kind to \"builtin\"");
        if (a->n_headers)
            return bad(err, "headers",
                       "a twiml agent sends no headers of yours: bots built for Twilio check "
                       "the X-Twilio-Signature of our requests instead (docs/agents.md)");
        rc = tl_valid_http_url(a->url, "voice_url", true, err);
        if (!rc)
            rc = tl_valid_http_url(a->fallback_url, "fallback_url", false, err);
        if (!rc)
            rc = tl_valid_http_url(a->status_callback, "status_callback", false, err);
        if (!rc && a->connect_timeout_ms &&
            (a->connect_timeout_ms < 100 || a->connect_timeout_ms > TL_AGENT_TIMEOUT_MAX_MS))
            return bad(err, "timeout_ms",
                       "timeout_ms must be between 100 and %d (ms): the carrier hears ringing "
                       "while the voice URL answers, and gives up after a while",
                       TL_AGENT_TIMEOUT_MAX_MS);
        break;
    default:
        return bad(err, "kind", "kind must be builtin, websocket or twiml");
    }
    if (rc)
        return rc;
    if (a->n_params > TL_PARAMS_MAX)
        return bad(err, "parameters", "parameters: at most %d are allowed", TL_PARAMS_MAX);
    for (size_t i = 0; i < a->n_params; i++) {
        pathf(f, sizeof f, "parameters.%s", a->params[i].key);
        rc = tl_valid_param_key(a->params[i].key, f, err);
        if (rc)
            return rc;
        if (strnlen(a->params[i].value, sizeof a->params[i].value) > TL_PARAM_VALUE_MAX)
            return bad(err, f, "%s has at most %d characters", f, TL_PARAM_VALUE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(a->params[i].key, a->params[j].key) == 0)
                return bad(err, f, "%s is given twice", f);
    }
    return check_headers(a->headers, a->n_headers, "headers", "headers", tl_valid_ws_header, err);
}
