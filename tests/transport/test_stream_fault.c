/* Tests for the fault-injecting stream and for how layers carry its errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "helpers.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"
#include "transport/stream_fault.h"
#include "transport/zstd_stream.h"

static struct mem_buf out;
static uint8_t data[4096];

static void setup(void)
{
	memset(&out, 0, sizeof(out));
	fill_random(data, sizeof(data), 7);
}

static void teardown(void)
{
	free(out.data);
}

TestSuite(stream_fault, .init = setup, .fini = teardown);

static struct stream *fault_writer(const struct fault_spec *spec)
{
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_writer(&mem, &out, MEM_STREAM_UNLIMITED), 0);
	cr_assert_eq(fault_stream_open(&s, mem, spec), 0);
	return s;
}

static struct stream *fault_reader(const void *buf, size_t len, const struct fault_spec *spec)
{
	struct stream *mem, *s;

	cr_assert_eq(mem_stream_reader(&mem, buf, len), 0);
	cr_assert_eq(fault_stream_open(&s, mem, spec), 0);
	return s;
}

Test(stream_fault, write_fails_after_n_bytes_with_the_prefix_passed_down)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;

	spec.write_fail_after = 10;
	s = fault_writer(&spec);
	cr_assert_eq(stream_write_all(s, data, 6), 0);
	cr_assert_eq(stream_write_all(s, data + 6, 6), -EIO);
	cr_assert_eq(stream_write_all(s, data, 1), -EIO);
	cr_assert_eq(stream_close(s, false), -EIO);
}

Test(stream_fault, no_fault_passes_everything_through)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;

	s = fault_writer(&spec);
	cr_assert_eq(stream_write_all(s, data, sizeof(data)), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(out.len, sizeof(data));
	cr_assert_eq(memcmp(out.data, data, sizeof(data)), 0);
}

Test(stream_fault, read_eof_after_n_is_enodata_on_the_boundary)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;
	uint8_t buf[16];

	spec.read_eof_after = 8;
	s = fault_reader(data, sizeof(data), &spec);
	cr_assert_eq(stream_read_all(s, buf, 8), 0);
	cr_assert_eq(memcmp(buf, data, 8), 0);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(stream_fault, read_eof_inside_a_request_is_eproto)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;
	uint8_t buf[16];

	spec.read_eof_after = 8;
	s = fault_reader(data, sizeof(data), &spec);
	cr_assert_eq(stream_read_all(s, buf, 5), 0);
	cr_assert_eq(stream_read_all(s, buf, 5), -EPROTO);
	cr_assert_eq(stream_read_all(s, buf, 1), -EPROTO, "truncation is sticky");
	cr_assert_eq(stream_close(s, false), -EPROTO);
}

Test(stream_fault, read_fails_after_n_bytes_with_the_given_errno)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;
	uint8_t buf[16];

	spec.read_fail_after = 4;
	spec.read_errno = ECONNRESET;
	s = fault_reader(data, sizeof(data), &spec);
	cr_assert_eq(stream_read_all(s, buf, 4), 0);
	cr_assert_eq(stream_read_all(s, buf, 4), -ECONNRESET);
	cr_assert_eq(stream_close(s, false), -ECONNRESET);
}

Test(stream_fault, split_reads_still_deliver_exact_lengths)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;
	uint8_t buf[sizeof(data)];

	spec.read_chunk_bytes = 3;
	s = fault_reader(data, sizeof(data), &spec);
	cr_assert_eq(stream_read_all(s, buf, 1000), 0);
	cr_assert_eq(stream_read_all(s, buf + 1000, sizeof(data) - 1000), 0);
	cr_assert_eq(memcmp(buf, data, sizeof(data)), 0);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(stream_fault, flush_and_close_failures_are_reported_and_nothing_published)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *s;

	spec.close_errno = EIO;
	s = fault_writer(&spec);
	cr_assert_eq(stream_write_all(s, data, 10), 0);
	cr_assert_eq(stream_close(s, true), -EIO);
	cr_assert_null(out.data);

	spec = FAULT_SPEC_NONE;
	spec.flush_errno = ENOSPC;
	s = fault_writer(&spec);
	cr_assert_eq(stream_flush(s), -ENOSPC);
	cr_assert_eq(stream_write_all(s, data, 1), -ENOSPC, "a failed flush is sticky");
	cr_assert_eq(stream_close(s, true), -ENOSPC);
	cr_assert_null(out.data);
}

/* Every later call on the top of a stack returns the first error from the bottom. */
Test(stream_fault, error_under_a_layer_stack_is_sticky_at_the_top)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *f, *z, *top;
	int rc = 0;

	spec.write_fail_after = 300;
	spec.write_errno = ENOSPC;
	f = fault_writer(&spec);
	cr_assert_eq(zstd_writer_open(&z, f, NULL), 0);
	cr_assert_eq(frame_writer_open(&top, z), 0);
	for (int i = 0; i < 20 && rc == 0; i++) {
		rc = frame_write(top, 1, 0, data, sizeof(data));
		if (rc == 0)
			rc = stream_flush(top);
	}
	cr_assert_eq(rc, -ENOSPC);
	cr_assert_eq(frame_write(top, 1, 0, data, 10), -ENOSPC);
	cr_assert_eq(stream_flush(top), -ENOSPC);
	cr_assert_eq(stream_close(top, true), -ENOSPC);
	cr_assert_null(out.data, "nothing is published after a failure");
}

Test(stream_fault, abandoning_a_healthy_stack_publishes_nothing)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *f, *z, *top;

	f = fault_writer(&spec);
	cr_assert_eq(zstd_writer_open(&z, f, NULL), 0);
	cr_assert_eq(frame_writer_open(&top, z), 0);
	cr_assert_eq(frame_write(top, 1, 0, data, sizeof(data)), 0);
	cr_assert_eq(stream_close(top, false), 0);
	cr_assert_null(out.data);
}
