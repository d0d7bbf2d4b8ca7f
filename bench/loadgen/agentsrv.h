/* bench/loadgen/agentsrv: the agent side of bench/agents, inside the load generator — a
 * WebSocket server (RFC 6455, wslay's server context; plain, or TLS through net/tls.h with
 * the certificate given) that speaks Twilio Media Streams the way an echo bot does: it reads
 * `connected`/`start` (keeping start's streamSid), hands every `media` payload to the
 * generator with the kernel's receive timestamp of the bytes that completed it, and sends
 * what the generator gives back as `media` frames. It answers pings and the daemon's close.
 *
 * One libuv loop (the generator's), no thread of its own: the generator's clock and the
 * agent's timestamps are the same clock in the same process. The connections are read when
 * the generator polls them (its timer, every 1 ms with --slots 20), or on arrival (wake). Loopback
 * only; a benchmark tool, not a server for anything else (it trusts its one client, the daemon). */
#ifndef BENCH_AGENTSRV_H
#define BENCH_AGENTSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct aconn;

/* A media payload arrived on c; t_rx: CLOCK_REALTIME ns of its arrival in the kernel. */
typedef void agentsrv_media_fn(struct aconn *c, const uint8_t *ulaw, size_t n, int64_t t_rx);

struct agentsrv_counts {
    uint64_t accepted, opened, closed, media_rx, media_tx, other_rx, errors;
    unsigned live; /* connections open now */
};

/* Listens on 127.0.0.1:port; cert/key (PEM files) for TLS, NULL for plain. wake: each
 * connection is read as soon as data arrives (in the loop); else the connections are read
 * only when the caller calls agentsrv_poll (see agentsrv.c). 0 or an errno (the reason on
 * stderr). */
int agentsrv_start(uv_loop_t *loop, uint16_t port, const char *cert, const char *key, bool wake,
                   agentsrv_media_fn *fn);
/* Reads what arrived on every connection (not wake), without waiting. */
void agentsrv_poll(void);
/* Queues ulaw as one `media` frame on c and writes it to the socket; returns the
 * CLOCK_REALTIME ns right before the write (after framing and encryption), or -1 when c
 * cannot send. */
int64_t agentsrv_send_media(struct aconn *c, const uint8_t *ulaw, size_t n);
void agentsrv_counts(struct agentsrv_counts *out);

#endif
