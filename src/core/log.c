/* Structured logging. One line per event, written with a single write(2) so that lines
 * from the API thread and the event loop never interleave. Secrets never reach here:
 * callers pass ids, never tokens or passwords; tests grep the log for planted secrets. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    int fd;
    char path[512];
    enum tl_log_format fmt;
    enum tl_log_level min;
} L = {PTHREAD_MUTEX_INITIALIZER, 2, "", TL_LOG_TEXT, TL_LOG_INFO};

static const char *lvl_name[] = {"debug", "info", "warn", "error"};

static int open_path(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int tl_log_open(const char *path, enum tl_log_format fmt, enum tl_log_level min)
{
    pthread_mutex_lock(&L.mu);
    L.fmt = fmt;
    L.min = min;
    int ret = 0;
    if (path && *path) {
        int fd = open_path(path);
        if (fd < 0) {
            ret = errno;
        } else {
            if (L.fd > 2)
                close(L.fd);
            L.fd = fd;
            tl_strlcpy(L.path, path, sizeof L.path);
        }
    }
    pthread_mutex_unlock(&L.mu);
    return ret;
}

int tl_log_reopen(void)
{
    pthread_mutex_lock(&L.mu);
    int ret = 0;
    if (L.path[0]) {
        int fd = open_path(L.path);
        if (fd < 0) {
            ret = errno;
        } else {
            close(L.fd);
            L.fd = fd;
        }
    }
    pthread_mutex_unlock(&L.mu);
    return ret;
}

void tl_log_close(void)
{
    pthread_mutex_lock(&L.mu);
    if (L.fd > 2)
        close(L.fd);
    L.fd = 2;
    L.path[0] = '\0';
    pthread_mutex_unlock(&L.mu);
}

/* JSON string escaping into a bounded buffer; returns the new position. */
static size_t jesc(char *b, size_t pos, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && pos + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            b[pos++] = '\\';
            b[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(b + pos, cap - pos, "\\u%04x", c);
        } else {
            b[pos++] = (char)c;
        }
    }
    return pos;
}

/* Splits "k=v k2=v two" style pairs: a value runs until the next " key=" token. */
static size_t kv_to_json(char *b, size_t pos, size_t cap, const char *kv)
{
    const char *p = kv;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *eq = strchr(p, '=');
        if (!eq)
            break;
        const char *v = eq + 1, *end = v;
        for (;;) {
            const char *sp = strchr(end, ' ');
            if (!sp) {
                end = v + strlen(v);
                break;
            }
            const char *q = sp + 1;
            while (*q && *q != ' ' && *q != '=')
                q++;
            if (*q == '=' && q > sp + 1) {
                end = sp;
                break;
            }
            end = sp + 1;
        }
        if (pos + 8 >= cap)
            break;
        b[pos++] = ',';
        b[pos++] = '"';
        pos = jesc(b, pos, cap, p, (size_t)(eq - p));
        b[pos++] = '"';
        b[pos++] = ':';
        b[pos++] = '"';
        pos = jesc(b, pos, cap, v, (size_t)(end - v));
        b[pos++] = '"';
        p = end;
    }
    return pos;
}

void tl_log(enum tl_log_level lvl, const char *component, const char *msg, const char *kv_fmt, ...)
{
    if (lvl < L.min)
        return;
    char kv[2048];
    va_list ap;
    va_start(ap, kv_fmt);
    vsnprintf(kv, sizeof kv, kv_fmt, ap);
    va_end(ap);
    /* a log line is one line: a newline inside a value would let input forge entries */
    for (char *c = kv; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';

    char ts[32], line[4096];
    tl_time_iso(tl_now_ms(), ts);
    size_t n;
    if (L.fmt == TL_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                             ts, lvl_name[lvl]);
        n = jesc(line, n, sizeof line, component, strlen(component));
        n += (size_t)snprintf(line + n, sizeof line - n, "\",\"msg\":\"");
        n = jesc(line, n, sizeof line, msg, strlen(msg));
        line[n++] = '"';
        n = kv_to_json(line, n, sizeof line - 3, kv);
        line[n++] = '}';
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s %-5s %s %s%s%s", ts, lvl_name[lvl], component,
                             msg, kv[0] ? " " : "", kv);
        if (n >= sizeof line - 1)
            n = sizeof line - 2;
    }
    line[n++] = '\n';
    pthread_mutex_lock(&L.mu);
    ssize_t w = write(L.fd, line, n);
    (void)w;
    pthread_mutex_unlock(&L.mu);
}
