/* net/tls: TLS (OpenSSL 3) as a byte transformer over memory BIOs, for connections that run
 * on a libuv loop. The owner moves bytes between its socket and the engine: network bytes
 * in with tl_tls_feed(), records out with tl_tls_pending(); plaintext with tl_tls_read()
 * and tl_tls_write(). No sockets, no threads, no callbacks: the SIP transports and the
 * WebSocket client (agents) share it.
 *
 * Policy (one place for every TLS connection the daemon makes or takes): TLS >= 1.2,
 * renegotiation off (a CPU-exhaustion lever); clients verify the peer's chain against the
 * system store plus an optional CA file and its name against the one the operator
 * configured (SSL_set1_host, RFC 5922 §7.2, RFC 6125; an IP literal against iPAddress
 * SANs), send SNI for names (RFC 6066 §3: never for IP literals), and never fall back to
 * plain text.
 *
 * Errors follow core.h: 0 or a positive errno. */
#ifndef TL_NET_TLS_H
#define TL_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct tl_tls_ctx;
struct tl_tls;

/* A server context with the PEM certificate chain and key. 0, ENOMEM, EINVAL (unreadable
 * or mismatched). */
int tl_tls_ctx_server(struct tl_tls_ctx **cp, const char *cert, const char *key);
/* A client context: the system trust store, plus ca_file (PEM) when given. 0, ENOMEM,
 * EINVAL (ca_file unreadable). A host without a system store still gets a context (and
 * a warning in the log): then only ca_file is trusted. */
int tl_tls_ctx_client(struct tl_tls_ctx **cp, const char *ca_file);
void tl_tls_ctx_free(struct tl_tls_ctx *c);

/* One connection's engine. name (client): what the certificate must name, sent as SNI
 * unless it is an IP literal. 0, ENOMEM, EINVAL (empty or unusable name). */
int tl_tls_server(struct tl_tls **tp, struct tl_tls_ctx *c);
int tl_tls_client(struct tl_tls **tp, struct tl_tls_ctx *c, const char *name);
void tl_tls_free(struct tl_tls *t); /* NULL is a no-op */

/* Network bytes from the socket. 0 or EIO. */
int tl_tls_feed(struct tl_tls *t, const char *p, size_t n);
/* Runs the handshake as far as the bytes fed allow (a client's first call writes its
 * ClientHello): 0 once done (also when it was done before), EAGAIN while it needs more
 * bytes, EPROTO when it failed — tl_tls_why() says why. Flush tl_tls_pending() after. */
int tl_tls_handshake(struct tl_tls *t);
bool tl_tls_done(const struct tl_tls *t); /* the handshake completed */
/* Plaintext that arrived: 0 with *got bytes (0: nothing more until more is fed),
 * ECONNRESET after the peer's close_notify, EPROTO on a TLS error. */
int tl_tls_read(struct tl_tls *t, char *buf, size_t cap, size_t *got);
/* Plaintext to send, all of it (records go to the pending output). 0, EAGAIN (handshake
 * not done), EIO. */
int tl_tls_write(struct tl_tls *t, const char *p, size_t n);
/* Copies up to cap bytes of pending network output into buf; returns the count, 0 when
 * nothing is pending. Call until it returns 0. */
size_t tl_tls_pending(struct tl_tls *t, char *buf, size_t cap);
/* Why the handshake failed, for a person: the certificate verification error for a
 * client ("tls certificate verification failed: self-signed certificate"), else OpenSSL's
 * reason ("tls handshake failed: no shared cipher", "…: tlsv1 alert unknown ca" when the
 * peer refused our certificate). Valid until the engine is freed. */
const char *tl_tls_why(const struct tl_tls *t);
/* The short OpenSSL reason alone ("http request", "wrong version number"), or "unknown". */
const char *tl_tls_reason(const struct tl_tls *t);
/* A client's certificate verification result (X509_V_OK, X509_V_ERR_HOSTNAME_MISMATCH,
 * X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, …), for callers that word the failure for a
 * person themselves (agent/ws.c); X509_V_OK for a server or when nothing failed. */
long tl_tls_verify_result(const struct tl_tls *t);

#endif
