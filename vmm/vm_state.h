/* The VM as migrate/ and snapshot/ see it: RAM regions, dirty sets, pause, state blobs. */
#ifndef VMM_VM_STATE_H
#define VMM_VM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/vm.h"

/*
 * Everything here is the whole contract between the VMM and its users: no ioctl, no
 * struct vm internals. Threads: the dirty-log and state calls are made by one controller
 * thread at a time (the API thread running a snapshot or a migration).
 */

#define VM_PAGE_BYTES 4096ULL
#define VM_DISK_BLOCK_BYTES (64ULL << 10) /* granularity of the disk change log */

/* ---- RAM ------------------------------------------------------------------------------ */
struct vm_ram_region {
	uint64_t gpa;
	uint64_t bytes;
	uint8_t *hva; /* the VMM's mapping: readable while the guest runs */
};

unsigned vm_ram_nregions(const struct vm *vm);
/* Region i (< vm_ram_nregions) into *out. */
void vm_ram_region(const struct vm *vm, unsigned i, struct vm_ram_region *out);

/*
 * Which pages of region i may hold data. Fills bitmap (layout as vm_dirty_fetch, sized
 * for the region; overwritten, not OR-ed) with every page the VMM's page tables map or
 * have swapped out: "populated". Guest RAM is private anonymous memory, so a page left
 * clear was never touched (or was dropped since) and reads as zero; a caller may count
 * it as a zero page without reading it, which saves a page fault and a 4 KiB read per
 * untouched page (the pagemap costs 8 bytes a page: 1.2 to 2 ms per GiB here). What the
 * page tables cannot vouch for counts as populated, and when the answer cannot be
 * trusted at all the call fails and the caller must read every page: a page wrongly
 * left clear would silently become zero in a copy of the guest.
 *
 * Ordering: a clear bit is true only at the moment of the call. Combine it only with a
 * dirty bitmap fetched before the call (vm_dirty_start, then vm_dirty_fetch), so that a
 * page populated after the call is a write the next fetch reports:
 *   1. vm_dirty_fetch(i, dirty): dirty holds page P; later writes go to the next fetch
 *   2. vm_ram_populated(i, pop): P is clear, so it is zero now; the caller skips it
 *   3. the guest writes P: a write after 1, so the next fetch reports P and it goes out
 * Called before 1 instead, the write could land between 2 and 1: P would be in this
 * fetch, skipped as zero, and never reported again.
 *
 * Returns 0; -EINVAL for no region i; -EBUSY while userfaultfd serves the region's
 * missing pages (a lazy restore: a missing page there is not loaded yet, not zero);
 * -ENOTSUP when /proc/self/pagemap or /proc/self/smaps cannot be read or the region is
 * not all private anonymous memory; or another -errno. On failure bitmap is unspecified.
 * It only reads /proc, so any thread may call it.
 */
int vm_ram_populated(const struct vm *vm, unsigned i, uint64_t *bitmap);

/* ---- Dirty pages ---------------------------------------------------------------------- */
enum vm_dirty_backend {
	VM_DIRTY_NONE = 0,
	VM_DIRTY_BITMAP, /* KVM_GET_DIRTY_LOG + MANUAL_DIRTY_LOG_PROTECT2 + KVM_CLEAR_DIRTY_LOG */
	VM_DIRTY_RING,   /* KVM_CAP_DIRTY_LOG_RING, harvested per vCPU */
};

/*
 * Start logging writes to guest RAM with the backend chosen at vm_create
 * (vm_config.dirty_ring). Every page counts as dirty at start, so the first fetch returns
 * all of RAM. Idempotent while started. Returns 0 or -errno.
 */
int vm_dirty_start(struct vm *vm);

/*
 * Fetch and clear the pages written since the last fetch (or start) in region i, OR-ing
 * them into bitmap (one bit per 4 KiB page, bit n of word n/64 for page n of the region,
 * sized for the region). Includes pages the VMM's own devices wrote into guest RAM.
 * Ordering: a page written after this call returns is reported by the next fetch.
 * Returns 0 or -errno.
 */
int vm_dirty_fetch(struct vm *vm, unsigned i, uint64_t *bitmap);

/* Stop logging (memory slots go back to normal). Returns 0 or -errno. */
int vm_dirty_stop(struct vm *vm);

enum vm_dirty_backend vm_dirty_backend(const struct vm *vm);

/* ---- Disk change log ---------------------------------------------------------------- */
/*
 * The virtio-blk path records which VM_DISK_BLOCK_BYTES blocks the guest wrote, since the
 * log's base (a snapshot id the caller set). The log lives in memory and, on a clean VMM
 * exit, in a sidecar file beside the image (IMAGE.gwlog), so it survives a clean restart;
 * after an unclean exit, or if the image changed offline, it is invalid.
 */
bool vm_disk_present(const struct vm *vm);
uint64_t vm_disk_bytes(const struct vm *vm);
/* The image path given at creation (NULL if none). */
const char *vm_disk_path(const struct vm *vm);
/*
 * Is the change log valid and relative to base? (base is the snapshot id it was last
 * reset to, "" before any.) When false, the caller must read the whole disk (or diff it).
 */
bool vm_disk_log_valid(const struct vm *vm, const char *base);
/*
 * Fetch and clear the changed-block bitmap (one bit per block, OR-ed into bitmap sized for
 * vm_disk_bytes rounded up), and remember base as what the log is now relative to.
 * While the log is invalid every block is reported. Returns 0, -ENAMETOOLONG for a base
 * over 64 bytes, -ENOTSUP for a read-only disk (it has no log), -ENODEV with no disk.
 */
int vm_disk_log_fetch(struct vm *vm, uint64_t *bitmap, const char *base);

/* ---- State ----------------------------------------------------------------------------- */
/*
 * Serialise the complete vCPU, VM and device state (not RAM, not disk contents) into a
 * malloc'd, versioned, checksummed blob. The VM must be paused (vm_pause); virtio
 * requests are served synchronously, so none is in flight. The caller frees *blob.
 * Returns 0, -EBUSY if the VM is running or stopping (one that was created or restored
 * but not yet started counts as paused), or another -errno. The format is in
 * vmm/state_format.h; it is about 9 KB for one vCPU and 6.5 KB more per extra vCPU.
 */
int vm_state_save(struct vm *vm, uint8_t **blob, size_t *len);

/*
 * Load a blob from vm_state_save into a VM made by vm_create_for_restore, before
 * vm_start. Every length and count in the blob is checked. Returns 0, or -errno with a
 * one-line reason in err (e.g. a CPU feature this host lacks, a truncated blob).
 * The whole blob is decoded and checked (checksum, machine, CPU features) before KVM is
 * touched, so a bad blob leaves the VM as it was; a failure after that (KVM refusing a
 * value) leaves it half loaded: destroy it. Errors: -EBADMSG (corrupt or truncated),
 * -EPROTONOSUPPORT (other format version, unknown mandatory record), -EINVAL (a
 * different machine), -ENOTSUP (CPU features or TSC rate this host lacks), -EBUSY
 * (the VM has started). The guest's clocks resume where they stopped: kvmclock and the
 * TSC do not count the time between save and load.
 */
int vm_state_load(struct vm *vm, const uint8_t *blob, size_t len, char *err, size_t errlen);

/*
 * What a restore needs to know before creating the VM: read from a blob without a VM.
 * Returns 0, or -errno with a reason in err.
 */
struct vm_state_info {
	uint64_t ram_bytes;
	unsigned ncpus;
	uint64_t disk_bytes; /* 0 when the VM had no disk */
	unsigned nnics;      /* virtio-net NICs, 0 .. VM_MAX_NICS, in PCI order */
	uint8_t nic_mac[VM_MAX_NICS][VM_MAC_BYTES];
};
int vm_state_peek(const uint8_t *blob, size_t len, struct vm_state_info *out, char *err,
		  size_t errlen);

/*
 * Check that this host can provide every CPU feature recorded in blob. Returns 0, or
 * -ENOTSUP with the missing feature names listed in err ("CPU features missing on this
 * host: avx512f sha").
 */
int vm_state_check_cpu(const uint8_t *blob, size_t len, char *err, size_t errlen);

#endif
