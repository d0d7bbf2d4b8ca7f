/* inbound: the rules a carrier's INVITE passes, in order (issue 4 "Flow and rules";
 * docs/calls.md). Each refusal is answered with its status and a Warning that names the
 * fix (RFC 3261 §20.43, code 399 "miscellaneous"), and recorded as a diagnostic event for
 * the number. Unknown numbers get a bare 404, the same for every unknown target, so a
 * scanner (svwar) learns nothing beyond what the number itself reveals; no Server header,
 * no product string (security.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "call/call_int.h"

#define SDP_CT     "application/sdp"
#define SDP_BUFMAX 4096
#define WARN_MAX   1024

static void reply(struct tl_call_layer *l, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                  uint16_t code, const char *hdrs)
{
    tl_sip_stack_reply(l->cfg.stack, tx, m, tl_sip_tsx_peer(tx), code, hdrs, NULL, NULL, NULL, 0);
}

static void warning(char *buf, size_t cap, const char *host, int code, const char *text)
{
    snprintf(buf, cap, "Warning: %d %s \"%s\"\r\n", code, host, text);
}

/* the user part as text (escapes decoded; NUL or over-long → "") */
static void user_text(const struct tl_pl *u, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (!u->l || tl_sip_uri_unescape(out, cap, &n, u) || strlen(out) != n)
        out[0] = '\0';
}

static bool number_of(const struct tl_sip_msg *m, char e164[TL_E164_MAX + 1], char *raw,
                      size_t rawcap)
{
    /* Request-URI user (RFC 3261 §8.2.2.1: the target); To user when the carrier put the
     * number only there (some send sip:trunk-host with the number in To) */
    user_text(&m->ruri.user, raw, rawcap);
    if (raw[0] && !tl_routing_normalise(raw, e164))
        return true;
    char to[TL_USER_MAX + 1];
    user_text(&m->to.uri.user, to, sizeof to);
    if (to[0] && !tl_routing_normalise(to, e164))
        return true;
    if (!raw[0])
        tl_strlcpy(raw, to, rawcap);
    return false;
}

static const char *tp_name(enum tl_sip_transport tp)
{
    return tp == TL_SIP_TP_TLS ? "TLS" : tp == TL_SIP_TP_TCP ? "TCP" : "UDP";
}

static void record_init(struct tl_call_record *r, const struct tl_route *rt,
                        const struct tl_sip_msg *m, const char *raw_to)
{
    memset(r, 0, sizeof *r);
    tl_call_id_new(r->id);
    tl_strlcpy(r->workspace_id, rt->workspace_id, sizeof r->workspace_id);
    tl_strlcpy(r->number_id, rt->number_id, sizeof r->number_id);
    tl_strlcpy(r->number, rt->number, sizeof r->number);
    tl_strlcpy(r->agent_id, rt->agent_id, sizeof r->agent_id);
    r->direction = TL_CALL_INBOUND;
    size_t n = m->from.auri.l < TL_URI_MAX ? m->from.auri.l : TL_URI_MAX;
    memcpy(r->from_uri, m->from.auri.p, n);
    r->from_uri[n] = '\0';
    char fu[TL_USER_MAX + 1];
    user_text(&m->from.uri.user, fu, sizeof fu);
    tl_strlcpy(r->from_user, fu, sizeof r->from_user);
    tl_strlcpy(r->to_user, raw_to, sizeof r->to_user);
    n = m->callid.l < TL_SIP_CALLID_MAX ? m->callid.l : TL_SIP_CALLID_MAX;
    memcpy(r->sip_call_id, m->callid.p, n);
    r->sip_call_id[n] = '\0';
    r->created_at = tl_now_ms();
    r->status = TL_CALL_RINGING; /* written once our 180 is decided (start_call) */
}

/* A call refused after the trunk's checks (agent, admission): a record too, so the call
 * log shows it. Refusals before (transport, source, digest) come from sources we do not
 * trust: events only, which are rate-limited; records are not. */
static void record_refused(struct tl_call_layer *l, const struct tl_route *rt,
                           const struct tl_sip_msg *m, const char *raw_to, int status,
                           const char *reason, const char *hint)
{
    /* a refused call is written whole, never "in progress": under a backlog it is shed
     * like an event, so that end records past the queue's cap stay those of real calls */
    if (!l->cfg.rec || tl_recorder_backlogged(l->cfg.rec))
        return;
    struct tl_call_record *r = malloc(sizeof *r);
    if (!r)
        return;
    record_init(r, rt, m, raw_to);
    r->ended_at = r->created_at;
    r->final_status = status;
    r->status = TL_CALL_FAILED;
    tl_strlcpy(r->sip_reason, tl_sip_reason_phrase((uint16_t)status), sizeof r->sip_reason);
    tl_strlcpy(r->hint, hint ? hint : "", sizeof r->hint);
    tl_strlcpy(r->end_reason, reason, sizeof r->end_reason);
    tl_recorder_call(l->cfg.rec, r);
    free(r);
}

/* The workspace's calls in progress, both directions: this node's, and with a shared
 * store the other nodes' as last synced (store/cluster.h; stale sums count 0). */
static size_t ws_calls(struct tl_call_layer *l, const char *ws)
{
    size_t n = 0;
    for (struct tl_call *c = l->calls; c; c = c->next)
        n += !c->ended && !strcmp(c->rec.workspace_id, ws);
    if (l->cfg.cluster) {
        uint32_t in, out;
        tl_cluster_remote(l->cfg.cluster, ws, &in, &out);
        n += (size_t)in + out;
    }
    return n;
}

int tl_call_media_af(int offer_af, int sip_af)
{
    if (offer_af == AF_INET || offer_af == AF_INET6)
        return offer_af;
    return sip_af == AF_INET6 ? AF_INET6 : AF_INET;
}

enum tl_call_maddr tl_call_maddr_source(int af, int public_af, int sip_af, bool sip_unspecified)
{
    if (public_af == af)
        return TL_CALL_MADDR_PUBLIC_IP;
    if (sip_af == af && !sip_unspecified)
        return TL_CALL_MADDR_SIP_LOCAL;
    return TL_CALL_MADDR_ROUTE;
}

/* The local address the INVITE arrived on; a v4-mapped IPv6 address (a dual-stack
 * listener) reads as the IPv4 address it is, which is what an IPv4 carrier can reach. */
static int sip_local(struct tl_call_layer *l, const struct tl_sip_peer *peer, struct tl_call *c)
{
    struct sockaddr_storage ss;
    int r = tl_sip_tport_local(tl__sip_stack_tport(l->cfg.stack), peer, &ss);
    if (r)
        return r;
    int af = ss.ss_family;
    const void *a;
    if (af == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
        c->sip_unspec = IN6_IS_ADDR_UNSPECIFIED(a6);
        a = a6;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            af = AF_INET;
            a = a6->s6_addr + 12;
        }
    } else {
        const struct in_addr *a4 = &((const struct sockaddr_in *)&ss)->sin_addr;
        c->sip_unspec = a4->s_addr == htonl(INADDR_ANY);
        a = a4;
    }
    c->sip_af = af;
    return inet_ntop(af, a, c->sip_local, sizeof c->sip_local) ? 0 : EINVAL;
}

/* connect(2) on a UDP socket sends nothing: the kernel picks the source address it would
 * use towards `remote` (RFC 6724 source selection), the address the carrier can send media
 * to. A few syscalls at call set-up, only when the media family differs from the SIP's. */
int tl__call_route_local(int af, const char *remote, char *out, size_t cap)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } a;
    memset(&a, 0, sizeof a);
    socklen_t len = af == AF_INET6 ? sizeof a.v6 : sizeof a.v4;
    void *ip = af == AF_INET6 ? (void *)&a.v6.sin6_addr : (void *)&a.v4.sin_addr;
    a.sa.sa_family = (sa_family_t)af;
    if (af == AF_INET6)
        a.v6.sin6_port = htons(9);
    else
        a.v4.sin_port = htons(9);
    if (inet_pton(af, remote, ip) != 1)
        return EINVAL;
    int fd = socket(af, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int r = connect(fd, &a.sa, len) ? errno : 0;
    if (!r && getsockname(fd, &a.sa, &len))
        r = errno;
    close(fd);
    if (r)
        return r;
    return inet_ntop(af, ip, out, (socklen_t)cap) ? 0 : EINVAL;
}

/* Our media address of family af into c->maddr (tl_call_maddr_source says from where).
 * remote: the offer's c= address; NULL for our own offer. */
static int media_addr(struct tl_call *c, int af, const char *remote)
{
    struct tl_call_layer *l = c->l;
    int r = 0;
    switch (tl_call_maddr_source(af, l->public_af, c->sip_af, c->sip_unspec)) {
    case TL_CALL_MADDR_PUBLIC_IP:
        tl_strlcpy(c->maddr, l->public_ip, sizeof c->maddr);
        break;
    case TL_CALL_MADDR_SIP_LOCAL:
        tl_strlcpy(c->maddr, c->sip_local, sizeof c->maddr);
        break;
    default:
        if (remote)
            r = tl__call_route_local(af, remote, c->maddr, sizeof c->maddr);
        else /* a wildcard listener's own offer (UDP, never a call): loopback, as before */
            tl_strlcpy(c->maddr, af == AF_INET6 ? "::1" : "127.0.0.1", sizeof c->maddr);
    }
    if (!r)
        c->maf = af;
    return r;
}

/* 488 + Warning 301 (RFC 3261 §20.43 "Incompatible network address formats") when the
 * offer's media address cannot be served here: the carrier can fix it, so no Retry-After
 * and no capacity hint (a 503 would make it retry the same offer). */
static void refuse_address(struct tl_call *c, const struct tl_route *rt, const char *src,
                           const char *problem, int err)
{
    struct tl_call_layer *l = c->l;
    char w[WARN_MAX], text[256], hint[TL_EVENT_HINT_MAX + 1];
    snprintf(text, sizeof text, "Incompatible network address formats: %s", problem);
    warning(w, sizeof w, l->host, 301, text);
    snprintf(hint, sizeof hint, TL_EV_HINT_MEDIA_ADDRESS_UNAVAILABLE_FMT, problem);
    tl_warnl("call", "media.address_unavailable", "call=%s err=%s problem=\"%s\"", c->rec.id,
             strerror(err), problem);
    tl__call_event(l, rt, TL_EV_MEDIA_ADDRESS_UNAVAILABLE, hint, src, 488,
                   "INVITE for %s refused (488): %s (%s)", rt->number, problem, strerror(err));
    tl__call_end(c, "sdp_refused", 488, w);
}

static void refuse_family(struct tl_call *c, const struct tl_route *rt, const char *src, int af,
                          int err)
{
    const char *fam = af == AF_INET6 ? "IPv6" : "IPv4";
    char problem[128];
    snprintf(problem, sizeof problem,
             "the offer's media is %s and this gateway has no usable %s address for media", fam,
             fam);
    refuse_address(c, rt, src, problem, err);
}

/* c=IN IP6 ::ffff:a.b.c.d: our IPv6 media sockets are v6-only (src/media/README.md), so
 * they cannot send to an IPv4-mapped address; the offerer meant IPv4 */
static bool v4mapped(const char *ip)
{
    struct in6_addr a;
    return inet_pton(AF_INET6, ip, &a) == 1 && IN6_IS_ADDR_V4MAPPED(&a);
}

static enum tl_media_srtp_suite media_suite(const struct tl_sdp_nego *n)
{
    if (!n->srtp)
        return TL_MEDIA_SRTP_NONE;
    return n->suite == TL_SDP_SUITE_AES_CM_128_HMAC_SHA1_32 ? TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_32
                                                            : TL_MEDIA_SRTP_AES_CM_128_HMAC_SHA1_80;
}

int tl__call_open_media(struct tl_call *c, bool have_remote)
{
    struct tl_media_stream_params p;
    memset(&p, 0, sizeof p);
    p.af = c->maf; /* the family of our c=: the answer's, or our late offer's */
    p.latch = c->latch;
    if (have_remote) {
        p.remote_ip = c->neg.raddr;
        p.remote_rtp_port = c->neg.rport;
        p.remote_rtcp_port = c->neg.rtcp_port;
        p.pt = c->neg.pt;
        p.dtmf_pt = c->neg.te_pt;
        p.srtp = media_suite(&c->neg);
        memcpy(p.srtp_tx_key, c->neg.lkey, sizeof p.srtp_tx_key);
        memcpy(p.srtp_rx_key, c->neg.rkey, sizeof p.srtp_rx_key);
    } else { /* late offer: codec and keys come with the answer in the ACK (set_params) */
        p.pending = true;
    }
    p.timeout_ms = c->l->cfg.media_timeout_s * 1000u;
    int r = tl_media_stream_open(c->l->cfg.media, &p, &tl__call_media_cb, c, &c->ms);
    sodium_memzero(&p, sizeof p);
    return r;
}

/* 200 OK with our SDP (the answer, or our offer for a late offer) */
static void answer_now(struct tl_call *c)
{
    if (tl_sip_sess_accept(c->sess, 200, SDP_CT, c->answer, c->answer_len)) {
        tl__call_end(c, "error", 500, NULL);
        return;
    }
    c->answered = true;
    c->rec.answered_at = tl_now_ms();
    c->rec.final_status = 200;
    c->rec.status = TL_CALL_IN_PROGRESS;
    tl_strlcpy(c->rec.sip_reason, "OK", sizeof c->rec.sip_reason);
    tl__call_watch_audio(c);
    sodium_memzero(c->answer, c->answer_len); /* our SRTP key: the session has its copy */
    free(c->answer);
    c->answer = NULL;
    tl__call_record(c);
    tl_info("call", "answered", "call=%s codec=%s srtp=%s", c->rec.id,
            c->rec.codec[0] ? c->rec.codec : "-", c->rec.srtp ? "yes" : "no");
}

static void on_answer_delay(struct tl_timer *t, uint64_t now)
{
    (void)now;
    struct tl_call *c = (struct tl_call *)(void *)((char *)t - offsetof(struct tl_call, ans_tm));
    c->ans_armed = false;
    tl__call_hold(c);
    if (!c->ended && c->sess)
        answer_now(c);
    tl__call_release(c);
}

int tl__call_refuse(struct tl_call *c, int sip_code, const char *end_reason, const char *why)
{
    static const char *const ok[] = {"rejected", "twiml_error", "twiml_hangup",
                                     "agent_unreachable"};
    const char *reason = "agent_unreachable";
    for (size_t i = 0; end_reason && i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(end_reason, ok[i]))
            reason = ok[i];
    if (c->agent_said)
        return EALREADY;
    if (sip_code < 400 || sip_code > 699)
        sip_code = 480;
    c->agent_said = true;
    tl__call_hold(c);
    if (!c->ended && c->sess) {
        /* the carrier gets the agent's code with its cause in a Reason header (RFC 3326);
         * the agent wrote the owner's event itself */
        char text[200], hdrs[WARN_MAX + 300];
        tl__call_reason_text(text, sizeof text, why && why[0] ? why : reason);
        warning(hdrs, sizeof hdrs, c->l->host, 399, text);
        size_t n = strlen(hdrs);
        snprintf(hdrs + n, sizeof hdrs - n, "Reason: SIP;cause=%d;text=\"%s\"\r\n", sip_code, text);
        tl_info("call", "refused_by_agent", "call=%s status=%d reason=%s", c->rec.id, sip_code,
                reason);
        tl__call_end(c, reason, (uint16_t)sip_code, hdrs);
    }
    tl__call_release(c);
    return 0;
}

static void agent_ready(struct tl_agent_call *ac, int err, const char *why);

/* The agent could not be reached and the inbound trunk has an origination URL: the call
 * goes there instead, the gateway staying in it (relay.c). The failed agent is stopped
 * first (the agent layer allows it from inside its ready callback). */
static void fall_back(struct tl_call *c)
{
    struct tl_call_layer *l = c->l;
    if (c->agent) {
        struct tl_agent_conn *a = c->agent;
        c->agent = NULL;
        c->aops->stop(a, "agent_unreachable");
    }
    tl_info("call", "relay.fallback", "call=%s", c->rec.id);
    c->aops = &tl__call_relay;
    c->relayed = true;
    c->agent_said = false; /* the failed agent's answer is spent; the relay gives its own */
    struct tl_agent_call_info info = {.call_id = c->rec.id,
                                      .workspace_id = c->rec.workspace_id,
                                      .number = c->rec.number,
                                      .from = c->rec.from_user,
                                      .to = c->rec.number,
                                      .direction = "inbound",
                                      .url = c->orig_url,
                                      .loop = l->cfg.loop,
                                      .env = l->cfg.agent_env};
    struct tl_agent_conn *conn = NULL;
    c->agent_starting = true;
    int r = c->aops->start(&conn, &info, &c->acall, &tl__call_agent_ops, agent_ready);
    c->agent_starting = false;
    if (r) {
        agent_ready(&c->acall, r, "the origination URL is not a usable SIP URI");
    } else if (c->ended) {
        c->aops->stop(conn, c->rec.end_reason);
    } else {
        c->agent = conn;
    }
}

static void agent_ready(struct tl_agent_call *ac, int err, const char *why)
{
    struct tl_call *c = ac->c;
    struct tl_sip_stack *s = c->l->cfg.stack;
    if (c->agent_said)
        return; /* refused already */
    c->agent_said = true;
    tl__call_hold(c);
    if (c->ended || !c->sess) {
        /* ended while the agent was connecting */
    } else if (err && c->relayed) {
        /* the origination URL (the fallback, or the number's only destination) failed */
        char text[200], hdrs[WARN_MAX + 300], hint[TL_EVENT_HINT_MAX + 1];
        tl__call_reason_text(text, sizeof text, why && why[0] ? why : strerror(err));
        warning(hdrs, sizeof hdrs, c->l->host, 399, "the destination is not reachable");
        size_t n = strlen(hdrs);
        snprintf(hdrs + n, sizeof hdrs - n,
                 "Reason: SIP;cause=480;text=\"origination unreachable: %s\"\r\n", text);
        char why_short[180]; /* the hint's cap holds the sentence around it */
        tl_strlcpy(why_short, text, sizeof why_short);
        snprintf(hint, sizeof hint, TL_EV_HINT_ORIGINATION_UNREACHABLE_FMT, why_short);
        tl__call_event_c(c, TL_EV_ORIGINATION_UNREACHABLE, hint, 480,
                         "call %s: the origination URL could not take the call: %s", c->rec.id,
                         text);
        tl_strlcpy(c->rec.hint, hint, sizeof c->rec.hint);
        tl__call_end(c, "origination_unreachable", 480, hdrs);
    } else if (err && c->orig_url[0]) {
        char text[200], hint[TL_EVENT_HINT_MAX + 1];
        tl__call_reason_text(text, sizeof text, why && why[0] ? why : strerror(err));
        snprintf(hint, sizeof hint,
                 "The agent could not be reached (%s), so the call went to the inbound trunk's "
                 "origination URL instead. Check the agent's URL and that its server is up and "
                 "reachable from this gateway.",
                 text);
        tl__call_event_c(c, TL_EV_AGENT_UNREACHABLE, hint, 0,
                         "call %s: the agent could not take the call (%s); forwarded to the "
                         "origination URL",
                         c->rec.id, text);
        if (c->agent_starting)
            c->fb_pending = true; /* inside the agent's start(): after it returns */
        else
            fall_back(c);
    } else if (err) {
        /* the carrier gets 480 with the cause in a Reason header (RFC 3326), and the owner
         * an event whose hint says in plain words what failed: DNS, refused, TLS (and
         * which certificate problem), the upgrade's status, the timeout */
        char text[200], hdrs[WARN_MAX + 300], hint[TL_EVENT_HINT_MAX + 1];
        tl__call_reason_text(text, sizeof text, why && why[0] ? why : strerror(err));
        warning(hdrs, sizeof hdrs, c->l->host, 399, "the agent is not reachable");
        size_t n = strlen(hdrs);
        snprintf(hdrs + n, sizeof hdrs - n,
                 "Reason: SIP;cause=480;text=\"agent unreachable: %s\"\r\n", text);
        snprintf(hint, sizeof hint,
                 "The agent could not be reached: %s. Check the agent's URL and that its "
                 "server is up and reachable from this gateway (DNS, firewall, a certificate "
                 "from a public CA that names the host).",
                 text);
        tl__call_event_c(c, TL_EV_AGENT_UNREACHABLE, hint, 480,
                         "call %s: the agent could not take the call: %s", c->rec.id, text);
        tl_strlcpy(c->rec.hint, hint, sizeof c->rec.hint);
        tl__call_end(c, "agent_unreachable", 480, hdrs);
    } else if (c->l->cfg.answer_delay_ms && !c->ans_armed) {
        /* call_answer_delay_ms: ring a while before answering (demos; CANCEL tests) */
        if (!tl_timer_start(tl_sip_stack_timers(s), &c->ans_tm,
                            tl_sip_stack_now(s) + c->l->cfg.answer_delay_ms, on_answer_delay))
            c->ans_armed = true;
        else
            answer_now(c);
    } else if (!c->ans_armed) {
        answer_now(c);
    }
    tl__call_release(c);
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

/* The INVITE's X- headers (a carrier's or a PBX's own data: customer ids, campaign tags)
 * for the agent's customParameters: printable values, capped in number and length, since
 * they come from the wire. Returns how many; the strings live in buf. */
static size_t x_headers(const struct tl_sip_msg *m, struct tl_agent_param *out, char *buf,
                        size_t cap)
{
    size_t n = 0, used = 0;
    for (size_t i = 0; i < m->hdrc && n < CALL_XHEADERS_MAX; i++) {
        const struct tl_sip_hdr *h = &m->hdrv[i];
        if (h->name.l < 3 || h->name.l > CALL_XNAME_MAX ||
            (h->name.p[0] != 'X' && h->name.p[0] != 'x') || h->name.p[1] != '-' ||
            h->val.l > CALL_XVALUE_MAX)
            continue;
        if (used + h->name.l + h->val.l + 2 > cap)
            break;
        char *name = buf + used;
        memcpy(name, h->name.p, h->name.l);
        name[h->name.l] = '\0';
        used += h->name.l + 1;
        char *val = buf + used;
        size_t vl = 0;
        for (size_t k = 0; k < h->val.l; k++) { /* folds and controls become spaces */
            char ch = h->val.p[k];
            val[vl++] = (unsigned char)ch < 0x20 || ch == 0x7f ? ' ' : ch;
        }
        val[vl] = '\0';
        used += vl + 1;
        out[n++] = (struct tl_agent_param){name, val};
    }
    return n;
}

/* From the session onwards: SDP, media, 180, agent, (200 in agent_ready). */
static void start_call(struct tl_call_layer *l, struct tl_call *c, const struct tl_route *rt,
                       const struct tl_sip_msg *m, const char *src)
{
    char w[WARN_MAX];
    struct tl_sdp_refusal why;
    struct tl_sdp_local loc = {c->policy, c->maddr, 9, TL_SDP_SENDRECV, false};
    char *buf = malloc(SDP_BUFMAX);
    size_t len = 0;
    int r;
    if (!buf) {
        tl__call_end(c, "error", 500, "Retry-After: 5\r\n");
        return;
    }
    /* our address in the family the INVITE came in (no lookup); an offer of the other
     * family changes it below */
    if (media_addr(c, tl_call_media_af(0, c->sip_af), NULL)) {
        tl__call_end(c, "error", 500, NULL);
        goto out;
    }
    if (m->body.l) {
        if ((r = tl_sdp_decode(&l->sdp_a, &m->body))) {
            warning(w, sizeof w, l->host, 399, "the SDP offer could not be read");
            tl__call_end(c, "sdp_malformed", 400, w);
            goto out;
        }
        r = tl_sdp_answer(&l->sdp_b, &c->neg, &why, &l->sdp_a, &loc, &c->sdp);
        if (!r && c->neg.af != c->maf) {
            /* a dual-stack carrier's IPv6 media over IPv4 signalling (or the reverse): our
             * c= must be of the offer's family, since our socket of the other family could
             * not reach its address, and the offerer may have no other */
            int af = c->neg.af;
            if (af == AF_INET6 && v4mapped(c->neg.raddr)) {
                char problem[160];
                snprintf(problem, sizeof problem,
                         "c=IN IP6 %s is an IPv4-mapped address, which IPv6 media cannot reach "
                         "(offer c=IN IP4)",
                         c->neg.raddr);
                refuse_address(c, rt, src, problem, EAFNOSUPPORT);
                goto out;
            }
            if ((r = media_addr(c, af, c->neg.raddr))) {
                refuse_family(c, rt, src, af, r);
                goto out;
            }
            tl_sdp_nego_wipe(&c->neg);
            tl_sdp_wipe(&l->sdp_b);
            r = tl_sdp_answer(&l->sdp_b, &c->neg, &why, &l->sdp_a, &loc, &c->sdp);
        }
        if (r) {
            if (r == EPROTO) {
                snprintf(w, sizeof w, "Warning: %d %s \"%s\"\r\n", why.warn_code, l->host,
                         why.text);
                const char *code = TL_EV_CALL_FAILED, *hint = TL_EV_HINT_CALL_FAILED;
                if (why.kind == TL_SDP_MISMATCH_ENCRYPTION) {
                    code = TL_EV_MEDIA_ENCRYPTION_MISMATCH;
                    hint = TL_EV_HINT_MEDIA_ENCRYPTION_MISMATCH;
                } else if (why.kind == TL_SDP_MISMATCH_PROFILE) {
                    code = TL_EV_MEDIA_PROFILE_UNSUPPORTED;
                    hint = TL_EV_HINT_MEDIA_PROFILE_UNSUPPORTED;
                }
                tl__call_event(l, rt, code, hint, src, 488, "INVITE for %s refused (488): %s",
                               rt->number, why.text);
                tl__call_end(c, "sdp_refused", 488, w);
            } else {
                tl__call_end(c, "error", 500, NULL);
            }
            goto out;
        }
        if ((r = tl__call_open_media(c, true)))
            goto media_failed;
        /* the answer was made before the port existed: put the port in (one stream) */
        l->sdp_b.media[c->neg.midx].port = tl_media_stream_local_port(c->ms);
        tl__call_direction(c, c->neg.dir);
        r = tl_sdp_print(buf, SDP_BUFMAX, &len, &l->sdp_b, &c->sdp);
    } else {
        /* late offer (RFC 3261 §13.2.1): our offer goes in the 200, the answer in the ACK.
         * The stream opens pending (for its port) and takes the answer's codec and keys
         * then (s_answer). Policy required offers RTP/SAVP with our keys, else RTP/AVP. */
        if ((r = tl__call_open_media(c, false)))
            goto media_failed;
        c->late_offer = true;
        loc.port = tl_media_stream_local_port(c->ms);
        r = tl_sdp_offer(&l->sdp_b, &loc, &c->sdp);
        if (!r)
            r = tl_sdp_print(buf, SDP_BUFMAX, &len, &l->sdp_b, &c->sdp);
    }
    if (r) {
        tl__call_end(c, "error", 500, NULL);
        goto out;
    }
    c->answer = buf;
    c->answer_len = len;
    buf = NULL;
    if (!c->late_offer) /* else the ACK's answer says */
        tl_strlcpy(c->rec.codec, c->neg.codec == TL_SDP_CODEC_PCMA ? "PCMA" : "PCMU",
                   sizeof c->rec.codec);
    c->rec.srtp = c->neg.srtp;
    tl__call_sdes_check(c);
    tl__call_record(c); /* the call exists from here on (GET /v1/calls shows it) */

    tl_sip_sess_accept(c->sess, 180, NULL, NULL, 0);
    struct tl_sip_stack *s = l->cfg.stack;
    if (l->cfg.max_duration_s &&
        !tl_timer_start(tl_sip_stack_timers(s), &c->dur_tm,
                        tl_sip_stack_now(s) + l->cfg.max_duration_s * 1000ull, on_max_duration))
        c->dur_armed = true;

    struct tl_agent_param params[TL_PARAMS_MAX], hdrs[TL_HEADERS_MAX], xh[CALL_XHEADERS_MAX];
    size_t np = rt->n_agent_params < TL_PARAMS_MAX ? rt->n_agent_params : TL_PARAMS_MAX;
    for (size_t i = 0; i < np; i++)
        params[i] = (struct tl_agent_param){rt->agent_params[i].key, rt->agent_params[i].value};
    size_t nh = rt->n_agent_headers < TL_HEADERS_MAX ? rt->n_agent_headers : TL_HEADERS_MAX;
    for (size_t i = 0; i < nh; i++)
        hdrs[i] = (struct tl_agent_param){rt->agent_headers[i].name, rt->agent_headers[i].value};
    char xbuf[CALL_XHEADERS_MAX * (CALL_XNAME_MAX + CALL_XVALUE_MAX + 2)];
    size_t nx = x_headers(m, xh, xbuf, sizeof xbuf);
    char call_sid[TL_CALL_SID_LEN + 1] = "";
    tl_call_sid_of(c->rec.id, call_sid);
    tl_strlcpy(c->out_address, rt->out_address, sizeof c->out_address);
    struct tl_agent_call_info info = {.call_id = c->rec.id,
                                      .workspace_id = c->rec.workspace_id,
                                      .agent_id = c->rec.agent_id,
                                      .number = c->rec.number,
                                      .from = c->rec.from_user,
                                      .to = c->rec.number,
                                      .direction = "inbound",
                                      .sip_call_id = c->rec.sip_call_id,
                                      .params = params,
                                      .n_params = np,
                                      .loop = l->cfg.loop,
                                      .number_id = c->rec.number_id,
                                      .account_sid = rt->account_sid,
                                      .call_sid = call_sid,
                                      .url = c->relayed ? rt->in_origination_url : rt->agent_url,
                                      .headers = hdrs,
                                      .n_headers = nh,
                                      .connect_timeout_ms = rt->agent_timeout_ms,
                                      .sip_headers = xh,
                                      .n_sip_headers = nx,
                                      .env = l->cfg.agent_env,
                                      .method_get = rt->agent_method_get,
                                      .fallback_url = rt->agent_fallback_url,
                                      .status_callback = rt->agent_status_callback,
                                      .auth_token = rt->twilio_token,
                                      .from_uri = c->rec.from_uri};
    struct tl_agent_conn *conn = NULL;
    c->agent_starting = true;
    r = c->aops->start(&conn, &info, &c->acall, &tl__call_agent_ops, agent_ready);
    c->agent_starting = false;
    if (r && c->relayed) {
        agent_ready(&c->acall, r, "the origination URL is not a usable SIP URI");
    } else if (r) {
        tl__call_event(l, rt, TL_EV_CALL_FAILED, TL_EV_HINT_CALL_FAILED, src, 480,
                       "call %s: the agent could not start (%s)", c->rec.id, strerror(r));
        warning(w, sizeof w, l->host, 399, "the agent is not available");
        tl__call_end(c, "agent_unavailable", 480, w);
    } else if (c->ended) {
        c->aops->stop(conn, c->rec.end_reason); /* ready() ended it before start returned */
    } else if (c->fb_pending) {
        c->fb_pending = false; /* ready() said the agent cannot be reached: its URL instead */
        c->aops->stop(conn, "agent_unreachable");
        fall_back(c);
    } else {
        c->agent = conn;
    }
    goto out;

media_failed:
    if (r == EAFNOSUPPORT) { /* no socket of that family here: not a shortage of ports */
        refuse_family(c, rt, src, c->maf, r);
        goto out;
    }
    tl_warnl("call", "media.open_failed", "call=%s err=%s", c->rec.id, strerror(r));
    tl__call_event(l, rt, TL_EV_ADMISSION_REFUSED, TL_EV_HINT_MEDIA_PORTS, src, 503,
                   "INVITE for %s refused (503): no media port available (%s)", rt->number,
                   strerror(r));
    tl__call_end(c, "media_unavailable", 503, "Retry-After: 5\r\n");
out:
    tl_sdp_wipe(&l->sdp_a);
    tl_sdp_wipe(&l->sdp_b);
    if (buf) {
        sodium_memzero(buf, SDP_BUFMAX);
        free(buf);
    }
}

/* The digest check (RFC 3261 §22.4, inauth.h) and the answer when it does not pass.
 * trunk: the number's own credentials, or NULL for an untrusted request, which is checked
 * against credentials nobody has (l->nobody_*) so that it gets exactly what a wrong
 * password gets. owner: the number the request named, when it exists (events). Issue 11
 * item 3: a source blocked after failures gets the 403 of a wrong password without its
 * answer being verified; failures count per source whatever the number (else the back-off
 * itself would tell numbers apart), and per number for the owner's credentials_guessing
 * event. true: passed. */
static bool digest_gate(struct tl_call_layer *l, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                        const struct sockaddr *sa, const char *src, uint16_t sport,
                        const struct tl_route *trunk, const struct tl_route *owner)
{
    const struct tl_sip_peer *peer = tl_sip_tsx_peer(tx);
    uint64_t now = tl_sip_stack_now(l->cfg.stack);
    /* the names a carrier's UA may have answered for before its proxy rewrote the
     * Request-URI: ours (public host and address, the address it reached us on) */
    char here[64] = "";
    struct sockaddr_storage loc;
    uint16_t lport;
    if (!tl_sip_tport_local(peer->tpo, peer, &loc)) {
        struct tl_sip_peer lp = {.sa = loc};
        tl_sip_peer_ip(&lp, here, sizeof here, &lport);
    }
    const char *hosts[] = {l->host, l->public_ip, here, NULL};
    struct tl_sip_inauth_cred cred = {l->host,
                                      trunk ? trunk->in_username : l->nobody_user,
                                      trunk ? trunk->in_password : l->nobody_pass,
                                      l->host,
                                      {l->algs[0], l->algs[1], l->algs[2]},
                                      hosts};
    struct tl_sip_inauth_decision *d = malloc(sizeof *d);
    if (!d) {
        reply(l, tx, m, 500, NULL);
        return false;
    }
    bool answered = tl_sip_msg_hdr(m, TL_SIP_HDR_AUTHORIZATION) != NULL;
    bool blocked = answered && !tl_call_authguard_allowed(l->guard, sa, now);
    if (blocked) {
        memset(d, 0, sizeof *d);
        d->verdict = TL_SIP_INAUTH_FORBIDDEN;
        d->scode = 403;
        d->reason = "source_blocked";
        tl_strlcpy(d->user, "-", sizeof d->user);
        warning(d->hdrs, sizeof d->hdrs, l->host, 399, "credentials do not match");
    } else if (tl_sip_inauth_decide(l->dsrv, m, &cred, src, (uint64_t)time(NULL), d)) {
        reply(l, tx, m, 500, NULL);
        free(d);
        return false;
    }
    if (d->verdict == TL_SIP_INAUTH_PASS) {
        tl_call_authguard_passed(l->guard, sa, now);
        free(d);
        return true;
    }
    reply(l, tx, m, d->scode, d->hdrs);
    if (d->verdict == TL_SIP_INAUTH_FORBIDDEN || d->verdict == TL_SIP_INAUTH_MALFORMED) {
        TL_LOG_LIMITED(TL_LOG_INFO, "call", "auth.refused", "reason=%s src=%s:%u user=%s",
                       d->reason, src, sport, d->user);
        bool wrong = !strcmp(d->reason, "credentials_mismatch");
        if (wrong && tl_call_authguard_failed(l->guard, sa, now))
            TL_LOG_LIMITED(TL_LOG_WARN, "call", "auth.banned", "src=%s seconds=%u", src,
                           l->cfg.auth_guard.ban_s);
        if (trunk) {
            bool uri = !strcmp(d->reason, "digest_uri_mismatch");
            tl__call_event(l, trunk, uri ? TL_EV_DIGEST_URI_MISMATCH : TL_EV_CREDENTIALS_MISMATCH,
                           uri ? TL_EV_HINT_DIGEST_URI_MISMATCH : TL_EV_HINT_CREDENTIALS_MISMATCH,
                           src, d->scode, "INVITE for %s refused (%d): %s (user %s)", trunk->number,
                           d->scode, d->reason, d->user);
        }
        if (owner && owner->in_username[0] && (wrong || blocked) &&
            tl_call_authguard_number(l->guard, owner->number_id, now))
            tl__call_event(l, owner, TL_EV_CREDENTIALS_GUESSING, TL_EV_HINT_CREDENTIALS_GUESSING,
                           src, d->scode,
                           "INVITE for %s: many wrong digest answers in a short time, latest "
                           "from %s; sources that keep failing are refused for a while",
                           owner->number, src);
    }
    free(d);
    return false;
}

/* Behind a SIP edge (docs/scale-out.md) the packet's source is the edge, not the carrier.
 * From an edge address (sip_edge_addresses, and only from there: anyone else could write
 * the header) the carrier's own address, port and transport come from X-Trunkline-Source,
 * and every per-source decision below is made on them: allowed_addresses, the trunk's
 * transport, the INVITE rate limiter, the digest back-off and bans, events. *who gets
 * that source; from elsewhere it stays the packet's and the header is ignored. An edge
 * request without a usable header is refused: the edge is the operator's own, so saying
 * why tells a stranger nothing, and guessing would key the checks on the edge itself.
 * true: go on with *who; false: answered. */
static bool edge_source(struct tl_call_layer *l, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                        struct tl_sip_peer *who)
{
    const struct tl_sip_peer *peer = tl_sip_tsx_peer(tx);
    *who = *peer;
    if (!tl_sip_stack_is_edge(l->cfg.stack, (const struct sockaddr *)&peer->sa))
        return true;
    int r = tl_sip_edge_source(m, who);
    if (!r)
        return true;
    char edge[64], w[WARN_MAX];
    uint16_t eport;
    tl_sip_peer_ip(peer, edge, sizeof edge, &eport);
    const char *why = r == ENOENT ? "the SIP edge did not pass the carrier's source "
                                    "(" TL_SIP_EDGE_SOURCE_HDR ")"
                                  : "the SIP edge passed a malformed " TL_SIP_EDGE_SOURCE_HDR;
    warning(w, sizeof w, l->host, 399, why);
    reply(l, tx, m, 403, w);
    tl__call_event(l, NULL, TL_EV_EDGE_SOURCE_MISSING, TL_EV_HINT_EDGE_SOURCE_MISSING, edge, 403,
                   "INVITE from the SIP edge %s refused (403): %s", edge, why);
    return false;
}

void tl__call_invite(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                     void *arg)
{
    struct tl_call_layer *l = arg;
    const struct tl_sip_peer *link = tl_sip_tsx_peer(tx); /* the packet's: answers go there */
    char src[64], w[WARN_MAX];
    uint16_t sport;

    /* draining (SIGTERM): every new call goes elsewhere, the same answer for all */
    if (l->drain_retry_s) {
        char ra[40];
        snprintf(ra, sizeof ra, "Retry-After: %u\r\n", l->drain_retry_s);
        reply(l, tx, m, 503, ra);
        return;
    }
    /* the carrier's source: the packet's, or the edge's word for it */
    struct tl_sip_peer who;
    if (!edge_source(l, tx, m, &who))
        return;
    const struct tl_sip_peer *peer = &who;
    tl_sip_peer_ip(peer, src, sizeof src, &sport);
    /* 11 (first: cheapest): INVITEs per source, a token bucket */
    const uint8_t *ab = NULL;
    size_t alen = 0;
    if (peer->sa.ss_family == AF_INET) {
        ab = (const uint8_t *)&((const struct sockaddr_in *)&peer->sa)->sin_addr;
        alen = 4;
    } else {
        ab = (const uint8_t *)&((const struct sockaddr_in6 *)&peer->sa)->sin6_addr;
        alen = 16;
    }
    enum tl_call_rate_verdict rv = tl_call_rate_take(l->rate, ab, alen, tl_sip_stack_now(s));
    if (rv != TL_CALL_RATE_OK) {
        TL_LOG_LIMITED(TL_LOG_DEBUG, "call", "rate_limited", "src=%s bucket=%s", src,
                       rv == TL_CALL_RATE_GLOBAL ? "global" : "source");
        reply(l, tx, m, 503, "Retry-After: 5\r\n");
        return;
    }

    /* 1: which number — from the routing cache, never the database */
    char raw[TL_USER_MAX + 1], e164[TL_E164_MAX + 1];
    struct tl_route *rt = malloc(sizeof *rt);
    if (!rt) {
        reply(l, tx, m, 500, "Retry-After: 5\r\n");
        return;
    }
    bool found =
        number_of(m, e164, raw, sizeof raw) && !tl_routing_lookup(l->cfg.routing, e164, rt);
    const struct sockaddr *sa = (const struct sockaddr *)&peer->sa;
    /* 2: who may learn anything (issue 11 item 2). A source is trusted for this number
     * when the number takes inbound calls and the packet's address (never a header) is in
     * its allowed_addresses (or the list is empty), and, for a trunk with a username, once
     * it answered the digest challenge. Everybody else gets the same answer whatever the
     * number: the digest check, against credentials nobody has — 401 to a request without
     * credentials, 403 "credentials do not match" to any answer — so neither the status,
     * the headers nor the work done tells a scanner whether the number exists or how its
     * trunk is set (Asterisk's alwaysauthreject). The plain-language diagnosis goes to the
     * owner's events, and in SIP only to a trusted source. */
    bool addr_ok = found && rt->has_inbound && tl_routing_match_source(rt, sa);
    if (!addr_ok) {
        if (!found) {
            char shown[TL_USER_MAX + 1];
            size_t n = 0;
            for (const char *p = raw; *p && n < 32; p++) /* printable, capped: a stranger's */
                shown[n++] = (*p > 0x20 && *p < 0x7f) ? *p : '?';
            shown[n] = '\0';
            char hint[TL_EVENT_HINT_MAX + 1];
            snprintf(hint, sizeof hint, TL_EV_HINT_NUMBER_NOT_ROUTED_FMT,
                     shown[0] ? shown : "(no number)");
            tl__call_event(l, NULL, TL_EV_NUMBER_NOT_ROUTED, hint, src, 401,
                           "INVITE for %s refused: number not routed",
                           shown[0] ? shown : "(no number)");
        } else if (!rt->has_inbound) {
            tl__call_event(l, rt, TL_EV_INBOUND_DISABLED, TL_EV_HINT_INBOUND_DISABLED, src, 401,
                           "INVITE for %s refused: the number has no inbound trunk", rt->number);
        } else {
            tl__call_event(l, rt, TL_EV_SOURCE_NOT_ALLOWED, TL_EV_HINT_SOURCE_NOT_ALLOWED, src, 401,
                           "INVITE for %s from %s refused: not in allowed_addresses", rt->number,
                           src);
        }
        digest_gate(l, tx, m, sa, src, sport, NULL, found ? rt : NULL);
        goto done;
    }
    /* 3: digest, when the trunk has a username (inauth.h) */
    if (rt->in_username[0] && !digest_gate(l, tx, m, sa, src, sport, rt, rt))
        goto done;
    /* trusted from here on: refusals say why */
    /* 4: transport — the trunk's (tls or tcp); never UDP for inbound calls */
    enum tl_sip_transport want =
        rt->in_transport == TL_TRANSPORT_TLS ? TL_SIP_TP_TLS : TL_SIP_TP_TCP;
    if (peer->tp != want) {
        char text[256], hint[TL_EVENT_HINT_MAX + 1];
        snprintf(text, sizeof text,
                 "this trunk takes calls over %s only: end the origination URI with "
                 ";transport=%s",
                 tp_name(want), want == TL_SIP_TP_TLS ? "tls" : "tcp");
        warning(w, sizeof w, l->host, 399, text);
        reply(l, tx, m, 403, w);
        snprintf(hint, sizeof hint, TL_EV_HINT_WRONG_TRANSPORT_FMT, tp_name(peer->tp),
                 tp_name(want));
        tl__call_event(l, rt, TL_EV_WRONG_TRANSPORT, hint, src, 403,
                       "INVITE for %s over %s refused (403): the trunk expects %s", rt->number,
                       tp_name(peer->tp), tp_name(want));
        goto done;
    }
    /* 6: an agent, of a kind we can run — or, with neither, the inbound trunk's origination
     * URL, the gateway staying in the call (relay.c) */
    const struct tl_agent_ops *aops = NULL;
    if (!rt->agent_id[0] && rt->in_origination_url[0] && l->cfg.agent_env) {
        aops = &tl__call_relay;
    } else if (!rt->agent_id[0]) {
        warning(w, sizeof w, l->host, 399, "no agent is assigned to this number");
        reply(l, tx, m, 480, w);
        tl__call_event(l, rt, TL_EV_NO_AGENT, TL_EV_HINT_NO_AGENT, src, 480,
                       "INVITE for %s refused (480): no agent assigned", rt->number);
        record_refused(l, rt, m, raw, 480, "no_agent", TL_EV_HINT_NO_AGENT);
        goto done;
    }
    if (aops)
        ; /* the relay */
    else if (rt->agent_kind == TL_AGENT_WEBSOCKET && l->cfg.agent_env)
        aops = &tl_agent_websocket;
    else if (rt->agent_kind == TL_AGENT_TWIML && l->cfg.agent_env)
        aops = &tl_agent_twiml;
    else if (rt->agent_kind == TL_AGENT_BUILTIN)
        aops = tl_agent_builtin(rt->agent_builtin);
    if (!aops) {
        warning(w, sizeof w, l->host, 399, "agent kind not available yet");
        reply(l, tx, m, 480, w);
        tl__call_event(l, rt, TL_EV_CALL_FAILED, TL_EV_HINT_CALL_FAILED, src, 480,
                       "INVITE for %s refused (480): agent kind %s not available yet", rt->number,
                       tl_agent_kind_name(rt->agent_kind));
        record_refused(l, rt, m, raw, 480, "agent_unavailable", TL_EV_HINT_CALL_FAILED);
        goto done;
    }
    /* 11: admission — the gateway's own state, then concurrent calls, global and per
     * workspace */
    if (l->cfg.rec && tl_recorder_backlogged(l->cfg.rec)) {
        /* the disk does not keep up: every call taken now adds an end record that must
         * not be dropped (records.h) */
        reply(l, tx, m, 503, "Retry-After: 30\r\n");
        tl_warnl("call", "refused",
                 "code=admission_refused status=503 src=%s number_id=%s "
                 "reason=records_backlog",
                 src, rt->number_id);
        goto done;
    }
    /* the loop's real load, before the calls in progress suffer from one more (issue 11:
     * at 1.5x capacity every call lost audio while admission still counted calls) */
    struct tl_media_load ld = {0};
    if (l->cfg.media)
        tl_media_engine_load(l->cfg.media, &ld);
    if ((l->cfg.max_busy_pct && ld.busy_pct > l->cfg.max_busy_pct) ||
        (l->cfg.max_late_ms && ld.late_ms > l->cfg.max_late_ms)) {
        warning(w, sizeof w, l->host, 399, "the gateway is at capacity; try again shortly");
        size_t wl = strlen(w);
        snprintf(w + wl, sizeof w - wl, "Retry-After: 5\r\n");
        reply(l, tx, m, 503, w);
        tl__call_event(l, rt, TL_EV_ADMISSION_REFUSED, TL_EV_HINT_ADMISSION_REFUSED, src, 503,
                       "INVITE for %s refused (503): the gateway is at capacity (its loop %.0f %% "
                       "busy, the media clock %.1f ms late on average; admission_max_busy_pct "
                       "%u, admission_max_late_ms %u)",
                       rt->number, ld.busy_pct, ld.late_ms, l->cfg.max_busy_pct,
                       l->cfg.max_late_ms);
        record_refused(l, rt, m, raw, 503, "admission_refused", TL_EV_HINT_ADMISSION_REFUSED);
        goto done;
    }
    if ((l->cfg.max_calls && l->n >= l->cfg.max_calls) ||
        (l->cfg.max_calls_per_workspace &&
         ws_calls(l, rt->workspace_id) >= l->cfg.max_calls_per_workspace)) {
        reply(l, tx, m, 503, "Retry-After: 30\r\n");
        tl__call_event(l, rt, TL_EV_ADMISSION_REFUSED, TL_EV_HINT_ADMISSION_REFUSED, src, 503,
                       "INVITE for %s refused (503): concurrent call limit reached", rt->number);
        record_refused(l, rt, m, raw, 503, "admission_refused", TL_EV_HINT_ADMISSION_REFUSED);
        goto done;
    }

    struct tl_call *c = calloc(1, sizeof *c);
    if (!c) {
        reply(l, tx, m, 500, "Retry-After: 5\r\n");
        goto done;
    }
    c->l = l;
    c->acall.c = c;
    c->aops = aops;
    c->relayed = aops == &tl__call_relay;
    tl_strlcpy(c->orig_url, rt->in_origination_url, sizeof c->orig_url);
    c->policy = rt->in_media == TL_MEDIA_REQUIRED  ? TL_SDP_SRTP_REQUIRED
                : rt->in_media == TL_MEDIA_ALLOWED ? TL_SDP_SRTP_ALLOWED
                                                   : TL_SDP_SRTP_DISABLED;
    record_init(&c->rec, rt, m, raw);
    /* SDES keys are readable on either plain-TCP leg: carrier to edge, or edge to us */
    c->over_tcp = peer->tp == TL_SIP_TP_TCP || link->tp == TL_SIP_TP_TCP;
    c->latch = rt->in_latching == TL_LATCHING_SDP_IP ? TL_MEDIA_LATCH_SDP_IP
               : rt->in_latching == TL_LATCHING_ANY  ? TL_MEDIA_LATCH_ANY
               : rt->in_latching == TL_LATCHING_OFF  ? TL_MEDIA_LATCH_OFF
                                                     : TL_MEDIA_LATCH_DEFAULT;
    tl_strlcpy(c->src, src, sizeof c->src);
    if (sip_local(l, link, c) || tl_sdp_sess_init(&c->sdp, NULL, NULL)) {
        reply(l, tx, m, 500, NULL);
        free(c);
        goto done;
    }
    tl_sip_stack_reply(s, tx, m, link, 100, NULL, NULL, NULL, NULL, 0);
    int r = tl_sip_sess_alloc_uas(&c->sess, l->cfg.sess, tx, m, &tl__call_sess_h, c);
    if (r) {
        if (r == ENOMEM)
            reply(l, tx, m, 500, "Retry-After: 5\r\n");
        tl_sdp_sess_wipe(&c->sdp);
        free(c); /* 422 was answered by the session layer */
        goto done;
    }
    c->next = l->calls;
    if (l->calls)
        l->calls->pprev = &c->next;
    c->pprev = &l->calls;
    l->calls = c;
    l->n++;
    if (l->cfg.cluster) /* seen by the other nodes at the next sync (tl__call_end uncounts) */
        tl_cluster_local_add(l->cfg.cluster, c->rec.workspace_id, false, 1);
    tl_info("call", "start", "call=%s number_id=%s src=%s tp=%s", c->rec.id, rt->number_id, src,
            tp_name(peer->tp));
    tl__call_hold(c);
    start_call(l, c, rt, m, src);
    tl__call_release(c);
done:
    tl_route_wipe(rt);
    free(rt);
}
