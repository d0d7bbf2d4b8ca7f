/* libFuzzer: X-Trunkline-Source (sip/edge.c). Invariants: never reads past the input
 * (ASan), refuses anything over the cap, and an accepted value has a port and an address
 * family, and prints back (transport, address, port) to a value that parses to the same. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip/sip.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1); /* exact size: ASan sees any over-read */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    enum tl_sip_transport tp = TL_SIP_TP_OTHER;
    struct sockaddr_storage sa;
    int r = tl_sip_edge_source_parse(buf, size, &tp, &sa);
    if (size > TL_SIP_EDGE_SOURCE_MAX)
        CHECK(r == E2BIG);
    if (r == 0) {
        CHECK(tp == TL_SIP_TP_TCP || tp == TL_SIP_TP_TLS || tp == TL_SIP_TP_UDP);
        char ip[INET6_ADDRSTRLEN], again[TL_SIP_EDGE_SOURCE_MAX + 1];
        uint16_t port;
        const char *name = tp == TL_SIP_TP_TCP ? "tcp" : tp == TL_SIP_TP_TLS ? "tls" : "udp";
        int n;
        if (sa.ss_family == AF_INET) {
            const struct sockaddr_in *s4 = (const struct sockaddr_in *)&sa;
            CHECK(inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip));
            port = ntohs(s4->sin_port);
            n = snprintf(again, sizeof again, "%s %s:%u", name, ip, port);
        } else {
            CHECK(sa.ss_family == AF_INET6);
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&sa;
            CHECK(inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip));
            port = ntohs(s6->sin6_port);
            n = snprintf(again, sizeof again, "%s [%s]:%u", name, ip, port);
        }
        CHECK(port != 0);
        CHECK(n > 0 && (size_t)n < sizeof again);
        enum tl_sip_transport tp2 = TL_SIP_TP_OTHER;
        struct sockaddr_storage sa2;
        CHECK(tl_sip_edge_source_parse(again, (size_t)n, &tp2, &sa2) == 0);
        CHECK(tp2 == tp && sa2.ss_family == sa.ss_family);
        CHECK(!memcmp(&sa2, &sa,
                      sa.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                              : sizeof(struct sockaddr_in6)));
    }
    free(buf);
    return 0;
}
