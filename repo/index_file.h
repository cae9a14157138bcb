/* Index files: the objects under index/ that say which pack holds each blob, and where. */
#ifndef REPO_INDEX_FILE_H
#define REPO_INDEX_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "repo/blob.h"
#include "repo/pack.h"
#include "repo/repo_crypto.h"

/*
 * Disk format. Changing anything here requires an INDEX_FORMAT_VERSION bump.
 * All integers are little-endian. Named "index/<SHA-256 of the file>". Written once by
 * repo_flush after the packs it lists are durable; read in full by repo_open. Blob
 * entries have the layout of pack trailer entries (pack.h). Two forms, told by the
 * header flags: plaintext (flags 0) and sealed (flags AEAD, encrypted repositories).
 *
 *    0        4         6        8
 *    +--------+---------+--------+
 *    | "GWIX" | version | flags  |                                       header
 *    +--------+---------+--------+
 *
 *    0        4      8
 *    +--------+------+
 *    | npacks | rsvd |                                                    body head
 *    +--------+------+
 *
 *    0              32           40       44     48
 *    +--------------+------------+--------+------+=======================+
 *    | pack_id (32) | pack_bytes | nblobs | rsvd | entry (56) x nblobs   |   per pack
 *    +--------------+------------+--------+------+=======================+
 *
 *    +-------------+
 *    | sha256 (32) |                                                       tail, over
 *    +-------------+                                                       all before
 *
 * Plaintext form: header, body (body head and the pack groups), tail. Sealed form: the
 * body is sealed under the metadata key with the header (8 bytes) as AAD, so nothing
 * but the object's size shows (not even the pack count):
 *
 *    | header (8) | nonce (12) | AES-GCM(body) | tag (16) | sha256 (32) |
 *
 *    flags        bit 0 AEAD; others rejected. Every entry of a sealed index has the
 *                 AEAD blob flag, and no entry of a plaintext one
 *    npacks       >= 1
 *    pack_bytes   the pack's exact size, in [PACK_MIN_BYTES, PACK_MAX_BYTES]; verify
 *                 compares it with the object
 *    nblobs       >= 1; every entry lies inside the pack's data area
 *
 * The same blob may appear in several index files (two writers raced, or a prune wrote
 * a new index before deleting the old): readers use any one copy. For prune's
 * mark-and-sweep, index files are the only map from blobs to packs: a pack no index
 * lists is garbage, and an index is replaced by writing the new one before deleting
 * the old.
 */
#define INDEX_FORMAT_VERSION 1
#define INDEX_MAGIC "GWIX"
#define INDEX_PREFIX_BYTES 8 /* magic, version, flags */
#define INDEX_HEADER_BYTES 16 /* plaintext form: the prefix and the body head */
#define INDEX_BODY_HEAD_BYTES 8
#define INDEX_PACK_HEADER_BYTES 48
#define INDEX_TAIL_BYTES 32
#define INDEX_MAX_BYTES (256u << 20)
#define INDEX_F_AEAD 0x0001u

_Static_assert(INDEX_PACK_HEADER_BYTES == BLOB_ID_BYTES + 8 + 4 + 4, "pack header");
_Static_assert(INDEX_HEADER_BYTES == INDEX_PREFIX_BYTES + INDEX_BODY_HEAD_BYTES, "header");

struct index_pack {
	struct blob_id pack_id;
	uint64_t pack_bytes;
	uint32_t nblobs;
	struct pack_entry *entries;
};

struct index_file {
	uint32_t npacks;
	struct index_pack *packs;
};

/*
 * Encode ix into a malloc'd buffer (ix, c, out, len), sealed when c (the repository's
 * crypto) is not NULL, in which case every entry must have the AEAD flag (and none
 * otherwise); the caller frees *out. Returns 0, -EINVAL for an empty index or pack
 * group or a wrong AEAD flag, -EMSGSIZE past INDEX_MAX_BYTES, -ENOMEM, -EIO.
 */
int index_file_encode(const struct index_file *ix, struct repo_crypto *c, uint8_t **out,
		      size_t *len);

/*
 * Decode and check an index file (buf, len, c, out, why). c is the repository's crypto,
 * NULL for a plaintext repository: a sealed index needs it and a plaintext one must not
 * have it. On success out owns malloc'd arrays: free with index_file_free. Returns 0;
 * -EPROTO (truncated); -ENOMSG (magic); -EPROTONOSUPPORT (version, flags); -EMSGSIZE
 * (over INDEX_MAX_BYTES); -ENOKEY (sealed, no c); -EBADMSG (checksum, tag, a plaintext
 * index with c, counts that do not add up to the length, a bad entry); -ENOMEM; -EIO.
 * why (may be NULL) gets a static one-line reason.
 */
int index_file_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		      struct index_file *out, const char **why);

/* Free what index_file_decode allocated (ix); ix is left empty. */
void index_file_free(struct index_file *ix);

/* The object name for index bytes (buf, len, out): "index/<64 hex>". */
#define INDEX_NAME_BYTES (6 + 64 + 1)
void index_file_name(const uint8_t *buf, size_t len, char out[INDEX_NAME_BYTES]);

#endif
