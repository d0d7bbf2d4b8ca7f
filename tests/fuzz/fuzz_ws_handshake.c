/* libFuzzer: the WebSocket upgrade response parser (tl_ws_response_parse), the first
 * bytes an agent's server sends us. Any input ends in 0, EAGAIN or EBADMSG; a complete
 * header block is at most TL_WS_HANDSHAKE_MAX bytes and its prefixes are incomplete; the
 * reason is printable ASCII; and a 101 is accepted only if it carries the Accept for our
 * key (RFC 6455 §4.1), which the seeds hold. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/ws.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* case-insensitive search of needle in p[0..n) */
static bool has(const char *p, size_t n, const char *needle)
{
    size_t l = strlen(needle);
    for (size_t i = 0; i + l <= n; i++)
        if (!strncasecmp(p + i, needle, l))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees any read past the end */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    int status = -1;
    bool ok = true;
    char reason[32];
    size_t hl = 12345;
    int r = tl_ws_response_parse(buf, size, KEY, &status, &ok, reason, sizeof reason, &hl);
    CHECK(r == 0 || r == EAGAIN || r == EBADMSG);
    CHECK(strlen(reason) < sizeof reason);
    for (const char *c = reason; *c; c++)
        CHECK(*c >= 0x20 && *c < 0x7f);
    if (r) {
        CHECK(!ok);
        CHECK(r == EBADMSG || size < TL_WS_HANDSHAKE_MAX);
    } else {
        CHECK(hl > 0 && hl <= size && hl <= TL_WS_HANDSHAKE_MAX);
        CHECK(status >= 0 && status <= 999);
        /* the blank line is the end: one byte less is not a complete response */
        int st2;
        bool ok2;
        size_t hl2;
        CHECK(tl_ws_response_parse(buf, hl - 1, KEY, &st2, &ok2, NULL, 0, &hl2) == EAGAIN);
        /* what follows the headers does not change them */
        CHECK(tl_ws_response_parse(buf, hl, KEY, &st2, &ok2, NULL, 0, &hl2) == 0);
        CHECK(st2 == status && ok2 == ok && hl2 == hl);
        if (ok) {
            CHECK(status == 101);
            CHECK(has(buf, hl, "Sec-WebSocket-Accept:"));
            CHECK(has(buf, hl, ACCEPT));
            /* and never for another key */
            CHECK(tl_ws_response_parse(buf, hl, "AQIDBAUGBwgJCgsMDQ4PEA==", &st2, &ok2, NULL, 0,
                                       &hl2) == 0 &&
                  !ok2);
        }
    }
    free(buf);
    return 0;
}
