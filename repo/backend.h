/* Repository backends: an ops table over named, write-once objects (a local directory, or S3). */
#ifndef REPO_BACKEND_H
#define REPO_BACKEND_H

#include <stdatomic.h>
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

/*
 * Called once per object by list_aged and leftovers (arg, name, bytes, age_s): age_s is
 * how long ago the object was written, in seconds by this host's clock (an object from a
 * host whose clock runs ahead may show 0), or -1 when the backend cannot say.
 */
typedef int (*backend_aged_fn)(void *arg, const char *name, uint64_t bytes, int64_t age_s);

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
	/* Optional: the latest failure's one-line message ("" if none); strlen of it. */
	size_t (*error)(struct backend *b, char *buf, size_t len);
	/* Optional: list with each object's age; without it backend_list_aged says -1. */
	int (*list_aged)(struct backend *b, const char *prefix, backend_aged_fn fn, void *arg);
	/*
	 * Optional: what interrupted puts left behind (a directory's NAME.<tag>.partial
	 * files), each older than min_age_s given to fn under its own name and removed when
	 * remove is true. Without it there are none to find.
	 */
	int (*leftovers)(struct backend *b, uint64_t min_age_s, bool remove, backend_aged_fn fn,
			 void *arg);
};

/* The common head of every backend object; backends embed it as their first member. */
struct backend {
	const struct backend_ops *ops;
	const char *location; /* for messages: the directory, or the s3:// URL */
};

/*
 * Open the local-directory backend rooted at dir (out, dir). Objects are files below
 * dir; put writes "NAME.<random>.partial", fsyncs it, renames it to NAME without
 * replacing (renameat2 RENAME_NOREPLACE, or link+unlink where the file system lacks it)
 * and fsyncs the directory; missing parent directories are made on demand. Returns 0,
 * -ENOENT or -ENOTDIR when dir is not a directory, -ENOMEM.
 */
int backend_dir_open(struct backend **out, const char *dir);

/* True when location names an S3 repository: "s3://BUCKET[/PREFIX]" (location). */
bool backend_location_is_s3(const char *location);

/* Flags for backend_s3_open. */
#define BACKEND_S3_CREATE_BUCKET 1u /* make the bucket when it does not exist (repo init) */

/* Receives one line (arg, line), without a newline, from any thread. */
typedef void (*backend_note_fn)(void *arg, const char *line);

/* How an S3 backend is reached and how patient it is. */
struct backend_s3_opts {
	const char *endpoint; /* "http://127.0.0.1:9000"; NULL or "": the environment's */
	int retry_s;          /* retry a failing request for this long (s3.h); < 0: 300 s */
	backend_note_fn note; /* each retry, one line (NULL: none) */
	void *note_arg;
	const atomic_bool *cancel; /* set by another thread: transfers stop (s3_config) */
};

/*
 * Open the S3 backend for url, "s3://BUCKET[/PREFIX]" (out, url, o, flags, err, errlen):
 * object NAME is the key "PREFIX/NAME" (or "NAME" without a prefix), so the repository's
 * layout is the local one. Credentials, region and endpoint come from the standard AWS
 * environment and profiles (s3_config_from_env); o (may be NULL) may override the
 * endpoint, set the retry budget and take a line per retry. The first request (the
 * probe below) retries for at most 15 s unless o sets a budget, so a wrong endpoint fails
 * in seconds; every later one for the whole budget (5 minutes by default), so an outage
 * in the middle of a backup or a restore is waited out. PREFIX follows the object
 * name rules. So that a wrong endpoint, a missing bucket or refused credentials are
 * reported at once with the S3 client's one-line message, open reads the object
 * "config" (absent is fine). Returns 0; -EINVAL (bad URL or configuration); -ENOKEY (no
 * credentials found); -ENXIO (no such bucket, and no BACKEND_S3_CREATE_BUCKET); -EACCES;
 * a connection error; -ENOMEM. err gets one line naming url on failure.
 *
 * The S3 backend keeps the contract above thus: put sends HEAD, then PUT with
 * If-None-Match: * (see backend_s3.c for the race that remains on servers that ignore
 * it); get is a ranged GET (-EPROTO past the end); list is ListObjectsV2, which never
 * shows an upload before it completes; remove is DELETE, which S3 makes durable and
 * which succeeds for a missing object. One deliberate exception: a put under "data/"
 * (a pack) returns once queued, and is durable before any later operation of the
 * backend returns; an upload that fails makes every later operation fail with its
 * error. Packs are named by no index until repo_flush puts one, which waits for them,
 * so the repository's write order holds (backend_s3.c has the details). Reads of a
 * pack at increasing offsets are served from read-ahead windows.
 */
int backend_s3_open(struct backend **out, const char *url, const struct backend_s3_opts *o,
		    unsigned flags, char *err, size_t errlen);

/*
 * Open the backend a repository location names (out, location, s3, err, errlen): "DIR",
 * "file://DIR" (backend_dir_open) or "s3://BUCKET[/PREFIX]" (backend_s3_open with s3, no
 * flags). Returns their codes; err gets one line.
 */
int backend_open_location(struct backend **out, const char *location,
			  const struct backend_s3_opts *s3, char *err, size_t errlen);

struct s3_stats;

/* The S3 client's counters of an S3 backend (b, out). Returns 0, or -EINVAL for another backend. */
int backend_s3_stats(struct backend *b, struct s3_stats *out);

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

/* list, with each object's age (b, prefix, fn, arg): -1 from backends that cannot say. */
int backend_list_aged(struct backend *b, const char *prefix, backend_aged_fn fn, void *arg);

/*
 * The leftovers of interrupted puts older than min_age_s (b, min_age_s, remove, fn,
 * arg): each goes to fn (may be NULL), and is removed when remove. A killed writer's
 * NAME.<tag>.partial files in a directory; on S3 a single PUT leaves nothing, and
 * parts of an interrupted multipart upload are the bucket lifecycle rule
 * AbortIncompleteMultipartUpload's to clean. Returns 0 or the first error.
 */
int backend_leftovers(struct backend *b, uint64_t min_age_s, bool remove, backend_aged_fn fn,
		      void *arg);

/* The backend's latest failure message into buf (b, buf, len): "" when it keeps none. */
size_t backend_error(struct backend *b, char *buf, size_t len);

#endif
