/* Tests for CRC32C: known answers, chaining, and the hardware path matching the table. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "util/crc32c.h"
#include "util/crc32c_priv.h"

TestSuite(crc32c);

Test(crc32c, matches_the_standard_check_value)
{
	cr_assert_eq(crc32c(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(crc32c_portable(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(crc32c(0, "", 0), 0);
}

Test(crc32c, matches_rfc3720_vectors)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof(buf));
	cr_assert_eq(crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	cr_assert_eq(crc32c(0, buf, 32), 0x46dd794eu);
}

Test(crc32c, chained_calls_equal_one_call_and_paths_agree)
{
	uint8_t *buf = malloc(100000);
	uint32_t whole;

	cr_assert_not_null(buf);

	/* Deterministic, well-mixed bytes (multiplicative hash of the index). */
	for (uint32_t i = 0; i < 100000; i++)
		buf[i] = (uint8_t)((i * 2654435761u) >> 24);
	whole = crc32c(0, buf, 100000);
	cr_assert_eq(crc32c_portable(0, buf, 100000), whole);
	/* Odd splits exercise the unaligned head and tail of the 8-byte loop. */
	for (size_t split = 0; split < 20; split++) {
		uint32_t c = crc32c(0, buf + 1, split);

		c = crc32c(c, buf + 1 + split, 99999 - split);
		cr_assert_eq(c, crc32c_portable(0, buf + 1, 99999));
	}
	free(buf);
}
