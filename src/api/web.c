/* web: lookup in the embedded file table (api/web.h). */
#include "api/web.h"

#include <string.h>

const struct tl_web_file *tl_web_find(const char *url)
{
    if (!url)
        return NULL;
    if (strcmp(url, "/") == 0)
        url = "/index.html";
    for (size_t i = 0; i < tl_web_n_files; i++)
        if (strcmp(tl_web_files[i].path, url) == 0)
            return &tl_web_files[i];
    return NULL;
}

int tl_web_etag_matches(const char *inm, const char *etag)
{
    if (!inm)
        return 0;
    size_t el = strlen(etag);
    /* a comma-separated list of entity tags, each possibly weak ("W/…"): weak comparison
     * is what RFC 9110 §13.1.2 asks of If-None-Match */
    const char *p = inm;
    while (*p) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        size_t n = strcspn(p, ",");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && memcmp(p, etag, el) == 0)
            return 1;
        p += strcspn(p, ",");
    }
    return 0;
}
