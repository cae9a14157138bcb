/* Fuzz the record-frame reader (transport/frame.c) over a memory stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "util/byteorder.h"
#include "util/crc32c.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"

/*
 * Input: one byte choosing how the records are read, then a frame stream (stream header,
 * records, END). Every record's CRC32C is recomputed (unless the stream says
 * FRAME_F_NO_CRC), so a mutated type, length or payload reaches the checks behind the
 * CRC: lengths, reserved types, end totals, truncation, trailing bytes.
 */

/* Read records one way or another until the end or an error; 0 at a clean end. */
static int read_all(struct stream *f, uint8_t how)
{
	static uint8_t buf[4096]; /* larger records take frame_read_alloc */
	uint16_t type, flags;
	size_t len;
	int rc;

	for (unsigned i = 0;; i++) {
		switch ((how >> (2 * (i % 4))) & 3) {
		case 0:
			rc = frame_read(f, &type, &flags, buf, sizeof(buf), &len);
			if (rc == -ENOBUFS) {
				void *p;

				rc = frame_read_alloc(f, &type, &flags, &p, &len);
				if (rc == 0)
					free(p);
			}
			break;
		case 1: {
			void *p;

			rc = frame_read_alloc(f, &type, NULL, &p, &len);
			if (rc == 0)
				free(p);
			break;
		}
		default:
			/* The header, then the payload in pieces of 1, 7 or 4096 bytes. */
			rc = frame_read_header(f, &type, &flags, &len);
			while (rc == 0 && len) {
				size_t n = (how & 0x80) ? 4096 : (how & 1) ? 7 : 1;

				n = n < len ? n : len;
				rc = frame_read_part(f, buf, n);
				len -= n;
			}
			break;
		}
		if (rc < 0)
			return rc == -ENODATA ? 0 : rc;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream *mem, *f;
	uint8_t *s, how;
	int rc;

	if (size < 1)
		return 0;
	how = data[0];
	s = fuzz_dup(data + 1, size - 1);
	fuzz_fix_frame_crcs(s, size - 1);
	if (mem_stream_reader(&mem, s, size - 1) < 0)
		abort();
	rc = frame_reader_open_flags(&f, mem, FRAME_F_NO_CRC);
	if (rc < 0) {
		stream_close(mem, false);
	} else {
		if (read_all(f, how) == 0)
			fuzz_accepted++;
		stream_close(f, false);
	}
	free(s);
	return 0;
}

/* A stream of records of the given types and sizes, written by the frame writer. */
static int seed(const char *dir, const char *name, uint8_t how, uint16_t hflags,
		const uint32_t *lens, unsigned n)
{
	struct stream *mem, *f;
	struct mem_buf out;
	uint8_t *payload = fuzz_alloc(8192);
	int rc;

	for (size_t i = 0; i < 8192; i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	rc = mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED);
	if (rc == 0)
		rc = frame_writer_open_flags(&f, mem, hflags);
	for (unsigned i = 0; rc == 0 && i < n; i++)
		rc = frame_write(f, (uint16_t)(1 + i), (uint16_t)i, payload, lens[i]);
	if (rc == 0)
		rc = stream_close(f, true);
	if (rc == 0) {
		rc = fuzz_seed_write2(dir, name, &how, 1, out.data, out.len);
		free(out.data);
	}
	free(payload);
	return rc;
}

int fuzz_write_seeds(const char *dir)
{
	static const uint32_t small[] = { 0, 1, 16, 300 };
	static const uint32_t big[] = { 5000, 5 };
	int rc;

	rc = seed(dir, "seed-crc-records", 0x00, 0, small, 4);
	if (rc == 0)
		rc = seed(dir, "seed-nocrc-records", 0x1b, FRAME_F_NO_CRC, small, 4);
	if (rc == 0)
		rc = seed(dir, "seed-parts", 0xfe, 0, small, 4);
	if (rc == 0)
		rc = seed(dir, "seed-big-record", 0x04, 0, big, 2);
	if (rc == 0)
		rc = seed(dir, "seed-empty-stream", 0x00, 0, NULL, 0);
	return rc;
}
