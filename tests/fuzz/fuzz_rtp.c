/* libFuzzer target for the media wire functions (src/media/rtp.c): RTP header, RTCP
 * compound packets, RFC 4733 events and the DTMF de-duplication state machine, RFC 3550
 * receiver statistics. All pure: no sockets, no loop. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "media/media_int.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct tl_rtp_hdr h;
    /* the receive path parses twice: structure before SRTP unprotect, padding after */
    if (tl_rtp_parse(d, n, false, &h) == 0 && tl_rtp_parse(d, n, true, &h) == 0) {
        if (h.hdr_len + h.payload_len > n || h.payload != d + h.hdr_len)
            __builtin_trap();
        struct tl_dtmf_ev ev;
        if (tl_dtmf_parse(h.payload, h.payload_len, &ev) == 0)
            (void)tl_dtmf_char(ev.event);
    }

    struct tl_rtcp_info ri;
    (void)tl_rtcp_parse(d, n, n >= 4 ? rd32(d) : 0, &ri);

    /* DTMF receive state machine over 8-byte records: 4 bytes event, 4 bytes timestamp */
    struct tl_dtmf_rx rx = {0};
    struct tl_dtmf_out out[2], o;
    uint64_t now = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        struct tl_dtmf_ev ev;
        tl_dtmf_parse(d + i, 4, &ev);
        now += d[i] & 0x3f;
        int k = tl_dtmf_rx_feed(&rx, &ev, rd32(d + i + 4), now, out);
        if (k < 0 || k > 2)
            __builtin_trap();
        (void)tl_dtmf_rx_flush(&rx, now, 16, &o);
    }

    /* receiver statistics over 10-byte records: seq, ts, arrival */
    struct tl_rtp_source s;
    if (n >= 2) {
        tl_rtp_source_init(&s, 1, (uint16_t)(d[0] << 8 | d[1]));
        for (size_t i = 2; i + 10 <= n; i += 10)
            tl_rtp_source_update(&s, (uint16_t)(d[i] << 8 | d[i + 1]), rd32(d + i + 2),
                                 rd32(d + i + 6), d[i] & 1);
        (void)tl_rtp_source_lost(&s);
        (void)tl_rtp_source_fraction(&s);
    }
    return 0;
}
