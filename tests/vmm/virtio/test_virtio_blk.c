/* virtio-blk: a driver's view through PCI config and BAR0, good requests and hostile ones. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/x86/layout.h"
#include "vmm/virtio/pci_priv.h"
#include "vmm/virtio/virtio_priv.h"

#define RAM_BYTES    (4ULL << 20)
#define DISK_SECTORS 64ULL
#define QN           VIRTIO_BLK_QUEUE_NUM

/* Where the test driver keeps things in guest RAM. */
#define RING_GPA     0x10000ULL
#define HDR_GPA      0x20000ULL
#define DATA_GPA     0x21000ULL /* up to 0x2f000 */
#define STATUS_GPA   0x30000ULL
#define INDIRECT_GPA 0x31000ULL
#define SENTINEL     0xee

#define F(bit) (1u << (bit))

struct fake_irq {
	int level[LAYOUT_IOAPIC_PINS];
};

static void fake_set_level(void *opaque, unsigned gsi, int level)
{
	struct fake_irq *f = opaque;

	cr_assert_lt(gsi, LAYOUT_IOAPIC_PINS);
	f->level[gsi] = level;
}

static struct bus pio, mmio;
static struct pci_bus *pci;
static struct fake_irq irq_state;
static struct irq_chip chip = { .set_level = fake_set_level, .opaque = &irq_state };
static struct guest_mem mem;
static uint8_t *ram;
static struct virtio_blk *vb;
static char path[64];
static uint8_t disk[DISK_SECTORS * 512]; /* what the image file should hold */
static uint16_t io_base, avail_idx;
static char err[256];

static uint8_t *gpa(uint64_t a)
{
	return ram + a;
}

static uint16_t bar0_of_slot1(void)
{
	uint32_t addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_BAR0), v = 0;

	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	return (uint16_t)(v & PCI_BAR_IO_MASK);
}

static uint32_t reg_in(unsigned off, unsigned size)
{
	uint32_t v = 0;

	cr_assert(bus_access(&pio, io_base + off, false, &v, size));
	return v;
}

static void reg_out(unsigned off, uint32_t v, unsigned size)
{
	cr_assert(bus_access(&pio, io_base + off, true, &v, size));
}

static void open_device(bool read_only)
{
	struct virtio_blk_config cfg = { .path = path, .read_only = read_only };

	cr_assert_eq(virtio_blk_create(&vb, pci, &mem, &chip, &cfg, err, sizeof(err)), 0, "%s",
		     err);
	io_base = bar0_of_slot1();
}

static void setup(void)
{
	FILE *f;
	int fd;

	memset(&irq_state, 0, sizeof(irq_state));
	avail_idx = 0;
	ram = aligned_alloc(4096, RAM_BYTES);
	cr_assert_not_null(ram);
	memset(ram, 0, RAM_BYTES);
	guest_mem_layout(&mem, ram, RAM_BYTES);
	for (size_t i = 0; i < sizeof(disk); i++)
		disk[i] = (uint8_t)(i / 512 * 7 + i);
	snprintf(path, sizeof(path), "/tmp/godwit-vblk-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_eq(fwrite(disk, 1, sizeof(disk), f), sizeof(disk));
	fclose(f);
	cr_assert_eq(bus_init(&pio), 0);
	cr_assert_eq(bus_init(&mmio), 0);
	cr_assert_eq(pci_bus_create(&pci, &pio, &mmio), 0);
	open_device(false);
}

static void teardown(void)
{
	virtio_blk_destroy(vb);
	pci_bus_destroy(pci);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	unlink(path);
	free(mem.region[0].vmm_dirty);
	free(ram);
}

TestSuite(virtio_blk, .init = setup, .fini = teardown);

/* What Linux's virtio_pci_legacy probe and setup_vq do, in order. */
static void driver_init(uint32_t features)
{
	reg_out(VIRTIO_PCI_STATUS, 0, 1);
	reg_out(VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE, 1);
	reg_out(VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER, 1);
	reg_out(VIRTIO_PCI_GUEST_FEATURES, reg_in(VIRTIO_PCI_HOST_FEATURES, 4) & features, 4);
	reg_out(VIRTIO_PCI_QUEUE_SEL, 0, 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_NUM, 2), QN);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_PFN, 4), 0);
	memset(gpa(RING_GPA), 0, vring_bytes(QN));
	reg_out(VIRTIO_PCI_QUEUE_PFN, (uint32_t)(RING_GPA >> VIRTIO_PCI_QUEUE_ADDR_SHIFT), 4);
	reg_out(VIRTIO_PCI_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		VIRTIO_STATUS_DRIVER_OK, 1);
	avail_idx = 0;
}

static void desc_set(uint8_t *table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = table + VRING_DESC_BYTES * i;

	le64_encode(d, addr);
	le32_encode(d + 8, len);
	le16_encode(d + 12, flags);
	le16_encode(d + 14, next);
}

static uint8_t *desc_table(void)
{
	return gpa(RING_GPA);
}

static uint8_t *avail_ring(void)
{
	return gpa(RING_GPA + vring_avail_off(QN));
}

static uint8_t *used_ring(void)
{
	return gpa(RING_GPA + vring_used_off(QN));
}

static uint16_t used_idx(void)
{
	return le16_decode(used_ring() + VRING_USED_IDX_OFF);
}

/* Publish head and kick; returns the used element's length after checking its id. */
static uint32_t kick(uint16_t head)
{
	uint16_t before = used_idx();
	uint8_t *elem = used_ring() + VRING_USED_RING_OFF + VRING_USED_ELEM_BYTES * (before % QN);

	le16_encode(avail_ring() + VRING_AVAIL_RING_OFF + 2 * (avail_idx % QN), head);
	avail_idx++;
	le16_encode(avail_ring() + VRING_AVAIL_IDX_OFF, avail_idx);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), (uint16_t)(before + 1), "one request, one used element");
	cr_assert_eq(le32_decode(elem), head);
	return le32_decode(elem + 4);
}

static void put_hdr(uint32_t type, uint64_t sector)
{
	le32_encode(gpa(HDR_GPA), type);
	le32_encode(gpa(HDR_GPA) + 4, 0);
	le64_encode(gpa(HDR_GPA) + 8, sector);
}

/* A request as Linux builds it: header, one data buffer (if len), status. */
static uint8_t request(uint32_t type, uint64_t sector, uint64_t data_gpa, uint32_t len,
		       uint32_t *used_len)
{
	uint16_t data_flags = type == VIRTIO_BLK_T_OUT ? 0 : VRING_DESC_F_WRITE;
	uint32_t n;

	put_hdr(type, sector);
	*gpa(STATUS_GPA) = SENTINEL;
	if (len) {
		desc_set(desc_table(), 0, HDR_GPA, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT, 1);
		desc_set(desc_table(), 1, data_gpa, len, data_flags | VRING_DESC_F_NEXT, 2);
		desc_set(desc_table(), 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	} else {
		desc_set(desc_table(), 0, HDR_GPA, VIRTIO_BLK_HDR_BYTES, VRING_DESC_F_NEXT, 2);
		desc_set(desc_table(), 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	}
	n = kick(0);
	if (used_len)
		*used_len = n;
	return *gpa(STATUS_GPA);
}

static void assert_disk_is(const uint8_t *want)
{
	static uint8_t got[sizeof(disk) + 1];
	FILE *f = fopen(path, "r");

	cr_assert_not_null(f);
	cr_assert_eq(fread(got, 1, sizeof(got), f), sizeof(disk));
	fclose(f);
	cr_assert_arr_eq(got, want, sizeof(disk));
}

Test(virtio_blk, is_a_legacy_virtio_pci_block_device)
{
	uint32_t addr, v = 0;

	addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_VENDOR_ID);
	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	cr_assert_eq(v, 0x10011af4);
	addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_REVISION_ID);
	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	cr_assert_eq(v >> 8, VIRTIO_PCI_CLASS_STORAGE);
	addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_SUBSYSTEM_VENDOR_ID);
	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	cr_assert_eq(v, 0x00021af4);
	addr = PCI_CONFIG_ADDR(0, 1, 0, PCI_BAR0);
	bus_access(&pio, PCI_CONFIG_ADDR_PORT, true, &addr, 4);
	v = 0xffffffff;
	bus_access(&pio, PCI_CONFIG_DATA_PORT, true, &v, 4);
	bus_access(&pio, PCI_CONFIG_DATA_PORT, false, &v, 4);
	cr_assert_eq(v, ~(uint32_t)(VIRTIO_PCI_BAR_BYTES - 1) | PCI_BAR_SPACE_IO);
}

Test(virtio_blk, config_reports_capacity_seg_max_and_block_size)
{
	uint64_t cap = reg_in(VIRTIO_PCI_CONFIG, 4) |
		       (uint64_t)reg_in(VIRTIO_PCI_CONFIG + 4, 4) << 32;

	cr_assert_eq(cap, DISK_SECTORS);
	cr_assert_eq(virtio_blk_capacity_bytes(vb), DISK_SECTORS * 512);
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + VIRTIO_BLK_CFG_SEG_MAX, 4), QN - 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
	/* Linux's legacy config reads go byte by byte. */
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG, 1), DISK_SECTORS);
	cr_assert_eq(reg_in(VIRTIO_PCI_CONFIG + 1, 1), 0);
}

Test(virtio_blk, offers_features_and_keeps_only_the_negotiated_subset)
{
	uint32_t host = reg_in(VIRTIO_PCI_HOST_FEATURES, 4);

	cr_assert(host & F(VIRTIO_BLK_F_SEG_MAX));
	cr_assert(host & F(VIRTIO_BLK_F_BLK_SIZE));
	cr_assert(host & F(VIRTIO_BLK_F_FLUSH));
	cr_assert(host & F(VIRTIO_RING_F_INDIRECT_DESC));
	cr_assert_not(host & F(VIRTIO_BLK_F_RO));
	cr_assert_not(virtio_blk_is_read_only(vb));
	reg_out(VIRTIO_PCI_GUEST_FEATURES, 0xffffffff, 4);
	cr_assert_eq(reg_in(VIRTIO_PCI_GUEST_FEATURES, 4), host);
	reg_out(VIRTIO_PCI_HOST_FEATURES, 0, 4);
	cr_assert_eq(reg_in(VIRTIO_PCI_HOST_FEATURES, 4), host, "read-only");
}

Test(virtio_blk, only_queue_zero_exists_and_its_size_is_fixed)
{
	reg_out(VIRTIO_PCI_QUEUE_NUM, 16, 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_NUM, 2), QN);
	reg_out(VIRTIO_PCI_QUEUE_SEL, 1, 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_NUM, 2), 0);
	reg_out(VIRTIO_PCI_QUEUE_PFN, 0x55, 4);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_PFN, 4), 0);
	reg_out(VIRTIO_PCI_QUEUE_SEL, 0, 2);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_PFN, 4), 0);
}

Test(virtio_blk, out_then_in_round_trips_through_the_file)
{
	uint8_t want[sizeof(disk)];
	uint32_t len;

	driver_init(0xffffffff);
	for (unsigned i = 0; i < 1024; i++)
		gpa(DATA_GPA)[i] = (uint8_t)(0xa5 ^ i);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, 3, DATA_GPA, 1024, &len), VIRTIO_BLK_S_OK);
	cr_assert_eq(len, 1, "only the status byte was written");
	memcpy(want, disk, sizeof(disk));
	memcpy(want + 3 * 512, gpa(DATA_GPA), 1024);
	assert_disk_is(want);
	memset(gpa(DATA_GPA + 0x2000), 0, 2048);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 2, DATA_GPA + 0x2000, 2048, &len), VIRTIO_BLK_S_OK);
	cr_assert_eq(len, 2048 + 1);
	cr_assert_arr_eq(gpa(DATA_GPA + 0x2000), want + 2 * 512, 2048);
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 1);
}

Test(virtio_blk, in_spread_over_several_buffers_fills_each)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_IN, 10);
	desc_set(desc_table(), 5, HDR_GPA, 16, VRING_DESC_F_NEXT, 9);
	desc_set(desc_table(), 9, DATA_GPA, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 7);
	desc_set(desc_table(), 7, DATA_GPA + 0x3000, 1024,
		 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	desc_set(desc_table(), 3, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(kick(5), 1537);
	cr_assert_eq(*gpa(STATUS_GPA), VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(gpa(DATA_GPA), disk + 10 * 512, 512);
	cr_assert_arr_eq(gpa(DATA_GPA + 0x3000), disk + 11 * 512, 1024);
}

Test(virtio_blk, indirect_table_request_is_served)
{
	uint8_t *table = gpa(INDIRECT_GPA);

	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_IN, 1);
	desc_set(table, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(table, 1, DATA_GPA, 512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	desc_set(table, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc_set(desc_table(), 0, INDIRECT_GPA, 3 * VRING_DESC_BYTES, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 513);
	cr_assert_eq(*gpa(STATUS_GPA), VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(gpa(DATA_GPA), disk + 512, 512);
}

Test(virtio_blk, flush_get_id_and_unknown_types)
{
	uint32_t len;

	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, &len), VIRTIO_BLK_S_OK);
	cr_assert_eq(len, 1);
	memset(gpa(DATA_GPA), 0xff, VIRTIO_BLK_ID_BYTES);
	cr_assert_eq(request(VIRTIO_BLK_T_GET_ID, 0, DATA_GPA, VIRTIO_BLK_ID_BYTES, &len),
		     VIRTIO_BLK_S_OK);
	cr_assert_eq(len, VIRTIO_BLK_ID_BYTES + 1);
	cr_assert_eq(strncmp((char *)gpa(DATA_GPA), "godwit-", 7), 0);
	cr_assert_lt(strnlen((char *)gpa(DATA_GPA), VIRTIO_BLK_ID_BYTES), VIRTIO_BLK_ID_BYTES);
	cr_assert_eq(request(77, 0, DATA_GPA, 512, &len), VIRTIO_BLK_S_UNSUPP);
	assert_disk_is(disk);
}

Test(virtio_blk, read_only_device_fails_writes_and_serves_reads)
{
	virtio_blk_destroy(vb);
	open_device(true);
	cr_assert(virtio_blk_is_read_only(vb));
	cr_assert(reg_in(VIRTIO_PCI_HOST_FEATURES, 4) & F(VIRTIO_BLK_F_RO));
	driver_init(0xffffffff);
	memset(gpa(DATA_GPA), 0x11, 512);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL), VIRTIO_BLK_S_IOERR);
	assert_disk_is(disk);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 4, DATA_GPA, 512, NULL), VIRTIO_BLK_S_OK);
	cr_assert_arr_eq(gpa(DATA_GPA), disk + 4 * 512, 512);
	cr_assert_eq(request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, unwritable_image_falls_back_to_read_only)
{
	if (geteuid() == 0) {
		unlink(path); /* a skipped test does not reach .fini */
		cr_skip_test("root ignores file permissions");
	}
	virtio_blk_destroy(vb);
	cr_assert_eq(chmod(path, 0444), 0);
	open_device(false);
	cr_assert(virtio_blk_is_read_only(vb));
}

Test(virtio_blk, image_not_a_multiple_of_512_is_refused_with_its_size)
{
	struct virtio_blk_config cfg = { .path = path };
	struct virtio_blk *other;
	char want[256];

	cr_assert_eq(truncate(path, 1000), 0);
	cr_assert_eq(virtio_blk_create(&other, pci, &mem, &chip, &cfg, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "disk image %s is 1000 bytes, not a multiple of 512", path);
	cr_assert_str_eq(err, want);
}

Test(virtio_blk, missing_image_is_an_error_naming_it)
{
	struct virtio_blk_config cfg = { .path = "/tmp/godwit-no-such-image.raw" };
	struct virtio_blk *other;

	cr_assert_eq(virtio_blk_create(&other, pci, &mem, &chip, &cfg, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err,
			 "disk image /tmp/godwit-no-such-image.raw: No such file or directory");
}

Test(virtio_blk, isr_read_clears_it_and_lowers_the_line)
{
	unsigned gsi = pci_slot_gsi(1);

	driver_init(0xffffffff);
	request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL);
	cr_assert_eq(irq_state.level[gsi], 1);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), VIRTIO_ISR_QUEUE);
	cr_assert_eq(irq_state.level[gsi], 0);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), 0);
}

Test(virtio_blk, status_write_of_zero_resets_the_device)
{
	driver_init(0xffffffff);
	request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL);
	cr_assert_eq(reg_in(VIRTIO_PCI_STATUS, 1), 0x07);
	reg_out(VIRTIO_PCI_STATUS, 0, 1);
	cr_assert_eq(reg_in(VIRTIO_PCI_STATUS, 1), 0);
	cr_assert_eq(reg_in(VIRTIO_PCI_QUEUE_PFN, 4), 0);
	cr_assert_eq(reg_in(VIRTIO_PCI_GUEST_FEATURES, 4), 0);
	cr_assert_eq(irq_state.level[pci_slot_gsi(1)], 0);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), 0);
	/* A fresh driver starts again from index 0. */
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, device_writes_mark_guest_pages_dirty)
{
	uint64_t *bits = calloc(RAM_BYTES / 4096 / 64, sizeof(uint64_t));
	uint64_t used_page = (RING_GPA + vring_used_off(QN)) / 4096;

	mem.region[0].vmm_dirty = bits;
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, DATA_GPA + 0x800, 0x1000, NULL), VIRTIO_BLK_S_OK);
	for (uint64_t pg = 0; pg < RAM_BYTES / 4096; pg++) {
		bool dirty = bits[pg / 64] >> (pg % 64) & 1;
		bool want = pg == DATA_GPA / 4096 || pg == DATA_GPA / 4096 + 1 ||
			    pg == STATUS_GPA / 4096 || pg == used_page;

		cr_assert_eq(dirty, want, "page %#llx", (unsigned long long)pg);
	}
	memset(bits, 0, RAM_BYTES / 4096 / 8);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 512, NULL), VIRTIO_BLK_S_OK);
	cr_assert_eq(bits[DATA_GPA / 4096 / 64] >> (DATA_GPA / 4096 % 64) & 1, 0,
		     "OUT data is only read");
}

/* ---- hostile drivers: each request is consumed or failed, and the disk stays intact --- */

Test(virtio_blk, head_index_past_the_queue_is_consumed_with_length_zero)
{
	driver_init(0xffffffff);
	/* What lies where descriptor QN + 44 would be must not be followed. */
	desc_set(desc_table(), QN + 44, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	*gpa(STATUS_GPA) = SENTINEL;
	cr_assert_eq(kick(QN + 44), 0);
	cr_assert_eq(*gpa(STATUS_GPA), SENTINEL);
	assert_disk_is(disk);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, next_index_past_the_queue_is_consumed)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, DATA_GPA, 512, VRING_DESC_F_NEXT, 999);
	desc_set(desc_table(), 999, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0); /* past the table */
	*gpa(STATUS_GPA) = SENTINEL;
	cr_assert_eq(kick(0), 0);
	cr_assert_eq(*gpa(STATUS_GPA), SENTINEL);
	assert_disk_is(disk);
}

Test(virtio_blk, descriptor_loop_is_consumed, .timeout = 10)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, DATA_GPA, 512, VRING_DESC_F_NEXT, 0);
	cr_assert_eq(kick(0), 0);
	desc_set(desc_table(), 2, STATUS_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	cr_assert_eq(kick(2), 0, "a descriptor pointing at itself");
	assert_disk_is(disk);
}

Test(virtio_blk, buffer_outside_guest_ram_gets_ioerr)
{
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, 0, RAM_BYTES - 256, 512, NULL), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, LAYOUT_HIGHMEM_GPA, 512, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, UINT64_MAX - 255, 512, NULL), VIRTIO_BLK_S_IOERR);
	assert_disk_is(disk);
}

Test(virtio_blk, status_byte_outside_ram_or_missing_is_consumed)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, RAM_BYTES + 4096, 1, VRING_DESC_F_WRITE, 0);
	cr_assert_eq(kick(0), 0);
	desc_set(desc_table(), 1, STATUS_GPA, 1, 0, 0); /* not writable */
	*gpa(STATUS_GPA) = SENTINEL;
	cr_assert_eq(kick(0), 0);
	cr_assert_eq(*gpa(STATUS_GPA), SENTINEL);
}

Test(virtio_blk, readable_buffer_after_a_writable_one_is_consumed)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, STATUS_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
	desc_set(desc_table(), 2, DATA_GPA, 512, 0, 0);
	cr_assert_eq(kick(0), 0);
	assert_disk_is(disk);
}

Test(virtio_blk, short_header_gets_ioerr)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(desc_table(), 0, HDR_GPA, 8, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	*gpa(STATUS_GPA) = SENTINEL;
	cr_assert_eq(kick(0), 1);
	cr_assert_eq(*gpa(STATUS_GPA), VIRTIO_BLK_S_IOERR);
}

Test(virtio_blk, sectors_past_capacity_get_ioerr)
{
	driver_init(0xffffffff);
	memset(gpa(DATA_GPA), 0x77, 4096);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, DISK_SECTORS, DATA_GPA, 512, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, DISK_SECTORS - 1, DATA_GPA, 1024, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, DISK_SECTORS + 1, DATA_GPA, 512, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, DISK_SECTORS, DATA_GPA, 0, NULL), VIRTIO_BLK_S_OK,
		     "an empty read at the end is fine");
	assert_disk_is(disk);
}

Test(virtio_blk, sector_whose_byte_offset_overflows_gets_ioerr)
{
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, UINT64_MAX / 512 + 1, DATA_GPA, 512, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, UINT64_MAX, DATA_GPA, 512, NULL),
		     VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, UINT64_MAX - 1, DATA_GPA, 1024, NULL),
		     VIRTIO_BLK_S_IOERR);
	assert_disk_is(disk);
}

Test(virtio_blk, data_length_not_a_multiple_of_512_gets_ioerr)
{
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_OUT, 0, DATA_GPA, 100, NULL), VIRTIO_BLK_S_IOERR);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, DATA_GPA, 513, NULL), VIRTIO_BLK_S_IOERR);
	assert_disk_is(disk);
}

Test(virtio_blk, malformed_indirect_tables_are_consumed, .timeout = 10)
{
	uint8_t *table = gpa(INDIRECT_GPA);

	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(table, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(table, 1, DATA_GPA, 512, VRING_DESC_F_NEXT, 2);
	desc_set(table, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc_set(desc_table(), 0, INDIRECT_GPA, 40, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "length not a multiple of 16");
	desc_set(desc_table(), 0, RAM_BYTES - 32, 48, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "table outside RAM");
	desc_set(desc_table(), 0, INDIRECT_GPA, (QN + 1) * 16, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "table longer than the queue");
	desc_set(table, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
	desc_set(desc_table(), 0, INDIRECT_GPA, 48, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "loop inside the table");
	desc_set(table, 2, STATUS_GPA, 1, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 3);
	cr_assert_eq(kick(0), 0, "next past the table");
	desc_set(table, 2, INDIRECT_GPA, 48, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "nested indirect");
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, INDIRECT_GPA, 48, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0, "indirect in the middle of a chain");
	assert_disk_is(disk);
}

Test(virtio_blk, indirect_without_negotiation_is_consumed)
{
	uint8_t *table = gpa(INDIRECT_GPA);

	driver_init(0xffffffff & ~F(VIRTIO_RING_F_INDIRECT_DESC));
	put_hdr(VIRTIO_BLK_T_IN, 0);
	desc_set(table, 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(table, 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	desc_set(desc_table(), 0, INDIRECT_GPA, 32, VRING_DESC_F_INDIRECT, 0);
	cr_assert_eq(kick(0), 0);
}

Test(virtio_blk, avail_index_jumping_past_the_queue_stops_the_device_until_reset)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_OUT, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, DATA_GPA, 512, VRING_DESC_F_NEXT, 2);
	desc_set(desc_table(), 2, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	le16_encode(avail_ring() + VRING_AVAIL_IDX_OFF, QN + 1);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 0);
	cr_assert(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(reg_in(VIRTIO_PCI_ISR, 1), VIRTIO_ISR_CONFIG);
	le16_encode(avail_ring() + VRING_AVAIL_IDX_OFF, 1);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 0, "broken until reset");
	assert_disk_is(disk);
	driver_init(0xffffffff);
	cr_assert_eq(request(VIRTIO_BLK_T_IN, 0, DATA_GPA, 512, NULL), VIRTIO_BLK_S_OK);
}

Test(virtio_blk, ring_outside_guest_ram_is_refused)
{
	driver_init(0xffffffff);
	reg_out(VIRTIO_PCI_QUEUE_PFN, (uint32_t)((RAM_BYTES - 4096) >> 12), 4);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert(reg_in(VIRTIO_PCI_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
	reg_out(VIRTIO_PCI_QUEUE_PFN, 0xffffffff, 4);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	assert_disk_is(disk);
}

Test(virtio_blk, notify_for_another_queue_does_nothing)
{
	driver_init(0xffffffff);
	put_hdr(VIRTIO_BLK_T_FLUSH, 0);
	desc_set(desc_table(), 0, HDR_GPA, 16, VRING_DESC_F_NEXT, 1);
	desc_set(desc_table(), 1, STATUS_GPA, 1, VRING_DESC_F_WRITE, 0);
	le16_encode(avail_ring() + VRING_AVAIL_RING_OFF, 0);
	le16_encode(avail_ring() + VRING_AVAIL_IDX_OFF, 1);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 1, 2);
	cr_assert_eq(used_idx(), 0);
	reg_out(VIRTIO_PCI_QUEUE_NOTIFY, 0, 2);
	cr_assert_eq(used_idx(), 1);
}
