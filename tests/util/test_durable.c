/* Tests for durable publish: the published file is whole, or absent, never partly there. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/durable.h"

static char dir[64];
static int dirfd_;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/gw-util-durable-%d-XXXXXX", (int)getpid());
	cr_assert_not_null(mkdtemp(dir));
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd_, 0);
}

static void teardown(void)
{
	DIR *dp = opendir(dir);
	struct dirent *de;

	while (dp && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd_, de->d_name, 0);
	if (dp)
		closedir(dp);
	close(dirfd_);
	rmdir(dir);
}

TestSuite(durable, .init = setup, .fini = teardown);

/* Names in the directory, and whether any is a leftover partial file. */
static int entries(bool *partial_left)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(dp);
	*partial_left = false;
	while ((de = readdir(dp))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		n++;
		if (strstr(de->d_name, DURABLE_PARTIAL_SUFFIX))
			*partial_left = true;
	}
	closedir(dp);
	return n;
}

static void assert_content(const char *name, const char *want)
{
	char buf[256];
	int fd = openat(dirfd_, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s is absent", name);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	cr_assert_eq(n, (ssize_t)strlen(want));
	cr_assert_eq(memcmp(buf, want, (size_t)n), 0);
}

Test(durable, publishes_the_whole_file_and_leaves_nothing_else)
{
	bool partial;

	cr_assert_eq(durable_publish(dirfd_, "obj", "hello", 5, 0644, 0), 0);
	assert_content("obj", "hello");
	cr_assert_eq(entries(&partial), 1);
	cr_assert_not(partial);
}

Test(durable, replaces_an_existing_name_whole)
{
	cr_assert_eq(durable_publish(dirfd_, "obj", "old", 3, 0644, 0), 0);
	cr_assert_eq(durable_publish(dirfd_, "obj", "newer", 5, 0644, 0), 0);
	assert_content("obj", "newer");
}

Test(durable, noreplace_keeps_the_existing_file)
{
	bool partial;

	cr_assert_eq(durable_publish(dirfd_, "obj", "first", 5, 0644, DURABLE_NOREPLACE), 0);
	cr_assert_eq(durable_publish(dirfd_, "obj", "second", 6, 0644, DURABLE_NOREPLACE),
		     -EEXIST);
	assert_content("obj", "first");
	cr_assert_eq(entries(&partial), 1);
	cr_assert_not(partial, "the refused write's partial file was left behind");
}

Test(durable, a_write_that_fails_midway_leaves_the_name_absent)
{
	static char big[64 << 10];
	struct rlimit lim = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };
	bool partial;

	/* Files may grow to 4 KiB only: the write fails with EFBIG after the first 4 KiB. */
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(durable_publish(dirfd_, "obj", big, sizeof(big), 0644, 0), -EFBIG);
	cr_assert_eq(faccessat(dirfd_, "obj", F_OK, 0), -1, "a partial object became visible");
	cr_assert_eq(entries(&partial), 0, "the partial file was left behind");
}

Test(durable, a_failed_replace_keeps_the_old_file_whole)
{
	static char big[64 << 10];
	struct rlimit lim = { .rlim_cur = 4096, .rlim_max = RLIM_INFINITY };

	cr_assert_eq(durable_publish(dirfd_, "obj", "old", 3, 0644, 0), 0);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(durable_publish(dirfd_, "obj", big, sizeof(big), 0644, 0), -EFBIG);
	assert_content("obj", "old");
}

Test(durable, a_missing_directory_is_enoent_and_creates_nothing)
{
	bool partial;

	cr_assert_eq(durable_publish(dirfd_, "sub/obj", "x", 1, 0644, 0), -ENOENT);
	cr_assert_eq(entries(&partial), 0);
}

Test(durable, exact_mode_ignores_the_umask)
{
	struct stat st;

	umask(0);
	cr_assert_eq(durable_publish(dirfd_, "plain", "k", 1, 0600, 0), 0);
	umask(0177);
	cr_assert_eq(durable_publish(dirfd_, "narrowed", "k", 1, 0644, 0), 0);
	cr_assert_eq(fstatat(dirfd_, "narrowed", &st, 0), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "without DURABLE_EXACT_MODE the umask applies");
	cr_assert_eq(durable_publish(dirfd_, "exact", "k", 1, 0640,
				     DURABLE_EXACT_MODE | DURABLE_NOREPLACE), 0);
	cr_assert_eq(fstatat(dirfd_, "exact", &st, 0), 0);
	cr_assert_eq(st.st_mode & 0777, 0640, "DURABLE_EXACT_MODE overrides the umask");
}

Test(durable, fsyncs_the_directory_of_a_name)
{
	cr_assert_eq(durable_fsync_dir_of(dirfd_, "obj"), 0, "the directory itself");
	cr_assert_eq(durable_fsync_dir_of(AT_FDCWD, "/tmp/x"), 0, "an absolute path");
	cr_assert_eq(durable_fsync_dir_of(dirfd_, "missing/obj"), -ENOENT);
}
