/* The disk change log: blocks the guest wrote since a base, kept in a sidecar file. */
#ifndef VMM_DISK_LOG_H
#define VMM_DISK_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Sidecar file IMAGE.gwlog beside the image (little-endian, through state_codec.h):
 *
 *   +0    magic "GWDL"             4 bytes
 *   +4    version u32              DISK_LOG_VERSION
 *   +8    flags u32                DISK_LOG_F_CLEAN: written by a clean close; no other bit
 *   +12   reserved u32             0
 *   +16   block bytes u64          VM_DISK_BLOCK_BYTES
 *   +24   disk bytes u64           the image size the bitmap covers
 *   +32   image st_dev u64         \
 *   +40   image st_ino u64          | the image at clean close, after its fsync: any
 *   +48   image size u64            | difference on the next open means something else
 *   +56   image mtime ns u64       /  wrote it (or the sidecar belongs to another file)
 *   +64   base length u32          0 .. DISK_LOG_BASE_MAX
 *   +68   reserved u32             0
 *   +72   base id                  DISK_LOG_BASE_MAX bytes, NUL-padded
 *   +136  bitmap                   ceil(blocks / 64) u64 words; bit n of word n / 64 = block n
 *   end-4 CRC32C u32 of every byte before it
 *
 * Life cycle: open loads a CLEAN sidecar whose identity matches the image as the valid
 * log, then at once durably replaces it (temporary file, fsync, rename, fsync of the
 * directory) by one without CLEAN, so a crash from here on leaves a log nobody trusts.
 * A clean close fsyncs the image, records its identity and writes the bitmap with CLEAN,
 * durably. Anything else (no sidecar, bad CRC, other version, identity mismatch) starts
 * the log invalid: every block counts as changed until a fetch sets a new base.
 * Changing this layout requires a DISK_LOG_VERSION bump.
 */
#define DISK_LOG_MAGIC "GWDL"
#define DISK_LOG_VERSION 1u
#define DISK_LOG_F_CLEAN 1u
#define DISK_LOG_BASE_MAX 64u
#define DISK_LOG_HEADER_BYTES 136u
#define DISK_LOG_SUFFIX ".gwlog"

_Static_assert(DISK_LOG_HEADER_BYTES == 4 + 4 + 4 + 4 + 8 * 6 + 4 + 4 + DISK_LOG_BASE_MAX,
	       "sidecar header layout");

#define DISK_LOG_MAX_VIEWS 8 /* VM_DIRTY_MAX_CONSUMERS */

/*
 * Owned by the virtio-blk device and used under its lock: the write path marks, the
 * consumers fetch. bits is the log's own view, relative to base and saved in the sidecar;
 * view[k] is consumer k's (vm_state.h), in memory only, marked alongside bits so that no
 * fetch of one view touches another. sidecar is NULL when the log cannot be persisted
 * (the directory is not writable and holds no sidecar to invalidate): the log then lives
 * in memory only.
 */
struct disk_log {
	char *sidecar;
	int image_fd; /* the device's; used to fsync and stat at clean close */
	uint64_t disk_bytes;
	uint64_t nblocks;
	size_t nwords;
	uint64_t *bits;
	bool valid;
	char base[DISK_LOG_BASE_MAX + 1];
	uint64_t *view[DISK_LOG_MAX_VIEWS]; /* NULL: free slot */
};

/*
 * Set up l for the image at path, open on image_fd, disk_bytes long: load and
 * invalidate the sidecar as described above. Returns 0, or -errno with a reason in err
 * (out of memory, or a stale sidecar that can be neither replaced nor removed).
 */
int disk_log_open(struct disk_log *l, const char *path, int image_fd, uint64_t disk_bytes,
		  char *err, size_t errlen);
/* The guest is writing [off, off + len) of the disk. */
void disk_log_mark(struct disk_log *l, uint64_t off, uint64_t len);
/* Is the log valid and relative to base? */
bool disk_log_valid(const struct disk_log *l, const char *base);
/*
 * OR the changed blocks into bitmap (all of them while the log is invalid), clear the
 * log, and make it valid relative to base. Returns 0, or -ENAMETOOLONG for a base longer
 * than DISK_LOG_BASE_MAX bytes (nothing changes then).
 */
int disk_log_fetch(struct disk_log *l, uint64_t *bitmap, const char *base);
/*
 * Add a consumer's view with every block set (l, out: its index). Returns 0, -EBUSY when
 * DISK_LOG_MAX_VIEWS are in use, or -ENOMEM.
 */
int disk_log_view_add(struct disk_log *l, int *out);
/* OR view k's blocks into bitmap and clear them; other views and bits are untouched. */
void disk_log_view_fetch(struct disk_log *l, int k, uint64_t *bitmap);
/* Free view k. */
void disk_log_view_remove(struct disk_log *l, int k);
/* Clean close: persist with DISK_LOG_F_CLEAN (if l->sidecar), then free. Returns 0 or -errno. */
int disk_log_close(struct disk_log *l);
/* Free without writing anything (a failed create). */
void disk_log_free(struct disk_log *l);

#endif
