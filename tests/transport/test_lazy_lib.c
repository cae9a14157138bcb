/*
 * Libraries loaded on first use: a library that is missing or lacks a symbol gives a
 * one-line error naming the package to install, every time; one that loads fills every
 * slot with a function that works; and the VMM binary itself does not link libcurl or
 * librsync (the point of loading them lazily).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport/lazy_lib.h"

static const char *(*zversion)(void);
static unsigned long (*zcrc)(unsigned long crc, const unsigned char *buf, unsigned len);

static const char *const z_names[] = { "zlibVersion", "crc32" };
static void **const z_slots[] = { (void **)&zversion, (void **)&zcrc };

Test(lazy_lib, a_present_library_fills_every_slot)
{
	struct lazy_lib l = { .soname = "libz.so.1", .package = "zlib1g", .what = "a test",
			      .names = z_names, .slots = z_slots, .n = 2,
			      .lock = PTHREAD_MUTEX_INITIALIZER };
	char err[300] = "";

	cr_assert_eq(lazy_lib_load(&l, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(zversion);
	cr_assert_eq(zversion()[0], '1');
	/* zlib's CRC-32 of "123456789" is the standard check value. */
	cr_assert_eq(zcrc(0, (const unsigned char *)"123456789", 9), 0xcbf43926ul);
	cr_assert_eq(lazy_lib_load(&l, err, sizeof(err)), 0);
}

Test(lazy_lib, a_missing_library_names_the_package_every_time)
{
	static void *slot;
	static const char *const names[] = { "nothing" };
	static void **const slots[] = { &slot };
	struct lazy_lib l = { .soname = "libgodwit-absent.so.9", .package = "godwit-absent",
			      .what = "the feature", .names = names, .slots = slots, .n = 1,
			      .lock = PTHREAD_MUTEX_INITIALIZER };
	char err[300] = "";

	for (int i = 0; i < 2; i++) {
		cr_assert_eq(lazy_lib_load(&l, err, sizeof(err)), -ENOENT);
		cr_assert(strstr(err, "the feature needs libgodwit-absent.so.9"), "%s", err);
		cr_assert(strstr(err, "apt-get install godwit-absent"), "%s", err);
		cr_assert_null(strchr(err, '\n'));
	}
	cr_assert_null(slot);
}

Test(lazy_lib, a_missing_symbol_fails_and_leaves_no_slot_set)
{
	static void *a, *b;
	static const char *const names[] = { "zlibVersion", "godwit_no_such_function" };
	static void **const slots[] = { &a, &b };
	struct lazy_lib l = { .soname = "libz.so.1", .package = "zlib1g", .what = "a test",
			      .names = names, .slots = slots, .n = 2,
			      .lock = PTHREAD_MUTEX_INITIALIZER };
	char err[300] = "";

	cr_assert_eq(lazy_lib_load(&l, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "no symbol godwit_no_such_function"), "%s", err);
	cr_assert_null(a);
	cr_assert_null(b);
}

Test(lazy_lib, the_godwit_binary_does_not_link_curl_or_rsync)
{
	char cmd[600], line[512];
	int found = 0, lines = 0;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ldd '%s' 2>&1", GODWIT_BIN);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		if (strstr(line, "libcurl") || strstr(line, "librsync"))
			found++;
	}
	pclose(f);
	cr_assert_gt(lines, 2, "no ldd output for %s", GODWIT_BIN);
	cr_assert_eq(found, 0, "godwit links libcurl or librsync at start");
}
