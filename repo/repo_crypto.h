/* The keys of an encrypted repository in use: keyed blob ids and AES-256-GCM sealing of objects. */
#ifndef REPO_REPO_CRYPTO_H
#define REPO_REPO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "repo/repo_key.h"

/*
 * A sealed piece of an object (a blob's payload, a pack trailer, an index or manifest
 * body) is laid out as
 *
 *    0            12                      12+n        12+n+16
 *    +------------+=======================+-----------+
 *    | nonce (12) | ciphertext (n)        | tag (16)  |
 *    +------------+=======================+-----------+
 *
 * AES-256-GCM under the data key (blob payloads) or the metadata key (everything else),
 * see repo_key.h. The nonce is 12 random bytes from OpenSSL's DRBG, fresh for every seal:
 * NIST SP 800-38D allows 2^32 random-nonce seals per key, which at one seal per 64 KiB
 * blob is 256 TiB of unique data per repository. The caller's AAD binds each piece to
 * its place (pack.h, index_file.h, manifest.h say what), so a sealed piece moved to
 * another place, or to another kind of object, fails its tag. The layout is part of
 * those formats: changing it requires their FORMAT_VERSION bumps.
 *
 * Threads: a struct repo_crypto belongs to the one thread using its repository.
 */
#define REPO_SEAL_NONCE_BYTES 12
#define REPO_SEAL_TAG_BYTES 16
#define REPO_SEAL_OVERHEAD (REPO_SEAL_NONCE_BYTES + REPO_SEAL_TAG_BYTES)

struct repo_crypto;

/* Which derived key seals a piece. 0 is invalid. */
enum repo_seal_key {
	REPO_SEAL_DATA = 1, /* blob payloads */
	REPO_SEAL_META = 2, /* pack trailers, index files, manifests */
};

/*
 * Derive a repository's keys from its master key and the config's salt and key the
 * ciphers (out, key, salt). The master key is not kept. Returns 0, -ENOMEM or -EIO.
 */
int repo_crypto_new(struct repo_crypto **out, const struct repo_key *key,
		    const uint8_t salt[REPO_KEY_SALT_BYTES]);

/* Wipe the keys and free c (may be NULL). */
void repo_crypto_free(struct repo_crypto *c);

/* HMAC-SHA256 of data under the blob-id key (c, data, len, out). Returns 0 or -EIO. */
int repo_crypto_blob_id(struct repo_crypto *c, const void *data, size_t len, uint8_t out[32]);

/*
 * Seal len bytes of plain into out, which holds len + REPO_SEAL_OVERHEAD bytes (c, key,
 * aad, aad_len, plain, len, out). plain may be out + REPO_SEAL_NONCE_BYTES (in place);
 * any other overlap is not allowed. Returns 0 or -EIO.
 */
int repo_crypto_seal(struct repo_crypto *c, enum repo_seal_key key, const void *aad,
		     size_t aad_len, const void *plain, size_t len, uint8_t *out);

/*
 * Verify and decrypt a sealed piece of sealed_len bytes into out, which receives
 * sealed_len - REPO_SEAL_OVERHEAD bytes (c, key, aad, aad_len, sealed, sealed_len, out).
 * out must not overlap sealed. When the tag fails out is zeroed, so no unauthenticated
 * byte is ever left for a caller to use. Returns 0; -EBADMSG when sealed_len is under
 * the overhead or the tag does not verify (damage, tampering, a piece moved from
 * elsewhere); -EIO.
 */
int repo_crypto_open(struct repo_crypto *c, enum repo_seal_key key, const void *aad,
		     size_t aad_len, const uint8_t *sealed, size_t sealed_len, uint8_t *out);

#endif
