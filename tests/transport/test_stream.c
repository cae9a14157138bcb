/* Tests for the generic stream wrappers: exact length, EOF latching, sticky errors, counters. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "transport/mem_stream.h"
#include "transport/stream.h"
#include "transport/stream_fault.h"

static struct mem_buf out;

static void setup(void)
{
	memset(&out, 0, sizeof(out));
}

static void teardown(void)
{
	free(out.data);
}

TestSuite(stream, .init = setup, .fini = teardown);

Test(stream, write_all_counts_bytes_and_zero_length_is_a_noop)
{
	struct stream *s;

	cr_assert_eq(mem_stream_writer(&s, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(stream_write_all(s, "abc", 3), 0);
	cr_assert_eq(stream_write_all(s, NULL, 0), 0);
	cr_assert_eq(stream_write_all(s, "de", 2), 0);
	cr_assert_eq(s->bytes_written, 5);
	cr_assert_eq(stream_flush(s), 0, "a stream without a flush hook flushes as a no-op");
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(out.len, 5);
	cr_assert_eq(memcmp(out.data, "abcde", 5), 0);
}

Test(stream, read_all_is_exact_and_enodata_at_clean_end_repeats)
{
	struct stream *s;
	char buf[8];

	cr_assert_eq(mem_stream_reader(&s, "0123456789", 10), 0);
	cr_assert_eq(stream_read_all(s, buf, 4), 0);
	cr_assert_eq(memcmp(buf, "0123", 4), 0);
	cr_assert_eq(stream_read_all(s, buf, 6), 0);
	cr_assert_eq(s->bytes_read, 10);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_error(s), 0, "a clean end is not an error");
	cr_assert_eq(stream_close(s, false), 0);
}

Test(stream, read_straddling_the_end_is_eproto_and_sticky)
{
	struct stream *s;
	char buf[8];

	cr_assert_eq(mem_stream_reader(&s, "0123", 4), 0);
	cr_assert_eq(stream_read_all(s, buf, 2), 0);
	cr_assert_eq(stream_read_all(s, buf, 4), -EPROTO);
	cr_assert_eq(stream_error(s), -EPROTO);
	cr_assert_eq(stream_read_all(s, buf, 1), -EPROTO);
	cr_assert_eq(stream_close(s, false), -EPROTO);
}

Test(stream, write_error_is_sticky_and_close_does_not_publish)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *mem, *s;
	char buf[4];

	spec.write_fail_after = 3;
	spec.write_errno = ENOSPC;
	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(fault_stream_open(&s, mem, &spec), 0);
	cr_assert_eq(stream_write_all(s, "ab", 2), 0);
	cr_assert_eq(stream_write_all(s, "cd", 2), -ENOSPC);
	cr_assert_eq(stream_write_all(s, "e", 1), -ENOSPC);
	cr_assert_eq(stream_write_all(s, NULL, 0), -ENOSPC);
	cr_assert_eq(stream_flush(s), -ENOSPC);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENOSPC);
	cr_assert_eq(s->bytes_written, 2);
	cr_assert_eq(stream_close(s, true), -ENOSPC, "close reports the sticky error");
	cr_assert_null(out.data, "a stream with an error is closed as abandoned");
}

Test(stream, writing_a_reader_fails_with_ebadf)
{
	struct stream *s;

	cr_assert_eq(mem_stream_reader(&s, "x", 1), 0);
	cr_assert_eq(stream_write_all(s, "y", 1), -EBADF);
	cr_assert_eq(stream_close(s, false), -EBADF);
}

Test(stream, close_of_null_is_a_noop)
{
	cr_assert_eq(stream_close(NULL, true), 0);
}
