/* net/resolve: locating the server of an outbound trunk (RFC 3263 §4, RFC 2782), async on
 * libuv with c-ares. The trunk's transport is fixed by its configuration, so resolution
 * only picks addresses and ports, never the transport:
 *
 *   host is an IP literal ("192.0.2.1", "2001:db8::1", "[2001:db8::1]")
 *       -> that address, the given port or 5060 (UDP/TCP) / 5061 (TLS); no DNS at all.
 *   port given -> A and AAAA of host only (§4.2: an explicit port means no NAPTR/SRV).
 *   otherwise:
 *     1. NAPTR of host (§4.1); kept: flags "s", no regexp, service SIPS+D2T (TLS), SIP+D2T
 *        (TCP) or SIP+D2U (UDP) as the trunk's transport; ordered by order, then
 *        preference. The SRV name of each record is tried in turn; the first that has
 *        records wins. (§4.1 skips NAPTR when the transport is known; we still ask, so an
 *        operator's non-standard SRV name is honoured, and fall back as below.)
 *     2. no usable NAPTR, or none of their SRV names has records: SRV of _sips._tcp.<host>
 *        (TLS), _sip._tcp.<host> (TCP) or _sip._udp.<host> (UDP) (§4.2).
 *     3. SRV records are ordered by priority, then by weighted random choice within one
 *        priority (RFC 2782 "Usage rules"). A lone target "." means the service is
 *        decidedly not available: ENOENT, no fallback to A.
 *     4. no SRV records either: A and AAAA of host, default port (§4.2).
 *   Every name is then looked up as A and AAAA, /etc/hosts first ("fb" lookups), and
 *   each name contributes its IPv4 addresses, then its IPv6 ones (carriers' IPv4 paths are
 *   the tested ones; opts.family narrows it). An address already listed is not repeated.
 *
 * Names are absolute: resolv.conf search domains are never appended. "localhost" comes
 * from /etc/hosts, or is loopback without asking DNS (c-ares, RFC 6761 §6.3).
 *
 * TLS (RFC 5922 §4): the certificate is checked against the domain the trunk was
 * configured with (tl_net_targets.tls_name), which is also the SNI — not the SRV target,
 * which DNS, not the operator, chose.
 *
 * Failover (RFC 3263 §4.3): the result is an ordered list; the transaction layer sends to
 * the current target and moves to the next one on a transport error, a timeout or a 503,
 * with tl_net_targets_next().
 *
 * Errors follow core.h (0 or a positive errno). Everything runs on the loop's thread. */
#ifndef TL_SIP_RESOLVE_H
#define TL_SIP_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The transport a lookup is for: it picks the NAPTR services and SRV names (RFC 3263) and
 * the default port. Same numbers as enum tl_sip_transport, so SIP passes its own. */
enum tl_net_proto { TL_NET_UDP = 1, TL_NET_TCP = 2, TL_NET_TLS = 3 };

/* ---- caps (ours; each bounds work that a DNS answer drives) ---- */
#define TL_NET_NAME_MAX     253 /* octets of a domain name in text, no trailing dot */
#define TL_NET_NAPTR_MAX    16  /* usable NAPTR records kept (the best ones) */
#define TL_NET_SRV_MAX      16  /* SRV records kept (the lowest priorities) */
#define TL_NET_ADDR_MAX     16  /* addresses taken from one name */
#define TL_NET_TARGETS_MAX  16  /* targets in one result */
#define TL_NET_PORT_DEFAULT 5060
#define TL_NET_PORT_TLS     5061

/* ---- results ---- */
struct tl_net_target {
    enum tl_net_proto tp;       /* the transport asked for */
    struct sockaddr_storage sa; /* address and port */
    socklen_t salen;
    char host[TL_NET_NAME_MAX + 1]; /* the name the address came from: the SRV target or
                                     * the trunk's host (logs); "" for an IP literal */
    uint16_t priority, weight;      /* of the SRV record; 0 without SRV */
};

struct tl_net_targets {
    char tls_name[TL_NET_NAME_MAX + 1]; /* the trunk's host as configured: verify the
                                         * certificate against it and send it as SNI
                                         * (RFC 5922 §4); an IP literal stays as given */
    size_t n;                           /* 1..TL_NET_TARGETS_MAX on success */
    size_t cur;                         /* the target in use */
    struct tl_net_target v[TL_NET_TARGETS_MAX];
};

/* The target in use, or NULL when the list is exhausted. */
const struct tl_net_target *tl_net_targets_cur(const struct tl_net_targets *tg);
/* Moves to the next target after a failure of the current one (RFC 3263 §4.3: transport
 * error, timeout, 503) and returns it, or NULL when none is left: the request fails. */
const struct tl_net_target *tl_net_targets_next(struct tl_net_targets *tg);
/* "192.0.2.1:5060" or "[2001:db8::1]:5061" into buf (always terminated). 0 or ENOSPC. */
int tl_net_target_str(const struct tl_net_target *t, char *buf, size_t cap);

/* ---- SRV ordering (RFC 2782), separate from DNS so it can be tested alone ---- */
struct tl_net_srv {
    uint16_t priority, weight, port;
    char target[TL_NET_NAME_MAX + 1];
};
/* Orders v in place: ascending priority; within one priority, repeatedly picks a record at
 * random with probability weight / sum of the weights left (zero weights first, so they
 * are picked only when their running sum is drawn: rarely, RFC 2782). *rng is the state
 * of a small PRNG (any value; the same seed gives the same order). n <= TL_NET_SRV_MAX. */
void tl_net_srv_order(struct tl_net_srv *v, size_t n, uint64_t *rng);

/* ---- resolver ---- */
struct uv_loop_s;
struct tl_net_resolver;
struct tl_net_resolve_query;

struct tl_net_resolver_opts {
    const char *servers; /* "127.0.0.1:5353,[::1]:53" (c-ares CSV); NULL: resolv.conf */
    unsigned timeout_ms; /* budget of one tl_net_resolve(), every step included; after it
                          * the callback gets ETIMEDOUT. 0: 4000 */
    unsigned tries;      /* sends of one question to each server; 0: 2 (each attempt gets
                          * timeout_ms / (2 * tries), doubled per round by c-ares) */
    int family;          /* AF_UNSPEC (0, both), AF_INET or AF_INET6 */
    bool env_hosts;      /* read the hosts file named by $CARES_HOSTS instead of
                          * /etc/hosts (tests; a private hosts file for the daemon) */
    uint64_t seed;       /* SRV weight PRNG seed; 0: random */
};

/* Creates a resolver on loop. o may be NULL (all defaults). 0, EINVAL (bad servers
 * string or option), ENOMEM, EIO (c-ares could not initialise). */
int tl_net_resolver_alloc(struct tl_net_resolver **rp, struct uv_loop_s *loop,
                          const struct tl_net_resolver_opts *o);

/* Cancels every query still pending — each callback is called with ECANCELED before this
 * returns — and closes the resolver's handles. The memory is released in the handles'
 * close callbacks: run the loop afterwards (uv_run) before closing it. Safe to call from a
 * resolve callback; NULL is a no-op. */
void tl_net_resolver_free(struct tl_net_resolver *r);

/* err: 0 and tg with tg->n >= 1 targets, tg->cur = 0; or
 *   ENOENT        no such name, no records, or SRV says "." (service not available)
 *   ETIMEDOUT     no answer within opts.timeout_ms (a silent server is down, not empty)
 *   EIO           every DNS server failed: SERVFAIL, REFUSED, connection refused (port
 *                 unreachable), a malformed answer (c-ares 1.18 reports the first three
 *                 alike)
 *   ENOMEM
 *   ECANCELED     the resolver was freed
 * and tg == NULL. tg is valid only during the call: copy the struct to keep it. */
typedef void(tl_net_resolve_h)(int err, const struct tl_net_targets *tg, void *arg);

/* Starts locating host for transport `want` (TL_NET_UDP, _TCP or _TLS); port 0 = none
 * given. A trailing dot on host is ignored.
 *
 * Contract: if this returns an error, the callback is never called. Otherwise the
 * callback is called exactly once, always from the loop (never from inside this call),
 * unless the query is cancelled with tl_net_resolve_cancel() first. *qp (qp may be NULL)
 * identifies the query until the callback runs or it is cancelled; it is invalid after.
 *
 * Returns 0, EINVAL (NULL argument, empty name, bad characters or labels), E2BIG (name
 * over TL_NET_NAME_MAX), EPROTONOSUPPORT (want not UDP/TCP/TLS), ESHUTDOWN (the resolver
 * is being freed), ENOMEM. */
int tl_net_resolve(struct tl_net_resolver *r, const char *host, uint16_t port,
                   enum tl_net_proto want, tl_net_resolve_h *cb, void *arg,
                   struct tl_net_resolve_query **qp);

/* Cancels a query whose callback has not run yet: the callback is NEVER called after this
 * (the caller knows it cancelled; a callback would run into a half-destroyed owner).
 * From inside the query's own callback it is a harmless no-op. DNS questions already sent
 * are left to finish or time out inside the resolver. */
void tl_net_resolve_cancel(struct tl_net_resolve_query *q);

#endif
