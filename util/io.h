/* Whole reads and writes on file descriptors, retried on EINTR and short transfers. */
#ifndef UTIL_IO_H
#define UTIL_IO_H

#include <stddef.h>
#include <stdint.h>

/*
 * Write exactly len bytes of buf to fd at its file position (fd, buf, len). Returns 0 or
 * -errno of the failing write(); what was written before a failure stays written.
 */
int io_write_all(int fd, const void *buf, size_t len);

/* Write exactly len bytes at off (fd, buf, len, off): 0 or -errno. The file position is kept. */
int io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);

/*
 * Read exactly len bytes at off (fd, buf, len, off): 0, -errno, or -EPROTO when the file
 * ends first (then buf holds what was there). The file position is kept.
 */
int io_pread_all(int fd, void *buf, size_t len, uint64_t off);

#endif
