/* sip/digest.c: RFC 7616 / RFC 2617 vectors, an RFC 2069 vector computed with md5sum, the
 * server (challenge, verify, replay table) against our own client, and carrier-shaped
 * challenges (Twilio, Telnyx) against the client. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "sip/digest.h"

#define NOW 1700000000u
#define SRC "198.51.100.7:5060"

static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static struct tl_sip_digest_server srv; /* ~80 KiB: not on the stack */

#define B64U "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
static int b64v(char ch)
{
    return (int)(strchr(B64U, ch) - B64U);
}

static struct tl_sip_auth decode(const char *s)
{
    struct tl_sip_auth a;
    struct tl_pl pl = tl_pl_str(s);
    assert_int_equal(tl_sip_auth_decode(&a, &pl), 0);
    return a;
}

/* Answers the challenge text `ch` and returns the NUL-terminated header value in out. */
static int answer(char *out, size_t cap, const char *ch, const struct tl_sip_digest_client *cl)
{
    struct tl_sip_auth a = decode(ch);
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, cap - 1);
    int err = tl_sip_digest_answer(&wb, &a, 1, cl, NULL);
    out[wb.len] = '\0';
    return err;
}

static void assert_pl_str(const struct tl_pl *pl, const char *s)
{
    assert_non_null(pl->p);
    assert_int_equal(pl->l, strlen(s));
    assert_memory_equal(pl->p, s, pl->l);
}

/* ---- vectors ---- */

/* RFC 7616 §3.9.1: the challenge as printed there, and the two responses. */
static void test_rfc7616_vectors(void **state)
{
    static const struct {
        const char *alg, *resp;
    } v[] = {
        {"MD5", "8ca523f5e9506fed4657c9700eebdbec"},
        {"SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
    };
    for (size_t i = 0; i < 2; i++) {
        char ch[512], out[1024];
        snprintf(ch, sizeof ch,
                 "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", "
                 "algorithm=%s, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                 "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"",
                 v[i].alg);
        struct tl_sip_digest_client cl = {
            .method = "GET",
            .uri = "/dir/index.html",
            .username = "Mufasa",
            .password = "Circle of Life",
            .realm = "http-auth@example.org",
            .cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            .nc = 1,
        };
        assert_int_equal(answer(out, sizeof out, ch, &cl), 0);
        char want[1024];
        snprintf(want, sizeof want,
                 "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", "
                 "nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                 "uri=\"/dir/index.html\", response=\"%s\", algorithm=%s, "
                 "cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", "
                 "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\", qop=auth, nc=00000001",
                 v[i].resp, v[i].alg);
        assert_string_equal(out, want);
    }
}

/* RFC 2617 §3.5 (note "Circle Of Life" there, "Circle of Life" in RFC 7616). */
static void test_rfc2617_vector(void **state)
{
    char out[1024];
    struct tl_sip_digest_client cl = {
        .method = "GET",
        .uri = "/dir/index.html",
        .username = "Mufasa",
        .password = "Circle Of Life",
        .realm = "testrealm@host.com",
        .cnonce = "0a4f113b",
        .nc = 1,
    };
    assert_int_equal(answer(out, sizeof out,
                            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
                            "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                            "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
                            &cl),
                     0);
    struct tl_sip_auth a = decode(out);
    assert_pl_str(&a.response, "6629fae49393a05397450978507c4ef1");
    assert_null(a.algorithm.p); /* the challenge had none: none echoed */
}

/* Telnyx-style challenge without qop: the RFC 2069 form. The expected response was computed
 * independently with coreutils, not with this code:
 *   HA1=$(printf %s 'alice:sip.telnyx.com:s3cret' | md5sum | cut -d' ' -f1)
 *   HA2=$(printf %s 'INVITE:sip:+15551234567@sip.telnyx.com' | md5sum | cut -d' ' -f1)
 *   printf %s "$HA1:9f8e7d6c5b4a:$HA2" | md5sum   -> d49ef8c0fc6e7db2295f930083780929 */
static void test_client_telnyx_rfc2069(void **state)
{
    char out[1024];
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:+15551234567@sip.telnyx.com",
        .username = "alice",
        .password = "s3cret",
        .realm = "sip.telnyx.com",
        .nc = 1,
    };
    assert_int_equal(answer(out, sizeof out,
                            "Digest realm=\"sip.telnyx.com\", nonce=\"9f8e7d6c5b4a\", "
                            "algorithm=MD5",
                            &cl),
                     0);
    assert_string_equal(out, "Digest username=\"alice\", realm=\"sip.telnyx.com\", "
                             "nonce=\"9f8e7d6c5b4a\", uri=\"sip:+15551234567@sip.telnyx.com\", "
                             "response=\"d49ef8c0fc6e7db2295f930083780929\", algorithm=MD5");
}

/* Twilio: 407, realm sip.twilio.com, qop="auth", opaque, no algorithm. Expected response
 * from md5sum as above with "$HA1:b1a6e2f5c0d3:00000001:testcnonce:auth:$HA2". */
static void test_client_twilio(void **state)
{
    char out[1024];
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:+14155550100@example.pstn.twilio.com",
        .username = "AC1234",
        .password = "tw-pass",
        .realm = "sip.twilio.com",
        .cnonce = "testcnonce",
        .nc = 1,
    };
    assert_int_equal(answer(out, sizeof out,
                            "Digest realm=\"sip.twilio.com\",nonce=\"b1a6e2f5c0d3\","
                            "opaque=\"777d1b2c\",qop=\"auth\"",
                            &cl),
                     0);
    assert_string_equal(out, "Digest username=\"AC1234\", realm=\"sip.twilio.com\", "
                             "nonce=\"b1a6e2f5c0d3\", "
                             "uri=\"sip:+14155550100@example.pstn.twilio.com\", "
                             "response=\"47c76e62e32fddeb38223a1fb0f77ffc\", "
                             "cnonce=\"testcnonce\", opaque=\"777d1b2c\", qop=auth, nc=00000001");

    /* a random cnonce when none is given; nc as counted by the caller */
    cl.cnonce = NULL;
    cl.nc = 0x2a;
    assert_int_equal(answer(out, sizeof out,
                            "Digest realm=\"sip.twilio.com\",nonce=\"b1a6e2f5c0d3\","
                            "opaque=\"777d1b2c\",qop=\"auth\"",
                            &cl),
                     0);
    struct tl_sip_auth a = decode(out);
    assert_pl_str(&a.nc, "0000002a");
    assert_int_equal(a.cnonce.l, 22);
}

static void test_client_realm_check(void **state)
{
    char out[1024];
    const char *ch = "Digest realm=\"evil.example\", nonce=\"abc\", qop=\"auth\"";
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:+15551234567@sip.telnyx.com",
        .username = "alice",
        .password = "s3cret",
        .realm = "sip.telnyx.com",
        .nc = 1,
    };
    /* CVE-2021-41158: a challenge for another realm gets nothing, not even an error body */
    assert_int_equal(answer(out, sizeof out, ch, &cl), EPERM);
    assert_string_equal(out, "");
    /* case-insensitive, so a host name may serve as the expected realm */
    assert_int_equal(answer(out, sizeof out, "Digest realm=\"SIP.Telnyx.com\", nonce=\"abc\"", &cl),
                     0);
    cl.realm = NULL; /* accept any: possible, but the daemon never does it */
    assert_int_equal(answer(out, sizeof out, ch, &cl), 0);
}

static void test_client_choice(void **state)
{
    struct tl_sip_auth chv[5] = {
        decode("Basic realm=\"x\""),
        decode("Digest realm=\"r\", nonce=\"n1\", algorithm=MD5-sess, qop=\"auth\""),
        decode("Digest realm=\"r\", nonce=\"n2\", algorithm=MD5, qop=\"auth\""),
        decode("Digest realm=\"r\", nonce=\"n3\", algorithm=sha-256, qop=\"auth-int,auth\""),
        decode("Digest realm=\"r\", nonce=\"n4\", algorithm=SHA-256, qop=\"auth\""),
    };
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:a@b",
        .username = "u",
        .password = "p",
        .realm = "r",
        .nc = 1,
    };
    char buf[1024];
    struct tl_sip_wbuf wb;
    size_t idx = 99;

    /* SHA-256 over MD5 wherever it is; the first of equals; algorithm echoed as written */
    tl_sip_wbuf_init(&wb, buf, sizeof buf - 1);
    assert_int_equal(tl_sip_digest_answer(&wb, chv, 5, &cl, &idx), 0);
    assert_int_equal(idx, 3);
    buf[wb.len] = '\0';
    assert_non_null(strstr(buf, ", algorithm=sha-256,"));

    /* only MD5 usable: -sess skipped */
    tl_sip_wbuf_init(&wb, buf, sizeof buf - 1);
    assert_int_equal(tl_sip_digest_answer(&wb, chv, 3, &cl, &idx), 0);
    assert_int_equal(idx, 2);

    /* nothing usable */
    assert_int_equal(tl_sip_digest_answer(&wb, chv, 2, &cl, &idx), ENOTSUP);
    struct tl_sip_auth intonly =
        decode("Digest realm=\"r\", nonce=\"n\", algorithm=MD5, qop=\"auth-int\"");
    assert_int_equal(tl_sip_digest_answer(&wb, &intonly, 1, &cl, &idx), ENOTSUP);
    struct tl_sip_auth sess = decode("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256-sess");
    assert_int_equal(tl_sip_digest_answer(&wb, &sess, 1, &cl, &idx), ENOTSUP);
    struct tl_sip_auth nonce_missing = decode("Digest realm=\"r\", qop=\"auth\"");
    assert_int_equal(tl_sip_digest_answer(&wb, &nonce_missing, 1, &cl, &idx), EBADMSG);
}

static void test_client_caps_and_escapes(void **state)
{
    char ch[1024], out[2048];
    struct tl_sip_digest_client cl = {
        .method = "INVITE",
        .uri = "sip:a@b",
        .username = "u\"x\\",
        .password = "p",
        .nc = 1,
    };
    char big[300];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';

    snprintf(ch, sizeof ch, "Digest realm=\"r\", nonce=\"%s\", qop=\"auth\"", big);
    assert_int_equal(answer(out, sizeof out, ch, &cl), E2BIG);
    snprintf(ch, sizeof ch, "Digest realm=\"r\", nonce=\"n\", opaque=\"%s\"", big);
    assert_int_equal(answer(out, sizeof out, ch, &cl), E2BIG);
    big[256] = '\0'; /* exactly at the cap */
    snprintf(ch, sizeof ch, "Digest realm=\"%s\", nonce=\"n\"", big);
    assert_int_equal(answer(out, sizeof out, ch, &cl), 0);

    /* a quoted-pair control octet would reach our output: refused */
    assert_int_equal(answer(out, sizeof out, "Digest realm=\"r\\\x01\", nonce=\"n\"", &cl),
                     EBADMSG);

    /* escapes are undone for hashing and redone for printing */
    assert_int_equal(
        answer(out, sizeof out, "Digest realm=\"a\\\"b\\\\c\\d\", nonce=\"n\", qop=\"auth\"", &cl),
        0);
    struct tl_sip_auth a = decode(out);
    assert_pl_str(&a.username, "u\\\"x\\\\");
    assert_pl_str(&a.realm, "a\\\"b\\\\cd");

    /* our own values: a CR in the username is refused, not printed */
    cl.username = "u\r\nX: y";
    assert_int_equal(answer(out, sizeof out, "Digest realm=\"r\", nonce=\"n\"", &cl), EINVAL);
    cl.username = "u";
    cl.nc = 0;
    assert_int_equal(answer(out, sizeof out, "Digest realm=\"r\", nonce=\"n\"", &cl), EINVAL);

    /* ENOSPC leaves the buffer as it was */
    cl.nc = 1;
    struct tl_sip_auth c = decode("Digest realm=\"r\", nonce=\"n\", qop=\"auth\"");
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, 60);
    wb.len = 3;
    assert_int_equal(tl_sip_digest_answer(&wb, &c, 1, &cl, NULL), ENOSPC);
    assert_int_equal(wb.len, 3);
}

/* ---- server ---- */

static int setup_srv(void **state)
{
    return tl_sip_digest_server_init(&srv, key);
}

static int teardown_srv(void **state)
{
    tl_sip_digest_server_wipe(&srv);
    return 0;
}

/* The two challenge values of a fresh 401 from our server, in order. */
static void challenge(char v[2][1024], const char *source, uint64_t now, bool stale)
{
    char buf[2048];
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, buf, sizeof buf - 1);
    assert_int_equal(tl_sip_digest_challenge(&srv, &wb, TL_SIP_HDR_WWW_AUTHENTICATE,
                                             "trunk.example", source, stale, now),
                     0);
    buf[wb.len] = '\0';
    const char *p = buf;
    for (int i = 0; i < 2; i++) {
        const char *pfx = "WWW-Authenticate: ", *e;
        assert_int_equal(strncmp(p, pfx, strlen(pfx)), 0);
        p += strlen(pfx);
        e = strstr(p, "\r\n");
        assert_non_null(e);
        snprintf(v[i], 1024, "%.*s", (int)(e - p), p);
        p = e + 2;
    }
    assert_string_equal(p, "");
}

static const struct tl_sip_digest_client carrier = {
    .method = "INVITE",
    .uri = "sip:+15551234567@trunk.example",
    .username = "carrier1",
    .password = "pa55word",
    .realm = "trunk.example",
    .nc = 1,
};

static struct tl_sip_digest_check check(void)
{
    return (struct tl_sip_digest_check){
        .method = TL_PL("INVITE"),
        .realm = "trunk.example",
        .username = "carrier1",
        .password = "pa55word",
        .source = SRC,
    };
}

static enum tl_sip_digest_result verify_str(const char *cred, const struct tl_sip_digest_check *c,
                                            uint64_t now)
{
    enum tl_sip_digest_result r = 99;
    struct tl_sip_auth a = decode(cred);
    assert_int_equal(tl_sip_digest_verify(&srv, &a, c, now, &r), 0);
    return r;
}

static void test_server_challenge_text(void **state)
{
    char v[2][1024];
    challenge(v, SRC, NOW, false);
    assert_non_null(strstr(v[0], "algorithm=SHA-256"));
    assert_non_null(strstr(v[1], "algorithm=MD5"));
    assert_null(strstr(v[0], "stale"));
    for (int i = 0; i < 2; i++) {
        struct tl_sip_auth a = decode(v[i]);
        assert_pl_str(&a.realm, "trunk.example");
        assert_pl_str(&a.qop, "auth");
        assert_int_equal(a.nonce.l, TL_SIP_DIGEST_NONCE_LEN);
        assert_non_null(a.opaque.p);
    }
    assert_memory_equal(strstr(v[0], "nonce="), strstr(v[1], "nonce="), 50); /* one nonce */

    challenge(v, SRC, NOW, true);
    assert_true(decode(v[0]).stale && decode(v[1]).stale);

    /* Proxy-Authenticate for a 407; all-or-nothing on ENOSPC; our realm is checked */
    char buf[2048];
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, buf, sizeof buf);
    assert_int_equal(
        tl_sip_digest_challenge(&srv, &wb, TL_SIP_HDR_PROXY_AUTHENTICATE, "r", SRC, false, NOW), 0);
    const char *pfx = "Proxy-Authenticate: Digest realm=\"r\", nonce=\"";
    assert_int_equal(strncmp(buf, pfx, strlen(pfx)), 0);
    size_t full = wb.len;
    tl_sip_wbuf_init(&wb, buf, full - 1);
    assert_int_equal(
        tl_sip_digest_challenge(&srv, &wb, TL_SIP_HDR_PROXY_AUTHENTICATE, "r", SRC, false, NOW),
        ENOSPC);
    assert_int_equal(wb.len, 0);
    tl_sip_wbuf_init(&wb, buf, sizeof buf);
    assert_int_equal(tl_sip_digest_challenge(&srv, &wb, TL_SIP_HDR_PROXY_AUTHENTICATE, "r\r\nX: y",
                                             SRC, false, NOW),
                     EINVAL);
    assert_int_equal(
        tl_sip_digest_challenge(&srv, &wb, TL_SIP_HDR_AUTHORIZATION, "r", SRC, false, NOW), EINVAL);
}

static void test_server_round_trip(void **state)
{
    char v[2][1024], out[1024];
    struct tl_sip_digest_check c = check();
    for (int i = 0; i < 2; i++) { /* SHA-256, then MD5 */
        challenge(v, SRC, NOW, false);
        assert_int_equal(answer(out, sizeof out, v[i], &carrier), 0);
        assert_int_equal(verify_str(out, &c, NOW + 10), TL_SIP_DIGEST_OK);
        assert_int_equal(verify_str(out, &c, NOW + 11), TL_SIP_DIGEST_REPLAY);
    }
}

/* A realm and username at the cap, made of octets that need escaping: both sides count the
 * unescaped octets, so what we challenge with we also accept. */
static void test_server_escaped_at_cap(void **state)
{
    char realm[TL_SIP_DIGEST_VALUE_MAX + 1], user[TL_SIP_DIGEST_VALUE_MAX + 1];
    char nonce[TL_SIP_DIGEST_NONCE_LEN + 1], ch[2048], out[4096];
    for (size_t i = 0; i < TL_SIP_DIGEST_VALUE_MAX; i++) {
        realm[i] = i % 2 ? '"' : '\\';
        user[i] = i % 3 ? 'u' : '"';
    }
    realm[TL_SIP_DIGEST_VALUE_MAX] = user[TL_SIP_DIGEST_VALUE_MAX] = '\0';
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, ch, sizeof ch - 1);
    assert_int_equal(tl_sip_digest_nonce(&srv, nonce, SRC, NOW), 0);
    assert_int_equal(
        tl_sip_digest_challenge_value(&srv, &wb, TL_SIP_DIGEST_ALG_MD5, realm, nonce, false), 0);
    ch[wb.len] = '\0';
    struct tl_sip_digest_client cl = carrier;
    cl.realm = realm;
    cl.username = user;
    assert_int_equal(answer(out, sizeof out, ch, &cl), 0);
    struct tl_sip_digest_check c = check();
    c.realm = realm;
    c.username = user;
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_OK);

    /* one octet more is refused by the challenge printer (ours) and the client (wire) */
    char more[TL_SIP_DIGEST_VALUE_MAX + 2];
    memset(more, 'r', sizeof more - 1);
    more[sizeof more - 1] = '\0';
    tl_sip_wbuf_init(&wb, ch, sizeof ch - 1);
    assert_int_equal(
        tl_sip_digest_challenge_value(&srv, &wb, TL_SIP_DIGEST_ALG_MD5, more, nonce, false),
        EINVAL);
}

static void test_server_bad_credentials(void **state)
{
    char v[2][1024], out[1024];
    struct tl_sip_digest_check c = check();
    struct tl_sip_digest_client cl = carrier;
    challenge(v, SRC, NOW, false);

    cl.password = "wrong";
    assert_int_equal(answer(out, sizeof out, v[0], &cl), 0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_CREDENTIALS);
    /* a wrong answer to a stale nonce is not "stale": stale=true promises a right password */
    assert_int_equal(verify_str(out, &c, NOW + 301), TL_SIP_DIGEST_BAD_CREDENTIALS);

    cl = carrier;
    cl.username = "carrier2";
    assert_int_equal(answer(out, sizeof out, v[1], &cl), 0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_CREDENTIALS);

    /* right answer, but we expect another realm / user for this trunk */
    assert_int_equal(answer(out, sizeof out, v[0], &carrier), 0);
    c.realm = "other.example";
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_CREDENTIALS);
    c = check();
    c.username = "carrier1x";
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_CREDENTIALS);
    c = check();
    c.method = TL_PL("BYE"); /* A2 covers the method */
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_CREDENTIALS);
    /* none of the failures above consumed the nonce-count */
    c = check();
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_OK);
}

static void test_server_nonce_count(void **state)
{
    char v[2][1024], out[1024];
    struct tl_sip_digest_check c = check();
    struct tl_sip_digest_client cl = carrier;
    challenge(v, SRC, NOW, false);

    cl.nc = 1;
    assert_int_equal(answer(out, sizeof out, v[0], &cl), 0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_OK);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_REPLAY);
    cl.nc = 3; /* gaps are fine (RFC 7616 §3.4 nc only asks for "greater") */
    assert_int_equal(answer(out, sizeof out, v[0], &cl), 0);
    assert_int_equal(verify_str(out, &c, NOW + 1), TL_SIP_DIGEST_OK);
    cl.nc = 2;
    assert_int_equal(answer(out, sizeof out, v[0], &cl), 0);
    assert_int_equal(verify_str(out, &c, NOW + 2), TL_SIP_DIGEST_REPLAY);
    cl.nc = 4;
    assert_int_equal(answer(out, sizeof out, v[1], &cl), 0); /* same nonce, MD5 */
    assert_int_equal(verify_str(out, &c, NOW + 3), TL_SIP_DIGEST_OK);
}

static void test_server_stale(void **state)
{
    char v[2][1024], out[1024];
    struct tl_sip_digest_check c = check();
    challenge(v, SRC, NOW, false);
    assert_int_equal(answer(out, sizeof out, v[0], &carrier), 0);
    assert_int_equal(verify_str(out, &c, NOW + 301), TL_SIP_DIGEST_STALE);
    /* clock went back, beyond what a neighbour node's skew explains */
    assert_int_equal(verify_str(out, &c, NOW - TL_SIP_DIGEST_SKEW_S - 1), TL_SIP_DIGEST_STALE);
    srv.nonce_ttl_s = 1000;
    assert_int_equal(verify_str(out, &c, NOW + 301), TL_SIP_DIGEST_OK);
    srv.nonce_ttl_s = TL_SIP_DIGEST_TTL_DEFAULT;
    assert_int_equal(verify_str(out, &c, NOW + 300), TL_SIP_DIGEST_REPLAY);
}

/* ---- nonce key rotation and nodes sharing the secret (issue 13) ---- */

static struct tl_sip_digest_server srv2; /* another node */

/* one nonce minted by `by` at `at`, answered by the carrier */
static void answer_at(char out[1024], struct tl_sip_digest_server *by, uint64_t at)
{
    char buf[2048], v[1024];
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, buf, sizeof buf - 1);
    assert_int_equal(tl_sip_digest_challenge(by, &wb, TL_SIP_HDR_WWW_AUTHENTICATE, "trunk.example",
                                             SRC, false, at),
                     0);
    buf[wb.len] = '\0';
    const char *p = buf + strlen("WWW-Authenticate: "), *e = strstr(p, "\r\n");
    snprintf(v, sizeof v, "%.*s", (int)(e - p), p);
    assert_int_equal(answer(out, 1024, v, &carrier), 0);
}

static void test_server_skew(void **state)
{
    char out[1024];
    struct tl_sip_digest_check c = check();
    /* a neighbour whose clock is a second behind reads our nonce as from the future */
    answer_at(out, &srv, NOW);
    assert_int_equal(verify_str(out, &c, NOW - TL_SIP_DIGEST_SKEW_S), TL_SIP_DIGEST_OK);
    answer_at(out, &srv, NOW);
    assert_int_equal(verify_str(out, &c, NOW - TL_SIP_DIGEST_SKEW_S - 1), TL_SIP_DIGEST_STALE);
}

static void test_server_epochs(void **state)
{
    char out[1024];
    struct tl_sip_digest_check c = check();
    const uint64_t b = NOW; /* an epoch boundary: NOW is a multiple of 1000 */
    srv.epoch_s = 1000;
    /* a long TTL, so that only the epoch rule can refuse below */
    srv.nonce_ttl_s = 5000;

    /* minted in the last second of epoch e-1: the previous epoch is still accepted */
    answer_at(out, &srv, b - 1);
    assert_int_equal(verify_str(out, &c, b), TL_SIP_DIGEST_OK);
    answer_at(out, &srv, b - 1);
    assert_int_equal(verify_str(out, &c, b + 999), TL_SIP_DIGEST_OK);
    /* two epochs on, its key is retired: not ours any more, whatever the TTL says */
    answer_at(out, &srv, b - 1);
    assert_int_equal(verify_str(out, &c, b + 1000), TL_SIP_DIGEST_BAD_NONCE);
    answer_at(out, &srv, b - 1000);
    assert_int_equal(verify_str(out, &c, b + 1000), TL_SIP_DIGEST_BAD_NONCE);

    /* the first second of epoch e+1, seen by a node a second behind (still in e) */
    answer_at(out, &srv, b + 1000);
    assert_int_equal(verify_str(out, &c, b + 999), TL_SIP_DIGEST_OK);
    /* an epoch further in the future is no key we use */
    answer_at(out, &srv, b + 2000);
    assert_int_equal(verify_str(out, &c, b + 999), TL_SIP_DIGEST_BAD_NONCE);

    /* each epoch has its own key, derived from the secret (crypto_kdf, context "tlnepoch",
     * subkey id = the epoch number): a nonce MACed by hand with the key of its own epoch
     * passes; with the previous epoch's key, or with the secret itself, it does not */
    srv.nonce_ttl_s = TL_SIP_DIGEST_TTL_DEFAULT;
    const uint64_t ts = b + 10, e = b / 1000;
    for (int k = 0; k < 3; k++) {
        uint8_t bin[32], hk[32], mac[32];
        unsigned int ml = 0;
        for (int i = 0; i < 8; i++)
            bin[i] = (uint8_t)(ts >> (56 - 8 * i));
        memset(bin + 8, 0x40 + k, 8);
        if (k == 0)
            crypto_kdf_derive_from_key(hk, sizeof hk, e, "tlnepoch", key);
        else if (k == 1)
            crypto_kdf_derive_from_key(hk, sizeof hk, e - 1, "tlnepoch", key);
        else
            memcpy(hk, key, sizeof hk);
        uint8_t msg[16 + sizeof SRC - 1];
        memcpy(msg, bin, 16);
        memcpy(msg + 16, SRC, sizeof SRC - 1);
        assert_non_null(HMAC(EVP_sha256(), hk, sizeof hk, msg, sizeof msg, mac, &ml));
        memcpy(bin + 16, mac, 16);
        char nonce[TL_SIP_DIGEST_NONCE_LEN + 1], t[1024];
        sodium_bin2base64(nonce, sizeof nonce, bin, sizeof bin,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(t, sizeof t,
                 "Digest realm=\"trunk.example\", nonce=\"%s\", algorithm=SHA-256, qop=\"auth\"",
                 nonce);
        assert_int_equal(answer(out, sizeof out, t, &carrier), 0);
        assert_int_equal(verify_str(out, &c, ts + 1),
                         k == 0 ? TL_SIP_DIGEST_OK : TL_SIP_DIGEST_BAD_NONCE);
    }
}

static void test_server_nodes_share_secret(void **state)
{
    char out[1024], v1[2][1024];
    struct tl_sip_digest_check c = check();
    enum tl_sip_digest_result r = 99;
    uint8_t other[32];

    /* node 2 with the same secret: node 1's nonce passes there, with the same opaque */
    assert_int_equal(tl_sip_digest_server_init(&srv2, key), 0);
    challenge(v1, SRC, NOW, false);
    assert_int_equal(answer(out, sizeof out, v1[0], &carrier), 0);
    struct tl_sip_auth a = decode(out);
    assert_int_equal(tl_sip_digest_verify(&srv2, &a, &c, NOW + 1, &r), 0);
    assert_int_equal(r, TL_SIP_DIGEST_OK);
    /* its replay table is its own: the same answer again on node 2 is a replay there, and
     * passes once on node 1 (the documented cross-node bound, within the TTL) */
    a = decode(out);
    assert_int_equal(tl_sip_digest_verify(&srv2, &a, &c, NOW + 1, &r), 0);
    assert_int_equal(r, TL_SIP_DIGEST_REPLAY);
    assert_int_equal(verify_str(out, &c, NOW + 1), TL_SIP_DIGEST_OK);
    assert_int_equal(verify_str(out, &c, NOW + 1), TL_SIP_DIGEST_REPLAY);
    /* the opaque is the same on both nodes and in every epoch */
    {
        char buf[2048];
        struct tl_sip_wbuf wb;
        tl_sip_wbuf_init(&wb, buf, sizeof buf - 1);
        assert_int_equal(tl_sip_digest_challenge(&srv2, &wb, TL_SIP_HDR_WWW_AUTHENTICATE,
                                                 "trunk.example", SRC, false,
                                                 NOW + 3 * TL_SIP_DIGEST_EPOCH_DEFAULT),
                         0);
        buf[wb.len] = '\0';
        const char *o1 = strstr(v1[0], "opaque=\""), *o2 = strstr(buf, "opaque=\"");
        assert_non_null(o1);
        assert_non_null(o2);
        assert_memory_equal(o1, o2, 8 + 16 + 1);
    }

    /* a node with another secret challenges again (BAD_NONCE, not a refusal) */
    memcpy(other, key, sizeof other);
    other[5] ^= 1;
    tl_sip_digest_server_wipe(&srv2);
    assert_int_equal(tl_sip_digest_server_init(&srv2, other), 0);
    challenge(v1, SRC, NOW, false);
    assert_int_equal(answer(out, sizeof out, v1[0], &carrier), 0);
    a = decode(out);
    assert_int_equal(tl_sip_digest_verify(&srv2, &a, &c, NOW, &r), 0);
    assert_int_equal(r, TL_SIP_DIGEST_BAD_NONCE);
    tl_sip_digest_server_wipe(&srv2);
}

static void test_server_bad_nonce(void **state)
{
    char v[2][1024], out[1024], t[1024];
    struct tl_sip_digest_check c = check();

    /* issued to another source address */
    challenge(v, "203.0.113.9:5060", NOW, false);
    assert_int_equal(answer(out, sizeof out, v[0], &carrier), 0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_NONCE);
    c.source = "203.0.113.9:5060";
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_OK);
    c.source = "203.0.113.9"; /* binding is exactly the string the caller chose */
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_NONCE);
    c = check();

    /* tampered: a character of the timestamp, one of the MAC, and the last character spelt
     * non-canonically (its 2 spare bits set: same bytes, another text) */
    challenge(v, SRC, NOW, false);
    for (int k = 0; k < 3; k++) {
        strcpy(t, v[0]);
        char *n = strstr(t, "nonce=\"") + 7;
        size_t at = k == 0 ? 3 : k == 1 ? 30 : TL_SIP_DIGEST_NONCE_LEN - 1;
        if (k == 2)
            n[at] = B64U[b64v(n[at]) | 1];
        else
            n[at] = n[at] == 'A' ? 'B' : 'A';
        assert_int_equal(answer(out, sizeof out, t, &carrier), 0);
        assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_NONCE);
    }

    /* another server's nonce and a wrong opaque */
    assert_int_equal(answer(out, sizeof out,
                            "Digest realm=\"trunk.example\", nonce=\"abc\", qop=\"auth\"",
                            &carrier),
                     0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_NONCE);
    strcpy(t, v[0]);
    char *o = strstr(t, "opaque=\"") + 8;
    o[0] = o[0] == 'A' ? 'B' : 'A';
    assert_int_equal(answer(out, sizeof out, t, &carrier), 0);
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_BAD_NONCE);
}

/* Our credentials with one parameter removed or replaced. */
static void edit(char *dst, const char *src, const char *param, const char *repl)
{
    const char *p = strstr(src, param), *e;
    assert_non_null(p);
    e = strchr(p, ',');
    if (!e)
        e = p + strlen(p);
    else
        e++;
    snprintf(dst, 1024, "%.*s%s%s", (int)(p - src), src, repl, e);
}

static void test_server_malformed(void **state)
{
    char v[2][1024], out[1024], t[1024];
    struct tl_sip_digest_check c = check();
    challenge(v, SRC, NOW, false);
    assert_int_equal(answer(out, sizeof out, v[1], &carrier), 0); /* MD5 */

    /* the RFC 2069 answer to a challenge that offered qop: downgrade, refused */
    struct tl_sip_digest_client cl = carrier;
    char noqop[1024];
    edit(noqop, v[1], "qop=", "");
    assert_int_equal(answer(t, sizeof t, noqop, &cl), 0);
    assert_null(strstr(t, "qop"));
    assert_int_equal(verify_str(t, &c, NOW), TL_SIP_DIGEST_MALFORMED);

    static const struct {
        const char *param, *repl;
    } e[] = {
        {"qop=", "qop=auth-int, "},
        {"qop=", ""},
        {"nc=", ""},
        {"cnonce=", ""},
        {"uri=", ""},
        {"uri=", "uri=\"\", "},
        {"username=", ""},
        {"realm=", ""},
        {"response=", ""},
        {"algorithm=", "algorithm=MD5-sess, "},
        {"algorithm=", "algorithm=SHA-512-256, "},
        {"algorithm=", "algorithm=SHA-256, "}, /* 32 hex digits for SHA-256 */
        {"algorithm=", "userhash=true, algorithm=MD5, "},
    };
    for (size_t i = 0; i < sizeof e / sizeof e[0]; i++) {
        edit(t, out, e[i].param, e[i].repl);
        if (verify_str(t, &c, NOW) != TL_SIP_DIGEST_MALFORMED)
            fail_msg("case %zu: %s", i, t);
    }
    /* algorithm absent means MD5 */
    edit(t, out, "algorithm=", "");
    assert_int_equal(verify_str(t, &c, NOW), TL_SIP_DIGEST_OK);
    /* the opaque may be left out, and the response's hex case does not matter */
    edit(t, out, "opaque=", "");
    for (char *r = strstr(t, "response=\"") + 10; *r != '"'; r++)
        if (*r >= 'a' && *r <= 'f')
            *r = (char)(*r - 32);
    /* (t's nc is still 1: replay) */
    assert_int_equal(verify_str(t, &c, NOW), TL_SIP_DIGEST_REPLAY);
    assert_int_equal(verify_str("Basic YWxhZGRpbjpvcGVuc2VzYW1l", &c, NOW),
                     TL_SIP_DIGEST_MALFORMED);

    enum tl_sip_digest_result r;
    struct tl_sip_auth a = decode(out);
    assert_int_equal(tl_sip_digest_verify(&srv, &a, NULL, NOW, &r), EINVAL);
    assert_int_equal(tl_sip_digest_verify(&srv, &a, &c, NOW, NULL), EINVAL);
}

static void test_server_ruri(void **state)
{
    char v[2][1024], out[1024];
    struct tl_sip_digest_check c = check();
    challenge(v, SRC, NOW, false);
    assert_int_equal(answer(out, sizeof out, v[0], &carrier), 0);
    /* another user at another host: not this resource */
    c.ruri = TL_PL("sip:+15559999999@other.example");
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_URI_MISMATCH);
    c.ruri = TL_PL("sip:+15551234567@TRUNK.example"); /* equivalent (RFC 3261 §19.1.4) */
    assert_int_equal(verify_str(out, &c, NOW), TL_SIP_DIGEST_OK);
}

/* The replay table's documented limit: a fifth nonce in a full set evicts the oldest, whose
 * captured credentials are then accepted once more within the TTL. */

static size_t set_of(const char *cred) /* MAC bytes 16, 17 of the nonce pick the set */
{
    struct tl_sip_auth a = decode(cred);
    uint8_t bin[33];
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < a.nonce.l; i++) {
        acc = acc << 6 | (uint32_t)b64v(a.nonce.p[i]);
        if ((bits += 6) >= 8) {
            bits -= 8;
            bin[o++] = (uint8_t)(acc >> bits);
        }
    }
    return ((size_t)bin[16] << 8 | bin[17]) & (TL_SIP_DIGEST_NC_SETS - 1);
}

static void test_server_replay_table_full(void **state)
{
    static char creds[8192][512];
    static size_t sets[8192];
    struct tl_sip_digest_check c = check();
    size_t pick[TL_SIP_DIGEST_NC_WAYS + 1], n = 0, target = SIZE_MAX;
    char v[2][1024];

    for (size_t i = 0; i < 8192 && n <= TL_SIP_DIGEST_NC_WAYS; i++) {
        challenge(v, SRC, NOW + i / 64, false);
        assert_int_equal(answer(creds[i], sizeof creds[i], v[1], &carrier), 0);
        sets[i] = set_of(creds[i]);
        if (target == SIZE_MAX) { /* the first set to collect 5 nonces */
            size_t same = 0;
            for (size_t j = 0; j <= i; j++)
                same += sets[j] == sets[i];
            if (same == TL_SIP_DIGEST_NC_WAYS + 1)
                target = sets[i];
        }
        if (target != SIZE_MAX) {
            n = 0;
            for (size_t j = 0; j <= i && n <= TL_SIP_DIGEST_NC_WAYS; j++)
                if (sets[j] == target)
                    pick[n++] = j;
        }
    }
    assert_int_equal(n, TL_SIP_DIGEST_NC_WAYS + 1);
    uint64_t now = NOW + pick[n - 1] / 64;
    for (size_t k = 0; k < n; k++)
        assert_int_equal(verify_str(creds[pick[k]], &c, now), TL_SIP_DIGEST_OK);
    for (size_t k = 1; k < n; k++) /* remembered */
        assert_int_equal(verify_str(creds[pick[k]], &c, now), TL_SIP_DIGEST_REPLAY);
    /* the oldest was evicted: accepted once more, then remembered again */
    assert_int_equal(verify_str(creds[pick[0]], &c, now), TL_SIP_DIGEST_OK);
    assert_int_equal(verify_str(creds[pick[0]], &c, now), TL_SIP_DIGEST_REPLAY);
}

static void test_alg_id(void **state)
{
    struct tl_pl p;
    assert_int_equal(tl_sip_digest_alg_id(NULL), TL_SIP_DIGEST_ALG_MD5);
    p = TL_PL("md5");
    assert_int_equal(tl_sip_digest_alg_id(&p), TL_SIP_DIGEST_ALG_MD5);
    p = TL_PL("SHA-256");
    assert_int_equal(tl_sip_digest_alg_id(&p), TL_SIP_DIGEST_ALG_SHA256);
    p = TL_PL("SHA-256-sess");
    assert_int_equal(tl_sip_digest_alg_id(&p), TL_SIP_DIGEST_ALG_NONE);
    p = TL_PL("");
    assert_int_equal(tl_sip_digest_alg_id(&p), TL_SIP_DIGEST_ALG_NONE);
    assert_string_equal(tl_sip_digest_result_str(TL_SIP_DIGEST_REPLAY), "replayed nonce-count");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7616_vectors),
        cmocka_unit_test(test_rfc2617_vector),
        cmocka_unit_test(test_client_telnyx_rfc2069),
        cmocka_unit_test(test_client_twilio),
        cmocka_unit_test(test_client_realm_check),
        cmocka_unit_test(test_client_choice),
        cmocka_unit_test(test_client_caps_and_escapes),
        cmocka_unit_test_setup_teardown(test_server_challenge_text, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_round_trip, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_escaped_at_cap, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_bad_credentials, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_nonce_count, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_stale, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_skew, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_epochs, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_nodes_share_secret, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_bad_nonce, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_malformed, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_ruri, setup_srv, teardown_srv),
        cmocka_unit_test_setup_teardown(test_server_replay_table_full, setup_srv, teardown_srv),
        cmocka_unit_test(test_alg_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
