/* Tests for the directory backend: write-once atomic puts, ranges, listing without partials, names. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "helpers.h"
#include "repo/backend.h"

static char dir[64];
static struct backend *be;

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	cr_assert_eq(backend_dir_open(&be, dir), 0);
}

static void teardown(void)
{
	backend_close(be);
	tmpdir_remove(dir);
}

TestSuite(backend_dir, .init = setup, .fini = teardown);

Test(backend_dir, put_then_get_round_trips_whole_and_ranges)
{
	uint8_t data[5000], back[5000], *all;
	uint64_t size;
	size_t len;

	fill_random(data, sizeof(data), 1);
	cr_assert_eq(backend_put(be, "data/ab/abcdef", data, sizeof(data)), 0);
	cr_assert_eq(backend_stat(be, "data/ab/abcdef", &size), 0);
	cr_assert_eq(size, sizeof(data));
	cr_assert_eq(backend_get_all(be, "data/ab/abcdef", 1 << 20, &all, &len), 0);
	cr_assert_eq(len, sizeof(data));
	cr_assert_eq(memcmp(all, data, len), 0);
	free(all);
	cr_assert_eq(backend_get(be, "data/ab/abcdef", 1000, back, 333), 0);
	cr_assert_eq(memcmp(back, data + 1000, 333), 0);
	cr_assert_eq(backend_get(be, "data/ab/abcdef", 4999, back, 1), 0);
	cr_assert_eq(back[0], data[4999]);
}

Test(backend_dir, put_is_write_once)
{
	uint8_t *all;
	size_t len;

	cr_assert_eq(backend_put(be, "config", "one", 3), 0);
	cr_assert_eq(backend_put(be, "config", "two!", 4), -EEXIST);
	cr_assert_eq(backend_get_all(be, "config", 100, &all, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(all, "one", 3), 0);
	free(all);
}

Test(backend_dir, range_past_the_end_is_truncation)
{
	uint8_t buf[16];

	cr_assert_eq(backend_put(be, "x", "0123456789", 10), 0);
	cr_assert_eq(backend_get(be, "x", 5, buf, 6), -EPROTO);
	cr_assert_eq(backend_get(be, "x", 11, buf, 1), -EPROTO);
	cr_assert_eq(backend_get(be, "x", UINT64_MAX - 2, buf, 8), -EPROTO);
}

Test(backend_dir, missing_objects_are_enoent)
{
	uint8_t buf[4], *all;
	uint64_t size;
	size_t len;

	cr_assert_eq(backend_get(be, "nope", 0, buf, 4), -ENOENT);
	cr_assert_eq(backend_get_all(be, "nope", 10, &all, &len), -ENOENT);
	cr_assert_eq(backend_stat(be, "nope", &size), -ENOENT);
	cr_assert_eq(backend_remove(be, "nope"), -ENOENT);
}

Test(backend_dir, get_all_respects_the_limit)
{
	uint8_t *all;
	size_t len;

	cr_assert_eq(backend_put(be, "big", "0123456789", 10), 0);
	cr_assert_eq(backend_get_all(be, "big", 9, &all, &len), -EMSGSIZE);
	cr_assert_eq(backend_get_all(be, "big", 10, &all, &len), 0);
	free(all);
}

struct seen {
	char names[16][128];
	uint64_t sizes[16];
	unsigned n;
};

static int collect(void *arg, const char *name, uint64_t bytes)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 16);
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
	s->sizes[s->n++] = bytes;
	return 0;
}

static bool seen_has(const struct seen *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (strcmp(s->names[i], name) == 0)
			return true;
	return false;
}

Test(backend_dir, list_by_prefix_skips_partial_files)
{
	struct seen s = { 0 };
	char path[256];

	cr_assert_eq(backend_put(be, "data/00/00aa", "a", 1), 0);
	cr_assert_eq(backend_put(be, "data/ff/ffbb", "bb", 2), 0);
	cr_assert_eq(backend_put(be, "index/i1", "ccc", 3), 0);
	cr_assert_eq(backend_put(be, "snapshots/s1", "dddd", 4), 0);
	/* What a crash mid-put leaves behind. */
	snprintf(path, sizeof(path), "%s/data/00/00cc.1234abcd.partial", dir);
	file_write(path, "half", 4);
	snprintf(path, sizeof(path), "%s/snapshots/s2.partial", dir);
	file_write(path, "half", 4);

	cr_assert_eq(backend_list(be, "data/", collect, &s), 0);
	cr_assert_eq(s.n, 2);
	cr_assert(seen_has(&s, "data/00/00aa"));
	cr_assert(seen_has(&s, "data/ff/ffbb"));
	memset(&s, 0, sizeof(s));
	cr_assert_eq(backend_list(be, "snapshots/", collect, &s), 0);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.names[0], "snapshots/s1");
	cr_assert_eq(s.sizes[0], 4);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(backend_list(be, "", collect, &s), 0);
	cr_assert_eq(s.n, 4);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(backend_list(be, "locks/", collect, &s), 0); /* no such directory */
	cr_assert_eq(s.n, 0);
}

Test(backend_dir, put_leaves_no_partial_file)
{
	struct seen s = { 0 };
	char path[256];

	cr_assert_eq(backend_put(be, "index/abc", "x", 1), 0);
	snprintf(path, sizeof(path), "%s/index", dir);
	cr_assert_eq(count_objects(dir, "index"), 1);
	cr_assert_eq(backend_list(be, "index/", collect, &s), 0);
	cr_assert_eq(s.n, 1);
}

Test(backend_dir, remove_deletes)
{
	uint64_t size;

	cr_assert_eq(backend_put(be, "locks/l1", "x", 1), 0);
	cr_assert_eq(backend_remove(be, "locks/l1"), 0);
	cr_assert_eq(backend_stat(be, "locks/l1", &size), -ENOENT);
}

Test(backend_dir, rejects_bad_names)
{
	static const char *const bad[] = {
		"", "/abs", "a//b", "a/", "../x", "a/../b", ".", "a/./b", "x.partial",
		"sp ace", "new\nline", "ü",
	};
	uint8_t buf[1];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_not(backend_name_ok(bad[i]), "accepted '%s'", bad[i]);
		cr_assert_eq(backend_put(be, bad[i], "x", 1), -EINVAL);
		cr_assert_eq(backend_get(be, bad[i], 0, buf, 1), -EINVAL);
	}
	cr_assert(backend_name_ok("data/3f/3f9a-x_y.z"));
}

Test(backend_dir, opening_a_missing_directory_fails)
{
	struct backend *b2;
	char path[128];

	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(backend_dir_open(&b2, path), -ENOENT);
}

static int collect_aged(void *arg, const char *name, uint64_t bytes, int64_t age_s)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 512 - n, "%s:%llu:%s ", name, (unsigned long long)bytes,
		 age_s >= 3600 ? "old" : age_s >= 0 ? "new" : "unknown");
	return 0;
}

Test(backend_dir, list_aged_gives_each_objects_age_and_leftovers_finds_old_partials)
{
	char path[256], seen[512] = "";
	struct timespec old[2] = { { .tv_sec = time(NULL) - 7200 }, { .tv_sec = time(NULL) - 7200 } };

	cr_assert_eq(backend_put(be, "data/ab/abcd", "xy", 2), 0);
	cr_assert_eq(backend_put(be, "data/cd/cdef", "xyz", 3), 0);
	snprintf(path, sizeof(path), "%s/data/ab/abcd", dir);
	cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	cr_assert_eq(backend_list_aged(be, "data/ab/", collect_aged, seen), 0);
	cr_assert_str_eq(seen, "data/ab/abcd:2:old ");
	/* A killed writer's partial files: an old one goes, a fresh one (a put in flight) stays. */
	snprintf(path, sizeof(path), "%s/data/ab/abcd.1234abcd.partial", dir);
	file_write(path, "partial", 7);
	cr_assert_eq(utimensat(AT_FDCWD, path, old, 0), 0);
	snprintf(path, sizeof(path), "%s/index", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/index/ffff.00000001.partial", dir);
	file_write(path, "fresh", 5);
	seen[0] = '\0';
	cr_assert_eq(backend_leftovers(be, 3600, false, collect_aged, seen), 0);
	cr_assert_str_eq(seen, "data/ab/abcd.1234abcd.partial:7:old ");
	snprintf(path, sizeof(path), "%s/data/ab/abcd.1234abcd.partial", dir);
	cr_assert(file_exists(path), "a dry run removed it");
	cr_assert_eq(backend_leftovers(be, 3600, true, NULL, NULL), 0);
	cr_assert_not(file_exists(path));
	snprintf(path, sizeof(path), "%s/index/ffff.00000001.partial", dir);
	cr_assert(file_exists(path), "a fresh partial file was removed");
}
