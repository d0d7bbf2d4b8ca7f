/* A store on a fresh SQLite file in a new directory, for the unit tests that want a real
 * file (test_records.c, test_routing.c). Header-only: each test binary gets its own copy. */
#ifndef TL_STORE_TEST_UTIL_H
#define TL_STORE_TEST_UTIL_H

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"

/* tmpl: a mkdtemp template ("/tmp/tl_x_XXXXXX") that fits dir[64]; the file is
 * dir/trunkline.db, with a random key. -1 on any failure. */
static int tmp_store_open(char dir[64], char db[128], struct tl_store **s, const char *tmpl)
{
    struct tl_err err = {0};
    uint8_t key[32];

    if (sodium_init() < 0)
        return -1;
    snprintf(dir, 64, "%s", tmpl);
    if (!mkdtemp(dir))
        return -1;
    snprintf(db, 128, "%s/trunkline.db", dir);
    randombytes_buf(key, sizeof key);
    return tl_store_open(s, db, key, &err) != 0 ? -1 : 0;
}

/* closes the store and removes its file, the WAL and shared-memory files, and the directory */
static void tmp_store_close(const char *dir, const char *db, struct tl_store *s)
{
    char p[160];

    tl_store_close(s);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        unlink(p);
    }
    rmdir(dir);
}

#endif
