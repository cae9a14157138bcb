/* Guest physical address layout shared by the loaders, the tables and the devices. */
#ifndef VMM_X86_LAYOUT_H
#define VMM_X86_LAYOUT_H

/*
 * Guest physical memory map (x86_64):
 *
 *   0x0000_0000  real-mode IVT and BDA (left zero)
 *   0x0000_0500  boot GDT                        LAYOUT_GDT_GPA
 *   0x0000_6000  PVH hvm_start_info + memmap      LAYOUT_PVH_INFO_GPA
 *   0x0000_7000  Linux zero page (boot_params)   LAYOUT_ZERO_PAGE_GPA
 *   0x0000_8000  AP trampoline area (guest's own use)
 *   0x0000_9000  boot page tables: PML4, PDPT, 4 PDs (identity map of 4 GiB, 2 MiB pages)
 *   0x0002_0000  kernel command line (up to 64 KiB) LAYOUT_CMDLINE_GPA
 *   0x0009_fc00  MP table (in the last KiB of base memory, e820 reserved)
 *   0x000e_0000  ACPI tables (e820 reserved)      LAYOUT_ACPI_GPA
 *   0x0010_0000  kernel (1 MiB), then free RAM; initrd at the top of low RAM
 *   0xc000_0000  PCI hole: 32-bit MMIO BARs, IOAPIC 0xfec0_0000, LAPIC 0xfee0_0000
 *   0x1_0000_0000 RAM beyond LAYOUT_LOWMEM_TOP continues here
 *
 * Changing a fixed address here changes what restored guests expect: it requires a
 * snapshot FORMAT_VERSION bump.
 */
#define LAYOUT_GDT_GPA          0x500ULL
#define LAYOUT_PVH_INFO_GPA     0x6000ULL
#define LAYOUT_ZERO_PAGE_GPA    0x7000ULL
#define LAYOUT_TRAMPOLINE_GPA   0x8000ULL
#define LAYOUT_PML4_GPA         0x9000ULL
#define LAYOUT_PDPT_GPA         0xa000ULL
#define LAYOUT_PD_GPA           0xb000ULL /* four pages: 0xb000..0xefff */
#define LAYOUT_CMDLINE_GPA      0x20000ULL
#define LAYOUT_CMDLINE_MAX      0x10000ULL
#define LAYOUT_EBDA_GPA         0x9fc00ULL
#define LAYOUT_MPTABLE_GPA      LAYOUT_EBDA_GPA
#define LAYOUT_BASEMEM_END      0xa0000ULL
#define LAYOUT_ACPI_GPA         0xe0000ULL
#define LAYOUT_BIOS_END         0x100000ULL
#define LAYOUT_KERNEL_GPA       0x100000ULL
#define LAYOUT_LOWMEM_TOP       0xc0000000ULL /* start of the PCI hole */
#define LAYOUT_PCI_MMIO_GPA     0xc0000000ULL
#define LAYOUT_PCI_MMIO_BYTES   0x20000000ULL
#define LAYOUT_IOAPIC_GPA       0xfec00000ULL
#define LAYOUT_LAPIC_GPA        0xfee00000ULL
#define LAYOUT_HIGHMEM_GPA      0x100000000ULL

/* Legacy I/O ports the VMM emulates. */
#define LAYOUT_PORT_COM1        0x3f8
#define LAYOUT_IRQ_COM1         4
#define LAYOUT_PORT_I8042       0x60   /* 0x60 and 0x64: enough of an i8042 to reset */
#define LAYOUT_PORT_PM_BASE     0x600  /* ACPI PM1a event block (4 bytes) */
#define LAYOUT_PORT_PM1A_CNT    0x604  /* ACPI PM1a control: SLP_EN (any SLP_TYP) powers off */
#define LAYOUT_PM1_SLP_EN       (1u << 13)
#define LAYOUT_PORT_PCI_CONFIG  0xcf8  /* configuration mechanism #1: 0xcf8..0xcff */
#define LAYOUT_PCI_IO_BASE      0xc000 /* I/O BARs are placed from here */

/* PCI INTx: device in slot N (N >= 1) raises INTA on IOAPIC pin LAYOUT_PCI_IRQ_BASE + N - 1. */
#define LAYOUT_PCI_IRQ_BASE     16
#define LAYOUT_IOAPIC_PINS      24

#define LAYOUT_MAX_VCPUS        32

#endif
