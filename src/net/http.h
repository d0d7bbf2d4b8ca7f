/* net/http: the daemon's HTTP client for user-given URLs (TwiML voice URLs, status
 * callbacks, workspace webhooks). libcurl, always off the loop: a request runs either on
 * libuv's worker pool with its completion back on the loop (tl_http_start), or
 * synchronously on a thread of the caller's (tl_http_run, for delivery workers).
 *
 * Every address a URL resolves to passes net/guard right before the connection is made
 * (libcurl's CURLOPT_OPENSOCKETFUNCTION), so a name that rebinds to 127.0.0.1 or the
 * cloud metadata address between save and call is still refused: server-side request
 * forgery. Redirects are not followed (a 3xx is returned as it is: the Location could name
 * any address, and Twilio does not follow them for webhooks either). http:// only when
 * the request says so (the caller applies the operator's insecure-hosts list). Response
 * bodies are capped before they are stored. No cookies, no proxies from the environment,
 * no protocols but HTTP and HTTPS. */
#ifndef TL_NET_HTTP_H
#define TL_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "core/core.h"
#include "net/guard.h"

#define TL_HTTP_HEADERS_MAX      32
#define TL_HTTP_BODY_MAX_DEFAULT (64u * 1024u)

/* What went wrong, for events and hints. */
enum tl_http_fail {
    TL_HTTP_OK = 0,        /* an HTTP response arrived (any status; see status) */
    TL_HTTP_FAIL_URL,      /* the URL is not http(s), or http:// was not allowed */
    TL_HTTP_FAIL_DNS,      /* the name did not resolve */
    TL_HTTP_FAIL_GUARD,    /* every address was refused by the guard */
    TL_HTTP_FAIL_CONNECT,  /* connection refused or unreachable */
    TL_HTTP_FAIL_TLS,      /* handshake or certificate verification failed */
    TL_HTTP_FAIL_TIMEOUT,  /* the deadline passed */
    TL_HTTP_FAIL_TOO_BIG,  /* the response body exceeded max_body */
    TL_HTTP_FAIL_OTHER,    /* protocol error, out of memory, … (why says) */
    TL_HTTP_FAIL_CANCELED, /* tl_http_cancel (never reported to the callback) */
};

struct tl_http_req {
    const char *method;       /* "GET" or "POST" */
    const char *url;          /* absolute http(s) URL; for GET, query included */
    const char *content_type; /* POST: e.g. "application/x-www-form-urlencoded" */
    const void *body;         /* POST body (copied by tl_http_start) */
    size_t body_len;
    const char *headers[TL_HTTP_HEADERS_MAX]; /* "Name: value" lines, NULL-terminated
                                               * (copied; values are never logged) */
    unsigned timeout_ms;                      /* the whole request, DNS to last byte; 0 = 10000 */
    size_t max_body;                          /* 0 = TL_HTTP_BODY_MAX_DEFAULT */
    bool allow_http;                          /* http:// permitted for this URL */
    const struct tl_net_guard *guard;         /* allow-list (copied); NULL: no allow-list, every
                                               * class of guard.h refused */
    bool no_guard;                            /* tests of this module only: skip the guard */
    const char *ca_file; /* extra trust anchors (PEM) or NULL for the system's */
};

struct tl_http_resp {
    enum tl_http_fail fail;
    int status;             /* HTTP status when fail == TL_HTTP_OK, else 0 */
    char why[256];          /* plain words when fail != OK ("connection refused by
                             * 203.0.113.5:443", "the certificate names other hosts") */
    char content_type[128]; /* the response's Content-Type, lower-cased, without
                             * parameters ("" when absent) */
    char *body;             /* NUL-terminated, owned by the response (free with
                             * tl_http_resp_free) */
    size_t body_len;
    unsigned elapsed_ms;
};

void tl_http_resp_free(struct tl_http_resp *r);

/* Runs the request on the calling thread (not the loop's). 0 with *r filled (check
 * r->fail and r->status), or EINVAL for a request that cannot be made (no URL, bad
 * method; err says which). Thread-safe. */
int tl_http_run(const struct tl_http_req *rq, struct tl_http_resp *r, struct tl_err *err);

struct tl_http;
/* Called on the loop, once, unless the request was canceled first. r is valid during the
 * call only; steal r->body by setting it to NULL. */
typedef void (*tl_http_done_cb)(void *arg, struct tl_http_resp *r);

/* Queues the request on libuv's worker pool. 0 and *out (a handle for cancel), or an errno
 * (EINVAL as tl_http_run; ENOMEM). */
int tl_http_start(uv_loop_t *loop, const struct tl_http_req *rq, tl_http_done_cb cb, void *arg,
                  struct tl_http **out, struct tl_err *err);
/* The callback will not be called; the worker finishes (bounded by the request's
 * deadline) and the handle frees itself. Safe from the loop thread only, and only before
 * the callback ran. */
void tl_http_cancel(struct tl_http *h);

/* curl_global_init; once, before any thread runs a request. */
int tl_http_global_init(void);

#endif
