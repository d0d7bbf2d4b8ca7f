/* bench/loadgen/agentsrv: see agentsrv.h. One connection per call:
 *
 *   TLS        (wss only) the handshake over net/tls.h's memory-BIO engine
 *   HTTP       the daemon's Upgrade read up to the blank line; 101 with
 *              Sec-WebSocket-Accept = base64(SHA-1(key + GUID)) (tl_ws_accept_for)
 *   OPEN       frames through a wslay server context: the recv callback reads from the
 *              plaintext a socket read just brought, the send callback stages plaintext
 *              that goes out (encrypted when wss) in one write
 *
 * Reads use recvmsg() with SO_TIMESTAMPNS: the kernel's receive time of the last segment
 * the read took. The daemon writes each frame on its own and a call has one frame per 20 ms,
 * so a read holds one frame of one call nearly always.
 *
 * Polled (the default): the connections sit in an epoll set of their own that nobody
 * sleeps on; the generator drains it on each of its timer ticks (agentsrv_poll). A frame the
 * daemon writes then wakes no process — as with an agent on another machine, where the
 * daemon's write ends at the NIC —, instead of waking the generator on the other core for
 * every frame (the daemon would pay for an inter-processor wake-up per frame, a cost of this
 * loopback set-up only). Latency is unaffected: arrival times are the kernel's, and the
 * agent's wait before it reads is not the daemon's. With wake (agentsrv_start), each
 * connection is in the loop and read as soon as data arrives. */
#include "agentsrv.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wslay/wslay.h>

#include "agent/twilio.h"
#include "agent/ws.h"
#include "net/tls.h"

#define HTTP_MAX  8192
#define FRAME_MAX 4096
#define AUDIO_MAX 65536

enum ast { A_TLS, A_HTTP, A_OPEN, A_DEAD };

struct aconn {
    int fd;
    uv_poll_t poll;
    enum ast st;
    struct tl_tls *tls;
    wslay_event_context_ptr ctx;
    char *hbuf; /* the upgrade request */
    size_t hlen;
    const uint8_t *rp; /* what wslay's recv callback hands out */
    size_t rn;
    char *pt; /* plaintext staged by wslay's send callback */
    size_t ptlen, ptcap;
    char *out; /* bytes for the socket the kernel has not taken */
    size_t olen, ocap;
    bool wpoll;
    int64_t t_rx;
    uint64_t seq, chunk;
    char sid[TL_TW_SID_LEN + 1];
    struct aconn *dead_next;
};

static uv_loop_t *g_loop;
static int g_lfd = -1;
static uv_poll_t g_lpoll;
static struct tl_tls_ctx *g_tls;
static agentsrv_media_fn *g_fn;
static struct agentsrv_counts g_n;
static int g_ep = -1;        /* polled: the connections' epoll set; -1: in the loop */
static struct aconn *g_dead; /* polled: closed, freed after the sweep */

static char g_rbuf[65536];
static char g_plain[16384];
static char g_frame[FRAME_MAX];
static uint8_t g_audio[AUDIO_MAX];

static int64_t real_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

void agentsrv_counts(struct agentsrv_counts *out)
{
    *out = g_n;
}

static void on_conn_io(uv_poll_t *h, int status, int events);

static void conn_free(struct aconn *c)
{
    close(c->fd);
    if (c->ctx)
        wslay_event_context_free(c->ctx);
    tl_tls_free(c->tls);
    free(c->hbuf);
    free(c->pt);
    free(c->out);
    free(c);
}

static void conn_closed(uv_handle_t *h)
{
    conn_free(h->data);
}

static void want_write(struct aconn *c, bool on)
{
    if (g_ep >= 0) {
        struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
        epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
    } else {
        uv_poll_start(&c->poll, UV_READABLE | (on ? UV_WRITABLE : 0), on_conn_io);
    }
}

static void conn_kill(struct aconn *c, bool error)
{
    if (c->st == A_DEAD)
        return;
    if (c->st == A_OPEN)
        g_n.live--;
    c->st = A_DEAD;
    g_n.closed++;
    if (error)
        g_n.errors++;
    if (g_ep >= 0) {
        epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
        c->dead_next = g_dead; /* callers up the stack may still look at c */
        g_dead = c;
        return;
    }
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, conn_closed);
}

static int grow(char **b, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *nb = realloc(*b, n);
    if (!nb)
        return ENOMEM;
    *b = nb;
    *cap = n;
    return 0;
}

/* what is in c->out onto the socket; the rest waits for writability */
static int out_flush(struct aconn *c)
{
    while (c->olen) {
        ssize_t w = send(c->fd, c->out, c->olen, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return EIO;
        }
        memmove(c->out, c->out + w, c->olen - (size_t)w);
        c->olen -= (size_t)w;
    }
    bool want = c->olen > 0;
    if (want != c->wpoll) {
        c->wpoll = want;
        want_write(c, want);
    }
    return 0;
}

static int out_add(struct aconn *c, const char *p, size_t n)
{
    if (grow(&c->out, &c->ocap, c->olen + n))
        return ENOMEM;
    memcpy(c->out + c->olen, p, n);
    c->olen += n;
    return 0;
}

/* TLS records the engine has pending, into c->out */
static int tls_out(struct aconn *c)
{
    size_t got;
    char b[16384];
    while ((got = tl_tls_pending(c->tls, b, sizeof b)) > 0)
        if (out_add(c, b, got))
            return ENOMEM;
    return 0;
}

/* plaintext for the peer: through TLS when wss */
static int plain_out(struct aconn *c, const char *p, size_t n)
{
    if (!c->tls)
        return out_add(c, p, n);
    if (tl_tls_write(c->tls, p, n))
        return EIO;
    return tls_out(c);
}

/* wslay's queue → staged plaintext → c->out (one TLS record per call) */
static int ws_pump(struct aconn *c)
{
    c->ptlen = 0;
    if (wslay_event_send(c->ctx) < 0)
        return EIO;
    if (c->ptlen && plain_out(c, c->pt, c->ptlen))
        return EIO;
    c->ptlen = 0;
    return 0;
}

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                        void *user)
{
    (void)flags;
    struct aconn *c = user;
    if (!c->rn) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->rn ? len : c->rn;
    memcpy(buf, c->rp, n);
    c->rp += n;
    c->rn -= n;
    return (ssize_t)n;
}

static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                        void *user)
{
    (void)flags;
    struct aconn *c = user;
    if (grow(&c->pt, &c->ptcap, c->ptlen + len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    memcpy(c->pt + c->ptlen, data, len);
    c->ptlen += len;
    return (ssize_t)len;
}

/* streamSid of `start` (the echo names it, as bots do) */
static void take_sid(struct aconn *c, const char *p, size_t n)
{
    static const char k[] = "\"streamSid\":\"";
    const char *s = memmem(p, n, k, sizeof k - 1);
    if (!s || (size_t)(p + n - s) < sizeof k - 1 + TL_TW_SID_LEN)
        return;
    memcpy(c->sid, s + sizeof k - 1, TL_TW_SID_LEN);
    c->sid[TL_TW_SID_LEN] = '\0';
}

static void wsl_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                    void *user)
{
    (void)ctx;
    struct aconn *c = user;
    if (a->opcode != WSLAY_TEXT_FRAME)
        return;
    const char *p = (const char *)a->msg;
    size_t n = a->msg_length;
    if (!memmem(p, n, "\"event\":\"media\"", 15)) {
        if (memmem(p, n, "\"event\":\"start\"", 15))
            take_sid(c, p, n);
        g_n.other_rx++;
        return;
    }
    static struct tl_tw_msg m;
    if (tl_tw_decode(p, n, NULL, &m, g_audio, sizeof g_audio, NULL, 0) || m.kind != TL_TW_MEDIA) {
        g_n.errors++;
        return;
    }
    g_n.media_rx++;
    g_fn(c, g_audio, m.audio_len, c->t_rx);
}

int64_t agentsrv_send_media(struct aconn *c, const uint8_t *ulaw, size_t n)
{
    if (c->st != A_OPEN || !wslay_event_get_write_enabled(c->ctx))
        return -1;
    size_t len;
    c->chunk++;
    if (tl_tw_media(g_frame, sizeof g_frame, &len, c->sid[0] ? c->sid : "MZ", ++c->seq, c->chunk,
                    c->chunk * 20, ulaw, n))
        return -1;
    struct wslay_event_msg msg = {WSLAY_TEXT_FRAME, (const uint8_t *)g_frame, len};
    if (wslay_event_queue_msg(c->ctx, &msg) || ws_pump(c))
        return -1;
    int64_t t = real_ns();
    if (out_flush(c)) {
        conn_kill(c, true);
        return -1;
    }
    g_n.media_tx++;
    return t;
}

static int open_ws(struct aconn *c)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = wsl_recv,
        .send_callback = wsl_send,
        .on_msg_recv_callback = wsl_msg,
    };
    if (wslay_event_context_server_init(&c->ctx, &cbs, c))
        return ENOMEM;
    wslay_event_config_set_max_recv_msg_length(c->ctx, 1u << 20);
    c->st = A_OPEN;
    g_n.opened++;
    g_n.live++;
    return 0;
}

/* the Upgrade: GET …, Sec-WebSocket-Key; answered with 101 */
static int http_in(struct aconn *c, const char *p, size_t n, size_t *used)
{
    size_t room = HTTP_MAX - c->hlen;
    size_t take = n < room ? n : room;
    memcpy(c->hbuf + c->hlen, p, take);
    size_t old = c->hlen;
    c->hlen += take;
    const char *e = memmem(c->hbuf, c->hlen, "\r\n\r\n", 4);
    if (!e) {
        *used = take;
        return c->hlen == HTTP_MAX ? EBADMSG : EAGAIN;
    }
    size_t hl = (size_t)(e + 4 - c->hbuf);
    *used = hl - old;
    char key[64] = "";
    for (const char *l = c->hbuf; l < e;) {
        const char *eol = memmem(l, (size_t)(e + 2 - l), "\r\n", 2);
        if (!eol)
            break;
        static const char kh[] = "Sec-WebSocket-Key:";
        size_t ll = (size_t)(eol - l);
        if (ll > sizeof kh - 1 && !strncasecmp(l, kh, sizeof kh - 1)) {
            const char *v = l + sizeof kh - 1;
            while (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl < sizeof key) {
                memcpy(key, v, vl);
                key[vl] = '\0';
            }
        }
        l = eol + 2;
    }
    if (!key[0] || strncmp(c->hbuf, "GET ", 4))
        return EBADMSG;
    char acc[29], resp[256];
    tl_ws_accept_for(key, acc);
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                      acc);
    free(c->hbuf);
    c->hbuf = NULL;
    if (plain_out(c, resp, (size_t)rl) || open_ws(c))
        return EIO;
    return 0;
}

/* plaintext from the daemon */
static int plain_in(struct aconn *c, const char *p, size_t n)
{
    while (n && c->st == A_HTTP) {
        size_t used = 0;
        int r = http_in(c, p, n, &used);
        if (r == EAGAIN)
            return 0;
        if (r)
            return r;
        p += used;
        n -= used;
    }
    if (!n || c->st != A_OPEN)
        return 0;
    c->rp = (const uint8_t *)p;
    c->rn = n;
    int r = wslay_event_recv(c->ctx);
    c->rn = 0;
    if (r < 0)
        return EIO;
    return ws_pump(c); /* pongs, the answer to a close */
}

static int tls_in(struct aconn *c, const char *p, size_t n)
{
    if (tl_tls_feed(c->tls, p, n))
        return EIO;
    if (c->st == A_TLS) {
        int r = tl_tls_handshake(c->tls);
        if (tls_out(c))
            return ENOMEM;
        if (r == EAGAIN)
            return 0;
        if (r) {
            fprintf(stderr, "agentsrv: TLS handshake failed: %s\n", tl_tls_why(c->tls));
            return EPROTO;
        }
        c->st = A_HTTP;
    }
    for (;;) {
        size_t got = 0;
        int r = tl_tls_read(c->tls, g_plain, sizeof g_plain, &got);
        if (r == ECONNRESET)
            return ECONNRESET;
        if (r)
            return EPROTO;
        if (!got)
            break;
        if ((r = plain_in(c, g_plain, got)))
            return r;
        if (c->st == A_DEAD)
            return 0;
    }
    return tls_out(c);
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

static void conn_read(struct aconn *c)
{
    for (int rounds = 0; rounds < 16 && c->st != A_DEAD; rounds++) {
        char ctl[CMSG_SPACE(sizeof(struct timespec)) + 64];
        struct iovec iov = {g_rbuf, sizeof g_rbuf};
        struct msghdr h = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
        ssize_t r = recvmsg(c->fd, &h, MSG_DONTWAIT);
        if (r == 0) {
            conn_kill(c, false);
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_kill(c, true);
            return;
        }
        c->t_rx = msg_ts(&h);
        int e = c->tls ? tls_in(c, g_rbuf, (size_t)r) : plain_in(c, g_rbuf, (size_t)r);
        if (c->st == A_DEAD)
            return;
        if ((e && e != ECONNRESET) || out_flush(c)) {
            conn_kill(c, true);
            return;
        }
        if (e == ECONNRESET || (c->st == A_OPEN && !wslay_event_want_read(c->ctx) &&
                                !wslay_event_want_write(c->ctx) && !c->olen)) {
            conn_kill(c, false); /* the close handshake is done */
            return;
        }
        if ((size_t)r < sizeof g_rbuf)
            return;
    }
}

static void on_conn_io(uv_poll_t *h, int status, int events)
{
    struct aconn *c = h->data;
    if (status < 0) {
        conn_kill(c, true);
        return;
    }
    if ((events & UV_WRITABLE) && out_flush(c)) {
        conn_kill(c, true);
        return;
    }
    if (events & UV_READABLE)
        conn_read(c);
}

static void on_listen(uv_poll_t *h, int status, int events)
{
    (void)h;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(g_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct aconn *c = calloc(1, sizeof *c);
        if (!c || !(c->hbuf = malloc(HTTP_MAX)) || (g_tls && tl_tls_server(&c->tls, g_tls))) {
            if (c)
                free(c->hbuf);
            free(c);
            close(fd);
            g_n.errors++;
            continue;
        }
        c->fd = fd;
        c->st = g_tls ? A_TLS : A_HTTP;
        g_n.accepted++;
        if (g_ep >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
            continue;
        }
        uv_poll_init(g_loop, &c->poll, fd);
        c->poll.data = c;
        uv_poll_start(&c->poll, UV_READABLE, on_conn_io);
    }
}

void agentsrv_poll(void)
{
    struct epoll_event ev[256];
    for (int rounds = 0; g_ep >= 0 && rounds < 64; rounds++) {
        int n = epoll_wait(g_ep, ev, 256, 0);
        for (int i = 0; i < n; i++) {
            struct aconn *c = ev[i].data.ptr;
            if (c->st == A_DEAD)
                continue;
            if ((ev[i].events & EPOLLOUT) && out_flush(c)) {
                conn_kill(c, true);
                continue;
            }
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c); /* an error or a reset shows there */
        }
        while (g_dead) {
            struct aconn *c = g_dead;
            g_dead = c->dead_next;
            conn_free(c);
        }
        if (n < 256)
            return;
    }
}

int agentsrv_start(uv_loop_t *loop, uint16_t port, const char *cert, const char *key, bool wake,
                   agentsrv_media_fn *fn)
{
    g_loop = loop;
    g_fn = fn;
    if (!wake && (g_ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        return errno;
    if (cert && tl_tls_ctx_server(&g_tls, cert, key)) {
        fprintf(stderr, "agentsrv: cannot load %s / %s\n", cert, key);
        return EINVAL;
    }
    g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (g_lfd < 0)
        return errno;
    int one = 1;
    setsockopt(g_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g_lfd, (struct sockaddr *)&a, sizeof a) || listen(g_lfd, 4096)) {
        int e = errno;
        fprintf(stderr, "agentsrv: cannot listen on 127.0.0.1:%u: %s\n", port, strerror(e));
        return e;
    }
    uv_poll_init(loop, &g_lpoll, g_lfd);
    uv_poll_start(&g_lpoll, UV_READABLE, on_listen);
    return 0;
}
