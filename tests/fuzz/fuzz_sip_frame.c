/* libFuzzer: the TCP/TLS framer. The input is the stream (seeds: the RFC 4475 files as
 * they are); a hash of it picks the chunk sizes, so every mutation is also read in another
 * split. Framing in chunks (resuming) must find the same messages as framing with all
 * bytes at hand, and every framed message goes through tl_sip_msg_decode. */
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

#define MAXMSG 64

struct result {
    size_t off[MAXMSG], len[MAXMSG];
    size_t n;
    int rc; /* what stopped it: ENODATA at the end, or an error */
};

/* Feeds buf[0..size) in chunks of the given sizes (cycled; 0 = everything at once). */
static void run(const char *buf, size_t size, const uint8_t *steps, size_t nsteps,
                struct result *res)
{
    static struct tl_sip_msg m;
    struct tl_sip_frame fr;
    size_t off = 0, have = nsteps ? 0 : size, k = 0;
    memset(&fr, 0, sizeof(fr));
    memset(res, 0, sizeof(*res));
    for (;;) {
        int rc = tl_sip_frame(&fr, buf + off, have - off);
        CHECK(rc == 0 || rc == ENODATA || rc == EBADMSG || rc == E2BIG);
        if (rc == ENODATA) {
            if (have == size) {
                res->rc = ENODATA;
                return;
            }
            size_t step = steps[k++ % nsteps] + 1;
            have = have + step < size ? have + step : size;
            continue;
        }
        if (rc) {
            res->rc = rc;
            return;
        }
        CHECK(fr.len > 0 && fr.len <= have - off);
        if (fr.kind == TL_SIP_FRAME_MSG) {
            CHECK(fr.len <= TL_SIP_MSG_MAX);
            if (res->n == MAXMSG) {
                res->rc = 0;
                return;
            }
            res->off[res->n] = off;
            res->len[res->n++] = fr.len;
            int d = tl_sip_msg_decode(&m, buf + off, fr.len);
            CHECK(d == 0 || d == EBADMSG || d == E2BIG || d == EPROTONOSUPPORT);
            /* the framer found exactly one Content-Length with this value */
            CHECK(d != 0 || (m.has_clen && m.mb.p + m.mb.l == buf + off + fr.len));
        } else {
            CHECK(fr.len == 2 || fr.len == 4);
        }
        off += fr.len;
        tl_sip_frame_reset(&fr);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct result one, many;
    uint8_t steps[8];
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t nsteps = h % 8 + 1;
    for (size_t i = 0; i < nsteps; i++) {
        h ^= h << 13;
        h ^= h >> 17;
        h ^= h << 5;
        /* mostly small reads (1-16 bytes), sometimes a large one */
        steps[i] = (uint8_t)(h & 0x80 ? h >> 8 : (h >> 8) & 15);
    }
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    run(buf, size, NULL, 0, &one);
    run(buf, size, steps, nsteps, &many);
    /* keep-alives may split differently (a ping across reads comes as PONG + PING); the
     * messages and what ends the stream must not differ */
    CHECK(one.n == many.n);
    for (size_t i = 0; i < one.n; i++)
        CHECK(one.off[i] == many.off[i] && one.len[i] == many.len[i]);
    CHECK(one.rc == many.rc);
    free(buf);
    return 0;
}
