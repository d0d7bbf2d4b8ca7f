/* `trunkline calls …`: the call log, and outbound calls (docs/cli.md, docs/calls.md
 * "Outbound calls"). place POSTs /v1/calls and prints the queued call — or, with --wait,
 * follows it (GET every 250 ms, the API's live view) until it is answered or has ended, so
 * a script learns the outcome in one command. */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CALLS      "/v1/calls"
#define POLL_MS    250
#define WAIT_SLACK 30 /* s beyond the ringing timeout: the CANCEL's 487, a slow carrier */

static int path_of(struct cli *c, struct cli_buf *p, const char *id, const char *suffix)
{
    tl_cli_buf_add(p, CALLS);
    if (id) {
        tl_cli_buf_add(p, "/");
        tl_cli_buf_add_escaped(p, id);
    }
    if (suffix)
        tl_cli_buf_add(p, suffix);
    tl_cli_scope(c, p);
    return p->oom ? tl_cli_oom() : TL_CLI_OK;
}

static int get_call(struct cli *c, const char *id, json_t **out)
{
    struct cli_buf p = {0};
    int rc = path_of(c, &p, id, NULL);
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, "GET", p.p, NULL, out);
    tl_cli_buf_free(&p);
    return rc;
}

/* ---- list, show, hangup ---- */

static void call_row(const json_t *it, const char **cells, char *scratch)
{
    cells[0] = tl_cli_str(it, "id", NULL);
    cells[1] = tl_cli_str(it, "direction", NULL);
    cells[2] = tl_cli_str(it, "status", NULL);
    cells[3] = tl_cli_str(it, "from", NULL);
    cells[4] = tl_cli_str(it, "to", NULL);
    json_t *fs = json_object_get(it, "final_status");
    if (json_is_integer(fs)) {
        snprintf(scratch, CLI_SCRATCH, "%lld %s", (long long)json_integer_value(fs),
                 tl_cli_str(it, "sip_reason", ""));
        cells[5] = scratch;
    }
    cells[6] = tl_cli_str(it, "created_at", NULL);
}

static int calls_list(struct cli *c, struct cli_args *a)
{
    static const char *const h[] = {"ID", "DIRECTION", "STATUS", "FROM", "TO", "SIP", "CREATED"};
    struct cli_buf p = {0};
    json_t *doc = NULL;
    tl_cli_buf_add(&p, CALLS);
    tl_cli_buf_query(&p, "number_id", cli_get(a, F_CALL_NUMBER));
    tl_cli_scope(c, &p);
    int rc = p.oom ? tl_cli_oom() : tl_cli_list(c, a, &p, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK)
        rc = tl_cli_print_list(c, doc, 7, h, call_row);
    json_decref(doc);
    return rc;
}

static int calls_show(struct cli *c, struct cli_args *a)
{
    json_t *doc = NULL;
    int rc = get_call(c, a->pos[0], &doc);
    if (rc == TL_CLI_OK)
        tl_cli_print_object(c, doc);
    json_decref(doc);
    return rc;
}

static int calls_hangup(struct cli *c, struct cli_args *a)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc = path_of(c, &p, a->pos[0], "/hangup");
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, "POST", p.p, NULL, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK && doc)
        tl_cli_print_object(c, doc);
    json_decref(doc);
    return rc;
}

/* ---- place ---- */

/* a whole number of seconds for member key (the API checks the range and names it) */
static int seconds(struct cli *c, const struct cli_args *a, enum cli_flag_id id, const char *flag,
                   const char *key, json_t *body, long *out)
{
    const char *v = cli_get(a, id);
    if (!v)
        return TL_CLI_OK;
    char *end;
    long s = strtol(v, &end, 10);
    if (!*v || *end || s < 0 || s > 10000000)
        return tl_cli_usage(c->res, c->verb, "%s needs a number of seconds", flag);
    if (out)
        *out = s;
    return json_object_set_new(body, key, json_integer(s)) ? tl_cli_oom() : TL_CLI_OK;
}

static int place_body(struct cli *c, const struct cli_args *a, json_t *body, long *ring)
{
    json_t *params = json_object(), *hdrs = json_array();
    int rc = params && hdrs ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK &&
        (json_object_set_new(body, "from", json_string(cli_get(a, F_CALL_FROM))) ||
         json_object_set_new(body, "to", json_string(a->pos[0]))))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK && cli_get(a, F_CALL_AGENT) &&
        json_object_set_new(body, "agent_id", json_string(cli_get(a, F_CALL_AGENT))))
        rc = tl_cli_oom();
    for (size_t i = 0; rc == TL_CLI_OK && i < a->n[F_CALL_PARAM]; i++) {
        const char *kv = a->val[F_CALL_PARAM][i], *eq = strchr(kv, '=');
        char key[256];
        if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key) {
            rc = tl_cli_usage(c->res, c->verb, "--param needs KEY=VALUE (argument #%zu)", i + 1);
            break;
        }
        memcpy(key, kv, (size_t)(eq - kv));
        key[eq - kv] = '\0';
        if (json_object_set_new(params, key, json_string(eq + 1)))
            rc = tl_cli_oom();
    }
    for (size_t i = 0; rc == TL_CLI_OK && i < a->n[F_CALL_HEADER]; i++) {
        char buf[1024];
        const char *name, *value;
        if (!tl_cli_split_header(a->val[F_CALL_HEADER][i], buf, sizeof buf, &name, &value)) {
            rc = tl_cli_usage(c->res, c->verb, "--header needs 'X-NAME: VALUE' (argument #%zu)",
                              i + 1);
            break;
        }
        if (json_array_append_new(hdrs, json_pack("{s:s, s:s}", "name", name, "value", value)))
            rc = tl_cli_oom();
    }
    if (rc == TL_CLI_OK && json_object_size(params) && json_object_set(body, "parameters", params))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK && json_array_size(hdrs) && json_object_set(body, "headers", hdrs))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = seconds(c, a, F_RINGING_TIMEOUT, "--ringing-timeout", "ringing_timeout_s", body, ring);
    if (rc == TL_CLI_OK)
        rc = seconds(c, a, F_MAX_DURATION, "--max-duration", "max_duration_s", body, NULL);
    json_decref(params);
    json_decref(hdrs);
    return rc;
}

static bool settled(const char *status)
{
    static const char *const done[] = {"in_progress", "completed", "busy",
                                       "no_answer",   "failed",    "canceled"};
    for (size_t i = 0; status && i < sizeof done / sizeof done[0]; i++)
        if (!strcmp(status, done[i]))
            return true;
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int calls_place(struct cli *c, struct cli_args *a)
{
    if (!cli_get(a, F_CALL_FROM))
        return tl_cli_usage(c->res, c->verb,
                            "missing --from: the workspace's number to call from (pn_... or "
                            "E.164)");
    long ring = 60;
    json_t *body = json_object(), *doc = NULL;
    int rc = body ? place_body(c, a, body, &ring) : tl_cli_oom();
    if (rc == TL_CLI_OK) {
        struct cli_buf p = {0};
        rc = path_of(c, &p, NULL, NULL);
        if (rc == TL_CLI_OK)
            rc = tl_cli_call(c, "POST", p.p, body, &doc);
        tl_cli_buf_free(&p);
    }
    json_decref(body);
    if (rc != TL_CLI_OK)
        return rc;
    if (cli_has(a, F_WAIT)) {
        char *id = strdup(tl_cli_str(doc, "id", ""));
        if (!id) {
            json_decref(doc);
            return tl_cli_oom();
        }
        int64_t end = mono_ms() + (ring + WAIT_SLACK) * 1000;
        while (!settled(tl_cli_str(doc, "status", NULL)) && mono_ms() < end) {
            struct timespec ts = {0, POLL_MS * 1000000L};
            nanosleep(&ts, NULL); /* the API has no push: poll its live view */
            json_t *next = NULL;
            if ((rc = get_call(c, id, &next)) != TL_CLI_OK)
                break;
            json_decref(doc);
            doc = next;
        }
        free(id);
    }
    if (rc == TL_CLI_OK) {
        tl_cli_print_object(c, doc);
        const char *st = tl_cli_str(doc, "status", "");
        /* --wait: an unanswered end is not what the caller asked for */
        if (cli_has(a, F_WAIT) && strcmp(st, "in_progress") && strcmp(st, "completed"))
            rc = TL_CLI_API;
    }
    json_decref(doc);
    return rc;
}

static const int list_flags[] = {F_CALL_NUMBER, F_LIMIT, F_CURSOR, F_ALL, CLI_FLAG_END};
static const int place_flags[] = {F_CALL_FROM,       F_CALL_AGENT,   F_CALL_PARAM, F_CALL_HEADER,
                                  F_RINGING_TIMEOUT, F_MAX_DURATION, F_WAIT,       CLI_FLAG_END};
static const int no_flags[] = {CLI_FLAG_END};

static const struct cli_verb verbs[] = {
    {"list", "", 0, 0, "List calls, newest first (inbound and outbound)", list_flags, NULL,
     calls_list},
    {"show", "ID", 1, 1, "Show one call (live while it runs)", no_flags, NULL, calls_show},
    {"place", "+E164", 1, 1, "Call a number from one of yours, bridged to an agent", place_flags,
     "The call is placed through the --from number's outbound trunk; the answer comes at\n"
     "once with the call queued. --wait follows it until it is answered or has ended.\n"
     "examples:\n"
     "  trunkline calls place +4915112345678 --from +493012345678\n"
     "  trunkline calls place +4915112345678 --from pn_... --agent ag_... \\\n"
     "      --param customer=4711 --header 'X-Campaign: spring' --ringing-timeout 30 --wait\n",
     calls_place},
    {"hangup", "ID", 1, 1, "Cancel a call not yet answered, or hang up one in progress", no_flags,
     NULL, calls_hangup},
};
const struct cli_resource tl_cli_calls = {"calls", "Calls: the call log, and outbound calls.",
                                          verbs, sizeof verbs / sizeof verbs[0]};
