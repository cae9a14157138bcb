/* The dirty-ring backend: per-vCPU rings of written pages, harvested and reset. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * KVM_CAP_DIRTY_LOG_RING (Documentation/virt/kvm/api.rst): each vCPU owns a ring of
 * struct kvm_dirty_gfn {flags, slot, offset} that KVM fills as the vCPU first writes a
 * write-protected page of a slot with KVM_MEM_LOG_DIRTY_PAGES. An entry belongs to us
 * once its flags hold DIRTY; we record it and hand it back by storing RESET; then
 * KVM_RESET_DIRTY_RINGS (a VM ioctl) frees the RESET entries and write-protects their
 * pages again. With the _ACQ_REL flavour (preferred) the flags load must be an acquire
 * and the store a release, which is what we do on either flavour.
 *
 * A vCPU whose ring is nearly full exits with KVM_EXIT_DIRTY_RING_FULL; its own thread
 * then harvests under dirty.lock into dirty.harvest (the bitmaps the next fetch hands out to
 * every consumer), resets, and runs on. Nothing is dropped: harvest keeps the pages until
 * a fetch of their region takes them (or the last consumer goes, and nobody wants them).
 *
 * The ring does not deduplicate: an emulated instruction logs a page each time it writes
 * it. 64 KiB (4096 entries) per vCPU absorbs a round of a few thousand pages between
 * fetches; a busier guest takes ring-full exits, which cost a harvest each, no data.
 */
#define DIRTY_RING_BYTES_WANT (64u << 10)
#define DIRTY_RING_BYTES_MIN (4u << 10)

int dirty_ring_enable(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL };
	int max, rc;
	uint32_t bytes = DIRTY_RING_BYTES_WANT;

	max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING_ACQ_REL);
	if (max <= 0) {
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
		max = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
	}
	if (max < (int)DIRTY_RING_BYTES_MIN) {
		snprintf(err, errlen, "this KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING): "
			 "use the dirty bitmap instead");
		return -ENOTSUP;
	}
	while (bytes > (uint32_t)max)
		bytes /= 2;
	cap.args[0] = bytes;
	if (ioctl(vm->vm_fd, KVM_ENABLE_CAP, &cap) < 0) {
		rc = -errno;
		snprintf(err, errlen, "enabling a %u-byte dirty ring: %s", bytes, strerror(-rc));
		return rc;
	}
	vm->dirty.ring_bytes = bytes;
	vm->dirty.ring_entries = bytes / sizeof(struct kvm_dirty_gfn);
	return 0;
}

int dirty_ring_vcpu_map(struct vcpu *v)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	p = mmap(NULL, v->vm->dirty.ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
		 (off_t)KVM_DIRTY_LOG_PAGE_OFFSET * page);
	if (p == MAP_FAILED)
		return -errno;
	v->ring = p;
	v->ring_next = 0;
	return 0;
}

void dirty_ring_vcpu_unmap(struct vcpu *v)
{
	if (v->ring)
		munmap(v->ring, v->vm->dirty.ring_bytes);
	v->ring = NULL;
}

/* Record page offset of slot, if it names a page of our RAM. vm->dirty.lock held. */
static void ring_record(struct vm *vm, uint32_t slot, uint64_t offset)
{
	unsigned as_id = slot >> 16, id = slot & 0xffff;

	if (as_id != 0 || id >= vm->mem.nregions ||
	    offset >= vm->mem.region[id].bytes / GUEST_PAGE_BYTES)
		return; /* not a slot we made: nothing of ours to copy */
	vm->dirty.harvest[id][offset / 64] |= 1ULL << (offset % 64);
}

/* Harvest v's ring from ring_next on. Returns the entries taken. vm->dirty.lock held. */
static uint32_t ring_harvest(struct vm *vm, struct vcpu *v)
{
	uint32_t mask = vm->dirty.ring_entries - 1, n = 0;

	while (n < vm->dirty.ring_entries) {
		struct kvm_dirty_gfn *g = &v->ring[v->ring_next & mask];
		uint32_t flags = __atomic_load_n(&g->flags, __ATOMIC_ACQUIRE);

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		ring_record(vm, g->slot, g->offset);
		__atomic_store_n(&g->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
		n++;
	}
	vm->dirty.ring_harvested += n;
	return n;
}

int dirty_ring_collect(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		if (vm->vcpu[i].ring)
			n += ring_harvest(vm, &vm->vcpu[i]);
	}
	if (n && ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		return -errno;
	return 0;
}

int dirty_ring_full(struct vcpu *v)
{
	struct vm *vm = v->vm;
	int rc = 0;

	pthread_mutex_lock(&vm->dirty.lock);
	vm->dirty.ring_full_exits++;
	if (ring_harvest(vm, v) && ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		rc = -errno;
	pthread_mutex_unlock(&vm->dirty.lock);
	return rc;
}
