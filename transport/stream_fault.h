/* A fault-injecting layer for tests: fails writes, cuts reads short, fails flush or close on cue. */
#ifndef TRANSPORT_STREAM_FAULT_H
#define TRANSPORT_STREAM_FAULT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/stream.h"

#define FAULT_NEVER UINT64_MAX

/*
 * What to break. Byte counts are totals over the stream's life at the fault layer.
 * Start from FAULT_SPEC_NONE and change the fields a test needs.
 */
struct fault_spec {
	uint64_t write_fail_after; /* pass this many bytes down, then fail with write_errno */
	int write_errno;           /* positive errno, e.g. EIO or ENOSPC */
	uint64_t read_eof_after;   /* return this many bytes, then end the stream */
	uint64_t read_fail_after;  /* return this many bytes, then fail with read_errno */
	int read_errno;
	size_t read_chunk_bytes;   /* split each read into lower reads of at most this (0: off) */
	int flush_errno;           /* flush fails with this when nonzero */
	int close_errno;           /* close returns this when nonzero (lower still closed) */
};

#define FAULT_SPEC_NONE                                                                 \
	((struct fault_spec){ .write_fail_after = FAULT_NEVER, .write_errno = EIO,          \
			      .read_eof_after = FAULT_NEVER, .read_fail_after = FAULT_NEVER, \
			      .read_errno = EIO })

/*
 * Wrap lower (out, lower, spec; spec is copied). A write straddling write_fail_after
 * passes its first part down and then fails, like a disk filling up mid-write. A read
 * that reaches read_eof_after returns -ENODATA if it starts there, or -EPROTO after
 * copying the bytes before it; read_fail_after works the same with -read_errno.
 * Owns lower from success on. Returns 0 or -ENOMEM.
 */
int fault_stream_open(struct stream **out, struct stream *lower, const struct fault_spec *spec);

#endif
