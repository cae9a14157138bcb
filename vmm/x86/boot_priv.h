/* Private pieces shared by the kernel loaders: guest writes, e820, placement and CPU state. */
#ifndef VMM_X86_BOOT_PRIV_H
#define VMM_X86_BOOT_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/x86/boot.h"
#include "vmm/guest_mem.h"
#include "util/byteorder.h"
#include "util/range.h"
#include "util/err.h"

#define BOOT_MIB (1ULL << 20)

/*
 * Memory map entry types. The e820 types (Linux zero-page.rst, ACPI "Address Range Types")
 * and Xen's XEN_HVM_MEMMAP_TYPE_* in start_info.h use the same numbers for these two.
 */
#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2

/* The most entries boot_e820_build() produces: 3 below 1 MiB, then one per RAM region. */
#define BOOT_E820_MAX (3 + GUEST_MEM_MAX_REGIONS)

struct boot_e820 {
	uint64_t gpa;
	uint64_t bytes;
	uint32_t type;
};

/* Boot GDT selectors, as Linux's boot protocol names them (__BOOT_CS, __BOOT_DS). */
#define BOOT_SEL_CS  0x10
#define BOOT_SEL_DS  0x18
#define BOOT_SEL_TSS 0x20

/* Which code segment the boot GDT carries at BOOT_SEL_CS, and how the vCPU starts. */
enum boot_cpu_mode {
	BOOT_CPU_LONG,      /* 64-bit code segment, paging on through the identity map */
	BOOT_CPU_PROTECTED, /* 32-bit flat code segment, paging off */
};

/* Where the loaded kernel and initrd went, for the tables that describe them. */
struct boot_plan {
	uint64_t lowmem_top;  /* end of the RAM region that starts at 0 */
	uint64_t kernel_end;  /* first byte above everything the kernel claims */
	uint64_t initrd_gpa;  /* 0 when there is no initrd */
	uint64_t initrd_bytes;
	size_t cmdline_bytes; /* including the NUL */
};

/* Copy len bytes to guest [gpa, gpa + len) through guest_mem_ptr. Returns 0 or -EFAULT. */
int boot_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

/* Fill guest [gpa, gpa + len) with byte. Returns 0 or -EFAULT. */
int boot_mem_fill(const struct guest_mem *m, uint64_t gpa, int byte, uint64_t len);

/*
 * Check that guest RAM starts at 0 and reaches past the fixed tables below 1 MiB, and
 * return the end of that first region in *top. Returns 0 or -ENOMEM with a reason in err.
 */
int boot_lowmem_check(const struct guest_mem *m, uint64_t *top, char *err, size_t errlen);

/*
 * Build the guest memory map from m: RAM below the EBDA, the EBDA/MP table and the BIOS
 * area (LAYOUT_ACPI_GPA..LAYOUT_BIOS_END) reserved, RAM from 1 MiB, and each further
 * region as RAM. Writes at most max entries to out; returns the number written.
 */
unsigned boot_e820_build(const struct guest_mem *m, struct boot_e820 *out, unsigned max);

/*
 * Plan the command line (max_chars characters without the NUL) and the initrd (page
 * aligned, as high as possible, ending at or below initrd_top and starting at or above
 * plan->kernel_end). plan->lowmem_top and plan->kernel_end must be set. Returns 0, or
 * -E2BIG / -ENOMEM with a reason in err. Writes nothing to guest memory.
 */
int boot_plan_place(struct boot_plan *plan, const struct boot_params_in *in, uint64_t max_chars,
		    uint64_t initrd_top, char *err, size_t errlen);

/* Copy the planned command line and initrd into guest memory. Returns 0 or -EFAULT. */
int boot_plan_write(const struct guest_mem *m, const struct boot_plan *plan,
		    const struct boot_params_in *in);

/* Write the boot GDT at LAYOUT_GDT_GPA for mode. Returns 0 or -EFAULT. */
int boot_gdt_write(const struct guest_mem *m, enum boot_cpu_mode mode);

/* Write PML4, PDPT and four PDs identity-mapping 4 GiB with 2 MiB pages. Returns 0 or -EFAULT. */
int boot_pagetables_write(const struct guest_mem *m);

/* Change only what mode's boot protocol defines in sregs (segments, GDT, CRs, EFER). */
void boot_sregs_set(struct kvm_sregs *sregs, enum boot_cpu_mode mode);

/* Content checks for boot_probe: the magics alone, no validation of the rest. */
bool boot_bzimage_probe(const uint8_t *kernel, size_t len);
bool boot_elf_probe(const uint8_t *kernel, size_t len);

/* A well-formed ELF with a PVH entry note. */
bool boot_pvh_probe(const uint8_t *kernel, size_t len);

#endif
