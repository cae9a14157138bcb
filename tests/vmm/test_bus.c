/* The I/O bus: ranges register without overlap and accesses reach the right device. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/bus.h"

struct fake_dev {
	uint64_t last_off;
	uint32_t last_val;
	unsigned writes;
};

static void fake_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	uint64_t v = 0xa0 + off;

	(void)opaque;
	memcpy(data, &v, size);
}

static void fake_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct fake_dev *d = opaque;

	d->last_off = off;
	d->last_val = 0;
	memcpy(&d->last_val, data, size);
	d->writes++;
}

static const struct bus_dev_ops fake_ops = { .read = fake_read, .write = fake_write };
static struct bus B;
static struct fake_dev D1, D2;

static void setup(void)
{
	cr_assert_eq(bus_init(&B), 0);
	memset(&D1, 0, sizeof(D1));
	memset(&D2, 0, sizeof(D2));
}

static void teardown(void)
{
	bus_destroy(&B);
}

TestSuite(bus, .init = setup, .fini = teardown);

Test(bus, dispatches_to_the_range_with_the_offset)
{
	uint32_t v = 0x1234;
	uint8_t b;

	cr_assert_eq(bus_register(&B, 0x3f8, 8, &fake_ops, &D1), 0);
	cr_assert_eq(bus_register(&B, 0x600, 8, &fake_ops, &D2), 0);
	cr_assert(bus_access(&B, 0x604, true, &v, 2));
	cr_assert_eq(D2.last_off, 4);
	cr_assert_eq(D2.last_val, 0x1234);
	cr_assert_eq(D1.writes, 0);
	cr_assert(bus_access(&B, 0x3fd, false, &b, 1));
	cr_assert_eq(b, 0xa5);
}

Test(bus, refuses_overlaps_and_empty_or_wrapping_ranges)
{
	cr_assert_eq(bus_register(&B, 0x100, 0x10, &fake_ops, &D1), 0);
	cr_assert_eq(bus_register(&B, 0x10f, 1, &fake_ops, &D2), -EEXIST);
	cr_assert_eq(bus_register(&B, 0xf8, 9, &fake_ops, &D2), -EEXIST);
	cr_assert_eq(bus_register(&B, 0x110, 1, &fake_ops, &D2), 0);
	cr_assert_eq(bus_register(&B, 0x200, 0, &fake_ops, &D2), -EINVAL);
	cr_assert_eq(bus_register(&B, UINT64_MAX, 2, &fake_ops, &D2), -EINVAL);
}

Test(bus, unclaimed_reads_return_all_ones)
{
	uint32_t v = 0;

	cr_assert_not(bus_access(&B, 0x80, false, &v, 4));
	cr_assert_eq(v, 0xffffffff);
}

Test(bus, unregister_frees_the_range_and_only_for_its_owner)
{
	uint8_t b = 1;

	cr_assert_eq(bus_register(&B, 0x100, 4, &fake_ops, &D1), 0);
	cr_assert_eq(bus_unregister(&B, 0x100, &D2), -ENOENT);
	cr_assert_eq(bus_unregister(&B, 0x100, &D1), 0);
	cr_assert_not(bus_access(&B, 0x100, true, &b, 1));
	cr_assert_eq(bus_register(&B, 0x100, 4, &fake_ops, &D2), 0);
}

Test(bus, fills_up_with_enospc)
{
	for (unsigned i = 0; i < BUS_MAX_RANGES; i++)
		cr_assert_eq(bus_register(&B, i * 16, 16, &fake_ops, &D1), 0);
	cr_assert_eq(bus_register(&B, 0x10000, 1, &fake_ops, &D1), -ENOSPC);
}
