/* sip/transport on a real loop and real sockets (issue 11 item 12): a connection error
 * found inside a send is reported to conn_err_h later, from the loop, never from inside
 * the send — the handler fails client transactions, whose users may send again, into code
 * still in the middle of the first send. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "sip/stack.h"

static bool in_send;
static int reports, reported_inside;
static uint64_t reported_conn;

static void on_err(uint64_t conn, int err, const char *why, void *arg)
{
    (void)err;
    (void)why;
    (void)arg;
    reports++;
    reported_inside += in_send;
    reported_conn = conn;
}

static void on_recv(const char *buf, size_t len, bool framing_err, const struct tl_sip_peer *peer,
                    void *arg)
{
    (void)buf;
    (void)len;
    (void)framing_err;
    (void)peer;
    (void)arg;
}

static void error_reported_after_send(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct tl_sip_tport_cfg cfg = {.listen = "127.0.0.1",
                                   .max_conns = 4,
                                   .idle_s = 30,
                                   .recv_h = on_recv,
                                   .conn_err_h = on_err,
                                   .ephemeral = true};
    struct tl_sip_tport *tp;
    assert_int_equal(tl_sip_tport_start(&tp, &loop, &cfg), 0);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

    uint64_t conn;
    assert_int_equal(tl_sip_tport_connect(tp, TL_SIP_TP_TCP, (struct sockaddr *)&sa, NULL, &conn),
                     0);
    struct tl_sip_peer peer = {.tp = TL_SIP_TP_TCP, .conn = conn, .tpo = tp};
    memcpy(&peer.sa, &sa, sizeof sa);
    /* up once a byte sent through the transport arrives at the accepted socket */
    assert_int_equal(tl_sip_tport_send(tp, &peer, "x", 1), 0);
    int afd = -1;
    char c;
    for (int i = 0; i < 100000; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        if (afd < 0)
            afd = accept(lfd, NULL, NULL);
        if (afd >= 0 && recv(afd, &c, 1, MSG_DONTWAIT) == 1)
            break;
    }
    assert_true(afd >= 0);
    /* the peer resets the connection; the loop has not seen it yet */
    struct linger lg = {1, 0};
    setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(afd);
    int r = 0;
    in_send = true;
    for (int i = 0; i < 8 && !r; i++) /* the first write after a reset may still be taken */
        r = tl_sip_tport_send(tp, &peer, "OPTIONS", 7);
    in_send = false;
    assert_int_not_equal(r, 0);
    assert_int_equal(reports, 0); /* not from inside the send */
    for (int i = 0; i < 100000 && !reports; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(reports, 1);
    assert_int_equal(reported_inside, 0);
    assert_true(reported_conn == conn);

    close(lfd);
    tl_sip_tport_stop(tp);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_reported_after_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
