/* agent/twimlagent: the TwiML agent — a bot set up for Twilio (a voice URL answering TwiML,
 * a WebSocket named in <Connect><Stream>) taking calls unchanged. docs/agents.md "Move a
 * Twilio bot" is the user's view; this is the order of things:
 *
 *   start()   the voice URL is requested (off the loop: net/http on libuv's worker pool)
 *             with Twilio's parameters and X-Twilio-Signature; the caller hears ringing
 *             (the 180 went out) until there is something to do.
 *   document  parsed whole (agent/twiml.h) before any verb runs, as Twilio validates it: a
 *             document we cannot carry out ends the call rather than half-running.
 *             A fetch that fails, answers non-2xx, or is not TwiML we can read tries the
 *             fallback URL (with ErrorCode and ErrorUrl, as Twilio does), then refuses the
 *             call: 480 for an unreachable bot, 500 for TwiML we cannot run.
 *   verbs     in order. The call is answered (ready) by the first verb that needs an
 *             answered call — a <Pause> first only delays the answer, as at Twilio;
 *             <Reject> refuses (486 busy, 603 rejected); <Connect><Stream> answers once
 *             the WebSocket agent is connected, so the bot can speak at once.
 *   stream    the WebSocket agent (wsagent.c) runs the stream, through a proxy of the
 *             call's operations: when the bot closes its WebSocket, the TwiML after
 *             <Connect> continues (most bots end there: the call ends); the bot's own
 *             `hangup` extension ends the call.
 *   end       stop(): a status callback (Twilio's parameters, signed) when configured.
 *
 * Loop thread only. Re-entrancy: refuse() and ready() may end the call, which calls our
 * stop() from inside our own callbacks; `depth` defers the free until they return. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "agent/agent.h"
#include "agent/tts.h"
#include "agent/twiml.h"
#include "net/http.h"
#include "net/url.h"

#define FETCHES_IN_ROW_MAX 10 /* documents without a verb that takes time: a Redirect loop */
#define SIP_HDRS_MAX       16
#define SIP_NAME_MAX       64
#define SIP_VALUE_MAX      256
#define PARAMS_MAX         (24 + SIP_HDRS_MAX)
#define FORM_MAX           (16 * 1024)
#define SAY_MARK           "\001trunkline-say" /* a name no bot can send (control byte) */

enum state { ST_IDLE, ST_FETCH, ST_WAIT, ST_SAY, ST_STREAM, ST_DIAL, ST_DONE };

struct kv {
    const char *k, *v;
};

/* what the wsagent of a <Connect><Stream> takes for its call: us */
struct proxy {
    struct tl_agent_conn *owner;
};

struct tl_agent_conn {
    struct tl_agent_call *call;
    const struct tl_agent_call_ops *ops;
    void (*ready)(struct tl_agent_call *call, int err, const char *why);
    uv_loop_t *loop;
    struct tl_agent_env *env;
    /* copies of the call's info (valid during start() only) */
    char call_sid[TL_SID_LEN + 1], account_sid[TL_SID_LEN + 1];
    char call_id[TL_ID_MAX], workspace_id[TL_ID_MAX], agent_id[TL_ID_MAX], number_id[TL_ID_MAX];
    char from[128], to[64], direction[16], sip_call_id[256];
    char token[64]; /* the auth token: wiped */
    char voice_url[TL_URL_MAX + 1], fallback_url[TL_URL_MAX + 1], status_cb[TL_URL_MAX + 1];
    bool method_get;
    unsigned timeout_ms;
    size_t n_sip;
    struct {
        char name[SIP_NAME_MAX + 12], value[SIP_VALUE_MAX + 1]; /* "SipHeader_X-…" */
    } sip[SIP_HDRS_MAX];
    /* the document */
    struct tl_twiml *doc;
    size_t pc;
    char doc_url[TL_URL_MAX + 1]; /* for relative <Redirect> URLs */
    enum state st;
    bool answered, established, stopped, freed, first_doc, in_fallback, dial_pending;
    unsigned fetches_in_row;
    int refused_code; /* our final answer when we refused (status callbacks) */
    uint64_t answered_ms;
    int depth;
    struct tl_http *http;
    struct tl_tts_job *tts;
    uv_timer_t timer;
    bool timer_on;
    /* the stream */
    struct tl_agent_conn *stream;
    struct proxy px;
    bool stream_open;
    char stream_end[24]; /* how the last stream ended, for the record if nothing follows */
};

static void run(struct tl_agent_conn *c);
static void fetch(struct tl_agent_conn *c, const char *url, bool get, const char *error_code,
                  const char *error_url);

/* ---- life ------------------------------------------------------------------------------- */

static void conn_free(struct tl_agent_conn *c)
{
    sodium_memzero(c->token, sizeof c->token);
    free(c->doc);
    free(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    conn_free(h->data);
}

static void destroy(struct tl_agent_conn *c)
{
    if (c->freed)
        return;
    c->freed = true;
    if (c->http)
        tl_http_cancel(c->http);
    if (c->tts)
        tl_tts_cancel(c->tts);
    c->http = NULL;
    c->tts = NULL;
    if (c->timer_on)
        uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    else
        conn_free(c);
}

static void enter(struct tl_agent_conn *c)
{
    c->depth++;
}

static void leave(struct tl_agent_conn *c)
{
    if (--c->depth == 0 && c->stopped)
        destroy(c);
}

/* ---- Twilio's request: parameters, form, signature --------------------------------------- */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* application/x-www-form-urlencoded (RFC 3986 unreserved kept, space as +) */
static bool form_put(char *out, size_t cap, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        bool keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (*n + 4 > cap)
            return false;
        if (keep)
            out[(*n)++] = (char)ch;
        else if (ch == ' ')
            out[(*n)++] = '+';
        else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[ch >> 4];
            out[(*n)++] = hex[ch & 15];
        }
    }
    out[*n] = '\0';
    return true;
}

static bool form_build(const struct kv *p, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            if (len + 2 > cap)
                return false;
            out[len++] = '&';
        }
        if (!form_put(out, cap, &len, p[i].k) || len + 2 > cap)
            return false;
        out[len++] = '=';
        out[len] = '\0';
        if (!form_put(out, cap, &len, p[i].v))
            return false;
    }
    return true;
}

/* Twilio's algorithm (its security docs): the full URL, then for a POST each parameter's
 * name and value concatenated in name order; HMAC-SHA1 keyed with the auth token,
 * base64. Bots check it with Twilio's RequestValidator. */
static bool sign(const char *token, const char *url, const struct kv *sorted, size_t n, bool post,
                 char *out, size_t cap)
{
    size_t len = strlen(url);
    for (size_t i = 0; post && i < n; i++)
        len += strlen(sorted[i].k) + strlen(sorted[i].v);
    char *data = malloc(len + 1);
    if (!data)
        return false;
    size_t off = strlen(url);
    memcpy(data, url, off);
    for (size_t i = 0; post && i < n; i++) {
        size_t kl = strlen(sorted[i].k), vl = strlen(sorted[i].v);
        memcpy(data + off, sorted[i].k, kl);
        off += kl;
        memcpy(data + off, sorted[i].v, vl);
        off += vl;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t ml = 0;
    bool ok = EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, token, strlen(token),
                        (const unsigned char *)data, off, mac, sizeof mac, &ml) != NULL;
    free(data);
    if (ok && sodium_base64_ENCODED_LEN(ml, sodium_base64_VARIANT_ORIGINAL) <= cap)
        sodium_bin2base64(out, cap, mac, ml, sodium_base64_VARIANT_ORIGINAL);
    else
        ok = false;
    return ok;
}

/* The parameters every request of this call carries (Twilio's names for a voice call). */
static size_t base_params(const struct tl_agent_conn *c, struct kv *p, const char *status)
{
    size_t n = 0;
    p[n++] = (struct kv){"CallSid", c->call_sid};
    p[n++] = (struct kv){"AccountSid", c->account_sid};
    p[n++] = (struct kv){"From", c->from};
    p[n++] = (struct kv){"To", c->to};
    p[n++] = (struct kv){"Caller", c->from};
    p[n++] = (struct kv){"Called", c->to};
    p[n++] = (struct kv){"CallStatus", status};
    p[n++] = (struct kv){"Direction", c->direction};
    p[n++] = (struct kv){"ApiVersion", "2010-04-01"};
    for (size_t i = 0; i < c->n_sip; i++)
        p[n++] = (struct kv){c->sip[i].name, c->sip[i].value};
    return n;
}

/* Builds and starts a signed request of p (sorted here) to url. */
static int send_request(struct tl_agent_conn *c, const char *url, bool get, struct kv *p, size_t n,
                        tl_http_done_cb cb, void *arg, struct tl_http **out, char *why, size_t wcap)
{
    struct tl_url u;
    if (tl_url_parse(url, &u) || (strcmp(u.scheme, "https") && strcmp(u.scheme, "http"))) {
        snprintf(why, wcap, "%.200s is not an http(s) URL", url);
        return EINVAL;
    }
    qsort(p, n, sizeof *p, kv_cmp);
    char *form = malloc(FORM_MAX);
    char *full = malloc(TL_URL_MAX + FORM_MAX + 2);
    int r = 0;
    if (!form || !full || !form_build(p, n, form, FORM_MAX)) {
        snprintf(why, wcap, "%s", form && full ? "the request is too large" : "out of memory");
        r = ENOMEM;
        goto out;
    }
    /* GET: the parameters in the query string, and the signature over the URL as sent */
    if (get)
        snprintf(full, TL_URL_MAX + FORM_MAX + 2, "%s%s%s", url, strchr(url, '?') ? "&" : "?",
                 form);
    else
        snprintf(full, TL_URL_MAX + FORM_MAX + 2, "%s", url);
    char sig[64], sighdr[96];
    struct tl_http_req rq = {.method = get ? "GET" : "POST",
                             .url = full,
                             .timeout_ms = c->timeout_ms,
                             .max_body = TL_TWIML_MAX,
                             .allow_http =
                                 !u.tls && tl_host_in_list(c->env->insecure_hosts, u.host),
                             .guard = c->env->guard,
                             .ca_file = c->env->ca_file};
    size_t h = 0;
    rq.headers[h++] = "Accept: text/xml, application/xml, */*";
    if (c->token[0] && sign(c->token, full, p, n, !get, sig, sizeof sig)) {
        snprintf(sighdr, sizeof sighdr, "X-Twilio-Signature: %s", sig);
        rq.headers[h++] = sighdr;
    }
    rq.headers[h] = NULL;
    if (!get) {
        rq.content_type = "application/x-www-form-urlencoded";
        rq.body = form;
        rq.body_len = strlen(form);
    }
    struct tl_err e = {0};
    r = tl_http_start(c->loop, &rq, cb, arg, out, &e);
    if (r)
        snprintf(why, wcap, "%.250s", e.message[0] ? e.message : strerror(r));
    sodium_memzero(sighdr, sizeof sighdr);
out:
    free(form);
    free(full);
    return r;
}

/* ---- ending ------------------------------------------------------------------------------ */

/* The call cannot go on: before the answer, refuse it with code; after, hang up. */
static void finish(struct tl_agent_conn *c, int code, const char *reason, const char *why)
{
    c->st = ST_DONE;
    if (!c->answered) {
        c->refused_code = code;
        c->ops->refuse(c->call, code, reason, why);
    } else {
        c->ops->hangup(c->call, reason);
    }
}

static void fail_event(struct tl_agent_conn *c, const char *code, const char *hint, const char *fmt,
                       const char *what)
{
    char w[500], msg[1024];
    tl_strlcpy(w, what, sizeof w);
    snprintf(msg, sizeof msg, fmt, w);
    c->ops->event(c->call, code, hint, msg);
}

static void answer(struct tl_agent_conn *c)
{
    if (c->answered)
        return;
    c->answered = true;
    c->answered_ms = (uint64_t)time(NULL) * 1000u;
    c->ready(c->call, 0, NULL);
}

/* ---- fetching documents ------------------------------------------------------------------ */

static bool resolve_url(const char *base, const char *ref, char *out, size_t cap)
{
    if (!strncasecmp(ref, "https://", 8) || !strncasecmp(ref, "http://", 7))
        return (size_t)snprintf(out, cap, "%s", ref) < cap;
    const char *colon = strstr(base, "://");
    if (!colon)
        return false;
    const char *auth = colon + 3;
    size_t al = strcspn(auth, "/?#");
    if (ref[0] == '/' && ref[1] == '/') /* scheme-relative */
        return (size_t)snprintf(out, cap, "%.*s:%s", (int)(colon - base), base, ref) < cap;
    if (ref[0] == '/')
        return (size_t)snprintf(out, cap, "%.*s%s", (int)(auth + al - base), base, ref) < cap;
    /* relative to the document's directory */
    size_t pl = strcspn(auth + al, "?#");
    const char *path = auth + al;
    size_t dir = 0;
    for (size_t i = 0; i < pl; i++)
        if (path[i] == '/')
            dir = i + 1;
    if (dir == 0)
        return (size_t)snprintf(out, cap, "%.*s/%s", (int)(auth + al - base), base, ref) < cap;
    return (size_t)snprintf(out, cap, "%.*s%s", (int)(path + dir - base), base, ref) < cap;
}

static void on_fetched(void *arg, struct tl_http_resp *r)
{
    struct tl_agent_conn *c = arg;
    c->http = NULL;
    if (c->stopped)
        return;
    enter(c);
    char why[400] = "";
    const char *error_code = NULL;
    if (r->fail != TL_HTTP_OK) {
        snprintf(why, sizeof why, "%s", r->why);
        error_code = "11205"; /* Twilio: HTTP connection failure */
    } else if (r->status < 200 || r->status > 299) {
        snprintf(why, sizeof why, "it answered HTTP %d%s", r->status,
                 r->status >= 300 && r->status < 400 ? " (redirects are not followed)" : "");
        error_code = "11200"; /* Twilio: HTTP retrieval failure */
    }
    int pr = 0;
    if (!error_code) {
        struct tl_twiml *doc = c->doc ? c->doc : malloc(sizeof *doc);
        if (!doc) {
            snprintf(why, sizeof why, "out of memory");
            pr = ENOMEM;
        } else {
            c->doc = doc;
            char pwhy[300];
            pr = tl_twiml_parse(r->body, r->body_len, doc, pwhy, sizeof pwhy);
            if (pr) {
                snprintf(why, sizeof why, "%s", pwhy);
                error_code = "12100"; /* Twilio: document parse failure */
            }
        }
    }
    if (!error_code) {
        c->pc = 0;
        c->st = ST_IDLE;
        c->first_doc = false;
        run(c);
        leave(c);
        return;
    }
    /* the fallback URL serves the first document only, as at Twilio (voice URL errors) */
    if (c->first_doc && !c->in_fallback && c->fallback_url[0]) {
        char msg[800];
        snprintf(msg, sizeof msg, "the voice URL %.300s failed (%s); trying the fallback URL",
                 c->doc_url, why);
        c->ops->event(c->call, TL_EV_VOICE_URL_FAILED, TL_EV_HINT_VOICE_URL_FAILED, msg);
        c->in_fallback = true;
        char failed[TL_URL_MAX + 1];
        tl_strlcpy(failed, c->doc_url, sizeof failed);
        fetch(c, c->fallback_url, c->method_get, error_code, failed);
        leave(c);
        return;
    }
    char what[800];
    snprintf(what, sizeof what, "%.300s: %s", c->doc_url, why);
    if (pr == ENOTSUP) {
        fail_event(c, TL_EV_TWIML_UNSUPPORTED, TL_EV_HINT_TWIML_UNSUPPORTED,
                   "the TwiML from %s cannot be carried out; the call was ended", what);
        finish(c, 500, "twiml_error", why);
    } else if (pr) {
        fail_event(c, TL_EV_TWIML_INVALID, TL_EV_HINT_TWIML_INVALID,
                   "the answer of %s is not TwiML trunkline can read; the call was ended", what);
        finish(c, 500, "twiml_error", why);
    } else {
        fail_event(c, TL_EV_VOICE_URL_FAILED, TL_EV_HINT_VOICE_URL_FAILED,
                   "no TwiML from %s; the call was ended", what);
        char reason[500];
        snprintf(reason, sizeof reason, "voice URL: %s", why);
        finish(c, 480, "agent_unreachable", reason);
    }
    leave(c);
}

static void fetch(struct tl_agent_conn *c, const char *url, bool get, const char *error_code,
                  const char *error_url)
{
    struct kv p[PARAMS_MAX];
    size_t n = base_params(c, p, c->answered ? "in-progress" : "ringing");
    if (error_code) {
        p[n++] = (struct kv){"ErrorCode", error_code};
        p[n++] = (struct kv){"ErrorUrl", error_url};
    }
    tl_strlcpy(c->doc_url, url, sizeof c->doc_url);
    c->st = ST_FETCH;
    char why[300];
    int r = send_request(c, url, get, p, n, on_fetched, c, &c->http, why, sizeof why);
    if (r) {
        fail_event(c, TL_EV_VOICE_URL_FAILED, TL_EV_HINT_VOICE_URL_FAILED,
                   "no TwiML: %s; the call was ended", why);
        finish(c, 480, "agent_unreachable", why);
    }
}

/* ---- the stream (<Connect><Stream>) ------------------------------------------------------ */

static struct tl_agent_conn *of_px(struct tl_agent_call *call)
{
    return ((struct proxy *)(void *)call)->owner;
}

static bool stream_live(struct tl_agent_conn *c)
{
    return c && !c->stopped && c->st == ST_STREAM;
}

static int px_play(struct tl_agent_call *call, const uint8_t *ulaw, size_t len)
{
    struct tl_agent_conn *c = of_px(call);
    return stream_live(c) ? c->ops->play(c->call, ulaw, len) : ENOTCONN;
}

static int px_mark(struct tl_agent_call *call, const char *name)
{
    struct tl_agent_conn *c = of_px(call);
    return stream_live(c) ? c->ops->mark(c->call, name) : ENOTCONN;
}

static int px_clear(struct tl_agent_call *call)
{
    struct tl_agent_conn *c = of_px(call);
    return stream_live(c) ? c->ops->clear(c->call) : ENOTCONN;
}

static int px_dtmf(struct tl_agent_call *call, const char *digits)
{
    struct tl_agent_conn *c = of_px(call);
    return stream_live(c) ? c->ops->send_dtmf(c->call, digits) : ENOTCONN;
}

static int px_transfer(struct tl_agent_call *call, const char *target)
{
    struct tl_agent_conn *c = of_px(call);
    return stream_live(c) ? c->ops->transfer(c->call, target) : ENOTCONN;
}

static void px_event(struct tl_agent_call *call, const char *code, const char *hint,
                     const char *message)
{
    struct tl_agent_conn *c = of_px(call);
    if (!c->stopped)
        c->ops->event(c->call, code, hint, message);
}

static void on_timer(uv_timer_t *t);

static void arm(struct tl_agent_conn *c, uint64_t ms)
{
    if (!c->timer_on) {
        uv_timer_init(c->loop, &c->timer);
        c->timer.data = c;
        c->timer_on = true;
    }
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* The stream ended (the bot closed, the connection failed): on the next turn of the loop
 * (we are inside the WebSocket agent's callback, and stopping it frees it), stop it and
 * go on with the TwiML after <Connect>. */
static int px_hangup(struct tl_agent_call *call, const char *reason)
{
    struct tl_agent_conn *c = of_px(call);
    if (!stream_live(c))
        return ENOTCONN;
    if (reason && !strcmp(reason, "agent_hangup")) /* the bot's own hangup ends the call */
        return c->ops->hangup(c->call, "agent_hangup");
    tl_strlcpy(c->stream_end, reason ? reason : "agent_closed", sizeof c->stream_end);
    c->st = ST_WAIT;
    arm(c, 0);
    return 0;
}

static int px_refuse(struct tl_agent_call *call, int code, const char *reason, const char *why)
{
    struct tl_agent_conn *c = of_px(call);
    if (c->stopped || c->answered)
        return EALREADY;
    c->st = ST_DONE;
    c->refused_code = code;
    return c->ops->refuse(c->call, code, reason, why);
}

static const struct tl_agent_call_ops px_ops = {
    .play = px_play,
    .mark = px_mark,
    .clear = px_clear,
    .send_dtmf = px_dtmf,
    .hangup = px_hangup,
    .transfer = px_transfer,
    .event = px_event,
    .refuse = px_refuse,
};

static void px_ready(struct tl_agent_call *call, int err, const char *why)
{
    struct tl_agent_conn *c = of_px(call);
    if (!stream_live(c))
        return;
    enter(c);
    if (!err) {
        c->stream_open = true;
        answer(c);
    } else {
        char msg[500];
        snprintf(msg, sizeof msg, "the <Stream> WebSocket could not be reached: %s",
                 why && why[0] ? why : strerror(err));
        c->ops->event(c->call, TL_EV_AGENT_UNREACHABLE,
                      "The WebSocket URL in the bot's <Connect><Stream> could not be reached. "
                      "Check the URL in the TwiML, and that the bot's WebSocket server is up "
                      "and reachable from this gateway (DNS, firewall, a certificate from a "
                      "public CA that names the host).",
                      msg);
        if (!c->answered) {
            char reason[400];
            snprintf(reason, sizeof reason, "stream: %s", why && why[0] ? why : strerror(err));
            finish(c, 480, "agent_unreachable", reason);
        } else { /* answered already (a verb before it): the TwiML goes on, as at Twilio */
            tl_strlcpy(c->stream_end, "agent_unreachable", sizeof c->stream_end);
            c->st = ST_WAIT;
            arm(c, 0);
        }
    }
    leave(c);
}

static void stream_stop(struct tl_agent_conn *c, const char *reason)
{
    if (c->stream) {
        struct tl_agent_conn *s = c->stream;
        c->stream = NULL;
        c->stream_open = false;
        tl_agent_websocket.stop(s, reason);
    }
}

static void start_stream(struct tl_agent_conn *c, const struct tl_twiml_op *op)
{
    struct tl_agent_param params[TL_TWIML_PARAMS_MAX];
    size_t np = 0;
    for (size_t i = 0; i < op->n_params && np < TL_TWIML_PARAMS_MAX; i++) {
        const struct tl_twiml_param *tp = &c->doc->params[op->first_param + i];
        params[np++] = (struct tl_agent_param){tp->name, tp->value};
    }
    struct tl_agent_call_info info = {.call_id = c->call_id,
                                      .workspace_id = c->workspace_id,
                                      .agent_id = c->agent_id,
                                      .number = c->to,
                                      .from = c->from,
                                      .to = c->to,
                                      .direction = c->direction,
                                      .sip_call_id = c->sip_call_id,
                                      .params = params,
                                      .n_params = np,
                                      .loop = c->loop,
                                      .number_id = c->number_id,
                                      .account_sid = c->account_sid,
                                      .call_sid = c->call_sid,
                                      .url = op->url,
                                      .connect_timeout_ms = c->timeout_ms,
                                      .env = c->env};
    c->px.owner = c;
    c->st = ST_STREAM;
    c->stream_end[0] = '\0';
    struct tl_agent_conn *s = NULL;
    int r = tl_agent_websocket.start(&s, &info, (struct tl_agent_call *)(void *)&c->px, &px_ops,
                                     px_ready);
    if (r) {
        const char *why = r == EPERM    ? "ws:// is allowed only for the hosts in "
                                          "agent_insecure_hosts; use wss://"
                          : r == EINVAL ? "the <Stream> url is not a ws:// or wss:// URL"
                                        : strerror(r);
        c->stream = NULL;
        px_ready((struct tl_agent_call *)(void *)&c->px, r, why);
        return;
    }
    c->stream = s;
}

/* ---- the verbs ----------------------------------------------------------------------------- */

static void on_said(void *arg, int err, const char *why, uint8_t *ulaw, size_t len)
{
    struct tl_agent_conn *c = arg;
    c->tts = NULL;
    if (c->stopped) {
        free(ulaw);
        return;
    }
    enter(c);
    if (err) {
        fail_event(c, TL_EV_TWIML_UNSUPPORTED, TL_EV_HINT_TWIML_UNSUPPORTED,
                   "<Say> could not be spoken (%s); the call was ended", why);
        finish(c, 500, "twiml_error", why);
    } else {
        answer(c);
        if (c->stopped || c->ops->play(c->call, ulaw, len) || c->ops->mark(c->call, SAY_MARK)) {
            /* not taken (the call is ending, or the queue is full): go on */
            c->st = ST_IDLE;
            if (!c->stopped)
                run(c);
        }
    }
    free(ulaw);
    leave(c);
}

static void on_timer(uv_timer_t *t)
{
    struct tl_agent_conn *c = t->data;
    if (c->stopped || c->st != ST_WAIT)
        return;
    enter(c);
    stream_stop(c, "stream ended");
    c->st = ST_IDLE;
    run(c);
    leave(c);
}

static void dial(struct tl_agent_conn *c)
{
    const struct tl_twiml_op *op = &c->doc->ops[c->pc - 1];
    c->dial_pending = false;
    int r = c->ops->transfer(c->call, op->target);
    if (r) { /* the TwiML goes on after a <Dial> that could not be placed, as at Twilio */
        char msg[700];
        snprintf(msg, sizeof msg, "<Dial> to %.512s could not be placed (%s)", op->target,
                 strerror(r));
        c->ops->event(c->call, "transfer_failed",
                      "The carrier did not take the transfer (SIP REFER). Check that the "
                      "carrier supports REFER on this trunk.",
                      msg);
        c->st = ST_IDLE;
        run(c);
    }
}

/* ms the digits take on the wire: 100 ms tone + 60 ms end packets + 60 ms gap each, and
 * 500 ms per 'w' (media/stream.c) */
static uint64_t digits_ms(const char *d)
{
    uint64_t ms = 0;
    for (; *d; d++)
        ms += (*d == 'w' || *d == 'W') ? 500 : 220;
    return ms;
}

static void run(struct tl_agent_conn *c)
{
    while (!c->stopped && c->st == ST_IDLE) {
        if (c->pc >= c->doc->n) {
            /* the document ran out: Twilio ends the call */
            if (!c->answered)
                finish(c, 603, "twiml_hangup", "the TwiML ended before the call was answered");
            else
                finish(c, 0, c->stream_end[0] ? c->stream_end : "twiml_end", NULL);
            return;
        }
        const struct tl_twiml_op *op = &c->doc->ops[c->pc++];
        switch (op->verb) {
        case TL_TWIML_CONNECT_STREAM:
            c->fetches_in_row = 0;
            start_stream(c, op);
            break;
        case TL_TWIML_PAUSE:
            /* first verb: Twilio waits before it picks up; later: silence */
            c->fetches_in_row = 0;
            c->st = ST_WAIT;
            arm(c, (uint64_t)op->pause_s * 1000u);
            break;
        case TL_TWIML_HANGUP:
            finish(c, 603, "twiml_hangup", "TwiML <Hangup/> before the call was answered");
            break;
        case TL_TWIML_REJECT:
            if (!c->answered) {
                bool busy = !strcmp(op->reason, "busy");
                finish(c, busy ? 486 : 603, "rejected",
                       busy ? "TwiML <Reject reason=\"busy\"/>" : "TwiML <Reject/>");
            } else {
                finish(c, 0, "twiml_hangup", NULL);
            }
            break;
        case TL_TWIML_REDIRECT: {
            char url[TL_URL_MAX + 1];
            if (++c->fetches_in_row > FETCHES_IN_ROW_MAX) {
                fail_event(c, TL_EV_TWIML_INVALID, TL_EV_HINT_TWIML_INVALID,
                           "%s: more than 10 <Redirect>s in a row without a verb that takes "
                           "time (a loop); the call was ended",
                           c->doc_url);
                finish(c, 500, "twiml_error", "TwiML <Redirect> loop");
            } else if (!resolve_url(c->doc_url, op->url, url, sizeof url)) {
                fail_event(c, TL_EV_TWIML_INVALID, TL_EV_HINT_TWIML_INVALID,
                           "<Redirect> to %s: not a URL; the call was ended", op->url);
                finish(c, 500, "twiml_error", "TwiML <Redirect> URL");
            } else {
                fetch(c, url, !strcmp(op->method, "GET"), NULL, NULL);
            }
            break;
        }
        case TL_TWIML_DIAL:
            c->fetches_in_row = 0;
            answer(c);
            c->st = ST_DIAL;
            if (c->established)
                dial(c);
            else
                c->dial_pending = true; /* REFER needs the ACK (RFC 3261 §12) */
            break;
        case TL_TWIML_PLAY_DIGITS:
            c->fetches_in_row = 0;
            answer(c);
            if (!c->stopped && c->ops->send_dtmf(c->call, op->digits) == 0) {
                c->st = ST_WAIT;
                arm(c, digits_ms(op->digits));
            } else if (!c->stopped) {
                c->ops->event(c->call, "dtmf_not_sent",
                              "The carrier's offer had no telephone-event (RFC 4733), so "
                              "digits cannot be sent on this call.",
                              "<Play digits> skipped: the call has no telephone-event");
            }
            break;
        case TL_TWIML_SAY: {
            c->fetches_in_row = 0;
            c->st = ST_SAY;
            int r = tl_tts_start(c->loop, op->text, op->voice, op->language, on_said, c, &c->tts);
            if (r) {
                c->tts = NULL;
                fail_event(c, TL_EV_TWIML_UNSUPPORTED, TL_EV_HINT_TWIML_UNSUPPORTED,
                           "<Say> could not be spoken (%s); the call was ended", strerror(r));
                finish(c, 500, "twiml_error", "<Say> failed");
            }
            break;
        }
        }
    }
}

/* ---- the agent operations ------------------------------------------------------------------ */

static int tw_start(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                    struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                    void (*ready)(struct tl_agent_call *call, int err, const char *why))
{
    if (!info->url || !info->url[0] || !info->env || !info->loop || !call_ops->refuse)
        return EINVAL;
    struct tl_agent_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ENOMEM;
    c->call = call;
    c->ops = call_ops;
    c->ready = ready;
    c->loop = info->loop;
    c->env = info->env;
#define CP(dst, src) tl_strlcpy(dst, (src) ? (src) : "", sizeof dst)
    CP(c->call_sid, info->call_sid);
    CP(c->account_sid, info->account_sid);
    CP(c->call_id, info->call_id);
    CP(c->workspace_id, info->workspace_id);
    CP(c->agent_id, info->agent_id);
    CP(c->number_id, info->number_id);
    CP(c->from, info->from);
    CP(c->to, info->to);
    CP(c->direction, info->direction);
    CP(c->sip_call_id, info->sip_call_id);
    CP(c->token, info->auth_token);
    CP(c->voice_url, info->url);
    CP(c->fallback_url, info->fallback_url);
    CP(c->status_cb, info->status_callback);
#undef CP
    c->method_get = info->method_get;
    c->timeout_ms = info->connect_timeout_ms ? info->connect_timeout_ms : 5000;
    /* the carrier's X- headers as Twilio passes a SIP call's: SipHeader_X-… */
    for (size_t i = 0; i < info->n_sip_headers && c->n_sip < SIP_HDRS_MAX; i++) {
        const struct tl_agent_param *h = &info->sip_headers[i];
        if (strlen(h->key) > SIP_NAME_MAX || strlen(h->value) > SIP_VALUE_MAX)
            continue;
        snprintf(c->sip[c->n_sip].name, sizeof c->sip[0].name, "SipHeader_%s", h->key);
        tl_strlcpy(c->sip[c->n_sip].value, h->value, sizeof c->sip[0].value);
        c->n_sip++;
    }
    c->first_doc = true;
    *cp = c;
    enter(c);
    fetch(c, c->voice_url, c->method_get, NULL, NULL);
    c->depth--; /* not leave(): the call frees us through stop() even when fetch ended it */
    return 0;
}

static void tw_audio(struct tl_agent_conn *c, const uint8_t *ulaw, size_t len, uint32_t ts)
{
    if (stream_live(c) && c->stream && c->stream_open)
        tl_agent_websocket.audio(c->stream, ulaw, len, ts);
}

static void tw_dtmf(struct tl_agent_conn *c, char digit, unsigned duration_ms)
{
    if (stream_live(c) && c->stream && c->stream_open)
        tl_agent_websocket.dtmf(c->stream, digit, duration_ms);
}

static void tw_mark_done(struct tl_agent_conn *c, const char *name)
{
    if (c->stopped)
        return;
    if (!strcmp(name, SAY_MARK)) {
        if (c->st == ST_SAY) {
            enter(c);
            c->st = ST_IDLE;
            run(c);
            leave(c);
        }
        return;
    }
    if (c->stream && c->stream_open)
        tl_agent_websocket.mark_done(c->stream, name);
}

static void tw_event(struct tl_agent_conn *c, enum tl_agent_event ev)
{
    if (c->stopped)
        return;
    if (ev == TL_AGENT_EV_ESTABLISHED) {
        c->established = true;
        if (c->dial_pending && c->st == ST_DIAL) {
            enter(c);
            dial(c);
            leave(c);
        }
        return;
    }
    if (c->stream && c->stream_open)
        tl_agent_websocket.event(c->stream, ev);
}

static void tw_transfer_status(struct tl_agent_conn *c, const char *status, int sip_code)
{
    if (c->stopped)
        return;
    if (c->st == ST_DIAL) {
        if (!strcmp(status, "failed")) { /* the TwiML after <Dial> goes on */
            enter(c);
            c->st = ST_IDLE;
            run(c);
            leave(c);
        }
        return; /* completed: the carrier hangs up on us (end_reason transferred) */
    }
    if (c->stream && c->stream_open)
        tl_agent_websocket.transfer_status(c->stream, status, sip_code);
}

static void on_status_sent(void *arg, struct tl_http_resp *r)
{
    char *sid = arg;
    if (r->fail != TL_HTTP_OK || r->status < 200 || r->status > 299)
        tl_warnl("agent", "status_callback.failed", "call_sid=%s status=%d why=\"%s\"", sid,
                 r->status, r->fail != TL_HTTP_OK ? r->why : "non-2xx");
    free(sid);
}

/* Twilio's status callback at the end of the call (its default event, "completed"). */
static void status_callback(struct tl_agent_conn *c, const char *reason)
{
    const char *st = c->answered                             ? "completed"
                     : c->refused_code == 486                ? "busy"
                     : reason && !strcmp(reason, "canceled") ? "canceled"
                                                             : "failed";
    char dur[24], sipcode[8], ts[64];
    uint64_t now = (uint64_t)time(NULL);
    snprintf(dur, sizeof dur, "%llu",
             (unsigned long long)(c->answered ? now - c->answered_ms / 1000u : 0));
    snprintf(sipcode, sizeof sipcode, "%d",
             c->answered       ? 200
             : c->refused_code ? c->refused_code
                               : 487);
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    struct kv p[PARAMS_MAX];
    size_t n = base_params(c, p, st);
    p[n++] = (struct kv){"CallDuration", dur};
    p[n++] = (struct kv){"SipResponseCode", sipcode};
    p[n++] = (struct kv){"Timestamp", ts};
    p[n++] = (struct kv){"CallbackSource", "call-progress-events"};
    p[n++] = (struct kv){"SequenceNumber", "0"};
    char why[300];
    char *sid = strdup(c->call_sid);
    if (!sid)
        return;
    if (send_request(c, c->status_cb, false, p, n, on_status_sent, sid, NULL, why, sizeof why)) {
        tl_warnl("agent", "status_callback.failed", "call_sid=%s why=\"%s\"", sid, why);
        free(sid);
    }
}

static void tw_stop(struct tl_agent_conn *c, const char *reason)
{
    if (c->stopped)
        return;
    c->stopped = true;
    stream_stop(c, reason);
    if (c->status_cb[0])
        status_callback(c, reason);
    if (c->depth == 0)
        destroy(c);
}

const struct tl_agent_ops tl_agent_twiml = {
    .kind = "twiml",
    .start = tw_start,
    .audio = tw_audio,
    .dtmf = tw_dtmf,
    .mark_done = tw_mark_done,
    .event = tw_event,
    .stop = tw_stop,
    .transfer_status = tw_transfer_status,
};
