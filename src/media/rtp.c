/* Pure wire functions for RTP, RTCP and RFC 4733, receiver statistics, latching decisions,
 * the port pool. Nothing
 * here touches sockets or allocates per packet, so the fuzzer calls it directly. */
#include "media/media_int.h"

#include <errno.h>
#include <sodium.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- RTP ---- */

int tl_rtp_parse(const uint8_t *buf, size_t len, bool check_padding, struct tl_rtp_hdr *h)
{
    if (len < TL_RTP_HDR_MIN || buf[0] >> 6 != 2)
        return EBADMSG;
    size_t hl = TL_RTP_HDR_MIN + 4u * (buf[0] & 0x0f);
    if (hl > len)
        return EBADMSG;
    if (buf[0] & 0x10) {
        /* RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words */
        if (hl + 4 > len)
            return EBADMSG;
        size_t xl = 4 + 4u * be16(buf + hl + 2);
        if (xl > len - hl)
            return EBADMSG;
        hl += xl;
    }
    size_t pl = len - hl;
    if (check_padding && (buf[0] & 0x20)) {
        /* the count includes itself, so 0 is invalid; it may not eat into the header */
        uint8_t pad = buf[len - 1];
        if (pad == 0 || pad > pl)
            return EBADMSG;
        pl -= pad;
    }
    h->marker = buf[1] & 0x80;
    h->pt = buf[1] & 0x7f;
    h->seq = be16(buf + 2);
    h->ts = be32(buf + 4);
    h->ssrc = be32(buf + 8);
    h->hdr_len = hl;
    h->payload = buf + hl;
    h->payload_len = pl;
    return 0;
}

void tl_rtp_write_hdr(uint8_t *buf, bool marker, uint8_t pt, uint16_t seq, uint32_t ts,
                      uint32_t ssrc)
{
    buf[0] = 0x80;
    buf[1] = (uint8_t)((marker ? 0x80 : 0) | (pt & 0x7f));
    put16(buf + 2, seq);
    put32(buf + 4, ts);
    put32(buf + 8, ssrc);
}

/* ---- RTCP ---- */

static void parse_block(const uint8_t *b, struct tl_rtcp_info *out)
{
    out->has_block = true;
    out->fraction_lost = b[4];
    uint32_t l = (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7];
    out->lost = (l & 0x800000) ? (int32_t)(l | 0xff000000u) : (int32_t)l;
    out->max_seq_ext = be32(b + 8);
    out->jitter = be32(b + 12);
    out->lsr = be32(b + 16);
    out->dlsr = be32(b + 20);
}

int tl_rtcp_parse(const uint8_t *buf, size_t len, uint32_t our_ssrc, struct tl_rtcp_info *out)
{
    memset(out, 0, sizeof *out);
    if (len < 8)
        return EBADMSG;
    size_t pos = 0;
    bool first = true;
    while (pos < len) {
        if (len - pos < 4)
            return EBADMSG;
        const uint8_t *p = buf + pos;
        if (p[0] >> 6 != 2)
            return EBADMSG;
        unsigned count = p[0] & 0x1f, pt = p[1];
        size_t plen = 4u * ((size_t)be16(p + 2) + 1);
        if (plen > len - pos)
            return EBADMSG;
        size_t blen = plen;
        if (p[0] & 0x20) {
            if (pos + plen != len) /* A.2: only the last packet may be padded */
                return EBADMSG;
            uint8_t pad = p[plen - 1];
            if (pad == 0 || pad > plen - 4)
                return EBADMSG;
            blen -= pad;
        }
        if (first && pt != TL_RTCP_SR && pt != TL_RTCP_RR)
            return EBADMSG;
        if (pt == TL_RTCP_SR || pt == TL_RTCP_RR) {
            size_t fixed = pt == TL_RTCP_SR ? 28 : 8; /* header + ssrc (+ sender info) */
            if (blen < fixed + 24u * count)
                return EBADMSG;
            if (first)
                out->sender_ssrc = be32(p + 4);
            if (pt == TL_RTCP_SR && !out->has_sr) {
                out->has_sr = true;
                out->sr_ntp_mid = be32(p + 8) << 16 | be32(p + 12) >> 16;
            }
            for (unsigned i = 0; i < count && !out->has_block; i++) {
                const uint8_t *b = p + fixed + 24u * i;
                if (be32(b) == our_ssrc)
                    parse_block(b, out);
            }
        }
        first = false;
        pos += plen;
    }
    return 0;
}

/* ---- receiver statistics (RFC 3550 A.1, A.3, A.8) ---- */

#define SEQ_MOD      (1u << 16)
#define MAX_DROPOUT  3000
#define MAX_MISORDER 100

static void init_seq(struct tl_rtp_source *s, uint16_t seq)
{
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = SEQ_MOD + 1; /* so seq == bad_seq is false */
    s->cycles = 0;
    s->received = 0;
    s->received_prior = 0;
    s->expected_prior = 0;
}

void tl_rtp_source_init(struct tl_rtp_source *s, uint32_t ssrc, uint16_t seq)
{
    memset(s, 0, sizeof *s);
    s->init = true;
    s->ssrc = ssrc;
    init_seq(s, seq);
}

bool tl_rtp_source_update(struct tl_rtp_source *s, uint16_t seq, uint32_t ts, uint32_t arrival,
                          bool with_jitter)
{
    uint16_t udelta = (uint16_t)(seq - s->max_seq);
    if (udelta < MAX_DROPOUT) {
        if (seq < s->max_seq)
            s->cycles += SEQ_MOD;
        s->max_seq = seq;
    } else if (udelta <= SEQ_MOD - MAX_MISORDER) {
        /* a big jump: believe it only when the next packet continues from it (the sender
         * restarted), otherwise it is a stray packet */
        if (seq == s->bad_seq) {
            init_seq(s, seq);
        } else {
            s->bad_seq = (seq + 1) & (SEQ_MOD - 1);
            return false;
        }
    } /* else duplicate or reordered: counted, does not move max_seq */
    s->received++;
    if (with_jitter) {
        uint32_t transit = arrival - ts;
        if (!s->have_transit) {
            s->have_transit = true; /* the first sample only sets the reference */
            s->transit = transit;
        } else {
            /* |D| in unsigned arithmetic: negating INT32_MIN would be undefined */
            uint32_t d = transit - s->transit;
            if (d & 0x80000000u)
                d = 0u - d;
            s->transit = transit;
            s->jitter_q4 += d - ((s->jitter_q4 + 8) >> 4);
        }
    }
    return true;
}

uint32_t tl_rtp_source_max_ext(const struct tl_rtp_source *s)
{
    return s->cycles + s->max_seq;
}

uint32_t tl_rtp_source_expected(const struct tl_rtp_source *s)
{
    return s->init ? tl_rtp_source_max_ext(s) - s->base_seq + 1 : 0;
}

int32_t tl_rtp_source_lost(const struct tl_rtp_source *s)
{
    return (int32_t)(tl_rtp_source_expected(s) - s->received);
}

uint8_t tl_rtp_source_fraction(struct tl_rtp_source *s)
{
    uint32_t expected = tl_rtp_source_expected(s);
    uint32_t exp_int = expected - s->expected_prior;
    uint32_t rec_int = s->received - s->received_prior;
    s->expected_prior = expected;
    s->received_prior = s->received;
    int64_t lost_int = (int64_t)exp_int - rec_int;
    if (exp_int == 0 || lost_int <= 0)
        return 0;
    return (uint8_t)((lost_int << 8) / exp_int > 255 ? 255 : (lost_int << 8) / exp_int);
}

/* ---- RFC 4733 ---- */

int tl_dtmf_parse(const uint8_t *p, size_t len, struct tl_dtmf_ev *ev)
{
    if (len < 4)
        return EBADMSG;
    ev->event = p[0];
    ev->end = p[1] & 0x80;
    ev->volume = p[1] & 0x3f;
    ev->duration = be16(p + 2);
    return 0;
}

void tl_dtmf_write(uint8_t p[4], uint8_t event, bool end, uint8_t volume, uint16_t duration)
{
    p[0] = event;
    p[1] = (uint8_t)((end ? 0x80 : 0) | (volume & 0x3f));
    put16(p + 2, duration);
}

static const char DTMF_CHARS[] = "0123456789*#ABCD!";

char tl_dtmf_char(uint8_t event)
{
    return event < sizeof DTMF_CHARS - 1 ? DTMF_CHARS[event] : '\0';
}

int tl_dtmf_event(char c)
{
    if (c >= 'a' && c <= 'd')
        c = (char)(c - 'a' + 'A');
    for (int i = 0; i < 16; i++) /* flash (16) is receive-only */
        if (DTMF_CHARS[i] == c)
            return i;
    return -1;
}

static void emit(struct tl_dtmf_rx *rx, struct tl_dtmf_out *o)
{
    o->digit = tl_dtmf_char(rx->event);
    o->duration_ms = (uint16_t)(rx->duration / 8); /* 8 kHz clock */
    rx->delivered = true;
}

int tl_dtmf_rx_feed(struct tl_dtmf_rx *rx, const struct tl_dtmf_ev *ev, uint32_t ts,
                    uint64_t now_ms, struct tl_dtmf_out out[2])
{
    if (!tl_dtmf_char(ev->event))
        return 0;
    int n = 0;
    if (rx->active && ts == rx->ts && ev->event == rx->event) {
        /* the same event: a continuation or one of the (usually 3) end packets */
        if (ev->duration > rx->duration)
            rx->duration = ev->duration;
        rx->last_ms = now_ms;
        if (ev->end && !rx->delivered)
            emit(rx, &out[n++]);
        return n;
    }
    /* late packets of an earlier event (reordered behind a newer one) */
    if (rx->active && (int32_t)(ts - rx->ts) < 0)
        return 0;
    /* a new event; the marker bit is deliberately not consulted, some carriers omit it */
    if (rx->active && !rx->delivered)
        emit(rx, &out[n++]);
    rx->active = true;
    rx->delivered = false;
    rx->ts = ts;
    rx->event = ev->event;
    rx->duration = ev->duration;
    rx->last_ms = now_ms;
    if (ev->end)
        emit(rx, &out[n++]);
    return n;
}

int tl_dtmf_rx_flush(struct tl_dtmf_rx *rx, uint64_t now_ms, uint64_t idle_ms,
                     struct tl_dtmf_out *out)
{
    if (!rx->active || rx->delivered || now_ms - rx->last_ms < idle_ms)
        return 0;
    emit(rx, out);
    return 1;
}

/* ---- port pool ---- */

int tl_port_pool_init(struct tl_port_pool *p, uint16_t min, uint16_t max)
{
    memset(p, 0, sizeof *p);
    uint32_t base = (min + 1u) & ~1u; /* RTP on even ports (RFC 3550 §11) */
    if (base == 0 || base >= max)
        return EINVAL;
    uint32_t n = ((uint32_t)max - base + 1) / 2;
    p->ring = malloc(n * sizeof *p->ring);
    if (!p->ring)
        return ENOMEM;
    for (uint32_t i = 0; i < n; i++)
        p->ring[i] = (uint16_t)i;
    /* Shuffled (Fisher–Yates): ports an off-path attacker cannot predict (RFC 3550 §5.1
     * recommends it against injection), and a second daemon or another program on the
     * same range is not met pair after pair from the bottom of the range. */
    for (uint32_t i = n - 1; i > 0; i--) {
        uint32_t j = randombytes_uniform(i + 1);
        uint16_t t = p->ring[i];
        p->ring[i] = p->ring[j];
        p->ring[j] = t;
    }
    p->n = p->count = n;
    p->base = (uint16_t)base;
    return 0;
}

void tl_port_pool_free(struct tl_port_pool *p)
{
    free(p->ring);
    memset(p, 0, sizeof *p);
}

int tl_port_pool_get(struct tl_port_pool *p, uint16_t *rtp_port)
{
    if (p->count == 0)
        return EADDRNOTAVAIL;
    uint16_t i = p->ring[p->head];
    p->head = (p->head + 1) % p->n;
    p->count--;
    *rtp_port = (uint16_t)(p->base + 2u * i);
    return 0;
}

void tl_port_pool_put(struct tl_port_pool *p, uint16_t rtp_port)
{
    p->ring[(p->head + p->count) % p->n] = (uint16_t)((rtp_port - p->base) / 2);
    p->count++;
}

/* ---- latching ---- */

static const char *const latch_names[] = {NULL, "sdp-ip", "any", "off"};

const char *tl_media_latch_name(enum tl_media_latch l)
{
    return (unsigned)l < sizeof latch_names / sizeof latch_names[0] ? latch_names[l] : NULL;
}

int tl_media_latch_parse(const char *s)
{
    for (int i = 1; s && i < (int)(sizeof latch_names / sizeof latch_names[0]); i++)
        if (!strcmp(s, latch_names[i]))
            return i;
    return -1;
}

enum tl_latch_verdict tl_latch_decide(const struct tl_latch_in *in)
{
    if (in->have_remote && in->from_current)
        return TL_LATCH_ACCEPT;
    switch (in->policy) {
    case TL_MEDIA_LATCH_OFF:
        /* accepted, but we keep sending to the SDP address */
        return in->from_sdp_ip || in->authenticated ? TL_LATCH_ACCEPT : TL_LATCH_DROP;
    case TL_MEDIA_LATCH_ANY:
        if (in->authenticated || (in->is_rtp && !in->any_latched))
            return TL_LATCH_MOVE;
        /* RTCP follows the SDP IP, or the host RTP latched to: behind NAT the carrier's
         * RTCP comes from the same public IP as its RTP, rarely from its SDP address */
        if (!in->is_rtp && (in->from_sdp_ip || in->from_rtp_ip))
            return TL_LATCH_MOVE;
        return TL_LATCH_DROP;
    default: /* SDP_IP: NAT may change the port, rarely the IP */
        return in->authenticated || in->from_sdp_ip ? TL_LATCH_MOVE : TL_LATCH_DROP;
    }
}
