/* net/stream: see stream.h. Driven like sip/transport.c drives TLS: socket bytes go into
 * the net/tls engine, records come out of it onto the socket; writes try the socket
 * synchronously first and copy only what the kernel did not take. */
#include "net/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include <uv.h>

#include "net/tls.h"

enum st {
    ST_CONNECTING, /* TCP connect in flight */
    ST_HANDSHAKE,  /* TLS handshake */
    ST_UP,         /* on_connect(0) was called */
    ST_LINGER,     /* closed by the owner, unsent bytes still going out */
    ST_CLOSED,     /* handles closing; memory goes with the last one */
};

struct tl_net_stream {
    uv_tcp_t h;
    uv_timer_t tm; /* connect deadline, then the linger deadline */
    uv_connect_t creq;
    int open_handles;
    enum st st;
    bool tls;
    struct tl_tls *eng;
    struct tl_net_stream_cb cb;
    void *arg;
    long verify;
};

struct wreq {
    uv_write_t req;
    struct tl_net_stream *s;
    char data[];
};

/* One loop thread (stream.h): reads land here, TLS plaintext and records are staged here.
 * Each is used only within one call from the loop, never across a callback that could
 * come back in (on_read gets tls_plain, but nothing reads while it runs). */
static char rbuf[65536];
static char tls_plain[16384];
static char tls_out[65536];

static void handle_closed(uv_handle_t *h)
{
    struct tl_net_stream *s = h->data;
    if (--s->open_handles)
        return;
    tl_tls_free(s->eng);
    free(s);
}

/* Closes the handles (pending writes are cancelled); no callback after this. */
static void shut(struct tl_net_stream *s)
{
    if (s->st == ST_CLOSED)
        return;
    s->st = ST_CLOSED;
    uv_close((uv_handle_t *)&s->tm, handle_closed);
    uv_close((uv_handle_t *)&s->h, handle_closed);
}

/* The attempt failed: tell the owner once, then go. */
static void fail_connect(struct tl_net_stream *s, int err, const char *why)
{
    struct tl_net_stream_cb cb = s->cb;
    shut(s);
    cb.on_connect(s, err, why, s->arg);
}

/* The connection ended after it was up: tell the owner once, then go. */
static void end(struct tl_net_stream *s, int err, const char *why)
{
    if (s->st == ST_LINGER) {
        shut(s);
        return;
    }
    shut(s);
    s->cb.on_end(s, err, why, s->arg);
}

static void written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct tl_net_stream *s = w->s;
    free(w);
    if (status == UV_ECANCELED || s->st == ST_CLOSED)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof why, "write: %s", uv_strerror(status));
        end(s, -status, why);
        return;
    }
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->h))
        return;
    if (s->st == ST_LINGER)
        shut(s); /* everything went out: the kernel sends it and the FIN */
    else if (s->st == ST_UP && s->cb.on_drain)
        s->cb.on_drain(s, s->arg);
}

/* Raw bytes onto the socket, in order: queued writes must drain before try_write. */
static int raw_write(struct tl_net_stream *s, const char *p, size_t n)
{
    if (uv_stream_get_write_queue_size((uv_stream_t *)&s->h) == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int r = uv_try_write((uv_stream_t *)&s->h, &b, 1);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r != UV_EAGAIN) {
            return EIO;
        }
    }
    if (!n)
        return 0;
    struct wreq *w = malloc(sizeof *w + n);
    if (!w)
        return ENOMEM;
    w->s = s;
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&s->h, &b, 1, written)) {
        free(w);
        return EIO;
    }
    return 0;
}

/* The engine's pending records onto the socket, batched into as few writes as fit. */
static int tls_flush(struct tl_net_stream *s)
{
    size_t have = 0, got;
    int err = 0;
    while (!err && (got = tl_tls_pending(s->eng, tls_out + have, sizeof tls_out - have)) > 0) {
        have += got;
        if (have == sizeof tls_out) {
            err = raw_write(s, tls_out, have);
            have = 0;
        }
    }
    if (!err && have)
        err = raw_write(s, tls_out, have);
    return err;
}

static void up(struct tl_net_stream *s)
{
    uv_timer_stop(&s->tm);
    s->st = ST_UP;
    s->cb.on_connect(s, 0, NULL, s->arg);
}

/* Plaintext out of the engine to the owner until it runs dry or someone closed. */
static void tls_deliver(struct tl_net_stream *s)
{
    while (s->st == ST_UP) {
        size_t got = 0;
        int r = tl_tls_read(s->eng, tls_plain, sizeof tls_plain, &got);
        if (r) {
            tls_flush(s); /* an alert of ours, if any */
            end(s, r == ECONNRESET ? 0 : EPROTO,
                r == ECONNRESET ? "closed by peer (close_notify)" : "tls error");
            return;
        }
        if (!got)
            break;
        s->cb.on_read(s, tls_plain, got, s->arg);
    }
    if (s->st == ST_UP && tls_flush(s)) /* a key update may want an answer */
        end(s, EIO, "write failed");
}

static void tls_input(struct tl_net_stream *s, const char *p, size_t n)
{
    if (tl_tls_feed(s->eng, p, n)) {
        if (s->st == ST_HANDSHAKE)
            fail_connect(s, EIO, "tls: cannot buffer input");
        else
            end(s, EIO, "tls: cannot buffer input");
        return;
    }
    if (s->st == ST_HANDSHAKE) {
        int r = tl_tls_handshake(s->eng);
        int w = tls_flush(s);
        if (r == EAGAIN && !w)
            return;
        if (r == EAGAIN || (!r && w)) {
            fail_connect(s, EIO, "write failed");
            return;
        }
        if (r) {
            s->verify = tl_tls_verify_result(s->eng);
            fail_connect(s, EPROTO, tl_tls_why(s->eng));
            return;
        }
        up(s);
    }
    tls_deliver(s);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
    struct tl_net_stream *s = h->data;
    if (nread == 0 || s->st == ST_CLOSED)
        return;
    if (nread < 0) {
        if (s->st == ST_LINGER) {
            shut(s);
        } else if (s->st == ST_HANDSHAKE) {
            fail_connect(s, nread == UV_EOF ? ECONNRESET : (int)-nread,
                         nread == UV_EOF ? "connection closed during the TLS handshake"
                                         : uv_strerror((int)nread));
        } else {
            char why[96];
            snprintf(why, sizeof why, "%s",
                     nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
            end(s, nread == UV_EOF ? 0 : (int)-nread, why);
        }
        return;
    }
    if (s->st == ST_LINGER)
        return; /* read only so that the close is a FIN, not a reset */
    if (s->tls)
        tls_input(s, buf->base, (size_t)nread);
    else
        s->cb.on_read(s, buf->base, (size_t)nread, s->arg);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct tl_net_stream *s = req->data;
    if (s->st != ST_CONNECTING)
        return;
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", uv_strerror(status));
        fail_connect(s, -status, why); /* libuv errors are negated errnos on Unix */
        return;
    }
    uv_tcp_nodelay(&s->h, 1);
    /* A fixed kernel send buffer (autotuning off): a peer that stops reading then shows
     * up as unsent bytes in our own, capped queue within seconds, instead of the kernel
     * quietly holding megabytes per connection (tcp_wmem's maximum) for a dead reader.
     * 64 KiB is seconds of an agent's frames. */
    uv_os_fd_t fd;
    int sndbuf = 64 * 1024;
    if (uv_fileno((uv_handle_t *)&s->h, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (uv_read_start((uv_stream_t *)&s->h, on_alloc, on_read)) {
        fail_connect(s, EIO, "cannot read from the socket");
        return;
    }
    if (s->cb.on_tcp) {
        s->cb.on_tcp(s, s->arg);
        if (s->st != ST_CONNECTING)
            return; /* closed by the owner */
    }
    if (!s->tls) {
        up(s);
        return;
    }
    s->st = ST_HANDSHAKE;
    tl_tls_handshake(s->eng); /* ClientHello */
    if (tls_flush(s))
        fail_connect(s, EIO, "write failed");
}

static void on_timer(uv_timer_t *t)
{
    struct tl_net_stream *s = t->data;
    if (s->st == ST_LINGER) {
        shut(s);
        return;
    }
    if (s->st == ST_CONNECTING || s->st == ST_HANDSHAKE)
        fail_connect(s, ETIMEDOUT,
                     s->st == ST_CONNECTING ? "connect: timed out" : "tls handshake: timed out");
}

int tl_net_stream_connect(struct tl_net_stream **sp, uv_loop_t *loop,
                          const struct tl_net_stream_cfg *cfg, const struct tl_net_stream_cb *cb,
                          void *arg)
{
    if (!sp || !loop || !cfg || !cfg->sa || !cb || !cb->on_connect || !cb->on_read || !cb->on_end ||
        (cfg->sa->sa_family != AF_INET && cfg->sa->sa_family != AF_INET6))
        return EINVAL;
    struct tl_net_stream *s = calloc(1, sizeof *s);
    if (!s)
        return ENOMEM;
    s->cb = *cb;
    s->arg = arg;
    s->tls = cfg->tls != NULL;
    int r;
    if (s->tls && (r = tl_tls_client(&s->eng, cfg->tls, cfg->tls_name))) {
        free(s);
        return r;
    }
    uv_tcp_init(loop, &s->h);
    uv_timer_init(loop, &s->tm);
    s->h.data = s->tm.data = s->creq.data = s;
    s->open_handles = 2;
    if ((r = uv_tcp_connect(&s->creq, &s->h, cfg->sa, on_connected))) {
        shut(s);
        return -r;
    }
    if (cfg->timeout_ms)
        uv_timer_start(&s->tm, on_timer, cfg->timeout_ms, 0);
    *sp = s;
    return 0;
}

int tl_net_stream_write(struct tl_net_stream *s, const void *p, size_t n)
{
    if (!s || s->st != ST_UP)
        return ENOTCONN;
    if (!n)
        return 0;
    if (!s->tls)
        return raw_write(s, p, n);
    int err = tl_tls_write(s->eng, p, n);
    return err ? err : tls_flush(s);
}

size_t tl_net_stream_unsent(const struct tl_net_stream *s)
{
    return s ? uv_stream_get_write_queue_size((const uv_stream_t *)&s->h) : 0;
}

long tl_net_stream_tls_verify(const struct tl_net_stream *s)
{
    return s ? s->verify : 0;
}

void tl_net_stream_close(struct tl_net_stream *s, unsigned linger_ms)
{
    if (!s || s->st == ST_CLOSED || s->st == ST_LINGER)
        return;
    if (s->st != ST_UP || !linger_ms || !tl_net_stream_unsent(s)) {
        shut(s);
        return;
    }
    s->st = ST_LINGER;
    uv_timer_start(&s->tm, on_timer, linger_ms, 0);
}
