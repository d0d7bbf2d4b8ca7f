/* Offer/answer for one audio stream (RFC 3264) with the trunk's SRTP policy (RFC 4568
 * SDES). PCMU/PCMA at 8000 Hz, telephone-event/8000 (RFC 4733), ptime 20. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "sdp/sdpint.h"

#define TE_PT      101     /* what we offer for telephone-event: the common choice */
#define TE_ALL     0x1FFFF /* events 0-16: DTMF 0-9 * # A-D, flash (RFC 4733 §3.2) */
#define TE_DEFAULT 0xFFFF  /* RFC 4733 §7.1.1: no fmtp means 0-15 */
#define PTIME      20

static int refuse(struct tl_sdp_refusal *why, int code, enum tl_sdp_mismatch kind, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
static int refuse(struct tl_sdp_refusal *why, int code, enum tl_sdp_mismatch kind, const char *fmt,
                  ...)
{
    if (why) {
        va_list ap;
        why->status = 488;
        why->warn_code = code;
        why->kind = kind;
        va_start(ap, fmt);
        vsnprintf(why->text, sizeof why->text, fmt, ap);
        va_end(ap);
    }
    return EPROTO;
}

static void rnd(struct tl_sdp_sess *s, void *buf, size_t n)
{
    if (s->rnd)
        s->rnd(buf, n, s->rnd_arg);
    else
        randombytes_buf(buf, n);
}

int tl_sdp_sess_init(struct tl_sdp_sess *s, tl_sdp_rand_h rh, void *arg)
{
    if (!s)
        return EINVAL;
    memset(s, 0, sizeof *s);
    if (sodium_init() < 0) /* idempotent; seeds randombytes */
        return EIO;
    s->rnd = rh;
    s->rnd_arg = arg;
    uint64_t id;
    rnd(s, &id, sizeof id);
    /* RFC 8866 §5.2: numeric; kept below 2^62 so that ver never wraps in practice */
    s->id = id & 0x3FFFFFFFFFFFFFFFull;
    s->ver = 0; /* the first print makes it 1 */
    return 0;
}

void tl_sdp_sess_wipe(struct tl_sdp_sess *s)
{
    if (s)
        sodium_memzero(s, sizeof *s);
}

void tl_sdp_nego_wipe(struct tl_sdp_nego *n)
{
    if (n)
        sodium_memzero(n, sizeof *n);
}

/* Our key for `suite`, drawn once per call; redrawn if it equals the peer's (a peer that
 * reflects our own key back would make both directions share one keystream family). */
static int our_key(struct tl_sdp_sess *s, enum tl_sdp_suite suite, const uint8_t *peer,
                   uint8_t out[TL_SDP_KEY_LEN])
{
    int i = suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32;
    for (int tries = 0;
         !s->have_key[i] || (peer && sodium_memcmp(s->key[i], peer, TL_SDP_KEY_LEN) == 0);
         tries++) {
        if (tries == 3)
            return EIO; /* the random source is broken */
        rnd(s, s->key[i], TL_SDP_KEY_LEN);
        s->have_key[i] = true;
    }
    memcpy(out, s->key[i], TL_SDP_KEY_LEN);
    return 0;
}

static int local_af(const struct tl_sdp_local *loc)
{
    unsigned char bin[16];
    if (!loc || !loc->addr || !loc->port)
        return 0;
    if (inet_pton(AF_INET, loc->addr, bin) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, loc->addr, bin) == 1)
        return AF_INET6;
    return 0;
}

static void head(struct tl_sdp *d, const struct tl_sdp_local *loc, int af)
{
    memset(d, 0, sizeof *d);
    d->o_user = TL_PL("-");
    d->o_addr = (struct tl_sdp_conn){true, af, true, tl_pl_str(loc->addr)};
    d->name = TL_PL("-");
    d->conn = d->o_addr;
}

static enum tl_sdp_codec fmt_codec(const struct tl_sdp_fmt *f)
{
    if (f->enc.l) { /* an rtpmap wins over the static table (RFC 3551 §6) */
        if (f->rate != 8000 || f->channels > 1)
            return TL_SDP_CODEC_NONE;
        if (tl_sdp_pl_caseeq(f->enc, "PCMU"))
            return TL_SDP_CODEC_PCMU;
        if (tl_sdp_pl_caseeq(f->enc, "PCMA"))
            return TL_SDP_CODEC_PCMA;
        return TL_SDP_CODEC_NONE;
    }
    return f->pt == 0 ? TL_SDP_CODEC_PCMU : f->pt == 8 ? TL_SDP_CODEC_PCMA : TL_SDP_CODEC_NONE;
}

static bool fmt_is_te(const struct tl_sdp_fmt *f)
{
    return f->pt >= 0 && f->rate == 8000 && tl_sdp_pl_caseeq(f->enc, "telephone-event");
}

/* RFC 4733 §7.1.1 fmtp: "0-15", "0-11,16", … → bitmask of events 0-16. A list we can't
 * read counts as the default, which every DTMF sender supports. */
static uint32_t te_events(struct tl_pl fmtp)
{
    if (!fmtp.l)
        return TE_DEFAULT;
    uint32_t mask = 0;
    size_t i = 0;
    while (i < fmtp.l) {
        unsigned a = 0, b, nd = 0;
        while (i < fmtp.l && fmtp.p[i] >= '0' && fmtp.p[i] <= '9' && nd < 4)
            a = a * 10 + (unsigned)(fmtp.p[i++] - '0'), nd++;
        if (!nd)
            return TE_DEFAULT;
        b = a;
        if (i < fmtp.l && fmtp.p[i] == '-') {
            i++;
            b = 0;
            nd = 0;
            while (i < fmtp.l && fmtp.p[i] >= '0' && fmtp.p[i] <= '9' && nd < 4)
                b = b * 10 + (unsigned)(fmtp.p[i++] - '0'), nd++;
            if (!nd || b < a)
                return TE_DEFAULT;
        }
        for (unsigned e = a; e <= b && e <= 16; e++)
            mask |= 1u << e;
        if (i < fmtp.l && fmtp.p[i] != ',')
            return TE_DEFAULT;
        i++;
    }
    return mask & TE_ALL;
}

/* mask → "0-15,16"-style ranges */
static void te_text(char *out, size_t cap, uint32_t mask)
{
    size_t n = 0;
    out[0] = 0;
    for (unsigned e = 0; e <= 16; e++) {
        if (!(mask & (1u << e)))
            continue;
        unsigned f = e;
        while (f < 16 && (mask & (1u << (f + 1))))
            f++;
        int w = f > e ? snprintf(out + n, cap - n, "%s%u-%u", n ? "," : "", e, f)
                      : snprintf(out + n, cap - n, "%s%u", n ? "," : "", e);
        if (w < 0 || (size_t)w >= cap - n)
            return;
        n += (size_t)w;
        e = f;
    }
}

/* RFC 3264 §6.1: each side may only narrow the other's direction. `peer` is the direction
 * the peer wrote, `want` ours; the result is ours as it goes into our SDP. */
static enum tl_sdp_dir narrow(enum tl_sdp_dir peer, enum tl_sdp_dir want)
{
    bool peer_recv = peer == TL_SDP_SENDRECV || peer == TL_SDP_RECVONLY;
    bool peer_send = peer == TL_SDP_SENDRECV || peer == TL_SDP_SENDONLY;
    bool send = peer_recv && (want == TL_SDP_SENDRECV || want == TL_SDP_SENDONLY);
    bool recv = peer_send && (want == TL_SDP_SENDRECV || want == TL_SDP_RECVONLY);
    return send && recv ? TL_SDP_SENDRECV
           : send       ? TL_SDP_SENDONLY
           : recv       ? TL_SDP_RECVONLY
                        : TL_SDP_INACTIVE;
}

/* the peer's direction, with RFC 3264 §8.4's legacy hold (c=0.0.0.0: "don't send to me") */
static enum tl_sdp_dir peer_dir(const struct tl_sdp *sdp, const struct tl_sdp_media *m,
                                const struct tl_sdp_conn *c)
{
    enum tl_sdp_dir d = tl_sdp_media_dir(sdp, m);
    if (c->af == AF_INET && c->addr.l == 7 && memcmp(c->addr.p, "0.0.0.0", 7) == 0)
        d = d == TL_SDP_SENDRECV || d == TL_SDP_SENDONLY ? TL_SDP_SENDONLY : TL_SDP_INACTIVE;
    return d;
}

/* Codec, DTMF, address of one audio m= line into *neg (no crypto, no direction). */
static int take_media(struct tl_sdp_nego *neg, struct tl_sdp_refusal *why, const struct tl_sdp *sdp,
                      size_t idx, const struct tl_sdp_conn **cp, size_t *codec_fi, int *te_fi)
{
    const struct tl_sdp_media *m = &sdp->media[idx];
    /* RFC 3264 §6.1: the offerer's order is its preference; we follow it */
    size_t fi = m->nfmt;
    for (size_t i = 0; i < m->nfmt && fi == m->nfmt; i++)
        if (fmt_codec(&m->fmt[i]))
            fi = i;
    if (fi == m->nfmt)
        return refuse(why, 305, TL_SDP_MISMATCH_CODEC,
                      "Incompatible media format: no supported codec in the audio stream "
                      "(this trunk speaks PCMU and PCMA at 8000 Hz)");
    const struct tl_sdp_conn *c = m->conn.has ? &m->conn : &sdp->conn;
    if (!c->has)
        return refuse(why, 301, TL_SDP_MISMATCH_ADDRESS,
                      "Incompatible network address formats: no c= line for the "
                      "audio stream");
    if (!c->is_ip)
        return refuse(why, 301, TL_SDP_MISMATCH_ADDRESS,
                      "Incompatible network address formats: c= must be an IPv4 or IPv6 "
                      "address, not a host name");
    int te = -1;
    for (size_t i = 0; i < m->nfmt && te < 0; i++)
        if (fmt_is_te(&m->fmt[i]) && (te_events(m->fmt[i].fmtp) & TE_DEFAULT))
            te = (int)i;

    neg->midx = idx;
    neg->codec = fmt_codec(&m->fmt[fi]);
    neg->pt = (uint8_t)m->fmt[fi].pt;
    neg->te_pt = te >= 0 ? m->fmt[te].pt : -1;
    neg->te_events = te >= 0 ? te_events(m->fmt[te].fmtp) : 0;
    neg->ptime = PTIME;
    neg->rptime = m->ptime;
    neg->af = c->af;
    memcpy(neg->raddr, c->addr.p, c->addr.l); /* is_ip: < TL_SDP_ADDR_MAX */
    neg->raddr[c->addr.l] = 0;
    neg->rport = m->port;
    neg->rtcp_port = m->has_rtcp ? m->rtcp_port : (uint16_t)(m->port + 1);
    neg->rtcp_mux_offered = m->rtcp_mux;
    *cp = c;
    *codec_fi = fi;
    *te_fi = te;
    return 0;
}

static bool is_audio(const struct tl_sdp_media *m)
{
    return tl_sdp_pl_caseeq(m->type, "audio");
}

/* RFC 4585 AVPF and RFC 5124 SAVPF (RTP/AVPF, RTP/SAVPF, UDP/TLS/RTP/SAVPF: what WebRTC
 * offers); §5.14: protocol names are case-sensitive */
static bool is_avpf(struct tl_pl proto)
{
    return proto.l >= 4 && memcmp(proto.p + proto.l - 4, "AVPF", 4) == 0;
}

static bool is_dtls(struct tl_pl proto) /* RFC 5764 */
{
    return proto.l >= 8 && memcmp(proto.p, "UDP/TLS/", 8) == 0;
}

/* Can stream idx of the offer be answered under the policy? Fills why when not. */
static int acceptable(const struct tl_sdp *offer, size_t idx, enum tl_sdp_policy pol,
                      struct tl_sdp_refusal *why, int *crypto_i)
{
    const struct tl_sdp_media *m = &offer->media[idx];
    *crypto_i = -1;
    int pn = (int)(m->proto_pl.l > 40 ? 40 : m->proto_pl.l);
    if (m->proto == TL_SDP_PROTO_OTHER && is_avpf(m->proto_pl))
        return refuse(why, 302, TL_SDP_MISMATCH_PROFILE,
                      "Incompatible transport protocol: %.*s is a WebRTC-style AVPF profile "
                      "(RTCP feedback%s), not supported — configure the carrier or PBX to offer "
                      "RTP/AVP, or RTP/SAVP with SDES a=crypto",
                      pn, m->proto_pl.p, is_dtls(m->proto_pl) ? ", DTLS-SRTP" : "");
    if (m->proto == TL_SDP_PROTO_OTHER)
        return refuse(why, 302,
                      is_dtls(m->proto_pl) ? TL_SDP_MISMATCH_ENCRYPTION : TL_SDP_MISMATCH_OTHER,
                      "Incompatible transport protocol: %.*s is not supported — offer RTP/AVP, "
                      "or RTP/SAVP with SDES a=crypto (DTLS-SRTP and AVPF are not supported)",
                      pn, m->proto_pl.p);
    if (m->proto == TL_SDP_PROTO_RTP_AVP && pol == TL_SDP_SRTP_REQUIRED)
        return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                      "Incompatible media format: SRTP is required on this trunk but the "
                      "offer is plain RTP/AVP — set Media encryption to Allowed on both sides "
                      "to test, then back to Required");
    if (m->proto == TL_SDP_PROTO_RTP_SAVP && pol == TL_SDP_SRTP_DISABLED)
        return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                      "Incompatible media format: the offer is SRTP (RTP/SAVP) but Media "
                      "encryption is Disabled on this trunk — set it to Allowed or Required");
    struct tl_sdp_nego tmp;
    const struct tl_sdp_conn *c;
    size_t fi;
    int te, err;
    memset(&tmp, 0, sizeof tmp);
    if ((err = take_media(&tmp, why, offer, idx, &c, &fi, &te)))
        return err;
    if (m->proto != TL_SDP_PROTO_RTP_SAVP)
        return 0;
    /* RFC 4568 §7.1.2: the first usable line in the offer's order */
    for (size_t i = 0; i < m->ncrypto; i++) {
        if (m->crypto[i].err == TL_SDP_CRYPTO_OK) {
            *crypto_i = (int)i;
            return 0;
        }
    }
    if (!m->ncrypto)
        return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                      "Incompatible media format: RTP/SAVP offered without a=crypto (SDES); "
                      "DTLS-SRTP is not supported");
    return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                  "Incompatible media format: no usable a=crypto line (needs "
                  "AES_CM_128_HMAC_SHA1_80 or _32, a 30-byte inline key, no MKI): %s",
                  tl_sdp_crypto_err_str(m->crypto[0].err));
}

int tl_sdp_answer(struct tl_sdp *ans, struct tl_sdp_nego *neg, struct tl_sdp_refusal *why,
                  const struct tl_sdp *offer, const struct tl_sdp_local *loc,
                  struct tl_sdp_sess *sess)
{
    int af = local_af(loc);
    if (!ans || !neg || !offer || !sess || !af)
        return EINVAL;
    memset(neg, 0, sizeof *neg);
    if (why)
        memset(why, 0, sizeof *why);
    head(ans, loc, af);

    /* Which audio stream: required → an SAVP one; disabled → an AVP one; allowed → an
     * SAVP one if any is usable, else an AVP one ("best effort" offers that carry both).
     * The refusal reported is the one for the first audio stream. */
    struct tl_sdp_refusal first = {0}, scratch;
    int pick = -1, ci = -1, naudio = 0;
    for (int pass = 0; pass < 2 && pick < 0; pass++) {
        for (size_t i = 0; i < offer->nmedia && pick < 0; i++) {
            const struct tl_sdp_media *m = &offer->media[i];
            if (!is_audio(m) || !m->port)
                continue;
            if (loc->policy == TL_SDP_SRTP_ALLOWED &&
                (pass == 0) != (m->proto == TL_SDP_PROTO_RTP_SAVP))
                continue;
            if (loc->policy != TL_SDP_SRTP_ALLOWED && pass == 1)
                break;
            naudio++;
            if (!acceptable(offer, i, loc->policy, naudio == 1 ? &first : &scratch, &ci))
                pick = (int)i;
        }
    }
    if (pick < 0) {
        memset(ans, 0, sizeof *ans);
        if (!naudio)
            return refuse(why, 304, TL_SDP_MISMATCH_OTHER,
                          "Media type not available: the offer has no active audio "
                          "stream");
        if (why)
            *why = first;
        return EPROTO;
    }

    const struct tl_sdp_media *om = &offer->media[pick];
    const struct tl_sdp_conn *c;
    size_t fi;
    int te;
    take_media(neg, NULL, offer, (size_t)pick, &c, &fi, &te); /* succeeded in acceptable() */
    neg->dir = narrow(peer_dir(offer, om, c), loc->dir);
    if (ci >= 0) {
        const struct tl_sdp_crypto *oc = &om->crypto[ci];
        neg->srtp = true;
        neg->suite = oc->suite;
        neg->tag = oc->tag;
        memcpy(neg->rkey, oc->key, TL_SDP_KEY_LEN);
        if (our_key(sess, oc->suite, oc->key, neg->lkey)) {
            tl_sdp_nego_wipe(neg);
            memset(ans, 0, sizeof *ans);
            return EIO;
        }
    }

    /* RFC 3264 §6: one m= line per offered one, same order; rejected ones with port 0 and
     * the offer's first format */
    ans->nmedia = offer->nmedia;
    for (size_t i = 0; i < offer->nmedia; i++) {
        const struct tl_sdp_media *o = &offer->media[i];
        struct tl_sdp_media *a = &ans->media[i];
        a->type = o->type;
        a->proto_pl = o->proto_pl;
        a->proto = o->proto;
        a->nports = 1;
        if ((int)i != pick) {
            a->nfmt = 1;
            a->fmt[0].id = o->fmt[0].id;
            a->fmt[0].pt = o->fmt[0].pt;
            continue;
        }
        a->port = loc->port;
        a->fmt[0] =
            (struct tl_sdp_fmt){o->fmt[fi].id,
                                o->fmt[fi].pt,
                                neg->codec == TL_SDP_CODEC_PCMU ? TL_PL("PCMU") : TL_PL("PCMA"),
                                8000,
                                0,
                                {0}};
        a->nfmt = 1;
        if (te >= 0) {
            /* RFC 4733 §7.1.1: the events both sides support */
            neg->te_events &= TE_ALL;
            te_text(neg->te_fmtp, sizeof neg->te_fmtp, neg->te_events);
            a->fmt[1] = (struct tl_sdp_fmt){
                o->fmt[te].id,          o->fmt[te].pt, TL_PL("telephone-event"), 8000, 0,
                tl_pl_str(neg->te_fmtp)};
            a->nfmt = 2;
        }
        a->ptime = PTIME;
        a->has_dir = true;
        a->dir = neg->dir;
        if (neg->srtp) {
            /* RFC 4568 §7.1.2: one line, the offer's tag and suite, our own key */
            a->ncrypto = 1;
            a->crypto[0].tag = neg->tag;
            a->crypto[0].suite = neg->suite;
            memcpy(a->crypto[0].key, neg->lkey, TL_SDP_KEY_LEN);
        }
    }
    return 0;
}

int tl_sdp_offer(struct tl_sdp *off, const struct tl_sdp_local *loc, struct tl_sdp_sess *sess)
{
    int af = local_af(loc);
    if (!off || !sess || !af)
        return EINVAL;
    head(off, loc, af);
    struct tl_sdp_media *m = &off->media[0];
    off->nmedia = 1;
    m->type = TL_PL("audio");
    m->port = loc->port;
    m->nports = 1;
    bool srtp = loc->policy == TL_SDP_SRTP_REQUIRED;
    bool avp_crypto = loc->policy == TL_SDP_SRTP_ALLOWED && loc->sdes_on_avp;
    m->proto = srtp ? TL_SDP_PROTO_RTP_SAVP : TL_SDP_PROTO_RTP_AVP;
    m->proto_pl = srtp ? TL_PL("RTP/SAVP") : TL_PL("RTP/AVP");
    m->fmt[0] = (struct tl_sdp_fmt){TL_PL("0"), 0, TL_PL("PCMU"), 8000, 0, {0}};
    m->fmt[1] = (struct tl_sdp_fmt){TL_PL("8"), 8, TL_PL("PCMA"), 8000, 0, {0}};
    m->fmt[2] =
        (struct tl_sdp_fmt){TL_PL("101"), TE_PT, TL_PL("telephone-event"), 8000, 0, TL_PL("0-16")};
    m->nfmt = 3;
    m->ptime = PTIME;
    m->has_dir = true;
    m->dir = loc->dir;
    if (srtp || avp_crypto) {
        /* _80 first: the stronger tag (RFC 4568 §6.2.1 recommends it for RTP) */
        static const enum tl_sdp_suite su[2] = {TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80,
                                                TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32};
        for (int i = 0; i < 2; i++) {
            m->crypto[i].tag = (uint32_t)i + 1;
            m->crypto[i].suite = su[i];
            if (our_key(sess, su[i], NULL, m->crypto[i].key)) {
                tl_sdp_wipe(off);
                return EIO;
            }
        }
        m->ncrypto = 2;
    }
    sess->offered = true;
    sess->offer_proto = m->proto;
    sess->offer_dir = loc->dir;
    sess->offer_avp_crypto = avp_crypto;
    return 0;
}

int tl_sdp_answer_take(struct tl_sdp_nego *neg, struct tl_sdp_refusal *why,
                       const struct tl_sdp *answer, const struct tl_sdp_local *loc,
                       struct tl_sdp_sess *sess)
{
    if (!neg || !answer || !sess || !sess->offered)
        return EINVAL;
    memset(neg, 0, sizeof *neg);
    if (why)
        memset(why, 0, sizeof *why);
    sess->offered = false; /* one answer per offer (RFC 3264 §4) */

    /* §6: as many m= lines as offered (one), in order */
    if (answer->nmedia != 1)
        return refuse(why, 300, TL_SDP_MISMATCH_OTHER,
                      "Incompatible network protocol: the answer has %zu m= lines, our offer "
                      "had 1",
                      answer->nmedia);
    const struct tl_sdp_media *m = &answer->media[0];
    if (!is_audio(m) || !m->port)
        return refuse(why, 304, TL_SDP_MISMATCH_OTHER,
                      "Media type not available: the answer rejected our audio "
                      "stream");
    if (m->proto != sess->offer_proto)
        return refuse(why, 302,
                      is_avpf(m->proto_pl) ? TL_SDP_MISMATCH_PROFILE : TL_SDP_MISMATCH_ENCRYPTION,
                      "Incompatible transport protocol: we offered %s, the answer has %.*s",
                      sess->offer_proto == TL_SDP_PROTO_RTP_SAVP ? "RTP/SAVP" : "RTP/AVP",
                      (int)(m->proto_pl.l > 40 ? 40 : m->proto_pl.l), m->proto_pl.p);
    const struct tl_sdp_conn *c;
    size_t fi;
    int te, err;
    if ((err = take_media(neg, why, answer, 0, &c, &fi, &te)))
        return err;
    if (te >= 0)
        te_text(neg->te_fmtp, sizeof neg->te_fmtp, neg->te_events);
    /* A peer that widens our direction (answers our sendonly with sendrecv — a known bug
     * in the field) is narrowed rather than refused: we never send or expect more than we
     * offered. */
    neg->dir = narrow(peer_dir(answer, m, c), sess->offer_dir);
    /* best effort SRTP (our RTP/AVP offer carried a=crypto): an answer without any a=crypto
     * line declined it, and the call is plain RTP */
    if (m->proto != TL_SDP_PROTO_RTP_SAVP && (!sess->offer_avp_crypto || !m->ncrypto))
        return 0;

    /* RFC 4568 §7.1.3: one line, one of our tags with the suite we gave it */
    for (size_t i = 0; i < m->ncrypto; i++) {
        const struct tl_sdp_crypto *k = &m->crypto[i];
        if (k->err)
            continue;
        if (!((k->tag == 1 && k->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80) ||
              (k->tag == 2 && k->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32)))
            continue;
        int si = k->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32;
        if (!sess->have_key[si])
            continue;
        if (sodium_memcmp(sess->key[si], k->key, TL_SDP_KEY_LEN) == 0) {
            tl_sdp_nego_wipe(neg);
            return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                          "Incompatible media format: the answer's SRTP key is our "
                          "own (a reflected key)");
        }
        neg->srtp = true;
        neg->suite = k->suite;
        neg->tag = k->tag;
        memcpy(neg->rkey, k->key, TL_SDP_KEY_LEN);
        memcpy(neg->lkey, sess->key[si], TL_SDP_KEY_LEN);
        return 0;
    }
    tl_sdp_nego_wipe(neg);
    return refuse(why, 305, TL_SDP_MISMATCH_ENCRYPTION,
                  "Incompatible media format: the answer has no usable a=crypto line for our "
                  "tags (1 AES_CM_128_HMAC_SHA1_80, 2 AES_CM_128_HMAC_SHA1_32)%s%s",
                  m->ncrypto ? ": " : "",
                  m->ncrypto ? tl_sdp_crypto_err_str(m->crypto[0].err) : "");
}
