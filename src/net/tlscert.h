/* The self-made TLS certificate: carriers need a SIP/TLS endpoint from the first start,
 * before an operator has a CA-signed certificate. Kept in <data_dir>/tls and reused. */
#ifndef TL_TLSCERT_H
#define TL_TLSCERT_H

#include "core/core.h"

/* Ensures <data_dir>/tls/cert.pem and key.pem exist and are valid for ≥ 30 more days,
 * making a new P-256 self-signed certificate (SAN: host, localhost, 127.0.0.1, ::1) when
 * not. Writes the chosen paths and the SHA-256 fingerprint ("AB:CD:…"). */
int tl_tlscert_ensure(const char *data_dir, const char *host, char cert_path[512],
                      char key_path[512], char fingerprint[100], bool *created, struct tl_err *err);
/* 0, or EPERM (with the chmod to run in err) for a private key file others may read;
 * stat's errno when it is missing. */
int tl_tlscert_key_mode(const char *key_path, struct tl_err *err);
/* Checks a configured certificate/key pair loads and matches, and that the key file is
 * not open to others (tl_tlscert_key_mode). */
int tl_tlscert_check(const char *cert_path, const char *key_path, char fingerprint[100],
                     struct tl_err *err);

#endif
