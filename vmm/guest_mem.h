/* Guest RAM as host mappings: bounds-checked translation and the VMM's own dirty marks. */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_PAGE_BYTES 4096ULL
#define GUEST_MEM_MAX_REGIONS 2

/* One contiguous run of guest RAM: [gpa, gpa + bytes) is backed by hva. */
struct guest_region {
	uint64_t gpa;
	uint64_t bytes;
	uint8_t *hva;
	/*
	 * Pages written by device emulation (virtio-blk reads into guest RAM), which KVM's
	 * dirty log never sees. One bit per page, set atomically (release) by any thread
	 * after it wrote the page; fetched and cleared (acquire exchange) by vm_dirty_fetch.
	 * A VM allocates it with its RAM and keeps it to the end, so a device never marks
	 * freed memory; NULL (outside a VM) means nobody is tracking.
	 */
	uint64_t *vmm_dirty;
};

struct guest_mem {
	struct guest_region region[GUEST_MEM_MAX_REGIONS];
	unsigned nregions;
	uint64_t ram_bytes; /* sum of region bytes */
};

/*
 * Translate [gpa, gpa + len) to a host pointer. Returns NULL unless the whole range lies
 * inside one region (overflow-safe), so callers never touch memory outside guest RAM.
 * len 0 is allowed and checks gpa alone.
 */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/*
 * Record that the VMM itself wrote [gpa, gpa + len), after writing it. Ranges outside RAM
 * are ignored.
 */
void guest_mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/*
 * Lay out ram_bytes of guest RAM over hva: below LAYOUT_LOWMEM_TOP, and the rest from
 * LAYOUT_HIGHMEM_GPA. hva must map ram_bytes. Fills m; no allocation.
 */
void guest_mem_layout(struct guest_mem *m, uint8_t *hva, uint64_t ram_bytes);

#endif
