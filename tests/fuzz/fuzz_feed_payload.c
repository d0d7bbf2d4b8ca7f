/* libFuzzer: the change feed's NOTIFY payload (store/store_feed.c). Anyone who can connect
 * to the database can NOTIFY on the channel, so the payload is input like any other.
 * Invariants: never reads past the input (ASan), and an accepted payload has a 16-character
 * origin, a known kind and fields within their caps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1); /* libpq hands over NUL-terminated text */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char origin[17], ws[TL_ID_MAX], id[TL_ID_MAX], number[TL_E164_MAX + 1];
    enum tl_store_change_kind kind = TL_CHANGE_NUMBER_CREATED;
    if (tl__feed_parse(buf, origin, &kind, ws, id, number)) {
        CHECK(strlen(origin) == 16);
        CHECK(kind >= TL_CHANGE_NUMBER_CREATED && kind <= TL_CHANGE_WORKSPACE_UPDATED);
        CHECK(strlen(ws) < TL_ID_MAX && strlen(id) < TL_ID_MAX && strlen(number) <= TL_E164_MAX);
        CHECK(size >= 16 + 8);
    }
    free(buf);
    return 0;
}
