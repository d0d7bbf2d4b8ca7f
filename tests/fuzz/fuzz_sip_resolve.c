/* libFuzzer target: the RFC 3263 resolver against a DNS server whose answers are the
 * fuzzer's bytes. The server is a UDP socket on the resolver's own loop; each question it
 * gets (NAPTR, SRV, A, AAAA, in whatever order the resolver asks) is answered with the
 * next chunk of the input, behind a header and the question copied from the query, so
 * c-ares accepts it and its parsers and our NAPTR/SRV/address handling see arbitrary
 * records. When the input runs out, questions get NXDOMAIN.
 *
 * Input: byte 0 picks the transport and whether a port is given; then chunks of
 *   [len][rcode][ancount][len - 2 octets of answer records].
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

#include "sip/resolve.h"

#define HOST "fuzz.example.test"

static uv_loop_t loop;
static uv_poll_t srv_poll;
static int srv_fd = -1;
static struct tl_sip_resolver *res;
static const uint8_t *feed;
static size_t feed_n;

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void srv_cb(uv_poll_t *h, int status, int events)
{
    uint8_t q[512], a[1024];
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
    uint8_t rcode = 3, ancount = 0; /* NXDOMAIN once the input is used up */
    size_t rlen = 0;
    const uint8_t *rr = NULL;
    if (feed_n >= 3) {
        size_t len = feed[0];
        if (len < 2 || len + 1 > feed_n)
            len = feed_n - 1;
        rcode = feed[1] & 0x0f;
        ancount = feed[2];
        rr = feed + 3;
        rlen = len - 2;
        feed += len + 1;
        feed_n -= len + 1;
    }
    memcpy(a, q, off);
    a[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD as asked; never TC (no TCP server here) */
    a[3] = 0x80 | rcode;         /* RA */
    a[4] = 0, a[5] = 1;          /* QDCOUNT */
    a[6] = 0, a[7] = ancount;
    memset(a + 8, 0, 4);
    if (rlen > sizeof(a) - off)
        rlen = sizeof(a) - off;
    if (rlen)
        memcpy(a + off, rr, rlen);
    sendto(srv_fd, a, off + rlen, 0, (struct sockaddr *)&from, fl);
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
    struct tl_sip_resolver_opts o = {.servers = servers, .timeout_ms = 100, .tries = 1, .seed = 1};
    must(tl_sip_resolver_alloc(&res, &loop, &o) == 0);
}

struct out {
    int calls, err;
};

static void on_res(int err, const struct tl_sip_targets *tg, void *arg)
{
    struct out *o = arg;
    o->calls++;
    o->err = err;
    must((err == 0) == (tg != NULL));
    if (!tg)
        return;
    must(tg->n >= 1 && tg->n <= TL_SIP_TARGETS_MAX && tg->cur == 0);
    must(!strcmp(tg->tls_name, HOST));
    for (size_t i = 0; i < tg->n; i++) {
        const struct tl_sip_target *t = &tg->v[i];
        char buf[64];
        must(t->sa.ss_family == AF_INET || t->sa.ss_family == AF_INET6);
        must(tl_sip_target_str(t, buf, sizeof(buf)) == 0);
        must(memchr(t->host, '\0', sizeof(t->host)) && t->host[0]);
        uint16_t port = t->sa.ss_family == AF_INET
                            ? ((const struct sockaddr_in *)&t->sa)->sin_port
                            : ((const struct sockaddr_in6 *)&t->sa)->sin6_port;
        must(port != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const enum tl_sip_transport tps[3] = {TL_SIP_TP_UDP, TL_SIP_TP_TCP, TL_SIP_TP_TLS};
    if (!res)
        setup();
    if (size < 1)
        return 0;
    enum tl_sip_transport tp = tps[data[0] % 3];
    uint16_t port = data[0] & 0x80 ? 5080 : 0;
    feed = data + 1;
    feed_n = size - 1;
    struct out o = {0};
    must(tl_sip_resolve(res, HOST, port, tp, on_res, &o, NULL) == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    must(o.calls == 1);
    must(o.err == 0 || o.err == ENOENT || o.err == ETIMEDOUT || o.err == EIO || o.err == ENOMEM);
    /* drain answers to questions the resolver no longer waits for (none expected) */
    feed_n = 0;
    return 0;
}
