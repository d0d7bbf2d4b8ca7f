/* sip/dialog: dialog state (RFC 3261 §12), the dialog table, and the pure arithmetic of
 * glare (§14.1) and session timers (RFC 4028). No I/O here: see session.c. */
#include "sip/dialog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static char *dup_pl(const struct tl_pl *pl)
{
    char *p = malloc(pl->l + 1);
    if (p) {
        memcpy(p, pl->p, pl->l);
        p[pl->l] = 0;
    }
    return p;
}

/* a header value as one line (folds → SP) */
static char *dup_unfold(const struct tl_pl *val)
{
    char *p = malloc(val->l + 1);
    size_t n;
    if (p && tl_sip_hdr_unfold(p, val->l + 1, &n, val)) {
        free(p);
        return NULL;
    }
    return p;
}

/* the URI of the first Contact (§12.1.1: the remote target) */
static int contact_uri(const struct tl_sip_msg *m, struct tl_pl *uri)
{
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
    struct tl_sip_hdr_iter it;
    struct tl_pl v;
    struct tl_sip_contact c;
    if (!h)
        return ENOENT;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_CONTACT);
    if (tl_sip_hdr_iter_next(&it, &v) || tl_sip_contact_decode(&c, &v) || c.star)
        return EBADMSG;
    *uri = c.addr.auri;
    return 0;
}

/* Record-Route values joined by ", ", in order or reversed (§12.1.2) */
static int route_set(const struct tl_sip_msg *m, bool reverse, char **out)
{
    struct tl_pl v[TL_SIP_LIST_MAX];
    size_t n = 0, len = 0;
    struct tl_sip_hdr_iter it;
    struct tl_pl x;
    *out = NULL;
    tl_sip_hdr_iter_init(&it, m, TL_SIP_HDR_RECORD_ROUTE);
    while (n < TL_SIP_LIST_MAX && tl_sip_hdr_iter_next(&it, &x) == 0) {
        v[n++] = x;
        len += x.l + 2;
    }
    if (!n)
        return 0;
    char *p = malloc(len + 1), *w = p;
    if (!p)
        return ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct tl_pl *r = &v[reverse ? n - 1 - i : i];
        size_t k;
        if (i) {
            memcpy(w, ", ", 2);
            w += 2;
        }
        if (tl_sip_hdr_unfold(w, r->l + 1, &k, r)) {
            free(p);
            return ENOMEM;
        }
        w += k;
    }
    *w = 0;
    *out = p;
    return 0;
}

/* §12.2.1.1 / §8.1.2: where in-dialog requests go — the first Route URI (loose routing),
 * else the remote target — and over which transport: the URI's transport parameter, TLS
 * for sips:, else the transport the dialog was made over. RFC 3263 would default to UDP
 * for a sip: URI without one; a carrier's Record-Route or Contact that omits it on a TCP
 * or TLS trunk means "the same as now", and UDP is never used for inbound calls. */
static int hop_set(struct tl_sip_dlg *d)
{
    struct tl_pl uri = tl_pl_str(d->target);
    if (d->route) {
        struct tl_pl rest = tl_pl_str(d->route), item;
        struct tl_sip_addr a;
        if (tl_sip_list_next(&rest, &item) || tl_sip_route_decode(&a, &item))
            return EBADMSG;
        uri = a.auri;
    }
    struct tl_sip_uri u;
    if (tl_sip_uri_decode(&u, &uri) ||
        (u.scheme != TL_SIP_SCHEME_SIP && u.scheme != TL_SIP_SCHEME_SIPS))
        return EBADMSG;
    struct tl_pl tp;
    enum tl_sip_transport t = d->peer.tp;
    if (u.scheme == TL_SIP_SCHEME_SIPS)
        t = TL_SIP_TP_TLS;
    else if (!tl_sip_uri_param_get(&u, "transport", &tp)) {
        enum tl_sip_transport x = tl_sip_transport_id(&tp);
        if (x == TL_SIP_TP_UDP || x == TL_SIP_TP_TCP || x == TL_SIP_TP_TLS)
            t = x;
    }
    char *h = dup_pl(&uri);
    if (!h)
        return ENOMEM;
    free(d->hop);
    d->hop = h;
    d->hop_tp = t;
    return 0;
}

void tl_sip_dlg_reset(struct tl_sip_dlg *d)
{
    free(d->callid);
    free(d->ltag);
    free(d->rtag);
    free(d->local);
    free(d->remote);
    free(d->target);
    free(d->route);
    free(d->hop);
    free(d->contact);
    memset(d, 0, sizeof *d);
}

int tl_sip_dlg_uas_init(struct tl_sip_dlg *d, const struct tl_sip_msg *req,
                        const struct tl_sip_peer *peer, const char *ltag, const char *contact)
{
    struct tl_pl target;
    memset(d, 0, sizeof *d);
    if (contact_uri(req, &target))
        return EBADMSG; /* §8.1.1.8: an INVITE must carry one Contact */
    const struct tl_sip_hdr *to = tl_sip_msg_hdr(req, TL_SIP_HDR_TO);
    const struct tl_sip_hdr *from = tl_sip_msg_hdr(req, TL_SIP_HDR_FROM);
    char *tov = to ? dup_unfold(&to->val) : NULL;
    d->callid = dup_pl(&req->callid);
    d->ltag = strdup(ltag);
    d->rtag = dup_pl(&req->from.tag);
    d->remote = from ? dup_unfold(&from->val) : NULL;
    d->target = dup_pl(&target);
    d->contact = strdup(contact);
    if (tov && (d->local = malloc(strlen(tov) + strlen(ltag) + 6)))
        sprintf(d->local, "%s;tag=%s", tov, ltag);
    free(tov);
    int err = route_set(req, false, &d->route);
    if (err || !d->callid || !d->ltag || !d->rtag || !d->remote || !d->target || !d->contact ||
        !d->local) {
        tl_sip_dlg_reset(d);
        return ENOMEM;
    }
    d->rseq = req->cseq.num;
    d->has_rseq = true;
    /* §12.1.1: secure when the request came over TLS with a sips Request-URI */
    d->secure = peer->tp == TL_SIP_TP_TLS && req->ruri.scheme == TL_SIP_SCHEME_SIPS;
    d->peer = *peer;
    if ((err = hop_set(d))) {
        tl_sip_dlg_reset(d);
        return err;
    }
    return 0;
}

int tl_sip_dlg_uac_init(struct tl_sip_dlg *d, const struct tl_sip_msg *resp, const char *local,
                        uint32_t cseq, const struct tl_sip_peer *peer, const char *contact)
{
    struct tl_pl target;
    memset(d, 0, sizeof *d);
    if (contact_uri(resp, &target))
        return EBADMSG;
    const struct tl_sip_hdr *to = tl_sip_msg_hdr(resp, TL_SIP_HDR_TO);
    d->callid = dup_pl(&resp->callid);
    d->ltag = dup_pl(&resp->from.tag);
    d->rtag = dup_pl(&resp->to.tag);
    d->local = strdup(local);
    d->remote = to ? dup_unfold(&to->val) : NULL;
    d->target = dup_pl(&target);
    d->contact = strdup(contact);
    int err = route_set(resp, true, &d->route);
    if (err || !d->callid || !d->ltag || !d->rtag || !d->remote || !d->target || !d->contact ||
        !d->local) {
        tl_sip_dlg_reset(d);
        return ENOMEM;
    }
    d->lseq = cseq;
    d->uac = true;
    d->secure = resp->ruri.scheme == TL_SIP_SCHEME_SIPS ||
                (target.l > 5 && !strncasecmp(target.p, "sips:", 5));
    d->peer = *peer;
    if ((err = hop_set(d))) {
        tl_sip_dlg_reset(d);
        return err;
    }
    return 0;
}

int tl_sip_dlg_cseq_check(struct tl_sip_dlg *d, const struct tl_sip_msg *req)
{
    if (req->mid == TL_SIP_METHOD_ACK || req->mid == TL_SIP_METHOD_CANCEL)
        return 0;
    if (d->has_rseq && req->cseq.num < d->rseq)
        return 500;
    d->rseq = req->cseq.num;
    d->has_rseq = true;
    return 0;
}

int tl_sip_dlg_target_refresh(struct tl_sip_dlg *d, const struct tl_sip_msg *m)
{
    struct tl_pl target;
    int err = contact_uri(m, &target);
    if (err == ENOENT)
        return 0; /* no Contact: the target stays (§12.2.1.2 for responses) */
    if (err)
        return err;
    char *t = dup_pl(&target);
    if (!t)
        return ENOMEM;
    char *old = d->target;
    d->target = t;
    if (!d->route && (err = hop_set(d))) { /* a target we cannot route to is not taken */
        d->target = old;
        free(t);
        return err;
    }
    free(old);
    return 0;
}

void tl_sip_dlg_request(struct tl_sip_dlg *d, struct tl_sip_request *rq, enum tl_sip_method m)
{
    memset(rq, 0, sizeof *rq);
    rq->method = m;
    rq->ruri = d->target;
    rq->from = d->local;
    rq->to = d->remote;
    rq->call_id = d->callid;
    if (m != TL_SIP_METHOD_ACK && m != TL_SIP_METHOD_CANCEL)
        rq->cseq = ++d->lseq;
    rq->contact = m == TL_SIP_METHOD_BYE ? NULL : d->contact; /* RFC 3261 Table 3 */
    rq->route = d->route;
    if (m == TL_SIP_METHOD_ACK) {
        rq->tp = d->peer.tp;
        rq->dest = &d->peer;
        return;
    }
    rq->tp = d->hop_tp;
    rq->hop = d->hop;
    rq->prefer = &d->peer;
}

/* ---- table ---- */

static uint32_t fnv(uint32_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

/* Call-ID and local tag only: the remote tag is unknown for an early UAC dialog */
static uint32_t key_hash(const struct tl_pl *callid, const struct tl_pl *ltag)
{
    return fnv(fnv(2166136261u, callid->p, callid->l), ltag->p, ltag->l);
}

void tl_sip_dlg_table_init(struct tl_sip_dlg_table *t)
{
    memset(t, 0, sizeof *t);
}

void tl_sip_dlg_table_free(struct tl_sip_dlg_table *t)
{
    free(t->b);
    memset(t, 0, sizeof *t);
}

static size_t slot(const struct tl_sip_dlg_table *t, const struct tl_sip_dlg *d)
{
    struct tl_pl c = tl_pl_str(d->callid), l = tl_pl_str(d->ltag);
    return key_hash(&c, &l) & (t->nb - 1);
}

int tl_sip_dlg_table_add(struct tl_sip_dlg_table *t, struct tl_sip_dlg *d)
{
    if (t->n >= t->nb) { /* load factor 1: double and rehash */
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct tl_sip_dlg **b = calloc(nb, sizeof *b);
        if (!b)
            return ENOMEM;
        struct tl_sip_dlg_table nt = {b, nb, 0};
        for (size_t i = 0; i < t->nb; i++)
            for (struct tl_sip_dlg *x = t->b[i], *nx; x; x = nx) {
                nx = x->hnext;
                size_t k = slot(&nt, x);
                x->hnext = b[k];
                b[k] = x;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    size_t k = slot(t, d);
    d->hnext = t->b[k];
    t->b[k] = d;
    t->n++;
    return 0;
}

void tl_sip_dlg_table_del(struct tl_sip_dlg_table *t, struct tl_sip_dlg *d)
{
    if (!t->nb)
        return;
    for (struct tl_sip_dlg **pp = &t->b[slot(t, d)]; *pp; pp = &(*pp)->hnext)
        if (*pp == d) {
            *pp = d->hnext;
            d->hnext = NULL;
            t->n--;
            return;
        }
}

struct tl_sip_dlg *tl_sip_dlg_table_find(const struct tl_sip_dlg_table *t,
                                         const struct tl_pl *callid, const struct tl_pl *ltag,
                                         const struct tl_pl *rtag)
{
    if (!t->nb)
        return NULL;
    for (struct tl_sip_dlg *d = t->b[key_hash(callid, ltag) & (t->nb - 1)]; d; d = d->hnext)
        if (tl_pl_eq_str(callid, d->callid) && tl_pl_eq_str(ltag, d->ltag) &&
            tl_pl_eq_str(rtag, d->rtag))
            return d;
    return NULL;
}

struct tl_sip_dlg *tl_sip_dlg_table_match_req(const struct tl_sip_dlg_table *t,
                                              const struct tl_sip_msg *req)
{
    return tl_sip_dlg_table_find(t, &req->callid, &req->to.tag, &req->from.tag);
}

/* ---- arithmetic ---- */

uint32_t tl_sip_glare_delay_ms(bool own_callid, uint32_t rnd)
{
    /* §14.1: "a random amount of time between 2.1 and 4 seconds in units of 10 ms" for
     * the owner of the Call-ID, "between 0 and 2 seconds" for the other side */
    return own_callid ? 2100u + (rnd % 191u) * 10u : (rnd % 201u) * 10u;
}

int tl_sip_st_uas(const struct tl_sip_msg *req, uint32_t min_se, uint32_t se_dflt,
                  struct tl_sip_st *st, bool *require)
{
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(req, TL_SIP_HDR_SESSION_EXPIRES);
    const struct tl_sip_hdr *mh = tl_sip_msg_hdr(req, TL_SIP_HDR_MIN_SE);
    bool sup = tl_sip_msg_has_token(req, TL_SIP_HDR_SUPPORTED, "timer") ||
               tl_sip_msg_has_token(req, TL_SIP_HDR_REQUIRE, "timer");
    struct tl_sip_session_expires se;
    uint32_t their_min = 0;
    memset(st, 0, sizeof *st);
    *require = false;
    if (mh && tl_sip_min_se_decode(&their_min, &mh->val))
        their_min = 0;
    if (!h || tl_sip_session_expires_decode(&se, &h->val) || se.delta == 0) {
        if (!sup || !se_dflt)
            return 0; /* §9: a UAS MAY add a timer; without the UAC's support we do not */
        st->se = se_dflt < min_se ? min_se : se_dflt;
        if (st->se < their_min)
            st->se = their_min;
        st->we_refresh = false; /* refresher=uac: the UAC supports it (§9) */
        *require = true;
        return 0;
    }
    if (se.delta < min_se)
        return 422; /* §8.1: too small for us */
    st->se = se.delta;
    if (sup) {
        /* §9: the UAC's choice stands; left open, the UAC refreshes (it supports it) */
        st->we_refresh = se.refresher == TL_SIP_REFRESHER_UAS;
        *require = true;
    } else {
        st->we_refresh = true; /* the UAC knows nothing of timers: we refresh (§9) */
    }
    return 0;
}

void tl_sip_st_uac(const struct tl_sip_msg *resp, struct tl_sip_st *st)
{
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(resp, TL_SIP_HDR_SESSION_EXPIRES);
    struct tl_sip_session_expires se;
    memset(st, 0, sizeof *st);
    if (!h || tl_sip_session_expires_decode(&se, &h->val) || se.delta == 0)
        return;
    st->se = se.delta;
    /* §7.2: a 2xx without refresher from a UAS that does not support timer → we refresh */
    st->we_refresh = se.refresher != TL_SIP_REFRESHER_UAS;
}

int tl_sip_st_hdr(char *buf, size_t cap, const struct tl_sip_st *st, bool we_send_request)
{
    if (!st->se) {
        if (cap)
            buf[0] = 0;
        return 0;
    }
    /* refresher names the side of THIS transaction: uac = the request's sender */
    bool uac = we_send_request ? st->we_refresh : !st->we_refresh;
    int n = snprintf(buf, cap, "Session-Expires: %u;refresher=%s\r\n", st->se, uac ? "uac" : "uas");
    return n < 0 || (size_t)n >= cap ? ENOSPC : 0;
}

uint64_t tl_sip_st_refresh_ms(uint32_t se)
{
    return (uint64_t)se * 500u;
}

uint64_t tl_sip_st_expire_ms(uint32_t se)
{
    uint64_t ms = (uint64_t)se * 1000u, third = ms / 3;
    return ms - (third < 32000u ? third : 32000u);
}

const char *tl_sip_sess_answer_dir(const struct tl_pl *offer)
{
    static const char *const in[] = {"a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv"};
    static const char *const out[] = {"recvonly", "sendonly", "inactive", "sendrecv"};
    const char *p = offer->p, *end = offer->p + offer->l;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
            n--;
        for (size_t i = 0; i < 4; i++)
            if (n == strlen(in[i]) && !memcmp(p, in[i], n))
                return out[i];
        p = nl ? nl + 1 : NULL;
    }
    return "sendrecv";
}
