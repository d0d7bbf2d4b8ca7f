/* The echo agent against a recording call: it must declare itself ready, give back every
 * frame byte-for-byte in order, echo DTMF as DTMF, and free itself on stop (LSan checks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "agent/agent.h"

struct tl_agent_call {
    uint8_t played[4096];
    size_t n_played;
    char digits[16];
    size_t n_digits;
    int ready_calls, ready_err, hangups;
};

static int rec_play(struct tl_agent_call *c, const uint8_t *ulaw, size_t len)
{
    assert_true(c->n_played + len <= sizeof c->played);
    memcpy(c->played + c->n_played, ulaw, len);
    c->n_played += len;
    return 0;
}
static int rec_mark(struct tl_agent_call *c, const char *name)
{
    (void)c;
    (void)name;
    return 0;
}
static int rec_clear(struct tl_agent_call *c)
{
    (void)c;
    return 0;
}
static int rec_dtmf(struct tl_agent_call *c, const char *d)
{
    size_t n = strlen(d);
    memcpy(c->digits + c->n_digits, d, n);
    c->n_digits += n;
    return 0;
}
static int rec_hangup(struct tl_agent_call *c, const char *r)
{
    (void)r;
    c->hangups++;
    return 0;
}
static int rec_transfer(struct tl_agent_call *c, const char *t)
{
    (void)c;
    (void)t;
    return 0;
}
static const struct tl_agent_call_ops rec_ops = {.play = rec_play,
                                                 .mark = rec_mark,
                                                 .clear = rec_clear,
                                                 .send_dtmf = rec_dtmf,
                                                 .hangup = rec_hangup,
                                                 .transfer = rec_transfer};

static void on_ready(struct tl_agent_call *c, int err, const char *why)
{
    (void)why;
    c->ready_calls++;
    c->ready_err = err;
}

static void test_echo_gives_back_audio_and_dtmf(void **state)
{
    (void)state;
    const struct tl_agent_ops *ops = tl_agent_builtin("echo");
    assert_non_null(ops);
    assert_null(tl_agent_builtin("nope"));
    struct tl_agent_call call = {0};
    struct tl_agent_conn *c = NULL;
    struct tl_agent_call_info info = {.call_id = "ca_x",
                                      .workspace_id = "ws_x",
                                      .agent_id = "ag_x",
                                      .number = "+493012345678",
                                      .from = "+15550001",
                                      .to = "+493012345678",
                                      .direction = "inbound",
                                      .sip_call_id = "abc@host"};
    assert_int_equal(ops->start(&c, &info, &call, &rec_ops, on_ready), 0);
    assert_non_null(c);
    assert_int_equal(call.ready_calls, 1);
    assert_int_equal(call.ready_err, 0);

    uint8_t frame[160], want[160 * 5];
    for (int f = 0; f < 5; f++) {
        for (int i = 0; i < 160; i++)
            frame[i] = (uint8_t)(f * 31 + i);
        memcpy(want + f * 160, frame, 160);
        ops->audio(c, frame, sizeof frame, (uint32_t)(f * 160));
    }
    assert_int_equal(call.n_played, sizeof want);
    assert_memory_equal(call.played, want, sizeof want);

    ops->dtmf(c, '5', 160);
    ops->dtmf(c, '#', 160);
    assert_int_equal(call.n_digits, 2);
    assert_memory_equal(call.digits, "5#", 2);
    ops->event(c, TL_AGENT_EV_HOLD);
    ops->stop(c, "bye_received");
}

/* parameters: hangup_after_ms asks the call to hang up once, on the loop's clock; a bad
 * value is ignored; stop() before it fires cancels it (the loop then has nothing left) */
static void test_echo_hangup_after_ms(void **state)
{
    (void)state;
    const struct tl_agent_ops *ops = tl_agent_builtin("echo");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct tl_agent_param p[2] = {{"greeting", "hi"}, {"hangup_after_ms", "30"}};
    struct tl_agent_call call = {0};
    struct tl_agent_conn *c = NULL;
    struct tl_agent_call_info info = {.call_id = "ca_x",
                                      .workspace_id = "ws_x",
                                      .agent_id = "ag_x",
                                      .number = "+493012345678",
                                      .from = "+15550001",
                                      .to = "+493012345678",
                                      .direction = "inbound",
                                      .sip_call_id = "abc@host",
                                      .params = p,
                                      .n_params = 2,
                                      .loop = &loop};
    assert_int_equal(ops->start(&c, &info, &call, &rec_ops, on_ready), 0);
    assert_int_equal(call.ready_calls, 1);
    assert_int_equal(call.hangups, 0);
    uv_run(&loop, UV_RUN_DEFAULT); /* returns once the one-shot timer has fired */
    assert_int_equal(call.hangups, 1);
    ops->stop(c, "agent_hangup");
    uv_run(&loop, UV_RUN_DEFAULT); /* the timer's close callback frees the connection */

    const char *bad[] = {"", "-5", "12x", "0", "999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tl_agent_call call2 = {0};
        p[1].value = bad[i];
        assert_int_equal(ops->start(&c, &info, &call2, &rec_ops, on_ready), 0);
        assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0); /* no timer armed */
        ops->stop(c, "bye_received");
        assert_int_equal(call2.hangups, 0);
    }
    p[1].value = "60000";
    struct tl_agent_call call3 = {0};
    assert_int_equal(ops->start(&c, &info, &call3, &rec_ops, on_ready), 0);
    ops->stop(c, "bye_received"); /* before it fires */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(call3.hangups, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_echo_gives_back_audio_and_dtmf),
                                       cmocka_unit_test(test_echo_hangup_after_ms)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
