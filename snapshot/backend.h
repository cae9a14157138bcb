/* Repository backends: an ops table over named, write-once objects (a local directory now, S3 later). */
#ifndef SNAPSHOT_BACKEND_H
#define SNAPSHOT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A backend stores whole objects under names like "config", "data/3f/3f9a...",
 * "index/<hex>", "snapshots/<id>". Names are relative, '/'-separated, made of
 * [A-Za-z0-9._-] components that are not "." or "..", at most BACKEND_NAME_MAX bytes,
 * and never end in ".partial" (the suffix of objects being written). The wrappers below
 * check names before any hook runs, so hooks see only valid ones.
 *
 * Contract every backend keeps, because the repository's crash safety rests on it:
 *   - put is write-once and atomic: a reader (or a list) sees either no object or the
 *     whole object, never a prefix; a put that fails or is interrupted leaves nothing
 *     visible; a put of a name that exists fails with -EEXIST and changes nothing;
 *   - when put returns 0 the object is durable (fsync'ed file and directory; a
 *     completed S3 upload);
 *   - remove is durable when it returns, so a later object's removal is never seen
 *     without an earlier one's (prune deletes index files before packs);
 *   - list never returns objects still being written.
 *
 * Return codes: 0 or -errno. -ENOENT: no such object; -EEXIST: put of an existing name;
 * -EPROTO: a range read reaches past the object's end; -EMSGSIZE: get_all of an object
 * larger than the caller's limit; -EINVAL: a bad name; others from the system.
 *
 * Threads: a backend is used by one thread at a time.
 */
#define BACKEND_NAME_MAX 255

struct backend;

/* Called once per object by list (arg, name, bytes); a nonzero return stops the walk and is returned. */
typedef int (*backend_list_fn)(void *arg, const char *name, uint64_t bytes);

struct backend_ops {
	/* Store len bytes of data as name; atomic, durable, write-once (-EEXIST). */
	int (*put)(struct backend *b, const char *name, const void *data, size_t len);
	/* Read exactly len bytes at offset off of name into buf. */
	int (*get)(struct backend *b, const char *name, uint64_t off, void *buf, size_t len);
	/* Read the whole object into a malloc'd buffer of at most max_bytes. */
	int (*get_all)(struct backend *b, const char *name, size_t max_bytes, uint8_t **data,
		       size_t *len);
	/* The size of name, or -ENOENT. */
	int (*stat)(struct backend *b, const char *name, uint64_t *bytes);
	/* Call fn for each complete object whose name starts with prefix, in no order. */
	int (*list)(struct backend *b, const char *prefix, backend_list_fn fn, void *arg);
	/* Delete name, durably. */
	int (*remove)(struct backend *b, const char *name);
	/* Free the backend. */
	void (*close)(struct backend *b);
};

/* The common head of every backend object; backends embed it as their first member. */
struct backend {
	const struct backend_ops *ops;
	const char *location; /* for messages: the directory, or later the s3:// URL */
};

/*
 * Open the local-directory backend rooted at dir (out, dir). Objects are files below
 * dir; put writes "NAME.<random>.partial", fsyncs it, renames it to NAME without
 * replacing (renameat2 RENAME_NOREPLACE, or link+unlink where the file system lacks it)
 * and fsyncs the directory; missing parent directories are made on demand. Returns 0,
 * -ENOENT or -ENOTDIR when dir is not a directory, -ENOMEM.
 */
int backend_dir_open(struct backend **out, const char *dir);

/* True when name is a valid object name (name). */
bool backend_name_ok(const char *name);

/* The checked wrappers around the hooks: each returns -EINVAL for an invalid name. */
int backend_put(struct backend *b, const char *name, const void *data, size_t len);
int backend_get(struct backend *b, const char *name, uint64_t off, void *buf, size_t len);
int backend_get_all(struct backend *b, const char *name, size_t max_bytes, uint8_t **data,
		    size_t *len);
int backend_stat(struct backend *b, const char *name, uint64_t *bytes);
int backend_list(struct backend *b, const char *prefix, backend_list_fn fn, void *arg);
int backend_remove(struct backend *b, const char *name);
void backend_close(struct backend *b);

#endif
