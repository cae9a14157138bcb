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
 *
 * A KVM that overruns its ring. KVM stops a vCPU once its ring holds all but 64 entries
 * (the soft limit), and a push into a full ring overwrites the oldest entry (it only
 * warns). A hypervisor that logs a batch of emulated writes before it looks at the
 * soft-full request (PVM, pvm_emul_batch) overruns the ring: here in every run of
 * ring_full_exits_lose_no_page (tests/vmm/test_dirty_log.c), a lost write in 1 in 8 of
 * them under load, a stuck vCPU in all. With N entries, KVM's reset index R (= our
 * ring_next) and k entries too many:
 *   1. the vCPU pushes N + k entries: slots R..R+k-1 now hold the newest k, the oldest k
 *      are gone;
 *   2. its ring-full exit harvests all N slots (we stop at N) and resets them: KVM's
 *      reset index goes to R+N and every slot is empty, but KVM's write index is R+N+k;
 *   3. the vCPU runs on and pushes into slots R+k.. on; we look at slot R (ring_next),
 *      find it empty, and harvest nothing, forever: every later write is lost, and once
 *      the ring reaches the soft limit again the vCPU exits for ever without running.
 * So: a harvest of all N entries counts every page dirty (step 1 lost the k oldest, which
 * we cannot name), and whenever the vCPU is out of KVM_RUN (its own ring-full exit, or
 * parked by a pause, so nobody is filling the slots we look at), an empty slot at
 * ring_next followed by a dirty one further on is step 3: we mark the empty slots
 * harvested, so KVM's reset passes them, move ring_next to the first dirty one, and count
 * every page dirty again. A KVM that keeps its limit never shows either.
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

/* KVM lost ring entries we cannot name: count every page of RAM dirty. dirty.lock held. */
static void ring_lost(struct vm *vm)
{
	for (unsigned i = 0; i < vm->mem.nregions; i++) {
		uint64_t pages = vm->mem.region[i].bytes / GUEST_PAGE_BYTES;

		for (uint64_t p = 0; p < pages; p++)
			vm->dirty.harvest[i][p / 64] |= 1ULL << (p % 64);
	}
}

/*
 * Step 3 above: KVM writes v's ring further on than ring_next. Only while v is out of
 * KVM_RUN (a running vCPU may fill the empty slot at ring_next while we look further).
 * vm->dirty.lock held.
 */
static void ring_resync(struct vm *vm, struct vcpu *v)
{
	uint32_t mask = vm->dirty.ring_entries - 1, gap;

	for (gap = 0; gap < vm->dirty.ring_entries; gap++) {
		struct kvm_dirty_gfn *g = &v->ring[(v->ring_next + gap) & mask];

		if (__atomic_load_n(&g->flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY)
			break;
	}
	if (gap == 0 || gap == vm->dirty.ring_entries)
		return; /* in step: dirty entries from ring_next on, or none */
	for (uint32_t k = 0; k < gap; k++)
		__atomic_store_n(&v->ring[(v->ring_next + k) & mask].flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
	v->ring_next += gap;
	ring_lost(vm);
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
	if (n == vm->dirty.ring_entries)
		ring_lost(vm); /* step 1 above: KVM went past its soft limit */
	vm->dirty.ring_harvested += n;
	return n;
}

int dirty_ring_collect(struct vm *vm)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpu[i];

		if (!v->ring)
			continue;
		/* Out of KVM_RUN while we hold vm->lock: parked by a pause, or no thread. */
		pthread_mutex_lock(&vm->lock);
		if (v->parked || vm->state == VM_STATE_CREATED || vm->state == VM_STATE_STOPPED)
			ring_resync(vm, v);
		pthread_mutex_unlock(&vm->lock);
		n += ring_harvest(vm, v);
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
	ring_resync(vm, v); /* on v's own thread: v is out of KVM_RUN */
	if (ring_harvest(vm, v) && ioctl(vm->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0)
		rc = -errno;
	pthread_mutex_unlock(&vm->dirty.lock);
	return rc;
}
