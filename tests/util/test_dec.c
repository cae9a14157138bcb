/* Tests for the checked decoder: the reads, and each of its error rules. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "util/dec.h"

TestSuite(dec);

static const uint8_t bytes[15] = {
	0x01,                                           /* u8 */
	0x34, 0x12,                                     /* u16 */
	0xef, 0xcd, 0xab, 0x89,                         /* u32 */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* u64 */
};

Test(dec, reads_little_endian_integers_in_order)
{
	struct dec d = dec_init(bytes, sizeof(bytes));
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t e;

	cr_assert(dec_u8(&d, &a) && dec_u16(&d, &b) && dec_u32(&d, &c) && dec_u64(&d, &e));
	cr_assert_eq(a, 0x01);
	cr_assert_eq(b, 0x1234);
	cr_assert_eq(c, 0x89abcdefu);
	cr_assert_eq(e, 0x0102030405060708ull);
	cr_assert(dec_done(&d));
	cr_assert_eq(dec_left(&d), 0);
}

Test(dec, take_returns_bytes_in_place_and_advances)
{
	struct dec d = dec_init(bytes, sizeof(bytes));
	const uint8_t *p = dec_take(&d, 3);

	cr_assert_eq(p, bytes);
	cr_assert_eq(d.off, 3);
	cr_assert_eq(dec_left(&d), sizeof(bytes) - 3);
	cr_assert_not(dec_done(&d), "bytes remain");
}

Test(dec, a_read_past_the_end_fails_yields_zero_and_keeps_the_cursor)
{
	struct dec d = dec_init(bytes, 3);
	uint32_t v = 0xdeadbeef;
	uint8_t out[4] = { 1, 2, 3, 4 };

	cr_assert_not(dec_u32(&d, &v));
	cr_assert_eq(v, 0, "a failed read yields zero");
	cr_assert_eq(d.err, -EBADMSG);
	cr_assert_eq(d.off, 0, "the cursor stays where it was");

	d = dec_init(bytes, 3);
	cr_assert_not(dec_bytes(&d, out, sizeof(out)));
	cr_assert_eq(memcmp(out, "\0\0\0\0", 4), 0, "a failed copy zero-fills");
	cr_assert_null((d = dec_init(bytes, 3), dec_take(&d, 4)));
}

Test(dec, the_error_is_sticky)
{
	struct dec d = dec_init(bytes, sizeof(bytes));
	uint64_t big;
	uint8_t small = 0xff;

	dec_take(&d, 10);
	cr_assert_not(dec_u64(&d, &big), "8 bytes past 5 left");
	cr_assert_not(dec_u8(&d, &small), "a later read that would fit fails too");
	cr_assert_eq(small, 0);
	cr_assert_null(dec_take(&d, 0));
	cr_assert_eq(dec_left(&d), 0, "nothing is left once failed");
	cr_assert_not(dec_done(&d));
	cr_assert_eq(d.err, -EBADMSG);
}

Test(dec, an_untrusted_length_cannot_wrap_past_the_end)
{
	struct dec d = dec_init(bytes, sizeof(bytes));

	dec_take(&d, 1);
	cr_assert_null(dec_take(&d, UINT64_MAX), "off + n wraps");
	cr_assert_eq(d.err, -EBADMSG);
	d = dec_init(bytes, sizeof(bytes));
	cr_assert_null(dec_take(&d, (uint64_t)sizeof(bytes) + 1));
	d = dec_init(bytes, sizeof(bytes));
	cr_assert_not_null(dec_take(&d, sizeof(bytes)), "exactly all of it is fine");
	cr_assert(dec_done(&d));
}

Test(dec, done_requires_every_byte_consumed)
{
	struct dec d = dec_init(bytes, 3);
	uint16_t v;

	cr_assert(dec_u16(&d, &v));
	cr_assert_not(dec_done(&d), "one byte was not read");
	cr_assert_eq(d.err, 0, "left-over bytes are not an error by themselves");
}
