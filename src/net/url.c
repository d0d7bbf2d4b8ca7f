/* net/url: see url.h. */
#include "net/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int tl_url_parse(const char *s, struct tl_url *u)
{
    static const struct {
        const char *name;
        bool tls;
        uint16_t port;
    } schemes[] = {
        {"ws", false, 80}, {"wss", true, 443}, {"http", false, 80}, {"https", true, 443}};
    memset(u, 0, sizeof *u);
    if (!s)
        return EINVAL;
    size_t n = strnlen(s, TL_URL_MAX + 1);
    if (n == 0 || n > TL_URL_MAX)
        return EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return EINVAL;
    const char *colon = strstr(s, "://");
    if (!colon)
        return EINVAL;
    size_t sl = (size_t)(colon - s);
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strlen(schemes[i].name) == sl && !strncasecmp(s, schemes[i].name, sl)) {
            memcpy(u->scheme, schemes[i].name, sl + 1);
            u->tls = schemes[i].tls;
            u->port = schemes[i].port;
        }
    if (!u->scheme[0] || strchr(s, '#'))
        return EINVAL;
    const char *p = colon + 3;
    size_t al = strcspn(p, "/?");
    if (memchr(p, '@', al) || al == 0)
        return EINVAL;
    const char *end = p + al, *hs = p, *he, *pc = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', al);
        if (!rb)
            return EINVAL;
        hs = p + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return EINVAL;
            pc = rb + 1;
        }
    } else {
        pc = memchr(p, ':', al);
        he = pc ? pc : end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl > TL_URL_HOST_MAX)
        return EINVAL;
    memcpy(u->host, hs, hl);
    u->host[hl] = '\0';
    struct in6_addr a6;
    struct in_addr a4;
    if (*p == '[') {
        if (inet_pton(AF_INET6, u->host, &a6) != 1)
            return EINVAL;
        u->host_ip = true;
    } else if (inet_pton(AF_INET, u->host, &a4) == 1) {
        u->host_ip = true;
    } else {
        /* RFC 1123 names: letters, digits, '-', '.'; '_' tolerated (SRV-style labels) */
        if (u->host[0] == '.' || u->host[0] == '-' || strstr(u->host, ".."))
            return EINVAL;
        for (size_t i = 0; i < hl; i++) {
            if (!name_char(u->host[i]))
                return EINVAL;
            if (u->host[i] >= 'A' && u->host[i] <= 'Z')
                u->host[i] = (char)(u->host[i] + 32);
        }
        if (u->host[hl - 1] == '.')
            u->host[hl - 1] = '\0'; /* an absolute name: the same host */
    }
    if (pc) {
        unsigned v = 0;
        if (pc + 1 == end)
            return EINVAL;
        for (const char *q = pc + 1; q < end; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (unsigned)(*q - '0')) > 65535)
                return EINVAL;
        }
        if (v == 0)
            return EINVAL;
        u->port = (uint16_t)v;
        u->port_given = true;
    }
    size_t pl = n - (size_t)(end - s);
    if (pl == 0) {
        strcpy(u->path, "/");
    } else {
        if (*end == '?') { /* "host?query": the path is "/" */
            u->path[0] = '/';
            memcpy(u->path + 1, end, pl);
            u->path[pl + 1] = '\0';
        } else {
            memcpy(u->path, end, pl);
            u->path[pl] = '\0';
        }
    }
    return 0;
}

bool tl_host_in_list(const char *list, const char *host)
{
    if (!list || !host || !host[0])
        return false;
    size_t hl = strlen(host);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && t[-1] == ' ')
            t--;
        size_t l = (size_t)(t - p);
        if (l >= 2 && p[0] == '[' && p[l - 1] == ']') { /* "[::1]" names ::1 */
            p++;
            l -= 2;
        }
        if (l == hl && !strncasecmp(p, host, l))
            return true;
        p = e;
    }
    return false;
}
