/* Micro-benchmark of the Twilio Media Streams codec (src/agent/twilio.c): ns per media
 * frame we send (160 bytes of μ-law, every 20 ms of every call) and ns per media message
 * we read (Pipecat's shapes: 160, 1,100 and 16,500-byte payloads), each beside libsodium's
 * base64 alone on the same bytes, which is what the codec would cost with it. Prints
 * figures; asserts nothing (bench/README.md).
 *
 *   make bench-twilio && build/bench-twilio [iterations-scale]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "agent/twilio.h"

#define MZ "MZ0123456789abcdef0123456789abcdef"

static volatile uint64_t sink; /* results go here so the work is not optimised away */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Best of 5 runs of iters executions of body into out (the run least disturbed by other
 * load on a shared machine). */
#define BEST_NS(out, iters, body)                                                                  \
    do {                                                                                           \
        (out) = 1e300;                                                                             \
        for (int run_ = 0; run_ < 5; run_++) {                                                     \
            double t0_ = now_ns();                                                                 \
            for (long i_ = 0; i_ < (iters); i_++) {                                                \
                body;                                                                              \
            }                                                                                      \
            double d_ = (now_ns() - t0_) / (double)(iters);                                        \
            if (d_ < (out))                                                                        \
                (out) = d_;                                                                        \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv)
{
    long scale = argc > 1 ? atol(argv[1]) : 1;
    if (scale < 1 || sodium_init() < 0)
        return 2;
    static uint8_t ulaw[16500], audio[16500];
    static char out[32768], msg[32768], b64[32768];
    for (size_t i = 0; i < sizeof ulaw; i++)
        ulaw[i] = (uint8_t)(i * 131 + 7);
    size_t len;

    printf("Twilio Media Streams codec (best of 5 runs; ns per call)\n\n");
    printf("send: media frame of 160 bytes\n");
    long it = 500000 * scale, sit = it / 10; /* libsodium's is constant-time: slower */
    double enc, enc0, sod, dec, sdec;
    BEST_NS(enc, it, {
        tl_tw_media(out, sizeof out, &len, MZ, (uint64_t)i_, (uint64_t)i_, (uint64_t)i_ * 20, ulaw,
                    160);
        sink += len + (uint8_t)out[100];
    });
    BEST_NS(enc0, it, {
        tl_tw_media(out, sizeof out, &len, MZ, (uint64_t)i_, (uint64_t)i_, (uint64_t)i_ * 20, ulaw,
                    0);
        sink += len;
    });
    size_t frame = 0;
    tl_tw_media(out, sizeof out, &frame, MZ, 1, 1, 20, ulaw, 160);
    BEST_NS(sod, sit, {
        sodium_bin2base64(b64, sizeof b64, ulaw, 160, sodium_base64_VARIANT_ORIGINAL);
        sink += (uint8_t)b64[100];
    });
    printf("  tl_tw_media, whole frame (%zu bytes of JSON)  %7.1f ns\n", frame, enc);
    printf("  of which base64 (frame minus empty frame)     %7.1f ns\n", enc - enc0);
    printf("  sodium_bin2base64 alone, ORIGINAL             %7.1f ns\n\n", sod);

    printf("receive: Pipecat's payload-only media message\n");
    const size_t sizes[] = {160, 1100, 16500};
    for (size_t k = 0; k < 3; k++) {
        size_t n = sizes[k];
        sodium_bin2base64(b64, sizeof b64, ulaw, n, sodium_base64_VARIANT_ORIGINAL);
        int ml = snprintf(msg, sizeof msg,
                          "{\"event\":\"media\",\"streamSid\":\"" MZ "\",\"media\":{\"payload\":"
                          "\"%s\"}}",
                          b64);
        struct tl_tw_msg m;
        if (tl_tw_decode(msg, (size_t)ml, MZ, &m, audio, sizeof audio, NULL, 0) ||
            m.kind != TL_TW_MEDIA || m.audio_len != n || memcmp(audio, ulaw, n)) {
            fprintf(stderr, "decode of %zu bytes failed\n", n);
            return 1;
        }
        long di = (long)(1000000 / (n / 160 + 1)) * scale;
        BEST_NS(dec, di, {
            tl_tw_decode(msg, (size_t)ml, MZ, &m, audio, sizeof audio, NULL, 0);
            sink += m.audio_len + audio[n - 1];
        });
        size_t bl = strlen(b64), rl;
        BEST_NS(sdec, di / 10, {
            sodium_base642bin(audio, sizeof audio, b64, bl, NULL, &rl, NULL,
                              sodium_base64_VARIANT_ORIGINAL);
            sink += rl;
        });
        printf("  %5zu bytes (%5d-byte message): tl_tw_decode %8.1f ns (%.2f ns/byte of "
               "JSON); sodium_base642bin alone %8.1f ns\n",
               n, ml, dec, dec / ml, sdec);
    }
    return sink == 42; /* never: the sink must be read */
}
