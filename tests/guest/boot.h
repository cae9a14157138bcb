/* What the test guest learns from its PVH start info: command line, memory map, RAM size. */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "abi.h"

#define BOOT_CMDLINE_MAX 4096
#define BOOT_MEMMAP_MAX 128

/* A private copy, taken before anything reuses low memory (the AP trampoline does). */
struct boot_info {
	bool valid;                     /* magic matched */
	bool cmdline_truncated;
	char cmdline[BOOT_CMDLINE_MAX]; /* NUL-terminated */
	uint32_t memmap_entries;
	struct pvh_memmap_entry memmap[BOOT_MEMMAP_MAX];
};

/* Copies command line and memory map out of the start info that entry.S saved the address of. */
void boot_info_copy(struct boot_info *bi);

/* True when [gpa, gpa + len) is RAM that entry.S mapped (present, not an MMIO page). */
bool boot_gpa_is_mapped(uint64_t gpa, uint64_t len);

/* Sum of the type-1 (RAM) memmap entries in bytes. */
uint64_t boot_ram_bytes(const struct boot_info *bi);

/* True when one type-1 entry holds all of [gpa, gpa + len) and it is mapped. */
bool boot_ram_contains(const struct boot_info *bi, uint64_t gpa, uint64_t len);

#endif
