/* agent/twiml: the TwiML subset trunkline carries out (docs/agents.md "Move a Twilio bot"),
 * parsed from untrusted bytes: what a bot's voice URL answers, or the Twiml parameter of
 * a REST call update. One strict parser for both.
 *
 * XML accepted: UTF-8, an optional XML declaration, comments, elements with attributes
 * (single or double quotes), the five predefined entities and numeric character
 * references, whitespace between elements. Refused: a DOCTYPE or entity declaration (XXE,
 * billion laughs), CDATA, processing instructions other than the declaration, mismatched
 * or unclosed tags, anything after the root. Caps: TL_TWIML_MAX bytes, depth 8, 256
 * elements, 16 attributes per element, every value its own cap below.
 *
 * Verbs (children of <Response>), in document order:
 *   <Connect><Stream url="wss://…"><Parameter name="…" value="…"/>…</Stream></Connect>
 *   <Pause length="N"/> (default 1 s, at most 600)
 *   <Hangup/>
 *   <Reject reason="busy|rejected"/> (default rejected)
 *   <Redirect method="POST|GET">URL</Redirect>
 *   <Dial>+E.164</Dial>, <Dial><Number>+E.164</Number></Dial>, <Dial><Sip>sip:…</Sip></Dial>
 *   <Play digits="0-9*#w"/> (audio URLs in <Play> are not supported)
 *   <Say>text</Say> (voice and language attributes kept)
 * Anything else (<Gather>, <Record>, <Enqueue>, <Start>, a <Play> of a URL, …) is refused
 * with ENOTSUP and a reason naming it: the caller ends the call with a fitting SIP code
 * and an event, rather than silently skipping what the bot expected to happen.
 * Errors follow core.h. */
#ifndef TL_AGENT_TWIML_H
#define TL_AGENT_TWIML_H

#include <stddef.h>

#define TL_TWIML_MAX         65536
#define TL_TWIML_VERBS_MAX   32
#define TL_TWIML_PARAMS_MAX  32 /* <Parameter>s of one <Stream> */
#define TL_TWIML_URL_MAX     2048
#define TL_TWIML_TEXT_MAX    2048
#define TL_TWIML_NAME_MAX    256 /* a <Parameter> name */
#define TL_TWIML_VALUE_MAX   1024
#define TL_TWIML_TARGET_MAX  512
#define TL_TWIML_DIGITS_MAX  64
#define TL_TWIML_PAUSE_MAX_S 600

enum tl_twiml_verb {
    TL_TWIML_CONNECT_STREAM,
    TL_TWIML_PAUSE,
    TL_TWIML_HANGUP,
    TL_TWIML_REJECT,
    TL_TWIML_REDIRECT,
    TL_TWIML_DIAL,
    TL_TWIML_PLAY_DIGITS,
    TL_TWIML_SAY,
};

struct tl_twiml_param {
    char name[TL_TWIML_NAME_MAX + 1];
    char value[TL_TWIML_VALUE_MAX + 1];
};

struct tl_twiml_op {
    enum tl_twiml_verb verb;
    unsigned pause_s;                     /* PAUSE */
    char reason[16];                      /* REJECT: "busy" or "rejected" */
    char method[8];                       /* REDIRECT: "POST" or "GET" */
    char url[TL_TWIML_URL_MAX + 1];       /* CONNECT_STREAM, REDIRECT */
    char target[TL_TWIML_TARGET_MAX + 1]; /* DIAL: +E.164 or a sip:/sips: URI */
    char digits[TL_TWIML_DIGITS_MAX + 1]; /* PLAY_DIGITS */
    char text[TL_TWIML_TEXT_MAX + 1];     /* SAY */
    char voice[32], language[16];         /* SAY */
    size_t first_param, n_params;         /* CONNECT_STREAM: into tl_twiml.params */
};

struct tl_twiml {
    size_t n;
    struct tl_twiml_op ops[TL_TWIML_VERBS_MAX];
    size_t n_params;
    struct tl_twiml_param params[TL_TWIML_PARAMS_MAX];
};

/* Parses a TwiML document into *out (~200 KiB: allocate it). 0; EBADMSG (not XML we
 * accept, not <Response>, a verb missing what it needs — why says what); ENOTSUP (a verb
 * or form we do not carry out — why names it); E2BIG (over a cap). why: cap bytes, may be
 * NULL. */
int tl_twiml_parse(const char *p, size_t n, struct tl_twiml *out, char *why, size_t cap);
const char *tl_twiml_verb_name(enum tl_twiml_verb v); /* "Connect", "Pause", … */

#endif
