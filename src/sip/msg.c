/* sip/msg: message decoding (RFC 3261 §7) and stream framing (§18.3, RFC 5626 §3.5.1).
 *
 * Two kinds of failure. A start line or header section that cannot be split, or a cap on
 * bytes/fields, stops decoding at once ("hard"). A bad value in a field ("soft") is noted
 * in msg->err and decoding goes on, so the Via/From/To/Call-ID/CSeq needed for a
 * stateless 400 or 505 are still there when they are themselves fine. */
#include <errno.h>
#include <string.h>

#include "sipint.h"

/* Records the first soft error; `why` is a fixed string (it may become a log field or a
 * Reason-Phrase and must never carry wire data). */
static void soft(struct tl_sip_msg *msg, int *ret, int err, enum tl_sip_hdr_id hdr, const char *why)
{
    if (*ret)
        return;
    *ret = err;
    msg->err = why;
    msg->err_hdr = hdr;
}

/* Splits one header field starting at p: name, HCOLON, value up to the CRLF that is not
 * followed by SP/HT. `e` must lie beyond that CRLF (the caller has the blank line). */
static int hdr_split(const char *p, const char *e, struct tl_pl *name, struct tl_pl *val,
                     const char **next)
{
    const char *s = p, *q, *v;
    if (p >= e || ch_wsp((unsigned char)*p))
        return EBADMSG; /* a continuation line with no field before it */
    q = skip_token(p, e);
    if (q == p)
        return EBADMSG;
    *name = pl_span(p, q);
    /* HCOLON = *( SP / HTAB ) ":" SWS. Anything else before ':' — "Foobar roobar" in
     * test.dat, a control octet (CVE-2016-9938) — is not a header. */
    while (q < e && ch_wsp((unsigned char)*q))
        q++;
    if (q >= e || *q != ':')
        return EBADMSG;
    v = ++q;
    for (;;) {
        if (q >= e)
            return EBADMSG;
        if ((size_t)(q - s) > TL_SIP_LINE_MAX)
            return E2BIG;
        unsigned char c = (unsigned char)*q;
        if (c == '\r') {
            if (e - q < 2 || q[1] != '\n')
                return EBADMSG; /* bare CR */
            if (e - q > 2 && ch_wsp((unsigned char)q[2])) {
                q += 3; /* obs-fold: stays in the value, decoders read it as LWS */
                continue;
            }
            break;
        }
        if (c == '\n')
            return EBADMSG; /* bare LF */
        /* control octets only as a quoted-pair ("\" NUL in intmeth.dat); decoders of
         * the typed fields check the quoting precisely */
        if (((c < 0x20 && c != '\t') || c == 0x7f) && !(q > v && q[-1] == '\\'))
            return EBADMSG;
        q++;
    }
    *val = pl_trim(pl_span(v, q));
    *next = q + 2;
    return 0;
}

/* SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT, case-insensitive (§7.1). */
static bool version_syntax(const struct tl_pl *v)
{
    const char *p = v->p, *e = v->p + v->l, *s;
    if (v->l < 7 || ch_lower((unsigned char)p[0]) != 's' || ch_lower((unsigned char)p[1]) != 'i' ||
        ch_lower((unsigned char)p[2]) != 'p' || p[3] != '/')
        return false;
    p += 4;
    for (s = p; p < e && ch_digit((unsigned char)*p); p++)
        ;
    if (p == s || p >= e || *p++ != '.')
        return false;
    for (s = p; p < e && ch_digit((unsigned char)*p); p++)
        ;
    return p != s && p == e;
}

static bool is_version_2(const struct tl_pl *v)
{
    return v->l == 7 && tl_pl_caseeq_str(v, "SIP/2.0");
}

/* Reason-Phrase: no control octets but HT (UTF-8 is fine, RFC 4475 §3.1.1.12). */
static bool text_ok(const struct tl_pl *t)
{
    for (size_t i = 0; i < t->l; i++) {
        unsigned char c = (unsigned char)t->p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static void start_line(struct tl_sip_msg *msg, const char *p, const char *eol, int *ret,
                       bool *badver)
{
    struct tl_pl line = pl_span(p, eol);
    const char *sp1 = memchr(p, ' ', line.l), *sp2 = NULL;

    if (line.l >= 4 && ch_lower((unsigned char)p[0]) == 's' &&
        ch_lower((unsigned char)p[1]) == 'i' && ch_lower((unsigned char)p[2]) == 'p' &&
        p[3] == '/') {
        /* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase */
        msg->req = false;
        msg->ver = pl_span(p, sp1 ? sp1 : eol);
        const char *c = sp1 ? sp1 + 1 : eol;
        /* exactly 3DIGIT then SP or the end: "4294967301" (RFC 4475 §3.1.2.19) is read
         * three digits at a time, so it can never overflow anything */
        if (eol - c < 3 || !ch_digit((unsigned char)c[0]) || !ch_digit((unsigned char)c[1]) ||
            !ch_digit((unsigned char)c[2]) || (eol - c > 3 && c[3] != ' ')) {
            soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Status-Line");
        } else {
            unsigned code =
                (unsigned)(c[0] - '0') * 100 + (unsigned)(c[1] - '0') * 10 + (unsigned)(c[2] - '0');
            if (code < 100 || code > 699)
                soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Status-Code");
            msg->scode = (uint16_t)code;
            /* "SIP/2.0 100" without SP is tolerated; noreason.dat has the SP */
            msg->reason = eol - c > 3 ? pl_span(c + 4, eol) : pl_span(eol, eol);
            if (!text_ok(&msg->reason))
                soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Reason-Phrase");
        }
    } else {
        /* Request-Line = Method SP Request-URI SP SIP-Version, exactly one SP each: the
         * URI is what lies between the first and the last SP, so extra SP (RFC 4475
         * §3.1.2.8-10) lands in the URI and fails there */
        msg->req = true;
        for (const char *q = eol; q > p; q--) {
            if (q[-1] == ' ') {
                sp2 = q - 1;
                break;
            }
        }
        if (!sp1 || sp1 == sp2) {
            msg->met = pl_span(p, sp1 ? sp1 : eol);
            soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Request-Line");
            return;
        }
        msg->met = pl_span(p, sp1);
        msg->mid = tl_sip_method_id(&msg->met);
        msg->ruri_pl = pl_span(sp1 + 1, sp2);
        msg->ver = pl_span(sp2 + 1, eol);
        if (!pl_is_token(&msg->met))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Method");
        if (tl_sip_uri_decode(&msg->ruri, &msg->ruri_pl))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad Request-URI");
        else if (msg->ruri.headers.l)
            /* §19.1.1: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11);
             * never turn them into real headers */
            soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "headers in Request-URI");
    }
    if (!version_syntax(&msg->ver))
        soft(msg, ret, EBADMSG, TL_SIP_HDR_OTHER, "bad SIP-Version");
    else if (!is_version_2(&msg->ver))
        *badver = true;
}

/* Exactly one field of a single-valued header (RFC 4475 §3.3.8). */
static const struct tl_sip_hdr *single(struct tl_sip_msg *msg, int *ret, enum tl_sip_hdr_id id,
                                       bool mandatory, const char *missing, const char *repeated)
{
    if (msg->hdr_cnt[id] > 1) {
        soft(msg, ret, EBADMSG, id, repeated);
        return NULL;
    }
    if (!msg->hdr_cnt[id]) {
        if (mandatory)
            soft(msg, ret, EBADMSG, id, missing);
        return NULL;
    }
    return &msg->hdrv[msg->hdr_first[id] - 1];
}

/* Decodes every value of a list header with `fn`; returns how many there were. */
typedef int(value_fn)(void *out, const struct tl_pl *val);
static size_t each_value(struct tl_sip_msg *msg, int *ret, enum tl_sip_hdr_id id, value_fn *fn,
                         void *tmp, const char *bad)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    size_t n = 0;
    int err;
    tl_sip_hdr_iter_init(&it, msg, id);
    while ((err = tl_sip_hdr_iter_next(&it, &v)) == 0) {
        n++;
        if (fn(tmp, &v)) {
            soft(msg, ret, EBADMSG, id, bad);
            return n;
        }
    }
    if (err != ENOENT)
        soft(msg, ret, err, id, bad);
    return n;
}

static int token_fn(void *out, const struct tl_pl *v)
{
    return pl_is_token(v) ? 0 : EBADMSG;
}
static int contact_fn(void *out, const struct tl_pl *v)
{
    return tl_sip_contact_decode(out, v);
}
static int route_fn(void *out, const struct tl_pl *v)
{
    return tl_sip_route_decode(out, v);
}

static void decode_fields(struct tl_sip_msg *msg, int *ret)
{
    const struct tl_sip_hdr *h;
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    int err;

    /* Via: the top one is kept; all are checked and counted. HAVE_VIA only when every
     * value is fine, since a response copies them all. */
    tl_sip_hdr_iter_init(&it, msg, TL_SIP_HDR_VIA);
    while ((err = tl_sip_hdr_iter_next(&it, &v)) == 0) {
        struct tl_sip_via tmp;
        if (++msg->viac > TL_SIP_VIA_MAX) {
            err = E2BIG;
            soft(msg, ret, E2BIG, TL_SIP_HDR_VIA, "too many Via values");
            break;
        }
        if (tl_sip_via_decode(msg->viac == 1 ? &msg->via : &tmp, &v)) {
            err = EBADMSG;
            soft(msg, ret, EBADMSG, TL_SIP_HDR_VIA, "bad Via");
            break;
        }
    }
    if (err != ENOENT)
        soft(msg, ret, err, TL_SIP_HDR_VIA, "bad Via");
    else if (!msg->viac)
        soft(msg, ret, EBADMSG, TL_SIP_HDR_VIA, "missing Via");
    else
        msg->have |= TL_SIP_HAVE_VIA;

    if ((h = single(msg, ret, TL_SIP_HDR_FROM, true, "missing From", "repeated From"))) {
        if (tl_sip_addr_decode(&msg->from, &h->val))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_FROM, "bad From");
        else
            msg->have |= TL_SIP_HAVE_FROM;
    }
    if ((h = single(msg, ret, TL_SIP_HDR_TO, true, "missing To", "repeated To"))) {
        if (tl_sip_addr_decode(&msg->to, &h->val))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_TO, "bad To");
        else
            msg->have |= TL_SIP_HAVE_TO;
    }
    if ((h = single(msg, ret, TL_SIP_HDR_CALL_ID, true, "missing Call-ID", "repeated Call-ID"))) {
        if (tl_sip_callid_decode(&msg->callid, &h->val))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_CALL_ID, "bad Call-ID");
        else
            msg->have |= TL_SIP_HAVE_CALLID;
    }
    if ((h = single(msg, ret, TL_SIP_HDR_CSEQ, true, "missing CSeq", "repeated CSeq"))) {
        if (tl_sip_cseq_decode(&msg->cseq, &h->val))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_CSEQ, "bad CSeq");
        else
            msg->have |= TL_SIP_HAVE_CSEQ;
    }
    /* Max-Forwards may be absent (RFC 2543 peers, RFC 4475 §3.4.1) */
    if ((h = single(msg, ret, TL_SIP_HDR_MAX_FORWARDS, false, NULL, "repeated Max-Forwards"))) {
        uint32_t mf;
        if (tl_sip_u32_decode(&h->val, 255, &mf))
            soft(msg, ret, EBADMSG, TL_SIP_HDR_MAX_FORWARDS, "bad Max-Forwards");
        else
            msg->maxfwd = (int)mf;
    }

    struct tl_sip_contact c;
    bool star = false;
    tl_sip_hdr_iter_init(&it, msg, TL_SIP_HDR_CONTACT);
    size_t nc = 0;
    while ((err = tl_sip_hdr_iter_next(&it, &v)) == 0) {
        nc++;
        if (contact_fn(&c, &v)) {
            soft(msg, ret, EBADMSG, TL_SIP_HDR_CONTACT, "bad Contact");
            break;
        }
        star |= c.star;
    }
    if (err != 0 && err != ENOENT)
        soft(msg, ret, err, TL_SIP_HDR_CONTACT, "bad Contact");
    if (star && nc > 1)
        soft(msg, ret, EBADMSG, TL_SIP_HDR_CONTACT, "Contact * with other values");

    struct tl_sip_addr a;
    each_value(msg, ret, TL_SIP_HDR_ROUTE, route_fn, &a, "bad Route");
    each_value(msg, ret, TL_SIP_HDR_RECORD_ROUTE, route_fn, &a, "bad Record-Route");
    each_value(msg, ret, TL_SIP_HDR_REQUIRE, token_fn, NULL, "bad Require");
    each_value(msg, ret, TL_SIP_HDR_PROXY_REQUIRE, token_fn, NULL, "bad Proxy-Require");
    each_value(msg, ret, TL_SIP_HDR_SUPPORTED, token_fn, NULL, "bad Supported");
    each_value(msg, ret, TL_SIP_HDR_UNSUPPORTED, token_fn, NULL, "bad Unsupported");
    each_value(msg, ret, TL_SIP_HDR_ALLOW, token_fn, NULL, "bad Allow");

    /* §8.1.1.5: the CSeq method matches the request's (RFC 4475 §3.1.2.17/18). The
     * method id stays available: an extension method may still get 501 rather than 400. */
    if (msg->req && (msg->have & TL_SIP_HAVE_CSEQ) && msg->met.l &&
        !tl_pl_eq(&msg->cseq.met, &msg->met))
        soft(msg, ret, EBADMSG, TL_SIP_HDR_CSEQ, "CSeq method does not match");
}

int tl_sip_msg_decode(struct tl_sip_msg *msg, const char *buf, size_t len)
{
    if (!msg || !buf)
        return EINVAL;
    memset(msg, 0, sizeof(*msg));
    msg->maxfwd = -1;
    if (len > TL_SIP_MSG_MAX)
        return E2BIG;

    const char *p = buf, *e = buf + len, *eol;
    int ret = 0, err;
    bool badver = false;

    /* §7.5: CRLFs before the start line are ignored */
    while (e - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    const char *start = p;

    for (eol = p; eol < e && *eol != '\r' && *eol != '\n'; eol++) {
        unsigned char c = (unsigned char)*eol;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return EBADMSG;
        if ((size_t)(eol - p) >= TL_SIP_LINE_MAX)
            return E2BIG;
    }
    if (eol == p || e - eol < 2 || eol[0] != '\r' || eol[1] != '\n')
        return EBADMSG;
    start_line(msg, p, eol, &ret, &badver);

    /* header fields up to the blank line */
    p = eol + 2;
    for (;;) {
        struct tl_pl name, val;
        const char *next;
        if (e - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            p += 2;
            break;
        }
        if (msg->hdrc >= TL_SIP_HDR_MAX)
            return E2BIG;
        if ((err = hdr_split(p, e, &name, &val, &next)) != 0)
            return err; /* also: no blank line before the end of the datagram */
        struct tl_sip_hdr *h = &msg->hdrv[msg->hdrc++];
        h->id = tl_sip_hdr_id(&name);
        h->name = name;
        h->val = val;
        if (!msg->hdr_first[h->id])
            msg->hdr_first[h->id] = (uint8_t)msg->hdrc;
        msg->hdr_cnt[h->id]++; /* <= TL_SIP_HDR_MAX, fits */
        p = next;
    }

    /* body: framed by Content-Length only, never by string functions (mpart01.dat holds
     * NULs and bare CR/LF). Without it, a datagram's body is the rest (§18.3). */
    const char *body_end = e;
    const struct tl_sip_hdr *cl;
    if ((cl = single(msg, &ret, TL_SIP_HDR_CONTENT_LENGTH, false, NULL,
                     "repeated Content-Length"))) {
        err = tl_sip_u32_decode(&cl->val, TL_SIP_MSG_MAX, &msg->clen);
        if (err == ERANGE)
            soft(msg, &ret, E2BIG, TL_SIP_HDR_CONTENT_LENGTH, "Content-Length over the cap");
        else if (err)
            soft(msg, &ret, EBADMSG, TL_SIP_HDR_CONTENT_LENGTH, "bad Content-Length");
        else if (msg->clen > (size_t)(e - p))
            soft(msg, &ret, EBADMSG, TL_SIP_HDR_CONTENT_LENGTH,
                 "Content-Length beyond the message");
        else {
            msg->has_clen = true;
            body_end = p + msg->clen; /* the rest of a datagram is discarded (§18.3) */
        }
    }
    msg->body = pl_span(p, body_end);
    msg->mb = pl_span(start, body_end);

    decode_fields(msg, &ret);

    if (badver) {
        /* the grammar of other versions is unknown: 505 wins over whatever else */
        msg->err = "SIP-Version not supported";
        msg->err_hdr = TL_SIP_HDR_OTHER;
        return EPROTONOSUPPORT;
    }
    return ret;
}

const struct tl_sip_hdr *tl_sip_msg_hdr(const struct tl_sip_msg *msg, enum tl_sip_hdr_id id)
{
    if (!msg || id < TL_SIP_HDR_OTHER || id >= TL_SIP_HDR__N || !msg->hdr_first[id])
        return NULL;
    return &msg->hdrv[msg->hdr_first[id] - 1];
}

const struct tl_sip_hdr *tl_sip_msg_hdr_find(const struct tl_sip_msg *msg, const char *name)
{
    if (!msg || !name)
        return NULL;
    struct tl_pl n = tl_pl_str(name);
    enum tl_sip_hdr_id id = tl_sip_hdr_id(&n);
    if (id != TL_SIP_HDR_OTHER)
        return tl_sip_msg_hdr(msg, id);
    for (size_t i = 0; i < msg->hdrc; i++) {
        if (msg->hdrv[i].id == TL_SIP_HDR_OTHER && tl_pl_caseeq(&msg->hdrv[i].name, &n))
            return &msg->hdrv[i];
    }
    return NULL;
}

void tl_sip_hdr_iter_init(struct tl_sip_hdr_iter *it, const struct tl_sip_msg *msg,
                          enum tl_sip_hdr_id id)
{
    memset(it, 0, sizeof(*it));
    it->msg = msg;
    it->id = id;
    if (id >= TL_SIP_HDR_OTHER && id < TL_SIP_HDR__N && msg->hdr_first[id])
        it->idx = msg->hdr_first[id] - 1u;
    else
        it->idx = msg->hdrc;
}

int tl_sip_hdr_iter_next(struct tl_sip_hdr_iter *it, struct tl_pl *val)
{
    if (!it || !it->msg || !val)
        return EINVAL;
    for (;;) {
        if (!it->open) {
            const struct tl_sip_msg *msg = it->msg;
            while (it->idx < msg->hdrc && msg->hdrv[it->idx].id != it->id)
                it->idx++;
            if (it->idx >= msg->hdrc)
                return ENOENT;
            const struct tl_sip_hdr *h = &msg->hdrv[it->idx++];
            if (!tl_sip_hdr_is_list(it->id)) {
                *val = h->val;
                return 0;
            }
            it->rest = h->val;
            it->open = true;
            it->items = 0;
        }
        int err = tl_sip_list_next(&it->rest, val);
        if (err == ENOENT) {
            it->open = false;
            continue;
        }
        if (err)
            return err;
        if (++it->items > TL_SIP_LIST_MAX)
            return E2BIG;
        return 0;
    }
}

bool tl_sip_msg_has_token(const struct tl_sip_msg *msg, enum tl_sip_hdr_id id, const char *tok)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    if (!msg || !tok)
        return false;
    tl_sip_hdr_iter_init(&it, msg, id);
    while (tl_sip_hdr_iter_next(&it, &v) == 0) {
        if (tl_pl_caseeq_str(&v, tok))
            return true;
    }
    return false;
}

/* ---- stream framing ---- */

/* Content-Length of a complete header block [buf, buf + hdr_len): exactly one, digits. */
static int frame_clen(const char *buf, size_t hdr_len, uint32_t *clen)
{
    const char *p = buf, *e = buf + hdr_len, *next;
    size_t n = 0, fields = 0;
    while (p < e && *p != '\r')
        p++;
    p += 2; /* the start line's CRLF */
    while (e - p > 2) {
        struct tl_pl name, val;
        int err = hdr_split(p, e, &name, &val, &next);
        if (err)
            return err;
        if (++fields > TL_SIP_HDR_MAX)
            return E2BIG;
        if (tl_sip_hdr_id(&name) == TL_SIP_HDR_CONTENT_LENGTH) {
            /* two values: no way to know which frames the stream (RFC 4475 §3.3.9) */
            if (n++)
                return EBADMSG;
            err = tl_sip_u32_decode(&val, TL_SIP_MSG_MAX, clen);
            if (err)
                return err == ERANGE ? E2BIG : EBADMSG;
        }
        p = next;
    }
    return n ? 0 : EBADMSG; /* §18.3: mandatory on a stream */
}

void tl_sip_frame_reset(struct tl_sip_frame *fr)
{
    bool crlf_end = fr->crlf_end;
    memset(fr, 0, sizeof(*fr));
    fr->crlf_end = crlf_end;
}

int tl_sip_frame(struct tl_sip_frame *fr, const char *buf, size_t len)
{
    if (!fr || (!buf && len))
        return EINVAL;
    if (fr->total)
        goto have_total;

    if (fr->scan == 0) {
        if (len == 0)
            return ENODATA;
        if (buf[0] == '\r') {
            /* RFC 5626 §3.5.1 keep-alive: CRLFCRLF ping, CRLF pong */
            if (len < 2)
                return ENODATA;
            if (buf[1] != '\n')
                return EBADMSG;
            fr->kind = TL_SIP_FRAME_PONG;
            fr->len = 2;
            if (fr->crlf_end) {
                /* the second half of a ping whose first CRLF ended the last read */
                fr->crlf_end = false;
                fr->kind = TL_SIP_FRAME_PING;
                return 0;
            }
            if (len == 2) {
                fr->crlf_end = true; /* a pong, or half a ping: tl_sip_frame_reset keeps it */
                return 0;
            }
            if (buf[2] != '\r')
                return 0;
            if (len < 4)
                return ENODATA;
            if (buf[3] != '\n')
                return EBADMSG;
            fr->kind = TL_SIP_FRAME_PING;
            fr->len = 4;
            return 0;
        }
        fr->crlf_end = false;
        /* a start line begins with a token (method) or "SIP/": a TLS ClientHello or
         * binary junk on a plain port is refused on its first octet */
        if (!ch_token((unsigned char)buf[0]))
            return EBADMSG;
    }

    size_t i;
    for (i = fr->scan; i < len; i++) {
        char c = buf[i];
        if (i >= TL_SIP_MSG_MAX || i - fr->line >= TL_SIP_LINE_MAX)
            return E2BIG; /* never buffer an endless header for a slow sender */
        if (c == '\r') {
            if (i + 1 >= len)
                break; /* look at it again with the next byte */
            if (buf[i + 1] != '\n')
                return EBADMSG;
        } else if (c == '\n') {
            if (i == 0 || buf[i - 1] != '\r')
                return EBADMSG;
            if (i - 1 == fr->line) {
                fr->hdr_len = i + 1;
                break;
            }
            fr->line = i + 1;
        }
    }
    fr->scan = i;
    if (!fr->hdr_len)
        return ENODATA;

    uint32_t clen = 0;
    int err = frame_clen(buf, fr->hdr_len, &clen);
    if (err)
        return err;
    if (clen > TL_SIP_MSG_MAX - fr->hdr_len)
        return E2BIG;
    fr->total = fr->hdr_len + clen;

have_total:
    if (len < fr->total)
        return ENODATA; /* clerr.dat: wait (with the caller's timeout), never read past */
    fr->kind = TL_SIP_FRAME_MSG;
    fr->len = fr->total;
    return 0;
}
