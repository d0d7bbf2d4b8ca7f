/* sip/transport: UDP, TCP and TLS on one libuv loop (RFC 3261 §18).
 *
 * UDP and TCP share the port number (§18). Stream bytes (TCP, or TLS plaintext) collect
 * in a per-connection buffer that never exceeds TL_SIP_MSG_MAX and are cut into messages
 * by tl_sip_frame(); garbage or an unframeable message closes the connection (RFC 4475
 * §3.1.2.3, §3.3.9). A started message must complete within idle_s (clerr.dat; slowloris),
 * and an idle connection closes after idle_s. Connections are capped (a flood of accepts
 * must not exhaust fds or memory, CVE-2021-41145 class).
 *
 * One hostile host (issue 11 item 1: 1,100 idle connections kept every carrier out) meets
 * three more limits: connections per source (IPv4 address, IPv6 /64), a short deadline
 * for the TLS handshake and the first complete message (first_msg_s: an idle or half-open
 * connection costs a slot for seconds, not for idle_s), and the last reserved_conns slots,
 * which only a source in some number's allowed_addresses may take (trusted_h) — so a flood
 * from elsewhere cannot take the carriers' way in. A connection whose peer stops reading
 * while it pipelines requests is closed above write_queue_max (issue 11 item 6).
 *
 * Connection errors reach conn_err_h from the loop, never from inside the send or close
 * that found them (issue 11 item 12): the handler fails client transactions, whose users
 * may send again, and must not run in the middle of the caller's own send.
 *
 * TLS: the net/tls engine (OpenSSL over memory BIOs), driven by uv_tcp reads and writes.
 *
 * Outbound (RFC 3261 §18.1.1): tl_sip_tport_connect() opens a TCP/TLS connection on
 * demand, or reuses an open one to the same (transport, address, TLS name); messages sent
 * before it is up are queued (capped) and flushed after connect / handshake. The TLS
 * client verifies the chain against the system store (+ an optional CA file) and the
 * configured name (SSL_set1_host, RFC 5922 §7.2; SNI for names, not IP literals); a
 * failure closes the connection and is reported through cfg.conn_err_h — never a
 * fallback to plain TCP (a downgrade an attacker on the path would love).
 *
 * No per-packet malloc on receive: datagrams and stream reads land in one static scratch
 * buffer (one loop thread), and stream bytes are copied into the connection's buffer
 * before anything is delivered. Sends try the socket synchronously first and copy only
 * what the kernel did not take. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <uv.h>

#include "core/core.h"
#include "core/srckey.h"
#include "net/tls.h"
#include "net/guard.h"
#include "sip/stack.h"

struct conn {
    struct tl_sip_tport *tp;
    uv_tcp_t h;
    uv_timer_t idle;
    uint64_t id;
    uint32_t slot;
    int open_handles;
    bool tls, closing, draining;
    bool partial;      /* a message was started and is not complete */
    bool first_done;   /* a whole message arrived (until then: the first_msg_s deadline) */
    size_t src_slot;   /* inbound: its source's counter slot; SIZE_MAX: none */
    bool outbound, up; /* we connected (vs accepted); connected and handshaken */
    unsigned dialogs;  /* live dialogs whose signalling uses this connection */
    char *tls_name;    /* outbound TLS: the name verified (reuse key), else NULL */
    char *pend;        /* outbound: bytes queued until up */
    size_t pend_len;
    uv_connect_t creq;
    struct tl_tls *eng; /* TLS connections: the engine */
    char *buf;          /* stream plaintext, at most TL_SIP_MSG_MAX */
    size_t len, cap;
    struct tl_sip_frame fr;
    struct sockaddr_storage sa;
};

struct tl_sip_tport {
    struct tl_sip_tport_cfg cfg;
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t tcp, tls;
    bool udp_on, tcp_on, tls_on, stopping;
    int open_handles;
    struct tl_tls_ctx *ctx;
    struct tl_tls_ctx *cctx; /* TLS client, made on the first outbound TLS connection */
    struct conn **slots;
    uint32_t nconns, gen;
    struct tl_srccount src; /* inbound connections per source */
    /* connection errors waiting for the loop to report them */
    struct conn_err {
        uint64_t id;
        int err;
        char why[120];
        bool has_why;
    } * errq;
    size_t errq_n, errq_cap;
    uv_timer_t defer;
    bool defer_on;
};

static char scratch[TL_SIP_MSG_MAX + 1];
static char tls_plain[16384];

static void tport_maybe_free(struct tl_sip_tport *tp)
{
    if (tp->stopping && tp->open_handles == 0) {
        free(tp->slots);
        free(tp->errq);
        tl_srccount_free(&tp->src);
        tl_tls_ctx_free(tp->ctx);
        tl_tls_ctx_free(tp->cctx);
        free(tp);
    }
}

void tl_sip_peer_ip(const struct tl_sip_peer *peer, char *ip, size_t cap, uint16_t *port)
{
    if (peer->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)&peer->sa;
        uv_ip6_name(s6, ip, cap);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const void *)&peer->sa;
        uv_ip4_name(s4, ip, cap);
        *port = ntohs(s4->sin_port);
    }
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(scratch, TL_SIP_MSG_MAX);
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                     unsigned flags)
{
    struct tl_sip_tport *tp = h->data;
    if (nread <= 0 || !addr || (flags & UV_UDP_PARTIAL))
        return; /* a truncated datagram is over TL_SIP_MSG_MAX: drop it */
    struct tl_sip_peer peer = {.tp = TL_SIP_TP_UDP, .tpo = tp};
    memcpy(&peer.sa, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    /* RFC 5626 §4.4.1 STUN keep-alives and stray CRLFs carry no SIP message */
    if (nread <= 4 && (buf->base[0] == '\r' || buf->base[0] == '\n'))
        return;
    tp->cfg.recv_h(buf->base, (size_t)nread, false, &peer, tp->cfg.arg);
}

struct udp_req {
    uv_udp_send_t req;
    char data[];
};

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req);
}

static int udp_send(struct tl_sip_tport *tp, const struct tl_sip_peer *peer, const char *p,
                    size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r = uv_udp_try_send(&tp->udp, &b, 1, (const struct sockaddr *)&peer->sa);
    if (r >= 0)
        return 0;
    if (r != UV_EAGAIN)
        return EIO;
    struct udp_req *q = malloc(sizeof *q + n);
    if (!q)
        return ENOMEM;
    memcpy(q->data, p, n);
    b = uv_buf_init(q->data, (unsigned)n);
    if (uv_udp_send(&q->req, &tp->udp, &b, 1, (const struct sockaddr *)&peer->sa, udp_sent)) {
        free(q);
        return EIO;
    }
    return 0;
}

/* ---- streams ---- */

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->open_handles)
        return;
    struct tl_sip_tport *tp = c->tp;
    tl_tls_free(c->eng);
    free(c->buf);
    free(c->pend);
    free(c->tls_name);
    free(c);
    tp->open_handles--;
    tport_maybe_free(tp);
}

static void on_defer(uv_timer_t *t)
{
    struct tl_sip_tport *tp = t->data;
    /* the handler may close more connections (and queue more): take the queue first */
    while (tp->errq_n && !tp->stopping) {
        struct conn_err *q = tp->errq;
        size_t n = tp->errq_n;
        tp->errq = NULL;
        tp->errq_n = tp->errq_cap = 0;
        for (size_t i = 0; i < n && !tp->stopping; i++)
            if (tp->cfg.conn_err_h)
                tp->cfg.conn_err_h(q[i].id, q[i].err, q[i].has_why ? q[i].why : NULL, tp->cfg.arg);
        free(q);
    }
}

/* Reports a connection's end to conn_err_h on the next loop turn. */
static void report_err(struct tl_sip_tport *tp, uint64_t id, int err, const char *why)
{
    if (!tp->cfg.conn_err_h || tp->stopping || !tp->defer_on)
        return;
    if (tp->errq_n == tp->errq_cap) {
        size_t cap = tp->errq_cap ? tp->errq_cap * 2 : 8;
        struct conn_err *q = realloc(tp->errq, cap * sizeof *q);
        if (!q)
            return; /* the transactions fail at timer B/F instead */
        tp->errq = q;
        tp->errq_cap = cap;
    }
    struct conn_err *e = &tp->errq[tp->errq_n++];
    e->id = id;
    e->err = err;
    e->has_why = why != NULL;
    tl_strlcpy(e->why, why ? why : "", sizeof e->why);
    uv_timer_start(&tp->defer, on_defer, 0, 0);
}

static void conn_close(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = true;
    struct tl_sip_tport *tp = c->tp;
    tp->slots[c->slot] = NULL;
    tp->nconns--;
    tl_srccount_del(&tp->src, c->src_slot);
    c->src_slot = SIZE_MAX;
    if (why) {
        char ip[64];
        uint16_t port;
        struct tl_sip_peer p = {.sa = c->sa};
        tl_sip_peer_ip(&p, ip, sizeof ip, &port);
        /* a flood of connections closes as fast as it opens: limited */
        TL_LOG_LIMITED(TL_LOG_INFO, "sip", "conn.close", "tp=%s src=%s:%u reason=\"%s\"",
                       c->tls ? "tls" : "tcp", ip, port, why);
    }
    uv_close((uv_handle_t *)&c->idle, conn_closed);
    uv_close((uv_handle_t *)&c->h, conn_closed);
}

/* A connection ends with the errno the transactions on it fail with (§17.1.4: now rather
 * than at timer B/F): connect errors, TLS verification, or a reset. */
static void conn_fail(struct conn *c, int err, const char *why)
{
    if (c->closing)
        return;
    conn_close(c, why);
    report_err(c->tp, c->id, err, why);
}

static void conn_end(struct conn *c, const char *why)
{
    conn_fail(c, c->outbound && !c->up ? ECONNREFUSED : ECONNRESET, why);
}

struct stream_req {
    uv_write_t req;
    char data[];
};

static void stream_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* Raw bytes onto the socket, in order: queued writes must drain before try_write. */
static int raw_write(struct conn *c, const char *p, size_t n)
{
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->h);
    if (c->tp->cfg.write_queue_max && queued + n > c->tp->cfg.write_queue_max) {
        /* issue 11 item 6: a peer that sends requests and never reads our answers would
         * grow this queue without end; it is the peer's to drain, so it loses the
         * connection (a carrier's retransmission logic recovers on a new one) */
        conn_end(c, "write queue over sip_write_queue_kib");
        return ENOBUFS;
    }
    if (queued == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&c->h, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            return EIO;
        }
    }
    if (!n)
        return 0;
    struct stream_req *q = malloc(sizeof *q + n);
    if (!q)
        return ENOMEM;
    memcpy(q->data, p, n);
    uv_buf_t b = uv_buf_init(q->data, (unsigned)n);
    if (uv_write(&q->req, (uv_stream_t *)&c->h, &b, 1, stream_written)) {
        free(q);
        return EIO;
    }
    return 0;
}

static int tls_flush(struct conn *c)
{
    char out[16384];
    size_t n;
    int err = 0;
    while (!err && (n = tl_tls_pending(c->eng, out, sizeof out)) > 0)
        err = raw_write(c, out, n);
    return err;
}

#define PEND_MAX (4u * TL_SIP_MSG_MAX) /* queued before an outbound connection is up */

static int conn_write(struct conn *c, const char *p, size_t n)
{
    if (c->closing)
        return EPIPE;
    if (c->outbound && !c->up) {
        if (c->pend_len + n > PEND_MAX)
            return ENOBUFS;
        char *b = realloc(c->pend, c->pend_len + n);
        if (!b)
            return ENOMEM;
        memcpy(b + c->pend_len, p, n);
        c->pend = b;
        c->pend_len += n;
        return 0;
    }
    if (!c->tls)
        return raw_write(c, p, n);
    /* EAGAIN before the handshake: a server only answers requests, which follow it */
    int err = tl_tls_write(c->eng, p, n);
    return err ? err : tls_flush(c);
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
    (void)status;
    struct conn *c = req->data;
    free(req);
    conn_end(c, NULL);
}

/* Let queued writes (a 400 for a framing error) drain, then close. The connection stays in
 * its slot (so stop can close it) but takes no more reads or sends. */
static void conn_close_after_writes(struct conn *c, const char *why)
{
    char ip[64];
    uint16_t port;
    struct tl_sip_peer p = {.sa = c->sa};
    tl_sip_peer_ip(&p, ip, sizeof ip, &port);
    TL_LOG_LIMITED(TL_LOG_INFO, "sip", "conn.close", "tp=%s src=%s:%u reason=\"%s\"",
                   c->tls ? "tls" : "tcp", ip, port, why);
    uv_read_stop((uv_stream_t *)&c->h);
    c->draining = true;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->h, shutdown_done)) {
        free(req);
        conn_end(c, NULL);
        return;
    }
    req->data = c;
}

static void idle_restart(struct conn *c);

/* A connection that carries live dialogs is never closed for idleness: a call may be
 * silent in SIP for hours, and its BYE must still find a way back (RFC 3261 §18.2.2; the
 * carrier's proxy may accept no new connection from us, and TLS to an IP-literal
 * Record-Route rarely verifies). Instead, once it has been quiet for keepalive_s, we send
 * the RFC 5626 §3.5.1 double-CRLF ping, which keeps NATs and load balancers on the path
 * from dropping it (UAs ignore CRLFs between messages, RFC 3261 §7.5; RFC 5626 peers
 * answer with a single CRLF). A started message that never completes still closes it. */
static void on_idle(uv_timer_t *t)
{
    struct conn *c = t->data;
    if (c->dialogs && !c->len && c->up) {
        if (c->tp->cfg.keepalive_s) {
            int r = conn_write(c, "\r\n\r\n", 4);
            if (r) {
                conn_end(c, "keep-alive write failed");
                return;
            }
        }
        idle_restart(c);
        return;
    }
    if (!c->first_done && !c->outbound && c->tp->cfg.first_msg_s)
        conn_end(c, c->tls && !c->up ? "tls handshake not completed in time"
                                     : "no complete first message in time");
    else
        conn_end(c, c->len ? "message not completed in time" : "idle");
}

static void idle_restart(struct conn *c)
{
    struct tl_sip_tport_cfg *cfg = &c->tp->cfg;
    unsigned s = c->dialogs && cfg->keepalive_s ? cfg->keepalive_s : cfg->idle_s;
    if (!c->first_done && !c->outbound && cfg->first_msg_s && cfg->first_msg_s < s)
        s = cfg->first_msg_s; /* from the accept: handshake and first message together */
    uv_timer_start(&c->idle, on_idle, (uint64_t)s * 1000, 0);
}

/* Frames and delivers what the buffer holds. Returns false when the connection closed. */
static bool stream_process(struct conn *c)
{
    struct tl_sip_tport *tp = c->tp;
    size_t off = 0;
    struct tl_sip_peer peer = {
        .tp = c->tls ? TL_SIP_TP_TLS : TL_SIP_TP_TCP, .sa = c->sa, .conn = c->id, .tpo = tp};
    while (off < c->len) {
        int r = tl_sip_frame(&c->fr, c->buf + off, c->len - off);
        if (r == ENODATA)
            break;
        if (r) {
            /* unframeable: answer 400 if a header block is there, then close */
            bool hdr = c->fr.hdr_len > 0;
            if (hdr)
                tp->cfg.recv_h(c->buf + off, c->fr.hdr_len, true, &peer, tp->cfg.arg);
            conn_close_after_writes(c, r == E2BIG ? "message over the cap" : "framing error");
            return false;
        }
        size_t n = c->fr.len;
        if (c->fr.kind == TL_SIP_FRAME_PING)
            conn_write(c, "\r\n", 2); /* RFC 5626 §3.5.1: pong */
        else if (c->fr.kind == TL_SIP_FRAME_MSG) {
            if (!c->first_done) {
                c->first_done = true;
                c->partial = false;
                idle_restart(c); /* from now on the idle clock */
            }
            tp->cfg.recv_h(c->buf + off, n, false, &peer, tp->cfg.arg);
        }
        /* reset, not zeroed: it remembers a CRLF that ended the buffer, so a CRLFCRLF
         * ping split across two reads is still a ping (RFC 5626 §3.5.1) */
        tl_sip_frame_reset(&c->fr);
        off += n;
        if (c->closing || c->draining)
            return false;
    }
    if (off) {
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
        /* the framer rescans from zero after a move; it was reset above */
    }
    /* the clock restarts when idle or when a new message starts, not for each trickled
     * byte of one message; before the first message only the accept started it */
    if (c->first_done && (!c->len || !c->partial || off))
        idle_restart(c);
    c->partial = c->len > 0;
    return true;
}

static bool stream_append(struct conn *c, const char *p, size_t n)
{
    if (c->len + n > TL_SIP_MSG_MAX) {
        conn_end(c, "receive buffer over the cap");
        return false;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 4096;
        while (cap < c->len + n)
            cap *= 2;
        if (cap > TL_SIP_MSG_MAX)
            cap = TL_SIP_MSG_MAX;
        char *b = realloc(c->buf, cap);
        if (!b) {
            conn_end(c, "out of memory");
            return false;
        }
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, p, n);
    c->len += n;
    return true;
}

/* One read may carry many whole messages plus the start of the next (the kernel hands
 * over up to 64 KiB at once under load: a carrier's trunk multiplexes every call on one
 * connection). The cap is on ONE unfinished message, not on what a read brings, so feed
 * the buffer in slices that fit and frame after each. False when the connection closed. */
static bool stream_feed(struct conn *c, const char *p, size_t n)
{
    while (n) {
        size_t room = TL_SIP_MSG_MAX - c->len;
        if (room == 0) {
            conn_end(c, "message over the cap");
            return false;
        }
        size_t take = n < room ? n : room;
        if (!stream_append(c, p, take) || !stream_process(c))
            return false;
        p += take;
        n -= take;
    }
    return true;
}

static void stream_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(scratch, sizeof scratch);
}

/* An outbound connection is usable (connected; TLS: handshake done and verified):
 * the queued messages go out. False when it closed. */
static bool conn_up(struct conn *c)
{
    c->up = true;
    char *p = c->pend;
    size_t n = c->pend_len;
    c->pend = NULL;
    c->pend_len = 0;
    int err = n ? conn_write(c, p, n) : 0;
    free(p);
    if (err) {
        conn_fail(c, err, "write failed");
        return false;
    }
    return true;
}

/* A failed handshake, with the engine's reason ("no shared cipher", "wrong version number",
 * "tlsv1 alert unknown ca" when the peer refused our certificate), so that an operator can
 * tell a carrier that does not trust our certificate from a port scanner. Outbound, the
 * certificate verification result comes first: that is the usual cause. Inbound failures
 * are the server's business, logged here, never reported as a client (uac) error. */
static void tls_handshake_failed(struct conn *c)
{
    if (c->outbound) {
        conn_fail(c, EPROTO, tl_tls_why(c->eng));
        return;
    }
    char ip[64];
    uint16_t port;
    struct tl_sip_peer p = {.sa = c->sa};
    tl_sip_peer_ip(&p, ip, sizeof ip, &port);
    TL_LOG_LIMITED(TL_LOG_WARN, "sip", "tls.handshake_failed",
                   "side=server src=%s:%u reason=\"%s\"", ip, port, tl_tls_reason(c->eng));
    conn_end(c, NULL);
}

static void tls_input(struct conn *c, const char *p, size_t n)
{
    if (tl_tls_feed(c->eng, p, n)) {
        conn_end(c, "tls bio");
        return;
    }
    if (!tl_tls_done(c->eng)) {
        int r = tl_tls_handshake(c->eng);
        tls_flush(c);
        if (r == EAGAIN)
            return;
        if (r) {
            tls_handshake_failed(c);
            return;
        }
        if (c->outbound ? !conn_up(c) : !(c->up = true))
            return;
    }
    for (;;) {
        size_t got = 0;
        int r = tl_tls_read(c->eng, tls_plain, sizeof tls_plain, &got);
        if (r || !got) {
            tls_flush(c);
            if (r)
                conn_end(c, r == ECONNRESET ? NULL : "tls error");
            return;
        }
        if (!stream_feed(c, tls_plain, got))
            return;
    }
}

static void stream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* logged: a carrier's connection going away mid-call is what later decides where
         * our BYE goes (a new connection toward the route set) */
        conn_end(c, nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    if (c->closing || c->draining)
        return;
    if (c->tls) {
        tls_input(c, buf->base, (size_t)nread);
        return;
    }
    stream_feed(c, buf->base, (size_t)nread);
}

static void on_accept(uv_stream_t *srv, int status, bool tls)
{
    struct tl_sip_tport *tp = srv->data;
    if (status < 0 || tp->stopping)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->tp = tp;
    c->tls = tls;
    c->src_slot = SIZE_MAX;
    uv_tcp_init(tp->loop, &c->h);
    uv_timer_init(tp->loop, &c->idle);
    c->h.data = c->idle.data = c;
    c->open_handles = 2;
    tp->open_handles++;
    if (uv_accept(srv, (uv_stream_t *)&c->h)) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->idle, conn_closed);
        uv_close((uv_handle_t *)&c->h, conn_closed);
        return;
    }
    int len = sizeof c->sa;
    uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->sa, &len);
    const char *refused = NULL;
    const struct sockaddr *sa = (const struct sockaddr *)&c->sa;
    /* the reserved slots: only a source some number's trunk allows (issue 11 item 1). The
     * lookup runs only when the open slots are gone, not for every accept. */
    unsigned reserved = tp->cfg.reserved_conns < tp->cfg.max_conns / 2 ? tp->cfg.reserved_conns
                                                                       : tp->cfg.max_conns / 2;
    unsigned open_slots = tp->cfg.max_conns - reserved; /* at most half are reserved */
    /* the SIP edge carries every carrier: it gets the reserved slots and no per-source cap */
    bool edge = tl_net_guard_contains(tp->cfg.edge, sa);
    if (tp->nconns >= tp->cfg.max_conns)
        refused = "sip_max_connections reached";
    else if (tp->nconns >= open_slots && !edge &&
             !(tp->cfg.trusted_h && tp->cfg.trusted_h(sa, tp->cfg.trusted_arg)))
        refused = "only reserved slots left (sip_reserved_connections), source not trusted";
    c->src_slot = tl_srccount_slot(&tp->src, sa);
    if (!refused && !tl_srccount_add(&tp->src, c->src_slot, edge ? 0 : tp->cfg.max_conns_per_src))
        refused = "sip_max_connections_per_source reached";
    uint32_t slot = 0;
    while (!refused && slot < tp->cfg.max_conns && tp->slots[slot])
        slot++;
    if (refused) {
        char ip[64];
        uint16_t port;
        struct tl_sip_peer p = {.sa = c->sa};
        tl_sip_peer_ip(&p, ip, sizeof ip, &port);
        c->closing = true;
        c->src_slot = SIZE_MAX;
        TL_LOG_LIMITED(TL_LOG_WARN, "sip", "conn.refused", "src=%s reason=\"%s\" open=%u max=%u",
                       ip, refused, tp->nconns, tp->cfg.max_conns);
        uv_close((uv_handle_t *)&c->idle, conn_closed);
        uv_close((uv_handle_t *)&c->h, conn_closed);
        return;
    }
    c->slot = slot;
    c->id = ((uint64_t)++tp->gen << 32) | slot;
    tp->slots[slot] = c;
    tp->nconns++;
    if (tls && tl_tls_server(&c->eng, tp->ctx)) {
        conn_close(c, "out of memory");
        return;
    }
    c->up = !tls; /* TLS: once the handshake is done */
    uv_tcp_nodelay(&c->h, 1);
    idle_restart(c);
    uv_read_start((uv_stream_t *)&c->h, stream_alloc, stream_read);
}

static void on_tcp_accept(uv_stream_t *srv, int status)
{
    on_accept(srv, status, false);
}

static void on_tls_accept(uv_stream_t *srv, int status)
{
    on_accept(srv, status, true);
}

static struct conn *conn_find(struct tl_sip_tport *tp, uint64_t id)
{
    uint32_t slot = (uint32_t)id;
    if (slot >= tp->cfg.max_conns)
        return NULL;
    struct conn *c = tp->slots[slot];
    return c && c->id == id && !c->closing && !c->draining ? c : NULL;
}

int tl_sip_tport_send(struct tl_sip_tport *tp, const struct tl_sip_peer *peer, const char *buf,
                      size_t len)
{
    if (!tp || tp->stopping)
        return EPIPE;
    if (peer->tp == TL_SIP_TP_UDP)
        return tp->udp_on ? udp_send(tp, peer, buf, len) : EPIPE;
    struct conn *c = conn_find(tp, peer->conn);
    if (!c)
        return ENOTCONN; /* TODO(§18.2.2): open a new connection to the Via sent-by */
    int r = conn_write(c, buf, len);
    if (r)
        conn_end(c, "write failed");
    return r;
}

/* ---- outbound connections ---- */

static int client_ctx(struct tl_sip_tport *tp)
{
    if (tp->cctx)
        return 0;
    int r = tl_tls_ctx_client(&tp->cctx, tp->cfg.ca_file);
    if (r == EINVAL)
        tl_warnl("sip", "tls.ca", "reason=\"cannot load sip_tls_ca_file\"");
    return r;
}

static bool sa_eq(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return false;
    if (b->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static void on_connected(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        char why[120];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        conn_fail(c, -status, why); /* libuv errors are negated errnos on Unix */
        return;
    }
    uv_tcp_nodelay(&c->h, 1);
    uv_read_start((uv_stream_t *)&c->h, stream_alloc, stream_read);
    if (!c->tls) {
        conn_up(c);
        return;
    }
    tl_tls_handshake(c->eng); /* ClientHello */
    if (tls_flush(c))
        conn_fail(c, EIO, "write failed");
}

int tl_sip_tport_connect(struct tl_sip_tport *tp, enum tl_sip_transport kind,
                         const struct sockaddr *sa, const char *tls_name, uint64_t *conn)
{
    bool tls = kind == TL_SIP_TP_TLS;
    if (!tp || tp->stopping)
        return EPIPE;
    if ((kind != TL_SIP_TP_TCP && !tls) || (tls && (!tls_name || !tls_name[0])))
        return EINVAL;
    uint32_t slot = UINT32_MAX;
    for (uint32_t i = 0; i < tp->cfg.max_conns; i++) {
        struct conn *c = tp->slots[i];
        if (!c) {
            if (slot == UINT32_MAX)
                slot = i;
            continue;
        }
        if (c->outbound && c->tls == tls && !c->closing && !c->draining && sa_eq(&c->sa, sa) &&
            (!tls || !strcmp(c->tls_name, tls_name))) {
            *conn = c->id;
            return 0;
        }
    }
    if (slot == UINT32_MAX)
        return EMFILE;
    int r;
    if (tls && (r = client_ctx(tp)))
        return r;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->tp = tp;
    c->tls = tls;
    c->outbound = true;
    c->src_slot = SIZE_MAX; /* ours: not a source's */
    memcpy(&c->sa, sa,
           sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (tls) {
        /* RFC 5922 §7.2: the name the operator configured, never the SRV target (tls.h) */
        if (!(c->tls_name = strdup(tls_name))) {
            free(c);
            return ENOMEM;
        }
        if ((r = tl_tls_client(&c->eng, tp->cctx, tls_name))) {
            free(c->tls_name);
            free(c);
            return r;
        }
    }
    uv_tcp_init(tp->loop, &c->h);
    uv_timer_init(tp->loop, &c->idle);
    c->h.data = c->idle.data = c->creq.data = c;
    c->open_handles = 2;
    tp->open_handles++;
    c->slot = slot;
    c->id = ((uint64_t)++tp->gen << 32) | slot;
    tp->slots[slot] = c;
    tp->nconns++;
    if ((r = uv_tcp_connect(&c->creq, &c->h, sa, on_connected))) {
        c->closing = true;
        tp->slots[slot] = NULL;
        tp->nconns--;
        uv_close((uv_handle_t *)&c->idle, conn_closed);
        uv_close((uv_handle_t *)&c->h, conn_closed);
        return -r;
    }
    idle_restart(c); /* also bounds the connect and the handshake */
    *conn = c->id;
    return 0;
}

int tl_sip_tport_conn_ref(struct tl_sip_tport *tp, uint64_t conn, int delta)
{
    struct conn *c = tp && !tp->stopping ? conn_find(tp, conn) : NULL;
    if (!c)
        return ENOTCONN;
    if (delta < 0 && c->dialogs < (unsigned)-delta)
        c->dialogs = 0;
    else
        c->dialogs += (unsigned)delta;
    if (!c->partial)
        idle_restart(c); /* the clock that applies changes with the dialog count */
    return 0;
}

int tl_sip_tport_remote(struct tl_sip_tport *tp, uint64_t conn, enum tl_sip_transport *kind,
                        struct sockaddr_storage *out)
{
    struct conn *c = tp && !tp->stopping ? conn_find(tp, conn) : NULL;
    if (!c)
        return ENOTCONN;
    *kind = c->tls ? TL_SIP_TP_TLS : TL_SIP_TP_TCP;
    memcpy(out, &c->sa, sizeof c->sa);
    return 0;
}

int tl_sip_tport_local(struct tl_sip_tport *tp, const struct tl_sip_peer *peer,
                       struct sockaddr_storage *out)
{
    int len = sizeof *out;
    memset(out, 0, sizeof *out);
    if (peer->tp == TL_SIP_TP_UDP)
        return tp->udp_on && !uv_udp_getsockname(&tp->udp, (struct sockaddr *)out, &len) ? 0
                                                                                         : ENOTCONN;
    struct conn *c = conn_find(tp, peer->conn);
    if (!c || uv_tcp_getsockname(&c->h, (struct sockaddr *)out, &len))
        return ENOTCONN;
    return 0;
}

unsigned tl_sip_tport_conns_src(struct tl_sip_tport *tp, const struct sockaddr *sa)
{
    return tl_srccount_get(&tp->src, tl_srccount_slot(&tp->src, sa));
}

static int make_addr(const char *host, int port, struct sockaddr_storage *sa)
{
    if (strchr(host, ':'))
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) ? EINVAL : 0;
    return uv_ip4_addr(host, port, (struct sockaddr_in *)sa) ? EINVAL : 0;
}

static int tls_ctx(struct tl_sip_tport *tp)
{
    return tl_tls_ctx_server(&tp->ctx, tp->cfg.cert, tp->cfg.ckey);
}

/* A carrier's bursts (a PSTN outage ending, a campaign starting) arrive faster than one
 * loop iteration drains them: the kernel's default 208 KiB receive buffer overflowed at
 * 5,000 cps in bench/sip while the daemon was half idle. Ask for 4 MiB; as root
 * SO_RCVBUFFORCE passes net.core.rmem_max, otherwise the kernel clamps it. */
#define TL_SIP_UDP_RCVBUF (4 * 1024 * 1024)

static int udp_open(struct tl_sip_tport *tp, struct uv_loop_s *loop,
                    const struct sockaddr_storage *sa)
{
    uv_udp_init(loop, &tp->udp);
    tp->udp.data = tp;
    tp->udp_on = true;
    tp->open_handles++;
    if (uv_udp_bind(&tp->udp, (const struct sockaddr *)sa, 0) ||
        uv_udp_recv_start(&tp->udp, udp_alloc, udp_recv))
        return EADDRINUSE;
    uv_os_fd_t fd;
    int want = TL_SIP_UDP_RCVBUF;
    if (uv_fileno((uv_handle_t *)&tp->udp, &fd) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    return 0;
}

int tl_sip_tport_start(struct tl_sip_tport **tpp, uv_loop_t *loop,
                       const struct tl_sip_tport_cfg *cfg)
{
    struct sockaddr_storage sa;
    int r = 0;
    struct tl_sip_tport *tp = calloc(1, sizeof *tp);
    if (!tp)
        return ENOMEM;
    tp->cfg = *cfg;
    tp->loop = loop;
    if (!tp->cfg.max_conns)
        tp->cfg.max_conns = 1;
    tp->slots = calloc(tp->cfg.max_conns, sizeof *tp->slots);
    if (!tp->slots || tl_srccount_init(&tp->src, TL_SIP_SRC_SLOTS)) {
        r = ENOMEM;
        goto out;
    }
    uv_timer_init(loop, &tp->defer);
    tp->defer.data = tp;
    tp->defer_on = true;
    tp->open_handles++;
    if (cfg->ephemeral) {
        /* a client: one UDP socket on a port the OS picks, responses come back to it */
        if ((r = make_addr(cfg->listen, 0, &sa)))
            goto out;
        if ((r = udp_open(tp, loop, &sa)))
            goto out;
    }
    if (cfg->tcp_port > 0) {
        if ((r = make_addr(cfg->listen, cfg->tcp_port, &sa)))
            goto out;
        uv_tcp_init(loop, &tp->tcp);
        tp->tcp.data = tp;
        tp->tcp_on = true;
        tp->open_handles++;
        if (uv_tcp_bind(&tp->tcp, (struct sockaddr *)&sa, 0) ||
            uv_listen((uv_stream_t *)&tp->tcp, 128, on_tcp_accept)) {
            r = EADDRINUSE;
            goto out;
        }
        if (cfg->udp) {
            if ((r = udp_open(tp, loop, &sa)))
                goto out;
        }
    }
    if (cfg->tls_port > 0) {
        if ((r = make_addr(cfg->listen, cfg->tls_port, &sa)) || (r = tls_ctx(tp)))
            goto out;
        uv_tcp_init(loop, &tp->tls);
        tp->tls.data = tp;
        tp->tls_on = true;
        tp->open_handles++;
        if (uv_tcp_bind(&tp->tls, (struct sockaddr *)&sa, 0) ||
            uv_listen((uv_stream_t *)&tp->tls, 128, on_tls_accept)) {
            r = EADDRINUSE;
            goto out;
        }
    }
out:
    if (r) {
        tl_sip_tport_stop(tp);
        return r;
    }
    *tpp = tp;
    return 0;
}

static void listener_closed(uv_handle_t *h)
{
    struct tl_sip_tport *tp = h->data;
    tp->open_handles--;
    tport_maybe_free(tp);
}

void tl_sip_tport_stop(struct tl_sip_tport *tp)
{
    if (!tp)
        return;
    tp->stopping = true;
    for (uint32_t i = 0; tp->slots && i < tp->cfg.max_conns; i++)
        if (tp->slots[i])
            conn_close(tp->slots[i], NULL);
    if (tp->defer_on) {
        tp->defer_on = false;
        uv_close((uv_handle_t *)&tp->defer, listener_closed);
    }
    if (tp->udp_on)
        uv_close((uv_handle_t *)&tp->udp, listener_closed);
    if (tp->tcp_on)
        uv_close((uv_handle_t *)&tp->tcp, listener_closed);
    if (tp->tls_on)
        uv_close((uv_handle_t *)&tp->tls, listener_closed);
    tport_maybe_free(tp); /* nothing was open: free now */
}
