/* Repair: rebuild the index from the packs, which describe themselves, and name what no pack holds. */
#ifndef REPO_REPAIR_H
#define REPO_REPAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "repo/prune.h"

struct repo;

/* What a repair found and did. */
struct repair_stats {
	uint64_t packs;              /* in data/ */
	uint64_t packs_recovered;    /* in no readable index: indexed again from their trailer */
	uint64_t packs_unreadable;   /* in no readable index, and their trailer does not decode */
	uint64_t packs_missing;      /* an index named them; they are gone */
	uint64_t indexes_bad;        /* index files that do not decode */
	uint64_t indexes_written;
	uint64_t indexes_removed;
	uint64_t snapshots;
	uint64_t snapshots_unreadable; /* manifests that do not decode */
	uint64_t snapshots_forgotten;  /* of them, deleted (forget_damaged) */
	uint64_t snapshots_incomplete; /* name blobs no pack holds whole */
	uint64_t blobs_missing;        /* such references, over every snapshot */
};

/* What repo_repair may do. */
struct repair_opts {
	bool dry_run;        /* say what would be done; change nothing */
	bool forget_damaged; /* delete manifests that do not decode (they block prune) */
};

/*
 * Repair the index of the repository r was opened on (r, o, fn, arg, st, err, errlen),
 * as restic's 'repair index': the caller holds the prune lock (lock.h) and
 * opened r after taking it, so nothing else writes. Then:
 *   1. data/ is listed and every index file read. An index file that does not decode
 *      is replaced; a pack an index names that is gone (or of another size) is dropped
 *      from it;
 *   2. every pack in no readable index is read whole and, when it decodes, indexed again
 *      from its own trailer (pack.h): packs describe themselves. One that does not
 *      decode is left alone and named;
 *   3. the new index files are written first, then the replaced ones deleted, so a
 *      crash leaves a blob listed twice at worst, which readers allow;
 *   4. every manifest is checked against the repaired index: a snapshot naming blobs
 *      no pack holds whole (missing, or a copy marked damaged) is named with the first
 *      of them. Such a snapshot cannot be restored whole; while its VM runs, the VM's
 *      next backup stores again what it still holds (engine.h), which heals every
 *      snapshot naming the same content. A manifest that does not decode is named too
 *      (a prune stops at it, since what it references is unknown); with
 *      o->forget_damaged it is deleted, as restic's 'repair snapshots --forget'.
 * With o->dry_run nothing is written or deleted; the lines say what would be. Lines go
 * to fn (may be NULL), counts to st. Returns 0 when the repair ran (whatever it found),
 * or an error with a line in err.
 */
int repo_repair(struct repo *r, const struct repair_opts *o, prune_report_fn fn, void *arg,
		struct repair_stats *st, char *err, size_t errlen);

#endif
