/* Durable publish: a file appears whole under its name, or not at all, even across a crash. */
#ifndef UTIL_DURABLE_H
#define UTIL_DURABLE_H

#include <stddef.h>
#include <sys/types.h>

/* The suffix of a file being written; a crash between write and rename leaves one behind. */
#define DURABLE_PARTIAL_SUFFIX ".partial"

/* durable_publish flags. */
enum {
	DURABLE_NOREPLACE = 1 << 0,  /* fail with -EEXIST rather than replace name */
	DURABLE_EXACT_MODE = 1 << 1, /* fchmod to mode, whatever the umask (secrets: 0600) */
};

/*
 * fsync the directory that holds name, so a name created or renamed there survives a
 * crash (dirfd, name): relative to dirfd, or AT_FDCWD for a plain path. Returns 0 or -errno.
 */
int durable_fsync_dir_of(int dirfd, const char *name);

/*
 * Write len bytes of buf as name (dirfd, name, buf, len, mode, flags): into a new
 * "name.<random>.partial" beside it, fsync, rename onto name (without replacing an
 * existing name under DURABLE_NOREPLACE, also on file systems lacking RENAME_NOREPLACE),
 * then fsync the directory. mode is narrowed by the umask unless DURABLE_EXACT_MODE.
 * Returns 0 once name is whole and durable; on failure -errno, the partial file is
 * removed and name is as it was. The directory must exist (else -ENOENT).
 */
int durable_publish(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		    unsigned flags);

#endif
