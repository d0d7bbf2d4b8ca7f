/* info: DTMF in SIP INFO bodies (RFC 6086 "legacy" INFO usage, which carriers and PBXs still
 * send instead of, or besides, RFC 4733): application/dtmf-relay (Cisco's "Signal=5\r\n
 * Duration=160") and application/dtmf (the digit alone). Pure functions: no allocation, the
 * body is read in place and only up to TL_CALL_INFO_BODY_MAX bytes (fuzzed by
 * tests/fuzz/fuzz_info.c). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "call/call.h"

static bool ws(char c)
{
    return c == ' ' || c == '\t';
}

/* [p, e) without surrounding blanks */
static void trim(const char **p, const char **e)
{
    while (*p < *e && (ws(**p) || **p == '\r' || **p == '\n'))
        (*p)++;
    while (*e > *p && (ws((*e)[-1]) || (*e)[-1] == '\r' || (*e)[-1] == '\n'))
        (*e)--;
}

static bool tok_is(const char *p, const char *e, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(e - p) == n && strncasecmp(p, s, n) == 0;
}

int tl_call_info_type(const char *ctype, size_t len)
{
    if (!ctype)
        return 0;
    const char *p = ctype, *e = ctype + len, *semi = memchr(ctype, ';', len);
    if (semi) /* parameters (charset, …) say nothing we need */
        e = semi;
    trim(&p, &e);
    if (tok_is(p, e, "application/dtmf-relay"))
        return TL_CALL_INFO_DTMF_RELAY;
    if (tok_is(p, e, "application/dtmf"))
        return TL_CALL_INFO_DTMF;
    return 0;
}

/* A signal: one of 0-9 * # A-D (any case), or the RFC 4733 event number 0-16 that some
 * gateways send instead (10 = *, 11 = #, 12-15 = A-D, 16 = flash). */
static char signal_char(const char *p, const char *e)
{
    static const char ev[] = "0123456789*#ABCD!";
    if (e - p == 1) {
        char c = *p;
        if ((c >= '0' && c <= '9') || c == '*' || c == '#')
            return c;
        if ((c >= 'A' && c <= 'D') || (c >= 'a' && c <= 'd'))
            return (char)(c & ~0x20);
        return 0;
    }
    if (e - p == 2 && p[0] == '1' && p[1] >= '0' && p[1] <= '6')
        return ev[10 + (p[1] - '0')];
    return 0;
}

/* Duration in ms: digits only; longer than 5 digits or above 65535 is capped (a value that
 * large is a broken sender, not a reason to refuse the digit). 0 when unreadable. */
static uint16_t duration(const char *p, const char *e)
{
    uint32_t v = 0;
    if (p == e)
        return 0;
    for (const char *q = p; q < e; q++) {
        if (*q < '0' || *q > '9')
            return 0;
        if (v <= 65535)
            v = v * 10 + (uint32_t)(*q - '0');
    }
    return v > 65535 ? 65535 : (uint16_t)v;
}

int tl_call_info_dtmf(int type, const char *body, size_t len, char *digit, uint16_t *duration_ms)
{
    *digit = 0;
    *duration_ms = 0;
    if (len > TL_CALL_INFO_BODY_MAX)
        return E2BIG; /* before anything reads it */
    if (!body || memchr(body, '\0', len))
        return EBADMSG;
    const char *end = body + len;
    if (type == TL_CALL_INFO_DTMF) {
        const char *p = body, *e = end;
        trim(&p, &e);
        *digit = signal_char(p, e);
        return *digit ? 0 : EBADMSG;
    }
    if (type != TL_CALL_INFO_DTMF_RELAY)
        return EINVAL;
    bool have_signal = false;
    for (const char *line = body; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *eq = memchr(line, '=', (size_t)(le - line));
        if (eq) {
            const char *k = line, *ke = eq, *v = eq + 1, *ve = le;
            trim(&k, &ke);
            trim(&v, &ve);
            if (tok_is(k, ke, "Signal") && !have_signal) { /* the first one counts */
                *digit = signal_char(v, ve);
                if (!*digit)
                    return EBADMSG;
                have_signal = true;
            } else if (tok_is(k, ke, "Duration")) {
                *duration_ms = duration(v, ve);
            }
        }
        line = nl ? nl + 1 : end;
    }
    return have_signal ? 0 : EBADMSG;
}
