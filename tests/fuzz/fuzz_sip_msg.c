/* libFuzzer: whole SIP messages (datagrams) through tl_sip_msg_decode, then every typed
 * decoder over the fields it kept, then a response printed from it and decoded again.
 * Invariants that must hold for any input are checked with __builtin_trap(). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static bool inside(const struct tl_pl *pl, const char *buf, size_t len)
{
    return pl->l == 0 || (pl->p >= buf && pl->p + pl->l <= buf + len);
}

static void fields(const struct tl_sip_msg *m)
{
    char tmp[256];
    size_t n;
    for (size_t i = 0; i < m->hdrc; i++) {
        const struct tl_sip_hdr *h = &m->hdrv[i];
        struct tl_pl rest = h->val, v;
        tl_sip_hdr_unfold(tmp, sizeof(tmp), &n, &h->val);
        for (int k = 0; k < TL_SIP_LIST_MAX && tl_sip_list_next(&rest, &v) == 0; k++) {
            union {
                struct tl_sip_via via;
                struct tl_sip_contact c;
                struct tl_sip_addr a;
                struct tl_sip_auth au;
                struct tl_sip_session_expires se;
                struct tl_sip_event ev;
                struct tl_sip_substate ss;
                struct tl_sip_reason r;
                struct tl_sip_warning w;
                struct tl_sip_cseq cs;
            } u;
            uint32_t d;
            switch (h->id) {
            case TL_SIP_HDR_VIA:
                tl_sip_via_decode(&u.via, &v);
                break;
            case TL_SIP_HDR_CONTACT:
                if (tl_sip_contact_decode(&u.c, &v) == 0 && !u.c.star)
                    tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &u.c.addr.uri.user);
                break;
            case TL_SIP_HDR_ROUTE:
            case TL_SIP_HDR_RECORD_ROUTE:
                tl_sip_route_decode(&u.a, &v);
                break;
            case TL_SIP_HDR_REFER_TO:
            case TL_SIP_HDR_P_ASSERTED_IDENTITY:
                tl_sip_addr_decode(&u.a, &v);
                break;
            case TL_SIP_HDR_SESSION_EXPIRES:
                tl_sip_session_expires_decode(&u.se, &v);
                break;
            case TL_SIP_HDR_MIN_SE:
                tl_sip_min_se_decode(&d, &v);
                break;
            case TL_SIP_HDR_EVENT:
                tl_sip_event_decode(&u.ev, &v);
                break;
            case TL_SIP_HDR_SUBSCRIPTION_STATE:
                tl_sip_substate_decode(&u.ss, &v);
                break;
            case TL_SIP_HDR_REASON:
                tl_sip_reason_decode(&u.r, &v);
                break;
            case TL_SIP_HDR_WARNING:
                if (tl_sip_warning_decode(&u.w, &v) == 0)
                    CHECK(u.w.code <= 999);
                break;
            default:
                break;
            }
        }
        if (h->id == TL_SIP_HDR_WWW_AUTHENTICATE || h->id == TL_SIP_HDR_PROXY_AUTHENTICATE ||
            h->id == TL_SIP_HDR_AUTHORIZATION || h->id == TL_SIP_HDR_PROXY_AUTHORIZATION) {
            struct tl_sip_auth a;
            if (tl_sip_auth_decode(&a, &h->val) == 0 && a.digest)
                tl_sip_qstr_unescape(tmp, sizeof(tmp), &n, &a.realm);
        }
        if (h->id == TL_SIP_HDR_EXPIRES || h->id == TL_SIP_HDR_RSEQ) {
            uint32_t d;
            tl_sip_u32_decode(&h->val, UINT32_MAX, &d);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tl_sip_msg m, r;
    static char out[TL_SIP_MSG_MAX * 2];
    /* a copy of exactly `size` bytes: ASan catches any read past the datagram */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    int rc = tl_sip_msg_decode(&m, buf, size);
    CHECK(rc == 0 || rc == EBADMSG || rc == E2BIG || rc == EPROTONOSUPPORT);
    CHECK(m.hdrc <= TL_SIP_HDR_MAX);
    CHECK(inside(&m.mb, buf, size) && inside(&m.body, buf, size));
    if (rc == 0) {
        CHECK(m.have == TL_SIP_HAVE_REPLY);
        CHECK(m.viac >= 1 && m.viac <= TL_SIP_VIA_MAX);
        CHECK(m.maxfwd >= -1 && m.maxfwd <= 255);
        CHECK(m.cseq.num <= 0x7fffffffu);
        CHECK(!m.has_clen || m.body.l == m.clen);
        CHECK(m.req || (m.scode >= 100 && m.scode <= 699));
        CHECK(!m.req || tl_pl_eq(&m.met, &m.cseq.met));
        CHECK(tl_sip_uri_cmp(&m.from.uri, &m.from.uri));
    }
    fields(&m);

    if (m.req) {
        struct tl_sip_wbuf wb;
        struct tl_sip_reply rp = {
            .scode = 400, .totag = TL_PL("fz1"), .received = TL_PL("192.0.2.1"), .src_port = 5060};
        tl_sip_wbuf_init(&wb, out, sizeof(out));
        int pr = tl_sip_reply_print(&wb, &m, &rp);
        CHECK(pr == 0 || pr == EBADMSG);
        CHECK(pr == 0 || wb.len == 0);
        if (pr == 0 && rc == 0) {
            /* a good request gets a good response (caps aside: one Via field per value) */
            int rr = tl_sip_msg_decode(&r, out, wb.len);
            CHECK(rr == 0 || rr == E2BIG);
            if (rr == 0) {
                CHECK(!r.req && r.scode == 400);
                CHECK(r.viac == m.viac);
                CHECK(tl_pl_eq(&r.callid, &m.callid));
                CHECK(r.cseq.num == m.cseq.num);
                CHECK(tl_pl_eq(&r.via.branch, &m.via.branch));
                CHECK(m.to.tag.l ? tl_pl_eq(&r.to.tag, &m.to.tag) : tl_pl_eq_str(&r.to.tag, "fz1"));
            }
        }
    }
    free(buf);
    return 0;
}
