/* Snapshot manifests: one object per snapshot that lists every chunk of its memory and disk. */
#ifndef REPO_MANIFEST_H
#define REPO_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/blob.h"
#include "repo/repo_crypto.h"

struct repo;

/*
 * Disk format. Changing anything here requires a MANIFEST_FORMAT_VERSION bump.
 * All integers are little-endian. Named "snapshots/<snapshot id>"; written by
 * snap_publish after every blob it references is in a durable pack and index file.
 *
 *    0        4         6        8                 16                  24
 *    +--------+---------+--------+-----------------+-------------------+
 *    | "GWSN" | version | flags  | body_raw_bytes  | body_stored_bytes |   header
 *    +--------+---------+--------+-----------------+-------------------+
 *    +===============================+-------------+
 *    | body (body_stored_bytes)      | sha256 (32) |                      sha256 over
 *    +===============================+-------------+                      all before
 *
 *    flags  bit 0 ZSTD: the body is one zstd frame of body_raw_bytes (writers always
 *           set it; without it stored == raw); bit 1 AEAD: the sealed form below
 *           (encrypted repositories; with ZSTD); others invalid
 *    body_raw_bytes <= MANIFEST_BODY_MAX_BYTES (1 GiB: about 2 TiB of RAM plus disk)
 *
 * Sealed form (flags ZSTD | AEAD): after the first 8 bytes of the header everything is
 * sealed under the metadata key with those 8 bytes as AAD, the raw length included
 * (it would tell the VM's size), so only the object's size shows:
 *
 *    0        8            20                       28                 n-48   n-32  n
 *    +--------+------------+------------------------+==================+------+-------+
 *    | header | nonce (12) | body_raw_bytes (8)     | zstd body        | tag  | sha256|
 *    | (8)    |            |<------ AES-256-GCM ciphertext ----------->| (16) | (32)  |
 *    +--------+------------+------------------------+==================+------+-------+
 *
 * The object name, snapshots/<id>, stays readable in both forms: the id is the UTC
 * creation second and 8 random hex digits (snap_id_make), which the object store knows
 * anyway as the object's upload time; the VM name, sizes and maps are sealed.
 *
 * The body, in order (str = u16 length + that many bytes, no NUL, no control chars):
 *
 *    str  id              the snapshot id (SNAP_ID_LEN chars, see snap_id_make)
 *    str  parent          the id this one was taken relative to, "" for a full one
 *    str  vm_name         <= SNAP_NAME_MAX bytes
 *    str  godwit_version  <= SNAP_VERSION_MAX bytes
 *    str  cpu_features    <= SNAP_CPU_FEATURES_MAX bytes, informational (the state
 *                         blob holds the authoritative CPUID)
 *    u64  created_ns      unix time, nanoseconds
 *    u64  ram_bytes       = the sum of the regions' bytes
 *    u32  ncpus           1..SNAP_NCPUS_MAX
 *    u32  nregions        1..SNAP_REGIONS_MAX
 *    u64  disk_bytes      0 when the VM has no disk
 *    u32  disk_block_bytes  0 without a disk, else a power of two in [4 KiB, 16 MiB]
 *    u32  nsig            rsync signature pieces (0 = none; only with a disk)
 *    32   state_id        the STATE blob; never zero
 *    u64  bytes_new, bytes_referenced, pause_ms, duration_ms      statistics
 *    nregions x { u64 gpa, u64 bytes, u32 chunk_bytes, u32 rsvd = 0 }   24 bytes each:
 *                         ascending, non-overlapping, bytes > 0, chunk_bytes a power
 *                         of two in [4 KiB, 16 MiB]
 *    nsig x 32            SIG blob ids; their concatenation is the librsync signature
 *    per region: ceil(bytes / chunk_bytes) x 32   memory chunk ids, in gpa order
 *    ceil(disk_bytes / disk_block_bytes) x 32     disk block ids
 *
 * An id of all zeros in a map means "this chunk is zeros and is not stored"; the last
 * chunk of a region or disk may be short and then holds that many bytes. The body must
 * end exactly after the disk map. Each manifest is whole: restoring needs only it and
 * the blobs it names, never its parent, so deleting a snapshot never breaks another.
 */
#define MANIFEST_FORMAT_VERSION 1
#define MANIFEST_MAGIC "GWSN"
#define MANIFEST_HEADER_BYTES 24
#define MANIFEST_TAIL_BYTES 32
#define MANIFEST_F_ZSTD 0x01u
#define MANIFEST_F_AEAD 0x02u
#define MANIFEST_PREFIX_BYTES 8 /* magic, version, flags: the AAD of the sealed form */
#define MANIFEST_RAW_LEN_BYTES 8
#define MANIFEST_BODY_MAX_BYTES (1ull << 30)
#define MANIFEST_REGION_BYTES 24

#define SNAP_ID_LEN 25 /* YYYYMMDDThhmmssZ-xxxxxxxx */
#define SNAP_ID_BYTES (SNAP_ID_LEN + 1)
#define SNAP_ID_TIME_LEN 16 /* the creation time at the front of an id: YYYYMMDDThhmmssZ */
#define SNAP_NAME_MAX 255
#define SNAP_VERSION_MAX 63
#define SNAP_CPU_FEATURES_MAX 4095
#define SNAP_NCPUS_MAX 4096
#define SNAP_REGIONS_MAX 64
#define SNAP_SIG_MAX 65536
#define SNAP_CHUNK_BYTES_MIN (4u << 10)
#define SNAP_CHUNK_BYTES_MAX (16u << 20)

_Static_assert(MANIFEST_HEADER_BYTES == 4 + 2 + 2 + 8 + 8, "header");
_Static_assert(MANIFEST_REGION_BYTES == 8 + 8 + 4 + 4, "region");
_Static_assert(SNAP_ID_LEN == 8 + 1 + 6 + 1 + 1 + 8, "id");

struct snap_region {
	uint64_t gpa;
	uint64_t bytes;
	uint32_t chunk_bytes;
	uint64_t nchunks;    /* ceil(bytes / chunk_bytes), set by manifest_add_region */
	struct blob_id *ids; /* nchunks ids */
};

struct snap_stats {
	uint64_t bytes_new;        /* plaintext bytes this snapshot added to the repository */
	uint64_t bytes_referenced; /* plaintext bytes of every stored blob it names */
	uint64_t pause_ms;
	uint64_t duration_ms;
};

/* A manifest in memory. Arrays are owned by it: release with manifest_free. */
struct snap_manifest {
	char id[SNAP_ID_BYTES];
	char parent[SNAP_ID_BYTES];
	char vm_name[SNAP_NAME_MAX + 1];
	char godwit_version[SNAP_VERSION_MAX + 1];
	char cpu_features[SNAP_CPU_FEATURES_MAX + 1];
	uint64_t created_ns;
	uint64_t ram_bytes;
	uint32_t ncpus;
	uint32_t nregions;
	struct snap_region *regions;
	uint64_t disk_bytes;
	uint32_t disk_block_bytes;
	uint64_t disk_nblocks; /* set by manifest_set_disk */
	struct blob_id *disk_ids;
	uint32_t nsig;
	struct blob_id *sig_ids;
	struct blob_id state_id;
	struct snap_stats stats;
};

/* An empty manifest (m), with godwit_version set to this build's. */
void manifest_init(struct snap_manifest *m);

/* Free m's arrays and empty it (m). */
void manifest_free(struct snap_manifest *m);

/*
 * Append a memory region (m, gpa, bytes, chunk_bytes) with every chunk id zero, and add
 * bytes to ram_bytes. Regions must come in ascending gpa order. Returns 0, -EINVAL
 * (bad sizes, overlap, too many), or -ENOMEM.
 */
int manifest_add_region(struct snap_manifest *m, uint64_t gpa, uint64_t bytes,
			uint32_t chunk_bytes);

/* Give m a disk of bytes in blocks of block_bytes, all ids zero (m, bytes, block_bytes). */
int manifest_set_disk(struct snap_manifest *m, uint64_t bytes, uint32_t block_bytes);

/* Copy n rsync signature piece ids into m (m, ids, n). */
int manifest_set_sig(struct snap_manifest *m, const struct blob_id *ids, uint32_t n);

/*
 * Check m by the rules decode enforces (m, why), so a writer never publishes what no
 * reader would accept. Returns 0 or -EINVAL with a static reason.
 */
int manifest_check(const struct snap_manifest *m, const char **why);

/*
 * Encode m (m, c, out, len) into a malloc'd object the caller frees, sealed when c (the
 * repository's crypto) is not NULL. Returns 0, -EINVAL (manifest_check failed),
 * -EMSGSIZE (body too large), -ENOMEM or -EIO.
 */
int manifest_encode(const struct snap_manifest *m, struct repo_crypto *c, uint8_t **out,
		    size_t *len);

/*
 * Decode and check a manifest object (buf, len, c, out, why). c is the repository's
 * crypto, NULL for a plaintext repository: the sealed form needs it and the plaintext
 * form must not have it. The tag is verified before anything is decompressed. Every
 * count is checked against the body length and the limits above before anything is
 * allocated, and the body's buffer grows only as its zstd frame proves it holds more (a
 * raw length the compressed size cannot hold is refused at once), so a small object never
 * makes the reader allocate what its header claims. On success out owns its arrays.
 * Returns 0; -EPROTO (truncated); -ENOMSG (magic); -EPROTONOSUPPORT (version, flags);
 * -EMSGSIZE (a length over a limit, or more than the compressed body can hold); -ENOKEY
 * (sealed, no c); -EBADMSG (checksum, tag, plaintext with c, decompression, counts or
 * fields); -ENOMEM; -EIO. why gets a static reason.
 */
int manifest_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		    struct snap_manifest *out, const char **why);

/* One blob a manifest references, as manifest_foreach_ref reports it. */
enum snap_ref_kind {
	SNAP_REF_STATE = 1,
	SNAP_REF_SIG,
	SNAP_REF_MEMORY,
	SNAP_REF_DISK,
};

struct snap_ref {
	enum snap_ref_kind kind;
	uint64_t index; /* signature piece, memory chunk (counted across regions) or disk block */
	uint64_t where; /* memory: the chunk's gpa; disk: the block's byte offset */
	uint64_t bytes; /* the raw length the blob must have; 0 for state and signature */
	const struct blob_id *id;
};

typedef int (*snap_ref_fn)(void *arg, const struct snap_ref *ref);

/*
 * Call fn for every stored blob m references (m, fn, arg): the state blob, signature
 * pieces, memory chunks in gpa order, disk blocks; zero ids are skipped. This is the mark
 * phase of a future prune and what publish and verify check. A nonzero return from fn
 * stops the walk and is returned.
 */
int manifest_foreach_ref(const struct snap_manifest *m, snap_ref_fn fn, void *arg);

/* "memory chunk 17, gpa 0x110000", "disk block 3", "state", ... (ref, out, len). */
void snap_ref_describe(const struct snap_ref *ref, char *out, size_t len);

/*
 * A new snapshot id for created_ns (created_ns, out): "YYYYMMDDThhmmssZ-" (UTC) and 8
 * random hex digits. Ids sort by creation second, and the S3 listing order is the
 * time order; the time leaks nothing an object's own timestamp would not (see
 * README.md, "What an encrypted repository shows"). Returns 0 or -EIO (no randomness).
 */
int snap_id_make(uint64_t created_ns, char out[SNAP_ID_BYTES]);

/* True when id has the form snap_id_make produces (id). */
bool snap_id_valid(const char *id);

/* ---- Snapshots in a repository ------------------------------------------------------ */

/*
 * Publish m as "snapshots/<m->id>" (r, m, err, errlen). First repo_flush, so every pack
 * and index is durable; then check that the state blob and every nonzero chunk, block
 * and signature id is in the repository's index (a manifest never names a missing
 * blob) and set m->stats.bytes_referenced from the index; then write the manifest
 * atomically. An empty m->id gets a fresh one (and created_ns the current time if 0).
 * Returns 0; -EINVAL (manifest_check); -ENOENT (a referenced blob is missing; err names
 * it); -EEXIST (the id exists); or the flush or backend error.
 */
int snap_publish(struct repo *r, struct snap_manifest *m, char *err, size_t errlen);

/*
 * Load snapshot id, or the newest one for id "latest" (r, id, out, err, errlen).
 * Returns 0; -ENOENT with "no snapshot ID in REPO: ..." in err (or "no snapshots in
 * REPO" for latest); -EINVAL for a malformed id; the decode error with its reason.
 */
int snap_load(struct repo *r, const char *id, struct snap_manifest *out, char *err,
	      size_t errlen);

/* What snap_list shows of each snapshot. */
struct snap_summary {
	char id[SNAP_ID_BYTES];
	char parent[SNAP_ID_BYTES];
	char vm_name[SNAP_NAME_MAX + 1];
	uint64_t created_ns;
	uint64_t ram_bytes;
	uint64_t disk_bytes;
	struct snap_stats stats;
};

/*
 * Every snapshot that decodes, oldest first (by created_ns, then id) (r, out, n,
 * nbad). *out is malloc'd (the caller frees it); *nbad (may be NULL) counts manifests
 * that did not decode (repo_verify names them). Returns 0, -ENOMEM or a backend error.
 */
int snap_list(struct repo *r, struct snap_summary **out, size_t *n, size_t *nbad);

/*
 * The id of the newest snapshot that decodes, of vm_name only unless NULL (r, vm_name,
 * out): what an incremental snapshot takes as its parent. Returns 0, -ENOENT when there
 * is none, or snap_list's error.
 */
int snap_find_latest(struct repo *r, const char *vm_name, char out[SNAP_ID_BYTES]);

/*
 * "latest" for a person (r, vm_name, out, err, errlen): the newest snapshot (of vm_name
 * only unless NULL), refusing rather than falling back when a manifest as new or newer
 * does not decode: -EBADMSG, and err names the damaged one and the newest intact one
 * ("... pass --snapshot ID"). Returns 0, -EBADMSG, -ENOENT (none; err says so) or a
 * listing error, each with a line in err. snap_load resolves "latest" this way.
 */
int snap_resolve_latest(struct repo *r, const char *vm_name, char out[SNAP_ID_BYTES],
			char *err, size_t errlen);

#endif
