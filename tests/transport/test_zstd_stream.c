/* Tests for the zstd layer: round trips, flush before close, bounded and garbage-proof reads. */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <zstd.h>

#include "helpers.h"
#include "util/byteorder.h"
#include "transport/mem_stream.h"
#include "transport/zstd_stream.h"

static struct mem_buf out;

static void setup(void)
{
	memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
	free(out.data);
}

TestSuite(zstd_stream, .init = setup, .fini = teardown, .timeout = 60);

static void compress(const uint8_t *data, size_t len, const struct zstd_stream_opts *opts)
{
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(zstd_writer_open(&s, mem, opts), 0);
	for (size_t off = 0; off < len; off += 100000) {
		size_t n = len - off < 100000 ? len - off : 100000;

		cr_assert_eq(stream_write_all(s, data + off, n), 0);
	}
	cr_assert_eq(stream_close(s, true), 0);
}

/* Decode buf fully; returns the first error or -ENODATA at a clean end, *len decoded. */
static int decompress(const uint8_t *buf, size_t n, uint8_t *dst, size_t cap, size_t *len)
{
	struct stream *mem, *s;
	int rc;

	*len = 0;
	cr_assert_eq(mem_stream_reader(&mem, buf, n), 0);
	rc = zstd_reader_open(&s, mem);
	if (rc < 0) {
		stream_close(mem, false);
		return rc;
	}
	/* Exact reads of up to 4 KiB; *len counts only whole reads that succeeded. */
	for (;;) {
		size_t step = cap - *len < 4096 ? cap - *len : 4096;

		if (step == 0) {
			rc = stream_read_all(s, dst, 1);
			break;
		}
		rc = stream_read_all(s, dst + *len, step);
		if (rc < 0)
			break;
		*len += step;
	}
	stream_close(s, false);
	return rc;
}

static void round_trip(const uint8_t *data, size_t len, const struct zstd_stream_opts *opts)
{
	uint8_t *back = xmalloc(len + 1);
	struct stream *mem, *s;

	compress(data, len, opts);
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(zstd_reader_open(&s, mem), 0);
	cr_assert_eq(stream_read_all(s, back, len / 3), 0);
	cr_assert_eq(stream_read_all(s, back + len / 3, len - len / 3), 0);
	cr_assert_eq(memcmp(back, data, len), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(back);
	free(out.data);
	out.data = NULL;
}

Test(zstd_stream, round_trips_guestlike_data_and_compresses_it)
{
	size_t len = 8u << 20;
	uint8_t *data = xmalloc(len);

	fill_guestlike(data, len, 1);
	compress(data, len, NULL);
	cr_assert_lt(out.len, len / 2, "zero and text pages compress (%zu of %zu)", out.len, len);
	free(out.data);
	out.data = NULL;
	round_trip(data, len, NULL);
	free(data);
}

Test(zstd_stream, round_trips_incompressible_data_and_empty_streams)
{
	size_t len = 3u << 20;
	uint8_t *data = xmalloc(len);

	fill_random(data, len, 2);
	round_trip(data, len, NULL);
	round_trip(data, 0, NULL);
	round_trip(data, 1, NULL);
	free(data);
}

Test(zstd_stream, round_trips_at_negative_default_and_high_levels)
{
	static const int levels[] = { -5, 1, 3, 19 };
	size_t len = 1u << 20;
	uint8_t *data = xmalloc(len);

	fill_guestlike(data, len, 3);
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		struct zstd_stream_opts o = { .level = levels[i] };

		round_trip(data, len, &o);
	}
	free(data);
}

Test(zstd_stream, rejects_levels_out_of_range)
{
	struct zstd_stream_opts o = { .level = 22 };
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(zstd_writer_open(&s, mem, &o), -EINVAL);
	cr_assert_eq(stream_close(mem, false), 0);
}

Test(zstd_stream, worker_threads_round_trip_when_libzstd_has_them)
{
	struct zstd_stream_opts o = { .level = 1, .workers = 2 };
	size_t len = 16u << 20;
	struct stream *mem, *s;
	uint8_t *data;

	if (!zstd_stream_workers_supported()) {
		cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
		cr_assert_eq(zstd_writer_open(&s, mem, &o), -ENOTSUP);
		stream_close(mem, false);
		cr_skip_test("libzstd without multithreading: workers refused with -ENOTSUP");
	}
	data = xmalloc(len);
	fill_guestlike(data, len, 4);
	round_trip(data, len, &o);
	free(data);
}

Test(zstd_stream, flush_makes_everything_written_so_far_decodable_before_close)
{
	size_t len = 1u << 20;
	uint8_t *data = xmalloc(len), *back = xmalloc(len);
	struct stream *mem, *w, *rm, *r;
	const uint8_t *p;
	size_t n;

	fill_guestlike(data, len, 5);
	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(zstd_writer_open(&w, mem, NULL), 0);
	/* Round 1: a small write, then flush; a reader over what went down decodes it all. */
	cr_assert_eq(stream_write_all(w, data, 1000), 0);
	cr_assert_eq(stream_flush(w), 0);
	p = mem_stream_peek(mem, &n);
	cr_assert_eq(mem_stream_reader(&rm, p, n), 0);
	cr_assert_eq(zstd_reader_open(&r, rm), 0);
	cr_assert_eq(stream_read_all(r, back, 1000), 0);
	cr_assert_eq(memcmp(back, data, 1000), 0);
	cr_assert_eq(stream_read_all(r, back, 1), -EPROTO, "no more yet, and no end marker");
	stream_close(r, false);
	/* Round 2: more data, flush again; everything so far decodes. */
	cr_assert_eq(stream_write_all(w, data + 1000, len - 1000), 0);
	cr_assert_eq(stream_flush(w), 0);
	p = mem_stream_peek(mem, &n);
	cr_assert_eq(mem_stream_reader(&rm, p, n), 0);
	cr_assert_eq(zstd_reader_open(&r, rm), 0);
	cr_assert_eq(stream_read_all(r, back, len), 0);
	cr_assert_eq(memcmp(back, data, len), 0);
	stream_close(r, false);
	cr_assert_eq(stream_close(w, true), 0);
	free(data);
	free(back);
}

Test(zstd_stream, rejects_garbage_bad_magic_and_bad_version)
{
	uint8_t junk[4096], back[16];
	size_t n;

	fill_random(junk, sizeof(junk), 6);
	cr_assert_eq(decompress(junk, sizeof(junk), back, sizeof(back), &n), -ENOMSG);
	memcpy(junk, ZSTD_STREAM_MAGIC, 4);
	le16_encode(junk + 4, 2);
	le16_encode(junk + 6, 0);
	cr_assert_eq(decompress(junk, sizeof(junk), back, sizeof(back), &n), -EPROTONOSUPPORT);
	/* A right header followed by a chunk of random bytes. */
	le16_encode(junk + 4, ZSTD_STREAM_FORMAT_VERSION);
	le32_encode(junk + 8, 2000);
	cr_assert_eq(decompress(junk, sizeof(junk), back, sizeof(back), &n), -EBADMSG);
	cr_assert_eq(n, 0);
}

Test(zstd_stream, rejects_corrupt_compressed_bytes)
{
	size_t len = 1u << 20, n;
	uint8_t *data = xmalloc(len), *back = xmalloc(len);

	fill_guestlike(data, len, 7);
	compress(data, len, NULL);
	/* Flip one bit in the middle of the compressed data; the content checksum (at worst)
	 * catches it. */
	out.data[out.len / 2] ^= 0x04;
	cr_assert_eq(decompress(out.data, out.len, back, len, &n), -EBADMSG);
	free(data);
	free(back);
}

Test(zstd_stream, truncation_anywhere_is_eproto)
{
	size_t len = 600000, n;
	uint8_t *data = xmalloc(len), *back = xmalloc(len);

	fill_random(data, len, 8);
	compress(data, len, NULL);
	for (size_t cut = 0; cut < out.len; cut += out.len / 97 + 1)
		cr_assert_eq(decompress(out.data, cut, back, len, &n), -EPROTO, "cut at %zu", cut);
	cr_assert_eq(decompress(out.data, out.len - 4, back, len, &n), -EPROTO,
		     "missing LAST chunk");
	cr_assert_eq(decompress(out.data, out.len, back, len, &n), -ENODATA);
	cr_assert_eq(n, len);
	free(data);
	free(back);
}

Test(zstd_stream, bytes_after_the_last_chunk_are_rejected)
{
	uint8_t data[1000], back[1000], *longer;
	size_t n;

	fill_random(data, sizeof(data), 10);
	compress(data, sizeof(data), NULL);
	longer = xmalloc(out.len + 3);
	memcpy(longer, out.data, out.len);
	memcpy(longer + out.len, "xyz", 3);
	cr_assert_eq(decompress(longer, out.len + 3, back, sizeof(back), &n), -EBADMSG);
	free(longer);
}

Test(zstd_stream, rejects_bad_chunk_words)
{
	uint8_t buf[ZSTD_STREAM_HEADER_BYTES + 4 + 8] = { 0 }, back[4];
	size_t n;

	memcpy(buf, ZSTD_STREAM_MAGIC, 4);
	le16_encode(buf + 4, ZSTD_STREAM_FORMAT_VERSION);
	le32_encode(buf + 8, 0);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EBADMSG, "zero word");
	le32_encode(buf + 8, ZSTD_STREAM_MAX_CHUNK + 1);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EMSGSIZE);
	le32_encode(buf + 8, ZSTD_STREAM_CHUNK_LAST | 5);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EBADMSG,
		     "LAST with a length");
}

Test(zstd_stream, refuses_a_window_larger_than_its_memory_bound)
{
	size_t len = 1u << 16, zlen, n;
	uint8_t *data = xmalloc(len), *z = xmalloc(len + 1024), *buf = xmalloc(len + 1100);
	uint8_t back[16];
	ZSTD_CCtx *c = ZSTD_createCCtx();
	ZSTD_inBuffer in = { data, len, 0 }, none = { NULL, 0, 0 };
	ZSTD_outBuffer o = { z, len + 1024, 0 };

	/* A frame that declares a 128 MiB window (size unknown up front, so it stays). */
	fill_random(data, len, 9);
	cr_assert_not_null(c);
	cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 27)));
	cr_assert(!ZSTD_isError(ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue)));
	cr_assert_eq(ZSTD_compressStream2(c, &o, &none, ZSTD_e_end), 0);
	zlen = o.pos;
	ZSTD_freeCCtx(c);
	memcpy(buf, ZSTD_STREAM_MAGIC, 4);
	le16_encode(buf + 4, ZSTD_STREAM_FORMAT_VERSION);
	le16_encode(buf + 6, 0);
	le32_encode(buf + 8, (uint32_t)zlen);
	memcpy(buf + 12, z, zlen);
	le32_encode(buf + 12 + zlen, ZSTD_STREAM_CHUNK_LAST);
	cr_assert_eq(decompress(buf, 16 + zlen, back, sizeof(back), &n), -EBADMSG);
	free(data);
	free(z);
	free(buf);
}

/* An adaptive round trip of data (len bytes, written in 1 MiB pieces, one flush midway). */
static void adaptive_round_trip(const uint8_t *data, size_t len, int workers,
				struct zstd_stream_counts *c)
{
	struct zstd_stream_opts o = { .workers = workers, .no_checksum = true, .adaptive = true };
	uint8_t *back = xmalloc(len);
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(zstd_writer_open(&s, mem, &o), 0);
	for (size_t off = 0; off < len; off += 1u << 20) {
		size_t n = len - off < (1u << 20) ? len - off : 1u << 20;

		cr_assert_eq(stream_write_all(s, data + off, n), 0);
		if (off == len / 2)
			cr_assert_eq(stream_flush(s), 0);
	}
	zstd_writer_counts(s, c);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(le16_decode(out.data + 6), ZSTD_STREAM_F_RAW);
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(zstd_reader_open(&s, mem), 0);
	cr_assert_eq(stream_read_all(s, back, 12345), 0);
	{
		int rc = stream_read_all(s, back + 12345, len - 12345);

		cr_assert_eq(rc, 0, "read back: %d", rc);
	}
	cr_assert_eq(memcmp(back, data, len), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(back);
}

Test(zstd_stream, adaptive_sends_incompressible_data_raw_and_compresses_the_rest)
{
	size_t len = 96u << 20, rnd = 32u << 20;
	uint8_t *data = xmalloc(len);
	struct zstd_stream_counts c;
	int workers[2] = { 0, zstd_stream_workers_supported() ? 1 : 0 };

	fill_random(data, rnd, 7);                 /* 32 MiB that zstd cannot shrink */
	fill_guestlike(data + rnd, len - rnd, 8);  /* then 64 MiB that it can */
	for (int i = 0; i < 2; i++) {
		adaptive_round_trip(data, len, workers[i], &c);
		cr_assert_eq(c.in_bytes, len);
		/*
		 * Probe 4 MiB, 16 MiB raw, probe 4 MiB, 32 MiB raw (the last 8 of them
		 * compressible: the price of backing off), then a probe that pays.
		 */
		cr_assert_geq(c.raw_bytes, ZSTD_STREAM_SKIP_MIN, "raw %" PRIu64, c.raw_bytes);
		cr_assert_leq(c.raw_bytes, rnd + ZSTD_STREAM_SKIP_MAX, "raw %" PRIu64, c.raw_bytes);
		/*
		 * With a worker thread, what a probe has produced when it is judged depends on
		 * how far the worker got, so under load a window that would pay can be taken
		 * for one that does not: only the single-threaded writer's ratio is exact.
		 */
		if (!workers[i])
			cr_assert_lt(out.len, len / 4 * 3, "the compressible part shrank: %zu",
				     out.len);
		else
			cr_assert_lt(out.len, len, "the compressible part shrank: %zu", out.len);
		cr_assert_gt(out.len, c.raw_bytes);
		free(out.data);
		memset(&out, 0, sizeof(out));
	}
	adaptive_round_trip(data + rnd, len - rnd, 0, &c);
	cr_assert_eq(c.raw_bytes, 0, "compressible data is never sent raw");
	cr_assert_lt(out.len, (len - rnd) / 2);
	free(data);
}

Test(zstd_stream, raw_only_sends_every_byte_as_it_is_and_reads_back)
{
	struct zstd_stream_opts o = { .raw_only = true, .workers = 1 };
	size_t len = 5u << 20;
	uint8_t *data = xmalloc(len), *back = xmalloc(len);
	struct zstd_stream_counts c;
	struct stream *mem, *s;

	fill_guestlike(data, len, 9); /* compressible: raw_only must not compress it */
	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(zstd_writer_open(&s, mem, &o), 0);
	cr_assert_eq(stream_write_all(s, data, len / 2), 0);
	cr_assert_eq(stream_flush(s), 0);
	cr_assert_eq(stream_write_all(s, data + len / 2, len - len / 2), 0);
	zstd_writer_counts(s, &c);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(c.in_bytes, len);
	cr_assert_eq(c.raw_bytes, len);
	cr_assert_eq(le16_decode(out.data + 6), ZSTD_STREAM_F_RAW);
	/* Header, the data with a word per MiB chunk, the empty frame's end, LAST. */
	cr_assert_geq(out.len, len + ZSTD_STREAM_HEADER_BYTES);
	cr_assert_lt(out.len, len + 256, "out %zu", out.len);
	cr_assert_eq(mem_stream_reader(&mem, out.data, out.len), 0);
	cr_assert_eq(zstd_reader_open(&s, mem), 0);
	cr_assert_eq(stream_read_all(s, back, len), 0);
	cr_assert_eq(memcmp(back, data, len), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(data);
	free(back);
}

Test(zstd_stream, raw_chunks_need_the_header_flag_and_a_valid_length)
{
	uint8_t buf[ZSTD_STREAM_HEADER_BYTES + 4 + 8] = { 0 }, back[8];
	size_t n;

	memcpy(buf, ZSTD_STREAM_MAGIC, 4);
	le16_encode(buf + 4, ZSTD_STREAM_FORMAT_VERSION);
	le32_encode(buf + 8, ZSTD_STREAM_CHUNK_RAW | 8);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EMSGSIZE,
		     "RAW without the header flag");
	le16_encode(buf + 6, ZSTD_STREAM_F_RAW);
	memcpy(buf + 12, "rawbytes", 8);
	/* A RAW chunk alone decodes, but a stream must end with LAST after a whole frame. */
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EPROTO);
	cr_assert_eq(n, 8);
	cr_assert_eq(memcmp(back, "rawbytes", 8), 0);
	le32_encode(buf + 8, ZSTD_STREAM_CHUNK_RAW | 0);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EBADMSG, "empty RAW");
	le32_encode(buf + 8, ZSTD_STREAM_CHUNK_RAW | (ZSTD_STREAM_MAX_CHUNK + 1));
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EMSGSIZE);
	le32_encode(buf + 8, ZSTD_STREAM_CHUNK_RAW | 9);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EPROTO, "cut RAW");
	le16_encode(buf + 6, 2);
	cr_assert_eq(decompress(buf, sizeof(buf), back, sizeof(back), &n), -EPROTONOSUPPORT);
}

Test(zstd_stream, no_checksum_leaves_out_zstds_content_checksum)
{
	struct zstd_stream_opts o = { .no_checksum = true };
	size_t len = 1u << 20, with, without;
	uint8_t *data = xmalloc(len);

	fill_guestlike(data, len, 9);
	compress(data, len, NULL);
	with = out.len;
	free(out.data);
	memset(&out, 0, sizeof(out));
	round_trip(data, len, &o);
	compress(data, len, &o);
	without = out.len;
	cr_assert_eq(with - without, 4, "XXH64's 4 bytes: %zu against %zu", with, without);
	free(data);
}
