/* Helpers every fuzz harness links: input cursors, seed files, a scratch directory. */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/frame.h"

unsigned long fuzz_accepted;

uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v;

	if (in->len == 0)
		return 0;
	v = in->p[0];
	in->p++;
	in->len--;
	return v;
}

uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t lo = fuzz_u8(in);

	return (uint16_t)(lo | fuzz_u8(in) << 8);
}

uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t lo = fuzz_u16(in);

	return lo | (uint32_t)fuzz_u16(in) << 16;
}

const uint8_t *fuzz_take(struct fuzz_in *in, size_t n, size_t *got)
{
	const uint8_t *p = in->p;

	if (n > in->len)
		n = in->len;
	in->p += n;
	in->len -= n;
	*got = n;
	return p;
}

void fuzz_assert_one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

void *fuzz_alloc(size_t len)
{
	void *p = malloc(len ? len : 1);

	if (!p)
		abort();
	return p;
}

uint8_t *fuzz_dup(const void *data, size_t len)
{
	uint8_t *p = fuzz_alloc(len);

	if (len)
		memcpy(p, data, len);
	return p;
}

int fuzz_seed_write(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len)
		rc = -EIO;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int fuzz_seed_write2(const char *dir, const char *name, const void *head, size_t head_len,
		     const void *data, size_t len)
{
	uint8_t *b = fuzz_alloc(head_len + len);
	int rc;

	memcpy(b, head, head_len);
	if (len)
		memcpy(b + head_len, data, len);
	rc = fuzz_seed_write(dir, name, b, head_len + len);
	free(b);
	return rc;
}

void fuzz_fix_frame_crcs(uint8_t *s, size_t len)
{
	size_t off = FRAME_STREAM_HEADER_BYTES;

	if (len < FRAME_STREAM_HEADER_BYTES || (le16_decode(s + 6) & FRAME_F_NO_CRC))
		return;
	while (len - off >= FRAME_HEADER_BYTES && le32_decode(s + off) == FRAME_SYNC) {
		uint32_t plen = le32_decode(s + off + 8);
		uint32_t crc;

		if (plen > len - off - FRAME_HEADER_BYTES)
			break;
		crc = crc32c(0, s + off, 12);
		crc = crc32c(crc, s + off + FRAME_HEADER_BYTES, plen);
		le32_encode(s + off + 12, crc);
		off += FRAME_HEADER_BYTES + plen;
	}
}

static char scratch[256];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void scratch_remove(void)
{
	if (scratch[0])
		nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_scratch_dir(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");

	if (scratch[0])
		return scratch;
	snprintf(scratch, sizeof(scratch), "%s/godwit-fuzz-%d-XXXXXX", base ? base : "/tmp",
		 (int)getpid());
	if (!mkdtemp(scratch))
		abort();
	atexit(scratch_remove);
	return scratch;
}
