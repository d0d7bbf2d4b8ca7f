/* net/guard: see guard.h. Pure functions on addresses: no DNS, no sockets. */
#include "net/guard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one refused range: prefix of `bits` bits, and what to call an address inside it */
struct range {
    uint8_t addr[16];
    uint8_t bits;
    const char *kind;
};

/* Most specific first: the first match names the kind. */
static const struct range v4_refused[] = {
    {{169, 254, 169, 254}, 32, "the cloud metadata address"},
    {{255, 255, 255, 255}, 32, "the broadcast address"},
    {{0, 0, 0, 0}, 8, "an unspecified address"},
    {{127, 0, 0, 0}, 8, "a loopback address"},
    {{10, 0, 0, 0}, 8, "a private address"},
    {{172, 16, 0, 0}, 12, "a private address"},
    {{192, 168, 0, 0}, 16, "a private address"},
    {{100, 64, 0, 0}, 10, "a carrier-grade NAT address"},
    {{169, 254, 0, 0}, 16, "a link-local address"},
    {{192, 0, 0, 0}, 24, "an IETF protocol assignment address"},
    {{192, 0, 2, 0}, 24, "a documentation address"},
    {{198, 51, 100, 0}, 24, "a documentation address"},
    {{203, 0, 113, 0}, 24, "a documentation address"},
    {{192, 88, 99, 0}, 24, "a 6to4 relay address"}, /* RFC 7526: anycast into 6to4 */
    {{198, 18, 0, 0}, 15, "a benchmarking address"},
    {{224, 0, 0, 0}, 4, "a multicast address"},
    {{240, 0, 0, 0}, 4, "a reserved address"},
};

static const struct range v6_refused[] = {
    /* AWS's IMDS over IPv6 (Nitro instances): the same credentials as 169.254.169.254 */
    {{0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02}, 128, "the cloud metadata address"},
    {{0}, 128, "an unspecified address"},
    {{[15] = 1}, 128, "a loopback address"},
    /* these reach IPv4 space through a translator or tunnel the guard cannot see into */
    {{0x00, 0x64, 0xff, 0x9b}, 96, "a NAT64 address"},
    {{0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48, "a NAT64 address"},
    {{0x20, 0x02}, 16, "a 6to4 address"},
    {{0x20, 0x01, 0x00, 0x00}, 32, "a Teredo address"},
    {{0x20, 0x01, 0x00, 0x02, 0x00, 0x00}, 48, "a benchmarking address"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "a documentation address"},
    {{0x3f, 0xff}, 20, "a documentation address"}, /* RFC 9637 */
    {{0xfe, 0x80}, 10, "a link-local address"},
    {{0xfe, 0xc0}, 10, "a site-local address"},
    {{0xfc}, 7, "a unique-local address"},
    {{0xff}, 8, "a multicast address"},
};

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full))
        return false;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static bool allowed(const struct tl_net_guard *g, int family, const uint8_t *addr)
{
    if (!g)
        return false;
    for (size_t i = 0; i < g->n; i++)
        if (g->allow[i].family == family && prefix_eq(addr, g->allow[i].addr, g->allow[i].bits))
            return true;
    return false;
}

static const char *v4_kind(const uint8_t a[4])
{
    for (size_t i = 0; i < sizeof v4_refused / sizeof v4_refused[0]; i++)
        if (prefix_eq(a, v4_refused[i].addr, v4_refused[i].bits))
            return v4_refused[i].kind;
    return NULL;
}

/* NULL when allowed, else the kind */
static const char *check4(const struct tl_net_guard *g, const uint8_t a[4])
{
    return allowed(g, 4, a) ? NULL : v4_kind(a);
}

static const char *check6(const struct tl_net_guard *g, const uint8_t a[16])
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    static const uint8_t zero[12] = {0};
    if (allowed(g, 6, a))
        return NULL;
    /* ::ffff:a.b.c.d (mapped, RFC 4291 §2.5.5.2) and ::a.b.c.d (compatible, deprecated)
     * connect to the IPv4 address on dual-stack hosts: judge that address, so that
     * ::ffff:127.0.0.1 is as loopback as 127.0.0.1 and an allowed 127.0.0.1/32 covers it */
    bool is_mapped = !memcmp(a, mapped, 12);
    bool is_compat = !memcmp(a, zero, 12) && (a[12] | a[13] | a[14] | (a[15] & 0xfe)) != 0;
    if (is_mapped || is_compat)
        return check4(g, a + 12);
    for (size_t i = 0; i < sizeof v6_refused / sizeof v6_refused[0]; i++)
        if (prefix_eq(a, v6_refused[i].addr, v6_refused[i].bits))
            return v6_refused[i].kind;
    /* only global unicast (2000::/3) is routed on the Internet; the rest is unassigned or
     * special (RFC 4291 §2.4), and nothing there should be an agent */
    if ((a[0] & 0xe0) != 0x20)
        return "a reserved address";
    return NULL;
}

bool tl_net_guard_ok(const struct tl_net_guard *g, const struct sockaddr *sa, const char **why)
{
    const char *kind;
    if (sa && sa->sa_family == AF_INET)
        kind = check4(g, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    else if (sa && sa->sa_family == AF_INET6)
        kind = check6(g, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    else
        kind = "not an IP address";
    if (why)
        *why = kind;
    return kind == NULL;
}

bool tl_net_guard_contains(const struct tl_net_guard *g, const struct sockaddr *sa)
{
    if (!g || !g->n || !sa)
        return false;
    if (sa->sa_family == AF_INET)
        return allowed(g, 4, (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr);
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    /* a dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d: it is the IPv4 address */
    if (!memcmp(a, mapped, 12))
        return allowed(g, 4, a + 12);
    return allowed(g, 6, a);
}

bool tl_net_guard_ok_str(const struct tl_net_guard *g, const char *ip, const char **why)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (ip && inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
    } else if (ip && inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
    } else {
        if (why)
            *why = "not an IP address";
        return false;
    }
    return tl_net_guard_ok(g, (const struct sockaddr *)&ss, why);
}

/* One item: "a.b.c.d", "a.b.c.d/n", "v6", "v6/n". 0 or EINVAL with *what saying why. */
static int parse_item(const char *s, uint8_t *family, uint8_t *bits, uint8_t addr[16],
                      const char **what)
{
    char ip[64];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    *what = "is not an address or network (such as 10.0.0.0/8 or fd00::/8)";
    if (n == 0 || n >= sizeof ip)
        return EINVAL;
    memcpy(ip, s, n);
    ip[n] = '\0';
    unsigned max;
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, ip, addr) == 1) {
        *family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, ip, addr) == 1) {
        *family = 6;
        max = 128;
    } else {
        return EINVAL;
    }
    unsigned long b = max;
    if (slash) {
        char *end;
        if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3)
            return EINVAL;
        b = strtoul(slash + 1, &end, 10);
        if (*end)
            return EINVAL;
        if (b > max) {
            *what = "has a prefix length out of range";
            return EINVAL;
        }
    }
    /* "10.0.0.1/8" is most likely a typo for one host or for 10.0.0.0/8: say so rather
     * than guess which */
    uint8_t masked[16];
    memcpy(masked, addr, 16);
    for (unsigned i = (unsigned)b; i < max; i++)
        masked[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    if (memcmp(masked, addr, 16)) {
        *what = "has bits set after its prefix length (write the network address, or the "
                "address alone for one host)";
        return EINVAL;
    }
    *bits = (uint8_t)b;
    return 0;
}

int tl_net_guard_parse(struct tl_net_guard *g, const char *list, const char *field,
                       struct tl_err *err)
{
    if (!field)
        field = "";
    g->n = 0;
    if (!list)
        return 0;
    const char *p = list;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return 0;
    for (;;) {
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        char item[80];
        size_t n = (size_t)(end - start);
        if (n == 0) {
            g->n = 0;
            return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                              "%s: an empty item in the list (two commas, or one at an end)",
                              field);
        }
        if (g->n == TL_NET_GUARD_NETS_MAX) {
            g->n = 0;
            return tl_err_set(err, EINVAL, 400, "invalid_field", field, "%s: more than %d networks",
                              field, TL_NET_GUARD_NETS_MAX);
        }
        const char *what = "is too long to be a network";
        if (n < sizeof item) {
            memcpy(item, start, n);
            item[n] = '\0';
        }
        if (n >= sizeof item || parse_item(item, &g->allow[g->n].family, &g->allow[g->n].bits,
                                           g->allow[g->n].addr, &what)) {
            g->n = 0;
            return tl_err_set(err, EINVAL, 400, "invalid_field", field, "%s: \"%.*s\" %s", field,
                              n > 64 ? 64 : (int)n, start, what);
        }
        g->n++;
        if (!*p)
            return 0;
        p++; /* the comma */
    }
}
