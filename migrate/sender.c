/* Sending dirty pages and disk blocks as PAGES/ZERO and DISK/DISK_ZERO records. */
#include "migrate/source_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "transport/frame.h"
#include "transport/stream.h"
#include "util/clock.h"

bool mig_cancelled(struct mig_source *m)
{
	bool c;

	pthread_mutex_lock(&m->lock);
	c = m->cancel;
	pthread_mutex_unlock(&m->lock);
	return c;
}

/*
 * True if the page holds only zero bytes. Returns at the first non-zero 64-byte block, so
 * a page with data costs one cache line, not 4 KiB (the working set's pages are non-zero
 * in their first word); only a zero page is read to its end.
 */
static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (unsigned i = 0; i < MIG_PAGE_BYTES / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	return true;
}

static bool bit_test(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

/* Popcount without the popcnt instruction (hosts and guests may lack it). */
static uint64_t word_count(uint64_t v)
{
	v = v - ((v >> 1) & 0x5555555555555555ULL);
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (v * 0x0101010101010101ULL) >> 56;
}

static uint64_t bits_count(const uint64_t *b, uint64_t nbits)
{
	uint64_t n = 0;

	for (uint64_t w = 0; w < (nbits + 63) / 64; w++)
		n += word_count(b[w]);
	return n;
}

uint64_t mig_dirty_pages(const struct mig_source *m)
{
	uint64_t n = 0;

	for (unsigned r = 0; r < m->nreg; r++)
		n += bits_count(m->dirty[r], m->npages[r]);
	return n;
}

uint64_t mig_dirty_blocks(const struct mig_source *m)
{
	return m->disk_dirty ? bits_count(m->disk_dirty, m->nblocks) : 0;
}

/* Hold the send rate under max_bandwidth by sleeping off what the round ran ahead. */
static void rate_limit(struct mig_source *m)
{
	uint64_t allowed_ns, elapsed;

	if (!m->p.max_bandwidth)
		return;
	allowed_ns = (uint64_t)((double)m->round_bytes * 1e9 / (double)m->p.max_bandwidth);
	elapsed = clock_now_ns() - m->round_start_ns;
	if (allowed_ns > elapsed) {
		uint64_t ns = allowed_ns - elapsed;
		struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ULL),
				       .tv_nsec = (long)(ns % 1000000000ULL) };

		nanosleep(&ts, NULL);
	}
}

static int send_run(struct mig_source *m, enum mig_rec type, uint32_t region, uint64_t first,
		    uint32_t count, const void *data, size_t data_len)
{
	struct mig_run run = { .region = region, .count = count, .first = first };
	uint8_t hdr[MIG_RUN_HDR_BYTES];
	struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, data_len } };

	mig_run_encode(&run, hdr);
	return frame_writev(m->out, (uint16_t)type, 0, iov, data_len ? 2 : 1);
}

/*
 * Send the pages [first, first + n) of region r, all set in its bitmap: non-zero pages
 * as PAGES records of at most MIG_MAX_RUN_PAGES, zero pages as ZERO ranges. The guest may
 * write a page while it is sent; such a page is dirty again and goes in a later round.
 * Over plaintext the frame checksum and the layer below read the page separately, so it
 * is copied to m->stage first (a torn page would fail the checksum); over TLS every byte
 * is read once (by zstd or the cipher) and the page goes from guest RAM directly.
 */
static int send_span(struct mig_source *m, unsigned r, uint64_t first, uint64_t n,
		     bool skip_zero, struct mig_round_stat *rs)
{
	const uint8_t *base = m->reg[r].hva;
	uint64_t i = first, end = first + n;
	bool zero = n ? page_is_zero(base + i * MIG_PAGE_BYTES) : false;
	int rc;

	while (i < end) {
		uint64_t j = i + 1;
		bool next = zero;

		/* The page that ends a run starts the next one: its check is kept, not redone. */
		while (j < end && j - i < MIG_MAX_RUN_PAGES) {
			next = page_is_zero(base + j * MIG_PAGE_BYTES);
			if (next != zero)
				break;
			j++;
		}
		if (j < end && next == zero) /* stopped at the run cap: page j is unchecked */
			next = page_is_zero(base + j * MIG_PAGE_BYTES);
		if (zero) {
			rs->zero_pages += j - i;
			if (!skip_zero) {
				rc = send_run(m, MIG_REC_ZERO, r, i, (uint32_t)(j - i), NULL, 0);
				if (rc < 0)
					return rc;
			}
		} else {
			size_t bytes = (size_t)(j - i) * MIG_PAGE_BYTES;
			const uint8_t *src = base + i * MIG_PAGE_BYTES;

			if (m->stage) {
				memcpy(m->stage, src, bytes);
				src = m->stage;
			}
			rc = send_run(m, MIG_REC_PAGES, r, i, (uint32_t)(j - i), src, bytes);
			if (rc < 0)
				return rc;
			m->round_bytes += bytes;
			rate_limit(m);
		}
		rs->pages += j - i;
		i = j;
		zero = next;
	}
	return 0;
}

/* Send every page set in region r's dirty bitmap, clearing it. */
static int send_region(struct mig_source *m, unsigned r, bool skip_zero,
		       struct mig_round_stat *rs)
{
	uint64_t *b = m->dirty[r];

	for (uint64_t w = 0; w < (m->npages[r] + 63) / 64; w++) {
		uint64_t p;

		if (!b[w])
			continue;
		if (mig_cancelled(m))
			return -ECANCELED;
		p = w * 64;
		while (p < (w + 1) * 64 && p < m->npages[r]) {
			uint64_t q = p;
			int rc;

			if (!bit_test(b, p)) {
				p++;
				continue;
			}
			while (q < m->npages[r] && bit_test(b, q) && q - p < MIG_MAX_RUN_PAGES)
				q++;
			rc = send_span(m, r, p, q - p, skip_zero, rs);
			if (rc < 0)
				return rc;
			for (uint64_t k = p; k < q; k++)
				b[k / 64] &= ~(1ULL << (k % 64));
			p = q;
			/* A run may cross into later words; the outer loop skips cleared ones. */
			if (p >= (w + 1) * 64)
				break;
		}
	}
	return 0;
}

/*
 * Round 0: clear from region r's dirty bitmap the pages pop (vm_ram_populated) says were
 * never populated, and count them as zero pages, as send_span would have. They read as
 * zero and round 0 sends no zero page (the destination's RAM starts zero), so nothing is
 * lost but the reading: a fault mapping the zero page and a 4 KiB read each, about
 * 100 ms per untouched GiB on the test host, where asking the pagemap takes 1.5 ms.
 * Coalescing is unchanged: round 0 sends no ZERO records, and a page that breaks a PAGES
 * run here is zero, which broke it already.
 */
static void drop_unpopulated(struct mig_source *m, unsigned r, const uint64_t *pop,
			     struct mig_round_stat *rs)
{
	uint64_t *b = m->dirty[r];
	uint64_t words = (m->npages[r] + 63) / 64, n = 0;

	for (uint64_t w = 0; w < words; w++) {
		uint64_t z = b[w] & ~pop[w];

		if (w == words - 1 && m->npages[r] % 64)
			z &= (1ULL << (m->npages[r] % 64)) - 1;
		b[w] &= ~z;
		n += word_count(z);
	}
	rs->pages += n;
	rs->zero_pages += n;
}

/* A bitmap for vm_ram_populated, sized for the largest region; NULL if none can be had. */
static uint64_t *populated_alloc(const struct mig_source *m)
{
	uint64_t most = 0;

	for (unsigned r = 0; r < m->nreg; r++)
		most = m->npages[r] > most ? m->npages[r] : most;
	return most ? malloc((size_t)(most + 63) / 64 * sizeof(uint64_t)) : NULL;
}

int mig_send_pages(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs)
{
	uint64_t *pop = skip_zero ? populated_alloc(m) : NULL;
	int rc = 0;

	for (unsigned r = 0; r < m->nreg && rc == 0; r++) {
		/*
		 * The dirty bitmaps were fetched before this call (run_round follows
		 * fetch_dirty), the order vm_ram_populated needs: a page populated after it
		 * is a write the next fetch reports. If it cannot tell (a lazy restore still
		 * loading, no /proc), every dirty page is read, as in any other round.
		 */
		if (pop && vm_ram_populated(m->vm, r, pop) == 0)
			drop_unpopulated(m, r, pop, rs);
		rc = send_region(m, r, skip_zero, rs);
	}
	free(pop);
	return rc;
}

static bool block_is_zero(const uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += MIG_PAGE_BYTES)
		if (!page_is_zero(p + off))
			return false;
	return true;
}

size_t mig_block_len(const struct mig_source *m, uint64_t blk)
{
	uint64_t disk_bytes = vm_disk_bytes(m->vm), off = blk * VM_DISK_BLOCK_BYTES;

	return (size_t)(disk_bytes - off < VM_DISK_BLOCK_BYTES ? disk_bytes - off
							       : VM_DISK_BLOCK_BYTES);
}

int mig_read_block(struct mig_source *m, uint64_t blk)
{
	uint64_t off = blk * VM_DISK_BLOCK_BYTES;
	size_t len = mig_block_len(m, blk), got = 0;

	memset(m->disk_buf, 0, VM_DISK_BLOCK_BYTES);
	while (got < len) {
		ssize_t n = pread(m->disk_fd, m->disk_buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		got += (size_t)n;
	}
	return 0;
}

int mig_send_disk(struct mig_source *m, bool skip_zero, struct mig_round_stat *rs)
{
	const size_t bb = VM_DISK_BLOCK_BYTES;

	for (uint64_t blk = 0; blk < m->nblocks; blk++) {
		int rc;

		if (!bit_test(m->disk_dirty, blk))
			continue;
		if (mig_cancelled(m))
			return -ECANCELED;
		rc = mig_read_block(m, blk);
		if (rc < 0)
			return rc;
		if (block_is_zero(m->disk_buf, bb)) {
			if (!skip_zero)
				rc = send_run(m, MIG_REC_DISK_ZERO, 0, blk, 1, NULL, 0);
			else
				rc = 0;
		} else {
			rc = send_run(m, MIG_REC_DISK, 0, blk, 1, m->disk_buf, bb);
			m->round_bytes += bb;
			rate_limit(m);
		}
		if (rc < 0)
			return rc;
		m->disk_dirty[blk / 64] &= ~(1ULL << (blk % 64));
		rs->disk_blocks++;
	}
	return 0;
}
