/* web: the browser UI's static files, compiled into the binary (scripts/webembed.c writes
 * the table from web/ at build time) and served by the API server at "/". */
#ifndef TL_API_WEB_H
#define TL_API_WEB_H

#include <stddef.h>

struct tl_web_file {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* strong ETag, quotes included */
    const unsigned char *data;
    size_t len;
};
extern const struct tl_web_file tl_web_files[];
extern const size_t tl_web_n_files;

/* The file a URL path names ("/" is "/index.html"), or NULL. Exact matches only: no
 * directory walk, so no path can reach anything but the embedded files. */
const struct tl_web_file *tl_web_find(const char *url);

/* Whether an If-None-Match header value lists etag (or is "*"): the browser's copy is
 * current and the answer is 304 without a body. */
int tl_web_etag_matches(const char *if_none_match, const char *etag);

#endif
