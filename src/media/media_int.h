/* media internals: pure wire functions (no sockets, no allocation — fuzzed by
 * tests/fuzz/fuzz_rtp.c and unit-tested directly) and the port pool. */
#ifndef TL_MEDIA_INT_H
#define TL_MEDIA_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "media/media.h"

/* ---- RTP (RFC 3550 §5.1) ---- */
#define TL_RTP_HDR_MIN 12

struct tl_rtp_hdr {
    bool marker;
    uint8_t pt;
    uint16_t seq;
    uint32_t ts, ssrc;
    size_t hdr_len; /* fixed header + CSRCs + extension */
    const uint8_t *payload;
    size_t payload_len; /* without padding */
};

/* Validates version 2, that the CSRC list and the header extension lie inside the packet
 * and, when check_padding, that the padding count is 1..payload (padding is encrypted under
 * SRTP, so it can only be checked after unprotect). 0 or EBADMSG. */
int tl_rtp_parse(const uint8_t *buf, size_t len, bool check_padding, struct tl_rtp_hdr *h);
/* Writes a 12-byte header (no CSRC, no extension). */
void tl_rtp_write_hdr(uint8_t *buf, bool marker, uint8_t pt, uint16_t seq, uint32_t ts,
                      uint32_t ssrc);

/* ---- RTCP (RFC 3550 §6.4) ---- */
#define TL_RTCP_SR 200
#define TL_RTCP_RR 201

struct tl_rtcp_info {
    uint32_t sender_ssrc;
    bool has_sr;
    uint32_t sr_ntp_mid; /* middle 32 bits of the SR's NTP timestamp (our next LSR) */
    bool has_block;      /* a report block about `our_ssrc` */
    uint8_t fraction_lost;
    int32_t lost; /* 24-bit signed, sign-extended */
    uint32_t max_seq_ext, jitter, lsr, dlsr;
};

/* Parses a compound packet: every sub-packet version 2, lengths inside the datagram, the
 * first one SR or RR (RFC 3550 A.2), padding only on the last. Picks out the first SR and the
 * first report block whose SSRC is our_ssrc. 0 or EBADMSG. */
int tl_rtcp_parse(const uint8_t *buf, size_t len, uint32_t our_ssrc, struct tl_rtcp_info *out);

/* ---- receiver statistics for one source (RFC 3550 A.1, A.3, A.8) ---- */
struct tl_rtp_source {
    bool init;
    uint32_t ssrc;
    uint16_t max_seq;
    uint32_t cycles, base_seq, bad_seq;
    uint32_t received, expected_prior, received_prior;
    bool have_transit;
    uint32_t transit;
    uint32_t jitter_q4; /* jitter << 4, the A.8 integer form */
};

void tl_rtp_source_init(struct tl_rtp_source *s, uint32_t ssrc, uint16_t seq);
/* Counts one packet. arrival is the local clock in timestamp units. with_jitter = false for
 * RFC 4733 packets, whose timestamp is the event start and would read as jitter. Returns
 * false when the packet is outside the window of A.1 (counted only after a resync). */
bool tl_rtp_source_update(struct tl_rtp_source *s, uint16_t seq, uint32_t ts, uint32_t arrival,
                          bool with_jitter);
uint32_t tl_rtp_source_max_ext(const struct tl_rtp_source *s);
uint32_t tl_rtp_source_expected(const struct tl_rtp_source *s);
int32_t tl_rtp_source_lost(const struct tl_rtp_source *s);
/* A.3 interval fraction; advances the interval. */
uint8_t tl_rtp_source_fraction(struct tl_rtp_source *s);

/* ---- RFC 4733 telephone-event ---- */
struct tl_dtmf_ev {
    uint8_t event;
    bool end;
    uint8_t volume;
    uint16_t duration; /* timestamp units */
};
int tl_dtmf_parse(const uint8_t *p, size_t len, struct tl_dtmf_ev *ev); /* 0 or EBADMSG */
void tl_dtmf_write(uint8_t p[4], uint8_t event, bool end, uint8_t volume, uint16_t duration);
char tl_dtmf_char(uint8_t event); /* '\0' for events that are not DTMF/flash */
int tl_dtmf_event(char c);        /* -1 when c is not a DTMF character */

/* Delivers each event once, keyed on (timestamp, event): the marker bit is not required,
 * retransmitted end packets do not repeat it, late packets of older events are ignored. */
struct tl_dtmf_rx {
    bool active, delivered;
    uint8_t event;
    uint16_t duration;
    uint32_t ts;
    uint64_t last_ms;
};
struct tl_dtmf_out {
    char digit;
    uint16_t duration_ms;
};
/* Returns how many digits (0..2) to deliver into out: a previous event whose end packets
 * were all lost, and this one if it just ended. */
int tl_dtmf_rx_feed(struct tl_dtmf_rx *rx, const struct tl_dtmf_ev *ev, uint32_t ts,
                    uint64_t now_ms, struct tl_dtmf_out out[2]);
/* An event still open after idle_ms without packets is delivered (1 or 0). */
int tl_dtmf_rx_flush(struct tl_dtmf_rx *rx, uint64_t now_ms, uint64_t idle_ms,
                     struct tl_dtmf_out *out);

/* ---- latching (README.md "Latching policy"; RTP Bleed, CVE-2017-14099) ----
 * One decision per received packet, the same for IPv4 and IPv6. */
enum tl_latch_verdict {
    TL_LATCH_DROP,   /* refused: counted as drop_source */
    TL_LATCH_ACCEPT, /* taken; the send address stays */
    TL_LATCH_MOVE,   /* taken, and from now on we send to its source */
};
struct tl_latch_in {
    enum tl_media_latch policy; /* SDP_IP, ANY or OFF (not DEFAULT) */
    bool have_remote;           /* a send address exists (SDP, or an earlier latch) */
    bool from_current;          /* source == where this socket's packets go now */
    bool from_sdp_ip;           /* source IP == the SDP address's IP */
    bool from_rtp_ip;           /* RTCP: source IP == where RTP goes now */
    bool authenticated;         /* SRTP/SRTCP that passed libsrtp */
    bool is_rtp;                /* else RTCP */
    bool any_latched;           /* ANY: RTP already took its one source */
};
enum tl_latch_verdict tl_latch_decide(const struct tl_latch_in *in);

/* Address comparisons for latching: family and IP (and port), IPv4 or IPv6. Other families
 * never compare equal. Inline: tl_sa_same runs on every packet received. */
static inline bool tl_sa_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    if (a->sa_family == AF_INET6)
        return !memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                       &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
                       sizeof(struct in6_addr));
    return false;
}

static inline in_port_t tl_sa_port(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)(const void *)a)->sin6_port
                                    : ((const struct sockaddr_in *)(const void *)a)->sin_port;
}

static inline bool tl_sa_same(const struct sockaddr *a, const struct sockaddr *b)
{
    return tl_sa_same_ip(a, b) && tl_sa_port(a) == tl_sa_port(b);
}

/* ---- port pool: even RTP ports in [min, max], FIFO of free pairs ----
 * FIFO rather than LIFO so a freed pair is reused last: late packets of an ended call then
 * do not reach the next call on the same port. alloc/free are O(1). */
struct tl_port_pool {
    uint16_t *ring; /* free pair indexes */
    uint32_t n, head, count;
    uint16_t base;
};
int tl_port_pool_init(struct tl_port_pool *p, uint16_t min, uint16_t max); /* EINVAL/ENOMEM */
void tl_port_pool_free(struct tl_port_pool *p);
int tl_port_pool_get(struct tl_port_pool *p, uint16_t *rtp_port); /* EADDRNOTAVAIL */
void tl_port_pool_put(struct tl_port_pool *p, uint16_t rtp_port);

#endif
