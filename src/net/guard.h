/* net/guard: which addresses the daemon may connect to on a user's behalf (agent
 * WebSocket URLs, webhooks, TwiML voice URLs): a guard against server-side request
 * forgery. A workspace admin types a URL; without this check a URL naming
 * 169.254.169.254 (cloud metadata), 127.0.0.1:8080 (our own API) or a host on the
 * operator's private network would turn the gateway into a proxy into places the user
 * must not reach.
 *
 * Refused unless inside an operator-allowed network (the setting agent_allow_networks,
 * e.g. "127.0.0.1/32" in tests or a private network where the bots run):
 *   loopback (127/8, ::1), unspecified (0/8, ::), RFC 1918 private (10/8, 172.16/12,
 *   192.168/16), carrier-grade NAT (100.64/10), link-local (169.254/16, fe80::/10) — the
 *   cloud metadata address 169.254.169.254 and fd00:ec2::254 among them —, unique-local
 *   (fc00::/7), site-local (fec0::/10), multicast (224/4, ff00::/8), broadcast and
 *   reserved (240/4), the IETF protocol assignments (192.0.0/24), benchmarking
 *   (198.18/15, 2001:2::/48), documentation ranges (192.0.2/24, 198.51.100/24,
 *   203.0.113/24, 2001:db8::/32, 3fff::/20), NAT64 (64:ff9b::/96 and 64:ff9b:1::/48,
 *   which reach IPv4 space), 6to4 (2002::/16, and its relay anycast 192.88.99/24) and
 *   Teredo (2001::/32), every other IPv6 address outside global unicast (2000::/3), and
 *   IPv4-mapped or -compatible IPv6 addresses whose IPv4 part is refused (the IPv4
 *   allow-list applies to that part: 127.0.0.1/32 allows ::ffff:127.0.0.1).
 *
 * The check runs on every address a name resolves to, when a URL is saved (the API) and
 * again right before each connection (DNS can change between the two: rebinding). */
#ifndef TL_NET_GUARD_H
#define TL_NET_GUARD_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/core.h"

#define TL_NET_GUARD_NETS_MAX 64

struct tl_net_guard {
    size_t n;
    struct {
        uint8_t family; /* 4 or 6 */
        uint8_t bits;
        uint8_t addr[16];
    } allow[TL_NET_GUARD_NETS_MAX];
};

/* Parses "net,net,…" (CIDR or plain address, IPv4 or IPv6; spaces around commas allowed;
 * "" or NULL = none) into g. 0, or EINVAL with err naming `field` and the bad item (an
 * empty item, a bad address or prefix length, bits set after the prefix such as
 * "10.0.0.1/8", more than TL_NET_GUARD_NETS_MAX); g is then empty. */
int tl_net_guard_parse(struct tl_net_guard *g, const char *list, const char *field,
                       struct tl_err *err);
/* true when the daemon may connect to sa (g NULL: no allow-list). Otherwise false, and
 * *why (when why is not NULL) names the kind of address in plain words: "a loopback
 * address", "a private address", "the cloud metadata address", "a link-local address",
 * … (NULL when allowed). */
bool tl_net_guard_ok(const struct tl_net_guard *g, const struct sockaddr *sa, const char **why);
/* true when sa is inside one of g's networks, and nothing else (no address-kind rules;
 * an IPv4-mapped IPv6 address reads as IPv4). false for g NULL or empty. For lists of
 * trusted peers (sip_edge_addresses). */
bool tl_net_guard_contains(const struct tl_net_guard *g, const struct sockaddr *sa);
/* The same for an address in text (an IP literal). false with why "not an IP address"
 * when it does not parse. */
bool tl_net_guard_ok_str(const struct tl_net_guard *g, const char *ip, const char **why);

#endif
