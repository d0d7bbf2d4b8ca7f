/* cli internals shared by the files of src/cli/. Not for use outside src/cli/.
 *
 * Convention: unlike the rest of the tree, functions here return a process exit code
 * (TL_CLI_OK, TL_CLI_API, TL_CLI_USAGE, TL_CLI_UNREACHABLE) and print their own message
 * to stderr before returning a non-zero one, so each failure is reported exactly once, at
 * the place that knows the most about it, and callers only propagate the code. */
#ifndef TL_CLI_INT_H
#define TL_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "cli/cli.h"

/* Responses are read into memory before parsing; a misconfigured URL pointing at some
 * other service must not make the CLI buffer without bound. */
#define CLI_BODY_MAX (8u << 20)
/* --all stops after this many pages even if the server keeps returning cursors. */
#define CLI_PAGES_MAX 10000
/* Secrets read from stdin (a line); the server applies the real length rule. */
#define CLI_SECRET_LINE_MAX 1024

/* ---- flags ----
 * One id per flag across all verbs, so parsed values live in one array indexed by id and
 * each verb lists the ids it accepts. */
enum cli_flag_id {
    /* global */
    F_URL,
    F_TOKEN,
    F_WORKSPACE,
    F_JSON,
    F_HELP,
    /* lists */
    F_LIMIT,
    F_CURSOR,
    F_ALL,
    F_FILTER_AGENT,
    F_FILTER_NUMBER,
    /* numbers */
    F_ADDRESS,
    F_USERNAME,
    F_PASSWORD,
    F_PASSWORD_STDIN,
    F_TRANSPORT,
    F_MEDIA_ENC,
    F_HEADER,
    F_REMOVE_HEADER,
    F_CLEAR_HEADERS,
    F_LABEL,
    F_AGENT,
    F_INBOUND,
    F_NO_INBOUND,
    F_IN_TRANSPORT,
    F_IN_MEDIA_ENC,
    F_IN_USERNAME,
    F_IN_PASSWORD,
    F_IN_PASSWORD_STDIN,
    F_ALLOW,
    F_DISALLOW,
    F_CLEAR_ALLOW,
    F_ALLOW_ANY,
    F_ORIG_URL,
    F_IN_HEADER,
    F_IN_REMOVE_HEADER,
    F_IN_CLEAR_HEADERS,
    F_IN_LATCHING,
    F_NUMBER_FORMAT,
    /* agents */
    F_NAME,
    F_BUILTIN,
    F_AGENT_URL,
    F_PARAM,
    F_REMOVE_PARAM,
    F_CLEAR_PARAMS,
    F_AGENT_HEADER,
    F_AGENT_CLEAR_HEADERS,
    F_AGENT_TIMEOUT,
    F_VOICE_URL,
    F_VOICE_METHOD,
    F_FALLBACK_URL,
    F_STATUS_CALLBACK,
    F_TWIML_TIMEOUT,
    /* workspaces, tokens */
    F_PLAN,
    F_REGION,
    F_ROLE,
    /* calls */
    F_CALL_FROM,
    F_CALL_AGENT,
    F_CALL_PARAM,
    F_CALL_HEADER,
    F_RINGING_TIMEOUT,
    F_MAX_DURATION,
    F_WAIT,
    F_CALL_NUMBER,
    F__COUNT
};

#define CLI_FLAG_END (-1)

struct cli_args {
    const char **val[F__COUNT]; /* every value given, in order (switches: "") */
    size_t n[F__COUNT];
    const char *pos[4];
    size_t npos;
    char **owned; /* copies of secret values (argv is scrubbed); wiped on free */
    size_t n_owned;
};

static inline bool cli_has(const struct cli_args *a, enum cli_flag_id id)
{
    return a->n[id] > 0;
}
/* the value of a flag given at most once, or NULL */
static inline const char *cli_get(const struct cli_args *a, enum cli_flag_id id)
{
    return a->n[id] ? a->val[id][0] : NULL;
}

struct cli;
struct cli_verb {
    const char *name;     /* "" for a resource without verbs (endpoints) */
    const char *synopsis; /* positional part: "ID|+E164 AGENT_ID" */
    size_t pos_min, pos_max;
    const char *summary;
    const int *flags; /* accepted ids (globals are implied), ending with CLI_FLAG_END */
    const char *more; /* extra help text, or NULL */
    int (*run)(struct cli *c, struct cli_args *a);
};

struct cli_resource {
    const char *name;
    const char *summary;
    const struct cli_verb *verbs;
    size_t n_verbs;
};

extern const struct cli_resource tl_cli_numbers;
extern const struct cli_resource tl_cli_agents;
extern const struct cli_resource tl_cli_workspaces;
extern const struct cli_resource tl_cli_tokens;
extern const struct cli_resource tl_cli_endpoints;
extern const struct cli_resource tl_cli_calls;

/* args.c */
/* Parses argv (argv[0] is the verb, or the first flag for a verb-less resource) against
 * the verb's flags. CLI_USAGE after printing which flag or argument is wrong. */
int tl_cli_args_parse(const struct cli_resource *r, const struct cli_verb *v, int argc, char **argv,
                      struct cli_args *a);
void tl_cli_args_free(struct cli_args *a);
void tl_cli_help_resource(FILE *f, const struct cli_resource *r);
void tl_cli_help_verb(FILE *f, const struct cli_resource *r, const struct cli_verb *v);
/* "error: <what>" plus a pointer to the verb's help; returns TL_CLI_USAGE */
int tl_cli_usage(const struct cli_resource *r, const struct cli_verb *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reads one line from stdin (prompting without echo when it is a terminal) into buf.
 * CLI_USAGE when empty, too long or at end of input. */
int tl_cli_read_secret(const char *prompt, const char *flag, char *buf, size_t cap);
/* "Name: value" → name and value (surrounding blanks trimmed); false when no ':' or no
 * name. name/value point into buf, a copy the caller provides. */
bool tl_cli_split_header(const char *in, char *buf, size_t cap, const char **name,
                         const char **value);

/* ---- a growable string (URLs, table cells) ---- */
struct cli_buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void tl_cli_buf_add(struct cli_buf *b, const char *s);
void tl_cli_buf_addn(struct cli_buf *b, const char *s, size_t n);
void tl_cli_buf_addf(struct cli_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* percent-encodes everything but RFC 3986 unreserved characters (so an id can never
 * add a path segment or a query parameter) */
void tl_cli_buf_add_escaped(struct cli_buf *b, const char *s);
/* appends "?key=value" or "&key=value" (value escaped); NULL value: nothing */
void tl_cli_buf_query(struct cli_buf *b, const char *key, const char *value);
void tl_cli_buf_free(struct cli_buf *b);

/* ---- the client (http.c) ---- */
struct cli {
    const struct cli_resource *res;
    const struct cli_verb *verb;
    char *base_url;         /* trailing '/' removed */
    const char *url_source; /* "--url", "TRUNKLINE_URL" or "the default" */
    char *token;            /* owned; wiped on exit */
    const char *workspace;  /* --workspace or TRUNKLINE_WORKSPACE, or NULL */
    bool workspace_from_flag;
    bool json;
    void *curl; /* one handle for all requests: keeps the connection for --all and edit */
};

/* Sends one request (path includes the query, starting with "/v1/"). body may be NULL.
 * On 2xx returns TL_CLI_OK and *out (may be NULL) gets the parsed body, or NULL when
 * there was none (204). On failure prints the error (with --json, the server's error
 * document also goes to stdout) and returns TL_CLI_API or TL_CLI_UNREACHABLE. */
int tl_cli_call(struct cli *c, const char *method, const char *path, json_t *body, json_t **out);
/* Appends ?workspace_id= when a workspace was chosen (operator tokens on agents, numbers) */
void tl_cli_scope(const struct cli *c, struct cli_buf *b);
/* GETs a list. path may already carry a query. Honours --limit, --cursor and --all (which
 * follows next_cursor and merges the pages into one list document). */
int tl_cli_list(struct cli *c, struct cli_args *a, struct cli_buf *path, json_t **out);
/* Out-of-memory is reported once, here. */
int tl_cli_oom(void);

/* ---- output (out.c) ---- */
/* --json: the document as the server sent it, indented */
void tl_cli_print_json(const json_t *j);
/* a "key: value" block of an object's members, nested objects indented */
void tl_cli_print_block(const json_t *obj);
/* "warning: <field>: <message>" for each entry of obj.warnings, on stderr */
void tl_cli_print_warnings(const json_t *obj);
/* Copies s for a terminal: control characters and invalid UTF-8 become '?' (labels and
 * names are typed by other users of the workspace and must not drive the terminal), cut
 * to max_cols characters with "..." when longer (0 = no cut). Returns a malloc'd string
 * or NULL when out of memory. */
char *tl_cli_clean(const char *s, size_t max_cols);
/* a string member, or dflt when absent, null, empty or not a string */
const char *tl_cli_str(const json_t *obj, const char *key, const char *dflt);

struct cli_table;
struct cli_table *tl_cli_table_new(size_t ncols, const char *const *headers);
/* cells are copied and cleaned; NULL or "" prints "-" */
int tl_cli_table_row(struct cli_table *t, const char *const *cells);
void tl_cli_table_print(struct cli_table *t, FILE *f);
void tl_cli_table_free(struct cli_table *t);

/* Prints a list document as a table (one row per data[] item from row_cb), or as JSON
 * with --json, plus a hint on stderr when more pages exist. row_cb fills cells[ncols]
 * with strings that live in item, are static, or are written into scratch. */
#define CLI_SCRATCH 512
typedef void (*cli_row_cb)(const json_t *item, const char **cells, char *scratch);
int tl_cli_print_list(struct cli *c, const json_t *list, size_t ncols, const char *const *headers,
                      cli_row_cb row_cb);
/* Prints a single object: JSON with --json, else warnings then the block. */
void tl_cli_print_object(struct cli *c, const json_t *obj);

#endif
