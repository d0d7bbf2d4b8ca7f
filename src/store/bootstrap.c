/* store/bootstrap: what a first start creates — a workspace with the builtin echo agent and
 * the first tokens, printed once. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store.h"

static int has_any_token(const struct tl_token *t, void *arg)
{
    (void)t;
    *(bool *)arg = true;
    return 1; /* one is enough */
}

/* First start: no token exists, so nobody could ever log in. Create what a new user
 * needs and print the secrets once. Keyed on "no token" rather than "no workspace" so a
 * crash between the two steps does not lock the operator out for good. */
int tl_store_bootstrap(struct tl_store *st, const char *api_url)
{
    bool any = false;
    char next[TL_CURSOR_MAX];
    struct tl_page pg = {NULL, 1};
    struct tl_err err = {0};
    int ret = tl_store_token_list(st, NULL, &pg, has_any_token, &any, next, &err);
    if (ret && ret != 1) {
        tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
        return ret;
    }
    if (any)
        return 0;

    struct tl_workspace ws = {0};
    bool have_ws = false;
    int64_t nws = 0;
    if ((ret = tl_store_workspace_count(st, &nws)))
        return ret;
    if (nws == 0) {
        tl_strlcpy(ws.name, "default", sizeof ws.name);
        ws.plan = TL_PLAN_PROFESSIONAL;
        tl_strlcpy(ws.region, "eu", sizeof ws.region);
        if ((ret = tl_store_workspace_create(st, &ws, &err))) {
            tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
            return ret;
        }
        have_ws = true;
    }
    struct tl_token op = {0}, adm = {0};
    char op_secret[TL_TOKEN_MAX + 1], adm_secret[TL_TOKEN_MAX + 1] = "";
    op.role = TL_ROLE_OPERATOR;
    tl_strlcpy(op.name, "bootstrap operator", sizeof op.name);
    if ((ret = tl_store_token_create(st, &op, op_secret, &err))) {
        tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
        return ret;
    }
    if (have_ws) {
        adm.role = TL_ROLE_ADMIN;
        tl_strlcpy(adm.workspace_id, ws.id, sizeof adm.workspace_id);
        tl_strlcpy(adm.name, "bootstrap admin", sizeof adm.name);
        if ((ret = tl_store_token_create(st, &adm, adm_secret, &err))) {
            tl_error("core", "bootstrap.failed", "reason=\"%s\"", err.message);
            return ret;
        }
    }
    /* Straight to stdout, never through the logger: log files are shipped and kept,
     * a terminal is not. */
    printf("\nFirst start: ");
    if (have_ws)
        printf("created workspace \"default\" (%s, plan professional, region eu)\n"
               "with the builtin agent \"echo\".\n",
               ws.id);
    else
        printf("no API token existed; created a new operator token.\n");
    printf("These tokens are shown ONCE and stored only as hashes; keep them now:\n\n");
    printf("  operator token:          %s\n", op_secret);
    if (have_ws)
        printf("  workspace admin token:   %s\n", adm_secret);
    /* the binary is usually not on PATH yet (make, not make install): show its real path */
    char self[512];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    self[sl > 0 ? sl : 0] = '\0';
    printf("\nTry:\n  export TRUNKLINE_URL=%s TRUNKLINE_TOKEN=%s\n"
           "  %s numbers list\n\n",
           api_url, have_ws ? adm_secret : op_secret, sl > 0 ? self : "trunkline");
    fflush(stdout);
    sodium_memzero(op_secret, sizeof op_secret);
    sodium_memzero(adm_secret, sizeof adm_secret);
    return 0;
}
