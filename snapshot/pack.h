/* Packs: the files under data/ that hold blobs, each compressed on its own, with a trailer table. */
#ifndef SNAPSHOT_PACK_H
#define SNAPSHOT_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot/blob.h"

/*
 * Disk format. Changing anything here requires a PACK_FORMAT_VERSION bump.
 * All integers are little-endian. A pack is named "data/XX/<pack id>" where the pack id
 * is the SHA-256 of the whole file (so it says nothing about content once the bytes are
 * ciphertext) and XX its first two hex digits.
 *
 *    0        4         6        8
 *    +--------+---------+--------+
 *    | "GWPK" | version | flags  |                       header (flags 0)
 *    +--------+---------+--------+
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
 *    entry (also the blob entry of index files):
 *    0         32       40       44    48      52     53      54     56
 *    +---------+--------+--------+-----+-------+------+-------+------+
 *    | id (32) | offset | stored | raw | crc   | type | flags | rsvd |
 *    +---------+--------+--------+-----+-------+------+-------+------+
 *
 *    type         enum blob_type, 1..4; 0 is invalid
 *    flags        bit 0 ZSTD: the payload is one zstd frame of the raw bytes, and
 *                 stored < raw (a blob that does not shrink is stored raw, flags 0,
 *                 stored == raw); bit 1 AEAD (reserved for encrypted repositories:
 *                 payload = nonce (12) || ciphertext || tag (16)); others invalid
 *    raw          bytes of plaintext, <= BLOB_RAW_MAX_BYTES
 *    stored       payload bytes
 *    crc          CRC32C of the payload
 *    offset       of the record (its 16-byte header) in the pack
 *    trailer_len  bytes of the trailer: 8 + 56 * count
 *    sha256       over every byte before it
 *
 * Records follow each other from offset 8 with no gaps, in trailer order, and the last
 * ends where the trailer starts, so every byte of a pack is accounted for. A reader
 * needs only an index entry to fetch one blob: it range-reads [offset, offset + 16 +
 * stored), checks the record header against the entry and the CRC, decompresses into
 * exactly raw bytes and compares the hash of the result with the id.
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

#define PACK_BLOB_F_ZSTD 0x01u
#define PACK_BLOB_F_AEAD 0x02u /* reserved; rejected until encryption lands */
#define PACK_BLOB_F_KNOWN PACK_BLOB_F_ZSTD

_Static_assert(PACK_ENTRY_BYTES == BLOB_ID_BYTES + 8 + 4 + 4 + 4 + 1 + 1 + 2, "entry");
_Static_assert(PACK_RECORD_HEADER_BYTES == 1 + 1 + 2 + 4 + 4 + 4, "record header");
_Static_assert(PACK_TAIL_BYTES == 4 + 4 + 32, "tail");

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
 * flags, raw within BLOB_RAW_MAX_BYTES, stored consistent with the flags, and the whole
 * record inside [PACK_HEADER_BYTES, data_end), where data_end is where the pack's
 * trailer starts (for an index entry: pack bytes minus the smallest trailer and tail).
 * Returns 0 or -EBADMSG with a static reason in why (may be NULL).
 */
int pack_entry_decode(const uint8_t *p, struct pack_entry *e, uint64_t data_end,
		      const char **why);

/*
 * Check a record read from a pack against the entry that points at it (rec, rec_len,
 * e, payload, why): rec_len must be 16 + stored, the record header must repeat the
 * entry's type, flags, raw, stored and crc, and the CRC32C of the payload must match.
 * On success *payload points into rec. Returns 0, -EPROTO (short) or -EBADMSG.
 */
int pack_record_check(const uint8_t *rec, size_t rec_len, const struct pack_entry *e,
		      const uint8_t **payload, const char **why);

/*
 * Check a whole pack file and return its entries (buf, len, entries, n, why): magic,
 * version, flags, the trailing SHA-256, the trailer bounds, every entry, the records'
 * contiguity and each record against its entry (CRC included). It does not decompress
 * or hash payloads (repo_verify does). *entries is malloc'd (NULL when n is 0); the
 * caller frees it. Returns 0, -EPROTO (truncated), -ENOMSG (magic),
 * -EPROTONOSUPPORT (version, flags), -EMSGSIZE (larger than PACK_MAX_BYTES), -EBADMSG,
 * -ENOMEM.
 */
int pack_decode(const uint8_t *buf, size_t len, struct pack_entry **entries, uint32_t *n,
		const char **why);

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
};

void pack_builder_init(struct pack_builder *pb);

/* Start a new pack (pb): drops what was built and writes the header. Returns 0 or -ENOMEM. */
int pack_builder_begin(struct pack_builder *pb);

/*
 * Make room for one more record with up to max_payload bytes (pb, max_payload, payload)
 * and point *payload where its bytes go; valid until the next builder call. Returns 0,
 * -EMSGSIZE if the pack would pass PACK_MAX_BYTES, or -ENOMEM.
 */
int pack_builder_reserve(struct pack_builder *pb, size_t max_payload, uint8_t **payload);

/*
 * Append the record whose stored payload the caller wrote at the reserved place (pb,
 * id, type, flags, raw_bytes, stored_bytes): writes its header and CRC and records the
 * entry, which is returned through e (may be NULL). Call after reserve.
 */
void pack_builder_commit(struct pack_builder *pb, const struct blob_id *id, uint8_t type,
			 uint8_t flags, uint32_t raw_bytes, uint32_t stored_bytes,
			 struct pack_entry *e);

/*
 * Append trailer and tail (pb, pack_id) and compute the pack id (SHA-256 of the whole
 * file). Returns 0, -EINVAL for a pack without blobs, or -ENOMEM.
 */
int pack_builder_finish(struct pack_builder *pb, struct blob_id *pack_id);

void pack_builder_free(struct pack_builder *pb);

/* The object name of a pack (pack_id, out): "data/XX/<64 hex>". */
#define PACK_NAME_BYTES (5 + 3 + 64 + 1)
void pack_name(const struct blob_id *pack_id, char out[PACK_NAME_BYTES]);

#endif
