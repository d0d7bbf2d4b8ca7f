/* secrets: the master key, sealing of secrets at rest, API token generation and hashing.
 *
 * One 32-byte master key (data_dir/master.key) protects everything: trunk passwords and
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
