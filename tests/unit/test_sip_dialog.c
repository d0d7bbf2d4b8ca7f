/* sip/dialog: dialog state and the arithmetic of glare and session timers, on decoded
 * messages, without sockets. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/dialog.h"

static struct tl_sip_msg g_m;

static const struct tl_sip_msg *dec(const char *txt)
{
    assert_int_equal(tl_sip_msg_decode(&g_m, txt, strlen(txt)), 0);
    return &g_m;
}

#define INVITE_RR                                                                                  \
    "INVITE sip:+49301@gw.test SIP/2.0\r\n"                                                        \
    "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa\r\n"                                               \
    "Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>\r\n"                                   \
    "Record-Route: <sip:p3.example;lr>\r\n"                                                        \
    "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>\r\n"                        \
    "Call-ID: abc@carrier\r\nCSeq: 7 INVITE\r\nContact: <sip:c@192.0.2.9:5070>\r\n"                \
    "%sContent-Length: 0\r\n\r\n"

static char g_buf[2048];

static const struct tl_sip_msg *invite(const char *extra)
{
    snprintf(g_buf, sizeof g_buf, INVITE_RR, extra);
    return dec(g_buf);
}

static const struct tl_sip_peer peer = {.tp = TL_SIP_TP_UDP};

static void uas_dialog_route_set_in_order(void **st)
{
    (void)st;
    struct tl_sip_dlg d;
    assert_int_equal(tl_sip_dlg_uas_init(&d, invite(""), &peer, "lt1", "<sip:gw@127.0.0.1>"), 0);
    assert_string_equal(d.callid, "abc@carrier");
    assert_string_equal(d.ltag, "lt1");
    assert_string_equal(d.rtag, "rt1");
    assert_string_equal(d.local, "<sip:+49301@gw.test>;tag=lt1");
    assert_string_equal(d.remote, "<sip:c@carrier.example>;tag=rt1");
    assert_string_equal(d.target, "sip:c@192.0.2.9:5070");
    assert_string_equal(d.route, "<sip:p1.example;lr>, <sip:p2.example;lr>, <sip:p3.example;lr>");
    assert_false(d.uac);
    /* an in-dialog request of ours: CSeq starts at 1 for our side (independent space) */
    struct tl_sip_request rq;
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_BYE);
    assert_int_equal(rq.cseq, 1);
    assert_string_equal(rq.ruri, "sip:c@192.0.2.9:5070");
    assert_string_equal(rq.to, d.remote);
    /* §12.2.1.1 loose routing: toward the first Route URI, not to where the INVITE came
     * from; the dialog's connection is only offered for reuse; no Contact on a BYE */
    assert_string_equal(rq.hop, "sip:p1.example;lr");
    assert_null(rq.dest);
    assert_ptr_equal(rq.prefer, &d.peer);
    assert_null(rq.contact);
    assert_int_equal(rq.tp, TL_SIP_TP_UDP); /* no transport= on the route: the dialog's */
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_INVITE);
    assert_string_equal(rq.contact, "<sip:gw@127.0.0.1>");
    tl_sip_dlg_reset(&d);
}

/* The next hop's URI and transport (§12.2.1.1, §8.1.2, RFC 3263 §4.1): the first Route, else
 * the remote target; ;transport= and sips: decide, else the dialog's transport. The ACK for
 * a 2xx goes to the INVITE's hop. A target refresh moves the hop only without a route set. */
static void in_dialog_next_hop(void **st)
{
    (void)st;
    struct tl_sip_dlg d;
    struct tl_sip_request rq;
    const struct tl_sip_peer tcp = {.tp = TL_SIP_TP_TCP, .conn = 42};
    const char *rr = "INVITE sip:+49301@gw.test SIP/2.0\r\n"
                     "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKa\r\n"
                     "Record-Route: <sip:192.0.2.1:5070;transport=tcp;r2=on;lr>, "
                     "<sip:192.0.2.1;r2=on;lr>\r\n"
                     "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>\r\n"
                     "Call-ID: h1\r\nCSeq: 1 INVITE\r\nContact: <sip:c@192.0.2.9:5080>\r\n"
                     "Content-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_dlg_uas_init(&d, dec(rr), &tcp, "lt", "<sip:gw@127.0.0.1>"), 0);
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_BYE);
    assert_string_equal(rq.hop, "sip:192.0.2.1:5070;transport=tcp;r2=on;lr");
    assert_int_equal(rq.tp, TL_SIP_TP_TCP);
    assert_ptr_equal(rq.prefer, &d.peer);
    assert_int_equal(rq.prefer->conn, 42);
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_ACK);
    assert_ptr_equal(rq.dest, &d.peer);
    assert_null(rq.hop);
    tl_sip_dlg_reset(&d);

    /* no route set: the remote target, its transport parameter, then target refreshes */
    const char *plain = "INVITE sip:+49301@gw.test SIP/2.0\r\n"
                        "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKa\r\n"
                        "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>\r\n"
                        "Call-ID: h2\r\nCSeq: 1 INVITE\r\n"
                        "Contact: <sip:c@sbc.carrier.example;transport=TLS>\r\n"
                        "Content-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_dlg_uas_init(&d, dec(plain), &tcp, "lt", "<sip:gw@127.0.0.1>"), 0);
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_INFO);
    assert_string_equal(rq.hop, "sip:c@sbc.carrier.example;transport=TLS");
    assert_int_equal(rq.tp, TL_SIP_TP_TLS);
    const char *upd = "UPDATE sip:gw@127.0.0.1 SIP/2.0\r\n"
                      "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKu\r\n"
                      "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>;tag=lt\r\n"
                      "Call-ID: h2\r\nCSeq: 2 UPDATE\r\nContact: <sips:c@[2001:db8::5]:5071>\r\n"
                      "Content-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_dlg_target_refresh(&d, dec(upd)), 0);
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_BYE);
    assert_string_equal(rq.hop, "sips:c@[2001:db8::5]:5071");
    assert_int_equal(rq.tp, TL_SIP_TP_TLS);
    /* a target that cannot be routed to (not sip/sips) is refused; the old one stays */
    const char *bad = "UPDATE sip:gw@127.0.0.1 SIP/2.0\r\n"
                      "Via: SIP/2.0/TCP 192.0.2.9;branch=z9hG4bKv\r\n"
                      "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>;tag=lt\r\n"
                      "Call-ID: h2\r\nCSeq: 3 UPDATE\r\nContact: <tel:+4930123>\r\n"
                      "Content-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_dlg_target_refresh(&d, dec(bad)), EBADMSG);
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_BYE);
    assert_string_equal(rq.hop, "sips:c@[2001:db8::5]:5071");
    tl_sip_dlg_reset(&d);
}

static void uac_dialog_route_set_reversed(void **st)
{
    (void)st;
    const char *ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKb\r\n"
                     "Record-Route: <sip:p3.example;lr>\r\n"
                     "Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
                     "From: <sip:gw@gw.test>;tag=our\r\nTo: <sip:+1555@carrier>;tag=their\r\n"
                     "Call-ID: x1\r\nCSeq: 3 INVITE\r\nContact: <sips:b@198.51.100.1>\r\n"
                     "Content-Length: 0\r\n\r\n";
    struct tl_sip_dlg d;
    assert_int_equal(tl_sip_dlg_uac_init(&d, dec(ok), "<sip:gw@gw.test>;tag=our", 3, &peer,
                                         "<sip:gw@127.0.0.1>"),
                     0);
    assert_string_equal(d.route, "<sip:p1.example;lr>, <sip:p2.example;lr>, <sip:p3.example;lr>");
    assert_string_equal(d.ltag, "our");
    assert_string_equal(d.rtag, "their");
    assert_true(d.uac);
    assert_true(d.secure); /* sips target */
    struct tl_sip_request rq;
    tl_sip_dlg_request(&d, &rq, TL_SIP_METHOD_INFO);
    assert_int_equal(rq.cseq, 4); /* after the INVITE's 3 */
    tl_sip_dlg_reset(&d);
}

static void cseq_rules_and_target_refresh(void **st)
{
    (void)st;
    struct tl_sip_dlg d;
    assert_int_equal(tl_sip_dlg_uas_init(&d, invite(""), &peer, "lt1", "<sip:gw@127.0.0.1>"), 0);
    const char *lower =
        "INFO sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKc\r\n"
        "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>;tag=lt1\r\n"
        "Call-ID: abc@carrier\r\nCSeq: 6 INFO\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(tl_sip_dlg_cseq_check(&d, dec(lower)), 500); /* §12.2.2 */
    const char *reinv =
        "INVITE sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKd\r\n"
        "From: <sip:c@carrier.example>;tag=rt1\r\nTo: <sip:+49301@gw.test>;tag=lt1\r\n"
        "Call-ID: abc@carrier\r\nCSeq: 8 INVITE\r\nContact: <sip:c@192.0.2.77>\r\n"
        "Content-Length: 0\r\n\r\n";
    const struct tl_sip_msg *m = dec(reinv);
    assert_int_equal(tl_sip_dlg_cseq_check(&d, m), 0);
    assert_int_equal(d.rseq, 8);
    assert_int_equal(tl_sip_dlg_target_refresh(&d, m), 0);
    assert_string_equal(d.target, "sip:c@192.0.2.77");
    tl_sip_dlg_reset(&d);
}

static void table_lookup(void **st)
{
    (void)st;
    struct tl_sip_dlg_table t;
    struct tl_sip_dlg d[200];
    char cid[200][16];
    tl_sip_dlg_table_init(&t);
    for (int i = 0; i < 200; i++) {
        memset(&d[i], 0, sizeof d[i]);
        snprintf(cid[i], sizeof cid[i], "c%d", i);
        d[i].callid = cid[i];
        d[i].ltag = "L";
        d[i].rtag = i % 2 ? "R1" : "R2";
        assert_int_equal(tl_sip_dlg_table_add(&t, &d[i]), 0);
    }
    struct tl_pl c = TL_PL("c41"), l = TL_PL("L"), r1 = TL_PL("R1"), r2 = TL_PL("R2");
    assert_ptr_equal(tl_sip_dlg_table_find(&t, &c, &l, &r1), &d[41]);
    assert_null(tl_sip_dlg_table_find(&t, &c, &l, &r2)); /* unknown remote tag → 481 */
    tl_sip_dlg_table_del(&t, &d[41]);
    assert_null(tl_sip_dlg_table_find(&t, &c, &l, &r1));
    assert_int_equal(t.n, 199);
    tl_sip_dlg_table_free(&t);
}

static void glare_delay(void **st)
{
    (void)st;
    for (uint32_t r = 0; r < 5000; r += 7) {
        uint32_t a = tl_sip_glare_delay_ms(true, r), b = tl_sip_glare_delay_ms(false, r);
        assert_true(a >= 2100 && a <= 4000 && a % 10 == 0); /* §14.1 */
        assert_true(b <= 2000 && b % 10 == 0);
    }
    assert_int_equal(tl_sip_glare_delay_ms(true, 190), 4000);
    assert_int_equal(tl_sip_glare_delay_ms(false, 200), 2000);
}

static void session_timer_uas(void **st)
{
    (void)st;
    struct tl_sip_st s;
    bool req;
    /* below our Min-SE: 422 */
    assert_int_equal(
        tl_sip_st_uas(invite("Supported: timer\r\nSession-Expires: 60\r\n"), 90, 0, &s, &req), 422);
    /* UAC supports timer and leaves the refresher: the UAC refreshes, Require: timer */
    assert_int_equal(
        tl_sip_st_uas(invite("Supported: timer\r\nSession-Expires: 1800\r\n"), 90, 0, &s, &req), 0);
    assert_int_equal(s.se, 1800);
    assert_false(s.we_refresh);
    assert_true(req);
    /* refresher=uas asked: we refresh */
    tl_sip_st_uas(invite("Supported: timer\r\nSession-Expires: 300;refresher=uas\r\n"), 90, 0, &s,
                  &req);
    assert_true(s.we_refresh);
    /* a proxy added Session-Expires but the UAC knows no timers: we refresh, no Require */
    tl_sip_st_uas(invite("Session-Expires: 300\r\n"), 90, 0, &s, &req);
    assert_true(s.we_refresh);
    assert_false(req);
    /* no Session-Expires: no timer unless we ask for one */
    tl_sip_st_uas(invite("Supported: timer\r\n"), 90, 0, &s, &req);
    assert_int_equal(s.se, 0);
    tl_sip_st_uas(invite("Supported: timer\r\nMin-SE: 600\r\n"), 90, 300, &s, &req);
    assert_int_equal(s.se, 600); /* the request's Min-SE raises ours */
    char h[80];
    struct tl_sip_st x = {1800, false};
    tl_sip_st_hdr(h, sizeof h, &x, false); /* our 2xx: the UAC refreshes */
    assert_string_equal(h, "Session-Expires: 1800;refresher=uac\r\n");
    x.we_refresh = true;
    tl_sip_st_hdr(h, sizeof h, &x, true); /* our refresh request */
    assert_string_equal(h, "Session-Expires: 1800;refresher=uac\r\n");
    tl_sip_st_hdr(h, sizeof h, &x, false);
    assert_string_equal(h, "Session-Expires: 1800;refresher=uas\r\n");
}

static void session_timer_arithmetic(void **st)
{
    (void)st;
    assert_int_equal(tl_sip_st_refresh_ms(1800), 900000);
    assert_int_equal(tl_sip_st_expire_ms(1800), 1800000 - 32000); /* min(32, SE/3) */
    assert_int_equal(tl_sip_st_expire_ms(90), 60000);
    assert_int_equal(tl_sip_st_expire_ms(3), 2000);
    struct tl_sip_st s;
    const char *ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKb\r\n"
                     "From: <sip:gw@gw.test>;tag=our\r\nTo: <sip:+1555@carrier>;tag=their\r\n"
                     "Call-ID: x1\r\nCSeq: 3 INVITE\r\nSession-Expires: 120;refresher=uas\r\n"
                     "Content-Length: 0\r\n\r\n";
    tl_sip_st_uac(dec(ok), &s);
    assert_int_equal(s.se, 120);
    assert_false(s.we_refresh);
}

static void answer_direction(void **st)
{
    (void)st;
    struct tl_pl a = TL_PL("v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n");
    struct tl_pl b = TL_PL("v=0\r\na=inactive\r\n");
    struct tl_pl c = TL_PL("v=0\r\na=recvonly");
    struct tl_pl d = TL_PL("v=0\r\nm=audio 1 RTP/AVP 0\r\n");
    assert_string_equal(tl_sip_sess_answer_dir(&a), "recvonly"); /* hold (RFC 3264 §6.1) */
    assert_string_equal(tl_sip_sess_answer_dir(&b), "inactive");
    assert_string_equal(tl_sip_sess_answer_dir(&c), "sendonly");
    assert_string_equal(tl_sip_sess_answer_dir(&d), "sendrecv");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_dialog_next_hop),
        cmocka_unit_test(uas_dialog_route_set_in_order),
        cmocka_unit_test(uac_dialog_route_set_reversed),
        cmocka_unit_test(cseq_rules_and_target_refresh),
        cmocka_unit_test(table_lookup),
        cmocka_unit_test(glare_delay),
        cmocka_unit_test(session_timer_uas),
        cmocka_unit_test(session_timer_arithmetic),
        cmocka_unit_test(answer_direction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
