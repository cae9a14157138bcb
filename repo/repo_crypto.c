/* Derived repository keys in use: HMAC-SHA256 blob ids and AES-256-GCM seal/open with caller AAD. */
#include "repo/repo_crypto.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* EVP_*Update take an int length: feed larger pieces in steps of this. */
#define REPO_CRYPTO_STEP (1u << 30)

/*
 * Cipher contexts keyed once at repo_crypto_new; each seal or open only sets a new nonce,
 * so the AES key schedule and GHASH tables are computed once per repository open.
 */
struct repo_crypto {
	EVP_MAC_CTX *id_mac;     /* HMAC-SHA256 keyed with the blob-id key */
	EVP_CIPHER_CTX *enc[3];  /* by enum repo_seal_key */
	EVP_CIPHER_CTX *dec[3];
};

static bool key_ok(enum repo_seal_key key)
{
	return key == REPO_SEAL_DATA || key == REPO_SEAL_META;
}

int repo_crypto_new(struct repo_crypto **out, const struct repo_key *key,
		    const uint8_t salt[REPO_KEY_SALT_BYTES])
{
	static const char *const labels[3] = { NULL, REPO_KDF_DATA_LABEL, REPO_KDF_META_LABEL };
	OSSL_PARAM params[2];
	uint8_t k[32];
	EVP_CIPHER *aes = NULL;
	EVP_MAC *mac = NULL;
	struct repo_crypto *c;
	int rc = -EIO;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	aes = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!aes || !mac)
		goto err;
	c->id_mac = EVP_MAC_CTX_new(mac);
	if (!c->id_mac) {
		rc = -ENOMEM;
		goto err;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (repo_key_derive(key, salt, REPO_KDF_ID_LABEL, k) < 0 ||
	    EVP_MAC_init(c->id_mac, k, sizeof(k), params) != 1)
		goto err;
	for (int i = REPO_SEAL_DATA; i <= REPO_SEAL_META; i++) {
		c->enc[i] = EVP_CIPHER_CTX_new();
		c->dec[i] = EVP_CIPHER_CTX_new();
		if (!c->enc[i] || !c->dec[i]) {
			rc = -ENOMEM;
			goto err;
		}
		if (repo_key_derive(key, salt, labels[i], k) < 0 ||
		    EVP_EncryptInit_ex2(c->enc[i], aes, k, NULL, NULL) != 1 ||
		    EVP_DecryptInit_ex2(c->dec[i], aes, k, NULL, NULL) != 1)
			goto err;
	}
	OPENSSL_cleanse(k, sizeof(k));
	EVP_CIPHER_free(aes);
	EVP_MAC_free(mac);
	*out = c;
	return 0;
err:
	OPENSSL_cleanse(k, sizeof(k));
	EVP_CIPHER_free(aes);
	EVP_MAC_free(mac);
	repo_crypto_free(c);
	return rc;
}

void repo_crypto_free(struct repo_crypto *c)
{
	if (!c)
		return;
	/* Freeing a context cleanses its key schedule (EVP_CIPHER_CTX_free, EVP_MAC_CTX_free). */
	EVP_MAC_CTX_free(c->id_mac);
	for (int i = 0; i < 3; i++) {
		EVP_CIPHER_CTX_free(c->enc[i]);
		EVP_CIPHER_CTX_free(c->dec[i]);
	}
	free(c);
}

int repo_crypto_blob_id(struct repo_crypto *c, const void *data, size_t len, uint8_t out[32])
{
	size_t n = 0;

	/* A NULL key re-initialises the context with the key set at repo_crypto_new. */
	if (EVP_MAC_init(c->id_mac, NULL, 0, NULL) != 1 ||
	    (len && EVP_MAC_update(c->id_mac, data, len) != 1) ||
	    EVP_MAC_final(c->id_mac, out, &n, 32) != 1 || n != 32)
		return -EIO;
	return 0;
}

/* Feed len bytes through ctx, in steps an int can count (ctx, out, in, len). */
static bool cipher_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	while (len) {
		int step = (int)(len < REPO_CRYPTO_STEP ? len : REPO_CRYPTO_STEP), n = 0;

		if (EVP_CipherUpdate(ctx, out, &n, in, step) != 1 || n != step)
			return false;
		out += step;
		in += step;
		len -= (size_t)step;
	}
	return true;
}

int repo_crypto_seal(struct repo_crypto *c, enum repo_seal_key key, const void *aad,
		     size_t aad_len, const void *plain, size_t len, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t *nonce = out, *ct = out + REPO_SEAL_NONCE_BYTES, *tag = ct + len, fin[16];
	int n = 0;

	if (!key_ok(key) || aad_len > INT_MAX)
		return -EIO;
	ctx = c->enc[key];
	if (RAND_bytes(nonce, REPO_SEAL_NONCE_BYTES) != 1 ||
	    EVP_EncryptInit_ex2(ctx, NULL, NULL, nonce, NULL) != 1 ||
	    (aad_len && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    !cipher_update(ctx, ct, plain, len) || EVP_EncryptFinal_ex(ctx, fin, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, REPO_SEAL_TAG_BYTES, tag) != 1)
		return -EIO;
	return 0;
}

int repo_crypto_open(struct repo_crypto *c, enum repo_seal_key key, const void *aad,
		     size_t aad_len, const uint8_t *sealed, size_t sealed_len, uint8_t *out)
{
	const uint8_t *ct = sealed + REPO_SEAL_NONCE_BYTES;
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[REPO_SEAL_TAG_BYTES], fin[16];
	size_t len;
	int n = 0;

	if (!key_ok(key) || aad_len > INT_MAX)
		return -EIO;
	if (sealed_len < REPO_SEAL_OVERHEAD)
		return -EBADMSG;
	len = sealed_len - REPO_SEAL_OVERHEAD;
	memcpy(tag, ct + len, sizeof(tag));
	ctx = c->dec[key];
	if (EVP_DecryptInit_ex2(ctx, NULL, NULL, sealed, NULL) != 1 ||
	    (aad_len && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) ||
	    !cipher_update(ctx, out, ct, len) ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, sizeof(tag), tag) != 1) {
		OPENSSL_cleanse(out, len);
		return -EIO;
	}
	if (EVP_DecryptFinal_ex(ctx, fin, &n) != 1) {
		/* GCM decrypts before it verifies: leave nothing of the forgery behind. */
		OPENSSL_cleanse(out, len);
		return -EBADMSG;
	}
	return 0;
}
