/* `trunkline token create --data-dir DIR`: a token made on the host, straight in the store,
 * with no API. The way back in when the last operator token is lost (revoked before the
 * API refused that, deleted from a password manager, expired): whoever can read the data
 * directory and its master key already holds every secret in it, so this grants nothing
 * new. Safe while the daemon runs: SQLite in WAL mode takes writers from two processes
 * (BEGIN IMMEDIATE, a busy timeout), PostgreSQL takes them anyway. The store is the
 * daemon's: its store and store_password_file settings, as flags or from the same
 * environment variables. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "daemon/serve.h"
#include "store/db.h"
#include "store/store.h"

static int usage(FILE *f, int code)
{
    fputs("usage: trunkline token create --data-dir DIR [--role operator|admin|member]\n"
          "                              [--workspace ws_…] [--name NAME]\n"
          "                              [--master-key-file FILE]\n"
          "                              [--store STORE] [--store-password-file FILE]\n\n"
          "Creates an API token directly in the store of DIR (the daemon's data_dir), for\n"
          "when no operator token is left. The role defaults to operator; admin and member\n"
          "tokens need --workspace. The secret is printed once.\n"
          "The master key comes from where the daemon takes it: TRUNKLINE_MASTER_KEY, else\n"
          "--master-key-file (or TRUNKLINE_MASTER_KEY_FILE), else DIR/master.key.\n"
          "--store and --store-password-file (default: $TRUNKLINE_STORE,\n"
          "$TRUNKLINE_STORE_PASSWORD_FILE) name the daemon's PostgreSQL store, when it has one.\n",
          f);
    return code;
}

int tl_offline_token_main(int argc, char **argv)
{
    const char *dir = NULL, *role = "operator", *ws = NULL, *name = "recovery";
    const char *key_file = getenv("TRUNKLINE_MASTER_KEY_FILE");
    const char *store = getenv("TRUNKLINE_STORE"),
               *pwfile = getenv("TRUNKLINE_STORE_PASSWORD_FILE");
    if (argc < 1 || strcmp(argv[0], "create") != 0)
        return usage(stderr, 2);
    for (int i = 1; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--data-dir")              ? &dir
                           : !strcmp(argv[i], "--role")                ? &role
                           : !strcmp(argv[i], "--workspace")           ? &ws
                           : !strcmp(argv[i], "--name")                ? &name
                           : !strcmp(argv[i], "--master-key-file")     ? &key_file
                           : !strcmp(argv[i], "--store")               ? &store
                           : !strcmp(argv[i], "--store-password-file") ? &pwfile
                                                                       : NULL;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return usage(stdout, 0);
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "trunkline token: unknown option or missing value: %s\n\n", argv[i]);
            return usage(stderr, 2);
        }
        *dst = argv[++i];
    }
    if (!dir)
        return usage(stderr, 2);
    int r = tl_role_parse(role);
    if (r < 0) {
        fprintf(stderr, "trunkline token: --role must be operator, admin or member\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;

    char db[1100], pw[TL_STORE_PASSWORD_MAX];
    struct tl_err err = {0};
    if (tl_store_target(store, dir, pwfile, db, sizeof db, pw, sizeof pw, &err)) {
        fprintf(stderr, "trunkline token: %s\n", err.message);
        return 1;
    }
    struct stat st;
    /* never create a key or a database here: a typo in --data-dir must not make a second,
     * empty gateway whose token opens nothing */
    if (tl_db_backend_for(db) != &tl_db_pg && stat(db, &st) != 0) {
        fprintf(stderr, "trunkline token: %s has no trunkline.db: give the daemon's data_dir\n",
                dir);
        sodium_memzero(pw, sizeof pw);
        return 1;
    }
    uint8_t key[32];
    struct tl_store *s = NULL;
    int code = 1;
    enum tl_master_key_source ksrc;
    /* the daemon's key sources in the daemon's order, so the token is sealed for the key
     * the daemon runs with; the store's key check refuses any other */
    struct tl_master_key_opts kopts = {.env_value = getenv(TL_MASTER_KEY_ENV_NAME),
                                       .key_file = key_file,
                                       .data_dir = dir,
                                       .create = false};
    int ret = tl_data_dir_check(dir, &err) || tl_master_key_resolve(&kopts, key, &ksrc, NULL, &err);
    if (!ret)
        ret = tl_store_open_ex(&s, db, pw, key, tl_store_latest_version(), &err);
    sodium_memzero(pw, sizeof pw);
    if (ret) {
        fprintf(stderr, "trunkline token: %s\n", err.message);
        goto out;
    }
    struct tl_token t = {0};
    char secret[TL_TOKEN_MAX + 1];
    t.role = (enum tl_role)r;
    tl_strlcpy(t.name, name, sizeof t.name);
    if (ws)
        tl_strlcpy(t.workspace_id, ws, sizeof t.workspace_id);
    if (tl_store_token_create(s, &t, secret, &err)) {
        fprintf(stderr, "trunkline token: %s\n", err.message);
        goto out;
    }
    printf("created %s token %s (%s)\ntoken: %s\n(shown once: store it now)\n",
           tl_role_name(t.role), t.id, t.name, secret);
    sodium_memzero(secret, sizeof secret);
    code = 0;
out:
    if (s)
        tl_store_close(s);
    sodium_memzero(key, sizeof key);
    return code;
}
