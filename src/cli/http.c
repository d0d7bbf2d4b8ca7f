/* HTTP to the trunkline API (libcurl) and the mapping of its answers to exit codes. */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

int tl_cli_oom(void)
{
    fputs("error: out of memory\n", stderr);
    return TL_CLI_API;
}

struct body {
    char *p;
    size_t len, cap;
    bool too_big, oom;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (n > CLI_BODY_MAX - b->len) {
        b->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* The base URL for messages, without any user:password@ it might carry. */
static void url_for_humans(const char *url, char *out, size_t cap)
{
    const char *host = strstr(url, "://");
    const char *at = host ? strchr(host + 3, '@') : NULL;
    const char *slash = host ? strchr(host + 3, '/') : NULL;
    if (at && (!slash || at < slash))
        snprintf(out, cap, "%.*s***%s", (int)(host + 3 - url), url, at);
    else
        snprintf(out, cap, "%s", url);
}

static void print_api_error(struct cli *c, long status, const json_t *doc, const char *raw,
                            size_t raw_len)
{
    const json_t *e = json_object_get(doc, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (msg) {
        char *m = tl_cli_clean(msg, 0);
        char *code = tl_cli_clean(tl_cli_str(e, "code", "http_" /* never empty */), 64);
        char *field = tl_cli_clean(tl_cli_str(e, "field", ""), 128);
        if (m && code && field) {
            if (field[0])
                fprintf(stderr, "error: %s: %s (%s)\n", field, m, code);
            else
                fprintf(stderr, "error: %s (%s)\n", m, code);
        } else {
            tl_cli_oom();
        }
        free(m);
        free(code);
        free(field);
    } else {
        /* Not our error document: a proxy, or another service on that port. Show the
         * start of what came back, cleaned, so the person can tell which. */
        char head[161];
        size_t n = raw_len < sizeof head - 1 ? raw_len : sizeof head - 1;
        memcpy(head, raw ? raw : "", raw ? n : 0);
        head[raw ? n : 0] = '\0';
        char *clean = tl_cli_clean(head, 0);
        char url[512];
        url_for_humans(c->base_url, url, sizeof url);
        fprintf(stderr, "error: HTTP %ld from %s%s%s\n", status, url, clean && *clean ? ": " : "",
                clean ? clean : "");
        free(clean);
    }
    if (status == 401 && (!c->token || !c->token[0]))
        fputs("hint: no API token given: set TRUNKLINE_TOKEN or pass --token\n", stderr);
}

int tl_cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out)
{
    CURL *h = c->curl;
    struct cli_buf url = {0}, auth = {0};
    struct curl_slist *hdrs = NULL, *tmp;
    struct body resp = {0};
    char *payload = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    int ret = TL_CLI_API;
    if (out)
        *out = NULL;

    tl_cli_buf_add(&url, c->base_url);
    tl_cli_buf_add(&url, path);
    if (c->token && c->token[0]) {
        tl_cli_buf_add(&auth, "Authorization: Bearer ");
        tl_cli_buf_add(&auth, c->token);
    }
    if (body && !(payload = json_dumps(body, JSON_COMPACT)))
        goto oom;
    if (url.oom || auth.oom)
        goto oom;
#define HDR(s)                                                                                     \
    do {                                                                                           \
        if (!(tmp = curl_slist_append(hdrs, (s))))                                                 \
            goto oom;                                                                              \
        hdrs = tmp;                                                                                \
    } while (0)
    HDR("Accept: application/json");
    HDR("Expect:"); /* bodies are small: no 100-continue round trip */
    if (payload)
        HDR("Content-Type: application/json");
    if (auth.p)
        HDR(auth.p);
#undef HDR

    curl_easy_reset(h); /* keeps the connection cache: --all and edit reuse the socket */
    curl_easy_setopt(h, CURLOPT_URL, url.p);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "trunkline-cli");
    /* A redirect must not carry the bearer token elsewhere, nor a file:// URL read
     * local files: only http(s), no redirects. */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    /* ids are escaped, but keep "." and ".." as the server sent them too */
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    /* an API on HTTPS with the daemon's self-made certificate: trust that file */
    const char *ca = getenv("TRUNKLINE_CA_FILE");
    if (ca && ca[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }

    CURLcode cr = curl_easy_perform(h);
    char where[512];
    url_for_humans(c->base_url, where, sizeof where);
    if (resp.oom) {
        goto oom;
    } else if (resp.too_big) {
        fprintf(stderr,
                "error: the answer from %s is larger than %u MiB; is this the trunkline "
                "API?\n",
                where, CLI_BODY_MAX >> 20);
        goto out;
    } else if (cr == CURLE_URL_MALFORMAT || cr == CURLE_UNSUPPORTED_PROTOCOL) {
        fprintf(stderr, "error: invalid API URL '%s' (from %s): %s\n", where, c->url_source,
                errbuf[0] ? errbuf : curl_easy_strerror(cr));
        ret = TL_CLI_USAGE;
        goto out;
    } else if (cr != CURLE_OK) {
        fprintf(stderr, "error: cannot reach the trunkline API at %s (from %s): %s\n", where,
                c->url_source, errbuf[0] ? errbuf : curl_easy_strerror(cr));
        fputs("hint: start the daemon with `trunkline serve`, or point TRUNKLINE_URL (or "
              "--url) at where it runs\n",
              stderr);
        ret = TL_CLI_UNREACHABLE;
        goto out;
    }

    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    json_t *doc = NULL;
    json_error_t je;
    if (resp.len)
        doc = json_loadb(resp.p, resp.len, JSON_REJECT_DUPLICATES, &je);
    if (status >= 200 && status < 300) {
        if (resp.len && !doc) {
            fprintf(stderr, "error: the answer from %s is not valid JSON (%s, line %d)\n", where,
                    je.text, je.line);
            goto out;
        }
        if (out)
            *out = doc;
        else
            json_decref(doc);
        ret = TL_CLI_OK;
        goto out;
    }
    if (c->json && doc)
        tl_cli_print_json(doc);
    print_api_error(c, status, doc, resp.p, resp.len);
    json_decref(doc);
    goto out;

oom:
    ret = tl_cli_oom();
out:
    curl_slist_free_all(hdrs);
    if (auth.p)
        explicit_bzero(auth.p, auth.len);
    tl_cli_buf_free(&auth);
    tl_cli_buf_free(&url);
    if (payload) /* may carry a trunk password */
        explicit_bzero(payload, strlen(payload));
    free(payload);
    free(resp.p);
    return ret;
}

void tl_cli_scope(const struct cli *c, struct cli_buf *b)
{
    tl_cli_buf_query(b, "workspace_id", c->workspace);
}

int tl_cli_list(struct cli *c, struct cli_args *a, struct cli_buf *path, json_t **out)
{
    const char *limit = cli_get(a, F_LIMIT);
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (!*limit || *end || n < 1) /* the server enforces the maximum */
            return tl_cli_usage(c->res, c->verb, "--limit needs a positive whole number");
    }
    bool all = cli_has(a, F_ALL);
    json_t *merged = NULL;
    char *cursor = NULL;
    const char *c0 = cli_get(a, F_CURSOR);
    if (c0 && !(cursor = strdup(c0)))
        return tl_cli_oom();
    int ret = TL_CLI_OK;
    for (size_t page = 0;; page++) {
        struct cli_buf url = {0};
        tl_cli_buf_add(&url, path->p);
        tl_cli_buf_query(&url, "limit", limit);
        tl_cli_buf_query(&url, "cursor", cursor);
        json_t *doc = NULL;
        ret = url.oom ? tl_cli_oom() : tl_cli_call(c, "GET", url.p, NULL, &doc);
        tl_cli_buf_free(&url);
        if (ret != TL_CLI_OK)
            break;
        json_t *data = json_object_get(doc, "data");
        if (!json_is_array(data)) {
            fputs("error: the server's answer has no \"data\" list\n", stderr);
            json_decref(doc);
            ret = TL_CLI_API;
            break;
        }
        if (!all) {
            merged = doc;
            break;
        }
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        char *next_copy = next && next[0] ? strdup(next) : NULL;
        if (next && next[0] && !next_copy) {
            json_decref(doc);
            ret = tl_cli_oom();
            break;
        }
        if (!merged) {
            merged = doc;
        } else {
            json_array_extend(json_object_get(merged, "data"), data);
            json_decref(doc);
        }
        /* The merged document stands for every page: no cursor left to follow. */
        json_object_set_new(merged, "next_cursor", json_null());
        if (!next_copy)
            break;
        /* a server that hands back the cursor it was given would loop forever */
        if ((cursor && strcmp(next_copy, cursor) == 0) || page + 1 >= CLI_PAGES_MAX) {
            fprintf(stderr, "warning: stopped after %zu pages; the list may be incomplete\n",
                    page + 1);
            free(next_copy);
            break;
        }
        free(cursor);
        cursor = next_copy;
    }
    free(cursor);
    if (ret != TL_CLI_OK) {
        json_decref(merged);
        return ret;
    }
    *out = merged;
    return TL_CLI_OK;
}
