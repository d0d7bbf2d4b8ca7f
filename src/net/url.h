/* net/url: the URLs users give us for things we connect to — agent WebSocket URLs
 * (ws://, wss://) and, later, webhook and TwiML voice URLs (http://, https://). One
 * parser, strict, so that what is validated at save is exactly what is connected to. */
#ifndef TL_NET_URL_H
#define TL_NET_URL_H

#include <stdbool.h>
#include <stdint.h>

#define TL_URL_MAX      2048
#define TL_URL_HOST_MAX 253

struct tl_url {
    char scheme[8];                 /* "ws", "wss", "http", "https" (lowercase) */
    bool tls;                       /* wss, https */
    char host[TL_URL_HOST_MAX + 1]; /* a name (lowercase) or an IP literal, no brackets */
    bool host_ip;                   /* host is an IPv4 or IPv6 literal */
    uint16_t port;                  /* given, or 80/443 */
    bool port_given;
    char path[TL_URL_MAX + 2]; /* "/" when absent; the query kept */
};

/* Parses an absolute URL of one of the four schemes (case-insensitive). Refused (EINVAL):
 * other schemes, userinfo (user:pass@ would be shown by every read of the record), a
 * fragment, spaces or control characters, an empty or malformed host, a port outside
 * 1..65535, anything longer than TL_URL_MAX. */
int tl_url_parse(const char *s, struct tl_url *u);
/* true when host (a name or an IP literal) is in list: comma-separated names or IP
 * literals, case-insensitive, spaces around commas allowed; "" matches nothing. */
bool tl_host_in_list(const char *list, const char *host);

#endif
