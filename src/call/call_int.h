/* call_int.h: private to src/call — the call object and the layer, shared by call.c (life
 * cycle, bridge, teardown, records) and inbound.c (the INVITE rules). */
#ifndef TL_CALL_INT_H
#define TL_CALL_INT_H

#include "agent/agent.h"
#include "call/call.h"
#include "media/g711.h"
#include "media/media.h"
#include "sdp/sdp.h"
#include "sip/dialog.h"
#include "sip/inauth.h"
#include "store/cluster.h"
#include "store/records.h"
#include "call/routing.h"

#define CALL_HOST_MAX 256
#define CALL_MARK_MAX 128 /* bytes of one mark name kept (Twilio marks are short labels) */
/* a carrier INVITE's X- headers handed to the agent (customParameters): caps on wire data */
#define CALL_XHEADERS_MAX 16
#define CALL_XNAME_MAX    64
#define CALL_XVALUE_MAX   256

struct tl_agent_call {
    struct tl_call *c;
};

struct tl_call_out; /* an outbound call's own state (outbound.c) */

struct tl_call {
    struct tl_call *next, **pprev;
    struct tl_call_layer *l;
    struct tl_agent_call acall;
    int hold;   /* our entry points on the C stack */
    bool ended; /* call_end ran: no new work, waiting for the parts to go */
    bool answered, established, held, late_offer, agent_starting, ms_closing;
    bool bye_wait;              /* our BYE is out: its outcome still goes into the record */
    struct tl_sip_sess *sess;   /* NULL once on_terminated ran */
    struct tl_media_stream *ms; /* NULL once on_close ran */
    const struct tl_agent_ops *aops;
    struct tl_agent_conn *agent; /* NULL once stopped */
    enum tl_sdp_policy policy;
    struct tl_sdp_sess sdp;      /* o= and our SRTP keys for the dialog — SECRET */
    struct tl_sdp_nego neg;      /* what is in force — SECRET (keys) */
    char maddr[TL_SDP_ADDR_MAX]; /* our media address (SDP c=), of family maf */
    int maf;
    char sip_local[TL_SDP_ADDR_MAX]; /* the local address the INVITE arrived on, of sip_af */
    int sip_af;
    bool sip_unspec; /* that address is 0.0.0.0 / :: (a wildcard listener's UDP) */
    char *answer;    /* our 200's body until it is sent — holds our key: wiped */
    size_t answer_len;
    struct tl_timer dur_tm, defer_tm, ans_tm;
    bool dur_armed, defer_armed, ans_armed;
    bool outbound;    /* we sent the INVITE (outbound.c): the early session is CANCELed */
    bool over_tcp;    /* signalling arrived over plain TCP (SDES keys readable on the path) */
    bool sdes_warned; /* the "SRTP keys in clear signalling" event went out for this call */
    bool unl_warned;  /* the rtp_source_mismatch event went out for this call */
    enum tl_media_latch latch; /* the trunk's rtp_latching; DEFAULT = the engine's */
    char src[64];              /* the INVITE's source address, for events */
    char defer_reason[TL_END_REASON_MAX + 1];
    /* names of the marks the agent set, in the order they fire (the media stream fires
     * marks in the order they were set): a ring grown on demand */
    char **marks;
    uint32_t mcap, mhead, mcount;
    uint32_t mark_seq;
    uint64_t audio_dropped; /* agent audio refused: the 60 s queue was full */
    bool drop_warned;
    bool agent_said;                   /* the agent called ready() or refuse() */
    bool transferring;                 /* a REFER of ours is under way (one at a time) */
    bool transferred;                  /* the carrier reported the transfer target answered */
    char out_address[TL_HOST_MAX + 1]; /* the number's outbound trunk: transfer targets */
    struct tl_call_out *out;           /* outbound calls: placement state; NULL inbound */
    /* the inbound trunk's origination URL: where the call goes when the number has no
     * agent or its agent cannot be reached (relay.c); "" = none */
    char orig_url[TL_URI_MAX + 1];
    bool relayed;    /* the agent is the relay to orig_url */
    bool fb_pending; /* the agent failed inside its own start(): fall back after it */
    struct tl_call_record rec;
};

struct tl_call_layer {
    struct tl_call_cfg cfg;
    char host[CALL_HOST_MAX];
    char public_ip[TL_SDP_ADDR_MAX];
    int public_af; /* public_ip's family: it is our media address for that family only */
    struct tl_call *calls;
    size_t n; /* not ended */
    bool closing;
    unsigned drain_retry_s; /* > 0: draining (tl_call_layer_drain) */
    struct tl_sip_digest_server *dsrv;
    enum tl_sip_digest_alg algs[3];
    struct tl_call_rate *rate;
    struct tl_call_authguard *guard; /* digest guessing: back-off, bans, events */
    /* issue 11 item 2: untrusted INVITEs all meet the same digest check, against these
     * random credentials when the number has none of its own (or does not exist) */
    char nobody_user[24], nobody_pass[48];
    struct tl_sdp sdp_a, sdp_b; /* scratch (22 KB each): the loop thread is single */
    struct tl_sip_sess_h out_h; /* outbound calls' session callbacks (outbound.c) */
    /* outbound calls per minute, one bucket per workspace that placed calls (outbound.c);
     * as many as there are workspaces, which only the operator creates */
    struct tl_call_bucket *buckets;
    size_t n_buckets, cap_buckets;
};

extern const struct tl_sip_sess_h tl__call_sess_h;
/* the origination URL as the call's other end, a B2BUA leg (relay.c) */
extern const struct tl_agent_ops tl__call_relay;
extern const struct tl_media_stream_cb tl__call_media_cb;
extern const struct tl_agent_call_ops tl__call_agent_ops;

void tl__call_hold(struct tl_call *c);
void tl__call_release(struct tl_call *c);
/* Ends the call once: reason for the record; early_status (with hdrs) is the final
 * response when the INVITE is not answered yet (0 = 480). */
void tl__call_end(struct tl_call *c, const char *reason, uint16_t early_status, const char *hdrs);
/* The agent refused the call before answering it (agent.h refuse). */
int tl__call_refuse(struct tl_call *c, int sip_code, const char *end_reason, const char *why);
/* Queues the call record as it is now (start, answer, end). */
void tl__call_record(struct tl_call *c);
/* Applies our SDP direction to the media stream and tells the agent of hold/resume. */
void tl__call_direction(struct tl_call *c, enum tl_sdp_dir ours);
/* SRTP negotiated over TCP signalling: one warning event per call (docs/calls.md). */
void tl__call_sdes_check(struct tl_call *c);
/* At the answer: the one-way-audio watch of the call's stream (one_way_audio_s). */
void tl__call_watch_audio(struct tl_call *c);
/* A Reason header value's text (RFC 3326 quoted string) from a far end's or an agent's
 * words: printable ASCII, no quote or backslash, capped at cap - 1 bytes. */
void tl__call_reason_text(char *dst, size_t cap, const char *src);
/* The media stream's counters into the call record (packets, loss, jitter, drops). */
void tl__call_media_stats(struct tl_call *c);
/* Queues a diagnostic event about a call (its workspace and number). */
void tl__call_event_c(struct tl_call *c, const char *code, const char *hint, int status,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* The same with more members for the event's details: `extra` is ",\"k\":v…" JSON text that
 * the caller built from values it controls (numbers, formatted addresses), or NULL. */
void tl__call_event_cx(struct tl_call *c, const char *code, const char *hint, int status,
                       const char *extra, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Queues a diagnostic event of a number by its ids (a call refused before it exists). */
void tl__call_event_n(struct tl_call_layer *l, const char *workspace_id, const char *number_id,
                      const char *code, const char *hint, int status, const char *extra,
                      const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Queues a diagnostic event; rt NULL = operator level. fmt: the message. */
void tl__call_event(struct tl_call_layer *l, const struct tl_route *rt, const char *code,
                    const char *hint, const char *source, int status, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* "ringing", "in-progress", "completed" (control.c) */
const char *tl__call_status(const struct tl_call *c);

void tl__call_invite(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                     void *arg);

/* inbound.c, shared with outbound.c: our media stream (pending: codec and keys come with
 * the answer), and the local address the kernel sends from towards remote */
int tl__call_open_media(struct tl_call *c, bool have_remote);
int tl__call_route_local(int af, const char *remote, char *out, size_t cap);

/* ---- outbound.c ---- */
/* Fills l->out_h (at layer open). */
void tl__call_out_init(struct tl_call_layer *l);
/* Loop thread: admits and starts the call rq asks for, taking rq (freed and wiped by the
 * call); *rec is the queued call's record. 0, or an errno (rq untouched): ESHUTDOWN,
 * ENOSPC (max_calls), EBUSY / EAGAIN (the workspace's outbound caps), EINVAL, ENOMEM. */
int tl__call_place(struct tl_call_layer *l, struct tl_call_request *rq, struct tl_call_record *rec);
/* From tl__call_end: stops what an outbound call still has running of its own. */
void tl__call_out_end(struct tl_call *c);
/* From call_free: the outbound state goes (secrets wiped). */
void tl__call_out_free(struct tl_call *c);

#endif
