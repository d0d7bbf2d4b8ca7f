/* libFuzzer target: an SDP body through tl_sdp_decode, then
 *   - print → decode again (the printer's output of any accepted body is accepted),
 *   - tl_sdp_answer under each SRTP policy, printing and re-decoding every answer,
 *   - tl_sdp_answer_take of the body as the answer to our offer, under each policy.
 * Besides memory errors it checks the offer/answer promises: a refusal is a 488 with a
 * reason; an accepted answer keeps the offer's m= count, uses our port on exactly one
 * stream, and obeys the policy (required → SRTP, disabled → no SRTP). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sdp/sdp.h"

static void must(bool ok)
{
    if (!ok)
        abort();
}

static void fixed_rand(void *buf, size_t n, void *arg)
{
    /* deterministic, so that a crash reproduces; distinct from any 0x00/0xff key */
    uint8_t *b = buf, *c = arg;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(0x5a ^ (*c)++);
}

static struct tl_sdp in, ans, re;
static char out[65536];

static void redecode(size_t len)
{
    struct tl_pl pl = {out, len};
    int rc = tl_sdp_decode(&re, &pl);
    /* LF → CRLF can grow a body past the cap; nothing else may fail */
    must(rc == 0 || (rc == E2BIG && len > TL_SDP_BODY_MAX));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tl_pl body = {(const char *)data, size};
    if (tl_sdp_decode(&in, &body))
        return 0;

    size_t len;
    int rc = tl_sdp_print(out, sizeof out, &len, &in, NULL);
    must(rc == 0 || rc == EINVAL); /* EINVAL: no o= user/id (never: decode requires them) */
    if (rc == 0)
        redecode(len);

    for (int pol = TL_SDP_SRTP_DISABLED; pol <= TL_SDP_SRTP_REQUIRED; pol++) {
        uint8_t ctr = 0;
        struct tl_sdp_sess s;
        struct tl_sdp_nego n;
        struct tl_sdp_refusal why;
        struct tl_sdp_local loc = {(enum tl_sdp_policy)pol, pol == 1 ? "2001:db8::5" : "192.0.2.5",
                                   40000, (enum tl_sdp_dir)(size & 3), (size & 4) != 0};
        must(tl_sdp_sess_init(&s, fixed_rand, &ctr) == 0);
        rc = tl_sdp_answer(&ans, &n, &why, &in, &loc, &s);
        if (rc == 0) {
            must(ans.nmedia == in.nmedia);
            size_t used = 0;
            for (size_t i = 0; i < ans.nmedia; i++)
                used += ans.media[i].port != 0;
            must(used == 1 && ans.media[n.midx].port == 40000);
            must(pol != TL_SDP_SRTP_REQUIRED || n.srtp);
            must(pol != TL_SDP_SRTP_DISABLED || !n.srtp);
            must(n.codec != TL_SDP_CODEC_NONE && n.rport != 0 && n.raddr[0]);
            must(!n.srtp || memcmp(n.lkey, n.rkey, TL_SDP_KEY_LEN) != 0);
            must(tl_sdp_print(out, sizeof out, &len, &ans, &s) == 0);
            redecode(len);
            tl_sdp_wipe(&ans);
        } else {
            must(rc == EPROTO && why.status == 488 && why.warn_code >= 300 && why.text[0]);
        }

        /* the same body as the answer to our offer (late offer / outbound call) */
        must(tl_sdp_offer(&ans, &loc, &s) == 0);
        tl_sdp_wipe(&ans);
        rc = tl_sdp_answer_take(&n, &why, &in, &loc, &s);
        if (rc == 0) {
            must(pol != TL_SDP_SRTP_REQUIRED || n.srtp);
            /* SRTP only when we offered it: required, or allowed with a=crypto on RTP/AVP */
            must(pol == TL_SDP_SRTP_REQUIRED || (pol == TL_SDP_SRTP_ALLOWED && loc.sdes_on_avp) ||
                 !n.srtp);
        } else {
            must(rc == EPROTO && why.status == 488 && why.text[0]);
        }
        tl_sdp_nego_wipe(&n);
        tl_sdp_sess_wipe(&s);
    }
    tl_sdp_wipe(&in);
    return 0;
}
