/* call/trusted: "is this address allowed by some trunk?" — the union of every inbound
 * trunk's allowed_addresses, for the SIP transport's reserved connection slots (issue 11
 * item 1: a flood from elsewhere must not take the carriers' way in).
 *
 * A multiset of prefixes (a block listed by two numbers counts twice and stays until both
 * drop it), kept by the routing cache as it swaps entries in and out, and read by the loop
 * for each accepted connection while the open slots run short: a lookup probes one hash
 * per prefix length in use (at most 33 for IPv4, 129 for IPv6), never a scan of numbers.
 *
 * Blocks wider than /16 (IPv4) or /32 (IPv6) are left out: a trunk open to a large part
 * of the internet must not make the reserved slots everybody's.
 *
 * Thread-safe: writers (the API thread's routing refreshes) and readers (the loop) take
 * one mutex, held for a hash probe or an insertion only. */
#ifndef TL_CALL_TRUSTED_H
#define TL_CALL_TRUSTED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "call/routing.h"

#define TL_TRUSTED_MIN_BITS4 16
#define TL_TRUSTED_MIN_BITS6 32

struct tl_trusted;
int tl_trusted_new(struct tl_trusted **tp); /* 0 or ENOMEM */
void tl_trusted_free(struct tl_trusted *t);
/* Adds (delta +1) or removes (-1) n prefixes. Out of memory on an add: that prefix is not
 * trusted (the slots stay reserved for the others), nothing else fails. */
void tl_trusted_update(struct tl_trusted *t, const struct tl_route_prefix *p, size_t n, int delta);
/* true when sa (AF_INET/AF_INET6; IPv4-mapped reads as IPv4) falls in some prefix. */
bool tl_trusted_match(struct tl_trusted *t, const struct sockaddr *sa);
size_t tl_trusted_count(struct tl_trusted *t); /* distinct prefixes (tests) */

#endif
