/* sip/inauth: challenge and verify inbound requests (see inauth.h). */
#include "sip/inauth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/core.h"

/* Printable ASCII only: our own strings go into header values and log lines. */
static bool plain(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e || n >= max)
            return false;
    return n > 0;
}

/* The claimed username as a log value: it comes from the wire, so nothing in it may end
 * the value, start another key or forge a line. */
static void log_user(char *out, const struct tl_pl *u)
{
    char buf[TL_SIP_DIGEST_VALUE_MAX + 1];
    size_t n = 0;
    if (u->p && tl_sip_qstr_unescape(buf, sizeof buf, &n, u) != 0) {
        n = u->l < TL_SIP_INAUTH_USER_LOG ? u->l : TL_SIP_INAUTH_USER_LOG;
        memcpy(buf, u->p, n); /* over the cap: its start as written */
    }
    if (n > TL_SIP_INAUTH_USER_LOG)
        n = TL_SIP_INAUTH_USER_LOG;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        out[i] = c <= 0x20 || c > 0x7e || c == '"' || c == '=' || c == '\\' ? '?' : (char)c;
    }
    if (!n)
        out[n++] = '-';
    out[n] = '\0';
}

static bool realm_is(const struct tl_pl *v, const char *realm)
{
    char buf[TL_SIP_DIGEST_VALUE_MAX + 1];
    size_t n;
    if (!v->p || tl_sip_qstr_unescape(buf, sizeof buf, &n, v) != 0)
        return false;
    return n == strlen(realm) && memcmp(buf, realm, n) == 0;
}

static int refuse(struct tl_sip_inauth_decision *d, enum tl_sip_inauth_verdict v, uint16_t scode,
                  const char *reason, const char *host, const char *warning)
{
    d->verdict = v;
    d->scode = scode;
    d->reason = reason;
    int n = snprintf(d->hdrs, sizeof d->hdrs, "Warning: 399 %s \"%s\"\r\n", host, warning);
    return n > 0 && (size_t)n < sizeof d->hdrs ? 0 : ENOSPC;
}

static int challenge(struct tl_sip_digest_server *srv, struct tl_sip_inauth_decision *d,
                     const struct tl_sip_inauth_cred *cred, const char *source, uint64_t now,
                     bool stale, const char *reason)
{
    static const enum tl_sip_digest_alg dflt[] = {TL_SIP_DIGEST_ALG_SHA256, TL_SIP_DIGEST_ALG_MD5,
                                                  TL_SIP_DIGEST_ALG_NONE};
    const enum tl_sip_digest_alg *algs = cred->algs[0] ? cred->algs : dflt;
    char nonce[TL_SIP_DIGEST_NONCE_LEN + 1];
    struct tl_sip_wbuf wb;
    int err = tl_sip_digest_nonce(srv, nonce, source, now);
    tl_sip_wbuf_init(&wb, d->hdrs, sizeof d->hdrs - 1);
    /* one nonce for all: whichever challenge the UAC picks, one nc entry tracks it */
    for (size_t i = 0; !err && i < 2 && algs[i]; i++) {
        err = tl_sip_wbuf_printf(&wb, "WWW-Authenticate: ");
        if (!err)
            err = tl_sip_digest_challenge_value(srv, &wb, algs[i], cred->realm, nonce, stale);
        if (!err)
            err = tl_sip_wbuf_printf(&wb, "\r\n");
    }
    if (err)
        return err;
    d->hdrs[wb.len] = '\0';
    d->verdict = stale ? TL_SIP_INAUTH_STALE : TL_SIP_INAUTH_CHALLENGE;
    d->scode = 401;
    d->reason = reason;
    return 0;
}

int tl_sip_inauth_algs(enum tl_sip_digest_alg out[3], const char *list)
{
    size_t n = 0;
    const char *p = list ? list : "";
    out[0] = out[1] = out[2] = TL_SIP_DIGEST_ALG_NONE;
    while (*p) {
        size_t l = strcspn(p, ",");
        struct tl_pl name = {p, l};
        while (name.l && name.p[0] == ' ')
            name.p++, name.l--;
        while (name.l && name.p[name.l - 1] == ' ')
            name.l--;
        /* an empty name would read as MD5 (RFC 7616 default): refuse it instead */
        enum tl_sip_digest_alg a = name.l ? tl_sip_digest_alg_id(&name) : TL_SIP_DIGEST_ALG_NONE;
        if (!a || n == 2 || (n && out[0] == a))
            return EINVAL;
        out[n++] = a;
        p += l;
        if (*p == ',' && !*++p)
            return EINVAL;
    }
    return n ? 0 : EINVAL;
}

int tl_sip_inauth_decide(struct tl_sip_digest_server *srv, const struct tl_sip_msg *req,
                         const struct tl_sip_inauth_cred *cred, const char *source, uint64_t now,
                         struct tl_sip_inauth_decision *d)
{
    if (!d)
        return EINVAL;
    memset(d, 0, sizeof *d);
    d->user[0] = '-';
    if (!srv || !req || !req->req || !cred || !cred->realm || !cred->username || !cred->password ||
        !source || !plain(cred->realm, TL_SIP_DIGEST_VALUE_MAX))
        return EINVAL;
    const char *host = cred->host ? cred->host : cred->realm;
    if (!plain(host, 256) || strchr(host, ' ') || strchr(host, '"'))
        return EINVAL;

    /* §22.4: credentials for other realms (a proxy's) are not ours to judge */
    struct tl_sip_auth a;
    bool found = false, broken = false;
    for (size_t i = 0; i < req->hdrc && !found; i++) {
        if (req->hdrv[i].id != TL_SIP_HDR_AUTHORIZATION)
            continue;
        if (tl_sip_auth_decode(&a, &req->hdrv[i].val) != 0)
            broken = true;
        else if (a.digest && realm_is(&a.realm, cred->realm))
            found = true;
    }
    if (!found) {
        if (broken)
            return refuse(d, TL_SIP_INAUTH_MALFORMED, 400, "malformed", host,
                          "malformed credentials");
        return challenge(srv, d, cred, source, now, false, "no_credentials");
    }
    log_user(d->user, &a.username);

    const struct tl_sip_digest_check chk = {
        .method = req->met,
        .ruri = req->ruri_pl,
        .realm = cred->realm,
        .username = cred->username,
        .password = cred->password,
        .source = source,
        .hosts = cred->hosts,
    };
    enum tl_sip_digest_result r;
    int err = tl_sip_digest_verify(srv, &a, &chk, now, &r);
    if (err)
        return err;
    switch (r) {
    case TL_SIP_DIGEST_OK:
        d->verdict = TL_SIP_INAUTH_PASS;
        return 0;
    case TL_SIP_DIGEST_STALE:
        return challenge(srv, d, cred, source, now, true, "stale_nonce");
    case TL_SIP_DIGEST_BAD_NONCE:
        /* not ours, bound elsewhere, or from before a restart: nothing says the password is
         * wrong, so challenge again rather than refuse */
        return challenge(srv, d, cred, source, now, false, "unknown_nonce");
    case TL_SIP_DIGEST_BAD_CREDENTIALS:
        /* one Warning for a wrong username, realm or password: no user enumeration */
        return refuse(d, TL_SIP_INAUTH_FORBIDDEN, 403, "credentials_mismatch", host,
                      "credentials do not match");
    case TL_SIP_DIGEST_REPLAY:
        return refuse(d, TL_SIP_INAUTH_FORBIDDEN, 403, "nonce_reuse", host, "nonce reuse");
    case TL_SIP_DIGEST_URI_MISMATCH:
        /* right format, wrong resource: a refusal like a wrong password (docs/calls.md),
         * named for what it is so the carrier's admin looks at the proxy, not the password */
        return refuse(d, TL_SIP_INAUTH_FORBIDDEN, 403, "digest_uri_mismatch", host,
                      "digest uri names neither this gateway nor the called number");
    case TL_SIP_DIGEST_MALFORMED:
        break;
    }
    return refuse(d, TL_SIP_INAUTH_MALFORMED, 400, "malformed", host, "malformed credentials");
}

bool tl_sip_inauth_gate(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *msg,
                        struct tl_sip_digest_server *srv, const struct tl_sip_inauth_cred *cred)
{
    const struct tl_sip_peer *peer = tl_sip_tsx_peer(tx);
    char ip[64];
    uint16_t port = 0;
    tl_sip_peer_ip(peer, ip, sizeof ip, &port);
    /* static: ~2 KiB of headers, and the loop is single-threaded */
    static struct tl_sip_inauth_decision d;
    int err = tl_sip_inauth_decide(srv, msg, cred, ip, (uint64_t)tl_now_ms() / 1000, &d);
    if (err) {
        tl_warnl("sip", "auth.failed", "err=%s src=%s:%u", strerror(err), ip, port);
        tl_sip_stack_reply(s, tx, msg, peer, 500, "Retry-After: 5\r\n", NULL, NULL, NULL, 0);
        return false;
    }
    switch (d.verdict) {
    case TL_SIP_INAUTH_PASS:
        tl_debug("sip", "auth.ok", "src=%s:%u user=%s", ip, port, d.user);
        return true;
    case TL_SIP_INAUTH_CHALLENGE:
        if (!strcmp(d.reason, "no_credentials"))
            tl_debug("sip", "auth.challenge", "src=%s:%u", ip, port);
        else
            tl_info("sip", "auth.refused", "reason=%s src=%s:%u user=%s", d.reason, ip, port,
                    d.user);
        break;
    case TL_SIP_INAUTH_STALE:
        tl_info("sip", "auth.stale", "src=%s:%u user=%s", ip, port, d.user);
        break;
    case TL_SIP_INAUTH_FORBIDDEN:
        if (!strcmp(d.reason, "nonce_reuse"))
            tl_info("sip", "auth.replay", "reason=%s src=%s:%u user=%s", d.reason, ip, port,
                    d.user);
        else
            tl_info("sip", "auth.refused", "reason=%s src=%s:%u user=%s", d.reason, ip, port,
                    d.user);
        break;
    case TL_SIP_INAUTH_MALFORMED:
        tl_info("sip", "auth.refused", "reason=%s src=%s:%u user=%s", d.reason, ip, port, d.user);
        break;
    }
    tl_sip_stack_reply(s, tx, msg, peer, d.scode, d.hdrs, NULL, NULL, NULL, 0);
    return false;
}

int tl_sip_inauth_new(struct tl_sip_inauth **ap, const char *realm, const char *userpass,
                      const char *algorithms, uint32_t nonce_ttl_s, const uint8_t *secret)
{
    enum tl_sip_digest_alg algs[3];
    if (!ap || !realm || !userpass || !nonce_ttl_s || nonce_ttl_s >= TL_SIP_DIGEST_EPOCH_DEFAULT ||
        !plain(realm, TL_SIP_DIGEST_VALUE_MAX) || tl_sip_inauth_algs(algs, algorithms))
        return EINVAL;
    const char *colon = strchr(userpass, ':');
    if (!colon || colon == userpass || !colon[1] || !plain(userpass, 2 * TL_SIP_DIGEST_VALUE_MAX))
        return EINVAL;
    size_t ul = (size_t)(colon - userpass), pl = strlen(colon + 1);
    if (ul > TL_SIP_DIGEST_VALUE_MAX || pl > TL_SIP_DIGEST_VALUE_MAX)
        return EINVAL;
    struct tl_sip_inauth *a = calloc(1, sizeof *a);
    if (!a)
        return ENOMEM;
    uint8_t key[TL_SIP_DIGEST_KEY_SIZE];
    if (secret)
        memcpy(key, secret, sizeof key);
    else if (RAND_bytes(key, sizeof key) != 1) {
        free(a);
        return EIO;
    }
    tl_sip_digest_server_init(&a->srv, key);
    OPENSSL_cleanse(key, sizeof key);
    a->srv.nonce_ttl_s = nonce_ttl_s;
    tl_strlcpy(a->realm, realm, sizeof a->realm);
    memcpy(a->user, userpass, ul);
    memcpy(a->pass, colon + 1, pl);
    a->cred =
        (struct tl_sip_inauth_cred){a->realm, a->user, a->pass, NULL, {algs[0], algs[1], 0}, NULL};
    *ap = a;
    return 0;
}

void tl_sip_inauth_free(struct tl_sip_inauth *a)
{
    if (!a)
        return;
    tl_sip_digest_server_wipe(&a->srv);
    OPENSSL_cleanse(a->pass, sizeof a->pass);
    free(a);
}
