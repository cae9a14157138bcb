/* Lazy restore of guest RAM: first touches are served from the repository through userfaultfd. */
#ifndef SNAPSHOT_LAZY_MEM_H
#define SNAPSHOT_LAZY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/manifest.h"
#include "vmm/vm_state.h"

struct repo;
struct repo_lock;

/*
 * A restored VM's RAM, filled on demand, as Firecracker restores from a memory file:
 *
 *   lazy_mem_start   registers every RAM region (vm_ram_region's hva) with a userfaultfd
 *                    in "missing" mode and starts two loader threads; the vCPUs may
 *                    start at once
 *   fault thread     sleeps in poll() and serves each fault: the faulting address gives
 *                    (region, chunk); the chunk's blob is read from the repository
 *                    (repo_blob_read: range read, CRC, zstd, id check) and copied in
 *                    whole with UFFDIO_COPY, a zero chunk is mapped with UFFDIO_ZEROPAGE
 *   walker           meanwhile copies in every chunk not yet resident: the 8 after the
 *                    latest fault first, then in region and address order (zero chunks
 *                    skipped)
 *   all resident     the fault thread unregisters the regions and closes the
 *                    userfaultfd (untouched zero chunks then fault in as ordinary
 *                    anonymous memory: zeros), and both threads end
 *   lazy_mem_stop    after the VM has stopped: ends the threads if still running and
 *                    returns what they found
 *
 * Whoever touches guest RAM waits in the kernel until the loader resolves the fault: a
 * vCPU (KVM's get_user_pages on a guest access), a device model, vm_state_load, a
 * snapshot being taken. A chunk that cannot be read (a damaged or missing blob) is
 * fatal: the loader records which chunk and why, marks a damaged blob
 * (repo_mark_found: the next backup stores it again), calls vm_request_stop, and
 * unregisters so that no thread stays blocked (whatever they still touch reads as
 * zeros; no vCPU enters the guest again once the stop is requested). lazy_mem_stop then
 * returns the error for the caller to report. The restore lock (lock.h) handed over at
 * start is released once every chunk is resident: until then a prune waits, since the
 * VM still reads the packs.
 *
 * Threads: the two loader threads alone use the repository (one blob read at a time,
 * under a lock) and the userfaultfd from start to end; the caller must not use the
 * repository meanwhile (lazy_mem takes it). lazy_mem_stats may be called from any
 * thread.
 */
struct lazy_mem;

struct lazy_mem_stats {
	uint64_t faults;            /* page-fault events read from the userfaultfd */
	uint64_t chunks_on_fault;   /* non-zero chunks fetched because something touched them */
	uint64_t zero_on_fault;     /* zero chunks mapped because something touched them */
	uint64_t chunks_prefetched; /* non-zero chunks fetched by the background walk */
	uint64_t bytes_fetched;     /* raw bytes of every fetched chunk */
	uint64_t resident_ms;       /* lazy_mem_start to all resident; 0 until then */
	bool complete;              /* every chunk resident, userfaultfd closed */
};

/*
 * Start serving vm's RAM lazily from the memory map of m (vm, repo, lock, m, err,
 * errlen). vm comes from vm_create_for_restore (RAM zero, never touched) and has not
 * started; its regions must match m's (checked). The region table and ids of m are
 * copied, so m may be freed afterwards. On success lazy_mem owns repo (closed by
 * lazy_mem_free) and lock (may be NULL; released once all of RAM is resident, or by
 * lazy_mem_free) and *out is set; call vm_state_load and vm_start next. Returns 0;
 * -ENOSYS, -EPERM, -EACCES, -ENOTTY or -EINVAL when this host offers no usable
 * userfaultfd (the caller may copy RAM eagerly instead; err says why); -EPROTO when the
 * regions differ; -ENOMEM; or a thread error. On failure nothing is registered and repo
 * and lock stay the caller's.
 */
int lazy_mem_start(struct lazy_mem **out, struct vm *vm, struct repo *repo,
		   struct repo_lock *lock, const struct snap_manifest *m, char *err,
		   size_t errlen);

/*
 * End the loader threads (after the VM stopped: vm_wait returned, or it never started)
 * and return their outcome (lm, err, errlen). Must come before
 * vm_destroy, which unmaps the RAM the loader writes. Returns 0, or the negative errno
 * of the chunk that could not be read with "snapshot ID: memory chunk N (gpa 0x...,
 * blob ...) cannot be read: REASON ..." in err. Idempotent.
 */
int lazy_mem_stop(struct lazy_mem *lm, char *err, size_t errlen);

/* Copy the counters so far (lm, out). Any thread. */
void lazy_mem_stats(struct lazy_mem *lm, struct lazy_mem_stats *out);

/* Stop if needed, close the repository and free lm (may be NULL). */
void lazy_mem_free(struct lazy_mem *lm);

#endif
