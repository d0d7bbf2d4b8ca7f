/* net/guard.c: every refused class names its kind, public addresses pass, IPv4-mapped and
 * -compatible IPv6 are judged by their IPv4 part, the operator's allow-list makes
 * exceptions (IPv4 ones cover the mapped form), and list errors name the bad item. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "net/guard.h"

static void refused(const struct tl_net_guard *g, const char *ip, const char *kind)
{
    const char *why = NULL;
    if (tl_net_guard_ok_str(g, ip, &why))
        fail_msg("%s was allowed, expected \"%s\"", ip, kind);
    assert_non_null(why);
    if (strcmp(why, kind))
        fail_msg("%s: \"%s\", expected \"%s\"", ip, why, kind);
}

static void allowed(const struct tl_net_guard *g, const char *ip)
{
    const char *why = "unset";
    if (!tl_net_guard_ok_str(g, ip, &why))
        fail_msg("%s was refused: %s", ip, why);
    assert_null(why);
}

static void test_v4_classes(void **state)
{
    (void)state;
    struct tl_net_guard g = {0};
    refused(&g, "169.254.169.254", "the cloud metadata address");
    refused(&g, "169.254.1.1", "a link-local address");
    refused(&g, "127.0.0.1", "a loopback address");
    refused(&g, "127.255.0.9", "a loopback address");
    refused(&g, "0.0.0.0", "an unspecified address");
    refused(&g, "0.1.2.3", "an unspecified address");
    refused(&g, "10.0.0.5", "a private address");
    refused(&g, "172.16.0.1", "a private address");
    refused(&g, "172.31.255.255", "a private address");
    refused(&g, "192.168.1.1", "a private address");
    refused(&g, "100.64.0.1", "a carrier-grade NAT address");
    refused(&g, "100.127.255.254", "a carrier-grade NAT address");
    refused(&g, "192.0.0.8", "an IETF protocol assignment address");
    refused(&g, "192.0.2.7", "a documentation address");
    refused(&g, "198.51.100.1", "a documentation address");
    refused(&g, "203.0.113.9", "a documentation address");
    refused(&g, "192.88.99.1", "a 6to4 relay address");
    refused(&g, "198.18.0.1", "a benchmarking address");
    refused(&g, "198.19.255.255", "a benchmarking address");
    refused(&g, "224.0.0.1", "a multicast address");
    refused(&g, "239.255.255.250", "a multicast address");
    refused(&g, "240.0.0.1", "a reserved address");
    refused(&g, "255.255.255.255", "the broadcast address");
    /* the edges of the private ranges are public */
    allowed(&g, "172.15.255.255");
    allowed(&g, "172.32.0.0");
    allowed(&g, "100.63.255.255");
    allowed(&g, "100.128.0.0");
    allowed(&g, "198.20.0.0");
    allowed(&g, "1.1.1.1");
    allowed(&g, "8.8.8.8");
    allowed(&g, "93.184.216.34");
    allowed(&g, "223.255.255.255");
}

static void test_v6_classes(void **state)
{
    (void)state;
    struct tl_net_guard g = {0};
    refused(&g, "fd00:ec2::254", "the cloud metadata address");
    refused(&g, "fd00:ec2::253", "a unique-local address");
    refused(&g, "::", "an unspecified address");
    refused(&g, "::1", "a loopback address");
    refused(&g, "fe80::1", "a link-local address");
    refused(&g, "febf::1", "a link-local address");
    refused(&g, "fec0::1", "a site-local address");
    refused(&g, "fc00::1", "a unique-local address");
    refused(&g, "fdff:ffff::1", "a unique-local address");
    refused(&g, "ff02::1", "a multicast address");
    refused(&g, "2001:db8::1", "a documentation address");
    refused(&g, "3fff::1", "a documentation address");
    refused(&g, "64:ff9b::8.8.8.8", "a NAT64 address");
    refused(&g, "64:ff9b:1::1", "a NAT64 address");
    refused(&g, "2002:c000:0201::1", "a 6to4 address");
    refused(&g, "2001:0:4136:e378::1", "a Teredo address");
    refused(&g, "2001:2::1", "a benchmarking address");
    refused(&g, "100::1", "a reserved address");           /* discard-only, RFC 6666 */
    refused(&g, "4000::1", "a reserved address");          /* unassigned */
    refused(&g, "::ffff:0:1.2.3.4", "a reserved address"); /* SIIT translated */
    allowed(&g, "2001:4860:4860::8888");
    allowed(&g, "2606:4700:4700::1111");
    allowed(&g, "2a00:1450:4001::1");
}

static void test_mapped_and_compatible(void **state)
{
    (void)state;
    struct tl_net_guard g = {0};
    refused(&g, "::ffff:127.0.0.1", "a loopback address");
    refused(&g, "::ffff:169.254.169.254", "the cloud metadata address");
    refused(&g, "::ffff:10.1.2.3", "a private address");
    refused(&g, "::ffff:0.0.0.0", "an unspecified address");
    refused(&g, "::127.0.0.1", "a loopback address");
    refused(&g, "::192.168.0.1", "a private address");
    allowed(&g, "::ffff:8.8.8.8");
    allowed(&g, "::8.8.8.8");
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct tl_net_guard g = {0};
    struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(443)};
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
    const char *why = NULL;
    inet_pton(AF_INET, "169.254.169.254", &s4.sin_addr);
    assert_false(tl_net_guard_ok(&g, (struct sockaddr *)&s4, &why));
    assert_string_equal(why, "the cloud metadata address");
    inet_pton(AF_INET, "9.9.9.9", &s4.sin_addr);
    assert_true(tl_net_guard_ok(&g, (struct sockaddr *)&s4, &why));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6.sin6_addr);
    assert_false(tl_net_guard_ok(&g, (struct sockaddr *)&s6, &why));
    assert_string_equal(why, "a loopback address");
    /* no allow-list at all, and why may be NULL */
    assert_false(tl_net_guard_ok(NULL, (struct sockaddr *)&s6, NULL));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(tl_net_guard_ok(&g, &un, &why));
    assert_string_equal(why, "not an IP address");
    assert_false(tl_net_guard_ok_str(&g, "bot.example.com", &why));
    assert_string_equal(why, "not an IP address");
    assert_false(tl_net_guard_ok_str(&g, "[::1]", &why));
    assert_false(tl_net_guard_ok_str(&g, NULL, NULL));
}

static void test_allow_list(void **state)
{
    (void)state;
    struct tl_net_guard g;
    struct tl_err err = {0};
    assert_int_equal(tl_net_guard_parse(&g,
                                        " 127.0.0.1/32 , 10.20.0.0/16,fd12:3456::/32 ,"
                                        "169.254.169.254, ::1",
                                        "agent_allow_networks", &err),
                     0);
    assert_int_equal(g.n, 5);
    allowed(&g, "127.0.0.1");
    allowed(&g, "::ffff:127.0.0.1"); /* the IPv4 entry covers the mapped form */
    refused(&g, "127.0.0.2", "a loopback address");
    allowed(&g, "10.20.255.1");
    refused(&g, "10.21.0.1", "a private address");
    allowed(&g, "fd12:3456:1::9");
    refused(&g, "fd12:3457::9", "a unique-local address");
    allowed(&g, "169.254.169.254");
    allowed(&g, "::1");
    refused(&g, "fe80::1", "a link-local address");
    /* a whole family */
    assert_int_equal(tl_net_guard_parse(&g, "0.0.0.0/0", "x", &err), 0);
    allowed(&g, "192.168.0.1");
    refused(&g, "fc00::1", "a unique-local address");
    /* empty lists */
    assert_int_equal(tl_net_guard_parse(&g, "", "x", &err), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(tl_net_guard_parse(&g, "   ", "x", &err), 0);
    assert_int_equal(g.n, 0);
    assert_int_equal(tl_net_guard_parse(&g, NULL, "x", &err), 0);
    assert_int_equal(g.n, 0);
}

static void parse_error(const char *list, const char *needle)
{
    struct tl_net_guard g;
    struct tl_err err = {0};
    assert_int_equal(tl_net_guard_parse(&g, list, "agent_allow_networks", &err), EINVAL);
    assert_int_equal(g.n, 0);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.code, "invalid_field");
    assert_string_equal(err.field, "agent_allow_networks");
    if (!strstr(err.message, needle))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"", list, err.message, needle);
}

static void test_parse_errors(void **state)
{
    (void)state;
    parse_error("10.0.0.0/8, bogus", "\"bogus\" is not an address");
    parse_error("10.0.0.0/33", "\"10.0.0.0/33\" has a prefix length out of range");
    parse_error("fd00::/129", "\"fd00::/129\" has a prefix length");
    parse_error("10.0.0.1/8", "\"10.0.0.1/8\" has bits set after its prefix");
    parse_error("10.0.0.0/", "\"10.0.0.0/\" is not");
    parse_error("10.0.0.0/-1", "\"10.0.0.0/-1\" is not");
    parse_error("10.0.0.0/8x", "\"10.0.0.0/8x\" is not");
    parse_error("/8", "\"/8\" is not");
    parse_error("10.0.0.0/8,,127.0.0.1", "empty item");
    parse_error("10.0.0.0/8,", "empty item");
    parse_error("1.2.3", "\"1.2.3\" is not");
    parse_error("[::1]", "\"[::1]\" is not");
    parse_error("fe80::1%eth0", "\"fe80::1%eth0\" is not");
    char big[64 * 20 + 40] = "";
    for (int i = 0; i <= TL_NET_GUARD_NETS_MAX; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big), "%s10.0.%d.0/24", i ? "," : "", i);
    parse_error(big, "more than 64 networks");
    char lng[200];
    memset(lng, '1', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    parse_error(lng, "is too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v4_classes),
        cmocka_unit_test(test_v6_classes),
        cmocka_unit_test(test_mapped_and_compatible),
        cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
