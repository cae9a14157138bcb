/* Tests for the librsync wrappers: signature, delta and patch round trip, changed blocks, errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/rsync_delta.h"
#include "transport/fd_stream.h"
#include "transport/mem_stream.h"

#define IMAGE_BYTES (16u << 20)
#define NBLOCKS (IMAGE_BYTES / RSD_BLOCK_BYTES)

static char dir[64], old_path[128], new_path[128], delta_path[128], out_path[128];
static uint8_t *old_img, *new_img;
static int old_fd, new_fd;
static char err[256];

/* Blocks the scattered changes touch, and the changes themselves. */
static const uint64_t changed_blocks[] = { 0, 17, 18, 100, 255 };

static void write_image(const char *path, const uint8_t *img, size_t len, int *fd)
{
	file_write(path, img, len);
	*fd = open(path, O_RDONLY);
	cr_assert(*fd >= 0);
}

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(old_path, sizeof(old_path), "%s/old.img", dir);
	snprintf(new_path, sizeof(new_path), "%s/new.img", dir);
	snprintf(delta_path, sizeof(delta_path), "%s/delta", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.img", dir);
	old_img = xmalloc(IMAGE_BYTES);
	new_img = xmalloc(IMAGE_BYTES);
	fill_guestlike(old_img, IMAGE_BYTES, 21);
	memcpy(new_img, old_img, IMAGE_BYTES);
	new_img[0] ^= 1;                                   /* block 0: one bit */
	fill_random(new_img + 17 * RSD_BLOCK_BYTES + 65000, 1000, 1); /* straddles 17/18 */
	memset(new_img + 100 * RSD_BLOCK_BYTES + 4096, 0x5a, 4096);  /* block 100: a page */
	new_img[IMAGE_BYTES - 1] ^= 0x80;                  /* the last block: one bit */
	write_image(old_path, old_img, IMAGE_BYTES, &old_fd);
	write_image(new_path, new_img, IMAGE_BYTES, &new_fd);
	err[0] = '\0';
}

static void teardown(void)
{
	close(old_fd);
	close(new_fd);
	free(old_img);
	free(new_img);
	tmpdir_remove(dir);
}

TestSuite(rsync_delta, .init = setup, .fini = teardown, .timeout = 60);

static void make_delta(const uint8_t *sig, size_t sig_len, int fd, uint64_t bytes)
{
	int dfd = open(delta_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	struct stream *s;

	cr_assert(dfd >= 0);
	cr_assert_eq(fd_stream_open(&s, dfd, FD_STREAM_OWN, 0), 0);
	cr_assert_eq(rsd_delta(sig, sig_len, fd, bytes, s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stream_close(s, true), 0);
}

static void patch_and_compare(const uint8_t *want, size_t want_len)
{
	int dfd = open(delta_path, O_RDONLY), ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t out_bytes = 0;
	uint8_t *got;
	size_t got_len;

	cr_assert(dfd >= 0 && ofd >= 0);
	cr_assert_eq(rsd_patch(old_fd, dfd, ofd, &out_bytes, err, sizeof(err)), 0, "%s", err);
	close(dfd);
	close(ofd);
	cr_assert_eq(out_bytes, want_len);
	got = file_read(out_path, &got_len);
	cr_assert_eq(got_len, want_len);
	cr_assert_eq(memcmp(got, want, want_len), 0);
	free(got);
}

Test(rsync_delta, signature_has_the_chosen_parameters)
{
	struct rsd_sig_info info;
	uint8_t *sig;
	size_t len;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, RSD_SIG_HEADER_BYTES + NBLOCKS * (4 + RSD_STRONG_BYTES));
	cr_assert_eq(rsd_sig_parse(sig, len, &info), 0);
	cr_assert_eq(info.block_bytes, RSD_BLOCK_BYTES);
	cr_assert_eq(info.strong_bytes, 32);
	cr_assert_eq(info.nblocks, NBLOCKS);
	free(sig);
}

Test(rsync_delta, delta_and_patch_round_trip_16_mib_with_scattered_changes)
{
	uint8_t *sig;
	size_t len, delta_len;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0, "%s", err);
	make_delta(sig, len, new_fd, IMAGE_BYTES);
	free(file_read(delta_path, &delta_len));
	/* Five changed blocks of 64 KiB as literals, the rest as copies. */
	cr_assert_lt(delta_len, 6 * RSD_BLOCK_BYTES, "delta %zu bytes", delta_len);
	patch_and_compare(new_img, IMAGE_BYTES);
	free(sig);
}

Test(rsync_delta, delta_handles_growth_and_shrinking)
{
	uint8_t *sig;
	size_t len;
	uint8_t *bigger = xmalloc(IMAGE_BYTES + 100000);

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0, "%s", err);
	memcpy(bigger, new_img, IMAGE_BYTES);
	fill_random(bigger + IMAGE_BYTES, 100000, 3);
	close(new_fd);
	write_image(new_path, bigger, IMAGE_BYTES + 100000, &new_fd);
	make_delta(sig, len, new_fd, IMAGE_BYTES + 100000);
	patch_and_compare(bigger, IMAGE_BYTES + 100000);
	make_delta(sig, len, new_fd, 5 * RSD_BLOCK_BYTES + 7);
	patch_and_compare(bigger, 5 * RSD_BLOCK_BYTES + 7);
	free(bigger);
	free(sig);
}

Test(rsync_delta, changed_blocks_are_exactly_the_touched_ones)
{
	uint64_t bitmap[NBLOCKS / 64] = { 0 }, expect[NBLOCKS / 64] = { 0 }, n = 0;
	uint8_t *old_sig, *new_sig;
	size_t old_len, new_len;

	for (size_t i = 0; i < sizeof(changed_blocks) / sizeof(changed_blocks[0]); i++)
		expect[changed_blocks[i] / 64] |= 1ull << (changed_blocks[i] % 64);
	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &old_sig, &old_len, err, sizeof(err)), 0);
	cr_assert_eq(rsd_changed_blocks(old_sig, old_len, new_fd, IMAGE_BYTES, bitmap, &n, &new_sig,
					&new_len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 5);
	cr_assert_eq(memcmp(bitmap, expect, sizeof(bitmap)), 0);
	/* The new signature is what the next increment compares against: no change, no bits. */
	memset(bitmap, 0, sizeof(bitmap));
	{
		uint8_t *again;
		size_t again_len;

		cr_assert_eq(rsd_changed_blocks(new_sig, new_len, new_fd, IMAGE_BYTES, bitmap, &n,
						&again, &again_len, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(n, 0);
		free(again);
	}
	free(old_sig);
	free(new_sig);
}

Test(rsync_delta, a_grown_disk_marks_its_new_blocks)
{
	uint64_t bitmap[(NBLOCKS + 2 + 63) / 64] = { 0 }, n = 0;
	uint8_t *old_sig, *new_sig, *bigger = xmalloc(IMAGE_BYTES + RSD_BLOCK_BYTES + 1);
	size_t old_len, new_len;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &old_sig, &old_len, err, sizeof(err)), 0);
	memcpy(bigger, old_img, IMAGE_BYTES);
	memset(bigger + IMAGE_BYTES, 0, RSD_BLOCK_BYTES + 1);
	close(new_fd);
	write_image(new_path, bigger, IMAGE_BYTES + RSD_BLOCK_BYTES + 1, &new_fd);
	cr_assert_eq(rsd_changed_blocks(old_sig, old_len, new_fd, IMAGE_BYTES + RSD_BLOCK_BYTES + 1,
					bitmap, &n, &new_sig, &new_len, err, sizeof(err)), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(bitmap[NBLOCKS / 64], 3);
	free(old_sig);
	free(new_sig);
	free(bigger);
}

Test(rsync_delta, a_short_image_is_an_error)
{
	uint8_t *sig;
	size_t len;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES + 1, 0, &sig, &len, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "librsync signature"), "%s", err);
}

Test(rsync_delta, signatures_of_other_kinds_are_refused)
{
	uint8_t md4[12] = { 0x72, 0x73, 0x01, 0x36, 0, 0, 8, 0, 0, 0, 0, 16 };
	uint8_t junk[12] = "not a sig!!";
	struct rsd_sig_info info;
	struct stream *s;
	struct mem_buf out;

	cr_assert_eq(rsd_sig_parse(md4, sizeof(md4), &info), -EPROTONOSUPPORT);
	cr_assert_eq(rsd_sig_parse(junk, sizeof(junk), &info), -ENOMSG);
	cr_assert_eq(rsd_sig_parse(junk, 11, &info), -EPROTO);
	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(rsd_delta(junk, sizeof(junk), new_fd, IMAGE_BYTES, s, err, sizeof(err)), -ENOMSG);
	cr_assert(strstr(err, "librsync delta"), "%s", err);
	stream_close(s, false);
}

Test(rsync_delta, a_truncated_signature_is_refused)
{
	uint8_t *sig;
	size_t len;
	struct rsd_sig_info info;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0);
	cr_assert_eq(rsd_sig_parse(sig, len - 1, &info), -EBADMSG);
	free(sig);
}

Test(rsync_delta, patch_rejects_garbage_and_truncated_deltas)
{
	uint8_t *sig, *delta;
	size_t len, delta_len;
	int dfd, ofd;

	file_write(delta_path, "this is not a delta", 19);
	dfd = open(delta_path, O_RDONLY);
	ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(rsd_patch(old_fd, dfd, ofd, NULL, err, sizeof(err)), -ENOMSG);
	cr_assert(strstr(err, "librsync patch: bad magic"), "%s", err);
	close(dfd);

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0);
	make_delta(sig, len, new_fd, IMAGE_BYTES);
	delta = file_read(delta_path, &delta_len);
	file_write(delta_path, delta, delta_len / 2);
	dfd = open(delta_path, O_RDONLY);
	cr_assert_eq(rsd_patch(old_fd, dfd, ofd, NULL, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "librsync patch"), "%s", err);
	close(dfd);
	close(ofd);
	free(delta);
	free(sig);
}

Test(rsync_delta, patch_against_a_short_basis_fails)
{
	uint8_t *sig;
	size_t len;
	int dfd, ofd, short_fd;
	char short_path[160];

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &sig, &len, err, sizeof(err)), 0);
	make_delta(sig, len, new_fd, IMAGE_BYTES);
	snprintf(short_path, sizeof(short_path), "%s/short.img", dir);
	write_image(short_path, old_img, 1 << 20, &short_fd);
	dfd = open(delta_path, O_RDONLY);
	ofd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(rsd_patch(short_fd, dfd, ofd, NULL, err, sizeof(err)), -EPROTO);
	close(dfd);
	close(ofd);
	close(short_fd);
	free(sig);
}

Test(rsync_delta, updating_the_changed_blocks_gives_the_new_images_signature)
{
	uint64_t bitmap[NBLOCKS / 64] = { 0 };
	uint8_t *old_sig, *new_sig, *short_sig;
	size_t old_len, new_len, short_len;

	cr_assert_eq(rsd_signature(old_fd, IMAGE_BYTES, 0, &old_sig, &old_len, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(rsd_signature(new_fd, IMAGE_BYTES, 0, &new_sig, &new_len, err, sizeof(err)), 0,
		     "%s", err);
	for (size_t i = 0; i < sizeof(changed_blocks) / sizeof(changed_blocks[0]); i++)
		bitmap[changed_blocks[i] / 64] |= 1ull << (changed_blocks[i] % 64);
	cr_assert_eq(rsd_signature_update(old_sig, old_len, new_fd, IMAGE_BYTES, bitmap, err,
					  sizeof(err)), 0, "%s", err);
	cr_assert_eq(old_len, new_len);
	cr_assert_eq(memcmp(old_sig, new_sig, new_len), 0, "the patched signature differs");
	/* A signature of another size is refused, not patched. */
	cr_assert_eq(rsd_signature(new_fd, IMAGE_BYTES / 2, 0, &short_sig, &short_len, err,
				   sizeof(err)), 0, "%s", err);
	cr_assert_eq(rsd_signature_update(short_sig, short_len, new_fd, IMAGE_BYTES, bitmap, err,
					  sizeof(err)), -EINVAL);
	free(short_sig);
	free(old_sig);
	free(new_sig);
}
