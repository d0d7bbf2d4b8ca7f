/* server: the HTTP side of the REST API — libmicrohttpd setup, the route table, auth,
 * body accumulation with a hard cap, JSON responses and the request log line.
 *
 * Every request gets a struct req_ctx on MHD's first callback (headers only). All checks
 * that need no body — route, method, token, role, id syntax, Content-Length and
 * Content-Type — run there, so a refused request is answered before its body is read:
 * an unauthenticated client cannot make us buffer anything. The body then arrives in
 * pieces, is copied into a buffer that never grows past cfg->max_body, and the handler
 * runs on the last callback. MHD's single internal polling thread runs all of this: the
 * store's fsync'ed writes block that thread, never the SIP/media loop.
 *
 * A handler that must wait for seconds (the trunk check) hands back a job instead of a
 * response (api_int.h): the connection is suspended, the job runs on a thread of its own,
 * and the connection resumes when it is done, so that one slow request never holds up the
 * others on the single MHD thread.
 *
 * Paths outside the API ("/", "/app.js", …) are the web UI's files, embedded at build time
 * (api/web.h); they are not routes of the table. */
#include "api/api_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "api/codec.h"
#include "api/web.h"

/* a job's thread (trunk check, agent destination check: DNS through glibc) */
#if defined(__SANITIZE_THREAD__)
#define JOB_STACK (4u * 1024 * 1024) /* ThreadSanitizer's frames are several times larger */
#else
#define JOB_STACK (256u * 1024)
#endif
#define CONN_LIMIT   512u
#define CONN_TIMEOUT 30u /* seconds of inactivity once a request's headers are in */
/* connections from one address: Chromium alone held more than 16 for one tab of the UI
 * under a slow server (separate socket pools per credentials mode, idle keep-alives kept
 * 30 s), and several operators may share one NAT address; 512 / 64 still takes eight
 * addresses to fill the server */
#define PER_IP_DEFAULT      64u
#define HEADER_TIMEOUT_DFLT 10u /* seconds to the end of the headers (and TLS handshake) */
/* TLS 1.2 and 1.3 only, GnuTLS's default suites otherwise (what Debian's MHD links) */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:%SERVER_PRECEDENCE"

/* A body over the cap that arrives without Content-Length (chunked) can only be refused
 * once MHD lets us answer, i.e. after it has been read: we drop the bytes, and past this
 * many we close the connection instead of reading on. */
#define DISCARD_MAX (4u * 1024 * 1024)

struct route {
    const char *method;
    const char *pattern;   /* "{…}" matches one non-empty path segment (or the part of one
                            * before a literal suffix that ends the path: "{…}.json") */
    const char *id_prefix; /* the id kind of that segment ("pn"), NULL without one */
    enum tl_api_access access;
    tl_api_handler fn;
    const char *params; /* the query parameters it reads, space-separated; NULL = none.
                         * Any other is a 400: a typo (?agnet_id=) must not list everything */
};

/* the parameter sets of the table below */
#define Q_WS     "workspace_id"
#define Q_PAGE   "limit cursor"
#define Q_WSPAGE Q_WS " " Q_PAGE

/* Twilio's REST API takes forms, not JSON: routes under its version prefix */
static bool form_route(const struct route *rt)
{
    return !strncmp(rt->pattern, "/2010-04-01/", 12);
}

/* The one source of truth for routing, `trunkline routes` and the OpenAPI agreement test. */
static const struct route routes[] = {
    {"GET", "/healthz", NULL, TL_ACCESS_PUBLIC, tl_h_healthz, NULL},
    {"GET", "/readyz", NULL, TL_ACCESS_PUBLIC, tl_h_readyz, NULL},
    {"GET", "/v1/me", NULL, TL_ACCESS_MEMBER, tl_h_me, NULL},
    {"GET", "/v1/sip/endpoints", NULL, TL_ACCESS_MEMBER, tl_h_sip_endpoints, NULL},
    {"GET", "/v1/workspaces", NULL, TL_ACCESS_MEMBER, tl_h_workspace_list, Q_PAGE},
    {"POST", "/v1/workspaces", NULL, TL_ACCESS_OPERATOR, tl_h_workspace_create, NULL},
    {"GET", "/v1/workspaces/{id}", "ws", TL_ACCESS_MEMBER, tl_h_workspace_get, NULL},
    {"PATCH", "/v1/workspaces/{id}", "ws", TL_ACCESS_OPERATOR, tl_h_workspace_patch, NULL},
    {"GET", "/v1/tokens", NULL, TL_ACCESS_ADMIN, tl_h_token_list, Q_WSPAGE},
    {"POST", "/v1/tokens", NULL, TL_ACCESS_ADMIN, tl_h_token_create, NULL},
    {"GET", "/v1/tokens/{id}", "tk", TL_ACCESS_ADMIN, tl_h_token_get, NULL},
    {"DELETE", "/v1/tokens/{id}", "tk", TL_ACCESS_ADMIN, tl_h_token_delete, NULL},
    {"GET", "/v1/agents", NULL, TL_ACCESS_MEMBER, tl_h_agent_list, Q_WSPAGE},
    {"POST", "/v1/agents", NULL, TL_ACCESS_ADMIN, tl_h_agent_create, Q_WS},
    {"GET", "/v1/agents/{id}", "ag", TL_ACCESS_MEMBER, tl_h_agent_get, Q_WS},
    {"PATCH", "/v1/agents/{id}", "ag", TL_ACCESS_ADMIN, tl_h_agent_patch, Q_WS},
    {"DELETE", "/v1/agents/{id}", "ag", TL_ACCESS_ADMIN, tl_h_agent_delete, Q_WS},
    {"GET", "/v1/phone-numbers", NULL, TL_ACCESS_MEMBER, tl_h_number_list,
     Q_WSPAGE " agent_id number q"},
    {"POST", "/v1/phone-numbers", NULL, TL_ACCESS_ADMIN, tl_h_number_import, Q_WS},
    {"GET", "/v1/phone-numbers/{id}", "pn", TL_ACCESS_MEMBER, tl_h_number_get, Q_WS},
    {"PUT", "/v1/phone-numbers/{id}", "pn", TL_ACCESS_ADMIN, tl_h_number_put, Q_WS},
    {"PATCH", "/v1/phone-numbers/{id}", "pn", TL_ACCESS_ADMIN, tl_h_number_patch, Q_WS},
    {"DELETE", "/v1/phone-numbers/{id}", "pn", TL_ACCESS_ADMIN, tl_h_number_delete, Q_WS},
    {"POST", "/v1/phone-numbers/{id}/release", "pn", TL_ACCESS_ADMIN, tl_h_number_release, Q_WS},
    {"GET", "/v1/phone-numbers/{id}/events", "pn", TL_ACCESS_MEMBER, tl_h_number_events, Q_WSPAGE},
    {"POST", "/v1/phone-numbers/{id}/check", "pn", TL_ACCESS_ADMIN, tl_h_number_check, Q_WS},
    {"GET", "/v1/calls", NULL, TL_ACCESS_MEMBER, tl_h_call_list, Q_WSPAGE " number_id"},
    {"POST", "/v1/calls", NULL, TL_ACCESS_ADMIN, tl_h_call_place, Q_WS},
    {"GET", "/v1/calls/{id}", "ca", TL_ACCESS_MEMBER, tl_h_call_get, Q_WS},
    {"DELETE", "/v1/calls/{id}", "ca", TL_ACCESS_ADMIN, tl_h_call_hangup, Q_WS},
    {"POST", "/v1/calls/{id}/hangup", "ca", TL_ACCESS_ADMIN, tl_h_call_hangup, Q_WS},
    {"GET", "/v1/events", NULL, TL_ACCESS_OPERATOR, tl_h_operator_events, Q_PAGE},
    {"GET", "/v1/cluster", NULL, TL_ACCESS_OPERATOR, tl_h_cluster, NULL},
    {"GET", "/v1/webhook", NULL, TL_ACCESS_MEMBER, tl_h_webhook_get, Q_WS},
    {"PUT", "/v1/webhook", NULL, TL_ACCESS_ADMIN, tl_h_webhook_put, Q_WS},
    {"DELETE", "/v1/webhook", NULL, TL_ACCESS_ADMIN, tl_h_webhook_delete, Q_WS},
    {"GET", "/v1/twilio-account", NULL, TL_ACCESS_ADMIN, tl_h_twilio_account_get, Q_WS},
    {"POST", "/v1/twilio-account", NULL, TL_ACCESS_ADMIN, tl_h_twilio_account_issue, Q_WS},
    {"DELETE", "/v1/twilio-account", NULL, TL_ACCESS_ADMIN, tl_h_twilio_account_delete, Q_WS},
    /* Twilio's REST call resource, for bots built for Twilio (HTTP Basic, api/twilio.c) */
    {"GET", "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json", NULL, TL_ACCESS_PUBLIC,
     tl_h_twilio_call_get, NULL},
    {"POST", "/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json", NULL, TL_ACCESS_PUBLIC,
     tl_h_twilio_call_update, NULL},
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* The request target as it came, before MHD decodes it: routing and the query checks read
 * this (issue 11 item 15: "/v1%2Ftokens" routed as "/v1/tokens"). Longer ones get 414. */
#define URI_MAX 4096

struct req_ctx {
    bool started;          /* the first on_request call ran */
    bool uri_too_long;     /* the raw target exceeded URI_MAX */
    char raw[URI_MAX + 1]; /* the raw target: path, then "?" and the query */
    const struct route *route;
    char method[16];                /* for the log line */
    char path[TL_API_PATH_MAX + 4]; /* for the log line: sanitised, never the query */
    char url[TL_API_PATH_MAX + 1];  /* the path as it came, for handlers ("" when longer) */
    char id[TL_ID_MAX];
    struct tl_token tok;
    struct timespec t0;
    int status; /* 0 until a response is queued */
    char *body;
    size_t len, cap;
    size_t discarded;
    bool too_large;
    struct tl_api_job *job;        /* set while the request waits for its job */
    const struct tl_web_file *web; /* a UI file, sent on the last callback */
};

void tl_api_routes_print(FILE *f)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        fprintf(f, "%s %s\n", routes[i].method, routes[i].pattern);
}

static int access_rank(enum tl_role r);

json_t *tl_api_routes_json(enum tl_role role)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < N_ROUTES; i++) {
        if (routes[i].access == TL_ACCESS_PUBLIC || access_rank(role) < (int)routes[i].access)
            continue;
        if (json_array_append_new(a, json_sprintf("%s %s", routes[i].method, routes[i].pattern))) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* ---------------------------------------------------------------- responses ---- */

/* What we send when even the error body cannot be built (out of memory). */
static const char internal_error_body[] =
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"internal error; try again\"}}";

void tl_api_reply(struct tl_api_resp *out, int status, json_t *j)
{
    json_decref(out->json);
    out->json = NULL;
    if (!j && status != 204) {
        tl_error("api", "reply", "status=%d error=out_of_memory", status);
        out->status = 500;
        return;
    }
    out->status = status;
    out->json = j;
}

void tl_api_fail(struct tl_api_resp *out, const struct tl_err *err)
{
    struct tl_err e = *err;
    if (e.status < 400 || e.status > 599 || !e.code[0])
        e.status = 500;
    /* a server fault is logged in full and answered in general terms: its message may
     * name files or SQLite internals that are nobody's business outside */
    if (e.status >= 500 && e.status != 503) {
        tl_error("api", "error", "status=%d code=%s message=%s", e.status, e.code, e.message);
        tl_err_set(&e, EIO, e.status, "internal_error", "", "internal error; try again");
    }
    out->location[0] = '\0';
    tl_api_reply(out, e.status, tl_codec_error(&e));
}

void tl_api_error(struct tl_api_resp *out, int status, const char *code, const char *field,
                  const char *fmt, ...)
{
    struct tl_err e = {0};
    tl_err_set(&e, 0, status, code, field, "%s", "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    tl_api_fail(out, &e);
}

void tl_api_not_found(struct tl_api_resp *out)
{
    tl_api_error(out, 404, "not_found", "", "no such resource");
}

void tl_api_fail_rc(struct tl_api_resp *out, int rc, const struct tl_err *err)
{
    if (err && err->status >= 400) {
        tl_api_fail(out, err);
        return;
    }
    switch (rc) {
    case ENOENT:
        tl_api_not_found(out);
        break;
    case EPERM:
        tl_api_error(out, 403, "forbidden", "", "not allowed");
        break;
    case EEXIST:
    case EBUSY:
        tl_api_error(out, 409, "conflict", "", "the request conflicts with the current state");
        break;
    case EINVAL:
        tl_api_error(out, 400, "invalid_request", "", "the request is not valid");
        break;
    default:
        tl_api_error(out, 500, "store_error", "", "unexpected error %d", rc);
        break;
    }
}

/* The headers every answer carries. The UI's pages get a Content-Security-Policy that lets
 * them load only our own files (no inline script or style, nothing from elsewhere, never in
 * a frame); JSON answers get one that allows nothing, should a browser ever render one. */
#define CSP_UI                                                                                     \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                    \
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "                 \
    "frame-ancestors 'none'"
#define CSP_API "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

static void safety_headers(struct MHD_Response *resp, bool ui)
{
    MHD_add_response_header(resp, "Content-Security-Policy", ui ? CSP_UI : CSP_API);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

/* Queues out on conn. Every response carries the same safety headers; bodies are JSON
 * except 204. Status and timing go to the log line written when the request completes. */
static enum MHD_Result send_resp(struct MHD_Connection *conn, struct req_ctx *c,
                                 struct tl_api_resp *out, const char *allow)
{
    int status = out->status ? out->status : 500;
    char *buf = NULL;
    struct MHD_Response *resp = NULL;

    if (status != 204) {
        buf = out->json ? json_dumps(out->json, JSON_COMPACT) : NULL;
        if (!buf)
            status = 500;
    }
    json_decref(out->json);
    out->json = NULL;
    if (buf) {
        resp = MHD_create_response_from_buffer(strlen(buf), buf, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(buf);
    } else if (status == 204) {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(sizeof internal_error_body - 1,
                                               (void *)internal_error_body, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    if (status != 204)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    safety_headers(resp, false);
    if (out->retry_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, out->retry_after);
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                out->www_auth ? out->www_auth : "Bearer realm=\"trunkline\"");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (out->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, out->location);
    c->status = status;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* One of the UI's embedded files: 304 when the browser's copy is current (ETag), else the
 * bytes. no-cache makes the browser ask each time, so a new build shows at the next load
 * without versioned file names. */
static enum MHD_Result send_web(struct MHD_Connection *conn, struct req_ctx *c,
                                const struct tl_web_file *f)
{
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = tl_web_etag_matches(inm, f->etag);
    struct MHD_Response *resp =
        fresh ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    if (!fresh)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, f->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    safety_headers(resp, true);
    c->status = fresh ? 304 : 200;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)c->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---------------------------------------------------------------- request helpers ---- */

const char *tl_api_query(const struct tl_api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int tl_api_page(const struct tl_api_req *r, struct tl_page *pg, struct tl_api_resp *out)
{
    const char *l = tl_api_query(r, "limit");
    const char *cur = tl_api_query(r, "cursor");

    pg->limit = TL_PAGE_DEFAULT;
    pg->cursor = NULL;
    if (l) {
        size_t v = 0, i = 0;
        for (; l[i] >= '0' && l[i] <= '9' && i < 4; i++)
            v = v * 10 + (size_t)(l[i] - '0');
        if (i == 0 || l[i] || v < 1 || v > TL_PAGE_MAX) {
            tl_api_error(out, 400, "invalid_field", "limit",
                         "limit must be a whole number from 1 to %d", TL_PAGE_MAX);
            return -1;
        }
        pg->limit = v;
    }
    if (cur && *cur) {
        if (strnlen(cur, TL_CURSOR_MAX) >= TL_CURSOR_MAX) {
            tl_api_error(out, 400, "invalid_field", "cursor",
                         "cursor is not one this server gave out; start again without it");
            return -1;
        }
        pg->cursor = cur;
    }
    return 0;
}

json_t *tl_api_list(json_t *data, const char *next_cursor)
{
    if (!data)
        return NULL;
    json_t *nc = next_cursor && next_cursor[0] ? json_string(next_cursor) : json_null();
    return json_pack("{s:s, s:o, s:o*}", "object", "list", "data", data, "next_cursor", nc);
}

int tl_api_scope(const struct tl_api_req *r, char ws[TL_ID_MAX], struct tl_api_resp *out)
{
    const char *q = tl_api_query(r, "workspace_id");

    if (r->tok.role != TL_ROLE_OPERATOR) {
        /* naming another workspace answers like a missing one: no existence leak */
        if (q && strcmp(q, r->tok.workspace_id) != 0) {
            tl_api_not_found(out);
            return -1;
        }
        tl_strlcpy(ws, r->tok.workspace_id, TL_ID_MAX);
        return 0;
    }
    if (!q || !*q) {
        tl_api_error(out, 400, "invalid_field", "workspace_id",
                     "an operator token acts on one workspace at a time: add "
                     "?workspace_id=ws_… to the request");
        return -1;
    }
    struct tl_workspace w;
    if (!tl_id_valid(q, "ws") || tl_store_workspace_get(r->store, q, &w) != 0) {
        tl_api_not_found(out);
        return -1;
    }
    tl_strlcpy(ws, q, TL_ID_MAX);
    return 0;
}

json_t *tl_api_body(const struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    json_t *j = tl_json_parse_body(r->body ? r->body : "", r->body_len, &err);
    if (!j) {
        if (err.status < 400)
            tl_err_set(&err, EINVAL, 400, "invalid_json", "", "the body is not valid JSON");
        tl_api_fail(out, &err);
    }
    return j;
}

/* ---------------------------------------------------------------- routing ---- */

static bool path_match(const char *pat, const char *path, const char **seg, size_t *seg_len)
{
    while (*pat && *path) {
        if (*pat == '{') {
            size_t n = strcspn(path, "/");
            pat = strchr(pat, '}') + 1;
            /* "{…}.json": the literal after the braces ends the segment */
            size_t lit = strcspn(pat, "/");
            if (lit && n > lit && !strncmp(path + n - lit, pat, lit))
                n -= lit;
            if (n == 0)
                return false;
            *seg = path;
            *seg_len = n;
            path += n;
            continue;
        }
        if (*pat++ != *path++)
            return false;
    }
    return *pat == '\0' && *path == '\0';
}

static int access_rank(enum tl_role r)
{
    switch (r) {
    case TL_ROLE_OPERATOR:
        return TL_ACCESS_OPERATOR;
    case TL_ROLE_ADMIN:
        return TL_ACCESS_ADMIN;
    case TL_ROLE_MEMBER:
        return TL_ACCESS_MEMBER;
    }
    return TL_ACCESS_PUBLIC;
}

/* "Bearer <token>"; false unless a token of plausible length follows */
static bool bearer(const char *h, char out[TL_TOKEN_MAX + 1])
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strnlen(h, TL_TOKEN_MAX + 1);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0 || n > TL_TOKEN_MAX)
        return false;
    memcpy(out, h, n);
    out[n] = '\0';
    return true;
}

/* application/json, optionally with "; charset=utf-8" (JSON is UTF-8 by definition) */
static bool is_json_type(const char *ct)
{
    static const char mt[] = "application/json";
    if (!ct || strncasecmp(ct, mt, sizeof mt - 1) != 0)
        return false;
    ct += sizeof mt - 1;
    ct += strspn(ct, " \t");
    if (!*ct)
        return true;
    if (*ct++ != ';')
        return false;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, "charset=", 8) != 0)
        return false;
    ct += 8;
    bool quoted = *ct == '"';
    ct += quoted;
    if (strncasecmp(ct, "utf-8", 5) != 0)
        return false;
    ct += 5;
    if (quoted && *ct++ != '"')
        return false;
    ct += strspn(ct, " \t");
    return *ct == '\0';
}

static void copy_sanitised(char *dst, size_t cap, const char *src)
{
    /* the log is split on spaces and '=': anything else than plain path characters
     * becomes '?', so a path cannot forge fields */
    size_t i = 0;
    for (; src[i] && i + 4 < cap; i++) {
        unsigned char ch = (unsigned char)src[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || strchr("/_-.~%+", ch);
        dst[i] = ok ? (char)ch : '?';
    }
    if (src[i]) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

static bool body_expected(struct MHD_Connection *conn, size_t *clen, bool *clen_known)
{
    const char *cl =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    *clen_known = false;
    *clen = 0;
    if (cl) {
        /* MHD has already refused a malformed Content-Length */
        unsigned long long v = strtoull(cl, NULL, 10);
        *clen_known = true;
        *clen = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
    }
    return (cl && *clen > 0) || te;
}

/* MHD's URI log callback: the only place the target is seen undecoded. Its return value
 * becomes the request's context (freed in on_completed, which MHD calls for every
 * request that reached this point). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct req_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &c->t0);
    size_t n = strnlen(uri, URI_MAX + 1);
    if (n > URI_MAX)
        c->uri_too_long = true;
    else
        memcpy(c->raw, uri, n + 1);
    return c;
}

/* A path that encodes '/' (%2F) or NUL (%00) means something else to every layer that
 * decodes it once more (a proxy, a log reader): refused outright. */
static bool path_smuggles(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if (p[i] != '%')
            continue;
        if ((p[i + 1] == '2' && (p[i + 2] == 'f' || p[i + 2] == 'F')) ||
            (p[i + 1] == '0' && p[i + 2] == '0'))
            return true;
    }
    return false;
}

/* true when name (n bytes) is one of the space-separated words of list */
static bool param_known(const char *list, const char *name, size_t n)
{
    for (const char *w = list; w && *w;) {
        size_t l = strcspn(w, " ");
        if (l == n && !memcmp(w, name, n))
            return true;
        w += l;
        w += strspn(w, " ");
    }
    return false;
}

/* The query's names against the route's: 0, or -1 with a 400 in out naming the first
 * unknown or repeated parameter. Names are compared raw: every name the API knows is
 * plain ASCII, so an encoded one is unknown. */
static int query_check(const struct route *rt, const char *q, struct tl_api_resp *out)
{
    const char *seen[16];
    size_t seen_len[16], n_seen = 0;
    while (q && *q) {
        size_t l = strcspn(q, "&");
        size_t nl = strcspn(q, "=");
        if (nl > l)
            nl = l;
        if (l > 0) { /* "a=1&&b=2": an empty piece is no parameter */
            char shown[48];
            size_t sl = nl < sizeof shown - 1 ? nl : sizeof shown - 1;
            for (size_t i = 0; i < sl; i++)
                shown[i] = q[i] > 0x20 && q[i] < 0x7f && q[i] != '"' && q[i] != '\\' ? q[i] : '?';
            shown[sl] = '\0';
            if (!param_known(rt->params, q, nl)) {
                tl_api_error(out, 400, "unknown_parameter", shown,
                             "%s %s takes no query parameter \"%s\"%s%s", rt->method, rt->pattern,
                             shown, rt->params ? "; it takes: " : "", rt->params ? rt->params : "");
                return -1;
            }
            for (size_t i = 0; i < n_seen; i++)
                if (seen_len[i] == nl && !memcmp(seen[i], q, nl)) {
                    tl_api_error(out, 400, "repeated_parameter", shown,
                                 "the query parameter \"%s\" is given more than once; give it "
                                 "once",
                                 shown);
                    return -1;
                }
            if (n_seen < sizeof seen / sizeof seen[0]) {
                seen[n_seen] = q;
                seen_len[n_seen++] = nl;
            }
        }
        q += l;
        if (*q == '&')
            q++;
    }
    return 0;
}

static enum MHD_Result count_auth(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    (void)value;
    if (key && !strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION))
        (*(unsigned *)cls)++;
    return MHD_YES;
}

/* The first callback: headers only. Returns with a response queued when the request is
 * refused, so that MHD discards the body instead of handing it to us. */
static enum MHD_Result first_call(struct tl_api *a, struct req_ctx *c, struct MHD_Connection *conn,
                                  const char *url, const char *method)
{
    struct tl_api_resp out = {0};
    char allow[64] = "";
    const char *seg = NULL;
    size_t seg_len = 0;
    bool path_known = false;

    (void)url; /* MHD's decoded path: routing reads the raw one */
    if (c->uri_too_long) {
        tl_api_error(&out, 414, "uri_too_long", "", "the request target exceeds %d bytes", URI_MAX);
        return send_resp(conn, c, &out, NULL);
    }
    char *qmark = strchr(c->raw, '?');
    const char *query = qmark ? qmark + 1 : NULL;
    size_t plen = qmark ? (size_t)(qmark - c->raw) : strlen(c->raw);
    if (plen > TL_API_PATH_MAX) {
        tl_api_error(&out, 414, "uri_too_long", "", "the request path exceeds %d bytes",
                     TL_API_PATH_MAX);
        return send_resp(conn, c, &out, NULL);
    }
    if (path_smuggles(c->raw, plen)) {
        tl_api_error(&out, 400, "invalid_path", "",
                     "the path encodes \"/\" (%%2F) or NUL (%%00); send the path unencoded");
        return send_resp(conn, c, &out, NULL);
    }
    char path[TL_API_PATH_MAX + 1];
    memcpy(path, c->raw, plen);
    path[plen] = '\0';
    memcpy(c->url, path, plen + 1);

    const struct tl_web_file *wf = tl_web_find(path);
    if (wf) {
        /* answered on the last callback: an answer queued before the request is read
         * makes MHD close the connection, and a page loads several files */
        if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) {
            c->web = wf;
            return MHD_YES;
        }
        tl_api_error(&out, 405, "method_not_allowed", "", "%s is not allowed here; use GET",
                     c->method);
        return send_resp(conn, c, &out, "GET, HEAD");
    }
    {
        for (size_t i = 0; i < N_ROUTES && !c->route; i++) {
            if (!path_match(routes[i].pattern, path, &seg, &seg_len))
                continue;
            path_known = true;
            if (strcmp(routes[i].method, method) == 0)
                c->route = &routes[i];
            else if (strlen(allow) + strlen(routes[i].method) + 3 < sizeof allow)
                snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                         allow[0] ? ", " : "", routes[i].method);
        }
    }
    if (!path_known) {
        tl_api_not_found(&out);
        return send_resp(conn, c, &out, NULL);
    }
    if (!c->route) {
        tl_api_error(&out, 405, "method_not_allowed", "", "%s is not allowed here; use %s",
                     c->method, allow);
        return send_resp(conn, c, &out, allow);
    }
    const struct route *rt = c->route;

    unsigned n_auth = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_auth, &n_auth);
    if (n_auth > 1) {
        /* which one would count? a proxy may check the first, we the last: refuse */
        tl_api_error(&out, 400, "repeated_credentials", "Authorization",
                     "the request carries %u Authorization headers; send exactly one", n_auth);
        return send_resp(conn, c, &out, NULL);
    }
    if (rt->access != TL_ACCESS_PUBLIC) {
        char secret[TL_TOKEN_MAX + 1];
        const char *h =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        bool ok = bearer(h, secret) && tl_store_token_auth(a->store, secret, &c->tok) == 0;
        explicit_bzero(secret, sizeof secret);
        if (!ok) {
            tl_api_error(&out, 401, "unauthorized", "",
                         "send a valid API token as \"Authorization: Bearer <token>\"");
            return send_resp(conn, c, &out, NULL);
        }
        if (access_rank(c->tok.role) < (int)rt->access) {
            tl_api_error(&out, 403, "forbidden", "", "a %s token may not %s %s",
                         tl_role_name(c->tok.role), rt->method, rt->pattern);
            return send_resp(conn, c, &out, NULL);
        }
    }
    if (query_check(rt, query, &out))
        return send_resp(conn, c, &out, NULL);
    if (rt->id_prefix) {
        if (seg_len >= TL_ID_MAX) {
            tl_api_not_found(&out);
            return send_resp(conn, c, &out, NULL);
        }
        memcpy(c->id, seg, seg_len);
        c->id[seg_len] = '\0';
        if (!tl_id_valid(c->id, rt->id_prefix)) {
            tl_api_not_found(&out);
            return send_resp(conn, c, &out, NULL);
        }
    }

    size_t clen;
    bool clen_known;
    bool has_body = body_expected(conn, &clen, &clen_known);
    if (clen_known && clen > a->max_body) {
        tl_api_error(&out, 413, "body_too_large", "", "the body exceeds the limit of %zu bytes",
                     a->max_body);
        return send_resp(conn, c, &out, NULL);
    }
    bool writes = !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
    const char *ctype =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (writes && has_body && !form_route(rt) && !is_json_type(ctype)) {
        tl_api_error(&out, 415, "unsupported_media_type", "",
                     "send the body as JSON with \"Content-Type: application/json\"");
        return send_resp(conn, c, &out, NULL);
    }
    if (writes && has_body && form_route(rt) &&
        (!ctype || strncasecmp(ctype, "application/x-www-form-urlencoded", 33))) {
        tl_api_error(&out, 415, "unsupported_media_type", "",
                     "send the body as a form, \"Content-Type: "
                     "application/x-www-form-urlencoded\", as Twilio's REST API takes it");
        return send_resp(conn, c, &out, NULL);
    }
    /* size the buffer for what was announced (already capped), so that the common case
     * copies once */
    if (clen_known && clen > 0) {
        c->body = malloc(clen);
        if (!c->body)
            return MHD_NO;
        c->cap = clen;
    }
    return MHD_YES;
}

/* Copies one piece of the body. The cap is checked before the buffer grows. */
static enum MHD_Result take_body(struct tl_api *a, struct req_ctx *c, const char *data, size_t n)
{
    if (c->too_large || n > a->max_body - c->len) {
        if (!c->too_large) {
            c->too_large = true;
            free(c->body);
            c->body = NULL;
            c->len = c->cap = 0;
        }
        c->discarded += n;
        return c->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap : 1024;
        while (cap < c->len + n)
            cap = cap > a->max_body / 2 ? a->max_body : cap * 2;
        char *nb = realloc(c->body, cap);
        if (!nb)
            return MHD_NO;
        c->body = nb;
        c->cap = cap;
    }
    memcpy(c->body + c->len, data, n);
    c->len += n;
    return MHD_YES;
}

/* ---------------------------------------------------------------- jobs ---- */

static void *job_thread(void *arg)
{
    struct tl_api_job *j = arg;
    struct tl_api *a = j->api;
    j->run(j);
    pthread_mutex_lock(&a->mu);
    j->done = true;
    for (struct tl_api_job **p = &a->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    a->n_jobs--;
    /* under a->mu: tl_api_stop cannot stop MHD between this and the resume */
    MHD_resume_connection(j->conn);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* Starts j for the request on conn and suspends the connection; MHD calls on_request again
 * once the job thread resumes it. Where no thread can be had, the job runs here, on MHD's
 * thread (bounded by its own deadline): slower for everybody, never wrong. false when the
 * answer is already in out. */
static bool job_start(struct tl_api *a, struct req_ctx *c, struct MHD_Connection *conn,
                      struct tl_api_job *j, struct tl_api_resp *out)
{
    pthread_attr_t at;
    pthread_t th;
    bool started = false;

    j->api = a;
    j->conn = conn;
    c->job = j;
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        c->job = NULL;
        j->finish(j, out);
        tl_api_error(out, 503, "shutting_down", "", "the server is stopping; try again");
        return false;
    }
    /* suspend before the thread exists, under a->mu, so that its resume (which takes
     * a->mu first) always comes after the suspend */
    MHD_suspend_connection(conn);
    if (pthread_attr_init(&at) == 0) {
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, JOB_STACK);
        started = pthread_create(&th, &at, job_thread, j) == 0;
        pthread_attr_destroy(&at);
    }
    if (started) {
        j->next = a->jobs;
        a->jobs = j;
        a->n_jobs++;
        pthread_mutex_unlock(&a->mu);
        return true;
    }
    MHD_resume_connection(conn);
    pthread_mutex_unlock(&a->mu);
    tl_warnl("api", "job.inline", "reason=\"no thread for the job: it runs on the HTTP thread\"");
    j->run(j);
    j->done = true;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct tl_api *a = cls;
    struct req_ctx *c = *con_cls;

    if (!c)
        return MHD_NO; /* on_uri ran out of memory */
    if (!c->started) {
        c->started = true;
        /* the headers are in: from here the longer idle timeout applies (body, handler,
         * keep-alive); before, header_timeout_s (issue 11 item 14: slow headers) */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, a->conn_timeout_s);
        copy_sanitised(c->method, sizeof c->method, method);
        /* the raw path for the log line too: what was sent, not what it decodes to */
        char lp[TL_API_PATH_MAX + 1];
        size_t pl = strcspn(c->raw, "?");
        if (pl > TL_API_PATH_MAX)
            pl = TL_API_PATH_MAX;
        memcpy(lp, c->raw, pl);
        lp[pl] = '\0';
        copy_sanitised(c->path, sizeof c->path, c->uri_too_long ? "(too long)" : lp);
        return first_call(a, c, conn, url, method);
    }
    if (c->status) {
        *upload_data_size = 0; /* answered already: MHD discards the rest */
        return MHD_YES;
    }
    if (c->job) {
        struct tl_api_resp out = {0};
        if (!c->job->done)
            return MHD_YES; /* not ours to answer yet (a call before the suspend took hold) */
        struct tl_api_job *j = c->job;
        c->job = NULL;
        j->finish(j, &out);
        return send_resp(conn, c, &out, NULL);
    }
    if (c->web) {
        if (*upload_data_size) {
            *upload_data_size = 0; /* a GET has no use for a body */
            return MHD_YES;
        }
        return send_web(conn, c, c->web);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        return take_body(a, c, upload_data, n);
    }

    struct tl_api_resp out = {0};
    if (c->too_large) {
        tl_api_error(&out, 413, "body_too_large", "", "the body exceeds the limit of %zu bytes",
                     a->max_body);
        return send_resp(conn, c, &out, NULL);
    }
    struct tl_api_req r = {
        .api = a,
        .store = a->store,
        .conn = conn,
        .id = c->id,
        .body = c->body,
        .body_len = c->len,
        .tok = c->tok,
        .path = c->url,
    };
    c->route->fn(&r, &out);
    explicit_bzero(&r.tok, sizeof r.tok);
    if (out.job) {
        struct tl_api_job *j = out.job;
        out.job = NULL;
        if (job_start(a, c, conn, j, &out))
            return MHD_YES;
    }
    return send_resp(conn, c, &out, NULL);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *c = *con_cls;
    if (!c)
        return;
    if (!c->started) { /* the request line came, never the headers (a stalled client) */
        free(c);
        *con_cls = NULL;
        return;
    }
    if (c->job) { /* ended before it could be answered (shutdown): the job still frees */
        struct tl_api_resp out = {0};
        c->job->finish(c->job, &out);
        json_decref(out.json);
    }
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms =
        (double)(t1.tv_sec - c->t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - c->t0.tv_nsec) / 1e6;
    /* never the body, the Authorization header or the query string */
    tl_info("api", "request", "method=%s path=%s status=%d ms=%.1f", c->method, c->path, c->status,
            ms);
    if (c->body)
        explicit_bzero(c->body, c->len); /* bodies carry trunk passwords */
    free(c->body);
    free(c);
    *con_cls = NULL;
}

/* MHD's own diagnostics (bind failures, broken connections) go to our log, not stderr. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[300];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    tl_warnl("api", "http", "detail=%s", msg);
}

/* ---------------------------------------------------------------- lifecycle ---- */

/* "host:port", "[v6]:port", "localhost:port", ":port" (all IPv4 interfaces) */
static int parse_listen(const char *s, struct sockaddr_storage *ss, bool *v6, struct tl_err *err)
{
    struct sockaddr_in *sa4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)ss;
    char host[64];
    const char *port_s;
    unsigned long port = 0;
    size_t hl, i = 0;

    memset(ss, 0, sizeof *ss);
    *v6 = false;
    if (!s)
        s = "";
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            goto bad;
        hl = (size_t)(close - s - 1);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        port_s = close + 2;
        *v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            goto bad; /* no port, or a bare IPv6 address that needs brackets */
        hl = (size_t)(colon - s);
        if (hl >= sizeof host)
            goto bad;
        memcpy(host, s, hl);
        host[hl] = '\0';
        port_s = colon + 1;
    }

    for (; port_s[i] >= '0' && port_s[i] <= '9' && i < 6; i++)
        port = port * 10 + (unsigned long)(port_s[i] - '0');
    if (i == 0 || port_s[i] || port > 65535)
        goto bad;

    if (*v6) {
        sa6->sin6_family = AF_INET6;
        sa6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &sa6->sin6_addr) != 1)
            goto bad;
        return 0;
    }
    sa4->sin_family = AF_INET;
    sa4->sin_port = htons((uint16_t)port);
    if (!host[0] || !strcmp(host, "*"))
        sa4->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (!strcasecmp(host, "localhost"))
        sa4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &sa4->sin_addr) != 1)
        goto bad;
    return 0;
bad:
    return tl_err_set(err, EINVAL, 400, "invalid_field", "api_listen",
                      "api listen address \"%.100s\" is not host:port (IPv4, [IPv6] or "
                      "localhost; port 0..65535)",
                      s);
}

static struct MHD_Daemon *start_mhd(struct tl_api *a, unsigned int poll_flag, bool v6,
                                    const struct sockaddr_storage *ss, unsigned per_ip,
                                    unsigned header_timeout)
{
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | poll_flag | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (v6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    if (a->tls_cert)
        flags |= MHD_USE_TLS;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
        MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss, MHD_OPTION_CONNECTION_LIMIT, CONN_LIMIT,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_CONNECTION_TIMEOUT, header_timeout,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_ARRAY, a->tls_cert ? tls : tls + 3, MHD_OPTION_END);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
}

/* a whole PEM file into memory, capped (a certificate chain is a few KiB) */
static char *read_pem(const char *path, const char *field, struct tl_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        tl_err_set(err, errno, 500, "internal_error", field, "api: cannot read %s: %s", path,
                   strerror(errno));
        return NULL;
    }
    size_t cap = 256 * 1024;
    char *buf = malloc(cap + 1);
    size_t n = buf ? fread(buf, 1, cap + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > cap) {
        free(buf);
        tl_err_set(err, EINVAL, 500, "internal_error", field, "api: %s is empty or over 256 KiB",
                   path);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void free_pems(struct tl_api *a)
{
    free(a->tls_cert);
    if (a->tls_key)
        explicit_bzero(a->tls_key, strlen(a->tls_key));
    free(a->tls_key);
    a->tls_cert = a->tls_key = NULL;
}

int tl_api_start(struct tl_api **ap, const struct tl_api_config *cfg, struct tl_store *store,
                 struct tl_err *err)
{
    struct tl_api *a = NULL;
    const union MHD_DaemonInfo *di;
    struct sockaddr_storage ss;
    bool v6;
    int rc;

    *ap = NULL;
    if (!cfg || !store || cfg->max_body == 0) {
        rc = tl_err_set(err, EINVAL, 500, "internal_error", "", "api: bad configuration");
        goto out;
    }
    rc = parse_listen(cfg->listen, &ss, &v6, err);
    if (rc)
        goto out;
    if (!cfg->tls && !cfg->allow_plain_http && !is_loopback(&ss)) {
        rc = tl_err_set(err, EPERM, 500, "invalid_setting", "api_listen",
                        "api_listen %s is not a loopback address and api_tls is off: API tokens "
                        "would cross the network in clear. Set api_tls=on (HTTPS with the "
                        "daemon's certificate), or api_allow_plain_http=on when a TLS proxy in "
                        "front of the API terminates HTTPS",
                        cfg->listen);
        goto out;
    }
    if (cfg->tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        rc = tl_err_set(err, ENOTSUP, 500, "invalid_setting", "api_tls",
                        "api_tls=on, but this libmicrohttpd was built without TLS: install one "
                        "with GnuTLS (Debian's libmicrohttpd12 has it) or put a TLS proxy in "
                        "front and set api_allow_plain_http=on");
        goto out;
    }
    a = calloc(1, sizeof *a);
    if (!a) {
        rc = tl_err_set(err, ENOMEM, 500, "internal_error", "", "api: out of memory");
        goto out;
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->store = store;
    a->max_body = cfg->max_body;
    tl_strlcpy(a->public_ip, cfg->public_ip ? cfg->public_ip : "", sizeof a->public_ip);
    tl_strlcpy(a->sip_listen, cfg->sip_listen ? cfg->sip_listen : "", sizeof a->sip_listen);
    tl_strlcpy(a->tls_ca_file, cfg->sip_tls_ca_file ? cfg->sip_tls_ca_file : "",
               sizeof a->tls_ca_file);
    tl_strlcpy(a->dns_servers, cfg->sip_dns_servers ? cfg->sip_dns_servers : "",
               sizeof a->dns_servers);
    a->sip_t1_ms = cfg->sip_t1_ms;
    a->conn_timeout_s = CONN_TIMEOUT;
    if (cfg->tls) {
        if (!(a->tls_cert = read_pem(cfg->tls_cert_file, "tls_cert", err)) ||
            !(a->tls_key = read_pem(cfg->tls_key_file, "tls_key", err))) {
            rc = EINVAL;
            goto out;
        }
    }
    a->sip_tcp_port = cfg->sip_tcp_port;
    a->sip_tls_port = cfg->sip_tls_port;
    a->cluster = cfg->cluster;
    tl_strlcpy(a->public_host, cfg->public_host ? cfg->public_host : "", sizeof a->public_host);
    tl_strlcpy(a->insecure_hosts, cfg->agent_insecure_hosts ? cfg->agent_insecure_hosts : "",
               sizeof a->insecure_hosts);
    rc = tl_net_guard_parse(&a->guard, cfg->agent_allow_networks ? cfg->agent_allow_networks : "",
                            "agent_allow_networks", err);
    if (rc)
        goto out;
    rc = tl_prefix_list_parse(cfg->outbound_deny_prefixes, a->deny, TL_DENY_MAX, &a->n_deny,
                              "outbound_deny_prefixes", err);
    if (rc)
        goto out;

    /* epoll scales to the connection limit in one thread; the generic fallback is for
     * builds of libmicrohttpd without it */
    unsigned per_ip = cfg->per_ip_limit ? cfg->per_ip_limit : PER_IP_DEFAULT;
    unsigned hto = cfg->header_timeout_s ? cfg->header_timeout_s : HEADER_TIMEOUT_DFLT;
    errno = 0;
    a->mhd = start_mhd(a, MHD_USE_EPOLL, v6, &ss, per_ip, hto);
    if (!a->mhd)
        a->mhd = start_mhd(a, MHD_USE_AUTO, v6, &ss, per_ip, hto);
    if (!a->mhd) {
        int e = errno ? errno : EADDRINUSE;
        rc = tl_err_set(err, e, 500, "internal_error", "api_listen", "api: cannot listen on %s: %s",
                        cfg->listen, strerror(e));
        goto out;
    }
    di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = di ? di->port : 0;
    tl_info("api", "listening", "listen=%s port=%d tls=%s per_ip=%u header_timeout_s=%u",
            cfg->listen, a->port, a->tls_cert ? "on" : "off", per_ip, hto);
    *ap = a;
    a = NULL;
out:
    if (a) {
        if (a->mhd)
            MHD_stop_daemon(a->mhd);
        free_pems(a);
        pthread_mutex_destroy(&a->mu);
        pthread_cond_destroy(&a->cv);
        free(a);
    }
    return rc;
}

void tl_api_stop(struct tl_api *a)
{
    if (!a)
        return;
    /* MHD must not stop with a connection suspended: ask running jobs to end early and
     * wait until each has resumed its connection */
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    for (struct tl_api_job *j = a->jobs; j; j = j->next)
        if (j->cancel)
            j->cancel(j);
    while (a->n_jobs > 0)
        pthread_cond_wait(&a->cv, &a->mu);
    pthread_mutex_unlock(&a->mu);
    /* joins the polling thread: a handler in the middle of a store write finishes first */
    MHD_stop_daemon(a->mhd);
    free_pems(a);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

void tl_api_set_calls(struct tl_api *a, const struct tl_api_calls *c)
{
    pthread_mutex_lock(&a->mu);
    a->calls = c ? *c : (struct tl_api_calls){0};
    pthread_mutex_unlock(&a->mu);
}

int tl_api_port(const struct tl_api *a)
{
    return a ? a->port : 0;
}
