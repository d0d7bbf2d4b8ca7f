/* sip/uri: SIP, SIPS and tel URIs (RFC 3261 §19.1, §25.1; RFC 3966), hosts and ports,
 * %-escapes, and URI comparison (RFC 3261 §19.1.4).
 *
 * The decoder never unescapes in place: members are slices of the input with escapes as
 * written, so "%00" in a user part (RFC 4475 §3.1.1.4) cannot truncate anything, and
 * unescaping happens exactly once, on demand, into a caller buffer (§3.1.1.3). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "sipint.h"

/* ---- hosts and ports ---- */

bool tl_sip__ipv6(const struct tl_pl *pl, unsigned char out[16])
{
    char tmp[64]; /* longest textual IPv6 with an embedded IPv4 is 45 octets */
    struct tl_pl in = *pl;
    if (in.l >= 2 && in.p[0] == '[' && in.p[in.l - 1] == ']') {
        in.p++;
        in.l -= 2;
    }
    if (in.l == 0 || in.l >= sizeof(tmp))
        return false;
    memcpy(tmp, in.p, in.l);
    tmp[in.l] = '\0';
    /* a NUL inside would make inet_pton read a shorter string than we checked */
    if (memchr(in.p, '\0', in.l))
        return false;
    return inet_pton(AF_INET6, tmp, out) == 1;
}

static bool is_ipv4(const char *p, const char *e)
{
    int parts = 0;
    while (parts < 4) {
        unsigned v = 0;
        int n = 0;
        while (p < e && ch_digit((unsigned char)*p) && n < 4) {
            v = v * 10 + (unsigned)(*p++ - '0');
            n++;
        }
        if (n == 0 || n > 3 || v > 255)
            return false;
        if (++parts < 4) {
            if (p >= e || *p != '.')
                return false;
            p++;
        }
    }
    return p == e;
}

/* hostname = *( domainlabel "." ) toplabel [ "." ]; labels of alphanum and inner '-'. */
static bool is_hostname(const char *p, const char *e)
{
    if (e - p > 255)
        return false;
    if (e > p && e[-1] == '.')
        --e; /* a fully qualified trailing dot */
    const char *label = p, *last = p;
    for (const char *q = p;; q++) {
        if (q == e || *q == '.') {
            size_t n = (size_t)(q - label);
            if (n == 0 || n > 63 || label[0] == '-' || q[-1] == '-')
                return false;
            last = label;
            if (q == e)
                break;
            label = q + 1;
        } else if (!ch_alnum((unsigned char)*q) && *q != '-') {
            return false;
        }
    }
    return ch_alpha((unsigned char)*last); /* toplabel starts with ALPHA */
}

const char *tl_sip__host(const char *p, const char *e, struct tl_pl *host,
                         enum tl_sip_host_type *type)
{
    if (p >= e)
        return NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(e - p));
        unsigned char bin[16];
        if (!close)
            return NULL;
        *host = pl_span(p, close + 1);
        if (!tl_sip__ipv6(host, bin))
            return NULL;
        *type = TL_SIP_HOST_IPV6;
        return close + 1;
    }
    const char *s = p;
    bool numeric = true;
    while (p < e && (ch_alnum((unsigned char)*p) || *p == '-' || *p == '.')) {
        if (ch_alpha((unsigned char)*p) || *p == '-')
            numeric = false;
        p++;
    }
    if (p == s)
        return NULL;
    if (numeric) {
        if (!is_ipv4(s, p))
            return NULL;
        *type = TL_SIP_HOST_IPV4;
    } else {
        if (!is_hostname(s, p))
            return NULL;
        *type = TL_SIP_HOST_NAME;
    }
    *host = pl_span(s, p);
    return p;
}

const char *tl_sip__port(const char *p, const char *e, uint16_t *port)
{
    uint32_t v = 0;
    int n = 0;
    while (p < e && ch_digit((unsigned char)*p)) {
        if (++n > 5)
            return NULL;
        v = v * 10 + (uint32_t)(*p++ - '0');
    }
    if (n == 0 || v > 65535)
        return NULL;
    *port = (uint16_t)v;
    return p;
}

bool tl_sip__is_ip(const struct tl_pl *pl)
{
    unsigned char bin[16];
    if (pl->l && is_ipv4(pl->p, pl->p + pl->l))
        return true;
    return tl_sip__ipv6(pl, bin);
}

/* ---- character sets of the URI parts (RFC 3261 §25.1) ---- */

static bool c_user(unsigned char c) /* unreserved / user-unreserved */
{
    return ch_unreserved(c) || c == '&' || c == '=' || c == '+' || c == '$' || c == ',' ||
           c == ';' || c == '?' || c == '/';
}
static bool c_password(unsigned char c)
{
    return ch_unreserved(c) || c == '&' || c == '=' || c == '+' || c == '$' || c == ',';
}
static bool c_param(unsigned char c) /* paramchar without escaped */
{
    return ch_unreserved(c) || c == '[' || c == ']' || c == '/' || c == ':' || c == '&' ||
           c == '+' || c == '$';
}
static bool c_hnv(unsigned char c) /* hname/hvalue chars without escaped */
{
    return ch_unreserved(c) || c == '[' || c == ']' || c == '/' || c == '?' || c == ':' ||
           c == '+' || c == '$';
}
static bool c_uric(unsigned char c)
{
    return ch_unreserved(c) || ch_reserved(c);
}
static bool c_telnum(unsigned char c) /* RFC 3966 global/local number incl. separators */
{
    return ch_hex(c) || c == '*' || c == '#' || c == '+' || c == '-' || c == '.' || c == '(' ||
           c == ')';
}

/* Runs over characters in `ok` and valid %HH escapes; NULL on a broken escape. */
static const char *scan_esc(const char *p, const char *e, bool (*ok)(unsigned char))
{
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            if (e - p < 3 || !ch_hex((unsigned char)p[1]) || !ch_hex((unsigned char)p[2]))
                return NULL;
            p += 3;
        } else if (ok(c)) {
            p++;
        } else {
            break;
        }
    }
    return p;
}

/* *( ";" pname [ "=" pvalue ] ) — shared by sip and tel URIs. */
static const char *scan_uri_params(const char *p, const char *e)
{
    size_t n = 0;
    while (p && p < e && *p == ';') {
        const char *s = ++p;
        if (++n > TL_SIP_PARAM_MAX)
            return NULL;
        p = scan_esc(p, e, c_param);
        if (!p || p == s)
            return NULL;
        if (p < e && *p == '=') {
            s = ++p;
            p = scan_esc(p, e, c_param);
            if (!p || p == s)
                return NULL;
        }
    }
    return p;
}

static enum tl_sip_scheme scheme_id(const struct tl_pl *s)
{
    if (tl_pl_caseeq_str(s, "sip"))
        return TL_SIP_SCHEME_SIP;
    if (tl_pl_caseeq_str(s, "sips"))
        return TL_SIP_SCHEME_SIPS;
    if (tl_pl_caseeq_str(s, "tel"))
        return TL_SIP_SCHEME_TEL;
    return TL_SIP_SCHEME_OTHER;
}

static int sip_decode(struct tl_sip_uri *uri, const char *p, const char *e)
{
    /* '@' cannot appear unescaped after the userinfo (params and headers have no '@'),
     * so the first one ends it; the user part may hold ';' '?' '/' (RFC 4475 §3.1.1.9). */
    const char *at = memchr(p, '@', (size_t)(e - p));
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *ue = colon ? colon : at;
        if (ue == p || scan_esc(p, ue, c_user) != ue)
            return EBADMSG;
        uri->user = pl_span(p, ue);
        if (colon) {
            if (scan_esc(colon + 1, at, c_password) != at)
                return EBADMSG;
            uri->password = pl_span(colon + 1, at);
            uri->has_password = true;
        }
        p = at + 1;
    }
    p = tl_sip__host(p, e, &uri->host, &uri->hostt);
    if (!p)
        return EBADMSG;
    if (p < e && *p == ':') {
        p = tl_sip__port(p + 1, e, &uri->port);
        if (!p)
            return EBADMSG;
        uri->has_port = true;
    }
    const char *s = p;
    p = scan_uri_params(p, e);
    if (!p)
        return EBADMSG;
    uri->params = pl_span(s, p);
    if (p < e && *p == '?') {
        s = ++p;
        for (size_t n = 0;; n++) {
            const char *h = p;
            if (n >= TL_SIP_PARAM_MAX)
                return EBADMSG;
            p = scan_esc(p, e, c_hnv);
            if (!p || p == h || p >= e || *p != '=')
                return EBADMSG;
            p = scan_esc(p + 1, e, c_hnv);
            if (!p)
                return EBADMSG;
            if (p < e && *p == '&') {
                p++;
                continue;
            }
            break;
        }
        uri->headers = pl_span(s, p);
    }
    return p == e ? 0 : EBADMSG;
}

static int tel_decode(struct tl_sip_uri *uri, const char *p, const char *e)
{
    const char *s = p;
    while (p < e && c_telnum((unsigned char)*p))
        p++;
    if (p == s)
        return EBADMSG;
    uri->user = pl_span(s, p);
    s = p;
    p = scan_uri_params(p, e);
    if (!p || p != e)
        return EBADMSG;
    uri->params = pl_span(s, p);
    return 0;
}

int tl_sip_uri_decode(struct tl_sip_uri *uri, const struct tl_pl *pl)
{
    if (!uri || !pl || !pl->p)
        return EINVAL;
    memset(uri, 0, sizeof(*uri));
    const char *p = pl->p, *e = pl->p + pl->l;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) — a '<' here is ltgtruri.dat */
    if (p >= e || !ch_alpha((unsigned char)*p))
        return EBADMSG;
    const char *s = p;
    while (p < e && (ch_alnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (p >= e || *p != ':')
        return EBADMSG;
    uri->scheme_pl = pl_span(s, p);
    uri->scheme = scheme_id(&uri->scheme_pl);
    p++;
    switch (uri->scheme) {
    case TL_SIP_SCHEME_SIP:
    case TL_SIP_SCHEME_SIPS:
        return sip_decode(uri, p, e);
    case TL_SIP_SCHEME_TEL:
        return tel_decode(uri, p, e);
    default:
        /* absoluteURI: only its character set; the 416 is the caller's decision */
        if (p == e || scan_esc(p, e, c_uric) != e)
            return EBADMSG;
        uri->opaque = pl_span(p, e);
        return 0;
    }
}

int tl_sip_uri_unescape(char *dst, size_t cap, size_t *lenp, const struct tl_pl *src)
{
    size_t n = 0;
    if (!dst || !src || cap == 0)
        return EINVAL;
    for (size_t i = 0; i < src->l; i++) {
        unsigned char c = (unsigned char)src->p[i];
        if (c == '%') {
            if (src->l - i < 3 || !ch_hex((unsigned char)src->p[i + 1]) ||
                !ch_hex((unsigned char)src->p[i + 2]))
                return EBADMSG;
            c = (unsigned char)(ch_hexval((unsigned char)src->p[i + 1]) << 4 |
                                ch_hexval((unsigned char)src->p[i + 2]));
            i += 2;
        }
        if (n + 1 >= cap)
            return ENOSPC;
        dst[n++] = (char)c;
    }
    dst[n] = '\0';
    if (lenp)
        *lenp = n;
    return 0;
}

/* ---- comparison (RFC 3261 §19.1.4) ---- */

/* Next octet of an escaped component. An escaped reserved character is not the same as
 * the literal one ("characters other than those in the reserved set are equivalent to
 * their encoding"), so it comes back with the 0x100 bit set. */
static int esc_get(const char **pp, const char *e)
{
    const char *p = *pp;
    if (*p == '%' && e - p >= 3 && ch_hex((unsigned char)p[1]) && ch_hex((unsigned char)p[2])) {
        int c = ch_hexval((unsigned char)p[1]) << 4 | ch_hexval((unsigned char)p[2]);
        *pp = p + 3;
        return ch_reserved((unsigned char)c) ? c | 0x100 : c;
    }
    *pp = p + 1;
    return (unsigned char)*p;
}

static bool esc_eq(const struct tl_pl *a, const struct tl_pl *b, bool icase)
{
    if (!a->l || !b->l) /* absent slices are {NULL, 0}: no arithmetic on them */
        return !a->l && !b->l;
    const char *pa = a->p, *ea = a->p + a->l, *pb = b->p, *eb = b->p + b->l;
    while (pa < ea && pb < eb) {
        int ca = esc_get(&pa, ea), cb = esc_get(&pb, eb);
        if (icase && ca < 0x100 && cb < 0x100) {
            ca = ch_lower((unsigned char)ca);
            cb = ch_lower((unsigned char)cb);
        }
        if (ca != cb)
            return false;
    }
    return pa == ea && pb == eb;
}

static bool esc_eq_str(const struct tl_pl *a, const char *s)
{
    struct tl_pl b = tl_pl_str(s);
    return esc_eq(a, &b, true);
}

/* Walks ";name[=value]" (params) or "name=value&…" (headers, sep '&') of a decoded URI. */
static bool kv_next(struct tl_pl *rest, char sep, struct tl_pl *name, struct tl_pl *val,
                    bool *has_val)
{
    if (!rest->l)
        return false;
    const char *p = rest->p, *e = rest->p + rest->l;
    if (p < e && *p == sep)
        p++;
    if (p >= e)
        return false;
    const char *end = memchr(p, sep, (size_t)(e - p));
    if (!end)
        end = e;
    const char *eq = memchr(p, '=', (size_t)(end - p));
    *name = pl_span(p, eq ? eq : end);
    *val = eq ? pl_span(eq + 1, end) : (struct tl_pl){end, 0};
    *has_val = eq != NULL;
    *rest = pl_span(end, e);
    return true;
}

static bool kv_find(const struct tl_pl *list, char sep, const struct tl_pl *name, struct tl_pl *val,
                    bool *has_val)
{
    struct tl_pl rest = *list, n;
    while (kv_next(&rest, sep, &n, val, has_val)) {
        if (esc_eq(&n, name, true))
            return true;
    }
    return false;
}

static int kv_get(const struct tl_pl *list, char sep, const char *name, struct tl_pl *val)
{
    struct tl_pl rest = *list, n, v;
    bool hv;
    while (kv_next(&rest, sep, &n, &v, &hv)) {
        if (esc_eq_str(&n, name)) {
            if (val)
                *val = v;
            return 0;
        }
    }
    return ENOENT;
}

int tl_sip_uri_param_get(const struct tl_sip_uri *uri, const char *name, struct tl_pl *val)
{
    if (!uri || !name)
        return EINVAL;
    return kv_get(&uri->params, ';', name, val);
}

int tl_sip_uri_header_get(const struct tl_sip_uri *uri, const char *name, struct tl_pl *val)
{
    if (!uri || !name)
        return EINVAL;
    return kv_get(&uri->headers, '&', name, val);
}

/* "user, ttl, method and maddr (and transport) uri-parameters appearing in only one URI
 * never match, even if they contain the default value" — §19.1.4 */
static bool param_must_match(const struct tl_pl *name)
{
    static const char *const names[] = {"user", "ttl", "method", "maddr", "transport"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (esc_eq_str(name, names[i]))
            return true;
    }
    return false;
}

/* True when a parameter named n comes before `at` in list: only the first of repeated
 * names counts, on both sides (otherwise "x=1;x=2" would differ from itself). */
static bool seen_before(const struct tl_pl *list, const char *at, const struct tl_pl *n)
{
    struct tl_pl head = pl_span(list->p, at), v;
    bool hv;
    return kv_find(&head, ';', n, &v, &hv);
}

/* Parameters in both must match; the must-match ones may not be in one only; the rest
 * in one only are ignored. Run in both directions. */
static bool params_cover(const struct tl_pl *a, const struct tl_pl *b)
{
    struct tl_pl rest = *a, n, va, vb;
    bool ha, hb;
    while (kv_next(&rest, ';', &n, &va, &ha)) {
        if (seen_before(a, n.p, &n))
            continue;
        if (kv_find(b, ';', &n, &vb, &hb)) {
            if (ha != hb || !esc_eq(&va, &vb, true))
                return false;
        } else if (param_must_match(&n)) {
            return false;
        }
    }
    return true;
}

/* "URI header components are never ignored": same set, name case-insensitive, value
 * compared octet by octet after unescaping. */
static bool headers_cover(const struct tl_pl *a, const struct tl_pl *b)
{
    struct tl_pl rest = *a, n, va;
    bool ha;
    while (kv_next(&rest, '&', &n, &va, &ha)) {
        struct tl_pl rb = *b, nb, vb;
        bool hb, found = false;
        while (!found && kv_next(&rb, '&', &nb, &vb, &hb))
            found = esc_eq(&n, &nb, true) && esc_eq(&va, &vb, false);
        if (!found)
            return false;
    }
    return true;
}

static bool host_eq(const struct tl_sip_uri *a, const struct tl_sip_uri *b)
{
    unsigned char x[16], y[16];
    if (a->hostt == TL_SIP_HOST_IPV6 && b->hostt == TL_SIP_HOST_IPV6 && tl_sip__ipv6(&a->host, x) &&
        tl_sip__ipv6(&b->host, y))
        return memcmp(x, y, 16) == 0; /* [::1] and [0:0::1] are one host */
    return tl_pl_caseeq(&a->host, &b->host);
}

/* RFC 3966 §4: numbers compared without visual separators, hex digits case-insensitive;
 * every parameter must appear in both with an equal value. */
static bool tel_num_eq(const struct tl_pl *a, const struct tl_pl *b)
{
    if (!a->l || !b->l)
        return !a->l && !b->l;
    const char *pa = a->p, *ea = a->p + a->l, *pb = b->p, *eb = b->p + b->l;
    for (;;) {
        while (pa < ea && (*pa == '-' || *pa == '.' || *pa == '(' || *pa == ')'))
            pa++;
        while (pb < eb && (*pb == '-' || *pb == '.' || *pb == '(' || *pb == ')'))
            pb++;
        if (pa == ea || pb == eb)
            return pa == ea && pb == eb;
        if (ch_lower((unsigned char)*pa++) != ch_lower((unsigned char)*pb++))
            return false;
    }
}

static bool tel_params_cover(const struct tl_pl *a, const struct tl_pl *b)
{
    struct tl_pl rest = *a, n, va, vb;
    bool ha, hb;
    while (kv_next(&rest, ';', &n, &va, &ha)) {
        if (seen_before(a, n.p, &n))
            continue;
        if (!kv_find(b, ';', &n, &vb, &hb) || ha != hb || !esc_eq(&va, &vb, true))
            return false;
    }
    return true;
}

bool tl_sip_uri_cmp(const struct tl_sip_uri *a, const struct tl_sip_uri *b)
{
    if (!a || !b || a->scheme != b->scheme)
        return false; /* sip and sips never match */
    switch (a->scheme) {
    case TL_SIP_SCHEME_SIP:
    case TL_SIP_SCHEME_SIPS:
        /* userinfo is case-sensitive, everything else case-insensitive */
        if (!esc_eq(&a->user, &b->user, false) || a->has_password != b->has_password ||
            !esc_eq(&a->password, &b->password, false))
            return false;
        /* a name never matches the address it resolves to: text compare only */
        if (!host_eq(a, b))
            return false;
        /* an omitted port does not match an explicit 5060 */
        if (a->has_port != b->has_port || a->port != b->port)
            return false;
        return params_cover(&a->params, &b->params) && params_cover(&b->params, &a->params) &&
               headers_cover(&a->headers, &b->headers) && headers_cover(&b->headers, &a->headers);
    case TL_SIP_SCHEME_TEL:
        return tel_num_eq(&a->user, &b->user) && tel_params_cover(&a->params, &b->params) &&
               tel_params_cover(&b->params, &a->params);
    default:
        return tl_pl_caseeq(&a->scheme_pl, &b->scheme_pl) && tl_pl_eq(&a->opaque, &b->opaque);
    }
}
