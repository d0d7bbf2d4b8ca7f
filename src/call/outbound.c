/* call/outbound: calls the API places (POST /v1/calls; docs/calls.md "Outbound calls").
 *
 * The API thread reads and checks everything (number, trunk with its password, agent with
 * its header values) and hands a copy to the loop through the mailbox (control.c); here,
 * on the loop, in this order:
 *
 *   admit     the gateway's max_calls (and the workspace's outbound caps), else refused
 *             at once so the API can answer 429/503          → status queued, record
 *   agent     the agent leg is opened first (its WebSocket, `connected` and `start`), so
 *             the bot is ready to speak at the answer; at the same time the trunk's
 *             address is located (RFC 3263, the trunk's transport)
 *   INVITE    once both are there: our media stream (pending: the answer brings codec and
 *             keys; what the agent says meanwhile is held, media.h), our SDP offer by the
 *             trunk's SRTP policy, sip:{to}@{address} with From = the number, the trunk's
 *             and the call's headers, digest with the trunk's credentials (realm = the
 *             address, answered once), TLS verified against the address   → dialing
 *   1xx       180/183 → ringing; a 183's SDP is kept in case the 200 has none; early media
 *             itself reaches nobody (the agent's stream starts at the answer, as Twilio's)
 *   answer    200: ACK (the session), the answer's codec and keys into the stream, the
 *             bridge runs                                               → in_progress
 *   no answer the ringing timeout: CANCEL (§9.1)                          → no_answer
 *   failure   every final non-2xx and every error becomes a status, an event on the
 *             number and a hint in plain words that names what to change (below).
 *
 * What the call layer does for inbound calls after the answer (media, agent, hold, BYE,
 * records) it does here the same way: call.c's session callbacks run under ours. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "call/call_int.h"
#include "net/resolve.h"

#define SDP_CT     "application/sdp"
#define SDP_BUFMAX 4096
#define HDRS_MAX   (2 * TL_HEADERS_MAX * (TL_HEADER_NAME_MAX + TL_HEADER_VALUE_MAX + 4) + 1)
#define REALM_MAX  128

struct tl_call_out {
    struct tl_call *c;
    struct tl_call_request *rq; /* until the INVITE is out: the password — SECRET */
    struct tl_net_resolve_query *q;
    struct tl_net_targets tg;
    bool resolved, agent_ok, dialed;
    struct tl_timer ring_tm;
    uint32_t ring_s;
    uint32_t max_s;
    /* what the INVITE got back, for the failure's words */
    uint16_t final;
    char reason[TL_SIP_REASON_MAX + 1];
    char realm[REALM_MAX + 1]; /* of a final 401/407's challenge */
    int err;                   /* no final response: the transport's or the timer's errno */
    bool has_user;
    char address[TL_HOST_MAX + 1];
    enum tl_transport transport;
    enum tl_media_enc media;
    char to[TL_E164_MAX + 1];
    char *early; /* a 183's SDP, for a 200 that carries none */
    size_t early_len;
};

static struct tl_call_out *of_ring(struct tl_timer *t)
{
    return (struct tl_call_out *)(void *)((char *)t - offsetof(struct tl_call_out, ring_tm));
}

static const char *tp_upper(enum tl_transport t)
{
    return t == TL_TRANSPORT_TLS ? "TLS" : t == TL_TRANSPORT_TCP ? "TCP" : "UDP";
}

/* printable ASCII of the far end's reason phrase: it goes into records, events and JSON */
static void reason_copy(char *dst, size_t cap, const struct tl_pl *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->l && n + 1 < cap; i++)
        dst[n++] =
            p->p[i] >= 0x20 && p->p[i] < 0x7f && p->p[i] != '"' && p->p[i] != '\\' ? p->p[i] : '?';
    dst[n] = '\0';
}

/* A hint with values in it. It is capped at TL_EVENT_HINT_MAX like every hint; the longest
 * values (a 253-byte host name) are the only ones that may cut a sentence short. */
static void hintf(char hint[TL_EVENT_HINT_MAX + 1], const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void hintf(char hint[TL_EVENT_HINT_MAX + 1], const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hint, TL_EVENT_HINT_MAX + 1, fmt, ap);
    va_end(ap);
}

static void set_status(struct tl_call *c, enum tl_call_status st)
{
    if (c->rec.status == st)
        return;
    c->rec.status = st;
    tl_info("call", "status", "call=%s status=%s", c->rec.id, tl_call_status_name(st));
    tl__call_record(c);
}

/* The end of an unanswered outbound call: status, the far end's answer, an event with
 * its hint (kept in the record too), then the call ends (reason: end_reason). */
static void out_fail(struct tl_call *c, enum tl_call_status st, const char *code, const char *hint,
                     const char *reason, const char *step, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void out_fail(struct tl_call *c, enum tl_call_status st, const char *code, const char *hint,
                     const char *reason, const char *step, const char *fmt, ...)
{
    struct tl_call_out *o = c->out;
    char msg[TL_EVENT_MESSAGE_MAX + 1], extra[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->final) {
        c->rec.final_status = o->final;
        tl_strlcpy(c->rec.sip_reason, o->reason, sizeof c->rec.sip_reason);
    }
    c->rec.status = st;
    tl_strlcpy(c->rec.hint, hint, sizeof c->rec.hint);
    snprintf(extra, sizeof extra, ",\"call_id\":\"%s\",\"step\":\"%s\",\"to\":\"%s\"", c->rec.id,
             step, o->to);
    tl__call_event_cx(c, code, hint, o->final, extra, "call %s to %s: %s", c->rec.id, o->to, msg);
    tl__call_end(c, reason, 0, NULL);
}

/* ---- what a failure means, in the words a person fixing it needs ---- */

/* The trunk could not be reached: which step failed (DNS, connect, TLS, no answer) */
static void fail_unreachable(struct tl_call *c, const char *step, int err, bool dns_lookup)
{
    struct tl_call_out *o = c->out;
    char hint[TL_EVENT_HINT_MAX + 1];
    const char *tp = tp_upper(o->transport);
    if (!strcmp(step, "dns") && dns_lookup && err != ENOENT)
        hintf(hint,
              "The DNS servers did not answer for %s (%s): the gateway could not look the "
              "trunk up. Check the gateway's DNS settings (sip_dns_servers) and try again.",
              o->address, strerror(err));
    else if (!strcmp(step, "dns"))
        hintf(hint,
              "The trunk address %s does not resolve (no NAPTR, SRV or A records for %s): "
              "check outbound_trunk.address; it is the host name of the provider's SIP "
              "server, without sip: or a port.",
              o->address, tp);
    else if (!strcmp(step, "connect"))
        hintf(hint,
              "No %s connection to the carrier at %s (%s): check that outbound_trunk.transport "
              "is one the provider offers there, and that it accepts connections from this "
              "gateway's address.",
              tp, c->src, strerror(err));
    else if (!strcmp(step, "tls"))
        hintf(hint,
              "The TLS connection to the carrier at %s failed: its certificate must be valid "
              "for %s and signed by a trusted authority (the gateway's log names the "
              "verification error). Set outbound_trunk.address to the name in the "
              "provider's certificate, or choose another transport if it offers one.",
              c->src, o->address);
    else if (!strcmp(step, "timeout"))
        hintf(hint,
              "The carrier at %s never answered the INVITE over %s: check outbound_trunk "
              "address and transport, and that the provider accepts traffic from this "
              "gateway's address (some drop unknown sources without a word).",
              c->src, tp);
    else
        hintf(hint, "The call could not be sent (%s); if it repeats, the gateway's log says more.",
              strerror(err));
    tl_warnl("call", "outbound.unreachable", "call=%s step=%s err=%s", c->rec.id, step,
             strerror(err));
    out_fail(c, TL_CALL_FAILED, TL_EV_TRUNK_UNREACHABLE, hint, "trunk_unreachable", step,
             "the trunk %s could not be reached (%s: %s)", o->address, step, strerror(err));
}

/* A final non-2xx to our INVITE (after the one digest answer the stack gives). */
static void fail_final(struct tl_call *c, uint16_t sc)
{
    struct tl_call_out *o = c->out;
    char hint[TL_EVENT_HINT_MAX + 1];
    const char *why = o->reason[0] ? o->reason : tl_sip_reason_phrase(sc);
    switch (sc) {
    case 486:
    case 600:
        out_fail(c, TL_CALL_BUSY, TL_EV_OUTBOUND_BUSY, TL_EV_HINT_OUTBOUND_BUSY, "busy", "sip",
                 "busy (%u %s)", sc, why);
        return;
    case 480:
        hintf(hint,
              "The callee could not be reached or did not answer (480 %s): the phone is off, "
              "out of coverage or rejected the call. Try again later.",
              why);
        out_fail(c, TL_CALL_NO_ANSWER, TL_EV_OUTBOUND_NO_ANSWER, hint, "no_answer", "sip",
                 "not answered (%u %s)", sc, why);
        return;
    case 401:
    case 407: {
        bool realm_ok = !o->realm[0] || !strcasecmp(o->realm, o->address);
        if (!o->has_user)
            hintf(hint,
                  "The carrier asks for credentials (%u %s) but the number's outbound trunk "
                  "has none: enter the provider's username and password "
                  "(outbound_trunk.username, outbound_trunk.password), or have the provider "
                  "authenticate this gateway by its IP address.",
                  sc, why);
        else if (!realm_ok)
            hintf(hint,
                  "The carrier asked for credentials of realm \"%s\", but trunkline answers "
                  "only for the trunk's own address %s, so that a hop in between cannot "
                  "collect them. Set outbound_trunk.address to the provider's SIP domain.",
                  o->realm, o->address);
        else
            hintf(hint,
                  "The carrier refused the trunk's credentials (%u again after our answer): "
                  "the username or password does not match the provider's. Re-enter the "
                  "password (outbound_trunk.password); most providers show it only once.",
                  sc);
        out_fail(c, TL_CALL_FAILED, TL_EV_OUTBOUND_AUTH_FAILED, hint, "auth_failed", "sip",
                 "credentials refused (%u %s)", sc, why);
        return;
    }
    case 403:
        out_fail(c, TL_CALL_FAILED, TL_EV_OUTBOUND_FORBIDDEN, TL_EV_HINT_OUTBOUND_FORBIDDEN,
                 "forbidden", "sip", "refused by the carrier (403 %s)", why);
        return;
    case 404:
    case 484:
    case 604:
        hintf(hint, TL_EV_HINT_OUTBOUND_DESTINATION_FMT, o->to, sc);
        out_fail(c, TL_CALL_FAILED, TL_EV_OUTBOUND_DESTINATION, hint, "destination_invalid", "sip",
                 "the destination was not accepted (%u %s)", sc, why);
        return;
    case 488:
    case 606:
        hintf(hint,
              "The callee's side refused our media (%u %s): its media encryption does not "
              "match the trunk's (%s). %s",
              sc, why, tl_media_enc_name(o->media),
              o->media == TL_MEDIA_ALLOWED
                  ? "The trunk already offers RTP with optional SRTP keys, which a few "
                    "carriers refuse: try media_encryption disabled to confirm signalling, "
                    "then agree on required with the provider."
                  : "Set outbound_trunk.media_encryption to allowed (RTP with optional SRTP) "
                    "to confirm calls work, then agree on required with the provider.");
        out_fail(c, TL_CALL_FAILED, TL_EV_MEDIA_ENCRYPTION_MISMATCH, hint, "media_mismatch", "sip",
                 "media refused (%u %s)", sc, why);
        return;
    case 408:
    case 503:
        hintf(hint,
              "The carrier at %s answered %u %s%s: it could not take the call now (overload, "
              "the account's channel limit, or no route onwards in time). Try again later; "
              "if it lasts, check the account with the provider.",
              c->src, sc, why, sc == 503 ? " (from every server DNS named for the trunk)" : "");
        out_fail(c, TL_CALL_FAILED, TL_EV_TRUNK_UNREACHABLE, hint, "trunk_unreachable", "sip",
                 "the carrier could not take the call (%u %s)", sc, why);
        return;
    default:
        hintf(hint,
              "The carrier refused the call with %u %s. Look the status up in the "
              "provider's documentation; check the number formats it expects and the "
              "account's settings for outbound calls.",
              sc, why);
        out_fail(c, TL_CALL_FAILED, TL_EV_OUTBOUND_FAILED, hint, "rejected", "sip",
                 "refused (%u %s)", sc, why);
    }
}

/* ---- session callbacks (call.c's run under these) ---- */

static void realm_of(struct tl_call_out *o, const struct tl_sip_msg *resp)
{
    enum tl_sip_hdr_id id =
        resp->scode == 407 ? TL_SIP_HDR_PROXY_AUTHENTICATE : TL_SIP_HDR_WWW_AUTHENTICATE;
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(resp, id);
    struct tl_sip_auth a;
    o->realm[0] = '\0';
    if (!h || tl_sip_auth_decode(&a, &h->val) || !a.realm.l)
        return;
    struct tl_pl r = a.realm;
    if (r.l >= 2 && r.p[0] == '"' && r.p[r.l - 1] == '"') {
        r.p++;
        r.l -= 2;
    }
    reason_copy(o->realm, sizeof o->realm, &r);
}

static void o_response(struct tl_sip_sess *sess, enum tl_sip_method m, bool refresh,
                       const struct tl_sip_msg *resp, int err, void *arg)
{
    struct tl_call *c = arg;
    struct tl_call_out *o = c->out;
    if (m == TL_SIP_METHOD_INVITE && !refresh && o &&
        tl_sip_sess_state(sess) == TL_SIP_SESS_EARLY) {
        tl__call_hold(c);
        if (resp && resp->scode < 200) {
            /* 180 Ringing, 183 Session Progress: the callee's side is alerting; 100 is only
             * the next hop's */
            if (resp->scode > 100 && !c->ended && c->rec.status < TL_CALL_RINGING)
                set_status(c, TL_CALL_RINGING);
            if (resp->body.l && resp->body.l <= TL_SDP_BODY_MAX && !o->early &&
                (o->early = malloc(resp->body.l))) {
                memcpy(o->early, resp->body.p, resp->body.l);
                o->early_len = resp->body.l;
            }
        } else if (resp) {
            o->final = resp->scode;
            reason_copy(o->reason, sizeof o->reason, &resp->reason);
            if (resp->scode == 401 || resp->scode == 407)
                realm_of(o, resp);
        } else {
            o->err = err;
        }
        tl__call_release(c);
    }
    tl__call_sess_h.on_response(sess, m, refresh, resp, err, arg);
}

static void ring_stop(struct tl_call *c)
{
    struct tl_call_out *o = c->out;
    if (o->ring_tm.idx)
        tl_timer_stop(tl_sip_stack_timers(c->l->cfg.stack), &o->ring_tm);
}

static void on_max_duration(struct tl_timer *t, uint64_t now)
{
    (void)now;
    struct tl_call *c = (struct tl_call *)(void *)((char *)t - offsetof(struct tl_call, dur_tm));
    c->dur_armed = false;
    tl__call_hold(c);
    tl__call_end(c, "max_duration", 0, NULL);
    tl__call_release(c);
}

/* The 2xx to our INVITE: the session has ACKed it and given its answer to call.c */
static void o_established(struct tl_sip_sess *sess, void *arg)
{
    struct tl_call *c = arg;
    struct tl_call_out *o = c->out;
    struct tl_call_layer *l = c->l;
    tl__call_hold(c);
    c->established = true;
    if (c->ended) {
        /* a 200 that crossed our CANCEL (or came after the call ended otherwise): §9.1 */
        tl_sip_sess_bye(sess);
        goto out;
    }
    if (c->late_offer && o->early) {
        /* RFC 3261 §13.2.1 wants the answer in the 2xx; some gateways put it in the 183
         * only and send the 200 bare: take the 183's */
        struct tl_pl pl = {o->early, o->early_len};
        tl__call_sess_h.on_answer(sess, &pl, arg);
    }
    if (c->ended)
        goto out; /* the answer was unusable: call.c ended the call (event, BYE) */
    if (c->late_offer) {
        tl__call_event_c(c, TL_EV_CALL_FAILED, TL_EV_HINT_CALL_FAILED, 200,
                         "call %s: the callee answered without an SDP answer", c->rec.id);
        tl__call_end(c, "sdp_answer_missing", 0, NULL);
        goto out;
    }
    ring_stop(c);
    c->answered = true;
    c->rec.answered_at = tl_now_ms();
    c->rec.final_status = 200;
    tl_strlcpy(c->rec.sip_reason, o->reason[0] ? o->reason : "OK", sizeof c->rec.sip_reason);
    struct tl_sip_stack *s = l->cfg.stack;
    uint32_t max = o->max_s;
    if (l->cfg.max_duration_s && (!max || l->cfg.max_duration_s < max))
        max = l->cfg.max_duration_s;
    if (max && !tl_timer_start(tl_sip_stack_timers(s), &c->dur_tm,
                               tl_sip_stack_now(s) + max * 1000ull, on_max_duration))
        c->dur_armed = true;
    tl_info("call", "answered", "call=%s codec=%s srtp=%s", c->rec.id,
            c->rec.codec[0] ? c->rec.codec : "-", c->rec.srtp ? "yes" : "no");
    tl__call_watch_audio(c);
    set_status(c, TL_CALL_IN_PROGRESS);
out:
    tl__call_release(c);
}

static void o_terminated(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode,
                         void *arg)
{
    struct tl_call *c = arg;
    struct tl_call_out *o = c->out;
    if (c->answered) { /* a call like any other from here on */
        tl__call_sess_h.on_terminated(sess, why, scode, arg);
        return;
    }
    tl__call_hold(c);
    c->sess = NULL;
    c->bye_wait = tl_sip_sess_bye_pending(sess);
    if (c->ended) {
        /* after our CANCEL (or hang-up): the INVITE's final answer, usually 487 */
        if (scode && !c->rec.final_status) {
            c->rec.final_status = scode;
            tl_strlcpy(c->rec.sip_reason, o->reason[0] ? o->reason : tl_sip_reason_phrase(scode),
                       sizeof c->rec.sip_reason);
            tl__call_record(c);
        }
    } else if (why == TL_SIP_SESS_REJECTED && scode >= 300) {
        fail_final(c, scode);
    } else if (why == TL_SIP_SESS_ERROR && !scode) {
        int err = o->err ? o->err : EIO;
        if (err == ECANCELED) /* the stack stops (shutdown) */
            tl__call_end(c, "shutdown", 0, NULL);
        else
            fail_unreachable(c, tl_sip_failed_step(err, true), err, false);
    } else {
        if (scode)
            fail_final(c, scode);
        else
            tl__call_end(c, tl_sip_sess_reason_name(why), 0, NULL);
    }
    tl__call_release(c);
}

static void o_answer(struct tl_sip_sess *sess, const struct tl_pl *answer, void *arg)
{
    struct tl_call *c = arg;
    tl__call_sess_h.on_answer(sess, answer, arg);
    if (c->ended && c->out && !c->answered && !c->rec.hint[0]) {
        /* call.c refused the answer (event call_failed with the reason): say what to do */
        tl_strlcpy(c->rec.hint,
                   "The callee answered with media this gateway cannot use (the event names the "
                   "SDP problem): check the trunk's media_encryption against the provider's and "
                   "that it offers PCMU or PCMA.",
                   sizeof c->rec.hint);
        c->rec.status = TL_CALL_FAILED;
        tl__call_record(c);
    }
}

void tl__call_out_init(struct tl_call_layer *l)
{
    l->out_h = tl__call_sess_h;
    l->out_h.on_response = o_response;
    l->out_h.on_established = o_established;
    l->out_h.on_terminated = o_terminated;
    l->out_h.on_answer = o_answer;
}

/* ---- dialing ---- */

static void on_ring_timeout(struct tl_timer *t, uint64_t now)
{
    (void)now;
    struct tl_call_out *o = of_ring(t);
    struct tl_call *c = o->c;
    tl__call_hold(c);
    if (!c->ended && !c->answered) {
        char hint[TL_EVENT_HINT_MAX + 1];
        hintf(hint,
              "Nobody answered within the ringing timeout (%u s), so trunkline sent CANCEL. "
              "Raise ringing_timeout_s for this call if the callee needs longer%s.",
              o->ring_s,
              c->rec.status == TL_CALL_DIALING
                  ? "; the carrier never said the phone rang (no 180/183): check the number"
                  : "");
        out_fail(c, TL_CALL_NO_ANSWER, TL_EV_OUTBOUND_NO_ANSWER, hint, "no_answer", "ringing",
                 "no answer within %u s (CANCEL sent)", o->ring_s);
    }
    tl__call_release(c);
}

/* a number as the trunk wants it in the URIs: E.164, or without its '+' */
static const char *dial_form(const struct tl_call_request *rq, const char *e164)
{
    return rq->number.outbound.number_format == TL_NUMFMT_NO_PLUS && e164[0] == '+' ? e164 + 1
                                                                                    : e164;
}

static void dial(struct tl_call *c)
{
    struct tl_call_out *o = c->out;
    struct tl_call_layer *l = c->l;
    struct tl_call_request *rq = o->rq;
    const struct tl_net_target *t = tl_net_targets_cur(&o->tg);
    char ip[TL_SDP_ADDR_MAX] = "", *buf = NULL, *hdrs = NULL;
    int r = 0;
    o->dialed = true;
    if (!t) {
        fail_unreachable(c, "dns", ENOENT, true);
        return;
    }
    int af = t->sa.ss_family;
    const void *a = af == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)&t->sa)->sin6_addr
                                   : (const void *)&((const struct sockaddr_in *)&t->sa)->sin_addr;
    inet_ntop(af, a, ip, sizeof ip);
    tl_net_target_str(t, c->src, sizeof c->src);
    /* our c=: public_ip behind 1:1 NAT, else the address this host sends from towards the
     * carrier (no connection exists yet to ask) */
    if (l->public_af == af)
        tl_strlcpy(c->maddr, l->public_ip, sizeof c->maddr);
    else if ((r = tl__call_route_local(af, ip, c->maddr, sizeof c->maddr))) {
        fail_unreachable(c, "connect", r, false);
        return;
    }
    c->maf = af;
    if ((r = tl__call_open_media(c, false))) {
        tl_warnl("call", "media.open_failed", "call=%s err=%s", c->rec.id, strerror(r));
        out_fail(c, TL_CALL_FAILED, TL_EV_ADMISSION_REFUSED, TL_EV_HINT_MEDIA_PORTS,
                 "media_unavailable", "media", "no media port available (%s)", strerror(r));
        return;
    }
    c->late_offer = true; /* the answer brings codec and keys: call.c sets them (s_answer) */
    struct tl_sdp_local loc = {c->policy, c->maddr, tl_media_stream_local_port(c->ms),
                               TL_SDP_SENDRECV, true};
    size_t len = 0;
    if (!(buf = malloc(SDP_BUFMAX)) || !(hdrs = malloc(HDRS_MAX)) ||
        tl_sdp_offer(&l->sdp_b, &loc, &c->sdp) ||
        tl_sdp_print(buf, SDP_BUFMAX, &len, &l->sdp_b, &c->sdp)) {
        tl_sdp_wipe(&l->sdp_b);
        r = ENOMEM;
        goto failed;
    }
    tl_sdp_wipe(&l->sdp_b);
    /* the trunk's headers, then the call's X- headers (validated at the API: tokens, no
     * CR/LF) */
    size_t hn = 0;
    hdrs[0] = '\0';
    const struct tl_outbound_trunk *tr = &rq->number.outbound;
    for (size_t i = 0; i < tr->n_headers && i < TL_HEADERS_MAX; i++)
        hn += (size_t)snprintf(hdrs + hn, HDRS_MAX - hn, "%s: %s\r\n", tr->headers[i].name,
                               tr->headers[i].value);
    for (size_t i = 0; i < rq->order.n_headers && i < TL_HEADERS_MAX; i++)
        hn += (size_t)snprintf(hdrs + hn, HDRS_MAX - hn, "%s: %s\r\n", rq->order.headers[i].name,
                               rq->order.headers[i].value);
    char ruri[TL_HOST_MAX + 64], from[TL_HOST_MAX + 72], to[TL_HOST_MAX + 72];
    const char *me = dial_form(rq, rq->number.number), *them = dial_form(rq, o->to);
    snprintf(ruri, sizeof ruri, "sip:%s@%s", them, o->address);
    snprintf(from, sizeof from, "<sip:%s@%s>", me, o->address);
    snprintf(to, sizeof to, "<sip:%s@%s>", them, o->address);
    /* our own Call-ID, so the record names it from the start */
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    char callid[40];
    for (int i = 0; i < 16; i++)
        snprintf(callid + 2 * i, 3, "%02x", rnd[i]);
    tl_strlcpy(c->rec.sip_call_id, callid, sizeof c->rec.sip_call_id);
    struct tl_sip_request sr = {.method = TL_SIP_METHOD_INVITE,
                                .ruri = ruri,
                                .from = from,
                                .to = to,
                                .call_id = callid,
                                .hdrs = hn ? hdrs : NULL,
                                .ctype = SDP_CT,
                                .body = buf,
                                .body_len = len,
                                .tp = o->transport == TL_TRANSPORT_TLS   ? TL_SIP_TP_TLS
                                      : o->transport == TL_TRANSPORT_TCP ? TL_SIP_TP_TCP
                                                                         : TL_SIP_TP_UDP,
                                .targets = &o->tg};
    if (tr->username[0]) {
        sr.auth_user = tr->username;
        sr.auth_pass = tr->password;
        sr.auth_realm = o->address; /* answer the trunk's own realm only (CVE-2021-41158) */
    }
    c->over_tcp = sr.tp == TL_SIP_TP_TCP;
    r = tl_sip_sess_connect(&c->sess, l->cfg.sess, &sr, &l->out_h, c);
    sodium_memzero(buf, SDP_BUFMAX); /* our SRTP keys: the session keeps its own copy */
    free(buf);
    free(hdrs);
    buf = hdrs = NULL;
    /* the session has its copy of the password: ours goes now */
    sodium_memzero(o->rq, sizeof *o->rq);
    free(o->rq);
    o->rq = NULL;
    if (r) {
        c->sess = NULL;
        fail_unreachable(c, tl_sip_failed_step(r, true), r, false);
        return;
    }
    tl_info("call", "dialing", "call=%s hop=%s tp=%s", c->rec.id, c->src, tp_upper(o->transport));
    struct tl_sip_stack *s = l->cfg.stack;
    tl_timer_start(tl_sip_stack_timers(s), &o->ring_tm, tl_sip_stack_now(s) + o->ring_s * 1000ull,
                   on_ring_timeout);
    set_status(c, TL_CALL_DIALING);
    return;
failed:
    if (buf) {
        sodium_memzero(buf, SDP_BUFMAX);
        free(buf);
    }
    free(hdrs);
    fail_unreachable(c, "internal", r, false);
}

static void maybe_dial(struct tl_call *c)
{
    struct tl_call_out *o = c->out;
    if (!c->ended && o->agent_ok && o->resolved && !o->dialed)
        dial(c);
}

static void on_resolved(int err, const struct tl_net_targets *tg, void *arg)
{
    struct tl_call *c = arg;
    struct tl_call_out *o = c->out;
    o->q = NULL;
    tl__call_hold(c);
    if (c->ended) {
        /* nothing: ended while looking up */
    } else if (err) {
        fail_unreachable(c, "dns", err, true);
    } else {
        o->tg = *tg;
        o->resolved = true;
        maybe_dial(c);
    }
    tl__call_release(c);
}

static void agent_ready(struct tl_agent_call *ac, int err, const char *why)
{
    struct tl_call *c = ac->c;
    tl__call_hold(c);
    if (c->ended) {
        /* ended while the agent was connecting */
    } else if (err) {
        char text[200], hint[TL_EVENT_HINT_MAX + 1];
        tl__call_reason_text(text, sizeof text, why && why[0] ? why : strerror(err));
        hintf(hint,
              "The agent could not be reached, so the call was not placed: %s. Check the "
              "agent's URL and that its server is up and reachable from this gateway (DNS, "
              "firewall, a certificate from a public CA that names the host).",
              text);
        out_fail(c, TL_CALL_FAILED, TL_EV_AGENT_UNREACHABLE, hint, "agent_unreachable", "agent",
                 "the agent could not take the call: %s", text);
    } else {
        c->out->agent_ok = true;
        maybe_dial(c);
    }
    tl__call_release(c);
}

/* ---- placing ---- */

/* Toll-fraud guards: a stolen token must not become an expensive phone bill. A
 * workspace's concurrent outbound calls, and the calls it starts per minute (a token
 * bucket that holds one minute's worth and refills continuously). */
struct tl_call_bucket {
    char ws[TL_ID_MAX];
    double tokens;
    uint64_t at_ms;
};

static size_t ws_outbound(const struct tl_call_layer *l, const char *ws)
{
    size_t n = 0;
    for (const struct tl_call *c = l->calls; c; c = c->next)
        n += !c->ended && c->out && !strcmp(c->rec.workspace_id, ws);
    if (l->cfg.cluster) { /* the other nodes' as last synced: the cap holds cluster-wide */
        uint32_t in, out;
        tl_cluster_remote(l->cfg.cluster, ws, &in, &out);
        n += out;
    }
    return n;
}

/* true when the workspace may start one more call now (and it is counted) */
static bool bucket_take(struct tl_call_layer *l, const char *ws, uint64_t now)
{
    uint32_t per_min = l->cfg.out_calls_per_minute;
    struct tl_call_bucket *b = NULL;
    for (size_t i = 0; i < l->n_buckets && !b; i++)
        if (!strcmp(l->buckets[i].ws, ws))
            b = &l->buckets[i];
    if (!b) {
        if (l->n_buckets == l->cap_buckets) {
            size_t cap = l->cap_buckets ? 2 * l->cap_buckets : 8;
            struct tl_call_bucket *nb = realloc(l->buckets, cap * sizeof *nb);
            if (!nb)
                return false; /* no memory: refuse rather than not count */
            l->buckets = nb;
            l->cap_buckets = cap;
        }
        b = &l->buckets[l->n_buckets++];
        tl_strlcpy(b->ws, ws, sizeof b->ws);
        b->tokens = per_min;
        b->at_ms = now;
    }
    b->tokens += (double)(now - b->at_ms) * per_min / 60000.0;
    if (b->tokens > per_min)
        b->tokens = per_min;
    b->at_ms = now;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/* 429 outbound_rate: refused before the call exists, an event on the number says so */
static int refuse_rate(struct tl_call_layer *l, const struct tl_call_request *rq, int err,
                       const char *what, uint32_t cap)
{
    char hint[TL_EVENT_HINT_MAX + 1];
    hintf(hint,
          "An outbound call from %s to %s was refused: the workspace reached its limit of %u %s "
          "(a guard against toll fraud: a stolen token must not become a phone bill). Wait for "
          "calls to end, or have the operator raise the limit; if these calls are not yours, "
          "revoke the tokens of the workspace.",
          rq->number.number, rq->order.to, cap, what);
    tl_warnl("call", "outbound.rate", "workspace=%s number_id=%s what=\"%s\"",
             rq->number.workspace_id, rq->number.id, what);
    tl__call_event_n(l, rq->number.workspace_id, rq->number.id, TL_EV_OUTBOUND_RATE, hint, 429,
                     NULL, "outbound call to %s refused (429 outbound_rate): %u %s reached",
                     rq->order.to, cap, what);
    return err;
}

int tl__call_place(struct tl_call_layer *l, struct tl_call_request *rq, struct tl_call_record *rec)
{
    /* draining (SIGTERM): a load balancer is moving traffic away; a call placed now would
     * hold the shutdown for as long as it rings and talks */
    if (l->closing || l->drain_retry_s)
        return ESHUTDOWN;
    if (l->cfg.max_calls && l->n >= l->cfg.max_calls)
        return ENOSPC;
    const char *ws = rq->number.workspace_id;
    if (l->cfg.out_calls_per_workspace && ws_outbound(l, ws) >= l->cfg.out_calls_per_workspace)
        return refuse_rate(l, rq, EBUSY, "concurrent outbound calls",
                           l->cfg.out_calls_per_workspace);
    if (l->cfg.out_calls_per_minute && !bucket_take(l, ws, tl_sip_stack_now(l->cfg.stack)))
        return refuse_rate(l, rq, EAGAIN, "outbound calls per minute", l->cfg.out_calls_per_minute);
    const struct tl_agent_ops *aops = NULL;
    if (rq->agent.kind == TL_AGENT_WEBSOCKET && l->cfg.agent_env)
        aops = &tl_agent_websocket;
    else if (rq->agent.kind == TL_AGENT_BUILTIN)
        aops = tl_agent_builtin(rq->agent.builtin);
    if (!aops || !l->cfg.agent_env || !l->cfg.agent_env->resolver)
        return EINVAL;
    struct tl_call *c = calloc(1, sizeof *c);
    struct tl_call_out *o = calloc(1, sizeof *o);
    if (!c || !o || tl_sdp_sess_init(&c->sdp, NULL, NULL)) {
        free(c);
        free(o);
        return ENOMEM;
    }
    const struct tl_phone_number *n = &rq->number;
    c->l = l;
    c->acall.c = c;
    c->aops = aops;
    c->outbound = true;
    c->out = o;
    o->c = c;
    o->rq = rq;
    o->ring_s =
        rq->order.ringing_timeout_s ? rq->order.ringing_timeout_s : TL_RINGING_TIMEOUT_DEFAULT;
    o->max_s = rq->order.max_duration_s;
    o->has_user = n->outbound.username[0] != '\0';
    o->transport = n->outbound.transport;
    o->media = n->outbound.media_encryption;
    tl_strlcpy(o->address, n->outbound.address, sizeof o->address);
    tl_strlcpy(o->to, rq->order.to, sizeof o->to);
    c->policy = o->media == TL_MEDIA_REQUIRED  ? TL_SDP_SRTP_REQUIRED
                : o->media == TL_MEDIA_ALLOWED ? TL_SDP_SRTP_ALLOWED
                                               : TL_SDP_SRTP_DISABLED;
    c->latch = TL_MEDIA_LATCH_DEFAULT;
    tl_strlcpy(c->src, o->address, sizeof c->src);
    tl_strlcpy(c->out_address, o->address, sizeof c->out_address);

    struct tl_call_record *r = &c->rec;
    tl_call_id_new(r->id);
    tl_strlcpy(r->workspace_id, n->workspace_id, sizeof r->workspace_id);
    tl_strlcpy(r->number_id, n->id, sizeof r->number_id);
    tl_strlcpy(r->number, n->number, sizeof r->number);
    tl_strlcpy(r->agent_id, rq->agent.id, sizeof r->agent_id);
    r->direction = TL_CALL_OUTBOUND;
    tl_strlcpy(r->from_user, n->number, sizeof r->from_user);
    snprintf(r->from_uri, sizeof r->from_uri, "sip:%s@%s", dial_form(rq, n->number), o->address);
    tl_strlcpy(r->to_user, o->to, sizeof r->to_user);
    r->created_at = tl_now_ms();
    r->status = TL_CALL_QUEUED;

    c->next = l->calls;
    if (l->calls)
        l->calls->pprev = &c->next;
    c->pprev = &l->calls;
    l->calls = c;
    l->n++;
    if (l->cfg.cluster)
        tl_cluster_local_add(l->cfg.cluster, r->workspace_id, true, 1);
    tl_info("call", "start", "call=%s number_id=%s direction=outbound tp=%s", r->id, n->id,
            tp_upper(o->transport));
    tl__call_record(c);

    tl__call_hold(c);
    /* the trunk's address, while the agent connects */
    int e = tl_net_resolve(l->cfg.agent_env->resolver, o->address, 0,
                           o->transport == TL_TRANSPORT_TLS   ? TL_NET_TLS
                           : o->transport == TL_TRANSPORT_TCP ? TL_NET_TCP
                                                              : TL_NET_UDP,
                           on_resolved, c, &o->q);
    if (e) {
        fail_unreachable(c, "dns", e, true);
        goto out;
    }
    /* the agent: the call's parameters first (a key given twice keeps the first: the
     * call's wins over the agent's), then the agent's own */
    struct tl_agent_param params[2 * TL_PARAMS_MAX], hdrs[TL_HEADERS_MAX];
    size_t np = 0;
    for (size_t i = 0; i < rq->order.n_params && i < TL_PARAMS_MAX; i++)
        params[np++] = (struct tl_agent_param){rq->order.params[i].key, rq->order.params[i].value};
    for (size_t i = 0; i < rq->agent.n_params && i < TL_PARAMS_MAX; i++)
        params[np++] = (struct tl_agent_param){rq->agent.params[i].key, rq->agent.params[i].value};
    size_t nh = rq->agent.n_headers < TL_HEADERS_MAX ? rq->agent.n_headers : TL_HEADERS_MAX;
    for (size_t i = 0; i < nh; i++)
        hdrs[i] = (struct tl_agent_param){rq->agent.headers[i].name, rq->agent.headers[i].value};
    char call_sid[TL_CALL_SID_LEN + 1] = "";
    tl_call_sid_of(r->id, call_sid);
    struct tl_agent_call_info info = {.call_id = r->id,
                                      .workspace_id = r->workspace_id,
                                      .agent_id = r->agent_id,
                                      .number = r->number,
                                      .from = r->number,
                                      .to = o->to,
                                      .direction = "outbound",
                                      .sip_call_id = r->sip_call_id,
                                      .params = params,
                                      .n_params = np,
                                      .loop = l->cfg.loop,
                                      .number_id = r->number_id,
                                      .account_sid = rq->account_sid,
                                      .call_sid = call_sid,
                                      .url = rq->agent.url,
                                      .headers = hdrs,
                                      .n_headers = nh,
                                      .connect_timeout_ms = rq->agent.connect_timeout_ms,
                                      .env = l->cfg.agent_env};
    struct tl_agent_conn *conn = NULL;
    c->agent_starting = true;
    e = c->aops->start(&conn, &info, &c->acall, &tl__call_agent_ops, agent_ready);
    c->agent_starting = false;
    if (e) {
        char hint[TL_EVENT_HINT_MAX + 1];
        hintf(hint,
              "The agent could not be started (%s), so the call was not placed: check the "
              "agent's settings (its URL, and ws:// only for hosts in "
              "agent_insecure_hosts).",
              strerror(e));
        out_fail(c, TL_CALL_FAILED, TL_EV_AGENT_UNREACHABLE, hint, "agent_unavailable", "agent",
                 "the agent could not start (%s)", strerror(e));
    } else if (c->ended) {
        c->aops->stop(conn, c->rec.end_reason); /* ended before start returned */
    } else {
        c->agent = conn;
    }
out:
    *rec = c->rec; /* as it stands: queued, or failed already (a name that cannot resolve) */
    tl__call_release(c);
    return 0;
}

void tl__call_out_end(struct tl_call *c)
{
    struct tl_call_out *o = c->out;
    if (o->q) {
        tl_net_resolve_cancel(o->q);
        o->q = NULL;
    }
    ring_stop(c);
}

void tl__call_out_free(struct tl_call *c)
{
    struct tl_call_out *o = c->out;
    if (!o)
        return;
    if (o->rq) {
        sodium_memzero(o->rq, sizeof *o->rq);
        free(o->rq);
    }
    free(o->early);
    free(o);
    c->out = NULL;
}
