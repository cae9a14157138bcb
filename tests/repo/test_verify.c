/* Tests for repo_verify: a clean repository, and each kind of damage reported with its exact line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/verify.h"
#include "util/byteorder.h"
#include "util/crc32c.h"

#define RAM_BYTES (2u << 20)
#define DISK_BYTES (1u << 20)

static char dir[64];
static struct repo *r;
static uint8_t *data;
static struct snap_manifest m;
static struct lines lines;
static struct repo_verify_result res;
static char err[512];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	cr_assert_eq(repo_init(dir, 0, 0, err, sizeof(err)), 0, "%s", err);
	r = repo_open_ok(dir);
	data = xmalloc(RAM_BYTES + DISK_BYTES);
	fill_guestlike(data, RAM_BYTES + DISK_BYTES, 5);
	manifest_fill(&m, r, data, RAM_BYTES, DISK_BYTES, "vm");
	cr_assert_eq(snap_publish(r, &m, err, sizeof(err)), 0, "%s", err);
	repo_close(r);
	r = NULL;
	memset(&lines, 0, sizeof(lines));
	memset(&res, 0, sizeof(res));
}

static void teardown(void)
{
	repo_close(r);
	manifest_free(&m);
	free(data);
	tmpdir_remove(dir);
}

TestSuite(verify, .init = setup, .fini = teardown);

static void run_verify(bool read_data)
{
	r = repo_open_ok(dir);
	cr_assert_eq(repo_verify(r, read_data, lines_collect, &lines, &res), 0);
	lines_print(&lines);
}

static void pack_path(char *out, size_t len, char *hex_out)
{
	first_object(dir, "data", out, len);
	snprintf(hex_out, BLOB_ID_HEX_BYTES, "%s", strrchr(out, '/') + 1);
}

Test(verify, a_clean_repository_has_no_problems)
{
	run_verify(true);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.notes, 0);
	cr_assert_eq(res.snapshots, 1);
	cr_assert_eq(res.indexes, 1);
	cr_assert_eq(res.packs, 1);
	cr_assert_gt(res.blobs, 10);
	cr_assert_eq(res.blobs_read, res.blobs);
	cr_assert_gt(res.bytes_read, 0);
}

Test(verify, structure_only_reads_no_pack)
{
	run_verify(false);
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.blobs_read, 0);
	cr_assert_eq(res.bytes_read, 0);
}

Test(verify, a_bit_flipped_pack_is_a_checksum_mismatch)
{
	char path[512], hex[BLOB_ID_HEX_BYTES], expect[256];
	size_t len;
	uint8_t *buf = NULL;

	pack_path(path, sizeof(path), hex);
	free(file_read(path, &len));
	file_flip(path, len / 3, 0x01);
	run_verify(true);
	snprintf(expect, sizeof(expect), "pack %s: checksum mismatch", hex);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	cr_assert(lines_has(&lines, "referenced blobs are in missing or damaged packs"));
	cr_assert_geq(res.problems, 2);
	free(buf);
}

Test(verify, a_structure_check_misses_a_bit_flip_that_reading_finds)
{
	char path[512], hex[BLOB_ID_HEX_BYTES];
	size_t len;

	pack_path(path, sizeof(path), hex);
	free(file_read(path, &len));
	file_flip(path, len / 3, 0x01);
	run_verify(false);
	cr_assert_eq(res.problems, 0, "same size, unread");
}

Test(verify, a_missing_pack_is_named_with_its_blob_count)
{
	char path[512], hex[BLOB_ID_HEX_BYTES], expect[256];

	pack_path(path, sizeof(path), hex);
	cr_assert_eq(unlink(path), 0);
	run_verify(false);
	snprintf(expect, sizeof(expect), "pack %s: missing (the index lists %llu blobs in it)", hex,
		 (unsigned long long)res.blobs);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	snprintf(expect, sizeof(expect), "snapshot %s: ", m.id);
	cr_assert(lines_has(&lines, expect));
	cr_assert(lines_has(&lines, "referenced blobs are in missing or damaged packs"));
	cr_assert_eq(res.problems, 2);
}

Test(verify, a_truncated_pack_has_the_wrong_size)
{
	char path[512], hex[BLOB_ID_HEX_BYTES], expect[256];
	size_t len;

	pack_path(path, sizeof(path), hex);
	free(file_read(path, &len));
	cr_assert_eq(truncate(path, (off_t)len - 100), 0);
	run_verify(false);
	snprintf(expect, sizeof(expect), "pack %s: size %zu, the index says %zu", hex, len - 100, len);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
}

Test(verify, a_missing_index_leaves_blobs_missing_from_the_index)
{
	char path[512], expect[512], hex[BLOB_ID_HEX_BYTES];
	uint64_t first = 0;

	first_object(dir, "index", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	run_verify(false);
	/* The first stored memory chunk is the first line for the snapshot. */
	while (blob_id_is_zero(&m.regions[0].ids[first]))
		first++;
	blob_id_hex(&m.regions[0].ids[first], hex);
	snprintf(expect, sizeof(expect),
		 "snapshot %s: blob %s (memory chunk %llu, gpa 0x%llx) missing from the index", m.id,
		 hex, (unsigned long long)first, (unsigned long long)first * 65536);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	cr_assert(lines_has(&lines, "more blobs missing from the index"));
	cr_assert(lines_has(&lines, "in no index, 0 min old: a snapshot in progress, or an "
			    "interrupted one; prune removes it once it is 24 h old unless a snapshot "
			    "needs its blobs ('godwit images repair' indexes it then)"));
	cr_assert_eq(res.notes, 1);
	cr_assert_gt(res.problems, 10, "every missing blob counts");
}

Test(verify, a_missing_state_blob_is_named)
{
	char path[512], expect[512], hex[BLOB_ID_HEX_BYTES];

	/* Delete the index, then put back everything except the state blob. */
	first_object(dir, "index", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	r = repo_open_ok(dir);
	{
		struct snap_manifest again;

		manifest_fill(&again, r, data, RAM_BYTES, DISK_BYTES, "vm-renamed");
		cr_assert_eq(repo_flush(r), 0);
		manifest_free(&again);
	}
	repo_close(r);
	r = NULL;
	run_verify(false);
	blob_id_hex(&m.state_id, hex);
	snprintf(expect, sizeof(expect), "snapshot %s: blob %s (state) missing from the index", m.id, hex);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	cr_assert_eq(res.problems, 1);
}

Test(verify, a_corrupt_index_is_named)
{
	char path[512], expect[256];

	first_object(dir, "index", path, sizeof(path));
	file_flip(path, 30, 0x04);
	run_verify(false);
	snprintf(expect, sizeof(expect), "index %s: checksum mismatch", strrchr(path, '/') + 1);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
}

Test(verify, a_corrupt_manifest_is_named)
{
	char path[512], expect[256];

	snprintf(path, sizeof(path), "%s/snapshots/%s", dir, m.id);
	file_flip(path, 30, 0x04);
	run_verify(false);
	snprintf(expect, sizeof(expect), "snapshot %s: checksum mismatch", m.id);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	cr_assert_eq(res.problems, 1);
}

Test(verify, a_blob_whose_bytes_do_not_match_its_id_is_named)
{
	char path[512], hex[BLOB_ID_HEX_BYTES], expect[256], bhex[BLOB_ID_HEX_BYTES];
	struct repo_blob_info info;
	size_t len;
	uint8_t *buf;

	/* Rewrite one raw blob's payload and fix up every checksum: only the id check is left. */
	r = repo_open_ok(dir);
	cr_assert_eq(repo_blob_info(r, &m.state_id, &info), 0);
	repo_close(r);
	r = NULL;
	cr_assert_eq(info.flags, 0, "the short state blob is stored raw");
	pack_path(path, sizeof(path), hex);
	buf = file_read(path, &len);
	buf[info.offset + 16] ^= 1;
	{
		uint32_t crc = crc32c(0, buf + info.offset + 16, info.stored_bytes);
		size_t trailer = len - 40 - le16_decode(buf + len - 40);
		uint32_t count = le16_decode(buf + trailer);

		le32_encode(buf + info.offset + 12, crc);
		for (uint32_t i = 0; i < count; i++) {
			uint8_t *e = buf + trailer + 8 + i * 56;

			if (memcmp(e, m.state_id.b, 32) == 0)
				e[48] = (uint8_t)crc, e[49] = (uint8_t)(crc >> 8),
				e[50] = (uint8_t)(crc >> 16), e[51] = (uint8_t)(crc >> 24);
		}
		sha256_buf(buf, len - 32, buf + len - 32);
	}
	file_write(path, buf, len);
	free(buf);
	run_verify(true);
	blob_id_hex(&m.state_id, bhex);
	snprintf(expect, sizeof(expect), "pack %s: blob %s: content does not match its id", hex, bhex);
	cr_assert(lines_has(&lines, expect), "no '%s'", expect);
	cr_assert(lines_has(&lines, "pack ") && lines_has(&lines, "content does not match its name"));
}

static void run_verify_marking(void)
{
	repo_close(r);
	memset(&lines, 0, sizeof(lines));
	r = repo_open_ok(dir);
	cr_assert_eq(repo_verify(r, REPO_VERIFY_READ_DATA | REPO_VERIFY_MARK, lines_collect,
				 &lines, &res), 0);
	lines_print(&lines);
}

Test(verify, damage_is_narrowed_to_its_blob_marked_and_the_mark_lifted_once_it_reads_back)
{
	char path[512], hex[BLOB_ID_HEX_BYTES], bhex[BLOB_ID_HEX_BYTES], expect[256];
	struct repo_blob_info info;
	uint8_t *saved;
	size_t len;
	uint64_t c = 0;

	/* A byte of one memory chunk's record flipped: the pack's checksum fails too. */
	while (blob_id_is_zero(&m.regions[0].ids[c]))
		c++;
	r = repo_open_ok(dir);
	cr_assert_eq(repo_blob_info(r, &m.regions[0].ids[c], &info), 0);
	pack_path(path, sizeof(path), hex);
	saved = file_read(path, &len);
	file_flip(path, info.offset + 16 + info.stored_bytes / 2, 0x08);
	run_verify_marking();
	blob_id_hex(&m.regions[0].ids[c], bhex);
	snprintf(expect, sizeof(expect), "pack %s: blob %s: ", hex, bhex);
	cr_assert(lines_has(&lines, expect), "the damage is not narrowed to '%s'", expect);
	cr_assert(lines_has(&lines, "1 referenced blobs are in missing or damaged packs"),
		  "only the damaged chunk counts");
	cr_assert_eq(res.blobs_marked, 1);
	cr_assert_eq(count_objects(dir, "damaged"), 1);
	/* Known damage is a note: the second run finds nothing new. */
	run_verify_marking();
	cr_assert_eq(res.blobs_marked, 0);
	cr_assert(lines_has(&lines, "marked damaged: no snapshot reads this copy"));
	cr_assert_eq(res.problems, 1, "the snapshot still names the blob");
	/* The pack put back whole: the mark is lifted and the repository is clean. */
	repo_close(r);
	r = NULL;
	cr_assert_eq(unlink(path), 0);
	file_write(path, saved, len);
	free(saved);
	run_verify_marking();
	cr_assert(lines_has(&lines, "their marks are lifted"));
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(count_objects(dir, "damaged"), 0);
	run_verify_marking();
	cr_assert_eq(res.problems, 0);
	cr_assert_eq(res.notes, 0);
}
