/* api/dest: checks on the destinations users give us (agent URLs now; webhook and voice
 * URLs later) at the moment they are saved. The same guard runs again before every
 * connection (DNS can change); this one exists so that a mistake — or an attempt — is
 * refused with a clear 400 where the user typed it, not discovered as a failed call. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"

/* getaddrinfo_a with a deadline: the API thread serves everyone, and a resolver that does
 * not answer must not hold it for resolv.conf's timeouts (seconds per attempt) */
#define RESOLVE_DEADLINE_MS 2000

int tl_api_resolve_check(const struct tl_net_guard *g, const char *host, uint16_t port, char *why,
                         size_t cap)
{
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct gaicb req = {.ar_name = host, .ar_service = ps, .ar_request = &hints};
    int rc;
#if defined(__SANITIZE_THREAD__)
    /* glibc starts getaddrinfo_a's threads from inside libc, unseen by ThreadSanitizer,
     * which then crashes in them: the TSan build resolves synchronously (no deadline) */
    rc = getaddrinfo(host, ps, &hints, &req.ar_result);
    if (rc) {
        snprintf(why, cap, "%s", gai_strerror(rc));
        return ENOENT;
    }
#else
    struct gaicb *list[1] = {&req};
    rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc) {
        snprintf(why, cap, "%s", gai_strerror(rc));
        return EIO;
    }
    struct timespec ts = {RESOLVE_DEADLINE_MS / 1000, (RESOLVE_DEADLINE_MS % 1000) * 1000000L};
    const struct gaicb *const wait[1] = {&req};
    rc = gai_suspend(wait, 1, &ts);
    if (rc == EAI_AGAIN || gai_error(&req) == EAI_INPROGRESS) {
        /* still running: cancel, and wait for it to let go of req (on our stack) */
        if (gai_cancel(&req) == EAI_NOTCANCELED)
            while (gai_error(&req) == EAI_INPROGRESS)
                gai_suspend(wait, 1, NULL);
        if (req.ar_result)
            freeaddrinfo(req.ar_result);
        snprintf(why, cap, "no DNS answer within %d ms", RESOLVE_DEADLINE_MS);
        return ETIMEDOUT;
    }
    rc = gai_error(&req);
    if (rc) {
        snprintf(why, cap, "%s", gai_strerror(rc));
        return ENOENT;
    }
#endif
    int ret = 0;
    for (struct addrinfo *ai = req.ar_result; ai; ai = ai->ai_next) {
        const char *kind = NULL;
        if (tl_net_guard_ok(g, ai->ai_addr, &kind))
            continue;
        char ip[INET6_ADDRSTRLEN] = "?";
        getnameinfo(ai->ai_addr, ai->ai_addrlen, ip, sizeof ip, NULL, 0, NI_NUMERICHOST);
        snprintf(why, cap, "%s resolves to %s, %s", host, ip, kind ? kind : "a refused address");
        ret = EPERM;
        break;
    }
    freeaddrinfo(req.ar_result);
    return ret;
}
