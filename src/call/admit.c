/* INVITE rate limits: a token bucket per source and one for the whole gateway (issue 11
 * item 7).
 *
 * Per source: a fixed table of buckets indexed by a keyed SipHash of the source
 * (core/srckey.h: IPv4 per address, IPv6 per /64), so a flood from spoofed or rotating
 * addresses never grows memory (CVE-2021-41145 class). Sources that share a slot share its
 * bucket: a collision never hands out a fresh, full bucket (the direct-mapped, unkeyed
 * table this replaces reset a source on every collision, so two colliding addresses
 * alternating had no limit), and the per-start key means nobody can aim a collision at a
 * victim. The global bucket bounds what many sources together can start, however they
 * spread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call/call.h"
#include "core/srckey.h"

struct bucket {
    uint32_t tokens; /* thousandths of a token */
    bool used;
    uint64_t last_ms;
};

struct tl_call_rate {
    uint32_t per_s, burst, g_per_s, g_burst;
    uint8_t secret[TL_SRCKEY_SECRET_LEN];
    struct bucket global;
    struct bucket s[TL_CALL_RATE_SLOTS];
};

int tl_call_rate_new(struct tl_call_rate **rp, uint32_t per_s, uint32_t burst, uint32_t g_per_s,
                     uint32_t g_burst)
{
    struct tl_call_rate *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->per_s = per_s ? per_s : 1;
    r->burst = burst >= r->per_s ? burst : r->per_s;
    r->g_per_s = g_per_s;
    r->g_burst = g_burst >= g_per_s ? g_burst : g_per_s;
    tl_srckey_secret(r->secret);
    *rp = r;
    return 0;
}

void tl_call_rate_free(struct tl_call_rate *r)
{
    free(r);
}

size_t tl_call_rate_slot(const struct tl_call_rate *r, const uint8_t *addr, size_t len)
{
    struct tl_srckey k;
    if (!tl_srckey_raw(addr, len, &k))
        return SIZE_MAX;
    return (size_t)(tl_srckey_hash(r->secret, &k) % TL_CALL_RATE_SLOTS);
}

/* Refills b to now; true when it holds a whole token (not taken yet). */
static bool refill(struct bucket *b, uint32_t per_s, uint32_t burst, uint64_t now_ms)
{
    uint64_t cap = (uint64_t)burst * 1000;
    if (!b->used) {
        b->used = true;
        b->tokens = (uint32_t)cap;
        b->last_ms = now_ms;
    }
    /* per_s tokens/s = per_s thousandths per ms; a clock that went back adds nothing */
    uint64_t t = b->tokens + (now_ms > b->last_ms ? (now_ms - b->last_ms) * per_s : 0);
    b->last_ms = now_ms > b->last_ms ? now_ms : b->last_ms;
    b->tokens = (uint32_t)(t > cap ? cap : t);
    return b->tokens >= 1000;
}

enum tl_call_rate_verdict tl_call_rate_take(struct tl_call_rate *r, const uint8_t *addr, size_t len,
                                            uint64_t now_ms)
{
    size_t slot = tl_call_rate_slot(r, addr, len);
    struct bucket *b = slot == SIZE_MAX ? NULL : &r->s[slot];
    if (b && !refill(b, r->per_s, r->burst, now_ms))
        return TL_CALL_RATE_SOURCE;
    if (r->g_per_s && !refill(&r->global, r->g_per_s, r->g_burst, now_ms))
        return TL_CALL_RATE_GLOBAL; /* the source's token stays: it was not used */
    if (b)
        b->tokens -= 1000;
    if (r->g_per_s)
        r->global.tokens -= 1000;
    return TL_CALL_RATE_OK;
}
