/* call: the life of a call once inbound.c has let it in — the bridge between the media
 * stream and the agent (μ-law at the agent, A-law legs converted), re-INVITE hold/resume,
 * teardown for every reason, the call record — and the layer's open/close. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "call/call_int.h"

#define SDP_CT     "application/sdp"
#define SDP_BUFMAX 4096

static struct tl_call *of_acall(struct tl_agent_call *ac)
{
    return ac->c;
}

void tl__call_hold(struct tl_call *c)
{
    c->hold++;
}

static void call_free(struct tl_call *c)
{
    struct tl_call_layer *l = c->l;
    if (c->next)
        c->next->pprev = c->pprev;
    *c->pprev = c->next;
    for (uint32_t i = 0; i < c->mcount; i++)
        free(c->marks[(c->mhead + i) % c->mcap]);
    free(c->marks);
    if (c->answer) {
        sodium_memzero(c->answer, c->answer_len);
        free(c->answer);
    }
    tl_sdp_sess_wipe(&c->sdp);
    tl_sdp_nego_wipe(&c->neg);
    tl__call_out_free(c);
    free(c);
    if (l->closing && !l->calls) {
        if (l->cfg.freed)
            *l->cfg.freed = true;
        tl_sip_digest_server_wipe(l->dsrv);
        free(l->dsrv);
        tl_call_rate_free(l->rate);
        tl_call_authguard_free(l->guard);
        free(l->buckets);
        free(l);
    }
}

void tl__call_release(struct tl_call *c)
{
    if (--c->hold > 0)
        return;
    if (c->ended && !c->sess && !c->ms && !c->agent && !c->agent_starting && !c->bye_wait)
        call_free(c);
}

void tl__call_record(struct tl_call *c)
{
    if (c->l->cfg.rec)
        tl_recorder_call(c->l->cfg.rec, &c->rec);
}

/* JSON string content from bytes we do not control: printable ASCII only, no quotes or
 * backslashes (the recorder repairs UTF-8, not JSON) */
static void safe_copy(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = (*src >= 0x20 && *src < 0x7f && *src != '"' && *src != '\\') ? *src : '?';
    dst[n] = '\0';
}

static void event_v(struct tl_call_layer *l, const char *ws, const char *number_id,
                    const char *what, const char *code, const char *hint, const char *source,
                    int status, const char *extra, const char *fmt, va_list ap)
{
    struct tl_event *e = calloc(1, sizeof *e);
    if (!e)
        return;
    if (number_id) {
        tl_strlcpy(e->workspace_id, ws, sizeof e->workspace_id);
        tl_strlcpy(e->number_id, number_id, sizeof e->number_id);
    }
    tl_strlcpy(e->code, code, sizeof e->code);
    tl_strlcpy(e->hint, hint, sizeof e->hint);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    char src[64];
    safe_copy(src, sizeof src, source);
    snprintf(e->details, sizeof e->details, "{\"status\":%d,\"source\":\"%s\"%s}", status, src,
             extra ? extra : "");
    /* one line per refused INVITE is what a flood of them would write (issue 11 item 8):
     * limited, like the events themselves */
    TL_LOG_LIMITED(TL_LOG_INFO, "call", what, "code=%s status=%d src=%s number_id=%s", code, status,
                   src, number_id ? number_id : "-");
    if (l->cfg.rec)
        tl_recorder_event(l->cfg.rec, e, source);
    free(e);
}

void tl__call_event(struct tl_call_layer *l, const struct tl_route *rt, const char *code,
                    const char *hint, const char *source, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    event_v(l, rt ? rt->workspace_id : NULL, rt ? rt->number_id : NULL, "refused", code, hint,
            source, status, NULL, fmt, ap);
    va_end(ap);
}

void tl__call_event_n(struct tl_call_layer *l, const char *workspace_id, const char *number_id,
                      const char *code, const char *hint, int status, const char *extra,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    event_v(l, workspace_id, number_id, "refused", code, hint, "api", status, extra, fmt, ap);
    va_end(ap);
}

void tl__call_event_c(struct tl_call *c, const char *code, const char *hint, int status,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    event_v(c->l, c->rec.workspace_id, c->rec.number_id, "event", code, hint, c->src, status, NULL,
            fmt, ap);
    va_end(ap);
}

void tl__call_event_cx(struct tl_call *c, const char *code, const char *hint, int status,
                       const char *extra, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    event_v(c->l, c->rec.workspace_id, c->rec.number_id, "event", code, hint, c->src, status, extra,
            fmt, ap);
    va_end(ap);
}

void tl__call_media_stats(struct tl_call *c)
{
    if (!c->ms || c->ms_closing)
        return;
    struct tl_media_stats st;
    tl_media_stream_stats(c->ms, &st);
    c->rec.packets_sent = st.tx_packets;
    c->rec.packets_received = st.rx_packets;
    c->rec.packets_lost = st.lost > 0 ? (uint64_t)st.lost : 0;
    c->rec.jitter_ms = st.jitter_ms;
    c->rec.dropped_source = st.drop_source;
    c->rec.dropped_auth = st.drop_auth;
    c->rec.dropped_malformed = (uint64_t)st.drop_malformed + st.drop_too_big + st.drop_rtcp;
    c->rec.dropped_pt = st.drop_pt;
    c->rec.dropped_early = st.drop_pending;
}

_Static_assert(sizeof TL_EV_HINT_RTP_SOURCE_MISMATCH <= TL_EVENT_HINT_MAX + 1, "hint too long");
_Static_assert(sizeof TL_EV_HINT_EDGE_SOURCE_MISSING <= TL_EVENT_HINT_MAX + 1, "hint too long");
_Static_assert(sizeof TL_EV_HINT_RTP_SOURCE_MISMATCH_ANY <= TL_EVENT_HINT_MAX + 1, "hint too long");

/* "ip:port", "[v6]:port" */
static void addr_text(const struct sockaddr_storage *a, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family != AF_INET && a->ss_family != AF_INET6) {
        tl_strlcpy(out, "(none)", cap);
        return;
    }
    bool v6 = a->ss_family == AF_INET6;
    const void *p = v6 ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                       : (const void *)&((const struct sockaddr_in *)a)->sin_addr;
    unsigned port = v6 ? ntohs(((const struct sockaddr_in6 *)a)->sin6_port)
                       : ntohs(((const struct sockaddr_in *)a)->sin_port);
    inet_ntop(a->ss_family, p, ip, sizeof ip);
    snprintf(out, cap, v6 ? "[%s]:%u" : "%s:%u", ip, port);
}

/* The one-way-audio diagnosis (issue 8 §3; src/media/README.md): RTP arrives, but from
 * another address than the SDP named, and latching refuses it. One event per call. */
static void unlatched_event(struct tl_call *c, const struct tl_media_unlatched *u)
{
    if (c->unl_warned)
        return;
    c->unl_warned = true;
    enum tl_media_latch pol = c->latch ? c->latch : tl_media_engine_latch(c->l->cfg.media);
    const char *pname = tl_media_latch_name(pol);
    char sdp[64], from[64], extra[256];
    addr_text(&u->sdp, sdp, sizeof sdp);
    addr_text(&u->from, from, sizeof from);
    snprintf(extra, sizeof extra,
             ",\"sdp_address\":\"%s\",\"rtp_source\":\"%s\",\"dropped\":%u,"
             "\"accepted\":%llu,\"rtp_latching\":\"%s\"",
             sdp, from, u->dropped, (unsigned long long)u->accepted, pname ? pname : "");
    tl_warnl("call", "rtp.source_mismatch", "call=%s sdp=%s from=%s dropped=%u accepted=%llu",
             c->rec.id, sdp, from, u->dropped, (unsigned long long)u->accepted);
    tl__call_event_cx(c, TL_EV_RTP_SOURCE_MISMATCH,
                      pol == TL_MEDIA_LATCH_ANY ? TL_EV_HINT_RTP_SOURCE_MISMATCH_ANY
                                                : TL_EV_HINT_RTP_SOURCE_MISMATCH,
                      0, extra,
                      "call %s: RTP came from %s but the SDP named %s; %u packets dropped "
                      "(rtp_latching %s), %llu accepted",
                      c->rec.id, from, sdp, u->dropped, pname ? pname : "?",
                      (unsigned long long)u->accepted);
}

/* RFC 4568 §8.3: SDES keys are only as safe as the signalling. A trunk set to TCP with
 * SRTP is accepted (hosted PBXs such as 3CX offer TCP only) but each such call says so,
 * once (docs/calls.md "SRTP over TCP"). */
void tl__call_sdes_check(struct tl_call *c)
{
    if (!c->over_tcp || !c->neg.srtp || c->sdes_warned)
        return;
    c->sdes_warned = true;
    tl_warnl("call", "srtp.clear_signalling", "call=%s", c->rec.id);
    tl__call_event_c(c, TL_EV_SRTP_KEYS_IN_CLEAR, TL_EV_HINT_SRTP_KEYS_IN_CLEAR, 200,
                     "call %s: SRTP keys crossed the network in clear signalling (SIP over TCP)",
                     c->rec.id);
}

static void stop_timers(struct tl_call *c)
{
    struct tl_theap *hp = tl_sip_stack_timers(c->l->cfg.stack);
    if (c->dur_armed)
        tl_timer_stop(hp, &c->dur_tm);
    if (c->defer_armed)
        tl_timer_stop(hp, &c->defer_tm);
    if (c->ans_armed)
        tl_timer_stop(hp, &c->ans_tm);
    c->dur_armed = c->defer_armed = c->ans_armed = false;
}

void tl__call_end(struct tl_call *c, const char *reason, uint16_t early_status, const char *hdrs)
{
    if (c->ended)
        return;
    tl__call_hold(c);
    c->ended = true;
    c->l->n--;
    if (c->l->cfg.cluster)
        tl_cluster_local_add(c->l->cfg.cluster, c->rec.workspace_id, c->outbound, -1);
    tl_strlcpy(c->rec.end_reason, reason, sizeof c->rec.end_reason);
    stop_timers(c);
    if (c->out)
        tl__call_out_end(c);
    if (c->agent) {
        struct tl_agent_conn *a = c->agent;
        c->agent = NULL; /* stop() is the last call into it (agent.h) */
        c->aops->stop(a, reason);
    }
    if (c->ms && !c->ms_closing) {
        tl__call_media_stats(c);
        /* ended before the report was due (a media timeout, a short call): still say it */
        struct tl_media_unlatched u;
        if (!tl_media_stream_unlatched(c->ms, &u))
            unlatched_event(c, &u);
        c->ms_closing = true;
        tl_media_stream_close(c->ms); /* on_close clears c->ms */
    }
    if (c->sess) {
        if (tl_sip_sess_state(c->sess) == TL_SIP_SESS_EARLY && !c->outbound) {
            uint16_t st = early_status ? early_status : 480;
            c->rec.final_status = st;
            tl_strlcpy(c->rec.sip_reason, tl_sip_reason_phrase(st), sizeof c->rec.sip_reason);
            tl_sip_sess_reject(c->sess, st, hdrs); /* on_terminated clears c->sess */
        } else {
            /* BYE; an outbound INVITE still ringing is CANCELed (§9.1): its 487 (or a 200
             * that crossed the CANCEL, then BYE) comes later, the call is over for us now */
            tl_sip_sess_bye(c->sess); /* on_terminated notes whether a BYE is out */
        }
    }
    if (!tl_call_status_final(c->rec.status))
        c->rec.status = c->answered ? TL_CALL_COMPLETED
                        : !strcmp(reason, "canceled") || !strcmp(reason, "api_hangup")
                            ? TL_CALL_CANCELED
                            : TL_CALL_FAILED;
    c->rec.ended_at = tl_now_ms();
    tl_info("call", "end", "call=%s reason=%s status=%d rx=%llu tx=%llu", c->rec.id, reason,
            c->rec.final_status, (unsigned long long)c->rec.packets_received,
            (unsigned long long)c->rec.packets_sent);
    tl__call_record(c);
    tl__call_release(c);
}

/* ---- hold / resume (RFC 3264 §8.4, §6.1: our direction is what the answer says) ---- */
void tl__call_direction(struct tl_call *c, enum tl_sdp_dir ours)
{
    bool send_ok = ours == TL_SDP_SENDRECV || ours == TL_SDP_SENDONLY;
    bool recv = ours == TL_SDP_SENDRECV || ours == TL_SDP_RECVONLY;
    if (c->ms && !c->ms_closing)
        tl_media_stream_set_direction(c->ms, send_ok, recv);
    bool held = !send_ok;
    if (held != c->held) {
        c->held = held;
        tl_info("call", held ? "hold" : "resume", "call=%s dir=%s", c->rec.id,
                tl_sdp_dir_name(ours));
        if (c->agent && !c->ended)
            c->aops->event(c->agent, held ? TL_AGENT_EV_HOLD : TL_AGENT_EV_RESUME);
    }
}

/* ---- SIP session callbacks ---- */

static struct tl_sdp_local local_of(struct tl_call *c)
{
    struct tl_sdp_local loc = {c->policy, c->maddr, 9, TL_SDP_SENDRECV, false};
    if (c->ms && !c->ms_closing)
        loc.port = tl_media_stream_local_port(c->ms);
    return loc;
}

/* A re-INVITE/UPDATE offer (hold, resume, a new address). The codec and the SRTP keys of
 * a running stream cannot change (the media stream has no re-key yet): such offers get
 * 488 and the call goes on as it was (RFC 3264 §8: refusing a re-offer keeps the old
 * session). */
static int s_offer(struct tl_sip_sess *sess, const struct tl_pl *offer, struct tl_sip_body *out,
                   void *arg)
{
    (void)sess;
    struct tl_call *c = arg;
    struct tl_call_layer *l = c->l;
    int ret = 488;
    tl__call_hold(c);
    struct tl_sdp_local loc = local_of(c);
    size_t len = 0;
    if (c->ended || !c->ms) {
        ret = 488;
    } else if (!offer->l) { /* the peer asks us to offer; the answer comes in the ACK */
        if (!tl_sdp_offer(&l->sdp_b, &loc, &c->sdp) &&
            !tl_sdp_print(out->buf, out->cap, &len, &l->sdp_b, &c->sdp)) {
            out->len = len;
            ret = 0;
        }
        tl_sdp_wipe(&l->sdp_b);
    } else if (!tl_sdp_decode(&l->sdp_a, offer)) {
        struct tl_sdp_nego n;
        struct tl_sdp_refusal why;
        /* the stream's sockets have one family (src/media/README.md): a re-offer that moves
         * the media to the other family is refused and the call goes on as it was */
        if (!tl_sdp_answer(&l->sdp_b, &n, &why, &l->sdp_a, &loc, &c->sdp) &&
            n.af == tl_media_stream_af(c->ms) && n.codec == c->neg.codec && n.srtp == c->neg.srtp &&
            (!n.srtp ||
             (n.suite == c->neg.suite && !sodium_memcmp(n.rkey, c->neg.rkey, sizeof n.rkey))) &&
            !tl_sdp_print(out->buf, out->cap, &len, &l->sdp_b, &c->sdp)) {
            if (strcmp(n.raddr, c->neg.raddr) || n.rport != c->neg.rport)
                tl_media_stream_set_remote(c->ms, n.raddr, n.rport, n.rtcp_port);
            tl_strlcpy(c->neg.raddr, n.raddr, sizeof c->neg.raddr);
            c->neg.rport = n.rport;
            c->neg.rtcp_port = n.rtcp_port;
            c->neg.dir = n.dir;
            tl__call_direction(c, n.dir);
            out->len = len;
            ret = 0;
        }
        tl_sdp_nego_wipe(&n);
        tl_sdp_wipe(&l->sdp_b);
    }
    tl_sdp_wipe(&l->sdp_a);
    tl__call_release(c);
    return ret;
}

/* The media parameters of a negotiation, for the stream. Wipe *p after use. */
static void stream_params(struct tl_media_stream_params *p, const struct tl_sdp_nego *n)
{
    memset(p, 0, sizeof *p);
    p->remote_ip = n->raddr;
    p->remote_rtp_port = n->rport;
    p->remote_rtcp_port = n->rtcp_port;
    p->pt = n->pt;
    p->dtmf_pt = n->te_pt;
    p->srtp = !n->srtp ? TL_MEDIA_SRTP_NONE
              : n->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32
                  ? TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32
                  : TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
    memcpy(p->srtp_tx_key, n->lkey, sizeof p->srtp_tx_key);
    memcpy(p->srtp_rx_key, n->rkey, sizeof p->srtp_rx_key);
}

/* The answer to our offer: late offer (INVITE without SDP: ours went in the 200, the
 * answer is in the ACK, RFC 3261 §13.2.1), or to a re-INVITE without SDP. The stream
 * takes the answer's codec, telephone-event PT and SRTP keys (set_params) — for a late
 * offer always (it was opened pending), later only when one of them changed, so a hold
 * without a change never restarts SRTP (whose rollover counter must carry on). */
static void s_answer(struct tl_sip_sess *sess, const struct tl_pl *answer, void *arg)
{
    (void)sess;
    struct tl_call *c = arg;
    struct tl_call_layer *l = c->l;
    tl__call_hold(c);
    struct tl_sdp_local loc = local_of(c);
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    memset(&n, 0, sizeof n);
    if (c->ended || !c->ms) {
        /* nothing */
    } else if (!c->sdp.offered && !c->late_offer) {
        /* the answer to a session refresh that sent our last body again (RFC 4028 §7.4; the
         * same o= version, RFC 3264 §8): no new offer of ours, nothing to take */
    } else if (tl_sdp_decode(&l->sdp_a, answer) ||
               tl_sdp_answer_take(&n, &why, &l->sdp_a, &loc, &c->sdp)) {
        tl__call_event_c(c, TL_EV_CALL_FAILED, TL_EV_HINT_CALL_FAILED, 0,
                         "call %s: the SDP answer%s was unusable%s%s", c->rec.id,
                         c->late_offer ? " in the ACK" : "", why.text[0] ? ": " : "", why.text);
        tl__call_end(c, "sdp_answer_refused", 0, NULL);
    } else {
        bool change = c->late_offer || n.codec != c->neg.codec || n.te_pt != c->neg.te_pt ||
                      n.srtp != c->neg.srtp ||
                      (n.srtp && (n.suite != c->neg.suite ||
                                  sodium_memcmp(n.rkey, c->neg.rkey, sizeof n.rkey) ||
                                  sodium_memcmp(n.lkey, c->neg.lkey, sizeof n.lkey)));
        int r = 0;
        if (change) {
            struct tl_media_stream_params p;
            stream_params(&p, &n);
            r = tl_media_stream_set_params(c->ms, &p);
            sodium_memzero(&p, sizeof p);
        } else if (strcmp(n.raddr, c->neg.raddr) || n.rport != c->neg.rport ||
                   n.rtcp_port != c->neg.rtcp_port) {
            r = tl_media_stream_set_remote(c->ms, n.raddr, n.rport, n.rtcp_port);
        }
        if (r) {
            tl__call_event_c(c, TL_EV_CALL_FAILED, TL_EV_HINT_CALL_FAILED, 0,
                             "call %s: the media stream could not take the SDP answer (%s)",
                             c->rec.id, strerror(r));
            tl__call_end(c, "sdp_answer_refused", 0, NULL);
        } else {
            bool late = c->late_offer;
            c->late_offer = false;
            tl_sdp_nego_wipe(&c->neg);
            c->neg = n; /* struct copy, keys included: wiped with the call */
            tl_strlcpy(c->rec.codec, n.codec == TL_SDP_CODEC_PCMA ? "PCMA" : "PCMU",
                       sizeof c->rec.codec);
            c->rec.srtp = n.srtp;
            if (late)
                tl_info("call", "late_answer", "call=%s codec=%s srtp=%s", c->rec.id, c->rec.codec,
                        n.srtp ? "yes" : "no");
            tl__call_direction(c, n.dir);
            tl__call_sdes_check(c);
        }
    }
    tl_sdp_nego_wipe(&n);
    tl_sdp_wipe(&l->sdp_a);
    tl__call_release(c);
}

static void s_established(struct tl_sip_sess *sess, void *arg)
{
    (void)sess;
    struct tl_call *c = arg;
    c->established = true;
    if (c->agent && !c->ended && c->aops->event) {
        tl__call_hold(c);
        c->aops->event(c->agent, TL_AGENT_EV_ESTABLISHED);
        tl__call_release(c);
    }
}

static void s_terminated(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode,
                         void *arg)
{
    struct tl_call *c = arg;
    tl__call_hold(c);
    c->sess = NULL;
    /* our BYE (agent hang-up, session timer, missing ACK…): keep the call until its
     * outcome is known, so an undelivered one is recorded as such (s_response) */
    c->bye_wait = tl_sip_sess_bye_pending(sess);
    if (!c->ended) {
        if (why == TL_SIP_SESS_CANCELED)
            c->rec.final_status = 487;
        else if (why == TL_SIP_SESS_REJECTED && scode)
            c->rec.final_status = scode;
        const char *r = why == TL_SIP_SESS_CANCELED ? "canceled"
                        : why == TL_SIP_SESS_BYE_RECEIVED && c->transferred
                            ? "transferred"
                            : tl_sip_sess_reason_name(why);
        tl__call_end(c, r, 0, NULL);
    }
    tl__call_release(c);
}

/* The outcome of our BYE, after on_terminated. A BYE that got no answer (timer F, the
 * connection refused, TLS failed) or was refused leaves the carrier's leg up and billing:
 * the record must say so, never a clean end (docs/calls.md). 481 counts as delivered: the
 * carrier has no such call any more. ECANCELED: the stack stopped (shutdown). */
static void s_response(struct tl_sip_sess *sess, enum tl_sip_method m, bool refresh,
                       const struct tl_sip_msg *resp, int err, void *arg)
{
    (void)sess;
    (void)refresh;
    struct tl_call *c = arg;
    if (m != TL_SIP_METHOD_BYE || (resp && resp->scode < 200) || !c->bye_wait)
        return;
    tl__call_hold(c);
    c->bye_wait = false;
    uint16_t sc = resp ? resp->scode : 0;
    if (err != ECANCELED && (!resp || (sc >= 300 && sc != 481))) {
        char was[TL_END_REASON_MAX + 1], why[96];
        tl_strlcpy(was, c->rec.end_reason, sizeof was);
        if (resp)
            snprintf(why, sizeof why, "the carrier answered %u", sc);
        else
            snprintf(why, sizeof why, "%s",
                     err == ETIMEDOUT ? "no answer (timeout)" : strerror(err));
        tl_warnl("call", "bye.failed", "call=%s was=%s why=\"%s\"", c->rec.id, was, why);
        tl_strlcpy(c->rec.end_reason, "bye_failed", sizeof c->rec.end_reason);
        tl__call_event_c(c, TL_EV_BYE_FAILED, TL_EV_HINT_BYE_FAILED, sc,
                         "call %s ended (%s) but the BYE was not delivered: %s", c->rec.id, was,
                         why);
        tl__call_record(c);
    }
    tl__call_release(c);
}

/* INFO (RFC 6086): DTMF relay becomes the same digit the agent gets from RFC 4733; what we
 * do not take is refused so the sender knows, rather than answered 200 and lost. */
static uint16_t s_info(struct tl_sip_sess *sess, const struct tl_sip_msg *m, char *hdrs, size_t cap,
                       void *arg)
{
    (void)sess;
    struct tl_call *c = arg;
    /* §4.2.2: an Info Package we never announced (we take legacy INFO only): 469 with a
     * Recv-Info listing ours, i.e. none (§5.2.3, the header may be empty) */
    if (tl_sip_msg_hdr_find(m, "Info-Package")) {
        snprintf(hdrs, cap, "Recv-Info:\r\n");
        return 469;
    }
    if (!m->body.l)
        return 200; /* an empty INFO: some PBXs' keep-alive */
    const struct tl_sip_hdr *ct = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTENT_TYPE);
    int type = ct ? tl_call_info_type(ct->val.p, ct->val.l) : 0;
    if (!type) { /* RFC 3261 §21.4.13: 415 says what we do take */
        snprintf(hdrs, cap, "Accept: application/dtmf-relay, application/dtmf\r\n");
        return 415;
    }
    char digit;
    uint16_t ms;
    int r = tl_call_info_dtmf(type, m->body.p, m->body.l, &digit, &ms);
    if (r)
        return r == E2BIG ? 413 : 400;
    tl__call_hold(c);
    if (!c->ended && c->agent) {
        if (!ms)
            ms = 100; /* no Duration: what our own RFC 4733 digits last */
        tl_info("call", "dtmf.in", "call=%s digit=%c ms=%u via=info", c->rec.id, digit, ms);
        c->aops->dtmf(c->agent, digit, ms);
    }
    tl__call_release(c);
    return 200;
}

/* NOTIFYs (and a refused REFER) of our transfer: 1xx trying/ringing, 2xx completed (the
 * carrier then hangs up on us: the record says transferred), else failed. */
static void s_notify(struct tl_sip_sess *sess, uint16_t sipfrag, bool terminated, void *arg)
{
    (void)sess;
    struct tl_call *c = arg;
    if (!c->transferring)
        return;
    const char *st = sipfrag >= 200 && sipfrag < 300                   ? "completed"
                     : sipfrag >= 300 || (terminated && sipfrag < 200) ? "failed"
                     : sipfrag >= 180                                  ? "ringing"
                                                                       : "trying";
    if (terminated || sipfrag >= 200)
        c->transferring = false;
    if (sipfrag >= 200 && sipfrag < 300)
        c->transferred = true;
    tl_info("call", "transfer.progress", "call=%s status=%s sip=%u", c->rec.id, st, sipfrag);
    if (c->agent && !c->ended && c->aops->transfer_status)
        c->aops->transfer_status(c->agent, st, sipfrag);
}

const struct tl_sip_sess_h tl__call_sess_h = {
    .on_offer = s_offer,
    .on_answer = s_answer,
    .on_established = s_established,
    .on_terminated = s_terminated,
    .on_response = s_response,
    .on_info = s_info,
    .on_notify = s_notify,
};

/* ---- media callbacks ---- */

static void m_audio(struct tl_media_stream *s, void *arg, const uint8_t *payload, size_t len,
                    uint32_t ts, uint16_t seq)
{
    (void)s;
    (void)seq;
    struct tl_call *c = arg;
    if (c->ended || !c->agent || !c->answered)
        return;
    if (c->neg.codec == TL_SDP_CODEC_PCMA) {
        uint8_t buf[TL_MEDIA_PKT_MAX];
        if (len > sizeof buf)
            return;
        tl_g711_alaw_to_ulaw(buf, payload, len);
        c->aops->audio(c->agent, buf, len, ts);
    } else {
        c->aops->audio(c->agent, payload, len, ts);
    }
}

static void m_dtmf(struct tl_media_stream *s, void *arg, char digit, uint16_t duration_ms)
{
    (void)s;
    struct tl_call *c = arg;
    if (c->ended || !c->agent)
        return;
    tl_info("call", "dtmf.in", "call=%s digit=%c ms=%u", c->rec.id, digit, duration_ms);
    c->aops->dtmf(c->agent, digit, duration_ms);
}

/* The media stream fires marks in the order they were set: the head of our ring is the
 * one that fired. */
static void m_mark(struct tl_media_stream *s, void *arg, uint32_t id)
{
    (void)s;
    (void)id;
    struct tl_call *c = arg;
    if (!c->mcount)
        return;
    char *name = c->marks[c->mhead];
    c->mhead = (c->mhead + 1) % c->mcap;
    c->mcount--;
    if (name && c->agent && !c->ended)
        c->aops->mark_done(c->agent, name);
    free(name);
}

static void m_timeout(struct tl_media_stream *s, void *arg)
{
    (void)s;
    struct tl_call *c = arg;
    tl__call_hold(c);
    tl__call_end(c, "media_timeout", 0, NULL);
    tl__call_release(c);
}

static void m_unlatched(struct tl_media_stream *s, void *arg, const struct tl_media_unlatched *u)
{
    (void)s;
    struct tl_call *c = arg;
    if (c->ended)
        return;
    unlatched_event(c, u);
    tl__call_media_stats(c);
    tl__call_record(c); /* GET /v1/calls/{id} shows the drops while the call is up */
}

/* One-way audio (the spec's troubleshooting): the carrier's RTP never came after the
 * answer, or stopped while ours flowed. Usually mismatched media settings on one side: an
 * event, once per call; the call goes on (the media timeout still ends a dead one). */
static void m_quiet(struct tl_media_stream *s, void *arg, bool never, uint32_t gap_ms)
{
    (void)s;
    struct tl_call *c = arg;
    if (c->ended || !c->answered)
        return;
    char extra[160];
    tl__call_media_stats(c);
    snprintf(extra, sizeof extra,
             ",\"call_id\":\"%s\",\"direction\":\"%s\",\"never\":%s,\"gap_ms\":%u,"
             "\"packets_received\":%llu",
             c->rec.id, tl_call_direction_name(c->rec.direction), never ? "true" : "false", gap_ms,
             (unsigned long long)c->rec.packets_received);
    tl_warnl("call", "media.one_way", "call=%s never=%d gap_ms=%u", c->rec.id, never, gap_ms);
    if (never)
        tl__call_event_cx(c, TL_EV_ONE_WAY_AUDIO, TL_EV_HINT_ONE_WAY_AUDIO, 0, extra,
                          "call %s: no audio from the carrier %u s after the answer (%s call): "
                          "the other side may not hear us either",
                          c->rec.id, gap_ms / 1000, tl_call_direction_name(c->rec.direction));
    else
        tl__call_event_cx(c, TL_EV_ONE_WAY_AUDIO, TL_EV_HINT_ONE_WAY_AUDIO, 0, extra,
                          "call %s: the carrier's audio stopped %u s ago while ours went on "
                          "(%s call)",
                          c->rec.id, gap_ms / 1000, tl_call_direction_name(c->rec.direction));
}

static void m_close(struct tl_media_stream *s, void *arg)
{
    (void)s;
    struct tl_call *c = arg;
    tl__call_hold(c);
    c->ms = NULL;
    tl__call_release(c);
}

const struct tl_media_stream_cb tl__call_media_cb = {m_audio, m_dtmf,      m_mark, m_timeout,
                                                     m_close, m_unlatched, m_quiet};

void tl__call_reason_text(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src && *src && n + 1 < cap; src++)
        dst[n++] = *src >= 0x20 && *src < 0x7f && *src != '"' && *src != '\\' ? *src : '?';
    dst[n] = '\0';
}

void tl__call_watch_audio(struct tl_call *c)
{
    if (c->ms && !c->ms_closing && c->l->cfg.one_way_audio_s)
        tl_media_stream_watch(c->ms, c->l->cfg.one_way_audio_s * 1000u);
}

/* ---- what the agent may ask (agent.h) ---- */

static bool live(struct tl_call *c)
{
    return !c->ended && c->ms && !c->ms_closing;
}

static int a_play(struct tl_agent_call *ac, const uint8_t *ulaw, size_t len)
{
    struct tl_call *c = of_acall(ac);
    if (!live(c))
        return ENOTCONN;
    /* all or nothing, as tl_media_stream_write: check the cap before converting in pieces.
     * Audio over the cap (60 s queued) is dropped and counted; the agent is told once. */
    if (tl_media_stream_queued(c->ms) + len > TL_MEDIA_QUEUE_CAP) {
        c->audio_dropped += len;
        c->rec.audio_dropped_bytes = c->audio_dropped;
        if (!c->drop_warned) {
            c->drop_warned = true;
            tl__call_event_c(c, TL_EV_AGENT_AUDIO_DROPPED, TL_EV_HINT_AGENT_AUDIO_DROPPED, 0,
                             "call %s: the agent sent audio faster than it plays; more than 60 s "
                             "were queued and the rest was dropped",
                             c->rec.id);
        }
        return ENOBUFS;
    }
    if (c->neg.codec != TL_SDP_CODEC_PCMA)
        return tl_media_stream_write(c->ms, ulaw, len);
    uint8_t buf[1024];
    for (size_t off = 0; off < len;) {
        size_t n = len - off < sizeof buf ? len - off : sizeof buf;
        tl_g711_ulaw_to_alaw(buf, ulaw + off, n);
        int r = tl_media_stream_write(c->ms, buf, n);
        if (r)
            return r;
        off += n;
    }
    return 0;
}

static int a_mark(struct tl_agent_call *ac, const char *name)
{
    struct tl_call *c = of_acall(ac);
    if (!live(c))
        return ENOTCONN;
    if (c->mcount == c->mcap) {
        if (c->mcap >= TL_MEDIA_MARKS_MAX)
            return ENOBUFS;
        uint32_t cap = c->mcap ? c->mcap * 2 : 8;
        char **nm = malloc(cap * sizeof *nm);
        if (!nm)
            return ENOMEM;
        for (uint32_t i = 0; i < c->mcount; i++)
            nm[i] = c->marks[(c->mhead + i) % c->mcap];
        free(c->marks);
        c->marks = nm;
        c->mcap = cap;
        c->mhead = 0;
    }
    size_t n = strnlen(name, CALL_MARK_MAX);
    char *copy = malloc(n + 1);
    if (!copy)
        return ENOMEM;
    memcpy(copy, name, n);
    copy[n] = '\0';
    /* in the ring first: with nothing queued the stream fires it before returning */
    uint32_t tail = (c->mhead + c->mcount) % c->mcap;
    c->marks[tail] = copy;
    c->mcount++;
    int r = tl_media_stream_mark(c->ms, c->mark_seq++);
    if (r) { /* not taken: it is still our tail */
        c->mcount--;
        free(copy);
    }
    return r;
}

static int a_clear(struct tl_agent_call *ac)
{
    struct tl_call *c = of_acall(ac);
    if (!live(c))
        return ENOTCONN;
    tl_media_stream_clear(c->ms);
    return 0;
}

static int a_dtmf(struct tl_agent_call *ac, const char *digits)
{
    struct tl_call *c = of_acall(ac);
    if (!live(c))
        return ENOTCONN;
    return tl_media_stream_send_dtmf(c->ms, digits, 0);
}

static void on_defer(struct tl_timer *t, uint64_t now)
{
    (void)now;
    struct tl_call *c = (struct tl_call *)(void *)((char *)t - offsetof(struct tl_call, defer_tm));
    c->defer_armed = false;
    tl__call_hold(c);
    tl__call_end(c, c->defer_reason, 0, NULL);
    tl__call_release(c);
}

/* Deferred to the next timer run: the agent asks from inside its own callbacks, and
 * ending the call there would stop (free) the agent under its own feet. */
static int a_hangup(struct tl_agent_call *ac, const char *reason)
{
    struct tl_call *c = of_acall(ac);
    if (c->ended)
        return ENOTCONN;
    if (c->defer_armed)
        return 0;
    /* the record says who ended it, from the agent layer's set of reasons (agent.h) */
    static const char *const ok[] = {"agent_hangup",       "agent_closed",      "agent_error",
                                     "agent_lost",         "agent_not_reading", "twiml_hangup",
                                     "twiml_end",          "twiml_error",       "agent_unreachable",
                                     "origination_hangup", "origination_lost"};
    const char *why = "agent_hangup";
    for (size_t i = 0; reason && i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(reason, ok[i]))
            why = ok[i];
    tl_strlcpy(c->defer_reason, why, sizeof c->defer_reason);
    struct tl_sip_stack *s = c->l->cfg.stack;
    int r = tl_timer_start(tl_sip_stack_timers(s), &c->defer_tm, tl_sip_stack_now(s), on_defer);
    if (!r)
        c->defer_armed = true;
    return r;
}

/* Blind transfer (RFC 3515 REFER) to the carrier: it calls the target and, when that
 * answers, hangs up on us. An E.164 target is sent as sip:+E164@<the number's outbound
 * trunk address> — the carrier's own domain, the form Twilio, Telnyx and most SBCs take
 * for a transfer to the PSTN; a sip:/sips: URI is sent as given. Progress (the NOTIFYs'
 * sipfrag) goes back to the agent (s_notify). */
static int a_transfer(struct tl_agent_call *ac, const char *target)
{
    struct tl_call *c = of_acall(ac);
    if (c->ended || !c->sess || !c->answered)
        return ENOTCONN;
    if (c->transferring)
        return EBUSY;
    char uri[TL_HOST_MAX + 80];
    if (target[0] == '+') {
        if (!c->out_address[0])
            return EINVAL;
        snprintf(uri, sizeof uri, "sip:%s@%s", target, c->out_address);
    } else if (tl_strlcpy(uri, target, sizeof uri) == false) {
        return EINVAL;
    }
    int r = tl_sip_sess_refer(c->sess, uri);
    if (r)
        return r;
    c->transferring = true;
    tl_info("call", "transfer", "call=%s", c->rec.id);
    if (c->agent && c->aops->transfer_status)
        c->aops->transfer_status(c->agent, "trying", 0);
    return 0;
}

static void a_event(struct tl_agent_call *ac, const char *code, const char *hint,
                    const char *message)
{
    struct tl_call *c = of_acall(ac);
    tl__call_event_c(c, code, hint, 0, "call %s: %s", c->rec.id, message);
}

static int a_refuse(struct tl_agent_call *ac, int sip_code, const char *end_reason, const char *why)
{
    return tl__call_refuse(of_acall(ac), sip_code, end_reason, why);
}

const struct tl_agent_call_ops tl__call_agent_ops = {
    .play = a_play,
    .mark = a_mark,
    .clear = a_clear,
    .send_dtmf = a_dtmf,
    .hangup = a_hangup,
    .transfer = a_transfer,
    .event = a_event,
    .refuse = a_refuse,
};

/* ---- layer ---- */

int tl_call_layer_open(struct tl_call_layer **lp, const struct tl_call_cfg *cfg)
{
    struct tl_call_layer *l = calloc(1, sizeof *l);
    if (!l)
        return ENOMEM;
    l->cfg = *cfg;
    tl_strlcpy(l->host, cfg->host && cfg->host[0] ? cfg->host : "localhost", sizeof l->host);
    tl_strlcpy(l->public_ip, cfg->public_ip ? cfg->public_ip : "", sizeof l->public_ip);
    unsigned char bin[16];
    l->public_af = inet_pton(AF_INET, l->public_ip, bin) == 1    ? AF_INET
                   : inet_pton(AF_INET6, l->public_ip, bin) == 1 ? AF_INET6
                                                                 : 0;
    l->cfg.host = l->host;
    l->cfg.public_ip = l->public_ip;
    int r = tl_sip_inauth_algs(l->algs, cfg->digest_algorithms && cfg->digest_algorithms[0]
                                            ? cfg->digest_algorithms
                                            : "SHA-256,MD5");
    if (r) {
        free(l);
        return EINVAL;
    }
    uint8_t secret[32];
    if (cfg->nonce_secret) /* shared by the nodes of one database: see digest.h */
        memcpy(secret, cfg->nonce_secret, sizeof secret);
    else
        randombytes_buf(secret, sizeof secret);
    if (cfg->nonce_ttl_s >= TL_SIP_DIGEST_EPOCH_DEFAULT) {
        sodium_memzero(secret, sizeof secret);
        free(l);
        return EINVAL; /* a fresh nonce would outlive its epoch's key */
    }
    if (!(l->dsrv = malloc(sizeof *l->dsrv)) || tl_sip_digest_server_init(l->dsrv, secret)) {
        r = l->dsrv ? EIO : ENOMEM;
        sodium_memzero(secret, sizeof secret);
        free(l->dsrv);
        free(l);
        return r;
    }
    sodium_memzero(secret, sizeof secret);
    if (cfg->nonce_ttl_s)
        l->dsrv->nonce_ttl_s = cfg->nonce_ttl_s;
    uint32_t rate = cfg->invite_rate ? cfg->invite_rate : 50;
    uint32_t grate = cfg->invite_rate_global;
    struct tl_call_authguard_cfg gc = cfg->auth_guard;
    if (!gc.backoff_after && !gc.ban_after && !gc.number_threshold)
        gc = (struct tl_call_authguard_cfg){3, 10, 600, 600, 20};
    uint8_t rnd[36];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(l->nobody_user, sizeof l->nobody_user, rnd, 8);
    sodium_bin2hex(l->nobody_pass, sizeof l->nobody_pass, rnd + 8, 23);
    sodium_memzero(rnd, sizeof rnd);
    if ((r = tl_call_rate_new(&l->rate, rate, rate * 2, grate, grate * 2)) ||
        (r = tl_call_authguard_new(&l->guard, &gc))) {
        tl_call_rate_free(l->rate);
        tl_sip_digest_server_wipe(l->dsrv);
        free(l->dsrv);
        free(l);
        return r;
    }
    tl__call_out_init(l);
    tl_sip_stack_set_invite_h(cfg->stack, tl__call_invite, l);
    *lp = l;
    return 0;
}

void tl_call_layer_close(struct tl_call_layer *l)
{
    if (!l)
        return;
    tl_sip_stack_set_invite_h(l->cfg.stack, NULL, NULL);
    for (struct tl_call *c = l->calls, *next; c; c = next) {
        tl__call_hold(c);
        tl__call_end(c, "shutdown", 503, "Retry-After: 30\r\n");
        next = c->next;
        tl__call_release(c);
    }
    l->closing = true;
    if (!l->calls) {
        if (l->cfg.freed)
            *l->cfg.freed = true;
        tl_sip_digest_server_wipe(l->dsrv);
        free(l->dsrv);
        tl_call_rate_free(l->rate);
        tl_call_authguard_free(l->guard);
        free(l->buckets);
        free(l);
    }
}

void tl_call_layer_drain(struct tl_call_layer *l, unsigned retry_after_s)
{
    if (l)
        l->drain_retry_s = retry_after_s ? retry_after_s : 1;
}

size_t tl_call_count(const struct tl_call_layer *l)
{
    return l ? l->n : 0;
}
