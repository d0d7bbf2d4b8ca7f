/* sip/print: bounded printing of header fields, Via and responses.
 *
 * Every function writes all or nothing: on error wb->len is restored, so a caller never
 * sends a truncated message. Values that come from outside the wire (API, config) are
 * checked for CR/LF, which would let them add header fields (header injection). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sipint.h"

void tl_sip_wbuf_init(struct tl_sip_wbuf *wb, char *buf, size_t size)
{
    wb->buf = buf;
    wb->size = buf ? size : 0;
    wb->len = 0;
}

int tl_sip_wbuf_write(struct tl_sip_wbuf *wb, const void *p, size_t n)
{
    if (!wb || (!p && n))
        return EINVAL;
    if (n > wb->size - wb->len)
        return ENOSPC;
    if (n)
        memcpy(wb->buf + wb->len, p, n);
    wb->len += n;
    return 0;
}

int tl_sip_wbuf_pl(struct tl_sip_wbuf *wb, const struct tl_pl *pl)
{
    if (!pl)
        return EINVAL;
    return tl_sip_wbuf_write(wb, pl->p, pl->l);
}

int tl_sip_wbuf_printf(struct tl_sip_wbuf *wb, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!wb || !fmt)
        return EINVAL;
    size_t avail = wb->size - wb->len;
    va_start(ap, fmt);
    n = vsnprintf(avail ? wb->buf + wb->len : NULL, avail, fmt, ap);
    va_end(ap);
    if (n < 0)
        return EINVAL;
    if ((size_t)n >= avail) /* vsnprintf needs room for its NUL, which we do not count */
        return ENOSPC;
    wb->len += (size_t)n;
    return 0;
}

static int put_str(struct tl_sip_wbuf *wb, const char *s)
{
    return tl_sip_wbuf_write(wb, s, strlen(s));
}

/* A value, with each fold (CRLF 1*WSP) written as the WSP alone; any other CR or LF is
 * refused. */
static int put_value(struct tl_sip_wbuf *wb, const struct tl_pl *v)
{
    if (!v->l)
        return 0;
    const char *p = v->p, *e = v->p + v->l, *s = p;
    int err;
    for (; p < e; p++) {
        if (*p != '\r' && *p != '\n')
            continue;
        if (*p != '\r' || e - p < 3 || p[1] != '\n' || !ch_wsp((unsigned char)p[2]))
            return EINVAL;
        if ((err = tl_sip_wbuf_write(wb, s, (size_t)(p - s))) != 0)
            return err;
        p++;
        s = p + 1;
    }
    return tl_sip_wbuf_write(wb, s, (size_t)(e - s));
}

int tl_sip_hdr_print(struct tl_sip_wbuf *wb, const char *name, const struct tl_pl *val)
{
    if (!wb || !name || !val || (!val->p && val->l))
        return EINVAL;
    struct tl_pl n = tl_pl_str(name);
    if (!pl_is_token(&n))
        return EINVAL;
    size_t save = wb->len;
    int err = tl_sip_wbuf_write(wb, n.p, n.l);
    if (!err)
        err = tl_sip_wbuf_write(wb, ": ", 2);
    if (!err)
        err = put_value(wb, val);
    if (!err)
        err = tl_sip_wbuf_write(wb, "\r\n", 2);
    if (err)
        wb->len = save;
    return err;
}

static bool host_ok(const struct tl_pl *h)
{
    struct tl_pl out;
    enum tl_sip_host_type t;
    return h->l && tl_sip__host(h->p, h->p + h->l, &out, &t) == h->p + h->l;
}

static bool is_known_via_param(const struct tl_pl *n)
{
    return tl_pl_caseeq_str(n, "branch") || tl_pl_caseeq_str(n, "received") ||
           tl_pl_caseeq_str(n, "rport") || tl_pl_caseeq_str(n, "maddr") ||
           tl_pl_caseeq_str(n, "ttl");
}

static int via_body(struct tl_sip_wbuf *wb, const struct tl_sip_via *via)
{
    struct tl_pl proto = via->proto.l ? via->proto : TL_PL("SIP");
    struct tl_pl ver = via->ver.l ? via->ver : TL_PL("2.0");
    struct tl_pl tp = via->tp.l ? via->tp : tl_pl_str(tl_sip_transport_name(via->tpid));
    int err;

    if (!pl_is_token(&proto) || !pl_is_token(&ver) || !pl_is_token(&tp) || !host_ok(&via->host))
        return EINVAL;
    if ((via->branch.l && !pl_is_token(&via->branch)) ||
        (via->received.l && !tl_sip__is_ip(&via->received)) ||
        (via->maddr.l && !host_ok(&via->maddr)))
        return EINVAL;

    err = tl_sip_wbuf_printf(wb, "%.*s/%.*s/%.*s %.*s", (int)proto.l, proto.p, (int)ver.l, ver.p,
                             (int)tp.l, tp.p, (int)via->host.l, via->host.p);
    if (!err && via->has_port)
        err = tl_sip_wbuf_printf(wb, ":%u", via->port);
    if (!err && via->branch.l)
        err = tl_sip_wbuf_printf(wb, ";branch=%.*s", (int)via->branch.l, via->branch.p);
    if (!err && via->received.l)
        err = tl_sip_wbuf_printf(wb, ";received=%.*s", (int)via->received.l, via->received.p);
    if (!err && via->rport)
        err = via->has_rport_val ? tl_sip_wbuf_printf(wb, ";rport=%u", via->rport_val)
                                 : put_str(wb, ";rport");
    if (!err && via->maddr.l)
        err = tl_sip_wbuf_printf(wb, ";maddr=%.*s", (int)via->maddr.l, via->maddr.p);
    if (!err && via->has_ttl)
        err = tl_sip_wbuf_printf(wb, ";ttl=%u", via->ttl);

    /* extension parameters as they were (they passed tl_sip_via_decode) */
    struct tl_pl rest = via->params;
    struct tl_sip_param prm;
    for (size_t n = 0; !err && n < TL_SIP_PARAM_MAX; n++) {
        int e2 = tl_sip_param_next(&rest, &prm);
        if (e2 == ENOENT)
            break;
        if (e2)
            return EINVAL;
        if (is_known_via_param(&prm.name))
            continue;
        err = tl_sip_wbuf_printf(wb, ";%.*s", (int)prm.name.l, prm.name.p);
        if (!err && prm.has_val) {
            err = put_str(wb, prm.quoted ? "=\"" : "=");
            if (!err)
                err = put_value(wb, &prm.val);
            if (!err && prm.quoted)
                err = put_str(wb, "\"");
        }
    }
    return err;
}

int tl_sip_via_print(struct tl_sip_wbuf *wb, const struct tl_sip_via *via)
{
    if (!wb || !via)
        return EINVAL;
    size_t save = wb->len;
    int err = put_str(wb, "Via: ");
    if (!err)
        err = via_body(wb, via);
    if (!err)
        err = put_str(wb, "\r\n");
    if (err)
        wb->len = save;
    return err;
}

const char *tl_sip_reason_phrase(uint16_t scode)
{
    static const struct {
        uint16_t code;
        const char *phrase;
    } tab[] = {
        {100, "Trying"},
        {180, "Ringing"},
        {181, "Call Is Being Forwarded"},
        {182, "Queued"},
        {183, "Session Progress"},
        {200, "OK"},
        {202, "Accepted"},
        {302, "Moved Temporarily"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"},
        {408, "Request Timeout"},
        {413, "Request Entity Too Large"},
        {415, "Unsupported Media Type"},
        {416, "Unsupported URI Scheme"},
        {420, "Bad Extension"},
        {421, "Extension Required"},
        {422, "Session Interval Too Small"},
        {423, "Interval Too Brief"},
        {480, "Temporarily Unavailable"},
        {481, "Call/Transaction Does Not Exist"},
        {482, "Loop Detected"},
        {483, "Too Many Hops"},
        {484, "Address Incomplete"},
        {486, "Busy Here"},
        {487, "Request Terminated"},
        {488, "Not Acceptable Here"},
        {489, "Bad Event"},
        {491, "Request Pending"},
        {500, "Server Internal Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Server Time-out"},
        {505, "Version Not Supported"},
        {513, "Message Too Large"},
        {600, "Busy Everywhere"},
        {603, "Decline"},
        {604, "Does Not Exist Anywhere"},
        {606, "Not Acceptable"},
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
        if (tab[i].code == scode)
            return tab[i].phrase;
    }
    return "Unknown";
}

/* Extra header lines from our own code: each one "Name:" … CRLF, no CR/LF inside, no
 * empty line (which would end the header and smuggle the rest in as a body). */
static bool lines_ok(const char *s)
{
    const char *p = s;
    while (*p) {
        const char *q = p;
        while (ch_token((unsigned char)*q))
            q++;
        if (q == p || *q != ':')
            return false;
        const char *eol = strchr(q, '\r');
        if (!eol || eol[1] != '\n' || memchr(p, '\n', (size_t)(eol - p)))
            return false;
        p = eol + 2;
    }
    return true;
}

static bool line_text_ok(const struct tl_pl *t)
{
    for (size_t i = 0; i < t->l; i++) {
        unsigned char c = (unsigned char)t->p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* Every field with this id, verbatim (unfolded): works for fields that did not decode. */
static int copy_fields(struct tl_sip_wbuf *wb, const struct tl_sip_msg *req, enum tl_sip_hdr_id id,
                       const struct tl_pl *totag)
{
    int err = 0;
    for (size_t i = 0; !err && i < req->hdrc; i++) {
        const struct tl_sip_hdr *h = &req->hdrv[i];
        if (h->id != id)
            continue;
        err = put_str(wb, tl_sip_hdr_name(id));
        if (!err)
            err = put_str(wb, ": ");
        if (!err)
            err = put_value(wb, &h->val);
        if (!err && totag && totag->l)
            err = tl_sip_wbuf_printf(wb, ";tag=%.*s", (int)totag->l, totag->p);
        if (!err)
            err = put_str(wb, "\r\n");
    }
    return err;
}

static int reply_body(struct tl_sip_wbuf *wb, const struct tl_sip_msg *req,
                      const struct tl_sip_reply *r, const char *reason)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    int err;

    err = tl_sip_wbuf_printf(wb, "SIP/2.0 %u %s\r\n", r->scode, reason);

    if (!err && (req->have & TL_SIP_HAVE_VIA)) {
        /* all values in order, one per field; the top one gets received (§18.2.1: when
         * sent-by differs from the source, or when rport asks) and rport=port (RFC 3581) */
        tl_sip_hdr_iter_init(&it, req, TL_SIP_HDR_VIA);
        for (size_t n = 0; !err && (err = tl_sip_hdr_iter_next(&it, &v)) == 0; n++) {
            if (n == 0) {
                struct tl_sip_via top = req->via;
                if (r->received.l && (top.rport || !tl_pl_caseeq(&top.host, &r->received)))
                    top.received = r->received;
                if (top.rport && r->received.l) {
                    top.has_rport_val = true;
                    top.rport_val = r->src_port;
                }
                err = tl_sip_via_print(wb, &top);
            } else {
                err = tl_sip_hdr_print(wb, "Via", &v);
            }
        }
        if (err == ENOENT)
            err = 0;
    } else if (!err) {
        /* a Via that did not decode goes back as it came: the 400 is for its sender */
        err = copy_fields(wb, req, TL_SIP_HDR_VIA, NULL);
    }

    /* From, To, Call-ID, CSeq as received — even malformed or missing ones (RFC 4475
     * §3.3.1 still wants a 400). Our To tag only on a To that decoded without one, and
     * not on a 100 (§8.2.6.2). */
    bool tag = (req->have & TL_SIP_HAVE_TO) && !req->to.tag.l && r->scode > 100 &&
               req->hdr_cnt[TL_SIP_HDR_TO] == 1;
    if (!err)
        err = copy_fields(wb, req, TL_SIP_HDR_FROM, NULL);
    if (!err)
        err = copy_fields(wb, req, TL_SIP_HDR_TO, tag ? &r->totag : NULL);
    if (!err)
        err = copy_fields(wb, req, TL_SIP_HDR_CALL_ID, NULL);
    if (!err)
        err = copy_fields(wb, req, TL_SIP_HDR_CSEQ, NULL);
    if (!err && r->hdrs)
        err = put_str(wb, r->hdrs);
    if (!err && r->ctype.l)
        err = tl_sip_hdr_print(wb, "Content-Type", &r->ctype);
    if (!err)
        err = tl_sip_wbuf_printf(wb, "Content-Length: %zu\r\n\r\n", r->body.l);
    if (!err && r->body.l)
        err = tl_sip_wbuf_pl(wb, &r->body);
    return err;
}

int tl_sip_reply_print(struct tl_sip_wbuf *wb, const struct tl_sip_msg *req,
                       const struct tl_sip_reply *r)
{
    if (!wb || !req || !r)
        return EINVAL;
    if (!req->req || !req->hdr_cnt[TL_SIP_HDR_VIA])
        return EBADMSG; /* nothing to route a response by (§18.2.2) */
    const char *reason = r->reason ? r->reason : tl_sip_reason_phrase(r->scode);
    struct tl_pl rp = tl_pl_str(reason);
    if (r->scode < 100 || r->scode > 699 || !line_text_ok(&rp) || (r->hdrs && !lines_ok(r->hdrs)))
        return EINVAL;
    if ((r->totag.l && !pl_is_token(&r->totag)) ||
        (r->received.l && !tl_sip__is_ip(&r->received)) || (r->body.l && !r->body.p))
        return EINVAL;
    size_t save = wb->len;
    int err = reply_body(wb, req, r, reason);
    if (err)
        wb->len = save;
    return err;
}
