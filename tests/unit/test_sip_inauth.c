/* sip/inauth.c: the decision on an inbound request (pass / 401 / 401 stale / 403 / 400) on
 * crafted INVITEs decoded with tl_sip_msg_decode, answered by our own digest client; the
 * algorithm list and "user:password" parsing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/inauth.h"

#define NOW  1700000000u
#define SRC  "198.51.100.7"
#define RURI "sip:+4930123456@gw.test"

static const uint8_t key[32] = {7};
static struct tl_sip_digest_server srv; /* ~80 KiB: not on the stack */
static const struct tl_sip_inauth_cred cred = {"gw.test", "alice", "s3cret", NULL, {0}, NULL};

/* the request buffer outlives the decoded message: one static buffer per slot */
static char reqbuf[4][4096];
static struct tl_sip_msg reqmsg[4];

static const struct tl_sip_msg *invite(int slot, const char *auth_lines)
{
    snprintf(reqbuf[slot], sizeof reqbuf[slot],
             "INVITE " RURI " SIP/2.0\r\n"
             "Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK%d\r\n"
             "Max-Forwards: 70\r\nFrom: <sip:carrier@198.51.100.7>;tag=f%d\r\n"
             "To: <" RURI ">\r\nCall-ID: c%d@t\r\nCSeq: 1 INVITE\r\n%sContent-Length: 0\r\n\r\n",
             slot, slot, slot, auth_lines ? auth_lines : "");
    assert_int_equal(tl_sip_msg_decode(&reqmsg[slot], reqbuf[slot], strlen(reqbuf[slot])), 0);
    return &reqmsg[slot];
}

static int setup(void **state)
{
    (void)state;
    return tl_sip_digest_server_init(&srv, key);
}

static int teardown(void **state)
{
    (void)state;
    tl_sip_digest_server_wipe(&srv);
    return 0;
}

static struct tl_sip_inauth_decision d; /* 2 KiB */

static void decide(const struct tl_sip_msg *m, const struct tl_sip_inauth_cred *c, const char *src,
                   uint64_t now)
{
    assert_int_equal(tl_sip_inauth_decide(&srv, m, c, src, now, &d), 0);
}

/* The challenges in d.hdrs: each "WWW-Authenticate: <value>\r\n" line decoded. Values point
 * into a static copy of the lines. */
static size_t challenges(struct tl_sip_auth *chv, size_t max)
{
    static char copy[TL_SIP_INAUTH_HDRS_MAX];
    memcpy(copy, d.hdrs, sizeof copy);
    size_t n = 0;
    for (char *p = copy; *p && n < max;) {
        char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        assert_memory_equal(p, "WWW-Authenticate: ", 18);
        struct tl_pl v = {p + 18, (size_t)(eol - p - 18)};
        assert_int_equal(tl_sip_auth_decode(&chv[n++], &v), 0);
        p = eol + 2;
    }
    return n;
}

/* "Authorization: …\r\n" answering challenge i of the last decision (our own client). */
static const char *authorization_for(char *out, size_t cap, size_t i, const char *uri,
                                     const char *user, const char *password, uint32_t nc)
{
    struct tl_sip_auth chv[4];
    size_t n = challenges(chv, 4);
    assert_true(i < n);
    const struct tl_sip_digest_client cl = {"INVITE", uri, user, password, "gw.test", NULL, nc};
    struct tl_sip_wbuf wb;
    tl_sip_wbuf_init(&wb, out, cap - 1);
    assert_int_equal(tl_sip_wbuf_printf(&wb, "Authorization: "), 0);
    assert_int_equal(tl_sip_digest_answer(&wb, &chv[i], 1, &cl, NULL), 0);
    assert_int_equal(tl_sip_wbuf_printf(&wb, "\r\n"), 0);
    out[wb.len] = '\0';
    return out;
}

static const char *authorization(char *out, size_t cap, size_t i, const char *user,
                                 const char *password, uint32_t nc)
{
    return authorization_for(out, cap, i, RURI, user, password, nc);
}

static void test_challenge_order(void **state)
{
    (void)state;
    decide(invite(0, NULL), &cred, SRC, NOW);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_CHALLENGE);
    assert_int_equal(d.scode, 401);
    assert_string_equal(d.reason, "no_credentials");
    assert_string_equal(d.user, "-");
    struct tl_sip_auth chv[4];
    assert_int_equal(challenges(chv, 4), 2);
    /* RFC 8760: SHA-256 first, then MD5, one nonce, qop=auth, not stale */
    assert_true(tl_sip_digest_alg_id(&chv[0].algorithm) == TL_SIP_DIGEST_ALG_SHA256);
    assert_true(tl_sip_digest_alg_id(&chv[1].algorithm) == TL_SIP_DIGEST_ALG_MD5);
    assert_true(tl_pl_eq_str(&chv[0].realm, "gw.test"));
    assert_true(tl_pl_eq(&chv[0].nonce, &chv[1].nonce));
    assert_true(tl_pl_eq_str(&chv[1].qop, "auth"));
    assert_false(chv[0].stale || chv[1].stale);

    /* a configured order */
    struct tl_sip_inauth_cred c = cred;
    assert_int_equal(tl_sip_inauth_algs(c.algs, "md5, SHA-256"), 0);
    decide(invite(0, NULL), &c, SRC, NOW);
    assert_int_equal(challenges(chv, 4), 2);
    assert_true(tl_sip_digest_alg_id(&chv[0].algorithm) == TL_SIP_DIGEST_ALG_MD5);
    assert_int_equal(tl_sip_inauth_algs(c.algs, "SHA-256"), 0);
    decide(invite(0, NULL), &c, SRC, NOW);
    assert_int_equal(challenges(chv, 4), 1);
    assert_true(tl_sip_digest_alg_id(&chv[0].algorithm) == TL_SIP_DIGEST_ALG_SHA256);
}

static void test_pass_both_algorithms(void **state)
{
    (void)state;
    char a[1024];
    for (size_t i = 0; i < 2; i++) {
        decide(invite(0, NULL), &cred, SRC, NOW);
        authorization(a, sizeof a, i, "alice", "s3cret", 1);
        decide(invite(1, a), &cred, SRC, NOW + 1);
        assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
        assert_int_equal(d.scode, 0);
        assert_null(d.reason);
        assert_string_equal(d.hdrs, "");
        assert_string_equal(d.user, "alice");
    }
}

static void test_wrong_password_or_user_403(void **state)
{
    (void)state;
    char a[1024];
    const char *who[][2] = {{"alice", "guess"}, {"mallory", "s3cret"}};
    for (size_t i = 0; i < 2; i++) {
        decide(invite(0, NULL), &cred, SRC, NOW);
        authorization(a, sizeof a, 1, who[i][0], who[i][1], 1);
        decide(invite(1, a), &cred, SRC, NOW);
        assert_int_equal(d.verdict, TL_SIP_INAUTH_FORBIDDEN);
        assert_int_equal(d.scode, 403);
        assert_string_equal(d.reason, "credentials_mismatch");
        /* the same words for both: no user enumeration */
        assert_string_equal(d.hdrs, "Warning: 399 gw.test \"credentials do not match\"\r\n");
        assert_string_equal(d.user, who[i][0]);
    }
    /* the Warning agent is ours when given */
    struct tl_sip_inauth_cred c = cred;
    c.host = "sbc.example";
    decide(invite(1, a), &c, SRC, NOW);
    assert_string_equal(d.hdrs, "Warning: 399 sbc.example \"credentials do not match\"\r\n");
}

static void test_replay_403_nc_increase_passes(void **state)
{
    (void)state;
    char a[1024], b[1024];
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    authorization(b, sizeof b, 0, "alice", "s3cret", 2);
    decide(invite(1, a), &cred, SRC, NOW);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
    decide(invite(2, a), &cred, SRC, NOW); /* another INVITE, the same nonce and nc */
    assert_int_equal(d.verdict, TL_SIP_INAUTH_FORBIDDEN);
    assert_string_equal(d.reason, "nonce_reuse");
    assert_string_equal(d.hdrs, "Warning: 399 gw.test \"nonce reuse\"\r\n");
    decide(invite(3, b), &cred, SRC, NOW); /* RFC 7616 §3.4: a higher nc is a fresh use */
    assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
}

static void test_fresh_at_ttl(void **state)
{
    (void)state;
    char a[1024];
    srv.nonce_ttl_s = 30;
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    decide(invite(1, a), &cred, SRC, NOW + 30); /* stale only when older than the TTL */
    assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
}

static void test_stale_after_ttl(void **state)
{
    (void)state;
    char a[1024];
    srv.nonce_ttl_s = 30;
    decide(invite(0, NULL), &cred, SRC, NOW);
    struct tl_sip_auth old[4];
    challenges(old, 4);
    char nonce[64];
    snprintf(nonce, sizeof nonce, "%.*s", (int)old[0].nonce.l, old[0].nonce.p);
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    decide(invite(1, a), &cred, SRC, NOW + 31);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_STALE);
    assert_int_equal(d.scode, 401);
    assert_string_equal(d.reason, "stale_nonce");
    assert_string_equal(d.user, "alice");
    struct tl_sip_auth chv[4];
    assert_int_equal(challenges(chv, 4), 2);
    assert_true(chv[0].stale && chv[1].stale);
    assert_false(tl_pl_eq_str(&chv[0].nonce, nonce));
    /* the new nonce works */
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    decide(invite(2, a), &cred, SRC, NOW + 32);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
    /* a wrong password on an old nonce is a 403, never stale=true ("your password is fine") */
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization(a, sizeof a, 0, "alice", "guess", 1);
    decide(invite(1, a), &cred, SRC, NOW + 100);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_FORBIDDEN);
}

static void test_nonce_from_elsewhere_rechallenged(void **state)
{
    (void)state;
    char a[1024];
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    decide(invite(1, a), &cred, "203.0.113.9", NOW); /* bound to another source */
    assert_int_equal(d.verdict, TL_SIP_INAUTH_CHALLENGE);
    assert_string_equal(d.reason, "unknown_nonce");
    /* a nonce from a previous start (another secret): challenged again, not refused */
    struct tl_sip_digest_server *other = calloc(1, sizeof *other);
    assert_non_null(other);
    const uint8_t k2[32] = {9};
    tl_sip_digest_server_init(other, k2);
    assert_int_equal(tl_sip_inauth_decide(other, invite(1, a), &cred, SRC, NOW, &d), 0);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_CHALLENGE);
    assert_string_equal(d.reason, "unknown_nonce");
    tl_sip_digest_server_wipe(other);
    free(other);
}

static void test_malformed_400(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* our realm, fields missing */
        "Authorization: Digest username=\"alice\", realm=\"gw.test\"\r\n",
        /* unreadable (a repeated parameter) and nothing usable besides */
        "Authorization: Digest realm=\"gw.test\", realm=\"x\"\r\n",
        /* qop other than auth */
        "Authorization: Digest username=\"alice\", realm=\"gw.test\", nonce=\"n\", "
        "uri=\"" RURI "\", response=\"00000000000000000000000000000000\", qop=auth-int, "
        "nc=00000001, cnonce=\"c\"\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        decide(invite(1, bad[i]), &cred, SRC, NOW);
        assert_int_equal(d.verdict, TL_SIP_INAUTH_MALFORMED);
        assert_int_equal(d.scode, 400);
        assert_string_equal(d.reason, "malformed");
        assert_string_equal(d.hdrs, "Warning: 399 gw.test \"malformed credentials\"\r\n");
    }
}

/* The digest uri names the Request-URI's resource, or — behind a proxy that rewrote the
 * Request-URI after the carrier's UA answered for the proxy's address — the same number
 * at another host, or another user at one of our names. Anything else is its own 403. */
static void test_digest_uri_behind_proxy(void **state)
{
    (void)state;
    static const char *const ours[] = {"gw.test", "192.0.2.10", NULL};
    struct tl_sip_inauth_cred c = cred;
    c.hosts = ours;
    char a[1024];
    static const char *const pass[] = {
        "sip:+4930123456@edge.carrier.example", /* the number at the carrier's edge */
        "sip:+4930123456@edge.carrier.example;user=phone",
        "sip:trunk@192.0.2.10:5061;transport=tls", /* our address, another user */
        "sips:gw.test",                            /* our name */
    };
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        decide(invite(0, NULL), &c, SRC, NOW);
        authorization_for(a, sizeof a, 0, pass[i], "alice", "s3cret", 1);
        decide(invite(1, a), &c, SRC, NOW);
        if (d.verdict != TL_SIP_INAUTH_PASS)
            fail_msg("digest uri %s: verdict %d (%s)", pass[i], d.verdict, d.reason);
    }
    static const char *const refused[] = {
        "sip:+4930999999@edge.carrier.example", /* another number elsewhere */
        "sip:trunk@gw.tesx",                    /* not our name */
        "tel:+4930123456",                      /* not a SIP URI */
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        decide(invite(0, NULL), &c, SRC, NOW);
        authorization_for(a, sizeof a, 0, refused[i], "alice", "s3cret", 1);
        decide(invite(1, a), &c, SRC, NOW);
        assert_int_equal(d.verdict, TL_SIP_INAUTH_FORBIDDEN);
        assert_int_equal(d.scode, 403);
        assert_string_equal(d.reason, "digest_uri_mismatch");
        assert_non_null(strstr(d.hdrs, "digest uri names neither this gateway nor the called"));
    }
    /* without our names, only the number rule applies */
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization_for(a, sizeof a, 0, "sips:gw.test", "alice", "s3cret", 1);
    decide(invite(1, a), &cred, SRC, NOW);
    assert_string_equal(d.reason, "digest_uri_mismatch");
    /* the answer is checked over the uri as sent: right uri rule, wrong hash → mismatch */
    decide(invite(0, NULL), &c, SRC, NOW);
    authorization_for(a, sizeof a, 0, "sip:+4930123456@edge.carrier.example", "alice", "wrong", 1);
    decide(invite(1, a), &c, SRC, NOW);
    assert_string_equal(d.reason, "credentials_mismatch");
}

static void test_other_realms_and_schemes(void **state)
{
    (void)state;
    /* only another realm's (a proxy's) or another scheme's credentials: challenge */
    decide(invite(1,
                  "Authorization: Digest username=\"x\", realm=\"proxy.example\", "
                  "nonce=\"n\", uri=\"" RURI "\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
                  "Authorization: Basic YWxpY2U6czNjcmV0\r\n"),
           &cred, SRC, NOW);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_CHALLENGE);
    assert_string_equal(d.reason, "no_credentials");
    /* ours after someone else's, and after an unreadable one: ours counts */
    char a[1024], two[2048];
    decide(invite(0, NULL), &cred, SRC, NOW);
    authorization(a, sizeof a, 0, "alice", "s3cret", 1);
    snprintf(two, sizeof two,
             "Authorization: Digest realm=\"proxy.example\", username=\"x\"\r\n"
             "Authorization: Digest realm=\"a\", realm=\"b\"\r\n%s",
             a);
    decide(invite(1, two), &cred, SRC, NOW);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_PASS);
}

static void test_logged_user_sanitised(void **state)
{
    (void)state;
    decide(invite(1, "Authorization: Digest username=\"a b\\\"c=d\\\\e\", realm=\"gw.test\"\r\n"),
           &cred, SRC, NOW);
    assert_int_equal(d.verdict, TL_SIP_INAUTH_MALFORMED);
    assert_string_equal(d.user, "a?b?c?d?e");
    char line[512], name[301];
    memset(name, 'u', 300);
    name[300] = '\0';
    snprintf(line, sizeof line, "Authorization: Digest username=\"%s\", realm=\"gw.test\"\r\n",
             name);
    decide(invite(1, line), &cred, SRC, NOW);
    assert_int_equal(strlen(d.user), TL_SIP_INAUTH_USER_LOG);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const struct tl_sip_msg *m = invite(0, NULL);
    struct tl_sip_inauth_cred c = cred;
    c.realm = "gw\r\ntest";
    assert_int_equal(tl_sip_inauth_decide(&srv, m, &c, SRC, NOW, &d), EINVAL);
    c = cred;
    c.host = "two words";
    assert_int_equal(tl_sip_inauth_decide(&srv, m, &c, SRC, NOW, &d), EINVAL);
    assert_int_equal(tl_sip_inauth_decide(&srv, m, &cred, NULL, NOW, &d), EINVAL);
    assert_int_equal(tl_sip_inauth_decide(NULL, m, &cred, SRC, NOW, &d), EINVAL);
}

static void test_algs_parse(void **state)
{
    (void)state;
    enum tl_sip_digest_alg a[3];
    assert_int_equal(tl_sip_inauth_algs(a, "SHA-256,MD5"), 0);
    assert_true(a[0] == TL_SIP_DIGEST_ALG_SHA256 && a[1] == TL_SIP_DIGEST_ALG_MD5 && !a[2]);
    assert_int_equal(tl_sip_inauth_algs(a, " md5 "), 0);
    assert_true(a[0] == TL_SIP_DIGEST_ALG_MD5 && !a[1]);
    static const char *const bad[] = {
        "", ",", "MD5,", ",MD5", "MD5,MD5", "SHA-1", "MD5-sess", "MD5,SHA-256,MD5", "MD5,,SHA-256"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tl_sip_inauth_algs(a, bad[i]), EINVAL);
    assert_int_equal(tl_sip_inauth_algs(a, NULL), EINVAL);
}

static void test_new_userpass(void **state)
{
    (void)state;
    struct tl_sip_inauth *ia = NULL;
    assert_int_equal(tl_sip_inauth_new(&ia, "gw.test", "trunk1:pa:ss", "SHA-256,MD5", 5, NULL), 0);
    assert_string_equal(ia->cred.username, "trunk1");
    assert_string_equal(ia->cred.password, "pa:ss"); /* the first ':' splits */
    assert_string_equal(ia->cred.realm, "gw.test");
    assert_int_equal(ia->srv.nonce_ttl_s, 5);
    assert_true(ia->cred.algs[0] == TL_SIP_DIGEST_ALG_SHA256);
    /* it works end to end */
    assert_int_equal(tl_sip_inauth_decide(&ia->srv, invite(0, NULL), &ia->cred, SRC, NOW, &d), 0);
    assert_int_equal(d.scode, 401);
    tl_sip_inauth_free(ia);
    static const char *const bad[] = {"nocolon", ":pw", "user:", "us\ter:pw", "user:p\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tl_sip_inauth_new(&ia, "gw.test", bad[i], "MD5", 5, NULL), EINVAL);
    assert_int_equal(tl_sip_inauth_new(&ia, "gw.test", "u:p", "MD5", 0, NULL), EINVAL);
    assert_int_equal(tl_sip_inauth_new(&ia, "", "u:p", "MD5", 5, NULL), EINVAL);
    assert_int_equal(tl_sip_inauth_new(&ia, "gw.test", "u:p", "SHA-512-256", 5, NULL), EINVAL);
    tl_sip_inauth_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_challenge_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pass_both_algorithms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_password_or_user_403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_403_nc_increase_passes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_at_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_after_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonce_from_elsewhere_rechallenged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_400, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_uri_behind_proxy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_realms_and_schemes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logged_user_sanitised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test(test_algs_parse),
        cmocka_unit_test(test_new_userpass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
