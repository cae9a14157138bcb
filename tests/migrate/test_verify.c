/* --verify's digests: equal contents, equal digests; any change, another; zero is special. */
#include "migrate/verify.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define PAGES 3000u /* enough for several threads */

static uint8_t *ram;
static uint64_t *a, *b;

static void setup(void)
{
	ram = calloc(PAGES, MIG_PAGE_BYTES);
	a = calloc(PAGES, sizeof(*a));
	b = calloc(PAGES, sizeof(*b));
	cr_assert(ram && a && b);
	/* Every other page holds data, each its own; the rest stay zero. */
	for (uint64_t pg = 0; pg < PAGES; pg += 2)
		for (unsigned w = 0; w < MIG_PAGE_BYTES / 8; w++)
			((uint64_t *)(void *)(ram + pg * MIG_PAGE_BYTES))[w] =
				(pg << 20 | w) * 0x9e3779b97f4a7c15ULL;
}

static void teardown(void)
{
	free(ram);
	free(a);
	free(b);
}

TestSuite(verify, .init = setup, .fini = teardown);

Test(verify, zero_pages_digest_to_zero_and_data_never_does)
{
	cr_assert_eq(mig_digest_pages(ram, 0, PAGES, NULL, a), 0);
	for (uint64_t pg = 0; pg < PAGES; pg++)
		cr_assert_eq(a[pg] == 0, pg % 2 == 1, "page %llu", (unsigned long long)pg);
	for (uint64_t pg = 2; pg < PAGES; pg += 2)
		cr_assert_neq(a[pg], a[pg - 2], "two pages of other data, one digest");
}

Test(verify, one_changed_byte_anywhere_changes_the_digest_of_that_page_alone)
{
	static const size_t at[] = { 0, 1, 2047, 4095 };

	cr_assert_eq(mig_digest_pages(ram, 0, PAGES, NULL, a), 0);
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		uint64_t pg = 1000 + 2 * i;

		ram[pg * MIG_PAGE_BYTES + at[i]] ^= 1;
		cr_assert_eq(mig_digest_pages(ram, 0, PAGES, NULL, b), 0);
		for (uint64_t k = 0; k < PAGES; k++)
			cr_assert_eq(a[k] == b[k], k != pg, "byte %zu of page %llu: page %llu",
				     at[i], (unsigned long long)pg, (unsigned long long)k);
		ram[pg * MIG_PAGE_BYTES + at[i]] ^= 1;
	}
	/* A zero page that gets one bit is no longer zero. */
	ram[3 * MIG_PAGE_BYTES + 100] = 1;
	cr_assert_eq(mig_digest_pages(ram, 3, 1, NULL, b), 0);
	cr_assert_neq(b[0], 0);
}

Test(verify, a_range_digests_as_the_whole_does_at_those_pages)
{
	cr_assert_eq(mig_digest_pages(ram, 0, PAGES, NULL, a), 0);
	cr_assert_eq(mig_digest_pages(ram, 1234, 17, NULL, b), 0);
	cr_assert_arr_eq(b, a + 1234, 17 * sizeof(*a));
	cr_assert_eq(mig_digest_block(ram + 10 * MIG_PAGE_BYTES, MIG_PAGE_BYTES, &b[0]), 0);
	cr_assert_eq(b[0], a[10], "a block of one page digests as that page");
	cr_assert_eq(mig_digest_block(ram + 11 * MIG_PAGE_BYTES, 100, &b[0]), 0);
	cr_assert_eq(b[0], 0, "a short zero block");
}

Test(verify, pages_never_populated_count_as_zero_unread)
{
	uint64_t pop[(PAGES + 63) / 64];

	memset(pop, 0xff, sizeof(pop));
	pop[0] &= ~(1ULL << 4); /* page 4 "never touched": its data is not read */
	cr_assert_eq(mig_digest_pages(ram, 0, PAGES, pop, a), 0);
	cr_assert_eq(a[4], 0, "a page the populated map clears is zero without reading it");
	cr_assert_neq(a[6], 0);
}
