/* Dirty logging by invariant: a guest stamps pages with round numbers, the host checks. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/common/gw_test.h"
#include "tests/vmm/vm_helpers.h"
#include "vmm/virtio/pci_priv.h"
#include "vmm/virtio/virtio_priv.h"
#include "vmm/vm_priv.h"
#include "vmm/vm_state.h"
#include "util/clock.h"

#define RAM_BYTES (64ULL << 20)
#define PAGES (RAM_BYTES / VM_PAGE_BYTES)
#define WORDS (PAGES / 64)
#define MAILBOX_GPA 0x1ff000ULL
#define AREA_GPA 0x200000ULL
#define AREA_PAGES 1024u /* 4 MiB: each page costs ~12 emulated instructions per round */
#define ROUNDS 12
#define ROUND_TIMEOUT_MS 20000

/*
 * The guest, 32-bit protected mode without paging, at CPL 0 (emulated on PVM, ~1 us per
 * instruction). Mailbox: +0 round asked (host writes), +4 round done (guest writes),
 * +8 free-running flag, +12 page count. For round r it writes r into both halves of the
 * first 8 bytes of every area page i with (i * 7 + r) % 5 < 2, then reports r done. When
 * free-running it asks itself for r + 1 and goes on.
 *
 *        mov  $MAILBOX, %esi
 * wait:  mov  (%esi), %eax ; cmp 4(%esi), %eax ; je wait
 * go:    mov  %eax, %ebp ; xor %ecx, %ecx ; mov $AREA, %edi ; mov $5, %ebx
 * loop:  imul $7, %ecx, %eax ; add %ebp, %eax ; xor %edx, %edx ; div %ebx
 *        cmp  $2, %edx ; jae skip ; mov %ebp, (%edi) ; mov %ebp, 4(%edi)
 * skip:  add  $4096, %edi ; inc %ecx ; cmp 12(%esi), %ecx ; jne loop
 *        mov  %ebp, 4(%esi) ; cmpl $0, 8(%esi) ; je wait
 *        lea  1(%ebp), %eax ; mov %eax, (%esi) ; jmp go
 */
static const uint8_t stamp_code[] = {
	0xbe, 0x00, 0xf0, 0x1f, 0x00,             /* mov $0x1ff000, %esi */
	0x8b, 0x06, 0x3b, 0x46, 0x04, 0x74, 0xf9, /* wait */
	0x89, 0xc5, 0x31, 0xc9,                   /* go */
	0xbf, 0x00, 0x00, 0x20, 0x00,             /* mov $0x200000, %edi */
	0xbb, 0x05, 0x00, 0x00, 0x00,             /* mov $5, %ebx */
	0x6b, 0xc1, 0x07, 0x01, 0xe8, 0x31, 0xd2, 0xf7, 0xf3, /* loop */
	0x83, 0xfa, 0x02, 0x73, 0x05, 0x89, 0x2f, 0x89, 0x6f, 0x04,
	0x81, 0xc7, 0x00, 0x10, 0x00, 0x00, 0x41, 0x3b, 0x4e, 0x0c, 0x75, 0xe1, /* skip */
	0x89, 0x6e, 0x04, 0x83, 0x7e, 0x08, 0x00, 0x74, 0xc3,
	0x8d, 0x45, 0x01, 0x89, 0x06, 0xeb, 0xc3,
};

/* A guest that does nothing: jmp . */
static const uint8_t idle_code[] = { 0xeb, 0xfe };

static struct {
	char dir[64];
	char elf[128];
	char disk[128];
	struct vm *vm;
	uint8_t *ram;
	uint64_t *bitmap;
	struct vm_dirty_consumer *c;  /* the consumer fetch() uses */
	struct vm_dirty_consumer *c2; /* a second one, for the tests of many */
	uint32_t last[AREA_PAGES]; /* round in which each area page was last reported */
	uint32_t last2[AREA_PAGES]; /* the same, as the second consumer saw it */
} fx;

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	tvm_dir_make(fx.dir, sizeof(fx.dir));
	snprintf(fx.elf, sizeof(fx.elf), "%s/guest.elf", fx.dir);
	snprintf(fx.disk, sizeof(fx.disk), "%s/disk.img", fx.dir);
	fx.bitmap = calloc(WORDS, sizeof(uint64_t));
	cr_assert_not_null(fx.bitmap);
}

static void teardown(void)
{
	vm_dirty_unregister(fx.c2);
	vm_dirty_unregister(fx.c);
	if (fx.vm) {
		if (vm_state(fx.vm) != VM_STATE_CREATED) {
			vm_request_stop(fx.vm);
			vm_wait(fx.vm, NULL);
		}
		vm_destroy(fx.vm);
	}
	free(fx.bitmap);
	tvm_dir_remove(fx.dir);
}

TestSuite(dirty_log, .init = setup, .fini = teardown, .timeout = 300);

static void vm_make_sized(const uint8_t *code, size_t len, bool ring, const char *disk,
			  uint64_t ram_bytes)
{
	struct vm_config cfg = {
		.kernel_path = fx.elf, .ram_bytes = ram_bytes, .ncpus = 1, .console_fd = -1,
		.dirty_ring = ring, .disk_path = disk,
	};
	char err[256];

	require_kvm();
	tvm_write_pvh_elf(fx.elf, code, len);
	cr_assert_eq(vm_create(&fx.vm, &cfg, err, sizeof(err)), 0, "vm_create: %s", err);
	cr_assert_eq(vm_dirty_backend(fx.vm), ring ? VM_DIRTY_RING : VM_DIRTY_BITMAP);
}

static void vm_make(const uint8_t *code, size_t len, bool ring, const char *disk)
{
	struct vm_ram_region r;

	vm_make_sized(code, len, ring, disk, RAM_BYTES);
	cr_assert_eq(vm_ram_nregions(fx.vm), 1);
	vm_ram_region(fx.vm, 0, &r);
	cr_assert_eq(r.gpa, 0);
	cr_assert_eq(r.bytes, RAM_BYTES);
	fx.ram = r.hva;
}

static volatile uint32_t *mailbox(unsigned word)
{
	return (volatile uint32_t *)(fx.ram + MAILBOX_GPA) + word;
}

static uint32_t mb_load(unsigned word)
{
	return __atomic_load_n(mailbox(word), __ATOMIC_ACQUIRE);
}

static void mb_store(unsigned word, uint32_t v)
{
	__atomic_store_n(mailbox(word), v, __ATOMIC_RELEASE);
}

static bool bit(const uint64_t *bm, uint64_t page)
{
	return bm[page / 64] >> (page % 64) & 1;
}

static void fetch_by(struct vm_dirty_consumer *c)
{
	memset(fx.bitmap, 0, WORDS * sizeof(uint64_t));
	cr_assert_eq(vm_dirty_fetch(c, 0, fx.bitmap), 0);
}

static void fetch(void)
{
	fetch_by(fx.c);
}

static void assert_all_dirty(void)
{
	for (uint64_t w = 0; w < WORDS; w++)
		cr_assert_eq(fx.bitmap[w], ~0ULL, "word %llu of the first fetch: %#llx",
			     (unsigned long long)w, (unsigned long long)fx.bitmap[w]);
}

/*
 * STYLE §5: after round r (the guest is idle while we look), every page a consumer is
 * told is dirty carries stamp r, and no page left unreported carries a stamp newer than
 * the round the consumer last got it in (last: that consumer's record). The second half
 * is what catches a lost write. A consumer that skipped rounds (since: the first round
 * since its last fetch) may be told of a page written in any of them, and must be told of
 * every page stamped since.
 */
static void check_round_of(uint32_t r, uint32_t since, uint32_t *last)
{
	unsigned reported = 0;

	for (unsigned i = 0; i < AREA_PAGES; i++) {
		uint64_t page = AREA_GPA / VM_PAGE_BYTES + i;
		const uint32_t *stamp = (const uint32_t *)(fx.ram + page * VM_PAGE_BYTES);

		cr_assert_eq(stamp[0], stamp[1], "page %u torn: %u/%u", i, stamp[0], stamp[1]);
		if (bit(fx.bitmap, page)) {
			cr_assert(stamp[0] >= since && stamp[0] <= r, "round %u: page %u reported "
				  "dirty holds stamp %u (rounds %u..%u)", r, i, stamp[0], since, r);
			last[i] = r;
			reported++;
		} else {
			cr_assert_leq(stamp[0], last[i], "round %u: page %u holds stamp %u but "
				      "was last reported in round %u: a lost write", r, i, stamp[0],
				      last[i]);
		}
	}
	cr_assert_gt(reported, AREA_PAGES / 4, "round %u reported only %u pages", r, reported);
	cr_assert(bit(fx.bitmap, MAILBOX_GPA / VM_PAGE_BYTES), "the mailbox page was written");
}

static void check_round(uint32_t r)
{
	check_round_of(r, r, fx.last);
}

/* Ask the guest for round r and wait until it has stamped it. */
static void guest_round(uint32_t r)
{
	uint64_t end = clock_now_ms() + ROUND_TIMEOUT_MS;

	mb_store(0, r);
	while (mb_load(1) != r) {
		cr_assert_lt(clock_now_ms(), end, "round %u did not finish", r);
		cr_assert_eq(vm_state(fx.vm), VM_STATE_RUNNING, "the guest stopped");
		usleep(1000);
	}
}

/* The stamping guest, started and waiting for round 1; fx.c registered, its start fetched. */
static void start_stamping(bool ring)
{
	vm_make(stamp_code, sizeof(stamp_code), ring, NULL);
	mb_store(3, AREA_PAGES);
	cr_assert_eq(vm_start(fx.vm), 0);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	fetch();
	assert_all_dirty();
}

static void run_rounds(bool ring)
{
	start_stamping(ring);
	cr_assert_eq(vm_dirty_epoch(fx.c), 1);
	for (uint32_t r = 1; r <= ROUNDS; r++) {
		guest_round(r);
		fetch();
		check_round(r);
	}
	vm_dirty_unregister(fx.c);
	fx.c = NULL;
	/* A consumer registered again counts every page dirty again. */
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	fetch();
	assert_all_dirty();
}

Test(dirty_log, bitmap_rounds_keep_the_stamp_invariant)
{
	run_rounds(false);
}

Test(dirty_log, ring_rounds_keep_the_stamp_invariant)
{
	run_rounds(true);
}

/*
 * What pre-copy relies on: the guest writes all the time, the host copies whatever each
 * fetch reports, and after a last fetch with the guest paused the copy equals guest RAM.
 * gap_ms between fetches: a long gap makes the ring fill up and the vCPU harvest it.
 */
/* Wait until the free-running guest has finished n more rounds. */
static void guest_runs_on(uint32_t n)
{
	uint32_t from = mb_load(1);
	uint64_t end = clock_now_ms() + ROUND_TIMEOUT_MS;

	while (mb_load(1) - from < n) {
		cr_assert_lt(clock_now_ms(), end, "the guest made no progress");
		usleep(1000);
	}
}

/*
 * beside: another consumer (the snapshot tracker, fx.c2) was registered and fetching
 * before this copy's consumer came, and fetches right before each of its fetches: a
 * copy through the second consumer must still be whole (a snapshot, then a migration).
 */
static void converging_copy(bool ring, unsigned gap_ms, unsigned fetches, bool beside)
{
	uint8_t *copy = malloc(RAM_BYTES);
	uint64_t *other = malloc(WORDS * sizeof(uint64_t));
	uint32_t first_round;

	cr_assert(copy && other);
	vm_make(stamp_code, sizeof(stamp_code), ring, NULL);
	mb_store(3, AREA_PAGES);
	mb_store(2, 1);
	mb_store(0, 1);
	cr_assert_eq(vm_start(fx.vm), 0);
	if (beside) {
		cr_assert_eq(vm_dirty_register(fx.vm, &fx.c2), 0);
		for (unsigned n = 0; n < 3; n++) {
			cr_assert_eq(vm_dirty_fetch(fx.c2, 0, other), 0);
			guest_runs_on(1);
		}
	}
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	for (unsigned n = 0; n <= fetches; n++) {
		if (n == fetches) {
			/* Still running: a ring KVM overran once left the vCPU stuck in ring-full
			 * exits, its last writes in slots nobody harvested (dirty_ring.c). */
			guest_runs_on(1);
			cr_assert_eq(vm_pause(fx.vm), 0);
		} else if (n > 0) {
			usleep(gap_ms * 1000);
		}
		if (beside)
			cr_assert_eq(vm_dirty_fetch(fx.c2, 0, other), 0);
		fetch();
		if (n == 0)
			first_round = mb_load(1);
		for (uint64_t pg = 0; pg < PAGES; pg++) {
			if (bit(fx.bitmap, pg))
				memcpy(copy + pg * VM_PAGE_BYTES, fx.ram + pg * VM_PAGE_BYTES,
				       VM_PAGE_BYTES);
		}
	}
	cr_assert_gt(mb_load(1), first_round + 2, "the guest made no progress (%u rounds)",
		     mb_load(1) - first_round);
	for (uint64_t pg = 0; pg < PAGES; pg++)
		cr_assert_arr_eq(copy + pg * VM_PAGE_BYTES, fx.ram + pg * VM_PAGE_BYTES,
				 VM_PAGE_BYTES, "page %#llx differs from the copy: a lost write",
				 (unsigned long long)pg);
	free(other);
	free(copy);
}

static void run_converging_copy(bool ring, unsigned gap_ms, unsigned fetches)
{
	converging_copy(ring, gap_ms, fetches, false);
}

Test(dirty_log, bitmap_copy_of_a_running_guest_converges)
{
	run_converging_copy(false, 15, 25);
}

Test(dirty_log, ring_copy_of_a_running_guest_converges)
{
	run_converging_copy(true, 15, 25);
}

Test(dirty_log, bitmap_copy_is_whole_beside_another_consumer)
{
	converging_copy(false, 15, 25, true);
}

Test(dirty_log, ring_copy_is_whole_beside_another_consumer)
{
	converging_copy(true, 15, 25, true);
}

/*
 * Two consumers of one log at their own pace: A (the snapshot tracker) fetches after
 * every round, B (a migration) registers later and fetches every third round. B starts
 * with every page pending for it alone; each keeps the stamp invariant on its own, so
 * A's fetches never hide a page from B; when B ends, A's view and logging go on.
 */
static void two_consumers(bool ring)
{
	start_stamping(ring);
	for (uint32_t r = 1; r <= 3; r++) {
		guest_round(r);
		fetch();
		check_round(r);
	}
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c2), 0);
	fetch_by(fx.c2);
	assert_all_dirty(); /* B's start reports every page to B... */
	for (unsigned i = 0; i < AREA_PAGES; i++)
		fx.last2[i] = 3;
	guest_round(4);
	fetch();
	check_round(4); /* ...and nothing extra to A: its pages all carry stamp 4 */
	for (uint32_t r = 5; r <= ROUNDS; r++) {
		guest_round(r);
		fetch();
		check_round(r);
		if (r % 3 == 0) {
			fetch_by(fx.c2);
			check_round_of(r, r - 2, fx.last2);
		}
	}
	cr_assert_eq(vm_dirty_epoch(fx.c2), 1 + (ROUNDS - 3) / 3);
	vm_dirty_unregister(fx.c2);
	fx.c2 = NULL;
	for (uint32_t r = ROUNDS + 1; r <= ROUNDS + 3; r++) {
		guest_round(r);
		fetch();
		check_round(r); /* "reported only N pages" if B's end had stopped A's logging */
	}
}

Test(dirty_log, bitmap_consumers_keep_their_own_views)
{
	two_consumers(false);
}

Test(dirty_log, ring_consumers_keep_their_own_views)
{
	two_consumers(true);
}

Test(dirty_log, ring_full_exits_lose_no_page)
{
	run_converging_copy(true, 400, 4);
	cr_assert_gt(fx.vm->dirty.ring_full_exits, 0,
		     "the guest never filled its ring: the test proves nothing");
}

/* Pages the VMM writes count in both backends, and only once. */
static void vmm_marks(bool ring)
{
	vm_make(idle_code, sizeof(idle_code), ring, NULL);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	fetch();
	assert_all_dirty();
	fetch();
	for (uint64_t w = 0; w < WORDS; w++)
		cr_assert_eq(fx.bitmap[w], 0, "a VM that never ran dirtied word %llu",
			     (unsigned long long)w);
	guest_mem_mark_dirty(&fx.vm->mem, 0x3000, 1);
	guest_mem_mark_dirty(&fx.vm->mem, 0x10ff0, 0x20); /* straddles pages 0x10 and 0x11 */
	guest_mem_mark_dirty(&fx.vm->mem, RAM_BYTES - 1, 100); /* clipped at the end of RAM */
	guest_mem_mark_dirty(&fx.vm->mem, RAM_BYTES + 4096, 1); /* not RAM: ignored */
	fetch();
	for (uint64_t pg = 0; pg < PAGES; pg++) {
		bool want = pg == 3 || pg == 0x10 || pg == 0x11 || pg == PAGES - 1;

		cr_assert_eq(bit(fx.bitmap, pg), want, "page %#llx", (unsigned long long)pg);
	}
	fetch();
	cr_assert_eq(fx.bitmap[0], 0, "a fetch clears the VMM's marks");
	/* A second consumer: the marks reach both, whoever fetches first. */
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c2), 0);
	fetch_by(fx.c2);
	assert_all_dirty();
	guest_mem_mark_dirty(&fx.vm->mem, 0x5000, 1);
	fetch();
	cr_assert_eq(fx.bitmap[0], 1ULL << 5);
	fetch_by(fx.c2);
	cr_assert_eq(fx.bitmap[0], 1ULL << 5, "the first consumer's fetch hid a VMM mark");
	fetch();
	cr_assert_eq(fx.bitmap[0], 0);
}

Test(dirty_log, vmm_marks_count_with_the_bitmap)
{
	vmm_marks(false);
}

Test(dirty_log, vmm_marks_count_with_the_ring)
{
	vmm_marks(true);
}

/* RAM past 3 GiB continues at 4 GiB as region 1, logged and fetched on its own. */
static void two_regions(bool ring)
{
	const uint64_t ram = 4ULL << 30, low = 3ULL << 30, high_pages = (ram - low) / 4096;
	struct vm_ram_region r;
	uint64_t *bm = calloc(high_pages / 64, sizeof(uint64_t));

	cr_assert_not_null(bm);
	vm_make_sized(idle_code, sizeof(idle_code), ring, NULL, ram);
	cr_assert_eq(vm_ram_nregions(fx.vm), 2);
	vm_ram_region(fx.vm, 0, &r);
	cr_assert(r.gpa == 0 && r.bytes == low);
	vm_ram_region(fx.vm, 1, &r);
	cr_assert(r.gpa == 4ULL << 30 && r.bytes == ram - low);
	cr_assert_eq(r.hva, fx.vm->ram + low, "one mapping, split where the hole is");
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	cr_assert_eq(vm_dirty_fetch(fx.c, 1, bm), 0);
	for (uint64_t w = 0; w < high_pages / 64; w++)
		cr_assert_eq(bm[w], ~0ULL);
	memset(bm, 0, high_pages / 8);
	cr_assert_eq(vm_dirty_fetch(fx.c, 1, bm), 0);
	cr_assert_eq(bm[0], 0);
	guest_mem_mark_dirty(&fx.vm->mem, (4ULL << 30) + 2 * 4096, 4096);
	guest_mem_mark_dirty(&fx.vm->mem, low + 4096, 1); /* the PCI hole: not RAM */
	cr_assert_eq(vm_dirty_fetch(fx.c, 1, bm), 0);
	cr_assert_eq(bm[0], 1ULL << 2);
	for (uint64_t w = 1; w < high_pages / 64; w++)
		cr_assert_eq(bm[w], 0);
	free(bm);
}

Test(dirty_log, ram_above_the_pci_hole_is_a_second_region_with_the_bitmap)
{
	two_regions(false);
}

Test(dirty_log, ram_above_the_pci_hole_is_a_second_region_with_the_ring)
{
	two_regions(true);
}

Test(dirty_log, fetch_checks_its_region_and_registration_has_a_limit)
{
	struct vm_dirty_consumer *c[VM_DIRTY_MAX_CONSUMERS], *extra = NULL;

	vm_make(idle_code, sizeof(idle_code), false, NULL);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	cr_assert_eq(vm_dirty_fetch(fx.c, 1, fx.bitmap), -EINVAL, "no region 1");
	for (unsigned k = 1; k < VM_DIRTY_MAX_CONSUMERS; k++)
		cr_assert_eq(vm_dirty_register(fx.vm, &c[k]), 0, "consumer %u", k);
	cr_assert_eq(vm_dirty_register(fx.vm, &extra), -EBUSY);
	cr_assert_null(extra);
	for (unsigned k = 1; k < VM_DIRTY_MAX_CONSUMERS; k++)
		vm_dirty_unregister(c[k]);
	vm_dirty_unregister(NULL);
}

/* ---- pages virtio-blk writes into guest RAM --------------------------------------- */

#define RING_GPA 0x400000ULL
#define HDR_GPA 0x410000ULL
#define DATA_GPA 0x420000ULL /* 3 pages of data */
#define STATUS_GPA 0x430000ULL

static uint16_t vblk_io_base(void)
{
	uint32_t addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_BAR0), v = 0;

	bus_access(&fx.vm->pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&fx.vm->pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	return (uint16_t)(v & PCI_BAR_IO_MASK);
}

static void reg_out(uint16_t base, unsigned off, uint32_t v, unsigned size)
{
	cr_assert(bus_access(&fx.vm->pio, base + off, true, &v, size));
}

static void desc_set(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = fx.ram + RING_GPA + VRING_DESC_BYTES * i;

	le64_encode(d, addr);
	le32_encode(d + 8, len);
	le16_encode(d + 12, flags);
	le16_encode(d + 14, next);
}

/*
 * The host plays the guest's driver through the device's registers (the vCPU never
 * runs): one 3-page read lands in guest RAM, and only the device knows.
 */
Test(dirty_log, pages_virtio_blk_reads_into_are_reported)
{
	const unsigned qn = VIRTIO_BLK_QUEUE_NUM;
	uint8_t *avail;
	uint64_t used_page = (RING_GPA + vring_used_off(qn)) / VM_PAGE_BYTES;
	uint8_t sector[512];
	uint16_t io;
	int fd;

	fd = open(fx.disk, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	memset(sector, 0x5a, sizeof(sector));
	for (unsigned s = 0; s < 64; s++)
		cr_assert_eq(write(fd, sector, sizeof(sector)), (ssize_t)sizeof(sector));
	close(fd);
	vm_make(idle_code, sizeof(idle_code), false, fx.disk);
	avail = fx.ram + RING_GPA + vring_avail_off(qn);
	io = vblk_io_base();
	reg_out(io, VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	reg_out(io, VIRTIO_PCI_QUEUE_SEL, 0, 2);
	reg_out(io, VIRTIO_PCI_QUEUE_PFN, (uint32_t)(RING_GPA >> VIRTIO_PCI_QUEUE_ADDR_SHIFT), 4);
	reg_out(io, VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_DRIVER_OK, 1);
	cr_assert_eq(vm_dirty_register(fx.vm, &fx.c), 0);
	fetch();
	fetch();
	cr_assert_eq(fx.bitmap[DATA_GPA / VM_PAGE_BYTES / 64], 0);
	le32_encode(fx.ram + HDR_GPA, VIRTIO_BLK_T_IN);
	le64_encode(fx.ram + HDR_GPA + 8, 0);
	desc_set(0, HDR_GPA, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT, 1);
	desc_set(1, DATA_GPA, 3 * 4096, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	desc_set(2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	le16_encode(avail + VRING_AVAIL_RING_OFF, 0);
	le16_encode(avail + VRING_AVAIL_IDX_OFF, 1);
	reg_out(io, VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(fx.ram[STATUS_GPA], VIRTIO_BLK_S_OK);
	cr_assert_eq(fx.ram[DATA_GPA + 3 * 4096 - 1], 0x5a);
	fetch();
	for (uint64_t pg = 0; pg < PAGES; pg++) {
		bool want = (pg >= DATA_GPA / VM_PAGE_BYTES && pg < DATA_GPA / VM_PAGE_BYTES + 3) ||
			    pg == STATUS_GPA / VM_PAGE_BYTES || pg == used_page;

		/* The test wrote the ring and header itself, through no vCPU: not logged. */
		cr_assert_eq(bit(fx.bitmap, pg), want, "page %#llx", (unsigned long long)pg);
	}
}
