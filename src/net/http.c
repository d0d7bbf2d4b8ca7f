/* net/http: libcurl off the loop, the guard on every address (http.h). */
#include "net/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct run {
    const struct tl_http_req *rq;
    struct tl_net_guard guard;
    bool has_guard;
    /* the first address the guard refused, for the event: "127.0.0.1 (a loopback
     * address)" */
    char refused[128];
    bool connected_any;
    char *buf;
    size_t len, cap, max;
    bool too_big;
};

int tl_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : EIO;
}

void tl_http_resp_free(struct tl_http_resp *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    struct run *u = arg;
    size_t k = sz * n;
    if (k > u->max - u->len) {
        /* A voice URL answering with megabytes is a misconfiguration or an attack on
         * our memory; we stop reading rather than store it. */
        u->too_big = true;
        return 0;
    }
    if (u->len + k + 1 > u->cap) {
        size_t nc = u->cap ? u->cap : 4096;
        while (nc < u->len + k + 1)
            nc *= 2;
        if (nc > u->max + 1)
            nc = u->max + 1;
        char *nb = realloc(u->buf, nc);
        if (!nb)
            return 0;
        u->buf = nb;
        u->cap = nc;
    }
    memcpy(u->buf + u->len, p, k);
    u->len += k;
    u->buf[u->len] = 0;
    return k;
}

/* Called by libcurl for each address it is about to connect to (after its own DNS, for
 * every address of a happy-eyeballs race): the only place where the address that will
 * really be used is known, so the guard runs here and not on the name. */
static curl_socket_t on_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct run *u = arg;
    (void)purpose;
    if (!u->rq->no_guard) {
        const char *why = NULL;
        if (!tl_net_guard_ok(u->has_guard ? &u->guard : NULL, &a->addr, &why)) {
            if (!u->refused[0]) {
                char ip[INET6_ADDRSTRLEN] = "?";
                const struct sockaddr *sa = &a->addr;
                const void *raw = sa->sa_family == AF_INET6
                                      ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                      : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
                inet_ntop(sa->sa_family, raw, ip, sizeof ip);
                snprintf(u->refused, sizeof u->refused, "%s (%s)", ip, why ? why : "refused");
            }
            return CURL_SOCKET_BAD;
        }
    }
    u->connected_any = true;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static CURLcode on_ssl_ctx(CURL *c, void *ssl_ctx, void *arg)
{
    (void)c;
    const char *ca = arg;
    /* Added to the system's anchors, as net/tls does for the WebSocket client: an
     * operator's private CA must not make public bots untrusted. */
    if (ca && ca[0] && SSL_CTX_load_verify_locations(ssl_ctx, ca, NULL) != 1)
        return CURLE_SSL_CACERT_BADFILE;
    return CURLE_OK;
}

static void fill_fail(struct tl_http_resp *r, CURLcode rc, const struct run *u, const char *errbuf)
{
    const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        r->fail = TL_HTTP_FAIL_DNS;
        snprintf(r->why, sizeof r->why, "the name did not resolve (%.200s)", msg);
        break;
    case CURLE_COULDNT_CONNECT:
        if (u->refused[0] && !u->connected_any) {
            r->fail = TL_HTTP_FAIL_GUARD;
            snprintf(r->why, sizeof r->why,
                     "the URL leads to %s, which the gateway does not connect to "
                     "(agent_allow_networks)",
                     u->refused);
        } else {
            r->fail = TL_HTTP_FAIL_CONNECT;
            snprintf(r->why, sizeof r->why, "connection failed (%.200s)", msg);
        }
        break;
    case CURLE_OPERATION_TIMEDOUT:
        r->fail = TL_HTTP_FAIL_TIMEOUT;
        snprintf(r->why, sizeof r->why, "no answer within %u ms",
                 u->rq->timeout_ms ? u->rq->timeout_ms : 10000);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        r->fail = TL_HTTP_FAIL_TLS;
        snprintf(r->why, sizeof r->why, "TLS failed (%.200s)", msg);
        break;
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (u->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
            r->fail = TL_HTTP_FAIL_TOO_BIG;
            snprintf(r->why, sizeof r->why, "the response body is over %zu bytes", u->max);
            break;
        }
        /* fall through */
    default:
        r->fail = TL_HTTP_FAIL_OTHER;
        snprintf(r->why, sizeof r->why, "%s", msg);
        break;
    }
}

int tl_http_run(const struct tl_http_req *rq, struct tl_http_resp *r, struct tl_err *err)
{
    memset(r, 0, sizeof *r);
    if (!rq->url || !rq->method ||
        (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)) {
        tl_err_set(err, EINVAL, 400, "invalid_request", "method",
                   "a URL and GET or POST are required");
        return EINVAL;
    }
    bool https = strncasecmp(rq->url, "https://", 8) == 0;
    bool http = strncasecmp(rq->url, "http://", 7) == 0;
    if (!https && !(http && rq->allow_http)) {
        r->fail = TL_HTTP_FAIL_URL;
        snprintf(r->why, sizeof r->why, "%s",
                 http ? "http:// is allowed only for the hosts in agent_insecure_hosts"
                      : "the URL must start with https://");
        return 0;
    }
    struct run u = {.rq = rq};
    u.max = rq->max_body ? rq->max_body : TL_HTTP_BODY_MAX_DEFAULT;
    if (rq->guard) {
        u.guard = *rq->guard;
        u.has_guard = true;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        r->fail = TL_HTTP_FAIL_OTHER;
        snprintf(r->why, sizeof r->why, "out of memory");
        return 0;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hl = NULL;
    bool ok = true;
    for (size_t i = 0; i < TL_HTTP_HEADERS_MAX && rq->headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(hl, rq->headers[i]);
        ok = ok && n;
        if (n)
            hl = n;
    }
    char ct[160];
    if (rq->content_type && strcmp(rq->method, "POST") == 0) {
        snprintf(ct, sizeof ct, "Content-Type: %s", rq->content_type);
        struct curl_slist *n = curl_slist_append(hl, ct);
        ok = ok && n;
        if (n)
            hl = n;
    }
    /* libcurl adds "Expect: 100-continue" to larger POSTs; webhook servers behind
     * simple frameworks stall on it. */
    struct curl_slist *n = curl_slist_append(hl, "Expect:");
    ok = ok && n;
    if (n)
        hl = n;
    unsigned timeout = rq->timeout_ms ? rq->timeout_ms : 10000;
    ok = ok && curl_easy_setopt(c, CURLOPT_URL, rq->url) == CURLE_OK;
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (rq->ca_file && rq->ca_file[0]) {
        curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
        curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, (void *)rq->ca_file);
    }
    curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_socket);
    curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &u);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)u.max);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "trunkline");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    if (strcmp(rq->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    if (!ok) {
        r->fail = TL_HTTP_FAIL_OTHER;
        snprintf(r->why, sizeof r->why, "out of memory");
    } else {
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        double t = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
        r->elapsed_ms = (unsigned)(t * 1000.0);
        if (rc == CURLE_OK) {
            r->fail = TL_HTTP_OK;
            r->status = (int)status;
            char *ctype = NULL;
            if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK && ctype) {
                size_t i = 0;
                for (; ctype[i] && ctype[i] != ';' && ctype[i] != ' ' &&
                       i + 1 < sizeof r->content_type;
                     i++)
                    r->content_type[i] =
                        (ctype[i] >= 'A' && ctype[i] <= 'Z') ? (char)(ctype[i] + 32) : ctype[i];
                r->content_type[i] = 0;
            }
            if (!u.buf) {
                u.buf = calloc(1, 1);
                if (!u.buf) {
                    r->fail = TL_HTTP_FAIL_OTHER;
                    snprintf(r->why, sizeof r->why, "out of memory");
                }
            }
            r->body = u.buf;
            r->body_len = u.len;
            u.buf = NULL;
        } else {
            fill_fail(r, rc, &u, errbuf);
        }
    }
    free(u.buf);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return 0;
}

/* ---- on libuv's worker pool ---------------------------------------------------------- */

struct tl_http {
    uv_work_t work;
    struct tl_http_req rq; /* its strings point into the copies below */
    char *url, *ctype, *body, *ca;
    char *hdr[TL_HTTP_HEADERS_MAX];
    struct tl_net_guard guard;
    struct tl_http_resp resp;
    tl_http_done_cb cb;
    void *arg;
    bool canceled;
};

static void http_free(struct tl_http *h)
{
    tl_http_resp_free(&h->resp);
    free(h->url);
    free(h->ctype);
    free(h->body);
    free(h->ca);
    for (size_t i = 0; i < TL_HTTP_HEADERS_MAX; i++)
        free(h->hdr[i]);
    free(h);
}

static void work_run(uv_work_t *w)
{
    struct tl_http *h = w->data;
    struct tl_err e = {0};
    tl_http_run(&h->rq, &h->resp, &e);
}

static void work_done(uv_work_t *w, int status)
{
    struct tl_http *h = w->data;
    if (!h->canceled && status == 0)
        h->cb(h->arg, &h->resp);
    else if (!h->canceled) {
        /* the pool refused the work (only at loop close) */
        struct tl_http_resp r = {.fail = TL_HTTP_FAIL_OTHER};
        snprintf(r.why, sizeof r.why, "the request was not run (shutting down)");
        h->cb(h->arg, &r);
    }
    http_free(h);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int tl_http_start(uv_loop_t *loop, const struct tl_http_req *rq, tl_http_done_cb cb, void *arg,
                  struct tl_http **out, struct tl_err *err)
{
    if (!rq->url || !rq->method ||
        (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "POST") != 0)) {
        tl_err_set(err, EINVAL, 400, "invalid_request", "method",
                   "a URL and GET or POST are required");
        return EINVAL;
    }
    struct tl_http *h = calloc(1, sizeof *h);
    if (!h)
        return ENOMEM;
    h->rq = *rq;
    h->url = strdup(rq->url);
    h->ctype = dup_or_null(rq->content_type);
    h->ca = dup_or_null(rq->ca_file);
    bool ok = h->url && (!rq->content_type || h->ctype) && (!rq->ca_file || h->ca);
    if (rq->body_len) {
        h->body = malloc(rq->body_len);
        ok = ok && h->body;
        if (h->body)
            memcpy(h->body, rq->body, rq->body_len);
    }
    for (size_t i = 0; i < TL_HTTP_HEADERS_MAX; i++) {
        h->rq.headers[i] = NULL;
        if (!rq->headers[i])
            break;
        h->hdr[i] = strdup(rq->headers[i]);
        ok = ok && h->hdr[i];
        h->rq.headers[i] = h->hdr[i];
    }
    if (!ok) {
        http_free(h);
        return ENOMEM;
    }
    h->rq.url = h->url;
    h->rq.content_type = h->ctype;
    h->rq.body = h->body;
    h->rq.ca_file = h->ca;
    if (rq->guard) {
        h->guard = *rq->guard;
        h->rq.guard = &h->guard;
    }
    h->cb = cb;
    h->arg = arg;
    h->work.data = h;
    int rc = uv_queue_work(loop, &h->work, work_run, work_done);
    if (rc != 0) {
        http_free(h);
        tl_err_set(err, EIO, 500, "internal", "", "the worker pool refused the request");
        return EIO;
    }
    if (out)
        *out = h;
    return 0;
}

void tl_http_cancel(struct tl_http *h)
{
    if (!h)
        return;
    h->canceled = true;
    /* Not started yet: it never runs. Started: it runs to its deadline and work_done
     * frees it without calling back. */
    uv_cancel((uv_req_t *)&h->work);
}
