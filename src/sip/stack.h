/* sip/stack: transports (RFC 3261 §18, RFC 3581, RFC 5626 keep-alive), server transactions
 * (RFC 3261 §17.2, RFC 6026 Accepted state) and the endpoint that owns them on one libuv
 * loop. No threads: everything here runs on the loop thread that called
 * tl_sip_stack_start().
 *
 * Timers: one binary min-heap (struct tl_sip_theap, O(log n) insert/cancel) driven by ONE
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

#include "sip/sip.h"

/* ---- timer heap ---- */
struct tl_sip_timer;
typedef void(tl_sip_timer_h)(struct tl_sip_timer *t, uint64_t now);
struct tl_sip_timer {
    uint64_t due; /* ms, caller's clock */
    size_t idx;   /* position in the heap + 1; 0 = not armed */
    tl_sip_timer_h *fn;
};
struct tl_sip_theap {
    struct tl_sip_timer **v;
    size_t n, cap;
};
void tl_sip_theap_init(struct tl_sip_theap *h);
void tl_sip_theap_free(struct tl_sip_theap *h); /* the timers themselves are not owned */
/* Arms (or re-arms) t at `due`. 0 or ENOMEM. */
int tl_sip_timer_start(struct tl_sip_theap *h, struct tl_sip_timer *t, uint64_t due,
                       tl_sip_timer_h *fn);
void tl_sip_timer_stop(struct tl_sip_theap *h, struct tl_sip_timer *t);
/* Fires every timer due at or before now (a handler may arm or stop others). */
void tl_sip_theap_run(struct tl_sip_theap *h, uint64_t now);
/* Earliest deadline, or UINT64_MAX when nothing is armed. */
uint64_t tl_sip_theap_next(const struct tl_sip_theap *h);

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
struct tl_sip_tport_cfg {
    const char *listen;
    bool udp;
    int tcp_port, tls_port;
    const char *cert, *ckey;
    unsigned max_conns, idle_s;
    tl_sip_recv_h *recv_h;
    void *arg;
};
int tl_sip_tport_start(struct tl_sip_tport **tpp, struct uv_loop_s *loop,
                       const struct tl_sip_tport_cfg *cfg);
int tl_sip_tport_send(struct tl_sip_tport *tp, const struct tl_sip_peer *peer, const char *buf,
                      size_t len);
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
};
int tl_sip_tsx_layer_alloc(struct tl_sip_tsx_layer **lp, const struct tl_sip_tsx_cfg *cfg,
                           struct tl_sip_theap *heap);
/* Frees every transaction without calling term_h (shutdown). */
void tl_sip_tsx_layer_free(struct tl_sip_tsx_layer *l);
size_t tl_sip_tsx_count(const struct tl_sip_tsx_layer *l);
/* Feeds a decoded request (msg->have == TL_SIP_HAVE_REPLY). Retransmissions are absorbed
 * here (the last response is sent again, §17.2.1/§17.2.2); ACK for a non-2xx final is
 * consumed; anything else reaches req_h. 0, ENOMEM. */
int tl_sip_tsx_recv(struct tl_sip_tsx_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now);
/* Sends a response the TU printed for this transaction and moves the state machine
 * (1xx: Proceeding; 2xx on INVITE: Accepted; other finals: Completed). The bytes are
 * copied (kept for retransmissions). 0, EINVAL (after a final), ENOMEM. */
int tl_sip_tsx_respond(struct tl_sip_tsx *tx, uint16_t scode, const char *buf, size_t len,
                       uint64_t now);
/* CANCEL (§9.2): the INVITE server transaction the CANCEL request matches, or NULL. */
struct tl_sip_tsx *tl_sip_tsx_find_invite(struct tl_sip_tsx_layer *l,
                                          const struct tl_sip_msg *cancel);
enum tl_sip_tsx_state tl_sip_tsx_state(const struct tl_sip_tsx *tx);
enum tl_sip_method tl_sip_tsx_method(const struct tl_sip_tsx *tx);
const struct tl_sip_peer *tl_sip_tsx_peer(const struct tl_sip_tsx *tx);
void tl_sip_tsx_set_uarg(struct tl_sip_tsx *tx, void *uarg); /* TU's pointer, e.g. a call */
void *tl_sip_tsx_uarg(const struct tl_sip_tsx *tx);

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
    const char *test_policy; /* "", "answer", "ring" */
    const char *host;        /* our host name for Warning/Contact */
};
int tl_sip_stack_start(struct tl_sip_stack **sp, struct uv_loop_s *loop,
                       const struct tl_sip_stack_cfg *cfg);
/* The call layer's hook for a new out-of-dialog INVITE that passed the endpoint checks
 * (method, URI scheme, Require, Content-Type, Accept). It owns the answer: it must send a
 * final response on tx through tl_sip_stack_reply() (or keep it ringing until a CANCEL,
 * which the stack answers with 487 itself). NULL restores the default (sip_test_policy). */
typedef void(tl_sip_invite_h)(struct tl_sip_stack *s, struct tl_sip_tsx *tx,
                              const struct tl_sip_msg *msg, void *arg);
void tl_sip_stack_set_invite_h(struct tl_sip_stack *s, tl_sip_invite_h *h, void *arg);
/* Prints and sends a response to req on tx (or statelessly to peer when tx is NULL).
 * hdrs: extra "Name: value\r\n" lines or NULL. totag NULL: a fresh tag on finals. */
int tl_sip_stack_reply(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *req,
                       const struct tl_sip_peer *peer, uint16_t scode, const char *hdrs,
                       const char *totag, const char *ctype, const char *body, size_t body_len);
/* Closes listeners and connections and frees transactions; the loop must run once more
 * (UV_RUN_NOWAIT or DEFAULT) for the close callbacks, which free the rest. */
void tl_sip_stack_stop(struct tl_sip_stack *s);

#endif
