/* agent/tts: eSpeak NG off the loop, resampled to 8 kHz μ-law (tts.h). */
#include "agent/tts.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <espeak-ng/speak_lib.h>

#include "core/core.h"
#include "media/g711.h"

/* ---- resampling ---------------------------------------------------------------------- */

#define HALF_TAPS 16 /* each side: ~40 dB down past 4 kHz, which telephone audio needs */
#define PI_D      3.14159265358979323846

size_t tl_tts_resampled_len(size_t n, unsigned rate_in)
{
    if (!rate_in)
        return 0;
    return (size_t)(((uint64_t)n * 8000u) / rate_in);
}

static double kernel(double x, double fc)
{
    /* sinc low-pass at fc (cycles per input sample) under a Blackman window */
    double s = fabs(x) < 1e-9 ? 2.0 * fc : sin(2.0 * PI_D * fc * x) / (PI_D * x);
    double w = x / (HALF_TAPS + 1);
    if (w <= -1.0 || w >= 1.0)
        return 0.0;
    double a = PI_D * (w + 1.0); /* w in (-1, 1) → a in (0, 2π) */
    return s * (0.42 - 0.5 * cos(a) + 0.08 * cos(2.0 * a));
}

void tl_tts_resample(const int16_t *in, size_t n, unsigned rate_in, uint8_t *out)
{
    size_t m = tl_tts_resampled_len(n, rate_in);
    double step = (double)rate_in / 8000.0;
    double fc = 3600.0 / rate_in; /* G.711's band ends near 3.4 kHz; 4 kHz is Nyquist */
    for (size_t j = 0; j < m; j++) {
        double t = (double)j * step;
        long c = (long)t;
        double acc = 0.0;
        for (long k = c - HALF_TAPS + 1; k <= c + HALF_TAPS; k++) {
            if (k < 0 || (size_t)k >= n)
                continue;
            acc += in[k] * kernel(t - (double)k, fc);
        }
        long v = lround(acc);
        out[j] = tl_g711_ulaw_encode((int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v));
    }
}

/* ---- eSpeak NG ------------------------------------------------------------------------ */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_rate;     /* 0: not tried yet; < 0: eSpeak NG did not start */
static int16_t *g_pcm; /* the current synthesis (under g_mu) */
static size_t g_len, g_cap, g_max;
static bool g_over;

static int on_samples(short *wav, int n, espeak_EVENT *ev)
{
    (void)ev;
    if (!wav || n <= 0)
        return 0;
    if (g_len + (size_t)n > g_max) {
        g_over = true;
        return 1; /* stop: longer than a <Say> may be */
    }
    if (g_len + (size_t)n > g_cap) {
        size_t nc = g_cap ? g_cap * 2 : 65536;
        while (nc < g_len + (size_t)n)
            nc *= 2;
        int16_t *p = realloc(g_pcm, nc * sizeof *p);
        if (!p) {
            g_over = true;
            return 1;
        }
        g_pcm = p;
        g_cap = nc;
    }
    memcpy(g_pcm + g_len, wav, (size_t)n * sizeof *wav);
    g_len += (size_t)n;
    return 0;
}

/* "en-US" → "en-us"; anything but letters and '-' (or too long) → "" */
static void lang_of(const char *language, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (!language)
        return;
    for (const char *p = language; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_') ||
            n + 1 >= cap) {
            out[0] = '\0';
            return;
        }
        out[n++] = c == '_' ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    out[n] = '\0';
}

int tl_tts_synth(const char *text, const char *voice, const char *language, uint8_t **ulaw,
                 size_t *len, char *why, size_t cap)
{
    *ulaw = NULL;
    *len = 0;
    if (why && cap)
        why[0] = '\0';
    if (!text || !text[0] || strlen(text) > TL_TTS_TEXT_MAX) {
        if (why)
            snprintf(why, cap, "%s", text && text[0] ? "the text is too long" : "no text");
        return EINVAL;
    }
    pthread_mutex_lock(&g_mu);
    if (g_rate == 0) {
        /* DONT_EXIT: a missing data directory must not end the daemon */
        g_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT);
        if (g_rate <= 0)
            g_rate = -1;
        else
            espeak_SetSynthCallback(on_samples);
    }
    if (g_rate < 0) {
        pthread_mutex_unlock(&g_mu);
        if (why)
            snprintf(why, cap,
                     "speech is not available (eSpeak NG did not start: is the "
                     "espeak-ng-data package installed?)");
        return ENOTSUP;
    }
    char lang[16];
    lang_of(language, lang, sizeof lang);
    int gender = 0;
    if (voice && !strcmp(voice, "man"))
        gender = 1;
    else if (voice && (!strcmp(voice, "woman") || !strcmp(voice, "alice")))
        gender = 2;
    espeak_VOICE v;
    memset(&v, 0, sizeof v);
    /* the region first ("en-gb"), then the language alone ("de" for "de-de"), then
     * English: a caller hears something rather than nothing */
    char base[16];
    snprintf(base, sizeof base, "%.*s", (int)strcspn(lang, "-"), lang);
    const char *tries[] = {lang, base, "en-us"};
    espeak_ERROR e = EE_NOT_FOUND;
    for (size_t i = 0; i < 3 && e != EE_OK; i++) {
        if (!tries[i][0])
            continue;
        v.languages = tries[i];
        v.gender = gender;
        e = espeak_SetVoiceByProperties(&v);
    }
    g_len = 0;
    g_over = false;
    g_max = (size_t)((uint64_t)TL_TTS_AUDIO_MAX * (unsigned)g_rate / 8000u);
    int ret = 0;
    if (e == EE_OK)
        e = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL);
    if (e != EE_OK) {
        ret = ENOTSUP;
        if (why)
            snprintf(why, cap, "speech synthesis failed (eSpeak NG error %d)", (int)e);
    } else if (g_over) {
        ret = E2BIG;
        if (why)
            snprintf(why, cap, "the text would take more than %u s to say",
                     TL_TTS_AUDIO_MAX / 8000u);
    } else {
        size_t m = tl_tts_resampled_len(g_len, (unsigned)g_rate);
        uint8_t *out = malloc(m ? m : 1);
        if (!out) {
            ret = ENOMEM;
        } else {
            tl_tts_resample(g_pcm, g_len, (unsigned)g_rate, out);
            *ulaw = out;
            *len = m;
        }
    }
    /* keep one buffer for the next <Say>; a long one is given back */
    if (g_cap > 4u * 1024u * 1024u) {
        free(g_pcm);
        g_pcm = NULL;
        g_cap = 0;
    }
    g_len = 0;
    pthread_mutex_unlock(&g_mu);
    return ret;
}

/* ---- on the worker pool --------------------------------------------------------------- */

struct tl_tts_job {
    uv_work_t work;
    char *text, voice[32], language[16];
    tl_tts_done_cb cb;
    void *arg;
    bool canceled;
    int err;
    char why[160];
    uint8_t *ulaw;
    size_t len;
};

static void job_run(uv_work_t *w)
{
    struct tl_tts_job *j = w->data;
    j->err = tl_tts_synth(j->text, j->voice, j->language, &j->ulaw, &j->len, j->why, sizeof j->why);
}

static void job_done(uv_work_t *w, int status)
{
    struct tl_tts_job *j = w->data;
    if (!j->canceled) {
        if (status != 0 && !j->err) {
            j->err = ECANCELED;
            snprintf(j->why, sizeof j->why, "shutting down");
        }
        j->cb(j->arg, j->err, j->why, j->ulaw, j->len);
        j->ulaw = NULL; /* the callback owns it */
    }
    free(j->ulaw);
    free(j->text);
    free(j);
}

int tl_tts_start(uv_loop_t *loop, const char *text, const char *voice, const char *language,
                 tl_tts_done_cb cb, void *arg, struct tl_tts_job **out)
{
    struct tl_tts_job *j = calloc(1, sizeof *j);
    if (!j)
        return ENOMEM;
    j->text = strdup(text ? text : "");
    if (!j->text) {
        free(j);
        return ENOMEM;
    }
    tl_strlcpy(j->voice, voice ? voice : "", sizeof j->voice);
    tl_strlcpy(j->language, language ? language : "", sizeof j->language);
    j->cb = cb;
    j->arg = arg;
    j->work.data = j;
    int r = uv_queue_work(loop, &j->work, job_run, job_done);
    if (r) {
        free(j->text);
        free(j);
        return EIO;
    }
    *out = j;
    return 0;
}

void tl_tts_cancel(struct tl_tts_job *j)
{
    if (!j)
        return;
    j->canceled = true;
    uv_cancel((uv_req_t *)&j->work);
}
