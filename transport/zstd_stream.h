/* A zstd compression layer: streaming compression on write, bounded decompression on read. */
#ifndef TRANSPORT_ZSTD_STREAM_H
#define TRANSPORT_ZSTD_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "transport/stream.h"

/*
 * Wire format. Changing anything here requires a ZSTD_STREAM_FORMAT_VERSION bump.
 * All integers are little-endian.
 *
 * The compressed bytes of one zstd frame (content checksum on) are cut into chunks, so
 * that a reader asking its lower stream for exact lengths never waits for bytes the
 * writer has not flushed yet:
 *
 *    0        4         6         8
 *    +--------+---------+---------+
 *    | "GWZS" | version | flags   |            stream header, once
 *    +--------+---------+---------+
 *
 *    flags   0, or ZSTD_STREAM_F_RAW: chunks may be RAW (below). A reader refuses flags it
 *            does not know, so a stream without RAW chunks is byte-identical to before.
 *
 *    0               4
 *    +---------------+=========================+
 *    | word          | zstd bytes (length)     |   chunk, repeated
 *    +---------------+=========================+
 *
 *    word    bit 31 LAST, bit 30 RAW, bits 0..29 length (1..ZSTD_STREAM_MAX_CHUNK);
 *            0 is invalid. The LAST chunk has length 0 and comes only from a committing
 *            close; the zstd frame must be complete at that point, and the stream below
 *            must end right after it (trailing bytes are -EBADMSG). A RAW chunk (only
 *            under ZSTD_STREAM_F_RAW) holds stream bytes as they are, not zstd bytes; the
 *            writer ends the zstd block (a flush) before one, so the zstd bytes before it
 *            decode on their own, and the zstd frame goes on after it.
 */
#define ZSTD_STREAM_FORMAT_VERSION 1
#define ZSTD_STREAM_MAGIC "GWZS"
#define ZSTD_STREAM_HEADER_BYTES 8
#define ZSTD_STREAM_CHUNK_LAST 0x80000000u
#define ZSTD_STREAM_CHUNK_RAW 0x40000000u
#define ZSTD_STREAM_F_RAW 0x0001u
#define ZSTD_STREAM_MAX_CHUNK (1u << 20)
#define ZSTD_STREAM_WINDOW_LOG_MAX 24 /* reader refuses windows over 16 MiB */
#define ZSTD_STREAM_LEVEL_DEFAULT 1
#define ZSTD_STREAM_LEVEL_MAX 19      /* levels above need windows past the reader's limit */

_Static_assert(ZSTD_STREAM_HEADER_BYTES == sizeof(ZSTD_STREAM_MAGIC) - 1 + 2 + 2, "header");
_Static_assert(ZSTD_STREAM_MAX_CHUNK < ZSTD_STREAM_CHUNK_RAW, "length fits below RAW");

/*
 * Adaptive mode (opts.adaptive): the writer measures what zstd makes of each window of
 * ZSTD_STREAM_PROBE_BYTES of input (consumed against produced, as zstd reports them) and,
 * when the window did not shrink below ZSTD_STREAM_PAYS_PCT percent, sends the next
 * bytes as RAW chunks, straight from the caller's buffer: first ZSTD_STREAM_SKIP_MIN,
 * doubling after each probe that fails again, up to ZSTD_STREAM_SKIP_MAX; a window
 * that pays resets it. So incompressible data costs one probe window of compression in
 * every 20-68 MiB, and compressible data is compressed as before.
 */
#define ZSTD_STREAM_PROBE_BYTES (4u << 20)
#define ZSTD_STREAM_PAYS_PCT 90
#define ZSTD_STREAM_SKIP_MIN (16ull << 20)
#define ZSTD_STREAM_SKIP_MAX (64ull << 20)

struct zstd_stream_opts {
	int level;         /* 0 for ZSTD_STREAM_LEVEL_DEFAULT; negative levels are faster */
	int workers;       /* compression threads; 0 compresses in the caller's thread */
	bool no_checksum;  /* leave out zstd's content checksum (another layer checks) */
	bool adaptive;     /* send what does not compress as RAW chunks (above) */
	bool raw_only;     /* send everything as RAW chunks, compress nothing (implies
			    * adaptive's header flag): for links faster than the compressor */
};

/* What an adaptive writer did so far: bytes in, compressed or sent raw. */
struct zstd_stream_counts {
	uint64_t in_bytes;       /* written to the stream */
	uint64_t raw_bytes;      /* of which sent as RAW chunks */
	uint64_t zstd_out_bytes; /* compressed bytes sent for the rest */
};

/* Fill c for a writer opened by zstd_writer_open (s, c). */
void zstd_writer_counts(struct stream *s, struct zstd_stream_counts *c);

/* True when the linked libzstd was built with multithreading (workers > 0 allowed). */
bool zstd_stream_workers_supported(void);

/*
 * Open a compressing writer over lower (out, lower, opts; NULL for defaults) and write
 * the stream header. Writes are compressed as they come and go down in chunks of up to
 * 256 KiB; stream_flush ends the current zstd block and flushes lower, so the reader can
 * decode every byte written so far (one migration round, say) before the writer
 * continues. stream_close(s, true) ends the frame and writes the LAST chunk. With
 * opts->adaptive the header says ZSTD_STREAM_F_RAW and RAW chunks may follow (above).
 * Returns 0; -EINVAL for a level outside [ZSTD_minCLevel(), ZSTD_STREAM_LEVEL_MAX];
 * -ENOTSUP for workers > 0 without multithreading; -ENOMEM; or lower's error. Owns
 * lower on success.
 */
int zstd_writer_open(struct stream **out, struct stream *lower, const struct zstd_stream_opts *opts);

/*
 * Open a decompressing reader over lower (out, lower) and check the stream header.
 * Memory is bounded: at most ZSTD_STREAM_MAX_CHUNK of input and a window of
 * 2^ZSTD_STREAM_WINDOW_LOG_MAX. Reads return -EBADMSG for data zstd rejects (garbage, a
 * checksum mismatch, a window too large) and -EPROTO when the input ends before the
 * LAST chunk or the frame is incomplete. Open returns as frame_reader_open. Owns lower on
 * success.
 */
int zstd_reader_open(struct stream **out, struct stream *lower);

#endif
