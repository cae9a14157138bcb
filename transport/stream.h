/* Byte streams: an ops table per backend, a sticky error, and exact-length read and write. */
#ifndef TRANSPORT_STREAM_H
#define TRANSPORT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A stream is a sink or a filter layer. Layers (frame, zstd, tls-over-fd) wrap a
 * lower stream and own it: closing a layer closes the stream below it with the same
 * commit decision. Callers compose layers themselves, e.g. for a migration:
 *
 *     tls_client -> zstd_writer_open -> frame_writer_open
 *
 * and then use only the top stream. A layer constructor takes ownership of the lower
 * stream only when it succeeds; on failure the caller still owns (and must close) it.
 *
 * Return convention for every function here and in each layer: 0 on success or a
 * negative errno. The codes a reader sees have fixed meanings across layers:
 *
 *   -ENODATA          clean end of stream before the first byte of a read request
 *   -EPROTO           truncated: the input ended inside a request, a header, a record or
 *                     a chunk, or before the format's end marker
 *   -ENOMSG           bad magic or sync word: this is not the expected format
 *   -EPROTONOSUPPORT  the format version (or cipher, or header flag) is not supported
 *   -EBADMSG          checksum or authentication tag mismatch, or corrupt content
 *   -EMSGSIZE         a length field exceeds the format's limit
 *   -EKEYREJECTED     the peer holds another key (TLS PSK mismatch)
 *   others            from the system (-EIO, -ECONNRESET, -ETIMEDOUT, -ENOSPC, ...)
 *
 * Threads: a stream and the layers under it are used by one thread at a time; nothing
 * here locks.
 */
struct stream;

/*
 * The four hooks every backend provides. read and write are exact-length so callers never
 * loop over short I/O. The generic wrappers below handle the sticky error, the EOF flag,
 * zero-length requests and the byte counters; hooks only move bytes.
 */
/*
 * What the connection under a stream says of itself, for progress reports and models:
 * the TCP layer fills it from the kernel (TCP_INFO), and layers above pass it through.
 * Counts are of the socket since it was opened, so they include TLS and framing.
 */
struct stream_stats {
	uint64_t bytes_sent;  /* bytes TCP sent (tcpi_bytes_sent), retransmitted ones included */
	uint64_t rtt_ns;      /* the kernel's smoothed round-trip time; 0 while unknown */
	uint64_t retransmits; /* segments sent again (tcpi_total_retrans) */
};

struct stream_ops {
	/* Write all len > 0 bytes or fail with -errno. NULL for read-only streams. */
	int (*write)(struct stream *s, const void *buf, size_t len);
	/* Read exactly len > 0 bytes; -ENODATA at a clean end, -EPROTO if cut short. */
	int (*read)(struct stream *s, void *buf, size_t len);
	/* Push buffered bytes down so the peer can decode all written so far. Optional. */
	int (*flush)(struct stream *s);
	/* Finish (commit) or abandon (!commit), close the owned lower stream, free s. */
	int (*close)(struct stream *s, bool commit);
	/*
	 * Optional: the connection's figures (stream_stats). A socket sink fills them; a
	 * layer that wraps a lower stream passes the call down; others leave it NULL.
	 */
	int (*stats)(struct stream *s, struct stream_stats *out);
};

/*
 * The common head of every stream object; backends embed it as their first member and
 * get back to their own type with STREAM_CONTAINER.
 */
struct stream {
	const struct stream_ops *ops;
	int err;                /* sticky: the first failure, 0 while healthy */
	bool eof;               /* a read returned -ENODATA; later reads repeat it */
	uint64_t bytes_written; /* bytes accepted by stream_write_all at this layer */
	uint64_t bytes_read;    /* bytes returned by stream_read_all at this layer */
};

#define STREAM_CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Set up the common head of a freshly allocated backend (s, its ops table). */
void stream_init(struct stream *s, const struct stream_ops *ops);

/*
 * Write all of buf (s, buf, len). Returns the sticky error at once if one is set;
 * otherwise calls the backend and makes any failure sticky. len 0 is a no-op. Bytes may
 * sit in a layer's buffer until stream_flush or stream_close.
 */
int stream_write_all(struct stream *s, const void *buf, size_t len);

/*
 * Read exactly len bytes into buf (s, buf, len). Returns 0; -ENODATA at a clean end of
 * stream before any byte of this request (repeated on later calls, not sticky as an
 * error); -EPROTO when the stream ends inside the request (buf then holds a prefix of
 * undefined length); or the sticky error. Any failure other than -ENODATA is sticky.
 */
int stream_read_all(struct stream *s, void *buf, size_t len);

/*
 * Make everything written so far decodable by the reader at the other end: each layer
 * emits its partial block, chunk or record and flushes the layer below. Sticky like
 * writes. A no-op for streams without a flush hook.
 */
int stream_flush(struct stream *s);

/*
 * Close s and every layer under it, and free them (s may be NULL). commit = true
 * finishes the stream (end markers, final chunk, fsync and rename, close_notify) and
 * publishes the result; commit = false abandons it so that nothing is published and a
 * reader sees truncation. A stream with a sticky error is always closed as abandoned.
 * Returns the sticky error if one was set, otherwise the result of finishing.
 */
int stream_close(struct stream *s, bool commit);

/*
 * The figures of the connection under s (s, out): asked of the bottom layer through
 * every wrapping one. Does not touch the sticky error and may be called while another
 * thread writes on s, but not once s is closed. Returns 0 with *out filled; -ENOTSUP
 * when no layer down to the bottom is a socket (memory, files, S3), with *out zeroed;
 * or -errno from the kernel.
 */
int stream_stats(struct stream *s, struct stream_stats *out);

/*
 * For readers of formats with an end marker (s): after the marker, check that the
 * stream below ends there too. Returns 0 at a clean end; -EBADMSG if bytes follow (a
 * spliced or padded stream); or the read error. Reading through to the lower end also
 * consumes a TLS close_notify, so the reader never closes its socket with bytes unread,
 * which would make TCP reset the connection under a writer still closing.
 */
int stream_expect_end(struct stream *s);

/* The sticky error of s, 0 while healthy. */
static inline int stream_error(const struct stream *s)
{
	return s->err;
}

#endif
