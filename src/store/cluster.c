/* cluster: the counts and remote sums of cluster.h, and the thread that syncs them.
 *
 * One mutex guards both tables. The loop holds it for one hash update (a call admitted or
 * ended) or one lookup (admission); the sync thread holds it to copy the local table (a
 * few hundred bytes per busy workspace) and to swap in a remote table it built off-lock.
 * The database round trip never happens under it. */
#include "store/cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "store/store.h"

struct ent {
    struct ent *next;
    uint64_t h;
    struct tl_cluster_count v;
};

/* chained hash keyed by workspace id; ids are ours (random), not chosen by a caller, so a
 * plain FNV-1a cannot be steered into one chain */
struct tab {
    struct ent **b;
    size_t nb, n; /* nb: a power of two, or 0 */
};

struct tl_cluster {
    struct tl_cluster_cfg cfg;
    uint32_t lease_ms;
    char node_id[TL_CLUSTER_NODE_ID_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the thread: stop, or a local change */
    struct tab local, remote;
    int64_t remote_at; /* monotonic ms the remote sums were read; 0: never */
    bool changed;      /* local counts changed since the last snapshot */
    uint64_t rounds, fails;
    /* the thread */
    struct tl_store *store;
    pthread_t thread;
    bool running, stopping;
    int64_t first_start; /* the round tl_cluster_start ran */
    bool failing;        /* the thread's (or start's) own: a failure streak, logged once */
    int64_t fail_since;
    int64_t last_sweep; /* monotonic ms of the last sweep of lost nodes' calls */
};

static uint64_t hash_ws(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static struct ent **tab_find(struct tab *t, const char *ws, uint64_t h)
{
    if (!t->nb)
        return NULL;
    struct ent **p = &t->b[h & (t->nb - 1)];
    for (; *p; p = &(*p)->next)
        if ((*p)->h == h && !strcmp((*p)->v.workspace_id, ws))
            return p;
    return p; /* the empty slot at the chain's end */
}

/* an entry for ws, added (zero counts) when missing; NULL without memory */
static struct tl_cluster_count *tab_get(struct tab *t, const char *ws)
{
    uint64_t h = hash_ws(ws);
    if (t->n >= t->nb) { /* load ≤ 1 */
        size_t nb = t->nb ? 2 * t->nb : 16;
        struct ent **b = calloc(nb, sizeof *b);
        if (!b)
            return NULL;
        for (size_t i = 0; i < t->nb; i++)
            for (struct ent *e = t->b[i], *nx; e; e = nx) {
                nx = e->next;
                e->next = b[e->h & (nb - 1)];
                b[e->h & (nb - 1)] = e;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    struct ent **p = tab_find(t, ws, h);
    if (*p)
        return &(*p)->v;
    struct ent *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->h = h;
    tl_strlcpy(e->v.workspace_id, ws, sizeof e->v.workspace_id);
    *p = e;
    t->n++;
    return &e->v;
}

static void tab_del(struct tab *t, const char *ws)
{
    struct ent **p = tab_find(t, ws, hash_ws(ws));
    if (p && *p) {
        struct ent *e = *p;
        *p = e->next;
        free(e);
        t->n--;
    }
}

static void tab_free(struct tab *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct ent *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(t->b);
    *t = (struct tab){0};
}

/* the rows of t, malloc'ed (NULL for none) */
static int tab_rows(const struct tab *t, struct tl_cluster_count **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!t->n)
        return 0;
    struct tl_cluster_count *r = malloc(t->n * sizeof *r);
    if (!r)
        return ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->nb; i++)
        for (const struct ent *e = t->b[i]; e; e = e->next)
            r[k++] = e->v;
    *out = r;
    *n = k;
    return 0;
}

static int64_t mono_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct tl_cluster *c)
{
    return c->cfg.clock_ms(c->cfg.clock_arg);
}

int tl_cluster_new(struct tl_cluster **cp, const struct tl_cluster_cfg *cfg)
{
    struct tl_cluster *c = calloc(1, sizeof *c);
    *cp = NULL;
    if (!c)
        return ENOMEM;
    if (cfg)
        c->cfg = *cfg;
    if (!c->cfg.sync_ms)
        c->cfg.sync_ms = TL_CLUSTER_SYNC_MS_DEFAULT;
    if (!c->cfg.clock_ms)
        c->cfg.clock_ms = mono_ms;
    uint64_t lease = 4ull * c->cfg.sync_ms;
    c->lease_ms = lease < TL_CLUSTER_LEASE_MIN_MS ? TL_CLUSTER_LEASE_MIN_MS
                  : lease > UINT32_MAX            ? UINT32_MAX
                                                  : (uint32_t)lease;
    uint8_t r[8];
    randombytes_buf(r, sizeof r);
    snprintf(c->node_id, sizeof c->node_id, "nd_%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7]);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* rounds ignore wall-clock steps */
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    *cp = c;
    return 0;
}

void tl_cluster_free(struct tl_cluster *c)
{
    if (!c)
        return;
    tl_cluster_stop(c);
    tab_free(&c->local);
    tab_free(&c->remote);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *tl_cluster_node_id(const struct tl_cluster *c)
{
    return c->node_id;
}

uint32_t tl_cluster_sync_ms(const struct tl_cluster *c)
{
    return c->cfg.sync_ms;
}

uint32_t tl_cluster_lease_ms(const struct tl_cluster *c)
{
    return c->lease_ms;
}

void tl_cluster_local_add(struct tl_cluster *c, const char *ws, bool outbound, int delta)
{
    pthread_mutex_lock(&c->mu);
    struct tl_cluster_count *v = delta > 0 ? tab_get(&c->local, ws) : NULL;
    if (delta < 0) {
        struct ent **p = tab_find(&c->local, ws, hash_ws(ws));
        v = p && *p ? &(*p)->v : NULL;
    }
    if (v) {
        uint32_t *n = outbound ? &v->outbound : &v->inbound;
        *n = delta > 0 ? *n + 1 : *n ? *n - 1 : 0;
        if (!v->inbound && !v->outbound)
            tab_del(&c->local, ws);
        c->changed = true;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    if (!v && delta > 0)
        tl_warnl("cluster", "cluster.count_lost", "workspace=%s reason=no_memory", ws);
}

static bool fresh_locked(const struct tl_cluster *c, int64_t now)
{
    return c->remote_at != 0 && now - c->remote_at <= (int64_t)c->lease_ms;
}

void tl_cluster_remote(struct tl_cluster *c, const char *ws, uint32_t *inbound, uint32_t *outbound)
{
    *inbound = *outbound = 0;
    int64_t now = now_ms(c);
    pthread_mutex_lock(&c->mu);
    if (fresh_locked(c, now)) {
        struct ent **p = tab_find(&c->remote, ws, hash_ws(ws));
        if (p && *p) {
            *inbound = (*p)->v.inbound;
            *outbound = (*p)->v.outbound;
        }
    }
    pthread_mutex_unlock(&c->mu);
}

int tl_cluster_local_snapshot(struct tl_cluster *c, struct tl_cluster_count **out, size_t *n)
{
    pthread_mutex_lock(&c->mu);
    int r = tab_rows(&c->local, out, n);
    if (!r)
        c->changed = false;
    pthread_mutex_unlock(&c->mu);
    return r;
}

int tl_cluster_publish(struct tl_cluster *c, const struct tl_cluster_count *rows, size_t n,
                       int64_t read_at)
{
    struct tab t = {0};
    for (size_t i = 0; i < n; i++) {
        struct tl_cluster_count *v = tab_get(&t, rows[i].workspace_id);
        if (!v) {
            tab_free(&t);
            return ENOMEM;
        }
        v->inbound += rows[i].inbound;
        v->outbound += rows[i].outbound;
    }
    pthread_mutex_lock(&c->mu);
    struct tab old = c->remote;
    c->remote = t;
    c->remote_at = read_at ? read_at : 1;
    pthread_mutex_unlock(&c->mu);
    tab_free(&old); /* off-lock: admission never waits for a table's free */
    return 0;
}

int tl_cluster_view(struct tl_cluster *c, struct tl_cluster_view *v)
{
    memset(v, 0, sizeof *v);
    int64_t now = now_ms(c);
    pthread_mutex_lock(&c->mu);
    tl_strlcpy(v->node_id, c->node_id, sizeof v->node_id);
    v->sync_ms = c->cfg.sync_ms;
    v->lease_ms = c->lease_ms;
    v->running = c->running;
    v->fresh = fresh_locked(c, now);
    v->synced_ago_ms = c->remote_at ? now - c->remote_at : -1;
    v->rounds = c->rounds;
    v->fails = c->fails;
    int r = tab_rows(&c->local, &v->local, &v->n_local);
    if (!r && v->fresh)
        r = tab_rows(&c->remote, &v->remote, &v->n_remote);
    pthread_mutex_unlock(&c->mu);
    if (r) {
        free(v->local);
        free(v->remote);
        v->local = v->remote = NULL;
        v->n_local = v->n_remote = 0;
    }
    return r;
}

/* ---- the thread ---- */

/* A change of this node's counts starts a round early, but no sooner than this after the
 * last one: an admitted call reaches the database within sync_ms / 4 + one round trip
 * (the bound in docs/scale-out.md), and a burst of calls costs at most four extra rounds
 * per interval, not one per call. */
static int64_t min_gap_ms(const struct tl_cluster *c)
{
    return c->cfg.sync_ms / 4;
}

static void wait_until(struct tl_cluster *c, int64_t deadline_mono)
{
    struct timespec ts = {.tv_sec = deadline_mono / 1000,
                          .tv_nsec = (long)(deadline_mono % 1000) * 1000000};
    pthread_cond_timedwait(&c->cv, &c->mu, &ts);
}

/* one sync round begun at monotonic time start: 0, or an errno with err set */
static int do_round(struct tl_cluster *c, int64_t start, struct tl_err *err)
{
    struct tl_cluster_count *mine = NULL, *rows = NULL;
    size_t n_mine = 0, n = 0;
    int r = tl_cluster_local_snapshot(c, &mine, &n_mine);
    if (r)
        tl_err_set(err, r, 500, "internal", "", "Out of memory.");
    else
        r = tl_store_cluster_sync(c->store, c->node_id, mine, n_mine, c->lease_ms, TL_CLUSTER_GC_MS,
                                  &rows, &n, err);
    /* the sums are as old as the round's start: a conservative age for the lease */
    if (!r)
        r = tl_cluster_publish(c, rows, n, start - mono_ms(NULL) + now_ms(c));
    free(mine);
    free(rows);
    pthread_mutex_lock(&c->mu);
    c->rounds++;
    c->fails += r != 0;
    pthread_mutex_unlock(&c->mu);
    /* one line per failure streak: a database down for an hour must not write 14,400
     * lines; the recovery says how long counts were not shared */
    /* once a minute: the calls a node left open when it died (kill -9, power) and never
     * came back to close at its own start; the sweep spares every node still beating */
    if (!r && start - c->last_sweep >= TL_CLUSTER_GC_MS) {
        int64_t closed = 0;
        struct tl_err serr = {0};
        c->last_sweep = start;
        if (tl_store_calls_close_open(c->store, "node_lost", now_ms(c), TL_CLUSTER_GC_MS, &closed,
                                      &serr) != 0)
            tl_warnl("cluster", "cluster.sweep_failed", "detail=\"%s\"", serr.message);
        else if (closed)
            tl_warnl("store", "calls.closed_node_lost", "calls=%lld end_reason=node_lost",
                     (long long)closed);
    }
    if (r && !c->failing) {
        c->failing = true;
        c->fail_since = start;
        tl_warnl("cluster", "cluster.sync_failed",
                 "node=%s detail=\"%s\" remote_counts_kept_ms=%u then=0", c->node_id, err->message,
                 c->lease_ms);
    } else if (!r && c->failing) {
        c->failing = false;
        tl_info("cluster", "cluster.sync_recovered", "node=%s failed_ms=%lld", c->node_id,
                (long long)(start - c->fail_since));
    }
    return r;
}

static void *sync_main(void *arg)
{
    struct tl_cluster *c = arg;
    int64_t start = c->first_start;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        int64_t next = start + c->cfg.sync_ms;
        while (!c->stopping) {
            int64_t now = mono_ms(NULL);
            if (now >= next || (c->changed && now >= start + min_gap_ms(c)))
                break;
            wait_until(c, c->changed ? start + min_gap_ms(c) : next);
        }
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->mu);
        start = mono_ms(NULL);
        struct tl_err err = {0};
        do_round(c, start, &err);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int tl_cluster_start(struct tl_cluster *c, struct tl_store *s)
{
    if (!tl_store_shared(s))
        return ENOTSUP;
    c->store = s;
    /* the first round before the node takes any call: a node joining a busy cluster knows
     * the others' calls from its first INVITE, not one interval later */
    struct tl_err err = {0};
    c->first_start = mono_ms(NULL);
    do_round(c, c->first_start, &err);
    pthread_mutex_lock(&c->mu);
    c->stopping = false;
    int r = pthread_create(&c->thread, NULL, sync_main, c);
    c->running = r == 0;
    pthread_mutex_unlock(&c->mu);
    if (!r)
        tl_info("cluster", "cluster.start", "node=%s sync_ms=%u lease_ms=%u", c->node_id,
                c->cfg.sync_ms, c->lease_ms);
    return r;
}

void tl_cluster_stop(struct tl_cluster *c)
{
    pthread_mutex_lock(&c->mu);
    bool was = c->running;
    c->stopping = true;
    c->running = false;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!was)
        return;
    pthread_join(c->thread, NULL);
    struct tl_err err = {0};
    if (tl_store_cluster_leave(c->store, c->node_id, &err))
        tl_warnl("cluster", "cluster.leave_failed",
                 "node=%s detail=\"%s\" (the other nodes stop counting its calls after the "
                 "lease)",
                 c->node_id, err.message);
    else
        tl_info("cluster", "cluster.left", "node=%s", c->node_id);
}
