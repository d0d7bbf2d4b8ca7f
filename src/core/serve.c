/* The daemon: settings → logging → data directory → master key → store (migrated) →
 * first-start bootstrap → TLS certificate → API → event loop until SIGTERM/SIGINT. */
#include "core/serve.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "api/api.h"
#include "call/call.h"
#include "core/config.h"
#include "core/tlscert.h"
#include "media/media.h"
#include "sip/dialog.h"
#include "sip/inauth.h"
#include "sip/stack.h"
#include "store/records.h"
#include "store/routing.h"
#include "store/store.h"

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        int r = tl_log_reopen();
        tl_info("core", "log.reopen", "result=%s", r ? strerror(r) : "ok");
        return;
    }
    tl_info("core", "shutdown", "signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_stop(h->loop);
}

/* ---- REGISTER refusals become diagnostic events ---- */
struct reg_diag {
    struct tl_routing *routing;
    struct tl_recorder *rec;
};

/* a bounded copy of wire text for a record: printable ASCII only, the rest '?' */
static void wire_copy(char *dst, size_t cap, const char *p, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
    dst[n] = '\0';
}

/* Loop thread (tl_sip_register_h): a routing lookup in memory and a queued event, nothing
 * else. The event goes to the number the To user (else the From user) names, so its
 * owner sees it; otherwise it is operator-level. The recorder's per-number and
 * per-source limits keep a REGISTER flood from reaching the disk. */
static void on_register(const struct tl_sip_msg *m, const struct tl_sip_peer *peer, void *arg)
{
    struct reg_diag *d = arg;
    struct tl_event ev = {0};
    char to[TL_USER_MAX + 1], from[TL_USER_MAX + 1], ua[129] = "", ip[64], src[80], e164[17];
    uint16_t port;

    wire_copy(to, sizeof to, m->to.uri.user.p, m->to.uri.user.l);
    wire_copy(from, sizeof from, m->from.uri.user.p, m->from.uri.user.l);
    const struct tl_sip_hdr *h = tl_sip_msg_hdr(m, TL_SIP_HDR_USER_AGENT);
    if (h)
        wire_copy(ua, sizeof ua, h->val.p, h->val.l);
    tl_sip_peer_ip(peer, ip, sizeof ip, &port);
    snprintf(src, sizeof src, strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
    const char *tp = tl_sip_transport_name(peer->tp);
    /* the To user names the number first; the From user when To names none */
    if (tl_routing_normalise(to, e164) != 0 ||
        tl_routing_owner(d->routing, e164, ev.number_id, ev.workspace_id) != 0)
        if (tl_routing_normalise(from, e164) == 0)
            tl_routing_owner(d->routing, e164, ev.number_id, ev.workspace_id);
    tl_strlcpy(ev.code, TL_EV_REGISTRATION_ATTEMPT, sizeof ev.code);
    tl_strlcpy(ev.hint, TL_EV_HINT_REGISTRATION_ATTEMPT, sizeof ev.hint);
    snprintf(ev.message, sizeof ev.message, "REGISTER from %s over %s for \"%.64s\" refused (403)",
             src, tp ? tp : "?", to);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s}", "source", src, "transport",
                          tp ? tp : "", "method", "REGISTER", "status", 403, "to_user", to,
                          "from_user", from, "user_agent", ua);
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (txt && strlen(txt) < sizeof ev.details)
        memcpy(ev.details, txt, strlen(txt) + 1);
    free(txt);
    json_decref(j);
    tl_recorder_event(d->rec, &ev, ip);
}

static int has_any_token(const struct tl_token *t, void *arg)
{
    (void)t;
    *(bool *)arg = true;
    return 1; /* one is enough */
}

/* First start: no token exists, so nobody could ever log in. Create what a new user
 * needs and print the secrets once. Keyed on "no token" rather than "no workspace" so a
 * crash between the two steps does not lock the operator out for good. */
static int bootstrap(struct tl_store *st, const char *api_url)
{
    bool any = false;
    char next[TL_CURSOR_MAX];
    struct tl_page pg = {NULL, 1};
    struct tl_err err = {0};
    int ret = tl_store_token_list(st, NULL, &pg, has_any_token, &any, next, &err);
    if (ret && ret != 1) {
        tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
        return ret;
    }
    if (any)
        return 0;

    struct tl_workspace ws = {0};
    bool have_ws = false;
    int64_t nws = 0;
    if ((ret = tl_store_workspace_count(st, &nws)))
        return ret;
    if (nws == 0) {
        tl_strlcpy(ws.name, "default", sizeof ws.name);
        ws.plan = TL_PLAN_PROFESSIONAL;
        tl_strlcpy(ws.region, "eu", sizeof ws.region);
        if ((ret = tl_store_workspace_create(st, &ws, &err))) {
            tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
            return ret;
        }
        have_ws = true;
    }
    struct tl_token op = {0}, adm = {0};
    char op_secret[TL_TOKEN_MAX + 1], adm_secret[TL_TOKEN_MAX + 1] = "";
    op.role = TL_ROLE_OPERATOR;
    tl_strlcpy(op.name, "bootstrap operator", sizeof op.name);
    if ((ret = tl_store_token_create(st, &op, op_secret, &err))) {
        tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
        return ret;
    }
    if (have_ws) {
        adm.role = TL_ROLE_ADMIN;
        tl_strlcpy(adm.workspace_id, ws.id, sizeof adm.workspace_id);
        tl_strlcpy(adm.name, "bootstrap admin", sizeof adm.name);
        if ((ret = tl_store_token_create(st, &adm, adm_secret, &err))) {
            tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
            return ret;
        }
    }
    /* Straight to stdout, never through the logger: log files are shipped and kept,
     * a terminal is not. */
    printf("\nFirst start: ");
    if (have_ws)
        printf("created workspace \"default\" (%s, plan professional, region eu)\n"
               "with the builtin agent \"echo\".\n",
               ws.id);
    else
        printf("no API token existed; created a new operator token.\n");
    printf("These tokens are shown ONCE and stored only as hashes; keep them now:\n\n");
    printf("  operator token:          %s\n", op_secret);
    if (have_ws)
        printf("  workspace admin token:   %s\n", adm_secret);
    /* the binary is usually not on PATH yet (make, not make install): show its real path */
    char self[512];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    printf("\nTry:\n  export TRUNKLINE_URL=%s TRUNKLINE_TOKEN=%s\n"
           "  %s numbers list\n\n",
           api_url, have_ws ? adm_secret : op_secret, sl > 0 ? self : "trunkline");
    fflush(stdout);
    sodium_memzero(op_secret, sizeof op_secret);
    sodium_memzero(adm_secret, sizeof adm_secret);
    return 0;
}

int tl_serve_main(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            tl_config_usage(stdout);
            return 0;
        }
    struct tl_config cfg;
    struct tl_err err = {0};
    if (tl_config_load(&cfg, argc, argv, &err)) {
        fprintf(stderr, "trunkline: %s\n", err.message);
        return 2;
    }
    int r = tl_log_open(cfg.log_file, cfg.log_format, cfg.log_level);
    if (r) {
        fprintf(stderr, "trunkline: cannot open log file %s: %s\n", cfg.log_file, strerror(r));
        return 2;
    }
    if (sodium_init() < 0) {
        tl_error("core", "start.failed", "reason=\"libsodium cannot initialise\"");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    int code = 1;
    struct tl_store *st = NULL;
    struct tl_api *api = NULL;
    uint8_t key[32];
    bool created = false;
    uv_loop_t loop;
    uv_signal_t sig[3];
    bool loop_ok = false;
    struct tl_sip_stack *sip = NULL;
    struct tl_sip_sess_layer *sess = NULL;
    struct tl_sip_inauth *tauth = NULL;
    struct tl_routing *routing = NULL;
    struct tl_recorder *rec = NULL;
    struct reg_diag regd = {0};
    struct tl_media_engine *media = NULL;
    struct tl_call_layer *calls = NULL;

    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        tl_error("core", "start.failed", "reason=\"cannot create data_dir %s: %s\"", cfg.data_dir,
                 strerror(errno));
        goto out;
    }
    if (tl_master_key_load(cfg.data_dir, key, &created, &err)) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    if (created)
        tl_info("core", "master_key.created", "path=%s/master.key mode=0600", cfg.data_dir);

    char db[600];
    snprintf(db, sizeof db, "%s/trunkline.db", cfg.data_dir);
    if (tl_store_open(&st, db, key, &err)) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    tl_info("store", "open", "path=%s schema=%d", db, tl_store_schema_version(st));
    /* before the API: the routing cache hooks every write from its first one */
    if ((r = tl_routing_open(&routing, st)) || (r = tl_recorder_open(&rec, st, NULL))) {
        tl_error("core", "start.failed", "reason=\"routing cache / recorder: %s\"", strerror(r));
        goto out;
    }
    regd = (struct reg_diag){routing, rec};

    char cert[512], ckey[512], fp[100];
    bool made = false;
    if (cfg.tls_cert[0]) {
        tl_strlcpy(cert, cfg.tls_cert, sizeof cert);
        tl_strlcpy(ckey, cfg.tls_key, sizeof ckey);
        r = tl_tlscert_check(cert, ckey, fp, &err);
    } else {
        r = tl_tlscert_ensure(cfg.data_dir, cfg.public_host, cert, ckey, fp, &made, &err);
    }
    if (r) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    tl_info("tls", made ? "certificate.created" : "certificate.loaded",
            "cert=%s sha256=%s self_made=%s", cert, fp, cfg.tls_cert[0] ? "no" : "yes");

    struct tl_api_config acfg = {.listen = cfg.api_listen,
                                 .public_host = cfg.public_host,
                                 .sip_tcp_port = cfg.sip_tcp_port,
                                 .sip_tls_port = cfg.sip_tls_port,
                                 .max_body = cfg.api_max_body,
                                 /* the UI's set-up guidance and trunk check */
                                 .public_ip = cfg.public_ip,
                                 .sip_listen = cfg.sip_listen,
                                 .sip_tls_ca_file = cfg.sip_tls_ca_file,
                                 .sip_dns_servers = cfg.sip_dns_servers,
                                 .sip_t1_ms = cfg.sip_t1_ms};
    if (tl_api_start(&api, &acfg, st, &err)) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    int port = tl_api_port(api);
    /* a wildcard listen address is not somewhere to connect to: show loopback instead */
    char host[128], api_url[200];
    tl_strlcpy(host, cfg.api_listen, sizeof host);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "*"))
        tl_strlcpy(host, "127.0.0.1", sizeof host);
    else if (!strcmp(host, "[::]"))
        tl_strlcpy(host, "[::1]", sizeof host);
    snprintf(api_url, sizeof api_url, "http://%s:%d", host, port);
    if (bootstrap(st, api_url))
        goto out;

    uv_loop_init(&loop);
    loop_ok = true;
    int signums[3] = {SIGTERM, SIGINT, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, &sig[i]);
        uv_signal_start(&sig[i], on_signal, signums[i]);
    }
    /* ---- SIP stack: start (after the API) ---- */
    {
        const char *pol = cfg.sip_test_policy;
        if (pol[0] && strcmp(pol, "answer") && strcmp(pol, "ring") &&
            strncmp(pol, "answer-bye:", 11)) {
            tl_error("core", "start.failed",
                     "reason=\"sip_test_policy must be empty, answer, answer-bye:N or ring\"");
            goto out;
        }
        struct tl_sip_stack_cfg scfg = {cfg.sip_listen,
                                        cfg.sip_udp,
                                        cfg.sip_tcp_port,
                                        cfg.sip_tls_port,
                                        cert,
                                        ckey,
                                        cfg.sip_t1_ms,
                                        cfg.sip_t2_ms,
                                        cfg.sip_t4_ms,
                                        cfg.sip_max_connections,
                                        cfg.sip_tcp_idle_s,
                                        pol,
                                        cfg.public_host,
                                        cfg.sip_tls_ca_file,
                                        NULL,
                                        cfg.sip_dns_servers,
                                        false};
        if ((r = tl_sip_stack_start(&sip, &loop, &scfg))) {
            tl_error("core", "start.failed", "reason=\"SIP listen on %s ports %d/%d: %s\"",
                     cfg.sip_listen, cfg.sip_tcp_port, cfg.sip_tls_port, strerror(r));
            goto out;
        }
        tl_sip_stack_set_register_h(sip, on_register, &regd);
        /* dialogs and INVITE sessions (and the test policy's calls) on the stack */
        struct tl_sip_sess_cfg dcfg = {.listen = cfg.public_ip[0] ? cfg.public_ip : cfg.sip_listen,
                                       .tcp_port = cfg.sip_tcp_port,
                                       .tls_port = cfg.sip_tls_port,
                                       .t1 = cfg.sip_t1_ms,
                                       .t2 = cfg.sip_t2_ms,
                                       .min_se = cfg.sip_min_se,
                                       .test_policy = pol};
        if ((r = tl_sip_sess_layer_alloc(&sess, sip, &dcfg))) {
            tl_error("core", "start.failed", "reason=\"SIP session layer: %s\"", strerror(r));
            goto out;
        }
        /* test calls behind digest auth, realm = our public host (carriers' INVITEs to us) */
        if (cfg.sip_test_auth[0]) {
            r = tl_sip_inauth_new(&tauth, cfg.public_host, cfg.sip_test_auth,
                                  cfg.sip_digest_algorithms, cfg.sip_nonce_ttl_s);
            sodium_memzero(cfg.sip_test_auth, sizeof cfg.sip_test_auth);
            if (r) {
                tl_error("core", "start.failed",
                         "reason=\"sip_test_auth must be user:password (printable ASCII) and "
                         "sip_digest_algorithms SHA-256,MD5 or a part of it: %s\"",
                         strerror(r));
                goto out;
            }
            tl_sip_sess_test_auth(sess, tauth);
        }
    }
    /* ---- calls: media engine + the call layer on the INVITE hook (not with a test policy,
     * which answers INVITEs itself for the SIP tests) ---- */
    if (!cfg.sip_test_policy[0]) {
        struct tl_media_config mcfg = {.port_min = (uint16_t)cfg.rtp_port_min,
                                       .port_max = (uint16_t)cfg.rtp_port_max,
                                       .public_ip = cfg.public_ip};
        struct tl_call_cfg ccfg = {.stack = sip,
                                   .sess = sess,
                                   .routing = routing,
                                   .rec = rec,
                                   .host = cfg.public_host,
                                   .public_ip = cfg.public_ip,
                                   .digest_algorithms = cfg.sip_digest_algorithms,
                                   .nonce_ttl_s = cfg.sip_nonce_ttl_s,
                                   .media_timeout_s = cfg.media_timeout_s,
                                   .max_duration_s = cfg.max_call_duration_s,
                                   .max_calls = cfg.max_calls,
                                   .max_calls_per_workspace = cfg.max_calls_per_workspace,
                                   .invite_rate = cfg.sip_invite_rate,
                                   .answer_delay_ms = cfg.call_answer_delay_ms,
                                   .loop = &loop};
        if (cfg.rtp_port_min > cfg.rtp_port_max || cfg.rtp_port_max - cfg.rtp_port_min < 3) {
            tl_error("core", "start.failed", "reason=\"rtp_port_min must be below rtp_port_max\"");
            goto out;
        }
        if ((r = tl_media_engine_new(&loop, &mcfg, &media)) ||
            (ccfg.media = media, r = tl_call_layer_open(&calls, &ccfg))) {
            tl_error("core", "start.failed", "reason=\"media engine / call layer: %s\"",
                     strerror(r));
            goto out;
        }
    }
    /* ---- end SIP stack start ---- */
    tl_info("core", "ready", "api=http://%s/v1/ api_port=%d pid=%d", cfg.api_listen, port,
            (int)getpid());
    printf("trunkline is running. REST API: http://%s/v1/  (health: /healthz)\n", cfg.api_listen);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    code = 0;

out:
    if (loop_ok) {
        tl_call_layer_close(calls);   /* BYE/503 to every call, records queued */
        tl_sip_stack_stop(sip);       /* ---- SIP stack: stop (before the API) ---- */
        tl_sip_sess_layer_free(sess); /* after the stack: its ECANCELED answers come first */
        tl_sip_inauth_free(tauth);    /* borrowed by the session layer */
        for (int i = 0; i < 3; i++)
            uv_close((uv_handle_t *)&sig[i], NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        /* media sockets close asynchronously; the engine goes once none is left */
        for (int i = 0; media && i < 100 && tl_media_engine_streams(media); i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        if (media && !tl_media_engine_close(media))
            uv_run(&loop, UV_RUN_NOWAIT);
        uv_loop_close(&loop);
    }
    if (api)
        tl_api_stop(api);
    tl_recorder_close(rec); /* after every producer (SIP, API), before the store */
    tl_routing_close(routing);
    if (st)
        tl_store_close(st);
    sodium_memzero(key, sizeof key);
    tl_info("core", "stopped", "code=%d", code);
    tl_log_close();
    return code;
}
