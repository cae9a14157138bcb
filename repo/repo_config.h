/* The repository's "config" object: what a repository is and how its objects are made. */
#ifndef REPO_REPO_CONFIG_H
#define REPO_REPO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "repo/repo_key.h"

/*
 * Disk format. Changing anything here requires a REPO_CONFIG_FORMAT_VERSION bump.
 * All integers are little-endian. One object named "config", written once by repo_init,
 * never rewritten. It stays plaintext in encrypted repositories (it names the algorithms
 * and holds no secret and nothing derived from content) but is authenticated there by
 * an HMAC under a key derived from the repository key, so a tampered config is refused.
 *
 *    0        4         6        8                        40           48
 *    +--------+---------+--------+------------------------+------------+
 *    | "GWRC" | version | flags  | repo_id (32)           | created_ns |
 *    +--------+---------+--------+------------------------+------------+
 *    48        50           52            54     56            60
 *    +---------+------------+-------------+------+-------------+
 *    | id_algo | encryption | compression | rsvd | chunk_bytes |
 *    +---------+------------+-------------+------+-------------+
 *    60                  64               68     72               104
 *    +-------------------+----------------+------+----------------+
 *    | pack_target_bytes | blob_max_bytes | rsvd | key_salt (32)  |
 *    +-------------------+----------------+------+----------------+
 *    104                        136              168        200           232
 *    +--------------------------+----------------+----------+-------------+
 *    | writer_version (32, NUL) | key_check (32) | mac (32) | sha256 (32) |
 *    +--------------------------+----------------+----------+-------------+
 *
 *    flags           0 (no flags are defined; others are rejected)
 *    repo_id         32 random bytes, shown as 64 hex digits
 *    created_ns      unix time of repo_init, nanoseconds
 *    id_algo         1 = SHA-256 of the plaintext (with encryption 1); 2 = HMAC-SHA256
 *                    under the blob-id key (with encryption 2)
 *    encryption      1 = none; 2 = AES-256-GCM: every blob payload, pack trailer, index
 *                    file and manifest is sealed (repo_crypto.h); the two go together
 *    compression     1 = zstd, per blob, stored raw when it does not shrink
 *    chunk_bytes     the memory chunk and disk block size new snapshots use, a power of
 *                    two in [4 KiB, 16 MiB] (64 KiB)
 *    pack_target     a pack is sealed once it would grow past this, in [1 MiB, 256 MiB]
 *    blob_max        the largest raw blob, in [chunk_bytes, BLOB_RAW_MAX_BYTES]
 *    key_salt        encrypted: 32 random bytes, the HKDF salt of every derived key
 *                    (repo_key.h); zero otherwise
 *    writer_version  the godwit version that ran repo_init, NUL-terminated and padded
 *    key_check       encrypted: HKDF(key, key_salt, REPO_KDF_CHECK_LABEL), which tells
 *                    a wrong key file (-EKEYREJECTED) from a damaged repository; zero
 *                    otherwise
 *    mac             encrypted: HMAC-SHA256 under HKDF(key, key_salt,
 *                    REPO_KDF_CONFIG_LABEL) over bytes [0, 168); zero otherwise
 *    rsvd            zero
 *    sha256          over bytes [0, 200): catches damage without a key
 *
 * Version 1 (168 bytes: the layout above up to writer_version, then sha256 over
 * [0, 136); plaintext only) is still read, so repositories made before encryption open.
 * Zero is invalid in every enumerated field, so a zeroed file never decodes.
 */
#define REPO_CONFIG_FORMAT_VERSION 2
#define REPO_CONFIG_MAGIC "GWRC"
#define REPO_CONFIG_BYTES 232
#define REPO_CONFIG_SUM_OFFSET 200
#define REPO_CONFIG_MAC_OFFSET 168
#define REPO_CONFIG_CHECK_OFFSET 136
#define REPO_CONFIG_V1_BYTES 168
#define REPO_CONFIG_VERSION_STR_BYTES 32
#define REPO_ID_BYTES 32

enum repo_id_algo {
	REPO_ID_SHA256 = 1,
	REPO_ID_HMAC_SHA256 = 2,
};

enum repo_encryption {
	REPO_ENC_NONE = 1,
	REPO_ENC_AES256GCM = 2,
};

enum repo_compression {
	REPO_COMP_ZSTD = 1,
};

#define REPO_CHUNK_BYTES_DEFAULT (64u << 10)
#define REPO_CHUNK_BYTES_MIN (4u << 10)
#define REPO_CHUNK_BYTES_MAX (16u << 20)
#define REPO_PACK_TARGET_DEFAULT (16u << 20)
#define REPO_PACK_TARGET_MIN (1u << 20)
#define REPO_PACK_TARGET_MAX (256u << 20)

_Static_assert(REPO_CONFIG_BYTES == 8 + REPO_ID_BYTES + 8 + 8 + 16 + REPO_KEY_SALT_BYTES +
		REPO_CONFIG_VERSION_STR_BYTES + REPO_KEY_CHECK_BYTES + 32 + 32, "config layout");
_Static_assert(REPO_CONFIG_CHECK_OFFSET == REPO_CONFIG_V1_BYTES - 32, "v1 is a prefix");
_Static_assert(REPO_CONFIG_MAC_OFFSET == REPO_CONFIG_CHECK_OFFSET + REPO_KEY_CHECK_BYTES, "mac");
_Static_assert(REPO_CONFIG_SUM_OFFSET == REPO_CONFIG_BYTES - 32, "sum at the end");

struct repo_config {
	uint16_t version;     /* the format version it was decoded from */
	uint8_t repo_id[REPO_ID_BYTES];
	uint64_t created_ns;
	uint16_t id_algo;     /* enum repo_id_algo */
	uint16_t encryption;  /* enum repo_encryption */
	uint16_t compression; /* enum repo_compression */
	uint32_t chunk_bytes;
	uint32_t pack_target_bytes;
	uint32_t blob_max_bytes;
	uint8_t key_salt[REPO_KEY_SALT_BYTES];
	char writer_version[REPO_CONFIG_VERSION_STR_BYTES]; /* NUL-terminated */
	uint8_t key_check[REPO_KEY_CHECK_BYTES];
};

/*
 * Fill c with a fresh configuration (c, chunk_bytes, pack_target_bytes, key): a random
 * repo_id, the current time, zstd and this build's GODWIT_VERSION; with key NULL, SHA-256
 * ids and no encryption; with a key, HMAC-SHA256 ids, AES-256-GCM, a random key_salt and
 * the key check. 0 sizes choose the defaults. Returns 0, -EINVAL for sizes outside the
 * limits above, or -EIO when no randomness or key derivation is available.
 */
int repo_config_make(struct repo_config *c, uint32_t chunk_bytes, uint32_t pack_target_bytes,
		     const struct repo_key *key);

/*
 * Encode c into exactly REPO_CONFIG_BYTES bytes at out (c, key, out), always in the
 * current version. An encrypted c needs its key (for the mac); key is ignored otherwise.
 * Returns 0, -EINVAL (encrypted without a key) or -EIO.
 */
int repo_config_encode(const struct repo_config *c, const struct repo_key *key,
		       uint8_t out[REPO_CONFIG_BYTES]);

/*
 * Decode and check a config object (buf, len, out, why). This checks the form, not the
 * key: for an encrypted repository call repo_config_authenticate next. Returns 0;
 * -EPROTO when truncated; -ENOMSG for a bad magic; -EPROTONOSUPPORT for an unknown
 * version, flag, id algorithm, encryption or compression; -EBADMSG for a checksum
 * mismatch, trailing bytes or an invalid field (also an id algorithm that does not go
 * with the encryption, and key fields set in a plaintext config). why (may be NULL)
 * gets a static one-line reason.
 */
int repo_config_decode(const uint8_t *buf, size_t len, struct repo_config *out,
		       const char **why);

/*
 * Check key against an encrypted config that repo_config_decode accepted (buf, len, c,
 * key, why): first the key check, then the mac over the bytes. Returns 0;
 * -EKEYREJECTED when the key check differs (another key, or an altered key_salt or
 * key_check field); -EBADMSG when the mac does not verify (the config was altered);
 * -EINVAL when c is not encrypted; -EIO.
 */
int repo_config_authenticate(const uint8_t *buf, size_t len, const struct repo_config *c,
			     const struct repo_key *key, const char **why);

#endif
