/* sip/edge.c: X-Trunkline-Source, the carrier's source as the SIP edge passes it on. The
 * node keys allowed_addresses, transport rules, rate limits and bans on it, so every
 * value outside the narrow grammar must be refused, not read leniently; and
 * net/guard.c's tl_net_guard_contains, which decides whose header is believed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "net/guard.h"
#include "sip/sip.h"

static int parse(const char *v, enum tl_sip_transport *tp, struct sockaddr_storage *sa)
{
    return tl_sip_edge_source_parse(v, strlen(v), tp, sa);
}

static void good(const char *v, enum tl_sip_transport want_tp, const char *want_ip,
                 uint16_t want_port)
{
    enum tl_sip_transport tp = TL_SIP_TP_OTHER;
    struct sockaddr_storage sa;
    int r = parse(v, &tp, &sa);
    if (r)
        fail_msg("\"%s\" refused (%d)", v, r);
    assert_int_equal(tp, want_tp);
    char ip[INET6_ADDRSTRLEN];
    uint16_t port;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
    } else {
        assert_int_equal(sa.ss_family, AF_INET6);
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
    }
    assert_string_equal(ip, want_ip);
    assert_int_equal(port, want_port);
}

static void bad(const char *v, int want)
{
    enum tl_sip_transport tp = TL_SIP_TP_OTHER;
    struct sockaddr_storage sa;
    int r = parse(v, &tp, &sa);
    if (r != want)
        fail_msg("\"%s\": %d, expected %d", v, r, want);
    assert_int_equal(tp, TL_SIP_TP_OTHER); /* nothing written on a refusal */
}

static void test_accepted(void **state)
{
    (void)state;
    good("tls 198.51.100.7:5061", TL_SIP_TP_TLS, "198.51.100.7", 5061);
    good("tcp 127.0.0.3:40001", TL_SIP_TP_TCP, "127.0.0.3", 40001);
    good("udp 0.0.0.0:1", TL_SIP_TP_UDP, "0.0.0.0", 1);
    good("tls [2001:db8::7]:65535", TL_SIP_TP_TLS, "2001:db8::7", 65535);
    good("tcp [::ffff:192.0.2.1]:5060", TL_SIP_TP_TCP, "::ffff:192.0.2.1", 5060);
    /* the longest value there is fits the cap */
    const char *longest = "tls [ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535";
    assert_true(strlen(longest) <= TL_SIP_EDGE_SOURCE_MAX);
    good(longest, TL_SIP_TP_TLS, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const v[] = {
        "",
        "tls",
        "tls ",
        "TLS 198.51.100.7:5061",                    /* $proto is lowercase; no case games */
        "ws 198.51.100.7:80",                       /* not a carrier transport */
        "sctp 198.51.100.7:5060",                   /* ditto */
        "tls  198.51.100.7:5061",                   /* two spaces */
        "tls\t198.51.100.7:5061",                   /* tab */
        " tls 198.51.100.7:5061",                   /* leading space */
        "tls 198.51.100.7:5061 ",                   /* trailing space */
        "tls 198.51.100.7",                         /* no port */
        "tls 198.51.100.7:",                        /* empty port */
        "tls 198.51.100.7:0",                       /* port 0 */
        "tls 198.51.100.7:05061",                   /* leading zero */
        "tls 198.51.100.7:65536",                   /* too large */
        "tls 198.51.100.7:99999",                   /* too large */
        "tls 198.51.100.7:123456",                  /* too many digits */
        "tls 198.51.100.7:+5061",                   /* sign */
        "tls 198.51.100.7:50x1",                    /* junk in the port */
        "tls 198.51.100.7:5061;x=1",                /* parameters */
        "tls 198.51.100.7:5061,tls 192.0.2.1:5061", /* a list */
        "tls carrier.example:5061",                 /* a name */
        "tls 198.51.100:5061",                      /* three parts */
        "tls 0x7f.0.0.1:5061",                      /* inet_aton's hex */
        "tls 0177.0.0.1:5061",                      /* inet_aton's octal */
        "tls 198.51.100.256:5061",                  /* octet range */
        "tls 2001:db8::7:5061",                     /* IPv6 without brackets */
        "tls [2001:db8::7]",                        /* no port */
        "tls [2001:db8::7:5061",                    /* unclosed */
        "tls []:5061",                              /* empty */
        "tls [fe80::1%eth0]:5061",                  /* zone */
        "tls [198.51.100.7]:5061",                  /* IPv4 in brackets */
        "tls [2001:db8::7]x:5061",                  /* junk after ] */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        bad(v[i], EBADMSG);
    /* the length cap comes first, before any scan */
    char big[TL_SIP_EDGE_SOURCE_MAX + 2];
    memset(big, '1', sizeof big - 1);
    memcpy(big, "tls ", 4);
    big[sizeof big - 1] = '\0';
    bad(big, E2BIG);
    /* a NUL inside the value is just a bad octet */
    enum tl_sip_transport tp = TL_SIP_TP_OTHER;
    struct sockaddr_storage sa;
    assert_int_equal(tl_sip_edge_source_parse("tls 1.2.3.4\0:5061", 17, &tp, &sa), EBADMSG);
    assert_int_equal(tl_sip_edge_source_parse("tcp 1.2.3.4:5\0", 14, &tp, &sa), EBADMSG);
    assert_int_equal(tl_sip_edge_source_parse(NULL, 0, &tp, &sa), EINVAL);
}

static void sa4(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s = (struct sockaddr_in *)ss;
    s->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
}

static void sa6(struct sockaddr_storage *ss, const char *ip)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
}

static void test_edge_list(void **state)
{
    (void)state;
    struct tl_net_guard g;
    struct tl_err err = {0};
    struct sockaddr_storage ss;
    assert_int_equal(tl_net_guard_parse(&g, "", "sip_edge_addresses", &err), 0);
    sa4(&ss, "127.0.0.2");
    assert_false(tl_net_guard_contains(&g, (struct sockaddr *)&ss)); /* empty: no edge */
    assert_false(tl_net_guard_contains(NULL, (struct sockaddr *)&ss));
    assert_int_equal(tl_net_guard_parse(&g, "127.0.0.2, 10.1.0.0/16, 2001:db8:e::/48",
                                        "sip_edge_addresses", &err),
                     0);
    assert_true(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa4(&ss, "127.0.0.3");
    assert_false(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa4(&ss, "10.1.255.9");
    assert_true(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa4(&ss, "10.2.0.1");
    assert_false(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    /* a public address is not in the list: no "allowed unless private" rule here */
    sa4(&ss, "198.51.100.7");
    assert_false(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa6(&ss, "::ffff:127.0.0.2"); /* dual-stack socket */
    assert_true(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa6(&ss, "2001:db8:e:1::5");
    assert_true(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    sa6(&ss, "2001:db8:f::5");
    assert_false(tl_net_guard_contains(&g, (struct sockaddr *)&ss));
    /* a bad item names the setting */
    assert_int_equal(tl_net_guard_parse(&g, "127.0.0.2,edge.example", "sip_edge_addresses", &err),
                     EINVAL);
    assert_non_null(strstr(err.message, "sip_edge_addresses"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_edge_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
