/* routing.c: number normalisation, allowed-address matching, and the cache kept fresh by
 * the store's change hook, against a real SQLite file in a fresh directory per test. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "call/routing.h"
#include "store_test_util.h"

struct fx {
    char dir[64];
    char db[TEST_TARGET_MAX];
    struct tl_store *s;
    struct tl_routing *r;
    char ws[TL_ID_MAX];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct tl_err err = {0};

    if (!f || tmp_store_open(f->dir, f->db, &f->s, "/tmp/tl_routing_XXXXXX") != 0)
        return -1;
    struct tl_workspace w = {0};
    strcpy(w.name, "Acme");
    w.plan = TL_PLAN_PROFESSIONAL;
    if (tl_store_workspace_create(f->s, &w, &err) != 0)
        return -1;
    strcpy(f->ws, w.id);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    tl_routing_close(f->r);
    tmp_store_close(f->dir, f->db, f->s);
    free(f);
    return 0;
}

/* ---- normalisation ---- */

static void norm_ok(const char *in, const char *want)
{
    char out[TL_E164_MAX + 1];
    int rc = tl_routing_normalise(in, out);
    if (rc != 0)
        fail_msg("\"%s\" refused", in);
    assert_string_equal(out, want);
}

static void norm_bad(const char *in)
{
    char out[TL_E164_MAX + 1];
    if (tl_routing_normalise(in, out) != EINVAL)
        fail_msg("\"%s\" accepted as %s", in, out);
    assert_string_equal(out, "");
}

static void test_normalise(void **state)
{
    (void)state;
    norm_ok("+493012345678", "+493012345678");        /* Twilio */
    norm_ok("493012345678", "+493012345678");         /* Telnyx, no + */
    norm_ok("0049 30 1234-5678", "+493012345678");    /* international prefix, separators */
    norm_ok("+49 (30) 1234.5678", "+493012345678");   /* visual separators */
    norm_ok("+493012345678;npdi", "+493012345678");   /* user parameters ignored */
    norm_ok("14155550100", "+14155550100");           /* NANP without + */
    norm_ok("+123456789012345", "+123456789012345");  /* 15 digits */
    norm_ok("00123456789012345", "+123456789012345"); /* 00 + 15 digits */
    norm_bad("030 12345678");                         /* national: country unknown */
    norm_bad("+0493012345678");                       /* country codes never start 0 */
    norm_bad("+1234567890123456");                    /* 16 digits */
    norm_bad("");
    norm_bad("+");
    norm_bad("00");
    norm_bad("acme_trunk"); /* a username, as in a REGISTER's To */
    norm_bad("+49+30123");
    norm_bad("49301x2345");
    norm_bad("%2B493012345678"); /* the caller unescapes */
    norm_bad(NULL);
}

/* ---- cache through the store hook ---- */

static void make_agent(struct fx *f, const char *url, char id[TL_ID_MAX])
{
    struct tl_agent *a = calloc(1, sizeof *a);
    struct tl_err err = {0};
    strcpy(a->workspace_id, f->ws);
    strcpy(a->name, "support");
    a->kind = TL_AGENT_WEBSOCKET;
    strcpy(a->url, url);
    assert_int_equal(tl_store_agent_create(f->s, a, &err), 0);
    strcpy(id, a->id);
    free(a);
}

static struct tl_phone_number *new_number(struct fx *f, const char *e164, const char *agent)
{
    struct tl_phone_number *n = calloc(1, sizeof *n);
    assert_non_null(n);
    strcpy(n->workspace_id, f->ws);
    strcpy(n->number, e164);
    n->source = TL_SOURCE_SIP_TRUNK;
    strcpy(n->outbound.address, "sip.telnyx.com");
    strcpy(n->outbound.username, "acme_out");
    strcpy(n->outbound.password, "out-secret");
    n->outbound.password_given = true;
    n->outbound.transport = TL_TRANSPORT_TLS;
    n->has_inbound = true;
    n->inbound.transport = TL_TRANSPORT_TCP;
    n->inbound.media_encryption = TL_MEDIA_ALLOWED;
    strcpy(n->inbound.username, "inbound_user");
    strcpy(n->inbound.password, "in-secret-1");
    n->inbound.password_given = true;
    n->inbound.n_allowed = 3;
    strcpy(n->inbound.allowed_addresses[0], "203.0.113.0/24");
    strcpy(n->inbound.allowed_addresses[1], "198.51.100.7");
    strcpy(n->inbound.allowed_addresses[2], "2001:db8:10::/48");
    n->inbound.n_headers = 1;
    strcpy(n->inbound.headers[0].name, "X-Account");
    strcpy(n->inbound.headers[0].value, "4711");
    if (agent)
        strcpy(n->agent_id, agent);
    return n;
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s = (struct sockaddr_in *)&ss;
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
    return ss;
}

static bool src_ok(const struct tl_route *rt, struct sockaddr_storage ss)
{
    return tl_routing_match_source(rt, (const struct sockaddr *)&ss);
}

static void test_match_source(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_route *rt = malloc(sizeof *rt);
    struct tl_phone_number *n = new_number(f, "+493012345678", NULL);

    assert_int_equal(tl_routing_open(&f->r, f->s), 0);
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_int_equal(rt->n_allowed, 3);
    assert_true(src_ok(rt, v4("203.0.113.1")));
    assert_true(src_ok(rt, v4("203.0.113.255")));
    assert_false(src_ok(rt, v4("203.0.114.1")));
    assert_true(src_ok(rt, v4("198.51.100.7")));
    assert_false(src_ok(rt, v4("198.51.100.8")));
    assert_true(src_ok(rt, v6("::ffff:203.0.113.9"))); /* dual-stack socket: as IPv4 */
    assert_false(src_ok(rt, v6("::ffff:192.0.2.1")));
    assert_true(src_ok(rt, v6("2001:db8:10:ffff::1")));
    assert_false(src_ok(rt, v6("2001:db8:11::1")));
    assert_false(src_ok(rt, v6("::203.0.113.1"))); /* IPv4-compatible is not mapped */
    assert_false(tl_routing_match_source(rt, NULL));

    /* an odd prefix length, and the empty list = any source */
    n->inbound.n_allowed = 1;
    strcpy(n->inbound.allowed_addresses[0], "10.0.0.0/9");
    n->inbound.password_given = false;
    n->outbound.password_given = false;
    assert_int_equal(tl_store_number_replace(f->s, n, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_true(src_ok(rt, v4("10.127.255.255")));
    assert_false(src_ok(rt, v4("10.128.0.0")));
    n->inbound.n_allowed = 0;
    assert_int_equal(tl_store_number_replace(f->s, n, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_true(src_ok(rt, v4("192.0.2.1")));
    assert_true(src_ok(rt, v6("2001:db8::1")));
    tl_route_wipe(rt);
    free(rt);
    free(n);
}

static void test_cache_refresh(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_route *rt = malloc(sizeof *rt);
    char agent[TL_ID_MAX];

    make_agent(f, "wss://agents.example/one", agent);
    /* a number that exists before the cache: the full load finds it */
    struct tl_phone_number *pre = new_number(f, "+14155550100", NULL);
    assert_int_equal(tl_store_number_create(f->s, pre, &err), 0);
    assert_int_equal(tl_routing_open(&f->r, f->s), 0);
    assert_int_equal(tl_routing_count(f->r), 1);
    assert_int_equal(tl_routing_lookup(f->r, "+14155550100", rt), 0);

    /* create -> found, with everything the call path needs */
    struct tl_phone_number *n = new_number(f, "+493012345678", agent);
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    assert_int_equal(tl_routing_count(f->r), 2);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_string_equal(rt->number_id, n->id);
    assert_string_equal(rt->workspace_id, f->ws);
    assert_int_equal(rt->plan, TL_PLAN_PROFESSIONAL);
    assert_string_equal(rt->agent_id, agent);
    assert_int_equal(rt->agent_kind, TL_AGENT_WEBSOCKET);
    assert_string_equal(rt->agent_url, "wss://agents.example/one");
    assert_true(rt->has_inbound);
    assert_int_equal(rt->in_transport, TL_TRANSPORT_TCP);
    assert_int_equal(rt->in_media, TL_MEDIA_ALLOWED);
    assert_string_equal(rt->in_username, "inbound_user");
    assert_string_equal(rt->in_password, "in-secret-1");
    assert_int_equal(rt->n_in_headers, 1);
    assert_string_equal(rt->in_headers[0].name, "X-Account");
    assert_string_equal(rt->in_headers[0].value, "4711");
    assert_string_equal(rt->out_address, "sip.telnyx.com");
    assert_true(rt->out_has_auth);
    assert_int_equal(rt->in_latching, TL_LATCHING_DEFAULT); /* the gateway's setting */
    /* the owner alone, for REGISTER diagnostics: ids only, nothing else copied */
    char nid[TL_ID_MAX] = "", wid[TL_ID_MAX] = "";
    assert_int_equal(tl_routing_owner(f->r, "+493012345678", nid, wid), 0);
    assert_string_equal(nid, n->id);
    assert_string_equal(wid, f->ws);
    char nid2[TL_ID_MAX] = "untouched", wid2[TL_ID_MAX] = "untouched";
    assert_int_equal(tl_routing_owner(f->r, "+4930999", nid2, wid2), ENOENT);
    assert_string_equal(nid2, "untouched");
    assert_string_equal(wid2, "untouched");
    size_t bytes = tl_routing_entry_bytes(f->r, "+493012345678");
    assert_true(bytes > 0 && bytes < 1024);
    printf("routing entry: %zu bytes (3 CIDRs, 1 header, websocket agent); struct "
           "tl_phone_number: %zu bytes\n",
           bytes, sizeof(struct tl_phone_number));

    /* password change -> the new password */
    strcpy(n->inbound.password, "in-secret-2");
    n->inbound.password_given = true;
    n->outbound.password_given = false;
    assert_int_equal(tl_store_number_replace(f->s, n, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_string_equal(rt->in_password, "in-secret-2");

    /* the trunk's rtp_latching: stored (the inbound JSON column), read back, cached */
    n->inbound.rtp_latching = TL_LATCHING_ANY;
    n->inbound.password_given = false;
    assert_int_equal(tl_store_number_replace(f->s, n, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_int_equal(rt->in_latching, TL_LATCHING_ANY);
    struct tl_phone_number *back = calloc(1, sizeof *back);
    assert_int_equal(tl_store_number_get(f->s, f->ws, n->id, back), 0);
    assert_int_equal(back->inbound.rtp_latching, TL_LATCHING_ANY);
    free(back);
    n->inbound.rtp_latching = TL_LATCHING_DEFAULT;
    assert_int_equal(tl_store_number_replace(f->s, n, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_int_equal(rt->in_latching, TL_LATCHING_DEFAULT);

    /* agent URL change -> every number of the agent follows */
    struct tl_agent *a = calloc(1, sizeof *a);
    assert_int_equal(tl_store_agent_get(f->s, f->ws, agent, a), 0);
    strcpy(a->url, "wss://agents.example/two");
    a->n_params = 2; /* the agent's parameters follow too (handed to it at call start) */
    strcpy(a->params[0].key, "greeting");
    strcpy(a->params[0].value, "hello");
    strcpy(a->params[1].key, "hangup_after_ms");
    strcpy(a->params[1].value, "500");
    assert_int_equal(tl_store_agent_update(f->s, a, NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_string_equal(rt->agent_url, "wss://agents.example/two");
    assert_int_equal(rt->n_agent_params, 2);
    bool seen[2] = {false, false};
    for (size_t i = 0; i < 2; i++) {
        if (!strcmp(rt->agent_params[i].key, "greeting"))
            seen[0] = !strcmp(rt->agent_params[i].value, "hello");
        else if (!strcmp(rt->agent_params[i].key, "hangup_after_ms"))
            seen[1] = !strcmp(rt->agent_params[i].value, "500");
    }
    assert_true(seen[0] && seen[1]);
    free(a);

    /* unassign -> no agent */
    assert_int_equal(tl_store_number_set_agent(f->s, f->ws, n->id, "", NULL, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_string_equal(rt->agent_id, "");
    assert_string_equal(rt->agent_url, "");

    /* plan change -> every number of the workspace follows */
    struct tl_workspace w;
    assert_int_equal(tl_store_workspace_get(f->s, f->ws, &w), 0);
    w.plan = TL_PLAN_ENTERPRISE;
    assert_int_equal(tl_store_workspace_update(f->s, &w, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), 0);
    assert_int_equal(rt->plan, TL_PLAN_ENTERPRISE);
    assert_int_equal(tl_routing_lookup(f->r, "+14155550100", rt), 0);
    assert_int_equal(rt->plan, TL_PLAN_ENTERPRISE);

    /* delete -> gone; the other stays */
    assert_int_equal(tl_store_number_delete(f->s, f->ws, n->id, &err), 0);
    assert_int_equal(tl_routing_lookup(f->r, "+493012345678", rt), ENOENT);
    assert_int_equal(tl_routing_count(f->r), 1);
    assert_int_equal(tl_routing_lookup(f->r, "+14155550100", rt), 0);

    /* many numbers: the table grows and every one stays reachable */
    for (int i = 0; i < 3000; i++) {
        struct tl_phone_number *m = new_number(f, "+4940", NULL);
        snprintf(m->number, sizeof m->number, "+4940%07d", i);
        assert_int_equal(tl_store_number_create(f->s, m, &err), 0);
        free(m);
    }
    assert_int_equal(tl_routing_count(f->r), 3001);
    for (int i = 0; i < 3000; i += 7) {
        char e164[TL_E164_MAX + 1];
        snprintf(e164, sizeof e164, "+4940%07d", i);
        assert_int_equal(tl_routing_lookup(f->r, e164, rt), 0);
        assert_string_equal(rt->number, e164);
    }
    /* after close the hook is gone: writes no longer reach freed memory */
    tl_routing_close(f->r);
    f->r = NULL;
    assert_int_equal(tl_store_number_delete(f->s, f->ws, pre->id, &err), 0);

    tl_route_wipe(rt);
    free(rt);
    free(n);
    free(pre);
}

/* Issue 11 item 9: the O(N) work of the cache (growth, the scan for an agent's or a
 * workspace's numbers) runs without the lock lookups take. The hook runs in the middle
 * of it and looks a number up on the same thread: with the lookup lock held there, it
 * could not (the mutex is not recursive). Then removals across a grown table: every
 * number left is still found (backward-shift deletion keeps probe runs whole). */
struct scan_probe {
    struct tl_routing *r;
    int calls, found;
};

static void scan_lookup(void *arg)
{
    struct scan_probe *p = arg;
    struct tl_route *rt = malloc(sizeof *rt);
    assert_non_null(rt);
    p->calls++;
    p->found += tl_routing_lookup(p->r, "+14155550100", rt) == 0;
    tl_route_wipe(rt);
    free(rt);
}

static void test_no_lookup_waits_for_o_n_work(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    char agent[TL_ID_MAX];
    struct tl_route *rt = malloc(sizeof *rt);
    struct scan_probe p = {0};

    make_agent(f, "wss://agents.example/one", agent);
    struct tl_phone_number *n = new_number(f, "+14155550100", agent);
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    assert_int_equal(tl_routing_open(&f->r, f->s), 0);
    p.r = f->r;
    tl_routing_set_scan_hook(f->r, scan_lookup, &p);

    /* an agent update scans every number for the agent's */
    struct tl_agent *a = calloc(1, sizeof *a);
    assert_int_equal(tl_store_agent_get(f->s, f->ws, agent, a), 0);
    strcpy(a->url, "wss://agents.example/two");
    assert_int_equal(tl_store_agent_update(f->s, a, NULL, &err), 0);
    assert_int_equal(p.calls, 1);
    /* a plan change scans for the workspace's */
    struct tl_workspace w;
    assert_int_equal(tl_store_workspace_get(f->s, f->ws, &w), 0);
    w.plan = TL_PLAN_ENTERPRISE;
    assert_int_equal(tl_store_workspace_update(f->s, &w, &err), 0);
    assert_int_equal(p.calls, 2);
    /* growth: past 3/4 of the first table's 1024 slots */
    struct tl_phone_number *m = new_number(f, "+4940", NULL);
    for (int i = 0; i < 1600; i++) {
        snprintf(m->number, sizeof m->number, "+4940%07d", i);
        m->id[0] = '\0';
        assert_int_equal(tl_store_number_create(f->s, m, &err), 0);
    }
    assert_true(p.calls >= 4); /* 1024 → 2048 → 4096 */
    assert_int_equal(p.found, p.calls);
    tl_routing_set_scan_hook(f->r, NULL, NULL);

    /* remove two of every three: the rest stay reachable, the removed are gone */
    for (int i = 0; i < 1600; i++) {
        if (i % 3 == 0)
            continue;
        char e164[TL_E164_MAX + 1], nid[TL_ID_MAX], wid[TL_ID_MAX];
        snprintf(e164, sizeof e164, "+4940%07d", i);
        assert_int_equal(tl_routing_owner(f->r, e164, nid, wid), 0);
        assert_int_equal(tl_store_number_delete(f->s, f->ws, nid, &err), 0);
    }
    for (int i = 0; i < 1600; i++) {
        char e164[TL_E164_MAX + 1];
        snprintf(e164, sizeof e164, "+4940%07d", i);
        assert_int_equal(tl_routing_lookup(f->r, e164, rt), i % 3 == 0 ? 0 : ENOENT);
    }
    assert_int_equal(tl_routing_count(f->r), 1 + (1600 + 2) / 3);
    assert_int_equal(tl_routing_lookup(f->r, "+14155550100", rt), 0);
    assert_string_equal(rt->agent_url, "wss://agents.example/two");
    assert_int_equal(rt->plan, TL_PLAN_ENTERPRISE);
    tl_route_wipe(rt);
    free(rt);
    free(a);
    free(m);
    free(n);
}

/* Lookups on another thread while this one writes (creates past a growth, an agent update
 * with its scan, removals): every lookup of a number that stays finds it whole. Run under
 * ThreadSanitizer too (make TSAN=1 tsan-test). */
struct reader {
    struct tl_routing *r;
    atomic_int stop;
    long ok, bad;
};

static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    struct tl_route *rt = malloc(sizeof *rt);
    while (!atomic_load(&rd->stop)) {
        if (tl_routing_lookup(rd->r, "+14155550100", rt) == 0 &&
            !strcmp(rt->number, "+14155550100") && !strcmp(rt->in_password, "in-secret-1"))
            rd->ok++;
        else
            rd->bad++;
        char e164[TL_E164_MAX + 1];
        snprintf(e164, sizeof e164, "+4940%07ld", rd->ok % 900);
        tl_routing_lookup(rd->r, e164, rt); /* present or not: never torn */
    }
    tl_route_wipe(rt);
    free(rt);
    return NULL;
}

static void test_lookups_during_updates_on_another_thread(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    char agent[TL_ID_MAX];
    make_agent(f, "wss://agents.example/one", agent);
    struct tl_phone_number *n = new_number(f, "+14155550100", agent);
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    assert_int_equal(tl_routing_open(&f->r, f->s), 0);
    struct reader rd = {.r = f->r};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, read_loop, &rd), 0);
    struct tl_phone_number *m = new_number(f, "+4940", agent);
    struct tl_agent *a = calloc(1, sizeof *a);
    for (int i = 0; i < 900; i++) {
        snprintf(m->number, sizeof m->number, "+4940%07d", i);
        m->id[0] = '\0';
        assert_int_equal(tl_store_number_create(f->s, m, &err), 0);
        if (i % 300 == 299) {
            assert_int_equal(tl_store_agent_get(f->s, f->ws, agent, a), 0);
            snprintf(a->url, sizeof a->url, "wss://agents.example/v%d", i);
            assert_int_equal(tl_store_agent_update(f->s, a, NULL, &err), 0);
        }
    }
    for (int i = 0; i < 900; i += 2) {
        char e164[TL_E164_MAX + 1], nid[TL_ID_MAX], wid[TL_ID_MAX];
        snprintf(e164, sizeof e164, "+4940%07d", i);
        assert_int_equal(tl_routing_owner(f->r, e164, nid, wid), 0);
        assert_int_equal(tl_store_number_delete(f->s, f->ws, nid, &err), 0);
    }
    atomic_store(&rd.stop, 1);
    pthread_join(th, NULL);
    assert_true(rd.ok > 0);
    assert_int_equal(rd.bad, 0);
    free(a);
    free(m);
    free(n);
}

/* ---- two stores on one database: the full reload, and on PostgreSQL the change feed
 * (issue 13: a commit on one node reaches the other's cache with no store read on the
 * call path) ---- */

struct pair {
    char dir[64];
    char db[TEST_TARGET_MAX];
    struct tl_store *a, *b;
    struct tl_routing *ra, *rb;
    char ws[TL_ID_MAX];
};

static void pair_open(struct pair *p)
{
    struct tl_err err = {0};
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    snprintf(p->dir, sizeof p->dir, "/tmp/tl_feed_XXXXXX");
    assert_non_null(mkdtemp(p->dir));
    assert_int_equal(test_target(p->dir, "shared", p->db, sizeof p->db), 0);
    assert_int_equal(tl_store_open(&p->a, p->db, key, &err), 0);
    assert_int_equal(tl_store_open(&p->b, p->db, key, &err), 0);
    struct tl_workspace w = {0};
    strcpy(w.name, "Acme");
    w.plan = TL_PLAN_PROFESSIONAL;
    assert_int_equal(tl_store_workspace_create(p->a, &w, &err), 0);
    strcpy(p->ws, w.id);
}

static void pair_close(struct pair *p)
{
    tl_store_feed_stop(p->a);
    tl_store_feed_stop(p->b);
    tl_routing_close(p->ra);
    tl_routing_close(p->rb);
    tl_store_close(p->a);
    tl_store_close(p->b);
    test_target_drop(p->db);
    rmdir(p->dir);
}

static void pair_number(struct pair *p, const char *e164, char id[TL_ID_MAX])
{
    struct fx f = {0};
    struct tl_err err = {0};
    f.s = p->a;
    strcpy(f.ws, p->ws);
    struct tl_phone_number *n = new_number(&f, e164, NULL);
    assert_int_equal(tl_store_number_create(p->a, n, &err), 0);
    if (id)
        strcpy(id, n->id);
    free(n);
}

/* polls until e164 is (want 0) or is not (want ENOENT) in r; deadline 10 s, generous
 * for a loaded machine: the figure is in bench/cluster, not here */
static bool wait_lookup(struct tl_routing *r, const char *e164, int want)
{
    struct tl_route *rt = malloc(sizeof *rt);
    bool ok = false;
    for (int i = 0; i < 1000 && !ok; i++) {
        ok = tl_routing_lookup(r, e164, rt) == want;
        if (!ok)
            usleep(10000);
    }
    tl_route_wipe(rt);
    free(rt);
    return ok;
}

static void test_reload_catches_up(void **state)
{
    (void)state;
    struct pair p = {0};
    struct tl_err err = {0};
    struct tl_route *rt = malloc(sizeof *rt);
    char gone[TL_ID_MAX];
    pair_open(&p);
    pair_number(&p, "+14155550101", gone);
    pair_number(&p, "+14155550102", NULL);
    /* b's cache without a feed: it learns of a's writes only by reloading */
    assert_int_equal(tl_routing_open(&p.rb, p.b), 0);
    assert_int_equal(tl_routing_count(p.rb), 2);
    pair_number(&p, "+14155550103", NULL);
    assert_int_equal(tl_store_number_delete(p.a, p.ws, gone, &err), 0);
    assert_int_equal(tl_routing_lookup(p.rb, "+14155550103", rt), ENOENT);
    assert_int_equal(tl_routing_lookup(p.rb, "+14155550101", rt), 0);
    assert_int_equal(tl_routing_reload(p.rb), 0);
    assert_int_equal(tl_routing_count(p.rb), 2);
    assert_int_equal(tl_routing_lookup(p.rb, "+14155550103", rt), 0);
    assert_string_equal(rt->in_password, "in-secret-1");
    assert_int_equal(tl_routing_lookup(p.rb, "+14155550101", rt), ENOENT);
    assert_int_equal(tl_routing_lookup(p.rb, "+14155550102", rt), 0);
    tl_route_wipe(rt);
    free(rt);
    pair_close(&p);
}

static void test_change_feed(void **state)
{
    (void)state;
    struct pair p = {0};
    struct tl_err err = {0};
    struct tl_store_feed_stats sa, sb;
    char id[TL_ID_MAX];
    pair_open(&p);
    assert_int_equal(tl_store_feed_start(p.a, 0), 0);
    assert_int_equal(tl_store_feed_start(p.b, 0), 0);
    assert_int_equal(tl_routing_open(&p.ra, p.a), 0);
    assert_int_equal(tl_routing_open(&p.rb, p.b), 0);
    if (!test_pg()) { /* one node's file: nothing to share, no thread */
        assert_false(tl_store_shared(p.a));
        tl_store_feed_stats(p.b, &sb);
        assert_false(sb.connected);
        pair_close(&p);
        return;
    }
    assert_true(tl_store_shared(p.a));
    /* a writes; b's cache follows through the feed alone */
    pair_number(&p, "+14155550111", id);
    assert_true(wait_lookup(p.rb, "+14155550111", 0));
    assert_int_equal(tl_store_number_delete(p.a, p.ws, id, &err), 0);
    assert_true(wait_lookup(p.rb, "+14155550111", ENOENT));
    tl_store_feed_stats(p.a, &sa);
    tl_store_feed_stats(p.b, &sb);
    assert_true(sb.applied >= 2);
    assert_true(sa.own >= 1); /* a's own notifications come back and are skipped */
    assert_int_equal(sa.applied, 0);
    assert_int_equal(sb.lost, 0);

    /* the listeners' connections killed (a failover, a restart): a change made around the
     * loss reaches b either by notification or by the reload after reconnecting */
    const char *admin = getenv("TRUNKLINE_TEST_PG");
    assert_int_equal(test_sql_exec(admin, "SELECT pg_terminate_backend(pid) FROM "
                                          "pg_stat_activity WHERE query LIKE 'LISTEN %'"),
                     0);
    pair_number(&p, "+14155550112", NULL);
    assert_true(wait_lookup(p.rb, "+14155550112", 0));
    bool back = false;
    for (int i = 0; i < 1000 && !back; i++) {
        tl_store_feed_stats(p.b, &sb);
        back = sb.lost >= 1 && sb.resyncs >= 1 && sb.connected;
        if (!back)
            usleep(10000);
    }
    assert_true(back);
    /* and the feed works again after it */
    pair_number(&p, "+14155550113", NULL);
    assert_true(wait_lookup(p.rb, "+14155550113", 0));
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test_setup_teardown(test_match_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_lookup_waits_for_o_n_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookups_during_updates_on_another_thread, setup,
                                        teardown),
        cmocka_unit_test(test_reload_catches_up),
        cmocka_unit_test(test_change_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
