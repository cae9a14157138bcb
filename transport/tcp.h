/* TCP endpoints: connect and accept with timeouts over IPv4 or IPv6, and streams over them. */
#ifndef TRANSPORT_TCP_H
#define TRANSPORT_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "transport/stream.h"

/*
 * Split "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (empty host) into its parts
 * (spec, host, host_len, port, port_len). Returns 0, or -EINVAL for a missing port or an
 * unbalanced bracket, -ENAMETOOLONG when a part does not fit.
 */
int tcp_split_hostport(const char *spec, char *host, size_t host_len, char *port, size_t port_len);

/*
 * Connect to host:port (out_fd, host, port, timeout_ms), trying each address getaddrinfo
 * returns (IPv4 and IPv6) until one answers within what is left of timeout_ms (> 0, or
 * 0 for the system's own limit). The socket is blocking, close-on-exec and TCP_NODELAY.
 * Returns 0, -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH, ... from the last address tried,
 * or a name lookup failure: -ENXIO (unknown host or service), -EAGAIN (temporary), -EINVAL.
 */
int tcp_connect(int *out_fd, const char *host, const char *port, int timeout_ms);

/*
 * tcp_connect that another thread can cut short (out_fd, host, port, timeout_ms,
 * cancel_fd): once cancel_fd is readable (a pipe or eventfd the canceller writes), the
 * attempt stops and -ECANCELED is returned. cancel_fd -1 is tcp_connect. The name lookup
 * is not covered: give numeric addresses where that matters.
 */
int tcp_connect_cancel(int *out_fd, const char *host, const char *port, int timeout_ms,
		       int cancel_fd);

/*
 * Listen on host:port (out_fd, host, port): host NULL, "" or "*" is every address (IPv6
 * wildcard accepting IPv4 too when available), port "0" picks a free port (see
 * tcp_local_port). The listener is SO_REUSEADDR, close-on-exec and non-blocking (so
 * tcp_accept never blocks past its timeout). Returns 0 or -errno as tcp_connect.
 */
int tcp_listen(int *out_fd, const char *host, const char *port);

/* The local port a bound socket listens on (fd, port). Returns 0 or -errno. */
int tcp_local_port(int fd, uint16_t *port);

/*
 * Accept one connection on listen_fd (out_fd, listen_fd, timeout_ms; 0 waits forever).
 * The new socket is blocking, close-on-exec and TCP_NODELAY. Returns 0, -ETIMEDOUT or
 * -errno.
 */
int tcp_accept(int *out_fd, int listen_fd, int timeout_ms);

/*
 * tcp_connect, then an owning fd stream (out, host, port, timeout_ms) whose idle timeout
 * is also timeout_ms. Returns as tcp_connect, or -ENOMEM.
 */
int tcp_stream_connect(struct stream **out, const char *host, const char *port, int timeout_ms);

/*
 * Listen on host:port, accept exactly one connection within timeout_ms, close the
 * listener, and return an owning fd stream over the connection (out, host, port,
 * timeout_ms). Returns as tcp_listen and tcp_accept, or -ENOMEM.
 */
int tcp_stream_accept_one(struct stream **out, const char *host, const char *port, int timeout_ms);

#endif
