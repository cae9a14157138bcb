/* The VM as migrate/ and snapshot/ see it: RAM regions, dirty sets, pause, state blobs. */
#ifndef VMM_VM_STATE_H
#define VMM_VM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;

#define VM_MAX_NICS 7 /* PCI slots 1..8, one of them perhaps the disk's */
#define VM_MAC_BYTES 6

/*
 * Everything here is the whole contract between the VMM and its users: no ioctl, no
 * struct vm internals. Making, starting and freeing a VM are not here: cli/ has vm.h,
 * and a receive or a restore the few calls of vm_lifecycle.h. Threads: the state calls
 * are made by one controller thread at a time (the API thread running a snapshot, or a
 * migration's thread); the dirty log serves several consumers at once (below).
 */

#define VM_PAGE_BYTES 4096ULL
#define VM_DISK_BLOCK_BYTES (64ULL << 10) /* granularity of the disk change log */

/* ---- Pause: held by owners ----------------------------------------------------------- */
/*
 * Who holds a VM paused. A pause is held by its owners, not counted: the vCPUs run again
 * only when the last holder lets go, so the engine never resumes a guest the user paused
 * (the throttle's "pause, sleep, resume" while the user pauses through the API leaves it
 * paused), and the user cannot resume a guest a snapshot or a switch-over is copying.
 */
enum vm_pause_owner {
	VM_PAUSE_USER = 1u << 0,     /* the control API's pause and resume (vm_pause, vm_resume) */
	VM_PAUSE_SNAPSHOT = 1u << 1, /* a snapshot's final copy */
	VM_PAUSE_MIGRATE = 1u << 2,  /* stop-and-copy and the fixed-cost probe */
	VM_PAUSE_THROTTLE = 1u << 3, /* auto-converge's share of every period */
};

/*
 * Hold vm paused on behalf of owner (vm, owner: one VM_PAUSE_* bit): the first holder
 * stops every vCPU outside KVM_RUN and returns once all are parked; a later one only adds
 * its hold. Taking a hold one already has is a no-op. On a VM not started yet the hold is
 * recorded and vm_start parks the vCPUs at once. Returns 0, or -EINVAL if the VM is
 * stopped or stopping.
 */
int vm_pause_by(struct vm *vm, unsigned owner);
/*
 * Let go of owner's hold (vm, owner); the vCPUs run again when no hold is left. Returns
 * 0, or -EINVAL if owner holds no pause (a resume by someone who did not pause).
 */
int vm_resume_by(struct vm *vm, unsigned owner);
/* The VM_PAUSE_* bits holding vm paused now (0 when it runs or never was paused). */
unsigned vm_pause_holders(struct vm *vm);
/* vm_pause_by and vm_resume_by for VM_PAUSE_USER. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);

/* Facts for status reports and for sizing a copy. */
uint64_t vm_ram_bytes(const struct vm *vm);
unsigned vm_ncpus(const struct vm *vm);

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
 * dirty bitmap fetched before the call (vm_dirty_register, then vm_dirty_fetch), so that a
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

/* ---- Dirty pages and disk blocks: one log, many consumers ---------------------------- */
enum vm_dirty_backend {
	VM_DIRTY_NONE = 0,
	VM_DIRTY_BITMAP, /* KVM_GET_DIRTY_LOG + MANUAL_DIRTY_LOG_PROTECT2 + KVM_CLEAR_DIRTY_LOG */
	VM_DIRTY_RING,   /* KVM_CAP_DIRTY_LOG_RING, harvested per vCPU */
};

/*
 * The contract. Writes to guest RAM are known from three sources: KVM's log (the bitmap
 * or the per-vCPU rings of the backend chosen at vm_create, vm_config.dirty_ring), and
 * the VMM's own marks for pages device emulation wrote (guest_mem_mark_dirty: virtio-blk
 * reads, used rings), which KVM never sees. Writes to the disk image are known from the
 * virtio-blk change log. Each is read and cleared in one place (dirty_log.c, disk_log.c)
 * and handed to every registered consumer: the snapshot tracker between snapshots, a
 * migration while it runs, whatever comes next. Each consumer has its own pending bitmap
 * per RAM region and one for the disk, and its own epoch (the count of its fetches):
 *
 *   - registering starts the consumer with every page and every block pending, for it
 *     alone: its first fetch reports all of RAM and all of the disk, whatever the others
 *     have fetched before;
 *   - a fetch takes what the sources gathered since anyone's last fetch, ORs it into every
 *     consumer's pending bitmap, then hands the caller its own pending bits and clears
 *     only those: one consumer's fetch never hides a page or block from another;
 *   - unregistering frees that consumer's bitmaps alone; logging stays on while any
 *     consumer is left, and goes off (KVM's slots back to normal) with the last one.
 *
 * Why a fetch never loses a write (the caller copies what it was handed after the call):
 *
 *   1. the guest writes page P; KVM logs it (or a device marks it after writing it)
 *   2. consumer A fetches: P is taken from the source, set in A's and B's pending, and
 *      handed to A; A's copy of P, made after the fetch, holds the write
 *   3. the guest writes P again: the source logs it anew (a fetch clears and
 *      write-protects exactly what it took, so a later write is logged again)
 *   4. consumer B fetches: P was pending for B since 2, and is in the source again since
 *      3; B gets it once and copies it after its fetch, holding both writes
 *   5. A's next fetch gets P from 3 (set in A's pending during 4)
 * A write that races a fetch lands either in what the fetch takes (then the caller's copy,
 * made after it, holds the write) or in the source for the next fetch of any consumer,
 * which hands it on to all: nothing depends on which consumer fetches first.
 *
 *   1. the snapshot tracker A is registered, logging is on; A has fetched up to now
 *   2. a migration B registers: B's pending is all of RAM; A's is untouched
 *   3. the guest writes P; B's first fetch reports every page (P included) and puts P in
 *      A's pending; A's next fetch reports P
 *   4. B ends (commit, failure or cancel) and unregisters: A still has P and every later
 *      write; A's next snapshot stays incremental and whole
 * Had B restarted the shared log instead (the old vm_dirty_start/stop), B's round 0 would
 * have missed every page A fetched before 2, and 4 would have turned A's logging off.
 *
 * Disk blocks follow the same rules with one difference in how they are gathered: the
 * device marks a block in every consumer's bitmap, under its lock, before the write
 * reaches the image, so there is nothing to distribute at a fetch. Beside the consumers,
 * the disk log keeps one view of its own, relative to a base (vm_disk_log_valid and
 * vm_disk_log_fetch below): that one is saved beside the image on a clean exit, so a
 * snapshot chain survives a VMM restart. It belongs to the snapshot tracker; consumers
 * never move its base.
 *
 * Threads: each consumer is used by one thread at a time; different consumers may be
 * used from different threads (the calls serialise on the log's lock).
 */
struct vm_dirty_consumer;

#define VM_DIRTY_MAX_CONSUMERS 8

/*
 * Register a consumer of vm's dirty log (vm, out): every page and every disk block is
 * pending for it. Turns logging on if it was off. Returns 0, -EBUSY when
 * VM_DIRTY_MAX_CONSUMERS are registered, -ENOMEM, or -errno from KVM. The caller owns
 * *out and must vm_dirty_unregister it before vm_destroy.
 */
int vm_dirty_register(struct vm *vm, struct vm_dirty_consumer **out);

/*
 * Fetch and clear c's pending pages of region i (c, i, bitmap), OR-ing them into bitmap
 * (one bit per 4 KiB page, bit n of word n/64 for page n of the region, sized for the
 * region). Includes pages the VMM's own devices wrote into guest RAM. Ordering: a page
 * written after this call returns is reported by c's next fetch. Returns 0, -EINVAL for
 * no region i, or -errno from KVM.
 */
int vm_dirty_fetch(struct vm_dirty_consumer *c, unsigned i, uint64_t *bitmap);

/*
 * Fetch and clear c's pending disk blocks (c, bitmap): one bit per VM_DISK_BLOCK_BYTES
 * block, OR-ed into bitmap sized for vm_disk_bytes rounded up. Ordering: a block the guest
 * writes after this call returns is reported by c's next fetch. Returns 0, -ENODEV with
 * no disk, -ENOTSUP for a read-only disk (it has no log; the guest cannot change it).
 */
int vm_dirty_fetch_disk(struct vm_dirty_consumer *c, uint64_t *bitmap);

/* How many fetches c has made since it registered: its epoch. */
uint64_t vm_dirty_epoch(const struct vm_dirty_consumer *c);

/*
 * Unregister and free c (NULL is a no-op). The other consumers' views are untouched;
 * the last consumer turns logging off.
 */
void vm_dirty_unregister(struct vm_dirty_consumer *c);

enum vm_dirty_backend vm_dirty_backend(const struct vm *vm);

/* ---- NICs: frames that move with a migration ---------------------------------------- */
/* How many NICs the VM has (vm_config.nnets). */
unsigned vm_nic_count(const struct vm *vm);
/*
 * Frames that move with a migration (vmm/devices.h has the details). The largest frame
 * vm_nic_take_frame hands out, with the tap's header.
 */
#define VM_NIC_FRAME_MAX (12 + 18 + 65535)
/*
 * While the VM is paused: the next frame that arrived for NIC i's guest and was not
 * placed, into buf (cap > VM_NIC_FRAME_MAX). Returns 1 with *len, 0 for none, -EBUSY
 * if the VM runs, -EINVAL for no NIC i.
 */
int vm_nic_take_frame(struct vm *vm, unsigned i, void *buf, size_t cap, size_t *len);
/*
 * Queue a frame from vm_nic_take_frame (of this or another host) for NIC i's guest,
 * placed before what its tap holds once the VM runs. Returns 0, -EINVAL (no NIC i, bad
 * length), or -ENOBUFS (the bounded queue is full: dropped and counted).
 */
int vm_nic_carry_in(struct vm *vm, unsigned i, const void *frame, size_t len);

/* ---- Disk: the image and the change log's own view ---------------------------------- */
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
 * Fetch and clear the log's own view of changed blocks (one bit per block, OR-ed into
 * bitmap sized for vm_disk_bytes rounded up), and remember base as what the log is now
 * relative to. While the log is invalid every block is reported. Only the snapshot
 * chain uses this view; a consumer's view (vm_dirty_fetch_disk) is apart from it.
 * Returns 0, -ENAMETOOLONG for a base over 64 bytes, -ENOTSUP for a read-only disk (it
 * has no log), -ENODEV with no disk.
 */
int vm_disk_log_fetch(struct vm *vm, uint64_t *bitmap, const char *base);

/* ---- State ----------------------------------------------------------------------------- */
/*
 * Serialise the complete vCPU, VM and device state (not RAM, not disk contents) into a
 * malloc'd, versioned, checksummed blob. The VM must be paused (vm_pause); virtio
 * requests are served synchronously, so none is in flight. The caller frees *blob.
 * Returns 0, -EBUSY if the VM is running or stopping (one that was created or restored
 * but not yet started counts as paused), or another -errno. The format is in
 * vmm/state/state_format.h; it is about 9 KB for one vCPU and 6.5 KB more per extra vCPU.
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

/*
 * The VM's CPUID policy (the state blob's CPUID record payload), for a peer to check
 * before anything else is sent (vm, out, len): *out is malloc'd. Returns 0 or -ENOMEM.
 */
int vm_cpuid_save(struct vm *vm, uint8_t **out, size_t *len);

/*
 * Check a CPUID policy from vm_cpuid_save on another host (untrusted) against what this
 * VM's KVM can give (vm, payload, len, err, errlen). Works in the sandbox: it uses the
 * VM's own /dev/kvm descriptor. Returns 0; -ENOTSUP with "CPU features missing on this
 * host: a b" in err; -EBADMSG for a malformed table; or an ioctl error.
 */
int vm_cpuid_check(struct vm *vm, const uint8_t *payload, size_t len, char *err,
		   size_t errlen);

#endif
