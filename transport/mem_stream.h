/* In-memory streams: a growable buffer sink and a reader over a caller's buffer. */
#ifndef TRANSPORT_MEM_STREAM_H
#define TRANSPORT_MEM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "transport/stream.h"

/* What a committed memory writer publishes: data is malloc'd and the caller frees it. */
struct mem_buf {
	uint8_t *data;
	size_t len;
};

#define MEM_STREAM_UNLIMITED SIZE_MAX

/*
 * Open a writer into a growable buffer (out, dst, max_bytes). dst is set to {NULL, 0}
 * now and filled only by stream_close(s, true), which hands the buffer to the caller;
 * stream_close(s, false) frees it and leaves dst empty. dst must outlive the stream,
 * which is what lets a whole layer stack be closed from the top. Writes past max_bytes
 * fail with -EFBIG (MEM_STREAM_UNLIMITED for no limit). Returns 0 or -ENOMEM.
 */
int mem_stream_writer(struct stream **out, struct mem_buf *dst, size_t max_bytes);

/*
 * The bytes a memory writer holds so far (s, len), borrowed: valid until the next write
 * or close. Lets a test decode what a flush pushed down while the writer stays open.
 */
const uint8_t *mem_stream_peek(struct stream *s, size_t *len);

/*
 * Open a reader over buf (out, buf, len), borrowed: buf must outlive the stream. Reads
 * past the end return -ENODATA, or -EPROTO when a request straddles it. close frees
 * the stream object only. Returns 0 or -ENOMEM.
 */
int mem_stream_reader(struct stream **out, const void *buf, size_t len);

#endif
