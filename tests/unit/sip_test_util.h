/* Fakes shared by the SIP transaction unit tests (test_sip_ctsx.c, test_sip_transaction.c):
 * a send callback that records what would go on the wire, and a fake clock that walks the
 * timer heap. Header-only: each test binary gets its own copy. */
#ifndef TL_SIP_TEST_UTIL_H
#define TL_SIP_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>

#include "sip/stack.h"

/* what fake_send saw: how many sends, and the last one (cut to fit) */
static struct {
    int sent;
    char last[2048];
} W;

static int fake_send(const struct tl_sip_peer *p, const char *buf, size_t len, void *arg)
{
    (void)p;
    (void)arg;
    W.sent++;
    snprintf(W.last, sizeof W.last, "%.*s", (int)len, buf);
    return 0;
}

/* step 10 ms at a time so that every timer fires at its own instant */
static void heap_advance(struct tl_theap *heap, uint64_t *now, uint64_t ms)
{
    for (uint64_t end = *now + ms; *now < end;) {
        *now += 10;
        tl_theap_run(heap, *now);
    }
}

#endif
