/* Tests for HKDF-SHA256 (transport/kdf.c): RFC 5869's vectors, and labels that separate keys. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "transport/kdf.h"

static uint8_t ikm[22];

static void setup(void)
{
	memset(ikm, 0x0b, sizeof(ikm));
}

TestSuite(kdf, .init = setup);

static void unhex(uint8_t *out, const char *hex)
{
	for (size_t i = 0; hex[2 * i]; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

Test(kdf, matches_rfc5869_case_1_with_salt_and_info)
{
	uint8_t salt[13], info[10], okm[42], want[42];

	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	for (int i = 0; i < 10; i++)
		info[i] = (uint8_t)(0xf0 + i);
	cr_assert_eq(kdf_hkdf_sha256(okm, 42, ikm, 22, salt, 13, info, 10), 0);
	unhex(want, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
		    "34007208d5b887185865");
	cr_assert_eq(memcmp(okm, want, 42), 0, "RFC 5869 A.1");
}

Test(kdf, matches_rfc5869_case_3_without_salt_or_info)
{
	uint8_t okm[42], want[42];

	cr_assert_eq(kdf_hkdf_sha256(okm, 42, ikm, 22, NULL, 0, "", 0), 0);
	unhex(want, "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
		    "9d201395faa4b61a96c8");
	cr_assert_eq(memcmp(okm, want, 42), 0, "RFC 5869 A.3");
}

Test(kdf, labels_separate_keys_and_the_same_label_repeats)
{
	uint8_t master[32], a[32], b[32];

	fill_random(master, sizeof(master), 1);
	cr_assert_eq(kdf_hkdf_sha256(a, 32, master, 32, NULL, 0, "backup", 6), 0);
	cr_assert_eq(kdf_hkdf_sha256(b, 32, master, 32, NULL, 0, "backup", 6), 0);
	cr_assert_eq(memcmp(a, b, 32), 0);
	cr_assert_eq(kdf_hkdf_sha256(b, 32, master, 32, NULL, 0, "migrate", 7), 0);
	cr_assert_neq(memcmp(a, b, 32), 0);
}

Test(kdf, rejects_empty_input_key_and_oversized_output)
{
	uint8_t out[32];

	cr_assert_eq(kdf_hkdf_sha256(out, 32, ikm, 0, NULL, 0, "x", 1), -EINVAL);
	cr_assert_eq(kdf_hkdf_sha256(out, 255 * 32 + 1, ikm, 22, NULL, 0, "x", 1), -EINVAL);
}
