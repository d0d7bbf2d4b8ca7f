/* sdp: private helpers shared by the decoder/printer (sdp.c) and offer/answer (oa.c). */
#ifndef TL_SDP_INT_H
#define TL_SDP_INT_H

#include "sdp/sdp.h"

/* ASCII case-insensitive equality of a slice and a C string. */
bool tl_sdp_pl_caseeq(struct tl_pl a, const char *s);

#endif
