/* Tests for manifests: building, round trip, ids, and one test per corruption class. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zstd.h>

#include "helpers.h"
#include "repo/manifest.h"
#include "util/byteorder.h"

static struct snap_manifest m;
static uint8_t *obj;
static size_t len;

static void setup(void)
{
	struct blob_id sig[2];

	manifest_init(&m);
	cr_assert_eq(snap_id_make(1700000000123456789ull, m.id), 0);
	cr_assert_eq(snap_id_make(1699999999000000000ull, m.parent), 0);
	snprintf(m.vm_name, sizeof(m.vm_name), "web-1");
	snprintf(m.cpu_features, sizeof(m.cpu_features), "avx2 sse4_2 x2apic");
	m.created_ns = 1700000000123456789ull;
	m.ncpus = 4;
	cr_assert_eq(manifest_add_region(&m, 0, 3ull << 30, 64 << 10), 0);
	cr_assert_eq(manifest_add_region(&m, 4ull << 30, (1ull << 30) + 4096, 64 << 10), 0);
	cr_assert_eq(manifest_set_disk(&m, (10ull << 20) + 512, 64 << 10), 0);
	for (uint64_t i = 0; i < m.regions[0].nchunks; i += 3)
		fill_random(m.regions[0].ids[i].b, 32, i + 1);
	for (uint64_t i = 0; i < m.regions[1].nchunks; i += 5)
		fill_random(m.regions[1].ids[i].b, 32, i + 7);
	for (uint64_t i = 0; i < m.disk_nblocks; i += 2)
		fill_random(m.disk_ids[i].b, 32, i + 9);
	fill_random(sig[0].b, 32, 77);
	fill_random(sig[1].b, 32, 78);
	cr_assert_eq(manifest_set_sig(&m, sig, 2), 0);
	fill_random(m.state_id.b, 32, 5);
	m.stats = (struct snap_stats){ 11, 22, 33, 44 };
	cr_assert_eq(manifest_encode(&m, NULL, &obj, &len), 0);
}

static void teardown(void)
{
	manifest_free(&m);
	free(obj);
}

TestSuite(manifest, .init = setup, .fini = teardown);

static int decode_obj(const uint8_t *o, size_t n)
{
	struct snap_manifest out;
	const char *why = NULL;
	int rc = manifest_decode(o, n, NULL, &out, &why);

	if (rc == 0)
		manifest_free(&out);
	else
		cr_assert_not_null(why);
	return rc;
}

static void reseal(uint8_t *o, size_t n)
{
	sha256_buf(o, n - 32, o + n - 32);
}

/* The decompressed body of obj (out_len). */
static uint8_t *body(size_t *out_len)
{
	size_t raw = (size_t)le64_decode(obj + 8), stored = (size_t)le64_decode(obj + 16);
	uint8_t *b = xmalloc(raw);

	cr_assert_eq(ZSTD_decompress(b, raw, obj + 24, stored), raw);
	*out_len = raw;
	return b;
}

/* Replace obj by a correctly sealed object around body b (b, n), compressed or not. */
static void rebuild(const uint8_t *b, size_t n, bool compress)
{
	size_t cap = 24 + ZSTD_compressBound(n) + 32, stored = n;

	free(obj);
	obj = xmalloc(cap);
	memcpy(obj, MANIFEST_MAGIC, 4);
	le16_encode(obj + 4, MANIFEST_FORMAT_VERSION);
	le16_encode(obj + 6, compress ? MANIFEST_F_ZSTD : 0);
	if (compress)
		stored = ZSTD_compress(obj + 24, cap - 56, b, n, 1);
	else
		memcpy(obj + 24, b, n);
	le64_encode(obj + 8, n);
	le64_encode(obj + 16, stored);
	len = 24 + stored + 32;
	reseal(obj, len);
}

/* Offset of the fixed fields in the body: after the five strings. */
static size_t fixed_off(void)
{
	return 2 + strlen(m.id) + 2 + strlen(m.parent) + 2 + strlen(m.vm_name) + 2 +
	       strlen(m.godwit_version) + 2 + strlen(m.cpu_features);
}

/* Offset of the region table. */
static size_t regions_off(void)
{
	return fixed_off() + 8 + 8 + 4 + 4 + 8 + 4 + 4 + 32 + 32;
}

Test(manifest, round_trips_every_field)
{
	struct snap_manifest out;

	cr_assert_eq(manifest_decode(obj, len, NULL, &out, NULL), 0);
	cr_assert_str_eq(out.id, m.id);
	cr_assert_str_eq(out.parent, m.parent);
	cr_assert_str_eq(out.vm_name, "web-1");
	cr_assert_str_eq(out.godwit_version, GODWIT_VERSION);
	cr_assert_str_eq(out.cpu_features, m.cpu_features);
	cr_assert_eq(out.created_ns, m.created_ns);
	cr_assert_eq(out.ram_bytes, (4ull << 30) + 4096);
	cr_assert_eq(out.ncpus, 4);
	cr_assert_eq(out.nregions, 2);
	for (int r = 0; r < 2; r++) {
		cr_assert_eq(out.regions[r].gpa, m.regions[r].gpa);
		cr_assert_eq(out.regions[r].bytes, m.regions[r].bytes);
		cr_assert_eq(out.regions[r].chunk_bytes, 64 << 10);
		cr_assert_eq(out.regions[r].nchunks, m.regions[r].nchunks);
		cr_assert_eq(memcmp(out.regions[r].ids, m.regions[r].ids, m.regions[r].nchunks * 32), 0);
	}
	cr_assert_eq(out.regions[1].nchunks, 16385, "a short last chunk counts");
	cr_assert_eq(out.disk_bytes, m.disk_bytes);
	cr_assert_eq(out.disk_nblocks, 161);
	cr_assert_eq(memcmp(out.disk_ids, m.disk_ids, 161 * 32), 0);
	cr_assert_eq(out.nsig, 2);
	cr_assert_eq(memcmp(out.sig_ids, m.sig_ids, 64), 0);
	cr_assert(blob_id_eq(&out.state_id, &m.state_id));
	cr_assert_eq(out.stats.bytes_new, 11);
	cr_assert_eq(out.stats.duration_ms, 44);
	manifest_free(&out);
}

Test(manifest, zero_ids_compress_away)
{
	/* 4 GiB of RAM: 65537 ids = 2 MiB raw; two thirds of them zero. */
	cr_assert_lt(len, 900u << 10, "len %zu", len);
}

Test(manifest, a_full_snapshot_has_no_parent)
{
	struct snap_manifest out;

	m.parent[0] = '\0';
	free(obj);
	cr_assert_eq(manifest_encode(&m, NULL, &obj, &len), 0);
	cr_assert_eq(manifest_decode(obj, len, NULL, &out, NULL), 0);
	cr_assert_str_eq(out.parent, "");
	manifest_free(&out);
}

Test(manifest, ids_sort_by_time_and_validate)
{
	char a[SNAP_ID_BYTES], b[SNAP_ID_BYTES];

	cr_assert_eq(snap_id_make(1700000000000000000ull, a), 0);
	cr_assert_eq(snap_id_make(1700000001000000000ull, b), 0);
	cr_assert_eq(strncmp(a, "20231114T221320Z-", 17), 0, "%s", a);
	cr_assert_lt(strcmp(a, b), 0);
	cr_assert(snap_id_valid(a));
	cr_assert_not(snap_id_valid("20231114T221320Z-ABCDEF01"));
	cr_assert_not(snap_id_valid("20231114T221320Z-abcdef0"));
	cr_assert_not(snap_id_valid("20231114T221320Z-abcdef012"));
	cr_assert_not(snap_id_valid("../../etc/passwd"));
	cr_assert_not(snap_id_valid("latest"));
}

Test(manifest, check_refuses_what_decode_would)
{
	const char *why = NULL;
	struct blob_id zero = { { 0 } };

	m.state_id = zero;
	cr_assert_eq(manifest_check(&m, &why), -EINVAL);
	cr_assert_str_eq(why, "no state blob");
	fill_random(m.state_id.b, 32, 5);
	m.ncpus = 0;
	cr_assert_eq(manifest_check(&m, &why), -EINVAL);
	m.ncpus = 4;
	m.ram_bytes += 1;
	cr_assert_eq(manifest_check(&m, &why), -EINVAL);
	m.ram_bytes -= 1;
	snprintf(m.vm_name, sizeof(m.vm_name), "bad\tname");
	cr_assert_eq(manifest_check(&m, &why), -EINVAL);
	snprintf(m.vm_name, sizeof(m.vm_name), "ok");
	memcpy(m.parent, m.id, sizeof(m.id));
	cr_assert_eq(manifest_check(&m, &why), -EINVAL);
}

Test(manifest, add_region_refuses_overlap_and_bad_chunks)
{
	cr_assert_eq(manifest_add_region(&m, (5ull << 30) - 4096, 8192, 64 << 10), -EINVAL);
	cr_assert_eq(manifest_add_region(&m, 8ull << 30, 8192, 3000), -EINVAL);
	cr_assert_eq(manifest_add_region(&m, 8ull << 30, 0, 65536), -EINVAL);
	cr_assert_eq(manifest_add_region(&m, UINT64_MAX - 10, 65536, 65536), -EINVAL);
}

Test(manifest, rejects_bad_magic)
{
	obj[3] = 'X';
	cr_assert_eq(decode_obj(obj, len), -ENOMSG);
}

Test(manifest, rejects_bad_version_and_flags)
{
	le16_encode(obj + 4, 7);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EPROTONOSUPPORT);
	le16_encode(obj + 4, MANIFEST_FORMAT_VERSION);
	le16_encode(obj + 6, 0x04);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EPROTONOSUPPORT);
	le16_encode(obj + 6, MANIFEST_F_AEAD); /* sealed needs zstd */
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EPROTONOSUPPORT);
	/* The sealed form is recognised, and needs the repository's keys. */
	le16_encode(obj + 6, MANIFEST_F_ZSTD | MANIFEST_F_AEAD);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -ENOKEY);
}

Test(manifest, rejects_bad_checksum)
{
	obj[len / 2] ^= 4;
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	obj[len / 2] ^= 4;
	obj[len - 1] ^= 4;
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
}

Test(manifest, rejects_truncation_at_every_boundary)
{
	size_t cuts[] = { 0, 3, 4, 7, 8, 15, 16, 23, 24, 25, len / 2, len - 33, len - 32,
			  len - 1 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		cr_assert_eq(decode_obj(obj, cuts[i]), -EPROTO, "cut at %zu", cuts[i]);
}

Test(manifest, rejects_trailing_bytes)
{
	uint8_t *longer = xmalloc(len + 1);

	memcpy(longer, obj, len);
	longer[len] = 0;
	cr_assert_eq(decode_obj(longer, len + 1), -EBADMSG);
	free(longer);
}

Test(manifest, rejects_oversized_body_lengths)
{
	le64_encode(obj + 8, MANIFEST_BODY_MAX_BYTES + 1);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EMSGSIZE);
	le64_encode(obj + 8, 100);
	le64_encode(obj + 16, UINT64_MAX - 10);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EMSGSIZE);
}

Test(manifest, rejects_a_raw_length_the_frame_does_not_declare)
{
	le64_encode(obj + 8, le64_decode(obj + 8) - 32);
	reseal(obj, len);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/*
 * Let this test's process map at most extra bytes more than it has now (extra), so an
 * allocation of what a header claims fails and shows. ASan maps terabytes of shadow
 * up front: there the limit cannot be set, and the return codes alone are checked.
 */
static void limit_address_space(uint64_t extra)
{
#ifndef UNDER_ASAN
	unsigned long pages = 0;
	struct rlimit rl;
	FILE *f = fopen("/proc/self/statm", "r");

	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%lu", &pages), 1);
	fclose(f);
	rl.rlim_cur = rl.rlim_max = (rlim_t)pages * 4096 + extra;
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#else
	(void)extra;
#endif
}

/* A zstd frame that declares content of claimed bytes but holds one 128 KiB RLE block. */
static size_t lying_frame(uint8_t *out, uint64_t claimed)
{
	le32_encode(out, 0xfd2fb528u);   /* magic */
	out[4] = 0xe0;                   /* 8-byte content size, single segment, no checksum */
	le64_encode(out + 5, claimed);
	out[13] = (uint8_t)(1 | 1 << 1 | (128u << 10) << 3);      /* last, RLE, 128 KiB */
	out[14] = (uint8_t)(((128u << 10) << 3) >> 8);
	out[15] = (uint8_t)(((128u << 10) << 3) >> 16);
	out[16] = 0;                     /* the RLE byte */
	return 17;
}

/* A plaintext manifest object around a stored body, claiming raw bytes. */
static size_t object_around(uint8_t *o, const uint8_t *stored, size_t n, uint64_t raw)
{
	memcpy(o, obj, 8);
	le64_encode(o + 8, raw);
	le64_encode(o + 16, n);
	memcpy(o + 24, stored, n);
	reseal(o, 24 + n + 32);
	return 24 + n + 32;
}

/* A 73-byte manifest asked for 1 GiB: refused from its sizes, before anything is allocated. */
Test(manifest, a_small_object_never_gets_the_buffer_its_header_claims)
{
	uint8_t frame[17], o[128];
	size_t n = lying_frame(frame, 1ull << 30);

	cr_assert_eq(ZSTD_getFrameContentSize(frame, n), 1ull << 30);
	limit_address_space(256ull << 20);
	cr_assert_eq(decode_obj(o, object_around(o, frame, n, 1ull << 30)), -EMSGSIZE);
}

/*
 * A frame whose claim its size could back (60 MiB from about 2 KiB of zstd) but whose
 * content is 128 KiB: the buffer grows with what decodes, so the lie costs 256 KiB.
 */
Test(manifest, a_lying_frame_costs_what_it_decodes_to_not_what_it_claims)
{
	uint8_t stored[2048], o[2048 + 64];
	size_t n = lying_frame(stored, 60ull << 20);

	/* Pad with a skippable frame, which decoders pass over, to make the claim plausible. */
	le32_encode(stored + n, 0x184d2a50u);
	le32_encode(stored + n + 4, (uint32_t)(sizeof(stored) - n - 8));
	memset(stored + n + 8, 0, sizeof(stored) - n - 8);
	limit_address_space(16ull << 20);
	cr_assert_eq(decode_obj(o, object_around(o, stored, sizeof(stored), 60ull << 20)),
		     -EBADMSG);
}

Test(manifest, uncompressed_bodies_decode_too)
{
	size_t n;
	uint8_t *b = body(&n);

	rebuild(b, n, false);
	cr_assert_eq(decode_obj(obj, len), 0);
	free(b);
}

Test(manifest, rejects_counts_that_do_not_match_the_maps)
{
	size_t n;
	uint8_t *b = body(&n);

	/* One more region than the table holds. */
	le32_encode(b + fixed_off() + 20, 3);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le32_encode(b + fixed_off() + 20, 2);
	/* A region 64 KiB longer than its map. */
	le64_encode(b + regions_off() + 8, (3ull << 30) + 65536);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le64_encode(b + regions_off() + 8, 3ull << 30);
	/* A huge signature count. */
	le32_encode(b + fixed_off() + 36, 0xffffffffu);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le32_encode(b + fixed_off() + 36, 2);
	/* A disk of 2^60 bytes. */
	le64_encode(b + fixed_off() + 24, 1ull << 60);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le64_encode(b + fixed_off() + 24, (10ull << 20) + 512);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), 0, "restored");
	free(b);
}

Test(manifest, rejects_regions_out_of_bounds)
{
	size_t n;
	uint8_t *b = body(&n);

	/* The second region moved to overlap the first. */
	le64_encode(b + regions_off() + 24, 1ull << 30);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	/* ... or to wrap around the address space. */
	le64_encode(b + regions_off() + 24, UINT64_MAX - 4096);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le64_encode(b + regions_off() + 24, 4ull << 30);
	/* A chunk size that is not a power of two. */
	le32_encode(b + regions_off() + 16, 65535);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	free(b);
}

Test(manifest, rejects_bad_strings)
{
	size_t n;
	uint8_t *b = body(&n);

	/* An id string whose length runs past the body. */
	le16_encode(b, 0xffff);
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	le16_encode(b, SNAP_ID_LEN);
	/* A malformed id. */
	b[2] = 'x';
	rebuild(b, n, true);
	cr_assert_eq(decode_obj(obj, len), -EBADMSG);
	free(b);
}

/* ---- The sealed form ------------------------------------------------------------------ */

static struct repo_crypto *crypto_for(uint8_t seed)
{
	struct repo_crypto *c;
	struct repo_key key;
	uint8_t salt[REPO_KEY_SALT_BYTES];

	test_key(&key, seed);
	fill_random(salt, sizeof(salt), seed);
	cr_assert_eq(repo_crypto_new(&c, &key, salt), 0);
	return c;
}

static int decode_with(const uint8_t *o, size_t n, struct repo_crypto *c, const char **why)
{
	struct snap_manifest out;
	int rc = manifest_decode(o, n, c, &out, why);

	if (rc == 0)
		manifest_free(&out);
	return rc;
}

Test(manifest, sealed_round_trips_and_shows_no_name_time_size_or_id)
{
	struct repo_crypto *c = crypto_for(1);
	struct snap_manifest out;
	uint8_t *so, le[8];
	size_t sn;

	cr_assert_eq(manifest_encode(&m, c, &so, &sn), 0);
	cr_assert_eq(le16_decode(so + 6), MANIFEST_F_ZSTD | MANIFEST_F_AEAD);
	cr_assert_eq(manifest_decode(so, sn, c, &out, NULL), 0);
	cr_assert_str_eq(out.id, m.id);
	cr_assert_str_eq(out.vm_name, "web-1");
	cr_assert_eq(out.created_ns, m.created_ns);
	cr_assert_eq(out.regions[1].nchunks, m.regions[1].nchunks);
	cr_assert_eq(memcmp(out.regions[0].ids, m.regions[0].ids,
			    m.regions[0].nchunks * BLOB_ID_BYTES), 0);
	cr_assert(blob_id_eq(&out.state_id, &m.state_id));
	manifest_free(&out);
	cr_assert_null(memmem(so, sn, "web-1", 5));
	cr_assert_null(memmem(so, sn, "avx2", 4));
	cr_assert_null(memmem(so, sn, m.id, 8), "the time, as text");
	cr_assert_null(memmem(so, sn, m.state_id.b, 32));
	le64_encode(le, m.created_ns);
	cr_assert_null(memmem(so, sn, le, 8), "the time");
	le64_encode(le, le64_decode(obj + 8));
	cr_assert_null(memmem(so, sn, le, 8), "the body length, so the VM's size");
	free(so);
	repo_crypto_free(c);
}

Test(manifest, sealed_needs_its_key_and_plaintext_refuses_one)
{
	struct repo_crypto *c = crypto_for(1), *other = crypto_for(2);
	const char *why = NULL;
	uint8_t *so;
	size_t sn;

	cr_assert_eq(manifest_encode(&m, c, &so, &sn), 0);
	cr_assert_eq(decode_with(so, sn, NULL, &why), -ENOKEY);
	cr_assert_eq(decode_with(so, sn, other, &why), -EBADMSG);
	cr_assert_str_eq(why, "authentication failed: the manifest was altered");
	cr_assert_eq(decode_with(obj, len, c, &why), -EBADMSG);
	cr_assert_str_eq(why, "plaintext manifest in an encrypted repository");
	cr_assert_eq(decode_with(so, sn, c, &why), 0);
	free(so);
	repo_crypto_free(c);
	repo_crypto_free(other);
}

Test(manifest, sealed_rejects_flips_truncation_and_trailing_bytes)
{
	struct repo_crypto *c = crypto_for(1);
	const char *why = NULL;
	uint8_t *so, *longer;
	size_t sn, cuts[9];

	cr_assert_eq(manifest_encode(&m, c, &so, &sn), 0);
	{
		size_t spots[] = { 8, 19, 20, 27, 28, sn / 2, sn - 48, sn - 33 };

		for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
			so[spots[i]] ^= 0x40;
			cr_assert_eq(decode_with(so, sn, c, &why), -EBADMSG, "flip at %zu", spots[i]);
			cr_assert_str_eq(why, "checksum mismatch");
			reseal(so, sn);
			cr_assert_eq(decode_with(so, sn, c, &why), -EBADMSG, "resealed at %zu", spots[i]);
			cr_assert_str_eq(why, "authentication failed: the manifest was altered");
			so[spots[i]] ^= 0x40;
			reseal(so, sn);
		}
	}
	cuts[0] = 0, cuts[1] = 7, cuts[2] = 8, cuts[3] = 20, cuts[4] = 8 + 28 + 8 + 31;
	cuts[5] = sn / 2, cuts[6] = sn - 33, cuts[7] = sn - 32, cuts[8] = sn - 1;
	for (size_t i = 0; i < 9; i++) {
		int rc = decode_with(so, cuts[i], c, &why);

		cr_assert(rc == -EPROTO || rc == -EBADMSG, "cut at %zu: %d", cuts[i], rc);
	}
	longer = xmalloc(sn + 1);
	memcpy(longer, so, sn);
	longer[sn] = 0;
	cr_assert_eq(decode_with(longer, sn + 1, c, &why), -EBADMSG);
	free(longer);
	free(so);
	repo_crypto_free(c);
}
