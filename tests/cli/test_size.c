/* Byte sizes from the command line (--mem, --bandwidth): what is read, what is refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "cli/size.h"

TestSuite(size);

Test(size, reads_bytes_and_binary_suffixes)
{
	static const struct {
		const char *s;
		uint64_t bytes;
	} cases[] = {
		{ "1073741824", 1ULL << 30 }, { "0", 0 },          { "4K", 4096 },
		{ "4k", 4096 },               { "512M", 512ULL << 20 }, { "512MiB", 512ULL << 20 },
		{ "512MB", 512ULL << 20 },    { "2G", 2ULL << 30 },  { "1T", 1ULL << 40 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t v = 12345;

		cr_assert_eq(cli_parse_size(cases[i].s, &v), 0, "%s", cases[i].s);
		cr_assert_eq(v, cases[i].bytes, "%s read as %llu", cases[i].s,
			     (unsigned long long)v);
	}
}

Test(size, refuses_signs_units_and_trailing_text)
{
	static const char *const bad[] = { "", "M", "-1", "+1", " 1", "1X", "1Mi", "1MiBs",
					   "1.5G", "1 G", "99999999999999999999" };
	uint64_t v = 7;

	cr_assert_eq(cli_parse_size(NULL, &v), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(cli_parse_size(bad[i], &v), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(v, 7, "a refused size left no value behind");
}

Test(size, refuses_sizes_past_64_bits)
{
	uint64_t v = 7;

	cr_assert_eq(cli_parse_size("16777216T", &v), -ERANGE);
	cr_assert_eq(cli_parse_size("16777215T", &v), 0);
	cr_assert_eq(v, 16777215ULL << 40);
}
