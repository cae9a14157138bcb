/* File streams: an atomically published writer (name.partial, fsync, rename) and a reader. */
#ifndef TRANSPORT_FILE_STREAM_H
#define TRANSPORT_FILE_STREAM_H

#include <sys/types.h>

#include "transport/stream.h"

/*
 * Create a writer for path (out, path, mode). Bytes go to "<path>.partial" (created
 * with mode, truncated if a stale one exists, never followed if it is a symlink:
 * -ELOOP); path itself does not change until
 * stream_close(s, true), which flushes, fsyncs the file, renames it over path and fsyncs
 * the directory, so path is always either the old file or the complete new one.
 * stream_close(s, false), or any failure while committing, unlinks the partial file.
 * Two writers for the same path at once are not supported. Returns 0, -ENAMETOOLONG,
 * -ENOMEM, or the open() error.
 */
int file_stream_create(struct stream **out, const char *path, mode_t mode);

/*
 * Open an existing file for reading (out, path). Buffered; EOF reads as -ENODATA, or
 * -EPROTO when a request straddles it. Returns 0, -ENOMEM, or the open() error.
 */
int file_stream_open(struct stream **out, const char *path);

#endif
