/* sdp: private helpers shared by the decoder/printer (sdp.c) and offer/answer (oa.c). */
#ifndef TL_SDP_INT_H
#define TL_SDP_INT_H

#include "sdp/sdp.h"

/* Strict base64 (RFC 4648 §4): padding only at the end, zero leftover bits.
 * 0, EBADMSG, ENOSPC (more than cap bytes). */
int tl_sdp_b64_decode(uint8_t *out, size_t cap, size_t *lenp, const struct tl_pl *in);
/* Writes 4 * ceil(n / 3) characters (padded), returns that count. */
size_t tl_sdp_b64_encode(char *out, const uint8_t *in, size_t n);

#endif
