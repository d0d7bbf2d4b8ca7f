/* RFC 3261 §17.2 server transactions on a fake clock: no sockets, no loop. The send
 * callback records what would go on the wire; "now" is a plain counter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "sip/stack.h"
#include "sip_test_util.h"

struct rec {
    int reqs, acks, terms, timeouts;
    struct tl_sip_tsx *tx;
};
static struct rec R;

static void on_req(struct tl_sip_tsx *tx, const struct tl_sip_msg *m, const struct tl_sip_peer *p,
                   void *arg)
{
    (void)m;
    (void)p;
    (void)arg;
    if (tx) {
        R.reqs++;
        R.tx = tx;
    } else {
        R.acks++;
    }
}

static void on_term(struct tl_sip_tsx *tx, bool timeout, void *arg)
{
    (void)arg;
    R.terms++;
    R.timeouts += timeout;
    if (tx == R.tx)
        R.tx = NULL;
}

struct fx {
    struct tl_theap heap;
    struct tl_sip_tsx_layer *l;
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
    struct tl_sip_tsx_cfg cfg = {
        .t1 = 500, .t2 = 4000, .t4 = 5000, .send = fake_send, .req_h = on_req, .term_h = on_term};
    assert_int_equal(tl_sip_tsx_layer_alloc(&f.l, &cfg, &f.heap), 0);
    f.udp.tp = TL_SIP_TP_UDP;
    f.tcp.tp = TL_SIP_TP_TCP;
    f.tcp.conn = 1;
    f.now = 1000;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tl_sip_tsx_layer_free(f->l);
    tl_theap_free(&f->heap);
    return 0;
}

static char bufs[8][2048];
static struct tl_sip_msg msgs[8];

static const struct tl_sip_msg *req(int slot, const char *method, const char *cseq_method,
                                    const char *branch, const char *totag)
{
    char *b = bufs[slot];
    snprintf(b, sizeof bufs[slot],
             "%s sip:u@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=%s\r\n"
             "From: <sip:a@h>;tag=f1\r\nTo: <sip:u@h>%s%s\r\nCall-ID: c1@h\r\n"
             "CSeq: 7 %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
             method, branch, totag ? ";tag=" : "", totag ? totag : "", cseq_method);
    assert_int_equal(tl_sip_msg_decode(&msgs[slot], b, strlen(b)), 0);
    return &msgs[slot];
}

static void advance(struct fx *f, uint64_t ms)
{
    heap_advance(&f->heap, &f->now, ms);
}

static void heap_order(void **state)
{
    (void)state;
    struct tl_theap h;
    struct tl_timer t[50];
    int n = 0;

    tl_theap_init(&h);
    memset(t, 0, sizeof t);
    for (int i = 0; i < 50; i++)
        assert_int_equal(tl_timer_start(&h, &t[i], (uint64_t)((i * 37) % 50), NULL), 0);
    tl_timer_stop(&h, &t[10]);
    uint64_t last = 0;
    while (tl_theap_next(&h) != UINT64_MAX) {
        uint64_t d = tl_theap_next(&h);
        assert_true(d >= last);
        last = d;
        struct tl_timer *top = h.v[0];
        tl_timer_stop(&h, top);
        n++;
    }
    assert_int_equal(n, 49);
    tl_theap_free(&h);
}

/* non-INVITE over UDP: retransmission gets the final again; timer J ends it at 64*T1 */
static void non_invite_udp(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "OPTIONS", "OPTIONS", "z9hG4bK1", NULL);
    assert_int_equal(tl_sip_tsx_recv(f->l, m, &f->udp, f->now), 0);
    assert_int_equal(R.reqs, 1);
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_TRYING);
    /* a retransmission in Trying is absorbed silently */
    assert_int_equal(tl_sip_tsx_recv(f->l, m, &f->udp, f->now), 0);
    assert_int_equal(W.sent, 0);
    assert_int_equal(tl_sip_tsx_respond(R.tx, 200, "SIP/2.0 200 OK\r\n", 16, f->now), 0);
    assert_int_equal(W.sent, 1);
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_COMPLETED);
    assert_int_equal(tl_sip_tsx_respond(R.tx, 200, "x", 1, f->now), EINVAL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(W.sent, 2);
    assert_string_equal(W.last, "SIP/2.0 200 OK\r\n");
    assert_int_equal(R.reqs, 1);
    advance(f, 64 * 500 - 20);
    assert_int_equal(R.terms, 0);
    advance(f, 30);
    assert_int_equal(R.terms, 1);
    assert_int_equal(tl_sip_tsx_count(f->l), 0);
}

/* non-INVITE over TCP: timer J is zero */
static void non_invite_tcp(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "OPTIONS", "OPTIONS", "z9hG4bK2", NULL);
    tl_sip_tsx_recv(f->l, m, &f->tcp, f->now);
    tl_sip_tsx_respond(R.tx, 200, "A", 1, f->now);
    assert_int_equal(R.terms, 0); /* deferred: the caller's pointer stays valid */
    tl_theap_run(&f->heap, f->now);
    assert_int_equal(R.terms, 1);
}

/* INVITE, non-2xx final over UDP: G doubles to T2, ACK stops it, I ends at T4 */
static void invite_non2xx_ack(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "INVITE", "INVITE", "z9hG4bK3", NULL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_PROCEEDING);
    tl_sip_tsx_respond(R.tx, 180, "180", 3, f->now);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now); /* retransmitted INVITE: 180 again */
    assert_int_equal(W.sent, 2);
    assert_string_equal(W.last, "180");
    tl_sip_tsx_respond(R.tx, 486, "486", 3, f->now);
    assert_int_equal(W.sent, 3);
    /* G at 500, 1500, 3500, 7500 (T1 doubling), 11500 (capped at T2 = 4000) */
    advance(f, 500);
    assert_int_equal(W.sent, 4);
    advance(f, 1000);
    assert_int_equal(W.sent, 5);
    advance(f, 2000);
    assert_int_equal(W.sent, 6);
    advance(f, 4000);
    assert_int_equal(W.sent, 7);
    advance(f, 4000);
    assert_int_equal(W.sent, 8);
    const struct tl_sip_msg *ack = req(1, "ACK", "ACK", "z9hG4bK3", "tt");
    tl_sip_tsx_recv(f->l, ack, &f->udp, f->now);
    assert_int_equal(R.acks, 0); /* consumed by the transaction */
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_CONFIRMED);
    advance(f, 4000);
    assert_int_equal(W.sent, 8);                 /* no more G */
    tl_sip_tsx_recv(f->l, ack, &f->udp, f->now); /* ACK retransmission absorbed */
    assert_int_equal(R.acks, 0);
    advance(f, 1010);
    assert_int_equal(R.terms, 1);
    assert_int_equal(R.timeouts, 0);
}

/* INVITE, non-2xx after a provisional, no ACK: timer H at 64*T1 ends it as a timeout */
static void invite_timer_h(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "INVITE", "INVITE", "z9hG4bK4", NULL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    tl_sip_tsx_respond(R.tx, 100, "100", 3, f->now);
    tl_sip_tsx_respond(R.tx, 480, "480", 3, f->now);
    advance(f, 64 * 500 + 10);
    assert_int_equal(R.terms, 1);
    assert_int_equal(R.timeouts, 1);
}

/* INVITE 2xx: Accepted (RFC 6026) absorbs retransmissions; the 2xx ACK goes to the TU */
static void invite_2xx_accepted(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "INVITE", "INVITE", "z9hG4bK5", NULL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    tl_sip_tsx_respond(R.tx, 200, "200", 3, f->now);
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_ACCEPTED);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(W.sent, 1); /* the TU retransmits 2xx, not the transaction */
    assert_int_equal(R.reqs, 1);
    const struct tl_sip_msg *ack = req(1, "ACK", "ACK", "z9hG4bK6other", "tt");
    tl_sip_tsx_recv(f->l, ack, &f->udp, f->now);
    assert_int_equal(R.acks, 1);
    advance(f, 64 * 500 + 10);
    assert_int_equal(R.terms, 1);
}

/* CANCEL matches the INVITE (§9.2) but is a transaction of its own */
static void cancel_matching(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *inv = req(0, "INVITE", "INVITE", "z9hG4bK7", NULL);
    tl_sip_tsx_recv(f->l, inv, &f->udp, f->now);
    struct tl_sip_tsx *itx = R.tx;
    const struct tl_sip_msg *can = req(1, "CANCEL", "CANCEL", "z9hG4bK7", NULL);
    tl_sip_tsx_recv(f->l, can, &f->udp, f->now);
    assert_int_equal(R.reqs, 2);
    assert_ptr_not_equal(R.tx, itx);
    assert_ptr_equal(tl_sip_tsx_find_invite(f->l, can), itx);
    const struct tl_sip_msg *other = req(2, "CANCEL", "CANCEL", "z9hG4bK8", NULL);
    assert_null(tl_sip_tsx_find_invite(f->l, other));
}

/* RFC 2543 peers (no magic cookie; RFC 4475 §3.2.1 bare cookie): matched on R-URI, From
 * tag, Call-ID, CSeq and Via; the ACK finds the INVITE */
static void rfc2543_matching(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "INVITE", "INVITE", "z9hG4bK", NULL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    tl_sip_tsx_respond(R.tx, 180, "180", 3, f->now);
    tl_sip_tsx_respond(R.tx, 486, "486", 3, f->now);
    const struct tl_sip_msg *m2 = req(1, "INVITE", "INVITE", "z9hG4bK", NULL);
    tl_sip_tsx_recv(f->l, m2, &f->udp, f->now);
    assert_int_equal(R.reqs, 1); /* retransmission */
    assert_int_equal(W.sent, 3);
    const struct tl_sip_msg *ack = req(2, "ACK", "ACK", "z9hG4bK", "tt");
    tl_sip_tsx_recv(f->l, ack, &f->udp, f->now);
    assert_int_equal(tl_sip_tsx_state(R.tx), TL_SIP_TSX_CONFIRMED);
}

static void many_transactions(void **state)
{
    struct fx *f = *state;
    char br[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(br, sizeof br, "z9hG4bKm%d", i);
        const struct tl_sip_msg *m = req(0, "OPTIONS", "OPTIONS", br, NULL);
        tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
        tl_sip_tsx_respond(R.tx, 200, "ok", 2, f->now);
    }
    assert_int_equal(tl_sip_tsx_count(f->l), 3000);
    advance(f, 64 * 500 + 10);
    assert_int_equal(tl_sip_tsx_count(f->l), 0);
    assert_int_equal(R.terms, 3000);
}

/* Issue 11 item 5: an INVITE refused before any provisional (no dialog, nothing agreed
 * with the source) is answered once over UDP: no timer G (it sent 11 copies over 32 s to a
 * spoofable address), no copy kept, the transaction gone at the next timer run. A
 * retransmitted INVITE is refused anew; its ACK matches nothing. */
static void invite_refusal_once(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "INVITE", "INVITE", "z9hG4bK9", NULL);
    assert_int_equal(tl_sip_tsx_recv(f->l, m, &f->udp, f->now), 0);
    assert_int_equal(tl_sip_tsx_respond(R.tx, 404, "404", 3, f->now), 0);
    assert_int_equal(W.sent, 1);
    tl_theap_run(&f->heap, f->now);
    assert_int_equal(tl_sip_tsx_count(f->l), 0);
    assert_int_equal(R.timeouts, 0);
    advance(f, 64 * 500 + 10);
    assert_int_equal(W.sent, 1); /* never retransmitted */
    const struct tl_sip_msg *ack = req(1, "ACK", "ACK", "z9hG4bK9", "tt");
    tl_sip_tsx_recv(f->l, ack, &f->udp, f->now);
    assert_int_equal(R.acks, 1); /* to the stray hook, which drops it */
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(R.reqs, 2); /* the retransmission is a new request */
}

/* the endpoint's stateless answers (OPTIONS, REGISTER, 4xx before a dialog): sent once,
 * nothing kept for 64*T1 */
static void stateless_non_invite(void **state)
{
    struct fx *f = *state;
    const struct tl_sip_msg *m = req(0, "OPTIONS", "OPTIONS", "z9hG4bK10", NULL);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    tl_sip_tsx_set_stateless(R.tx);
    tl_sip_tsx_respond(R.tx, 200, "200", 3, f->now);
    assert_int_equal(tl_sip_tsx_count(f->l), 1); /* until the next timer run */
    /* a retransmission before that run is answered anew, not absorbed in silence */
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(R.reqs, 2);
    tl_sip_tsx_set_stateless(R.tx);
    tl_sip_tsx_respond(R.tx, 200, "200", 3, f->now);
    assert_int_equal(W.sent, 2);
    tl_theap_run(&f->heap, f->now);
    assert_int_equal(tl_sip_tsx_count(f->l), 0);
    tl_sip_tsx_recv(f->l, m, &f->udp, f->now);
    assert_int_equal(R.reqs, 3);
}

static struct tl_sip_peer peer4(const char *ip)
{
    struct tl_sip_peer p = {.tp = TL_SIP_TP_TCP, .conn = 1};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&p.sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(5060);
    inet_pton(AF_INET, ip, &s4->sin_addr);
    return p;
}

/* Issue 11 item 6: live transactions are capped per source and for the whole layer; a
 * new request over a cap makes no transaction (EAGAIN: the endpoint answers 503
 * statelessly), and the counts come back as transactions end */
static void transaction_caps(void **state)
{
    struct fx *f = *state;
    tl_sip_tsx_layer_free(f->l);
    struct tl_sip_tsx_cfg cfg = {.t1 = 500,
                                 .t2 = 4000,
                                 .t4 = 5000,
                                 .send = fake_send,
                                 .req_h = on_req,
                                 .term_h = on_term,
                                 .max = 5,
                                 .max_per_src = 3};
    assert_int_equal(tl_sip_tsx_layer_alloc(&f->l, &cfg, &f->heap), 0);
    struct tl_sip_peer a = peer4("192.0.2.1"), b = peer4("198.51.100.7");
    char br[32];
    int i = 0;
    for (; i < 3; i++) {
        snprintf(br, sizeof br, "z9hG4bKa%d", i);
        assert_int_equal(tl_sip_tsx_recv(f->l, req(0, "INVITE", "INVITE", br, NULL), &a, f->now),
                         0);
    }
    assert_int_equal(tl_sip_tsx_count_src(f->l, (struct sockaddr *)&a.sa), 3);
    snprintf(br, sizeof br, "z9hG4bKa%d", i++);
    assert_int_equal(tl_sip_tsx_recv(f->l, req(0, "INVITE", "INVITE", br, NULL), &a, f->now),
                     EAGAIN);
    assert_int_equal(R.reqs, 3);
    /* a retransmission of a live one still matches (no new state) */
    assert_int_equal(
        tl_sip_tsx_recv(f->l, req(0, "INVITE", "INVITE", "z9hG4bKa0", NULL), &a, f->now), 0);
    /* another source has its own count, up to the global cap */
    bool shared = tl_sip_tsx_count_src(f->l, (struct sockaddr *)&b.sa) != 0; /* same slot */
    for (int k = 0; k < 2 && !shared; k++) {
        snprintf(br, sizeof br, "z9hG4bKb%d", k);
        assert_int_equal(tl_sip_tsx_recv(f->l, req(0, "OPTIONS", "OPTIONS", br, NULL), &b, f->now),
                         0);
        tl_sip_tsx_respond(R.tx, 200, "ok", 2, f->now); /* TCP: J = 0 */
    }
    if (!shared) {
        struct tl_sip_peer c = peer4("203.0.113.9");
        assert_int_equal(tl_sip_tsx_count(f->l), 5);
        assert_int_equal(
            tl_sip_tsx_recv(f->l, req(0, "OPTIONS", "OPTIONS", "z9hG4bKc", NULL), &c, f->now),
            EAGAIN);                    /* the global cap */
        tl_theap_run(&f->heap, f->now); /* the OPTIONS transactions end */
        assert_int_equal(tl_sip_tsx_count(f->l), 3);
        assert_int_equal(tl_sip_tsx_count_src(f->l, (struct sockaddr *)&b.sa), 0);
        assert_int_equal(
            tl_sip_tsx_recv(f->l, req(0, "OPTIONS", "OPTIONS", "z9hG4bKc", NULL), &c, f->now), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(heap_order),
        cmocka_unit_test_setup_teardown(non_invite_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(non_invite_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_non2xx_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_timer_h, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_2xx_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(rfc2543_matching, setup, teardown),
        cmocka_unit_test_setup_teardown(many_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_refusal_once, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_non_invite, setup, teardown),
        cmocka_unit_test_setup_teardown(transaction_caps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
