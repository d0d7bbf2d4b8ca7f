/* agent/tts: speech for TwiML <Say>, with eSpeak NG (Debian's libespeak-ng: many
 * languages, small, no network). Bots moved from Twilio often greet with <Say> before
 * <Connect><Stream> (the OpenAI realtime Twilio demo does); without speech those calls
 * would fail at their first verb.
 *
 * eSpeak NG keeps global state, so synthesis runs one text at a time, on libuv's worker
 * pool (never on the loop: a sentence takes milliseconds of CPU), and its 22,050 Hz
 * output is low-passed and resampled to 8 kHz μ-law, the agent interface's audio.
 *
 * Voices: Twilio's `language` ("en-US", "de-DE", …) picks the eSpeak language (the
 * region when eSpeak has it, else the language); `voice` "man" or "woman"/"alice" picks
 * the gender; Polly.* and Google.* names cannot be had and fall back to the language's
 * default voice. */
#ifndef TL_AGENT_TTS_H
#define TL_AGENT_TTS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define TL_TTS_TEXT_MAX  4096
#define TL_TTS_AUDIO_MAX (8000u * 120u) /* two minutes of μ-law: a <Say> is not a book */

/* Synthesises text on the calling thread (serialised with a mutex). 0 and *ulaw (malloc'd,
 * *len bytes at 8 kHz), or EINVAL (empty text), ENOTSUP (eSpeak NG or its data missing:
 * why says), E2BIG (longer than TL_TTS_AUDIO_MAX), ENOMEM. */
int tl_tts_synth(const char *text, const char *voice, const char *language, uint8_t **ulaw,
                 size_t *len, char *why, size_t cap);

struct tl_tts_job;
/* err 0 with ulaw (the callback owns it) or an errno and why; on the loop, once, unless
 * canceled first. */
typedef void (*tl_tts_done_cb)(void *arg, int err, const char *why, uint8_t *ulaw, size_t len);
int tl_tts_start(uv_loop_t *loop, const char *text, const char *voice, const char *language,
                 tl_tts_done_cb cb, void *arg, struct tl_tts_job **out);
/* The callback will not run; the job frees itself when its worker is done. */
void tl_tts_cancel(struct tl_tts_job *j);

/* Resamples 16-bit PCM from rate_in to 8 kHz μ-law (windowed-sinc low-pass at 3.6 kHz);
 * out must hold tl_tts_resampled_len(n, rate_in) bytes. For tests. */
size_t tl_tts_resampled_len(size_t n, unsigned rate_in);
void tl_tts_resample(const int16_t *in, size_t n, unsigned rate_in, uint8_t *out);

#endif
