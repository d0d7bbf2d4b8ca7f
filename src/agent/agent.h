/* agent: what answers a call. The call layer (src/call) drives an agent through this
 * interface; builtin agents (echo) and the WebSocket bridge (wsagent.c: Twilio Media
 * Streams, docs/agents.md) implement it. Direction-agnostic: inbound and outbound calls
 * use it the same way.
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
struct tl_net_resolver;
struct tl_net_guard;
struct tl_tls_ctx;

struct tl_agent_param {
    const char *key, *value;
};

/* What the daemon shares with every WebSocket agent (loop thread; all borrowed). */
struct tl_agent_conn;
struct tl_agent_env {
    struct tl_net_resolver *resolver; /* DNS through c-ares */
    struct tl_tls_ctx *tls;           /* client context: system trust store (+ CA file) */
    const struct tl_net_guard *guard; /* where agents may be reached (net/guard.h) */
    const char *insecure_hosts;       /* ws:// accepted for these (agent_insecure_hosts) */
    size_t send_queue_max;            /* bytes unsent before the call ends; 0: default */
    const char *ca_file;              /* agent_tls_ca_file: extra trust anchors (or "") */
    /* the WebSocket agents' connections still open, also those closing after their call
     * ended (wsagent.c keeps the list) */
    struct tl_agent_conn *conns;
    size_t live;
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
    /* websocket agents */
    const char *number_id;                /* pn_… */
    const char *account_sid, *call_sid;   /* Twilio-shaped names (AC…, CA…) */
    const char *url;                      /* ws:// or wss:// */
    const struct tl_agent_param *headers; /* upgrade headers (values: API keys) */
    size_t n_headers;
    unsigned connect_timeout_ms;
    const struct tl_agent_param *sip_headers; /* the carrier INVITE's X- headers */
    size_t n_sip_headers;
    struct tl_agent_env *env;
    /* twiml agents (url is the voice URL, connect_timeout_ms each request's deadline) */
    bool method_get;
    const char *fallback_url, *status_callback; /* "" or NULL: none */
    const char *auth_token; /* the workspace's Twilio auth token: keys X-Twilio-Signature */
    const char *from_uri;   /* the caller as the INVITE's From URI (SipHeader-less Twilio
                             * fields such as Caller need only the user part: from) */
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
    /* reason: the record's end_reason — "agent_hangup" (the agent asked), "agent_closed"
     * (it closed its connection), "agent_error" (it broke the protocol), "agent_lost" (the
     * connection failed: no pong, reset), "agent_not_reading" (its send queue overflowed) */
    int (*hangup)(struct tl_agent_call *call, const char *reason);
    /* blind transfer (REFER) to "+E.164" or a sip:/sips: URI; progress comes back through
     * tl_agent_ops.transfer_status */
    int (*transfer)(struct tl_agent_call *call, const char *target);
    /* a diagnostic event on the call's number (code from store/records.h) */
    void (*event)(struct tl_agent_call *call, const char *code, const char *hint,
                  const char *message);
    /* Instead of ready(): the call is not answered but refused with sip_code (400–699) and
     * a Reason header carrying why; the record says end_reason (one of "rejected",
     * "twiml_error", "twiml_hangup", "agent_unreachable"). The agent has said what it
     * wanted in an event of its own; stop() follows. EALREADY once ready() was called. */
    int (*refuse)(struct tl_agent_call *call, int sip_code, const char *end_reason,
                  const char *why);
};

enum tl_agent_event {
    TL_AGENT_EV_HOLD,        /* the far end put the call on hold: no audio expected */
    TL_AGENT_EV_RESUME,      /* and took it off */
    TL_AGENT_EV_ESTABLISHED, /* the carrier acknowledged our 200 (ACK): in-dialog requests
                              * such as a transfer may go out from now on */
};

struct tl_agent_conn; /* one agent's state for one call */

struct tl_agent_ops {
    const char *kind; /* "builtin:echo", "websocket" */
    /* Connects the agent for a call. ready(call, 0) when it can take audio — the call
     * answers the carrier (200 OK) only then —, or ready(call, err) if it cannot (the
     * call refuses with 480), with why: a sentence for the event and the Reason header
     * ("agent certificate for bot.example.com is not trusted (self-signed certificate)").
     * ready may be called from inside start(). If start() returns an error, ready is never
     * called and *cp is untouched. */
    int (*start)(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                 struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                 void (*ready)(struct tl_agent_call *call, int err, const char *why));
    /* one 20 ms frame of μ-law from the caller; ts in 8 kHz units */
    void (*audio)(struct tl_agent_conn *c, const uint8_t *ulaw, size_t len, uint32_t ts);
    /* one digit from the caller, whether it came as RFC 4733 or in a SIP INFO */
    void (*dtmf)(struct tl_agent_conn *c, char digit, unsigned duration_ms);
    void (*mark_done)(struct tl_agent_conn *c, const char *name);
    void (*event)(struct tl_agent_conn *c, enum tl_agent_event ev);
    /* progress of a transfer it asked for: "trying", "ringing", "completed", "failed",
     * with the SIP status (0: none). May be NULL. */
    void (*transfer_status)(struct tl_agent_conn *c, const char *status, int sip_code);
    /* the call ended (reason: "bye_received", "media_timeout", …); last call into c */
    void (*stop)(struct tl_agent_conn *c, const char *reason);
};

/* ---- diagnostic events about agents (the call layer records them on the number) ---- */
#define TL_EV_AGENT_UNREACHABLE "agent_unreachable"
/* the hint is written per failure by the agent layer (what failed, in plain words) */
#define TL_EV_AGENT_PROTOCOL_ERROR "agent_protocol_error"
#define TL_EV_HINT_AGENT_PROTOCOL_ERROR                                                            \
    "The agent sent something that is not a Twilio Media Streams message (see the message for "    \
    "what). Check that the bot speaks the bidirectional Media Streams protocol: JSON text "        \
    "frames, base64 mu-law audio in media.payload."
#define TL_EV_AGENT_LOST "agent_lost"
#define TL_EV_HINT_AGENT_LOST                                                                      \
    "The connection to the agent failed during the call (see the message). Check the bot's "       \
    "logs and anything between the gateway and the bot that may drop WebSocket connections."
#define TL_EV_AGENT_NOT_READING "agent_not_reading"
#define TL_EV_HINT_AGENT_NOT_READING                                                               \
    "The agent stopped reading its WebSocket: the caller's audio piled up unsent, so the call "    \
    "was ended instead of growing memory without end. A bot must read the socket continuously, "   \
    "even while it is busy generating speech."
#define TL_EV_AGENT_AUDIO_DROPPED "agent_audio_dropped"
#define TL_EV_HINT_AGENT_AUDIO_DROPPED                                                             \
    "The agent sends audio faster than real time and more than 60 s were waiting to be played: "   \
    "the rest was dropped. Send audio at about the pace it plays, and send clear to interrupt."

/* The builtin agents by name ("echo"), or NULL. */
const struct tl_agent_ops *tl_agent_builtin(const char *name);
/* The WebSocket agent (Twilio Media Streams; wsagent.c). */
extern const struct tl_agent_ops tl_agent_websocket;
/* The TwiML agent (Twilio voice webhooks; twimlagent.c): fetches the voice URL's TwiML
 * and carries it out, with the WebSocket agent for <Connect><Stream>. */
extern const struct tl_agent_ops tl_agent_twiml;

/* ---- diagnostic events of TwiML agents ---- */
#define TL_EV_VOICE_URL_FAILED "voice_url_failed"
#define TL_EV_HINT_VOICE_URL_FAILED                                                                \
    "The bot's voice URL (and its fallback URL, when set) did not answer with TwiML (see the "     \
    "message for what failed). Check that the URL is right, that the bot's HTTP server is up and " \
    "reachable from this gateway, and that it answers within the agent's timeout_ms."
#define TL_EV_TWIML_INVALID "twiml_invalid"
#define TL_EV_HINT_TWIML_INVALID                                                                   \
    "The bot answered with something that is not TwiML trunkline can read (see the message). "     \
    "Answer with an XML document whose root is <Response>, as for Twilio."
#define TL_EV_TWIML_UNSUPPORTED "twiml_unsupported"
#define TL_EV_HINT_TWIML_UNSUPPORTED                                                               \
    "The bot's TwiML uses a verb or a form trunkline does not carry out (see the message); the "   \
    "call was ended rather than skipping it. docs/agents.md lists the TwiML supported: "           \
    "<Connect><Stream>, <Pause>, <Hangup>, <Reject>, <Redirect>, <Dial>, <Play digits>, <Say>."
/* Shutdown, after every call has ended: drops the connections still closing (a bot that
 * never answers our close frame must not hold the daemon). */
void tl_agent_ws_shutdown(struct tl_agent_env *env);

#endif
