/* test_io_auth.c: GitHub App JWT (RS256) and base64url, and the key file (io/configfile.h).
 *
 * Keys are generated in-process with libcrypto (no openssl CLI needed), written
 * as PKCS#1 and PKCS#8 PEM, loaded back through rd_auth_key_load, and every JWT
 * is verified with the public key alone. */
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "runnerd/core/auth.h"
#include "runnerd/core/common.h"
#include "runnerd/io/configfile.h"

static EVP_PKEY *rsa_key;     /* generated once */
static char *pem_pkcs1;       /* "BEGIN RSA PRIVATE KEY" */
static char *pem_pkcs8;       /* "BEGIN PRIVATE KEY" */
static EVP_PKEY *public_only; /* reloaded from a PUBKEY PEM */

static char *bio_to_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = rd_xstrndup(data, (size_t)n);
    BIO_free(bio);
    return s;
}

static int setup(void **state)
{
    (void)state;
    rsa_key = EVP_RSA_gen(2048);
    if (rsa_key == NULL)
        return -1;
    BIO *b = BIO_new(BIO_s_mem());
    if (!PEM_write_bio_PrivateKey_traditional(b, rsa_key, NULL, NULL, 0, NULL, NULL))
        return -1;
    pem_pkcs1 = bio_to_string(b);
    b = BIO_new(BIO_s_mem());
    if (!PEM_write_bio_PrivateKey(b, rsa_key, NULL, NULL, 0, NULL, NULL))
        return -1;
    pem_pkcs8 = bio_to_string(b);
    b = BIO_new(BIO_s_mem());
    if (!PEM_write_bio_PUBKEY(b, rsa_key))
        return -1;
    char *pub = bio_to_string(b);
    b = BIO_new_mem_buf(pub, -1);
    public_only = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    free(pub);
    return public_only ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(public_only);
    free(pem_pkcs1);
    free(pem_pkcs8);
    return 0;
}

static void test_base64url(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < RD_ARRAY_SIZE(v); i++) {
        char *e = rd_base64url_encode(v[i].in, strlen(v[i].in));
        assert_string_equal(e, v[i].out);
        free(e);
        unsigned char *d;
        size_t dl;
        assert_int_equal(rd_base64url_decode(v[i].out, strlen(v[i].out), &d, &dl), 0);
        assert_int_equal(dl, strlen(v[i].in));
        assert_memory_equal(d, v[i].in, dl);
        free(d);
    }
    unsigned char *d;
    size_t dl;
    assert_int_equal(rd_base64url_decode("Zm9vYg==", 8, &d, &dl), 0);
    assert_string_equal((char *)d, "foob");
    free(d);
    assert_int_equal(rd_base64url_decode("Zm+v", 4, &d, &dl), RD_EINVAL);
    assert_null(d);
    assert_int_equal(rd_base64url_decode("Z", 1, &d, &dl), RD_EINVAL);
}

/* Split a JWT, check header and claims text (iss = ISS as JSON), verify the
 * signature with the public key. */
static void check_jwt_iss(const char *jwt, const char *iss, int64_t now)
{
    const char *d1 = strchr(jwt, '.');
    assert_non_null(d1);
    const char *d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    assert_null(strchr(jwt, '='));
    assert_null(strchr(jwt, '+'));
    assert_null(strchr(jwt, '/'));

    unsigned char *hdr, *claims, *sig;
    size_t hl, cl, sl;
    assert_int_equal(rd_base64url_decode(jwt, (size_t)(d1 - jwt), &hdr, &hl), 0);
    assert_int_equal(rd_base64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &claims, &cl), 0);
    assert_int_equal(rd_base64url_decode(d2 + 1, strlen(d2 + 1), &sig, &sl), 0);
    assert_string_equal((char *)hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}");
    char want[200];
    snprintf(want, sizeof(want), "{\"iat\":%lld,\"exp\":%lld,\"iss\":%s}", (long long)(now - 60),
             (long long)(now + 540), iss);
    assert_string_equal((char *)claims, want);
    assert_int_equal(sl, 256); /* 2048-bit RSA */

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, public_only), 1);
    assert_int_equal(EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)jwt, (size_t)(d2 - jwt)),
                     1);
    EVP_MD_CTX_free(ctx);

    /* A flipped byte in the claims fails verification. */
    char *bad = rd_xstrdup(jwt);
    bad[d1 - jwt + 3] = bad[d1 - jwt + 3] == 'A' ? 'B' : 'A';
    ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, public_only), 1);
    assert_int_not_equal(
        EVP_DigestVerify(ctx, sig, sl, (const unsigned char *)bad, (size_t)(d2 - jwt)), 1);
    EVP_MD_CTX_free(ctx);
    free(bad);
    free(hdr);
    free(claims);
    free(sig);
}

static void check_jwt(const char *jwt, int64_t app_id, int64_t now)
{
    char iss[32];
    snprintf(iss, sizeof(iss), "%lld", (long long)app_id);
    check_jwt_iss(jwt, iss, now);
}

static void jwt_with_pem(const char *pem, size_t len)
{
    rd_auth_key_t *key = NULL;
    assert_int_equal(rd_auth_key_load(pem, len, &key), 0);
    assert_non_null(key);
    char *jwt = NULL;
    int64_t exp = 0;
    const int64_t now = 1764446400; /* 2025-11-29T20:00:00Z */
    assert_int_equal(rd_auth_app_jwt(key, 123456, now, &jwt, &exp), 0);
    assert_int_equal(exp, now + 540);
    assert_true(exp - (now - 60) <= 600);
    check_jwt(jwt, 123456, now);
    free(jwt);
    rd_auth_key_free(key);
}

static void test_jwt_pkcs1(void **state)
{
    (void)state;
    assert_non_null(strstr(pem_pkcs1, "BEGIN RSA PRIVATE KEY"));
    jwt_with_pem(pem_pkcs1, strlen(pem_pkcs1));
}

static void test_jwt_pkcs8(void **state)
{
    (void)state;
    assert_non_null(strstr(pem_pkcs8, "BEGIN PRIVATE KEY"));
    jwt_with_pem(pem_pkcs8, strlen(pem_pkcs8) + 1); /* with its NUL */
}

static void test_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/rd-test-auth-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pem_pkcs8, strlen(pem_pkcs8)), (ssize_t)strlen(pem_pkcs8));
    close(fd);
    rd_auth_key_t *key = NULL;
    assert_int_equal(rd_auth_key_load_file(path, &key), 0);
    char *jwt = NULL;
    assert_int_equal(rd_auth_app_jwt(key, 7, 2000000000, &jwt, NULL), 0);
    check_jwt(jwt, 7, 2000000000);
    free(jwt);
    rd_auth_key_free(key);
    unlink(path);
    assert_int_equal(rd_auth_key_load_file(path, &key), RD_ENOENT);
    assert_null(key);
}

static void test_bad_keys(void **state)
{
    (void)state;
    rd_auth_key_t *key = (rd_auth_key_t *)&key;
    const char *garbage = "-----BEGIN RSA PRIVATE KEY-----\nnot base64 at all!\n"
                          "-----END RSA PRIVATE KEY-----\n";
    assert_int_equal(rd_auth_key_load(garbage, strlen(garbage), &key), RD_EINVAL);
    assert_null(key);
    assert_int_equal(rd_auth_key_load("", 0, &key), RD_EINVAL);
    assert_int_equal(rd_auth_key_load("hello", 5, &key), RD_EINVAL);
    /* Truncated PEM. */
    assert_int_equal(rd_auth_key_load(pem_pkcs1, strlen(pem_pkcs1) / 2, &key), RD_EINVAL);
    assert_null(key);

    /* A public key is not a private key. */
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, rsa_key), 1);
    char *pub = bio_to_string(b);
    assert_int_equal(rd_auth_key_load(pub, strlen(pub), &key), RD_EINVAL);
    free(pub);

    /* An encrypted key fails without prompting for a passphrase. */
    b = BIO_new(BIO_s_mem());
    assert_int_equal(
        PEM_write_bio_PKCS8PrivateKey(b, rsa_key, EVP_aes_128_cbc(), "pw", 2, NULL, NULL), 1);
    char *enc = bio_to_string(b);
    assert_int_equal(rd_auth_key_load(enc, strlen(enc), &key), RD_EINVAL);
    free(enc);

    /* GitHub App keys are RSA; an EC key is refused. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL), 1);
    char *ecpem = bio_to_string(b);
    assert_int_equal(rd_auth_key_load(ecpem, strlen(ecpem), &key), RD_EINVAL);
    assert_null(key);
    free(ecpem);
    EVP_PKEY_free(ec);
}

/* GitHub App JWT by client ID (issue 14 item 6): iss is the client ID as a JSON
 * string, iat/exp as for an app id; client IDs that would need escaping are refused. */
static void test_jwt_client_id(void **state)
{
    (void)state;
    rd_auth_key_t *key = NULL;
    assert_int_equal(rd_auth_key_load(pem_pkcs8, strlen(pem_pkcs8), &key), 0);
    const int64_t now = 1764446400;
    char *jwt = NULL;
    int64_t exp = 0;
    assert_int_equal(rd_auth_app_jwt_client(key, "Iv23liAbCdEf01234567", now, &jwt, &exp), 0);
    assert_int_equal(exp, now + 540);
    check_jwt_iss(jwt, "\"Iv23liAbCdEf01234567\"", now);
    free(jwt);
    assert_int_equal(rd_auth_app_jwt_client(key, "Iv1.0123456789abcdef", now, &jwt, NULL), 0);
    check_jwt_iss(jwt, "\"Iv1.0123456789abcdef\"", now);
    free(jwt);
    const char *bad[] = {"", "a\"b", "a\\b", "a b", "Iv1\n", NULL};
    for (size_t i = 0; bad[i] != NULL; i++) {
        jwt = (char *)"x";
        assert_int_equal(rd_auth_app_jwt_client(key, bad[i], now, &jwt, NULL), RD_EINVAL);
        assert_null(jwt);
    }
    assert_int_equal(rd_auth_app_jwt_client(key, NULL, now, &jwt, NULL), RD_EINVAL);
    rd_auth_key_free(key);
}

static void test_bad_args(void **state)
{
    (void)state;
    rd_auth_key_t *key = NULL;
    assert_int_equal(rd_auth_key_load(pem_pkcs8, strlen(pem_pkcs8), &key), 0);
    char *jwt = (char *)"x";
    assert_int_equal(rd_auth_app_jwt(key, 0, 2000000000, &jwt, NULL), RD_EINVAL);
    assert_null(jwt);
    assert_int_equal(rd_auth_app_jwt(NULL, 1, 2000000000, &jwt, NULL), RD_EINVAL);
    rd_auth_key_free(key);
    rd_auth_key_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),     cmocka_unit_test(test_jwt_pkcs1),
        cmocka_unit_test(test_jwt_pkcs8),     cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_bad_keys),      cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_jwt_client_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
