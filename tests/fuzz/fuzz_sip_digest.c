/* libFuzzer target: one Authorization / WWW-Authenticate value through tl_sip_auth_decode,
 * then every digest entry point that takes wire data:
 *  1. server verify as it came (the nonce is almost never ours: BAD_NONCE / MALFORMED);
 *  2. server verify with its nonce replaced by a valid one of ours, which reaches the
 *     credential check and the replay table; the fuzzer cannot know the response, so the
 *     result must never be OK;
 *  3. client answer, taking the value as a challenge, with and without an expected realm;
 *     the answer must decode again and carry the challenge's realm and nonce unchanged;
 *  4. a round trip with the input's username / realm / cnonce as our configuration: our
 *     challenge -> our answer -> verify must be OK, and the same answer again REPLAY.
 * Besides memory errors this checks that escaping survives any octets the parser lets
 * through and that no answer ever carries a CR or LF. */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sip/digest.h"

#define NOW 1700000000u
#define SRC "192.0.2.1:5060"

/* abort() with the failed condition, for triage */
#define must(c)                                                                                    \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: must(%s)\n", __FILE__, __LINE__, #c);                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct tl_sip_digest_server srv;

static bool no_crlf(const char *p, size_t n)
{
    return !memchr(p, '\r', n) && !memchr(p, '\n', n);
}

/* unescaped quoted-string content as a C string: false if absent, too long, or with a NUL */
static bool cstr(char *dst, size_t cap, const struct tl_pl *pl)
{
    size_t n;
    return pl->p && tl_sip_qstr_unescape(dst, cap, &n, pl) == 0 && strlen(dst) == n;
}

static bool unescaped_eq(const struct tl_pl *a, const struct tl_pl *b)
{
    char x[1024], y[1024];
    size_t xl, yl;
    if (tl_sip_qstr_unescape(x, sizeof x, &xl, a) || tl_sip_qstr_unescape(y, sizeof y, &yl, b))
        return false;
    return xl == yl && memcmp(x, y, xl) == 0;
}

static void verify(const struct tl_sip_auth *a, const struct tl_sip_digest_check *chk,
                   enum tl_sip_digest_result *r)
{
    must(tl_sip_digest_verify(&srv, a, chk, NOW + 5, r) == 0);
    must(*r <= TL_SIP_DIGEST_URI_MISMATCH); /* the last result */
}

static void as_credentials(const struct tl_sip_auth *a)
{
    struct tl_sip_digest_check chk = {
        .method = TL_PL("INVITE"),
        .ruri = TL_PL("sip:+15551234567@trunk.example"),
        .realm = "trunk.example",
        .username = "carrier1",
        .password = "pa55word",
        .source = SRC,
    };
    enum tl_sip_digest_result r;
    char nonce[TL_SIP_DIGEST_NONCE_LEN + 1];

    verify(a, &chk, &r);
    must(r != TL_SIP_DIGEST_OK);

    struct tl_sip_auth b = *a;
    must(tl_sip_digest_nonce(&srv, nonce, SRC, NOW) == 0);
    b.nonce = tl_pl_str(nonce);
    verify(&b, &chk, &r);
    must(r != TL_SIP_DIGEST_OK && r != TL_SIP_DIGEST_STALE && r != TL_SIP_DIGEST_REPLAY);
    chk.ruri = (struct tl_pl){0};
    verify(&b, &chk, &r);
    must(r != TL_SIP_DIGEST_OK);
}

static void as_challenge(const struct tl_sip_auth *a)
{
    char out[4096];
    struct tl_sip_wbuf wb;
    struct tl_sip_auth chv[2] = {*a, *a}, back;
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:+15551234567@carrier.example",
        .username = "trunk\"user\\",
        .password = "pw",
        .realm = NULL,
        .cnonce = "c\"n",
        .nc = 1,
    };
    for (int pass = 0; pass < 2; pass++) {
        size_t idx = 9;
        cl.realm = pass ? "carrier.example" : NULL; /* any realm, then a trunk's realm */
        tl_sip_wbuf_init(&wb, out, sizeof out);
        int err = tl_sip_digest_answer(&wb, chv, 2, &cl, &idx);
        if (err) {
            must(err == EPERM || err == E2BIG || err == EBADMSG || err == ENOTSUP);
            must(wb.len == 0 && (err != EPERM || pass == 1));
            continue;
        }
        struct tl_pl v = {out, wb.len};
        must(idx == 0 && no_crlf(out, wb.len));
        must(tl_sip_auth_decode(&back, &v) == 0 && back.digest);
        must(unescaped_eq(&back.realm, &a->realm) && unescaped_eq(&back.nonce, &a->nonce));
        must(back.response.p && back.uri.p && back.username.p);
        must(!a->opaque.p || unescaped_eq(&back.opaque, &a->opaque));
        must((back.qop.p != NULL) == (a->qop.p != NULL));
        if (pass == 1) { /* CVE-2021-41158: only the expected realm is ever answered */
            struct tl_pl want = TL_PL("carrier.example");
            char realm[TL_SIP_DIGEST_VALUE_MAX + 1];
            size_t n;
            must(tl_sip_qstr_unescape(realm, sizeof realm, &n, &a->realm) == 0);
            struct tl_pl got = {realm, n};
            must(tl_pl_caseeq(&got, &want));
        }
    }
}

static void round_trip(const struct tl_sip_auth *a)
{
    char realm[300], user[300], pass[300], buf[2048], out[4096];
    if (!cstr(realm, sizeof realm, &a->realm) || !cstr(user, sizeof user, &a->username) ||
        !cstr(pass, sizeof pass, &a->cnonce))
        return;
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, buf, sizeof buf);
    char nonce[TL_SIP_DIGEST_NONCE_LEN + 1];
    must(tl_sip_digest_nonce(&srv, nonce, SRC, NOW) == 0);
    int err =
        tl_sip_digest_challenge_value(&srv, &wb, TL_SIP_DIGEST_ALG_SHA256, realm, nonce, false);
    if (err) {
        must(err == EINVAL && wb.len == 0); /* control octets or over the cap: ours to fix */
        return;
    }
    must(no_crlf(buf, wb.len));
    struct tl_pl v = {buf, wb.len};
    struct tl_sip_auth ch, cred;
    must(tl_sip_auth_decode(&ch, &v) == 0);

    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:x@y",
        .username = user,
        .password = pass,
        .realm = realm,
        .nc = 1,
    };
    tl_sip_wbuf_init(&wb, out, sizeof out);
    err = tl_sip_digest_answer(&wb, &ch, 1, &cl, NULL);
    if (err) {
        must(err == EINVAL); /* our username with a control octet */
        return;
    }
    v = (struct tl_pl){out, wb.len};
    must(no_crlf(out, wb.len));
    must(tl_sip_auth_decode(&cred, &v) == 0);
    struct tl_sip_digest_check chk = {
        .method = TL_PL("INVITE"),
        .ruri = TL_PL("sip:x@y"),
        .realm = realm,
        .username = user,
        .password = pass,
        .source = SRC,
    };
    enum tl_sip_digest_result r;
    verify(&cred, &chk, &r);
    must(r == TL_SIP_DIGEST_OK);
    verify(&cred, &chk, &r);
    must(r == TL_SIP_DIGEST_REPLAY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        static const uint8_t key[32] = {7};
        must(tl_sip_digest_server_init(&srv, key) == 0);
        init = true;
    }
    struct tl_sip_auth a;
    struct tl_pl val = {(const char *)data, size};
    if (tl_sip_auth_decode(&a, &val) != 0)
        return 0;
    as_credentials(&a);
    as_challenge(&a);
    round_trip(&a);
    return 0;
}
