/* Packs: the files under data/ that hold blobs, each compressed on its own, with a trailer table. */
#ifndef REPO_PACK_H
#define REPO_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/blob.h"
#include "repo/repo_crypto.h"

/*
 * Disk format. Changing anything here requires a PACK_FORMAT_VERSION bump.
 * All integers are little-endian. A pack is named "data/XX/<pack id>" where the pack id
 * is the SHA-256 of the whole file (so it says nothing about content once the bytes are
 * ciphertext) and XX its first two hex digits. A pack comes in two forms, told by the
 * header flags: plaintext (flags 0, repositories with encryption = none) and sealed
 * (flags AEAD, encrypted repositories). Both start with the same header:
 *
 *    0        4         6        8
 *    +--------+---------+--------+
 *    | "GWPK" | version | flags  |        flags: bit 0 AEAD; others are rejected
 *    +--------+---------+--------+
 *
 * Plaintext form:
 *
 *    0      1       2      4     8      12       16
 *    +------+-------+------+-----+--------+-------+=================+
 *    | type | flags | rsvd | raw | stored | crc   | payload (stored)|   record, repeated,
 *    +------+-------+------+-----+--------+-------+=================+   back to back
 *
 *    0       4      8
 *    +-------+------+=========================+
 *    | count | rsvd | entry (56) x count      |                        trailer
 *    +-------+------+=========================+
 *
 *    0              4      8             40
 *    +--------------+------+-------------+
 *    | trailer_len  | rsvd | sha256 (32) |                              tail
 *    +--------------+------+-------------+
 *
 * Sealed form: nothing but the header and the object's size is plaintext. Records have
 * no header (their lengths, types and ids are in the sealed trailer), the trailer is
 * sealed, and so is the length that locates it, so not even the blob count shows:
 *
 *    +=============================================+
 *    | nonce (12) | AES-GCM(payload) | tag (16)    |   record, repeated: stored bytes,
 *    +=============================================+   data key, AAD = blob AAD below
 *    +=============================================+
 *    | nonce (12) | AES-GCM(count, rsvd, entry x count) | tag (16) |   sealed trailer:
 *    +=============================================+   metadata key, AAD = header || "TRLR"
 *    +=========================================+-------------+
 *    | nonce (12) | AES-GCM(trailer_len, rsvd) | tag (16) | sha256 (32) |   sealed tail
 *    +=========================================+-------------+   (36) + sha256: metadata
 *                                                               key, AAD = header || "TAIL"
 *
 *    blob AAD (40):
 *    0         32     33      34     36    40
 *    +---------+------+-------+------+-----+
 *    | id (32) | type | flags | rsvd | raw |
 *    +---------+------+-------+------+-----+
 *
 *    entry (also the blob entry of index files):
 *    0         32       40       44    48      52     53      54     56
 *    +---------+--------+--------+-----+-------+------+-------+------+
 *    | id (32) | offset | stored | raw | crc   | type | flags | rsvd |
 *    +---------+--------+--------+-----+-------+------+-------+------+
 *
 *    type         enum blob_type, 1..4; 0 is invalid
 *    flags        bit 0 ZSTD: the payload is one zstd frame of the raw bytes, and
 *                 shorter than raw (a blob that does not shrink is stored raw);
 *                 bit 1 AEAD: the record is sealed (nonce || ciphertext || tag, no
 *                 record header), set on every entry of a sealed pack and no other;
 *                 others invalid
 *    raw          bytes of plaintext, <= BLOB_RAW_MAX_BYTES
 *    stored       record bytes after the header: the payload, or for AEAD the payload
 *                 plus REPO_SEAL_OVERHEAD
 *    crc          CRC32C of those stored bytes (ciphertext for AEAD: damage is told
 *                 apart from tampering, which only the tag catches)
 *    offset       of the record in the pack
 *    trailer_len  bytes of the trailer: 8 + 56 * count, plus REPO_SEAL_OVERHEAD sealed
 *    sha256       over every byte before it
 *
 * Records follow each other from offset 8 with no gaps, in trailer order, and the last
 * ends where the trailer starts, so every byte of a pack is accounted for. A reader
 * needs only an index entry to fetch one blob: it range-reads the record, checks the
 * header (plaintext) against the entry and the CRC, verifies the tag (sealed: the blob
 * AAD binds the record to its id, type, flags and length, so a record swapped for
 * another blob's fails), decompresses into exactly raw bytes and compares the id of the
 * result. The blob AAD needs no pack id: each id is unique within a repository.
 */
#define PACK_FORMAT_VERSION 1
#define PACK_MAGIC "GWPK"
#define PACK_HEADER_BYTES 8
#define PACK_RECORD_HEADER_BYTES 16
#define PACK_TRAILER_HEAD_BYTES 8
#define PACK_ENTRY_BYTES 56
#define PACK_TAIL_BYTES 40
#define PACK_MIN_BYTES (PACK_HEADER_BYTES + PACK_TRAILER_HEAD_BYTES + PACK_TAIL_BYTES)
#define PACK_MAX_BYTES (1u << 30) /* a decode bound; writers seal packs near 16 MiB */
#define PACK_BLOB_AAD_BYTES 40
#define PACK_SEALED_TAIL_BYTES (REPO_SEAL_OVERHEAD + 8)
#define PACK_AEAD_TAIL_BYTES (PACK_SEALED_TAIL_BYTES + 32)
#define PACK_AEAD_MIN_BYTES (PACK_HEADER_BYTES + REPO_SEAL_OVERHEAD + PACK_TRAILER_HEAD_BYTES + \
			     PACK_AEAD_TAIL_BYTES)

#define PACK_F_AEAD 0x0001u /* header flag: the sealed form */

#define PACK_BLOB_F_ZSTD 0x01u
#define PACK_BLOB_F_AEAD 0x02u
#define PACK_BLOB_F_KNOWN (PACK_BLOB_F_ZSTD | PACK_BLOB_F_AEAD)

_Static_assert(PACK_ENTRY_BYTES == BLOB_ID_BYTES + 8 + 4 + 4 + 4 + 1 + 1 + 2, "entry");
_Static_assert(PACK_RECORD_HEADER_BYTES == 1 + 1 + 2 + 4 + 4 + 4, "record header");
_Static_assert(PACK_TAIL_BYTES == 4 + 4 + 32, "tail");
_Static_assert(PACK_BLOB_AAD_BYTES == BLOB_ID_BYTES + 1 + 1 + 2 + 4, "blob aad");

/* One blob's place in a pack: a trailer entry, and the payload of an index entry. */
struct pack_entry {
	struct blob_id id;
	uint64_t offset; /* of the record header */
	uint32_t stored_bytes;
	uint32_t raw_bytes;
	uint32_t crc;
	uint8_t type;
	uint8_t flags;
};

/* Encode e into PACK_ENTRY_BYTES at out (e, out). */
void pack_entry_encode(const struct pack_entry *e, uint8_t *out);

/*
 * Decode an entry and check it on its own (p, e, data_end, why): a known type and
 * flags, raw within BLOB_RAW_MAX_BYTES, stored consistent with the flags (a compressed
 * blob's raw length no more than its payload can decode to, so a reader never allocates
 * more for it than the pack holds the means for), and the whole
 * record inside [PACK_HEADER_BYTES, data_end), where data_end is where the pack's
 * trailer starts (for an index entry: pack bytes minus the smallest trailer and tail).
 * Returns 0 or -EBADMSG with a static reason in why (may be NULL).
 */
int pack_entry_decode(const uint8_t *p, struct pack_entry *e, uint64_t data_end,
		      const char **why);

/* The bytes of e's record in its pack (e): 16 + stored, or stored when sealed. */
uint64_t pack_record_bytes(const struct pack_entry *e);

/* Where e's stored bytes start in its pack (e): after the record header, if any. */
uint64_t pack_payload_offset(const struct pack_entry *e);

/*
 * Where the records of a pack of pack_bytes may end at the latest (pack_bytes, aead):
 * before the smallest trailer of one entry and the tail. What index entries are checked
 * against, since an index does not hold the trailer length. 0 when the pack is too small.
 */
uint64_t pack_data_end_bound(uint64_t pack_bytes, bool aead);

/*
 * Check a record read from a pack against the entry that points at it (rec, rec_len,
 * e, payload, why): rec_len must be pack_record_bytes(e); a plaintext record's header
 * must repeat the entry's type, flags, raw, stored and crc; the CRC32C of the stored
 * bytes must match. On success *payload points into rec at the stored bytes (for AEAD,
 * still sealed: see pack_blob_unseal). Returns 0, -EPROTO (short) or -EBADMSG.
 */
int pack_record_check(const uint8_t *rec, size_t rec_len, const struct pack_entry *e,
		      const uint8_t **payload, const char **why);

/* The blob AAD of e (e, out), laid out as above. */
void pack_blob_aad(const struct pack_entry *e, uint8_t out[PACK_BLOB_AAD_BYTES]);

/*
 * Verify and decrypt a sealed record's stored bytes (c, e, sealed, out): out receives
 * e->stored_bytes - REPO_SEAL_OVERHEAD bytes (the zstd frame, or the raw blob), or zeros
 * when the tag fails. Returns 0, -EBADMSG (not AEAD, too short, tag) or -EIO.
 */
int pack_blob_unseal(struct repo_crypto *c, const struct pack_entry *e, const uint8_t *sealed,
		     uint8_t *out);

/*
 * Check a whole pack file and return its entries (buf, len, c, entries, n, why): magic,
 * version, flags, the trailing SHA-256, the tail and trailer (their tags when sealed),
 * every entry, the records' contiguity and each record against its entry (CRC
 * included). It does not decrypt, decompress or hash payloads (repo_verify does). c is
 * the repository's crypto, NULL for a plaintext repository: a sealed pack needs it and a
 * plaintext one must not have it. *entries is malloc'd (NULL when n is 0); the caller
 * frees it. Returns 0, -EPROTO (truncated), -ENOMSG (magic), -EPROTONOSUPPORT (version,
 * flags), -EMSGSIZE (larger than PACK_MAX_BYTES), -ENOKEY (sealed, no c), -EBADMSG
 * (checksum, tag, a plaintext pack with c, any bad field), -ENOMEM, -EIO.
 */
int pack_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		struct pack_entry **entries, uint32_t *n, const char **why);

/*
 * A pack being built in memory. Usage: pack_builder_init once; per pack: begin, then
 * per blob reserve + write the payload + commit, then finish (buf[0, len) is the whole
 * file); pack_builder_free at the end. Owned by one thread.
 */
struct pack_builder {
	uint8_t *buf;
	size_t len; /* bytes of the pack so far */
	size_t cap;
	struct pack_entry *entries;
	uint32_t n;
	uint32_t entries_cap;
	struct repo_crypto *crypto; /* not owned; NULL builds the plaintext form */
};

void pack_builder_init(struct pack_builder *pb);

/*
 * Start a new pack (pb, c): drops what was built and writes the header; with c (not
 * owned, must outlive the pack) the pack is built in the sealed form. Returns 0 or
 * -ENOMEM.
 */
int pack_builder_begin(struct pack_builder *pb, struct repo_crypto *c);

/*
 * Make room for one more record with up to max_payload bytes (pb, max_payload, payload)
 * and point *payload where its plaintext payload goes (the zstd frame or raw bytes;
 * sealed in place by commit); valid until the next builder call. Returns 0, -EMSGSIZE if
 * the pack would pass PACK_MAX_BYTES, or -ENOMEM.
 */
int pack_builder_reserve(struct pack_builder *pb, size_t max_payload, uint8_t **payload);

/*
 * Append the record whose payload of payload_bytes the caller wrote at the reserved
 * place (pb, id, type, flags, raw_bytes, payload_bytes, e): flags is ZSTD or 0 (AEAD is
 * added in the sealed form, where the payload is sealed in place under the data key);
 * writes the header (plaintext form) and CRC and records the entry, which is returned
 * through e (may be NULL). Call after reserve. Returns 0, or -EIO when sealing fails
 * (nothing is appended then).
 */
int pack_builder_commit(struct pack_builder *pb, const struct blob_id *id, uint8_t type,
			uint8_t flags, uint32_t raw_bytes, uint32_t payload_bytes,
			struct pack_entry *e);

/*
 * Append trailer and tail, sealed in the sealed form (pb, pack_id), and compute the pack
 * id (SHA-256 of the whole file). Returns 0, -EINVAL for a pack without blobs, -ENOMEM or
 * -EIO.
 */
int pack_builder_finish(struct pack_builder *pb, struct blob_id *pack_id);

void pack_builder_free(struct pack_builder *pb);

/* The object name of a pack (pack_id, out): "data/XX/<64 hex>". */
#define PACK_NAME_BYTES (5 + 3 + 64 + 1)
void pack_name(const struct blob_id *pack_id, char out[PACK_NAME_BYTES]);

#endif
