/* sip/stack: transports (RFC 3261 §18, RFC 3581, RFC 5626 keep-alive), server transactions
 * (RFC 3261 §17.2, RFC 6026 Accepted state) and the endpoint that owns them on one libuv
 * loop. No threads: everything here runs on the loop thread that called
 * tl_sip_stack_start().
 *
 * Timers: one binary min-heap (struct tl_theap, O(log n) insert/cancel) driven by ONE
 * uv_timer armed at the earliest deadline. The heap takes "now" from its caller, so the
 * transaction state machines run in unit tests on a fake clock, without sockets or a loop.
 *
 * Ownership: the stack owns transports, connections, transactions and calls. A
 * transaction is freed by the layer when it terminates; the TU (endpoint) is told first
 * through term_h and must drop its pointer then. */
#ifndef TL_SIP_STACK_H
#define TL_SIP_STACK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/timer.h"
#include "sip/sip.h"

/* ---- where a message came from / goes to ---- */
struct tl_sip_peer {
    enum tl_sip_transport tp;   /* UDP, TCP or TLS */
    struct sockaddr_storage sa; /* source address and port */
    uint64_t conn;              /* stream connection id (0 for UDP); the reply goes back on it */
    void *tpo;                  /* the transport object that received it */
};
/* Sends bytes to a peer: UDP to sa, TCP/TLS on conn (if the connection is gone the bytes
 * are dropped: we open no connections yet, §18.2.2 fallback is a TODO). 0 or errno. */
typedef int(tl_sip_send_h)(const struct tl_sip_peer *peer, const char *buf, size_t len, void *arg);

/* ---- transports (transport.c) ----
 * recv_h gets one datagram or one framed stream message (not yet decoded). For a stream
 * whose framing failed (RFC 4475 clerr/ncl/mcl01) it gets the header block with
 * framing_err set, may answer 400, and the connection is closed after that write. */
struct uv_loop_s;
struct tl_sip_tport;
typedef void(tl_sip_recv_h)(const char *buf, size_t len, bool framing_err,
                            const struct tl_sip_peer *peer, void *arg);
/* A stream connection closed or could not be opened (err: the connect errno, ECONNRESET,
 * EPROTO for TLS — why says which, e.g. the certificate verification error). */
typedef void(tl_sip_conn_err_h)(uint64_t conn, int err, const char *why, void *arg);
/* Is this source trusted (in some number's allowed_addresses)? Called on the loop thread
 * for each accepted connection while slots run short; must be cheap and not block. */
typedef bool(tl_sip_trusted_h)(const struct sockaddr *sa, void *arg);
/* The SIP edge's addresses (sip_edge_addresses, docs/scale-out.md): every carrier's traffic
 * comes from them, so a per-source cap would be a cap on all carriers at once. A
 * connection or transaction from an edge address is exempt from the per-source caps and
 * may take the reserved slots; the global caps still hold. NULL or empty: no edge. */
struct tl_net_guard;
struct tl_sip_tport_cfg {
    const char *listen;
    bool udp;
    int tcp_port, tls_port;
    const char *cert, *ckey;
    unsigned max_conns, idle_s;
    tl_sip_recv_h *recv_h;
    tl_sip_conn_err_h *conn_err_h; /* a connection closed or failed (may be NULL) */
    void *arg;
    const char *ca_file;  /* extra trust for outbound TLS (PEM), or NULL */
    bool ephemeral;       /* UDP on an OS-chosen port, no listeners (a pure client) */
    unsigned keepalive_s; /* connections with live dialogs: CRLFCRLF ping after this many
                           * quiet seconds (RFC 5626 §3.5.1); 0 = no pings (never closed
                           * for idleness either way) */
    /* Issue 11 item 1: one host opening idle connections must not lock everyone out. */
    unsigned max_conns_per_src; /* inbound connections per source (IPv4 address, IPv6
                                 * /64); 0: no cap */
    unsigned reserved_conns;    /* of max_conns, the last ones go only to trusted sources
                                 * (trusted_h); at most half of max_conns; 0: none */
    unsigned first_msg_s;       /* an inbound connection must complete its TLS handshake and
                                 * its first message within this; 0: idle_s */
    size_t write_queue_max;     /* bytes queued on one connection (a peer that pipelines
                                 * and never reads): over it the connection is closed;
                                 * 0: no cap */
    tl_sip_trusted_h *trusted_h;
    void *trusted_arg;
    const struct tl_net_guard *edge; /* see above; must outlive the transport */
};
/* Connections open from sa's source (and any source sharing its slot); tests, bench. */
unsigned tl_sip_tport_conns_src(struct tl_sip_tport *tp, const struct sockaddr *sa);
int tl_sip_tport_start(struct tl_sip_tport **tpp, struct uv_loop_s *loop,
                       const struct tl_sip_tport_cfg *cfg);
int tl_sip_tport_send(struct tl_sip_tport *tp, const struct tl_sip_peer *peer, const char *buf,
                      size_t len);
/* An outbound TCP/TLS connection (RFC 3261 §18.1.1) to sa: an open one to the same
 * (kind, sa, tls_name) is reused, else one is started. *conn gets its id for
 * tl_sip_peer.conn; bytes sent before it is up are queued. TLS verifies tls_name (required).
 * 0, EINVAL, EMFILE (max_conns), ENOMEM, a connect errno; later failures: conn_err_h. */
int tl_sip_tport_connect(struct tl_sip_tport *tp, enum tl_sip_transport kind,
                         const struct sockaddr *sa, const char *tls_name, uint64_t *conn);
/* Counts the live dialogs that use stream connection `conn` (delta +1 / -1). While the
 * count is above zero the connection is never closed for idleness; it is kept alive with
 * RFC 5626 CRLF pings instead (cfg.keepalive_s). 0 or ENOTCONN (gone already: fine). */
int tl_sip_tport_conn_ref(struct tl_sip_tport *tp, uint64_t conn, int delta);
/* Where an open stream connection leads (the peer's address) and its transport.
 * 0 or ENOTCONN. */
int tl_sip_tport_remote(struct tl_sip_tport *tp, uint64_t conn, enum tl_sip_transport *kind,
                        struct sockaddr_storage *out);
/* Our local address for traffic to peer (UDP: the socket; streams: the connection). */
int tl_sip_tport_local(struct tl_sip_tport *tp, const struct tl_sip_peer *peer,
                       struct sockaddr_storage *out);
/* Closes everything; the tport frees itself in the last close callback. */
void tl_sip_tport_stop(struct tl_sip_tport *tp);
/* the formatted source ip ("192.0.2.1", "2001:db8::1") and port of a peer */
void tl_sip_peer_ip(const struct tl_sip_peer *peer, char *ip, size_t cap, uint16_t *port);

/* ---- server transactions (RFC 3261 §17.2) ---- */
enum tl_sip_tsx_state {
    TL_SIP_TSX_TRYING = 0, /* non-INVITE, no response yet */
    TL_SIP_TSX_PROCEEDING, /* provisional sent */
    TL_SIP_TSX_COMPLETED,  /* final sent (INVITE: non-2xx, waiting for ACK) */
    TL_SIP_TSX_CONFIRMED,  /* INVITE: ACK received, absorbing ACK retransmissions */
    TL_SIP_TSX_ACCEPTED,   /* INVITE: 2xx sent (RFC 6026), absorbing INVITE retransmissions */
    TL_SIP_TSX_TERMINATED,
};
struct tl_sip_tsx;
struct tl_sip_tsx_layer;

struct tl_sip_tsx_cfg {
    uint32_t t1, t2, t4; /* ms (RFC 3261 §17.1.1.1: 500, 4000, 5000) */
    tl_sip_send_h *send;
    /* a request that matched no transaction: a new server transaction was made (tx), or
     * tx is NULL for an ACK that matched none (an ACK for a 2xx: dialog business) */
    void (*req_h)(struct tl_sip_tsx *tx, const struct tl_sip_msg *msg,
                  const struct tl_sip_peer *peer, void *arg);
    /* tx is about to be freed (normal end, timer H, or transport error) */
    void (*term_h)(struct tl_sip_tsx *tx, bool timeout, void *arg);
    void *arg;
    /* caps on live transactions (issue 11: each holds memory and timers for up to 64*T1):
     * for all sources, and per source (IPv4 address, IPv6 /64; core/srckey.h); 0: none */
    size_t max, max_per_src;
    const struct tl_net_guard *edge; /* exempt from max_per_src (see tl_net_guard above) */
};
#define TL_SIP_SRC_SLOTS 4096 /* per-source counter slots (connections, transactions) */
int tl_sip_tsx_layer_alloc(struct tl_sip_tsx_layer **lp, const struct tl_sip_tsx_cfg *cfg,
                           struct tl_theap *heap);
/* Frees every transaction without calling term_h (shutdown). */
void tl_sip_tsx_layer_free(struct tl_sip_tsx_layer *l);
size_t tl_sip_tsx_count(const struct tl_sip_tsx_layer *l);
/* Live transactions counted against sa's source (and any source sharing its slot). */
size_t tl_sip_tsx_count_src(const struct tl_sip_tsx_layer *l, const struct sockaddr *sa);
/* Feeds a decoded request (msg->have == TL_SIP_HAVE_REPLY). Retransmissions are absorbed
 * here (the last response is sent again, §17.2.1/§17.2.2); ACK for a non-2xx final is
 * consumed; anything else reaches req_h. 0, ENOMEM, EAGAIN (a new request over cfg.max or
 * cfg.max_per_src: no transaction was made; answer 503 statelessly). */
int tl_sip_tsx_recv(struct tl_sip_tsx_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now);
/* Sends a response the TU printed for this transaction and moves the state machine
 * (1xx: Proceeding; 2xx on INVITE: Accepted; other finals: Completed). The bytes are
 * copied while a retransmitted request may need them. A final of a stateless transaction
 * (below), and a 300-699 to an INVITE that got no provisional yet, goes out once: no
 * timer G, no copy, and the transaction ends at the next timer run (issue 11: answers
 * before a dialog exists are no reflector). 0, EINVAL (after a final), ENOMEM. */
int tl_sip_tsx_respond(struct tl_sip_tsx *tx, uint16_t scode, const char *buf, size_t len,
                       uint64_t now);
/* The final response of tx will be sent once and end it: the endpoint's answers that need
 * no state (OPTIONS, REGISTER, 4xx/5xx before a dialog), so a retransmitted request is
 * answered anew and nothing is kept for 64*T1. */
void tl_sip_tsx_set_stateless(struct tl_sip_tsx *tx);
/* CANCEL (§9.2): the INVITE server transaction the CANCEL request matches, or NULL. */
struct tl_sip_tsx *tl_sip_tsx_find_invite(struct tl_sip_tsx_layer *l,
                                          const struct tl_sip_msg *cancel);
enum tl_sip_tsx_state tl_sip_tsx_state(const struct tl_sip_tsx *tx);
enum tl_sip_method tl_sip_tsx_method(const struct tl_sip_tsx *tx);
const struct tl_sip_peer *tl_sip_tsx_peer(const struct tl_sip_tsx *tx);
void tl_sip_tsx_set_uarg(struct tl_sip_tsx *tx, void *uarg); /* TU's pointer, e.g. a call */
void *tl_sip_tsx_uarg(const struct tl_sip_tsx *tx);

/* ---- client transactions (RFC 3261 §17.1): the state machines under
 * tl_sip_stack_request(), on the same heap and fake-clock friendly like the server side.
 * Matching (§17.1.3): top Via branch + CSeq method. INVITE: timers A (UDP), B, D (32 s on
 * UDP, 0 on streams); the ACK for a 300-699 is built here from the stored request (same
 * branch, To from the response, §17.1.1.3) and re-sent for each retransmitted final. The
 * transaction ends at the first 2xx (RFC 3261 §17.1.1.2, not RFC 6026 Accepted): later
 * 2xx match nothing and reach the stack's stray hook, whose dialog layer re-ACKs them.
 * Non-INVITE: E (UDP; T1 doubling to T2, T2 once Proceeding), F, K (T4 on UDP). */
struct tl_sip_ctr;
struct tl_sip_ctr_layer;
/* resp: every 1xx and the first final (retransmitted finals are absorbed); or NULL with
 * err: ETIMEDOUT (timer B/F) or the transport's errno. After a final or an error h is not
 * called again; the layer frees the transaction (now or after D/K): drop the pointer. */
typedef void(tl_sip_ctr_h)(struct tl_sip_ctr *t, const struct tl_sip_msg *resp, int err, void *arg);
struct tl_sip_ctr_cfg {
    uint32_t t1, t2, t4; /* ms */
    tl_sip_send_h *send;
    void *arg;
};
int tl_sip_ctr_layer_alloc(struct tl_sip_ctr_layer **lp, const struct tl_sip_ctr_cfg *cfg,
                           struct tl_theap *heap);
/* Frees every transaction; h is not called (the stack fails its requests first). */
void tl_sip_ctr_layer_free(struct tl_sip_ctr_layer *l);
size_t tl_sip_ctr_count(const struct tl_sip_ctr_layer *l);
/* Starts a transaction for a printed request whose top Via carries `branch` and sends it
 * to peer (the bytes are copied for retransmissions). A send failure is returned here and
 * nothing is started. 0, EINVAL (ACK, or branch too long), ENOMEM, a transport errno. */
int tl_sip_ctr_start(struct tl_sip_ctr_layer *l, struct tl_sip_ctr **tp, enum tl_sip_method mid,
                     const char *branch, const char *buf, size_t len,
                     const struct tl_sip_peer *peer, tl_sip_ctr_h *h, void *arg, uint64_t now);
/* A decoded response: 0 when a transaction took it, ENOENT when none matches. */
int tl_sip_ctr_recv(struct tl_sip_ctr_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now);
/* The TU gives up its interest (request abandoned): h is never called again; the
 * transaction runs out its timers silently (still absorbing and ACKing responses). */
void tl_sip_ctr_detach(struct tl_sip_ctr *t);
/* A stream connection failed (connect, TLS verification, reset): every transaction that
 * sent on it fails with err. */
void tl_sip_ctr_conn_failed(struct tl_sip_ctr_layer *l, uint64_t conn, int err);
const struct tl_sip_peer *tl_sip_ctr_peer(const struct tl_sip_ctr *t);

/* ---- the stack on a loop (transports + transactions + endpoint answers) ---- */
struct uv_loop_s;
struct tl_sip_stack;
struct tl_sip_stack_cfg {
    const char *listen;      /* IPv4/IPv6 literal; "0.0.0.0" */
    bool udp;                /* also UDP on tcp_port (RFC 3261 §18: same port) */
    int tcp_port, tls_port;  /* 0 = off */
    const char *cert, *ckey; /* PEM paths for TLS */
    uint32_t t1, t2, t4;     /* ms */
    unsigned max_conns;      /* TCP + TLS connections */
    unsigned tcp_idle_s;     /* idle, and time allowed to finish a started message */
    const char *host;        /* our host name for Warning/Contact */
    /* client side (appended: positional initialisers above stay valid) */
    const char *tls_ca_file; /* extra PEM trust for outbound TLS, on top of the system
                              * store (tests, a carrier's private CA); NULL/"": none */
    const char *user_agent;  /* User-Agent on requests we send; NULL/"": none (scanners
                              * fingerprint it, as they do Server) */
    const char *dns_servers; /* "ip:port,…" for RFC 3263 lookups; NULL/"": resolv.conf */
    bool ephemeral;          /* no listeners: one UDP socket on a port the OS picks, for a
                              * client that only sends (trunkline probe) */
    unsigned keepalive_s;    /* see tl_sip_tport_cfg.keepalive_s; 0 = no pings */
    /* hardening against one hostile source (issue 11); see tl_sip_tport_cfg; 0 = off */
    unsigned max_conns_per_src;
    unsigned reserved_conns;
    unsigned first_msg_s;
    size_t write_queue_max;
    tl_sip_trusted_h *trusted_h;
    void *trusted_arg;
    size_t max_tsx, max_tsx_per_src; /* live server transactions: all, per source */
    /* the SIP edge's addresses (sip_edge_addresses): exempt from the per-source caps, and
     * the only peers whose X-Trunkline-Source is believed; must outlive the stack */
    const struct tl_net_guard *edge;
};
/* true when sa is one of the SIP edge's addresses (cfg.edge). */
bool tl_sip_stack_is_edge(const struct tl_sip_stack *s, const struct sockaddr *sa);
/* The carrier's source from the edge's X-Trunkline-Source (sip.h): who's transport and
 * address are replaced; the rest (connection, transport object) stays the packet's. Call
 * only for a request from an edge address. 0; ENOENT (no header), EBADMSG (malformed, or
 * more than one) or E2BIG, with who untouched. (sip/edge.c) */
int tl_sip_edge_source(const struct tl_sip_msg *m, struct tl_sip_peer *who);
int tl_sip_stack_start(struct tl_sip_stack **sp, struct uv_loop_s *loop,
                       const struct tl_sip_stack_cfg *cfg);
/* The call layer's hook for a new out-of-dialog INVITE that passed the endpoint checks
 * (method, URI scheme, Require, Content-Type, Accept). It owns the answer: it must send a
 * final response on tx through tl_sip_stack_reply(), or keep it ringing until a CANCEL:
 * the stack answers the CANCEL 200 and hands it to the dialog hook with tx = the INVITE's
 * transaction (find your call by tl_sip_tsx_uarg), which sends the 487. NULL restores the
 * default (480 to every INVITE). */
typedef void(tl_sip_invite_h)(struct tl_sip_stack *s, struct tl_sip_tsx *tx,
                              const struct tl_sip_msg *msg, void *arg);
void tl_sip_stack_set_invite_h(struct tl_sip_stack *s, tl_sip_invite_h *h, void *arg);
/* Prints and sends a response to req on tx (or statelessly to peer when tx is NULL).
 * hdrs: extra "Name: value\r\n" lines or NULL. totag NULL: a fresh tag on finals. */
int tl_sip_stack_reply(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *req,
                       const struct tl_sip_peer *peer, uint16_t scode, const char *hdrs,
                       const char *totag, const char *ctype, const char *body, size_t body_len);
/* ---- the client side (UAC): requests we send (RFC 3261 §8.1, §17.1, §18.1) ----
 * One call sends one request through a client transaction (timers A, B, E, F, K; D for
 * INVITE non-2xx, whose ACK the transaction sends itself, §17.1.1.3). The next hop is
 * rq->dest when given (in-dialog: the dialog's remote target or first Route), else it
 * is resolved from rq->ruri's host with RFC 3263 (sip/resolve.h), honouring rq->tp;
 * failover to the next target on transport error, timeout or 503 (§4.3). TLS verifies
 * the peer's certificate against the configured domain, sends it as SNI, TLS >= 1.2.
 * Stream connections are reused per (transport, address, tls_name).
 *
 * Digest (RFC 3261 §22.2, sip/digest.h): when rq->auth_user is set, one 401 or 407
 * whose realm equals rq->auth_realm (NULL: the ruri host) is answered by re-sending the
 * request with CSeq + 1 and Authorization / Proxy-Authorization; a second challenge, or
 * a challenge for another realm (CVE-2021-41158), is delivered as the final response.
 *
 * Contract: if tl_sip_stack_request() returns an error, resp_h is never called.
 * Otherwise resp_h is called for every provisional response and exactly once with a
 * final response (resp != NULL) or an error (resp == NULL: ETIMEDOUT for timer B/F,
 * a transport errno, ENOENT when resolution found nothing, ECANCELED on stack stop).
 * After that final call the client transaction is gone: drop ct. For INVITE, 2xx
 * responses after the first (retransmissions, forks) go to the stack's dialog hook
 * (tl_sip_stack_set_stray_h), since the transaction ends at the first 2xx (§17.1.1.2,
 * RFC 6026 §7.2 keeps it for 64*T1 to absorb them: either is fine, say which). */
struct tl_sip_ctsx;
struct tl_net_targets;
typedef void(tl_sip_resp_h)(struct tl_sip_ctsx *ct, const struct tl_sip_msg *resp, int err,
                            void *arg);

struct tl_sip_request {
    enum tl_sip_method method; /* not ACK, not CANCEL (see below) */
    const char *ruri;          /* Request-URI */
    const char *from;          /* whole From value, with ;tag= */
    const char *to;            /* whole To value (;tag= inside a dialog) */
    const char *call_id;
    uint32_t cseq;
    const char *contact; /* Contact value, or NULL */
    const char *route;   /* Route values, comma-separated, or NULL */
    const char *hdrs;    /* extra "Name: value\r\n" lines (custom trunk headers), or NULL */
    const char *ctype;   /* body Content-Type, or NULL */
    const char *body;
    size_t body_len;
    enum tl_sip_transport tp;       /* UDP, TCP or TLS: the trunk's transport */
    const struct tl_sip_peer *dest; /* fixed next hop, or NULL = resolve (below) */
    const char *tls_name;           /* TLS: the name to verify and send as SNI; NULL = the
                                     * host of the URI that was resolved */
    /* In-dialog requests (RFC 3261 §12.2.1.1, §8.1.2): the URI whose host is resolved
     * (RFC 3263) for the next hop — the first Route URI, else the remote target. NULL: the
     * Request-URI. */
    const char *hop;
    /* A stream connection the dialog already uses (the one its INVITE came on). It is
     * reused, instead of a new connection, while it is open, has the hop's transport, and
     * leads to the resolved hop's IP address (the same host; its port is the peer's
     * ephemeral one) — or, when the hop is a private address (a NATed peer's Contact),
     * whatever it leads to (RFC 3581 spirit: answer where the peer really is). NULL: none. */
    const struct tl_sip_peer *prefer;
    const char *auth_user, *auth_pass, *auth_realm; /* digest credentials, or NULLs */
    /* Next hops already found with RFC 3263 (net/resolve.h) for rq->tp, or NULL. Used
     * instead of a lookup of our own (dest NULL), with the same failover; the TLS name is
     * tls_name, else targets->tls_name. For a caller that must know the hop before the
     * request exists (an outbound call's SDP names our address towards the carrier).
     * Copied. With targets, an error of every target is returned by the call itself. */
    const struct tl_net_targets *targets;
};
int tl_sip_stack_request(struct tl_sip_stack *s, const struct tl_sip_request *rq, tl_sip_resp_h *h,
                         void *arg, struct tl_sip_ctsx **ctp);
/* The step that failed, for a person: "dns", "timeout", "tls", "connect" or "internal",
 * from the errno a request ended with when it got no final response (tl_sip_stack_request,
 * its resp_h). have_addr: a next hop had been chosen; a timeout before that is the DNS
 * server's (the lookup itself did not answer). Shared by outbound calls and
 * `trunkline probe`, so both name a failure alike. */
const char *tl_sip_failed_step(int err, bool have_addr);
/* CANCEL for an INVITE client transaction that has seen a provisional response (§9.1:
 * before one, the CANCEL is held and sent when the first 1xx arrives). The INVITE's
 * final response (487, or a 200 that crossed the CANCEL) still reaches its resp_h. */
int tl_sip_stack_cancel(struct tl_sip_stack *s, struct tl_sip_ctsx *ct);
/* ACK for a 2xx (§13.2.2.4): a request of its own, no transaction, new branch. rq->dest
 * is required: the INVITE's hop (copy tl_sip_ctsx_peer() in resp_h); its stream
 * connection is used while up, else reopened (TLS: rq->tls_name). rq->cseq is the
 * INVITE's (the one in the 2xx, after a digest retry). 0, EINVAL, a transport errno. */
int tl_sip_stack_ack(struct tl_sip_stack *s, const struct tl_sip_request *rq);
/* The hop a client transaction used (for the ACK, and for in-dialog requests when no
 * Route set exists and the remote target resolves to the same place). Valid while ct is:
 * copy it inside resp_h. */
const struct tl_sip_peer *tl_sip_ctsx_peer(const struct tl_sip_ctsx *ct);
/* In-dialog traffic that no transaction owns: 2xx retransmissions to an INVITE we sent
 * (the dialog layer re-sends its ACK) and ACKs for our 2xx. */
typedef void(tl_sip_stray_h)(struct tl_sip_stack *s, const struct tl_sip_msg *msg,
                             const struct tl_sip_peer *peer, void *arg);
void tl_sip_stack_set_stray_h(struct tl_sip_stack *s, tl_sip_stray_h *h, void *arg);
/* Told of every REGISTER the endpoint refused (403: static trunks only), after the
 * answer went out, on the loop thread: the daemon records a diagnostic event. It must
 * not block; msg and peer are valid during the call only. NULL removes it. */
typedef void(tl_sip_register_h)(const struct tl_sip_msg *msg, const struct tl_sip_peer *peer,
                                void *arg);
void tl_sip_stack_set_register_h(struct tl_sip_stack *s, tl_sip_register_h *h, void *arg);
/* In-dialog requests (To tag present) that passed the endpoint checks: the dialog layer
 * answers them on tx with tl_sip_stack_reply(), as the INVITE hook does. */
typedef void(tl_sip_dlg_req_h)(struct tl_sip_stack *s, struct tl_sip_tsx *tx,
                               const struct tl_sip_msg *msg, void *arg);
void tl_sip_stack_set_dialog_h(struct tl_sip_stack *s, tl_sip_dlg_req_h *h, void *arg);
/* Server transactions alive now (operations: SIGUSR1's stats line, bench/soak). */
size_t tl_sip_stack_server_tsx(const struct tl_sip_stack *s);
/* Graceful shutdown: retry_after_s > 0 makes out-of-dialog OPTIONS answer 503 with that
 * Retry-After, so that a load balancer probing with OPTIONS sends calls elsewhere; 0 ends
 * it. In-dialog traffic is untouched. */
void tl_sip_stack_drain(struct tl_sip_stack *s, unsigned retry_after_s);
/* tl_sip_tport_conn_ref() for the stream connection of peer (UDP: nothing). */
void tl_sip_stack_conn_ref(struct tl_sip_stack *s, const struct tl_sip_peer *peer, int delta);
/* The loop time the stack uses, ms (for timers of the layers above). */
uint64_t tl_sip_stack_now(const struct tl_sip_stack *s);
struct tl_theap *tl_sip_stack_timers(struct tl_sip_stack *s);

/* ---- internal: between endpoint.c (the stack) and uac.c (its client side) ---- */
struct tl_sip_uac;
int tl__sip_uac_alloc(struct tl_sip_uac **up, struct tl_sip_stack *s, struct uv_loop_s *loop,
                      const struct tl_sip_stack_cfg *cfg);
/* fails every pending request with ECANCELED, then frees (before the transports stop) */
void tl__sip_uac_free(struct tl_sip_uac *u);
int tl__sip_uac_recv(struct tl_sip_uac *u, const struct tl_sip_msg *msg,
                     const struct tl_sip_peer *peer);
tl_sip_conn_err_h tl__sip_uac_conn_err; /* arg: the stack */
struct tl_sip_tport *tl__sip_stack_tport(struct tl_sip_stack *s);
struct tl_sip_uac *tl__sip_stack_uac(struct tl_sip_stack *s);

/* Closes listeners and connections and frees transactions; the loop must run once more
 * (UV_RUN_NOWAIT or DEFAULT) for the close callbacks, which free the rest. */
void tl_sip_stack_stop(struct tl_sip_stack *s);

#endif
