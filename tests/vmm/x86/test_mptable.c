/* Tests for the MP table: structure, checksums and routes checked against the MP spec 1.4. */
#include "vmm/x86/boot.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/guest_mem.h"
#include "vmm/x86/layout.h"
#include "util/byteorder.h"

#define RAM_BYTES (2ULL << 20)

/* MP spec 1.4 entry types and sizes. */
#define T_PROCESSOR 0
#define T_BUS       1
#define T_IOAPIC    2
#define T_IOINTR    3
#define T_LINTR     4

static struct {
	uint8_t *ram;
	struct guest_mem m;
} fx;

static void setup(void)
{
	fx.ram = calloc(1, RAM_BYTES);
	cr_assert_not_null(fx.ram);
	guest_mem_layout(&fx.m, fx.ram, RAM_BYTES);
}

static void teardown(void)
{
	free(fx.ram);
}

TestSuite(mptable, .init = setup, .fini = teardown);

static uint8_t sum(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	for (size_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static const uint8_t *fps(void)
{
	const uint8_t *p = guest_mem_ptr(&fx.m, LAYOUT_MPTABLE_GPA, 16);

	cr_assert_not_null(p);
	return p;
}

/* The configuration table the floating pointer points at, bounds-checked against RAM. */
static const uint8_t *config(size_t *len)
{
	uint64_t gpa = le32_decode(fps() + 4);
	const uint8_t *hdr = guest_mem_ptr(&fx.m, gpa, 44);

	cr_assert_not_null(hdr);
	*len = le16_decode(hdr + 4);
	cr_assert_not_null(guest_mem_ptr(&fx.m, gpa, *len));
	return hdr;
}

/* Entries after the header: count and collect the entry of each type, in order. */
struct walk {
	unsigned count[5];
	const uint8_t *entry[128];
	unsigned n;
};

static void walk(struct walk *w)
{
	size_t len, off = 44;
	const uint8_t *hdr = config(&len);

	memset(w, 0, sizeof(*w));
	while (off < len) {
		uint8_t type = hdr[off];

		cr_assert_leq(type, T_LINTR, "unknown entry type %u", type);
		cr_assert_lt(w->n, 128u);
		if (w->n > 0)
			cr_assert_geq(type, w->entry[w->n - 1][0], "entries are sorted by type");
		w->count[type]++;
		w->entry[w->n++] = hdr + off;
		off += type == T_PROCESSOR ? 20 : 8;
	}
	cr_assert_eq(off, len, "entries end exactly at the base table length");
	cr_assert_eq(w->n, le16_decode(hdr + 34), "entry count");
}

static const uint8_t *find_intr(const struct walk *w, uint8_t type, uint8_t bus, uint8_t irq)
{
	for (unsigned i = 0; i < w->n; i++) {
		const uint8_t *e = w->entry[i];

		if (e[0] == type && e[4] == bus && e[5] == irq)
			return e;
	}
	return NULL;
}

Test(mptable, checksums_are_valid)
{
	static const unsigned ns[] = { 1, 2, LAYOUT_MAX_VCPUS };

	for (unsigned i = 0; i < 3; i++) {
		size_t len;
		const uint8_t *hdr;

		cr_assert_eq(mptable_write(&fx.m, ns[i]), 0);
		cr_assert_eq(memcmp(fps(), "_MP_", 4), 0);
		cr_assert_eq(sum(fps(), 16), 0, "floating pointer checksum for %u CPUs", ns[i]);
		hdr = config(&len);
		cr_assert_eq(memcmp(hdr, "PCMP", 4), 0);
		cr_assert_eq(sum(hdr, len), 0, "configuration table checksum for %u CPUs", ns[i]);
	}
}

Test(mptable, floating_pointer_points_at_config_table_after_it)
{
	cr_assert_eq(mptable_write(&fx.m, 1), 0);
	cr_assert_eq(le32_decode(fps() + 4), LAYOUT_MPTABLE_GPA + 16);
	cr_assert_eq(fps()[8], 1, "length in 16-byte paragraphs");
	cr_assert_eq(fps()[9], 4, "spec revision 1.4");
	cr_assert_eq(fps()[11], 0, "feature byte 1: a configuration table is present");
}

Test(mptable, header_names_local_apic_and_spec_revision)
{
	size_t len;
	const uint8_t *hdr;

	cr_assert_eq(mptable_write(&fx.m, 2), 0);
	hdr = config(&len);
	cr_assert_eq(hdr[6], 4, "spec revision 1.4");
	cr_assert_eq(le32_decode(hdr + 36), LAYOUT_LAPIC_GPA);
	cr_assert_eq(le32_decode(hdr + 28), 0, "no OEM table");
	cr_assert_eq(le16_decode(hdr + 40), 0, "no extended table");
	cr_assert_neq(hdr[8], 0, "OEM id is set");
}

Test(mptable, has_one_processor_entry_per_vcpu)
{
	static const unsigned ns[] = { 1, 2, LAYOUT_MAX_VCPUS };
	struct walk w;

	for (unsigned k = 0; k < 3; k++) {
		cr_assert_eq(mptable_write(&fx.m, ns[k]), 0);
		walk(&w);
		cr_assert_eq(w.count[T_PROCESSOR], ns[k]);
		for (unsigned i = 0; i < ns[k]; i++) {
			const uint8_t *e = w.entry[i];

			cr_assert_eq(e[0], T_PROCESSOR);
			cr_assert_eq(e[1], i, "APIC id is the vCPU index");
			cr_assert_eq(e[2], 0x14, "local APIC version");
			cr_assert_eq(e[3] & 1, 1, "enabled");
			cr_assert_eq((e[3] >> 1) & 1, i == 0, "only CPU 0 is the bootstrap processor");
		}
	}
}

Test(mptable, fits_in_last_kib_of_base_memory)
{
	size_t len;

	cr_assert_eq(mptable_write(&fx.m, LAYOUT_MAX_VCPUS), 0);
	config(&len);
	cr_assert_leq(LAYOUT_MPTABLE_GPA + 16 + len, LAYOUT_BASEMEM_END);
}

Test(mptable, rejects_more_vcpus_than_fit)
{
	cr_assert_eq(mptable_write(&fx.m, LAYOUT_MAX_VCPUS + 1), -E2BIG);
	cr_assert_eq(mptable_write(&fx.m, 255), -E2BIG);
	cr_assert_eq(memcmp(fps(), "\0\0\0\0", 4), 0, "nothing written");
}

Test(mptable, rejects_zero_vcpus)
{
	cr_assert_eq(mptable_write(&fx.m, 0), -EINVAL);
}

Test(mptable, smaller_table_leaves_no_stale_tail)
{
	size_t len;
	const uint8_t *hdr;

	cr_assert_eq(mptable_write(&fx.m, LAYOUT_MAX_VCPUS), 0);
	cr_assert_eq(mptable_write(&fx.m, 1), 0);
	hdr = config(&len);
	for (size_t i = 16 + len; i < LAYOUT_BASEMEM_END - LAYOUT_MPTABLE_GPA; i++)
		cr_assert_eq(fps()[i], 0, "byte 0x%zx after the table", i);
	(void)hdr;
}

Test(mptable, has_pci_and_isa_buses_and_one_ioapic)
{
	struct walk w;
	const uint8_t *io = NULL;

	cr_assert_eq(mptable_write(&fx.m, 4), 0);
	walk(&w);
	cr_assert_eq(w.count[T_BUS], 2);
	cr_assert_eq(w.count[T_IOAPIC], 1);
	for (unsigned i = 0; i < w.n; i++) {
		const uint8_t *e = w.entry[i];

		if (e[0] == T_BUS && e[1] == 0)
			cr_assert_eq(memcmp(e + 2, "PCI   ", 6), 0);
		if (e[0] == T_BUS && e[1] == 1)
			cr_assert_eq(memcmp(e + 2, "ISA   ", 6), 0);
		if (e[0] == T_IOAPIC)
			io = e;
	}
	cr_assert_not_null(io);
	cr_assert_eq(io[1], 4, "IOAPIC id follows the CPUs' APIC ids");
	cr_assert_eq(io[2], 0x11, "IOAPIC version");
	cr_assert_eq(io[3] & 1, 1, "enabled");
	cr_assert_eq(le32_decode(io + 4), LAYOUT_IOAPIC_GPA);
}

Test(mptable, routes_isa_irqs_to_same_ioapic_pin_like_kvm)
{
	struct walk w;

	cr_assert_eq(mptable_write(&fx.m, 2), 0);
	walk(&w);
	for (uint8_t irq = 0; irq < 16; irq++) {
		const uint8_t *e = find_intr(&w, T_IOINTR, 1, irq);

		cr_assert_not_null(e, "ISA IRQ %u has a route", irq);
		cr_assert_eq(e[1], 0, "vectored interrupt");
		cr_assert_eq(le16_decode(e + 2), 0, "polarity and trigger conform to ISA");
		cr_assert_eq(e[6], 2, "to the IOAPIC");
		cr_assert_eq(e[7], irq, "GSI n on pin n, the PIT on pin 0");
	}
}

Test(mptable, routes_pci_slots_inta_to_pins_16_to_23_level_high)
{
	struct walk w;
	unsigned pci = 0;

	cr_assert_eq(mptable_write(&fx.m, 2), 0);
	walk(&w);
	for (uint8_t slot = 1; slot <= LAYOUT_IOAPIC_PINS - LAYOUT_PCI_IRQ_BASE; slot++) {
		const uint8_t *e = find_intr(&w, T_IOINTR, 0, (uint8_t)(slot << 2));

		cr_assert_not_null(e, "PCI slot %u INTA# has a route", slot);
		cr_assert_eq(le16_decode(e + 2) & 3, 1, "active high");
		cr_assert_eq((le16_decode(e + 2) >> 2) & 3, 3, "level triggered");
		cr_assert_eq(e[7], LAYOUT_PCI_IRQ_BASE + slot - 1);
	}
	for (unsigned i = 0; i < w.n; i++)
		pci += w.entry[i][0] == T_IOINTR && w.entry[i][4] == 0;
	cr_assert_eq(pci, 8, "one route per IOAPIC pin from 16 to 23");
}

Test(mptable, local_interrupts_are_extint_on_lint0_and_nmi_on_lint1)
{
	struct walk w;

	cr_assert_eq(mptable_write(&fx.m, 2), 0);
	walk(&w);
	cr_assert_eq(w.count[T_LINTR], 2);
	for (unsigned i = 0; i < w.n; i++) {
		const uint8_t *e = w.entry[i];

		if (e[0] != T_LINTR)
			continue;
		cr_assert(e[1] == 3 || e[1] == 1, "ExtINT or NMI");
		cr_assert_eq(e[7], e[1] == 3 ? 0 : 1, "ExtINT on LINT0, NMI on LINT1");
		cr_assert_eq(e[6], 0xff, "every local APIC");
	}
}
