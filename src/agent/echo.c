/* The builtin "echo" agent: the caller hears themselves. It is the demo that proves a
 * trunk works end to end (signalling, media both ways, SRTP) before any AI is involved,
 * and the load the call benchmark drives. It adds no delay of its own: each frame is
 * queued for playout as it arrives, so the echo lags by the media clock's pacing only.
 *
 * Parameters (the agent record's `parameters`, docs/calls.md):
 *   hangup_after_ms  the agent hangs up this long after the call starts (a demo and test
 *                    knob for the "agent hangs up" path; absent or 0 = never). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "agent/agent.h"

#define HANGUP_MAX_MS 86400000ul /* one day: anything longer is a typo */

struct tl_agent_conn {
    struct tl_agent_call *call;
    const struct tl_agent_call_ops *ops;
    bool timer_on;
    uv_timer_t timer; /* hangup_after_ms */
};

/* hangup_after_ms as a number of ms; 0 when absent, empty or not a plain decimal */
static uint64_t hangup_after(const struct tl_agent_call_info *info)
{
    for (size_t i = 0; i < info->n_params; i++) {
        if (strcmp(info->params[i].key, "hangup_after_ms"))
            continue;
        const char *v = info->params[i].value;
        char *end;
        errno = 0;
        unsigned long ms = strtoul(v, &end, 10);
        if (!*v || *end || errno || *v == '-' || ms > HANGUP_MAX_MS)
            return 0;
        return ms;
    }
    return 0;
}

static void on_hangup_timer(uv_timer_t *t)
{
    struct tl_agent_conn *c = t->data;
    c->ops->hangup(c->call, "hangup_after_ms");
}

static int echo_start(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                      struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                      void (*ready)(struct tl_agent_call *call, int err, const char *why))
{
    struct tl_agent_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->call = call;
    c->ops = call_ops;
    uint64_t ms = hangup_after(info);
    if (ms && info->loop) {
        uv_timer_init(info->loop, &c->timer);
        c->timer.data = c;
        uv_timer_start(&c->timer, on_hangup_timer, ms, 0);
        c->timer_on = true;
    }
    *cp = c;
    ready(call, 0, NULL);
    return 0;
}

static void echo_audio(struct tl_agent_conn *c, const uint8_t *ulaw, size_t len, uint32_t ts)
{
    (void)ts;
    c->ops->play(c->call, ulaw, len);
}

/* DTMF is echoed as DTMF, so a caller pressing keys hears them back as tones */
static void echo_dtmf(struct tl_agent_conn *c, char digit, unsigned duration_ms)
{
    (void)duration_ms;
    char d[2] = {digit, '\0'};
    c->ops->send_dtmf(c->call, d);
}

static void echo_mark_done(struct tl_agent_conn *c, const char *name)
{
    (void)c;
    (void)name;
}

static void echo_event(struct tl_agent_conn *c, enum tl_agent_event ev)
{
    (void)c;
    (void)ev;
}

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void echo_stop(struct tl_agent_conn *c, const char *reason)
{
    (void)reason;
    if (c->timer_on) /* freed in the close callback (agent.h allows it) */
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    else
        free(c);
}

static const struct tl_agent_ops echo_ops = {
    .kind = "builtin:echo",
    .start = echo_start,
    .audio = echo_audio,
    .dtmf = echo_dtmf,
    .mark_done = echo_mark_done,
    .event = echo_event,
    .stop = echo_stop,
};

const struct tl_agent_ops *tl_agent_builtin(const char *name)
{
    if (name && !strcmp(name, "echo"))
        return &echo_ops;
    return NULL;
}
