/* call: the call object — one SIP session + one media stream + one agent connection — and
 * the inbound flow that makes it (DESIGN.md "The path of a call"; docs/calls.md has the
 * rules, refusals and settings as a user sees them).
 *
 * Inbound (inbound.c), in this order, each refusal answered and recorded as an event:
 *   rate limit per source (503) → number (404) → inbound trunk (403) → transport (403) →
 *   source address (403) → digest (401/403) → agent (480) → admission caps (503) →
 *   SDP offer/answer with the trunk's media policy (488) → media stream → 180 → agent
 *   start → 200 once the agent is ready → bridge.
 *
 * Ownership (one owner each; DESIGN.md invariants):
 *   - the layer owns every call (a list); a call owns its media stream, its agent
 *     connection and its interest in the SIP session (the session layer owns the session
 *     itself and tells us through on_terminated when it is gone);
 *   - a call is freed when all three are gone (session terminated, media on_close, agent
 *     stopped) and no entry point of ours is on the C stack (a hold count), so any
 *     callback may end the call from inside.
 *
 * Threading: the loop thread only. The routing cache and the recorder are the only things
 * shared with other threads; both are built for it (routing.h, records.h).
 *
 * Errors: 0 or a positive errno (core.h). */
#ifndef TL_CALL_H
#define TL_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/core.h"

struct tl_sip_stack;
struct tl_sip_sess_layer;
struct tl_media_engine;
struct tl_routing;
struct tl_recorder;
struct uv_loop_s;
struct tl_agent_env;
struct tl_cluster;

/* ---- digest guessing (authguard.c, issue 11 item 3): back-off and ban per source, a
 * counter per number; loop thread only ---- */
struct tl_call_authguard_cfg {
    uint32_t backoff_after; /* failures before each further one blocks the source */
    uint32_t ban_after;     /* failures that ban the source for ban_s (0: never) */
    uint32_t ban_s;
    uint32_t window_s;         /* failures forgotten after this long without one (600) */
    uint32_t number_threshold; /* failed attempts on one number that raise an event */
};
struct tl_call_authguard;
int tl_call_authguard_new(struct tl_call_authguard **gp, const struct tl_call_authguard_cfg *cfg);
void tl_call_authguard_free(struct tl_call_authguard *g);
/* false: sa is blocked or banned; refuse its credentials without verifying them */
bool tl_call_authguard_allowed(struct tl_call_authguard *g, const struct sockaddr *sa,
                               uint64_t now_ms);
/* a verified wrong answer from sa; true when it started a ban */
bool tl_call_authguard_failed(struct tl_call_authguard *g, const struct sockaddr *sa,
                              uint64_t now_ms);
void tl_call_authguard_passed(struct tl_call_authguard *g, const struct sockaddr *sa,
                              uint64_t now_ms);
/* a failed or refused attempt on number_id: true once per window at the threshold */
bool tl_call_authguard_number(struct tl_call_authguard *g, const char *number_id, uint64_t now_ms);

struct tl_call_cfg {
    struct tl_sip_stack *stack;       /* borrowed; outlives the layer */
    struct tl_sip_sess_layer *sess;   /* borrowed */
    struct tl_media_engine *media;    /* borrowed */
    struct tl_routing *routing;       /* borrowed */
    struct tl_recorder *rec;          /* borrowed; NULL = nothing recorded (unit tests) */
    const char *host;                 /* our host for Warning (RFC 3261 §20.43) and realm */
    const char *public_ip;            /* SDP c= behind 1:1 NAT; NULL/"" = the local address
                                       * the INVITE arrived on */
    const char *digest_algorithms;    /* "SHA-256,MD5" (inauth.h) */
    uint32_t nonce_ttl_s;             /* digest nonce freshness */
    const uint8_t *nonce_secret;      /* 32 bytes shared by the nodes (from the master key);
                                       * NULL: random per start (digest.h) */
    uint32_t media_timeout_s;         /* no RTP for this long → BYE */
    uint32_t max_duration_s;          /* a call is ended (BYE) after this long */
    uint32_t max_calls;               /* concurrent calls, all workspaces */
    uint32_t max_calls_per_workspace; /* concurrent calls of one workspace */
    uint32_t max_busy_pct;            /* admission by load (media.h tl_media_load); 0: off */
    uint32_t max_late_ms;
    uint32_t invite_rate;        /* INVITEs per second from one source IP (burst 2×) */
    uint32_t invite_rate_global; /* INVITEs per second from all sources (burst 2×); 0 off */
    struct tl_call_authguard_cfg auth_guard; /* digest guessing (authguard.c); zeros: defaults */
    uint32_t answer_delay_ms;       /* ring this long after the agent is ready (0 = none) */
    struct uv_loop_s *loop;         /* handed to agents (timers, sockets); NULL in tests */
    struct tl_agent_env *agent_env; /* WebSocket agents' DNS, TLS, guard; NULL: none */
    bool *freed; /* set true when the layer has freed itself after close (all calls gone,
                  * their BYEs answered or failed); NULL: not told */
    uint32_t one_way_audio_s; /* no RTP this long after the answer: one_way_audio (0: off) */
    /* toll-fraud guards of outbound calls, per workspace (0 = no cap) */
    uint32_t out_calls_per_workspace; /* concurrent */
    uint32_t out_calls_per_minute;    /* token bucket holding one minute's worth */
    /* the other nodes' calls per workspace (store/cluster.h), added to this node's for
     * max_calls_per_workspace and out_calls_per_workspace; borrowed, outlives the layer.
     * NULL: one node, only its own calls count */
    struct tl_cluster *cluster;
};

struct tl_call_layer;

/* Installs the INVITE hook on the stack (REGISTER events are serve.c's).
 * Do not open it when the sip_test_policy handler is in use. 0, EINVAL (bad algorithms),
 * ENOMEM, EIO (random). */
int tl_call_layer_open(struct tl_call_layer **lp, const struct tl_call_cfg *cfg);
/* Shutdown, before tl_sip_stack_stop: every call is ended (BYE, or 503 before the answer)
 * with reason "shutdown", its record queued, its agent stopped and its media stream
 * closed; the hooks are removed. The calls' memory and the layer's own go once the media
 * close callbacks have run (the loop must run again: tl_media_engine_streams() reaching 0
 * says they have). NULL is a no-op. */
void tl_call_layer_close(struct tl_call_layer *l);
size_t tl_call_count(const struct tl_call_layer *l); /* calls not yet ended */
/* Graceful shutdown (SIGTERM): from now on every new INVITE is answered 503 with
 * Retry-After: retry_after_s, before any lookup; calls in progress carry on. */
void tl_call_layer_drain(struct tl_call_layer *l, unsigned retry_after_s);

/* ---- control from another thread (control.c): the REST API asks, the loop acts ----
 * Posts op for the live call call_id of workspace_id through the mailbox m and waits up
 * to timeout_ms: 0 (done; status gets "ringing", "in-progress" or "completed"), ENOENT
 * (no live call with that id in that workspace), ETIMEDOUT, ESHUTDOWN (the daemon is
 * stopping), or the operation's own errno (a transfer while one is under way: EBUSY).
 * Any thread but the loop's. */
enum tl_call_ctl_op {
    TL_CALL_CTL_STATUS,   /* nothing: the live status */
    TL_CALL_CTL_HANGUP,   /* BYE; a ringing call is refused */
    TL_CALL_CTL_TRANSFER, /* param: +E.164 or a sip:/sips: URI */
    TL_CALL_CTL_DIGITS,   /* param: DTMF digits, RFC 4733 */
};
#define TL_CALL_CTL_PARAM_MAX 512
#define TL_CALL_STATUS_MAX    15
struct tl_mailbox;
int tl_call_control(struct tl_call_layer *l, struct tl_mailbox *m, const char *workspace_id,
                    const char *call_id, enum tl_call_ctl_op op, const char *param,
                    char status[TL_CALL_STATUS_MAX + 1], unsigned timeout_ms);

/* ---- outbound calls and live records (control.c, outbound.c) ----
 * Any thread but the loop's, like tl_call_control.
 *
 * tl_call_place: the call rq asks for (the API read and checked the number, its trunk and
 * the agent: store.h tl_call_request) is admitted and started on the loop; *rec is its
 * record as it stands then (status queued: the agent leg is opening; the INVITE follows).
 * The loop answers within timeout_ms or the call is not placed at all (a placement that
 * comes too late is dropped, never started behind the caller's back). 0, ESHUTDOWN, ENOSPC
 * (the gateway's max_calls), EBUSY (the workspace's concurrent outbound calls), EAGAIN (its
 * outbound calls per minute), EINVAL (an agent kind this daemon cannot run), ENOMEM,
 * ETIMEDOUT. rq stays the caller's (it is copied): wipe it.
 *
 * tl_call_snapshot: the record of live call call_id of workspace_id as it is now (status,
 * counters), 0 or ENOENT (not live: read the store), ETIMEDOUT, ESHUTDOWN. */
struct tl_call_request;
struct tl_call_record;
int tl_call_place(struct tl_call_layer *l, struct tl_mailbox *m, const struct tl_call_request *rq,
                  struct tl_call_record *rec, unsigned timeout_ms);
int tl_call_snapshot(struct tl_call_layer *l, struct tl_mailbox *m, const char *workspace_id,
                     const char *call_id, struct tl_call_record *rec, unsigned timeout_ms);

/* ---- Twilio-shaped call names (sid.c) ----
 * Call ids are made from 128 random bits so that the CallSid ("CA" + those bits in
 * lowercase hex) and the id convert into each other: 0 or EINVAL. */
#define TL_CALL_SID_LEN 34
void tl_call_id_new(char id[TL_ID_MAX]);
int tl_call_sid_of(const char *call_id, char sid[TL_CALL_SID_LEN + 1]);
int tl_call_id_of_sid(const char *sid, char id[TL_ID_MAX]);

/* ---- REGISTER diagnostics (register.c) ----
 * Every REGISTER the endpoint refused becomes a registration_attempt event of the number
 * its To user (else From user) names, or an operator-level one. Loop thread; d is
 * borrowed and must outlive the stack. */
struct tl_call_regdiag {
    struct tl_routing *routing;
    struct tl_recorder *rec;
    struct tl_sip_stack *stack; /* set by tl_call_register_events */
};
void tl_call_register_events(struct tl_sip_stack *s, struct tl_call_regdiag *d);

/* ---- our media address (inbound.c; docs/calls.md "Media", IPv6) ----
 * The family of our media is the remote SDP address's (offer_af, an offer), else — our own
 * offer, a late offer — IPv6 only when the INVITE came over IPv6 (sip_af). */
int tl_call_media_af(int offer_af, int sip_af);
/* Where the address of family af comes from: public_ip (1:1 NAT) when it is of that family
 * (public_af: its family, 0 when unset); the local address the INVITE arrived on when it is
 * of that family and not unspecified; else the local address the kernel would send from
 * towards the remote SDP address (a dual-stack carrier signalling over IPv4 with IPv6
 * media, or the other way round). */
enum tl_call_maddr { TL_CALL_MADDR_PUBLIC_IP, TL_CALL_MADDR_SIP_LOCAL, TL_CALL_MADDR_ROUTE };
enum tl_call_maddr tl_call_maddr_source(int af, int public_af, int sip_af, bool sip_unspecified);

/* ---- DTMF in SIP INFO (info.c; RFC 6086 legacy INFO usage) ----
 * The digits reach the agent as RFC 4733 digits do (agent.h dtmf). */
#define TL_CALL_INFO_BODY_MAX 256 /* a DTMF body is ~30 bytes; longer is refused unread */
enum { TL_CALL_INFO_DTMF_RELAY = 1, TL_CALL_INFO_DTMF = 2 };
/* The Content-Type value (parameters ignored, case-insensitive): TL_CALL_INFO_DTMF_RELAY for
 * application/dtmf-relay, TL_CALL_INFO_DTMF for application/dtmf, 0 for anything else. */
int tl_call_info_type(const char *ctype, size_t len);
/* The digit of an INFO body of that type: "Signal=<s>" (first one; CRLF or LF lines, blanks
 * and key case ignored) with an optional "Duration=<ms>", or <s> alone for
 * application/dtmf. <s> is 0-9 * # A-D (any case) or the RFC 4733 event number 0-16 (10 *,
 * 11 #, 12-15 A-D, 16 flash '!'). *digit: 0-9 * # A-D !; *duration_ms: 0 when absent or
 * unreadable, capped at 65535. 0, EBADMSG (no usable signal, NUL), E2BIG (longer than
 * TL_CALL_INFO_BODY_MAX), EINVAL (another type). */
int tl_call_info_dtmf(int type, const char *body, size_t len, char *digit, uint16_t *duration_ms);

/* ---- admission (admit.c): INVITE token buckets per source and global, fixed memory ---- */
#define TL_CALL_RATE_SLOTS 4096 /* per-source buckets; sources sharing one share its tokens */
struct tl_call_rate;
/* per_s/burst for each source (IPv4 address, IPv6 /64); g_per_s/g_burst for all sources
 * together (g_per_s 0: no global bucket). 0 or ENOMEM. */
int tl_call_rate_new(struct tl_call_rate **rp, uint32_t per_s, uint32_t burst, uint32_t g_per_s,
                     uint32_t g_burst);
void tl_call_rate_free(struct tl_call_rate *r);
enum tl_call_rate_verdict {
    TL_CALL_RATE_OK = 0,
    TL_CALL_RATE_SOURCE, /* this source's bucket is empty */
    TL_CALL_RATE_GLOBAL, /* the gateway's bucket is empty */
};
/* One more INVITE from addr (raw address bytes, 4 or 16) at now_ms: takes a token from the
 * source's bucket and the global one, or none when either is empty. */
enum tl_call_rate_verdict tl_call_rate_take(struct tl_call_rate *r, const uint8_t *addr, size_t len,
                                            uint64_t now_ms);
/* The bucket addr uses (tests: two sources in one slot share it), SIZE_MAX for a bad len. */
size_t tl_call_rate_slot(const struct tl_call_rate *r, const uint8_t *addr, size_t len);

#endif
