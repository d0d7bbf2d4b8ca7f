/* api_int.h: private to src/api. The server (server.c) owns HTTP: routing, auth, body
 * accumulation, response headers and the request log. Handlers (handlers*.c) see one
 * authenticated, size-checked request and fill one response; they never touch MHD.
 *
 * Ownership: a handler sets out->json to a new reference (or leaves it NULL for 204); the
 * server sends and releases it. Every tl_api_* helper below that takes a json_t steals the
 * reference, also on failure. */
#ifndef TL_API_INT_H
#define TL_API_INT_H

#include <jansson.h>
#include <pthread.h>

#include "api/api.h"
#include "net/guard.h"

struct tl_api_job;

#define TL_DENY_MAX 256 /* outbound_deny_prefixes entries */

struct tl_api {
    struct MHD_Daemon *mhd;
    struct tl_store *store;
    size_t max_body;
    struct tl_net_guard guard; /* where agent URLs may lead (net/guard.h) */
    char insecure_hosts[1024]; /* ws:// accepted for these hosts */
    char public_host[TL_HOST_MAX + 1];
    char public_ip[64];
    char sip_listen[64];
    char tls_ca_file[512];
    char dns_servers[256];
    unsigned sip_t1_ms;
    int sip_tcp_port, sip_tls_port;
    int port;
    unsigned conn_timeout_s;  /* once the headers are in */
    char *tls_cert, *tls_key; /* PEM text MHD reads from (the key wiped at stop) */
    /* jobs (requests answered later) and trunk checks; mu guards everything below */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tl_api_job *jobs; /* running on their threads */
    unsigned n_jobs;
    unsigned n_checks; /* trunk checks admitted and not yet answered */
    bool stopping;
    struct tl_api_calls calls;  /* live-call control (the daemon sets it); fn NULL: none */
    struct tl_cluster *cluster; /* NULL: one node (read only after start) */
    /* outbound_deny_prefixes, parsed once (read only after start) */
    size_t n_deny;
    char deny[TL_DENY_MAX][TL_PREFIX_MAX + 1];
};

/* Resolves host (getaddrinfo, at most ~2 s) and checks every address with the guard.
 * 0: all allowed; EPERM: one is refused, why says which and what it is ("bot.example.com
 * resolves to 10.0.0.5, a private address"); ENOENT / ETIMEDOUT / EIO: it did not resolve
 * (why says why). (dest.c) */
int tl_api_resolve_check(const struct tl_net_guard *g, const char *host, uint16_t port, char *why,
                         size_t cap);

/* Who may reach a route at all; handlers refine (own workspace, token roles). */
enum tl_api_access {
    TL_ACCESS_PUBLIC,   /* no token (health probes) */
    TL_ACCESS_MEMBER,   /* any valid token */
    TL_ACCESS_ADMIN,    /* admin or operator */
    TL_ACCESS_OPERATOR, /* operator only */
};

#define TL_API_PATH_MAX 256

struct tl_api_req {
    struct tl_api *api;
    struct tl_store *store;
    struct MHD_Connection *conn;
    const char *id;   /* the {id} path segment, validated against the route's prefix */
    const char *body; /* NULL when the request had none; at most api->max_body bytes */
    size_t body_len;
    struct tl_token tok; /* the caller (unset on public routes) */
    const char *path;    /* the request path as it came (no query string) */
};

struct tl_api_resp {
    int status;
    json_t *json;            /* NULL only with 204 */
    char location[96];       /* "" = no Location header */
    const char *retry_after; /* a static string of seconds, or NULL */
    struct tl_api_job *job;  /* instead of json: the answer comes later (below) */
    const char *www_auth;    /* with 401: the challenge (a static string); NULL: Bearer */
};

/* A request answered later. A handler whose work takes seconds (the trunk check waits
 * for a SIP peer) sets out->job instead of a response and returns at once. The server
 * suspends the connection, runs job->run on a thread of its own (MHD's single thread goes
 * on serving other requests), resumes the connection when run returns, and then calls
 * job->finish on MHD's thread, which fills the response and frees the job. finish is
 * called exactly once, also when the request ends unanswered (then out is thrown away).
 * cancel (may be NULL) is called under the server's lock at stop and must only make run
 * return soon: the server waits for every job before it stops. */
struct tl_api_job {
    void (*run)(struct tl_api_job *j);
    void (*finish)(struct tl_api_job *j, struct tl_api_resp *out);
    void (*cancel)(struct tl_api_job *j);
    /* the server's */
    struct tl_api *api;
    struct MHD_Connection *conn;
    struct tl_api_job *next;
    bool done;
};

typedef void (*tl_api_handler)(struct tl_api_req *r, struct tl_api_resp *out);

/* ---- helpers (server.c) ---- */
/* a query parameter, NULL when absent */
const char *tl_api_query(const struct tl_api_req *r, const char *name);
/* out = status + j (stolen); a NULL j (allocation failed) becomes 500 */
void tl_api_reply(struct tl_api_resp *out, int status, json_t *j);
/* out = the error body of err; a zero err->status becomes 500 internal_error */
void tl_api_fail(struct tl_api_resp *out, const struct tl_err *err);
/* out = an error for rc from the store: err when it was filled, else a mapping of rc
 * (ENOENT 404 not_found, …) so that functions without a struct tl_err answer well too */
void tl_api_fail_rc(struct tl_api_resp *out, int rc, const struct tl_err *err);
void tl_api_error(struct tl_api_resp *out, int status, const char *code, const char *field,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void tl_api_not_found(struct tl_api_resp *out);
/* limit (1..TL_PAGE_MAX, default TL_PAGE_DEFAULT) and cursor; 0 or -1 with out filled */
int tl_api_page(const struct tl_api_req *r, struct tl_page *pg, struct tl_api_resp *out);
/* {"object":"list","data":data,"next_cursor":null|"…"}; steals data */
json_t *tl_api_list(json_t *data, const char *next_cursor);
/* The workspace a request on agents or phone numbers acts on: the token's own (a
 * ?workspace_id naming another is 404), or for the operator the ?workspace_id it must
 * give (400 when missing, 404 when unknown). 0 or -1 with out filled. */
int tl_api_scope(const struct tl_api_req *r, char ws[TL_ID_MAX], struct tl_api_resp *out);
/* parses the body with tl_json_parse_body; NULL with out filled */
json_t *tl_api_body(const struct tl_api_req *r, struct tl_api_resp *out);
/* ["GET /v1/me", …]: the routes a token of this role may call (what the UI offers) */
json_t *tl_api_routes_json(enum tl_role role);

/* ---- helpers (handlers.c) shared by the handler files ---- */
/* Answers a list route after the store's walk into data: the page, or the error of rc
 * (data released; err as for tl_api_fail_rc). A NULL data with rc 0 (the array could not
 * be allocated) answers 500. */
void tl_api_reply_page(struct tl_api_resp *out, int rc, const struct tl_err *err, json_t *data,
                       const char *next_cursor);
/* DELETE of an object in the caller's workspace (tl_api_scope): 204, or the store's error */
typedef int (*tl_api_remove_fn)(struct tl_store *s, const char *workspace_id, const char *id,
                                struct tl_err *err);
void tl_api_remove(struct tl_api_req *r, struct tl_api_resp *out, tl_api_remove_fn rm);

/* ---- handlers (handlers.c, handlers_numbers.c, handlers_calls.c): one per route ---- */
void tl_h_healthz(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_readyz(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_me(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_sip_endpoints(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_workspace_list(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_workspace_create(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_workspace_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_workspace_patch(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_token_list(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_token_create(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_token_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_token_delete(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_agent_list(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_agent_create(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_agent_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_agent_patch(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_agent_delete(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_list(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_import(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_put(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_patch(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_delete(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_release(struct tl_api_req *r, struct tl_api_resp *out);
/* check.c: OPTIONS to the number's outbound trunk, answered by a job */
void tl_h_number_check(struct tl_api_req *r, struct tl_api_resp *out);
/* handlers_calls.c: call records, a number's and the operator-level diagnostic events
 * (read only) */
void tl_h_call_list(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_call_get(struct tl_api_req *r, struct tl_api_resp *out);
/* outbound calls: POST /v1/calls; POST /v1/calls/{id}/hangup and DELETE /v1/calls/{id} */
void tl_h_call_place(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_call_hangup(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_number_events(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_operator_events(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_cluster(struct tl_api_req *r, struct tl_api_resp *out);
/* webhooks.c: the workspace's webhook (its secret shown once, on PUT) */
void tl_h_webhook_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_webhook_put(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_webhook_delete(struct tl_api_req *r, struct tl_api_resp *out);
/* twilio.c: the workspace's Twilio-shaped credentials, and Twilio's call resource */
void tl_h_twilio_account_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_twilio_account_issue(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_twilio_account_delete(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_twilio_call_get(struct tl_api_req *r, struct tl_api_resp *out);
void tl_h_twilio_call_update(struct tl_api_req *r, struct tl_api_resp *out);

#endif
