/* vm_ram_populated: written pages are reported, untouched ones not, and doubt is refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "vmm/vm.h"
#include "vmm/vm_state.h"

#define MIB (1ULL << 20)
#define RAM_BYTES (64 * MIB)
#define PAGES (RAM_BYTES / VM_PAGE_BYTES)
#define WORDS (PAGES / 64)
#define HUGE_BYTES (2 * MIB)

/* Pages the tests write: in different 2 MiB blocks and next to each other. */
static const uint64_t written[] = { 1, 2, 3, 511, 1030, 4096, 12345 };
#define NWRITTEN (sizeof(written) / sizeof(written[0]))

static struct {
	struct vm *vm;
	struct vm_ram_region reg;
	uint64_t *bitmap;
	int uffd;
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	fx.uffd = -1;
	fx.bitmap = calloc(WORDS, sizeof(uint64_t));
	cr_assert_not_null(fx.bitmap);
}

static void teardown(void)
{
	if (fx.uffd >= 0)
		close(fx.uffd);
	if (fx.vm)
		vm_destroy(fx.vm);
	free(fx.bitmap);
}

TestSuite(ram_populated, .init = setup, .fini = teardown, .timeout = 60);

/*
 * A VM shell (no kernel, never run) of ram bytes. Its RAM is dropped first, so that only
 * what the test writes is populated, whatever building the VM touched.
 */
static void shell_make(uint64_t ram)
{
	struct vm_config cfg = { .ram_bytes = ram, .ncpus = 1, .console_fd = -1 };
	char err[256];

	require_kvm();
	cr_assert_eq(vm_create_for_restore(&fx.vm, &cfg, err, sizeof(err)), 0, "%s", err);
	vm_ram_region(fx.vm, 0, &fx.reg);
	cr_assert_eq(madvise(fx.reg.hva, fx.reg.bytes, MADV_DONTNEED), 0);
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void write_pages(void)
{
	for (unsigned k = 0; k < NWRITTEN; k++)
		fx.reg.hva[written[k] * VM_PAGE_BYTES + 8] = (uint8_t)(k + 1);
}

static bool is_written(uint64_t pg)
{
	for (unsigned k = 0; k < NWRITTEN; k++)
		if (written[k] == pg)
			return true;
	return false;
}

/* The 2 MiB block of host memory page pg lies in: what one huge page fault populates. */
static uintptr_t huge_block(uint64_t pg)
{
	return ((uintptr_t)fx.reg.hva + pg * VM_PAGE_BYTES) / HUGE_BYTES;
}

static bool block_written(uint64_t pg)
{
	for (unsigned k = 0; k < NWRITTEN; k++)
		if (huge_block(written[k]) == huge_block(pg))
			return true;
	return false;
}

/* Ask with a bitmap full of stale ones: the call must overwrite it, not OR into it. */
static int populated(unsigned region)
{
	memset(fx.bitmap, 0xff, WORDS * sizeof(uint64_t));
	return vm_ram_populated(fx.vm, region, fx.bitmap);
}

/*
 * Guest RAM has MADV_HUGEPAGE, so one write may populate its whole 2 MiB block: every
 * written page is set, and no page outside a written block (most of RAM, e.g. the 2 MiB
 * at 32 MiB) is.
 */
Test(ram_populated, written_pages_are_set_and_untouched_blocks_clear)
{
	shell_make(RAM_BYTES);
	write_pages();
	cr_assert_eq(populated(0), 0);
	for (unsigned k = 0; k < NWRITTEN; k++)
		cr_assert(bit(fx.bitmap, written[k]), "written page %lu not reported",
			  (unsigned long)written[k]);
	for (uint64_t pg = 0; pg < PAGES; pg++)
		cr_assert(!bit(fx.bitmap, pg) || block_written(pg),
			  "page %lu reported, nothing written within 2 MiB", (unsigned long)pg);
	for (uint64_t pg = 32 * MIB / VM_PAGE_BYTES; pg < 34 * MIB / VM_PAGE_BYTES; pg++)
		cr_assert(!bit(fx.bitmap, pg));
}

/* Without huge pages a write populates its page alone, and the answer is exact. */
Test(ram_populated, without_huge_pages_exactly_the_written_pages_are_set)
{
	shell_make(RAM_BYTES);
	cr_assert_eq(madvise(fx.reg.hva, fx.reg.bytes, MADV_NOHUGEPAGE), 0);
	write_pages();
	cr_assert_eq(populated(0), 0);
	for (uint64_t pg = 0; pg < PAGES; pg++)
		cr_assert_eq(bit(fx.bitmap, pg), is_written(pg), "page %lu", (unsigned long)pg);
}

/* Populated is what the page tables hold now: a page dropped since reads as zero again. */
Test(ram_populated, a_dropped_page_is_clear_again)
{
	shell_make(RAM_BYTES);
	cr_assert_eq(madvise(fx.reg.hva, fx.reg.bytes, MADV_NOHUGEPAGE), 0);
	write_pages();
	cr_assert_eq(madvise(fx.reg.hva + 4096 * VM_PAGE_BYTES, VM_PAGE_BYTES, MADV_DONTNEED), 0);
	cr_assert_eq(populated(0), 0);
	cr_assert(!bit(fx.bitmap, 4096));
	cr_assert(bit(fx.bitmap, 1030));
}

/* A userfaultfd on this process, or skip (none here or not allowed). */
static void uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };

	fx.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fx.uffd < 0)
		fx.uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fx.uffd < 0)
		cr_skip_test("no userfaultfd here: %s", strerror(errno));
	cr_assert_eq(ioctl(fx.uffd, UFFDIO_API, &api), 0, "UFFDIO_API: %s", strerror(errno));
}

/* Register region i for missing-page faults, as a lazy restore does. */
static void uffd_register(unsigned i)
{
	struct vm_ram_region r;
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };

	vm_ram_region(fx.vm, i, &r);
	reg.range = (struct uffdio_range){ .start = (uintptr_t)r.hva, .len = r.bytes };
	cr_assert_eq(ioctl(fx.uffd, UFFDIO_REGISTER, &reg), 0, "UFFDIO_REGISTER: %s",
		     strerror(errno));
}

static void uffd_unregister(unsigned i)
{
	struct vm_ram_region r;
	struct uffdio_range range;

	vm_ram_region(fx.vm, i, &r);
	range = (struct uffdio_range){ .start = (uintptr_t)r.hva, .len = r.bytes };
	cr_assert_eq(ioctl(fx.uffd, UFFDIO_UNREGISTER, &range), 0);
}

/*
 * While userfaultfd serves missing pages (a lazy restore loading), a missing page is not
 * zero: it is not loaded yet. The call must refuse, so the caller reads every page.
 */
Test(ram_populated, refuses_ram_userfaultfd_serves)
{
	shell_make(RAM_BYTES);
	write_pages();
	uffd_open();
	uffd_register(0);
	cr_assert_eq(populated(0), -EBUSY);
	uffd_unregister(0);
	cr_assert_eq(populated(0), 0, "answers again once unregistered");
	cr_assert(bit(fx.bitmap, 1030));
}

/*
 * RAM past 3 GiB is region 1, in the same mapping: registering it alone splits the VMA,
 * and only the region that overlaps the registered part is refused.
 */
Test(ram_populated, refuses_only_the_region_userfaultfd_serves)
{
	uint64_t *big; /* sized for region 0, the larger (3 GiB) */
	struct vm_ram_region r1;

	shell_make(4ULL << 30);
	cr_assert_eq(vm_ram_nregions(fx.vm), 2);
	vm_ram_region(fx.vm, 1, &r1);
	big = calloc(fx.reg.bytes / VM_PAGE_BYTES / 64, sizeof(uint64_t));
	cr_assert_not_null(big);
	r1.hva[5 * VM_PAGE_BYTES] = 1;
	uffd_open();
	uffd_register(1);
	cr_assert_eq(vm_ram_populated(fx.vm, 0, big), 0, "region 0 is not registered");
	cr_assert_eq(vm_ram_populated(fx.vm, 1, big), -EBUSY);
	uffd_unregister(1);
	cr_assert_eq(vm_ram_populated(fx.vm, 1, big), 0);
	cr_assert(bit(big, 5));
	free(big);
}

/*
 * Only private anonymous memory reads as zero where it is not populated: a shared or
 * file mapping may hold data its page tables do not map, and a hole is no memory at all.
 */
Test(ram_populated, refuses_ram_that_is_not_all_private_anonymous)
{
	uint8_t *at;
	int fd;

	shell_make(RAM_BYTES);
	fd = memfd_create("not-anonymous", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)HUGE_BYTES), 0);
	at = mmap(fx.reg.hva + 16 * MIB, HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		  fd, 0);
	close(fd);
	cr_assert_eq(at, fx.reg.hva + 16 * MIB);
	cr_assert_eq(populated(0), -ENOTSUP, "shared memory in the region");
	cr_assert_eq(munmap(at, HUGE_BYTES), 0);
	cr_assert_eq(populated(0), -ENOTSUP, "a hole in the region");
}

Test(ram_populated, rejects_a_region_that_does_not_exist)
{
	shell_make(RAM_BYTES);
	cr_assert_eq(vm_ram_nregions(fx.vm), 1);
	cr_assert_eq(populated(1), -EINVAL);
}
