/* core/pl: slice comparisons (pl.h). */
#include "core/pl.h"

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

bool tl_pl_eq(const struct tl_pl *a, const struct tl_pl *b)
{
    return a->l == b->l && (a->l == 0 || memcmp(a->p, b->p, a->l) == 0);
}

bool tl_pl_eq_str(const struct tl_pl *pl, const char *s)
{
    struct tl_pl b = tl_pl_str(s);
    return tl_pl_eq(pl, &b);
}

bool tl_pl_caseeq(const struct tl_pl *a, const struct tl_pl *b)
{
    if (a->l != b->l)
        return false;
    for (size_t i = 0; i < a->l; i++)
        if (lower((unsigned char)a->p[i]) != lower((unsigned char)b->p[i]))
            return false;
    return true;
}

bool tl_pl_caseeq_str(const struct tl_pl *pl, const char *s)
{
    struct tl_pl b = tl_pl_str(s);
    return tl_pl_caseeq(pl, &b);
}
