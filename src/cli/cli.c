/* The CLI entry point (resource and verb dispatch, connection settings) and the small
 * resources: agents, workspaces, tokens, endpoints. Phone numbers are in numbers.c. */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/core.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

static const struct cli_resource *const resources[] = {
    &tl_cli_numbers,    &tl_cli_calls,  &tl_cli_agents,
    &tl_cli_workspaces, &tl_cli_tokens, &tl_cli_endpoints,
};
#define N_RESOURCES (sizeof resources / sizeof resources[0])

/* "/v1/<collection>/<escaped id>" plus ?workspace_id= when scoped */
static int object_path(struct cli *c, struct cli_buf *b, const char *collection, const char *id,
                       bool scoped)
{
    tl_cli_buf_add(b, collection);
    if (id) {
        tl_cli_buf_add(b, "/");
        tl_cli_buf_add_escaped(b, id);
    }
    if (scoped)
        tl_cli_scope(c, b);
    return b->oom ? tl_cli_oom() : TL_CLI_OK;
}

/* GET/DELETE of one object, printed as a block (or JSON) or as "<done> <id>" */
static int simple(struct cli *c, const char *method, const char *collection, const char *id,
                  bool scoped, const char *done)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc = object_path(c, &p, collection, id, scoped);
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, method, p.p, NULL, &doc);
    tl_cli_buf_free(&p);
    if (rc != TL_CLI_OK)
        return rc;
    if (doc) {
        if (done && !c->json) {
            tl_cli_print_warnings(doc);
            tl_cli_print_block(doc);
        } else {
            tl_cli_print_object(c, doc);
        }
    } else if (done && !c->json) {
        char *clean = tl_cli_clean(id, 64);
        printf("%s %s\n", done, clean ? clean : "");
        free(clean);
    }
    json_decref(doc);
    return TL_CLI_OK;
}

/* POST or PATCH a body and print the resulting object */
static int write_obj(struct cli *c, const char *method, const char *collection, const char *id,
                     bool scoped, json_t *body)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc = object_path(c, &p, collection, id, scoped);
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, method, p.p, body, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK && doc)
        tl_cli_print_object(c, doc);
    json_decref(doc);
    return rc;
}

static int list(struct cli *c, struct cli_args *a, const char *collection, bool scoped,
                size_t ncols, const char *const *headers, cli_row_cb row)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc = object_path(c, &p, collection, NULL, scoped);
    if (rc == TL_CLI_OK)
        rc = tl_cli_list(c, a, &p, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK)
        rc = tl_cli_print_list(c, doc, ncols, headers, row);
    json_decref(doc);
    return rc;
}

static int set_str(json_t *o, const char *key, const char *val)
{
    if (!val)
        return TL_CLI_OK;
    return json_object_set_new(o, key, json_string(val)) ? tl_cli_oom() : TL_CLI_OK;
}

/* ---- agents ---- */

static void agent_row(const json_t *it, const char **cells, char *scratch)
{
    (void)scratch;
    cells[0] = tl_cli_str(it, "id", NULL);
    cells[1] = tl_cli_str(it, "name", NULL);
    cells[2] = tl_cli_str(it, "kind", NULL);
    cells[3] = tl_cli_str(it, "builtin", tl_cli_str(it, "url", tl_cli_str(it, "voice_url", NULL)));
}

static int agents_list(struct cli *c, struct cli_args *a)
{
    static const char *const h[] = {"ID", "NAME", "KIND", "TARGET"};
    return list(c, a, "/v1/agents", true, 4, h, agent_row);
}

static int agents_show(struct cli *c, struct cli_args *a)
{
    return simple(c, "GET", "/v1/agents", a->pos[0], true, NULL);
}

static int agents_delete(struct cli *c, struct cli_args *a)
{
    return simple(c, "DELETE", "/v1/agents", a->pos[0], true, "deleted");
}

/* Applies --clear-params, --remove-param and --param to params (an object, modified). */
static int apply_params(struct cli *c, const struct cli_args *a, json_t *params)
{
    if (cli_has(a, F_CLEAR_PARAMS))
        json_object_clear(params);
    for (size_t i = 0; i < a->n[F_REMOVE_PARAM]; i++)
        json_object_del(params, a->val[F_REMOVE_PARAM][i]);
    for (size_t i = 0; i < a->n[F_PARAM]; i++) {
        const char *kv = a->val[F_PARAM][i];
        const char *eq = strchr(kv, '=');
        if (!eq || eq == kv)
            return tl_cli_usage(c->res, c->verb, "--param needs KEY=VALUE (argument #%zu)", i + 1);
        char key[256];
        if ((size_t)(eq - kv) >= sizeof key)
            return tl_cli_usage(c->res, c->verb, "--param key too long (argument #%zu)", i + 1);
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        if (json_object_set_new(params, key, json_string(eq + 1)))
            return tl_cli_oom();
    }
    return TL_CLI_OK;
}

static int agent_headers(struct cli *c, const struct cli_args *a, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return tl_cli_oom();
    for (size_t i = 0; i < a->n[F_AGENT_HEADER]; i++) {
        char buf[1024];
        const char *name, *value;
        if (!tl_cli_split_header(a->val[F_AGENT_HEADER][i], buf, sizeof buf, &name, &value)) {
            json_decref(arr);
            return tl_cli_usage(c->res, c->verb, "--header needs 'NAME: VALUE' (argument #%zu)",
                                i + 1);
        }
        if (json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "value", value))) {
            json_decref(arr);
            return tl_cli_oom();
        }
    }
    *out = arr;
    return TL_CLI_OK;
}

/* --connect-timeout-ms, --timeout-ms: a whole number; the API checks the range and names
 * the field */
static int agent_timeout(struct cli *c, const struct cli_args *a, json_t *body)
{
    static const struct {
        int flag;
        const char *name, *member;
    } t[] = {{F_AGENT_TIMEOUT, "--connect-timeout-ms", "connect_timeout_ms"},
             {F_TWIML_TIMEOUT, "--timeout-ms", "timeout_ms"}};
    for (size_t i = 0; i < 2; i++) {
        const char *v = cli_get(a, t[i].flag);
        if (!v)
            continue;
        char *end;
        long ms = strtol(v, &end, 10);
        if (!*v || *end || ms < 0 || ms > 1000000) {
            char msg[80];
            snprintf(msg, sizeof msg, "%s needs a number of milliseconds", t[i].name);
            return tl_cli_usage(c->res, c->verb, msg);
        }
        if (json_object_set_new(body, t[i].member, json_integer(ms)))
            return tl_cli_oom();
    }
    return TL_CLI_OK;
}

/* a URL flag where '' removes the stored value (null) */
static int set_url_or_null(json_t *o, const char *key, const char *val)
{
    if (!val)
        return TL_CLI_OK;
    return json_object_set_new(o, key, val[0] ? json_string(val) : json_null()) ? tl_cli_oom()
                                                                                : TL_CLI_OK;
}

/* --builtin, --url and --voice-url choose the kind; one of them */
static int agent_kind(struct cli *c, const struct cli_args *a, json_t *body)
{
    const char *builtin = cli_get(a, F_BUILTIN), *url = cli_get(a, F_AGENT_URL),
               *voice = cli_get(a, F_VOICE_URL);
    if ((builtin != NULL) + (url != NULL) + (voice != NULL) > 1)
        return tl_cli_usage(c->res, c->verb, "give one of --builtin, --url or --voice-url");
    if (builtin && (cli_has(a, F_PARAM) || cli_has(a, F_AGENT_HEADER)))
        return tl_cli_usage(c->res, c->verb,
                            "--param and --header are for websocket agents (--url)");
    if (voice && cli_has(a, F_AGENT_HEADER))
        return tl_cli_usage(c->res, c->verb,
                            "--header is for websocket agents; twiml bots check "
                            "X-Twilio-Signature instead");
    int rc = set_str(body, "kind",
                     builtin ? "builtin"
                     : url   ? "websocket"
                     : voice ? "twiml"
                             : NULL);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "builtin", builtin);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "url", url);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "voice_url", voice);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "method", cli_get(a, F_VOICE_METHOD));
    if (rc == TL_CLI_OK)
        rc = set_url_or_null(body, "fallback_url", cli_get(a, F_FALLBACK_URL));
    if (rc == TL_CLI_OK)
        rc = set_url_or_null(body, "status_callback", cli_get(a, F_STATUS_CALLBACK));
    return rc;
}

static int agents_create(struct cli *c, struct cli_args *a)
{
    if (!cli_has(a, F_NAME))
        return tl_cli_usage(c->res, c->verb, "missing --name");
    if (!cli_has(a, F_BUILTIN) && !cli_has(a, F_AGENT_URL) && !cli_has(a, F_VOICE_URL))
        return tl_cli_usage(c->res, c->verb,
                            "missing --builtin echo, --url wss://... or --voice-url https://...");
    json_t *body = json_object(), *params = json_object(), *hdrs = NULL;
    int rc = body && params ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(body, "name", cli_get(a, F_NAME));
    if (rc == TL_CLI_OK)
        rc = agent_kind(c, a, body);
    if (rc == TL_CLI_OK)
        rc = agent_timeout(c, a, body);
    if (rc == TL_CLI_OK)
        rc = apply_params(c, a, params);
    if (rc == TL_CLI_OK && json_object_size(params))
        rc = json_object_set(body, "parameters", params) ? tl_cli_oom() : TL_CLI_OK;
    if (rc == TL_CLI_OK && cli_has(a, F_AGENT_HEADER) &&
        (rc = agent_headers(c, a, &hdrs)) == TL_CLI_OK)
        rc = json_object_set(body, "headers", hdrs) ? tl_cli_oom() : TL_CLI_OK;
    if (rc == TL_CLI_OK)
        rc = write_obj(c, "POST", "/v1/agents", NULL, true, body);
    json_decref(hdrs);
    json_decref(params);
    json_decref(body);
    return rc;
}

static int agents_edit(struct cli *c, struct cli_args *a)
{
    bool params = cli_has(a, F_PARAM) || cli_has(a, F_REMOVE_PARAM) || cli_has(a, F_CLEAR_PARAMS);
    bool headers = cli_has(a, F_AGENT_HEADER) || cli_has(a, F_AGENT_CLEAR_HEADERS);
    if (!params && !headers && !cli_has(a, F_NAME) && !cli_has(a, F_BUILTIN) &&
        !cli_has(a, F_AGENT_URL) && !cli_has(a, F_AGENT_TIMEOUT) && !cli_has(a, F_VOICE_URL) &&
        !cli_has(a, F_VOICE_METHOD) && !cli_has(a, F_FALLBACK_URL) &&
        !cli_has(a, F_STATUS_CALLBACK) && !cli_has(a, F_TWIML_TIMEOUT))
        return tl_cli_usage(c->res, c->verb, "nothing to change: give at least one flag");
    json_t *body = json_object(), *cur = NULL, *hdrs = NULL;
    int rc = body ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(body, "name", cli_get(a, F_NAME));
    if (rc == TL_CLI_OK)
        rc = agent_kind(c, a, body);
    if (rc == TL_CLI_OK)
        rc = agent_timeout(c, a, body);
    if (rc == TL_CLI_OK && params) {
        /* PATCH replaces the whole map: merge the flags into what is stored */
        struct cli_buf p = {0};
        rc = object_path(c, &p, "/v1/agents", a->pos[0], true);
        if (rc == TL_CLI_OK)
            rc = tl_cli_call(c, "GET", p.p, NULL, &cur);
        tl_cli_buf_free(&p);
        json_t *pm = json_is_object(json_object_get(cur, "parameters"))
                         ? json_deep_copy(json_object_get(cur, "parameters"))
                         : json_object();
        if (rc == TL_CLI_OK && !pm)
            rc = tl_cli_oom();
        if (rc == TL_CLI_OK)
            rc = apply_params(c, a, pm);
        if (rc == TL_CLI_OK)
            rc = json_object_set(body, "parameters", pm) ? tl_cli_oom() : TL_CLI_OK;
        json_decref(pm);
    }
    /* Header values are write-only (reads say value_set), so they cannot be merged: the
     * headers given replace the stored list. */
    if (rc == TL_CLI_OK && headers && (rc = agent_headers(c, a, &hdrs)) == TL_CLI_OK)
        rc = json_object_set(body, "headers", hdrs) ? tl_cli_oom() : TL_CLI_OK;
    if (rc == TL_CLI_OK)
        rc = write_obj(c, "PATCH", "/v1/agents", a->pos[0], true, body);
    json_decref(hdrs);
    json_decref(cur);
    json_decref(body);
    return rc;
}

static const int page_flags[] = {F_LIMIT, F_CURSOR, F_ALL, CLI_FLAG_END};
static const int agents_create_flags[] = {
    F_NAME,         F_BUILTIN,         F_AGENT_URL,     F_PARAM,
    F_AGENT_HEADER, F_AGENT_TIMEOUT,   F_VOICE_URL,     F_VOICE_METHOD,
    F_FALLBACK_URL, F_STATUS_CALLBACK, F_TWIML_TIMEOUT, CLI_FLAG_END};
static const int agents_edit_flags[] = {
    F_NAME,         F_BUILTIN,      F_AGENT_URL,           F_PARAM,         F_REMOVE_PARAM,
    F_CLEAR_PARAMS, F_AGENT_HEADER, F_AGENT_CLEAR_HEADERS, F_AGENT_TIMEOUT, F_VOICE_URL,
    F_VOICE_METHOD, F_FALLBACK_URL, F_STATUS_CALLBACK,     F_TWIML_TIMEOUT, CLI_FLAG_END};
static const int no_flags[] = {CLI_FLAG_END};

static const struct cli_verb agents_verbs[] = {
    {"list", "", 0, 0, "List the workspace's agents", page_flags, NULL, agents_list},
    {"show", "ID", 1, 1, "Show one agent", no_flags, NULL, agents_show},
    {"create", "", 0, 0, "Create an agent: builtin (echo), a websocket URL or a TwiML voice URL",
     agents_create_flags,
     "examples:\n"
     "  trunkline agents create --name test --builtin echo\n"
     "  trunkline agents create --name sales --url wss://bot.example.com/ws \\\n"
     "      --param lang=de --header 'Authorization: Bearer ...'\n"
     "  trunkline agents create --name pipecat --voice-url https://bot.example.com/voice\n",
     agents_create},
    {"edit", "ID", 1, 1, "Change an agent's name, target, parameters or headers", agents_edit_flags,
     "--param merges into the stored parameters; --header replaces every stored header\n"
     "(their values cannot be read back, so give them all).\n",
     agents_edit},
    {"delete", "ID", 1, 1, "Delete an agent (unassign its numbers first)", no_flags, NULL,
     agents_delete},
};
const struct cli_resource tl_cli_agents = {"agents", "AI voice agents that answer and place calls.",
                                           agents_verbs,
                                           sizeof agents_verbs / sizeof agents_verbs[0]};

/* ---- workspaces ---- */

static void workspace_row(const json_t *it, const char **cells, char *scratch)
{
    (void)scratch;
    cells[0] = tl_cli_str(it, "id", NULL);
    cells[1] = tl_cli_str(it, "name", NULL);
    cells[2] = tl_cli_str(it, "plan", NULL);
    cells[3] = tl_cli_str(it, "region", NULL);
    cells[4] = tl_cli_str(it, "created_at", NULL);
}

static int workspaces_list(struct cli *c, struct cli_args *a)
{
    static const char *const h[] = {"ID", "NAME", "PLAN", "REGION", "CREATED"};
    return list(c, a, "/v1/workspaces", false, 5, h, workspace_row);
}

static int workspaces_show(struct cli *c, struct cli_args *a)
{
    return simple(c, "GET", "/v1/workspaces", a->pos[0], false, NULL);
}

static int workspace_write(struct cli *c, struct cli_args *a, const char *method, const char *id)
{
    json_t *body = json_object();
    int rc = body ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(body, "name", cli_get(a, F_NAME));
    if (rc == TL_CLI_OK)
        rc = set_str(body, "plan", cli_get(a, F_PLAN));
    if (rc == TL_CLI_OK)
        rc = set_str(body, "region", cli_get(a, F_REGION));
    if (rc == TL_CLI_OK)
        rc = write_obj(c, method, "/v1/workspaces", id, false, body);
    json_decref(body);
    return rc;
}

static int workspaces_create(struct cli *c, struct cli_args *a)
{
    if (!cli_has(a, F_NAME))
        return tl_cli_usage(c->res, c->verb, "missing --name");
    return workspace_write(c, a, "POST", NULL);
}

static int workspaces_edit(struct cli *c, struct cli_args *a)
{
    if (!cli_has(a, F_NAME) && !cli_has(a, F_PLAN) && !cli_has(a, F_REGION))
        return tl_cli_usage(c->res, c->verb, "nothing to change: give --name, --plan or --region");
    return workspace_write(c, a, "PATCH", a->pos[0]);
}

static const int workspaces_write_flags[] = {F_NAME, F_PLAN, F_REGION, CLI_FLAG_END};
static const struct cli_verb workspaces_verbs[] = {
    {"list", "", 0, 0, "List workspaces (operator tokens)", page_flags, NULL, workspaces_list},
    {"show", "ID", 1, 1, "Show one workspace", no_flags, NULL, workspaces_show},
    {"create", "", 0, 0, "Create a workspace (operator tokens)", workspaces_write_flags,
     "SIP trunk import needs the professional plan or higher.\n", workspaces_create},
    {"edit", "ID", 1, 1, "Change a workspace's name, plan or region", workspaces_write_flags, NULL,
     workspaces_edit},
};
const struct cli_resource tl_cli_workspaces = {
    "workspaces", "Workspaces (tenants): each owns its agents, numbers and tokens.",
    workspaces_verbs, sizeof workspaces_verbs / sizeof workspaces_verbs[0]};

/* ---- tokens ---- */

static void token_row(const json_t *it, const char **cells, char *scratch)
{
    (void)scratch;
    cells[0] = tl_cli_str(it, "id", NULL);
    cells[1] = tl_cli_str(it, "role", NULL);
    cells[2] = tl_cli_str(it, "name", NULL);
    cells[3] = tl_cli_str(it, "workspace_id", NULL);
    cells[4] = tl_cli_str(it, "prefix", NULL);
    cells[5] = tl_cli_str(it, "created_at", NULL);
}

static int tokens_list(struct cli *c, struct cli_args *a)
{
    static const char *const h[] = {"ID", "ROLE", "NAME", "WORKSPACE", "PREFIX", "CREATED"};
    /* an explicit --workspace filters an operator's list; TRUNKLINE_WORKSPACE does not, as
     * it would hide the operator tokens (they belong to no workspace) */
    struct cli_buf p = {0};
    json_t *doc = NULL;
    tl_cli_buf_add(&p, "/v1/tokens");
    tl_cli_buf_query(&p, "workspace_id", c->workspace_from_flag ? c->workspace : NULL);
    int rc = p.oom ? tl_cli_oom() : tl_cli_list(c, a, &p, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK)
        rc = tl_cli_print_list(c, doc, 6, h, token_row);
    json_decref(doc);
    return rc;
}

static int tokens_show(struct cli *c, struct cli_args *a)
{
    return simple(c, "GET", "/v1/tokens", a->pos[0], false, NULL);
}

static int tokens_revoke(struct cli *c, struct cli_args *a)
{
    return simple(c, "DELETE", "/v1/tokens", a->pos[0], false, "revoked");
}

static int tokens_create(struct cli *c, struct cli_args *a)
{
    const char *role = cli_get(a, F_ROLE);
    if (!role)
        return tl_cli_usage(c->res, c->verb, "missing --role (admin, member or operator)");
    /* TRUNKLINE_WORKSPACE scopes the operator's everyday commands; it must not turn a
     * request for an operator token into a workspace token (or a refused request). */
    const char *ws = c->workspace_from_flag || strcmp(role, "operator") != 0 ? c->workspace : NULL;
    json_t *body = json_object(), *doc = NULL;
    int rc = body ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(body, "role", role);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "name", cli_get(a, F_NAME));
    if (rc == TL_CLI_OK)
        rc = set_str(body, "workspace_id", ws);
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, "POST", "/v1/tokens", body, &doc);
    if (rc == TL_CLI_OK && doc) {
        if (c->json) {
            tl_cli_print_json(doc);
        } else {
            json_t *shown = json_copy(doc);
            const char *secret = tl_cli_str(doc, "token", NULL);
            if (!shown) {
                rc = tl_cli_oom();
            } else {
                json_object_del(shown, "token");
                tl_cli_print_block(shown);
                json_decref(shown);
                if (secret)
                    printf("\ntoken: %s\n(shown once: store it now; the server keeps only a "
                           "hash and cannot show it again)\n",
                           secret);
            }
        }
    }
    json_decref(doc);
    json_decref(body);
    return rc;
}

static const int tokens_create_flags[] = {F_ROLE, F_NAME, CLI_FLAG_END};
static const struct cli_verb tokens_verbs[] = {
    {"list", "", 0, 0, "List API tokens (never their secrets)", page_flags,
     "An operator may give --workspace to list only that workspace's tokens.\n", tokens_list},
    {"show", "ID", 1, 1, "Show one token", no_flags, NULL, tokens_show},
    {"create", "", 0, 0, "Create a token; its secret is printed once", tokens_create_flags,
     "--workspace (or $TRUNKLINE_WORKSPACE, except for --role operator) names the workspace\n"
     "an admin or member token belongs to.\n",
     tokens_create},
    {"revoke", "ID", 1, 1, "Revoke a token (it stops working at once)", no_flags, NULL,
     tokens_revoke},
};
const struct cli_resource tl_cli_tokens = {"tokens", "API tokens.", tokens_verbs,
                                           sizeof tokens_verbs / sizeof tokens_verbs[0]};

/* ---- endpoints ---- */

static int endpoints_show(struct cli *c, struct cli_args *a)
{
    (void)a;
    return simple(c, "GET", "/v1/sip/endpoints", NULL, false, NULL);
}

static const struct cli_verb endpoints_verbs[] = {
    {"", "", 0, 0,
     "Show the SIP URIs to paste into your provider's origination settings (TLS is "
     "recommended).",
     no_flags, NULL, endpoints_show},
};
const struct cli_resource tl_cli_endpoints = {"endpoints", "The gateway's SIP endpoints.",
                                              endpoints_verbs, 1};

/* ---- dispatch ---- */

static void help_top(FILE *f)
{
    fputs("usage: trunkline <resource> <verb> [flags]\n\nresources:\n", f);
    for (size_t i = 0; i < N_RESOURCES; i++)
        fprintf(f, "  %-12s %s\n", resources[i]->name, resources[i]->summary);
}

static bool global_takes_value(const char *arg)
{
    return strcmp(arg, "--url") == 0 || strcmp(arg, "--api-url") == 0 ||
           strcmp(arg, "--token") == 0 || strcmp(arg, "--workspace") == 0;
}

/* The verb is the first word that is neither a flag nor the value of a global flag given
 * before it (`trunkline numbers --json list`). */
static int find_verb(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-' || argv[i][1] == '\0')
            return i;
        if (strcmp(argv[i], "--") == 0)
            return i + 1 < argc ? i + 1 : -1;
        if (global_takes_value(argv[i]))
            i++;
    }
    return -1;
}

static bool wants_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

static const struct cli_verb *verb_lookup(const struct cli_resource *r, const char *name)
{
    for (size_t i = 0; i < r->n_verbs; i++)
        if (strcmp(r->verbs[i].name, name) == 0)
            return &r->verbs[i];
    return NULL;
}

/* Settings from flags, then the environment, then defaults. */
static int setup(struct cli *c, const struct cli_args *a)
{
    const char *url = cli_get(a, F_URL);
    c->url_source = "--url";
    if (!url && (url = getenv("TRUNKLINE_URL")) && url[0])
        c->url_source = "TRUNKLINE_URL";
    if (!url || !url[0]) {
        url = DEFAULT_URL;
        c->url_source = "the default";
    }
    if (!(c->base_url = strdup(url)))
        return tl_cli_oom();
    size_t n = strlen(c->base_url);
    while (n && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';

    const char *tok = cli_get(a, F_TOKEN);
    if (!tok)
        tok = getenv("TRUNKLINE_TOKEN");
    if (tok && tok[0] && !(c->token = strdup(tok)))
        return tl_cli_oom();

    c->workspace = cli_get(a, F_WORKSPACE);
    c->workspace_from_flag = c->workspace != NULL;
    if (!c->workspace)
        c->workspace = getenv("TRUNKLINE_WORKSPACE");
    if (c->workspace && !c->workspace[0])
        c->workspace = NULL;
    c->json = cli_has(a, F_JSON);
    return TL_CLI_OK;
}

static int run_verb(const struct cli_resource *r, const struct cli_verb *v, int argc, char **argv)
{
    struct cli_args a;
    struct cli c = {.res = r, .verb = v};
    int rc = tl_cli_args_parse(r, v, argc, argv, &a);
    if (rc != TL_CLI_OK)
        goto out;
    if (cli_has(&a, F_HELP)) {
        tl_cli_help_verb(stdout, r, v);
        goto out;
    }
    if ((rc = setup(&c, &a)) != TL_CLI_OK)
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fputs("error: cannot initialise libcurl\n", stderr);
        rc = TL_CLI_API;
        goto out;
    }
    if (!(c.curl = curl_easy_init())) {
        rc = tl_cli_oom();
    } else {
        rc = v->run(&c, &a);
        curl_easy_cleanup(c.curl);
    }
    curl_global_cleanup();
out:
    if (c.token)
        explicit_bzero(c.token, strlen(c.token));
    free(c.token);
    free(c.base_url);
    tl_cli_args_free(&a);
    fflush(stdout);
    return rc;
}

int tl_cli_main(int argc, char **argv)
{
    const struct cli_resource *r = NULL;
    for (size_t i = 0; argc > 0 && i < N_RESOURCES; i++)
        if (strcmp(argv[0], resources[i]->name) == 0)
            r = resources[i];
    if (!r) {
        help_top(stderr);
        return TL_CLI_USAGE;
    }
    int n = argc - 1;
    char **rest = argv + 1;
    if (r->n_verbs == 1 && r->verbs[0].name[0] == '\0')
        return run_verb(r, &r->verbs[0], n, rest);

    int vi = find_verb(n, rest);
    if (vi < 0) {
        if (wants_help(n, rest)) {
            tl_cli_help_resource(stdout, r);
            return TL_CLI_OK;
        }
        tl_cli_help_resource(stderr, r);
        fprintf(stderr, "\nerror: missing verb\n");
        return TL_CLI_USAGE;
    }
    if (strcmp(rest[vi], "help") == 0) { /* `trunkline numbers help [verb]` */
        const struct cli_verb *v = vi + 1 < n ? verb_lookup(r, rest[vi + 1]) : NULL;
        if (v)
            tl_cli_help_verb(stdout, r, v);
        else
            tl_cli_help_resource(stdout, r);
        return TL_CLI_OK;
    }
    const struct cli_verb *v = verb_lookup(r, rest[vi]);
    if (!v) {
        char *clean = tl_cli_clean(rest[vi], 32);
        fprintf(stderr, "error: unknown verb '%s' for %s\nsee 'trunkline %s --help'\n",
                clean ? clean : "?", r->name, r->name);
        free(clean);
        return TL_CLI_USAGE;
    }
    /* the verb's own argv: everything but the verb word, same strings (so scrubbing a
     * secret reaches the process's real argv) */
    char **args = malloc((size_t)(n > 0 ? n : 1) * sizeof *args);
    if (!args)
        return tl_cli_oom();
    int m = 0;
    for (int i = 0; i < n; i++)
        if (i != vi)
            args[m++] = rest[i];
    int rc = run_verb(r, v, m, args);
    free(args);
    return rc;
}
