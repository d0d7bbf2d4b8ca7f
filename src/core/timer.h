/* core/timer: one binary min-heap of deadlines (O(log n) insert and cancel), driven by ONE
 * uv_timer armed at the earliest deadline by its owner (the SIP stack's loop glue). The
 * heap takes "now" from its caller, so state machines built on it (SIP transactions,
 * sessions, calls) run in unit tests on a fake clock, without a loop. Loop thread only. */
#ifndef TL_CORE_TIMER_H
#define TL_CORE_TIMER_H

#include <stddef.h>
#include <stdint.h>

struct tl_timer;
typedef void(tl_timer_h)(struct tl_timer *t, uint64_t now);
struct tl_timer {
    uint64_t due; /* ms, caller's clock */
    size_t idx;   /* position in the heap + 1; 0 = not armed */
    tl_timer_h *fn;
};
struct tl_theap {
    struct tl_timer **v;
    size_t n, cap;
};
void tl_theap_init(struct tl_theap *h);
void tl_theap_free(struct tl_theap *h); /* the timers themselves are not owned */
/* Arms (or re-arms) t at `due`. 0 or ENOMEM. */
int tl_timer_start(struct tl_theap *h, struct tl_timer *t, uint64_t due, tl_timer_h *fn);
void tl_timer_stop(struct tl_theap *h, struct tl_timer *t);
/* Fires every timer due at or before now (a handler may arm or stop others). */
void tl_theap_run(struct tl_theap *h, uint64_t now);
/* Earliest deadline, or UINT64_MAX when nothing is armed. */
uint64_t tl_theap_next(const struct tl_theap *h);

#endif
