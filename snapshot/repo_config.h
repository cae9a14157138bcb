/* The repository's "config" object: what a repository is and how its objects are made. */
#ifndef SNAPSHOT_REPO_CONFIG_H
#define SNAPSHOT_REPO_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/*
 * Disk format. Changing anything here requires a REPO_CONFIG_FORMAT_VERSION bump.
 * All integers are little-endian. One object named "config", written once by repo_init,
 * never rewritten. It stays plaintext in encrypted repositories: it names the
 * algorithms and holds nothing derived from content.
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
 *    104                        136           168
 *    +--------------------------+-------------+
 *    | writer_version (32, NUL) | sha256 (32) |
 *    +--------------------------+-------------+
 *
 *    flags           0 (no flags are defined; others are rejected)
 *    repo_id         32 random bytes, shown as 64 hex digits
 *    created_ns      unix time of repo_init, nanoseconds
 *    id_algo         1 = SHA-256 of the plaintext; 2 = HMAC-SHA256 keyed from the
 *                    repository key (reserved; rejected until encryption lands)
 *    encryption      1 = none; 2 = AES-256-GCM per blob and per object (reserved)
 *    compression     1 = zstd, per blob, stored raw when it does not shrink
 *    chunk_bytes     the memory chunk and disk block size new snapshots use, a power of
 *                    two in [4 KiB, 16 MiB] (64 KiB)
 *    pack_target     a pack is sealed once it would grow past this, in [1 MiB, 256 MiB]
 *    blob_max        the largest raw blob, in [chunk_bytes, BLOB_RAW_MAX_BYTES]
 *    key_salt        zero while encryption = none; the salt the repository key is
 *                    derived with once encryption lands (keys/ objects hold the key)
 *    writer_version  the godwit version that ran repo_init, NUL-terminated and padded
 *    rsvd            zero
 *    sha256          over bytes [0, 136)
 *
 * Zero is invalid in every enumerated field, so a zeroed file never decodes.
 */
#define REPO_CONFIG_FORMAT_VERSION 1
#define REPO_CONFIG_MAGIC "GWRC"
#define REPO_CONFIG_BYTES 168
#define REPO_CONFIG_SUM_OFFSET 136
#define REPO_CONFIG_VERSION_STR_BYTES 32
#define REPO_ID_BYTES 32

enum repo_id_algo {
	REPO_ID_SHA256 = 1,
	REPO_ID_HMAC_SHA256 = 2, /* reserved */
};

enum repo_encryption {
	REPO_ENC_NONE = 1,
	REPO_ENC_AES256GCM = 2, /* reserved */
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

_Static_assert(REPO_CONFIG_BYTES == 8 + REPO_ID_BYTES + 8 + 8 + 16 + 32 +
		REPO_CONFIG_VERSION_STR_BYTES + 32, "config layout");
_Static_assert(REPO_CONFIG_SUM_OFFSET == REPO_CONFIG_BYTES - 32, "sum at the end");

struct repo_config {
	uint8_t repo_id[REPO_ID_BYTES];
	uint64_t created_ns;
	uint16_t id_algo;     /* enum repo_id_algo */
	uint16_t encryption;  /* enum repo_encryption */
	uint16_t compression; /* enum repo_compression */
	uint32_t chunk_bytes;
	uint32_t pack_target_bytes;
	uint32_t blob_max_bytes;
	uint8_t key_salt[32];
	char writer_version[REPO_CONFIG_VERSION_STR_BYTES]; /* NUL-terminated */
};

/*
 * Fill c with a fresh configuration (c, chunk_bytes, pack_target_bytes; 0 for the
 * defaults): a random repo_id, the current time, SHA-256 ids, no encryption, zstd and
 * this build's GODWIT_VERSION. Returns 0, -EINVAL for sizes outside the limits above, or
 * -EIO when no randomness is available.
 */
int repo_config_make(struct repo_config *c, uint32_t chunk_bytes, uint32_t pack_target_bytes);

/* Encode c into exactly REPO_CONFIG_BYTES bytes at out (c, out). */
void repo_config_encode(const struct repo_config *c, uint8_t out[REPO_CONFIG_BYTES]);

/*
 * Decode and check a config object (buf, len, out, why). Returns 0; -EPROTO when
 * truncated; -ENOMSG for a bad magic; -EPROTONOSUPPORT for an unknown version, flag,
 * id algorithm, encryption or compression; -EBADMSG for a checksum mismatch, trailing
 * bytes or an invalid field. why (may be NULL) gets a static one-line reason.
 */
int repo_config_decode(const uint8_t *buf, size_t len, struct repo_config *out,
		       const char **why);

#endif
