/* The image repository: a content-addressed store of blobs in packs, with indexes and snapshot manifests. */
#ifndef REPO_REPO_H
#define REPO_REPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/backend.h"
#include "repo/blob.h"
#include "repo/repo_config.h"
#include "repo/repo_key.h"

/*
 * Layout of a repository (objects of a backend; see README.md for the whole design):
 *
 *    config                 repo_config.h: what the repository is; written once
 *    data/XX/<pack id>      pack.h: blobs, each compressed and (encrypted repositories)
 *                           sealed on its own
 *    index/<index id>       index_file.h: blob id -> pack, offset, lengths
 *    snapshots/<snap id>    manifest.h: one snapshot, published last
 *    locks/                 reserved for the lock objects prune will need
 *
 * Write ordering, which is what makes a crash harmless:
 *   1. repo_blob_put appends blobs to an in-memory pack; a full pack is written (atomic,
 *      durable) right away;
 *   2. repo_flush writes the last pack, then one index file listing every pack written
 *      since the previous index file;
 *   3. snap_publish (manifest.h) flushes, then writes the manifest.
 * A crash before 3 leaves packs and maybe an index that no manifest references: garbage
 * for prune, invisible to restore and list. Every object is immutable once written.
 *
 * Encryption: a repository made with a key (repo_init_keyed) is opened only with that
 * key (repo_open_keyed); then blob ids are keyed hashes and every pack, index file and
 * manifest is sealed (repo_key.h, repo_crypto.h), so the backend sees ciphertext only.
 * A plaintext repository (repo_init) is opened without a key.
 *
 * Threads: a struct repo is used by one thread at a time (the snapshot engine's).
 * Return convention: 0 or a negative errno; the decode codes of transport/stream.h
 * (-EPROTO truncated, -ENOMSG magic, -EPROTONOSUPPORT version, -EBADMSG checksum or
 * corrupt content, -EMSGSIZE limit) mean the same here.
 */
struct repo;

/* Counters since repo_open, for the engine's statistics and for benchmarks. */
struct repo_stats {
	uint64_t blobs_new;        /* blobs added to a pack */
	uint64_t blobs_dedup;      /* puts that found their id already stored */
	uint64_t bytes_new_raw;    /* plaintext bytes of new blobs */
	uint64_t bytes_new_stored; /* their bytes after compression */
	uint64_t bytes_dedup_raw;  /* plaintext bytes not stored again */
	uint64_t packs_written;
	uint64_t indexes_written;
	uint64_t blobs_read;
	uint64_t bytes_read_raw;
};

/* Where a stored blob lives, for repo_blob_info. */
struct repo_blob_info {
	uint8_t type; /* enum blob_type */
	uint8_t flags; /* PACK_BLOB_F_* */
	uint32_t raw_bytes;
	uint32_t stored_bytes;
	uint64_t offset;
	struct blob_id pack_id; /* all zero while its pack is still being built */
};

/*
 * Create an encrypted repository at location (location, chunk_bytes, pack_target_bytes,
 * key, err, errlen), or a plaintext one when key is NULL: a directory path,
 * file://PATH, or s3://BUCKET[/PREFIX] (backend_s3_open; the bucket is made if missing,
 * the endpoint comes from AWS_ENDPOINT_URL). The directory is made if missing (its parent must exist); the layout
 * directories follow, and "config" is written last, so an interrupted init leaves no
 * repository. chunk_bytes and pack_target_bytes of 0 choose the defaults (64 KiB,
 * 16 MiB). The key is not stored: the caller keeps it (repo_key_write), and the
 * repository cannot be read without it. Returns 0; -EEXIST when a config is there
 * already; -EINVAL for bad sizes; -EIO; backend_s3_open's errors; or a
 * system error. err gets a one-line reason on failure.
 */
int repo_init_keyed(const char *location, uint32_t chunk_bytes, uint32_t pack_target_bytes,
		    const struct repo_key *key, char *err, size_t errlen);

/*
 * repo_init_keyed without a key: a plaintext repository, whose objects the backend can
 * read. For tests and benchmarks; users ask for it with --insecure-no-encryption.
 */
int repo_init(const char *location, uint32_t chunk_bytes, uint32_t pack_target_bytes,
	      char *err, size_t errlen);

/*
 * Open the repository at location with key (out, location, key, err, errlen): read and
 * check the config; for an encrypted repository check key against it and derive the
 * keys; then read every index file into the in-memory table. An index file that fails
 * to decode (or to authenticate) is skipped and remembered for repo_verify (its blobs
 * then count as absent, which is safe: they get stored again). key must be given
 * exactly when the repository is encrypted, so a config swapped for a plaintext one
 * cannot make a writer store plaintext. Returns 0; -ENOENT with "not a godwit
 * repository: no config in DIR: ..." in err; -ENOKEY with "repository DIR is encrypted:
 * pass --key-file FILE ..." (key NULL); -EKEYREJECTED with "wrong key for repository
 * DIR: --key-file names another repository's key"; -EBADMSG for a config whose
 * authentication fails (altered); -EINVAL for a key given to a plaintext repository;
 * the config's decode error with the reason; -EPROTONOSUPPORT for a config this
 * version cannot use; for s3:// locations backend_s3_open's errors (-ENXIO no bucket,
 * -EACCES credentials, connection errors) with the S3 client's message; -ENOMEM; -EIO; or a system error. The key is not kept.
 */
int repo_open_keyed(struct repo **out, const char *location, const struct repo_key *key,
		    char *err, size_t errlen);

/*
 * repo_open_keyed with S3 options (out, location, s3, key, err, errlen): s3 (may be
 * NULL) overrides AWS_ENDPOINT_URL for an s3:// location, sets how long a failing request
 * is retried and takes a line per retry (backend_s3_open). For a process that serves
 * others (the VMM), where changing the environment is not thread-safe.
 */
int repo_open_ex(struct repo **out, const char *location, const struct backend_s3_opts *s3,
		 const struct repo_key *key, char *err, size_t errlen);

/* repo_open_keyed without a key (out, location, err, errlen): plaintext repositories. */
int repo_open(struct repo **out, const char *location, char *err, size_t errlen);

/*
 * Close r (may be NULL) and free it. Blobs put since the last repo_flush are discarded
 * (a snapshot abandoned midway publishes nothing); packs already written stay as
 * garbage for prune.
 */
void repo_close(struct repo *r);

const struct repo_config *repo_config_of(const struct repo *r);
const char *repo_location(const struct repo *r);
struct backend *repo_backend(struct repo *r);

/* The zstd level for new blobs (r, level): 1 by default; -7..19. Returns 0 or -EINVAL. */
int repo_set_zstd_level(struct repo *r, int level);

/*
 * The id of a blob with these bytes (r, data, len, out), by the repository's id
 * algorithm: SHA-256 of the plaintext, or in an encrypted repository HMAC-SHA256 under
 * the blob-id key (so an id says nothing about content to anyone without the key, while
 * equal chunks still get equal ids within the repository). The single place ids are
 * made. Returns 0, or -EIO when the hash fails.
 */
int blob_id_compute(const struct repo *r, const void *data, size_t len, struct blob_id *out);

/*
 * Do these bytes hold what id names (r, id, data, len, same)? A zero id names all-zero
 * bytes (a chunk a snapshot does not store); any other is compared with blob_id_compute.
 * For --verify. Returns 0 with the answer in *same, or -EIO when the hash fails.
 */
int blob_id_matches(const struct repo *r, const struct blob_id *id, const void *data,
		    size_t len, bool *same);

/*
 * Store a blob (r, type, data, len, id) and return its id. When a blob with the same id
 * is already stored (an index loaded at open, or a pack written or being built since)
 * nothing is written. Otherwise the blob is compressed with zstd (kept raw when that
 * does not shrink it) and appended to the pack being built; a pack that reaches the
 * config's target size is written at once. Nothing is durable before repo_flush.
 * Returns 0; -EINVAL for a bad type; -EMSGSIZE when len exceeds the config's blob_max;
 * -ENOMEM; or a backend error, which is sticky: later puts and flushes return it.
 */
int repo_blob_put(struct repo *r, enum blob_type type, const void *data, size_t len,
		  struct blob_id *id);

/*
 * Store a memory chunk or disk block (r, data, len, id): all-zero data gets the zero id
 * and is not stored; anything else is repo_blob_put(BLOB_T_DATA).
 */
int repo_chunk_put(struct repo *r, const void *data, size_t len, struct blob_id *id);

/*
 * Split a large buffer into blobs of piece_bytes (the last may be shorter) and store
 * each (r, type, data, len, piece_bytes, ids, n): used for rsync signatures, which
 * outgrow one blob on big disks. *ids is malloc'd; the caller frees it. len 0 gives
 * n = 0. Returns 0 or repo_blob_put's error.
 */
int repo_blob_put_split(struct repo *r, enum blob_type type, const void *data, size_t len,
			size_t piece_bytes, struct blob_id **ids, uint32_t *n);

/*
 * True when id is stored and can be relied on (r, id): it is in an index, or in a pack
 * written or being built since open, and that copy is neither in a pack
 * repo_packs_check found absent nor marked damaged (repo_mark_damaged). The zero id is
 * always known. This is what deduplication and snap_publish go by.
 */
bool repo_blob_known(const struct repo *r, const struct blob_id *id);

/*
 * Check that every pack the index names exists, with its indexed size (r, nabsent): one
 * listing of data/ (names and sizes only: ListObjectsV2, 1000 packs a request, on S3).
 * A pack missing or of another size is absent from then on: its blobs are not known
 * (repo_blob_known), so repo_blob_put stores them again and snap_publish refuses a
 * manifest naming them. *nabsent (may be NULL) gets the number of absent packs. A writer
 * calls this after taking its lock (lock.h), so no prune deletes a pack after the
 * listing. Returns 0 or the listing's error.
 */
int repo_packs_check(struct repo *r, uint64_t *nabsent);

/*
 * Mark blobs found damaged (r, ids, n, err, errlen): verify read them, or a restore or a
 * backup failed to (a checksum, tag or id mismatch). Their current copies are written,
 * as pack id and index entry, to a list under damaged/ (the index file format,
 * index_file.h, named by its SHA-256), durably; every later repo_open leaves those copies
 * out, so the next backup stores the blobs again, and a snapshot naming them heals once
 * they are stored (same content, same id). A copy in a pack that is being built or is
 * absent, an unknown id or one marked already is skipped. Takes no lock: a list only
 * ever withdraws copies nobody can read. *marked (may be NULL) gets how many were marked.
 * Returns 0, or an encode or backend error with a line in err.
 */
int repo_mark_damaged(struct repo *r, const struct blob_id *ids, size_t n, uint64_t *marked,
		      char *err, size_t errlen);

/* Where id is stored (r, id, out). Returns 0 or -ENOENT. */
int repo_blob_info(const struct repo *r, const struct blob_id *id, struct repo_blob_info *out);

/*
 * Read blob id into a malloc'd buffer (r, id, data, len); the caller frees *data. Reads
 * only the blob's byte range of its pack, then checks the record header against the
 * index entry, the CRC32C, in an encrypted repository the GCM tag (whose AAD names the
 * id, so a record swapped for another blob's fails) before anything is decompressed,
 * decompresses into exactly the indexed raw length (at most BLOB_RAW_MAX_BYTES) and
 * checks that the id of the result is id, so a corrupted, truncated, forged or swapped
 * blob is never returned. Returns 0; -ENOENT when id is not in
 * the index; -EBADMSG on any mismatch; -EPROTO when the pack is shorter than the index
 * says; -ENOMEM; or a backend error (-ENOENT for a missing pack is returned as -EIO, so
 * "not in the index" stays distinguishable).
 */
int repo_blob_get(struct repo *r, const struct blob_id *id, uint8_t **data, size_t *len);

/*
 * Like repo_blob_get, into the caller's buffer (r, id, dst, len): len must equal the
 * blob's raw length (-EBADMSG otherwise). The zero id reads as len zero bytes, so a
 * restore can call this for every entry of a memory or disk map. When a tag fails no
 * decrypted byte is left in dst (or anywhere): dst never holds unauthenticated plaintext.
 */
int repo_blob_read(struct repo *r, const struct blob_id *id, void *dst, size_t len);

/*
 * Read and concatenate blobs (r, ids, n, max_bytes, data, len), the inverse of
 * repo_blob_put_split; -EMSGSIZE when the total would pass max_bytes.
 */
int repo_blob_get_concat(struct repo *r, const struct blob_id *ids, uint32_t n,
			 size_t max_bytes, uint8_t **data, size_t *len);

/*
 * Make every blob put so far durable (r): write the pack being built, then an index
 * file for the packs written since the last one. Returns 0 or the (sticky) error.
 */
int repo_flush(struct repo *r);

/*
 * Give back the space of a write that failed (r, removed, bytes): remove every pack this
 * repo wrote since its last index file. No index names them and nothing published can,
 * so a snapshot that failed on a full disk leaves no space taken. Only in an encrypted
 * repository, whose packs are unique to their writer (random nonces); a plaintext pack
 * may be byte for byte another writer's, just indexed, so those are left to prune's
 * grace period. *removed and *bytes (may be NULL) get what went. Returns 0 or the first
 * backend error (on S3 after a failed upload: the packs then wait for prune).
 */
int repo_abandon(struct repo *r, uint64_t *removed, uint64_t *bytes);

/* One copy of a blob: the pack that holds it, and its id. */
struct repo_copy {
	struct blob_id pack;
	struct blob_id blob;
};

/*
 * Lift the marks of copies that read back whole after all (r, copies, n, unmarked, err,
 * errlen): a pack put back from elsewhere. Each damaged/ list naming one of them is
 * written again without it (the new list first, then the old one deleted; none when
 * nothing is left). *unmarked (may be NULL) gets how many marks went. Returns 0 or a
 * decode or backend error with a line in err.
 */
int repo_unmark_damaged(struct repo *r, const struct repo_copy *copies, size_t n,
			uint64_t *unmarked, char *err, size_t errlen);

/*
 * Mark what reads since the last call found damaged (r, marked, err, errlen): every
 * repo_blob_get/read that failed a record, checksum, tag or id check (-EBADMSG, or a pack
 * shorter than its index entry) remembers the blob, and this hands them to
 * repo_mark_damaged, so the next backup stores them again. For readers that are about
 * to fail anyway (a restore, a backup reading its parent's signature). Returns as
 * repo_mark_damaged; *marked 0 and nothing written when nothing was found.
 */
int repo_mark_found(struct repo *r, uint64_t *marked, char *err, size_t errlen);

/* Copy the counters (r, out). */
void repo_stats_get(const struct repo *r, struct repo_stats *out);

#endif
