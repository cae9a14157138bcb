/* Whole reads and writes at an offset, retried on EINTR and short transfers. */
#ifndef REPO_FILE_IO_H
#define REPO_FILE_IO_H

#include <stddef.h>
#include <stdint.h>

/* Read exactly len bytes at off (fd, buf, len, off): 0, -errno, or -EPROTO if the file ends first. */
int file_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Write exactly len bytes at off (fd, buf, len, off): 0 or -errno. */
int file_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
