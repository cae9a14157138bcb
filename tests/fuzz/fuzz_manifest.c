/* Fuzz the snapshot manifest decoder (repo/manifest.c), plaintext and sealed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "repo/manifest.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_repo.h"
#include "util/byteorder.h"

/*
 * Input: a mode byte, then
 *   mode 0: a manifest object, as stored; its SHA-256 tail is recomputed, and it is
 *           decoded with the fixed key when its flags say sealed;
 *   mode 1: a raw manifest body, which the harness compresses and frames as a plaintext
 *           object (header, zstd frame, SHA-256), so mutations reach the body's checks;
 *   mode 2: the same, sealed under the fixed key as an encrypted repository stores it.
 * A manifest that decodes must also encode again (manifest_check agrees with the
 * decoder) and decode to the same maps: the harness aborts otherwise.
 */

static int on_ref(void *arg, const struct snap_ref *ref)
{
	char what[96];

	snap_ref_describe(ref, what, sizeof(what));
	++*(uint64_t *)arg;
	return 0;
}

/* Decoded manifests must survive encode and decode unchanged. */
static void check_round_trip(const struct snap_manifest *m, struct repo_crypto *c)
{
	struct snap_manifest again;
	const char *why = NULL;
	uint8_t *obj;
	size_t len;
	uint64_t n = 0;

	manifest_foreach_ref(m, on_ref, &n);
	if (manifest_encode(m, c, &obj, &len) < 0)
		abort(); /* the decoder accepted what no writer may publish */
	if (manifest_decode(obj, len, c, &again, &why) < 0)
		abort();
	if (strcmp(again.id, m->id) || again.nregions != m->nregions ||
	    again.disk_nblocks != m->disk_nblocks || again.nsig != m->nsig ||
	    (m->disk_nblocks && memcmp(again.disk_ids, m->disk_ids,
				       (size_t)m->disk_nblocks * sizeof(*m->disk_ids))))
		abort();
	for (uint32_t i = 0; i < m->nregions; i++)
		if (again.regions[i].nchunks != m->regions[i].nchunks ||
		    memcmp(again.regions[i].ids, m->regions[i].ids,
			   (size_t)m->regions[i].nchunks * sizeof(struct blob_id)))
			abort();
	manifest_free(&again);
	free(obj);
}

/* A plaintext (c NULL) or sealed object around a raw body (body, len, c, out). */
static size_t frame_body(const uint8_t *body, size_t len, struct repo_crypto *c, uint8_t **out)
{
	size_t bound = ZSTD_compressBound(len), n, at, total;
	uint8_t *z = fuzz_alloc(bound + MANIFEST_RAW_LEN_BYTES), *obj;

	n = ZSTD_compress(z + MANIFEST_RAW_LEN_BYTES, bound, body, len, 1);
	if (ZSTD_isError(n))
		abort();
	obj = fuzz_alloc(MANIFEST_HEADER_BYTES + REPO_SEAL_OVERHEAD + MANIFEST_RAW_LEN_BYTES + n +
			 MANIFEST_TAIL_BYTES);
	memcpy(obj, MANIFEST_MAGIC, 4);
	le16_encode(obj + 4, MANIFEST_FORMAT_VERSION);
	le16_encode(obj + 6, c ? MANIFEST_F_ZSTD | MANIFEST_F_AEAD : MANIFEST_F_ZSTD);
	if (c) {
		le64_encode(z, len);
		fuzz_seal_meta(obj, MANIFEST_PREFIX_BYTES, z, MANIFEST_RAW_LEN_BYTES + n,
			       obj + MANIFEST_PREFIX_BYTES);
		at = MANIFEST_PREFIX_BYTES + REPO_SEAL_OVERHEAD + MANIFEST_RAW_LEN_BYTES + n;
	} else {
		le64_encode(obj + 8, len);
		le64_encode(obj + 16, n);
		memcpy(obj + MANIFEST_HEADER_BYTES, z + MANIFEST_RAW_LEN_BYTES, n);
		at = MANIFEST_HEADER_BYTES + n;
	}
	total = at + MANIFEST_TAIL_BYTES;
	fuzz_fix_sha_tail(obj, total);
	free(z);
	*out = obj;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct repo_crypto *c = NULL;
	struct snap_manifest m;
	const char *why = NULL;
	uint8_t *obj, mode;
	size_t len;

	if (size < 1)
		return 0;
	mode = data[0] % 3;
	if (mode == 0) {
		len = size - 1;
		obj = fuzz_dup(data + 1, len);
		fuzz_fix_sha_tail(obj, len);
		if (len >= 8 && (le16_decode(obj + 6) & MANIFEST_F_AEAD))
			c = fuzz_repo_crypto();
	} else {
		c = mode == 2 ? fuzz_repo_crypto() : NULL;
		len = frame_body(data + 1, size - 1, c, &obj);
	}
	if (manifest_decode(obj, len, c, &m, &why) == 0) {
		check_round_trip(&m, c);
		manifest_free(&m);
		fuzz_accepted++;
	}
	free(obj);
	return 0;
}

/* ---- Seeds: manifests from manifest_encode --------------------------------------------- */

static void fill_ids(struct blob_id *ids, uint64_t n, uint8_t salt)
{
	for (uint64_t i = 0; i < n; i++)
		for (size_t j = 0; j < BLOB_ID_BYTES; j++)
			ids[i].b[j] = i % 3 == 1 ? 0 : (uint8_t)(i * 41 + j * 7 + salt);
}

static int seed_manifest(struct snap_manifest *m, int variant)
{
	struct blob_id sig[2];
	int rc;

	manifest_init(m);
	snprintf(m->id, sizeof(m->id), "20260101T000000Z-0000000%d", variant);
	snprintf(m->vm_name, sizeof(m->vm_name), "vm%d", variant);
	snprintf(m->cpu_features, sizeof(m->cpu_features), "fpu sse2 avx");
	m->created_ns = 1767225600000000000ull;
	m->ncpus = 2;
	memset(m->state_id.b, 0x42, BLOB_ID_BYTES);
	rc = manifest_add_region(m, 0, 256 << 10, 64 << 10);
	if (rc == 0 && variant) {
		snprintf(m->parent, sizeof(m->parent), "20251231T235959Z-0000000f");
		rc = manifest_add_region(m, 1ull << 32, (128 << 10) + 4096, 64 << 10);
		if (rc == 0)
			rc = manifest_set_disk(m, (1 << 20) + 512 * 3, 64 << 10);
		fill_ids(sig, 2, 9);
		if (rc == 0)
			rc = manifest_set_sig(m, sig, 2);
		if (rc == 0)
			fill_ids(m->disk_ids, m->disk_nblocks, 5);
	}
	for (uint32_t i = 0; rc == 0 && i < m->nregions; i++)
		fill_ids(m->regions[i].ids, m->regions[i].nchunks, (uint8_t)i);
	return rc;
}

static int write_mode(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
		      size_t len)
{
	return fuzz_seed_write2(dir, name, &mode, 1, p, len);
}

int fuzz_write_seeds(const char *dir)
{
	int rc = 0;

	for (int variant = 0; variant < 2 && rc == 0; variant++) {
		struct snap_manifest m;
		uint8_t *obj = NULL, *body = NULL;
		size_t len = 0;
		char name[64];

		rc = seed_manifest(&m, variant);
		if (rc == 0)
			rc = manifest_encode(&m, NULL, &obj, &len);
		if (rc == 0) {
			snprintf(name, sizeof(name), "seed-object-%d", variant);
			rc = write_mode(dir, name, 0, obj, len);
		}
		if (rc == 0) {
			uint64_t raw = le64_decode(obj + 8), stored = le64_decode(obj + 16);

			body = fuzz_alloc((size_t)raw);
			if (ZSTD_decompress(body, (size_t)raw, obj + MANIFEST_HEADER_BYTES,
					    (size_t)stored) != raw)
				rc = -EIO;
			snprintf(name, sizeof(name), "seed-body-%d", variant);
			if (rc == 0)
				rc = write_mode(dir, name, 1, body, (size_t)raw);
			snprintf(name, sizeof(name), "seed-sealed-body-%d", variant);
			if (rc == 0)
				rc = write_mode(dir, name, 2, body, (size_t)raw);
		}
		free(obj);
		obj = NULL;
		if (rc == 0)
			rc = manifest_encode(&m, fuzz_repo_crypto(), &obj, &len);
		if (rc == 0) {
			snprintf(name, sizeof(name), "seed-sealed-object-%d", variant);
			rc = write_mode(dir, name, 0, obj, len);
		}
		free(obj);
		free(body);
		manifest_free(&m);
	}
	return rc;
}
