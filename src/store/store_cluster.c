/* store: node_calls, the per-workspace call counts of the nodes sharing a database
 * (cluster.h; docs/scale-out.md "Per-workspace call caps across nodes"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/cluster.h"
#include "store/store_int.h"

/* No log line here: the sync thread calls this every cluster_sync_ms and logs once per
 * failure streak, with the detail this puts in err. */
static int cl_fail(struct tl_store *s, const char *op, struct tl_err *err)
{
    return tl_err_set(err, EIO, 500, "internal", "", "%s: %s", op, tl_db_errmsg(s->db));
}

/* One statement, so one round trip: the time an admitted call takes to reach the other
 * nodes is part of the documented overshoot bound. The row with workspace_id '' is the
 * node's heartbeat, written every round; a count row is rewritten only when it changed, so
 * a cluster of idle-but-busy workspaces costs one row write per node and round, not one per
 * workspace. Every sub-statement touches either this node's rows or those of nodes gone
 * for gc_ms (never both: PostgreSQL leaves two changes of one row in one statement
 * undefined); dead rows are taken with SKIP LOCKED so two nodes cleaning up at once never
 * wait for (or deadlock on) each other. */
static const char sync_sql[] =
    "WITH t AS (SELECT (extract(epoch FROM now()) * 1000)::bigint AS ms),"
    " mine AS (SELECT w, i, o FROM json_to_recordset(?2::json) AS x(w text, i bigint, o bigint)"
    "  UNION ALL SELECT '', 0, 0),"
    " up AS (INSERT INTO node_calls (node_id, workspace_id, inbound, outbound, updated_at)"
    "  SELECT ?1, w, i, o, (SELECT ms FROM t) FROM mine"
    "  ON CONFLICT (node_id, workspace_id) DO UPDATE SET inbound = excluded.inbound,"
    "  outbound = excluded.outbound, updated_at = excluded.updated_at"
    "  WHERE node_calls.workspace_id = '' OR node_calls.inbound <> excluded.inbound"
    "  OR node_calls.outbound <> excluded.outbound),"
    " gone AS (DELETE FROM node_calls WHERE node_id = ?1"
    "  AND workspace_id NOT IN (SELECT w FROM mine)),"
    " dead AS (DELETE FROM node_calls WHERE (node_id, workspace_id) IN"
    "  (SELECT node_id, workspace_id FROM node_calls WHERE node_id <> ?1 AND node_id IN"
    "   (SELECT node_id FROM node_calls WHERE workspace_id = '' AND"
    "    updated_at < (SELECT ms FROM t) - ?4) FOR UPDATE SKIP LOCKED))"
    "SELECT c.workspace_id, sum(c.inbound)::bigint, sum(c.outbound)::bigint"
    " FROM node_calls c JOIN node_calls h ON h.node_id = c.node_id AND h.workspace_id = ''"
    " WHERE c.node_id <> ?1 AND c.workspace_id <> '' AND h.updated_at >= (SELECT ms FROM t) - ?3"
    " GROUP BY c.workspace_id";

static char *mine_json(const struct tl_cluster_count *mine, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
        json_t *o = json_pack("{s:s,s:I,s:I}", "w", mine[i].workspace_id, "i",
                              (json_int_t)mine[i].inbound, "o", (json_int_t)mine[i].outbound);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

static uint32_t clamp_u32(int64_t v)
{
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int tl_store_cluster_sync(struct tl_store *s, const char *node_id,
                          const struct tl_cluster_count *mine, size_t n_mine, int64_t lease_ms,
                          int64_t gc_ms, struct tl_cluster_count **rows, size_t *n,
                          struct tl_err *err)
{
    *rows = NULL;
    *n = 0;
    if (!tl_store_shared(s))
        return tl_err_set(err, ENOTSUP, 500, "internal", "", "the store is not shared");
    char *js = mine_json(mine, n_mine);
    if (!js)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
    struct tl_cluster_count *out = NULL;
    size_t cnt = 0, cap = 0;
    struct tl_db_stmt *st = NULL;
    int ret = 0, rc;
    tl__lock(s);
    if (tl_db_prepare(s->db, sync_sql, &st) != 0) {
        st = NULL;
        ret = cl_fail(s, "cluster_sync", err);
        goto out;
    }
    if (tl_db_bind_text(st, 1, node_id) || tl_db_bind_text(st, 2, js) ||
        tl_db_bind_int64(st, 3, lease_ms) || tl_db_bind_int64(st, 4, gc_ms)) {
        ret = cl_fail(s, "cluster_sync", err);
        goto out;
    }
    while ((rc = tl_db_step(st)) == TL_DB_ROW) {
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 16;
            struct tl_cluster_count *g = realloc(out, nc * sizeof *g);
            if (!g) {
                ret = tl_err_set(err, ENOMEM, 500, "internal", "", "Out of memory.");
                goto out;
            }
            out = g;
            cap = nc;
        }
        struct tl_cluster_count *r = &out[cnt++];
        tl__col_text(st, 0, r->workspace_id, sizeof r->workspace_id);
        r->inbound = clamp_u32(tl_db_column_int64(st, 1));
        r->outbound = clamp_u32(tl_db_column_int64(st, 2));
    }
    if (rc != TL_DB_DONE)
        ret = cl_fail(s, "cluster_sync", err);
out:
    tl_db_finalize(st);
    tl__unlock(s);
    free(js);
    if (ret != 0) {
        free(out);
        return ret;
    }
    *rows = out;
    *n = cnt;
    return 0;
}

int tl_store_cluster_leave(struct tl_store *s, const char *node_id, struct tl_err *err)
{
    struct tl_db_stmt *st = NULL;
    if (!tl_store_shared(s))
        return 0;
    tl__lock(s);
    int ret = 0;
    if (tl_db_prepare(s->db, "DELETE FROM node_calls WHERE node_id = ?1", &st) != 0) {
        st = NULL;
        ret = cl_fail(s, "cluster_leave", err);
    } else if (tl_db_bind_text(st, 1, node_id) || tl_db_step(st) != TL_DB_DONE) {
        ret = cl_fail(s, "cluster_leave", err);
    }
    tl_db_finalize(st);
    tl__unlock(s);
    return ret;
}

void tl_store_set_node_id(struct tl_store *s, const char *node_id)
{
    tl__lock(s);
    tl_strlcpy(s->node_id, node_id ? node_id : "", sizeof s->node_id);
    tl__unlock(s);
}
