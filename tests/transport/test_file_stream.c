/* Tests for file streams: atomic publish on commit, nothing left on abandon, reading back. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/file_stream.h"
#include "transport/stream_fault.h"

static char dir[64], path[128], partial[160];
static uint8_t *data;
#define DATA_BYTES (1500u * 1000)

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/image", dir);
	snprintf(partial, sizeof(partial), "%s.partial", path);
	data = xmalloc(DATA_BYTES);
	fill_random(data, DATA_BYTES, 11);
}

static void teardown(void)
{
	tmpdir_remove(dir);
	free(data);
}

TestSuite(file_stream, .init = setup, .fini = teardown);

static bool exists(const char *p)
{
	return access(p, F_OK) == 0;
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void check_contents(const void *want, size_t len)
{
	uint8_t *back = xmalloc(len + 1);
	struct stream *s;

	cr_assert_eq(file_stream_open(&s, path), 0);
	cr_assert_eq(stream_read_all(s, back, len), 0);
	cr_assert_eq(memcmp(back, want, len), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
	free(back);
}

Test(file_stream, commit_publishes_atomically_and_partial_is_never_the_final_name)
{
	struct stream *s;
	struct stat st;

	cr_assert_eq(file_stream_create(&s, path, 0600), 0);
	for (size_t off = 0; off < DATA_BYTES; off += 7000) {
		size_t n = DATA_BYTES - off < 7000 ? DATA_BYTES - off : 7000;

		cr_assert_eq(stream_write_all(s, data + off, n), 0);
		cr_assert_not(exists(path), "the final name appears only at commit");
	}
	cr_assert_eq(stream_flush(s), 0);
	cr_assert(exists(partial));
	cr_assert_not(exists(path));
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert(exists(path));
	cr_assert_not(exists(partial), "the partial name is gone after commit");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq((size_t)st.st_size, DATA_BYTES);
	check_contents(data, DATA_BYTES);
}

Test(file_stream, existing_file_is_replaced_only_at_commit)
{
	struct stream *s;

	write_file(path, "old");
	cr_assert_eq(file_stream_create(&s, path, 0644), 0);
	cr_assert_eq(stream_write_all(s, data, 5000), 0);
	cr_assert_eq(stream_flush(s), 0);
	check_contents("old", 3);
	cr_assert_eq(stream_close(s, true), 0);
	check_contents(data, 5000);
}

Test(file_stream, abandoned_writer_leaves_no_file_and_the_old_one_intact)
{
	struct stream *s;

	cr_assert_eq(file_stream_create(&s, path, 0600), 0);
	cr_assert_eq(stream_write_all(s, data, 300000), 0);
	cr_assert_eq(stream_close(s, false), 0);
	cr_assert_not(exists(path));
	cr_assert_not(exists(partial));

	write_file(path, "old");
	cr_assert_eq(file_stream_create(&s, path, 0600), 0);
	cr_assert_eq(stream_write_all(s, data, 10), 0);
	cr_assert_eq(stream_close(s, false), 0);
	check_contents("old", 3);
	cr_assert_not(exists(partial));
}

Test(file_stream, failed_stream_above_is_not_published)
{
	struct fault_spec spec = FAULT_SPEC_NONE;
	struct stream *f, *s;

	spec.write_fail_after = 1000;
	cr_assert_eq(file_stream_create(&f, path, 0600), 0);
	cr_assert_eq(fault_stream_open(&s, f, &spec), 0);
	cr_assert_eq(stream_write_all(s, data, 2000), -EIO);
	cr_assert_eq(stream_close(s, true), -EIO);
	cr_assert_not(exists(path));
	cr_assert_not(exists(partial));
}

Test(file_stream, stale_partial_is_overwritten)
{
	struct stream *s;

	write_file(partial, "stale junk from a crash");
	cr_assert_eq(file_stream_create(&s, path, 0600), 0);
	cr_assert_eq(stream_write_all(s, "new", 3), 0);
	cr_assert_eq(stream_close(s, true), 0);
	check_contents("new", 3);
}

Test(file_stream, reader_reports_end_and_truncation)
{
	struct stream *s;
	uint8_t buf[8];

	write_file(path, "12345");
	cr_assert_eq(file_stream_open(&s, path), 0);
	cr_assert_eq(stream_read_all(s, buf, 3), 0);
	cr_assert_eq(stream_read_all(s, buf, 3), -EPROTO);
	cr_assert_eq(stream_close(s, false), -EPROTO);
	cr_assert_eq(file_stream_open(&s, path), 0);
	cr_assert_eq(stream_read_all(s, buf, 5), 0);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_close(s, false), 0);
}

Test(file_stream, missing_files_and_directories_are_enoent)
{
	struct stream *s;
	char p[200];

	snprintf(p, sizeof(p), "%s/nope", dir);
	cr_assert_eq(file_stream_open(&s, p), -ENOENT);
	snprintf(p, sizeof(p), "%s/no/such/dir/image", dir);
	cr_assert_eq(file_stream_create(&s, p, 0600), -ENOENT);
}
