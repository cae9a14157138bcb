/* Tests for the repository: init and open, blob put and get, dedup, packs, snapshots, crash safety. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/index_file.h"
#include "repo/manifest.h"
#include "repo/repo.h"

#define RAM_BYTES (4u << 20)
#define DISK_BYTES ((2u << 20) + 4096)

static char dir[64], repo_dir[128];
static struct repo *r;
static uint8_t *data;
static char err[512];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	cr_assert_eq(repo_init(repo_dir, 0, 0, err, sizeof(err)), 0, "%s", err);
	r = repo_open_ok(repo_dir);
	data = xmalloc(RAM_BYTES + DISK_BYTES);
	fill_guestlike(data, RAM_BYTES + DISK_BYTES, 3);
	err[0] = '\0';
}

static void teardown(void)
{
	repo_close(r);
	free(data);
	tmpdir_remove(dir);
}

TestSuite(repo, .init = setup, .fini = teardown);

static void reopen(void)
{
	repo_close(r);
	r = repo_open_ok(repo_dir);
}

Test(repo, init_makes_the_layout_and_a_config)
{
	char path[256];
	const struct repo_config *c = repo_config_of(r);

	snprintf(path, sizeof(path), "%s/config", repo_dir);
	cr_assert(file_exists(path));
	snprintf(path, sizeof(path), "%s/snapshots", repo_dir);
	cr_assert(file_exists(path));
	snprintf(path, sizeof(path), "%s/locks", repo_dir);
	cr_assert(file_exists(path));
	cr_assert_eq(c->chunk_bytes, 64 << 10);
	cr_assert_eq(c->id_algo, REPO_ID_SHA256);
	cr_assert_eq(c->encryption, REPO_ENC_NONE);
}

Test(repo, init_refuses_an_existing_repository)
{
	cr_assert_eq(repo_init(repo_dir, 0, 0, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "already a godwit repository"), "%s", err);
}

Test(repo, open_of_a_plain_directory_says_how_to_fix_it)
{
	struct repo *r2;
	char expect[512];

	cr_assert_eq(repo_open(&r2, dir, err, sizeof(err)), -ENOENT);
	snprintf(expect, sizeof(expect),
		 "not a godwit repository: no config in %s: create one with 'godwit repo init' or name another --repo",
		 dir);
	cr_assert_str_eq(err, expect);
}

Test(repo, open_of_a_missing_directory_says_the_same)
{
	struct repo *r2;
	char path[128];

	snprintf(path, sizeof(path), "file://%s/nowhere", dir);
	cr_assert_eq(repo_open(&r2, path, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "not a godwit repository: no config in "), "%s", err);
}

Test(repo, open_of_a_corrupt_config_names_the_reason)
{
	struct repo *r2;
	char path[256];

	snprintf(path, sizeof(path), "%s/config", repo_dir);
	file_flip(path, 20, 1);
	cr_assert_eq(repo_open(&r2, repo_dir, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "config: checksum mismatch"), "%s", err);
}

/* s3:// locations go to the S3 backend (tests/repo/test_backend_s3.c tests it on moto). */
Test(repo, s3_locations_reach_the_s3_backend)
{
	struct repo *r2;

	cr_assert_eq(repo_open(&r2, "s3://", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "name a bucket"), "%s", err);
}

Test(repo, blobs_round_trip_through_a_flush_and_a_reopen)
{
	struct blob_id ids[4];
	size_t lens[4] = { 65536, 65536, 1, 5000 };
	uint8_t *back;
	size_t n;

	for (int i = 0; i < 4; i++)
		cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + (size_t)i * 65536 * 5, lens[i],
					   &ids[i]), 0);
	/* Readable before the flush (from the pack being built) ... */
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(repo_blob_get(r, &ids[i], &back, &n), 0);
		cr_assert_eq(n, lens[i]);
		cr_assert_eq(memcmp(back, data + (size_t)i * 65536 * 5, n), 0);
		free(back);
	}
	cr_assert_eq(repo_flush(r), 0);
	reopen();
	/* ... and after, from the pack through the loaded index. */
	for (int i = 0; i < 4; i++) {
		uint8_t buf[65536];

		cr_assert_eq(repo_blob_read(r, &ids[i], buf, lens[i]), 0);
		cr_assert_eq(memcmp(buf, data + (size_t)i * 65536 * 5, lens[i]), 0);
		cr_assert_eq(repo_blob_read(r, &ids[i], buf, lens[i] + 1), -EBADMSG, "wrong length");
	}
	cr_assert_eq(count_objects(repo_dir, "data"), 1);
	cr_assert_eq(count_objects(repo_dir, "index"), 1);
}

Test(repo, the_blob_id_is_the_sha256_of_the_plaintext)
{
	struct blob_id id, expect;

	cr_assert_eq(repo_blob_put(r, BLOB_T_META, "hello", 5, &id), 0);
	sha256_buf("hello", 5, expect.b);
	cr_assert(blob_id_eq(&id, &expect));
	cr_assert_eq(blob_id_compute(r, "hello", 5, &expect), 0);
	cr_assert(blob_id_eq(&id, &expect));
}

Test(repo, the_same_blob_twice_is_stored_once)
{
	struct blob_id a, b;
	struct repo_stats st;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 7 * 65536, 65536, &a), 0);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 7 * 65536, 65536, &b), 0);
	cr_assert(blob_id_eq(&a, &b));
	repo_stats_get(r, &st);
	cr_assert_eq(st.blobs_new, 1);
	cr_assert_eq(st.blobs_dedup, 1);
	cr_assert_eq(repo_flush(r), 0);
	reopen();
	/* After a reopen the index says it is there: still nothing written. */
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 7 * 65536, 65536, &b), 0);
	cr_assert_eq(repo_flush(r), 0);
	repo_stats_get(r, &st);
	cr_assert_eq(st.blobs_new, 0);
	cr_assert_eq(st.packs_written, 0);
	cr_assert_eq(st.indexes_written, 0);
	cr_assert_eq(count_objects(repo_dir, "data"), 1);
}

Test(repo, zero_chunks_are_not_stored)
{
	uint8_t zeros[65536] = { 0 }, back[65536];
	struct blob_id id;
	struct repo_stats st;

	memset(back, 0xaa, sizeof(back));
	cr_assert_eq(repo_chunk_put(r, zeros, sizeof(zeros), &id), 0);
	cr_assert(blob_id_is_zero(&id));
	repo_stats_get(r, &st);
	cr_assert_eq(st.blobs_new, 0);
	cr_assert_eq(repo_blob_read(r, &id, back, sizeof(back)), 0);
	cr_assert_eq(memcmp(back, zeros, sizeof(back)), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(count_objects(repo_dir, "data"), 0, "nothing to write");
}

Test(repo, compressible_blobs_shrink_and_random_ones_stay_raw)
{
	uint8_t text[65536], noise[65536];
	struct blob_id a, b;
	struct repo_blob_info ia, ib;

	memset(text, 'a', sizeof(text));
	fill_random(noise, sizeof(noise), 9);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, text, sizeof(text), &a), 0);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, noise, sizeof(noise), &b), 0);
	cr_assert_eq(repo_blob_info(r, &a, &ia), 0);
	cr_assert_eq(repo_blob_info(r, &b, &ib), 0);
	cr_assert_lt(ia.stored_bytes, 1000);
	cr_assert_eq(ia.flags, 1);
	cr_assert_eq(ib.stored_bytes, 65536);
	cr_assert_eq(ib.flags, 0);
}

Test(repo, oversized_blobs_and_bad_types_are_refused)
{
	struct blob_id id;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data, (size_t)BLOB_RAW_MAX_BYTES + 1, &id),
		     -EMSGSIZE);
	cr_assert_eq(repo_blob_put(r, 0, data, 10, &id), -EINVAL);
	cr_assert_eq(repo_blob_put(r, BLOB_T_END, data, 10, &id), -EINVAL);
}

Test(repo, unknown_blobs_are_enoent)
{
	struct blob_id id;
	uint8_t *back;
	size_t n;

	fill_random(id.b, 32, 1);
	cr_assert_eq(repo_blob_get(r, &id, &back, &n), -ENOENT);
	cr_assert_not(repo_blob_known(r, &id));
}

Test(repo, packs_are_sealed_near_the_target_size)
{
	char path[256];
	struct repo_stats st;
	uint8_t *noise = xmalloc(65536);

	/* A repository with 1 MiB packs; 40 incompressible 64 KiB blobs make three. */
	repo_close(r);
	r = NULL;
	snprintf(path, sizeof(path), "%s/small", dir);
	cr_assert_eq(repo_init(path, 0, 1 << 20, err, sizeof(err)), 0, "%s", err);
	r = repo_open_ok(path);
	for (int i = 0; i < 40; i++) {
		struct blob_id id;

		fill_random(noise, 65536, 1000 + i);
		cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, noise, 65536, &id), 0);
	}
	cr_assert_eq(repo_flush(r), 0);
	repo_stats_get(r, &st);
	cr_assert_eq(st.packs_written, 3);
	cr_assert_eq(st.indexes_written, 1);
	cr_assert_eq(count_objects(path, "data"), 3);
	free(noise);
}

Test(repo, split_blobs_concatenate_back)
{
	struct blob_id *ids;
	uint32_t n;
	uint8_t *back;
	size_t len;

	cr_assert_eq(repo_blob_put_split(r, BLOB_T_SIG, data, 300000, 65536, &ids, &n), 0);
	cr_assert_eq(n, 5);
	cr_assert_eq(repo_blob_get_concat(r, ids, n, 1 << 20, &back, &len), 0);
	cr_assert_eq(len, 300000);
	cr_assert_eq(memcmp(back, data, len), 0);
	free(back);
	cr_assert_eq(repo_blob_get_concat(r, ids, n, 299999, &back, &len), -EMSGSIZE);
	free(ids);
}

Test(repo, close_without_flush_publishes_nothing)
{
	struct blob_id id;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 5, 65536, &id), 0);
	reopen();
	cr_assert_not(repo_blob_known(r, &id));
	cr_assert_eq(count_objects(repo_dir, "data"), 0);
}

Test(repo, get_verifies_the_id_of_what_it_read)
{
	struct blob_id a, b;
	struct repo_blob_info ia, ib;
	struct index_pack p;
	struct pack_entry e;
	struct index_file ix = { .npacks = 1, .packs = &p };
	char path[256], name[INDEX_NAME_BYTES];
	uint8_t *buf, *back;
	size_t len, n;

	/* Two blobs of the same length; then an index that claims b lives where a is. */
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 5, 65536, &a), 0);
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 6, 65536, &b), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(repo_blob_info(r, &a, &ia), 0);
	cr_assert_eq(repo_blob_info(r, &b, &ib), 0);
	first_object(repo_dir, "index", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	e = (struct pack_entry){ .id = b, .offset = ia.offset, .stored_bytes = ia.stored_bytes,
				 .raw_bytes = ia.raw_bytes, .type = ia.type, .flags = ia.flags };
	/* The record's CRC is right for a's bytes; only the id check can catch the swap. */
	{
		uint8_t hdr[16];
		char pack[256], hex[BLOB_ID_HEX_BYTES];

		blob_id_hex(&ia.pack_id, hex);
		snprintf(pack, sizeof(pack), "%s/data/%.2s/%s", repo_dir, hex, hex);
		buf = file_read(pack, &len);
		memcpy(hdr, buf + ia.offset, 16);
		e.crc = (uint32_t)hdr[12] | (uint32_t)hdr[13] << 8 | (uint32_t)hdr[14] << 16 |
			(uint32_t)hdr[15] << 24;
		p = (struct index_pack){ .pack_id = ia.pack_id, .pack_bytes = len, .nblobs = 1,
					 .entries = &e };
		free(buf);
	}
	cr_assert_eq(index_file_encode(&ix, NULL, &buf, &len), 0);
	index_file_name(buf, len, name);
	snprintf(path, sizeof(path), "%s/%s", repo_dir, name);
	file_write(path, buf, len);
	free(buf);
	reopen();
	cr_assert_eq(repo_blob_get(r, &b, &back, &n), -EBADMSG);
}

Test(repo, a_bit_flip_in_a_pack_fails_get)
{
	struct blob_id id;
	struct repo_blob_info info;
	char path[256];
	uint8_t *back;
	size_t n;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 8, 65536, &id), 0);
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(repo_blob_info(r, &id, &info), 0);
	first_object(repo_dir, "data", path, sizeof(path));
	file_flip(path, info.offset + 16 + info.stored_bytes / 2, 0x20);
	reopen();
	cr_assert_eq(repo_blob_get(r, &id, &back, &n), -EBADMSG);
}

Test(repo, a_missing_pack_fails_get_with_eio)
{
	struct blob_id id;
	char path[256];
	uint8_t *back;
	size_t n;

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 8, 65536, &id), 0);
	cr_assert_eq(repo_flush(r), 0);
	first_object(repo_dir, "data", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(repo_blob_get(r, &id, &back, &n), -EIO);
}

Test(repo, snapshots_publish_load_and_list_by_time)
{
	struct snap_manifest a, b, back;
	struct snap_summary *list;
	size_t n, nbad;

	manifest_fill(&a, r, data, RAM_BYTES, DISK_BYTES, "vm-a");
	a.created_ns = 1700000000000000000ull;
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	cr_assert(snap_id_valid(a.id));
	cr_assert_gt(a.stats.bytes_referenced, 0);
	manifest_fill(&b, r, data, RAM_BYTES, 0, "vm-b");
	b.created_ns = 1700000100000000000ull;
	memcpy(b.parent, a.id, sizeof(a.id));
	cr_assert_eq(snap_publish(r, &b, err, sizeof(err)), 0, "%s", err);

	reopen();
	cr_assert_eq(snap_load(r, a.id, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.vm_name, "vm-a");
	cr_assert_eq(back.disk_bytes, DISK_BYTES);
	cr_assert_eq(memcmp(back.regions[0].ids, a.regions[0].ids, a.regions[0].nchunks * 32), 0);
	manifest_free(&back);
	cr_assert_eq(snap_load(r, "latest", &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.id, b.id);
	cr_assert_str_eq(back.parent, a.id);
	manifest_free(&back);

	cr_assert_eq(snap_list(r, &list, &n, &nbad), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(nbad, 0);
	cr_assert_str_eq(list[0].id, a.id);
	cr_assert_str_eq(list[1].id, b.id);
	cr_assert_str_eq(list[1].parent, a.id);
	free(list);
	{
		char id[SNAP_ID_BYTES];

		cr_assert_eq(snap_find_latest(r, "vm-a", id), 0);
		cr_assert_str_eq(id, a.id);
		cr_assert_eq(snap_find_latest(r, "vm-z", id), -ENOENT);
	}
	manifest_free(&a);
	manifest_free(&b);
}

Test(repo, a_restore_reads_back_every_chunk)
{
	struct snap_manifest a, back;
	uint8_t *ram = xmalloc(RAM_BYTES);

	manifest_fill(&a, r, data, RAM_BYTES, DISK_BYTES, "vm");
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	reopen();
	cr_assert_eq(snap_load(r, a.id, &back, err, sizeof(err)), 0, "%s", err);
	for (uint64_t i = 0; i < back.regions[0].nchunks; i++)
		cr_assert_eq(repo_blob_read(r, &back.regions[0].ids[i], ram + i * 65536, 65536), 0);
	cr_assert_eq(memcmp(ram, data, RAM_BYTES), 0);
	manifest_free(&back);
	manifest_free(&a);
	free(ram);
}

Test(repo, dedup_across_snapshots_stores_only_what_changed)
{
	struct snap_manifest a, b;
	struct repo_stats before, after;

	manifest_fill(&a, r, data, RAM_BYTES, DISK_BYTES, "vm");
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	/* The guest changes two chunks; everything else is the same bytes. */
	fill_random(data + 3 * 65536, 65536, 4242);
	fill_random(data + 40 * 65536 + 100, 10, 4343);
	reopen();
	repo_stats_get(r, &before);
	manifest_fill(&b, r, data, RAM_BYTES, DISK_BYTES, "vm");
	memcpy(b.parent, a.id, sizeof(a.id));
	cr_assert_eq(snap_publish(r, &b, err, sizeof(err)), 0, "%s", err);
	repo_stats_get(r, &after);
	cr_assert_eq(after.blobs_new - before.blobs_new, 2, "two changed chunks, state deduped");
	cr_assert_eq(after.bytes_new_raw - before.bytes_new_raw, 2 * 65536);
	manifest_free(&a);
	manifest_free(&b);
}

Test(repo, publish_refuses_a_manifest_naming_a_missing_blob)
{
	struct snap_manifest a;

	manifest_fill(&a, r, data, RAM_BYTES, 0, "vm");
	fill_random(a.regions[0].ids[17].b, 32, 99);
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "(memory chunk 17, gpa 0x110000) is not in the repository"), "%s", err);
	cr_assert_eq(count_objects(repo_dir, "snapshots"), 0);
	manifest_free(&a);
}

Test(repo, publish_refuses_a_chunk_of_the_wrong_length)
{
	struct snap_manifest a;
	struct blob_id small;

	manifest_fill(&a, r, data, RAM_BYTES, 0, "vm");
	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, "xyz", 3, &small), 0);
	a.regions[0].ids[2] = small;
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "holds 3 bytes, the chunk 65536"), "%s", err);
	manifest_free(&a);
}

Test(repo, unknown_snapshot_ids_get_a_clear_error)
{
	struct snap_manifest m;

	cr_assert_eq(snap_load(r, "latest", &m, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no snapshots in "), "%s", err);
	cr_assert_eq(snap_load(r, "20240101T000000Z-00000000", &m, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no snapshot 20240101T000000Z-00000000 in "), "%s", err);
	cr_assert(strstr(err, "'godwit snapshot list' shows the ids"), "%s", err);
	cr_assert_eq(snap_load(r, "../config", &m, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "is not a snapshot id"), "%s", err);
}

Test(repo, a_crash_mid_snapshot_leaves_earlier_ones_valid)
{
	struct snap_manifest a, b, back;
	struct snap_summary *list;
	struct repo_verify_result res;
	struct lines lines = { 0 };
	char path[512];
	size_t n;

	manifest_fill(&a, r, data, RAM_BYTES, DISK_BYTES, "vm");
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	/* The next snapshot gets as far as its packs and index, then the host dies ... */
	fill_random(data, RAM_BYTES, 777);
	manifest_fill(&b, r, data, RAM_BYTES, DISK_BYTES, "vm");
	cr_assert_eq(repo_flush(r), 0);
	cr_assert_eq(snap_id_make(2000000000000000000ull, b.id), 0);
	/* ... while writing a pack and the manifest: both left as .partial files. */
	snprintf(path, sizeof(path), "%s/data/00", repo_dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/data/00/00aa.1234abcd.partial", repo_dir);
	file_write(path, "GWPK half a pack", 16);
	snprintf(path, sizeof(path), "%s/snapshots/%s.deadbeef.partial", repo_dir, b.id);
	file_write(path, "GWSN half", 9);
	repo_close(r);
	r = NULL;

	r = repo_open_ok(repo_dir);
	cr_assert_eq(snap_list(r, &list, &n, NULL), 0);
	cr_assert_eq(n, 1, "no partial snapshot is listed");
	cr_assert_str_eq(list[0].id, a.id);
	free(list);
	cr_assert_eq(snap_load(r, "latest", &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.id, a.id);
	manifest_free(&back);
	cr_assert_eq(repo_verify(r, true, lines_collect, &lines, &res), 0);
	lines_print(&lines);
	cr_assert_eq(res.problems, 0);
	manifest_free(&a);
	manifest_free(&b);
}

Test(repo, a_sticky_write_error_refuses_later_puts)
{
	struct blob_id id;
	char path[512];

	cr_assert_eq(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 5, 65536, &id), 0);
	/* Make every pack write fail: the data directory is gone and cannot be remade. */
	snprintf(path, sizeof(path), "rm -rf %s/data && touch %s/data", repo_dir, repo_dir);
	cr_assert_eq(system(path), 0);
	cr_assert_lt(repo_flush(r), 0);
	cr_assert_lt(repo_blob_put(r, BLOB_T_DATA, data + 65536 * 6, 65536, &id), 0);
	cr_assert_lt(repo_flush(r), 0);
}

/* ---- Lost and damaged data ------------------------------------------------------------ */

/* A published snapshot of data whose one pack is then deleted; r reopened. */
static void lose_the_pack(struct snap_manifest *a)
{
	char path[256];

	manifest_fill(a, r, data, RAM_BYTES, 0, "vm");
	cr_assert_eq(snap_publish(r, a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(count_objects(repo_dir, "data"), 1);
	first_object(repo_dir, "data", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	reopen();
}

Test(repo, a_missing_pack_found_by_the_listing_makes_its_blobs_unknown)
{
	struct snap_manifest a, b;
	struct repo_stats before, after;
	uint64_t absent = 99;

	lose_the_pack(&a);
	/* The index alone still says every blob is there: that is the trap. */
	cr_assert(repo_blob_known(r, &a.regions[0].ids[3]));
	cr_assert_eq(repo_packs_check(r, &absent), 0);
	cr_assert_eq(absent, 1);
	cr_assert_not(repo_blob_known(r, &a.regions[0].ids[3]));
	/* A manifest naming them is never published ... */
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "in the missing pack"), "%s", err);
	/* ... and the same data put again is stored again, not deduplicated. */
	repo_stats_get(r, &before);
	manifest_fill(&b, r, data, RAM_BYTES, 0, "vm");
	repo_stats_get(r, &after);
	cr_assert_eq(after.blobs_dedup, before.blobs_dedup);
	cr_assert_gt(after.blobs_new - before.blobs_new, 10);
	cr_assert_eq(snap_publish(r, &b, err, sizeof(err)), 0, "%s", err);
	/* The first snapshot's ids are the same: it reads back whole again (healed). */
	reopen();
	/* (In a plaintext repository the same blobs may make the same pack, the same name.) */
	cr_assert_eq(repo_packs_check(r, &absent), 0);
	for (uint64_t i = 0; i < a.regions[0].nchunks; i++) {
		uint8_t chunk[65536];

		cr_assert_eq(repo_blob_read(r, &a.regions[0].ids[i], chunk, sizeof(chunk)), 0,
			     "chunk %llu", (unsigned long long)i);
		cr_assert_eq(memcmp(chunk, data + i * 65536, sizeof(chunk)), 0);
	}
	manifest_free(&a);
	manifest_free(&b);
}

Test(repo, a_pack_of_another_size_is_absent_too)
{
	struct snap_manifest a;
	char path[256];
	size_t len;
	uint8_t *buf;
	uint64_t absent = 0;

	manifest_fill(&a, r, data, RAM_BYTES, 0, "vm");
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	first_object(repo_dir, "data", path, sizeof(path));
	buf = file_read(path, &len);
	cr_assert_eq(unlink(path), 0);
	file_write(path, buf, len - 100);
	free(buf);
	reopen();
	cr_assert_eq(repo_packs_check(r, &absent), 0);
	cr_assert_eq(absent, 1);
	cr_assert_not(repo_blob_known(r, &a.state_id));
	manifest_free(&a);
}

Test(repo, a_blob_marked_damaged_is_stored_again_and_its_other_blobs_stay)
{
	struct snap_manifest a, b;
	struct repo_blob_info info;
	struct blob_id bad[2];
	char path[256];
	uint64_t marked = 0;
	uint8_t chunk[65536];

	manifest_fill(&a, r, data, RAM_BYTES, 0, "vm");
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	/* Chunk 5's record damaged in place, as verify or a restore would find it. */
	cr_assert_eq(repo_blob_info(r, &a.regions[0].ids[5], &info), 0);
	first_object(repo_dir, "data", path, sizeof(path));
	file_flip(path, info.offset + 16 + info.stored_bytes / 2, 0x20);
	reopen();
	cr_assert_eq(repo_blob_read(r, &a.regions[0].ids[5], chunk, sizeof(chunk)), -EBADMSG);
	bad[0] = bad[1] = a.regions[0].ids[5];
	cr_assert_eq(repo_mark_damaged(r, bad, 2, &marked, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(marked, 1, "marked %llu", (unsigned long long)marked);
	cr_assert_eq(count_objects(repo_dir, "damaged"), 1);
	cr_assert_not(repo_blob_known(r, &a.regions[0].ids[5]));
	cr_assert(repo_blob_known(r, &a.regions[0].ids[6]));
	/* The mark is durable: a later open leaves the copy out, and the next put stores it. */
	reopen();
	cr_assert_not(repo_blob_known(r, &a.regions[0].ids[5]));
	cr_assert(repo_blob_known(r, &a.regions[0].ids[6]));
	manifest_fill(&b, r, data, RAM_BYTES, 0, "vm");
	cr_assert_eq(snap_publish(r, &b, err, sizeof(err)), 0, "%s", err);
	reopen();
	cr_assert(repo_blob_known(r, &a.regions[0].ids[5]), "the new copy is used");
	cr_assert_eq(repo_blob_read(r, &a.regions[0].ids[5], chunk, sizeof(chunk)), 0);
	cr_assert_eq(memcmp(chunk, data + 5 * 65536, sizeof(chunk)), 0);
	/* Marking an unknown id, or one marked already, writes nothing. */
	fill_random(bad[0].b, 32, 7);
	cr_assert_eq(repo_mark_damaged(r, bad, 1, &marked, err, sizeof(err)), 0);
	cr_assert_eq(marked, 0);
	cr_assert_eq(count_objects(repo_dir, "damaged"), 1);
	manifest_free(&a);
	manifest_free(&b);
}
