/* Tests for the memory streams: round trip, publish on commit only, limits, peeking. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "transport/mem_stream.h"

static struct mem_buf out;

static void setup(void)
{
	memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
	free(out.data);
}

TestSuite(mem_stream, .init = setup, .fini = teardown);

Test(mem_stream, round_trips_through_writer_and_reader)
{
	uint8_t *data = xmalloc(1 << 20), *back = xmalloc(1 << 20);
	struct stream *s;

	fill_random(data, 1 << 20, 1);
	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	for (size_t off = 0; off < (1 << 20); off += 1000) {
		size_t n = (1 << 20) - off < 1000 ? (1 << 20) - off : 1000;

		cr_assert_eq(stream_write_all(s, data + off, n), 0);
	}
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(out.len, 1 << 20);
	cr_assert_eq(mem_stream_reader(&s, out.data, out.len), 0);
	cr_assert_eq(stream_read_all(s, back, 1 << 20), 0);
	cr_assert_eq(memcmp(back, data, 1 << 20), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(data);
	free(back);
}

Test(mem_stream, abandoned_writer_leaves_destination_empty)
{
	struct stream *s;

	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(stream_write_all(s, "hello", 5), 0);
	cr_assert_eq(stream_close(s, false), 0);
	cr_assert_null(out.data);
	cr_assert_eq(out.len, 0);
}

Test(mem_stream, writer_past_its_limit_fails_with_efbig)
{
	struct stream *s;

	cr_assert_eq(mem_stream_writer(&s, &out, 8), 0);
	cr_assert_eq(stream_write_all(s, "12345678", 8), 0);
	cr_assert_eq(stream_write_all(s, "9", 1), -EFBIG);
	cr_assert_eq(stream_close(s, true), -EFBIG);
	cr_assert_null(out.data);
}

Test(mem_stream, peek_shows_bytes_written_so_far)
{
	const uint8_t *p;
	struct stream *s;
	size_t len;

	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	p = mem_stream_peek(s, &len);
	cr_assert_eq(len, 0);
	cr_assert_eq(stream_write_all(s, "abc", 3), 0);
	p = mem_stream_peek(s, &len);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(p, "abc", 3), 0);
	cr_assert_eq(stream_close(s, true), 0);
}

Test(mem_stream, empty_commit_publishes_zero_bytes)
{
	struct stream *s;

	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(out.len, 0);
}
