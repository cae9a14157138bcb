/* Fuzz the pack decoder (repo/pack.c), plaintext and sealed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "repo/pack.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_repo.h"
#include "util/byteorder.h"
#include "util/crc32c.h"

/*
 * Input: a mode byte, then
 *   mode 0: a pack file as stored. Each record the trailer points at gets its CRC32C
 *           recomputed (in the record header and the entry) and the SHA-256 tail is
 *           recomputed; a pack whose header says sealed is decoded with the fixed key
 *           (its tags then fail: the header and length checks before them are the target);
 *   mode 1: a sealed pack's plaintext: u32 length of the records, the records, then the
 *           trailer's plaintext (count, reserved, entries). The harness seals trailer and
 *           tail as pack_builder_finish does, fixes the entries' CRCs and the SHA-256, so
 *           mutations reach the trailer's checks.
 */

#define PACK_META_AAD_BYTES (PACK_HEADER_BYTES + 4)

/* Recompute the CRC of every plaintext record a trailer entry points at (p, len). */
static void fix_plain(uint8_t *p, size_t len)
{
	uint32_t trailer_len, count;
	size_t trailer_off;

	if (len < PACK_MIN_BYTES)
		return;
	trailer_len = le32_decode(p + len - PACK_TAIL_BYTES);
	if (trailer_len < PACK_TRAILER_HEAD_BYTES || trailer_len > len - PACK_TAIL_BYTES - PACK_HEADER_BYTES)
		return;
	trailer_off = len - PACK_TAIL_BYTES - trailer_len;
	count = le32_decode(p + trailer_off);
	for (uint32_t i = 0; i < count; i++) {
		size_t at = trailer_off + PACK_TRAILER_HEAD_BYTES + (size_t)i * PACK_ENTRY_BYTES;
		uint64_t off;
		uint32_t stored, crc;

		if (at + PACK_ENTRY_BYTES > len - PACK_TAIL_BYTES)
			break;
		off = le64_decode(p + at + 32);
		stored = le32_decode(p + at + 40);
		if (off < PACK_HEADER_BYTES || off > trailer_off ||
		    trailer_off - off < PACK_RECORD_HEADER_BYTES + (uint64_t)stored)
			continue;
		crc = crc32c(0, p + off + PACK_RECORD_HEADER_BYTES, stored);
		le32_encode(p + off + 12, crc);
		le32_encode(p + at + 48, crc);
	}
	fuzz_fix_sha_tail(p, len);
}

static void meta_aad(const uint8_t *header, const char tag[4], uint8_t out[PACK_META_AAD_BYTES])
{
	memcpy(out, header, PACK_HEADER_BYTES);
	memcpy(out + PACK_HEADER_BYTES, tag, 4);
}

/* Build a sealed pack from its plaintext parts (in, out). Returns its length. */
static size_t build_sealed(struct fuzz_in *in, uint8_t **out)
{
	uint32_t rec_len = fuzz_u32(in);
	const uint8_t *recs, *trailer;
	size_t nrec, ntr, off, total;
	uint8_t aad[PACK_META_AAD_BYTES], tail[8], *p, *plain;

	recs = fuzz_take(in, rec_len, &nrec);
	trailer = fuzz_take(in, in->len, &ntr);
	total = PACK_HEADER_BYTES + nrec + ntr + REPO_SEAL_OVERHEAD + PACK_AEAD_TAIL_BYTES;
	p = fuzz_alloc(total);
	memcpy(p, PACK_MAGIC, 4);
	le16_encode(p + 4, PACK_FORMAT_VERSION);
	le16_encode(p + 6, PACK_F_AEAD);
	memcpy(p + PACK_HEADER_BYTES, recs, nrec);
	/* Entries' CRCs over the sealed records they point at, as the builder computes them. */
	plain = fuzz_dup(trailer, ntr);
	for (size_t at = PACK_TRAILER_HEAD_BYTES; at + PACK_ENTRY_BYTES <= ntr; at += PACK_ENTRY_BYTES) {
		uint64_t roff = le64_decode(plain + at + 32);
		uint32_t stored = le32_decode(plain + at + 40);

		if (roff >= PACK_HEADER_BYTES && roff <= PACK_HEADER_BYTES + nrec &&
		    PACK_HEADER_BYTES + nrec - roff >= stored)
			le32_encode(plain + at + 48, crc32c(0, p + roff, stored));
	}
	off = PACK_HEADER_BYTES + nrec;
	meta_aad(p, "TRLR", aad);
	fuzz_seal_meta(aad, sizeof(aad), plain, ntr, p + off);
	off += ntr + REPO_SEAL_OVERHEAD;
	le32_encode(tail, (uint32_t)(ntr + REPO_SEAL_OVERHEAD));
	le32_encode(tail + 4, 0);
	meta_aad(p, "TAIL", aad);
	fuzz_seal_meta(aad, sizeof(aad), tail, sizeof(tail), p + off);
	fuzz_fix_sha_tail(p, total);
	free(plain);
	*out = p;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct repo_crypto *c = NULL;
	struct pack_entry *entries = NULL;
	const char *why = NULL;
	uint8_t *p;
	uint32_t n = 0;
	size_t len;

	if (fuzz_u8(&in) % 2 == 0) {
		len = in.len;
		p = fuzz_dup(in.p, len);
		if (len >= PACK_HEADER_BYTES && (le16_decode(p + 6) & PACK_F_AEAD)) {
			c = fuzz_repo_crypto();
			fuzz_fix_sha_tail(p, len);
		} else {
			fix_plain(p, len);
		}
	} else {
		c = fuzz_repo_crypto();
		len = build_sealed(&in, &p);
	}
	if (pack_decode(p, len, c, &entries, &n, &why) == 0) {
		for (uint32_t i = 0; i < n; i++) {
			const uint8_t *payload;

			if (pack_record_check(p + entries[i].offset,
					      (size_t)pack_record_bytes(&entries[i]), &entries[i],
					      &payload, &why) < 0)
				abort(); /* pack_decode checked every record */
		}
		fuzz_accepted++;
	}
	free(entries);
	free(p);
	return 0;
}

/* ---- Seeds: packs from pack_builder ---------------------------------------------------- */

static int build(struct pack_builder *pb, struct repo_crypto *c)
{
	struct blob_id id, pack_id;
	uint8_t *payload;
	int rc = pack_builder_begin(pb, c);

	for (unsigned i = 0; rc == 0 && i < 3; i++) {
		memset(id.b, (int)(0x10 + i), sizeof(id.b));
		rc = pack_builder_reserve(pb, 100, &payload);
		if (rc < 0)
			break;
		if (i == 1) {
			uint8_t raw[96];
			size_t z;

			for (unsigned j = 0; j < sizeof(raw); j++)
				raw[j] = (uint8_t)"abc"[j % 3];
			z = ZSTD_compress(payload, 100, raw, sizeof(raw), 1);
			if (ZSTD_isError(z))
				return -EIO;
			rc = pack_builder_commit(pb, &id, (uint8_t)(1 + i), PACK_BLOB_F_ZSTD,
						 sizeof(raw), (uint32_t)z, NULL);
		} else {
			for (unsigned j = 0; j < 40 + 13 * i; j++)
				payload[j] = (uint8_t)(j * 7 + i);
			rc = pack_builder_commit(pb, &id, (uint8_t)(1 + i), 0, 40 + 13 * i,
						 40 + 13 * i, NULL);
		}
	}
	if (rc == 0)
		rc = pack_builder_finish(pb, &pack_id);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	struct pack_builder pb;
	uint8_t *b;
	int rc;

	pack_builder_init(&pb);
	rc = build(&pb, NULL);
	if (rc == 0)
		rc = fuzz_seed_write2(dir, "seed-plain", (uint8_t[]){ 0 }, 1, pb.buf, pb.len);
	if (rc == 0)
		rc = build(&pb, fuzz_repo_crypto());
	if (rc == 0) {
		/* As stored (mode 0), and as its plaintext parts (mode 1). */
		size_t trailer_len = PACK_TRAILER_HEAD_BYTES + (size_t)pb.n * PACK_ENTRY_BYTES;
		size_t rec_len = pb.entries[pb.n - 1].offset + pack_record_bytes(&pb.entries[pb.n - 1]) -
				 PACK_HEADER_BYTES;

		rc = fuzz_seed_write2(dir, "seed-sealed", (uint8_t[]){ 0 }, 1, pb.buf, pb.len);
		b = fuzz_alloc(5 + rec_len + trailer_len);
		b[0] = 1;
		le32_encode(b + 1, (uint32_t)rec_len);
		memcpy(b + 5, pb.buf + PACK_HEADER_BYTES, rec_len);
		le32_encode(b + 5 + rec_len, pb.n);
		le32_encode(b + 5 + rec_len + 4, 0);
		for (uint32_t i = 0; i < pb.n; i++)
			pack_entry_encode(&pb.entries[i], b + 5 + rec_len + PACK_TRAILER_HEAD_BYTES +
					  (size_t)i * PACK_ENTRY_BYTES);
		if (rc == 0)
			rc = fuzz_seed_write(dir, "seed-sealed-parts", b, 5 + rec_len + trailer_len);
		free(b);
	}
	pack_builder_free(&pb);
	return rc;
}
