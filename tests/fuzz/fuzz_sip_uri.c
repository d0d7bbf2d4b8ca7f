/* libFuzzer: URIs. Decoding, unescaping, parameter lookup and comparison (reflexive and
 * symmetric for any two inputs). The input is split at the first 0xff into two URIs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void one(const struct tl_sip_uri *u, const struct tl_pl *src)
{
    char tmp[512];
    size_t n;
    struct tl_pl v;
    CHECK(tl_sip_uri_cmp(u, u));
    if (tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &u->user) == 0)
        CHECK(n <= u->user.l);
    tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &u->password);
    tl_sip_uri_unescape(tmp, sizeof(tmp), &n, &u->headers);
    static const char *const names[] = {"transport", "lr", "user", "maddr", "ttl", "method"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (tl_sip_uri_param_get(u, names[i], &v) == 0)
            CHECK(v.l == 0 || (v.p >= src->p && v.p + v.l <= src->p + src->l));
    }
    tl_sip_uri_header_get(u, "route", &v);
    if (u->scheme == TL_SIP_SCHEME_SIP || u->scheme == TL_SIP_SCHEME_SIPS)
        CHECK(u->host.l > 0 && u->hostt != TL_SIP_HOST_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    const char *sep = memchr(buf, 0xff, size);
    struct tl_pl a = {buf, sep ? (size_t)(sep - buf) : size};
    struct tl_pl b = {sep ? sep + 1 : buf + size, sep ? size - a.l - 1 : 0};
    struct tl_sip_uri ua, ub;
    int ra = tl_sip_uri_decode(&ua, &a), rb = tl_sip_uri_decode(&ub, &b);
    CHECK(ra == 0 || ra == EBADMSG);
    if (ra == 0)
        one(&ua, &a);
    if (rb == 0)
        one(&ub, &b);
    if (ra == 0 && rb == 0)
        CHECK(tl_sip_uri_cmp(&ua, &ub) == tl_sip_uri_cmp(&ub, &ua));
    free(buf);
    return 0;
}
