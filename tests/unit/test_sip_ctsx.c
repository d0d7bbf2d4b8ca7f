/* RFC 3261 §17.1 client transactions on a fake clock: no sockets, no loop. The send
 * callback records what would go on the wire (requests, retransmissions, the non-2xx ACK);
 * "now" is a plain counter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sip/stack.h"
#include "sip_test_util.h"

struct rec {
    int resps, finals, errs, last_err;
    uint16_t last_code;
};
static struct rec R;

static void on_ev(struct tl_sip_ctr *t, const struct tl_sip_msg *resp, int err, void *arg)
{
    (void)t;
    (void)arg;
    if (!resp) {
        R.errs++;
        R.last_err = err;
        return;
    }
    R.resps++;
    R.last_code = resp->scode;
    if (resp->scode >= 200)
        R.finals++;
}

struct fx {
    struct tl_theap heap;
    struct tl_sip_ctr_layer *l;
    struct tl_sip_peer udp, tcp;
    uint64_t now;
};

static int setup(void **state)
{
    static struct fx f;
    memset(&f, 0, sizeof f);
    memset(&R, 0, sizeof R);
    memset(&W, 0, sizeof W);
    tl_theap_init(&f.heap);
    struct tl_sip_ctr_cfg cfg = {.t1 = 500, .t2 = 4000, .t4 = 5000, .send = fake_send};
    assert_int_equal(tl_sip_ctr_layer_alloc(&f.l, &cfg, &f.heap), 0);
    f.udp.tp = TL_SIP_TP_UDP;
    f.tcp.tp = TL_SIP_TP_TCP;
    f.tcp.conn = 7;
    f.now = 1000;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tl_sip_ctr_layer_free(f->l);
    tl_theap_free(&f->heap);
    return 0;
}

static char reqbuf[2048];

static const char *request(const char *method, const char *branch)
{
    snprintf(reqbuf, sizeof reqbuf,
             "%s sip:+4930@carrier.example SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=%s;rport\r\nMax-Forwards: 70\r\n"
             "Route: <sip:edge.example;lr>\r\n"
             "From: <sip:a@gw>;tag=f1\r\nTo: <sip:+4930@carrier.example>\r\nCall-ID: c1@gw\r\n"
             "CSeq: 5 %s\r\nContent-Length: 0\r\n\r\n",
             method, branch, method);
    return reqbuf;
}

static char rbuf[2048];
static struct tl_sip_msg rmsg;

static const struct tl_sip_msg *resp(int code, const char *method, const char *branch)
{
    snprintf(rbuf, sizeof rbuf,
             "SIP/2.0 %d X\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=%s;rport=5060\r\n"
             "From: <sip:a@gw>;tag=f1\r\nTo: <sip:+4930@carrier.example>;tag=t9\r\n"
             "Call-ID: c1@gw\r\nCSeq: 5 %s\r\nContent-Length: 0\r\n\r\n",
             code, branch, method);
    assert_int_equal(tl_sip_msg_decode(&rmsg, rbuf, strlen(rbuf)), 0);
    return &rmsg;
}

static void advance(struct fx *f, uint64_t ms)
{
    heap_advance(&f->heap, &f->now, ms);
}

static struct tl_sip_ctr *start(struct fx *f, const char *method, enum tl_sip_method mid,
                                const struct tl_sip_peer *peer)
{
    struct tl_sip_ctr *t = NULL;
    const char *b = request(method, "z9hG4bKc1");
    assert_int_equal(
        tl_sip_ctr_start(f->l, &t, mid, "z9hG4bKc1", b, strlen(b), peer, on_ev, NULL, f->now), 0);
    return t;
}

/* timer A: T1, 2T1, 4T1…; timer B: ETIMEDOUT at 64*T1 (§17.1.1.2) */
static void invite_timer_a_b(void **state)
{
    struct fx *f = *state;
    start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->udp);
    assert_int_equal(W.sent, 1);
    advance(f, 500);
    assert_int_equal(W.sent, 2);
    advance(f, 1000);
    assert_int_equal(W.sent, 3);
    advance(f, 2000);
    assert_int_equal(W.sent, 4);
    advance(f, 32000 - 3500 - 10);
    assert_int_equal(R.errs, 0);
    advance(f, 20);
    assert_int_equal(R.errs, 1);
    assert_int_equal(R.last_err, ETIMEDOUT);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);
}

/* a provisional stops A and B; a non-2xx is ACKed with the same branch and the response's
 * To tag (§17.1.1.3); its retransmission is re-ACKed, not passed up; D ends it */
static void invite_non2xx_ack(void **state)
{
    struct fx *f = *state;
    start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->udp);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(180, "INVITE", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.resps, 1);
    advance(f, 60000);
    assert_int_equal(W.sent, 1); /* no A in Proceeding, no B */
    assert_int_equal(R.errs, 0);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(486, "INVITE", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.finals, 1);
    assert_int_equal(W.sent, 2);
    assert_non_null(strstr(W.last, "ACK sip:+4930@carrier.example SIP/2.0\r\n"));
    assert_non_null(strstr(W.last, "branch=z9hG4bKc1"));
    assert_non_null(strstr(W.last, ";tag=t9"));
    assert_non_null(strstr(W.last, "CSeq: 5 ACK"));
    assert_non_null(strstr(W.last, "Route: <sip:edge.example;lr>"));
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(486, "INVITE", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(W.sent, 3);
    assert_int_equal(R.finals, 1);
    advance(f, 32000);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);
}

/* 2xx ends the INVITE transaction at once; a retransmitted 2xx matches nothing (it goes to
 * the stack's stray hook); the ACK is the TU's */
static void invite_2xx(void **state)
{
    struct fx *f = *state;
    start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->udp);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "INVITE", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.finals, 1);
    assert_int_equal(W.sent, 1);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "INVITE", "z9hG4bKc1"), &f->udp, f->now),
                     ENOENT);
}

/* §17.1.3: branch AND CSeq method; a CANCEL response does not reach the INVITE */
static void matching(void **state)
{
    struct fx *f = *state;
    start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->udp);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "CANCEL", "z9hG4bKc1"), &f->udp, f->now),
                     ENOENT);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(180, "INVITE", "z9hG4bKxx"), &f->udp, f->now),
                     ENOENT);
    assert_int_equal(R.resps, 0);
}

/* non-INVITE: E doubles to T2, T2 once Proceeding; F times out; K absorbs then ends */
static void non_invite_e_f_k(void **state)
{
    struct fx *f = *state;
    start(f, "OPTIONS", TL_SIP_METHOD_OPTIONS, &f->udp);
    advance(f, 500 + 1000 + 2000 + 4000);
    assert_int_equal(W.sent, 5);
    advance(f, 4000);
    assert_int_equal(W.sent, 6); /* capped at T2 */
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(100, "OPTIONS", "z9hG4bKc1"), &f->udp, f->now), 0);
    advance(f, 4000);
    assert_int_equal(W.sent, 7);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "OPTIONS", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.finals, 1);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "OPTIONS", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.finals, 1); /* absorbed in Completed */
    advance(f, 5000);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);

    memset(&R, 0, sizeof R);
    memset(&W, 0, sizeof W);
    start(f, "OPTIONS", TL_SIP_METHOD_OPTIONS, &f->udp);
    advance(f, 32000);
    assert_int_equal(R.errs, 1);
    assert_int_equal(R.last_err, ETIMEDOUT);
}

/* reliable transports: no retransmissions; K and D are zero; a dead connection fails
 * the transactions on it */
static void reliable(void **state)
{
    struct fx *f = *state;
    start(f, "OPTIONS", TL_SIP_METHOD_OPTIONS, &f->tcp);
    advance(f, 10000);
    assert_int_equal(W.sent, 1);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(200, "OPTIONS", "z9hG4bKc1"), &f->tcp, f->now), 0);
    advance(f, 10);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);

    start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->tcp);
    tl_sip_ctr_conn_failed(f->l, 7, ECONNRESET);
    assert_int_equal(R.errs, 1);
    assert_int_equal(R.last_err, ECONNRESET);
    assert_int_equal(tl_sip_ctr_count(f->l), 0);
}

/* a detached transaction keeps absorbing and ACKing but never calls its TU again */
static void detached(void **state)
{
    struct fx *f = *state;
    struct tl_sip_ctr *t = start(f, "INVITE", TL_SIP_METHOD_INVITE, &f->udp);
    tl_sip_ctr_detach(t);
    assert_int_equal(tl_sip_ctr_recv(f->l, resp(487, "INVITE", "z9hG4bKc1"), &f->udp, f->now), 0);
    assert_int_equal(R.resps, 0);
    assert_non_null(strstr(W.last, "ACK sip:"));
}

/* the words outbound calls and `trunkline probe` give a request that got no final answer */
static void failed_step(void **state)
{
    (void)state;
    assert_string_equal(tl_sip_failed_step(ENOENT, false), "dns");
    assert_string_equal(tl_sip_failed_step(EIO, true), "dns");
    assert_string_equal(tl_sip_failed_step(ETIMEDOUT, false), "dns"); /* no hop yet */
    assert_string_equal(tl_sip_failed_step(ETIMEDOUT, true), "timeout");
    assert_string_equal(tl_sip_failed_step(EPROTO, true), "tls");
    assert_string_equal(tl_sip_failed_step(ECONNREFUSED, true), "connect");
    assert_string_equal(tl_sip_failed_step(EHOSTUNREACH, true), "connect");
    assert_string_equal(tl_sip_failed_step(ENOMEM, true), "internal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(invite_timer_a_b, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_non2xx_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_2xx, setup, teardown),
        cmocka_unit_test_setup_teardown(matching, setup, teardown),
        cmocka_unit_test_setup_teardown(non_invite_e_f_k, setup, teardown),
        cmocka_unit_test_setup_teardown(reliable, setup, teardown),
        cmocka_unit_test_setup_teardown(detached, setup, teardown),
        cmocka_unit_test(failed_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
