/* librsync for disk images: signatures, deltas and patches, and changed-block detection from signatures. */
#ifndef REPO_RSYNC_DELTA_H
#define REPO_RSYNC_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "transport/stream.h"

/*
 * Signatures are librsync's own format (what `rdiff signature` writes), so any librsync
 * tool can use one:
 *
 *    0            4                8                 12
 *    +------------+----------------+-----------------+
 *    | magic (BE) | block_len (BE) | strong_len (BE) |          then per block:
 *    +------------+----------------+-----------------+
 *    +--------------+--------------------+
 *    | weak (4, BE) | strong (strong_len)|
 *    +--------------+--------------------+
 *
 * Parameters, fixed for every signature godwit writes:
 *   - magic RS_RK_BLAKE2_SIG_MAGIC: BLAKE2b strong sums (MD4 is broken; a guest that
 *     controls its disk's content could otherwise craft collisions) and the RabinKarp
 *     rolling sum librsync recommends since 2.2;
 *   - block_len RSD_BLOCK_BYTES = 64 KiB, the disk change log's and the manifest disk
 *     map's block: signature block i IS disk block i, so comparing two signatures block
 *     by block says which map entries changed, with no delta needed;
 *   - strong_len 32, the full BLAKE2b-256: equal sums are trusted to mean equal blocks,
 *     and nothing shorter is collision-resistant against crafted content.
 * A signature costs 36 bytes per 64 KiB (0.055%: 576 MiB for 1 TiB), so snapshots store
 * it split into SIG blobs (repo_blob_put_split).
 *
 * Every function returns 0 or a negative errno. librsync's rs_result codes map as:
 * RS_IO_ERROR -EIO (or the underlying errno), RS_MEM_ERROR -ENOMEM, RS_INPUT_ENDED
 * -EPROTO (truncated input), RS_BAD_MAGIC -ENOMSG, RS_UNIMPLEMENTED -ENOTSUP, RS_CORRUPT
 * -EBADMSG, RS_PARAM_ERROR and RS_SYNTAX_ERROR -EINVAL, RS_INTERNAL_ERROR
 * -ENOTRECOVERABLE. err (may be NULL) gets a one-line reason naming the operation.
 */
#define RSD_BLOCK_BYTES (64u << 10)
#define RSD_STRONG_BYTES 32
#define RSD_SIG_HEADER_BYTES 12
#define RSD_SIG_BLOCK_BYTES_MIN 256u
#define RSD_SIG_BLOCK_BYTES_MAX (16u << 20)

_Static_assert(RSD_SIG_HEADER_BYTES == 3 * 4, "magic, block_len, strong_len");

/* A checked signature header. */
struct rsd_sig_info {
	uint32_t magic;
	uint32_t block_bytes;
	uint32_t strong_bytes;
	uint64_t nblocks;
};

/*
 * Parse and check a signature's header and length (sig, len, out): a BLAKE2 magic
 * (plain or RabinKarp), block_len in [RSD_SIG_BLOCK_BYTES_MIN, RSD_SIG_BLOCK_BYTES_MAX],
 * strong_len in [1, 32], and a length of exactly header + whole block entries.
 * Returns 0; -EPROTO (shorter than a header); -ENOMSG (not a signature);
 * -EPROTONOSUPPORT (an MD4 signature); -EBADMSG (bad parameters or length).
 */
int rsd_sig_parse(const uint8_t *sig, size_t len, struct rsd_sig_info *out);

/*
 * The signature of the first bytes bytes of fd (read with pread from offset 0) with
 * blocks of block_bytes (0 for RSD_BLOCK_BYTES) (fd, bytes, block_bytes, sig, sig_len,
 * err, errlen). *sig is malloc'd; the caller frees it. Returns 0; -EPROTO when fd
 * ends before bytes; -EINVAL for a bad block size; a read or librsync error.
 */
int rsd_signature(int fd, uint64_t bytes, uint32_t block_bytes, uint8_t **sig,
		  size_t *sig_len, char *err, size_t errlen);

/*
 * The librsync delta that turns the file sig describes into the first bytes bytes of
 * new_fd (sig, sig_len, new_fd, bytes, out, err, errlen), written to out (any stream:
 * an fd_stream over a file, a memory writer, or a zstd layer). The caller closes out. Returns 0, rsd_sig_parse's error, out's sticky
 * error, or a read or librsync error.
 */
int rsd_delta(const uint8_t *sig, size_t sig_len, int new_fd, uint64_t bytes,
	      struct stream *out, char *err, size_t errlen);

/*
 * Apply the delta read from delta_fd (from offset 0 to its end) to the basis file
 * basis_fd, writing the result to out_fd from offset 0 and truncating it to the result's
 * length (basis_fd, delta_fd, out_fd, out_bytes, err, errlen); out_fd must be another
 * file than basis_fd. *out_bytes (may be NULL) gets the length. The caller fsyncs.
 * Returns 0; -ENOMSG (not a delta); -EPROTO (truncated delta, or a copy past the
 * basis end); -EBADMSG (corrupt delta); or an I/O error.
 */
int rsd_patch(int basis_fd, int delta_fd, int out_fd, uint64_t *out_bytes, char *err,
	      size_t errlen);

/*
 * Which blocks differ between two signatures with the same parameters (old_sig,
 * old_len, new_sig, new_len, bitmap, nchanged): block i of the new file changed when the
 * old file had no block i or the weak or strong sums differ. Sets bit i (bit i % 64 of
 * word i / 64, as vm_disk_log_fetch does) of bitmap, which holds the new signature's
 * block count in bits; never clears bits. *nchanged (may be NULL) counts the changed
 * blocks. Returns 0, a parse error, or -EINVAL when the parameters differ or the strong
 * sums are shorter than RSD_STRONG_BYTES.
 */
int rsd_sig_compare(const uint8_t *old_sig, size_t old_len, const uint8_t *new_sig,
		    size_t new_len, uint64_t *bitmap, uint64_t *nchanged);

/*
 * Bring sig, the signature of an earlier version of the image, up to date in place for
 * the blocks bitmap marks (sig, sig_len, fd, bytes, bitmap, err, errlen): each marked
 * block is read and its entry recomputed, and no other block is read. For a disk whose
 * change log is valid, this gives what rsd_signature would, at the cost of the changed
 * blocks only (signature entries depend on their block alone). sig must be a RabinKarp
 * BLAKE2 signature with RSD_STRONG_BYTES sums of exactly ceil(bytes / block) blocks.
 * Returns 0; -EINVAL when sig does not fit the image (the caller computes a new one);
 * a parse, read or librsync error.
 */
int rsd_signature_update(uint8_t *sig, size_t sig_len, int fd, uint64_t bytes,
			 const uint64_t *bitmap, char *err, size_t errlen);

/*
 * For a disk whose change log was lost: given the previous snapshot's signature and the
 * current image (old_sig, old_len, fd, bytes, bitmap, nchanged, new_sig, new_len, err,
 * errlen), read the image once, computing its signature with the old one's block size,
 * and mark the changed blocks as rsd_sig_compare does. *new_sig (malloc'd, caller
 * frees) is the signature to store with the new snapshot. bitmap holds
 * ceil(bytes / block) bits. Returns 0 or an error of rsd_signature / rsd_sig_compare.
 */
int rsd_changed_blocks(const uint8_t *old_sig, size_t old_len, int fd, uint64_t bytes,
		       uint64_t *bitmap, uint64_t *nchanged, uint8_t **new_sig, size_t *new_len,
		       char *err, size_t errlen);

#endif
