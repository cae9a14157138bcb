/* Prune: a retention policy over snapshots, then mark and sweep of the packs no snapshot needs. */
#ifndef REPO_PRUNE_H
#define REPO_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/manifest.h"

struct repo;

/*
 * Retention, as restic's forget: snapshots are grouped by VM name and each group is
 * taken newest first.
 *   keep_last N    the N newest;
 *   keep_daily N   the newest snapshot of each of the last N days that have snapshots;
 *   keep_weekly N  the same by ISO 8601 week (Monday first; week-numbering year).
 * A snapshot kept by any rule is kept. Days and weeks are the local time zone's (TZ).
 * A policy of all zeros keeps nothing, so callers refuse it (prune_policy_empty).
 */
struct prune_policy {
	unsigned keep_last;
	unsigned keep_daily;
	unsigned keep_weekly;
};

/* Why a snapshot is kept: bits of prune_decide's reasons. */
#define PRUNE_KEEP_LAST 0x1u
#define PRUNE_KEEP_DAILY 0x2u
#define PRUNE_KEEP_WEEKLY 0x4u
#define PRUNE_KEEP_OTHER_VM 0x8u /* not in the VM that was asked for */

/* True when p keeps nothing (p). */
bool prune_policy_empty(const struct prune_policy *p);

/*
 * Apply p to n snapshots s (any order) (p, s, n, vm_name, reasons): reasons[i] gets the
 * PRUNE_KEEP_* bits that keep s[i], 0 for a snapshot to forget. With vm_name, only
 * that VM's snapshots are considered (the others get PRUNE_KEEP_OTHER_VM); NULL applies p
 * to each VM's group. Pure: no I/O. Returns 0, -EINVAL (an empty policy), or -ENOMEM.
 */
int prune_decide(const struct prune_policy *p, const struct snap_summary *s, size_t n,
		 const char *vm_name, uint8_t *reasons);

/*
 * How old garbage must be before a sweep removes it: packs no index names and the
 * leftovers of interrupted writes (backend_leftovers). A writer that crashed left them;
 * one that takes no lock, or lost it, may still be writing them. Proxmox Backup Server
 * waits 24 h (and 5 min) for the same reason.
 */
#define PRUNE_GRACE_DEFAULT_S (24u * 3600u)

/* Figures of a prune. */
struct prune_stats {
	uint64_t snapshots_kept;
	uint64_t snapshots_removed;
	uint64_t packs_total;       /* packs the index files name */
	uint64_t packs_removed;
	uint64_t bytes_removed;     /* of the packs removed */
	uint64_t packs_partial;     /* kept whole though some blobs are unreferenced */
	uint64_t bytes_partial_dead; /* stored bytes of those unreferenced blobs */
	uint64_t packs_unindexed;   /* packs no index names that were kept (see below) */
	uint64_t packs_missing;     /* packs the index named that no longer exist: dropped */
	uint64_t partials_removed;  /* leftovers of interrupted writes removed */
	uint64_t indexes_written;
	uint64_t indexes_removed;
};

/* Receives one line per action or note (arg, line), without a newline. */
typedef void (*prune_report_fn)(void *arg, const char *line);

/*
 * Forget: delete the manifest of every snapshot p does not keep (r, p, vm_name, dry_run,
 * fn, arg, st, err, errlen). Deleting a manifest is what deletes a snapshot; the data
 * stays until a sweep. Safe with backups of other VMs running (each manifest is whole).
 * Lines "forget ID (VM, time)" go to fn. A manifest that does not decode is neither
 * counted nor deleted. Returns 0 or an error with a line in err.
 */
int prune_forget(struct repo *r, const struct prune_policy *p, const char *vm_name,
		 bool dry_run, prune_report_fn fn, void *arg, struct prune_stats *st, char *err,
		 size_t errlen);

/*
 * Sweep (r, dry_run, grace_s, fn, arg, st, err, errlen): the caller holds the prune lock
 * (lock.h) and opened r after taking it, so no snapshot or restore runs and r's view of
 * the index is current. Then:
 *   1. mark: every manifest is read and manifest_foreach_ref collects the live blob ids.
 *      A manifest that cannot be read stops the sweep (-EBADMSG): what it references is
 *      unknown, so nothing may be deleted;
 *   2. data/ is listed (with each pack's age), the lists of damaged blobs and every
 *      index file are read. A pack the index names is dead when none of its blobs (in
 *      any index file listing it) is referenced, a copy marked damaged counting as
 *      unreferenced, or when it is missing from data/ (or there with another size). A
 *      pack with some live blobs is kept whole: repacking its live blobs into new packs
 *      is future work (st->packs_partial counts them, st->bytes_partial_dead what
 *      repacking would free);
 *   3. each index file that lists a dead pack is rewritten without it: the new index
 *      file is written first, then the old one deleted, then the dead packs (a missing
 *      one only leaves the index). At every moment each pack an index names exists or
 *      was lost before; a crash leaves garbage, never a dangling reference, and a blob
 *      may be listed twice meanwhile, which readers allow;
 *   4. a pack no index file names is garbage of an interrupted writer once it is
 *      grace_s old (PRUNE_GRACE_DEFAULT_S): it is deleted, unless it holds a blob a
 *      snapshot references and no kept index pack holds (an index file was lost: 'images
 *      repair' indexes it), and unless an index file did not decode (its packs are
 *      unknown, so every unindexed pack is kept) or the backend cannot say its age;
 *   5. a list of damaged blobs whose packs are all gone is deleted;
 *   6. the leftovers of interrupted writes (backend_leftovers) grace_s old are removed.
 * Returns 0 or an error with a line in err.
 */
int prune_sweep(struct repo *r, bool dry_run, uint64_t grace_s, prune_report_fn fn, void *arg,
		struct prune_stats *st, char *err, size_t errlen);

#endif
