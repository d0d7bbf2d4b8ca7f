/* agent/ws: a WebSocket client (RFC 6455) on the loop, for agents: DNS through c-ares
 * (net/resolve.h, the port given: A/AAAA only), the address guard (net/guard.h) on every
 * resolved address right before connecting, TCP, TLS with certificate and hostname
 * verification and SNI (net/tls.h), an HTTP/1.1 Upgrade whose Sec-WebSocket-Accept is
 * checked, then frames through wslay (no framing code of our own).
 *
 * Untrusted input, capped before it drives an allocation: the upgrade response (status
 * line and headers, at most TL_WS_HANDSHAKE_MAX bytes), every message (cfg.max_message;
 * above it the connection is closed with 1009 "message too big"), fragments (a message
 * may not be assembled past the cap either). Binary messages are delivered like text
 * (on_message's binary flag); the agent layer decides what to do with them.
 *
 * Back-pressure: bytes waiting for the socket (frames not yet written) are capped at
 * cfg.max_send_queue. tl_ws_send() refuses what would pass the cap with ENOBUFS, and the
 * caller decides (the agent bridge ends the call: a bot that never reads must not grow
 * our memory).
 *
 * Liveness: a ping every cfg.ping_interval_ms while open; no pong (or any frame) within
 * cfg.pong_timeout_ms after it ends the connection (TL_WS_FAIL_PING, "no pong"; or
 * TL_WS_FAIL_SENDQ when our bytes, the ping among them, are still unsent then: the peer
 * stopped reading). Pings from the peer are answered (wslay).
 *
 * Contract:
 *  - tl_ws_connect() returns 0 and then on_open or on_close is called later, from the
 *    loop, never from inside the call; or it returns an errno and nothing is called.
 *  - on_close is called exactly once per connection that was started, whatever ends it
 *    (a failure before open, the peer's close, a protocol error, tl_ws_close()), unless
 *    tl_ws_abort() came first. After on_close returns the handle is gone: drop it.
 *    on_close always comes from the loop, never from inside a tl_ws_* call (a failure
 *    found inside tl_ws_send() is reported on the next loop iteration).
 *  - Callbacks may call tl_ws_send/close/abort on their own handle.
 *
 * Loop thread only. Errors follow core.h. */
#ifndef TL_AGENT_WS_H
#define TL_AGENT_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/guard.h"

#define TL_WS_HANDSHAKE_MAX 8192         /* the server's whole upgrade response */
#define TL_WS_MESSAGE_MAX   (1u << 20)   /* default cap of one message: 1 MiB */
#define TL_WS_SENDQ_MAX     (512u << 10) /* default cap of unsent bytes: 512 KiB */
#define TL_WS_HEADERS_MAX   16           /* extra upgrade headers */
#define TL_WS_WHY_MAX       256

struct uv_loop_s;
struct tl_net_resolver;
struct tl_tls_ctx;
struct tl_ws;

/* What went wrong, for the agent_unreachable event and its hint. */
enum tl_ws_fail {
    TL_WS_OK = 0,
    TL_WS_FAIL_URL,       /* not a ws:// or wss:// URL we can use */
    TL_WS_FAIL_DNS,       /* the name does not resolve (or DNS timed out) */
    TL_WS_FAIL_GUARD,     /* it resolves only to addresses the guard refuses */
    TL_WS_FAIL_CONNECT,   /* TCP refused, unreachable */
    TL_WS_FAIL_TLS,       /* handshake or certificate verification failed */
    TL_WS_FAIL_HTTP,      /* the upgrade was answered with another status than 101 */
    TL_WS_FAIL_HANDSHAKE, /* a 101 that is not a WebSocket (Accept, Upgrade, Connection) */
    TL_WS_FAIL_TIMEOUT,   /* not open within connect_timeout_ms */
    TL_WS_FAIL_PROTOCOL,  /* after open: a frame wslay refused, a message over the cap */
    TL_WS_FAIL_PING,      /* after open: no pong in time */
    TL_WS_FAIL_IO,        /* after open: the connection broke */
    TL_WS_FAIL_SENDQ,     /* after open: the peer stopped reading (bytes still unsent when
                           * a pong or the close was due) */
};

/* Progress before open, for diagnostic tools (`trunkline probe ws`); detail is a short
 * text valid during the call (addresses, never header values). */
enum tl_ws_step {
    TL_WS_STEP_RESOLVED,       /* detail: the addresses, "192.0.2.7, 2001:db8::7" */
    TL_WS_STEP_REFUSED,        /* one address refused by the guard: "10.0.0.5 (a private
                                * address)" */
    TL_WS_STEP_CONNECTING,     /* detail: "192.0.2.7:443" */
    TL_WS_STEP_CONNECT_FAILED, /* that address failed, the next is tried: the reason */
    TL_WS_STEP_CONNECTED,      /* TCP up: "192.0.2.7:443" */
    TL_WS_STEP_TLS,            /* handshake done, certificate verified for: the host */
    TL_WS_STEP_UPGRADED,       /* "101 Switching Protocols", Accept checked */
};

struct tl_ws_cfg {
    const char *url;                  /* ws://host[:port]/path?query or wss://… */
    const char *const *headers;       /* "Name: value" lines, NULL-terminated, or NULL */
    unsigned connect_timeout_ms;      /* DNS + TCP + TLS + upgrade; 0: 5000 */
    size_t max_message;               /* 0: TL_WS_MESSAGE_MAX */
    size_t max_send_queue;            /* 0: TL_WS_SENDQ_MAX */
    unsigned ping_interval_ms;        /* 0: 15000 */
    unsigned pong_timeout_ms;         /* 0: 10000 */
    const struct tl_net_guard *guard; /* NULL: every address allowed (tests of ws alone) */
    struct tl_net_resolver *resolver; /* borrowed; must outlive the connection */
    struct tl_tls_ctx *tls;           /* client context for wss:// (borrowed) */
};

struct tl_ws_cb {
    void (*on_open)(struct tl_ws *ws, void *arg);
    /* one whole message (fragments reassembled); p is valid during the call only */
    void (*on_message)(struct tl_ws *ws, const char *p, size_t n, bool binary, void *arg);
    /* fail: TL_WS_OK for a clean close (either side, close frames exchanged), else what
     * failed; code: the close code the peer sent (1000, 1001, …) or 0; why: a sentence
     * for a person ("agent certificate for bot.example.com is not trusted (self-signed
     * certificate)", "the agent answered 401 Unauthorized to the WebSocket upgrade",
     * "bot.example.com resolves to 10.0.0.5, a private address"). */
    void (*on_close)(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *why,
                     void *arg);
    /* optional (NULL: not called) */
    void (*on_step)(struct tl_ws *ws, enum tl_ws_step step, const char *detail, void *arg);
};

/* Starts connecting. 0, EINVAL (NULL, bad cfg, a URL that does not parse: nothing is
 * called), ENOMEM. */
int tl_ws_connect(struct tl_ws **wp, struct uv_loop_s *loop, const struct tl_ws_cfg *cfg,
                  const struct tl_ws_cb *cb, void *arg);
/* Queues one text message (copied). 0, ENOTCONN (not open, or closing), ENOBUFS (the
 * send queue would pass its cap: nothing queued), ENOMEM. */
int tl_ws_send(struct tl_ws *ws, const char *p, size_t n);
/* Unsent bytes (frames queued, not yet taken by the kernel). */
size_t tl_ws_queued(const struct tl_ws *ws);
/* Closes gracefully: what is queued is sent, then a close frame (code, reason ≤ 123
 * bytes, cut at a UTF-8 boundary; code 0: a close without status; a code RFC 6455 §7.4
 * forbids on the wire becomes 1000); on_close follows when the peer answers (TL_WS_OK,
 * its code), or after a short grace period (2 s): TL_WS_FAIL_SENDQ when bytes are still
 * unsent then, else TL_WS_OK with code 0. Before open it cancels the attempt: on_close
 * follows with TL_WS_OK and code 0. A second call is ignored. */
void tl_ws_close(struct tl_ws *ws, uint16_t code, const char *reason);
/* Drops the connection now; on_close is NOT called; the handle is gone. */
void tl_ws_abort(struct tl_ws *ws);
/* A short name for logs: "dns", "guard", "connect", "tls", "http", "handshake", "timeout",
 * "protocol", "ping", "io", "sendq", "ok". */
const char *tl_ws_fail_name(enum tl_ws_fail f);

/* ---- pure parts, exposed for unit tests and fuzzing ---- */
/* One extra upgrade header line: "Name: value" with a token name (RFC 7230 §3.2.6), no
 * control characters (CR, LF, NUL: header injection), at most 4096 bytes, and not one of
 * the handshake's own headers (Host, Upgrade, Connection, Sec-WebSocket-Key, -Version,
 * -Accept, -Extensions) or framing ones (Content-Length, Transfer-Encoding). 0, or EINVAL
 * with *why (a sentence without the value: values carry API keys). The agent
 * configuration checks headers with this when they are saved; tl_ws_connect() again. */
int tl_ws_header_check(const char *line, const char **why);
struct tl_ws_url {
    bool tls;        /* wss */
    char host[254];  /* name or IP literal, without brackets */
    uint16_t port;   /* given or 80/443 */
    char path[2048]; /* "/" when absent; the query kept */
};
/* 0 or EINVAL (scheme other than ws/wss, userinfo, fragment, bad host or port, too long) */
int tl_ws_url_parse(const char *url, struct tl_ws_url *u);
/* The Sec-WebSocket-Accept a server must send for key (RFC 6455 §4.2.2): base64 of
 * SHA-1(key + GUID). out must hold 29 bytes. */
void tl_ws_accept_for(const char *key, char out[29]);
/* Reads a complete upgrade response (headers up to the blank line): the status code and,
 * for 101, whether Upgrade/Connection/Sec-WebSocket-Accept are right for key (and no
 * Sec-WebSocket-Extensions, since we offer none: RFC 6455 §4.1); a 101 must be HTTP/1.1.
 * 0 with *status; EAGAIN when the blank line has not arrived yet; EBADMSG (not HTTP/1.x,
 * over TL_WS_HANDSHAKE_MAX, a header line without ':', control characters, obs-fold);
 * *hdr_len gets the header bytes (frames may follow in the same read). reason (cap bytes)
 * gets the status line's reason phrase, printable ASCII only (others become '?'). */
int tl_ws_response_parse(const char *p, size_t n, const char *key, int *status, bool *accept_ok,
                         char *reason, size_t cap, size_t *hdr_len);

#endif
