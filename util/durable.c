/* Durable publish: temporary file, fsync, rename, fsync of the directory. */
#include "util/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/io.h"

int durable_fsync_dir_of(int dirfd, const char *name)
{
	const char *slash = strrchr(name, '/');
	char parent[PATH_MAX];
	int fd, rc = 0;

	if (!slash) {
		strcpy(parent, ".");
	} else if (slash == name) {
		strcpy(parent, "/");
	} else {
		if ((size_t)(slash - name) >= sizeof(parent))
			return -ENAMETOOLONG;
		memcpy(parent, name, (size_t)(slash - name));
		parent[slash - name] = '\0';
	}
	fd = openat(dirfd, parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Move partial onto name; with noreplace, never over an existing name. */
static int durable_rename(int dirfd, const char *partial, const char *name, bool noreplace)
{
	if (!noreplace)
		return renameat(dirfd, partial, dirfd, name) < 0 ? -errno : 0;
	if (renameat2(dirfd, partial, dirfd, name, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* File systems without RENAME_NOREPLACE: link() refuses an existing target too. */
	if (linkat(dirfd, partial, dirfd, name, 0) < 0)
		return -errno;
	unlinkat(dirfd, partial, 0);
	return 0;
}

int durable_publish(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
		    unsigned flags)
{
	char partial[PATH_MAX];
	uint32_t tag;
	int fd, rc;

	/* A random tag keeps two writers (or a crashed one's leftovers) apart. */
	if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag))
		return -EIO;
	if (snprintf(partial, sizeof(partial), "%s.%08x%s", name, tag, DURABLE_PARTIAL_SUFFIX) >=
	    (int)sizeof(partial))
		return -ENAMETOOLONG;
	fd = openat(dirfd, partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	rc = 0;
	if ((flags & DURABLE_EXACT_MODE) && fchmod(fd, mode) < 0)
		rc = -errno;
	if (rc == 0)
		rc = io_write_all(fd, buf, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0)
		rc = durable_rename(dirfd, partial, name, flags & DURABLE_NOREPLACE);
	if (rc < 0) {
		unlinkat(dirfd, partial, 0);
		return rc;
	}
	return durable_fsync_dir_of(dirfd, name);
}
