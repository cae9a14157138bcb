/* The repository object, shared by repo.c, manifest_store.c and verify.c. */
#ifndef REPO_REPO_PRIV_H
#define REPO_REPO_PRIV_H

#include <zstd.h>

#include "repo/blob_table_priv.h"
#include "repo/index_file.h"
#include "repo/pack.h"
#include "repo/repo_crypto.h"
#include "repo/repo.h"
#include "util/err.h"

/* Packs every index file lists, and the one being built; slot numbers are blob_loc.pack. */
struct repo_pack {
	struct blob_id id; /* all zero while being built */
	uint64_t bytes;
	bool absent; /* repo_packs_check found it missing or of another size */
};

/* A pack written since the last index file: what the next index file lists for it. */
struct repo_unindexed {
	uint32_t pack; /* slot */
	uint32_t n;
	struct pack_entry *entries;
	bool ours; /* this repo created the object (its put did not find it there) */
};

/* An index file (or a list of damaged blobs) repo_open could not use, reported by repo_verify. */
struct repo_bad_index {
	char name[BACKEND_NAME_MAX + 1];
	const char *why;
	int rc;
};

/* Write an index file after this many packs even without a flush (about 1 GiB of data). */
#define REPO_INDEX_AUTO_PACKS 64

/*
 * Everything below belongs to the one thread using the repo. The write path (pb,
 * building, unindexed, err) and the read path (rec_buf) never run at the same time.
 */
struct repo {
	struct backend *be;
	char *location;
	struct repo_config cfg;
	struct repo_crypto *crypto; /* NULL for a plaintext repository */
	int zstd_level;
	ZSTD_CCtx *cctx;
	ZSTD_DCtx *dctx;

	struct blob_table blobs;      /* blob id -> location */
	/*
	 * A second copy of a blob some other index file lists in another pack (two writers
	 * stored it, a prune's rewrite is under way, or a backup stored it again after its
	 * pack was lost): repo_packs_check and the damaged lists swap it in when the copy in
	 * blobs is in an absent pack or damaged. Usually empty.
	 */
	struct blob_table dups;
	struct blob_table pack_slots; /* pack id -> slot (in blob_loc.pack) */
	struct repo_pack *packs;
	uint32_t npacks, packs_cap;

	int err; /* sticky write-path error */
	struct pack_builder pb;
	bool building; /* pb holds a pack in slot cur_pack */
	uint32_t cur_pack;
	struct repo_unindexed *unindexed;
	uint32_t nunindexed, unindexed_cap;

	uint8_t *rec_buf; /* one blob record read from a pack */
	size_t rec_cap;
	uint8_t *plain_buf; /* a sealed zstd frame, verified and decrypted */
	size_t plain_cap;

	struct repo_bad_index *bad;
	uint32_t nbad;
	uint64_t ndamaged; /* index entries a damaged/ object marks */
	struct blob_id *found; /* blobs a read found damaged, for repo_mark_found */
	size_t nfound, found_cap;
	uint64_t nabsent;  /* packs repo_packs_check found missing */

	struct repo_stats stats;
};

/* Read and check the blob loc describes into dst, which holds loc->raw_bytes (r, loc, dst). */
int repo_blob_load(struct repo *r, const struct blob_loc *loc, uint8_t *dst);

/*
 * Turn a record's checked stored bytes into the blob (r, loc, payload, dst, why): verify
 * and decrypt when sealed (the tag before anything else), decompress or copy into dst,
 * and check the id. why (may be NULL) gets a static reason on -EBADMSG. Returns 0,
 * -EBADMSG, -ENOMEM or -EIO.
 */
int repo_blob_decode(struct repo *r, const struct blob_loc *loc, const uint8_t *payload,
		     uint8_t *dst, const char **why);

/* A new pack slot with a zero id, for the pack being built (r, slot). Returns 0 or -ENOMEM. */
int repo_pack_slot_new(struct repo *r, uint32_t *slot);

/* Give slot its pack id and size once written, and map the id to it (r, slot, id, bytes). */
int repo_pack_slot_publish(struct repo *r, uint32_t slot, const struct blob_id *id,
			   uint64_t bytes);

/*
 * Every object under data/ that is named like a pack, into t (be, t, notes, arg): the
 * pack id, its size in offset (UINT32_MAX above PACK_MAX_BYTES) and its age in seconds
 * in pack (UINT32_MAX when the backend cannot say; at most UINT32_MAX - 1 otherwise).
 * Objects with other names go to notes (may be NULL) and are skipped. t must be
 * initialised. Returns 0, -ENOMEM or the listing's error.
 */
int repo_list_packs(struct backend *be, struct blob_table *t,
		    void (*notes)(void *arg, const char *name), void *arg);

/*
 * Mark absent every pack the index names that listed (from repo_list_packs) lacks or
 * holds with another size, and prefer other copies of their blobs (r, listed). Returns
 * the number of absent packs. repo_packs_check is this after a listing.
 */
uint64_t repo_packs_mark(struct repo *r, const struct blob_table *listed);

/*
 * Read and decode the index-format object name (be, c, name, ix, bad, why): an index
 * file or a list of damaged blobs, whose name must be its content hash. Returns 0 (ix to
 * free with index_file_free); 1 when it is larger than INDEX_MAX_BYTES, does not decode
 * or is misnamed (*bad gets the code, *why a static reason); -ENOENT when gone; another
 * backend error; -ENOMEM.
 */
int repo_index_object_read(struct backend *be, struct repo_crypto *c, const char *name,
			   struct index_file *ix, int *bad, const char **why);

/* The name of a damaged-blob list holding buf (buf, len, out): "damaged/<64 hex>". */
#define REPO_DAMAGED_PREFIX "damaged/"
#define REPO_DAMAGED_NAME_BYTES (8 + 64 + 1)
void repo_damaged_name(const uint8_t *buf, size_t len, char out[REPO_DAMAGED_NAME_BYTES]);

/* The pack entry a blob location describes (loc, e). */
void repo_loc_entry(const struct blob_loc *loc, struct pack_entry *e);

/* Remember a blob a read found damaged, for repo_mark_found (r, id); best effort. */
void repo_found_add(struct repo *r, const struct blob_id *id);

/* Put the other copy of primary's blob first when that one is usable (r, primary). */
void repo_prefer_dup(struct repo *r, struct blob_loc *primary);

#endif
