/* Copies the PVH start info (command line, memory map) into the image and answers RAM queries. */
#include "boot.h"

#include <stddef.h>

#define PAGE_2M_SHIFT 21
#define PDE_PRESENT 0x1ULL
#define PDE_PCD 0x10ULL

bool boot_gpa_is_mapped(uint64_t gpa, uint64_t len)
{
	uint64_t first, last;

	if (len == 0)
		return true;
	if (gpa + len < gpa)
		return false;
	first = gpa >> PAGE_2M_SHIFT;
	last = (gpa + len - 1) >> PAGE_2M_SHIFT;
	if (last >= (uint64_t)GUEST_PD_COUNT * 512)
		return false;
	for (uint64_t i = first; i <= last; i++) {
		uint64_t pde = boot_pds[i];

		if (!(pde & PDE_PRESENT) || (pde & PDE_PCD))
			return false;
	}
	return true;
}

static void boot_cmdline_copy(struct boot_info *bi, uint64_t gpa)
{
	size_t n = 0;

	/* Byte by byte, checking each 2 MiB page as it is entered: the string's end is unknown. */
	while (n < BOOT_CMDLINE_MAX - 1) {
		if ((n == 0 || ((gpa + n) & ((1ULL << PAGE_2M_SHIFT) - 1)) == 0) &&
		    !boot_gpa_is_mapped(gpa + n, 1))
			break;
		char c = *(const volatile char *)(uintptr_t)(gpa + n);

		if (c == '\0')
			break;
		bi->cmdline[n++] = c;
	}
	if (n == BOOT_CMDLINE_MAX - 1 && boot_gpa_is_mapped(gpa + n, 1) &&
	    *(const volatile char *)(uintptr_t)(gpa + n) != '\0')
		bi->cmdline_truncated = true;
	bi->cmdline[n] = '\0';
}

void boot_info_copy(struct boot_info *bi)
{
	const struct pvh_start_info *si;
	uint32_t n;

	bi->valid = false;
	bi->cmdline_truncated = false;
	bi->cmdline[0] = '\0';
	bi->memmap_entries = 0;
	if (!boot_gpa_is_mapped(boot_start_info_gpa, sizeof(*si)))
		return;
	si = (const struct pvh_start_info *)(uintptr_t)boot_start_info_gpa;
	if (si->magic != PVH_START_MAGIC)
		return;
	bi->valid = true;
	if (si->cmdline_paddr)
		boot_cmdline_copy(bi, si->cmdline_paddr);
	if (si->version < 1)
		return;
	n = si->memmap_entries;
	if (n > BOOT_MEMMAP_MAX)
		n = BOOT_MEMMAP_MAX;
	if (!boot_gpa_is_mapped(si->memmap_paddr, (uint64_t)n * sizeof(struct pvh_memmap_entry)))
		return;
	const struct pvh_memmap_entry *mm = (const void *)(uintptr_t)si->memmap_paddr;

	for (uint32_t i = 0; i < n; i++)
		bi->memmap[i] = mm[i];
	bi->memmap_entries = n;
}

uint64_t boot_ram_bytes(const struct boot_info *bi)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < bi->memmap_entries; i++) {
		if (bi->memmap[i].type == 1)
			sum += bi->memmap[i].size;
	}
	return sum;
}

bool boot_ram_contains(const struct boot_info *bi, uint64_t gpa, uint64_t len)
{
	if (gpa + len < gpa)
		return false;
	for (uint32_t i = 0; i < bi->memmap_entries; i++) {
		const struct pvh_memmap_entry *e = &bi->memmap[i];

		if (e->type != 1 || e->addr + e->size < e->addr)
			continue;
		if (gpa >= e->addr && gpa + len <= e->addr + e->size)
			return boot_gpa_is_mapped(gpa, len);
	}
	return false;
}
