/* What the repository harnesses share: a fixed key, checksum fix-ups, sealing. */
#ifndef TESTS_FUZZ_FUZZ_REPO_H
#define TESTS_FUZZ_FUZZ_REPO_H

#include <stddef.h>
#include <stdint.h>

#include "repo/repo_crypto.h"
#include "repo/repo_key.h"

/* The fuzz repositories' master key and config salt: fixed, so seeds stay valid. */
void fuzz_repo_key(struct repo_key *key, uint8_t salt[REPO_KEY_SALT_BYTES]);

/* The crypto of a repository with that key (made once, kept for the process). */
struct repo_crypto *fuzz_repo_crypto(void);

/* Recompute the trailing SHA-256 of an object over everything before it (buf, len). */
void fuzz_fix_sha_tail(uint8_t *buf, size_t len);

/*
 * Seal plain under the metadata key with aad (aad, aad_len, plain, len, out): out gets
 * len + REPO_SEAL_OVERHEAD bytes, as repo_crypto_seal makes them.
 */
void fuzz_seal_meta(const void *aad, size_t aad_len, const void *plain, size_t len, uint8_t *out);

#endif
