/* call/sid: the Twilio-shaped names of our calls. A CallSid is "CA" + 32 lowercase hex
 * digits; our call ids are made from 128 random bits (tl_id_from128), and the CallSid is
 * those bits in hex (core.h). So an agent's REST request naming a CallSid finds the call,
 * live or ended, without a table (and a guessed CallSid is as hard as a guessed call id). */
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
    return tl_sid_of_id(call_id, "ca", "CA", sid);
}

int tl_call_id_of_sid(const char *sid, char id[TL_ID_MAX])
{
    return tl_id_of_sid(sid, "CA", "ca", id);
}
