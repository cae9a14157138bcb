/* Tests for disk capture and restore: full, logged and log-lost increments, restore in place. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/disk_sync.h"
#include "repo/manifest.h"
#include "repo/repo.h"
#include "repo/rsync_delta.h"

#define DISK_BYTES ((8u << 20) + 12345)
#define BLOCK (64u << 10)
#define NBLOCKS ((DISK_BYTES + BLOCK - 1) / BLOCK)

static char dir[64], repo_dir[128], img_path[128], out_path[128];
static struct repo *r;
static uint8_t *img;
static int img_fd;
static char err[256];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(repo_dir, sizeof(repo_dir), "%s/repo", dir);
	snprintf(img_path, sizeof(img_path), "%s/disk.img", dir);
	snprintf(out_path, sizeof(out_path), "%s/restored.img", dir);
	cr_assert_eq(repo_init(repo_dir, 0, 0, err, sizeof(err)), 0, "%s", err);
	r = repo_open_ok(repo_dir);
	img = xmalloc(DISK_BYTES);
	fill_guestlike(img, DISK_BYTES, 8);
	file_write(img_path, img, DISK_BYTES);
	img_fd = open(img_path, O_RDWR);
	cr_assert(img_fd >= 0);
}

static void teardown(void)
{
	close(img_fd);
	repo_close(r);
	free(img);
	tmpdir_remove(dir);
}

TestSuite(disk_sync, .init = setup, .fini = teardown, .timeout = 60);

/* A manifest with a small RAM region and this disk, captured (m, parent, changed, st). */
static void capture(struct snap_manifest *m, const struct snap_manifest *parent,
		    const uint64_t *changed, struct disk_sync_stats *st)
{
	manifest_fill(m, r, img, 65536, 0, "vm");
	cr_assert_eq(manifest_set_disk(m, DISK_BYTES, BLOCK), 0);
	cr_assert_eq(disk_capture(r, img_fd, parent, changed, m, st), 0);
	if (parent)
		memcpy(m->parent, parent->id, SNAP_ID_BYTES);
	cr_assert_eq(snap_publish(r, m, err, sizeof(err)), 0, "%s", err);
}

/* Change block i of the image on disk and in img. */
static void touch_block(uint64_t i, uint64_t seed)
{
	fill_random(img + i * BLOCK + 100, 200, seed);
	cr_assert_eq(pwrite(img_fd, img + i * BLOCK + 100, 200, (off_t)(i * BLOCK + 100)), 200);
}

static void check_file(const char *path, const uint8_t *want, size_t len)
{
	size_t got_len;
	uint8_t *got = file_read(path, &got_len);

	cr_assert_eq(got_len, len);
	cr_assert_eq(memcmp(got, want, len), 0);
	free(got);
}

Test(disk_sync, full_capture_then_restore_into_an_empty_file)
{
	struct snap_manifest m;
	struct disk_sync_stats st;
	struct stat sb;
	int fd;

	capture(&m, NULL, NULL, &st);
	cr_assert_eq(st.blocks, NBLOCKS);
	cr_assert_eq(st.stored + st.zero, NBLOCKS);
	cr_assert_gt(st.zero, 0);
	fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(disk_restore(r, &m, fd, &st), 0);
	close(fd);
	cr_assert_eq(st.bytes_read, 0, "nothing to compare in a new file");
	cr_assert_eq(st.fetched + st.zero, NBLOCKS);
	check_file(out_path, img, DISK_BYTES);
	stat(out_path, &sb);
	cr_assert_lt((uint64_t)sb.st_blocks * 512, DISK_BYTES, "zero blocks stay sparse");
	manifest_free(&m);
}

Test(disk_sync, logged_increment_reads_only_changed_blocks)
{
	struct snap_manifest a, b;
	struct disk_sync_stats st;
	uint64_t changed[(NBLOCKS + 63) / 64] = { 0 };
	int fd;

	capture(&a, NULL, NULL, &st);
	touch_block(3, 1);
	touch_block(NBLOCKS - 1, 2);
	changed[0] |= 1ull << 3;
	changed[(NBLOCKS - 1) / 64] |= 1ull << ((NBLOCKS - 1) % 64);
	capture(&b, &a, changed, &st);
	cr_assert_eq(st.reused, NBLOCKS - 2);
	cr_assert_eq(st.stored + st.zero, 2);
	cr_assert_eq(st.bytes_read, BLOCK + (DISK_BYTES - (NBLOCKS - 1) * BLOCK));
	fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(disk_restore(r, &b, fd, NULL), 0);
	close(fd);
	check_file(out_path, img, DISK_BYTES);
	manifest_free(&a);
	manifest_free(&b);
}

Test(disk_sync, log_lost_increment_stores_only_what_differs)
{
	struct snap_manifest a, b;
	struct disk_sync_stats st;
	struct repo_stats before, after;

	capture(&a, NULL, NULL, &st);
	touch_block(5, 3);
	touch_block(6, 4);
	repo_stats_get(r, &before);
	capture(&b, &a, NULL, &st); /* no log: read everything */
	repo_stats_get(r, &after);
	cr_assert_eq(st.bytes_read, DISK_BYTES);
	cr_assert_eq(after.blobs_new - before.blobs_new, 2, "dedup keeps the rest");
	manifest_free(&a);
	manifest_free(&b);
}

Test(disk_sync, rsync_signature_finds_the_blocks_a_lost_log_would_have)
{
	struct snap_manifest a, b;
	struct disk_sync_stats st;
	uint64_t changed[(NBLOCKS + 63) / 64] = { 0 }, n = 0;
	uint8_t *sig_a, *sig_b;
	size_t len_a, len_b;
	struct blob_id *ids;
	uint32_t nids;
	int fd;

	/* Snapshot a stores its disk signature as SIG blobs ... */
	cr_assert_eq(rsd_signature(img_fd, DISK_BYTES, BLOCK, &sig_a, &len_a, err, sizeof(err)), 0);
	manifest_fill(&a, r, img, 65536, 0, "vm");
	cr_assert_eq(manifest_set_disk(&a, DISK_BYTES, BLOCK), 0);
	cr_assert_eq(disk_capture(r, img_fd, NULL, NULL, &a, &st), 0);
	cr_assert_eq(repo_blob_put_split(r, BLOB_T_SIG, sig_a, len_a, 4096, &ids, &nids), 0);
	cr_assert_eq(manifest_set_sig(&a, ids, nids), 0);
	free(ids);
	cr_assert_eq(snap_publish(r, &a, err, sizeof(err)), 0, "%s", err);
	free(sig_a);
	/* ... the log is lost, two blocks change; b reads the signature back from a. */
	touch_block(9, 5);
	touch_block(70, 6);
	cr_assert_eq(repo_blob_get_concat(r, a.sig_ids, a.nsig, 1 << 20, &sig_a, &len_a), 0);
	cr_assert_eq(rsd_changed_blocks(sig_a, len_a, img_fd, DISK_BYTES, changed, &n, &sig_b,
					&len_b, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);
	capture(&b, &a, changed, &st);
	cr_assert_eq(st.reused, NBLOCKS - 2);
	fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(disk_restore(r, &b, fd, NULL), 0);
	close(fd);
	check_file(out_path, img, DISK_BYTES);
	free(sig_a);
	free(sig_b);
	manifest_free(&a);
	manifest_free(&b);
}

Test(disk_sync, restore_brings_a_stale_copy_up_to_date_fetching_only_differences)
{
	struct snap_manifest m;
	struct disk_sync_stats st;
	uint8_t *stale = xmalloc(DISK_BYTES + 70000);
	struct repo_stats before, after;
	int fd;

	capture(&m, NULL, NULL, &st);
	/* The stale copy: three blocks differ, one zero block holds junk, and it is longer. */
	memcpy(stale, img, DISK_BYTES);
	fill_random(stale + 1 * BLOCK, 10, 1);
	fill_random(stale + 20 * BLOCK + 5000, 10, 2);
	fill_random(stale + (NBLOCKS - 1) * BLOCK, 10, 3);
	for (uint64_t i = 0; i < NBLOCKS; i++)
		if (blob_id_is_zero(&m.disk_ids[i]) && i * BLOCK + BLOCK <= DISK_BYTES) {
			memset(stale + i * BLOCK, 0x11, 100);
			break;
		}
	fill_random(stale + DISK_BYTES, 70000, 4);
	file_write(out_path, stale, DISK_BYTES + 70000);
	repo_stats_get(r, &before);
	fd = open(out_path, O_RDWR);
	cr_assert_eq(disk_restore(r, &m, fd, &st), 0);
	close(fd);
	repo_stats_get(r, &after);
	check_file(out_path, img, DISK_BYTES);
	cr_assert_eq(st.fetched, 3, "only the blocks that differ come from the repository");
	cr_assert_eq(after.blobs_read - before.blobs_read, 3);
	cr_assert_eq(st.bytes_written, 3 * BLOCK - BLOCK + (DISK_BYTES - (NBLOCKS - 1) * BLOCK) + BLOCK);
	/* Running it again finds nothing to do. */
	fd = open(out_path, O_RDWR);
	cr_assert_eq(disk_restore(r, &m, fd, &st), 0);
	close(fd);
	cr_assert_eq(st.fetched, 0);
	cr_assert_eq(st.bytes_written, 0);
	free(stale);
	manifest_free(&m);
}

Test(disk_sync, restore_fails_cleanly_when_a_blob_is_damaged)
{
	struct snap_manifest m;
	struct disk_sync_stats st;
	char path[512];
	int fd;

	capture(&m, NULL, NULL, &st);
	first_object(repo_dir, "data", path, sizeof(path));
	cr_assert_eq(unlink(path), 0);
	fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(disk_restore(r, &m, fd, &st), -EIO);
	close(fd);
	manifest_free(&m);
}
