/* agent/wsagent: the WebSocket agent — a call bridged to a bot that speaks Twilio Media
 * Streams (agent/twilio.h) over a WebSocket we open (agent/ws.h). docs/agents.md is the
 * user's view; this is the order of things:
 *
 *   start()   the URL is connected (DNS, guard, TCP, TLS, upgrade) within the agent's
 *             connect_timeout_ms; the call rings meanwhile (the 180 went out).
 *   open      we send `connected` and `start`, then ready(0): the call answers (200 OK).
 *             Not open in time, refused, TLS or upgrade failed: ready(err, why) — the
 *             carrier gets 480 with the reason, the owner an agent_unreachable event.
 *   call      caller audio → `media` (20 ms μ-law, chunk and timestamp counted), DTMF →
 *             `dtmf`, marks played → `mark`; agent `media` of any size → the call's queue
 *             (paced by the media clock), `mark`, `clear`, and our extensions `hangup`,
 *             `transfer`, `sendDigits`.
 *   end       the call ends first (stop()): `stop`, then close 1000 — bots ignore `stop`,
 *             the close is what ends them. The agent ends first (it closes, breaks the
 *             protocol, stops answering pings, or stops reading): the call hangs up with
 *             a reason the record keeps, and an event says why.
 *
 * Loop thread only. One tl_agent_conn per call; freed after stop() once the WebSocket has
 * closed (or at once when it is gone). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "agent/agent.h"
#include "agent/twilio.h"
#include "agent/ws.h"
#include "net/url.h"

#define FRAME_MAX 4096 /* one encoded frame of ours (media: ~300 bytes) */
#define START_MAX (64 * 1024)
#define AUDIO_MAX ((TL_WS_MESSAGE_MAX / 4) * 3 + 4) /* a 1 MiB message's base64 decoded */

/* scratch shared by every call on the loop thread: no allocation per frame */
static char g_frame[FRAME_MAX];
static uint8_t g_audio[AUDIO_MAX];

static const char *const extensions[] = {"hangup", "transfer", "sendDigits", NULL};

struct tl_agent_conn {
    struct tl_agent_conn *next, **pprev; /* env->conns */
    struct tl_agent_env *env;
    struct tl_agent_call *call;
    const struct tl_agent_call_ops *ops;
    void (*ready)(struct tl_agent_call *call, int err, const char *why);
    struct tl_ws *ws;
    bool open, stopped, closing;
    char stream_sid[TL_TW_SID_LEN + 1], account_sid[TL_TW_SID_LEN + 1];
    char call_sid[TL_TW_SID_LEN + 1];
    uint64_t seq;   /* our sequenceNumber: connected has none, start is 1 */
    uint64_t chunk; /* media chunks sent, counted from 1 */
    bool have_ts0;
    uint32_t ts0; /* the first caller frame's RTP time (8 kHz): media.timestamp origin */
    char *start;  /* the start frame, built in start() (the info is ours only then) */
    size_t start_len;
    char url[TL_URL_MAX + 1];
    size_t n_headers;
    char **header_lines; /* "Name: value" (API keys: wiped) */
};

static void conn_free(struct tl_agent_conn *c)
{
    if (c->pprev) {
        *c->pprev = c->next;
        if (c->next)
            c->next->pprev = c->pprev;
        c->env->live--;
    }
    if (c->start) {
        sodium_memzero(c->start, c->start_len);
        free(c->start);
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        sodium_memzero(c->header_lines[i], strlen(c->header_lines[i]));
        free(c->header_lines[i]);
    }
    free(c->header_lines);
    free(c);
}

static void close_ws(struct tl_agent_conn *c, uint16_t code, const char *why)
{
    if (c->ws && !c->closing) {
        c->closing = true;
        tl_ws_close(c->ws, code, why);
    }
}

/* one frame of ours to the bot; a full send queue means the bot stopped reading */
static void send_frame(struct tl_agent_conn *c, const char *p, size_t n)
{
    if (!c->open || !c->ws || c->closing)
        return;
    int r = tl_ws_send(c->ws, p, n);
    if (r == ENOBUFS && !c->stopped) {
        c->ops->event(c->call, TL_EV_AGENT_NOT_READING, TL_EV_HINT_AGENT_NOT_READING,
                      "the agent stopped reading its WebSocket; the call was ended");
        close_ws(c, 1008, "not reading");
        c->ops->hangup(c->call, "agent_not_reading");
    }
}

static void on_open(struct tl_ws *ws, void *arg)
{
    (void)ws;
    struct tl_agent_conn *c = arg;
    size_t n;
    c->open = true;
    if (!tl_tw_connected(g_frame, sizeof g_frame, &n))
        send_frame(c, g_frame, n);
    send_frame(c, c->start, c->start_len);
    sodium_memzero(c->start, c->start_len); /* it held the header-derived parameters */
    free(c->start);
    c->start = NULL;
    if (!c->stopped)
        c->ready(c->call, 0, NULL);
}

/* The bot broke the protocol: close with the fitting code (RFC 6455 §7.4.1) and end the
 * call; the event names what was wrong. */
static void protocol_error(struct tl_agent_conn *c, uint16_t code, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, "the agent sent %s; the call was ended", what);
    c->ops->event(c->call, TL_EV_AGENT_PROTOCOL_ERROR, TL_EV_HINT_AGENT_PROTOCOL_ERROR, msg);
    close_ws(c, code, "protocol error");
    c->ops->hangup(c->call, "agent_error");
}

static void on_message(struct tl_ws *ws, const char *p, size_t n, bool binary, void *arg)
{
    (void)ws;
    struct tl_agent_conn *c = arg;
    if (c->stopped || c->closing)
        return;
    if (binary) {
        protocol_error(c, 1003, "a binary frame (Media Streams messages are JSON text)");
        return;
    }
    struct tl_tw_msg m;
    char why[120];
    int r = tl_tw_decode(p, n, c->stream_sid, &m, g_audio, sizeof g_audio, why, sizeof why);
    if (r) {
        char what[200];
        snprintf(what, sizeof what, "a message that is not valid (%s)", why);
        protocol_error(c, 1007, what);
        return;
    }
    switch (m.kind) {
    case TL_TW_MEDIA:
        /* any size: the call queues it (capped at 60 s, the excess counted) and the media
         * clock paces it out */
        c->ops->play(c->call, g_audio, m.audio_len);
        break;
    case TL_TW_MARK:
        c->ops->mark(c->call, m.name);
        break;
    case TL_TW_CLEAR:
        c->ops->clear(c->call);
        break;
    case TL_TW_HANGUP:
        c->ops->hangup(c->call, "agent_hangup");
        break;
    case TL_TW_TRANSFER:
        if (c->ops->transfer(c->call, m.target)) {
            size_t fl;
            if (!tl_tw_transfer_status(g_frame, sizeof g_frame, &fl, c->stream_sid, ++c->seq,
                                       "failed", 0))
                send_frame(c, g_frame, fl);
        }
        break;
    case TL_TW_SEND_DIGITS:
        c->ops->send_dtmf(c->call, m.digits);
        break;
    case TL_TW_IGNORED:
        break;
    }
}

static void on_close(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *why,
                     void *arg)
{
    (void)ws;
    struct tl_agent_conn *c = arg;
    c->ws = NULL;
    if (c->stopped) { /* the call is gone: this was our own close */
        conn_free(c);
        return;
    }
    if (!c->open) { /* never opened: the call refuses with 480 */
        c->ready(c->call, fail == TL_WS_FAIL_TIMEOUT ? ETIMEDOUT : ECONNREFUSED, why);
        return;
    }
    c->open = false;
    if (c->closing) /* we closed it (protocol error, not reading): the call is ending */
        return;
    if (fail == TL_WS_OK) {
        c->ops->hangup(c->call, "agent_closed");
        return;
    }
    char msg[TL_WS_WHY_MAX + 80];
    snprintf(msg, sizeof msg, "the connection to the agent failed (%s, close code %u): %s",
             tl_ws_fail_name(fail), code, why ? why : "");
    if (fail == TL_WS_FAIL_SENDQ) {
        c->ops->event(c->call, TL_EV_AGENT_NOT_READING, TL_EV_HINT_AGENT_NOT_READING, msg);
        c->ops->hangup(c->call, "agent_not_reading");
    } else if (fail == TL_WS_FAIL_PROTOCOL) {
        c->ops->event(c->call, TL_EV_AGENT_PROTOCOL_ERROR, TL_EV_HINT_AGENT_PROTOCOL_ERROR, msg);
        c->ops->hangup(c->call, "agent_error");
    } else {
        c->ops->event(c->call, TL_EV_AGENT_LOST, TL_EV_HINT_AGENT_LOST, msg);
        c->ops->hangup(c->call, "agent_lost");
    }
}

static const struct tl_ws_cb ws_cb = {
    .on_open = on_open, .on_message = on_message, .on_close = on_close};

/* customParameters: who called whom, the ids a bot needs to look things up, the agent's
 * own parameters, then the carrier INVITE's X- headers (names as sent) */
static int build_start(struct tl_agent_conn *c, const struct tl_agent_call_info *info)
{
    struct tl_tw_kv kv[TL_TW_PARAMS_MAX];
    size_t n = 0;
    kv[n++] = (struct tl_tw_kv){"from_number", info->from ? info->from : ""};
    kv[n++] = (struct tl_tw_kv){"to_number", info->to ? info->to : ""};
    kv[n++] = (struct tl_tw_kv){"direction", info->direction ? info->direction : ""};
    kv[n++] = (struct tl_tw_kv){"phone_number_id", info->number_id ? info->number_id : ""};
    kv[n++] = (struct tl_tw_kv){"agent_id", info->agent_id ? info->agent_id : ""};
    /* the agent's parameters, then the X- headers; a key already given is skipped (ours
     * first), and so is a carrier's value that is not UTF-8 (JSON must be) */
    const struct tl_agent_param *src[2] = {info->params, info->sip_headers};
    size_t cnt[2] = {info->n_params, info->n_sip_headers};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < cnt[k] && n < sizeof kv / sizeof kv[0]; i++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = !strcmp(kv[j].key, src[k][i].key);
            if (!dup && tl_tw_utf8_valid(src[k][i].key) && tl_tw_utf8_valid(src[k][i].value))
                kv[n++] = (struct tl_tw_kv){src[k][i].key, src[k][i].value};
        }
    struct tl_tw_start st = {c->stream_sid, c->account_sid, c->call_sid, kv, n, extensions};
    c->start = malloc(START_MAX);
    if (!c->start)
        return ENOMEM;
    int r = tl_tw_start(c->start, START_MAX, &c->start_len, ++c->seq, &st);
    return r;
}

static int ws_start(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                    struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                    void (*ready)(struct tl_agent_call *call, int err, const char *why))
{
    if (!info->url || !info->env || !info->loop)
        return EINVAL;
    struct tl_agent_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->call = call;
    c->ops = call_ops;
    c->ready = ready;
    tl_tw_sid_new(c->stream_sid, "MZ");
    tl_strlcpy(c->account_sid, info->account_sid ? info->account_sid : "", sizeof c->account_sid);
    tl_strlcpy(c->call_sid, info->call_sid ? info->call_sid : "", sizeof c->call_sid);
    tl_strlcpy(c->url, info->url, sizeof c->url);
    int r = build_start(c, info);
    /* the upgrade headers, kept as lines until the upgrade is written */
    const char *lines[TL_WS_HEADERS_MAX + 1];
    size_t nh = info->n_headers < TL_WS_HEADERS_MAX ? info->n_headers : TL_WS_HEADERS_MAX;
    if (!r && nh && !(c->header_lines = calloc(nh, sizeof *c->header_lines)))
        r = ENOMEM;
    for (size_t i = 0; !r && i < nh; i++) {
        size_t len = strlen(info->headers[i].key) + strlen(info->headers[i].value) + 3;
        if (!(c->header_lines[i] = malloc(len))) {
            r = ENOMEM;
            break;
        }
        snprintf(c->header_lines[i], len, "%s: %s", info->headers[i].key, info->headers[i].value);
        lines[i] = c->header_lines[i];
        c->n_headers = i + 1;
    }
    lines[nh] = NULL;
    /* ws:// only for the hosts the operator lists: checked at save, again here (the
     * setting may have changed since) */
    struct tl_url u;
    if (!r && (tl_url_parse(c->url, &u) ||
               (!u.tls && !tl_host_in_list(info->env->insecure_hosts, u.host))))
        r = EPERM;
    if (!r) {
        struct tl_ws_cfg cfg = {.url = c->url,
                                .headers = nh ? lines : NULL,
                                .connect_timeout_ms = info->connect_timeout_ms,
                                .max_send_queue = info->env->send_queue_max,
                                .guard = info->env->guard,
                                .resolver = info->env->resolver,
                                .tls = info->env->tls};
        r = tl_ws_connect(&c->ws, info->loop, &cfg, &ws_cb, c);
    }
    if (r) {
        conn_free(c);
        return r;
    }
    c->env = info->env;
    c->next = c->env->conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &c->env->conns;
    c->env->conns = c;
    c->env->live++;
    *cp = c;
    return 0;
}

static void ws_audio(struct tl_agent_conn *c, const uint8_t *ulaw, size_t len, uint32_t ts)
{
    if (!c->open)
        return;
    if (!c->have_ts0) {
        c->have_ts0 = true;
        c->ts0 = ts;
    }
    /* media.timestamp: ms since the stream started, from the RTP clock (8 kHz), so gaps
     * in the caller's audio show as they do at Twilio */
    uint64_t ms = (uint32_t)(ts - c->ts0) / 8u;
    size_t n;
    if (!tl_tw_media(g_frame, sizeof g_frame, &n, c->stream_sid, ++c->seq, ++c->chunk, ms, ulaw,
                     len))
        send_frame(c, g_frame, n);
}

static void ws_dtmf(struct tl_agent_conn *c, char digit, unsigned duration_ms)
{
    (void)duration_ms;
    size_t n;
    if (c->open && !tl_tw_dtmf(g_frame, sizeof g_frame, &n, c->stream_sid, ++c->seq, digit))
        send_frame(c, g_frame, n);
}

static void ws_mark_done(struct tl_agent_conn *c, const char *name)
{
    size_t n;
    if (c->open && !tl_tw_mark(g_frame, sizeof g_frame, &n, c->stream_sid, ++c->seq, name))
        send_frame(c, g_frame, n);
}

static void ws_event(struct tl_agent_conn *c, enum tl_agent_event ev)
{
    (void)c;
    (void)ev; /* Media Streams has no hold; the bot just hears silence */
}

static void ws_transfer_status(struct tl_agent_conn *c, const char *status, int sip_code)
{
    size_t n;
    if (c->open && !tl_tw_transfer_status(g_frame, sizeof g_frame, &n, c->stream_sid, ++c->seq,
                                          status, sip_code))
        send_frame(c, g_frame, n);
}

static void ws_stop(struct tl_agent_conn *c, const char *reason)
{
    (void)reason;
    c->stopped = true;
    if (!c->ws) { /* it closed already (the agent ended the call, or never connected) */
        conn_free(c);
        return;
    }
    if (!c->open) { /* still connecting (a CANCEL, a shutdown): no goodbye to say */
        tl_ws_abort(c->ws);
        c->ws = NULL;
        conn_free(c);
        return;
    }
    size_t n;
    /* stop, then close: bots ignore stop and end on the close (Pipecat) */
    if (!c->closing && !tl_tw_stop(g_frame, sizeof g_frame, &n, c->stream_sid, ++c->seq,
                                   c->account_sid, c->call_sid))
        tl_ws_send(c->ws, g_frame, n);
    close_ws(c, 1000, "call ended"); /* on_close frees c */
}

void tl_agent_ws_shutdown(struct tl_agent_env *env)
{
    while (env && env->conns) {
        struct tl_agent_conn *c = env->conns;
        if (c->ws)
            tl_ws_abort(c->ws);
        c->ws = NULL;
        c->stopped = true;
        conn_free(c);
    }
}

const struct tl_agent_ops tl_agent_websocket = {
    .kind = "websocket",
    .start = ws_start,
    .audio = ws_audio,
    .dtmf = ws_dtmf,
    .mark_done = ws_mark_done,
    .event = ws_event,
    .stop = ws_stop,
    .transfer_status = ws_transfer_status,
};
