/* Intel MultiProcessor Spec 1.4 tables: how the guest finds its CPUs, IOAPIC and IRQ routes. */
#include "vmm/x86/boot.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "vmm/x86/boot_priv.h"
#include "vmm/x86/layout.h"

/*
 * What mptable_write() puts in the last KiB of base memory (MP spec 1.4, chapter 4):
 *
 *   LAYOUT_MPTABLE_GPA
 *   +0x00  MP floating pointer, 16 bytes
 *            0x00 "_MP_"  0x04 u32 config table address  0x08 u8 length (16-byte units)
 *            0x09 u8 spec rev 4  0x0a u8 checksum  0x0b..0x0f feature bytes (0: table present)
 *   +0x10  configuration table header, 44 bytes
 *            0x00 "PCMP"  0x04 u16 base table length  0x06 u8 spec rev  0x07 u8 checksum
 *            0x08 OEM id (8)  0x10 product id (12)  0x1c u32 OEM table  0x20 u16 its size
 *            0x22 u16 entry count  0x24 u32 local APIC address  0x28 u16 ext length
 *            0x2a u8 ext checksum  0x2b reserved
 *          then the entries, ordered by type as the spec asks:
 *            processor (20 bytes) x ncpus   APIC id = index, BSP = 0
 *            bus (8) x 2                    0 "PCI   ", 1 "ISA   "
 *            I/O APIC (8)                   id = ncpus, at LAYOUT_IOAPIC_GPA
 *            I/O interrupt (8) x 16         ISA IRQ n -> pin n
 *            I/O interrupt (8) x 8          PCI slot N INTA# -> pin 16 + N - 1
 *            local interrupt (8) x 2        ExtINT -> LINT0, NMI -> LINT1, all CPUs
 *
 * The routes follow KVM's default GSI routing (GSI n -> IOAPIC pin n, the PIT on GSI 0),
 * not the PC habit of IRQ 0 on pin 2, because KVM delivers the PIT to pin 0.
 */
#define MP_FPS_BYTES        16u
#define MP_HDR_BYTES        44u
#define MP_CPU_BYTES        20u
#define MP_ENTRY_BYTES      8u
#define MP_SPEC_REV         4u

#define MP_ENTRY_PROCESSOR  0u
#define MP_ENTRY_BUS        1u
#define MP_ENTRY_IOAPIC     2u
#define MP_ENTRY_IOINTR     3u
#define MP_ENTRY_LINTR      4u

#define MP_CPU_ENABLED      0x01u
#define MP_CPU_BSP          0x02u
#define MP_CPU_SIGNATURE    0x600u /* family 6, model 0, stepping 0 */
#define MP_CPU_FEATURES     0x201u /* CPUID.1:EDX FPU and APIC */
#define MP_LAPIC_VERSION    0x14u  /* what KVM's local APIC reports */
#define MP_IOAPIC_VERSION   0x11u  /* what KVM's IOAPIC reports */
#define MP_IOAPIC_ENABLED   0x01u

#define MP_INT_INT          0u
#define MP_INT_NMI          1u
#define MP_INT_EXTINT       3u
#define MP_IRQ_CONFORMS     0x0000u
#define MP_IRQ_ACTIVE_HIGH  0x0001u /* polarity, bits 1:0 */
#define MP_IRQ_LEVEL        0x000cu /* trigger mode, bits 3:2 */
#define MP_ALL_LAPICS       0xffu

#define MP_BUS_PCI          0u
#define MP_BUS_ISA          1u
#define MP_NBUSES           2u
#define MP_ISA_IRQS         16u
#define MP_PCI_SLOTS        (LAYOUT_IOAPIC_PINS - LAYOUT_PCI_IRQ_BASE)
#define MP_LINTS            2u

#define MP_FIXED_ENTRIES    (MP_NBUSES + 1 + MP_ISA_IRQS + MP_PCI_SLOTS + MP_LINTS)
#define MP_TABLE_BYTES(n)   (MP_FPS_BYTES + MP_HDR_BYTES + (n) * MP_CPU_BYTES + \
			     MP_FIXED_ENTRIES * MP_ENTRY_BYTES)
#define MP_AREA_BYTES       (LAYOUT_BASEMEM_END - LAYOUT_MPTABLE_GPA)

_Static_assert(MP_TABLE_BYTES(LAYOUT_MAX_VCPUS) <= MP_AREA_BYTES,
	       "the MP table for LAYOUT_MAX_VCPUS must fit the last KiB of base memory");
_Static_assert(LAYOUT_MAX_VCPUS < 0xff, "APIC ids 0..ncpus must stay below the broadcast id");

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0x100 - sum);
}

/* An I/O or local interrupt assignment entry. */
static uint8_t *mp_intr_put(uint8_t *e, uint8_t entry, uint8_t kind, uint16_t flags, uint8_t bus,
			    uint8_t bus_irq, uint8_t dst_id, uint8_t dst_pin)
{
	e[0] = entry;
	e[1] = kind;
	le16_encode(e + 2, flags);
	e[4] = bus;
	e[5] = bus_irq;
	e[6] = dst_id;
	e[7] = dst_pin;
	return e + MP_ENTRY_BYTES;
}

/* Encode the whole table for ncpus into buf (MP_AREA_BYTES, zeroed); returns its bytes. */
static size_t mp_build(uint8_t *buf, unsigned ncpus)
{
	uint8_t *fps = buf, *hdr = buf + MP_FPS_BYTES, *e = hdr + MP_HDR_BYTES;
	uint8_t ioapic_id = (uint8_t)ncpus;
	size_t table_bytes;

	for (unsigned i = 0; i < ncpus; i++) {
		e[0] = MP_ENTRY_PROCESSOR;
		e[1] = (uint8_t)i;
		e[2] = MP_LAPIC_VERSION;
		e[3] = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0);
		le32_encode(e + 4, MP_CPU_SIGNATURE);
		le32_encode(e + 8, MP_CPU_FEATURES);
		e += MP_CPU_BYTES;
	}

	e[0] = MP_ENTRY_BUS;
	e[1] = MP_BUS_PCI;
	memcpy(e + 2, "PCI   ", 6);
	e += MP_ENTRY_BYTES;
	e[0] = MP_ENTRY_BUS;
	e[1] = MP_BUS_ISA;
	memcpy(e + 2, "ISA   ", 6);
	e += MP_ENTRY_BYTES;

	e[0] = MP_ENTRY_IOAPIC;
	e[1] = ioapic_id;
	e[2] = MP_IOAPIC_VERSION;
	e[3] = MP_IOAPIC_ENABLED;
	le32_encode(e + 4, (uint32_t)LAYOUT_IOAPIC_GPA);
	e += MP_ENTRY_BYTES;

	/* ISA: edge, active high, as the bus defines ("conforms"). */
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++)
		e = mp_intr_put(e, MP_ENTRY_IOINTR, MP_INT_INT, MP_IRQ_CONFORMS, MP_BUS_ISA,
				(uint8_t)irq, ioapic_id, (uint8_t)irq);
	/* PCI: source irq is device << 2 | INTx (0 = INTA#); level, active high like KVM. */
	for (unsigned slot = 1; slot <= MP_PCI_SLOTS; slot++)
		e = mp_intr_put(e, MP_ENTRY_IOINTR, MP_INT_INT, MP_IRQ_ACTIVE_HIGH | MP_IRQ_LEVEL,
				MP_BUS_PCI, (uint8_t)(slot << 2), ioapic_id,
				(uint8_t)(LAYOUT_PCI_IRQ_BASE + slot - 1));
	e = mp_intr_put(e, MP_ENTRY_LINTR, MP_INT_EXTINT, MP_IRQ_CONFORMS, MP_BUS_ISA, 0,
			MP_ALL_LAPICS, 0);
	e = mp_intr_put(e, MP_ENTRY_LINTR, MP_INT_NMI, MP_IRQ_CONFORMS, MP_BUS_ISA, 0,
			MP_ALL_LAPICS, 1);

	table_bytes = (size_t)(e - hdr);
	memcpy(hdr, "PCMP", 4);
	le16_encode(hdr + 4, (uint16_t)table_bytes);
	hdr[6] = MP_SPEC_REV;
	memcpy(hdr + 8, "GODWIT  ", 8);
	memcpy(hdr + 16, "GODWIT VM   ", 12);
	le16_encode(hdr + 34, (uint16_t)(ncpus + MP_FIXED_ENTRIES));
	le32_encode(hdr + 36, (uint32_t)LAYOUT_LAPIC_GPA);
	hdr[7] = mp_checksum(hdr, table_bytes);

	memcpy(fps, "_MP_", 4);
	le32_encode(fps + 4, (uint32_t)(LAYOUT_MPTABLE_GPA + MP_FPS_BYTES));
	fps[8] = 1;
	fps[9] = MP_SPEC_REV;
	fps[10] = mp_checksum(fps, MP_FPS_BYTES);
	return MP_FPS_BYTES + table_bytes;
}

int mptable_write(const struct guest_mem *m, unsigned ncpus)
{
	uint8_t buf[MP_AREA_BYTES];
	size_t bytes;

	if (ncpus == 0)
		return -EINVAL;
	if (ncpus > LAYOUT_MAX_VCPUS || MP_TABLE_BYTES((uint64_t)ncpus) > MP_AREA_BYTES)
		return -E2BIG;
	memset(buf, 0, sizeof(buf));
	bytes = mp_build(buf, ncpus);
	assert(bytes == MP_TABLE_BYTES(ncpus));
	(void)bytes;
	/* The whole KiB, so a smaller table never leaves a stale tail behind. */
	return boot_mem_write(m, LAYOUT_MPTABLE_GPA, buf, sizeof(buf));
}
