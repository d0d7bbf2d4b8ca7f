/* agent/tts: the resampler keeps the telephone band and removes what would alias; eSpeak NG
 * speaks (the Debian package is installed by scripts/install-deps.sh). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>

#include <cmocka.h>

#include "agent/tts.h"
#include "media/g711.h"

#define RATE 22050u

/* RMS of the μ-law signal decoded, skipping the filter's edges */
static double rms_of(const uint8_t *u, size_t n)
{
    double acc = 0;
    size_t m = 0;
    for (size_t i = 40; i + 40 < n; i++, m++) {
        double v = tl_g711_ulaw_decode(u[i]);
        acc += v * v;
    }
    return m ? sqrt(acc / (double)m) : 0;
}

static double tone_rms(double hz, size_t *crossings)
{
    size_t n = RATE; /* one second */
    int16_t *in = malloc(n * sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (int16_t)(10000.0 * sin(2.0 * 3.14159265358979 * hz * (double)i / RATE));
    size_t m = tl_tts_resampled_len(n, RATE);
    assert_int_equal(8000, m);
    uint8_t *out = malloc(m);
    assert_non_null(out);
    tl_tts_resample(in, n, RATE, out);
    if (crossings) {
        *crossings = 0;
        for (size_t i = 41; i + 40 < m; i++)
            if ((tl_g711_ulaw_decode(out[i - 1]) < 0) != (tl_g711_ulaw_decode(out[i]) < 0))
                (*crossings)++;
    }
    double r = rms_of(out, m);
    free(in);
    free(out);
    return r;
}

static void resample_keeps_the_band(void **st)
{
    (void)st;
    size_t zc = 0;
    double pass = tone_rms(1000.0, &zc);
    /* a 10,000-peak sine has an RMS of 7,071; G.711 and the filter's ripple cost a little */
    assert_true(pass > 6500.0 && pass < 7600.0);
    /* 1 kHz: two zero crossings per cycle over the ~0.99 s measured */
    assert_true(zc > 1950 && zc < 2010);
    /* 6 kHz would fold to 2 kHz at 8 kHz sampling: it must be gone (> 30 dB down) */
    double stop = tone_rms(6000.0, NULL);
    assert_true(stop < pass / 31.6);
}

static void speaks(void **st)
{
    (void)st;
    uint8_t *u = NULL;
    size_t n = 0;
    char why[160];
    assert_int_equal(
        0, tl_tts_synth("Hello, this is trunkline.", "woman", "en-US", &u, &n, why, sizeof why));
    /* about a second and a half of speech at 8 kHz, and not silence */
    assert_true(n > 8000 && n < 8000 * 5);
    assert_true(rms_of(u, n) > 300.0);
    free(u);
    /* a language eSpeak has only without region, and one it lacks: still speech */
    assert_int_equal(0, tl_tts_synth("Guten Tag.", NULL, "de-DE", &u, &n, why, sizeof why));
    assert_true(n > 4000);
    free(u);
    assert_int_equal(0, tl_tts_synth("Hi.", "Polly.Joanna", "xx-YY", &u, &n, why, sizeof why));
    assert_true(n > 1000);
    free(u);
    assert_int_equal(EINVAL, tl_tts_synth("", NULL, NULL, &u, &n, why, sizeof why));
    assert_null(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resample_keeps_the_band),
        cmocka_unit_test(speaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
