/* sip/edge: the carrier's source as a trusted SIP edge (deploy/kamailio) passes it on, in
 * the X-Trunkline-Source header (sip.h). The node believes it only from an address in
 * sip_edge_addresses, and then keys every per-source decision on it; so the grammar is
 * strict and small: anything unexpected is refused, never guessed at. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "sip/sip.h"
#include "sip/stack.h"

int tl_sip_edge_source_parse(const char *p, size_t len, enum tl_sip_transport *tp,
                             struct sockaddr_storage *sa)
{
    if (!p || !tp || !sa)
        return EINVAL;
    if (len > TL_SIP_EDGE_SOURCE_MAX)
        return E2BIG;
    /* transport: exactly as Kamailio's $proto spells the ones a carrier can reach it on */
    enum tl_sip_transport t;
    if (len >= 4 && !memcmp(p, "tcp ", 4))
        t = TL_SIP_TP_TCP;
    else if (len >= 4 && !memcmp(p, "tls ", 4))
        t = TL_SIP_TP_TLS;
    else if (len >= 4 && !memcmp(p, "udp ", 4))
        t = TL_SIP_TP_UDP;
    else
        return EBADMSG;
    p += 4;
    len -= 4;
    /* host: a dotted IPv4 literal, or an IPv6 literal in brackets; no names */
    char host[INET6_ADDRSTRLEN + 1];
    size_t hl;
    const char *rest;
    bool v6 = len > 0 && p[0] == '[';
    if (v6) {
        const char *e = memchr(p, ']', len);
        if (!e)
            return EBADMSG;
        hl = (size_t)(e - p) - 1;
        if (hl == 0 || hl >= sizeof host)
            return EBADMSG;
        memcpy(host, p + 1, hl);
        rest = e + 1;
    } else {
        const char *e = memchr(p, ':', len);
        if (!e)
            return EBADMSG;
        hl = (size_t)(e - p);
        if (hl == 0 || hl >= sizeof host)
            return EBADMSG;
        memcpy(host, p, hl);
        rest = e;
    }
    /* inet_pton reads a C string: a NUL inside would end the address early */
    if (memchr(host, '\0', hl))
        return EBADMSG;
    host[hl] = '\0';
    size_t left = len - (size_t)(rest - p);
    /* ":" port, 1..65535, decimal digits only, no leading zero */
    if (left < 2 || rest[0] != ':' || left > 6 || rest[1] == '0')
        return EBADMSG;
    unsigned port = 0;
    for (size_t i = 1; i < left; i++) {
        if (rest[i] < '0' || rest[i] > '9')
            return EBADMSG;
        port = port * 10 + (unsigned)(rest[i] - '0');
    }
    if (port == 0 || port > 65535)
        return EBADMSG;
    memset(sa, 0, sizeof *sa);
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        /* inet_pton takes no zone ("%eth0") and no embedded junk */
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return EBADMSG;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
        /* inet_pton AF_INET: exactly four decimal parts, none of inet_aton's octal/hex */
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return EBADMSG;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
    }
    *tp = t;
    return 0;
}

int tl_sip_edge_source(const struct tl_sip_msg *m, struct tl_sip_peer *who)
{
    const struct tl_sip_hdr *h = tl_sip_msg_hdr_find(m, TL_SIP_EDGE_SOURCE_HDR);
    if (!h)
        return ENOENT;
    /* exactly one: a second copy means one arrived from outside and the edge did not
     * strip it, and which one is the edge's cannot be told */
    for (size_t i = 0; i < m->hdrc; i++)
        if (&m->hdrv[i] != h && m->hdrv[i].id == TL_SIP_HDR_OTHER &&
            m->hdrv[i].name.l == sizeof TL_SIP_EDGE_SOURCE_HDR - 1 &&
            !strncasecmp(m->hdrv[i].name.p, TL_SIP_EDGE_SOURCE_HDR, m->hdrv[i].name.l))
            return EBADMSG;
    enum tl_sip_transport tp;
    struct sockaddr_storage sa;
    int r = tl_sip_edge_source_parse(h->val.p, h->val.l, &tp, &sa);
    if (r)
        return r;
    who->tp = tp;
    who->sa = sa;
    return 0;
}
