/* The media engine (port pool, one pacing clock, chunk pool, libsrtp) and the per-call
 * stream (sockets, SRTP, latching, queues, DTMF, RTCP, timeout). Everything runs on one
 * libuv loop. Cost model: no allocation per packet (one shared receive buffer and one
 * shared send buffer per engine, outgoing audio in pooled chunks), one timer for all
 * streams, exactly one syscall per datagram each way: a uv_poll on the raw socket and one
 * recvmsg per readiness event (uv_udp would add a second recvmsg that returns EAGAIN after
 * every packet), a plain sendto per packet sent. */
#include "media/media.h"
#include "media/media_int.h"
#include "core/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <srtp2/srtp.h>

#define CHUNK_DATA      1012 /* makes a chunk exactly 1 KiB */
#define SLAB_CHUNKS     16
#define BIND_ATTEMPTS   16
#define CATCHUP_TICKS   5    /* after a stall longer than this, re-anchor the clock */
#define DTMF_END_PKTS   3    /* RFC 4733 §2.5.1.4 */
#define DTMF_GAP_TICKS  3    /* 60 ms silence between digits */
#define DTMF_WAIT       0xff /* a queued 'w' */
#define DTMF_VOLUME     10
#define DTMF_IDLE_MS    1000
#define PT_CN           13
#define RX_BUF          2048
#define TX_BUF          (TL_MEDIA_PKT_MAX + SRTP_MAX_TRAILER_LEN + 4)
#define NTP_UNIX_OFFSET 2208988800u
#define DSCP_EF         0xb8

/* a socket address of either family; the stream's family fixes which member is in use */
union sa {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
};

struct chunk {
    struct chunk *next;
    uint16_t start, end;
    uint8_t data[CHUNK_DATA];
};

struct slab {
    struct slab *next;
    struct chunk c[SLAB_CHUNKS];
};

struct tl_media_engine {
    uv_loop_t *loop;
    uv_timer_t timer;
    bool running, closing, loop_metrics;
    uint64_t next_due; /* t0 + n * 20 ms */
    /* load (media.h): the clock's lateness, the loop's busy share sampled every 25 ticks */
    double late_ewma, busy_ewma;
    uint64_t load_t0_ns, load_idle0_ns;
    uint32_t load_ticks;
    struct tl_port_pool ports;
    struct tl_media_stream *head; /* active streams */
    uint32_t nstreams, max_streams, rtcp_interval_ms;
    enum tl_media_latch latch;
    struct sockaddr_in bind4;
    struct sockaddr_in6 bind6;
    char public_ip[64];
    struct chunk *free_chunks;
    uint32_t free_count;
    struct slab *slabs;
    uint64_t rng;
    uint8_t rxbuf[RX_BUF];
    uint8_t txbuf[TX_BUF];
};

struct mark {
    uint64_t pos;
    uint32_t id;
};

struct tl_media_stream {
    struct tl_media_engine *e;
    struct tl_media_stream *prev, *next;
    /* uv_poll, not uv_udp: see the top of this file. The fds are ours to close (after
     * uv_close, in stream_closed), as uv_poll never closes them. */
    uv_poll_t rtp, rtcp;
    int fd_rtp, fd_rtcp;
    struct tl_media_stream_cb cb;
    void *arg;
    bool closing, open_failed, have_remote, any_latched, pending;
    bool send_ok, recv_expected, talkspurt, partial_wait, timeout_fired;
    uint8_t close_pending;
    uint8_t pt;
    int16_t dtmf_pt;
    uint16_t port;
    enum tl_media_latch latch;
    int af;          /* AF_INET or AF_INET6: the sockets' family, fixed at open */
    socklen_t salen; /* sizeof the family's sockaddr */
    union sa sdp_rtp, sdp_rtcp, tx_rtp, tx_rtcp;
    srtp_t srtp_tx, srtp_rx;
    /* sending */
    uint32_t ssrc, ts;
    uint16_t seq;
    struct chunk *qh, *qt;
    uint32_t qbytes;
    uint64_t written, sent; /* byte positions, for marks */
    /* pending marks, a ring grown on demand: most streams never have one, a bot that marks
     * every chunk (the OpenAI realtime demo) has hundreds while seconds of audio queue */
    struct mark *marks;
    uint32_t mcap, mhead, mcount;
    struct {
        uint8_t event, ticks;
    } dq[TL_MEDIA_DTMF_QUEUE_MAX];
    uint8_t dqhead, dqcount;
    struct {
        bool active;
        uint8_t event, ticks, k, gap;
        uint32_t ts;
    } dtx;
    /* receiving */
    struct tl_rtp_source src;
    struct tl_dtmf_rx drx;
    uint64_t last_rx_ms;
    uint32_t timeout_ms;
    /* one-way audio watch (tl_media_stream_watch): from when, the gap that reports, and
     * what had been received at its start and sent at the last packet received */
    uint64_t quiet_from;
    uint32_t quiet_ms;
    bool quiet_fired;
    uint64_t rx_at_watch, tx_at_last_rx;
    uint32_t lsr;       /* middle of the last SR's NTP time */
    uint64_t lsr_at_ms; /* when it arrived */
    uint64_t next_rtcp_ms;
    uint64_t tx_packets_at_rtcp;
    /* RTP refused by the latching policy: the first source, when, reported yet */
    bool unl_seen, unl_reported;
    uint64_t unl_first_ms;
    union sa unl_from;
    uint32_t unl_dropped;
    struct tl_media_stats st;
};

static int srtp_users; /* srtp_init/srtp_shutdown are process-wide */

static uint32_t rng32(struct tl_media_engine *e)
{
    /* xorshift64*: only spreads RTCP timing; SSRC/seq/ts come from getrandom */
    e->rng ^= e->rng >> 12;
    e->rng ^= e->rng << 25;
    e->rng ^= e->rng >> 27;
    return (uint32_t)((e->rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static void random_bytes(void *buf, size_t n)
{
    if (getrandom(buf, n, 0) != (ssize_t)n) {
        /* not expected on Linux ≥ 3.17; SSRC/seq/ts need unpredictability, not secrecy */
        uint64_t x = uv_hrtime() ^ (uintptr_t)buf;
        for (size_t i = 0; i < n; i++, x = x * 6364136223846793005ull + 1)
            ((uint8_t *)buf)[i] = (uint8_t)(x >> 56);
    }
}

/* ---- chunk pool ---- */

static int pool_reserve(struct tl_media_engine *e, uint32_t need)
{
    while (e->free_count < need) {
        struct slab *sl = malloc(sizeof *sl);
        if (!sl)
            return ENOMEM;
        sl->next = e->slabs;
        e->slabs = sl;
        for (int i = 0; i < SLAB_CHUNKS; i++) {
            sl->c[i].next = e->free_chunks;
            e->free_chunks = &sl->c[i];
        }
        e->free_count += SLAB_CHUNKS;
    }
    return 0;
}

static struct chunk *chunk_get(struct tl_media_engine *e)
{
    struct chunk *c = e->free_chunks; /* reserved beforehand: never NULL */
    e->free_chunks = c->next;
    e->free_count--;
    c->next = NULL;
    c->start = c->end = 0;
    return c;
}

static void chunk_put(struct tl_media_engine *e, struct chunk *c)
{
    /* LIFO so the hot set of pages stays small */
    c->next = e->free_chunks;
    e->free_chunks = c;
    e->free_count++;
}

static void queue_drop(struct tl_media_stream *s)
{
    while (s->qh) {
        struct chunk *c = s->qh;
        s->qh = c->next;
        chunk_put(s->e, c);
    }
    s->qt = NULL;
    s->qbytes = 0;
    s->partial_wait = false;
}

static size_t queue_pop(struct tl_media_stream *s, uint8_t *out, size_t n)
{
    size_t got = 0;
    while (got < n && s->qh) {
        struct chunk *c = s->qh;
        size_t k = c->end - c->start;
        if (k > n - got)
            k = n - got;
        memcpy(out + got, c->data + c->start, k);
        c->start = (uint16_t)(c->start + k);
        got += k;
        if (c->start == c->end) {
            s->qh = c->next;
            if (!s->qh)
                s->qt = NULL;
            chunk_put(s->e, c);
        }
    }
    s->qbytes -= (uint32_t)got;
    return got;
}

/* ---- sending ---- */

/* One sendto per packet, never queued (what uv_udp_try_send did, minus its bookkeeping). A
 * full socket buffer (EAGAIN) drops the packet; the caller counts it. */
static ssize_t send_to(int fd, const uint8_t *b, size_t len, const union sa *to, socklen_t salen)
{
    ssize_t r;
    do
        r = sendto(fd, b, len, 0, &to->sa, salen);
    while (r < 0 && errno == EINTR);
    return r;
}

static void send_rtp(struct tl_media_stream *s, bool marker, uint8_t pt, uint32_t ts, size_t plen)
{
    struct tl_media_engine *e = s->e;
    uint8_t *b = e->txbuf;
    if (s->pending)
        return; /* no codec or keys yet (late offer) */
    tl_rtp_write_hdr(b, marker, pt, s->seq++, ts, s->ssrc);
    int len = (int)(TL_RTP_HDR_MIN + plen);
    if (s->srtp_tx && srtp_protect(s->srtp_tx, b, &len) != srtp_err_status_ok) {
        s->st.tx_errors++;
        return;
    }
    if (send_to(s->fd_rtp, b, (size_t)len, &s->tx_rtp, s->salen) < 0) {
        s->st.tx_errors++; /* a full socket buffer drops this frame, never queues it */
        return;
    }
    s->st.tx_packets++;
    s->st.tx_bytes += plen;
}

static void fire_marks(struct tl_media_stream *s)
{
    while (s->mcount && !s->closing && s->marks[s->mhead].pos <= s->sent) {
        uint32_t id = s->marks[s->mhead].id;
        s->mhead = (s->mhead + 1) % s->mcap;
        s->mcount--;
        if (s->cb.on_mark)
            s->cb.on_mark(s, s->arg, id);
    }
}

static void audio_tick(struct tl_media_stream *s)
{
    if (s->qbytes == 0) {
        s->talkspurt = false;
        return;
    }
    if (s->qbytes < TL_MEDIA_FRAME && !s->partial_wait) {
        s->partial_wait = true; /* the writer may be mid-frame: give it one tick */
        return;
    }
    s->partial_wait = false;
    uint8_t *pl = s->e->txbuf + TL_RTP_HDR_MIN;
    size_t n = queue_pop(s, pl, TL_MEDIA_FRAME);
    /* pad a short last frame with codec silence so timestamps stay 160 apart */
    memset(pl + n, s->pt == 8 ? 0xd5 : 0xff, TL_MEDIA_FRAME - n);
    s->sent += n;
    if (s->send_ok && s->have_remote) {
        send_rtp(s, !s->talkspurt, s->pt, s->ts, TL_MEDIA_FRAME); /* RFC 3551 §4.1 marker */
        s->talkspurt = true;
    }
    fire_marks(s);
}

/* RFC 4733 §2.5: one timestamp per event, duration growing every packet, marker on the first,
 * three end packets; audio pauses meanwhile. Returns true when this tick belonged to DTMF. */
static bool dtmf_tick(struct tl_media_stream *s)
{
    if (!s->dtx.active) {
        if (s->dtx.gap && s->dqcount) {
            s->dtx.gap--;
            return true;
        }
        s->dtx.gap = 0;
        if (!s->dqcount)
            return false;
        uint8_t ev = s->dq[s->dqhead].event, ticks = s->dq[s->dqhead].ticks;
        s->dqhead = (uint8_t)((s->dqhead + 1) % TL_MEDIA_DTMF_QUEUE_MAX);
        s->dqcount--;
        if (ev == DTMF_WAIT) { /* a pause before the next digit; nothing after it: none */
            s->dtx.gap = ticks;
            return true;
        }
        s->dtx.active = true;
        s->dtx.event = ev;
        s->dtx.ticks = ticks;
        s->dtx.k = 0;
        s->dtx.ts = s->ts;
        s->talkspurt = false; /* audio after the digits starts a new talkspurt */
    }
    bool end = s->dtx.k >= s->dtx.ticks;
    uint16_t dur = (uint16_t)((end ? s->dtx.ticks : s->dtx.k + 1u) * TL_MEDIA_FRAME);
    if (s->send_ok && s->have_remote) {
        tl_dtmf_write(s->e->txbuf + TL_RTP_HDR_MIN, s->dtx.event, end, DTMF_VOLUME, dur);
        send_rtp(s, s->dtx.k == 0, (uint8_t)s->dtmf_pt, s->dtx.ts, 4);
    }
    if (++s->dtx.k >= s->dtx.ticks + DTMF_END_PKTS) {
        s->dtx.active = false;
        s->dtx.gap = DTMF_GAP_TICKS;
        s->st.dtmf_tx++;
    }
    return true;
}

static uint32_t ntp_mid_now(uint32_t *msw, uint32_t *lsw)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    uint32_t sec = (uint32_t)t.tv_sec + NTP_UNIX_OFFSET;
    uint32_t frac = (uint32_t)(((uint64_t)t.tv_nsec << 32) / 1000000000u);
    if (msw)
        *msw = sec;
    if (lsw)
        *lsw = frac;
    return sec << 16 | frac >> 16;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* SR (when we sent RTP since the last report) or RR, one report block about the remote
 * source, SDES CNAME — the minimal compound packet of RFC 3550 §6.1. */
static void send_rtcp(struct tl_media_stream *s, uint64_t now)
{
    uint8_t *b = s->e->txbuf;
    bool sr = s->st.tx_packets > s->tx_packets_at_rtcp;
    s->tx_packets_at_rtcp = s->st.tx_packets;
    int rc = s->src.init ? 1 : 0;
    size_t n = sr ? 28 : 8;
    b[0] = (uint8_t)(0x80 | rc);
    b[1] = sr ? TL_RTCP_SR : TL_RTCP_RR;
    put32(b + 4, s->ssrc);
    if (sr) {
        uint32_t msw, lsw;
        ntp_mid_now(&msw, &lsw);
        put32(b + 8, msw);
        put32(b + 12, lsw);
        put32(b + 16, s->ts);
        put32(b + 20, (uint32_t)s->st.tx_packets);
        put32(b + 24, (uint32_t)s->st.tx_bytes);
    }
    if (rc) {
        uint8_t *r = b + n;
        int32_t lost = tl_rtp_source_lost(&s->src);
        lost = lost > 0x7fffff ? 0x7fffff : lost < -0x800000 ? -0x800000 : lost;
        s->st.fraction_lost = tl_rtp_source_fraction(&s->src);
        put32(r, s->src.ssrc);
        put32(r + 4, (uint32_t)s->st.fraction_lost << 24 | ((uint32_t)lost & 0xffffff));
        put32(r + 8, tl_rtp_source_max_ext(&s->src));
        put32(r + 12, s->src.jitter_q4 >> 4);
        put32(r + 16, s->lsr);
        put32(r + 20, s->lsr ? (uint32_t)((now - s->lsr_at_ms) * 65536 / 1000) : 0);
        n += 24;
    }
    b[2] = (uint8_t)((n / 4 - 1) >> 8);
    b[3] = (uint8_t)(n / 4 - 1);
    /* SDES: one chunk, CNAME "tl-<ssrc>" (random per stream, RFC 7022 spirit), END, pad */
    uint8_t *d = b + n;
    d[0] = 0x81;
    d[1] = 202;
    put32(d + 4, s->ssrc);
    d[8] = 1;
    d[9] = 11;
    snprintf((char *)d + 10, 12, "tl-%08x", s->ssrc);
    size_t dl = 10 + 11;
    d[dl++] = 0;
    while (dl % 4)
        d[dl++] = 0;
    d[2] = (uint8_t)((dl / 4 - 1) >> 8);
    d[3] = (uint8_t)(dl / 4 - 1);
    int len = (int)(n + dl);
    if (s->srtp_tx && srtp_protect_rtcp(s->srtp_tx, b, &len) != srtp_err_status_ok) {
        s->st.tx_errors++;
        return;
    }
    if (send_to(s->fd_rtcp, b, (size_t)len, &s->tx_rtcp, s->salen) < 0)
        s->st.tx_errors++;
    else
        s->st.rtcp_tx++;
}

/* ---- the clock ---- */

static uint64_t rtcp_delay(struct tl_media_engine *e)
{
    /* RFC 3550 §6.3.1: randomise to [0.5, 1.5] × interval so streams opened together drift
     * apart and do not all report on the same tick */
    uint64_t i = e->rtcp_interval_ms;
    return i / 2 + rng32(e) % (i + 1);
}

static void stream_tick(struct tl_media_stream *s, uint64_t now)
{
    /* pending (the answer is not there yet: an outbound call ringing, an inbound late offer
     * before its ACK): what the agent queued waits, so a greeting it sends before the answer
     * is heard from the answer on, not played into nowhere meanwhile */
    if (!s->pending && !dtmf_tick(s))
        audio_tick(s);
    /* the timestamp advances every tick, sent or not, so the far end's jitter buffer sees
     * silence as a gap rather than as compressed time */
    s->ts += TL_MEDIA_FRAME;
    if (s->closing)
        return;
    if (s->have_remote && !s->pending && now >= s->next_rtcp_ms) {
        send_rtcp(s, now);
        s->next_rtcp_ms = now + rtcp_delay(s->e);
    }
    struct tl_dtmf_out o;
    if (tl_dtmf_rx_flush(&s->drx, now, DTMF_IDLE_MS, &o)) {
        s->st.dtmf_rx++;
        if (s->cb.on_dtmf)
            s->cb.on_dtmf(s, s->arg, o.digit, o.duration_ms);
        if (s->closing)
            return;
    }
    if (s->unl_seen && !s->unl_reported && now - s->unl_first_ms >= TL_MEDIA_UNLATCHED_REPORT_MS) {
        s->unl_reported = true;
        struct tl_media_unlatched u;
        tl_media_stream_unlatched(s, &u);
        if (s->cb.on_unlatched)
            s->cb.on_unlatched(s, s->arg, &u);
        if (s->closing)
            return;
    }
    /* one-way audio: nothing from the far end for quiet_ms since the watch began, or its
     * RTP stopped while ours went on (both sides silent is a pause, not a fault) */
    if (s->quiet_ms && !s->quiet_fired && s->recv_expected && !s->pending && s->have_remote) {
        uint64_t since = s->last_rx_ms > s->quiet_from ? s->last_rx_ms : s->quiet_from;
        bool never = s->st.rx_packets == s->rx_at_watch;
        if (now - since >= s->quiet_ms && (never || s->st.tx_packets > s->tx_at_last_rx)) {
            s->quiet_fired = true;
            if (s->cb.on_quiet)
                s->cb.on_quiet(s, s->arg, never, (uint32_t)(now - since));
            if (s->closing)
                return;
        }
    }
    if (s->recv_expected && !s->pending && s->timeout_ms && !s->timeout_fired &&
        now - s->last_rx_ms >= s->timeout_ms) {
        s->timeout_fired = true;
        if (s->cb.on_timeout)
            s->cb.on_timeout(s, s->arg);
    }
}

/* Lateness of this tick, and every 25 ticks (~0.5 s) the share of the window the loop
 * was not waiting in its poll (libuv's idle-time metric): what admission reads. */
static void load_sample(struct tl_media_engine *e, uint64_t now)
{
    double late = now > e->next_due ? (double)(now - e->next_due) : 0.0;
    e->late_ewma += (late - e->late_ewma) / 16.0;
    if (!e->loop_metrics || ++e->load_ticks < 25)
        return;
    e->load_ticks = 0;
    uint64_t idle = uv_metrics_idle_time(e->loop);
    uint64_t hr = uv_hrtime();
    if (e->load_t0_ns) {
        double span = (double)(hr - e->load_t0_ns);
        double busy = span > 0 ? 100.0 * (1.0 - (double)(idle - e->load_idle0_ns) / span) : 0;
        busy = busy < 0 ? 0 : busy > 100 ? 100 : busy;
        e->busy_ewma += (busy - e->busy_ewma) / 2.0;
    }
    e->load_t0_ns = hr;
    e->load_idle0_ns = idle;
}

void tl_media_engine_load(const struct tl_media_engine *e, struct tl_media_load *out)
{
    out->busy_pct = e->running ? e->busy_ewma : 0;
    out->late_ms = e->running ? e->late_ewma : 0;
}

static void on_tick(uv_timer_t *t)
{
    struct tl_media_engine *e = t->data;
    uint64_t now = uv_now(e->loop);
    int n = 0;
    load_sample(e, now);
    while (e->next_due <= now && n < CATCHUP_TICKS && e->head) {
        /* A stream closed in a callback is unlinked but its memory lives until the loop's
         * closing phase, after this walk: following its stale `next` is safe and leads back
         * into the list. Streams opened during the walk are inserted at the head, unseen. */
        for (struct tl_media_stream *s = e->head, *nx; s; s = nx) {
            nx = s->next;
            if (!s->closing)
                stream_tick(s, now);
        }
        e->next_due += TL_MEDIA_TICK_MS;
        n++;
    }
    if (!e->head) {
        uv_timer_stop(t);
        e->running = false;
        e->late_ewma = e->busy_ewma = 0;
        e->load_t0_ns = 0;
        e->load_ticks = 0;
        return;
    }
    if (e->next_due <= now) /* stalled > 100 ms: sending a burst would not help anyone */
        e->next_due = now + TL_MEDIA_TICK_MS;
    uv_timer_start(t, on_tick, e->next_due - now, 0);
}

static void clock_start(struct tl_media_engine *e)
{
    if (e->running)
        return;
    e->running = true;
    e->next_due = uv_now(e->loop) + TL_MEDIA_TICK_MS;
    uv_timer_start(&e->timer, on_tick, TL_MEDIA_TICK_MS, 0);
}

/* ---- receiving ---- */

/* The latching policy (README.md, tl_latch_decide): may a packet from `src` (of the
 * stream's family: the socket's) be accepted, and does it move the send address `cur`?
 * `authenticated` is true only for SRTP/SRTCP that passed. */
static bool accept_source(struct tl_media_stream *s, const struct sockaddr *src, union sa *cur,
                          const union sa *sdp, bool authenticated, bool is_rtp)
{
    bool current = s->have_remote && tl_sa_same(src, &cur->sa);
    if (current) { /* the hot path: every packet of a settled call */
        if (is_rtp)
            s->any_latched = true;
        return true;
    }
    struct tl_latch_in in = {s->latch,
                             s->have_remote,
                             false,
                             s->have_remote && tl_sa_same_ip(src, &sdp->sa),
                             !is_rtp && s->have_remote && tl_sa_same_ip(src, &s->tx_rtp.sa),
                             authenticated,
                             is_rtp,
                             s->any_latched};
    enum tl_latch_verdict v = tl_latch_decide(&in);
    if (v == TL_LATCH_DROP)
        return false;
    if (v == TL_LATCH_MOVE) {
        memcpy(cur, src, s->salen);
        s->have_remote = true;
        s->st.latches++;
    }
    if (is_rtp)
        s->any_latched = true; /* ANY latches once: to the first accepted source */
    return true;
}

/* The one-way-audio diagnosis: remember the first refused RTP source; the clock reports it
 * TL_MEDIA_UNLATCHED_REPORT_MS later (on the drop path only: nothing on accepted packets). */
static void unlatched(struct tl_media_stream *s, const struct sockaddr *src)
{
    s->unl_dropped++;
    if (s->unl_seen)
        return;
    s->unl_seen = true;
    s->unl_first_ms = uv_now(s->e->loop);
    memcpy(&s->unl_from, src, s->salen);
}

static void deliver_dtmf(struct tl_media_stream *s, const struct tl_rtp_hdr *h)
{
    struct tl_dtmf_ev ev;
    if (tl_dtmf_parse(h->payload, h->payload_len, &ev))
        return;
    struct tl_dtmf_out o[2];
    int n = tl_dtmf_rx_feed(&s->drx, &ev, h->ts, uv_now(s->e->loop), o);
    for (int i = 0; i < n && !s->closing; i++) {
        s->st.dtmf_rx++;
        if (s->cb.on_dtmf)
            s->cb.on_dtmf(s, s->arg, o[i].digit, o[i].duration_ms);
    }
}

static void on_rtp(struct tl_media_stream *s, ssize_t nread, uint8_t *buf,
                   const struct sockaddr *addr, bool truncated)
{
    if (nread <= 0 || s->closing)
        return;
    if (truncated || nread > TL_MEDIA_PKT_MAX) {
        s->st.drop_too_big++;
        return;
    }
    if (addr->sa_family != s->af) {
        s->st.drop_source++;
        return;
    }
    if (s->pending) {
        s->st.drop_pending++; /* keys and codec come with the answer */
        return;
    }
    uint8_t *p = buf;
    int len = (int)nread;
    struct tl_rtp_hdr h;
    /* structure first (libsrtp reads the header before authenticating), padding after */
    if (tl_rtp_parse(p, (size_t)len, !s->srtp_rx, &h)) {
        s->st.drop_malformed++;
        return;
    }
    if (s->srtp_rx) {
        if (srtp_unprotect(s->srtp_rx, p, &len) != srtp_err_status_ok) {
            s->st.drop_auth++; /* bad tag, replay, wrong key: never latches */
            return;
        }
        if (tl_rtp_parse(p, (size_t)len, true, &h)) {
            s->st.drop_malformed++;
            return;
        }
    }
    bool audio = h.pt == s->pt, dtmf = s->dtmf_pt >= 0 && h.pt == s->dtmf_pt;
    if (!audio && !dtmf && h.pt != PT_CN) {
        s->st.drop_pt++;
        return;
    }
    if (!accept_source(s, addr, &s->tx_rtp, &s->sdp_rtp, s->srtp_rx != NULL, true)) {
        s->st.drop_source++;
        unlatched(s, addr);
        return;
    }
    uint64_t arrival_ts = uv_hrtime() / 125000; /* ns → 8 kHz units */
    if (!s->src.init || s->src.ssrc != h.ssrc)
        tl_rtp_source_init(&s->src, h.ssrc, h.seq); /* new sender (e.g. media server swap) */
    tl_rtp_source_update(&s->src, h.seq, h.ts, (uint32_t)arrival_ts, !dtmf);
    s->st.rx_packets++;
    s->st.rx_bytes += h.payload_len;
    s->last_rx_ms = uv_now(s->e->loop);
    s->timeout_fired = false;
    s->tx_at_last_rx = s->st.tx_packets;
    if (audio && s->cb.on_audio)
        s->cb.on_audio(s, s->arg, h.payload, h.payload_len, h.ts, h.seq);
    else if (dtmf)
        deliver_dtmf(s, &h);
}

static void on_rtcp(struct tl_media_stream *s, ssize_t nread, uint8_t *buf,
                    const struct sockaddr *addr, bool truncated)
{
    if (nread <= 0 || s->closing)
        return;
    if (truncated || nread > TL_MEDIA_PKT_MAX) {
        s->st.drop_too_big++;
        return;
    }
    if (addr->sa_family != s->af) {
        s->st.drop_source++;
        return;
    }
    if (s->pending) {
        s->st.drop_pending++;
        return;
    }
    int len = (int)nread;
    if (s->srtp_rx) {
        if (len < 8 || srtp_unprotect_rtcp(s->srtp_rx, buf, &len) != srtp_err_status_ok) {
            s->st.drop_auth++;
            return;
        }
    }
    struct tl_rtcp_info ri;
    if (tl_rtcp_parse(buf, (size_t)len, s->ssrc, &ri)) {
        s->st.drop_rtcp++;
        return;
    }
    if (!accept_source(s, addr, &s->tx_rtcp, &s->sdp_rtcp, s->srtp_rx != NULL, false)) {
        s->st.drop_source++;
        return;
    }
    s->st.rtcp_rx++;
    uint64_t now = uv_now(s->e->loop);
    if (ri.has_sr) {
        s->lsr = ri.sr_ntp_mid;
        s->lsr_at_ms = now;
    }
    if (ri.has_block) {
        s->st.remote_report = true;
        s->st.remote_fraction_lost = ri.fraction_lost;
        s->st.remote_lost = ri.lost;
        s->st.remote_jitter_ts = ri.jitter;
        if (ri.lsr) {
            /* RFC 3550 §6.4.1: RTT = A - LSR - DLSR, in 1/65536 s */
            uint32_t rtt = ntp_mid_now(NULL, NULL) - ri.lsr - ri.dlsr;
            if (rtt < 60u * 65536) /* ignore garbage from clock steps */
                s->st.rtt_ms = (uint32_t)((uint64_t)rtt * 1000 / 65536);
        }
    }
}

/* ONE recvmsg per readiness event. The poll is level-triggered (libuv's epoll default), so
 * a socket with more datagrams queued is reported again by the next epoll_wait; reading
 * until EAGAIN, as uv_udp does, costs a second recvmsg per packet at our rate of one packet
 * per socket per 20 ms. The datagram lands in the engine's one receive buffer. */
static void on_readable(uv_poll_t *h, int status, int events)
{
    struct tl_media_stream *s = h->data;
    bool is_rtp = h == &s->rtp;
    int fd = is_rtp ? s->fd_rtp : s->fd_rtcp;
    (void)events;
    if (status < 0) {
        /* libuv stops the poll on POLLERR; a pending socket error must not stop receiving
         * (uv_udp ignored it too): clear it and poll again */
        int err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &(socklen_t){sizeof err});
        if (!s->closing)
            uv_poll_start(h, UV_READABLE, on_readable);
        return;
    }
    if (s->closing)
        return;
    struct sockaddr_storage from;
    struct iovec iov = {s->e->rxbuf, RX_BUF};
    struct msghdr m = {
        .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;
    do
        n = recvmsg(fd, &m, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return; /* EAGAIN (spurious wake-up) or a socket error: nothing to deliver */
    const struct sockaddr *a = (const struct sockaddr *)&from;
    bool trunc = (m.msg_flags & MSG_TRUNC) != 0;
    if (is_rtp)
        on_rtp(s, n, s->e->rxbuf, a, trunc);
    else
        on_rtcp(s, n, s->e->rxbuf, a, trunc);
}

/* ---- engine ---- */

int tl_media_engine_new(uv_loop_t *loop, const struct tl_media_config *cfg,
                        struct tl_media_engine **ep)
{
    struct tl_media_config def = {0};
    if (!cfg)
        cfg = &def;
    uint16_t pmin = cfg->port_min, pmax = cfg->port_max;
    if (!pmin && !pmax) {
        pmin = 10000;
        pmax = 20000;
    }
    struct tl_media_engine *e = calloc(1, sizeof *e);
    if (!e)
        return ENOMEM;
    int err = tl_port_pool_init(&e->ports, pmin, pmax);
    if (err)
        goto out;
    e->loop = loop;
    e->max_streams = cfg->max_streams ? cfg->max_streams : 4096;
    e->latch = cfg->latch ? cfg->latch : TL_MEDIA_LATCH_SDP_IP;
    e->rtcp_interval_ms = cfg->rtcp_interval_ms ? cfg->rtcp_interval_ms : 5000;
    e->loop_metrics = cfg->loop_metrics;
    if (uv_ip4_addr(cfg->bind_ip ? cfg->bind_ip : "0.0.0.0", 0, &e->bind4) ||
        uv_ip6_addr(cfg->bind_ip6 ? cfg->bind_ip6 : "::", 0, &e->bind6)) {
        err = EINVAL;
        goto out;
    }
    if (cfg->public_ip && !tl_strlcpy(e->public_ip, cfg->public_ip, sizeof e->public_ip)) {
        err = EINVAL;
        goto out;
    }
    random_bytes(&e->rng, sizeof e->rng);
    e->rng |= 1;
    if (srtp_users == 0 && srtp_init() != srtp_err_status_ok) {
        err = EIO;
        goto out;
    }
    srtp_users++;
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    *ep = e;
    return 0;
out:
    tl_port_pool_free(&e->ports);
    free(e);
    return err;
}

static void engine_closed(uv_handle_t *h)
{
    struct tl_media_engine *e = h->data;
    while (e->slabs) {
        struct slab *sl = e->slabs;
        e->slabs = sl->next;
        free(sl);
    }
    tl_port_pool_free(&e->ports);
    if (--srtp_users == 0)
        srtp_shutdown();
    free(e);
}

int tl_media_engine_close(struct tl_media_engine *e)
{
    if (e->nstreams)
        return EBUSY;
    if (e->closing)
        return 0;
    e->closing = true;
    uv_timer_stop(&e->timer);
    uv_close((uv_handle_t *)&e->timer, engine_closed);
    return 0;
}

const char *tl_media_engine_public_ip(const struct tl_media_engine *e)
{
    return e->public_ip;
}

enum tl_media_latch tl_media_engine_latch(const struct tl_media_engine *e)
{
    return e->latch;
}

uint32_t tl_media_engine_streams(const struct tl_media_engine *e)
{
    return e->nstreams;
}

/* ---- stream ---- */

/* EAFNOSUPPORT when the family cannot be used here at all (a kernel without IPv6, or a bind
 * address that is not local): no other port would do better, and the caller answers the
 * offer accordingly rather than as a shortage of ports. */
static int bind_one(const struct tl_media_engine *e, int af, uint16_t port, int *fdp)
{
    int fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT ? EAFNOSUPPORT : errno;
    int tos = DSCP_EF, on = 1; /* voice: best effort when the network ignores it */
    union sa a;
    socklen_t alen;
    if (af == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
        /* v6-only: an IPv4 stream may hold the same port number in its own family */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
        a.v6 = e->bind6;
        a.v6.sin6_port = htons(port);
        alen = sizeof a.v6;
    } else {
        setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
        a.v4 = e->bind4;
        a.v4.sin_port = htons(port);
        alen = sizeof a.v4;
    }
    if (bind(fd, &a.sa, alen) < 0) {
        int err = errno;
        close(fd);
        return err == EADDRNOTAVAIL ? EAFNOSUPPORT : err;
    }
    *fdp = fd;
    return 0;
}

/* Plain sockets first, libuv handles only once both are bound: a failed bind then needs a
 * close(2), not an asynchronous uv_close. */
static int bind_pair(struct tl_media_engine *e, int af, uint16_t *portp, int fds[2])
{
    int err = EADDRNOTAVAIL;
    uint32_t tries = e->ports.count < BIND_ATTEMPTS ? e->ports.count : BIND_ATTEMPTS;
    for (uint32_t i = 0; i < tries; i++) {
        uint16_t port;
        if (tl_port_pool_get(&e->ports, &port))
            return EADDRNOTAVAIL;
        err = bind_one(e, af, port, &fds[0]);
        if (!err) {
            err = bind_one(e, af, (uint16_t)(port + 1), &fds[1]);
            if (err)
                close(fds[0]);
        }
        if (!err) {
            *portp = port;
            return 0;
        }
        /* busy (another process) or forbidden: back of the queue, it may be free later */
        tl_port_pool_put(&e->ports, port);
        if (err != EADDRINUSE && err != EACCES)
            return err;
    }
    return err;
}

static int srtp_session(srtp_t *out, enum tl_media_srtp_suite suite, const uint8_t *key,
                        bool inbound, uint32_t ssrc)
{
    srtp_policy_t pol;
    memset(&pol, 0, sizeof pol);
    if (suite == TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32)
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&pol.rtp);
    else
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&pol.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(
        &pol.rtcp); /* RFC 4568 §6.2.2: SRTCP keeps the 80-bit tag */
    if (inbound) {
        pol.ssrc.type = ssrc_any_inbound;
    } else {
        pol.ssrc.type = ssrc_specific;
        pol.ssrc.value = ssrc;
    }
    uint8_t k[TL_MEDIA_SRTP_KEY_LEN];
    memcpy(k, key, sizeof k);
    pol.key = k;
    pol.window_size = 128;
    int err = srtp_create(out, &pol) == srtp_err_status_ok ? 0 : EIO;
    memset(k, 0, sizeof k); /* best effort; libsrtp keeps only derived session keys */
    return err;
}

/* An IPv4 or IPv6 literal (SDP c=; never a name) with a port. 0 or EINVAL. */
static int sa_parse(const char *ip, uint16_t port, union sa *out)
{
    memset(out, 0, sizeof *out);
    if (!ip || !port)
        return EINVAL;
    if (inet_pton(AF_INET, ip, &out->v4.sin_addr) == 1) {
        out->v4.sin_family = AF_INET;
        out->v4.sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &out->v6.sin6_addr) == 1) {
        out->v6.sin6_family = AF_INET6;
        out->v6.sin6_port = htons(port);
        return 0;
    }
    return EINVAL;
}

/* The SDP's RTP and RTCP addresses, checked against the stream's family (a socket cannot
 * change family; the caller refuses such a re-offer). 0, EINVAL, EAFNOSUPPORT. */
static int addrs_parse(const struct tl_media_stream *s, const char *ip, uint16_t rtp, uint16_t rtcp,
                       union sa *a, union sa *b)
{
    if (sa_parse(ip, rtp, a) || sa_parse(ip, rtcp ? rtcp : (uint16_t)(rtp + 1), b))
        return EINVAL;
    return a->sa.sa_family == s->af ? 0 : EAFNOSUPPORT;
}

static int set_addrs(struct tl_media_stream *s, const char *ip, uint16_t rtp, uint16_t rtcp)
{
    union sa a, b;
    int err = addrs_parse(s, ip, rtp, rtcp, &a, &b);
    if (err)
        return err;
    s->sdp_rtp = s->tx_rtp = a;
    s->sdp_rtcp = s->tx_rtcp = b;
    s->have_remote = true;
    s->any_latched = false;
    return 0;
}

static void stream_closed(uv_handle_t *h)
{
    struct tl_media_stream *s = h->data;
    if (--s->close_pending)
        return;
    struct tl_media_engine *e = s->e;
    /* both polls are closed (their fds left epoll): the sockets can go, then the ports */
    close(s->fd_rtp);
    close(s->fd_rtcp);
    tl_port_pool_put(&e->ports, s->port);
    e->nstreams--;
    if (!s->open_failed && s->cb.on_close)
        s->cb.on_close(s, s->arg);
    free(s->marks);
    free(s);
}

static void stream_teardown(struct tl_media_stream *s)
{
    queue_drop(s);
    s->mcount = 0;
    s->dqcount = 0;
    if (s->srtp_tx)
        srtp_dealloc(s->srtp_tx);
    if (s->srtp_rx)
        srtp_dealloc(s->srtp_rx);
    s->srtp_tx = s->srtp_rx = NULL;
    s->close_pending = 2;
    uv_close((uv_handle_t *)&s->rtp, stream_closed);
    uv_close((uv_handle_t *)&s->rtcp, stream_closed);
}

static bool codec_ok(const struct tl_media_stream_params *p)
{
    return (p->pt == 0 || p->pt == 8) && p->dtmf_pt >= -1 && p->dtmf_pt <= 127 &&
           p->dtmf_pt != p->pt && p->srtp <= TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32;
}

int tl_media_stream_open(struct tl_media_engine *e, const struct tl_media_stream_params *p,
                         const struct tl_media_stream_cb *cb, void *arg,
                         struct tl_media_stream **sp)
{
    if (!p || (!p->pending && !codec_ok(p)) || p->latch > TL_MEDIA_LATCH_OFF || e->closing ||
        (p->af && p->af != AF_INET && p->af != AF_INET6))
        return EINVAL;
    int af = p->af ? p->af : AF_INET;
    if (p->remote_ip) {
        union sa ra;
        if (sa_parse(p->remote_ip, p->remote_rtp_port ? p->remote_rtp_port : 9, &ra) ||
            (p->af && p->af != ra.sa.sa_family))
            return EINVAL;
        af = ra.sa.sa_family;
    }
    if (e->nstreams >= e->max_streams)
        return EMFILE;
    struct tl_media_stream *s = calloc(1, sizeof *s);
    if (!s)
        return ENOMEM;
    int err = 0, fds[2] = {-1, -1};
    s->e = e;
    if (cb)
        s->cb = *cb;
    s->arg = arg;
    s->pending = p->pending;
    s->pt = p->pending ? 0 : p->pt;
    s->dtmf_pt = p->pending ? -1 : (int16_t)p->dtmf_pt;
    s->latch = p->latch ? p->latch : e->latch;
    s->af = af;
    s->salen = af == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    s->timeout_ms = p->timeout_ms;
    s->send_ok = s->recv_expected = true;
    struct {
        uint32_t ssrc, ts;
        uint16_t seq;
    } r;
    random_bytes(&r, sizeof r); /* RFC 3550 §5.1: random starts defeat known-plaintext */
    s->ssrc = r.ssrc;
    s->ts = r.ts;
    s->seq = r.seq;
    if (p->remote_ip && (err = set_addrs(s, p->remote_ip, p->remote_rtp_port, p->remote_rtcp_port)))
        goto out;
    if (p->srtp && !p->pending) {
        if ((err = srtp_session(&s->srtp_tx, p->srtp, p->srtp_tx_key, false, s->ssrc)) ||
            (err = srtp_session(&s->srtp_rx, p->srtp, p->srtp_rx_key, true, 0))) {
            tl_warnl("media", "srtp.create_failed", "suite=%d", (int)p->srtp);
            goto out;
        }
    }
    if ((err = bind_pair(e, af, &s->port, fds)))
        goto out;
    s->fd_rtp = fds[0];
    s->fd_rtcp = fds[1];
    if (uv_poll_init(e->loop, &s->rtp, fds[0])) {
        close(fds[0]);
        close(fds[1]);
        tl_port_pool_put(&e->ports, s->port);
        err = EIO;
        goto out;
    }
    /* from here on a handle exists: failures go through the asynchronous close */
    e->nstreams++;
    s->rtp.data = s->rtcp.data = s;
    s->open_failed = true; /* until both polls run: no callback but the internal close */
    if (uv_poll_init(e->loop, &s->rtcp, fds[1])) {
        if (s->srtp_tx)
            srtp_dealloc(s->srtp_tx);
        if (s->srtp_rx)
            srtp_dealloc(s->srtp_rx);
        s->close_pending = 1;
        uv_close((uv_handle_t *)&s->rtp, stream_closed);
        return EIO;
    }
    if (uv_poll_start(&s->rtp, UV_READABLE, on_readable) ||
        uv_poll_start(&s->rtcp, UV_READABLE, on_readable)) {
        stream_teardown(s);
        return EIO;
    }
    s->open_failed = false;
    uint64_t now = uv_now(e->loop);
    s->last_rx_ms = now;
    s->next_rtcp_ms = now + rng32(e) % e->rtcp_interval_ms;
    s->next = e->head;
    if (e->head)
        e->head->prev = s;
    e->head = s;
    clock_start(e);
    *sp = s;
    return 0;
out:
    if (s->srtp_tx)
        srtp_dealloc(s->srtp_tx);
    if (s->srtp_rx)
        srtp_dealloc(s->srtp_rx);
    free(s);
    return err;
}

void tl_media_stream_close(struct tl_media_stream *s)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    struct tl_media_engine *e = s->e;
    /* unlink but keep s->next: a clock walk in progress may still step through it */
    if (s->prev)
        s->prev->next = s->next;
    else
        e->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    stream_teardown(s); /* uv_close stops both polls */
}

uint16_t tl_media_stream_local_port(const struct tl_media_stream *s)
{
    return s->port;
}

int tl_media_stream_set_remote(struct tl_media_stream *s, const char *ip, uint16_t rtp_port,
                               uint16_t rtcp_port)
{
    if (s->closing || !ip)
        return EINVAL;
    return set_addrs(s, ip, rtp_port, rtcp_port);
}

int tl_media_stream_set_params(struct tl_media_stream *s, const struct tl_media_stream_params *p)
{
    if (s->closing || !p || !codec_ok(p))
        return EINVAL;
    union sa a, b;
    int err;
    if (p->remote_ip &&
        (err = addrs_parse(s, p->remote_ip, p->remote_rtp_port, p->remote_rtcp_port, &a, &b)))
        return err;
    srtp_t tx = NULL, rx = NULL;
    if (p->srtp && (srtp_session(&tx, p->srtp, p->srtp_tx_key, false, s->ssrc) ||
                    srtp_session(&rx, p->srtp, p->srtp_rx_key, true, 0))) {
        tl_warnl("media", "srtp.create_failed", "suite=%d", (int)p->srtp);
        if (tx)
            srtp_dealloc(tx);
        return EIO;
    }
    if (s->srtp_tx)
        srtp_dealloc(s->srtp_tx);
    if (s->srtp_rx)
        srtp_dealloc(s->srtp_rx);
    s->srtp_tx = tx;
    s->srtp_rx = rx;
    s->pt = p->pt;
    s->dtmf_pt = (int16_t)p->dtmf_pt;
    if (p->remote_ip)
        set_addrs(s, p->remote_ip, p->remote_rtp_port, p->remote_rtcp_port);
    if (s->pending) {
        s->pending = false;
        s->last_rx_ms = uv_now(s->e->loop); /* the media timeout counts from the answer */
        s->timeout_fired = false;
    }
    return 0;
}

int tl_media_stream_remote(const struct tl_media_stream *s, struct sockaddr_storage *out)
{
    if (!s->have_remote)
        return ENOENT;
    memset(out, 0, sizeof *out);
    memcpy(out, &s->tx_rtp, s->salen);
    return 0;
}

int tl_media_stream_af(const struct tl_media_stream *s)
{
    return s->af;
}

int tl_media_stream_unlatched(const struct tl_media_stream *s, struct tl_media_unlatched *out)
{
    memset(out, 0, sizeof *out);
    if (!s->unl_seen)
        return ENOENT;
    if (s->have_remote)
        memcpy(&out->sdp, &s->sdp_rtp, s->salen);
    memcpy(&out->from, &s->unl_from, s->salen);
    out->dropped = s->unl_dropped;
    out->accepted = s->st.rx_packets;
    return 0;
}

void tl_media_stream_watch(struct tl_media_stream *s, uint32_t quiet_ms)
{
    s->quiet_ms = quiet_ms;
    s->quiet_fired = false;
    s->quiet_from = uv_now(s->e->loop);
    s->rx_at_watch = s->st.rx_packets;
    s->tx_at_last_rx = s->st.tx_packets;
}

void tl_media_stream_set_direction(struct tl_media_stream *s, bool send_ok, bool recv_expected)
{
    if (recv_expected && !s->recv_expected) {
        s->last_rx_ms = uv_now(s->e->loop); /* the timeout counts from the resume */
        s->timeout_fired = false;
    }
    s->send_ok = send_ok;
    s->recv_expected = recv_expected;
}

int tl_media_stream_write(struct tl_media_stream *s, const uint8_t *data, size_t len)
{
    if (s->closing)
        return EPIPE;
    if (len == 0)
        return 0;
    if (len > TL_MEDIA_QUEUE_CAP - s->qbytes) {
        s->st.refused_bytes += len;
        return ENOBUFS;
    }
    size_t room = s->qt ? CHUNK_DATA - s->qt->end : 0;
    uint32_t need = len > room ? (uint32_t)((len - room + CHUNK_DATA - 1) / CHUNK_DATA) : 0;
    if (pool_reserve(s->e, need))
        return ENOMEM;
    size_t off = 0;
    while (off < len) {
        if (!s->qt || s->qt->end == CHUNK_DATA) {
            struct chunk *c = chunk_get(s->e);
            if (s->qt)
                s->qt->next = c;
            else
                s->qh = c;
            s->qt = c;
        }
        size_t k = CHUNK_DATA - s->qt->end;
        if (k > len - off)
            k = len - off;
        memcpy(s->qt->data + s->qt->end, data + off, k);
        s->qt->end = (uint16_t)(s->qt->end + k);
        off += k;
    }
    s->qbytes += (uint32_t)len;
    s->written += len;
    return 0;
}

size_t tl_media_stream_queued(const struct tl_media_stream *s)
{
    return s->qbytes;
}

int tl_media_stream_mark(struct tl_media_stream *s, uint32_t id)
{
    if (s->closing)
        return EPIPE;
    if (s->qbytes == 0 && s->mcount == 0) {
        if (s->cb.on_mark)
            s->cb.on_mark(s, s->arg, id);
        return 0;
    }
    if (s->mcount == s->mcap) {
        if (s->mcap >= TL_MEDIA_MARKS_MAX)
            return ENOBUFS;
        uint32_t cap = s->mcap ? s->mcap * 2 : 8;
        struct mark *nm = malloc(cap * sizeof *nm);
        if (!nm)
            return ENOMEM;
        for (uint32_t i = 0; i < s->mcount; i++) /* unwrap the ring into the new array */
            nm[i] = s->marks[(s->mhead + i) % s->mcap];
        free(s->marks);
        s->marks = nm;
        s->mcap = cap;
        s->mhead = 0;
    }
    struct mark *m = &s->marks[(s->mhead + s->mcount) % s->mcap];
    m->pos = s->written;
    m->id = id;
    s->mcount++;
    return 0;
}

void tl_media_stream_clear(struct tl_media_stream *s)
{
    if (s->closing)
        return;
    queue_drop(s);
    s->sent = s->written;
    fire_marks(s);
}

int tl_media_stream_send_dtmf(struct tl_media_stream *s, const char *digits, uint16_t duration_ms)
{
    if (s->closing || s->dtmf_pt < 0 || !digits)
        return EINVAL;
    size_t n = strlen(digits);
    for (size_t i = 0; i < n; i++)
        if (tl_dtmf_event(digits[i]) < 0 && digits[i] != 'w' && digits[i] != 'W')
            return EINVAL;
    if (n > (size_t)(TL_MEDIA_DTMF_QUEUE_MAX - s->dqcount))
        return ENOBUFS;
    if (duration_ms == 0)
        duration_ms = 100;
    duration_ms = duration_ms < 40 ? 40 : duration_ms > 2000 ? 2000 : duration_ms;
    for (size_t i = 0; i < n; i++) {
        int j = (s->dqhead + s->dqcount++) % TL_MEDIA_DTMF_QUEUE_MAX;
        bool wait = digits[i] == 'w' || digits[i] == 'W';
        /* 'w': half a second of nothing, Twilio's sendDigits/Play digits pause (an IVR
         * needs time to play its next prompt before it listens) */
        s->dq[j].event = wait ? DTMF_WAIT : (uint8_t)tl_dtmf_event(digits[i]);
        s->dq[j].ticks = (uint8_t)((wait ? 500 : duration_ms) / TL_MEDIA_TICK_MS);
    }
    return 0;
}

void tl_media_stream_stats(const struct tl_media_stream *s, struct tl_media_stats *out)
{
    *out = s->st;
    if (s->src.init) {
        out->remote_ssrc = s->src.ssrc;
        out->max_seq_ext = tl_rtp_source_max_ext(&s->src);
        out->expected = tl_rtp_source_expected(&s->src);
        out->lost = tl_rtp_source_lost(&s->src);
        out->jitter_ts = s->src.jitter_q4 >> 4;
        out->jitter_ms = out->jitter_ts / 8.0;
    }
}

/* exported for the report/benchmarks: bytes of per-stream state outside libsrtp and chunks */
size_t tl_media__stream_size(void);
size_t tl_media__stream_size(void)
{
    return sizeof(struct tl_media_stream);
}
