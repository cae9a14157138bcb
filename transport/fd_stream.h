/* Streams over an existing connected file descriptor: a socket, pipe or terminal. */
#ifndef TRANSPORT_FD_STREAM_H
#define TRANSPORT_FD_STREAM_H

#include "transport/stream.h"

/* fd_stream_open flags. */
#define FD_STREAM_OWN 0x1u /* close(fd) when the stream closes */

/*
 * Wrap the connected fd (out, fd, flags, timeout_ms) as a buffered bidirectional stream.
 * Writes collect in a buffer until it fills, stream_flush or a committing close; reads
 * fill a buffer, so the stream may consume more of fd than it returns and fd must not be
 * read elsewhere afterwards. timeout_ms > 0 bounds each wait for fd to become readable or
 * writable (an idle timeout, -ETIMEDOUT); 0 waits forever. Blocking and non-blocking fds
 * both work. Sockets are written with MSG_NOSIGNAL, so a vanished peer is -EPIPE, not
 * SIGPIPE; a pipe's writer gets SIGPIPE unless the program ignores it (cli/ does).
 * close(commit) flushes and, for a socket, shuts down our sending direction (SHUT_WR) so
 * the peer reads a clean end even when fd stays open; close(!commit) drops unsent bytes.
 * fd is closed at close only with FD_STREAM_OWN, and stays the caller's if this fails.
 * Returns 0 or -ENOMEM.
 */
int fd_stream_open(struct stream **out, int fd, unsigned flags, int timeout_ms);

#endif
