/* Taking a snapshot of a running VM into an image repository, and restoring one. */
#ifndef SNAPSHOT_ENGINE_H
#define SNAPSHOT_ENGINE_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/manifest.h"
#include "vmm/vm_state.h"

/*
 * What a running VM remembers between its snapshots, so the next one is incremental: the
 * repository, the snapshot its views are relative to, and its own consumer of the VM's
 * dirty log (vm_state.h), registered by its first snapshot and kept between snapshots.
 * Others consuming the log (a migration, done or failed) leave it whole. Owned by the
 * VM's host (cli/), which ends it with snap_tracker_release before vm_destroy.
 */
struct snap_tracker {
	char repo[PATH_MAX];
	char parent[SNAP_ID_BYTES];
	bool valid;
	struct vm_dirty_consumer *dirty; /* NULL until the first snapshot, or after a failed one */
};

/* Unregister t's dirty-log consumer (t may be zeroed or never used). */
void snap_tracker_release(struct snap_tracker *t);

struct snap_params {
	const char *repo;     /* repository location */
	const char *key_file; /* the repository's key file; NULL for a plaintext repository */
	const char *vm_name;  /* recorded in the manifest; incrementals chain per name */
	unsigned max_rounds;  /* live copy rounds before the pause; 0 means 8 */
	bool no_live;         /* pause first and copy everything paused (consistent, slow) */
	const char *endpoint; /* S3 endpoint URL for an s3:// repo; NULL: the environment's */
	/*
	 * Store each changed chunk once: when the dirty set fits the pause's memory budget
	 * (256 MiB), skip the live rounds and copy it to memory in the pause (longer by
	 * that memcpy, ~40 ms per 256 MiB). For backups, where bytes uploaded count more.
	 */
	bool min_bytes;
	/*
	 * In the pause, compare every RAM chunk (and, with a disk, every block) with what the
	 * snapshot will say it holds: a chunk copied while the guest ran, or taken over
	 * from the parent, that the dirty log should have sent again shows up as an error,
	 * and nothing is published. Costs a blob-id hash (HMAC-SHA256 when encrypted) of
	 * all non-zero RAM and disk inside the pause (README).
	 */
	bool verify;
	unsigned lock_wait_s; /* wait this long for a prune holding the repository's lock */
	/*
	 * The caller holds a lock that keeps prunes away for the whole snapshot ('godwit
	 * backup': its backup lock, lock.h), so the snapshot lock is not taken again.
	 */
	bool repo_locked;
	int s3_retry_s;       /* retry a failing S3 request this long; < 0: 300 s (s3.h) */
	/*
	 * Set by another thread (NULL: never): the snapshot stops at its next step and its
	 * S3 transfers within about a second (s3_config's cancel), and fails with -ECANCELED
	 * like any other failure: nothing published, the lock released, the guest runs.
	 */
	const atomic_bool *cancel;
};

struct snap_result {
	char id[SNAP_ID_BYTES];
	char parent[SNAP_ID_BYTES]; /* "" for a full snapshot */
	uint64_t pause_us;           /* vCPUs asked to stop .. asked to run again */
	uint64_t pause_ms;           /* the same, rounded */
	uint64_t pause_stop_us;      /* of it: until every vCPU had stopped */
	uint64_t pause_copy_us;      /* the last dirty chunks and disk blocks copied */
	uint64_t pause_state_us;     /* the vCPU, VM and device state saved */
	uint64_t pause_verify_us;    /* of it, --verify's comparison (0 without) */
	uint64_t total_ms;
	uint64_t bytes_new;          /* plaintext bytes added to the repository */
	uint64_t bytes_new_stored;   /* the same after compression */
	uint64_t mem_chunks_copied;  /* 64 KiB chunks read from guest RAM */
	uint64_t disk_blocks_copied;
	unsigned rounds;
	const char *disk_mode;       /* "none", "log", "rsync", "full" */
	uint64_t packs_absent;       /* packs the index names that the listing did not find */
	uint64_t chunks_lost;        /* parent's chunks and blocks in them, or damaged: copied again */
	uint64_t s3_retries;         /* S3 requests retried */
	char s3_log[480];            /* the first of their lines, one per line ("" if none) */
};

/*
 * Snapshot vm into p->repo. The first snapshot of a VM (or one whose tracker is not valid
 * for this repository) is full; later ones copy only the RAM chunks and disk blocks
 * changed since the parent, known from dirty logs kept running in between. RAM is copied
 * in rounds while the guest runs; the guest pauses only for the last dirty set, the disk
 * blocks changed meanwhile and the device state. Publishes the manifest last; on any
 * failure nothing is published, the guest runs, and t is invalidated. An encrypted
 * repository needs p->key_file (read here, in the VM's process, and wiped once the keys
 * are derived).
 *
 * No snapshot is built on lost data: the snapshot lock (lock.h) is taken before the
 * index is relied on, so no prune deletes a pack meanwhile (-EBUSY after
 * p->lock_wait_s when one runs); then the packs are listed (repo_packs_check), and a
 * chunk or block whose blob the parent names but no existing pack holds intact is copied
 * again from the VM, as if the guest had written it (res->chunks_lost), so the snapshot,
 * and every older one naming the same content, is whole. Blobs a read here finds
 * damaged are marked (repo_mark_found). Returns 0 or -errno with a one-line reason in err.
 */
int snap_take(struct vm *vm, struct snap_tracker *t, const struct snap_params *p,
	      struct snap_result *res, char *err, size_t errlen);

#endif
