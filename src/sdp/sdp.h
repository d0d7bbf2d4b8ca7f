/* sdp: SDP parse/print (RFC 8866, formerly 4566), offer/answer for one audio stream
 * (RFC 3264) and SDES crypto attributes (RFC 4568). See src/sdp/README.md for the
 * compliance table and the decisions taken where the RFCs leave a choice.
 *
 * Parsing works on slices (struct tl_pl) into the caller's body: nothing is copied,
 * NUL-patched or allocated, and every count from the wire is capped (TL_SDP_*_MAX) before
 * it indexes a fixed array. The body must outlive the struct tl_sdp decoded from it.
 *
 * Secrets: SRTP master keys (a=crypto inline:) are decoded into struct tl_sdp_crypto,
 * struct tl_sdp_nego and struct tl_sdp_sess. Nothing here logs, and nothing prints a key
 * except the SDP printer itself. Wipe with tl_sdp_wipe / tl_sdp_nego_wipe /
 * tl_sdp_sess_wipe (sodium_memzero) once the struct is no longer needed; the SIP body
 * that carried the SDP holds the same keys and is the caller's to wipe. RFC 4568 §8.3:
 * SDES keys are only as safe as the signalling — send them over TLS only.
 *
 * Errors: 0 or a positive errno —
 *   EBADMSG  malformed SDP (a request carrying it gets 400; an unusable crypto line is
 *            not malformed: it is marked in tl_sdp_crypto.err and skipped)
 *   E2BIG    over one of the caps below (the request gets 400/413 — never an overflow)
 *   EPROTO   offer/answer refused: struct tl_sdp_refusal says why (a request gets 488)
 *   ENOSPC   printer: the buffer is too small (nothing is truncated)
 *   EINVAL   bad argument from our own code (NULL, CR/LF in a value to print)
 */
#ifndef TL_SDP_H
#define TL_SDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/pl.h"

/* ---- caps (ours; RFC 8866 sets none) ---- */
#define TL_SDP_BODY_MAX   16384 /* bytes */
#define TL_SDP_ATTR_MAX   64    /* a= lines in the whole description */
#define TL_SDP_MEDIA_MAX  8     /* m= lines */
#define TL_SDP_FMT_MAX    32    /* formats (payload types) per m= line */
#define TL_SDP_CRYPTO_MAX 8     /* a=crypto lines per m= line */
#define TL_SDP_KEY_LEN    30    /* AES_CM_128: 16-byte master key || 14-byte salt (4568 §6.2) */
#define TL_SDP_ADDR_MAX   46    /* INET6_ADDRSTRLEN */
/* Caps per field, enforced by the decoder where the field is read (issue 11 item 19: a
 * cap decided in two places let a 556-byte o= through the decoder that the printer could
 * not print). A longer field is EBADMSG. The printer's buffers are sized from these. */
#define TL_SDP_HOST_MAX   255 /* c=/o= address: an IP literal or an FQDN (RFC 1035) */
#define TL_SDP_OFIELD_MAX 64  /* o= username, sess-id, sess-version, each */

enum tl_sdp_dir { /* RFC 3264 §5.1; absent = sendrecv (RFC 8866 §6.7) */
                  TL_SDP_SENDRECV = 0,
                  TL_SDP_SENDONLY,
                  TL_SDP_RECVONLY,
                  TL_SDP_INACTIVE
};
const char *tl_sdp_dir_name(enum tl_sdp_dir d);

enum tl_sdp_proto {
    TL_SDP_PROTO_OTHER = 0, /* RTP/SAVPF, UDP/TLS/RTP/SAVPF (DTLS), udp, … : not ours */
    TL_SDP_PROTO_RTP_AVP,   /* RFC 3551 */
    TL_SDP_PROTO_RTP_SAVP,  /* RFC 3711 */
};

enum tl_sdp_suite {
    TL_SDP_SUITE_NONE = 0, /* unknown or unsupported suite (AES_256_*, F8, AEAD, …) */
    TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80,
    TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32,
};
const char *tl_sdp_suite_name(enum tl_sdp_suite s); /* NULL for NONE */

/* Why one a=crypto line can't be used (RFC 4568 §6.1: the answerer skips such lines). */
enum tl_sdp_crypto_err {
    TL_SDP_CRYPTO_OK = 0,
    TL_SDP_CRYPTO_SYNTAX,        /* not "<tag> <suite> inline:<key>[|…]" */
    TL_SDP_CRYPTO_TAG,           /* tag outside 1..999999999 */
    TL_SDP_CRYPTO_SUITE,         /* a suite other than AES_CM_128_HMAC_SHA1_80/_32 */
    TL_SDP_CRYPTO_KEY,           /* bad base64, or key||salt not exactly 30 bytes */
    TL_SDP_CRYPTO_LIFETIME,      /* lifetime < 2^31 (we never re-key) or > 2^48 (§6.2.1) */
    TL_SDP_CRYPTO_MKI,           /* an MKI is present: we never send or expect one */
    TL_SDP_CRYPTO_SESSION_PARAM, /* UNENCRYPTED_SRTP, KDR, FEC_*, … (only WSH is accepted) */
    TL_SDP_CRYPTO_MULTI_KEY,     /* more than one key-param (needs MKI) */
};
const char *tl_sdp_crypto_err_str(enum tl_sdp_crypto_err e);

/* c= (and o=) address. af is AF_INET/AF_INET6 from the addrtype; is_ip says the address
 * is a literal of that family (RFC 8866 also allows an FQDN, which we never dial). */
struct tl_sdp_conn {
    bool has;
    int af;
    bool is_ip;
    struct tl_pl addr; /* without /ttl or /count */
};

struct tl_sdp_fmt {
    struct tl_pl id;   /* as written in m= */
    int pt;            /* 0..127 for RTP profiles, -1 otherwise */
    struct tl_pl enc;  /* a=rtpmap encoding name; empty without a=rtpmap */
    uint32_t rate;     /* clock rate, 0 without a=rtpmap */
    uint32_t channels; /* 0 = absent (means 1 for audio) */
    struct tl_pl fmtp; /* a=fmtp parameters; empty when absent */
};

struct tl_sdp_crypto {
    uint32_t tag;
    enum tl_sdp_suite suite;
    enum tl_sdp_crypto_err err;
    struct tl_pl raw;            /* the value after "a=crypto:"; empty when built by us */
    uint8_t key[TL_SDP_KEY_LEN]; /* key||salt when err == OK — SECRET */
};

struct tl_sdp_media {
    struct tl_pl type; /* "audio", "video", … */
    uint16_t port;     /* 0 = stream rejected / disabled */
    uint16_t nports;   /* "/<n>" in m=, 1 when absent */
    struct tl_pl proto_pl;
    enum tl_sdp_proto proto;
    size_t nfmt;
    struct tl_sdp_fmt fmt[TL_SDP_FMT_MAX];
    struct tl_sdp_conn conn; /* media-level c= (falls back to the session's) */
    bool has_dir;
    enum tl_sdp_dir dir;
    uint32_t ptime, maxptime; /* ms; 0 = absent */
    bool has_rtcp;
    uint16_t rtcp_port; /* a=rtcp (RFC 3605); the address part is ignored */
    bool rtcp_mux;      /* a=rtcp-mux (RFC 5761) seen; we never answer it */
    size_t ncrypto;
    struct tl_sdp_crypto crypto[TL_SDP_CRYPTO_MAX];
};

/* One session description. About 22 KB: keep one per call, or on the stack briefly. */
struct tl_sdp {
    struct tl_pl o_user, o_id, o_ver; /* o= fields as written */
    struct tl_sdp_conn o_addr;
    struct tl_pl name; /* s= */
    struct tl_sdp_conn conn;
    uint64_t t_start, t_stop;
    bool has_dir;
    enum tl_sdp_dir dir;
    size_t nmedia;
    struct tl_sdp_media media[TL_SDP_MEDIA_MAX];
};

/* Decodes body (CRLF or LF line ends). 0, EBADMSG, E2BIG. *sdp is always initialised. */
int tl_sdp_decode(struct tl_sdp *sdp, const struct tl_pl *body);
/* The direction in force for media m: its own, else the session's, else sendrecv. */
enum tl_sdp_dir tl_sdp_media_dir(const struct tl_sdp *sdp, const struct tl_sdp_media *m);
/* sodium_memzero over every key in sdp. */
void tl_sdp_wipe(struct tl_sdp *sdp);

/* ---- our side of one call: o= line and SRTP keys ----
 * One per call (per dialog), zeroed with tl_sdp_sess_wipe at the end. Our keys are drawn
 * here once per call and suite, independent of the peer's (RFC 4568 §6.1: each direction
 * has its own key); re-offers and re-answers in the same dialog (hold/resume) reuse them,
 * so a hold never forces an SRTP re-key. */
typedef void (*tl_sdp_rand_h)(void *buf, size_t len, void *arg);

struct tl_sdp_sess {
    uint64_t id, ver; /* o= sess-id / sess-version */
    uint64_t digest;  /* of the last printed body after o= (RFC 3264 §8: same → same ver) */
    bool printed;
    tl_sdp_rand_h rnd; /* NULL = libsodium randombytes_buf */
    void *rnd_arg;
    bool have_key[2]; /* indexed by suite - 1 */
    uint8_t key[2][TL_SDP_KEY_LEN];
    /* our last offer, to check the answer against (RFC 3264 §5, §6) */
    bool offered;
    enum tl_sdp_proto offer_proto;
    enum tl_sdp_dir offer_dir;
    bool offer_avp_crypto; /* that offer was RTP/AVP with a=crypto (sdes_on_avp) */
};
int tl_sdp_sess_init(struct tl_sdp_sess *s, tl_sdp_rand_h rnd, void *arg); /* 0 or EIO */
void tl_sdp_sess_wipe(struct tl_sdp_sess *s);

/* ---- offer/answer ---- */
enum tl_sdp_policy { /* the trunk's "Media encryption" setting */
                     TL_SDP_SRTP_DISABLED = 0,
                     TL_SDP_SRTP_ALLOWED,
                     TL_SDP_SRTP_REQUIRED
};

struct tl_sdp_local {
    enum tl_sdp_policy policy;
    const char *addr;    /* our media address, an IPv4 or IPv6 literal; must outlive printing */
    uint16_t port;       /* our RTP port (RTCP on port + 1) */
    enum tl_sdp_dir dir; /* what we want: SENDRECV, or SENDONLY to put the peer on hold */
    /* Our offer under policy allowed: RTP/AVP with our a=crypto lines as well ("best effort
     * SRTP", as Asterisk, FreeSWITCH and most PBXs offer it): an answer that keeps one of
     * them gives SRTP, one without any a=crypto plain RTP. Outbound calls set it. */
    bool sdes_on_avp;
};

enum tl_sdp_codec { TL_SDP_CODEC_NONE = 0, TL_SDP_CODEC_PCMU, TL_SDP_CODEC_PCMA };

/* The outcome of one offer/answer exchange, for the media layer. */
struct tl_sdp_nego {
    size_t midx; /* index of the audio m= line in use */
    enum tl_sdp_codec codec;
    uint8_t pt;                  /* payload type of codec */
    int te_pt;                   /* telephone-event (RFC 4733) PT, -1 when not negotiated */
    uint32_t te_events;          /* bit n = event n, n in 0..16 */
    char te_fmtp[48];            /* te_events as fmtp text; our answer's a=fmtp points here */
    uint32_t ptime;              /* what we send: 20 ms */
    uint32_t rptime;             /* the peer's a=ptime, 0 when absent */
    int af;                      /* AF_INET / AF_INET6 */
    char raddr[TL_SDP_ADDR_MAX]; /* the peer's RTP address (text literal) */
    uint16_t rport;              /* the peer's RTP port (0 is never negotiated) */
    uint16_t rtcp_port;          /* a=rtcp, else rport + 1 */
    bool rtcp_mux_offered;
    enum tl_sdp_dir dir; /* OUR direction, as written in our SDP */
    bool srtp;
    enum tl_sdp_suite suite;
    uint32_t tag;
    uint8_t rkey[TL_SDP_KEY_LEN]; /* the peer's key: decrypts what it sends — SECRET */
    uint8_t lkey[TL_SDP_KEY_LEN]; /* ours: encrypts what we send — SECRET */
};
void tl_sdp_nego_wipe(struct tl_sdp_nego *n);

/* What kind of mismatch a refusal is, for the caller's diagnostics (event codes and
 * hints: docs/calls.md). The Warning code alone does not say: 305 covers codecs and SRTP,
 * 302 both AVPF and DTLS. */
enum tl_sdp_mismatch {
    TL_SDP_MISMATCH_OTHER = 0,  /* no audio stream, the answer's shape */
    TL_SDP_MISMATCH_ENCRYPTION, /* SRTP policy vs RTP/AVP or RTP/SAVP, a=crypto, DTLS-SRTP */
    TL_SDP_MISMATCH_PROFILE,    /* AVPF (RTP/AVPF, RTP/SAVPF, UDP/TLS/RTP/SAVPF: WebRTC) */
    TL_SDP_MISMATCH_CODEC,      /* no PCMU/PCMA at 8000 Hz */
    TL_SDP_MISMATCH_ADDRESS,    /* c= missing or not an IP literal */
};

/* Why an offer (or an answer to our offer) is unusable. The caller answers `status` with
 * a Warning header: `Warning: <warn_code> <our host> "<text>"` (RFC 3261 §20.43). */
struct tl_sdp_refusal {
    int status;    /* 488 */
    int warn_code; /* 300, 301, 302, 304, 305 (RFC 3261 §20.43) */
    enum tl_sdp_mismatch kind;
    char text[256];
};

/* Answers the peer's offer (RFC 3264 §6). On 0, *ans is our answer — print it with
 * tl_sdp_print(…, sess) — and *neg the result. Its slices point into offer's body, into
 * loc->addr and to static strings, so both must outlive the printing. On EPROTO, *why is
 * filled and *ans and *neg are zeroed. EINVAL for bad arguments (loc->addr not an IP literal).
 * One audio stream is taken (see README: choice by policy); every other m= line is
 * answered with port 0. */
int tl_sdp_answer(struct tl_sdp *ans, struct tl_sdp_nego *neg, struct tl_sdp_refusal *why,
                  const struct tl_sdp *offer, const struct tl_sdp_local *loc,
                  struct tl_sdp_sess *sess);

/* Builds our offer (late offer: in the 2xx to an INVITE without SDP; outbound calls;
 * re-INVITE for hold/resume): PCMU, PCMA, telephone-event/8000 (PT 101, 0-16), ptime 20.
 * Policy required → RTP/SAVP with a=crypto tag 1 _80 and tag 2 _32; allowed → RTP/AVP,
 * with those a=crypto lines too when loc->sdes_on_avp (SDES on RTP/AVP is not standard:
 * see README); disabled → RTP/AVP without crypto. 0 or EINVAL. */
int tl_sdp_offer(struct tl_sdp *off, const struct tl_sdp_local *loc, struct tl_sdp_sess *sess);

/* Takes the peer's answer to our last tl_sdp_offer in sess into *neg, validating it
 * against what we offered (RFC 3264 §5–§6, RFC 4568 §7.1.3). An answer to RTP/AVP with
 * a=crypto (sdes_on_avp) is SRTP when it keeps one of our tags, plain RTP when it has no
 * a=crypto line at all, and refused when its only lines are unusable. 0, EPROTO (*why
 * filled; the call is to be ended: ACK + BYE, or 488 to a re-INVITE's ACK), EINVAL (no offer
 * pending). */
int tl_sdp_answer_take(struct tl_sdp_nego *neg, struct tl_sdp_refusal *why,
                       const struct tl_sdp *answer, const struct tl_sdp_local *loc,
                       struct tl_sdp_sess *sess);

/* ---- printer ----
 * Prints sdp into buf (no NUL added), *lenp = length. With sess, the o= line is ours:
 * "- <sess.id> <sess.ver> IN IP4|IP6 <o_addr>", and sess.ver goes up by one whenever the
 * rest of the body differs from the last one printed with sess (RFC 3264 §8); without
 * sess, o= is printed as decoded. Unknown attributes are not printed.
 * 0, ENOSPC, EINVAL (CR/LF/NUL in a slice, missing o= fields). */
int tl_sdp_print(char *buf, size_t cap, size_t *lenp, const struct tl_sdp *sdp,
                 struct tl_sdp_sess *sess);

#endif
