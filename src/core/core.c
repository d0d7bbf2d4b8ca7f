/* Small shared pieces: user-facing errors, warnings, ids, time, bounded copies. */
#include "core/core.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

int tl_err_set(struct tl_err *e, int ret, int status, const char *code, const char *field,
               const char *fmt, ...)
{
    if (!e)
        return ret;
    e->status = status;
    tl_strlcpy(e->code, code ? code : "", sizeof e->code);
    tl_strlcpy(e->field, field ? field : "", sizeof e->field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return ret;
}

void tl_warn(struct tl_warnings *w, const char *code, const char *field, const char *fmt, ...)
{
    if (!w || w->n >= TL_WARNINGS_MAX)
        return;
    tl_strlcpy(w->w[w->n].code, code ? code : "", sizeof w->w[w->n].code);
    tl_strlcpy(w->w[w->n].field, field ? field : "", sizeof w->w[w->n].field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->w[w->n].message, sizeof w->w[w->n].message, fmt, ap);
    va_end(ap);
    w->n++;
}

bool tl_strlcpy(char *dst, const char *src, size_t cap)
{
    if (cap == 0)
        return false;
    size_t n = strnlen(src, cap);
    if (n == cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

/* Crockford-style lowercase base32 without i, l, o, u: ids are read aloud and typed by
 * support staff, so no characters that look alike. 26 characters carry 130 random bits:
 * guessing another tenant's id is not a way in (authorisation still checks), and ids
 * never collide in practice. */
static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";
#define TL_ID_RANDOM 26

void tl_id_new(char out[TL_ID_MAX], const char *prefix)
{
    uint8_t rnd[TL_ID_RANDOM];
    randombytes_buf(rnd, sizeof rnd);
    size_t p = strnlen(prefix, 8);
    memcpy(out, prefix, p);
    out[p++] = '_';
    for (size_t i = 0; i < TL_ID_RANDOM; i++)
        out[p++] = b32[rnd[i] & 31];
    out[p] = '\0';
}

/* 128 bits as 26 base32 characters: the first carries the top 3 bits (so it is one of
 * 0-7), the other 25 five bits each. */
void tl_id_from128(char out[TL_ID_MAX], const char *prefix, const uint8_t b[16])
{
    size_t p = strnlen(prefix, 8);
    memcpy(out, prefix, p);
    out[p++] = '_';
    for (int i = 0; i < TL_ID_RANDOM; i++) {
        int bit = i == 0 ? 0 : 3 + (i - 1) * 5, len = i == 0 ? 3 : 5;
        unsigned v = 0;
        for (int k = 0; k < len; k++, bit++)
            v = v << 1 | ((b[bit / 8] >> (7 - bit % 8)) & 1u);
        out[p++] = b32[v];
    }
    out[p] = '\0';
}

int tl_id_to128(const char *id, const char *prefix, uint8_t b[16])
{
    if (!tl_id_valid(id, prefix))
        return EINVAL;
    const char *s = id + strlen(prefix) + 1;
    memset(b, 0, 16);
    int bit = 0;
    for (int i = 0; i < TL_ID_RANDOM; i++) {
        unsigned v = (unsigned)(strchr(b32, s[i]) - b32), len = i == 0 ? 3 : 5;
        if (i == 0 && v > 7)
            return EINVAL; /* a random 130-bit id, not one made from 128 bits */
        for (int k = (int)len - 1; k >= 0; k--, bit++)
            if ((v >> k) & 1u)
                b[bit / 8] |= (uint8_t)(1u << (7 - bit % 8));
    }
    return 0;
}

int tl_sid_of_id(const char *id, const char *id_prefix, const char *sid_prefix,
                 char out[TL_SID_LEN + 1])
{
    uint8_t b[16];
    if (strlen(sid_prefix) != 2 || tl_id_to128(id, id_prefix, b))
        return EINVAL;
    memcpy(out, sid_prefix, 2);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 + 2 * i, 3, "%02x", b[i]);
    return 0;
}

int tl_id_of_sid(const char *sid, const char *sid_prefix, const char *id_prefix,
                 char out[TL_ID_MAX])
{
    uint8_t b[16];
    if (!sid || strlen(sid) != TL_SID_LEN || strncmp(sid, sid_prefix, 2))
        return EINVAL;
    for (int i = 0; i < 16; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) { /* lowercase only: one spelling per id */
            char ch = sid[2 + 2 * i + k];
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (d < 0)
                return EINVAL;
            v = v * 16 + d;
        }
        b[i] = (uint8_t)v;
    }
    tl_id_from128(out, id_prefix, b);
    return 0;
}

bool tl_id_valid(const char *s, const char *prefix)
{
    if (!s)
        return false;
    size_t p = strlen(prefix);
    if (strncmp(s, prefix, p) != 0 || s[p] != '_')
        return false;
    s += p + 1;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= TL_ID_RANDOM || !strchr(b32, s[n]))
            return false;
    return n == TL_ID_RANDOM;
}

int64_t tl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tl_time_iso(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}
