/* Repository locks: lock objects under locks/ that keep backups of one VM apart and prune's sweep away from writers. */
#ifndef REPO_LOCK_H
#define REPO_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backend_s3_opts;
struct repo;

/*
 * Four kinds of lock, all objects of the repository's backend, so they work the same on
 * a local directory and on S3, and across hosts:
 *
 *   backup (per VM)  held by 'godwit backup' from before the snapshot until its
 *                    retention is done. Conflicts with a backup lock of the same VM and
 *                    with a prune lock; backups of other VMs run side by side.
 *   snapshot (per VM) held by the engine (snap_take) from before it reads the index
 *                    until the manifest is published: its dedup relies on packs a sweep
 *                    could delete. Conflicts with a prune lock only. A backup's snapshot
 *                    runs under the backup lock instead (snap_params.repo_locked).
 *   restore          held by a restore (snap_restore_open) from before it reads the
 *                    manifest until every chunk of RAM is resident (lazy_mem.h): the
 *                    running VM still needs its packs. Conflicts with a prune lock only.
 *   prune            held for prune's sweep (prune.h) and repair. Conflicts with every
 *                    other lock: a sweep never runs while a writer writes packs it has
 *                    not indexed yet, relies on old blobs it found in the index (dedup),
 *                    or a restored VM still reads them.
 *
 * Objects are write-once (backend.h), so a lock is a series of objects, one per
 * heartbeat, named
 *
 *    locks/backup-<vm tag>-<nonce>-<seq>     locks/prune-<nonce>-<seq>
 *    locks/snapshot-<vm tag>-<nonce>-<seq>   locks/restore-<nonce>-<seq>
 *
 * vm tag: the first 16 bytes, in hex, of blob_id_compute("godwit lock: " VM name): the
 * name itself in no object name, keyed in an encrypted repository. nonce: 8 random
 * bytes in hex, one per acquisition. seq: 8 hex digits, 0 at acquisition, one more per
 * heartbeat: the holder puts seq + 1, then removes seq; a reader takes the objects of
 * one nonce as one lock. Lock objects are never sealed (a reader without the key could
 * not judge them; the heartbeat thread has no repository): they show the host name.
 *
 * Format (text, LF-terminated lines, in this order, at most LOCK_OBJECT_MAX bytes):
 *
 *    godwit-lock 1|2                 magic and version; changing the lines below
 *                                    requires a version bump. Version 2 adds the kinds
 *                                    snapshot and restore, and only they are written as
 *                                    2: a version-1 reader takes them for a newer
 *                                    godwit's lock (a conflict, never stale), so it
 *                                    never sweeps under them, while backup and prune
 *                                    locks stay readable to it
 *    kind backup|prune|snapshot|restore
 *    vm-tag <32 hex>|-               "-" for prune and restore
 *    vm <name>|-                     plaintext repositories only, for messages
 *    host <hostname>
 *    boot-id <kernel boot id>        /proc/sys/kernel/random/boot_id
 *    pid <decimal>
 *    pid-start <decimal>             the process's start time, clock ticks after boot
 *    started-ns <decimal>            unix time of the acquisition
 *    heartbeat-ns <decimal>          unix time this object was written
 *
 * Acquisition, and why two contenders never both win:
 *   1. list locks/ and read each object; remove stale ones (below), with a note;
 *   2. a live conflicting lock: wait (up to wait_s, polling) or fail with -EBUSY;
 *   3. put our object (seq 0);
 *   4. list and read again: a live conflicting lock other than ours means a contender
 *      raced us: remove ours, back off 100-800 ms at random, and go to 1 (for at least
 *      LOCK_RACE_S seconds even with wait_s = 0, so two simultaneous starts settle).
 * If A and B race, each puts (3) before it lists (4). Whichever lists last lists after
 * both puts completed, and S3 lists are strongly consistent (since December 2020), as
 * are directories: so at least one sees the other and backs off; at most one proceeds.
 *
 * Stale locks: a lock is stale when its newest heartbeat is older than stale_s (10
 * minutes by default) by the reader's clock, or more than stale_s ahead of it (a
 * heartbeat counts as at most now + stale_s, so a wrong clock or a forged date cannot
 * hold a lock forever), or, when host and boot id are the reader's
 * own, when its pid is not running or is another process (pid-start differs). A stale
 * lock is removed, with a note, and the acquisition goes on. Clocks of hosts sharing a
 * repository must agree to well within stale_s (NTP). A holder that cannot refresh its
 * heartbeat for stale_s (S3 unreachable) may find its lock taken over: repo_lock_check
 * then reports -ENOLCK, and callers skip the steps that needed the lock.
 *
 * Threads: acquisition and release run on the caller's thread; a heartbeat thread,
 * started by acquisition, refreshes the lock every heartbeat_s on its own backend
 * handle. A struct repo_lock is used by one caller thread.
 */
#define LOCK_OBJECT_MAX 1024
#define LOCK_PREFIX "locks/"
#define LOCK_RACE_S 3

enum repo_lock_kind {
	REPO_LOCK_BACKUP = 1,
	REPO_LOCK_PRUNE = 2,
	REPO_LOCK_SNAPSHOT = 3,
	REPO_LOCK_RESTORE = 4,
};

/* Receives one line per stale lock removed (arg, line), without a newline. */
typedef void (*repo_lock_note_fn)(void *arg, const char *line);

struct repo_lock;

struct repo_lock_opts {
	unsigned wait_s;      /* wait this long for a conflicting lock; 0: fail at once */
	unsigned heartbeat_s; /* refresh period; 0: 60 s */
	unsigned stale_s;     /* a heartbeat older than this is stale; 0: 600 s */
	const struct repo_lock *own; /* a lock the caller holds, never a conflict (NULL) */
	const struct backend_s3_opts *s3; /* for an s3:// repository, as repo_open_ex (may be NULL) */
	repo_lock_note_fn note;
	void *note_arg;
};

/*
 * Take a lock of kind on the repository r was opened on (out, r, kind, vm_name, o, err,
 * errlen); vm_name for REPO_LOCK_BACKUP and REPO_LOCK_SNAPSHOT, NULL for the others. r is used on this thread for
 * the vm tag and its location; the lock opens its own backend handle, so r may be
 * closed while the lock is held. Returns 0; -EBUSY when a conflicting live lock was
 * still there after o->wait_s (err names its holder: kind, host, pid, start and last
 * heartbeat); -EINVAL (no vm_name for a backup); a backend error (err says which); or
 * -ENOMEM. Acquisition and release may run on different threads, one after the other
 * (a lazy restore releases on its loader thread).
 */
int repo_lock_acquire(struct repo_lock **out, struct repo *r, enum repo_lock_kind kind,
		      const char *vm_name, const struct repo_lock_opts *o, char *err,
		      size_t errlen);

/*
 * Whether l is still ours (l): its newest object exists and the last heartbeat did not
 * fail for longer than stale_s / 2. Returns 0, -ENOLCK (removed by someone who judged it
 * stale, or not refreshed in time), or a backend error.
 */
int repo_lock_check(struct repo_lock *l);

/* Stop the heartbeat, remove the lock's objects and free l (may be NULL). */
void repo_lock_release(struct repo_lock *l);

/* The object name of l's current heartbeat (l), for tests and messages. */
const char *repo_lock_name(const struct repo_lock *l);

/*
 * A host-local exclusive lock for key (fd, key, wait_s, err, errlen): flock(2) on
 * $GODWIT_LOCK_DIR, /run/lock or /tmp "/godwit-<hash of key>.lock", polled every 100 ms
 * for up to wait_s seconds. It keeps two runs on one host apart exactly and at once,
 * before any remote lock is tried. The file holds the holder's pid, for the message.
 * Returns 0 with *fd to close to release; -EBUSY (err: "held by pid P"); or an error.
 */
int lock_local_acquire(int *fd, const char *key, unsigned wait_s, char *err, size_t errlen);

#endif
