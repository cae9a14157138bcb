/* The in-memory map from blob id to its place in a pack, loaded from every index at open. */
#ifndef REPO_BLOB_TABLE_PRIV_H
#define REPO_BLOB_TABLE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/blob.h"

/*
 * Open addressing with linear probing, keyed by id. Ids are hashes, but index files are
 * untrusted input, so the probe start mixes the id with a random per-table seed: a
 * crafted index cannot pile every entry into one probe run. 56 bytes per entry; the
 * table stays at most 70% full. Owned by the thread that owns the repo.
 */
struct blob_loc {
	struct blob_id id;
	uint32_t pack;   /* slot in the repository's pack array (or any value for other uses) */
	uint32_t offset; /* of the record header; packs are < 4 GiB */
	uint32_t stored_bytes;
	uint32_t raw_bytes;
	uint32_t crc;
	uint8_t type;
	uint8_t flags;
	uint8_t used; /* nonzero in occupied slots */
	uint8_t damaged; /* this copy was found damaged (a damaged/ object names it) */
};

_Static_assert(sizeof(struct blob_loc) == 56, "56 bytes per entry: README's memory figures");

struct blob_table {
	struct blob_loc *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
	uint64_t seed;
};

/* An empty table with a random seed (t). Returns 0 or -EIO (no randomness). */
int blob_table_init(struct blob_table *t);

void blob_table_free(struct blob_table *t);

/* The entry for id, or NULL (t, id). Valid until the next add. */
const struct blob_loc *blob_table_find(const struct blob_table *t, const struct blob_id *id);

/*
 * Insert loc unless its id is present (t, loc): the first copy wins. Returns 1 when
 * added, 0 when already present, -ENOMEM.
 */
int blob_table_add(struct blob_table *t, const struct blob_loc *loc);

/* The entry for id, writable, or NULL (t, id). Valid until the next add or set. */
struct blob_loc *blob_table_find_mut(struct blob_table *t, const struct blob_id *id);

/*
 * Insert loc, or overwrite the entry of its id (t, loc): a blob stored again replaces a
 * copy that was lost. Returns 0 or -ENOMEM.
 */
int blob_table_set(struct blob_table *t, const struct blob_loc *loc);

/* Iterate (t, pos): start with *pos = 0; returns the next used entry or NULL at the end. */
const struct blob_loc *blob_table_next(const struct blob_table *t, size_t *pos);

/*
 * A set of copies of blobs, each a (pack id, blob id) pair: the copies the damaged/
 * lists mark. ids holds the blob ids alone, so most lookups end there without hashing;
 * keys holds SHA-256(pack id || blob id).
 */
struct copy_set {
	struct blob_table ids;
	struct blob_table keys;
};

/* An empty set (s). Returns 0 or -EIO. */
int copy_set_init(struct copy_set *s);
void copy_set_free(struct copy_set *s);

/* Add the copy of blob in pack (s, pack, blob). Returns 0 or -ENOMEM. */
int copy_set_add(struct copy_set *s, const struct blob_id *pack, const struct blob_id *blob);

/* True when the copy of blob in pack is in s (s, pack, blob). */
bool copy_set_has(const struct copy_set *s, const struct blob_id *pack, const struct blob_id *blob);

#endif
