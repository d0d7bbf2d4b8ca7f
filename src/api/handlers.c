/* handlers: one function per route of the REST API (phone numbers in handlers_numbers.c).
 *
 * The server has already authenticated the caller, checked the route's minimum role and
 * the id syntax, and capped the body; a handler decides what the caller may see (its
 * own workspace), calls the codec and the store, and fills out. Anything in a workspace
 * the caller cannot see answers 404 exactly like a missing object. */
#include "api/api_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/codec.h"
#include "net/url.h"
#include "store/cluster.h"

static bool is_operator(const struct tl_api_req *r)
{
    return r->tok.role == TL_ROLE_OPERATOR;
}

void tl_api_reply_page(struct tl_api_resp *out, int rc, const struct tl_err *err, json_t *data,
                       const char *next_cursor)
{
    if (rc) {
        json_decref(data);
        tl_api_fail_rc(out, rc, err);
        return;
    }
    if (!data) {
        tl_api_reply(out, 500, NULL);
        return;
    }
    tl_api_reply(out, 200, tl_api_list(data, next_cursor));
}

void tl_api_remove(struct tl_api_req *r, struct tl_api_resp *out, tl_api_remove_fn rm)
{
    struct tl_err err = {0};
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    int rc = rm(r->store, ws, r->id, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        return;
    }
    tl_api_reply(out, 204, NULL);
}

/* ---------------------------------------------------------------- health ---- */

void tl_h_healthz(struct tl_api_req *r, struct tl_api_resp *out)
{
    tl_api_reply(out, 200, json_pack("{s:s}", "status", "ok"));
}

void tl_h_readyz(struct tl_api_req *r, struct tl_api_resp *out)
{
    if (tl_store_ping(r->store) != 0) {
        tl_api_error(out, 503, "not_ready", "", "the database does not answer");
        return;
    }
    tl_api_reply(out, 200, json_pack("{s:s}", "status", "ready"));
}

/* ------------------------------------------------------------ cluster ---- */

static int count_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tl_cluster_count *)a)->workspace_id,
                  ((const struct tl_cluster_count *)b)->workspace_id);
}

static json_t *ws_counts(const struct tl_cluster_count *l, const struct tl_cluster_count *r)
{
    const struct tl_cluster_count z = {0};
    if (!l)
        l = &z;
    if (!r)
        r = &z;
    return json_pack("{s:s,s:i,s:i,s:i,s:i}", "workspace_id",
                     l != &z ? l->workspace_id : r->workspace_id, "local_inbound", (int)l->inbound,
                     "local_outbound", (int)l->outbound, "remote_inbound", (int)r->inbound,
                     "remote_outbound", (int)r->outbound);
}

/* What the per-workspace caps see on this node: its own calls and, with a shared store,
 * the other nodes' as last synced (docs/scale-out.md "Per-workspace call caps across
 * nodes"). Remote counts of a sync older than the lease are not shown: admission treats
 * them as 0 then, and the operator must see what admission sees. */
void tl_h_cluster(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_cluster_view v = {0};
    json_t *o = NULL, *ws = json_array();
    if (!r->api->cluster) {
        o = json_pack("{s:b,s:o}", "shared", 0, "workspaces", ws);
        tl_api_reply(out, 200, o);
        return;
    }
    if (!ws || tl_cluster_view(r->api->cluster, &v) != 0) {
        json_decref(ws);
        tl_api_error(out, 500, "internal", "", "Out of memory.");
        return;
    }
    if (v.n_local) /* qsort's base must not be NULL, even for no rows (C11 7.22.5) */
        qsort(v.local, v.n_local, sizeof *v.local, count_cmp);
    if (v.n_remote)
        qsort(v.remote, v.n_remote, sizeof *v.remote, count_cmp);
    for (size_t i = 0, j = 0; i < v.n_local || j < v.n_remote;) {
        int c = i == v.n_local ? 1 : j == v.n_remote ? -1 : count_cmp(&v.local[i], &v.remote[j]);
        json_array_append_new(ws,
                              ws_counts(c <= 0 ? &v.local[i] : NULL, c >= 0 ? &v.remote[j] : NULL));
        i += c <= 0;
        j += c >= 0;
    }
    o = json_pack("{s:b,s:s,s:i,s:i,s:b,s:b,s:o,s:I,s:I,s:o}", "shared", 1, "node_id", v.node_id,
                  "sync_ms", (int)v.sync_ms, "lease_ms", (int)v.lease_ms, "running", v.running,
                  "fresh", v.fresh, "synced_ms_ago",
                  v.synced_ago_ms < 0 ? json_null() : json_integer(v.synced_ago_ms), "rounds",
                  (json_int_t)v.rounds, "failed_rounds", (json_int_t)v.fails, "workspaces", ws);
    free(v.local);
    free(v.remote);
    tl_api_reply(out, 200, o);
}

/* ---------------------------------------------------------------- sip ---- */

/* an address a carrier can be given as it is (not a wildcard or unset) */
static bool concrete_ip(const char *ip)
{
    return ip[0] && strcmp(ip, "0.0.0.0") != 0 && strcmp(ip, "::") != 0 && strcmp(ip, "*") != 0;
}

static json_t *dns_record(const char *type, const char *name, const char *value)
{
    return json_pack("{s:s, s:s, s:s?}", "type", type, "name", name, "value", value);
}

/* What a carrier needs from us: the URIs to paste, the addresses our SIP comes from (for
 * providers that authenticate by IP), and the DNS records that make public_host reach us
 * (SRV for providers, such as Telnyx, whose FQDN entry type is SRV). A value we cannot know
 * (the public address when none is configured) is null: the reader fills it in. */
void tl_h_sip_endpoints(struct tl_api_req *r, struct tl_api_resp *out)
{
    const struct tl_api *a = r->api;
    char tls[TL_HOST_MAX + 48], tcp[TL_HOST_MAX + 48];
    /* an IPv6 literal needs brackets inside a SIP URI (RFC 3261 §19.1.1) */
    bool v6 = strchr(a->public_host, ':') != NULL;
    snprintf(tls, sizeof tls, "sip:%s%s%s:%d;transport=tls", v6 ? "[" : "", a->public_host,
             v6 ? "]" : "", a->sip_tls_port);
    snprintf(tcp, sizeof tcp, "sip:%s%s%s:%d;transport=tcp", v6 ? "[" : "", a->public_host,
             v6 ? "]" : "", a->sip_tcp_port);

    const char *egress = concrete_ip(a->public_ip)    ? a->public_ip
                         : concrete_ip(a->sip_listen) ? a->sip_listen
                                                      : NULL;
    json_t *eg = json_array(), *dns = json_array();
    bool bad = !eg || !dns || (egress && json_array_append_new(eg, json_string(egress)));
    /* a host name needs records; an address literal is reached as it is */
    bool is_name =
        a->public_host[0] && !v6 && strspn(a->public_host, "0123456789.") != strlen(a->public_host);
    if (!bad && is_name) {
        char srv_tls[TL_HOST_MAX + 32], srv_tcp[TL_HOST_MAX + 32], n_tls[TL_HOST_MAX + 16],
            n_tcp[TL_HOST_MAX + 16];
        bool ip6 = egress && strchr(egress, ':');
        snprintf(n_tls, sizeof n_tls, "_sips._tcp.%s", a->public_host);
        snprintf(n_tcp, sizeof n_tcp, "_sip._tcp.%s", a->public_host);
        snprintf(srv_tls, sizeof srv_tls, "10 10 %d %s", a->sip_tls_port, a->public_host);
        snprintf(srv_tcp, sizeof srv_tcp, "10 10 %d %s", a->sip_tcp_port, a->public_host);
        bad = json_array_append_new(dns, dns_record(ip6 ? "AAAA" : "A", a->public_host, egress)) ||
              json_array_append_new(dns, dns_record("SRV", n_tls, srv_tls)) ||
              json_array_append_new(dns, dns_record("SRV", n_tcp, srv_tcp));
    }
    if (bad) {
        json_decref(eg);
        json_decref(dns);
        tl_api_reply(out, 500, NULL);
        return;
    }
    tl_api_reply(out, 200,
                 json_pack("{s:s, s:s, s:s, s:o, s:o}", "tls", tls, "tcp", tcp, "public_host",
                           a->public_host, "egress_addresses", eg, "dns_records", dns));
}

/* ---------------------------------------------------------------- me ---- */

/* Who the caller is: what the UI needs to decide what to show (the role, the workspace,
 * the routes this token may call) without trying requests and reading 403s. */
void tl_h_me(struct tl_api_req *r, struct tl_api_resp *out)
{
    json_t *ws = json_null();
    if (r->tok.role != TL_ROLE_OPERATOR) {
        struct tl_workspace w;
        if (tl_store_workspace_get(r->store, r->tok.workspace_id, &w) != 0) {
            tl_api_not_found(out);
            return;
        }
        ws = tl_codec_workspace_encode(&w);
    }
    json_t *tok = tl_codec_token_encode(&r->tok, NULL);
    json_t *routes = tl_api_routes_json(r->tok.role);
    if (!ws || !tok || !routes) {
        json_decref(ws);
        json_decref(tok);
        json_decref(routes);
        tl_api_reply(out, 500, NULL);
        return;
    }
    tl_api_reply(out, 200,
                 json_pack("{s:s, s:s, s:o, s:o, s:o}", "object", "me", "role",
                           tl_role_name(r->tok.role), "token", tok, "workspace", ws, "routes",
                           routes));
}

/* ---------------------------------------------------------------- workspaces ---- */

static int add_workspace(const struct tl_workspace *w, void *arg)
{
    json_t *j = tl_codec_workspace_encode(w);
    return j && json_array_append_new(arg, j) == 0 ? 0 : ENOMEM;
}

void tl_h_workspace_list(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    struct tl_workspace w;
    char next[TL_CURSOR_MAX] = "";
    json_t *data = NULL;
    int rc;

    if (tl_api_page(r, &pg, out))
        return;
    data = json_array();
    if (!data)
        rc = ENOMEM;
    else if (is_operator(r))
        rc = tl_store_workspace_list(r->store, &pg, add_workspace, data, next, &err);
    else if ((rc = tl_store_workspace_get(r->store, r->tok.workspace_id, &w)) == 0)
        rc = add_workspace(&w, data); /* a workspace token sees exactly its own */
    tl_api_reply_page(out, rc, rc == ENOMEM ? NULL : &err, data, next);
}

void tl_h_workspace_create(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_workspace w = {0};
    struct tl_err err = {0};
    json_t *j = tl_api_body(r, out);
    if (!j)
        return;
    int rc = tl_codec_workspace_decode(j, true, &w, &err);
    json_decref(j);
    if (!rc)
        rc = tl_store_workspace_create(r->store, &w, &err);
    if (!rc && w.n_out_prefixes) /* created without them (a second write, like a PATCH) */
        rc = tl_store_workspace_update(r->store, &w, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        return;
    }
    snprintf(out->location, sizeof out->location, "/v1/workspaces/%s", w.id);
    tl_api_reply(out, 201, tl_codec_workspace_encode(&w));
}

void tl_h_workspace_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_workspace w;
    if (!is_operator(r) && strcmp(r->id, r->tok.workspace_id) != 0) {
        tl_api_not_found(out);
        return;
    }
    int rc = tl_store_workspace_get(r->store, r->id, &w);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return;
    }
    tl_api_reply(out, 200, tl_codec_workspace_encode(&w));
}

void tl_h_workspace_patch(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_workspace w;
    struct tl_err err = {0};
    int rc = tl_store_workspace_get(r->store, r->id, &w);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return;
    }
    json_t *j = tl_api_body(r, out);
    if (!j)
        return;
    rc = tl_codec_workspace_decode(j, false, &w, &err);
    json_decref(j);
    tl_strlcpy(w.id, r->id, sizeof w.id); /* the body names fields, never the object */
    if (!rc)
        rc = tl_store_workspace_update(r->store, &w, &err);
    if (!rc)
        rc = tl_store_workspace_get(r->store, r->id, &w);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        return;
    }
    tl_api_reply(out, 200, tl_codec_workspace_encode(&w));
}

/* ---------------------------------------------------------------- tokens ---- */

/* The workspace whose tokens the caller acts on: NULL (every workspace) for an operator
 * without a filter. -1 with out filled when the named workspace is not visible. */
static int token_scope(const struct tl_api_req *r, const char *want, const char **ws,
                       struct tl_api_resp *out)
{
    if (is_operator(r)) {
        struct tl_workspace w;
        if (want && *want &&
            (!tl_id_valid(want, "ws") || tl_store_workspace_get(r->store, want, &w) != 0)) {
            tl_api_not_found(out);
            return -1;
        }
        *ws = want && *want ? want : NULL;
        return 0;
    }
    if (want && strcmp(want, r->tok.workspace_id) != 0) {
        tl_api_not_found(out);
        return -1;
    }
    *ws = r->tok.workspace_id;
    return 0;
}

static int add_token(const struct tl_token *t, void *arg)
{
    json_t *j = tl_codec_token_encode(t, NULL);
    return j && json_array_append_new(arg, j) == 0 ? 0 : ENOMEM;
}

void tl_h_token_list(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    char next[TL_CURSOR_MAX] = "";
    const char *ws;

    if (tl_api_page(r, &pg, out) || token_scope(r, tl_api_query(r, "workspace_id"), &ws, out))
        return;
    json_t *data = json_array();
    int rc = data ? tl_store_token_list(r->store, ws, &pg, add_token, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}

void tl_h_token_create(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_token t = {0};
    struct tl_err err = {0};
    char secret[TL_TOKEN_MAX + 1] = "";
    json_t *j = tl_api_body(r, out);
    if (!j)
        return;
    int rc = tl_codec_token_decode(j, &t, &err);
    json_decref(j);
    if (rc) {
        tl_api_fail(out, &err);
        return;
    }
    if (t.role == TL_ROLE_OPERATOR) {
        /* operator tokens reach every workspace: only an operator mints them */
        if (!is_operator(r)) {
            tl_api_error(out, 403, "forbidden", "role",
                         "only an operator token may create operator tokens");
            return;
        }
        if (t.workspace_id[0]) {
            tl_api_error(out, 400, "invalid_field", "workspace_id",
                         "an operator token belongs to no workspace: leave workspace_id out");
            return;
        }
    } else if (is_operator(r)) {
        struct tl_workspace w;
        if (!t.workspace_id[0]) {
            tl_api_error(out, 400, "invalid_field", "workspace_id",
                         "an %s token belongs to one workspace: give its workspace_id",
                         tl_role_name(t.role));
            return;
        }
        if (!tl_id_valid(t.workspace_id, "ws") ||
            tl_store_workspace_get(r->store, t.workspace_id, &w) != 0) {
            tl_api_error(out, 404, "not_found", "workspace_id", "no such workspace");
            return;
        }
    } else {
        if (t.workspace_id[0] && strcmp(t.workspace_id, r->tok.workspace_id) != 0) {
            tl_api_error(out, 404, "not_found", "workspace_id", "no such workspace");
            return;
        }
        tl_strlcpy(t.workspace_id, r->tok.workspace_id, sizeof t.workspace_id);
    }
    rc = tl_store_token_create(r->store, &t, secret, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        return;
    }
    snprintf(out->location, sizeof out->location, "/v1/tokens/%s", t.id);
    /* the only time the secret leaves the server: the store keeps a hash */
    tl_api_reply(out, 201, tl_codec_token_encode(&t, secret));
    explicit_bzero(secret, sizeof secret);
}

void tl_h_token_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_token t;
    const char *ws = is_operator(r) ? NULL : r->tok.workspace_id;
    int rc = tl_store_token_get(r->store, ws, r->id, &t);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return;
    }
    tl_api_reply(out, 200, tl_codec_token_encode(&t, NULL));
}

void tl_h_token_delete(struct tl_api_req *r, struct tl_api_resp *out)
{
    const char *ws = is_operator(r) ? NULL : r->tok.workspace_id;
    int rc = tl_store_token_delete(r->store, ws, r->id);
    if (rc == EBUSY) {
        tl_api_error(out, 409, "last_operator_token", "",
                     "this is the last operator token: revoking it would lock every operator "
                     "out. Create another operator token first (POST /v1/tokens), or, on the "
                     "host, `trunkline token create --data-dir <dir> --role operator`");
        return;
    }
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        return;
    }
    tl_api_reply(out, 204, NULL);
}

/* ---------------------------------------------------------------- agents ---- */

static int add_agent(const struct tl_agent *a, void *arg)
{
    json_t *j = tl_codec_agent_encode(a, NULL);
    return j && json_array_append_new(arg, j) == 0 ? 0 : ENOMEM;
}

void tl_h_agent_list(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_page pg;
    struct tl_err err = {0};
    char ws[TL_ID_MAX], next[TL_CURSOR_MAX] = "";

    if (tl_api_scope(r, ws, out) || tl_api_page(r, &pg, out))
        return;
    json_t *data = json_array();
    int rc = data ? tl_store_agent_list(r->store, ws, &pg, add_agent, data, next, &err) : 0;
    tl_api_reply_page(out, rc, &err, data, next);
}

/* Where a websocket agent's URL leads, checked when it is saved (again before every
 * connection: DNS can change, net/guard.h). ws:// only for hosts the operator lists:
 * audio, parameters and header values would cross the network in clear. A name that does
 * not resolve now is accepted with a warning (the bot's DNS may not exist yet, and every
 * call checks again); one that resolves to an address the guard refuses is not. */
/* The same for a twiml agent's voice, fallback and status-callback URLs (https://; http://
 * only for the operator's insecure hosts: the requests carry the caller's number). */
static int http_dest_check(struct tl_api *api, const char *url, const char *field,
                           struct tl_warnings *w, struct tl_err *err)
{
    if (!url[0])
        return 0;
    struct tl_url u;
    if (tl_url_parse(url, &u) || (strcmp(u.scheme, "http") && strcmp(u.scheme, "https")))
        return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                          "%s must be an https:// URL with a host, e.g. "
                          "https://bot.example.com/voice",
                          field);
    if (!u.tls && !tl_host_in_list(api->insecure_hosts, u.host))
        return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                          "%s: http:// sends the caller's number and the call's details in clear; "
                          "use https://%s… (http:// is accepted only for the hosts the operator "
                          "lists in agent_insecure_hosts)",
                          field, u.host);
    char why[300];
    int rc = tl_api_resolve_check(&api->guard, u.host, u.port, why, sizeof why);
    if (rc == EPERM)
        return tl_err_set(err, EINVAL, 400, "invalid_field", field,
                          "%s: %s; bots must be reachable on the public internet (the operator "
                          "can allow a network with agent_allow_networks)",
                          field, why);
    if (rc)
        tl_warn(w, "url_unresolved", field,
                "%s could not be resolved now (%s); it is checked again when a call connects",
                u.host, why);
    return 0;
}

static int agent_dest_check(struct tl_api *api, const struct tl_agent *a, struct tl_warnings *w,
                            struct tl_err *err)
{
    if (a->kind == TL_AGENT_TWIML) {
        int rc = http_dest_check(api, a->url, "voice_url", w, err);
        if (!rc)
            rc = http_dest_check(api, a->fallback_url, "fallback_url", w, err);
        if (!rc)
            rc = http_dest_check(api, a->status_callback, "status_callback", w, err);
        return rc;
    }
    if (a->kind != TL_AGENT_WEBSOCKET)
        return 0;
    struct tl_url u;
    if (tl_url_parse(a->url, &u) || (strcmp(u.scheme, "ws") && strcmp(u.scheme, "wss")))
        return tl_err_set(err, EINVAL, 400, "invalid_field", "url",
                          "url must be a ws:// or wss:// URL with a host, e.g. "
                          "wss://agent.example.com/media");
    if (!u.tls && !tl_host_in_list(api->insecure_hosts, u.host))
        return tl_err_set(err, EINVAL, 400, "invalid_field", "url",
                          "url: ws:// sends the call's audio and your header values in clear; use "
                          "wss://%s… (ws:// is accepted only for the hosts the operator lists in "
                          "agent_insecure_hosts)",
                          u.host);
    char why[300];
    int rc = tl_api_resolve_check(&api->guard, u.host, u.port, why, sizeof why);
    if (rc == EPERM)
        return tl_err_set(err, EINVAL, 400, "invalid_field", "url",
                          "url: %s; agents must be reachable on the public internet (the operator "
                          "can allow a network with agent_allow_networks)",
                          why);
    if (rc)
        tl_warn(w, "url_unresolved", "url",
                "%s could not be resolved now (%s); it is checked again when a call connects",
                u.host, why);
    return 0;
}

/* The agent as stored, for the response: header values come back hidden. */
static void reply_agent(struct tl_api_req *r, struct tl_api_resp *out, int status, const char *ws,
                        const char *id, const struct tl_warnings *w)
{
    struct tl_agent *a = calloc(1, sizeof *a);
    int rc = a ? tl_store_agent_get(r->store, ws, id, a) : ENOMEM;
    if (rc)
        tl_api_fail_rc(out, rc, NULL);
    else
        tl_api_reply(out, status, tl_codec_agent_encode(a, w));
    free(a);
}

void tl_h_agent_create(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    char ws[TL_ID_MAX];
    struct tl_agent *a = NULL;
    json_t *j = NULL;
    int rc;

    if (tl_api_scope(r, ws, out))
        goto out;
    j = tl_api_body(r, out);
    if (!j)
        goto out;
    a = calloc(1, sizeof *a); /* ~25 KiB with its parameter and header tables */
    if (!a) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    struct tl_warnings w = {0};
    rc = tl_codec_agent_decode(j, true, a, &err);
    if (!rc)
        rc = agent_dest_check(r->api, a, &w, &err);
    if (!rc) {
        tl_strlcpy(a->workspace_id, ws, sizeof a->workspace_id);
        rc = tl_store_agent_create(r->store, a, &err);
    }
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    snprintf(out->location, sizeof out->location, "/v1/agents/%s", a->id);
    reply_agent(r, out, 201, ws, a->id, &w);
out:
    json_decref(j);
    if (a)
        explicit_bzero(a, sizeof *a); /* header values may be API keys */
    free(a);
}

void tl_h_agent_get(struct tl_api_req *r, struct tl_api_resp *out)
{
    char ws[TL_ID_MAX];
    if (tl_api_scope(r, ws, out))
        return;
    reply_agent(r, out, 200, ws, r->id, NULL);
}

void tl_h_agent_patch(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_err err = {0};
    char ws[TL_ID_MAX];
    struct tl_agent *a = NULL;
    json_t *j = NULL;
    int rc;

    if (tl_api_scope(r, ws, out))
        goto out;
    a = calloc(1, sizeof *a);
    if (!a) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    /* 404 before looking at the body: a foreign id must not learn how it would validate */
    rc = tl_store_agent_get(r->store, ws, r->id, a);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        goto out;
    }
    j = tl_api_body(r, out);
    if (!j)
        goto out;
    /* merge: the codec overwrites what the body names; header entries without a value
     * stay empty with values_hidden set, which the store reads as "keep the stored one" */
    struct tl_warnings w = {0};
    rc = tl_codec_agent_decode(j, false, a, &err);
    tl_strlcpy(a->id, r->id, sizeof a->id);
    tl_strlcpy(a->workspace_id, ws, sizeof a->workspace_id);
    if (!rc)
        rc = agent_dest_check(r->api, a, &w, &err);
    if (!rc)
        rc = tl_store_agent_update(r->store, a, &w, &err);
    if (rc) {
        tl_api_fail_rc(out, rc, &err);
        goto out;
    }
    reply_agent(r, out, 200, ws, r->id, &w);
out:
    json_decref(j);
    if (a)
        explicit_bzero(a, sizeof *a);
    free(a);
}

void tl_h_agent_delete(struct tl_api_req *r, struct tl_api_resp *out)
{
    tl_api_remove(r, out, tl_store_agent_delete);
}
