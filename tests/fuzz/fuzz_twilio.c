/* libFuzzer target for the agent message decoder (src/agent/twilio.c), which reads what
 * any WebSocket server sends us. Besides memory safety it checks:
 *   - results: 0, EBADMSG or E2BIG; a reason on every refusal and none on success;
 *     audio_len within the cap (a roomy one and a 20 ms one); copied strings within theirs;
 *   - the JSON grammar against jansson: what we take as JSON jansson parses (apart from
 *     jansson's own limits), what jansson parses we do not call "not JSON" unless it nests
 *     deeper than we allow;
 *   - base64 against libsodium's ORIGINAL variant: for a media message both agree on
 *     validity and bytes;
 *   - a decoded mark name survives our encoder and decoder unchanged; the input as a mark
 *     name to the encoder is refused only when it is not UTF-8 and otherwise reads back
 *     equal through jansson. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "agent/twilio.h"

#define MZ "MZ0123456789abcdef0123456789abcdef"

static uint8_t audio[65536], audio2[161], ref[65536];
static char out[1 << 20];

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_result(int r, const struct tl_tw_msg *m, size_t cap, const char *why)
{
    CHECK(r == 0 || r == EBADMSG || r == E2BIG);
    CHECK(r ? why[0] != '\0' : why[0] == '\0');
    CHECK(r == 0 || m->kind == TL_TW_IGNORED);
    CHECK(m->audio_len <= cap);
    CHECK(strlen(m->name) <= TL_TW_NAME_MAX && strlen(m->target) <= TL_TW_TARGET_MAX);
    CHECK(strlen(m->digits) <= TL_TW_DIGITS_MAX && strlen(m->reason) <= TL_TW_REASON_MAX);
    if (r == 0 && m->kind == TL_TW_TRANSFER)
        CHECK(tl_tw_target_valid(m->target) == 0);
    if (r == 0 && m->kind == TL_TW_SEND_DIGITS) {
        CHECK(m->digits[0]);
        for (const char *p = m->digits; *p; p++)
            CHECK(strchr("0123456789*#ABCDw", *p));
    }
}

/* The message's nesting depth (the object is 1), counted outside strings. */
static int depth_of(const uint8_t *d, size_t n)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        if (in_str) {
            if (d[i] == '\\')
                i++;
            else if (d[i] == '"')
                in_str = false;
        } else if (d[i] == '"') {
            in_str = true;
        } else if (d[i] == '{' || d[i] == '[') {
            if (++depth > max)
                max = depth;
        } else if (d[i] == '}' || d[i] == ']') {
            depth--;
        }
    }
    return max;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return sodium_init() < 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct tl_tw_msg m, m2;
    char why[96], why2[96];
    const char *p = (const char *)d;

    int r = tl_tw_decode(p, n, MZ, &m, audio, sizeof audio, why, sizeof why);
    check_result(r, &m, sizeof audio, why);
    int rs = tl_tw_decode(p, n, MZ, &m2, audio2 + 1, 160, why2, sizeof why2);
    check_result(rs, &m2, 160, why2);
    /* a smaller cap changes only payloads: too big for it, or too big before the byte
     * that makes them invalid */
    CHECK(rs == r || (rs == E2BIG && strstr(why2, "payload") &&
                      ((r == 0 && m.kind == TL_TW_MEDIA && m.audio_len > 160) ||
                       (r == EBADMSG && strstr(why, "payload is not base64")))));
    if (r == 0 && m.kind == TL_TW_MEDIA && m.audio_len <= 160)
        CHECK(m2.audio_len == m.audio_len);

    /* the grammar, against jansson */
    bool ours_json = !(r == EBADMSG &&
                       (strncmp(why, "not JSON", 8) == 0 || strncmp(why, "not one JSON", 12) == 0 ||
                        strstr(why, "nests deeper") != NULL));
    json_error_t je;
    json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, &je);
    /* jansson's own limits: integers beyond 64 bits, reals beyond double, U+0000 in a name */
    if (ours_json && !(r == EBADMSG && strstr(why, "an array")))
        CHECK(j || strstr(je.text, "too big") || strstr(je.text, "overflow") ||
              strstr(je.text, "NUL byte in object key"));
    /* jansson takes a NUL byte after a number for the end of the text; JSON does not */
    if (j && json_is_object(j) && depth_of(d, n) <= TL_TW_DEPTH_MAX && !memchr(d, 0, n))
        CHECK(ours_json);

    /* base64, against libsodium: for media, the payload jansson sees. libsodium 1.0.18
     * (Debian 12) takes bytes from 0x80 up for alphabet characters (a signed char in its
     * constant-time lookup): there we must refuse and it is no oracle. */
    json_t *ev = j ? json_object_get(j, "event") : NULL;
    json_t *pl = j ? json_object_get(json_object_get(j, "media"), "payload") : NULL;
    bool about_payload = r == 0 || r == E2BIG || (strstr(why, "payload") && !strstr(why, "dupl"));
    if (about_payload && json_is_string(ev) && !strcmp(json_string_value(ev), "media") &&
        json_is_string(pl)) {
        const char *s = json_string_value(pl);
        size_t sl = json_string_length(pl), rl = 0;
        bool ascii = true;
        for (size_t i = 0; i < sl; i++)
            ascii = ascii && (unsigned char)s[i] < 0x80;
        int sr = sodium_base642bin(ref, sizeof ref, s, sl, NULL, &rl, NULL,
                                   sodium_base64_VARIANT_ORIGINAL);
        bool bad64 = r == EBADMSG && strstr(why, "payload is not base64");
        if (!ascii)
            CHECK(r == E2BIG || bad64);
        else if (r == 0)
            CHECK(m.kind == TL_TW_MEDIA && sr == 0 && rl == m.audio_len &&
                  memcmp(ref, audio, rl) == 0);
        else if (bad64)
            CHECK(sr != 0);
    }
    json_decref(j);

    /* a decoded mark name comes back through our encoder and decoder unchanged */
    if (r == 0 && m.kind == TL_TW_MARK) {
        size_t len;
        CHECK(tl_tw_mark(out, sizeof out, &len, MZ, 1, m.name) == 0);
        CHECK(tl_tw_decode(out, len, MZ, &m2, NULL, 0, why, sizeof why) == 0);
        CHECK(m2.kind == TL_TW_MARK && strcmp(m2.name, m.name) == 0 && !m2.stream_sid_wrong);
    }

    /* the input as a string value to the encoder: escaped so that jansson reads it back */
    if (n < 4096) {
        char s[4096];
        memcpy(s, d, n);
        s[n] = '\0';
        size_t len;
        int er = tl_tw_mark(out, sizeof out, &len, MZ, 1, s);
        CHECK(er == (tl_tw_utf8_valid(s) ? 0 : EINVAL));
        if (er == 0) {
            json_t *jm = json_loadb(out, len, 0, &je);
            CHECK(jm);
            json_t *nm = json_object_get(json_object_get(jm, "mark"), "name");
            CHECK(json_is_string(nm) && strcmp(json_string_value(nm), s) == 0);
            json_decref(jm);
        }
    }
    return 0;
}
