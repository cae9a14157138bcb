/* Disks and the repository: capture an image into a snapshot's disk map, bring an image up to date from one. */
#ifndef REPO_DISK_SYNC_H
#define REPO_DISK_SYNC_H

#include <stdint.h>

struct repo;
struct snap_manifest;

/* What a capture or restore did, in blocks of the map's block size. */
struct disk_sync_stats {
	uint64_t blocks;        /* blocks in the map */
	uint64_t reused;        /* capture: id taken from the parent; restore: already right */
	uint64_t zero;          /* zero blocks (not stored; on restore: written as zeros if needed) */
	uint64_t stored;        /* capture: blocks read and put (new or deduplicated) */
	uint64_t fetched;       /* restore: blocks read from the repository and written */
	uint64_t bytes_read;    /* image bytes read */
	uint64_t bytes_written; /* image bytes written (restore) */
};

/*
 * Fill m's disk map from the image at fd (r, fd, parent, changed, m, st). m must have
 * its disk set (manifest_set_disk). Block i is read and stored (repo_chunk_put: zero
 * blocks get the zero id, known content is deduplicated) when:
 *   - parent is NULL, or has another block size, or no block i of the same length; or
 *   - changed is NULL (a disk without a valid change log: read everything, and dedup
 *     makes the increment hold only the blocks that differ); or
 *   - bit i of changed is set (from vm_disk_log_fetch, or rsd_changed_blocks); or
 *   - the parent's blob is not known (repo_blob_known: its pack was lost, or it was
 *     found damaged), so it must be stored again from the image.
 * Otherwise the parent's id is kept without reading. st (may be NULL) gets counts.
 * Nothing is durable before snap_publish. Returns 0, -EPROTO when the image is
 * shorter than m->disk_bytes, or a read or repo_blob_put error.
 */
int disk_capture(struct repo *r, int fd, const struct snap_manifest *parent,
		 const uint64_t *changed, struct snap_manifest *m, struct disk_sync_stats *st);

/*
 * Make the image at fd equal to m's disk, in place (r, m, fd, st): the restore of a disk,
 * and `restore --disk-base OLD.img`, which brings a stale copy up to date. The file is
 * truncated or extended to m->disk_bytes; then each block is read and its id computed
 * with the repository's blob_id_compute: a block whose id equals the map entry is left
 * alone, others are fetched (repo_blob_read verifies each) and written; zero entries
 * become zeros. Blocks past the file's old end are known to be zeros and not read, so
 * restoring into a new empty file reads nothing and leaves zero blocks sparse. Ends
 * with fdatasync. An interruption leaves a mix of old and new blocks; running it again
 * finishes the job. Returns 0, or an I/O or repo_blob_read error.
 */
int disk_restore(struct repo *r, const struct snap_manifest *m, int fd,
		 struct disk_sync_stats *st);

#endif
