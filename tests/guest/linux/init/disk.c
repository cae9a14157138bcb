/* disk= and fs=1 of the test /init: patterned sectors on /dev/vda and one file on ext4. */
#include "guest.h"

#define DISK_CHUNK_SECTORS 128UL
#define FS_HELLO_LINE "hello from the godwit linux test guest\n"

static void disk_fill(uint64_t *buf, uint64_t lba, uint64_t n, uint64_t seed)
{
	for (uint64_t s = 0; s < n; s++)
		for (uint64_t k = 0; k < SECTOR_BYTES / 8; k++)
			buf[s * 64 + k] = splitmix64(seed ^ ((lba + s) << 6 | k));
}

static uint64_t disk_count_bad(const uint64_t *buf, uint64_t lba, uint64_t n, uint64_t seed)
{
	uint64_t bad = 0;

	for (uint64_t s = 0; s < n; s++)
		for (uint64_t k = 0; k < SECTOR_BYTES / 8; k++)
			if (buf[s * 64 + k] != splitmix64(seed ^ ((lba + s) << 6 | k))) {
				bad++;
				break;
			}
	return bad;
}

/* Runs one disk= operation over fd in chunks and prints its result line. */
static void disk_run(long fd, const struct disk_op *op, uint64_t *buf)
{
	struct line l = { .len = 0 };
	uint64_t bad = 0;
	uint32_t crc = 0;
	int status = 0;

	for (uint64_t done = 0; done < op->count && !status;) {
		uint64_t n = op->count - done, lba = op->lba + done;
		long want, rc;

		if (n > DISK_CHUNK_SECTORS)
			n = DISK_CHUNK_SECTORS;
		want = (long)(n * SECTOR_BYTES);
		if (op->kind == 'w') {
			disk_fill(buf, lba, n, op->seed);
			rc = sys4(SYS_pwrite64, fd, buf, want, lba * SECTOR_BYTES);
		} else {
			rc = sys4(SYS_pread64, fd, buf, want, lba * SECTOR_BYTES);
		}
		if (rc != want) {
			status = 1;
			break;
		}
		if (op->kind == 'v')
			bad += disk_count_bad(buf, lba, n, op->seed);
		if (op->kind == 'r')
			crc = crc32_ieee(crc, (const uint8_t *)buf, (size_t)want);
		done += n;
	}
	if (op->kind == 'w' && !status && sys1(SYS_fsync, fd) < 0)
		status = 1;
	if (bad)
		status = 1;

	put_str(&l, op->kind == 'w' ? "DISK W" : op->kind == 'v' ? "DISK V" : "DISK R");
	put_str(&l, " lba=");
	put_u64(&l, op->lba);
	put_str(&l, " n=");
	put_u64(&l, op->count);
	if (op->kind == 'v') {
		put_str(&l, " bad=");
		put_u64(&l, bad);
	}
	if (op->kind == 'r') {
		put_str(&l, " crc=");
		put_hex(&l, crc, 8);
	}
	put_str(&l, " status=");
	put_u64(&l, (uint64_t)status);
	line_emit(&l);
}

/*
 * Reports the disk and runs the disk= operations in command-line order. O_DIRECT
 * keeps the page cache out of the way, so a read sees what the device holds.
 */
void disk_phase(const struct params *p)
{
	struct line l = { .len = 0 };
	uint64_t bytes = 0;
	uint64_t *buf;
	long fd;

	fd = sys3(SYS_open, "/dev/vda", O_RDWR | O_DIRECT | O_CLOEXEC, 0);
	if (fd < 0)
		fd = sys3(SYS_open, "/dev/vda", O_RDWR | O_SYNC | O_CLOEXEC, 0);
	if (fd < 0) {
		if (p->ndisk || p->disk_bad)
			say("DISK none");
		return;
	}
	sys3(SYS_ioctl, fd, BLKGETSIZE64, &bytes);
	put_str(&l, "DISK cap=");
	put_u64(&l, bytes / SECTOR_BYTES);
	line_emit(&l);
	if (p->disk_bad)
		say("DISK badarg");
	if (!p->ndisk)
		goto out_close;

	buf = (uint64_t *)sys6(SYS_mmap, 0, (long)(DISK_CHUNK_SECTORS * SECTOR_BYTES),
			       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if ((unsigned long)buf > -4096UL) {
		say("DISK nomem");
		goto out_close;
	}
	for (int i = 0; i < p->ndisk; i++)
		disk_run(fd, &p->disk[i], buf);
out_close:
	sys1(SYS_close, fd);
}

/* fs=1: mounts /dev/vda as ext4, writes one file durably, unmounts so the image is clean. */
void fs_phase(void)
{
	struct line l = { .len = 0 };
	const char *msg = FS_HELLO_LINE;
	long rc, fd;

	rc = sys5(SYS_mount, "/dev/vda", "/mnt", "ext4", 0, 0);
	if (rc < 0)
		goto err;
	fd = sys3(SYS_open, "/mnt/hello.txt", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = fd;
		goto err_umount;
	}
	rc = sys3(SYS_write, fd, msg, str_len(msg));
	if (rc >= 0 && rc != (long)str_len(msg))
		rc = -5; /* EIO: a short write */
	if (rc >= 0)
		rc = sys1(SYS_fsync, fd);
	sys1(SYS_close, fd);
	if (rc < 0)
		goto err_umount;
	sys0(SYS_sync);
	rc = sys2(SYS_umount2, "/mnt", 0);
	if (rc < 0)
		goto err;
	say("FS ok");
	return;
err_umount:
	sys2(SYS_umount2, "/mnt", 0);
err:
	put_str(&l, "FS err=");
	put_u64(&l, (uint64_t)-rc);
	line_emit(&l);
}
