/* core/srckey: a packet's source address as the key of per-source state (rate limits,
 * connection and transaction caps, digest failure bans; issue 11).
 *
 * IPv4 (and IPv4-mapped IPv6, a dual-stack socket) counts per address. IPv6 counts per
 * /64: a single host is routinely given a whole /64 (RFC 6177) and can pick any of its
 * 2^64 addresses, so per-/128 state would be no limit at all.
 *
 * Tables of per-source state are fixed arrays indexed by a SipHash-2-4 of the key
 * (libsodium crypto_shorthash) under a secret drawn per table at start: nobody outside
 * can compute which sources share a slot, so nobody can pick addresses that collide with
 * a victim's (the unkeyed FNV tables it replaces could be aimed). Sources that do share a
 * slot share its state; that is conservative (never a fresh allowance), and rare. */
#ifndef TL_CORE_SRCKEY_H
#define TL_CORE_SRCKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct tl_srckey {
    uint8_t b[9]; /* family tag, then 4 (IPv4) or 8 (IPv6 /64) address bytes */
    uint8_t len;
};

/* The key of sa (AF_INET, AF_INET6). false for another family. */
bool tl_srckey_of(const struct sockaddr *sa, struct tl_srckey *k);
/* The same from raw address bytes: 4 (IPv4) or 16 (IPv6; an IPv4-mapped one reads as
 * IPv4). false for another length. */
bool tl_srckey_raw(const uint8_t *addr, size_t len, struct tl_srckey *k);

/* A secret for tl_srckey_hash, random per call (libsodium must be initialised). */
#define TL_SRCKEY_SECRET_LEN 16
void tl_srckey_secret(uint8_t secret[TL_SRCKEY_SECRET_LEN]);
uint64_t tl_srckey_hash(const uint8_t secret[TL_SRCKEY_SECRET_LEN], const struct tl_srckey *k);

/* A fixed table of per-source counters (live connections, transactions): add() refuses
 * to go over max for the source's slot. */
struct tl_srccount {
    uint8_t secret[TL_SRCKEY_SECRET_LEN];
    uint32_t *n;
    size_t slots; /* power of two */
};
int tl_srccount_init(struct tl_srccount *c, size_t slots); /* 0 or ENOMEM */
void tl_srccount_free(struct tl_srccount *c);
/* The slot of sa, or SIZE_MAX for an address family without one (never capped). */
size_t tl_srccount_slot(const struct tl_srccount *c, const struct sockaddr *sa);
/* +1 on the slot unless that would exceed max (0: no cap). false: over the cap. */
bool tl_srccount_add(struct tl_srccount *c, size_t slot, uint32_t max);
void tl_srccount_del(struct tl_srccount *c, size_t slot);
uint32_t tl_srccount_get(const struct tl_srccount *c, size_t slot);

#endif
