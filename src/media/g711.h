#ifndef TL_MEDIA_G711_H
#define TL_MEDIA_G711_H

#include <stddef.h>
#include <stdint.h>

/* G.711: the agent interface speaks μ-law; A-law legs are converted.
 * ITU-T G.711 conversion tables (A-law ↔ μ-law via the 13/14-bit linear values). */
void tl_g711_alaw_to_ulaw(uint8_t *dst, const uint8_t *src, size_t n);
void tl_g711_ulaw_to_alaw(uint8_t *dst, const uint8_t *src, size_t n);
int16_t tl_g711_ulaw_decode(uint8_t u);
int16_t tl_g711_alaw_decode(uint8_t a);
uint8_t tl_g711_ulaw_encode(int16_t pcm);
uint8_t tl_g711_alaw_encode(int16_t pcm);

#endif
