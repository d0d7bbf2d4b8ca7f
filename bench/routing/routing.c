/* bench/routing: lookup latency of the routing cache (src/call/routing.c) while the API
 * thread updates it, with a million numbers (issue 11 item 9).
 *
 * The loop thread's view: one thread looks random numbers up back to back and records
 * each lookup's latency; another thread plays the API: agent updates (a scan of every
 * number for the agent's, then 1,000 refreshes), plan changes of a small workspace (a scan,
 * then 10 refreshes), and new numbers past the table's next growth. Printed per phase:
 * lookups, p50, p99, p99.9, max, and how many took over 1 ms and over 10 ms.
 *
 * The numbers are cloned in SQL from one made through the store (no fsync per number),
 * then loaded by tl_routing_open as at a daemon's start. Needs about 2 GiB of memory and
 * a few minutes; --numbers for a smaller run.
 *
 *   make bench-routing && build/bench-routing [--numbers 1000000] [--extra 100000]
 *                                             [--seconds 10] */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "call/routing.h"
#include "store/store.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench-routing: %s: %d (%s)\n", what, rc, strerror(rc > 0 ? rc : EIO));
    exit(1);
}

#define MAX_SAMPLES (64u * 1024 * 1024)

struct phase {
    const char *name;
    uint32_t *ns; /* latencies, capped at UINT32_MAX ns */
    size_t n;
};

static struct tl_routing *R;
static long N_NUMBERS;
static atomic_int cur_phase = -1; /* -1: none, 2: stop */
static struct phase phases[2] = {{"idle", NULL, 0}, {"updates", NULL, 0}};

static void *lookups(void *arg)
{
    (void)arg;
    struct tl_route *rt = malloc(sizeof *rt);
    uint64_t x = 88172645463325252ull;
    char e164[TL_E164_MAX + 1];
    for (;;) {
        int ph = atomic_load(&cur_phase);
        if (ph == 2)
            break;
        if (ph < 0) {
            usleep(1000);
            continue;
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(e164, sizeof e164, "+4930%08ld", (long)(x % (uint64_t)N_NUMBERS));
        int64_t t0 = now_ns();
        int rc = tl_routing_lookup(R, e164, rt);
        int64_t d = now_ns() - t0;
        if (rc)
            die("lookup of a loaded number", rc);
        struct phase *p = &phases[ph];
        if (p->n < MAX_SAMPLES)
            p->ns[p->n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
    }
    free(rt);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void report(struct phase *p)
{
    qsort(p->ns, p->n, sizeof *p->ns, cmp_u32);
    size_t over1 = 0, over10 = 0;
    for (size_t i = 0; i < p->n; i++) {
        over1 += p->ns[i] > 1000000;
        over10 += p->ns[i] > 10000000;
    }
#define PCT(q) (p->n ? p->ns[(size_t)((double)(p->n - 1) * (q))] / 1000.0 : 0)
    printf("%-8s %10zu %9.1f %9.1f %9.1f %10.1f %8zu %8zu\n", p->name, p->n, PCT(0.5), PCT(0.99),
           PCT(0.999), p->n ? p->ns[p->n - 1] / 1000.0 : 0, over1, over10);
}

static void sql(sqlite3 *db, const char *q)
{
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "bench-routing: SQL failed: %s\n%s\n", msg, q);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    long extra = 100000;
    int seconds = 10;
    N_NUMBERS = 1000000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--numbers"))
            N_NUMBERS = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--extra"))
            extra = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
    }
    if (N_NUMBERS < 2000 || seconds < 1)
        die("--numbers at least 2000, --seconds at least 1", EINVAL);
    if (sodium_init() < 0)
        die("sodium_init", EIO);

    char dir[] = "/tmp/bench_routing_XXXXXX", db[128];
    if (!mkdtemp(dir))
        die("mkdtemp", errno);
    snprintf(db, sizeof db, "%s/trunkline.db", dir);
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    struct tl_store *s;
    struct tl_err err = {0};
    int rc;
    if ((rc = tl_store_open(&s, db, key, &err)))
        die(err.message, rc);

    /* W1: the million numbers, agent A for all but 1,000 (agent B's); W2: 10 numbers */
    struct tl_workspace w1 = {.plan = TL_PLAN_PROFESSIONAL}, w2 = {.plan = TL_PLAN_PROFESSIONAL};
    strcpy(w1.name, "big");
    strcpy(w2.name, "small");
    if ((rc = tl_store_workspace_create(s, &w1, &err)) ||
        (rc = tl_store_workspace_create(s, &w2, &err)))
        die(err.message, rc);
    struct tl_agent *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    strcpy(a->workspace_id, w1.id);
    strcpy(a->name, "a");
    a->kind = TL_AGENT_BUILTIN;
    strcpy(a->builtin, "echo");
    *b = *a;
    strcpy(b->name, "b");
    b->kind = TL_AGENT_WEBSOCKET;
    b->builtin[0] = '\0';
    strcpy(b->url, "wss://bots.example/b");
    b->connect_timeout_ms = 5000;
    if ((rc = tl_store_agent_create(s, a, &err)) || (rc = tl_store_agent_create(s, b, &err)))
        die(err.message, rc);
    struct tl_phone_number *n = calloc(1, sizeof *n);
    strcpy(n->workspace_id, w1.id);
    strcpy(n->number, "+493000000000");
    strcpy(n->agent_id, a->id);
    n->source = TL_SOURCE_SIP_TRUNK;
    strcpy(n->outbound.address, "sip.telnyx.com");
    n->outbound.transport = TL_TRANSPORT_TLS;
    n->has_inbound = true;
    n->inbound.transport = TL_TRANSPORT_TLS;
    n->inbound.media_encryption = TL_MEDIA_REQUIRED;
    n->inbound.n_allowed = 1;
    strcpy(n->inbound.allowed_addresses[0], "203.0.113.0/24"); /* no password: clones share
                                                                  no sealed column */
    if ((rc = tl_store_number_create(s, n, &err)))
        die(err.message, rc);

    int64_t t0 = now_ns();
    sqlite3 *raw;
    if (sqlite3_open(db, &raw) != SQLITE_OK)
        die("sqlite3_open", EIO);
    sql(raw, "PRAGMA synchronous=OFF");
    char q[2048];
    /* numbers 1..N-1 of W1 (1..1000 agent B), N..N+extra-1 (inserted now, cached later:
     * the growth phase), and 10 of W2 */
    snprintf(q, sizeof q,
             "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %ld) "
             "INSERT INTO phone_numbers (id, workspace_id, number, label, source, agent_id, "
             "outbound_json, outbound_password, inbound_json, inbound_password, created_at, "
             "updated_at) SELECT printf('pn_%%026d', x), CASE WHEN x > %ld + %ld THEN '%s' "
             "ELSE workspace_id END, printf('+4930%%08d', x), label, source, CASE WHEN x > %ld "
             "+ %ld THEN NULL WHEN x <= 1000 THEN '%s' ELSE agent_id END, outbound_json, NULL, "
             "inbound_json, NULL, created_at, updated_at FROM phone_numbers, c WHERE seq = 1",
             N_NUMBERS + extra + 9, N_NUMBERS - 1, extra, w2.id, N_NUMBERS - 1, extra, b->id);
    sql(raw, "BEGIN");
    sql(raw, q);
    sql(raw, "COMMIT");
    sqlite3_close(raw);
    /* the extra numbers are cached only when the growth phase refreshes them: take them
     * out of the start-up load by loading first with them hidden */
    int64_t t1 = now_ns();
    printf("store: %ld + %ld + 10 numbers cloned in %.1f s\n", N_NUMBERS, extra,
           (double)(t1 - t0) / 1e9);

    if ((rc = tl_routing_open(&R, s)))
        die("tl_routing_open", rc);
    int64_t t2 = now_ns();
    size_t loaded = tl_routing_count(R);
    printf("routing: %zu entries loaded in %.1f s\n", loaded, (double)(t2 - t1) / 1e9);
    /* the extra numbers were loaded too: drop them from the cache again (refresh of a
     * number whose row is gone removes it), so that the update phase adds them back */
    if (sqlite3_open(db, &raw) != SQLITE_OK)
        die("sqlite3_open", EIO);
    snprintf(q, sizeof q,
             "CREATE TABLE hidden AS SELECT * FROM phone_numbers WHERE number >= "
             "printf('+4930%%08d', %ld) AND workspace_id != '%s'",
             N_NUMBERS, w2.id);
    sql(raw, q);
    snprintf(q, sizeof q,
             "DELETE FROM phone_numbers WHERE number >= printf('+4930%%08d', %ld) "
             "AND workspace_id != '%s'",
             N_NUMBERS, w2.id);
    sql(raw, q);
    char e164[TL_E164_MAX + 1];
    for (long i = N_NUMBERS; i < N_NUMBERS + extra; i++) {
        snprintf(e164, sizeof e164, "+4930%08ld", i);
        tl_routing_refresh_number(R, e164);
    }
    sql(raw, "INSERT INTO phone_numbers SELECT * FROM hidden; DROP TABLE hidden");
    printf("routing: %zu entries before the updates (%zu with the extra numbers)\n",
           tl_routing_count(R), loaded);

    for (int i = 0; i < 2; i++)
        phases[i].ns = malloc(MAX_SAMPLES * sizeof(uint32_t));
    pthread_t th;
    pthread_create(&th, NULL, lookups, NULL);

    atomic_store(&cur_phase, 0);
    sleep((unsigned)seconds);

    atomic_store(&cur_phase, 1);
    int64_t end = now_ns() + (int64_t)seconds * 1000000000;
    long agent_updates = 0, plan_changes = 0, added = 0;
    while (now_ns() < end || added < extra) {
        strcpy(b->url, agent_updates % 2 ? "wss://bots.example/b" : "wss://bots.example/c");
        if ((rc = tl_store_agent_update(s, b, NULL, &err)))
            die(err.message, rc);
        agent_updates++;
        w2.plan = w2.plan == TL_PLAN_PROFESSIONAL ? TL_PLAN_ENTERPRISE : TL_PLAN_PROFESSIONAL;
        if ((rc = tl_store_workspace_update(s, &w2, &err)))
            die(err.message, rc);
        plan_changes++;
        /* new numbers, as an import would add them (the hook's refresh of each) */
        for (int k = 0; k < 20000 && added < extra; k++, added++) {
            snprintf(e164, sizeof e164, "+4930%08ld", N_NUMBERS + added);
            tl_routing_refresh_number(R, e164);
        }
    }
    atomic_store(&cur_phase, 2);
    pthread_join(th, NULL);
    printf("updates: %ld agent updates (scan + 1,000 refreshes), %ld plan changes (scan + 10 "
           "refreshes), %ld numbers added; %zu entries at the end\n",
           agent_updates, plan_changes, added, tl_routing_count(R));
    printf("\n%-8s %10s %9s %9s %9s %10s %8s %8s\n", "phase", "lookups", "p50 us", "p99 us",
           "p99.9 us", "max us", ">1ms", ">10ms");
    report(&phases[0]);
    report(&phases[1]);

    tl_routing_close(R);
    tl_store_close(s);
    char p[200];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
    free(a);
    free(b);
    free(n);
    return 0;
}
