/* api/twilio: what bots built for Twilio expect of "Twilio" besides the media stream
 * (docs/agents.md "Twilio REST emulation").
 *
 *   /v1/twilio-account       the workspace's AccountSid and auth token (issued here, shown
 *                            once; a second POST rotates the token)
 *   /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json
 *                            Twilio's call resource: GET reads it, POST updates it —
 *                            Status=completed|canceled hangs up, Twiml with <Hangup/>,
 *                            <Dial> (a blind transfer) or <Play digits> acts. HTTP Basic
 *                            with AccountSid and auth token, as Twilio's client libraries
 *                            and Pipecat's TwilioFrameSerializer send it.
 *
 * Errors on the Twilio routes are shaped like Twilio's ({code, message, more_info,
 * status}), because that is what those clients parse. An unknown AccountSid and a wrong
 * token answer alike (no account enumeration), and another workspace's CallSid is "not
 * found" like a missing one. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>
#include <sodium.h>

#include "agent/twiml.h"
#include "api/api_int.h"

#define FORM_FIELDS_MAX 32
#define FORM_VALUE_MAX  TL_TWIML_MAX

/* ---- /v1/twilio-account ---- */

static json_t *account_json(const struct tl_twilio_account *a, const char *token)
{
    char when[32];
    tl_time_iso(a->created_at, when);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "object", "twilio_account", "workspace_id",
                          a->workspace_id, "account_sid", a->account_sid, "token_created_at", when);
    if (o && token) {
        json_object_set_new(o, "auth_token", json_string(token));
        json_object_set_new(o, "note",
                            json_string("The auth token is shown once. Give the bot the "
                                        "AccountSid and this token as its Twilio credentials, "
                                        "and this gateway's URL as its Twilio API base URL."));
    }
    return o;
}

void tl_h_twilio_account_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    struct tl_twilio_account a;
    int rc = tl_store_twilio_get(r->store, ws, &a);
    if (rc == ENOENT) {
        tl_api_error(out, 404, "not_found", "",
                     "no Twilio-style credentials have been issued for this workspace; POST "
                     "/v1/twilio-account issues them");
        return;
    }
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return;
    }
    tl_api_reply(out, 200, account_json(&a, NULL));
}

void tl_h_twilio_account_issue(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX], token[TL_TWILIO_TOKEN_LEN + 1];
    struct tl_err err = {0};
    if (tl_api_scope(r, ws, out))
        return;
    struct tl_twilio_account a;
    int rc = tl_store_twilio_issue(r->store, ws, &a, token, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        return;
    }
    tl_api_reply(out, 201, account_json(&a, token));
    sodium_memzero(token, sizeof token);
}

void tl_h_twilio_account_delete(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    int rc = tl_store_twilio_delete(r->store, ws);
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, 204, NULL);
}

/* ---- Twilio's call resource ---- */

static void tw_error(struct tl_api_resp *out, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void tw_error(struct tl_api_resp *out, int status, int code, const char *fmt, ...)
{
    char msg[400], more[80];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(more, sizeof more, "https://www.twilio.com/docs/errors/%d", code);
    tl_api_reply(out, status,
                 json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", msg, "more_info", more,
                           "status", status));
    if (status == 401)
        out->www_auth = "Basic realm=\"Twilio API\"";
}

/* "/2010-04-01/Accounts/AC…/Calls/CA….json" → the two SIDs; false when it is not one */
static bool parse_path(const char *path, char ac[TL_TWILIO_SID_LEN + 1],
                       char ca[TL_TWILIO_SID_LEN + 1])
{
    static const char a[] = "/2010-04-01/Accounts/", c[] = "/Calls/";
    if (!path || strncmp(path, a, sizeof a - 1))
        return false;
    const char *p = path + sizeof a - 1;
    if (strlen(p) != TL_TWILIO_SID_LEN + sizeof c - 1 + TL_TWILIO_SID_LEN + 5 ||
        strncmp(p + TL_TWILIO_SID_LEN, c, sizeof c - 1) || strcmp(p + strlen(p) - 5, ".json"))
        return false;
    memcpy(ac, p, TL_TWILIO_SID_LEN);
    ac[TL_TWILIO_SID_LEN] = '\0';
    memcpy(ca, p + TL_TWILIO_SID_LEN + sizeof c - 1, TL_TWILIO_SID_LEN);
    ca[TL_TWILIO_SID_LEN] = '\0';
    return true;
}

/* HTTP Basic (RFC 7617): AccountSid as the user (it must be the path's), the auth token
 * as the password. 0 with the workspace; otherwise out is filled (401). */
static int basic_auth(struct tl_api_req *r, const char *ac, char ws[TL_ID_MAX],
                      struct tl_api_resp *out)
{
    const char *h =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char dec[160];
    size_t dl = 0;
    int rc = EPERM;
    if (h && !strncasecmp(h, "Basic ", 6)) {
        const char *b = h + 6;
        while (*b == ' ')
            b++;
        if (strlen(b) < 200 &&
            !sodium_base642bin((unsigned char *)dec, sizeof dec - 1, b, strlen(b), NULL, &dl, NULL,
                               sodium_base64_VARIANT_ORIGINAL)) {
            dec[dl] = '\0';
            char *colon = strchr(dec, ':');
            if (colon && (size_t)(colon - dec) == strlen(ac) && !strncmp(dec, ac, strlen(ac)))
                rc = tl_store_twilio_auth(r->store, ac, colon + 1, ws);
        }
    }
    sodium_memzero(dec, sizeof dec);
    if (rc == EPERM) {
        tw_error(out, 401, 20003, "Authenticate");
        return -1;
    }
    if (rc) {
        tw_error(out, 500, 20500, "Internal Server Error");
        return -1;
    }
    return 0;
}

static void rfc2822(int64_t ms, char out[40])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Twilio's call statuses (hyphenated) from our record's (store.h); Twilio has no word for
 * dialing: its "queued" lasts until the callee's side answers with a provisional */
static const char *tw_status(const struct tl_call_record *c)
{
    switch (c->status) {
    case TL_CALL_QUEUED:
    case TL_CALL_DIALING:
        return "queued";
    case TL_CALL_RINGING:
        return "ringing";
    case TL_CALL_IN_PROGRESS:
        return "in-progress";
    case TL_CALL_COMPLETED:
        return "completed";
    case TL_CALL_BUSY:
        return "busy";
    case TL_CALL_NO_ANSWER:
        return "no-answer";
    case TL_CALL_CANCELED:
        return "canceled";
    default:
        return "failed";
    }
}

static json_t *call_json(const struct tl_call_record *c, const char *ac, const char *ca,
                         const char *live_status)
{
    char created[40], started[40] = "", ended[40] = "", uri[128], dur[24] = "";
    rfc2822(c->created_at, created);
    if (c->answered_at)
        rfc2822(c->answered_at, started);
    if (c->ended_at)
        rfc2822(c->ended_at, ended);
    if (c->ended_at && c->answered_at)
        snprintf(dur, sizeof dur, "%lld", (long long)((c->ended_at - c->answered_at) / 1000));
    snprintf(uri, sizeof uri, "/2010-04-01/Accounts/%s/Calls/%s.json", ac, ca);
    bool in = c->direction == TL_CALL_INBOUND;
    const char *from = in ? c->from_user : c->number, *to = in ? c->number : c->to_user;
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "sid", json_string(ca));
    json_object_set_new(o, "account_sid", json_string(ac));
    json_object_set_new(o, "date_created", json_string(created));
    json_object_set_new(o, "date_updated", json_string(ended[0] ? ended : created));
    json_object_set_new(o, "parent_call_sid", json_null());
    json_object_set_new(o, "to", json_string(to));
    json_object_set_new(o, "to_formatted", json_string(to));
    json_object_set_new(o, "from", json_string(from));
    json_object_set_new(o, "from_formatted", json_string(from));
    json_object_set_new(o, "phone_number_sid", json_null());
    json_object_set_new(o, "status", json_string(live_status ? live_status : tw_status(c)));
    json_object_set_new(o, "start_time", started[0] ? json_string(started) : json_null());
    json_object_set_new(o, "end_time", ended[0] ? json_string(ended) : json_null());
    json_object_set_new(o, "duration", dur[0] ? json_string(dur) : json_null());
    json_object_set_new(o, "price", json_null());
    json_object_set_new(o, "price_unit", json_string("USD"));
    json_object_set_new(o, "direction", json_string(in ? "inbound" : "outbound-api"));
    json_object_set_new(o, "answered_by", json_null());
    json_object_set_new(o, "api_version", json_string("2010-04-01"));
    json_object_set_new(o, "forwarded_from", json_null());
    json_object_set_new(o, "caller_name", json_null());
    json_object_set_new(o, "uri", json_string(uri));
    json_object_set_new(o, "subresource_uris", json_object());
    /* our own: the call in trunkline's API */
    json_object_set_new(o, "trunkline_call_id", json_string(c->id));
    return o;
}

/* the call named by the path, authenticated; 0 with the record, else out is filled */
static int find_call(struct tl_api_req *r, char ac[TL_TWILIO_SID_LEN + 1],
                     char ca[TL_TWILIO_SID_LEN + 1], char ws[TL_ID_MAX], struct tl_call_record *c,
                     struct tl_api_resp *out)
{
    char id[TL_ID_MAX];
    if (!parse_path(r->path, ac, ca)) {
        tw_error(out, 404, 20404, "The requested resource was not found");
        return -1;
    }
    if (basic_auth(r, ac, ws, out))
        return -1;
    int rc = tl_id_of_sid(ca, "CA", "ca", id);
    if (!rc)
        rc = tl_store_call_get(r->store, ws, id, c);
    if (rc) {
        tw_error(out, 404, 20404, "The requested resource %s was not found", r->path);
        return -1;
    }
    return 0;
}

void tl_h_twilio_call_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ac[TL_TWILIO_SID_LEN + 1], ca[TL_TWILIO_SID_LEN + 1], ws[TL_ID_MAX];
    struct tl_call_record *c = calloc(1, sizeof *c);
    if (!c) {
        tl_api_reply(out, 500, NULL);
        return;
    }
    if (!find_call(r, ac, ca, ws, c, out))
        tl_api_reply(out, 200, call_json(c, ac, ca, NULL));
    free(c);
}

/* ---- forms (application/x-www-form-urlencoded) ---- */

struct form {
    size_t n;
    struct {
        char name[64];
        char *value; /* decoded, NUL-terminated */
    } f[FORM_FIELDS_MAX];
};

static void form_free(struct form *fm)
{
    for (size_t i = 0; i < fm->n; i++)
        free(fm->f[i].value);
}

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* percent and '+' decoding into dst (cap bytes, NUL-terminated); false on a bad escape,
 * a NUL, or no room */
static bool url_decode(const char *p, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '+') {
            ch = ' ';
        } else if (ch == '%') {
            if (n < 3 || i > n - 3)
                return false;
            int h = hexv(p[i + 1]), l = hexv(p[i + 2]);
            if (h < 0 || l < 0)
                return false;
            ch = (char)(h * 16 + l);
            i += 2;
        }
        if (!ch || o + 1 >= cap)
            return false;
        dst[o++] = ch;
    }
    dst[o] = '\0';
    return true;
}

static int form_parse(const char *p, size_t n, struct form *fm)
{
    memset(fm, 0, sizeof *fm);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(p + i, '=', j - i);
            size_t kl = eq ? (size_t)(eq - (p + i)) : j - i;
            if (fm->n >= FORM_FIELDS_MAX)
                return E2BIG;
            char *val = malloc(FORM_VALUE_MAX + 1);
            if (!val)
                return ENOMEM;
            fm->f[fm->n].value = val;
            fm->n++;
            if (!url_decode(p + i, kl, fm->f[fm->n - 1].name, sizeof fm->f[0].name) ||
                !url_decode(eq ? eq + 1 : p + j, eq ? (size_t)(p + j - eq - 1) : 0, val,
                            FORM_VALUE_MAX + 1))
                return EBADMSG;
        }
        i = j + 1;
    }
    return 0;
}

static const char *form_get(const struct form *fm, const char *name)
{
    for (size_t i = 0; i < fm->n; i++)
        if (!strcmp(fm->f[i].name, name))
            return fm->f[i].value;
    return NULL;
}

/* ---- the update, done on a job thread: the loop answers through the mailbox ---- */

struct upd_job {
    struct tl_api_job job;
    struct tl_api_calls calls;
    char ws[TL_ID_MAX], call_id[TL_ID_MAX];
    char ac[TL_TWILIO_SID_LEN + 1], ca[TL_TWILIO_SID_LEN + 1];
    size_t n_ops;
    struct {
        int op;
        char param[TL_TWIML_TARGET_MAX + 1];
    } ops[TL_TWIML_VERBS_MAX + 1];
    int rc;
    char status[16];
    struct tl_store *store;
};

static void upd_run(struct tl_api_job *j)
{
    struct upd_job *u = (struct upd_job *)j;
    for (size_t i = 0; i < u->n_ops && !u->rc; i++)
        u->rc = u->calls.control(u->calls.arg, u->ws, u->call_id, u->ops[i].op, u->ops[i].param,
                                 u->status);
}

static void upd_finish(struct tl_api_job *j, struct tl_api_resp *out)
{
    struct upd_job *u = (struct upd_job *)j;
    struct tl_call_record *c = calloc(1, sizeof *c);
    if (!c) {
        tl_api_reply(out, 500, NULL);
    } else if (u->rc == ENOENT || u->rc == 0) {
        /* ENOENT: not live any more — a call that ended is simply returned as it is
         * (hanging up a completed call is not an error at Twilio either) */
        int rc = tl_store_call_get(u->store, u->ws, u->call_id, c);
        if (rc)
            tw_error(out, 404, 20404, "The requested resource was not found");
        else
            tl_api_reply(out, 200, call_json(c, u->ac, u->ca, u->rc ? NULL : u->status));
    } else if (u->rc == EBUSY) {
        tw_error(out, 409, 21220, "A transfer of this call is already under way");
    } else if (u->rc == ENOTCONN) {
        tw_error(out, 400, 21220, "Call is not in-progress");
    } else if (u->rc == EINVAL) {
        tw_error(out, 400, 21210, "The transfer target or digits are not valid");
    } else {
        tw_error(out, 503, 20503, "The call could not be updated now (%s)", strerror(u->rc));
    }
    free(c);
    free(u);
}

void tl_h_twilio_call_update(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_call_record *c = calloc(1, sizeof *c);
    struct upd_job *u = calloc(1, sizeof *u);
    struct tl_twiml *tw = NULL;
    struct form fm = {0};
    char why[200];
    if (!c || !u) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    if (find_call(r, u->ac, u->ca, u->ws, c, out))
        goto out;
    tl_strlcpy(u->call_id, c->id, sizeof u->call_id);
    int rc = form_parse(r->body ? r->body : "", r->body ? r->body_len : 0, &fm);
    if (rc) {
        tw_error(out, 400, 20001, "The form could not be read (%s)", strerror(rc));
        goto out;
    }
    const char *status = form_get(&fm, "Status"), *twiml = form_get(&fm, "Twiml");
    if (form_get(&fm, "Url")) {
        tw_error(out, 400, 21205,
                 "Url is not supported in a call update here: send Twiml, or Status=completed");
        goto out;
    }
    if (status) {
        if (strcmp(status, "completed") && strcmp(status, "canceled")) {
            tw_error(out, 400, 21218, "Status must be completed or canceled");
            goto out;
        }
        u->ops[u->n_ops++].op = TL_API_CALL_HANGUP;
    }
    if (twiml) {
        if (!(tw = malloc(sizeof *tw))) {
            tl_api_reply(out, 500, NULL);
            goto out;
        }
        rc = tl_twiml_parse(twiml, strlen(twiml), tw, why, sizeof why);
        if (rc) {
            tw_error(out, 400, 12100, "Twiml could not be used: %s", why);
            goto out;
        }
        for (size_t i = 0; i < tw->n && u->n_ops < sizeof u->ops / sizeof u->ops[0]; i++) {
            const struct tl_twiml_op *op = &tw->ops[i];
            switch (op->verb) {
            case TL_TWIML_HANGUP:
                u->ops[u->n_ops++].op = TL_API_CALL_HANGUP;
                break;
            case TL_TWIML_DIAL:
                u->ops[u->n_ops].op = TL_API_CALL_TRANSFER;
                tl_strlcpy(u->ops[u->n_ops++].param, op->target, sizeof u->ops[0].param);
                break;
            case TL_TWIML_PLAY_DIGITS:
                u->ops[u->n_ops].op = TL_API_CALL_DIGITS;
                tl_strlcpy(u->ops[u->n_ops++].param, op->digits, sizeof u->ops[0].param);
                break;
            case TL_TWIML_PAUSE:
                break; /* nothing to wait for in an update of a live stream */
            default:
                tw_error(out, 400, 12100,
                         "<%s> is not supported in a call update (use <Hangup/>, <Dial> or "
                         "<Play digits>)",
                         tl_twiml_verb_name(op->verb));
                goto out;
            }
        }
    }
    if (!u->n_ops) { /* nothing asked: the resource as it is */
        u->ops[u->n_ops++].op = TL_API_CALL_STATUS;
    }
    pthread_mutex_lock(&r->api->mu);
    u->calls = r->api->calls;
    pthread_mutex_unlock(&r->api->mu);
    if (!u->calls.control) {
        tw_error(out, 503, 20503, "Calls are not served by this process right now");
        goto out;
    }
    u->store = r->store;
    u->job.run = upd_run;
    u->job.finish = upd_finish;
    out->job = &u->job;
    u = NULL;
out:
    if (tw)
        free(tw);
    form_free(&fm);
    free(c);
    free(u);
}
