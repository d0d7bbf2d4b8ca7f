/* sip/digest: Digest authentication, server and client side (RFC 3261 §22, RFC 7616,
 * RFC 8760). See digest.h for the contracts.
 *
 * Threats this file is written against:
 *  - nonce forgery and reuse from another path: nonces carry their own time and an HMAC
 *    over it and the source address, so the server keeps no per-challenge state;
 *  - replay of captured credentials: the nonce-count table (RFC 7616 §3.4, nc);
 *  - timing oracles on the response: CRYPTO_memcmp;
 *  - credential harvesting by a forged challenge (FreeSWITCH CVE-2021-41158): the client
 *    answers only the expected realm;
 *  - header injection through echoed wire values: realm/nonce/opaque with a control
 *    character are refused, quoted strings are escaped;
 *  - oversized values (OpenSIPS CVE-2023-28098 class): every wire value is capped before it
 *    is copied; the server hashes the wire slices in place. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "digest.h"
#include "sipint.h"

#define HEX_MAX    64 /* SHA-256 */
#define NONCE_BIN  32 /* ts 8 || random 8 || mac 16 */
#define OPAQUE_LEN 16 /* base64url of 12 bytes */

/* ---- encodings ---- */

/* Unpadded base64url (RFC 4648 §5): every character is a SIP token character, so the nonce
 * survives any carrier that (wrongly) unquotes it. Writes 4n/3 rounded up + a NUL; out must
 * hold sodium_base64_ENCODED_LEN(n, URLSAFE_NO_PADDING) bytes. */
static void b64u_enc(char *out, size_t cap, const uint8_t *in, size_t n)
{
    sodium_bin2base64(out, cap, in, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* The exact inverse of b64u_enc for NONCE_BIN bytes: a non-canonical spelling (non-zero
 * spare bits, padding, other characters) is refused, so one nonce has one text and one
 * replay-table entry. */
static bool nonce_dec(uint8_t out[NONCE_BIN], const struct tl_pl *pl)
{
    size_t o = 0;
    if (pl->l != TL_SIP_DIGEST_NONCE_LEN)
        return false;
    return sodium_base642bin(out, NONCE_BIN, pl->p, pl->l, NULL, &o, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
           o == NONCE_BIN;
}

static void hex_enc(char *out, const uint8_t *in, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Text we print inside a quoted-string: no control octet (a CR or LF would be header
 * injection; NUL can arrive as the quoted-pair "\<NUL>"). HT is qdtext. */
static bool text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool str_ok(const char *s, size_t max)
{
    if (!s)
        return false;
    size_t n = strnlen(s, max + 1);
    return n <= max && text_ok(s, n);
}

/* quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE, escaping only what must be. */
static int put_qstr(struct tl_sip_wbuf *wb, const char *s, size_t n)
{
    int err = tl_sip_wbuf_write(wb, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; !err && i < n; i++) {
        if (s[i] != '"' && s[i] != '\\')
            continue;
        err = tl_sip_wbuf_write(wb, s + run, i - run);
        if (!err)
            err = tl_sip_wbuf_write(wb, "\\", 1);
        run = i;
    }
    if (!err)
        err = tl_sip_wbuf_write(wb, s + run, n - run);
    if (!err)
        err = tl_sip_wbuf_write(wb, "\"", 1);
    return err;
}

static int put_str(struct tl_sip_wbuf *wb, const char *s)
{
    return tl_sip_wbuf_write(wb, s, strlen(s));
}

/* ---- crypto ---- */

enum tl_sip_digest_alg tl_sip_digest_alg_id(const struct tl_pl *name)
{
    if (!name || !name->p)
        return TL_SIP_DIGEST_ALG_MD5; /* RFC 7616 §3.3: absent means MD5 */
    if (tl_pl_caseeq_str(name, "MD5"))
        return TL_SIP_DIGEST_ALG_MD5;
    if (tl_pl_caseeq_str(name, "SHA-256"))
        return TL_SIP_DIGEST_ALG_SHA256;
    return TL_SIP_DIGEST_ALG_NONE;
}

static size_t alg_hexlen(enum tl_sip_digest_alg alg)
{
    return alg == TL_SIP_DIGEST_ALG_SHA256 ? 64 : 32;
}

/* One EVP_MD fetched per call and one context reused for HA1, HA2 and the response. */
struct hash {
    EVP_MD *md;
    EVP_MD_CTX *ctx;
    bool fail; /* sticky: checked once, at hash_hex() */
};

static int hash_open(struct hash *h, enum tl_sip_digest_alg alg)
{
    h->md = EVP_MD_fetch(NULL, alg == TL_SIP_DIGEST_ALG_SHA256 ? "SHA2-256" : "MD5", NULL);
    h->ctx = EVP_MD_CTX_new();
    h->fail = !h->md || !h->ctx || !EVP_DigestInit_ex2(h->ctx, h->md, NULL);
    return h->fail ? EIO : 0;
}

static void hash_close(struct hash *h)
{
    EVP_MD_CTX_free(h->ctx);
    EVP_MD_free(h->md);
}

static void hash_put(struct hash *h, const void *p, size_t n)
{
    if (!h->fail && n && !EVP_DigestUpdate(h->ctx, p, n))
        h->fail = true;
}

static void hash_str(struct hash *h, const char *s)
{
    hash_put(h, s, strlen(s));
}

static void hash_pl(struct hash *h, const struct tl_pl *pl)
{
    hash_put(h, pl->p, pl->l);
}

/* A quoted-string's content with its quoted-pairs removed (RFC 7616 §3.4.5: the unquoted
 * value is hashed), streamed so no wire value is copied. */
static void hash_qstr(struct hash *h, const struct tl_pl *pl)
{
    size_t run = 0;
    for (size_t i = 0; i < pl->l; i++) {
        if (pl->p[i] != '\\' || i + 1 >= pl->l)
            continue;
        hash_put(h, pl->p + run, i - run);
        run = ++i; /* the escaped octet starts the next run */
    }
    hash_put(h, pl->p + run, pl->l - run);
}

/* Finishes into lowercase hex (RFC 7616 §3.4.1: 32/64 LHEX) and restarts for the next one. */
static void hash_hex(struct hash *h, char out[HEX_MAX + 1])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (h->fail || !EVP_DigestFinal_ex(h->ctx, md, &n) || n > HEX_MAX / 2 ||
        !EVP_DigestInit_ex2(h->ctx, h->md, NULL)) {
        h->fail = true;
        out[0] = '\0';
        return;
    }
    hex_enc(out, md, n);
}

/* KD(HA1, nonce:nc:cnonce:qop:HA2) (RFC 7616 §3.4.1), or the RFC 2069 form H(HA1:nonce:HA2)
 * without qop. username, realm, password, method, nc and qop are plain octets; uri, nonce
 * and cnonce are quoted-string contents from the wire when `wire` (unescaped while hashing),
 * else plain octets too. */
struct resp_in {
    struct tl_pl username, realm, password, method, uri, nonce, nc, cnonce, qop;
    bool has_qop, wire;
};

static void hash_val(struct hash *h, const struct tl_pl *pl, bool wire)
{
    if (wire)
        hash_qstr(h, pl);
    else
        hash_pl(h, pl);
}

static int response_hex(enum tl_sip_digest_alg alg, const struct resp_in *in, char out[HEX_MAX + 1])
{
    struct hash h;
    char ha1[HEX_MAX + 1], ha2[HEX_MAX + 1];
    int err = hash_open(&h, alg);

    hash_pl(&h, &in->username);
    hash_put(&h, ":", 1);
    hash_pl(&h, &in->realm);
    hash_put(&h, ":", 1);
    hash_pl(&h, &in->password);
    hash_hex(&h, ha1);

    hash_pl(&h, &in->method);
    hash_put(&h, ":", 1);
    hash_val(&h, &in->uri, in->wire);
    hash_hex(&h, ha2);

    hash_str(&h, ha1);
    hash_put(&h, ":", 1);
    hash_val(&h, &in->nonce, in->wire);
    hash_put(&h, ":", 1);
    if (in->has_qop) {
        hash_pl(&h, &in->nc);
        hash_put(&h, ":", 1);
        hash_val(&h, &in->cnonce, in->wire);
        hash_put(&h, ":", 1);
        hash_pl(&h, &in->qop);
        hash_put(&h, ":", 1);
    }
    hash_str(&h, ha2);
    hash_hex(&h, out);

    if (!err && h.fail)
        err = EIO;
    hash_close(&h);
    OPENSSL_cleanse(ha1, sizeof ha1); /* HA1 is a password equivalent */
    return err;
}

/* HMAC-SHA256(key, a || b) truncated to outlen (≤ 32). */
static int hmac(const uint8_t key[TL_SIP_DIGEST_KEY_SIZE], const void *a, size_t al, const void *b,
                size_t bl, uint8_t *out, size_t outlen)
{
    static char sha256[] = "SHA2-256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    uint8_t full[32];
    size_t n = 0;
    int err = EIO;

    if (ctx && EVP_MAC_init(ctx, key, TL_SIP_DIGEST_KEY_SIZE, params) &&
        EVP_MAC_update(ctx, a, al) && (bl == 0 || EVP_MAC_update(ctx, b, bl)) &&
        EVP_MAC_final(ctx, full, &n, sizeof full) && n == sizeof full && outlen <= n) {
        memcpy(out, full, outlen);
        err = 0;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(full, sizeof full);
    return err;
}

/* ---- server ---- */

int tl_sip_digest_server_init(struct tl_sip_digest_server *srv, const uint8_t *secret)
{
    if (!srv || !secret)
        return EINVAL;
    memset(srv, 0, sizeof(*srv));
    memcpy(srv->key, secret, sizeof(srv->key));
    srv->nonce_ttl_s = TL_SIP_DIGEST_TTL_DEFAULT;
    srv->epoch_s = TL_SIP_DIGEST_EPOCH_DEFAULT;
    return 0;
}

/* The HMAC key of one epoch. A KDF rather than the secret itself: a key recovered from one
 * epoch's nonces (it would take breaking HMAC-SHA256) says nothing of the next. */
static void epoch_key(const struct tl_sip_digest_server *srv, uint64_t epoch,
                      uint8_t out[TL_SIP_DIGEST_KEY_SIZE])
{
    crypto_kdf_derive_from_key(out, TL_SIP_DIGEST_KEY_SIZE, epoch, "tlnepoch", srv->key);
}

static uint64_t epoch_of(const struct tl_sip_digest_server *srv, uint64_t t)
{
    return t / (srv->epoch_s ? srv->epoch_s : TL_SIP_DIGEST_EPOCH_DEFAULT);
}

void tl_sip_digest_server_wipe(struct tl_sip_digest_server *srv)
{
    if (srv)
        OPENSSL_cleanse(srv, sizeof(*srv));
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int tl_sip_digest_nonce(const struct tl_sip_digest_server *srv,
                        char out[TL_SIP_DIGEST_NONCE_LEN + 1], const char *source, uint64_t now)
{
    uint8_t bin[NONCE_BIN];
    int err;
    if (!srv || !out || !source)
        return EINVAL;
    uint8_t ek[TL_SIP_DIGEST_KEY_SIZE];
    put_be64(bin, now);
    if (RAND_bytes(bin + 8, 8) != 1)
        return EIO;
    epoch_key(srv, epoch_of(srv, now), ek);
    err = hmac(ek, bin, 16, source, strlen(source), bin + 16, 16);
    sodium_memzero(ek, sizeof ek);
    if (err != 0)
        return err;
    b64u_enc(out, TL_SIP_DIGEST_NONCE_LEN + 1, bin, sizeof bin);
    return 0;
}

/* opaque: a per-secret constant, the same in every epoch and on every node (a UAC may keep
 * it across a rotation). It adds no security (the nonce is MAC-bound) but RFC 7616 asks
 * for it and it lets us tell our challenges from another server's; derived from the
 * secret so it does not fingerprint the software (SIPVicious svmap). Its own KDF
 * context: it is no epoch key's output. */
static int opaque_make(const struct tl_sip_digest_server *srv, char out[OPAQUE_LEN + 1])
{
    uint8_t o[crypto_kdf_BYTES_MIN]; /* 16: the KDF's least; 12 of them are used */
    _Static_assert(crypto_kdf_BYTES_MIN >= 12, "opaque takes 12 bytes");
    if (crypto_kdf_derive_from_key(o, sizeof o, 0, "tlopaque", srv->key) != 0)
        return EIO;
    b64u_enc(out, OPAQUE_LEN + 1, o, 12);
    return 0;
}

int tl_sip_digest_challenge_value(const struct tl_sip_digest_server *srv, struct tl_sip_wbuf *wb,
                                  enum tl_sip_digest_alg alg, const char *realm, const char *nonce,
                                  bool stale)
{
    char opaque[OPAQUE_LEN + 1];
    int err;
    if (!srv || !wb || !str_ok(realm, TL_SIP_DIGEST_VALUE_MAX) ||
        !str_ok(nonce, TL_SIP_DIGEST_VALUE_MAX) ||
        (alg != TL_SIP_DIGEST_ALG_MD5 && alg != TL_SIP_DIGEST_ALG_SHA256))
        return EINVAL;
    if ((err = opaque_make(srv, opaque)) != 0)
        return err;

    size_t save = wb->len;
    err = put_str(wb, "Digest realm=");
    if (!err)
        err = put_qstr(wb, realm, strlen(realm));
    if (!err)
        err = put_str(wb, ", nonce=");
    if (!err)
        err = put_qstr(wb, nonce, strlen(nonce));
    if (!err)
        err = tl_sip_wbuf_printf(wb, ", opaque=\"%s\", algorithm=%s, qop=\"auth\"%s", opaque,
                                 alg == TL_SIP_DIGEST_ALG_SHA256 ? "SHA-256" : "MD5",
                                 stale ? ", stale=true" : "");
    if (err)
        wb->len = save;
    return err;
}

int tl_sip_digest_challenge(const struct tl_sip_digest_server *srv, struct tl_sip_wbuf *wb,
                            enum tl_sip_hdr_id hdr, const char *realm, const char *source,
                            bool stale, uint64_t now)
{
    /* RFC 8760: most preferred first, one algorithm per challenge for the same realm */
    static const enum tl_sip_digest_alg order[] = {TL_SIP_DIGEST_ALG_SHA256, TL_SIP_DIGEST_ALG_MD5};
    char nonce[TL_SIP_DIGEST_NONCE_LEN + 1];
    int err;
    if (!srv || !wb || !source ||
        (hdr != TL_SIP_HDR_WWW_AUTHENTICATE && hdr != TL_SIP_HDR_PROXY_AUTHENTICATE))
        return EINVAL;
    if ((err = tl_sip_digest_nonce(srv, nonce, source, now)) != 0)
        return err;

    size_t save = wb->len;
    for (size_t i = 0; !err && i < sizeof order / sizeof order[0]; i++) {
        err = put_str(wb, tl_sip_hdr_name(hdr));
        if (!err)
            err = put_str(wb, ": ");
        if (!err)
            err = tl_sip_digest_challenge_value(srv, wb, order[i], realm, nonce, stale);
        if (!err)
            err = put_str(wb, "\r\n");
    }
    if (err)
        wb->len = save;
    return err;
}

const char *tl_sip_digest_result_str(enum tl_sip_digest_result r)
{
    switch (r) {
    case TL_SIP_DIGEST_OK:
        return "ok";
    case TL_SIP_DIGEST_STALE:
        return "stale nonce";
    case TL_SIP_DIGEST_BAD_CREDENTIALS:
        return "bad credentials";
    case TL_SIP_DIGEST_BAD_NONCE:
        return "bad nonce";
    case TL_SIP_DIGEST_REPLAY:
        return "replayed nonce-count";
    case TL_SIP_DIGEST_MALFORMED:
        return "malformed credentials";
    case TL_SIP_DIGEST_URI_MISMATCH:
        return "digest uri mismatch";
    }
    return "unknown";
}

/* Unescaped quoted-string content equals s (byte-exact), without copying the wire value. */
static bool qstr_eq(const struct tl_pl *pl, const char *s)
{
    size_t j = 0, n = strlen(s);
    for (size_t i = 0; i < pl->l; i++, j++) {
        char c = pl->p[i];
        if (c == '\\' && i + 1 < pl->l)
            c = pl->p[++i];
        if (j >= n || c != s[j])
            return false;
    }
    return j == n;
}

/* Octets of a quoted-string's content once unescaped: the caps count these, as the client
 * side does, so a realm we accept on one side is accepted on the other. */
static size_t qstr_len(const struct tl_pl *pl)
{
    size_t n = 0;
    for (size_t i = 0; i < pl->l; i++, n++) {
        if (pl->p[i] == '\\' && i + 1 < pl->l)
            i++;
    }
    return n;
}

static uint32_t nc_val(const struct tl_pl *nc) /* 8LHEX, checked by tl_sip_auth_decode */
{
    uint32_t v = 0;
    for (size_t i = 0; i < nc->l; i++)
        v = v << 4 | (uint32_t)ch_hexval((unsigned char)nc->p[i]);
    return v;
}

/* user parts compared as RFC 3261 §19.1.4 does: escapes decoded, case-sensitive */
static bool user_eq(const struct tl_pl *a, const struct tl_pl *b)
{
    char x[TL_SIP_DIGEST_URI_MAX + 1], y[TL_SIP_DIGEST_URI_MAX + 1];
    size_t xn, yn;
    return tl_sip_uri_unescape(x, sizeof x, &xn, a) == 0 &&
           tl_sip_uri_unescape(y, sizeof y, &yn, b) == 0 && xn == yn && !memcmp(x, y, xn);
}

/* The digest-uri names the Request-URI's resource (RFC 7616 §3.4.6): equal bytes, or
 * equivalent URIs by RFC 3261 §19.1.4 — or, behind a proxy that rewrote the Request-URI,
 * a sip/sips URI for the same number or for one of our names (tl_sip_digest_check.hosts). */
static bool uri_matches(const struct tl_pl *duri, const struct tl_pl *ruri,
                        const char *const *hosts)
{
    char buf[TL_SIP_DIGEST_URI_MAX + 1];
    size_t n;
    struct tl_sip_uri a, b;
    if (tl_sip_qstr_unescape(buf, sizeof buf, &n, duri) != 0)
        return false;
    struct tl_pl u = {buf, n};
    if (tl_pl_eq(&u, ruri))
        return true;
    if (tl_sip_uri_decode(&a, &u) || tl_sip_uri_decode(&b, ruri))
        return false;
    if (tl_sip_uri_cmp(&a, &b))
        return true;
    if (a.scheme != TL_SIP_SCHEME_SIP && a.scheme != TL_SIP_SCHEME_SIPS)
        return false;
    if (a.user.l && b.user.l && user_eq(&a.user, &b.user))
        return true;
    struct tl_pl h = a.host;
    if (h.l > 2 && h.p[0] == '[') { /* an IPv6 reference: compare the address */
        h.p++;
        h.l -= 2;
    }
    for (size_t i = 0; hosts && hosts[i]; i++)
        if (hosts[i][0] && tl_pl_caseeq_str(&h, hosts[i]))
            return true;
    return false;
}

/* The replay set of a nonce: chosen by MAC bytes, which nobody without the key can steer. */
static struct tl_sip_digest_nc *nc_set(struct tl_sip_digest_server *srv,
                                       const uint8_t bin[NONCE_BIN])
{
    size_t idx = ((size_t)bin[16] << 8 | bin[17]) & (TL_SIP_DIGEST_NC_SETS - 1);
    return srv->nc[idx];
}

static bool nc_free(const struct tl_sip_digest_nc *e)
{
    return e->nc == 0; /* only nc ≥ 1 is ever recorded */
}

/* REPLAY or OK; on OK the nc is recorded, evicting the set's expired or oldest entry. */
static enum tl_sip_digest_result nc_check(struct tl_sip_digest_server *srv,
                                          const uint8_t bin[NONCE_BIN], uint32_t nc, uint64_t now)
{
    struct tl_sip_digest_nc *set = nc_set(srv, bin), *victim = NULL;
    uint64_t victim_ts = UINT64_MAX;
    for (size_t w = 0; w < TL_SIP_DIGEST_NC_WAYS; w++) {
        struct tl_sip_digest_nc *e = &set[w];
        if (!nc_free(e) && memcmp(e->id, bin, sizeof e->id) == 0) {
            if (nc <= e->nc)
                return TL_SIP_DIGEST_REPLAY;
            e->nc = nc;
            return TL_SIP_DIGEST_OK;
        }
        uint64_t ts = nc_free(e) ? 0 : get_be64(e->id); /* free and expired go first */
        if (!nc_free(e) && now >= ts && now - ts > srv->nonce_ttl_s)
            ts = 0;
        if (!victim || ts < victim_ts) {
            victim = e;
            victim_ts = ts;
        }
    }
    memcpy(victim->id, bin, sizeof victim->id);
    victim->nc = nc;
    return TL_SIP_DIGEST_OK;
}

int tl_sip_digest_verify(struct tl_sip_digest_server *srv, const struct tl_sip_auth *cred,
                         const struct tl_sip_digest_check *chk, uint64_t now,
                         enum tl_sip_digest_result *res)
{
    uint8_t bin[NONCE_BIN], mac[16];
    char opaque[OPAQUE_LEN + 1], want[HEX_MAX + 1], got[HEX_MAX + 1];
    int err;

    if (!res)
        return EINVAL;
    *res = TL_SIP_DIGEST_MALFORMED;
    if (!srv || !cred || !chk || !chk->method.p || !chk->realm || !chk->username ||
        !chk->password || !chk->source)
        return EINVAL;

    /* MALFORMED: everything RFC 7616 §3.4 requires with qop=auth, and nothing we did not
     * offer. A present-but-empty value has p != NULL (tl_sip_auth_decode). */
    if (!cred->digest || !cred->username.p || !cred->realm.p || !cred->nonce.p || !cred->uri.p ||
        !cred->response.p || !cred->qop.p || !cred->nc.p || !cred->cnonce.p || !cred->cnonce.l ||
        !cred->uri.l || cred->userhash)
        return 0;
    enum tl_sip_digest_alg alg = tl_sip_digest_alg_id(&cred->algorithm);
    if (alg == TL_SIP_DIGEST_ALG_NONE || !tl_pl_caseeq_str(&cred->qop, "auth") ||
        cred->response.l != alg_hexlen(alg))
        return 0;
    if (qstr_len(&cred->username) > TL_SIP_DIGEST_VALUE_MAX ||
        qstr_len(&cred->realm) > TL_SIP_DIGEST_VALUE_MAX ||
        qstr_len(&cred->cnonce) > TL_SIP_DIGEST_VALUE_MAX ||
        (cred->opaque.p && qstr_len(&cred->opaque) > TL_SIP_DIGEST_VALUE_MAX))
        return 0;
    if (chk->ruri.p && !uri_matches(&cred->uri, &chk->ruri, chk->hosts)) {
        *res = TL_SIP_DIGEST_URI_MISMATCH;
        return 0;
    }

    /* BAD_NONCE: not minted by this key for this source, or with another opaque */
    *res = TL_SIP_DIGEST_BAD_NONCE;
    if (!nonce_dec(bin, &cred->nonce))
        return 0;
    /* the epoch the nonce names, if its key is still in service */
    uint64_t ne = epoch_of(srv, get_be64(bin)), cur = epoch_of(srv, now);
    if (ne + 1 < cur || ne > epoch_of(srv, now + TL_SIP_DIGEST_SKEW_S))
        return 0;
    uint8_t ek[TL_SIP_DIGEST_KEY_SIZE];
    epoch_key(srv, ne, ek);
    err = hmac(ek, bin, 16, chk->source, strlen(chk->source), mac, sizeof mac);
    sodium_memzero(ek, sizeof ek);
    if (err != 0)
        return err;
    if (CRYPTO_memcmp(mac, bin + 16, sizeof mac) != 0)
        return 0;
    if ((err = opaque_make(srv, opaque)) != 0)
        return err;
    if (cred->opaque.p && !tl_pl_eq_str(&cred->opaque, opaque))
        return 0;

    /* BAD_CREDENTIALS */
    *res = TL_SIP_DIGEST_BAD_CREDENTIALS;
    if (!qstr_eq(&cred->username, chk->username) || !qstr_eq(&cred->realm, chk->realm))
        return 0;
    const struct resp_in in = {
        .username = tl_pl_str(chk->username),
        .realm = tl_pl_str(chk->realm),
        .password = tl_pl_str(chk->password),
        .method = chk->method,
        .uri = cred->uri,
        .nonce = cred->nonce,
        .nc = cred->nc,
        .cnonce = cred->cnonce,
        .qop = cred->qop,
        .has_qop = true,
        .wire = true,
    };
    if ((err = response_hex(alg, &in, want)) != 0)
        return err;
    for (size_t i = 0; i < cred->response.l; i++) /* LHEX, but be lenient about case */
        got[i] = (char)ch_lower((unsigned char)cred->response.p[i]);
    if (CRYPTO_memcmp(want, got, cred->response.l) != 0)
        return 0;

    /* STALE: a right answer to a nonce that is too old, or from the future (clock stepped
     * back: a fresh challenge re-bases it) */
    uint64_t ts = get_be64(bin);
    if (now + TL_SIP_DIGEST_SKEW_S < ts || (now > ts && now - ts > srv->nonce_ttl_s)) {
        *res = TL_SIP_DIGEST_STALE;
        return 0;
    }

    *res = nc_check(srv, bin, nc_val(&cred->nc), now);
    return 0;
}

/* ---- client ---- */

struct cand {
    enum tl_sip_digest_alg alg;
    size_t idx;
    char realm[TL_SIP_DIGEST_VALUE_MAX + 1], nonce[TL_SIP_DIGEST_VALUE_MAX + 1],
        opaque[TL_SIP_DIGEST_VALUE_MAX + 1];
    size_t realm_l, nonce_l, opaque_l;
    bool has_opaque, has_qop;
};

/* A wire value: unescaped, capped (E2BIG), printable (EBADMSG). */
static int wire_val(char *dst, size_t *lenp, const struct tl_pl *pl)
{
    if (tl_sip_qstr_unescape(dst, TL_SIP_DIGEST_VALUE_MAX + 1, lenp, pl) != 0)
        return E2BIG;
    return text_ok(dst, *lenp) ? 0 : EBADMSG;
}

/* 0 when challenge c is one we can answer, filling *k; else why not. */
static int cand_make(struct cand *k, const struct tl_sip_auth *c, const char *realm)
{
    int err;
    if (!c->digest)
        return ENOTSUP;
    k->alg = tl_sip_digest_alg_id(&c->algorithm);
    if (k->alg == TL_SIP_DIGEST_ALG_NONE)
        return ENOTSUP;
    /* qop-options is a list ("auth,auth-int"); without it, RFC 2069 (RFC 7616 §3.4) */
    k->has_qop = c->qop.p != NULL;
    if (k->has_qop && !tl_sip_list_has(&c->qop, "auth"))
        return ENOTSUP;
    if (!c->realm.p || !c->nonce.p || !c->nonce.l)
        return EBADMSG;
    if ((err = wire_val(k->realm, &k->realm_l, &c->realm)) != 0 ||
        (err = wire_val(k->nonce, &k->nonce_l, &c->nonce)) != 0)
        return err;
    k->has_opaque = c->opaque.p != NULL;
    if (k->has_opaque && (err = wire_val(k->opaque, &k->opaque_l, &c->opaque)) != 0)
        return err;
    if (realm) {
        struct tl_pl got = {k->realm, k->realm_l}, exp = tl_pl_str(realm);
        if (!tl_pl_caseeq(&got, &exp))
            return EPERM; /* CVE-2021-41158: never hash our password into a stranger's realm */
    }
    return 0;
}

static int err_rank(int err)
{
    switch (err) {
    case EPERM:
        return 4;
    case E2BIG:
        return 3;
    case EBADMSG:
        return 2;
    default:
        return 1;
    }
}

int tl_sip_digest_answer(struct tl_sip_wbuf *wb, const struct tl_sip_auth *chv, size_t chc,
                         const struct tl_sip_digest_client *cl, size_t *chosen)
{
    struct cand cur, best;
    bool have = false;
    int worst = ENOTSUP, err;
    char cnonce[TL_SIP_DIGEST_VALUE_MAX + 1], resp[HEX_MAX + 1], nc[9];

    if (!wb || !chv || !chc || !cl || !cl->method || !cl->uri || !cl->username || !cl->password ||
        !cl->nc)
        return EINVAL;
    struct tl_pl met = tl_pl_str(cl->method);
    if (!pl_is_token(&met) || !str_ok(cl->uri, TL_SIP_LINE_MAX) || !*cl->uri ||
        !str_ok(cl->username, TL_SIP_DIGEST_VALUE_MAX) ||
        (cl->cnonce && (!str_ok(cl->cnonce, TL_SIP_DIGEST_VALUE_MAX) || !*cl->cnonce)))
        return EINVAL;

    for (size_t i = 0; i < chc; i++) {
        if ((err = cand_make(&cur, &chv[i], cl->realm)) != 0) {
            if (err_rank(err) > err_rank(worst))
                worst = err;
            continue;
        }
        cur.idx = i;
        if (!have || cur.alg > best.alg) { /* SHA-256 > MD5; the first of equals wins */
            best = cur;
            have = true;
        }
    }
    if (!have)
        return worst;
    const struct tl_sip_auth *c = &chv[best.idx];

    if (cl->cnonce) {
        snprintf(cnonce, sizeof cnonce, "%s", cl->cnonce);
    } else {
        uint8_t r[16];
        if (RAND_bytes(r, sizeof r) != 1)
            return EIO;
        b64u_enc(cnonce, sizeof cnonce, r, sizeof r);
    }
    snprintf(nc, sizeof nc, "%08x", (unsigned)cl->nc);

    const struct resp_in in = {
        .username = tl_pl_str(cl->username),
        .realm = {best.realm, best.realm_l},
        .password = tl_pl_str(cl->password),
        .method = met,
        .uri = tl_pl_str(cl->uri),
        .nonce = {best.nonce, best.nonce_l},
        .nc = tl_pl_str(nc),
        .cnonce = tl_pl_str(cnonce),
        .qop = TL_PL("auth"),
        .has_qop = best.has_qop,
    };
    if ((err = response_hex(best.alg, &in, resp)) != 0)
        return err;

    size_t save = wb->len;
    err = put_str(wb, "Digest username=");
    if (!err)
        err = put_qstr(wb, cl->username, strlen(cl->username));
    if (!err)
        err = put_str(wb, ", realm=");
    if (!err)
        err = put_qstr(wb, best.realm, best.realm_l);
    if (!err)
        err = put_str(wb, ", nonce=");
    if (!err)
        err = put_qstr(wb, best.nonce, best.nonce_l);
    if (!err)
        err = put_str(wb, ", uri=");
    if (!err)
        err = put_qstr(wb, cl->uri, strlen(cl->uri));
    if (!err)
        err = tl_sip_wbuf_printf(wb, ", response=\"%s\"", resp);
    if (!err && c->algorithm.p) /* echoed as written: a token, checked by alg_id */
        err = tl_sip_wbuf_printf(wb, ", algorithm=%.*s", (int)c->algorithm.l, c->algorithm.p);
    if (!err && best.has_qop) {
        err = put_str(wb, ", cnonce=");
        if (!err)
            err = put_qstr(wb, cnonce, strlen(cnonce));
    }
    if (!err && best.has_opaque) {
        err = put_str(wb, ", opaque=");
        if (!err)
            err = put_qstr(wb, best.opaque, best.opaque_l);
    }
    if (!err && best.has_qop)
        err = tl_sip_wbuf_printf(wb, ", qop=auth, nc=%s", nc);
    if (err)
        wb->len = save;
    else if (chosen)
        *chosen = best.idx;
    return err;
}
