/* libFuzzer: the WebSocket frame path, server to us. A detached client handle
 * (agent/ws_int.h: the same wslay context and recv callback as a connection, no socket)
 * is fed the input after its first two bytes, in chunks whose sizes a hash of the input
 * picks; the first two bytes pick the message cap (0: the default 1 MiB). No crash, no
 * leak, no message over the cap delivered, on_close at most once and nothing after it;
 * every message is answered from inside on_message (the send path runs too) and some
 * inputs close from our side halfway. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/ws.h"
#include "agent/ws_int.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

struct st {
    size_t cap;
    int closed;
    size_t msgs;
    size_t out;
};

static void f_open(struct tl_ws *ws, void *arg)
{
    (void)ws;
    (void)arg;
    __builtin_trap(); /* a detached handle is open from the start */
}

static void f_msg(struct tl_ws *ws, const char *p, size_t n, bool binary, void *arg)
{
    struct st *s = arg;
    (void)binary;
    CHECK(!s->closed);
    CHECK(n <= s->cap);
    CHECK(p != NULL);
    if (n) /* ASan checks the whole message is readable */
        CHECK(p[0] == p[0] && p[n - 1] == p[n - 1]);
    s->msgs++;
    tl_ws_send(ws, p, n < 64 ? n : 64);
}

static void f_close(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *why,
                    void *arg)
{
    struct st *s = arg;
    (void)ws;
    (void)code;
    CHECK(why && strlen(why) < TL_WS_WHY_MAX);
    CHECK(fail == TL_WS_OK || fail == TL_WS_FAIL_PROTOCOL || fail == TL_WS_FAIL_IO);
    s->closed++;
    CHECK(s->closed == 1);
}

static void f_sink(const char *p, size_t n, void *arg)
{
    struct st *s = arg;
    (void)p;
    s->out += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct st s = {0};
    size_t sel = (size_t)data[0] << 8 | data[1];
    s.cap = sel ? sel : TL_WS_MESSAGE_MAX;
    static const struct tl_ws_cb cb = {.on_open = f_open, .on_message = f_msg, .on_close = f_close};
    struct tl_ws *ws = tl_ws__detached(sel, &cb, &s, f_sink);
    if (!ws)
        return 0;
    data += 2;
    size -= 2;
    uint32_t h = 2166136261u; /* FNV-1a picks the chunk sizes and where we close */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    size_t close_at = h & 1 ? (h >> 1) % (size + 1) : SIZE_MAX;
    size_t off = 0;
    while (off < size) {
        h ^= h << 13;
        h ^= h >> 17;
        h ^= h << 5;
        size_t n = h & 0x80 ? (h >> 8) % 4096 + 1 : (h >> 8) % 16 + 1;
        if (n > size - off)
            n = size - off;
        char *chunk = malloc(n); /* exact size: ASan sees any read past the end */
        if (!chunk)
            break;
        memcpy(chunk, data + off, n);
        tl_ws__feed(ws, chunk, n);
        free(chunk);
        off += n;
        if (close_at != SIZE_MAX && off >= close_at) {
            tl_ws_close(ws, 1000, "fuzz");
            close_at = SIZE_MAX;
        }
    }
    tl_ws__free(ws);
    return 0;
}
