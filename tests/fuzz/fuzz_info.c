/* libFuzzer target for the SIP INFO DTMF body parser (src/call/info.c): the Content-Type
 * matcher on the whole input, then the body parser of the type the first byte picks over
 * the rest (lengths beyond the cap included: the cap must hold before any read). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "call/call.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    int t = tl_call_info_type((const char *)d, n);
    if (t != 0 && t != TL_CALL_INFO_DTMF_RELAY && t != TL_CALL_INFO_DTMF)
        __builtin_trap();
    if (n == 0)
        return 0;
    int type = d[0] % 3; /* 0: not a DTMF type */
    char digit = 'x';
    uint16_t ms = 1;
    int r = tl_call_info_dtmf(type, (const char *)d + 1, n - 1, &digit, &ms);
    if (r == 0) {
        if (!digit || !strchr("0123456789*#ABCD!", digit))
            __builtin_trap();
    } else if (r != EBADMSG && r != E2BIG && r != EINVAL) {
        __builtin_trap();
    }
    if (r == E2BIG && n - 1 <= TL_CALL_INFO_BODY_MAX)
        __builtin_trap();
    return 0;
}
