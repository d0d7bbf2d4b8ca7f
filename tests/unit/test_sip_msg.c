/* RFC 4475 torture messages through the SIP parser, one table row per file.
 *
 * The corpus is in the repository, tests/data/rfc4475 (the Makefile runs the tests from the
 * repository root; $TRUNKLINE_RFC4475_DIR overrides it). Every file is first checked
 * against SHA256SUMS, so an editor or a git setting that touched a CRLF or a NUL shows up
 * as a checksum failure, not as a puzzling parser result.
 * INDEX.tsv is read too: every file it lists must have a row here, the row's valid/invalid
 * must agree with it, and the decode result must follow from it (deviations carry a note).
 * Each row also states what an endpoint built on this parser answers (the "status" the
 * index describes: 400, 416, 420, 505, …) and checks what makes that answer possible. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sip/sip.h"

#define DROP (-1) /* silently discarded (responses, unanswerable requests) */

static char corpus[4096];

static void load(const char *name, char **buf, size_t *len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", corpus, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0 && n <= 100000);
    rewind(f);
    *buf = malloc((size_t)n + 1);
    assert_non_null(*buf);
    assert_int_equal(fread(*buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
}

static void assert_pl(const struct tl_pl *pl, const char *s)
{
    if (!tl_pl_eq_str(pl, s))
        fail_msg("got \"%.*s\", want \"%s\"", (int)pl->l, pl->p ? pl->p : "", s);
}

/* ---- what an endpoint built on this parser answers (the index's "status") ---- */

static const char *const our_options[] = {"100rel", "timer", "replaces", "norefersub"};

static bool unknown_option(const struct tl_sip_msg *msg, enum tl_sip_hdr_id id)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    tl_sip_hdr_iter_init(&it, msg, id);
    while (tl_sip_hdr_iter_next(&it, &v) == 0) {
        bool known = false;
        for (size_t i = 0; i < sizeof(our_options) / sizeof(our_options[0]); i++)
            known |= tl_pl_caseeq_str(&v, our_options[i]);
        if (!known)
            return true;
    }
    return false;
}

static int answer(const struct tl_sip_msg *msg, int rc)
{
    if (!msg->req)
        return rc ? DROP : 0;
    if (rc && !tl_sip_msg_hdr(msg, TL_SIP_HDR_VIA))
        return DROP; /* nothing to send an answer back along */
    if (rc == EPROTONOSUPPORT)
        return 505;
    if (rc)
        return 400;
    if (msg->ruri.scheme == TL_SIP_SCHEME_OTHER)
        return 416;
    if (msg->mid == TL_SIP_METHOD_OTHER)
        return 501;
    if (unknown_option(msg, TL_SIP_HDR_REQUIRE) || unknown_option(msg, TL_SIP_HDR_PROXY_REQUIRE))
        return 420;
    if (msg->mid == TL_SIP_METHOD_REGISTER && msg->to.uri.scheme != TL_SIP_SCHEME_SIP &&
        msg->to.uri.scheme != TL_SIP_SCHEME_SIPS)
        return 400; /* registrar: the AOR must be sip/sips */
    if (msg->mid == TL_SIP_METHOD_INVITE && msg->body.l) {
        const struct tl_sip_hdr *ct = tl_sip_msg_hdr(msg, TL_SIP_HDR_CONTENT_TYPE);
        if (!ct || !tl_pl_caseeq_str(&ct->val, "application/sdp"))
            return 415;
    }
    const struct tl_sip_hdr *acc = tl_sip_msg_hdr(msg, TL_SIP_HDR_ACCEPT);
    if (msg->mid == TL_SIP_METHOD_INVITE && acc &&
        !tl_sip_msg_has_token(msg, TL_SIP_HDR_ACCEPT, "application/sdp"))
        return 406;
    return 0;
}

/* ---- per-file checks ---- */

static void c_wsinv(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    char tmp[256];
    size_t n;
    assert_int_equal(m->mid, TL_SIP_METHOD_INVITE);
    assert_pl(&m->ruri.host, "chair-dnrc.example.com");
    assert_int_equal(tl_sip_uri_param_get(&m->ruri, "unknownparam", NULL), 0);
    assert_pl(&m->to.tag, "1918181833n");
    assert_true(m->from.dname_quoted);
    assert_pl(&m->from.dname, "J Rosenberg \\\\\\\"");
    assert_int_equal(tl_sip_qstr_unescape(tmp, sizeof(tmp), &n, &m->from.dname), 0);
    assert_string_equal(tmp, "J Rosenberg \\\"");
    assert_pl(&m->from.tag, "98asjd8");
    assert_int_equal(m->maxfwd, 68);
    assert_int_equal(m->cseq.num, 9);
    assert_int_equal(m->cseq.mid, TL_SIP_METHOD_INVITE);
    assert_int_equal(m->viac, 3);
    assert_pl(&m->via.branch, "390skdjuw");
    assert_pl(&m->via.host, "192.0.2.2");
    assert_int_equal(m->via.tpid, TL_SIP_TP_UDP);
    assert_int_equal(m->clen, 150);
    assert_int_equal(m->body.l, 150);

    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_SUBJECT);
    assert_non_null(h);
    assert_int_equal(h->val.l, 0);
    h = tl_sip_msg_hdr_find(m, "unknownheaderwithunusualvalue");
    assert_non_null(h);
    assert_pl(&h->val, ";;,,;;,;");
    h = tl_sip_msg_hdr_find(m, "NewFangledHeader");
    assert_non_null(h);
    assert_int_equal(tl_sip_hdr_unfold(tmp, sizeof(tmp), &n, &h->val), 0);
    assert_string_equal(tmp, "newfangled value continued newfangled value");

    /* the 2nd and 3rd Via sit in one folded field */
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    struct tl_sip_via via;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_VIA);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tl_sip_hdr_iter_next(&it, &v), 0);
    assert_int_equal(tl_sip_hdr_iter_next(&it, &v), ENOENT);
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_VIA);
    tl_sip_hdr_iter_next(&it, &v);
    tl_sip_hdr_iter_next(&it, &v);
    assert_int_equal(tl_sip_via_decode(&via, &v), 0);
    assert_pl(&via.host, "spindle.example.com");
    assert_pl(&via.branch, "z9hG4bK9ikj8");
    assert_int_equal(via.tpid, TL_SIP_TP_TCP);
    tl_sip_hdr_iter_next(&it, &v);
    assert_int_equal(tl_sip_via_decode(&via, &v), 0);
    assert_pl(&via.host, "192.168.255.111");
    assert_pl(&via.branch, "z9hG4bK30239");

    struct tl_sip_contact c;
    h = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
    assert_int_equal(tl_sip_contact_decode(&c, &h->val), 0);
    assert_true(c.has_q);
    assert_int_equal(c.q, 330);
    assert_pl(&c.addr.dname, "Quoted string \\\"\\\"");
    struct tl_sip_param prm;
    assert_int_equal(tl_sip_param_get(&c.addr.params, "newparam", &prm), 0);
    assert_pl(&prm.val, "newvalue");
    assert_int_equal(tl_sip_param_get(&c.addr.params, "secondparam", &prm), 0);
    assert_false(prm.has_val);

    struct tl_sip_addr r;
    h = tl_sip_msg_hdr(m, TL_SIP_HDR_ROUTE);
    assert_int_equal(tl_sip_route_decode(&r, &h->val), 0);
    assert_int_equal(tl_sip_uri_param_get(&r.uri, "lr", &v), 0);
    assert_int_equal(v.l, 0);
    assert_int_equal(tl_sip_uri_param_get(&r.uri, "unknownwith", &v), 0);
    assert_pl(&v, "value");
}

static void c_intmeth(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    char tmp[64];
    size_t n;
    assert_int_equal(m->mid, TL_SIP_METHOD_OTHER);
    assert_pl(&m->met, "!interesting-Method0123456789_*+`.%indeed'~");
    assert_true(m->ruri.has_password);
    assert_pl(&m->ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
    assert_pl(&m->ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
    assert_int_equal(tl_sip_qstr_unescape(tmp, sizeof(tmp), &n, &m->to.dname), 0);
    assert_int_equal(n, 17);
    assert_memory_equal(tmp, "BEL:\x07 NUL:\0 DEL:\x7f", 17);
    assert_pl(&m->from.dname, "token1~` token2'+_ token3*%!.-");
    assert_pl(&m->from.tag, "_token~1'+`*%!-.");
    assert_pl(&m->callid, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_int_equal(m->maxfwd, 255);
    assert_non_null(tl_sip_msg_hdr_find(m, "extensionHeader-!.%*+_`'~"));
}

static void c_esc01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    char tmp[64];
    size_t n;
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &m->ruri.user), 0);
    assert_string_equal(tmp, "sips:user@example.com");
    assert_pl(&m->ruri.host, "example.net");
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &m->from.uri.user), 0);
    assert_string_equal(tmp, "I have spaces");
    struct tl_sip_uri user;
    struct tl_pl s = TL_PL("sip:user@example.com");
    assert_int_equal(tl_sip_uri_decode(&user, &s), 0);
    assert_true(tl_sip_uri_cmp(&m->to.uri, &user)); /* %75se%72 == user */

    struct tl_sip_contact c;
    struct tl_pl v;
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
    assert_int_equal(tl_sip_contact_decode(&c, &h->val), 0);
    assert_int_equal(tl_sip_uri_param_get(&c.addr.uri, "lr", &v), 0); /* %6C%72 */
    assert_int_equal(tl_sip_uri_param_get(&c.addr.uri, "name", &v), 0);
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &v), 0);
    assert_string_equal(tmp, "value%41"); /* once, not "valueA" */
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &c.addr.uri.user), 0);
    assert_string_equal(tmp, "caller");
}

static void c_escnull(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    char tmp[64];
    size_t n;
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &m->to.uri.user), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(tmp, "null-\0-null", 11);

    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    struct tl_sip_contact c[2];
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_CONTACT);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tl_sip_hdr_iter_next(&it, &v), 0);
        assert_int_equal(tl_sip_contact_decode(&c[i], &v), 0);
        assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &c[i].addr.uri.user), 0);
        assert_int_equal(n, (size_t)i + 1);
    }
    assert_int_equal(tl_sip_hdr_iter_next(&it, &v), ENOENT);
    assert_false(tl_sip_uri_cmp(&c[0].addr.uri, &c[1].addr.uri)); /* two registrations */
}

static size_t count_values(const struct tl_sip_msg *m, enum tl_sip_hdr_id id)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    size_t n = 0;
    tl_sip_hdr_iter_init(&it, m, id);
    while (tl_sip_hdr_iter_next(&it, &v) == 0)
        n++;
    return n;
}

static void c_esc02(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->mid, TL_SIP_METHOD_OTHER); /* not REGISTER */
    assert_pl(&m->met, "RE%47IST%45R");
    assert_pl(&m->to.dname, "%Z%45");
    assert_pl(&m->via.branch, "z9hG4bK209%fzsnel234");
    assert_int_equal(count_values(m, TL_SIP_HDR_CONTACT), 2);
    assert_non_null(tl_sip_msg_hdr_find(m, "C%6Fntact"));
}

static void c_lwsdisp(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_pl(&m->from.dname, "caller");
    assert_false(m->from.dname_quoted);
    assert_true(m->from.angle);
    assert_pl(&m->from.tag, "323");
}

static void c_longreq(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->viac, 34);
    assert_true(m->to.dname.l > 90);
    assert_true(m->to.uri.has_port);
    assert_int_equal(m->to.uri.port, 6000);
    assert_true(m->from.tag.l > 100);
    assert_true(m->callid.l > 100);
    struct tl_sip_hdr_iter it;
    struct tl_pl v, last = {0};
    struct tl_sip_via via;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_VIA);
    while (tl_sip_hdr_iter_next(&it, &v) == 0)
        last = v;
    assert_int_equal(tl_sip_via_decode(&via, &last), 0);
    assert_pl(&via.received, "192.0.2.5");
    assert_true(via.branch.l > 100);
    assert_int_equal(m->body.l, m->clen);
}

static void c_dblreq(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->mid, TL_SIP_METHOD_REGISTER);
    assert_int_equal(m->body.l, 0);
    assert_true(m->mb.l < len); /* the INVITE-looking rest is not part of it */

    /* as a stream: the REGISTER, a stray CRLF, then the INVITE is the next message */
    struct tl_sip_frame fr = {0};
    struct tl_sip_msg m2;
    size_t off;
    assert_int_equal(tl_sip_frame(&fr, buf, len), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_MSG);
    assert_int_equal(fr.len, m->mb.l);
    off = fr.len;
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(tl_sip_frame(&fr, buf + off, len - off), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_PONG);
    off += fr.len;
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(tl_sip_frame(&fr, buf + off, len - off), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_MSG);
    assert_true(off + fr.len < len); /* its own Content-Length is short by 5: not our bytes */
    assert_int_equal(tl_sip_msg_decode(&m2, buf + off, fr.len), 0);
    assert_int_equal(m2.mid, TL_SIP_METHOD_INVITE);
    assert_int_equal(m2.body.l, 150);
}

static void c_semiuri(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_pl(&m->ruri.user, "user;par=u%40example.net");
    assert_pl(&m->ruri.host, "example.com");
    assert_int_equal(m->ruri.params.l, 0);
    assert_int_equal(count_values(m, TL_SIP_HDR_ACCEPT), 6);
}

static void c_transports(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    static const enum tl_sip_transport want[] = {TL_SIP_TP_UDP, TL_SIP_TP_SCTP, TL_SIP_TP_TLS,
                                                 TL_SIP_TP_OTHER, TL_SIP_TP_TCP};
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    struct tl_sip_via via;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_VIA);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(tl_sip_hdr_iter_next(&it, &v), 0);
        assert_int_equal(tl_sip_via_decode(&via, &v), 0);
        assert_int_equal(via.tpid, want[i]);
    }
    assert_pl(&via.tp, "TCP");
}

static void c_mpart01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->body.l, 553);
    assert_non_null(memchr(m->body.p, '\0', m->body.l));
    assert_ptr_equal(m->body.p + m->body.l, buf + len);
    assert_true(m->via.rport);
    assert_false(m->via.has_rport_val);
    assert_int_equal(m->via.port, 5070);
}

static void c_unreason(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_false(m->req);
    assert_int_equal(m->scode, 200);
    assert_true(m->reason.l > 50);
}

static void c_noreason(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->scode, 100);
    assert_int_equal(m->reason.l, 0);
}

static void c_badbranch(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_pl(&m->via.branch, "z9hG4bK");
    assert_false(tl_sip_via_branch_rfc3261(&m->via));
}

static void c_unkscm(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->ruri.scheme, TL_SIP_SCHEME_OTHER);
    assert_pl(&m->ruri.scheme_pl, "nobodyKnowsThisScheme");
    assert_pl(&m->ruri.opaque, "totallyopaquecontent");
}

static void c_novelsc(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->ruri.scheme, TL_SIP_SCHEME_OTHER);
    assert_pl(&m->ruri.scheme_pl, "soap.beep");
}

static void c_unksm2(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_contact c;
    assert_pl(&m->to.uri.scheme_pl, "isbn");
    assert_pl(&m->from.uri.scheme_pl, "http");
    assert_int_equal(m->from.uri.scheme, TL_SIP_SCHEME_OTHER);
    assert_int_equal(tl_sip_contact_decode(&c, &tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT)->val), 0);
    assert_pl(&c.addr.uri.scheme_pl, "name");
}

static void c_bext01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_true(tl_sip_msg_has_token(m, TL_SIP_HDR_REQUIRE, "nothingSupportsThis"));
    assert_true(tl_sip_msg_has_token(m, TL_SIP_HDR_REQUIRE, "nothingsupportsthiseither"));
    assert_true(tl_sip_msg_has_token(m, TL_SIP_HDR_PROXY_REQUIRE, "noProxiesSupportThis"));
    assert_int_equal(count_values(m, TL_SIP_HDR_PROXY_REQUIRE), 2);
    assert_pl(&m->via.host, "fold-and-staple.example.com");
}

static void c_invut(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_pl(&tl_sip_msg_hdr(m, TL_SIP_HDR_CONTENT_TYPE)->val, "application/unknownformat");
    assert_int_equal(m->body.l, 40);
}

static void c_regaut01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_auth a;
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_AUTHORIZATION);
    assert_non_null(h);
    assert_int_equal(tl_sip_auth_decode(&a, &h->val), 0);
    assert_false(a.digest);
    assert_pl(&a.scheme, "NoOneKnowsThisScheme");
    assert_pl(&a.params, "opaque-data=here");
}

static void c_bcast(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    struct tl_sip_via via;
    assert_int_equal(m->viac, 2);
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_VIA);
    tl_sip_hdr_iter_next(&it, &v);
    tl_sip_hdr_iter_next(&it, &v);
    assert_int_equal(tl_sip_via_decode(&via, &v), 0);
    assert_pl(&via.host, "255.255.255.255"); /* visible: a proxy must not answer there */
    assert_int_equal(via.hostt, TL_SIP_HOST_IPV4);
}

static void c_zeromf(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->maxfwd, 0);
}

static void c_cparam01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_contact c;
    assert_int_equal(tl_sip_contact_decode(&c, &tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT)->val), 0);
    assert_false(c.addr.angle);
    assert_int_equal(c.addr.uri.params.l, 0);
    assert_int_equal(tl_sip_uri_param_get(&c.addr.uri, "unknownparam", NULL), ENOENT);
    assert_int_equal(tl_sip_param_get(&c.addr.params, "unknownparam", NULL), 0);
}

static void c_cparam02(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_contact c;
    assert_int_equal(tl_sip_contact_decode(&c, &tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT)->val), 0);
    assert_true(c.addr.angle);
    assert_int_equal(tl_sip_uri_param_get(&c.addr.uri, "unknownparam", NULL), 0);
    assert_int_equal(c.addr.params.l, 0);
}

static void c_regescrt(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_contact c;
    struct tl_pl v;
    char tmp[64];
    size_t n;
    assert_int_equal(tl_sip_contact_decode(&c, &tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT)->val), 0);
    assert_int_equal(tl_sip_uri_header_get(&c.addr.uri, "route", &v), 0);
    assert_int_equal(tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &v), 0);
    assert_string_equal(tmp, "<sip:sip.example.com>");
    assert_null(tl_sip_msg_hdr(m, TL_SIP_HDR_ROUTE)); /* never applied as a header */
}

static void c_inv2543(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_false(m->has_clen);
    assert_ptr_equal(m->body.p + m->body.l, buf + len);
    assert_memory_equal(m->body.p, "v=0", 3);
    assert_int_equal(m->maxfwd, -1);
    assert_int_equal(m->via.branch.l, 0);
    assert_int_equal(m->from.tag.l, 0);
    struct tl_sip_addr rr;
    struct tl_pl v;
    assert_int_equal(tl_sip_route_decode(&rr, &tl_sip_msg_hdr(m, TL_SIP_HDR_RECORD_ROUTE)->val), 0);
    assert_int_equal(tl_sip_uri_param_get(&rr.uri, "maddr", &v), 0);
    assert_pl(&v, "ss1.example.com");
    /* unbracketed: ";user=phone" belongs to the To field, not to the URI (§20.10) */
    struct tl_sip_param prm;
    assert_int_equal(tl_sip_uri_param_get(&m->to.uri, "user", &v), ENOENT);
    assert_int_equal(tl_sip_param_get(&m->to.params, "user", &prm), 0);
    assert_pl(&prm.val, "phone");
    assert_int_equal(tl_sip_uri_param_get(&m->from.uri, "user", &v), 0);
}

static void c_baddate(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_pl(&tl_sip_msg_hdr(m, TL_SIP_HDR_DATE)->val, "Fri, 01 Jan 2010 16:00:00 EST");
}

static void c_sdp01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_true(tl_sip_msg_has_token(m, TL_SIP_HDR_ACCEPT, "text/nobodyKnowsThis"));
}

static void c_scalar02(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_contact c;
    uint32_t v;
    assert_int_equal(tl_sip_contact_decode(&c, &tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT)->val), 0);
    assert_true(c.has_expires);
    assert_int_equal(c.expires, 3600); /* overlarge expires reads as the default */
    assert_int_equal(tl_sip_u32_decode(&tl_sip_msg_hdr(m, TL_SIP_HDR_EXPIRES)->val, UINT32_MAX, &v),
                     ERANGE);
    assert_int_equal(m->maxfwd, -1); /* 300 rejected, never truncated to a byte */
}

static void c_scalarlg(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    struct tl_sip_warning w;
    uint32_t v;
    assert_false(m->req);
    assert_int_equal(m->scode, 503);
    assert_int_equal(tl_sip_warning_decode(&w, &tl_sip_msg_hdr(m, TL_SIP_HDR_WARNING)->val),
                     EBADMSG);
    assert_int_equal(
        tl_sip_u32_decode(&tl_sip_msg_hdr(m, TL_SIP_HDR_RETRY_AFTER)->val, UINT32_MAX, &v), ERANGE);
}

static void c_mismatch01(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->mid, TL_SIP_METHOD_OPTIONS);
    assert_int_equal(m->cseq.mid, TL_SIP_METHOD_INVITE);
}

static void c_mismatch02(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_int_equal(m->mid, TL_SIP_METHOD_OTHER); /* a 501 is possible too */
    assert_int_equal(m->cseq.mid, TL_SIP_METHOD_INVITE);
}

static void c_escruri(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_string_equal(m->err, "headers in Request-URI");
    assert_null(tl_sip_msg_hdr(m, TL_SIP_HDR_ROUTE));
}

static void c_bigcode(const struct tl_sip_msg *m, const char *buf, size_t len)
{
    assert_false(m->req);
}

/* ---- the table ---- */

struct row {
    const char *file;
    bool valid;                 /* INDEX.tsv, column 3 */
    int rc;                     /* tl_sip_msg_decode() */
    enum tl_sip_hdr_id err_hdr; /* the field blamed when rc != 0 (OTHER: the start line) */
    int status;                 /* what the endpoint answers: 0 = processes it, DROP */
    int frame_rc;               /* tl_sip_frame() over the whole file as a stream */
    bool frame_all;             /* ... and the message is the whole file */
    void (*check)(const struct tl_sip_msg *, const char *, size_t);
    const char *note; /* why rc does not follow from `valid` */
};

#define OK   0
#define H(x) TL_SIP_HDR_##x
static const struct row rows[] = {
    {"wsinv.dat", true, OK, H(OTHER), 0, 0, true, c_wsinv, NULL},
    {"intmeth.dat", true, OK, H(OTHER), 501, 0, true, c_intmeth, NULL},
    {"esc01.dat", true, OK, H(OTHER), 0, 0, true, c_esc01, NULL},
    {"escnull.dat", true, OK, H(OTHER), 0, 0, true, c_escnull, NULL},
    {"esc02.dat", true, OK, H(OTHER), 501, 0, true, c_esc02, NULL},
    {"lwsdisp.dat", true, OK, H(OTHER), 0, 0, true, c_lwsdisp, NULL},
    {"longreq.dat", true, OK, H(OTHER), 0, 0, true, c_longreq, NULL},
    {"dblreq.dat", true, OK, H(OTHER), 0, 0, false, c_dblreq, NULL},
    {"semiuri.dat", true, OK, H(OTHER), 0, 0, true, c_semiuri, NULL},
    {"transports.dat", true, OK, H(OTHER), 0, 0, true, c_transports, NULL},
    {"mpart01.dat", true, OK, H(OTHER), 0, 0, true, c_mpart01, NULL},
    {"unreason.dat", true, OK, H(OTHER), 0, 0, true, c_unreason, NULL},
    {"noreason.dat", true, OK, H(OTHER), 0, 0, true, c_noreason, NULL},
    {"badinv01.dat", false, EBADMSG, H(VIA), 400, 0, true, NULL, NULL},
    {"clerr.dat", false, EBADMSG, H(CONTENT_LENGTH), 400, ENODATA, false, NULL, NULL},
    {"ncl.dat", false, EBADMSG, H(CONTENT_LENGTH), 400, EBADMSG, false, NULL, NULL},
    {"scalar02.dat", false, EBADMSG, H(CSEQ), 400, 0, true, c_scalar02, NULL},
    {"scalarlg.dat", false, EBADMSG, H(CSEQ), DROP, 0, true, c_scalarlg, NULL},
    {"quotbal.dat", false, EBADMSG, H(TO), 400, 0, true, NULL, NULL},
    {"ltgtruri.dat", false, EBADMSG, H(OTHER), 400, 0, true, NULL, NULL},
    {"lwsruri.dat", false, EBADMSG, H(OTHER), 400, 0, true, NULL, NULL},
    {"lwsstart.dat", false, EBADMSG, H(OTHER), 400, 0, true, NULL, NULL},
    {"trws.dat", false, EBADMSG, H(OTHER), 400, 0, true, NULL, NULL},
    {"escruri.dat", false, EBADMSG, H(OTHER), 400, 0, true, c_escruri, NULL},
    {"baddate.dat", false, OK, H(OTHER), 0, 0, true, c_baddate,
     "Date is not decoded by the parser; only GMT matters to a user of Date"},
    {"regbadct.dat", false, EBADMSG, H(CONTACT), 400, 0, true, NULL, NULL},
    {"badaspec.dat", false, EBADMSG, H(TO), 400, 0, true, NULL, NULL},
    {"baddn.dat", false, EBADMSG, H(FROM), 400, 0, true, NULL, NULL},
    {"badvers.dat", false, EPROTONOSUPPORT, H(OTHER), 505, 0, true, NULL, NULL},
    {"mismatch01.dat", false, EBADMSG, H(CSEQ), 400, 0, true, c_mismatch01, NULL},
    {"mismatch02.dat", false, EBADMSG, H(CSEQ), 400, 0, true, c_mismatch02, NULL},
    {"bigcode.dat", false, EBADMSG, H(OTHER), DROP, 0, true, c_bigcode, NULL},
    {"badbranch.dat", true, OK, H(OTHER), 0, 0, true, c_badbranch, NULL},
    {"insuf.dat", false, EBADMSG, H(FROM), 400, 0, true, NULL, NULL},
    {"unkscm.dat", true, OK, H(OTHER), 416, 0, true, c_unkscm, NULL},
    {"novelsc.dat", true, OK, H(OTHER), 416, 0, true, c_novelsc, NULL},
    {"unksm2.dat", true, OK, H(OTHER), 400, 0, true, c_unksm2, NULL},
    {"bext01.dat", true, OK, H(OTHER), 420, 0, true, c_bext01, NULL},
    {"invut.dat", true, OK, H(OTHER), 415, 0, true, c_invut, NULL},
    {"regaut01.dat", true, OK, H(OTHER), 0, 0, true, c_regaut01, NULL},
    {"multi01.dat", false, EBADMSG, H(FROM), 400, 0, true, NULL, NULL},
    {"mcl01.dat", false, EBADMSG, H(CONTENT_LENGTH), 400, EBADMSG, false, NULL, NULL},
    {"bcast.dat", true, OK, H(OTHER), 0, 0, true, c_bcast, NULL},
    {"zeromf.dat", true, OK, H(OTHER), 0, 0, true, c_zeromf, NULL},
    {"cparam01.dat", true, OK, H(OTHER), 0, 0, true, c_cparam01, NULL},
    {"cparam02.dat", true, OK, H(OTHER), 0, 0, true, c_cparam02, NULL},
    {"regescrt.dat", true, OK, H(OTHER), 0, 0, true, c_regescrt, NULL},
    {"sdp01.dat", true, OK, H(OTHER), 406, 0, true, c_sdp01, NULL},
    {"inv2543.dat", true, OK, H(OTHER), 0, EBADMSG, false, c_inv2543, NULL},
    {"test.dat", false, EBADMSG, H(OTHER), DROP, EBADMSG, false, NULL, NULL},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static const struct row *row_find(const char *file)
{
    for (size_t i = 0; i < NROWS; i++) {
        if (strcmp(rows[i].file, file) == 0)
            return &rows[i];
    }
    return NULL;
}

/* INDEX.tsv: every listed file has a row, with the same valid/invalid; and only those. */
/* Every file named in SHA256SUMS has that hash, and every .dat is named there: the corpus
 * is byte-exact (CRLF ends, raw NUL and non-UTF-8 bytes in intmeth, mpart01, unreason). */
static void test_checksums(void **state)
{
    char path[4200], line[512];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/SHA256SUMS", corpus);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char want[65], name[256];
        if (sscanf(line, "%64[0-9a-f]  %255s", want, name) != 2)
            fail_msg("SHA256SUMS: bad line %s", line);
        char *buf;
        size_t len;
        load(name, &buf, &len);
        unsigned char h[crypto_hash_sha256_BYTES];
        char hex[2 * sizeof(h) + 1];
        crypto_hash_sha256(h, (const unsigned char *)buf, len);
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        free(buf);
        if (strcmp(hex, want) != 0)
            fail_msg("%s: sha256 %s, SHA256SUMS says %s", name, hex, want);
        n++;
    }
    fclose(f);
    assert_int_equal(n, NROWS);
}

static void test_index(void **state)
{
    char path[4200], line[4096];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/INDEX.tsv", corpus);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f)); /* header */
    while (fgets(line, sizeof(line), f)) {
        char *file = strtok(line, "\t"), *section = strtok(NULL, "\t"),
             *validity = strtok(NULL, "\t");
        if (!file || !*file || *file == '\n')
            continue;
        assert_non_null(section);
        assert_non_null(validity);
        const struct row *r = row_find(file);
        if (!r)
            fail_msg("%s is in INDEX.tsv but not in the table", file);
        if (r->valid != (strcmp(validity, "valid") == 0))
            fail_msg("%s: INDEX.tsv says %s", file, validity);
        n++;
    }
    fclose(f);
    assert_int_equal(n, NROWS);

    /* and every .dat in the directory is in the index */
    DIR *d = opendir(corpus);
    struct dirent *de;
    size_t dats = 0;
    assert_non_null(d);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".dat") == 0) {
            if (!row_find(de->d_name))
                fail_msg("%s has no row", de->d_name);
            dats++;
        }
    }
    closedir(d);
    assert_int_equal(dats, NROWS);
}

/* A reply to every request that can have one, decoded again: the printer round trip. */
static void check_reply(const struct tl_sip_msg *req, int status)
{
    char out[16384];
    struct tl_sip_wbuf wb;
    struct tl_sip_msg rsp;
    struct tl_sip_reply r = {
        .scode = (uint16_t)(status > 0 ? status : 200),
        .totag = TL_PL("srv1"),
        .received = TL_PL("192.0.2.99"),
        .src_port = 5099,
        .hdrs = status == 420 ? "Unsupported: nothingSupportsThis\r\n" : NULL,
    };
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_reply_print(&wb, req, &r), 0);
    /* too small a buffer: ENOSPC and nothing written */
    for (size_t cap = 0; cap < wb.len; cap += 97) {
        struct tl_sip_wbuf small;
        tl_sip_wbuf_init(&small, out + sizeof(out) / 2, cap);
        assert_int_equal(tl_sip_reply_print(&small, req, &r), ENOSPC);
        assert_int_equal(small.len, 0);
    }
    int rc = tl_sip_msg_decode(&rsp, out, wb.len);
    if ((req->have & TL_SIP_HAVE_REPLY) != TL_SIP_HAVE_REPLY) {
        /* what was broken goes back as it came; the status line is ours */
        assert_false(rsp.req);
        assert_int_equal(rsp.scode, r.scode);
        return;
    }
    assert_int_equal(rc, 0);
    assert_false(rsp.req);
    assert_int_equal(rsp.scode, r.scode);
    assert_true(tl_pl_eq(&rsp.callid, &req->callid));
    assert_int_equal(rsp.cseq.num, req->cseq.num);
    assert_true(tl_pl_eq(&rsp.cseq.met, &req->cseq.met));
    assert_int_equal(rsp.viac, req->viac);
    assert_true(tl_pl_eq(&rsp.via.branch, &req->via.branch));
    assert_true(tl_pl_eq(&rsp.via.host, &req->via.host));
    assert_pl(&rsp.via.received, "192.0.2.99");
    assert_true(tl_sip_uri_cmp(&rsp.from.uri, &req->from.uri));
    assert_true(tl_pl_eq(&rsp.from.tag, &req->from.tag));
    if (req->to.tag.l)
        assert_true(tl_pl_eq(&rsp.to.tag, &req->to.tag));
    else
        assert_pl(&rsp.to.tag, "srv1");
    if (req->via.rport) {
        assert_true(rsp.via.has_rport_val);
        assert_int_equal(rsp.via.rport_val, 5099);
    }
}

/* The framer over the file fed in chunks of `step` bytes must agree with one call. */
static void frame_chunks(const char *buf, size_t len, size_t step, int want_rc, size_t want_len)
{
    struct tl_sip_frame fr = {0};
    int rc = ENODATA;
    for (size_t have = step < len ? step : len;; have = have + step < len ? have + step : len) {
        rc = tl_sip_frame(&fr, buf, have);
        if (rc != ENODATA || have == len)
            break;
    }
    assert_int_equal(rc, want_rc);
    if (rc == 0)
        assert_int_equal(fr.len, want_len);
}

static void run_row(const struct row *r)
{
    char *buf;
    size_t len;
    struct tl_sip_msg *msg = malloc(sizeof(*msg));
    assert_non_null(msg);
    load(r->file, &buf, &len);

    int rc = tl_sip_msg_decode(msg, buf, len);
    if (rc != r->rc)
        fail_msg("%s: decode %d (%s), want %d", r->file, rc, msg->err ? msg->err : "-", r->rc);
    if (rc && msg->err_hdr != r->err_hdr)
        fail_msg("%s: blamed %d (%s), want %d", r->file, msg->err_hdr, msg->err, r->err_hdr);
    /* the index's verdict, or a note saying why not */
    if (r->valid != (rc == 0) && !r->note)
        fail_msg("%s: valid=%d but rc=%d", r->file, r->valid, rc);
    int st = answer(msg, rc);
    if (st != r->status)
        fail_msg("%s: endpoint answers %d, want %d", r->file, st, r->status);
    if (r->check)
        r->check(msg, buf, len);
    if (st > 0)
        check_reply(msg, st);

    struct tl_sip_frame fr = {0};
    int frc = tl_sip_frame(&fr, buf, len);
    if (frc != r->frame_rc)
        fail_msg("%s: frame %d, want %d", r->file, frc, r->frame_rc);
    if (frc == 0 && r->frame_all)
        assert_int_equal(fr.len, len);
    for (size_t step = 1; step <= 97; step += 16)
        frame_chunks(buf, len, step, frc, fr.len);

    /* every prefix of a datagram decodes or fails cleanly (ASan watches) */
    for (size_t cut = 0; cut < len; cut += 13)
        tl_sip_msg_decode(msg, buf, cut);

    free(buf);
    free(msg);
}

static void test_rows(void **state)
{
    for (size_t i = 0; i < NROWS; i++)
        run_row(&rows[i]);
}

static int setup(void **state)
{
    const char *env = getenv("TRUNKLINE_RFC4475_DIR");
    snprintf(corpus, sizeof(corpus), "%s", env && *env ? env : "tests/data/rfc4475");
    DIR *d = opendir(corpus);
    if (!d) {
        fprintf(stderr,
                "RFC 4475 corpus not found at %s (run the tests from the repository "
                "root, or set TRUNKLINE_RFC4475_DIR)\n",
                corpus);
        return -1;
    }
    closedir(d);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksums),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_rows),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
