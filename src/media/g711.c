/* G.711 (ITU-T G.711, 1988): μ-law and A-law companding, and the A-law ↔ μ-law tables the
 * call layer uses on A-law legs (the agent interface is μ-law, as Twilio Media Streams).
 * The tables are built once from the linear decoders; no allocation, no locking needed
 * after the first call (the loop thread builds them in tl_call_layer_open). */
#include <stdbool.h>

#include "media/g711.h"

int16_t tl_g711_ulaw_decode(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t)((u & 0x80) ? (0x84 - t) : (t - 0x84));
}

int16_t tl_g711_alaw_decode(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0f) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((a & 0x80) ? t : -t);
}

static int seg_of(int v, const int *end)
{
    for (int i = 0; i < 8; i++)
        if (v <= end[i])
            return i;
    return 8;
}

uint8_t tl_g711_ulaw_encode(int16_t pcm)
{
    static const int end[8] = {0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff};
    int v = pcm >> 2, mask;
    if (v < 0) {
        v = -v;
        mask = 0x7f;
    } else {
        mask = 0xff;
    }
    if (v > 8159)
        v = 8159;
    v += 0x21;
    int seg = seg_of(v, end);
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 1)) & 0x0f)) ^ mask);
}

uint8_t tl_g711_alaw_encode(int16_t pcm)
{
    static const int end[8] = {0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff};
    int v = pcm >> 3, mask;
    if (v >= 0) {
        mask = 0xd5;
    } else {
        mask = 0x55;
        v = -v - 1;
    }
    int seg = seg_of(v, end);
    if (seg >= 8)
        return (uint8_t)(0x7f ^ mask);
    int a = seg << 4;
    a |= seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
    return (uint8_t)(a ^ mask);
}

static uint8_t a2u[256], u2a[256];
static bool built;

static void build(void)
{
    if (built)
        return;
    for (int i = 0; i < 256; i++) {
        a2u[i] = tl_g711_ulaw_encode(tl_g711_alaw_decode((uint8_t)i));
        u2a[i] = tl_g711_alaw_encode(tl_g711_ulaw_decode((uint8_t)i));
    }
    built = true;
}

void tl_g711_alaw_to_ulaw(uint8_t *dst, const uint8_t *src, size_t n)
{
    build();
    for (size_t i = 0; i < n; i++)
        dst[i] = a2u[src[i]];
}

void tl_g711_ulaw_to_alaw(uint8_t *dst, const uint8_t *src, size_t n)
{
    build();
    for (size_t i = 0; i < n; i++)
        dst[i] = u2a[src[i]];
}
