/* net/tls: see tls.h. */
#include "net/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/core.h"

struct tl_tls_ctx {
    SSL_CTX *ctx;
};

struct tl_tls {
    SSL *ssl;
    BIO *rb, *wb; /* network side: rb gets socket bytes, wb holds bytes to send */
    bool client, failed;
    char reason[96];
    char why[256];
};

static int ctx_new(struct tl_tls_ctx **cp, const SSL_METHOD *m)
{
    struct tl_tls_ctx *c = calloc(1, sizeof *c);
    if (!c || !(c->ctx = SSL_CTX_new(m))) {
        free(c);
        return ENOMEM;
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(c->ctx, SSL_OP_NO_RENEGOTIATION);
    /* an idle connection (a bridged call between two 20 ms frames, a carrier trunk between
     * requests) gives its ~17 KiB read and write record buffers back: -10 KB RSS per wss
     * call, for a malloc/free per record (bench/README.md) */
    SSL_CTX_set_mode(c->ctx, SSL_MODE_RELEASE_BUFFERS);
    *cp = c;
    return 0;
}

int tl_tls_ctx_server(struct tl_tls_ctx **cp, const char *cert, const char *key)
{
    struct tl_tls_ctx *c;
    int r = ctx_new(&c, TLS_server_method());
    if (r)
        return r;
    SSL_CTX_set_options(c->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(c->ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(c->ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c->ctx) != 1) {
        ERR_clear_error();
        tl_tls_ctx_free(c);
        return EINVAL;
    }
    *cp = c;
    return 0;
}

int tl_tls_ctx_client(struct tl_tls_ctx **cp, const char *ca_file)
{
    struct tl_tls_ctx *c;
    int r = ctx_new(&c, TLS_client_method());
    if (r)
        return r;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_default_verify_paths(c->ctx) != 1)
        tl_warnl("tls", "tls.ca", "reason=\"no system trust store\"");
    if (ca_file && ca_file[0] && SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1) {
        ERR_clear_error();
        tl_tls_ctx_free(c);
        return EINVAL;
    }
    ERR_clear_error();
    *cp = c;
    return 0;
}

void tl_tls_ctx_free(struct tl_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ctx);
    free(c);
}

static int engine_new(struct tl_tls **tp, struct tl_tls_ctx *c, bool client)
{
    struct tl_tls *t = calloc(1, sizeof *t);
    if (!t)
        return ENOMEM;
    t->client = client;
    t->ssl = SSL_new(c->ctx);
    t->rb = BIO_new(BIO_s_mem());
    t->wb = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rb || !t->wb) {
        SSL_free(t->ssl);
        BIO_free(t->rb);
        BIO_free(t->wb);
        free(t);
        ERR_clear_error();
        return ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rb, t->wb); /* the SSL owns both BIOs from here */
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    *tp = t;
    return 0;
}

int tl_tls_server(struct tl_tls **tp, struct tl_tls_ctx *c)
{
    return engine_new(tp, c, false);
}

int tl_tls_client(struct tl_tls **tp, struct tl_tls_ctx *c, const char *name)
{
    if (!name || !name[0])
        return EINVAL;
    struct tl_tls *t;
    int r = engine_new(&t, c, true);
    if (r)
        return r;
    /* RFC 5922 §7.2: the name the operator configured, never one DNS chose; an IP literal
     * is matched against iPAddress SANs and sent as no SNI (RFC 6066 §3) */
    struct in6_addr tmp;
    bool ip = inet_pton(AF_INET, name, &tmp) == 1 || inet_pton(AF_INET6, name, &tmp) == 1;
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                : SSL_set1_host(t->ssl, name) && SSL_set_tlsext_host_name(t->ssl, (char *)name);
    if (ok != 1) {
        ERR_clear_error();
        tl_tls_free(t);
        return EINVAL;
    }
    *tp = t;
    return 0;
}

void tl_tls_free(struct tl_tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees both BIOs */
    free(t);
}

int tl_tls_feed(struct tl_tls *t, const char *p, size_t n)
{
    return n > (size_t)0x7fffffff || BIO_write(t->rb, p, (int)n) != (int)n ? EIO : 0;
}

static void fail(struct tl_tls *t)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    snprintf(t->reason, sizeof t->reason, "%s", reason ? reason : "unknown");
    long v = t->client ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (v != X509_V_OK)
        snprintf(t->why, sizeof t->why, "tls certificate verification failed: %s",
                 X509_verify_cert_error_string(v));
    else
        snprintf(t->why, sizeof t->why, "tls handshake failed: %s", t->reason);
    t->failed = true;
    ERR_clear_error();
}

int tl_tls_handshake(struct tl_tls *t)
{
    if (t->failed)
        return EPROTO;
    if (SSL_is_init_finished(t->ssl))
        return 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return 0;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return EAGAIN;
    fail(t);
    return EPROTO;
}

bool tl_tls_done(const struct tl_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

int tl_tls_read(struct tl_tls *t, char *buf, size_t cap, size_t *got)
{
    *got = 0;
    int r = SSL_read_ex(t->ssl, buf, cap, got);
    if (r > 0)
        return 0;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? ECONNRESET : EPROTO;
}

int tl_tls_write(struct tl_tls *t, const char *p, size_t n)
{
    if (!SSL_is_init_finished(t->ssl))
        return EAGAIN;
    while (n) {
        size_t w = 0;
        if (SSL_write_ex(t->ssl, p, n, &w) <= 0) {
            ERR_clear_error();
            return EIO;
        }
        p += w;
        n -= w;
    }
    return 0;
}

size_t tl_tls_pending(struct tl_tls *t, char *buf, size_t cap)
{
    int n = BIO_read(t->wb, buf, cap > 0x7fffffff ? 0x7fffffff : (int)cap);
    return n > 0 ? (size_t)n : 0;
}

const char *tl_tls_why(const struct tl_tls *t)
{
    return t->failed ? t->why : "tls handshake failed";
}

const char *tl_tls_reason(const struct tl_tls *t)
{
    return t->failed ? t->reason : "unknown";
}

long tl_tls_verify_result(const struct tl_tls *t)
{
    return t->client ? SSL_get_verify_result(t->ssl) : X509_V_OK;
}
