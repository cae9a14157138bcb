/* Restoring a snapshot from an image repository into a new VM. */
#include "snapshot/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo/disk_sync.h"
#include "snapshot/lazy_mem.h"
#include "repo/lock.h"
#include "repo/repo.h"
#include "util/clock.h"
#include "util/io.h"

#define STATE_MAX_BYTES (64u << 20)

/* Mark what reads found damaged; " (marked ...)" for the message when any was (rs). */
static const char *mark_found(struct snap_restore *rs)
{
	uint64_t marked = 0;

	if (rs->repo)
		repo_mark_found(rs->repo, &marked, NULL, 0);
	return marked ? " (marked damaged: the next backup of the VM stores it again)" : "";
}

/* The restore lock, then the listing of the packs (rs, o, err, errlen). */
static int restore_lock(struct snap_restore *rs, const struct snap_restore_opts *o, char *err,
			size_t errlen)
{
	struct repo_lock_opts lo = { .wait_s = o ? o->lock_wait_s : 0, .s3 = o ? o->s3 : NULL };
	char why[1024];
	int rc;

	rc = repo_lock_acquire(&rs->lock, rs->repo, REPO_LOCK_RESTORE, NULL, &lo, why, sizeof(why));
	if (rc == -EACCES || rc == -EPERM || rc == -EROFS) {
		/* Read-only credentials still restore; only the protection from a prune is lost. */
		snprintf(rs->lock_note, sizeof(rs->lock_note), "%s: restoring without the restore "
			 "lock, so a prune meanwhile could delete what the VM still loads", why);
		rs->lock = NULL;
		rc = 0;
	} else if (rc == -EBUSY) {
		snprintf(err, errlen, "%s: nothing is restored while it runs%s", why,
			 lo.wait_s ? "" : " (pass --lock-wait SECONDS to wait for it)");
		return rc;
	}
	if (rc < 0) {
		snprintf(err, errlen, "%s", why);
		return rc;
	}
	rc = repo_packs_check(rs->repo, NULL);
	if (rc < 0)
		snprintf(err, errlen, "listing the packs of %s: %s", repo_location(rs->repo),
			 strerror(-rc));
	return rc;
}

int snap_restore_open(struct snap_restore *rs, struct repo *r, const char *id,
		      const struct snap_restore_opts *o, char *err, size_t errlen)
{
	char latest[SNAP_ID_BYTES];
	int rc;

	memset(rs, 0, sizeof(*rs));
	manifest_init(&rs->m);
	rs->repo = r;
	rc = restore_lock(rs, o, err, errlen);
	if (rc < 0)
		goto fail;
	if (strcmp(id, "latest") == 0) {
		rc = snap_resolve_latest(rs->repo, o ? o->vm_name : NULL, latest, err, errlen);
		if (rc < 0)
			goto fail;
		id = latest;
	}
	rc = snap_load(rs->repo, id, &rs->m, err, errlen);
	if (rc < 0)
		goto fail;
	rc = repo_blob_get(rs->repo, &rs->m.state_id, &rs->state, &rs->state_len);
	if (rc < 0) {
		snprintf(err, errlen, "snapshot %s: its VM state cannot be read: %s%s (run 'godwit "
			 "images verify')", rs->m.id, strerror(-rc), mark_found(rs));
		goto fail;
	}
	rc = vm_state_peek(rs->state, rs->state_len, &rs->info, err, errlen);
	if (rc < 0)
		goto fail;
	if (rs->info.ram_bytes != rs->m.ram_bytes || rs->info.disk_bytes != rs->m.disk_bytes) {
		snprintf(err, errlen, "snapshot %s: its state and manifest disagree on the machine",
			 rs->m.id);
		rc = -EBADMSG;
		goto fail;
	}
	rc = vm_state_check_cpu(rs->state, rs->state_len, err, errlen);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	snap_restore_close(rs);
	return rc;
}

int snap_restore_disk(struct snap_restore *rs, const char *path, const char *base, char *err,
		      size_t errlen)
{
	char partial[4096];
	uint64_t t0 = clock_now_ms();
	int fd, rc;

	if (!rs->m.disk_bytes) {
		snprintf(err, errlen, "snapshot %s has no disk, but a disk was given", rs->m.id);
		return -EINVAL;
	}
	if (base) {
		struct stat st;

		fd = open(base, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "--disk-base %s: %s", base, strerror(-rc));
			return rc;
		}
		/* An old copy of this disk has its size; anything else is another disk. */
		if (fstat(fd, &st) == 0 && (uint64_t)st.st_size != rs->m.disk_bytes) {
			snprintf(err, errlen, "--disk-base %s is %" PRIu64 " bytes, but the snapshot's "
				 "disk is %" PRIu64 ": pass a copy of the same disk", base,
				 (uint64_t)st.st_size, rs->m.disk_bytes);
			close(fd);
			return -EINVAL;
		}
		rc = disk_restore(rs->repo, &rs->m, fd, NULL);
		close(fd);
		if (rc < 0)
			snprintf(err, errlen, "updating %s from snapshot %s: %s%s", base, rs->m.id,
				 strerror(-rc), mark_found(rs));
		rs->disk_ms = clock_now_ms() - t0;
		return rc;
	}
	if (access(path, F_OK) == 0) {
		snprintf(err, errlen, "disk %s exists: restore writes a new image (remove it, or "
			 "pass --disk-base %s to update it in place)", path, path);
		return -EEXIST;
	}
	snprintf(partial, sizeof(partial), "%s.partial", path);
	fd = open(partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "disk %s: %s", partial, strerror(-rc));
		return rc;
	}
	rc = disk_restore(rs->repo, &rs->m, fd, NULL);
	close(fd);
	if (rc == 0 && rename(partial, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(partial);
		snprintf(err, errlen, "restoring the disk of snapshot %s to %s: %s%s", rs->m.id,
			 path, strerror(-rc), mark_found(rs));
	}
	rs->disk_ms = clock_now_ms() - t0;
	return rc;
}

/* The new VM's regions must be the snapshot's. */
static int check_regions(const struct snap_restore *rs, struct vm *vm, char *err, size_t errlen)
{
	unsigned n = vm_ram_nregions(vm);

	if (n != rs->m.nregions) {
		snprintf(err, errlen, "snapshot %s: %u RAM regions, the new VM has %u", rs->m.id,
			 rs->m.nregions, n);
		return -EPROTO;
	}
	for (unsigned r = 0; r < n; r++) {
		struct vm_ram_region vr;

		vm_ram_region(vm, r, &vr);
		if (vr.gpa != rs->m.regions[r].gpa || vr.bytes != rs->m.regions[r].bytes) {
			snprintf(err, errlen, "snapshot %s: RAM region %u differs from the new VM's",
				 rs->m.id, r);
			return -EPROTO;
		}
	}
	return 0;
}

/* Read every non-zero chunk into RAM. */
static int fill_ram_eager(struct snap_restore *rs, struct vm *vm, char *err, size_t errlen)
{
	uint64_t first = 0;

	for (unsigned r = 0; r < rs->m.nregions; r++) {
		const struct snap_region *sr = &rs->m.regions[r];
		struct vm_ram_region vr;

		vm_ram_region(vm, r, &vr);
		for (uint64_t c = 0; c < sr->nchunks; c++) {
			uint64_t off = c * sr->chunk_bytes;
			size_t len = (size_t)(sr->bytes - off < sr->chunk_bytes ? sr->bytes - off
										: sr->chunk_bytes);
			int rc;

			/* New RAM is zero: zero chunks need no write (and no page). */
			if (blob_id_is_zero(&sr->ids[c]))
				continue;
			rc = repo_blob_read(rs->repo, &sr->ids[c], vr.hva + off, len);
			if (rc < 0) {
				char id[BLOB_ID_HEX_BYTES];

				blob_id_hex(&sr->ids[c], id);
				snprintf(err, errlen, "snapshot %s: memory chunk %" PRIu64 " (gpa 0x%"
					 PRIx64 ", blob %.16s) cannot be read: %s%s (run 'godwit images "
					 "verify --repo %s')", rs->m.id, first + c, sr->gpa + off, id,
					 strerror(-rc), mark_found(rs), repo_location(rs->repo));
				return rc;
			}
		}
		first += sr->nchunks;
	}
	return 0;
}

/* Errors of lazy_mem_start that mean "no userfaultfd here", not "something broke". */
static bool lazy_unavailable(int rc)
{
	return rc == -ENOSYS || rc == -EPERM || rc == -EACCES || rc == -ENOTTY || rc == -EINVAL ||
	       rc == -EOPNOTSUPP;
}

int snap_restore_vm(struct snap_restore *rs, struct vm *vm, enum snap_ram_mode mode,
		    struct lazy_mem **lazy, char *err, size_t errlen)
{
	uint64_t t0 = clock_now_ms();
	int rc;

	*lazy = NULL;
	rs->ram_lazy = false;
	rs->ram_note[0] = '\0';
	rc = check_regions(rs, vm, err, errlen);
	if (rc < 0)
		return rc;
	if (mode == SNAP_RAM_LAZY) {
		rc = lazy_mem_start(lazy, vm, rs->repo, rs->lock, &rs->m, rs->ram_note,
				    sizeof(rs->ram_note));
		if (rc == 0) {
			rs->repo = NULL; /* the loader's now, and so is the lock */
			rs->lock = NULL;
			rs->ram_lazy = true;
		} else if (!lazy_unavailable(rc)) {
			snprintf(err, errlen, "%s", rs->ram_note);
			return rc;
		}
	}
	if (!rs->ram_lazy) {
		rc = fill_ram_eager(rs, vm, err, errlen);
		if (rc < 0)
			return rc;
		/* All of RAM is in: no pack is needed any more. */
		repo_lock_release(rs->lock);
		rs->lock = NULL;
	}
	rs->ram_ms = clock_now_ms() - t0;
	rc = vm_state_load(vm, rs->state, rs->state_len, err, errlen);
	if (rc < 0 && *lazy) {
		char why[8];

		lazy_mem_stop(*lazy, why, sizeof(why));
		lazy_mem_free(*lazy);
		*lazy = NULL;
	}
	return rc;
}

/* True if no page of [first, first + n) of a region is set in pop (never touched: zero). */
static bool untouched(const uint64_t *pop, uint64_t first, uint64_t n)
{
	for (uint64_t pg = first; pg < first + n; pg++)
		if ((pop[pg / 64] >> (pg % 64)) & 1)
			return false;
	return true;
}

static int verify_ram(struct snap_restore *rs, struct vm *vm, char *err, size_t errlen)
{
	uint64_t bad = 0, first_bad = 0;
	int rc = 0;

	for (unsigned r = 0; r < rs->m.nregions && rc == 0; r++) {
		const struct snap_region *sr = &rs->m.regions[r];
		uint64_t pages_per_chunk = sr->chunk_bytes / VM_PAGE_BYTES;
		uint64_t *pop = malloc((size_t)(sr->bytes / VM_PAGE_BYTES + 63) / 64 * 8);
		struct vm_ram_region vr;

		vm_ram_region(vm, r, &vr);
		if (pop && vm_ram_populated(vm, r, pop) < 0) {
			free(pop);
			pop = NULL;
		}
		for (uint64_t c = 0; c < sr->nchunks && rc == 0; c++) {
			uint64_t off = c * sr->chunk_bytes;
			size_t len = (size_t)(sr->bytes - off < sr->chunk_bytes ? sr->bytes - off
										: sr->chunk_bytes);
			bool same;

			/* Pages never touched read as zero: no need to fault them in to know. */
			if (pop && blob_id_is_zero(&sr->ids[c]) &&
			    untouched(pop, c * pages_per_chunk, (len + VM_PAGE_BYTES - 1) / VM_PAGE_BYTES))
				continue;
			rc = blob_id_matches(rs->repo, &sr->ids[c], vr.hva + off, len, &same);
			if (rc == 0 && !same && !bad++)
				first_bad = sr->gpa + off;
		}
		free(pop);
	}
	if (rc < 0) {
		snprintf(err, errlen, "--verify: hashing RAM: %s", strerror(-rc));
		return rc;
	}
	if (bad) {
		snprintf(err, errlen, "--verify: %" PRIu64 " RAM chunks of the restored VM (first at "
			 "gpa 0x%" PRIx64 ") differ from snapshot %s; it was not started", bad,
			 first_bad, rs->m.id);
		return -EBADMSG;
	}
	return 0;
}

static int verify_disk(struct snap_restore *rs, const char *path, char *err, size_t errlen)
{
	uint64_t bb = rs->m.disk_block_bytes, bad = 0, first_bad = 0;
	uint8_t *buf = malloc(bb ? bb : 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (!buf || fd < 0) {
		rc = fd < 0 ? -errno : -ENOMEM;
		snprintf(err, errlen, "--verify: disk %s: %s", path, strerror(-rc));
		goto out;
	}
	for (uint64_t b = 0; b < rs->m.disk_nblocks && rc == 0; b++) {
		uint64_t off = b * bb;
		size_t len = (size_t)(rs->m.disk_bytes - off < bb ? rs->m.disk_bytes - off : bb);
		bool same;

		rc = io_pread_all(fd, buf, len, off);
		if (rc == 0)
			rc = blob_id_matches(rs->repo, &rs->m.disk_ids[b], buf, len, &same);
		if (rc == 0 && !same && !bad++)
			first_bad = b;
	}
	if (rc < 0)
		snprintf(err, errlen, "--verify: reading disk %s: %s", path, strerror(-rc));
	else if (bad) {
		snprintf(err, errlen, "--verify: %" PRIu64 " blocks of disk %s (first: block %" PRIu64
			 ") differ from snapshot %s; the VM was not started", bad, path, first_bad,
			 rs->m.id);
		rc = -EBADMSG;
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int snap_restore_verify(struct snap_restore *rs, struct vm *vm, const char *disk_path,
			char *err, size_t errlen)
{
	int rc;

	if (!rs->repo) {
		snprintf(err, errlen, "--verify needs RAM restored eagerly");
		return -EINVAL;
	}
	rc = verify_ram(rs, vm, err, errlen);
	if (rc == 0 && disk_path && rs->m.disk_bytes)
		rc = verify_disk(rs, disk_path, err, errlen);
	return rc;
}

void snap_restore_close(struct snap_restore *rs)
{
	repo_lock_release(rs->lock);
	rs->lock = NULL;
	free(rs->state);
	rs->state = NULL;
	manifest_free(&rs->m);
	repo_close(rs->repo);
	rs->repo = NULL;
}
