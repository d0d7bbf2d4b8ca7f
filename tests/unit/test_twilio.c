/* The Twilio Media Streams codec (src/agent/twilio.c): every frame we send byte for byte
 * and read back by jansson (the types bots check), escaping of values from outside, SID
 * shapes, the decoder on what real bots send (docs/agents.md) and on what it must refuse. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "agent/twilio.h"

#define MZ "MZ0123456789abcdef0123456789abcdef"
#define CA "CAfedcba9876543210fedcba9876543210"
#define AC "AC00112233445566778899aabbccddeeff"

static char buf[65536];
static size_t len;

/* ---- helpers ---- */

static json_t *parse(const char *s, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(s, n, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        fail_msg("jansson: %s in %.*s", e.text, (int)n, s);
    return j;
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static char *b64(const uint8_t *b, size_t n)
{
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    assert_non_null(s);
    sodium_bin2base64(s, cap, b, n, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

/* a media message as Pipecat sends it: payload only */
static char *pipecat_media(const uint8_t *a, size_t n)
{
    char *p = b64(a, n);
    size_t cap = strlen(p) + 128;
    char *m = malloc(cap);
    assert_non_null(m);
    snprintf(m, cap,
             "{\"event\":\"media\",\"streamSid\":\"" MZ "\",\"media\":{\"payload\":\"%s\"}}", p);
    free(p);
    return m;
}

static struct tl_tw_msg M;
static uint8_t audio[24000];
static char why[128];

static int dec(const char *s)
{
    return tl_tw_decode(s, strlen(s), MZ, &M, audio, sizeof audio, why, sizeof why);
}

/* refused with err, and why contains part */
#define REFUSE(s, err, part)                                                                       \
    do {                                                                                           \
        int r_ = dec(s);                                                                           \
        if (r_ != (err))                                                                           \
            fail_msg("%s: got %d (%s), want %d", (s), r_, why, (err));                             \
        if (!strstr(why, (part)))                                                                  \
            fail_msg("%s: why \"%s\" lacks \"%s\"", (s), why, (part));                             \
        assert_int_equal(M.kind, TL_TW_IGNORED);                                                   \
    } while (0)

#define ACCEPT(s, kind_)                                                                           \
    do {                                                                                           \
        int r_ = dec(s);                                                                           \
        if (r_ != 0)                                                                               \
            fail_msg("%s: refused %d (%s)", (s), r_, why);                                         \
        assert_int_equal(M.kind, (kind_));                                                         \
        assert_string_equal(why, "");                                                              \
    } while (0)

/* ---- SIDs ---- */

static void test_sid_shapes(void **state)
{
    (void)state;
    const char *prefixes[] = {"MZ", "CA", "AC"};
    for (int i = 0; i < 3; i++) {
        char a[TL_TW_SID_LEN + 1], b[TL_TW_SID_LEN + 1];
        tl_tw_sid_new(a, prefixes[i]);
        tl_tw_sid_new(b, prefixes[i]);
        assert_int_equal(strlen(a), TL_TW_SID_LEN);
        assert_memory_equal(a, prefixes[i], 2);
        for (size_t k = 2; k < TL_TW_SID_LEN; k++)
            assert_non_null(strchr("0123456789abcdef", a[k]));
        assert_string_not_equal(a, b);
        assert_true(tl_tw_sid_valid(a, prefixes[i]));
        assert_false(tl_tw_sid_valid(a, prefixes[(i + 1) % 3]));
    }
    char s[TL_TW_SID_LEN + 1] = "x";
    tl_tw_sid_new(s, "M");
    assert_string_equal(s, "");
    tl_tw_sid_new(s, "MZX");
    assert_string_equal(s, "");
    assert_true(tl_tw_sid_valid(MZ, "MZ"));
    assert_false(tl_tw_sid_valid("MZ0123456789ABCDEF0123456789abcdef", "MZ")); /* upper */
    assert_false(tl_tw_sid_valid("MZ0123456789abcdef0123456789abcde", "MZ"));  /* short */
    assert_false(tl_tw_sid_valid(MZ "0", "MZ"));
    assert_false(tl_tw_sid_valid("MZ0123456789abcdef0123456789abcdeg", "MZ"));
    assert_false(tl_tw_sid_valid(NULL, "MZ"));
}

/* ---- encoders ---- */

static void test_connected_exact(void **state)
{
    (void)state;
    assert_int_equal(tl_tw_connected(buf, sizeof buf, &len), 0);
    const char want[] = "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    json_decref(parse(buf, len));
}

static const char *const EXT[] = {"hangup", "transfer", "sendDigits", NULL};

static void test_start_exact(void **state)
{
    (void)state;
    const struct tl_tw_kv params[] = {
        {"from_number", "+15550001"}, {"to_number", "+493012345678"}, {"direction", "inbound"}};
    struct tl_tw_start s = {MZ, AC, CA, params, 3, EXT};
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &s), 0);
    const char want[] =
        "{\"event\":\"start\",\"sequenceNumber\":\"1\",\"streamSid\":\"" MZ "\","
        "\"start\":{\"streamSid\":\"" MZ "\",\"accountSid\":\"" AC "\",\"callSid\":\"" CA "\","
        "\"tracks\":[\"inbound\"],\"customParameters\":{\"from_number\":\"+15550001\","
        "\"to_number\":\"+493012345678\",\"direction\":\"inbound\"},\"mediaFormat\":{"
        "\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1},"
        "\"extensions\":[\"hangup\",\"transfer\",\"sendDigits\"]}}";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);

    /* the types bots check (OpenAI Agents JS: sampleRate === 8000, channels === 1) */
    json_t *j = parse(buf, len);
    assert_string_equal(jstr(j, "event", NULL), "start");
    assert_string_equal(jstr(j, "sequenceNumber", NULL), "1");
    assert_string_equal(jstr(j, "streamSid", NULL), MZ);
    json_t *st = json_object_get(j, "start");
    assert_string_equal(jstr(st, "streamSid", NULL), MZ);
    assert_string_equal(jstr(st, "callSid", NULL), CA);
    assert_string_equal(jstr(st, "accountSid", NULL), AC);
    json_t *mf = json_object_get(st, "mediaFormat");
    assert_string_equal(jstr(mf, "encoding", NULL), "audio/x-mulaw");
    assert_true(json_is_integer(json_object_get(mf, "sampleRate")));
    assert_int_equal(json_integer_value(json_object_get(mf, "sampleRate")), 8000);
    assert_true(json_is_integer(json_object_get(mf, "channels")));
    assert_int_equal(json_integer_value(json_object_get(mf, "channels")), 1);
    json_t *tr = json_object_get(st, "tracks");
    assert_int_equal(json_array_size(tr), 1);
    assert_string_equal(json_string_value(json_array_get(tr, 0)), "inbound");
    assert_string_equal(jstr(st, "customParameters", "to_number"), "+493012345678");
    assert_int_equal(json_array_size(json_object_get(st, "extensions")), 3);
    json_decref(j);

    /* no parameters, no extensions announced: an empty object, no extensions member */
    struct tl_tw_start s0 = {MZ, AC, CA, NULL, 0, NULL};
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 7, &s0), 0);
    const char want0[] =
        "{\"event\":\"start\",\"sequenceNumber\":\"7\",\"streamSid\":\"" MZ "\","
        "\"start\":{\"streamSid\":\"" MZ "\",\"accountSid\":\"" AC "\",\"callSid\":\"" CA "\","
        "\"tracks\":[\"inbound\"],\"customParameters\":{},\"mediaFormat\":{"
        "\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,\"channels\":1}}}";
    assert_int_equal(len, strlen(want0));
    assert_memory_equal(buf, want0, len);
    const char *const none[] = {NULL};
    s0.extensions = none;
    assert_int_equal(tl_tw_start(buf, sizeof buf - 1, &len, 1, &s0), 0);
    buf[len] = '\0';
    assert_non_null(strstr(buf, ",\"extensions\":[]}}"));
}

/* Values a carrier or a user can put into customParameters. */
static void test_start_escapes_nasty_values(void **state)
{
    (void)state;
    const struct tl_tw_kv params[] = {
        {"X-Quote", "say \"hi\""},
        {"X-Backslash", "C:\\path\\"},
        {"X-Controls", "a\x01"
                       "b\nc\td\x1f"
                       "e\rf\x7f"},
        {"X-Unicode", "M\xc3\xbcller \xe2\x80\xa8 \xf0\x9f\x98\x80 \xef\xbf\xbf"},
        {"X-Html", "</script><!--"},
        {"", "empty key"},
        {"key \"with\" \\ and \x02", ""},
    };
    struct tl_tw_start s = {MZ, AC, CA, params, sizeof params / sizeof params[0], EXT};
    assert_int_equal(tl_tw_start(buf, sizeof buf - 1, &len, 1, &s), 0);
    buf[len] = '\0';
    assert_non_null(strstr(buf, "\"X-Quote\":\"say \\\"hi\\\"\""));
    assert_non_null(strstr(buf, "\"X-Backslash\":\"C:\\\\path\\\\\""));
    assert_non_null(
        strstr(buf, "\"X-Controls\":\"a\\u0001b\\u000ac\\u0009d\\u001fe\\u000df\x7f\""));
    assert_non_null(strstr(buf, "\"key \\\"with\\\" \\\\ and \\u0002\":\"\""));
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)buf[i] >= 0x20); /* nothing raw below space */
    json_t *j = parse(buf, len);
    json_t *cp = json_object_get(json_object_get(j, "start"), "customParameters");
    assert_int_equal(json_object_size(cp), sizeof params / sizeof params[0]);
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        assert_string_equal(jstr(cp, params[i].key, NULL), params[i].value);
    json_decref(j);

    /* not UTF-8: refused, nothing written */
    const char *bad[] = {"\xc3\x28",         "\xc0\xaf",         "\xe0\x80\xaf", "\xed\xa0\x80",
                         "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "abc\xff",      "\x80",
                         "\xe2\x82",         "\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct tl_tw_kv kv = {"X-Bad", bad[i]};
        struct tl_tw_start sb = {MZ, AC, CA, &kv, 1, NULL};
        len = 99;
        assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sb), EINVAL);
        assert_int_equal(len, 0);
        assert_false(tl_tw_utf8_valid(bad[i]));
        kv.key = bad[i];
        kv.value = "ok";
        assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sb), EINVAL);
    }
    assert_true(tl_tw_utf8_valid(params[3].value));
    assert_false(tl_tw_utf8_valid(NULL));

    /* duplicate keys, NULLs, too many */
    struct tl_tw_kv dup[] = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
    struct tl_tw_start sd = {MZ, AC, CA, dup, 3, NULL};
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sd), EINVAL);
    dup[2].key = NULL;
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sd), EINVAL);
    dup[2].key = "c";
    dup[1].value = NULL;
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sd), EINVAL);
    struct tl_tw_kv many[TL_TW_PARAMS_MAX + 1];
    char keys[TL_TW_PARAMS_MAX + 1][16];
    for (int i = 0; i <= TL_TW_PARAMS_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (struct tl_tw_kv){keys[i], "v"};
    }
    struct tl_tw_start sm = {MZ, AC, CA, many, TL_TW_PARAMS_MAX, NULL};
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sm), 0);
    sm.n_params++;
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sm), EINVAL);
    struct tl_tw_start sn = {MZ, NULL, CA, NULL, 0, NULL};
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, &sn), EINVAL);
    assert_int_equal(tl_tw_start(buf, sizeof buf, &len, 1, NULL), EINVAL);
}

static void test_media_exact(void **state)
{
    (void)state;
    uint8_t ulaw[160];
    for (int i = 0; i < 160; i++)
        ulaw[i] = (uint8_t)(i * 37 + 5);
    char *p = b64(ulaw, sizeof ulaw);
    assert_int_equal(tl_tw_media(buf, sizeof buf, &len, MZ, 3, 1, 20, ulaw, 160), 0);
    char want[512];
    snprintf(want, sizeof want,
             "{\"event\":\"media\",\"sequenceNumber\":\"3\",\"streamSid\":\"" MZ "\","
             "\"media\":{\"track\":\"inbound\",\"chunk\":\"1\",\"timestamp\":\"20\","
             "\"payload\":\"%s\"}}",
             p);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    free(p);

    json_t *j = parse(buf, len);
    assert_string_equal(jstr(j, "sequenceNumber", NULL), "3");
    assert_string_equal(jstr(j, "media", "track"), "inbound");
    assert_string_equal(jstr(j, "media", "chunk"), "1");
    assert_string_equal(jstr(j, "media", "timestamp"), "20");
    const char *pl = jstr(j, "media", "payload");
    uint8_t back[200];
    size_t bl;
    assert_int_equal(sodium_base642bin(back, sizeof back, pl, strlen(pl), NULL, &bl, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(bl, 160);
    assert_memory_equal(back, ulaw, 160);
    json_decref(j);

    /* every tail length pads as the reference does; big counters stay exact */
    for (size_t n = 0; n <= 7; n++) {
        char *ref = b64(ulaw, n);
        assert_int_equal(
            tl_tw_media(buf, sizeof buf, &len, MZ, UINT64_MAX, 18446744073709551615u, 0, ulaw, n),
            0);
        snprintf(want, sizeof want,
                 "{\"event\":\"media\",\"sequenceNumber\":\"18446744073709551615\",\"streamSid\":"
                 "\"" MZ "\",\"media\":{\"track\":\"inbound\",\"chunk\":\"18446744073709551615\","
                 "\"timestamp\":\"0\",\"payload\":\"%s\"}}",
                 ref);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(buf, want, len);
        free(ref);
    }
    assert_int_equal(tl_tw_media(buf, sizeof buf, &len, MZ, 1, 1, 0, NULL, 1), EINVAL);
    assert_int_equal(tl_tw_media(buf, sizeof buf, &len, NULL, 1, 1, 0, ulaw, 1), EINVAL);
}

static void test_dtmf_mark_stop_transfer_exact(void **state)
{
    (void)state;
    assert_int_equal(tl_tw_dtmf(buf, sizeof buf, &len, MZ, 5, '#'), 0);
    const char dtmf[] = "{\"event\":\"dtmf\",\"sequenceNumber\":\"5\",\"streamSid\":\"" MZ
                        "\",\"dtmf\":{\"track\":\"inbound_track\",\"digit\":\"#\"}}";
    assert_int_equal(len, strlen(dtmf));
    assert_memory_equal(buf, dtmf, len);
    json_t *j = parse(buf, len);
    assert_string_equal(jstr(j, "dtmf", "digit"), "#");
    json_decref(j);
    const char ok[] = "0123456789*#ABCD";
    for (size_t i = 0; i < strlen(ok); i++)
        assert_int_equal(tl_tw_dtmf(buf, sizeof buf, &len, MZ, 5, ok[i]), 0);
    const char no[] = "aEw\"\\ \0";
    for (size_t i = 0; i < sizeof no - 1; i++)
        assert_int_equal(tl_tw_dtmf(buf, sizeof buf, &len, MZ, 5, no[i]), EINVAL);

    assert_int_equal(tl_tw_mark(buf, sizeof buf, &len, MZ, 4, "my label"), 0);
    const char mark[] = "{\"event\":\"mark\",\"sequenceNumber\":\"4\",\"streamSid\":\"" MZ
                        "\",\"mark\":{\"name\":\"my label\"}}";
    assert_int_equal(len, strlen(mark));
    assert_memory_equal(buf, mark, len);
    assert_int_equal(tl_tw_mark(buf, sizeof buf - 1, &len, MZ, 9, ""), 0); /* a nameless mark */
    buf[len] = '\0';
    assert_non_null(strstr(buf, "\"mark\":{\"name\":\"\"}}"));
    assert_int_equal(tl_tw_mark(buf, sizeof buf, &len, MZ, 9, "\"}\\\n"), 0);
    j = parse(buf, len);
    assert_string_equal(jstr(j, "mark", "name"), "\"}\\\n");
    json_decref(j);
    assert_int_equal(tl_tw_mark(buf, sizeof buf, &len, MZ, 9, NULL), EINVAL);

    assert_int_equal(tl_tw_stop(buf, sizeof buf, &len, MZ, 12, AC, CA), 0);
    const char stop[] = "{\"event\":\"stop\",\"sequenceNumber\":\"12\",\"streamSid\":\"" MZ
                        "\",\"stop\":{\"accountSid\":\"" AC "\",\"callSid\":\"" CA "\"}}";
    assert_int_equal(len, strlen(stop));
    assert_memory_equal(buf, stop, len);
    json_decref(parse(buf, len));

    assert_int_equal(tl_tw_transfer_status(buf, sizeof buf, &len, MZ, 8, "ringing", 180), 0);
    const char tr[] = "{\"event\":\"transfer\",\"sequenceNumber\":\"8\",\"streamSid\":\"" MZ
                      "\",\"transfer\":{\"status\":\"ringing\",\"sipCode\":180}}";
    assert_int_equal(len, strlen(tr));
    assert_memory_equal(buf, tr, len);
    j = parse(buf, len);
    assert_true(json_is_integer(json_object_get(json_object_get(j, "transfer"), "sipCode")));
    json_decref(j);
    assert_int_equal(tl_tw_transfer_status(buf, sizeof buf, &len, MZ, 9, "trying", 0), 0);
    const char tr0[] = "{\"event\":\"transfer\",\"sequenceNumber\":\"9\",\"streamSid\":\"" MZ
                       "\",\"transfer\":{\"status\":\"trying\"}}";
    assert_int_equal(len, strlen(tr0));
    assert_memory_equal(buf, tr0, len);
    assert_int_equal(tl_tw_transfer_status(buf, sizeof buf, &len, MZ, 9, "failed", 99), EINVAL);
    assert_int_equal(tl_tw_transfer_status(buf, sizeof buf, &len, MZ, 9, "failed", 700), EINVAL);
}

/* Every encoder, at every buffer size short of its text: ENOSPC and nothing to send. */
static void test_encoders_enospc(void **state)
{
    (void)state;
    uint8_t ulaw[160] = {0};
    const struct tl_tw_kv params[] = {{"k", "v\x01"}};
    struct tl_tw_start s = {MZ, AC, CA, params, 1, EXT};
    for (int e = 0; e < 7; e++) {
        size_t full;
        int r;
#define ENC(cap, lp)                                                                               \
    (e == 0   ? tl_tw_connected(buf, cap, lp)                                                      \
     : e == 1 ? tl_tw_start(buf, cap, lp, 1, &s)                                                   \
     : e == 2 ? tl_tw_media(buf, cap, lp, MZ, 2, 1, 0, ulaw, sizeof ulaw)                          \
     : e == 3 ? tl_tw_dtmf(buf, cap, lp, MZ, 3, '1')                                               \
     : e == 4 ? tl_tw_mark(buf, cap, lp, MZ, 4, "n\"\x02")                                         \
     : e == 5 ? tl_tw_stop(buf, cap, lp, MZ, 5, AC, CA)                                            \
              : tl_tw_transfer_status(buf, cap, lp, MZ, 6, "ringing", 180))
        assert_int_equal(ENC(sizeof buf, &full), 0);
        for (size_t cap = 0; cap < full; cap++) {
            len = 99;
            r = ENC(cap, &len);
            if (r != ENOSPC)
                fail_msg("encoder %d cap %zu of %zu: %d", e, cap, full, r);
            assert_int_equal(len, 0);
        }
        assert_int_equal(ENC(full, &len), 0);
        assert_int_equal(len, full);
#undef ENC
    }
}

/* ---- decoder: what real bots send ---- */

static void test_decode_pipecat_media(void **state)
{
    (void)state;
    /* 320-byte (8 kHz, 40 ms), 1,100-byte bursts, 16,500 bytes of silence before hang-up */
    const size_t sizes[] = {160, 320, 1100, 16500, 1, 2, 3};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *a = malloc(n);
        for (size_t k = 0; k < n; k++)
            a[k] = n == 16500 ? 0xFF : (uint8_t)(k * 131 + n);
        char *msg = pipecat_media(a, n);
        memset(audio, 0xAA, sizeof audio);
        ACCEPT(msg, TL_TW_MEDIA);
        assert_int_equal(M.audio_len, n);
        assert_memory_equal(audio, a, n);
        assert_false(M.stream_sid_wrong);
        /* exactly the room it needs is enough; one byte less is E2BIG */
        assert_int_equal(tl_tw_decode(msg, strlen(msg), MZ, &M, audio, n, why, sizeof why), 0);
        assert_int_equal(M.audio_len, n);
        assert_int_equal(tl_tw_decode(msg, strlen(msg), MZ, &M, audio, n - 1, why, sizeof why),
                         E2BIG);
        assert_int_equal(M.kind, TL_TW_IGNORED);
        assert_non_null(strstr(why, "payload"));
        free(msg);
        free(a);
    }
    ACCEPT("{\"event\":\"clear\",\"streamSid\":\"" MZ "\"}", TL_TW_CLEAR);
    /* an empty payload is 0 bytes of audio */
    ACCEPT("{\"event\":\"media\",\"media\":{\"payload\":\"\"}}", TL_TW_MEDIA);
    assert_int_equal(M.audio_len, 0);
}

static void test_decode_twilio_shaped_media(void **state)
{
    (void)state;
    /* our own media frame, as an echo bot sends it back: every Twilio member present */
    uint8_t ulaw[160];
    for (int i = 0; i < 160; i++)
        ulaw[i] = (uint8_t)(255 - i);
    assert_int_equal(tl_tw_media(buf, sizeof buf, &len, MZ, 42, 41, 800, ulaw, 160), 0);
    assert_int_equal(tl_tw_decode(buf, len, MZ, &M, audio, sizeof audio, why, sizeof why), 0);
    assert_int_equal(M.kind, TL_TW_MEDIA);
    assert_int_equal(M.audio_len, 160);
    assert_memory_equal(audio, ulaw, 160);
    /* PHP's json_encode writes "\/"; any escape is its character */
    ACCEPT("{\"event\":\"media\",\"media\":{\"payload\":\"\\/\\/8\\u002b\"}}", TL_TW_MEDIA);
    assert_int_equal(M.audio_len, 3);
    assert_memory_equal(audio, "\xff\xff\x3e", 3);
    ACCEPT("{\"event\":\"media\",\"media\":{\"payload\":\"QQ\\u003d=\"}}", TL_TW_MEDIA);
    assert_int_equal(M.audio_len, 1);
    assert_int_equal(audio[0], 'A');
}

static void test_decode_marks(void **state)
{
    (void)state;
    /* OpenAI realtime demo: a mark with a name, and one with no mark object at all */
    ACCEPT("{\"event\":\"mark\",\"streamSid\":\"" MZ "\",\"mark\":{\"name\":\"responsePart\"}}",
           TL_TW_MARK);
    assert_string_equal(M.name, "responsePart");
    ACCEPT("{\"event\":\"mark\",\"streamSid\":\"" MZ "\"}", TL_TW_MARK);
    assert_string_equal(M.name, "");
    ACCEPT("{\"event\":\"mark\",\"mark\":{}}", TL_TW_MARK);
    assert_string_equal(M.name, "");
    ACCEPT("{\"event\":\"mark\",\"mark\":{\"name\":\"\"}}", TL_TW_MARK);
    assert_string_equal(M.name, "");
    /* Vocode: a uuid per chunk */
    ACCEPT("{\"event\": \"mark\", \"streamSid\": \"" MZ "\", \"mark\": {\"name\": "
           "\"3f2b7c1e-8a4d-4e6f-9b0a-1c2d3e4f5a6b\"}}",
           TL_TW_MARK);
    assert_string_equal(M.name, "3f2b7c1e-8a4d-4e6f-9b0a-1c2d3e4f5a6b");
    /* escapes decoded: \n, é, a surrogate pair (U+1F600) */
    ACCEPT("{\"event\":\"mark\",\"mark\":{\"name\":\"a\\nb\\u00e9\\ud83d\\ude00\xc3\xa9\"}}",
           TL_TW_MARK);
    assert_string_equal(M.name, "a\nb\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9");

    /* a name of exactly TL_TW_NAME_MAX bytes after unescaping; one more is E2BIG */
    char msg[2048], name[TL_TW_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    name[TL_TW_NAME_MAX] = '\0';
    snprintf(msg, sizeof msg, "{\"event\":\"mark\",\"mark\":{\"name\":\"%s\"}}", name);
    ACCEPT(msg, TL_TW_MARK);
    assert_string_equal(M.name, name);
    name[TL_TW_NAME_MAX] = 'n';
    name[TL_TW_NAME_MAX + 1] = '\0';
    snprintf(msg, sizeof msg, "{\"event\":\"mark\",\"mark\":{\"name\":\"%s\"}}", name);
    REFUSE(msg, E2BIG, "mark name over 256 bytes");
    /* escaped: 2 bytes each (é), 128 fit, 129 do not */
    char *q = msg + sprintf(msg, "{\"event\":\"mark\",\"mark\":{\"name\":\"");
    for (int i = 0; i < 128; i++)
        q += sprintf(q, "\\u00e9");
    sprintf(q, "\"}}");
    ACCEPT(msg, TL_TW_MARK);
    assert_int_equal(strlen(M.name), 256);
    q = msg + sprintf(msg, "{\"event\":\"mark\",\"mark\":{\"name\":\"");
    for (int i = 0; i < 129; i++)
        q += sprintf(q, "\\u00e9");
    sprintf(q, "\"}}");
    REFUSE(msg, E2BIG, "mark name");

    REFUSE("{\"event\":\"mark\",\"mark\":{\"name\":7}}", EBADMSG, "mark name is not a string");
    REFUSE("{\"event\":\"mark\",\"mark\":\"x\"}", EBADMSG, "mark is not an object");
    REFUSE("{\"event\":\"mark\",\"mark\":{\"name\":\"a\\u0000b\"}}", EBADMSG, "U+0000");
}

/* A mark name we decode comes back unchanged through our encoder. */
static void test_mark_round_trip(void **state)
{
    (void)state;
    const char *msgs[] = {
        "{\"event\":\"mark\",\"mark\":{\"name\":\"\\\"quoted\\\" \\\\ \\t \\u001f \\/\"}}",
        "{\"event\":\"mark\",\"mark\":{\"name\":\"\xe2\x82\xac \\ud83d\\ude00\"}}",
    };
    for (size_t i = 0; i < 2; i++) {
        ACCEPT(msgs[i], TL_TW_MARK);
        char name[TL_TW_NAME_MAX + 1];
        strcpy(name, M.name);
        assert_int_equal(tl_tw_mark(buf, sizeof buf, &len, MZ, 1, name), 0);
        assert_int_equal(tl_tw_decode(buf, len, MZ, &M, audio, sizeof audio, why, sizeof why), 0);
        assert_int_equal(M.kind, TL_TW_MARK);
        assert_string_equal(M.name, name);
    }
}

static void test_decode_extensions(void **state)
{
    (void)state;
    ACCEPT("{\"event\":\"hangup\",\"streamSid\":\"" MZ "\"}", TL_TW_HANGUP);
    assert_string_equal(M.reason, "");
    ACCEPT("{\"event\":\"hangup\",\"hangup\":{\"reason\":\"caller asked to end\"}}", TL_TW_HANGUP);
    assert_string_equal(M.reason, "caller asked to end");
    ACCEPT("{\"event\":\"hangup\",\"hangup\":{}}", TL_TW_HANGUP);

    ACCEPT("{\"event\":\"transfer\",\"transfer\":{\"target\":\"+493012345678\"}}", TL_TW_TRANSFER);
    assert_string_equal(M.target, "+493012345678");
    ACCEPT("{\"event\":\"transfer\",\"transfer\":{\"target\":\"sip:sales@pbx.example.com;"
           "transport=tls\"}}",
           TL_TW_TRANSFER);
    assert_string_equal(M.target, "sip:sales@pbx.example.com;transport=tls");
    REFUSE("{\"event\":\"transfer\",\"transfer\":{\"target\":\"0301234\"}}", EBADMSG,
           "transfer target");
    REFUSE("{\"event\":\"transfer\",\"transfer\":{\"target\":\"sip:a@b>\\r\\nX: y\"}}", EBADMSG,
           "transfer target");
    REFUSE("{\"event\":\"transfer\",\"transfer\":{}}", EBADMSG, "transfer without target");
    REFUSE("{\"event\":\"transfer\"}", EBADMSG, "transfer without target");
    REFUSE("{\"event\":\"transfer\",\"transfer\":\"+493012345678\"}", EBADMSG,
           "transfer is not an object");
    REFUSE("{\"event\":\"transfer\",\"transfer\":{\"target\":null}}", EBADMSG, "not a string");

    ACCEPT("{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"0123456789*#ABCDw\"}}",
           TL_TW_SEND_DIGITS);
    assert_string_equal(M.digits, "0123456789*#ABCDw");
    ACCEPT("{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"1abcdW#\"}}", TL_TW_SEND_DIGITS);
    assert_string_equal(M.digits, "1ABCDw#");
    REFUSE("{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"12 3\"}}", EBADMSG,
           "sendDigits digits");
    REFUSE("{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"E\"}}", EBADMSG,
           "sendDigits digits");
    REFUSE("{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"\"}}", EBADMSG, "digits");
    REFUSE("{\"event\":\"sendDigits\",\"sendDigits\":{}}", EBADMSG, "sendDigits without digits");
    char msg[256], d[TL_TW_DIGITS_MAX + 2];
    memset(d, '1', sizeof d);
    d[TL_TW_DIGITS_MAX] = '\0';
    snprintf(msg, sizeof msg, "{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"%s\"}}", d);
    ACCEPT(msg, TL_TW_SEND_DIGITS);
    d[TL_TW_DIGITS_MAX] = '1';
    d[TL_TW_DIGITS_MAX + 1] = '\0';
    snprintf(msg, sizeof msg, "{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"%s\"}}", d);
    REFUSE(msg, E2BIG, "sendDigits over 64");
}

static void test_decode_member_order_and_unknowns(void **state)
{
    (void)state;
    /* event last, payload before other members, unknown members of every JSON type */
    ACCEPT(
        " \t\r\n{ \"media\" : { \"payload\" : \"AAEC\" , \"track\" : \"outbound\", "
        "\"chunk\":\"9\"},\"extra\":[ 1 ,\n-0.5e+3,\ttrue , false,null,{ \"a\" : [ ] , \"b\":{ }},"
        "\"s\", 0, -0, 12.50E-1, 1e9 ] ,"
        "\"sequenceNumber\":\"2\",\"streamSid\":\"" MZ "\",\"event\":\"media\" } \n",
        TL_TW_MEDIA);
    assert_int_equal(M.audio_len, 3);
    assert_memory_equal(audio, "\x00\x01\x02", 3);
    /* "payload" outside media, "name" outside mark: not what we read */
    ACCEPT("{\"payload\":\"!!\",\"name\":5,\"event\":\"mark\",\"mark\":{\"name\":\"x\"}}",
           TL_TW_MARK);
    /* member names are compared by value */
    ACCEPT("{\"\\u0065vent\":\"m\\u0061rk\",\"m\\u0061rk\":{\"n\\u0061me\":\"e\"}}", TL_TW_MARK);
    assert_string_equal(M.name, "e");

    /* events we do nothing with: ours echoed back, unknown ones, another case */
    const char *ign[] = {
        "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}",
        "{\"event\":\"start\",\"start\":{\"streamSid\":\"" MZ "\"}}",
        "{\"event\":\"stop\"}",
        "{\"event\":\"dtmf\",\"dtmf\":{\"digit\":\"1\"}}",
        "{\"event\":\"Media\",\"media\":{\"payload\":\"AAEC\"}}",
        "{\"event\":\"\"}",
        "{\"event\":\"aVeryLongEventNameThatIsNotOurs\"}",
        "{\"event\":\"x\\u0000y\"}",
        "{\"event\":\"ping\",\"media\":\"not an object\",\"mark\":7}",
        "{\"event\":\"\xe2\x82\xac\"}",
    };
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        ACCEPT(ign[i], TL_TW_IGNORED);

    /* streamSid: flagged when not ours, not when absent or when we do not check */
    ACCEPT("{\"event\":\"clear\",\"streamSid\":\"MZffffffffffffffffffffffffffffffff\"}",
           TL_TW_CLEAR);
    assert_true(M.stream_sid_wrong);
    ACCEPT("{\"event\":\"clear\",\"streamSid\":\"" MZ "x\"}", TL_TW_CLEAR);
    assert_true(M.stream_sid_wrong);
    ACCEPT("{\"event\":\"clear\",\"streamSid\":\"\"}", TL_TW_CLEAR);
    assert_true(M.stream_sid_wrong);
    ACCEPT("{\"event\":\"clear\"}", TL_TW_CLEAR);
    assert_false(M.stream_sid_wrong);
    ACCEPT("{\"event\":\"clear\",\"streamSid\":\"MZ\\u0030123456789abcdef0123456789abcdef\"}",
           TL_TW_CLEAR);
    assert_false(M.stream_sid_wrong);
    const char other[] = "{\"event\":\"clear\",\"streamSid\":\"MZother\"}";
    assert_int_equal(tl_tw_decode(other, strlen(other), NULL, &M, NULL, 0, NULL, 0), 0);
    assert_false(M.stream_sid_wrong);
    REFUSE("{\"event\":\"clear\",\"streamSid\":null}", EBADMSG, "streamSid is not a string");
}

/* Depth: the message itself is level 1; 8 levels parse, 9 do not. */
static void test_decode_depth(void **state)
{
    (void)state;
    char msg[256];
    /* {"event":"x","a":[[[[[[[1]]]]]]]} is 8 levels: the object and 7 arrays */
    snprintf(msg, sizeof msg, "{\"event\":\"x\",\"a\":%s1%s}", "[[[[[[[", "]]]]]]]");
    ACCEPT(msg, TL_TW_IGNORED);
    snprintf(msg, sizeof msg, "{\"event\":\"x\",\"a\":%s1%s}", "[[[[[[[[", "]]]]]]]]");
    REFUSE(msg, EBADMSG, "message nests deeper than 8");
    snprintf(msg, sizeof msg, "{\"event\":\"x\",\"a\":%s%s}",
             "{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{}", "}}}}}}");
    ACCEPT(msg, TL_TW_IGNORED);
    snprintf(msg, sizeof msg, "{\"event\":\"x\",\"a\":%s%s}",
             "{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{}", "}}}}}}}");
    REFUSE(msg, EBADMSG, "message nests deeper than 8");
    /* inside a member we read */
    REFUSE("{\"event\":\"mark\",\"mark\":{\"x\":[[[[[[[1]]]]]]]}}", EBADMSG, "nests deeper");
    ACCEPT("{\"event\":\"mark\",\"mark\":{\"x\":[[[[[[1]]]]]]}}", TL_TW_MARK);
    /* deep enough to blow a stack without the cap */
    static char deep[200001];
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    char *d2 = malloc(200100);
    snprintf(d2, 200100, "{\"event\":\"x\",\"a\":%s}", deep);
    REFUSE(d2, EBADMSG, "nests deeper");
    free(d2);
}

static void test_decode_media_refusals(void **state)
{
    (void)state;
    REFUSE("{\"event\":\"media\"}", EBADMSG, "media without payload");
    REFUSE("{\"event\":\"media\",\"media\":{}}", EBADMSG, "media without payload");
    REFUSE("{\"event\":\"media\",\"media\":{\"track\":\"x\"}}", EBADMSG, "media without payload");
    REFUSE("{\"event\":\"media\",\"media\":\"AAEC\"}", EBADMSG, "media is not an object");
    REFUSE("{\"event\":\"media\",\"media\":{\"payload\":null}}", EBADMSG,
           "payload is not a string");
    REFUSE("{\"event\":\"media\",\"media\":{\"payload\":[\"AAEC\"]}}", EBADMSG,
           "payload is not a string");
    /* what libsodium's ORIGINAL variant refuses */
    const char *b64bad[] = {
        "QQ",          /* no padding */
        "QUI",         /* no padding */
        "QQ=",         /* short padding */
        "Q===",        /* padding too early */
        "====",        /* padding only */
        "QQ==QQ==",    /* data after padding */
        "QUI=QQ==",    /* data after padding */
        "QQ===",       /* too much padding */
        "QR==",        /* unused bits set */
        "QUJ=",        /* unused bits set */
        "AA EC",       /* whitespace */
        "AAEC\\n",     /* a line break, escaped */
        "-_-_",        /* URL-safe alphabet */
        "AAE\xc3\xa9", /* not ASCII */
        "AAE\\u00e9",  /* not ASCII, escaped */
        "AAE\\\"",     /* a quote, escaped */
        "AAE\\\\",     /* a backslash, escaped */
        "A",
    };
    char msg[256];
    for (size_t i = 0; i < sizeof b64bad / sizeof b64bad[0]; i++) {
        snprintf(msg, sizeof msg, "{\"event\":\"media\",\"media\":{\"payload\":\"%s\"}}",
                 b64bad[i]);
        REFUSE(msg, EBADMSG, "payload is not base64");
    }
    /* bad base64 in a long payload: the fast loop hands over mid-way */
    char *big = malloc(30000);
    char *q = big + sprintf(big, "{\"event\":\"media\",\"media\":{\"payload\":\"");
    memset(q, 'A', 20000);
    q[10001] = '*';
    strcpy(q + 20000, "\"}}");
    REFUSE(big, EBADMSG, "payload is not base64");
    /* and over the cap and invalid JSON after it: the JSON error wins */
    q[10001] = 'A';
    assert_int_equal(tl_tw_decode(big, strlen(big), MZ, &M, audio, 100, why, sizeof why), E2BIG);
    strcpy(q + 20000, "\"}");
    assert_int_equal(tl_tw_decode(big, strlen(big), MZ, &M, audio, 100, why, sizeof why), EBADMSG);
    assert_non_null(strstr(why, "not JSON"));
    free(big);
    /* nowhere to put audio */
    const char four[] = "{\"event\":\"media\",\"media\":{\"payload\":\"AAAA\"}}";
    const char none[] = "{\"event\":\"media\",\"media\":{\"payload\":\"\"}}";
    assert_int_equal(tl_tw_decode(four, strlen(four), MZ, &M, NULL, 0, why, sizeof why), E2BIG);
    assert_int_equal(tl_tw_decode(none, strlen(none), MZ, &M, NULL, 0, why, sizeof why), 0);
    /* a bad payload in a message that is not media does not matter */
    ACCEPT("{\"event\":\"clear\",\"media\":{\"payload\":\"!!\"}}", TL_TW_CLEAR);
}

static void test_decode_refusals(void **state)
{
    (void)state;
    const struct {
        const char *msg, *why;
    } cases[] = {
        {"", "not JSON"},
        {"   \r\n", "not JSON"},
        {"event", "not JSON"},
        {"\"event\"", "not JSON"},
        {"42", "not JSON"},
        {"null", "not JSON"},
        {"[{\"event\":\"clear\"}]", "an array"},
        {"\xef\xbb\xbf{\"event\":\"clear\"}", "not JSON"}, /* a BOM */
        {"{\"event\":\"clear\"", "not JSON"},
        {"{\"event\":\"clear\",}", "not JSON"},
        {"{,\"event\":\"clear\"}", "not JSON"},
        {"{\"event\" \"clear\"}", "not JSON"},
        {"{\"event\":\"clear\" \"x\":1}", "not JSON"},
        {"{\"event\":'clear'}", "not JSON"},
        {"{event:\"clear\"}", "not JSON"},
        {"{\"event\":\"clear\"}}", "not one JSON object"},
        {"{\"event\":\"clear\"} x", "not one JSON object"},
        {"{\"event\":\"clear\"}{\"event\":\"clear\"}", "not one JSON object"},
        {"{\"event\":\"clear\"}\n{\"event\":\"clear\"}", "not one JSON object"},
        {"{\"event\":\"clear\",\"a\":[1,]}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":[", "not JSON"},
        {"{\"event\":\"clear\",\"a\":[1,", "not JSON"},
        {"{\"event\":\"clear\",\"a\":[1 ,\n", "not JSON"},
        {"{\"event\":\"clear\",\"a\":[[", "not JSON"},
        {"{\"event\":\"clear\",\"a\":{\"b\":", "not JSON"},
        {"{\"event\":\"clear\",\"event\":\"clear\",}", "not JSON"}, /* syntax before duplicates */
        {"{\"event\":\"clear\",\"event\":\"clear\"} x", "not one JSON object"},
        {"{\"event\":\"clear\",\"a\":[1 2]}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":[}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":tru}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":True}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":nul}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":01}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":1.}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":.5}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":+1}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":-}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":1e}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":1e+}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":0x10}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":NaN}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":Infinity}", "not JSON"},
        {"{\"event\":\"clear\",\"a\":\"\\x\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\u12G4\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\u123\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\U0041\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\ud800\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\ud800x\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\ud800\\u0041\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\ud800\\ud800\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\udc00\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\udfff\\ud800\"}", "invalid escape"},
        {"{\"event\":\"clear\",\"a\":\"\\", "not JSON"},
        {"{\"event\":\"clear\",\"a\":\"a\tb\"}", "control character"},
        {"{\"event\":\"clear\",\"a\":\"a\nb\"}", "control character"},
        {"{\"event\":\"clear\",\"a\":\"a\x1f\"}", "control character"},
        {"{\"event\":\"clear\",\"a\":\"\xc3\x28\"}", "not UTF-8"},
        {"{\"event\":\"clear\",\"a\":\"\xed\xa0\x80\"}", "not UTF-8"},
        {"{\"event\":\"clear\",\"a\":\"\xc0\xaf\"}", "not UTF-8"},
        {"{\"event\":\"clear\",\"a\":\"\xf4\x90\x80\x80\"}", "not UTF-8"},
        {"{\"event\":\"clear\",\"a\":\"\xe2\x82\"}", "not UTF-8"},
        {"{\"event\":\"clear\",\"\xff\":1}", "not UTF-8"},
        {"{\"event\":\"clear\",\"a\":\"\xe2\x82", "not UTF-8"},
        {"{\"event\":\"clear\"\xc2\xa0}", "not JSON"}, /* NBSP is no JSON space */
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AA\tEC\"}}", "control character"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AAEC", "not JSON"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AAEC\\", "not JSON"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AA\\qEC\"}}", "invalid escape"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AA\xc3\"}}", "not UTF-8"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AAEC\"}", "not JSON"},
        {"{}", "no event"},
        {"{\"streamSid\":\"" MZ "\",\"media\":{\"payload\":\"AAEC\"}}", "no event"},
        {"{\"event\":7}", "event is not a string"},
        {"{\"event\":null}", "event is not a string"},
        {"{\"event\":[\"media\"]}", "event is not a string"},
        {"{\"event\":{\"name\":\"media\"}}", "event is not a string"},
        {"{\"event\":\"clear\",\"event\":\"clear\"}", "duplicate member event"},
        {"{\"event\":\"clear\",\"\\u0065vent\":\"mark\"}", "duplicate member event"},
        {"{\"event\":\"clear\",\"streamSid\":\"a\",\"streamSid\":\"b\"}",
         "duplicate member streamSid"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AAEC\"},\"media\":{\"payload\":\"AAEC\"}}",
         "duplicate member media"},
        {"{\"event\":\"media\",\"media\":{\"payload\":\"AAEC\",\"payload\":\"AAEC\"}}",
         "duplicate member media.payload"},
        {"{\"event\":\"media\",\"media\":{\"payload\":1,\"payload\":\"AAEC\"}}",
         "duplicate member media.payload"},
        {"{\"event\":\"mark\",\"mark\":{\"name\":\"a\",\"name\":\"b\"}}",
         "duplicate member mark.name"},
        {"{\"event\":\"mark\",\"mark\":{},\"mark\":{}}", "duplicate member mark"},
        {"{\"event\":\"hangup\",\"hangup\":{\"reason\":\"a\",\"reason\":\"a\"}}", "duplicate"},
        {"{\"event\":\"transfer\",\"transfer\":{\"target\":\"+493012345678\"},\"transfer\":{}}",
         "duplicate"},
        {"{\"event\":\"sendDigits\",\"sendDigits\":{\"digits\":\"1\",\"digits\":\"2\"}}",
         "duplicate"},
        {"{\"event\":\"hangup\",\"hangup\":{\"reason\":5}}", "hangup reason is not a string"},
        {"{\"event\":\"hangup\",\"hangup\":true}", "hangup is not an object"},
        {"{\"event\":\"sendDigits\",\"sendDigits\":[\"1\"]}", "sendDigits is not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].msg;
        int r = tl_tw_decode(s, strlen(s), MZ, &M, audio, sizeof audio, why, sizeof why);
        if (r != EBADMSG || !strstr(why, cases[i].why))
            fail_msg("case %zu %s: %d \"%s\", want EBADMSG \"%s\"", i, s, r, why, cases[i].why);
        assert_int_equal(M.kind, TL_TW_IGNORED);
    }
    /* a NUL after the object is more text, not an end */
    assert_int_equal(
        tl_tw_decode("{\"event\":\"clear\"}", 18, MZ, &M, audio, sizeof audio, why, sizeof why),
        EBADMSG);
    assert_non_null(strstr(why, "not one JSON object"));
    /* why is cut to its buffer; NULL why is fine; NULL text is empty */
    char small[8];
    assert_int_equal(tl_tw_decode("[]", 2, MZ, &M, audio, sizeof audio, small, sizeof small),
                     EBADMSG);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(tl_tw_decode("[]", 2, MZ, &M, audio, sizeof audio, NULL, 0), EBADMSG);
    assert_int_equal(tl_tw_decode(NULL, 0, MZ, &M, audio, sizeof audio, why, sizeof why), EBADMSG);
    assert_int_equal(tl_tw_decode("{}", 2, MZ, NULL, audio, sizeof audio, why, sizeof why), EINVAL);
    /* a message cut anywhere is refused */
    const char whole[] = "{\"event\":\"mark\",\"streamSid\":\"" MZ "\",\"mark\":{\"name\":\"a\"},"
                         "\"x\":[1.5e3,true,null,{\"y\":\"\\u00e9\"}]}";
    for (size_t n = 0; n < sizeof whole - 1; n++) {
        int r = tl_tw_decode(whole, n, MZ, &M, audio, sizeof audio, why, sizeof why);
        if (r != EBADMSG)
            fail_msg("cut at %zu accepted", n);
    }
    assert_int_equal(
        tl_tw_decode(whole, sizeof whole - 1, MZ, &M, audio, sizeof audio, why, sizeof why), 0);
}

static void test_target_valid(void **state)
{
    (void)state;
    const char *ok[] = {"+49301234",
                        "+493012345678",
                        "+123456789012345",
                        "sip:alice@example.com",
                        "SIP:alice@example.com:5061;transport=tls",
                        "sips:+493012345678@carrier.example;user=phone",
                        "sip:[2001:db8::1]",
                        "sip:a"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (tl_tw_target_valid(ok[i]))
            fail_msg("%s refused", ok[i]);
    const char *no[] = {NULL,
                        "",
                        "+",
                        "+4930123",          /* 7 digits */
                        "+1234567890123456", /* 16 digits */
                        "+0493012345678",
                        "+49 30 1234567",
                        "493012345678",
                        "tel:+493012345678",
                        "sip:",
                        "sips:",
                        "sip:a b@example.com",
                        "sip:a@example.com>",
                        "<sip:a@example.com>",
                        "sip:a@example.com\r\nX-Evil: 1",
                        "sip:a@ex\"ample.com",
                        "sip:caf\xc3\xa9@example.com",
                        "sip:a@example.com\x7f",
                        "http://example.com"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (tl_tw_target_valid(no[i]) != EINVAL)
            fail_msg("%s accepted", no[i] ? no[i] : "NULL");
    char longt[TL_TW_TARGET_MAX + 2];
    memcpy(longt, "sip:", 4);
    memset(longt + 4, 'a', TL_TW_TARGET_MAX - 4);
    longt[TL_TW_TARGET_MAX] = '\0';
    assert_int_equal(tl_tw_target_valid(longt), 0);
    longt[TL_TW_TARGET_MAX] = 'a';
    longt[TL_TW_TARGET_MAX + 1] = '\0';
    assert_int_equal(tl_tw_target_valid(longt), EINVAL);
    /* the decoder: a target over the cap is E2BIG */
    char msg[1024];
    snprintf(msg, sizeof msg, "{\"event\":\"transfer\",\"transfer\":{\"target\":\"%s\"}}", longt);
    REFUSE(msg, E2BIG, "transfer target over 512 bytes");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sid_shapes),
        cmocka_unit_test(test_connected_exact),
        cmocka_unit_test(test_start_exact),
        cmocka_unit_test(test_start_escapes_nasty_values),
        cmocka_unit_test(test_media_exact),
        cmocka_unit_test(test_dtmf_mark_stop_transfer_exact),
        cmocka_unit_test(test_encoders_enospc),
        cmocka_unit_test(test_decode_pipecat_media),
        cmocka_unit_test(test_decode_twilio_shaped_media),
        cmocka_unit_test(test_decode_marks),
        cmocka_unit_test(test_mark_round_trip),
        cmocka_unit_test(test_decode_extensions),
        cmocka_unit_test(test_decode_member_order_and_unknowns),
        cmocka_unit_test(test_decode_depth),
        cmocka_unit_test(test_decode_media_refusals),
        cmocka_unit_test(test_decode_refusals),
        cmocka_unit_test(test_target_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
