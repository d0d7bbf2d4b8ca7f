/* Digest guessing (issue 11 item 3): 200 wrong passwords over one connection took 9 s and
 * the right one was then accepted. Per source (core/srckey.h: IPv4 address, IPv6 /64):
 * the first backoff_after failures cost nothing (a carrier mistyping once), each further
 * one blocks the source for 1, 2, 4 … 60 s, and ban_after failures ban it for ban_s.
 * While blocked or banned its credentials are not verified at all: the answer is the same
 * 403 a wrong password gets, so a guess made then teaches nothing, and the attacker cannot
 * tell a block from a miss. A right password clears the source. Failures are forgotten
 * after window_s without one.
 *
 * Per number: every failed or refused credential attempt counts; threshold of them within
 * window_s raise one credentials_guessing event for the owner (many sources guessing one
 * number is what the per-source limit cannot see).
 *
 * Both tables are fixed and set-associative (4 ways), keyed exactly: a source never
 * inherits another's state, and eviction takes the entry that has been quiet longest (a
 * ban is evicted last). Loop thread only. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "call/call.h"
#include "core/srckey.h"

#define SETS           1024
#define WAYS           4
#define BACKOFF_MAX_MS 60000u

struct src_ent {
    struct tl_srckey k; /* len 0: free */
    uint32_t failures;
    uint64_t last_ms, blocked_until_ms;
};

struct num_ent {
    char id[40]; /* "" free */
    uint32_t count;
    uint64_t window_ms;
    bool told;
};

struct tl_call_authguard {
    struct tl_call_authguard_cfg cfg;
    uint8_t secret[TL_SRCKEY_SECRET_LEN];
    uint8_t nsecret[crypto_shorthash_KEYBYTES];
    struct src_ent src[SETS][WAYS];
    struct num_ent num[SETS][WAYS];
};

int tl_call_authguard_new(struct tl_call_authguard **gp, const struct tl_call_authguard_cfg *cfg)
{
    struct tl_call_authguard *g = calloc(1, sizeof *g);
    if (!g)
        return ENOMEM;
    g->cfg = *cfg;
    if (!g->cfg.window_s)
        g->cfg.window_s = 600;
    tl_srckey_secret(g->secret);
    crypto_shorthash_keygen(g->nsecret);
    *gp = g;
    return 0;
}

void tl_call_authguard_free(struct tl_call_authguard *g)
{
    free(g);
}

/* the source's entry; create: take a way when absent (else NULL) */
static struct src_ent *src_find(struct tl_call_authguard *g, const struct sockaddr *sa,
                                uint64_t now_ms, bool create)
{
    struct tl_srckey k;
    if (!tl_srckey_of(sa, &k))
        return NULL;
    struct src_ent *set = g->src[tl_srckey_hash(g->secret, &k) % SETS];
    uint64_t win = (uint64_t)g->cfg.window_s * 1000;
    struct src_ent *victim = NULL;
    for (int i = 0; i < WAYS; i++) {
        struct src_ent *e = &set[i];
        if (e->k.len && e->k.len == k.len && !memcmp(e->k.b, k.b, k.len)) {
            if (now_ms >= e->blocked_until_ms && now_ms - e->last_ms > win)
                e->failures = 0; /* quiet for a window: forgotten */
            return e;
        }
        /* the quietest way, an unbanned one before any banned one */
        bool banned = e->k.len && e->blocked_until_ms > now_ms;
        bool vbanned = victim && victim->k.len && victim->blocked_until_ms > now_ms;
        if (!victim || !e->k.len || (vbanned && !banned) ||
            (banned == vbanned && victim->k.len && e->last_ms < victim->last_ms))
            victim = e;
    }
    if (!create)
        return NULL;
    memset(victim, 0, sizeof *victim);
    victim->k = k;
    victim->last_ms = now_ms;
    return victim;
}

bool tl_call_authguard_allowed(struct tl_call_authguard *g, const struct sockaddr *sa,
                               uint64_t now_ms)
{
    struct src_ent *e = src_find(g, sa, now_ms, false);
    return !e || now_ms >= e->blocked_until_ms;
}

bool tl_call_authguard_failed(struct tl_call_authguard *g, const struct sockaddr *sa,
                              uint64_t now_ms)
{
    struct src_ent *e = src_find(g, sa, now_ms, true);
    if (!e)
        return false;
    e->failures++;
    e->last_ms = now_ms;
    const struct tl_call_authguard_cfg *c = &g->cfg;
    if (c->ban_after && e->failures >= c->ban_after) {
        e->blocked_until_ms = now_ms + (uint64_t)c->ban_s * 1000;
        e->failures = 0; /* after the ban, the count starts again */
        return true;
    }
    if (e->failures > c->backoff_after) {
        unsigned shift = e->failures - c->backoff_after - 1;
        uint64_t ms = shift >= 6 ? BACKOFF_MAX_MS : 1000u << shift;
        e->blocked_until_ms = now_ms + (ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS);
    }
    return false;
}

void tl_call_authguard_passed(struct tl_call_authguard *g, const struct sockaddr *sa,
                              uint64_t now_ms)
{
    struct src_ent *e = src_find(g, sa, now_ms, false);
    if (e)
        memset(e, 0, sizeof *e);
}

bool tl_call_authguard_number(struct tl_call_authguard *g, const char *number_id, uint64_t now_ms)
{
    if (!g->cfg.number_threshold || !number_id || !number_id[0])
        return false;
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)number_id, strlen(number_id), g->nsecret);
    uint64_t hv;
    memcpy(&hv, h, sizeof hv);
    struct num_ent *set = g->num[hv % SETS], *e = NULL, *victim = &set[0];
    uint64_t win = (uint64_t)g->cfg.window_s * 1000;
    for (int i = 0; i < WAYS && !e; i++) {
        if (!strcmp(set[i].id, number_id))
            e = &set[i];
        else if (!set[i].id[0] || (victim->id[0] && set[i].window_ms < victim->window_ms))
            victim = &set[i];
    }
    if (!e) {
        e = victim;
        memset(e, 0, sizeof *e);
        tl_strlcpy(e->id, number_id, sizeof e->id);
        e->window_ms = now_ms;
    }
    if (now_ms - e->window_ms > win) {
        e->window_ms = now_ms;
        e->count = 0;
        e->told = false;
    }
    e->count++;
    if (e->count >= g->cfg.number_threshold && !e->told) {
        e->told = true;
        return true;
    }
    return false;
}
