/* SDP: decoding real carrier/UA offers, offer/answer under each SRTP policy, hold/resume
 * directions (RFC 3264 §6.1), SDES validation (RFC 4568), caps, late offer round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "sdp/sdp.h"

/* RFC 4568 §9.1 example keys (30 bytes each) */
#define K1 "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
#define K2 "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj"

/* Twilio Elastic SIP Trunking INVITE body (shape as captured; addresses from its ranges) */
static const char TWILIO[] = "v=0\r\n"
                             "o=root 1876543210 1876543210 IN IP4 54.172.60.1\r\n"
                             "s=Twilio Media Gateway\r\n"
                             "c=IN IP4 54.172.60.1\r\n"
                             "t=0 0\r\n"
                             "m=audio 14398 RTP/AVP 0 8 101\r\n"
                             "a=rtpmap:0 PCMU/8000\r\n"
                             "a=rtpmap:8 PCMA/8000\r\n"
                             "a=rtpmap:101 telephone-event/8000\r\n"
                             "a=fmtp:101 0-16\r\n"
                             "a=ptime:20\r\n"
                             "a=maxptime:150\r\n"
                             "a=sendrecv\r\n";

/* Telnyx with SRTP enabled: RTP/SAVP, two crypto lines, a=rtcp */
static const char TELNYX[] = "v=0\r\n"
                             "o=- 4060517862 4060517862 IN IP4 192.76.120.10\r\n"
                             "s=Telnyx\r\n"
                             "c=IN IP4 192.76.120.10\r\n"
                             "t=0 0\r\n"
                             "m=audio 30418 RTP/SAVP 0 8 9 101\r\n"
                             "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "\r\n"
                             "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K2 "\r\n"
                             "a=rtpmap:0 PCMU/8000\r\n"
                             "a=rtpmap:8 PCMA/8000\r\n"
                             "a=rtpmap:9 G722/8000\r\n"
                             "a=rtpmap:101 telephone-event/8000\r\n"
                             "a=fmtp:101 0-16\r\n"
                             "a=ptime:20\r\n"
                             "a=rtcp:30419 IN IP4 192.76.120.10\r\n"
                             "a=sendrecv\r\n";

/* baresip 2.x default offer (opus, G722 first; rtcp-mux, ssrc, label; LF line ends) */
static const char BARESIP[] = "v=0\n"
                              "o=- 1503264468 2086563706 IN IP4 192.168.1.33\n"
                              "s=-\n"
                              "c=IN IP4 192.168.1.33\n"
                              "t=0 0\n"
                              "m=audio 10390 RTP/AVP 96 9 0 8 101\n"
                              "b=AS:512\n"
                              "a=rtpmap:96 opus/48000/2\n"
                              "a=fmtp:96 stereo=1;sprop-stereo=1\n"
                              "a=rtpmap:9 G722/8000\n"
                              "a=rtpmap:0 PCMU/8000\n"
                              "a=rtpmap:8 PCMA/8000\n"
                              "a=rtpmap:101 telephone-event/8000\n"
                              "a=fmtp:101 0-15\n"
                              "a=sendrecv\n"
                              "a=label:1\n"
                              "a=ssrc:4179520463 cname:0a3f8c1b-7e4e@host\n"
                              "a=rtcp-rsize\n"
                              "a=rtcp-mux\n"
                              "a=ptime:20\n";

/* a softphone with video; PCMA first; IPv6 */
static const char VIDEO[] = "v=0\r\n"
                            "o=alice 2890844526 2890844527 IN IP6 2001:db8::10\r\n"
                            "s=Talk\r\n"
                            "c=IN IP6 2001:db8::10\r\n"
                            "t=0 0\r\n"
                            "m=audio 7078 RTP/AVP 8 0 101\r\n"
                            "a=rtpmap:101 telephone-event/8000\r\n"
                            "m=video 9078 RTP/AVP 96 97\r\n"
                            "a=rtpmap:96 VP8/90000\r\n"
                            "a=rtpmap:97 H264/90000\r\n"
                            "a=fmtp:97 profile-level-id=42801F\r\n"
                            "a=rtcp-fb:* nack pli\r\n";

static struct tl_sdp A, B, C; /* ~22 KB each: not on cmocka's stack */

static int dec(struct tl_sdp *s, const char *txt)
{
    struct tl_pl pl = tl_pl_str(txt);
    return tl_sdp_decode(s, &pl);
}

static bool pl_is(struct tl_pl pl, const char *s)
{
    return pl.l == strlen(s) && memcmp(pl.p, s, pl.l) == 0;
}

/* deterministic "random" for reproducible tests: a counter stream */
static void ctr_rand(void *buf, size_t n, void *arg)
{
    uint8_t *c = arg, *b = buf;
    for (size_t i = 0; i < n; i++)
        b[i] = (*c)++;
}

static const struct tl_sdp_local LOC = {TL_SDP_SRTP_ALLOWED, "203.0.113.5", 40000, TL_SDP_SENDRECV,
                                        false};

static char out[4096];
static size_t outl;

/* answers txt with policy; returns tl_sdp_answer's result; on 0 the answer is in out */
static int answer(const char *txt, enum tl_sdp_policy pol, enum tl_sdp_dir want,
                  struct tl_sdp_sess *sess, struct tl_sdp_nego *neg, struct tl_sdp_refusal *why)
{
    struct tl_sdp_local loc = LOC;
    loc.policy = pol;
    loc.dir = want;
    assert_int_equal(dec(&A, txt), 0);
    int rc = tl_sdp_answer(&B, neg, why, &A, &loc, sess);
    if (rc == 0) {
        assert_int_equal(tl_sdp_print(out, sizeof out, &outl, &B, sess), 0);
        out[outl] = 0;
        tl_sdp_wipe(&B);
    }
    return rc;
}

static void test_parse_twilio(void **state)
{
    assert_int_equal(dec(&A, TWILIO), 0);
    assert_true(pl_is(A.o_user, "root"));
    assert_true(pl_is(A.o_id, "1876543210"));
    assert_true(pl_is(A.name, "Twilio Media Gateway"));
    assert_true(A.conn.has && A.conn.is_ip && A.conn.af == AF_INET);
    assert_true(pl_is(A.conn.addr, "54.172.60.1"));
    assert_int_equal(A.nmedia, 1);
    const struct tl_sdp_media *m = &A.media[0];
    assert_true(pl_is(m->type, "audio"));
    assert_int_equal(m->port, 14398);
    assert_int_equal(m->proto, TL_SDP_PROTO_RTP_AVP);
    assert_int_equal(m->nfmt, 3);
    assert_int_equal(m->fmt[2].pt, 101);
    assert_true(pl_is(m->fmt[2].enc, "telephone-event"));
    assert_int_equal(m->fmt[2].rate, 8000);
    assert_true(pl_is(m->fmt[2].fmtp, "0-16"));
    assert_int_equal(m->ptime, 20);
    assert_int_equal(m->maxptime, 150);
    assert_int_equal(tl_sdp_media_dir(&A, m), TL_SDP_SENDRECV);
}

static void test_parse_telnyx(void **state)
{
    assert_int_equal(dec(&A, TELNYX), 0);
    const struct tl_sdp_media *m = &A.media[0];
    assert_int_equal(m->proto, TL_SDP_PROTO_RTP_SAVP);
    assert_int_equal(m->ncrypto, 2);
    assert_int_equal(m->crypto[0].err, TL_SDP_CRYPTO_OK);
    assert_int_equal(m->crypto[0].tag, 1);
    assert_int_equal(m->crypto[0].suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
    assert_int_equal(m->crypto[1].suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
    assert_int_equal(m->crypto[0].key[0], 0x3d); /* 'PS1u' = 3d 2d 6e */
    assert_int_equal(m->crypto[0].key[1], 0x2d);
    assert_true(m->has_rtcp);
    assert_int_equal(m->rtcp_port, 30419);
    tl_sdp_wipe(&A);
    for (size_t i = 0; i < TL_SDP_KEY_LEN; i++)
        assert_int_equal(A.media[0].crypto[0].key[i], 0);
}

/* every policy against a plain and an SRTP offer */
static void test_policy_matrix(void **state)
{
    struct tl_sdp_sess s;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;

    /* plain RTP/AVP */
    for (int pol = TL_SDP_SRTP_DISABLED; pol <= TL_SDP_SRTP_ALLOWED; pol++) {
        assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
        assert_int_equal(answer(TWILIO, pol, TL_SDP_SENDRECV, &s, &n, &why), 0);
        assert_false(n.srtp);
        assert_int_equal(n.codec, TL_SDP_CODEC_PCMU);
        assert_int_equal(n.pt, 0);
        assert_int_equal(n.te_pt, 101);
        assert_int_equal(n.te_events, 0x1FFFF);
        assert_string_equal(n.raddr, "54.172.60.1");
        assert_int_equal(n.af, AF_INET);
        assert_int_equal(n.rport, 14398);
        assert_int_equal(n.rtcp_port, 14399);
        assert_int_equal(n.ptime, 20);
        assert_int_equal(n.rptime, 20);
        assert_int_equal(n.dir, TL_SDP_SENDRECV);
        assert_non_null(strstr(out, "m=audio 40000 RTP/AVP 0 101\r\n"));
        assert_non_null(strstr(out, "c=IN IP4 203.0.113.5\r\n"));
        assert_non_null(strstr(out, "a=rtpmap:0 PCMU/8000\r\n"));
        assert_non_null(strstr(out, "a=fmtp:101 0-16\r\n"));
        assert_non_null(strstr(out, "a=ptime:20\r\n"));
        assert_non_null(strstr(out, "a=sendrecv\r\n"));
        assert_null(strstr(out, "a=crypto"));
        tl_sdp_sess_wipe(&s);
    }
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    assert_int_equal(answer(TWILIO, TL_SDP_SRTP_REQUIRED, TL_SDP_SENDRECV, &s, &n, &why), EPROTO);
    assert_int_equal(why.status, 488);
    assert_int_equal(why.warn_code, 305);
    assert_string_equal(why.text,
                        "Incompatible media format: SRTP is required on this trunk but the offer "
                        "is plain RTP/AVP — set Media encryption to Allowed on both sides to "
                        "test, then back to Required");

    /* RTP/SAVP */
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_DISABLED, TL_SDP_SENDRECV, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 305);
    assert_string_equal(why.text, "Incompatible media format: the offer is SRTP (RTP/SAVP) but "
                                  "Media encryption is Disabled on this trunk — set it to "
                                  "Allowed or Required");
    for (int pol = TL_SDP_SRTP_ALLOWED; pol <= TL_SDP_SRTP_REQUIRED; pol++) {
        assert_int_equal(answer(TELNYX, pol, TL_SDP_SENDRECV, &s, &n, &why), 0);
        assert_true(n.srtp);
        assert_int_equal(n.suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
        assert_int_equal(n.tag, 1);
        assert_int_equal(n.rtcp_port, 30419);
        assert_int_equal(n.rkey[0], 0x3d);
        assert_memory_not_equal(n.lkey, n.rkey, TL_SDP_KEY_LEN);
        assert_non_null(strstr(out, "m=audio 40000 RTP/SAVP 0 101\r\n"));
        /* one crypto line, tag and suite of the offer's first, a 40-character key of ours */
        const char *c = strstr(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:");
        assert_non_null(c);
        assert_null(strstr(c + 1, "a=crypto"));
        assert_null(strstr(out, K1));
        c = strchr(c, ':') + 1;
        c = strstr(c, "inline:") + 7;
        assert_int_equal(strcspn(c, "\r"), 40);
        /* re-parse our own answer: the key in it is n.lkey */
        assert_int_equal(dec(&C, out), 0);
        assert_int_equal(C.media[0].crypto[0].err, TL_SDP_CRYPTO_OK);
        assert_memory_equal(C.media[0].crypto[0].key, n.lkey, TL_SDP_KEY_LEN);
    }
    tl_sdp_nego_wipe(&n);
    tl_sdp_sess_wipe(&s);
}

static void test_baresip_and_video(void **state)
{
    struct tl_sdp_sess s;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);

    /* opus and G722 skipped, PCMU is the first we support in the offerer's order */
    assert_int_equal(answer(BARESIP, TL_SDP_SRTP_ALLOWED, TL_SDP_SENDRECV, &s, &n, &why), 0);
    assert_int_equal(n.codec, TL_SDP_CODEC_PCMU);
    assert_int_equal(n.te_pt, 101);
    assert_int_equal(n.te_events, 0xFFFF);
    assert_true(n.rtcp_mux_offered);
    assert_non_null(strstr(out, "m=audio 40000 RTP/AVP 0 101\r\n"));
    assert_non_null(strstr(out, "a=fmtp:101 0-15\r\n"));
    assert_null(strstr(out, "rtcp-mux")); /* RFC 5761 §5.1.1: not answered = not muxed */

    /* PCMA first and static (no rtpmap), video rejected with port 0, IPv6 */
    assert_int_equal(answer(VIDEO, TL_SDP_SRTP_DISABLED, TL_SDP_SENDRECV, &s, &n, &why), 0);
    assert_int_equal(n.codec, TL_SDP_CODEC_PCMA);
    assert_int_equal(n.pt, 8);
    assert_int_equal(n.te_events, 0xFFFF); /* no fmtp: 0-15 (RFC 4733 §7.1.1) */
    assert_int_equal(n.af, AF_INET6);
    assert_string_equal(n.raddr, "2001:db8::10");
    assert_int_equal(n.midx, 0);
    assert_non_null(strstr(out, "m=audio 40000 RTP/AVP 8 101\r\n"));
    assert_non_null(strstr(out, "m=video 0 RTP/AVP 96\r\n"));
    assert_int_equal(dec(&C, out), 0);
    assert_int_equal(C.nmedia, 2);
    assert_int_equal(C.media[1].port, 0);
    tl_sdp_sess_wipe(&s);
}

static void test_refusals(void **state)
{
    struct tl_sdp_sess s;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    static const char G722[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                               "t=0 0\r\nm=audio 5000 RTP/AVP 9 96\r\na=rtpmap:96 PCMU/16000\r\n";
    assert_int_equal(answer(G722, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 305);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_CODEC); /* not an encryption mismatch */
    assert_string_equal(why.text, "Incompatible media format: no supported codec in the audio "
                                  "stream (this trunk speaks PCMU and PCMA at 8000 Hz)");

    static const char NOAUDIO[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                                  "t=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n";
    assert_int_equal(answer(NOAUDIO, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 304);

    static const char DTLS[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                               "t=0 0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 0\r\n"
                               "a=fingerprint:sha-256 AB:CD\r\n";
    assert_int_equal(answer(DTLS, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 302);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_PROFILE);
    assert_non_null(strstr(why.text, "UDP/TLS/RTP/SAVPF is a WebRTC-style AVPF profile"));
    assert_non_null(strstr(why.text, "DTLS-SRTP"));

    /* AVPF (RFC 4585/5124) gets its own kind and text, whatever the policy */
    static const char *const avpf[] = {"RTP/SAVPF", "RTP/AVPF"};
    for (size_t i = 0; i < 2; i++) {
        for (int pol = TL_SDP_SRTP_DISABLED; pol <= TL_SDP_SRTP_REQUIRED; pol++) {
            char body[256];
            snprintf(body, sizeof body,
                     "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                     "t=0 0\r\nm=audio 5000 %s 0\r\n",
                     avpf[i]);
            assert_int_equal(answer(body, (enum tl_sdp_policy)pol, 0, &s, &n, &why), EPROTO);
            assert_int_equal(why.warn_code, 302);
            assert_int_equal(why.kind, TL_SDP_MISMATCH_PROFILE);
            assert_non_null(strstr(why.text, "AVPF profile"));
            assert_non_null(strstr(why.text, "RTP/AVP, or RTP/SAVP"));
            assert_null(strstr(why.text, "DTLS"));
        }
    }
    /* DTLS-SRTP without feedback is an encryption mismatch; an unknown transport neither */
    static const char DTLS_SAVP[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
                                    "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 "
                                    "UDP/TLS/RTP/SAVP 0\r\n";
    assert_int_equal(answer(DTLS_SAVP, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_ENCRYPTION);
    static const char UDP[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                              "t=0 0\r\nm=audio 5000 udp 0\r\n";
    assert_int_equal(answer(UDP, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_OTHER);

    static const char FQDN[] =
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 media.example\r\n"
        "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert_int_equal(answer(FQDN, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 301);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_ADDRESS);

    static const char NOC[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
                              "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert_int_equal(answer(NOC, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.warn_code, 301);

    static const char SAVP0[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                                "t=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n";
    assert_int_equal(answer(SAVP0, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), EPROTO);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_ENCRYPTION);
    assert_string_equal(why.text, "Incompatible media format: RTP/SAVP offered without a=crypto "
                                  "(SDES); DTLS-SRTP is not supported");

    static const char MKI[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                              "t=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n"
                              "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^20|1:32\r\n";
    assert_int_equal(answer(MKI, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), EPROTO);
    assert_string_equal(why.text, "Incompatible media format: no usable a=crypto line (needs "
                                  "AES_CM_128_HMAC_SHA1_80 or _32, a 30-byte inline key, no "
                                  "MKI): MKI present (not supported)");
    tl_sdp_sess_wipe(&s);
}

/* "best effort SRTP" offers carry an SAVP and an AVP audio stream */
static void test_two_audio_streams(void **state)
{
    struct tl_sdp_sess s;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    static const char BOTH[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                               "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\nm=audio 5002 RTP/SAVP 0\r\n"
                               "a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:" K2 "\r\n";
    assert_int_equal(answer(BOTH, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), 0);
    assert_int_equal(n.midx, 1);
    assert_true(n.srtp);
    assert_int_equal(n.tag, 7);
    assert_non_null(strstr(out, "m=audio 0 RTP/AVP 0\r\nm=audio 40000 RTP/SAVP 0\r\n"));
    assert_non_null(strstr(out, "a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert_int_equal(answer(BOTH, TL_SDP_SRTP_DISABLED, 0, &s, &n, &why), 0);
    assert_int_equal(n.midx, 0);
    assert_false(n.srtp);
    assert_non_null(strstr(out, "m=audio 40000 RTP/AVP 0\r\n"));
    assert_non_null(strstr(out, "m=audio 0 RTP/SAVP 0\r\n"));
    assert_int_equal(answer(BOTH, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), 0);
    assert_int_equal(n.midx, 1);

    /* SAVP stream unusable (bad key): allowed falls back to the AVP stream */
    static const char BAD[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                              "t=0 0\r\nm=audio 5002 RTP/SAVP 0\r\n"
                              "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
                              "m=audio 5000 RTP/AVP 0\r\n";
    assert_int_equal(answer(BAD, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), 0);
    assert_int_equal(n.midx, 1);
    assert_false(n.srtp);
    assert_int_equal(answer(BAD, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), EPROTO);
    assert_non_null(strstr(why.text, "inline key is not base64 of exactly 30 bytes"));
    tl_sdp_sess_wipe(&s);
}

static char *with_dir(char *buf, size_t cap, const char *media_attr, const char *caddr)
{
    snprintf(buf, cap,
             "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
             "m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n%s",
             caddr, media_attr);
    return buf;
}

/* RFC 3264 §6.1 and §8.4; the field bug "hold answered sendrecv" must not happen */
static void test_hold_resume(void **state)
{
    static const struct {
        const char *attr, *caddr;
        enum tl_sdp_dir want, ours;
        const char *line;
    } cases[] = {
        {"a=sendrecv\r\n", "192.0.2.1", TL_SDP_SENDRECV, TL_SDP_SENDRECV, "a=sendrecv"},
        {"a=sendonly\r\n", "192.0.2.1", TL_SDP_SENDRECV, TL_SDP_RECVONLY, "a=recvonly"},
        {"a=recvonly\r\n", "192.0.2.1", TL_SDP_SENDRECV, TL_SDP_SENDONLY, "a=sendonly"},
        {"a=inactive\r\n", "192.0.2.1", TL_SDP_SENDRECV, TL_SDP_INACTIVE, "a=inactive"},
        {"", "192.0.2.1", TL_SDP_SENDRECV, TL_SDP_SENDRECV, "a=sendrecv"},
        {"", "0.0.0.0", TL_SDP_SENDRECV, TL_SDP_RECVONLY, "a=recvonly"}, /* RFC 2543 hold */
        {"a=sendonly\r\n", "192.0.2.1", TL_SDP_SENDONLY, TL_SDP_INACTIVE, "a=inactive"},
        {"a=sendrecv\r\n", "192.0.2.1", TL_SDP_SENDONLY, TL_SDP_SENDONLY, "a=sendonly"},
    };
    struct tl_sdp_sess s;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    char buf[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
        assert_int_equal(answer(with_dir(buf, sizeof buf, cases[i].attr, cases[i].caddr),
                                TL_SDP_SRTP_ALLOWED, cases[i].want, &s, &n, &why),
                         0);
        assert_int_equal(n.dir, cases[i].ours);
        assert_non_null(strstr(out, cases[i].line));
        tl_sdp_sess_wipe(&s);
    }

    /* session-level direction applies to media without its own */
    static const char SESS[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                               "t=0 0\r\na=sendonly\r\nm=audio 5000 RTP/AVP 0\r\n";
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    assert_int_equal(answer(SESS, TL_SDP_SRTP_ALLOWED, 0, &s, &n, &why), 0);
    assert_int_equal(n.dir, TL_SDP_RECVONLY);

    /* one dialog: answer, same offer again, hold, resume — o= id fixed, version moves only
     * when the body does (RFC 3264 §8); SRTP key kept across hold */
    uint64_t id = s.id;
    tl_sdp_sess_wipe(&s);
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    id = s.id;
    uint8_t k0[TL_SDP_KEY_LEN];
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), 0);
    assert_int_equal(s.ver, 1);
    memcpy(k0, n.lkey, sizeof k0);
    char o1[64];
    snprintf(o1, sizeof o1, "o=- %llu 1 IN IP4 203.0.113.5\r\n", (unsigned long long)id);
    assert_non_null(strstr(out, o1));
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), 0);
    assert_int_equal(s.ver, 1);
    assert_non_null(strstr(out, o1));
    char hold[2048];
    snprintf(hold, sizeof hold, "%sa=sendonly\r\n", TELNYX);
    *strstr(hold, "a=sendrecv\r\n") = 0; /* drop the original direction */
    strcat(hold, "a=sendonly\r\n");
    assert_int_equal(answer(hold, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), 0);
    assert_int_equal(n.dir, TL_SDP_RECVONLY);
    assert_int_equal(s.ver, 2);
    assert_non_null(strstr(out, "a=recvonly\r\n"));
    assert_null(strstr(out, "a=sendrecv"));
    assert_memory_equal(n.lkey, k0, TL_SDP_KEY_LEN);
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s, &n, &why), 0);
    assert_int_equal(n.dir, TL_SDP_SENDRECV);
    assert_int_equal(s.ver, 3);
    assert_int_equal(s.id, id);
    tl_sdp_nego_wipe(&n);
    tl_sdp_sess_wipe(&s);
}

static enum tl_sdp_crypto_err crypto_err(const char *line)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
             "m=audio 5000 RTP/SAVP 0\r\na=crypto:%s\r\n",
             line);
    assert_int_equal(dec(&A, buf), 0);
    assert_int_equal(A.media[0].ncrypto, 1);
    return A.media[0].crypto[0].err;
}

static void test_crypto_validation(void **state)
{
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1), TL_SDP_CRYPTO_OK);
    assert_int_equal(crypto_err("999999999 AES_CM_128_HMAC_SHA1_32 inline:" K1), TL_SDP_CRYPTO_OK);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 INLINE:" K1 " WSH=128"),
                     TL_SDP_CRYPTO_OK);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^31"), TL_SDP_CRYPTO_OK);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^48"), TL_SDP_CRYPTO_OK);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|4294967296"),
                     TL_SDP_CRYPTO_OK);
    /* tag */
    assert_int_equal(crypto_err("0 AES_CM_128_HMAC_SHA1_80 inline:" K1), TL_SDP_CRYPTO_TAG);
    assert_int_equal(crypto_err("1000000000 AES_CM_128_HMAC_SHA1_80 inline:" K1),
                     TL_SDP_CRYPTO_TAG);
    assert_int_equal(crypto_err("99999999999999999999999 AES_CM_128_HMAC_SHA1_80 inline:" K1),
                     TL_SDP_CRYPTO_TAG);
    assert_int_equal(crypto_err("-1 AES_CM_128_HMAC_SHA1_80 inline:" K1), TL_SDP_CRYPTO_SYNTAX);
    /* suite */
    assert_int_equal(crypto_err("1 AES_256_CM_HMAC_SHA1_80 inline:" K1), TL_SDP_CRYPTO_SUITE);
    assert_int_equal(crypto_err("1 F8_128_HMAC_SHA1_80 inline:" K1), TL_SDP_CRYPTO_SUITE);
    assert_int_equal(crypto_err("1 aes_cm_128_hmac_sha1_80 inline:" K1), TL_SDP_CRYPTO_SUITE);
    /* key: bad base64, 29 and 31 bytes, trailing junk bits, empty */
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkp!ywjNWhc"
                                "YD0mXXtxaVBR"),
                     TL_SDP_CRYPTO_KEY);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 "
                                "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw="),
                     TL_SDP_CRYPTO_KEY);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 "
                                "inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="),
                     TL_SDP_CRYPTO_KEY);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "="), TL_SDP_CRYPTO_KEY);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:"), TL_SDP_CRYPTO_KEY);
    /* MKI, with and without a lifetime */
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^20|1:32"),
                     TL_SDP_CRYPTO_MKI);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|1:4"), TL_SDP_CRYPTO_MKI);
    /* lifetime */
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^20"),
                     TL_SDP_CRYPTO_LIFETIME);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^49"),
                     TL_SDP_CRYPTO_LIFETIME);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|1000"),
                     TL_SDP_CRYPTO_LIFETIME);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^x"),
                     TL_SDP_CRYPTO_SYNTAX);
    /* session parameters, several keys, other key methods, missing fields */
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 " UNENCRYPTED_SRTP"),
                     TL_SDP_CRYPTO_SESSION_PARAM);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 " KDR=1"),
                     TL_SDP_CRYPTO_SESSION_PARAM);
    assert_int_equal(
        crypto_err("1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "|2^31|1:4;inline:" K2 "|2^31|2:4"),
        TL_SDP_CRYPTO_MULTI_KEY);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80 uri:" K1), TL_SDP_CRYPTO_SYNTAX);
    assert_int_equal(crypto_err("1 AES_CM_128_HMAC_SHA1_80"), TL_SDP_CRYPTO_SYNTAX);
    assert_int_equal(crypto_err(""), TL_SDP_CRYPTO_SYNTAX);
    tl_sdp_wipe(&A);
}

static size_t build(char *buf, size_t cap, const char *extra_fmt, int n)
{
    size_t l = (size_t)snprintf(buf, cap,
                                "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
                                "c=IN IP4 192.0.2.1\r\nt=0 0\r\n");
    for (int i = 0; i < n; i++)
        l += (size_t)snprintf(buf + l, cap - l, extra_fmt, i % 100);
    return l;
}

static void test_caps(void **state)
{
    static char buf[40000];
    struct tl_pl pl;
    size_t l;
    /* 64 a= lines are fine, 65 are not */
    l = build(buf, sizeof buf, "m=audio 5000 RTP/AVP 0\r\n", 1);
    for (int i = 0; i < 64; i++)
        l += (size_t)snprintf(buf + l, sizeof buf - l, "a=x-%d\r\n", i);
    pl = (struct tl_pl){buf, l};
    assert_int_equal(tl_sdp_decode(&A, &pl), 0);
    l += (size_t)snprintf(buf + l, sizeof buf - l, "a=sendrecv\r\n");
    pl = (struct tl_pl){buf, l};
    assert_int_equal(tl_sdp_decode(&A, &pl), E2BIG);
    /* 8 m= lines fine, 9 not */
    l = build(buf, sizeof buf, "m=audio 5%03d RTP/AVP 0\r\n", 8);
    pl = (struct tl_pl){buf, l};
    assert_int_equal(tl_sdp_decode(&A, &pl), 0);
    l = build(buf, sizeof buf, "m=audio 5%03d RTP/AVP 0\r\n", 9);
    pl = (struct tl_pl){buf, l};
    assert_int_equal(tl_sdp_decode(&A, &pl), E2BIG);
    /* 32 formats fine, 33 not */
    l = build(buf, sizeof buf, "", 0);
    l += (size_t)snprintf(buf + l, sizeof buf - l, "m=audio 5000 RTP/AVP");
    for (int i = 0; i < 33; i++)
        l += (size_t)snprintf(buf + l, sizeof buf - l, " %d", 90 + i);
    char *last = strrchr(buf, ' ');
    memcpy(buf + l, "\r\n", 2);
    pl = (struct tl_pl){buf, l + 2};
    assert_int_equal(tl_sdp_decode(&A, &pl), E2BIG);
    memcpy(last, "\r\n", 2);
    pl = (struct tl_pl){buf, (size_t)(last - buf) + 2};
    assert_int_equal(tl_sdp_decode(&A, &pl), 0);
    assert_int_equal(A.media[0].nfmt, 32);
    /* 8 crypto lines fine, 9 not */
    l = build(buf, sizeof buf, "m=audio 5000 RTP/SAVP 0\r\n", 1);
    for (int i = 0; i < 9; i++) {
        pl = (struct tl_pl){buf, l};
        assert_int_equal(tl_sdp_decode(&A, &pl), 0);
        l += (size_t)snprintf(buf + l, sizeof buf - l,
                              "a=crypto:%d AES_CM_128_HMAC_SHA1_80 inline:" K1 "\r\n", i + 1);
    }
    pl = (struct tl_pl){buf, l};
    assert_int_equal(tl_sdp_decode(&A, &pl), E2BIG);
    /* body size: 16 KiB of s= padding */
    l = build(buf, sizeof buf, "", 0);
    l += (size_t)snprintf(buf + l, sizeof buf - l, "m=audio 5000 RTP/AVP 0\r\ni=");
    memset(buf + l, 'x', TL_SDP_BODY_MAX - l - 2);
    memcpy(buf + TL_SDP_BODY_MAX - 2, "\r\n", 2);
    pl = (struct tl_pl){buf, TL_SDP_BODY_MAX};
    assert_int_equal(tl_sdp_decode(&A, &pl), 0);
    pl.l++;
    assert_int_equal(tl_sdp_decode(&A, &pl), E2BIG);
    tl_sdp_wipe(&A);
}

/* Issue 11 item 19: every o= field the decoder accepts, the printer (without a session:
 * o= as decoded) can print; fuzz_sdp found a 556-byte o= that one took and not the other */
static void test_origin_caps(void **state)
{
    (void)state;
    static char buf[4096], printed[8192];
    char user[TL_SDP_OFIELD_MAX + 2], host[TL_SDP_HOST_MAX + 2];
    memset(user, 'u', sizeof user);
    memset(host, 'h', sizeof host);
    size_t len;
    for (int over = 0; over < 2; over++) {
        int ul = TL_SDP_OFIELD_MAX + over, hl = TL_SDP_HOST_MAX;
        for (int field = 0; field < 4; field++) {
            int l =
                snprintf(buf, sizeof buf,
                         "v=0\r\no=%.*s %.*s %.*s IN IP6 %.*s\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
                         "t=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
                         field == 0 ? ul : 1, user, field == 1 ? ul : 1, user, field == 2 ? ul : 1,
                         user, field == 3 ? hl + over : 9, field == 3 ? host : "2001:db8::1");
            struct tl_pl pl = {buf, (size_t)l};
            if (over) {
                assert_int_equal(tl_sdp_decode(&A, &pl), EBADMSG);
                continue;
            }
            assert_int_equal(tl_sdp_decode(&A, &pl), 0);
            assert_int_equal(tl_sdp_print(printed, sizeof printed, &len, &A, NULL), 0);
            struct tl_pl again = {printed, len};
            assert_int_equal(tl_sdp_decode(&B, &again), 0);
        }
    }
    /* the body fuzz_sdp stopped on: a 556-byte o= line */
    int l =
        snprintf(buf, sizeof buf, "v=0\r\no=%0540d 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n", 7);
    struct tl_pl pl = {buf, (size_t)l};
    assert_int_equal(tl_sdp_decode(&A, &pl), EBADMSG);
    tl_sdp_wipe(&A);
    tl_sdp_wipe(&B);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n",                     /* v= not first */
        "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\n",                     /* version */
        "v=0\r\ns=-\r\n",                                          /* no o= */
        "v=0\r\no=- 1 1 IN IP4\r\n",                               /* short o= */
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=IN IP5 1.2.3.4\r\n", /* addrtype */
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nc=ATM NSAP x\r\n",     /* nettype */
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nx=unknown\r\n",        /* type letter */
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 128\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP x\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 0\r\na=ptime:x\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:0\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=a\rb\r\n", /* bare CR inside a line */
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nbad\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = dec(&A, bad[i]);
        if (rc != EBADMSG)
            fail_msg("case %zu: got %d", i, rc);
    }
    char nul[] = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=a\0b\r\n";
    struct tl_pl pl = {nul, sizeof nul - 1};
    assert_int_equal(tl_sdp_decode(&A, &pl), EBADMSG);
}

/* late offer: INVITE without SDP → our offer in the 200 → their answer in the ACK */
static void test_late_offer(void **state)
{
    struct tl_sdp_sess us, peer;
    struct tl_sdp_nego nu, np;
    struct tl_sdp_refusal why;
    static char offer[2048], ans[2048];
    size_t ol, al;
    struct tl_sdp_local loc = LOC, ploc = {TL_SDP_SRTP_REQUIRED, "198.51.100.7", 20000, 0, false};

    for (int pol = TL_SDP_SRTP_DISABLED; pol <= TL_SDP_SRTP_REQUIRED; pol++) {
        loc.policy = (enum tl_sdp_policy)pol;
        ploc.policy = pol == TL_SDP_SRTP_REQUIRED ? TL_SDP_SRTP_REQUIRED : TL_SDP_SRTP_ALLOWED;
        assert_int_equal(tl_sdp_sess_init(&us, NULL, NULL), 0);
        assert_int_equal(tl_sdp_sess_init(&peer, NULL, NULL), 0);
        assert_int_equal(tl_sdp_answer_take(&nu, &why, &A, &loc, &us), EINVAL); /* no offer */
        assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
        assert_int_equal(tl_sdp_print(offer, sizeof offer, &ol, &B, &us), 0);
        offer[ol] = 0;
        tl_sdp_wipe(&B);
        if (pol == TL_SDP_SRTP_REQUIRED) {
            assert_non_null(strstr(offer, "m=audio 40000 RTP/SAVP 0 8 101\r\n"));
            assert_non_null(strstr(offer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
            assert_non_null(strstr(offer, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
        } else {
            assert_non_null(strstr(offer, "m=audio 40000 RTP/AVP 0 8 101\r\n"));
            assert_null(strstr(offer, "a=crypto"));
        }
        assert_non_null(strstr(offer, "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert_non_null(strstr(offer, "a=ptime:20\r\n"));
        assert_non_null(strstr(offer, "a=sendrecv\r\n"));

        /* the peer (our own answerer, as a stand-in) answers */
        assert_int_equal(dec(&A, offer), 0);
        assert_int_equal(tl_sdp_answer(&C, &np, &why, &A, &ploc, &peer), 0);
        assert_int_equal(tl_sdp_print(ans, sizeof ans, &al, &C, &peer), 0);
        ans[al] = 0;
        assert_int_equal(dec(&A, ans), 0);
        assert_int_equal(tl_sdp_answer_take(&nu, &why, &A, &loc, &us), 0);
        assert_int_equal(nu.codec, TL_SDP_CODEC_PCMU);
        assert_int_equal(nu.te_pt, 101);
        assert_int_equal(nu.te_events, 0x1FFFF);
        assert_string_equal(nu.raddr, "198.51.100.7");
        assert_int_equal(nu.rport, 20000);
        assert_int_equal(nu.dir, TL_SDP_SENDRECV);
        assert_int_equal(nu.srtp, pol == TL_SDP_SRTP_REQUIRED);
        if (nu.srtp) {
            assert_int_equal(nu.suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_80);
            assert_memory_equal(nu.lkey, np.rkey, TL_SDP_KEY_LEN);
            assert_memory_equal(nu.rkey, np.lkey, TL_SDP_KEY_LEN);
            assert_memory_not_equal(nu.lkey, nu.rkey, TL_SDP_KEY_LEN);
        }
        /* one answer per offer */
        assert_int_equal(tl_sdp_answer_take(&nu, &why, &A, &loc, &us), EINVAL);
        tl_sdp_sess_wipe(&us);
        tl_sdp_sess_wipe(&peer);
    }
}

/* answers to our offer that must be refused, and one that widens our hold */
static void test_answer_take_checks(void **state)
{
    struct tl_sdp_sess us;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    struct tl_sdp_local loc = LOC;
    static char buf[2048];
    loc.policy = TL_SDP_SRTP_REQUIRED;
    assert_int_equal(tl_sdp_sess_init(&us, NULL, NULL), 0);

#define HDR "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    struct {
        const char *body;
        int code;
    } cases[] = {
        {HDR "m=audio 0 RTP/SAVP 0\r\n", 304},
        {HDR "m=audio 6000 RTP/AVP 0\r\n", 302},
        {HDR "m=audio 6000 RTP/SAVP 0\r\nm=video 0 RTP/AVP 96\r\n", 300},
        {HDR "m=audio 6000 RTP/SAVP 9\r\n", 305},
        {HDR "m=audio 6000 RTP/SAVP 0\r\n", 305},
        {HDR "m=audio 6000 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" K1 "\r\n",
         305},
        {HDR "m=audio 6000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:" K1 "\r\n",
         305},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
        assert_int_equal(dec(&A, cases[i].body), 0);
        int rc = tl_sdp_answer_take(&n, &why, &A, &loc, &us);
        if (rc != EPROTO || why.warn_code != cases[i].code)
            fail_msg("case %zu: rc %d code %d (%s)", i, rc, why.warn_code, why.text);
    }

    /* a reflected key: the answer carries our own offered key back */
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    size_t l;
    assert_int_equal(tl_sdp_print(buf, sizeof buf, &l, &B, &us), 0);
    buf[l] = 0;
    char *k = strstr(buf, "a=crypto:1 ");
    char line[128];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(k, "\r"), k);
    snprintf(buf, sizeof buf, HDR "m=audio 6000 RTP/SAVP 0\r\n%s\r\n", line);
    assert_int_equal(dec(&A, buf), 0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), EPROTO);
    assert_non_null(strstr(why.text, "reflected"));

    /* we hold (sendonly), the peer answers sendrecv (a field bug): we stay sendonly */
    loc.dir = TL_SDP_SENDONLY;
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    assert_int_equal(dec(&A, HDR "m=audio 6000 RTP/SAVP 0\r\n"
                                 "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K1 "\r\n"
                                 "a=sendrecv\r\n"),
                     0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), 0);
    assert_int_equal(n.dir, TL_SDP_SENDONLY);
    assert_int_equal(n.suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
    assert_int_equal(n.tag, 2);
    tl_sdp_wipe(&B);
    tl_sdp_nego_wipe(&n);
    tl_sdp_sess_wipe(&us);
#undef HDR
}

/* policy allowed with sdes_on_avp (outbound calls): RTP/AVP carrying our a=crypto lines;
 * the answer decides — one of our tags kept: SRTP; no a=crypto at all: plain RTP; only
 * unusable lines: refused (the answerer meant SRTP and we could not follow) */
static void test_best_effort_offer(void **state)
{
    struct tl_sdp_sess us;
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    struct tl_sdp_local loc = LOC;
    static char buf[2048];
    size_t l;
    loc.sdes_on_avp = true;
    assert_int_equal(tl_sdp_sess_init(&us, NULL, NULL), 0);
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    assert_int_equal(tl_sdp_print(buf, sizeof buf, &l, &B, &us), 0);
    buf[l] = 0;
    tl_sdp_wipe(&B);
    assert_non_null(strstr(buf, "m=audio 40000 RTP/AVP 0 8 101\r\n"));
    assert_non_null(strstr(buf, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert_non_null(strstr(buf, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));

#define HDR "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
    /* a PBX that takes SDES on RTP/AVP: SRTP with our key and its own */
    assert_int_equal(dec(&A, HDR "m=audio 6000 RTP/AVP 0\r\n"
                                 "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" K1 "\r\n"),
                     0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), 0);
    assert_true(n.srtp);
    assert_int_equal(n.suite, TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32);
    assert_int_equal(n.tag, 2);
    assert_memory_equal(n.lkey, us.key[1], TL_SDP_KEY_LEN);

    /* a carrier that ignores the lines: plain RTP */
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    tl_sdp_wipe(&B);
    assert_int_equal(dec(&A, HDR "m=audio 6000 RTP/AVP 8 101\r\n"
                                 "a=rtpmap:101 telephone-event/8000\r\n"),
                     0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), 0);
    assert_false(n.srtp);
    assert_int_equal(n.codec, TL_SDP_CODEC_PCMA);

    /* an answer whose crypto line we never offered: refused, not silently plain */
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    tl_sdp_wipe(&B);
    assert_int_equal(dec(&A, HDR "m=audio 6000 RTP/AVP 0\r\n"
                                 "a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:" K1 "\r\n"),
                     0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), EPROTO);
    assert_int_equal(why.warn_code, 305);
    assert_int_equal(why.kind, TL_SDP_MISMATCH_ENCRYPTION);

    /* SAVP answered to an AVP offer stays a profile mismatch */
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    tl_sdp_wipe(&B);
    assert_int_equal(dec(&A, HDR "m=audio 6000 RTP/SAVP 0\r\n"
                                 "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" K1 "\r\n"),
                     0);
    assert_int_equal(tl_sdp_answer_take(&n, &why, &A, &loc, &us), EPROTO);
    assert_int_equal(why.warn_code, 302);

    /* without sdes_on_avp (inbound late offers) allowed stays plain RTP/AVP */
    loc.sdes_on_avp = false;
    assert_int_equal(tl_sdp_offer(&B, &loc, &us), 0);
    assert_int_equal(tl_sdp_print(buf, sizeof buf, &l, &B, &us), 0);
    buf[l] = 0;
    tl_sdp_wipe(&B);
    assert_null(strstr(buf, "a=crypto"));
    tl_sdp_nego_wipe(&n);
    tl_sdp_sess_wipe(&us);
#undef HDR
}

/* fresh keys: per call (two sessions), per direction (ours ≠ theirs), per suite */
static void test_keys_fresh(void **state)
{
    struct tl_sdp_sess s1, s2;
    struct tl_sdp_nego n1, n2;
    struct tl_sdp_refusal why;
    assert_int_equal(tl_sdp_sess_init(&s1, NULL, NULL), 0);
    assert_int_equal(tl_sdp_sess_init(&s2, NULL, NULL), 0);
    assert_int_not_equal(s1.id, s2.id);
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s1, &n1, &why), 0);
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s2, &n2, &why), 0);
    assert_memory_not_equal(n1.lkey, n2.lkey, TL_SDP_KEY_LEN);
    assert_memory_not_equal(n1.lkey, n1.rkey, TL_SDP_KEY_LEN);
    assert_memory_equal(n1.rkey, n2.rkey, TL_SDP_KEY_LEN);
    assert_int_equal(tl_sdp_offer(&B, &LOC, &s1), 0); /* allowed: no keys drawn for AVP */
    struct tl_sdp_local req = LOC;
    req.policy = TL_SDP_SRTP_REQUIRED;
    assert_int_equal(tl_sdp_offer(&B, &req, &s1), 0);
    assert_memory_not_equal(B.media[0].crypto[0].key, B.media[0].crypto[1].key, TL_SDP_KEY_LEN);
    tl_sdp_wipe(&B);

    /* a caller-provided random source is the one used */
    uint8_t ctr = 0;
    struct tl_sdp_sess s3;
    assert_int_equal(tl_sdp_sess_init(&s3, ctr_rand, &ctr), 0);
    assert_int_equal(answer(TELNYX, TL_SDP_SRTP_REQUIRED, 0, &s3, &n1, &why), 0);
    assert_int_equal(n1.lkey[0], 8); /* 8 bytes went to the o= id */
    tl_sdp_nego_wipe(&n1);
    tl_sdp_nego_wipe(&n2);
    tl_sdp_sess_wipe(&s1);
    tl_sdp_sess_wipe(&s2);
    tl_sdp_sess_wipe(&s3);
}

static void roundtrip(const char *txt)
{
    static char p1[8192], p2[8192];
    size_t l1, l2;
    assert_int_equal(dec(&A, txt), 0);
    assert_int_equal(tl_sdp_print(p1, sizeof p1, &l1, &A, NULL), 0);
    struct tl_pl pl = {p1, l1};
    assert_int_equal(tl_sdp_decode(&C, &pl), 0);
    assert_int_equal(C.nmedia, A.nmedia);
    assert_true(pl_is(C.o_id, "") == pl_is(A.o_id, ""));
    assert_int_equal(C.o_id.l, A.o_id.l);
    assert_memory_equal(C.o_id.p, A.o_id.p, A.o_id.l);
    for (size_t i = 0; i < A.nmedia; i++) {
        const struct tl_sdp_media *a = &A.media[i], *c = &C.media[i];
        assert_int_equal(a->port, c->port);
        assert_int_equal(a->proto, c->proto);
        assert_int_equal(a->nfmt, c->nfmt);
        for (size_t j = 0; j < a->nfmt; j++) {
            assert_int_equal(a->fmt[j].pt, c->fmt[j].pt);
            assert_int_equal(a->fmt[j].rate, c->fmt[j].rate);
            assert_int_equal(a->fmt[j].enc.l, c->fmt[j].enc.l);
            assert_int_equal(a->fmt[j].fmtp.l, c->fmt[j].fmtp.l);
        }
        assert_int_equal(a->ncrypto, c->ncrypto);
        for (size_t j = 0; j < a->ncrypto; j++) {
            assert_int_equal(a->crypto[j].err, c->crypto[j].err);
            assert_memory_equal(a->crypto[j].key, c->crypto[j].key, TL_SDP_KEY_LEN);
        }
        assert_int_equal(tl_sdp_media_dir(&A, a), tl_sdp_media_dir(&C, c));
        assert_int_equal(a->ptime, c->ptime);
        assert_int_equal(a->rtcp_port, c->rtcp_port);
        assert_int_equal(a->rtcp_mux, c->rtcp_mux);
    }
    /* printing is a fixed point after one pass */
    assert_int_equal(tl_sdp_print(p2, sizeof p2, &l2, &C, NULL), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(p1, p2, l1);
    /* never truncates: every shorter buffer is ENOSPC */
    for (size_t cap = 0; cap < l1; cap++)
        assert_int_equal(tl_sdp_print(p2, cap, &l2, &C, NULL), ENOSPC);
}

static void test_roundtrip(void **state)
{
    roundtrip(TWILIO);
    roundtrip(TELNYX);
    roundtrip(BARESIP);
    roundtrip(VIDEO);
    tl_sdp_wipe(&A);
    tl_sdp_wipe(&C);
}

static void test_print_args(void **state)
{
    size_t l;
    assert_int_equal(dec(&A, TWILIO), 0);
    A.name = TL_PL("evil\r\nm=video 1 RTP/AVP 0");
    assert_int_equal(tl_sdp_print(out, sizeof out, &l, &A, NULL), EINVAL);
    struct tl_sdp_local bad = LOC;
    bad.addr = "host.example";
    struct tl_sdp_sess s;
    assert_int_equal(tl_sdp_sess_init(&s, NULL, NULL), 0);
    assert_int_equal(tl_sdp_offer(&B, &bad, &s), EINVAL);
    bad.addr = NULL;
    assert_int_equal(tl_sdp_offer(&B, &bad, &s), EINVAL);
    /* with sess: ENOSPC leaves the version alone */
    assert_int_equal(tl_sdp_offer(&B, &LOC, &s), 0);
    assert_int_equal(tl_sdp_print(out, 50, &l, &B, &s), ENOSPC);
    assert_int_equal(s.ver, 0);
    assert_int_equal(tl_sdp_print(out, sizeof out, &l, &B, &s), 0);
    size_t need = l;
    assert_int_equal(tl_sdp_print(out, need - 1, &l, &B, &s), ENOSPC);
    assert_int_equal(tl_sdp_print(out, need, &l, &B, &s), 0);
    assert_int_equal(s.ver, 1);
    tl_sdp_sess_wipe(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_twilio),
        cmocka_unit_test(test_parse_telnyx),
        cmocka_unit_test(test_policy_matrix),
        cmocka_unit_test(test_baresip_and_video),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_two_audio_streams),
        cmocka_unit_test(test_hold_resume),
        cmocka_unit_test(test_crypto_validation),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_late_offer),
        cmocka_unit_test(test_answer_take_checks),
        cmocka_unit_test(test_best_effort_offer),
        cmocka_unit_test(test_keys_fresh),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_print_args),
        cmocka_unit_test(test_origin_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
