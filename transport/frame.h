/* Record framing over a byte stream: typed, length-prefixed, CRC32C-checked records. */
#ifndef TRANSPORT_FRAME_H
#define TRANSPORT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "transport/stream.h"

/*
 * Wire format. Changing anything here requires a FRAME_FORMAT_VERSION bump.
 * All integers are little-endian.
 *
 * Stream header, written once by frame_writer_open and checked by frame_reader_open:
 *
 *    0        4         6         8
 *    +--------+---------+---------+
 *    | "GWFR" | version | flags   |
 *    +--------+---------+---------+
 *
 *    flags   0, or FRAME_F_NO_CRC: every record's crc32c field is 0 and nobody checks it,
 *            because the stream below authenticates every byte before a reader sees it
 *            (TLS, AEAD). A reader that does not know a flag refuses the stream.
 *
 * Then records, each a 16-byte header and its payload:
 *
 *    0        4      6       8        12       16
 *    +--------+------+-------+--------+--------+==================+
 *    | sync   | type | flags | length | crc32c | payload (length) |
 *    +--------+------+-------+--------+--------+==================+
 *
 *    sync    "GWRC", catches a reader that lost its place
 *    type    0 is invalid; 1..0xfeff belong to the caller; 0xff00..0xffff to this layer
 *    flags   the caller's; passed through untouched
 *    length  payload bytes, at most FRAME_MAX_PAYLOAD
 *    crc32c  over header bytes [0, 12) followed by the payload, so a flipped type,
 *            flags or length is caught as well as a damaged payload; 0 under FRAME_F_NO_CRC
 *
 * The last record is FRAME_T_END, written only by a committing close, whose payload is
 * two u64: the number of records and the sum of payload bytes before it. A stream that
 * ends without it was truncated, even if it ends on a record boundary. The stream below
 * must end right after it; trailing bytes are rejected (-EBADMSG).
 */
#define FRAME_FORMAT_VERSION 1
#define FRAME_MAGIC "GWFR"
#define FRAME_SYNC 0x43525747u /* "GWRC" little-endian */
#define FRAME_STREAM_HEADER_BYTES 8
#define FRAME_HEADER_BYTES 16
#define FRAME_END_PAYLOAD_BYTES 16
#define FRAME_MAX_PAYLOAD (16u * 1024 * 1024)
#define FRAME_F_NO_CRC 0x0001u /* stream header flag: records carry no checksum */

#define FRAME_T_INVALID 0x0000
#define FRAME_T_USER_MIN 0x0001
#define FRAME_T_USER_MAX 0xfeff
#define FRAME_T_END 0xffff /* reserved: end of stream with totals */

_Static_assert(FRAME_STREAM_HEADER_BYTES == sizeof(FRAME_MAGIC) - 1 + 2 + 2, "stream header");
_Static_assert(FRAME_HEADER_BYTES == 4 + 2 + 2 + 4 + 4, "record header layout");
_Static_assert(FRAME_END_PAYLOAD_BYTES == 8 + 8, "end record payload");
_Static_assert(FRAME_MAX_PAYLOAD <= UINT32_MAX, "length fits its field");

/*
 * Open a record writer over lower (out, lower) and write the stream header. Records go
 * down as written; stream_flush(s) flushes lower so the peer can read every record so
 * far; stream_close(s, true) writes FRAME_T_END and commits lower; stream_close(s, false)
 * abandons lower, which the reader sees as truncation. Owns lower on success. Plain
 * stream_write_all/stream_read_all on a frame stream fail with -EOPNOTSUPP. Returns 0,
 * -ENOMEM, or lower's write error.
 */
int frame_writer_open(struct stream **out, struct stream *lower);

/*
 * frame_writer_open with stream header flags (out, lower, flags): 0 or FRAME_F_NO_CRC.
 * Pass FRAME_F_NO_CRC only over a layer that authenticates every byte (TLS): the
 * records then go down without the CRC32C pass, and the payload is read once, by the
 * layer below, so a caller may frame memory that changes under it (a torn copy is the
 * caller's problem, not a checksum failure). Returns as frame_writer_open, or -EINVAL
 * for an unknown flag.
 */
int frame_writer_open_flags(struct stream **out, struct stream *lower, uint16_t flags);

/*
 * Write one record (s, type, flags, payload, len). type must lie in
 * [FRAME_T_USER_MIN, FRAME_T_USER_MAX] and len <= FRAME_MAX_PAYLOAD, else -EINVAL or
 * -EMSGSIZE (not sticky: nothing was written). A failure below is sticky.
 */
int frame_write(struct stream *s, uint16_t type, uint16_t flags, const void *payload, size_t len);

/* frame_write with the payload gathered from iov[0..iovcnt) (s, type, flags, iov, iovcnt). */
int frame_writev(struct stream *s, uint16_t type, uint16_t flags, const struct iovec *iov,
		 int iovcnt);

/*
 * Open a record reader over lower (out, lower): reads and checks the stream header.
 * Returns 0; -EPROTO if lower ends first; -ENOMSG for bad magic; -EPROTONOSUPPORT for
 * another version or unknown header flags; -ENOMEM; or lower's read error. Owns lower on
 * success. A FRAME_F_NO_CRC stream is accepted only when the caller allows it
 * (frame_reader_open_flags): only it knows whether the layer below authenticates.
 */
int frame_reader_open(struct stream **out, struct stream *lower);

/*
 * frame_reader_open accepting the stream header flags in allowed (out, lower, allowed):
 * 0 or FRAME_F_NO_CRC. Under FRAME_F_NO_CRC a record whose crc32c field is not 0 is
 * -EBADMSG. Returns as frame_reader_open.
 */
int frame_reader_open_flags(struct stream **out, struct stream *lower, uint16_t allowed);

/*
 * Read the next record into buf (s, type, flags, buf, cap, len); flags may be NULL. On
 * success *type is any caller type, known or not (deciding is the caller's job), and
 * *len the payload length. Returns -ENOBUFS with *len set to the needed size when it
 * exceeds cap; the record stays pending, so retry with a larger buffer (not sticky).
 * Returns -ENODATA after the FRAME_T_END record, once the totals check out and the stream
 * below has ended too (for TLS: the peer's close_notify arrived). Sticky
 * failures: -EPROTO (truncated, or ended without FRAME_T_END), -ENOMSG (bad sync word),
 * -EBADMSG (CRC mismatch, type 0, a reserved type, end totals that disagree, or bytes
 * after the end record),
 * -EMSGSIZE (length over FRAME_MAX_PAYLOAD), or lower's error.
 */
int frame_read(struct stream *s, uint16_t *type, uint16_t *flags, void *buf, size_t cap,
	       size_t *len);

/*
 * Read the next record's header only (s, type, flags, len): the payload stays pending and
 * is read with frame_read_part, so a caller can check a prefix (its own header) and then
 * read the rest straight to where it belongs. flags may be NULL. Returns as frame_read
 * (0, -ENODATA after the end record, or a sticky error); -EINVAL (not sticky) while a
 * payload is still partly unread.
 */
int frame_read_header(struct stream *s, uint16_t *type, uint16_t *flags, size_t *len);

/*
 * Read the next n bytes of the pending payload into buf (s, buf, n); n may not exceed
 * what is left (-EINVAL, not sticky). The piece that completes the payload checks the
 * record's CRC (-EBADMSG, sticky): bytes already handed out are unchecked until then, so
 * the caller must not act on them before the last piece succeeded. frame_read and
 * frame_read_alloc return -EINVAL while a payload is partly read.
 */
int frame_read_part(struct stream *s, void *buf, size_t n);

/*
 * frame_read into a fresh malloc'd buffer the caller frees (s, type, flags, buf, len).
 * *buf is non-NULL on success even for an empty payload. Returns as frame_read, or
 * -ENOMEM (not sticky).
 */
int frame_read_alloc(struct stream *s, uint16_t *type, uint16_t *flags, void **buf, size_t *len);

#endif
