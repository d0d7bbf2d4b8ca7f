/* core/srckey: see srckey.h. */
#include "core/srckey.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

_Static_assert(TL_SRCKEY_SECRET_LEN == crypto_shorthash_KEYBYTES, "SipHash-2-4 key size");

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool tl_srckey_raw(const uint8_t *a, size_t len, struct tl_srckey *k)
{
    memset(k, 0, sizeof *k);
    if (len == 16 && !memcmp(a, v4mapped, 12)) {
        a += 12;
        len = 4;
    }
    if (len == 4) {
        k->b[0] = 4;
        memcpy(k->b + 1, a, 4);
        k->len = 5;
        return true;
    }
    if (len == 16) {
        k->b[0] = 6;
        memcpy(k->b + 1, a, 8); /* the /64 */
        k->len = 9;
        return true;
    }
    return false;
}

bool tl_srckey_of(const struct sockaddr *sa, struct tl_srckey *k)
{
    if (sa->sa_family == AF_INET)
        return tl_srckey_raw(
            (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4, k);
    if (sa->sa_family == AF_INET6)
        return tl_srckey_raw(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr, 16,
                             k);
    memset(k, 0, sizeof *k);
    return false;
}

void tl_srckey_secret(uint8_t secret[TL_SRCKEY_SECRET_LEN])
{
    crypto_shorthash_keygen(secret);
}

uint64_t tl_srckey_hash(const uint8_t secret[TL_SRCKEY_SECRET_LEN], const struct tl_srckey *k)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, k->b, k->len, secret);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return h;
}

int tl_srccount_init(struct tl_srccount *c, size_t slots)
{
    size_t n = 1;
    while (n < slots)
        n <<= 1;
    tl_srckey_secret(c->secret);
    c->slots = n;
    c->n = calloc(n, sizeof *c->n);
    return c->n ? 0 : ENOMEM;
}

void tl_srccount_free(struct tl_srccount *c)
{
    free(c->n);
    c->n = NULL;
}

size_t tl_srccount_slot(const struct tl_srccount *c, const struct sockaddr *sa)
{
    struct tl_srckey k;
    if (!c->n || !tl_srckey_of(sa, &k))
        return SIZE_MAX;
    return (size_t)(tl_srckey_hash(c->secret, &k) & (c->slots - 1));
}

bool tl_srccount_add(struct tl_srccount *c, size_t slot, uint32_t max)
{
    if (slot == SIZE_MAX)
        return true;
    if (max && c->n[slot] >= max)
        return false;
    c->n[slot]++;
    return true;
}

void tl_srccount_del(struct tl_srccount *c, size_t slot)
{
    if (slot != SIZE_MAX && c->n[slot])
        c->n[slot]--;
}

uint32_t tl_srccount_get(const struct tl_srccount *c, size_t slot)
{
    return slot == SIZE_MAX ? 0 : c->n[slot];
}
