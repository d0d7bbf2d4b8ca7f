/* SDP decoder and printer (RFC 8866), a=crypto decoding (RFC 4568 §9.1 grammar).
 * Everything works on slices into the body; caps are checked before any array index. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "sdp/sdpint.h"

const char *tl_sdp_dir_name(enum tl_sdp_dir d)
{
    switch (d) {
    case TL_SDP_SENDONLY:
        return "sendonly";
    case TL_SDP_RECVONLY:
        return "recvonly";
    case TL_SDP_INACTIVE:
        return "inactive";
    default:
        return "sendrecv";
    }
}

const char *tl_sdp_suite_name(enum tl_sdp_suite s)
{
    switch (s) {
    case TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80:
        return "AES_CM_128_HMAC_SHA1_80";
    case TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32:
        return "AES_CM_128_HMAC_SHA1_32";
    default:
        return NULL;
    }
}

const char *tl_sdp_crypto_err_str(enum tl_sdp_crypto_err e)
{
    switch (e) {
    case TL_SDP_CRYPTO_OK:
        return "usable";
    case TL_SDP_CRYPTO_SYNTAX:
        return "malformed a=crypto line";
    case TL_SDP_CRYPTO_TAG:
        return "crypto tag outside 1-999999999";
    case TL_SDP_CRYPTO_SUITE:
        return "unsupported crypto suite (only AES_CM_128_HMAC_SHA1_80 and _32)";
    case TL_SDP_CRYPTO_KEY:
        return "inline key is not base64 of exactly 30 bytes (16-byte key + 14-byte salt)";
    case TL_SDP_CRYPTO_LIFETIME:
        return "key lifetime below 2^31 or above 2^48 packets (no re-keying)";
    case TL_SDP_CRYPTO_MKI:
        return "MKI present (not supported)";
    case TL_SDP_CRYPTO_SESSION_PARAM:
        return "session parameter (UNENCRYPTED_*, KDR, FEC_*) not supported";
    case TL_SDP_CRYPTO_MULTI_KEY:
        return "more than one key (needs MKI, not supported)";
    }
    return "?";
}

/* ---- slice helpers (core/pl.h), by value as the SDP code passes slices ---- */
static bool pl_eq(struct tl_pl a, const char *s)
{
    return tl_pl_eq_str(&a, s);
}

bool tl_sdp_pl_caseeq(struct tl_pl a, const char *s)
{
    return tl_pl_caseeq_str(&a, s);
}

/* Splits *rest at the first SP: *tok gets what precedes it (runs of SP are skipped, a
 * leniency towards stacks that pad fields). false when *rest is empty. */
static bool next_tok(struct tl_pl *rest, struct tl_pl *tok)
{
    while (rest->l && rest->p[0] == ' ') {
        rest->p++;
        rest->l--;
    }
    if (!rest->l)
        return false;
    size_t i = 0;
    while (i < rest->l && rest->p[i] != ' ')
        i++;
    *tok = (struct tl_pl){rest->p, i};
    rest->p += i;
    rest->l -= i;
    return true;
}

static bool only_spaces(struct tl_pl pl)
{
    for (size_t i = 0; i < pl.l; i++)
        if (pl.p[i] != ' ')
            return false;
    return true;
}

/* decimal without sign, at most `max` (≤ UINT64_MAX / 10 checks overflow) */
static bool pl_u64(struct tl_pl pl, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;
    if (!pl.l || pl.l > 20)
        return false;
    for (size_t i = 0; i < pl.l; i++) {
        if (pl.p[i] < '0' || pl.p[i] > '9')
            return false;
        unsigned d = (unsigned)(pl.p[i] - '0');
        if (x > (max - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

static bool pl_u32(struct tl_pl pl, uint32_t max, uint32_t *v)
{
    uint64_t x;
    if (!pl_u64(pl, max, &x))
        return false;
    *v = (uint32_t)x;
    return true;
}

/* splits at the first c: head before, *rest after (false when c is absent) */
static bool pl_split(struct tl_pl in, char c, struct tl_pl *head, struct tl_pl *rest)
{
    const char *q = in.l ? memchr(in.p, c, in.l) : NULL;
    if (!q)
        return false;
    *head = (struct tl_pl){in.p, (size_t)(q - in.p)};
    *rest = (struct tl_pl){q + 1, in.l - (size_t)(q - in.p) - 1};
    return true;
}

/* ---- a=crypto (RFC 4568 §9.1) ----
 * "<tag> <suite> inline:<key||salt>[|<lifetime>][|<mki>:<len>] [<session-params>]".
 * A line we can't use is marked, not an error: the offer may carry another one. */
static void crypto_decode(struct tl_sdp_crypto *c, struct tl_pl v)
{
    struct tl_pl rest = v, tag, suite, kp, b64, lt;
    c->raw = v;
    c->err = TL_SDP_CRYPTO_SYNTAX;
    if (!next_tok(&rest, &tag) || !next_tok(&rest, &suite) || !next_tok(&rest, &kp))
        return;
    uint32_t t;
    if (!pl_u32(tag, UINT32_MAX, &t) || tag.l > 10) {
        bool digits = tag.l > 0;
        for (size_t i = 0; i < tag.l; i++)
            digits = digits && tag.p[i] >= '0' && tag.p[i] <= '9';
        c->err = digits ? TL_SDP_CRYPTO_TAG : TL_SDP_CRYPTO_SYNTAX;
        return;
    }
    /* §9.1: tag = 1*9DIGIT; 0 is refused as no implementation uses it and some libraries
     * treat it as "unset" */
    if (tag.l > 9 || t == 0 || t > 999999999) {
        c->err = TL_SDP_CRYPTO_TAG;
        return;
    }
    c->tag = t;
    if (pl_eq(suite, "AES_CM_128_HMAC_SHA1_80"))
        c->suite = TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80;
    else if (pl_eq(suite, "AES_CM_128_HMAC_SHA1_32"))
        c->suite = TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32;
    else {
        c->err = TL_SDP_CRYPTO_SUITE;
        return;
    }
    if (memchr(kp.p, ';', kp.l)) { /* §6.1: several keys are told apart by MKI only */
        c->err = TL_SDP_CRYPTO_MULTI_KEY;
        return;
    }
    if (kp.l < 7 || !tl_sdp_pl_caseeq((struct tl_pl){kp.p, 7}, "inline:"))
        return;
    kp.p += 7;
    kp.l -= 7;
    struct tl_pl tail = {0};
    if (!pl_split(kp, '|', &b64, &tail))
        b64 = kp;
    /* strict base64 with padding (RFC 4648 §4, RFC 4568 §6.1): no stray padding, zero
     * leftover bits, so one text per key (no malleable encodings) */
    size_t klen;
    uint8_t key[TL_SDP_KEY_LEN + 3];
    int e = sodium_base642bin(key, sizeof key, b64.p, b64.l, NULL, &klen, NULL,
                              sodium_base64_VARIANT_ORIGINAL);
    if (e || klen != TL_SDP_KEY_LEN) {
        sodium_memzero(key, sizeof key);
        c->err = TL_SDP_CRYPTO_KEY;
        return;
    }
    if (tail.p) {
        struct tl_pl mki = {0};
        if (!pl_split(tail, '|', &lt, &mki))
            lt = tail;
        if (mki.p || memchr(lt.p, ':', lt.l)) { /* "|mki:len", with or without a lifetime */
            sodium_memzero(key, sizeof key);
            c->err = TL_SDP_CRYPTO_MKI;
            return;
        }
        /* lifetime "2^n" or a decimal count of packets (§6.1). We never re-key within a
         * call, so a key that expires sooner than 2^31 packets (~1.3 years at 50 pps) is
         * refused rather than silently overused; above 2^48 is invalid for these suites
         * (§6.2.1). */
        uint64_t pk = 0;
        bool ok;
        if (lt.l > 2 && lt.p[0] == '2' && lt.p[1] == '^') {
            uint32_t exp;
            ok = pl_u32((struct tl_pl){lt.p + 2, lt.l - 2}, 63, &exp);
            pk = ok ? (uint64_t)1 << exp : 0;
        } else {
            ok = pl_u64(lt, UINT64_MAX, &pk);
        }
        if (!ok) {
            sodium_memzero(key, sizeof key);
            return; /* SYNTAX */
        }
        if (pk < ((uint64_t)1 << 31) || pk > ((uint64_t)1 << 48)) {
            sodium_memzero(key, sizeof key);
            c->err = TL_SDP_CRYPTO_LIFETIME;
            return;
        }
    }
    /* §6.3: session parameters we don't implement change the meaning of the keys
     * (UNENCRYPTED_SRTP would send clear audio); WSH (a replay window hint) is harmless */
    struct tl_pl sp;
    while (next_tok(&rest, &sp)) {
        if (sp.l < 4 || memcmp(sp.p, "WSH=", 4) != 0) {
            sodium_memzero(key, sizeof key);
            c->err = TL_SDP_CRYPTO_SESSION_PARAM;
            return;
        }
    }
    memcpy(c->key, key, TL_SDP_KEY_LEN);
    sodium_memzero(key, sizeof key);
    c->err = TL_SDP_CRYPTO_OK;
}

/* ---- decoder ---- */

/* "IN IP4 <addr>[/ttl[/n]]" (c=) or the last three fields of o= */
static int conn_decode(struct tl_sdp_conn *c, struct tl_pl v)
{
    struct tl_pl nt, at, addr, rest = v;
    if (!next_tok(&rest, &nt) || !next_tok(&rest, &at) || !next_tok(&rest, &addr) ||
        !only_spaces(rest))
        return EBADMSG;
    if (!pl_eq(nt, "IN"))
        return EBADMSG;
    if (pl_eq(at, "IP4"))
        c->af = AF_INET;
    else if (pl_eq(at, "IP6"))
        c->af = AF_INET6;
    else
        return EBADMSG;
    const char *sl = memchr(addr.p, '/', addr.l);
    if (sl)
        addr.l = (size_t)(sl - addr.p);
    if (!addr.l || addr.l > TL_SDP_HOST_MAX)
        return EBADMSG;
    c->addr = addr;
    c->has = true;
    c->is_ip = false;
    if (addr.l < TL_SDP_ADDR_MAX) {
        char tmp[TL_SDP_ADDR_MAX];
        unsigned char bin[16];
        memcpy(tmp, addr.p, addr.l);
        tmp[addr.l] = 0;
        c->is_ip = inet_pton(c->af, tmp, bin) == 1;
    }
    return 0;
}

static bool is_rtp_proto(struct tl_pl p)
{
    /* RFC 8866 §5.14: RTP/AVP, RTP/SAVP, RTP/AVPF, RTP/SAVPF, UDP/TLS/RTP/SAVP(F), … */
    for (size_t i = 0; i + 4 <= p.l; i++)
        if (memcmp(p.p + i, "RTP/", 4) == 0)
            return true;
    return false;
}

static int media_decode(struct tl_sdp_media *m, struct tl_pl v)
{
    struct tl_pl rest = v, type, port, proto, fmt, cnt;
    if (!next_tok(&rest, &type) || !next_tok(&rest, &port) || !next_tok(&rest, &proto))
        return EBADMSG;
    m->type = type;
    m->nports = 1;
    uint32_t x;
    if (pl_split(port, '/', &port, &cnt)) {
        if (!pl_u32(cnt, 65535, &x) || x == 0)
            return EBADMSG;
        m->nports = (uint16_t)x;
    }
    if (!pl_u32(port, 65535, &x))
        return EBADMSG;
    m->port = (uint16_t)x;
    m->proto_pl = proto;
    /* §5.14: protocol names are case-sensitive */
    m->proto = pl_eq(proto, "RTP/AVP")    ? TL_SDP_PROTO_RTP_AVP
               : pl_eq(proto, "RTP/SAVP") ? TL_SDP_PROTO_RTP_SAVP
                                          : TL_SDP_PROTO_OTHER;
    bool rtp = is_rtp_proto(proto);
    while (next_tok(&rest, &fmt)) {
        if (m->nfmt == TL_SDP_FMT_MAX)
            return E2BIG;
        struct tl_sdp_fmt *f = &m->fmt[m->nfmt++];
        f->id = fmt;
        f->pt = -1;
        if (rtp) {
            if (!pl_u32(fmt, 127, &x))
                return EBADMSG;
            f->pt = (int)x;
        }
    }
    return m->nfmt ? 0 : EBADMSG;
}

static struct tl_sdp_fmt *fmt_by_pt(struct tl_sdp_media *m, struct tl_pl pt)
{
    for (size_t i = 0; i < m->nfmt; i++)
        if (m->fmt[i].id.l == pt.l && memcmp(m->fmt[i].id.p, pt.p, pt.l) == 0)
            return &m->fmt[i];
    return NULL;
}

/* a=<name>[:<value>] at session (m == NULL) or media level */
static int attr_decode(struct tl_sdp *sdp, struct tl_sdp_media *m, struct tl_pl a)
{
    struct tl_pl name, val = {a.p + a.l, 0};
    if (!pl_split(a, ':', &name, &val))
        name = a;
    if (!name.l)
        return EBADMSG;

    static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (int d = 0; d < 4; d++) {
        if (pl_eq(name, dirs[d])) {
            if (m) {
                m->has_dir = true;
                m->dir = (enum tl_sdp_dir)d;
            } else {
                sdp->has_dir = true;
                sdp->dir = (enum tl_sdp_dir)d;
            }
            return 0;
        }
    }
    if (!m) /* rtpmap & co. mean nothing at session level; other attributes are ignored */
        return 0;

    struct tl_pl pt, rest;
    uint32_t x;
    if (pl_eq(name, "rtpmap")) { /* "<pt> <enc>/<rate>[/<channels>]" */
        struct tl_pl enc, rate, ch;
        if (!pl_split(val, ' ', &pt, &rest))
            return EBADMSG;
        struct tl_sdp_fmt *f = fmt_by_pt(m, pt);
        if (!pl_split(rest, '/', &enc, &rate) || !enc.l)
            return EBADMSG;
        ch = (struct tl_pl){0};
        pl_split(rate, '/', &rate, &ch);
        uint32_t r, c = 0;
        if (!pl_u32(rate, 10000000, &r) || (ch.p && !pl_u32(ch, 255, &c)))
            return EBADMSG;
        if (f && !f->enc.l) { /* a map for a format not in m=, or a second one: ignored */
            f->enc = enc;
            f->rate = r;
            f->channels = c;
        }
    } else if (pl_eq(name, "fmtp")) { /* "<fmt> <params>" */
        if (!pl_split(val, ' ', &pt, &rest))
            return EBADMSG;
        struct tl_sdp_fmt *f = fmt_by_pt(m, pt);
        if (f && !f->fmtp.l)
            f->fmtp = rest;
    } else if (pl_eq(name, "ptime")) {
        if (!pl_u32(val, 10000, &x)) /* "20.0" exists in the wild, 8866 says integer */
            return EBADMSG;
        m->ptime = x;
    } else if (pl_eq(name, "maxptime")) {
        if (!pl_u32(val, 10000, &x))
            return EBADMSG;
        m->maxptime = x;
    } else if (pl_eq(name, "rtcp")) { /* RFC 3605: "<port> [IN IP4 <addr>]" */
        struct tl_pl port = val;
        pl_split(val, ' ', &port, &rest);
        if (!pl_u32(port, 65535, &x) || x == 0)
            return EBADMSG;
        m->has_rtcp = true;
        m->rtcp_port = (uint16_t)x;
    } else if (pl_eq(name, "rtcp-mux")) {
        m->rtcp_mux = true;
    } else if (pl_eq(name, "crypto")) {
        if (m->ncrypto == TL_SDP_CRYPTO_MAX)
            return E2BIG;
        crypto_decode(&m->crypto[m->ncrypto++], val);
    }
    /* a=ssrc, a=label, a=rtcp-fb, …: ignored */
    return 0;
}

int tl_sdp_decode(struct tl_sdp *sdp, const struct tl_pl *body)
{
    memset(sdp, 0, sizeof *sdp);
    if (!body || !body->p)
        return EINVAL;
    if (body->l > TL_SDP_BODY_MAX)
        return E2BIG;

    const char *p = body->p, *end = body->p + body->l;
    size_t nattr = 0;
    int err = 0;
    bool seen_v = false, seen_o = false;
    struct tl_sdp_media *m = NULL;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        struct tl_pl line = {p, (size_t)(le - p)};
        p = nl ? nl + 1 : end;
        if (line.l && line.p[line.l - 1] == '\r')
            line.l--;
        if (!line.l) /* a trailing blank line is common (some stacks end with CRLFCRLF) */
            continue;
        for (size_t i = 0; i < line.l; i++) {
            unsigned char c = (unsigned char)line.p[i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return EBADMSG; /* CR, NUL, …: a smuggling vector in a printed answer */
        }
        if (line.l < 2 || line.p[1] != '=')
            return EBADMSG;
        char t = line.p[0];
        struct tl_pl v = {line.p + 2, line.l - 2};
        if (!seen_v) { /* §5: v= first */
            if (t != 'v' || !pl_eq(v, "0"))
                return EBADMSG;
            seen_v = true;
            continue;
        }
        switch (t) {
        case 'v':
            return EBADMSG;
        case 'o': { /* "<user> <sess-id> <sess-version> IN IP4|IP6 <addr>" */
            if (seen_o || m)
                return EBADMSG;
            seen_o = true;
            struct tl_pl rest = v;
            if (!next_tok(&rest, &sdp->o_user) || !next_tok(&rest, &sdp->o_id) ||
                !next_tok(&rest, &sdp->o_ver) || sdp->o_user.l > TL_SDP_OFIELD_MAX ||
                sdp->o_id.l > TL_SDP_OFIELD_MAX || sdp->o_ver.l > TL_SDP_OFIELD_MAX)
                return EBADMSG;
            if ((err = conn_decode(&sdp->o_addr, rest)))
                return err;
            break;
        }
        case 's':
            if (!m)
                sdp->name = v;
            break;
        case 'c':
            if ((err = conn_decode(m ? &m->conn : &sdp->conn, v)))
                return err;
            break;
        case 't': {
            struct tl_pl rest = v, a, b;
            if (!next_tok(&rest, &a) || !next_tok(&rest, &b) || !only_spaces(rest) ||
                !pl_u64(a, UINT64_MAX, &sdp->t_start) || !pl_u64(b, UINT64_MAX, &sdp->t_stop))
                return EBADMSG;
            break;
        }
        case 'm':
            if (!seen_o)
                return EBADMSG;
            if (sdp->nmedia == TL_SDP_MEDIA_MAX)
                return E2BIG;
            m = &sdp->media[sdp->nmedia++];
            if ((err = media_decode(m, v)))
                return err;
            break;
        case 'a':
            if (++nattr > TL_SDP_ATTR_MAX)
                return E2BIG;
            if ((err = attr_decode(sdp, m, v)))
                return err;
            break;
        case 'i':
        case 'u':
        case 'e':
        case 'p':
        case 'b':
        case 'r':
        case 'z':
        case 'k':
            break; /* known, not used */
        default:
            return EBADMSG; /* §5: a type letter we don't know → reject the description */
        }
    }
    if (!seen_v || !seen_o)
        return EBADMSG;
    return 0;
}

enum tl_sdp_dir tl_sdp_media_dir(const struct tl_sdp *sdp, const struct tl_sdp_media *m)
{
    if (m && m->has_dir)
        return m->dir;
    return sdp->has_dir ? sdp->dir : TL_SDP_SENDRECV;
}

void tl_sdp_wipe(struct tl_sdp *sdp)
{
    for (size_t i = 0; i < TL_SDP_MEDIA_MAX; i++)
        for (size_t j = 0; j < TL_SDP_CRYPTO_MAX; j++)
            sodium_memzero(sdp->media[i].crypto[j].key, TL_SDP_KEY_LEN);
}

/* ---- printer ---- */
struct out {
    char *p;
    size_t cap, len;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->err)
        return;
    if (n > o->cap - o->len) {
        o->err = ENOSPC;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* a slice that goes on the wire: CR, LF and NUL would break framing (or smuggle lines) */
static void put_pl(struct out *o, struct tl_pl pl)
{
    for (size_t i = 0; i < pl.l; i++)
        if (pl.p[i] == '\r' || pl.p[i] == '\n' || pl.p[i] == 0)
            o->err = o->err ? o->err : EINVAL;
    put(o, pl.p, pl.l);
}

static void putf(struct out *o, const char *fmt, unsigned long long a)
{
    char b[32];
    int n = snprintf(b, sizeof b, fmt, a);
    put(o, b, (size_t)n);
}

static void put_conn(struct out *o, const char *prefix, const struct tl_sdp_conn *c)
{
    puts_(o, prefix);
    puts_(o, c->af == AF_INET6 ? "IN IP6 " : "IN IP4 ");
    put_pl(o, c->addr);
    puts_(o, "\r\n");
}

static void put_media(struct out *o, const struct tl_sdp_media *m)
{
    puts_(o, "m=");
    put_pl(o, m->type);
    putf(o, " %llu", m->port);
    if (m->nports > 1)
        putf(o, "/%llu", m->nports);
    puts_(o, " ");
    put_pl(o, m->proto_pl);
    for (size_t i = 0; i < m->nfmt; i++) {
        puts_(o, " ");
        put_pl(o, m->fmt[i].id);
    }
    puts_(o, "\r\n");
    if (m->conn.has)
        put_conn(o, "c=", &m->conn);
    for (size_t i = 0; i < m->nfmt; i++) {
        const struct tl_sdp_fmt *f = &m->fmt[i];
        if (f->enc.l) {
            puts_(o, "a=rtpmap:");
            put_pl(o, f->id);
            puts_(o, " ");
            put_pl(o, f->enc);
            putf(o, "/%llu", f->rate);
            if (f->channels)
                putf(o, "/%llu", f->channels);
            puts_(o, "\r\n");
        }
        if (f->fmtp.l) {
            puts_(o, "a=fmtp:");
            put_pl(o, f->id);
            puts_(o, " ");
            put_pl(o, f->fmtp);
            puts_(o, "\r\n");
        }
    }
    if (m->ptime)
        putf(o, "a=ptime:%llu\r\n", m->ptime);
    if (m->maxptime)
        putf(o, "a=maxptime:%llu\r\n", m->maxptime);
    if (m->has_rtcp)
        putf(o, "a=rtcp:%llu\r\n", m->rtcp_port);
    if (m->rtcp_mux)
        puts_(o, "a=rtcp-mux\r\n");
    for (size_t i = 0; i < m->ncrypto; i++) {
        const struct tl_sdp_crypto *c = &m->crypto[i];
        puts_(o, "a=crypto:");
        if (c->raw.l) {
            put_pl(o, c->raw);
        } else {
            const char *sn = tl_sdp_suite_name(c->suite);
            if (!sn || !c->tag) {
                o->err = o->err ? o->err : EINVAL;
                return;
            }
            char b64[sodium_base64_ENCODED_LEN(TL_SDP_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
            putf(o, "%llu ", c->tag);
            puts_(o, sn);
            puts_(o, " inline:");
            sodium_bin2base64(b64, sizeof b64, c->key, TL_SDP_KEY_LEN,
                              sodium_base64_VARIANT_ORIGINAL);
            puts_(o, b64);
            sodium_memzero(b64, sizeof b64);
        }
        puts_(o, "\r\n");
    }
    if (m->has_dir) {
        puts_(o, "a=");
        puts_(o, tl_sdp_dir_name(m->dir));
        puts_(o, "\r\n");
    }
}

static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

int tl_sdp_print(char *buf, size_t cap, size_t *lenp, const struct tl_sdp *sdp,
                 struct tl_sdp_sess *sess)
{
    if (!buf || !lenp || !sdp || !sdp->o_addr.has || !sdp->o_addr.addr.l)
        return EINVAL;
    static const char V[] = "v=0\r\n";
    if (cap < sizeof V - 1)
        return ENOSPC;
    memcpy(buf, V, sizeof V - 1);

    /* everything after o= first, so that its digest decides the o= version */
    struct out o = {buf + 5, cap - 5, 0, 0};
    puts_(&o, "s=");
    put_pl(&o, sdp->name.l ? sdp->name : TL_PL("-")); /* §5.3: s= must not be empty */
    puts_(&o, "\r\n");
    if (sdp->conn.has)
        put_conn(&o, "c=", &sdp->conn);
    putf(&o, "t=%llu", sdp->t_start);
    putf(&o, " %llu\r\n", sdp->t_stop);
    if (sdp->has_dir) {
        puts_(&o, "a=");
        puts_(&o, tl_sdp_dir_name(sdp->dir));
        puts_(&o, "\r\n");
    }
    for (size_t i = 0; i < sdp->nmedia && i < TL_SDP_MEDIA_MAX; i++)
        put_media(&o, &sdp->media[i]);
    if (o.err)
        return o.err;

    /* "o=" user SP id SP ver SP "IN IP6 " addr CRLF, each at its decoder's cap; ours
     * ("- " and two 20-digit numbers) is shorter */
    char ol[2 + 3 * (TL_SDP_OFIELD_MAX + 1) + 7 + TL_SDP_HOST_MAX + 2];
    struct out ob = {ol, sizeof ol, 0, 0};
    uint64_t dg = 0, ver = 0;
    puts_(&ob, "o=");
    if (sess) {
        dg = fnv1a(o.p, o.len);
        ver = sess->ver + (!sess->printed || dg != sess->digest);
        putf(&ob, "- %llu", sess->id);
        putf(&ob, " %llu ", ver);
    } else {
        if (!sdp->o_user.l || !sdp->o_id.l || !sdp->o_ver.l)
            return EINVAL;
        put_pl(&ob, sdp->o_user);
        puts_(&ob, " ");
        put_pl(&ob, sdp->o_id);
        puts_(&ob, " ");
        put_pl(&ob, sdp->o_ver);
        puts_(&ob, " ");
    }
    put_conn(&ob, "", &sdp->o_addr);
    if (ob.err)
        return ob.err;
    if (ob.len > cap - 5 - o.len)
        return ENOSPC;
    memmove(buf + 5 + ob.len, buf + 5, o.len);
    memcpy(buf + 5, ol, ob.len);
    *lenp = 5 + ob.len + o.len;
    if (sess) {
        sess->ver = ver;
        sess->digest = dg;
        sess->printed = true;
    }
    return 0;
}
