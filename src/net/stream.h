/* net/stream: one outbound TCP connection on a libuv loop, plain or TLS (net/tls.h: the
 * chain verified against the context's trust, the name checked and sent as SNI), for
 * clients that are not SIP: the WebSocket client of agents (agent/ws.h), and later
 * webhooks and benchmark peers. It moves bytes; framing is the caller's business.
 *
 *   connect   to one address (the caller resolved it and ran the guard, net/guard.h),
 *             with a deadline covering TCP and the TLS handshake;
 *   read      plaintext through on_read, as it arrives (no buffering here);
 *   write     always takes everything: what the kernel does not take at once is copied
 *             and queued, and tl_net_stream_unsent() says how much is waiting, so the
 *             caller can cap it (a peer that never reads must not grow our memory);
 *             on_drain says when the queue emptied again;
 *   close     now, or after the queued bytes went out (bounded by a linger time).
 *
 * Contract: tl_net_stream_connect() returns 0 and then on_connect is called exactly once
 * from the loop (never from inside the call), or it returns an errno and nothing is
 * called. After on_connect with an error, or on_end, the stream is gone. After
 * tl_net_stream_close() nothing is called any more and the handle is gone. Callbacks may
 * call tl_net_stream_write() and tl_net_stream_close() on their own stream.
 *
 * Loop thread only (reads land in one static buffer). Errors follow core.h. */
#ifndef TL_NET_STREAM_H
#define TL_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct uv_loop_s;
struct tl_tls_ctx;
struct tl_net_stream;

struct tl_net_stream_cb {
    /* err 0: connected (TLS: handshake done, peer verified). Otherwise the attempt failed
     * and the stream is gone: ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT (no
     * connection or handshake within timeout_ms), ECONNRESET (closed during the TLS
     * handshake), EPROTO (TLS failed: tl_net_stream_tls_verify() tells a certificate
     * problem from others), …; why: a short sentence for logs ("connect: connection
     * refused", "tls certificate verification failed: self-signed certificate"). */
    void (*on_connect)(struct tl_net_stream *s, int err, const char *why, void *arg);
    /* optional: TCP is up (TLS: the handshake starts now), for progress reports; comes
     * before on_connect(0) */
    void (*on_tcp)(struct tl_net_stream *s, void *arg);
    /* plaintext that arrived; p is valid during the call only */
    void (*on_read)(struct tl_net_stream *s, const char *p, size_t n, void *arg);
    /* every queued byte was taken by the kernel (called only after a write queued some) */
    void (*on_drain)(struct tl_net_stream *s, void *arg); /* may be NULL */
    /* the connection ended after on_connect(0); the stream is gone. err 0: the peer's
     * orderly end (FIN, TLS close_notify); else ECONNRESET, EPIPE, EPROTO (a TLS error),
     * … with why */
    void (*on_end)(struct tl_net_stream *s, int err, const char *why, void *arg);
};

struct tl_net_stream_cfg {
    const struct sockaddr *sa; /* AF_INET or AF_INET6, with the port */
    unsigned timeout_ms;       /* TCP connect + TLS handshake; 0: no deadline */
    struct tl_tls_ctx *tls;    /* a client context (borrowed), or NULL for plain TCP */
    const char *tls_name;      /* TLS: the name to verify, SNI unless an IP literal */
};

/* Starts connecting. 0, EINVAL (bad cfg, unusable TLS name), ENOMEM, or the socket's
 * immediate error (ENETUNREACH, EAFNOSUPPORT, …: nothing is called then). */
int tl_net_stream_connect(struct tl_net_stream **sp, struct uv_loop_s *loop,
                          const struct tl_net_stream_cfg *cfg, const struct tl_net_stream_cb *cb,
                          void *arg);
/* Sends all of p (TLS: encrypted). 0, ENOTCONN (not connected yet, or closing), EIO,
 * ENOMEM. The stream stays up after an error: the caller closes it. */
int tl_net_stream_write(struct tl_net_stream *s, const void *p, size_t n);
/* Bytes written but not yet taken by the kernel (TLS: record bytes). */
size_t tl_net_stream_unsent(const struct tl_net_stream *s);
/* Inside on_connect with EPROTO: the X509 verification result (X509_V_ERR_…, 0 when the
 * handshake failed for another reason). */
long tl_net_stream_tls_verify(const struct tl_net_stream *s);
/* Closes. linger_ms 0: now (unsent bytes are dropped). Otherwise the unsent bytes are
 * still sent, for at most linger_ms, before the socket closes; what arrives meanwhile is
 * read and dropped (unread data would make the kernel answer with a reset). No callback
 * is called after this. NULL is a no-op. */
void tl_net_stream_close(struct tl_net_stream *s, unsigned linger_ms);

#endif
