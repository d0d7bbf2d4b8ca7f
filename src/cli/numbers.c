/* `trunkline numbers …`: phone numbers on static SIP trunks.
 *
 * edit is a read-modify-write: PUT replaces the whole trunk configuration, but a person
 * typing `numbers edit pn_x --transport tcp` means "change the transport", so the current
 * number is fetched, only the flags given are applied, and the full configuration is sent
 * back. Passwords cannot be read back; leaving them out of the PUT keeps the stored ones
 * (the server does that while the username is unchanged). Between the GET and the PUT
 * another writer may change the number; the API has no version check for us to send,
 * and the window is one round trip. */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NUMBERS "/v1/phone-numbers"

/* ---- lookups ---- */

/* arg is "pn_…" or "+E164" (resolved with ?number=). *out: the number (new reference). */
static int number_fetch(struct cli *c, const char *arg, json_t **out)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    tl_cli_buf_add(&p, NUMBERS);
    if (arg[0] == '+') {
        tl_cli_buf_query(&p, "number", arg);
    } else {
        tl_cli_buf_add(&p, "/");
        tl_cli_buf_add_escaped(&p, arg);
    }
    tl_cli_scope(c, &p);
    int rc = p.oom ? tl_cli_oom() : tl_cli_call(c, "GET", p.p, NULL, &doc);
    tl_cli_buf_free(&p);
    if (rc != TL_CLI_OK)
        return rc;
    if (arg[0] != '+') {
        *out = doc;
        return TL_CLI_OK;
    }
    json_t *first = json_array_get(json_object_get(doc, "data"), 0);
    if (!first) {
        char *clean = tl_cli_clean(arg, 32);
        fprintf(stderr, "error: number: no phone number %s in this workspace (not_found)\n",
                clean ? clean : "?");
        free(clean);
        json_decref(doc);
        return TL_CLI_API;
    }
    *out = json_incref(first);
    json_decref(doc);
    return TL_CLI_OK;
}

/* The id behind "pn_…" or "+E164"; *id is malloc'd. */
static int number_id(struct cli *c, const char *arg, char **id)
{
    if (arg[0] != '+') {
        *id = strdup(arg);
        return *id ? TL_CLI_OK : tl_cli_oom();
    }
    json_t *n = NULL;
    int rc = number_fetch(c, arg, &n);
    if (rc != TL_CLI_OK)
        return rc;
    const char *s = tl_cli_str(n, "id", NULL);
    *id = s ? strdup(s) : NULL;
    json_decref(n);
    if (!s) {
        fputs("error: the server's answer has no number id\n", stderr);
        return TL_CLI_API;
    }
    return *id ? TL_CLI_OK : tl_cli_oom();
}

static int number_path(struct cli *c, const char *id, const char *suffix, struct cli_buf *p)
{
    tl_cli_buf_add(p, NUMBERS "/");
    tl_cli_buf_add_escaped(p, id);
    tl_cli_buf_add(p, suffix);
    tl_cli_scope(c, p);
    return p->oom ? tl_cli_oom() : TL_CLI_OK;
}

/* ---- building the trunk configuration ---- */

static int set_str(json_t *o, const char *key, const char *val)
{
    if (!val)
        return TL_CLI_OK;
    return json_object_set_new(o, key, json_string(val)) ? tl_cli_oom() : TL_CLI_OK;
}

/* flag value if given, else the current member; "" given on the command line removes */
static const char *pick(const struct cli_args *a, enum cli_flag_id id, const json_t *cur,
                        const char *key)
{
    const char *v = cli_get(a, id);
    if (!v)
        v = tl_cli_str(cur, key, NULL);
    return v && v[0] ? v : NULL;
}

static bool name_in(const struct cli_args *a, enum cli_flag_id id, const char *name)
{
    for (size_t i = 0; i < a->n[id]; i++)
        if (strcasecmp(a->val[id][i], name) == 0)
            return true;
    return false;
}

/* The current {name, value} headers (unless cleared) minus removed names, then each
 * --header replacing one of the same name: SIP header names are case-insensitive and a
 * trunk has one value per name. */
static int headers_apply(struct cli *c, const struct cli_args *a, const json_t *cur,
                         enum cli_flag_id f_set, enum cli_flag_id f_remove,
                         enum cli_flag_id f_clear, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return tl_cli_oom();
    size_t i;
    for (i = 0; !cli_has(a, f_clear) && i < json_array_size(cur); i++) {
        const json_t *h = json_array_get(cur, i);
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *value = json_string_value(json_object_get(h, "value"));
        if (!name || !value || name_in(a, f_remove, name))
            continue;
        if (json_array_append_new(arr, json_pack("{s:s, s:s}", "name", name, "value", value)))
            goto oom;
    }
    for (i = 0; i < a->n[f_set]; i++) {
        char buf[1024];
        const char *name, *value;
        if (!tl_cli_split_header(a->val[f_set][i], buf, sizeof buf, &name, &value)) {
            json_decref(arr);
            return tl_cli_usage(c->res, c->verb, "%s needs 'NAME: VALUE' (argument #%zu)",
                                f_set == F_HEADER ? "--header" : "--inbound-header", i + 1);
        }
        json_t *same = NULL;
        for (size_t j = 0; j < json_array_size(arr); j++) {
            json_t *e = json_array_get(arr, j);
            if (strcasecmp(json_string_value(json_object_get(e, "name")), name) == 0)
                same = e;
        }
        if (same) {
            if (json_object_set_new(same, "name", json_string(name)) ||
                json_object_set_new(same, "value", json_string(value)))
                goto oom;
        } else if (json_array_append_new(arr,
                                         json_pack("{s:s, s:s}", "name", name, "value", value))) {
            goto oom;
        }
    }
    *out = arr;
    return TL_CLI_OK;
oom:
    json_decref(arr);
    return tl_cli_oom();
}

static int allowed_apply(const struct cli_args *a, const json_t *cur, json_t **out)
{
    json_t *arr = json_array();
    if (!arr)
        return tl_cli_oom();
    size_t i;
    for (i = 0; !cli_has(a, F_CLEAR_ALLOW) && i < json_array_size(cur); i++) {
        const char *s = json_string_value(json_array_get(cur, i));
        if (s && !name_in(a, F_DISALLOW, s) && json_array_append_new(arr, json_string(s)))
            goto oom;
    }
    for (i = 0; i < a->n[F_ALLOW]; i++) {
        const char *s = a->val[F_ALLOW][i];
        bool dup = false;
        for (size_t j = 0; j < json_array_size(arr); j++)
            dup = dup || strcmp(json_string_value(json_array_get(arr, j)), s) == 0;
        if (!dup && json_array_append_new(arr, json_string(s)))
            goto oom;
    }
    *out = arr;
    return TL_CLI_OK;
oom:
    json_decref(arr);
    return tl_cli_oom();
}

/* Only the members POST/PUT accept (the server refuses unknown ones, and reads carry
 * extras such as has_password). cur: the stored trunk on edit, NULL on import. */
static int outbound_build(struct cli *c, const struct cli_args *a, const json_t *cur,
                          const char *password, bool edit, json_t **out)
{
    const char *address = pick(a, F_ADDRESS, cur, "address");
    if (!address)
        return tl_cli_usage(c->res, c->verb,
                            "missing --address HOST (your provider's SIP trunk hostname or IP)");
    json_t *o = json_object(), *hdrs = NULL;
    int rc = o ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(o, "address", address);
    if (rc == TL_CLI_OK)
        rc = set_str(o, "username", pick(a, F_USERNAME, cur, "username"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "password", password);
    if (rc == TL_CLI_OK)
        rc = set_str(o, "transport", pick(a, F_TRANSPORT, cur, "transport"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "media_encryption", pick(a, F_MEDIA_ENC, cur, "media_encryption"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "number_format", pick(a, F_NUMBER_FORMAT, cur, "number_format"));
    if (rc == TL_CLI_OK)
        rc = headers_apply(c, a, json_object_get(cur, "headers"), F_HEADER, F_REMOVE_HEADER,
                           F_CLEAR_HEADERS, &hdrs);
    if (rc == TL_CLI_OK && (edit || json_array_size(hdrs)))
        rc = json_object_set(o, "headers", hdrs) ? tl_cli_oom() : TL_CLI_OK;
    json_decref(hdrs);
    if (rc != TL_CLI_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return TL_CLI_OK;
}

/* flags that turn the inbound trunk on (a number without one gets one) */
static const int inbound_on_flags[] = {
    F_INBOUND, F_IN_TRANSPORT, F_IN_MEDIA_ENC, F_IN_USERNAME, F_IN_PASSWORD, F_IN_PASSWORD_STDIN,
    F_ALLOW,   F_ORIG_URL,     F_IN_HEADER,    F_IN_LATCHING, F_ALLOW_ANY,   CLI_FLAG_END};
/* flags that only edit an existing inbound trunk */
static const int inbound_edit_flags[] = {F_DISALLOW, F_CLEAR_ALLOW, F_IN_REMOVE_HEADER,
                                         F_IN_CLEAR_HEADERS, CLI_FLAG_END};

static const char *first_given(const struct cli_args *a, const int *list)
{
    static const char *const names[F__COUNT] = {
        [F_INBOUND] = "--inbound",
        [F_IN_TRANSPORT] = "--inbound-transport",
        [F_IN_MEDIA_ENC] = "--inbound-media-encryption",
        [F_IN_USERNAME] = "--inbound-username",
        [F_IN_PASSWORD] = "--inbound-password",
        [F_IN_PASSWORD_STDIN] = "--inbound-password-stdin",
        [F_ALLOW] = "--allow",
        [F_ORIG_URL] = "--origination-url",
        [F_IN_HEADER] = "--inbound-header",
        [F_IN_LATCHING] = "--inbound-rtp-latching",
        [F_ALLOW_ANY] = "--allow-any-source",
        [F_DISALLOW] = "--disallow",
        [F_CLEAR_ALLOW] = "--clear-allow",
        [F_IN_REMOVE_HEADER] = "--remove-inbound-header",
        [F_IN_CLEAR_HEADERS] = "--clear-inbound-headers",
    };
    for (; *list != CLI_FLAG_END; list++)
        if (cli_has(a, *list))
            return names[*list];
    return NULL;
}

/* *out: an object, json_null() (inbound disabled) or NULL (import: leave it out) */
static int inbound_build(struct cli *c, const struct cli_args *a, const json_t *cur,
                         const char *password, bool edit, json_t **out)
{
    const char *on = first_given(a, inbound_on_flags);
    const char *touch = on ? on : first_given(a, inbound_edit_flags);
    *out = NULL;
    if (cli_has(a, F_NO_INBOUND)) {
        if (touch)
            return tl_cli_usage(c->res, c->verb, "--no-inbound cannot be combined with %s", touch);
        *out = json_null();
        return TL_CLI_OK;
    }
    if (!json_is_object(cur))
        cur = NULL;
    if (!cur && !on) {
        if (touch)
            return tl_cli_usage(c->res, c->verb,
                                "%s: the number has no inbound trunk (add --inbound to enable "
                                "one)",
                                touch);
        *out = edit ? json_null() : NULL;
        return TL_CLI_OK;
    }
    json_t *o = json_object(), *hdrs = NULL, *allowed = NULL;
    int rc = o ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = set_str(o, "transport", pick(a, F_IN_TRANSPORT, cur, "transport"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "media_encryption", pick(a, F_IN_MEDIA_ENC, cur, "media_encryption"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "username", pick(a, F_IN_USERNAME, cur, "username"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "password", password);
    if (rc == TL_CLI_OK)
        rc = allowed_apply(a, json_object_get(cur, "allowed_addresses"), &allowed);
    if (rc == TL_CLI_OK && (edit || json_array_size(allowed)))
        rc = json_object_set(o, "allowed_addresses", allowed) ? tl_cli_oom() : TL_CLI_OK;
    if (rc == TL_CLI_OK)
        rc = set_str(o, "origination_url", pick(a, F_ORIG_URL, cur, "origination_url"));
    if (rc == TL_CLI_OK)
        rc = set_str(o, "rtp_latching", pick(a, F_IN_LATCHING, cur, "rtp_latching"));
    const char *any = cli_get(a, F_ALLOW_ANY);
    if (rc == TL_CLI_OK && any && strcmp(any, "yes") && strcmp(any, "no"))
        rc = tl_cli_usage(c->res, c->verb, "--allow-any-source takes yes or no");
    bool any_on =
        any ? !strcmp(any, "yes") : json_is_true(json_object_get(cur, "allow_any_source"));
    if (rc == TL_CLI_OK && any_on)
        rc = json_object_set_new(o, "allow_any_source", json_true()) ? tl_cli_oom() : TL_CLI_OK;
    if (rc == TL_CLI_OK)
        rc = headers_apply(c, a, json_object_get(cur, "headers"), F_IN_HEADER, F_IN_REMOVE_HEADER,
                           F_IN_CLEAR_HEADERS, &hdrs);
    if (rc == TL_CLI_OK && (edit || json_array_size(hdrs)))
        rc = json_object_set(o, "headers", hdrs) ? tl_cli_oom() : TL_CLI_OK;
    json_decref(hdrs);
    json_decref(allowed);
    if (rc != TL_CLI_OK) {
        json_decref(o);
        return rc;
    }
    *out = o;
    return TL_CLI_OK;
}

struct secrets {
    char out[CLI_SECRET_LINE_MAX], in[CLI_SECRET_LINE_MAX];
    const char *out_pw, *in_pw;
};

static void secrets_wipe(struct secrets *s)
{
    explicit_bzero(s, sizeof *s);
}

/* The shape of every --header/--inbound-header, checked before a password is read from
 * stdin or anything is fetched (headers_apply checks again where it uses them). */
static int check_header_flags(struct cli *c, const struct cli_args *a)
{
    static const struct {
        enum cli_flag_id id;
        const char *name;
    } hf[] = {{F_HEADER, "--header"}, {F_IN_HEADER, "--inbound-header"}};
    for (size_t k = 0; k < sizeof hf / sizeof hf[0]; k++) {
        for (size_t i = 0; i < a->n[hf[k].id]; i++) {
            char buf[1024];
            const char *name, *value;
            if (!tl_cli_split_header(a->val[hf[k].id][i], buf, sizeof buf, &name, &value))
                return tl_cli_usage(c->res, c->verb, "%s needs 'NAME: VALUE' (argument #%zu)",
                                    hf[k].name, i + 1);
        }
    }
    return TL_CLI_OK;
}

/* Checks the password flags, then reads from stdin: outbound first, inbound second. Run
 * after every other usage check so that a typo does not swallow the piped password. */
static int passwords(struct cli *c, const struct cli_args *a, struct secrets *s)
{
    if (cli_has(a, F_PASSWORD) && cli_has(a, F_PASSWORD_STDIN))
        return tl_cli_usage(c->res, c->verb, "give --password or --password-stdin, not both");
    if (cli_has(a, F_IN_PASSWORD) && cli_has(a, F_IN_PASSWORD_STDIN))
        return tl_cli_usage(c->res, c->verb,
                            "give --inbound-password or --inbound-password-stdin, not both");
    int rc;
    s->out_pw = cli_get(a, F_PASSWORD);
    s->in_pw = cli_get(a, F_IN_PASSWORD);
    if (cli_has(a, F_PASSWORD_STDIN)) {
        rc = tl_cli_read_secret("Outbound trunk password", "--password-stdin", s->out,
                                sizeof s->out);
        if (rc != TL_CLI_OK)
            return rc;
        s->out_pw = s->out;
    }
    if (cli_has(a, F_IN_PASSWORD_STDIN)) {
        rc = tl_cli_read_secret("Inbound trunk password", "--inbound-password-stdin", s->in,
                                sizeof s->in);
        if (rc != TL_CLI_OK)
            return rc;
        s->in_pw = s->in;
    }
    return TL_CLI_OK;
}

/* ---- verbs ---- */

#define TRUNK_FLAGS                                                                                \
    F_ADDRESS, F_USERNAME, F_PASSWORD, F_PASSWORD_STDIN, F_TRANSPORT, F_MEDIA_ENC, F_HEADER,       \
        F_LABEL, F_AGENT, F_INBOUND, F_IN_TRANSPORT, F_IN_MEDIA_ENC, F_IN_USERNAME, F_IN_PASSWORD, \
        F_IN_PASSWORD_STDIN, F_ALLOW, F_ORIG_URL, F_IN_HEADER, F_IN_LATCHING, F_ALLOW_ANY,         \
        F_NUMBER_FORMAT
static const int list_flags[] = {F_FILTER_AGENT, F_FILTER_NUMBER, F_LIMIT,
                                 F_CURSOR,       F_ALL,           CLI_FLAG_END};
static const int import_flags[] = {TRUNK_FLAGS, CLI_FLAG_END};
static const int edit_flags[] = {TRUNK_FLAGS,        F_NO_INBOUND,       F_REMOVE_HEADER,
                                 F_CLEAR_HEADERS,    F_DISALLOW,         F_CLEAR_ALLOW,
                                 F_IN_REMOVE_HEADER, F_IN_CLEAR_HEADERS, CLI_FLAG_END};
static const int no_flags[] = {CLI_FLAG_END};

static void number_row(const json_t *it, const char **cells, char *scratch)
{
    cells[0] = tl_cli_str(it, "id", NULL);
    cells[1] = tl_cli_str(it, "number", NULL);
    cells[2] = tl_cli_str(it, "label", NULL);
    cells[3] = tl_cli_str(it, "agent_id", NULL);
    const json_t *out = json_object_get(it, "outbound_trunk");
    if (json_is_object(out)) {
        snprintf(scratch, CLI_SCRATCH, "%s/%s", tl_cli_str(out, "transport", "?"),
                 tl_cli_str(out, "address", "?"));
        cells[4] = scratch;
    }
    const json_t *in = json_object_get(it, "inbound_trunk");
    cells[5] = json_is_object(in) ? tl_cli_str(in, "transport", "on") : NULL;
}

static int numbers_list(struct cli *c, struct cli_args *a)
{
    static const char *const h[] = {"ID", "NUMBER", "LABEL", "AGENT", "OUT", "IN"};
    struct cli_buf p = {0};
    json_t *doc = NULL;
    tl_cli_buf_add(&p, NUMBERS);
    tl_cli_buf_query(&p, "number", cli_get(a, F_FILTER_NUMBER));
    tl_cli_buf_query(&p, "agent_id", cli_get(a, F_FILTER_AGENT));
    tl_cli_scope(c, &p);
    int rc = p.oom ? tl_cli_oom() : tl_cli_list(c, a, &p, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK)
        rc = tl_cli_print_list(c, doc, 6, h, number_row);
    json_decref(doc);
    return rc;
}

static int numbers_show(struct cli *c, struct cli_args *a)
{
    json_t *n = NULL;
    int rc = number_fetch(c, a->pos[0], &n);
    if (rc == TL_CLI_OK)
        tl_cli_print_object(c, n);
    json_decref(n);
    return rc;
}

static int send_number(struct cli *c, const char *method, const char *id, json_t *body)
{
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc;
    if (id) {
        rc = number_path(c, id, "", &p);
    } else {
        tl_cli_buf_add(&p, NUMBERS);
        tl_cli_scope(c, &p);
        rc = p.oom ? tl_cli_oom() : TL_CLI_OK;
    }
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, method, p.p, body, &doc);
    tl_cli_buf_free(&p);
    if (rc == TL_CLI_OK && doc)
        tl_cli_print_object(c, doc);
    json_decref(doc);
    return rc;
}

static int numbers_import(struct cli *c, struct cli_args *a)
{
    struct secrets s = {0};
    json_t *body = json_object(), *out = NULL, *in = NULL;
    int rc = body ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK && !cli_has(a, F_ADDRESS))
        rc = tl_cli_usage(c->res, c->verb,
                          "missing --address HOST (your provider's SIP trunk hostname or IP)");
    if (rc == TL_CLI_OK)
        rc = check_header_flags(c, a);
    if (rc == TL_CLI_OK)
        rc = passwords(c, a, &s);
    if (rc == TL_CLI_OK)
        rc = outbound_build(c, a, NULL, s.out_pw, false, &out);
    if (rc == TL_CLI_OK)
        rc = inbound_build(c, a, NULL, s.in_pw, false, &in);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "number", a->pos[0]);
    if (rc == TL_CLI_OK)
        rc = set_str(body, "label", cli_get(a, F_LABEL));
    if (rc == TL_CLI_OK)
        rc = set_str(body, "agent_id", cli_get(a, F_AGENT));
    if (rc == TL_CLI_OK && json_object_set(body, "outbound_trunk", out))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK && in && json_object_set(body, "inbound_trunk", in))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = send_number(c, "POST", NULL, body);
    json_decref(in);
    json_decref(out);
    json_decref(body);
    secrets_wipe(&s);
    return rc;
}

static int numbers_edit(struct cli *c, struct cli_args *a)
{
    bool any = false;
    for (const int *f = edit_flags; *f != CLI_FLAG_END; f++)
        any = any || cli_has(a, *f);
    if (!any)
        return tl_cli_usage(c->res, c->verb, "nothing to change: give at least one flag");
    if (cli_has(a, F_NO_INBOUND) && first_given(a, inbound_on_flags))
        return tl_cli_usage(c->res, c->verb, "--no-inbound cannot be combined with %s",
                            first_given(a, inbound_on_flags));

    struct secrets s = {0};
    json_t *cur = NULL, *body = json_object(), *out = NULL, *in = NULL;
    char *id = NULL;
    int rc = body ? TL_CLI_OK : tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = check_header_flags(c, a);
    if (rc == TL_CLI_OK)
        rc = passwords(c, a, &s);
    if (rc == TL_CLI_OK)
        rc = number_fetch(c, a->pos[0], &cur);
    if (rc == TL_CLI_OK && !(id = strdup(tl_cli_str(cur, "id", ""))))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = outbound_build(c, a, json_object_get(cur, "outbound_trunk"), s.out_pw, true, &out);
    if (rc == TL_CLI_OK)
        rc = inbound_build(c, a, json_object_get(cur, "inbound_trunk"), s.in_pw, true, &in);
    if (rc == TL_CLI_OK) {
        const char *label = cli_get(a, F_LABEL);
        rc = set_str(body, "label",
                     label ? label : json_string_value(json_object_get(cur, "label")));
    }
    if (rc == TL_CLI_OK) /* left out, the server keeps the assignment */
        rc = set_str(body, "agent_id", cli_get(a, F_AGENT));
    if (rc == TL_CLI_OK && (json_object_set(body, "outbound_trunk", out) ||
                            json_object_set(body, "inbound_trunk", in)))
        rc = tl_cli_oom();
    if (rc == TL_CLI_OK)
        rc = send_number(c, "PUT", id, body);
    free(id);
    json_decref(in);
    json_decref(out);
    json_decref(body);
    json_decref(cur);
    secrets_wipe(&s);
    return rc;
}

/* PATCH agent_id, DELETE, POST …/release: one request on a resolved id, a short line */
static int number_action(struct cli *c, const char *arg, const char *method, const char *suffix,
                         json_t *body, const char *done, const char *agent)
{
    char *id = NULL;
    struct cli_buf p = {0};
    json_t *doc = NULL;
    int rc = number_id(c, arg, &id);
    if (rc == TL_CLI_OK)
        rc = number_path(c, id, suffix, &p);
    if (rc == TL_CLI_OK)
        rc = tl_cli_call(c, method, p.p, body, &doc);
    if (rc == TL_CLI_OK) {
        if (c->json) {
            if (doc)
                tl_cli_print_json(doc);
        } else {
            tl_cli_print_warnings(doc);
            char *num = tl_cli_clean(tl_cli_str(doc, "number", arg), 32);
            char *cid = tl_cli_clean(id, 64);
            char *ag = agent ? tl_cli_clean(agent, 64) : NULL;
            if (num && cid && (!agent || ag))
                printf("%s %s (%s)%s%s\n", done, num, cid, ag ? " to " : "", ag ? ag : "");
            free(num);
            free(cid);
            free(ag);
        }
    }
    json_decref(doc);
    tl_cli_buf_free(&p);
    free(id);
    return rc;
}

static int numbers_assign(struct cli *c, struct cli_args *a)
{
    json_t *body = json_pack("{s:s}", "agent_id", a->pos[1]);
    if (!body)
        return tl_cli_oom();
    int rc = number_action(c, a->pos[0], "PATCH", "", body, "assigned", a->pos[1]);
    json_decref(body);
    return rc;
}

static int numbers_unassign(struct cli *c, struct cli_args *a)
{
    json_t *body = json_pack("{s:n}", "agent_id");
    if (!body)
        return tl_cli_oom();
    int rc = number_action(c, a->pos[0], "PATCH", "", body, "unassigned", NULL);
    json_decref(body);
    return rc;
}

static int numbers_delete(struct cli *c, struct cli_args *a)
{
    return number_action(c, a->pos[0], "DELETE", "", NULL, "deleted", NULL);
}

static int numbers_release(struct cli *c, struct cli_args *a)
{
    return number_action(c, a->pos[0], "POST", "/release", NULL, "released", NULL);
}

static const struct cli_verb verbs[] = {
    {"list", "", 0, 0, "List the workspace's numbers", list_flags, NULL, numbers_list},
    {"import", "NUMBER", 1, 1, "Import a number (E.164) from a static SIP trunk", import_flags,
     "The outbound trunk (--address, required) is where your agent's calls go; the inbound\n"
     "trunk (--inbound or any inbound flag) accepts calls from your provider: point the\n"
     "provider at the URIs `trunkline endpoints` prints.\n"
     "\n"
     "Pass passwords with --password-stdin: a --password value is visible to other users\n"
     "in `ps` and lands in shell history. With both --password-stdin and\n"
     "--inbound-password-stdin, stdin holds the outbound password on the first line and\n"
     "the inbound one on the second.\n"
     "\n"
     "example:\n"
     "  printf '%s\\n' \"$PW\" | trunkline numbers import +493012345678 \\\n"
     "      --address sip.telnyx.eu --username acme_trunk --password-stdin \\\n"
     "      --inbound --inbound-transport tls --agent ag_...\n",
     numbers_import},
    {"show", "ID|+E164", 1, 1, "Show one number (by id, or by number)", no_flags, NULL,
     numbers_show},
    {"edit", "ID|+E164", 1, 1, "Change a number's label or trunk configuration", edit_flags,
     "Only the flags given change; everything else is kept, stored passwords included\n"
     "(a new --username needs a new password). --header and --allow add to (or replace\n"
     "entries of) the stored lists; --clear-headers and --clear-allow empty them first.\n"
     "\n"
     "example: trunkline numbers edit +493012345678 --transport tcp\n",
     numbers_edit},
    {"assign", "ID|+E164 AGENT_ID", 2, 2, "Route the number's calls to an agent", no_flags, NULL,
     numbers_assign},
    {"unassign", "ID|+E164", 1, 1, "Remove the number's agent", no_flags, NULL, numbers_unassign},
    {"delete", "ID|+E164", 1, 1, "Delete an imported SIP number", no_flags, NULL, numbers_delete},
    {"release", "ID|+E164", 1, 1, "Release a platform number (stops its charges)", no_flags, NULL,
     numbers_release},
};

const struct cli_resource tl_cli_numbers = {
    "numbers", "Phone numbers on static SIP trunks, and the agents they route to.", verbs,
    sizeof verbs / sizeof verbs[0]};
