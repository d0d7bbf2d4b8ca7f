/* core/timer: the binary min-heap of timer.h. */
#include "core/timer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void tl_theap_init(struct tl_theap *h)
{
    memset(h, 0, sizeof *h);
}

void tl_theap_free(struct tl_theap *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->idx = 0;
    free(h->v);
    memset(h, 0, sizeof *h);
}

static void heap_set(struct tl_theap *h, size_t i, struct tl_timer *t)
{
    h->v[i] = t;
    t->idx = i + 1;
}

static void heap_up(struct tl_theap *h, size_t i)
{
    struct tl_timer *t = h->v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->v[p]->due <= t->due)
            break;
        heap_set(h, i, h->v[p]);
        i = p;
    }
    heap_set(h, i, t);
}

static void heap_down(struct tl_theap *h, size_t i)
{
    struct tl_timer *t = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1]->due < h->v[c]->due)
            c++;
        if (t->due <= h->v[c]->due)
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, t);
}

void tl_timer_stop(struct tl_theap *h, struct tl_timer *t)
{
    if (!t->idx)
        return;
    size_t i = t->idx - 1;
    t->idx = 0;
    struct tl_timer *last = h->v[--h->n];
    if (i == h->n)
        return;
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->idx - 1);
}

int tl_timer_start(struct tl_theap *h, struct tl_timer *t, uint64_t due, tl_timer_h *fn)
{
    tl_timer_stop(h, t);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct tl_timer **v = realloc(h->v, cap * sizeof *v);
        if (!v)
            return ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    t->due = due;
    t->fn = fn;
    heap_set(h, h->n++, t);
    heap_up(h, h->n - 1);
    return 0;
}

void tl_theap_run(struct tl_theap *h, uint64_t now)
{
    while (h->n && h->v[0]->due <= now) {
        struct tl_timer *t = h->v[0];
        tl_timer_stop(h, t);
        t->fn(t, now); /* may free the object holding t: touch nothing after */
    }
}

uint64_t tl_theap_next(const struct tl_theap *h)
{
    return h->n ? h->v[0]->due : UINT64_MAX;
}
