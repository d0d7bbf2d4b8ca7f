/* cli/probe: `trunkline probe`, a trunk test tool for telephony engineers. It runs the SIP
 * stack itself on a loop of its own (no daemon, no database): resolution (RFC 3263), TLS
 * verification and digest behave exactly as they will for the gateway's outbound calls.
 *
 *   trunkline probe [options|invite] sip:+4930123@carrier.example[:port]
 *         [--transport udp|tcp|tls] [--username U (--password P | --password-stdin)]
 *         [--realm R] [--from +E164] [--header 'Name: value']... [--ca-file PEM]
 *         [--hold SECONDS] [--dns-server ip:port] [--t1-ms MS] [--verbose]
 *         [--session-expires S] [--min-se S] [--hold-after S] [--update-after S]
 *         [--info-after S] [--refer URI] [--cancel-after-ring]
 *
 * OPTIONS prints the status line and the elapsed time. INVITE runs an outgoing call through
 * the session layer (sip/dialog.h), as the gateway's calls will: an SDP offer (PCMU, PCMA,
 * telephone-event; a real local UDP port so early media has somewhere to go), Supported:
 * timer + Session-Expires (one 422 retry), ACK (again for 2xx retransmissions), then the
 * mid-call actions in the order hold, update, info, refer — each at its time after the
 * answer and after the previous one finished — then BYE when --hold is over. Every
 * response prints one greppable line ("INVITE: SIP/2.0 200 OK (12 ms)", "reinvite 200
 * answer-direction=recvonly", "notify sipfrag=200 subscription=terminated", …).
 * Exit: 0 on 2xx (and every mid-call action answered 2xx), 1 on a final error response
 * or "cancelled", 2 usage, 3 timeout / transport / TLS / DNS failure.
 *
 * `probe options --json` prints one JSON object instead (the daemon's trunk check runs it
 * and reads it): {"object":"probe_result","step":…,"status":…,"reason":…,"address":…,
 * "error":…,"rtt_ms":…}; step is null on a 2xx, else "dns", "connect", "tls", "timeout",
 * "sip" (a final non-2xx) or "internal". Log lines go to standard error as JSON, so a TLS
 * verification failure's reason can be read there (sip uac.conn_failed). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <sodium.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "sip/dialog.h"
#include "sip/stack.h"

#define PROBE_HDRS_MAX 4096

/* mid-call actions, run one after the other once the call is up (each waits for the
 * previous one to finish: a second offer while one is pending would only get EBUSY) */
enum act_kind { ACT_HOLD, ACT_UPDATE, ACT_INFO, ACT_REFER };
struct act {
    enum act_kind kind;
    uint64_t at_ms; /* after the call came up */
};

struct probe {
    uv_loop_t loop;
    struct tl_sip_stack *s;
    struct tl_sip_sess_layer *layer;
    struct tl_sip_sess *sess;
    uv_timer_t tm; /* the next action, or the end of --hold */
    uint64_t t0, t_up;
    int rc, last_err;
    bool invite, stopping, cancel_after_ring, cancel_sent, refer_failed;
    unsigned hold_s;
    struct act acts[4];
    size_t nacts, cur; /* cur: the running (or next) action */
    bool act_running;
    const char *refer_to;
    unsigned sdp_ver, sdp_sess;
    int rtp_port;
    struct tl_sip_request rq; /* the INVITE / OPTIONS */
    char from[600], to[600], callid[80], contact[200], hdrs[PROBE_HDRS_MAX];
    char sdp[512];
    char tls_name[260]; /* the Request-URI host (RFC 5922 §4) */
    int rtp_fd;
    /* --json: the outcome of the OPTIONS, printed at the end */
    bool json;
    int res_err; /* 0: res_status holds the final status */
    unsigned res_status;
    char res_reason[128];
    char res_addr[80]; /* "ip:port" of the hop tried last, "" when none was */
    unsigned long res_ms;
};

static struct probe P;

static void rand_hex(char *out, size_t nbytes)
{
    uint8_t r[32];
    randombytes_buf(r, nbytes);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

static unsigned long elapsed(void)
{
    return (unsigned long)(uv_now(&P.loop) - P.t0);
}

static void done(int rc)
{
    P.rc = rc;
    uv_stop(&P.loop);
}

static int fail_rc(int err)
{
    if (P.json)
        return 3;
    const char *what = err == ETIMEDOUT ? "no response (timeout)"
                       : err == EPROTO  ? "TLS failure (see the reason logged above)"
                       : err == ENOENT  ? "the host did not resolve to any target"
                                        : strerror(err);
    printf("error: %s (%lu ms)\n", what, elapsed());
    return 3;
}

static void print_resp(const char *what, const struct tl_sip_msg *m)
{
    if (P.json)
        return;
    printf("%s: SIP/2.0 %u %.*s (%lu ms)\n", what, m->scode, (int)m->reason.l, m->reason.p,
           elapsed());
    fflush(stdout);
}

/* our SDP offer; o= version +1 for every new offer (RFC 3264 §8), dir: a=<dir> */
static void make_sdp(const char *dir)
{
    snprintf(P.sdp, sizeof P.sdp,
             "v=0\r\no=- %u %u IN IP4 127.0.0.1\r\ns=trunkline probe\r\n"
             "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\n"
             "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=%s\r\n",
             P.sdp_sess, ++P.sdp_ver, P.rtp_port, dir);
}

/* the first direction attribute of an SDP body (RFC 3264 §5.1: sendrecv when none) */
static const char *sdp_dir(const struct tl_pl *b)
{
    static const char *const dirs[] = {"sendonly", "recvonly", "inactive", "sendrecv"};
    for (size_t i = 0; i + 2 < b->l; i++) {
        if ((i && b->p[i - 1] != '\n') || b->p[i] != 'a' || b->p[i + 1] != '=')
            continue;
        for (size_t k = 0; k < 4; k++) {
            size_t n = strlen(dirs[k]);
            if (b->l - i - 2 >= n && !memcmp(b->p + i + 2, dirs[k], n) &&
                (b->l - i - 2 == n || b->p[i + 2 + n] == '\r' || b->p[i + 2 + n] == '\n'))
                return dirs[k];
        }
    }
    return "sendrecv";
}

static void next_step(void);

static void send_bye(void)
{
    if (!P.sess)
        return;
    struct tl_sip_sess *x = P.sess;
    tl_sip_sess_bye(x); /* on_terminated(BYE_SENT) runs inside; the answer comes later */
    /* the BYE could not be sent: nothing will answer (the session is gone already) */
    if (tl_sip_sess_count(P.layer) == 0 && !P.stopping) {
        printf("error: BYE not sent (%lu ms)\n", elapsed());
        done(3);
    }
}

static void act_done(void)
{
    P.act_running = false;
    P.cur++;
    next_step();
}

static void on_tm(uv_timer_t *t)
{
    (void)t;
    if (!P.sess)
        return;
    if (P.cur >= P.nacts) {
        send_bye();
        return;
    }
    int err = 0;
    const char *what = "";
    P.act_running = true;
    switch (P.acts[P.cur].kind) {
    case ACT_HOLD: /* RFC 3264 §8.4: hold = sendonly; the answer should be recvonly */
        what = "reinvite";
        make_sdp("sendonly");
        err = tl_sip_sess_modify(P.sess, false, "application/sdp", P.sdp, strlen(P.sdp));
        break;
    case ACT_UPDATE: /* RFC 3311: a new offer (back to sendrecv) in an UPDATE */
        what = "update";
        make_sdp("sendrecv");
        err = tl_sip_sess_modify(P.sess, true, "application/sdp", P.sdp, strlen(P.sdp));
        break;
    case ACT_INFO: /* RFC 6086 with the de facto DTMF relay body (a 5, 160 ms) */
        what = "info";
        err = tl_sip_sess_info(P.sess, "application/dtmf-relay", "Signal=5\r\nDuration=160\r\n",
                               strlen("Signal=5\r\nDuration=160\r\n"));
        break;
    case ACT_REFER:
        what = "refer";
        P.refer_failed = false;
        err = tl_sip_sess_refer(P.sess, P.refer_to);
        break;
    }
    if (err) {
        printf("%s not sent: %s\n", what, strerror(err));
        fflush(stdout);
        P.rc = 1;
        act_done();
    }
}

/* the next action at its time (counted from the answer), else BYE when --hold is over */
static void next_step(void)
{
    if (!P.sess || P.stopping)
        return;
    uint64_t at = P.cur < P.nacts ? P.acts[P.cur].at_ms : (uint64_t)P.hold_s * 1000;
    uint64_t now = uv_now(&P.loop) - P.t_up;
    uv_timer_start(&P.tm, on_tm, at > now ? at - now : 0, 0);
}

static const char *method_name(enum tl_sip_method m)
{
    switch (m) {
    case TL_SIP_METHOD_INVITE:
        return "INVITE";
    case TL_SIP_METHOD_UPDATE:
        return "UPDATE";
    case TL_SIP_METHOD_INFO:
        return "INFO";
    case TL_SIP_METHOD_REFER:
        return "REFER";
    case TL_SIP_METHOD_NOTIFY:
        return "NOTIFY";
    case TL_SIP_METHOD_BYE:
        return "BYE";
    default:
        return "?";
    }
}

/* One greppable line per response: "INVITE: SIP/2.0 180 Ringing (12 ms)" for the call
 * itself and its BYE; "reinvite 200 answer-direction=recvonly", "update 200 …",
 * "info 200", "refer 202", "refresh UPDATE 200" in the call. */
static void s_response(struct tl_sip_sess *sess, enum tl_sip_method m, bool refresh,
                       const struct tl_sip_msg *resp, int err, void *arg)
{
    (void)arg;
    if (P.stopping)
        return;
    bool initial = m == TL_SIP_METHOD_INVITE && !tl_sip_sess_dialog(sess);
    if (!resp) {
        P.last_err = err;
        printf("%s%s failed: %s (%lu ms)\n", refresh ? "refresh " : "", method_name(m),
               strerror(err), elapsed());
        fflush(stdout);
        if (m == TL_SIP_METHOD_BYE) {
            done(fail_rc(err));
        } else if (!initial && !refresh && P.act_running && m != TL_SIP_METHOD_NOTIFY) {
            P.rc = 1;
            act_done();
        }
        return;
    }
    if (initial || m == TL_SIP_METHOD_BYE) {
        print_resp(m == TL_SIP_METHOD_BYE ? "BYE" : "INVITE", resp);
        if (initial && P.cancel_after_ring && !P.cancel_sent && resp->scode > 100 &&
            resp->scode < 200) {
            P.cancel_sent = true;
            int e = tl_sip_sess_cancel(sess); /* §9.1 */
            printf(e ? "CANCEL not sent: %s\n" : "CANCEL sent%s\n", e ? strerror(e) : "");
            fflush(stdout);
        }
        if (m == TL_SIP_METHOD_BYE && resp->scode >= 200)
            done(resp->scode < 300 ? P.rc : 1);
        return;
    }
    if (resp->scode < 200 || m == TL_SIP_METHOD_NOTIFY)
        return;
    if (refresh) {
        printf("refresh %s %u\n", method_name(m), resp->scode);
    } else if (m == TL_SIP_METHOD_INVITE || m == TL_SIP_METHOD_UPDATE) {
        printf("%s %u", m == TL_SIP_METHOD_INVITE ? "reinvite" : "update", resp->scode);
        if (resp->scode < 300 && resp->body.l)
            printf(" answer-direction=%s", sdp_dir(&resp->body));
        printf("\n");
    } else {
        printf("%s %u\n", m == TL_SIP_METHOD_INFO ? "info" : "refer", resp->scode);
    }
    fflush(stdout);
    if (refresh || !P.act_running)
        return;
    if (resp->scode == 491)
        return; /* §14.1: the session sends the offer again after its random delay */
    if (resp->scode >= 300)
        P.rc = 1;
    if (m == TL_SIP_METHOD_REFER) {
        /* done when the subscription ends (the last NOTIFY); a refused REFER ends it */
        P.refer_failed = resp->scode >= 300;
        if (P.refer_failed)
            act_done();
        return;
    }
    act_done();
}

static void s_notify(struct tl_sip_sess *sess, uint16_t sipfrag, bool terminated, void *arg)
{
    (void)sess;
    (void)arg;
    if (P.refer_failed)
        return; /* the session's report of the refused REFER: printed as "refer <code>" */
    printf("notify sipfrag=%u subscription=%s\n", sipfrag, terminated ? "terminated" : "active");
    fflush(stdout);
    if (terminated && P.act_running && P.cur < P.nacts && P.acts[P.cur].kind == ACT_REFER) {
        if (sipfrag >= 300)
            P.rc = 1;
        act_done();
    }
}

static void s_established(struct tl_sip_sess *sess, void *arg)
{
    (void)sess;
    (void)arg;
    P.t_up = uv_now(&P.loop);
    printf("call up, holding %u s\n", P.hold_s);
    fflush(stdout);
    P.rc = 0;
    next_step();
}

static void s_answer(struct tl_sip_sess *sess, const struct tl_pl *answer, void *arg)
{
    (void)sess;
    (void)arg;
    (void)answer; /* printed with its response (s_response) */
}

/* the far end offers (a re-INVITE or UPDATE of its own): we take it as it comes */
static int s_offer(struct tl_sip_sess *sess, const struct tl_pl *offer, struct tl_sip_body *ans,
                   void *arg)
{
    (void)sess;
    (void)arg;
    const char *d = offer->l ? tl_sip_sess_answer_dir(offer) : "sendrecv";
    printf("offer received, answering %s\n", d);
    fflush(stdout);
    make_sdp(d);
    size_t n = strlen(P.sdp);
    if (n >= ans->cap)
        return 500;
    memcpy(ans->buf, P.sdp, n);
    ans->len = n;
    return 0;
}

static uint16_t s_info(struct tl_sip_sess *sess, const struct tl_sip_msg *m, char *hdrs, size_t cap,
                       void *arg)
{
    (void)sess;
    (void)arg;
    (void)hdrs;
    (void)cap;
    const struct tl_sip_hdr *ct = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTENT_TYPE);
    struct tl_pl ctype = ct ? ct->val : (struct tl_pl){0};
    printf("INFO received: %.*s\n", (int)(ctype.l > 100 ? 100 : ctype.l), ctype.p);
    fflush(stdout);
    return 200;
}

static void s_terminated(struct tl_sip_sess *sess, enum tl_sip_sess_reason why, uint16_t scode,
                         void *arg)
{
    (void)sess;
    (void)arg;
    P.sess = NULL;
    uv_timer_stop(&P.tm);
    if (P.stopping)
        return;
    switch (why) {
    case TL_SIP_SESS_BYE_SENT:
        return; /* its answer ends the probe (s_response) */
    case TL_SIP_SESS_BYE_RECEIVED:
        printf("BYE received from the far end (%lu ms)\n", elapsed());
        done(P.rc);
        return;
    case TL_SIP_SESS_CANCELED:
        printf("cancelled (%lu ms)\n", elapsed());
        done(1);
        return;
    case TL_SIP_SESS_REJECTED:
        done(1);
        return;
    case TL_SIP_SESS_EXPIRED:
        printf("session expired, BYE sent (%lu ms)\n", elapsed());
        done(1);
        return;
    default:
        if (scode) {
            printf("call ended: %s %u (%lu ms)\n", tl_sip_sess_reason_name(why), scode, elapsed());
            done(1);
        } else {
            done(fail_rc(P.last_err ? P.last_err : EIO));
        }
        return;
    }
}

static const struct tl_sip_sess_h probe_h = {.on_offer = s_offer,
                                             .on_answer = s_answer,
                                             .on_established = s_established,
                                             .on_terminated = s_terminated,
                                             .on_info = s_info,
                                             .on_notify = s_notify,
                                             .on_response = s_response};

/* the hop a request went to, "ip:port" ("[v6]:port"), or "" before one was chosen */
static void peer_text(const struct tl_sip_peer *p, char *out, size_t cap)
{
    char ip[64];
    uint16_t port = 0;
    out[0] = '\0';
    if (!p || (p->sa.ss_family != AF_INET && p->sa.ss_family != AF_INET6))
        return;
    tl_sip_peer_ip(p, ip, sizeof ip, &port);
    snprintf(out, cap, p->sa.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
}

static void on_options(struct tl_sip_ctsx *ct, const struct tl_sip_msg *m, int err, void *arg)
{
    (void)arg;
    if (P.stopping)
        return;
    if (P.json && (!m || m->scode >= 200)) {
        P.res_err = m ? 0 : err;
        P.res_status = m ? m->scode : 0;
        if (m)
            snprintf(P.res_reason, sizeof P.res_reason, "%.*s",
                     (int)(m->reason.l < 120 ? m->reason.l : 120), m->reason.p);
        for (char *c = P.res_reason; *c; c++) /* the far end's bytes: JSON wants UTF-8 */
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                *c = '?';
        peer_text(ct ? tl_sip_ctsx_peer(ct) : NULL, P.res_addr, sizeof P.res_addr);
        P.res_ms = elapsed();
    }
    if (!m) {
        done(fail_rc(err));
        return;
    }
    print_resp("OPTIONS", m);
    if (m->scode >= 200)
        done(m->scode < 300 ? 0 : 1);
}

static void print_json(void)
{
    bool have_addr = P.res_addr[0] != '\0';
    const char *step = P.res_err            ? tl_sip_failed_step(P.res_err, have_addr)
                       : P.res_status < 300 ? NULL
                                            : "sip";
    json_t *j =
        json_pack("{s:s, s:s?, s:o, s:s?, s:s?, s:s?, s:o}", "object", "probe_result", "step", step,
                  "status", P.res_err ? json_null() : json_integer(P.res_status), "reason",
                  P.res_err ? NULL : P.res_reason, "address", have_addr ? P.res_addr : NULL,
                  "error", P.res_err ? strerror(P.res_err) : NULL, "rtt_ms",
                  P.res_err ? json_null() : json_integer((json_int_t)P.res_ms));
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (txt)
        printf("%s\n", txt);
    free(txt);
    json_decref(j);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trunkline probe ws ws[s]://HOST[:PORT]/PATH ... (probe ws --help)\n"
               "       trunkline probe [options|invite] sip:NUMBER@HOST[:PORT]\n"
               "         [--transport udp|tcp|tls] [--username U (--password P | "
               "--password-stdin)]\n"
               "         [--realm R] [--from +E164] [--header 'Name: value']... [--ca-file PEM]\n"
               "         [--hold SECONDS] [--dns-server IP:PORT] [--t1-ms MS] [--verbose]\n"
               "  options: [--json]  (one JSON object: step, status, reason, address, rtt_ms)\n"
               "  invite: [--session-expires S] [--min-se S] [--hold-after S] [--update-after S]\n"
               "          [--info-after S] [--refer URI] [--cancel-after-ring]\n"
               "exit: 0 2xx, 1 error response, 2 usage, 3 timeout/transport/TLS/DNS failure\n");
}

static int local_rtp_port(void)
{
    P.rtp_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (P.rtp_fd < 0 || bind(P.rtp_fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(P.rtp_fd, (struct sockaddr *)&a, &al))
        return 40000;
    return ntohs(a.sin_port);
}

/* seconds (0-86400) of a --*-after / --hold / --session-expires option */
static int secs(const char *opt, const char *v, unsigned long lo, unsigned long *out)
{
    char *end;
    unsigned long h = strtoul(v, &end, 10);
    if (!*v || *end || h < lo || h > 86400) {
        fprintf(stderr, "probe: %s takes seconds (%lu-86400)\n", opt, lo);
        return 2;
    }
    *out = h;
    return 0;
}

static void add_act(enum act_kind k, unsigned long at_s)
{
    for (size_t i = 0; i < P.nacts; i++)
        if (P.acts[i].kind == k) {
            P.acts[i].at_ms = at_s * 1000;
            return;
        }
    P.acts[P.nacts++] = (struct act){k, at_s * 1000};
}

int tl_probe_ws_main(int argc, char **argv); /* cli/probe_ws.c */
int tl_probe_main(int argc, char **argv);
int tl_probe_main(int argc, char **argv)
{
    if (argc > 0 && !strcmp(argv[0], "ws"))
        return tl_probe_ws_main(argc - 1, argv + 1);
    const char *ruri = NULL, *tpn = "udp", *user = NULL, *realm = NULL, *from = "probe";
    const char *ca = NULL, *dns = NULL;
    char pass[256] = "";
    bool have_pass = false, verbose = false;
    size_t hn = 0;
    unsigned long se = 0, min_se = 0, t1 = 500, val;
    memset(&P, 0, sizeof P);
    P.rtp_fd = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL()                                                                                      \
    do {                                                                                           \
        if (!v) {                                                                                  \
            fprintf(stderr, "probe: %s needs a value\n", a);                                       \
            return 2;                                                                              \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "options") && !ruri) {
            P.invite = false;
        } else if (!strcmp(a, "invite") && !ruri) {
            P.invite = true;
        } else if (!strcmp(a, "--transport")) {
            VAL();
            tpn = v;
        } else if (!strcmp(a, "--username")) {
            VAL();
            user = v;
        } else if (!strcmp(a, "--password")) {
            VAL();
            snprintf(pass, sizeof pass, "%s", v);
            have_pass = true;
            memset(argv[i], 'x', strlen(argv[i])); /* shortens the window `ps` shows it */
        } else if (!strcmp(a, "--password-stdin")) {
            if (!fgets(pass, sizeof pass, stdin)) {
                fprintf(stderr, "probe: no password on standard input\n");
                return 2;
            }
            pass[strcspn(pass, "\r\n")] = '\0';
            have_pass = true;
        } else if (!strcmp(a, "--realm")) {
            VAL();
            realm = v;
        } else if (!strcmp(a, "--from")) {
            VAL();
            from = v;
        } else if (!strcmp(a, "--ca-file")) {
            VAL();
            ca = v;
        } else if (!strcmp(a, "--dns-server")) {
            VAL();
            dns = v;
        } else if (!strcmp(a, "--hold")) {
            VAL();
            if (secs(a, v, 0, &val))
                return 2;
            P.hold_s = (unsigned)val;
        } else if (!strcmp(a, "--hold-after") || !strcmp(a, "--update-after") ||
                   !strcmp(a, "--info-after")) {
            VAL();
            if (secs(a, v, 0, &val))
                return 2;
            add_act(a[2] == 'h' ? ACT_HOLD : a[2] == 'u' ? ACT_UPDATE : ACT_INFO, val);
        } else if (!strcmp(a, "--refer")) {
            VAL();
            if (strncmp(v, "sip:", 4) && strncmp(v, "sips:", 5) && strncmp(v, "tel:", 4)) {
                fprintf(stderr, "probe: --refer takes a sip:, sips: or tel: URI\n");
                return 2;
            }
            P.refer_to = v;
            add_act(ACT_REFER, 0);
        } else if (!strcmp(a, "--cancel-after-ring")) {
            P.cancel_after_ring = true;
        } else if (!strcmp(a, "--session-expires") || !strcmp(a, "--min-se")) {
            VAL();
            /* RFC 4028 §4: Min-SE is at least 90 s on the wire; lower only for tests */
            if (secs(a, v, 1, &val))
                return 2;
            *(a[2] == 's' ? &se : &min_se) = val;
        } else if (!strcmp(a, "--t1-ms")) {
            VAL();
            char *end;
            t1 = strtoul(v, &end, 10);
            if (!*v || *end || t1 < 10 || t1 > 10000) {
                fprintf(stderr, "probe: --t1-ms takes milliseconds (10-10000)\n");
                return 2;
            }
        } else if (!strcmp(a, "--header")) {
            VAL();
            int n = snprintf(P.hdrs + hn, sizeof P.hdrs - hn, "%s\r\n", v);
            if (n < 0 || (size_t)n >= sizeof P.hdrs - hn || strpbrk(v, "\r\n") || !strchr(v, ':')) {
                fprintf(stderr, "probe: bad --header (one 'Name: value', no line breaks)\n");
                return 2;
            }
            hn += (size_t)n;
        } else if (!strcmp(a, "--json")) {
            P.json = true;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!ruri && (!strncmp(a, "sip:", 4) || !strncmp(a, "sips:", 5))) {
            ruri = a;
        } else {
            fprintf(stderr, "probe: unexpected argument \"%s\"\n", a);
            usage(stderr);
            return 2;
        }
#undef VAL
    }
    enum tl_sip_transport tp = !strcmp(tpn, "udp")   ? TL_SIP_TP_UDP
                               : !strcmp(tpn, "tcp") ? TL_SIP_TP_TCP
                               : !strcmp(tpn, "tls") ? TL_SIP_TP_TLS
                                                     : TL_SIP_TP_OTHER;
    if (!ruri || tp == TL_SIP_TP_OTHER || (user && !have_pass) || strpbrk(from, "<>\r\n\"@;")) {
        usage(stderr);
        return 2;
    }
    if (P.json && P.invite) {
        fprintf(stderr, "probe: --json is for `probe options`\n");
        return 2;
    }
    if (!P.invite && (P.nacts || P.cancel_after_ring || se || min_se)) {
        fprintf(stderr, "probe: call options need `probe invite`\n");
        return 2;
    }
    /* the order the actions run in: by their time, hold before update before info before
     * refer at equal times (the enum order) */
    for (size_t i = 1; i < P.nacts; i++)
        for (size_t k = i; k > 0 && (P.acts[k].at_ms < P.acts[k - 1].at_ms ||
                                     (P.acts[k].at_ms == P.acts[k - 1].at_ms &&
                                      P.acts[k].kind < P.acts[k - 1].kind));
             k--) {
            struct act t = P.acts[k];
            P.acts[k] = P.acts[k - 1];
            P.acts[k - 1] = t;
        }
    struct tl_sip_uri uri;
    struct tl_pl upl = tl_pl_str(ruri);
    if (tl_sip_uri_decode(&uri, &upl) || !uri.host.l || uri.host.l > 255) {
        fprintf(stderr, "probe: \"%s\" is not a SIP URI\n", ruri);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    tl_log_open(NULL, P.json ? TL_LOG_JSON : TL_LOG_TEXT, verbose ? TL_LOG_DEBUG : TL_LOG_WARN);
    P.res_err = EIO; /* until the OPTIONS has an outcome */

    uv_loop_init(&P.loop);
    uv_timer_init(&P.loop, &P.tm);
    struct tl_sip_stack_cfg cfg = {.listen = "0.0.0.0",
                                   .t1 = (uint32_t)t1,
                                   .t2 = t1 > 4000 ? (uint32_t)t1 : 4000,
                                   .t4 = 5000,
                                   .max_conns = 8,
                                   .tcp_idle_s = 300,
                                   .host = "probe",
                                   .tls_ca_file = ca,
                                   .dns_servers = dns,
                                   .ephemeral = true};
    int err = tl_sip_stack_start(&P.s, &P.loop, &cfg);
    if (err) {
        fprintf(stderr, "probe: cannot start the SIP stack: %s\n", strerror(err));
        P.rc = 3;
        goto out;
    }

    char tag[20];
    rand_hex(tag, 8);
    rand_hex(P.callid, 16);
    snprintf(P.from, sizeof P.from, "<sip:%s@%.*s>", from, (int)uri.host.l, uri.host.p);
    snprintf(P.to, sizeof P.to, "<%s>", ruri);
    snprintf(P.tls_name, sizeof P.tls_name, "%.*s", (int)uri.host.l, uri.host.p);
    if (P.tls_name[0] == '[') { /* an IPv6 reference: the address without brackets */
        memmove(P.tls_name, P.tls_name + 1, strlen(P.tls_name));
        P.tls_name[strcspn(P.tls_name, "]")] = '\0';
    }
    struct tl_sip_peer up = {.tp = TL_SIP_TP_UDP};
    struct sockaddr_storage loc;
    uint16_t lport = 0;
    if (!tl_sip_tport_local(tl__sip_stack_tport(P.s), &up, &loc)) {
        char ignored[64];
        struct tl_sip_peer lp = {.sa = loc};
        tl_sip_peer_ip(&lp, ignored, sizeof ignored, &lport);
    }
    P.rq = (struct tl_sip_request){.method = TL_SIP_METHOD_OPTIONS,
                                   .ruri = ruri,
                                   .from = P.from,
                                   .to = P.to,
                                   .call_id = P.callid,
                                   .cseq = 1,
                                   .hdrs = hn ? P.hdrs : NULL,
                                   .tp = tp,
                                   .tls_name = P.tls_name, /* RFC 5922 §4, for reconnects too */
                                   .auth_user = user,
                                   .auth_pass = user ? pass : NULL,
                                   .auth_realm = realm};
    P.t0 = uv_now(&P.loop);
    P.rc = 3;
    if (!P.invite) {
        char ftag[640];
        snprintf(ftag, sizeof ftag, "%s;tag=%s", P.from, tag);
        snprintf(P.contact, sizeof P.contact, "<sip:probe@127.0.0.1:%u%s>", lport,
                 tp == TL_SIP_TP_TCP   ? ";transport=tcp"
                 : tp == TL_SIP_TP_TLS ? ";transport=tls"
                                       : "");
        P.rq.from = ftag;
        P.rq.contact = P.contact;
        struct tl_sip_ctsx *ct;
        err = tl_sip_stack_request(P.s, &P.rq, on_options, NULL, &ct);
        if (err) {
            P.rc = fail_rc(err);
            goto out;
        }
        uv_run(&P.loop, UV_RUN_DEFAULT);
        goto out;
    }
    /* the session layer takes the stack's dialog and stray hooks: in-dialog requests
     * (BYE, NOTIFY, a re-INVITE of the far end) and 2xx retransmissions are its business.
     * Our Contact: the one socket we have (UDP; TCP/TLS answer on the connection) */
    struct tl_sip_sess_cfg scfg = {.listen = "127.0.0.1",
                                   .tcp_port = lport,
                                   .tls_port = lport,
                                   .t1 = (uint32_t)t1,
                                   .t2 = cfg.t2,
                                   .min_se = (uint32_t)min_se,
                                   .se = (uint32_t)se,
                                   .test_policy = ""};
    if ((err = tl_sip_sess_layer_alloc(&P.layer, P.s, &scfg))) {
        fprintf(stderr, "probe: cannot start the session layer: %s\n", strerror(err));
        goto out;
    }
    P.sdp_sess = randombytes_uniform(1u << 30);
    P.rtp_port = local_rtp_port();
    make_sdp("sendrecv");
    P.rq.method = TL_SIP_METHOD_INVITE;
    P.rq.ctype = "application/sdp";
    P.rq.body = P.sdp;
    P.rq.body_len = strlen(P.sdp);
    err = tl_sip_sess_connect(&P.sess, P.layer, &P.rq, &probe_h, NULL);
    if (err) {
        P.sess = NULL;
        P.rc = fail_rc(err);
        goto out;
    }
    uv_run(&P.loop, UV_RUN_DEFAULT);
out:
    P.stopping = true;
    sodium_memzero(pass, sizeof pass);
    if (P.s)
        tl_sip_stack_stop(P.s);
    tl_sip_sess_layer_free(P.layer); /* after the stack: its ECANCELED answers reach it */
    uv_close((uv_handle_t *)&P.tm, NULL);
    uv_run(&P.loop, UV_RUN_DEFAULT);
    uv_loop_close(&P.loop);
    if (P.rtp_fd >= 0)
        close(P.rtp_fd);
    if (P.json)
        print_json();
    fflush(stdout);
    return P.rc;
}
