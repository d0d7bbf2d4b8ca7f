/* agent: what answers a call. The call layer (src/call) drives an agent through this
 * interface; builtin agents (echo) and the WebSocket bridge (Twilio Media Streams
 * compatible, a later issue) implement it.
 *
 * Audio at this interface is G.711 μ-law, 8 kHz, mono — what Twilio Media Streams speaks,
 * so the WebSocket bridge passes payloads through untouched; the call layer converts
 * A-law legs. Frames IN are 20 ms (160 bytes) as the media clock delivers them; audio OUT
 * may be any size: the call queues it and the media clock paces it (agents such as
 * Pipecat send 2 s of silence in one message).
 *
 * Threading: everything runs on the daemon's loop thread. Ownership: the call owns the
 * agent connection from start() until it calls stop(); after stop() returns the call never
 * touches the connection again and the agent frees it (now or in a close callback). */
#ifndef TL_AGENT_H
#define TL_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct uv_loop_s;

struct tl_agent_param {
    const char *key, *value;
};

struct tl_agent_call_info {
    const char *call_id;      /* our call record id (ca_…) */
    const char *workspace_id; /* ws_… */
    const char *agent_id;     /* ag_… */
    const char *number;       /* our number, E.164 */
    const char *from;         /* caller (inbound) or callee (outbound), E.164 or SIP user */
    const char *to;
    const char *direction; /* "inbound" | "outbound" */
    const char *sip_call_id;
    /* the agent record's `parameters` (Twilio customParameters for WebSocket agents; knobs
     * for builtins, e.g. echo's hangup_after_ms). Like every pointer here, valid during
     * start() only: copy what is needed. */
    const struct tl_agent_param *params;
    size_t n_params;
    struct uv_loop_s *loop; /* the loop the call runs on (timers, sockets); NULL in tests */
};

/* What an agent may ask of its call. Every function returns 0 or an errno (ENOTCONN once
 * the call is ending); none blocks. */
struct tl_agent_call;
struct tl_agent_call_ops {
    /* queue μ-law audio for the caller (any length; capped by the call's queue) */
    int (*play)(struct tl_agent_call *call, const uint8_t *ulaw, size_t len);
    /* name comes back through tl_agent_ops.mark_done once the audio queued before it has
     * played, immediately when nothing is queued, and on clear */
    int (*mark)(struct tl_agent_call *call, const char *name);
    /* drop queued audio (barge-in); pending marks are reported done */
    int (*clear)(struct tl_agent_call *call);
    int (*send_dtmf)(struct tl_agent_call *call, const char *digits); /* RFC 4733 out */
    int (*hangup)(struct tl_agent_call *call, const char *reason);
    int (*transfer)(struct tl_agent_call *call, const char *target); /* REFER (later) */
};

enum tl_agent_event {
    TL_AGENT_EV_HOLD,   /* the far end put the call on hold: no audio expected */
    TL_AGENT_EV_RESUME, /* and took it off */
};

struct tl_agent_conn; /* one agent's state for one call */

struct tl_agent_ops {
    const char *kind; /* "builtin:echo", "websocket" */
    /* Connects the agent for a call. ready(call, 0) when it can take audio — the call
     * answers the carrier (200 OK) only then —, or ready(call, err) if it cannot (the
     * call refuses with 480/503). ready may be called from inside start(). If start()
     * returns an error, ready is never called and *cp is untouched. */
    int (*start)(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                 struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                 void (*ready)(struct tl_agent_call *call, int err));
    /* one 20 ms frame of μ-law from the caller; ts in 8 kHz units */
    void (*audio)(struct tl_agent_conn *c, const uint8_t *ulaw, size_t len, uint32_t ts);
    /* one digit from the caller, whether it came as RFC 4733 or in a SIP INFO */
    void (*dtmf)(struct tl_agent_conn *c, char digit, unsigned duration_ms);
    void (*mark_done)(struct tl_agent_conn *c, const char *name);
    void (*event)(struct tl_agent_conn *c, enum tl_agent_event ev);
    /* the call ended (reason: "bye_received", "media_timeout", …); last call into c */
    void (*stop)(struct tl_agent_conn *c, const char *reason);
};

/* The builtin agents by name ("echo"), or NULL. */
const struct tl_agent_ops *tl_agent_builtin(const char *name);

#endif
