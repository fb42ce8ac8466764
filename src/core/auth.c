/* auth.c: GitHub App JWTs signed RS256 with OpenSSL libcrypto (pure: the clock is handed in). */
#include "runnerd/core/auth.h"

#include <inttypes.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runnerd/core/common.h"

struct rd_auth_key {
    EVP_PKEY *pkey;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *rd_base64url_encode(const void *data, size_t len)
{
    const unsigned char *p = data;
    char *out = rd_xmalloc((len + 2) / 3 * 4 + 1);
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int rd_base64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return RD_EINVAL;
    unsigned char *buf = rd_xmalloc(len / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(buf);
            return RD_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

/* Refuse to prompt for a passphrase: the daemon has no terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int rd_auth_key_load(const char *pem, size_t len, rd_auth_key_t **out)
{
    *out = NULL;
    if (pem == NULL || len == 0 || len > INT32_MAX)
        return RD_EINVAL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return RD_ENOMEM;
    /* Reads both PKCS#1 (traditional) and PKCS#8 PEM. */
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL)
        return RD_EINVAL;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return RD_EINVAL;
    }
    rd_auth_key_t *k = rd_xcalloc(1, sizeof(*k));
    k->pkey = pkey;
    *out = k;
    return 0;
}

void rd_auth_key_free(rd_auth_key_t *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

/* Sign a JWT whose iss claim is the JSON value ISS (a number or a quoted string). */
static int sign_jwt(const rd_auth_key_t *key, const char *iss, int64_t now_s, char **out_jwt,
                    int64_t *out_exp)
{
    *out_jwt = NULL;
    if (key == NULL || now_s < RD_AUTH_JWT_BACKDATE_S)
        return RD_EINVAL;
    int64_t iat = now_s - RD_AUTH_JWT_BACKDATE_S;
    int64_t exp = now_s + RD_AUTH_JWT_LIFETIME_S;

    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char claims[256];
    int n = snprintf(claims, sizeof(claims), "{\"iat\":%" PRId64 ",\"exp\":%" PRId64 ",\"iss\":%s}",
                     iat, exp, iss);
    if (n < 0 || (size_t)n >= sizeof(claims))
        return RD_ERANGE;

    char *h64 = rd_base64url_encode(header, sizeof(header) - 1);
    char *c64 = rd_base64url_encode(claims, (size_t)n);
    char *signing_input = rd_xasprintf("%s.%s", h64, c64);
    free(h64);
    free(c64);

    int rc = RD_EIO;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        rc = RD_ENOMEM;
        goto cleanup;
    }
    /* RS256 = RSASSA-PKCS1-v1_5 with SHA-256, the RSA default padding. */
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) != 1)
        goto cleanup;
    if (EVP_DigestSign(ctx, NULL, &siglen, (const unsigned char *)signing_input,
                       strlen(signing_input)) != 1)
        goto cleanup;
    sig = rd_xmalloc(siglen);
    if (EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)signing_input,
                       strlen(signing_input)) != 1)
        goto cleanup;

    char *s64 = rd_base64url_encode(sig, siglen);
    *out_jwt = rd_xasprintf("%s.%s", signing_input, s64);
    free(s64);
    if (out_exp)
        *out_exp = exp;
    rc = 0;

cleanup:
    EVP_MD_CTX_free(ctx);
    free(sig);
    free(signing_input);
    return rc;
}

int rd_auth_app_jwt(const rd_auth_key_t *key, int64_t app_id, int64_t now_s, char **out_jwt,
                    int64_t *out_exp)
{
    *out_jwt = NULL;
    if (app_id <= 0)
        return RD_EINVAL;
    char iss[32];
    snprintf(iss, sizeof(iss), "%" PRId64, app_id);
    return sign_jwt(key, iss, now_s, out_jwt, out_exp);
}

int rd_auth_app_jwt_client(const rd_auth_key_t *key, const char *client_id, int64_t now_s,
                           char **out_jwt, int64_t *out_exp)
{
    *out_jwt = NULL;
    size_t n = client_id ? strlen(client_id) : 0;
    if (n == 0 || n > 100)
        return RD_EINVAL;
    /* Written into the JSON as is: only characters that need no escaping. */
    for (size_t i = 0; i < n; i++) {
        char ch = client_id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return RD_EINVAL;
    }
    char iss[128];
    snprintf(iss, sizeof(iss), "\"%s\"", client_id);
    return sign_jwt(key, iss, now_s, out_jwt, out_exp);
}
