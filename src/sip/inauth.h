/* sip/inauth: digest authentication of inbound requests (RFC 3261 §22.4, RFC 7616, RFC 8760)
 * for an inbound trunk that has a username and a password: the carrier's INVITE is
 * challenged with 401 (WWW-Authenticate, SHA-256 then MD5) and its answer verified by
 * sip/digest.h. Used by the call layer for inbound trunks with a username (and by the
 * test build's sip_test_policy handler).
 *
 * Two layers:
 *  - tl_sip_inauth_decide(): pure (no I/O, the caller passes `now`): a request in, a
 *    verdict out with the status code and the header lines of the answer. Unit-tested.
 *  - tl_sip_inauth_gate(): on the stack; decides, answers on the server transaction and logs
 *    (auth.refused / auth.stale / auth.replay; never the password or the response hash).
 *
 * Nonces are bound to the source IP (not the port: a carrier may retry over a new TCP
 * connection, whose port is new) and to time (tl_sip_digest_server.nonce_ttl_s).
 * On the loop thread only: verify writes the server's nonce-count table. */
#ifndef TL_SIP_INAUTH_H
#define TL_SIP_INAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/digest.h"
#include "sip/sip.h"
#include "sip/stack.h"

#define TL_SIP_INAUTH_HDRS_MAX 2048 /* two challenges with a 256-byte realm fit */
#define TL_SIP_INAUTH_USER_LOG 64   /* username bytes kept for logs */

/* What the carrier must prove. All ours (configuration), NUL-terminated. */
struct tl_sip_inauth_cred {
    const char *realm;    /* the realm we challenge with (the public host) */
    const char *username; /* the trunk's */
    const char *password;
    const char *host; /* Warning agent (RFC 3261 §20.43), a host name; NULL: the realm */
    /* challenges in preference order (RFC 8760), NONE-terminated; all NONE: SHA-256 then
     * MD5. UACs that read only the first challenge and know only MD5 (SIPp 3.6) need MD5
     * first: hence a choice, per trunk later (the sip_digest_algorithms setting today). */
    enum tl_sip_digest_alg algs[3];
    /* our names for the digest uri check (tl_sip_digest_check.hosts), or NULL */
    const char *const *hosts;
};

/* "SHA-256,MD5", "MD5,SHA-256", "MD5" or "SHA-256" (case-insensitive, spaces around names
 * allowed) into out (NONE-terminated). 0 or EINVAL (empty, unknown, repeated). */
int tl_sip_inauth_algs(enum tl_sip_digest_alg out[3], const char *list);

enum tl_sip_inauth_verdict {
    TL_SIP_INAUTH_PASS = 0,  /* go on with the request */
    TL_SIP_INAUTH_CHALLENGE, /* 401 + fresh challenges: no credentials for our realm, or a
                              * nonce that is not ours (another source, a previous start) */
    TL_SIP_INAUTH_STALE,     /* 401 + fresh challenges with stale=true: right password, old
                              * nonce (RFC 7616 §3.3) */
    TL_SIP_INAUTH_FORBIDDEN, /* 403 + Warning: wrong username/realm/response, or a nonce-count
                              * already used (RFC 7616 §3.4 replay) */
    TL_SIP_INAUTH_MALFORMED, /* 400 + Warning: unreadable or incomplete credentials */
};

struct tl_sip_inauth_decision {
    enum tl_sip_inauth_verdict verdict;
    uint16_t scode;     /* 0 (PASS), 401, 403 or 400 */
    const char *reason; /* for logs, one token: "no_credentials", "unknown_nonce",
                         * "stale_nonce", "credentials_mismatch", "nonce_reuse",
                         * "digest_uri_mismatch", "malformed";
                         * NULL on PASS */
    /* the username the request claimed, for logs: unescaped, bytes outside printable ASCII
     * (and space, '"', '=', '\') as '?', at most TL_SIP_INAUTH_USER_LOG; "-" when none */
    char user[TL_SIP_INAUTH_USER_LOG + 1];
    /* extra header lines for the answer ("Name: value\r\n"…), NUL-terminated; "" on PASS */
    char hdrs[TL_SIP_INAUTH_HDRS_MAX];
};

/* Decides on request req (an INVITE, or any request we challenge) from `source` (the
 * binding of its nonce: the source IP as text) at `now` (seconds, the clock the server's
 * nonces were made with). Of several Authorization values the first Digest one for our
 * realm counts; values of other schemes or realms are ignored (RFC 3261 §22.4), and one
 * that does not decode makes the request MALFORMED only when no usable value exists.
 * Returns 0 with *d filled, or EINVAL (bad argument, a realm/host with control characters),
 * ENOSPC (hdrs too small), EIO (crypto): then answer 500. */
int tl_sip_inauth_decide(struct tl_sip_digest_server *srv, const struct tl_sip_msg *req,
                         const struct tl_sip_inauth_cred *cred, const char *source, uint64_t now,
                         struct tl_sip_inauth_decision *d);

/* The stack side: decides for a request that reached the INVITE hook (tx, msg), answers on
 * tx when it does not pass (401/403/400, or 500 on an internal error) and logs why.
 * Time: the wall clock in seconds. Not the monotonic loop clock: the nonce carries its
 * timestamp in clear, and a monotonic one would tell the host's uptime; a clock step only
 * makes outstanding nonces stale or "from the future" (both: a fresh 401 stale=true).
 * true: the request passed, the caller goes on with it. */
bool tl_sip_inauth_gate(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *msg,
                        struct tl_sip_digest_server *srv, const struct tl_sip_inauth_cred *cred);

/* ---- one set of credentials with its digest server (the sip_test_auth setting) ---- */
struct tl_sip_inauth {
    struct tl_sip_digest_server srv; /* ~80 KiB: heap */
    struct tl_sip_inauth_cred cred;  /* points into the strings below */
    char realm[TL_SIP_DIGEST_VALUE_MAX + 1];
    char user[TL_SIP_DIGEST_VALUE_MAX + 1];
    char pass[TL_SIP_DIGEST_VALUE_MAX + 1];
};
/* userpass "user:password" (the first ':' splits; both non-empty, no control characters,
 * each ≤ TL_SIP_DIGEST_VALUE_MAX), realm non-empty, algorithms as tl_sip_inauth_algs(),
 * nonce_ttl_s ≥ 1 and below TL_SIP_DIGEST_EPOCH_DEFAULT. secret: the nonce secret (32
 * bytes) the daemon derives from the master key, so nodes sharing it accept each other's
 * nonces (the replay bound this costs: digest.h, tl_sip_digest_server_init); NULL: a
 * random one, and a restart invalidates outstanding nonces. 0, EINVAL, ENOMEM, EIO. */
int tl_sip_inauth_new(struct tl_sip_inauth **ap, const char *realm, const char *userpass,
                      const char *algorithms, uint32_t nonce_ttl_s, const uint8_t *secret);
void tl_sip_inauth_free(struct tl_sip_inauth *a); /* wipes the secret and the password */

/* Test build only (TL_TEST_HOOKS): the sip_test_policy INVITE handler challenges with a
 * (borrowed: keep it alive until tl_sip_sess_layer_free). NULL: no authentication.
 * Implemented in session.c. */
#ifdef TL_TEST_HOOKS
struct tl_sip_sess_layer;
void tl_sip_sess_test_auth(struct tl_sip_sess_layer *l, struct tl_sip_inauth *a);
#endif

#endif
