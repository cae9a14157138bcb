/* Blob identities and types: what a repository stores, each named by a hash of its plaintext. */
#ifndef REPO_BLOB_H
#define REPO_BLOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A blob is one unit of content: a 64 KiB memory chunk or disk block, the vCPU/device
 * state, a piece of an rsync signature. Its id is a 32-byte hash of its plaintext,
 * computed by blob_id_compute() (repo.h) with the algorithm the repository's config
 * names: SHA-256 in a plaintext repository, HMAC-SHA256 under a key derived from the
 * repository key in an encrypted one. The all-zero id is never a hash result in practice
 * and is reserved: in a snapshot's memory and disk maps it means "a chunk of zeros, not
 * stored".
 */
#define BLOB_ID_BYTES 32
#define BLOB_ID_HEX_BYTES (2 * BLOB_ID_BYTES + 1) /* 64 hex digits and a NUL */

struct blob_id {
	uint8_t b[BLOB_ID_BYTES];
};

_Static_assert(sizeof(struct blob_id) == BLOB_ID_BYTES, "ids are packed in arrays");

/*
 * What a blob holds. Informational (statistics, prune policy, verify messages): dedup
 * and lookups go by id alone. Stored as one byte in packs and indexes; 0 is invalid.
 * Adding a type requires a PACK and INDEX FORMAT_VERSION bump.
 */
enum blob_type {
	BLOB_T_DATA = 1,  /* memory chunks and disk blocks */
	BLOB_T_STATE = 2, /* the vCPU and device state blob of vm_state_save() */
	BLOB_T_SIG = 3,   /* a piece of the disk's rsync signature */
	BLOB_T_META = 4,  /* anything else a snapshot needs (reserved) */
	BLOB_T_END,       /* one past the last valid type */
};

/* The largest blob (raw, before compression) a repository accepts: also a decode bound. */
#define BLOB_RAW_MAX_BYTES (64u << 20)

/* True for the reserved all-zero id (id). */
bool blob_id_is_zero(const struct blob_id *id);

/* True when a and b are the same id (a, b). */
bool blob_id_eq(const struct blob_id *a, const struct blob_id *b);

/* The id as 64 lowercase hex digits and a NUL (id, out). */
void blob_id_hex(const struct blob_id *id, char out[BLOB_ID_HEX_BYTES]);

/* Parse exactly 64 hex digits (id, hex). Returns 0 or -EINVAL. */
int blob_id_from_hex(struct blob_id *id, const char *hex);

/* True when all len bytes of data are zero (data, len); fast on page-sized buffers. */
bool blob_data_is_zero(const void *data, size_t len);

/* "data", "state", "sig", "meta", or "invalid" (t). */
const char *blob_type_name(unsigned t);

/* Lowercase hex of len bytes (in, len, out): out holds 2 * len + 1 bytes. */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* SHA-256 of len bytes (data, len, out). */
void sha256_buf(const void *data, size_t len, uint8_t out[32]);

#endif
