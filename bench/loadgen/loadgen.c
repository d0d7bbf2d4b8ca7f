/* bench/loadgen: a load generator for bench/calls. One process, one libuv loop, one core.
 *
 * Places concurrent calls to trunkline over SIP/TCP (a few connections carrying many dialogs,
 * like a carrier trunk) or SIP/UDP: INVITE with a PCMU offer (one RTP port per call), 100/180/
 * 200, ACK; then streams 20 ms RTP frames for every call from one pacing clock (a timerfd at
 * t0 + n * 20 ms) and validates the echo: each frame carries its frame number and call index
 * in the μ-law payload, and must come back within --grace-ms (else lost; later = late; out of
 * order = reordered). The daemon's outgoing jitter is |inter-arrival - 20 ms| between
 * consecutive RTP sequence numbers, taken from kernel receive timestamps (SO_TIMESTAMPNS), so
 * our own scheduling does not show in it; INVITE->200 is from our send() to the kernel's
 * receive timestamp of the 200. RTP sockets are not in the event loop: each tick drains every
 * call's socket with one recvmmsg(), which is cheaper than a wake-up per packet.
 *
 * Ramp: steps of N concurrent calls (calls are added to reach N), each step measured over a
 * window of `hold` seconds after every call of the step has its final answer; per step it
 * prints a "STEP" line of key=value figures. "WINDOW-START" marks the start of a window (the
 * bench runner samples the daemon's CPU between the two). Stops by itself: after the last
 * step, at the first broken step (--stop-on-break), on SIGINT/SIGTERM (BYE all, then exit),
 * or at a hard deadline. Loopback only.
 *
 * --self-test: no SIP; each call's RTP goes to an echo endpoint inside this process that
 * answers on its own 20 ms clock (one frame per tick, like the daemon), optionally dropping
 * every K-th frame (--self-test-drop K) to check that losses are counted.
 *
 * --agent-port P [--agent-cert F --agent-key F]: bench/agents. This process also plays the
 * agent: a WebSocket echo server on 127.0.0.1:P (agentsrv.c; TLS with the certificate given)
 * that sends every `media` payload back as `media`. One clock in one process, so latency is
 * measured both ways: RTP in -> WebSocket out of the daemon (our send() of the RTP packet to
 * the kernel's receive timestamp of the WebSocket bytes carrying its frame), and WebSocket in
 * -> RTP out (our send() of the frame to the kernel's receive timestamp of the RTP packet).
 * The second includes the media clock's pacing (a frame waits for the daemon's next 20 ms
 * tick), so it is also given without it: the daemon's ticks are located from its own RTP (the
 * first packet of each tick's burst, the bursts split at the widest gap in their phase over
 * the settle time), the scheduled tick is the earliest tick phase of the window, and "added"
 * is the RTP's arrival minus the first scheduled tick after the agent's send — a late tick, the
 * walk over every call, a missed tick (+20 ms) all count as added; only the wait for the
 * clock does not. The same split is given for the whole round trip (RTP out of us -> RTP back,
 * "e2e"), also without an agent (the builtin echo), so both agents compare.
 *
 * --slots S: spread the calls' frames over the 20 ms in S slots (call i sends in slot i % S,
 * a timerfd every 20/S ms), as independent carrier streams arrive, instead of every call's
 * frame at the same instant (S = 1, bench/calls). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "agentsrv.h"
#include "media/media_int.h"
#include "sip/sip.h"

#define FRAME_NS    20000000LL
#define PAYLOAD     160
#define RING        256 /* frames of echo bookkeeping per call (5.12 s) */
#define MAX_CALLS   20000
#define MAX_STEPS   16
#define MAX_CONNS   64
#define RXB         8
#define JH_US       10    /* jitter histogram bucket, µs */
#define JH_N        20001 /* 0..200 ms, last bucket = overflow */
#define TH_N        20001 /* tick lateness, same buckets */
#define MAX_CATCHUP 5     /* frames sent at once after missed ticks */
#define LR          32    /* frames of latency bookkeeping per call (640 ms > grace) */
#define PH_N        200   /* phase histogram of the daemon's RTP: 100 µs buckets of 20 ms */

struct opts {
    char sip_ip[64];
    uint16_t sip_port;
    bool tcp;
    unsigned conns;
    const char *number;
    unsigned steps[MAX_STEPS], holds[MAX_STEPS], nsteps;
    unsigned hold;
    unsigned cps;
    unsigned bye_cps; /* BYEs per second in the teardown; 0: 2 * cps */
    unsigned rtp_min, rtp_max;
    unsigned grace_ms;
    unsigned setup_timeout_s;
    unsigned settle_ms;
    bool no_rtp;
    bool self_test;
    unsigned st_drop;
    bool stop_on_break;
    double max_jitter_ms;
    unsigned max_seconds;
    int echo_cpu;
    unsigned rx_every;
    uint16_t agent_port;
    const char *agent_cert, *agent_key;
    bool agent_wake;
    unsigned slots;
    /* --outbound: the daemon calls us */
    bool outbound;
    uint16_t listen_port;
    char api_ip[64];
    uint16_t api_port;
    const char *token;
    const char *to_prefix;
    unsigned api_conns;
    uint16_t dns_port; /* --dns: answer the daemon's RFC 3263 lookups of --dns-name */
    const char *dns_name;
};
static struct opts opt = {
    .sip_ip = "127.0.0.1",
    .tcp = true,
    .conns = 1,
    .number = "+15550100000",
    .hold = 60,
    .cps = 200,
    .rtp_min = 42000,
    .rtp_max = 61998,
    .grace_ms = 300,
    .setup_timeout_s = 10,
    .settle_ms = 1000,
    .max_jitter_ms = 5.0,
    .echo_cpu = -1,
    .rx_every = 2,
    .slots = 1,
    .api_ip = "127.0.0.1",
    .to_prefix = "+49155",
    .api_conns = 4,
    .dns_name = "carrier.bench",
};

/* ---- statistics of one phase (a measuring window, or everything outside windows) ---- */
struct stats {
    uint64_t tx, tx_err, rx, echoed, lost, late, reord, dup, bad, filler, other;
    uint64_t jit_n, jit_max_ns;
    uint32_t jit[JH_N];
    uint64_t tick_n, overruns;
    uint32_t tick[TH_N];
    /* latency (same buckets): RTP -> agent, agent -> RTP, RTP -> RTP */
    uint64_t a2w_n, w2r_n, e2e_n, agent_rx, agent_tx, agent_bad;
    uint32_t a2w[JH_N], w2r[JH_N], e2e[JH_N];
};
static struct stats st_win, st_out;
static struct stats *cur = &st_out;

enum phase { P_SETUP, P_SETTLE, P_WINDOW, P_TEARDOWN };
static enum phase phase = P_SETUP;

static void hist_add(uint32_t *h, size_t n, int64_t ns)
{
    if (ns < 0)
        ns = -ns;
    uint64_t b = (uint64_t)ns / (JH_US * 1000);
    h[b < n - 1 ? b : n - 1]++;
}

static double hist_pct(const uint32_t *h, size_t n, uint64_t total, double pct)
{
    if (!total)
        return 0;
    uint64_t want = (uint64_t)((double)total * pct / 100.0 + 0.999999), acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += h[i];
        if (acc >= want)
            return (double)(i + 1) * JH_US / 1000.0; /* upper edge of the bucket, ms */
    }
    return (double)n * JH_US / 1000.0;
}

/* ---- calls ---- */
enum cst { C_FREE = 0, C_INVITING, C_UP, C_BYEING, C_DONE, C_FAILED };

struct echo_ep { /* --self-test: the far end */
    int fd;
    struct sockaddr_in peer;
    uint16_t seq;
    uint32_t ts, ssrc, rx;
    uint8_t q[8][PAYLOAD];
    unsigned qh, qn;
};

struct call {
    enum cst st;
    uint8_t step;
    uint16_t conn;
    uint16_t fail_code; /* SIP status, or 0 */
    int fd, rtcp_fd;
    uint16_t lport;
    int64_t t_inv_rt; /* CLOCK_REALTIME ns of the INVITE's send() (--outbound: the POST's) */
    uint32_t i200_us; /* INVITE -> 200 (--outbound: POST -> our 200 OK's send()) */
    int64_t deadline; /* monotonic ns: setup or BYE timeout */
    int64_t t_retx;   /* UDP retransmission */
    unsigned retx;
    struct sockaddr_in rem;
    char totag[96];
    char target[192]; /* remote target (Contact of the 200; --outbound: of the INVITE) */
    char route[400];  /* "Route: ...\r\n" from the 200's Record-Route (reversed), or "" */
    /* --outbound: the dialog as the callee (UAS) sees it */
    bool answered;       /* 200 sent, ACK awaited */
    uint32_t post_us;    /* POST /v1/calls -> its response */
    uint32_t inv_us;     /* POST -> the daemon's INVITE (kernel receive timestamp) */
    uint32_t ack_us;     /* POST -> the daemon's ACK of our 200 (kernel receive timestamp) */
    char callid[96];     /* the daemon's Call-ID */
    char peer_from[200]; /* the INVITE's From value (with its tag): our BYE's To */
    uint16_t seq;
    uint32_t ts, ssrc;
    uint32_t tx_n, chk, hi;
    uint8_t got[RING / 8];
    bool jl;
    uint16_t jseq;
    int64_t jt;
};
static struct call *calls;
static unsigned placed; /* calls[0..placed) have been used */
static uint32_t run_id;

/* ---- latency: per call, when each recent frame left us (RTP) and left the agent; f + 1
 * names the frame an entry is about (0: none) ---- */
struct lat_ent {
    int64_t t; /* CLOCK_REALTIME ns */
    uint32_t f1;
};
struct lat {
    struct lat_ent tx[LR], as[LR];
};
static struct lat *lats;

/* The daemon's ticks, located from its RTP (see the top): during the settle time the phase
 * of every packet's arrival fills ph; at the window's start the widest run of empty buckets
 * gives tk_bound, the phase where one tick's burst ends and the next is not yet due; in the
 * window tk_first[k] is the first arrival of tick k (counted from tk_base). */
static uint32_t ph[PH_N];
static int64_t tk_bound;
static int64_t *tk_first;
static size_t tk_n;
static int64_t tk_base;
static double tk_gap_ms;
struct pair {
    int64_t sent, as, rx; /* our RTP send, the agent's send (0: echo), the RTP back */
    uint32_t idx, f;      /* call, frame */
};
static struct pair *pairs;
static size_t npairs, pairs_cap;

static void tick_note(int64_t ts)
{
    if (phase == P_SETTLE) {
        ph[(ts % FRAME_NS) / (FRAME_NS / PH_N)]++;
    } else if (phase == P_WINDOW && tk_first) {
        int64_t k = (ts - tk_bound) / FRAME_NS - tk_base;
        if (k >= 0 && (size_t)k < tk_n && (!tk_first[k] || ts < tk_first[k]))
            tk_first[k] = ts;
    }
}

static void pair_add(int64_t sent, int64_t as, int64_t rx, uint32_t idx, uint32_t f)
{
    if (npairs == pairs_cap) {
        size_t cap = pairs_cap ? pairs_cap * 2 : 1 << 16;
        struct pair *np = realloc(pairs, cap * sizeof *np);
        if (!np)
            return;
        pairs = np;
        pairs_cap = cap;
    }
    pairs[npairs++] = (struct pair){sent, as, rx, idx, f};
}

/* the window starts: where the daemon's ticks split, from the settle time's arrivals */
static void ticks_begin(int64_t now_real, unsigned hold_s)
{
    free(tk_first);
    tk_first = NULL;
    npairs = 0;
    tk_gap_ms = 0;
    uint64_t tot = 0;
    for (int i = 0; i < PH_N; i++)
        tot += ph[i];
    if (tot) {
        uint64_t thr = tot / 100000; /* a stray packet does not close a gap */
        int best = 0, best_end = 0, run = 0;
        for (int i = 0; i < 2 * PH_N; i++) { /* twice round: runs across the wrap */
            run = ph[i % PH_N] <= thr ? run + 1 : 0;
            if (run > best && run <= PH_N) {
                best = run;
                best_end = i;
            }
        }
        tk_gap_ms = best * 20.0 / PH_N;
        int mid = (best_end - best / 2) % PH_N;
        tk_bound = (int64_t)mid * (FRAME_NS / PH_N);
        tk_n = (size_t)hold_s * 50 + 400;
        tk_first = calloc(tk_n, sizeof *tk_first);
        tk_base = (now_real - tk_bound) / FRAME_NS - 100;
    }
    memset(ph, 0, sizeof ph);
}

struct tick_eval {
    double late_p99, pace_p50, w2r_add_p50, w2r_add_p99, e2e_add_p50, e2e_add_p99;
    uint64_t ticks;  /* ticks seen */
    uint64_t missed; /* frames that left a tick or more after they could have */
    uint64_t queued; /* frames that waited behind their call's earlier audio */
};

static int cmp_pair(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->idx != y->idx)
        return x->idx < y->idx ? -1 : 1;
    return x->f < y->f ? -1 : x->f > y->f;
}

/* the first scheduled tick at or after t (ticks at org + n * 20 ms) */
static int64_t tick_after(int64_t org, int64_t t)
{
    return org + ((t - org + FRAME_NS - 1) / FRAME_NS) * FRAME_NS;
}

/* At the window's end: the scheduled tick is the earliest phase seen. A frame may leave on
 * the first scheduled tick after it was sent (the clock's wait) and not before the tick after
 * the one that played its call's previous frame (the wait behind audio queued before it:
 * the playout is in order at real time, so one late frame makes a standing queue for an
 * echo that never pauses). Added latency = the RTP's arrival minus that tick. */
static void ticks_eval(struct tick_eval *o)
{
    memset(o, 0, sizeof *o);
    if (!tk_first)
        return;
    int64_t minph = INT64_MAX;
    for (size_t k = 0; k < tk_n; k++)
        if (tk_first[k]) {
            int64_t p = tk_first[k] - (tk_bound + ((int64_t)k + tk_base) * FRAME_NS);
            if (p < minph)
                minph = p;
            o->ticks++;
        }
    if (!o->ticks)
        return;
    static uint32_t late[JH_N], pace[JH_N], wadd[JH_N], eadd[JH_N];
    memset(late, 0, sizeof late);
    memset(pace, 0, sizeof pace);
    memset(wadd, 0, sizeof wadd);
    memset(eadd, 0, sizeof eadd);
    for (size_t k = 0; k < tk_n; k++)
        if (tk_first[k])
            hist_add(late, JH_N,
                     tk_first[k] - (tk_bound + ((int64_t)k + tk_base) * FRAME_NS) - minph);
    int64_t org = tk_bound + minph;
    qsort(pairs, npairs, sizeof *pairs, cmp_pair);
    uint64_t nw = 0;
    for (size_t i = 0; i < npairs; i++) {
        const struct pair *q = &pairs[i];
        /* the tick that played the previous frame: the last scheduled one before its arrival */
        int64_t floor_tick = INT64_MIN;
        if (i && pairs[i - 1].idx == q->idx && pairs[i - 1].f + 1 == q->f)
            floor_tick = org + ((pairs[i - 1].rx - org) / FRAME_NS + 1) * FRAME_NS;
        int64_t ready = tick_after(org, q->as ? q->as : q->sent);
        int64_t e_ready = tick_after(org, q->sent);
        hist_add(pace, JH_N, ready - (q->as ? q->as : q->sent));
        if (floor_tick > ready) {
            o->queued++;
            ready = floor_tick;
        }
        if (floor_tick > e_ready)
            e_ready = floor_tick;
        if (q->rx - ready >= FRAME_NS)
            o->missed++;
        if (q->as) {
            hist_add(wadd, JH_N, q->rx - ready);
            nw++;
        }
        hist_add(eadd, JH_N, q->rx - e_ready);
    }
    o->late_p99 = hist_pct(late, JH_N, o->ticks, 99.0);
    o->pace_p50 = hist_pct(pace, JH_N, npairs, 50.0);
    o->w2r_add_p50 = hist_pct(wadd, JH_N, nw, 50.0);
    o->w2r_add_p99 = hist_pct(wadd, JH_N, nw, 99.0);
    o->e2e_add_p50 = hist_pct(eadd, JH_N, npairs, 50.0);
    o->e2e_add_p99 = hist_pct(eadd, JH_N, npairs, 99.0);
}

/* per-step counters */
static unsigned step_setup_failed[MAX_STEPS], step_dropped[MAX_STEPS];
static unsigned fail_codes[700]; /* setup failures by status; [0] = timeout/local error */

/* ---- SIP transport ---- */
struct conn {
    int fd;
    uv_poll_t poll;
    char *in;
    size_t in_len, in_cap;
    struct tl_sip_frame fr;
    char *out;
    size_t out_len, out_cap;
    bool wpoll, dead;
    uint16_t lport;
};
static struct conn conns[MAX_CONNS];
static struct sockaddr_in sip_addr;
static uint64_t sip_parse_err, sip_stray, sip_sent_err, conn_lost;
static uint64_t bye_refused; /* a final answer >= 300 to our BYE: the call may live on */

static uv_loop_t *loop;
static int tfd;
static uv_poll_t tpoll;
static uv_signal_t sig_int, sig_term;
static int64_t t0_mono, t_start_mono;
static uint64_t tick_no;
static bool stopping;

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "loadgen: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(2);
}

/* ---- RTP ports ---- */
static unsigned port_cursor;

static int udp_socket_on(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    return fd;
}

/* an even port pair from the range: RTP socket, RTCP socket (drained, never parsed) */
static int rtp_open(int *rtp, int *rtcp, uint16_t *port)
{
    unsigned hi = opt.self_test ? opt.rtp_min + (opt.rtp_max - opt.rtp_min) / 2 - 2 : opt.rtp_max;
    unsigned n = (hi - opt.rtp_min) / 2 + 1;
    for (unsigned tries = 0; tries < n; tries++) {
        uint16_t p = (uint16_t)(opt.rtp_min + 2 * (port_cursor++ % n));
        int a = udp_socket_on(p);
        if (a < 0)
            continue;
        int b = udp_socket_on((uint16_t)(p + 1));
        if (b < 0) {
            close(a);
            continue;
        }
        *rtp = a;
        *rtcp = b;
        *port = p;
        return 0;
    }
    return -1;
}

static uint16_t echo_ctl(uint16_t call_port, bool close_it);

static void call_close_media(struct call *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->rtcp_fd >= 0)
        close(c->rtcp_fd);
    c->fd = c->rtcp_fd = -1;
    if (opt.self_test && c->lport)
        echo_ctl(c->lport, true);
}

/* ---- payload: "TL", frame number (8 nibbles), call index (5 nibbles); no 0x7F/0xFF ---- */
static void put_nib(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(0x40 | ((v >> (4 * (n - 1 - i))) & 0xF));
}

static bool get_nib(const uint8_t *p, int n, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < n; i++) {
        if ((p[i] & 0xF0) != 0x40)
            return false;
        x = x << 4 | (p[i] & 0xF);
    }
    *v = x;
    return true;
}

/* ---- RTP receive ---- */
static struct mmsghdr rx_mm[RXB];
static struct iovec rx_iov[RXB];
static uint8_t rx_buf[RXB][1500];
static char rx_ctl[RXB][CMSG_SPACE(sizeof(struct timespec)) + 64];

static int rx_batch(int fd)
{
    for (int i = 0; i < RXB; i++) {
        rx_iov[i] = (struct iovec){rx_buf[i], sizeof rx_buf[i]};
        rx_mm[i].msg_hdr = (struct msghdr){.msg_iov = &rx_iov[i],
                                           .msg_iovlen = 1,
                                           .msg_control = rx_ctl[i],
                                           .msg_controllen = sizeof rx_ctl[i]};
        rx_mm[i].msg_len = 0;
    }
    return recvmmsg(fd, rx_mm, RXB, MSG_DONTWAIT, NULL);
}

static int64_t msg_ts(struct msghdr *h)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec t;
            memcpy(&t, CMSG_DATA(cm), sizeof t);
            return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
        }
    return real_ns();
}

static void rtp_in(struct call *c, unsigned idx, const uint8_t *p, size_t len, int64_t ts)
{
    struct tl_rtp_hdr h;
    if (tl_rtp_parse(p, len, true, &h)) {
        cur->bad++;
        return;
    }
    if (h.pt != 0) {
        cur->other++; /* telephone-event, comfort noise */
        return;
    }
    cur->rx++;
    tick_note(ts);
    if (c->jl && (uint16_t)(c->jseq + 1) == h.seq) {
        int64_t d = ts - c->jt - FRAME_NS;
        hist_add(cur->jit, JH_N, d);
        cur->jit_n++;
        uint64_t ad = (uint64_t)(d < 0 ? -d : d);
        if (ad > cur->jit_max_ns)
            cur->jit_max_ns = ad;
    }
    if (!c->jl || (int16_t)(h.seq - c->jseq) > 0) {
        c->jl = true;
        c->jseq = h.seq;
        c->jt = ts;
    }
    uint32_t f, ci;
    if (h.payload_len < 15 || h.payload[0] != 'T' || h.payload[1] != 'L') {
        cur->filler++; /* the daemon's own audio (silence before the first echo) */
        return;
    }
    if (!get_nib(h.payload + 2, 8, &f) || !get_nib(h.payload + 10, 5, &ci) ||
        ci != (idx & 0xFFFFF) || f >= c->tx_n) {
        cur->bad++; /* corrupted, or another call's audio */
        return;
    }
    if (f < c->chk) {
        cur->late++;
        return;
    }
    uint8_t bit = (uint8_t)(1u << (f % 8));
    uint8_t *g = &c->got[(f % RING) / 8];
    if (*g & bit) {
        cur->dup++;
        return;
    }
    *g |= bit;
    cur->echoed++;
    const struct lat_ent *tx = &lats[idx].tx[f % LR], *as = &lats[idx].as[f % LR];
    if (tx->f1 == f + 1) {
        bool agent = as->f1 == f + 1;
        hist_add(cur->e2e, JH_N, ts - tx->t);
        cur->e2e_n++;
        if (agent) {
            hist_add(cur->w2r, JH_N, ts - as->t);
            cur->w2r_n++;
        }
        if (cur == &st_win && (agent || !opt.agent_port))
            pair_add(tx->t, agent ? as->t : 0, ts, idx, f);
    }
    if (f < c->hi)
        cur->reord++;
    else
        c->hi = f + 1;
}

static void rtp_drain(struct call *c, unsigned idx)
{
    for (;;) {
        int n = rx_batch(c->fd);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++)
            rtp_in(c, idx, rx_buf[i], rx_mm[i].msg_len, msg_ts(&rx_mm[i].msg_hdr));
        if (n < RXB)
            return;
    }
}

static void drain_only(int fd)
{
    char b[1500];
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) > 0)
        ;
}

static void rtp_send(struct call *c, unsigned idx)
{
    uint8_t pkt[TL_RTP_HDR_MIN + PAYLOAD];
    tl_rtp_write_hdr(pkt, c->tx_n == 0, 0, c->seq++, c->ts, c->ssrc);
    c->ts += PAYLOAD;
    uint8_t *pl = pkt + TL_RTP_HDR_MIN;
    memset(pl, 0xD5, PAYLOAD);
    pl[0] = 'T';
    pl[1] = 'L';
    put_nib(pl + 2, c->tx_n, 8);
    put_nib(pl + 10, idx & 0xFFFFF, 5);
    struct lat_ent *le = &lats[idx].tx[c->tx_n % LR];
    le->t = real_ns();
    le->f1 = c->tx_n + 1;
    if (sendto(c->fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&c->rem, sizeof c->rem) < 0)
        cur->tx_err++;
    c->tx_n++;
    cur->tx++;
}

/* frames sent at least grace ago must have come back */
static void rtp_check(struct call *c)
{
    unsigned grace = opt.grace_ms / 20;
    while (c->chk + grace <= c->tx_n) {
        uint8_t bit = (uint8_t)(1u << (c->chk % 8));
        uint8_t *g = &c->got[(c->chk % RING) / 8];
        if (*g & bit)
            *g &= (uint8_t)~bit;
        else
            cur->lost++;
        c->chk++;
    }
}

/* ---- the agent: every media frame goes back as it came (an echo bot) ---- */
static void on_agent_media(struct aconn *a, const uint8_t *p, size_t n, int64_t t_rx)
{
    uint32_t f, ci;
    bool ours = n >= 15 && p[0] == 'T' && p[1] == 'L' && get_nib(p + 2, 8, &f) &&
                get_nib(p + 10, 5, &ci) && ci < placed;
    cur->agent_rx++;
    if (ours) {
        const struct lat_ent *tx = &lats[ci].tx[f % LR];
        if (tx->f1 == f + 1) {
            hist_add(cur->a2w, JH_N, t_rx - tx->t);
            cur->a2w_n++;
        }
    } else {
        cur->agent_bad++;
    }
    int64_t t = agentsrv_send_media(a, p, n);
    if (t < 0)
        return;
    cur->agent_tx++;
    if (ours)
        lats[ci].as[f % LR] = (struct lat_ent){t, f + 1};
}

/* ---- self-test: the echo runs in a child process (pinned with --echo-cpu), so the
 * generator's CPU figure is its own; the parent asks it over a socketpair for one endpoint
 * per call ("open P" -> its port) and closes it at the end of the call ---- */
static int echo_sp = -1;
static pid_t echo_pid;
static struct echo_ep *eps[65536]; /* by the call's RTP port */
static void echo_rx(struct echo_ep *e)
{
    for (;;) {
        int n = rx_batch(e->fd);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            struct tl_rtp_hdr h;
            if (tl_rtp_parse(rx_buf[i], rx_mm[i].msg_len, true, &h) || h.payload_len != PAYLOAD)
                continue;
            e->rx++;
            if (opt.st_drop && e->rx % opt.st_drop == 0)
                continue;
            if (e->qn == 8)
                continue; /* overflow: dropped, shows as loss */
            memcpy(e->q[(e->qh + e->qn) % 8], h.payload, PAYLOAD);
            e->qn++;
        }
        if (n < RXB)
            break;
    }
}

static void echo_tx(struct echo_ep *e)
{
    if (!e->qn)
        return;
    uint8_t pkt[TL_RTP_HDR_MIN + PAYLOAD];
    tl_rtp_write_hdr(pkt, false, 0, e->seq++, e->ts, e->ssrc);
    e->ts += PAYLOAD;
    memcpy(pkt + TL_RTP_HDR_MIN, e->q[e->qh], PAYLOAD);
    e->qh = (e->qh + 1) % 8;
    e->qn--;
    sendto(e->fd, pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&e->peer, sizeof e->peer);
}

static unsigned echo_cursor;

static uint16_t echo_open(uint16_t call_port)
{
    struct echo_ep *e = calloc(1, sizeof *e);
    if (!e)
        return 0;
    unsigned lo = opt.rtp_min + (opt.rtp_max - opt.rtp_min) / 2, n = (opt.rtp_max - lo) / 2;
    lo += lo % 2;
    for (unsigned tries = 0; tries < n; tries++) {
        uint16_t p = (uint16_t)(lo + 2 * (echo_cursor++ % n));
        if ((e->fd = udp_socket_on(p)) < 0)
            continue;
        e->ssrc = (uint32_t)rand();
        e->peer = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(call_port)};
        e->peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        eps[call_port] = e;
        return p;
    }
    free(e);
    return 0;
}

static void echo_main(int sp)
{
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_interval = {0, FRAME_NS}, .it_value = {0, FRAME_NS}};
    timerfd_settime(t, 0, &its, NULL);
    for (;;) {
        struct pollfd pf[2] = {{.fd = t, .events = POLLIN}, {.fd = sp, .events = POLLIN}};
        if (poll(pf, 2, 1000) < 0 && errno != EINTR)
            _exit(1);
        if (pf[1].revents) {
            uint16_t m[2];
            ssize_t r = recv(sp, m, sizeof m, 0);
            if (r <= 0)
                _exit(0);
            if (m[0] == 1) { /* open */
                uint16_t port = echo_open(m[1]);
                send(sp, &port, sizeof port, 0);
            } else if (eps[m[1]]) {
                close(eps[m[1]]->fd);
                free(eps[m[1]]);
                eps[m[1]] = NULL;
            }
        }
        if (pf[0].revents) {
            uint64_t exp;
            if (read(t, &exp, sizeof exp) == sizeof exp) {
                for (unsigned i = 0; i < 65536; i++)
                    if (eps[i])
                        echo_rx(eps[i]);
                for (unsigned i = 0; i < 65536; i++)
                    if (eps[i])
                        echo_tx(eps[i]);
            }
        }
    }
}

static uint16_t echo_ctl(uint16_t call_port, bool close_it)
{
    uint16_t m[2] = {close_it ? 2 : 1, call_port}, port = 0;
    if (send(echo_sp, m, sizeof m, 0) != sizeof m)
        return 0;
    if (!close_it && recv(echo_sp, &port, sizeof port, 0) != sizeof port)
        return 0;
    return port;
}

static void echo_start(int cpu)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
        die("socketpair: %s", strerror(errno));
    echo_pid = fork();
    if (echo_pid < 0)
        die("fork: %s", strerror(errno));
    if (!echo_pid) {
        close(sv[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        echo_main(sv[1]);
    }
    close(sv[1]);
    echo_sp = sv[0];
}

static uint64_t pid_ticks(pid_t pid)
{
    char path[64], b[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = '\0';
    char *p = strrchr(b, ')');
    unsigned long ut = 0, stt = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) != 2)
        return 0;
    return ut + stt;
}

/* ---- SIP messages ---- */
static void callid(char *b, size_t n, unsigned idx)
{
    snprintf(b, n, "lg%u-%08" PRIx32 "@127.0.0.1", idx, run_id);
}

static bool callid_idx(const struct tl_pl *pl, unsigned *idx)
{
    char b[64];
    if (pl->l >= sizeof b)
        return false;
    memcpy(b, pl->p, pl->l);
    b[pl->l] = '\0';
    unsigned i, r;
    char at;
    if (sscanf(b, "lg%u-%8x%c", &i, &r, &at) != 3 || at != '@' || r != run_id || i >= placed)
        return false;
    *idx = i;
    return true;
}

static uint16_t local_sip_port(const struct call *c)
{
    return conns[opt.tcp ? c->conn : 0].lport;
}

static const char *tpname(void)
{
    return opt.tcp ? "TCP" : "UDP";
}

static int sdp_print(const struct call *c, char *b, size_t n)
{
    return snprintf(b, n,
                    "v=0\r\no=loadgen %u 1 IN IP4 127.0.0.1\r\ns=loadgen\r\n"
                    "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %u RTP/AVP 0 101\r\n"
                    "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                    "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
                    (unsigned)(c - calls), c->lport ? c->lport : 9);
}

static int req_print(char *b, size_t n, const struct call *c, const char *method, const char *ruri,
                     unsigned cseq, const char *cseq_method, const char *branch, const char *to_hdr,
                     const char *body)
{
    /* in-dialog requests follow the route set (a proxy that record-routes: bench/cluster) */
    const char *route = strcmp(method, "INVITE") ? c->route : "";
    unsigned idx = (unsigned)(c - calls);
    char cid[64];
    callid(cid, sizeof cid, idx);
    size_t blen = body ? strlen(body) : 0;
    return snprintf(b, n,
                    "%s %s SIP/2.0\r\n"
                    "Via: SIP/2.0/%s 127.0.0.1:%u;branch=%s;rport\r\n"
                    "Max-Forwards: 70\r\n"
                    "From: <sip:+1555%07u@127.0.0.1>;tag=lgf%u\r\n"
                    "To: %s\r\n"
                    "Call-ID: %s\r\n"
                    "CSeq: %u %s\r\n"
                    "Contact: <sip:lg@127.0.0.1:%u;transport=%s>\r\n"
                    "%s%s"
                    "Content-Length: %zu\r\n\r\n%s",
                    method, ruri, tpname(), local_sip_port(c), branch, idx % 10000000u, idx, to_hdr,
                    cid, cseq, cseq_method, local_sip_port(c), opt.tcp ? "tcp" : "udp", route,
                    blen ? "Content-Type: application/sdp\r\n" : "", blen, body ? body : "");
}

static void conn_flush(struct conn *k);

static int sip_send(const struct call *c, const char *b, size_t len)
{
    if (!opt.tcp) {
        if (sendto(conns[0].fd, b, len, MSG_DONTWAIT, (struct sockaddr *)&sip_addr,
                   sizeof sip_addr) != (ssize_t)len) {
            sip_sent_err++;
            return -1;
        }
        return 0;
    }
    struct conn *k = &conns[c->conn];
    if (k->dead)
        return -1;
    size_t off = 0;
    if (!k->out_len) {
        ssize_t w = send(k->fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            sip_sent_err++;
            return -1;
        }
        off = w > 0 ? (size_t)w : 0;
    }
    if (off < len) {
        if (k->out_len + len - off > k->out_cap) {
            size_t cap = k->out_cap ? k->out_cap : 65536;
            while (cap < k->out_len + len - off)
                cap *= 2;
            char *nb = realloc(k->out, cap);
            if (!nb)
                return -1;
            k->out = nb;
            k->out_cap = cap;
        }
        memcpy(k->out + k->out_len, b + off, len - off);
        k->out_len += len - off;
        conn_flush(k);
    }
    return 0;
}

static void ruri(char *b, size_t n)
{
    snprintf(b, n, "sip:%s@%s:%u;transport=%s", opt.number, opt.sip_ip, opt.sip_port,
             opt.tcp ? "tcp" : "udp");
}

static void send_invite(struct call *c)
{
    unsigned idx = (unsigned)(c - calls);
    char ru[160], to[200], br[64], sdp[512], msg[2048];
    ruri(ru, sizeof ru);
    snprintf(to, sizeof to, "<sip:%s@%s>", opt.number, opt.sip_ip);
    snprintf(br, sizeof br, "z9hG4bK-lg%u-1-%08" PRIx32, idx, run_id);
    sdp_print(c, sdp, sizeof sdp);
    int n = req_print(msg, sizeof msg, c, "INVITE", ru, 1, "INVITE", br, to, sdp);
    c->t_inv_rt = real_ns();
    sip_send(c, msg, (size_t)n);
}

static void send_ack(struct call *c, bool for_2xx, const struct tl_pl *to_val)
{
    unsigned idx = (unsigned)(c - calls);
    char ru[192], to[300], br[64], msg[2048];
    if (for_2xx)
        snprintf(ru, sizeof ru, "%s", c->target);
    else
        ruri(ru, sizeof ru);
    snprintf(to, sizeof to, "%.*s", (int)to_val->l, to_val->p);
    /* the ACK of a 2xx is a transaction of its own; a non-2xx ACK reuses the INVITE's */
    snprintf(br, sizeof br, "z9hG4bK-lg%u-%s-%08" PRIx32, idx, for_2xx ? "a" : "1", run_id);
    int n = req_print(msg, sizeof msg, c, "ACK", ru, 1, "ACK", br, to, NULL);
    sip_send(c, msg, (size_t)n);
}

static void send_bye(struct call *c)
{
    unsigned idx = (unsigned)(c - calls);
    char to[300], br[64], msg[2048];
    snprintf(to, sizeof to, "<sip:%s@%s>;tag=%s", opt.number, opt.sip_ip, c->totag);
    snprintf(br, sizeof br, "z9hG4bK-lg%u-2-%08" PRIx32, idx, run_id);
    int n = req_print(msg, sizeof msg, c, "BYE", c->target, 2, "BYE", br, to, NULL);
    sip_send(c, msg, (size_t)n);
}

static void reply_tag(const struct call *c, const struct tl_sip_msg *m, uint16_t code, bool sdp,
                      const char *totag)
{
    char out[4096], body[512], hdrs[160];
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, sizeof out);
    struct tl_sip_reply r = {.scode = code};
    if (totag)
        r.totag = (struct tl_pl){totag, strlen(totag)};
    if (sdp && c) {
        int bl = sdp_print(c, body, sizeof body);
        snprintf(hdrs, sizeof hdrs, "Contact: <sip:lg@127.0.0.1:%u;transport=%s>\r\n",
                 local_sip_port(c), opt.tcp ? "tcp" : "udp");
        r.hdrs = hdrs;
        r.ctype = TL_PL("application/sdp");
        r.body = (struct tl_pl){body, (size_t)bl};
    }
    if (tl_sip_reply_print(&wb, m, &r))
        return;
    struct call dummy = {.conn = 0};
    if (!c)
        c = &dummy;
    sip_send(c, out, wb.len);
}

static void reply(const struct call *c, const struct tl_sip_msg *m, uint16_t code, bool sdp)
{
    reply_tag(c, m, code, sdp, NULL);
}

/* "c=IN IP4 a.b.c.d" and "m=audio PORT" of an SDP body */
static bool sdp_addr(const struct tl_pl *b, struct sockaddr_in *sa)
{
    char ip[64] = "";
    unsigned port = 0;
    const char *p = b->p, *end = b->p + b->l;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((eol ? eol : end) - p);
        char line[256];
        if (l < sizeof line) {
            memcpy(line, p, l);
            line[l] = '\0';
            char *cr = strchr(line, '\r');
            if (cr)
                *cr = '\0';
            if (!strncmp(line, "c=IN IP4 ", 9) && !ip[0])
                snprintf(ip, sizeof ip, "%.63s", line + 9);
            else if (!strncmp(line, "m=audio ", 8) && !port)
                port = (unsigned)strtoul(line + 8, NULL, 10);
        }
        p = eol ? eol + 1 : end;
    }
    char *sl = strchr(ip, '/');
    if (sl)
        *sl = '\0';
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (!port || port > 65535 || inet_pton(AF_INET, ip, &sa->sin_addr) != 1)
        return false;
    return (ntohl(sa->sin_addr.s_addr) >> 24) == 127; /* loopback only */
}

static void call_fail(struct call *c, uint16_t code)
{
    c->fail_code = code;
    if (c->st == C_INVITING) {
        step_setup_failed[c->step]++;
        fail_codes[code < 700 ? code : 0]++;
    }
    c->st = C_FAILED;
    call_close_media(c);
}

static unsigned cur_step;

/* The UAC's route set: the 2xx's Record-Route values in reverse order (RFC 3261 §12.1.2),
 * as one Route header for the ACK and the BYE; none without Record-Route. */
static void route_set(struct call *c, const struct tl_sip_msg *m)
{
    struct tl_pl v[8];
    unsigned nv = 0;
    struct tl_sip_hdr_iter it;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_RECORD_ROUTE);
    while (nv < 8 && !tl_sip_hdr_iter_next(&it, &v[nv]))
        nv++;
    c->route[0] = 0;
    size_t off = 0;
    for (unsigned i = nv; i-- > 0;) {
        int w = snprintf(c->route + off, sizeof c->route - off, "%s%.*s",
                         off ? ", " : "Route: ", (int)v[i].l, v[i].p);
        if (w < 0 || (size_t)w >= sizeof c->route - off - 2) {
            c->route[0] = 0; /* too long: none rather than a cut one */
            return;
        }
        off += (size_t)w;
    }
    if (off)
        snprintf(c->route + off, sizeof c->route - off, "\r\n");
}

static void on_response(struct call *c, const struct tl_sip_msg *m, int64_t ts)
{
    if (!(m->have & TL_SIP_HAVE_CSEQ))
        return;
    const struct tl_sip_hdr *toh = tl_sip_msg_hdr(m, TL_SIP_HDR_TO);
    if (m->cseq.mid == TL_SIP_METHOD_INVITE) {
        if (m->scode < 200)
            return;
        if (m->scode >= 300) {
            if (toh)
                send_ack(c, false, &toh->val);
            if (c->st == C_INVITING)
                call_fail(c, m->scode);
            return;
        }
        if (c->st != C_INVITING) { /* a retransmitted 200: our ACK was lost or late */
            if (toh && c->st != C_FAILED)
                send_ack(c, true, &toh->val);
            return;
        }
        int64_t d = ts - c->t_inv_rt;
        c->i200_us = (uint32_t)(d > 0 ? d / 1000 : 0);
        snprintf(c->totag, sizeof c->totag, "%.*s", (int)m->to.tag.l, m->to.tag.p);
        const struct tl_sip_hdr *ch = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
        struct tl_sip_contact ct;
        if (ch && !tl_sip_contact_decode(&ct, &ch->val) && !ct.star &&
            ct.addr.auri.l < sizeof c->target)
            snprintf(c->target, sizeof c->target, "%.*s", (int)ct.addr.auri.l, ct.addr.auri.p);
        else
            ruri(c->target, sizeof c->target);
        route_set(c, m);
        if (toh)
            send_ack(c, true, &toh->val);
        if (!opt.no_rtp && !sdp_addr(&m->body, &c->rem)) {
            c->st = C_INVITING;
            call_fail(c, 0);
            fprintf(stderr, "loadgen: call %u: no loopback RTP address in the answer\n",
                    (unsigned)(c - calls));
            return;
        }
        c->st = C_UP;
        return;
    }
    if (m->cseq.mid == TL_SIP_METHOD_BYE && m->scode >= 200 && c->st == C_BYEING) {
        bye_refused += m->scode >= 300;
        c->st = C_DONE;
        call_close_media(c);
    }
}

static void on_request(struct call *c, const struct tl_sip_msg *m)
{
    switch (m->mid) {
    case TL_SIP_METHOD_ACK:
        return;
    case TL_SIP_METHOD_BYE:
        reply(c, m, 200, false);
        if (c->st == C_UP) {
            step_dropped[cur_step]++;
            c->fail_code = 1;
            c->st = C_FAILED;
            call_close_media(c);
        } else if (c->st == C_BYEING) {
            c->st = C_DONE;
            call_close_media(c);
        }
        return;
    case TL_SIP_METHOD_INVITE:
    case TL_SIP_METHOD_UPDATE:
        reply(c, m, 200, true);
        return;
    default:
        reply(c, m, 200, false);
        return;
    }
}

/* ---- --outbound: we are the callee. The INVITE's Request-URI user is --to-prefix and the
 * call's index (7 digits, the number we POSTed); every later message of the dialog carries
 * our tag "lgt<idx>-<run>" (To of the daemon's requests, From of responses to our BYE) ---- */
static bool out_tag_idx(const struct tl_pl *tag, unsigned *idx)
{
    char b[64];
    if (!tag->l || tag->l >= sizeof b)
        return false;
    memcpy(b, tag->p, tag->l);
    b[tag->l] = '\0';
    unsigned i, r;
    int used = 0;
    if (sscanf(b, "lgt%u-%8x%n", &i, &r, &used) != 2 || (size_t)used != tag->l || r != run_id ||
        i >= placed)
        return false;
    *idx = i;
    return true;
}

static bool out_ruri_idx(const struct tl_sip_msg *m, unsigned *idx)
{
    const struct tl_pl *u = &m->ruri.user;
    size_t pl = strlen(opt.to_prefix);
    if (u->l != pl + 7 || memcmp(u->p, opt.to_prefix, pl))
        return false;
    unsigned i = 0;
    for (size_t k = pl; k < u->l; k++) {
        if (u->p[k] < '0' || u->p[k] > '9')
            return false;
        i = i * 10 + (unsigned)(u->p[k] - '0');
    }
    if (i >= placed)
        return false;
    *idx = i;
    return true;
}

static void out_invite(const struct tl_sip_msg *m, int64_t ts, uint16_t conn)
{
    unsigned idx;
    if (!out_ruri_idx(m, &idx)) {
        sip_stray++;
        reply(NULL, m, 404, false);
        return;
    }
    struct call *c = &calls[idx];
    if (c->st != C_INVITING || c->answered) {
        sip_stray++; /* a second INVITE for the index (the daemon retried?): refuse it */
        struct call t = {.conn = conn};
        reply(&t, m, 486, false);
        return;
    }
    c->conn = conn;
    int64_t d = ts - c->t_inv_rt;
    c->inv_us = (uint32_t)(d > 0 ? d / 1000 : 1);
    snprintf(c->callid, sizeof c->callid, "%.*s", (int)m->callid.l, m->callid.p);
    const struct tl_sip_hdr *fh = tl_sip_msg_hdr(m, TL_SIP_HDR_FROM);
    if (fh)
        snprintf(c->peer_from, sizeof c->peer_from, "%.*s", (int)fh->val.l, fh->val.p);
    const struct tl_sip_hdr *ch = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
    struct tl_sip_contact ct;
    if (ch && !tl_sip_contact_decode(&ct, &ch->val) && !ct.star &&
        ct.addr.auri.l < sizeof c->target)
        snprintf(c->target, sizeof c->target, "%.*s", (int)ct.addr.auri.l, ct.addr.auri.p);
    else
        snprintf(c->target, sizeof c->target, "sip:127.0.0.1");
    snprintf(c->totag, sizeof c->totag, "lgt%u-%08" PRIx32, idx, run_id);
    if (!opt.no_rtp && !sdp_addr(&m->body, &c->rem)) {
        reply_tag(c, m, 488, false, c->totag);
        call_fail(c, 488);
        fprintf(stderr, "loadgen: call %u: no loopback RTP address in the offer\n", idx);
        return;
    }
    reply_tag(c, m, 200, true, c->totag);
    d = real_ns() - c->t_inv_rt; /* the call set up, as the callee sees it */
    c->i200_us = (uint32_t)(d > 0 ? d / 1000 : 1);
    c->answered = true; /* up once the ACK is here: the daemon has our answer */
}

static void out_sip_in(const struct tl_sip_msg *m, int64_t ts, uint16_t conn)
{
    unsigned idx;
    if (m->req && m->mid == TL_SIP_METHOD_INVITE && !m->to.tag.l) {
        out_invite(m, ts, conn);
        return;
    }
    if (!out_tag_idx(m->req ? &m->to.tag : &m->from.tag, &idx)) {
        sip_stray++;
        if (m->req && m->mid != TL_SIP_METHOD_ACK) {
            struct call t = {.conn = conn};
            reply(&t, m, 481, false);
        }
        return;
    }
    struct call *c = &calls[idx];
    if (!m->req) {
        if (m->have & TL_SIP_HAVE_CSEQ && m->cseq.mid == TL_SIP_METHOD_BYE && m->scode >= 200 &&
            c->st == C_BYEING) {
            bye_refused += m->scode >= 300;
            c->st = C_DONE;
            call_close_media(c);
        }
        return;
    }
    if (m->mid == TL_SIP_METHOD_ACK) {
        if (c->st == C_INVITING && c->answered) {
            c->st = C_UP;
            int64_t d = ts - c->t_inv_rt;
            c->ack_us = (uint32_t)(d > 0 ? d / 1000 : 1);
        }
        return;
    }
    if (m->mid == TL_SIP_METHOD_BYE && c->st == C_INVITING) {
        reply(c, m, 200, false);
        call_fail(c, 0);
        return;
    }
    on_request(c, m);
}

static void send_bye_uas(struct call *c)
{
    unsigned idx = (unsigned)(c - calls);
    char msg[2048];
    int n = snprintf(msg, sizeof msg,
                     "BYE %s SIP/2.0\r\n"
                     "Via: SIP/2.0/TCP 127.0.0.1:%u;branch=z9hG4bK-lg%u-2-%08" PRIx32 ";rport\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:lg@127.0.0.1>;tag=%s\r\n"
                     "To: %s\r\n"
                     "Call-ID: %s\r\n"
                     "CSeq: 1 BYE\r\n"
                     "Content-Length: 0\r\n\r\n",
                     c->target, opt.listen_port, idx, run_id, c->totag, c->peer_from, c->callid);
    if (n > 0 && (size_t)n < sizeof msg)
        sip_send(c, msg, (size_t)n);
}

static void sip_in(const char *buf, size_t len, int64_t ts, uint16_t conn)
{
    static struct tl_sip_msg m;
    if (tl_sip_msg_decode(&m, buf, len) || !(m.have & TL_SIP_HAVE_CALLID)) {
        sip_parse_err++;
        return;
    }
    if (opt.outbound) {
        out_sip_in(&m, ts, conn);
        return;
    }
    unsigned idx;
    if (!callid_idx(&m.callid, &idx)) {
        sip_stray++;
        if (m.req && m.mid != TL_SIP_METHOD_ACK)
            reply(NULL, &m, 481, false);
        return;
    }
    if (m.req)
        on_request(&calls[idx], &m);
    else
        on_response(&calls[idx], &m, ts);
}

/* ---- connections ---- */
static void conn_dead(struct conn *k)
{
    if (k->dead)
        return;
    k->dead = true;
    conn_lost++;
    uv_poll_stop(&k->poll);
    fprintf(stderr, "loadgen: SIP connection %d lost\n", (int)(k - conns));
    for (unsigned i = 0; i < placed; i++) {
        struct call *c = &calls[i];
        if (&conns[c->conn] != k || (opt.outbound && c->st == C_INVITING && !c->answered))
            continue;
        if (c->st == C_INVITING)
            call_fail(c, 0);
        else if (c->st == C_UP) {
            step_dropped[cur_step]++;
            c->st = C_FAILED;
            call_close_media(c);
        } else if (c->st == C_BYEING) {
            c->st = C_DONE;
            call_close_media(c);
        }
    }
}

static void on_conn(uv_poll_t *h, int status, int events);

static void conn_flush(struct conn *k)
{
    while (k->out_len) {
        ssize_t w = send(k->fd, k->out, k->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_dead(k);
            return;
        }
        memmove(k->out, k->out + w, k->out_len - (size_t)w);
        k->out_len -= (size_t)w;
    }
    bool want = k->out_len > 0;
    if (want != k->wpoll) {
        k->wpoll = want;
        uv_poll_start(&k->poll, UV_READABLE | (want ? UV_WRITABLE : 0), on_conn);
    }
}

static void tcp_read(struct conn *k)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        if (k->in_cap - k->in_len < 65536) {
            size_t cap = k->in_cap * 2;
            if (cap > (8u << 20)) {
                conn_dead(k);
                return;
            }
            char *nb = realloc(k->in, cap);
            if (!nb) {
                conn_dead(k);
                return;
            }
            k->in = nb;
            k->in_cap = cap;
        }
        struct iovec iov = {k->in + k->in_len, k->in_cap - k->in_len};
        char ctl[CMSG_SPACE(sizeof(struct timespec)) + 64];
        struct msghdr h = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        ssize_t r = recvmsg(k->fd, &h, MSG_DONTWAIT);
        if (r == 0) {
            conn_dead(k);
            return;
        }
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_dead(k);
            return;
        }
        int64_t ts = msg_ts(&h);
        k->in_len += (size_t)r;
        size_t off = 0;
        for (;;) {
            int e = tl_sip_frame(&k->fr, k->in + off, k->in_len - off);
            if (e == ENODATA)
                break;
            if (e) {
                fprintf(stderr, "loadgen: bad SIP framing (%d)\n", e);
                conn_dead(k);
                return;
            }
            if (k->fr.kind == TL_SIP_FRAME_MSG)
                sip_in(k->in + off, k->fr.len, ts, (uint16_t)(k - conns));
            else if (k->fr.kind == TL_SIP_FRAME_PING) {
                struct call c0 = {.conn = (uint16_t)(k - conns)};
                sip_send(&c0, "\r\n", 2);
            }
            off += k->fr.len;
            tl_sip_frame_reset(&k->fr);
        }
        memmove(k->in, k->in + off, k->in_len - off);
        k->in_len -= off;
    }
}

static void udp_read(struct conn *k)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        int n = rx_batch(k->fd);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++)
            sip_in((const char *)rx_buf[i], rx_mm[i].msg_len, msg_ts(&rx_mm[i].msg_hdr), 0);
        if (n < RXB)
            return;
    }
}

static void on_conn(uv_poll_t *h, int status, int events)
{
    struct conn *k = h->data;
    if (status < 0) {
        conn_dead(k);
        return;
    }
    if (events & UV_WRITABLE)
        conn_flush(k);
    if (events & UV_READABLE) {
        if (opt.tcp)
            tcp_read(k);
        else
            udp_read(k);
    }
}

static void conns_open(void)
{
    sip_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(opt.sip_port)};
    if (inet_pton(AF_INET, opt.sip_ip, &sip_addr.sin_addr) != 1 ||
        (ntohl(sip_addr.sin_addr.s_addr) >> 24) != 127)
        die("--sip must be a loopback IPv4 address, not %s", opt.sip_ip);
    unsigned n = opt.tcp ? opt.conns : 1;
    for (unsigned i = 0; i < n; i++) {
        struct conn *k = &conns[i];
        k->fd = socket(AF_INET, (opt.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
        if (k->fd < 0)
            die("socket: %s", strerror(errno));
        int one = 1, big = 4 << 20;
        setsockopt(k->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        if (opt.tcp) {
            setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(k->fd, (struct sockaddr *)&sip_addr, sizeof sip_addr))
                die("connect to the daemon's SIP port: %s", strerror(errno));
        } else {
            struct sockaddr_in a = {.sin_family = AF_INET};
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (bind(k->fd, (struct sockaddr *)&a, sizeof a))
                die("bind: %s", strerror(errno));
        }
        struct sockaddr_in la;
        socklen_t ll = sizeof la;
        getsockname(k->fd, (struct sockaddr *)&la, &ll);
        k->lport = ntohs(la.sin_port);
        fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK);
        k->in_cap = 256 * 1024;
        k->in = malloc(k->in_cap);
        if (!k->in)
            die("%s", "out of memory");
        uv_poll_init(loop, &k->poll, k->fd);
        k->poll.data = k;
        uv_poll_start(&k->poll, UV_READABLE, on_conn);
    }
}

/* ---- --outbound: the SIP listener (the daemon connects to us) ---- */
static int lfd = -1;
static uv_poll_t lpoll;
static unsigned nconns;

static void on_accept(uv_poll_t *h, int status, int events)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (nconns == MAX_CONNS) {
            fprintf(stderr, "loadgen: more than %d SIP connections from the daemon\n", MAX_CONNS);
            close(fd);
            continue;
        }
        struct conn *k = &conns[nconns++];
        int one = 1, big = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        k->fd = fd;
        k->lport = opt.listen_port;
        k->in_cap = 256 * 1024;
        k->in = malloc(k->in_cap);
        if (!k->in)
            die("%s", "out of memory");
        uv_poll_init(loop, &k->poll, k->fd);
        k->poll.data = k;
        uv_poll_start(&k->poll, UV_READABLE, on_conn);
    }
}

static void listen_open(void)
{
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(opt.listen_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 128))
        die("SIP listen: %s", strerror(errno));
    uv_poll_init(loop, &lpoll, lfd);
    uv_poll_start(&lpoll, UV_READABLE, on_accept);
}

/* ---- --outbound --dns PORT: the carrier's DNS on 127.0.0.1:PORT (UDP), so that the
 * daemon's RFC 3263 lookups of the trunk's name cost it what a real lookup does, and this
 * process (in C, on the generator's core) answers them at any rate. The zone, NAME being
 * --dns-name: SRV _sip._tcp.NAME -> 10 0 --listen NAME; A NAME -> 127.0.0.1; other types of
 * these names: no data (NAPTR, AAAA: the daemon falls back to SRV, A); other names:
 * NXDOMAIN ---- */
static int dfd = -1;
static uv_poll_t dpoll;
static uint64_t dns_queries, dns_nx;

static size_t dns_put_name(uint8_t *out, const char *name)
{
    size_t w = 0;
    for (const char *p = name; *p;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        out[w++] = (uint8_t)l;
        memcpy(out + w, p, l);
        w += l;
        p += l + (dot ? 1 : 0);
    }
    out[w++] = 0;
    return w;
}

static void on_dns(uv_poll_t *h, int status, int events)
{
    uint8_t q[512], a[768];
    char name[256], srv[300];
    snprintf(srv, sizeof srv, "_sip._tcp.%s", opt.dns_name);
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(dfd, q, sizeof q, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        /* a standard query (QR 0, opcode 0) with one question */
        if (n < 12 || (q[2] & 0xf8) || q[4] || q[5] != 1)
            continue;
        size_t off = 12, nl = 0;
        bool ok = true;
        while (ok && off < (size_t)n && q[off]) {
            size_t l = q[off];
            if (l > 63 || off + 1 + l >= (size_t)n || nl + l + 2 > sizeof name) {
                ok = false;
                break;
            }
            if (nl)
                name[nl++] = '.';
            for (size_t k = 0; k < l; k++) {
                uint8_t ch = q[off + 1 + k];
                name[nl++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
            }
            off += 1 + l;
        }
        if (!ok || off + 5 > (size_t)n)
            continue;
        name[nl] = '\0';
        off++;
        unsigned qtype = (unsigned)q[off] << 8 | q[off + 1];
        size_t w = off + 4; /* the question, echoed */
        memcpy(a, q, w);
        a[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
        a[3] = 0;
        memset(a + 6, 0, 6);
        bool is_srv = !strcasecmp(name, srv), is_host = !strcasecmp(name, opt.dns_name);
        unsigned rtype = 0;
        if (!is_srv && !is_host) {
            a[3] = 3; /* NXDOMAIN */
            dns_nx++;
        } else if (is_srv && qtype == 33) {
            rtype = 33;
        } else if (is_host && qtype == 1) {
            rtype = 1;
        }
        if (rtype) {
            static const uint8_t ttl[4] = {0, 0, 0, 60};
            a[w++] = 0xc0; /* the question's name */
            a[w++] = 12;
            a[w++] = 0;
            a[w++] = (uint8_t)rtype;
            a[w++] = 0;
            a[w++] = 1; /* IN */
            memcpy(a + w, ttl, 4);
            w += 4;
            size_t rdl = w;
            w += 2;
            if (rtype == 33) {
                uint8_t srvd[6] = {
                    0, 10, 0, 0, (uint8_t)(opt.listen_port >> 8), (uint8_t)opt.listen_port};
                memcpy(a + w, srvd, 6);
                w += 6;
                w += dns_put_name(a + w, opt.dns_name);
            } else {
                static const uint8_t lo[4] = {127, 0, 0, 1};
                memcpy(a + w, lo, 4);
                w += 4;
            }
            a[rdl] = (uint8_t)((w - rdl - 2) >> 8);
            a[rdl + 1] = (uint8_t)(w - rdl - 2);
            a[7] = 1; /* ANCOUNT */
        }
        dns_queries++;
        sendto(dfd, a, w, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
    }
}

static void dns_open(void)
{
    if (strlen(opt.dns_name) > 200)
        die("%s", "--dns-name too long");
    dfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int big = 4 << 20;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(opt.dns_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (dfd < 0 || bind(dfd, (struct sockaddr *)&sa, sizeof sa))
        die("DNS bind: %s", strerror(errno));
    setsockopt(dfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    uv_poll_init(loop, &dpoll, dfd);
    uv_poll_start(&dpoll, UV_READABLE, on_dns);
}

/* ---- --outbound: POST /v1/calls over a few keep-alive HTTP/1.1 connections, one request
 * in flight on each; calls wait in a queue for a free connection ---- */
struct hconn {
    int fd;
    uv_poll_t *poll; /* one per connection: a closed handle is freed by libuv's callback */
    long cur;        /* call index of the request in flight, -1 = idle */
    char in[16384];
    size_t in_len;
    char out[1024];
    size_t out_len, out_off;
};
#define MAX_HCONNS 32
static struct hconn hconns[MAX_HCONNS];
static unsigned *hq, hq_head, hq_tail; /* ring of MAX_CALLS + 1 */
static struct sockaddr_in api_addr;
static uint64_t http_err, http_reconnects;
static unsigned http_codes_seen[600];

static void on_http(uv_poll_t *h, int status, int events);

static void hconn_close(struct hconn *hc)
{
    if (hc->fd < 0)
        return;
    uv_poll_stop(hc->poll);
    uv_close((uv_handle_t *)hc->poll, (uv_close_cb)free);
    hc->poll = NULL;
    close(hc->fd);
    hc->fd = -1;
}

static int hconn_open(struct hconn *hc)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&api_addr, sizeof api_addr)) { /* loopback: at once */
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    hc->poll = malloc(sizeof *hc->poll);
    if (!hc->poll) {
        close(fd);
        return -1;
    }
    hc->fd = fd;
    hc->in_len = hc->out_len = hc->out_off = 0;
    uv_poll_init(loop, hc->poll, fd);
    hc->poll->data = hc;
    uv_poll_start(hc->poll, UV_READABLE, on_http);
    return 0;
}

static void http_result(long idx, unsigned code, const char *body, size_t blen)
{
    if (idx < 0)
        return;
    struct call *c = &calls[idx];
    int64_t d = real_ns() - c->t_inv_rt;
    c->post_us = (uint32_t)(d > 0 ? d / 1000 : 1);
    if (code == 201)
        return;
    http_err++;
    if (code < 600 && !http_codes_seen[code]++)
        fprintf(stderr, "loadgen: POST /v1/calls: %u %.*s\n", code, (int)(blen < 300 ? blen : 300),
                body ? body : "");
    if (c->st == C_INVITING && !c->answered)
        call_fail(c, (uint16_t)(code < 700 ? code : 0));
}

static void http_pump(void);

static void http_fail_conn(struct hconn *hc)
{
    long idx = hc->cur;
    hc->cur = -1;
    hconn_close(hc);
    http_reconnects++;
    http_result(idx, 0, "connection lost", 15);
}

/* a whole response in hc->in? its status and length (Content-Length or chunked) */
static bool http_parse(struct hconn *hc, unsigned *code, size_t *body_off, size_t *body_len,
                       size_t *total)
{
    char *e = memmem(hc->in, hc->in_len, "\r\n\r\n", 4);
    if (!e)
        return false;
    size_t hl = (size_t)(e - hc->in) + 4;
    if (hc->in_len < 12 || memcmp(hc->in, "HTTP/1.", 7))
        return *code = 0, *total = hc->in_len, *body_off = hl, *body_len = 0, true;
    *code = (unsigned)atoi(hc->in + 9);
    size_t clen = 0;
    bool chunked = false;
    for (char *p = hc->in; p < e;) {
        char *eol = memmem(p, (size_t)(e - p) + 2, "\r\n", 2);
        if (!eol)
            break;
        if (!strncasecmp(p, "content-length:", 15))
            clen = strtoul(p + 15, NULL, 10);
        else if (!strncasecmp(p, "transfer-encoding:", 18) &&
                 memmem(p, (size_t)(eol - p), "chunked", 7))
            chunked = true;
        p = eol + 2;
    }
    *body_off = hl;
    if (chunked) {
        char *end = memmem(hc->in + hl, hc->in_len - hl, "0\r\n\r\n", 5);
        if (!end)
            return false;
        *body_len = (size_t)(end - hc->in) - hl;
        *total = (size_t)(end - hc->in) + 5;
        return true;
    }
    if (hc->in_len < hl + clen)
        return false;
    *body_len = clen;
    *total = hl + clen;
    return true;
}

static void http_write(struct hconn *hc)
{
    while (hc->out_off < hc->out_len) {
        ssize_t w = send(hc->fd, hc->out + hc->out_off, hc->out_len - hc->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            http_fail_conn(hc);
            return;
        }
        hc->out_off += (size_t)w;
    }
    uv_poll_start(hc->poll, UV_READABLE | (hc->out_off < hc->out_len ? UV_WRITABLE : 0), on_http);
}

static void on_http(uv_poll_t *h, int status, int events)
{
    struct hconn *hc = h->data;
    if (status < 0) {
        http_fail_conn(hc);
        http_pump();
        return;
    }
    if (events & UV_WRITABLE)
        http_write(hc);
    if (hc->fd < 0 || !(events & UV_READABLE))
        return;
    for (;;) {
        if (hc->in_len == sizeof hc->in) {
            http_fail_conn(hc);
            break;
        }
        ssize_t r = recv(hc->fd, hc->in + hc->in_len, sizeof hc->in - hc->in_len, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (hc->cur >= 0)
                http_fail_conn(hc);
            else
                hconn_close(hc); /* the server closed an idle keep-alive connection */
            break;
        }
        if (r < 0)
            break;
        hc->in_len += (size_t)r;
        unsigned code;
        size_t bo, bl, tot;
        if (http_parse(hc, &code, &bo, &bl, &tot)) {
            long idx = hc->cur;
            hc->cur = -1;
            http_result(idx, code, hc->in + bo, bl);
            memmove(hc->in, hc->in + tot, hc->in_len - tot);
            hc->in_len -= tot;
        }
    }
    http_pump();
}

static void http_pump(void)
{
    for (unsigned i = 0; i < opt.api_conns && hq_head != hq_tail; i++) {
        struct hconn *hc = &hconns[i];
        if (hc->cur >= 0)
            continue;
        if (hc->fd < 0 && hconn_open(hc)) {
            http_err++;
            continue;
        }
        unsigned idx = hq[hq_head];
        hq_head = (hq_head + 1) % (MAX_CALLS + 1);
        while (calls[idx].st != C_INVITING && hq_head != hq_tail) { /* failed while queued */
            idx = hq[hq_head];
            hq_head = (hq_head + 1) % (MAX_CALLS + 1);
        }
        struct call *c = &calls[idx];
        if (c->st != C_INVITING)
            break;
        char body[160];
        int bl = snprintf(body, sizeof body, "{\"from\":\"%s\",\"to\":\"%s%07u\"}", opt.number,
                          opt.to_prefix, idx);
        int n = snprintf(hc->out, sizeof hc->out,
                         "POST /v1/calls HTTP/1.1\r\nHost: %s:%u\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n%s",
                         opt.api_ip, opt.api_port, opt.token, bl, body);
        if (n < 0 || (size_t)n >= sizeof hc->out)
            die("%s", "request too long");
        hc->out_len = (size_t)n;
        hc->out_off = 0;
        hc->cur = (long)idx;
        c->t_inv_rt = real_ns();
        http_write(hc);
    }
}

static void http_init(void)
{
    api_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(opt.api_port)};
    if (inet_pton(AF_INET, opt.api_ip, &api_addr.sin_addr) != 1 ||
        (ntohl(api_addr.sin_addr.s_addr) >> 24) != 127)
        die("--api must be a loopback IPv4 address, not %s", opt.api_ip);
    hq = calloc(MAX_CALLS + 1, sizeof *hq);
    if (!hq)
        die("%s", "out of memory");
    for (unsigned i = 0; i < MAX_HCONNS; i++) {
        hconns[i].fd = -1;
        hconns[i].cur = -1;
    }
}

/* ---- calls: placing, timers ---- */
static void place_call(void)
{
    unsigned idx = placed++;
    struct call *c = &calls[idx];
    c->fd = c->rtcp_fd = -1;
    c->step = (uint8_t)cur_step;
    c->conn = (uint16_t)(opt.tcp ? idx % opt.conns : 0);
    c->ssrc = (uint32_t)rand() ^ (idx * 2654435761u);
    c->seq = (uint16_t)rand();
    c->ts = (uint32_t)rand();
    c->st = C_INVITING;
    if (!opt.no_rtp && rtp_open(&c->fd, &c->rtcp_fd, &c->lport)) {
        fprintf(stderr, "loadgen: no free RTP port pair in %u-%u\n", opt.rtp_min, opt.rtp_max);
        call_fail(c, 0);
        return;
    }
    if (opt.self_test) {
        uint16_t port = echo_ctl(c->lport, false);
        if (!port) {
            call_fail(c, 0);
            return;
        }
        c->rem = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
        c->rem.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->st = C_UP;
        return;
    }
    int64_t now = mono_ns();
    c->deadline = now + (int64_t)opt.setup_timeout_s * 1000000000LL;
    c->t_retx = now + 500000000LL;
    if (opt.outbound) {
        c->t_inv_rt = real_ns(); /* again when the POST is written */
        hq[hq_tail] = idx;
        hq_tail = (hq_tail + 1) % (MAX_CALLS + 1);
        http_pump();
        return;
    }
    send_invite(c);
}

static void start_bye(struct call *c, int64_t now)
{
    call_close_media(c); /* RTP stops with the BYE */
    if (opt.self_test) {
        c->st = C_DONE;
        return;
    }
    c->st = C_BYEING;
    c->deadline = now + 5000000000LL;
    c->t_retx = now + 500000000LL;
    c->retx = 0;
    if (opt.outbound)
        send_bye_uas(c);
    else
        send_bye(c);
}

static uint64_t bye_timeouts;

static void timers(int64_t now)
{
    for (unsigned i = 0; i < placed; i++) {
        struct call *c = &calls[i];
        if (c->st != C_INVITING && c->st != C_BYEING)
            continue;
        if (now >= c->deadline) {
            if (c->st == C_INVITING)
                call_fail(c, 0);
            else {
                bye_timeouts++;
                c->st = C_DONE;
            }
            continue;
        }
        if (!opt.tcp && !opt.outbound &&
            now >= c->t_retx) { /* RFC 3261 timers A/E, T1 = 500 ms, T2 = 4 s */
            c->retx++;
            int64_t iv = 500000000LL << (c->retx < 3 ? c->retx : 3);
            c->t_retx = now + iv;
            if (c->st == C_INVITING) {
                int64_t t = c->t_inv_rt;
                send_invite(c);
                c->t_inv_rt = t; /* latency from the first attempt */
            } else
                send_bye(c);
        }
    }
}

/* ---- the ramp ---- */
static int64_t phase_end;
static double place_credit;
static struct rusage ru_win;
static int64_t win_t0;
static uint64_t echo_ticks0;
static unsigned broken_steps;
static int64_t step_t0, step_setup_ns; /* the step's first placement; until its last answer */

static unsigned count_state(enum cst s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < placed; i++)
        n += calls[i].st == s;
    return n;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* p50, p99 and max (ms) of a latency field (uint32_t µs, 0 = none) of the step's calls */
static void step_lat(size_t off, double *p50, double *p99, double *max)
{
    *p50 = *p99 = *max = 0;
    uint32_t *lat = malloc(sizeof *lat * (placed + 1));
    unsigned nl = 0;
    for (unsigned i = 0; lat && i < placed; i++) {
        uint32_t v;
        memcpy(&v, (const char *)&calls[i] + off, sizeof v);
        if (calls[i].step == cur_step && v)
            lat[nl++] = v;
    }
    if (nl) {
        qsort(lat, nl, sizeof *lat, cmp_u32);
        *p50 = lat[(nl - 1) / 2] / 1000.0;
        *p99 = lat[(unsigned)((nl - 1) * 0.99)] / 1000.0;
        *max = lat[nl - 1] / 1000.0;
    }
    free(lat);
}

static void step_report(bool partial)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double wall = (double)(mono_ns() - win_t0) / 1e9;
    double cpu = (double)(ru.ru_utime.tv_sec - ru_win.ru_utime.tv_sec) +
                 (double)(ru.ru_stime.tv_sec - ru_win.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec - ru_win.ru_utime.tv_usec) / 1e6 +
                 (double)(ru.ru_stime.tv_usec - ru_win.ru_stime.tv_usec) / 1e6;
    /* INVITE->200 of the calls placed for this step; --outbound: POST -> 200 OK, and the
     * POST's answer, the INVITE and the ACK */
    double p50, p99, lmax, pp50, pp99, pmax, ip50, ip99, imax, ap50, ap99, amax;
    step_lat(offsetof(struct call, i200_us), &p50, &p99, &lmax);
    step_lat(offsetof(struct call, post_us), &pp50, &pp99, &pmax);
    step_lat(offsetof(struct call, inv_us), &ip50, &ip99, &imax);
    step_lat(offsetof(struct call, ack_us), &ap50, &ap99, &amax);
    unsigned added = opt.steps[cur_step] - (cur_step ? opt.steps[cur_step - 1] : 0);
    struct stats *w = &st_win;
    unsigned failed = step_setup_failed[cur_step] + step_dropped[cur_step];
    double jp99 = hist_pct(w->jit, JH_N, w->jit_n, 99.0);
    double tp99 = hist_pct(w->tick, TH_N, w->tick_n, 99.0);
    unsigned up = count_state(C_UP);
    double echo_cpu = echo_pid ? 100.0 * (double)(pid_ticks(echo_pid) - echo_ticks0) /
                                     (double)sysconf(_SC_CLK_TCK) / wall
                               : 0.0;
    printf("STEP n=%u up=%u failed=%u setup_failed=%u dropped=%u hold_s=%.1f%s "
           "rtp_tx=%" PRIu64 " rtp_rx=%" PRIu64 " echoed=%" PRIu64 " lost=%" PRIu64 " late=%" PRIu64
           " reord=%" PRIu64 " dup=%" PRIu64 " bad=%" PRIu64 " filler=%" PRIu64 " tx_err=%" PRIu64
           " jit_p99_ms=%.2f jit_max_ms=%.2f jit_n=%" PRIu64
           " i200_p50_ms=%.2f i200_p99_ms=%.2f i200_max_ms=%.2f lg_cpu=%.1f"
           " tick_late_p99_ms=%.2f overruns=%" PRIu64 " outside_lost=%" PRIu64,
           opt.steps[cur_step], up, failed, step_setup_failed[cur_step], step_dropped[cur_step],
           wall, partial ? " partial=1" : "", w->tx, w->rx, w->echoed, w->lost, w->late, w->reord,
           w->dup, w->bad, w->filler, w->tx_err, jp99, w->jit_max_ns / 1e6, w->jit_n, p50, p99,
           lmax, wall > 0 ? 100.0 * cpu / wall : 0.0, tp99, w->overruns, st_out.lost);
    if (echo_pid)
        printf(" echo_cpu=%.1f", echo_cpu);
    if (!opt.no_rtp && !opt.self_test) {
        struct tick_eval te;
        ticks_eval(&te);
        printf(" e2e_p50_ms=%.2f e2e_p99_ms=%.2f e2e_add_p50_ms=%.2f e2e_add_p99_ms=%.2f"
               " pace_p50_ms=%.2f dtick_late_p99_ms=%.2f dtick_gap_ms=%.1f dticks=%" PRIu64
               " missed_tick=%" PRIu64 " queued=%" PRIu64 " pairs=%zu",
               hist_pct(w->e2e, JH_N, w->e2e_n, 50.0), hist_pct(w->e2e, JH_N, w->e2e_n, 99.0),
               te.e2e_add_p50, te.e2e_add_p99, te.pace_p50, te.late_p99, tk_gap_ms, te.ticks,
               te.missed, te.queued, npairs);
        if (opt.agent_port) {
            struct agentsrv_counts ac;
            agentsrv_counts(&ac);
            printf(" a2w_p50_ms=%.2f a2w_p99_ms=%.2f a2w_max_ms=%.2f w2r_p50_ms=%.2f"
                   " w2r_p99_ms=%.2f w2r_add_p50_ms=%.2f w2r_add_p99_ms=%.2f agent_rx=%" PRIu64
                   " agent_tx=%" PRIu64 " agent_bad=%" PRIu64 " agent_live=%u agent_opened=%" PRIu64
                   " agent_errors=%" PRIu64,
                   hist_pct(w->a2w, JH_N, w->a2w_n, 50.0), hist_pct(w->a2w, JH_N, w->a2w_n, 99.0),
                   hist_pct(w->a2w, JH_N, w->a2w_n, 100.0), hist_pct(w->w2r, JH_N, w->w2r_n, 50.0),
                   hist_pct(w->w2r, JH_N, w->w2r_n, 99.0), te.w2r_add_p50, te.w2r_add_p99,
                   w->agent_rx, w->agent_tx, w->agent_bad, ac.live, ac.opened, ac.errors);
        }
    }
    printf(" setup_s=%.2f setup_cps=%.1f", step_setup_ns / 1e9,
           step_setup_ns > 0 ? added / (step_setup_ns / 1e9) : 0.0);
    if (opt.outbound)
        printf(" post_p50_ms=%.2f post_p99_ms=%.2f post_max_ms=%.2f inv_p50_ms=%.2f"
               " inv_p99_ms=%.2f inv_max_ms=%.2f ack_p50_ms=%.2f ack_p99_ms=%.2f ack_max_ms=%.2f"
               " http_err=%" PRIu64,
               pp50, pp99, pmax, ip50, ip99, imax, ap50, ap99, amax, http_err);
    printf("\n");
    fflush(stdout);
    bool broken = failed || w->lost || (!opt.no_rtp && jp99 > opt.max_jitter_ms);
    if (broken)
        broken_steps++;
}

static void begin_teardown(int64_t now)
{
    phase = P_TEARDOWN;
    cur = &st_out;
    double bye_rate = opt.bye_cps ? opt.bye_cps : 2.0 * opt.cps;
    phase_end = now + 30000000000LL + (int64_t)(count_state(C_UP) / bye_rate * 1e9);
    place_credit = 0;
    printf("TEARDOWN up=%u\n", count_state(C_UP));
    fflush(stdout);
}

static void finish(void)
{
    unsigned codes = 0;
    printf("DONE placed=%u bye_timeouts=%" PRIu64 " bye_refused=%" PRIu64 " sip_parse_err=%" PRIu64
           " sip_stray=%" PRIu64 " sip_send_err=%" PRIu64 " conn_lost=%" PRIu64,
           placed, bye_timeouts, bye_refused, sip_parse_err, sip_stray, sip_sent_err, conn_lost);
    if (opt.dns_port)
        printf(" dns_queries=%" PRIu64 " dns_nx=%" PRIu64, dns_queries, dns_nx);
    printf(" setup_fail_codes=");
    for (unsigned i = 0; i < 700; i++)
        if (fail_codes[i]) {
            printf("%s%s:%u", codes++ ? "," : "", i ? "" : "timeout/local", fail_codes[i]);
            if (i)
                printf("(%u)", i);
        }
    printf("%s\n", codes ? "" : "none");
    fflush(stdout);
    uv_stop(loop);
}

static void phase_tick(int64_t now)
{
    switch (phase) {
    case P_SETUP: {
        unsigned target = opt.steps[cur_step];
        if (!step_t0)
            step_t0 = now;
        if (placed < target) {
            place_credit += opt.cps * 0.02;
            while (place_credit >= 1 && placed < target && placed < MAX_CALLS) {
                place_credit -= 1;
                place_call();
            }
        } else if (!count_state(C_INVITING)) {
            step_setup_ns = now - step_t0;
            phase = P_SETTLE;
            memset(ph, 0, sizeof ph);
            phase_end = now + (int64_t)opt.settle_ms * 1000000;
        }
        break;
    }
    case P_SETTLE:
        if (now >= phase_end) {
            phase = P_WINDOW;
            memset(&st_win, 0, sizeof st_win);
            cur = &st_win;
            getrusage(RUSAGE_SELF, &ru_win);
            echo_ticks0 = echo_pid ? pid_ticks(echo_pid) : 0;
            win_t0 = now;
            phase_end = now + (int64_t)opt.holds[cur_step] * 1000000000LL;
            ticks_begin(real_ns(), opt.holds[cur_step]);
            printf("WINDOW-START n=%u up=%u tick_gap_ms=%.1f\n", opt.steps[cur_step],
                   count_state(C_UP), tk_gap_ms);
            fflush(stdout);
        }
        break;
    case P_WINDOW:
        if (now >= phase_end) {
            step_report(false);
            cur = &st_out;
            if (cur_step + 1 == opt.nsteps || (opt.stop_on_break && broken_steps)) {
                begin_teardown(now);
            } else {
                cur_step++;
                step_t0 = 0;
                phase = P_SETUP;
                place_credit = 0;
                memset(&st_out, 0, sizeof st_out);
            }
        }
        break;
    case P_TEARDOWN: {
        place_credit += (opt.bye_cps ? opt.bye_cps : 2.0 * opt.cps) * 0.02;
        unsigned busy = 0;
        for (unsigned i = 0; i < placed; i++) {
            struct call *c = &calls[i];
            if (c->st == C_UP && place_credit >= 1) {
                place_credit -= 1;
                start_bye(c, now);
            }
            busy += c->st == C_UP || c->st == C_BYEING || c->st == C_INVITING;
        }
        if (!busy || now >= phase_end)
            finish();
        break;
    }
    }
}

static void on_tick(uv_poll_t *h, int status, int events)
{
    uint64_t exp = 0;
    if (read(tfd, &exp, sizeof exp) != sizeof exp || !exp)
        return;
    uint64_t first = tick_no + 1;
    tick_no += exp;
    int64_t now = mono_ns();
    hist_add(cur->tick, TH_N, now - (t0_mono + (int64_t)tick_no * (FRAME_NS / opt.slots)));
    cur->tick_n++;
    if (exp > opt.slots) /* a whole frame period missed */
        cur->overruns += exp - opt.slots;
    unsigned k = exp < MAX_CATCHUP ? (unsigned)exp : MAX_CATCHUP;
    if (opt.agent_port && !opt.agent_wake)
        agentsrv_poll();

    if (opt.max_seconds && now - t_start_mono > (int64_t)opt.max_seconds * 1000000000LL) {
        printf("ABORT hard deadline of %u s reached\n", opt.max_seconds);
        fflush(stdout);
        exit(3);
    }
    if (!opt.no_rtp && opt.slots > 1) {
        /* every slot due since the last wake-up, each once (at most MAX_CATCHUP frames) */
        uint64_t cap = (uint64_t)MAX_CATCHUP * opt.slots;
        if (tick_no - first + 1 > cap)
            first = tick_no - cap + 1;
        for (uint64_t t = first; t <= tick_no; t++) {
            uint64_t fr = t / opt.slots;
            for (unsigned i = (unsigned)(t % opt.slots); i < placed; i += opt.slots) {
                struct call *c = &calls[i];
                unsigned r = i / opt.slots;
                if (c->st == C_UP && (fr + r) % opt.rx_every == 0)
                    rtp_drain(c, i);
                if (c->rtcp_fd >= 0 && r % 50 == fr % 50)
                    drain_only(c->rtcp_fd);
                if (c->st != C_UP)
                    continue;
                rtp_check(c);
                rtp_send(c, i);
            }
        }
    } else if (!opt.no_rtp) {
        for (unsigned i = 0; i < placed; i++) {
            struct call *c = &calls[i];
            if (c->st == C_UP && (tick_no + i) % opt.rx_every < k)
                rtp_drain(c, i);
            if (c->rtcp_fd >= 0 && i % 50 == tick_no % 50)
                drain_only(c->rtcp_fd);
        }
        for (unsigned i = 0; i < placed; i++) {
            struct call *c = &calls[i];
            if (c->st != C_UP)
                continue;
            rtp_check(c);
            for (unsigned j = 0; j < k; j++)
                rtp_send(c, i);
        }
    }
    if (opt.slots > 1 && (first - 1) / opt.slots == tick_no / opt.slots)
        return; /* the signalling and the ramp run once per 20 ms */
    timers(now);
    phase_tick(now);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (stopping) {
        printf("ABORT second signal\n");
        fflush(stdout);
        exit(3);
    }
    stopping = true;
    if (phase == P_WINDOW)
        step_report(true);
    if (phase != P_TEARDOWN)
        begin_teardown(mono_ns());
}

/* ---- options ---- */
static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --sip 127.0.0.1:PORT --number E164 [options]\n"
            "       loadgen --outbound --listen PORT --api 127.0.0.1:PORT --token T\n"
            "               --number E164 [options]\n"
            "       loadgen --self-test [options]\n"
            "  --transport tcp|udp   SIP transport (tcp)\n"
            "  --conns K             TCP connections carrying the dialogs (1)\n"
            "  --steps N[:HOLD],...  concurrent calls per step, optional hold in s per step\n"
            "                        (100,250,500,1000,2000,3000)\n"
            "  --hold S              default hold of a step's measuring window (60)\n"
            "  --cps R               call setup rate while ramping (200); BYEs at 2R\n"
            "  --bye-cps R           BYEs per second in the teardown instead (R = --cps:\n"
            "                        every call held as long, first in, first out)\n"
            "  --rtp-ports MIN-MAX   local RTP ports (42000-61998)\n"
            "  --grace-ms MS         an echo later than this is lost (300)\n"
            "  --setup-timeout S     INVITE without a final answer fails after S (10)\n"
            "  --settle-ms MS        pause between the last answer and the window (1000)\n"
            "  --no-rtp              signalling only\n"
            "  --rx-every K          drain each RTP socket every K ticks (2): fewer syscalls;\n"
            "                        arrival times come from kernel timestamps anyway\n"
            "  --self-test           no SIP: RTP against an echo in a child process\n"
            "  --echo-cpu C          --self-test: pin the echo child to core C\n"
            "  --self-test-drop K    --self-test: the echo drops every K-th frame\n"
            "  --stop-on-break       stop the ramp after a step with failed calls, loss or\n"
            "                        jitter p99 over --max-jitter-ms (5)\n"
            "  --max-seconds S       hard deadline (default: from the steps)\n"
            "  --slots S             spread the calls' frames over the 20 ms in S slots (1)\n"
            "  --agent-port P        also be the agent: a WebSocket echo on 127.0.0.1:P\n"
            "  --agent-cert F --agent-key F   the agent over TLS (wss) with this PEM pair\n"
            "  --agent-wake          read the agent's connections on arrival, not on each tick\n"
            "  --outbound            the daemon places the calls: each is a POST /v1/calls\n"
            "                        from --number to --to-prefix + 7-digit call index; the\n"
            "                        daemon's INVITE (over TCP, to --listen) is answered at\n"
            "                        once, RTP as above; teardown: our BYE (the callee's)\n"
            "  --listen PORT         --outbound: SIP/TCP port on 127.0.0.1\n"
            "  --api IP:PORT         --outbound: the daemon's API\n"
            "  --token T             --outbound: a workspace admin token\n"
            "  --to-prefix P         --outbound: callee prefix (+49155)\n"
            "  --api-conns K         --outbound: HTTP connections, one POST in flight each (4)\n"
            "  --dns PORT            --outbound: also the trunk's DNS on 127.0.0.1:PORT (UDP):\n"
            "                        SRV _sip._tcp.NAME -> --listen, A NAME -> 127.0.0.1\n"
            "  --dns-name NAME       --outbound: the trunk's name (carrier.bench)\n");
    exit(2);
}

static unsigned num(const char *s, unsigned lo, unsigned hi, const char *what)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        die("bad %s", what);
    return (unsigned)v;
}

static void parse_steps(const char *s)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    opt.nsteps = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (opt.nsteps == MAX_STEPS)
            die("%s", "too many steps");
        char *colon = strchr(t, ':');
        unsigned h = 0;
        if (colon) {
            *colon = '\0';
            h = num(colon + 1, 1, 3600, "step hold");
        }
        unsigned n = num(t, 1, MAX_CALLS, "step size");
        if (opt.nsteps && n < opt.steps[opt.nsteps - 1])
            die("%s", "steps must not decrease");
        opt.steps[opt.nsteps] = n;
        opt.holds[opt.nsteps++] = h; /* 0 = --hold */
    }
    if (!opt.nsteps)
        die("%s", "no steps");
}

int main(int argc, char **argv)
{
    parse_steps("100,250,500,1000,2000,3000");
    bool have_sip = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEXT()                                                                                     \
    do {                                                                                           \
        if (!v)                                                                                    \
            usage();                                                                               \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--sip")) {
            NEXT();
            const char *c = strrchr(v, ':');
            if (!c || (size_t)(c - v) >= sizeof opt.sip_ip)
                usage();
            snprintf(opt.sip_ip, sizeof opt.sip_ip, "%.*s", (int)(c - v), v);
            opt.sip_port = (uint16_t)num(c + 1, 1, 65535, "--sip port");
            have_sip = true;
        } else if (!strcmp(a, "--outbound")) {
            opt.outbound = true;
        } else if (!strcmp(a, "--listen")) {
            NEXT();
            opt.listen_port = (uint16_t)num(v, 1, 65535, "--listen");
        } else if (!strcmp(a, "--api")) {
            NEXT();
            const char *c = strrchr(v, ':');
            if (!c || (size_t)(c - v) >= sizeof opt.api_ip)
                usage();
            snprintf(opt.api_ip, sizeof opt.api_ip, "%.*s", (int)(c - v), v);
            opt.api_port = (uint16_t)num(c + 1, 1, 65535, "--api port");
        } else if (!strcmp(a, "--token")) {
            NEXT();
            opt.token = v;
        } else if (!strcmp(a, "--to-prefix")) {
            NEXT();
            opt.to_prefix = v;
        } else if (!strcmp(a, "--dns")) {
            NEXT();
            opt.dns_port = (uint16_t)num(v, 1, 65535, "--dns");
        } else if (!strcmp(a, "--dns-name")) {
            NEXT();
            opt.dns_name = v;
        } else if (!strcmp(a, "--api-conns")) {
            NEXT();
            opt.api_conns = num(v, 1, MAX_HCONNS, "--api-conns");
        } else if (!strcmp(a, "--number")) {
            NEXT();
            opt.number = v;
        } else if (!strcmp(a, "--transport")) {
            NEXT();
            if (strcmp(v, "tcp") && strcmp(v, "udp"))
                usage();
            opt.tcp = !strcmp(v, "tcp");
        } else if (!strcmp(a, "--conns")) {
            NEXT();
            opt.conns = num(v, 1, MAX_CONNS, "--conns");
        } else if (!strcmp(a, "--steps")) {
            NEXT();
            parse_steps(v);
        } else if (!strcmp(a, "--hold")) {
            NEXT();
            opt.hold = num(v, 1, 3600, "--hold");
        } else if (!strcmp(a, "--cps")) {
            NEXT();
            opt.cps = num(v, 1, 5000, "--cps");
        } else if (!strcmp(a, "--bye-cps")) {
            NEXT();
            opt.bye_cps = num(v, 1, 10000, "--bye-cps");
        } else if (!strcmp(a, "--rtp-ports")) {
            NEXT();
            if (sscanf(v, "%u-%u", &opt.rtp_min, &opt.rtp_max) != 2 || opt.rtp_min < 1024 ||
                opt.rtp_max > 65534 || opt.rtp_min >= opt.rtp_max)
                usage();
            opt.rtp_min += opt.rtp_min % 2;
        } else if (!strcmp(a, "--grace-ms")) {
            NEXT();
            opt.grace_ms = num(v, 40, 3000, "--grace-ms");
        } else if (!strcmp(a, "--setup-timeout")) {
            NEXT();
            opt.setup_timeout_s = num(v, 1, 120, "--setup-timeout");
        } else if (!strcmp(a, "--settle-ms")) {
            NEXT();
            opt.settle_ms = num(v, 0, 60000, "--settle-ms");
        } else if (!strcmp(a, "--no-rtp")) {
            opt.no_rtp = true;
        } else if (!strcmp(a, "--self-test")) {
            opt.self_test = true;
        } else if (!strcmp(a, "--self-test-drop")) {
            NEXT();
            opt.st_drop = num(v, 2, 1000000, "--self-test-drop");
        } else if (!strcmp(a, "--rx-every")) {
            NEXT();
            opt.rx_every = num(v, 1, 10, "--rx-every");
        } else if (!strcmp(a, "--echo-cpu")) {
            NEXT();
            opt.echo_cpu = (int)num(v, 0, 1023, "--echo-cpu");
        } else if (!strcmp(a, "--stop-on-break")) {
            opt.stop_on_break = true;
        } else if (!strcmp(a, "--max-jitter-ms")) {
            NEXT();
            opt.max_jitter_ms = atof(v);
        } else if (!strcmp(a, "--slots")) {
            NEXT();
            opt.slots = num(v, 1, 20, "--slots");
            if (FRAME_NS % opt.slots)
                die("%s", "--slots must divide 20 ms");
        } else if (!strcmp(a, "--agent-port")) {
            NEXT();
            opt.agent_port = (uint16_t)num(v, 1, 65535, "--agent-port");
        } else if (!strcmp(a, "--agent-wake")) {
            opt.agent_wake = true;
        } else if (!strcmp(a, "--agent-cert")) {
            NEXT();
            opt.agent_cert = v;
        } else if (!strcmp(a, "--agent-key")) {
            NEXT();
            opt.agent_key = v;
        } else if (!strcmp(a, "--max-seconds")) {
            NEXT();
            opt.max_seconds = num(v, 1, 86400, "--max-seconds");
        } else {
            usage();
        }
#undef NEXT
    }
    if (!have_sip && !opt.self_test && !opt.outbound)
        usage();
    if (opt.outbound && (opt.self_test || !opt.listen_port || !opt.api_port || !opt.token ||
                         strlen(opt.to_prefix) > 8 || !opt.tcp))
        die("%s", "--outbound needs --listen PORT, --api IP:PORT and --token (SIP over TCP)");
    if (opt.self_test && opt.no_rtp)
        die("%s", "--self-test needs RTP");
    unsigned total = 30;
    for (unsigned s = 0; s < opt.nsteps; s++) {
        if (!opt.holds[s])
            opt.holds[s] = opt.hold;
        total += opt.holds[s] + opt.steps[s] / opt.cps + opt.setup_timeout_s + 5;
    }
    if (opt.bye_cps)
        total += opt.steps[opt.nsteps - 1] / opt.bye_cps;
    if (!opt.max_seconds)
        opt.max_seconds = total + 60;
    if (!opt.agent_cert != !opt.agent_key)
        die("%s", "--agent-cert and --agent-key go together");
    unsigned need = opt.steps[opt.nsteps - 1] * (opt.self_test ? 4 : opt.agent_port ? 3 : 2) + 64;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need && rl.rlim_max >= need) {
        rl.rlim_cur = need;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < need) {
        fprintf(stderr, "loadgen: ulimit -n %lu is below the %u descriptors needed\n",
                (unsigned long)rl.rlim_cur, need);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand((unsigned)(real_ns() ^ getpid()));
    run_id = (uint32_t)rand();
    calls = calloc(MAX_CALLS, sizeof *calls);
    lats = calloc(MAX_CALLS, sizeof *lats);
    if (!calls || !lats)
        die("%s", "out of memory");

    if (opt.self_test)
        echo_start(opt.echo_cpu);
    loop = uv_default_loop();
    if (opt.outbound) {
        listen_open();
        http_init();
        if (opt.dns_port)
            dns_open();
    } else if (!opt.self_test) {
        conns_open();
    }
    if (opt.agent_port && agentsrv_start(loop, opt.agent_port, opt.agent_cert, opt.agent_key,
                                         opt.agent_wake, on_agent_media))
        die("%s", "the agent server did not start");
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        die("timerfd: %s", strerror(errno));
    t_start_mono = mono_ns();
    t0_mono = t_start_mono + FRAME_NS;
    int64_t sub = FRAME_NS / opt.slots;
    struct itimerspec its = {.it_interval = {0, sub},
                             .it_value = {t0_mono / 1000000000LL, t0_mono % 1000000000LL}};
    t0_mono -= sub; /* tick n is due at t0 + n * 20 ms / slots, the first at n = 1 */
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL))
        die("timerfd_settime: %s", strerror(errno));
    uv_poll_init(loop, &tpoll, tfd);
    uv_poll_start(&tpoll, UV_READABLE, on_tick);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    uv_signal_init(loop, &sig_term);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    printf("START mode=%s transport=%s conns=%u cps=%u steps=",
           opt.self_test  ? "self-test"
           : opt.outbound ? "outbound"
                          : "sip",
           opt.self_test ? "-" : tpname(), opt.tcp ? opt.conns : 1, opt.cps);
    for (unsigned s = 0; s < opt.nsteps; s++)
        printf("%s%u:%u", s ? "," : "", opt.steps[s], opt.holds[s]);
    printf(" grace_ms=%u max_seconds=%u slots=%u agent=%s pid=%d\n", opt.grace_ms, opt.max_seconds,
           opt.slots,
           !opt.agent_port  ? "none"
           : opt.agent_cert ? "wss"
                            : "ws",
           (int)getpid());
    uv_run(loop, UV_RUN_DEFAULT);
    return broken_steps ? 1 : 0;
}
