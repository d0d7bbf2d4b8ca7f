/* agent/ws_int.h: hooks into agent/ws.c for unit tests and fuzzing only. A detached
 * handle is open from the start, with no loop and no socket: server bytes go in through
 * the same wslay recv callback a connection uses, what we would send goes to sink, and
 * on_close is called synchronously (there is no loop to defer it to). No timers run. */
#ifndef TL_AGENT_WS_INT_H
#define TL_AGENT_WS_INT_H

#include "agent/ws.h"

typedef void(tl_ws_sink)(const char *p, size_t n, void *arg);

/* NULL on ENOMEM. max_message 0: TL_WS_MESSAGE_MAX. */
struct tl_ws *tl_ws__detached(size_t max_message, const struct tl_ws_cb *cb, void *arg,
                              tl_ws_sink *sink);
/* Server bytes, as a socket read would bring them. */
void tl_ws__feed(struct tl_ws *ws, const char *p, size_t n);
/* Frees a detached handle (after on_close too). */
void tl_ws__free(struct tl_ws *ws);

#endif
