/* call/trusted: see trusted.h. Open addressing would need tombstones; chains are simpler
 * and the set is small (carriers' signalling blocks, shared by many numbers). */
#include "call/trusted.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    struct tl_route_prefix p; /* address masked to its bits */
    uint32_t refs;
};

struct tl_trusted {
    pthread_mutex_t mu;
    struct node **b;
    size_t nb, n;
    uint32_t per_len[2][129]; /* distinct prefixes per (family, length): which to probe */
};

static void mask(struct tl_route_prefix *p)
{
    unsigned max = p->family == 4 ? 4 : 16;
    unsigned full = p->bits / 8, rest = p->bits % 8;
    if (full < max) {
        if (rest)
            p->addr[full] &= (uint8_t)(0xff00u >> rest);
        memset(p->addr + full + (rest ? 1 : 0), 0, max - full - (rest ? 1 : 0));
    }
    memset(p->addr + max, 0, 16 - max);
}

static size_t hash_of(const struct tl_route_prefix *p)
{
    uint32_t h = 2166136261u;
    const uint8_t *b = (const uint8_t *)p;
    for (size_t i = 0; i < sizeof *p; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

int tl_trusted_new(struct tl_trusted **tp)
{
    struct tl_trusted *t = calloc(1, sizeof *t);
    if (!t || !(t->b = calloc(64, sizeof *t->b))) {
        free(t);
        return ENOMEM;
    }
    t->nb = 64;
    pthread_mutex_init(&t->mu, NULL);
    *tp = t;
    return 0;
}

void tl_trusted_free(struct tl_trusted *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nb; i++)
        for (struct node *n = t->b[i], *nx; n; n = nx) {
            nx = n->next;
            free(n);
        }
    free(t->b);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct node **find(struct tl_trusted *t, const struct tl_route_prefix *p)
{
    struct node **pp = &t->b[hash_of(p) & (t->nb - 1)];
    while (*pp && memcmp(&(*pp)->p, p, sizeof *p))
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct tl_trusted *t)
{
    size_t nb = t->nb * 2;
    struct node **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* longer chains, still right */
    for (size_t i = 0; i < t->nb; i++)
        for (struct node *n = t->b[i], *nx; n; n = nx) {
            nx = n->next;
            n->next = b[hash_of(&n->p) & (nb - 1)];
            b[hash_of(&n->p) & (nb - 1)] = n;
        }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

void tl_trusted_update(struct tl_trusted *t, const struct tl_route_prefix *p, size_t n, int delta)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < n; i++) {
        struct tl_route_prefix k;
        memcpy(&k, &p[i], sizeof k);
        if ((k.family != 4 && k.family != 6) || k.bits > (k.family == 4 ? 32 : 128) ||
            k.bits < (k.family == 4 ? TL_TRUSTED_MIN_BITS4 : TL_TRUSTED_MIN_BITS6))
            continue;
        mask(&k);
        struct node **pp = find(t, &k);
        int fam = k.family == 4 ? 0 : 1;
        if (delta > 0) {
            if (*pp) {
                (*pp)->refs++;
                continue;
            }
            struct node *nd = calloc(1, sizeof *nd);
            if (!nd)
                continue;
            nd->p = k;
            nd->refs = 1;
            nd->next = t->b[hash_of(&k) & (t->nb - 1)];
            t->b[hash_of(&k) & (t->nb - 1)] = nd;
            t->per_len[fam][k.bits]++;
            if (++t->n > t->nb)
                grow(t);
        } else if (*pp && --(*pp)->refs == 0) {
            struct node *nd = *pp;
            *pp = nd->next;
            free(nd);
            t->per_len[fam][k.bits]--;
            t->n--;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

bool tl_trusted_match(struct tl_trusted *t, const struct sockaddr *sa)
{
    struct tl_route_prefix k;
    memset(&k, 0, sizeof k);
    if (!t || !sa)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(k.addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        k.family = 4;
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(a, mapped, 12)) {
            memcpy(k.addr, a + 12, 4);
            k.family = 4;
        } else {
            memcpy(k.addr, a, 16);
            k.family = 6;
        }
    } else {
        return false;
    }
    int fam = k.family == 4 ? 0 : 1;
    unsigned max = k.family == 4 ? 32 : 128;
    struct tl_route_prefix full = k;
    bool hit = false;
    pthread_mutex_lock(&t->mu);
    for (unsigned bits = max + 1; bits-- > 0 && !hit;) {
        if (!t->per_len[fam][bits])
            continue;
        k = full;
        k.bits = (uint8_t)bits;
        mask(&k);
        hit = *find(t, &k) != NULL;
    }
    pthread_mutex_unlock(&t->mu);
    return hit;
}

size_t tl_trusted_count(struct tl_trusted *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
