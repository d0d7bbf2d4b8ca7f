/* api: the JSON REST API under /v1/ (libmicrohttpd) plus /healthz and /readyz.
 *
 * Threading: the HTTP server runs on its own libmicrohttpd thread so that fsync'ed store
 * writes never stall the SIP/media event loop; handlers call the (thread-safe) store.
 * Contract: tl_api_start either returns 0 with the server listening, or an error and
 * nothing running. tl_api_stop waits for in-flight requests.
 *
 * Exposure: plain HTTP listens only on loopback unless the configuration allows it (a TLS
 * proxy in front); tokens must not cross a network in clear. Connections are limited per
 * source address, and one whose headers do not arrive within header_timeout_s is closed,
 * so that one host's half-sent requests cannot take every slot (/healthz stays up). */
#ifndef TL_API_H
#define TL_API_H

#include "core/core.h"
#include "store/store.h"

struct tl_api_config {
    const char *listen;      /* "host:port"; port 0 = any free port */
    const char *public_host; /* for /v1/sip/endpoints */
    int sip_tcp_port, sip_tls_port;
    size_t max_body; /* bytes; larger bodies get 413 */
    /* appended (positional initialisers above stay valid); NULL/0 = not set */
    const char *public_ip;  /* egress address and DNS records in /v1/sip/endpoints */
    const char *sip_listen; /* likewise, when it names one address */
    /* the trunk check's probe: the daemon's own SIP client settings */
    const char *sip_tls_ca_file;
    const char *sip_dns_servers;
    unsigned sip_t1_ms;
    const char *agent_allow_networks; /* net/guard.h allow-list ("" = none) */
    const char *agent_insecure_hosts; /* ws:// accepted for these hosts ("" = none) */
    /* connection hygiene (issue 11 item 14); 0 = the default in server.c */
    unsigned per_ip_limit;     /* connections at once from one address */
    unsigned header_timeout_s; /* idle seconds allowed before a request's headers are in */
    /* HTTPS with the daemon's certificate (PEM files); tls false: plain HTTP, refused on
     * an address other than loopback unless allow_plain_http */
    bool tls;
    const char *tls_cert_file, *tls_key_file;
    bool allow_plain_http;
    /* E.164 prefixes outbound calls never reach, comma-separated (toll fraud; NULL/"":
     * none). A bad list fails tl_api_start. */
    const char *outbound_deny_prefixes;
    /* the nodes' shared call counts (store/cluster.h) for GET /v1/cluster; NULL: one node */
    struct tl_cluster *cluster;
};

/* What the API may ask of live calls, answered by the loop thread (call/control.c);
 * the daemon sets it once the call layer runs. op: enum tl_call_ctl_op. Returns 0 with
 * status ("ringing", "in-progress", "completed"), ENOENT (no such live call in that
 * workspace), or an errno. Called on API threads; may block briefly. */
enum tl_api_call_op { /* the same numbers as enum tl_call_ctl_op (call.h) */
                      TL_API_CALL_STATUS = 0,
                      TL_API_CALL_HANGUP,
                      TL_API_CALL_TRANSFER,
                      TL_API_CALL_DIGITS,
};
struct tl_api_calls {
    int (*control)(void *arg, const char *workspace_id, const char *call_id, int op,
                   const char *param, char status[16]);
    void *arg;
    /* POST /v1/calls: places the call rq describes (the handler read and checked it);
     * *rec is its record as it stands (queued). 0, or an errno as tl_call_place (call.h):
     * ESHUTDOWN, ENOSPC, EBUSY, EAGAIN, EINVAL, ENOMEM, ETIMEDOUT. NULL: not available. */
    int (*place)(void *arg, const struct tl_call_request *rq, struct tl_call_record *rec);
    /* GET /v1/calls/{id}: the live record of a call; 0 or ENOENT (not live). */
    int (*snapshot)(void *arg, const char *workspace_id, const char *call_id,
                    struct tl_call_record *rec);
    /* Waits until the records queued so far are in the store (a call that just ended). */
    void (*flush)(void *arg);
    /* Records a diagnostic event (a call refused before it exists); source: its key for
     * the recorder's rate limits when it names no number. */
    void (*event)(void *arg, const struct tl_event *e, const char *source);
};

struct tl_api;
int tl_api_start(struct tl_api **ap, const struct tl_api_config *cfg, struct tl_store *store,
                 struct tl_err *err);
void tl_api_stop(struct tl_api *a);
/* Sets (or, with NULL, removes) the live-call control; until then such requests get 503. */
void tl_api_set_calls(struct tl_api *a, const struct tl_api_calls *c);
int tl_api_port(const struct tl_api *a); /* the bound port (useful with port 0) */

/* ---- workspace webhooks: the sender (webhooks.c; docs/api.md "Webhooks") ----
 * One thread of its own (never the loop) delivers the store's due webhook deliveries with
 * net/http, retrying with an exponential backoff. The recorder wakes it
 * (tl_recorder_set_delivery_hook with tl_webhooks_kick). */
struct tl_webhooks_cfg {
    const char *allow_networks; /* net/guard.h allow-list (agent_allow_networks) */
    const char *insecure_hosts; /* http:// accepted for these hosts */
    const char *ca_file;        /* extra trust anchors (PEM) or NULL */
    unsigned retry_base_ms;     /* the first retry's wait, doubled each time (max 1 h) */
    unsigned max_attempts;      /* then it is given up */
    unsigned timeout_ms;        /* one request, DNS to last byte */
};
struct tl_webhooks;
/* 0, or an errno with err (a bad allow-list; no thread). Call tl_http_global_init first. */
int tl_webhooks_start(struct tl_webhooks **wp, struct tl_store *store,
                      const struct tl_webhooks_cfg *cfg, struct tl_err *err);
void tl_webhooks_kick(void *arg); /* any thread; arg: the struct tl_webhooks */
/* Waits for a request in flight (timeout_ms at most); NULL is a no-op. */
void tl_webhooks_stop(struct tl_webhooks *w);

/* The route table, one "METHOD /path/{param}" a line: what `trunkline routes` prints and
 * what the OpenAPI agreement test compares with docs/openapi.yaml. */
void tl_api_routes_print(FILE *f);

#endif
