/* Tests for the repository's derived keys: keyed ids, and AES-256-GCM seal/open bound to their AAD. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "helpers.h"
#include "repo/blob.h"
#include "repo/repo_crypto.h"

#define LEN 70000

static struct repo_key key;
static uint8_t salt[REPO_KEY_SALT_BYTES];
static struct repo_crypto *c;
static uint8_t plain[LEN], sealed[LEN + REPO_SEAL_OVERHEAD], back[LEN];

static void setup(void)
{
	test_key(&key, 1);
	fill_random(salt, sizeof(salt), 2);
	fill_random(plain, sizeof(plain), 3);
	cr_assert_eq(repo_crypto_new(&c, &key, salt), 0);
}

static void teardown(void)
{
	repo_crypto_free(c);
}

TestSuite(repo_crypto, .init = setup, .fini = teardown);

Test(repo_crypto, seal_and_open_round_trip)
{
	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_DATA, "aad", 3, plain, LEN, sealed), 0);
	cr_assert_neq(memcmp(sealed + REPO_SEAL_NONCE_BYTES, plain, 64), 0, "ciphertext");
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_DATA, "aad", 3, sealed, sizeof(sealed), back), 0);
	cr_assert_eq(memcmp(back, plain, LEN), 0);
	/* Empty plaintext and no AAD work too. */
	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_META, NULL, 0, plain, 0, sealed), 0);
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_META, NULL, 0, sealed, REPO_SEAL_OVERHEAD, back),
		     0);
}

Test(repo_crypto, seals_in_place_with_a_fresh_nonce_each_time)
{
	uint8_t *buf = xmalloc(LEN + REPO_SEAL_OVERHEAD);

	memcpy(buf + REPO_SEAL_NONCE_BYTES, plain, LEN);
	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_DATA, NULL, 0, buf + REPO_SEAL_NONCE_BYTES, LEN,
				      buf), 0);
	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_DATA, NULL, 0, plain, LEN, sealed), 0);
	cr_assert_neq(memcmp(buf, sealed, REPO_SEAL_NONCE_BYTES), 0, "nonces differ");
	cr_assert_neq(memcmp(buf + 12, sealed + 12, 64), 0, "so do ciphertexts of equal plaintext");
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_DATA, NULL, 0, buf, LEN + REPO_SEAL_OVERHEAD,
				      back), 0);
	cr_assert_eq(memcmp(back, plain, LEN), 0);
	free(buf);
}

Test(repo_crypto, open_fails_on_any_flip_and_leaves_only_zeros)
{
	static const size_t offs[] = { 0, 11, 12, 5000, LEN + 11, LEN + 12, LEN + 27 };

	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_DATA, "a", 1, plain, LEN, sealed), 0);
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		sealed[offs[i]] ^= 0x01;
		memset(back, 0x55, sizeof(back));
		cr_assert_eq(repo_crypto_open(c, REPO_SEAL_DATA, "a", 1, sealed, sizeof(sealed), back),
			     -EBADMSG, "flip at %zu", offs[i]);
		cr_assert(blob_data_is_zero(back, LEN), "unauthenticated bytes left at %zu", offs[i]);
		sealed[offs[i]] ^= 0x01;
	}
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_DATA, "a", 1, sealed, REPO_SEAL_OVERHEAD - 1,
				      back), -EBADMSG, "shorter than nonce and tag");
}

Test(repo_crypto, aad_key_and_repository_bind_a_sealed_piece)
{
	struct repo_crypto *other;
	struct repo_key key2;

	cr_assert_eq(repo_crypto_seal(c, REPO_SEAL_DATA, "id-A", 4, plain, LEN, sealed), 0);
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_DATA, "id-B", 4, sealed, sizeof(sealed), back),
		     -EBADMSG, "another AAD");
	cr_assert_eq(repo_crypto_open(c, REPO_SEAL_META, "id-A", 4, sealed, sizeof(sealed), back),
		     -EBADMSG, "the metadata key");
	test_key(&key2, 2);
	cr_assert_eq(repo_crypto_new(&other, &key2, salt), 0);
	cr_assert_eq(repo_crypto_open(other, REPO_SEAL_DATA, "id-A", 4, sealed, sizeof(sealed),
				      back), -EBADMSG, "another key");
	repo_crypto_free(other);
	salt[0] ^= 1;
	cr_assert_eq(repo_crypto_new(&other, &key, salt), 0);
	cr_assert_eq(repo_crypto_open(other, REPO_SEAL_DATA, "id-A", 4, sealed, sizeof(sealed),
				      back), -EBADMSG, "the same key with another salt");
	repo_crypto_free(other);
}

Test(repo_crypto, blob_ids_are_hmac_sha256_under_the_derived_id_key)
{
	uint8_t id[32], again[32], expect[32], sha[32], k[32];
	unsigned n = 0;

	cr_assert_eq(repo_crypto_blob_id(c, plain, LEN, id), 0);
	cr_assert_eq(repo_crypto_blob_id(c, plain, LEN, again), 0);
	cr_assert_eq(memcmp(id, again, 32), 0, "equal chunks, equal ids: dedup works");
	cr_assert_eq(repo_key_derive(&key, salt, REPO_KDF_ID_LABEL, k), 0);
	cr_assert_not_null(HMAC(EVP_sha256(), k, 32, plain, LEN, expect, &n));
	cr_assert_eq(memcmp(id, expect, 32), 0);
	sha256_buf(plain, LEN, sha);
	cr_assert_neq(memcmp(id, sha, 32), 0, "not the plain hash");
	cr_assert_eq(repo_crypto_blob_id(c, plain, 0, id), 0);
	cr_assert_not_null(HMAC(EVP_sha256(), k, 32, plain, 0, expect, &n));
	cr_assert_eq(memcmp(id, expect, 32), 0, "the empty blob");
}
