/* sip/resolve.c: RFC 3263 server location on c-ares 1.18 and libuv (rules in resolve.h).
 *
 * Plumbing. c-ares names the sockets it wants watched (ARES_OPT_SOCK_STATE_CB); each gets a
 * uv_poll, and one uv_timer is armed at ares_timeout() after every call into c-ares. Both
 * are unref'd. A second timer, "wake", delivers finished queries — so no callback ever
 * runs inside tl_net_resolve() or inside c-ares, whose callbacks can fire synchronously
 * (a hosts-file hit, a failed send) — and enforces each query's deadline; it is armed only
 * while a query is open, so the resolver keeps the loop alive exactly that long. All
 * queries share one timeout, so the running list in creation order is also deadline
 * order: the timer only looks at its head.
 *
 * A query lives until its callback ran (or it was cancelled) AND c-ares returned every
 * question it asked, counted in `pending`: c-ares 1.18 cannot cancel one question.
 */
#include "net/resolve.h"

#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <uv.h>

enum {
    DNS_CLASS_IN = 1,
    DNS_TYPE_SRV = 33,   /* RFC 2782 */
    DNS_TYPE_NAPTR = 35, /* RFC 3403 */
};

#define TIMEOUT_DEFAULT_MS 4000
#define TRIES_DEFAULT      2
#define ATTEMPT_MIN_MS     10

enum qstate {
    Q_RUNNING,    /* on r->running, questions in flight */
    Q_DONE,       /* on r->done: result decided, waiting for the wake timer */
    Q_DELIVERING, /* its callback is running */
    Q_DEAD,       /* delivered or cancelled; freed once pending reaches 0 */
};

struct qlist {
    struct tl_net_resolve_query *head, *tail;
};

struct poll_ent {
    uv_poll_t h;
    ares_socket_t fd;
    struct tl_net_resolver *r;
    struct poll_ent *next;
};

struct tl_net_resolver {
    uv_loop_t *loop;
    ares_channel ch;
    uv_timer_t ares_tmr; /* ares_timeout(): retransmits, c-ares's own timeouts */
    uv_timer_t wake;     /* delivery and query deadlines */
    struct poll_ent *polls;
    unsigned handles; /* open or closing uv handles; the struct is freed at 0 */
    struct qlist running, done;
    unsigned timeout_ms;
    int family;
    bool env_hosts;
    bool closing;
    uint64_t rng;
};

struct addr_slot {
    struct tl_net_resolve_query *q;
    struct ares_addrinfo *ai;
    int status;
};

struct naptr {
    uint16_t order, pref;
    char repl[TL_NET_NAME_MAX + 1];
};

struct tl_net_resolve_query {
    struct tl_net_resolver *r;
    struct tl_net_resolve_query *prev, *next;
    enum qstate state;
    unsigned pending; /* c-ares questions not yet returned */
    tl_net_resolve_h *cb;
    void *arg;
    uint64_t deadline; /* uv_now() ms */
    int err;
    enum tl_net_proto want;
    uint16_t port; /* given by the caller, or 0 */
    char host[TL_NET_NAME_MAX + 1];
    /* NAPTR step */
    struct naptr naptr[TL_NET_NAPTR_MAX];
    size_t nnaptr, naptr_i;
    bool srv_direct_done;
    /* SRV step; without SRV records srv[0] is the host itself with the default port */
    bool has_srv;
    struct tl_net_srv srv[TL_NET_SRV_MAX];
    size_t nsrv;
    /* address step: slot[i] resolves srv[i].target */
    struct addr_slot slot[TL_NET_SRV_MAX];
    size_t slots_left;
    struct tl_net_targets out;
};

/* ---- small helpers ---- */

static void list_add(struct qlist *l, struct tl_net_resolve_query *q)
{
    q->next = NULL;
    q->prev = l->tail;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
}

static void list_del(struct qlist *l, struct tl_net_resolve_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        l->head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        l->tail = q->prev;
    q->prev = q->next = NULL;
}

/* splitmix64: tiny, fine for spreading load (RFC 2782 weights are not a security matter) */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint16_t default_port(enum tl_net_proto tp)
{
    return tp == TL_NET_TLS ? TL_NET_PORT_TLS : TL_NET_PORT_DEFAULT; /* RFC 3261 §19.1.2 */
}

/* A host name as DNS allows it in text: labels of 1-63 letters, digits, '-' or '_' (SRV
 * owner names, and hosts that carry one), at most TL_NET_NAME_MAX octets. len excludes
 * any trailing dot. Names from DNS answers go through this too: c-ares writes odd octets
 * as \DDD escapes, which we refuse rather than send anywhere. */
static int name_check(const char *s, size_t len)
{
    if (len == 0)
        return EINVAL;
    if (len > TL_NET_NAME_MAX)
        return E2BIG;
    size_t lab = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (lab == 0)
                return EINVAL;
            lab = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok || ++lab > 63)
            return EINVAL;
    }
    return lab ? 0 : EINVAL;
}

/* "192.0.2.1", "2001:db8::1" or "[2001:db8::1]" (as SIP URIs write it, RFC 3261 §19.1.1). */
static bool ip_literal(const char *h, size_t len, uint16_t port, struct sockaddr_storage *ss,
                       socklen_t *sl)
{
    char buf[INET6_ADDRSTRLEN + 1];
    bool bracket = len >= 2 && h[0] == '[' && h[len - 1] == ']';
    if (bracket) {
        h++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, h, len);
    buf[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (!bracket && inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *sl = sizeof(*s4);
        return true;
    }
    if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *sl = sizeof(*s6);
        return true;
    }
    return false;
}

static int ares_to_errno(int st)
{
    switch (st) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENODATA:
    case ARES_ENOTFOUND:
        return ENOENT;
    case ARES_ETIMEOUT:
        return ETIMEDOUT;
    case ARES_ENOMEM:
        return ENOMEM;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return ECANCELED;
    default:
        /* ECONNREFUSED, ESERVFAIL, EREFUSED, EFORMERR, EBADRESP, ENOTIMP, EBADNAME…
         * c-ares 1.18 moves on to the next server on SERVFAIL/REFUSED and, when every
         * server did that, reports ECONNREFUSED: the two cannot be told apart. */
        return EIO;
    }
}

/* ---- targets ---- */

const struct tl_net_target *tl_net_targets_cur(const struct tl_net_targets *tg)
{
    return tg && tg->cur < tg->n ? &tg->v[tg->cur] : NULL;
}

const struct tl_net_target *tl_net_targets_next(struct tl_net_targets *tg)
{
    if (!tg)
        return NULL;
    if (tg->cur < tg->n)
        tg->cur++;
    return tl_net_targets_cur(tg);
}

int tl_net_target_str(const struct tl_net_target *t, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    const void *a;
    uint16_t port;
    if (!t || !buf || cap == 0)
        return EINVAL;
    buf[0] = '\0';
    if (t->sa.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&t->sa;
        a = &s4->sin_addr;
        port = ntohs(s4->sin_port);
    } else if (t->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&t->sa;
        a = &s6->sin6_addr;
        port = ntohs(s6->sin6_port);
    } else {
        return EINVAL;
    }
    if (!inet_ntop(t->sa.ss_family, a, ip, sizeof(ip)))
        return EINVAL;
    int n = t->sa.ss_family == AF_INET6 ? snprintf(buf, cap, "[%s]:%u", ip, port)
                                        : snprintf(buf, cap, "%s:%u", ip, port);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return ENOSPC;
    }
    return 0;
}

/* ---- SRV ordering (RFC 2782 "Usage rules") ---- */

void tl_net_srv_order(struct tl_net_srv *v, size_t n, uint64_t *rng)
{
    struct tl_net_srv tmp;
    /* stable insertion sort by priority (n is small) */
    for (size_t i = 1; i < n; i++) {
        tmp = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1].priority > tmp.priority; j--)
            v[j] = v[j - 1];
        v[j] = tmp;
    }
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && v[end].priority == v[i].priority)
            end++;
        /* "all those with weight 0 are placed at the beginning of the list" (stable) */
        for (size_t k = i + 1; k < end; k++) {
            if (v[k].weight != 0)
                continue;
            tmp = v[k];
            size_t j = k;
            for (; j > i && v[j - 1].weight != 0; j--)
                v[j] = v[j - 1];
            v[j] = tmp;
        }
        /* pick one at a time: a uniform number in [0, sum], the first record whose running
         * sum reaches it; rotating it to the front keeps the zero weights first */
        for (size_t k = i; k + 1 < end; k++) {
            uint32_t sum = 0, run = 0;
            for (size_t m = k; m < end; m++)
                sum += v[m].weight;
            uint32_t pick = (uint32_t)(rng_next(rng) % ((uint64_t)sum + 1));
            size_t m = k;
            for (; m < end; m++) {
                run += v[m].weight;
                if (run >= pick)
                    break;
            }
            tmp = v[m];
            for (; m > k; m--)
                v[m] = v[m - 1];
            v[k] = tmp;
        }
        i = end;
    }
}

/* ---- query life cycle ---- */

static void wake_cb(uv_timer_t *t);

static void wake_arm(struct tl_net_resolver *r)
{
    if (r->closing)
        return;
    if (r->done.head) {
        uv_timer_start(&r->wake, wake_cb, 0, 0);
        return;
    }
    if (r->running.head) {
        uint64_t now = uv_now(r->loop), due = r->running.head->deadline;
        uv_timer_start(&r->wake, wake_cb, due > now ? due - now : 0, 0);
        return;
    }
    uv_timer_stop(&r->wake);
}

static void ares_arm(struct tl_net_resolver *r);

static void q_maybe_free(struct tl_net_resolve_query *q)
{
    if (q->state != Q_DEAD || q->pending)
        return;
    for (size_t i = 0; i < TL_NET_SRV_MAX; i++)
        if (q->slot[i].ai)
            ares_freeaddrinfo(q->slot[i].ai);
    free(q);
}

/* The result is decided: queue it for delivery (a second decision, e.g. a late answer
 * after the deadline, is ignored). */
static void finish(struct tl_net_resolve_query *q, int err)
{
    struct tl_net_resolver *r = q->r;
    if (q->state != Q_RUNNING)
        return;
    list_del(&r->running, q);
    q->err = err;
    if (err)
        q->out.n = 0;
    q->state = Q_DONE;
    list_add(&r->done, q);
    wake_arm(r);
}

static void wake_cb(uv_timer_t *t)
{
    struct tl_net_resolver *r = t->data;
    struct tl_net_resolve_query *q;
    uint64_t now = uv_now(r->loop);

    while ((q = r->running.head) && q->deadline <= now)
        finish(q, ETIMEDOUT);

    /* Only what is queued now: a callback that starts a query which finishes at once (an
     * IP literal) must not keep this loop going forever. */
    size_t n = 0;
    for (q = r->done.head; q; q = q->next)
        n++;
    while (n-- && !r->closing && (q = r->done.head)) {
        list_del(&r->done, q);
        q->state = Q_DELIVERING; /* not freed underneath, even if cb frees the resolver */
        q->cb(q->err, q->err ? NULL : &q->out, q->arg);
        q->state = Q_DEAD;
        q_maybe_free(q);
    }
    wake_arm(r);
}

/* ---- c-ares plumbing ---- */

static void ares_tmr_cb(uv_timer_t *t)
{
    struct tl_net_resolver *r = t->data;
    ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    ares_arm(r);
}

static void ares_arm(struct tl_net_resolver *r)
{
    struct timeval tv;
    if (r->closing)
        return;
    if (ares_timeout(r->ch, NULL, &tv)) {
        uint64_t ms = (uint64_t)tv.tv_sec * 1000 + ((uint64_t)tv.tv_usec + 999) / 1000;
        uv_timer_start(&r->ares_tmr, ares_tmr_cb, ms, 0);
    } else {
        uv_timer_stop(&r->ares_tmr);
    }
}

static void release(struct tl_net_resolver *r)
{
    if (r->closing && r->handles == 0)
        free(r);
}

static void handle_closed(uv_handle_t *h)
{
    struct tl_net_resolver *r = h->data;
    r->handles--;
    release(r);
}

static void poll_closed(uv_handle_t *h)
{
    struct poll_ent *p = h->data;
    struct tl_net_resolver *r = p->r;
    free(p);
    r->handles--;
    release(r);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
    struct poll_ent *p = h->data;
    struct tl_net_resolver *r = p->r;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
    if (status < 0) { /* let c-ares read the error off the socket and close it */
        rfd = wfd = p->fd;
    } else {
        if (events & UV_READABLE)
            rfd = p->fd;
        if (events & UV_WRITABLE)
            wfd = p->fd;
    }
    ares_process_fd(r->ch, rfd, wfd); /* may close p (sock_state_cb): p is not used after */
    ares_arm(r);
}

static void sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    struct tl_net_resolver *r = data;
    struct poll_ent **pp = &r->polls, *p;
    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    p = *pp;
    if (!readable && !writable) {
        if (p) {
            *pp = p->next;
            uv_close((uv_handle_t *)&p->h, poll_closed);
        }
        return;
    }
    if (!p) {
        /* On failure the socket goes unwatched and its question times out: ETIMEDOUT. */
        p = calloc(1, sizeof(*p));
        if (!p)
            return;
        if (uv_poll_init_socket(r->loop, &p->h, fd) != 0) {
            free(p);
            return;
        }
        p->fd = fd;
        p->r = r;
        p->h.data = p;
        uv_unref((uv_handle_t *)&p->h);
        p->next = r->polls;
        r->polls = p;
        r->handles++;
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), poll_cb);
}

/* ---- steps ---- */

static void srv_next(struct tl_net_resolve_query *q);

static void assemble(struct tl_net_resolve_query *q)
{
    static const int fams[2] = {AF_INET, AF_INET6};
    struct tl_net_targets *o = &q->out;
    int err = ENOENT;
    o->n = 0;
    for (size_t i = 0; i < q->nsrv; i++) {
        struct addr_slot *s = &q->slot[i];
        int e = ares_to_errno(s->status);
        if (e) {
            /* a silent server says more than an empty name; keep the worst */
            if (e == ETIMEDOUT || err == ENOENT)
                err = e;
            continue;
        }
        if (!s->ai)
            continue;
        /* per name: IPv4 first, then IPv6 (see resolve.h) */
        size_t per_name = 0;
        for (int f = 0; f < 2; f++) {
            for (struct ares_addrinfo_node *nd = s->ai->nodes; nd; nd = nd->ai_next) {
                if (nd->ai_family != fams[f] || o->n == TL_NET_TARGETS_MAX ||
                    per_name == TL_NET_ADDR_MAX)
                    continue;
                struct tl_net_target *t = &o->v[o->n];
                memset(t, 0, sizeof(*t));
                if (fams[f] == AF_INET) {
                    if (nd->ai_addrlen < sizeof(struct sockaddr_in))
                        continue;
                    struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
                    memcpy(s4, nd->ai_addr, sizeof(*s4));
                    s4->sin_port = htons(q->srv[i].port);
                    t->salen = sizeof(*s4);
                } else {
                    if (nd->ai_addrlen < sizeof(struct sockaddr_in6))
                        continue;
                    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;
                    memcpy(s6, nd->ai_addr, sizeof(*s6));
                    s6->sin6_port = htons(q->srv[i].port);
                    t->salen = sizeof(*s6);
                }
                /* two SRV targets (or A + a hosts line) naming one address: list it once */
                bool dup = false;
                for (size_t k = 0; k < o->n && !dup; k++)
                    dup = o->v[k].salen == t->salen && !memcmp(&o->v[k].sa, &t->sa, t->salen);
                if (dup)
                    continue;
                t->tp = q->want;
                memcpy(t->host, q->srv[i].target, sizeof(t->host));
                if (q->has_srv) {
                    t->priority = q->srv[i].priority;
                    t->weight = q->srv[i].weight;
                }
                o->n++;
                per_name++;
            }
        }
        ares_freeaddrinfo(s->ai);
        s->ai = NULL;
    }
    o->cur = 0;
    finish(q, o->n ? 0 : err);
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    struct addr_slot *s = arg;
    struct tl_net_resolve_query *q = s->q;
    q->pending--;
    if (q->state != Q_RUNNING || status != ARES_SUCCESS) {
        if (ai)
            ares_freeaddrinfo(ai);
        ai = NULL;
    }
    if (q->state != Q_RUNNING) {
        q_maybe_free(q);
        return;
    }
    s->ai = ai;
    s->status = status;
    if (--q->slots_left == 0)
        assemble(q);
}

/* A and AAAA of every srv[i].target, in parallel: files first, then DNS ("fb"). */
static void addr_start(struct tl_net_resolve_query *q)
{
    struct tl_net_resolver *r = q->r;
    struct ares_addrinfo_hints hints = {
        /* NOSORT: we order ourselves; c-ares's RFC 6724 sort would connect() probes */
        .ai_flags = ARES_AI_NOSORT | (r->env_hosts ? ARES_AI_ENVHOSTS : 0),
        .ai_family = r->family,
    };
    q->slots_left = q->nsrv;
    for (size_t i = 0; i < q->nsrv; i++) {
        q->slot[i].q = q;
        q->slot[i].ai = NULL;
        q->slot[i].status = ARES_ENOTFOUND;
    }
    /* the callback may run before ares_getaddrinfo() returns (a hosts-file hit): count the
     * question first; the last slot is issued after the others, so assemble() runs once */
    for (size_t i = 0; i < q->nsrv; i++) {
        q->pending++;
        ares_getaddrinfo(r->ch, q->srv[i].target, NULL, &hints, addr_cb, &q->slot[i]);
    }
}

static void addr_start_host(struct tl_net_resolve_query *q)
{
    q->has_srv = false;
    q->nsrv = 1;
    memset(&q->srv[0], 0, sizeof(q->srv[0]));
    q->srv[0].port = q->port ? q->port : default_port(q->want);
    memcpy(q->srv[0].target, q->host, sizeof(q->srv[0].target));
    addr_start(q);
}

/* Keeps rec if there is room or it beats the worst kept one (smallest keys kept). */
static void srv_keep(struct tl_net_resolve_query *q, const struct ares_srv_reply *rec)
{
    size_t pos = q->nsrv;
    while (pos > 0 && q->srv[pos - 1].priority > rec->priority)
        pos--;
    if (pos == TL_NET_SRV_MAX)
        return;
    size_t last = q->nsrv < TL_NET_SRV_MAX ? q->nsrv : TL_NET_SRV_MAX - 1;
    memmove(&q->srv[pos + 1], &q->srv[pos], (last - pos) * sizeof(q->srv[0]));
    struct tl_net_srv *s = &q->srv[pos];
    s->priority = rec->priority;
    s->weight = rec->weight;
    s->port = rec->port;
    memcpy(s->target, rec->host, strlen(rec->host) + 1); /* length checked by the caller */
    if (q->nsrv < TL_NET_SRV_MAX)
        q->nsrv++;
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct tl_net_resolve_query *q = arg;
    q->pending--;
    if (q->state != Q_RUNNING) {
        q_maybe_free(q);
        return;
    }
    int err = ares_to_errno(status);
    struct ares_srv_reply *srv = NULL;
    if (!err) {
        int st = ares_parse_srv_reply(abuf, alen, &srv);
        err = st == ARES_SUCCESS ? 0 : ares_to_errno(st);
    }
    if (err) {
        ares_free_data(srv);
        if (err != ENOENT) {
            finish(q, err);
            return;
        }
        srv_next(q); /* no records under this name */
        return;
    }
    size_t total = 0, root = 0;
    q->nsrv = 0;
    for (struct ares_srv_reply *s = srv; s; s = s->next) {
        total++;
        size_t len = strlen(s->host);
        if (len == 0 || !strcmp(s->host, ".")) { /* c-ares writes the root as "" */
            root++;
            continue;
        }
        if (s->port == 0 || name_check(s->host, len) != 0)
            continue; /* unusable record: skip it, keep the others */
        srv_keep(q, s);
    }
    ares_free_data(srv);
    if (total && root == total) {
        /* RFC 2782: 'A Target of "." means that the service is decidedly not available at
         * this domain.' Do not fall back to A records behind the operator's back. */
        finish(q, ENOENT);
        return;
    }
    if (q->nsrv == 0) {
        srv_next(q);
        return;
    }
    q->has_srv = true;
    tl_net_srv_order(q->srv, q->nsrv, &q->r->rng);
    addr_start(q);
}

static bool naptr_queried(const struct tl_net_resolve_query *q, const char *name)
{
    for (size_t i = 0; i < q->naptr_i; i++)
        if (!strcasecmp(q->naptr[i].repl, name))
            return true;
    return false;
}

/* The next SRV name to ask: the NAPTR replacements in order, then the §4.2 name for the
 * transport; when none is left, A/AAAA of the host itself. */
static void srv_next(struct tl_net_resolve_query *q)
{
    char direct[TL_NET_NAME_MAX + 16];
    const char *name = NULL;
    if (q->naptr_i < q->nnaptr) {
        name = q->naptr[q->naptr_i++].repl;
    } else if (!q->srv_direct_done) {
        q->srv_direct_done = true;
        const char *pfx = q->want == TL_NET_TLS   ? "_sips._tcp."
                          : q->want == TL_NET_TCP ? "_sip._tcp."
                                                  : "_sip._udp.";
        int n = snprintf(direct, sizeof(direct), "%s%s", pfx, q->host);
        /* a host near 253 octets has no room for the prefix: no SRV for it */
        if (n > 0 && (size_t)n <= TL_NET_NAME_MAX && !naptr_queried(q, direct))
            name = direct;
    }
    if (!name) {
        addr_start_host(q);
        return;
    }
    q->pending++;
    ares_query(q->r->ch, name, DNS_CLASS_IN, DNS_TYPE_SRV, srv_cb, q);
}

static const char *naptr_service(enum tl_net_proto tp)
{
    switch (tp) { /* RFC 3263 §4.1 */
    case TL_NET_TLS:
        return "SIPS+D2T";
    case TL_NET_TCP:
        return "SIP+D2T";
    default:
        return "SIP+D2U";
    }
}

static void naptr_keep(struct tl_net_resolve_query *q, const struct ares_naptr_reply *rec)
{
    uint32_t key = (uint32_t)rec->order << 16 | rec->preference;
    size_t pos = q->nnaptr;
    while (pos > 0 && ((uint32_t)q->naptr[pos - 1].order << 16 | q->naptr[pos - 1].pref) > key)
        pos--;
    if (pos == TL_NET_NAPTR_MAX)
        return;
    size_t last = q->nnaptr < TL_NET_NAPTR_MAX ? q->nnaptr : TL_NET_NAPTR_MAX - 1;
    memmove(&q->naptr[pos + 1], &q->naptr[pos], (last - pos) * sizeof(q->naptr[0]));
    q->naptr[pos].order = rec->order;
    q->naptr[pos].pref = rec->preference;
    memcpy(q->naptr[pos].repl, rec->replacement, strlen(rec->replacement) + 1);
    if (q->nnaptr < TL_NET_NAPTR_MAX)
        q->nnaptr++;
}

static void naptr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct tl_net_resolve_query *q = arg;
    q->pending--;
    if (q->state != Q_RUNNING) {
        q_maybe_free(q);
        return;
    }
    int err = ares_to_errno(status);
    struct ares_naptr_reply *nr = NULL;
    if (!err) {
        int st = ares_parse_naptr_reply(abuf, alen, &nr);
        err = st == ARES_SUCCESS ? 0 : ares_to_errno(st);
    }
    /* NXDOMAIN / no NAPTR is the common case: go on with SRV. Anything else (a timeout,
     * SERVFAIL) means DNS is broken now, and guessing on would only hide it. */
    if (err && err != ENOENT) {
        ares_free_data(nr);
        finish(q, err);
        return;
    }
    const char *svc = naptr_service(q->want);
    for (struct ares_naptr_reply *n = nr; n; n = n->next) {
        size_t len = strlen(n->replacement);
        /* §4.1: terminal "s" flag, a service we speak; RFC 3403 §4.1: a regexp and a
         * replacement together are an error */
        if (strcasecmp((const char *)n->flags, "s") != 0 ||
            strcasecmp((const char *)n->service, svc) != 0 || n->regexp[0] != '\0' ||
            name_check(n->replacement, len) != 0)
            continue;
        naptr_keep(q, n);
    }
    ares_free_data(nr);
    srv_next(q);
}

/* ---- public ---- */

int tl_net_resolver_alloc(struct tl_net_resolver **rp, uv_loop_t *loop,
                          const struct tl_net_resolver_opts *o)
{
    static const struct tl_net_resolver_opts defaults;
    struct tl_net_resolver *r;
    int err = 0, st;

    if (!rp || !loop)
        return EINVAL;
    if (!o)
        o = &defaults;
    if (o->family != AF_UNSPEC && o->family != AF_INET && o->family != AF_INET6)
        return EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return ENOMEM;
    r->loop = loop;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : TIMEOUT_DEFAULT_MS;
    r->family = o->family;
    r->env_hosts = o->env_hosts;
    r->rng = o->seed;
    if (!r->rng && getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != sizeof(r->rng))
        r->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)r;

    st = ares_library_init(ARES_LIB_INIT_ALL); /* reference-counted by c-ares */
    if (st != ARES_SUCCESS) {
        free(r);
        return st == ARES_ENOMEM ? ENOMEM : EIO;
    }

    unsigned tries = o->tries ? o->tries : TRIES_DEFAULT;
    unsigned attempt = r->timeout_ms / (2 * tries);
    struct ares_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.sock_state_cb = sock_state_cb;
    ao.sock_state_cb_data = r;
    ao.timeout = attempt < ATTEMPT_MIN_MS ? ATTEMPT_MIN_MS : (int)attempt;
    ao.tries = (int)tries;
    ao.lookups = (char *)"fb"; /* /etc/hosts, then DNS; c-ares copies it */
    ao.ndomains = 0;           /* no resolv.conf search list: trunk names are absolute */
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
               ARES_OPT_DOMAINS;
    st = ares_init_options(&r->ch, &ao, mask);
    if (st != ARES_SUCCESS) {
        ares_library_cleanup();
        free(r);
        return st == ARES_ENOMEM ? ENOMEM : EIO;
    }
    if (o->servers) {
        st = ares_set_servers_ports_csv(r->ch, o->servers);
        if (st != ARES_SUCCESS) {
            err = st == ARES_ENOMEM ? ENOMEM : EINVAL;
            ares_destroy(r->ch);
            ares_library_cleanup();
            free(r);
            return err;
        }
    }
    uv_timer_init(loop, &r->ares_tmr);
    uv_timer_init(loop, &r->wake);
    r->ares_tmr.data = r;
    r->wake.data = r;
    uv_unref((uv_handle_t *)&r->ares_tmr); /* the wake timer keeps the loop alive instead */
    r->handles = 2;
    *rp = r;
    return 0;
}

void tl_net_resolver_free(struct tl_net_resolver *r)
{
    struct tl_net_resolve_query *q;
    if (!r || r->closing)
        return;
    r->closing = true; /* tl_net_resolve() refuses from here on, also from callbacks below */
    for (;;) {
        if ((q = r->running.head))
            list_del(&r->running, q);
        else if ((q = r->done.head))
            list_del(&r->done, q);
        else
            break;
        q->state = Q_DELIVERING;
        q->cb(ECANCELED, NULL, q->arg);
        q->state = Q_DEAD;
        q_maybe_free(q);
    }
    /* returns every question (EDESTRUCTION: orphans are freed) and closes every socket,
     * which closes the polls through sock_state_cb */
    ares_destroy(r->ch);
    ares_library_cleanup();
    while (r->polls) { /* none expected; belt and braces */
        struct poll_ent *p = r->polls;
        r->polls = p->next;
        uv_close((uv_handle_t *)&p->h, poll_closed);
    }
    uv_close((uv_handle_t *)&r->ares_tmr, handle_closed);
    uv_close((uv_handle_t *)&r->wake, handle_closed);
}

int tl_net_resolve(struct tl_net_resolver *r, const char *host, uint16_t port,
                   enum tl_net_proto want, tl_net_resolve_h *cb, void *arg,
                   struct tl_net_resolve_query **qp)
{
    struct tl_net_resolve_query *q;
    struct sockaddr_storage ss;
    socklen_t sl = 0;

    if (!r || !host || !cb)
        return EINVAL;
    if (r->closing)
        return ESHUTDOWN;
    if (want != TL_NET_UDP && want != TL_NET_TCP && want != TL_NET_TLS)
        return EPROTONOSUPPORT;
    size_t len = strlen(host);
    uint16_t dport = port ? port : default_port(want);
    bool lit = ip_literal(host, len, dport, &ss, &sl);
    if (!lit) {
        if (len > 0 && host[len - 1] == '.')
            len--; /* "example.com." is absolute already */
        int err = name_check(host, len);
        if (err)
            return err;
    }

    q = calloc(1, sizeof(*q));
    if (!q)
        return ENOMEM;
    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->want = want;
    q->port = port;
    memcpy(q->host, host, len);
    q->host[len] = '\0';
    memcpy(q->out.tls_name, q->host, len + 1);
    q->deadline = uv_now(r->loop) + r->timeout_ms;
    q->state = Q_RUNNING;
    list_add(&r->running, q);
    if (qp)
        *qp = q;

    if (lit) { /* RFC 3263 §4.1/§4.2: a numeric host needs no DNS */
        struct tl_net_target *t = &q->out.v[0];
        t->tp = want;
        t->sa = ss;
        t->salen = sl;
        q->out.n = 1;
        finish(q, 0);
        return 0;
    }
    if (port) { /* §4.2: an explicit port means A/AAAA only */
        addr_start_host(q);
    } else {
        q->pending++; /* before: the callback may run inside ares_query() */
        ares_query(r->ch, q->host, DNS_CLASS_IN, DNS_TYPE_NAPTR, naptr_cb, q);
    }
    wake_arm(r);
    ares_arm(r);
    return 0;
}

void tl_net_resolve_cancel(struct tl_net_resolve_query *q)
{
    if (!q)
        return;
    struct tl_net_resolver *r = q->r;
    switch (q->state) {
    case Q_RUNNING:
        list_del(&r->running, q);
        break;
    case Q_DONE:
        list_del(&r->done, q);
        break;
    default: /* its own callback is running, or it is gone: nothing to cancel */
        return;
    }
    q->state = Q_DEAD;
    q_maybe_free(q);
    wake_arm(r);
}
