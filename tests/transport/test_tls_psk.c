/* Tests for the PSK file loader: both formats, and a clear refusal for each bad file. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/tls_psk.h"

static char dir[64], path[128], err[256];

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/psk", dir);
	err[0] = '\0';
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(tls_psk, .init = setup, .fini = teardown);

static void put(const void *buf, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	write_fd_all(fd, buf, len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static const char hex64[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";

Test(tls_psk, hex_and_raw_files_of_the_same_secret_give_the_same_key)
{
	struct tls_psk a, b, c;
	uint8_t raw[32];
	char text[80];

	for (int i = 0; i < 32; i++)
		sscanf(hex64 + 2 * i, "%2hhx", &raw[i]);
	snprintf(text, sizeof(text), "%s\n", hex64);
	put(text, strlen(text), 0600);
	cr_assert_eq(tls_psk_load(&a, path, err, sizeof(err)), 0, "%s", err);
	put(raw, sizeof(raw), 0400);
	cr_assert_eq(tls_psk_load(&b, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(tls_psk_from_secret(&c, raw, sizeof(raw)), 0);
	cr_assert_eq(memcmp(a.key, b.key, TLS_PSK_BYTES), 0);
	cr_assert_eq(memcmp(a.key, c.key, TLS_PSK_BYTES), 0);
	cr_assert_neq(memcmp(a.key, raw, 32), 0, "the TLS key is derived, not the file bytes");
	snprintf(text, sizeof(text), "%s\r\n", hex64);
	put(text, strlen(text), 0600);
	cr_assert_eq(tls_psk_load(&b, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(memcmp(a.key, b.key, TLS_PSK_BYTES), 0);
	put(hex64, 64, 0600);
	cr_assert_eq(tls_psk_load(&b, path, err, sizeof(err)), 0, "no newline is fine: %s", err);
}

Test(tls_psk, sixty_four_byte_secrets_are_accepted)
{
	uint8_t raw[64];
	struct tls_psk k;
	char text[200];

	fill_random(raw, sizeof(raw), 4);
	raw[0] = 0xff; /* surely not hex text */
	put(raw, sizeof(raw), 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), 0, "%s", err);
	snprintf(text, sizeof(text), "%s%s\n", hex64, hex64);
	put(text, strlen(text), 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), 0, "%s", err);
}

Test(tls_psk, missing_file_is_enoent_with_the_path_in_the_message)
{
	struct tls_psk k;

	cr_assert_eq(tls_psk_load(&k, "/nonexistent/psk", err, sizeof(err)), -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/psk"), "%s", err);
}

Test(tls_psk, file_readable_by_others_is_refused)
{
	struct tls_psk k;

	put(hex64, 64, 0644);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EPERM);
	cr_assert_not_null(strstr(err, "chmod 600"), "%s", err);
}

Test(tls_psk, mangled_hex_is_refused_not_taken_as_raw)
{
	struct tls_psk k;
	char text[80];

	/* 63 digits plus a newline is 64 bytes, a valid raw size: must still be refused. */
	snprintf(text, sizeof(text), "%.63s\n", hex64);
	put(text, strlen(text), 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "63 digits"), "%s", err);
	snprintf(text, sizeof(text), "%.30s %.33s\n", hex64, hex64 + 30);
	put(text, strlen(text), 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "non-hex"), "%s", err);
}

Test(tls_psk, short_long_empty_and_flat_keys_are_refused)
{
	uint8_t raw[300];
	struct tls_psk k;

	memset(raw, 0xfe, sizeof(raw));
	raw[0] = 0x01;
	put(raw, 31, 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "31 bytes"), "%s", err);
	put(raw, 65, 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	put(raw, 300, 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "too large"), "%s", err);
	put("", 0, 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	put("0000000000000000000000000000000000000000000000000000000000000000\n", 65, 0600);
	cr_assert_eq(tls_psk_load(&k, path, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "all equal"), "%s", err);
}

Test(tls_psk, directories_are_refused)
{
	struct tls_psk k;

	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(tls_psk_load(&k, dir, err, sizeof(err)), -EINVAL);
	cr_assert_not_null(strstr(err, "not a regular file"), "%s", err);
}
