/* core/mailbox: how another thread (the REST API's) hands work to the loop thread, which
 * owns every call, SIP session and media stream and shares none of them.
 *
 * A mutex-protected FIFO of (function, argument) pairs and one uv_async. Any thread posts;
 * the loop thread runs the functions, in order, in its async callback. uv_async_send
 * coalesces wake-ups, so a burst of posts costs one loop wake-up.
 *
 * Contract:
 *  - tl_mailbox_post() returns 0 when fn will run on the loop exactly once (with
 *    cancelled = false), or ESHUTDOWN when the mailbox is closing: then fn never runs and
 *    the caller still owns arg.
 *  - tl_mailbox_close() (loop thread) refuses new posts first, then runs what is queued
 *    with cancelled = true so every owner can free its argument, then closes the handle.
 *    The memory goes in the close callback: run the loop once more before closing it.
 *  - The API stops its intake (tl_api_stop) before the daemon closes the mailbox, so no
 *    request is left waiting on work that will never run. */
#ifndef TL_CORE_MAILBOX_H
#define TL_CORE_MAILBOX_H

#include <stdbool.h>

struct uv_loop_s;
struct tl_mailbox;
typedef void(tl_mailbox_fn)(void *arg, bool cancelled);

/* Loop thread. 0, ENOMEM, EIO (uv_async_init failed). */
int tl_mailbox_open(struct tl_mailbox **mp, struct uv_loop_s *loop);
/* Any thread. 0, EINVAL (NULL), ENOMEM, ESHUTDOWN. */
int tl_mailbox_post(struct tl_mailbox *m, tl_mailbox_fn *fn, void *arg);
/* Loop thread; NULL is a no-op. */
void tl_mailbox_close(struct tl_mailbox *m);

#endif
