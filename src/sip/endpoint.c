/* sip/endpoint: what a static-trunk endpoint answers before any call logic exists, and the
 * glue that runs transports and transactions on the loop (one uv_timer drives the timer
 * heap of every transaction and of the layers above).
 *
 * Answers (RFC 3261 §8.2): unreadable requests 400 (with a Warning naming the field) or a
 * silent drop when no Via says where to answer; other SIP versions 505; extension methods
 * 501, known methods we do not serve 405, both with Allow; URI schemes other than
 * sip/sips/tel 416; Require with an option we lack 420 + Unsupported; INVITE with a body
 * other than SDP 415, with an Accept that excludes SDP 406; REGISTER 403 (static trunks
 * only); OPTIONS 200. No Server header: SIPVicious-style scanners fingerprint it.
 *
 * The INVITE answer is pluggable (tl_sip_stack_set_invite_h): the call layer installs its
 * own (the test build's session layer may install sip_test_policy's test calls instead).
 * Without one every INVITE gets 480. In-dialog requests, ACKs for 2xx and CANCELs for a pending
 * INVITE go to the dialog and stray hooks; with none set, 481 / dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "core/core.h"
#include "net/guard.h"
#include "sip/stack.h"

#define ALLOW_HDR "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"

struct tl_sip_stack {
    uv_loop_t *loop;
    uv_timer_t timer;
    struct tl_theap heap;
    struct tl_sip_tsx_layer *tsx;
    struct tl_sip_tport *tp;
    struct tl_sip_stack_cfg cfg;
    char host[128]; /* Warning agent */
    tl_sip_invite_h *invite_h;
    void *invite_arg;
    tl_sip_dlg_req_h *dialog_h; /* in-dialog requests; NULL: 481 (no dialog layer) */
    void *dialog_arg;
    tl_sip_stray_h *stray_h; /* ACKs / INVITE 2xx no transaction owns; NULL: dropped */
    void *stray_arg;
    tl_sip_register_h *register_h; /* told of each refused REGISTER (diagnostics) */
    void *register_arg;
    unsigned drain_retry_s; /* > 0: draining, OPTIONS answer 503 with this Retry-After */
    uv_prepare_t prep;      /* re-arms the uv timer before each poll (other layers' timers) */
    uint64_t armed;         /* deadline the uv timer is armed for; UINT64_MAX: stopped */
    int open_h;             /* timer + prepare handles still open (stop frees on the last) */
    struct tl_sip_uac *uac; /* the client side (uac.c) */
    uint8_t tag_secret[crypto_generichash_KEYBYTES];
};

size_t tl_sip_stack_server_tsx(const struct tl_sip_stack *s)
{
    return s && s->tsx ? tl_sip_tsx_count(s->tsx) : 0;
}

void tl_sip_stack_drain(struct tl_sip_stack *s, unsigned retry_after_s)
{
    if (s)
        s->drain_retry_s = retry_after_s;
}

bool tl_sip_stack_is_edge(const struct tl_sip_stack *s, const struct sockaddr *sa)
{
    return s && tl_net_guard_contains(s->cfg.edge, sa);
}

void tl_sip_stack_conn_ref(struct tl_sip_stack *s, const struct tl_sip_peer *peer, int delta)
{
    if (s && peer && peer->tp != TL_SIP_TP_UDP && peer->conn)
        tl_sip_tport_conn_ref(s->tp, peer->conn, delta);
}

static uint64_t now_ms(struct tl_sip_stack *s)
{
    return uv_now(s->loop);
}

static void rearm(struct tl_sip_stack *s);

/* The To tag of an answer we make up (no dialog behind it): derived from the request
 * under a per-start secret, so a retransmitted request answered statelessly gets the
 * same tag (RFC 3261 §8.2.7, §16.11) and two different requests never share one. */
static void req_tag(const struct tl_sip_stack *s, const struct tl_sip_msg *m, char out[20])
{
    crypto_generichash_state st;
    uint8_t h[8];
    crypto_generichash_init(&st, s->tag_secret, sizeof s->tag_secret, sizeof h);
    const struct tl_pl *parts[] = {&m->callid, &m->from.tag, &m->via.branch, &m->via.host,
                                   &m->cseq.met};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        crypto_generichash_update(&st, (const unsigned char *)parts[i]->p, parts[i]->l);
        crypto_generichash_update(&st, (const unsigned char *)"\x1f", 1);
    }
    crypto_generichash_update(&st, (const unsigned char *)&m->cseq.num, sizeof m->cseq.num);
    crypto_generichash_final(&st, h, sizeof h);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

static int send_raw(const struct tl_sip_peer *peer, const char *buf, size_t len, void *arg)
{
    struct tl_sip_stack *s = arg;
    return tl_sip_tport_send(s->tp, peer, buf, len);
}

int tl_sip_stack_reply(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *req,
                       const struct tl_sip_peer *peer, uint16_t scode, const char *hdrs,
                       const char *totag, const char *ctype, const char *body, size_t body_len)
{
    char ip[64], tag[20];
    uint16_t port;
    tl_sip_peer_ip(peer, ip, sizeof ip, &port);
    if (!totag && scode > 100) {
        req_tag(s, req, tag);
        totag = tag;
    }
    /* RFC 3581 §4 / RFC 3261 §18.2.1: received= and rport= on the top Via; the printer
     * adds received only when it differs from sent-by or rport was asked */
    struct tl_sip_reply r = {.scode = scode,
                             .totag = totag ? tl_pl_str(totag) : (struct tl_pl){0},
                             .received = tl_pl_str(ip),
                             .src_port = port,
                             .hdrs = hdrs,
                             .ctype = ctype ? tl_pl_str(ctype) : (struct tl_pl){0},
                             .body = {body, body_len}};
    /* each answer its own buffer (issue 11: nothing process-wide that a callback running
     * inside the send could overwrite); most answers fit the stack one */
    char small[4096];
    char *big = NULL;
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, small, sizeof small);
    int err = tl_sip_reply_print(&wb, req, &r);
    if (err == ENOSPC && (big = malloc(TL_SIP_MSG_MAX))) {
        tl_sip_wbuf_init(&wb, big, TL_SIP_MSG_MAX);
        err = tl_sip_reply_print(&wb, req, &r);
    }
    if (err) {
        TL_LOG_LIMITED(TL_LOG_WARN, "sip", "reply.failed", "code=%u err=%s", scode, strerror(err));
        free(big);
        return err;
    }
    if (tx)
        err = tl_sip_tsx_respond(tx, scode, wb.buf, wb.len, now_ms(s));
    else
        err = send_raw(peer, wb.buf, wb.len, s);
    free(big);
    return err;
}

/* An endpoint answer that needs no state (issue 11 item 5): sent once, nothing kept. */
static void reply_once(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                       const struct tl_sip_peer *peer, uint16_t scode, const char *hdrs)
{
    tl_sip_tsx_set_stateless(tx);
    tl_sip_stack_reply(s, tx, m, peer, scode, hdrs, NULL, NULL, NULL, 0);
}

/* A 400 for an unreadable request (RFC 4475 §3.1.2, §3.3): tl_sip_reply_print copies the
 * fields as they came, broken or missing ones included, so the client can match it by
 * its top Via. Without a Via nobody can be answered; an ACK is never answered. */
static void bad_request(struct tl_sip_stack *s, const struct tl_sip_msg *m,
                        const struct tl_sip_peer *peer, const char *why)
{
    if (!m->hdr_cnt[TL_SIP_HDR_VIA] || m->mid == TL_SIP_METHOD_ACK)
        return;
    char hdrs[300];
    snprintf(hdrs, sizeof hdrs, "Warning: 399 %s \"%s\"\r\n", s->host, why);
    tl_sip_stack_reply(s, NULL, m, peer, 400, hdrs, NULL, NULL, NULL, 0);
}

/* the default INVITE answer when no call layer is hooked in */
static void no_call_layer(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                          void *arg)
{
    (void)arg;
    tl_sip_stack_reply(s, tx, m, tl_sip_tsx_peer(tx), 480, "Retry-After: 300\r\n", NULL, NULL, NULL,
                       0);
}

/* ---- request dispatch ---- */

static bool accepts_sdp(const struct tl_sip_msg *m)
{
    if (!tl_sip_msg_hdr(m, TL_SIP_HDR_ACCEPT))
        return true; /* §20.1: absent means application/sdp */
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_ACCEPT);
    while (tl_sip_hdr_iter_next(&it, &v) == 0) {
        const char *semi = memchr(v.p, ';', v.l);
        struct tl_pl t = {v.p, semi ? (size_t)(semi - v.p) : v.l};
        while (t.l && (t.p[t.l - 1] == ' ' || t.p[t.l - 1] == '\t'))
            t.l--;
        if (tl_pl_caseeq_str(&t, "application/sdp") || tl_pl_caseeq_str(&t, "application/*") ||
            tl_pl_caseeq_str(&t, "*/*"))
            return true;
    }
    return false;
}

static bool body_is_sdp(const struct tl_sip_msg *m)
{
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTENT_TYPE);
    if (!m->body.l)
        return true;
    if (!h)
        return false;
    const char *semi = memchr(h->val.p, ';', h->val.l);
    struct tl_pl t = {h->val.p, semi ? (size_t)(semi - h->val.p) : h->val.l};
    while (t.l && (t.p[t.l - 1] == ' ' || t.p[t.l - 1] == '\t'))
        t.l--;
    return tl_pl_caseeq_str(&t, "application/sdp");
}

/* 420 (§8.2.2.3): every Require option is unknown to us for now; "timer" joins when
 * session timers exist. Returns true when it answered. */
static bool check_require(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                          const struct tl_sip_peer *peer)
{
    if (!tl_sip_msg_hdr(m, TL_SIP_HDR_REQUIRE) || m->mid == TL_SIP_METHOD_CANCEL ||
        m->mid == TL_SIP_METHOD_ACK)
        return false; /* §9.2: CANCEL carries no Require that matters */
    char hdrs[1024];
    size_t n = (size_t)snprintf(hdrs, sizeof hdrs, "Unsupported: ");
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    bool first = true;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_REQUIRE);
    while (tl_sip_hdr_iter_next(&it, &v) == 0) {
        if (tl_pl_caseeq_str(&v, "timer"))
            continue; /* RFC 4028: session timers live in sip/session.c */
        if (v.l + 4 > sizeof hdrs - n)
            break; /* the list is capped; what fits is enough to say no */
        n +=
            (size_t)snprintf(hdrs + n, sizeof hdrs - n, "%s%.*s", first ? "" : ", ", (int)v.l, v.p);
        first = false;
    }
    if (first)
        return false;
    snprintf(hdrs + n, sizeof hdrs - n, "\r\n");
    tl_sip_stack_reply(s, tx, m, peer, 420, hdrs, NULL, NULL, NULL, 0);
    return true;
}

static void on_cancel(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                      const struct tl_sip_peer *peer)
{
    struct tl_sip_tsx *inv = tl_sip_tsx_find_invite(s->tsx, m);
    if (!inv) {
        reply_once(s, tx, m, peer, 481, NULL);
        return;
    }
    /* §9.2: 200 to the CANCEL; if the INVITE had no final response yet, 487 to it */
    tl_sip_stack_reply(s, tx, m, peer, 200, NULL, NULL, NULL, NULL, 0);
    /* the INVITE's owner (the session layer) sends the 487: it has the INVITE to print
     * it from, and ends its session */
    if (tl_sip_tsx_state(inv) == TL_SIP_TSX_PROCEEDING && s->dialog_h)
        s->dialog_h(s, inv, m, s->dialog_arg);
}

static void log_register(const struct tl_sip_msg *m, const struct tl_sip_peer *peer)
{
    char ip[64];
    uint16_t port;
    tl_sip_peer_ip(peer, ip, sizeof ip, &port);
    /* URIs hold no LWS or quotes (the decoder checked them); cap what reaches the log */
    int fl = m->from.auri.l > 128 ? 128 : (int)m->from.auri.l;
    int tl = m->to.auri.l > 128 ? 128 : (int)m->to.auri.l;
    TL_LOG_LIMITED(TL_LOG_INFO, "sip", "register.refused", "from=%.*s to=%.*s src=%s:%u", fl,
                   m->from.auri.p, tl, m->to.auri.p, ip, port);
}

static void on_request(struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                       const struct tl_sip_peer *peer, void *arg)
{
    struct tl_sip_stack *s = arg;
    char hdrs[512];

    if (!tx) { /* an ACK outside any transaction: the ACK for our 2xx */
        if (s->stray_h)
            s->stray_h(s, m, peer, s->stray_arg);
        return;
    }
    /* in-dialog (To tag, §12.2.2) requests of the methods a dialog can carry reach the
     * dialog layer, which knows the dialog and answers 481 itself when there is none */
    bool to_dialog = s->dialog_h && m->to.tag.l && m->mid != TL_SIP_METHOD_OTHER &&
                     m->mid != TL_SIP_METHOD_REGISTER && m->mid != TL_SIP_METHOD_CANCEL;
    switch (to_dialog ? TL_SIP_METHOD_INVITE : m->mid) {
    case TL_SIP_METHOD_OTHER:
        reply_once(s, tx, m, peer, 501, ALLOW_HDR);
        return;
    case TL_SIP_METHOD_INVITE:
    case TL_SIP_METHOD_BYE:
    case TL_SIP_METHOD_CANCEL:
    case TL_SIP_METHOD_OPTIONS:
    case TL_SIP_METHOD_REGISTER:
        break;
    default: /* §8.2.1: a method we know but do not serve */
        reply_once(s, tx, m, peer, 405, ALLOW_HDR);
        return;
    }
    if (m->ruri.scheme == TL_SIP_SCHEME_OTHER) { /* §8.2.2.1, RFC 4475 §3.3.2 */
        reply_once(s, tx, m, peer, 416, NULL);
        return;
    }
    if (check_require(s, tx, m, peer))
        return;
    if (to_dialog) {
        s->dialog_h(s, tx, m, s->dialog_arg);
        return;
    }

    switch (m->mid) {
    case TL_SIP_METHOD_REGISTER:
        log_register(m, peer);
        snprintf(hdrs, sizeof hdrs,
                 "Warning: 399 %s \"This endpoint serves static SIP trunks and accepts no "
                 "registration; configure your provider's trunk as static / IP-based\"\r\n"
                 "Reason: SIP;cause=403;text=\"Registration not accepted: static trunk\"\r\n",
                 s->host);
        reply_once(s, tx, m, peer, 403, hdrs);
        if (s->register_h)
            s->register_h(m, peer, s->register_arg);
        return;
    case TL_SIP_METHOD_OPTIONS:
        if (s->drain_retry_s) { /* a load balancer's health check: send calls elsewhere */
            snprintf(hdrs, sizeof hdrs, "Retry-After: %u\r\n", s->drain_retry_s);
            reply_once(s, tx, m, peer, 503, hdrs);
            return;
        }
        /* stateless (issue 11): a carrier's pings and a scanner's probes keep no state */
        reply_once(s, tx, m, peer, 200, ALLOW_HDR "Accept: application/sdp\r\nSupported: \r\n");
        return;
    case TL_SIP_METHOD_CANCEL:
        on_cancel(s, tx, m, peer);
        return;
    case TL_SIP_METHOD_BYE: /* no dialog layer, or no To tag: no dialog (§15.1.2) */
        reply_once(s, tx, m, peer, 481, NULL);
        return;
    default:
        break;
    }
    /* INVITE */
    if (m->to.tag.l) { /* a re-INVITE without a dialog layer (§12.2.2) */
        tl_sip_stack_reply(s, tx, m, peer, 481, NULL, NULL, NULL, NULL, 0);
        return;
    }
    if (!body_is_sdp(m)) { /* §21.4.13, RFC 4475 §3.3.6 */
        tl_sip_stack_reply(s, tx, m, peer, 415, "Accept: application/sdp\r\n", NULL, NULL, NULL, 0);
        return;
    }
    if (!accepts_sdp(m)) { /* RFC 4475 §3.3.15 */
        snprintf(hdrs, sizeof hdrs, "Warning: 399 %s \"only application/sdp answers\"\r\n",
                 s->host);
        tl_sip_stack_reply(s, tx, m, peer, 406, hdrs, NULL, NULL, NULL, 0);
        return;
    }
    s->invite_h(s, tx, m, s->invite_arg);
}

/* §18.1.2: a response goes to the client transaction its top Via branch and CSeq method
 * name (§17.1.3). 2xx to an INVITE that no transaction owns (retransmissions after the
 * first, forks) belong to the dialog layer; anything else is dropped: a response's Via is
 * never acted on (RFC 4475 §3.3.10 bcast). */
static void on_response(struct tl_sip_stack *s, const struct tl_sip_msg *m, int r,
                        const struct tl_sip_peer *peer)
{
    if (r || (m->have & TL_SIP_HAVE_REPLY) != TL_SIP_HAVE_REPLY) {
        TL_LOG_LIMITED(TL_LOG_DEBUG, "sip", "response.dropped", "code=%u reason=malformed",
                       m->scode);
        return;
    }
    if (s->uac && tl__sip_uac_recv(s->uac, m, peer) == 0)
        return;
    if (s->stray_h && m->scode >= 200 && m->scode < 300 && m->cseq.mid == TL_SIP_METHOD_INVITE) {
        s->stray_h(s, m, peer, s->stray_arg);
        return;
    }
    TL_LOG_LIMITED(TL_LOG_DEBUG, "sip", "response.dropped", "code=%u", m->scode);
}

static void on_recv(const char *buf, size_t len, bool framing_err, const struct tl_sip_peer *peer,
                    void *arg)
{
    struct tl_sip_stack *s = arg;
    /* each decoded message its own storage (issue 11 item 12): a callback that runs while
     * this one is handled (a send's error, a session ending) may decode another */
    struct tl_sip_msg *m = malloc(sizeof *m);
    if (!m)
        return; /* a datagram lost; a stream's peer retransmits or times out */
    int r = tl_sip_msg_decode(m, buf, len);
    if (!m->req) {
        on_response(s, m, r, peer);
        goto out;
    }
    if (framing_err) {
        bad_request(s, m, peer, "bad Content-Length");
        goto out;
    }
    if (r == EPROTONOSUPPORT) {
        if ((m->have & TL_SIP_HAVE_REPLY) == TL_SIP_HAVE_REPLY && m->mid != TL_SIP_METHOD_ACK)
            tl_sip_stack_reply(s, NULL, m, peer, 505, NULL, NULL, NULL, NULL, 0);
        goto out;
    }
    if (r) {
        bad_request(s, m, peer, m->err ? m->err : "malformed request");
        goto out;
    }
    r = tl_sip_tsx_recv(s->tsx, m, peer, now_ms(s));
    if (r && m->mid != TL_SIP_METHOD_ACK) {
        /* out of memory, or over sip_max_transactions(_per_source): one stateless 503 */
        char ip[64];
        uint16_t port;
        tl_sip_peer_ip(peer, ip, sizeof ip, &port);
        TL_LOG_LIMITED(TL_LOG_WARN, "sip", "tsx.refused", "reason=%s src=%s",
                       r == EAGAIN ? "transaction_cap" : "out_of_memory", ip);
        tl_sip_stack_reply(s, NULL, m, peer, 503, "Retry-After: 5\r\n", NULL, NULL, NULL, 0);
    }
out:
    free(m);
    rearm(s);
}

/* ---- loop glue ---- */

static void on_uv_timer(uv_timer_t *t)
{
    struct tl_sip_stack *s = t->data;
    s->armed = UINT64_MAX; /* one-shot: it fired */
    tl_theap_run(&s->heap, now_ms(s));
    rearm(s);
}

static void rearm(struct tl_sip_stack *s)
{
    uint64_t next = tl_theap_next(&s->heap);
    if (next == s->armed)
        return;
    s->armed = next;
    if (next == UINT64_MAX) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = now_ms(s);
    uv_timer_start(&s->timer, on_uv_timer, next > now ? next - now : 0, 0);
}

void tl_sip_stack_set_dialog_h(struct tl_sip_stack *s, tl_sip_dlg_req_h *h, void *arg)
{
    s->dialog_h = h;
    s->dialog_arg = h ? arg : NULL;
}

void tl_sip_stack_set_stray_h(struct tl_sip_stack *s, tl_sip_stray_h *h, void *arg)
{
    s->stray_h = h;
    s->stray_arg = h ? arg : NULL;
}

void tl_sip_stack_set_register_h(struct tl_sip_stack *s, tl_sip_register_h *h, void *arg)
{
    s->register_h = h;
    s->register_arg = h ? arg : NULL;
}

struct tl_sip_tport *tl__sip_stack_tport(struct tl_sip_stack *s)
{
    return s->tp;
}

struct tl_sip_uac *tl__sip_stack_uac(struct tl_sip_stack *s)
{
    return s->uac;
}

uint64_t tl_sip_stack_now(const struct tl_sip_stack *s)
{
    return uv_now(s->loop);
}

struct tl_theap *tl_sip_stack_timers(struct tl_sip_stack *s)
{
    return &s->heap;
}

/* Layers above arm timers on the heap from any callback (an API request, a media event),
 * not only from the stack's own: checking the earliest deadline before each poll keeps
 * one uv timer right without asking every caller to re-arm it. */
static void on_prepare(uv_prepare_t *p)
{
    rearm(p->data);
}

void tl_sip_stack_set_invite_h(struct tl_sip_stack *s, tl_sip_invite_h *h, void *arg)
{
    s->invite_h = h ? h : no_call_layer;
    s->invite_arg = h ? arg : NULL;
}

static void stack_closed(uv_handle_t *h)
{
    struct tl_sip_stack *s = h->data;
    if (--s->open_h == 0)
        free(s);
}

int tl_sip_stack_start(struct tl_sip_stack **sp, uv_loop_t *loop,
                       const struct tl_sip_stack_cfg *cfg)
{
    int r;
    struct tl_sip_stack *s = calloc(1, sizeof *s);
    if (!s)
        return ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    s->invite_h = no_call_layer;
    crypto_generichash_keygen(s->tag_secret);
    if (s->cfg.t1 == 0)
        s->cfg.t1 = 500;
    if (s->cfg.t2 < s->cfg.t1)
        s->cfg.t2 = s->cfg.t1;
    if (s->cfg.t4 == 0)
        s->cfg.t4 = 5000;
    /* the Warning agent goes inside a header: keep it to host characters */
    tl_strlcpy(s->host, cfg->host && cfg->host[0] ? cfg->host : "gateway", sizeof s->host);
    for (char *p = s->host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            *p = '-';
    tl_theap_init(&s->heap);
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->armed = UINT64_MAX;
    uv_prepare_init(loop, &s->prep);
    s->prep.data = s;
    uv_prepare_start(&s->prep, on_prepare);
    uv_unref((uv_handle_t *)&s->prep); /* it must not keep a finished loop running */
    s->open_h = 2;

    struct tl_sip_tsx_cfg tc = {.t1 = s->cfg.t1,
                                .t2 = s->cfg.t2,
                                .t4 = s->cfg.t4,
                                .send = send_raw,
                                .req_h = on_request,
                                .arg = s,
                                .max = cfg->max_tsx,
                                .max_per_src = cfg->max_tsx_per_src,
                                .edge = cfg->edge};
    if ((r = tl_sip_tsx_layer_alloc(&s->tsx, &tc, &s->heap)))
        goto out;
    struct tl_sip_tport_cfg pc = {.listen = cfg->listen,
                                  .udp = cfg->udp,
                                  .tcp_port = cfg->tcp_port,
                                  .tls_port = cfg->tls_port,
                                  .cert = cfg->cert,
                                  .ckey = cfg->ckey,
                                  .max_conns = cfg->max_conns,
                                  .idle_s = cfg->tcp_idle_s ? cfg->tcp_idle_s : 1,
                                  .recv_h = on_recv,
                                  .conn_err_h = tl__sip_uac_conn_err,
                                  .arg = s,
                                  .ca_file = cfg->tls_ca_file,
                                  .ephemeral = cfg->ephemeral,
                                  .keepalive_s = cfg->keepalive_s,
                                  .max_conns_per_src = cfg->max_conns_per_src,
                                  .reserved_conns = cfg->reserved_conns,
                                  .first_msg_s = cfg->first_msg_s,
                                  .write_queue_max = cfg->write_queue_max,
                                  .trusted_h = cfg->trusted_h,
                                  .trusted_arg = cfg->trusted_arg,
                                  .edge = cfg->edge};
    if ((r = tl__sip_uac_alloc(&s->uac, s, loop, &s->cfg)))
        goto out;
    if ((r = tl_sip_tport_start(&s->tp, loop, &pc)))
        goto out;
    tl_info("sip", "listen", "addr=%s udp=%d tcp=%d tls=%d", cfg->listen,
            cfg->udp ? cfg->tcp_port : 0, cfg->tcp_port, cfg->tls_port);
out:
    if (r) {
        s->tp = NULL;
        tl_sip_stack_stop(s);
        return r;
    }
    *sp = s;
    return 0;
}

void tl_sip_stack_stop(struct tl_sip_stack *s)
{
    if (!s)
        return;
    tl__sip_uac_free(s->uac);
    tl_sip_tsx_layer_free(s->tsx);
    tl_theap_free(&s->heap);
    tl_sip_tport_stop(s->tp);
    uv_close((uv_handle_t *)&s->timer, stack_closed);
    uv_close((uv_handle_t *)&s->prep, stack_closed);
}
