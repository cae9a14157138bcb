/* Tests for repository key files: write and load, strict permissions and format, no overwrite, derivation. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "repo/repo_key.h"

static char dir[64], path[128], err[512];
static struct repo_key key;

static void setup(void)
{
	tmpdir_make(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/repo.key", dir);
	cr_assert_eq(repo_key_generate(&key), 0);
	err[0] = '\0';
}

static void teardown(void)
{
	tmpdir_remove(dir);
}

TestSuite(repo_key, .init = setup, .fini = teardown);

/* Write text as the key file with mode (text, len, mode). */
static void put(const void *text, size_t len, mode_t mode)
{
	unlink(path);
	file_write(path, text, len);
	cr_assert_eq(chmod(path, mode), 0);
}

static int load(struct repo_key *out)
{
	int rc = repo_key_load(out, path, err, sizeof(err));

	if (rc < 0)
		cr_assert(strstr(err, path), "the message names the file: %s", err);
	return rc;
}

Test(repo_key, writes_hex_with_mode_0600_and_loads_it_back)
{
	struct repo_key back;
	struct stat st;
	uint8_t *text;
	size_t n;

	cr_assert_eq(repo_key_write(&key, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	text = file_read(path, &n);
	cr_assert_eq(n, 65);
	cr_assert_eq(text[64], '\n');
	for (int i = 0; i < 64; i++)
		cr_assert(strchr("0123456789abcdef", text[i]), "hex digit at %d", i);
	free(text);
	cr_assert_eq(load(&back), 0, "%s", err);
	cr_assert_eq(memcmp(back.b, key.b, REPO_KEY_BYTES), 0);
}

Test(repo_key, never_overwrites_an_existing_file)
{
	struct repo_key other;
	uint8_t *text;
	size_t n;

	put("precious\n", 9, 0600);
	cr_assert_eq(repo_key_write(&key, path, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "refusing to overwrite"), "%s", err);
	text = file_read(path, &n);
	cr_assert_eq(n, 9);
	cr_assert_eq(memcmp(text, "precious\n", 9), 0);
	free(text);
	/* A symlink is not followed either, dangling or not. */
	unlink(path);
	cr_assert_eq(symlink("/nonexistent/target", path), 0);
	cr_assert_eq(repo_key_write(&key, path, err, sizeof(err)), -EEXIST);
	cr_assert_eq(repo_key_generate(&other), 0);
	cr_assert_neq(memcmp(other.b, key.b, REPO_KEY_BYTES), 0, "two keys are not the same");
}

Test(repo_key, refuses_a_file_others_can_read)
{
	struct repo_key back;

	cr_assert_eq(repo_key_write(&key, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(load(&back), -EPERM);
	cr_assert(strstr(err, "chmod 600"), "%s", err);
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(load(&back), 0, "%s", err);
}

Test(repo_key, accepts_uppercase_hex_crlf_and_raw_bytes)
{
	static const char hex[] =
		"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\r\n";
	uint8_t raw[32];
	struct repo_key back;

	put(hex, strlen(hex), 0600);
	cr_assert_eq(load(&back), 0, "%s", err);
	cr_assert_eq(back.b[0], 0x00);
	cr_assert_eq(back.b[10], 0xaa);
	cr_assert_eq(back.b[31], 0xff);
	fill_random(raw, sizeof(raw), 9);
	raw[0] = 0xff; /* certainly not text */
	put(raw, sizeof(raw), 0600);
	cr_assert_eq(load(&back), 0, "%s", err);
	cr_assert_eq(memcmp(back.b, raw, 32), 0);
}

Test(repo_key, rejects_bad_hex_wrong_lengths_and_flat_keys)
{
	static const char bad_digit[] =
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeegg\n";
	static const char short_hex[] = "00112233445566778899aabbccddeeff\n";
	static const char flat[] =
		"4141414141414141414141414141414141414141414141414141414141414141\n";
	uint8_t raw[33];
	struct repo_key back;

	put(bad_digit, strlen(bad_digit), 0600);
	cr_assert_eq(load(&back), -EINVAL);
	put(short_hex, strlen(short_hex), 0600);
	cr_assert_eq(load(&back), -EINVAL);
	cr_assert(strstr(err, "64 hex digits"), "%s", err);
	put(flat, strlen(flat), 0600);
	cr_assert_eq(load(&back), -EINVAL);
	cr_assert(strstr(err, "all equal"), "%s", err);
	fill_random(raw, sizeof(raw), 4);
	raw[0] = 0xff;
	put(raw, sizeof(raw), 0600); /* 33 raw bytes */
	cr_assert_eq(load(&back), -EINVAL);
	put("", 0, 0600);
	cr_assert_eq(load(&back), -EINVAL);
	cr_assert_eq(repo_key_load(&back, dir, err, sizeof(err)), -EINVAL, "a directory");
	unlink(path);
	cr_assert_eq(load(&back), -ENOENT);
}

Test(repo_key, derivation_separates_labels_and_salts)
{
	uint8_t salt[REPO_KEY_SALT_BYTES] = { 1 }, salt2[REPO_KEY_SALT_BYTES] = { 2 };
	uint8_t a[32], b[32], c[32], d[32];

	cr_assert_eq(repo_key_derive(&key, salt, REPO_KDF_ID_LABEL, a), 0);
	cr_assert_eq(repo_key_derive(&key, salt, REPO_KDF_DATA_LABEL, b), 0);
	cr_assert_eq(repo_key_derive(&key, salt2, REPO_KDF_ID_LABEL, c), 0);
	cr_assert_eq(repo_key_derive(&key, salt, REPO_KDF_ID_LABEL, d), 0);
	cr_assert_neq(memcmp(a, b, 32), 0);
	cr_assert_neq(memcmp(a, c, 32), 0);
	cr_assert_eq(memcmp(a, d, 32), 0, "deterministic");
}
