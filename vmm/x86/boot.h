/* Kernel loaders: put a bzImage or a PVH ELF, initrd, command line and tables in guest RAM. */
#ifndef VMM_X86_BOOT_H
#define VMM_X86_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "vmm/guest_mem.h"

enum boot_kind {
	BOOT_KIND_INVALID = 0,
	BOOT_KIND_BZIMAGE, /* Linux x86 boot protocol, entered at the 64-bit entry point */
	BOOT_KIND_PVH,     /* ELF with a XEN_ELFNOTE_PHYS32_ENTRY note, entered in 32-bit mode */
};

struct boot_params_in {
	const uint8_t *kernel; /* whole kernel file */
	size_t kernel_len;
	const uint8_t *initrd; /* NULL when none */
	size_t initrd_len;
	const char *cmdline; /* NUL-terminated, may be "" */
	unsigned ncpus;      /* for the MP table */
};

/* Where the guest starts: the BSP's registers. Other vCPUs wait for INIT/SIPI. */
struct boot_entry {
	enum boot_kind kind;
	struct kvm_regs regs;
};

/* Classify a kernel file by its contents. Returns BOOT_KIND_INVALID for anything else. */
enum boot_kind boot_probe(const uint8_t *kernel, size_t len);

/*
 * Load the kernel described by in into m: kernel image, initrd (top of low RAM, page
 * aligned, below the kernel's initrd_addr_max), command line, zero page with e820 or
 * hvm_start_info with its memmap, MP table, boot GDT and identity page tables. Fills out
 * with the BSP's general registers and sregs (which must hold KVM_GET_SREGS's values on
 * entry: only the fields the boot protocol defines are changed).
 * Returns 0, or -errno with a one-line reason in err (e.g. "initrd of 900 MiB does not fit
 * in 256 MiB of guest RAM: give --mem more"); nothing is written to err on success.
 */
int boot_load(const struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
	      struct kvm_sregs *sregs, char *err, size_t errlen);

/*
 * Lower-level pieces, exported for the unit tests and for boot_load's own use: the same
 * contract as boot_load for one format, without the probe and without the MP table.
 * boot_bzimage_load loads the protected-mode kernel at LAYOUT_KERNEL_GPA and enters its
 * 64-bit entry (load + 0x200) in long mode with RSI = LAYOUT_ZERO_PAGE_GPA.
 * boot_pvh_load loads each PT_LOAD at its p_paddr (all within [1 MiB, top of low RAM))
 * and enters the XEN_ELFNOTE_PHYS32_ENTRY in 32-bit protected mode with EBX =
 * LAYOUT_PVH_INFO_GPA. Errors: -ENOEXEC bad or unsupported file, -ENOMEM kernel or initrd
 * does not fit guest RAM, -E2BIG command line too long.
 */
int boot_bzimage_load(const struct guest_mem *m, const struct boot_params_in *in,
		      struct boot_entry *out, struct kvm_sregs *sregs, char *err, size_t errlen);
int boot_pvh_load(const struct guest_mem *m, const struct boot_params_in *in,
		  struct boot_entry *out, struct kvm_sregs *sregs, char *err, size_t errlen);

/*
 * Write the MP floating pointer and configuration table for ncpus at LAYOUT_MPTABLE_GPA
 * (the last KiB of base memory, which the memory map reserves). Returns 0, -EINVAL for
 * 0 CPUs, -E2BIG above LAYOUT_MAX_VCPUS, or -EFAULT when that KiB is not guest RAM.
 */
int mptable_write(const struct guest_mem *m, unsigned ncpus);

#endif
