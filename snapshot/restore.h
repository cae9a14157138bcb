/* Restoring a snapshot from an image repository into a new VM. */
#ifndef SNAPSHOT_RESTORE_H
#define SNAPSHOT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/manifest.h"
#include "vmm/vm_state.h"

struct backend_s3_opts;
struct lazy_mem;
struct repo;
struct repo_lock;

/* How snap_restore_vm fills guest RAM. */
enum snap_ram_mode {
	SNAP_RAM_LAZY = 1, /* on demand through userfaultfd (lazy_mem.h), eager if unavailable */
	SNAP_RAM_EAGER,    /* every chunk read and copied before the vCPUs start */
};

/* How snap_restore_open finds the snapshot and locks the repository. */
struct snap_restore_opts {
	const char *vm_name;  /* with id "latest": the newest snapshot of this VM */
	unsigned lock_wait_s; /* wait this long for a prune holding the repository's lock */
	const struct backend_s3_opts *s3; /* for the lock, as the repository's (may be NULL) */
};

/* A restore in progress: the repository, the manifest and the state blob. */
struct snap_restore {
	struct repo *repo; /* NULL once a lazy loader owns it */
	struct repo_lock *lock; /* the restore lock; NULL once released or a lazy loader owns it */
	struct snap_manifest m;
	uint8_t *state;
	size_t state_len;
	struct vm_state_info info;
	uint64_t ram_ms;  /* time spent filling RAM (eager) or registering it (lazy) */
	uint64_t disk_ms; /* time spent bringing the disk up to date */
	bool ram_lazy;     /* snap_restore_vm left RAM to a lazy loader */
	char ram_note[256]; /* why SNAP_RAM_LAZY copied RAM eagerly after all; "" otherwise */
	char lock_note[1200]; /* why the restore runs without its lock (read-only); "" otherwise */
};

/*
 * From the open repository r (rs owns it from here, on failure too), load snapshot id
 * ("latest" for the newest, of o->vm_name when set), fetch its state and check that this
 * host can run it (CPU features) (rs, r, id, o, err, errlen). rs->info says what VM to
 * create. First the restore lock is taken (lock.h; -EBUSY after o->lock_wait_s while a
 * prune runs) and held until every chunk of RAM is resident, so no prune deletes a pack
 * the restored VM still reads (a repository this host may only read gets no lock:
 * rs->lock_note says so, and the restore goes on); then the packs are listed (repo_packs_check), so a blob
 * with a copy in a lost pack is read from another copy if the index has one. "latest"
 * never falls back silently: a damaged newest manifest is refused, naming the newest
 * intact one (snap_resolve_latest). A blob that reads back damaged is marked
 * (repo_mark_found), so the next backup stores it again. Returns 0, or -errno with a
 * one-line reason in err (unknown id, missing features listed by name, a damaged object).
 * On failure rs holds nothing to free.
 */
int snap_restore_open(struct snap_restore *rs, struct repo *r, const char *id,
		      const struct snap_restore_opts *o, char *err, size_t errlen);

/*
 * Make the image at path the snapshot's disk. With base NULL, path must not exist: it is
 * created and filled (zero blocks stay sparse); with base, the file at base is brought up
 * to date in place (only blocks that differ are fetched) and path is ignored. The new
 * image is written as PATH.partial and renamed when complete. Returns 0 or -errno with
 * err.
 */
int snap_restore_disk(struct snap_restore *rs, const char *path, const char *base, char *err,
		      size_t errlen);

/*
 * Fill vm's RAM from the snapshot and load its vCPU, VM and device state (rs, vm, mode,
 * lazy, err, errlen). vm comes from vm_create_for_restore with rs->info's machine and is
 * not started.
 * SNAP_RAM_EAGER reads every non-zero chunk into RAM first, then releases the restore
 * lock; *lazy is set to NULL. SNAP_RAM_LAZY registers RAM with userfaultfd and starts
 * the loader (lazy_mem.h): *lazy is set, owns the repository and the restore lock from
 * then on (rs->repo and rs->lock become NULL; rs may be closed at once; the loader
 * releases the lock once all of RAM is resident), and the caller must lazy_mem_stop it
 * after the VM stopped and before
 * vm_destroy, report its error if any, then lazy_mem_free it. When this host has no
 * usable userfaultfd, RAM is copied eagerly instead, *lazy is NULL and rs->ram_note says
 * why. Returns 0 or -errno with err (on failure *lazy is NULL and nothing is left
 * running).
 */
int snap_restore_vm(struct snap_restore *rs, struct vm *vm, enum snap_ram_mode mode,
		    struct lazy_mem **lazy, char *err, size_t errlen);

/*
 * --verify (rs, vm, disk_path, err, errlen): before the VM starts, compare every RAM chunk
 * of vm and every block of the image at disk_path (NULL: no disk) with the snapshot's:
 * the blob id of what is there (blob_id_compute, as the snapshot stored it) against the
 * manifest's, a zero id against all-zero data. Needs RAM filled eagerly (rs->repo still
 * open: SNAP_RAM_EAGER, or a lazy restore that fell back). Reads all of RAM and the disk
 * and hashes what is not zero (README has the cost). Returns 0, -EBADMSG with what differs
 * in err, or another -errno.
 */
int snap_restore_verify(struct snap_restore *rs, struct vm *vm, const char *disk_path,
			char *err, size_t errlen);

void snap_restore_close(struct snap_restore *rs);

#endif
