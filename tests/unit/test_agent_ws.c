/* agent/ws.c, the parts that need no socket: URL parsing, the Sec-WebSocket-Accept
 * computation (RFC 6455 §1.3's example), extra header checks, the upgrade response parser
 * (101, wrong Accept, 401 with its reason, missing Upgrade, partial then complete, over
 * the cap), and the frame path through wslay on a detached handle: messages and
 * fragments delivered, pings answered, the message cap closing with 1009, bad UTF-8 with
 * 1007, the peer's close answered, our close sent after what was queued before it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent/ws.h"
#include "agent/ws_int.h"

/* ---- URLs ---- */

static void test_url_ok(void **state)
{
    (void)state;
    struct tl_ws_url u;
    assert_int_equal(tl_ws_url_parse("wss://Bot.Example.com/media?token=abc&x=1", &u), 0);
    assert_true(u.tls);
    assert_string_equal(u.host, "bot.example.com");
    assert_int_equal(u.port, 443);
    assert_string_equal(u.path, "/media?token=abc&x=1");
    assert_int_equal(tl_ws_url_parse("ws://127.0.0.1:8765", &u), 0);
    assert_false(u.tls);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 8765);
    assert_string_equal(u.path, "/");
    assert_int_equal(tl_ws_url_parse("WS://h.example?q", &u), 0);
    assert_int_equal(u.port, 80);
    assert_string_equal(u.path, "/?q");
    assert_int_equal(tl_ws_url_parse("wss://[2001:db8::7]:8443/s", &u), 0);
    assert_string_equal(u.host, "2001:db8::7");
    assert_int_equal(u.port, 8443);
    assert_string_equal(u.path, "/s");
    assert_int_equal(tl_ws_url_parse("wss://[::1]/", &u), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 443);
    assert_int_equal(tl_ws_url_parse("wss://bot.example.com./x", &u), 0);
    assert_string_equal(u.host, "bot.example.com");
    assert_int_equal(tl_ws_url_parse("ws://a:65535", &u), 0);
    assert_int_equal(u.port, 65535);
}

static void test_url_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "http://bot.example.com/",
        "bot.example.com",
        "wss://",
        "wss:///path",
        "wss://user:pw@bot.example.com/",
        "wss://bot.example.com/#frag",
        "wss://bot.example.com#f",
        "wss://bot.example.com:0/",
        "wss://bot.example.com:65536/",
        "wss://bot.example.com:/",
        "wss://bot.example.com:44a/",
        "wss://bot.example.com:123456/",
        "wss://bot example.com/",
        "wss://bot.example.com/a b",
        "wss://bot.example.com/a\r\nX: y",
        "wss://bot..example.com/",
        "wss://.bot.example.com/",
        "wss://[2001:db8::1/",
        "wss://[not-v6]/",
        "wss://[fe80::1%25eth0]/",
        "wss://[::1]x/",
        "wss://b%6ft.example.com/",
        "wss://bot_1.example.com/",
        "wss://bot.example.com/\x7f",
        "wss://bot.example.com/\xc3\xa9",
        "ws://[]/",
    };
    struct tl_ws_url u;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tl_ws_url_parse(bad[i], &u) != EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(tl_ws_url_parse(NULL, &u), EINVAL);
    char lbl[100] = "wss://";
    memset(lbl + 6, 'a', 64);
    strcpy(lbl + 70, ".example/");
    assert_int_equal(tl_ws_url_parse(lbl, &u), EINVAL); /* a 64-byte label */
    char *longp = malloc(2100);
    strcpy(longp, "wss://h/");
    memset(longp + 8, 'p', 2060);
    longp[2068] = '\0';
    assert_int_equal(tl_ws_url_parse(longp, &u), EINVAL);
    free(longp);
}

/* ---- Accept, headers ---- */

static void test_accept(void **state)
{
    (void)state;
    char out[29];
    tl_ws_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out); /* RFC 6455 §1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_header_check(void **state)
{
    (void)state;
    const char *why = "x";
    assert_int_equal(tl_ws_header_check("Authorization: Bearer sk-123", &why), 0);
    assert_null(why);
    assert_int_equal(tl_ws_header_check("X-Empty:", NULL), 0);
    assert_int_equal(tl_ws_header_check("Sec-WebSocket-Protocol: audio.v1", NULL), 0);
    static const char *const bad[] = {
        "Authorization: Bearer x\r\nHost: evil",
        "X-A: b\nc",
        "X-A: b\rc",
        "NoColon",
        ": value",
        "Bad Name: v",
        "Host: other",
        "upgrade: h2c",
        "CONNECTION: close",
        "Sec-WebSocket-Key: x",
        "Sec-WebSocket-Version: 8",
        "Sec-WebSocket-Extensions: permessage-deflate",
        "Sec-WebSocket-Accept: x",
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        "X-Nul: a\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (tl_ws_header_check(bad[i], &why) != EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_non_null(why);
        /* the value never appears in the reason (it may be an API key) */
        assert_null(strstr(why, "evil"));
    }
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[1] = ':';
    assert_int_equal(tl_ws_header_check(big, &why), EINVAL);
}

/* ---- the upgrade response ---- */

#define KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static int parse(const char *s, int *status, bool *ok, char *reason, size_t *hl)
{
    return tl_ws_response_parse(s, strlen(s), KEY, status, ok, reason, 64, hl);
}

static void test_response_101(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n";
    int st;
    bool ok;
    char reason[64];
    size_t hl;
    assert_int_equal(parse(r, &st, &ok, reason, &hl), 0);
    assert_int_equal(st, 101);
    assert_true(ok);
    assert_string_equal(reason, "Switching Protocols");
    assert_int_equal(hl, strlen(r));
    /* case, lists, spaces and frames after the headers */
    char buf[512];
    snprintf(buf, sizeof buf,
             "HTTP/1.1 101 OK\r\nupgrade:  WebSocket \r\nconnection: keep-alive, upgrade\r\n"
             "sec-websocket-accept:" ACCEPT "\r\nServer: x\r\n\r\n\x81\x02hi");
    assert_int_equal(parse(buf, &st, &ok, reason, &hl), 0);
    assert_true(ok);
    assert_int_equal(hl, strlen(buf) - 4);
    /* bare LF line ends (RFC 7230 §3.5) */
    assert_int_equal(parse("HTTP/1.1 101 x\nUpgrade: websocket\nConnection: Upgrade\n"
                           "Sec-WebSocket-Accept: " ACCEPT "\n\n",
                           &st, &ok, reason, &hl),
                     0);
    assert_true(ok);
}

static void test_response_not_websocket(void **state)
{
    (void)state;
    static const char *const bad[] = {
        /* wrong Accept */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
        /* missing Upgrade */
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
        /* Upgrade to something else */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
        /* missing Connection */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
        /* missing Accept */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        /* two Accepts */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
        /* an extension we did not offer */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        /* 101 in HTTP/1.0 */
        "HTTP/1.0 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st;
        bool ok = true;
        char reason[64];
        size_t hl;
        assert_int_equal(parse(bad[i], &st, &ok, reason, &hl), 0);
        assert_int_equal(st, 101);
        if (ok)
            fail_msg("accepted case %zu", i);
    }
    /* no key: nothing can match */
    int st;
    bool ok;
    size_t hl;
    const char *r = "HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n";
    assert_int_equal(tl_ws_response_parse(r, strlen(r), NULL, &st, &ok, NULL, 0, &hl), 0);
    assert_false(ok);
}

static void test_response_status(void **state)
{
    (void)state;
    int st;
    bool ok;
    char reason[64];
    size_t hl;
    assert_int_equal(parse("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n"
                           "Content-Length: 0\r\n\r\n",
                           &st, &ok, reason, &hl),
                     0);
    assert_int_equal(st, 401);
    assert_false(ok);
    assert_string_equal(reason, "Unauthorized");
    assert_int_equal(parse("HTTP/1.0 404 Not Found\r\n\r\n", &st, &ok, reason, &hl), 0);
    assert_int_equal(st, 404);
    assert_string_equal(reason, "Not Found");
    assert_int_equal(parse("HTTP/1.1 503\r\n\r\n", &st, &ok, reason, &hl), 0);
    assert_int_equal(st, 503);
    assert_string_equal(reason, "");
    /* non-printable bytes of a reason are not passed on */
    assert_int_equal(parse("HTTP/1.1 403 Go \xff\x80 away\r\n\r\n", &st, &ok, reason, &hl), 0);
    assert_string_equal(reason, "Go ?? away");
    /* the reason is cut to the caller's buffer */
    char small[4];
    const char *r = "HTTP/1.1 400 Bad Request\r\n\r\n";
    assert_int_equal(tl_ws_response_parse(r, strlen(r), KEY, &st, &ok, small, sizeof small, &hl),
                     0);
    assert_string_equal(small, "Bad");
}

static void test_response_partial(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n";
    size_t n = strlen(r);
    int st;
    bool ok;
    size_t hl;
    for (size_t i = 0; i < n; i++)
        if (tl_ws_response_parse(r, i, KEY, &st, &ok, NULL, 0, &hl) != EAGAIN)
            fail_msg("a prefix of %zu bytes was not EAGAIN", i);
    assert_int_equal(tl_ws_response_parse(r, n, KEY, &st, &ok, NULL, 0, &hl), 0);
    assert_true(ok);
}

static void test_response_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "SSH-2.0-OpenSSH_9.2\r\n", /* refused before the blank line */
        "\x16\x03\x01\x00",        /* a TLS record */
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 101 x\r\nNoColonHere\r\n\r\n",
        "HTTP/1.1 101 x\r\n: empty name\r\n\r\n",
        "HTTP/1.1 101 x\r\nBad Name: v\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade: web\x01socket\r\n\r\n",
        "HTTP/1.1 101 x\r\nUpgrade: websocket\r\n folded\r\n\r\n",
        "HTTP/1.1 101 x\rUpgrade: websocket\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int st;
        bool ok;
        size_t hl;
        if (tl_ws_response_parse(bad[i], strlen(bad[i]), KEY, &st, &ok, NULL, 0, &hl) != EBADMSG)
            fail_msg("case %zu not EBADMSG", i);
    }
    /* over the cap: headers that never end, and headers that end just past it */
    char *big = malloc(TL_WS_HANDSHAKE_MAX + 100);
    strcpy(big, "HTTP/1.1 101 x\r\nX-Pad: ");
    size_t l = strlen(big);
    memset(big + l, 'a', TL_WS_HANDSHAKE_MAX + 100 - l);
    int st;
    bool ok;
    size_t hl;
    assert_int_equal(
        tl_ws_response_parse(big, TL_WS_HANDSHAKE_MAX - 1, KEY, &st, &ok, NULL, 0, &hl), EAGAIN);
    assert_int_equal(tl_ws_response_parse(big, TL_WS_HANDSHAKE_MAX, KEY, &st, &ok, NULL, 0, &hl),
                     EBADMSG);
    memcpy(big + TL_WS_HANDSHAKE_MAX - 2, "\r\n\r\n", 4);
    assert_int_equal(
        tl_ws_response_parse(big, TL_WS_HANDSHAKE_MAX + 2, KEY, &st, &ok, NULL, 0, &hl), EBADMSG);
    memcpy(big + TL_WS_HANDSHAKE_MAX - 4, "\r\n\r\n", 4);
    assert_int_equal(
        tl_ws_response_parse(big, TL_WS_HANDSHAKE_MAX + 2, KEY, &st, &ok, NULL, 0, &hl), 0);
    assert_int_equal(hl, TL_WS_HANDSHAKE_MAX);
    free(big);
}

/* ---- frames on a detached handle ---- */

struct rec {
    char msgs[8][256];
    size_t lens[8];
    bool binary[8];
    size_t nmsg;
    unsigned char out[4096]; /* what we sent, masked */
    size_t outlen;
    int closed;
    enum tl_ws_fail fail;
    uint16_t code;
    char why[TL_WS_WHY_MAX];
    struct tl_ws *ws;
    bool reply_in_cb;
};

static void r_open(struct tl_ws *ws, void *arg)
{
    (void)ws;
    (void)arg;
}

static void r_msg(struct tl_ws *ws, const char *p, size_t n, bool binary, void *arg)
{
    struct rec *r = arg;
    if (r->nmsg < 8) {
        memcpy(r->msgs[r->nmsg], p, n < 255 ? n : 255);
        r->lens[r->nmsg] = n;
        r->binary[r->nmsg++] = binary;
    }
    if (r->reply_in_cb)
        assert_int_equal(tl_ws_send(ws, "pong!", 5), 0);
}

static void r_close(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *why,
                    void *arg)
{
    (void)ws;
    struct rec *r = arg;
    r->closed++;
    r->fail = fail;
    r->code = code;
    snprintf(r->why, sizeof r->why, "%s", why);
}

static void r_sink(const char *p, size_t n, void *arg)
{
    struct rec *r = arg;
    assert_true(r->outlen + n <= sizeof r->out);
    memcpy(r->out + r->outlen, p, n);
    r->outlen += n;
}

static const struct tl_ws_cb rcb = {.on_open = r_open, .on_message = r_msg, .on_close = r_close};

/* The k-th frame we sent: opcode, unmasked payload. Client frames must be masked
 * (RFC 6455 §5.3). */
static int sent_frame(struct rec *r, size_t k, char *payload, size_t *plen)
{
    size_t off = 0;
    for (;;) {
        assert_true(off + 2 <= r->outlen);
        unsigned char b0 = r->out[off], b1 = r->out[off + 1];
        assert_true(b1 & 0x80);
        size_t len = b1 & 0x7f, h = 2;
        if (len == 126) {
            len = (size_t)r->out[off + 2] << 8 | r->out[off + 3];
            h = 4;
        }
        const unsigned char *mask = r->out + off + h;
        if (k-- == 0) {
            for (size_t i = 0; i < len; i++)
                payload[i] = (char)(r->out[off + h + 4 + i] ^ mask[i % 4]);
            *plen = len;
            return b0 & 0x0f;
        }
        off += h + 4 + len;
    }
}

static void feed(struct rec *r, const char *p, size_t n)
{
    tl_ws__feed(r->ws, p, n);
}

static void test_frames_messages(void **state)
{
    (void)state;
    struct rec r = {0};
    r.ws = tl_ws__detached(0, &rcb, &r, r_sink);
    assert_non_null(r.ws);
    /* a text message split across reads, a binary one, a fragmented text with a ping
     * between its fragments */
    feed(&r, "\x81\x05he", 4);
    feed(&r, "llo", 3);
    feed(&r, "\x82\x03\x00\x01\x02", 5);
    feed(&r,
         "\x01\x03"
         "abc"
         "\x89\x02pi"
         "\x80\x03"
         "def",
         14);
    assert_int_equal(r.nmsg, 3);
    assert_memory_equal(r.msgs[0], "hello", 5);
    assert_false(r.binary[0]);
    assert_int_equal(r.lens[1], 3);
    assert_true(r.binary[1]);
    assert_memory_equal(r.msgs[2], "abcdef", 6);
    /* the ping was answered with its payload */
    char pl[256];
    size_t n;
    assert_int_equal(sent_frame(&r, 0, pl, &n), 0xa);
    assert_int_equal(n, 2);
    assert_memory_equal(pl, "pi", 2);
    /* we send, also from inside on_message */
    r.reply_in_cb = true;
    feed(&r, "\x81\x01x", 3);
    assert_int_equal(sent_frame(&r, 1, pl, &n), 0x1);
    assert_memory_equal(pl, "pong!", 5);
    assert_int_equal(tl_ws_queued(r.ws), 0);
    assert_int_equal(r.closed, 0);
    tl_ws__free(r.ws);
}

static void test_frames_cap(void **state)
{
    (void)state;
    struct rec r = {0};
    r.ws = tl_ws__detached(10, &rcb, &r, r_sink);
    feed(&r,
         "\x81\x0a"
         "0123456789",
         12); /* exactly the cap: delivered */
    assert_int_equal(r.nmsg, 1);
    /* fragments adding up past the cap: refused at the second fragment's header */
    feed(&r,
         "\x01\x06"
         "abcdef"
         "\x80\x05"
         "ghijk",
         15);
    assert_int_equal(r.nmsg, 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.fail, TL_WS_FAIL_PROTOCOL);
    assert_non_null(strstr(r.why, "over 10 bytes"));
    assert_non_null(strstr(r.why, "1009"));
    char pl[256];
    size_t n;
    assert_int_equal(sent_frame(&r, 0, pl, &n), 0x8);
    assert_int_equal(n, 2);
    assert_int_equal((unsigned char)pl[0] << 8 | (unsigned char)pl[1], 1009);
    tl_ws__free(r.ws);

    /* one frame announcing 2^40 bytes: refused from its header, nothing allocated */
    memset(&r, 0, sizeof r);
    r.ws = tl_ws__detached(0, &rcb, &r, r_sink);
    feed(&r, "\x82\x7f\x00\x00\x01\x00\x00\x00\x00\x00", 10);
    assert_int_equal(r.closed, 0); /* wslay looks at the length with the first payload byte */
    feed(&r, "x", 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.fail, TL_WS_FAIL_PROTOCOL);
    assert_non_null(strstr(r.why, "1009"));
    tl_ws__free(r.ws);
}

static void test_frames_protocol_errors(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
        const char *why;
    } cases[] = {
        {"\x81\x82\x01\x02\x03\x04"
         "ab",
         8, "1002"},                          /* a masked frame from a server */
        {"\x83\x00", 2, "1002"},              /* a reserved opcode */
        {"\xc1\x01x", 3, "1002"},             /* RSV1 without an extension */
        {"\x80\x01x", 3, "1002"},             /* a continuation with nothing to continue */
        {"\x09\x00", 2, "malformed"},         /* a fragmented ping */
        {"\x81\x02\xc3\x28", 4, "not UTF-8"}, /* invalid UTF-8 in a text message */
        {"\x88\x02\x03\xed", 4, "1002"},      /* a close code that may not be sent */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rec r = {0};
        r.ws = tl_ws__detached(0, &rcb, &r, r_sink);
        feed(&r, cases[i].bytes, cases[i].n);
        if (r.closed != 1 || r.fail != TL_WS_FAIL_PROTOCOL || !strstr(r.why, cases[i].why))
            fail_msg("case %zu: closed=%d fail=%s why=%s", i, r.closed, tl_ws_fail_name(r.fail),
                     r.why);
        assert_int_equal(r.nmsg, 0);
        tl_ws__free(r.ws);
    }
}

static void test_frames_peer_close(void **state)
{
    (void)state;
    struct rec r = {0};
    r.ws = tl_ws__detached(0, &rcb, &r, r_sink);
    feed(&r,
         "\x88\x05\x03\xe9"
         "bye",
         7); /* 1001 going away */
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.fail, TL_WS_OK);
    assert_int_equal(r.code, 1001);
    assert_non_null(strstr(r.why, "1001 going away: bye"));
    char pl[256];
    size_t n;
    assert_int_equal(sent_frame(&r, 0, pl, &n), 0x8); /* answered (RFC 6455 §5.5.1) */
    assert_int_equal((unsigned char)pl[0] << 8 | (unsigned char)pl[1], 1001);
    assert_int_equal(tl_ws_send(r.ws, "x", 1), ENOTCONN);
    tl_ws__free(r.ws);
}

static void test_frames_our_close(void **state)
{
    (void)state;
    struct rec r = {0};
    r.ws = tl_ws__detached(0, &rcb, &r, r_sink);
    assert_int_equal(tl_ws_send(r.ws, "last", 4), 0);
    char reason[200];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    tl_ws_close(r.ws, 1000, reason);
    assert_int_equal(tl_ws_send(r.ws, "late", 4), ENOTCONN);
    char pl[256];
    size_t n;
    assert_int_equal(sent_frame(&r, 0, pl, &n), 0x1);
    assert_memory_equal(pl, "last", 4);
    assert_int_equal(sent_frame(&r, 1, pl, &n), 0x8);
    assert_int_equal(n, 125); /* the reason cut to fit a control frame */
    assert_int_equal(r.closed, 0);
    feed(&r, "\x81\x01z\x88\x02\x03\xe8", 7); /* data after our close still arrives */
    assert_int_equal(r.nmsg, 1);
    assert_int_equal(r.closed, 1);
    assert_int_equal(r.fail, TL_WS_OK);
    assert_int_equal(r.code, 1000);
    tl_ws__free(r.ws);
}

static void test_sendq_cap(void **state)
{
    (void)state;
    struct rec r = {0};
    r.ws = tl_ws__detached(0, &rcb, &r, NULL); /* no sink: frames leave at once */
    char *big = calloc(1, TL_WS_SENDQ_MAX + 1);
    memset(big, 'a', TL_WS_SENDQ_MAX);
    assert_int_equal(tl_ws_send(r.ws, big, TL_WS_SENDQ_MAX + 1), ENOBUFS);
    assert_int_equal(tl_ws_send(r.ws, big, TL_WS_SENDQ_MAX), 0);
    assert_int_equal(tl_ws_queued(r.ws), 0);
    free(big);
    tl_ws__free(r.ws);
    assert_string_equal(tl_ws_fail_name(TL_WS_FAIL_SENDQ), "sendq");
    assert_string_equal(tl_ws_fail_name(TL_WS_OK), "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_header_check),
        cmocka_unit_test(test_response_101),
        cmocka_unit_test(test_response_not_websocket),
        cmocka_unit_test(test_response_status),
        cmocka_unit_test(test_response_partial),
        cmocka_unit_test(test_response_bad),
        cmocka_unit_test(test_frames_messages),
        cmocka_unit_test(test_frames_cap),
        cmocka_unit_test(test_frames_protocol_errors),
        cmocka_unit_test(test_frames_peer_close),
        cmocka_unit_test(test_frames_our_close),
        cmocka_unit_test(test_sendq_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
