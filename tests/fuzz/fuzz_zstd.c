/* Fuzz the zstd stream reader (transport/zstd_stream.c) over a memory stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "util/byteorder.h"
#include "transport/mem_stream.h"
#include "transport/zstd_stream.h"

/*
 * Input: one byte choosing the read sizes, the content length the reads aim at (u32; a
 * read never asks past it), then a zstd stream (header, chunks, LAST). Chunk words carry
 * no checksum of their own; zstd's content checksum is optional in the frame header, so
 * mutations that clear it reach everything behind it. Reading stops after
 * FUZZ_ZSTD_MAX_OUT bytes: a 1 MiB chunk of RLE blocks decodes to gigabytes, which costs
 * a peer nothing and the reader only time, not memory (its window is bounded).
 */
#define FUZZ_ZSTD_MAX_OUT (4u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[70000];
	static const size_t steps[8] = { 1, 3, 64, 4096, 65536, 69999, 17, 512 };
	struct fuzz_in in = { data, size };
	struct stream *mem, *z;
	size_t total = 0, want;
	uint8_t how;
	int rc;

	how = fuzz_u8(&in);
	want = fuzz_u32(&in);
	if (want > FUZZ_ZSTD_MAX_OUT)
		want = FUZZ_ZSTD_MAX_OUT;
	if (mem_stream_reader(&mem, in.p, in.len) < 0)
		abort();
	rc = zstd_reader_open(&z, mem);
	if (rc < 0) {
		stream_close(mem, false);
		return 0;
	}
	for (unsigned i = 0; total < want; i++) {
		size_t n = steps[(how >> (i % 6)) & 7];

		n = n < want - total ? n : want - total;
		rc = stream_read_all(z, buf, n);
		if (rc < 0)
			break;
		total += n;
	}
	/* All of it, and then a clean end: the stream decoded all the way through. */
	if (rc == 0 && stream_read_all(z, buf, 1) == -ENODATA)
		fuzz_accepted++;
	stream_close(z, false);
	return 0;
}

/* len bytes of text-like data, a run of zeros, and noise that zstd cannot shrink. */
static void fill(uint8_t *p, size_t len, unsigned kind)
{
	uint32_t x = 2463534242u + kind;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[i] = kind == 0 ? (uint8_t)"godwit fuzz seed "[i % 17]
		     : kind == 1 ? 0 : (uint8_t)x;
	}
}

static int seed(const char *dir, const char *name, uint8_t how,
		const struct zstd_stream_opts *opts, unsigned kind, size_t len, bool flush)
{
	struct stream *mem, *z;
	struct mem_buf out;
	uint8_t *p = fuzz_alloc(len);
	int rc;

	fill(p, len, kind);
	rc = mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED);
	if (rc == 0) {
		rc = zstd_writer_open(&z, mem, opts);
		if (rc < 0)
			stream_close(mem, false);
	}
	if (rc == 0) {
		rc = stream_write_all(z, p, len / 2);
		if (rc == 0 && flush)
			rc = stream_flush(z);
		if (rc == 0)
			rc = stream_write_all(z, p + len / 2, len - len / 2);
		rc = stream_close(z, rc == 0);
	}
	if (rc == 0) {
		uint8_t head[5] = { how };

		le32_encode(head + 1, (uint32_t)len);
		rc = fuzz_seed_write2(dir, name, head, sizeof(head), out.data, out.len);
		free(out.data);
	}
	free(p);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	struct zstd_stream_opts plain = { .level = 1 };
	struct zstd_stream_opts nosum = { .level = 3, .no_checksum = true };
	struct zstd_stream_opts raw = { .raw_only = true };
	int rc;

	rc = seed(dir, "seed-text", 0x00, &plain, 0, 3000, false);
	if (rc == 0)
		rc = seed(dir, "seed-text-flushed-nochecksum", 0x25, &nosum, 0, 3000, true);
	if (rc == 0)
		rc = seed(dir, "seed-zeros", 0x3f, &plain, 1, 200000, false);
	if (rc == 0)
		rc = seed(dir, "seed-raw-chunks", 0x11, &raw, 2, 2000, true);
	if (rc == 0)
		rc = seed(dir, "seed-empty", 0x00, NULL, 0, 0, false);
	return rc;
}
