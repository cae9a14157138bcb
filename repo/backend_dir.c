/* The local-directory backend: objects are files, published by write-partial, fsync, rename-no-replace, fsync-dir. */
#include "repo/backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/io.h"


#define DIR_PARTIAL_SUFFIX DURABLE_PARTIAL_SUFFIX
#define DIR_PATH_MAX (BACKEND_NAME_MAX + 32)

struct backend_dir {
	struct backend base;
	int dirfd;  /* the repository root, for every *at() call */
	char *root; /* for messages */
};

static struct backend_dir *dir_of(struct backend *b)
{
	return (struct backend_dir *)(void *)b;
}

/* Make every missing directory on the way to name, fsyncing each new one's parent. */
static int dir_make_parents(struct backend_dir *d, const char *name)
{
	char path[DIR_PATH_MAX];
	size_t n = strlen(name);

	memcpy(path, name, n + 1);
	for (size_t i = 0; i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdirat(d->dirfd, path, 0755) == 0) {
			int rc = durable_fsync_dir_of(d->dirfd, path);

			if (rc < 0)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		path[i] = '/';
	}
	return 0;
}

static int dir_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct backend_dir *d = dir_of(b);
	struct stat st;
	int rc;

	if (fstatat(d->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (errno != ENOENT)
		return -errno;
	rc = durable_publish(d->dirfd, name, data, len, 0644, DURABLE_NOREPLACE);
	if (rc == -ENOENT) {
		/* The first object under a new prefix: make its directories, then try again. */
		rc = dir_make_parents(d, name);
		if (rc == 0)
			rc = durable_publish(d->dirfd, name, data, len, 0644, DURABLE_NOREPLACE);
	}
	return rc;
}

static int dir_get(struct backend *b, const char *name, uint64_t off, void *buf, size_t len)
{
	struct backend_dir *d = dir_of(b);
	int fd, rc;

	if (off > INT64_MAX || len > INT64_MAX - off)
		return -EPROTO;
	fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = io_pread_all(fd, buf, len, off);
	close(fd);
	return rc;
}

static int dir_get_all(struct backend *b, const char *name, size_t max_bytes, uint8_t **data,
		       size_t *len)
{
	struct backend_dir *d = dir_of(b);
	struct stat st;
	uint8_t *buf;
	int fd, rc;

	fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EISDIR;
		goto err_close;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		rc = -EMSGSIZE;
		goto err_close;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto err_close;
	}
	rc = io_pread_all(fd, buf, (size_t)st.st_size, 0);
	if (rc < 0) {
		free(buf);
		goto err_close;
	}
	close(fd);
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
err_close:
	close(fd);
	return rc;
}

static int dir_stat(struct backend *b, const char *name, uint64_t *bytes)
{
	struct backend_dir *d = dir_of(b);
	struct stat st;

	if (fstatat(d->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENOENT;
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static bool ends_with(const char *s, const char *sfx)
{
	size_t n = strlen(s), m = strlen(sfx);

	return n >= m && memcmp(s + n - m, sfx, m) == 0;
}

/* Could a name below directory rel ("a/b") start with prefix? */
static bool dir_may_match(const char *rel, const char *prefix)
{
	size_t n = strlen(rel), p = strlen(prefix);

	if (strncmp(rel, prefix, n < p ? n : p) != 0)
		return false;
	return p <= n || prefix[n] == '/';
}

/* What a walk looks for, and where it reports: objects (list), or leftover .partial files. */
struct dir_walk_ctx {
	const char *prefix;
	bool partials;         /* leftovers: .partial files instead of objects */
	uint64_t min_age_s;    /* leftovers: only those at least this old */
	bool remove;           /* leftovers: and unlink them */
	backend_list_fn fn;    /* list */
	backend_aged_fn aged;  /* list_aged, leftovers */
	void *arg;
	time_t now;
};

static int64_t age_of(const struct dir_walk_ctx *w, const struct stat *st)
{
	return st->st_mtime >= w->now ? 0 : (int64_t)(w->now - st->st_mtime);
}

/* One regular file met by the walk (d, w, path, st). */
static int dir_walk_file(struct backend_dir *d, const struct dir_walk_ctx *w, const char *path,
			 const struct stat *st)
{
	int64_t age = age_of(w, st);

	if (w->partials) {
		if (!ends_with(path, DIR_PARTIAL_SUFFIX) || (uint64_t)age < w->min_age_s)
			return 0;
		if (w->remove && unlinkat(d->dirfd, path, 0) < 0 && errno != ENOENT)
			return -errno;
		return w->aged ? w->aged(w->arg, path, (uint64_t)st->st_size, age) : 0;
	}
	if (ends_with(path, DIR_PARTIAL_SUFFIX) || strncmp(path, w->prefix, strlen(w->prefix)) ||
	    !backend_name_ok(path))
		return 0;
	if (w->aged)
		return w->aged(w->arg, path, (uint64_t)st->st_size, age);
	return w->fn(w->arg, path, (uint64_t)st->st_size);
}

static int dir_walk(struct backend_dir *d, const char *rel, const struct dir_walk_ctx *w,
		    unsigned depth)
{
	char path[DIR_PATH_MAX];
	struct dirent *de;
	DIR *dh;
	int fd, rc = 0;

	if (depth > 8)
		return 0; /* the layout is two levels deep; ignore anything stranger */
	fd = openat(d->dirfd, rel[0] ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	dh = fdopendir(fd);
	if (!dh) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((errno = 0, de = readdir(dh)) != NULL) {
		struct stat st;
		int n;

		if (de->d_name[0] == '.')
			continue;
		n = rel[0] ? snprintf(path, sizeof(path), "%s/%s", rel, de->d_name)
			   : snprintf(path, sizeof(path), "%s", de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (fstatat(d->dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* removed under us */
		if (S_ISDIR(st.st_mode)) {
			if (!w->partials && !dir_may_match(path, w->prefix))
				continue;
			rc = dir_walk(d, path, w, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			rc = dir_walk_file(d, w, path, &st);
		}
		if (rc != 0)
			break;
	}
	if (rc == 0 && errno != 0)
		rc = -errno;
	closedir(dh);
	return rc;
}

/* Start at the deepest directory the prefix names completely (d, w). */
static int dir_walk_prefix(struct backend_dir *d, const struct dir_walk_ctx *w)
{
	char start[DIR_PATH_MAX];
	const char *slash = strrchr(w->prefix, '/');

	if (slash) {
		memcpy(start, w->prefix, (size_t)(slash - w->prefix));
		start[slash - w->prefix] = '\0';
	} else {
		start[0] = '\0';
	}
	return dir_walk(d, start, w, 0);
}

static int dir_list(struct backend *b, const char *prefix, backend_list_fn fn, void *arg)
{
	struct dir_walk_ctx w = { .prefix = prefix, .fn = fn, .arg = arg };

	return dir_walk_prefix(dir_of(b), &w);
}

static int dir_list_aged(struct backend *b, const char *prefix, backend_aged_fn fn, void *arg)
{
	struct dir_walk_ctx w = { .prefix = prefix, .aged = fn, .arg = arg, .now = time(NULL) };

	return dir_walk_prefix(dir_of(b), &w);
}

/*
 * Partial files of puts that never finished (a writer killed between its write and its
 * rename): each holds a random tag, so a live writer's file is never another's, and
 * min_age_s keeps a put in progress safe from a concurrent sweep.
 */
static int dir_leftovers(struct backend *b, uint64_t min_age_s, bool remove, backend_aged_fn fn,
			 void *arg)
{
	struct dir_walk_ctx w = { .prefix = "", .partials = true, .min_age_s = min_age_s,
				  .remove = remove, .aged = fn, .arg = arg, .now = time(NULL) };

	return dir_walk(dir_of(b), "", &w, 0);
}

static int dir_remove(struct backend *b, const char *name)
{
	struct backend_dir *d = dir_of(b);

	if (unlinkat(d->dirfd, name, 0) < 0)
		return -errno;
	return durable_fsync_dir_of(d->dirfd, name);
}

static void dir_close(struct backend *b)
{
	struct backend_dir *d = dir_of(b);

	close(d->dirfd);
	free(d->root);
	free(d);
}

static const struct backend_ops dir_ops = {
	.put = dir_put,
	.get = dir_get,
	.get_all = dir_get_all,
	.stat = dir_stat,
	.list = dir_list,
	.remove = dir_remove,
	.close = dir_close,
	.list_aged = dir_list_aged,
	.leftovers = dir_leftovers,
};

int backend_dir_open(struct backend **out, const char *dir)
{
	struct backend_dir *d;
	int rc;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->root = strdup(dir);
	if (!d->root) {
		rc = -ENOMEM;
		goto err_free;
	}
	d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		rc = -errno;
		goto err_free;
	}
	d->base.ops = &dir_ops;
	d->base.location = d->root;
	*out = &d->base;
	return 0;
err_free:
	free(d->root);
	free(d);
	return rc;
}
