/* Tests for range_ok: the one bounds check for untrusted offsets and lengths. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "util/range.h"

TestSuite(range);

Test(range, accepts_ranges_that_end_at_or_before_the_size)
{
	cr_assert(range_ok(0, 10, 10));
	cr_assert(range_ok(10, 0, 10), "an empty range at the very end");
	cr_assert(range_ok(0, 0, 0));
	cr_assert(range_ok(3, 4, 10));
	cr_assert(range_ok(0, UINT64_MAX, UINT64_MAX));
	cr_assert(range_ok(UINT64_MAX, 0, UINT64_MAX));
}

Test(range, rejects_ranges_past_the_end)
{
	cr_assert_not(range_ok(11, 0, 10), "offset past the end");
	cr_assert_not(range_ok(5, 6, 10), "one byte too long");
	cr_assert_not(range_ok(0, 1, 0));
	cr_assert_not(range_ok(10, 1, 10));
}

Test(range, rejects_ranges_whose_end_wraps)
{
	cr_assert_not(range_ok(8, UINT64_MAX, 10), "off + len wraps to 6");
	cr_assert_not(range_ok(UINT64_MAX, 2, UINT64_MAX), "off + len wraps to 0");
	cr_assert_not(range_ok(1, UINT64_MAX, UINT64_MAX));
	cr_assert_not(range_ok(UINT64_MAX / 2 + 1, UINT64_MAX / 2 + 1, UINT64_MAX));
}
