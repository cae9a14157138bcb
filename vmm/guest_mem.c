/* Guest RAM as host mappings: bounds-checked translation and the VMM's own dirty marks. */
#include "vmm/guest_mem.h"

#include <stdatomic.h>

#include "vmm/x86/layout.h"

static const struct guest_region *region_find(const struct guest_mem *m, uint64_t gpa)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		if (gpa - m->region[i].gpa < m->region[i].bytes)
			return &m->region[i];
	}
	return NULL;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct guest_region *r = region_find(m, gpa);
	uint64_t off;

	if (!r)
		return NULL;
	off = gpa - r->gpa;
	if (len > r->bytes - off)
		return NULL;
	return r->hva + off;
}

void guest_mem_mark_dirty(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct guest_region *r;
	uint64_t first, last;

	if (len == 0)
		return;
	r = region_find(m, gpa);
	if (!r || !r->vmm_dirty)
		return;
	if (len > r->bytes - (gpa - r->gpa))
		len = r->bytes - (gpa - r->gpa);
	first = (gpa - r->gpa) / GUEST_PAGE_BYTES;
	last = (gpa - r->gpa + len - 1) / GUEST_PAGE_BYTES;
	for (uint64_t pg = first; pg <= last; pg++) {
		_Atomic uint64_t *word = (_Atomic uint64_t *)&r->vmm_dirty[pg / 64];

		/* Release: whoever sees the bit (an acquire exchange in vm_dirty_fetch) sees
		 * the data written before it. */
		atomic_fetch_or_explicit(word, 1ULL << (pg % 64), memory_order_release);
	}
}

void guest_mem_layout(struct guest_mem *m, uint8_t *hva, uint64_t ram_bytes)
{
	uint64_t low = ram_bytes < LAYOUT_LOWMEM_TOP ? ram_bytes : LAYOUT_LOWMEM_TOP;

	*m = (struct guest_mem){ .ram_bytes = ram_bytes };
	m->region[m->nregions++] = (struct guest_region){ .gpa = 0, .bytes = low, .hva = hva };
	if (ram_bytes > low) {
		m->region[m->nregions++] = (struct guest_region){
			.gpa = LAYOUT_HIGHMEM_GPA, .bytes = ram_bytes - low, .hva = hva + low,
		};
	}
}
