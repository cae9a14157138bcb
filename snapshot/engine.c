/* Taking a snapshot of a running VM into an image repository: live rounds, short pause. */
#include "snapshot/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "repo/disk_sync.h"
#include "util/clock.h"
#include "util/io.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "repo/rsync_delta.h"

#define SNAP_DEFAULT_ROUNDS 8
/* Stop the live rounds once what is left copies in about this long while paused. */
#define SNAP_FINAL_BYTES (4ULL << 20)
#define SNAP_SIG_PIECE_BYTES (4u << 20)
#define SNAP_HOT_SAMPLE_US 20000
/* The most the pause copies to memory (hot chunks included): ~40 ms at 6 GB/s. */
#define SNAP_HOT_BUDGET_BYTES (256ULL << 20)
#define SNAP_SIG_MAX_BYTES (256u << 20)

struct snap_job {
	struct vm *vm;
	struct vm_dirty_consumer *dirty; /* the tracker's */
	struct repo *repo;
	struct snap_manifest m;
	struct snap_manifest parent; /* loaded when incremental */
	bool have_parent;
	/*
	 * The disk's parent: the memory parent, or else the newest snapshot of this VM
	 * name (a restarted VMM: its change log may still be valid after a clean exit, and
	 * the stored signature serves when it is not).
	 */
	struct snap_manifest disk_parent;
	bool have_disk_parent;
	unsigned nreg;
	struct vm_ram_region reg[SNAP_REGIONS_MAX];
	uint64_t *page_dirty[SNAP_REGIONS_MAX]; /* page bitmaps from vm_dirty_fetch */
	uint64_t *pending[SNAP_REGIONS_MAX];    /* chunk bitmaps: to copy */
	/*
	 * Chunks already copied once while the guest ran, or seen dirtied twice in a row:
	 * hot. A hot chunk is not copied live again (that would store a version nobody
	 * restores); it stays pending and is copied at the pause.
	 */
	uint64_t *hot[SNAP_REGIONS_MAX];
	uint32_t chunk_bytes;
	uint8_t *chunk_buf;
	/*
	 * The final dirty set, copied to memory just before the pause while the guest runs,
	 * then again in the pause for the chunks dirtied since; stored after resume.
	 * held_slot[r][c] is 1 + the slot chunk c of region r holds, 0 for none.
	 */
	uint8_t *held;
	size_t held_cap, held_n;
	struct { unsigned reg; uint64_t chunk; } *held_at;
	uint32_t *held_slot[SNAP_REGIONS_MAX];
	uint64_t *disk_changed;
	uint64_t disk_nblocks;
	int disk_fd;
	uint8_t *held_disk;
	uint64_t *held_disk_at;
	size_t held_disk_n;
	uint64_t mem_copied, disk_copied;
	uint64_t chunks_lost;
};

static uint64_t wall_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

static bool bit(const uint64_t *b, uint64_t i)
{
	return (b[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *b, uint64_t i)
{
	b[i / 64] |= 1ULL << (i % 64);
}

static uint64_t region_nchunks(const struct snap_job *j, unsigned r)
{
	return (j->reg[r].bytes + j->chunk_bytes - 1) / j->chunk_bytes;
}

/*
 * Fetch the dirty pages and mark their chunks pending (and hot too, when mark_hot);
 * *npending gets the pending chunks, *ncold those of them not hot.
 */
static int fetch_pending_hot(struct snap_job *j, bool mark_hot, uint64_t *npending,
			     uint64_t *ncold)
{
	uint64_t pages_per_chunk = j->chunk_bytes / VM_PAGE_BYTES, n = 0, cold = 0;

	for (unsigned r = 0; r < j->nreg; r++) {
		uint64_t npages = j->reg[r].bytes / VM_PAGE_BYTES;
		int rc;

		memset(j->page_dirty[r], 0, (npages + 63) / 64 * 8);
		rc = vm_dirty_fetch(j->dirty, r, j->page_dirty[r]);
		if (rc < 0)
			return rc;
		for (uint64_t w = 0; w < (npages + 63) / 64; w++) {
			uint64_t v = j->page_dirty[r][w];

			while (v) {
				uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(v);

				v &= v - 1;
				bit_set(j->pending[r], pg / pages_per_chunk);
				if (mark_hot)
					bit_set(j->hot[r], pg / pages_per_chunk);
			}
		}
		for (uint64_t c = 0; c < region_nchunks(j, r); c++) {
			n += bit(j->pending[r], c);
			cold += bit(j->pending[r], c) && !bit(j->hot[r], c);
		}
	}
	*npending = n;
	if (ncold)
		*ncold = cold;
	return 0;
}

static int fetch_pending(struct snap_job *j, uint64_t *npending)
{
	return fetch_pending_hot(j, false, npending, NULL);
}

static size_t chunk_len(const struct snap_job *j, unsigned r, uint64_t c)
{
	uint64_t off = c * j->chunk_bytes;

	return (size_t)(j->reg[r].bytes - off < j->chunk_bytes ? j->reg[r].bytes - off
								 : j->chunk_bytes);
}

/*
 * Copy every pending chunk into the repository while the guest runs. Each chunk is copied
 * to a private buffer first: the guest may write it while it is hashed and compressed,
 * and then it is dirty and copied again in a later round.
 */
static int copy_pending_live(struct snap_job *j, bool include_hot)
{
	for (unsigned r = 0; r < j->nreg; r++) {
		for (uint64_t c = 0; c < region_nchunks(j, r); c++) {
			size_t len;
			int rc;

			if (!bit(j->pending[r], c) || (bit(j->hot[r], c) && !include_hot))
				continue;
			len = chunk_len(j, r, c);
			memcpy(j->chunk_buf, j->reg[r].hva + c * j->chunk_bytes, len);
			rc = repo_chunk_put(j->repo, j->chunk_buf, len, &j->m.regions[r].ids[c]);
			if (rc < 0)
				return rc;
			j->pending[r][c / 64] &= ~(1ULL << (c % 64));
			bit_set(j->hot[r], c); /* copied once: if dirtied again, it is hot */
			j->mem_copied++;
		}
	}
	return 0;
}

/*
 * Before the pause: room for the chunks it will copy, touched now so that the copy in
 * the pause does not take a page fault per 4 KiB (100+ ms for 64 MiB on a busy host).
 */
static int hold_prepare(struct snap_job *j, uint64_t nchunks)
{
	size_t cap = (size_t)(nchunks + nchunks / 4 + 16);

	j->held = mmap(NULL, cap * j->chunk_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (j->held == MAP_FAILED) {
		j->held = NULL;
		return -ENOMEM;
	}
	j->held_cap = cap;
	j->held_at = calloc(cap, sizeof(*j->held_at));
	if (!j->held_at)
		return -ENOMEM;
	for (unsigned r = 0; r < j->nreg; r++) {
		j->held_slot[r] = calloc(region_nchunks(j, r), sizeof(*j->held_slot[r]));
		if (!j->held_slot[r])
			return -ENOMEM;
	}
	return 0;
}

/* Room for n more held chunks: grow, keeping what is held (slow, but rare). */
static int hold_reserve(struct snap_job *j, uint64_t n)
{
	size_t cap = j->held_n + n;
	uint8_t *bigger;
	void *at;

	if (cap <= j->held_cap)
		return 0;
	bigger = mremap(j->held, j->held_cap * j->chunk_bytes, cap * j->chunk_bytes,
			MREMAP_MAYMOVE);
	if (bigger == MAP_FAILED)
		return -ENOMEM;
	j->held = bigger;
	j->held_cap = cap;
	at = realloc(j->held_at, cap * sizeof(*j->held_at));
	if (!at)
		return -ENOMEM;
	j->held_at = at;
	return 0;
}

/*
 * Copy the pending chunks into held memory (fast), to store after resume: a chunk held
 * before is copied over its old slot. Called once while the guest runs, just before
 * the pause, and once in the pause for what was dirtied since.
 */
static int hold_pending(struct snap_job *j, uint64_t npending)
{
	int rc = hold_reserve(j, npending);

	if (rc < 0)
		return rc;
	for (unsigned r = 0; r < j->nreg; r++) {
		for (uint64_t c = 0; c < region_nchunks(j, r); c++) {
			size_t slot;

			if (!bit(j->pending[r], c))
				continue;
			if (j->held_slot[r][c]) {
				slot = j->held_slot[r][c] - 1;
			} else {
				slot = j->held_n++;
				j->held_slot[r][c] = (uint32_t)(slot + 1);
				j->held_at[slot].reg = r;
				j->held_at[slot].chunk = c;
			}
			memcpy(j->held + slot * j->chunk_bytes, j->reg[r].hva + c * j->chunk_bytes,
			       chunk_len(j, r, c));
			j->pending[r][c / 64] &= ~(1ULL << (c % 64));
		}
	}
	return 0;
}

static int store_held(struct snap_job *j)
{
	for (size_t i = 0; i < j->held_n; i++) {
		unsigned r = j->held_at[i].reg;
		uint64_t c = j->held_at[i].chunk;
		int rc = repo_chunk_put(j->repo, j->held + i * j->chunk_bytes, chunk_len(j, r, c),
					&j->m.regions[r].ids[c]);

		if (rc < 0)
			return rc;
		j->mem_copied++;
	}
	for (size_t i = 0; i < j->held_disk_n; i++) {
		uint64_t b = j->held_disk_at[i];
		uint64_t off = b * j->m.disk_block_bytes;
		size_t len = (size_t)(j->m.disk_bytes - off < j->m.disk_block_bytes
					      ? j->m.disk_bytes - off : j->m.disk_block_bytes);
		int rc = repo_chunk_put(j->repo, j->held_disk + i * j->m.disk_block_bytes, len,
					&j->m.disk_ids[b]);

		if (rc < 0)
			return rc;
		j->disk_copied++;
	}
	return 0;
}

/* While paused: read the disk blocks changed since the last fetch into memory. */
static int hold_disk_changes(struct snap_job *j, const char *id)
{
	uint64_t n = 0;
	int rc;

	memset(j->disk_changed, 0, (j->disk_nblocks + 63) / 64 * 8);
	rc = vm_disk_log_fetch(j->vm, j->disk_changed, id);
	if (rc < 0)
		return rc;
	for (uint64_t b = 0; b < j->disk_nblocks; b++)
		n += bit(j->disk_changed, b);
	j->held_disk = malloc(n ? n * j->m.disk_block_bytes : 1);
	j->held_disk_at = calloc(n ? n : 1, sizeof(*j->held_disk_at));
	if (!j->held_disk || !j->held_disk_at)
		return -ENOMEM;
	for (uint64_t b = 0; b < j->disk_nblocks; b++) {
		uint64_t off = b * j->m.disk_block_bytes;
		size_t len;

		if (!bit(j->disk_changed, b))
			continue;
		len = (size_t)(j->m.disk_bytes - off < j->m.disk_block_bytes
				       ? j->m.disk_bytes - off : j->m.disk_block_bytes);
		rc = io_pread_all(j->disk_fd, j->held_disk + j->held_disk_n * j->m.disk_block_bytes,
			       len, off);
		if (rc < 0)
			return rc;
		j->held_disk_at[j->held_disk_n++] = b;
	}
	return 0;
}

/*
 * --verify, in the pause, after the last copy: every chunk not held (copied in this
 * pause) must hold what its id says: copied live and not dirtied since, or the parent's
 * and not dirtied at all. A difference is a write the dirty log did not report. The same
 * for disk blocks not read in the pause. Returns 0, -EBADMSG with err, or -errno.
 */
static int verify_in_pause(struct snap_job *j, char *err, size_t errlen)
{
	uint64_t bad = 0, bad_blocks = 0, first_bad = 0;
	uint8_t *blk = NULL;
	int rc = 0;

	for (unsigned r = 0; r < j->nreg && rc == 0; r++) {
		for (uint64_t c = 0; c < region_nchunks(j, r) && rc == 0; c++) {
			bool same;

			if (j->held_slot[r][c])
				continue;
			rc = blob_id_matches(j->repo, &j->m.regions[r].ids[c],
					     j->reg[r].hva + c * j->chunk_bytes, chunk_len(j, r, c),
					     &same);
			if (rc == 0 && !same && !bad++)
				first_bad = j->reg[r].gpa + c * j->chunk_bytes;
		}
	}
	if (rc == 0 && j->disk_fd >= 0) {
		uint8_t *held_at = calloc(j->disk_nblocks ? j->disk_nblocks : 1, 1);

		blk = malloc(j->m.disk_block_bytes);
		rc = blk && held_at ? 0 : -ENOMEM;
		for (size_t i = 0; rc == 0 && i < j->held_disk_n; i++)
			held_at[j->held_disk_at[i]] = 1;
		for (uint64_t b = 0; rc == 0 && b < j->disk_nblocks; b++) {
			uint64_t off = b * j->m.disk_block_bytes;
			size_t len = (size_t)(j->m.disk_bytes - off < j->m.disk_block_bytes
						      ? j->m.disk_bytes - off : j->m.disk_block_bytes);
			bool same;

			if (held_at[b])
				continue;
			rc = io_pread_all(j->disk_fd, blk, len, off);
			if (rc == 0)
				rc = blob_id_matches(j->repo, &j->m.disk_ids[b], blk, len, &same);
			if (rc == 0 && !same)
				bad_blocks++;
		}
		free(held_at);
	}
	free(blk);
	if (rc < 0) {
		snprintf(err, errlen, "snapshot: --verify: %s", strerror(-rc));
		return rc;
	}
	if (bad || bad_blocks) {
		snprintf(err, errlen, "snapshot: --verify: %" PRIu64 " RAM chunks (first at gpa "
			 "0x%" PRIx64 ") and %" PRIu64 " disk blocks differ from what the snapshot "
			 "would hold; nothing was published", bad, first_bad, bad_blocks);
		return -EBADMSG;
	}
	return 0;
}

/* The parent, if this snapshot can be incremental against it. */
static void load_parent(struct snap_job *j, struct snap_tracker *t, const struct snap_params *p)
{
	char err[256];

	if (!t->valid || strcmp(t->repo, p->repo) != 0 || !t->parent[0])
		return;
	if (snap_load(j->repo, t->parent, &j->parent, err, sizeof(err)) < 0)
		return;
	if (j->parent.nregions != j->nreg || j->parent.ram_bytes != vm_ram_bytes(j->vm)) {
		manifest_free(&j->parent);
		return;
	}
	for (unsigned r = 0; r < j->nreg; r++) {
		if (j->parent.regions[r].gpa != j->reg[r].gpa ||
		    j->parent.regions[r].bytes != j->reg[r].bytes ||
		    j->parent.regions[r].chunk_bytes != j->chunk_bytes) {
			manifest_free(&j->parent);
			return;
		}
	}
	j->have_parent = true;
}

static void load_disk_parent(struct snap_job *j, const struct snap_params *p)
{
	char id[SNAP_ID_BYTES], err[256];

	if (snap_find_latest(j->repo, p->vm_name ? p->vm_name : "vm", id) < 0)
		return;
	if (snap_load(j->repo, id, &j->disk_parent, err, sizeof(err)) < 0)
		return;
	if (j->disk_parent.disk_bytes != j->m.disk_bytes ||
	    j->disk_parent.disk_block_bytes != j->m.disk_block_bytes) {
		manifest_free(&j->disk_parent);
		return;
	}
	j->have_disk_parent = true;
}

/* The S3 client's retry lines, for the result; its upload threads write too. */
struct s3_notes {
	pthread_mutex_t mu;
	struct snap_result *res;
};

static void s3_note(void *arg, const char *line)
{
	struct s3_notes *n = arg;
	size_t used, len = strlen(line);

	pthread_mutex_lock(&n->mu);
	n->res->s3_retries++;
	used = strlen(n->res->s3_log);
	if (used + len + 2 < sizeof(n->res->s3_log)) {
		memcpy(n->res->s3_log + used, line, len);
		memcpy(n->res->s3_log + used + len, "\n", 2);
	}
	pthread_mutex_unlock(&n->mu);
}

/* The disk parent's blocks whose stored copy was lost: disk_capture reads them again. */
static void count_lost_blocks(struct snap_job *j)
{
	const struct snap_manifest *dp = j->have_parent ? &j->parent
					: j->have_disk_parent ? &j->disk_parent : NULL;

	for (uint64_t b = 0; dp && b < dp->disk_nblocks; b++)
		j->chunks_lost += !repo_blob_known(j->repo, &dp->disk_ids[b]);
}

/*
 * Take the snapshot lock, then list the packs (j, p, lock, res, err, errlen): from here
 * until the manifest is published no prune deletes a pack, and the index says no more
 * than the listing found, so nothing is deduplicated against, or taken from the parent,
 * that is not stored.
 */
static int snap_lock_and_check(struct snap_job *j, const struct snap_params *p,
			       const struct backend_s3_opts *s3, struct repo_lock **lock,
			       struct snap_result *res, char *err, size_t errlen)
{
	struct repo_lock_opts lo = { .wait_s = p->lock_wait_s, .s3 = s3 };
	char why[1024];
	int rc = 0;

	if (!p->repo_locked)
		rc = repo_lock_acquire(lock, j->repo, REPO_LOCK_SNAPSHOT,
				       p->vm_name ? p->vm_name : "vm", &lo, why, sizeof(why));
	if (rc == -EBUSY) {
		snprintf(err, errlen, "snapshot: %s: no snapshot while it runs%s", why,
			 p->lock_wait_s ? "" : " (pass --lock-wait SECONDS to wait for it)");
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "snapshot: %s", why);
		return rc;
	}
	rc = repo_packs_check(j->repo, &res->packs_absent);
	if (rc < 0) {
		char msg[512];

		backend_error(repo_backend(j->repo), msg, sizeof(msg));
		snprintf(err, errlen, "snapshot: listing the packs of %s: %s", p->repo,
			 msg[0] ? msg : strerror(-rc));
	}
	return rc;
}

static int job_setup(struct snap_job *j, struct snap_tracker *t, const struct snap_params *p)
{
	int rc;

	j->chunk_bytes = repo_config_of(j->repo)->chunk_bytes;
	if (j->chunk_bytes % VM_PAGE_BYTES)
		return -EINVAL;
	j->nreg = vm_ram_nregions(j->vm);
	if (j->nreg > SNAP_REGIONS_MAX)
		return -E2BIG;
	manifest_init(&j->m);
	manifest_init(&j->parent);
	manifest_init(&j->disk_parent);
	for (unsigned r = 0; r < j->nreg; r++) {
		uint64_t npages;

		vm_ram_region(j->vm, r, &j->reg[r]);
		npages = j->reg[r].bytes / VM_PAGE_BYTES;
		j->page_dirty[r] = calloc((npages + 63) / 64, 8);
		j->pending[r] = calloc((region_nchunks(j, r) + 63) / 64, 8);
		j->hot[r] = calloc((region_nchunks(j, r) + 63) / 64, 8);
		if (!j->page_dirty[r] || !j->pending[r] || !j->hot[r])
			return -ENOMEM;
		rc = manifest_add_region(&j->m, j->reg[r].gpa, j->reg[r].bytes, j->chunk_bytes);
		if (rc < 0)
			return rc;
	}
	j->chunk_buf = malloc(j->chunk_bytes);
	if (!j->chunk_buf)
		return -ENOMEM;
	load_parent(j, t, p);
	if (j->have_parent) {
		for (unsigned r = 0; r < j->nreg; r++) {
			memcpy(j->m.regions[r].ids, j->parent.regions[r].ids,
			       region_nchunks(j, r) * sizeof(struct blob_id));
			/* A chunk whose stored copy was lost is copied again, like a dirty one. */
			for (uint64_t c = 0; c < region_nchunks(j, r); c++) {
				if (repo_blob_known(j->repo, &j->m.regions[r].ids[c]))
					continue;
				bit_set(j->pending[r], c);
				j->chunks_lost++;
			}
		}
	} else {
		for (unsigned r = 0; r < j->nreg; r++)
			memset(j->pending[r], 0xff, (region_nchunks(j, r) + 63) / 64 * 8);
	}
	if (vm_disk_present(j->vm)) {
		rc = manifest_set_disk(&j->m, vm_disk_bytes(j->vm), (uint32_t)VM_DISK_BLOCK_BYTES);
		if (rc < 0)
			return rc;
		j->disk_nblocks = j->m.disk_nblocks;
		j->disk_changed = calloc((j->disk_nblocks + 63) / 64 + 1, 8);
		if (!j->disk_changed)
			return -ENOMEM;
		j->disk_fd = open(vm_disk_path(j->vm), O_RDONLY | O_CLOEXEC);
		if (j->disk_fd < 0)
			return -errno;
		if (!j->have_parent)
			load_disk_parent(j, p);
		count_lost_blocks(j);
	}
	return 0;
}

static void job_free(struct snap_job *j)
{
	for (unsigned r = 0; r < SNAP_REGIONS_MAX; r++) {
		free(j->page_dirty[r]);
		free(j->pending[r]);
		free(j->hot[r]);
	}
	free(j->chunk_buf);
	if (j->held)
		munmap(j->held, j->held_cap * j->chunk_bytes);
	free(j->held_at);
	for (unsigned r = 0; r < SNAP_REGIONS_MAX; r++)
		free(j->held_slot[r]);
	free(j->held_disk);
	free(j->held_disk_at);
	free(j->disk_changed);
	if (j->disk_fd >= 0)
		close(j->disk_fd);
	manifest_free(&j->m);
	manifest_free(&j->parent);
	manifest_free(&j->disk_parent);
}

/*
 * Capture the disk while the guest runs (the blocks changed during the capture are read
 * again while paused, from the change log). With a valid log relative to the parent only
 * the changed blocks are read; without one, the parent's librsync signature finds them
 * (an rsync delta at block granularity); with neither, every block is read and dedup
 * keeps only the new ones. A fresh signature is stored with every snapshot.
 */
static int capture_disk_live(struct snap_job *j, const char **mode)
{
	const struct snap_manifest *parent = j->have_parent ? &j->parent
					    : j->have_disk_parent ? &j->disk_parent : NULL;
	const uint64_t *changed = NULL;
	uint8_t *old_sig = NULL, *new_sig = NULL;
	size_t old_len = 0, new_len = 0;
	uint64_t nchanged = 0;
	char why[256];
	int rc;

	if (parent && vm_disk_log_valid(j->vm, parent->id)) {
		rc = vm_disk_log_fetch(j->vm, j->disk_changed, j->m.id);
		if (rc < 0)
			return rc;
		changed = j->disk_changed;
		*mode = "log";
		/*
		 * The parent's signature patched where the log says is the new one: the
		 * blocks that did not change are not read again (a full signature reads
		 * the whole disk, seconds per GiB, on every snapshot).
		 */
		if (parent->nsig &&
		    repo_blob_get_concat(j->repo, parent->sig_ids, parent->nsig,
					 SNAP_SIG_MAX_BYTES, &old_sig, &old_len) == 0 &&
		    rsd_signature_update(old_sig, old_len, j->disk_fd, j->m.disk_bytes, changed,
					 why, sizeof(why)) == 0) {
			new_sig = old_sig;
			new_len = old_len;
			old_sig = NULL;
		}
		free(old_sig);
	} else {
		/* The log restarts from here whatever happens below. */
		rc = vm_disk_log_fetch(j->vm, j->disk_changed, j->m.id);
		if (rc < 0)
			return rc;
		memset(j->disk_changed, 0, (j->disk_nblocks + 63) / 64 * 8);
		*mode = "full";
		if (parent && parent->nsig) {
			rc = repo_blob_get_concat(j->repo, parent->sig_ids, parent->nsig,
						  SNAP_SIG_MAX_BYTES, &old_sig, &old_len);
			if (rc == 0)
				rc = rsd_changed_blocks(old_sig, old_len, j->disk_fd, j->m.disk_bytes,
							j->disk_changed, &nchanged, &new_sig,
							&new_len, why, sizeof(why));
			if (rc == 0) {
				changed = j->disk_changed;
				*mode = "rsync";
			}
			free(old_sig);
		}
	}
	rc = disk_capture(j->repo, j->disk_fd, parent, changed, &j->m, NULL);
	if (rc == 0 && !new_sig)
		rc = rsd_signature(j->disk_fd, j->m.disk_bytes, (uint32_t)VM_DISK_BLOCK_BYTES,
				   &new_sig, &new_len, why, sizeof(why));
	if (rc == 0) {
		struct blob_id *ids = NULL;
		uint32_t n = 0;

		rc = repo_blob_put_split(j->repo, BLOB_T_SIG, new_sig, new_len,
					 SNAP_SIG_PIECE_BYTES, &ids, &n);
		if (rc == 0)
			rc = manifest_set_sig(&j->m, ids, n);
		free(ids);
	}
	free(new_sig);
	for (uint64_t b = 0; b < j->disk_nblocks; b++)
		j->disk_copied += changed ? bit(changed, b) : 1;
	return rc;
}

/* Whether p's caller called the snapshot off (p). */
static bool snap_cancelled(const struct snap_params *p)
{
	return p->cancel && atomic_load(p->cancel);
}

/* The guest's pause during one snapshot: who holds it, and when each part of it began (us). */
struct snap_pause {
	bool paused;
	uint64_t t_pause, t_stopped, t_copied;
};

/* Open p->repo with p's key file, if any, and the S3 options s3. Returns 0 or -errno. */
static int snap_open_repo(struct repo **r, const struct snap_params *p,
			  const struct backend_s3_opts *s3, char *err, size_t errlen)
{
	struct repo_key key;
	int rc;

	if (!p->key_file)
		return repo_open_ex(r, p->repo, s3, NULL, err, errlen);
	rc = repo_key_load(&key, p->key_file, err, errlen);
	if (rc == 0)
		rc = repo_open_ex(r, p->repo, s3, &key, err, errlen);
	repo_key_wipe(&key);
	return rc;
}

/* The new manifest's identity: id, time, names, parent, machine. */
static void snap_manifest_init(struct snap_job *j, const struct snap_params *p)
{
	j->m.created_ns = wall_ns();
	snap_id_make(j->m.created_ns, j->m.id);
	snprintf(j->m.vm_name, sizeof(j->m.vm_name), "%s", p->vm_name ? p->vm_name : "vm");
	snprintf(j->m.godwit_version, sizeof(j->m.godwit_version), "%s", GODWIT_VERSION);
	if (j->have_parent)
		snprintf(j->m.parent, sizeof(j->m.parent), "%s", j->parent.id);
	j->m.ram_bytes = vm_ram_bytes(j->vm);
	j->m.ncpus = vm_ncpus(j->vm);
}

/*
 * Start from the dirty log: the pending set (every page for a full snapshot, else those
 * dirtied since the parent), less what is hot right now. Returns 0 or -errno with err.
 */
static int snap_start_logging(struct snap_job *j, struct snap_tracker *t,
			      const struct snap_params *p, uint64_t *npending, char *err,
			      size_t errlen)
{
	int rc;

	/*
	 * Logging must run from before the first copy: every page after it is caught. The
	 * tracker's consumer stays registered between snapshots (a first one reports every
	 * page, which a full snapshot copies anyway).
	 */
	rc = t->dirty ? 0 : vm_dirty_register(j->vm, &t->dirty);
	j->dirty = t->dirty;
	if (rc == 0)
		rc = fetch_pending(j, npending); /* full: resets its view; else: since parent */
	if (rc == 0 && j->have_parent && !p->no_live) {
		/* What the guest dirties within a moment is hot: leave it for the pause. */
		usleep(SNAP_HOT_SAMPLE_US);
		rc = fetch_pending_hot(j, true, npending, NULL);
	}
	if (rc < 0)
		snprintf(err, errlen, "snapshot: dirty logging: %s", strerror(-rc));
	return rc;
}

/*
 * Copy while the guest runs (with --no-live: pause first, then copy it all): the disk,
 * then rounds of cold RAM chunks until what is left fits the pause. Returns 0 or -errno
 * with err (-ECANCELED when p's caller called it off).
 */
static int snap_copy_live(struct snap_job *j, const struct snap_params *p,
			  struct snap_result *res, struct snap_pause *pz, uint64_t *npending,
			  const char **disk_mode, char *err, size_t errlen)
{
	unsigned max_rounds = p->max_rounds ? p->max_rounds : SNAP_DEFAULT_ROUNDS;
	int rc = 0;

	if (p->no_live) {
		pz->t_pause = clock_now_us();
		rc = vm_pause_by(j->vm, VM_PAUSE_SNAPSHOT);
		pz->paused = rc == 0;
		pz->t_stopped = clock_now_us();
	}
	if (rc == 0 && j->disk_fd >= 0)
		rc = capture_disk_live(j, disk_mode);
	/*
	 * Live rounds copy cold chunks (pending, not yet copied in this snapshot); a chunk
	 * dirtied again after its copy turns hot and waits for the pause. Rounds end when
	 * what is cold fits the final copy, or after max_rounds.
	 */
	for (unsigned round = 0; rc == 0; round++) {
		uint64_t ncold = 0;

		/*
		 * min_bytes (godwit backup): a dirty set the pause can hold is not copied
		 * live at all, so no chunk is stored twice; the pause copies it to memory.
		 */
		if (round == 0 && p->min_bytes && *npending * j->chunk_bytes <= SNAP_HOT_BUDGET_BYTES)
			break;
		if (snap_cancelled(p)) {
			rc = -ECANCELED;
			break;
		}
		/* A hot set too big to copy in a short pause is copied live again. */
		rc = copy_pending_live(j, *npending * j->chunk_bytes > SNAP_HOT_BUDGET_BYTES &&
					      round > 0);
		if (rc < 0)
			break;
		res->rounds = round + 1;
		if (pz->paused) /* --no-live: one pass, all of it while paused */
			break;
		rc = fetch_pending_hot(j, false, npending, &ncold);
		if (rc < 0 || round + 1 >= max_rounds ||
		    (ncold * j->chunk_bytes <= SNAP_FINAL_BYTES &&
		     *npending * j->chunk_bytes <= SNAP_HOT_BUDGET_BYTES))
			break;
	}
	if (rc == 0 && snap_cancelled(p))
		rc = -ECANCELED;
	if (rc < 0)
		snprintf(err, errlen, "snapshot: copying RAM to %s: %s%s", p->repo, strerror(-rc),
			 rc == -ECANCELED ? " (the VM is stopping): nothing is stored" : "");
	return rc;
}

/*
 * Memory for the final set, and that set copied to it while the guest still runs: the
 * pause then copies only the chunks dirtied during this memcpy (the dirty log since the
 * last fetch). Returns 0 or -errno with err.
 */
static int snap_hold_final(struct snap_job *j, const struct snap_pause *pz, uint64_t npending,
			   char *err, size_t errlen)
{
	int rc = hold_prepare(j, npending);

	if (rc == 0 && !pz->paused)
		rc = hold_pending(j, npending);
	if (rc < 0)
		snprintf(err, errlen, "snapshot: no memory for the final copy: %s", strerror(-rc));
	return rc;
}

/*
 * The pause: the last dirty set, the disk blocks changed meanwhile, --verify, the state
 * blob into *state; then the guest runs again and res has the pause's parts. Returns 0
 * or -errno with err; on a --verify failure the guest is still paused (pz->paused).
 */
static int snap_pause_and_capture(struct snap_job *j, const struct snap_params *p,
				  struct snap_result *res, struct snap_pause *pz, uint8_t **state,
				  size_t *state_len, char *err, size_t errlen)
{
	uint64_t npending = 0;
	int rc;

	if (!pz->paused) {
		pz->t_pause = clock_now_us();
		rc = vm_pause_by(j->vm, VM_PAUSE_SNAPSHOT);
		if (rc < 0) {
			snprintf(err, errlen, "snapshot: cannot pause the VM: %s", strerror(-rc));
			return rc;
		}
		pz->paused = true;
		pz->t_stopped = clock_now_us();
	}
	rc = fetch_pending(j, &npending);
	if (rc == 0)
		rc = hold_pending(j, npending);
	if (rc == 0 && j->disk_fd >= 0)
		rc = hold_disk_changes(j, j->m.id);
	pz->t_copied = clock_now_us();
	if (rc == 0 && p->verify) {
		char why[320];

		rc = verify_in_pause(j, why, sizeof(why));
		res->pause_verify_us = clock_now_us() - pz->t_copied;
		if (rc < 0) {
			snprintf(err, errlen, "%s", why);
			res->pause_us = clock_now_us() - pz->t_pause;
			return rc;
		}
	}
	if (rc == 0)
		rc = vm_state_save(j->vm, state, state_len);
	/*
	 * The pause: from asking the vCPUs to stop to asking them to run again, as QEMU
	 * counts its downtime. Read before vm_resume: the woken vCPU thread may take the
	 * CPU from this one, and the guest runs meanwhile.
	 */
	res->pause_us = clock_now_us() - pz->t_pause;
	res->pause_ms = (res->pause_us + 500) / 1000;
	res->pause_stop_us = pz->t_stopped - pz->t_pause;
	res->pause_copy_us = pz->t_copied - pz->t_stopped;
	res->pause_state_us = pz->t_pause + res->pause_us - pz->t_copied;
	vm_resume_by(j->vm, VM_PAUSE_SNAPSHOT);
	pz->paused = false;
	if (rc < 0)
		snprintf(err, errlen, "snapshot: capturing the paused VM: %s", strerror(-rc));
	return rc;
}

/*
 * After the resume: store what was held and the state, publish the manifest, fill res
 * and make t the parent of the next snapshot (before: the repository's counts at the
 * start; t0_ms: the start). Returns 0 or -errno with err.
 */
static int snap_store_and_publish(struct snap_job *j, struct snap_tracker *t,
				  const struct snap_params *p, struct snap_result *res,
				  const struct repo_stats *before, uint64_t t0_ms,
				  const uint8_t *state, size_t state_len, const char *disk_mode,
				  char *err, size_t errlen)
{
	struct repo_stats after;
	int rc;

	rc = store_held(j);
	if (rc == 0)
		rc = repo_blob_put(j->repo, BLOB_T_STATE, state, state_len, &j->m.state_id);
	if (rc < 0) {
		snprintf(err, errlen, "snapshot: writing to %s: %s", p->repo, strerror(-rc));
		return rc;
	}
	repo_stats_get(j->repo, &after);
	j->m.stats.bytes_new = after.bytes_new_raw - before->bytes_new_raw;
	j->m.stats.pause_ms = res->pause_ms;
	j->m.stats.duration_ms = clock_now_ms() - t0_ms;
	rc = snap_publish(j->repo, &j->m, err, errlen);
	if (rc < 0)
		return rc;
	repo_stats_get(j->repo, &after);
	snprintf(res->id, sizeof(res->id), "%s", j->m.id);
	snprintf(res->parent, sizeof(res->parent), "%s", j->m.parent);
	res->total_ms = clock_now_ms() - t0_ms;
	res->bytes_new = after.bytes_new_raw - before->bytes_new_raw;
	res->bytes_new_stored = after.bytes_new_stored - before->bytes_new_stored;
	res->mem_chunks_copied = j->mem_copied;
	res->disk_blocks_copied = j->disk_copied;
	res->disk_mode = disk_mode;
	snprintf(t->repo, sizeof(t->repo), "%s", p->repo);
	snprintf(t->parent, sizeof(t->parent), "%s", j->m.id);
	t->valid = true;
	return 0;
}

int snap_take(struct vm *vm, struct snap_tracker *t, const struct snap_params *p,
	      struct snap_result *res, char *err, size_t errlen)
{
	struct snap_job j = { .vm = vm, .disk_fd = -1 };
	uint64_t t0 = clock_now_ms(), npending = 0;
	struct snap_pause pz = { 0 };
	struct repo_stats before;
	struct repo_lock *lock = NULL;
	struct s3_notes notes = { .mu = PTHREAD_MUTEX_INITIALIZER, .res = res };
	struct backend_s3_opts s3 = { .endpoint = p->endpoint, .retry_s = p->s3_retry_s,
				      .note = s3_note, .note_arg = &notes, .cancel = p->cancel };
	const char *disk_mode = "none";
	uint8_t *state = NULL;
	size_t state_len = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = snap_open_repo(&j.repo, p, &s3, err, errlen);
	if (rc < 0)
		return rc;
	rc = snap_lock_and_check(&j, p, &s3, &lock, res, err, errlen);
	if (rc < 0)
		goto out;
	repo_stats_get(j.repo, &before);
	rc = job_setup(&j, t, p);
	if (rc < 0) {
		snprintf(err, errlen, "snapshot: setting up: %s", strerror(-rc));
		goto out;
	}
	snap_manifest_init(&j, p);
	rc = snap_start_logging(&j, t, p, &npending, err, errlen);
	if (rc == 0)
		rc = snap_copy_live(&j, p, res, &pz, &npending, &disk_mode, err, errlen);
	if (rc == 0)
		rc = snap_hold_final(&j, &pz, npending, err, errlen);
	if (rc == 0)
		rc = snap_pause_and_capture(&j, p, res, &pz, &state, &state_len, err, errlen);
	if (rc == 0)
		rc = snap_store_and_publish(&j, t, p, res, &before, t0, state, state_len,
					    disk_mode, err, errlen);
out:
	if (pz.paused)
		vm_resume_by(vm, VM_PAUSE_SNAPSHOT);
	if (rc < 0) {
		/* Its view now lacks what this attempt fetched: the next snapshot is full. */
		t->valid = false;
		snap_tracker_release(t);
	}
	/* A failed snapshot (a full disk) takes no space: its packs are nobody's. */
	if (rc < 0)
		repo_abandon(j.repo, NULL, NULL);
	/* What a read found damaged (a parent's signature) is stored again next time. */
	repo_mark_found(j.repo, NULL, NULL, 0);
	repo_lock_release(lock);
	free(state);
	job_free(&j);
	repo_close(j.repo);
	return rc;
}

void snap_tracker_release(struct snap_tracker *t)
{
	vm_dirty_unregister(t->dirty);
	t->dirty = NULL;
	t->valid = false;
}
