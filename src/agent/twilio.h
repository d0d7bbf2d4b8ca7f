/* agent/twilio: the Twilio Media Streams protocol as we speak it to agents (docs/agents.md),
 * as pure functions: encoders for what we send, a decoder for what agents send. No I/O, no
 * state beyond what the caller passes; the WebSocket agent (agent/wsagent.c) keeps the
 * counters.
 *
 * On the wire (bidirectional streams, <Connect><Stream>): JSON text frames. Every frame we
 * send is shaped exactly as Twilio sends it — counters (sequenceNumber, chunk, timestamp)
 * are JSON strings, sampleRate and channels numbers, SIDs "MZ"/"CA"/"AC" + 32 lowercase hex
 * digits — because real bots check: OpenAI Agents JS wants numeric sampleRate 8000 and
 * channels 1, Deepgram's sample wants media.track, Pipecat reads the first two frames as
 * connected + start.
 *
 * Our extensions are frames of their own with their own event names, announced in start
 * (start.extensions), so bots that do not know them ignore them as they ignore any unknown
 * event: agent → us "hangup", "transfer" {target}, "sendDigits" {digits}; us → agent
 * "transfer" progress {status, sipCode}.
 *
 * The decoder is a strict, allocation-free JSON reader for one object (depth and lengths
 * capped, duplicate members of the fields we read refused, escapes decoded): agent
 * messages are untrusted input (tests/fuzz/fuzz_twilio.c). The media encoder is on the
 * 20 ms path of every call: no allocation, one pass. Errors follow core.h. */
#ifndef TL_AGENT_TWILIO_H
#define TL_AGENT_TWILIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TL_TW_SID_LEN    34  /* "MZ" + 32 hex */
#define TL_TW_NAME_MAX   256 /* a mark name we keep (bytes, after unescaping) */
#define TL_TW_TARGET_MAX 512 /* a transfer target: E.164 or a sip:/sips: URI */
#define TL_TW_DIGITS_MAX 64  /* sendDigits: 0-9 * # A-D w (w: 500 ms pause) */
#define TL_TW_REASON_MAX 256
#define TL_TW_PARAMS_MAX 64 /* customParameters entries */
#define TL_TW_DEPTH_MAX  8

/* A new SID: prefix ("MZ", "CA", "AC") + 32 lowercase hex digits of fresh randomness
 * (libsodium; sodium_init() must have run). A prefix that is not two characters gives "". */
void tl_tw_sid_new(char out[TL_TW_SID_LEN + 1], const char *prefix);
/* s has the shape tl_tw_sid_new makes with this prefix (for SIDs that come back, e.g. in
 * the REST emulation's paths). */
bool tl_tw_sid_valid(const char *s, const char *prefix);
/* s is well-formed UTF-8 (RFC 3629). The encoders refuse other strings with EINVAL rather
 * than repair them, so the bridge can drop such a value (a carrier's X- header) first. */
bool tl_tw_utf8_valid(const char *s);

struct tl_tw_kv {
    const char *key, *value; /* NUL-terminated UTF-8 */
};

struct tl_tw_start {
    const char *stream_sid, *account_sid, *call_sid;
    const struct tl_tw_kv *params; /* customParameters, in order */
    size_t n_params;
    const char *const *extensions; /* names announced in start.extensions, NULL-terminated */
};

/* Each encoder writes one complete JSON text into buf (cap bytes; no NUL added) and sets *len.
 * 0, ENOSPC (nothing usable written, *len = 0), EINVAL (a NULL or a string that is not
 * UTF-8, a dtmf digit outside 0-9*#A-D, more than TL_TW_PARAMS_MAX or duplicate
 * customParameters keys, a sip_code outside 100-699); the first problem met decides.
 * Strings are escaped as JSON needs ('"', '\\', control characters as \u00XX). */
int tl_tw_connected(char *buf, size_t cap, size_t *len);
int tl_tw_start(char *buf, size_t cap, size_t *len, uint64_t seq, const struct tl_tw_start *s);
/* start.extensions lists s->extensions when it is not NULL (omitted when NULL).
 * media: 20 ms of μ-law (n bytes, normally 160) as padded base64; chunk counts from 1;
 * timestamp_ms: since the stream started. */
int tl_tw_media(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
                uint64_t chunk, uint64_t timestamp_ms, const uint8_t *ulaw, size_t n);
int tl_tw_dtmf(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
               char digit);
int tl_tw_mark(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
               const char *name);
int tl_tw_stop(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
               const char *account_sid, const char *call_sid);
/* extension: progress of a transfer the agent asked for ("trying", "ringing", "completed",
 * "failed") with the SIP status when there is one (0: none; else the number sipCode):
 * {"event":"transfer",…,"transfer":{"status":"ringing","sipCode":180}} */
int tl_tw_transfer_status(char *buf, size_t cap, size_t *len, const char *stream_sid, uint64_t seq,
                          const char *status, int sip_code);

/* What an agent sent. */
enum tl_tw_kind {
    TL_TW_IGNORED = 0, /* a valid message we do nothing with: an unknown event, or one of
                        * ours echoed back (connected, start, stop, dtmf) */
    TL_TW_MEDIA,       /* audio in audio[0..audio_len) */
    TL_TW_MARK,        /* name (may be "": OpenAI's demo sends marks without one) */
    TL_TW_CLEAR,
    TL_TW_HANGUP,      /* extension; reason optional */
    TL_TW_TRANSFER,    /* extension; target */
    TL_TW_SEND_DIGITS, /* extension; digits */
};

struct tl_tw_msg {
    enum tl_tw_kind kind;
    size_t audio_len;                  /* MEDIA: bytes decoded into the caller's buffer */
    char name[TL_TW_NAME_MAX + 1];     /* MARK */
    char target[TL_TW_TARGET_MAX + 1]; /* TRANSFER */
    char digits[TL_TW_DIGITS_MAX + 1]; /* SEND_DIGITS */
    char reason[TL_TW_REASON_MAX + 1]; /* HANGUP */
    bool stream_sid_wrong;             /* a streamSid was present and not ours (ignored) */
};

/* Decodes one text message. stream_sid: ours, or NULL not to check (a message naming
 * another stream is decoded but flagged). Extensions follow mark's shape: {"event":"hangup",
 * "hangup":{"reason":…}} (the object and reason optional), {"event":"transfer","transfer":
 * {"target":…}}, {"event":"sendDigits","sendDigits":{"digits":…}} (a-d and W are taken as
 * A-D and w). MEDIA: media.payload is base64 μ-law of any length, padded as libsodium's
 * ORIGINAL variant wants (standard alphabet, length a multiple of 4, no whitespace, unused
 * bits zero); it is decoded into audio (audio_cap bytes; the WebSocket layer caps a message
 * at 1 MiB, so 3/4 of that suffices). audio may be written for any message, also on error.
 * Strings we copy out must not contain U+0000. Returns 0 with *m filled, or:
 *   EBADMSG  not one JSON object, bad JSON, depth over TL_TW_DEPTH_MAX, no "event" string,
 *            a known event missing what it needs (media without payload, transfer without
 *            target), invalid base64, a transfer target that tl_tw_target_valid refuses,
 *            digits outside the set, a field of the wrong type, duplicate members (reported
 *            only when the whole text is JSON, so a broken text is always "not JSON");
 *   E2BIG    a decoded payload over audio_cap, a name/target/digits/reason over its cap.
 * why (cap bytes, may be NULL) gets a short reason in words for the event we record. */
int tl_tw_decode(const char *p, size_t n, const char *stream_sid, struct tl_tw_msg *m,
                 uint8_t *audio, size_t audio_cap, char *why, size_t why_cap);

/* Checks a transfer target: "+" E.164 (8–15 digits, the first not 0), or a sip:/sips: URI
 * (scheme in any case) with something after the colon and nothing outside printable ASCII,
 * no space, '<', '>' or '"' (it goes between < > into Refer-To). 0 or EINVAL. */
int tl_tw_target_valid(const char *target);

#endif
