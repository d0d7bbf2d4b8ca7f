/* sip/transaction: the timer heap and RFC 3261 §17.2 server transactions.
 *
 * The state machines never read a clock or touch a socket: "now" comes from the caller and
 * bytes leave through cfg.send, so tests/unit/test_sip_transaction.c drives them on a fake
 * clock. Transactions live in a hash table keyed by the §17.2.3 identity; each one owns a
 * copy of its key and of its last response (needed for retransmissions), nothing else. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/srckey.h"
#include "net/guard.h"
#include "sip/stack.h"

/* ---- timer heap: binary min-heap on due time; t->idx is its slot + 1 ---- */

/* ---- transactions ---- */

#define TSX_KEY_LEN 16 /* a keyed BLAKE2b of the §17.2.3 identity */

struct tl_sip_tsx {
    struct tl_sip_tsx_layer *l;
    struct tl_sip_tsx *next; /* hash chain */
    uint32_t hash;
    uint8_t key[TSX_KEY_LEN];
    size_t src_slot;        /* its source's counter (tl_srccount), SIZE_MAX: none */
    enum tl_sip_method mid; /* INVITE, or the request's method id */
    enum tl_sip_tsx_state st;
    struct tl_sip_peer peer;
    bool reliable;  /* TCP/TLS: no retransmissions, timers I and J are zero (§17.2.1/2) */
    bool stateless; /* its final goes out once, no copy kept, and it ends (issue 11) */
    char *resp;     /* last response sent, while a retransmitted request may need it */
    size_t resp_len;
    uint16_t scode;
    uint32_t g_int;
    struct tl_timer tg; /* G: non-2xx final retransmission (INVITE, UDP) */
    struct tl_timer te; /* H, I, J or L: the end of the transaction */
    void *uarg;
};

struct tl_sip_tsx_layer {
    struct tl_sip_tsx_cfg cfg;
    struct tl_theap *heap;
    struct tl_sip_tsx **bkt;
    size_t nbkt, n;
    /* the identity is hashed, not stored: a key that a hostile request could inflate to
     * ~40 KiB (five header lines) costs 16 bytes, and the hash is keyed per start so that
     * nobody can make two requests share a chain or a key on purpose */
    uint8_t secret[crypto_generichash_KEYBYTES];
    struct tl_srccount src; /* live transactions per source (cfg.max_per_src) */
};

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* one piece of the identity, then a separator that no piece contains */
static void key_put(crypto_generichash_state *st, const struct tl_pl *pl, bool fold_case)
{
    char low[256];
    const char *p = pl->p;
    size_t n = pl->l;
    while (n) {
        size_t k = n < sizeof low ? n : sizeof low;
        if (fold_case) {
            for (size_t i = 0; i < k; i++)
                low[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
            crypto_generichash_update(st, (const unsigned char *)low, k);
        } else {
            crypto_generichash_update(st, (const unsigned char *)p, k);
        }
        p += k;
        n -= k;
    }
    crypto_generichash_update(st, (const unsigned char *)"\x1f", 1);
}

/* §17.2.3. RFC 3261 peers: branch + sent-by + method (ACK counts as INVITE; a CANCEL
 * has its own transaction with the INVITE's branch). RFC 2543 peers (no magic cookie, or
 * the bare cookie of RFC 4475 §3.2.1): Request-URI, From tag, Call-ID, CSeq number and
 * the top Via. The To tag is left out: an INVITE retransmission has none and the ACK has
 * ours; the other fields already pin the transaction. */
static void make_key(const struct tl_sip_tsx_layer *l, const struct tl_sip_msg *msg, bool as_invite,
                     uint8_t out[TSX_KEY_LEN])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, l->secret, sizeof l->secret, TSX_KEY_LEN);
    const struct tl_sip_via *v = &msg->via;
    struct tl_pl m = msg->met;
    if (as_invite || msg->mid == TL_SIP_METHOD_ACK)
        m = TL_PL("INVITE");
    key_put(&st, &m, false);
    char port[8];
    int pn = snprintf(port, sizeof port, "%u", v->has_port ? v->port : 0u);
    struct tl_pl ppl = {port, (size_t)pn};
    char num[12];
    int nn = snprintf(num, sizeof num, "%u", msg->cseq.num);
    struct tl_pl npl = {num, (size_t)nn};
    if (tl_sip_via_branch_rfc3261(v)) {
        key_put(&st, &TL_PL("3261"), false);
        key_put(&st, &v->branch, false); /* branch compares case-sensitively */
        key_put(&st, &v->host, true);
        key_put(&st, &ppl, false);
        /* Call-ID and CSeq number too: equal in every retransmission, ACK and CANCEL, but a
         * client that reuses a branch for a new request (the RFC 4475 set does) gets that
         * request answered instead of the old response replayed */
        key_put(&st, &msg->callid, false);
        key_put(&st, &npl, false);
    } else {
        key_put(&st, &TL_PL("2543"), false);
        key_put(&st, &msg->ruri_pl, false);
        key_put(&st, &msg->from.tag, false);
        key_put(&st, &msg->callid, false);
        key_put(&st, &npl, false);
        key_put(&st, &v->host, true);
        key_put(&st, &ppl, false);
        key_put(&st, &v->branch, false);
    }
    crypto_generichash_final(&st, out, TSX_KEY_LEN);
}

static uint32_t key_hash(const uint8_t key[TSX_KEY_LEN])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return h;
}

static struct tl_sip_tsx *lookup(struct tl_sip_tsx_layer *l, const uint8_t key[TSX_KEY_LEN])
{
    uint32_t h = key_hash(key);
    for (struct tl_sip_tsx *t = l->bkt[h & (l->nbkt - 1)]; t; t = t->next)
        if (t->hash == h && !memcmp(t->key, key, TSX_KEY_LEN))
            return t;
    return NULL;
}

static int grow(struct tl_sip_tsx_layer *l)
{
    size_t nb = l->nbkt * 2;
    struct tl_sip_tsx **b = calloc(nb, sizeof *b);
    if (!b)
        return ENOMEM;
    for (size_t i = 0; i < l->nbkt; i++) {
        struct tl_sip_tsx *t = l->bkt[i], *nx;
        for (; t; t = nx) {
            nx = t->next;
            t->next = b[t->hash & (nb - 1)];
            b[t->hash & (nb - 1)] = t;
        }
    }
    free(l->bkt);
    l->bkt = b;
    l->nbkt = nb;
    return 0;
}

int tl_sip_tsx_layer_alloc(struct tl_sip_tsx_layer **lp, const struct tl_sip_tsx_cfg *cfg,
                           struct tl_theap *heap)
{
    struct tl_sip_tsx_layer *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->cfg = *cfg;
    l->heap = heap;
    l->nbkt = 256;
    l->bkt = calloc(l->nbkt, sizeof *l->bkt);
    if (!l->bkt || tl_srccount_init(&l->src, TL_SIP_SRC_SLOTS)) {
        free(l->bkt);
        free(l);
        return ENOMEM;
    }
    crypto_generichash_keygen(l->secret);
    *lp = l;
    return 0;
}

static void tsx_free(struct tl_sip_tsx *t)
{
    tl_timer_stop(t->l->heap, &t->tg);
    tl_timer_stop(t->l->heap, &t->te);
    tl_srccount_del(&t->l->src, t->src_slot);
    free(t->resp);
    free(t);
}

void tl_sip_tsx_layer_free(struct tl_sip_tsx_layer *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nbkt; i++) {
        struct tl_sip_tsx *t = l->bkt[i], *nx;
        for (; t; t = nx) {
            nx = t->next;
            tsx_free(t);
        }
    }
    tl_srccount_free(&l->src);
    sodium_memzero(l->secret, sizeof l->secret);
    free(l->bkt);
    free(l);
}

size_t tl_sip_tsx_count(const struct tl_sip_tsx_layer *l)
{
    return l->n;
}

size_t tl_sip_tsx_count_src(const struct tl_sip_tsx_layer *l, const struct sockaddr *sa)
{
    return tl_srccount_get(&l->src, tl_srccount_slot(&l->src, sa));
}

static void terminate(struct tl_sip_tsx *t, bool timeout)
{
    struct tl_sip_tsx_layer *l = t->l;
    t->st = TL_SIP_TSX_TERMINATED;
    if (l->cfg.term_h)
        l->cfg.term_h(t, timeout, l->cfg.arg);
    struct tl_sip_tsx **pp = &l->bkt[t->hash & (l->nbkt - 1)];
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp)
        *pp = t->next;
    l->n--;
    tsx_free(t);
}

#define TSX_OF(tm, member)                                                                         \
    ((struct tl_sip_tsx *)(void *)((char *)(tm)-offsetof(struct tl_sip_tsx, member)))

static void resend(struct tl_sip_tsx *t)
{
    if (t->resp)
        t->l->cfg.send(&t->peer, t->resp, t->resp_len, t->l->cfg.arg);
}

/* Timer G (§17.2.1): retransmit the non-2xx final, T1 doubling up to T2. */
static void on_g(struct tl_timer *tm, uint64_t now)
{
    struct tl_sip_tsx *t = TSX_OF(tm, tg);
    resend(t);
    t->g_int = t->g_int * 2 < t->l->cfg.t2 ? t->g_int * 2 : t->l->cfg.t2;
    tl_timer_start(t->l->heap, &t->tg, now + t->g_int, on_g);
}

/* H (no ACK came: timeout), I, J, L: the end */
static void on_end(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    struct tl_sip_tsx *t = TSX_OF(tm, te);
    terminate(t, t->st == TL_SIP_TSX_COMPLETED && t->mid == TL_SIP_METHOD_INVITE && !t->stateless);
}

int tl_sip_tsx_recv(struct tl_sip_tsx_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now)
{
    uint8_t key[TSX_KEY_LEN];
    make_key(l, msg, false, key);
    struct tl_sip_tsx *t = lookup(l, key);

    if (t && t->stateless && t->st == TL_SIP_TSX_COMPLETED) {
        /* answered once and kept nothing: a retransmission that arrives before the end
         * timer ran is a new request, answered anew (as if no state had ever existed) */
        terminate(t, false);
        t = NULL;
    }
    if (t) {
        if (msg->mid == TL_SIP_METHOD_ACK) {
            if (t->st == TL_SIP_TSX_COMPLETED && !t->stateless) {
                /* §17.2.1: the ACK for our non-2xx final; timer I absorbs its repeats */
                t->st = TL_SIP_TSX_CONFIRMED;
                tl_timer_stop(l->heap, &t->tg);
                tl_timer_start(l->heap, &t->te, now + (t->reliable ? 0 : l->cfg.t4), on_end);
            } else if (t->st == TL_SIP_TSX_ACCEPTED) {
                l->cfg.req_h(NULL, msg, peer, l->cfg.arg); /* RFC 6026 §8.7: to the TU */
            }
            return 0;
        }
        /* a retransmitted request gets the last response again (§17.2.1, §17.2.2);
         * Trying and Accepted absorb it (RFC 6026: the TU retransmits its 2xx) */
        if (t->st == TL_SIP_TSX_PROCEEDING || t->st == TL_SIP_TSX_COMPLETED)
            resend(t);
        return 0;
    }
    if (msg->mid == TL_SIP_METHOD_ACK) {
        l->cfg.req_h(NULL, msg, peer, l->cfg.arg);
        return 0;
    }

    /* issue 11: every live transaction holds memory and timers for up to 64*T1, so their
     * number is capped, for the whole stack and for each source (one source must not take
     * them all); over a cap the caller answers 503 statelessly */
    if (l->cfg.max && l->n >= l->cfg.max)
        return EAGAIN;
    const struct sockaddr *sa = (const struct sockaddr *)&peer->sa;
    size_t slot = tl_srccount_slot(&l->src, sa);
    if (!tl_srccount_add(&l->src, slot,
                         tl_net_guard_contains(l->cfg.edge, sa) ? 0 : l->cfg.max_per_src))
        return EAGAIN;
    if (l->n >= l->nbkt * 2 && grow(l)) {
        tl_srccount_del(&l->src, slot);
        return ENOMEM;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        tl_srccount_del(&l->src, slot);
        return ENOMEM;
    }
    memcpy(t->key, key, TSX_KEY_LEN);
    t->hash = key_hash(key);
    t->src_slot = slot;
    t->l = l;
    t->mid = msg->mid;
    t->peer = *peer;
    t->reliable = peer->tp != TL_SIP_TP_UDP;
    /* §17.2.1: an INVITE server transaction starts in Proceeding */
    t->st = msg->mid == TL_SIP_METHOD_INVITE ? TL_SIP_TSX_PROCEEDING : TL_SIP_TSX_TRYING;
    t->next = l->bkt[t->hash & (l->nbkt - 1)];
    l->bkt[t->hash & (l->nbkt - 1)] = t;
    l->n++;
    l->cfg.req_h(t, msg, peer, l->cfg.arg);
    return 0;
}

void tl_sip_tsx_set_stateless(struct tl_sip_tsx *tx)
{
    tx->stateless = true;
}

int tl_sip_tsx_respond(struct tl_sip_tsx *t, uint16_t scode, const char *buf, size_t len,
                       uint64_t now)
{
    struct tl_sip_tsx_layer *l = t->l;
    if (scode < 100 || scode > 699 ||
        (t->st != TL_SIP_TSX_TRYING && t->st != TL_SIP_TSX_PROCEEDING))
        return EINVAL;
    /* Issue 11 (UDP reflection): a refusal of an INVITE before any provisional — before a
     * dialog or even a Trying exists, so from a source nothing was agreed with — goes out
     * once. Timer G would send it up to 11 times over 32 s to whatever address the
     * datagram claimed; a retransmitted INVITE is simply refused again, and the ACK, if
     * any, matches nothing (the stray hook drops it). */
    if (scode >= 300 && t->mid == TL_SIP_METHOD_INVITE && !t->resp)
        t->stateless = true;
    /* the copy is kept only while a retransmitted request may need it: provisionals, and
     * non-2xx finals of stateful transactions (an INVITE 2xx is the TU's to resend) */
    bool keep = !(t->stateless && scode >= 200) &&
                !(scode >= 200 && scode < 300 && t->mid == TL_SIP_METHOD_INVITE) &&
                !(scode >= 200 && t->reliable);
    char *copy = NULL;
    if (keep) {
        if (!(copy = malloc(len)))
            return ENOMEM;
        memcpy(copy, buf, len);
    }
    free(t->resp);
    t->resp = copy;
    t->resp_len = copy ? len : 0;
    t->scode = scode;
    l->cfg.send(&t->peer, buf, len, l->cfg.arg);

    uint64_t t64 = 64u * (uint64_t)l->cfg.t1;
    if (scode >= 200 && t->stateless) {
        /* ends at the next timer run (the caller may still hold t) */
        t->st = TL_SIP_TSX_COMPLETED;
        tl_timer_start(l->heap, &t->te, now, on_end);
    } else if (scode < 200) {
        t->st = TL_SIP_TSX_PROCEEDING;
    } else if (t->mid == TL_SIP_METHOD_INVITE && scode < 300) {
        /* RFC 6026 §7.1: Accepted until timer L, absorbing INVITE retransmissions */
        t->st = TL_SIP_TSX_ACCEPTED;
        tl_timer_start(l->heap, &t->te, now + t64, on_end);
    } else if (t->mid == TL_SIP_METHOD_INVITE) {
        t->st = TL_SIP_TSX_COMPLETED;
        if (!t->reliable) {
            t->g_int = l->cfg.t1;
            tl_timer_start(l->heap, &t->tg, now + t->g_int, on_g);
        }
        tl_timer_start(l->heap, &t->te, now + t64, on_end); /* H */
    } else {
        /* §17.2.2 timer J: 64*T1 on UDP, zero on a reliable transport (deferred to the
         * next timer run so the caller's pointer stays valid until it returns) */
        t->st = TL_SIP_TSX_COMPLETED;
        tl_timer_start(l->heap, &t->te, now + (t->reliable ? 0 : t64), on_end);
    }
    return 0;
}

struct tl_sip_tsx *tl_sip_tsx_find_invite(struct tl_sip_tsx_layer *l,
                                          const struct tl_sip_msg *cancel)
{
    uint8_t key[TSX_KEY_LEN];
    make_key(l, cancel, true, key);
    struct tl_sip_tsx *t = lookup(l, key);
    return t && t->mid == TL_SIP_METHOD_INVITE && !t->stateless ? t : NULL;
}

enum tl_sip_tsx_state tl_sip_tsx_state(const struct tl_sip_tsx *tx)
{
    return tx->st;
}

enum tl_sip_method tl_sip_tsx_method(const struct tl_sip_tsx *tx)
{
    return tx->mid;
}

const struct tl_sip_peer *tl_sip_tsx_peer(const struct tl_sip_tsx *tx)
{
    return &tx->peer;
}

void tl_sip_tsx_set_uarg(struct tl_sip_tsx *tx, void *uarg)
{
    tx->uarg = uarg;
}

void *tl_sip_tsx_uarg(const struct tl_sip_tsx *tx)
{
    return tx->uarg;
}

/* ---- client transactions (RFC 3261 §17.1) ----
 * Keyed by branch + CSeq method name (§17.1.3): a CANCEL shares the INVITE's branch but is
 * its own transaction. We make the branches (z9hG4bK + 128 random bits), so a branch from
 * the wire longer than ours cannot match and is not hashed. */

#define CTR_BRANCH_MAX 64
#define CTR_KEY_MAX    (CTR_BRANCH_MAX + 1 + 32)
#define TIMER_D_MS     32000u /* §17.1.1.2: at least 32 s on an unreliable transport */

enum ctr_state { CTR_CALLING = 0, CTR_PROCEEDING, CTR_COMPLETED };

struct tl_sip_ctr {
    struct tl_sip_ctr_layer *l;
    struct tl_sip_ctr *next;
    uint32_t hash;
    char key[CTR_KEY_MAX];
    size_t keylen;
    enum tl_sip_method mid;
    enum ctr_state st;
    bool reliable;
    struct tl_sip_peer peer;
    char *req; /* the request as sent: retransmissions (A/E) and the non-2xx ACK */
    size_t req_len;
    char *ack; /* §17.1.1.3 ACK, re-sent for each retransmitted final */
    size_t ack_len;
    uint32_t a_int;
    struct tl_timer ta; /* A or E */
    struct tl_timer tb; /* B or F; then D or K */
    tl_sip_ctr_h *h;
    void *arg;
};

struct tl_sip_ctr_layer {
    struct tl_sip_ctr_cfg cfg;
    struct tl_theap *heap;
    struct tl_sip_ctr **bkt;
    size_t nbkt, n;
};

static size_t ctr_key(char *out, const struct tl_pl *branch, const struct tl_pl *met)
{
    if (branch->l > CTR_BRANCH_MAX || met->l > 32)
        return 0;
    memcpy(out, branch->p, branch->l);
    out[branch->l] = '\x1f';
    memcpy(out + branch->l + 1, met->p, met->l);
    return branch->l + 1 + met->l;
}

int tl_sip_ctr_layer_alloc(struct tl_sip_ctr_layer **lp, const struct tl_sip_ctr_cfg *cfg,
                           struct tl_theap *heap)
{
    struct tl_sip_ctr_layer *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->cfg = *cfg;
    l->heap = heap;
    l->nbkt = 256;
    if (!(l->bkt = calloc(l->nbkt, sizeof *l->bkt))) {
        free(l);
        return ENOMEM;
    }
    *lp = l;
    return 0;
}

static void ctr_free(struct tl_sip_ctr *t)
{
    tl_timer_stop(t->l->heap, &t->ta);
    tl_timer_stop(t->l->heap, &t->tb);
    free(t->req);
    free(t->ack);
    free(t);
}

void tl_sip_ctr_layer_free(struct tl_sip_ctr_layer *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->nbkt; i++) {
        struct tl_sip_ctr *t = l->bkt[i], *nx;
        for (; t; t = nx) {
            nx = t->next;
            ctr_free(t);
        }
    }
    free(l->bkt);
    free(l);
}

size_t tl_sip_ctr_count(const struct tl_sip_ctr_layer *l)
{
    return l->n;
}

static void ctr_unlink(struct tl_sip_ctr *t)
{
    struct tl_sip_ctr_layer *l = t->l;
    struct tl_sip_ctr **pp = &l->bkt[t->hash & (l->nbkt - 1)];
    while (*pp && *pp != t)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = t->next;
        l->n--;
    }
}

static void ctr_end(struct tl_sip_ctr *t)
{
    ctr_unlink(t);
    ctr_free(t);
}

/* Passes a response or an error up once the TU still listens; a final or an error is the
 * last thing it hears. */
static void ctr_report(struct tl_sip_ctr *t, const struct tl_sip_msg *resp, int err, bool last)
{
    tl_sip_ctr_h *h = t->h;
    if (last)
        t->h = NULL;
    if (h)
        h(t, resp, err, t->arg);
}

#define CTR_OF(tm, member)                                                                         \
    ((struct tl_sip_ctr *)(void *)((char *)(tm)-offsetof(struct tl_sip_ctr, member)))

static void ctr_end_timer(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    ctr_end(CTR_OF(tm, tb));
}

/* B / F: no final response in 64*T1 (§17.1.1.2, §17.1.2.2): the request timed out */
static void ctr_timeout(struct tl_timer *tm, uint64_t now)
{
    (void)now;
    struct tl_sip_ctr *t = CTR_OF(tm, tb);
    ctr_unlink(t);
    ctr_report(t, NULL, ETIMEDOUT, true);
    ctr_free(t);
}

static void ctr_fail(struct tl_sip_ctr *t, int err)
{
    ctr_unlink(t);
    ctr_report(t, NULL, err, true);
    ctr_free(t);
}

/* A (INVITE: T1 doubling, no cap, Calling only) and E (non-INVITE: T1 doubling up to T2;
 * T2 in Proceeding), UDP only */
static void ctr_retransmit(struct tl_timer *tm, uint64_t now)
{
    struct tl_sip_ctr *t = CTR_OF(tm, ta);
    struct tl_sip_ctr_layer *l = t->l;
    int err = l->cfg.send(&t->peer, t->req, t->req_len, l->cfg.arg);
    if (err) {
        ctr_fail(t, err); /* §17.1.4: a transport error ends the transaction */
        return;
    }
    if (t->mid == TL_SIP_METHOD_INVITE)
        t->a_int *= 2;
    else if (t->st == CTR_PROCEEDING)
        t->a_int = l->cfg.t2;
    else
        t->a_int = t->a_int * 2 < l->cfg.t2 ? t->a_int * 2 : l->cfg.t2;
    tl_timer_start(l->heap, &t->ta, now + t->a_int, ctr_retransmit);
}

int tl_sip_ctr_start(struct tl_sip_ctr_layer *l, struct tl_sip_ctr **tp, enum tl_sip_method mid,
                     const char *branch, const char *buf, size_t len,
                     const struct tl_sip_peer *peer, tl_sip_ctr_h *h, void *arg, uint64_t now)
{
    if (mid == TL_SIP_METHOD_ACK || !branch)
        return EINVAL;
    /* the method name for the key comes from the request line we printed */
    const char *sp = memchr(buf, ' ', len < 33 ? len : 33);
    if (!sp)
        return EINVAL;
    struct tl_pl met = {buf, (size_t)(sp - buf)};
    struct tl_pl br = tl_pl_str(branch);
    struct tl_sip_ctr *t = calloc(1, sizeof *t);
    if (!t)
        return ENOMEM;
    if (!(t->keylen = ctr_key(t->key, &br, &met))) {
        free(t);
        return EINVAL;
    }
    if (!(t->req = malloc(len))) {
        free(t);
        return ENOMEM;
    }
    if (l->n >= l->nbkt * 2) {
        size_t nb = l->nbkt * 2;
        struct tl_sip_ctr **b = calloc(nb, sizeof *b);
        if (!b) {
            free(t->req);
            free(t);
            return ENOMEM;
        }
        for (size_t i = 0; i < l->nbkt; i++)
            for (struct tl_sip_ctr *c = l->bkt[i], *nx; c; c = nx) {
                nx = c->next;
                c->next = b[c->hash & (nb - 1)];
                b[c->hash & (nb - 1)] = c;
            }
        free(l->bkt);
        l->bkt = b;
        l->nbkt = nb;
    }
    memcpy(t->req, buf, len);
    t->req_len = len;
    t->l = l;
    t->mid = mid;
    t->peer = *peer;
    t->reliable = peer->tp != TL_SIP_TP_UDP;
    t->h = h;
    t->arg = arg;
    int err = l->cfg.send(&t->peer, buf, len, l->cfg.arg);
    if (err) {
        free(t->req);
        free(t);
        return err;
    }
    t->hash = fnv1a(t->key, t->keylen);
    t->next = l->bkt[t->hash & (l->nbkt - 1)];
    l->bkt[t->hash & (l->nbkt - 1)] = t;
    l->n++;
    if (!t->reliable) {
        t->a_int = l->cfg.t1;
        tl_timer_start(l->heap, &t->ta, now + t->a_int, ctr_retransmit);
    }
    tl_timer_start(l->heap, &t->tb, now + 64u * (uint64_t)l->cfg.t1, ctr_timeout);
    *tp = t;
    return 0;
}

/* §17.1.1.3: the ACK for a 300-699 — Request-URI, Call-ID, From, CSeq number and the one
 * Via of the request, To of the response (with the server's tag), the request's Route. */
static void ctr_make_ack(struct tl_sip_ctr *t, const struct tl_sip_msg *resp)
{
    /* the stored request, re-decoded into storage of its own (issue 11: no process-wide
     * decode buffer that a callback could re-enter) */
    struct tl_sip_msg *m = malloc(sizeof *m);
    char *out = malloc(TL_SIP_MSG_MAX);
    if (!m || !out || tl_sip_msg_decode(m, t->req, t->req_len)) {
        free(m);
        free(out);
        return;
    }
    const struct tl_sip_hdr *via = tl_sip_msg_hdr(m, TL_SIP_HDR_VIA);
    const struct tl_sip_hdr *from = tl_sip_msg_hdr(m, TL_SIP_HDR_FROM);
    const struct tl_sip_hdr *to = tl_sip_msg_hdr(resp, TL_SIP_HDR_TO);
    if (!via || !from || !to) {
        free(m);
        free(out);
        return;
    }
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, TL_SIP_MSG_MAX);
    int err = tl_sip_wbuf_printf(&wb, "ACK %.*s SIP/2.0\r\n", (int)m->ruri_pl.l, m->ruri_pl.p);
    err = err ? err : tl_sip_hdr_print(&wb, "Via", &via->val);
    err = err ? err : tl_sip_wbuf_printf(&wb, "Max-Forwards: 70\r\n");
    err = err ? err : tl_sip_hdr_print(&wb, "From", &from->val);
    err = err ? err : tl_sip_hdr_print(&wb, "To", &to->val); /* CR/LF from the wire: refused */
    err = err ? err : tl_sip_hdr_print(&wb, "Call-ID", &m->callid);
    err = err ? err : tl_sip_wbuf_printf(&wb, "CSeq: %u ACK\r\n", m->cseq.num);
    for (size_t i = 0; !err && i < m->hdrc; i++)
        if (m->hdrv[i].id == TL_SIP_HDR_ROUTE)
            err = tl_sip_hdr_print(&wb, "Route", &m->hdrv[i].val);
    err = err ? err : tl_sip_wbuf_printf(&wb, "Content-Length: 0\r\n\r\n");
    if (!err && (t->ack = malloc(wb.len))) {
        memcpy(t->ack, out, wb.len);
        t->ack_len = wb.len;
    }
    free(m);
    free(out);
}

static void ctr_send_ack(struct tl_sip_ctr *t)
{
    if (t->ack)
        t->l->cfg.send(&t->peer, t->ack, t->ack_len, t->l->cfg.arg);
}

int tl_sip_ctr_recv(struct tl_sip_ctr_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now)
{
    (void)peer;
    char key[CTR_KEY_MAX];
    size_t klen = ctr_key(key, &msg->via.branch, &msg->cseq.met);
    if (!klen || msg->req)
        return ENOENT;
    uint32_t h = fnv1a(key, klen);
    struct tl_sip_ctr *t = l->bkt[h & (l->nbkt - 1)];
    while (t && !(t->hash == h && t->keylen == klen && !memcmp(t->key, key, klen)))
        t = t->next;
    if (!t)
        return ENOENT;
    uint16_t sc = msg->scode;
    if (t->st == CTR_COMPLETED) {
        /* a retransmitted final: INVITE re-ACKs it (§17.1.1.2), non-INVITE absorbs it */
        if (t->mid == TL_SIP_METHOD_INVITE && sc >= 300)
            ctr_send_ack(t);
        return 0;
    }
    if (sc < 200) {
        if (t->st == CTR_CALLING) {
            t->st = CTR_PROCEEDING;
            if (t->mid == TL_SIP_METHOD_INVITE) {
                /* §17.1.1.2: Proceeding stops A and B; the TU decides how long to ring */
                tl_timer_stop(l->heap, &t->ta);
                tl_timer_stop(l->heap, &t->tb);
            } else if (t->ta.idx) {
                t->a_int = l->cfg.t2;
                tl_timer_start(l->heap, &t->ta, now + t->a_int, ctr_retransmit);
            }
        }
        ctr_report(t, msg, 0, false);
        return 0;
    }
    tl_timer_stop(l->heap, &t->ta);
    tl_timer_stop(l->heap, &t->tb);
    if (t->mid == TL_SIP_METHOD_INVITE && sc < 300) {
        /* §17.1.1.2: a 2xx ends the transaction; the TU (dialog) sends the ACK */
        ctr_unlink(t);
        ctr_report(t, msg, 0, true);
        ctr_free(t);
        return 0;
    }
    t->st = CTR_COMPLETED;
    uint64_t wait;
    if (t->mid == TL_SIP_METHOD_INVITE) {
        ctr_make_ack(t, msg);
        ctr_send_ack(t);
        wait = t->reliable ? 0 : (TIMER_D_MS > 64u * l->cfg.t1 ? TIMER_D_MS : 64u * l->cfg.t1);
    } else {
        wait = t->reliable ? 0 : l->cfg.t4; /* K */
    }
    /* even a zero wait goes through the heap: the caller may still hold t */
    tl_timer_start(l->heap, &t->tb, now + wait, ctr_end_timer);
    ctr_report(t, msg, 0, true);
    return 0;
}

void tl_sip_ctr_detach(struct tl_sip_ctr *t)
{
    t->h = NULL;
}

void tl_sip_ctr_conn_failed(struct tl_sip_ctr_layer *l, uint64_t conn, int err)
{
    /* rare (a connection dies): a scan is fine; restart after each report, since the
     * handler may start or end other transactions */
    for (bool again = true; again;) {
        again = false;
        for (size_t i = 0; i < l->nbkt && !again; i++)
            for (struct tl_sip_ctr *t = l->bkt[i]; t; t = t->next)
                if (t->peer.tp != TL_SIP_TP_UDP && t->peer.conn == conn) {
                    if (t->st == CTR_COMPLETED)
                        ctr_end(t);
                    else
                        ctr_fail(t, err);
                    again = true;
                    break;
                }
    }
}

const struct tl_sip_peer *tl_sip_ctr_peer(const struct tl_sip_ctr *t)
{
    return &t->peer;
}
