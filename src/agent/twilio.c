/* agent/twilio: the Twilio Media Streams codec (twilio.h, docs/agents.md).
 *
 * Encoders write into the caller's buffer through a bounded writer; the media encoder,
 * which runs for every 20 ms frame of every call, checks the room for its base64 once and
 * then writes without further checks. The decoder is a recursive-descent reader of one
 * JSON object that never allocates: it validates the whole text (RFC 8259 grammar, UTF-8,
 * escapes, surrogate pairs, depth), remembers slices of the few members it reads and
 * unescapes only those, after the scan, into the fixed fields of struct tl_tw_msg. The
 * base64 payload of a media message is decoded while its string is scanned, so a media
 * message is read once. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "agent/twilio.h"
#include "core/core.h"
#include "core/pl.h"

/* ---- SIDs ---- */

void tl_tw_sid_new(char out[TL_TW_SID_LEN + 1], const char *prefix)
{
    /* a prefix that is not two characters would make a SID of the wrong shape that a bot
     * might still accept: give nothing instead */
    if (!prefix || strnlen(prefix, 3) != 2) {
        out[0] = '\0';
        return;
    }
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    out[0] = prefix[0];
    out[1] = prefix[1];
    sodium_bin2hex(out + 2, TL_TW_SID_LEN - 1, rnd, sizeof rnd); /* lowercase, NUL-ended */
}

bool tl_tw_sid_valid(const char *s, const char *prefix)
{
    if (!s || !prefix || strnlen(prefix, 3) != 2 || strnlen(s, TL_TW_SID_LEN + 1) != TL_TW_SID_LEN)
        return false;
    if (s[0] != prefix[0] || s[1] != prefix[1])
        return false;
    for (size_t i = 2; i < TL_TW_SID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- UTF-8 ---- */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0. Reads s[1], s[2], … only while the bytes
 * before them were continuation bytes, so a NUL-terminated string needs no length. */
static size_t utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < 2 || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (i >= n || (s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

bool tl_tw_utf8_valid(const char *s)
{
    if (!s)
        return false;
    for (const uint8_t *p = (const uint8_t *)s; *p;) {
        size_t l = utf8_len(p, 4);
        if (!l)
            return false;
        p += l;
    }
    return true;
}

/* ---- the bounded writer of the encoders ---- */

struct w {
    char *p, *e;
    int err; /* the first error: ENOSPC or EINVAL; later writes do nothing */
};

static void w_raw(struct w *w, const char *s, size_t n)
{
    if (w->err)
        return;
    if ((size_t)(w->e - w->p) < n) {
        w->err = ENOSPC;
        return;
    }
    memcpy(w->p, s, n);
    w->p += n;
}
#define W_LIT(w, lit) w_raw((w), (lit), sizeof(lit) - 1)

static size_t u64_dec(char out[20], uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[19 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, t + 20 - n, n);
    return n;
}

/* A counter as Twilio writes it: a JSON string of decimal digits. */
static void w_qnum(struct w *w, uint64_t v)
{
    char t[22];
    t[0] = '"';
    size_t n = u64_dec(t + 1, v);
    t[n + 1] = '"';
    w_raw(w, t, n + 2);
}

/* A JSON string. Values come from outside (carrier X- headers, the agent's parameters, a
 * bot's mark name): '"' and '\' are escaped, every control character as \u00XX, the rest
 * is copied as it is. A string that is not UTF-8 is refused (EINVAL) rather than repaired:
 * a bot may compare the value (a caller id in a header), and a silently altered value is
 * worse than the caller choosing to drop it (tl_tw_utf8_valid). */
static void w_str(struct w *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (w->err)
        return;
    if (!s) {
        w->err = EINVAL;
        return;
    }
    char *o = w->p, *e = w->e;
    if (o == e)
        goto full;
    *o++ = '"';
    for (const uint8_t *q = (const uint8_t *)s; *q;) {
        uint8_t c = *q;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            if (o == e)
                goto full;
            *o++ = (char)c;
            q++;
        } else if (c < 0x20) {
            if (e - o < 6)
                goto full;
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
            q++;
        } else if (c < 0x80) {
            if (e - o < 2)
                goto full;
            o[0] = '\\';
            o[1] = (char)c;
            o += 2;
            q++;
        } else {
            size_t l = utf8_len(q, 4);
            if (!l) {
                w->err = EINVAL;
                return;
            }
            if ((size_t)(e - o) < l)
                goto full;
            memcpy(o, q, l);
            o += l;
            q += l;
        }
    }
    if (o == e)
        goto full;
    *o++ = '"';
    w->p = o;
    return;
full:
    /* keep checking the rest for EINVAL would cost a second pass; ENOSPC it is */
    w->err = ENOSPC;
}

static int w_end(struct w *w, char *buf, size_t *len)
{
    *len = w->err ? 0 : (size_t)(w->p - buf);
    return w->err;
}

/* ---- base64 (RFC 4648 §4, padded) ---- */

static const char b64_chars[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes 4·⌈n/3⌉ characters at o; the caller checked the room. */
static char *b64_enc(char *o, const uint8_t *s, size_t n)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        o[0] = b64_chars[v >> 18];
        o[1] = b64_chars[(v >> 12) & 63];
        o[2] = b64_chars[(v >> 6) & 63];
        o[3] = b64_chars[v & 63];
        o += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        o[0] = b64_chars[v >> 18];
        o[1] = b64_chars[(v >> 12) & 63];
        o[2] = '=';
        o[3] = '=';
        o += 4;
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        o[0] = b64_chars[v >> 18];
        o[1] = b64_chars[(v >> 12) & 63];
        o[2] = b64_chars[(v >> 6) & 63];
        o[3] = '=';
        o += 4;
    }
    return o;
}

/* Decoding table: 0..63 for the alphabet; the characters that end the fast loop have bit 6
 * or 7 set: '=' (B64_PAD), the string's end '"' and an escape '\' (B64_STOP), anything
 * else (B64_BAD). */
#define B64_PAD  0x40
#define B64_STOP 0x41
#define B64_BAD  0xFF
#define X        B64_BAD
#define P        B64_PAD
#define S        B64_STOP
/* clang-format off */
static const uint8_t b64_dec[256] = {
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* 00 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* 10 */
     X,  X,  S,  X,  X,  X,  X,  X,  X,  X,  X, 62,  X,  X,  X, 63, /* 20 */
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61,  X,  X,  X,  P,  X,  X, /* 30 */
     X,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, /* 40 */
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,  X,  S,  X,  X,  X, /* 50 */
     X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, /* 60 */
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,  X,  X,  X,  X,  X, /* 70 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* 80 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* 90 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* a0 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* b0 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* c0 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* d0 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* e0 */
     X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X,  X, /* f0 */
};
/* clang-format on */
#undef X
#undef P
#undef S

/* ---- encoders ---- */

int tl_tw_connected(char *buf, size_t cap, size_t *len)
{
    struct w w = {buf, buf + cap, 0};
    W_LIT(&w, "{\"event\":\"connected\",\"protocol\":\"Call\",\"version\":\"1.0.0\"}");
    return w_end(&w, buf, len);
}

/* {"event":"<ev>","sequenceNumber":"<seq>","streamSid":"<sid>","<ev>":{ — the head every
 * frame but connected shares (Twilio's member names; member order does not matter to
 * JSON readers, ours is fixed so tests can compare bytes) */
static void w_head(struct w *w, const char *ev, size_t evl, uint64_t seq, const char *sid)
{
    W_LIT(w, "{\"event\":\"");
    w_raw(w, ev, evl);
    W_LIT(w, "\",\"sequenceNumber\":");
    w_qnum(w, seq);
    W_LIT(w, ",\"streamSid\":");
    w_str(w, sid);
    W_LIT(w, ",\"");
    w_raw(w, ev, evl);
    W_LIT(w, "\":{");
}
#define W_HEAD(w, ev, seq, sid) w_head((w), (ev), sizeof(ev) - 1, (seq), (sid))

int tl_tw_start(char *buf, size_t cap, size_t *len, uint64_t seq, const struct tl_tw_start *s)
{
    struct w w = {buf, buf + cap, 0};
    if (!s || s->n_params > TL_TW_PARAMS_MAX || (s->n_params && !s->params)) {
        *len = 0;
        return EINVAL;
    }
    /* a key twice would make an object whose meaning depends on the bot's JSON library */
    for (size_t i = 0; i < s->n_params; i++) {
        if (!s->params[i].key || !s->params[i].value) {
            *len = 0;
            return EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->params[i].key, s->params[j].key) == 0) {
                *len = 0;
                return EINVAL;
            }
    }
    W_HEAD(&w, "start", seq, s->stream_sid);
    W_LIT(&w, "\"streamSid\":");
    w_str(&w, s->stream_sid);
    W_LIT(&w, ",\"accountSid\":");
    w_str(&w, s->account_sid);
    W_LIT(&w, ",\"callSid\":");
    w_str(&w, s->call_sid);
    W_LIT(&w, ",\"tracks\":[\"inbound\"],\"customParameters\":{");
    for (size_t i = 0; i < s->n_params; i++) {
        if (i)
            W_LIT(&w, ",");
        w_str(&w, s->params[i].key);
        W_LIT(&w, ":");
        w_str(&w, s->params[i].value);
    }
    W_LIT(&w, "},\"mediaFormat\":{\"encoding\":\"audio/x-mulaw\",\"sampleRate\":8000,"
              "\"channels\":1}");
    if (s->extensions) {
        W_LIT(&w, ",\"extensions\":[");
        for (size_t i = 0; s->extensions[i]; i++) {
            if (i)
                W_LIT(&w, ",");
            w_str(&w, s->extensions[i]);
        }
        W_LIT(&w, "]");
    }
    W_LIT(&w, "}}");
    return w_end(&w, buf, len);
}

int tl_tw_media(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
                uint64_t chunk, uint64_t timestamp_ms, const uint8_t *ulaw, size_t n)
{
    struct w w = {buf, buf + cap, 0};
    if (!ulaw && n) {
        *len = 0;
        return EINVAL;
    }
    W_HEAD(&w, "media", seq, stream_sid);
    W_LIT(&w, "\"track\":\"inbound\",\"chunk\":");
    w_qnum(&w, chunk);
    W_LIT(&w, ",\"timestamp\":");
    w_qnum(&w, timestamp_ms);
    W_LIT(&w, ",\"payload\":\"");
    /* the one room check for the base64: 4 characters per started group of 3 bytes,
     * compared without an overflowing multiplication */
    size_t groups = n / 3 + (n % 3 != 0);
    if (!w.err && groups > (size_t)(w.e - w.p) / 4)
        w.err = ENOSPC;
    if (!w.err)
        w.p = b64_enc(w.p, ulaw, n);
    W_LIT(&w, "\"}}");
    return w_end(&w, buf, len);
}

static bool dtmf_digit(char c)
{
    return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

int tl_tw_dtmf(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq, char digit)
{
    struct w w = {buf, buf + cap, 0};
    if (!dtmf_digit(digit)) {
        *len = 0;
        return EINVAL;
    }
    W_HEAD(&w, "dtmf", seq, stream_sid);
    W_LIT(&w, "\"track\":\"inbound_track\",\"digit\":\"");
    w_raw(&w, &digit, 1);
    W_LIT(&w, "\"}}");
    return w_end(&w, buf, len);
}

int tl_tw_mark(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
               const char *name)
{
    struct w w = {buf, buf + cap, 0};
    W_HEAD(&w, "mark", seq, stream_sid);
    W_LIT(&w, "\"name\":");
    w_str(&w, name);
    W_LIT(&w, "}}");
    return w_end(&w, buf, len);
}

int tl_tw_stop(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
               const char *account_sid, const char *call_sid)
{
    struct w w = {buf, buf + cap, 0};
    W_HEAD(&w, "stop", seq, stream_sid);
    W_LIT(&w, "\"accountSid\":");
    w_str(&w, account_sid);
    W_LIT(&w, ",\"callSid\":");
    w_str(&w, call_sid);
    W_LIT(&w, "}}");
    return w_end(&w, buf, len);
}

int tl_tw_transfer_status(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
                          const char *status, int sip_code)
{
    struct w w = {buf, buf + cap, 0};
    if (sip_code != 0 && (sip_code < 100 || sip_code > 699)) {
        *len = 0;
        return EINVAL;
    }
    W_HEAD(&w, "transfer", seq, stream_sid);
    W_LIT(&w, "\"status\":");
    w_str(&w, status);
    if (sip_code) {
        char t[20];
        W_LIT(&w, ",\"sipCode\":"); /* a number: a status code, not one of Twilio's counters */
        w_raw(&w, t, u64_dec(t, (uint64_t)sip_code));
    }
    W_LIT(&w, "}}");
    return w_end(&w, buf, len);
}

/* ---- decoder ---- */

#define STR2(x)   #x
#define STR(x)    STR2(x)
#define NOT_JSON  "not JSON: "
#define WHY_DEPTH "message nests deeper than " STR(TL_TW_DEPTH_MAX)

struct rd {
    const uint8_t *p, *e;
    const char *why;
};

/* A string as it stands in the text, between its quotes; esc: it has escapes, so its
 * value must be unescaped before use. */
struct str {
    struct tl_pl raw;
    bool esc;
};

enum ftype { F_ABSENT, F_STRING, F_OBJECT, F_OTHER };
struct field {
    enum ftype type;
    struct str s;
};

struct dec {
    /* top level */
    struct field event, sid, media, mark, hangup, transfer, send_digits;
    /* inside the objects above */
    struct field payload, name, reason, target, digits;
    /* media.payload, decoded while scanned: status 0, EBADMSG or E2BIG */
    int pl_status;
    size_t pl_len;
    uint8_t *audio;
    size_t audio_cap;
    const char *dup_why; /* the first duplicate member met */
};

static int bad(struct rd *r, const char *why)
{
    r->why = why;
    return EBADMSG;
}

static void skip_ws(struct rd *r)
{
    while (r->p < r->e && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool hex4(const uint8_t *p, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return false;
        x = x << 4 | (uint32_t)h;
    }
    *v = x;
    return true;
}

/* The escape at p (p[0] == '\'): its code point in *cp and its length in bytes (2, 6 or
 * 12 for a surrogate pair), or 0 when invalid — an unknown letter, bad hex digits, a low
 * surrogate alone, a high one not followed by a low one. */
static size_t esc_read(const uint8_t *p, const uint8_t *e, uint32_t *cp)
{
    if (e - p < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        *cp = p[1];
        return 2;
    case 'b':
        *cp = '\b';
        return 2;
    case 'f':
        *cp = '\f';
        return 2;
    case 'n':
        *cp = '\n';
        return 2;
    case 'r':
        *cp = '\r';
        return 2;
    case 't':
        *cp = '\t';
        return 2;
    case 'u':
        break;
    default:
        return 0;
    }
    uint32_t hi, lo;
    if (e - p < 6 || !hex4(p + 2, &hi) || (hi >= 0xDC00 && hi <= 0xDFFF))
        return 0;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 6;
    }
    if (e - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xDC00 ||
        lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

/* Character classes inside a string: 0 is copied as it is; the rest stop the fast loop. */
enum { C_PLAIN, C_QUOTE, C_ESC, C_CTRL, C_HIGH };
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
/* clang-format off */
static const uint8_t str_cls[256] = {
    R16(C_CTRL), R16(C_CTRL),                                                  /* 00-1f */
    C_PLAIN, C_PLAIN, C_QUOTE, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,    /* 20-27 */
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,    /* 28-2f */
    R16(C_PLAIN), R16(C_PLAIN),                                                /* 30-4f */
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN,    /* 50-57 */
    C_PLAIN, C_PLAIN, C_PLAIN, C_PLAIN, C_ESC, C_PLAIN, C_PLAIN, C_PLAIN,      /* 58-5f */
    R16(C_PLAIN), R16(C_PLAIN),                                                /* 60-7f */
    R16(C_HIGH), R16(C_HIGH), R16(C_HIGH), R16(C_HIGH),                        /* 80-bf */
    R16(C_HIGH), R16(C_HIGH), R16(C_HIGH), R16(C_HIGH),                        /* c0-ff */
};
/* clang-format on */
#undef R16

/* Scans the rest of a string from p (inside it, at a character boundary) to its closing
 * quote and leaves r->p after it. *esc is set when an escape was met. */
static int str_rest(struct rd *r, const uint8_t *p, bool *esc, const uint8_t **end)
{
    const uint8_t *e = r->e;
    for (;;) {
        while (p < e && str_cls[*p] == C_PLAIN)
            p++;
        if (p == e)
            return bad(r, NOT_JSON "unterminated string");
        uint32_t cp;
        size_t l;
        switch (str_cls[*p]) {
        case C_QUOTE:
            *end = p;
            r->p = p + 1;
            return 0;
        case C_ESC:
            if (!(l = esc_read(p, e, &cp)))
                return bad(r, NOT_JSON "invalid escape in a string");
            *esc = true;
            p += l;
            break;
        case C_CTRL:
            return bad(r, NOT_JSON "control character in a string");
        default:
            if (!(l = utf8_len(p, (size_t)(e - p))))
                return bad(r, NOT_JSON "string is not UTF-8");
            p += l;
        }
    }
}

/* r->p at the opening quote. */
static int scan_str(struct rd *r, struct str *s)
{
    const uint8_t *start = r->p + 1, *end;
    s->esc = false;
    int err = str_rest(r, start, &s->esc, &end);
    if (err)
        return err;
    s->raw.p = (const char *)start;
    s->raw.l = (size_t)(end - start);
    return 0;
}

/* media.payload, r->p at the opening quote: scanned as any string and decoded at the same
 * time into d->audio. The rules are those of libsodium's ORIGINAL variant (what Twilio and
 * every bot send): the standard alphabet, padding to a multiple of 4 required, no
 * whitespace, unused bits zero. Base64 that breaks them sets d->pl_status but is still a
 * valid JSON string: it matters only if the event is "media". */
static int scan_payload(struct rd *r, struct dec *d)
{
    const uint8_t *p = r->p + 1, *e = r->e, *end;
    uint8_t *out = d->audio;
    size_t o = 0, cap = out ? d->audio_cap : 0;
    bool esc = false;

    /* fast: whole groups of 4 alphabet characters, as many as the text and the room
     * allow; a padding character, the closing quote, an escape or a stray byte ends it */
    size_t groups = (size_t)(e - p) / 4;
    if (groups > cap / 3)
        groups = cap / 3;
    for (const uint8_t *ge = p + groups * 4; p < ge; p += 4) {
        uint32_t a = b64_dec[p[0]], b = b64_dec[p[1]], c = b64_dec[p[2]], f = b64_dec[p[3]];
        if ((a | b | c | f) & 0xC0)
            break;
        uint32_t v = a << 18 | b << 12 | c << 6 | f;
        out[o] = (uint8_t)(v >> 16);
        out[o + 1] = (uint8_t)(v >> 8);
        out[o + 2] = (uint8_t)v;
        o += 3;
    }

    /* slow: the rest one character at a time (normally a handful: the last group with its
     * padding); escapes are legal JSON ("\/" from PHP's encoder) and decode as their
     * character */
    uint32_t acc = 0;
    int ndata = 0, npad = 0, st = 0;
    for (;;) {
        if (p == e)
            return bad(r, NOT_JSON "unterminated string");
        uint32_t ch = *p;
        size_t l = 1;
        if (ch == '"')
            break;
        if (ch == '\\') {
            if (!(l = esc_read(p, e, &ch)))
                return bad(r, NOT_JSON "invalid escape in a string");
            esc = true;
        }
        uint32_t v = ch < 0x80 ? b64_dec[ch] : B64_BAD;
        if (ch < 0x20 && l == 1)
            return bad(r, NOT_JSON "control character in a string");
        if (v < 64 && !npad) {
            acc = acc << 6 | v;
            if (++ndata == 4) {
                if (cap - o < 3) {
                    st = E2BIG;
                } else {
                    out[o] = (uint8_t)(acc >> 16);
                    out[o + 1] = (uint8_t)(acc >> 8);
                    out[o + 2] = (uint8_t)acc;
                    o += 3;
                    ndata = 0;
                    acc = 0;
                }
            }
        } else if (v == B64_PAD && ndata >= 2 && ndata + npad < 4) {
            npad++;
        } else {
            st = EBADMSG;
        }
        if (st) /* the rest only as a string, to find its end */
            break;
        p += l;
    }
    if (!st) { /* at the closing quote: the last group */
        if (npad && ndata + npad != 4) {
            st = EBADMSG; /* "QQ=" */
        } else if (ndata == 2 && npad) {
            if (acc & 0xF)
                st = EBADMSG; /* unused bits set: not what any encoder writes */
            else if (cap - o < 1)
                st = E2BIG;
            else
                out[o++] = (uint8_t)(acc >> 4);
        } else if (ndata == 3 && npad) {
            if (acc & 0x3)
                st = EBADMSG;
            else if (cap - o < 2)
                st = E2BIG;
            else {
                out[o] = (uint8_t)(acc >> 10);
                out[o + 1] = (uint8_t)(acc >> 2);
                o += 2;
            }
        } else if (ndata) {
            st = EBADMSG; /* no padding */
        }
    }
    int err = str_rest(r, p, &esc, &end);
    if (err)
        return err;
    d->payload.type = F_STRING; /* its value is in d->audio, not in a slice */
    d->pl_status = st;
    d->pl_len = st ? 0 : o;
    return 0;
}

static int skip_value(struct rd *r, int depth);

typedef int (*member_fn)(struct rd *r, const struct str *key, struct dec *d, int depth);

/* r->p at '{'; depth: the object's own (the message is depth 1). Calls fn for each
 * member with r->p at its value; fn consumes the value. */
static int parse_object(struct rd *r, int depth, member_fn fn, struct dec *d)
{
    if (depth > TL_TW_DEPTH_MAX)
        return bad(r, WHY_DEPTH);
    r->p++;
    skip_ws(r);
    if (r->p < r->e && *r->p == '}') {
        r->p++;
        return 0;
    }
    for (;;) {
        skip_ws(r);
        if (r->p == r->e || *r->p != '"')
            return bad(r, NOT_JSON "expected a member name");
        struct str k;
        int err = scan_str(r, &k);
        if (err)
            return err;
        skip_ws(r);
        if (r->p == r->e || *r->p != ':')
            return bad(r, NOT_JSON "expected ':'");
        r->p++;
        skip_ws(r);
        if (r->p == r->e)
            return bad(r, NOT_JSON "unexpected end");
        if ((err = fn(r, &k, d, depth)))
            return err;
        skip_ws(r);
        if (r->p == r->e)
            return bad(r, NOT_JSON "unterminated object");
        if (*r->p == '}') {
            r->p++;
            return 0;
        }
        if (*r->p++ != ',')
            return bad(r, NOT_JSON "expected ',' or '}'");
    }
}

static int skip_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    (void)key;
    (void)d;
    return skip_value(r, depth);
}

static int skip_array(struct rd *r, int depth)
{
    if (depth > TL_TW_DEPTH_MAX)
        return bad(r, WHY_DEPTH);
    r->p++;
    skip_ws(r);
    if (r->p < r->e && *r->p == ']') {
        r->p++;
        return 0;
    }
    for (;;) {
        int err = skip_value(r, depth);
        if (err)
            return err;
        skip_ws(r);
        if (r->p == r->e)
            return bad(r, NOT_JSON "unterminated array");
        if (*r->p == ']') {
            r->p++;
            return 0;
        }
        if (*r->p++ != ',')
            return bad(r, NOT_JSON "expected ',' or ']'");
    }
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 §6: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int skip_number(struct rd *r)
{
    const uint8_t *p = r->p, *e = r->e;
    if (p < e && *p == '-')
        p++;
    if (p == e || !is_digit(*p))
        return bad(r, NOT_JSON "unexpected character");
    if (*p++ != '0')
        while (p < e && is_digit(*p))
            p++;
    if (p < e && *p == '.') {
        if (++p == e || !is_digit(*p))
            return bad(r, NOT_JSON "bad number");
        while (p < e && is_digit(*p))
            p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        if (p == e || !is_digit(*p))
            return bad(r, NOT_JSON "bad number");
        while (p < e && is_digit(*p))
            p++;
    }
    r->p = p;
    return 0;
}

static int skip_literal(struct rd *r, const char *lit, size_t n)
{
    if ((size_t)(r->e - r->p) < n || memcmp(r->p, lit, n) != 0)
        return bad(r, NOT_JSON "unexpected character");
    r->p += n;
    return 0;
}

/* A value inside a container of depth `depth`, after optional whitespace. */
static int skip_value(struct rd *r, int depth)
{
    struct str s;
    skip_ws(r);
    if (r->p == r->e)
        return bad(r, NOT_JSON "unexpected end");
    switch (*r->p) {
    case '{':
        return parse_object(r, depth + 1, skip_member, NULL);
    case '[':
        return skip_array(r, depth + 1);
    case '"':
        return scan_str(r, &s);
    case 't':
        return skip_literal(r, "true", 4);
    case 'f':
        return skip_literal(r, "false", 5);
    case 'n':
        return skip_literal(r, "null", 4);
    default:
        return skip_number(r);
    }
}

/* The value of s, unescaped, into out (cap bytes with the terminating NUL). E2BIG when it
 * does not fit; EILSEQ when it holds U+0000, which a C string cannot carry (a name cut at
 * it would come back different). s was validated by the scan. */
static int str_value(const struct str *s, char *out, size_t cap, size_t *len)
{
    const uint8_t *p = (const uint8_t *)s->raw.p, *e = p + s->raw.l;
    size_t o = 0;
    if (!s->esc) {
        if (s->raw.l >= cap)
            return E2BIG;
        memcpy(out, p, s->raw.l);
        out[s->raw.l] = '\0';
        if (len)
            *len = s->raw.l;
        return 0;
    }
    while (p < e) {
        if (*p != '\\') {
            if (cap - o < 2)
                return E2BIG;
            out[o++] = (char)*p++;
            continue;
        }
        uint32_t cp;
        size_t l = esc_read(p, e, &cp);
        if (!l)
            return EILSEQ; /* cannot happen after the scan */
        p += l;
        if (cp == 0)
            return EILSEQ;
        uint8_t u[4];
        size_t k;
        if (cp < 0x80) {
            u[0] = (uint8_t)cp;
            k = 1;
        } else if (cp < 0x800) {
            u[0] = (uint8_t)(0xC0 | cp >> 6);
            u[1] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 2;
        } else if (cp < 0x10000) {
            u[0] = (uint8_t)(0xE0 | cp >> 12);
            u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 3;
        } else {
            u[0] = (uint8_t)(0xF0 | cp >> 18);
            u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (uint8_t)(0x80 | (cp & 0x3F));
            k = 4;
        }
        if (cap - o < k + 1)
            return E2BIG;
        memcpy(out + o, u, k);
        o += k;
    }
    out[o] = '\0';
    if (len)
        *len = o;
    return 0;
}

/* Is the member name `key` equal to lit? Names with escapes are compared by value. */
static bool key_is(const struct str *key, const char *lit, size_t n)
{
    if (!key->esc)
        return key->raw.l == n && memcmp(key->raw.p, lit, n) == 0;
    char v[24];
    size_t l;
    return str_value(key, v, sizeof v, &l) == 0 && l == n && memcmp(v, lit, n) == 0;
}
#define KEY_IS(k, lit) key_is((k), (lit), sizeof(lit) - 1)

/* A second member of a name we read is refused — two readers of the same text (a proxy, a
 * log, us) might otherwise take different ones — but only once the whole text is known to
 * be JSON, so that a broken message is always refused as "not JSON". The value is skipped:
 * the first one stays. */
static int dup(struct rd *r, struct dec *d, const char *why, int depth)
{
    if (!d->dup_why)
        d->dup_why = why;
    return skip_value(r, depth);
}

/* Records a member we read: a string's slice, or its type. */
static int take(struct rd *r, struct dec *d, struct field *f, const char *dup_why, int depth)
{
    if (f->type != F_ABSENT)
        return dup(r, d, dup_why, depth);
    if (*r->p == '"') {
        f->type = F_STRING;
        return scan_str(r, &f->s);
    }
    f->type = *r->p == '{' ? F_OBJECT : F_OTHER;
    return skip_value(r, depth);
}

static int media_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (!KEY_IS(key, "payload"))
        return skip_value(r, depth);
    if (d->payload.type != F_ABSENT)
        return dup(r, d, "duplicate member media.payload", depth);
    if (*r->p == '"')
        return scan_payload(r, d);
    d->payload.type = F_OTHER;
    return skip_value(r, depth);
}

static int mark_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (KEY_IS(key, "name"))
        return take(r, d, &d->name, "duplicate member mark.name", depth);
    return skip_value(r, depth);
}

static int hangup_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (KEY_IS(key, "reason"))
        return take(r, d, &d->reason, "duplicate member hangup.reason", depth);
    return skip_value(r, depth);
}

static int transfer_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (KEY_IS(key, "target"))
        return take(r, d, &d->target, "duplicate member transfer.target", depth);
    return skip_value(r, depth);
}

static int digits_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (KEY_IS(key, "digits"))
        return take(r, d, &d->digits, "duplicate member sendDigits.digits", depth);
    return skip_value(r, depth);
}

/* A top-level member that holds an object we read: its members go to fn. */
static int take_obj(struct rd *r, struct field *f, const char *dup_why, member_fn fn, struct dec *d,
                    int depth)
{
    if (f->type != F_ABSENT)
        return dup(r, d, dup_why, depth);
    if (*r->p != '{')
        return take(r, d, f, dup_why, depth);
    f->type = F_OBJECT;
    return parse_object(r, depth + 1, fn, d);
}

static int top_member(struct rd *r, const struct str *key, struct dec *d, int depth)
{
    if (KEY_IS(key, "event"))
        return take(r, d, &d->event, "duplicate member event", depth);
    if (KEY_IS(key, "streamSid"))
        return take(r, d, &d->sid, "duplicate member streamSid", depth);
    if (KEY_IS(key, "media"))
        return take_obj(r, &d->media, "duplicate member media", media_member, d, depth);
    if (KEY_IS(key, "mark"))
        return take_obj(r, &d->mark, "duplicate member mark", mark_member, d, depth);
    if (KEY_IS(key, "hangup"))
        return take_obj(r, &d->hangup, "duplicate member hangup", hangup_member, d, depth);
    if (KEY_IS(key, "transfer"))
        return take_obj(r, &d->transfer, "duplicate member transfer", transfer_member, d, depth);
    if (KEY_IS(key, "sendDigits"))
        return take_obj(r, &d->send_digits, "duplicate member sendDigits", digits_member, d, depth);
    return skip_value(r, depth);
}

/* An optional string member of an optional object (mark.name, hangup.reason) into out;
 * absent gives "". */
static int opt_string(struct rd *r, const struct field *obj, const struct field *f, char *out,
                      size_t cap, const char *why_obj, const char *why_type, const char *why_big,
                      const char *why_nul)
{
    out[0] = '\0';
    if (obj->type == F_ABSENT)
        return 0;
    if (obj->type != F_OBJECT)
        return bad(r, why_obj);
    if (f->type == F_ABSENT)
        return 0;
    if (f->type != F_STRING)
        return bad(r, why_type);
    int err = str_value(&f->s, out, cap, NULL);
    if (err == E2BIG) {
        r->why = why_big;
        out[0] = '\0';
        return E2BIG;
    }
    if (err) {
        out[0] = '\0';
        return bad(r, why_nul);
    }
    return 0;
}

/* sendDigits: 0-9 * # A-D and w (a 500 ms pause); a-d and W are taken for their capitals
 * and w, as ConversationRelay's sendDigits is written by hand. */
static bool digits_norm(char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (c >= 'a' && c <= 'd')
            *s = (char)(c - 'a' + 'A');
        else if (c == 'W')
            *s = 'w';
        else if (!dtmf_digit(c) && c != 'w')
            return false;
    }
    return true;
}

static int dispatch(struct rd *r, struct dec *d, const char *stream_sid, struct tl_tw_msg *m)
{
    if (d->event.type == F_ABSENT)
        return bad(r, "no event");
    if (d->event.type != F_STRING)
        return bad(r, "event is not a string");
    if (d->sid.type != F_ABSENT && d->sid.type != F_STRING)
        return bad(r, "streamSid is not a string");
    if (d->sid.type == F_STRING && stream_sid) {
        char v[TL_TW_SID_LEN + 2];
        m->stream_sid_wrong = str_value(&d->sid.s, v, sizeof v, NULL) || strcmp(v, stream_sid);
    }
    char ev[16];
    if (str_value(&d->event.s, ev, sizeof ev, NULL))
        return 0; /* too long or with a NUL: not one of ours, so ignored */
    int err;
    if (!strcmp(ev, "media")) {
        if (d->media.type == F_ABSENT)
            return bad(r, "media without payload");
        if (d->media.type != F_OBJECT)
            return bad(r, "media is not an object");
        if (d->payload.type == F_ABSENT)
            return bad(r, "media without payload");
        if (d->payload.type != F_STRING)
            return bad(r, "payload is not a string");
        if (d->pl_status == EBADMSG)
            return bad(r, "payload is not base64");
        if (d->pl_status == E2BIG) {
            r->why = "payload larger than the audio buffer";
            return E2BIG;
        }
        m->kind = TL_TW_MEDIA;
        m->audio_len = d->pl_len;
    } else if (!strcmp(ev, "mark")) {
        /* OpenAI's demo sends {"event":"mark","streamSid":…} with no mark at all */
        err =
            opt_string(r, &d->mark, &d->name, m->name, sizeof m->name, "mark is not an object",
                       "mark name is not a string", "mark name over " STR(TL_TW_NAME_MAX) " bytes",
                       "mark name contains U+0000");
        if (err)
            return err;
        m->kind = TL_TW_MARK;
    } else if (!strcmp(ev, "clear")) {
        m->kind = TL_TW_CLEAR;
    } else if (!strcmp(ev, "hangup")) {
        err = opt_string(r, &d->hangup, &d->reason, m->reason, sizeof m->reason,
                         "hangup is not an object", "hangup reason is not a string",
                         "hangup reason over " STR(TL_TW_REASON_MAX) " bytes",
                         "hangup reason contains U+0000");
        if (err)
            return err;
        m->kind = TL_TW_HANGUP;
    } else if (!strcmp(ev, "transfer")) {
        if (d->transfer.type != F_ABSENT && d->transfer.type != F_OBJECT)
            return bad(r, "transfer is not an object");
        if (d->target.type == F_ABSENT)
            return bad(r, "transfer without target");
        err = opt_string(r, &d->transfer, &d->target, m->target, sizeof m->target, "",
                         "transfer target is not a string",
                         "transfer target over " STR(TL_TW_TARGET_MAX) " bytes",
                         "transfer target contains U+0000");
        if (err)
            return err;
        if (tl_tw_target_valid(m->target)) {
            m->target[0] = '\0';
            return bad(r, "transfer target is neither +E.164 nor a sip:/sips: URI");
        }
        m->kind = TL_TW_TRANSFER;
    } else if (!strcmp(ev, "sendDigits")) {
        if (d->send_digits.type != F_ABSENT && d->send_digits.type != F_OBJECT)
            return bad(r, "sendDigits is not an object");
        if (d->digits.type == F_ABSENT)
            return bad(r, "sendDigits without digits");
        err = opt_string(r, &d->send_digits, &d->digits, m->digits, sizeof m->digits, "",
                         "sendDigits digits is not a string",
                         "sendDigits over " STR(TL_TW_DIGITS_MAX) " digits",
                         "sendDigits digits contains U+0000");
        if (err)
            return err;
        if (!digits_norm(m->digits)) {
            m->digits[0] = '\0';
            return bad(r, "sendDigits digits not of 0-9 * # A-D w");
        }
        m->kind = TL_TW_SEND_DIGITS;
    }
    return 0;
}

int tl_tw_decode(const char *p, size_t n, const char *stream_sid, struct tl_tw_msg *m,
                 uint8_t *audio, size_t audio_cap, char *why, size_t why_cap)
{
    if (why && why_cap)
        why[0] = '\0';
    if (!m)
        return EINVAL;
    /* the fields, not the whole struct: a memset of 1 KB per audio message is measurable */
    m->kind = TL_TW_IGNORED;
    m->audio_len = 0;
    m->name[0] = m->target[0] = m->digits[0] = m->reason[0] = '\0';
    m->stream_sid_wrong = false;

    if (!p) {
        p = "";
        n = 0;
    }
    struct rd r = {(const uint8_t *)p, (const uint8_t *)p + n, NULL};
    struct dec d;
    memset(&d, 0, sizeof d);
    d.audio = audio;
    d.audio_cap = audio_cap;
    int err;
    skip_ws(&r);
    if (r.p == r.e)
        err = bad(&r, NOT_JSON "empty message");
    else if (*r.p != '{')
        err = bad(&r, *r.p == '[' ? "not a JSON object (an array)" : NOT_JSON "not an object");
    else if (!(err = parse_object(&r, 1, top_member, &d))) {
        skip_ws(&r);
        if (r.p != r.e)
            err = bad(&r, "not one JSON object: more text after it");
        else if (d.dup_why)
            err = bad(&r, d.dup_why);
        else
            err = dispatch(&r, &d, stream_sid, m);
    }
    if (err) {
        m->kind = TL_TW_IGNORED;
        m->audio_len = 0;
        if (why && why_cap && r.why)
            tl_strlcpy(why, r.why, why_cap);
    }
    return err;
}

int tl_tw_target_valid(const char *t)
{
    if (!t)
        return EINVAL;
    size_t n = strnlen(t, TL_TW_TARGET_MAX + 1);
    if (n > TL_TW_TARGET_MAX)
        return EINVAL;
    if (t[0] == '+') {
        if (n < 9 || n > 16 || t[1] < '1' || t[1] > '9') /* 8-15 digits, no leading 0 */
            return EINVAL;
        for (size_t i = 1; i < n; i++)
            if (!is_digit((uint8_t)t[i]))
                return EINVAL;
        return 0;
    }
    size_t s;
    if (n >= 4 && !strncasecmp(t, "sip:", 4))
        s = 4;
    else if (n >= 5 && !strncasecmp(t, "sips:", 5))
        s = 5;
    else
        return EINVAL;
    if (n == s)
        return EINVAL;
    /* the target goes between < > into Refer-To: nothing that could end the URI or the
     * header (CR, LF, '>', '"', space), and only ASCII, as in any URI */
    for (size_t i = s; i < n; i++) {
        uint8_t c = (uint8_t)t[i];
        if (c <= 0x20 || c >= 0x7F || c == '<' || c == '>' || c == '"')
            return EINVAL;
    }
    return 0;
}
