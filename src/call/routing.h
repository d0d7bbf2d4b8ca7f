/* routing: the in-memory routing cache the call path reads instead of the database
 * (DESIGN.md: no database read on the call path).
 *
 * One compact entry per phone number, keyed by its E.164: workspace and plan, the agent
 * (id, kind, builtin name or URL), the inbound trunk (transport, media policy, digest
 * username and password, allowed addresses parsed to binary prefixes, custom headers)
 * and a summary of the outbound trunk. Passwords are opened with tl_store_number_secrets
 * and live only here, in memory; an entry's memory is wiped when it is replaced or
 * removed.
 *
 * Freshness: tl_routing_open loads every number, and installs itself as the store's
 * change hook (store.h): after every committed change that can alter routing (number
 * created, replaced, assigned, deleted, released; agent updated or deleted; workspace
 * plan changed) it re-reads the affected numbers from the store on the writing thread
 * (the API's; off the call path) and swaps their entries in. On a shared store, the same
 * hook runs for the changes of other nodes, on the cluster change feed's thread, and a
 * full reload (tl_routing_reload) when the feed may have missed some.
 *
 * Threads: tl_routing_lookup may be called from any thread (the SIP loop); it copies the
 * entry out under a mutex that writers hold only for O(1) work (a slot written, a pointer
 * swapped), never for a database read, a table growth or a scan: those run under the
 * writers' own lock, and a growth builds the new table off-lock and swaps it in. With a
 * million numbers, no update makes the loop wait for more than one slot write (issue 11,
 * bench/routing). open/close on the owning thread, with no lookups running. */
#ifndef TL_ROUTING_H
#define TL_ROUTING_H

#include <stdbool.h>
#include <sys/socket.h>

#include "store/store.h"

struct tl_route_prefix {
    uint8_t family; /* 4 or 6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
};

/* What the call path needs about one number: a copy, owned by the caller. It holds the
 * inbound password in plain text: wipe it with tl_route_wipe when done. ~7 KiB (the
 * header table); keep it off hot structures. */
struct tl_route {
    char number[TL_E164_MAX + 1];
    char number_id[TL_ID_MAX];
    char workspace_id[TL_ID_MAX];
    char account_sid[TL_TWILIO_SID_LEN + 1]; /* the workspace's, for agents (store.h) */
    enum tl_plan plan;
    /* agent: agent_id "" = unassigned */
    char agent_id[TL_ID_MAX];
    enum tl_agent_kind agent_kind;
    char agent_builtin[TL_BUILTIN_MAX + 1];
    char agent_url[TL_AGENT_URL_MAX + 1];
    size_t n_agent_params; /* the agent's `parameters`, handed to it when a call starts */
    struct tl_route_param {
        char key[TL_PARAM_KEY_MAX + 1];
        char value[TL_PARAM_VALUE_MAX + 1];
    } agent_params[TL_PARAMS_MAX];
    /* websocket agents: the upgrade headers with their values opened (API keys: wiped
     * with the route), and the connect deadline */
    size_t n_agent_headers;
    struct tl_kv agent_headers[TL_HEADERS_MAX];
    uint32_t agent_timeout_ms;
    /* twiml agents: the voice URL is agent_url; the workspace's Twilio auth token, opened
     * (it keys X-Twilio-Signature; "" when none was issued: requests go unsigned) */
    bool agent_method_get;
    char agent_fallback_url[TL_AGENT_URL_MAX + 1];
    char agent_status_callback[TL_AGENT_URL_MAX + 1];
    char twilio_token[TL_TWILIO_TOKEN_LEN + 1];
    /* inbound trunk */
    bool has_inbound;
    enum tl_transport in_transport;
    enum tl_media_enc in_media;
    char in_username[TL_USER_MAX + 1]; /* "" = no digest auth */
    char in_password[TL_PASSWORD_MAX + 1];
    size_t n_allowed; /* 0 = any source */
    struct tl_route_prefix allowed[TL_ALLOWED_MAX];
    size_t n_in_headers;
    struct tl_kv in_headers[TL_HEADERS_MAX];
    enum tl_rtp_latching in_latching; /* DEFAULT: the gateway's rtp_latching setting */
    /* where calls go when the number has no agent or its agent cannot be reached (the
     * gateway stays in the call as a B2BUA: call/relay.c); "" = none */
    char in_origination_url[TL_URI_MAX + 1];
    /* outbound trunk summary (outbound calls read the store's full record) */
    char out_address[TL_HOST_MAX + 1];
    enum tl_transport out_transport;
    enum tl_media_enc out_media;
    bool out_has_auth;
};

struct tl_routing;

/* Loads every number, installs the store's change hook. 0, ENOMEM or a store error. */
int tl_routing_open(struct tl_routing **rp, struct tl_store *s);
/* Removes the hook and wipes and frees every entry. NULL is a no-op. */
void tl_routing_close(struct tl_routing *r);

/* Copies the entry of e164 (exact E.164, see tl_routing_normalise) into *out: 0 or
 * ENOENT. Any thread; no database access. */
int tl_routing_lookup(struct tl_routing *r, const char *e164, struct tl_route *out);
/* Only the owner of e164 (number and workspace ids): for diagnostics about traffic that
 * is not a call (REGISTER), which must not copy the inbound password just to find whom
 * an event belongs to. 0 or ENOENT. */
int tl_routing_owner(struct tl_routing *r, const char *e164, char number_id[TL_ID_MAX],
                     char workspace_id[TL_ID_MAX]);
size_t tl_routing_count(struct tl_routing *r);
/* Tests: fn(arg) runs in the middle of the cache's O(N) work (a table growth, the scan
 * for an agent's or a workspace's numbers), on the writing thread, with the lookups' lock
 * free: a lookup from fn must succeed. NULL removes it. */
void tl_routing_set_scan_hook(struct tl_routing *r, void (*fn)(void *arg), void *arg);
/* Bytes of the entry of e164 (struct and its variable part), 0 when absent: for sizing. */
size_t tl_routing_entry_bytes(struct tl_routing *r, const char *e164);
/* Reloads every number from the store (the cluster change feed's resync, store.h: after
 * its connection was lost, changes made meanwhile are unknown): entries swapped in one by
 * one as they are read, those the store no longer has removed. Lookups go on meanwhile
 * and see either version of each entry. 0 or a store error (the cache stays as it was
 * for what was not read). */
int tl_routing_reload(struct tl_routing *r);
/* Re-reads one number (hook and tests): present in the store -> entry swapped in,
 * absent -> removed. 0 or a store error (the old entry stays). */
int tl_routing_refresh_number(struct tl_routing *r, const char *e164);

void tl_route_wipe(struct tl_route *rt);

/* The called number as it arrives (the Request-URI user part; falling back to the To
 * user is the caller's choice) to E.164 in out: visual separators (space - . ( )) are
 * dropped, a leading "+" is kept (Twilio), a bare international number gets one (Telnyx
 * may send none), a leading "00" international prefix becomes "+", and user parameters
 * after ';' (tel-style ";npdi", ";phone-context=…") are ignored. A "%2B" must already be
 * unescaped by the caller. National forms ("030 1234…") and anything else that is not
 * 1..15 digits with a non-zero first digit are EINVAL. */
int tl_routing_normalise(const char *user, char out[TL_E164_MAX + 1]);

/* true when sa falls in some number's inbound allowed_addresses (blocks wider than /16
 * or, IPv6, /32 excepted: call/trusted.h). Any thread; a few hash probes, no scan. For
 * the SIP transport's reserved connection slots (issue 11). */
bool tl_routing_source_trusted(struct tl_routing *r, const struct sockaddr *sa);

/* true when sa may send calls for route: no allowed_addresses, or sa inside one of them.
 * IPv4-mapped IPv6 sources (::ffff:a.b.c.d, a dual-stack socket) compare as IPv4. */
bool tl_routing_match_source(const struct tl_route *route, const struct sockaddr *sa);

#endif
