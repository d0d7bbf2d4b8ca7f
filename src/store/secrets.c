/* secrets: the master key, sealing of secrets at rest, API token generation and hashing.
 *
 * One 32-byte master key (TRUNKLINE_MASTER_KEY, master_key_file or data_dir/master.key)
 * protects everything: trunk passwords and
 * agent header values are sealed with XChaCha20-Poly1305 (random 192-bit nonces, so no
 * nonce bookkeeping is needed across restarts or nodes), and API tokens are stored only as
 * a BLAKE2b hash keyed with it, so a stolen database alone yields neither. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "store/store.h"

#define TOKEN_PREFIX     "tlk_"
#define TOKEN_RAW_BYTES  32
#define MASTER_KEY_BYTES 32

static int sodium_ready(void)
{
    /* sodium_init is idempotent and thread-safe; it returns 1 when already done */
    return sodium_init() < 0 ? EIO : 0;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The key file must reach the disk before anything is sealed with it: a key lost to a
 * power cut after the database committed sealed passwords would make them unreadable
 * forever. Hence fsync of the file and of the directory that names it. */
static int create_key(const char *path, const char *data_dir, uint8_t key[32], struct tl_err *err)
{
    int ret = 0, dfd = -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ret = errno;
        if (ret == EEXIST) /* another process won the race; the caller reads its key */
            return ret;
        return tl_err_set(err, ret, 500, "master_key", "", "cannot create master key %s: %s", path,
                          strerror(ret));
    }

    randombytes_buf(key, MASTER_KEY_BYTES);
    ret = write_all(fd, key, MASTER_KEY_BYTES);
    if (ret == 0 && fsync(fd) != 0)
        ret = errno;
    if (close(fd) != 0 && ret == 0)
        ret = errno;
    fd = -1;
    if (ret != 0)
        goto out;

    dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        ret = errno;

out:
    if (dfd >= 0)
        close(dfd);
    if (ret != 0) {
        /* never leave a short or unsynced key behind for the next start to trust */
        unlink(path);
        sodium_memzero(key, MASTER_KEY_BYTES);
        tl_err_set(err, ret, 500, "master_key", "", "cannot create master key %s: %s", path,
                   strerror(ret));
    }
    return ret;
}

static int read_key(int fd, const char *path, uint8_t key[32], struct tl_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return tl_err_set(err, errno, 500, "master_key", "", "cannot stat master key %s: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return tl_err_set(err, EINVAL, 500, "master_key", "", "master key %s is not a regular file",
                          path);
    /* A key others can read decrypts every trunk password: refuse rather than run with
     * it, the same stance ssh takes on private keys. */
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        return tl_err_set(err, EPERM, 500, "master_key", "",
                          "master key %s has mode %03o, readable by group or others: "
                          "run chmod 600 on it",
                          path, (unsigned)(st.st_mode & 0777));
    if (st.st_size != MASTER_KEY_BYTES)
        return tl_err_set(err, EINVAL, 500, "master_key", "",
                          "master key %s has %lld bytes; it must have exactly %d", path,
                          (long long)st.st_size, MASTER_KEY_BYTES);

    size_t got = 0;
    while (got < MASTER_KEY_BYTES) {
        ssize_t r = read(fd, key + got, MASTER_KEY_BYTES - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EINVAL;
            sodium_memzero(key, MASTER_KEY_BYTES);
            return tl_err_set(err, e, 500, "master_key", "", "cannot read master key %s: %s", path,
                              r < 0 ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    return 0;
}

int tl_data_dir_check(const char *data_dir, struct tl_err *err)
{
    struct stat st;
    if (stat(data_dir, &st) != 0)
        return tl_err_set(err, errno, 500, "data_dir", "data_dir", "cannot stat data_dir %s: %s",
                          data_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return tl_err_set(err, ENOTDIR, 500, "data_dir", "data_dir",
                          "data_dir %s is not a directory", data_dir);
    /* Whoever can write the directory can swap trunkline.db, its WAL or the certificate
     * for their own (calls routed to their agent, a key of theirs on our TLS port), or
     * unlink master.key: refuse, as for a readable master key. */
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return tl_err_set(err, EPERM, 500, "data_dir", "data_dir",
                          "data_dir %s has mode %03o, writable by %s: run chmod go-w %s "
                          "(or chmod 700)",
                          data_dir, (unsigned)(st.st_mode & 0777),
                          st.st_mode & S_IWOTH ? "others" : "its group", data_dir);
    return 0;
}

int tl_master_key_load(const char *data_dir, uint8_t key[32], bool *created, struct tl_err *err)
{
    char path[4096];
    int ret;

    if (created)
        *created = false;
    if (sodium_ready() != 0)
        return tl_err_set(err, EIO, 500, "internal", "", "libsodium failed to initialise");
    if (!data_dir || !*data_dir)
        return tl_err_set(err, EINVAL, 500, "master_key", "", "no data directory given");
    if ((size_t)snprintf(path, sizeof path, "%s/master.key", data_dir) >= sizeof path)
        return tl_err_set(err, ENAMETOOLONG, 500, "master_key", "",
                          "data directory path is too long");

    /* two attempts: a concurrent first start may create the file between our open and
     * our O_EXCL create; then we read the key it wrote */
    for (int attempt = 0; attempt < 2; attempt++) {
        /* O_NOFOLLOW: a symlink planted in the data dir must not redirect the key */
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
            ret = read_key(fd, path, key, err);
            close(fd);
            return ret;
        }
        if (errno != ENOENT)
            return tl_err_set(err, errno, 500, "master_key", "", "cannot open master key %s: %s",
                              path, strerror(errno));
        ret = create_key(path, data_dir, key, err);
        if (ret == 0) {
            if (created)
                *created = true;
            return 0;
        }
        if (ret != EEXIST)
            return ret;
    }
    return tl_err_set(err, EIO, 500, "master_key", "", "master key %s keeps changing", path);
}

int tl_seal(const uint8_t key[32], const char *ad, const void *plain, size_t len, uint8_t *out,
            size_t out_cap, size_t *out_len)
{
    unsigned long long clen = 0;
    size_t adlen = ad ? strlen(ad) : 0;

    if (out_len)
        *out_len = 0;
    if (sodium_ready() != 0)
        return EIO;
    if (len > SIZE_MAX - TL_SEAL_OVERHEAD || out_cap < len + TL_SEAL_OVERHEAD)
        return ENOSPC;

    uint8_t *nonce = out;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(
            out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, plain, len,
            (const unsigned char *)ad, adlen, NULL, nonce, key) != 0)
        return EIO;
    if (out_len)
        *out_len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen;
    return 0;
}

int tl_unseal(const uint8_t key[32], const char *ad, const uint8_t *sealed, size_t len, void *plain,
              size_t plain_cap, size_t *plain_len)
{
    unsigned long long mlen = 0;
    size_t adlen = ad ? strlen(ad) : 0;

    if (plain_len)
        *plain_len = 0;
    if (sodium_ready() != 0)
        return EIO;
    if (len < TL_SEAL_OVERHEAD)
        return EBADMSG;
    if (plain_cap < len - TL_SEAL_OVERHEAD)
        return ENOSPC;
    /* fails for a wrong key, a flipped bit, or a ciphertext moved to another row/field
     * (the associated data no longer matches) */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &mlen, NULL, sealed + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, (const unsigned char *)ad, adlen,
            sealed, key) != 0)
        return EBADMSG;
    if (plain_len)
        *plain_len = (size_t)mlen;
    return 0;
}

void tl_token_new(char secret[TL_TOKEN_MAX + 1])
{
    uint8_t raw[TOKEN_RAW_BYTES];

    /* sodium_init failing means no entropy source: abort rather than mint a guessable
     * credential */
    if (sodium_ready() != 0)
        abort();
    randombytes_buf(raw, sizeof raw);
    memcpy(secret, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    sodium_bin2base64(secret + sizeof TOKEN_PREFIX - 1,
                      TL_TOKEN_MAX + 1 - (sizeof TOKEN_PREFIX - 1), raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void tl_token_hash(const uint8_t key[32], const char *secret, uint8_t hash[32])
{
    /* keyed: a database dump alone cannot be used to test guesses offline */
    if (sodium_ready() != 0)
        abort();
    crypto_generichash(hash, 32, (const unsigned char *)secret, strlen(secret), key,
                       MASTER_KEY_BYTES);
}

/* ---- other key sources (issue 13: many nodes share one database, so one key) ---- */

/* Trailing whitespace is the newline an editor or `echo` leaves; inner whitespace is not
 * a key. Hex (64 digits) or base64 (standard or URL-safe, with or without padding) of
 * exactly 32 bytes: anything else, a short key above all, is refused rather than
 * stretched. */
static int parse_key_text(const char *text, size_t len, uint8_t key[32])
{
    size_t got = 0;
    const char *end = NULL;
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};

    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t'))
        len--;
    if (len == 2 * MASTER_KEY_BYTES) {
        if (sodium_hex2bin(key, MASTER_KEY_BYTES, text, len, NULL, &got, &end) == 0 &&
            got == MASTER_KEY_BYTES && end == text + len)
            return 0;
    }
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        end = NULL;
        if (len >= 43 && len <= 44 &&
            sodium_base642bin(key, MASTER_KEY_BYTES, text, len, NULL, &got, &end, variants[i]) ==
                0 &&
            got == MASTER_KEY_BYTES && end == text + len)
            return 0;
    }
    sodium_memzero(key, MASTER_KEY_BYTES);
    return EINVAL;
}

#define KEY_FILE_MAX 128 /* a hex key with CRLF fits; anything longer is not a key */

/* The operator names this file, so symbolic links are followed (secret stores such as
 * Kubernetes mount keys as links); the checks apply to the file finally opened. */
static int read_key_file(const char *path, uint8_t key[32], struct tl_err *err)
{
    char buf[KEY_FILE_MAX + 1];
    size_t got = 0;
    struct stat st;
    int ret = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tl_err_set(err, errno, 500, "master_key", "master_key_file",
                          "cannot open master_key_file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        ret = tl_err_set(err, errno, 500, "master_key", "master_key_file",
                         "cannot stat master_key_file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = tl_err_set(err, EINVAL, 500, "master_key", "master_key_file",
                         "master_key_file %s is not a regular file", path);
        goto out;
    }
    /* as for data_dir/master.key: a key others can read opens every secret */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        ret = tl_err_set(err, EPERM, 500, "master_key", "master_key_file",
                         "master_key_file %s has mode %03o, readable by group or others: run "
                         "chmod 600 on it",
                         path, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    while (got <= KEY_FILE_MAX) {
        ssize_t r = read(fd, buf + got, KEY_FILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ret = tl_err_set(err, errno, 500, "master_key", "master_key_file",
                             "cannot read master_key_file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got == MASTER_KEY_BYTES) {
        memcpy(key, buf, MASTER_KEY_BYTES);
    } else if (got > KEY_FILE_MAX || parse_key_text(buf, got, key) != 0) {
        ret = tl_err_set(err, EINVAL, 500, "master_key", "master_key_file",
                         "master_key_file %s holds no 32-byte key: it must be the 32 bytes "
                         "themselves, 64 hex digits or base64 of 32 bytes (a trailing newline "
                         "is fine)",
                         path);
    }
out:
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return ret;
}

const char *tl_master_key_source_name(enum tl_master_key_source src)
{
    switch (src) {
    case TL_MASTER_KEY_ENV:
        return "env";
    case TL_MASTER_KEY_FILE:
        return "master_key_file";
    case TL_MASTER_KEY_DATA_DIR:
        break;
    }
    return "data_dir";
}

int tl_master_key_resolve(const struct tl_master_key_opts *o, uint8_t key[32],
                          enum tl_master_key_source *src, bool *created, struct tl_err *err)
{
    if (created)
        *created = false;
    if (sodium_ready() != 0)
        return tl_err_set(err, EIO, 500, "internal", "", "libsodium failed to initialise");
    if (o->env_value && *o->env_value) {
        *src = TL_MASTER_KEY_ENV;
        /* the value is a secret: the message names the variable, never echoes it */
        if (parse_key_text(o->env_value, strlen(o->env_value), key) != 0)
            return tl_err_set(err, EINVAL, 500, "master_key", TL_MASTER_KEY_ENV_NAME,
                              TL_MASTER_KEY_ENV_NAME " holds no 32-byte key: it must be 64 hex "
                                                     "digits or base64 of 32 bytes");
        return 0;
    }
    if (o->key_file && *o->key_file) {
        *src = TL_MASTER_KEY_FILE;
        return read_key_file(o->key_file, key, err);
    }
    *src = TL_MASTER_KEY_DATA_DIR;
    if (!o->create) {
        char path[4096];
        struct stat st;
        if ((size_t)snprintf(path, sizeof path, "%s/master.key", o->data_dir ? o->data_dir : "") >=
            sizeof path)
            return tl_err_set(err, ENAMETOOLONG, 500, "master_key", "",
                              "data directory path is too long");
        if (lstat(path, &st) != 0)
            return tl_err_set(
                err, ENOENT, 500, "master_key", "",
                "no master key: %s does not exist, and neither " TL_MASTER_KEY_ENV_NAME
                " nor master_key_file is set",
                path);
    }
    return tl_master_key_load(o->data_dir, key, created, err);
}

void tl_master_key_id(const uint8_t key[32], char out[TL_KEY_ID_LEN + 1])
{
    /* a keyed hash of a fixed context: comparable between nodes, and it tells nothing of
     * the key (a prefix of the key would hand out 32 of its bits) */
    static const char ctx[] = "trunkline master key id v1";
    uint8_t h[32];
    if (sodium_ready() != 0)
        abort();
    crypto_generichash(h, sizeof h, (const unsigned char *)ctx, sizeof ctx - 1, key,
                       MASTER_KEY_BYTES);
    sodium_bin2hex(out, TL_KEY_ID_LEN + 1, h, TL_KEY_ID_LEN / 2);
}

void tl_master_key_derive(const uint8_t key[32], uint64_t id, const char ctx[8], uint8_t out[32])
{
    if (sodium_ready() != 0)
        abort();
    crypto_kdf_derive_from_key(out, 32, id, ctx, key);
}

/* The check is the key id in clear (so a refusal can say which key the database wants)
 * followed by a fixed text sealed with the key; the id is in the associated data, so
 * neither half can be swapped for another key's. */
#define CHECK_PLAIN "trunkline store key check v1"
#define CHECK_AD    "store_meta:" TL_STORE_META_KEY_CHECK ":"
_Static_assert(TL_KEY_CHECK_LEN == TL_KEY_ID_LEN + sizeof CHECK_PLAIN - 1 + TL_SEAL_OVERHEAD,
               "store.h sizes the key check for this plaintext");

int tl_key_check_make(const uint8_t key[32], uint8_t out[TL_KEY_CHECK_LEN])
{
    char ad[sizeof CHECK_AD + TL_KEY_ID_LEN];
    char id[TL_KEY_ID_LEN + 1];
    size_t n = 0;
    tl_master_key_id(key, id);
    memcpy(out, id, TL_KEY_ID_LEN);
    snprintf(ad, sizeof ad, "%s%s", CHECK_AD, id);
    return tl_seal(key, ad, CHECK_PLAIN, sizeof CHECK_PLAIN - 1, out + TL_KEY_ID_LEN,
                   TL_KEY_CHECK_LEN - TL_KEY_ID_LEN, &n);
}

int tl_key_check_verify(const uint8_t key[32], const uint8_t *check, size_t len,
                        char found_id[TL_KEY_ID_LEN + 1])
{
    char ad[sizeof CHECK_AD + TL_KEY_ID_LEN];
    char plain[sizeof CHECK_PLAIN];
    size_t n = 0;
    tl_strlcpy(found_id, "unknown", TL_KEY_ID_LEN + 1);
    if (!check || len != TL_KEY_CHECK_LEN)
        return EBADMSG;
    for (size_t i = 0; i < TL_KEY_ID_LEN; i++)
        if (!strchr("0123456789abcdef", check[i]) || !check[i])
            return EBADMSG;
    memcpy(found_id, check, TL_KEY_ID_LEN);
    found_id[TL_KEY_ID_LEN] = '\0';
    snprintf(ad, sizeof ad, "%s%s", CHECK_AD, found_id);
    if (tl_unseal(key, ad, check + TL_KEY_ID_LEN, len - TL_KEY_ID_LEN, plain, sizeof plain, &n) !=
            0 ||
        n != sizeof CHECK_PLAIN - 1 || memcmp(plain, CHECK_PLAIN, n) != 0)
        return EBADMSG;
    return 0;
}
