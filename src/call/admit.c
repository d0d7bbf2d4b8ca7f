/* Per-source INVITE rate limit: a token bucket per source IP in a fixed table, so a flood
 * from spoofed addresses evicts entries instead of growing memory (security.md: SIP flood
 * exhausting memory, CVE-2021-41145). An evicted source starts again with a full bucket;
 * the concurrent-call caps still bound what it can hold. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "call/call.h"

struct slot {
    uint8_t addr[16];
    uint8_t len;     /* 0 = free */
    uint32_t tokens; /* in thousandths of a token */
    uint64_t last_ms;
};

struct tl_call_rate {
    uint32_t per_s, burst;
    struct slot s[TL_CALL_RATE_SLOTS];
};

int tl_call_rate_new(struct tl_call_rate **rp, uint32_t per_s, uint32_t burst)
{
    struct tl_call_rate *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    r->per_s = per_s ? per_s : 1;
    r->burst = burst >= r->per_s ? burst : r->per_s;
    *rp = r;
    return 0;
}

void tl_call_rate_free(struct tl_call_rate *r)
{
    free(r);
}

static uint32_t hash(const uint8_t *a, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ a[i]) * 16777619u;
    return h;
}

bool tl_call_rate_take(struct tl_call_rate *r, const uint8_t *addr, size_t len, uint64_t now_ms)
{
    if (len > 16)
        len = 16;
    struct slot *s = &r->s[hash(addr, len) % TL_CALL_RATE_SLOTS];
    uint64_t cap = (uint64_t)r->burst * 1000;
    if (s->len != len || memcmp(s->addr, addr, len)) { /* new source or a collision: evict */
        memcpy(s->addr, addr, len);
        s->len = (uint8_t)len;
        s->tokens = (uint32_t)cap;
        s->last_ms = now_ms;
    }
    uint64_t t =
        s->tokens + (now_ms - s->last_ms) * r->per_s; /* per_s tokens/s = per_s/1000 per ms */
    s->last_ms = now_ms;
    if (t > cap)
        t = cap;
    if (t < 1000) {
        s->tokens = (uint32_t)t;
        return false;
    }
    s->tokens = (uint32_t)(t - 1000);
    return true;
}
