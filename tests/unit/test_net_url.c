/* net/url: the URLs users give for things we connect to, parsed the one way the save-time
 * checks and the connection both use; and the host lists of the settings. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "call/call.h"
#include "core/core.h"
#include "net/url.h"

static void parses(void **state)
{
    (void)state;
    struct tl_url u;
    assert_int_equal(tl_url_parse("WSS://Bot.Example.COM/media?x=1", &u), 0);
    assert_string_equal(u.scheme, "wss");
    assert_true(u.tls);
    assert_string_equal(u.host, "bot.example.com");
    assert_int_equal(u.port, 443);
    assert_false(u.port_given);
    assert_string_equal(u.path, "/media?x=1");
    assert_int_equal(tl_url_parse("ws://127.0.0.1:8765", &u), 0);
    assert_true(u.host_ip && !u.tls && u.port == 8765 && u.port_given);
    assert_string_equal(u.path, "/");
    assert_int_equal(tl_url_parse("https://[2001:db8::1]:8443?q", &u), 0);
    assert_string_equal(u.host, "2001:db8::1");
    assert_string_equal(u.path, "/?q");
    assert_int_equal(tl_url_parse("http://bot.example.com./", &u), 0);
    assert_string_equal(u.host, "bot.example.com");
    static const char *const bad[] = {
        "ftp://x/",       "wss://user:pw@bot/", "wss://bot/#frag",
        "wss:///x",       "wss://bot:0/",       "wss://bot:65536/",
        "wss://bot:/",    "wss://[::1/",        "wss://b ot/",
        "wss://bot/\n",   "wss://-bot/",        "wss://a..b/",
        "wss://[zz::1]/", "bot.example.com",    NULL,
    };
    for (size_t i = 0; bad[i]; i++)
        if (tl_url_parse(bad[i], &u) != EINVAL)
            fail_msg("accepted %s", bad[i]);
}

static void host_lists(void **state)
{
    (void)state;
    assert_true(tl_host_in_list("127.0.0.1, localhost ,[::1]", "LOCALHOST"));
    assert_true(tl_host_in_list("127.0.0.1, localhost ,[::1]", "::1"));
    assert_true(tl_host_in_list("127.0.0.1", "127.0.0.1"));
    assert_false(tl_host_in_list("127.0.0.1", "127.0.0.10"));
    assert_false(tl_host_in_list("", "localhost"));
    assert_false(tl_host_in_list("bot.example.com", "evil-bot.example.com"));
}

/* call ids made from 128 bits and the CallSid ("CA" + hex) name each other both ways; a
 * random 130-bit id has none, and a SID is read in one spelling only */
static void call_sids(void **state)
{
    (void)state;
    char id[TL_ID_MAX], sid[TL_CALL_SID_LEN + 1], back[TL_ID_MAX];
    for (int i = 0; i < 200; i++) {
        tl_call_id_new(id);
        assert_true(tl_id_valid(id, "ca"));
        assert_int_equal(tl_call_sid_of(id, sid), 0);
        assert_int_equal(strlen(sid), 34);
        assert_memory_equal(sid, "CA", 2);
        assert_int_equal(tl_call_id_of_sid(sid, back), 0);
        assert_string_equal(back, id);
    }
    uint8_t b[16];
    memset(b, 0xff, sizeof b);
    tl_id_from128(id, "ca", b);
    assert_int_equal(tl_call_sid_of(id, sid), 0);
    assert_string_equal(sid, "CAffffffffffffffffffffffffffffffff");
    assert_int_equal(tl_call_sid_of("ca_zzzzzzzzzzzzzzzzzzzzzzzzzz", sid), EINVAL);
    assert_int_equal(tl_call_id_of_sid("CAFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", back), EINVAL);
    assert_int_equal(tl_call_id_of_sid("CAfff", back), EINVAL);
    assert_int_equal(tl_call_id_of_sid("MZffffffffffffffffffffffffffffffff", back), EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses),
        cmocka_unit_test(host_lists),
        cmocka_unit_test(call_sids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
