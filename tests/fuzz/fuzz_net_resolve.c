/* libFuzzer target: the RFC 3263 resolver against a DNS server whose answers come from the
 * fuzzer. The server is a UDP socket on the resolver's own loop; each question it gets
 * (NAPTR, SRV, A, AAAA, in whatever order the resolver asks) is answered from the next
 * chunk of the input, behind a header and the question copied from the query, so c-ares
 * accepts it. When the input runs out, questions get NXDOMAIN.
 *
 * Input: byte 0 picks the transport and whether a port is given; then chunks of
 *   [len][mode|rcode][count][len - 2 octets]
 * mode 0x80 (structured): `count` well-formed records of the asked type, 4 octets each
 *   choosing order/preference/flags/service/regexp (NAPTR), priority/weight/port (SRV) or
 *   the address, and a name from a small set (".", SRV names, hosts, an unusable name):
 *   this drives our NAPTR filter, SRV caps/ordering/"." rules, dedupe and fallbacks.
 * mode 0 (raw): the octets are the answer section as is and `count` is ANCOUNT: this
 *   drives c-ares's parsers and our handling of whatever they let through.
 * Checks the resolver's promises: exactly one callback; on success 1..16 targets, each an
 * IPv4/IPv6 address with a port and a host name within the cap, tls_name = the host. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "net/resolve.h"

#define HOST "fuzz.example.test"

static uv_loop_t loop;
static uv_poll_t srv_poll;
static int srv_fd = -1;
static struct tl_net_resolver *res;
static const uint8_t *feed;
static size_t feed_n;

static void must(bool ok)
{
    if (!ok)
        abort();
}

static const char *const names[] = {
    ".", /* RFC 2782: service not available */
    "a.fuzz.example.test",
    "b.fuzz.example.test",
    "_sip._udp.fuzz.example.test",
    "_sip._tcp.fuzz.example.test",
    "_sips._tcp.fuzz.example.test",
    HOST,
    "bad name.example.test", /* c-ares escapes the space; we must refuse it */
};

static size_t put_name(uint8_t *p, const char *name)
{
    size_t n = 0;
    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (uint8_t)l;
        memcpy(p + n, name, l);
        n += l;
        name += l + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t l = strlen(s);
    p[0] = (uint8_t)l;
    memcpy(p + 1, s, l);
    return l + 1;
}

/* One record of type qtype from 4 octets d, at p (room for 128 octets); 0 for a type
 * we do not build. */
static size_t put_rr(uint8_t *p, unsigned qtype, const uint8_t *d)
{
    static const char *const flags[] = {"s", "S", "a", ""};
    static const char *const svcs[] = {"SIP+D2U", "SIP+D2T", "SIPS+D2T", "SIP+D2X"};
    const size_t nnames = sizeof(names) / sizeof(names[0]);
    uint8_t *rd = p + 12;
    size_t n = 0;
    switch (qtype) {
    case 35: /* NAPTR */
        rd[0] = 0, rd[1] = (uint8_t)(d[0] % 4 * 10);
        rd[2] = 0, rd[3] = (uint8_t)(d[1] % 4 * 10);
        n = 4;
        n += put_str(rd + n, flags[d[2] & 3]);
        n += put_str(rd + n, svcs[(d[2] >> 2) & 3]);
        n += put_str(rd + n, d[2] & 0x10 ? "!^.*$!sip:x@y!" : "");
        n += put_name(rd + n, names[d[3] % nnames]);
        break;
    case 33: /* SRV */
        rd[0] = 0, rd[1] = d[0] % 4;
        rd[2] = 0, rd[3] = (uint8_t)(d[1] % 8 * 10);
        rd[4] = d[2] % 4 ? 0x13 : 0, rd[5] = d[2] % 4 ? d[2] : 0; /* 4864+ or port 0 */
        n = 6 + put_name(rd + 6, names[d[3] % nnames]);
        break;
    case 1: /* A: few distinct values, so duplicates happen */
        rd[0] = 192, rd[1] = 0, rd[2] = 2, rd[3] = d[0] % 8;
        n = 4;
        break;
    case 28: /* AAAA */
        memset(rd, 0, 16);
        rd[0] = 0x20, rd[1] = 0x01, rd[2] = 0x0d, rd[3] = 0xb8, rd[15] = d[0] % 8;
        n = 16;
        break;
    default:
        return 0;
    }
    p[0] = 0xc0, p[1] = 0x0c; /* owner: the question's name */
    p[2] = (uint8_t)(qtype >> 8), p[3] = (uint8_t)qtype;
    p[4] = 0, p[5] = 1;                      /* IN */
    p[6] = 0, p[7] = 0, p[8] = 0, p[9] = 60; /* TTL */
    p[10] = (uint8_t)(n >> 8), p[11] = (uint8_t)n;
    return 12 + n;
}

static void srv_cb(uv_poll_t *h, int status, int events)
{
    uint8_t q[512], a[512]; /* c-ares takes a longer UDP answer as truncated */
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(srv_fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return;
    size_t off = 12; /* skip the question: QNAME labels, then QTYPE and QCLASS */
    while (off < (size_t)n && q[off])
        off += (size_t)q[off] + 1;
    off += 5;
    if (off > (size_t)n)
        return;
    unsigned qtype = (unsigned)q[off - 4] << 8 | q[off - 3];
    uint8_t mode = 0, rcode = 3, count = 0; /* NXDOMAIN once the input is used up */
    size_t dlen = 0, len = off;
    const uint8_t *d = NULL;
    if (feed_n >= 3) {
        size_t l = feed[0];
        if (l < 2 || l + 1 > feed_n)
            l = feed_n - 1;
        mode = feed[1] & 0x80;
        rcode = feed[1] & 0x0f;
        count = feed[2];
        d = feed + 3;
        dlen = l - 2;
        feed += l + 1;
        feed_n -= l + 1;
    }
    memcpy(a, q, off);
    if (mode) {
        uint8_t rec[4], ancount = 0;
        for (size_t i = 0; i < count && len + 128 <= sizeof(a); i++) {
            for (size_t k = 0; k < 4; k++)
                rec[k] = 4 * i + k < dlen ? d[4 * i + k] : (uint8_t)(i + k);
            size_t m = put_rr(a + len, qtype, rec);
            if (!m)
                break;
            len += m;
            ancount++;
        }
        count = ancount;
    } else {
        if (dlen > sizeof(a) - off)
            dlen = sizeof(a) - off;
        if (dlen)
            memcpy(a + off, d, dlen);
        len += dlen;
    }
    a[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD as asked; never TC (no TCP server here) */
    a[3] = 0x80 | rcode;         /* RA */
    a[4] = 0, a[5] = 1;          /* QDCOUNT */
    a[6] = 0, a[7] = count;
    memset(a + 8, 0, 4);
    sendto(srv_fd, a, len, 0, (struct sockaddr *)&from, fl);
}

static void setup(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    char servers[32];
    must(uv_loop_init(&loop) == 0);
    srv_fd = socket(AF_INET, SOCK_DGRAM, 0);
    must(srv_fd >= 0);
    must(bind(srv_fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    must(getsockname(srv_fd, (struct sockaddr *)&sin, &sl) == 0);
    must(uv_poll_init_socket(&loop, &srv_poll, srv_fd) == 0);
    must(uv_poll_start(&srv_poll, UV_READABLE, srv_cb) == 0);
    uv_unref((uv_handle_t *)&srv_poll);
    snprintf(servers, sizeof(servers), "127.0.0.1:%u", ntohs(sin.sin_port));
    /* a dropped (unparseable) answer costs one short timeout */
    struct tl_net_resolver_opts o = {.servers = servers, .timeout_ms = 100, .tries = 1, .seed = 1};
    must(tl_net_resolver_alloc(&res, &loop, &o) == 0);
}

struct out {
    int calls, err;
};

static void on_res(int err, const struct tl_net_targets *tg, void *arg)
{
    struct out *o = arg;
    o->calls++;
    o->err = err;
    must((err == 0) == (tg != NULL));
    if (!tg)
        return;
    must(tg->n >= 1 && tg->n <= TL_NET_TARGETS_MAX && tg->cur == 0);
    must(!strcmp(tg->tls_name, HOST));
    for (size_t i = 0; i < tg->n; i++) {
        const struct tl_net_target *t = &tg->v[i];
        char buf[64];
        must(t->sa.ss_family == AF_INET || t->sa.ss_family == AF_INET6);
        must(tl_net_target_str(t, buf, sizeof(buf)) == 0);
        must(memchr(t->host, '\0', sizeof(t->host)) && t->host[0]);
        uint16_t port = t->sa.ss_family == AF_INET
                            ? ((const struct sockaddr_in *)&t->sa)->sin_port
                            : ((const struct sockaddr_in6 *)&t->sa)->sin6_port;
        must(port != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum tl_net_proto tps[3] = {TL_NET_UDP, TL_NET_TCP, TL_NET_TLS};
    if (!res)
        setup();
    if (size < 1)
        return 0;
    enum tl_net_proto tp = tps[data[0] % 3];
    uint16_t port = data[0] & 0x80 ? 5080 : 0;
    feed = data + 1;
    feed_n = size - 1;
    struct out o = {0};
    must(tl_net_resolve(res, HOST, port, tp, on_res, &o, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    must(o.calls == 1);
    must(o.err == 0 || o.err == ENOENT || o.err == ETIMEDOUT || o.err == EIO || o.err == ENOMEM);
    /* drain answers to questions the resolver no longer waits for (none expected) */
    feed_n = 0;
    return 0;
}
