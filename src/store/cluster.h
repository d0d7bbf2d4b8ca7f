/* cluster: per-workspace concurrent-call counts shared by the nodes of one database (issue
 * 13, docs/scale-out.md "Per-workspace call caps across nodes").
 *
 * Each node counts its own calls per workspace in memory (the loop thread adds and
 * removes them as calls are admitted and end). A thread of this module, running only on
 * a shared store (PostgreSQL), publishes those counts to the table node_calls every
 * cluster_sync_ms and reads back the sums of the other nodes, which admission adds to its
 * own count. The loop never waits for the database: it reads and writes two small hash
 * tables under one mutex held for a lookup or a pointer swap, never across I/O.
 *
 * A node whose heartbeat is older than the lease (4 × cluster_sync_ms, at least 1 s; a
 * node killed with -9) stops counting; its rows are deleted after a minute. Remote sums
 * not refreshed within the lease (the database is unreachable) count as 0: fail open, the
 * per-node cap still holds (docs/scale-out.md says why).
 *
 * Thread-safety: every function may be called from any thread. */
#ifndef TL_STORE_CLUSTER_H
#define TL_STORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct tl_store;

#define TL_CLUSTER_SYNC_MS_DEFAULT 250
#define TL_CLUSTER_LEASE_MIN_MS    1000
#define TL_CLUSTER_GC_MS           60000 /* rows of nodes silent this long are deleted */
#define TL_CLUSTER_NODE_ID_MAX     20    /* "nd_" + 16 hex */

/* one workspace's calls not yet ended, by direction */
struct tl_cluster_count {
    char workspace_id[TL_ID_MAX];
    uint32_t inbound, outbound;
};

struct tl_cluster_cfg {
    uint32_t sync_ms; /* 0: TL_CLUSTER_SYNC_MS_DEFAULT */
    /* monotonic milliseconds; NULL: CLOCK_MONOTONIC (unit tests inject their own) */
    int64_t (*clock_ms)(void *arg);
    void *clock_arg;
};

struct tl_cluster;

/* The counts and the remote sums, no thread yet. 0 or ENOMEM. */
int tl_cluster_new(struct tl_cluster **cp, const struct tl_cluster_cfg *cfg);
/* Stops the thread (tl_cluster_stop) and frees. NULL: nothing. */
void tl_cluster_free(struct tl_cluster *c);
const char *tl_cluster_node_id(const struct tl_cluster *c); /* random per process start */
uint32_t tl_cluster_sync_ms(const struct tl_cluster *c);
uint32_t tl_cluster_lease_ms(const struct tl_cluster *c); /* max(4 × sync_ms, 1 s) */

/* A call of workspace ws was admitted (delta +1) or ended (-1) on this node. Never fails
 * in a way the caller must handle: without memory for a new workspace the call is not
 * counted for the other nodes (logged), and its end is ignored likewise. */
void tl_cluster_local_add(struct tl_cluster *c, const char *ws, bool outbound, int delta);
/* The other nodes' calls of ws as last read, or 0 and 0 once older than the lease. */
void tl_cluster_remote(struct tl_cluster *c, const char *ws, uint32_t *inbound, uint32_t *outbound);

/* ---- the sync round, parts exposed for the thread and the unit tests ----
 * This node's counts (workspaces with a call only): *out malloc'ed, *n rows; 0 or ENOMEM. */
int tl_cluster_local_snapshot(struct tl_cluster *c, struct tl_cluster_count **out, size_t *n);
/* A successful round that read rows at monotonic time read_at replaces the remote sums.
 * 0 or ENOMEM (the old sums stay). */
int tl_cluster_publish(struct tl_cluster *c, const struct tl_cluster_count *rows, size_t n,
                       int64_t read_at);

/* ---- what operators see (GET /v1/cluster) ---- */
struct tl_cluster_view {
    char node_id[TL_CLUSTER_NODE_ID_MAX];
    uint32_t sync_ms, lease_ms;
    bool running;           /* the sync thread runs (a shared store) */
    bool fresh;             /* remote sums younger than the lease: admission uses them */
    int64_t synced_ago_ms;  /* since the last successful round; -1: none yet */
    uint64_t rounds, fails; /* rounds done, of which failed */
    /* per workspace with a call here or elsewhere; remote counts as admission sees them */
    struct tl_cluster_count *local, *remote;
    size_t n_local, n_remote;
};
/* fills v; free v->local and v->remote. 0 or ENOMEM. */
int tl_cluster_view(struct tl_cluster *c, struct tl_cluster_view *v);

/* ---- the thread ----
 * Starts the sync rounds against s, a connection of its own (its lock is held for each
 * round trip). Only for a shared store (tl_store_shared); 0, ENOTSUP, or pthread's errno. */
int tl_cluster_start(struct tl_cluster *c, struct tl_store *s);
/* Ends the thread and deletes this node's rows (a clean shutdown stops counting at once,
 * without waiting for the lease). Idempotent. */
void tl_cluster_stop(struct tl_cluster *c);

/* ---- store side (store_cluster.c) ---- */
/* One round trip: upserts node_id's heartbeat and counts (rows not in mine are deleted),
 * deletes rows of nodes silent for gc_ms, and returns in *rows (malloc'ed, *n) the sums
 * per workspace of the other nodes whose heartbeat is younger than lease_ms. Times are
 * the database's clock, so the nodes' clocks need not agree. 0, ENOTSUP (not shared), or
 * an error in err. */
int tl_store_cluster_sync(struct tl_store *s, const char *node_id,
                          const struct tl_cluster_count *mine, size_t n_mine, int64_t lease_ms,
                          int64_t gc_ms, struct tl_cluster_count **rows, size_t *n,
                          struct tl_err *err);
/* deletes node_id's rows (a clean shutdown) */
int tl_store_cluster_leave(struct tl_store *s, const char *node_id, struct tl_err *err);

#endif
