/* sip/auth: WWW-Authenticate, Proxy-Authenticate, Authorization and Proxy-Authorization
 * values (RFC 3261 §22, §25.1; RFC 7616; RFC 8760).
 *
 * Digest header parsers are a classic hole (OpenSIPS CVE-2023-28098, pjsip
 * CVE-2022-24754): here every value is a slice bounded by the field, quoted-strings are
 * scanned with tl_sip__qstr() which never runs past the field, the number of parameters
 * is capped, and a parameter given twice is refused rather than letting the first or the
 * last one win (one side of a check could read another realm or nonce than the other).
 *
 * Quoting is not enforced per parameter: carriers send algorithm="MD5" and unquoted realms;
 * what matters is that each value is one token or one quoted-string. */
#include <errno.h>
#include <string.h>

#include "sipint.h"

static bool all_hex(const struct tl_pl *v, size_t min, size_t max)
{
    if (v->l < min || v->l > max)
        return false;
    for (size_t i = 0; i < v->l; i++) {
        if (!ch_hex((unsigned char)v->p[i]))
            return false;
    }
    return true;
}

static int bool_val(const struct tl_pl *v, bool *out)
{
    if (tl_pl_caseeq_str(v, "true"))
        *out = true;
    else if (tl_pl_caseeq_str(v, "false"))
        *out = false;
    else
        return EBADMSG;
    return 0;
}

static int set_once(struct tl_pl *dst, const struct tl_pl *v)
{
    if (dst->p)
        return EBADMSG;
    *dst = *v; /* v.p points into the field even for "": present means p != NULL */
    return 0;
}

enum { SEEN_STALE = 1, SEEN_USERHASH = 2 };

static int digest_param(struct tl_sip_auth *a, const struct tl_pl *name, const struct tl_pl *v,
                        unsigned *seen)
{
    const struct {
        const char *name;
        struct tl_pl *slot;
    } slots[] = {
        {"realm", &a->realm},         {"nonce", &a->nonce}, {"opaque", &a->opaque},
        {"algorithm", &a->algorithm}, {"qop", &a->qop},     {"domain", &a->domain},
        {"username", &a->username},   {"uri", &a->uri},     {"response", &a->response},
        {"cnonce", &a->cnonce},       {"nc", &a->nc},
    };
    if (tl_pl_caseeq_str(name, "stale") || tl_pl_caseeq_str(name, "userhash")) {
        unsigned bit = tl_pl_caseeq_str(name, "stale") ? SEEN_STALE : SEEN_USERHASH;
        if (*seen & bit)
            return EBADMSG;
        *seen |= bit;
        return bool_val(v, bit == SEEN_STALE ? &a->stale : &a->userhash);
    }
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        if (tl_pl_caseeq_str(name, slots[i].name))
            return set_once(slots[i].slot, v);
    }
    return 0; /* an auth-param we do not know: allowed, ignored */
}

int tl_sip_auth_decode(struct tl_sip_auth *auth, const struct tl_pl *val)
{
    if (!auth || !val || !val->p)
        return EINVAL;
    memset(auth, 0, sizeof(*auth));
    const char *e = rtrim_lws(val->p, val->p + val->l), *p = skip_lws(val->p, e), *s;
    unsigned seen = 0;
    int err;

    s = p;
    p = skip_token(p, e);
    auth->scheme = pl_span(s, p);
    if (!auth->scheme.l)
        return EBADMSG;
    s = skip_lws(p, e);
    if (s == p && s < e)
        return EBADMSG; /* LWS after the scheme */
    auth->params = pl_span(s, e);
    auth->digest = tl_pl_caseeq_str(&auth->scheme, "Digest");
    if (!auth->digest)
        return 0; /* unknown scheme (RFC 4475 §3.3.7): keep it opaque, answer with ours */
    if (s == e)
        return EBADMSG;

    /* digest-cln *(COMMA digest-cln); digest-cln = name EQUAL ( token / quoted-string ) */
    p = s;
    for (size_t n = 0;;) {
        struct tl_pl name, v;
        p = skip_lws(p, e);
        if (p >= e)
            break;
        if (*p == ',') { /* empty list element */
            p++;
            continue;
        }
        if (++n > TL_SIP_PARAM_MAX)
            return E2BIG;
        s = p;
        p = skip_token(p, e);
        name = pl_span(s, p);
        if (!name.l)
            return EBADMSG;
        p = skip_lws(p, e);
        if (p >= e || *p != '=')
            return EBADMSG;
        p = skip_lws(p + 1, e);
        if (p < e && *p == '"') {
            p = tl_sip__qstr(p, e, &v);
            if (!p)
                return EBADMSG;
        } else {
            s = p;
            p = skip_token(p, e);
            v = pl_span(s, p);
            if (!v.l)
                return EBADMSG;
        }
        p = skip_lws(p, e);
        if (p < e && *p != ',')
            return EBADMSG;
        if ((err = digest_param(auth, &name, &v, &seen)) != 0)
            return err;
    }

    /* nc = 8LHEX; request-digest = 32LHEX (MD5) or 64LHEX (SHA-256, SHA-512/256) */
    if (auth->nc.p && !all_hex(&auth->nc, 8, 8))
        return EBADMSG;
    if (auth->response.p && !all_hex(&auth->response, 32, 128))
        return EBADMSG;
    return 0;
}
