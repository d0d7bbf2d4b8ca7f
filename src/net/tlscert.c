#include "net/tlscert.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TL_CERT_DAYS       825 /* the longest validity browsers and many stacks accept */
#define TL_CERT_RENEW_DAYS 30

static void fp_of(X509 *x, char out[100])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = '\0';
    if (!X509_digest(x, EVP_sha256(), md, &n))
        return;
    size_t p = 0;
    for (unsigned i = 0; i < n && p + 4 < 100; i++)
        p += (size_t)snprintf(out + p, 100 - p, "%s%02X", i ? ":" : "", md[i]);
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static EVP_PKEY *load_key(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return k;
}

int tl_tlscert_key_mode(const char *key_path, struct tl_err *err)
{
    struct stat st;
    if (stat(key_path, &st) != 0)
        return tl_err_set(err, errno, 500, "tls", "tls_key", "cannot stat TLS private key %s: %s",
                          key_path, strerror(errno));
    /* Anyone who reads the key can impersonate this gateway to carriers and decrypt
     * recorded TLS (no forward secrecy with RSA key exchange on old peers). Group access
     * stays allowed: Debian's ssl-cert group (0640 keys) is the common way to share a
     * CA-signed key with a service user. */
    if (st.st_mode & S_IRWXO)
        return tl_err_set(err, EPERM, 500, "tls", "tls_key",
                          "TLS private key %s has mode %03o, readable by others: run chmod o-rwx "
                          "%s (or chmod 600)",
                          key_path, (unsigned)(st.st_mode & 0777), key_path);
    return 0;
}

int tl_tlscert_check(const char *cert_path, const char *key_path, char fingerprint[100],
                     struct tl_err *err)
{
    int mr = tl_tlscert_key_mode(key_path, err);
    if (mr && mr != ENOENT)
        return mr;
    X509 *x = load_cert(cert_path);
    EVP_PKEY *k = x ? load_key(key_path) : NULL;
    int ret = 0;
    if (!x)
        ret = tl_err_set(err, EINVAL, 500, "tls", "tls_cert",
                         "cannot read a PEM certificate from %s", cert_path);
    else if (!k)
        ret = tl_err_set(err, EINVAL, 500, "tls", "tls_key",
                         "cannot read a PEM private key from %s", key_path);
    else if (X509_check_private_key(x, k) != 1)
        ret = tl_err_set(err, EINVAL, 500, "tls", "tls_key",
                         "the private key in %s does not match the certificate in %s", key_path,
                         cert_path);
    if (!ret)
        fp_of(x, fingerprint);
    X509_free(x);
    EVP_PKEY_free(k);
    return ret;
}

static bool still_good(const char *cert_path, const char *key_path, char fp[100])
{
    struct tl_err e;
    if (tl_tlscert_check(cert_path, key_path, fp, &e))
        return false;
    X509 *x = load_cert(cert_path);
    if (!x)
        return false;
    time_t soon = time(NULL) + (time_t)TL_CERT_RENEW_DAYS * 86400;
    bool ok = X509_cmp_time(X509_get0_notAfter(x), &soon) > 0;
    X509_free(x);
    return ok;
}

/* write to a temp file, fsync, rename: a crash never leaves half a key behind */
static int write_pem(const char *path, mode_t mode, EVP_PKEY *k, X509 *x)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return errno;
    }
    int ok = k ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    fclose(f);
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return EIO;
    }
    return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex)
        return EINVAL;
    int ok = X509_add_ext(x, ex, -1);
    X509_EXTENSION_free(ex);
    return ok ? 0 : EINVAL;
}

int tl_tlscert_ensure(const char *data_dir, const char *host, char cert_path[512],
                      char key_path[512], char fingerprint[100], bool *created, struct tl_err *err)
{
    char dir[512];
    *created = false;
    if (snprintf(dir, sizeof dir, "%s/tls", data_dir) >= (int)sizeof dir)
        return tl_err_set(err, ENAMETOOLONG, 500, "tls", "data_dir", "data_dir is too long");
    snprintf(cert_path, 512, "%.500s/cert.pem", dir);
    snprintf(key_path, 512, "%.500s/key.pem", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return tl_err_set(err, errno, 500, "tls", "data_dir", "cannot create %s: %s", dir,
                          strerror(errno));
    struct stat kst;
    if (stat(key_path, &kst) == 0) {
        int mr = tl_tlscert_key_mode(key_path, err);
        if (mr)
            return mr;
    }
    if (still_good(cert_path, key_path, fingerprint))
        return 0;

    int ret = 0;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!k || !x) {
        ret = tl_err_set(err, ENOMEM, 500, "tls", "", "cannot generate a key pair");
        goto out;
    }
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive serial (RFC 5280 §4.1.2.2) */
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)TL_CERT_DAYS * 86400);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    char cn[64];
    tl_strlcpy(cn, host, sizeof cn); /* CN is capped at 64 bytes; the SAN carries the name */
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               (const unsigned char *)"trunkline self-made", -1, -1, 0);
    X509_set_issuer_name(x, name);
    /* the public host first (an IP literal as an iPAddress entry: RFC 6125 §6.2.1 never
     * matches an IP against a dNSName), then the loopback names, each once */
    char san[400];
    struct in6_addr ip;
    bool lit = inet_pton(AF_INET, host, &ip) == 1 || inet_pton(AF_INET6, host, &ip) == 1;
    bool loop = !strcmp(host, "localhost") || !strcmp(host, "127.0.0.1") || !strcmp(host, "::1");
    snprintf(san, sizeof san, "%s%s%sDNS:localhost,IP:127.0.0.1,IP:::1",
             loop  ? ""
             : lit ? "IP:"
                   : "DNS:",
             loop ? "" : host, loop ? "" : ",");
    if (add_ext(x, NID_subject_alt_name, san) || add_ext(x, NID_basic_constraints, "CA:FALSE") ||
        add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") || !X509_sign(x, k, EVP_sha256())) {
        ret = tl_err_set(err, EINVAL, 500, "tls", "public_host",
                         "cannot make a certificate for host \"%s\"", host);
        goto out;
    }
    if ((ret = write_pem(key_path, 0600, k, NULL)) || (ret = write_pem(cert_path, 0644, NULL, x))) {
        tl_err_set(err, ret, 500, "tls", "data_dir", "cannot write the certificate in %s: %s", dir,
                   strerror(ret));
        goto out;
    }
    fp_of(x, fingerprint);
    *created = true;
out:
    X509_free(x);
    EVP_PKEY_free(k);
    return ret;
}
