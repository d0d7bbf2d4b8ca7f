/* core: errors, logging, ids, time, configuration — what every other subsystem includes.
 *
 * Error convention (one for the whole tree): functions return 0 on success or a positive
 * errno value (EINVAL, ENOMEM, ENOENT, EEXIST, EBUSY, EIO, EPERM, …) and, where a person
 * must read why, fill a struct tl_err the caller owns. New objects come back through
 * `struct x **xp`. */
#ifndef TL_CORE_H
#define TL_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- errors that reach a user (HTTP API, CLI) ---- */
struct tl_err {
    int status;        /* HTTP status to answer with (400, 403, 404, 409, 413, 500, …) */
    char code[40];     /* machine-readable: invalid_field, unknown_field, number_taken, … */
    char field[128];   /* JSON path of the offending field ("outbound_trunk.address"), or "" */
    char message[400]; /* written for the person filling in the form */
};

/* Sets every member of *e (e may be NULL) and returns `ret` so callers can write
 * `return tl_err_set(err, EINVAL, 400, "invalid_field", "number", "…")`. */
int tl_err_set(struct tl_err *e, int ret, int status, const char *code, const char *field,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* ---- warnings attached to an accepted write (risky but legal combinations) ---- */
#define TL_WARNINGS_MAX 8
struct tl_warnings {
    size_t n;
    struct {
        char code[40];
        char field[128];
        char message[320];
    } w[TL_WARNINGS_MAX];
};
void tl_warn(struct tl_warnings *w, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- logging ----
 * Structured: a level, a component and a message, then key=value pairs that the caller
 * formats in. Text by default, JSON lines on request. Secrets are never passed here:
 * callers log ids, never tokens or passwords (see tl_log_redact for request lines). */
enum tl_log_level { TL_LOG_DEBUG, TL_LOG_INFO, TL_LOG_WARN, TL_LOG_ERROR };
enum tl_log_format { TL_LOG_TEXT, TL_LOG_JSON };

int tl_log_open(const char *path /* NULL or "" = stderr */, enum tl_log_format fmt,
                enum tl_log_level min);
int tl_log_reopen(void); /* SIGHUP: reopen the file after rotation */
/* The daemon's mode (issue 11 item 8): lines go into a ring of TL_LOG_RING_BYTES that a
 * thread of its own drains to the file, so that no thread that logs — the SIP and media
 * loop above all — ever waits for write(2) (a full pipe, a slow disk, a stopped
 * journald). A line that finds the ring full is dropped and counted; the writer then logs
 * "log.dropped count=N". Without it (the CLI, unit tests) each line is one write(2).
 * 0 or an errno (the thread could not start: lines stay synchronous). */
#define TL_LOG_RING_BYTES (1024 * 1024)
int tl_log_start_writer(void);
/* Lines dropped because the ring was full, since the start. */
uint64_t tl_log_dropped(void);
/* Stops the writer (it drains the ring first, for at most 2 s) and closes the file. */
void tl_log_close(void);
/* msg is a short fixed event name ("api.request"); fmt/... add free text fields as
 * "key=value key2=value2" pairs which JSON output splits into members. */
void tl_log(enum tl_log_level lvl, const char *component, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define tl_info(comp, msg, ...)  tl_log(TL_LOG_INFO, comp, msg, __VA_ARGS__)
#define tl_warnl(comp, msg, ...) tl_log(TL_LOG_WARN, comp, msg, __VA_ARGS__)
#define tl_error(comp, msg, ...) tl_log(TL_LOG_ERROR, comp, msg, __VA_ARGS__)
#define tl_debug(comp, msg, ...) tl_log(TL_LOG_DEBUG, comp, msg, __VA_ARGS__)

/* Lines that a flood repeats (one per refused packet, connection or INVITE) are limited
 * per call site: at most TL_LOG_LIMIT_BURST lines in a second; the first line after a
 * suppressed run carries "suppressed=N" (how many were not written). The event records
 * already limit themselves the same way. */
#define TL_LOG_LIMIT_BURST 10
struct tl_log_limit {
    uint64_t window_ms; /* start of the current one-second window */
    uint32_t n;         /* lines passed in it */
    uint32_t suppressed;
};
/* Pure (tests pass the clock): true when a line may be written at now_ms; *suppressed gets
 * the count to report with it (then reset). Callers serialise (tl_log_limited locks). */
bool tl_log_limit_pass(struct tl_log_limit *lim, uint64_t now_ms, uint32_t *suppressed);
void tl_log_limited(struct tl_log_limit *lim, enum tl_log_level lvl, const char *component,
                    const char *msg, const char *kv_fmt, ...) __attribute__((format(printf, 5, 6)));
#define TL_LOG_LIMITED(lvl, comp, msg, ...)                                                        \
    do {                                                                                           \
        static struct tl_log_limit lim_;                                                           \
        tl_log_limited(&lim_, lvl, comp, msg, __VA_ARGS__);                                        \
    } while (0)

/* ---- ids and time ---- */
/* Opaque ids: "<prefix>_" + 26 lowercase base32 characters (130 random bits).
 * Prefixes: ws (workspace), ag (agent), pn (phone number), tk (token). */
#define TL_ID_MAX 40
void tl_id_new(char out[TL_ID_MAX], const char *prefix);
bool tl_id_valid(const char *s, const char *prefix);
/* An id made from exactly 128 bits (valid for tl_id_valid, its first character 0-7), and
 * back: calls get such ids so that the Twilio-shaped CallSid ("CA" + the 128 bits in hex)
 * and our id name each other without a table. tl_id_to128: 0, or EINVAL for an id that
 * is not of this form. */
void tl_id_from128(char out[TL_ID_MAX], const char *prefix, const uint8_t b[16]);
int tl_id_to128(const char *id, const char *prefix, uint8_t b[16]);
/* Twilio-shaped SIDs of such ids: sid_prefix ("CA") + the 128 bits in lowercase hex.
 * 0 or EINVAL (an id not made from 128 bits, a SID not of that shape). */
#define TL_SID_LEN 34
int tl_sid_of_id(const char *id, const char *id_prefix, const char *sid_prefix,
                 char out[TL_SID_LEN + 1]);
int tl_id_of_sid(const char *sid, const char *sid_prefix, const char *id_prefix,
                 char out[TL_ID_MAX]);

int64_t tl_now_ms(void);                    /* wall clock, ms since the epoch */
void tl_time_iso(int64_t ms, char out[32]); /* 2026-11-26T08:15:24.123Z */

/* bounded copy that always terminates; returns false when src did not fit */
bool tl_strlcpy(char *dst, const char *src, size_t cap);

#endif
