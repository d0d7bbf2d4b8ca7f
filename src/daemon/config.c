/* Settings: one table, three sources. The table is the documentation too:
 * `trunkline config` prints it, and a test checks docs/configuration.md against it. */
#include "daemon/config.h"
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum kind {
    K_STR,
    K_PORT,
    K_SIZE,
    K_LOGFMT,
    K_LOGLVL,
    K_BOOL,
    K_UINT,
    K_UINT0, /* 0 allowed */
    K_LATCH, /* the media layer's latching names (src/media/README.md) */
};

struct setting {
    const char *name; /* config-file key; flag is --name with '_' as '-' */
    const char *env;
    enum kind kind;
    size_t off, cap;
    const char *def;
    const char *help;
};

#define S(member, env, kind, def, help)                                                            \
    {                                                                                              \
#member, env, kind, offsetof(struct tl_config, member),                                    \
            sizeof(((struct tl_config *)0)->member), def, help                                     \
    }

static const struct setting settings[] = {
    S(config_file, "TRUNKLINE_CONFIG", K_STR, "",
      "Optional config file of `name = value` lines (`#` starts a comment)."),
    S(data_dir, "TRUNKLINE_DATA_DIR", K_STR, "./var",
      "Data directory: SQLite database, master key (0600), self-made TLS certificate."),
    S(store, "TRUNKLINE_STORE", K_STR, "",
      "The database: empty for SQLite at <data_dir>/trunkline.db; a file path for SQLite "
      "there; postgresql://user@host:port/dbname or a libpq keyword string (host=… "
      "dbname=…) for PostgreSQL (docs/configuration.md \"Choosing the store\"). Never the "
      "password: see store_password_file."),
    S(store_password_file, "TRUNKLINE_STORE_PASSWORD_FILE", K_STR, "",
      "File holding the PostgreSQL password (mode 0600, else refused); empty: the environment "
      "variable TRUNKLINE_STORE_PASSWORD, else none (peer or trust authentication, "
      "~/.pgpass)."),
    S(store_resync_s, "TRUNKLINE_STORE_RESYNC_S", K_UINT0, "600",
      "PostgreSQL shared by several nodes: besides reloading the routing cache after its change "
      "feed reconnects, reload it every this many seconds (a net for a change whose "
      "notification was lost); 0: only after reconnecting."),
    S(master_key_file, "TRUNKLINE_MASTER_KEY_FILE", K_STR, "",
      "File holding the 32-byte master key (the bytes themselves, 64 hex digits or base64; "
      "mode 0600 or stricter), for nodes sharing one database; empty: <data_dir>/master.key, "
      "made at first start. The TRUNKLINE_MASTER_KEY environment variable (hex or base64) "
      "comes first. See \"Master key\" below."),
    S(api_listen, "TRUNKLINE_API_LISTEN", K_STR, "127.0.0.1:8080",
      "Address of the REST API, host:port ([v6]:port for IPv6; port 0 picks a free one)."),
    S(public_host, "TRUNKLINE_PUBLIC_HOST", K_STR, "localhost",
      "Host name carriers reach this gateway at; used in the SIP URIs shown to users and in "
      "the self-made certificate."),
    S(sip_tcp_port, "TRUNKLINE_SIP_TCP_PORT", K_PORT, "5060", "SIP over TCP (and UDP) port."),
    S(sip_tls_port, "TRUNKLINE_SIP_TLS_PORT", K_PORT, "5061", "SIP over TLS port."),
    S(sip_listen, "TRUNKLINE_SIP_LISTEN", K_STR, "0.0.0.0",
      "IP address the SIP transports listen on (IPv4 or IPv6 literal)."),
    S(sip_udp, "TRUNKLINE_SIP_UDP", K_BOOL, "off",
      "SIP over UDP on sip_tcp_port: on or off. Off by default: inbound calls never use UDP "
      "(spoofable sources), so the listener would only answer pings and be a reflector; "
      "turn it on for carriers that ping over UDP or outbound trunks over UDP. Its answers "
      "before a dialog are sent once, statelessly."),
    S(sip_t1_ms, "TRUNKLINE_SIP_T1_MS", K_UINT, "500",
      "SIP timer T1 in ms (RFC 3261: round-trip estimate; retransmissions start here)."),
    S(sip_t2_ms, "TRUNKLINE_SIP_T2_MS", K_UINT, "4000",
      "SIP timer T2 in ms (longest retransmission interval)."),
    S(sip_t4_ms, "TRUNKLINE_SIP_T4_MS", K_UINT, "5000",
      "SIP timer T4 in ms (how long a message may stay in the network)."),
    S(sip_max_connections, "TRUNKLINE_SIP_MAX_CONNECTIONS", K_UINT, "1024",
      "Most SIP TCP + TLS connections at once; more are refused."),
    S(sip_max_connections_per_source, "TRUNKLINE_SIP_MAX_CONNECTIONS_PER_SOURCE", K_UINT, "32",
      "Most inbound SIP connections from one source address (IPv6: one /64); more are "
      "refused."),
    S(sip_reserved_connections, "TRUNKLINE_SIP_RESERVED_CONNECTIONS", K_UINT0, "64",
      "Of sip_max_connections, this many are kept for sources listed in some number's "
      "allowed_addresses (blocks up to /16, IPv6 /32), so that a flood from elsewhere cannot "
      "take the carriers' way in; at most half of sip_max_connections; 0: none."),
    S(sip_edge_addresses, "TRUNKLINE_SIP_EDGE_ADDRESSES", K_STR, "",
      "Addresses of the SIP edge (Kamailio, docs/scale-out.md) in front of this node, CIDR "
      "or plain, comma-separated; empty: no edge. Only from these is the carrier's own "
      "source, port and transport taken from the X-Trunkline-Source header the edge adds, "
      "for allowed_addresses, the trunk's transport, rate limits and digest bans; INVITEs "
      "from them without it are refused. They take reserved connection slots and are "
      "exempt from the per-source caps. List the edge's own addresses only."),
    S(sip_first_message_s, "TRUNKLINE_SIP_FIRST_MESSAGE_S", K_UINT, "5",
      "Seconds a new inbound SIP connection has to finish its TLS handshake and send its "
      "first complete message; else it is closed (idle and half-open connection floods)."),
    S(sip_write_queue_kib, "TRUNKLINE_SIP_WRITE_QUEUE_KIB", K_UINT, "1024",
      "KiB of answers queued on one SIP connection whose peer does not read them; above it "
      "the connection is closed."),
    S(sip_max_transactions, "TRUNKLINE_SIP_MAX_TRANSACTIONS", K_UINT, "20000",
      "Most live SIP server transactions (each lasts up to 64*T1); new requests above it get "
      "a stateless 503."),
    S(sip_max_transactions_per_source, "TRUNKLINE_SIP_MAX_TRANSACTIONS_PER_SOURCE", K_UINT, "2000",
      "Most live SIP server transactions of one source address (IPv6: one /64); new requests "
      "above it get a stateless 503."),
    S(sip_tcp_idle_s, "TRUNKLINE_SIP_TCP_IDLE_S", K_UINT, "120",
      "Seconds before an idle SIP connection, or one with an unfinished message, is closed. A "
      "connection that carries calls is never closed for idleness."),
    S(sip_keepalive_s, "TRUNKLINE_SIP_KEEPALIVE_S", K_UINT, "60",
      "A SIP connection that carries calls and has been quiet this long gets an RFC 5626 "
      "CRLF keep-alive, so NATs and load balancers keep it open; 0: none."),
    S(sip_min_se, "TRUNKLINE_SIP_MIN_SE", K_UINT, "90",
      "Shortest session-timer interval accepted, in s (RFC 4028 Min-SE; 422 below it). RFC "
      "4028 asks for at least 90; lower values are for tests."),
#ifdef TL_TEST_HOOKS
    /* Test-only build (build/trunkline-test, `make test`): answering policies that skip the
     * call layer's checks. Compiled out of the shipped daemon (issue 11 item 18): no setting
     * of build/trunkline can make it answer an INVITE its trunk did not allow. */
    S(sip_test_policy, "TRUNKLINE_SIP_TEST_POLICY", K_STR, "",
      "(test build only) Test answers to INVITE: empty (the call layer), answer (180 then 200 "
      "OK), answer-bye:N (answer, BYE after N s) or ring (180, wait)."),
    S(sip_test_auth, "TRUNKLINE_SIP_TEST_AUTH", K_STR, "",
      "(test build only) Digest credentials user:password the test policy's INVITEs must "
      "answer (401 challenge, realm public_host, SHA-256 and MD5); empty: none."),
#endif
    S(sip_digest_algorithms, "TRUNKLINE_SIP_DIGEST_ALGORITHMS", K_STR, "SHA-256,MD5",
      "Digest challenges we send, in preference order (RFC 8760): SHA-256,MD5; MD5,SHA-256 "
      "for carriers that read only the first challenge and know only MD5; or one of them."),
    S(sip_nonce_ttl_s, "TRUNKLINE_SIP_NONCE_TTL_S", K_UINT, "300",
      "Seconds a digest nonce stays fresh; an older one with the right password gets 401 "
      "stale=true. Below 86400: the nonce key rotates daily (see \"Master key\")."),
    S(sip_auth_ban_after, "TRUNKLINE_SIP_AUTH_BAN_AFTER", K_UINT, "10",
      "Wrong digest answers from one source (IPv6: one /64) that ban it for sip_auth_ban_s; "
      "from the 4th on each also blocks it for 1, 2, 4 ... 60 s. While blocked its answers "
      "are refused unverified (the same 403). Counts are forgotten after 10 quiet minutes."),
    S(sip_auth_ban_s, "TRUNKLINE_SIP_AUTH_BAN_S", K_UINT, "600",
      "Seconds a source that reached sip_auth_ban_after stays banned from digest checks."),
    S(sip_auth_guessing_events, "TRUNKLINE_SIP_AUTH_GUESSING_EVENTS", K_UINT, "20",
      "Failed digest attempts on one number within 10 minutes that raise a "
      "credentials_guessing event for its owner."),
    S(sip_tls_ca_file, "TRUNKLINE_SIP_TLS_CA_FILE", K_STR, "",
      "Extra CA certificates (PEM) trusted for outbound SIP/TLS, besides the system store."),
    S(sip_dns_servers, "TRUNKLINE_SIP_DNS_SERVERS", K_STR, "",
      "DNS servers for SIP lookups (NAPTR/SRV/A), ip:port comma-separated; empty: "
      "/etc/resolv.conf."),
    S(public_ip, "TRUNKLINE_PUBLIC_IP", K_STR, "",
      "Public IPv4 address of this host behind 1:1 NAT, put in SDP (c=) and Contact; empty: "
      "the local address a call arrived on."),
    S(rtp_port_min, "TRUNKLINE_RTP_PORT_MIN", K_PORT, "10000",
      "Lowest UDP port for RTP (even; RTCP uses the next one)."),
    S(rtp_port_max, "TRUNKLINE_RTP_PORT_MAX", K_PORT, "20000",
      "Highest UDP port for RTP/RTCP; size the range at two ports per concurrent call."),
    S(rtp_latching, "TRUNKLINE_RTP_LATCHING", K_LATCH, "sdp-ip",
      "Which source plain RTP is taken from and answered to (RTP Bleed protection): sdp-ip "
      "(the SDP address's IP, any port), any (the first source: carriers behind NAT; use with "
      "SRTP or a trusted network) or off (the SDP address, never moved). An inbound trunk's "
      "rtp_latching overrides it; SRTP follows authenticated packets in every mode but off."),
    S(agent_allow_networks, "TRUNKLINE_AGENT_ALLOW_NETWORKS", K_STR, "",
      "Networks (CIDR, comma-separated) that agent WebSocket URLs may reach although they are "
      "loopback, private or link-local, e.g. where your own bots run. Everything else outside "
      "the public internet is refused (a guard against server-side request forgery); empty: "
      "public addresses only."),
    S(agent_insecure_hosts, "TRUNKLINE_AGENT_INSECURE_HOSTS", K_STR, "",
      "Hosts (names or IP addresses, comma-separated) for which agent URLs may use ws:// "
      "instead of wss:// (bots on the same machine or network); empty: wss:// only."),
    S(agent_tls_ca_file, "TRUNKLINE_AGENT_TLS_CA_FILE", K_STR, "",
      "Extra CA certificates (PEM) trusted for agent wss:// connections, on top of the system "
      "store (a private CA for your own bots); empty: the system store only."),
    S(agent_send_queue_kib, "TRUNKLINE_AGENT_SEND_QUEUE_KIB", K_UINT, "512",
      "KiB of audio and events waiting for an agent that does not read its WebSocket before "
      "its call is ended (about 30 s of a call's frames at the default)."),
    S(media_timeout_s, "TRUNKLINE_MEDIA_TIMEOUT_S", K_UINT, "30",
      "Seconds without RTP from the carrier (while not on hold) before a call is ended with BYE."),
    S(one_way_audio_s, "TRUNKLINE_ONE_WAY_AUDIO_S", K_UINT0, "5",
      "Seconds without RTP from the carrier after the answer (or while ours flows) before "
      "the number gets a one_way_audio event; the call goes on. 0: no such events."),
    S(max_call_duration_s, "TRUNKLINE_MAX_CALL_DURATION_S", K_UINT, "14400",
      "Longest call in seconds; it is then ended with BYE (reason max_duration)."),
    S(call_answer_delay_ms, "TRUNKLINE_CALL_ANSWER_DELAY_MS", K_UINT0, "0",
      "Ring for this many ms before answering an inbound call (after the agent is ready): "
      "for demos and tests; 0 answers at once."),
    S(max_calls, "TRUNKLINE_MAX_CALLS", K_UINT, "1000",
      "Most concurrent calls on this gateway; more INVITEs get 503 with Retry-After."),
    S(max_calls_per_workspace, "TRUNKLINE_MAX_CALLS_PER_WORKSPACE", K_UINT, "100",
      "Most concurrent calls of one workspace; more get 503 with Retry-After."),
    S(admission_max_busy_pct, "TRUNKLINE_ADMISSION_MAX_BUSY_PCT", K_UINT0, "70",
      "New calls get 503 with Retry-After while the loop that carries the calls' audio is "
      "busier than this (percent of the last second, smoothed): beyond it every call in "
      "progress would start losing audio. 0: off."),
    S(admission_max_late_ms, "TRUNKLINE_ADMISSION_MAX_LATE_MS", K_UINT0, "8",
      "New calls get 503 with Retry-After while the 20 ms media clock fires later than this "
      "on average (the loop cannot keep up). 0: off."),
    S(drain_timeout_s, "TRUNKLINE_DRAIN_TIMEOUT_S", K_UINT0, "300",
      "On SIGTERM, calls in progress may go on this many seconds while new INVITEs and "
      "OPTIONS get 503 with Retry-After: 30; then the rest get BYE. A second SIGTERM ends at "
      "once; 0: BYE to every call at once."),
    S(outbound_calls_per_workspace, "TRUNKLINE_OUTBOUND_CALLS_PER_WORKSPACE", K_UINT, "10",
      "Most concurrent outbound calls of one workspace (a toll-fraud guard: a stolen token "
      "must not become a large phone bill); more get 429 outbound_rate."),
    S(outbound_calls_per_minute, "TRUNKLINE_OUTBOUND_CALLS_PER_MINUTE", K_UINT, "30",
      "Outbound calls one workspace may start per minute (token bucket holding one minute's "
      "worth); more get 429 outbound_rate."),
    S(cluster_sync_ms, "TRUNKLINE_CLUSTER_SYNC_MS", K_UINT, "250",
      "With a PostgreSQL store shared by several nodes: every this many ms (10 to 10000) each "
      "node publishes its calls per workspace and reads the others', so that "
      "max_calls_per_workspace and outbound_calls_per_workspace hold across the nodes; a "
      "node silent for 4 times as long (at least 1 s) no longer counts. The caps may be "
      "overshot only by calls other nodes admit within about one interval "
      "(docs/scale-out.md). The per-minute outbound limit and max_calls stay per node."),
    S(outbound_deny_prefixes, "TRUNKLINE_OUTBOUND_DENY_PREFIXES", K_STR, TL_DENY_PREFIXES_DEFAULT,
      "E.164 prefixes outbound calls never go to, comma-separated, even where a workspace's "
      "allowed prefixes would let them: premium-rate and satellite ranges commonly abused for "
      "toll fraud (docs/calls.md); empty: none."),
    S(webhook_retry_base_ms, "TRUNKLINE_WEBHOOK_RETRY_BASE_MS", K_UINT, "5000",
      "A webhook delivery that failed is tried again after this many ms, then twice as long "
      "each time (at most an hour between attempts)."),
    S(webhook_max_attempts, "TRUNKLINE_WEBHOOK_MAX_ATTEMPTS", K_UINT, "15",
      "Attempts of one webhook delivery before it is given up (the webhook's last_error says "
      "why); at the defaults about 9 hours."),
    S(webhook_timeout_ms, "TRUNKLINE_WEBHOOK_TIMEOUT_MS", K_UINT, "10000",
      "The longest one webhook request may take, DNS to the last byte of the answer."),
    S(sip_invite_rate, "TRUNKLINE_SIP_INVITE_RATE", K_UINT, "50",
      "New INVITEs per second accepted from one source IP (token bucket, bursts of twice "
      "that); IPv6 sources count per /64. More get 503."),
    S(sip_invite_rate_global, "TRUNKLINE_SIP_INVITE_RATE_GLOBAL", K_UINT, "200",
      "New INVITEs per second accepted from all sources together (token bucket, bursts of "
      "twice that); more get 503 with Retry-After."),
    S(tls_cert, "TRUNKLINE_TLS_CERT", K_STR, "",
      "PEM certificate chain for SIP/TLS; empty: a self-made one in <data_dir>/tls."),
    S(tls_key, "TRUNKLINE_TLS_KEY", K_STR, "", "PEM private key for tls_cert."),
    S(log_file, "TRUNKLINE_LOG_FILE", K_STR, "",
      "Log file (reopened on SIGHUP, for rotation); empty: standard error."),
    S(log_format, "TRUNKLINE_LOG_FORMAT", K_LOGFMT, "text", "Log format: text or json (lines)."),
    S(log_level, "TRUNKLINE_LOG_LEVEL", K_LOGLVL, "info", "debug, info, warn or error."),
    S(api_max_body, "TRUNKLINE_API_MAX_BODY", K_SIZE, "65536",
      "Largest API request body in bytes; larger ones get 413."),
    S(api_tls, "TRUNKLINE_API_TLS", K_BOOL, "off",
      "Serve the REST API and web UI over HTTPS with the daemon's certificate (tls_cert, or "
      "the self-made one: clients trust <data_dir>/tls/cert.pem). TLS 1.2 and 1.3 only."),
    S(api_allow_plain_http, "TRUNKLINE_API_ALLOW_PLAIN_HTTP", K_BOOL, "off",
      "Allow plain HTTP on an api_listen address other than loopback (a TLS proxy in front "
      "terminates HTTPS); off refuses to start, as tokens would cross the network in clear."),
    S(api_max_connections_per_ip, "TRUNKLINE_API_MAX_CONNECTIONS_PER_IP", K_UINT, "64",
      "Most API connections at once from one IP address; more are closed at once. One "
      "browser tab of the web UI may hold a dozen, and an office behind one NAT address "
      "several browsers."),
    S(api_header_timeout_s, "TRUNKLINE_API_HEADER_TIMEOUT_S", K_UINT, "10",
      "Seconds an API connection may stay silent before its request's headers are complete "
      "(and during the TLS handshake); then it is closed. Afterwards 30 s of silence are "
      "allowed."),
};
#define N_SETTINGS (sizeof settings / sizeof settings[0])

static int set_value(struct tl_config *c, const struct setting *s, const char *v,
                     const char *origin, struct tl_err *err)
{
    char *dst = (char *)c + s->off;
    char *end;
    unsigned long long u;
    switch (s->kind) {
    case K_STR:
        if (!tl_strlcpy(dst, v, s->cap))
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: %s is longer than %zu bytes", origin, s->name, s->cap - 1);
        return 0;
    case K_PORT:
    case K_SIZE:
        errno = 0;
        u = strtoull(v, &end, 10);
        if (!*v || *end || errno || (s->kind == K_PORT && u > 65535) ||
            (s->kind == K_SIZE && (u < 1024 || u > 64u * 1024 * 1024)))
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: %s must be %s, not \"%s\"", origin, s->name,
                              s->kind == K_PORT ? "a port number 0-65535"
                                                : "a size in bytes from 1024 to 67108864",
                              v);
        if (s->kind == K_PORT)
            *(int *)(void *)dst = (int)u;
        else
            *(size_t *)(void *)dst = (size_t)u;
        return 0;
    case K_BOOL:
        if (!strcasecmp(v, "on") || !strcasecmp(v, "true") || !strcmp(v, "1"))
            *(bool *)(void *)dst = true;
        else if (!strcasecmp(v, "off") || !strcasecmp(v, "false") || !strcmp(v, "0"))
            *(bool *)(void *)dst = false;
        else
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: %s must be on or off, not \"%s\"", origin, s->name, v);
        return 0;
    case K_UINT:
    case K_UINT0:
        errno = 0;
        u = strtoull(v, &end, 10);
        if (!*v || *end || errno || *v == '-' || u < (s->kind == K_UINT0 ? 0u : 1u) || u > 10000000)
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: %s must be a whole number from %d to 10000000, not \"%s\"",
                              origin, s->name, s->kind == K_UINT0 ? 0 : 1, v);
        *(unsigned *)(void *)dst = (unsigned)u;
        return 0;
    case K_LATCH:
        if (strcmp(v, "sdp-ip") && strcmp(v, "any") && strcmp(v, "off"))
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: %s must be sdp-ip, any or off, not \"%s\"", origin, s->name, v);
        tl_strlcpy(dst, v, s->cap);
        return 0;
    case K_LOGFMT:
        if (!strcasecmp(v, "text"))
            *(enum tl_log_format *)(void *)dst = TL_LOG_TEXT;
        else if (!strcasecmp(v, "json"))
            *(enum tl_log_format *)(void *)dst = TL_LOG_JSON;
        else
            return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                              "%s: log_format must be text or json, not \"%s\"", origin, v);
        return 0;
    case K_LOGLVL: {
        static const char *names[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(v, names[i])) {
                *(enum tl_log_level *)(void *)dst = (enum tl_log_level)i;
                return 0;
            }
        return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                          "%s: log_level must be debug, info, warn or error, not \"%s\"", origin,
                          v);
    }
    }
    return EINVAL;
}

static const struct setting *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].name) == len && !strncmp(settings[i].name, name, len))
            return &settings[i];
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int load_file(struct tl_config *c, const char *path, struct tl_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return tl_err_set(err, errno, 400, "invalid_setting", "config_file",
                          "cannot open config file %s: %s", path, strerror(errno));
    char line[1024], origin[600];
    int ret = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        snprintf(origin, sizeof origin, "%s:%d", path, lineno);
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            ret = tl_err_set(err, EINVAL, 400, "invalid_setting", "", "%s: expected name = value",
                             origin);
            break;
        }
        *eq = '\0';
        char *k = trim(s), *v = trim(eq + 1);
        const struct setting *st = find(k, strlen(k));
        if (!st || st->off == offsetof(struct tl_config, config_file)) {
            ret = tl_err_set(err, EINVAL, 400, "invalid_setting", k, "%s: unknown setting \"%s\"",
                             origin, k);
            break;
        }
        if ((ret = set_value(c, st, v, origin, err)))
            break;
    }
    fclose(f);
    return ret;
}

/* --name value | --name=value, with '-' or '_' in names */
static const struct setting *flag_setting(const char *arg, const char **inline_val)
{
    if (strncmp(arg, "--", 2))
        return NULL;
    arg += 2;
    char name[64];
    size_t n = 0;
    for (; arg[n] && arg[n] != '=' && n < sizeof name - 1; n++)
        name[n] = arg[n] == '-' ? '_' : arg[n];
    name[n] = '\0';
    *inline_val = arg[n] == '=' ? arg + n + 1 : NULL;
    return find(name, n);
}

int tl_config_load(struct tl_config *c, int argc, char **argv, struct tl_err *err)
{
    int ret;
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_SETTINGS; i++)
        if ((ret = set_value(c, &settings[i], settings[i].def, "default", err)))
            return ret;

    /* the config file is named by flag or environment, so find it first */
    const char *file = getenv("TRUNKLINE_CONFIG");
    for (int i = 0; i < argc; i++) {
        const char *iv;
        const struct setting *s = flag_setting(argv[i], &iv);
        if (s && s->off == offsetof(struct tl_config, config_file))
            file = iv ? iv : (i + 1 < argc ? argv[i + 1] : NULL);
    }
    if (file && *file) {
        tl_strlcpy(c->config_file, file, sizeof c->config_file);
        if ((ret = load_file(c, file, err)))
            return ret;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v && (ret = set_value(c, &settings[i], v, settings[i].env, err)))
            return ret;
    }
    for (int i = 0; i < argc; i++) {
        const char *iv;
        const struct setting *s = flag_setting(argv[i], &iv);
        if (!s)
            return tl_err_set(err, EINVAL, 400, "invalid_setting", argv[i],
                              "unknown option \"%s\" (trunkline serve --help lists them)", argv[i]);
        if (!iv) {
            if (i + 1 >= argc)
                return tl_err_set(err, EINVAL, 400, "invalid_setting", s->name,
                                  "option --%s needs a value", s->name);
            iv = argv[++i];
        }
        if ((ret = set_value(c, s, iv, "command line", err)))
            return ret;
    }
    return 0;
}

void tl_config_print_table(FILE *f)
{
    fprintf(f, "| setting | environment | flag | default | meaning |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < N_SETTINGS; i++) {
        char flag[64];
        size_t n = 0;
        for (const char *p = settings[i].name; *p && n < sizeof flag - 1; p++)
            flag[n++] = *p == '_' ? '-' : *p;
        flag[n] = '\0';
        fprintf(f, "| `%s` | `%s` | `--%s` | `%s` | %s |\n", settings[i].name, settings[i].env,
                flag, settings[i].def[0] ? settings[i].def : "(empty)", settings[i].help);
    }
}

void tl_config_usage(FILE *f)
{
    fprintf(f, "usage: trunkline serve [--setting value]...\n\nSettings (flag > environment > "
               "config file > default):\n\n");
    tl_config_print_table(f);
}
