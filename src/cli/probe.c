/* cli/probe: `trunkline probe`, a trunk test tool for telephony engineers. It runs the SIP
 * stack itself on a loop of its own (no daemon, no database): resolution (RFC 3263), TLS
 * verification and digest behave exactly as they will for the gateway's outbound calls.
 *
 *   trunkline probe [options|invite] sip:+4930123@carrier.example[:port]
 *         [--transport udp|tcp|tls] [--username U (--password P | --password-stdin)]
 *         [--realm R] [--from +E164] [--header 'Name: value']... [--ca-file PEM]
 *         [--hold SECONDS] [--dns-server ip:port] [--verbose]
 *
 * OPTIONS prints the status line and the elapsed time. INVITE sends an SDP offer (PCMU,
 * PCMA, telephone-event; a real local UDP port so early media has somewhere to go), prints
 * every response, ACKs a 2xx, holds the call, sends BYE and prints its response.
 * Exit: 0 on 2xx, 1 on a final error response, 2 usage, 3 timeout / transport / TLS /
 * DNS failure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "sip/stack.h"

#define PROBE_HDRS_MAX 4096

struct probe {
    uv_loop_t loop;
    struct tl_sip_stack *s;
    uv_timer_t hold;
    uint64_t t0;
    int rc;
    bool invite, stopping, acked, byed;
    unsigned hold_s;
    struct tl_sip_request rq; /* the INVITE / OPTIONS */
    char from[600], to[600], callid[80], contact[200], hdrs[PROBE_HDRS_MAX];
    char sdp[512];
    char tls_name[260]; /* the Request-URI host (RFC 5922 §4) */
    /* the dialog after a 2xx (§12.1.2): enough for ACK and BYE */
    char d_to[600], d_target[600], d_route[2048];
    uint32_t d_cseq;
    struct tl_sip_peer d_peer;
    int rtp_fd;
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
    const char *what = err == ETIMEDOUT ? "no response (timeout)"
                       : err == EPROTO  ? "TLS failure (see the reason logged above)"
                       : err == ENOENT  ? "the host did not resolve to any target"
                                        : strerror(err);
    printf("error: %s (%lu ms)\n", what, elapsed());
    return 3;
}

static void print_resp(const char *what, const struct tl_sip_msg *m)
{
    printf("%s: SIP/2.0 %u %.*s (%lu ms)\n", what, m->scode, (int)m->reason.l, m->reason.p,
           elapsed());
    fflush(stdout);
}

static int copy_pl(char *dst, size_t cap, const struct tl_pl *pl)
{
    if (pl->l >= cap)
        return E2BIG;
    memcpy(dst, pl->p, pl->l);
    dst[pl->l] = '\0';
    return 0;
}

static void send_ack(void)
{
    struct tl_sip_request a = P.rq;
    a.ruri = P.d_target;
    a.to = P.d_to;
    a.cseq = P.d_cseq;
    a.route = P.d_route[0] ? P.d_route : NULL;
    a.dest = &P.d_peer;
    a.body = NULL;
    a.body_len = 0;
    a.ctype = NULL;
    a.contact = NULL;
    a.hdrs = NULL;
    int err = tl_sip_stack_ack(P.s, &a);
    if (err)
        printf("ACK not sent: %s\n", strerror(err));
}

static void on_bye(struct tl_sip_ctsx *ct, const struct tl_sip_msg *m, int err, void *arg)
{
    (void)ct;
    (void)arg;
    if (P.stopping)
        return;
    if (!m) {
        done(fail_rc(err));
        return;
    }
    print_resp("BYE", m);
    if (m->scode >= 200)
        done(m->scode < 300 ? 0 : 1);
}

static void send_bye(void)
{
    if (P.byed)
        return;
    P.byed = true;
    struct tl_sip_request b = P.rq;
    b.method = TL_SIP_METHOD_BYE;
    b.ruri = P.d_target;
    b.to = P.d_to;
    b.cseq = P.d_cseq + 1;
    b.route = P.d_route[0] ? P.d_route : NULL;
    b.dest = &P.d_peer;
    b.body = NULL;
    b.body_len = 0;
    b.ctype = NULL;
    b.contact = NULL;
    struct tl_sip_ctsx *ct;
    int err = tl_sip_stack_request(P.s, &b, on_bye, NULL, &ct);
    if (err)
        done(fail_rc(err));
}

static void on_hold(uv_timer_t *t)
{
    (void)t;
    send_bye();
}

/* §12.1.2: remote target from Contact, route set from Record-Route reversed */
static int learn_dialog(const struct tl_sip_msg *m)
{
    const struct tl_sip_hdr *to = tl_sip_msg_hdr(m, TL_SIP_HDR_TO);
    int err = to ? copy_pl(P.d_to, sizeof P.d_to, &to->val) : EBADMSG;
    const struct tl_sip_hdr *ch = tl_sip_msg_hdr(m, TL_SIP_HDR_CONTACT);
    struct tl_sip_contact c;
    if (!err && ch && !tl_sip_contact_decode(&c, &ch->val) && !c.star)
        err = copy_pl(P.d_target, sizeof P.d_target, &c.addr.auri);
    else if (!err)
        snprintf(P.d_target, sizeof P.d_target, "%s", P.rq.ruri);
    P.d_route[0] = '\0';
    size_t n = 0;
    for (size_t i = m->hdrc; !err && i-- > 0;) {
        if (m->hdrv[i].id != TL_SIP_HDR_RECORD_ROUTE)
            continue;
        const struct tl_pl *v = &m->hdrv[i].val;
        if (n + v->l + 3 >= sizeof P.d_route)
            return E2BIG;
        n += (size_t)snprintf(P.d_route + n, sizeof P.d_route - n, "%s%.*s", n ? ", " : "",
                              (int)v->l, v->p);
    }
    P.d_cseq = m->cseq.num;
    return err;
}

static void on_invite(struct tl_sip_ctsx *ct, const struct tl_sip_msg *m, int err, void *arg)
{
    (void)arg;
    if (P.stopping)
        return;
    if (!m) {
        done(fail_rc(err));
        return;
    }
    print_resp("INVITE", m);
    if (m->scode < 200)
        return;
    if (m->scode >= 300) {
        done(1);
        return;
    }
    P.d_peer = *tl_sip_ctsx_peer(ct);
    P.rq.tls_name = P.tls_name; /* a reconnect for ACK/BYE verifies the same name */
    if ((err = learn_dialog(m))) {
        printf("error: unusable 2xx (%s)\n", strerror(err));
        done(1);
        return;
    }
    send_ack();
    P.acked = true;
    printf("call up, holding %u s\n", P.hold_s);
    fflush(stdout);
    uv_timer_start(&P.hold, on_hold, (uint64_t)P.hold_s * 1000, 0);
}

static void on_options(struct tl_sip_ctsx *ct, const struct tl_sip_msg *m, int err, void *arg)
{
    (void)ct;
    (void)arg;
    if (P.stopping)
        return;
    if (!m) {
        done(fail_rc(err));
        return;
    }
    print_resp("OPTIONS", m);
    if (m->scode >= 200)
        done(m->scode < 300 ? 0 : 1);
}

/* 2xx retransmissions (our ACK was lost, §13.2.2.4): ACK again */
static void on_stray(struct tl_sip_stack *s, const struct tl_sip_msg *m,
                     const struct tl_sip_peer *peer, void *arg)
{
    (void)s;
    (void)peer;
    (void)arg;
    if (P.acked && m->req == false && tl_pl_eq_str(&m->callid, P.callid))
        send_ack();
}

/* the far end hangs up first: 200 to its BYE, and we are done */
static void on_dialog_req(struct tl_sip_stack *s, struct tl_sip_tsx *tx, const struct tl_sip_msg *m,
                          void *arg)
{
    (void)arg;
    bool ours = tl_pl_eq_str(&m->callid, P.callid);
    tl_sip_stack_reply(s, tx, m, tl_sip_tsx_peer(tx), ours ? 200 : 481, NULL, NULL, NULL, NULL, 0);
    if (ours && m->mid == TL_SIP_METHOD_BYE && !P.byed) {
        printf("BYE received from the far end (%lu ms)\n", elapsed());
        P.byed = true;
        done(0);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: trunkline probe [options|invite] sip:NUMBER@HOST[:PORT]\n"
               "         [--transport udp|tcp|tls] [--username U (--password P | "
               "--password-stdin)]\n"
               "         [--realm R] [--from +E164] [--header 'Name: value']... [--ca-file PEM]\n"
               "         [--hold SECONDS] [--dns-server IP:PORT] [--verbose]\n"
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

int tl_probe_main(int argc, char **argv);
int tl_probe_main(int argc, char **argv)
{
    const char *ruri = NULL, *tpn = "udp", *user = NULL, *realm = NULL, *from = "probe";
    const char *ca = NULL, *dns = NULL;
    char pass[256] = "";
    bool have_pass = false, verbose = false;
    size_t hn = 0;
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
            char *end;
            unsigned long h = strtoul(v, &end, 10);
            if (*end || h > 86400) {
                fprintf(stderr, "probe: --hold takes seconds (0-86400)\n");
                return 2;
            }
            P.hold_s = (unsigned)h;
        } else if (!strcmp(a, "--header")) {
            VAL();
            int n = snprintf(P.hdrs + hn, sizeof P.hdrs - hn, "%s\r\n", v);
            if (n < 0 || (size_t)n >= sizeof P.hdrs - hn || strpbrk(v, "\r\n") || !strchr(v, ':')) {
                fprintf(stderr, "probe: bad --header (one 'Name: value', no line breaks)\n");
                return 2;
            }
            hn += (size_t)n;
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
    struct tl_sip_uri uri;
    struct tl_pl upl = tl_pl_str(ruri);
    if (tl_sip_uri_decode(&uri, &upl) || !uri.host.l || uri.host.l > 255) {
        fprintf(stderr, "probe: \"%s\" is not a SIP URI\n", ruri);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    tl_log_open(NULL, TL_LOG_TEXT, verbose ? TL_LOG_DEBUG : TL_LOG_WARN);

    uv_loop_init(&P.loop);
    uv_timer_init(&P.loop, &P.hold);
    struct tl_sip_stack_cfg cfg = {.listen = "0.0.0.0",
                                   .t1 = 500,
                                   .t2 = 4000,
                                   .t4 = 5000,
                                   .max_conns = 8,
                                   .tcp_idle_s = 300,
                                   .test_policy = "",
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
    tl_sip_stack_set_stray_h(P.s, on_stray, NULL);
    tl_sip_stack_set_dialog_h(P.s, on_dialog_req, NULL);

    char tag[20];
    rand_hex(tag, 8);
    rand_hex(P.callid, 16);
    snprintf(P.from, sizeof P.from, "<sip:%s@%.*s>;tag=%s", from, (int)uri.host.l, uri.host.p, tag);
    snprintf(P.to, sizeof P.to, "<%s>", ruri);
    snprintf(P.tls_name, sizeof P.tls_name, "%.*s", (int)uri.host.l, uri.host.p);
    if (P.tls_name[0] == '[') { /* an IPv6 reference: the address without brackets */
        memmove(P.tls_name, P.tls_name + 1, strlen(P.tls_name));
        P.tls_name[strcspn(P.tls_name, "]")] = '\0';
    }
    struct tl_sip_peer up = {.tp = TL_SIP_TP_UDP};
    struct sockaddr_storage loc;
    uint16_t lport = 0;
    char lip[64] = "127.0.0.1";
    if (!tl_sip_tport_local(tl__sip_stack_tport(P.s), &up, &loc)) {
        char ignored[64];
        struct tl_sip_peer lp = {.sa = loc};
        tl_sip_peer_ip(&lp, ignored, sizeof ignored, &lport);
    }
    snprintf(P.contact, sizeof P.contact, "<sip:probe@%s:%u%s>", lip, lport,
             tp == TL_SIP_TP_TCP   ? ";transport=tcp"
             : tp == TL_SIP_TP_TLS ? ";transport=tls"
                                   : "");
    P.rq =
        (struct tl_sip_request){.method = P.invite ? TL_SIP_METHOD_INVITE : TL_SIP_METHOD_OPTIONS,
                                .ruri = ruri,
                                .from = P.from,
                                .to = P.to,
                                .call_id = P.callid,
                                .cseq = 1,
                                .contact = P.contact,
                                .hdrs = hn ? P.hdrs : NULL,
                                .tp = tp,
                                .auth_user = user,
                                .auth_pass = user ? pass : NULL,
                                .auth_realm = realm};
    if (P.invite) {
        snprintf(P.sdp, sizeof P.sdp,
                 "v=0\r\no=- %u 1 IN IP4 127.0.0.1\r\ns=trunkline probe\r\n"
                 "c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\n"
                 "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
                 "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
                 randombytes_uniform(1u << 30), local_rtp_port());
        P.rq.ctype = "application/sdp";
        P.rq.body = P.sdp;
        P.rq.body_len = strlen(P.sdp);
    }
    P.t0 = uv_now(&P.loop);
    struct tl_sip_ctsx *ct;
    err = tl_sip_stack_request(P.s, &P.rq, P.invite ? on_invite : on_options, NULL, &ct);
    if (err) {
        P.rc = fail_rc(err);
        goto out;
    }
    P.rc = 3;
    uv_run(&P.loop, UV_RUN_DEFAULT);
out:
    P.stopping = true;
    sodium_memzero(pass, sizeof pass);
    if (P.s)
        tl_sip_stack_stop(P.s);
    uv_close((uv_handle_t *)&P.hold, NULL);
    uv_run(&P.loop, UV_RUN_DEFAULT);
    uv_loop_close(&P.loop);
    if (P.rtp_fd >= 0)
        close(P.rtp_fd);
    fflush(stdout);
    return P.rc;
}
