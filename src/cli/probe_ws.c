/* cli/probe_ws: `trunkline probe ws`, a WebSocket agent test tool. It runs the gateway's
 * own WebSocket client (agent/ws.h) on a loop of its own, so DNS, the address guard, TLS
 * verification, the upgrade and the framing behave exactly as they will for calls:
 *
 *   trunkline probe ws wss://bot.example.com/stream [--header 'Name: value']...
 *         [--send TEXT]... [--expect N] [--seconds N] [--ca-file PEM]
 *         [--allow-network CIDR]... [--timeout-ms MS] [--dns-server IP:PORT]
 *         [--ping-ms MS] [--pong-ms MS] [--flood BYTES]
 *
 * One greppable line per step ("resolved", "connected", "tls ok", "upgraded 101", each
 * message received, "closed code=… fail=… why=…"). The --send messages go out once open;
 * the connection stays open --seconds (default 1, or 10 with --expect), or until --expect
 * messages arrived, then closes with 1000. Exit: 0 for a clean session, 1 with the reason
 * on the "closed" line otherwise, 2 usage. Header values are never printed. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <uv.h>

#include "agent/ws.h"
#include "core/core.h"
#include "net/guard.h"
#include "net/resolve.h"
#include "net/tls.h"

#define SENDS_MAX      64
#define FLOOD_CHUNK    (64u << 10)
#define PRINT_MAX      120
#define ALLOW_LIST_MAX 2048

struct pws {
    uv_loop_t loop;
    uv_timer_t hold;
    struct tl_ws *ws;
    struct tl_net_resolver *res;
    uint64_t t0;
    const char *sends[SENDS_MAX];
    size_t nsends;
    unsigned long expect, received, hold_ms;
    unsigned long long flood;
    bool send_failed, closing;
    int rc;
    char host[256];
};

static struct pws W;

static unsigned long ms(void)
{
    return (unsigned long)(uv_now(&W.loop) - W.t0);
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout); /* tests and pipes read it line by line, as it happens */
}

static void close_ws(const char *why)
{
    if (W.closing || !W.ws)
        return;
    W.closing = true;
    uv_timer_stop(&W.hold);
    tl_ws_close(W.ws, 1000, why);
}

static void on_hold(uv_timer_t *t)
{
    (void)t;
    close_ws("probe done");
}

static void on_step(struct tl_ws *ws, enum tl_ws_step step, const char *d, void *arg)
{
    (void)ws;
    (void)arg;
    switch (step) {
    case TL_WS_STEP_RESOLVED:
        out("resolved %s: %s (%lu ms)\n", W.host, d, ms());
        return;
    case TL_WS_STEP_REFUSED:
        out("guard refused %s\n", d);
        return;
    case TL_WS_STEP_CONNECTING:
        out("connecting %s\n", d);
        return;
    case TL_WS_STEP_CONNECT_FAILED:
        out("connect failed: %s (%lu ms)\n", d, ms());
        return;
    case TL_WS_STEP_CONNECTED:
        out("connected %s (%lu ms)\n", d, ms());
        return;
    case TL_WS_STEP_TLS:
        out("tls ok: certificate verified for %s (%lu ms)\n", d, ms());
        return;
    case TL_WS_STEP_UPGRADED:
        out("upgraded %s (%lu ms)\n", d, ms());
        return;
    }
}

/* text for one line: printable ASCII, the rest as '.', cut at PRINT_MAX */
static void show(const char *p, size_t n, char *buf)
{
    size_t k = n < PRINT_MAX ? n : PRINT_MAX;
    for (size_t i = 0; i < k; i++)
        buf[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '.';
    strcpy(buf + k, n > k ? "..." : "");
}

static void flood(struct tl_ws *ws)
{
    char *chunk = malloc(FLOOD_CHUNK);
    if (!chunk)
        return;
    memset(chunk, 'x', FLOOD_CHUNK);
    unsigned long long sent = 0;
    int r = 0;
    while (sent < W.flood) {
        size_t n = W.flood - sent < FLOOD_CHUNK ? (size_t)(W.flood - sent) : FLOOD_CHUNK;
        if ((r = tl_ws_send(ws, chunk, n)))
            break;
        sent += n;
    }
    free(chunk);
    if (r) {
        W.send_failed = true;
        out("flood: %llu bytes sent, then the send queue was full (%zu bytes unsent): %s\n", sent,
            tl_ws_queued(ws), r == ENOBUFS ? "ENOBUFS" : strerror(r));
        close_ws("send queue full");
    } else {
        out("flood: %llu bytes sent\n", sent);
    }
}

static void on_open(struct tl_ws *ws, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < W.nsends && !W.closing; i++) {
        size_t n = strlen(W.sends[i]);
        int r = tl_ws_send(ws, W.sends[i], n);
        char buf[PRINT_MAX + 4];
        show(W.sends[i], n, buf);
        if (r) {
            W.send_failed = true;
            out("send refused: %s (%zu bytes unsent)\n", r == ENOBUFS ? "ENOBUFS" : strerror(r),
                tl_ws_queued(ws));
        } else {
            out("sent text %zu bytes: %s\n", n, buf);
        }
    }
    if (W.flood && !W.closing)
        flood(ws);
    if (W.closing)
        return;
    if (W.expect && W.received >= W.expect)
        close_ws("probe done");
    else
        uv_timer_start(&W.hold, on_hold, W.hold_ms, 0);
}

static void on_message(struct tl_ws *ws, const char *p, size_t n, bool binary, void *arg)
{
    (void)ws;
    (void)arg;
    W.received++;
    if (binary) {
        out("received binary %zu bytes\n", n);
    } else {
        char buf[PRINT_MAX + 4];
        show(p, n, buf);
        out("received text %zu bytes: %s\n", n, buf);
    }
    if (W.expect && W.received == W.expect)
        close_ws("probe done");
}

static void on_close(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *why,
                     void *arg)
{
    (void)ws;
    (void)arg;
    W.ws = NULL;
    uv_timer_stop(&W.hold);
    out("closed code=%u fail=%s why=%s (%lu ms)\n", code, tl_ws_fail_name(fail), why, ms());
    if (fail == TL_WS_FAIL_GUARD)
        out("hint: --allow-network ADDRESS/32 lets the probe connect there; the gateway "
            "allows networks with its setting agent_allow_networks\n");
    bool clean = fail == TL_WS_OK && (code == 0 || code == 1000 || code == 1001);
    if (clean && W.expect && W.received < W.expect) {
        out("error: expected %lu messages, received %lu\n", W.expect, W.received);
        clean = false;
    }
    W.rc = clean && !W.send_failed ? 0 : 1;
    /* the loop ends once the resolver's and the connection's handles have closed */
    tl_net_resolver_free(W.res);
    W.res = NULL;
    uv_close((uv_handle_t *)&W.hold, NULL);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trunkline probe ws ws[s]://HOST[:PORT]/PATH [--header 'Name: value']...\n"
               "         [--send TEXT]... [--expect N] [--seconds N] [--ca-file PEM]\n"
               "         [--allow-network CIDR]... [--timeout-ms MS] [--dns-server IP:PORT]\n"
               "         [--ping-ms MS] [--pong-ms MS] [--flood BYTES]\n"
               "exit: 0 clean session, 1 failure (reason on the \"closed\" line), 2 usage\n");
}

static int num(const char *opt, const char *v, unsigned long lo, unsigned long hi,
               unsigned long long *out_v)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || *v == '-' || x < lo || x > hi) {
        fprintf(stderr, "probe ws: %s takes a number (%lu-%lu)\n", opt, lo, hi);
        return 2;
    }
    *out_v = x;
    return 0;
}

int tl_probe_ws_main(int argc, char **argv);
int tl_probe_ws_main(int argc, char **argv)
{
    const char *url = NULL, *ca = NULL, *dns = NULL;
    const char *headers[TL_WS_HEADERS_MAX + 1] = {0};
    size_t nh = 0;
    char allow[ALLOW_LIST_MAX] = "";
    unsigned long long v, timeout = 0, ping = 0, pong = 0, seconds = 0;
    bool have_seconds = false;
    memset(&W, 0, sizeof W);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL()                                                                                      \
    do {                                                                                           \
        if (!val) {                                                                                \
            fprintf(stderr, "probe ws: %s needs a value\n", a);                                    \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--header")) {
            VAL();
            const char *why;
            if (nh == TL_WS_HEADERS_MAX) {
                fprintf(stderr, "probe ws: at most %d --header\n", TL_WS_HEADERS_MAX);
                return 2;
            }
            if (tl_ws_header_check(val, &why)) {
                fprintf(stderr, "probe ws: bad --header: %s\n", why);
                return 2;
            }
            headers[nh++] = val;
        } else if (!strcmp(a, "--send")) {
            VAL();
            if (W.nsends == SENDS_MAX) {
                fprintf(stderr, "probe ws: at most %d --send\n", SENDS_MAX);
                return 2;
            }
            W.sends[W.nsends++] = val;
        } else if (!strcmp(a, "--expect")) {
            VAL();
            if (num(a, val, 1, 1000000, &v))
                return 2;
            W.expect = (unsigned long)v;
        } else if (!strcmp(a, "--seconds")) {
            VAL();
            if (num(a, val, 0, 86400, &seconds))
                return 2;
            have_seconds = true;
        } else if (!strcmp(a, "--ca-file")) {
            VAL();
            ca = val;
        } else if (!strcmp(a, "--dns-server")) {
            VAL();
            dns = val;
        } else if (!strcmp(a, "--allow-network")) {
            VAL();
            size_t l = strlen(allow);
            if (l + strlen(val) + 2 > sizeof allow) {
                fprintf(stderr, "probe ws: too many --allow-network\n");
                return 2;
            }
            snprintf(allow + l, sizeof allow - l, "%s%s", l ? "," : "", val);
        } else if (!strcmp(a, "--timeout-ms")) {
            VAL();
            if (num(a, val, 1, 600000, &timeout))
                return 2;
        } else if (!strcmp(a, "--ping-ms")) {
            VAL();
            if (num(a, val, 1, 3600000, &ping))
                return 2;
        } else if (!strcmp(a, "--pong-ms")) {
            VAL();
            if (num(a, val, 1, 3600000, &pong))
                return 2;
        } else if (!strcmp(a, "--flood")) {
            VAL();
            if (num(a, val, 1, 1ul << 40, &W.flood))
                return 2;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!url && a[0] != '-') {
            url = a;
        } else {
            fprintf(stderr, "probe ws: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
#undef VAL
    }
    struct tl_ws_url u;
    if (!url || tl_ws_url_parse(url, &u)) {
        if (url)
            fprintf(stderr,
                    "probe ws: \"%s\" is not a ws:// or wss:// URL (no user:password@, "
                    "no #fragment)\n",
                    url);
        usage(stderr);
        return 2;
    }
    snprintf(W.host, sizeof W.host, "%s", u.host);
    struct tl_net_guard guard;
    struct tl_err err = {0};
    if (tl_net_guard_parse(&guard, allow, "--allow-network", &err)) {
        fprintf(stderr, "probe ws: %s\n", err.message);
        return 2;
    }
    W.hold_ms = (unsigned long)(have_seconds ? seconds : W.expect ? 10 : 1) * 1000;
    if (sodium_init() < 0)
        return 1;
    tl_log_open(NULL, TL_LOG_TEXT, TL_LOG_WARN);

    struct tl_tls_ctx *tls = NULL;
    int r = tl_tls_ctx_client(&tls, ca);
    if (r) {
        fprintf(stderr, "probe ws: cannot use --ca-file %s: %s\n", ca ? ca : "",
                r == EINVAL ? "not a readable PEM file" : strerror(r));
        return 2;
    }
    uv_loop_init(&W.loop);
    uv_timer_init(&W.loop, &W.hold);
    struct tl_net_resolver_opts ro = {.servers = dns};
    if ((r = tl_net_resolver_alloc(&W.res, &W.loop, &ro))) {
        fprintf(stderr, "probe ws: cannot start DNS: %s\n", strerror(r));
        W.rc = 2;
        goto out;
    }
    struct tl_ws_cfg cfg = {.url = url,
                            .headers = nh ? headers : NULL,
                            .connect_timeout_ms = (unsigned)timeout,
                            .ping_interval_ms = (unsigned)ping,
                            .pong_timeout_ms = (unsigned)pong,
                            .guard = &guard,
                            .resolver = W.res,
                            .tls = tls};
    static const struct tl_ws_cb cb = {
        .on_open = on_open, .on_message = on_message, .on_close = on_close, .on_step = on_step};
    W.t0 = uv_now(&W.loop);
    W.rc = 1;
    if ((r = tl_ws_connect(&W.ws, &W.loop, &cfg, &cb, NULL))) {
        out("closed code=0 fail=%s why=%s\n", r == EINVAL ? "url" : "io",
            r == EINVAL ? "the URL or a header cannot be used" : strerror(r));
        W.ws = NULL;
        goto out;
    }
    uv_run(&W.loop, UV_RUN_DEFAULT);
out:
    if (W.ws)
        tl_ws_abort(W.ws);
    tl_net_resolver_free(W.res);
    if (!uv_is_closing((uv_handle_t *)&W.hold))
        uv_close((uv_handle_t *)&W.hold, NULL);
    uv_run(&W.loop, UV_RUN_DEFAULT);
    uv_loop_close(&W.loop);
    tl_tls_ctx_free(tls);
    fflush(stdout);
    return W.rc;
}
