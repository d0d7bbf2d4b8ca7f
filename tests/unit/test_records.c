/* records.c: the recorder's queue, batching, flush on close, rate limits and drops,
 * against a real database (store_test_util.h: SQLite, or PostgreSQL) fresh per test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "store/cluster.h"
#include "store/records.h"
#include "store_test_util.h"

struct fx {
    char dir[64];
    char db[TEST_TARGET_MAX];
    struct tl_store *s;
    int64_t now; /* the injected rate-limit clock */
};

static int64_t fake_clock(void *arg)
{
    return ((struct fx *)arg)->now;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);

    if (!f || tmp_store_open(f->dir, f->db, &f->s, "/tmp/tl_records_XXXXXX") != 0)
        return -1;
    f->now = 1000000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    tmp_store_close(f->dir, f->db, f->s);
    free(f);
    return 0;
}

/* a second connection, as anyone reading the database would */
static long long sql_int(const struct fx *f, const char *sql)
{
    return test_sql_row(f->db, sql, NULL, 0);
}

static void sql_text(const struct fx *f, const char *sql, char *out, size_t cap)
{
    test_sql_row(f->db, sql, out, cap);
}

static void a_call(struct tl_call_record *c, int i)
{
    memset(c, 0, sizeof *c);
    tl_id_new(c->id, "ca");
    strcpy(c->workspace_id, "ws_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    strcpy(c->number_id, "pn_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    strcpy(c->number, "+493012345678");
    c->direction = TL_CALL_INBOUND;
    snprintf(c->from_user, sizeof c->from_user, "+4917%08d", i);
    strcpy(c->to_user, "+493012345678");
    snprintf(c->sip_call_id, sizeof c->sip_call_id, "call-%d@example", i);
    c->final_status = 200;
    strcpy(c->codec, "PCMU");
}

static void an_event(struct tl_event *e, const char *number_id)
{
    memset(e, 0, sizeof *e);
    if (number_id) {
        strcpy(e->workspace_id, "ws_aaaaaaaaaaaaaaaaaaaaaaaaaa");
        strcpy(e->number_id, number_id);
    }
    strcpy(e->code, TL_EV_REGISTRATION_ATTEMPT);
    strcpy(e->hint, TL_EV_HINT_REGISTRATION_ATTEMPT);
    strcpy(e->message, "REGISTER refused");
    strcpy(e->details, "{\"source\":\"192.0.2.1:5060\"}");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 10,000 records, then close: every one is in the file */
static void test_close_loses_nothing(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.queue_cap = 10000};
    struct tl_call_record c;
    struct tl_recorder_stats st;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    for (int i = 0; i < 10000; i++) {
        a_call(&c, i);
        assert_int_equal(tl_recorder_call(r, &c), 0);
    }
    tl_recorder_stats(r, &st);
    assert_int_equal(st.dropped_full, 0);
    tl_recorder_close(r);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 10000);
    assert_int_equal(sql_int(f, "SELECT count(DISTINCT id) FROM calls"), 10000);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE answered_at IS NULL"), 10000);
}

/* a call is written at its start and again at its end: one row, the later values */
static void test_call_upsert(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_call_record c;
    char buf[64];

    assert_int_equal(tl_recorder_open(&r, f->s, NULL), 0);
    a_call(&c, 1);
    c.final_status = 0;
    c.sip_call_id[0] = '\0'; /* an outbound call is recorded before its INVITE exists */
    assert_int_equal(tl_recorder_call(r, &c), 0);
    tl_recorder_flush(r);
    c.answered_at = c.created_at + 1000;
    c.ended_at = c.created_at + 61000;
    c.final_status = 200;
    strcpy(c.end_reason, "remote_bye");
    c.srtp = true;
    c.packets_sent = 3000;
    c.packets_received = 2990;
    c.packets_lost = 10;
    c.jitter_ms = 4.5;
    c.dropped_source = 250;
    c.dropped_auth = 3;
    c.dropped_malformed = 2;
    c.dropped_pt = 1;
    c.dropped_early = 7;
    strcpy(c.from_user, "bad\xff\xfe utf8"); /* repaired, not refused */
    c.status = TL_CALL_BUSY;
    strcpy(c.sip_reason, "Busy \xc3 Here"); /* the far end's bytes: repaired too */
    strcpy(c.hint, "The callee was busy.");
    strcpy(c.sip_call_id, "late@callid"); /* an empty one is filled in, never replaced */
    assert_int_equal(tl_recorder_call(r, &c), 0);
    tl_recorder_flush(r);
    strcpy(c.sip_call_id, "other@callid");
    assert_int_equal(tl_recorder_call(r, &c), 0);
    tl_recorder_close(r);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 1);
    assert_int_equal(sql_int(f, "SELECT packets_lost FROM calls"), 10);
    sql_text(f, "SELECT media_encryption || ' ' || end_reason FROM calls", buf, sizeof buf);
    assert_string_equal(buf, "srtp remote_bye");

    struct tl_call_record got;
    /* identity columns keep their first values: the from_user of the start */
    assert_int_equal(tl_store_call_get(f->s, c.workspace_id, c.id, &got), 0);
    assert_string_equal(got.from_user, "+491700000001");
    assert_int_equal(got.answered_at, c.answered_at);
    assert_true(got.jitter_ms > 4.4 && got.jitter_ms < 4.6);
    assert_int_equal(got.dropped_source, 250);
    assert_int_equal(got.dropped_auth, 3);
    assert_int_equal(got.dropped_malformed, 2);
    assert_int_equal(got.dropped_pt, 1);
    assert_int_equal(got.dropped_early, 7);
    assert_int_equal(got.status, TL_CALL_BUSY);
    assert_string_equal(got.sip_reason, "Busy ? Here");
    assert_string_equal(got.hint, "The callee was busy.");
    assert_string_equal(got.sip_call_id, "late@callid");
    assert_int_equal(tl_store_call_get(f->s, "ws_bbbbbbbbbbbbbbbbbbbbbbbbbb", c.id, &got), ENOENT);
}

/* webhook deliveries: a workspace with a webhook gets one event per status change of each
 * call, queued with the records (a restart loses none); due, retried, delivered */
static void test_webhook_deliveries(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_workspace w = {0};
    strcpy(w.name, "hooked");
    w.plan = TL_PLAN_PROFESSIONAL;
    assert_int_equal(tl_store_workspace_create(f->s, &w, &err), 0);
    struct tl_webhook h;
    char secret[TL_WEBHOOK_SECRET_LEN + 1], url[TL_AGENT_URL_MAX + 1],
        opened[TL_WEBHOOK_SECRET_LEN + 1];
    assert_int_equal(tl_store_webhook_set(f->s, w.id, "https://example.com/h", &h, secret, &err),
                     0);
    assert_int_equal(strlen(secret), TL_WEBHOOK_SECRET_LEN);
    assert_int_equal(strncmp(secret, "whsec_", 6), 0);
    assert_int_equal(tl_store_webhook_secret(f->s, w.id, url, opened), 0);
    assert_string_equal(opened, secret);
    assert_string_equal(url, "https://example.com/h");
    /* the secret is sealed in the file, never in clear */
    char q[200];
    snprintf(q, sizeof q,
             test_pg() ? "SELECT count(*) FROM webhooks WHERE "
                         "strpos(encode(secret_sealed, 'escape'), '%s') > 0"
                       : "SELECT count(*) FROM webhooks WHERE instr(secret_sealed, '%s') > 0",
             secret + 6);
    assert_int_equal(sql_int(f, q), 0);

    struct tl_call_record c;
    struct tl_record_ref ref = {.call = &c};
    size_t queued = 99;
    a_call(&c, 7);
    strcpy(c.workspace_id, w.id);
    c.status = TL_CALL_RINGING; /* an inbound call's first record */
    c.final_status = 0;
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 2); /* initiated, ringing */
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 0); /* the same status again: nothing */
    c.status = TL_CALL_IN_PROGRESS;
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 1);
    c.status = TL_CALL_COMPLETED;
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 1);
    c.final_status = 487; /* an end record's update: no second final event */
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 0);
    /* a workspace without a webhook queues nothing */
    a_call(&c, 8);
    assert_int_equal(tl_store_records_write_hooks(f->s, &ref, 1, &queued, &err), 0);
    assert_int_equal(queued, 0);

    struct tl_delivery *d = calloc(8, sizeof *d);
    size_t n = 0;
    int64_t next = 0;
    assert_int_equal(tl_store_deliveries_due(f->s, tl_now_ms() + 1000, d, 8, &n, &next), 0);
    assert_int_equal(n, 4);
    assert_string_equal(d[0].event, "call.initiated");
    assert_string_equal(d[1].event, "call.ringing");
    assert_string_equal(d[2].event, "call.answered");
    assert_string_equal(d[3].event, "call.completed");
    assert_non_null(strstr(d[3].body, "\"status\":\"completed\""));
    assert_non_null(strstr(d[3].body, d[3].id));
    /* a failure reschedules, a give-up and a success remove */
    int64_t later = tl_now_ms() + 60000;
    assert_int_equal(tl_store_delivery_failed(f->s, &d[0], 1, later, "HTTP 500", tl_now_ms()), 0);
    assert_int_equal(tl_store_delivery_failed(f->s, &d[1], 15, 0, "HTTP 500", tl_now_ms()), 0);
    assert_int_equal(tl_store_delivery_done(f->s, &d[2], tl_now_ms()), 0);
    assert_int_equal(tl_store_deliveries_due(f->s, tl_now_ms() + 1000, d, 8, &n, &next), 0);
    assert_int_equal(n, 1); /* completed; initiated waits */
    assert_string_equal(d[0].event, "call.completed");
    assert_int_equal(next, later);
    assert_int_equal(tl_store_webhook_get(f->s, w.id, &h), 0);
    assert_int_equal(h.pending, 2);
    assert_string_equal(h.last_error, "HTTP 500");
    assert_true(h.last_success_at > 0 && h.last_failure_at > 0);
    /* removing the webhook drops what it had pending */
    assert_int_equal(tl_store_webhook_delete(f->s, w.id), 0);
    assert_int_equal(tl_store_webhook_delete(f->s, w.id), ENOENT);
    assert_int_equal(tl_store_deliveries_due(f->s, later + 1, d, 8, &n, &next), 0);
    assert_int_equal(n, 0);
    free(d);
}

/* batches: nothing before the window ends, at once when batch_max is reached */
static void test_batching(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.batch_ms = 2000, .batch_max = 8};
    struct tl_call_record c;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    a_call(&c, 0);
    assert_int_equal(tl_recorder_call(r, &c), 0);
    usleep(100 * 1000);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 0); /* waiting for more */
    int64_t t0 = mono_ms();
    for (int i = 1; i < 8; i++) {
        a_call(&c, i);
        assert_int_equal(tl_recorder_call(r, &c), 0);
    }
    while (sql_int(f, "SELECT count(*) FROM calls") < 8 && mono_ms() - t0 < 5000)
        usleep(5 * 1000);
    assert_true(mono_ms() - t0 < 1500); /* a full batch goes at once, not at the window */
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 8);

    /* a lone record goes when its window ends */
    a_call(&c, 9);
    t0 = mono_ms();
    assert_int_equal(tl_recorder_call(r, &c), 0);
    while (sql_int(f, "SELECT count(*) FROM calls") < 9 && mono_ms() - t0 < 6000)
        usleep(10 * 1000);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 9);
    assert_true(mono_ms() - t0 >= 1900);
    tl_recorder_close(r);
}

static void test_rate_limits(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.clock_ms = fake_clock, .clock_arg = f};
    struct tl_recorder_stats st;
    struct tl_event e;
    char msg[TL_EVENT_MESSAGE_MAX + 1];
    int ok = 0, busy = 0;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    /* a flood for one number: 20 pass, the rest are counted */
    for (int i = 0; i < 200; i++) {
        an_event(&e, "pn_aaaaaaaaaaaaaaaaaaaaaaaaaa");
        int rc = tl_recorder_event(r, &e, "192.0.2.1");
        ok += rc == 0;
        busy += rc == EBUSY;
    }
    assert_int_equal(ok, TL_REC_PER_NUMBER_DEFAULT);
    assert_int_equal(busy, 200 - TL_REC_PER_NUMBER_DEFAULT);
    /* another number has its own bucket */
    an_event(&e, "pn_bbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(tl_recorder_event(r, &e, "192.0.2.1"), 0);
    /* 3 s later one token is back: the next event carries the count */
    f->now += 3000;
    an_event(&e, "pn_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(tl_recorder_event(r, &e, "192.0.2.1"), 0);
    an_event(&e, "pn_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(tl_recorder_event(r, &e, "192.0.2.1"), EBUSY);

    /* unknown sources: 5 each, per address */
    ok = 0;
    for (int i = 0; i < 20; i++) {
        an_event(&e, NULL);
        ok += tl_recorder_event(r, &e, "198.51.100.1") == 0;
    }
    assert_int_equal(ok, TL_REC_PER_SOURCE_DEFAULT);
    an_event(&e, NULL);
    assert_int_equal(tl_recorder_event(r, &e, "198.51.100.2"), 0);

    /* a long message keeps the whole count at its end */
    f->now += 60000;
    an_event(&e, NULL);
    memset(e.message, 'x', TL_EVENT_MESSAGE_MAX);
    e.message[TL_EVENT_MESSAGE_MAX] = '\0';
    assert_int_equal(tl_recorder_event(r, &e, "198.51.100.1"), 0);

    tl_recorder_stats(r, &st);
    assert_int_equal(st.suppressed, 180 + 1 + 15);
    tl_recorder_close(r);

    assert_int_equal(sql_int(f, "SELECT count(*) FROM events WHERE number_id = "
                                "'pn_aaaaaaaaaaaaaaaaaaaaaaaaaa'"),
                     21);
    sql_text(f,
             "SELECT message FROM events WHERE number_id = 'pn_aaaaaaaaaaaaaaaaaaaaaaaaaa' "
             "ORDER BY seq DESC LIMIT 1",
             msg, sizeof msg);
    assert_string_equal(msg, "REGISTER refused (180 similar events suppressed)");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events WHERE workspace_id IS NULL"), 7);
    sql_text(f, "SELECT message FROM events ORDER BY seq DESC LIMIT 1", msg, sizeof msg);
    assert_int_equal(strlen(msg), TL_EVENT_MESSAGE_MAX);
    assert_non_null(strstr(msg, "x (15 similar events suppressed)"));
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events WHERE id NOT LIKE 'ev_%'"), 0);
}

static void test_global_limit(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.clock_ms = fake_clock, .clock_arg = f, .global = 30};
    struct tl_event e;
    int ok = 0;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    /* many sources (a spray): each under its own limit, the total capped */
    for (int i = 0; i < 5000; i++) {
        char src[32];
        snprintf(src, sizeof src, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
        an_event(&e, NULL);
        ok += tl_recorder_event(r, &e, src) == 0;
    }
    assert_int_equal(ok, 30);
    tl_recorder_close(r);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM events"), 30);
}

/* a full queue drops and counts, and never waits for the writer */
static void test_full_queue_drops(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.queue_cap = 16, .paused = true};
    struct tl_recorder_stats st;
    struct tl_call_record c;
    int ok = 0, full = 0;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    int64_t t0 = mono_ms();
    for (int i = 0; i < 1000; i++) {
        a_call(&c, i);
        int rc = tl_recorder_call(r, &c);
        ok += rc == 0;
        full += rc == EAGAIN;
    }
    assert_true(mono_ms() - t0 < 1000);
    assert_int_equal(ok, 16);
    assert_int_equal(full, 1000 - 16);
    tl_recorder_stats(r, &st);
    assert_int_equal(st.dropped_full, 1000 - 16);
    assert_int_equal(st.queued, 16);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 0);
    tl_recorder_resume(r);
    tl_recorder_flush(r);
    tl_recorder_stats(r, &st);
    assert_int_equal(st.written, 16);
    tl_recorder_close(r);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 16);
}

/* Issue 11 item 11: a full queue sheds events and start records, never an end record:
 * those are queued past the cap and all reach the file */
static void test_full_queue_keeps_end_records(void **state)
{
    struct fx *f = *state;
    struct tl_recorder *r;
    struct tl_recorder_cfg cfg = {.queue_cap = 16, .paused = true};
    struct tl_recorder_stats st;
    struct tl_call_record c;
    struct tl_event e;

    assert_int_equal(tl_recorder_open(&r, f->s, &cfg), 0);
    for (int i = 0; i < 16; i++) {
        a_call(&c, i);
        assert_int_equal(tl_recorder_call(r, &c), 0);
    }
    assert_true(tl_recorder_backlogged(r));
    a_call(&c, 99);
    assert_int_equal(tl_recorder_call(r, &c), EAGAIN); /* a start: shed */
    an_event(&e, "pn_bbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(tl_recorder_event(r, &e, NULL), EAGAIN);
    for (int i = 0; i < 100; i++) { /* ends: the ring grows (16 → 32 → 64 → 128) */
        a_call(&c, 1000 + i);
        c.created_at = 1000;
        c.ended_at = 2000 + i;
        strcpy(c.end_reason, "bye_received");
        assert_int_equal(tl_recorder_call(r, &c), 0);
    }
    tl_recorder_stats(r, &st);
    assert_int_equal(st.dropped_full, 2);
    assert_int_equal(st.spilled, 100);
    assert_int_equal(st.queued, 116);
    tl_recorder_resume(r);
    tl_recorder_flush(r);
    assert_false(tl_recorder_backlogged(r));
    tl_recorder_close(r);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls"), 116);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL AND "
                                "end_reason = 'bye_received'"),
                     100);
}

/* Issue 11 item 11: calls a dead process left open are ended at the next start */
static void test_close_open_calls_at_start(void **state)
{
    struct fx *f = *state;
    struct tl_call_record c[3];
    struct tl_record_ref refs[3];
    struct tl_err err = {0};
    int64_t closed = -1;

    for (int i = 0; i < 3; i++) {
        a_call(&c[i], i);
        c[i].created_at = 1000 + i;
        refs[i] = (struct tl_record_ref){.call = &c[i]};
    }
    c[1].answered_at = 5000;
    c[2].answered_at = 1500;
    c[2].ended_at = 9000;
    strcpy(c[2].end_reason, "bye_received");
    assert_int_equal(tl_store_records_write(f->s, refs, 3, &err), 0);
    assert_int_equal(tl_store_calls_close_open(f->s, "gateway_restart", 7000, 60000, &closed, &err),
                     0);
    assert_int_equal(closed, 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE ended_at IS NULL"), 0);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE end_reason = 'gateway_restart' "
                                "AND ended_at = 7000"),
                     2);
    /* the call that had ended keeps its own end */
    assert_int_equal(sql_int(f, "SELECT ended_at FROM calls WHERE end_reason = 'bye_received'"),
                     9000);
    /* a second start finds nothing left open */
    assert_int_equal(tl_store_calls_close_open(f->s, "gateway_restart", 8000, 60000, &closed, &err),
                     0);
    assert_int_equal(closed, 0);
}

/* Issue 13: on a shared store a starting node closes only the calls of nodes gone silent
 * (no heartbeat in node_calls within dead_ms) or of no node, never those of a node alive;
 * its own calls carry its node id. SQLite: one node, every open call is the last
 * process's. */
static void test_close_open_spares_live_nodes(void **state)
{
    struct fx *f = *state;
    struct tl_call_record c[3];
    struct tl_record_ref refs[1];
    struct tl_err err = {0};
    int64_t closed = -1;
    const char *nodes[3] = {"nd_live", "nd_dead", ""};

    for (int i = 0; i < 3; i++) {
        a_call(&c[i], i);
        c[i].created_at = 1000 + i;
        tl_store_set_node_id(f->s, nodes[i]);
        refs[0] = (struct tl_record_ref){.call = &c[i]};
        assert_int_equal(tl_store_records_write(f->s, refs, 1, &err), 0);
    }
    tl_store_set_node_id(f->s, "");
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE node_id = 'nd_live'"), 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE node_id IS NULL"), 1);
    if (!tl_store_shared(f->s)) {
        assert_int_equal(
            tl_store_calls_close_open(f->s, "gateway_restart", 7000, 60000, &closed, &err), 0);
        assert_int_equal(closed, 3);
        return;
    }
    /* nd_live beats now; nd_dead beat 2 minutes ago (the database's clock) */
    struct tl_cluster_count *rows = NULL;
    size_t n = 0;
    assert_int_equal(tl_store_cluster_sync(f->s, "nd_live", NULL, 0, 1000, 60000, &rows, &n, &err),
                     0);
    free(rows);
    assert_int_equal(sql_int(f, "INSERT INTO node_calls VALUES ('nd_dead', '', 0, 0, "
                                "(extract(epoch FROM now()) * 1000)::bigint - 120000) "
                                "RETURNING 1"),
                     1);
    assert_int_equal(tl_store_calls_close_open(f->s, "gateway_restart", 7000, 60000, &closed, &err),
                     0);
    assert_int_equal(closed, 2);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE ended_at IS NULL AND "
                                "node_id = 'nd_live'"),
                     1);
    /* once nd_live falls silent too, the next sweep takes its call */
    assert_int_equal(sql_int(f, "UPDATE node_calls SET updated_at = updated_at - 120000 WHERE "
                                "node_id = 'nd_live' RETURNING 1"),
                     1);
    assert_int_equal(tl_store_calls_close_open(f->s, "node_lost", 8000, 60000, &closed, &err), 0);
    assert_int_equal(closed, 1);
    assert_int_equal(sql_int(f, "SELECT count(*) FROM calls WHERE end_reason = 'node_lost'"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_close_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_upsert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhook_deliveries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_global_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_keeps_end_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_open_calls_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_open_spares_live_nodes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
