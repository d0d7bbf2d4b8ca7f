/* src/call pieces that run without a loop: the G.711 tables (the agent interface is μ-law;
 * A-law legs are converted both ways) and the per-source INVITE token bucket. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "call/call.h"
#include "call/call_int.h"
#include "call/trusted.h"
#include "media/g711.h"

static void test_g711_known_values(void **st)
{
    (void)st;
    /* ITU-T G.711: 0xFF μ-law and 0xD5 A-law are the zero codes (silence) */
    assert_int_equal(tl_g711_ulaw_decode(0xFF), 0);
    assert_int_equal(tl_g711_ulaw_encode(0), 0xFF);
    assert_int_equal(tl_g711_alaw_encode(0), 0xD5);
    assert_int_equal(tl_g711_ulaw_decode(0x00), -32124);
    assert_int_equal(tl_g711_ulaw_decode(0x80), 32124);
    assert_int_equal(tl_g711_alaw_decode(0xAA), 32256);
    assert_int_equal(tl_g711_alaw_decode(0x2A), -32256);
}

static void test_g711_round_trips(void **st)
{
    (void)st;
    for (int i = 0; i < 256; i++) {
        /* encode(decode(x)) is the identity for every code of each law */
        assert_int_equal(tl_g711_ulaw_encode(tl_g711_ulaw_decode((uint8_t)i)),
                         i == 0x7F ? 0xFF : i);
        assert_int_equal(tl_g711_alaw_encode(tl_g711_alaw_decode((uint8_t)i)), i);
    }
    /* A → μ → A: the value may move by one quantisation step at most, never the sign */
    uint8_t a[256], u[256], back[256];
    for (int i = 0; i < 256; i++)
        a[i] = (uint8_t)i;
    tl_g711_alaw_to_ulaw(u, a, 256);
    tl_g711_ulaw_to_alaw(back, u, 256);
    for (int i = 0; i < 256; i++) {
        int x = tl_g711_alaw_decode(a[i]), y = tl_g711_ulaw_decode(u[i]);
        int step = abs(x) / 16 + 16;
        assert_true(abs(x - y) <= step);
        assert_true((x >= 0) == (tl_g711_alaw_decode(back[i]) >= 0) || x == 0 || abs(x) <= 8);
    }
}

/* IPv6 media (issue 8 §4): which family, and where our address comes from */
static void test_media_family(void **st)
{
    (void)st;
    /* an offer's c= decides, whatever the signalling came over */
    assert_int_equal(tl_call_media_af(AF_INET6, AF_INET), AF_INET6);
    assert_int_equal(tl_call_media_af(AF_INET, AF_INET6), AF_INET);
    /* our own offer (late offer): IPv4 unless the INVITE came over IPv6 */
    assert_int_equal(tl_call_media_af(0, AF_INET), AF_INET);
    assert_int_equal(tl_call_media_af(0, AF_INET6), AF_INET6);
    assert_int_equal(tl_call_media_af(0, 0), AF_INET);

    /* public_ip serves its own family only */
    assert_int_equal(tl_call_maddr_source(AF_INET, AF_INET, AF_INET, false),
                     TL_CALL_MADDR_PUBLIC_IP);
    assert_int_equal(tl_call_maddr_source(AF_INET6, AF_INET, AF_INET6, false),
                     TL_CALL_MADDR_SIP_LOCAL);
    assert_int_equal(tl_call_maddr_source(AF_INET6, AF_INET, AF_INET, false), TL_CALL_MADDR_ROUTE);
    /* the SIP connection's local address when it is of the family */
    assert_int_equal(tl_call_maddr_source(AF_INET, 0, AF_INET, false), TL_CALL_MADDR_SIP_LOCAL);
    assert_int_equal(tl_call_maddr_source(AF_INET6, 0, AF_INET6, false), TL_CALL_MADDR_SIP_LOCAL);
    /* IPv6 media over IPv4 signalling (a dual-stack softphone's default), and the reverse:
     * the kernel's source address towards the offer's c= */
    assert_int_equal(tl_call_maddr_source(AF_INET6, 0, AF_INET, false), TL_CALL_MADDR_ROUTE);
    assert_int_equal(tl_call_maddr_source(AF_INET, 0, AF_INET6, false), TL_CALL_MADDR_ROUTE);
    /* a wildcard local address names nothing a carrier can reach */
    assert_int_equal(tl_call_maddr_source(AF_INET, 0, AF_INET, true), TL_CALL_MADDR_ROUTE);
}

/* SIP INFO DTMF bodies (RFC 6086 legacy usage) */
static int info(int type, const char *body, char *d, uint16_t *ms)
{
    return tl_call_info_dtmf(type, body, strlen(body), d, ms);
}

static void test_info_dtmf(void **st)
{
    (void)st;
    char d;
    uint16_t ms;
    /* content types: parameters and case do not matter, other types are not ours */
    assert_int_equal(tl_call_info_type("application/dtmf-relay", 22), TL_CALL_INFO_DTMF_RELAY);
    const char *ct = " Application/DTMF-Relay ; charset=utf-8";
    assert_int_equal(tl_call_info_type(ct, strlen(ct)), TL_CALL_INFO_DTMF_RELAY);
    assert_int_equal(tl_call_info_type("application/dtmf", 16), TL_CALL_INFO_DTMF);
    ct = "application/dtmf-relayx";
    assert_int_equal(tl_call_info_type(ct, strlen(ct)), 0);
    ct = "application/media_control+xml";
    assert_int_equal(tl_call_info_type(ct, strlen(ct)), 0);
    assert_int_equal(tl_call_info_type("", 0), 0);
    assert_int_equal(tl_call_info_type(NULL, 0), 0);

    /* dtmf-relay: Cisco's form, LF-only, blanks, key case, numeric events */
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=5\r\nDuration=160\r\n", &d, &ms), 0);
    assert_int_equal(d, '5');
    assert_int_equal(ms, 160);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "duration = 250\nsignal = #\n", &d, &ms), 0);
    assert_int_equal(d, '#');
    assert_int_equal(ms, 250);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=*", &d, &ms), 0);
    assert_int_equal(d, '*');
    assert_int_equal(ms, 0); /* absent */
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=10\r\n", &d, &ms), 0);
    assert_int_equal(d, '*');
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=11\r\n", &d, &ms), 0);
    assert_int_equal(d, '#');
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=d\r\n", &d, &ms), 0);
    assert_int_equal(d, 'D');
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=16\r\n", &d, &ms), 0);
    assert_int_equal(d, '!');
    /* the first Signal counts; a broken Duration does not lose the digit; capped */
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=1\nSignal=2\nDuration=x", &d, &ms), 0);
    assert_int_equal(d, '1');
    assert_int_equal(ms, 0);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=3\nDuration=99999999", &d, &ms), 0);
    assert_int_equal(ms, 65535);
    /* refused */
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Duration=160\r\n", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=\r\n", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=17\r\n", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=E\r\n", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "Signal=55\r\n", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF_RELAY, "", &d, &ms), EBADMSG);
    assert_int_equal(tl_call_info_dtmf(TL_CALL_INFO_DTMF_RELAY, "Signal=5\0", 9, &d, &ms), EBADMSG);
    assert_int_equal(info(0, "Signal=5", &d, &ms), EINVAL);

    /* application/dtmf: the digit alone */
    assert_int_equal(info(TL_CALL_INFO_DTMF, "7", &d, &ms), 0);
    assert_int_equal(d, '7');
    assert_int_equal(info(TL_CALL_INFO_DTMF, " a\r\n", &d, &ms), 0);
    assert_int_equal(d, 'A');
    assert_int_equal(info(TL_CALL_INFO_DTMF, "11", &d, &ms), 0);
    assert_int_equal(d, '#');
    assert_int_equal(info(TL_CALL_INFO_DTMF, "Signal=5", &d, &ms), EBADMSG);
    assert_int_equal(info(TL_CALL_INFO_DTMF, "\r\n", &d, &ms), EBADMSG);

    /* the cap comes before any reading: a long body is refused whatever it holds */
    char big[TL_CALL_INFO_BODY_MAX + 2];
    memset(big, ' ', sizeof big);
    memcpy(big, "Signal=5\n", 9);
    assert_int_equal(
        tl_call_info_dtmf(TL_CALL_INFO_DTMF_RELAY, big, TL_CALL_INFO_BODY_MAX, &d, &ms), 0);
    assert_int_equal(
        tl_call_info_dtmf(TL_CALL_INFO_DTMF_RELAY, big, TL_CALL_INFO_BODY_MAX + 1, &d, &ms), E2BIG);
}

static void test_rate_bucket(void **st)
{
    (void)st;
    struct tl_call_rate *r;
    assert_int_equal(tl_call_rate_new(&r, 2, 4, 0, 0), 0);
    uint8_t a[4] = {192, 0, 2, 1}, b[4] = {192, 0, 2, 2};
    for (int i = 0; i < 4; i++) /* the burst */
        assert_int_equal(tl_call_rate_take(r, a, 4, 1000), TL_CALL_RATE_OK);
    assert_int_equal(tl_call_rate_take(r, a, 4, 1000), TL_CALL_RATE_SOURCE);
    if (tl_call_rate_slot(r, a, 4) != tl_call_rate_slot(r, b, 4)) /* its own bucket */
        assert_int_equal(tl_call_rate_take(r, b, 4, 1000), TL_CALL_RATE_OK);
    assert_int_equal(tl_call_rate_take(r, a, 4, 1400), TL_CALL_RATE_SOURCE); /* 0.8 token */
    assert_int_equal(tl_call_rate_take(r, a, 4, 1500), TL_CALL_RATE_OK);     /* 1 after 500 ms */
    assert_int_equal(tl_call_rate_take(r, a, 4, 1500), TL_CALL_RATE_SOURCE);
    assert_int_equal(tl_call_rate_take(r, a, 4, 100000), TL_CALL_RATE_OK); /* capped refill */
    tl_call_rate_free(r);
}

/* issue 11 item 7: sources that share a slot share its bucket; a collision never resets a
 * source to a full one (the old table did: two colliding sources alternating had no limit) */
static void test_rate_collision_shares(void **st)
{
    (void)st;
    struct tl_call_rate *r;
    assert_int_equal(tl_call_rate_new(&r, 1, 2, 0, 0), 0);
    uint8_t a[4] = {198, 51, 100, 1}, b[4] = {203, 0, 113, 0};
    size_t sa = tl_call_rate_slot(r, a, 4);
    for (unsigned i = 0; i < 1u << 20 && tl_call_rate_slot(r, b, 4) != sa; i++) {
        b[2] = (uint8_t)(i >> 8); /* search 203.0.x.y for a source in a's slot */
        b[3] = (uint8_t)i;
        b[1] = (uint8_t)(i >> 16);
    }
    assert_int_equal(tl_call_rate_slot(r, b, 4), sa);
    assert_memory_not_equal(a, b, 4);
    int passed = 0;
    for (int i = 0; i < 100; i++) /* alternating, at one instant: the burst is all there is */
        passed += tl_call_rate_take(r, i % 2 ? b : a, 4, 5000) == TL_CALL_RATE_OK;
    assert_int_equal(passed, 2);
    tl_call_rate_free(r);
}

/* the slot function is keyed per limiter: which sources share a slot cannot be computed
 * from outside (SipHash under a random key) */
static void test_rate_keyed(void **st)
{
    (void)st;
    struct tl_call_rate *r1, *r2;
    assert_int_equal(tl_call_rate_new(&r1, 1, 1, 0, 0), 0);
    assert_int_equal(tl_call_rate_new(&r2, 1, 1, 0, 0), 0);
    int differ = 0;
    for (uint8_t i = 0; i < 64; i++) {
        uint8_t a[4] = {192, 0, 2, i};
        differ += tl_call_rate_slot(r1, a, 4) != tl_call_rate_slot(r2, a, 4);
    }
    assert_true(differ > 0);
    tl_call_rate_free(r1);
    tl_call_rate_free(r2);
}

/* IPv6 sources count per /64: one host owns a whole /64 and may use any address of it */
static void test_rate_ipv6_prefix(void **st)
{
    (void)st;
    struct tl_call_rate *r;
    assert_int_equal(tl_call_rate_new(&r, 1, 2, 0, 0), 0);
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16], c[16], m[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 9};
    memcpy(b, a, 16);
    b[15] = 2;
    b[8] = 0x77; /* the same /64, another interface id */
    memcpy(c, a, 16);
    c[7] = 1; /* the next /64 */
    assert_int_equal(tl_call_rate_slot(r, a, 16), tl_call_rate_slot(r, b, 16));
    assert_int_equal(tl_call_rate_take(r, a, 16, 1000), TL_CALL_RATE_OK);
    assert_int_equal(tl_call_rate_take(r, b, 16, 1000), TL_CALL_RATE_OK);
    assert_int_equal(tl_call_rate_take(r, b, 16, 1000), TL_CALL_RATE_SOURCE);
    assert_int_equal(tl_call_rate_take(r, a, 16, 1000), TL_CALL_RATE_SOURCE);
    if (tl_call_rate_slot(r, c, 16) != tl_call_rate_slot(r, a, 16))
        assert_int_equal(tl_call_rate_take(r, c, 16, 1000), TL_CALL_RATE_OK);
    /* an IPv4-mapped source is its IPv4 address */
    uint8_t v4[4] = {192, 0, 2, 9};
    assert_int_equal(tl_call_rate_slot(r, m, 16), tl_call_rate_slot(r, v4, 4));
    tl_call_rate_free(r);
}

/* the global bucket bounds all sources together, however many there are */
static void test_rate_global(void **st)
{
    (void)st;
    struct tl_call_rate *r;
    assert_int_equal(tl_call_rate_new(&r, 10, 20, 3, 3), 0);
    int passed = 0, global = 0;
    for (uint8_t i = 0; i < 50; i++) {
        uint8_t a[4] = {10, 1, i, 1};
        enum tl_call_rate_verdict v = tl_call_rate_take(r, a, 4, 1000);
        passed += v == TL_CALL_RATE_OK;
        global += v == TL_CALL_RATE_GLOBAL;
    }
    assert_int_equal(passed, 3);
    assert_int_equal(global, 47);
    uint8_t a[4] = {10, 1, 0, 1};
    assert_int_equal(tl_call_rate_take(r, a, 4, 1334), TL_CALL_RATE_OK); /* 1 token / 333 ms */
    assert_int_equal(tl_call_rate_take(r, a, 4, 1334), TL_CALL_RATE_GLOBAL);
    tl_call_rate_free(r);
}

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &a->sin_addr);
    return ss;
}

/* issue 11 item 1: the union of every trunk's allowed_addresses, for reserved slots */
static void test_trusted_set(void **st)
{
    (void)st;
    struct tl_trusted *t;
    assert_int_equal(tl_trusted_new(&t), 0);
    struct tl_route_prefix p[3] = {{4, 24, {203, 0, 113, 77}},
                                   {4, 8, {10, 0, 0, 0}}, /* wider than /16: not trusted */
                                   {6, 48, {0x20, 0x01, 0x0d, 0xb8, 0, 1}}};
    tl_trusted_update(t, p, 3, +1);
    tl_trusted_update(t, p, 1, +1); /* a second number lists the same block */
    assert_int_equal(tl_trusted_count(t), 2);
    struct sockaddr_storage a = v4("203.0.113.9"), b = v4("10.1.2.3"), c = v4("198.51.100.1");
    assert_true(tl_trusted_match(t, (struct sockaddr *)&a));
    assert_false(tl_trusted_match(t, (struct sockaddr *)&b));
    assert_false(tl_trusted_match(t, (struct sockaddr *)&c));
    struct sockaddr_storage m6;
    memset(&m6, 0, sizeof m6);
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m6;
    s6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:203.0.113.200", &s6->sin6_addr);
    assert_true(tl_trusted_match(t, (struct sockaddr *)&m6)); /* dual-stack socket */
    inet_pton(AF_INET6, "2001:db8:1:ff::5", &s6->sin6_addr);
    assert_true(tl_trusted_match(t, (struct sockaddr *)&m6));
    inet_pton(AF_INET6, "2001:db8:2::5", &s6->sin6_addr);
    assert_false(tl_trusted_match(t, (struct sockaddr *)&m6));
    tl_trusted_update(t, p, 1, -1); /* one of the two numbers drops it: still listed */
    assert_true(tl_trusted_match(t, (struct sockaddr *)&a));
    tl_trusted_update(t, p, 3, -1);
    assert_false(tl_trusted_match(t, (struct sockaddr *)&a));
    assert_int_equal(tl_trusted_count(t), 0);
    tl_trusted_free(t);
}

/* a far end's or agent's words inside Reason: text="..." (RFC 3326): nothing that could end
 * the quoted string or the header, and capped */
static void test_reason_text(void **state)
{
    (void)state;
    char t[16];
    tl__call_reason_text(t, sizeof t, "say \"hi\"\r\nX: 1");
    assert_string_equal(t, "say ?hi???X: 1");
    tl__call_reason_text(t, sizeof t, "a\\b\x80");
    assert_string_equal(t, "a?b?");
    tl__call_reason_text(t, 4, "abcdef");
    assert_string_equal(t, "abc");
    tl__call_reason_text(t, sizeof t, NULL);
    assert_string_equal(t, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_g711_known_values), cmocka_unit_test(test_g711_round_trips),
        cmocka_unit_test(test_rate_bucket),       cmocka_unit_test(test_media_family),
        cmocka_unit_test(test_info_dtmf),         cmocka_unit_test(test_rate_collision_shares),
        cmocka_unit_test(test_rate_keyed),        cmocka_unit_test(test_rate_ipv6_prefix),
        cmocka_unit_test(test_rate_global),       cmocka_unit_test(test_trusted_set),
        cmocka_unit_test(test_reason_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
