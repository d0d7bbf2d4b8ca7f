/* store/cluster.h: the per-workspace counts and remote sums (any backend), and node_calls
 * with its sync thread on PostgreSQL (make test-pg; skipped on SQLite, which no other node
 * can share). */
#include <setjmp.h>
#include <stdarg.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "store/cluster.h"
#include "store_test_util.h"

/* ---- the tables, on an injected clock ---- */

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static struct tl_cluster *new_cluster(uint32_t sync_ms)
{
    struct tl_cluster *c = NULL;
    struct tl_cluster_cfg cfg = {.sync_ms = sync_ms, .clock_ms = fake_clock};
    assert_int_equal(0, tl_cluster_new(&c, &cfg));
    return c;
}

static const struct tl_cluster_count *find(const struct tl_cluster_count *r, size_t n,
                                           const char *ws)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(r[i].workspace_id, ws))
            return &r[i];
    return NULL;
}

static void test_local_counts(void **state)
{
    struct tl_cluster *c = new_cluster(250);
    struct tl_cluster_count *r = NULL;
    size_t n = 0;
    tl_cluster_local_add(c, "ws_a", false, 1);
    tl_cluster_local_add(c, "ws_a", false, 1);
    tl_cluster_local_add(c, "ws_a", true, 1);
    tl_cluster_local_add(c, "ws_b", true, 1);
    tl_cluster_local_add(c, "ws_x", false, -1); /* an end never counted: ignored */
    /* enough workspaces to grow the table past its first size */
    char ws[TL_ID_MAX];
    for (int i = 0; i < 100; i++) {
        snprintf(ws, sizeof ws, "ws_%03d", i);
        tl_cluster_local_add(c, ws, i % 2, 1);
    }
    assert_int_equal(0, tl_cluster_local_snapshot(c, &r, &n));
    assert_int_equal(n, 102);
    const struct tl_cluster_count *a = find(r, n, "ws_a");
    assert_non_null(a);
    assert_int_equal(a->inbound, 2);
    assert_int_equal(a->outbound, 1);
    assert_int_equal(find(r, n, "ws_b")->outbound, 1);
    assert_int_equal(find(r, n, "ws_077")->outbound, 1);
    assert_null(find(r, n, "ws_x"));
    free(r);
    /* a workspace whose calls all ended is not published (its row is deleted) */
    tl_cluster_local_add(c, "ws_a", false, -1);
    tl_cluster_local_add(c, "ws_a", false, -1);
    tl_cluster_local_add(c, "ws_a", false, -1); /* one end too many never goes below 0 */
    tl_cluster_local_add(c, "ws_a", true, -1);
    for (int i = 0; i < 100; i++) {
        snprintf(ws, sizeof ws, "ws_%03d", i);
        tl_cluster_local_add(c, ws, i % 2, -1);
    }
    assert_int_equal(0, tl_cluster_local_snapshot(c, &r, &n));
    assert_int_equal(n, 1);
    assert_string_equal(r[0].workspace_id, "ws_b");
    free(r);
    tl_cluster_free(c);
}

static void test_lease(void **state)
{
    struct tl_cluster *c = new_cluster(250);
    assert_int_equal(tl_cluster_lease_ms(c), 1000); /* 4 × 250 */
    tl_cluster_free(c);
    c = new_cluster(100);
    assert_int_equal(tl_cluster_lease_ms(c), TL_CLUSTER_LEASE_MIN_MS); /* 400 → 1 s */
    tl_cluster_free(c);
    c = new_cluster(0);
    assert_int_equal(tl_cluster_sync_ms(c), TL_CLUSTER_SYNC_MS_DEFAULT);
    tl_cluster_free(c);
    c = new_cluster(2000);
    assert_int_equal(tl_cluster_lease_ms(c), 8000);
    /* node ids: "nd_" + 16 hex, random per start */
    struct tl_cluster *d = new_cluster(2000);
    const char *id = tl_cluster_node_id(c);
    assert_int_equal(strlen(id), 19);
    assert_memory_equal(id, "nd_", 3);
    assert_int_equal(strspn(id + 3, "0123456789abcdef"), 16);
    assert_string_not_equal(id, tl_cluster_node_id(d));
    tl_cluster_free(d);
    tl_cluster_free(c);
}

static void test_remote_staleness(void **state)
{
    struct tl_cluster *c = new_cluster(250); /* lease 1000 */
    uint32_t in = 9, out = 9;
    fake_now = 50000;
    tl_cluster_remote(c, "ws_a", &in, &out); /* never synced: nothing known */
    assert_int_equal(in + out, 0);

    struct tl_cluster_count rows[] = {{"ws_a", 3, 1}, {"ws_b", 0, 2}};
    assert_int_equal(0, tl_cluster_publish(c, rows, 2, 50000));
    tl_cluster_remote(c, "ws_a", &in, &out);
    assert_int_equal(in, 3);
    assert_int_equal(out, 1);
    tl_cluster_remote(c, "ws_zz", &in, &out);
    assert_int_equal(in + out, 0);
    fake_now = 51000; /* exactly the lease: still counts */
    tl_cluster_remote(c, "ws_b", &in, &out);
    assert_int_equal(out, 2);
    fake_now = 51001; /* older than the lease: the database is gone, fail open */
    tl_cluster_remote(c, "ws_b", &in, &out);
    assert_int_equal(in + out, 0);
    struct tl_cluster_view v;
    assert_int_equal(0, tl_cluster_view(c, &v));
    assert_false(v.fresh);
    assert_int_equal(v.n_remote, 0); /* operators see what admission sees */
    assert_int_equal(v.synced_ago_ms, 1001);
    free(v.local);
    free(v.remote);

    /* a new round replaces the sums: a workspace no longer listed counts 0 */
    struct tl_cluster_count rows2[] = {{"ws_b", 1, 0}};
    assert_int_equal(0, tl_cluster_publish(c, rows2, 1, 51001));
    tl_cluster_remote(c, "ws_a", &in, &out);
    assert_int_equal(in + out, 0);
    tl_cluster_remote(c, "ws_b", &in, &out);
    assert_int_equal(in, 1);
    assert_int_equal(out, 0);
    tl_cluster_local_add(c, "ws_c", false, 1);
    assert_int_equal(0, tl_cluster_view(c, &v));
    assert_true(v.fresh);
    assert_false(v.running);
    assert_int_equal(v.n_local, 1);
    assert_int_equal(v.n_remote, 1);
    assert_string_equal(v.remote[0].workspace_id, "ws_b");
    free(v.local);
    free(v.remote);
    tl_cluster_free(c);
}

/* ---- node_calls on the store ---- */

struct fx {
    char dir[64], db[TEST_TARGET_MAX];
    struct tl_store *s1, *s2; /* two nodes: two connections to one database */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    uint8_t key[32];
    struct tl_err err = {0};
    if (!f || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/tl_cluster_XXXXXX");
    if (!mkdtemp(f->dir) || test_target(f->dir, "trunkline", f->db, sizeof f->db) != 0)
        return -1;
    randombytes_buf(key, sizeof key); /* one key for both: nodes of one database share it */
    if (tl_store_open(&f->s1, f->db, key, &err) || tl_store_open(&f->s2, f->db, key, &err)) {
        fprintf(stderr, "tl_store_open: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tl_store_close(f->s2);
    tmp_store_close(f->dir, f->db, f->s1);
    free(f);
    return 0;
}

static void sync_ok(struct tl_store *s, const char *node, const struct tl_cluster_count *mine,
                    size_t n_mine, int64_t lease, int64_t gc, struct tl_cluster_count **rows,
                    size_t *n)
{
    struct tl_err err = {0};
    int r = tl_store_cluster_sync(s, node, mine, n_mine, lease, gc, rows, n, &err);
    if (r)
        fail_msg("tl_store_cluster_sync: %s", err.message);
}

static long long rows_of(struct fx *f, const char *node)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM node_calls WHERE node_id = '%s'", node);
    return test_sql_row(f->db, sql, NULL, 0);
}

static void test_store_not_shared(void **state)
{
    struct fx *f = *state;
    if (test_pg()) {
        assert_true(tl_store_shared(f->s1));
        return;
    }
    /* SQLite: one node per file, nothing to share; the table exists all the same */
    struct tl_cluster_count *rows = NULL;
    size_t n = 9;
    struct tl_err err = {0};
    assert_false(tl_store_shared(f->s1));
    assert_int_equal(ENOTSUP,
                     tl_store_cluster_sync(f->s1, "nd_a", NULL, 0, 1000, 60000, &rows, &n, &err));
    assert_int_equal(n, 0);
    assert_int_equal(0, tl_store_cluster_leave(f->s1, "nd_a", &err));
    assert_int_equal(0, test_sql_row(f->db, "SELECT count(*) FROM node_calls", NULL, 0));
    struct tl_cluster *c = new_cluster(20);
    assert_int_equal(ENOTSUP, tl_cluster_start(c, f->s1));
    tl_cluster_free(c);
}

static void test_store_publish_sum_lease_gc(void **state)
{
    struct fx *f = *state;
    if (!test_pg())
        skip();
    struct tl_cluster_count *rows = NULL;
    size_t n = 0;
    struct tl_err err = {0};
    struct tl_cluster_count a1[] = {{"ws_1", 2, 1}};
    sync_ok(f->s1, "nd_a", a1, 1, 1000, 60000, &rows, &n);
    assert_int_equal(n, 0); /* a node never counts its own rows */
    free(rows);
    struct tl_cluster_count b1[] = {{"ws_1", 1, 0}, {"ws_2", 0, 1}};
    sync_ok(f->s2, "nd_b", b1, 2, 1000, 60000, &rows, &n);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].workspace_id, "ws_1");
    assert_int_equal(rows[0].inbound, 2);
    assert_int_equal(rows[0].outbound, 1);
    free(rows);
    sync_ok(f->s1, "nd_a", a1, 1, 1000, 60000, &rows, &n);
    assert_int_equal(n, 2);
    assert_int_equal(find(rows, n, "ws_1")->inbound, 1);
    assert_int_equal(find(rows, n, "ws_2")->outbound, 1);
    free(rows);
    /* a third node: the sums add up over the other nodes */
    sync_ok(f->s1, "nd_c", NULL, 0, 1000, 60000, &rows, &n);
    assert_int_equal(find(rows, n, "ws_1")->inbound, 3);
    assert_int_equal(find(rows, n, "ws_1")->outbound, 1);
    free(rows);
    assert_int_equal(rows_of(f, "nd_c"), 1); /* its heartbeat only */

    /* a's calls ended: its count rows go, its heartbeat stays */
    sync_ok(f->s1, "nd_a", NULL, 0, 1000, 60000, &rows, &n);
    free(rows);
    assert_int_equal(rows_of(f, "nd_a"), 1);
    sync_ok(f->s2, "nd_b", b1, 2, 1000, 60000, &rows, &n);
    assert_int_equal(n, 0);
    free(rows);

    /* lease: a node silent for 5 s (killed with -9) no longer counts with a 1 s lease, but
     * would with a 10 s one; the database's clock decides, not the nodes' */
    sync_ok(f->s1, "nd_a", a1, 1, 1000, 60000, &rows, &n);
    free(rows);
    assert_int_equal(0, test_sql_exec(f->db, "UPDATE node_calls SET updated_at = updated_at - "
                                             "5000 WHERE node_id = 'nd_a'"));
    sync_ok(f->s2, "nd_b", b1, 2, 1000, 60000, &rows, &n);
    assert_null(find(rows, n, "ws_1"));
    free(rows);
    sync_ok(f->s2, "nd_b", b1, 2, 10000, 60000, &rows, &n);
    assert_int_equal(find(rows, n, "ws_1")->inbound, 2);
    free(rows);
    assert_int_equal(rows_of(f, "nd_a"), 2);
    /* gc: rows of a node silent longer than gc_ms are deleted by whoever syncs next */
    sync_ok(f->s2, "nd_b", b1, 2, 10000, 4000, &rows, &n);
    free(rows);
    assert_int_equal(rows_of(f, "nd_a"), 0);
    assert_int_equal(rows_of(f, "nd_b"), 3); /* never its own */
    /* a node back after its rows were collected writes them all again */
    sync_ok(f->s1, "nd_a", a1, 1, 1000, 60000, &rows, &n);
    free(rows);
    assert_int_equal(rows_of(f, "nd_a"), 2);

    /* a clean shutdown deletes the node's rows at once */
    assert_int_equal(0, tl_store_cluster_leave(f->s2, "nd_b", &err));
    assert_int_equal(rows_of(f, "nd_b"), 0);
    sync_ok(f->s1, "nd_a", a1, 1, 1000, 60000, &rows, &n);
    assert_null(find(rows, n, "ws_2"));
    free(rows);
}

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* polls c's view of ws until it is want (inbound + outbound) or 10 s pass */
static bool remote_becomes(struct tl_cluster *c, const char *ws, uint32_t want)
{
    int64_t deadline = mono() + 10000;
    uint32_t in, out;
    do {
        tl_cluster_remote(c, ws, &in, &out);
        if (in + out == want)
            return true;
        nanosleep(&(struct timespec){0, 2000000}, NULL); /* a poll, not a wait for time */
    } while (mono() < deadline);
    fprintf(stderr, "remote %s: %u, want %u\n", ws, in + out, want);
    return false;
}

/* the thread end to end: two nodes on one database see each other's calls come and go */
static void test_thread_two_nodes(void **state)
{
    struct fx *f = *state;
    if (!test_pg())
        skip();
    struct tl_cluster *c1 = NULL, *c2 = NULL;
    struct tl_cluster_cfg cfg = {.sync_ms = 20};
    assert_int_equal(0, tl_cluster_new(&c1, &cfg));
    assert_int_equal(0, tl_cluster_new(&c2, &cfg));
    tl_cluster_local_add(c1, "ws_1", false, 1); /* before start: the first round has it */
    assert_int_equal(0, tl_cluster_start(c1, f->s1));
    assert_int_equal(0, tl_cluster_start(c2, f->s2));
    /* c2's first round ran inside tl_cluster_start, after c1's: no waiting at all */
    uint32_t in, out;
    tl_cluster_remote(c2, "ws_1", &in, &out);
    assert_int_equal(in, 1);
    tl_cluster_local_add(c1, "ws_1", true, 1);
    assert_true(remote_becomes(c2, "ws_1", 2));
    tl_cluster_local_add(c2, "ws_1", false, 1);
    assert_true(remote_becomes(c1, "ws_1", 1));
    tl_cluster_local_add(c1, "ws_1", false, -1);
    assert_true(remote_becomes(c2, "ws_1", 1));
    struct tl_cluster_view v;
    assert_int_equal(0, tl_cluster_view(c2, &v));
    assert_true(v.running && v.fresh);
    assert_true(v.rounds >= 2);
    assert_int_equal(v.fails, 0);
    free(v.local);
    free(v.remote);
    /* a clean stop removes c1's rows: c2 drops its calls at its next round, not after
     * the lease */
    tl_cluster_stop(c1);
    assert_int_equal(rows_of(f, tl_cluster_node_id(c1)), 0);
    assert_true(remote_becomes(c2, "ws_1", 0));
    tl_cluster_free(c1);
    tl_cluster_free(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_counts),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_remote_staleness),
        cmocka_unit_test_setup_teardown(test_store_not_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_publish_sum_lease_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thread_two_nodes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
