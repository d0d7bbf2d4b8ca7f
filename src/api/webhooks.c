/* webhooks: a workspace's webhook (GET/PUT/DELETE /v1/webhook) and the sender that
 * delivers its call status events (docs/api.md "Webhooks").
 *
 * Deliveries are rows of the store, queued by the recorder in the same transaction as the
 * call records that cause them (store.h), so neither a slow receiver nor a restart loses
 * one. The sender is one thread of its own, never the loop: it takes the due rows oldest
 * first, POSTs each with net/http (libcurl on this thread; the address guard on every
 * address at connect, no redirects), deletes it on a 2xx, else reschedules it with an
 * exponential backoff until max_attempts, when it gives up (logged; the webhook's
 * last_error says why). The recorder wakes it after a batch that queued deliveries; it
 * also wakes when the next retry is due.
 *
 * Signing: X-Trunkline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 * "<t>.<body>")>, the timestamp inside the MAC so that a captured request cannot be
 * replayed later with a fresh t (receivers reject old t). The secret is the workspace's
 * "whsec_…" string as it was shown once, sealed at rest, opened only here. */
#include "api/api_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "api/codec.h"
#include "net/http.h"
#include "net/url.h"

#define BATCH       8
#define BACKOFF_MAX (3600 * 1000) /* ms: the longest wait between two attempts */
#define IDLE_MS     60000         /* a look at the store without a wake-up (belt and braces) */

struct tl_webhooks {
    struct tl_store *store;
    struct tl_webhooks_cfg cfg;
    struct tl_net_guard guard;
    char insecure_hosts[1024];
    char ca_file[512];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping, kicked;
    struct tl_delivery batch[BATCH];
};

/* ---- the sender ---- */

/* "t=1764700000,v1=<64 hex>" into out */
static void sign(const char *secret, int64_t t, const char *body, size_t len, char *out, size_t cap)
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char ts[24], hex[2 * sizeof mac + 1];
    int n = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, (size_t)n);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    snprintf(out, cap, "X-Trunkline-Signature: t=%lld,v1=%s", (long long)t, hex);
    sodium_memzero(&st, sizeof st);
}

static int64_t backoff_ms(const struct tl_webhooks *w, uint32_t attempts)
{
    int64_t d = w->cfg.retry_base_ms;
    for (uint32_t i = 1; i < attempts && d < BACKOFF_MAX; i++)
        d *= 2;
    return d < BACKOFF_MAX ? d : BACKOFF_MAX;
}

static void deliver(struct tl_webhooks *w, const struct tl_delivery *d)
{
    char url[TL_AGENT_URL_MAX + 1], secret[TL_WEBHOOK_SECRET_LEN + 1];
    char sig[160], ev[80], id[80];
    int64_t now = tl_now_ms();
    if (tl_store_webhook_secret(w->store, d->workspace_id, url, secret)) {
        /* the webhook was removed meanwhile: nothing to deliver to */
        tl_store_delivery_failed(w->store, d, d->attempts, 0, "the webhook was removed", now);
        return;
    }
    size_t len = strlen(d->body);
    sign(secret, now / 1000, d->body, len, sig, sizeof sig);
    sodium_memzero(secret, sizeof secret);
    snprintf(ev, sizeof ev, "X-Trunkline-Event: %s", d->event);
    snprintf(id, sizeof id, "X-Trunkline-Delivery: %s", d->id);
    struct tl_url u;
    bool allow_http =
        !tl_url_parse(url, &u) && !u.tls && tl_host_in_list(w->insecure_hosts, u.host);
    struct tl_http_req rq = {.method = "POST",
                             .url = url,
                             .content_type = "application/json",
                             .body = d->body,
                             .body_len = len,
                             .headers = {sig, ev, id, "User-Agent: trunkline-webhooks", NULL},
                             .timeout_ms = w->cfg.timeout_ms,
                             .max_body = 4096,
                             .allow_http = allow_http,
                             .guard = &w->guard,
                             .ca_file = w->ca_file[0] ? w->ca_file : NULL};
    struct tl_http_resp resp;
    struct tl_err err = {0};
    memset(&resp, 0, sizeof resp);
    int rc = tl_http_run(&rq, &resp, &err);
    bool ok = !rc && resp.fail == TL_HTTP_OK && resp.status >= 200 && resp.status < 300;
    char why[TL_WEBHOOK_ERROR_MAX + 1];
    if (rc)
        tl_strlcpy(why, err.message, sizeof why);
    else if (resp.fail != TL_HTTP_OK)
        tl_strlcpy(why, resp.why, sizeof why);
    else
        snprintf(why, sizeof why, "the receiver answered HTTP %d", resp.status);
    tl_http_resp_free(&resp);
    if (ok) {
        tl_info("api", "webhook.delivered", "workspace=%s delivery=%s event=%s attempts=%u",
                d->workspace_id, d->id, d->event, d->attempts + 1);
        tl_store_delivery_done(w->store, d, now);
        return;
    }
    uint32_t attempts = d->attempts + 1;
    int64_t next = attempts >= w->cfg.max_attempts ? 0 : now + backoff_ms(w, attempts);
    tl_warnl("api", next ? "webhook.retry" : "webhook.given_up",
             "workspace=%s delivery=%s event=%s attempts=%u why=\"%s\"", d->workspace_id, d->id,
             d->event, attempts, why);
    tl_store_delivery_failed(w->store, d, attempts, next, why, now);
}

static void *sender_main(void *arg)
{
    struct tl_webhooks *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        w->kicked = false;
        pthread_mutex_unlock(&w->mu);
        size_t n = 0;
        int64_t next = 0;
        if (tl_store_deliveries_due(w->store, tl_now_ms(), w->batch, BATCH, &n, &next))
            n = 0; /* logged by the store; look again at the next wake-up */
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&w->mu);
            bool stop = w->stopping;
            pthread_mutex_unlock(&w->mu);
            if (stop)
                break;
            deliver(w, &w->batch[i]);
        }
        pthread_mutex_lock(&w->mu);
        if (w->stopping || w->kicked || n == BATCH)
            continue;
        int64_t wait = next ? next - tl_now_ms() : IDLE_MS;
        if (wait <= 0)
            continue;
        if (wait > IDLE_MS)
            wait = IDLE_MS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!w->stopping && !w->kicked)
            if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
                break;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int tl_webhooks_start(struct tl_webhooks **wp, struct tl_store *store,
                      const struct tl_webhooks_cfg *cfg, struct tl_err *err)
{
    struct tl_webhooks *w = calloc(1, sizeof *w);
    if (!w)
        return tl_err_set(err, ENOMEM, 500, "internal", "", "out of memory");
    w->store = store;
    w->cfg = *cfg;
    if (!w->cfg.retry_base_ms)
        w->cfg.retry_base_ms = 5000;
    if (!w->cfg.max_attempts)
        w->cfg.max_attempts = 15;
    if (!w->cfg.timeout_ms)
        w->cfg.timeout_ms = 10000;
    tl_strlcpy(w->insecure_hosts, cfg->insecure_hosts ? cfg->insecure_hosts : "",
               sizeof w->insecure_hosts);
    tl_strlcpy(w->ca_file, cfg->ca_file ? cfg->ca_file : "", sizeof w->ca_file);
    w->cfg.insecure_hosts = w->cfg.ca_file = w->cfg.allow_networks = NULL;
    int rc = tl_net_guard_parse(&w->guard, cfg->allow_networks ? cfg->allow_networks : "",
                                "agent_allow_networks", err);
    if (rc) {
        free(w);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((rc = pthread_create(&w->thread, NULL, sender_main, w))) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return tl_err_set(err, rc, 500, "internal", "", "cannot start the webhook sender");
    }
    *wp = w;
    return 0;
}

void tl_webhooks_kick(void *arg)
{
    struct tl_webhooks *w = arg;
    pthread_mutex_lock(&w->mu);
    w->kicked = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void tl_webhooks_stop(struct tl_webhooks *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL); /* a request in flight ends at its timeout_ms at most */
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* ---- the API ---- */

static json_t *webhook_json(const struct tl_webhook *h, const char *secret)
{
    char created[32], ok[32], bad[32];
    tl_time_iso(h->created_at, created);
    if (h->last_success_at)
        tl_time_iso(h->last_success_at, ok);
    if (h->last_failure_at)
        tl_time_iso(h->last_failure_at, bad);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "object", "webhook",
                          "workspace_id", h->workspace_id, "url", h->url, "created_at", created,
                          "pending", (json_int_t)h->pending, "last_success_at",
                          h->last_success_at ? json_string(ok) : json_null(), "last_failure_at",
                          h->last_failure_at ? json_string(bad) : json_null(), "last_error",
                          h->last_error[0] ? json_string(h->last_error) : json_null());
    if (o && secret)
        json_object_set_new(o, "secret", json_string(secret));
    return o;
}

void tl_h_webhook_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    struct tl_webhook h;
    if (tl_api_scope(r, ws, out))
        return;
    int rc = tl_store_webhook_get(r->store, ws, &h);
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, 200, webhook_json(&h, NULL));
}

static const char *const webhook_members[] = {"url"};

/* The URL a workspace's events go to: https://, or http:// for the hosts the operator lists
 * (agent_insecure_hosts); its addresses must pass the guard now, and again at every
 * delivery (a name may rebind). 0 or -1 with out filled. */
static int webhook_url(struct tl_api_req *r, const json_t *j, char url[TL_AGENT_URL_MAX + 1],
                       struct tl_warnings *w, struct tl_api_resp *out)
{
    const json_t *v = json_object_get(j, "url");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)j, k, x)
    {
        bool known = false;
        for (size_t i = 0; i < sizeof webhook_members / sizeof webhook_members[0]; i++)
            known |= !strcmp(k, webhook_members[i]);
        if (!known) {
            tl_api_error(out, 400, "unknown_field", "", "unknown member: the body has url only");
            return -1;
        }
    }
    if (!json_is_string(v)) {
        tl_api_error(out, 400, v ? "invalid_type" : "invalid_field", "url",
                     "url is required: the https:// URL of your server that receives the "
                     "workspace's call events");
        return -1;
    }
    struct tl_url u;
    const char *s = json_string_value(v);
    if (json_string_length(v) > TL_AGENT_URL_MAX || tl_url_parse(s, &u) ||
        (strcmp(u.scheme, "https") && strcmp(u.scheme, "http"))) {
        tl_api_error(out, 400, "invalid_field", "url",
                     "url must be an https:// URL with a host, e.g. "
                     "https://example.com/trunkline/events");
        return -1;
    }
    if (!u.tls && !tl_host_in_list(r->api->insecure_hosts, u.host)) {
        tl_api_error(out, 400, "invalid_field", "url",
                     "url: http:// sends your call events in clear; use https://%s… (http:// "
                     "is accepted only for the hosts the operator lists in "
                     "agent_insecure_hosts)",
                     u.host);
        return -1;
    }
    char why[300];
    int rc = tl_api_resolve_check(&r->api->guard, u.host, u.port, why, sizeof why);
    if (rc == EPERM) {
        tl_api_error(out, 400, "invalid_field", "url",
                     "url: %s; webhooks must be reachable on the public internet (the operator "
                     "can allow a network with agent_allow_networks)",
                     why);
        return -1;
    }
    if (rc)
        tl_warn(w, "url_unresolved", "url",
                "%s could not be resolved now (%s); it is checked again at every delivery", u.host,
                why);
    tl_strlcpy(url, s, TL_AGENT_URL_MAX + 1);
    return 0;
}

void tl_h_webhook_put(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX], url[TL_AGENT_URL_MAX + 1], secret[TL_WEBHOOK_SECRET_LEN + 1];
    struct tl_warnings w = {0};
    struct tl_err err = {0};
    struct tl_webhook h;
    json_t *j = NULL;
    if (tl_api_scope(r, ws, out) || !(j = tl_api_body(r, out)))
        goto out;
    if (webhook_url(r, j, url, &w, out))
        goto out;
    int rc = tl_store_webhook_set(r->store, ws, url, &h, secret, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    json_t *o = webhook_json(&h, secret);
    sodium_memzero(secret, sizeof secret);
    if (o && w.n) {
        json_t *wa = json_array();
        for (size_t i = 0; wa && i < w.n; i++)
            json_array_append_new(wa, json_pack("{s:s, s:s, s:s}", "code", w.w[i].code, "field",
                                                w.w[i].field, "message", w.w[i].message));
        json_object_set_new(o, "warnings", wa);
    }
    if (o)
        json_object_set_new(o, "note",
                            json_string("The secret is shown this once: store it now. It signs "
                                        "every delivery (X-Trunkline-Signature)."));
    tl_api_reply(out, 200, o);
out:
    json_decref(j);
}

void tl_h_webhook_delete(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    int rc = tl_store_webhook_delete(r->store, ws);
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, 204, NULL);
}
