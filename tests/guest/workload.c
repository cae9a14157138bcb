/* Rewrites the working set generation by generation, checking each page's previous generation first. */
#include "workload.h"

#include <stdbool.h>

#include "console.h"
#include "hw.h"
#include "lib.h"
#include "platform.h"

#define WORKLOAD_WORDS (WORKLOAD_PAGE_BYTES / 8)
#define WORKLOAD_REPORTS_MAX 16
#define WORKLOAD_BACKLOG_TICKS PLATFORM_TICK_HZ

static uint64_t *workload_page(const struct workload *wl, uint64_t i)
{
	return phys_ptr(wl->base_gpa + i * WORKLOAD_PAGE_BYTES);
}

/* The generation the invariant says page i holds now. */
static uint64_t workload_expected(const struct workload *wl, uint64_t i)
{
	return i < wl->pos ? wl->sweep : wl->sweep - 1;
}

/*
 * Compares page i against generation `want` and then writes generation `next` over it, in
 * one pass. Returns the number of words that differed; *got is the generation the first of
 * them carried.
 */
static uint32_t workload_page_swap(struct workload *wl, uint64_t i, uint64_t want, uint64_t next,
				   uint64_t *got)
{
	volatile uint64_t *pg = workload_page(wl, i);
	uint64_t key = wl->bootid ^ (i << 9);
	uint32_t bad = 0;

	for (uint64_t w = 0; w < WORKLOAD_WORDS; w++) {
		uint64_t base = splitmix64(key ^ w);
		uint64_t v = pg[w];

		if (v != base + want) {
			if (bad++ == 0)
				*got = v - base;
			pg[w] = base + next;
		} else if (next != want) {
			pg[w] = base + next;
		}
	}
	return bad;
}

static void workload_report(struct workload *wl, uint64_t i, uint64_t want, uint64_t got,
			    uint32_t bad)
{
	wl->errors++;
	if (wl->reports >= WORKLOAD_REPORTS_MAX)
		return;
	wl->reports++;
	/* got is the first bad word's generation; a huge value means foreign data, not a gen. */
	console_printf("GUEST corrupt page=%lu want=%lu got=%lu words=%u\n", i, want, got, bad);
}

void workload_init(struct workload *wl, uint64_t bootid, uint64_t base_gpa, uint64_t npages,
		   uint64_t rate_mib, uint64_t now)
{
	wl->bootid = bootid;
	wl->base_gpa = base_gpa;
	wl->npages = npages;
	wl->errors = 0;
	wl->rate_mib = rate_mib;
	wl->owed_centipages = 0;
	wl->last_tick = now;
	wl->verify_cursor = 0;
	wl->reports = 0;
	for (uint64_t i = 0; i < npages; i++) {
		volatile uint64_t *pg = workload_page(wl, i);
		uint64_t key = bootid ^ (i << 9);

		for (uint64_t w = 0; w < WORKLOAD_WORDS; w++)
			pg[w] = splitmix64(key ^ w);
	}
	compiler_barrier();
	wl->sweep = 1;
	wl->pos = 0;
}

/* Moves the sweep on by one page: check it holds sweep - 1, write sweep, advance pos. */
static void workload_step(struct workload *wl)
{
	uint64_t i = wl->pos, want = wl->sweep - 1, got = 0;
	uint32_t bad = workload_page_swap(wl, i, want, wl->sweep, &got);

	if (bad)
		workload_report(wl, i, want, got, bad);
	/*
	 * The page is complete before pos moves past it. A snapshot taken between the two is
	 * fine: the guest resumes here, and the page already holds what pos is about to say.
	 */
	compiler_barrier();
	if (i + 1 == wl->npages) {
		wl->pos = 0;
		wl->sweep++;
	} else {
		wl->pos = i + 1;
	}
}

void workload_run(struct workload *wl, uint64_t now, uint64_t max_pages)
{
	uint64_t cap = wl->rate_mib * 256 * WORKLOAD_BACKLOG_TICKS;

	if (wl->npages == 0 || wl->rate_mib == 0)
		return;
	if (now > wl->last_tick) {
		uint64_t d = now - wl->last_tick;

		if (d > WORKLOAD_BACKLOG_TICKS)
			d = WORKLOAD_BACKLOG_TICKS;
		/* rate MiB/s = rate * 256 pages/s = rate * 256 / 100 pages per tick. */
		wl->owed_centipages += d * wl->rate_mib * 256;
		if (wl->owed_centipages > cap)
			wl->owed_centipages = cap;
		wl->last_tick = now;
	}
	while (wl->owed_centipages >= 100 && max_pages--) {
		workload_step(wl);
		wl->owed_centipages -= 100;
	}
}

void workload_verify_some(struct workload *wl)
{
	uint64_t stride, n = WORKLOAD_VERIFY_PAGES;

	if (wl->npages == 0)
		return;
	if (n > wl->npages)
		n = wl->npages;
	stride = wl->npages / n;
	for (uint64_t k = 0; k < n; k++) {
		uint64_t i = wl->verify_cursor + k * stride, want, got = 0;
		uint32_t bad;

		if (i >= wl->npages)
			i -= wl->npages;
		want = workload_expected(wl, i);
		/* Rewriting the expected generation repairs the page, so it is counted only once. */
		bad = workload_page_swap(wl, i, want, want, &got);
		if (bad)
			workload_report(wl, i, want, got, bad);
	}
	wl->verify_cursor = (wl->verify_cursor + 1) % stride;
}
