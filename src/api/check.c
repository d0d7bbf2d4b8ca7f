/* check: POST /v1/phone-numbers/{id}/check — "is the carrier there?" An OPTIONS request to
 * the number's outbound trunk, with its transport, custom headers and digest credentials,
 * answered in plain words: which step failed (DNS, connect, TLS, timeout, the SIP status)
 * and what to change.
 *
 * Why a child process. The SIP stack runs on one loop thread and keeps per-process scratch
 * buffers (sip/stack.h: "no threads"), so a second stack on another thread of the daemon
 * would share them with the daemon's own SIP loop. `trunkline probe options --json` (the
 * command-line trunk test, src/cli/probe.c) already builds an ephemeral stack on a loop of
 * its own; running it as a child of the daemon gives the check the very same code path with
 * nothing shared, and a hard deadline that cannot fail: the child is killed.
 *
 * Threads: the handler runs on MHD's thread and only admits and prepares (at most
 * CHECKS_MAX at once, else 429); the child is spawned and waited for by a job thread
 * (api_int.h), so the HTTP server goes on answering meanwhile.
 *
 * Secrets: the trunk password reaches the child on a pipe to its standard input (never in
 * argv, which other users may read in /proc), and is wiped from memory when the job ends.
 * The child's output holds no password; it is parsed, never logged. */
#include "api/api_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/codec.h"

#define CHECKS_MAX   4
#define DEADLINE_MS  10000 /* the whole check, child start to answer */
#define PROBE_T1_MAX 140   /* ms: OPTIONS' timer F (64*T1) then ends inside the deadline */
#define OUT_MAX      (64 * 1024)
#define ARGS_MAX     (16 + 2 * TL_HEADERS_MAX)

extern char **environ;

struct check_job {
    struct tl_api_job base;
    char number_id[TL_ID_MAX];
    char host[TL_HOST_MAX + 1];
    enum tl_transport transport;
    bool has_user;
    char password[TL_PASSWORD_MAX + 2]; /* with the newline the probe reads up to */
    /* argv of the child: pointers into buf */
    char *argv[ARGS_MAX + 1];
    char buf[8192];
    size_t used;
    int cancel_fd[2]; /* a byte on [1] makes run give up */
    /* outcome */
    bool spawned, killed;
    char out[OUT_MAX + 1];
    size_t out_len;
    int64_t elapsed_ms;
};

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool arg(struct check_job *j, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool arg(struct check_job *j, size_t *n, const char *fmt, ...)
{
    if (*n >= ARGS_MAX)
        return false;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(j->buf + j->used, sizeof j->buf - j->used, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= sizeof j->buf - j->used)
        return false;
    j->argv[(*n)++] = j->buf + j->used;
    j->used += (size_t)w + 1;
    return true;
}

static bool build_argv(struct check_job *j, const struct tl_api *a, const struct tl_phone_number *n)
{
    const struct tl_outbound_trunk *t = &n->outbound;
    size_t k = 0;
    unsigned t1 = a->sip_t1_ms && a->sip_t1_ms < PROBE_T1_MAX ? a->sip_t1_ms : PROBE_T1_MAX;
    bool ok = arg(j, &k, "trunkline") && arg(j, &k, "probe") && arg(j, &k, "options") &&
              arg(j, &k, "sip:%s", t->address) && arg(j, &k, "--transport") &&
              arg(j, &k, "%s", tl_transport_name(t->transport)) && arg(j, &k, "--from") &&
              arg(j, &k, "%s", n->number) && arg(j, &k, "--t1-ms") && arg(j, &k, "%u", t1) &&
              arg(j, &k, "--json");
    if (ok && t->username[0])
        ok = arg(j, &k, "--username") && arg(j, &k, "%s", t->username) &&
             arg(j, &k, "--password-stdin");
    if (ok && a->tls_ca_file[0])
        ok = arg(j, &k, "--ca-file") && arg(j, &k, "%s", a->tls_ca_file);
    if (ok && a->dns_servers[0])
        ok = arg(j, &k, "--dns-server") && arg(j, &k, "%s", a->dns_servers);
    for (size_t i = 0; ok && i < t->n_headers; i++)
        ok =
            arg(j, &k, "--header") && arg(j, &k, "%s: %s", t->headers[i].name, t->headers[i].value);
    j->argv[k] = NULL;
    return ok;
}

/* ---------------------------------------------------------------- the job thread ---- */

static void check_run(struct tl_api_job *base)
{
    struct check_job *j = (struct check_job *)base;
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    int64_t t0 = mono_ms();

    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
        goto done;
    if (posix_spawn_file_actions_init(&fa))
        goto done;
    /* the child gets the pipes as 0, 1 and 2 and none of the daemon's other descriptors */
    bool fa_ok = !posix_spawn_file_actions_adddup2(&fa, in[0], 0) &&
                 !posix_spawn_file_actions_adddup2(&fa, out[1], 1) &&
                 !posix_spawn_file_actions_adddup2(&fa, out[1], 2) &&
                 !posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    int rc = fa_ok ? posix_spawn(&pid, "/proc/self/exe", &fa, NULL, j->argv, environ) : EINVAL;
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    in[0] = out[1] = -1;
    if (rc) {
        tl_warnl("api", "check.spawn_failed", "number_id=%s err=%s", j->number_id, strerror(rc));
        pid = -1;
        goto done;
    }
    j->spawned = true;
    if (j->has_user) {
        /* a password fits in the pipe's buffer: this write does not wait for the child */
        size_t len = strlen(j->password);
        ssize_t w = write(in[1], j->password, len);
        (void)w;
    }
    close(in[1]);
    in[1] = -1;

    for (;;) {
        int64_t left = DEADLINE_MS - (mono_ms() - t0);
        if (left <= 0) {
            j->killed = true;
            break;
        }
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {j->cancel_fd[0], POLLIN, 0}};
        int pr = poll(p, 2, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0 || p[1].revents) {
            j->killed = true;
            break;
        }
        if (!p[0].revents)
            continue;
        char tmp[4096];
        ssize_t r = read(out[0], tmp, sizeof tmp);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break; /* EOF: the child is done */
        size_t take = (size_t)r < OUT_MAX - j->out_len ? (size_t)r : OUT_MAX - j->out_len;
        memcpy(j->out + j->out_len, tmp, take);
        j->out_len += take;
    }
done:
    if (pid > 0) {
        if (j->killed)
            kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0)
            close(in[i]);
        if (out[i] >= 0)
            close(out[i]);
    }
    j->out[j->out_len] = '\0';
    j->elapsed_ms = mono_ms() - t0;
}

static void check_cancel(struct tl_api_job *base)
{
    struct check_job *j = (struct check_job *)base;
    ssize_t w = write(j->cancel_fd[1], "x", 1);
    (void)w;
}

/* ---------------------------------------------------------------- the answer ---- */

static void job_free(struct check_job *j)
{
    for (int i = 0; i < 2; i++)
        if (j->cancel_fd[i] >= 0)
            close(j->cancel_fd[i]);
    explicit_bzero(j, sizeof *j);
    free(j);
}

/* the child's result line, and the TLS/connect reason from its log lines (JSON) */
static json_t *parse_output(char *text, char *why, size_t why_cap)
{
    json_t *res = NULL;
    why[0] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *l = json_loads(line, 0, NULL);
        if (!json_is_object(l)) {
            json_decref(l);
            continue;
        }
        const char *obj = json_string_value(json_object_get(l, "object"));
        const char *msg = json_string_value(json_object_get(l, "msg"));
        const char *reason = json_string_value(json_object_get(l, "reason"));
        if (obj && !strcmp(obj, "probe_result") && !res) {
            res = l;
            continue;
        }
        if (msg && !strcmp(msg, "uac.conn_failed") && reason && !why[0]) {
            /* the log quotes the value: "\"certificate verify failed: …\"" */
            size_t n = strlen(reason);
            if (n >= 2 && reason[0] == '"' && reason[n - 1] == '"') {
                reason++;
                n -= 2;
            }
            snprintf(why, why_cap, "%.*s", (int)n, reason);
        }
        json_decref(l);
    }
    return res;
}

static const char *tp_upper(enum tl_transport t)
{
    return t == TL_TRANSPORT_TLS ? "TLS" : t == TL_TRANSPORT_TCP ? "TCP" : "UDP";
}

/* The plain-words verdict: what happened and what to change. */
static void verdict(const struct check_job *j, const char *step, int status, const char *reason,
                    const char *addr, const char *error, const char *why, int64_t rtt, char *msg,
                    size_t cap)
{
    const char *tp = tp_upper(j->transport);
    const char *where = addr && *addr ? addr : j->host;
    if (!step) {
        snprintf(msg, cap,
                 "The carrier answered %d %s in %lld ms: the trunk at %s is reachable over %s.",
                 status, reason, (long long)rtt, where, tp);
    } else if (!strcmp(step, "sip")) {
        if ((status == 401 || status == 407) && j->has_user)
            snprintf(msg, cap,
                     "The carrier at %s answered %d %s to the trunk's credentials: the username "
                     "or password does not match the provider's. Re-enter the password; most "
                     "providers show it only once.",
                     where, status, reason);
        else if (status == 401 || status == 407)
            snprintf(msg, cap,
                     "The carrier at %s asks for credentials (%d %s) but the trunk has none: "
                     "enter the provider's username and password, or have the provider "
                     "authenticate this gateway by its IP address.",
                     where, status, reason);
        else if (status == 403)
            snprintf(msg, cap,
                     "The carrier at %s refused the request (403 %s): it may not accept this "
                     "gateway's address (allow-list the egress address at the provider) or the "
                     "credentials.",
                     where, reason);
        else if (status == 405 || status == 501)
            snprintf(msg, cap,
                     "The carrier at %s is reachable over %s but does not take OPTIONS (%d %s); "
                     "calls may still work.",
                     where, tp, status, reason);
        else
            snprintf(msg, cap,
                     "The carrier at %s is reachable over %s but answered %d %s in %lld ms.", where,
                     tp, status, reason, (long long)rtt);
    } else if (!strcmp(step, "dns") && error && strstr(error, "DNS servers")) {
        snprintf(msg, cap,
                 "The DNS servers did not answer for %s: the gateway cannot look the address "
                 "up right now; check its DNS settings (sip_dns_servers) and try again.",
                 j->host);
    } else if (!strcmp(step, "dns")) {
        snprintf(msg, cap,
                 "The address %s does not resolve (no NAPTR, SRV or A records answered): check "
                 "its spelling; it is the host name of the provider's SIP server, without sip: "
                 "or a port.",
                 j->host);
    } else if (!strcmp(step, "connect")) {
        snprintf(msg, cap,
                 "No %s connection to %s: %s. Check the transport the provider expects and "
                 "that it listens there.",
                 tp, where,
                 why && *why ? why
                 : error     ? error
                             : "refused");
    } else if (!strcmp(step, "tls")) {
        snprintf(msg, cap,
                 "The TLS connection to %s failed: %s. The provider's certificate must be valid "
                 "for %s and signed by a trusted authority; or choose another transport if the "
                 "provider offers one.",
                 where, why && *why ? why : "the handshake or certificate check failed", j->host);
    } else if (!strcmp(step, "timeout")) {
        snprintf(msg, cap,
                 "No answer from %s over %s within %d s: check the address and transport, and "
                 "that the provider accepts traffic from this gateway's address (some drop "
                 "unknown sources without a word).",
                 where, tp, DEADLINE_MS / 1000);
    } else {
        snprintf(msg, cap, "The check could not run here (%s); try again.",
                 error ? error : "no result");
    }
}

static void check_finish(struct tl_api_job *base, struct tl_api_resp *out)
{
    struct check_job *j = (struct check_job *)base;
    struct tl_api *a = j->base.api;
    char why[256] = "", msg[1400];

    pthread_mutex_lock(&a->mu);
    a->n_checks--;
    pthread_mutex_unlock(&a->mu);

    json_t *res = parse_output(j->out, why, sizeof why);
    const char *step = "internal", *reason = NULL, *addr = NULL, *error = NULL;
    int status = 0;
    int64_t rtt = -1;
    if (res) {
        json_t *v = json_object_get(res, "step");
        step = json_is_string(v) ? json_string_value(v) : NULL;
        status = (int)json_integer_value(json_object_get(res, "status"));
        reason = json_string_value(json_object_get(res, "reason"));
        addr = json_string_value(json_object_get(res, "address"));
        error = json_string_value(json_object_get(res, "error"));
        if (json_is_integer(json_object_get(res, "rtt_ms")))
            rtt = json_integer_value(json_object_get(res, "rtt_ms"));
    } else if (j->killed) {
        step = "timeout";
    } else if (!j->spawned) {
        error = "the probe could not be started";
    }
    if (step && strcmp(step, "tls") && strcmp(step, "connect"))
        why[0] = '\0'; /* a connection note belongs only to a connection failure */
    if (step && !strcmp(step, "dns"))
        error = error && strstr(error, "timed out") ? "no answer from the DNS servers"
                                                    : "no such name, or no records for it";
    verdict(j, step, status, reason ? reason : "", addr, error, why, rtt, msg, sizeof msg);
    if (!step)
        tl_info("api", "check", "number_id=%s result=ok status=%d ms=%lld", j->number_id, status,
                (long long)rtt);
    else
        tl_info("api", "check", "number_id=%s result=%s status=%d", j->number_id, step, status);

    char target[TL_HOST_MAX + 8], now[32];
    snprintf(target, sizeof target, "sip:%s", j->host);
    tl_time_iso(tl_now_ms(), now);
    bool reachable = status >= 200;
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s?, s:o, s:s?, s:s?, s:o, s:s?, s:s, s:I, s:s}",
                  "object", "trunk_check", "number_id", j->number_id, "target", target, "transport",
                  tl_transport_name(j->transport), "reachable", reachable, "ok", reachable && !step,
                  "step", step, "status", status ? json_integer(status) : json_null(), "reason",
                  status ? reason : NULL, "address", addr, "rtt_ms",
                  rtt >= 0 ? json_integer(rtt) : json_null(), "detail", why[0] ? why : error,
                  "message", msg, "elapsed_ms", (json_int_t)j->elapsed_ms, "checked_at", now);
    json_decref(res);
    tl_api_reply(out, 200, body);
    job_free(j);
}

/* ---------------------------------------------------------------- the handler ---- */

void tl_h_number_check(struct tl_api_req *r, struct tl_api_resp *out)
{
    struct tl_api *a = r->api;
    char ws[TL_ID_MAX];
    struct tl_phone_number *n = NULL;
    struct check_job *j = NULL;

    if (tl_api_scope(r, ws, out))
        return;
    if (r->body_len) {
        tl_api_error(out, 400, "invalid_json", "", "this request takes no body");
        return;
    }
    n = calloc(1, sizeof *n);
    j = calloc(1, sizeof *j);
    if (!n || !j) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    j->cancel_fd[0] = j->cancel_fd[1] = -1;
    int rc = tl_store_number_get(r->store, ws, r->id, n);
    if (rc) {
        tl_api_fail_rc(out, rc, NULL);
        goto out;
    }
    /* the password, opened: looked up by the number this workspace owns, and checked to
     * be the same record */
    rc = tl_store_number_secrets(r->store, n->number, n);
    if (rc || strcmp(n->id, r->id) != 0 || strcmp(n->workspace_id, ws) != 0) {
        tl_api_fail_rc(out, rc ? rc : ENOENT, NULL);
        goto out;
    }
    tl_strlcpy(j->number_id, n->id, sizeof j->number_id);
    tl_strlcpy(j->host, n->outbound.address, sizeof j->host);
    j->transport = n->outbound.transport;
    j->has_user = n->outbound.username[0] != '\0';
    if (j->has_user)
        snprintf(j->password, sizeof j->password, "%s\n", n->outbound.password);
    if (!build_argv(j, a, n)) {
        tl_api_error(out, 400, "invalid_field", "outbound_trunk.headers",
                     "the trunk's custom headers are too long to send in a check");
        goto out;
    }
    if (pipe2(j->cancel_fd, O_CLOEXEC | O_NONBLOCK)) {
        tl_api_reply(out, 500, NULL);
        goto out;
    }
    pthread_mutex_lock(&a->mu);
    bool admitted = a->n_checks < CHECKS_MAX;
    if (admitted)
        a->n_checks++;
    pthread_mutex_unlock(&a->mu);
    if (!admitted) {
        out->retry_after = "5";
        tl_api_error(out, 429, "too_many_checks", "",
                     "%d trunk checks are running already; try again in a few seconds", CHECKS_MAX);
        goto out;
    }
    j->base.run = check_run;
    j->base.finish = check_finish;
    j->base.cancel = check_cancel;
    out->job = &j->base;
    j = NULL;
out:
    if (n)
        explicit_bzero(n, sizeof *n);
    free(n);
    if (j)
        job_free(j);
}
