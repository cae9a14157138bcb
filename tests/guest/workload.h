/* The test guest's working set: pages rewritten in sweeps, each checked before it is rewritten. */
#ifndef GUEST_WORKLOAD_H
#define GUEST_WORKLOAD_H

#include <stdint.h>

#define WORKLOAD_PAGE_BYTES 4096
#define WORKLOAD_VERIFY_PAGES 64

/*
 * All of the workload's state, in guest RAM like the pages, so it carries on after a
 * snapshot restore or a migration. The invariant: page i holds generation `sweep` when
 * i < pos and `sweep - 1` otherwise. Word w of page i at generation g holds
 *
 *     splitmix64(bootid ^ (i << 9 | w)) + g      (mod 2^64)
 *
 * so every word depends on its page index and word index, and subtracting the hash from a
 * word recovers the generation it carries (which is how a report tells a missed write
 * from a torn page or a page that came from elsewhere).
 */
struct workload {
	uint64_t bootid;
	uint64_t base_gpa;              /* page aligned */
	uint64_t npages;
	uint64_t sweep;
	uint64_t pos;
	uint64_t errors;                /* pages found not holding what the invariant says */
	uint64_t rate_mib;              /* MiB/s */
	uint64_t owed_centipages;       /* pages owed to the rate, in hundredths */
	uint64_t last_tick;
	uint64_t verify_cursor;
	uint32_t reports;               /* corrupt pages printed so far (capped) */
};

/*
 * Writes every page at generation 0 and sets sweep = 1, pos = 0 (base_gpa, npages page
 * aligned and mapped; npages may be 0). Pacing starts from tick `now`.
 */
void workload_init(struct workload *wl, uint64_t bootid, uint64_t base_gpa, uint64_t npages,
		   uint64_t rate_mib, uint64_t now);

/*
 * Rewrites the pages the rate owes up to tick `now` (per tick rate * 256 / 100 pages, the
 * remainder carried), at most max_pages of them per call so heartbeats stay on time. A
 * backlog beyond one second of writes is dropped.
 */
void workload_run(struct workload *wl, uint64_t now, uint64_t max_pages);

/* Re-verifies WORKLOAD_VERIFY_PAGES pages spread over the set, round-robin between calls. */
void workload_verify_some(struct workload *wl);

#endif
