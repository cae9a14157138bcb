/*
 * Tests for encrypted repositories end to end: round trips, key handling, no plaintext in
 * any object, dedup under keyed ids, and every kind of damage or tampering refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/index_file.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/repo_crypto.h"
#include "util/byteorder.h"
#include "util/crc32c.h"

#define RAM_BYTES (2u << 20)
#define DISK_BYTES (1u << 20)
#define CHUNK (64u << 10)

static char dir[64], repo_dir[128];
static struct repo_key key;
static struct repo *r;
static uint8_t *data;
static struct snap_manifest m;
static struct lines lines;
static char err[512];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	test_key(&key, 1);
	cr_assert_eq(repo_init_keyed(repo_dir, 0, 0, &key, err, sizeof(err)), 0, "%s", err);
	r = repo_open_key_ok(repo_dir, &key);
	data = xmalloc(RAM_BYTES + DISK_BYTES);
	fill_guestlike(data, RAM_BYTES + DISK_BYTES, 11);
	manifest_init(&m);
	memset(&lines, 0, sizeof(lines));
	err[0] = '\0';
}

static void teardown(void)
{
	repo_close(r);
	manifest_free(&m);
	free(data);
	tmpdir_remove(dir);
}

TestSuite(repo_encrypted, .init = setup, .fini = teardown);

static void reopen(void)
{
	repo_close(r);
	r = repo_open_key_ok(repo_dir, &key);
}

static void publish(const char *vm_name)
{
	manifest_free(&m);
	manifest_fill(&m, r, data, RAM_BYTES, DISK_BYTES, vm_name);
	cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
}

static struct repo_verify_result verify(bool read_data)
{
	struct repo_verify_result res;

	memset(&lines, 0, sizeof(lines));
	cr_assert_eq(repo_verify(r, read_data, lines_collect, &lines, &res), 0);
	lines_print(&lines);
	return res;
}

static void object_path(const struct blob_id *id, char *out, size_t len)
{
	char hex[BLOB_ID_HEX_BYTES];

	blob_id_hex(id, hex);
	snprintf(out, len, "%s/data/%.2s/%s", repo_dir, hex, hex);
}

/* Recompute the trailing SHA-256 of the object at path, so only a tag can catch an edit. */
static void reseal_file(const char *path)
{
	size_t n;
	uint8_t *buf = file_read(path, &n);

	sha256_buf(buf, n - 32, buf + n - 32);
	file_write(path, buf, n);
	free(buf);
}

Test(repo_encrypted, init_records_aes_gcm_keyed_ids_and_a_salt)
{
	const struct repo_config *c = repo_config_of(r);
	uint8_t zero[REPO_KEY_SALT_BYTES] = { 0 };
	char path[256];
	size_t n;

	cr_assert_eq(c->encryption, REPO_ENC_AES256GCM);
	cr_assert_eq(c->id_algo, REPO_ID_HMAC_SHA256);
	cr_assert_neq(memcmp(c->key_salt, zero, sizeof(zero)), 0);
	snprintf(path, sizeof(path), "%s/config", repo_dir);
	free(file_read(path, &n));
	cr_assert_eq(n, REPO_CONFIG_BYTES);
}

Test(repo_encrypted, blobs_and_snapshots_round_trip_and_verify_clean)
{
	struct snap_manifest back;
	struct repo_verify_result res;
	struct repo_blob_info info;
	uint8_t buf[CHUNK];
	struct blob_id id;

	/* Readable from the pack being built, before any flush. */
	cr_assert_eq(repo_blob_put(r, BLOB_T_META, "not flushed yet", 15, &id), 0);
	cr_assert_eq(repo_blob_read(r, &id, buf, 15), 0);
	cr_assert_eq(memcmp(buf, "not flushed yet", 15), 0);
	publish("vm");
	reopen();
	cr_assert_eq(snap_load(r, "latest", &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.id, m.id);
	cr_assert_str_eq(back.vm_name, "vm");
	for (uint64_t i = 0; i < back.regions[0].nchunks; i++) {
		cr_assert_eq(repo_blob_read(r, &back.regions[0].ids[i], buf, CHUNK), 0, "chunk %lu",
			     (unsigned long)i);
		cr_assert_eq(memcmp(buf, data + i * CHUNK, CHUNK), 0);
	}
	for (uint64_t i = 0; i < back.disk_nblocks; i++) {
		cr_assert_eq(repo_blob_read(r, &back.disk_ids[i], buf, CHUNK), 0);
		cr_assert_eq(memcmp(buf, data + RAM_BYTES + i * CHUNK, CHUNK), 0);
	}
	cr_assert_eq(repo_blob_info(r, &back.state_id, &info), 0);
	cr_assert(info.flags & PACK_BLOB_F_AEAD);
	cr_assert_eq(info.stored_bytes, info.raw_bytes + REPO_SEAL_OVERHEAD, "state is not zstd'd");
	manifest_free(&back);
	res = verify(true);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.notes, 0);
	cr_assert_eq(res.snapshots, 1);
	cr_assert_gt(res.blobs, 10);
	cr_assert_eq(res.blobs_read, res.blobs, "every blob opened and re-hashed");
}

Test(repo_encrypted, a_wrong_key_is_refused_with_a_clear_message)
{
	struct repo_key other;
	struct repo *r2;
	char expect[512];

	test_key(&other, 2);
	cr_assert_eq(repo_open_keyed(&r2, repo_dir, &other, err, sizeof(err)), -EKEYREJECTED);
	snprintf(expect, sizeof(expect),
		 "wrong key for repository %s: --key-file names another repository's key", repo_dir);
	cr_assert_str_eq(err, expect);
}

Test(repo_encrypted, no_key_or_a_key_for_a_plaintext_repository_is_refused)
{
	struct repo *r2;
	char plain[256];

	cr_assert_eq(repo_open(&r2, repo_dir, err, sizeof(err)), -ENOKEY);
	cr_assert(strstr(err, "is encrypted: pass --key-file FILE"), "%s", err);
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	cr_assert_eq(repo_init(plain, 0, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(repo_open_keyed(&r2, plain, &key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "is not encrypted (made with --insecure-no-encryption): drop --key-file"),
		  "%s", err);
}

/* A 64 KiB chunk that does not compress, with a marker in it (out, marker). */
static void marked_chunk(uint8_t *out, const char *marker)
{
	fill_random(out, CHUNK, 77);
	for (size_t off = 100; off + strlen(marker) < CHUNK; off += 9000)
		memcpy(out + off, marker, strlen(marker));
}

/* Store the marked chunk twice over, in memory and on disk, for a VM named SECRETNAME. */
static void store_secrets(struct repo *rr, struct snap_manifest *sm, uint8_t *chunk,
			  struct blob_id *id)
{
	static const char text[] = "GODWIT-TEXT-SECRET-0123456789 ";

	marked_chunk(chunk, "GODWIT-PLAINTEXT-PATTERN-7f3a9c");
	manifest_init(sm);
	snprintf(sm->vm_name, sizeof(sm->vm_name), "SECRETNAME");
	sm->ncpus = 1;
	cr_assert_eq(manifest_add_region(sm, 0, 2 * CHUNK, CHUNK), 0);
	cr_assert_eq(repo_chunk_put(rr, chunk, CHUNK, &sm->regions[0].ids[0]), 0);
	/* A compressible chunk too: zstd must not be what hides it. */
	{
		uint8_t *t = xmalloc(CHUNK);

		for (size_t i = 0; i < CHUNK; i++)
			t[i] = (uint8_t)text[i % (sizeof(text) - 1)];
		cr_assert_eq(repo_chunk_put(rr, t, CHUNK, &sm->regions[0].ids[1]), 0);
		free(t);
	}
	cr_assert_eq(repo_blob_put(rr, BLOB_T_STATE, "state of SECRETNAME", 19, &sm->state_id), 0);
	cr_assert_eq(snap_publish(rr, sm, err, sizeof(err)), 0, "%s", err);
	*id = sm->regions[0].ids[0];
}

Test(repo_encrypted, objects_show_no_plaintext_names_hashes_or_times)
{
	uint8_t *chunk = xmalloc(CHUNK), sum[32], ns[8];
	char hex[65], found[512] = "", plain_dir[256];
	struct blob_id id;
	struct snap_manifest sm;
	struct repo *pr;

	store_secrets(r, &sm, chunk, &id);
	sha256_buf(chunk, CHUNK, sum);
	hex_encode(sum, 32, hex);
	le64_encode(ns, sm.created_ns);
	cr_assert_not(tree_find(repo_dir, "GODWIT-PLAINTEXT-PATTERN", 24, found, sizeof(found)),
		      "the chunk's bytes are in %s", found);
	cr_assert_not(tree_find(repo_dir, "GODWIT-TEXT-SECRET", 18, found, sizeof(found)),
		      "the text chunk is in %s", found);
	cr_assert_not(tree_find(repo_dir, "SECRETNAME", 10, found, sizeof(found)),
		      "the VM name is in %s", found);
	cr_assert_not(tree_find(repo_dir, sum, 32, found, sizeof(found)),
		      "the chunk's SHA-256 is in %s", found);
	cr_assert_not(tree_find(repo_dir, hex, 64, found, sizeof(found)),
		      "the chunk's SHA-256 in hex is in %s", found);
	cr_assert_not(tree_find(repo_dir, id.b, 32, found, sizeof(found)),
		      "even the keyed id is in %s", found);
	cr_assert_not(tree_find(repo_dir, ns, 8, found, sizeof(found)),
		      "the snapshot's time is in %s", found);
	manifest_free(&sm);

	/* The control: the same in a plaintext repository is found, so the search works. */
	snprintf(plain_dir, sizeof(plain_dir), "%s/plain", dir);
	cr_assert_eq(repo_init(plain_dir, 0, 0, err, sizeof(err)), 0, "%s", err);
	pr = repo_open_ok(plain_dir);
	store_secrets(pr, &sm, chunk, &id);
	cr_assert_eq(memcmp(id.b, sum, 32), 0, "plaintext ids are the SHA-256");
	cr_assert(tree_find(plain_dir, "GODWIT-PLAINTEXT-PATTERN", 24, found, sizeof(found)));
	cr_assert(tree_find(plain_dir, "SECRETNAME", 10, found, sizeof(found)));
	cr_assert(tree_find(plain_dir, sum, 32, found, sizeof(found)));
	repo_close(pr);
	manifest_free(&sm);
	free(chunk);
}

Test(repo_encrypted, identical_chunks_are_stored_once_across_snapshots_and_vms)
{
	struct repo_verify_result res;
	struct repo_stats st;
	uint64_t stored_chunks = 0, blobs_first;

	publish("vm-a");
	for (uint64_t i = 0; i < m.regions[0].nchunks; i++)
		stored_chunks += !blob_id_is_zero(&m.regions[0].ids[i]);
	reopen();
	blobs_first = verify(false).blobs;
	/* A second snapshot of the same VM and one of another VM with the same contents. */
	publish("vm-a");
	reopen();
	publish("vm-b");
	repo_stats_get(r, &st);
	cr_assert_eq(st.blobs_new, 1, "only vm-b's state blob is new");
	cr_assert_eq(st.bytes_new_raw, strlen("state of vm-b"));
	cr_assert_geq(st.blobs_dedup, stored_chunks, "every chunk of vm-b was there already");
	reopen();
	res = verify(true);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.snapshots, 3);
	cr_assert_eq(res.blobs, blobs_first + 1, "each chunk is stored once");
}

Test(repo_encrypted, ids_differ_between_repositories_with_different_keys)
{
	struct repo_key other;
	struct repo *r2;
	struct blob_id a, b;
	char dir2[256];

	test_key(&other, 3);
	snprintf(dir2, sizeof(dir2), "%s/other", dir);
	cr_assert_eq(repo_init_keyed(dir2, 0, 0, &other, err, sizeof(err)), 0, "%s", err);
	r2 = repo_open_key_ok(dir2, &other);
	cr_assert_eq(blob_id_compute(r, data, CHUNK, &a), 0);
	cr_assert_eq(blob_id_compute(r2, data, CHUNK, &b), 0);
	cr_assert_not(blob_id_eq(&a, &b), "no linking of content across repositories");
	repo_close(r2);
	/* The same key file for a second repository still gives other ids (another salt). */
	snprintf(dir2, sizeof(dir2), "%s/same-key", dir);
	cr_assert_eq(repo_init_keyed(dir2, 0, 0, &key, err, sizeof(err)), 0, "%s", err);
	r2 = repo_open_key_ok(dir2, &key);
	cr_assert_eq(blob_id_compute(r2, data, CHUNK, &b), 0);
	cr_assert_not(blob_id_eq(&a, &b));
	repo_close(r2);
}

Test(repo_encrypted, a_bit_flip_in_a_pack_fails_get_and_verify_names_it)
{
	struct repo_blob_info info;
	struct blob_id id;
	char path[256], hex[BLOB_ID_HEX_BYTES], want[200];
	uint8_t *back;
	size_t n;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + CHUNK * 8, CHUNK, &id), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(repo_blob_info(r, &id, &info), 0);
	object_path(&info.pack_id, path, sizeof(path));
	blob_id_hex(&info.pack_id, hex);
	file_flip(path, info.offset + info.stored_bytes / 2, 0x20);
	reopen();
	cr_assert_eq(repo_blob_get(r, &id, &back, &n), -EBADMSG);
	verify(true);
	snprintf(want, sizeof(want), "pack %s: checksum mismatch", hex);
	cr_assert(lines_has(&lines, want), "no '%s'", want);
	/* With the file checksum made to match, the blob's own checks still refuse it. */
	reseal_file(path);
	cr_assert_eq(repo_blob_get(r, &id, &back, &n), -EBADMSG);
	verify(true);
	cr_assert_gt(lines.problems, 0);
}

Test(repo_encrypted, a_flip_in_the_sealed_trailer_or_tail_fails_its_tag)
{
	struct repo_blob_info info;
	struct blob_id id;
	char path[256], hex[BLOB_ID_HEX_BYTES], want[200];
	size_t n;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + CHUNK * 8, CHUNK, &id), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(repo_blob_info(r, &id, &info), 0);
	object_path(&info.pack_id, path, sizeof(path));
	blob_id_hex(&info.pack_id, hex);
	free(file_read(path, &n));
	file_flip(path, n - PACK_AEAD_TAIL_BYTES - 30, 0x01); /* the trailer's ciphertext */
	reseal_file(path);
	reopen();
	verify(true);
	snprintf(want, sizeof(want), "pack %s: trailer authentication failed", hex);
	cr_assert(lines_has(&lines, want), "no '%s'", want);
	file_flip(path, n - PACK_AEAD_TAIL_BYTES - 30, 0x01);
	file_flip(path, n - 40, 0x01); /* the tail's tag */
	reseal_file(path);
	verify(true);
	snprintf(want, sizeof(want), "pack %s: tail authentication failed", hex);
	cr_assert(lines_has(&lines, want), "no '%s'", want);
}

Test(repo_encrypted, a_bit_flip_in_an_index_is_reported_by_verify)
{
	char path[256], want[200];
	struct blob_id id;
	size_t n;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + CHUNK * 8, CHUNK, &id), 0);
	cr_assert_eq(repo_flush(r), 0);
	first_object(repo_dir, "index", path, sizeof(path));
	free(file_read(path, &n));
	file_flip(path, n / 2, 0x08);
	reopen();
	cr_assert_not(repo_blob_known(r, &id), "a damaged index is not used");
	verify(false);
	snprintf(want, sizeof(want), "index %s: checksum mismatch", strrchr(path, '/') + 1);
	cr_assert(lines_has(&lines, want), "no '%s'", want);
	reseal_file(path);
	reopen();
	cr_assert_not(repo_blob_known(r, &id));
	verify(false);
	snprintf(want, sizeof(want), "index %s: authentication failed: the index was altered",
		 strrchr(path, '/') + 1);
	cr_assert(lines_has(&lines, want), "no '%s'", want);
}

Test(repo_encrypted, a_bit_flip_in_a_manifest_is_refused_clearly)
{
	struct snap_manifest back;
	char path[256], want[200];
	size_t n;

	publish("vm");
	snprintf(path, sizeof(path), "%s/snapshots/%s", repo_dir, m.id);
	free(file_read(path, &n));
	file_flip(path, n / 2, 0x02);
	cr_assert_eq(snap_load(r, m.id, &back, err, sizeof(err)), -EBADMSG);
	snprintf(want, sizeof(want), "snapshot %s: checksum mismatch", m.id);
	cr_assert_str_eq(err, want);
	reseal_file(path);
	cr_assert_eq(snap_load(r, m.id, &back, err, sizeof(err)), -EBADMSG);
	snprintf(want, sizeof(want), "snapshot %s: authentication failed: the manifest was altered",
		 m.id);
	cr_assert_str_eq(err, want);
	verify(true);
	cr_assert(lines_has(&lines, want), "verify does not say '%s'", want);
}

Test(repo_encrypted, a_blob_swapped_for_another_is_rejected_by_its_tag)
{
	struct repo_blob_info ia, ib;
	struct blob_id a, b;
	struct repo_crypto *c;
	struct index_file ix;
	struct index_pack p;
	struct pack_entry es[2];
	char pack[256], path[256], name[INDEX_NAME_BYTES];
	uint8_t *buf, *tmp, *back;
	size_t len, n;

	/* Two incompressible blobs of the same length, alone in one pack. */
	fill_random(data, 2 * CHUNK, 99);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data, CHUNK, &a), 0);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + CHUNK, CHUNK, &b), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(repo_blob_info(r, &a, &ia), 0);
	cr_assert_eq(repo_blob_info(r, &b, &ib), 0);
	cr_assert_eq(ia.stored_bytes, ib.stored_bytes, "random chunks stay raw");
	object_path(&ia.pack_id, pack, sizeof(pack));
	buf = file_read(pack, &len);
	tmp = xmalloc(ia.stored_bytes);
	memcpy(tmp, buf + ia.offset, ia.stored_bytes);
	memmove(buf + ia.offset, buf + ib.offset, ia.stored_bytes);
	memcpy(buf + ib.offset, tmp, ia.stored_bytes);
	file_write(pack, buf, len);
	reopen();
	cr_assert_eq(repo_blob_get(r, &a, &back, &n), -EBADMSG, "caught by the CRC");

	/*
	 * Now as an insider with the key would: an index whose CRCs match the swapped records.
	 * Only the AAD (the blob's id) can tell the records apart now.
	 */
	cr_assert_eq(repo_crypto_new(&c, &key, repo_config_of(r)->key_salt), 0);
	es[0] = (struct pack_entry){ .id = a, .offset = ia.offset, .stored_bytes = ia.stored_bytes,
				     .raw_bytes = ia.raw_bytes, .type = ia.type, .flags = ia.flags };
	es[1] = (struct pack_entry){ .id = b, .offset = ib.offset, .stored_bytes = ib.stored_bytes,
				     .raw_bytes = ib.raw_bytes, .type = ib.type, .flags = ib.flags };
	es[0].crc = crc32c(0, buf + ia.offset, ia.stored_bytes);
	es[1].crc = crc32c(0, buf + ib.offset, ib.stored_bytes);
	p = (struct index_pack){ .pack_id = ia.pack_id, .pack_bytes = len, .nblobs = 2,
				 .entries = es };
	ix = (struct index_file){ .npacks = 1, .packs = &p };
	free(buf);
	cr_assert_eq(index_file_encode(&ix, c, &buf, &len), 0);
	first_object(repo_dir, "index", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	index_file_name(buf, len, name);
	snprintf(path, sizeof(path), "%s/%s", repo_dir, name);
	file_write(path, buf, len);
	free(buf);
	repo_crypto_free(c);
	reopen();
	cr_assert(repo_blob_known(r, &a));
	cr_assert_eq(repo_blob_get(r, &a, &back, &n), -EBADMSG, "a's entry, b's ciphertext");
	cr_assert_eq(repo_blob_get(r, &b, &back, &n), -EBADMSG);
	reseal_file(pack); /* so verify looks past the file checksum, at the records */
	verify(true);
	cr_assert_geq(lines.problems, 1);
	cr_assert(lines_has(&lines, "pack "), "verify does not name the pack");
	free(tmp);
}

Test(repo_encrypted, a_tampered_config_is_refused)
{
	struct repo *r2;
	char path[256];
	uint8_t *cfg, *orig;
	size_t n;

	snprintf(path, sizeof(path), "%s/config", repo_dir);
	orig = file_read(path, &n);
	/* A changed pack size with a matching checksum: only the MAC catches it. */
	cfg = file_read(path, &n);
	cfg[61] ^= 0x01;
	sha256_buf(cfg, REPO_CONFIG_SUM_OFFSET, cfg + REPO_CONFIG_SUM_OFFSET);
	file_write(path, cfg, n);
	cr_assert_eq(repo_open_keyed(&r2, repo_dir, &key, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "config: authentication failed: the config was altered"), "%s", err);
	/* Without the matching checksum the damage is named as such. */
	cfg[0x70] ^= 0x01;
	file_write(path, cfg, n);
	cr_assert_eq(repo_open_keyed(&r2, repo_dir, &key, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "config: checksum mismatch"), "%s", err);
	/* A downgrade to a plaintext config: refused with the key fields left in place ... */
	memcpy(cfg, orig, n);
	le16_encode(cfg + 48, REPO_ID_SHA256);
	le16_encode(cfg + 50, REPO_ENC_NONE);
	sha256_buf(cfg, REPO_CONFIG_SUM_OFFSET, cfg + REPO_CONFIG_SUM_OFFSET);
	file_write(path, cfg, n);
	cr_assert_eq(repo_open(&r2, repo_dir, err, sizeof(err)), -EBADMSG);
	/* ... and with them cleared, a writer holding the key will not write plaintext. */
	memset(cfg + 72, 0, 32);
	memset(cfg + REPO_CONFIG_CHECK_OFFSET, 0, 64);
	sha256_buf(cfg, REPO_CONFIG_SUM_OFFSET, cfg + REPO_CONFIG_SUM_OFFSET);
	file_write(path, cfg, n);
	cr_assert_eq(repo_open_keyed(&r2, repo_dir, &key, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not encrypted"), "%s", err);
	/* An altered salt changes every derived key: it reads as a wrong key. */
	memcpy(cfg, orig, n);
	cfg[80] ^= 0x01;
	sha256_buf(cfg, REPO_CONFIG_SUM_OFFSET, cfg + REPO_CONFIG_SUM_OFFSET);
	file_write(path, cfg, n);
	cr_assert_eq(repo_open_keyed(&r2, repo_dir, &key, err, sizeof(err)), -EKEYREJECTED);
	/* Put back, it opens. */
	file_write(path, orig, n);
	r2 = repo_open_key_ok(repo_dir, &key);
	repo_close(r2);
	free(cfg);
	free(orig);
}

Test(repo_encrypted, plaintext_repositories_work_when_asked_for)
{
	char plain[256];
	struct repo *pr;
	struct blob_id id;
	uint8_t *back;
	size_t n;

	snprintf(plain, sizeof(plain), "%s/plain", dir);
	cr_assert_eq(repo_init(plain, 0, 0, err, sizeof(err)), 0, "%s", err);
	pr = repo_open_ok(plain);
	cr_assert_eq(repo_config_of(pr)->encryption, REPO_ENC_NONE);
	cr_assert_eq(repo_blob_put(pr, BLOB_T_DATA, data, CHUNK, &id), 0);
	cr_assert_eq(repo_flush(pr), 0);
	repo_close(pr);
	pr = repo_open_ok(plain);
	cr_assert_eq(repo_blob_get(pr, &id, &back, &n), 0);
	cr_assert_eq(n, CHUNK);
	cr_assert_eq(memcmp(back, data, CHUNK), 0);
	free(back);
	repo_close(pr);
}
