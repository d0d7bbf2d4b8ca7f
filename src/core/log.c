/* Structured logging. One line per event. Lines from the API thread and the event loop
 * never interleave: synchronously each is one write(2) under a mutex; in the daemon's
 * mode (tl_log_start_writer) each is appended whole to a ring under that mutex and a
 * writer thread drains the ring, so a caller never waits for the output (issue 11: a
 * flood of refused packets wrote one blocking line each from the SIP loop). Secrets
 * never reach here: callers pass ids, never tokens or passwords; tests grep the log for
 * planted secrets. */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    int fd;
    char path[512];
    enum tl_log_format fmt;
    enum tl_log_level min;
    /* the writer's ring (NULL: synchronous) */
    char *ring;
    size_t head, len; /* bytes [head, head+len) modulo the size are queued */
    uint64_t dropped, dropped_told;
    int next_fd; /* a reopened file for the writer to switch to, or -1 */
    bool stop, running;
    pthread_cond_t wake, idle;
    pthread_t thr;
} L = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .fd = 2,
       .fmt = TL_LOG_TEXT,
       .min = TL_LOG_INFO,
       .next_fd = -1,
       .wake = PTHREAD_COND_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t limit_mu = PTHREAD_MUTEX_INITIALIZER;

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
        } else if (L.running) {
            /* the writer may be inside write(2) on the old one: it switches between writes */
            if (L.next_fd >= 0)
                close(L.next_fd);
            L.next_fd = fd;
            pthread_cond_signal(&L.wake);
        } else {
            close(L.fd);
            L.fd = fd;
        }
    }
    pthread_mutex_unlock(&L.mu);
    return ret;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to tell: the output is gone */
        p += w;
        n -= (size_t)w;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    char chunk[65536];
    pthread_mutex_lock(&L.mu);
    for (;;) {
        while (!L.len && !L.stop && L.next_fd < 0 && L.dropped == L.dropped_told)
            pthread_cond_wait(&L.wake, &L.mu);
        if (L.next_fd >= 0) {
            if (L.fd > 2)
                close(L.fd);
            L.fd = L.next_fd;
            L.next_fd = -1;
        }
        size_t n = 0;
        while (L.len && n < sizeof chunk) { /* contiguous pieces of the ring */
            size_t run = TL_LOG_RING_BYTES - L.head;
            size_t k = L.len < run ? L.len : run;
            if (k > sizeof chunk - n)
                k = sizeof chunk - n;
            memcpy(chunk + n, L.ring + L.head, k);
            n += k;
            L.head = (L.head + k) % TL_LOG_RING_BYTES;
            L.len -= k;
        }
        uint64_t lost = L.dropped - L.dropped_told;
        L.dropped_told = L.dropped;
        bool stop = L.stop && !L.len && !lost;
        int fd = L.fd;
        if (!L.len)
            pthread_cond_broadcast(&L.idle);
        pthread_mutex_unlock(&L.mu);
        write_all(fd, chunk, n); /* outside the lock: loggers never wait for this */
        if (lost) {
            char ts[32], line[256];
            tl_time_iso(tl_now_ms(), ts);
            int m = L.fmt == TL_LOG_JSON
                        ? snprintf(line, sizeof line,
                                   "{\"ts\":\"%s\",\"level\":\"warn\",\"component\":\"core\","
                                   "\"msg\":\"log.dropped\",\"count\":\"%llu\"}\n",
                                   ts, (unsigned long long)lost)
                        : snprintf(line, sizeof line,
                                   "%s warn  core log.dropped count=%llu reason=\"log output "
                                   "slower than the lines; dropped, not waited for\"\n",
                                   ts, (unsigned long long)lost);
            write_all(fd, line, (size_t)m);
        }
        pthread_mutex_lock(&L.mu);
        if (stop)
            break;
    }
    L.running = false;
    pthread_cond_broadcast(&L.idle);
    pthread_mutex_unlock(&L.mu);
    return NULL;
}

int tl_log_start_writer(void)
{
    pthread_mutex_lock(&L.mu);
    int r = 0;
    if (!L.running) {
        if (!L.ring && !(L.ring = malloc(TL_LOG_RING_BYTES)))
            r = ENOMEM;
        L.stop = false;
        if (!r && (r = pthread_create(&L.thr, NULL, writer_main, NULL)) == 0)
            L.running = true;
    }
    pthread_mutex_unlock(&L.mu);
    return r;
}

uint64_t tl_log_dropped(void)
{
    pthread_mutex_lock(&L.mu);
    uint64_t n = L.dropped;
    pthread_mutex_unlock(&L.mu);
    return n;
}

void tl_log_close(void)
{
    pthread_mutex_lock(&L.mu);
    bool joined = false;
    if (L.running) {
        /* drain, but never hang the exit on an output that takes nothing any more */
        L.stop = true;
        pthread_cond_signal(&L.wake);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;
        while (L.running && pthread_cond_timedwait(&L.idle, &L.mu, &until) == 0)
            ;
        joined = !L.running;
    }
    pthread_mutex_unlock(&L.mu);
    if (joined)
        pthread_join(L.thr, NULL);
    pthread_mutex_lock(&L.mu);
    if (joined || !L.running) {
        free(L.ring);
        L.ring = NULL;
        L.head = L.len = 0;
        if (L.next_fd >= 0)
            close(L.next_fd);
        L.next_fd = -1;
        if (L.fd > 2)
            close(L.fd);
        L.fd = 2;
    } else {
        pthread_detach(L.thr); /* stuck in write(2): the process is ending anyway */
    }
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
    if (L.running) {
        if (L.len + n > TL_LOG_RING_BYTES) {
            L.dropped++; /* the writer says how many */
        } else {
            size_t tail = (L.head + L.len) % TL_LOG_RING_BYTES;
            size_t run = TL_LOG_RING_BYTES - tail;
            size_t k = n < run ? n : run;
            memcpy(L.ring + tail, line, k);
            memcpy(L.ring, line + k, n - k);
            L.len += n;
        }
        pthread_cond_signal(&L.wake);
    } else {
        ssize_t w = write(L.fd, line, n);
        (void)w;
    }
    pthread_mutex_unlock(&L.mu);
}

bool tl_log_limit_pass(struct tl_log_limit *lim, uint64_t now_ms, uint32_t *suppressed)
{
    *suppressed = 0;
    if (now_ms >= lim->window_ms + 1000 || now_ms < lim->window_ms) {
        lim->window_ms = now_ms;
        lim->n = 0;
    }
    if (lim->n >= TL_LOG_LIMIT_BURST) {
        if (lim->suppressed < UINT32_MAX)
            lim->suppressed++;
        return false;
    }
    lim->n++;
    *suppressed = lim->suppressed;
    lim->suppressed = 0;
    return true;
}

void tl_log_limited(struct tl_log_limit *lim, enum tl_log_level lvl, const char *component,
                    const char *msg, const char *kv_fmt, ...)
{
    if (lvl < L.min)
        return;
    uint32_t sup;
    pthread_mutex_lock(&limit_mu);
    bool pass = tl_log_limit_pass(lim, tl_now_ms(), &sup);
    pthread_mutex_unlock(&limit_mu);
    if (!pass)
        return;
    char kv[2048];
    va_list ap;
    va_start(ap, kv_fmt);
    vsnprintf(kv, sizeof kv, kv_fmt, ap);
    va_end(ap);
    if (sup)
        tl_log(lvl, component, msg, "%s suppressed=%u", kv, sup);
    else
        tl_log(lvl, component, msg, "%s", kv);
}
