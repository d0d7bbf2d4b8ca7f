/* sip/digest: HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760), both
 * sides, as pure functions: no I/O, no timers (the caller passes `now`, in seconds), no
 * allocation. Crypto is OpenSSL 3 (EVP); a failure there is reported as EIO.
 *
 * Server: we challenge a carrier's INVITE on an inbound trunk that has a username and a
 * password. Client: we answer a carrier's 401/407 to a request we sent to an outbound trunk.
 *
 * Supported: algorithm MD5 and SHA-256, qop=auth. Not supported, on purpose:
 *  - "-sess" algorithms (MD5-sess, SHA-256-sess): no carrier we talk to needs them, and their
 *    HA1 caching buys nothing for one trunk password. Server: MALFORMED. Client: ignored.
 *  - SHA-512-256: no carrier sends it. Same treatment.
 *  - qop=auth-int (body hashing) and userhash=true: never offered by us; refused.
 *
 * Errors: 0 or a positive errno, as in sip.h — EINVAL (bad argument from our own code, e.g. a
 * CR in a configured username), ENOSPC (the caller's buffer; nothing is truncated), E2BIG
 * (a value from the wire over TL_SIP_DIGEST_VALUE_MAX), EBADMSG (malformed value from the
 * wire), EPERM (challenge for a realm we do not expect), ENOTSUP (no challenge we can
 * answer), EIO (OpenSSL failed). */
#ifndef TL_SIP_DIGEST_H
#define TL_SIP_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sip.h"

#define TL_SIP_DIGEST_KEY_SIZE    32
#define TL_SIP_DIGEST_TTL_DEFAULT 300  /* seconds a nonce stays fresh */
#define TL_SIP_DIGEST_NONCE_LEN   43   /* base64url, unpadded, of 8 + 8 + 16 bytes */
#define TL_SIP_DIGEST_VALUE_MAX   256  /* realm, nonce, opaque, username, cnonce (unescaped) */
#define TL_SIP_DIGEST_URI_MAX     1024 /* digest-uri when compared with the Request-URI */
/* Nonce-count table: 1024 sets x 4 ways = 4096 nonces remembered (see verify below). */
#define TL_SIP_DIGEST_NC_SETS 1024
#define TL_SIP_DIGEST_NC_WAYS 4

enum tl_sip_digest_alg {
    TL_SIP_DIGEST_ALG_NONE = 0, /* unknown / unsupported */
    TL_SIP_DIGEST_ALG_MD5,
    TL_SIP_DIGEST_ALG_SHA256,
};
/* "MD5", "SHA-256" (case-insensitive); an absent value (p == NULL) is MD5 (RFC 7616 §3.3).
 * Everything else, "-sess" included, is NONE. */
enum tl_sip_digest_alg tl_sip_digest_alg_id(const struct tl_pl *name);

/* ---- server ---- */

struct tl_sip_digest_nc {
    uint8_t id[16]; /* timestamp || random of the nonce; all zero = free */
    uint32_t nc;    /* highest nonce-count accepted with it */
};

/* Nonce keys rotate (issue 13): the key of epoch e = floor(t / epoch_s) is derived from the
 * secret (libsodium crypto_kdf, subkey id e), and a nonce is checked with the key of the
 * epoch its own timestamp names. Only the current and the previous epoch are accepted, so
 * a key is good for at most two epochs; epoch_s must exceed nonce_ttl_s, or fresh nonces
 * would outlive their key. */
#define TL_SIP_DIGEST_EPOCH_DEFAULT 86400 /* s: one day, far beyond any nonce TTL */
/* Seconds a nonce may come from the future: nodes behind one edge each stamp their own
 * nonces, and an NTP-synchronised neighbour a few ms behind reads the previous second at
 * a second boundary. Beyond this, the clock stepped back: STALE. */
#define TL_SIP_DIGEST_SKEW_S 1

/* Not thread-safe: verify writes the nonce-count table. Large (~80 KiB): keep it static or on
 * the heap, one per event loop. Holds a secret: tl_sip_digest_server_wipe() when done. */
struct tl_sip_digest_server {
    uint8_t key[TL_SIP_DIGEST_KEY_SIZE]; /* the secret epoch keys and the opaque come from */
    uint32_t nonce_ttl_s;                /* TL_SIP_DIGEST_TTL_DEFAULT after init */
    uint32_t epoch_s;                    /* TL_SIP_DIGEST_EPOCH_DEFAULT after init */
    struct tl_sip_digest_nc nc[TL_SIP_DIGEST_NC_SETS][TL_SIP_DIGEST_NC_WAYS];
};

/* Copies the 32-byte secret and empties the nonce-count table. 0 or EINVAL.
 *
 * The daemon derives the secret from the master key (serve.c), so every node sharing the
 * database accepts the nonces of every other: a carrier's answer to node 1's 401 that the
 * edge sends to node 2 passes there. The nonce-count table stays per node and in memory:
 * a captured answer can be replayed once on each other node, and once on a node after its
 * restart, while its nonce is fresh (nonce_ttl_s), and only from the source address the
 * nonce is bound to. Over TLS answers are not observable; over TCP the window is that TTL.
 * Without a shared secret (tests), a random one per start. */
int tl_sip_digest_server_init(struct tl_sip_digest_server *srv, const uint8_t *secret);
void tl_sip_digest_server_wipe(struct tl_sip_digest_server *srv);

/* nonce = base64url( ts (8 bytes BE, seconds) || 8 random bytes ||
 *                    HMAC-SHA256(key of epoch(ts), ts || random || source)[0..16) )
 * source is the request's source address as the caller chooses to bind it, "ip:port" or
 * "ip": a nonce captured on one path is BAD_NONCE from another. out gets
 * TL_SIP_DIGEST_NONCE_LEN characters and a NUL. 0, EINVAL, EIO. */
int tl_sip_digest_nonce(const struct tl_sip_digest_server *srv,
                        char out[TL_SIP_DIGEST_NONCE_LEN + 1], const char *source, uint64_t now);

/* One challenge value: Digest realm="…", nonce="…", opaque="…", algorithm=…, qop="auth"
 * [, stale=true]. realm is ours (configuration): ≤ TL_SIP_DIGEST_VALUE_MAX bytes, no control
 * characters, else EINVAL. All-or-nothing on wb: 0, EINVAL, ENOSPC, EIO. */
int tl_sip_digest_challenge_value(const struct tl_sip_digest_server *srv, struct tl_sip_wbuf *wb,
                                  enum tl_sip_digest_alg alg, const char *realm, const char *nonce,
                                  bool stale);

/* What a 401/407 needs: two header lines "<hdr>: <value>\r\n" with one fresh nonce, SHA-256
 * first then MD5 (RFC 8760 UAS behaviour: challenges in preference order, a different
 * algorithm each; MD5 for carriers that have nothing better), ready for tl_sip_reply.hdrs (wb is
 * not NUL-terminated: add one). hdr is TL_SIP_HDR_WWW_AUTHENTICATE (401) or
 * TL_SIP_HDR_PROXY_AUTHENTICATE (407). stale: the last request carried a stale nonce with a right
 * response (RFC 7616 §3.3). All-or-nothing on wb: 0, EINVAL, ENOSPC, EIO. */
int tl_sip_digest_challenge(const struct tl_sip_digest_server *srv, struct tl_sip_wbuf *wb,
                            enum tl_sip_hdr_id hdr, const char *realm, const char *source,
                            bool stale, uint64_t now);

enum tl_sip_digest_result {
    TL_SIP_DIGEST_OK = 0,
    TL_SIP_DIGEST_STALE,           /* ours, right response, too old: 401/407 stale=true */
    TL_SIP_DIGEST_BAD_CREDENTIALS, /* wrong username, realm or response: 403 (or 401) */
    TL_SIP_DIGEST_BAD_NONCE,       /* not ours, bound to another source, opaque changed */
    TL_SIP_DIGEST_REPLAY,          /* nc not above the highest seen for that nonce */
    TL_SIP_DIGEST_MALFORMED,       /* missing field, unknown algorithm, qop other than auth:
                                    * 400 */
    TL_SIP_DIGEST_URI_MISMATCH,    /* the digest uri names another resource (see below) */
};
const char *tl_sip_digest_result_str(enum tl_sip_digest_result r); /* for logs */

/* What the request must match. Strings are ours (NUL-terminated); method and ruri come from
 * the request line. */
struct tl_sip_digest_check {
    struct tl_pl method; /* request method as written (A2 = method:uri) */
    struct tl_pl ruri;   /* Request-URI; p == NULL: the digest uri is not compared */
    /* Our own names (public host, addresses), NULL-terminated, or NULL. The digest uri must
     * name the Request-URI's resource (RFC 7616 §3.4.6), but a carrier's proxy may rewrite
     * the Request-URI after its UA computed the answer for the proxy's own address: so a
     * sip/sips digest uri is also accepted when its user part is the Request-URI's (the
     * called number) or its host is one of these. The answer is still computed over the
     * digest uri as sent, and the nonce stays bound to the source and time. */
    const char *const *hosts;
    const char *realm;    /* the realm we challenged with */
    const char *username; /* the trunk's username */
    const char *password; /* the trunk's password */
    const char *source;   /* as given to tl_sip_digest_challenge() */
};

/* Checks Authorization / Proxy-Authorization credentials (cred from tl_sip_auth_decode).
 * qop=auth with nc and cnonce is required (RFC 8760 makes qop mandatory; we offered it, so an
 * RFC 2069 answer would be a downgrade); a present opaque must be ours, an absent one is tolerated
 * (it carries nothing the MAC-bound nonce does not). The response is compared in constant time.
 *
 * A nonce whose timestamp names an epoch other than the current or the previous one (the
 * current one of now + TL_SIP_DIGEST_SKEW_S, at a boundary) is BAD_NONCE: its key is
 * retired, and nothing says the password is wrong.
 *
 * Checks run in this order, the first failure is the result: MALFORMED, BAD_NONCE,
 * BAD_CREDENTIALS, STALE, REPLAY. STALE comes only with a right response (RFC 7616 §3.3:
 * stale=true means "your password is fine"), and a nonce from more than
 * TL_SIP_DIGEST_SKEW_S in the future (clock stepped back) is STALE too.
 *
 * Replay (RFC 7616 §3.4, nonce-count): a table of TL_SIP_DIGEST_NC_SETS x _WAYS entries maps
 * a nonce (set chosen by its MAC) to the highest nc accepted. Only requests with a right
 * response are recorded, so an unauthenticated flood cannot evict entries. A nonce not in
 * the table starts at nc 0. A full set evicts its oldest nonce (free and expired entries go
 * first), so a live nonce is forgotten only when a fifth live nonce lands in its set: rare
 * with a few hundred authenticated nonces per TTL (a trunk uses one per call attempt), usual
 * beyond 4096. A forgotten nonce is accepted once more with any nc ≥ 1 (a replay window
 * bounded by nonce_ttl_s); a remembered one with an equal or lower nc is REPLAY.
 *
 * *res gets the result, never OK unless 0 is returned; the return is 0, EINVAL (NULL
 * argument) or EIO (OpenSSL). A scheme other than Digest is MALFORMED: check cred->digest
 * first to re-challenge instead. */
int tl_sip_digest_verify(struct tl_sip_digest_server *srv, const struct tl_sip_auth *cred,
                         const struct tl_sip_digest_check *chk, uint64_t now,
                         enum tl_sip_digest_result *res);

/* ---- client ---- */

struct tl_sip_digest_client {
    const char *method;   /* "INVITE" */
    const char *uri;      /* the Request-URI we send (digest-uri) */
    const char *username; /* from the trunk configuration */
    const char *password;
    const char *realm;  /* expected realm (the trunk's, or its host; ASCII
                         * case-insensitive). NULL accepts any realm: don't
                         * (FreeSWITCH CVE-2021-41158) */
    const char *cnonce; /* NULL: 16 random bytes, base64url */
    uint32_t nc;        /* 1 for a new nonce, +1 on each reuse of the same nonce */
};

/* Answers one of chc decoded challenges (every WWW-Authenticate or every Proxy-Authenticate
 * value of the response): the best one we support with the expected realm — SHA-256 over
 * MD5, the first of equals; other schemes, "-sess" and unknown algorithms, and qop lists
 * without "auth" are skipped. Writes the Authorization / Proxy-Authorization value:
 *   Digest username="…", realm="…", nonce="…", uri="…", response="…"[, algorithm=<as given>]
 *          [, cnonce="…", opaque="…", qop=auth, nc=00000001]
 * algorithm is echoed as written and omitted when the challenge omitted it (Twilio); without
 * qop in the challenge the RFC 2069 form is used (some Telnyx challenges), with no
 * cnonce/nc. Quoted strings are escaped ('"', '\').
 *
 * Only answer challenges to requests we sent to the configured trunk: the realm check is the
 * second line of defence. The caller must also stop after one failed retry (a second 401
 * without stale=true means the password is wrong).
 *
 * *chosen (optional) gets the index of the challenge answered. All-or-nothing on wb.
 * 0; EINVAL (bad argument, nc 0, control character in our username/uri/cnonce, method not a
 * token); ENOSPC; EIO. When no challenge is usable, the most telling reason of all of them:
 * EPERM (a realm other than the expected one) > E2BIG (realm/nonce/opaque over
 * TL_SIP_DIGEST_VALUE_MAX) > EBADMSG (realm or nonce missing, a control character) >
 * ENOTSUP (nothing we support). */
int tl_sip_digest_answer(struct tl_sip_wbuf *wb, const struct tl_sip_auth *chv, size_t chc,
                         const struct tl_sip_digest_client *cl, size_t *chosen);

#endif
