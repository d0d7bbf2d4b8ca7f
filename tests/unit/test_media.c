/* media (src/media): pure wire functions, then real sockets on 127.0.0.1 driven by a uv loop
 * in the test. No sleeps: the loop runs until a condition holds or a deadline passes. On
 * loopback every peer is 127.0.0.1, so "another IP" is an attacker socket bound to
 * 127.0.0.2 (all of 127/8 is local on Linux). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "media/media.h"
#include "media/media_int.h"

size_t tl_media__stream_size(void);

/* ---- harness ---- */

static uv_loop_t loop;
static uv_timer_t watchdog; /* keeps UV_RUN_ONCE from blocking when nothing else is due */
static struct tl_media_engine *E;
static uint16_t port_base;

#define RUN_UNTIL(cond, ms)                                                                        \
    do {                                                                                           \
        uint64_t d_ = uv_hrtime() + (uint64_t)(ms)*1000000u;                                       \
        while (!(cond) && uv_hrtime() < d_)                                                        \
            uv_run(&loop, UV_RUN_ONCE);                                                            \
    } while (0)

#define RUN_FOR(ms) RUN_UNTIL(false, ms)

static void wd_cb(uv_timer_t *t) {}

static void engine_up(struct tl_media_config *cfg)
{
    struct tl_media_config def = {0};
    if (!cfg)
        cfg = &def;
    if (!cfg->bind_ip)
        cfg->bind_ip = "127.0.0.1";
    if (!cfg->port_min) {
        cfg->port_min = port_base;
        cfg->port_max = (uint16_t)(port_base + 199);
    }
    assert_int_equal(0, uv_loop_init(&loop));
    uv_timer_init(&loop, &watchdog);
    uv_timer_start(&watchdog, wd_cb, 10, 10);
    assert_int_equal(0, tl_media_engine_new(&loop, cfg, &E));
}

static void engine_down(void)
{
    RUN_UNTIL(tl_media_engine_streams(E) == 0, 2000);
    assert_int_equal(0, tl_media_engine_close(E));
    uv_close((uv_handle_t *)&watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(0, uv_loop_close(&loop)); /* nothing left behind */
    E = NULL;
}

#define MAXPK 512
struct peer {
    struct tl_media_stream *s;
    uint8_t audio[MAXPK * 160];
    size_t alen;
    int npk;
    uint16_t seq[MAXPK];
    uint32_t ts[MAXPK];
    char digits[64];
    int ndig;
    uint32_t marks[64];
    size_t mark_queued[64];
    int nmarks;
    int timeouts;
    int quiet;
    bool quiet_never;
    uint32_t quiet_gap;
    int unlatched;
    struct tl_media_unlatched unl;
    bool closed;
};

static void on_audio(struct tl_media_stream *s, void *arg, const uint8_t *p, size_t len,
                     uint32_t ts, uint16_t seq)
{
    struct peer *pe = arg;
    if (pe->npk < MAXPK) {
        pe->seq[pe->npk] = seq;
        pe->ts[pe->npk] = ts;
        pe->npk++;
    }
    if (pe->alen + len <= sizeof pe->audio) {
        memcpy(pe->audio + pe->alen, p, len);
        pe->alen += len;
    }
}

static void on_dtmf(struct tl_media_stream *s, void *arg, char d, uint16_t ms)
{
    struct peer *pe = arg;
    if (pe->ndig < 63)
        pe->digits[pe->ndig++] = d;
}

static void on_mark(struct tl_media_stream *s, void *arg, uint32_t id)
{
    struct peer *pe = arg;
    if (pe->nmarks < 64) {
        pe->mark_queued[pe->nmarks] = tl_media_stream_queued(s);
        pe->marks[pe->nmarks++] = id;
    }
}

static void on_timeout(struct tl_media_stream *s, void *arg)
{
    ((struct peer *)arg)->timeouts++;
}

static void on_close(struct tl_media_stream *s, void *arg)
{
    ((struct peer *)arg)->closed = true;
}

static void on_unlatched(struct tl_media_stream *s, void *arg, const struct tl_media_unlatched *u)
{
    struct peer *pe = arg;
    pe->unlatched++;
    pe->unl = *u;
}

static void on_quiet(struct tl_media_stream *s, void *arg, bool never, uint32_t gap_ms)
{
    struct peer *pe = arg;
    pe->quiet++;
    pe->quiet_never = never;
    pe->quiet_gap = gap_ms;
}

static const struct tl_media_stream_cb CB = {on_audio, on_dtmf,      on_mark, on_timeout,
                                             on_close, on_unlatched, on_quiet};

static struct peer *peer_new(void)
{
    struct peer *p = calloc(1, sizeof *p);
    assert_non_null(p);
    return p;
}

static void open_stream(struct peer *pe, struct tl_media_stream_params *p)
{
    assert_int_equal(0, tl_media_stream_open(E, p, &CB, pe, &pe->s));
}

static struct tl_media_stream_params plain(void)
{
    struct tl_media_stream_params p = {0};
    p.pt = 0;
    p.dtmf_pt = 101;
    return p;
}

/* A and B sending to each other's ports; pa/pb may carry SRTP settings */
static void connect_pair(struct peer *a, struct peer *b, struct tl_media_stream_params pa,
                         struct tl_media_stream_params pb)
{
    open_stream(a, &pa);
    pb.remote_ip = "127.0.0.1";
    pb.remote_rtp_port = tl_media_stream_local_port(a->s);
    open_stream(b, &pb);
    assert_int_equal(
        0, tl_media_stream_set_remote(a->s, "127.0.0.1", tl_media_stream_local_port(b->s), 0));
}

static void close_peers(struct peer *a, struct peer *b)
{
    if (a) {
        tl_media_stream_close(a->s);
        RUN_UNTIL(a->closed, 1000);
        assert_true(a->closed);
        free(a);
    }
    if (b) {
        tl_media_stream_close(b->s);
        RUN_UNTIL(b->closed, 1000);
        assert_true(b->closed);
        free(b);
    }
}

static struct tl_media_stats stats(struct peer *p)
{
    struct tl_media_stats st;
    tl_media_stream_stats(p->s, &st);
    return st;
}

/* raw UDP socket, non-blocking, bound to ip:0 */
static int raw_sock(const char *ip, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&a, sizeof a));
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    if (port)
        *port = ntohs(a.sin_port);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void raw_send(int fd, uint16_t port, const void *b, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal((ssize_t)n, sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a));
}

static size_t rtp_pkt(uint8_t *b, bool m, uint8_t pt, uint16_t seq, uint32_t ts, uint32_t ssrc,
                      const uint8_t *pl, size_t n)
{
    tl_rtp_write_hdr(b, m, pt, seq, ts, ssrc);
    memcpy(b + 12, pl, n);
    return 12 + n;
}

static void frame(uint8_t *f, int i)
{
    for (int k = 0; k < 160; k++)
        f[k] = (uint8_t)(i * 7 + k);
}

/* ---- pure: RTP ---- */

static void test_rtp_parse(void **st)
{
    uint8_t b[64] = {0};
    struct tl_rtp_hdr h;
    uint8_t pl[20] = {1, 2, 3};
    size_t n = rtp_pkt(b, true, 8, 0xabcd, 0x01020304, 0xdeadbeef, pl, sizeof pl);
    assert_int_equal(0, tl_rtp_parse(b, n, true, &h));
    assert_true(h.marker);
    assert_int_equal(8, h.pt);
    assert_int_equal(0xabcd, h.seq);
    assert_int_equal(0x01020304, h.ts);
    assert_int_equal(0xdeadbeef, h.ssrc);
    assert_int_equal(20, h.payload_len);
    assert_int_equal(EBADMSG, tl_rtp_parse(b, 11, true, &h)); /* short */
    b[0] = 0x40;
    assert_int_equal(EBADMSG, tl_rtp_parse(b, n, true, &h)); /* version 1 */
    b[0] = 0x8f;                                             /* 15 CSRCs = 60 bytes */
    assert_int_equal(EBADMSG, tl_rtp_parse(b, n, true, &h));
    b[0] = 0x90; /* extension: 4-byte header at 12, length 100 words */
    b[12] = 0xbe, b[13] = 0xde, b[14] = 0, b[15] = 100;
    assert_int_equal(EBADMSG, tl_rtp_parse(b, n, true, &h));
    b[15] = 2; /* 8 bytes of extension: fits */
    assert_int_equal(0, tl_rtp_parse(b, n, true, &h));
    assert_int_equal(24, h.hdr_len);
    assert_int_equal(8, h.payload_len);
    b[0] = 0xa0; /* padding */
    b[n - 1] = 0;
    assert_int_equal(EBADMSG, tl_rtp_parse(b, n, true, &h));
    b[n - 1] = 21;
    assert_int_equal(EBADMSG, tl_rtp_parse(b, n, true, &h));
    assert_int_equal(0, tl_rtp_parse(b, n, false, &h)); /* before SRTP unprotect */
    b[n - 1] = 4;
    assert_int_equal(0, tl_rtp_parse(b, n, true, &h));
    assert_int_equal(16, h.payload_len);
}

/* ---- pure: RTCP ---- */

static size_t build_rr(uint8_t *b, uint32_t sender, uint32_t about, uint8_t frac, int32_t lost)
{
    memset(b, 0, 32);
    b[0] = 0x81;
    b[1] = 201;
    b[3] = 7;
    b[4] = (uint8_t)(sender >> 24), b[7] = (uint8_t)sender;
    uint8_t *r = b + 8;
    r[0] = (uint8_t)(about >> 24), r[1] = (uint8_t)(about >> 16), r[2] = (uint8_t)(about >> 8),
    r[3] = (uint8_t)about;
    r[4] = frac;
    r[5] = (uint8_t)(lost >> 16), r[6] = (uint8_t)(lost >> 8), r[7] = (uint8_t)lost;
    r[15] = 77; /* jitter */
    return 32;
}

static void test_rtcp_parse(void **st)
{
    uint8_t b[128];
    struct tl_rtcp_info ri;
    size_t n = build_rr(b, 0x11000022, 0xcafe0001, 64, -3);
    assert_int_equal(0, tl_rtcp_parse(b, n, 0xcafe0001, &ri));
    assert_int_equal(0x11000022, ri.sender_ssrc);
    assert_true(ri.has_block);
    assert_int_equal(64, ri.fraction_lost);
    assert_int_equal(-3, ri.lost);
    assert_int_equal(77, ri.jitter);
    assert_int_equal(0, tl_rtcp_parse(b, n, 0x1234, &ri));
    assert_false(ri.has_block);                                 /* about someone else */
    assert_int_equal(EBADMSG, tl_rtcp_parse(b, n - 4, 0, &ri)); /* length past the end */
    b[1] = 202;
    assert_int_equal(EBADMSG, tl_rtcp_parse(b, n, 0, &ri)); /* first must be SR/RR */
    b[1] = 201;
    b[0] = 0x85; /* 5 blocks claimed, 1 present */
    assert_int_equal(EBADMSG, tl_rtcp_parse(b, n, 0, &ri));
    b[0] = 0x81;
    /* compound RR + a padded trailing packet that is not last: invalid */
    memcpy(b + n, (uint8_t[]){0xa0, 204, 0, 1, 0, 0, 0, 4}, 8);
    memcpy(b + n + 8, (uint8_t[]){0x80, 203, 0, 0}, 4);
    assert_int_equal(EBADMSG, tl_rtcp_parse(b, n + 12, 0, &ri));
    assert_int_equal(0, tl_rtcp_parse(b, n + 8, 0, &ri)); /* padded last: fine */
}

/* ---- pure: RFC 4733 receive ---- */

static int feed(struct tl_dtmf_rx *rx, uint8_t ev, bool end, uint16_t dur, uint32_t ts,
                uint64_t now, char *out)
{
    struct tl_dtmf_ev e = {ev, end, 10, dur};
    struct tl_dtmf_out o[2];
    int n = tl_dtmf_rx_feed(rx, &e, ts, now, o);
    size_t l = strlen(out);
    for (int i = 0; i < n; i++)
        out[l++] = o[i].digit;
    out[l] = '\0';
    return n;
}

static void test_dtmf_rx(void **st)
{
    struct tl_dtmf_rx rx = {0};
    char got[16] = "";
    /* "5" with no marker anywhere, three end packets: exactly one digit */
    for (int k = 1; k <= 5; k++)
        feed(&rx, 5, false, (uint16_t)(160 * k), 1000, 0, got);
    for (int k = 0; k < 3; k++)
        feed(&rx, 5, true, 800, 1000, 0, got);
    assert_string_equal("5", got);
    /* "55": same digit, new timestamp → a second digit */
    feed(&rx, 5, false, 160, 3000, 0, got);
    feed(&rx, 5, true, 800, 3000, 0, got);
    feed(&rx, 5, true, 800, 3000, 0, got);
    assert_string_equal("55", got);
    /* late end packet of the first event: ignored */
    feed(&rx, 5, true, 800, 1000, 0, got);
    assert_string_equal("55", got);
    /* every end packet of "7" lost: delivered when "8" starts */
    feed(&rx, 7, false, 160, 5000, 0, got);
    feed(&rx, 8, false, 160, 6000, 0, got);
    assert_string_equal("557", got);
    /* ... and "8" by the idle flush */
    struct tl_dtmf_out o;
    assert_int_equal(0, tl_dtmf_rx_flush(&rx, 500, 1000, &o));
    assert_int_equal(1, tl_dtmf_rx_flush(&rx, 1000, 1000, &o));
    assert_int_equal('8', o.digit);
    assert_int_equal(20, o.duration_ms);
    assert_int_equal(0, tl_dtmf_rx_flush(&rx, 5000, 1000, &o));
    /* non-DTMF events ignored */
    assert_int_equal(0, feed(&rx, 200, true, 800, 9000, 0, got));
    struct tl_dtmf_ev ev;
    assert_int_equal(EBADMSG, tl_dtmf_parse((const uint8_t *)"\x01\x80", 2, &ev));
    assert_int_equal(11, tl_dtmf_event('#'));
    assert_int_equal(13, tl_dtmf_event('b'));
    assert_int_equal(-1, tl_dtmf_event('x'));
}

/* ---- pure: statistics ---- */

static void test_source_stats(void **st)
{
    struct tl_rtp_source s;
    /* 100 packets, seq wrapping through 65535, 5 missing */
    uint16_t seq0 = 65500;
    tl_rtp_source_init(&s, 42, seq0);
    for (int i = 0; i < 100; i++) {
        if (i == 3 || i == 20 || i == 36 || i == 37 || i == 90)
            continue;
        tl_rtp_source_update(&s, (uint16_t)(seq0 + i), (uint32_t)i * 160, (uint32_t)i * 160, true);
    }
    assert_int_equal(100, tl_rtp_source_expected(&s));
    assert_int_equal(5, tl_rtp_source_lost(&s));
    assert_int_equal(65536u + (uint16_t)(seq0 + 99), tl_rtp_source_max_ext(&s));
    assert_int_equal(0, s.jitter_q4 >> 4);            /* perfectly paced */
    assert_int_equal(12, tl_rtp_source_fraction(&s)); /* 5/100 * 256 */
    assert_int_equal(0, tl_rtp_source_fraction(&s));  /* empty interval */

    /* jitter against the float formula of RFC 3550 §6.4.1, arrivals alternating ±40 */
    tl_rtp_source_init(&s, 7, 0);
    double j = 0, prev = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t ts = (uint32_t)i * 160;
        uint32_t arr = 100000 + ts + (i % 2 ? 40 : 0);
        tl_rtp_source_update(&s, (uint16_t)i, ts, arr, true);
        double transit = (double)arr - ts;
        if (i > 0)
            j += (fabs(transit - prev) - j) / 16;
        prev = transit;
    }
    assert_true(fabs((double)(s.jitter_q4 >> 4) - j) <= 1.0);
    assert_true(j > 35 && j < 41);
    /* a stray far jump is not counted until confirmed */
    uint32_t rec = s.received;
    assert_false(tl_rtp_source_update(&s, 30000, 0, 0, false));
    assert_int_equal(rec, s.received);
}

static void test_port_pool(void **st)
{
    struct tl_port_pool p;
    uint16_t a, b, c;
    assert_int_equal(EINVAL, tl_port_pool_init(&p, 5000, 5000));
    assert_int_equal(0, tl_port_pool_init(&p, 4001, 4005)); /* pairs 4002, 4004 */
    assert_int_equal(0, tl_port_pool_get(&p, &a));
    assert_int_equal(0, tl_port_pool_get(&p, &b));
    /* both pairs, in a random order */
    assert_true((a == 4002 && b == 4004) || (a == 4004 && b == 4002));
    assert_int_equal(EADDRNOTAVAIL, tl_port_pool_get(&p, &c));
    tl_port_pool_put(&p, a);
    assert_int_equal(0, tl_port_pool_get(&p, &c));
    assert_int_equal(a, c);
    tl_port_pool_free(&p);
    /* a large range is shuffled: the first 16 pairs are not the bottom 16 of the range
     * (the chance that a shuffle leaves them so is 16!·4984!/5000!, about 1e-59) */
    assert_int_equal(0, tl_port_pool_init(&p, 10000, 20000));
    bool bottom = true;
    for (int i = 0; i < 16; i++) {
        assert_int_equal(0, tl_port_pool_get(&p, &c));
        assert_true(c >= 10000 && c <= 19998 && c % 2 == 0);
        bottom = bottom && c < 10032;
    }
    assert_false(bottom);
    tl_port_pool_free(&p);
}

/* ---- sockets: audio, marks, clear ---- */

static void test_audio_marks(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    connect_pair(a, b, plain(), plain());
    uint8_t f[160];
    for (int i = 0; i < 30; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 80)); /* odd write sizes */
        assert_int_equal(0, tl_media_stream_write(a->s, f + 80, 80));
        if (i == 9)
            assert_int_equal(0, tl_media_stream_mark(a->s, 1));
    }
    assert_int_equal(0, tl_media_stream_mark(a->s, 2));
    RUN_UNTIL(b->npk >= 30 && a->nmarks == 2, 3000);
    assert_int_equal(30, b->npk);
    for (int i = 0; i < 30; i++) {
        frame(f, i);
        assert_memory_equal(f, b->audio + 160 * i, 160);
        if (i) {
            assert_int_equal((uint16_t)(b->seq[i - 1] + 1), b->seq[i]);
            assert_int_equal(b->ts[i - 1] + 160, b->ts[i]);
        }
    }
    assert_int_equal(1, a->marks[0]);
    assert_int_equal(20 * 160, a->mark_queued[0]); /* fired right after frame 10 left */
    assert_int_equal(2, a->marks[1]);
    assert_int_equal(0, a->mark_queued[1]);
    /* empty queue: the mark fires before mark() returns */
    assert_int_equal(0, tl_media_stream_mark(a->s, 3));
    assert_int_equal(3, a->nmarks);
    /* clear: queued audio dropped, pending marks fire in order */
    for (int i = 0; i < 100; i++)
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    assert_int_equal(0, tl_media_stream_mark(a->s, 4));
    assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    assert_int_equal(0, tl_media_stream_mark(a->s, 5));
    tl_media_stream_clear(a->s);
    assert_int_equal(5, a->nmarks);
    assert_int_equal(4, a->marks[3]);
    assert_int_equal(5, a->marks[4]);
    assert_int_equal(0, tl_media_stream_queued(a->s));
    /* the cap refuses a whole write beyond 10 s */
    static uint8_t big[TL_MEDIA_QUEUE_CAP];
    assert_int_equal(0, tl_media_stream_write(a->s, big, sizeof big));
    assert_int_equal(ENOBUFS, tl_media_stream_write(a->s, f, 1));
    assert_int_equal(1, stats(a).refused_bytes);
    tl_media_stream_clear(a->s);
    /* a 100-byte tail is padded with PCMU silence after one tick */
    int before = b->npk;
    assert_int_equal(0, tl_media_stream_write(a->s, f, 100));
    RUN_UNTIL(b->npk == before + 1, 1000);
    assert_int_equal(before + 1, b->npk);
    assert_memory_equal(f, b->audio + b->alen - 160, 100);
    assert_int_equal(0xff, b->audio[b->alen - 1]);
    close_peers(a, b);
    engine_down();
}

/* ---- DTMF ---- */

static void test_dtmf_out_in(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    connect_pair(a, b, plain(), plain());
    assert_int_equal(0, tl_media_stream_send_dtmf(a->s, "123#", 60));
    assert_int_equal(EINVAL, tl_media_stream_send_dtmf(a->s, "1x", 0));
    RUN_UNTIL(b->ndig == 4, 3000);
    RUN_FOR(200); /* retransmitted end packets must not repeat a digit */
    assert_int_equal(4, b->ndig);
    assert_memory_equal("123#", b->digits, 4);
    assert_int_equal(4, stats(a).dtmf_tx);
    close_peers(a, b);
    engine_down();
}

/* 'w' (Twilio's sendDigits pause) is half a second between two digits on the RTP clock */
static void test_dtmf_wait(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new();
    uint16_t rport;
    int fd = raw_sock("127.0.0.1", &rport);
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = rport;
    open_stream(a, &p);
    assert_int_equal(EINVAL, tl_media_stream_send_dtmf(a->s, "1x", 0));
    assert_int_equal(0, tl_media_stream_send_dtmf(a->s, "1w2", 100));
    uint32_t ts1 = 0, ts2 = 0;
    bool got1 = false, got2 = false;
    uint64_t d = uv_hrtime() + 3000000000u;
    while (!got2 && uv_hrtime() < d) {
        uv_run(&loop, UV_RUN_ONCE);
        uint8_t pk[64];
        ssize_t len;
        while ((len = recv(fd, pk, sizeof pk, MSG_DONTWAIT)) > 0) {
            struct tl_rtp_hdr h;
            struct tl_dtmf_ev ev;
            if (tl_rtp_parse(pk, (size_t)len, true, &h) || h.pt != 101 ||
                tl_dtmf_parse(h.payload, h.payload_len, &ev))
                continue;
            if (ev.event == 1 && !got1) {
                got1 = true;
                ts1 = h.ts;
            } else if (ev.event == 2 && !got2) {
                got2 = true;
                ts2 = h.ts;
            }
        }
    }
    assert_true(got1 && got2);
    /* digit 1: 5 tone + 3 end packets, the 60 ms gap, then 500 ms of nothing */
    assert_true(ts2 - ts1 >= (8u + 3u + 25u) * 160u);
    assert_true(ts2 - ts1 <= (8u + 3u + 25u + 2u) * 160u);
    close(fd);
    close_peers(a, NULL);
    engine_down();
}

static void test_dtmf_wire_format(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new();
    uint16_t rport;
    int fd = raw_sock("127.0.0.1", &rport);
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = rport;
    open_stream(a, &p);
    uint8_t f[160] = {0};
    assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    assert_int_equal(0, tl_media_stream_send_dtmf(a->s, "5", 100));
    assert_int_equal(0, tl_media_stream_write(a->s, f, 160)); /* waits behind the digit */
    uint8_t pk[16][64];
    ssize_t len[16];
    int n = 0;
    uint64_t d = uv_hrtime() + 2000000000u;
    while (n < 10 && uv_hrtime() < d) {
        uv_run(&loop, UV_RUN_ONCE);
        while (n < 16 && (len[n] = recv(fd, pk[n], sizeof pk[n], 0)) > 0)
            n++;
    }
    /* DTMF first (audio pauses), 5 tone packets, 3 end packets, then the 2 audio frames */
    assert_int_equal(10, n);
    struct tl_rtp_hdr h0, h;
    assert_int_equal(0, tl_rtp_parse(pk[0], (size_t)len[0], true, &h0));
    assert_int_equal(101, h0.pt);
    assert_true(h0.marker);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(0, tl_rtp_parse(pk[i], (size_t)len[i], true, &h));
        assert_int_equal(101, h.pt);
        assert_int_equal(h0.ts, h.ts);
        assert_int_equal((uint16_t)(h0.seq + i), h.seq);
        assert_int_equal(i == 0, h.marker);
        struct tl_dtmf_ev ev;
        assert_int_equal(0, tl_dtmf_parse(h.payload, h.payload_len, &ev));
        assert_int_equal(5, ev.event);
        assert_int_equal(i >= 5, ev.end);
        assert_int_equal(i < 5 ? 160 * (i + 1) : 800, ev.duration);
    }
    assert_int_equal(0, tl_rtp_parse(pk[8], (size_t)len[8], true, &h));
    assert_int_equal(0, h.pt);
    assert_true(h.marker); /* a new talkspurt after the digit */
    assert_true(h.ts - h0.ts >= 8 * 160);
    close(fd);
    close_peers(a, NULL);
    engine_down();
}

static void test_dtmf_no_marker(void **st)
{
    engine_up(NULL);
    struct peer *b = peer_new();
    uint16_t sport;
    int fd = raw_sock("127.0.0.1", &sport);
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = sport;
    open_stream(b, &p);
    uint16_t bport = tl_media_stream_local_port(b->s);
    uint8_t pk[32], ev[4];
    uint16_t seq = 100;
    const char *digits = "9*9";
    for (int d = 0; d < 3; d++) {
        uint32_t ts = 8000u + (uint32_t)d * 2000;
        int e = tl_dtmf_event(digits[d]);
        for (int k = 1; k <= 4; k++) { /* never a marker bit: some carriers omit it */
            tl_dtmf_write(ev, (uint8_t)e, false, 10, (uint16_t)(160 * k));
            raw_send(fd, bport, pk, rtp_pkt(pk, false, 101, seq++, ts, 0x5151, ev, 4));
        }
        for (int k = 0; k < 3; k++) {
            tl_dtmf_write(ev, (uint8_t)e, true, 10, 640);
            raw_send(fd, bport, pk, rtp_pkt(pk, false, 101, seq++, ts, 0x5151, ev, 4));
        }
    }
    RUN_UNTIL(stats(b).rx_packets == 21, 2000);
    RUN_FOR(50);
    assert_int_equal(3, b->ndig);
    assert_memory_equal("9*9", b->digits, 3);
    close(fd);
    close_peers(b, NULL);
    engine_down();
}

/* ---- SRTP ---- */

static void srtp_params(struct tl_media_stream_params *a, struct tl_media_stream_params *b,
                        enum tl_media_srtp_suite suite)
{
    *a = plain();
    *b = plain();
    a->srtp = b->srtp = suite;
    for (int i = 0; i < TL_MEDIA_SRTP_KEY_LEN; i++) {
        a->srtp_tx_key[i] = b->srtp_rx_key[i] = (uint8_t)(rand() & 0xff);
        b->srtp_tx_key[i] = a->srtp_rx_key[i] = (uint8_t)(rand() & 0xff);
    }
}

static void srtp_both_ways(enum tl_media_srtp_suite suite)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params pa, pb;
    srtp_params(&pa, &pb, suite);
    connect_pair(a, b, pa, pb);
    uint8_t f[160];
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
        frame(f, 100 + i);
        assert_int_equal(0, tl_media_stream_write(b->s, f, 160));
    }
    assert_int_equal(0, tl_media_stream_send_dtmf(a->s, "7", 0));
    RUN_UNTIL(b->npk == 10 && a->npk == 10 && b->ndig == 1, 3000);
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_memory_equal(f, b->audio + 160 * i, 160);
        frame(f, 100 + i);
        assert_memory_equal(f, a->audio + 160 * i, 160);
    }
    assert_int_equal('7', b->digits[0]);
    assert_int_equal(0, stats(b).drop_auth);
    close_peers(a, b);
    engine_down();
}

static void test_srtp_80(void **st)
{
    srtp_both_ways(TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
}

static void test_srtp_32(void **st)
{
    srtp_both_ways(TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32);
}

/* relay between A and B that flips one bit of the 3rd packet */
static int relay_fd;
static uint16_t relay_to;
static int relayed;
static void relay_alloc(uv_handle_t *h, size_t n, uv_buf_t *b)
{
    static char buf[2048];
    *b = uv_buf_init(buf, sizeof buf);
}
static void relay_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *a,
                       unsigned fl)
{
    if (n <= 0)
        return;
    if (++relayed == 3)
        b->base[20] ^= 0x04; /* inside the encrypted payload */
    raw_send(relay_fd, relay_to, b->base, (size_t)n);
}

static void test_srtp_tamper_and_wrong_key(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params pa, pb;
    srtp_params(&pa, &pb, TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
    connect_pair(a, b, pa, pb);
    /* A → relay (a uv socket) → B */
    uv_udp_t relay;
    uv_udp_init(&loop, &relay);
    struct sockaddr_in ra;
    uv_ip4_addr("127.0.0.1", 0, &ra);
    uv_udp_bind(&relay, (struct sockaddr *)&ra, 0);
    int rl = sizeof ra;
    uv_udp_getsockname(&relay, (struct sockaddr *)&ra, &rl);
    uv_udp_recv_start(&relay, relay_alloc, relay_recv);
    relay_fd = raw_sock("127.0.0.1", NULL);
    relay_to = tl_media_stream_local_port(b->s);
    relayed = 0;
    tl_media_stream_set_remote(a->s, "127.0.0.1", ntohs(ra.sin_port), 0);
    uint8_t f[160];
    for (int i = 0; i < 6; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    }
    RUN_UNTIL(b->npk == 5 && stats(b).drop_auth == 1, 2000);
    assert_int_equal(5, b->npk);
    assert_int_equal(1, stats(b).drop_auth);
    frame(f, 0);
    assert_memory_equal(f, b->audio, 160);
    frame(f, 3);
    assert_memory_equal(f, b->audio + 2 * 160, 160); /* frame 2 was the tampered one */
    close(relay_fd);
    uv_close((uv_handle_t *)&relay, NULL);
    close_peers(a, b);

    /* wrong key: nothing arrives, every packet counted as an auth failure */
    a = peer_new(), b = peer_new();
    srtp_params(&pa, &pb, TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
    pb.srtp_rx_key[0] ^= 1;
    connect_pair(a, b, pa, pb);
    for (int i = 0; i < 5; i++)
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    RUN_UNTIL(stats(b).drop_auth == 5, 2000);
    assert_int_equal(5, stats(b).drop_auth);
    assert_int_equal(0, b->npk);
    assert_int_equal(0, stats(b).rx_packets);
    close_peers(a, b);
    engine_down();
}

/* ---- RTP Bleed ---- */

static uint16_t remote_port(struct peer *p)
{
    struct sockaddr_storage a;
    assert_int_equal(0, tl_media_stream_remote(p->s, &a));
    return a.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&a)->sin6_port)
                                   : ntohs(((struct sockaddr_in *)&a)->sin_port);
}

static uint16_t sa_port_of(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                                    : ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static const char *sa_ip_of(const struct sockaddr_storage *a, char *buf, size_t cap)
{
    const void *ip = a->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
    return inet_ntop(a->ss_family, ip, buf, (socklen_t)cap) ? buf : "?";
}

/* every verdict of the policy table (README.md), for RTP and RTCP */
static void test_latch_decide(void **st)
{
    struct tl_latch_in in;
#define DECIDE(pol, cur, sdpip, rtpip, auth, rtp, latched)                                         \
    (in = (struct tl_latch_in){pol, true, cur, sdpip, rtpip, auth, rtp, latched},                  \
     tl_latch_decide(&in))
    for (int p = TL_MEDIA_LATCH_SDP_IP; p <= TL_MEDIA_LATCH_OFF; p++) {
        /* the current send address is always taken, never moves anything */
        assert_int_equal(TL_LATCH_ACCEPT, DECIDE(p, true, false, false, false, true, true));
        assert_int_equal(TL_LATCH_ACCEPT, DECIDE(p, true, true, false, false, false, true));
    }
    /* sdp-ip: another port of the SDP IP moves (NAT rebinding), another IP never */
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_SDP_IP, false, true, false, false, true, false));
    assert_int_equal(TL_LATCH_DROP,
                     DECIDE(TL_MEDIA_LATCH_SDP_IP, false, false, false, false, true, false));
    assert_int_equal(TL_LATCH_DROP,
                     DECIDE(TL_MEDIA_LATCH_SDP_IP, false, false, true, false, false, true));
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_SDP_IP, false, false, false, true, true, false));
    /* any: RTP takes the first source once; then only authenticated SRTP moves it */
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, false, false, false, true, false));
    assert_int_equal(TL_LATCH_DROP,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, true, false, false, true, true));
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, false, false, true, true, true));
    /* any, RTCP: from the SDP IP or the IP RTP latched to, not from a stranger */
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, false, true, false, false, true));
    assert_int_equal(TL_LATCH_MOVE,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, true, false, false, false, true));
    assert_int_equal(TL_LATCH_DROP,
                     DECIDE(TL_MEDIA_LATCH_ANY, false, false, false, false, false, false));
    /* off: the SDP IP (any port) and authenticated SRTP are taken, nothing ever moves */
    assert_int_equal(TL_LATCH_ACCEPT,
                     DECIDE(TL_MEDIA_LATCH_OFF, false, true, false, false, true, false));
    assert_int_equal(TL_LATCH_ACCEPT,
                     DECIDE(TL_MEDIA_LATCH_OFF, false, false, false, true, true, false));
    assert_int_equal(TL_LATCH_DROP,
                     DECIDE(TL_MEDIA_LATCH_OFF, false, false, true, false, true, true));
    /* without any send address, "from the current one" means nothing */
    in = (struct tl_latch_in){TL_MEDIA_LATCH_SDP_IP, false, true, false, false, false, true, false};
    assert_int_equal(TL_LATCH_DROP, tl_latch_decide(&in));
#undef DECIDE
    /* the names settings and the API use */
    assert_string_equal("sdp-ip", tl_media_latch_name(TL_MEDIA_LATCH_SDP_IP));
    assert_string_equal("any", tl_media_latch_name(TL_MEDIA_LATCH_ANY));
    assert_string_equal("off", tl_media_latch_name(TL_MEDIA_LATCH_OFF));
    assert_null(tl_media_latch_name(TL_MEDIA_LATCH_DEFAULT));
    assert_int_equal(TL_MEDIA_LATCH_ANY, tl_media_latch_parse("any"));
    assert_int_equal(TL_MEDIA_LATCH_SDP_IP, tl_media_latch_parse("sdp-ip"));
    assert_int_equal(-1, tl_media_latch_parse("ANY"));
    assert_int_equal(-1, tl_media_latch_parse(""));
    assert_int_equal(-1, tl_media_latch_parse(NULL));
}

static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *b = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
    } else {
        assert_int_equal(1, inet_pton(AF_INET6, ip, &b->sin6_addr));
        b->sin6_family = AF_INET6;
        b->sin6_port = htons(port);
    }
    return ss;
}

static void test_sa_compare(void **st)
{
#define SAME_IP(x, y) tl_sa_same_ip((struct sockaddr *)&x, (struct sockaddr *)&y)
#define SAME(x, y)    tl_sa_same((struct sockaddr *)&x, (struct sockaddr *)&y)
    struct sockaddr_storage a = sa_of("192.0.2.1", 4000), b = sa_of("192.0.2.1", 4002),
                            c = sa_of("192.0.2.2", 4000), d = sa_of("2001:db8::1", 4000),
                            e = sa_of("2001:db8::1", 4002), f = sa_of("2001:db8::2", 4000),
                            g = sa_of("::ffff:192.0.2.1", 4000);
    assert_true(SAME_IP(a, b));
    assert_false(SAME(a, b));
    assert_true(SAME(a, a));
    assert_false(SAME_IP(a, c));
    assert_true(SAME_IP(d, e));
    assert_false(SAME(d, e));
    assert_true(SAME(d, d));
    assert_false(SAME_IP(d, f));
    /* an IPv4-mapped IPv6 source is not the IPv4 address: the families never mix */
    assert_false(SAME_IP(a, g));
    assert_false(SAME_IP(a, d));
#undef SAME_IP
#undef SAME
}

static void test_rtp_bleed_plain(void **st)
{
    engine_up(NULL); /* latch = sdp-ip */
    struct peer *a = peer_new(), *b = peer_new();
    connect_pair(a, b, plain(), plain());
    uint16_t aport = tl_media_stream_local_port(a->s), bport = tl_media_stream_local_port(b->s);
    int evil = raw_sock("127.0.0.2", NULL);
    uint8_t pk[200], f[160];
    memset(f, 0x55, sizeof f);
    for (int i = 0; i < 5; i++)
        raw_send(evil, bport, pk, rtp_pkt(pk, i == 0, 0, (uint16_t)i, 160u * i, 0xbad, f, 160));
    RUN_UNTIL(stats(b).drop_source == 5, 2000);
    assert_int_equal(5, stats(b).drop_source);
    assert_int_equal(0, b->npk);
    assert_int_equal(aport, remote_port(b));
    assert_int_equal(0, stats(b).latches);
    /* the SDP IP from another port (NAT rebinding) does move the latch */
    uint16_t nport;
    int nat = raw_sock("127.0.0.1", &nport);
    raw_send(nat, bport, pk, rtp_pkt(pk, true, 0, 7, 0, 0x600d, f, 160));
    RUN_UNTIL(b->npk == 1, 2000);
    assert_int_equal(nport, remote_port(b));
    assert_int_equal(1, stats(b).latches);
    close(evil);
    close(nat);
    close_peers(a, b);

    /* policy "off": same IP, other port is accepted but never moves the send address */
    a = peer_new(), b = peer_new();
    struct tl_media_stream_params pb = plain();
    pb.latch = TL_MEDIA_LATCH_OFF;
    connect_pair(a, b, plain(), pb);
    aport = tl_media_stream_local_port(a->s);
    bport = tl_media_stream_local_port(b->s);
    nat = raw_sock("127.0.0.1", NULL);
    raw_send(nat, bport, pk, rtp_pkt(pk, true, 0, 7, 0, 0x600d, f, 160));
    RUN_UNTIL(b->npk == 1, 2000);
    assert_int_equal(aport, remote_port(b));
    close(nat);
    close_peers(a, b);

    /* policy "any": latches once, to the first source, then holds */
    a = peer_new(), b = peer_new();
    pb.latch = TL_MEDIA_LATCH_ANY;
    connect_pair(a, b, plain(), pb);
    bport = tl_media_stream_local_port(b->s);
    uint16_t first;
    nat = raw_sock("127.0.0.2", &first);
    evil = raw_sock("127.0.0.1", NULL);
    raw_send(nat, bport, pk, rtp_pkt(pk, true, 0, 1, 0, 0x600d, f, 160));
    RUN_UNTIL(b->npk == 1, 2000);
    assert_int_equal(first, remote_port(b));
    raw_send(evil, bport, pk, rtp_pkt(pk, true, 0, 2, 160, 0x600d, f, 160));
    RUN_UNTIL(stats(b).drop_source == 1, 2000);
    assert_int_equal(first, remote_port(b));
    close(nat);
    close(evil);
    close_peers(a, b);
    engine_down();
}

static void test_rtp_bleed_srtp(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params pa, pb;
    srtp_params(&pa, &pb, TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80);
    connect_pair(a, b, pa, pb);
    uint16_t aport = tl_media_stream_local_port(a->s), bport = tl_media_stream_local_port(b->s);
    /* same IP, other port, unauthenticated: dropped and no latch even though sdp-ip would
     * have allowed it for plain RTP */
    int evil = raw_sock("127.0.0.1", NULL);
    uint8_t pk[200], f[160] = {0};
    for (int i = 0; i < 3; i++)
        raw_send(evil, bport, pk, rtp_pkt(pk, false, 0, (uint16_t)i, 0, 0xbad, f, 160));
    RUN_UNTIL(stats(b).drop_auth == 3, 2000);
    assert_int_equal(3, stats(b).drop_auth);
    assert_int_equal(aport, remote_port(b));
    assert_int_equal(0, b->npk);
    /* A's own authenticated audio still flows */
    assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    RUN_UNTIL(b->npk == 1, 2000);
    assert_int_equal(1, b->npk);
    close(evil);
    close_peers(a, b);
    engine_down();
}

/* Plain RTP from an address other than the SDP's (a carrier behind NAT): dropped, counted,
 * and reported once with both addresses, TL_MEDIA_UNLATCHED_REPORT_MS after the first. */
static void test_unlatched_report(void **st)
{
    engine_up(NULL); /* sdp-ip */
    struct peer *a = peer_new(), *b = peer_new();
    connect_pair(a, b, plain(), plain());
    uint16_t aport = tl_media_stream_local_port(a->s), bport = tl_media_stream_local_port(b->s);
    struct tl_media_unlatched u;
    assert_int_equal(ENOENT, tl_media_stream_unlatched(b->s, &u));
    uint16_t nport;
    int nat = raw_sock("127.0.0.2", &nport);
    uint8_t pk[200], f[160];
    memset(f, 0x55, sizeof f);
    for (int i = 0; i < 5; i++)
        raw_send(nat, bport, pk, rtp_pkt(pk, i == 0, 0, (uint16_t)i, 160u * i, 0x4a7, f, 160));
    RUN_UNTIL(b->unlatched == 1, 3 * TL_MEDIA_UNLATCHED_REPORT_MS);
    assert_int_equal(1, b->unlatched);
    char ip[64];
    assert_string_equal("127.0.0.2", sa_ip_of(&b->unl.from, ip, sizeof ip));
    assert_int_equal(nport, sa_port_of(&b->unl.from));
    assert_string_equal("127.0.0.1", sa_ip_of(&b->unl.sdp, ip, sizeof ip));
    assert_int_equal(aport, sa_port_of(&b->unl.sdp));
    assert_int_equal(5, b->unl.dropped);
    assert_int_equal(0, b->unl.accepted);
    assert_int_equal(5, stats(b).drop_source);
    assert_int_equal(0, b->npk);
    /* the query sees later drops too (a call ending before the report asks this way) */
    raw_send(nat, bport, pk, rtp_pkt(pk, false, 0, 5, 800, 0x4a7, f, 160));
    RUN_UNTIL(stats(b).drop_source == 6, 2000);
    assert_int_equal(0, tl_media_stream_unlatched(b->s, &u));
    assert_int_equal(6, u.dropped);
    assert_int_equal(ENOENT, tl_media_stream_unlatched(a->s, &u)); /* a dropped nothing */
    close(nat);
    close_peers(a, b);

    /* `any`: the same source is the one the stream latches to, and its audio is taken */
    a = peer_new(), b = peer_new();
    struct tl_media_stream_params pb = plain();
    pb.latch = TL_MEDIA_LATCH_ANY;
    connect_pair(a, b, plain(), pb);
    bport = tl_media_stream_local_port(b->s);
    nat = raw_sock("127.0.0.2", &nport);
    for (int i = 0; i < 5; i++)
        raw_send(nat, bport, pk, rtp_pkt(pk, i == 0, 0, (uint16_t)i, 160u * i, 0x4a7, f, 160));
    RUN_UNTIL(b->npk == 5, 2000);
    assert_int_equal(5, b->npk);
    assert_int_equal(nport, remote_port(b));
    assert_int_equal(0, stats(b).drop_source);
    assert_int_equal(ENOENT, tl_media_stream_unlatched(b->s, &u));
    close(nat);
    close_peers(a, b);
    engine_down();
}

/* ---- IPv6 ---- */

static bool v6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int raw_sock6(const char *ip, uint16_t *port)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    assert_int_equal(1, inet_pton(AF_INET6, ip, &a.sin6_addr));
    if (bind(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    if (port)
        *port = ntohs(a.sin6_port);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void raw_send6(int fd, uint16_t port, const void *b, size_t n)
{
    struct sockaddr_in6 a = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    assert_int_equal((ssize_t)n, sendto(fd, b, n, 0, (struct sockaddr *)&a, sizeof a));
}

/* a global (not loopback, not link-local) IPv6 address of this host, if it has one */
static bool other_v6(char *out, size_t cap)
{
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs))
        return false;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6)
            continue;
        const struct in6_addr *a = &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_LINKLOCAL(a))
            continue;
        found = inet_ntop(AF_INET6, a, out, (socklen_t)cap) != NULL;
    }
    freeifaddrs(ifs);
    return found;
}

static void test_ipv6_streams(void **st)
{
    if (!v6_loopback()) {
        printf("skipped: ::1 cannot be bound (no IPv6 on this host)\n");
        skip();
    }
    struct tl_media_config cfg = {.bind_ip6 = "::1"};
    engine_up(&cfg);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params pa = plain(), pb = plain();
    pa.af = AF_INET6; /* no remote yet: the family says which sockets */
    open_stream(a, &pa);
    pb.remote_ip = "::1";
    pb.remote_rtp_port = tl_media_stream_local_port(a->s);
    open_stream(b, &pb);
    uint16_t bport = tl_media_stream_local_port(b->s);
    assert_int_equal(0, tl_media_stream_set_remote(a->s, "::1", bport, 0));
    assert_int_equal(AF_INET6, tl_media_stream_af(a->s));
    assert_int_equal(AF_INET6, tl_media_stream_af(b->s));
    uint8_t f[160];
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
        frame(f, 100 + i);
        assert_int_equal(0, tl_media_stream_write(b->s, f, 160));
    }
    assert_int_equal(0, tl_media_stream_send_dtmf(a->s, "4", 0));
    RUN_UNTIL(b->npk == 10 && a->npk == 10 && b->ndig == 1, 3000);
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_memory_equal(f, b->audio + 160 * i, 160);
        frame(f, 100 + i);
        assert_memory_equal(f, a->audio + 160 * i, 160);
    }
    assert_int_equal('4', b->digits[0]);
    /* the family is the sockets': an IPv4 address for an IPv6 stream is refused */
    assert_int_equal(EAFNOSUPPORT, tl_media_stream_set_remote(a->s, "127.0.0.1", 4000, 0));
    struct tl_media_stream_params bad = plain();
    bad.remote_ip = "127.0.0.1";
    bad.remote_rtp_port = 4000;
    assert_int_equal(EAFNOSUPPORT, tl_media_stream_set_params(a->s, &bad));
    bad.af = AF_INET6;
    struct peer *c = peer_new();
    assert_int_equal(EINVAL, tl_media_stream_open(E, &bad, &CB, c, &c->s));
    free(c);

    /* sdp-ip over IPv6: the SDP IP from another port moves the send address */
    uint16_t nport;
    int nat = raw_sock6("::1", &nport);
    assert_true(nat >= 0);
    uint8_t pk[200];
    int npk = b->npk;
    raw_send6(nat, bport, pk, rtp_pkt(pk, true, 0, 7, 0, 0x600d, f, 160));
    RUN_UNTIL(b->npk == npk + 1, 2000);
    assert_int_equal(npk + 1, b->npk);
    assert_int_equal(nport, remote_port(b));
    assert_int_equal(1, stats(b).latches);
    close(nat);
    /* another IPv6 address is dropped and reported, as for IPv4 (RTP Bleed) */
    char other[INET6_ADDRSTRLEN];
    int evil = other_v6(other, sizeof other) ? raw_sock6(other, NULL) : -1;
    if (evil >= 0) {
        for (int i = 0; i < 3; i++)
            raw_send6(evil, bport, pk, rtp_pkt(pk, false, 0, (uint16_t)(20 + i), 0, 0xbad, f, 160));
        RUN_UNTIL(stats(b).drop_source == 3, 2000);
        assert_int_equal(3, stats(b).drop_source);
        assert_int_equal(nport, remote_port(b));
        struct tl_media_unlatched u;
        char ip[64];
        assert_int_equal(0, tl_media_stream_unlatched(b->s, &u));
        assert_string_equal(other, sa_ip_of(&u.from, ip, sizeof ip));
        close(evil);
    } else {
        printf("note: no second local IPv6 address; the other-IP case is covered by "
               "test_sa_compare and test_latch_decide\n");
    }
    close_peers(a, b);
    engine_down();

    /* an IPv6 bind address that is not local: EAFNOSUPPORT, not the pool's EADDRNOTAVAIL,
     * and IPv4 streams of the same engine still open */
    cfg.bind_ip6 = "2001:db8::7";
    engine_up(&cfg);
    a = peer_new();
    pa = plain();
    pa.af = AF_INET6;
    assert_int_equal(EAFNOSUPPORT, tl_media_stream_open(E, &pa, &CB, a, &a->s));
    pa.af = AF_INET;
    open_stream(a, &pa);
    assert_int_equal(AF_INET, tl_media_stream_af(a->s));
    close_peers(a, NULL);
    engine_down();
}

/* ---- RTCP ---- */

static void test_rtcp_loss(void **st)
{
    engine_up(NULL);
    struct peer *b = peer_new();
    uint16_t sport;
    int fd = raw_sock("127.0.0.1", &sport);
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = sport;
    open_stream(b, &p);
    uint16_t bport = tl_media_stream_local_port(b->s);
    uint8_t pk[200], f[160] = {0};
    for (int i = 0; i < 100; i++) {
        if (i == 5 || i == 6 || i == 50 || i == 77 || i == 98)
            continue;
        raw_send(fd, bport, pk, rtp_pkt(pk, false, 0, (uint16_t)(2000 + i), 160u * i, 9, f, 160));
    }
    RUN_UNTIL(stats(b).rx_packets == 95, 2000);
    struct tl_media_stats s = stats(b);
    assert_int_equal(95, s.rx_packets);
    assert_int_equal(100, s.expected);
    assert_int_equal(5, s.lost);
    assert_int_equal(2099, s.max_seq_ext);
    assert_int_equal(9, s.remote_ssrc);
    close(fd);
    close_peers(b, NULL);
    engine_down();
}

static void test_rtcp_exchange(void **st)
{
    struct tl_media_config cfg = {.rtcp_interval_ms = 200};
    engine_up(&cfg);
    struct peer *a = peer_new(), *b = peer_new();
    connect_pair(a, b, plain(), plain());
    uint8_t f[160] = {0};
    for (int i = 0; i < 40; i++) {
        tl_media_stream_write(a->s, f, 160);
        tl_media_stream_write(b->s, f, 160);
    }
    RUN_UNTIL(stats(a).remote_report && stats(b).remote_report && stats(a).rtcp_rx >= 3, 3000);
    struct tl_media_stats sa = stats(a), sb = stats(b);
    assert_true(sa.remote_report);
    assert_true(sb.remote_report);
    assert_true(sa.rtcp_tx >= 1 && sb.rtcp_tx >= 1);
    assert_int_equal(0, sa.remote_lost);
    assert_int_equal(0, sa.drop_rtcp);
    assert_true(sa.rtt_ms < 100); /* loopback */
    close_peers(a, b);
    engine_down();
}

/* ---- timeout ---- */

static void test_timeout(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params p = plain();
    p.timeout_ms = 300;
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = 9; /* discard: nobody answers */
    open_stream(a, &p);
    open_stream(b, &p);
    tl_media_stream_set_direction(b->s, true, false); /* on hold: no timeout */
    uint64_t t0 = uv_now(&loop);
    RUN_UNTIL(a->timeouts == 1, 2000);
    assert_int_equal(1, a->timeouts);
    assert_true(uv_now(&loop) - t0 >= 300);
    RUN_FOR(500);
    assert_int_equal(1, a->timeouts); /* once */
    assert_int_equal(0, b->timeouts);
    tl_media_stream_set_direction(b->s, true, true); /* resumed: counts from now */
    RUN_UNTIL(b->timeouts == 1, 2000);
    assert_int_equal(1, b->timeouts);
    close_peers(a, b);
    engine_down();
}

/* One-way audio: nothing ever from the far end after the answer; its RTP stopping while
 * ours goes on; not when both are silent, nor on hold. */
static void test_one_way_audio(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new(), *c = peer_new();
    struct tl_media_stream_params p = plain();
    open_stream(a, &p);
    open_stream(b, &p);
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = 9; /* discard: nobody answers */
    open_stream(c, &p);
    tl_media_stream_set_remote(a->s, "127.0.0.1", tl_media_stream_local_port(b->s), 0);
    tl_media_stream_set_remote(b->s, "127.0.0.1", tl_media_stream_local_port(a->s), 0);

    /* c never hears anything: reported once, as never */
    uint64_t t0 = uv_now(&loop);
    tl_media_stream_watch(c->s, 300);
    RUN_UNTIL(c->quiet == 1, 2000);
    assert_int_equal(1, c->quiet);
    assert_true(c->quiet_never);
    assert_true(uv_now(&loop) - t0 >= 300 && c->quiet_gap >= 300);

    /* a hears b for a while, then b stops while a keeps talking: reported as stopped */
    tl_media_stream_watch(a->s, 300);
    uint8_t f[160];
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(b->s, f, 160));
    }
    RUN_UNTIL(a->npk == 10, 2000);
    for (int i = 0; i < 50; i++) { /* 1 s of ours */
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
    }
    RUN_UNTIL(a->quiet == 1, 2000);
    assert_int_equal(1, a->quiet);
    assert_false(a->quiet_never);
    RUN_FOR(400);
    assert_int_equal(1, a->quiet); /* once per watch */

    /* both silent after some audio: a pause, not one-way audio; on hold: nothing */
    tl_media_stream_watch(b->s, 300); /* b heard a above; nothing flows now */
    RUN_UNTIL(tl_media_stream_queued(a->s) == 0, 2000);
    tl_media_stream_watch(b->s, 300);
    RUN_FOR(700);
    assert_int_equal(0, b->quiet);
    tl_media_stream_set_direction(c->s, true, false);
    tl_media_stream_watch(c->s, 200);
    RUN_FOR(500);
    assert_int_equal(1, c->quiet);
    close_peers(a, b);
    tl_media_stream_close(c->s);
    RUN_UNTIL(c->closed, 1000);
    free(c);
    engine_down();
}

/* ---- malformed ---- */

static void test_malformed(void **st)
{
    engine_up(NULL);
    struct peer *b = peer_new();
    uint16_t sport;
    int fd = raw_sock("127.0.0.1", &sport);
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = sport;
    open_stream(b, &p);
    uint16_t bport = tl_media_stream_local_port(b->s);
    uint8_t pk[1600] = {0}, f[160] = {0};
    raw_send(fd, bport, "\x80\x00\x00", 3); /* short */
    size_t n = rtp_pkt(pk, false, 0, 1, 0, 1, f, 160);
    pk[0] = 0x40;
    raw_send(fd, bport, pk, n); /* version 1 */
    pk[0] = 0x8f;
    raw_send(fd, bport, pk, 40); /* 15 CSRCs past the end */
    pk[0] = 0x90;
    pk[12] = 0xbe, pk[13] = 0xde, pk[14] = 0xff, pk[15] = 0xff;
    raw_send(fd, bport, pk, n); /* extension past the end */
    pk[0] = 0xa0;
    pk[n - 1] = 200;
    raw_send(fd, bport, pk, n);         /* padding longer than the payload */
    raw_send(fd, bport, pk, sizeof pk); /* 1600 > 1500 */
    n = rtp_pkt(pk, false, 99, 1, 0, 1, f, 160);
    raw_send(fd, bport, pk, n); /* unknown PT */
    RUN_UNTIL(stats(b).drop_malformed == 5 && stats(b).drop_too_big == 1 && stats(b).drop_pt == 1,
              2000);
    struct tl_media_stats s = stats(b);
    assert_int_equal(5, s.drop_malformed);
    assert_int_equal(1, s.drop_too_big);
    assert_int_equal(1, s.drop_pt);
    assert_int_equal(0, b->npk);
    /* RTCP garbage on the RTCP port */
    raw_send(fd, (uint16_t)(bport + 1), "\x80\xc9\x00\x09garbage", 11);
    RUN_UNTIL(stats(b).drop_rtcp == 1, 2000);
    assert_int_equal(1, stats(b).drop_rtcp);
    /* and a good packet still gets through */
    n = rtp_pkt(pk, false, 0, 1, 0, 1, f, 160);
    raw_send(fd, bport, pk, n);
    RUN_UNTIL(b->npk == 1, 2000);
    assert_int_equal(1, b->npk);
    close(fd);
    close_peers(b, NULL);
    engine_down();
}

/* ---- ports ---- */

static void test_port_alloc(void **st)
{
    struct tl_media_config cfg = {.port_min = port_base, .port_max = (uint16_t)(port_base + 3)};
    engine_up(&cfg);
    struct peer *a = peer_new(), *b = peer_new(), *c = peer_new();
    struct tl_media_stream_params p = plain();
    open_stream(a, &p);
    open_stream(b, &p);
    uint16_t pa = tl_media_stream_local_port(a->s), pb = tl_media_stream_local_port(b->s);
    /* both pairs, in the pool's (shuffled) order */
    assert_true((pa == port_base && pb == port_base + 2) ||
                (pa == port_base + 2 && pb == port_base));
    assert_int_equal(EADDRNOTAVAIL, tl_media_stream_open(E, &p, &CB, c, &c->s));
    close_peers(a, NULL); /* the pair returns only once its sockets are closed */
    open_stream(c, &p);
    assert_int_equal(pa, tl_media_stream_local_port(c->s));
    close_peers(b, c);
    engine_down();

    /* a pair busy in another socket is skipped */
    cfg.port_max = (uint16_t)(port_base + 5);
    engine_up(&cfg);
    int busy = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ba = {.sin_family = AF_INET, .sin_port = htons(port_base)};
    inet_pton(AF_INET, "127.0.0.1", &ba.sin_addr);
    assert_int_equal(0, bind(busy, (struct sockaddr *)&ba, sizeof ba));
    a = peer_new();
    open_stream(a, &p);
    uint16_t pq = tl_media_stream_local_port(a->s);
    assert_true(pq == port_base + 2 || pq == port_base + 4);
    close(busy);
    close_peers(a, NULL);
    /* the cap on streams */
    engine_down();
    cfg.max_streams = 1;
    engine_up(&cfg);
    a = peer_new();
    c = peer_new();
    open_stream(a, &p);
    assert_int_equal(EMFILE, tl_media_stream_open(E, &p, &CB, c, &c->s));
    free(c);
    close_peers(a, NULL);
    engine_down();
}

/* close from inside a callback, during the clock walk */
static void close_on_mark(struct tl_media_stream *s, void *arg, uint32_t id)
{
    tl_media_stream_close(s);
}

static void test_close_in_callback(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_cb cb = CB;
    cb.on_mark = close_on_mark;
    struct tl_media_stream_params p = plain();
    p.remote_ip = "127.0.0.1";
    p.remote_rtp_port = 9;
    assert_int_equal(0, tl_media_stream_open(E, &p, &cb, a, &a->s));
    assert_int_equal(0, tl_media_stream_open(E, &p, &cb, b, &b->s));
    uint8_t f[160] = {0};
    tl_media_stream_write(a->s, f, 160);
    tl_media_stream_mark(a->s, 1);
    tl_media_stream_write(b->s, f, 160);
    tl_media_stream_mark(b->s, 1);
    RUN_UNTIL(a->closed && b->closed, 2000);
    assert_true(a->closed && b->closed);
    free(a);
    free(b);
    engine_down();
}

/* Late offer: a stream opened before the answer (pending) drops what arrives, sends
 * nothing and keeps what is written; set_params then brings the answer's codec,
 * telephone-event PT, SRTP suite and keys, and the remote address, and the audio held
 * meanwhile plays first (an outbound call's agent greets before the answer). */
static void test_set_params_late_offer(void **st)
{
    engine_up(NULL);
    struct peer *a = peer_new(), *b = peer_new();
    struct tl_media_stream_params pa, pb;
    srtp_params(&pa, &pb, TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32);
    pb.pt = 8;
    pa.pt = 8;
    struct tl_media_stream_params pend = {0};
    pend.pending = true;
    pend.pt = 99; /* ignored while pending */
    open_stream(a, &pend);
    pb.remote_ip = "127.0.0.1";
    pb.remote_rtp_port = tl_media_stream_local_port(a->s);
    open_stream(b, &pb);
    uint8_t f[160];
    for (int i = 0; i < 5; i++) {
        frame(f, 50 + i);
        assert_int_equal(0, tl_media_stream_write(b->s, f, 160));
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160)); /* held, not sent */
    }
    /* everything b sent (5 RTP, maybe an RTCP report) reached a and was dropped */
    RUN_UNTIL(stats(b).tx_packets == 5 && stats(a).drop_pending >= 5 + stats(b).rtcp_tx, 2000);
    assert_true(stats(a).drop_pending >= 5);
    assert_int_equal(0, a->npk);
    assert_int_equal(0, stats(a).tx_packets);
    assert_int_equal(0, stats(a).drop_auth);
    assert_int_equal(5 * 160, tl_media_stream_queued(a->s)); /* ticks went by: still held */

    /* bad answers leave the stream as it was */
    struct tl_media_stream_params bad = pa;
    bad.pt = 18;
    assert_int_equal(EINVAL, tl_media_stream_set_params(a->s, &bad));
    bad = pa;
    bad.remote_ip = "not-an-ip";
    bad.remote_rtp_port = 4000;
    assert_int_equal(EINVAL, tl_media_stream_set_params(a->s, &bad));

    pa.remote_ip = "127.0.0.1";
    pa.remote_rtp_port = tl_media_stream_local_port(b->s);
    assert_int_equal(0, tl_media_stream_set_params(a->s, &pa));
    memset(&pa, 0, sizeof pa); /* the caller wipes its copy of the keys */
    uint32_t dropped = stats(a).drop_pending;
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_int_equal(0, tl_media_stream_write(a->s, f, 160));
        frame(f, 100 + i);
        assert_int_equal(0, tl_media_stream_write(b->s, f, 160));
    }
    assert_int_equal(0, tl_media_stream_send_dtmf(b->s, "9", 0));
    RUN_UNTIL(b->npk == 15 && a->npk == 10 && a->ndig == 1, 3000);
    assert_int_equal(15, b->npk); /* b takes PT 8 only: a sends PCMA now */
    assert_int_equal(10, a->npk);
    for (int i = 0; i < 5; i++) { /* the frames held while pending come first */
        frame(f, 50 + i);
        assert_memory_equal(f, b->audio + 160 * i, 160);
    }
    for (int i = 0; i < 10; i++) {
        frame(f, i);
        assert_memory_equal(f, b->audio + 160 * (5 + i), 160);
        frame(f, 100 + i);
        assert_memory_equal(f, a->audio + 160 * i, 160);
    }
    assert_int_equal('9', a->digits[0]);
    assert_int_equal(dropped, stats(a).drop_pending);
    assert_int_equal(0, stats(a).drop_auth);
    assert_int_equal(0, stats(b).drop_auth);
    close_peers(a, b);
    engine_down();
}

static void test_sizes(void **st)
{
    printf("sizeof(struct tl_media_stream) = %zu bytes (plus libsrtp contexts with SRTP, "
           "plus 1 KiB chunks while audio is queued)\n",
           tl_media__stream_size());
    assert_true(tl_media__stream_size() < 4096);
}

int main(void)
{
    srand((unsigned)getpid());
    port_base = (uint16_t)(40000 + (getpid() % 100) * 200); /* tests running side by side */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rtp_parse),
        cmocka_unit_test(test_rtcp_parse),
        cmocka_unit_test(test_dtmf_rx),
        cmocka_unit_test(test_source_stats),
        cmocka_unit_test(test_port_pool),
        cmocka_unit_test(test_audio_marks),
        cmocka_unit_test(test_dtmf_out_in),
        cmocka_unit_test(test_dtmf_wire_format),
        cmocka_unit_test(test_dtmf_no_marker),
        cmocka_unit_test(test_srtp_80),
        cmocka_unit_test(test_srtp_32),
        cmocka_unit_test(test_srtp_tamper_and_wrong_key),
        cmocka_unit_test(test_latch_decide),
        cmocka_unit_test(test_sa_compare),
        cmocka_unit_test(test_rtp_bleed_plain),
        cmocka_unit_test(test_unlatched_report),
        cmocka_unit_test(test_ipv6_streams),
        cmocka_unit_test(test_rtp_bleed_srtp),
        cmocka_unit_test(test_rtcp_loss),
        cmocka_unit_test(test_rtcp_exchange),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_one_way_audio),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_port_alloc),
        cmocka_unit_test(test_dtmf_wait),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_set_params_late_offer),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
