/* PCI bus 0: configuration mechanism #1, the host bridge, BAR sizing and BAR moves. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "vmm/devices.h"
#include "vmm/x86/layout.h"
#include "vmm/virtio/pci_priv.h"

struct fake_dev {
	uint64_t last_off;
	uint32_t last_val;
	unsigned reads, writes;
};

static void fake_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct fake_dev *d = opaque;
	uint64_t v = 0xd0 + off;

	d->reads++;
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

static struct bus pio, mmio;
static struct pci_bus *pci;
static struct fake_dev io_dev, mem_dev;
static unsigned slot;

static const struct pci_dev_desc fake_desc = {
	.vendor_id = 0x1234,
	.device_id = 0x5678,
	.subsys_vendor_id = 0x1af4,
	.subsys_id = 0x0042,
	.class_code = 0x018000,
	.revision = 3,
	.bar[0] = { .size = 0x20, .io = true, .ops = &fake_ops, .opaque = &io_dev },
	.bar[1] = { .size = 0x1000, .io = false, .ops = &fake_ops, .opaque = &mem_dev },
};

static void setup(void)
{
	memset(&io_dev, 0, sizeof(io_dev));
	memset(&mem_dev, 0, sizeof(mem_dev));
	cr_assert_eq(bus_init(&pio), 0);
	cr_assert_eq(bus_init(&mmio), 0);
	cr_assert_eq(pci_bus_create(&pci, &pio, &mmio), 0);
	cr_assert_eq(pci_add_device(pci, &fake_desc, &slot), 0);
}

static void teardown(void)
{
	pci_bus_destroy(pci);
	bus_destroy(&mmio);
	bus_destroy(&pio);
}

TestSuite(pci, .init = setup, .fini = teardown);

static uint32_t pio_in(uint16_t port, unsigned size)
{
	uint32_t v = 0;

	bus_access(&pio, port, false, &v, size);
	return v;
}

static void pio_out(uint16_t port, uint32_t v, unsigned size)
{
	bus_access(&pio, port, true, &v, size);
}

static uint32_t cfg_read(unsigned dev, unsigned reg, unsigned size)
{
	pio_out(PCI_CONFIG_ADDR_PORT, PCI_CONFIG_ADDR(0, dev, 0, reg), 4);
	return pio_in((uint16_t)(PCI_CONFIG_DATA_PORT + (reg & 3)), size);
}

static void cfg_write(unsigned dev, unsigned reg, uint32_t v, unsigned size)
{
	pio_out(PCI_CONFIG_ADDR_PORT, PCI_CONFIG_ADDR(0, dev, 0, reg), 4);
	pio_out((uint16_t)(PCI_CONFIG_DATA_PORT + (reg & 3)), v, size);
}

Test(pci, host_bridge_answers_at_00_0)
{
	cr_assert_eq(cfg_read(0, PCI_VENDOR_ID, 4), 0x0d578086);
	cr_assert_eq(cfg_read(0, PCI_REVISION_ID, 4) >> 8, PCI_CLASS_HOST_BRIDGE);
	cr_assert_eq(cfg_read(0, PCI_HEADER_TYPE, 1), 0);
	cr_assert_eq(cfg_read(0, PCI_INTERRUPT_PIN, 1), 0);
	cr_assert_eq(cfg_read(0, PCI_STATUS, 2) & 0x10, 0, "no capability list");
}

Test(pci, device_header_carries_its_ids_class_and_interrupt)
{
	cr_assert_eq(slot, 1);
	cr_assert_eq(cfg_read(1, PCI_VENDOR_ID, 4), 0x56781234);
	cr_assert_eq(cfg_read(1, PCI_REVISION_ID, 4), 0x01800003);
	cr_assert_eq(cfg_read(1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x00421af4);
	cr_assert_eq(cfg_read(1, PCI_HEADER_TYPE, 1), 0);
	cr_assert_eq(cfg_read(1, PCI_INTERRUPT_PIN, 1), PCI_INTERRUPT_PIN_INTA);
	cr_assert_eq(cfg_read(1, PCI_INTERRUPT_LINE, 1), LAYOUT_PCI_IRQ_BASE);
	cr_assert_eq(pci_slot_gsi(1), LAYOUT_PCI_IRQ_BASE);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), LAYOUT_PCI_IO_BASE | PCI_BAR_SPACE_IO);
	cr_assert_eq(cfg_read(1, PCI_BAR0 + 4, 4), (uint32_t)LAYOUT_PCI_MMIO_GPA);
	cr_assert_eq(cfg_read(1, PCI_BAR0 + 8, 4), 0, "unused BAR");
	cr_assert_eq(cfg_read(1, PCI_ROM_ADDRESS, 4), 0);
}

Test(pci, absent_slots_functions_and_buses_read_all_ones)
{
	cr_assert_eq(cfg_read(5, PCI_VENDOR_ID, 4), 0xffffffff);
	cr_assert_eq(cfg_read(31, PCI_VENDOR_ID, 2), 0xffff);
	pio_out(PCI_CONFIG_ADDR_PORT, PCI_CONFIG_ADDR(0, 0, 1, 0), 4);
	cr_assert_eq(pio_in(PCI_CONFIG_DATA_PORT, 4), 0xffffffff, "function 1");
	pio_out(PCI_CONFIG_ADDR_PORT, PCI_CONFIG_ADDR(1, 0, 0, 0), 4);
	cr_assert_eq(pio_in(PCI_CONFIG_DATA_PORT, 4), 0xffffffff, "bus 1");
	pio_out(PCI_CONFIG_ADDR_PORT, 0, 4);
	cr_assert_eq(pio_in(PCI_CONFIG_DATA_PORT, 4), 0xffffffff, "enable bit clear");
	cfg_write(5, PCI_COMMAND, 0x7, 2); /* ignored, and harmless */
}

/* Linux's pci_check_type1(): a byte write to 0xcfb must not disturb the dword latch. */
Test(pci, address_latch_takes_only_dword_writes)
{
	pio_out(0xcfb, 0x01, 1);
	pio_out(PCI_CONFIG_ADDR_PORT, 0x80000000, 4);
	cr_assert_eq(pio_in(PCI_CONFIG_ADDR_PORT, 4), 0x80000000);
	pio_out(0xcfb, 0x01, 1);
	cr_assert_eq(pio_in(PCI_CONFIG_ADDR_PORT, 4), 0x80000000);
	pio_out(PCI_CONFIG_ADDR_PORT, 0xffffffff, 4);
	cr_assert_eq(pio_in(PCI_CONFIG_ADDR_PORT, 4), PCI_CONFIG_ADDR_MASK);
}

Test(pci, byte_and_word_accesses_reach_offsets_within_the_dword)
{
	cr_assert_eq(cfg_read(1, 0, 1), 0x34);
	cr_assert_eq(cfg_read(1, 1, 1), 0x12);
	cr_assert_eq(cfg_read(1, 2, 1), 0x78);
	cr_assert_eq(cfg_read(1, 3, 1), 0x56);
	cr_assert_eq(cfg_read(1, 2, 2), 0x5678);
	cr_assert_eq(cfg_read(1, 0x0b, 1), 0x01, "class byte");
	cfg_write(1, PCI_LATENCY_TIMER, 0x40, 1);
	cfg_write(1, PCI_CACHE_LINE_SIZE, 0x10, 1);
	cr_assert_eq(cfg_read(1, PCI_CACHE_LINE_SIZE, 2), 0x4010);
	cfg_write(1, PCI_VENDOR_ID, 0xffff, 2);
	cr_assert_eq(cfg_read(1, PCI_VENDOR_ID, 2), 0x1234, "read-only");
	cfg_write(1, PCI_COMMAND, 0x0407, 2);
	cr_assert_eq(cfg_read(1, PCI_COMMAND, 2), 0x0007, "INTx disable must read as unsupported");
}

Test(pci, bar_sizing_reads_back_size_and_flags)
{
	uint32_t orig;

	cfg_write(1, PCI_COMMAND, 0, 2); /* as Linux does around sizing */
	orig = cfg_read(1, PCI_BAR0, 4);
	cfg_write(1, PCI_BAR0, 0xffffffff, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), ~(0x20u - 1) | PCI_BAR_SPACE_IO);
	cfg_write(1, PCI_BAR0, orig, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), orig);
	cfg_write(1, PCI_BAR0 + 4, 0xffffffff, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0 + 4, 4), ~(0x1000u - 1));
	cfg_write(1, PCI_BAR0 + 8, 0xffffffff, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0 + 8, 4), 0, "unused BAR sizes to nothing");
	cfg_write(1, PCI_ROM_ADDRESS, 0xfffff800, 4);
	cr_assert_eq(cfg_read(1, PCI_ROM_ADDRESS, 4), 0, "no expansion ROM");
}

Test(pci, bar_sizing_by_bytes_masks_like_a_dword)
{
	for (unsigned i = 0; i < 4; i++)
		cfg_write(1, PCI_BAR0 + i, 0xff, 1);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), 0xffffffe1);
}

Test(pci, bars_decode_only_while_the_command_register_enables_them)
{
	uint64_t mmio_base = LAYOUT_PCI_MMIO_GPA;
	uint32_t v = 0;

	cr_assert_eq(pio_in(LAYOUT_PCI_IO_BASE + 4, 1), 0xd4);
	cr_assert(bus_access(&mmio, mmio_base + 8, false, &v, 4));
	cfg_write(1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cr_assert_not(bus_access(&pio, LAYOUT_PCI_IO_BASE + 4, false, &v, 1), "I/O off");
	cr_assert(bus_access(&mmio, mmio_base + 8, false, &v, 4));
	cfg_write(1, PCI_COMMAND, PCI_COMMAND_IO, 2);
	cr_assert(bus_access(&pio, LAYOUT_PCI_IO_BASE + 4, false, &v, 1));
	cr_assert_not(bus_access(&mmio, mmio_base + 8, false, &v, 4), "memory off");
	/* A sizing pattern written while decode is on never lands on the bus. */
	cfg_write(1, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY, 2);
	cfg_write(1, PCI_BAR0 + 4, 0xffffffff, 4);
	cr_assert_not(bus_access(&mmio, 0xfffff000, false, &v, 4));
	cr_assert_not(bus_access(&mmio, mmio_base + 8, false, &v, 4));
	cfg_write(1, PCI_BAR0 + 4, (uint32_t)mmio_base, 4);
	cr_assert(bus_access(&mmio, mmio_base + 8, false, &v, 4));
}

Test(pci, bar_move_reregisters_the_handler_at_the_new_address)
{
	uint32_t v = 0;

	cfg_write(1, PCI_BAR0, 0xd000, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), 0xd001);
	cr_assert_not(bus_access(&pio, LAYOUT_PCI_IO_BASE, false, &v, 1), "old port is free");
	pio_out(0xd006, 0xab, 1);
	cr_assert_eq(io_dev.writes, 1);
	cr_assert_eq(io_dev.last_off, 6, "offsets are relative to the new base");
	cr_assert_eq(io_dev.last_val, 0xab);
	cfg_write(1, PCI_BAR0 + 4, 0xc0100000, 4);
	cr_assert(bus_access(&mmio, 0xc0100010, false, &v, 4));
	cr_assert_not(bus_access(&mmio, LAYOUT_PCI_MMIO_GPA, false, &v, 4));
}

Test(pci, bar_moved_onto_a_busy_range_stays_off_the_bus)
{
	static struct fake_dev other;
	uint32_t v = 0;

	cr_assert_eq(bus_register(&pio, 0xe000, 0x10, &fake_ops, &other), 0);
	cfg_write(1, PCI_BAR0, 0xe000, 4);
	cr_assert_eq(cfg_read(1, PCI_BAR0, 4), 0xe001, "the register still takes the value");
	pio_in(0xe004, 1);
	cr_assert_eq(other.reads, 1, "the range's owner keeps it");
	cr_assert_eq(io_dev.reads, 0);
	cfg_write(1, PCI_BAR0, 0xd040, 4);
	cr_assert(bus_access(&pio, 0xd044, false, &v, 1));
	cr_assert_eq(io_dev.reads, 1);
	cr_assert_eq(bus_unregister(&pio, 0xe000, &other), 0);
	/* Over the config ports themselves: refused, and config cycles keep working. */
	cfg_write(1, PCI_BAR0, 0xce0, 4);
	cr_assert_eq(cfg_read(1, PCI_VENDOR_ID, 4), 0x56781234);
}

Test(pci, removed_device_frees_its_slot_and_bars)
{
	uint32_t v = 0;
	unsigned again;

	cr_assert_eq(pci_remove_device(pci, slot), 0);
	cr_assert_eq(cfg_read(1, PCI_VENDOR_ID, 4), 0xffffffff);
	cr_assert_not(bus_access(&pio, LAYOUT_PCI_IO_BASE, false, &v, 1));
	cr_assert_eq(pci_remove_device(pci, slot), -ENOENT);
	cr_assert_eq(pci_remove_device(pci, 0), -ENOENT, "the host bridge stays");
	cr_assert_eq(pci_add_device(pci, &fake_desc, &again), 0);
	cr_assert_eq(again, 1);
}

Test(pci, slots_end_where_ioapic_pins_end)
{
	struct pci_dev_desc d = fake_desc;
	unsigned s = 0, added = 1;

	d.bar[1].size = 0;
	while (pci_add_device(pci, &d, &s) == 0) {
		cr_assert_lt(pci_slot_gsi(s), LAYOUT_IOAPIC_PINS);
		added++;
	}
	cr_assert_eq(added, LAYOUT_IOAPIC_PINS - LAYOUT_PCI_IRQ_BASE);
	cr_assert_eq(pci_add_device(pci, &d, &s), -ENOSPC);
}

Test(pci, bad_bar_descriptions_are_refused)
{
	struct pci_dev_desc d = fake_desc;
	unsigned s;

	d.bar[0].size = 0x30;
	cr_assert_eq(pci_add_device(pci, &d, &s), -EINVAL, "not a power of two");
	d.bar[0].size = 0x20;
	d.bar[0].ops = NULL;
	cr_assert_eq(pci_add_device(pci, &d, &s), -EINVAL, "no handlers");
}
