/* What the repository harnesses share: a fixed key, checksum fix-ups, sealing. */
#include "tests/fuzz/fuzz_repo.h"

#include <stdlib.h>
#include <string.h>

#include "repo/blob.h"

void fuzz_repo_key(struct repo_key *key, uint8_t salt[REPO_KEY_SALT_BYTES])
{
	for (size_t i = 0; i < REPO_KEY_BYTES; i++)
		key->b[i] = (uint8_t)(0x5a ^ (i * 13));
	for (size_t i = 0; i < REPO_KEY_SALT_BYTES; i++)
		salt[i] = (uint8_t)(0xc3 ^ (i * 7));
}

struct repo_crypto *fuzz_repo_crypto(void)
{
	static struct repo_crypto *c;
	uint8_t salt[REPO_KEY_SALT_BYTES];
	struct repo_key key;

	if (!c) {
		fuzz_repo_key(&key, salt);
		if (repo_crypto_new(&c, &key, salt) < 0)
			abort();
	}
	return c;
}

void fuzz_fix_sha_tail(uint8_t *buf, size_t len)
{
	if (len >= 32)
		sha256_buf(buf, len - 32, buf + len - 32);
}

void fuzz_seal_meta(const void *aad, size_t aad_len, const void *plain, size_t len, uint8_t *out)
{
	if (repo_crypto_seal(fuzz_repo_crypto(), REPO_SEAL_META, aad, aad_len, plain, len, out) < 0)
		abort();
}
