/* sip/resolve.c: RFC 3263 server location against a real DNS server
 * (tests/integration/dnsserver.py, started here, UDP+TCP on 127.0.0.1), whose query log
 * tells what was asked; plus SRV ordering (RFC 2782) with a seeded PRNG, the failover
 * helpers, argument checks, timeouts against a socket that never answers, and the
 * cancel/free contracts. Each DNS case runs on its own loop, which must close clean. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "net/resolve.h"

extern char **environ;

#define SERVER_SCRIPT "tests/integration/dnsserver.py"
#define PYTHON        "/usr/bin/python3"

/* The zone, with ' for " so it reads as JSON. */
static const char zone_json[] =
    "{"
    /* TLS: NAPTR -> SRV -> A/AAAA. Records for other transports, a terminal "a" flag and a
     * regexp record must be skipped; SIPS+D2T order 10 beats SIP+D2T order 20. */
    "'tls.example.test': {'NAPTR': ["
    "  [20, 10, 's', 'SIP+D2T', '', '_sip._tcp.tls.example.test'],"
    "  [10, 10, 's', 'SIPS+D2T', '', '_sips._tcp.tls.example.test'],"
    "  [5, 10, 's', 'SIP+D2U', '', '_sip._udp.tls.example.test'],"
    "  [1, 1, 'a', 'SIPS+D2T', '', 'wrong-flag.example.test'],"
    "  [1, 2, 's', 'SIPS+D2T', '!^.*$!x!', 'regexp.example.test']]},"
    "'_sips._tcp.tls.example.test': {'SRV': [[10, 0, 5061, 'sbc1.tls.example.test']]},"
    "'_sip._tcp.tls.example.test': {'SRV': [[10, 0, 5060, 'wrong.tls.example.test']]},"
    "'sbc1.tls.example.test': {'A': ['192.0.2.10'], 'AAAA': ['2001:db8::10']},"
    /* two usable NAPTRs: the first one's SRV name is empty, the second one has records */
    "'naptr2.example.test': {'NAPTR': ["
    "  [10, 10, 's', 'SIPS+D2T', '', '_sips._tcp.missing.example.test'],"
    "  [10, 20, 's', 'SIPS+D2T', '', '_sips._tcp.alt.example.test']]},"
    "'_sips._tcp.alt.example.test': {'SRV': [[1, 0, 5063, 'alt-sbc.example.test']]},"
    "'alt-sbc.example.test': {'A': ['192.0.2.15']},"
    /* TCP: no NAPTR, SRV only (the host's own A must not be used) */
    "'tcp.example.test': {'A': ['192.0.2.99']},"
    "'_sip._tcp.tcp.example.test': {'SRV': [[10, 0, 5070, 'sbc.tcp.example.test']]},"
    "'sbc.tcp.example.test': {'A': ['192.0.2.20']},"
    /* two priorities, listed backwards */
    "'_sip._udp.prio.example.test': {'SRV': [[20, 0, 5060, 'backup.prio.example.test'],"
    "                                        [10, 0, 5062, 'primary.prio.example.test']]},"
    "'primary.prio.example.test': {'A': ['192.0.2.31', '192.0.2.32']},"
    "'backup.prio.example.test': {'A': ['192.0.2.41'], 'AAAA': ['2001:db8::41']},"
    /* '.': service decidedly not available, although the host has an A record */
    "'dot.example.test': {'A': ['192.0.2.50']},"
    "'_sip._udp.dot.example.test': {'SRV': [[0, 0, 0, '.']]},"
    /* no NAPTR, no SRV */
    "'aonly.example.test': {'A': ['192.0.2.60']},"
    "'v6.example.test': {'AAAA': ['2001:db8::60']},"
    "'dual.example.test': {'AAAA': ['2001:db8::70'], 'A': ['192.0.2.70']},"
    "'servfail.example.test': {'rcode': 'SERVFAIL'},"
    /* one SRV target never answers, the other does */
    "'_sip._udp.partial.example.test': {'SRV': [[10, 0, 5060, 'dead.partial.example.test'],"
    "                                           [20, 0, 5064, 'ok.partial.example.test']]},"
    "'dead.partial.example.test': {'drop': true},"
    "'ok.partial.example.test': {'A': ['192.0.2.80']},"
    /* two SRV targets with one address: listed once */
    "'_sip._udp.dup.example.test': {'SRV': [[10, 0, 5060, 'd1.dup.example.test'],"
    "                                       [20, 0, 5060, 'd2.dup.example.test']]},"
    "'d1.dup.example.test': {'A': ['192.0.2.90']},"
    "'d2.dup.example.test': {'A': ['192.0.2.90', '192.0.2.91']},"
    /* 20 SRV records: over 512 octets (UDP answer truncated, TCP retry), over the cap of
     * 16; the 16 lowest priorities must be kept */
    "'_sip._udp.many.example.test': {'SRV': [";
#define MANY 20

struct srvproc {
    pid_t pid;
    int in_w; /* our end of the server's stdin: it exits on EOF */
    uint16_t port;
    char dir[64], zone[96], log[96], hosts[96];
};
static struct srvproc S;

/* ---- the DNS server ---- */

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(s, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int group_setup(void **state)
{
    static char zone[16384];
    size_t n = 0;
    n += (size_t)snprintf(zone + n, sizeof(zone) - n, "%s", zone_json);
    for (int i = 1; i <= MANY; i++)
        n += (size_t)snprintf(zone + n, sizeof(zone) - n,
                              "%s[%d, 0, 5060, 'sbc-node-%02d.many.example.test']",
                              i > 1 ? ", " : "", 21 - i, 21 - i);
    n += (size_t)snprintf(zone + n, sizeof(zone) - n, "]}");
    for (int i = 1; i <= MANY; i++)
        n +=
            (size_t)snprintf(zone + n, sizeof(zone) - n,
                             ", 'sbc-node-%02d.many.example.test': {'A': ['198.51.100.%d']}", i, i);
    n += (size_t)snprintf(zone + n, sizeof(zone) - n, "}");
    if (n >= sizeof(zone))
        return -1;
    for (char *p = zone; *p; p++)
        if (*p == '\'')
            *p = '"';

    strcpy(S.dir, "/tmp/tl-resolve-XXXXXX");
    if (!mkdtemp(S.dir))
        return -1;
    snprintf(S.zone, sizeof(S.zone), "%s/zone.json", S.dir);
    snprintf(S.log, sizeof(S.log), "%s/queries.log", S.dir);
    snprintf(S.hosts, sizeof(S.hosts), "%s/hosts", S.dir);
    write_file(S.zone, zone);
    write_file(S.log, "");
    write_file(S.hosts, "# only here, not in DNS\n192.0.2.77 hostsonly.example.test\n");

    if (access(SERVER_SCRIPT, R_OK) != 0) {
        fprintf(stderr, "run from the repository root: %s not found\n", SERVER_SCRIPT);
        return -1;
    }
    int out[2], in[2];
    if (pipe2(out, O_CLOEXEC) || pipe2(in, O_CLOEXEC))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {PYTHON,  SERVER_SCRIPT, "--port",        "0", "--zone", S.zone,
                    "--log", S.log,         "--watch-stdin", NULL};
    int err = posix_spawn(&S.pid, PYTHON, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (err) {
        fprintf(stderr, "spawn %s: %s\n", PYTHON, strerror(err));
        return -1;
    }
    S.in_w = in[1];
    /* no sleeps: the server says when both sockets listen */
    FILE *f = fdopen(out[0], "r");
    char line[64];
    unsigned port = 0;
    if (!f || !fgets(line, sizeof(line), f) || sscanf(line, "ready %u", &port) != 1 || port == 0 ||
        port > 65535) {
        fprintf(stderr, "dnsserver.py did not start (python3-dnslib installed?)\n");
        return -1;
    }
    fclose(f); /* it prints nothing else */
    S.port = (uint16_t)port;
    /* c-ares reads $CARES_HOSTS only for resolvers made with opts.env_hosts */
    setenv("CARES_HOSTS", S.hosts, 1);
    return 0;
}

static int group_teardown(void **state)
{
    if (S.pid > 0) {
        kill(S.pid, SIGTERM);
        waitpid(S.pid, NULL, 0);
        close(S.in_w);
    }
    unlink(S.zone);
    unlink(S.log);
    unlink(S.hosts);
    rmdir(S.dir);
    return 0;
}

static long log_mark(void)
{
    FILE *f = fopen(S.log, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long m = ftell(f);
    fclose(f);
    return m;
}

/* The questions asked since mark, one "<proto> <TYPE> <name>" per line. */
static const char *log_since(long mark)
{
    static char buf[32768];
    FILE *f = fopen(S.log, "r");
    assert_non_null(f);
    fseek(f, mark, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool asked(const char *log, const char *type, const char *name)
{
    char l1[300], l2[300];
    snprintf(l1, sizeof(l1), "udp %s %s\n", type, name);
    snprintf(l2, sizeof(l2), "tcp %s %s\n", type, name);
    return strstr(log, l1) || strstr(log, l2);
}

/* ---- one resolution on a fresh loop ---- */

struct res {
    int calls;
    int err;
    struct tl_net_targets tg;
};

static void on_res(int err, const struct tl_net_targets *tg, void *arg)
{
    struct res *r = arg;
    r->calls++;
    r->err = err;
    if (tg)
        r->tg = *tg;
    else
        memset(&r->tg, 0, sizeof(r->tg));
}

static struct tl_net_resolver_opts opts_for(const char *servers)
{
    struct tl_net_resolver_opts o = {
        .servers = servers, .timeout_ms = 3000, .tries = 2, .seed = 42, .env_hosts = true};
    return o;
}

static char servers[32];

/* Resolves host on its own loop and resolver and checks the loop closes clean. */
static void resolve_with(const struct tl_net_resolver_opts *o, const char *host, uint16_t port,
                         enum tl_net_proto tp, struct res *res, uint64_t *ms)
{
    uv_loop_t loop;
    struct tl_net_resolver *r = NULL;
    memset(res, 0, sizeof(*res));
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, o), 0);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(tl_net_resolve(r, host, port, tp, on_res, res, NULL), 0);
    assert_int_equal(res->calls, 0); /* never from inside tl_net_resolve() */
    uv_run(&loop, UV_RUN_DEFAULT);
    if (ms)
        *ms = (uv_hrtime() - t0) / 1000000;
    assert_int_equal(res->calls, 1);
    tl_net_resolver_free(r);
    assert_int_equal(res->calls, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void resolve(const char *host, uint16_t port, enum tl_net_proto tp, struct res *res)
{
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    struct tl_net_resolver_opts o = opts_for(servers);
    resolve_with(&o, host, port, tp, res, NULL);
}

static void assert_target(const struct tl_net_targets *tg, size_t i, const char *addr,
                          const char *host)
{
    char buf[64];
    assert_true(i < tg->n);
    assert_int_equal(tl_net_target_str(&tg->v[i], buf, sizeof(buf)), 0);
    assert_string_equal(buf, addr);
    if (host)
        assert_string_equal(tg->v[i].host, host);
}

/* ---- DNS cases ---- */

static void test_naptr_srv_a_tls(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("tls.example.test", 0, TL_NET_TLS, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 2);
    assert_int_equal(res.tg.cur, 0);
    assert_string_equal(res.tg.tls_name, "tls.example.test"); /* RFC 5922 §4, not the SRV */
    assert_target(&res.tg, 0, "192.0.2.10:5061", "sbc1.tls.example.test");
    assert_target(&res.tg, 1, "[2001:db8::10]:5061", "sbc1.tls.example.test");
    assert_int_equal(res.tg.v[0].tp, TL_NET_TLS);
    const char *log = log_since(m);
    assert_true(asked(log, "NAPTR", "tls.example.test"));
    assert_true(asked(log, "SRV", "_sips._tcp.tls.example.test"));
    assert_true(asked(log, "A", "sbc1.tls.example.test"));
    assert_true(asked(log, "AAAA", "sbc1.tls.example.test"));
    /* other transports' and filtered records were never followed */
    assert_false(asked(log, "SRV", "_sip._tcp.tls.example.test"));
    assert_false(asked(log, "SRV", "_sip._udp.tls.example.test"));
    assert_false(asked(log, "SRV", "wrong-flag.example.test"));
    assert_false(asked(log, "SRV", "regexp.example.test"));
}

static void test_naptr_next_record(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("naptr2.example.test", 0, TL_NET_TLS, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.15:5063", "alt-sbc.example.test");
    assert_string_equal(res.tg.tls_name, "naptr2.example.test");
    const char *log = log_since(m);
    assert_true(asked(log, "SRV", "_sips._tcp.missing.example.test"));
    assert_true(asked(log, "SRV", "_sips._tcp.alt.example.test"));
    assert_false(asked(log, "SRV", "_sips._tcp.naptr2.example.test"));
}

static void test_srv_only_tcp(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("tcp.example.test", 0, TL_NET_TCP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.20:5070", "sbc.tcp.example.test");
    assert_int_equal(res.tg.v[0].tp, TL_NET_TCP);
    const char *log = log_since(m);
    assert_true(asked(log, "NAPTR", "tcp.example.test"));
    assert_true(asked(log, "SRV", "_sip._tcp.tcp.example.test"));
    assert_false(asked(log, "A", "tcp.example.test")); /* SRV found: no host fallback */
}

static void test_srv_priorities_failover(void **state)
{
    struct res res;
    resolve("prio.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 4);
    assert_target(&res.tg, 0, "192.0.2.31:5062", "primary.prio.example.test");
    assert_target(&res.tg, 1, "192.0.2.32:5062", "primary.prio.example.test");
    assert_target(&res.tg, 2, "192.0.2.41:5060", "backup.prio.example.test");
    assert_target(&res.tg, 3, "[2001:db8::41]:5060", "backup.prio.example.test");
    assert_int_equal(res.tg.v[0].priority, 10);
    assert_int_equal(res.tg.v[2].priority, 20);
    /* RFC 3263 §4.3: the transaction layer walks the list on failure */
    struct tl_net_targets tg = res.tg;
    assert_ptr_equal(tl_net_targets_cur(&tg), &tg.v[0]);
    assert_ptr_equal(tl_net_targets_next(&tg), &tg.v[1]);
    assert_ptr_equal(tl_net_targets_next(&tg), &tg.v[2]);
    assert_ptr_equal(tl_net_targets_next(&tg), &tg.v[3]);
    assert_null(tl_net_targets_next(&tg));
    assert_null(tl_net_targets_cur(&tg));
    assert_null(tl_net_targets_next(&tg)); /* stays exhausted */
}

static void test_srv_dot_target(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("dot.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, ENOENT);
    assert_int_equal(res.tg.n, 0);
    assert_false(asked(log_since(m), "A", "dot.example.test")); /* no fallback past "." */
}

static void test_a_only_fallback(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("aonly.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.60:5060", "aonly.example.test");
    assert_int_equal(res.tg.v[0].priority, 0);
    const char *log = log_since(m);
    assert_true(asked(log, "NAPTR", "aonly.example.test"));
    assert_true(asked(log, "SRV", "_sip._udp.aonly.example.test"));
    assert_true(asked(log, "A", "aonly.example.test"));

    resolve("aonly.example.test", 0, TL_NET_TLS, &res); /* default TLS port */
    assert_int_equal(res.err, 0);
    assert_target(&res.tg, 0, "192.0.2.60:5061", NULL);
}

static void test_port_given_no_naptr_srv(void **state)
{
    struct res res;
    long m = log_mark();
    /* tcp.example.test has SRV records; an explicit port bypasses them (§4.2) */
    resolve("tcp.example.test", 5090, TL_NET_TCP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.99:5090", "tcp.example.test");
    const char *log = log_since(m);
    assert_null(strstr(log, " NAPTR "));
    assert_null(strstr(log, " SRV "));
    assert_true(asked(log, "A", "tcp.example.test"));
    assert_true(asked(log, "AAAA", "tcp.example.test"));
}

static void test_aaaa(void **state)
{
    struct res res;
    resolve("v6.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "[2001:db8::60]:5060", "v6.example.test");
    assert_int_equal(res.tg.v[0].salen, sizeof(struct sockaddr_in6));

    /* IPv4 first, whatever order DNS gave */
    resolve("dual.example.test", 5080, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 2);
    assert_target(&res.tg, 0, "192.0.2.70:5080", NULL);
    assert_target(&res.tg, 1, "[2001:db8::70]:5080", NULL);

    /* opts.family narrows it */
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    struct tl_net_resolver_opts o = opts_for(servers);
    o.family = AF_INET;
    resolve_with(&o, "dual.example.test", 5080, TL_NET_UDP, &res, NULL);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.70:5080", NULL);
    resolve_with(&o, "v6.example.test", 5080, TL_NET_UDP, &res, NULL);
    assert_int_equal(res.err, ENOENT);
}

static void test_nxdomain(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("nx.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, ENOENT);
    assert_int_equal(res.tg.n, 0);
    const char *log = log_since(m);
    /* the whole chain was tried: a name may exist in /etc/hosts only */
    assert_true(asked(log, "NAPTR", "nx.example.test"));
    assert_true(asked(log, "SRV", "_sip._udp.nx.example.test"));
    assert_true(asked(log, "A", "nx.example.test"));
}

static void test_servfail(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("servfail.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, EIO);
    /* a broken DNS stops the chain instead of guessing on */
    assert_false(asked(log_since(m), "SRV", "_sip._udp.servfail.example.test"));
}

static void test_partial_answer(void **state)
{
    struct res res;
    uint64_t ms;
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    struct tl_net_resolver_opts o = opts_for(servers);
    o.timeout_ms = 1500;
    o.tries = 1; /* one attempt of 750 ms for the silent target */
    resolve_with(&o, "partial.example.test", 0, TL_NET_UDP, &res, &ms);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1); /* the answering target; the silent one is dropped */
    assert_target(&res.tg, 0, "192.0.2.80:5064", "ok.partial.example.test");
    assert_true(ms < 1500);
}

static void test_duplicate_address_once(void **state)
{
    struct res res;
    resolve("dup.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 2);
    assert_target(&res.tg, 0, "192.0.2.90:5060", "d1.dup.example.test");
    assert_target(&res.tg, 1, "192.0.2.91:5060", "d2.dup.example.test");
}

static void test_truncated_tcp_and_caps(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("many.example.test", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, TL_NET_TARGETS_MAX);
    for (size_t i = 0; i < res.tg.n; i++) { /* the 16 lowest priorities, in order */
        char addr[48], host[64];
        snprintf(addr, sizeof(addr), "198.51.100.%zu:5060", i + 1);
        snprintf(host, sizeof(host), "sbc-node-%02zu.many.example.test", i + 1);
        assert_target(&res.tg, i, addr, host);
        assert_int_equal(res.tg.v[i].priority, i + 1);
    }
    const char *log = log_since(m);
    assert_non_null(strstr(log, "udp SRV _sip._udp.many.example.test\n"));
    assert_non_null(strstr(log, "tcp SRV _sip._udp.many.example.test\n")); /* TC: retry */
    assert_false(asked(log, "A", "sbc-node-17.many.example.test"));        /* over the cap */
}

/* A DNS server that never answers: a bound UDP socket nobody reads. */
static int silent_server(char *srv, size_t cap)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(srv, cap, "127.0.0.1:%u", ntohs(sin.sin_port));
    return fd;
}

static void test_timeout(void **state)
{
    char srv[32];
    int fd = silent_server(srv, sizeof(srv));
    struct tl_net_resolver_opts o = opts_for(srv);
    struct res res;
    uint64_t ms;

    /* c-ares gives up first: 1 try of 300 ms */
    o.timeout_ms = 600;
    o.tries = 1;
    resolve_with(&o, "silent.example.test", 0, TL_NET_UDP, &res, &ms);
    assert_int_equal(res.err, ETIMEDOUT);
    assert_int_equal(res.tg.n, 0);
    assert_true(ms >= 250 && ms <= 600 + 200);

    /* the overall deadline comes first: 3 tries of 100, 200, 400 ms exceed 600 */
    o.tries = 3;
    resolve_with(&o, "silent.example.test", 0, TL_NET_UDP, &res, &ms);
    assert_int_equal(res.err, ETIMEDOUT);
    assert_true(ms >= 550 && ms <= 600 + 200);
    close(fd);
}

static void test_refused(void **state)
{
    /* nothing listens on the port: ICMP port unreachable -> EIO, at once, not a timeout */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    char srv[32];
    snprintf(srv, sizeof(srv), "127.0.0.1:%u", ntohs(sin.sin_port));
    struct tl_net_resolver_opts o = opts_for(srv);
    struct res res;
    uint64_t ms;
    resolve_with(&o, "refused.example.test", 0, TL_NET_UDP, &res, &ms);
    assert_int_equal(res.err, EIO);
    assert_true(ms < 1000);
}

static void test_ip_literal_no_dns(void **state)
{
    struct res res;
    long m = log_mark();
    resolve("192.0.2.1", 0, TL_NET_TLS, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.1:5061", "");
    assert_string_equal(res.tg.tls_name, "192.0.2.1");
    resolve("[2001:db8::1]", 5070, TL_NET_TCP, &res);
    assert_int_equal(res.err, 0);
    assert_target(&res.tg, 0, "[2001:db8::1]:5070", "");
    resolve("2001:db8::2", 0, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_target(&res.tg, 0, "[2001:db8::2]:5060", "");
    assert_string_equal(log_since(m), "");
}

static void test_localhost_hosts_file(void **state)
{
    struct res res;
    struct tl_net_resolver_opts o;
    long m = log_mark();
    /* "localhost" is a name, not a literal: NAPTR/SRV go to DNS (and fail), the address
     * comes from /etc/hosts (or c-ares's RFC 6761 loopback), never from DNS */
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    o = opts_for(servers);
    o.env_hosts = false; /* the real /etc/hosts */
    resolve_with(&o, "localhost", 0, TL_NET_UDP, &res, NULL);
    assert_int_equal(res.err, 0);
    assert_true(res.tg.n >= 1);
    assert_target(&res.tg, 0, "127.0.0.1:5060", "localhost");
    for (size_t i = 1; i < res.tg.n; i++)
        assert_target(&res.tg, i, "[::1]:5060", "localhost");
    const char *log = log_since(m);
    assert_true(asked(log, "NAPTR", "localhost"));
    assert_false(asked(log, "A", "localhost"));
    assert_false(asked(log, "AAAA", "localhost"));

    /* a name that only a hosts file knows ($CARES_HOSTS, set in group_setup) */
    m = log_mark();
    resolve("hostsonly.example.test", 5060, TL_NET_UDP, &res);
    assert_int_equal(res.err, 0);
    assert_int_equal(res.tg.n, 1);
    assert_target(&res.tg, 0, "192.0.2.77:5060", "hostsonly.example.test");
    assert_string_equal(log_since(m), ""); /* files first: DNS never asked */
}

/* ---- contracts ---- */

static void test_cancel(void **state)
{
    uv_loop_t loop;
    struct tl_net_resolver *r;
    struct tl_net_resolve_query *q1, *q2, *q3;
    struct res r1 = {0}, r2 = {0}, r3 = {0};
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    struct tl_net_resolver_opts o = opts_for(servers);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), 0);

    /* cancelled with questions in flight: never called back; its answers still arrive
     * (q2 keeps the loop running) and free it */
    assert_int_equal(tl_net_resolve(r, "tls.example.test", 0, TL_NET_TLS, on_res, &r1, &q1), 0);
    assert_int_equal(tl_net_resolve(r, "aonly.example.test", 0, TL_NET_UDP, on_res, &r2, &q2), 0);
    /* cancelled with its result ready but not delivered */
    assert_int_equal(tl_net_resolve(r, "192.0.2.1", 0, TL_NET_UDP, on_res, &r3, &q3), 0);
    tl_net_resolve_cancel(q1);
    tl_net_resolve_cancel(q3);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r1.calls, 0);
    assert_int_equal(r3.calls, 0);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.err, 0);

    /* cancelled and the loop stops at once: the orphan is reclaimed by the free */
    assert_int_equal(tl_net_resolve(r, "prio.example.test", 0, TL_NET_UDP, on_res, &r1, &q1), 0);
    tl_net_resolve_cancel(q1);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(r1.calls, 0);
    tl_net_resolver_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct reent {
    struct tl_net_resolver *r;
    int calls, err, resolve_err;
    bool free_it;
};

static void on_reent(int err, const struct tl_net_targets *tg, void *arg)
{
    struct reent *x = arg;
    x->calls++;
    x->err = err;
    if (x->free_it)
        tl_net_resolver_free(x->r); /* from inside a callback */
    /* a new query during the teardown is refused */
    struct res dummy;
    x->resolve_err = tl_net_resolve(x->r, "192.0.2.9", 0, TL_NET_UDP, on_res, &dummy, NULL);
}

static void test_free_cancels_pending(void **state)
{
    uv_loop_t loop;
    struct tl_net_resolver *r;
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", S.port);
    struct tl_net_resolver_opts o = opts_for(servers);
    assert_int_equal(uv_loop_init(&loop), 0);

    /* free with queries pending: each callback gets ECANCELED before free returns */
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), 0);
    struct reent a = {.r = r}, b = {.r = r};
    assert_int_equal(tl_net_resolve(r, "tls.example.test", 0, TL_NET_TLS, on_reent, &a, NULL), 0);
    assert_int_equal(tl_net_resolve(r, "192.0.2.1", 0, TL_NET_TLS, on_reent, &b, NULL), 0);
    tl_net_resolver_free(r);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.err, ECANCELED);
    assert_int_equal(a.resolve_err, ESHUTDOWN);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.err, ECANCELED);
    assert_int_equal(b.resolve_err, ESHUTDOWN);
    tl_net_resolver_free(r); /* closing already (memory lives until the loop runs): no-op */
    uv_run(&loop, UV_RUN_DEFAULT);

    /* free from inside the first of two callbacks: the second gets ECANCELED */
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), 0);
    struct reent c = {.r = r, .free_it = true}, d = {.r = r};
    assert_int_equal(tl_net_resolve(r, "192.0.2.1", 0, TL_NET_UDP, on_reent, &c, NULL), 0);
    assert_int_equal(tl_net_resolve(r, "aonly.example.test", 0, TL_NET_UDP, on_reent, &d, NULL), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.err, 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.err, ECANCELED);
    assert_int_equal(c.resolve_err, ESHUTDOWN);
    assert_int_equal(d.resolve_err, ESHUTDOWN);
    assert_int_equal(uv_loop_close(&loop), 0);

    tl_net_resolver_free(NULL);
}

static void test_bad_arguments(void **state)
{
    uv_loop_t loop;
    struct tl_net_resolver *r;
    struct res res = {0};
    char name[300];
    assert_int_equal(uv_loop_init(&loop), 0);
    struct tl_net_resolver_opts o = opts_for("not a server list");
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), EINVAL);
    o = opts_for(NULL);
    o.family = 12345;
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), EINVAL);
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, NULL), 0); /* system configuration */
    tl_net_resolver_free(r);
    /* the valid names below are cancelled at once; their questions go to a server that
     * never answers (not the logging one: a late line would confuse the next test) */
    char srv[32];
    int fd = silent_server(srv, sizeof(srv));
    o = opts_for(srv);
    assert_int_equal(tl_net_resolver_alloc(&r, &loop, &o), 0);

    /* 253 octets are fine, 254 are not (the trailing dot does not count) */
    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < 253; i += 64)
        name[i] = '.';
    name[253] = '\0';
    struct tl_net_resolve_query *q;
    assert_int_equal(tl_net_resolve(r, name, 0, TL_NET_UDP, on_res, &res, &q), 0);
    tl_net_resolve_cancel(q);
    name[253] = '.';
    name[254] = '\0';
    assert_int_equal(tl_net_resolve(r, name, 0, TL_NET_UDP, on_res, &res, &q), 0);
    tl_net_resolve_cancel(q);
    name[253] = 'a';
    assert_int_equal(tl_net_resolve(r, name, 0, TL_NET_UDP, on_res, &res, NULL), E2BIG);

    memset(name, 'a', 64);
    strcpy(name + 64, ".example.test");
    assert_int_equal(tl_net_resolve(r, name, 0, TL_NET_UDP, on_res, &res, NULL), EINVAL);
    const char *bad[] = {"",      ".",   "a..b",        ".a",   "a b",
                         "sip:a", "a@b", "[192.0.2.1]", "[::1", "exa\\046mple.test"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(tl_net_resolve(r, bad[i], 0, TL_NET_UDP, on_res, &res, NULL), EINVAL);
    assert_int_equal(tl_net_resolve(r, NULL, 0, TL_NET_UDP, on_res, &res, NULL), EINVAL);
    assert_int_equal(tl_net_resolve(r, "a.test", 0, TL_NET_UDP, NULL, &res, NULL), EINVAL);
    assert_int_equal(tl_net_resolve(r, "a.test", 0, (enum tl_net_proto)4, on_res, &res, NULL),
                     EPROTONOSUPPORT);
    assert_int_equal(tl_net_resolve(r, "a.test", 0, (enum tl_net_proto)0, on_res, &res, NULL),
                     EPROTONOSUPPORT);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(res.calls, 0); /* an error return means no callback */
    tl_net_resolver_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);
}

/* ---- SRV ordering and target helpers, no DNS ---- */

static void srv_set(struct tl_net_srv *s, uint16_t prio, uint16_t weight, const char *target)
{
    memset(s, 0, sizeof(*s));
    s->priority = prio;
    s->weight = weight;
    s->port = 5060;
    strcpy(s->target, target);
}

static void test_srv_order_priority(void **state)
{
    struct tl_net_srv v[5];
    uint64_t rng = 1;
    for (int run = 0; run < 200; run++) {
        srv_set(&v[0], 30, 5, "c");
        srv_set(&v[1], 10, 1, "a1");
        srv_set(&v[2], 20, 0, "b");
        srv_set(&v[3], 10, 9, "a2");
        srv_set(&v[4], 65535, 0, "z");
        tl_net_srv_order(v, 5, &rng);
        assert_int_equal(v[0].priority, 10);
        assert_int_equal(v[1].priority, 10);
        assert_string_equal(v[2].target, "b");
        assert_string_equal(v[3].target, "c");
        assert_string_equal(v[4].target, "z");
    }
    /* all weights 0: the order as given (the only rnd is 0, which picks the first) */
    srv_set(&v[0], 1, 0, "x");
    srv_set(&v[1], 1, 0, "y");
    srv_set(&v[2], 1, 0, "z");
    tl_net_srv_order(v, 3, &rng);
    assert_string_equal(v[0].target, "x");
    assert_string_equal(v[1].target, "y");
    assert_string_equal(v[2].target, "z");
    tl_net_srv_order(v, 0, &rng); /* nothing to do */
    tl_net_srv_order(v, 1, &rng);
    assert_string_equal(v[0].target, "x");
}

static void test_srv_order_weights(void **state)
{
    struct tl_net_srv v[3], w[3];
    int first[3] = {0}, zero_first = 0;
    const int runs = 20000;
    uint64_t rng = 42;
    for (int run = 0; run < runs; run++) {
        srv_set(&v[0], 1, 60, "a");
        srv_set(&v[1], 1, 30, "b");
        srv_set(&v[2], 1, 10, "c");
        tl_net_srv_order(v, 3, &rng);
        first[v[0].target[0] - 'a']++;
        /* every record appears once */
        assert_int_equal(v[0].target[0] + v[1].target[0] + v[2].target[0], 'a' + 'b' + 'c');
    }
    /* RFC 2782: chosen first with probability weight / sum (60 %, 30 %, 10 %) */
    assert_in_range(first[0], runs * 57 / 100, runs * 63 / 100);
    assert_in_range(first[1], runs * 27 / 100, runs * 33 / 100);
    assert_in_range(first[2], runs * 8 / 100, runs * 12 / 100);

    /* weight 0 next to weight 100: first only when 0 is drawn from [0, 100] (~1 %) */
    for (int run = 0; run < runs; run++) {
        srv_set(&v[0], 1, 100, "heavy");
        srv_set(&v[1], 1, 0, "zero");
        tl_net_srv_order(v, 2, &rng);
        zero_first += !strcmp(v[0].target, "zero");
    }
    assert_in_range(zero_first, runs / 200, runs * 3 / 100);

    /* the same seed gives the same order */
    uint64_t s1 = 7, s2 = 7;
    for (int run = 0; run < 100; run++) {
        srv_set(&v[0], 1, 1, "a");
        srv_set(&v[1], 1, 1, "b");
        srv_set(&v[2], 1, 1, "c");
        memcpy(w, v, sizeof(v));
        tl_net_srv_order(v, 3, &s1);
        tl_net_srv_order(w, 3, &s2);
        for (int i = 0; i < 3; i++)
            assert_string_equal(v[i].target, w[i].target);
    }
}

static void test_target_str(void **state)
{
    struct tl_net_target t;
    char buf[64];
    memset(&t, 0, sizeof(t));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&t.sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(5061);
    inet_pton(AF_INET, "203.0.113.5", &s4->sin_addr);
    assert_int_equal(tl_net_target_str(&t, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "203.0.113.5:5061");
    assert_int_equal(tl_net_target_str(&t, buf, 10), ENOSPC);
    assert_string_equal(buf, "");
    t.sa.ss_family = AF_UNIX;
    assert_int_equal(tl_net_target_str(&t, buf, sizeof(buf)), EINVAL);

    struct tl_net_targets tg = {.n = 0};
    assert_null(tl_net_targets_cur(&tg));
    assert_null(tl_net_targets_next(&tg));
    assert_null(tl_net_targets_next(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srv_order_priority),
        cmocka_unit_test(test_srv_order_weights),
        cmocka_unit_test(test_target_str),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_ip_literal_no_dns),
        cmocka_unit_test(test_naptr_srv_a_tls),
        cmocka_unit_test(test_naptr_next_record),
        cmocka_unit_test(test_srv_only_tcp),
        cmocka_unit_test(test_srv_priorities_failover),
        cmocka_unit_test(test_srv_dot_target),
        cmocka_unit_test(test_a_only_fallback),
        cmocka_unit_test(test_port_given_no_naptr_srv),
        cmocka_unit_test(test_aaaa),
        cmocka_unit_test(test_nxdomain),
        cmocka_unit_test(test_servfail),
        cmocka_unit_test(test_partial_answer),
        cmocka_unit_test(test_duplicate_address_once),
        cmocka_unit_test(test_truncated_tcp_and_caps),
        cmocka_unit_test(test_localhost_hosts_file),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_cancels_pending),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
