/* agent/ws: see ws.h. The life of one connection:
 *
 *   RESOLVING  tl_net_resolve (port given: A/AAAA), then the guard on every address
 *   CONNECTING net/stream to each allowed address in turn (TCP, then TLS when wss)
 *   UPGRADING  our HTTP/1.1 Upgrade out, the response read up to TL_WS_HANDSHAKE_MAX
 *   OPEN       frames through wslay; pings on the timer
 *   CLOSING    our close frame queued behind what was queued before it; 2 s of grace
 *   ENDING     the outcome is stored and on_close is due on the next loop iteration
 *   DONE       handles closing; memory goes with the timer's close callback
 *
 * One uv_timer serves every state: the connect deadline (which covers DNS, every TCP
 * attempt, TLS and the upgrade), then pings and pong deadlines, then the close grace.
 *
 * wslay does the framing (RFC 6455 §5) and nothing else: its recv callback reads from the
 * bytes a socket read just brought (never from the socket), its send callback fills a
 * staging buffer that goes to the stream in one write. Above HIGH_WATER unsent bytes the
 * send callback says "would block", so messages wait in wslay's queue, already copied once;
 * the cap of ws.h counts both. */
#include "agent/ws.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "agent/ws_int.h"
#include "net/resolve.h"
#include "net/stream.h"
#include "net/tls.h"

#define WS_GUID      "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define URL_MAX      4096
#define HEADER_MAX   4096
#define REQ_MAX      16384
#define OBUF_SIZE    16384
#define HIGH_WATER   (64u << 10)
#define GRACE_MS     2000
#define LINGER_MS    1000 /* for our close frame to leave after on_close */
#define DEF_TIMEOUT  5000
#define DEF_PING     15000
#define DEF_PONG     10000
#define PEER_WHY_MAX 60

enum ws_state {
    WS_RESOLVING,
    WS_CONNECTING,
    WS_UPGRADING,
    WS_OPEN,
    WS_CLOSING,
    WS_ENDING,
    WS_DONE
};

struct tl_ws {
    uv_loop_t *loop; /* NULL: a detached handle (ws_int.h) */
    uv_timer_t tm;
    enum ws_state st;
    struct tl_ws_cb cb;
    void *arg;
    struct tl_ws_url url;
    const struct tl_net_guard *guard;
    struct tl_net_resolver *resolver;
    struct tl_tls_ctx *tls;
    unsigned timeout_ms, ping_ms, pong_ms;
    size_t max_message, max_sendq;

    /* connecting */
    struct tl_net_resolve_query *q;
    struct sockaddr_storage *addrs;
    size_t naddrs, cur;
    bool tcp_up;
    char addr[64];      /* the address being tried: "192.0.2.7:443" */
    char last_err[160]; /* why the last address failed */
    char *req;          /* the upgrade request */
    size_t req_len;
    char key[25]; /* Sec-WebSocket-Key */
    char *hbuf;   /* the upgrade response, up to TL_WS_HANDSHAKE_MAX */
    size_t hlen;

    /* open */
    struct tl_net_stream *s;
    wslay_event_context_ptr ctx;
    const char *rp; /* bytes wslay's recv callback hands out */
    size_t rn;
    char *obuf; /* staging of wslay's output, OBUF_SIZE */
    size_t olen;
    bool in_wslay, force;
    uint64_t next_ping, pong_due;
    bool close_pending, local_close;
    uint16_t close_code;
    char close_reason[124];
    size_t close_reason_len;
    uint16_t peer_code;
    char peer_why[PEER_WHY_MAX + 1];
    tl_ws_sink *sink;

    /* the outcome, once ENDING */
    enum tl_ws_fail fail;
    uint16_t code;
    char why[TL_WS_WHY_MAX];
};

const char *tl_ws_fail_name(enum tl_ws_fail f)
{
    switch (f) {
    case TL_WS_OK:
        return "ok";
    case TL_WS_FAIL_URL:
        return "url";
    case TL_WS_FAIL_DNS:
        return "dns";
    case TL_WS_FAIL_GUARD:
        return "guard";
    case TL_WS_FAIL_CONNECT:
        return "connect";
    case TL_WS_FAIL_TLS:
        return "tls";
    case TL_WS_FAIL_HTTP:
        return "http";
    case TL_WS_FAIL_HANDSHAKE:
        return "handshake";
    case TL_WS_FAIL_TIMEOUT:
        return "timeout";
    case TL_WS_FAIL_PROTOCOL:
        return "protocol";
    case TL_WS_FAIL_PING:
        return "ping";
    case TL_WS_FAIL_IO:
        return "io";
    case TL_WS_FAIL_SENDQ:
        return "sendq";
    }
    return "?";
}

/* ---- pure parts ---- */

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.';
}

int tl_ws_url_parse(const char *url, struct tl_ws_url *u)
{
    if (!url || !u)
        return EINVAL;
    memset(u, 0, sizeof *u);
    if (strlen(url) > URL_MAX)
        return EINVAL;
    const char *p;
    if (!strncasecmp(url, "wss://", 6)) {
        u->tls = true;
        p = url + 6;
    } else if (!strncasecmp(url, "ws://", 5)) {
        p = url + 5;
    } else {
        return EINVAL;
    }
    size_t alen = strcspn(p, "/?#");
    const char *aend = p + alen, *port = NULL;
    if (memchr(p, '@', alen)) /* userinfo: credentials in a URL end up in logs */
        return EINVAL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', alen);
        size_t hl = rb ? (size_t)(rb - p - 1) : 0;
        if (!rb || !hl || hl >= sizeof u->host)
            return EINVAL;
        memcpy(u->host, p + 1, hl);
        u->host[hl] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, u->host, &a6) != 1) /* also refuses zone ids */
            return EINVAL;
        if (rb + 1 < aend) {
            if (rb[1] != ':')
                return EINVAL;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', alen);
        const char *hend = colon ? colon : aend;
        size_t hl = (size_t)(hend - p);
        if (hl && p[hl - 1] == '.') /* absolute form; names are absolute anyway */
            hl--;
        if (!hl || hl > TL_NET_NAME_MAX)
            return EINVAL;
        size_t label = 0;
        for (size_t i = 0; i < hl; i++) {
            if (!host_char(p[i]))
                return EINVAL;
            if (p[i] == '.') {
                if (!label)
                    return EINVAL;
                label = 0;
            } else if (++label > 63) {
                return EINVAL;
            }
            /* RFC 3986 §6.2.2.1: hosts are case-insensitive; SNI and the certificate
             * check get one spelling */
            u->host[i] = (char)tolower((unsigned char)p[i]);
        }
        if (!label)
            return EINVAL;
        u->host[hl] = '\0';
        if (colon)
            port = colon + 1;
    }
    u->port = u->tls ? 443 : 80;
    if (port) {
        size_t pl = (size_t)(aend - port);
        unsigned long v = 0;
        if (!pl || pl > 5)
            return EINVAL;
        for (size_t i = 0; i < pl; i++) {
            if (!isdigit((unsigned char)port[i]))
                return EINVAL;
            v = v * 10 + (unsigned long)(port[i] - '0');
        }
        if (!v || v > 65535)
            return EINVAL;
        u->port = (uint16_t)v;
    }
    const char *rest = aend;
    if (strchr(rest, '#')) /* RFC 6455 §3: no fragment in a WebSocket URI */
        return EINVAL;
    size_t off = 0;
    if (*rest != '/')
        u->path[off++] = '/';
    size_t rl = strlen(rest);
    if (off + rl >= sizeof u->path)
        return EINVAL;
    for (size_t i = 0; i < rl; i++) /* it goes on the request line verbatim */
        if ((unsigned char)rest[i] <= 0x20 || (unsigned char)rest[i] >= 0x7f)
            return EINVAL;
    memcpy(u->path + off, rest, rl + 1);
    return 0;
}

void tl_ws_accept_for(const char *key, char out[29])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha1(), NULL) || !EVP_DigestUpdate(c, key, strlen(key)) ||
        !EVP_DigestUpdate(c, WS_GUID, sizeof WS_GUID - 1) || !EVP_DigestFinal_ex(c, md, &mdlen) ||
        mdlen != 20) {
        EVP_MD_CTX_free(c);
        out[0] = '\0'; /* matches no server's answer */
        return;
    }
    EVP_MD_CTX_free(c);
    sodium_bin2base64(out, 29, md, 20, sodium_base64_VARIANT_ORIGINAL);
}

static bool tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ctl(unsigned char c)
{
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

int tl_ws_header_check(const char *line, const char **why)
{
    static const char *const ours[] = {"host",
                                       "upgrade",
                                       "connection",
                                       "sec-websocket-key",
                                       "sec-websocket-version",
                                       "sec-websocket-accept",
                                       "sec-websocket-extensions",
                                       "content-length",
                                       "transfer-encoding"};
    const char *w = NULL;
    const char *colon = line ? strchr(line, ':') : NULL;
    size_t len = line ? strlen(line) : 0;
    if (!line || len > HEADER_MAX) {
        w = "a header line is longer than 4096 bytes";
    } else if (!colon || colon == line) {
        w = "a header is not written as \"Name: value\"";
    } else {
        for (const char *c = line; c < colon && !w; c++)
            if (!tchar((unsigned char)*c))
                w = "a header name has characters a name cannot have";
        for (const char *c = colon + 1; *c && !w; c++)
            if (ctl((unsigned char)*c))
                w = "a header value has a line break or another control character";
        size_t nl = (size_t)(colon - line);
        for (size_t i = 0; !w && i < sizeof ours / sizeof ours[0]; i++)
            if (strlen(ours[i]) == nl && !strncasecmp(line, ours[i], nl))
                w = "a header the WebSocket handshake sets itself (Host, Upgrade, Connection, "
                    "Sec-WebSocket-Key, -Version, -Accept, -Extensions) or a framing one "
                    "(Content-Length, Transfer-Encoding)";
    }
    if (why)
        *why = w;
    return w ? EINVAL : 0;
}

/* a comma-separated header value contains token (ASCII case-insensitive) */
static bool list_has(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v + s, token, tl))
            return true;
    }
    return false;
}

/* tl_ws_response_parse with a sentence for what is wrong: *bad names the problem of an
 * EBADMSG, or of a 101 that is not a WebSocket answer (NULL when it is one). */
static int parse_response(const char *p, size_t n, const char *key, int *status, const char **bad,
                          char *reason, size_t cap, size_t *hdr_len)
{
    *status = 0;
    *bad = NULL;
    *hdr_len = 0;
    if (reason && cap)
        reason[0] = '\0';
    size_t lim = n < TL_WS_HANDSHAKE_MAX ? n : TL_WS_HANDSHAKE_MAX;
    /* refuse early what cannot become HTTP (a TLS server on a ws:// URL, SSH, …) */
    static const char pre[] = "HTTP/1.";
    if (memcmp(p, pre, lim < 7 ? lim : 7)) {
        *bad = "is not HTTP";
        return EBADMSG;
    }
    size_t end = 0;
    for (size_t i = 0; i < lim && !end; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < lim && p[i + 1] == '\n')
            end = i + 2;
        else if (i + 2 < lim && p[i + 1] == '\r' && p[i + 2] == '\n')
            end = i + 3;
    }
    if (!end) {
        if (n < TL_WS_HANDSHAKE_MAX)
            return EAGAIN;
        *bad = "is over 8192 bytes";
        return EBADMSG;
    }
    /* the status line: HTTP/1.x SP 3DIGIT [SP reason] */
    size_t le = (size_t)((const char *)memchr(p, '\n', end) - p);
    size_t ll = le && p[le - 1] == '\r' ? le - 1 : le;
    if (ll < 12 || !isdigit((unsigned char)p[7]) || p[8] != ' ' || !isdigit((unsigned char)p[9]) ||
        !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]) ||
        (ll > 12 && p[12] != ' ')) {
        *bad = "has no HTTP status line";
        return EBADMSG;
    }
    for (size_t i = 0; i < ll; i++)
        if (ctl((unsigned char)p[i])) {
            *bad = "has control characters in its status line";
            return EBADMSG;
        }
    int code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (reason && cap) {
        size_t o = 0;
        for (size_t i = 13; i < ll && o + 1 < cap; i++)
            reason[o++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
        reason[o] = '\0';
    }
    char want[29] = "";
    if (key)
        tl_ws_accept_for(key, want);
    bool upgrade = false, connection = false, ext = false;
    int accepts = 0;
    bool accept_ok = false;
    size_t i = le + 1;
    while (i < end) {
        size_t e = (size_t)((const char *)memchr(p + i, '\n', end - i) - p);
        size_t l = e > i && p[e - 1] == '\r' ? e - 1 - i : e - i;
        const char *h = p + i;
        i = e + 1;
        if (!l)
            break; /* the blank line */
        if (h[0] == ' ' || h[0] == '\t') {
            *bad = "folds a header line (obsolete, RFC 7230 §3.2.4)";
            return EBADMSG;
        }
        const char *colon = memchr(h, ':', l);
        if (!colon || colon == h) {
            *bad = "has a header line without a name and ':'";
            return EBADMSG;
        }
        size_t nl = (size_t)(colon - h);
        for (size_t k = 0; k < nl; k++)
            if (!tchar((unsigned char)h[k])) {
                *bad = "has a header name with characters a name cannot have";
                return EBADMSG;
            }
        const char *v = colon + 1, *ve = h + l;
        for (const char *c = v; c < ve; c++)
            if (ctl((unsigned char)*c)) {
                *bad = "has control characters in a header";
                return EBADMSG;
            }
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vl = (size_t)(ve - v);
#define IS(name) (nl == sizeof(name) - 1 && !strncasecmp(h, name, nl))
        if (IS("Upgrade"))
            upgrade = upgrade || list_has(v, vl, "websocket");
        else if (IS("Connection"))
            connection = connection || list_has(v, vl, "upgrade");
        else if (IS("Sec-WebSocket-Extensions"))
            ext = ext || vl > 0;
        else if (IS("Sec-WebSocket-Accept"))
            accept_ok = ++accepts == 1 && want[0] && vl == 28 && !memcmp(v, want, 28);
#undef IS
    }
    *status = code;
    *hdr_len = end;
    if (code != 101)
        return 0;
    /* RFC 6455 §4.1, the client's checks of the server's answer, in its order */
    if (memcmp(p, "HTTP/1.1", 8))
        *bad = "not in HTTP/1.1";
    else if (!upgrade)
        *bad = "without \"Upgrade: websocket\"";
    else if (!connection)
        *bad = "without \"Connection: Upgrade\"";
    else if (!accepts)
        *bad = "without Sec-WebSocket-Accept";
    else if (!accept_ok)
        *bad = accepts > 1 ? "with more than one Sec-WebSocket-Accept"
                           : "with a wrong Sec-WebSocket-Accept (not an answer to our key)";
    else if (ext)
        *bad = "with a WebSocket extension we did not offer";
    return 0;
}

int tl_ws_response_parse(const char *p, size_t n, const char *key, int *status, bool *accept_ok,
                         char *reason, size_t cap, size_t *hdr_len)
{
    const char *bad;
    int r = parse_response(p, n, key, status, &bad, reason, cap, hdr_len);
    *accept_ok = !r && *status == 101 && !bad;
    return r;
}

/* ---- helpers ---- */

static void sa_str(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        const struct sockaddr_in *s4 = (const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    }
}

static void ip_str(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)cap);
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)cap);
}

static bool host_is_ip(const struct tl_ws *ws)
{
    struct in6_addr a;
    return inet_pton(AF_INET, ws->url.host, &a) == 1 || inet_pton(AF_INET6, ws->url.host, &a) == 1;
}

static const char *code_name(uint16_t c)
{
    switch (c) {
    case 1000:
        return "normal closure";
    case 1001:
        return "going away";
    case 1002:
        return "protocol error";
    case 1003:
        return "unsupported data";
    case 1007:
        return "invalid data";
    case 1008:
        return "policy violation";
    case 1009:
        return "message too big";
    case 1010:
        return "extension required";
    case 1011:
        return "internal error";
    case 1012:
        return "service restart";
    case 1013:
        return "try again later";
    default:
        return "";
    }
}

static const char *status_name(int code)
{
    switch (code) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

static uint64_t now_ms(const struct tl_ws *ws)
{
    return ws->loop ? uv_now(ws->loop) : 0;
}

static void arm(struct tl_ws *ws, uint64_t ms);
static void on_timer(uv_timer_t *t);

static bool alive(const struct tl_ws *ws)
{
    return ws->st < WS_ENDING;
}

static void step(struct tl_ws *ws, enum tl_ws_step s, const char *detail)
{
    if (ws->cb.on_step && alive(ws))
        ws->cb.on_step(ws, s, detail, ws->arg);
}

/* ---- the end ---- */

static void ws_free(struct tl_ws *ws)
{
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    free(ws->addrs);
    free(ws->req);
    free(ws->hbuf);
    free(ws->obuf);
    free(ws);
}

static void timer_closed(uv_handle_t *h)
{
    ws_free(h->data);
}

/* Stops everything and stores the outcome; on_close follows on the next loop iteration
 * (never from inside a tl_ws_* call of the owner). */
static void end_with(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void end_with(struct tl_ws *ws, enum tl_ws_fail fail, uint16_t code, const char *fmt, ...)
{
    if (!alive(ws))
        return;
    if (ws->q) {
        tl_net_resolve_cancel(ws->q);
        ws->q = NULL;
    }
    if (ws->s) {
        /* our close frame, when one went into the stream, still leaves */
        bool sent = ws->ctx && wslay_event_get_close_sent(ws->ctx);
        tl_net_stream_close(ws->s, sent ? LINGER_MS : 0);
        ws->s = NULL;
    }
    ws->fail = fail;
    ws->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ws->why, sizeof ws->why, fmt, ap);
    va_end(ap);
    ws->st = WS_ENDING;
    if (!ws->loop) { /* detached: nothing to defer to */
        ws->st = WS_DONE;
        ws->cb.on_close(ws, ws->fail, ws->code, ws->why, ws->arg);
        return;
    }
    arm(ws, 0);
}

/* ---- open: frames through wslay ---- */

static int obuf_flush(struct tl_ws *ws)
{
    if (!ws->olen)
        return 0;
    int e = 0;
    if (ws->s)
        e = tl_net_stream_write(ws->s, ws->obuf, ws->olen);
    else if (ws->sink)
        ws->sink(ws->obuf, ws->olen, ws->arg);
    ws->olen = 0;
    return e;
}

static ssize_t wsl_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                        void *user)
{
    (void)flags;
    struct tl_ws *ws = user;
    if (!ws->rn || !alive(ws)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->rn ? len : ws->rn;
    memcpy(buf, ws->rp, n);
    ws->rp += n;
    ws->rn -= n;
    return (ssize_t)n;
}

static ssize_t wsl_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                        void *user)
{
    (void)flags;
    struct tl_ws *ws = user;
    if (ws->olen == OBUF_SIZE && obuf_flush(ws)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (!ws->force && tl_net_stream_unsent(ws->s) + ws->olen >= HIGH_WATER) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = OBUF_SIZE - ws->olen;
    if (n > len)
        n = len;
    memcpy(ws->obuf + ws->olen, data, n);
    ws->olen += n;
    return (ssize_t)n;
}

/* RFC 6455 §5.3: every frame's mask unpredictable, from a strong source. The masks are cut
 * from a pool of the same CSPRNG output (libsodium), each byte used once, refilled 4 KiB at a
 * time: randombytes_buf() is one getrandom() system call, and one per frame of every call
 * cost ~5 % of the daemon's time with bridged calls (bench/README.md). Loop thread only. */
static uint8_t mask_pool[4096];
static size_t mask_left;

static int wsl_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)ctx;
    (void)user;
    while (len) {
        if (!mask_left) {
            randombytes_buf(mask_pool, sizeof mask_pool);
            mask_left = sizeof mask_pool;
        }
        size_t n = len < mask_left ? len : mask_left;
        memcpy(buf, mask_pool + sizeof mask_pool - mask_left, n);
        sodium_memzero(mask_pool + sizeof mask_pool - mask_left, n); /* used once */
        mask_left -= n;
        buf += n;
        len -= n;
    }
    return 0;
}

static void wsl_frame_start(wslay_event_context_ptr ctx,
                            const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
    (void)ctx;
    (void)a;
    struct tl_ws *ws = user;
    ws->pong_due = 0; /* any frame shows the peer is alive, not only a pong */
}

static void wsl_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                    void *user)
{
    (void)ctx;
    struct tl_ws *ws = user;
    if (ws->st != WS_OPEN && ws->st != WS_CLOSING)
        return;
    if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) {
        ws->cb.on_message(ws, a->msg ? (const char *)a->msg : "", a->msg_length,
                          a->opcode == WSLAY_BINARY_FRAME, ws->arg);
    } else if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        ws->peer_code = a->status_code;
        size_t o = 0;
        for (size_t i = 2; a->msg && i < a->msg_length && o < PEER_WHY_MAX; i++)
            ws->peer_why[o++] = a->msg[i] >= 0x20 && a->msg[i] < 0x7f ? (char)a->msg[i] : '?';
        ws->peer_why[o] = '\0';
    }
}

/* Queued frames out: wslay's queue into the stream until HIGH_WATER (or everything when
 * force), then our deferred close once what was queued before it has gone. 0 or EIO. */
static int pump(struct tl_ws *ws)
{
    if (ws->in_wslay || !ws->ctx || (ws->st != WS_OPEN && ws->st != WS_CLOSING))
        return 0;
    for (;;) {
        ws->in_wslay = true;
        int r = wslay_event_send(ws->ctx);
        ws->in_wslay = false;
        int e = obuf_flush(ws);
        if (r < 0 || e)
            return EIO;
        if (!ws->close_pending || wslay_event_get_queued_msg_count(ws->ctx))
            return 0;
        /* RFC 6455 §5.5.1: after a close nothing else may be sent, and wslay sends control
         * frames ahead of queued messages: so the close is queued only now */
        ws->close_pending = false;
        ws->force = true;
        if (wslay_event_queue_close(ws->ctx, ws->close_code, (const uint8_t *)ws->close_reason,
                                    ws->close_reason_len))
            return 0; /* a close is already queued or sent (the peer's, echoed) */
    }
}

static void after_io(struct tl_ws *ws)
{
    if (ws->st != WS_OPEN && ws->st != WS_CLOSING)
        return;
    bool close_rx = wslay_event_get_close_received(ws->ctx);
    bool failed = !close_rx && !wslay_event_get_read_enabled(ws->ctx);
    if (close_rx || failed)
        ws->force = true; /* the close wslay queued must leave past HIGH_WATER */
    if (pump(ws)) {
        end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to the agent's connection");
        return;
    }
    if (close_rx) {
        uint16_t c = ws->peer_code;
        const char *sep = ws->peer_why[0] ? ": " : "";
        if (ws->local_close)
            end_with(ws, TL_WS_OK, c, "closed (the agent answered the close with %u%s%s)", c, sep,
                     ws->peer_why);
        else if (c)
            end_with(ws, TL_WS_OK, c, "the agent closed the connection (%u %s%s%s)", c,
                     code_name(c), sep, ws->peer_why);
        else
            end_with(ws, TL_WS_OK, 0, "the agent closed the connection (no status code)");
        return;
    }
    if (failed) {
        uint16_t c = wslay_event_get_status_code_sent(ws->ctx);
        if (c == WSLAY_CODE_MESSAGE_TOO_BIG)
            end_with(ws, TL_WS_FAIL_PROTOCOL, 0,
                     "the agent sent a message over %zu bytes (closed with 1009 message too big)",
                     ws->max_message);
        else if (c == WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA)
            end_with(ws, TL_WS_FAIL_PROTOCOL, 0,
                     "the agent sent text that is not UTF-8 (closed with 1007 invalid data)");
        else
            end_with(ws, TL_WS_FAIL_PROTOCOL, 0,
                     "the agent broke the WebSocket protocol (closed with %u %s)", c, code_name(c));
    }
}

static void feed(struct tl_ws *ws, const char *p, size_t n)
{
    if ((ws->st != WS_OPEN && ws->st != WS_CLOSING) || !n)
        return;
    ws->rp = p;
    ws->rn = n;
    ws->in_wslay = true;
    int r = wslay_event_recv(ws->ctx);
    ws->in_wslay = false;
    ws->rn = 0;
    if (ws->st != WS_OPEN && ws->st != WS_CLOSING)
        return;
    if (r == WSLAY_ERR_NOMEM) {
        end_with(ws, TL_WS_FAIL_IO, 0, "out of memory reading the agent's frames");
        return;
    }
    if (r < 0) {
        /* a frame its header already breaks (a control frame over 125 bytes or
         * fragmented, a length in the wrong encoding): wslay queued a close without code */
        ws->force = true;
        pump(ws);
        end_with(ws, TL_WS_FAIL_PROTOCOL, 0,
                 "the agent broke the WebSocket protocol (a malformed frame header)");
        return;
    }
    after_io(ws);
}

static int make_ctx(struct tl_ws *ws)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = wsl_recv,
        .send_callback = wsl_send,
        .genmask_callback = wsl_genmask,
        .on_frame_recv_start_callback = wsl_frame_start,
        .on_msg_recv_callback = wsl_msg,
    };
    if (!(ws->obuf = malloc(OBUF_SIZE)) || wslay_event_context_client_init(&ws->ctx, &cbs, ws))
        return ENOMEM;
    /* checked on each frame's header, before wslay allocates its payload: a message
     * (fragments added up) is never assembled past the cap */
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->max_message);
    return 0;
}

/* ---- timers ---- */

static void arm(struct tl_ws *ws, uint64_t ms)
{
    if (ws->loop)
        uv_timer_start(&ws->tm, on_timer, ms, 0);
}

static void arm_ping(struct tl_ws *ws)
{
    uint64_t now = now_ms(ws), due = ws->next_ping;
    if (ws->pong_due && ws->pong_due < due)
        due = ws->pong_due;
    arm(ws, due > now ? due - now : 0);
}

static void ping_tick(struct tl_ws *ws)
{
    uint64_t now = now_ms(ws);
    if (ws->pong_due && now >= ws->pong_due) {
        size_t q = tl_ws_queued(ws);
        if (q)
            end_with(ws, TL_WS_FAIL_SENDQ, 0,
                     "the agent stopped reading: %zu bytes still unsent, a ping among them, "
                     "after %u ms",
                     q, ws->pong_ms);
        else
            end_with(ws, TL_WS_FAIL_PING, 0, "no pong from the agent within %u ms of a ping",
                     ws->pong_ms);
        return;
    }
    if (now >= ws->next_ping) {
        static const uint8_t payload[] = "tl";
        struct wslay_event_msg m = {WSLAY_PING, payload, 2};
        if (wslay_event_queue_msg(ws->ctx, &m) == 0 && pump(ws)) {
            end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to the agent's connection");
            return;
        }
        if (!ws->pong_due)
            ws->pong_due = now + ws->pong_ms;
        ws->next_ping = now + ws->ping_ms;
    }
    arm_ping(ws);
}

static void on_timer(uv_timer_t *t)
{
    struct tl_ws *ws = t->data;
    switch (ws->st) {
    case WS_RESOLVING:
        end_with(ws, TL_WS_FAIL_DNS, 0, "cannot resolve %s within %u ms", ws->url.host,
                 ws->timeout_ms);
        return;
    case WS_CONNECTING:
        if (ws->tcp_up && ws->url.tls)
            end_with(ws, TL_WS_FAIL_TIMEOUT, 0, "no TLS answer from %s (%s) within %u ms",
                     ws->url.host, ws->addr, ws->timeout_ms);
        else if (host_is_ip(ws))
            end_with(ws, TL_WS_FAIL_TIMEOUT, 0, "no answer from %s within %u ms", ws->addr,
                     ws->timeout_ms);
        else
            end_with(ws, TL_WS_FAIL_TIMEOUT, 0, "no answer from %s (%s) within %u ms", ws->url.host,
                     ws->addr, ws->timeout_ms);
        return;
    case WS_UPGRADING:
        end_with(ws, TL_WS_FAIL_TIMEOUT, 0,
                 "no answer from %s to the WebSocket upgrade within %u ms", ws->url.host,
                 ws->timeout_ms);
        return;
    case WS_OPEN:
        ping_tick(ws);
        return;
    case WS_CLOSING: {
        size_t q = tl_ws_queued(ws);
        if (q)
            end_with(ws, TL_WS_FAIL_SENDQ, 0,
                     "the agent stopped reading: %zu bytes still unsent %u ms after the close", q,
                     GRACE_MS);
        else
            end_with(ws, TL_WS_OK, 0, "closed; the agent did not answer the close within %u ms",
                     GRACE_MS);
        return;
    }
    case WS_ENDING:
        ws->st = WS_DONE;
        uv_close((uv_handle_t *)&ws->tm, timer_closed);
        ws->cb.on_close(ws, ws->fail, ws->code, ws->why, ws->arg);
        return;
    case WS_DONE:
        return;
    }
}

/* ---- the upgrade ---- */

static void open_ws(struct tl_ws *ws, const char *r1, size_t n1, const char *r2, size_t n2,
                    const char *reason)
{
    if (make_ctx(ws)) {
        end_with(ws, TL_WS_FAIL_IO, 0, "out of memory");
        return;
    }
    char d[80];
    snprintf(d, sizeof d, "101 %s", reason);
    step(ws, TL_WS_STEP_UPGRADED, d);
    if (!alive(ws))
        return;
    free(ws->req);
    ws->req = NULL;
    free(ws->addrs);
    ws->addrs = NULL;
    ws->st = WS_OPEN;
    ws->next_ping = now_ms(ws) + ws->ping_ms;
    arm_ping(ws);
    ws->cb.on_open(ws, ws->arg);
    /* frames that came with the 101, after the owner knows it is open */
    feed(ws, r1, n1);
    feed(ws, r2, n2);
    if (alive(ws)) {
        free(ws->hbuf);
        ws->hbuf = NULL;
    }
}

static void handshake_input(struct tl_ws *ws, const char *p, size_t n)
{
    while (n) {
        size_t take = TL_WS_HANDSHAKE_MAX - ws->hlen;
        if (take > n)
            take = n;
        memcpy(ws->hbuf + ws->hlen, p, take);
        ws->hlen += take;
        p += take;
        n -= take;
        int status;
        const char *bad;
        char reason[64];
        size_t hl;
        int r =
            parse_response(ws->hbuf, ws->hlen, ws->key, &status, &bad, reason, sizeof reason, &hl);
        if (r == EAGAIN)
            continue;
        if (r) {
            end_with(ws, TL_WS_FAIL_HANDSHAKE, 0, "the agent's answer to the WebSocket upgrade %s",
                     bad);
            return;
        }
        if (status != 101) {
            const char *rs = reason[0] ? reason : status_name(status);
            end_with(ws, TL_WS_FAIL_HTTP, 0, "the agent answered %d%s%s to the WebSocket upgrade%s",
                     status, rs[0] ? " " : "", rs,
                     status >= 300 && status < 400 ? " (redirects are not followed)" : "");
            return;
        }
        if (bad) {
            end_with(ws, TL_WS_FAIL_HANDSHAKE, 0, "the agent answered 101 %s", bad);
            return;
        }
        open_ws(ws, ws->hbuf + hl, ws->hlen - hl, p, n, reason[0] ? reason : "Switching Protocols");
        return;
    }
}

/* ---- connecting ---- */

static void try_next(struct tl_ws *ws);

static void connect_why(struct tl_ws *ws, int err, const char *why)
{
    if (err == ECONNREFUSED)
        snprintf(ws->last_err, sizeof ws->last_err, "connection to %s refused", ws->addr);
    else if (err == ENETUNREACH || err == EHOSTUNREACH)
        snprintf(ws->last_err, sizeof ws->last_err, "%s is unreachable (%s)", ws->addr,
                 strerror(err));
    else
        snprintf(ws->last_err, sizeof ws->last_err, "connection to %s failed (%s)", ws->addr,
                 why ? why : strerror(err));
}

static void tls_failed(struct tl_ws *ws, long v, const char *why)
{
    const char *h = ws->url.host;
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        end_with(ws, TL_WS_FAIL_TLS, 0, "%s: the certificate names other hosts", h);
    } else if (v == X509_V_ERR_CERT_HAS_EXPIRED) {
        end_with(ws, TL_WS_FAIL_TLS, 0, "agent certificate for %s has expired", h);
    } else if (v == X509_V_ERR_CERT_NOT_YET_VALID) {
        end_with(ws, TL_WS_FAIL_TLS, 0, "agent certificate for %s is not valid yet", h);
    } else if (v != X509_V_OK) {
        end_with(ws, TL_WS_FAIL_TLS, 0, "agent certificate for %s is not trusted (%s)", h,
                 X509_verify_cert_error_string(v));
    } else {
        static const char pre[] = "tls handshake failed: ";
        const char *r = why && !strncmp(why, pre, sizeof pre - 1) ? why + sizeof pre - 1
                        : why                                     ? why
                                                                  : "unknown";
        bool plain = strstr(r, "wrong version number") || strstr(r, "packet length too long");
        end_with(ws, TL_WS_FAIL_TLS, 0, "TLS handshake with %s (%s) failed: %s%s", h, ws->addr, r,
                 plain ? " (the server does not speak TLS there: ws:// instead of wss://?)" : "");
    }
}

static void s_tcp(struct tl_net_stream *s, void *arg)
{
    (void)s;
    struct tl_ws *ws = arg;
    ws->tcp_up = true;
    step(ws, TL_WS_STEP_CONNECTED, ws->addr);
}

static void s_connect(struct tl_net_stream *s, int err, const char *why, void *arg)
{
    struct tl_ws *ws = arg;
    if (ws->st != WS_CONNECTING)
        return;
    if (err) {
        long v = tl_net_stream_tls_verify(s);
        ws->s = NULL;
        if (err == EPROTO) {
            tls_failed(ws, v, why);
            return;
        }
        if (err == ECONNRESET && ws->tcp_up) {
            end_with(ws, TL_WS_FAIL_TLS, 0,
                     "%s (%s) closed the connection during the TLS handshake", ws->url.host,
                     ws->addr);
            return;
        }
        connect_why(ws, err, why);
        step(ws, TL_WS_STEP_CONNECT_FAILED, ws->last_err);
        ws->cur++;
        try_next(ws);
        return;
    }
    if (ws->url.tls) {
        step(ws, TL_WS_STEP_TLS, ws->url.host);
        if (!alive(ws))
            return;
    }
    ws->st = WS_UPGRADING;
    if (!(ws->hbuf = malloc(TL_WS_HANDSHAKE_MAX))) {
        end_with(ws, TL_WS_FAIL_IO, 0, "out of memory");
        return;
    }
    if (tl_net_stream_write(s, ws->req, ws->req_len))
        end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to %s", ws->addr);
}

static void s_read(struct tl_net_stream *s, const char *p, size_t n, void *arg)
{
    (void)s;
    struct tl_ws *ws = arg;
    if (ws->st == WS_UPGRADING)
        handshake_input(ws, p, n);
    else
        feed(ws, p, n);
}

static void s_drain(struct tl_net_stream *s, void *arg)
{
    (void)s;
    struct tl_ws *ws = arg;
    if (pump(ws))
        end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to the agent's connection");
}

static void s_end(struct tl_net_stream *s, int err, const char *why, void *arg)
{
    (void)s;
    struct tl_ws *ws = arg;
    ws->s = NULL;
    switch (ws->st) {
    case WS_UPGRADING:
        end_with(ws, TL_WS_FAIL_HANDSHAKE, 0,
                 "%s (%s) closed the connection before answering the WebSocket upgrade%s%s",
                 ws->url.host, ws->addr, err ? ": " : "", err ? why : "");
        return;
    case WS_OPEN:
        if (err)
            end_with(ws, TL_WS_FAIL_IO, 0, "the connection to the agent broke (%s)", why);
        else
            end_with(ws, TL_WS_FAIL_IO, 0,
                     "the agent closed the connection without a WebSocket close (1006)");
        return;
    case WS_CLOSING:
        if (err)
            end_with(ws, TL_WS_FAIL_IO, 0, "the connection to the agent broke (%s)", why);
        else
            end_with(ws, TL_WS_OK, 0,
                     "closed; the agent dropped the connection without answering the close");
        return;
    default:
        return;
    }
}

static const struct tl_net_stream_cb stream_cb = {
    .on_connect = s_connect,
    .on_tcp = s_tcp,
    .on_read = s_read,
    .on_drain = s_drain,
    .on_end = s_end,
};

static void try_next(struct tl_ws *ws)
{
    while (alive(ws) && ws->cur < ws->naddrs) {
        const struct sockaddr *sa = (const struct sockaddr *)&ws->addrs[ws->cur];
        sa_str(sa, ws->addr, sizeof ws->addr);
        ws->tcp_up = false;
        step(ws, TL_WS_STEP_CONNECTING, ws->addr);
        if (!alive(ws))
            return;
        struct tl_net_stream_cfg cfg = {
            .sa = sa, .tls = ws->url.tls ? ws->tls : NULL, .tls_name = ws->url.host};
        int r = tl_net_stream_connect(&ws->s, ws->loop, &cfg, &stream_cb, ws);
        if (!r)
            return;
        ws->s = NULL;
        connect_why(ws, r, NULL);
        step(ws, TL_WS_STEP_CONNECT_FAILED, ws->last_err);
        ws->cur++;
    }
    end_with(ws, TL_WS_FAIL_CONNECT, 0, "%s", ws->last_err);
}

static void on_resolved(int err, const struct tl_net_targets *tg, void *arg)
{
    struct tl_ws *ws = arg;
    ws->q = NULL;
    if (ws->st != WS_RESOLVING)
        return;
    if (err) {
        const char *h = ws->url.host;
        if (err == ENOENT)
            end_with(ws, TL_WS_FAIL_DNS, 0, "cannot resolve %s (no such name)", h);
        else if (err == ETIMEDOUT)
            end_with(ws, TL_WS_FAIL_DNS, 0, "cannot resolve %s (the DNS did not answer in time)",
                     h);
        else if (err == EIO)
            end_with(ws, TL_WS_FAIL_DNS, 0,
                     "cannot resolve %s (the DNS server failed or refused to answer)", h);
        else
            end_with(ws, TL_WS_FAIL_DNS, 0, "cannot resolve %s (%s)", h, strerror(err));
        return;
    }
    if (!(ws->addrs = calloc(tg->n, sizeof *ws->addrs))) {
        end_with(ws, TL_WS_FAIL_IO, 0, "out of memory");
        return;
    }
    char list[TL_NET_TARGETS_MAX * (INET6_ADDRSTRLEN + 2)] = "";
    for (size_t i = 0; i < tg->n; i++) {
        char ip[INET6_ADDRSTRLEN];
        ip_str((const struct sockaddr *)&tg->v[i].sa, ip, sizeof ip);
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", ip);
    }
    step(ws, TL_WS_STEP_RESOLVED, list);
    char first[INET6_ADDRSTRLEN] = "";
    const char *first_kind = NULL;
    size_t refused = 0;
    for (size_t i = 0; i < tg->n && alive(ws); i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&tg->v[i].sa;
        const char *kind = NULL;
        if (ws->guard && !tl_net_guard_ok(ws->guard, sa, &kind)) {
            char ip[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN + 64];
            ip_str(sa, ip, sizeof ip);
            if (!refused++) {
                memcpy(first, ip, sizeof ip);
                first_kind = kind;
            }
            snprintf(d, sizeof d, "%s (%s)", ip, kind);
            step(ws, TL_WS_STEP_REFUSED, d);
            continue;
        }
        memcpy(&ws->addrs[ws->naddrs++], &tg->v[i].sa, sizeof tg->v[i].sa);
    }
    if (!alive(ws))
        return;
    if (!ws->naddrs) {
        char more[64] = "";
        if (refused > 1)
            snprintf(more, sizeof more, " (and %zu more refused address%s)", refused - 1,
                     refused > 2 ? "es" : "");
        if (host_is_ip(ws))
            end_with(ws, TL_WS_FAIL_GUARD, 0, "%s is %s, which agents may not use", first,
                     first_kind);
        else
            end_with(ws, TL_WS_FAIL_GUARD, 0, "%s resolves to %s, %s%s", ws->url.host, first,
                     first_kind, more);
        return;
    }
    ws->st = WS_CONNECTING;
    try_next(ws);
}

/* ---- the API ---- */

static int build_request(struct tl_ws *ws, const char *const *headers)
{
    uint8_t rnd[16];
    randombytes_buf(rnd, sizeof rnd); /* RFC 6455 §4.1: 16 random bytes, base64 */
    sodium_bin2base64(ws->key, sizeof ws->key, rnd, sizeof rnd, sodium_base64_VARIANT_ORIGINAL);
    if (!(ws->req = malloc(REQ_MAX)))
        return ENOMEM;
    bool v6 = strchr(ws->url.host, ':') != NULL;
    bool dflt = ws->url.port == (ws->url.tls ? 443 : 80);
    char port[8] = "";
    if (!dflt)
        snprintf(port, sizeof port, ":%u", ws->url.port);
    int n = snprintf(ws->req, REQ_MAX,
                     "GET %s HTTP/1.1\r\nHost: %s%s%s%s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     ws->url.path, v6 ? "[" : "", ws->url.host, v6 ? "]" : "", port, ws->key);
    size_t len = (size_t)n;
    for (size_t i = 0; headers && headers[i]; i++) {
        if (i == TL_WS_HEADERS_MAX || tl_ws_header_check(headers[i], NULL))
            return EINVAL;
        size_t hl = strlen(headers[i]);
        if (len + hl + 4 >= REQ_MAX)
            return EINVAL;
        memcpy(ws->req + len, headers[i], hl);
        memcpy(ws->req + len + hl, "\r\n", 2);
        len += hl + 2;
    }
    memcpy(ws->req + len, "\r\n", 2);
    ws->req_len = len + 2;
    return 0;
}

int tl_ws_connect(struct tl_ws **wp, uv_loop_t *loop, const struct tl_ws_cfg *cfg,
                  const struct tl_ws_cb *cb, void *arg)
{
    if (!wp || !loop || !cfg || !cb || !cb->on_open || !cb->on_message || !cb->on_close ||
        !cfg->resolver)
        return EINVAL;
    if (sodium_init() < 0)
        return EIO;
    struct tl_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return ENOMEM;
    int r = tl_ws_url_parse(cfg->url, &ws->url);
    if (!r && ws->url.tls && !cfg->tls)
        r = EINVAL;
    if (!r)
        r = build_request(ws, cfg->headers);
    if (r) {
        ws_free(ws);
        return r;
    }
    ws->loop = loop;
    ws->cb = *cb;
    ws->arg = arg;
    ws->guard = cfg->guard;
    ws->resolver = cfg->resolver;
    ws->tls = cfg->tls;
    ws->timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEF_TIMEOUT;
    ws->ping_ms = cfg->ping_interval_ms ? cfg->ping_interval_ms : DEF_PING;
    ws->pong_ms = cfg->pong_timeout_ms ? cfg->pong_timeout_ms : DEF_PONG;
    ws->max_message = cfg->max_message ? cfg->max_message : TL_WS_MESSAGE_MAX;
    ws->max_sendq = cfg->max_send_queue ? cfg->max_send_queue : TL_WS_SENDQ_MAX;
    ws->st = WS_RESOLVING;
    r = tl_net_resolve(cfg->resolver, ws->url.host, ws->url.port, TL_NET_TCP, on_resolved, ws,
                       &ws->q);
    if (r) {
        ws_free(ws);
        return r;
    }
    uv_timer_init(loop, &ws->tm);
    ws->tm.data = ws;
    arm(ws, ws->timeout_ms);
    *wp = ws;
    return 0;
}

size_t tl_ws_queued(const struct tl_ws *ws)
{
    if (!ws || !ws->ctx)
        return 0;
    return wslay_event_get_queued_msg_length(ws->ctx) + ws->olen + tl_net_stream_unsent(ws->s);
}

int tl_ws_send(struct tl_ws *ws, const char *p, size_t n)
{
    if (!ws || (!p && n))
        return EINVAL;
    if (ws->st != WS_OPEN || !wslay_event_get_write_enabled(ws->ctx))
        return ENOTCONN;
    size_t q = tl_ws_queued(ws);
    if (n > ws->max_sendq || q > ws->max_sendq - n)
        return ENOBUFS;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)(p ? p : ""), n};
    int r = wslay_event_queue_msg(ws->ctx, &m);
    if (r == WSLAY_ERR_NOMEM)
        return ENOMEM;
    if (r)
        return ENOTCONN;
    if (pump(ws))
        end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to the agent's connection");
    return 0;
}

/* RFC 6455 §7.4.1: 1005, 1006 and 1015 are never sent; 1004 and 1014 are reserved, other
 * codes below 3000 unassigned */
static uint16_t sendable(uint16_t c)
{
    if (c == 0 || (c >= 3000 && c <= 4999))
        return c;
    if ((c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1013))
        return c;
    return 1000;
}

void tl_ws_close(struct tl_ws *ws, uint16_t code, const char *reason)
{
    if (!ws)
        return;
    if (ws->st < WS_OPEN) {
        end_with(ws, TL_WS_OK, 0, "closed before the connection opened");
        return;
    }
    if (ws->st != WS_OPEN)
        return;
    ws->st = WS_CLOSING;
    ws->local_close = true;
    ws->close_pending = true;
    ws->close_code = sendable(code);
    size_t rl = reason && ws->close_code ? strlen(reason) : 0;
    if (rl > 123) { /* the control frame's 125 bytes less the code, at a UTF-8 boundary */
        rl = 123;
        while (rl && ((unsigned char)reason[rl] & 0xc0) == 0x80)
            rl--;
    }
    memcpy(ws->close_reason, reason ? reason : "", rl);
    ws->close_reason_len = rl;
    arm(ws, GRACE_MS);
    if (pump(ws))
        end_with(ws, TL_WS_FAIL_IO, 0, "cannot write to the agent's connection");
}

void tl_ws_abort(struct tl_ws *ws)
{
    if (!ws || ws->st == WS_DONE)
        return;
    if (ws->q)
        tl_net_resolve_cancel(ws->q);
    ws->q = NULL;
    tl_net_stream_close(ws->s, 0);
    ws->s = NULL;
    ws->st = WS_DONE;
    if (ws->loop)
        uv_close((uv_handle_t *)&ws->tm, timer_closed);
}

/* ---- ws_int.h ---- */

struct tl_ws *tl_ws__detached(size_t max_message, const struct tl_ws_cb *cb, void *arg,
                              tl_ws_sink *sink)
{
    struct tl_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cb = *cb;
    ws->arg = arg;
    ws->sink = sink;
    ws->max_message = max_message ? max_message : TL_WS_MESSAGE_MAX;
    ws->max_sendq = TL_WS_SENDQ_MAX;
    ws->ping_ms = ws->pong_ms = DEF_PING;
    snprintf(ws->url.host, sizeof ws->url.host, "agent.test");
    if (make_ctx(ws)) {
        ws_free(ws);
        return NULL;
    }
    ws->st = WS_OPEN;
    return ws;
}

void tl_ws__feed(struct tl_ws *ws, const char *p, size_t n)
{
    feed(ws, p, n);
}

void tl_ws__free(struct tl_ws *ws)
{
    if (ws)
        ws_free(ws);
}
