/* secrets.c: sealing, the master key file, API tokens. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

static const uint8_t key_a[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[32] = {32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                  16, 15, 14, 13, 12, 11, 10, 9,  8,  7,  6,  5,  4,  3,  2,  1};

static char tmpdir[64];

static int setup_dir(void **state)
{
    strcpy(tmpdir, "/tmp/tl_secrets_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/master.key", tmpdir);
    unlink(path);
    return rmdir(tmpdir);
}

static void key_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/master.key", tmpdir);
}

static void test_seal_round_trip(void **state)
{
    const char *msg = "S3cr3t-PLAIN-pw";
    uint8_t sealed[64];
    char plain[64];
    size_t slen = 0, plen = 0;

    assert_int_equal(
        tl_seal(key_a, "pn_x:outbound_password", msg, strlen(msg), sealed, sizeof sealed, &slen),
        0);
    assert_int_equal(slen, strlen(msg) + TL_SEAL_OVERHEAD);
    assert_null(memmem(sealed, slen, msg, strlen(msg)));
    assert_int_equal(
        tl_unseal(key_a, "pn_x:outbound_password", sealed, slen, plain, sizeof plain, &plen), 0);
    assert_int_equal(plen, strlen(msg));
    assert_memory_equal(plain, msg, plen);

    /* fresh nonce per seal: the same secret never gives the same bytes twice */
    uint8_t again[64];
    size_t alen = 0;
    assert_int_equal(
        tl_seal(key_a, "pn_x:outbound_password", msg, strlen(msg), again, sizeof again, &alen), 0);
    assert_memory_not_equal(sealed, again, slen);
}

static void test_seal_wrong_ad_or_key(void **state)
{
    uint8_t sealed[64];
    char plain[64];
    size_t slen = 0, plen = 0;

    assert_int_equal(
        tl_seal(key_a, "pn_1:outbound_password", "pw", 2, sealed, sizeof sealed, &slen), 0);
    /* copied to another row or another column: must not open */
    assert_int_equal(
        tl_unseal(key_a, "pn_2:outbound_password", sealed, slen, plain, sizeof plain, &plen),
        EBADMSG);
    assert_int_equal(
        tl_unseal(key_a, "pn_1:inbound_password", sealed, slen, plain, sizeof plain, &plen),
        EBADMSG);
    assert_int_equal(
        tl_unseal(key_b, "pn_1:outbound_password", sealed, slen, plain, sizeof plain, &plen),
        EBADMSG);
}

static void test_seal_tampered(void **state)
{
    uint8_t sealed[64];
    char plain[64];
    size_t slen = 0, plen = 0;

    assert_int_equal(tl_seal(key_a, "ad", "password", 8, sealed, sizeof sealed, &slen), 0);
    for (size_t i = 0; i < slen; i++) {
        sealed[i] ^= 0x01;
        assert_int_equal(tl_unseal(key_a, "ad", sealed, slen, plain, sizeof plain, &plen), EBADMSG);
        sealed[i] ^= 0x01;
    }
    assert_int_equal(tl_unseal(key_a, "ad", sealed, slen, plain, sizeof plain, &plen), 0);
    /* truncated below nonce + tag */
    assert_int_not_equal(
        tl_unseal(key_a, "ad", sealed, TL_SEAL_OVERHEAD - 1, plain, sizeof plain, &plen), 0);
}

static void test_seal_capacity(void **state)
{
    uint8_t sealed[64];
    size_t slen = 0;
    char plain[4];

    assert_int_equal(
        tl_seal(key_a, "ad", "0123456789", 10, sealed, 10 + TL_SEAL_OVERHEAD - 1, &slen), ENOSPC);
    assert_int_equal(tl_seal(key_a, "ad", "0123456789", 10, sealed, sizeof sealed, &slen), 0);
    assert_int_equal(tl_unseal(key_a, "ad", sealed, slen, plain, sizeof plain, NULL), ENOSPC);
}

static void test_master_key_create_and_reload(void **state)
{
    uint8_t k1[32], k2[32], zero[32] = {0};
    bool created = false;
    struct tl_err err = {0};
    struct stat st;
    char path[128];

    assert_int_equal(tl_master_key_load(tmpdir, k1, &created, &err), 0);
    assert_true(created);
    key_path(path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_memory_not_equal(k1, zero, 32);

    assert_int_equal(tl_master_key_load(tmpdir, k2, &created, &err), 0);
    assert_false(created);
    assert_memory_equal(k1, k2, 32);

    /* the file holds exactly the key */
    uint8_t raw[33];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, raw, sizeof raw), 32);
    close(fd);
    assert_memory_equal(raw, k1, 32);
}

static void test_master_key_refuses_open_mode(void **state)
{
    uint8_t k[32];
    bool created = true;
    struct tl_err err = {0};
    char path[128];

    assert_int_equal(tl_master_key_load(tmpdir, k, &created, &err), 0);
    key_path(path, sizeof path);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(tl_master_key_load(tmpdir, k, &created, &err), EPERM);
    assert_false(created);
    assert_non_null(strstr(err.message, "chmod 600"));
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(tl_master_key_load(tmpdir, k, &created, &err), EPERM);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(tl_master_key_load(tmpdir, k, &created, &err), 0);
}

static void test_master_key_refuses_wrong_size(void **state)
{
    uint8_t k[32];
    struct tl_err err = {0};
    char path[128];

    key_path(path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "short key", 9), 9);
    close(fd);
    assert_int_equal(tl_master_key_load(tmpdir, k, NULL, &err), EINVAL);
    assert_non_null(strstr(err.message, "32"));

    /* a key that is too long is refused as well, not silently truncated */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    uint8_t big[33] = {0};
    assert_int_equal(write(fd, big, sizeof big), 33);
    close(fd);
    assert_int_equal(tl_master_key_load(tmpdir, k, NULL, &err), EINVAL);
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void test_token_format(void **state)
{
    char t1[TL_TOKEN_MAX + 1], t2[TL_TOKEN_MAX + 1];

    tl_token_new(t1);
    tl_token_new(t2);
    assert_int_equal(strlen(t1), 4 + 43);
    assert_int_equal(strncmp(t1, "tlk_", 4), 0);
    for (size_t i = 4; i < strlen(t1); i++)
        assert_true(b64url_char(t1[i]));
    assert_string_not_equal(t1, t2);
}

static void test_token_hash(void **state)
{
    char t[TL_TOKEN_MAX + 1], u[TL_TOKEN_MAX + 1];
    uint8_t h1[32], h2[32], h3[32], h4[32];

    tl_token_new(t);
    tl_token_new(u);
    tl_token_hash(key_a, t, h1);
    tl_token_hash(key_a, t, h2);
    tl_token_hash(key_b, t, h3);
    tl_token_hash(key_a, u, h4);
    assert_memory_equal(h1, h2, 32);
    assert_memory_not_equal(h1, h3, 32);
    assert_memory_not_equal(h1, h4, 32);
}

/* ---- key sources: TRUNKLINE_MASTER_KEY > master_key_file > data_dir/master.key ---- */

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

#define KEY_A_HEX "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
#define KEY_A_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
static const char key_a_hex[] = KEY_A_HEX;
static const char key_a_b64[] = KEY_A_B64;

static void test_key_sources(void **state)
{
    (void)state;
    char file[128], dflt[128];
    uint8_t k[32];
    struct tl_err err = {0};
    enum tl_master_key_source src;
    bool created = true;
    snprintf(file, sizeof file, "%s/shared.key", tmpdir);
    key_path(dflt, sizeof dflt);

    /* the environment: hex and base64, a trailing newline tolerated */
    struct tl_master_key_opts o = {
        .env_value = key_a_hex, .key_file = file, .data_dir = tmpdir, .create = true};
    assert_int_equal(tl_master_key_resolve(&o, k, &src, &created, &err), 0);
    assert_int_equal(src, TL_MASTER_KEY_ENV);
    assert_false(created);
    assert_memory_equal(k, key_a, 32);
    o.env_value = key_a_b64;
    memset(k, 0, sizeof k);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), 0);
    assert_memory_equal(k, key_a, 32);
    o.env_value = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\n"; /* URL-safe, unpadded */
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), 0);
    assert_memory_equal(k, key_a, 32);
    /* neither file was read nor made: the environment wins */
    assert_int_equal(access(dflt, F_OK), -1);

    /* a short or malformed value is refused, and the message does not echo it */
    const char *bad[] = {"0102030405060708090a0b0c0d0e0f10",
                         "zz02030405060708090a0b0c0d0e0f10"
                         "1112131415161718191a1b1c1d1e1f20",
                         "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0e", "secret-password"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.env_value = bad[i];
        assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EINVAL);
        assert_non_null(strstr(err.message, "TRUNKLINE_MASTER_KEY"));
        assert_null(strstr(err.message, bad[i]));
    }

    /* the setting: raw 32 bytes, hex or base64 text */
    o.env_value = NULL;
    write_file(file, key_a, 32, 0600);
    memset(k, 0, sizeof k);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), 0);
    assert_int_equal(src, TL_MASTER_KEY_FILE);
    assert_memory_equal(k, key_a, 32);
    write_file(file, KEY_A_HEX "\r\n", sizeof key_a_hex + 1, 0400);
    memset(k, 0, sizeof k);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), 0);
    assert_memory_equal(k, key_a, 32);
    write_file(file, KEY_A_B64 "\n", sizeof key_a_b64, 0600);
    memset(k, 0, sizeof k);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), 0);
    assert_memory_equal(k, key_a, 32);
    /* readable by the group or others: refused, with the chmod to run */
    write_file(file, key_a, 32, 0640);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EPERM);
    assert_non_null(strstr(err.message, "chmod 600"));
    write_file(file, key_a, 32, 0604);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EPERM);
    /* 31 or 33 bytes, or a hex key one digit short: refused */
    write_file(file, key_a, 31, 0600);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EINVAL);
    write_file(file, key_a_hex, sizeof key_a_hex - 2, 0600);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EINVAL);
    static char big[4096];
    memset(big, 'a', sizeof big);
    write_file(file, big, sizeof big, 0600);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), EINVAL);
    unlink(file);
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), ENOENT);
    assert_non_null(strstr(err.message, "master_key_file"));
    assert_int_equal(access(dflt, F_OK), -1); /* a missing file never falls back */

    /* neither: data_dir/master.key, made only when asked to */
    o.key_file = "";
    o.create = false;
    assert_int_equal(tl_master_key_resolve(&o, k, &src, NULL, &err), ENOENT);
    assert_int_equal(access(dflt, F_OK), -1);
    o.create = true;
    assert_int_equal(tl_master_key_resolve(&o, k, &src, &created, &err), 0);
    assert_int_equal(src, TL_MASTER_KEY_DATA_DIR);
    assert_true(created);
    o.create = false;
    uint8_t k2[32];
    assert_int_equal(tl_master_key_resolve(&o, k2, &src, &created, &err), 0);
    assert_false(created);
    assert_memory_equal(k, k2, 32);
}

static void test_key_id_and_derive(void **state)
{
    (void)state;
    char ia[TL_KEY_ID_LEN + 1], ia2[TL_KEY_ID_LEN + 1], ib[TL_KEY_ID_LEN + 1];
    tl_master_key_id(key_a, ia);
    tl_master_key_id(key_a, ia2);
    tl_master_key_id(key_b, ib);
    assert_int_equal(strlen(ia), TL_KEY_ID_LEN);
    assert_string_equal(ia, ia2);
    assert_string_not_equal(ia, ib);
    /* not a prefix of the key */
    assert_int_not_equal(strncmp(ia, key_a_hex, TL_KEY_ID_LEN), 0);

    uint8_t d1[32], d2[32], d3[32];
    tl_master_key_derive(key_a, 1, "tlnonce1", d1);
    tl_master_key_derive(key_a, 1, "tlnonce1", d2);
    assert_memory_equal(d1, d2, 32);
    assert_memory_not_equal(d1, key_a, 32);
    tl_master_key_derive(key_a, 2, "tlnonce1", d3);
    assert_memory_not_equal(d1, d3, 32);
    tl_master_key_derive(key_a, 1, "tlother_", d3);
    assert_memory_not_equal(d1, d3, 32);
    tl_master_key_derive(key_b, 1, "tlnonce1", d3);
    assert_memory_not_equal(d1, d3, 32);
}

static int teardown_keys(void **state)
{
    char path[128];
    snprintf(path, sizeof path, "%s/shared.key", tmpdir);
    unlink(path);
    return teardown_dir(state);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_seal_wrong_ad_or_key),
        cmocka_unit_test(test_seal_tampered),
        cmocka_unit_test(test_seal_capacity),
        cmocka_unit_test_setup_teardown(test_master_key_create_and_reload, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_master_key_refuses_open_mode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_master_key_refuses_wrong_size, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_key_sources, setup_dir, teardown_keys),
        cmocka_unit_test(test_key_id_and_derive),
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_token_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
