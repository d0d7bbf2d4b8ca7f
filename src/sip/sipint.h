/* sip: private helpers shared by the parser files. Not part of the module's API.
 * Character classes follow the ABNF of RFC 3261 §25.1; internal non-static symbols carry
 * a double underscore (tl_sip__…). */
#ifndef TL_SIP_INT_H
#define TL_SIP_INT_H

#include "sip.h"

static inline bool ch_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}
static inline bool ch_alpha(unsigned char c)
{
    c |= 0x20;
    return c >= 'a' && c <= 'z';
}
static inline bool ch_alnum(unsigned char c)
{
    return ch_digit(c) || ch_alpha(c);
}
static inline bool ch_hex(unsigned char c)
{
    unsigned char l = c | 0x20;
    return ch_digit(c) || (l >= 'a' && l <= 'f');
}
static inline int ch_hexval(unsigned char c)
{
    return ch_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}
static inline unsigned char ch_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}
/* mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
static inline bool ch_mark(unsigned char c)
{
    switch (c) {
    case '-':
    case '_':
    case '.':
    case '!':
    case '~':
    case '*':
    case '\'':
    case '(':
    case ')':
        return true;
    default:
        return false;
    }
}
static inline bool ch_unreserved(unsigned char c)
{
    return ch_alnum(c) || ch_mark(c);
}
/* reserved = ";" / "/" / "?" / ":" / "@" / "&" / "=" / "+" / "$" / "," */
static inline bool ch_reserved(unsigned char c)
{
    switch (c) {
    case ';':
    case '/':
    case '?':
    case ':':
    case '@':
    case '&':
    case '=':
    case '+':
    case '$':
    case ',':
        return true;
    default:
        return false;
    }
}
/* token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
static inline bool ch_token(unsigned char c)
{
    switch (c) {
    case '-':
    case '.':
    case '!':
    case '%':
    case '*':
    case '_':
    case '+':
    case '`':
    case '\'':
    case '~':
        return true;
    default:
        return ch_alnum(c);
    }
}
/* SP / HTAB */
static inline bool ch_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}
/* Inside a header value a CR or LF can only be part of a fold (the splitter in msg.c
 * guarantees it), so LWS there is any run of SP, HT, CR, LF. */
static inline bool ch_lws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline const char *skip_lws(const char *p, const char *e)
{
    while (p < e && ch_lws((unsigned char)*p))
        ++p;
    return p;
}
static inline const char *rtrim_lws(const char *s, const char *e)
{
    while (e > s && ch_lws((unsigned char)e[-1]))
        --e;
    return e;
}
static inline const char *skip_token(const char *p, const char *e)
{
    while (p < e && ch_token((unsigned char)*p))
        ++p;
    return p;
}
static inline struct tl_pl pl_span(const char *s, const char *e)
{
    return (struct tl_pl){s, (size_t)(e - s)};
}
static inline struct tl_pl pl_trim(struct tl_pl pl)
{
    const char *s = pl.p, *e = pl.p + pl.l;
    s = skip_lws(s, e);
    e = rtrim_lws(s, e);
    return pl_span(s, e);
}
static inline bool pl_is_token(const struct tl_pl *pl)
{
    return pl->l > 0 && skip_token(pl->p, pl->p + pl->l) == pl->p + pl->l;
}

/* quoted-string starting at p (which is at '"'): returns a pointer past the closing quote
 * and sets *content, or NULL when unterminated or holding a control octet (RFC 3261 §25.1
 * qdtext / quoted-pair; UTF-8 octets >= 0x80 are allowed). */
const char *tl_sip__qstr(const char *p, const char *e, struct tl_pl *content);

/* host = hostname / IPv4address / IPv6reference, starting at p. Returns the end, or NULL. */
const char *tl_sip__host(const char *p, const char *e, struct tl_pl *host,
                         enum tl_sip_host_type *type);
/* port = 1*5DIGIT in 0-65535. Returns the end, or NULL. */
const char *tl_sip__port(const char *p, const char *e, uint16_t *port);
/* True for a whole slice that is an IPv4 address, or an IPv6 address with or without []. */
bool tl_sip__is_ip(const struct tl_pl *pl);
/* Binary IPv6 of "[…]" / "…" into out[16]; false when not one. */
bool tl_sip__ipv6(const struct tl_pl *pl, unsigned char out[16]);

#endif
