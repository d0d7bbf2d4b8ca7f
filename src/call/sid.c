/* call/sid: the Twilio-shaped names of our calls. A CallSid is "CA" + 32 lowercase hex
 * digits; our call ids are made from 128 random bits (tl_id_from128), and the CallSid is
 * those bits in hex. So an agent's REST request naming a CallSid finds the call, live or
 * ended, without a table (and a guessed CallSid is as hard as a guessed call id). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "call/call.h"

void tl_call_id_new(char id[TL_ID_MAX])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    tl_id_from128(id, "ca", b);
}

int tl_call_sid_of(const char *call_id, char sid[TL_CALL_SID_LEN + 1])
{
    uint8_t b[16];
    if (tl_id_to128(call_id, "ca", b))
        return EINVAL;
    sid[0] = 'C';
    sid[1] = 'A';
    for (int i = 0; i < 16; i++)
        snprintf(sid + 2 + 2 * i, 3, "%02x", b[i]);
    return 0;
}

int tl_call_id_of_sid(const char *sid, char id[TL_ID_MAX])
{
    uint8_t b[16];
    size_t bl = 0;
    if (!sid || strlen(sid) != TL_CALL_SID_LEN || strncmp(sid, "CA", 2))
        return EINVAL;
    for (int i = 2; i < TL_CALL_SID_LEN; i++) /* lowercase only: one spelling per call */
        if (!((sid[i] >= '0' && sid[i] <= '9') || (sid[i] >= 'a' && sid[i] <= 'f')))
            return EINVAL;
    if (sodium_hex2bin(b, sizeof b, sid + 2, 32, NULL, &bl, NULL) || bl != 16)
        return EINVAL;
    tl_id_from128(id, "ca", b);
    return 0;
}
