/* core/pl: slices — a pointer and a length into somebody else's buffer, never
 * NUL-terminated. Parsers of wire formats (SIP, SDP, HTTP, JSON from agents) hand these out
 * instead of copies, so nothing is patched or unescaped in place and a NUL inside a value
 * (RFC 4475 escnull) is just an octet. */
#ifndef TL_CORE_PL_H
#define TL_CORE_PL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct tl_pl {
    const char *p;
    size_t l;
};
#define TL_PL(lit) ((struct tl_pl){(lit), sizeof(lit) - 1})
static inline struct tl_pl tl_pl_str(const char *s)
{
    return (struct tl_pl){s, s ? strlen(s) : 0};
}

bool tl_pl_eq(const struct tl_pl *a, const struct tl_pl *b);     /* byte-exact */
bool tl_pl_eq_str(const struct tl_pl *pl, const char *s);        /* byte-exact */
bool tl_pl_caseeq(const struct tl_pl *a, const struct tl_pl *b); /* ASCII case-insensitive */
bool tl_pl_caseeq_str(const struct tl_pl *pl, const char *s);    /* ASCII case-insensitive */

#endif
