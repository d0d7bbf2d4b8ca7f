/* Configuration: one table (config.c) lists every setting with its default, its
 * environment variable and its flag; docs/configuration.md is checked against it.
 * Precedence: command-line flag > TRUNKLINE_* environment > config file > default. */
#ifndef TL_CONFIG_H
#define TL_CONFIG_H

#include "core/core.h"

struct tl_config {
    char config_file[512];
    char data_dir[512];            /* SQLite database, master key, self-made certificate */
    char master_key_file[512];     /* "": TRUNKLINE_MASTER_KEY or data_dir/master.key */
    char store[1024];              /* "" = SQLite in data_dir; a path; a PostgreSQL conninfo */
    char store_password_file[512]; /* the PostgreSQL password, owner-only */
    unsigned store_resync_s;       /* shared store: periodic routing reload, 0 = none */
    char api_listen[128];          /* host:port of the REST API */
    char public_host[256];         /* host name carriers and users reach us at (SIP URIs) */
    int sip_tcp_port;              /* 5060 */
    int sip_tls_port;              /* 5061 */
    char sip_listen[64];           /* IP literal the SIP transports bind to */
    bool sip_udp;                  /* also UDP on sip_tcp_port */
    unsigned sip_t1_ms, sip_t2_ms, sip_t4_ms; /* RFC 3261 §17.1.1.1 timers */
    unsigned sip_max_connections;             /* TCP + TLS */
    unsigned sip_max_connections_per_source;  /* inbound, per IPv4 address / IPv6 /64 */
    unsigned sip_reserved_connections;        /* slots only trusted sources may take */
    char sip_edge_addresses[1024]; /* CIDRs of the SIP edge whose X-Trunkline-Source we believe */
    unsigned sip_first_message_s;  /* handshake + first message deadline */
    unsigned sip_write_queue_kib;  /* per connection, then it is closed */
    unsigned sip_max_transactions, sip_max_transactions_per_source;
    unsigned sip_tcp_idle_s;
    unsigned sip_keepalive_s;
    /* test build only (TL_TEST_HOOKS): the settings exist in the table of
     * build/trunkline-test alone; the shipped daemon leaves these empty */
    char sip_test_policy[24];       /* "", "answer", "ring", "answer-bye:N": test answers */
    unsigned sip_min_se;            /* s: RFC 4028 Min-SE (90; lower only for tests) */
    char sip_test_auth[520];        /* "user:password" the test policy challenges for; "" off */
    char sip_digest_algorithms[32]; /* challenge order: "SHA-256,MD5" */
    unsigned sip_nonce_ttl_s;       /* digest nonce freshness, s */
    unsigned sip_auth_ban_after, sip_auth_ban_s, sip_auth_guessing_events; /* guessing */
    char sip_tls_ca_file[512];      /* extra CA (PEM) trusted for outbound SIP/TLS */
    char sip_dns_servers[256];      /* "ip:port,…" for RFC 3263 lookups; empty = resolv.conf */
    char public_ip[64];             /* SDP c= and Contact behind 1:1 NAT; "" = local */
    int rtp_port_min, rtp_port_max; /* RTP/RTCP port range */
    char rtp_latching[8];           /* "sdp-ip", "any", "off" (src/media/README.md) */
    unsigned media_timeout_s;       /* no RTP this long → BYE */
    unsigned one_way_audio_s;       /* no RTP this long after the answer → event */
    unsigned max_call_duration_s;   /* → BYE */
    unsigned call_answer_delay_ms;  /* ring this long before the 200 (demos, tests) */
    unsigned max_calls, max_calls_per_workspace;            /* concurrent; more → 503 */
    unsigned admission_max_busy_pct, admission_max_late_ms; /* admission by load; 0: off */
    unsigned drain_timeout_s;                               /* SIGTERM: calls may go on this long */
    unsigned sip_invite_rate;        /* INVITEs/s per source IP (IPv6: /64) */
    unsigned sip_invite_rate_global; /* INVITEs/s from all sources */
    char tls_cert[512];              /* PEM; empty = self-made one in data_dir/tls */
    char tls_key[512];
    char log_file[512]; /* empty = stderr */
    enum tl_log_format log_format;
    enum tl_log_level log_level;
    size_t api_max_body;       /* bytes */
    bool api_tls;              /* HTTPS with the daemon's certificate */
    bool api_allow_plain_http; /* plain HTTP on a non-loopback api_listen */
    unsigned api_max_connections_per_ip;
    unsigned api_header_timeout_s;
    char agent_allow_networks[1024]; /* CIDRs the address guard lets agents/webhooks reach */
    char agent_insecure_hosts[1024]; /* hosts for which ws:// (and http://) is accepted */
    char agent_tls_ca_file[512];     /* extra CA (PEM) trusted for agent wss:// */
    unsigned agent_send_queue_kib;   /* unsent bytes to one agent before its call ends */
    /* toll-fraud guards of outbound calls (docs/calls.md) */
    unsigned outbound_calls_per_workspace; /* concurrent outbound calls of one workspace */
    unsigned outbound_calls_per_minute;    /* outbound calls one workspace starts a minute */
    unsigned cluster_sync_ms;          /* shared store: per-workspace counts exchanged this often */
    char outbound_deny_prefixes[1024]; /* E.164 prefixes never called, comma-separated */
    unsigned webhook_retry_base_ms;    /* first retry's wait, doubled each time */
    unsigned webhook_max_attempts;     /* then a delivery is given up */
    unsigned webhook_timeout_ms;       /* one delivery request */
};

/* Fills *c from defaults, file, environment and argv (argv[0..argc) are the flags after
 * the subcommand). Unknown flags and bad values are errors with a message in err. */
int tl_config_load(struct tl_config *c, int argc, char **argv, struct tl_err *err);
/* Prints the settings table (name, env, flag, default, help) as Markdown. */
void tl_config_print_table(FILE *f);
void tl_config_usage(FILE *f);

#endif
