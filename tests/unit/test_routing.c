/* routing.c: number normalisation, allowed-address matching, and the cache kept fresh by
 * the store's change hook, against a real SQLite file in a fresh directory per test. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
    char db[128];
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test_setup_teardown(test_match_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_refresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
