/* sip/session: INVITE sessions on dialogs (RFC 3261 §12–§15), UPDATE (RFC 3311), INFO
 * (RFC 6086), REFER/NOTIFY (RFC 3515), session timers (RFC 4028), and the sip_test_policy
 * INVITE handler that runs test calls through all of it.
 *
 * Entry points from the stack: invite hook (test policy only), dialog hook (in-dialog
 * requests, and a CANCEL for an INVITE we have not answered: then tx is the INVITE's),
 * stray hook (ACKs for our 2xx, 2xx retransmissions to our INVITEs), client transaction
 * answers (resp_h), and timers on the stack's heap. Each entry holds the session
 * (busy) so that on_terminated may run anywhere inside and the free waits until the
 * stack of calls unwinds (sess_release). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/core.h"
#include "sip/dialog.h"
#include "sip/inauth.h"

#define ALLOW_DLG   "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY\r\n"
#define SDP         "application/sdp"
#define RING_MAX_MS (180u * 1000u)
#define HDRS_MAX    4096

struct uac_req;

struct tl_sip_sess {
    struct tl_sip_sess *next, **pprev;
    struct tl_sip_sess_layer *l;
    const struct tl_sip_sess_h *h;
    void *arg;
    enum tl_sip_sess_state st;
    bool uac, in_table, notified;
    bool conn_ref;    /* counted in dlg.peer's connection (tl_sip_stack_conn_ref) */
    bool bye_out;     /* our BYE is in flight (its outcome still reaches on_response) */
    int busy;         /* entry points on the C stack */
    unsigned pending; /* our client transactions still running */
    struct tl_sip_dlg dlg;
    bool has_dlg;
    char ltag[20];
    struct tl_sip_st timer;
    bool peer_timer, peer_update; /* the peer supports timer / allows UPDATE */
    struct tl_timer st_tm;        /* RFC 4028 refresh (refresher) or expiry (other side) */
    /* UAS: the INVITE being answered (initial or re-INVITE), kept to print replies */
    struct tl_sip_tsx *itx; /* until our final response */
    char *inv;
    struct tl_sip_msg *inv_m; /* inv decoded, in storage of this session's own (issue 11:
                               * no process-wide decode buffer that another session's
                               * callback could overwrite) */
    size_t inv_len;
    struct tl_sip_peer ipeer;
    bool ireq_timer; /* Require: timer in our 2xx */
    /* UAS: our 2xx awaiting its ACK (§13.3.1.4) */
    bool await_ack, ack_answer; /* ack_answer: our 2xx held an offer; the ACK answers */
    bool initial_ack;
    uint32_t ack_cseq, rt_int;
    uint64_t rt_end;
    char *ok_hdrs, *ok_body;
    size_t ok_len;
    struct tl_timer rt_tm;
    /* our last body (re-sent in session refresh re-INVITEs: same version, RFC 3264 §8) */
    char *lbody;
    size_t lbody_len;
    /* UAC */
    struct uac_req *inv_req, *upd_req; /* our INVITE/re-INVITE, UPDATE in progress */
    bool reinv_no_offer;               /* our re-INVITE had no body: answer in the ACK */
    bool retried_422, canceling;
    char *rq_ruri, *rq_from, *rq_to, *rq_hdrs, *rq_tls, *au_user, *au_pass, *au_realm;
    struct tl_sip_peer rq_dest;
    bool has_dest;
    enum tl_sip_transport rq_tp;
    uint32_t icseq, min_se_peer;
    uint32_t ack_sent_cseq; /* the ACK we sent last (re-sent on 2xx retransmissions) */
    char *ack_body;
    size_t ack_body_len;
    /* §14.1 glare: the offer to send again after the random delay */
    struct tl_timer glare_tm;
    bool glare_update;
    char *glare_body;
    size_t glare_len;
    /* REFER we accepted: NOTIFYs carry Event: refer;id=<REFER CSeq> */
    uint32_t refer_id;
    bool refer_active;
};

struct uac_req {
    struct uac_req *next, **pprev; /* the layer's list: freed at shutdown if still there */
    struct tl_sip_sess *sess;
    enum tl_sip_method m;
    struct tl_sip_ctsx *ct;
    bool refresh; /* a session refresh of ours (RFC 4028) */
    bool offer;   /* carried an offer */
};

struct tcall; /* test policy */

struct tl_sip_sess_layer {
    struct tl_sip_stack *s;
    struct tl_sip_sess_cfg cfg;
    char local[64];
    char host[256]; /* our TLS name (cfg.host), "" = none */
    bool wildcard;  /* listening on 0.0.0.0 / :: and no public_ip: Contact from the socket */
    char policy[24];
    unsigned bye_after_s;
    struct tl_sip_inauth *tauth; /* test policy: digest credentials (borrowed), or NULL */
    struct tl_sip_dlg_table tbl;
    struct tl_sip_sess *all;
    size_t n;
    struct uac_req *reqs;
    bool closing; /* the stack stopped: its heap is gone, nothing more is sent */
};

static uint64_t now_ms(struct tl_sip_sess_layer *l)
{
    return tl_sip_stack_now(l->s);
}

static void new_tag(char out[20])
{
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static char *xdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *memdup0(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        if (n)
            memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

const char *tl_sip_sess_reason_name(enum tl_sip_sess_reason r)
{
    static const char *const n[] = {"bye_received", "bye_sent", "cancel", "session_expired",
                                    "ack_timeout",  "rejected", "error"};
    return (unsigned)r < sizeof n / sizeof n[0] ? n[r] : "?";
}

/* sip: with transport=tls rather than sips: (RFC 5630 §3.1.3: sips: asks for TLS on every
 * hop, more than a TLS trunk promises; a sips Request-URI is rare on trunks).
 * Host: over TLS the name in our certificate (cfg.host), since a carrier that opens a new
 * TLS connection to our Contact verifies it against that name (RFC 5922 §7.2) and an IP
 * fails; else the configured address (public_ip), or — listening on a wildcard — the local
 * address the peer's traffic reaches us on (peer may be NULL: the listen address). */
static void our_contact(struct tl_sip_sess_layer *l, enum tl_sip_transport tp,
                        const struct tl_sip_peer *peer, char *buf, size_t cap)
{
    char ip[64];
    const char *host = l->local;
    if (tp == TL_SIP_TP_TLS && l->host[0]) {
        host = l->host;
    } else if (l->wildcard && peer) {
        struct sockaddr_storage loc;
        uint16_t ignored;
        if (!tl_sip_tport_local(tl__sip_stack_tport(l->s), peer, &loc)) {
            struct tl_sip_peer p = {.sa = loc};
            tl_sip_peer_ip(&p, ip, sizeof ip, &ignored);
            host = ip;
        }
    }
    bool v6 = strchr(host, ':') != NULL;
    int port = tp == TL_SIP_TP_TLS ? l->cfg.tls_port : l->cfg.tcp_port;
    snprintf(buf, cap, "<sip:%s%s%s:%d%s>", v6 ? "[" : "", host, v6 ? "]" : "", port,
             tp == TL_SIP_TP_TLS   ? ";transport=tls"
             : tp == TL_SIP_TP_TCP ? ";transport=tcp"
                                   : "");
}

/* ---- life cycle ---- */

static void req_link(struct tl_sip_sess_layer *l, struct uac_req *r)
{
    r->next = l->reqs;
    r->pprev = &l->reqs;
    if (l->reqs)
        l->reqs->pprev = &r->next;
    l->reqs = r;
}

static void req_free(struct uac_req *r)
{
    *r->pprev = r->next;
    if (r->next)
        r->next->pprev = r->pprev;
    free(r);
}

static void stop_timers(struct tl_sip_sess *x)
{
    if (x->l->closing)
        return;
    struct tl_theap *hp = tl_sip_stack_timers(x->l->s);
    tl_timer_stop(hp, &x->st_tm);
    tl_timer_stop(hp, &x->rt_tm);
    tl_timer_stop(hp, &x->glare_tm);
}

/* The INVITE server transaction outlives our interest in it (it absorbs retransmissions
 * for 64*T1 after the final, RFC 6026): unhook ourselves so it never holds a pointer to
 * a session that may be freed before it is. */
static void itx_drop(struct tl_sip_sess *x)
{
    if (x->itx)
        tl_sip_tsx_set_uarg(x->itx, NULL);
    x->itx = NULL;
}

static void sess_free(struct tl_sip_sess *x)
{
    struct tl_sip_sess_layer *l = x->l;
    stop_timers(x);
    if (x->itx && !l->closing) /* unanswered: the transaction outlives us */
        tl_sip_tsx_set_uarg(x->itx, NULL);
    if (x->conn_ref && !l->closing)
        tl_sip_stack_conn_ref(l->s, &x->dlg.peer, -1);
    if (x->in_table)
        tl_sip_dlg_table_del(&l->tbl, &x->dlg);
    *x->pprev = x->next;
    if (x->next)
        x->next->pprev = x->pprev;
    l->n--;
    tl_sip_dlg_reset(&x->dlg);
    free(x->inv);
    free(x->inv_m);
    free(x->ok_hdrs);
    free(x->ok_body);
    free(x->lbody);
    free(x->rq_ruri);
    free(x->rq_from);
    free(x->rq_to);
    free(x->rq_hdrs);
    free(x->rq_tls);
    free(x->au_user);
    if (x->au_pass)
        sodium_memzero(x->au_pass, strlen(x->au_pass));
    free(x->au_pass);
    free(x->au_realm);
    free(x->ack_body);
    free(x->glare_body);
    free(x);
}

static void sess_hold(struct tl_sip_sess *x)
{
    x->busy++;
}

/* frees a terminated session once nothing refers to it any more */
static void sess_release(struct tl_sip_sess *x)
{
    if (--x->busy == 0 && x->notified && x->pending == 0)
        sess_free(x);
}

static struct tl_sip_sess *sess_new(struct tl_sip_sess_layer *l, const struct tl_sip_sess_h *h,
                                    void *arg)
{
    struct tl_sip_sess *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->l = l;
    x->h = h;
    x->arg = arg;
    new_tag(x->ltag);
    x->next = l->all;
    x->pprev = &l->all;
    if (l->all)
        l->all->pprev = &x->next;
    l->all = x;
    l->n++;
    return x;
}

static int send_bye(struct tl_sip_sess *x, const char *reason);

/* The one way out: on_terminated exactly once; the object goes in sess_release. */
static void terminate(struct tl_sip_sess *x, enum tl_sip_sess_reason why, uint16_t scode)
{
    if (x->notified)
        return;
    x->notified = true;
    x->st = TL_SIP_SESS_TERMINATED;
    stop_timers(x);
    x->await_ack = false;
    if (x->in_table) { /* later requests for the dialog get 481 (§12.2.2) */
        tl_sip_dlg_table_del(&x->l->tbl, &x->dlg);
        x->in_table = false;
    }
    tl_info("sip", "session.end", "callid=%s reason=%s code=%u",
            x->dlg.callid ? x->dlg.callid : "-", tl_sip_sess_reason_name(why), scode);
    x->h->on_terminated(x, why, scode, x->arg);
}

/* ---- UAS replies ---- */

static const struct tl_sip_msg *inv_msg(struct tl_sip_sess *x)
{
    if (!x->inv || (!x->inv_m && !(x->inv_m = malloc(sizeof *x->inv_m))))
        return NULL;
    return !tl_sip_msg_decode(x->inv_m, x->inv, x->inv_len) ? x->inv_m : NULL;
}

static int keep_inv(struct tl_sip_sess *x, const struct tl_sip_msg *m, struct tl_sip_tsx *tx)
{
    char *c = memdup0(m->mb.p, m->mb.l);
    if (!c)
        return ENOMEM;
    free(x->inv);
    x->inv = c;
    x->inv_len = m->mb.l;
    x->itx = tx;
    x->ipeer = *tl_sip_tsx_peer(tx);
    tl_sip_tsx_set_uarg(tx, x); /* a CANCEL finds us through it (on_dialog_req) */
    return 0;
}

static int set_lbody(struct tl_sip_sess *x, const char *body, size_t len)
{
    if (!body || !len)
        return 0;
    char *c = memdup0(body, len);
    if (!c)
        return ENOMEM;
    free(x->lbody);
    x->lbody = c;
    x->lbody_len = len;
    return 0;
}

/* Record-Route of the INVITE, copied to our 1xx/2xx in order (§12.1.1) */
static size_t print_rr(const struct tl_sip_msg *m, char *buf, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->hdrc; i++) {
        const struct tl_sip_hdr *h = &m->hdrv[i];
        if (h->id != TL_SIP_HDR_RECORD_ROUTE || n + h->val.l + 20 > cap)
            continue;
        n += (size_t)snprintf(buf + n, cap - n, "Record-Route: ");
        size_t k;
        if (tl_sip_hdr_unfold(buf + n, cap - n, &k, &h->val))
            return 0;
        n += k;
        n += (size_t)snprintf(buf + n, cap - n, "\r\n");
    }
    buf[n] = 0;
    return n;
}

/* Contact, Allow, Supported, timers (and Record-Route for the dialog-creating INVITE) */
static void uas_hdrs(struct tl_sip_sess *x, const struct tl_sip_msg *m, uint16_t scode, char *buf,
                     size_t cap)
{
    size_t n = 0;
    if (!m->to.tag.l)
        n = print_rr(m, buf, cap);
    n += (size_t)snprintf(buf + n, cap - n, "Contact: %s\r\n" ALLOW_DLG "Supported: timer\r\n",
                          x->dlg.contact);
    if (scode >= 200 && scode < 300 && x->timer.se) {
        char se[80];
        tl_sip_st_hdr(se, sizeof se, &x->timer, false);
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", se,
                              x->ireq_timer ? "Require: timer\r\n" : "");
    }
}

static void on_st(struct tl_timer *tm, uint64_t now);

/* (re)starts the RFC 4028 clock after a successful refresh (§10) */
static void st_restart(struct tl_sip_sess *x)
{
    struct tl_theap *hp = tl_sip_stack_timers(x->l->s);
    tl_timer_stop(hp, &x->st_tm);
    if (!x->timer.se || x->st != TL_SIP_SESS_CONFIRMED)
        return;
    uint64_t d =
        x->timer.we_refresh ? tl_sip_st_refresh_ms(x->timer.se) : tl_sip_st_expire_ms(x->timer.se);
    tl_timer_start(hp, &x->st_tm, now_ms(x->l) + d, on_st);
}

#define OF(tm, member)                                                                             \
    ((struct tl_sip_sess *)(void *)((char *)(tm)-offsetof(struct tl_sip_sess, member)))

/* §13.3.1.4: the 2xx again, T1 doubling to T2, until the ACK; none in 64*T1 → BYE */
static void on_rt(struct tl_timer *tm, uint64_t now)
{
    struct tl_sip_sess *x = OF(tm, rt_tm);
    struct tl_sip_sess_layer *l = x->l;
    sess_hold(x);
    if (now >= x->rt_end) {
        x->await_ack = false;
        tl_info("sip", "session.ack_timeout", "callid=%s", x->dlg.callid);
        send_bye(x, "SIP;cause=408;text=\"ACK not received\"");
        terminate(x, TL_SIP_SESS_ACK_TIMEOUT, 0);
    } else if (x->ipeer.tp == TL_SIP_TP_UDP) {
        const struct tl_sip_msg *m = inv_msg(x);
        if (m) /* printed again from the INVITE: the same bytes, statelessly */
            tl_sip_stack_reply(l->s, NULL, m, &x->ipeer, 200, x->ok_hdrs, x->ltag,
                               x->ok_len ? SDP : NULL, x->ok_body, x->ok_len);
        x->rt_int = x->rt_int * 2 < l->cfg.t2 ? x->rt_int * 2 : l->cfg.t2;
        uint64_t next = now + x->rt_int;
        tl_timer_start(tl_sip_stack_timers(l->s), &x->rt_tm, next < x->rt_end ? next : x->rt_end,
                       on_rt);
    } else { /* reliable transport: no retransmissions, only the wait (§13.3.1.4) */
        tl_timer_start(tl_sip_stack_timers(l->s), &x->rt_tm, x->rt_end, on_rt);
    }
    sess_release(x);
}

/* sends a 2xx on the current INVITE server transaction and waits for the ACK */
static int send_2xx(struct tl_sip_sess *x, const struct tl_sip_msg *m, uint16_t scode,
                    const char *ctype, const char *body, size_t len, bool offer)
{
    struct tl_sip_sess_layer *l = x->l;
    char hdrs[HDRS_MAX];
    uas_hdrs(x, m, scode, hdrs, sizeof hdrs);
    char *h = strdup(hdrs), *b = memdup0(body ? body : "", len);
    if (!h || !b || set_lbody(x, body, len)) {
        free(h);
        free(b);
        return ENOMEM;
    }
    int err = tl_sip_stack_reply(l->s, x->itx, m, &x->ipeer, scode, hdrs, x->ltag,
                                 len ? (ctype ? ctype : SDP) : NULL, body, len);
    itx_drop(x); /* the transaction is in Accepted now: RFC 6026 */
    if (err) {
        free(h);
        free(b);
        return err;
    }
    free(x->ok_hdrs);
    free(x->ok_body);
    x->ok_hdrs = h;
    x->ok_body = b;
    x->ok_len = len;
    x->await_ack = true;
    x->ack_answer = offer;
    x->ack_cseq = m->cseq.num;
    x->rt_int = l->cfg.t1;
    x->rt_end = now_ms(l) + 64u * (uint64_t)l->cfg.t1;
    tl_timer_start(tl_sip_stack_timers(l->s), &x->rt_tm,
                   x->ipeer.tp == TL_SIP_TP_UDP ? now_ms(l) + x->rt_int : x->rt_end, on_rt);
    return 0;
}

/* ---- UAC requests ---- */

static void on_resp(struct tl_sip_ctsx *ct, const struct tl_sip_msg *resp, int err, void *arg);

static int send_req(struct tl_sip_sess *x, enum tl_sip_method m, const char *hdrs,
                    const char *ctype, const char *body, size_t len, struct uac_req **rp)
{
    struct tl_sip_request rq;
    struct uac_req *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    tl_sip_dlg_request(&x->dlg, &rq, m);
    rq.hdrs = hdrs;
    rq.ctype = len ? (ctype ? ctype : SDP) : NULL;
    rq.body = body;
    rq.body_len = len;
    rq.tls_name = x->rq_tls;
    rq.auth_user = x->au_user;
    rq.auth_pass = x->au_pass;
    rq.auth_realm = x->au_realm;
    r->sess = x;
    r->m = m;
    int err = tl_sip_stack_request(x->l->s, &rq, on_resp, r, &r->ct);
    if (err) {
        free(r);
        return err;
    }
    req_link(x->l, r);
    x->pending++;
    if (rp)
        *rp = r;
    return 0;
}

static int send_bye(struct tl_sip_sess *x, const char *reason)
{
    char hdrs[200];
    if (!x->has_dlg)
        return EINVAL;
    snprintf(hdrs, sizeof hdrs, "%s%s%s", reason ? "Reason: " : "", reason ? reason : "",
             reason ? "\r\n" : "");
    int err = send_req(x, TL_SIP_METHOD_BYE, hdrs, NULL, NULL, 0, NULL);
    x->bye_out = !err;
    if (err)
        tl_warnl("sip", "session.bye_failed", "callid=%s err=%s", x->dlg.callid, strerror(err));
    return err;
}

static int send_ack(struct tl_sip_sess *x, uint32_t cseq, const char *body, size_t len)
{
    struct tl_sip_request rq;
    tl_sip_dlg_request(&x->dlg, &rq, TL_SIP_METHOD_ACK);
    rq.cseq = cseq;
    rq.ctype = len ? SDP : NULL;
    rq.body = body;
    rq.body_len = len;
    rq.tls_name = x->rq_tls;
    char *b = memdup0(body ? body : "", len);
    if (!b)
        return ENOMEM;
    free(x->ack_body);
    x->ack_body = b;
    x->ack_body_len = len;
    x->ack_sent_cseq = cseq;
    return tl_sip_stack_ack(x->l->s, &rq);
}

/* the session-timer lines of a request we send (RFC 4028 §7.1) */
static void st_req_hdrs(struct tl_sip_sess *x, char *buf, size_t cap, bool refresh)
{
    struct tl_sip_sess_layer *l = x->l;
    size_t n = (size_t)snprintf(buf, cap, "Supported: timer\r\n");
    if (refresh && x->timer.se) {
        struct tl_sip_st st = {x->timer.se, true}; /* we refresh: refresher=uac */
        tl_sip_st_hdr(buf + n, cap - n, &st, true);
        n = strlen(buf);
    } else if (x->timer.se) {
        tl_sip_st_hdr(buf + n, cap - n, &x->timer, true);
        n = strlen(buf);
    }
    uint32_t min = x->min_se_peer > l->cfg.min_se ? x->min_se_peer : l->cfg.min_se;
    snprintf(buf + n, cap - n, "Min-SE: %u\r\n", min);
}

static int offer_out(struct tl_sip_sess *x, bool update, const char *ctype, const char *body,
                     size_t len, bool refresh)
{
    char hdrs[512];
    st_req_hdrs(x, hdrs, sizeof hdrs, refresh);
    struct uac_req *r;
    enum tl_sip_method m = update ? TL_SIP_METHOD_UPDATE : TL_SIP_METHOD_INVITE;
    int err = send_req(x, m, hdrs, ctype, body, len, &r);
    if (err)
        return err;
    r->refresh = refresh;
    r->offer = len > 0;
    if (update) {
        x->upd_req = r;
    } else {
        x->inv_req = r;
        x->icseq = x->dlg.lseq;
        x->reinv_no_offer = len == 0;
    }
    if (len)
        set_lbody(x, body, len);
    return 0;
}

/* RFC 4028 §10: refresh at half time (refresher), or BYE before expiry (the other) */
static void on_st(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    struct tl_sip_sess *x = OF(tm, st_tm);
    sess_hold(x);
    if (!x->timer.we_refresh) {
        tl_info("sip", "session.expired", "callid=%s se=%u", x->dlg.callid, x->timer.se);
        send_bye(x, "SIP;cause=408;text=\"Session timer expired\"");
        terminate(x, TL_SIP_SESS_EXPIRED, 0);
    } else if (x->inv_req || x->upd_req) {
        /* an offer of ours is under way; its answer restarts the clock. Look again soon */
        tl_timer_start(tl_sip_stack_timers(x->l->s), &x->st_tm, now_ms(x->l) + 1000, on_st);
    } else {
        /* UPDATE without a body when the peer allows it (RFC 4028 §9: preferred, no SDP
         * churn), else a re-INVITE with our last body unchanged */
        bool upd = x->peer_update;
        int err = upd ? offer_out(x, true, NULL, NULL, 0, true)
                      : offer_out(x, false, SDP, x->lbody, x->lbody_len, true);
        if (err) {
            send_bye(x, NULL);
            terminate(x, TL_SIP_SESS_ERROR, 0);
        }
    }
    sess_release(x);
}

static void on_glare(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    struct tl_sip_sess *x = OF(tm, glare_tm);
    sess_hold(x);
    if (x->st == TL_SIP_SESS_CONFIRMED && !x->inv_req && !x->upd_req) {
        int err = offer_out(x, x->glare_update, SDP, x->glare_body, x->glare_len, false);
        if (err)
            tl_warnl("sip", "session.glare_retry_failed", "err=%s", strerror(err));
    }
    sess_release(x);
}

static void got_answer(struct tl_sip_sess *x, const struct tl_sip_msg *m)
{
    if (m->body.l && x->h->on_answer)
        x->h->on_answer(x, &m->body, x->arg);
}

static void peer_caps(struct tl_sip_sess *x, const struct tl_sip_msg *m)
{
    if (tl_sip_msg_hdr(m, TL_SIP_HDR_ALLOW))
        x->peer_update = tl_sip_msg_has_token(m, TL_SIP_HDR_ALLOW, "UPDATE");
    if (tl_sip_msg_has_token(m, TL_SIP_HDR_SUPPORTED, "timer"))
        x->peer_timer = true;
}

/* the 2xx to our first INVITE: the dialog starts (§13.2.2.4) */
static void uac_confirmed(struct tl_sip_sess *x, const struct tl_sip_msg *resp,
                          const struct tl_sip_peer *hop)
{
    char contact[300];
    our_contact(x->l, x->rq_tp, hop, contact, sizeof contact);
    char *cid = x->dlg.callid; /* uac_init makes its own copy */
    x->dlg.callid = NULL;
    int err = tl_sip_dlg_uac_init(&x->dlg, resp, x->rq_from, x->icseq, hop, contact);
    free(cid);
    if (err) {
        send_bye(x, NULL);
        terminate(x, TL_SIP_SESS_ERROR, resp->scode);
        return;
    }
    x->has_dlg = true;
    if (!tl_sip_dlg_table_add(&x->l->tbl, &x->dlg))
        x->in_table = true;
    tl_sip_stack_conn_ref(x->l->s, &x->dlg.peer, +1);
    x->conn_ref = true;
    x->st = TL_SIP_SESS_CONFIRMED;
    peer_caps(x, resp);
    tl_sip_st_uac(resp, &x->timer);
    send_ack(x, x->icseq, NULL, 0);
    got_answer(x, resp);
    if (x->st == TL_SIP_SESS_CONFIRMED && x->h->on_established)
        x->h->on_established(x, x->arg);
    st_restart(x);
}

static void on_resp(struct tl_sip_ctsx *ct, const struct tl_sip_msg *resp, int err, void *arg)
{
    struct uac_req *r = arg;
    struct tl_sip_sess *x = r->sess;
    uint16_t sc = resp ? resp->scode : 0;
    if (resp && sc < 200) {
        /* 1xx: no early dialogs of ours (no 100rel, no early media state here); the
         * user may CANCEL from inside on_response */
        if (x->h->on_response && !x->notified) {
            sess_hold(x);
            x->h->on_response(x, r->m, r->refresh, resp, 0, x->arg);
            sess_release(x);
        }
        return;
    }
    if (err == ECANCELED) { /* the stack stops: touch nothing (its heap is gone) */
        x->l->closing = true;
        x->pending--;
        if (r->m == TL_SIP_METHOD_BYE)
            x->bye_out = false;
        /* our INVITE never got its final answer (a call ringing, or one whose CANCEL is
         * out): its owner still learns, once, that the session is over — it may be
         * waiting for exactly that to let go (an outbound call). No timers: the heap is
         * gone, and an early UAC session has none armed. */
        if (r->m == TL_SIP_METHOD_INVITE && x->uac && !x->has_dlg && !x->notified) {
            x->notified = true;
            x->st = TL_SIP_SESS_TERMINATED;
            if (x->inv_req == r)
                x->inv_req = NULL;
            x->h->on_terminated(x, TL_SIP_SESS_ERROR, 0, x->arg);
        }
        /* a BYE's owner may wait for its outcome (after on_terminated): tell it */
        if (r->m == TL_SIP_METHOD_BYE && x->h->on_response)
            x->h->on_response(x, r->m, r->refresh, NULL, err, x->arg);
        req_free(r);
        return;
    }
    sess_hold(x);
    x->pending--;
    if (r->m == TL_SIP_METHOD_BYE)
        x->bye_out = false;
    if (x->inv_req == r)
        x->inv_req = NULL;
    if (x->upd_req == r)
        x->upd_req = NULL;
    bool initial = r->m == TL_SIP_METHOD_INVITE && !x->has_dlg;
    if (x->h->on_response && (!x->notified || r->m == TL_SIP_METHOD_BYE))
        x->h->on_response(x, r->m, r->refresh, resp, err, x->arg);
    if (x->notified)
        goto out; /* ended already: send nothing */
    if (!resp) {
        if (initial)
            terminate(x, TL_SIP_SESS_ERROR, 0);
        else if (r->m == TL_SIP_METHOD_INVITE || r->m == TL_SIP_METHOD_UPDATE) {
            /* §14.1: a re-INVITE timing out ends the dialog */
            send_bye(x, NULL);
            terminate(x, TL_SIP_SESS_ERROR, 408);
        }
        goto out;
    }
    switch (r->m) {
    case TL_SIP_METHOD_INVITE:
        if (initial) {
            if (sc < 300) {
                uac_confirmed(x, resp, tl_sip_ctsx_peer(ct));
            } else if (sc == 422 && !x->retried_422) {
                /* RFC 4028 §7.4: once more with the peer's Min-SE */
                const struct tl_sip_hdr *h = tl_sip_msg_hdr(resp, TL_SIP_HDR_MIN_SE);
                uint32_t min = 0;
                if (h && !tl_sip_min_se_decode(&min, &h->val) && min > x->timer.se) {
                    x->retried_422 = true;
                    x->min_se_peer = min;
                    x->timer.se = min;
                    struct tl_sip_request rq = {0};
                    char hdrs[HDRS_MAX], st[300];
                    st_req_hdrs(x, st, sizeof st, false);
                    snprintf(hdrs, sizeof hdrs, "%s%s", st, x->rq_hdrs ? x->rq_hdrs : "");
                    rq.method = TL_SIP_METHOD_INVITE;
                    rq.ruri = x->rq_ruri;
                    rq.from = x->rq_from;
                    rq.to = x->rq_to;
                    rq.call_id = x->dlg.callid;
                    rq.cseq = ++x->icseq;
                    char contact[300];
                    our_contact(x->l, x->rq_tp, tl_sip_ctsx_peer(ct), contact, sizeof contact);
                    rq.contact = contact;
                    rq.hdrs = hdrs;
                    rq.ctype = x->lbody_len ? SDP : NULL;
                    rq.body = x->lbody;
                    rq.body_len = x->lbody_len;
                    rq.tp = x->rq_tp;
                    rq.dest = x->has_dest ? &x->rq_dest : NULL;
                    rq.tls_name = x->rq_tls;
                    rq.auth_user = x->au_user;
                    rq.auth_pass = x->au_pass;
                    rq.auth_realm = x->au_realm;
                    struct uac_req *nr = calloc(1, sizeof *nr);
                    if (nr) {
                        nr->sess = x;
                        nr->m = TL_SIP_METHOD_INVITE;
                        if (!tl_sip_stack_request(x->l->s, &rq, on_resp, nr, &nr->ct)) {
                            req_link(x->l, nr);
                            x->pending++;
                            x->inv_req = nr;
                            goto out;
                        }
                        free(nr);
                    }
                }
                terminate(x, TL_SIP_SESS_REJECTED, sc);
            } else {
                terminate(
                    x, x->canceling && sc == 487 ? TL_SIP_SESS_CANCELED : TL_SIP_SESS_REJECTED, sc);
            }
            break;
        }
        /* re-INVITE and UPDATE share the rest */
        __attribute__((fallthrough));
    case TL_SIP_METHOD_UPDATE:
        if (sc < 300) {
            tl_sip_dlg_target_refresh(&x->dlg, resp);
            peer_caps(x, resp);
            if (r->m == TL_SIP_METHOD_INVITE) {
                char buf[8192];
                struct tl_sip_body ans = {buf, sizeof buf, 0};
                if (x->reinv_no_offer && resp->body.l && x->h->on_offer &&
                    x->h->on_offer(x, &resp->body, &ans, x->arg) == 0) {
                    send_ack(x, resp->cseq.num, buf, ans.len); /* §14.1: answer in ACK */
                    set_lbody(x, buf, ans.len);
                } else {
                    send_ack(x, resp->cseq.num, NULL, 0);
                    if (!x->reinv_no_offer)
                        got_answer(x, resp);
                }
            } else {
                got_answer(x, resp);
            }
            if (r->refresh || tl_sip_msg_hdr(resp, TL_SIP_HDR_SESSION_EXPIRES))
                tl_sip_st_uac(resp, &x->timer);
            st_restart(x);
        } else if (sc == 491) {
            /* §14.1 glare: try again after a random delay (who owns the Call-ID waits
             * longer, so the two sides do not collide again) */
            uint32_t d = tl_sip_glare_delay_ms(x->dlg.uac, randombytes_random());
            x->glare_update = r->m == TL_SIP_METHOD_UPDATE;
            tl_info("sip", "session.glare", "callid=%s retry_ms=%u", x->dlg.callid, d);
            /* a refresh of ours is simply due again then; a user's offer is re-sent */
            tl_timer_start(tl_sip_stack_timers(x->l->s), r->refresh ? &x->st_tm : &x->glare_tm,
                           now_ms(x->l) + d, r->refresh ? on_st : on_glare);
        } else if (sc == 481 || sc == 408) {
            send_bye(x, NULL); /* §14.1: the dialog is gone */
            terminate(x, TL_SIP_SESS_ERROR, sc);
        } else if (r->refresh && sc == 422) {
            const struct tl_sip_hdr *h = tl_sip_msg_hdr(resp, TL_SIP_HDR_MIN_SE);
            uint32_t min = 0;
            if (h && !tl_sip_min_se_decode(&min, &h->val) && min > x->timer.se) {
                x->timer.se = min;
                x->min_se_peer = min;
            }
            st_restart(x);
        }
        /* other non-2xx: the session goes on as it was (§14.1) */
        break;
    case TL_SIP_METHOD_REFER:
        if (sc >= 300 && x->h->on_notify)
            x->h->on_notify(x, sc, true, x->arg);
        break;
    default:
        break;
    }
out:
    req_free(r);
    sess_release(x);
}

/* ---- incoming requests ---- */

static int reply(struct tl_sip_sess_layer *l, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                 uint16_t scode, const char *hdrs)
{
    return tl_sip_stack_reply(l->s, tx, m, tl_sip_tsx_peer(tx), scode, hdrs, NULL, NULL, NULL, 0);
}

/* RFC 4028 for an in-dialog refresh request (re-INVITE or UPDATE). false: 422 sent. */
static bool st_incoming(struct tl_sip_sess *x, struct tl_sip_tsx *tx, const struct tl_sip_msg *m)
{
    struct tl_sip_st st;
    bool req;
    if (tl_sip_st_uas(m, x->l->cfg.min_se, 0, &st, &req) == 422) {
        char h[40];
        snprintf(h, sizeof h, "Min-SE: %u\r\n", x->l->cfg.min_se);
        reply(x->l, tx, m, 422, h);
        return false;
    }
    x->timer = st;
    x->ireq_timer = req;
    return true;
}

static void in_invite(struct tl_sip_sess *x, struct tl_sip_tsx *tx, const struct tl_sip_msg *m)
{
    struct tl_sip_sess_layer *l = x->l;
    if (x->st != TL_SIP_SESS_CONFIRMED) {
        reply(l, tx, m, 500, "Retry-After: 2\r\n"); /* §14.2: the first INVITE is unanswered */
        return;
    }
    if (x->inv_req || x->upd_req || x->await_ack) {
        /* §14.2: our own re-INVITE (or an offer/answer exchange) is in progress: glare */
        reply(l, tx, m, 491, NULL);
        return;
    }
    if (!st_incoming(x, tx, m))
        return;
    tl_sip_dlg_target_refresh(&x->dlg, m);
    peer_caps(x, m);
    char buf[8192];
    struct tl_sip_body out = {buf, sizeof buf, 0};
    int rc = x->h->on_offer ? x->h->on_offer(x, &m->body, &out, x->arg) : 488;
    if (x->notified)
        return; /* the user ended the session from inside on_offer */
    if (rc || (!m->body.l && !out.len)) {
        reply(l, tx, m, rc >= 400 && rc < 700 ? (uint16_t)rc : 488, NULL);
        return;
    }
    if (keep_inv(x, m, tx) ||
        send_2xx(x, m, 200, SDP, buf, out.len, m->body.l == 0 /* our offer in the 2xx */)) {
        if (x->itx)
            reply(l, tx, m, 500, NULL);
        itx_drop(x);
        return;
    }
    x->initial_ack = false;
    st_restart(x);
}

static void in_update(struct tl_sip_sess *x, struct tl_sip_tsx *tx, const struct tl_sip_msg *m)
{
    struct tl_sip_sess_layer *l = x->l;
    if (m->body.l && (x->upd_req || (x->inv_req && !x->reinv_no_offer))) {
        reply(l, tx, m, 491, NULL); /* RFC 3311 §5.2: our offer is outstanding */
        return;
    }
    if (m->body.l && x->await_ack && x->ack_answer) {
        reply(l, tx, m, 500, "Retry-After: 2\r\n"); /* §5.2: an offer of ours awaits its ACK */
        return;
    }
    if (!st_incoming(x, tx, m))
        return;
    tl_sip_dlg_target_refresh(&x->dlg, m);
    peer_caps(x, m);
    char hdrs[HDRS_MAX];
    uas_hdrs(x, m, 200, hdrs, sizeof hdrs);
    if (!m->body.l) { /* a session refresh without offer (RFC 4028 §9) */
        tl_sip_stack_reply(l->s, tx, m, tl_sip_tsx_peer(tx), 200, hdrs, NULL, NULL, NULL, 0);
        st_restart(x);
        return;
    }
    char buf[8192];
    struct tl_sip_body out = {buf, sizeof buf, 0};
    int rc = x->h->on_offer ? x->h->on_offer(x, &m->body, &out, x->arg) : 488;
    if (x->notified)
        return;
    if (rc || !out.len) {
        reply(l, tx, m, rc >= 400 && rc < 700 ? (uint16_t)rc : 488, NULL);
        return;
    }
    set_lbody(x, buf, out.len);
    tl_sip_stack_reply(l->s, tx, m, tl_sip_tsx_peer(tx), 200, hdrs, NULL, SDP, buf, out.len);
    st_restart(x);
}

/* RFC 3515 §2.4.5: sipfrag "SIP/2.0 200 OK" → 200 */
static uint16_t sipfrag_code(const struct tl_pl *b)
{
    if (b->l < 11 || memcmp(b->p, "SIP/2.0 ", 8))
        return 0;
    uint16_t c = 0;
    for (int i = 8; i < 11; i++) {
        if (b->p[i] < '0' || b->p[i] > '9')
            return 0;
        c = (uint16_t)(c * 10 + (b->p[i] - '0'));
    }
    return c;
}

static int notify_out(struct tl_sip_sess *x, uint16_t scode, bool terminated)
{
    char hdrs[200], body[64];
    snprintf(hdrs, sizeof hdrs, "Event: refer;id=%u\r\nSubscription-State: %s\r\n", x->refer_id,
             terminated ? "terminated;reason=noresource" : "active;expires=60");
    int n = snprintf(body, sizeof body, "SIP/2.0 %u %s\r\n", scode, tl_sip_reason_phrase(scode));
    if (terminated)
        x->refer_active = false;
    return send_req(x, TL_SIP_METHOD_NOTIFY, hdrs, "message/sipfrag;version=2.0", body, (size_t)n,
                    NULL);
}

static void in_dialog(struct tl_sip_sess *x, struct tl_sip_tsx *tx, const struct tl_sip_msg *m)
{
    struct tl_sip_sess_layer *l = x->l;
    int rc = tl_sip_dlg_cseq_check(&x->dlg, m);
    if (rc) {
        reply(l, tx, m, (uint16_t)rc, NULL); /* §12.2.2: out of order */
        return;
    }
    switch (m->mid) {
    case TL_SIP_METHOD_BYE:
        reply(l, tx, m, 200, NULL);
        if (x->itx) { /* §15.1.2: BYE in an early dialog: the INVITE gets 487 */
            const struct tl_sip_msg *im = inv_msg(x);
            if (im)
                tl_sip_stack_reply(l->s, x->itx, im, &x->ipeer, 487, NULL, x->ltag, NULL, NULL, 0);
            itx_drop(x);
        }
        terminate(x, TL_SIP_SESS_BYE_RECEIVED, 0);
        return;
    case TL_SIP_METHOD_INVITE:
        in_invite(x, tx, m);
        return;
    case TL_SIP_METHOD_UPDATE:
        in_update(x, tx, m);
        return;
    case TL_SIP_METHOD_INFO: {
        char hdrs[256] = "";
        uint16_t code = x->h->on_info ? x->h->on_info(x, m, hdrs, sizeof hdrs, x->arg) : 200;
        hdrs[sizeof hdrs - 1] = '\0';
        reply(l, tx, m, code >= 200 && code <= 699 ? code : 500, hdrs[0] ? hdrs : NULL);
        return;
    }
    case TL_SIP_METHOD_OPTIONS:
        reply(l, tx, m, 200, ALLOW_DLG "Accept: application/sdp\r\nSupported: timer\r\n");
        return;
    case TL_SIP_METHOD_REFER: {
        const struct tl_sip_hdr *rt = tl_sip_msg_hdr(m, TL_SIP_HDR_REFER_TO);
        if (!rt || m->hdr_cnt[TL_SIP_HDR_REFER_TO] != 1) {
            reply(l, tx, m, 400, NULL); /* RFC 3515 §2.4.1: exactly one Refer-To */
            return;
        }
        uint16_t c = x->h->on_refer ? x->h->on_refer(x, &rt->val, x->arg) : 603;
        if (x->notified)
            return;
        if (c != 202) {
            reply(l, tx, m, c >= 300 && c < 700 ? c : 603, NULL);
            return;
        }
        reply(l, tx, m, 202, NULL);
        x->refer_id = m->cseq.num;
        x->refer_active = true;
        notify_out(x, 100, false); /* §2.4.4: the first NOTIFY says where it stands */
        return;
    }
    case TL_SIP_METHOD_NOTIFY: {
        const struct tl_sip_hdr *ev = tl_sip_msg_hdr(m, TL_SIP_HDR_EVENT);
        const struct tl_sip_hdr *ss = tl_sip_msg_hdr(m, TL_SIP_HDR_SUBSCRIPTION_STATE);
        struct tl_sip_event e;
        struct tl_sip_substate s;
        if (!ev || tl_sip_event_decode(&e, &ev->val) || !tl_pl_caseeq_str(&e.type, "refer")) {
            reply(l, tx, m, 489, NULL); /* RFC 6665 §8.3.1: Bad Event */
            return;
        }
        bool term =
            ss && !tl_sip_substate_decode(&s, &ss->val) && s.sid == TL_SIP_SUBSTATE_TERMINATED;
        reply(l, tx, m, 200, NULL);
        if (x->h->on_notify)
            x->h->on_notify(x, sipfrag_code(&m->body), term, x->arg);
        return;
    }
    case TL_SIP_METHOD_PRACK:
        reply(l, tx, m, 481, NULL); /* no reliable provisionals of ours (no 100rel) */
        return;
    default:
        reply(l, tx, m, 405, ALLOW_DLG);
        return;
    }
}

/* the dialog hook: in-dialog requests, or a CANCEL for an INVITE we have not answered
 * (then tx is the INVITE's server transaction) */
static void on_dialog_req(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                          void *arg)
{
    struct tl_sip_sess_layer *l = arg;
    (void)s;
    if (m->mid == TL_SIP_METHOD_CANCEL) {
        /* the stack calls this only while the INVITE is unanswered (Proceeding): its
         * session is still the transaction's user (keep_inv; sess_free clears it) */
        struct tl_sip_sess *x = tl_sip_tsx_uarg(tx);
        if (!x || x->itx != tx || x->notified)
            return;
        sess_hold(x);
        const struct tl_sip_msg *im = inv_msg(x);
        if (im) /* §9.2: 487 to the INVITE; the stack answered the CANCEL itself */
            tl_sip_stack_reply(l->s, x->itx, im, &x->ipeer, 487, NULL, x->ltag, NULL, NULL, 0);
        itx_drop(x);
        terminate(x, TL_SIP_SESS_CANCELED, 487);
        sess_release(x);
        return;
    }
    struct tl_sip_dlg *d = tl_sip_dlg_table_match_req(&l->tbl, m);
    if (!d) {
        reply(l, tx, m, 481, NULL); /* §12.2.2 */
        return;
    }
    struct tl_sip_sess *x =
        (struct tl_sip_sess *)(void *)((char *)d - offsetof(struct tl_sip_sess, dlg));
    sess_hold(x);
    in_dialog(x, tx, m);
    sess_release(x);
}

/* the stray hook: ACKs for our 2xx, and 2xx retransmissions to our INVITEs */
static void on_stray(struct tl_sip_stack *s, const struct tl_sip_msg *m,
                     const struct tl_sip_peer *peer, void *arg)
{
    struct tl_sip_sess_layer *l = arg;
    (void)s;
    (void)peer;
    struct tl_sip_dlg *d =
        m->req ? tl_sip_dlg_table_match_req(&l->tbl, m)
               : tl_sip_dlg_table_find(&l->tbl, &m->callid, &m->from.tag, &m->to.tag);
    if (!d) {
        TL_LOG_LIMITED(TL_LOG_DEBUG, "sip", "stray.dropped", "req=%d", m->req);
        return;
    }
    struct tl_sip_sess *x =
        (struct tl_sip_sess *)(void *)((char *)d - offsetof(struct tl_sip_sess, dlg));
    sess_hold(x);
    if (!m->req) {
        /* §13.2.2.4: a 2xx retransmission gets the same ACK again */
        if (m->cseq.num == x->ack_sent_cseq)
            send_ack(x, x->ack_sent_cseq, x->ack_body_len ? x->ack_body : NULL, x->ack_body_len);
    } else if (m->mid == TL_SIP_METHOD_ACK && x->await_ack && m->cseq.num == x->ack_cseq) {
        x->await_ack = false;
        tl_timer_stop(tl_sip_stack_timers(l->s), &x->rt_tm);
        if (x->ack_answer && m->body.l && x->h->on_answer)
            x->h->on_answer(x, &m->body, x->arg);
        if (x->initial_ack && !x->notified) {
            x->initial_ack = false;
            if (x->h->on_established)
                x->h->on_established(x, x->arg);
        }
    }
    sess_release(x);
}

/* ---- public API ---- */

int tl_sip_sess_alloc_uas(struct tl_sip_sess **sp, struct tl_sip_sess_layer *l,
                          struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                          const struct tl_sip_sess_h *h, void *arg)
{
    struct tl_sip_st st;
    bool req;
    if (tl_sip_st_uas(m, l->cfg.min_se, 0, &st, &req) == 422) {
        char hd[40];
        snprintf(hd, sizeof hd, "Min-SE: %u\r\n", l->cfg.min_se);
        reply(l, tx, m, 422, hd); /* RFC 4028 §8.1: Session Interval Too Small */
        return 422;
    }
    struct tl_sip_sess *x = sess_new(l, h, arg);
    if (!x)
        return ENOMEM;
    char contact[300];
    const struct tl_sip_peer *peer = tl_sip_tsx_peer(tx);
    our_contact(l, peer->tp, peer, contact, sizeof contact);
    int err = keep_inv(x, m, tx);
    if (!err)
        err = tl_sip_dlg_uas_init(&x->dlg, m, peer, x->ltag, contact);
    if (err == EBADMSG) {
        reply(l, tx, m, 400, NULL);
        itx_drop(x);
    }
    if (!err)
        err = tl_sip_dlg_table_add(&l->tbl, &x->dlg);
    if (err) {
        x->notified = true;
        sess_free(x);
        return err == EBADMSG ? 400 : err;
    }
    x->has_dlg = x->in_table = true;
    tl_sip_stack_conn_ref(l->s, &x->dlg.peer, +1);
    x->conn_ref = true;
    x->timer = st;
    x->ireq_timer = req;
    peer_caps(x, m);
    x->st = TL_SIP_SESS_EARLY;
    *sp = x;
    return 0;
}

struct tl_pl tl_sip_sess_offer(const struct tl_sip_sess *x)
{
    const struct tl_sip_msg *m = x->itx ? inv_msg((struct tl_sip_sess *)x) : NULL;
    return m ? m->body : (struct tl_pl){0};
}

int tl_sip_sess_accept(struct tl_sip_sess *x, uint16_t scode, const char *ctype, const char *body,
                       size_t len)
{
    if (x->uac || x->st != TL_SIP_SESS_EARLY || !x->itx || scode < 101 || scode > 299)
        return EINVAL;
    const struct tl_sip_msg *m = inv_msg(x);
    if (!m)
        return EINVAL;
    struct tl_sip_sess_layer *l = x->l;
    if (scode < 200) {
        char hdrs[HDRS_MAX];
        uas_hdrs(x, m, scode, hdrs, sizeof hdrs);
        return tl_sip_stack_reply(l->s, x->itx, m, &x->ipeer, scode, hdrs, x->ltag,
                                  len ? (ctype ? ctype : SDP) : NULL, body, len);
    }
    sess_hold(x);
    int err = send_2xx(x, m, scode, ctype, body, len, m->body.l == 0);
    if (!err) {
        x->st = TL_SIP_SESS_CONFIRMED;
        x->initial_ack = true;
        st_restart(x);
    }
    sess_release(x);
    return err;
}

int tl_sip_sess_reject(struct tl_sip_sess *x, uint16_t scode, const char *hdrs)
{
    if (x->uac || x->notified || !x->itx || scode < 300 || scode > 699)
        return EINVAL;
    const struct tl_sip_msg *m = inv_msg(x);
    sess_hold(x);
    if (m)
        tl_sip_stack_reply(x->l->s, x->itx, m, &x->ipeer, scode, hdrs, x->ltag, NULL, NULL, 0);
    itx_drop(x);
    terminate(x, TL_SIP_SESS_REJECTED, scode);
    sess_release(x);
    return 0;
}

int tl_sip_sess_connect(struct tl_sip_sess **sp, struct tl_sip_sess_layer *l,
                        const struct tl_sip_request *rq0, const struct tl_sip_sess_h *h, void *arg)
{
    struct tl_sip_sess *x = sess_new(l, h, arg);
    if (!x)
        return ENOMEM;
    char callid[40], contact[300], from[1024], st[300], hdrs[HDRS_MAX];
    new_tag(callid);
    x->uac = true;
    x->rq_tp = rq0->tp;
    x->timer.se = l->cfg.se;
    x->timer.we_refresh = true;
    x->icseq = rq0->cseq ? rq0->cseq : 1;
    snprintf(from, sizeof from, "%s;tag=%s", rq0->from, x->ltag);
    our_contact(l, rq0->tp, rq0->dest, contact, sizeof contact);
    /* the session timer we ask for; the UAS picks the refresher (RFC 4028 §7.1) */
    snprintf(st, sizeof st, "Supported: timer\r\nSession-Expires: %u\r\nMin-SE: %u\r\n", l->cfg.se,
             l->cfg.min_se);
    snprintf(hdrs, sizeof hdrs, "%s%s", st, rq0->hdrs ? rq0->hdrs : "");
    x->rq_ruri = xdup(rq0->ruri);
    x->rq_from = strdup(from);
    x->rq_to = xdup(rq0->to);
    x->rq_hdrs = xdup(rq0->hdrs);
    x->rq_tls = xdup(rq0->tls_name);
    x->au_user = xdup(rq0->auth_user);
    x->au_pass = xdup(rq0->auth_pass);
    x->au_realm = xdup(rq0->auth_realm);
    x->dlg.callid = strdup(rq0->call_id ? rq0->call_id : callid);
    if (rq0->dest) {
        x->rq_dest = *rq0->dest;
        x->has_dest = true;
    }
    struct uac_req *r = calloc(1, sizeof *r);
    int err = 0;
    if (!r || !x->rq_ruri || !x->rq_from || !x->rq_to || !x->dlg.callid ||
        set_lbody(x, rq0->body, rq0->body_len))
        err = ENOMEM;
    if (!err) {
        struct tl_sip_request rq = *rq0;
        rq.method = TL_SIP_METHOD_INVITE;
        rq.from = x->rq_from;
        rq.call_id = x->dlg.callid;
        rq.cseq = x->icseq;
        rq.contact = contact;
        rq.hdrs = hdrs;
        r->sess = x;
        r->m = TL_SIP_METHOD_INVITE;
        r->offer = rq0->body_len > 0;
        err = tl_sip_stack_request(l->s, &rq, on_resp, r, &r->ct);
    }
    if (err) {
        free(r);
        x->notified = true;
        sess_free(x);
        return err;
    }
    req_link(l, r);
    x->pending = 1;
    x->inv_req = r;
    x->st = TL_SIP_SESS_EARLY;
    *sp = x;
    return 0;
}

int tl_sip_sess_cancel(struct tl_sip_sess *x)
{
    if (!x->uac || x->has_dlg || !x->inv_req || x->notified)
        return EINVAL;
    x->canceling = true;
    return tl_sip_stack_cancel(x->l->s, x->inv_req->ct);
}

int tl_sip_sess_modify(struct tl_sip_sess *x, bool use_update, const char *ctype, const char *body,
                       size_t len)
{
    if (x->st != TL_SIP_SESS_CONFIRMED || x->notified)
        return EINVAL;
    if (x->inv_req || x->upd_req || (x->await_ack && x->ack_answer))
        return EBUSY;
    bool upd = use_update && x->peer_update && len;
    char *keep = memdup0(body ? body : "", len);
    if (!keep)
        return ENOMEM;
    free(x->glare_body); /* kept for a §14.1 retry after a 491 */
    x->glare_body = keep;
    x->glare_len = len;
    return offer_out(x, upd, ctype, body, len, false);
}

int tl_sip_sess_info(struct tl_sip_sess *x, const char *ctype, const char *body, size_t len)
{
    if (x->st != TL_SIP_SESS_CONFIRMED || x->notified)
        return EINVAL;
    return send_req(x, TL_SIP_METHOD_INFO, NULL, ctype, body, len, NULL);
}

int tl_sip_sess_refer(struct tl_sip_sess *x, const char *target)
{
    if (x->st != TL_SIP_SESS_CONFIRMED || x->notified || strpbrk(target, "\r\n<>"))
        return EINVAL;
    char hdrs[1200];
    int n = snprintf(hdrs, sizeof hdrs, "Refer-To: <%s>\r\n", target);
    if (n < 0 || (size_t)n >= sizeof hdrs)
        return ENOSPC;
    return send_req(x, TL_SIP_METHOD_REFER, hdrs, NULL, NULL, 0, NULL);
}

int tl_sip_sess_notify(struct tl_sip_sess *x, uint16_t scode, bool terminated)
{
    if (!x->refer_active || x->st != TL_SIP_SESS_CONFIRMED || x->notified)
        return EINVAL;
    return notify_out(x, scode, terminated);
}

int tl_sip_sess_bye(struct tl_sip_sess *x)
{
    if (x->notified)
        return EINVAL;
    if (x->st == TL_SIP_SESS_EARLY && !x->uac) /* not answered yet: a final instead */
        return tl_sip_sess_reject(x, 480, NULL);
    if (x->st == TL_SIP_SESS_EARLY)
        return tl_sip_sess_cancel(x);
    sess_hold(x);
    x->st = TL_SIP_SESS_TERMINATING;
    send_bye(x, NULL);
    terminate(x, TL_SIP_SESS_BYE_SENT, 0);
    sess_release(x);
    return 0;
}

bool tl_sip_sess_bye_pending(const struct tl_sip_sess *x)
{
    return x->bye_out;
}

enum tl_sip_sess_state tl_sip_sess_state(const struct tl_sip_sess *x)
{
    return x->st;
}

const struct tl_sip_dlg *tl_sip_sess_dialog(const struct tl_sip_sess *x)
{
    return x->has_dlg ? &x->dlg : NULL;
}

const struct tl_sip_st *tl_sip_sess_timer(const struct tl_sip_sess *x)
{
    return &x->timer;
}

size_t tl_sip_sess_count(const struct tl_sip_sess_layer *l)
{
    return l->n;
}

/* ---- test policy: "answer", "answer-bye:N", "ring" ----
 * In the test build only (TL_TEST_HOOKS, build/trunkline-test): these answer any INVITE to
 * any number, which the shipped daemon must never do whatever its settings (issue 11). */
#ifdef TL_TEST_HOOKS

struct tcall {
    struct tl_sip_sess_layer *l;
    struct tl_sip_sess *sess;
    struct tl_timer tm; /* ring timeout / BYE after N s */
    unsigned ver;       /* o= version of our SDP: +1 when the answer changes (§8) */
    const char *dir;
};

static void test_sdp(struct tcall *c, const char *dir, struct tl_sip_body *out)
{
    struct tl_sip_sess_layer *l = c->l;
    const char *af = strchr(l->local, ':') ? "IP6" : "IP4";
    if (!c->dir || strcmp(c->dir, dir))
        c->ver++;
    c->dir = dir;
    int n = snprintf(out->buf, out->cap,
                     "v=0\r\no=- 1 %u IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\n"
                     "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                     "a=rtpmap:101 telephone-event/8000\r\na=%s\r\n",
                     c->ver, af, l->local, af, l->local, dir);
    out->len = n > 0 && (size_t)n < out->cap ? (size_t)n : 0;
}

static int t_offer(struct tl_sip_sess *sess, const struct tl_pl *offer, struct tl_sip_body *ans,
                   void *arg)
{
    (void)sess;
    /* RFC 3264 §6.1: sendonly → recvonly (hold), inactive → inactive, else sendrecv */
    test_sdp(arg, offer->l ? tl_sip_sess_answer_dir(offer) : "sendrecv", ans);
    return ans->len ? 0 : 500;
}

static uint16_t t_info(struct tl_sip_sess *sess, const struct tl_sip_msg *m, char *hdrs, size_t cap,
                       void *arg)
{
    (void)sess;
    (void)arg;
    (void)hdrs;
    (void)cap;
    const struct tl_sip_hdr *ct = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTENT_TYPE);
    struct tl_pl ctype = ct ? ct->val : (struct tl_pl){0};
    tl_info("sip", "test.info", "ctype=%.*s len=%zu", (int)(ctype.l > 64 ? 64 : ctype.l), ctype.p,
            m->body.l);
    return 200;
}

static void t_term(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode, void *arg)
{
    (void)sess;
    (void)why;
    (void)scode;
    struct tcall *c = arg;
    if (!c->l->closing)
        tl_timer_stop(tl_sip_stack_timers(c->l->s), &c->tm);
    free(c);
}

static void t_timer(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    struct tcall *c = (struct tcall *)(void *)((char *)tm - offsetof(struct tcall, tm));
    if (tl_sip_sess_state(c->sess) == TL_SIP_SESS_EARLY)
        tl_sip_sess_reject(c->sess, 480, "Retry-After: 300\r\n"); /* frees c */
    else
        tl_sip_sess_bye(c->sess); /* answer-bye:N; frees c */
}

static const struct tl_sip_sess_h test_h = {
    .on_offer = t_offer, .on_terminated = t_term, .on_info = t_info};

static void test_invite(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                        void *arg)
{
    struct tl_sip_sess_layer *l = arg;
    /* before the 100: a 401 needs no Trying, and a refused INVITE costs no call state */
    if (l->tauth && !tl_sip_inauth_gate(s, tx, m, &l->tauth->srv, &l->tauth->cred))
        return; /* answered 401/403/400 */
    struct tcall *c = calloc(1, sizeof *c);
    if (!c) {
        reply(l, tx, m, 500, "Retry-After: 5\r\n");
        return;
    }
    c->l = l;
    tl_sip_stack_reply(s, tx, m, tl_sip_tsx_peer(tx), 100, NULL, NULL, NULL, NULL, 0);
    int err = tl_sip_sess_alloc_uas(&c->sess, l, tx, m, &test_h, c);
    if (err) {
        if (err == ENOMEM)
            reply(l, tx, m, 500, "Retry-After: 5\r\n");
        free(c);
        return;
    }
    struct tl_theap *hp = tl_sip_stack_timers(s);
    tl_sip_sess_accept(c->sess, 180, NULL, NULL, 0);
    if (!strcmp(l->policy, "ring")) {
        tl_timer_start(hp, &c->tm, now_ms(l) + RING_MAX_MS, t_timer);
        return;
    }
    char buf[1024];
    struct tl_sip_body ans = {buf, sizeof buf, 0};
    test_sdp(c, m->body.l ? tl_sip_sess_answer_dir(&m->body) : "sendrecv", &ans);
    if (tl_sip_sess_accept(c->sess, 200, SDP, buf, ans.len)) {
        tl_sip_sess_reject(c->sess, 500, NULL); /* frees c */
        return;
    }
    if (l->bye_after_s)
        tl_timer_start(hp, &c->tm, now_ms(l) + l->bye_after_s * 1000ull, t_timer);
}

void tl_sip_sess_test_auth(struct tl_sip_sess_layer *l, struct tl_sip_inauth *a)
{
    l->tauth = a;
}
#endif

/* ---- layer ---- */

int tl_sip_sess_layer_alloc(struct tl_sip_sess_layer **lp, struct tl_sip_stack *s,
                            const struct tl_sip_sess_cfg *cfg)
{
    const char *pol = cfg->test_policy ? cfg->test_policy : "";
    unsigned bye = 0;
#ifndef TL_TEST_HOOKS
    if (pol[0])
        return EINVAL; /* not in the shipped daemon */
#endif
    if (!strncmp(pol, "answer-bye:", 11)) {
        char *end;
        unsigned long v = strtoul(pol + 11, &end, 10);
        if (!pol[11] || *end || v < 1 || v > 86400)
            return EINVAL;
        bye = (unsigned)v;
    } else if (pol[0] && strcmp(pol, "answer") && strcmp(pol, "ring")) {
        return EINVAL;
    }
    struct tl_sip_sess_layer *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->s = s;
    l->cfg = *cfg;
    if (!l->cfg.t1)
        l->cfg.t1 = 500;
    if (l->cfg.t2 < l->cfg.t1)
        l->cfg.t2 = l->cfg.t1 > 4000 ? l->cfg.t1 : 4000;
    if (!l->cfg.min_se)
        l->cfg.min_se = 90;
    if (!l->cfg.se)
        l->cfg.se = 1800;
    if (l->cfg.se < l->cfg.min_se)
        l->cfg.se = l->cfg.min_se;
    l->cfg.test_policy = NULL;
    l->bye_after_s = bye;
    tl_strlcpy(l->policy, pol, sizeof l->policy);
    const char *ls = cfg->listen ? cfg->listen : "";
    l->wildcard = !ls[0] || !strcmp(ls, "0.0.0.0") || !strcmp(ls, "::");
    if (!ls[0] || !strcmp(ls, "0.0.0.0"))
        ls = "127.0.0.1";
    else if (!strcmp(ls, "::"))
        ls = "::1";
    tl_strlcpy(l->local, ls, sizeof l->local);
    tl_strlcpy(l->host, cfg->host ? cfg->host : "", sizeof l->host);
    tl_sip_dlg_table_init(&l->tbl);
    tl_sip_stack_set_dialog_h(s, on_dialog_req, l);
    tl_sip_stack_set_stray_h(s, on_stray, l);
#ifdef TL_TEST_HOOKS
    if (pol[0])
        tl_sip_stack_set_invite_h(s, test_invite, l);
#endif
    *lp = l;
    return 0;
}

void tl_sip_sess_layer_free(struct tl_sip_sess_layer *l)
{
    if (!l)
        return;
    l->closing = true;
    while (l->reqs)
        req_free(l->reqs);
    while (l->all) {
        struct tl_sip_sess *x = l->all;
#ifdef TL_TEST_HOOKS
        if (x->h == &test_h && !x->notified) /* our own test calls: free their state */
            free(x->arg);
#endif
        x->in_table = false; /* the table goes as a whole */
        sess_free(x);
    }
    tl_sip_dlg_table_free(&l->tbl);
    free(l);
}
