/* Dirty-page tracking: RAM regions, the consumers of the log, and the bitmap backend. */
#include "vmm/vm_state.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vm_priv.h"

/*
 * Why a fetch never loses a write (the caller copies the reported pages after it returns):
 *
 * Bitmap backend, with KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
 *   1. KVM_GET_DIRTY_LOG copies KVM's bitmap; nothing is cleared or protected yet.
 *   2. KVM_CLEAR_DIRTY_LOG clears exactly the bits step 1 saw and write-protects those
 *      pages again (one call over the whole slot: first_page 0 is 64-page aligned).
 *   3. The caller copies the pages.
 *   A guest write to page P lands in one of three places. Before 1: P is reported and its
 *   copy (3) comes after, so it holds the write. Between 1 and 2: if P's bit was already
 *   set, P was writable, the write is not logged again, but P is reported and copied
 *   after 2, so the copy holds it; if P's bit was clear, P was protected, the write faults
 *   and sets the bit, and step 2 leaves it alone (it clears only what step 1 saw), so the
 *   next fetch reports P. After 2: P was protected, the write is logged for the next
 *   fetch. Without manual protect, KVM_GET_DIRTY_LOG does 1 and 2 in one atomic step.
 *
 * Ring backend (dirty_ring.c): harvest the entries (acquire on flags), mark them RESET
 * (release), then KVM_RESET_DIRTY_RINGS re-protects those pages; the caller copies after
 * that, so a write made between harvest and reset (not logged again: the page was still
 * writable) is in the copy, and a write after the reset is logged anew.
 *
 * Pages the VMM writes (virtio-blk reads into guest RAM): the device writes the data, then
 * sets the page's bit with release order (guest_mem_mark_dirty); a fetch takes each word
 * with an acquire exchange. A mark seen by this fetch comes with its data for the copy; a
 * mark made after the exchange is reported by the next fetch.
 *
 * Many consumers (vm_state.h): what one fetch takes from those sources is OR-ed into every
 * registered consumer's pending bitmap before the caller gets its own, so the steps above
 * hold for each consumer as if it were alone. A consumer starts with every page pending,
 * whatever the backend: no reliance on KVM_DIRTY_LOG_INITIALLY_SET, which only saves KVM
 * the initial write-protect, and no reliance on when logging was turned on.
 */

#define BITS_PER_WORD 64

static uint64_t region_pages(const struct guest_region *r)
{
	return r->bytes / GUEST_PAGE_BYTES;
}

static size_t region_words(const struct guest_region *r)
{
	return (size_t)((region_pages(r) + BITS_PER_WORD - 1) / BITS_PER_WORD);
}

unsigned vm_ram_nregions(const struct vm *vm)
{
	return vm->mem.nregions;
}

void vm_ram_region(const struct vm *vm, unsigned i, struct vm_ram_region *out)
{
	const struct guest_region *r = &vm->mem.region[i];

	*out = (struct vm_ram_region){ .gpa = r->gpa, .bytes = r->bytes, .hva = r->hva };
}

enum vm_dirty_backend vm_dirty_backend(const struct vm *vm)
{
	return vm->dirty.backend;
}

/* Turn on manual protect (and initially-set) if KVM offers it; not an error if not. */
static void dirty_bitmap_enable(struct vm *vm)
{
	int mask = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
	struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 };

	if (mask <= 0 || !(mask & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
		return;
	cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;
	if (mask & KVM_DIRTY_LOG_INITIALLY_SET)
		cap.args[0] |= KVM_DIRTY_LOG_INITIALLY_SET;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0)
		return;
	vm->caps.manual_protect = true;
	vm->caps.initially_set = (cap.args[0] & KVM_DIRTY_LOG_INITIALLY_SET) != 0;
}

int dirty_init(struct vm *vm, bool ring, char *err, size_t errlen)
{
	int rc;

	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		size_t words = region_words(&vm->mem.region[i]);

		vm->mem.region[i].vmm_dirty = calloc(words, sizeof(uint64_t));
		vm->dirty.scratch[i] = calloc(words, sizeof(uint64_t));
		if (ring)
			vm->dirty.harvest[i] = calloc(words, sizeof(uint64_t));
		if (!vm->mem.region[i].vmm_dirty || !vm->dirty.scratch[i] ||
		    (ring && !vm->dirty.harvest[i])) {
			snprintf(err, errlen, "dirty page bitmaps: out of memory");
			return -ENOMEM;
		}
	}
	if (ring) {
		rc = dirty_ring_enable(vm, err, errlen);
		if (rc < 0)
			return rc;
		vm->dirty.backend = VM_DIRTY_RING;
	} else {
		dirty_bitmap_enable(vm);
		vm->dirty.backend = VM_DIRTY_BITMAP;
	}
	return 0;
}

static void consumer_free(struct vm_dirty_consumer *c)
{
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		free(c->pending[i]);
	free(c);
}

void dirty_fini(struct vm *vm)
{
	for (unsigned k = 0; k < VM_DIRTY_MAX_CONSUMERS; k++) {
		if (vm->dirty.consumer[k])
			consumer_free(vm->dirty.consumer[k]);
		vm->dirty.consumer[k] = NULL;
	}
	vm->dirty.nconsumers = 0;
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		free(vm->mem.region[i].vmm_dirty);
		vm->mem.region[i].vmm_dirty = NULL;
		free(vm->dirty.scratch[i]);
		free(vm->dirty.harvest[i]);
		vm->dirty.scratch[i] = vm->dirty.harvest[i] = NULL;
	}
}

int dirty_slot_set_logging(struct vm *vm, unsigned i, bool on)
{
	const struct guest_region *r = &vm->mem.region[i];
	struct kvm_userspace_memory_region slot = {
		.slot = i,
		.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		.guest_phys_addr = r->gpa,
		.memory_size = r->bytes,
		.userspace_addr = (uintptr_t)r->hva,
	};

	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		return -errno;
	return 0;
}

/* Every page of region r set in bitmap (words beyond the region's pages left clear). */
static void bitmap_fill(const struct guest_region *r, uint64_t *bitmap)
{
	uint64_t pages = region_pages(r);
	size_t words = region_words(r);

	for (size_t k = 0; k + 1 < words; k++)
		bitmap[k] = ~0ULL;
	if (words)
		bitmap[words - 1] = pages % BITS_PER_WORD ? (1ULL << (pages % BITS_PER_WORD)) - 1
							  : ~0ULL;
}

/* The first consumer: KVM logs writes from here on. vm->dirty.lock held. */
static int logging_on(struct vm *vm)
{
	unsigned i;
	int rc;

	for (i = 0; i < vm->mem.nregions; i++) {
		rc = dirty_slot_set_logging(vm, i, true);
		if (rc < 0)
			goto err_undo;
	}
	/* Entries a ring still holds from an earlier session count for nothing now. */
	if (vm->dirty.backend == VM_DIRTY_RING) {
		rc = dirty_ring_collect(vm);
		if (rc < 0)
			goto err_undo;
		for (i = 0; i < vm->mem.nregions; i++)
			memset(vm->dirty.harvest[i], 0,
			       region_words(&vm->mem.region[i]) * sizeof(uint64_t));
	}
	return 0;
err_undo:
	while (i-- > 0)
		dirty_slot_set_logging(vm, i, false);
	return rc;
}

/* The last consumer went: memory slots back to normal. vm->dirty.lock held. */
static void logging_off(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++)
		dirty_slot_set_logging(vm, i, false);
	/* Drain what the rings logged before the flags went off, so none fills up later. */
	if (vm->dirty.backend == VM_DIRTY_RING)
		dirty_ring_collect(vm);
}

int vm_dirty_register(struct vm *vm, struct vm_dirty_consumer **out)
{
	struct vm_dirty_consumer *c = calloc(1, sizeof(*c));
	unsigned slot;
	int rc = 0;

	if (!c)
		return -ENOMEM;
	c->vm = vm;
	c->disk_view = -1;
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		c->pending[i] = malloc(region_words(&vm->mem.region[i]) * sizeof(uint64_t));
		if (!c->pending[i]) {
			consumer_free(c);
			return -ENOMEM;
		}
		bitmap_fill(&vm->mem.region[i], c->pending[i]);
	}
	pthread_mutex_lock(&vm->dirty.lock);
	for (slot = 0; slot < VM_DIRTY_MAX_CONSUMERS && vm->dirty.consumer[slot]; slot++)
		;
	if (slot == VM_DIRTY_MAX_CONSUMERS) {
		rc = -EBUSY;
		goto out;
	}
	if (vm->blk) {
		rc = virtio_blk_view_add(vm->blk, &c->disk_view);
		if (rc == -ENOTSUP) /* read-only: no log, and nothing changes */
			rc = 0;
		if (rc < 0)
			goto out;
	}
	if (vm->dirty.nconsumers == 0) {
		rc = logging_on(vm);
		if (rc < 0) {
			if (c->disk_view >= 0)
				virtio_blk_view_remove(vm->blk, c->disk_view);
			goto out;
		}
	}
	vm->dirty.consumer[slot] = c;
	vm->dirty.nconsumers++;
	*out = c;
out:
	pthread_mutex_unlock(&vm->dirty.lock);
	if (rc < 0)
		consumer_free(c);
	return rc;
}

void vm_dirty_unregister(struct vm_dirty_consumer *c)
{
	struct vm *vm;

	if (!c)
		return;
	vm = c->vm;
	pthread_mutex_lock(&vm->dirty.lock);
	for (unsigned k = 0; k < VM_DIRTY_MAX_CONSUMERS; k++) {
		if (vm->dirty.consumer[k] == c) {
			vm->dirty.consumer[k] = NULL;
			vm->dirty.nconsumers--;
		}
	}
	if (c->disk_view >= 0)
		virtio_blk_view_remove(vm->blk, c->disk_view);
	if (vm->dirty.nconsumers == 0)
		logging_off(vm);
	pthread_mutex_unlock(&vm->dirty.lock);
	consumer_free(c);
}

/* KVM's log for region i, got and cleared (re-protected), into scratch (overwritten). */
static int dirty_bitmap_take(struct vm *vm, unsigned i, uint64_t *scratch)
{
	const struct guest_region *r = &vm->mem.region[i];
	size_t words = region_words(r);
	struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = scratch };
	bool any = false;

	if (ioctl(vm->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
		return -errno;
	for (size_t k = 0; k < words && !any; k++)
		any = scratch[k] != 0;
	if (vm->caps.manual_protect && any) {
		struct kvm_clear_dirty_log clear = {
			.slot = i,
			.first_page = 0,
			.num_pages = (uint32_t)region_pages(r),
			.dirty_bitmap = scratch,
		};

		if (ioctl(vm->vm_fd, KVM_CLEAR_DIRTY_LOG, &clear) < 0)
			return -errno;
	}
	return 0;
}

int vm_dirty_fetch(struct vm_dirty_consumer *c, unsigned i, uint64_t *bitmap)
{
	struct vm *vm = c->vm;
	const struct guest_region *r;
	uint64_t *scratch;
	size_t words;
	int rc = 0;

	if (i >= vm->mem.nregions)
		return -EINVAL;
	r = &vm->mem.region[i];
	words = region_words(r);
	pthread_mutex_lock(&vm->dirty.lock);
	scratch = vm->dirty.scratch[i];
	/* 1. Take what the sources gathered since anyone's last fetch of region i. */
	if (vm->dirty.backend == VM_DIRTY_RING) {
		rc = dirty_ring_collect(vm);
		if (rc < 0)
			goto out;
		memcpy(scratch, vm->dirty.harvest[i], words * sizeof(uint64_t));
		memset(vm->dirty.harvest[i], 0, words * sizeof(uint64_t));
	} else {
		rc = dirty_bitmap_take(vm, i, scratch);
		if (rc < 0)
			goto out;
	}
	/* 2. Hand it to every consumer; 3. give the caller its own pending, and clear that. */
	for (size_t k = 0; k < words; k++) {
		_Atomic uint64_t *w = (_Atomic uint64_t *)&r->vmm_dirty[k];
		uint64_t got = scratch[k] | atomic_exchange_explicit(w, 0, memory_order_acquire);

		if (got)
			for (unsigned n = 0; n < VM_DIRTY_MAX_CONSUMERS; n++)
				if (vm->dirty.consumer[n])
					vm->dirty.consumer[n]->pending[i][k] |= got;
		bitmap[k] |= c->pending[i][k];
		c->pending[i][k] = 0;
	}
	c->epoch++;
out:
	pthread_mutex_unlock(&vm->dirty.lock);
	return rc;
}

int vm_dirty_fetch_disk(struct vm_dirty_consumer *c, uint64_t *bitmap)
{
	struct vm *vm = c->vm;
	int rc;

	if (!vm->blk)
		return -ENODEV;
	if (c->disk_view < 0)
		return -ENOTSUP;
	pthread_mutex_lock(&vm->dirty.lock);
	rc = virtio_blk_view_fetch(vm->blk, c->disk_view, bitmap);
	pthread_mutex_unlock(&vm->dirty.lock);
	return rc;
}

uint64_t vm_dirty_epoch(const struct vm_dirty_consumer *c)
{
	return c->epoch;
}
