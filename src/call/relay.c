/* call/relay: the inbound trunk's origination URL — "a SIP URI … to use when forwarding
 * inbound calls to a destination of yours" — as the other end of a call whose number has
 * no agent, or whose agent cannot be reached (docs/calls.md "Origination URL").
 *
 * The gateway stays in the call as a B2BUA with the media relayed: the carrier's leg is
 * the inbound call as always (its record, its SRTP policy, the caps), and the destination
 * is driven through the agent interface (agent.h), so the inbound flow is unchanged: this
 * "agent" is ready when the destination answers (then the carrier's INVITE gets its 200),
 * its audio is the destination's RTP, and either side hanging up ends the other.
 *
 * The B leg: the URI is located with RFC 3263 (its host, port and transport: ;transport=,
 * sips: → TLS), every address passes the agent address guard (a user-given destination
 * must not reach the gateway's own networks unless the operator allows them,
 * agent_allow_networks), our media stream opens pending, the offer follows the inbound
 * trunk's media encryption, and the INVITE goes out with From = the caller, To = the URI.
 * Media: μ-law at the agent interface, converted to and from the B leg's codec.
 *
 * Lifetime: the connection lives until stop() was called and its session, media stream
 * and DNS query are gone; after stop() it never calls into the call again. Loop thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "call/call_int.h"
#include "net/guard.h"
#include "net/resolve.h"

#define SDP_CT     "application/sdp"
#define SDP_BUFMAX 4096

struct tl_agent_conn {
    struct tl_call *c; /* the carrier's leg, until stop() */
    struct tl_agent_call *call;
    const struct tl_agent_call_ops *ops;
    void (*ready)(struct tl_agent_call *call, int err, const char *why);
    /* borrowed from the layer: they outlive every call's parts (serve.c's order) */
    struct tl_sip_stack *stack;
    struct tl_sip_sess_layer *sl;
    struct tl_media_engine *media;
    const struct tl_net_guard *guard;
    char public_ip[TL_SDP_ADDR_MAX];
    int public_af;
    uint32_t media_timeout_ms;
    char uri[TL_URI_MAX + 1];
    char from[TL_URI_MAX + 1], to[TL_URI_MAX + 3];
    enum tl_sip_transport tp;
    enum tl_sdp_policy policy;
    struct tl_net_resolve_query *q;
    struct tl_net_targets tg;
    struct tl_sip_sess *sess;
    struct tl_media_stream *ms;
    bool ms_closing;
    struct tl_sdp_sess sdp;
    struct tl_sdp_nego neg; /* SECRET (keys) */
    struct tl_sdp sdp_a, sdp_b;
    char maddr[TL_SDP_ADDR_MAX];
    bool offered, answered, stopped, told;
    uint16_t final;
    int err;
    int hold;
};

static void maybe_free(struct tl_agent_conn *r)
{
    if (r->hold || !r->stopped || r->sess || r->ms || r->q)
        return;
    tl_sdp_sess_wipe(&r->sdp);
    tl_sdp_nego_wipe(&r->neg);
    tl_sdp_wipe(&r->sdp_a);
    tl_sdp_wipe(&r->sdp_b);
    free(r);
}

static void release(struct tl_agent_conn *r)
{
    r->hold--;
    maybe_free(r);
}

/* the call learns it could not be reached (once; never after stop) */
static void not_reached(struct tl_agent_conn *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void not_reached(struct tl_agent_conn *r, int err, const char *fmt, ...)
{
    if (r->stopped || r->told)
        return;
    r->told = true;
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    tl_info("call", "relay.unreachable", "why=\"%s\"", why);
    r->ready(r->call, err ? err : EIO, why);
}

static enum tl_media_srtp_suite suite_of(const struct tl_sdp_nego *n)
{
    if (!n->srtp)
        return TL_MEDIA_SRTP_NONE;
    return n->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32 ? TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32
                                                            : TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
}

/* ---- the B leg's media ---- */

static void m_audio(struct tl_media_stream *s, void *arg, const uint8_t *payload, size_t len,
                    uint32_t ts, uint16_t seq)
{
    (void)s, (void)ts, (void)seq;
    struct tl_agent_conn *r = arg;
    if (r->stopped || !r->answered || len > TL_MEDIA_PKT_MAX)
        return;
    if (r->neg.codec == TL_SDP_CODEC_PCMA) {
        uint8_t buf[TL_MEDIA_PKT_MAX];
        tl_g711_alaw_to_ulaw(buf, payload, len);
        r->ops->play(r->call, buf, len);
    } else {
        r->ops->play(r->call, payload, len);
    }
}

static void m_dtmf(struct tl_media_stream *s, void *arg, char digit, uint16_t duration_ms)
{
    (void)s, (void)duration_ms;
    struct tl_agent_conn *r = arg;
    char d[2] = {digit, '\0'};
    if (!r->stopped && r->answered && digit != '!')
        r->ops->send_dtmf(r->call, d);
}

static void m_timeout(struct tl_media_stream *s, void *arg)
{
    (void)s;
    struct tl_agent_conn *r = arg;
    if (!r->stopped && r->answered)
        r->ops->hangup(r->call, "origination_lost");
}

static void m_close(struct tl_media_stream *s, void *arg)
{
    (void)s;
    struct tl_agent_conn *r = arg;
    r->ms = NULL;
    maybe_free(r);
}

static const struct tl_media_stream_cb relay_media_cb = {
    .on_audio = m_audio, .on_dtmf = m_dtmf, .on_timeout = m_timeout, .on_close = m_close};

static void close_media(struct tl_agent_conn *r)
{
    if (r->ms && !r->ms_closing) {
        r->ms_closing = true;
        tl_media_stream_close(r->ms); /* on_close clears r->ms */
    }
}

/* ---- the B leg's session ---- */

static void s_response(struct tl_sip_sess *sess, enum tl_sip_method m, bool refresh,
                       const struct tl_sip_msg *resp, int err, void *arg)
{
    (void)refresh;
    struct tl_agent_conn *r = arg;
    if (m != TL_SIP_METHOD_INVITE || tl_sip_sess_state(sess) != TL_SIP_SESS_EARLY)
        return;
    if (resp && resp->scode >= 200)
        r->final = resp->scode;
    else if (!resp)
        r->err = err;
}

static void s_answer(struct tl_sip_sess *sess, const struct tl_pl *answer, void *arg)
{
    (void)sess;
    struct tl_agent_conn *r = arg;
    if (r->stopped || !r->ms || !r->offered)
        return; /* a refresh's answer to our unchanged body: nothing new */
    struct tl_sdp_local loc = {r->policy, r->maddr, tl_media_stream_local_port(r->ms),
                               TL_SDP_SENDRECV, true};
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    memset(&n, 0, sizeof n);
    r->offered = false;
    int e = tl_sdp_decode(&r->sdp_a, answer)
                ? EBADMSG
                : tl_sdp_answer_take(&n, &why, &r->sdp_a, &loc, &r->sdp);
    tl_sdp_wipe(&r->sdp_a);
    if (!e) {
        struct tl_media_stream_params p = {.remote_ip = n.raddr,
                                           .remote_rtp_port = n.rport,
                                           .remote_rtcp_port = n.rtcp_port,
                                           .pt = n.pt,
                                           .dtmf_pt = n.te_pt,
                                           .srtp = suite_of(&n)};
        memcpy(p.srtp_tx_key, n.lkey, sizeof p.srtp_tx_key);
        memcpy(p.srtp_rx_key, n.rkey, sizeof p.srtp_rx_key);
        e = tl_media_stream_set_params(r->ms, &p);
        sodium_memzero(&p, sizeof p);
    }
    if (e) {
        tl_sdp_nego_wipe(&n);
        r->err = EPROTO;
        tl_warnl("call", "relay.sdp_refused", "why=\"%s\"", e == EPROTO ? why.text : strerror(e));
        return; /* s_established sees no answer taken and ends the B leg */
    }
    tl_sdp_nego_wipe(&r->neg);
    r->neg = n;
}

/* a re-INVITE/UPDATE offer from the destination (hold, a refresh with SDP): answered when
 * nothing the stream cannot change changes, else 488 and the call goes on (RFC 3264 §8) */
static int s_offer(struct tl_sip_sess *sess, const struct tl_pl *offer, struct tl_sip_body *out,
                   void *arg)
{
    (void)sess;
    struct tl_agent_conn *r = arg;
    int ret = 488;
    if (r->stopped || !r->ms || !offer->l || tl_sdp_decode(&r->sdp_a, offer))
        goto out;
    struct tl_sdp_local loc = {r->policy, r->maddr, tl_media_stream_local_port(r->ms),
                               TL_SDP_SENDRECV, false};
    struct tl_sdp_nego n;
    struct tl_sdp_refusal why;
    size_t len = 0;
    if (!tl_sdp_answer(&r->sdp_b, &n, &why, &r->sdp_a, &loc, &r->sdp) && n.codec == r->neg.codec &&
        n.srtp == r->neg.srtp &&
        (!n.srtp ||
         (n.suite == r->neg.suite && !sodium_memcmp(n.rkey, r->neg.rkey, sizeof n.rkey))) &&
        !tl_sdp_print(out->buf, out->cap, &len, &r->sdp_b, &r->sdp)) {
        if (strcmp(n.raddr, r->neg.raddr) || n.rport != r->neg.rport)
            tl_media_stream_set_remote(r->ms, n.raddr, n.rport, n.rtcp_port);
        tl_strlcpy(r->neg.raddr, n.raddr, sizeof r->neg.raddr);
        r->neg.rport = n.rport;
        r->neg.rtcp_port = n.rtcp_port;
        bool send_ok = n.dir == TL_SDP_SENDRECV || n.dir == TL_SDP_SENDONLY;
        bool recv = n.dir == TL_SDP_SENDRECV || n.dir == TL_SDP_RECVONLY;
        tl_media_stream_set_direction(r->ms, send_ok, recv);
        out->len = len;
        ret = 0;
    }
    tl_sdp_nego_wipe(&n);
    tl_sdp_wipe(&r->sdp_b);
out:
    tl_sdp_wipe(&r->sdp_a);
    return ret;
}

static void s_established(struct tl_sip_sess *sess, void *arg)
{
    struct tl_agent_conn *r = arg;
    r->hold++;
    if (r->stopped) {
        tl_sip_sess_bye(sess); /* a 200 that crossed our CANCEL */
    } else if (!r->neg.codec) {
        tl_sip_sess_bye(sess);
        not_reached(r, EPROTO, "it answered with media this gateway cannot use");
    } else {
        r->answered = true;
        tl_info("call", "relay.answered", "codec=%s srtp=%s",
                r->neg.codec == TL_SDP_CODEC_PCMA ? "PCMA" : "PCMU", r->neg.srtp ? "yes" : "no");
        r->told = true;
        r->ready(r->call, 0, NULL); /* the carrier's leg is answered now */
    }
    release(r);
}

static void s_terminated(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode,
                         void *arg)
{
    (void)sess;
    struct tl_agent_conn *r = arg;
    r->hold++;
    r->sess = NULL;
    if (!r->stopped) {
        if (!r->answered) {
            if (scode)
                not_reached(r, ECONNREFUSED, "it answered %u %s", scode,
                            tl_sip_reason_phrase(scode));
            else
                not_reached(r, r->err ? r->err : EIO, "it could not be reached (%s)",
                            strerror(r->err ? r->err : EIO));
        } else {
            /* the destination hung up (or its session failed): the carrier's leg ends too */
            r->ops->hangup(r->call, why == TL_SIP_SESS_BYE_RECEIVED ? "origination_hangup"
                                                                    : "origination_lost");
        }
    }
    release(r);
}

static const struct tl_sip_sess_h relay_sess_h = {.on_offer = s_offer,
                                                  .on_answer = s_answer,
                                                  .on_established = s_established,
                                                  .on_terminated = s_terminated,
                                                  .on_response = s_response};

/* ---- dialing ---- */

static void dial(struct tl_agent_conn *r)
{
    const struct tl_net_target *t = tl_net_targets_cur(&r->tg);
    char ip[TL_SDP_ADDR_MAX] = "";
    const char *why = NULL;
    int af = t->sa.ss_family, e;
    const void *a = af == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)&t->sa)->sin6_addr
                                   : (const void *)&((const struct sockaddr_in *)&t->sa)->sin_addr;
    inet_ntop(af, a, ip, sizeof ip);
    /* every address DNS named, not only the first: failover must not reach a forbidden one */
    for (size_t i = 0; i < r->tg.n; i++)
        if (!tl_net_guard_ok(r->guard, (const struct sockaddr *)&r->tg.v[i].sa, &why)) {
            char where[80];
            tl_net_target_str(&r->tg.v[i], where, sizeof where);
            not_reached(r, EPERM,
                        "it leads to %s, %s this gateway may not reach (see agent_allow_networks)",
                        where, why ? why : "an address");
            return;
        }
    if (r->public_af == af)
        tl_strlcpy(r->maddr, r->public_ip, sizeof r->maddr);
    else if ((e = tl__call_route_local(af, ip, r->maddr, sizeof r->maddr))) {
        not_reached(r, e, "no route to its address %s (%s)", ip, strerror(e));
        return;
    }
    struct tl_media_stream_params mp = {
        .af = af, .pending = true, .timeout_ms = r->media_timeout_ms};
    if ((e = tl_media_stream_open(r->media, &mp, &relay_media_cb, r, &r->ms))) {
        not_reached(r, e, "no media port for the origination leg (%s)", strerror(e));
        return;
    }
    char *buf = malloc(SDP_BUFMAX);
    size_t len = 0;
    struct tl_sdp_local loc = {r->policy, r->maddr, tl_media_stream_local_port(r->ms),
                               TL_SDP_SENDRECV, true};
    e = !buf ? ENOMEM
        : tl_sdp_offer(&r->sdp_b, &loc, &r->sdp) ||
                tl_sdp_print(buf, SDP_BUFMAX, &len, &r->sdp_b, &r->sdp)
            ? EIO
            : 0;
    tl_sdp_wipe(&r->sdp_b);
    r->offered = !e;
    if (!e) {
        struct tl_sip_request rq = {.method = TL_SIP_METHOD_INVITE,
                                    .ruri = r->uri,
                                    .from = r->from,
                                    .to = r->to,
                                    .tp = r->tp,
                                    .ctype = SDP_CT,
                                    .body = buf,
                                    .body_len = len,
                                    .targets = &r->tg};
        e = tl_sip_sess_connect(&r->sess, r->sl, &rq, &relay_sess_h, r);
        if (e)
            r->sess = NULL;
    }
    if (buf) {
        sodium_memzero(buf, SDP_BUFMAX);
        free(buf);
    }
    if (e) {
        close_media(r);
        not_reached(r, e, "the INVITE could not be sent (%s)", strerror(e));
        return;
    }
    tl_info("call", "relay.dialing", "tp=%s", tl_sip_transport_name(r->tp));
}

static void on_resolved(int err, const struct tl_net_targets *tg, void *arg)
{
    struct tl_agent_conn *r = arg;
    r->q = NULL;
    r->hold++;
    if (r->stopped) {
        /* nothing */
    } else if (err) {
        not_reached(r, err, "its host does not resolve (%s)", strerror(err));
    } else {
        r->tg = *tg;
        dial(r);
    }
    release(r);
}

/* ---- the agent interface ---- */

static int r_start(struct tl_agent_conn **cp, const struct tl_agent_call_info *info,
                   struct tl_agent_call *call, const struct tl_agent_call_ops *call_ops,
                   void (*ready)(struct tl_agent_call *call, int err, const char *why))
{
    struct tl_call *c = call->c;
    struct tl_call_layer *l = c->l;
    struct tl_sip_uri u;
    struct tl_pl pl = tl_pl_str(info->url ? info->url : "");
    if (!info->url || !info->url[0] || strlen(info->url) > TL_URI_MAX ||
        strpbrk(info->url, "<>\r\n") || tl_sip_uri_decode(&u, &pl) ||
        (u.scheme != TL_SIP_SCHEME_SIP && u.scheme != TL_SIP_SCHEME_SIPS) || !u.host.l ||
        u.host.l > TL_NET_NAME_MAX || !l->cfg.agent_env || !l->cfg.agent_env->resolver)
        return EINVAL;
    struct tl_agent_conn *r = calloc(1, sizeof *r);
    if (!r)
        return ENOMEM;
    if (tl_sdp_sess_init(&r->sdp, NULL, NULL)) {
        free(r);
        return EIO;
    }
    r->c = c;
    r->call = call;
    r->ops = call_ops;
    r->ready = ready;
    r->stack = l->cfg.stack;
    r->sl = l->cfg.sess;
    r->media = l->cfg.media;
    r->guard = l->cfg.agent_env->guard;
    tl_strlcpy(r->public_ip, l->public_ip, sizeof r->public_ip);
    r->public_af = l->public_af;
    r->media_timeout_ms = l->cfg.media_timeout_s * 1000u;
    r->policy = c->policy; /* the inbound trunk's media encryption, on both legs */
    tl_strlcpy(r->uri, info->url, sizeof r->uri);
    /* the caller stays the caller; the destination is the URI as the user gave it */
    const char *who = info->from && info->from[0] && !strpbrk(info->from, "<>\"\r\n;@ ")
                          ? info->from
                          : "anonymous";
    snprintf(r->from, sizeof r->from, "<sip:%s@%s>", who, l->host);
    snprintf(r->to, sizeof r->to, "<%s>", r->uri);
    /* RFC 3263 §4.1: sips: is TLS; else ;transport=; else UDP */
    char tpv[8] = "";
    struct tl_pl tpp;
    if (!tl_sip_uri_param_get(&u, "transport", &tpp) && tpp.l < sizeof tpv) {
        memcpy(tpv, tpp.p, tpp.l);
        tpv[tpp.l] = '\0';
    }
    r->tp = u.scheme == TL_SIP_SCHEME_SIPS || !strcasecmp(tpv, "tls") ? TL_SIP_TP_TLS
            : !strcasecmp(tpv, "tcp")                                 ? TL_SIP_TP_TCP
                                                                      : TL_SIP_TP_UDP;
    char host[TL_NET_NAME_MAX + 1];
    memcpy(host, u.host.p, u.host.l);
    host[u.host.l] = '\0';
    int e = tl_net_resolve(l->cfg.agent_env->resolver, host, u.has_port ? u.port : 0,
                           (enum tl_net_proto)r->tp, on_resolved, r, &r->q);
    if (e) {
        tl_sdp_sess_wipe(&r->sdp);
        free(r);
        return e;
    }
    tl_info("call", "relay.start", "call=%s", c->rec.id);
    *cp = r;
    return 0;
}

static void r_audio(struct tl_agent_conn *r, const uint8_t *ulaw, size_t len, uint32_t ts)
{
    (void)ts;
    if (r->stopped || !r->answered || !r->ms || r->ms_closing)
        return;
    if (r->neg.codec != TL_SDP_CODEC_PCMA) {
        tl_media_stream_write(r->ms, ulaw, len);
        return;
    }
    uint8_t buf[TL_MEDIA_PKT_MAX];
    if (len > sizeof buf)
        return;
    tl_g711_ulaw_to_alaw(buf, ulaw, len);
    tl_media_stream_write(r->ms, buf, len);
}

static void r_dtmf(struct tl_agent_conn *r, char digit, unsigned duration_ms)
{
    char d[2] = {digit, '\0'};
    if (!r->stopped && r->answered && r->ms && !r->ms_closing && digit != '!')
        tl_media_stream_send_dtmf(r->ms, d, (uint16_t)(duration_ms > 65535 ? 65535 : duration_ms));
}

static void r_mark_done(struct tl_agent_conn *r, const char *name)
{
    (void)r, (void)name; /* the relay never marks */
}

static void r_event(struct tl_agent_conn *r, enum tl_agent_event ev)
{
    (void)r, (void)ev; /* a hold on the carrier's leg: the destination hears silence */
}

static void r_stop(struct tl_agent_conn *r, const char *reason)
{
    r->hold++;
    r->stopped = true;
    r->c = NULL;
    r->call = NULL;
    r->ops = NULL;
    tl_info("call", "relay.stop", "reason=%s", reason ? reason : "-");
    if (r->q) {
        tl_net_resolve_cancel(r->q);
        r->q = NULL;
    }
    if (r->sess)
        tl_sip_sess_bye(r->sess); /* BYE, or CANCEL while it rings; on_terminated clears it */
    close_media(r);
    release(r);
}

const struct tl_agent_ops tl__call_relay = {
    .kind = "origination",
    .start = r_start,
    .audio = r_audio,
    .dtmf = r_dtmf,
    .mark_done = r_mark_done,
    .event = r_event,
    .stop = r_stop,
};
