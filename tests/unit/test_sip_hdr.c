/* SIP header decoders, stream framing, caps and printers (decode -> print -> decode). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

static void assert_pl(const struct tl_pl *pl, const char *s)
{
    if (!tl_pl_eq_str(pl, s))
        fail_msg("got \"%.*s\", want \"%s\"", (int)pl->l, pl->p ? pl->p : "", s);
}

#define PL(s) (&(struct tl_pl){(s), strlen(s)})

/* ---- names and lists ---- */

static void test_hdr_names(void **state)
{
    static const struct {
        const char *name;
        enum tl_sip_hdr_id id;
    } c[] = {
        {"i", TL_SIP_HDR_CALL_ID},
        {"M", TL_SIP_HDR_CONTACT},
        {"e", TL_SIP_HDR_CONTENT_ENCODING},
        {"L", TL_SIP_HDR_CONTENT_LENGTH},
        {"f", TL_SIP_HDR_FROM},
        {"t", TL_SIP_HDR_TO},
        {"v", TL_SIP_HDR_VIA},
        {"k", TL_SIP_HDR_SUPPORTED},
        {"s", TL_SIP_HDR_SUBJECT},
        {"c", TL_SIP_HDR_CONTENT_TYPE},
        {"o", TL_SIP_HDR_EVENT},
        {"r", TL_SIP_HDR_REFER_TO},
        {"u", TL_SIP_HDR_ALLOW_EVENTS},
        {"x", TL_SIP_HDR_SESSION_EXPIRES},
        {"b", TL_SIP_HDR_REFERRED_BY},
        {"call-id", TL_SIP_HDR_CALL_ID},
        {"CSEQ", TL_SIP_HDR_CSEQ},
        {"www-authenticate", TL_SIP_HDR_WWW_AUTHENTICATE},
        {"Via ", TL_SIP_HDR_OTHER},
        {"q", TL_SIP_HDR_OTHER},
        {"C%6Fntact", TL_SIP_HDR_OTHER},
        {"", TL_SIP_HDR_OTHER},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (tl_sip_hdr_id(PL(c[i].name)) != c[i].id)
            fail_msg("%s", c[i].name);
    }
    for (int id = 1; id < TL_SIP_HDR__N; id++) {
        const char *n = tl_sip_hdr_name((enum tl_sip_hdr_id)id);
        assert_non_null(n);
        assert_int_equal(tl_sip_hdr_id(PL(n)), id);
    }
    assert_null(tl_sip_hdr_name(TL_SIP_HDR_OTHER));
    assert_true(tl_sip_hdr_is_list(TL_SIP_HDR_VIA));
    assert_false(tl_sip_hdr_is_list(TL_SIP_HDR_WWW_AUTHENTICATE));
    assert_int_equal(tl_sip_method_id(PL("INVITE")), TL_SIP_METHOD_INVITE);
    assert_int_equal(tl_sip_method_id(PL("invite")), TL_SIP_METHOD_OTHER);
    assert_string_equal(tl_sip_method_name(TL_SIP_METHOD_PRACK), "PRACK");
}

static void test_list(void **state)
{
    struct tl_pl rest = TL_PL("a, \"b,\\\"c\" <sip:x;y=1,2>;p=\"q,r\" ,, \r\n d"), it;
    assert_int_equal(tl_sip_list_next(&rest, &it), 0);
    assert_pl(&it, "a");
    assert_int_equal(tl_sip_list_next(&rest, &it), 0);
    assert_pl(&it, "\"b,\\\"c\" <sip:x;y=1,2>;p=\"q,r\"");
    assert_int_equal(tl_sip_list_next(&rest, &it), 0);
    assert_pl(&it, "d");
    assert_int_equal(tl_sip_list_next(&rest, &it), ENOENT);

    rest = TL_PL("a, \"open");
    assert_int_equal(tl_sip_list_next(&rest, &it), 0);
    assert_int_equal(tl_sip_list_next(&rest, &it), EBADMSG);
    rest = TL_PL("<sip:a@b, c");
    assert_int_equal(tl_sip_list_next(&rest, &it), EBADMSG);
    rest = TL_PL("\"ends in backslash\\");
    assert_int_equal(tl_sip_list_next(&rest, &it), EBADMSG);

    assert_true(tl_sip_list_has(PL("auth, auth-int"), "AUTH-INT"));
    assert_false(tl_sip_list_has(PL("auth-int"), "auth"));
}

static void test_params(void **state)
{
    struct tl_pl rest = TL_PL(" ;  a = b ;\r\n c;d=\"x;y\";e=[::1]");
    struct tl_sip_param p;
    assert_int_equal(tl_sip_param_next(&rest, &p), 0);
    assert_pl(&p.name, "a");
    assert_pl(&p.val, "b");
    assert_int_equal(tl_sip_param_next(&rest, &p), 0);
    assert_pl(&p.name, "c");
    assert_false(p.has_val);
    assert_int_equal(tl_sip_param_next(&rest, &p), 0);
    assert_true(p.quoted);
    assert_pl(&p.val, "x;y");
    assert_int_equal(tl_sip_param_next(&rest, &p), 0);
    assert_pl(&p.val, "[::1]");
    assert_int_equal(tl_sip_param_next(&rest, &p), ENOENT);

    static const char *const bad[] = {";", ";;", "; =x", ";a=", ";a=\"x", "x", ";a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tl_pl r = tl_pl_str(bad[i]);
        int err = tl_sip_param_next(&r, &p);
        if (err == 0)
            err = tl_sip_param_next(&r, &p);
        if (err != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_unfold_qstr(void **state)
{
    char b[64];
    size_t n;
    assert_int_equal(tl_sip_hdr_unfold(b, sizeof(b), &n, PL("a \r\n  b\r\n\tc")), 0);
    assert_string_equal(b, "a b c");
    assert_int_equal(tl_sip_hdr_unfold(b, 3, &n, PL("abcd")), ENOSPC);
    assert_int_equal(tl_sip_qstr_unescape(b, sizeof(b), &n, PL("a\\\"b\\\\")), 0);
    assert_string_equal(b, "a\"b\\");
}

static void test_u32(void **state)
{
    uint32_t v;
    assert_int_equal(tl_sip_u32_decode(PL(" 0150 "), 65535, &v), 0);
    assert_int_equal(v, 150);
    assert_int_equal(tl_sip_u32_decode(PL("-999"), 65535, &v), EBADMSG);
    assert_int_equal(tl_sip_u32_decode(PL("five"), 65535, &v), EBADMSG);
    assert_int_equal(tl_sip_u32_decode(PL("+5"), 65535, &v), EBADMSG);
    assert_int_equal(tl_sip_u32_decode(PL(""), 65535, &v), EBADMSG);
    assert_int_equal(tl_sip_u32_decode(PL("1 2"), 65535, &v), EBADMSG);
    assert_int_equal(tl_sip_u32_decode(PL("65536"), 65535, &v), ERANGE);
    assert_int_equal(tl_sip_u32_decode(PL("4294967295"), UINT32_MAX, &v), 0);
    assert_int_equal(v, UINT32_MAX);
    assert_int_equal(tl_sip_u32_decode(PL("4294967296"), UINT32_MAX, &v), ERANGE);
    assert_int_equal(tl_sip_u32_decode(PL("99999999999999999999999999"), UINT32_MAX, &v), ERANGE);
}

/* ---- Via ---- */

/* decode -> print -> decode; the two decodes must agree */
static void via_roundtrip(const struct tl_sip_via *a)
{
    char out[512];
    struct tl_sip_wbuf wb;
    struct tl_sip_via b;
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_via_print(&wb, a), 0);
    assert_true(wb.len > 7);
    assert_memory_equal(out, "Via: ", 5);
    assert_memory_equal(out + wb.len - 2, "\r\n", 2);
    struct tl_pl v = {out + 5, wb.len - 7};
    assert_int_equal(tl_sip_via_decode(&b, &v), 0);
    assert_true(tl_pl_eq(&a->tp, &b.tp) || !a->tp.l);
    assert_int_equal(a->tpid, b.tpid);
    assert_true(tl_pl_eq(&a->host, &b.host));
    assert_int_equal(a->has_port, b.has_port);
    assert_int_equal(a->port, b.port);
    assert_true(tl_pl_eq(&a->branch, &b.branch));
    assert_true(tl_pl_eq(&a->received, &b.received));
    assert_true(tl_pl_eq(&a->maddr, &b.maddr));
    assert_int_equal(a->rport, b.rport);
    assert_int_equal(a->has_rport_val, b.has_rport_val);
    assert_int_equal(a->rport_val, b.rport_val);
    assert_int_equal(a->has_ttl, b.has_ttl);
    assert_int_equal(a->ttl, b.ttl);
    /* printing again gives the same bytes */
    char out2[512];
    struct tl_sip_wbuf wb2;
    tl_sip_wbuf_init(&wb2, out2, sizeof(out2));
    assert_int_equal(tl_sip_via_print(&wb2, &b), 0);
    assert_int_equal(wb2.len, wb.len);
    assert_memory_equal(out, out2, wb.len);
    /* every smaller buffer: ENOSPC, nothing written */
    for (size_t cap = 0; cap < wb.len; cap++) {
        tl_sip_wbuf_init(&wb2, out2, cap);
        assert_int_equal(tl_sip_via_print(&wb2, &b), ENOSPC);
        assert_int_equal(wb2.len, 0);
    }
}

static void test_via(void **state)
{
    struct tl_sip_via v;
    assert_int_equal(tl_sip_via_decode(&v, PL("SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;"
                                              "rport;received=192.0.2.1")),
                     0);
    assert_pl(&v.proto, "SIP");
    assert_pl(&v.ver, "2.0");
    assert_int_equal(v.tpid, TL_SIP_TP_UDP);
    assert_pl(&v.host, "[2001:db8::1]");
    assert_int_equal(v.hostt, TL_SIP_HOST_IPV6);
    assert_int_equal(v.port, 5060);
    assert_true(v.rport);
    assert_false(v.has_rport_val);
    assert_pl(&v.received, "192.0.2.1");
    assert_true(tl_sip_via_branch_rfc3261(&v));
    via_roundtrip(&v);

    assert_int_equal(tl_sip_via_decode(&v, PL("SIP / 2.0 / tls h.example.com : 5061 ; rport = "
                                              "5070;received=2001:db8::2;maddr=224.0.0.1;ttl=16;"
                                              "x=\"q r\";flag")),
                     0);
    assert_int_equal(v.tpid, TL_SIP_TP_TLS);
    assert_int_equal(v.port, 5061);
    assert_true(v.has_rport_val);
    assert_int_equal(v.rport_val, 5070);
    assert_pl(&v.received, "2001:db8::2");
    assert_pl(&v.maddr, "224.0.0.1");
    assert_true(v.has_ttl);
    assert_int_equal(v.ttl, 16);
    assert_false(tl_sip_via_branch_rfc3261(&v));
    via_roundtrip(&v);

    /* what a UAC fills in */
    struct tl_sip_via u = {.tpid = TL_SIP_TP_TCP,
                           .host = TL_PL("192.0.2.1"),
                           .has_port = true,
                           .port = 5060,
                           .branch = TL_PL("z9hG4bKabc"),
                           .rport = true};
    char out[256];
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_via_print(&wb, &u), 0);
    assert_int_equal(wb.len, strlen("Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n"));
    assert_memory_equal(out, "Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKabc;rport\r\n", wb.len);
    via_roundtrip(&u);

    /* nothing from outside gets a CRLF in */
    struct tl_sip_via inj = u;
    inj.host = TL_PL("h\r\nX: y");
    assert_int_equal(tl_sip_via_print(&wb, &inj), EINVAL);
    inj = u;
    inj.branch = TL_PL("z9hG4bK\r\nX: y");
    assert_int_equal(tl_sip_via_print(&wb, &inj), EINVAL);
    inj = u;
    inj.tpid = TL_SIP_TP_OTHER;
    assert_int_equal(tl_sip_via_print(&wb, &inj), EINVAL);

    static const char *const bad[] = {
        "SIP/2.0/UDP",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDPh",
        "SIP//UDP h",
        "SIP/2.0/UDP h;branch=a;branch=b",
        "SIP/2.0/UDP h;branch=\"a\"",
        "SIP/2.0/UDP h;received=host.example.com",
        "SIP/2.0/UDP h;rport=70000",
        "SIP/2.0/UDP h;rport;rport",
        "SIP/2.0/UDP h;ttl=256",
        "SIP/2.0/UDP h;maddr=-x",
        "SIP/2.0/UDP h:",
        "SIP/2.0/UDP h:65536",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h, SIP/2.0/UDP i",
        "SIP/2.0/UDP h junk",
        "SIP/2.0/UDP [::1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tl_sip_via_decode(&v, PL(bad[i])) != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

/* ---- CSeq, Call-ID, addresses, Contact ---- */

static void test_cseq_callid(void **state)
{
    struct tl_sip_cseq c;
    struct tl_pl id;
    assert_int_equal(tl_sip_cseq_decode(&c, PL("0009\r\n  INVITE")), 0);
    assert_int_equal(c.num, 9);
    assert_int_equal(c.mid, TL_SIP_METHOD_INVITE);
    assert_int_equal(tl_sip_cseq_decode(&c, PL("2147483647 ACK")), 0);
    assert_int_equal(c.num, 2147483647u);
    assert_int_equal(tl_sip_cseq_decode(&c, PL("1 NEWMETHOD")), 0);
    assert_int_equal(c.mid, TL_SIP_METHOD_OTHER);
    static const char *const bad[] = {"2147483648 ACK",
                                      "36893488147419103232 REGISTER",
                                      "1INVITE",
                                      "1 INVITE x",
                                      "-1 INVITE",
                                      "INVITE",
                                      "1",
                                      "1 INV\"ITE"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tl_sip_cseq_decode(&c, PL(bad[i])) != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(tl_sip_callid_decode(&id, PL(" a84b4c76e66710@pc33.atlanta.com ")), 0);
    assert_pl(&id, "a84b4c76e66710@pc33.atlanta.com");
    assert_int_equal(tl_sip_callid_decode(&id, PL("a, b")), EBADMSG);
    assert_int_equal(tl_sip_callid_decode(&id, PL("a@")), EBADMSG);
    assert_int_equal(tl_sip_callid_decode(&id, PL("a@b@c")), EBADMSG);
    assert_int_equal(tl_sip_callid_decode(&id, PL("")), EBADMSG);
}

static void test_addr(void **state)
{
    struct tl_sip_addr a;
    assert_int_equal(tl_sip_addr_decode(&a, PL("\"A \\\"B\\\"\" <sip:a@b;lr>;tag=x1 ;foo")), 0);
    assert_true(a.dname_quoted);
    assert_pl(&a.dname, "A \\\"B\\\"");
    assert_true(a.angle);
    assert_pl(&a.auri, "sip:a@b;lr");
    assert_pl(&a.uri.params, ";lr");
    assert_pl(&a.tag, "x1");
    assert_pl(&a.params, ";tag=x1 ;foo");

    assert_int_equal(tl_sip_addr_decode(&a, PL("Bob  Smith <tel:+1-555-0100>")), 0);
    assert_pl(&a.dname, "Bob  Smith");
    assert_int_equal(a.uri.scheme, TL_SIP_SCHEME_TEL);

    assert_int_equal(tl_sip_addr_decode(&a, PL("sip:a@b;tag=9")), 0);
    assert_false(a.angle);
    assert_pl(&a.tag, "9");
    assert_int_equal(a.uri.params.l, 0);

    static const char *const bad[] = {
        "<sip:a@b>;tag=1;tag=2",
        "sip:a@b?x=y",
        "sip:a@b, sip:c@d",
        "<sip:a@b",
        "\"unterminated <sip:a@b>",
        "Watson, Thomas <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b> x",
        "",
        "<>",
        "<sip:a@b>;tag=",
        "<sip:a@b>;tag=\"q\"",
        "\"x\" sip:a@b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tl_sip_addr_decode(&a, PL(bad[i])) != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(tl_sip_route_decode(&a, PL("<sip:p1.example.com;lr>")), 0);
    assert_int_equal(tl_sip_route_decode(&a, PL("sip:p1.example.com;lr")), EBADMSG);
}

static void test_contact(void **state)
{
    struct tl_sip_contact c;
    assert_int_equal(tl_sip_contact_decode(&c, PL(" * ")), 0);
    assert_true(c.star);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;expires=60;q=0.5")), 0);
    assert_false(c.star);
    assert_true(c.has_expires);
    assert_int_equal(c.expires, 60);
    assert_int_equal(c.q, 500);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;q=1.000")), 0);
    assert_int_equal(c.q, 1000);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;q=0")), 0);
    assert_int_equal(c.q, 0);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;expires=abc")), 0);
    assert_int_equal(c.expires, 3600); /* malformed reads as 3600 (§20.19) */
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;q=1.5")), EBADMSG);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;q=0.1234")), EBADMSG);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;q=2")), EBADMSG);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;expires=1;expires=2")), EBADMSG);
    assert_int_equal(tl_sip_contact_decode(&c, PL("<sip:a@h>;;;;")), EBADMSG);
}

/* ---- auth ---- */

static void test_auth(void **state)
{
    struct tl_sip_auth a;
    char b[64];
    size_t n;

    /* Twilio-style challenge: no algorithm (MD5), qop and opaque */
    assert_int_equal(tl_sip_auth_decode(&a, PL("Digest realm=\"sip.twilio.com\", "
                                               "nonce=\"abc123\", qop=\"auth\", opaque=\"xyz\"")),
                     0);
    assert_true(a.digest);
    assert_pl(&a.realm, "sip.twilio.com");
    assert_pl(&a.nonce, "abc123");
    assert_pl(&a.opaque, "xyz");
    assert_null(a.algorithm.p);
    assert_true(tl_sip_list_has(&a.qop, "auth"));

    /* Telnyx-style: unquoted algorithm; an RFC 8760 one with stale, userhash, qop list */
    assert_int_equal(tl_sip_auth_decode(&a, PL("digest realm=\"sip.telnyx.com\",nonce=\"n\","
                                               "algorithm=MD5,qop=\"auth\",opaque=\"o\"")),
                     0);
    assert_pl(&a.algorithm, "MD5");
    assert_int_equal(
        tl_sip_auth_decode(&a, PL("Digest realm=\"r\", nonce=\"n\", "
                                  "algorithm=\"SHA-256\", qop=\"auth,auth-int\", "
                                  "stale=TRUE, userhash=true, domain=\"sip:a sip:b\"")),
        0);
    assert_pl(&a.algorithm, "SHA-256");
    assert_true(a.stale);
    assert_true(a.userhash);
    assert_true(tl_sip_list_has(&a.qop, "auth-int"));
    assert_pl(&a.domain, "sip:a sip:b");

    /* credentials (RFC 3261 §22.4 example, folded over lines) */
    assert_int_equal(tl_sip_auth_decode(&a, PL("Digest username=\"bob\",\r\n realm=\"biloxi.com\", "
                                               "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                                               "uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, "
                                               "cnonce=\"0a4f113b\", "
                                               "response=\"6629fae49393a05397450978507c4ef1\", "
                                               "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"")),
                     0);
    assert_pl(&a.username, "bob");
    assert_pl(&a.uri, "sip:bob@biloxi.com");
    assert_pl(&a.qop, "auth");
    assert_pl(&a.nc, "00000001");
    assert_pl(&a.cnonce, "0a4f113b");
    assert_pl(&a.response, "6629fae49393a05397450978507c4ef1");

    /* escapes stay until asked for */
    assert_int_equal(tl_sip_auth_decode(&a, PL("Digest realm=\"a\\\"b\", nonce=\"\"")), 0);
    assert_pl(&a.realm, "a\\\"b");
    assert_int_equal(tl_sip_qstr_unescape(b, sizeof(b), &n, &a.realm), 0);
    assert_string_equal(b, "a\"b");
    assert_non_null(a.nonce.p);
    assert_int_equal(a.nonce.l, 0);

    /* other schemes stay opaque */
    assert_int_equal(tl_sip_auth_decode(&a, PL("Basic dXNlcjpwYXNz")), 0);
    assert_false(a.digest);
    assert_pl(&a.params, "dXNlcjpwYXNz");

    static const char *const bad[] = {
        "Digest realm=\"a\", realm=\"b\"", /* a second realm must not win */
        "Digest nonce=\"a\", NONCE=\"b\"",
        "Digest realm=\"open",
        "Digest",
        "Digest realm",
        "Digest realm=",
        "Digest realm=\"a\" nonce=\"b\"",
        "Digest nc=1",
        "Digest nc=0000000g",
        "Digest response=\"xyz\"",
        "Digest stale=maybe",
        "Digest stale=true, stale=false",
        "Digest realm=\"a\\",
        "",
        "\"Digest\" realm=a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (tl_sip_auth_decode(&a, PL(bad[i])) != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    char many[2048] = "Digest ";
    for (int i = 0; i <= TL_SIP_PARAM_MAX; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1,", i);
    assert_int_equal(tl_sip_auth_decode(&a, PL(many)), E2BIG);
}

/* ---- RFC 4028, RFC 6665, RFC 3326, Warning ---- */

static void test_misc(void **state)
{
    struct tl_sip_session_expires se;
    uint32_t d;
    assert_int_equal(tl_sip_session_expires_decode(&se, PL("1800;refresher=uac")), 0);
    assert_int_equal(se.delta, 1800);
    assert_int_equal(se.refresher, TL_SIP_REFRESHER_UAC);
    assert_int_equal(tl_sip_session_expires_decode(&se, PL(" 90 ; x=1 ")), 0);
    assert_int_equal(se.refresher, TL_SIP_REFRESHER_NONE);
    assert_int_equal(tl_sip_session_expires_decode(&se, PL("1800;refresher=foo")), EBADMSG);
    assert_int_equal(tl_sip_session_expires_decode(&se, PL("x")), EBADMSG);
    assert_int_equal(tl_sip_session_expires_decode(&se, PL("99999999999")), EBADMSG);
    assert_int_equal(tl_sip_min_se_decode(&d, PL("90")), 0);
    assert_int_equal(d, 90);

    struct tl_sip_event ev;
    assert_int_equal(tl_sip_event_decode(&ev, PL("refer;id=93809824")), 0);
    assert_pl(&ev.type, "refer");
    assert_pl(&ev.id, "93809824");
    assert_int_equal(tl_sip_event_decode(&ev, PL("presence.winfo")), 0);
    assert_pl(&ev.type, "presence.winfo");
    assert_int_equal(tl_sip_event_decode(&ev, PL("dialog;id=1;id=2")), EBADMSG);
    assert_int_equal(tl_sip_event_decode(&ev, PL(";id=1")), EBADMSG);

    struct tl_sip_substate ss;
    assert_int_equal(tl_sip_substate_decode(&ss, PL("active;expires=3600")), 0);
    assert_int_equal(ss.sid, TL_SIP_SUBSTATE_ACTIVE);
    assert_int_equal(ss.expires, 3600);
    assert_int_equal(tl_sip_substate_decode(&ss, PL("terminated;reason=noresource")), 0);
    assert_int_equal(ss.sid, TL_SIP_SUBSTATE_TERMINATED);
    assert_pl(&ss.reason, "noresource");
    assert_int_equal(tl_sip_substate_decode(&ss, PL("terminated;retry-after=30")), 0);
    assert_int_equal(ss.retry_after, 30);
    assert_int_equal(tl_sip_substate_decode(&ss, PL("pending;expires=x")), EBADMSG);

    struct tl_sip_reason r;
    struct tl_pl rest = TL_PL("SIP;cause=200;text=\"Call completed elsewhere\", "
                              "Q.850;cause=16;text=\"Terminated\""),
                 v;
    assert_int_equal(tl_sip_list_next(&rest, &v), 0);
    assert_int_equal(tl_sip_reason_decode(&r, &v), 0);
    assert_pl(&r.proto, "SIP");
    assert_int_equal(r.cause, 200);
    assert_pl(&r.text, "Call completed elsewhere");
    assert_int_equal(tl_sip_list_next(&rest, &v), 0);
    assert_int_equal(tl_sip_reason_decode(&r, &v), 0);
    assert_pl(&r.proto, "Q.850");
    assert_int_equal(r.cause, 16);
    assert_int_equal(tl_sip_reason_decode(&r, PL("SIP;cause=70000")), EBADMSG);
    assert_int_equal(tl_sip_reason_decode(&r, PL("SIP;cause=1;cause=2")), EBADMSG);

    struct tl_sip_warning w;
    assert_int_equal(tl_sip_warning_decode(&w, PL("399 sip.example.com:5060 \"Incompatible\"")), 0);
    assert_int_equal(w.code, 399);
    assert_pl(&w.agent, "sip.example.com:5060");
    assert_pl(&w.text, "Incompatible");
    assert_int_equal(tl_sip_warning_decode(&w, PL("1812 overture \"In Progress\"")), EBADMSG);
    assert_int_equal(tl_sip_warning_decode(&w, PL("39 h \"x\"")), EBADMSG);
    assert_int_equal(tl_sip_warning_decode(&w, PL("399 h noquote")), EBADMSG);
    assert_int_equal(tl_sip_warning_decode(&w, PL("399 h \"x\" y")), EBADMSG);
}

/* ---- messages: caps and oddities beyond RFC 4475 ---- */

static const char base_req[] = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
                               ";rport\r\n"
                               "Max-Forwards: 70\r\n"
                               "To: Bob <sip:bob@biloxi.example.com>\r\n"
                               "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
                               "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
                               "CSeq: 314159 INVITE\r\n"
                               "Contact: <sip:alice@pc33.atlanta.example.com>\r\n";

/* base_req + extra + "Content-Length: 0" + blank line into a heap buffer (ASan sees it) */
static char *mk(const char *extra, size_t *len)
{
    size_t n = strlen(base_req) + strlen(extra) + 64;
    char *b = malloc(n);
    assert_non_null(b);
    *len = (size_t)snprintf(b, n, "%s%sContent-Length: 0\r\n\r\n", base_req, extra);
    return b;
}

static void test_msg_caps(void **state)
{
    struct tl_sip_msg *m = malloc(sizeof(*m));
    size_t len;
    char *b;
    assert_non_null(m);

    b = mk("", &len);
    assert_int_equal(tl_sip_msg_decode(m, b, len), 0);
    assert_int_equal(m->have, TL_SIP_HAVE_REPLY);
    free(b);

    /* 128 header fields fit, 129 do not (CVE-2016-2385: fixed arrays) */
    size_t base_fields = 8; /* 7 in base_req + Content-Length */
    char *extra = calloc(1, 200 * 16);
    assert_non_null(extra);
    for (size_t i = 0; i < TL_SIP_HDR_MAX - base_fields; i++)
        strcat(extra, "X-A: 1\r\n");
    b = mk(extra, &len);
    assert_int_equal(tl_sip_msg_decode(m, b, len), 0);
    assert_int_equal(m->hdrc, TL_SIP_HDR_MAX);
    free(b);
    strcat(extra, "X-A: 1\r\n");
    b = mk(extra, &len);
    assert_int_equal(tl_sip_msg_decode(m, b, len), E2BIG);
    free(b);

    /* Via values: 64 fit, 65 do not */
    extra[0] = '\0';
    for (size_t i = 1; i < TL_SIP_VIA_MAX; i++)
        strcat(extra, i % 2 ? "v: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
                            : "Via: SIP/2.0/TCP a, SIP/2.0/TCP b\r\n");
    b = mk(extra, &len);
    int rc = tl_sip_msg_decode(m, b, len);
    assert_true(m->viac > TL_SIP_VIA_MAX);
    assert_int_equal(rc, E2BIG);
    assert_int_equal(m->err_hdr, TL_SIP_HDR_VIA);
    free(b);
    free(extra);

    /* a header field over the line cap */
    extra = malloc(TL_SIP_LINE_MAX + 64);
    assert_non_null(extra);
    memset(extra, 'a', TL_SIP_LINE_MAX + 10);
    memcpy(extra, "X-Long: ", 8);
    strcpy(extra + TL_SIP_LINE_MAX + 10, "\r\n");
    b = mk(extra, &len);
    assert_int_equal(tl_sip_msg_decode(m, b, len), E2BIG);
    free(b);
    free(extra);

    /* the whole message over the cap */
    b = malloc(TL_SIP_MSG_MAX + 1);
    assert_non_null(b);
    memset(b, 'a', TL_SIP_MSG_MAX + 1);
    assert_int_equal(tl_sip_msg_decode(m, b, TL_SIP_MSG_MAX + 1), E2BIG);
    free(b);
    free(m);
}

static void test_msg_odd(void **state)
{
    struct tl_sip_msg m;
    size_t len;
    char *b;
    static const struct {
        const char *extra;
        int rc;
    } c[] = {
        {"Via\x01: x\r\n", EBADMSG},        /* control octet before ':' (CVE-2016-9938) */
        {"X-A: a\x01b\r\n", EBADMSG},       /* control octet in a value */
        {"X-A: a\\\x01b\r\n", 0},           /* ... fine as a quoted-pair */
        {"X-A: a\nb\r\n", EBADMSG},         /* bare LF */
        {"X-A: a\rb\r\n", EBADMSG},         /* bare CR */
        {" X-A: a\r\n", EBADMSG},           /* a fold: continues (and breaks) Contact */
        {"X-B: 1\r\n X-A: a\r\n", 0},       /* ... or any header */
        {"X-A a\r\n", EBADMSG},             /* no colon */
        {": a\r\n", EBADMSG},               /* no name */
        {"Contact: *\r\n", EBADMSG},        /* '*' with other Contact values */
        {"Route: sip:p@h;lr\r\n", EBADMSG}, /* Route must be in <> */
        {"Require: 100rel, \"x\"\r\n", EBADMSG},
        {"Supported: \r\n", 0},            /* an empty list */
        {"Max-Forwards: 70\r\n", EBADMSG}, /* repeated */
        {"Content-Length: 0\r\n", EBADMSG},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        b = mk(c[i].extra, &len);
        int rc = tl_sip_msg_decode(&m, b, len);
        if (rc != c[i].rc)
            fail_msg("case %zu: %d (%s), want %d", i, rc, m.err ? m.err : "", c[i].rc);
        free(b);
    }

    /* leading CRLFs are skipped (§7.5), compact forms, lower-case version, no Contact */
    static const char r1[] = "\r\n\r\nOPTIONS sip:h sip/2.0\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@h>"
                             ";tag=1\r\nt: sip:b@h\r\ni: x@y\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n";
    assert_int_equal(tl_sip_msg_decode(&m, r1, sizeof(r1) - 1), 0);
    assert_int_equal(m.mb.p[0], 'O');
    assert_int_equal(m.mid, TL_SIP_METHOD_OPTIONS);
    assert_pl(&m.callid, "x@y");

    static const char r2[] = "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                             "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\n"
                             "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_msg_decode(&m, r2, sizeof(r2) - 1), 0);
    assert_false(m.req);
    assert_int_equal(m.scode, 180);
    assert_pl(&m.reason, "Ringing");
    assert_int_equal(m.cseq.mid, TL_SIP_METHOD_INVITE);

    static const char *const bad_start[] = {
        "SIP/2.0 99 Low\r\n",     "SIP/2.0 700 High\r\n",      "SIP/2.0 2000 X\r\n",
        "SIP/2.0 20 X\r\n",       "SIP/2.0 200 a\x01\r\n",     "SIP/2.0x 200 OK\r\n",
        "INVITE sip:h SIP/2\r\n", "INVITE sip:h SIP/2.0 \r\n", "INV\"ITE sip:h SIP/2.0\r\n",
        "INVITE  SIP/2.0\r\n",
    };
    char buf[512];
    for (size_t i = 0; i < sizeof(bad_start) / sizeof(bad_start[0]); i++) {
        int n = snprintf(buf, sizeof(buf),
                         "%sVia: SIP/2.0/UDP h\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\n"
                         "Call-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                         bad_start[i]);
        int rc = tl_sip_msg_decode(&m, buf, (size_t)n);
        if (rc != EBADMSG)
            fail_msg("accepted start line %zu (%d)", i, rc);
    }
    assert_int_equal(tl_sip_msg_decode(&m, "", 0), EBADMSG);
    assert_int_equal(tl_sip_msg_decode(&m, "\r\n\r\n", 4), EBADMSG);
    assert_int_equal(tl_sip_msg_decode(&m, "INVITE sip:h SIP/2.0", 20), EBADMSG);
}

/* ---- replies ---- */

static void test_reply(void **state)
{
    struct tl_sip_msg req, rsp;
    char out[2048];
    struct tl_sip_wbuf wb;
    size_t len;
    char *b = mk("", &len);
    assert_int_equal(tl_sip_msg_decode(&req, b, len), 0);

    /* 100 Trying: no To tag */
    struct tl_sip_reply r = {.scode = 100, .totag = TL_PL("t1")};
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_reply_print(&wb, &req, &r), 0);
    assert_int_equal(tl_sip_msg_decode(&rsp, out, wb.len), 0);
    assert_pl(&rsp.reason, "Trying");
    assert_int_equal(rsp.to.tag.l, 0);
    assert_false(rsp.via.has_rport_val); /* no source given: Via as it came */

    /* 200 with tag, received/rport, extra headers and a body */
    r = (struct tl_sip_reply){.scode = 200,
                              .totag = TL_PL("t1"),
                              .received = TL_PL("2001:db8::9"),
                              .src_port = 40000,
                              .hdrs = "Allow: INVITE, ACK, BYE\r\nSupported: timer\r\n",
                              .ctype = TL_PL("application/sdp"),
                              .body = TL_PL("v=0\r\n")};
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_reply_print(&wb, &req, &r), 0);
    assert_int_equal(tl_sip_msg_decode(&rsp, out, wb.len), 0);
    assert_int_equal(rsp.scode, 200);
    assert_pl(&rsp.reason, "OK");
    assert_pl(&rsp.to.tag, "t1");
    assert_pl(&rsp.via.received, "2001:db8::9");
    assert_int_equal(rsp.via.rport_val, 40000);
    assert_true(tl_sip_msg_has_token(&rsp, TL_SIP_HDR_ALLOW, "BYE"));
    assert_pl(&rsp.body, "v=0\r\n");
    assert_pl(&rsp.cseq.met, "INVITE");

    /* bad input from our side: refused, nothing written */
    static const char *const bad_hdrs[] = {
        "X: a", "X: a\r\n\r\nINVITE", "X: a\nY: b\r\n", "X: a\r\n\r\n", ": a\r\n", "X a\r\n"};
    for (size_t i = 0; i < sizeof(bad_hdrs) / sizeof(bad_hdrs[0]); i++) {
        struct tl_sip_reply rb = {.scode = 200, .hdrs = bad_hdrs[i]};
        tl_sip_wbuf_init(&wb, out, sizeof(out));
        if (tl_sip_reply_print(&wb, &req, &rb) != EINVAL || wb.len)
            fail_msg("hdrs %zu accepted", i);
    }
    struct tl_sip_reply rb = {.scode = 200, .reason = "OK\r\nX: y"};
    assert_int_equal(tl_sip_reply_print(&wb, &req, &rb), EINVAL);
    rb = (struct tl_sip_reply){.scode = 99};
    assert_int_equal(tl_sip_reply_print(&wb, &req, &rb), EINVAL);
    rb = (struct tl_sip_reply){.scode = 200, .totag = TL_PL("a;b")};
    assert_int_equal(tl_sip_reply_print(&wb, &req, &rb), EINVAL);
    rb = (struct tl_sip_reply){.scode = 200, .received = TL_PL("evil.example.com")};
    assert_int_equal(tl_sip_reply_print(&wb, &req, &rb), EINVAL);
    assert_int_equal(tl_sip_reply_print(&wb, &rsp, &r), EBADMSG); /* not a request */
    assert_int_equal(wb.len, 0);

    /* header printer */
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_hdr_print(&wb, "Subject", PL("a\r\n b")), 0);
    assert_int_equal(wb.len, strlen("Subject: a b\r\n"));
    assert_memory_equal(out, "Subject: a b\r\n", wb.len);
    assert_int_equal(tl_sip_hdr_print(&wb, "Bad Name", PL("x")), EINVAL);
    assert_int_equal(tl_sip_hdr_print(&wb, "X", PL("a\r\nInjected: 1")), EINVAL);
    assert_int_equal(tl_sip_hdr_print(&wb, "X", PL("a\r\n")), EINVAL);
    assert_int_equal(wb.len, strlen("Subject: a b\r\n"));
    tl_sip_wbuf_init(&wb, out, 10);
    assert_int_equal(tl_sip_hdr_print(&wb, "Subject", PL("abc")), ENOSPC);
    assert_int_equal(wb.len, 0);
    tl_sip_wbuf_init(&wb, NULL, 0);
    assert_int_equal(tl_sip_wbuf_printf(&wb, "%d", 1), ENOSPC);

    /* a header value printed then decoded again (Contact, as a UAS would) */
    struct tl_sip_contact c1, c2;
    assert_int_equal(tl_sip_contact_decode(&c1, PL("\"A\" <sip:a@h;transport=tcp>;expires=60;"
                                                   "+sip.instance=\"<urn:uuid:1>\"")),
                     0);
    tl_sip_wbuf_init(&wb, out, sizeof(out));
    assert_int_equal(tl_sip_hdr_print(&wb, "Contact",
                                      PL("\"A\" <sip:a@h;transport=tcp>;"
                                         "expires=60;+sip.instance="
                                         "\"<urn:uuid:1>\"")),
                     0);
    struct tl_pl v = {out + 9, wb.len - 11};
    assert_int_equal(tl_sip_contact_decode(&c2, &v), 0);
    assert_true(tl_sip_uri_cmp(&c1.addr.uri, &c2.addr.uri));
    assert_int_equal(c2.expires, 60);
    free(b);
}

/* ---- stream framing ---- */

static void test_frame(void **state)
{
    struct tl_sip_frame fr;
#define FR(s, n) (memset(&fr, 0, sizeof(fr)), tl_sip_frame(&fr, (s), (n)))
    assert_int_equal(FR("\r\n\r\n", 4), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_PING);
    assert_int_equal(fr.len, 4);
    assert_int_equal(FR("\r\n", 2), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_PONG);
    assert_int_equal(FR("\r\nINVITE", 8), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_PONG);
    assert_int_equal(FR("\r\n\r", 3), ENODATA);
    assert_int_equal(FR("\r", 1), ENODATA);
    assert_int_equal(FR("", 0), ENODATA);
    assert_int_equal(FR("\rX", 2), EBADMSG);
    assert_int_equal(FR("\r\n\rX", 4), EBADMSG);
    assert_int_equal(FR("\x16\x03\x01\x02\x00", 5), EBADMSG); /* TLS on the TCP port */
    assert_int_equal(FR("OPTIONS sip:h SIP/2.0\n", 22), EBADMSG);
    assert_int_equal(FR("OPTIONS sip:h SIP/2.0\r\nX: 1\r\n", 30), ENODATA);
    assert_int_equal(FR("OPTIONS sip:h SIP/2.0\r\nX: 1\r\n\r\n", 32), EBADMSG); /* no CL */
    assert_int_equal(FR("O\r\nl: five\r\n\r\n", 15), EBADMSG);
    assert_int_equal(FR("O\r\nl: -1\r\n\r\n", 13), EBADMSG);
    assert_int_equal(FR("O\r\nl: 1\r\nl: 1\r\n\r\nx", 19), EBADMSG);
    assert_int_equal(FR("O\r\nl: 70000\r\n\r\n", 16), E2BIG);
    assert_int_equal(FR("O\r\nl: 65530\r\n\r\n", 16), E2BIG); /* header + body > cap */
    assert_int_equal(FR("O\r\nl:\r\n 3\r\n\r\nabcd", 17), 0); /* folded value */
    assert_int_equal(fr.len, 16);

    /* an endless line is cut off before the blank line ever comes */
    char *big = malloc(TL_SIP_MSG_MAX + 10);
    assert_non_null(big);
    memset(big, 'a', TL_SIP_MSG_MAX + 10);
    assert_int_equal(FR(big, TL_SIP_LINE_MAX), ENODATA);
    assert_int_equal(FR(big, TL_SIP_LINE_MAX + 1), E2BIG);
    /* many short lines without an end: the message cap */
    for (size_t i = 10; i + 1 < TL_SIP_MSG_MAX + 10; i += 10) {
        big[i - 1] = '\r';
        big[i] = '\n';
    }
    assert_int_equal(FR(big, TL_SIP_MSG_MAX - 5), ENODATA);
    assert_int_equal(FR(big, TL_SIP_MSG_MAX + 10), E2BIG);
    free(big);

    /* pipelined: two messages with bodies, fed one byte at a time */
    static const char two[] = "MESSAGE sip:a@h SIP/2.0\r\nContent-Length: 5\r\n\r\nhello"
                              "\r\n\r\n"
                              "MESSAGE sip:a@h SIP/2.0\r\nl: 2\r\n\r\nhi";
    for (size_t step = 1; step < sizeof(two); step++) {
        size_t off = 0, have = 0;
        int kinds[4], nk = 0;
        memset(&fr, 0, sizeof(fr));
        while (off < sizeof(two) - 1) {
            int rc = tl_sip_frame(&fr, two + off, have - off);
            if (rc == ENODATA) {
                assert_true(have < sizeof(two) - 1);
                have = have + step < sizeof(two) - 1 ? have + step : sizeof(two) - 1;
                continue;
            }
            assert_int_equal(rc, 0);
            assert_true(nk < 4);
            kinds[nk++] = (int)fr.kind;
            off += fr.len;
            tl_sip_frame_reset(&fr);
        }
        /* MSG, PING, MSG — or MSG, PONG, PING, MSG when the ping is split in its middle:
         * either way the server sees a ping to answer */
        assert_int_equal(kinds[0], TL_SIP_FRAME_MSG);
        assert_int_equal(kinds[nk - 2], TL_SIP_FRAME_PING);
        assert_int_equal(kinds[nk - 1], TL_SIP_FRAME_MSG);
        assert_true(nk == 3 || (nk == 4 && kinds[1] == TL_SIP_FRAME_PONG));
    }
    /* a lone CRLF then a message: the carry is dropped */
    memset(&fr, 0, sizeof(fr));
    assert_int_equal(tl_sip_frame(&fr, "\r\n", 2), 0);
    assert_int_equal(fr.kind, TL_SIP_FRAME_PONG);
    tl_sip_frame_reset(&fr);
    assert_int_equal(tl_sip_frame(&fr, "O", 1), ENODATA);
    assert_false(fr.crlf_end);
#undef FR
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_names),   cmocka_unit_test(test_list),
        cmocka_unit_test(test_params),      cmocka_unit_test(test_unfold_qstr),
        cmocka_unit_test(test_u32),         cmocka_unit_test(test_via),
        cmocka_unit_test(test_cseq_callid), cmocka_unit_test(test_addr),
        cmocka_unit_test(test_contact),     cmocka_unit_test(test_auth),
        cmocka_unit_test(test_misc),        cmocka_unit_test(test_msg_caps),
        cmocka_unit_test(test_msg_odd),     cmocka_unit_test(test_reply),
        cmocka_unit_test(test_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
