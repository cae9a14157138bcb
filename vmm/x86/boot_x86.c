/* What both kernel loaders share: dispatch by content, memory map, placement, GDT, paging. */
#include "vmm/x86/boot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/x86/boot_priv.h"
#include "vmm/x86/layout.h"

/* Control register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1). */
#define X86_CR0_PE    (1ULL << 0)
#define X86_CR0_ET    (1ULL << 4)
#define X86_CR0_PG    (1ULL << 31)
#define X86_CR4_PAE   (1ULL << 5)
#define X86_EFER_LME  (1ULL << 8)
#define X86_EFER_LMA  (1ULL << 10)

/* Page table entry bits: present, writable, and PS (a 2 MiB page in a PD entry). */
#define X86_PTE_P     (1ULL << 0)
#define X86_PTE_RW    (1ULL << 1)
#define X86_PTE_PS    (1ULL << 7)

#define BOOT_PAGE_BYTES    4096u
#define BOOT_PTES_PER_PAGE 512u
#define BOOT_PD_PAGES      4u /* 4 x 512 x 2 MiB = 4 GiB */

/*
 * The boot GDT at LAYOUT_GDT_GPA, 8 bytes per descriptor:
 *
 *   0x00  null
 *   0x08  null (Linux keeps entry 1 unused too)
 *   0x10  __BOOT_CS: flat code, 64-bit (L=1) or 32-bit (D=1) by mode
 *   0x18  __BOOT_DS: flat read/write data, 4 GiB
 *   0x20  32-bit TSS, base 0, limit 0x67: what the PVH ABI wants in TR
 *
 * Descriptor flags are the access byte (bits 0..7) and G, D/B, L, AVL (bits 12..15),
 * packed as Linux's GDT_ENTRY() does. Types carry the accessed bit so the CPU never
 * writes to the table.
 */
#define BOOT_GDT_ENTRIES  5u
#define BOOT_DESC_CODE64  0xa09bu /* G, L, P, S, execute/read accessed */
#define BOOT_DESC_CODE32  0xc09bu /* G, D, P, S, execute/read accessed */
#define BOOT_DESC_DATA    0xc093u /* G, B, P, S, read/write accessed */
#define BOOT_DESC_TSS32   0x008bu /* P, busy 32-bit TSS */
#define BOOT_TSS_LIMIT    0x67u

_Static_assert(LAYOUT_GDT_GPA + BOOT_GDT_ENTRIES * 8 <= LAYOUT_PVH_INFO_GPA,
	       "the boot GDT must not reach the PVH start info page");
_Static_assert(LAYOUT_PD_GPA + BOOT_PD_PAGES * BOOT_PAGE_BYTES <= LAYOUT_CMDLINE_GPA,
	       "the page directories must not reach the command line");

int boot_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);

	if (!dst)
		return -EFAULT;
	if (len) {
		memcpy(dst, src, len);
		guest_mem_mark_dirty(m, gpa, len);
	}
	return 0;
}

int boot_mem_fill(const struct guest_mem *m, uint64_t gpa, int byte, uint64_t len)
{
	void *dst = guest_mem_ptr(m, gpa, len);

	if (!dst)
		return -EFAULT;
	if (len) {
		memset(dst, byte, len);
		guest_mem_mark_dirty(m, gpa, len);
	}
	return 0;
}

int boot_lowmem_check(const struct guest_mem *m, uint64_t *top, char *err, size_t errlen)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->region[i];

		if (r->gpa != 0)
			continue;
		if (r->bytes <= LAYOUT_BIOS_END) {
			err_set(err, errlen,
				"guest RAM of %llu KiB is too small: the kernel needs more than 1 MiB",
				(unsigned long long)(r->bytes >> 10));
			return -ENOMEM;
		}
		*top = r->bytes;
		return 0;
	}
	err_set(err, errlen, "guest RAM does not start at address 0");
	return -ENOMEM;
}

static unsigned e820_add(struct boot_e820 *out, unsigned n, unsigned max, uint64_t gpa,
			 uint64_t end, uint32_t type)
{
	if (end <= gpa || n >= max)
		return n;
	out[n] = (struct boot_e820){ .gpa = gpa, .bytes = end - gpa, .type = type };
	return n + 1;
}

unsigned boot_e820_build(const struct guest_mem *m, struct boot_e820 *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_region *r = &m->region[i];
		uint64_t end = r->gpa + r->bytes;

		if (r->gpa != 0) {
			n = e820_add(out, n, max, r->gpa, end, BOOT_E820_RAM);
			continue;
		}
		/*
		 * The legacy PC hole: the last KiB of base memory holds the MP table, and
		 * 0xe0000..0xfffff is where ACPI tables and a BIOS would live. Both are
		 * backed by RAM but must not be handed to the guest's allocator. The VGA
		 * window 0xa0000..0xdffff is simply absent.
		 */
		n = e820_add(out, n, max, 0, end < LAYOUT_EBDA_GPA ? end : LAYOUT_EBDA_GPA,
			     BOOT_E820_RAM);
		if (end > LAYOUT_EBDA_GPA)
			n = e820_add(out, n, max, LAYOUT_EBDA_GPA,
				     end < LAYOUT_BASEMEM_END ? end : LAYOUT_BASEMEM_END,
				     BOOT_E820_RESERVED);
		if (end > LAYOUT_ACPI_GPA)
			n = e820_add(out, n, max, LAYOUT_ACPI_GPA,
				     end < LAYOUT_BIOS_END ? end : LAYOUT_BIOS_END,
				     BOOT_E820_RESERVED);
		if (end > LAYOUT_BIOS_END)
			n = e820_add(out, n, max, LAYOUT_BIOS_END, end, BOOT_E820_RAM);
	}
	return n;
}

int boot_plan_place(struct boot_plan *plan, const struct boot_params_in *in, uint64_t max_chars,
		    uint64_t initrd_top, char *err, size_t errlen)
{
	size_t chars = in->cmdline ? strlen(in->cmdline) : 0;
	uint64_t top, bottom, gpa;

	if (max_chars > LAYOUT_CMDLINE_MAX - 1)
		max_chars = LAYOUT_CMDLINE_MAX - 1;
	if (chars > max_chars) {
		err_set(err, errlen,
			"kernel command line of %zu bytes is too long: this kernel takes at most %llu",
			chars, (unsigned long long)max_chars);
		return -E2BIG;
	}
	plan->cmdline_bytes = chars + 1;

	plan->initrd_gpa = 0;
	plan->initrd_bytes = 0;
	if (!in->initrd || in->initrd_len == 0)
		return 0;

	/* Highest page-aligned start whose end stays below top, above the kernel's claim. */
	top = initrd_top < plan->lowmem_top ? initrd_top : plan->lowmem_top;
	bottom = (plan->kernel_end + BOOT_PAGE_BYTES - 1) & ~(uint64_t)(BOOT_PAGE_BYTES - 1);
	gpa = 0;
	if (in->initrd_len <= UINT32_MAX && in->initrd_len <= top)
		gpa = (top - in->initrd_len) & ~(uint64_t)(BOOT_PAGE_BYTES - 1);
	if (gpa == 0 || gpa < bottom) {
		err_set(err, errlen,
			"initrd of %llu MiB does not fit below %llu MiB of guest RAM: "
			"give --mem more or a smaller initrd",
			(unsigned long long)((in->initrd_len + BOOT_MIB - 1) / BOOT_MIB),
			(unsigned long long)(top / BOOT_MIB));
		return -ENOMEM;
	}
	plan->initrd_gpa = gpa;
	plan->initrd_bytes = in->initrd_len;
	return 0;
}

int boot_plan_write(const struct guest_mem *m, const struct boot_plan *plan,
		    const struct boot_params_in *in)
{
	int rc;

	rc = boot_mem_write(m, LAYOUT_CMDLINE_GPA, in->cmdline ? in->cmdline : "",
			    plan->cmdline_bytes);
	if (rc < 0)
		return rc;
	if (plan->initrd_bytes)
		rc = boot_mem_write(m, plan->initrd_gpa, in->initrd, plan->initrd_bytes);
	return rc;
}

/* Encode a descriptor from flags, base and limit (20 bits), as Linux's GDT_ENTRY(). */
static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
	       (uint64_t)(limit & 0x0000ffffu) | ((uint64_t)(limit & 0x000f0000u) << 32) |
	       ((uint64_t)(flags & 0xf0ffu) << 40);
}

static uint64_t gdt_desc(enum boot_cpu_mode mode, unsigned index)
{
	switch (index) {
	case BOOT_SEL_CS / 8:
		return gdt_entry(mode == BOOT_CPU_LONG ? BOOT_DESC_CODE64 : BOOT_DESC_CODE32, 0,
				 0xfffff);
	case BOOT_SEL_DS / 8:
		return gdt_entry(BOOT_DESC_DATA, 0, 0xfffff);
	case BOOT_SEL_TSS / 8:
		return gdt_entry(BOOT_DESC_TSS32, 0, BOOT_TSS_LIMIT);
	default:
		return 0;
	}
}

/* The hidden part of a segment register, decoded from the same descriptor the GDT holds. */
static struct kvm_segment gdt_segment(enum boot_cpu_mode mode, uint16_t selector)
{
	uint64_t d = gdt_desc(mode, selector / 8);
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));
	struct kvm_segment s = {
		.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000),
		.selector = selector,
		.type = (d >> 40) & 0xf,
		.s = (d >> 44) & 1,
		.dpl = (d >> 45) & 3,
		.present = (d >> 47) & 1,
		.avl = (d >> 52) & 1,
		.l = (d >> 53) & 1,
		.db = (d >> 54) & 1,
		.g = (d >> 55) & 1,
	};

	s.limit = s.g ? (limit << 12) | 0xfff : limit;
	return s;
}

int boot_gdt_write(const struct guest_mem *m, enum boot_cpu_mode mode)
{
	uint8_t gdt[BOOT_GDT_ENTRIES * 8];

	for (unsigned i = 0; i < BOOT_GDT_ENTRIES; i++)
		le64_encode(gdt + i * 8, gdt_desc(mode, i));
	return boot_mem_write(m, LAYOUT_GDT_GPA, gdt, sizeof(gdt));
}

int boot_pagetables_write(const struct guest_mem *m)
{
	uint8_t page[BOOT_PAGE_BYTES];
	int rc;

	memset(page, 0, sizeof(page));
	le64_encode(page, LAYOUT_PDPT_GPA | X86_PTE_P | X86_PTE_RW);
	rc = boot_mem_write(m, LAYOUT_PML4_GPA, page, sizeof(page));
	if (rc < 0)
		return rc;

	memset(page, 0, sizeof(page));
	for (unsigned i = 0; i < BOOT_PD_PAGES; i++)
		le64_encode(page + i * 8,
			      (LAYOUT_PD_GPA + i * BOOT_PAGE_BYTES) | X86_PTE_P | X86_PTE_RW);
	rc = boot_mem_write(m, LAYOUT_PDPT_GPA, page, sizeof(page));
	if (rc < 0)
		return rc;

	for (unsigned pd = 0; pd < BOOT_PD_PAGES; pd++) {
		for (unsigned i = 0; i < BOOT_PTES_PER_PAGE; i++) {
			uint64_t gpa = ((uint64_t)pd * BOOT_PTES_PER_PAGE + i) << 21;

			le64_encode(page + i * 8, gpa | X86_PTE_P | X86_PTE_RW | X86_PTE_PS);
		}
		rc = boot_mem_write(m, LAYOUT_PD_GPA + pd * BOOT_PAGE_BYTES, page, sizeof(page));
		if (rc < 0)
			return rc;
	}
	return 0;
}

void boot_sregs_set(struct kvm_sregs *sregs, enum boot_cpu_mode mode)
{
	struct kvm_segment data = gdt_segment(mode, BOOT_SEL_DS);

	/* FS and GS are flat too, so no segment keeps a real-mode limit. */
	sregs->cs = gdt_segment(mode, BOOT_SEL_CS);
	sregs->ds = data;
	sregs->es = data;
	sregs->fs = data;
	sregs->gs = data;
	sregs->ss = data;
	sregs->gdt.base = LAYOUT_GDT_GPA;
	sregs->gdt.limit = BOOT_GDT_ENTRIES * 8 - 1;

	if (mode == BOOT_CPU_LONG) {
		/* Linux 64-bit boot protocol: long mode, paging on, identity map in CR3. */
		sregs->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_PG;
		sregs->cr3 = LAYOUT_PML4_GPA;
		sregs->cr4 = X86_CR4_PAE;
		sregs->efer |= X86_EFER_LME | X86_EFER_LMA;
		return;
	}
	/* PVH: CR0 PE and ET only, CR4 clear, TR a 32-bit TSS with limit 0x67. */
	sregs->tr = gdt_segment(mode, BOOT_SEL_TSS);
	sregs->cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs->cr4 = 0;
	sregs->efer &= ~(X86_EFER_LME | X86_EFER_LMA);
}

enum boot_kind boot_probe(const uint8_t *kernel, size_t len)
{
	if (!kernel)
		return BOOT_KIND_INVALID;
	if (boot_bzimage_probe(kernel, len))
		return BOOT_KIND_BZIMAGE;
	if (boot_pvh_probe(kernel, len))
		return BOOT_KIND_PVH;
	return BOOT_KIND_INVALID;
}

int boot_load(const struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
	      struct kvm_sregs *sregs, char *err, size_t errlen)
{
	int rc;

	if (!m || !in || !out || !sregs || !in->kernel) {
		err_set(err, errlen, "no kernel to load");
		return -EINVAL;
	}
	if (in->ncpus == 0 || in->ncpus > LAYOUT_MAX_VCPUS) {
		err_set(err, errlen, "%u vCPUs: the MP table describes 1 to %d", in->ncpus,
			LAYOUT_MAX_VCPUS);
		return in->ncpus ? -E2BIG : -EINVAL;
	}

	switch (boot_probe(in->kernel, in->kernel_len)) {
	case BOOT_KIND_BZIMAGE:
		rc = boot_bzimage_load(m, in, out, sregs, err, errlen);
		break;
	case BOOT_KIND_PVH:
		rc = boot_pvh_load(m, in, out, sregs, err, errlen);
		break;
	default:
		/* Let the loader that nearly matched explain what is wrong. */
		if (boot_elf_probe(in->kernel, in->kernel_len)) {
			rc = boot_pvh_load(m, in, out, sregs, err, errlen);
		} else if (in->kernel_len >= 0x200 && le16_decode(in->kernel + 0x1fe) == 0xaa55) {
			rc = boot_bzimage_load(m, in, out, sregs, err, errlen);
		} else {
			err_set(err, errlen,
				"not a Linux bzImage or an ELF with a PVH entry note "
				"(XEN_ELFNOTE_PHYS32_ENTRY)");
			rc = -ENOEXEC;
		}
		break;
	}
	if (rc < 0)
		return rc;

	rc = mptable_write(m, in->ncpus);
	if (rc < 0) {
		err_set(err, errlen, "MP table for %u vCPUs: %s", in->ncpus, strerror(-rc));
		return rc;
	}
	return 0;
}
