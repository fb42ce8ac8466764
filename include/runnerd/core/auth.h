/* auth.h: GitHub App authentication, the pure part: RS256 JWTs (OpenSSL libcrypto).
 *
 * A GitHub App proves who it is with a short-lived JWT signed by its private key
 * (github-api.md section 5): header {"alg":"RS256","typ":"JWT"}, claims
 * iat = now - 60 s (clock drift), exp = now + 540 s (GitHub refuses more than
 * 10 minutes), iss = the numeric app id (accepted by github.com and every GHES)
 * or the App's client ID as a string (rd_auth_app_jwt_client).
 * The caller hands in the clock and the key's text; nothing here reads files,
 * time or the network (rd_auth_key_load_file is the I/O shell's, io/configfile.h). */
#ifndef RUNNERD_AUTH_H
#define RUNNERD_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* iat and exp offsets from "now", in seconds. */
#define RD_AUTH_JWT_BACKDATE_S 60
#define RD_AUTH_JWT_LIFETIME_S 540

typedef struct rd_auth_key rd_auth_key_t;

/**
 * Parse an RSA private key from PEM text: PKCS#1 ("BEGIN RSA PRIVATE KEY") or
 * PKCS#8 ("BEGIN PRIVATE KEY"). Encrypted keys, non-RSA keys and garbage give
 * RD_EINVAL (never a passphrase prompt). len may include or omit a final NUL.
 */
int rd_auth_key_load(const char *pem, size_t len, rd_auth_key_t **out);
void rd_auth_key_free(rd_auth_key_t *key);

/**
 * Make a GitHub App JWT for app_id at time now_s (epoch seconds). On success
 * *out_jwt is a heap string "<header>.<claims>.<signature>" (base64url, no
 * padding) the caller frees, and *out_exp (if not NULL) its exp claim, so the
 * caller can renew it before then. The JWT is a secret: never log it.
 */
int rd_auth_app_jwt(const rd_auth_key_t *key, int64_t app_id, int64_t now_s, char **out_jwt,
                    int64_t *out_exp);

/**
 * The same with the App's client ID as the iss claim (a JSON string), as GitHub
 * recommends ("iss: the client ID or application ID"). RD_EINVAL for a client ID
 * that is empty, over 100 characters or not [A-Za-z0-9._-].
 */
int rd_auth_app_jwt_client(const rd_auth_key_t *key, const char *client_id, int64_t now_s,
                           char **out_jwt, int64_t *out_exp);

/** base64url encoding without padding (RFC 7515 appendix C); heap string. */
char *rd_base64url_encode(const void *data, size_t len);
/** Decode base64url (padding optional). Returns 0 and a heap buffer (NUL-terminated, *out_len
 * bytes) or RD_EINVAL. */
int rd_base64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len);

#endif
