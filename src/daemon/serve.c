/* The daemon: settings → logging → data directory → master key → store (migrated) →
 * first-start bootstrap → TLS certificate → API → event loop until SIGTERM/SIGINT. */
#include "daemon/serve.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <uv.h>

#include "agent/agent.h"
#include "api/api.h"
#include "core/mailbox.h"
#include "call/call.h"
#include "daemon/config.h"
#include "net/guard.h"
#include "net/http.h"
#include "net/resolve.h"
#include "net/tls.h"
#include "net/tlscert.h"
#include "media/media.h"
#include "sip/dialog.h"
#include "sip/inauth.h"
#include "sip/stack.h"
#include "store/cluster.h"
#include "store/records.h"
#include "call/routing.h"
#include "store/store.h"

/* the API's call control, handed to the loop (call/control.c) */
struct control {
    struct tl_call_layer *calls;
    struct tl_mailbox *mb;
    struct tl_recorder *rec;
};

static int daemon_control(void *arg, const char *workspace_id, const char *call_id, int op,
                          const char *param, char status[16])
{
    _Static_assert((int)TL_API_CALL_HANGUP == (int)TL_CALL_CTL_HANGUP &&
                       (int)TL_API_CALL_TRANSFER == (int)TL_CALL_CTL_TRANSFER &&
                       (int)TL_API_CALL_DIGITS == (int)TL_CALL_CTL_DIGITS &&
                       (int)TL_API_CALL_STATUS == (int)TL_CALL_CTL_STATUS,
                   "api.h and call.h number the operations alike");
    struct control *c = arg;
    return tl_call_control(c->calls, c->mb, workspace_id, call_id, (enum tl_call_ctl_op)op, param,
                           status, 2000);
}

/* Graceful shutdown (issue 11 item 10). The first SIGTERM/SIGINT drains: new INVITEs and
 * OPTIONS get 503 + Retry-After (a load balancer moves on), calls in progress carry on
 * until they end or drain_timeout_s passes. Then every call still up gets our BYE, and
 * the stack stays up until those BYEs are answered or fail (their retransmissions and
 * timer F, 64*T1), so the record says how each really ended. A second signal ends at
 * once. */
#define DRAIN_RETRY_AFTER_S 30
static struct {
    unsigned signals;
    bool draining;
    uint64_t deadline; /* loop ms: drain, then BYE wait */
    uv_timer_t tm;
    bool tm_on;
    struct tl_call_layer *calls;
    struct tl_sip_stack *sip;
    struct tl_media_engine *media;
    unsigned drain_s;
} shut;

static void on_shut_tick(uv_timer_t *t)
{
    if (shut.signals >= 2 || uv_now(t->loop) >= shut.deadline ||
        (shut.draining && tl_call_count(shut.calls) == 0))
        uv_stop(t->loop);
}

static void shut_timer(uv_loop_t *loop, uint64_t deadline)
{
    shut.deadline = deadline;
    if (!shut.tm_on) {
        uv_timer_init(loop, &shut.tm);
        shut.tm_on = true;
    }
    uv_timer_start(&shut.tm, on_shut_tick, 100, 100);
}

/* the SIP transport's reserved slots ask the routing cache (issue 11 item 1) */
static bool source_trusted(const struct sockaddr *sa, void *arg)
{
    return tl_routing_source_trusted(arg, sa);
}

static int daemon_place(void *arg, const struct tl_call_request *rq, struct tl_call_record *rec)
{
    struct control *c = arg;
    return tl_call_place(c->calls, c->mb, rq, rec, 2000);
}

static int daemon_snapshot(void *arg, const char *workspace_id, const char *call_id,
                           struct tl_call_record *rec)
{
    struct control *c = arg;
    return tl_call_snapshot(c->calls, c->mb, workspace_id, call_id, rec, 2000);
}

static void daemon_flush(void *arg)
{
    struct control *c = arg;
    tl_recorder_flush(c->rec);
}

static void daemon_event(void *arg, const struct tl_event *e, const char *source)
{
    struct control *c = arg;
    tl_recorder_event(c->rec, e, source);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGHUP) {
        int r = tl_log_reopen();
        tl_info("core", "log.reopen", "result=%s", r ? strerror(r) : "ok");
        return;
    }
    if (signum == SIGUSR1) { /* what is open now: for operators and bench/soak */
        struct tl_media_load ld = {0};
        if (shut.media)
            tl_media_engine_load(shut.media, &ld);
        tl_info("core", "stats",
                "calls=%zu server_tsx=%zu media_streams=%u loop_busy_pct=%.1f clock_late_ms=%.2f",
                tl_call_count(shut.calls), tl_sip_stack_server_tsx(shut.sip),
                shut.media ? tl_media_engine_streams(shut.media) : 0, ld.busy_pct, ld.late_ms);
        return;
    }
    const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";
    shut.signals++;
    if (shut.signals == 1 && shut.calls && shut.drain_s && tl_call_count(shut.calls) > 0) {
        tl_info("core", "drain", "signal=%s calls=%zu timeout_s=%u", name,
                tl_call_count(shut.calls), shut.drain_s);
        shut.draining = true;
        tl_call_layer_drain(shut.calls, DRAIN_RETRY_AFTER_S);
        tl_sip_stack_drain(shut.sip, DRAIN_RETRY_AFTER_S);
        shut_timer(h->loop, uv_now(h->loop) + (uint64_t)shut.drain_s * 1000);
        return;
    }
    tl_info("core", "shutdown", "signal=%s%s", name, shut.signals > 1 ? " now=yes" : "");
    uv_stop(h->loop);
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
    /* from here on no thread waits for the log's output (issue 11 item 8) */
    if ((r = tl_log_start_writer()))
        fprintf(stderr, "trunkline: log writer thread: %s (logging synchronously)\n", strerror(r));
    if (sodium_init() < 0) {
        tl_error("core", "start.failed", "reason=\"libsodium cannot initialise\"");
        return 1;
    }
    if (tl_http_global_init()) {
        tl_error("core", "start.failed", "reason=\"libcurl cannot initialise\"");
        return 1;
    }
    /* libuv's worker pool runs TwiML fetches, status callbacks and speech: each may wait
     * up to its timeout on a slow bot, so the default four threads would let four slow
     * bots delay every other call's TwiML. Read by libuv at the pool's first use. */
    setenv("UV_THREADPOOL_SIZE", "64", 0);
    signal(SIGPIPE, SIG_IGN);

    int code = 1;
    struct tl_store *st = NULL;
    struct tl_api *api = NULL;
    uint8_t key[32], nonce_secret[32];
    bool created = false;
    uv_loop_t loop;
    uv_signal_t sig[4];
    bool loop_ok = false;
    struct tl_sip_stack *sip = NULL;
    struct tl_sip_sess_layer *sess = NULL;
    struct tl_sip_inauth *tauth = NULL;
    struct tl_routing *routing = NULL;
    struct tl_recorder *rec = NULL;
    struct tl_call_regdiag regd = {0};
    struct tl_media_engine *media = NULL;
    struct tl_call_layer *calls = NULL;
    bool calls_freed = false;
    /* what WebSocket agents share: DNS, TLS client context, the address guard */
    struct tl_agent_env aenv = {0};
    struct tl_net_guard aguard;
    struct tl_net_guard eguard; /* sip_edge_addresses: lives as long as the SIP stack */
    struct tl_net_resolver *ares = NULL;
    struct tl_tls_ctx *atls = NULL;
    struct tl_mailbox *mb = NULL; /* the API's requests to the loop (call control) */
    struct control ctl = {0};
    struct tl_webhooks *hooks = NULL; /* the webhook sender's thread */
    /* a shared store: the per-workspace call counts of the nodes, on a connection of their
     * own so a sync round never queues behind an API write (or the other way round) */
    struct tl_cluster *cluster = NULL;
    struct tl_store *cst = NULL;

    /* the nonce key rotates daily (digest.h): a nonce must not outlive two epochs */
    if (cfg.sip_nonce_ttl_s >= TL_SIP_DIGEST_EPOCH_DEFAULT) {
        tl_error("core", "start.failed", "reason=\"sip_nonce_ttl_s must be below %u\"",
                 (unsigned)TL_SIP_DIGEST_EPOCH_DEFAULT);
        goto out;
    }
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        tl_error("core", "start.failed", "reason=\"cannot create data_dir %s: %s\"", cfg.data_dir,
                 strerror(errno));
        goto out;
    }
    enum tl_master_key_source ksrc;
    struct tl_master_key_opts kopts = {.env_value = getenv(TL_MASTER_KEY_ENV_NAME),
                                       .key_file = cfg.master_key_file,
                                       .data_dir = cfg.data_dir,
                                       .create = true};
    r = tl_data_dir_check(cfg.data_dir, &err);
    if (!r)
        r = tl_master_key_resolve(&kopts, key, &ksrc, &created, &err);
    /* read once, then gone: the trunk check's child process (api/check.c) inherits the
     * environment, and /proc/<pid>/environ shows the bytes the process started with */
    if (kopts.env_value) {
        sodium_memzero((char *)kopts.env_value, strlen(kopts.env_value));
        unsetenv(TL_MASTER_KEY_ENV_NAME);
    }
    if (r) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    if (created)
        tl_info("core", "master_key.created", "path=%s/master.key mode=0600", cfg.data_dir);
    char key_id[TL_KEY_ID_LEN + 1];
    tl_master_key_id(key, key_id);
    /* the id, never the key: operators compare it across nodes */
    tl_info("core", "master_key.loaded", "source=%s key_id=%s", tl_master_key_source_name(ksrc),
            key_id);
    /* the digest nonce key, shared by every node with this master key (call.c) */
    tl_master_key_derive(key, 1, "tlnonce1", nonce_secret);

    char db[1100], dbpw[TL_STORE_PASSWORD_MAX];
    int dbret = tl_store_target(cfg.store, cfg.data_dir, cfg.store_password_file, db, sizeof db,
                                dbpw, sizeof dbpw, &err);
    if (dbret == 0)
        dbret = tl_store_open_ex(&st, db, dbpw, key, tl_store_latest_version(), &err);
    /* checked on every node, shared store or not: a bad setting stops the node at start
     * rather than when it first joins a cluster */
    if (dbret == 0 && (cfg.cluster_sync_ms < 10 || cfg.cluster_sync_ms > 10000))
        dbret =
            tl_err_set(&err, EINVAL, 500, "internal", "", "cluster_sync_ms must be 10 to 10000");
    if (dbret == 0 && tl_store_shared(st)) {
        dbret = tl_store_open_ex(&cst, db, dbpw, key, tl_store_latest_version(), &err);
        if (dbret == 0 &&
            tl_cluster_new(&cluster, &(struct tl_cluster_cfg){.sync_ms = cfg.cluster_sync_ms}))
            dbret = tl_err_set(&err, ENOMEM, 500, "internal", "", "Out of memory.");
    }
    sodium_memzero(dbpw, sizeof dbpw);
    if (dbret) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    /* the target never holds the password (tl_store_target refuses one) */
    tl_info("store", "open", "backend=%s store=\"%s\" schema=%d", tl_store_backend(st), db,
            tl_store_schema_version(st));
    /* calls the last process left up (kill -9, crash, power cut): no BYE of ours will ever
     * end them, so close them now, before this process takes any call */
    int64_t reopened = 0;
    if (cluster) /* its calls' records name it: another node starting spares them */
        tl_store_set_node_id(st, tl_cluster_node_id(cluster));
    if (tl_store_calls_close_open(st, "gateway_restart", tl_now_ms(), TL_CLUSTER_GC_MS, &reopened,
                                  &err)) {
        tl_error("core", "start.failed", "reason=\"%s\"", err.message);
        goto out;
    }
    if (reopened)
        tl_warnl("store", "calls.closed_at_start", "calls=%lld end_reason=gateway_restart",
                 (long long)reopened);
    /* the change feed before the routing cache's load: a change another node commits
     * during the load is then either in the load or notified after it (issue 13) */
    if ((r = tl_store_feed_start(st, cfg.store_resync_s))) {
        tl_error("core", "start.failed", "reason=\"change feed: %s\"", strerror(r));
        goto out;
    }
    /* before the API: the routing cache hooks every write from its first one */
    if ((r = tl_routing_open(&routing, st)) || (r = tl_recorder_open(&rec, st, NULL))) {
        tl_error("core", "start.failed", "reason=\"routing cache / recorder: %s\"", strerror(r));
        goto out;
    }
    regd = (struct tl_call_regdiag){routing, rec, NULL}; /* stack: tl_call_register_events */
    /* the webhook sender: its deliveries wait in the store, so it starts with what a
     * previous run left (a restart loses none) */
    struct tl_webhooks_cfg hcfg = {.allow_networks = cfg.agent_allow_networks,
                                   .insecure_hosts = cfg.agent_insecure_hosts,
                                   .ca_file = cfg.agent_tls_ca_file,
                                   .retry_base_ms = cfg.webhook_retry_base_ms,
                                   .max_attempts = cfg.webhook_max_attempts,
                                   .timeout_ms = cfg.webhook_timeout_ms};
    if ((r = tl_http_global_init()) || tl_webhooks_start(&hooks, st, &hcfg, &err)) {
        tl_error("core", "start.failed", "reason=\"webhooks: %s\"",
                 r ? "libcurl cannot initialise" : err.message);
        goto out;
    }
    tl_recorder_set_delivery_hook(rec, tl_webhooks_kick, hooks);

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
                                 .sip_t1_ms = cfg.sip_t1_ms,
                                 .agent_allow_networks = cfg.agent_allow_networks,
                                 .agent_insecure_hosts = cfg.agent_insecure_hosts,
                                 .per_ip_limit = cfg.api_max_connections_per_ip,
                                 .header_timeout_s = cfg.api_header_timeout_s,
                                 .tls = cfg.api_tls,
                                 .tls_cert_file = cert,
                                 .tls_key_file = ckey,
                                 .allow_plain_http = cfg.api_allow_plain_http,
                                 .outbound_deny_prefixes = cfg.outbound_deny_prefixes,
                                 .cluster = cluster};
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
    const char *scheme = cfg.api_tls ? "https" : "http";
    snprintf(api_url, sizeof api_url, "%s://%s:%d", scheme, host, port);
    if (tl_store_bootstrap(st, api_url))
        goto out;
    /* before the SIP stack: the first round runs here, so the first INVITE already sees the
     * other nodes' calls */
    if (cluster && (r = tl_cluster_start(cluster, cst))) {
        tl_error("core", "start.failed", "reason=\"cluster sync thread: %s\"", strerror(r));
        goto out;
    }

    uv_loop_init(&loop);
    /* the loop's idle time: admission reads how busy it is (media.h tl_media_load) */
    uv_loop_configure(&loop, UV_METRICS_IDLE_TIME);
    loop_ok = true;
    if ((r = tl_mailbox_open(&mb, &loop))) {
        tl_error("core", "start.failed", "reason=\"mailbox: %s\"", strerror(r));
        goto out;
    }
    int signums[4] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(&loop, &sig[i]);
        uv_signal_start(&sig[i], on_signal, signums[i]);
    }
    /* ---- SIP stack: start (after the API) ---- */
    {
        /* sip_test_policy exists in the test build only (config.c): empty here otherwise */
        const char *pol = cfg.sip_test_policy;
        if (pol[0] && strcmp(pol, "answer") && strcmp(pol, "ring") &&
            strncmp(pol, "answer-bye:", 11)) {
            tl_error("core", "start.failed",
                     "reason=\"sip_test_policy must be empty, answer, answer-bye:N or ring\"");
            goto out;
        }
        if ((r = tl_net_guard_parse(&eguard, cfg.sip_edge_addresses, "sip_edge_addresses", &err))) {
            tl_error("core", "start.failed", "reason=\"%s\"", err.message);
            goto out;
        }
        if (eguard.n)
            tl_info("sip", "edge", "addresses=\"%s\"", cfg.sip_edge_addresses);
        struct tl_sip_stack_cfg scfg = {.listen = cfg.sip_listen,
                                        .udp = cfg.sip_udp,
                                        .tcp_port = cfg.sip_tcp_port,
                                        .tls_port = cfg.sip_tls_port,
                                        .cert = cert,
                                        .ckey = ckey,
                                        .t1 = cfg.sip_t1_ms,
                                        .t2 = cfg.sip_t2_ms,
                                        .t4 = cfg.sip_t4_ms,
                                        .max_conns = cfg.sip_max_connections,
                                        .tcp_idle_s = cfg.sip_tcp_idle_s,
                                        .host = cfg.public_host,
                                        .tls_ca_file = cfg.sip_tls_ca_file,
                                        .dns_servers = cfg.sip_dns_servers,
                                        .keepalive_s = cfg.sip_keepalive_s,
                                        .max_conns_per_src = cfg.sip_max_connections_per_source,
                                        .reserved_conns = cfg.sip_reserved_connections,
                                        .first_msg_s = cfg.sip_first_message_s,
                                        .write_queue_max = (size_t)cfg.sip_write_queue_kib * 1024,
                                        .trusted_h = source_trusted,
                                        .trusted_arg = routing,
                                        .max_tsx = cfg.sip_max_transactions,
                                        .max_tsx_per_src = cfg.sip_max_transactions_per_source,
                                        .edge = &eguard};
        if ((r = tl_sip_stack_start(&sip, &loop, &scfg))) {
            tl_error("core", "start.failed", "reason=\"SIP listen on %s ports %d/%d: %s\"",
                     cfg.sip_listen, cfg.sip_tcp_port, cfg.sip_tls_port, strerror(r));
            goto out;
        }
        tl_call_register_events(sip, &regd);
        /* dialogs and INVITE sessions (and the test policy's calls) on the stack */
        struct tl_sip_sess_cfg dcfg = {.listen = cfg.public_ip[0] ? cfg.public_ip : cfg.sip_listen,
                                       .host = cfg.public_host,
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
#ifdef TL_TEST_HOOKS
        /* test calls behind digest auth, realm = our public host (carriers' INVITEs to us) */
        if (cfg.sip_test_auth[0]) {
            r = tl_sip_inauth_new(&tauth, cfg.public_host, cfg.sip_test_auth,
                                  cfg.sip_digest_algorithms, cfg.sip_nonce_ttl_s, nonce_secret);
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
#endif
    }
    /* ---- calls: media engine + the call layer on the INVITE hook (not with a test policy,
     * which answers INVITEs itself for the SIP tests) ---- */
    if (!cfg.sip_test_policy[0]) {
        struct tl_media_config mcfg = {
            .port_min = (uint16_t)cfg.rtp_port_min,
            .port_max = (uint16_t)cfg.rtp_port_max,
            .public_ip = cfg.public_ip,
            .latch = (enum tl_media_latch)tl_media_latch_parse(cfg.rtp_latching), /* checked */
            .loop_metrics = true};
        if ((r = tl_net_guard_parse(&aguard, cfg.agent_allow_networks, "agent_allow_networks",
                                    &err))) {
            tl_error("core", "start.failed", "reason=\"%s\"", err.message);
            goto out;
        }
        struct tl_net_resolver_opts ro = {.servers = cfg.sip_dns_servers};
        if ((r = tl_net_resolver_alloc(&ares, &loop, &ro)) ||
            (r = tl_tls_ctx_client(&atls, cfg.agent_tls_ca_file))) {
            tl_error("core", "start.failed",
                     "reason=\"agent DNS / TLS (sip_dns_servers, agent_tls_ca_file): %s\"",
                     strerror(r));
            goto out;
        }
        aenv = (struct tl_agent_env){.resolver = ares,
                                     .tls = atls,
                                     .guard = &aguard,
                                     .insecure_hosts = cfg.agent_insecure_hosts,
                                     .send_queue_max = (size_t)cfg.agent_send_queue_kib * 1024,
                                     .ca_file = cfg.agent_tls_ca_file};
        struct tl_call_cfg ccfg = {.stack = sip,
                                   .sess = sess,
                                   .routing = routing,
                                   .rec = rec,
                                   .host = cfg.public_host,
                                   .public_ip = cfg.public_ip,
                                   .digest_algorithms = cfg.sip_digest_algorithms,
                                   .nonce_ttl_s = cfg.sip_nonce_ttl_s,
                                   .nonce_secret = nonce_secret,
                                   .media_timeout_s = cfg.media_timeout_s,
                                   .one_way_audio_s = cfg.one_way_audio_s,
                                   .max_duration_s = cfg.max_call_duration_s,
                                   .max_calls = cfg.max_calls,
                                   .max_calls_per_workspace = cfg.max_calls_per_workspace,
                                   .max_busy_pct = cfg.admission_max_busy_pct,
                                   .max_late_ms = cfg.admission_max_late_ms,
                                   .invite_rate = cfg.sip_invite_rate,
                                   .invite_rate_global = cfg.sip_invite_rate_global,
                                   .auth_guard = {.backoff_after = 3,
                                                  .ban_after = cfg.sip_auth_ban_after,
                                                  .ban_s = cfg.sip_auth_ban_s,
                                                  .window_s = 600,
                                                  .number_threshold = cfg.sip_auth_guessing_events},
                                   .answer_delay_ms = cfg.call_answer_delay_ms,
                                   .loop = &loop,
                                   .agent_env = &aenv,
                                   .freed = &calls_freed,
                                   .out_calls_per_workspace = cfg.outbound_calls_per_workspace,
                                   .out_calls_per_minute = cfg.outbound_calls_per_minute,
                                   .cluster = cluster};
        if (cfg.admission_max_busy_pct > 100) {
            tl_error("core", "start.failed",
                     "reason=\"admission_max_busy_pct is a percentage: 0 (off) to 100\"");
            goto out;
        }
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
    shut.calls = calls;
    shut.sip = sip;
    shut.media = media;
    shut.drain_s = cfg.drain_timeout_s;
    if (calls) { /* the REST API may now hang up, transfer, send digits on live calls */
        ctl = (struct control){calls, mb, rec};
        tl_api_set_calls(api, &(struct tl_api_calls){daemon_control, &ctl, daemon_place,
                                                     daemon_snapshot, daemon_flush, daemon_event});
    }
    /* ---- end SIP stack start ---- */
    tl_info("core", "ready", "api=%s://%s/v1/ api_port=%d pid=%d", scheme, cfg.api_listen, port,
            (int)getpid());
    printf("trunkline is running. REST API: %s://%s/v1/  (health: /healthz)\n", scheme,
           cfg.api_listen);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    code = 0;

out:
    /* API intake stops before the loop does: no request is left waiting on call work that
     * would never run (queued control requests come back ESHUTDOWN) */
    if (api)
        tl_api_set_calls(api, NULL);
    tl_mailbox_close(mb);
    if (api)
        tl_api_stop(api);
    api = NULL;
    if (loop_ok) {
        tl_call_layer_close(calls); /* BYE/503 to every call, records queued */
        /* the BYEs complete their transactions (answered, or timer F: 64*T1) unless a
         * second signal came; the layer frees itself when its last call is gone */
        if (calls && !calls_freed && shut.signals < 2) {
            shut.draining = false;
            shut_timer(&loop, uv_now(&loop) + 64ull * cfg.sip_t1_ms + 1000);
            while (!calls_freed && shut.signals < 2 && uv_now(&loop) < shut.deadline)
                uv_run(&loop, UV_RUN_ONCE);
            tl_info("core", "shutdown.byes", "complete=%s", calls_freed ? "yes" : "no");
        }
        if (shut.tm_on) {
            uv_timer_stop(&shut.tm);
            uv_close((uv_handle_t *)&shut.tm, NULL);
        }
        /* agents got `stop` and a close frame: let them go, briefly, then drop the rest */
        for (int i = 0; aenv.live && i < 200; i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        tl_agent_ws_shutdown(&aenv);
        tl_net_resolver_free(ares);   /* after the agents that borrow it */
        tl_sip_stack_stop(sip);       /* ---- SIP stack: stop (before the API) ---- */
        tl_sip_sess_layer_free(sess); /* after the stack: its ECANCELED answers come first */
        tl_sip_inauth_free(tauth);    /* borrowed by the session layer */
        for (int i = 0; i < 4; i++)
            uv_close((uv_handle_t *)&sig[i], NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
        /* media sockets close asynchronously; the engine goes once none is left */
        for (int i = 0; media && i < 100 && tl_media_engine_streams(media); i++)
            uv_run(&loop, UV_RUN_NOWAIT);
        if (media && !tl_media_engine_close(media))
            uv_run(&loop, UV_RUN_NOWAIT);
        uv_run(&loop, UV_RUN_NOWAIT); /* the resolver's and agents' close callbacks */
        uv_loop_close(&loop);
    }
    tl_tls_ctx_free(atls);
    if (api)
        tl_api_stop(api);
    if (rec)
        tl_recorder_set_delivery_hook(rec, NULL,
                                      NULL); /* what is queued now waits for the next run */
    tl_webhooks_stop(hooks);
    tl_recorder_close(rec); /* after every producer (SIP, API), before the store */
    /* after the call layer and the API (both read it); deletes this node's rows, so the
     * others stop counting its calls at once rather than after the lease */
    tl_cluster_free(cluster);
    if (cst)
        tl_store_close(cst);
    tl_store_feed_stop(st); /* its thread calls into the routing cache */
    tl_routing_close(routing);
    if (st)
        tl_store_close(st);
    sodium_memzero(key, sizeof key);
    sodium_memzero(nonce_secret, sizeof nonce_secret);
    tl_info("core", "stopped", "code=%d", code);
    tl_log_close();
    return code;
}
