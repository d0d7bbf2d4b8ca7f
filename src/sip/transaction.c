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

#include "sip/stack.h"

/* ---- timer heap: binary min-heap on due time; t->idx is its slot + 1 ---- */

void tl_sip_theap_init(struct tl_sip_theap *h)
{
    memset(h, 0, sizeof *h);
}

void tl_sip_theap_free(struct tl_sip_theap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->idx = 0;
    free(h->v);
    memset(h, 0, sizeof *h);
}

static void heap_set(struct tl_sip_theap *h, size_t i, struct tl_sip_timer *t)
{
    h->v[i] = t;
    t->idx = i + 1;
}

static void heap_up(struct tl_sip_theap *h, size_t i)
{
    struct tl_sip_timer *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->due <= t->due)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, t);
}

static void heap_down(struct tl_sip_theap *h, size_t i)
{
    struct tl_sip_timer *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->due < h->v[c]->due)
            c++;
        if (t->due <= h->v[c]->due)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, t);
}

void tl_sip_timer_stop(struct tl_sip_theap *h, struct tl_sip_timer *t)
{
    if (!t->idx)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    struct tl_sip_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->idx - 1);
}

int tl_sip_timer_start(struct tl_sip_theap *h, struct tl_sip_timer *t, uint64_t due,
                       tl_sip_timer_h *fn)
{
    tl_sip_timer_stop(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct tl_sip_timer **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->due = due;
    t->fn = fn;
    heap_set(h, h->n++, t);
    heap_up(h, h->n - 1);
    return 0;
}

void tl_sip_theap_run(struct tl_sip_theap *h, uint64_t now)
{
    while (h->n && h->v[0]->due <= now) {
        struct tl_sip_timer *t = h->v[0];
        tl_sip_timer_stop(h, t);
        t->fn(t, now); /* may free the object holding t: touch nothing after */
    }
}

uint64_t tl_sip_theap_next(const struct tl_sip_theap *h)
{
    return h->n ? h->v[0]->due : UINT64_MAX;
}

/* ---- transactions ---- */

struct tl_sip_tsx {
    struct tl_sip_tsx_layer *l;
    struct tl_sip_tsx *next; /* hash chain */
    uint32_t hash;
    char *key;
    size_t keylen;
    enum tl_sip_method mid; /* INVITE, or the request's method id */
    enum tl_sip_tsx_state st;
    struct tl_sip_peer peer;
    bool reliable; /* TCP/TLS: no retransmissions, timers I and J are zero (§17.2.1/2) */
    char *resp;    /* last response sent */
    size_t resp_len;
    uint16_t scode;
    uint32_t g_int;
    struct tl_sip_timer tg; /* G: non-2xx final retransmission (INVITE, UDP) */
    struct tl_sip_timer te; /* H, I, J or L: the end of the transaction */
    void *uarg;
};

struct tl_sip_tsx_layer {
    struct tl_sip_tsx_cfg cfg;
    struct tl_sip_theap *heap;
    struct tl_sip_tsx **bkt;
    size_t nbkt, n;
};

/* The longest key: five pieces of at most one header line each. Static: one thread. */
static char keybuf[5 * TL_SIP_LINE_MAX + 64];

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static void key_put(struct tl_sip_wbuf *wb, const struct tl_pl *pl, bool fold_case)
{
    size_t n = pl->l;
    if (wb->len + n + 1 > wb->size)
        n = 0; /* cannot happen with the caps; an empty piece still matches itself */
    for (size_t i = 0; i < n; i++) {
        char c = pl->p[i];
        if (fold_case && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        wb->buf[wb->len++] = c;
    }
    wb->buf[wb->len++] = '\x1f';
}

/* §17.2.3. RFC 3261 peers: branch + sent-by + method (ACK counts as INVITE; a CANCEL
 * has its own transaction with the INVITE's branch). RFC 2543 peers (no magic cookie, or
 * the bare cookie of RFC 4475 §3.2.1): Request-URI, From tag, Call-ID, CSeq number and
 * the top Via. The To tag is left out: an INVITE retransmission has none and the ACK has
 * ours; the other fields already pin the transaction. */
static size_t make_key(const struct tl_sip_msg *msg, bool as_invite)
{
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, keybuf, sizeof keybuf);
    const struct tl_sip_via *v = &msg->via;
    struct tl_pl m = msg->met;
    if (as_invite || msg->mid == TL_SIP_METHOD_ACK)
        m = TL_PL("INVITE");
    key_put(&wb, &m, false);
    char port[8];
    int pn = snprintf(port, sizeof port, "%u", v->has_port ? v->port : 0u);
    struct tl_pl ppl = {port, (size_t)pn};
    char num[12];
    int nn = snprintf(num, sizeof num, "%u", msg->cseq.num);
    struct tl_pl npl = {num, (size_t)nn};
    if (tl_sip_via_branch_rfc3261(v)) {
        key_put(&wb, &TL_PL("3261"), false);
        key_put(&wb, &v->branch, false); /* branch compares case-sensitively */
        key_put(&wb, &v->host, true);
        key_put(&wb, &ppl, false);
        /* Call-ID and CSeq number too: equal in every retransmission, ACK and CANCEL, but a
         * client that reuses a branch for a new request (the RFC 4475 set does) gets that
         * request answered instead of the old response replayed */
        key_put(&wb, &msg->callid, false);
        key_put(&wb, &npl, false);
    } else {
        key_put(&wb, &TL_PL("2543"), false);
        key_put(&wb, &msg->ruri_pl, false);
        key_put(&wb, &msg->from.tag, false);
        key_put(&wb, &msg->callid, false);
        key_put(&wb, &npl, false);
        key_put(&wb, &v->host, true);
        key_put(&wb, &ppl, false);
        key_put(&wb, &v->branch, false);
    }
    return wb.len;
}

static struct tl_sip_tsx *lookup(struct tl_sip_tsx_layer *l, size_t klen, uint32_t h)
{
    for (struct tl_sip_tsx *t = l->bkt[h & (l->nbkt - 1)]; t; t = t->next)
        if (t->hash == h && t->keylen == klen && !memcmp(t->key, keybuf, klen))
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
                           struct tl_sip_theap *heap)
{
    struct tl_sip_tsx_layer *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->cfg = *cfg;
    l->heap = heap;
    l->nbkt = 256;
    l->bkt = calloc(l->nbkt, sizeof *l->bkt);
    if (!l->bkt) {
        free(l);
        return ENOMEM;
    }
    *lp = l;
    return 0;
}

static void tsx_free(struct tl_sip_tsx *t)
{
    tl_sip_timer_stop(t->l->heap, &t->tg);
    tl_sip_timer_stop(t->l->heap, &t->te);
    free(t->resp);
    free(t->key);
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
    free(l->bkt);
    free(l);
}

size_t tl_sip_tsx_count(const struct tl_sip_tsx_layer *l)
{
    return l->n;
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
static void on_g(struct tl_sip_timer *tm, uint64_t now)
{
    struct tl_sip_tsx *t = TSX_OF(tm, tg);
    resend(t);
    t->g_int = t->g_int * 2 < t->l->cfg.t2 ? t->g_int * 2 : t->l->cfg.t2;
    tl_sip_timer_start(t->l->heap, &t->tg, now + t->g_int, on_g);
}

/* H (no ACK came: timeout), I, J, L: the end */
static void on_end(struct tl_sip_timer *tm, uint64_t now)
{
    (void)now;
    struct tl_sip_tsx *t = TSX_OF(tm, te);
    terminate(t, t->st == TL_SIP_TSX_COMPLETED && t->mid == TL_SIP_METHOD_INVITE);
}

int tl_sip_tsx_recv(struct tl_sip_tsx_layer *l, const struct tl_sip_msg *msg,
                    const struct tl_sip_peer *peer, uint64_t now)
{
    size_t klen = make_key(msg, false);
    uint32_t h = fnv1a(keybuf, klen);
    struct tl_sip_tsx *t = lookup(l, klen, h);

    if (t) {
        if (msg->mid == TL_SIP_METHOD_ACK) {
            if (t->st == TL_SIP_TSX_COMPLETED) {
                /* §17.2.1: the ACK for our non-2xx final; timer I absorbs its repeats */
                t->st = TL_SIP_TSX_CONFIRMED;
                tl_sip_timer_stop(l->heap, &t->tg);
                tl_sip_timer_start(l->heap, &t->te, now + (t->reliable ? 0 : l->cfg.t4), on_end);
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

    if (l->n >= l->nbkt * 2 && grow(l))
        return ENOMEM;
    t = calloc(1, sizeof *t);
    if (!t || !(t->key = malloc(klen))) {
        free(t);
        return ENOMEM;
    }
    memcpy(t->key, keybuf, klen);
    t->keylen = klen;
    t->hash = h;
    t->l = l;
    t->mid = msg->mid;
    t->peer = *peer;
    t->reliable = peer->tp != TL_SIP_TP_UDP;
    /* §17.2.1: an INVITE server transaction starts in Proceeding */
    t->st = msg->mid == TL_SIP_METHOD_INVITE ? TL_SIP_TSX_PROCEEDING : TL_SIP_TSX_TRYING;
    t->next = l->bkt[h & (l->nbkt - 1)];
    l->bkt[h & (l->nbkt - 1)] = t;
    l->n++;
    l->cfg.req_h(t, msg, peer, l->cfg.arg);
    return 0;
}

int tl_sip_tsx_respond(struct tl_sip_tsx *t, uint16_t scode, const char *buf, size_t len,
                       uint64_t now)
{
    struct tl_sip_tsx_layer *l = t->l;
    if (scode < 100 || scode > 699 ||
        (t->st != TL_SIP_TSX_TRYING && t->st != TL_SIP_TSX_PROCEEDING))
        return EINVAL;
    char *copy = malloc(len);
    if (!copy)
        return ENOMEM;
    memcpy(copy, buf, len);
    free(t->resp);
    t->resp = copy;
    t->resp_len = len;
    t->scode = scode;
    l->cfg.send(&t->peer, buf, len, l->cfg.arg);

    uint64_t t64 = 64u * (uint64_t)l->cfg.t1;
    if (scode < 200) {
        t->st = TL_SIP_TSX_PROCEEDING;
    } else if (t->mid == TL_SIP_METHOD_INVITE && scode < 300) {
        /* RFC 6026 §7.1: Accepted until timer L, absorbing INVITE retransmissions */
        t->st = TL_SIP_TSX_ACCEPTED;
        tl_sip_timer_start(l->heap, &t->te, now + t64, on_end);
    } else if (t->mid == TL_SIP_METHOD_INVITE) {
        t->st = TL_SIP_TSX_COMPLETED;
        if (!t->reliable) {
            t->g_int = l->cfg.t1;
            tl_sip_timer_start(l->heap, &t->tg, now + t->g_int, on_g);
        }
        tl_sip_timer_start(l->heap, &t->te, now + t64, on_end); /* H */
    } else {
        /* §17.2.2 timer J: 64*T1 on UDP, zero on a reliable transport (deferred to the
         * next timer run so the caller's pointer stays valid until it returns) */
        t->st = TL_SIP_TSX_COMPLETED;
        tl_sip_timer_start(l->heap, &t->te, now + (t->reliable ? 0 : t64), on_end);
    }
    return 0;
}

struct tl_sip_tsx *tl_sip_tsx_find_invite(struct tl_sip_tsx_layer *l,
                                          const struct tl_sip_msg *cancel)
{
    size_t klen = make_key(cancel, true);
    struct tl_sip_tsx *t = lookup(l, klen, fnv1a(keybuf, klen));
    return t && t->mid == TL_SIP_METHOD_INVITE ? t : NULL;
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
