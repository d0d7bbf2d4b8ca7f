/* The builtin "echo" agent: the caller hears themselves. It is the demo that proves a
 * trunk works end to end (signalling, media both ways, SRTP) before any AI is involved,
 * and the load the call benchmark drives. It adds no delay of its own: each frame is
 * queued for playout as it arrives, so the echo lags by the media clock's pacing only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

struct tl_agent_conn {
    struct tl_agent_call *call;
    const struct tl_agent_call_ops *ops;
};

static int echo_start(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                      struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                      void (*ready)(struct tl_agent_call *call, int err))
{
    (void)info;
    struct tl_agent_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->call = call;
    c->ops = call_ops;
    *cp = c;
    ready(call, 0);
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

static void echo_stop(struct tl_agent_conn *c, const char *reason)
{
    (void)reason;
    free(c);
}

static const struct tl_agent_ops echo_ops = {
    "builtin:echo", echo_start, echo_audio, echo_dtmf, echo_mark_done, echo_event, echo_stop,
};

const struct tl_agent_ops *tl_agent_builtin(const char *name)
{
    if (name && !strcmp(name, "echo"))
        return &echo_ops;
    return NULL;
}
