/* The disk change log and its sidecar: marks, fetches, clean close, damaged sidecars. */
#include "vmm/disk_log.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/crc32c.h"
#include "vmm/devices.h"
#include "vmm/state/state_codec.h"
#include "vmm/vm_state.h"

#define BLOCK VM_DISK_BLOCK_BYTES
#define DISK_BYTES (200 * BLOCK + 4096) /* a partial last block */
#define NBLOCKS 201
#define WORDS 4
#define SIDECAR_BYTES (DISK_LOG_HEADER_BYTES + WORDS * 8 + 4)

static struct {
	char dir[64];
	char image[128];
	char sidecar[160];
	int fd;
	struct disk_log log;
	bool open;
	uint64_t bm[WORDS];
	char err[256];
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/gwlog.XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	snprintf(fx.image, sizeof(fx.image), "%s/disk.img", fx.dir);
	snprintf(fx.sidecar, sizeof(fx.sidecar), "%s.gwlog", fx.image);
	fx.fd = open(fx.image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fx.fd, 0);
	cr_assert_eq(ftruncate(fx.fd, DISK_BYTES), 0);
}

static void teardown(void)
{
	char cmd[128];

	if (fx.open)
		disk_log_free(&fx.log);
	close(fx.fd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(disk_log, .init = setup, .fini = teardown);

static void log_open(void)
{
	cr_assert_eq(disk_log_open(&fx.log, fx.image, fx.fd, DISK_BYTES, fx.err, sizeof(fx.err)),
		     0, "%s", fx.err);
	fx.open = true;
}

static void log_close(void)
{
	cr_assert_eq(disk_log_close(&fx.log), 0);
	fx.open = false;
}

static void fetch(const char *base)
{
	memset(fx.bm, 0, sizeof(fx.bm));
	cr_assert_eq(disk_log_fetch(&fx.log, fx.bm, base), 0);
}

static bool block(uint64_t b)
{
	return fx.bm[b / 64] >> (b % 64) & 1;
}

static unsigned nset(void)
{
	unsigned n = 0;

	for (unsigned w = 0; w < WORDS; w++)
		n += (unsigned)__builtin_popcountll(fx.bm[w]);
	return n;
}

static uint8_t *sidecar_read(size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(fx.sidecar, O_RDONLY);

	cr_assert_geq(fd, 0, "no sidecar");
	cr_assert_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	cr_assert_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void sidecar_write(const uint8_t *buf, size_t len, bool fix_crc)
{
	uint8_t *copy = malloc(len);
	int fd = open(fx.sidecar, O_WRONLY | O_TRUNC);

	memcpy(copy, buf, len);
	if (fix_crc && len >= 4)
		le32_encode(copy + len - 4, crc32c(0, copy, len - 4));
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, copy, len), (ssize_t)len);
	close(fd);
	free(copy);
}

/* A CLEAN sidecar with base "b1" and blocks 3 and 200 marked. */
static void make_clean_sidecar(void)
{
	log_open();
	fetch("b1");
	disk_log_mark(&fx.log, 3 * BLOCK + 10, 1);
	disk_log_mark(&fx.log, DISK_BYTES - 1, 1);
	log_close();
}

Test(disk_log, a_new_image_starts_invalid_and_reports_everything)
{
	log_open();
	cr_assert(!disk_log_valid(&fx.log, ""));
	fetch("b1");
	cr_assert_eq(nset(), NBLOCKS, "an invalid log reports every block, and only those");
	cr_assert(disk_log_valid(&fx.log, "b1"));
	cr_assert(!disk_log_valid(&fx.log, "b2"));
	cr_assert(!disk_log_valid(&fx.log, NULL));
}

Test(disk_log, marks_cover_every_block_a_write_touches)
{
	log_open();
	fetch("b1");
	disk_log_mark(&fx.log, BLOCK - 512, 1024);       /* blocks 0 and 1 */
	disk_log_mark(&fx.log, 10 * BLOCK, BLOCK);        /* block 10 only */
	disk_log_mark(&fx.log, 64 * BLOCK - 1, 2);        /* 63 and 64: across a word */
	disk_log_mark(&fx.log, DISK_BYTES - 512, 4096);   /* clipped to the last block */
	disk_log_mark(&fx.log, DISK_BYTES + 512, 512);    /* past the end: nothing */
	disk_log_mark(&fx.log, 5 * BLOCK, 0);             /* empty: nothing */
	fetch("b2");
	cr_assert_eq(nset(), 6);
	cr_assert(block(0) && block(1) && block(10) && block(63) && block(64) && block(200));
	cr_assert(block(199) == false && block(11) == false);
	fetch("b3");
	cr_assert_eq(nset(), 0, "a fetch clears the log");
}

static void view_fetch(int k)
{
	memset(fx.bm, 0, sizeof(fx.bm));
	disk_log_view_fetch(&fx.log, k, fx.bm);
}

/*
 * Consumers' views (vm_state.h): each starts with every block, gets every later mark,
 * and is fetched and cleared alone: the log's own view keeps its base and marks whatever
 * the consumers fetch, and a view that ends leaves the rest whole.
 */
Test(disk_log, views_see_every_mark_and_never_hide_one_from_another)
{
	int a, b;

	log_open();
	fetch("b1");
	disk_log_mark(&fx.log, 7 * BLOCK, 1);
	cr_assert_eq(disk_log_view_add(&fx.log, &a), 0);
	view_fetch(a);
	cr_assert_eq(nset(), NBLOCKS, "a new view starts with every block, and only those");
	cr_assert_eq(disk_log_view_add(&fx.log, &b), 0);
	cr_assert_neq(a, b);
	disk_log_mark(&fx.log, 20 * BLOCK, 1);
	view_fetch(a);
	cr_assert_eq(nset(), 1);
	cr_assert(block(20));
	view_fetch(b);
	cr_assert_eq(nset(), NBLOCKS, "a's fetch took a block from b's start");
	disk_log_mark(&fx.log, 30 * BLOCK, 1);
	disk_log_view_remove(&fx.log, a);
	view_fetch(b);
	cr_assert_eq(nset(), 1, "a's end took b's block");
	cr_assert(block(30));
	cr_assert(disk_log_valid(&fx.log, "b1"), "a view moved the log's base");
	fetch("b2");
	cr_assert_eq(nset(), 3, "views took marks from the log's own view");
	cr_assert(block(7) && block(20) && block(30));
	disk_log_view_remove(&fx.log, b);
}

Test(disk_log, views_are_limited_and_their_slots_reused)
{
	int k[DISK_LOG_MAX_VIEWS], extra;

	log_open();
	for (unsigned i = 0; i < DISK_LOG_MAX_VIEWS; i++)
		cr_assert_eq(disk_log_view_add(&fx.log, &k[i]), 0);
	cr_assert_eq(disk_log_view_add(&fx.log, &extra), -EBUSY);
	disk_log_view_remove(&fx.log, k[3]);
	cr_assert_eq(disk_log_view_add(&fx.log, &extra), 0);
	cr_assert_eq(extra, k[3]);
	/* disk_log_free (teardown) frees every view left. */
}

Test(disk_log, a_base_longer_than_the_sidecar_holds_is_refused)
{
	char base[DISK_LOG_BASE_MAX + 2];

	log_open();
	fetch("b1");
	memset(base, 'x', sizeof(base) - 1);
	base[sizeof(base) - 1] = '\0';
	cr_assert_eq(disk_log_fetch(&fx.log, fx.bm, base), -ENAMETOOLONG);
	cr_assert(disk_log_valid(&fx.log, "b1"));
	base[DISK_LOG_BASE_MAX] = '\0';
	fetch(base);
	cr_assert(disk_log_valid(&fx.log, base), "exactly 64 bytes fit");
}

Test(disk_log, a_clean_close_keeps_marks_and_base_for_the_next_open)
{
	make_clean_sidecar();
	log_open();
	cr_assert(disk_log_valid(&fx.log, "b1"));
	fetch("b2");
	cr_assert_eq(nset(), 2);
	cr_assert(block(3) && block(200));
}

Test(disk_log, an_open_log_leaves_an_unclean_sidecar_behind)
{
	size_t len;
	uint8_t *buf;

	make_clean_sidecar();
	log_open();
	buf = sidecar_read(&len);
	cr_assert_eq(len, SIDECAR_BYTES);
	cr_assert_eq(memcmp(buf, "GWDL", 4), 0);
	cr_assert_eq(le32_decode(buf + 8) & DISK_LOG_F_CLEAN, 0, "still CLEAN while in use");
	free(buf);
	/* A crash now: the process dies without a clean close. */
	disk_log_free(&fx.log);
	fx.open = false;
	log_open();
	cr_assert(!disk_log_valid(&fx.log, "b1"));
}

Test(disk_log, an_invalid_log_is_not_saved_as_clean)
{
	log_open();
	log_close(); /* never fetched: nothing to vouch for */
	log_open();
	cr_assert(!disk_log_valid(&fx.log, ""));
}

/* Each corruption of a good sidecar leaves the log invalid. */
static void expect_rejected(uint8_t *buf, size_t len, bool fix_crc, const char *what)
{
	sidecar_write(buf, len, fix_crc);
	log_open();
	cr_assert(!disk_log_valid(&fx.log, "b1"), "accepted a sidecar with %s", what);
	fetch("b1");
	cr_assert_eq(nset(), NBLOCKS, "%s: not all blocks reported", what);
	log_close(); /* valid again (base b1, empty): restores a good sidecar */
	make_clean_sidecar();
}

Test(disk_log, every_damaged_sidecar_is_rejected)
{
	size_t len;
	uint8_t *good, *bad;

	make_clean_sidecar();
	good = sidecar_read(&len);
	cr_assert_eq(len, SIDECAR_BYTES);
	bad = malloc(len + 8);
	memcpy(bad, good, len);
	bad[0] = 'X';
	expect_rejected(bad, len, true, "a bad magic");
	memcpy(bad, good, len);
	le32_encode(bad + 4, DISK_LOG_VERSION + 1);
	expect_rejected(bad, len, true, "another version");
	memcpy(bad, good, len);
	le32_encode(bad + 8, DISK_LOG_F_CLEAN | 2);
	expect_rejected(bad, len, true, "an unknown flag");
	memcpy(bad, good, len);
	le32_encode(bad + 8, 0);
	expect_rejected(bad, len, true, "no CLEAN flag");
	memcpy(bad, good, len);
	bad[DISK_LOG_HEADER_BYTES] ^= 1;
	expect_rejected(bad, len, false, "a bad checksum");
	for (size_t cut = 0; cut < len; cut += 17)
		expect_rejected(good, cut, false, "truncation");
	memcpy(bad, good, len);
	memset(bad + len, 0, 8);
	expect_rejected(bad, len + 8, true, "trailing bytes");
	memcpy(bad, good, len);
	le64_encode(bad + 16, BLOCK * 2);
	expect_rejected(bad, len, true, "another block size");
	memcpy(bad, good, len);
	le64_encode(bad + 40, le64_decode(good + 40) + 1);
	expect_rejected(bad, len, true, "another inode");
	memcpy(bad, good, len);
	le64_encode(bad + 56, le64_decode(good + 56) - 1);
	expect_rejected(bad, len, true, "another mtime");
	memcpy(bad, good, len);
	le32_encode(bad + 64, DISK_LOG_BASE_MAX + 1);
	expect_rejected(bad, len, true, "an oversized base length");
	free(bad);
	free(good);
}

Test(disk_log, an_image_that_changed_size_or_content_drops_its_log)
{
	make_clean_sidecar();
	usleep(20000);
	cr_assert_eq(pwrite(fx.fd, "x", 1, 0), 1);
	log_open();
	cr_assert(!disk_log_valid(&fx.log, "b1"), "written offline");
	log_close();
	make_clean_sidecar();
	cr_assert_eq(ftruncate(fx.fd, DISK_BYTES + 512), 0);
	cr_assert_eq(disk_log_open(&fx.log, fx.image, fx.fd, DISK_BYTES + 512, fx.err,
				   sizeof(fx.err)), 0);
	cr_assert(!disk_log_valid(&fx.log, "b1"), "resized offline");
	disk_log_free(&fx.log);
}

Test(disk_log, a_read_only_disk_has_no_log_and_no_sidecar)
{
	struct bus pio, mmio;
	struct pci_bus *pci;
	struct guest_mem mem;
	uint8_t ram[4096];
	struct virtio_blk *vb;
	struct virtio_blk_config cfg = { .path = fx.image, .read_only = true, .change_log = true };

	guest_mem_layout(&mem, ram, sizeof(ram));
	cr_assert_eq(bus_init(&pio), 0);
	cr_assert_eq(bus_init(&mmio), 0);
	cr_assert_eq(pci_bus_create(&pci, &pio, &mmio), 0);
	cr_assert_eq(virtio_blk_create(&vb, pci, &mem, NULL, &cfg, fx.err, sizeof(fx.err)), 0,
		     "%s", fx.err);
	cr_assert(!virtio_blk_log_valid(vb, ""));
	cr_assert_eq(virtio_blk_log_fetch(vb, fx.bm, "b1"), -ENOTSUP);
	{
		int view;

		cr_assert_eq(virtio_blk_view_add(vb, &view), -ENOTSUP);
	}
	virtio_blk_destroy(vb);
	cr_assert_eq(access(fx.sidecar, F_OK), -1, "a read-only disk got a sidecar");
	pci_bus_destroy(pci);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}
