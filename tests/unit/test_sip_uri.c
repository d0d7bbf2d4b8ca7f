/* SIP/SIPS/tel URIs: decoding, unescaping once, and comparison per RFC 3261 §19.1.4. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "sip/sip.h"

static void assert_pl(const struct tl_pl *pl, const char *s)
{
    if (!tl_pl_eq_str(pl, s))
        fail_msg("got \"%.*s\", want \"%s\"", (int)pl->l, pl->p ? pl->p : "", s);
}

static int dec(struct tl_sip_uri *u, const char *s)
{
    struct tl_pl pl = tl_pl_str(s);
    return tl_sip_uri_decode(u, &pl);
}

static void test_decode(void **state)
{
    struct tl_sip_uri u;
    struct tl_pl v;

    assert_int_equal(
        dec(&u, "sip:alice:secret@atlanta.com:5061;transport=tcp;lr?subject=hi&priority=urgent"),
        0);
    assert_int_equal(u.scheme, TL_SIP_SCHEME_SIP);
    assert_pl(&u.user, "alice");
    assert_true(u.has_password);
    assert_pl(&u.password, "secret");
    assert_pl(&u.host, "atlanta.com");
    assert_int_equal(u.hostt, TL_SIP_HOST_NAME);
    assert_true(u.has_port);
    assert_int_equal(u.port, 5061);
    assert_pl(&u.params, ";transport=tcp;lr");
    assert_pl(&u.headers, "subject=hi&priority=urgent");
    assert_int_equal(tl_sip_uri_param_get(&u, "TRANSPORT", &v), 0);
    assert_pl(&v, "tcp");
    assert_int_equal(tl_sip_uri_param_get(&u, "lr", &v), 0);
    assert_int_equal(v.l, 0);
    assert_int_equal(tl_sip_uri_param_get(&u, "maddr", &v), ENOENT);
    assert_int_equal(tl_sip_uri_header_get(&u, "Priority", &v), 0);
    assert_pl(&v, "urgent");

    assert_int_equal(dec(&u, "sips:bob@[2001:db8::1]:5061"), 0);
    assert_int_equal(u.scheme, TL_SIP_SCHEME_SIPS);
    assert_pl(&u.host, "[2001:db8::1]");
    assert_int_equal(u.hostt, TL_SIP_HOST_IPV6);
    assert_int_equal(u.port, 5061);

    assert_int_equal(dec(&u, "sip:[::ffff:192.0.2.1];transport=udp"), 0);
    assert_int_equal(u.hostt, TL_SIP_HOST_IPV6);
    assert_int_equal(u.user.l, 0);

    assert_int_equal(dec(&u, "sip:192.0.2.1"), 0);
    assert_int_equal(u.hostt, TL_SIP_HOST_IPV4);
    assert_false(u.has_port);

    assert_int_equal(dec(&u, "SIP:Alice@Example.COM."), 0); /* scheme case-insensitive */
    assert_int_equal(u.scheme, TL_SIP_SCHEME_SIP);

    assert_int_equal(dec(&u, "sip:h:0"), 0);
    assert_true(u.has_port);
    assert_int_equal(u.port, 0);
    assert_int_equal(dec(&u, "sip:h:65535"), 0);
    assert_int_equal(u.port, 65535);

    assert_int_equal(dec(&u, "tel:+1-201-555-0123;phone-context=example.com"), 0);
    assert_int_equal(u.scheme, TL_SIP_SCHEME_TEL);
    assert_pl(&u.user, "+1-201-555-0123");
    assert_int_equal(tl_sip_uri_param_get(&u, "phone-context", &v), 0);
    assert_pl(&v, "example.com");

    assert_int_equal(dec(&u, "http://www.example.com/a?b=c"), 0);
    assert_int_equal(u.scheme, TL_SIP_SCHEME_OTHER);
    assert_pl(&u.scheme_pl, "http");
    assert_pl(&u.opaque, "//www.example.com/a?b=c");

    /* user part with ';' '?' '/' (RFC 4475 §3.1.1.9), escaped '@' */
    assert_int_equal(dec(&u, "sip:user;par=u%40example.net@example.com"), 0);
    assert_pl(&u.user, "user;par=u%40example.net");
    assert_pl(&u.host, "example.com");

    /* escaped parameter names */
    assert_int_equal(dec(&u, "sip:h;%6C%72;n%61me=v%61lue"), 0);
    assert_int_equal(tl_sip_uri_param_get(&u, "lr", NULL), 0);
    assert_int_equal(tl_sip_uri_param_get(&u, "name", &v), 0);
    assert_pl(&v, "v%61lue");
}

static void test_decode_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "sip:",
        "sip:@host",
        "sip:user@",
        "sip:[::1",
        "sip:[zz::1]",
        "sip:[]",
        "sip:host:99999",
        "sip:host:65536",
        "sip:host:",
        "sip:host:123456",
        "sip:a b@host",
        "sip:%4@host",
        "sip:%ZZ@host",
        "<sip:a@b>",
        " sip:a@b",
        "sip:a@b ",
        "sip:host;;lr",
        "sip:host;=x",
        "sip:host;a=",
        "sip:host?",
        "sip:host?x",
        "sip:host?x=1&",
        "sip:1.2.3.999",
        "sip:1.2.3",
        "sip:1.2.3.4.5",
        "sip:-host.com",
        "sip:host-.com",
        "sip:host..com",
        "sip:a@b@c",
        "sip:example.123",
        "tel:",
        "tel:+1;",
        "tel:+1?x=y",
        "1sip:x",
        ":x",
        "nobody",
        "foo:",
        "foo:a b",
    };
    struct tl_sip_uri u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (dec(&u, bad[i]) != EBADMSG)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    /* length-counted: a NUL inside the slice is an octet like any other */
    struct tl_pl nul = {"sip:a\0b@host", 12};
    assert_int_equal(tl_sip_uri_decode(&u, &nul), EBADMSG);
    struct tl_pl v6nul = {"sip:[::1\0]", 10};
    assert_int_equal(tl_sip_uri_decode(&u, &v6nul), EBADMSG);

    /* too many parameters is refused, not silently truncated */
    char many[512] = "sip:h";
    for (int i = 0; i < TL_SIP_PARAM_MAX + 1; i++)
        strcat(many, ";p");
    assert_int_equal(dec(&u, many), EBADMSG);
}

static void test_unescape(void **state)
{
    char buf[16];
    size_t n;
    struct tl_pl s;

    s = TL_PL("%2541"); /* once: "%41", never "A" (RFC 4475 §3.1.1.3) */
    assert_int_equal(tl_sip_uri_unescape(buf, sizeof(buf), &n, &s), 0);
    assert_string_equal(buf, "%41");
    assert_int_equal(n, 3);

    s = TL_PL("null-%00-null"); /* RFC 4475 §3.1.1.4: no truncation at the NUL */
    assert_int_equal(tl_sip_uri_unescape(buf, sizeof(buf), &n, &s), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(buf, "null-\0-null", 12);

    s = TL_PL("abc");
    assert_int_equal(tl_sip_uri_unescape(buf, 3, &n, &s), ENOSPC);
    assert_int_equal(tl_sip_uri_unescape(buf, 4, &n, &s), 0);
    assert_string_equal(buf, "abc");

    s = TL_PL("%4");
    assert_int_equal(tl_sip_uri_unescape(buf, sizeof(buf), &n, &s), EBADMSG);
    s = TL_PL("%G1");
    assert_int_equal(tl_sip_uri_unescape(buf, sizeof(buf), &n, &s), EBADMSG);
    s = TL_PL("I%20have%20spaces");
    assert_int_equal(tl_sip_uri_unescape(buf, sizeof(buf), &n, &s), 0);
    assert_string_equal(buf, "I have spaces");
}

static bool cmp(const char *a, const char *b)
{
    struct tl_sip_uri ua, ub;
    if (dec(&ua, a) || dec(&ub, b))
        fail_msg("decode \"%s\" / \"%s\"", a, b);
    bool ab = tl_sip_uri_cmp(&ua, &ub), ba = tl_sip_uri_cmp(&ub, &ua);
    if (ab != ba)
        fail_msg("not symmetric: \"%s\" / \"%s\"", a, b);
    return ab;
}

static void test_cmp_rfc3261(void **state)
{
    /* §19.1.4, "The URIs within each of the following sets are equivalent" */
    static const char *const eq[][2] = {
        {"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"},
        {"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"},
        {"sip:carol@chicago.com", "sip:carol@chicago.com;security=on"},
        {"sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"},
        {"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
         "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"},
        {"sip:alice@atlanta.com?subject=project%20x&priority=urgent",
         "sip:alice@atlanta.com?priority=urgent&subject=project%20x"},
        /* ours: IPv6 references by value, lr ignored, escaped unreserved in the host part */
        {"sip:[2001:db8::1]", "sip:[2001:DB8:0:0::1]"},
        {"sip:a@h;lr", "sip:a@h"},
        {"sips:a@h:5061", "sips:a@h:5061"},
        {"sip:a@h;x=1;x=2", "sip:a@h;x=1;x=2"}, /* repeated names: the first one counts */
        {"sip:a@h;x=1;x=2", "sip:a@h;x=1"},
    };
    /* §19.1.4, "The URIs within each of the following sets are not equivalent" */
    static const char *const ne[][2] = {
        {"SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"},
        {"sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"},
        {"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"},
        {"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"},
        {"sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"},
        {"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"},
        /* not transitive: both equal sip:carol@chicago.com, not each other */
        {"sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"},
        /* ours */
        {"sip:alice@atlanta.com", "sips:alice@atlanta.com"},
        {"sip:a@h;user=phone", "sip:a@h"},
        {"sip:a@h;maddr=239.255.255.1", "sip:a@h"},
        {"sip:a@h;ttl=1", "sip:a@h"},
        {"sip:a@h;method=INVITE", "sip:a@h"},
        {"sip:a:pw@h", "sip:a@h"},
        {"sip:a:pw@h", "sip:a:PW@h"},
        {"sip:%3b@h", "sip:;@h"}, /* an escaped reserved octet is not the octet */
        {"sip:%00@h", "sip:%00%00@h"},
        {"sip:a@h?x=1", "sip:a@h?x=2"},
        {"sip:a@h?x=1&y=2", "sip:a@h?x=1"},
    };
    for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
        if (!cmp(eq[i][0], eq[i][1]))
            fail_msg("should match: \"%s\" / \"%s\"", eq[i][0], eq[i][1]);
    }
    for (size_t i = 0; i < sizeof(ne) / sizeof(ne[0]); i++) {
        if (cmp(ne[i][0], ne[i][1]))
            fail_msg("should differ: \"%s\" / \"%s\"", ne[i][0], ne[i][1]);
    }
}

static void test_cmp_tel_other(void **state)
{
    assert_true(cmp("tel:+1-201-555-0123", "tel:+1.201.555.0123"));
    assert_true(cmp("tel:+1(201)5550123", "tel:+12015550123"));
    assert_false(cmp("tel:+12015550123", "tel:+12015550124"));
    assert_true(cmp("tel:7042;phone-context=example.com", "tel:7042;Phone-Context=EXAMPLE.com"));
    assert_false(cmp("tel:7042;phone-context=example.com", "tel:7042"));
    assert_false(cmp("tel:+12015550123", "sip:+12015550123@h"));
    assert_true(cmp("HTTP://x", "http://x"));
    assert_false(cmp("http://x", "http://X"));
}

/* Every prefix of a long URI decodes or fails cleanly (ASan/UBSan watch the bounds). */
static void test_prefixes(void **state)
{
    static const char *const uris[] = {
        "sips:alice:pw@[2001:db8::1]:5061;transport=tls;maddr=192.0.2.1?subject=a%20b&x=y",
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too."
        "(doesn't-it)@example.com",
        "tel:+1-201-555-0123;ext=1234;phone-context=+1",
    };
    struct tl_sip_uri u;
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        size_t n = strlen(uris[i]);
        assert_int_equal(dec(&u, uris[i]), 0);
        for (size_t l = 0; l < n; l++) {
            struct tl_pl pl = {uris[i], l};
            int err = tl_sip_uri_decode(&u, &pl);
            assert_true(err == 0 || err == EBADMSG);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),        cmocka_unit_test(test_decode_bad),
        cmocka_unit_test(test_unescape),      cmocka_unit_test(test_cmp_rfc3261),
        cmocka_unit_test(test_cmp_tel_other), cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
