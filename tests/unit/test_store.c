/* store.c against a real database fresh per test: a SQLite file in a temporary directory,
 * or a schema of its own in PostgreSQL (store_test_util.h, TRUNKLINE_TEST_PG). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "store/store.h"
#include "store_test_util.h"

#define PLAIN_PW "S3cr3t-PLAIN-pw"

struct fx {
    char dir[64];
    char db[TEST_TARGET_MAX];
    uint8_t key[32];
    struct tl_store *s;
};

/* the schema version as the backend records it */
#define VERSION_SQL (test_pg() ? "SELECT version FROM trunkline_schema" : "PRAGMA user_version")

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct tl_err err = {0};

    if (!f || sodium_init() < 0)
        return -1;
    strcpy(f->dir, "/tmp/tl_store_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (test_target(f->dir, "trunkline", f->db, sizeof f->db) != 0)
        return -1;
    randombytes_buf(f->key, sizeof f->key);
    if (tl_store_open(&f->s, f->db, f->key, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.message);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    tl_store_close(f->s);
    test_target_drop(f->db);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void make_ws(struct tl_store *s, enum tl_plan plan, char id[TL_ID_MAX])
{
    struct tl_workspace w = {0};
    struct tl_err err = {0};
    strcpy(w.name, "Acme");
    w.plan = plan;
    assert_int_equal(tl_store_workspace_create(s, &w, &err), 0);
    assert_int_equal(strncmp(w.id, "ws_", 3), 0);
    strcpy(id, w.id);
}

static void make_agent(struct tl_store *s, const char *ws, char id[TL_ID_MAX])
{
    struct tl_agent *a = calloc(1, sizeof *a);
    struct tl_err err = {0};
    strcpy(a->workspace_id, ws);
    strcpy(a->name, "support");
    a->kind = TL_AGENT_WEBSOCKET;
    strcpy(a->url, "wss://agent.example.com/stream");
    assert_int_equal(tl_store_agent_create(s, a, &err), 0);
    strcpy(id, a->id);
    free(a);
}

static struct tl_phone_number *new_number(const char *ws, const char *e164)
{
    struct tl_phone_number *n = calloc(1, sizeof *n);
    assert_non_null(n);
    strcpy(n->workspace_id, ws);
    strcpy(n->number, e164);
    strcpy(n->label, "main line");
    n->source = TL_SOURCE_SIP_TRUNK;
    strcpy(n->outbound.address, "sip.telnyx.com");
    n->outbound.transport = TL_TRANSPORT_TLS;
    n->outbound.media_encryption = TL_MEDIA_REQUIRED;
    return n;
}

static void add_number(struct tl_store *s, const char *ws, const char *e164, const char *agent,
                       char id_out[TL_ID_MAX])
{
    struct tl_phone_number *n = new_number(ws, e164);
    struct tl_err err = {0};
    if (agent)
        strcpy(n->agent_id, agent);
    assert_int_equal(tl_store_number_create(s, n, &err), 0);
    if (id_out)
        strcpy(id_out, n->id);
    free(n);
}

/* list collectors */
struct seen {
    size_t n;
    char ids[16][TL_ID_MAX];
    char names[16][TL_NAME_MAX + 1];
};

static int seen_ws(const struct tl_workspace *w, void *arg)
{
    struct seen *sn = arg;
    strcpy(sn->ids[sn->n++], w->id);
    return 0;
}

static int seen_token(const struct tl_token *t, void *arg)
{
    struct seen *sn = arg;
    strcpy(sn->ids[sn->n], t->id);
    strcpy(sn->names[sn->n++], t->name);
    return 0;
}

static int seen_agent(const struct tl_agent *a, void *arg)
{
    struct seen *sn = arg;
    strcpy(sn->ids[sn->n], a->id);
    strcpy(sn->names[sn->n++], a->name);
    return 0;
}

static int seen_number(const struct tl_phone_number *n, void *arg)
{
    struct seen *sn = arg;
    assert_false(n->outbound.password[0]); /* lists never carry secrets */
    strcpy(sn->ids[sn->n], n->id);
    strcpy(sn->names[sn->n++], n->number);
    return 0;
}

static size_t count_numbers(struct tl_store *s, const char *ws, const char *agent,
                            const char *number)
{
    struct tl_number_filter flt = {.agent_id = agent, .number = number};
    struct tl_page pg = {.limit = TL_PAGE_MAX};
    struct seen sn = {0};
    char next[TL_CURSOR_MAX];
    assert_int_equal(tl_store_number_list(s, ws, &flt, &pg, seen_number, &sn, next, NULL), 0);
    assert_string_equal(next, "");
    return sn.n;
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = fread(buf, 1, (size_t)len, fp);
    fclose(fp);
    bool found = memmem(buf, got, needle, strlen(needle)) != NULL;
    free(buf);
    return found;
}

static long long sql_int(const char *db, const char *sql)
{
    return test_sql_row(db, sql, NULL, 0);
}

/* Whether needle is anywhere at rest: in the SQLite file or its WAL; in PostgreSQL, in the
 * text of any row of the tables that hold secrets, with BYTEA as hex (a plaintext in a BYTEA
 * column shows as its hex). needle: a test constant without quotes. */
static bool at_rest_contains(const struct fx *f, const char *needle)
{
    if (!test_pg()) {
        char wal[TEST_TARGET_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", f->db);
        return file_contains(f->db, needle) || file_contains(wal, needle);
    }
    char q[1024];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM (SELECT t::text AS x FROM tokens t UNION ALL SELECT a::text "
             "FROM agents a UNION ALL SELECT p::text FROM phone_numbers p UNION ALL SELECT "
             "w::text FROM twilio_accounts w) r WHERE strpos(r.x, '%s') > 0 OR strpos(r.x, "
             "encode(convert_to('%s', 'UTF8'), 'hex')) > 0",
             needle, needle);
    long long n = sql_int(f->db, q);
    assert_true(n >= 0);
    return n > 0;
}

/* ---- workspaces ---- */

static void test_workspace_create_makes_echo_agent(void **state)
{
    struct fx *f = *state;
    struct tl_workspace w = {0}, got;
    struct tl_err err = {0};
    struct seen sn = {0};
    char next[TL_CURSOR_MAX];
    int64_t count = -1;

    strcpy(w.name, "Acme GmbH");
    w.plan = TL_PLAN_PROFESSIONAL;
    assert_int_equal(tl_store_workspace_create(f->s, &w, &err), 0);
    assert_int_equal(strncmp(w.id, "ws_", 3), 0);
    assert_string_equal(w.region, "eu");
    assert_true(w.created_at > 0);

    assert_int_equal(tl_store_workspace_get(f->s, w.id, &got), 0);
    assert_string_equal(got.name, "Acme GmbH");
    assert_int_equal(got.plan, TL_PLAN_PROFESSIONAL);
    assert_string_equal(got.region, "eu");
    assert_int_equal(got.created_at, w.created_at);
    assert_int_equal(tl_store_workspace_count(f->s, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(tl_store_workspace_get(f->s, "ws_doesnotexistdoesnotexist00", &got), ENOENT);

    struct tl_page pg = {.limit = 10};
    assert_int_equal(tl_store_agent_list(f->s, w.id, &pg, seen_agent, &sn, next, &err), 0);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.names[0], "echo");
    struct tl_agent *a = calloc(1, sizeof *a);
    assert_int_equal(tl_store_agent_get(f->s, w.id, sn.ids[0], a), 0);
    assert_int_equal(a->kind, TL_AGENT_BUILTIN);
    assert_string_equal(a->builtin, "echo");
    free(a);

    /* update: plan and name change, region kept when not given */
    got.plan = TL_PLAN_ENTERPRISE;
    strcpy(got.name, "Acme AG");
    got.region[0] = '\0';
    assert_int_equal(tl_store_workspace_update(f->s, &got, &err), 0);
    assert_int_equal(tl_store_workspace_get(f->s, w.id, &got), 0);
    assert_int_equal(got.plan, TL_PLAN_ENTERPRISE);
    assert_string_equal(got.name, "Acme AG");
    assert_string_equal(got.region, "eu");

    struct tl_workspace ghost = got;
    strcpy(ghost.id, "ws_nothere");
    assert_int_equal(tl_store_workspace_update(f->s, &ghost, &err), ENOENT);
    assert_int_equal(err.status, 404);
}

static void test_workspace_list_pages(void **state)
{
    struct fx *f = *state;
    char ids[5][TL_ID_MAX], next[TL_CURSOR_MAX], cur[TL_CURSOR_MAX];
    struct seen sn = {0};
    struct tl_err err = {0};

    for (int i = 0; i < 5; i++)
        make_ws(f->s, TL_PLAN_FREE, ids[i]);
    struct tl_page pg = {.cursor = NULL, .limit = 2};
    assert_int_equal(tl_store_workspace_list(f->s, &pg, seen_ws, &sn, next, &err), 0);
    assert_int_equal(sn.n, 2);
    assert_string_not_equal(next, "");
    strcpy(cur, next);
    pg.cursor = cur;
    pg.limit = 0; /* clamped to 1 */
    assert_int_equal(tl_store_workspace_list(f->s, &pg, seen_ws, &sn, next, &err), 0);
    assert_int_equal(sn.n, 3);
    strcpy(cur, next);
    pg.limit = 1000; /* clamped to TL_PAGE_MAX */
    assert_int_equal(tl_store_workspace_list(f->s, &pg, seen_ws, &sn, next, &err), 0);
    assert_int_equal(sn.n, 5);
    assert_string_equal(next, "");
    for (int i = 0; i < 5; i++)
        assert_string_equal(sn.ids[i], ids[i]);
}

/* ---- tokens ---- */

static void test_tokens(void **state)
{
    struct fx *f = *state;
    char wa[TL_ID_MAX], wb[TL_ID_MAX], next[TL_CURSOR_MAX];
    char sa[TL_TOKEN_MAX + 1], sb[TL_TOKEN_MAX + 1], so[TL_TOKEN_MAX + 1];
    struct tl_token ta = {0}, tb = {0}, to = {0}, got;
    struct tl_err err = {0};

    make_ws(f->s, TL_PLAN_PROFESSIONAL, wa);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, wb);

    strcpy(ta.workspace_id, wa);
    ta.role = TL_ROLE_ADMIN;
    strcpy(ta.name, "ci");
    assert_int_equal(tl_store_token_create(f->s, &ta, sa, &err), 0);
    assert_int_equal(strncmp(sa, "tlk_", 4), 0);
    assert_int_equal(strncmp(ta.id, "tk_", 3), 0);
    assert_int_equal(strncmp(sa, ta.prefix, strlen(ta.prefix)), 0);
    assert_true(strlen(ta.prefix) >= 8);

    strcpy(tb.workspace_id, wb);
    tb.role = TL_ROLE_MEMBER;
    strcpy(tb.name, "bob");
    assert_int_equal(tl_store_token_create(f->s, &tb, sb, &err), 0);
    to.role = TL_ROLE_OPERATOR;
    strcpy(to.name, "ops");
    assert_int_equal(tl_store_token_create(f->s, &to, so, &err), 0);

    /* role / workspace consistency */
    struct tl_token bad = {.role = TL_ROLE_OPERATOR};
    char sx[TL_TOKEN_MAX + 1];
    strcpy(bad.workspace_id, wa);
    assert_int_equal(tl_store_token_create(f->s, &bad, sx, &err), EINVAL);
    assert_string_equal(err.field, "workspace_id");
    struct tl_token orphan = {.role = TL_ROLE_ADMIN};
    strcpy(orphan.workspace_id, "ws_nosuchworkspace");
    assert_int_equal(tl_store_token_create(f->s, &orphan, sx, &err), EINVAL);

    /* auth */
    assert_int_equal(tl_store_token_auth(f->s, sa, &got), 0);
    assert_string_equal(got.id, ta.id);
    assert_string_equal(got.workspace_id, wa);
    assert_int_equal(got.role, TL_ROLE_ADMIN);
    assert_int_equal(tl_store_token_auth(f->s, so, &got), 0);
    assert_string_equal(got.workspace_id, "");
    assert_int_equal(got.role, TL_ROLE_OPERATOR);
    char unknown[TL_TOKEN_MAX + 1];
    tl_token_new(unknown);
    assert_int_equal(tl_store_token_auth(f->s, unknown, &got), ENOENT);
    assert_int_equal(tl_store_token_auth(f->s, "tlk_short", &got), ENOENT);
    assert_int_equal(tl_store_token_auth(f->s, "", &got), ENOENT);
    char wrong_prefix[TL_TOKEN_MAX + 1];
    strcpy(wrong_prefix, sa);
    memcpy(wrong_prefix, "xlk_", 4);
    assert_int_equal(tl_store_token_auth(f->s, wrong_prefix, &got), ENOENT);
    char flipped[TL_TOKEN_MAX + 1];
    strcpy(flipped, sa);
    flipped[20] = flipped[20] == 'A' ? 'B' : 'A';
    assert_int_equal(tl_store_token_auth(f->s, flipped, &got), ENOENT);

    /* auth records the last use (v2), and the secret itself is nowhere in the file */
    assert_true(sql_int(f->db, "SELECT count(*) FROM tokens WHERE last_used_at IS NOT NULL") == 2);
    assert_false(at_rest_contains(f, sa + 4));

    /* listing and scoping */
    struct seen sn = {0};
    struct tl_page pg = {.limit = 10};
    assert_int_equal(tl_store_token_list(f->s, wa, &pg, seen_token, &sn, next, &err), 0);
    assert_int_equal(sn.n, 1);
    assert_string_equal(sn.ids[0], ta.id);
    memset(&sn, 0, sizeof sn);
    assert_int_equal(tl_store_token_list(f->s, NULL, &pg, seen_token, &sn, next, &err), 0);
    assert_int_equal(sn.n, 3);
    assert_string_equal(sn.ids[0], ta.id);
    assert_string_equal(sn.ids[2], to.id);

    assert_int_equal(tl_store_token_get(f->s, wa, ta.id, &got), 0);
    assert_string_equal(got.name, "ci");
    assert_int_equal(tl_store_token_get(f->s, wb, ta.id, &got), ENOENT);
    assert_int_equal(tl_store_token_get(f->s, NULL, ta.id, &got), 0);

    assert_int_equal(tl_store_token_delete(f->s, wb, ta.id), ENOENT);
    assert_int_equal(tl_store_token_auth(f->s, sa, &got), 0);
    assert_int_equal(tl_store_token_delete(f->s, wa, ta.id), 0);
    assert_int_equal(tl_store_token_auth(f->s, sa, &got), ENOENT);
    assert_int_equal(tl_store_token_delete(f->s, wa, ta.id), ENOENT);
    assert_int_equal(tl_store_token_auth(f->s, sb, &got), 0);

    /* issue 11 item 17: the last operator token stays; reads carry last_used_at */
    assert_int_equal(tl_store_token_get(f->s, NULL, to.id, &got), 0);
    assert_true(got.last_used_at > 0 && got.expires_at == 0);
    assert_int_equal(tl_store_token_delete(f->s, NULL, to.id), EBUSY);
    assert_int_equal(tl_store_token_auth(f->s, so, &got), 0);
    struct tl_token to2 = {.role = TL_ROLE_OPERATOR};
    char so2[TL_TOKEN_MAX + 1];
    strcpy(to2.name, "ops2");
    assert_int_equal(tl_store_token_create(f->s, &to2, so2, &err), 0);
    assert_int_equal(tl_store_token_delete(f->s, NULL, to.id), 0);
    assert_int_equal(tl_store_token_delete(f->s, NULL, to2.id), EBUSY);
    /* an expired operator token is no way in: it does not count as another one */
    struct tl_token old = {.role = TL_ROLE_OPERATOR, .expires_at = tl_now_ms() - 1};
    char sold[TL_TOKEN_MAX + 1];
    strcpy(old.name, "old");
    assert_int_equal(tl_store_token_create(f->s, &old, sold, &err), 0);
    assert_int_equal(tl_store_token_auth(f->s, sold, &got), ENOENT);
    assert_int_equal(tl_store_token_delete(f->s, NULL, to2.id), EBUSY);
    assert_int_equal(tl_store_token_get(f->s, NULL, old.id, &got), 0);
    assert_int_equal(got.expires_at, old.expires_at);
    assert_int_equal(got.last_used_at, 0);
    /* a token that has not expired yet works */
    struct tl_token soon = {.role = TL_ROLE_MEMBER, .expires_at = tl_now_ms() + 60000};
    char ssoon[TL_TOKEN_MAX + 1];
    strcpy(soon.workspace_id, wb);
    assert_int_equal(tl_store_token_create(f->s, &soon, ssoon, &err), 0);
    assert_int_equal(tl_store_token_auth(f->s, ssoon, &got), 0);
    assert_int_equal(got.expires_at, soon.expires_at);
}

/* ---- agents ---- */

static void test_agent_crud(void **state)
{
    struct fx *f = *state;
    char wa[TL_ID_MAX], wb[TL_ID_MAX], pn[TL_ID_MAX];
    struct tl_agent *a = calloc(1, sizeof *a), *got = calloc(1, sizeof *got);
    struct tl_err err = {0};

    make_ws(f->s, TL_PLAN_PROFESSIONAL, wa);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, wb);
    strcpy(a->workspace_id, wa);
    strcpy(a->name, "sales bot");
    a->kind = TL_AGENT_WEBSOCKET;
    strcpy(a->url, "wss://agents.example.com/sales");
    a->n_params = 2;
    strcpy(a->params[0].key, "voice");
    strcpy(a->params[0].value, "alloy");
    strcpy(a->params[1].key, "lang");
    strcpy(a->params[1].value, "de-DE");
    a->n_headers = 2;
    strcpy(a->headers[0].name, "Authorization");
    strcpy(a->headers[0].value, "Bearer sk-agent-SECRET-1");
    strcpy(a->headers[1].name, "X-Tenant");
    strcpy(a->headers[1].value, "acme");
    assert_int_equal(tl_store_agent_create(f->s, a, &err), 0);
    assert_int_equal(strncmp(a->id, "ag_", 3), 0);
    /* what comes back is the stored view: values hidden */
    assert_true(a->values_hidden);
    assert_string_equal(a->headers[0].value, "");

    assert_int_equal(tl_store_agent_get(f->s, wa, a->id, got), 0);
    assert_string_equal(got->name, "sales bot");
    assert_int_equal(got->kind, TL_AGENT_WEBSOCKET);
    assert_string_equal(got->url, "wss://agents.example.com/sales");
    assert_int_equal(got->n_params, 2);
    assert_string_equal(got->params[1].key, "lang");
    assert_string_equal(got->params[1].value, "de-DE");
    assert_int_equal(got->n_headers, 2);
    assert_string_equal(got->headers[0].name, "Authorization");
    assert_string_equal(got->headers[0].value, "");
    assert_true(got->values_hidden);
    assert_int_equal(tl_store_agent_get(f->s, wb, a->id, got), ENOENT);

    /* header values sealed at rest */
    assert_false(at_rest_contains(f, "sk-agent-SECRET-1"));

    /* update: Authorization sent back hidden keeps its value; X-Tenant changes */
    strcpy(got->name, "sales bot 2");
    strcpy(got->headers[1].value, "acme-eu");
    assert_int_equal(tl_store_agent_update(f->s, got, NULL, &err), 0);
    assert_int_equal(tl_store_agent_secrets(f->s, wa, a->id, got), 0);
    assert_false(got->values_hidden);
    assert_string_equal(got->name, "sales bot 2");
    assert_string_equal(got->headers[0].value, "Bearer sk-agent-SECRET-1");
    assert_string_equal(got->headers[1].value, "acme-eu");
    assert_int_equal(tl_store_agent_secrets(f->s, wb, a->id, got), ENOENT);

    /* a stored secret never follows a change of destination: the URL's host changes and the
     * request does not repeat the values → they are dropped, and the warning names them;
     * a value sent again in the same request is kept */
    assert_int_equal(tl_store_agent_get(f->s, wa, a->id, got), 0);
    struct tl_warnings w = {0};
    strcpy(got->url, "wss://AGENTS.example.com:443/other-path"); /* same destination */
    assert_int_equal(tl_store_agent_update(f->s, got, &w, &err), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(tl_store_agent_secrets(f->s, wa, a->id, got), 0);
    assert_string_equal(got->headers[0].value, "Bearer sk-agent-SECRET-1");
    assert_int_equal(tl_store_agent_get(f->s, wa, a->id, got), 0);
    strcpy(got->url, "wss://evil.example.net/collect");
    strcpy(got->headers[1].value, "acme-new"); /* given again: kept */
    assert_int_equal(tl_store_agent_update(f->s, got, &w, &err), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "header_values_dropped");
    assert_non_null(strstr(w.w[0].message, "Authorization"));
    assert_null(strstr(w.w[0].message, "X-Tenant"));
    assert_int_equal(tl_store_agent_secrets(f->s, wa, a->id, got), 0);
    assert_int_equal(got->n_headers, 1);
    assert_string_equal(got->headers[0].name, "X-Tenant");
    assert_string_equal(got->headers[0].value, "acme-new");
    /* wss → ws on the same host is a change of destination too (clear text) */
    assert_true(tl_agent_url_same_dest("wss://a.example.com/x", "WSS://a.example.com:443/y"));
    assert_false(tl_agent_url_same_dest("wss://a.example.com/x", "ws://a.example.com/x"));
    assert_false(tl_agent_url_same_dest("wss://a.example.com/x", "wss://a.example.com:8443/x"));
    assert_false(tl_agent_url_same_dest("wss://[::1]/x", "wss://[::2]/x"));
    assert_true(tl_agent_url_same_dest("ws://[::1]:80/x", "ws://[::1]/y"));

    /* without values_hidden an empty value is an empty value */
    assert_int_equal(tl_store_agent_get(f->s, wa, a->id, got), 0);
    got->values_hidden = false;
    got->n_headers = 1;
    assert_int_equal(tl_store_agent_update(f->s, got, NULL, &err), 0);
    assert_int_equal(tl_store_agent_secrets(f->s, wa, a->id, got), 0);
    assert_int_equal(got->n_headers, 1);
    assert_string_equal(got->headers[0].value, "");

    /* update of another workspace's agent */
    strcpy(got->workspace_id, wb);
    assert_int_equal(tl_store_agent_update(f->s, got, NULL, &err), ENOENT);

    /* delete while a number points at it */
    add_number(f->s, wa, "+493012345678", a->id, pn);
    assert_int_equal(tl_store_agent_delete(f->s, wa, a->id, &err), EBUSY);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "agent_in_use");
    assert_non_null(strstr(err.message, "1 phone number"));
    assert_int_equal(tl_store_agent_delete(f->s, wb, a->id, &err), ENOENT);
    assert_int_equal(tl_store_number_set_agent(f->s, wa, pn, "", NULL, &err), 0);
    assert_int_equal(tl_store_agent_delete(f->s, wa, a->id, &err), 0);
    assert_int_equal(tl_store_agent_get(f->s, wa, a->id, got), ENOENT);
    assert_int_equal(tl_store_agent_delete(f->s, wa, a->id, &err), ENOENT);
    free(a);
    free(got);
}

/* ---- phone numbers ---- */

static void test_number_pagination_and_filters(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], other[TL_ID_MAX], ag[TL_ID_MAX], ids[7][TL_ID_MAX];
    char next[TL_CURSOR_MAX], cur[TL_CURSOR_MAX];
    struct tl_err err = {0};

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, other);
    make_agent(f->s, ws, ag);
    for (int i = 0; i < 7; i++) {
        char e164[32];
        snprintf(e164, sizeof e164, "+4930111000%d", i);
        add_number(f->s, ws, e164, (i == 2 || i == 5) ? ag : NULL, ids[i]);
        if (i == 3)
            add_number(f->s, other, "+4930999000", NULL, NULL); /* interleaved, not ours */
    }

    struct seen sn = {0};
    struct tl_page pg = {.cursor = "", .limit = 3};
    assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, seen_number, &sn, next, &err), 0);
    assert_int_equal(sn.n, 3);
    assert_string_not_equal(next, "");
    strcpy(cur, next);
    pg.cursor = cur;
    assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, seen_number, &sn, next, &err), 0);
    assert_int_equal(sn.n, 6);
    assert_string_not_equal(next, "");
    strcpy(cur, next);
    assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, seen_number, &sn, next, &err), 0);
    assert_int_equal(sn.n, 7);
    assert_string_equal(next, "");
    for (int i = 0; i < 7; i++)
        assert_string_equal(sn.ids[i], ids[i]);

    /* exactly a full last page: no phantom next page */
    struct seen s2 = {0};
    pg.cursor = NULL;
    pg.limit = 7;
    assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, seen_number, &s2, next, &err), 0);
    assert_int_equal(s2.n, 7);
    assert_string_equal(next, "");

    /* malformed cursors */
    const char *bad[] = {"x1", "c", "cZZ", "c-1", "c1234567890abcdef0", "C1", "c 1", "c0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        pg.cursor = bad[i];
        assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, seen_number, &s2, next, &err),
                         EINVAL);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.code, "invalid_field");
        assert_string_equal(err.field, "cursor");
    }

    /* filters */
    assert_int_equal(count_numbers(f->s, ws, ag, NULL), 2);
    assert_int_equal(count_numbers(f->s, ws, "", NULL), 5);
    assert_int_equal(count_numbers(f->s, ws, NULL, "+49301110004"), 1);
    assert_int_equal(count_numbers(f->s, ws, ag, "+49301110005"), 1);
    assert_int_equal(count_numbers(f->s, ws, ag, "+49301110004"), 0);
    assert_int_equal(count_numbers(f->s, ws, NULL, "+4930999000"), 0);
    assert_int_equal(count_numbers(f->s, other, NULL, NULL), 1);
}

struct seen_latest {
    size_t n;
    char ids[8][TL_ID_MAX];
    char event[8][TL_ID_MAX]; /* "" = no event */
};

static int seen_latest(const struct tl_phone_number *n, const struct tl_event_brief *ev, void *arg)
{
    struct seen_latest *sl = arg;
    strcpy(sl->ids[sl->n], n->id);
    strcpy(sl->event[sl->n++], ev ? ev->id : "");
    return 0;
}

static size_t search(struct tl_store *s, const char *ws, const char *q, struct seen_latest *sl)
{
    struct tl_number_filter flt = {.q = q};
    struct tl_page pg = {.limit = TL_PAGE_MAX};
    char next[TL_CURSOR_MAX];
    memset(sl, 0, sizeof *sl);
    assert_int_equal(tl_store_number_list_latest(s, ws, &flt, &pg, seen_latest, sl, next, NULL), 0);
    return sl->n;
}

/* ?q= of the number list, and the newest event that comes with each item */
static void test_number_search_and_latest_event(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], other[TL_ID_MAX], ids[3][TL_ID_MAX];
    const char *labels[] = {"Berlin Office", "Hamburg", "berlin night"};
    struct seen_latest sl;
    struct tl_err err = {0};

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, other);
    for (int i = 0; i < 3; i++) {
        char e164[32];
        snprintf(e164, sizeof e164, "+4940555000%d", i);
        struct tl_phone_number *n = new_number(ws, e164);
        strcpy(n->label, labels[i]);
        assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
        strcpy(ids[i], n->id);
        free(n);
    }
    add_number(f->s, other, "+4940555009", NULL, NULL); /* matches, but not ours */

    assert_int_equal(search(f->s, ws, NULL, &sl), 3);
    assert_int_equal(search(f->s, ws, "", &sl), 3);
    assert_int_equal(search(f->s, ws, "BERLIN", &sl), 2);
    assert_string_equal(sl.ids[0], ids[0]);
    assert_string_equal(sl.ids[1], ids[2]);
    assert_int_equal(search(f->s, ws, "5550001", &sl), 1);
    assert_string_equal(sl.ids[0], ids[1]);
    assert_int_equal(search(f->s, ws, "+49405550", &sl), 3);
    assert_int_equal(search(f->s, ws, "%", &sl), 0); /* text, not a LIKE pattern */
    assert_int_equal(search(f->s, ws, "x'; --", &sl), 0);

    /* events: two for the first number, one for the third; the newest is listed */
    struct tl_event ev[3] = {0};
    const int of[3] = {0, 2, 0};
    struct tl_record_ref refs[3];
    for (int i = 0; i < 3; i++) {
        tl_id_new(ev[i].id, "ev");
        strcpy(ev[i].workspace_id, ws);
        strcpy(ev[i].number_id, ids[of[i]]);
        strcpy(ev[i].code, "registration_attempt");
        strcpy(ev[i].message, "REGISTER refused");
        ev[i].created_at = 1000 + i;
        refs[i] = (struct tl_record_ref){.event = &ev[i]};
    }
    assert_int_equal(tl_store_records_write(f->s, refs, 3, &err), 0);
    assert_int_equal(search(f->s, ws, NULL, &sl), 3);
    assert_string_equal(sl.event[0], ev[2].id);
    assert_string_equal(sl.event[1], "");
    assert_string_equal(sl.event[2], ev[1].id);
}

static int stop_after_two(const struct tl_phone_number *n, void *arg)
{
    int *calls = arg;
    return ++*calls == 2 ? 42 : 0;
}

static void test_number_list_callback_stops(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], next[TL_CURSOR_MAX];
    int calls = 0;

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    add_number(f->s, ws, "+15550000001", NULL, NULL);
    add_number(f->s, ws, "+15550000002", NULL, NULL);
    add_number(f->s, ws, "+15550000003", NULL, NULL);
    struct tl_page pg = {.limit = 10};
    assert_int_equal(tl_store_number_list(f->s, ws, NULL, &pg, stop_after_two, &calls, next, NULL),
                     42);
    assert_int_equal(calls, 2);
}

static void test_number_create_rules(void **state)
{
    struct fx *f = *state;
    char pro[TL_ID_MAX], pro2[TL_ID_MAX], starter[TL_ID_MAX], ag_other[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *n;

    make_ws(f->s, TL_PLAN_PROFESSIONAL, pro);
    make_ws(f->s, TL_PLAN_ENTERPRISE, pro2);
    make_ws(f->s, TL_PLAN_STARTER, starter);
    make_agent(f->s, pro2, ag_other);

    add_number(f->s, pro, "+493012345678", NULL, NULL);

    /* the same number in another workspace */
    n = new_number(pro2, "+493012345678");
    assert_int_equal(tl_store_number_create(f->s, n, &err), EEXIST);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "number_taken");
    assert_string_equal(err.field, "number");
    assert_non_null(strstr(err.message, "already imported in this system"));
    /* and in the same one */
    strcpy(n->workspace_id, pro);
    assert_int_equal(tl_store_number_create(f->s, n, &err), EEXIST);
    free(n);

    /* plan below professional */
    memset(&err, 0, sizeof err);
    n = new_number(starter, "+493099999999");
    assert_int_equal(tl_store_number_create(f->s, n, &err), EPERM);
    assert_int_equal(err.status, 403);
    assert_string_equal(err.code, "plan_required");
    assert_non_null(strstr(err.message, "professional plan"));
    assert_non_null(strstr(err.message, tl_plan_name(TL_PLAN_STARTER)));
    /* a platform number is fine on any plan */
    n->source = TL_SOURCE_PLATFORM;
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    free(n);

    /* agent of another workspace */
    memset(&err, 0, sizeof err);
    n = new_number(pro, "+493055555555");
    strcpy(n->agent_id, ag_other);
    assert_int_equal(tl_store_number_create(f->s, n, &err), EINVAL);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_field");
    assert_string_equal(err.field, "agent_id");
    free(n);

    /* unknown workspace */
    n = new_number("ws_nosuchworkspace", "+493066666666");
    assert_int_equal(tl_store_number_create(f->s, n, &err), ENOENT);
    free(n);

    assert_int_equal(count_numbers(f->s, pro, NULL, NULL), 1);
    assert_int_equal(count_numbers(f->s, pro2, NULL, NULL), 0);
}

static void test_number_get_and_tenancy(void **state)
{
    struct fx *f = *state;
    char wa[TL_ID_MAX], wb[TL_ID_MAX], ag[TL_ID_MAX], agb[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *n = new_number("", "+442071234567"), *got = calloc(1, sizeof *got);

    make_ws(f->s, TL_PLAN_PROFESSIONAL, wa);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, wb);
    make_agent(f->s, wa, ag);
    make_agent(f->s, wb, agb);
    strcpy(n->workspace_id, wa);
    strcpy(n->agent_id, ag);
    strcpy(n->outbound.username, "acme_trunk");
    strcpy(n->outbound.password, PLAIN_PW);
    n->outbound.password_given = true;
    n->outbound.transport = TL_TRANSPORT_TCP;
    n->outbound.media_encryption = TL_MEDIA_ALLOWED;
    n->outbound.n_headers = 1;
    strcpy(n->outbound.headers[0].name, "X-Account");
    strcpy(n->outbound.headers[0].value, "1234");
    n->has_inbound = true;
    n->inbound.transport = TL_TRANSPORT_TLS;
    n->inbound.media_encryption = TL_MEDIA_REQUIRED;
    n->inbound.n_allowed = 2;
    strcpy(n->inbound.allowed_addresses[0], "192.0.2.0/24");
    strcpy(n->inbound.allowed_addresses[1], "2001:db8::/32");
    strcpy(n->inbound.origination_url, "sip:pbx.example.com;transport=tls");
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    assert_int_equal(strncmp(n->id, "pn_", 3), 0);
    assert_true(n->outbound.has_password);
    assert_string_equal(n->outbound.password, ""); /* the stored view comes back */
    assert_false(n->inbound.has_password);

    assert_int_equal(tl_store_number_get(f->s, wa, n->id, got), 0);
    assert_string_equal(got->number, "+442071234567");
    assert_string_equal(got->label, "main line");
    assert_int_equal(got->source, TL_SOURCE_SIP_TRUNK);
    assert_string_equal(got->agent_id, ag);
    assert_string_equal(got->outbound.address, "sip.telnyx.com");
    assert_string_equal(got->outbound.username, "acme_trunk");
    assert_string_equal(got->outbound.password, "");
    assert_true(got->outbound.has_password);
    assert_int_equal(got->outbound.transport, TL_TRANSPORT_TCP);
    assert_int_equal(got->outbound.media_encryption, TL_MEDIA_ALLOWED);
    assert_int_equal(got->outbound.n_headers, 1);
    assert_string_equal(got->outbound.headers[0].value, "1234");
    assert_true(got->has_inbound);
    assert_int_equal(got->inbound.n_allowed, 2);
    assert_string_equal(got->inbound.allowed_addresses[1], "2001:db8::/32");
    assert_string_equal(got->inbound.origination_url, "sip:pbx.example.com;transport=tls");
    assert_int_equal(got->created_at, n->created_at);

    /* another workspace sees nothing and can change nothing */
    assert_int_equal(tl_store_number_get(f->s, wb, n->id, got), ENOENT);
    assert_int_equal(tl_store_number_set_agent(f->s, wb, n->id, agb, got, &err), ENOENT);
    assert_int_equal(tl_store_number_delete(f->s, wb, n->id, &err), ENOENT);
    assert_int_equal(err.status, 404);
    assert_int_equal(tl_store_number_release(f->s, wb, n->id, &err), ENOENT);
    struct tl_phone_number *r = new_number(wb, "+442071234567");
    strcpy(r->id, n->id);
    assert_int_equal(tl_store_number_replace(f->s, r, NULL, &err), ENOENT);
    free(r);
    assert_int_equal(tl_store_number_get(f->s, wa, n->id, got), 0);
    assert_string_equal(got->agent_id, ag);
    free(n);
    free(got);
}

static void test_number_replace_password_rules(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], ag[TL_ID_MAX], ag2[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *n = new_number("", "+493012345678");
    struct tl_phone_number *sec = calloc(1, sizeof *sec), *put;

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    make_agent(f->s, ws, ag);
    make_agent(f->s, ws, ag2);
    strcpy(n->workspace_id, ws);
    strcpy(n->agent_id, ag);
    strcpy(n->outbound.username, "acme_trunk");
    strcpy(n->outbound.password, PLAIN_PW);
    n->outbound.password_given = true;
    n->has_inbound = true;
    strcpy(n->inbound.username, "carrier_in");
    strcpy(n->inbound.password, "inbound-pw-1");
    n->inbound.password_given = true;
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);

    /* 1. same usernames and address (its case aside), no passwords given: both kept;
     * label and agent replaced */
    struct tl_warnings w = {0};
    put = new_number(ws, "+493012345678");
    strcpy(put->id, n->id);
    strcpy(put->label, "renamed");
    strcpy(put->agent_id, ag2);
    strcpy(put->outbound.username, "acme_trunk");
    strcpy(put->outbound.address, "SIP.Telnyx.com");
    put->has_inbound = true;
    strcpy(put->inbound.username, "carrier_in");
    assert_int_equal(tl_store_number_replace(f->s, put, &w, &err), 0);
    assert_int_equal(w.n, 0);
    assert_true(put->outbound.has_password);
    assert_true(put->inbound.has_password);
    assert_string_equal(put->label, "renamed");
    assert_string_equal(put->agent_id, ag2);
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_string_equal(sec->outbound.password, PLAIN_PW);
    assert_string_equal(sec->inbound.password, "inbound-pw-1");

    /* 1b. a new address: the stored outbound password does not follow it (a warning says
     * so); the inbound one is another trunk's and stays */
    strcpy(put->outbound.address, "sip.telnyx.eu");
    assert_int_equal(tl_store_number_replace(f->s, put, &w, &err), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.w[0].code, "password_dropped");
    assert_string_equal(w.w[0].field, "outbound_trunk.password");
    assert_non_null(strstr(w.w[0].message, "SIP.Telnyx.com to sip.telnyx.eu"));
    assert_false(put->outbound.has_password);
    assert_true(put->inbound.has_password);
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_string_equal(sec->outbound.password, "");
    assert_string_equal(sec->outbound.username, "acme_trunk");
    assert_string_equal(sec->outbound.address, "sip.telnyx.eu");
    assert_string_equal(sec->inbound.password, "inbound-pw-1");
    /* 1c. given again with the move: kept, no warning */
    memset(&w, 0, sizeof w);
    strcpy(put->outbound.address, "sip.telnyx.com");
    strcpy(put->outbound.password, PLAIN_PW);
    put->outbound.password_given = true;
    assert_int_equal(tl_store_number_replace(f->s, put, &w, &err), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_string_equal(sec->outbound.password, PLAIN_PW);
    free(put);

    /* 2. outbound username changes without a password: refused, nothing changed */
    memset(&err, 0, sizeof err);
    put = new_number(ws, "+493012345678");
    strcpy(put->id, n->id);
    strcpy(put->outbound.username, "new_user");
    put->has_inbound = true;
    strcpy(put->inbound.username, "carrier_in");
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), EINVAL);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_field");
    assert_string_equal(err.field, "outbound_trunk.password");
    assert_string_equal(err.message, "A password is required when the username changes.");
    /* the same for inbound */
    strcpy(put->outbound.username, "acme_trunk");
    strcpy(put->inbound.username, "someone_else");
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), EINVAL);
    assert_string_equal(err.field, "inbound_trunk.password");
    assert_int_equal(tl_store_number_get(f->s, ws, n->id, sec), 0);
    assert_string_equal(sec->label, "renamed");
    assert_string_equal(sec->inbound.username, "carrier_in");

    /* 3. new username with a new password: sealed fresh */
    strcpy(put->outbound.username, "new_user");
    strcpy(put->outbound.password, "second-password");
    put->outbound.password_given = true;
    strcpy(put->inbound.username, "carrier_in");
    strcpy(put->agent_id, ag2);
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), 0);
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_string_equal(sec->outbound.username, "new_user");
    assert_string_equal(sec->outbound.password, "second-password");
    free(put);

    /* 4. username cleared (IP authentication): no password; inbound absent: removed;
     * agent left empty: unassigned (the API copies the stored one in when it wants to
     * keep it) */
    put = new_number(ws, "+493012345678");
    strcpy(put->id, n->id);
    put->has_inbound = false;
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), 0);
    assert_false(put->outbound.has_password);
    assert_false(put->has_inbound);
    assert_string_equal(put->agent_id, "");
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_false(sec->has_inbound);
    assert_string_equal(sec->outbound.password, "");
    assert_string_equal(sec->inbound.password, "");
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM phone_numbers WHERE "
                                    "inbound_json IS NULL AND inbound_password IS NULL"),
                     1);

    /* 5. inbound added back with a username but no password: refused */
    put->has_inbound = true;
    strcpy(put->inbound.username, "carrier_in");
    put->inbound.password_given = false;
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), EINVAL);
    assert_string_equal(err.field, "inbound_trunk.password");

    /* 6. number and source are not changed by a replace; a foreign agent is refused */
    put->has_inbound = false;
    strcpy(put->number, "+10000000000");
    put->source = TL_SOURCE_PLATFORM;
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), 0);
    assert_string_equal(put->number, "+493012345678");
    assert_int_equal(put->source, TL_SOURCE_SIP_TRUNK);
    char other[TL_ID_MAX], foreign[TL_ID_MAX];
    make_ws(f->s, TL_PLAN_PROFESSIONAL, other);
    make_agent(f->s, other, foreign);
    strcpy(put->agent_id, foreign);
    assert_int_equal(tl_store_number_replace(f->s, put, NULL, &err), EINVAL);
    assert_string_equal(err.field, "agent_id");
    free(put);
    free(sec);
    free(n);
}

/* outbound destinations: the country codes of a workspace's numbers, each once, from the
 * numbers of that workspace only; the operator's prefixes persist */
static void test_workspace_destinations(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    char ws[TL_ID_MAX], other[TL_ID_MAX], cc[8][TL_PREFIX_MAX + 1];
    size_t n = 99;
    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, other);
    assert_int_equal(tl_store_workspace_country_codes(f->s, ws, cc, 8, &n), 0);
    assert_int_equal(n, 0);
    add_number(f->s, ws, "+493012345678", NULL, NULL);
    add_number(f->s, ws, "+498912345678", NULL, NULL);
    add_number(f->s, ws, "+15551234567", NULL, NULL);
    add_number(f->s, ws, "+35312345678", NULL, NULL);
    add_number(f->s, other, "+441632960000", NULL, NULL);
    assert_int_equal(tl_store_workspace_country_codes(f->s, ws, cc, 8, &n), 0);
    assert_int_equal(n, 3);
    bool de = false, us = false, ie = false;
    for (size_t i = 0; i < n; i++) {
        de |= !strcmp(cc[i], "+49");
        us |= !strcmp(cc[i], "+1");
        ie |= !strcmp(cc[i], "+353");
    }
    assert_true(de && us && ie);
    assert_int_equal(tl_store_workspace_country_codes(f->s, ws, cc, 2, &n), 0);
    assert_int_equal(n, 2); /* capped, never past the caller's array */

    struct tl_workspace w;
    assert_int_equal(tl_store_workspace_get(f->s, ws, &w), 0);
    assert_int_equal(w.n_out_prefixes, 0);
    w.n_out_prefixes = 2;
    strcpy(w.out_prefixes[0], "+44");
    strcpy(w.out_prefixes[1], "+");
    assert_int_equal(tl_store_workspace_update(f->s, &w, &err), 0);
    memset(&w, 0, sizeof w);
    assert_int_equal(tl_store_workspace_get(f->s, ws, &w), 0);
    assert_int_equal(w.n_out_prefixes, 2);
    assert_string_equal(w.out_prefixes[0], "+44");
    assert_string_equal(w.out_prefixes[1], "+");
    assert_int_equal(tl_store_workspace_get(f->s, other, &w), 0);
    assert_int_equal(w.n_out_prefixes, 0);
}

static void test_number_set_agent(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], other[TL_ID_MAX], ag[TL_ID_MAX], foreign[TL_ID_MAX], pn[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *out = calloc(1, sizeof *out);

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, other);
    make_agent(f->s, ws, ag);
    make_agent(f->s, other, foreign);
    add_number(f->s, ws, "+33123456789", NULL, pn);

    assert_int_equal(tl_store_number_set_agent(f->s, ws, pn, ag, out, &err), 0);
    assert_string_equal(out->agent_id, ag);
    assert_string_equal(out->number, "+33123456789");
    assert_int_equal(count_numbers(f->s, ws, ag, NULL), 1);

    assert_int_equal(tl_store_number_set_agent(f->s, ws, pn, foreign, out, &err), EINVAL);
    assert_string_equal(err.field, "agent_id");
    assert_int_equal(tl_store_number_set_agent(f->s, ws, pn, "ag_nonexistent", out, &err), EINVAL);
    assert_int_equal(tl_store_number_get(f->s, ws, pn, out), 0);
    assert_string_equal(out->agent_id, ag);

    assert_int_equal(tl_store_number_set_agent(f->s, ws, pn, "", out, &err), 0);
    assert_string_equal(out->agent_id, "");
    assert_int_equal(count_numbers(f->s, ws, ag, NULL), 0);
    assert_int_equal(tl_store_number_set_agent(f->s, ws, "pn_missing", "", out, &err), ENOENT);
    free(out);
}

static void test_number_release_vs_delete(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX], sip[TL_ID_MAX], plat[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *n;

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    add_number(f->s, ws, "+4989111111", NULL, sip);
    n = new_number(ws, "+4989222222");
    n->source = TL_SOURCE_PLATFORM;
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);
    strcpy(plat, n->id);

    assert_int_equal(tl_store_number_release(f->s, ws, sip, &err), EINVAL);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "release_not_supported");
    assert_non_null(strstr(err.message, "DELETE /v1/phone-numbers/{id}"));
    assert_int_equal(tl_store_number_delete(f->s, ws, plat, &err), EINVAL);
    assert_int_equal(err.status, 409);
    assert_string_equal(err.code, "delete_not_supported");
    assert_int_equal(count_numbers(f->s, ws, NULL, NULL), 2);

    assert_int_equal(tl_store_number_delete(f->s, ws, sip, &err), 0);
    assert_int_equal(tl_store_number_release(f->s, ws, plat, &err), 0);
    assert_int_equal(count_numbers(f->s, ws, NULL, NULL), 0);
    assert_int_equal(tl_store_number_get(f->s, ws, sip, n), ENOENT);
    assert_int_equal(tl_store_number_delete(f->s, ws, sip, &err), ENOENT);

    /* a released number can be imported again, by anyone */
    add_number(f->s, ws, "+4989222222", NULL, NULL);
    free(n);
}

static void test_secrets_never_in_file(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX];
    struct tl_err err = {0};
    struct tl_phone_number *n = new_number("", "+493012345678");
    struct tl_phone_number *sec = calloc(1, sizeof *sec);

    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    strcpy(n->workspace_id, ws);
    strcpy(n->outbound.username, "acme_trunk");
    strcpy(n->outbound.password, PLAIN_PW);
    n->outbound.password_given = true;
    n->has_inbound = true;
    strcpy(n->inbound.username, "carrier");
    strcpy(n->inbound.password, "INBOUND-" PLAIN_PW);
    n->inbound.password_given = true;
    assert_int_equal(tl_store_number_create(f->s, n, &err), 0);

    /* sanity: the probe does find what is stored in clear */
    assert_true(at_rest_contains(f, "acme_trunk"));
    assert_false(at_rest_contains(f, PLAIN_PW));

    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);
    assert_string_equal(sec->outbound.password, PLAIN_PW);
    assert_string_equal(sec->inbound.password, "INBOUND-" PLAIN_PW);
    assert_string_equal(sec->workspace_id, ws);
    assert_int_equal(tl_store_number_secrets(f->s, "+490000000", sec), ENOENT);

    /* after a checkpoint into the main file as well */
    tl_store_close(f->s);
    f->s = NULL;
    assert_false(at_rest_contains(f, PLAIN_PW));
    assert_true(at_rest_contains(f, "acme_trunk"));

    /* a sealed password moved to another row does not open there */
    struct tl_store *s2 = NULL;
    assert_int_equal(tl_store_open(&s2, f->db, f->key, &err), 0);
    f->s = s2;
    add_number(f->s, ws, "+493099999999", NULL, NULL);
    assert_int_equal(test_sql_exec(f->db, "UPDATE phone_numbers SET outbound_password = (SELECT "
                                          "outbound_password FROM phone_numbers WHERE number = "
                                          "'+493012345678') WHERE number = '+493099999999'"),
                     0);
    assert_int_equal(tl_store_number_secrets(f->s, "+493099999999", sec), EIO);
    assert_int_equal(tl_store_number_secrets(f->s, "+493012345678", sec), 0);

    /* the wrong master key opens nothing: refused at open now (test_wrong_key_refused),
     * and the sealed value itself still does not open with it */
    uint8_t other_key[32];
    memcpy(other_key, f->key, 32);
    other_key[0] ^= 1;
    uint8_t pw[TL_PASSWORD_MAX];
    size_t pwl = 0;
    const struct tl_db_ops *ops = tl_db_backend_for(f->db);
    struct tl_db *h = NULL;
    struct tl_db_stmt *q = NULL;
    char msg[256];
    assert_int_equal(ops->open(&h, f->db, NULL, msg, sizeof msg), 0);
    assert_int_equal(tl_db_prepare(h,
                                   "SELECT id, outbound_password FROM phone_numbers WHERE "
                                   "number = '+493012345678'",
                                   &q),
                     0);
    assert_int_equal(tl_db_step(q), TL_DB_ROW);
    char ad[80];
    snprintf(ad, sizeof ad, "%s:outbound_password", tl_db_column_text(q, 0));
    const uint8_t *blob = tl_db_column_blob(q, 1);
    size_t bl = (size_t)tl_db_column_bytes(q, 1);
    assert_int_equal(tl_unseal(f->key, ad, blob, bl, pw, sizeof pw, &pwl), 0);
    assert_int_equal(tl_unseal(other_key, ad, blob, bl, pw, sizeof pw, &pwl), EBADMSG);
    tl_db_finalize(q);
    ops->close(h);
    free(n);
    free(sec);
}

/* ---- the master key check (issue 13: many nodes, one database) ---- */

/* what "nothing was written" compares: the SQLite file's bytes, or in PostgreSQL a digest
 * of the key check, the schema version and the workspaces */
static size_t read_file(const char *path, char *buf, size_t cap)
{
    if (test_pg()) {
        test_sql_row(path,
                     "SELECT md5((SELECT string_agg(name || encode(value, 'hex'), ',') FROM "
                     "store_meta) || (SELECT version FROM trunkline_schema)::text || (SELECT "
                     "string_agg(id || updated_at::text, ',') FROM workspaces))",
                     buf, cap);
        return strlen(buf);
    }
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

static void test_wrong_key_refused(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    char ws[TL_ID_MAX], id_a[TL_KEY_ID_LEN + 1], id_b[TL_KEY_ID_LEN + 1];
    uint8_t key_b[32];

    /* setup opened the database with f->key: the check is there already */
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM store_meta WHERE name = "
                                    "'" TL_STORE_META_KEY_CHECK "'"),
                     1);
    make_ws(f->s, TL_PLAN_PROFESSIONAL, ws);
    tl_store_close(f->s);
    f->s = NULL;

    static char before[1 << 20], after[1 << 20];
    size_t nb = read_file(f->db, before, sizeof before);
    assert_true(nb > 0 && nb < sizeof before);

    memcpy(key_b, f->key, 32);
    key_b[31] ^= 0x80;
    tl_master_key_id(f->key, id_a);
    tl_master_key_id(key_b, id_b);
    assert_string_not_equal(id_a, id_b);
    struct tl_store *s = NULL;
    assert_int_equal(tl_store_open(&s, f->db, key_b, &err), EKEYREJECTED);
    assert_null(s);
    /* the message names both ids, the database's first */
    char *pa = strstr(err.message, id_a), *pb = strstr(err.message, id_b);
    assert_non_null(pa);
    assert_non_null(pb);
    assert_true(pa < pb);
    assert_non_null(strstr(err.message, "wrong master key"));
    /* and nothing was written */
    size_t na = read_file(f->db, after, sizeof after);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb);

    /* the right key still opens it, and the data is there */
    assert_int_equal(tl_store_open(&f->s, f->db, f->key, &err), 0);
    struct tl_workspace w;
    assert_int_equal(tl_store_workspace_get(f->s, ws, &w), 0);

    /* a damaged check refuses too (it cannot tell which key is right) */
    tl_store_close(f->s);
    f->s = NULL;
    sql_int(f->db, test_pg() ? "UPDATE store_meta SET value = '\\x00'::bytea WHERE name = "
                               "'" TL_STORE_META_KEY_CHECK "'"
                             : "UPDATE store_meta SET value = x'00' WHERE name = "
                               "'" TL_STORE_META_KEY_CHECK "'");
    assert_int_equal(tl_store_open(&s, f->db, f->key, &err), EKEYREJECTED);
    assert_non_null(strstr(err.message, "unknown"));
}

static void test_key_check_after_upgrade(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_store *s = NULL;
    char db[TEST_TARGET_MAX];
    uint8_t key_b[32];
    memcpy(key_b, f->key, 32);
    key_b[0] ^= 1;

    /* a database from before store_meta, with a sealed trunk password in it */
    assert_int_equal(test_target(f->dir, "v8", db, sizeof db), 0);
    assert_int_equal(tl_store_open_at(&s, db, f->key, 8, &err), 0);
    char ws[TL_ID_MAX];
    make_ws(s, TL_PLAN_PROFESSIONAL, ws);
    struct tl_phone_number *n = new_number(ws, "+493012345678");
    strcpy(n->outbound.username, "acme_trunk");
    strcpy(n->outbound.password, "pw-of-the-old-key");
    n->outbound.password_given = true;
    assert_int_equal(tl_store_number_create(s, n, &err), 0);
    free(n);
    tl_store_close(s);
    assert_int_equal(sql_int(db, test_pg() ? "SELECT count(*) FROM information_schema.tables "
                                             "WHERE table_schema = current_schema() AND "
                                             "table_name = 'store_meta'"
                                           : "SELECT count(*) FROM sqlite_master WHERE name = "
                                             "'store_meta'"),
                     0);
    /* a wrong key at the upgrade: the password does not open, so no check is written for
     * that key (else the right key would be refused from then on) */
    s = NULL;
    assert_int_equal(tl_store_open(&s, db, key_b, &err), EKEYREJECTED);
    assert_null(s);
    assert_non_null(strstr(err.message, "trunk passwords do not open"));
    assert_int_equal(sql_int(db, "SELECT count(*) FROM store_meta"), 0);
    /* the first open after the upgrade with the right key writes the check */
    assert_int_equal(tl_store_open(&s, db, f->key, &err), 0);
    tl_store_close(s);
    s = NULL;
    assert_int_equal(sql_int(db, "SELECT count(*) FROM store_meta"), 1);
    assert_int_equal(tl_store_open(&s, db, key_b, &err), EKEYREJECTED);
    assert_null(s);
    /* an older target skips the check only while there is no store_meta to hold it */
    assert_int_equal(tl_store_open_at(&s, db, key_b, 8, &err), EKEYREJECTED);
    assert_int_equal(tl_store_open(&s, db, f->key, &err), 0);
    tl_store_close(s);
    test_target_drop(db);
}

static void test_key_check_blob(void **state)
{
    (void)state;
    uint8_t ka[32] = {1}, kb[32] = {2}, check[TL_KEY_CHECK_LEN];
    char found[TL_KEY_ID_LEN + 1], id_a[TL_KEY_ID_LEN + 1];
    assert_int_equal(tl_key_check_make(ka, check), 0);
    tl_master_key_id(ka, id_a);
    assert_memory_equal(check, id_a, TL_KEY_ID_LEN);
    assert_int_equal(tl_key_check_verify(ka, check, sizeof check, found), 0);
    assert_string_equal(found, id_a);
    assert_int_equal(tl_key_check_verify(kb, check, sizeof check, found), EBADMSG);
    assert_string_equal(found, id_a);
    /* the id in clear is bound to the sealed part: another id does not verify */
    check[0] = check[0] == 'a' ? 'b' : 'a';
    assert_int_equal(tl_key_check_verify(ka, check, sizeof check, found), EBADMSG);
    assert_int_equal(tl_key_check_verify(ka, check, sizeof check - 1, found), EBADMSG);
    assert_string_equal(found, "unknown");
}

/* ---- open, migrations ---- */

static void test_open_settings(void **state)
{
    struct fx *f = *state;
    struct stat st;

    assert_int_equal(tl_store_ping(f->s), 0);
    assert_int_equal(tl_store_schema_version(f->s), tl_store_latest_version());
    assert_true(tl_store_latest_version() >= 2);
    assert_int_equal(sql_int(f->db, VERSION_SQL), tl_store_latest_version());
    if (test_pg()) {
        assert_string_equal(tl_store_backend(f->s), "postgresql");
        return;
    }
    assert_string_equal(tl_store_backend(f->s), "sqlite");
    assert_int_equal(stat(f->db, &st), 0);
    assert_int_equal(st.st_mode & 077, 0); /* sealed secrets and token hashes: owner only */
    /* WAL is a property of the file; check it from an independent connection */
    char mode[16];
    test_sql_row(f->db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
}

static void test_migration_keeps_data(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_store *s = NULL;
    struct tl_workspace w = {0}, got;
    char db[TEST_TARGET_MAX], secret[TL_TOKEN_MAX + 1];
    struct tl_token t = {.role = TL_ROLE_OPERATOR}, tg;

    assert_int_equal(test_target(f->dir, "old", db, sizeof db), 0);
    assert_int_equal(tl_store_open_at(&s, db, f->key, 1, &err), 0);
    assert_int_equal(tl_store_schema_version(s), 1);
    assert_int_equal(sql_int(db, VERSION_SQL), 1);
    /* v1 has no last_used_at column and no agent index */
    assert_int_equal(sql_int(db, test_pg() ? "SELECT count(*) FROM information_schema.columns "
                                             "WHERE table_schema = current_schema() AND "
                                             "table_name = 'tokens' AND column_name = "
                                             "'last_used_at'"
                                           : "SELECT count(*) FROM pragma_table_info('tokens') "
                                             "WHERE name = 'last_used_at'"),
                     0);
    strcpy(w.name, "Old Corp");
    w.plan = TL_PLAN_PROFESSIONAL;
    assert_int_equal(tl_store_workspace_create(s, &w, &err), 0);
    add_number(s, w.id, "+15551234567", NULL, NULL);
    strcpy(t.name, "ops");
    assert_int_equal(tl_store_token_create(s, &t, secret, &err), 0);
    assert_int_equal(tl_store_token_auth(s, secret, &tg), 0); /* works on v1 too */
    tl_store_close(s);

    s = NULL;
    assert_int_equal(tl_store_open(&s, db, f->key, &err), 0);
    assert_int_equal(tl_store_schema_version(s), tl_store_latest_version());
    assert_int_equal(sql_int(db, VERSION_SQL), tl_store_latest_version());
    assert_int_equal(tl_store_workspace_get(s, w.id, &got), 0);
    assert_string_equal(got.name, "Old Corp");
    assert_int_equal(count_numbers(s, w.id, NULL, NULL), 1);
    assert_int_equal(tl_store_token_auth(s, secret, &tg), 0);
    assert_string_equal(tg.id, t.id);
    assert_int_equal(sql_int(db, test_pg() ? "SELECT count(*) FROM pg_indexes WHERE schemaname = "
                                             "current_schema() AND indexname = "
                                             "'phone_numbers_agent'"
                                           : "SELECT count(*) FROM sqlite_master WHERE type = "
                                             "'index' AND name = 'phone_numbers_agent'"),
                     1);
    assert_true(sql_int(db, "SELECT last_used_at FROM tokens") > 0);
    tl_store_close(s);

    /* opening an up-to-date database at an older target changes nothing */
    assert_int_equal(tl_store_open_at(&s, db, f->key, 1, &err), 0);
    assert_int_equal(tl_store_schema_version(s), tl_store_latest_version());
    tl_store_close(s);
    assert_int_equal(tl_store_open_at(&s, db, f->key, 0, &err), EINVAL);
    assert_null(s);

    /* v3 → v4: a call record written before the drop counters keeps its figures and reads
     * 0 drops */
    char db3[TEST_TARGET_MAX];
    assert_int_equal(test_target(f->dir, "v3", db3, sizeof db3), 0);
    assert_int_equal(tl_store_open_at(&s, db3, f->key, 3, &err), 0);
    tl_store_close(s);
    sql_int(db3, "INSERT INTO calls (id, workspace_id, direction, created_at, packets_received) "
                 "VALUES ('ca_00000000000000000000000003', 'ws_00000000000000000000000003', "
                 "'inbound', 1, 42)");
    assert_int_equal(tl_store_open(&s, db3, f->key, &err), 0);
    struct tl_call_record *cr = calloc(1, sizeof *cr);
    assert_int_equal(
        tl_store_call_get(s, "ws_00000000000000000000000003", "ca_00000000000000000000000003", cr),
        0);
    assert_int_equal(cr->packets_received, 42);
    assert_int_equal(cr->dropped_source + cr->dropped_auth + cr->dropped_malformed +
                         cr->dropped_pt + cr->dropped_early,
                     0);
    free(cr);
    tl_store_close(s);
    s = NULL;
    test_target_drop(db3);

    /* v5 → v6: call records get the status their times imply (an answered call completed,
     * a carrier's CANCEL canceled, other unanswered ends failed, open rows still going) */
    char db5[TEST_TARGET_MAX];
    assert_int_equal(test_target(f->dir, "v5", db5, sizeof db5), 0);
    assert_int_equal(tl_store_open_at(&s, db5, f->key, 5, &err), 0);
    tl_store_close(s);
    static const struct {
        const char *id, *times, *reason, *want;
    } old5[] = {
        {"ca_00000000000000000000000051", "10, 20", "bye_received", "completed"},
        {"ca_00000000000000000000000052", "NULL, 20", "canceled", "canceled"},
        {"ca_00000000000000000000000053", "NULL, 20", "agent_unreachable", "failed"},
        {"ca_00000000000000000000000054", "10, NULL", "", "in_progress"},
        {"ca_00000000000000000000000055", "NULL, NULL", "", "ringing"},
    };
    for (size_t i = 0; i < sizeof old5 / sizeof old5[0]; i++) {
        char q[400];
        snprintf(q, sizeof q,
                 "INSERT INTO calls (id, workspace_id, direction, created_at, answered_at, "
                 "ended_at, end_reason) VALUES ('%s', 'ws_00000000000000000000000005', "
                 "'inbound', 1, %s, '%s')",
                 old5[i].id, old5[i].times, old5[i].reason);
        sql_int(db5, q);
    }
    assert_int_equal(tl_store_open(&s, db5, f->key, &err), 0);
    cr = calloc(1, sizeof *cr);
    for (size_t i = 0; i < sizeof old5 / sizeof old5[0]; i++) {
        assert_int_equal(tl_store_call_get(s, "ws_00000000000000000000000005", old5[i].id, cr), 0);
        assert_string_equal(tl_call_status_name(cr->status), old5[i].want);
        assert_string_equal(cr->sip_reason, "");
        assert_string_equal(cr->hint, "");
    }
    free(cr);
    tl_store_close(s);
    s = NULL;
    test_target_drop(db5);

    test_target_drop(db);
}

static void test_newer_schema_refused(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    struct tl_store *s = (struct tl_store *)1;
    char expect[128];

    tl_store_close(f->s);
    f->s = NULL;
    assert_int_equal(test_sql_exec(f->db, test_pg() ? "UPDATE trunkline_schema SET version = 999"
                                                    : "PRAGMA user_version = 999"),
                     0);

    assert_int_equal(tl_store_open(&s, f->db, f->key, &err), EINVAL);
    assert_null(s);
    snprintf(expect, sizeof expect,
             "database schema v999 is newer than this trunkline (v%d): upgrade trunkline",
             tl_store_latest_version());
    assert_string_equal(err.message, expect);
    /* and the file is left as it was */
    assert_int_equal(sql_int(f->db, VERSION_SQL), 999);
}

/* ---- concurrency: the store is shared by the API threads ---- */

struct worker {
    struct tl_store *s;
    const char *ws;
    int base;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 10; i++) {
        char e164[32];
        struct tl_phone_number *n;
        struct tl_err err = {0};
        snprintf(e164, sizeof e164, "+1555%03d%04d", w->base, i);
        n = new_number(w->ws, e164);
        if (tl_store_number_create(w->s, n, &err) != 0)
            w->failures++;
        /* everyone also races for one shared number: exactly one may win */
        strcpy(n->number, "+15559999999");
        n->id[0] = '\0';
        int rc = tl_store_number_create(w->s, n, &err);
        if (rc != 0 && rc != EEXIST)
            w->failures++;
        free(n);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    struct fx *f = *state;
    char ws[TL_ID_MAX];
    pthread_t th[4];
    struct worker w[4];

    make_ws(f->s, TL_PLAN_ENTERPRISE, ws);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.s = f->s, .ws = ws, .base = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    assert_int_equal(sql_int(f->db, "SELECT count(*) FROM phone_numbers"), 41);
}

/* ---- the store setting (target.c) ---- */

static void test_store_target(void **state)
{
    struct fx *f = *state;
    struct tl_err err = {0};
    char t[512], pw[TL_STORE_PASSWORD_MAX], file[TEST_TARGET_MAX + 16];

    unsetenv("TRUNKLINE_STORE_PASSWORD");
    assert_int_equal(tl_store_target("", "/srv/tl", "", t, sizeof t, pw, sizeof pw, &err), 0);
    assert_string_equal(t, "/srv/tl/trunkline.db");
    assert_int_equal(tl_store_target("/data/x=1.db", "/srv", "", t, sizeof t, pw, sizeof pw, &err),
                     0);
    assert_true(tl_db_backend_for(t) == &tl_db_sqlite);
    assert_int_equal(
        tl_store_target("postgresql://tl@db:5432/tl", "/srv", "", t, sizeof t, pw, sizeof pw, &err),
        0);
    assert_true(tl_db_backend_for(t) == &tl_db_pg);
    assert_string_equal(pw, "");
    setenv("TRUNKLINE_STORE_PASSWORD", "env-pw", 1);
    assert_int_equal(tl_store_target("host=/run/postgresql dbname=tl", "/srv", "", t, sizeof t, pw,
                                     sizeof pw, &err),
                     0);
    assert_true(tl_db_backend_for(t) == &tl_db_pg);
    assert_string_equal(pw, "env-pw");
    unsetenv("TRUNKLINE_STORE_PASSWORD");

    /* a password in the setting, in any of libpq's spellings, is refused */
    static const char *const bad[] = {
        "postgresql://tl:pw@db/tl",          "postgres://tl:pw@db:5432/tl?sslmode=require",
        "postgresql://tl@db/tl?password=pw", "host=db dbname=tl password=pw",
        "host=db dbname=tl PASSWORD = pw",   "host=db sslpassword=pw",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tl_store_target(bad[i], "/srv", "", t, sizeof t, pw, sizeof pw, &err),
                         EINVAL);
        assert_non_null(strstr(err.message, "store_password_file"));
        assert_null(strstr(err.message, "pw@"));
    }

    /* the password file: owner-only, its final newline not part of the password */
    snprintf(file, sizeof file, "%s/db.password", f->dir);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fputs("file-pw\n", fp);
    fclose(fp);
    assert_int_equal(chmod(file, 0600), 0);
    setenv("TRUNKLINE_STORE_PASSWORD", "env-pw", 1); /* the file wins */
    assert_int_equal(
        tl_store_target("postgresql://tl@db/tl", "/srv", file, t, sizeof t, pw, sizeof pw, &err),
        0);
    unsetenv("TRUNKLINE_STORE_PASSWORD");
    assert_string_equal(pw, "file-pw");
    assert_int_equal(chmod(file, 0640), 0);
    assert_int_equal(
        tl_store_target("postgresql://tl@db/tl", "/srv", file, t, sizeof t, pw, sizeof pw, &err),
        EPERM);
    assert_non_null(strstr(err.message, "chmod 600"));
    assert_string_equal(pw, "");
    unlink(file);
}

/* ---- the backend interface itself (db.h), on the backend under test ---- */

static void test_db_backend(void **state)
{
    struct fx *f = *state;
    const struct tl_db_ops *ops = tl_db_backend_for(f->db);
    struct tl_db *db = NULL;
    struct tl_db_stmt *st = NULL;
    char msg[256];

    assert_string_equal(ops->name, test_pg() ? "postgresql" : "sqlite");
    assert_int_equal(ops->open(&db, f->db, NULL, msg, sizeof msg), 0);

    /* placeholders: numbered, repeated, out of order; a ? inside a quoted literal (with a
     * doubled quote before it) is text, not a parameter */
    assert_int_equal(tl_db_prepare(db, "SELECT 'it''s ?1 or ?', ?2, ?1, ?2 || 'x'", &st), 0);
    assert_int_equal(tl_db_bind_text(st, 1, "one") || tl_db_bind_text(st, 2, "two"), 0);
    assert_int_equal(tl_db_step(st), TL_DB_ROW);
    assert_int_equal(tl_db_column_count(st), 4);
    assert_string_equal(tl_db_column_text(st, 0), "it's ?1 or ?");
    assert_string_equal(tl_db_column_text(st, 1), "two");
    assert_string_equal(tl_db_column_text(st, 2), "one");
    assert_string_equal(tl_db_column_text(st, 3), "twox");
    assert_int_equal(tl_db_step(st), TL_DB_DONE);
    tl_db_finalize(st);

    /* values round-trip exactly: int64 extremes, a double, a blob with NUL bytes, NULL */
    static const uint8_t blob[] = {0, 1, 0xff, 0, '\\', 'x', 0};
    assert_int_equal(tl_db_exec(db, test_pg() ? "CREATE TABLE t_db (i BIGINT, d DOUBLE PRECISION, "
                                                "b BYTEA, s TEXT, n BIGINT)"
                                              : "CREATE TABLE t_db (i INTEGER, d REAL, b BLOB, "
                                                "s TEXT, n INTEGER)"),
                     0);
    assert_int_equal(tl_db_prepare(db, "INSERT INTO t_db VALUES (?1, ?2, ?3, ?4, ?5)", &st), 0);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(tl_db_bind_int64(st, 1, k ? INT64_MIN : INT64_MAX) ||
                             tl_db_bind_double(st, 2, -1.25) ||
                             tl_db_bind_blob(st, 3, blob, sizeof blob) ||
                             tl_db_bind_text(st, 4, "\xc3\xa9t\xc3\xa9") || tl_db_bind_null(st, 5),
                         0);
        assert_int_equal(tl_db_step(st), TL_DB_DONE);
        assert_int_equal(tl_db_changes(db), 1);
        tl_db_reset(st);
    }
    tl_db_finalize(st);
    assert_int_equal(tl_db_prepare(db, "SELECT i, d, b, s, n, n IS NULL FROM t_db ORDER BY i", &st),
                     0);
    assert_int_equal(tl_db_step(st), TL_DB_ROW);
    assert_true(tl_db_column_int64(st, 0) == INT64_MIN);
    assert_true(tl_db_column_double(st, 1) == -1.25);
    assert_int_equal(tl_db_column_bytes(st, 2), sizeof blob);
    assert_memory_equal(tl_db_column_blob(st, 2), blob, sizeof blob);
    assert_string_equal(tl_db_column_text(st, 3), "\xc3\xa9t\xc3\xa9");
    assert_true(tl_db_column_is_null(st, 4));
    assert_null(tl_db_column_text(st, 4));
    assert_int_equal(tl_db_column_int64(st, 4), 0);
    assert_int_equal(tl_db_column_int64(st, 5), 1); /* a boolean reads 1 */
    assert_int_equal(tl_db_step(st), TL_DB_ROW);
    assert_true(tl_db_column_int64(st, 0) == INT64_MAX);
    assert_int_equal(tl_db_step(st), TL_DB_DONE);
    tl_db_finalize(st);

    /* constraint violations are classified alike (the API's 409s depend on it) */
    char ws[TL_ID_MAX], ag[TL_ID_MAX];
    make_ws(f->s, TL_PLAN_ENTERPRISE, ws);
    make_agent(f->s, ws, ag);
    add_number(f->s, ws, "+493012345678", ag, NULL);
    char q[512];
    snprintf(q, sizeof q,
             "INSERT INTO phone_numbers (id, workspace_id, number, source, outbound_json, "
             "created_at, updated_at) VALUES (?1, '%s', ?2, 'sip_trunk', '{}', 1, 1)",
             ws);
    assert_int_equal(tl_db_prepare(db, q, &st), 0);
    assert_int_equal(tl_db_bind_text(st, 1, "pn_dup") || tl_db_bind_text(st, 2, "+493012345678"),
                     0);
    assert_int_equal(tl_db_step(st), TL_DB_E_UNIQUE);
    assert_int_equal(tl_db_last_error(db), TL_DB_E_UNIQUE);
    tl_db_finalize(st);
    assert_int_equal(tl_db_prepare(db,
                                   "INSERT INTO agents (id, workspace_id, name, kind, created_at, "
                                   "updated_at) VALUES ('ag_x', 'ws_nobody', 'x', 'builtin', 1, 1)",
                                   &st),
                     0);
    assert_int_equal(tl_db_step(st), TL_DB_E_FOREIGN_KEY);
    tl_db_finalize(st);
    /* an agent a number points at (what agent_delete answers 409 for, should its count race) */
    assert_int_equal(tl_db_prepare(db, "DELETE FROM agents WHERE id = ?1", &st), 0);
    assert_int_equal(tl_db_bind_text(st, 1, ag), 0);
    assert_int_equal(tl_db_step(st), TL_DB_E_FOREIGN_KEY);
    tl_db_finalize(st);
    assert_int_equal(tl_db_prepare(db,
                                   "INSERT INTO tokens (id, role, name, prefix, hash, created_at) "
                                   "VALUES ('tk_x', 'operator', 'x', 'x', ?1, 1)",
                                   &st),
                     0);
    assert_int_equal(tl_db_bind_blob(st, 1, blob, sizeof blob), 0); /* not 32 bytes */
    assert_int_equal(tl_db_step(st), TL_DB_E_CHECK);
    tl_db_finalize(st);

    /* a rolled-back transaction leaves nothing; a failed one does not commit */
    assert_int_equal(tl_db_begin(db), 0);
    assert_int_equal(tl_db_exec(db, "DELETE FROM t_db"), 0);
    tl_db_rollback(db);
    assert_int_equal(test_sql_row(f->db, "SELECT count(*) FROM t_db", NULL, 0), 2);
    assert_int_equal(tl_db_exec(db, "DROP TABLE t_db"), 0);
    ops->close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_db_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_target, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_create_makes_echo_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_pagination_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_list_callback_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_search_and_latest_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_create_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_get_and_tenancy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_replace_password_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_set_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_destinations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_release_vs_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_never_in_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_check_after_upgrade, setup, teardown),
        cmocka_unit_test(test_key_check_blob),
        cmocka_unit_test_setup_teardown(test_open_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
