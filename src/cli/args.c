/* Command-line parsing and help for the CLI.
 *
 * A hand-written parser rather than getopt_long: flags repeat (--header, --allow), the
 * same name means different things per verb (--url is the agent's URL in `agents create`),
 * global flags may come before or after the verb, and every error has to say which flag
 * or argument is wrong without ever echoing a value that might be a secret. */
#include "cli/cli_int.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "core/core.h"

#define REPEAT 1u
#define SECRET 2u

struct flag_def {
    const char *name;    /* "--address" */
    const char *metavar; /* NULL: a switch */
    unsigned opts;
    const char *help;
};

static const struct flag_def flag_defs[F__COUNT] = {
    [F_URL] = {"--url", "URL", 0,
               "API base URL (default: $TRUNKLINE_URL, else http://127.0.0.1:8080); "
               "also --api-url"},
    [F_TOKEN] = {"--token", "TOKEN", SECRET,
                 "API token (default: $TRUNKLINE_TOKEN, preferred: flags are visible in ps)"},
    [F_WORKSPACE] = {"--workspace", "ID", 0,
                     "workspace to act in, for operator tokens (default: $TRUNKLINE_WORKSPACE)"},
    [F_JSON] = {"--json", NULL, 0, "print the server's JSON document instead of text"},
    [F_HELP] = {"--help", NULL, 0, "show this help (also -h)"},

    [F_LIMIT] = {"--limit", "N", 0, "items per page (server default 50, at most 100)"},
    [F_CURSOR] = {"--cursor", "CURSOR", 0, "start at this page (next_cursor of a previous list)"},
    [F_ALL] = {"--all", NULL, 0, "follow next_cursor and list every page"},
    [F_FILTER_AGENT] = {"--agent", "AGENT_ID", 0, "only numbers assigned to this agent"},
    [F_FILTER_NUMBER] = {"--number", "E164", 0, "only this number (+493012345678)"},

    [F_ADDRESS] = {"--address", "HOST", 0,
                   "outbound trunk: provider hostname or IP only (no sip:, port or path)"},
    [F_USERNAME] = {"--username", "USER", 0,
                    "outbound trunk: digest username ('' removes it and the password)"},
    [F_PASSWORD] = {"--password", "PASSWORD", SECRET,
                    "outbound trunk: digest password (visible in ps: prefer --password-stdin)"},
    [F_PASSWORD_STDIN] = {"--password-stdin", NULL, 0,
                          "outbound trunk: read the password from the first line of stdin"},
    [F_TRANSPORT] = {"--transport", "tls|tcp|udp", 0, "outbound trunk transport (default tls)"},
    [F_MEDIA_ENC] = {"--media-encryption", "required|allowed|disabled", 0,
                     "outbound SRTP policy (default required)"},
    [F_HEADER] = {"--header", "'NAME: VALUE'", REPEAT,
                  "outbound custom SIP header; replaces a header of the same name"},
    [F_REMOVE_HEADER] = {"--remove-header", "NAME", REPEAT, "remove this outbound header"},
    [F_CLEAR_HEADERS] = {"--clear-headers", NULL, 0,
                         "remove every outbound header (before --header applies)"},
    [F_LABEL] = {"--label", "LABEL", 0, "a name for the number"},
    [F_AGENT] = {"--agent", "AGENT_ID", 0, "assign the number to this agent"},
    [F_INBOUND] = {"--inbound", NULL, 0, "enable the inbound trunk (implied by any inbound flag)"},
    [F_NO_INBOUND] = {"--no-inbound", NULL, 0, "disable the inbound trunk"},
    [F_IN_TRANSPORT] = {"--inbound-transport", "tls|tcp", 0,
                        "inbound transport; must match the URI your provider uses"},
    [F_IN_MEDIA_ENC] = {"--inbound-media-encryption", "required|allowed|disabled", 0,
                        "inbound SRTP policy (default required)"},
    [F_IN_USERNAME] = {"--inbound-username", "USER", 0,
                       "inbound digest username the provider must use ('' removes it)"},
    [F_IN_PASSWORD] = {"--inbound-password", "PASSWORD", SECRET,
                       "inbound digest password (visible in ps: prefer "
                       "--inbound-password-stdin)"},
    [F_IN_PASSWORD_STDIN] = {"--inbound-password-stdin", NULL, 0,
                             "read the inbound password from stdin (the second line when "
                             "--password-stdin is given too)"},
    [F_ALLOW] = {"--allow", "CIDR", REPEAT, "accept inbound calls from this address or block"},
    [F_DISALLOW] = {"--disallow", "CIDR", REPEAT, "remove an allowed address (as listed)"},
    [F_CLEAR_ALLOW] = {"--clear-allow", NULL, 0,
                       "remove every allowed address (before --allow applies)"},
    [F_ALLOW_ANY] = {"--allow-any-source", "yes|no", 0,
                     "yes: accept inbound calls from any address, without --allow or a digest "
                     "username (refused otherwise: anyone could reach the agent)"},
    [F_ORIG_URL] = {"--origination-url", "SIP_URI", 0,
                    "where to forward inbound calls (sip:/sips:; '' removes it)"},
    [F_IN_HEADER] = {"--inbound-header", "'NAME: VALUE'", REPEAT,
                     "inbound custom SIP header; replaces a header of the same name"},
    [F_IN_REMOVE_HEADER] = {"--remove-inbound-header", "NAME", REPEAT,
                            "remove this inbound header"},
    [F_IN_CLEAR_HEADERS] = {"--clear-inbound-headers", NULL, 0,
                            "remove every inbound header (before --inbound-header applies)"},
    [F_IN_LATCHING] = {"--inbound-rtp-latching", "sdp-ip|any|off", 0,
                       "where plain RTP is taken from: any for a carrier behind NAT ('' = the "
                       "gateway's rtp_latching setting)"},
    [F_NUMBER_FORMAT] = {"--number-format", "e164|no_plus", 0,
                         "how outbound calls write numbers: +4930... (default) or 4930... for "
                         "carriers that refuse the '+'"},

    [F_NAME] = {"--name", "NAME", 0, "name"},
    [F_BUILTIN] = {"--builtin", "NAME", 0, "a builtin agent (echo)"},
    [F_AGENT_URL] = {"--url", "WS_URL", 0,
                     "websocket agent URL (ws:// or wss://); use --api-url or TRUNKLINE_URL "
                     "for the API here"},
    [F_PARAM] = {"--param", "KEY=VALUE", REPEAT, "agent parameter; replaces the same key"},
    [F_REMOVE_PARAM] = {"--remove-param", "KEY", REPEAT, "remove this parameter"},
    [F_CLEAR_PARAMS] = {"--clear-params", NULL, 0, "remove every parameter (before --param)"},
    [F_AGENT_HEADER] = {"--header", "'NAME: VALUE'", REPEAT,
                        "websocket upgrade header; on edit the given headers replace all"},
    [F_AGENT_CLEAR_HEADERS] = {"--clear-headers", NULL, 0, "remove every header"},
    [F_AGENT_TIMEOUT] = {"--connect-timeout-ms", "MS", 0,
                         "how long a call rings while the websocket agent connects (100-30000, "
                         "default 5000)"},
    [F_VOICE_URL] = {"--voice-url", "HTTPS_URL", 0,
                     "a twiml agent: the bot's voice URL (the one it gave Twilio)"},
    [F_VOICE_METHOD] = {"--method", "POST|GET", 0, "how the voice URL is requested (POST)"},
    [F_FALLBACK_URL] = {"--fallback-url", "HTTPS_URL", 0,
                        "twiml: tried when the voice URL fails ('' removes it)"},
    [F_STATUS_CALLBACK] = {"--status-callback", "HTTPS_URL", 0,
                           "twiml: told when the call ends ('' removes it)"},
    [F_TWIML_TIMEOUT] = {"--timeout-ms", "MS", 0,
                         "twiml: each voice URL request's deadline (100-30000, default 5000)"},

    [F_PLAN] = {"--plan", "free|starter|professional|enterprise", 0, "plan"},
    [F_REGION] = {"--region", "REGION", 0, "data-residency region (default eu)"},
    [F_ROLE] = {"--role", "admin|member|operator", 0, "what the token may do"},

    [F_CALL_FROM] = {"--from", "ID|+E164", 0,
                     "the workspace's number to call from (the caller ID): pn_... or E.164"},
    [F_CALL_AGENT] = {"--agent", "AGENT_ID", 0, "the agent of the call (default: the number's)"},
    [F_CALL_PARAM] = {"--param", "KEY=VALUE", REPEAT,
                      "into the agent's customParameters for this call"},
    [F_CALL_HEADER] = {"--header", "'X-NAME: VALUE'", REPEAT,
                       "an X- header for this call's INVITE"},
    [F_RINGING_TIMEOUT] = {"--ringing-timeout", "SECONDS", 0,
                           "unanswered this long: CANCEL, status no_answer (1-600, default 60)"},
    [F_MAX_DURATION] = {"--max-duration", "SECONDS", 0, "hang up this long after the answer"},
    [F_WAIT] = {"--wait", NULL, 0,
                "wait until the call is answered or has ended, then print it (exit 1 when it "
                "ended unanswered)"},
    [F_CALL_NUMBER] = {"--number", "ID", 0, "only the calls of this number (pn_...)"},
};

static const int global_flags[] = {F_URL, F_TOKEN, F_WORKSPACE, F_JSON, F_HELP, CLI_FLAG_END};

static void cmd_name(char *out, size_t cap, const struct cli_resource *r, const struct cli_verb *v)
{
    snprintf(out, cap, "trunkline %s%s%s", r->name, v && v->name[0] ? " " : "", v ? v->name : "");
}

int tl_cli_usage(const struct cli_resource *r, const struct cli_verb *v, const char *fmt, ...)
{
    char cmd[96];
    cmd_name(cmd, sizeof cmd, r, v);
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee '%s --help'\n", cmd);
    return TL_CLI_USAGE;
}

static bool flag_in(const int *list, int id)
{
    for (; list && *list != CLI_FLAG_END; list++)
        if (*list == id)
            return true;
    return false;
}

/* Verb flags first: where a verb reuses a global name (--url in `agents create`), the
 * verb's meaning wins and --api-url still reaches the global one. */
static int flag_lookup(const struct cli_verb *v, const char *name, size_t len)
{
    if (len == 2 && strncmp(name, "-h", 2) == 0)
        return F_HELP;
    if (len == 9 && strncmp(name, "--api-url", 9) == 0)
        return F_URL;
    for (const int *p = v->flags; p && *p != CLI_FLAG_END; p++) {
        const char *n = flag_defs[*p].name;
        if (strlen(n) == len && strncmp(n, name, len) == 0)
            return *p;
    }
    for (const int *p = global_flags; *p != CLI_FLAG_END; p++) {
        const char *n = flag_defs[*p].name;
        if (strlen(n) == len && strncmp(n, name, len) == 0 && !flag_in(v->flags, *p))
            return *p;
    }
    return -1;
}

/* The n-th word of the synopsis ("ID|+E164 AGENT_ID"), to say which argument is missing */
static void synopsis_word(const char *syn, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    const char *p = syn ? syn : "";
    for (size_t i = 0;; i++) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            return;
        if (i == n) {
            snprintf(out, cap, "%.*s", (int)len, p);
            return;
        }
        p += len;
    }
}

static int add_value(struct cli_args *a, int id, const char *val)
{
    const char **nv = realloc(a->val[id], (a->n[id] + 1) * sizeof *nv);
    if (!nv)
        return tl_cli_oom();
    a->val[id] = nv;
    nv[a->n[id]++] = val;
    return TL_CLI_OK;
}

/* Keeps a private copy of a secret and blanks it in argv, so that /proc/<pid>/cmdline
 * (what ps reads) no longer shows it once parsing is done. */
static int take_secret(struct cli_args *a, char *val, const char **copy)
{
    char **no = realloc(a->owned, (a->n_owned + 1) * sizeof *no);
    if (!no)
        return tl_cli_oom();
    a->owned = no;
    char *dup = strdup(val);
    if (!dup)
        return tl_cli_oom();
    no[a->n_owned++] = dup;
    memset(val, 'x', strlen(val));
    *copy = dup;
    return TL_CLI_OK;
}

int tl_cli_args_parse(const struct cli_resource *r, const struct cli_verb *v, int argc, char **argv,
                      struct cli_args *a)
{
    memset(a, 0, sizeof *a);
    bool only_pos = false;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        int rc;
        if (only_pos || arg[0] != '-' || arg[1] == '\0') {
            /* The value is not echoed: a misplaced secret ends up here. */
            if (a->npos >= v->pos_max || a->npos >= sizeof a->pos / sizeof a->pos[0]) {
                if (v->pos_max == 0)
                    return tl_cli_usage(r, v,
                                        "unexpected argument #%zu: this command "
                                        "takes no arguments",
                                        a->npos + 1);
                return tl_cli_usage(r, v, "too many arguments: expected %s", v->synopsis);
            }
            a->pos[a->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_pos = true;
            continue;
        }
        char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        int id = flag_lookup(v, arg, nlen);
        if (id < 0) /* name only: "--pasword=secret" must not print the secret */
            return tl_cli_usage(r, v, "unknown flag '%.*s'", (int)(nlen > 64 ? 64 : nlen), arg);
        const struct flag_def *d = &flag_defs[id];
        if (a->n[id] && !(d->opts & REPEAT))
            return tl_cli_usage(r, v, "%s given more than once", d->name);
        char *val;
        if (!d->metavar) {
            if (eq)
                return tl_cli_usage(r, v, "%s takes no value", d->name);
            val = "";
        } else if (eq) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            return tl_cli_usage(r, v, "%s needs a value (%s)", d->name, d->metavar);
        }
        const char *stored = val;
        if ((d->opts & SECRET) && (rc = take_secret(a, val, &stored)) != TL_CLI_OK)
            return rc;
        if ((rc = add_value(a, id, stored)) != TL_CLI_OK)
            return rc;
    }
    if (!cli_has(a, F_HELP) && a->npos < v->pos_min) {
        char w[64];
        synopsis_word(v->synopsis, a->npos, w, sizeof w);
        return tl_cli_usage(r, v, "missing argument %s", w);
    }
    return TL_CLI_OK;
}

void tl_cli_args_free(struct cli_args *a)
{
    for (size_t i = 0; i < F__COUNT; i++)
        free(a->val[i]);
    for (size_t i = 0; i < a->n_owned; i++) {
        explicit_bzero(a->owned[i], strlen(a->owned[i]));
        free(a->owned[i]);
    }
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/* Help fits 80 columns: descriptions wrap at word boundaries under their column. */
#define HELP_LEFT  28
#define HELP_WIDTH (80 - HELP_LEFT - 3)

static void wrap(FILE *f, const char *text)
{
    const char *p = text;
    while (strlen(p) > HELP_WIDTH) {
        const char *cut = p + HELP_WIDTH;
        while (cut > p && *cut != ' ')
            cut--;
        if (cut == p) /* one long word: let it overflow */
            cut = p + strcspn(p, " ");
        fprintf(f, "%.*s\n%*s", (int)(cut - p), p, HELP_LEFT + 3, "");
        p = *cut ? cut + 1 : cut;
    }
    fprintf(f, "%s\n", p);
}

static void help_flags(FILE *f, const int *list, const struct cli_verb *v, bool globals)
{
    for (const int *p = list; p && *p != CLI_FLAG_END; p++) {
        if (globals && flag_in(v->flags, *p))
            continue; /* shadowed by the verb's own flag of the same name */
        const struct flag_def *d = &flag_defs[*p];
        char left[80], text[320];
        snprintf(left, sizeof left, "%s%s%s", d->name, d->metavar ? " " : "",
                 d->metavar ? d->metavar : "");
        snprintf(text, sizeof text, "%s%s", d->help, d->opts & REPEAT ? " (repeatable)" : "");
        if (strlen(left) > HELP_LEFT)
            fprintf(f, "  %s\n  %-*s ", left, HELP_LEFT, "");
        else
            fprintf(f, "  %-*s ", HELP_LEFT, left);
        wrap(f, text);
    }
}

void tl_cli_help_verb(FILE *f, const struct cli_resource *r, const struct cli_verb *v)
{
    char cmd[96];
    cmd_name(cmd, sizeof cmd, r, v);
    fprintf(f, "usage: %s%s%s [flags]\n\n%s\n", cmd, v->synopsis[0] ? " " : "", v->synopsis,
            v->summary);
    if (v->flags && v->flags[0] != CLI_FLAG_END) {
        fputs("\nflags:\n", f);
        help_flags(f, v->flags, v, false);
    }
    fputs("\nglobal flags:\n", f);
    help_flags(f, global_flags, v, true);
    if (v->more)
        fprintf(f, "\n%s", v->more);
}

void tl_cli_help_resource(FILE *f, const struct cli_resource *r)
{
    fprintf(f, "usage: trunkline %s <verb> [flags]\n\n%s\n\nverbs:\n", r->name, r->summary);
    for (size_t i = 0; i < r->n_verbs; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s %s", r->verbs[i].name, r->verbs[i].synopsis);
        fprintf(f, "  %-26s %s\n", left, r->verbs[i].summary);
    }
    fprintf(f, "\nRun 'trunkline %s <verb> --help' for the flags of a verb.\n", r->name);
}

/* Ctrl-C at the hidden prompt must not leave the person's terminal without echo. */
static struct termios tty_saved;
static const int tty_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define N_TTY_SIGNALS (sizeof tty_signals / sizeof tty_signals[0])

static void tty_restore_and_die(int sig)
{
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

int tl_cli_read_secret(const char *prompt, const char *flag, char *buf, size_t cap)
{
    struct termios quiet;
    struct sigaction old[N_TTY_SIGNALS];
    bool restore = false;
    if (isatty(STDIN_FILENO)) {
        fprintf(stderr, "%s: ", prompt);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &tty_saved) == 0) {
            struct sigaction sa = {.sa_handler = tty_restore_and_die};
            sigemptyset(&sa.sa_mask);
            for (size_t i = 0; i < N_TTY_SIGNALS; i++)
                sigaction(tty_signals[i], &sa, &old[i]);
            quiet = tty_saved;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            restore = true;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
    }
    char *got = fgets(buf, (int)cap, stdin);
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
        for (size_t i = 0; i < N_TTY_SIGNALS; i++)
            sigaction(tty_signals[i], &old[i], NULL);
        fputc('\n', stderr);
    }
    if (!got) {
        buf[0] = '\0';
        fprintf(stderr, "error: %s: no line to read on standard input\n", flag);
        return TL_CLI_USAGE;
    }
    size_t len = strlen(buf);
    if (len && buf[len - 1] == '\n') {
        buf[--len] = '\0';
    } else if (!feof(stdin)) {
        explicit_bzero(buf, cap);
        fprintf(stderr, "error: %s: the line on standard input is longer than %zu bytes\n", flag,
                cap - 2);
        return TL_CLI_USAGE;
    }
    if (len && buf[len - 1] == '\r') /* typed or pasted on Windows */
        buf[--len] = '\0';
    if (len == 0) {
        fprintf(stderr, "error: %s: the line on standard input is empty\n", flag);
        return TL_CLI_USAGE;
    }
    return TL_CLI_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

bool tl_cli_split_header(const char *in, char *buf, size_t cap, const char **name,
                         const char **value)
{
    if (!tl_strlcpy(buf, in, cap))
        return false;
    char *colon = strchr(buf, ':');
    if (!colon)
        return false;
    *colon = '\0';
    *name = trim(buf);
    *value = trim(colon + 1);
    return (*name)[0] != '\0';
}

/* ---- cli_buf ---- */

static bool buf_grow(struct cli_buf *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void tl_cli_buf_addn(struct cli_buf *b, const char *s, size_t n)
{
    if (!buf_grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void tl_cli_buf_add(struct cli_buf *b, const char *s)
{
    tl_cli_buf_addn(b, s, strlen(s));
}

void tl_cli_buf_addf(struct cli_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tl_cli_buf_add_escaped(struct cli_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            tl_cli_buf_addn(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            tl_cli_buf_addn(b, e, 3);
        }
    }
}

void tl_cli_buf_query(struct cli_buf *b, const char *key, const char *value)
{
    if (!value)
        return;
    tl_cli_buf_add(b, b->p && strchr(b->p, '?') ? "&" : "?");
    tl_cli_buf_add(b, key);
    tl_cli_buf_add(b, "=");
    tl_cli_buf_add_escaped(b, value);
}

void tl_cli_buf_free(struct cli_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
