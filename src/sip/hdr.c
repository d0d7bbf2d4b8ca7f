/* sip/hdr: header names, comma lists, generic parameters and the typed header decoders
 * (RFC 3261 §7.3, §20, §25.1; RFC 3581; RFC 3326; RFC 4028; RFC 6665).
 *
 * Values come from msg.c with folds still in them; a CR or LF inside a value is always
 * part of a fold there, so every "LWS" below skips SP, HT, CR and LF alike. */
#include <errno.h>
#include <string.h>

#include "sipint.h"

/* ---- header names ---- */

struct hdr_def {
    const char *name;
    char compact; /* RFC 3261 §7.3.3 and the extensions' compact forms; 0 = none */
    bool list;    /* value is a comma-separated list (may be split/combined) */
};

static const struct hdr_def hdr_defs[TL_SIP_HDR__N] = {
    [TL_SIP_HDR_ACCEPT] = {"Accept", 0, true},
    [TL_SIP_HDR_ACCEPT_CONTACT] = {"Accept-Contact", 'a', true},
    [TL_SIP_HDR_ACCEPT_ENCODING] = {"Accept-Encoding", 0, true},
    [TL_SIP_HDR_ACCEPT_LANGUAGE] = {"Accept-Language", 0, true},
    [TL_SIP_HDR_ALERT_INFO] = {"Alert-Info", 0, true},
    [TL_SIP_HDR_ALLOW] = {"Allow", 0, true},
    [TL_SIP_HDR_ALLOW_EVENTS] = {"Allow-Events", 'u', true},
    [TL_SIP_HDR_AUTHENTICATION_INFO] = {"Authentication-Info", 0, false},
    [TL_SIP_HDR_AUTHORIZATION] = {"Authorization", 0, false},
    [TL_SIP_HDR_CALL_ID] = {"Call-ID", 'i', false},
    [TL_SIP_HDR_CALL_INFO] = {"Call-Info", 0, true},
    [TL_SIP_HDR_CONTACT] = {"Contact", 'm', true},
    [TL_SIP_HDR_CONTENT_DISPOSITION] = {"Content-Disposition", 0, false},
    [TL_SIP_HDR_CONTENT_ENCODING] = {"Content-Encoding", 'e', true},
    [TL_SIP_HDR_CONTENT_LANGUAGE] = {"Content-Language", 0, true},
    [TL_SIP_HDR_CONTENT_LENGTH] = {"Content-Length", 'l', false},
    [TL_SIP_HDR_CONTENT_TYPE] = {"Content-Type", 'c', false},
    [TL_SIP_HDR_CSEQ] = {"CSeq", 0, false},
    [TL_SIP_HDR_DATE] = {"Date", 0, false},
    [TL_SIP_HDR_ERROR_INFO] = {"Error-Info", 0, true},
    [TL_SIP_HDR_EVENT] = {"Event", 'o', false},
    [TL_SIP_HDR_EXPIRES] = {"Expires", 0, false},
    [TL_SIP_HDR_FROM] = {"From", 'f', false},
    [TL_SIP_HDR_IDENTITY] = {"Identity", 'y', false},
    [TL_SIP_HDR_IN_REPLY_TO] = {"In-Reply-To", 0, true},
    [TL_SIP_HDR_MAX_FORWARDS] = {"Max-Forwards", 0, false},
    [TL_SIP_HDR_MIME_VERSION] = {"MIME-Version", 0, false},
    [TL_SIP_HDR_MIN_EXPIRES] = {"Min-Expires", 0, false},
    [TL_SIP_HDR_MIN_SE] = {"Min-SE", 0, false},
    [TL_SIP_HDR_ORGANIZATION] = {"Organization", 0, false},
    [TL_SIP_HDR_P_ASSERTED_IDENTITY] = {"P-Asserted-Identity", 0, true},
    [TL_SIP_HDR_P_PREFERRED_IDENTITY] = {"P-Preferred-Identity", 0, true},
    [TL_SIP_HDR_PATH] = {"Path", 0, true},
    [TL_SIP_HDR_PRIORITY] = {"Priority", 0, false},
    [TL_SIP_HDR_PRIVACY] = {"Privacy", 0, false},
    [TL_SIP_HDR_PROXY_AUTHENTICATE] = {"Proxy-Authenticate", 0, false},
    [TL_SIP_HDR_PROXY_AUTHORIZATION] = {"Proxy-Authorization", 0, false},
    [TL_SIP_HDR_PROXY_REQUIRE] = {"Proxy-Require", 0, true},
    [TL_SIP_HDR_RACK] = {"RAck", 0, false},
    [TL_SIP_HDR_REASON] = {"Reason", 0, true},
    [TL_SIP_HDR_RECORD_ROUTE] = {"Record-Route", 0, true},
    [TL_SIP_HDR_REFER_TO] = {"Refer-To", 'r', false},
    [TL_SIP_HDR_REFERRED_BY] = {"Referred-By", 'b', false},
    [TL_SIP_HDR_REJECT_CONTACT] = {"Reject-Contact", 'j', true},
    [TL_SIP_HDR_REPLACES] = {"Replaces", 0, false},
    [TL_SIP_HDR_REPLY_TO] = {"Reply-To", 0, false},
    [TL_SIP_HDR_REQUEST_DISPOSITION] = {"Request-Disposition", 'd', true},
    [TL_SIP_HDR_REQUIRE] = {"Require", 0, true},
    [TL_SIP_HDR_RETRY_AFTER] = {"Retry-After", 0, false},
    [TL_SIP_HDR_ROUTE] = {"Route", 0, true},
    [TL_SIP_HDR_RSEQ] = {"RSeq", 0, false},
    [TL_SIP_HDR_SERVER] = {"Server", 0, false},
    [TL_SIP_HDR_SERVICE_ROUTE] = {"Service-Route", 0, true},
    [TL_SIP_HDR_SESSION_EXPIRES] = {"Session-Expires", 'x', false},
    [TL_SIP_HDR_SUBJECT] = {"Subject", 's', false},
    [TL_SIP_HDR_SUBSCRIPTION_STATE] = {"Subscription-State", 0, false},
    [TL_SIP_HDR_SUPPORTED] = {"Supported", 'k', true},
    [TL_SIP_HDR_TIMESTAMP] = {"Timestamp", 0, false},
    [TL_SIP_HDR_TO] = {"To", 't', false},
    [TL_SIP_HDR_UNSUPPORTED] = {"Unsupported", 0, true},
    [TL_SIP_HDR_USER_AGENT] = {"User-Agent", 0, false},
    [TL_SIP_HDR_VIA] = {"Via", 'v', true},
    [TL_SIP_HDR_WARNING] = {"Warning", 0, true},
    [TL_SIP_HDR_WWW_AUTHENTICATE] = {"WWW-Authenticate", 0, false},
};

enum tl_sip_hdr_id tl_sip_hdr_id(const struct tl_pl *name)
{
    if (!name || name->l == 0)
        return TL_SIP_HDR_OTHER;
    if (name->l == 1) {
        unsigned char c = ch_lower((unsigned char)name->p[0]);
        for (int id = 1; id < TL_SIP_HDR__N; id++) {
            if (hdr_defs[id].compact == c)
                return (enum tl_sip_hdr_id)id;
        }
        return TL_SIP_HDR_OTHER;
    }
    for (int id = 1; id < TL_SIP_HDR__N; id++) {
        if (tl_pl_caseeq_str(name, hdr_defs[id].name))
            return (enum tl_sip_hdr_id)id;
    }
    return TL_SIP_HDR_OTHER;
}

const char *tl_sip_hdr_name(enum tl_sip_hdr_id id)
{
    return (id > TL_SIP_HDR_OTHER && id < TL_SIP_HDR__N) ? hdr_defs[id].name : NULL;
}

bool tl_sip_hdr_is_list(enum tl_sip_hdr_id id)
{
    return id > TL_SIP_HDR_OTHER && id < TL_SIP_HDR__N && hdr_defs[id].list;
}

/* ---- methods and transports ---- */

static const char *const method_names[] = {
    [TL_SIP_METHOD_INVITE] = "INVITE",   [TL_SIP_METHOD_ACK] = "ACK",
    [TL_SIP_METHOD_BYE] = "BYE",         [TL_SIP_METHOD_CANCEL] = "CANCEL",
    [TL_SIP_METHOD_OPTIONS] = "OPTIONS", [TL_SIP_METHOD_REGISTER] = "REGISTER",
    [TL_SIP_METHOD_PRACK] = "PRACK",     [TL_SIP_METHOD_SUBSCRIBE] = "SUBSCRIBE",
    [TL_SIP_METHOD_NOTIFY] = "NOTIFY",   [TL_SIP_METHOD_PUBLISH] = "PUBLISH",
    [TL_SIP_METHOD_INFO] = "INFO",       [TL_SIP_METHOD_REFER] = "REFER",
    [TL_SIP_METHOD_MESSAGE] = "MESSAGE", [TL_SIP_METHOD_UPDATE] = "UPDATE",
};
#define METHOD_N (sizeof(method_names) / sizeof(method_names[0]))

enum tl_sip_method tl_sip_method_id(const struct tl_pl *name)
{
    /* case-sensitive (§7.1): "invite" is an extension method, not INVITE */
    for (size_t m = 1; name && m < METHOD_N; m++) {
        if (tl_pl_eq_str(name, method_names[m]))
            return (enum tl_sip_method)m;
    }
    return TL_SIP_METHOD_OTHER;
}

const char *tl_sip_method_name(enum tl_sip_method m)
{
    return (m > TL_SIP_METHOD_OTHER && (size_t)m < METHOD_N) ? method_names[m] : NULL;
}

static const char *const tp_names[] = {
    [TL_SIP_TP_UDP] = "UDP",   [TL_SIP_TP_TCP] = "TCP",           [TL_SIP_TP_TLS] = "TLS",
    [TL_SIP_TP_SCTP] = "SCTP", [TL_SIP_TP_TLS_SCTP] = "TLS-SCTP", [TL_SIP_TP_WS] = "WS",
    [TL_SIP_TP_WSS] = "WSS",
};
#define TP_N (sizeof(tp_names) / sizeof(tp_names[0]))

enum tl_sip_transport tl_sip_transport_id(const struct tl_pl *name)
{
    for (size_t t = 1; name && t < TP_N; t++) {
        if (tl_pl_caseeq_str(name, tp_names[t]))
            return (enum tl_sip_transport)t;
    }
    return TL_SIP_TP_OTHER;
}

const char *tl_sip_transport_name(enum tl_sip_transport tp)
{
    return (tp > TL_SIP_TP_OTHER && (size_t)tp < TP_N) ? tp_names[tp] : NULL;
}

/* ---- lists, quoted strings, parameters ---- */

int tl_sip_list_next(struct tl_pl *rest, struct tl_pl *item)
{
    if (!rest || !item)
        return EINVAL;
    if (!rest->l)
        return ENOENT; /* also {NULL, 0}, an absent value */
    const char *p = rest->p, *e = rest->p + rest->l;
    for (;;) {
        p = skip_lws(p, e);
        if (p >= e) {
            *rest = pl_span(e, e);
            return ENOENT;
        }
        if (*p != ',')
            break;
        p++; /* an empty element */
    }
    const char *s = p;
    bool quote = false, angle = false;
    for (; p < e; p++) {
        char c = *p;
        if (quote) {
            if (c == '\\' && p + 1 < e)
                p++;
            else if (c == '"')
                quote = false;
        } else if (c == '"') {
            quote = true;
        } else if (c == '<') {
            angle = true;
        } else if (c == '>') {
            angle = false;
        } else if (c == ',' && !angle) {
            break;
        }
    }
    if (quote || angle)
        return EBADMSG;
    *item = pl_span(s, rtrim_lws(s, p));
    *rest = pl_span(p, e);
    return 0;
}

bool tl_sip_list_has(const struct tl_pl *list, const char *tok)
{
    struct tl_pl rest, item;
    if (!list || !tok)
        return false;
    rest = *list;
    while (tl_sip_list_next(&rest, &item) == 0) {
        if (tl_pl_caseeq_str(&item, tok))
            return true;
    }
    return false;
}

const char *tl_sip__qstr(const char *p, const char *e, struct tl_pl *content)
{
    if (p >= e || *p != '"')
        return NULL;
    const char *s = ++p;
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *content = pl_span(s, p);
            return p + 1;
        }
        if (c == '\\') {
            /* quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F): NUL, BEL and DEL are legal
             * here (RFC 4475 §3.1.1.2) — which is why nothing in this module uses C strings */
            if (p + 1 >= e || p[1] == '\r' || p[1] == '\n' || (unsigned char)p[1] > 0x7f)
                return NULL;
            p += 2;
            continue;
        }
        if ((c < 0x20 && !ch_lws(c)) || c == 0x7f)
            return NULL; /* a raw control octet: not qdtext */
        p++;
    }
    return NULL; /* unterminated (RFC 4475 §3.1.2.6): never run past the value */
}

static bool ch_gen_value(unsigned char c) /* token / host (incl. IPv6 reference) */
{
    return ch_token(c) || c == ':' || c == '[' || c == ']';
}

int tl_sip_param_next(struct tl_pl *rest, struct tl_sip_param *prm)
{
    if (!rest || !prm)
        return EINVAL;
    memset(prm, 0, sizeof(*prm));
    if (!rest->l)
        return ENOENT;
    const char *p = rest->p, *e = rest->p + rest->l;
    p = skip_lws(p, e);
    if (p >= e) {
        *rest = pl_span(e, e);
        return ENOENT;
    }
    if (*p != ';')
        return EBADMSG;
    p = skip_lws(p + 1, e);
    const char *s = p;
    p = skip_token(p, e);
    if (p == s)
        return EBADMSG; /* ";;" (RFC 4475 §3.1.2.1) */
    prm->name = pl_span(s, p);
    const char *q = skip_lws(p, e);
    if (q < e && *q == '=') {
        q = skip_lws(q + 1, e);
        if (q < e && *q == '"') {
            q = tl_sip__qstr(q, e, &prm->val);
            if (!q)
                return EBADMSG;
            prm->quoted = true;
        } else {
            s = q;
            while (q < e && ch_gen_value((unsigned char)*q))
                q++;
            if (q == s)
                return EBADMSG;
            prm->val = pl_span(s, q);
        }
        prm->has_val = true;
        p = q;
    }
    *rest = pl_span(p, e);
    return 0;
}

int tl_sip_param_get(const struct tl_pl *params, const char *name, struct tl_sip_param *prm)
{
    struct tl_pl rest;
    struct tl_sip_param tmp;
    if (!params || !name)
        return EINVAL;
    rest = *params;
    for (size_t n = 0; n < TL_SIP_PARAM_MAX && tl_sip_param_next(&rest, &tmp) == 0; n++) {
        if (tl_pl_caseeq_str(&tmp.name, name)) {
            if (prm)
                *prm = tmp;
            return 0;
        }
    }
    return ENOENT;
}

/* Walks all parameters of `rest`, rejecting more than TL_SIP_PARAM_MAX; `fn` sees each
 * one. Shared by the decoders that know a few parameters and keep the rest. */
typedef int(param_fn)(void *arg, const struct tl_sip_param *prm);
static int params_walk(struct tl_pl rest, struct tl_pl *all, param_fn *fn, void *arg)
{
    struct tl_sip_param prm;
    const char *s = skip_lws(rest.p, rest.p + rest.l);
    int err;
    for (size_t n = 0;; n++) {
        err = tl_sip_param_next(&rest, &prm);
        if (err == ENOENT)
            break;
        if (err)
            return err;
        if (n >= TL_SIP_PARAM_MAX)
            return E2BIG;
        if (fn && (err = fn(arg, &prm)) != 0)
            return err;
    }
    if (all)
        *all = pl_span(s, rtrim_lws(s, rest.p + rest.l));
    return 0;
}

int tl_sip_qstr_unescape(char *dst, size_t cap, size_t *lenp, const struct tl_pl *src)
{
    size_t n = 0;
    if (!dst || !src || cap == 0)
        return EINVAL;
    for (size_t i = 0; i < src->l; i++) {
        char c = src->p[i];
        if (c == '\\' && i + 1 < src->l)
            c = src->p[++i];
        if (n + 1 >= cap)
            return ENOSPC;
        dst[n++] = c;
    }
    dst[n] = '\0';
    if (lenp)
        *lenp = n;
    return 0;
}

int tl_sip_hdr_unfold(char *dst, size_t cap, size_t *lenp, const struct tl_pl *val)
{
    size_t n = 0;
    if (!dst || !val || cap == 0)
        return EINVAL;
    for (size_t i = 0; i < val->l; i++) {
        char c = val->p[i];
        if (c == '\r' || c == '\n') {
            /* fold: drop the WSP written before it and after it, emit one SP */
            while (n > 0 && ch_wsp((unsigned char)dst[n - 1]))
                n--;
            while (i + 1 < val->l && ch_lws((unsigned char)val->p[i + 1]))
                i++;
            c = ' ';
        }
        if (n + 1 >= cap)
            return ENOSPC;
        dst[n++] = c;
    }
    dst[n] = '\0';
    if (lenp)
        *lenp = n;
    return 0;
}

/* Digits in [p, e) into *v, overflow-safe: EBADMSG for no/other octets, ERANGE > max. */
static int digits(const char *p, const char *e, uint32_t max, uint32_t *v)
{
    uint64_t x = 0;
    bool big = false;
    if (p >= e)
        return EBADMSG;
    for (; p < e; p++) {
        if (!ch_digit((unsigned char)*p))
            return EBADMSG; /* "-999", "five", "1e3" (RFC 4475 §3.1.2.3) */
        if (!big) {
            x = x * 10 + (uint64_t)(*p - '0');
            big = x > max; /* stop multiplying: 36893488147419103232 must not wrap */
        }
    }
    if (big)
        return ERANGE;
    *v = (uint32_t)x;
    return 0;
}

int tl_sip_u32_decode(const struct tl_pl *val, uint32_t max, uint32_t *v)
{
    uint32_t tmp;
    int err;
    if (!val || !val->p || !v)
        return EINVAL;
    struct tl_pl t = pl_trim(*val);
    err = digits(t.p, t.p + t.l, max, &tmp);
    if (!err)
        *v = tmp;
    return err;
}

/* Leading 1*DIGIT of [p, e): returns its end and the value, or NULL. ERANGE -> *range. */
static const char *lead_digits(const char *p, const char *e, uint32_t max, uint32_t *v, bool *range)
{
    const char *s = p;
    while (p < e && ch_digit((unsigned char)*p))
        p++;
    int err = digits(s, p, max, v);
    if (range)
        *range = err == ERANGE;
    return err ? NULL : p;
}

/* ---- Via ---- */

static int via_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_via *via = arg;
    if (tl_pl_caseeq_str(&prm->name, "branch")) {
        if (via->branch.p || !prm->has_val || prm->quoted || !pl_is_token(&prm->val))
            return EBADMSG;
        via->branch = prm->val;
    } else if (tl_pl_caseeq_str(&prm->name, "received")) {
        if (via->received.p || !prm->has_val || !tl_sip__is_ip(&prm->val))
            return EBADMSG;
        via->received = prm->val;
    } else if (tl_pl_caseeq_str(&prm->name, "rport")) {
        /* RFC 3581: bare ";rport" in a request, ";rport=port" once a server filled it */
        if (via->rport)
            return EBADMSG;
        via->rport = true;
        if (prm->has_val) {
            const char *e = prm->val.p + prm->val.l;
            if (prm->quoted || tl_sip__port(prm->val.p, e, &via->rport_val) != e)
                return EBADMSG;
            via->has_rport_val = true;
        }
    } else if (tl_pl_caseeq_str(&prm->name, "maddr")) {
        struct tl_pl h;
        enum tl_sip_host_type t;
        if (via->maddr.p || !prm->has_val ||
            tl_sip__host(prm->val.p, prm->val.p + prm->val.l, &h, &t) != prm->val.p + prm->val.l)
            return EBADMSG;
        via->maddr = prm->val;
    } else if (tl_pl_caseeq_str(&prm->name, "ttl")) {
        uint32_t v;
        if (via->has_ttl || !prm->has_val || tl_sip_u32_decode(&prm->val, 255, &v))
            return EBADMSG;
        via->ttl = (uint8_t)v;
        via->has_ttl = true;
    }
    return 0;
}

/* SLASH = SWS "/" SWS */
static const char *slash(const char *p, const char *e)
{
    p = skip_lws(p, e);
    if (p >= e || *p != '/')
        return NULL;
    return skip_lws(p + 1, e);
}

int tl_sip_via_decode(struct tl_sip_via *via, const struct tl_pl *val)
{
    if (!via || !val || !val->p)
        return EINVAL;
    memset(via, 0, sizeof(*via));
    const char *p = skip_lws(val->p, val->p + val->l), *e = val->p + val->l, *s;

    /* sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed
     * around each '/' (RFC 4475 §3.1.1.1 "SIP  /   2.0 /UDP") */
    s = p;
    p = skip_token(p, e);
    via->proto = pl_span(s, p);
    if (!via->proto.l || !(p = slash(p, e)))
        return EBADMSG;
    s = p;
    p = skip_token(p, e);
    via->ver = pl_span(s, p);
    if (!via->ver.l || !(p = slash(p, e)))
        return EBADMSG;
    s = p;
    p = skip_token(p, e);
    via->tp = pl_span(s, p);
    if (!via->tp.l)
        return EBADMSG;
    via->tpid = tl_sip_transport_id(&via->tp);
    s = skip_lws(p, e);
    if (s == p)
        return EBADMSG; /* LWS between sent-protocol and sent-by is mandatory */
    p = tl_sip__host(s, e, &via->host, &via->hostt);
    if (!p)
        return EBADMSG;
    s = skip_lws(p, e);
    if (s < e && *s == ':') {
        p = tl_sip__port(skip_lws(s + 1, e), e, &via->port);
        if (!p)
            return EBADMSG;
        via->has_port = true;
    }
    return params_walk(pl_span(p, e), &via->params, via_param, via);
}

bool tl_sip_via_branch_rfc3261(const struct tl_sip_via *via)
{
    /* RFC 3261 §8.1.1.7: the cookie is matched case-sensitively */
    return via && via->branch.l > 7 && memcmp(via->branch.p, "z9hG4bK", 7) == 0;
}

/* ---- CSeq, Call-ID ---- */

int tl_sip_cseq_decode(struct tl_sip_cseq *cseq, const struct tl_pl *val)
{
    if (!cseq || !val || !val->p)
        return EINVAL;
    memset(cseq, 0, sizeof(*cseq));
    const char *e = val->p + val->l, *p = skip_lws(val->p, e), *s;
    /* §8.1.1.5: "MUST be expressible as a 32-bit unsigned integer and MUST be less than
     * 2**31"; bigger values (RFC 4475 §3.1.2.4/5) are refused, never wrapped */
    p = lead_digits(p, e, 0x7fffffffu, &cseq->num, NULL);
    if (!p)
        return EBADMSG;
    s = skip_lws(p, e);
    if (s == p)
        return EBADMSG;
    p = skip_token(s, e);
    cseq->met = pl_span(s, p);
    if (!cseq->met.l || skip_lws(p, e) != e)
        return EBADMSG;
    cseq->mid = tl_sip_method_id(&cseq->met);
    return 0;
}

/* word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
 *        "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}") */
static bool ch_word(unsigned char c)
{
    switch (c) {
    case '(':
    case ')':
    case '<':
    case '>':
    case ':':
    case '\\':
    case '"':
    case '/':
    case '[':
    case ']':
    case '?':
    case '{':
    case '}':
        return true;
    default:
        return ch_token(c);
    }
}

int tl_sip_callid_decode(struct tl_pl *callid, const struct tl_pl *val)
{
    if (!callid || !val || !val->p)
        return EINVAL;
    struct tl_pl t = pl_trim(*val);
    const char *p = t.p, *e = t.p + t.l, *s = p;
    while (p < e && ch_word((unsigned char)*p))
        p++;
    if (p == s)
        return EBADMSG;
    if (p < e && *p == '@') {
        s = ++p;
        while (p < e && ch_word((unsigned char)*p))
            p++;
        if (p == s)
            return EBADMSG;
    }
    if (p != e)
        return EBADMSG; /* a second value ("a, b") or LWS inside */
    *callid = t;
    return 0;
}

/* ---- name-addr / addr-spec ---- */

static int addr_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_addr *addr = arg;
    if (tl_pl_caseeq_str(&prm->name, "tag")) {
        /* two tags would let each side of a comparison pick a different one */
        if (addr->tag.p || !prm->has_val || prm->quoted || !pl_is_token(&prm->val))
            return EBADMSG;
        addr->tag = prm->val;
    }
    return 0;
}

int tl_sip_addr_decode(struct tl_sip_addr *addr, const struct tl_pl *val)
{
    if (!addr || !val || !val->p)
        return EINVAL;
    memset(addr, 0, sizeof(*addr));
    const char *e = rtrim_lws(val->p, val->p + val->l), *p = skip_lws(val->p, e), *q;
    if (p >= e)
        return EBADMSG;

    if (*p == '"') {
        p = tl_sip__qstr(p, e, &addr->dname);
        if (!p)
            return EBADMSG; /* RFC 4475 §3.1.2.6 */
        addr->dname_quoted = true;
        p = skip_lws(p, e);
        if (p >= e || *p != '<')
            return EBADMSG;
    } else if (*p != '<') {
        /* *(token LWS) "<": no LWS before '<' is tolerated (RFC 4475 §3.1.1.6) */
        const char *tend = p;
        for (q = p; q < e; q++) {
            if (ch_token((unsigned char)*q))
                tend = q + 1;
            else if (!ch_lws((unsigned char)*q))
                break;
        }
        if (q < e && *q == '<' && tend > p) {
            addr->dname = pl_span(p, tend);
            p = q;
        }
    }

    if (*p == '<') {
        q = memchr(p + 1, '>', (size_t)(e - p - 1));
        if (!q)
            return EBADMSG;
        addr->auri = pl_span(p + 1, q);
        addr->angle = true;
        p = q + 1;
    } else {
        /* addr-spec: every ';' after it starts a header parameter, and a URI holding ',' or
         * '?' must have been in <> (§20.10; RFC 4475 §3.1.2.13) */
        const char *s = p;
        while (p < e && !ch_lws((unsigned char)*p) && *p != ';') {
            if (*p == ',' || *p == '?')
                return EBADMSG;
            p++;
        }
        addr->auri = pl_span(s, p);
    }
    /* spaces inside <> (RFC 4475 §3.1.2.14) fail here: a URI has no LWS */
    if (tl_sip_uri_decode(&addr->uri, &addr->auri))
        return EBADMSG;
    return params_walk(pl_span(p, e), &addr->params, addr_param, addr);
}

int tl_sip_route_decode(struct tl_sip_addr *addr, const struct tl_pl *val)
{
    int err = tl_sip_addr_decode(addr, val);
    if (err)
        return err;
    return addr->angle ? 0 : EBADMSG; /* route-param = name-addr *( SEMI rr-param ) */
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
static bool qvalue(const struct tl_pl *v, uint16_t *q)
{
    const char *p = v->p, *e = v->p + v->l;
    unsigned x, scale = 100;
    if (p >= e || (*p != '0' && *p != '1'))
        return false;
    x = (unsigned)(*p++ - '0') * 1000;
    if (p < e) {
        if (*p++ != '.' || e - p > 3)
            return false;
        for (; p < e; p++, scale /= 10) {
            if (!ch_digit((unsigned char)*p))
                return false;
            x += (unsigned)(*p - '0') * scale;
        }
    }
    if (x > 1000)
        return false;
    *q = (uint16_t)x;
    return true;
}

static int contact_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_contact *c = arg;
    int err = addr_param(&c->addr, prm);
    if (err)
        return err;
    if (tl_pl_caseeq_str(&prm->name, "expires")) {
        if (c->has_expires)
            return EBADMSG;
        c->has_expires = true;
        /* "malformed values SHOULD be treated as equivalent to 3600" (§20.19) —
         * scalar02.dat has expires=280297596632815 */
        if (!prm->has_val || tl_sip_u32_decode(&prm->val, UINT32_MAX, &c->expires))
            c->expires = 3600;
    } else if (tl_pl_caseeq_str(&prm->name, "q")) {
        if (c->has_q || !prm->has_val || prm->quoted || !qvalue(&prm->val, &c->q))
            return EBADMSG;
        c->has_q = true;
    }
    return 0;
}

int tl_sip_contact_decode(struct tl_sip_contact *c, const struct tl_pl *val)
{
    if (!c || !val || !val->p)
        return EINVAL;
    memset(c, 0, sizeof(*c));
    struct tl_pl t = pl_trim(*val);
    if (t.l == 1 && t.p[0] == '*') {
        c->star = true;
        return 0;
    }
    int err = tl_sip_addr_decode(&c->addr, val);
    if (err)
        return err;
    struct tl_pl params = c->addr.params;
    c->addr.tag = (struct tl_pl){0};
    return params_walk(params, NULL, contact_param, c);
}

/* ---- Session-Expires, Min-SE (RFC 4028) ---- */

static int se_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_session_expires *se = arg;
    if (!tl_pl_caseeq_str(&prm->name, "refresher"))
        return 0;
    if (se->refresher != TL_SIP_REFRESHER_NONE || !prm->has_val)
        return EBADMSG;
    if (tl_pl_caseeq_str(&prm->val, "uac"))
        se->refresher = TL_SIP_REFRESHER_UAC;
    else if (tl_pl_caseeq_str(&prm->val, "uas"))
        se->refresher = TL_SIP_REFRESHER_UAS;
    else
        return EBADMSG;
    return 0;
}

/* delta-seconds then parameters */
static int delta_params(const struct tl_pl *val, uint32_t *delta, struct tl_pl *all, param_fn *fn,
                        void *arg)
{
    const char *e = val->p + val->l, *p = skip_lws(val->p, e);
    p = lead_digits(p, e, UINT32_MAX, delta, NULL);
    if (!p)
        return EBADMSG;
    return params_walk(pl_span(p, e), all, fn, arg);
}

int tl_sip_session_expires_decode(struct tl_sip_session_expires *se, const struct tl_pl *val)
{
    if (!se || !val || !val->p)
        return EINVAL;
    memset(se, 0, sizeof(*se));
    return delta_params(val, &se->delta, &se->params, se_param, se);
}

int tl_sip_min_se_decode(uint32_t *delta, const struct tl_pl *val)
{
    if (!delta || !val || !val->p)
        return EINVAL;
    return delta_params(val, delta, NULL, NULL, NULL);
}

/* ---- Event, Subscription-State (RFC 6665) ---- */

static int event_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_event *ev = arg;
    if (tl_pl_caseeq_str(&prm->name, "id")) {
        if (ev->id.p || !prm->has_val)
            return EBADMSG;
        ev->id = prm->val;
    }
    return 0;
}

/* token then parameters */
static int token_params(const struct tl_pl *val, struct tl_pl *tok, struct tl_pl *all, param_fn *fn,
                        void *arg)
{
    const char *e = val->p + val->l, *s = skip_lws(val->p, e), *p = skip_token(s, e);
    if (p == s)
        return EBADMSG;
    *tok = pl_span(s, p);
    return params_walk(pl_span(p, e), all, fn, arg);
}

int tl_sip_event_decode(struct tl_sip_event *ev, const struct tl_pl *val)
{
    if (!ev || !val || !val->p)
        return EINVAL;
    memset(ev, 0, sizeof(*ev));
    return token_params(val, &ev->type, &ev->params, event_param, ev);
}

static int substate_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_substate *ss = arg;
    if (tl_pl_caseeq_str(&prm->name, "reason")) {
        if (ss->reason.p || !prm->has_val || !pl_is_token(&prm->val))
            return EBADMSG;
        ss->reason = prm->val;
    } else if (tl_pl_caseeq_str(&prm->name, "expires")) {
        if (ss->has_expires || !prm->has_val ||
            tl_sip_u32_decode(&prm->val, UINT32_MAX, &ss->expires))
            return EBADMSG;
        ss->has_expires = true;
    } else if (tl_pl_caseeq_str(&prm->name, "retry-after")) {
        if (ss->has_retry_after || !prm->has_val ||
            tl_sip_u32_decode(&prm->val, UINT32_MAX, &ss->retry_after))
            return EBADMSG;
        ss->has_retry_after = true;
    }
    return 0;
}

int tl_sip_substate_decode(struct tl_sip_substate *ss, const struct tl_pl *val)
{
    if (!ss || !val || !val->p)
        return EINVAL;
    memset(ss, 0, sizeof(*ss));
    int err = token_params(val, &ss->state, &ss->params, substate_param, ss);
    if (err)
        return err;
    if (tl_pl_caseeq_str(&ss->state, "active"))
        ss->sid = TL_SIP_SUBSTATE_ACTIVE;
    else if (tl_pl_caseeq_str(&ss->state, "pending"))
        ss->sid = TL_SIP_SUBSTATE_PENDING;
    else if (tl_pl_caseeq_str(&ss->state, "terminated"))
        ss->sid = TL_SIP_SUBSTATE_TERMINATED;
    return 0;
}

/* ---- Reason (RFC 3326), Warning (§20.43) ---- */

static int reason_param(void *arg, const struct tl_sip_param *prm)
{
    struct tl_sip_reason *r = arg;
    if (tl_pl_caseeq_str(&prm->name, "cause")) {
        uint32_t v;
        if (r->has_cause || !prm->has_val || prm->quoted || tl_sip_u32_decode(&prm->val, 65535, &v))
            return EBADMSG;
        r->cause = (uint16_t)v;
        r->has_cause = true;
    } else if (tl_pl_caseeq_str(&prm->name, "text")) {
        if (r->text.p || !prm->has_val)
            return EBADMSG;
        r->text = prm->val;
    }
    return 0;
}

int tl_sip_reason_decode(struct tl_sip_reason *r, const struct tl_pl *val)
{
    if (!r || !val || !val->p)
        return EINVAL;
    memset(r, 0, sizeof(*r));
    return token_params(val, &r->proto, &r->params, reason_param, r);
}

int tl_sip_warning_decode(struct tl_sip_warning *w, const struct tl_pl *val)
{
    if (!w || !val || !val->p)
        return EINVAL;
    memset(w, 0, sizeof(*w));
    const char *e = rtrim_lws(val->p, val->p + val->l), *p = skip_lws(val->p, e), *s;
    uint32_t code;
    /* warn-code = 3DIGIT: "1812" (RFC 4475 §3.1.2.5) is not one */
    if (e - p < 3 || !ch_digit((unsigned char)p[0]) || !ch_digit((unsigned char)p[1]) ||
        !ch_digit((unsigned char)p[2]))
        return EBADMSG;
    if (digits(p, p + 3, 999, &code))
        return EBADMSG;
    w->code = (uint16_t)code;
    s = skip_lws(p + 3, e);
    if (s == p + 3)
        return EBADMSG;
    p = s;
    /* warn-agent = hostport / pseudonym */
    while (p < e && ch_gen_value((unsigned char)*p))
        p++;
    if (p == s)
        return EBADMSG;
    w->agent = pl_span(s, p);
    s = skip_lws(p, e);
    if (s == p || !(p = tl_sip__qstr(s, e, &w->text)) || p != e)
        return EBADMSG;
    return 0;
}
