/* Lazy restore of guest RAM: first touches are served from the repository through userfaultfd. */
#include "snapshot/lazy_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "repo/lock.h"
#include "repo/repo.h"
#include "util/clock.h"
#include "vmm/vm_lifecycle.h"

#define LAZY_EVENTS_PER_READ 16
/* Chunks the walk fetches right after a faulting one, before going on: 512 KiB. */
#define LAZY_READAHEAD_CHUNKS 8

/* One RAM region and its part of the memory map. */
struct lazy_region {
	uint8_t *hva;
	uint64_t gpa;
	uint64_t bytes;
	uint32_t chunk_bytes;
	uint64_t nchunks;
	uint64_t first_chunk;    /* index of its chunk 0 counted across regions, for messages */
	struct blob_id *ids;     /* nchunks, copied from the manifest; read-only */
	atomic_uchar *resident;  /* per chunk: 1 once copied or zero-mapped; both threads */
};

/*
 * Two threads serve the RAM, and the caller's thread starts and stops them:
 *   fault thread  sleeps in poll() on the userfaultfd; serves faults; owns the
 *                 userfaultfd's end (unregister, close) and joins the walker first;
 *   walker        fetches every chunk not yet resident, in the background. (At a
 *                 lower priority, nice 5, it took 60% longer to finish on a busy
 *                 2-core host and the guest's faults were served no faster.)
 * Each has its own chunk buffer; they share the repository under repo_lock (one
 * blob read at a time, as a struct repo requires). Both may fill the same chunk when a
 * fault hits the one the walker is fetching: the second UFFDIO_COPY finds the pages
 * there (-EEXIST) and stops, and only the first to mark the chunk resident counts it.
 */
struct lazy_mem {
	struct vm *vm;
	char snap_id[SNAP_ID_BYTES];
	unsigned nreg;
	struct lazy_region reg[SNAP_REGIONS_MAX];
	uint64_t t0_ns;
	pthread_mutex_t repo_lock;
	struct repo *repo;        /* under repo_lock */
	struct repo_lock *restore_lock; /* the fault thread releases it (or lazy_mem_free) */
	int uffd;                 /* the fault thread closes it; -1 then */
	int wake_fd;              /* eventfd: wakes the fault thread (stop, error, all done) */
	uint8_t *fault_buf;       /* fault thread */
	uint8_t *walk_buf;        /* walker */
	unsigned walk_reg;        /* walker: the next chunk to look at */
	uint64_t walk_chunk;
	unsigned ra_reg;          /* walker: the readahead window [ra_next, ra_end) of ra_reg */
	uint64_t ra_next, ra_end;
	atomic_uint_fast64_t pending; /* non-zero chunks not resident yet */
	atomic_uint_fast64_t hint;    /* 1 + (region << 48 | chunk) of the last fault; 0: none */
	atomic_bool stop;         /* lazy_mem_stop, an error, or all resident: threads end */
	pthread_t fault_thread;
	pthread_t walk_thread;
	bool joinable;            /* caller's thread: the fault thread is still to be joined */
	/* Under lock: written by both threads, read by anyone. */
	pthread_mutex_t lock;
	struct lazy_mem_stats st;
	int rc;
	char err[400];
};

static void wake_fault_thread(struct lazy_mem *lm)
{
	uint64_t one = 1;

	if (write(lm->wake_fd, &one, sizeof(one)) < 0) {
		/* Only EAGAIN (the counter is full): a wakeup is pending anyway. */
	}
}

/* ---- userfaultfd ------------------------------------------------------------------- */

/*
 * A userfaultfd that may handle faults raised inside the kernel (KVM's get_user_pages),
 * not only user-mode ones: the system call needs privilege for that unless
 * vm.unprivileged_userfaultfd is 1; /dev/userfaultfd (Linux 6.1) grants it to whoever
 * may open the device.
 */
static int uffd_open(char *err, size_t errlen)
{
	int fd, rc;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	rc = -errno;
#ifdef USERFAULTFD_IOC_NEW
	if (rc == -EPERM || rc == -ENOSYS) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);

		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
			if (fd >= 0)
				return fd;
		}
	}
#endif
	snprintf(err, errlen, "userfaultfd: %s%s", strerror(-rc),
		 rc == -EPERM ? " (no CAP_SYS_PTRACE, vm.unprivileged_userfaultfd is 0 and "
				"/dev/userfaultfd is not usable)" : "");
	return rc;
}

static int uffd_wake(int uffd, uint8_t *addr, uint64_t len)
{
	struct uffdio_range r = { .start = (uintptr_t)addr, .len = len };

	return ioctl(uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

/*
 * Fill [dst, dst + len) with src (src non-NULL) or with zero pages. Partial progress
 * and -EAGAIN (the mm changing under us) are handled here. -EEXIST means a page is there
 * already, which only this loader can have put there (the RAM started empty): the other
 * thread filling the same chunk, or an earlier partial attempt; when *done_flag says the
 * other thread finished the chunk, stop, else skip the page. Each successful call wakes
 * the threads waiting on what it filled.
 */
static int uffd_fill(int uffd, uint8_t *dst, const uint8_t *src, uint64_t len,
		     atomic_uchar *done_flag)
{
	uint64_t done = 0;

	while (done < len) {
		int64_t progress;
		int rc, e;

		if (src) {
			struct uffdio_copy cp = {
				.dst = (uintptr_t)(dst + done),
				.src = (uintptr_t)(src + done),
				.len = len - done,
			};

			rc = ioctl(uffd, UFFDIO_COPY, &cp);
			e = errno;
			progress = cp.copy;
		} else {
			struct uffdio_zeropage zp = {
				.range = { .start = (uintptr_t)(dst + done), .len = len - done },
			};

			rc = ioctl(uffd, UFFDIO_ZEROPAGE, &zp);
			e = errno;
			progress = zp.zeropage;
		}
		if (rc == 0)
			return 0;
		if (progress > 0) {
			done += (uint64_t)progress;
		} else if (e == EAGAIN || e == EINTR) {
			sched_yield();
		} else if (e == EEXIST) {
			if (atomic_load(done_flag))
				return 0;
			rc = uffd_wake(uffd, dst + done, VM_PAGE_BYTES);
			if (rc < 0)
				return rc;
			done += VM_PAGE_BYTES;
		} else {
			return -e;
		}
	}
	return 0;
}

/* Unregister every region and close the userfaultfd: waiting threads retry as usual. */
static void uffd_close(struct lazy_mem *lm)
{
	if (lm->uffd < 0)
		return;
	for (unsigned r = 0; r < lm->nreg; r++) {
		struct uffdio_range range = {
			.start = (uintptr_t)lm->reg[r].hva, .len = lm->reg[r].bytes,
		};

		ioctl(lm->uffd, UFFDIO_UNREGISTER, &range);
	}
	close(lm->uffd);
	lm->uffd = -1;
}

static int uffd_setup(struct lazy_mem *lm, char *err, size_t errlen)
{
	const uint64_t need = 1ULL << _UFFDIO_COPY | 1ULL << _UFFDIO_ZEROPAGE | 1ULL << _UFFDIO_WAKE;
	struct uffdio_api api = { .api = UFFD_API };
	int rc;

	lm->uffd = uffd_open(err, errlen);
	if (lm->uffd < 0)
		return lm->uffd;
	if (ioctl(lm->uffd, UFFDIO_API, &api) < 0) {
		rc = -errno;
		snprintf(err, errlen, "userfaultfd: UFFDIO_API: %s", strerror(-rc));
		goto fail;
	}
	for (unsigned r = 0; r < lm->nreg; r++) {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)lm->reg[r].hva, .len = lm->reg[r].bytes },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(lm->uffd, UFFDIO_REGISTER, &reg) < 0) {
			rc = -errno;
			snprintf(err, errlen, "userfaultfd: registering RAM region %u: %s", r,
				 strerror(-rc));
			goto fail;
		}
		if ((reg.ioctls & need) != need) {
			snprintf(err, errlen, "userfaultfd: RAM region %u cannot be filled by copy",
				 r);
			rc = -EINVAL;
			goto fail;
		}
	}
	return 0;
fail:
	uffd_close(lm);
	return rc;
}

/* ---- Filling chunks (both threads) ----------------------------------------------- */

static uint64_t chunk_len(const struct lazy_region *g, uint64_t c)
{
	uint64_t off = c * g->chunk_bytes;

	return g->bytes - off < g->chunk_bytes ? g->bytes - off : g->chunk_bytes;
}

/* Record the first error for lazy_mem_stop (lm, g, c, rc, what, marked). */
static void loader_fail(struct lazy_mem *lm, const struct lazy_region *g, uint64_t c, int rc,
			const char *what, bool marked)
{
	char id[BLOB_ID_HEX_BYTES];

	blob_id_hex(&g->ids[c], id);
	pthread_mutex_lock(&lm->lock);
	if (lm->rc == 0) {
		lm->rc = rc;
		snprintf(lm->err, sizeof(lm->err), "snapshot %s: memory chunk %" PRIu64 " (gpa 0x%"
			 PRIx64 ", blob %.16s) %s: %s%s (run 'godwit images verify --repo %s')",
			 lm->snap_id, g->first_chunk + c, g->gpa + c * g->chunk_bytes, id, what,
			 strerror(-rc), marked ? " (marked damaged: the next backup of the VM "
			 "stores it again)" : "", repo_location(lm->repo));
	}
	pthread_mutex_unlock(&lm->lock);
}

/* A thread's own error that names no chunk (lm, rc, what). */
static void loader_fail_other(struct lazy_mem *lm, int rc, const char *what)
{
	pthread_mutex_lock(&lm->lock);
	if (lm->rc == 0) {
		lm->rc = rc;
		snprintf(lm->err, sizeof(lm->err), "snapshot %s: %s: %s", lm->snap_id, what,
			 strerror(-rc));
	}
	pthread_mutex_unlock(&lm->lock);
}

/*
 * Make chunk c of region g resident (lm, g, c, buf, on_fault): fetched into buf and
 * copied, or mapped as zeros. Returns 0 or -errno (recorded).
 */
static int loader_fill(struct lazy_mem *lm, struct lazy_region *g, uint64_t c, uint8_t *buf,
		       bool on_fault)
{
	uint8_t *dst = g->hva + c * g->chunk_bytes;
	uint64_t len = chunk_len(g, c);
	bool zero = blob_id_is_zero(&g->ids[c]);
	int rc;

	if (!zero) {
		bool marked = false;

		pthread_mutex_lock(&lm->repo_lock);
		rc = repo_blob_read(lm->repo, &g->ids[c], buf, (size_t)len);
		if (rc < 0) {
			/* Marked by this read, or by the other thread's of the same chunk. */
			repo_mark_found(lm->repo, NULL, NULL, 0);
			marked = (rc == -EBADMSG || rc == -EPROTO) &&
				 !repo_blob_known(lm->repo, &g->ids[c]);
		}
		pthread_mutex_unlock(&lm->repo_lock);
		if (rc < 0) {
			loader_fail(lm, g, c, rc, "cannot be read", marked);
			return rc;
		}
	}
	rc = uffd_fill(lm->uffd, dst, zero ? NULL : buf, len, &g->resident[c]);
	if (rc < 0) {
		loader_fail(lm, g, c, rc, "cannot be placed in guest RAM", false);
		return rc;
	}
	if (atomic_exchange(&g->resident[c], 1))
		return 0; /* the other thread filled it too, and counted it */
	pthread_mutex_lock(&lm->lock);
	if (zero) {
		lm->st.zero_on_fault++;
	} else {
		lm->st.bytes_fetched += len;
		if (on_fault)
			lm->st.chunks_on_fault++;
		else
			lm->st.chunks_prefetched++;
	}
	pthread_mutex_unlock(&lm->lock);
	if (!zero && atomic_fetch_sub(&lm->pending, 1) == 1)
		wake_fault_thread(lm);
	return 0;
}

/* ---- The fault thread ------------------------------------------------------------- */

static int loader_fault(struct lazy_mem *lm, uint64_t addr)
{
	for (unsigned r = 0; r < lm->nreg; r++) {
		struct lazy_region *g = &lm->reg[r];
		uint64_t off = addr - (uintptr_t)g->hva, c;

		if (off >= g->bytes)
			continue;
		c = off / g->chunk_bytes;
		/*
		 * Already resident: the fault was queued before the fill, which woke its
		 * thread already. Waking again is harmless and covers a thread that slipped
		 * in between.
		 */
		if (atomic_load(&g->resident[c]))
			return uffd_wake(lm->uffd, (uint8_t *)(uintptr_t)(addr & ~(VM_PAGE_BYTES - 1)),
					 VM_PAGE_BYTES);
		/* The walker fetches what follows next: a guest sweeping memory finds it there. */
		atomic_store(&lm->hint, ((uint64_t)r << 48 | c) + 1);
		return loader_fill(lm, g, c, lm->fault_buf, true);
	}
	/* Only registered ranges fault here, and those are the regions. */
	return -EFAULT;
}

/* Serve every fault queued now. Returns 0 when none is left, or -errno. */
static int loader_serve_faults(struct lazy_mem *lm)
{
	struct uffd_msg msg[LAZY_EVENTS_PER_READ];

	for (;;) {
		ssize_t n = read(lm->uffd, msg, sizeof(msg));

		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		pthread_mutex_lock(&lm->lock);
		lm->st.faults += (uint64_t)n / sizeof(msg[0]);
		pthread_mutex_unlock(&lm->lock);
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			int rc;

			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			rc = loader_fault(lm, msg[i].arg.pagefault.address);
			if (rc < 0)
				return rc;
		}
	}
}

/*
 * Serve faults until every non-zero chunk is resident, an error, or lazy_mem_stop. The
 * thread sleeps in poll() between faults, so a fault is read as soon as the scheduler
 * runs it. On an error (here or in the walker), the timeline that keeps the guest from
 * running on bad memory:
 *   1. the error is recorded (loader_fail);
 *   2. vm_request_stop: each vCPU gets immediate_exit and a signal, so a vCPU blocked on
 *      a fault leaves KVM_RUN once it is resolved, without entering the guest, and none
 *      enters it again;
 *   3. the walker is joined, then uffd_close: every waiting thread is woken and finds
 *      zeros where chunks are missing (a device model finishing a request), never a hang.
 */
static void *loader_fault_thread(void *arg)
{
	struct lazy_mem *lm = arg;
	struct pollfd pfd[2] = {
		{ .fd = lm->uffd, .events = POLLIN },
		{ .fd = lm->wake_fd, .events = POLLIN },
	};
	uint64_t count;
	int rc = 0;

	pthread_setname_np(pthread_self(), "lazy_fault");
	for (;;) {
		rc = loader_serve_faults(lm);
		if (rc < 0 || atomic_load(&lm->stop) || atomic_load(&lm->pending) == 0)
			break;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			rc = -errno;
			loader_fail_other(lm, rc, "waiting for guest RAM faults");
			break;
		}
		if (pfd[1].revents & POLLIN && read(lm->wake_fd, &count, sizeof(count)) < 0) {
			/* EAGAIN: another thread read it first; nothing is lost. */
		}
	}
	if (rc < 0) {
		if (rc == -EFAULT)
			loader_fail_other(lm, rc, "a RAM fault outside guest RAM");
		else
			loader_fail_other(lm, rc, "serving guest RAM faults");
	}
	pthread_mutex_lock(&lm->lock);
	rc = lm->rc;
	pthread_mutex_unlock(&lm->lock);
	if (rc < 0)
		vm_request_stop(lm->vm);
	atomic_store(&lm->stop, true);
	pthread_join(lm->walk_thread, NULL);
	uffd_close(lm);
	pthread_mutex_lock(&lm->lock);
	if (lm->rc == 0 && atomic_load(&lm->pending) == 0) {
		lm->st.complete = true;
		lm->st.resident_ms = (clock_now_ns() - lm->t0_ns) / 1000000;
	}
	pthread_mutex_unlock(&lm->lock);
	/* Every chunk is in (or the VM is stopping): the packs are not needed any more. */
	repo_lock_release(lm->restore_lock);
	lm->restore_lock = NULL;
	return NULL;
}

/* ---- The walker --------------------------------------------------------------------- */

/*
 * The next chunk to fetch (lm, g, c), or false when the walk is over: first the
 * LAZY_READAHEAD_CHUNKS after the last fault, then the memory map in address order.
 * Every chunk is fetched once either way; this only chooses the order.
 */
static bool walk_next(struct lazy_mem *lm, struct lazy_region **g, uint64_t *c)
{
	uint64_t h = atomic_exchange(&lm->hint, 0);

	if (h) {
		lm->ra_reg = (unsigned)((h - 1) >> 48);
		lm->ra_next = ((h - 1) & ((1ULL << 48) - 1)) + 1;
		lm->ra_end = lm->ra_next + LAZY_READAHEAD_CHUNKS;
		if (lm->ra_end > lm->reg[lm->ra_reg].nchunks)
			lm->ra_end = lm->reg[lm->ra_reg].nchunks;
	}
	while (lm->ra_next < lm->ra_end) {
		struct lazy_region *rg = &lm->reg[lm->ra_reg];
		uint64_t i = lm->ra_next++;

		if (!atomic_load(&rg->resident[i]) && !blob_id_is_zero(&rg->ids[i])) {
			*g = rg;
			*c = i;
			return true;
		}
	}
	while (lm->walk_reg < lm->nreg) {
		struct lazy_region *wg = &lm->reg[lm->walk_reg];
		uint64_t i = lm->walk_chunk;

		if (i >= wg->nchunks) {
			lm->walk_reg++;
			lm->walk_chunk = 0;
			continue;
		}
		lm->walk_chunk++;
		/* Zero chunks need nothing: once unregistered they fault in as zeros. */
		if (atomic_load(&wg->resident[i]) || blob_id_is_zero(&wg->ids[i]))
			continue;
		*g = wg;
		*c = i;
		return true;
	}
	return false;
}

static void *loader_walk_thread(void *arg)
{
	struct lazy_mem *lm = arg;
	struct lazy_region *g;
	uint64_t c;

	pthread_setname_np(pthread_self(), "lazy_walk");
	while (!atomic_load(&lm->stop) && walk_next(lm, &g, &c)) {
		if (loader_fill(lm, g, c, lm->walk_buf, false) < 0) {
			atomic_store(&lm->stop, true);
			break;
		}
	}
	wake_fault_thread(lm);
	return NULL;
}

/* ---- Public ------------------------------------------------------------------------ */

static int lazy_regions(struct lazy_mem *lm, struct vm *vm, const struct snap_manifest *m,
			char *err, size_t errlen)
{
	uint64_t first = 0, pending = 0;

	lm->nreg = vm_ram_nregions(vm);
	if (lm->nreg != m->nregions || lm->nreg > SNAP_REGIONS_MAX) {
		snprintf(err, errlen, "snapshot %s: %u RAM regions, the new VM has %u", m->id,
			 m->nregions, lm->nreg);
		return -EPROTO;
	}
	for (unsigned r = 0; r < lm->nreg; r++) {
		const struct snap_region *sr = &m->regions[r];
		struct lazy_region *g = &lm->reg[r];
		struct vm_ram_region vr;

		vm_ram_region(vm, r, &vr);
		if (vr.gpa != sr->gpa || vr.bytes != sr->bytes || vr.bytes % VM_PAGE_BYTES ||
		    (uintptr_t)vr.hva % VM_PAGE_BYTES || sr->chunk_bytes % VM_PAGE_BYTES ||
		    sr->nchunks >= 1ULL << 48) {
			snprintf(err, errlen, "snapshot %s: RAM region %u differs from the new VM's",
				 m->id, r);
			return -EPROTO;
		}
		*g = (struct lazy_region){
			.hva = vr.hva, .gpa = vr.gpa, .bytes = vr.bytes,
			.chunk_bytes = sr->chunk_bytes, .nchunks = sr->nchunks, .first_chunk = first,
		};
		g->ids = malloc(sr->nchunks * sizeof(*g->ids) + 1);
		g->resident = calloc(sr->nchunks + 1, sizeof(*g->resident));
		if (!g->ids || !g->resident)
			return -ENOMEM;
		memcpy(g->ids, sr->ids, sr->nchunks * sizeof(*g->ids));
		for (uint64_t c = 0; c < sr->nchunks; c++)
			pending += !blob_id_is_zero(&sr->ids[c]);
		first += sr->nchunks;
	}
	atomic_store(&lm->pending, pending);
	return 0;
}

static void lazy_release(struct lazy_mem *lm)
{
	for (unsigned r = 0; r < SNAP_REGIONS_MAX; r++) {
		free(lm->reg[r].ids);
		free(lm->reg[r].resident);
	}
	free(lm->fault_buf);
	free(lm->walk_buf);
	if (lm->wake_fd >= 0)
		close(lm->wake_fd);
	pthread_mutex_destroy(&lm->repo_lock);
	pthread_mutex_destroy(&lm->lock);
	free(lm);
}

int lazy_mem_start(struct lazy_mem **out, struct vm *vm, struct repo *repo,
		   struct repo_lock *lock, const struct snap_manifest *m, char *err,
		   size_t errlen)
{
	uint32_t chunk_max = VM_PAGE_BYTES;
	struct lazy_mem *lm;
	int rc;

	lm = calloc(1, sizeof(*lm));
	if (!lm)
		return -ENOMEM;
	pthread_mutex_init(&lm->lock, NULL);
	pthread_mutex_init(&lm->repo_lock, NULL);
	lm->vm = vm;
	lm->uffd = -1;
	lm->t0_ns = clock_now_ns();
	atomic_init(&lm->stop, false);
	atomic_init(&lm->hint, 0);
	snprintf(lm->snap_id, sizeof(lm->snap_id), "%s", m->id);
	lm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (lm->wake_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(-rc));
		goto err_free;
	}
	rc = lazy_regions(lm, vm, m, err, errlen);
	if (rc < 0)
		goto err_free;
	for (unsigned r = 0; r < lm->nreg; r++)
		chunk_max = lm->reg[r].chunk_bytes > chunk_max ? lm->reg[r].chunk_bytes : chunk_max;
	lm->fault_buf = aligned_alloc(VM_PAGE_BYTES, chunk_max);
	lm->walk_buf = aligned_alloc(VM_PAGE_BYTES, chunk_max);
	if (!lm->fault_buf || !lm->walk_buf) {
		rc = -ENOMEM;
		goto err_free;
	}
	/*
	 * The RAM of a new restore shell is untouched; dropping any page that is present
	 * anyway makes "only the loader fills pages" a fact, which is what lets an -EEXIST
	 * from UFFDIO_COPY mean "filled by the loader already".
	 */
	for (unsigned r = 0; r < lm->nreg; r++)
		madvise(lm->reg[r].hva, lm->reg[r].bytes, MADV_DONTNEED);
	rc = uffd_setup(lm, err, errlen);
	if (rc < 0)
		goto err_free;
	lm->repo = repo;
	lm->restore_lock = lock;
	rc = -pthread_create(&lm->walk_thread, NULL, loader_walk_thread, lm);
	if (rc < 0)
		goto err_thread;
	rc = -pthread_create(&lm->fault_thread, NULL, loader_fault_thread, lm);
	if (rc < 0) {
		atomic_store(&lm->stop, true);
		pthread_join(lm->walk_thread, NULL);
		goto err_thread;
	}
	lm->joinable = true;
	*out = lm;
	return 0;
err_thread:
	snprintf(err, errlen, "cannot start the RAM loader threads: %s", strerror(-rc));
	lm->repo = NULL;
	lm->restore_lock = NULL;
	uffd_close(lm);
err_free:
	lazy_release(lm);
	return rc;
}

int lazy_mem_stop(struct lazy_mem *lm, char *err, size_t errlen)
{
	int rc;

	if (lm->joinable) {
		atomic_store(&lm->stop, true);
		wake_fault_thread(lm);
		pthread_join(lm->fault_thread, NULL);
		lm->joinable = false;
	}
	pthread_mutex_lock(&lm->lock);
	rc = lm->rc;
	if (rc < 0)
		snprintf(err, errlen, "%s", lm->err);
	pthread_mutex_unlock(&lm->lock);
	return rc;
}

void lazy_mem_stats(struct lazy_mem *lm, struct lazy_mem_stats *out)
{
	pthread_mutex_lock(&lm->lock);
	*out = lm->st;
	pthread_mutex_unlock(&lm->lock);
}

void lazy_mem_free(struct lazy_mem *lm)
{
	char err[8];

	if (!lm)
		return;
	lazy_mem_stop(lm, err, sizeof(err));
	repo_lock_release(lm->restore_lock); /* the fault thread never ran to its end */
	repo_close(lm->repo);
	lazy_release(lm);
}
