/* Tests for util/byteorder.h: little-endian layout, round trips, and the big-endian reader. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "util/byteorder.h"

TestSuite(byteorder);

Test(byteorder, integers_encode_little_endian_and_round_trip)
{
	uint8_t b[8];

	le16_encode(b, 0x1234);
	cr_assert(b[0] == 0x34 && b[1] == 0x12);
	cr_assert_eq(le16_decode(b), 0x1234);
	le32_encode(b, 0x89abcdefu);
	cr_assert(b[0] == 0xef && b[3] == 0x89);
	cr_assert_eq(le32_decode(b), 0x89abcdefu);
	le64_encode(b, 0x0123456789abcdefull);
	cr_assert(b[0] == 0xef && b[7] == 0x01);
	cr_assert_eq(le64_decode(b), 0x0123456789abcdefull);
}

Test(byteorder, be32_reads_most_significant_byte_first)
{
	const uint8_t b[4] = { 0x72, 0x73, 0x01, 0x36 };

	cr_assert_eq(be32_decode(b), 0x72730136u);
}
