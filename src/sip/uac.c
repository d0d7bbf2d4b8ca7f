/* sip/uac: the client side of the stack — requests we send (RFC 3261 §8.1), over the client
 * transactions of transaction.c, to a next hop given by the caller or found with RFC 3263
 * (sip/resolve.h), with failover (§4.3) and one digest retry (§22.2).
 *
 * One tl_sip_ctsx is one request as the caller sees it: it outlives the client
 * transactions under it (a failover or a digest retry starts a new one with a new branch),
 * so the caller's pointer stays valid until its final resp_h call.
 *
 * Threats: we answer a challenge only for a request we sent, only for the expected realm
 * (FreeSWITCH CVE-2021-41158: a hostile hop harvesting digests for another realm), only
 * once (a second challenge means wrong credentials, and a loop would lock the trunk's
 * account at the carrier). Values we print refuse CR/LF (header injection from the API). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "net/resolve.h"
#include "sip/digest.h"
#include "sip/stack.h"

#define CHALLENGES_MAX 8 /* challenge fields of one 401/407 we look at */

struct tl_sip_uac {
    struct tl_sip_stack *s;
    uv_loop_t *loop;
    struct tl_theap *heap;
    uint32_t t1;
    struct tl_sip_ctr_layer *ctr;
    struct tl_net_resolver *res; /* made on the first request that needs DNS */
    struct tl_sip_ctsx *reqs;    /* pending requests */
    char *user_agent, *dns_servers;
};

struct tl_sip_ctsx {
    struct tl_sip_uac *u;
    struct tl_sip_ctsx *next, **pprev;
    enum tl_sip_method mid;
    char *met, *ruri, *from, *to, *call_id, *contact, *route, *hdrs, *ctype, *body, *tls_name;
    char *hop; /* the URI resolved for the next hop (in-dialog), or NULL: ruri */
    char *auth_user, *auth_pass, *auth_realm;
    size_t body_len;
    uint32_t cseq;
    enum tl_sip_transport tp;
    bool have_dest, have_prefer;
    struct tl_sip_peer dest;
    struct tl_sip_peer prefer; /* a connection the dialog already uses (tl_sip_request) */
    struct tl_net_targets *tg; /* resolved next hops, or NULL */
    struct tl_net_resolve_query *q;
    struct tl_sip_ctr *ctr;  /* the transaction in flight */
    struct tl_sip_peer peer; /* the hop it uses */
    char branch[48];
    char via[200];    /* our Via line of the current attempt: the CANCEL repeats it (§9.1) */
    char authz[2048]; /* "Authorization: …\r\n" after a challenge, else "" */
    bool auth_done, att_1xx, cancel_wanted, cancel_sent;
    struct tl_timer cancel_tm; /* §9.1: no final 64*T1 after our CANCEL → give up */
    tl_sip_resp_h *h;
    void *arg;
};

static char g_out[TL_SIP_MSG_MAX]; /* one loop thread */

static char *dup_or_null(const char *p)
{
    return p ? strdup(p) : NULL;
}

/* ---- lifetime ---- */

static int uac_send(const struct tl_sip_peer *peer, const char *buf, size_t len, void *arg)
{
    return tl_sip_tport_send(tl__sip_stack_tport(arg), peer, buf, len);
}

int tl__sip_uac_alloc(struct tl_sip_uac **up, struct tl_sip_stack *s, uv_loop_t *loop,
                      const struct tl_sip_stack_cfg *cfg)
{
    struct tl_sip_uac *u = calloc(1, sizeof *u);
    if (!u)
        return ENOMEM;
    u->s = s;
    u->loop = loop;
    u->heap = tl_sip_stack_timers(s);
    if (cfg->user_agent && cfg->user_agent[0])
        u->user_agent = strdup(cfg->user_agent);
    if (cfg->dns_servers && cfg->dns_servers[0])
        u->dns_servers = strdup(cfg->dns_servers);
    struct tl_sip_ctr_cfg cc = {.t1 = cfg->t1 ? cfg->t1 : 500,
                                .t2 = cfg->t2 ? cfg->t2 : 4000,
                                .t4 = cfg->t4 ? cfg->t4 : 5000,
                                .send = uac_send,
                                .arg = s};
    if (cc.t2 < cc.t1)
        cc.t2 = cc.t1;
    u->t1 = cc.t1;
    int r = tl_sip_ctr_layer_alloc(&u->ctr, &cc, u->heap);
    if (r) {
        free(u->user_agent);
        free(u->dns_servers);
        free(u);
        return r;
    }
    *up = u;
    return 0;
}

static void ct_free(struct tl_sip_ctsx *ct)
{
    char **v[] = {&ct->met,      &ct->ruri,      &ct->from,       &ct->to,    &ct->call_id,
                  &ct->contact,  &ct->route,     &ct->hdrs,       &ct->ctype, &ct->body,
                  &ct->tls_name, &ct->auth_user, &ct->auth_realm, &ct->hop};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        free(*v[i]);
    if (ct->auth_pass) {
        sodium_memzero(ct->auth_pass, strlen(ct->auth_pass));
        free(ct->auth_pass);
    }
    sodium_memzero(ct->authz, sizeof ct->authz);
    free(ct->tg);
    free(ct);
}

/* the one final call: unlink first, so the handler may start new requests */
static void finish(struct tl_sip_ctsx *ct, const struct tl_sip_msg *resp, int err)
{
    if (ct->cancel_tm.idx)
        tl_timer_stop(ct->u->heap, &ct->cancel_tm);
    if (ct->q)
        tl_net_resolve_cancel(ct->q);
    if (ct->ctr)
        tl_sip_ctr_detach(ct->ctr);
    *ct->pprev = ct->next;
    if (ct->next)
        ct->next->pprev = ct->pprev;
    ct->h(ct, resp, err, ct->arg);
    ct_free(ct);
}

void tl__sip_uac_free(struct tl_sip_uac *u)
{
    if (!u)
        return;
    while (u->reqs)
        finish(u->reqs, NULL, ECANCELED);
    tl_sip_ctr_layer_free(u->ctr);
    tl_net_resolver_free(u->res);
    free(u->user_agent);
    free(u->dns_servers);
    free(u);
}

/* ---- printing ---- */

static void new_branch(char out[48])
{
    uint8_t r[16]; /* 128 random bits: unguessable, so a blind spoofed response cannot match */
    randombytes_buf(r, sizeof r);
    memcpy(out, "z9hG4bK", 7);
    for (int i = 0; i < 16; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", r[i]);
}

static void sa_ip(const struct sockaddr_storage *sa, char *ip, size_t cap, uint16_t *port)
{
    struct tl_sip_peer p = {.sa = *sa};
    tl_sip_peer_ip(&p, ip, cap, port);
}

/* Our sent-by (§18.1.1): UDP — the address the kernel picks for this destination (a
 * connected datagram socket asks the routing table; nothing is sent) and our socket's
 * port; streams — the connection's local address. rport (RFC 3581) makes the server
 * answer to where the request really came from anyway (NAT). */
static int via_line(struct tl_sip_ctsx *ct, char *out, size_t cap)
{
    struct tl_sip_tport *tp = tl__sip_stack_tport(ct->u->s);
    struct sockaddr_storage loc;
    char ip[64];
    uint16_t port;
    int r = tl_sip_tport_local(tp, &ct->peer, &loc);
    if (r)
        return r;
    sa_ip(&loc, ip, sizeof ip, &port);
    if (ct->peer.tp == TL_SIP_TP_UDP) {
        int fd = socket(ct->peer.sa.ss_family, SOCK_DGRAM, 0);
        struct sockaddr_storage me;
        socklen_t ml = sizeof me;
        socklen_t dl = ct->peer.sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                         : sizeof(struct sockaddr_in);
        if (fd >= 0 && !connect(fd, (const struct sockaddr *)&ct->peer.sa, dl) &&
            !getsockname(fd, (struct sockaddr *)&me, &ml)) {
            uint16_t ignored;
            sa_ip(&me, ip, sizeof ip, &ignored);
        }
        if (fd >= 0)
            close(fd);
    }
    bool v6 = strchr(ip, ':') != NULL;
    int n = snprintf(out, cap, "Via: SIP/2.0/%s %s%s%s:%u;branch=%s;rport\r\n",
                     tl_sip_transport_name(ct->peer.tp), v6 ? "[" : "", ip, v6 ? "]" : "", port,
                     ct->branch);
    return n > 0 && (size_t)n < cap ? 0 : ENOSPC;
}

/* extra header lines from the API/CLI: "Name: value\r\n" each, no bare CR/LF, no folds */
static bool hdrs_ok(const char *h)
{
    if (!h)
        return true;
    size_t n = strlen(h);
    if (n && (n < 2 || h[n - 2] != '\r' || h[n - 1] != '\n'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '\r' && h[i + 1] != '\n')
            return false;
        if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
            return false;
        if (h[i] == '\n' && (h[i + 1] == ' ' || h[i + 1] == '\t'))
            return false;
        if (h[i] == '\0')
            return false;
    }
    return true;
}

static int print_hdr(struct tl_sip_wbuf *wb, const char *name, const char *v)
{
    if (!v)
        return 0;
    struct tl_pl pl = tl_pl_str(v);
    return tl_sip_hdr_print(wb, name, &pl);
}

/* method: the request's, or "CANCEL" (same Via/From/To/Call-ID/CSeq number/Route, §9.1) */
static int print_request(struct tl_sip_ctsx *ct, struct tl_sip_wbuf *wb, const char *method,
                         bool cancel)
{
    int err = tl_sip_wbuf_printf(wb, "%s %s SIP/2.0\r\n%sMax-Forwards: 70\r\n", method, ct->ruri,
                                 ct->via);
    err = err ? err : print_hdr(wb, "Route", ct->route);
    err = err ? err : print_hdr(wb, "From", ct->from);
    err = err ? err : print_hdr(wb, "To", ct->to);
    err = err ? err : print_hdr(wb, "Call-ID", ct->call_id);
    err = err ? err : tl_sip_wbuf_printf(wb, "CSeq: %u %s\r\n", ct->cseq, method);
    if (cancel)
        return err ? err : tl_sip_wbuf_printf(wb, "Content-Length: 0\r\n\r\n");
    err = err ? err : print_hdr(wb, "Contact", ct->contact);
    err = err ? err : tl_sip_wbuf_printf(wb, "%s", ct->authz);
    err = err ? err : print_hdr(wb, "User-Agent", ct->u->user_agent);
    err = err ? err : tl_sip_wbuf_printf(wb, "%s", ct->hdrs ? ct->hdrs : "");
    err = err ? err : print_hdr(wb, "Content-Type", ct->body_len ? ct->ctype : NULL);
    err = err ? err : tl_sip_wbuf_printf(wb, "Content-Length: %zu\r\n\r\n", ct->body_len);
    err = err ? err : tl_sip_wbuf_write(wb, ct->body, ct->body_len);
    return err;
}

/* ---- sending ---- */

/* RFC 1918, RFC 6598 (carrier-grade NAT), link-local, RFC 4193 unique-local: an address
 * that names a host only inside somebody's network — a NATed peer's Contact. */
static bool private_addr(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr);
        return (a >> 24) == 10 || (a >> 20) == (172u << 4 | 1) || (a >> 16) == (192u << 8 | 168) ||
               (a >> 22) == (100u << 2 | 1) || (a >> 16) == (169u << 8 | 254);
    }
    const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
    return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
    return !memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
                   &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr, 16);
}

/* The dialog's own connection (or, for UDP, its source address) stands in for a resolved
 * hop when it leads to the same host, or when the hop is a private address the peer
 * cannot be reached at (tl_sip_request.prefer). true: peer filled in. */
static bool use_prefer(struct tl_sip_ctsx *ct, struct tl_sip_peer *peer)
{
    if (!ct->have_prefer || ct->prefer.tp != peer->tp)
        return false;
    if (peer->tp == TL_SIP_TP_UDP) {
        if (!private_addr(&peer->sa) || private_addr(&ct->prefer.sa))
            return false;
        memcpy(&peer->sa, &ct->prefer.sa, sizeof peer->sa);
        return true;
    }
    struct sockaddr_storage remote;
    enum tl_sip_transport kind;
    if (!ct->prefer.conn ||
        tl_sip_tport_remote(tl__sip_stack_tport(ct->u->s), ct->prefer.conn, &kind, &remote) ||
        kind != peer->tp || (!same_ip(&remote, &peer->sa) && !private_addr(&peer->sa)))
        return false;
    memcpy(&peer->sa, &remote, sizeof peer->sa);
    peer->conn = ct->prefer.conn;
    return true;
}

/* The hop for this attempt: the fixed dest or the current resolved target; streams get a
 * connection (reused or opened, §18.1.1). */
static int pick_peer(struct tl_sip_ctsx *ct, struct tl_sip_peer *peer)
{
    struct tl_sip_tport *tp = tl__sip_stack_tport(ct->u->s);
    const char *tls_name = ct->tls_name;
    memset(peer, 0, sizeof *peer);
    if (ct->have_dest) {
        *peer = ct->dest;
        struct sockaddr_storage ignored;
        /* the dest's own connection while it is up (in-dialog: the INVITE's): no lookup */
        if (peer->tp != TL_SIP_TP_UDP && peer->conn && !tl_sip_tport_local(tp, peer, &ignored))
            return 0;
    } else {
        const struct tl_net_target *t = tl_net_targets_cur(ct->tg);
        if (!t)
            return ENOENT;
        peer->tp = ct->tp;
        memcpy(&peer->sa, &t->sa, sizeof t->sa);
        if (!tls_name)
            tls_name = ct->tg->tls_name;
        if (use_prefer(ct, peer)) {
            peer->tpo = tp;
            return 0;
        }
    }
    peer->tpo = tp;
    if (peer->tp == TL_SIP_TP_UDP)
        return 0;
    if (peer->tp != TL_SIP_TP_TCP && peer->tp != TL_SIP_TP_TLS)
        return EPROTONOSUPPORT;
    /* an open connection (the dest's, or one reused by address) is asked for anyway: the
     * transport returns it when it is still up, or opens a new one */
    return tl_sip_tport_connect(tp, peer->tp, (const struct sockaddr *)&peer->sa, tls_name,
                                &peer->conn);
}

static void on_ctr(struct tl_sip_ctr *t, const struct tl_sip_msg *resp, int err, void *arg);

static int attempt(struct tl_sip_ctsx *ct)
{
    int err = pick_peer(ct, &ct->peer);
    if (err)
        return err;
    new_branch(ct->branch);
    if ((err = via_line(ct, ct->via, sizeof ct->via)))
        return err;
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, g_out, sizeof g_out);
    if ((err = print_request(ct, &wb, ct->met, false)))
        return err;
    ct->att_1xx = ct->cancel_sent = false;
    return tl_sip_ctr_start(ct->u->ctr, &ct->ctr, ct->mid, ct->branch, wb.buf, wb.len, &ct->peer,
                            on_ctr, ct, tl_sip_stack_now(ct->u->s));
}

/* RFC 3263 §4.3: the next target after a transport error, a timeout or a 503 */
static int attempt_failover(struct tl_sip_ctsx *ct, bool advance)
{
    char where[80] = "";
    int last = ENOENT; /* every target failed at once: the last one's error says why */
    for (;;) {
        if (advance) {
            if (!ct->tg || !tl_net_targets_next(ct->tg))
                return last;
            tl_net_target_str(tl_net_targets_cur(ct->tg), where, sizeof where);
            tl_info("sip", "uac.failover", "next=%s", where);
        }
        int err = attempt(ct);
        if (!err || !ct->tg)
            return err;
        last = err;
        advance = true;
    }
}

/* RFC 3261 §9.1: "If no final response has been received after 64*T1 seconds, the UAC
 * SHOULD consider the original transaction cancelled". A proceeding INVITE transaction runs
 * no timer of its own (§17.1.1.2), so a peer that answers neither the CANCEL nor the INVITE
 * would otherwise keep the request, and the call above it, forever. */
static void on_cancel_timeout(struct tl_timer *t, uint64_t now)
{
    (void)now;
    struct tl_sip_ctsx *ct =
        (struct tl_sip_ctsx *)(void *)((char *)t - offsetof(struct tl_sip_ctsx, cancel_tm));
    tl_info("sip", "uac.cancel_unanswered", "method=%s", ct->met);
    finish(ct, NULL, ETIMEDOUT);
}

static void send_cancel(struct tl_sip_ctsx *ct)
{
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, g_out, sizeof g_out);
    struct tl_sip_ctr *c;
    ct->cancel_sent = true;
    if (!ct->cancel_tm.idx)
        tl_timer_start(ct->u->heap, &ct->cancel_tm, tl_sip_stack_now(ct->u->s) + 64ull * ct->u->t1,
                       on_cancel_timeout);
    if (print_request(ct, &wb, "CANCEL", true) ||
        tl_sip_ctr_start(ct->u->ctr, &c, TL_SIP_METHOD_CANCEL, ct->branch, wb.buf, wb.len,
                         &ct->peer, NULL, NULL, tl_sip_stack_now(ct->u->s)))
        tl_warnl("sip", "uac.cancel_failed", "call_id_len=%zu", strlen(ct->call_id));
}

/* 401/407 (§22.2): answer once, for the expected realm; 0 when the retry went out */
static int answer_challenge(struct tl_sip_ctsx *ct, const struct tl_sip_msg *resp)
{
    bool proxy = resp->scode == 407;
    enum tl_sip_hdr_id id = proxy ? TL_SIP_HDR_PROXY_AUTHENTICATE : TL_SIP_HDR_WWW_AUTHENTICATE;
    struct tl_sip_auth chv[CHALLENGES_MAX];
    size_t chc = 0;
    for (size_t i = 0; i < resp->hdrc && chc < CHALLENGES_MAX; i++)
        if (resp->hdrv[i].id == id && !tl_sip_auth_decode(&chv[chc], &resp->hdrv[i].val))
            chc++;
    char host[TL_NET_NAME_MAX + 3] = "";
    const char *realm = ct->auth_realm;
    if (!realm) {
        struct tl_sip_uri uri;
        struct tl_pl pl = tl_pl_str(ct->ruri);
        if (tl_sip_uri_decode(&uri, &pl) || uri.host.l >= sizeof host)
            return EINVAL;
        memcpy(host, uri.host.p, uri.host.l);
        host[uri.host.l] = '\0';
        realm = host;
    }
    /* one retry per request, so each nonce we answer is answered once: nc = 1 */
    struct tl_sip_digest_client cl = {.method = ct->met,
                                      .uri = ct->ruri,
                                      .username = ct->auth_user,
                                      .password = ct->auth_pass,
                                      .realm = realm,
                                      .nc = 1};
    const char *name = proxy ? "Proxy-Authorization" : "Authorization";
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, ct->authz, sizeof ct->authz - 3);
    int err = tl_sip_wbuf_printf(&wb, "%s: ", name);
    err = err ? err : tl_sip_digest_answer(&wb, chv, chc, &cl, NULL);
    if (err) {
        ct->authz[0] = '\0';
        tl_warnl("sip", "uac.auth_refused", "code=%u reason=\"%s\"", resp->scode,
                 err == EPERM ? "challenge for another realm" : strerror(err));
        return err;
    }
    memcpy(ct->authz + wb.len, "\r\n", 3);
    ct->auth_done = true;
    ct->cseq++; /* §22.2: a new request, same Call-ID and From tag, CSeq + 1 */
    return attempt(ct);
}

static void on_ctr(struct tl_sip_ctr *t, const struct tl_sip_msg *resp, int err, void *arg)
{
    (void)t;
    struct tl_sip_ctsx *ct = arg;
    if (!resp) {
        ct->ctr = NULL;
        char ip[64];
        uint16_t port;
        tl_sip_peer_ip(&ct->peer, ip, sizeof ip, &port);
        tl_info("sip", "uac.hop_failed", "method=%s hop=%s%s%s:%u tp=%s err=%s", ct->met,
                strchr(ip, ':') ? "[" : "", ip, strchr(ip, ':') ? "]" : "", port,
                tl_sip_transport_name(ct->peer.tp), strerror(err));
        if (!ct->att_1xx && !ct->cancel_wanted && attempt_failover(ct, true) == 0)
            return;
        finish(ct, NULL, err);
        return;
    }
    if (resp->scode < 200) {
        ct->att_1xx = true;
        /* §9.1: a CANCEL only after a provisional response */
        if (ct->cancel_wanted && !ct->cancel_sent)
            send_cancel(ct);
        ct->h(ct, resp, 0, ct->arg);
        return;
    }
    ct->ctr = NULL;
    if (resp->scode == 503 && !ct->cancel_wanted && ct->tg && attempt_failover(ct, true) == 0)
        return;
    if ((resp->scode == 401 || resp->scode == 407) && ct->auth_user && !ct->auth_done &&
        !ct->cancel_wanted && answer_challenge(ct, resp) == 0)
        return;
    finish(ct, resp, 0);
}

static void on_resolved(int err, const struct tl_net_targets *tg, void *arg)
{
    struct tl_sip_ctsx *ct = arg;
    ct->q = NULL;
    if (!err && !(ct->tg = malloc(sizeof *ct->tg)))
        err = ENOMEM;
    if (!err) {
        *ct->tg = *tg;
        err = attempt_failover(ct, false);
    }
    if (err)
        finish(ct, NULL, err);
}

int tl__sip_uac_recv(struct tl_sip_uac *u, const struct tl_sip_msg *msg,
                     const struct tl_sip_peer *peer)
{
    return tl_sip_ctr_recv(u->ctr, msg, peer, tl_sip_stack_now(u->s));
}

void tl__sip_uac_conn_err(uint64_t conn, int err, const char *why, void *arg)
{
    struct tl_sip_uac *u = tl__sip_stack_uac(arg);
    if (why && err != ECONNRESET)
        tl_warnl("sip", "uac.conn_failed", "err=%s reason=\"%s\"", strerror(err), why);
    if (u)
        tl_sip_ctr_conn_failed(u->ctr, conn, err);
}

/* ---- API ---- */

int tl_sip_stack_request(struct tl_sip_stack *s, const struct tl_sip_request *rq, tl_sip_resp_h *h,
                         void *arg, struct tl_sip_ctsx **ctp)
{
    struct tl_sip_uac *u = tl__sip_stack_uac(s);
    if (!u || !rq || !h || !rq->ruri || !rq->from || !rq->to || !rq->call_id ||
        rq->method == TL_SIP_METHOD_ACK || rq->method == TL_SIP_METHOD_CANCEL ||
        rq->method == TL_SIP_METHOD_OTHER || !hdrs_ok(rq->hdrs) || (rq->body_len && !rq->body) ||
        rq->cseq >= (1u << 31) - 1)
        return EINVAL;
    struct tl_sip_ctsx *ct = calloc(1, sizeof *ct);
    if (!ct)
        return ENOMEM;
    static const char *names[] = {
        [TL_SIP_METHOD_INVITE] = "INVITE",   [TL_SIP_METHOD_BYE] = "BYE",
        [TL_SIP_METHOD_OPTIONS] = "OPTIONS", [TL_SIP_METHOD_REGISTER] = "REGISTER",
        [TL_SIP_METHOD_PRACK] = "PRACK",     [TL_SIP_METHOD_SUBSCRIBE] = "SUBSCRIBE",
        [TL_SIP_METHOD_NOTIFY] = "NOTIFY",   [TL_SIP_METHOD_PUBLISH] = "PUBLISH",
        [TL_SIP_METHOD_INFO] = "INFO",       [TL_SIP_METHOD_REFER] = "REFER",
        [TL_SIP_METHOD_MESSAGE] = "MESSAGE", [TL_SIP_METHOD_UPDATE] = "UPDATE",
    };
    const char *met =
        (size_t)rq->method < sizeof names / sizeof names[0] ? names[rq->method] : NULL;
    int err = 0;
    ct->u = u;
    ct->mid = rq->method;
    ct->cseq = rq->cseq;
    ct->tp = rq->tp ? rq->tp : TL_SIP_TP_UDP;
    ct->h = h;
    ct->arg = arg;
    ct->body_len = rq->body_len;
    ct->met = dup_or_null(met);
    ct->ruri = strdup(rq->ruri);
    ct->from = strdup(rq->from);
    ct->to = strdup(rq->to);
    ct->call_id = strdup(rq->call_id);
    ct->contact = dup_or_null(rq->contact);
    ct->route = dup_or_null(rq->route);
    ct->hdrs = dup_or_null(rq->hdrs);
    ct->ctype = dup_or_null(rq->ctype);
    ct->tls_name = dup_or_null(rq->tls_name);
    ct->auth_user = dup_or_null(rq->auth_user);
    ct->auth_pass = dup_or_null(rq->auth_pass);
    ct->auth_realm = dup_or_null(rq->auth_realm);
    ct->hop = dup_or_null(rq->hop);
    if (rq->prefer) {
        ct->have_prefer = true;
        ct->prefer = *rq->prefer;
    }
    if (rq->body_len && (ct->body = malloc(rq->body_len)))
        memcpy(ct->body, rq->body, rq->body_len);
    if (!met || !ct->ruri || !ct->from || !ct->to || !ct->call_id ||
        (rq->contact && !ct->contact) || (rq->route && !ct->route) || (rq->hdrs && !ct->hdrs) ||
        (rq->ctype && !ct->ctype) || (rq->tls_name && !ct->tls_name) ||
        (rq->auth_user && !ct->auth_user) || (rq->auth_pass && !ct->auth_pass) ||
        (rq->auth_realm && !ct->auth_realm) || (rq->hop && !ct->hop) ||
        (rq->body_len && !ct->body)) {
        ct_free(ct);
        return met ? ENOMEM : EINVAL;
    }
    if (rq->auth_user && !rq->auth_pass) {
        ct_free(ct);
        return EINVAL;
    }
    ct->pprev = &u->reqs;
    if (rq->dest) {
        ct->have_dest = true;
        ct->dest = *rq->dest;
        err = attempt(ct);
    } else if (rq->targets) {
        /* resolved by the caller (RFC 3263 already done): failover as after our own lookup */
        if (!rq->targets->n || !(ct->tg = malloc(sizeof *ct->tg)))
            err = rq->targets->n ? ENOMEM : ENOENT;
        if (!err) {
            *ct->tg = *rq->targets;
            err = attempt_failover(ct, false);
        }
    } else {
        /* RFC 3263 from the hop's host: the first Route URI or the remote target for
         * in-dialog requests (§12.2.1.1), else the Request-URI (§8.1.2) */
        struct tl_sip_uri uri;
        struct tl_pl pl = tl_pl_str(ct->hop ? ct->hop : ct->ruri);
        char host[TL_NET_NAME_MAX + 3];
        err = tl_sip_uri_decode(&uri, &pl) ? EINVAL : 0;
        if (!err && (uri.scheme != TL_SIP_SCHEME_SIP && uri.scheme != TL_SIP_SCHEME_SIPS))
            err = EINVAL;
        if (!err && uri.host.l >= sizeof host)
            err = E2BIG;
        if (!err) {
            memcpy(host, uri.host.p, uri.host.l);
            host[uri.host.l] = '\0';
            if (!u->res) {
                struct tl_net_resolver_opts o = {.servers = u->dns_servers};
                err = tl_net_resolver_alloc(&u->res, u->loop, &o);
            }
        }
        if (!err)
            err = tl_net_resolve(u->res, host, uri.has_port ? uri.port : 0,
                                 (enum tl_net_proto)ct->tp, on_resolved, ct, &ct->q);
    }
    if (err) {
        if (ct->ctr)
            tl_sip_ctr_detach(ct->ctr);
        ct_free(ct);
        return err;
    }
    ct->next = u->reqs;
    if (u->reqs)
        u->reqs->pprev = &ct->next;
    u->reqs = ct;
    *ctp = ct;
    return 0;
}

const char *tl_sip_failed_step(int err, bool have_addr)
{
    switch (err) {
    case ENOENT:
    case EIO: /* the resolver's SERVFAIL or refused query */
        return "dns";
    case ETIMEDOUT:
        return have_addr ? "timeout" : "dns";
    case EPROTO:
        return "tls";
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EPIPE:
    case EADDRNOTAVAIL:
    case EMFILE:
        return "connect";
    default:
        return "internal";
    }
}

int tl_sip_stack_cancel(struct tl_sip_stack *s, struct tl_sip_ctsx *ct)
{
    (void)s;
    if (!ct || ct->mid != TL_SIP_METHOD_INVITE)
        return EINVAL;
    if (ct->cancel_wanted)
        return 0;
    ct->cancel_wanted = true;
    if (ct->ctr && ct->att_1xx)
        send_cancel(ct);
    return 0;
}

const struct tl_sip_peer *tl_sip_ctsx_peer(const struct tl_sip_ctsx *ct)
{
    return &ct->peer;
}

int tl_sip_stack_ack(struct tl_sip_stack *s, const struct tl_sip_request *rq)
{
    struct tl_sip_uac *u = tl__sip_stack_uac(s);
    if (!u || !rq || !rq->dest || !rq->ruri || !rq->from || !rq->to || !rq->call_id ||
        !hdrs_ok(rq->hdrs) || (rq->body_len && !rq->body))
        return EINVAL;
    /* a stack-local request record, only to share the printer; nothing is kept */
    struct tl_sip_ctsx ct = {.u = u,
                             .ruri = (char *)rq->ruri,
                             .from = (char *)rq->from,
                             .to = (char *)rq->to,
                             .call_id = (char *)rq->call_id,
                             .contact = (char *)rq->contact,
                             .route = (char *)rq->route,
                             .hdrs = (char *)rq->hdrs,
                             .ctype = (char *)rq->ctype,
                             .body = (char *)rq->body,
                             .body_len = rq->body_len,
                             .cseq = rq->cseq,
                             .tls_name = (char *)rq->tls_name,
                             .have_dest = true,
                             .dest = *rq->dest};
    int err = pick_peer(&ct, &ct.peer);
    if (err)
        return err;
    new_branch(ct.branch); /* §17.1.1.3 is for non-2xx only: the 2xx ACK is a new request */
    if ((err = via_line(&ct, ct.via, sizeof ct.via)))
        return err;
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, g_out, sizeof g_out);
    if ((err = print_request(&ct, &wb, "ACK", false)))
        return err;
    return tl_sip_tport_send(tl__sip_stack_tport(s), &ct.peer, wb.buf, wb.len);
}
