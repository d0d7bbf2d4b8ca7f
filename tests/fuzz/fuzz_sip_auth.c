/* libFuzzer: digest challenges and credentials (the parser class of CVE-2023-28098 and
 * CVE-2022-24754): every value must lie inside the input, duplicates never pass. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct tl_pl in = {buf, size};
    struct tl_sip_auth a;
    int rc = tl_sip_auth_decode(&a, &in);
    CHECK(rc == 0 || rc == EBADMSG || rc == E2BIG);
    if (rc == 0) {
        const struct tl_pl *all[] = {&a.scheme,    &a.params, &a.realm,  &a.nonce,    &a.opaque,
                                     &a.algorithm, &a.qop,    &a.domain, &a.username, &a.uri,
                                     &a.response,  &a.cnonce, &a.nc};
        char tmp[128];
        size_t n;
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
            const struct tl_pl *v = all[i];
            CHECK(v->l == 0 || (v->p >= buf && v->p + v->l <= buf + size));
            if (tl_sip_qstr_unescape(tmp, sizeof(tmp), &n, v) == 0)
                CHECK(n <= v->l && tmp[n] == '\0');
        }
        CHECK(a.scheme.l > 0);
        CHECK(!a.nc.p || a.nc.l == 8);
        tl_sip_list_has(&a.qop, "auth");
    }
    free(buf);
    return 0;
}
