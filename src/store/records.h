/* records: the writer of call records and diagnostic events, which keeps disk work off
 * the call path (DESIGN.md: the loop never blocks on slow disk).
 *
 * Threads and ownership. A struct tl_recorder owns one writer thread and a bounded queue.
 * tl_recorder_call() and tl_recorder_event() may be called from any thread (the SIP loop,
 * the API); they copy the record into the queue under a short mutex and return: no disk,
 * no waiting on the writer. When the queue is full an event or a call's start record is
 * dropped and counted (stats.dropped_full), never waited for; a call's end record
 * (ended_at set) is never dropped: it is queued past the cap (stats.spilled), and a batch
 * holding one is retried until the store takes it. The writer thread takes up to batch_max
 * records at a time and writes them in one SQLite transaction, at most batch_ms after
 * the first of them was queued. tl_recorder_close() writes everything still queued
 * (a clean shutdown loses nothing), joins the thread and frees; call it after every
 * producer has stopped and before the store is closed.
 *
 * Rate limits (events only; call records are never limited): a flood — a carrier
 * retrying REGISTER every second, a scanner spraying from many addresses — must not fill
 * the disk or the queue. Token buckets, each holding at most one minute's allowance:
 *   - per number (the event names a number_id):     20 events/min (burst 20)
 *   - per source address (no number matched):        5 events/min (burst 5)
 *   - global, over all keys:                       1000 events/min (burst 1000)
 * An event over a limit is suppressed: not queued, only counted against its key; the
 * next event written for that key carries the count in its message,
 * "… (37 similar events suppressed)". Buckets live in a fixed table (1024 slots, 8-way),
 * so spoofed source addresses cannot grow memory; a key evicted under pressure starts
 * with a full bucket, which the global bucket still caps. */
#ifndef TL_RECORDS_H
#define TL_RECORDS_H

#include "store/store.h"

/* ---- event codes and their hints (the spec's troubleshooting section, in the words a
 * person changing a setting needs). Hints with %s take the values in <> in order. ---- */
#define TL_EV_REGISTRATION_ATTEMPT "registration_attempt"
#define TL_EV_HINT_REGISTRATION_ATTEMPT                                                            \
    "Your carrier is trying to register. trunkline serves static trunks only: switch the trunk "   \
    "to static / IP-based authentication in your provider's settings."
#define TL_EV_CREDENTIALS_MISMATCH "credentials_mismatch"
#define TL_EV_HINT_CREDENTIALS_MISMATCH                                                            \
    "Digest credentials did not match: re-enter the username and password on both sides; most "    \
    "providers show the password only once."
#define TL_EV_SOURCE_NOT_ALLOWED "source_not_allowed"
#define TL_EV_HINT_SOURCE_NOT_ALLOWED                                                              \
    "The call came from an address outside allowed_addresses: add your provider's signalling "     \
    "IPs or CIDR blocks, or clear the list."
#define TL_EV_WRONG_TRANSPORT "wrong_transport"
/* %s: the transport the call used, %s: the trunk's */
#define TL_EV_HINT_WRONG_TRANSPORT_FMT                                                             \
    "The call arrived over %s but the inbound trunk expects %s: the origination URI must end "     \
    "with ;transport=tls or ;transport=tcp exactly as GET /v1/sip/endpoints shows; UDP is not "    \
    "accepted for inbound calls."
#define TL_EV_NUMBER_NOT_ROUTED "number_not_routed"
/* %s: the called number as received */
#define TL_EV_HINT_NUMBER_NOT_ROUTED_FMT                                                           \
    "No number in this system matches %s: check the number is imported in E.164 and that the "     \
    "provider sends it (with or without +) to this trunk."
#define TL_EV_INBOUND_DISABLED "inbound_disabled"
#define TL_EV_HINT_INBOUND_DISABLED                                                                \
    "This number has no inbound trunk: add an inbound_trunk to the number (PUT "                   \
    "/v1/phone-numbers/{id}) to receive calls on it."
/* the operator's SIP edge (sip_edge_addresses) sent an INVITE without a usable
 * X-Trunkline-Source: not a tenant's problem, so no number (docs/scale-out.md) */
#define TL_EV_EDGE_SOURCE_MISSING "edge_source_missing"
#define TL_EV_HINT_EDGE_SOURCE_MISSING                                                             \
    "The SIP edge must add X-Trunkline-Source to every request it relays: use the shipped "        \
    "deploy/kamailio configuration, or list only edge addresses in sip_edge_addresses."
#define TL_EV_MEDIA_ENCRYPTION_MISMATCH "media_encryption_mismatch"
#define TL_EV_HINT_MEDIA_ENCRYPTION_MISMATCH                                                       \
    "The provider's media encryption does not match the trunk's. Try Media encryption Allowed "    \
    "on both sides to confirm signalling, then move both back to Required."
#define TL_EV_NO_AGENT          "no_agent"
#define TL_EV_HINT_NO_AGENT     "Assign an agent to the number."
#define TL_EV_ADMISSION_REFUSED "admission_refused"
#define TL_EV_HINT_ADMISSION_REFUSED                                                               \
    "trunkline refused the call because a limit was reached (concurrent calls of the "             \
    "workspace's plan, or the gateway's capacity): try again later or raise the plan."
#define TL_EV_MEDIA_PROFILE_UNSUPPORTED "media_profile_unsupported"
#define TL_EV_HINT_MEDIA_PROFILE_UNSUPPORTED                                                       \
    "The offer uses a WebRTC-style AVPF profile (RTP/SAVPF, RTP/AVPF, UDP/TLS/RTP/SAVPF), which "  \
    "trunkline does not support: configure the carrier or PBX to offer RTP/AVP, or RTP/SAVP with " \
    "SDES keys (a=crypto)."
#define TL_EV_MEDIA_ADDRESS_UNAVAILABLE "media_address_unavailable"
/* %s: what is wrong with the offer's c= ("the offer's media is IPv6 and this gateway has no
 * usable IPv6 address for media") */
#define TL_EV_HINT_MEDIA_ADDRESS_UNAVAILABLE_FMT                                                   \
    "The offer's media address cannot be used: %s. Configure the carrier or PBX to offer media "   \
    "this gateway can reach (IPv4: c=IN IP4 a.b.c.d), or give the host an address of the "         \
    "offer's family with a route to the carrier."
/* no RTP port pair or stream left: the gateway's capacity, not the plan's */
#define TL_EV_HINT_MEDIA_PORTS                                                                     \
    "trunkline has no free RTP port pair (rtp_port_min to rtp_port_max, two ports a call): try "   \
    "again later; the operator widens the port range or lowers max_calls to match it."
#define TL_EV_CALL_FAILED "call_failed"
#define TL_EV_HINT_CALL_FAILED                                                                     \
    "The call failed after it was accepted; details name the SIP status and reason. If it "        \
    "repeats, check that the agent is reachable and the media settings match on both sides."

#define TL_EV_RTP_SOURCE_MISMATCH "rtp_source_mismatch"
#define TL_EV_HINT_RTP_SOURCE_MISMATCH                                                             \
    "The carrier's RTP comes from another address than its SDP names: it is behind NAT or "        \
    "sends media from another media server, so its audio is dropped (one-way audio). Set "         \
    "rtp_latching to any for this trunk "                                                          \
    "(inbound_trunk.rtp_latching, or trunkline numbers edit --inbound-rtp-latching any); with "    \
    "media_encryption required, SRTP follows authenticated packets by itself."
/* the same drop under rtp_latching any: the stream took its one source already */
#define TL_EV_HINT_RTP_SOURCE_MISMATCH_ANY                                                         \
    "RTP arrived from a second address after the call latched to the first one: the carrier "      \
    "moved its media mid-call, or someone else sends to this port. If the carrier moves media, "   \
    "use media_encryption required: SRTP follows authenticated packets wherever they come from."

#define TL_EV_SRTP_KEYS_IN_CLEAR "srtp_keys_in_clear"
#define TL_EV_HINT_SRTP_KEYS_IN_CLEAR                                                              \
    "SRTP keys crossed the network in clear signalling: the call used SRTP (SDES) but its SIP "    \
    "came over TCP, so anyone on the path can read the keys. Switch the inbound trunk and the "    \
    "provider's origination URI to TLS to protect them."
#define TL_EV_BYE_FAILED "bye_failed"
#define TL_EV_HINT_BYE_FAILED                                                                      \
    "The carrier never confirmed the hang-up, so its side of the call may still be up (and "       \
    "billed) until its own timers end it. Check that the carrier's proxy accepts connections "     \
    "from this gateway on the address in its Record-Route (or Contact), and that nothing "         \
    "between them drops idle connections."
#define TL_EV_CREDENTIALS_GUESSING "credentials_guessing"
#define TL_EV_HINT_CREDENTIALS_GUESSING                                                            \
    "Many wrong digest answers for this number in a short time: someone may be guessing its "      \
    "password. Sources that keep failing are blocked for a while; use a long random password, "    \
    "and restrict allowed_addresses to your provider's signalling addresses."
#define TL_EV_DIGEST_URI_MISMATCH "digest_uri_mismatch"
#define TL_EV_HINT_DIGEST_URI_MISMATCH                                                             \
    "The credentials were computed for another address (the digest uri names neither this "        \
    "gateway nor the number). A proxy in front of the carrier's equipment may rewrite the "        \
    "request: make it keep the number, or set the carrier to send calls to this gateway's SIP "    \
    "URI directly."

/* ---- outbound calls (src/call/outbound.c; docs/calls.md "Outbound calls") ---- */
#define TL_EV_TRUNK_UNREACHABLE "trunk_unreachable"
/* the hint names the step that failed (dns, connect, tls, timeout, 503/408) */
#define TL_EV_OUTBOUND_BUSY "outbound_busy"
#define TL_EV_HINT_OUTBOUND_BUSY                                                                   \
    "The callee was busy (486 Busy Here or 600 Busy Everywhere). Try again later."
#define TL_EV_OUTBOUND_NO_ANSWER   "outbound_no_answer"
#define TL_EV_OUTBOUND_AUTH_FAILED "outbound_auth_failed"
#define TL_EV_OUTBOUND_FORBIDDEN   "outbound_forbidden"
#define TL_EV_HINT_OUTBOUND_FORBIDDEN                                                              \
    "The carrier refused the call (403): it does not accept this caller ID or the account may "    \
    "not call out (caller ID not verified at the provider, no credit, outbound calls not "         \
    "enabled, or this gateway's address not allowed). Check the number's caller-ID settings and "  \
    "the account at the provider."
#define TL_EV_OUTBOUND_DESTINATION "outbound_destination_invalid"
/* %s: the number dialled, %u: the status */
#define TL_EV_HINT_OUTBOUND_DESTINATION_FMT                                                        \
    "The carrier could not route %s (%u): the destination or its format was not accepted. "        \
    "Numbers go out in E.164 with '+'; if the provider wants them without it, set "                \
    "outbound_trunk.number_format to no_plus. Check the number itself, and that the account may "  \
    "call that country."
#define TL_EV_OUTBOUND_FAILED "outbound_failed"
/* the inbound trunk's origination URL (call/relay.c) could not take a call */
#define TL_EV_ORIGINATION_UNREACHABLE "origination_unreachable"
/* %s: what failed */
#define TL_EV_HINT_ORIGINATION_UNREACHABLE_FMT                                                     \
    "Calls to this number go to its origination URL (no agent, or the agent could not be "         \
    "reached), and it could not take the call: %s. Check inbound_trunk.origination_url and that "  \
    "it accepts calls from this gateway."
/* the spec's troubleshooting: one-way audio (call.c, both call directions) */
#define TL_EV_ONE_WAY_AUDIO "one_way_audio"
#define TL_EV_HINT_ONE_WAY_AUDIO                                                                   \
    "Audio reaches one side only. The usual cause is media settings that do not match: set "       \
    "Media encryption to Allowed on both sides (this number's trunk and the carrier's), check "    \
    "that signalling works, then go back to Required. If the carrier is behind NAT, see also "     \
    "rtp_source_mismatch events."
/* toll-fraud guards: refusals before the call exists (429 / 403 to the API) */
#define TL_EV_OUTBOUND_RATE           "outbound_rate"
#define TL_EV_DESTINATION_NOT_ALLOWED "destination_not_allowed"

/* The rate limits above, per minute; and the queue and batching defaults. */
#define TL_REC_QUEUE_DEFAULT      8192
#define TL_REC_BATCH_MS_DEFAULT   100
#define TL_REC_BATCH_MAX_DEFAULT  256
#define TL_REC_PER_NUMBER_DEFAULT 20
#define TL_REC_PER_SOURCE_DEFAULT 5
#define TL_REC_GLOBAL_DEFAULT     1000

struct tl_recorder_cfg {
    size_t queue_cap;               /* records; 0 = TL_REC_QUEUE_DEFAULT */
    unsigned batch_ms;              /* 0 = TL_REC_BATCH_MS_DEFAULT */
    size_t batch_max;               /* 0 = TL_REC_BATCH_MAX_DEFAULT */
    unsigned per_number;            /* events per minute; 0 = default */
    unsigned per_source;            /* 0 = default */
    unsigned global;                /* 0 = default */
    bool paused;                    /* tests: the writer takes nothing until tl_recorder_resume */
    int64_t (*clock_ms)(void *arg); /* the rate limiter's clock (monotonic ms); NULL = real;
                                     * tests inject one */
    void *clock_arg;
};

struct tl_recorder_stats {
    uint64_t queued;        /* accepted into the queue */
    uint64_t written;       /* committed to the store */
    uint64_t dropped_full;  /* refused: queue full */
    uint64_t suppressed;    /* events over a rate limit */
    uint64_t write_failed;  /* lost to a store error (logged) */
    uint64_t spilled;       /* end records queued past queue_cap */
    uint64_t write_retries; /* batches with an end record written again after a failure */
};

struct tl_recorder;

/* cfg NULL: the defaults. Starts the writer thread. 0, ENOMEM, or pthread's errno. The
 * store must outlive the recorder. */
int tl_recorder_open(struct tl_recorder **rp, struct tl_store *s,
                     const struct tl_recorder_cfg *cfg);
/* Writes what is queued, joins the writer, frees. NULL is a no-op. */
void tl_recorder_close(struct tl_recorder *r);

/* Non-blocking from any thread. Returns 0 when queued, EAGAIN when the queue was full
 * (dropped, counted; never for an end record: ended_at != 0), ENOMEM. The record is
 * copied; text that is not valid UTF-8 is repaired ('?') so that the API can always show
 * it. Only when memory runs out does an end record wait for the writer to make room. */
int tl_recorder_call(struct tl_recorder *r, const struct tl_call_record *c);
/* As tl_recorder_call, plus EBUSY when a rate limit suppressed the event (counted, and
 * folded into the next event of that key). The key is e->number_id when set, else
 * source (the peer's IP address text, NULL or "" = one key per event code). An empty
 * e->id and a zero e->created_at are filled here, so both tell when it happened. */
int tl_recorder_event(struct tl_recorder *r, const struct tl_event *e, const char *source);

/* true while the queue holds queue_cap records or more (the disk does not keep up):
 * admission refuses new calls then, so that end records stay bounded. Any thread. */
bool tl_recorder_backlogged(struct tl_recorder *r);
/* Called on the writer thread after a batch that queued webhook deliveries (the sender's
 * wake-up, api/webhooks.c); it must not block. Set it before records flow; NULL removes. */
void tl_recorder_set_delivery_hook(struct tl_recorder *r, void (*fn)(void *arg), void *arg);

/* Blocks until every record queued before the call is written (or failed). For tests
 * and for an orderly shutdown; never from the loop thread. */
void tl_recorder_flush(struct tl_recorder *r);
/* tests: start the writer of a recorder opened with cfg.paused */
void tl_recorder_resume(struct tl_recorder *r);
void tl_recorder_stats(struct tl_recorder *r, struct tl_recorder_stats *out);

#endif
