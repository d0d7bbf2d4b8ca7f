/* media: the media plane of a call — RTP/SRTP over UDP, RTCP receiver statistics, RFC 4733
 * DTMF, outgoing audio paced by one engine clock, media timeout. Runs on the daemon's libuv
 * loop; no threads. See src/media/README.md for the RFC table and the latching policy.
 *
 * Objects
 *   struct tl_media_engine  one per loop: the port pool, the 20 ms pacing clock (a single
 *                           uv_timer for every stream), the chunk pool for outgoing audio,
 *                           libsrtp initialisation.
 *   struct tl_media_stream  one per call leg: an RTP and an RTCP socket (RTCP = RTP + 1),
 *                           the remote address from SDP, SRTP contexts, queues, statistics.
 *                           IPv4 or IPv6: the sockets are of the family of the remote SDP
 *                           address (params.af without one), fixed for the stream's life.
 *
 * Errors follow core.h: 0 or a positive errno value.
 *
 * Audio: G.711 only (PCMU PT 0, PCMA PT 8), ptime 20 ms = 160 bytes per packet, clock rate
 * 8000 Hz. Incoming audio is passed through at whatever size arrives.
 *
 * Async and ownership contracts
 *   - Every callback runs on the loop thread, from inside uv_run.
 *   - Pointers handed to on_audio are valid only during the callback (they point into the
 *     engine's receive buffer).
 *   - A stream may be closed from inside any of its own callbacks. After
 *     tl_media_stream_close() no callback other than on_close fires. The stream's memory is
 *     released by the engine right after on_close returns; on_close is where the owner
 *     drops its pointer.
 *   - The engine may be freed only when no stream is open or closing
 *     (tl_media_engine_close returns EBUSY otherwise); its memory is released in the timer's
 *     close callback, so the loop must run once more after tl_media_engine_close.
 */
#ifndef TL_MEDIA_H
#define TL_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define TL_MEDIA_TICK_MS        20
#define TL_MEDIA_FRAME          160    /* G.711 bytes (= timestamp units) per 20 ms */
#define TL_MEDIA_PKT_MAX        1500   /* larger datagrams are dropped, never truncated */
#define TL_MEDIA_QUEUE_CAP      480000 /* outgoing audio cap per stream: 60 s of G.711 */
#define TL_MEDIA_MARKS_MAX      4096   /* pending marks per stream (memory grows on use) */
#define TL_MEDIA_DTMF_QUEUE_MAX 64     /* pending outgoing digits per stream */
#define TL_MEDIA_SRTP_KEY_LEN   30     /* AES_CM_128 master key (16) || master salt (14) */

struct tl_media_engine;
struct tl_media_stream;

/* Who may move the address we send to (RTP Bleed, CVE-2017-14099). README.md explains. */
enum tl_media_latch {
    TL_MEDIA_LATCH_DEFAULT = 0, /* stream: use the engine's setting */
    TL_MEDIA_LATCH_SDP_IP,      /* plain RTP: follow a new port only on the SDP address's IP */
    TL_MEDIA_LATCH_ANY,         /* plain RTP: latch once to the first valid packet's source */
    TL_MEDIA_LATCH_OFF,         /* never move; accept only the SDP address's IP */
};
/* "sdp-ip", "any", "off" (the names settings and the API use); NULL for DEFAULT */
const char *tl_media_latch_name(enum tl_media_latch l);
int tl_media_latch_parse(const char *s); /* the enum value, -1 for anything else */

/* A plain-RTP packet from a source the latching policy refuses is reported once per stream,
 * this long after the first one (the "one-way audio" diagnosis: a carrier behind NAT or
 * sending media from another server than its SDP names). */
#define TL_MEDIA_UNLATCHED_REPORT_MS 2000

enum tl_media_srtp_suite {
    TL_MEDIA_SRTP_NONE = 0,
    TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80,
    TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32, /* SRTCP still uses an 80-bit tag (RFC 4568) */
};

struct tl_media_config {
    uint16_t port_min, port_max; /* inclusive; 0/0 = 10000..20000. Even RTP ports only */
    const char *bind_ip;         /* IPv4 streams; NULL = "0.0.0.0" */
    const char *bind_ip6;        /* IPv6 streams; NULL = "::" (IPV6_V6ONLY sockets) */
    const char *public_ip;       /* copied; passthrough for the SDP layer (NULL = none) */
    uint32_t max_streams;        /* 0 = 4096 */
    enum tl_media_latch latch;   /* DEFAULT = SDP_IP */
    uint32_t rtcp_interval_ms;   /* 0 = 5000; each stream starts at a random offset */
    /* the loop was configured with UV_METRICS_IDLE_TIME (serve.c): the engine can tell
     * how busy the loop is (tl_media_engine_load) */
    bool loop_metrics;
};

/* How loaded the loop that runs the media clock is, for admission (issue 11: at 1.5× the
 * capacity every call lost audio; new calls must be turned away before that). Both are
 * smoothed (exponentially weighted) and 0 while no stream runs. */
struct tl_media_load {
    double busy_pct; /* share of the last ~second the loop spent working, not waiting
                      * (valid only with loop_metrics) */
    double late_ms;  /* how late the 20 ms clock fires, on average */
};

struct tl_media_stats {
    /* RTP received from the remote (RFC 3550 A.1/A.3/A.8) */
    uint64_t rx_packets, rx_bytes; /* accepted packets, payload bytes */
    uint32_t remote_ssrc;
    uint32_t max_seq_ext;  /* extended highest sequence number (cycles << 16 | max_seq) */
    uint32_t expected;     /* extended max - base + 1 */
    int32_t lost;          /* expected - received (cumulative; negative with duplicates) */
    uint8_t fraction_lost; /* last RTCP interval, /256 */
    uint32_t jitter_ts;    /* interarrival jitter in timestamp units (8 kHz) */
    double jitter_ms;
    /* drops, by reason: malformed RTP, SRTP/SRTCP authentication or replay, a source the
     * latching policy refuses (RTP and RTCP), unknown payload type, over TL_MEDIA_PKT_MAX,
     * malformed RTCP */
    uint32_t drop_malformed, drop_auth, drop_source, drop_pt, drop_too_big, drop_rtcp;
    uint32_t drop_pending; /* RTP/RTCP before tl_media_stream_set_params (params.pending) */
    /* sent */
    uint64_t tx_packets, tx_bytes;
    uint32_t tx_errors;     /* sendto failed (EAGAIN, unreachable): packet dropped */
    uint64_t refused_bytes; /* tl_media_stream_write over the queue cap */
    /* RTCP */
    uint32_t rtcp_rx, rtcp_tx;
    bool remote_report;           /* the remote sent a report block about us */
    uint8_t remote_fraction_lost; /* what the remote says about our stream */
    int32_t remote_lost;
    uint32_t remote_jitter_ts;
    uint32_t rtt_ms; /* from LSR/DLSR; 0 = unknown */
    /* DTMF and latching */
    uint32_t dtmf_rx, dtmf_tx, latches;
};

/* RTP that the latching policy dropped (plain RTP from a source other than the SDP's, or
 * after an `any` stream latched elsewhere). */
struct tl_media_unlatched {
    struct sockaddr_storage sdp;  /* the remote address the SDP named (IP and RTP port) */
    struct sockaddr_storage from; /* the first refused source */
    uint32_t dropped;             /* RTP packets refused for their source so far */
    uint64_t accepted;            /* RTP packets accepted so far (rx_packets) */
};

/* Callbacks; any may be NULL. `arg` is the pointer given to tl_media_stream_open. */
struct tl_media_stream_cb {
    void (*on_audio)(struct tl_media_stream *s, void *arg, const uint8_t *payload, size_t len,
                     uint32_t ts, uint16_t seq);
    /* Once per RFC 4733 event (keyed on the event timestamp), at its first end packet or,
     * if every end packet was lost, when the next event starts or 1 s after the last packet.
     * digit is one of 0-9 * # A-D, or '!' for flash (event 16). */
    void (*on_dtmf)(struct tl_media_stream *s, void *arg, char digit, uint16_t duration_ms);
    /* The audio written before tl_media_stream_mark(id) has been sent (or cleared). */
    void (*on_mark)(struct tl_media_stream *s, void *arg, uint32_t id);
    /* No RTP for timeout_ms while receiving is expected. Once; re-armed by the next packet. */
    void (*on_timeout)(struct tl_media_stream *s, void *arg);
    /* Last callback; the stream's memory is released right after it returns. */
    void (*on_close)(struct tl_media_stream *s, void *arg);
    /* Once per stream, TL_MEDIA_UNLATCHED_REPORT_MS after the first RTP packet the latching
     * policy refused (the clock's tick: no timer of its own). */
    void (*on_unlatched)(struct tl_media_stream *s, void *arg, const struct tl_media_unlatched *u);
    /* One-way audio (tl_media_stream_watch): no RTP from the far end for gap_ms — never any
     * since the watch began (never), or none since its last packet while ours went on.
     * Once per watch; not while the far end holds the call or before set_params. May be
     * NULL. */
    void (*on_quiet)(struct tl_media_stream *s, void *arg, bool never, uint32_t gap_ms);
};

struct tl_media_stream_params {
    const char *remote_ip;     /* from SDP c= (IPv4 or IPv6 literal); NULL = send nothing until
                                * set_remote */
    int af;                    /* without remote_ip: AF_INET6 for an IPv6 stream, else IPv4;
                                * with remote_ip: 0 or its family */
    uint16_t remote_rtp_port;  /* from SDP m= */
    uint16_t remote_rtcp_port; /* a=rtcp (RFC 3605), 0 = remote_rtp_port + 1 */
    uint8_t pt;                /* 0 PCMU or 8 PCMA */
    int dtmf_pt;               /* telephone-event PT (96..127), -1 = none */
    enum tl_media_srtp_suite srtp;
    uint8_t srtp_tx_key[TL_MEDIA_SRTP_KEY_LEN]; /* ours (our a=crypto); libsrtp derives its keys */
    uint8_t srtp_rx_key[TL_MEDIA_SRTP_KEY_LEN]; /* theirs; the caller wipes both after open */
    uint32_t timeout_ms;                        /* media timeout; 0 = off */
    enum tl_media_latch latch;                  /* DEFAULT = the engine's */
    /* Late offer: the stream opens (for its port) before the answer names the codec and the
     * keys. Until tl_media_stream_set_params every RTP/RTCP packet received is dropped and
     * counted (drop_pending), nothing is sent, audio and digits written meanwhile stay
     * queued (they play from set_params on: an agent's greeting before an outbound call is
     * answered) and the media timeout does not run; pt, dtmf_pt and srtp are ignored at
     * open. */
    bool pending;
};

/* ---- engine ---- */
int tl_media_engine_new(uv_loop_t *loop, const struct tl_media_config *cfg,
                        struct tl_media_engine **ep);
/* EBUSY while streams are open or closing. Otherwise stops the clock; the memory is
 * released once the loop runs the timer's close callback. */
int tl_media_engine_close(struct tl_media_engine *e);
const char *tl_media_engine_public_ip(const struct tl_media_engine *e);     /* "" when unset */
enum tl_media_latch tl_media_engine_latch(const struct tl_media_engine *e); /* never DEFAULT */
uint32_t tl_media_engine_streams(const struct tl_media_engine *e);          /* incl. closing */
void tl_media_engine_load(const struct tl_media_engine *e, struct tl_media_load *out);

/* ---- stream ---- */
/* Allocates a port pair (skipping pairs in use by other processes; bounded attempts), binds
 * both sockets in the stream's family and starts receiving. Errors: EINVAL (params),
 * EMFILE (max_streams), EADDRNOTAVAIL (pool empty), EADDRINUSE (every attempt found the pair
 * busy), EAFNOSUPPORT (no socket of that family can be bound here: no IPv6 on the host, or
 * the bind address is not local), ENOMEM, EIO (SRTP setup). On error no callback ever fires
 * and nothing needs closing. */
int tl_media_stream_open(struct tl_media_engine *e, const struct tl_media_stream_params *p,
                         const struct tl_media_stream_cb *cb, void *arg,
                         struct tl_media_stream **sp);
/* Idempotent. Drops queued audio and digits (pending marks do not fire), closes both sockets
 * and calls on_close from the sockets' close callbacks; the port pair returns to the pool
 * then, not before. */
void tl_media_stream_close(struct tl_media_stream *s);

uint16_t tl_media_stream_local_port(const struct tl_media_stream *s); /* RTP; RTCP is +1 */
/* New SDP address (re-INVITE): resets the latch to it. rtcp_port 0 = rtp_port + 1.
 * EINVAL (not an IP literal, port 0), EAFNOSUPPORT (the other family than the stream's). */
int tl_media_stream_set_remote(struct tl_media_stream *s, const char *ip, uint16_t rtp_port,
                               uint16_t rtcp_port);
/* The outcome of an offer/answer made after open (late offer: our offer in the 200, the
 * answer in the ACK): pt, dtmf_pt, srtp and its keys replace the stream's, and remote_ip
 * (when not NULL), remote_rtp_port, remote_rtcp_port are set as by set_remote; timeout_ms,
 * latch and pending are ignored. New SRTP sessions are created before the old ones go, so
 * on error (EINVAL params, EAFNOSUPPORT remote_ip of the other family, EIO SRTP setup) the
 * stream is unchanged. Clears `pending`: from here on packets are taken and the media
 * timeout counts from now. The caller wipes the keys in p. Audio already queued is sent as
 * it is (write it in the new codec from here on). */
int tl_media_stream_set_params(struct tl_media_stream *s, const struct tl_media_stream_params *p);
/* Where RTP currently goes (the latched address); ENOENT when there is none. */
int tl_media_stream_remote(const struct tl_media_stream *s, struct sockaddr_storage *out);
int tl_media_stream_af(const struct tl_media_stream *s); /* AF_INET or AF_INET6 */
/* What the latching policy refused so far (as on_unlatched gets it); ENOENT when nothing.
 * For a caller that ends the call before the report is due. */
int tl_media_stream_unlatched(const struct tl_media_stream *s, struct tl_media_unlatched *out);
/* Starts the one-way-audio watch (the call was answered): on_quiet after quiet_ms without
 * RTP as described there; 0 stops it. */
void tl_media_stream_watch(struct tl_media_stream *s, uint32_t quiet_ms);
/* From SDP direction attributes (hold): send_ok = false keeps draining the queue at the
 * real-time pace without sending (marks still fire, so an agent's timing holds);
 * recv_expected = false suspends the media timeout. */
void tl_media_stream_set_direction(struct tl_media_stream *s, bool send_ok, bool recv_expected);

/* Queues audio (any length; payload bytes of the stream's codec). All or nothing: ENOBUFS
 * when the queue would exceed TL_MEDIA_QUEUE_CAP (counted in refused_bytes) — the writer is
 * ahead of real time by > 10 s and must slow down; we do not drop the oldest audio because
 * that would cut speech the agent believes was heard. ENOMEM if the chunk pool cannot grow.
 * A partial frame waits one tick for more bytes, then is padded with codec silence. */
int tl_media_stream_write(struct tl_media_stream *s, const uint8_t *data, size_t len);
size_t tl_media_stream_queued(const struct tl_media_stream *s);
/* on_mark(id) fires when everything written before it has been sent. With an empty queue
 * it fires before this function returns. ENOBUFS with TL_MEDIA_MARKS_MAX pending. */
int tl_media_stream_mark(struct tl_media_stream *s, uint32_t id);
/* Drops queued audio (barge-in); fires every pending mark, in order, before returning. */
void tl_media_stream_clear(struct tl_media_stream *s);
/* Queues RFC 4733 events for 0-9 * # A-D (case-insensitive), and 'w' for a 500 ms pause.
 * duration_ms 0 = 100 (min 40, max 2000). Audio pauses while digits are sent. EINVAL on any other
 * character or without a telephone-event PT; ENOBUFS beyond TL_MEDIA_DTMF_QUEUE_MAX pending digits.
 */
int tl_media_stream_send_dtmf(struct tl_media_stream *s, const char *digits, uint16_t duration_ms);

void tl_media_stream_stats(const struct tl_media_stream *s, struct tl_media_stats *out);

#endif
