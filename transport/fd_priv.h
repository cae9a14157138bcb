/* Shared helpers for file-descriptor backends: waiting with a timeout and monotonic deadlines. */
#ifndef TRANSPORT_FD_PRIV_H
#define TRANSPORT_FD_PRIV_H

#include <stdint.h>

struct stream_stats;

/*
 * Wait until fd is ready for events (fd, POLLIN or POLLOUT, timeout_ms; negative waits
 * forever). Returns 0 when ready (including error and hangup, which the next I/O call
 * reports), -ETIMEDOUT, or -errno from poll. Retries EINTR with the remaining time.
 */
int fd_poll(int fd, short events, int timeout_ms);


/* Milliseconds left until deadline_ms, at least 0; -1 (forever) when deadline_ms < 0. */
int fd_remaining_ms(int64_t deadline_ms);

/* The deadline timeout_ms from now, or -1 (none) when timeout_ms <= 0. */
int64_t fd_deadline_ms(int timeout_ms);

/*
 * Read and drop whatever input a socket already holds, without waiting (fd). Closing a
 * socket with unread input makes TCP send a reset instead of a clean FIN, and a reset can
 * fail the peer's last writes; callers drain right before close().
 */
void fd_discard_input(int fd);

/*
 * The TCP layer's figures for stream_stats (fd, out): bytes sent, smoothed RTT and
 * retransmissions from the kernel's TCP_INFO on socket fd. Any thread. Returns 0, or
 * -errno from getsockopt (-ENOTSOCK, -EOPNOTSUPP for a socket that is not TCP).
 */
int fd_tcp_stats(int fd, struct stream_stats *out);

#endif
