/* Fuzz the index file decoder (repo/index_file.c), plaintext and sealed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "repo/index_file.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_repo.h"
#include "util/byteorder.h"

/*
 * Input: a mode byte, then
 *   mode 0: an index file as stored, its SHA-256 tail recomputed (decoded with the fixed
 *           key when its flags say sealed, where the tag then fails);
 *   mode 1: the body of a sealed index (body head and pack groups), which the harness
 *           seals under the fixed key with the header as AAD, as index_file_encode does.
 * An index that decodes must encode again and decode to the same entries.
 */

static bool entry_eq(const struct pack_entry *a, const struct pack_entry *b)
{
	return blob_id_eq(&a->id, &b->id) && a->offset == b->offset &&
	       a->stored_bytes == b->stored_bytes && a->raw_bytes == b->raw_bytes &&
	       a->crc == b->crc && a->type == b->type && a->flags == b->flags;
}

static void check_round_trip(const struct index_file *ix, struct repo_crypto *c)
{
	struct index_file again;
	uint8_t *buf;
	size_t len;

	if (index_file_encode(ix, c, &buf, &len) < 0)
		abort(); /* decoded, so the writer must be able to write it */
	if (index_file_decode(buf, len, c, &again, NULL) < 0 || again.npacks != ix->npacks)
		abort();
	for (uint32_t i = 0; i < ix->npacks; i++) {
		if (again.packs[i].nblobs != ix->packs[i].nblobs ||
		    again.packs[i].pack_bytes != ix->packs[i].pack_bytes)
			abort();
		for (uint32_t j = 0; j < ix->packs[i].nblobs; j++)
			if (!entry_eq(&again.packs[i].entries[j], &ix->packs[i].entries[j]))
				abort();
	}
	index_file_free(&again);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct repo_crypto *c = NULL;
	struct index_file ix;
	uint8_t *p;
	size_t len;

	if (fuzz_u8(&in) % 2 == 0) {
		len = in.len;
		p = fuzz_dup(in.p, len);
		fuzz_fix_sha_tail(p, len);
		if (len >= INDEX_PREFIX_BYTES && (le16_decode(p + 6) & INDEX_F_AEAD))
			c = fuzz_repo_crypto();
	} else {
		c = fuzz_repo_crypto();
		len = INDEX_PREFIX_BYTES + in.len + REPO_SEAL_OVERHEAD + INDEX_TAIL_BYTES;
		p = fuzz_alloc(len);
		memcpy(p, INDEX_MAGIC, 4);
		le16_encode(p + 4, INDEX_FORMAT_VERSION);
		le16_encode(p + 6, INDEX_F_AEAD);
		fuzz_seal_meta(p, INDEX_PREFIX_BYTES, in.p, in.len, p + INDEX_PREFIX_BYTES);
		fuzz_fix_sha_tail(p, len);
	}
	memset(&ix, 0, sizeof(ix));
	if (index_file_decode(p, len, c, &ix, NULL) == 0) {
		check_round_trip(&ix, c);
		index_file_free(&ix);
		fuzz_accepted++;
	}
	free(p);
	return 0;
}

/* ---- Seeds: index files from index_file_encode ----------------------------------------- */

static int seed(const char *dir, const char *name, struct repo_crypto *c, bool body_only)
{
	struct pack_entry e[3];
	struct index_pack packs[2];
	struct index_file ix = { .npacks = 2, .packs = packs };
	uint8_t *buf, *b;
	size_t len;
	int rc;

	memset(e, 0, sizeof(e));
	for (unsigned i = 0; i < 3; i++) {
		memset(e[i].id.b, (int)(0x20 + i), BLOB_ID_BYTES);
		e[i].offset = PACK_HEADER_BYTES + i * 200;
		e[i].raw_bytes = 100 + i;
		e[i].stored_bytes = c ? e[i].raw_bytes + REPO_SEAL_OVERHEAD : e[i].raw_bytes;
		e[i].crc = 0x12345678u + i;
		e[i].type = (uint8_t)(1 + i);
		e[i].flags = c ? PACK_BLOB_F_AEAD : 0;
	}
	memset(&packs, 0, sizeof(packs));
	memset(packs[0].pack_id.b, 0xaa, BLOB_ID_BYTES);
	packs[0].pack_bytes = 4096;
	packs[0].nblobs = 2;
	packs[0].entries = e;
	memset(packs[1].pack_id.b, 0xbb, BLOB_ID_BYTES);
	packs[1].pack_bytes = 8192;
	packs[1].nblobs = 1;
	packs[1].entries = e + 2;
	rc = index_file_encode(&ix, c, &buf, &len);
	if (rc < 0)
		return rc;
	if (body_only) {
		/* The plaintext body again, for mode 1 to seal. */
		size_t body_len = len - INDEX_PREFIX_BYTES - REPO_SEAL_OVERHEAD - INDEX_TAIL_BYTES;

		b = fuzz_alloc(body_len);
		if (repo_crypto_open(c, REPO_SEAL_META, buf, INDEX_PREFIX_BYTES,
				     buf + INDEX_PREFIX_BYTES, body_len + REPO_SEAL_OVERHEAD, b) < 0)
			rc = -EIO;
		if (rc == 0)
			rc = fuzz_seed_write2(dir, name, (uint8_t[]){ 1 }, 1, b, body_len);
		free(b);
	} else {
		rc = fuzz_seed_write2(dir, name, (uint8_t[]){ 0 }, 1, buf, len);
	}
	free(buf);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	int rc = seed(dir, "seed-plain", NULL, false);

	if (rc == 0)
		rc = seed(dir, "seed-sealed", fuzz_repo_crypto(), false);
	if (rc == 0)
		rc = seed(dir, "seed-sealed-body", fuzz_repo_crypto(), true);
	return rc;
}
