/* TCP endpoints: connect and accept with timeouts over IPv4 or IPv6, and streams over them. */
#include "transport/tcp.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/fd_priv.h"
#include "transport/fd_stream.h"

static int tcp_copy(char *dst, size_t dst_len, const char *src, size_t n)
{
	if (n >= dst_len)
		return -ENAMETOOLONG;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

int tcp_split_hostport(const char *spec, char *host, size_t host_len, char *port, size_t port_len)
{
	const char *colon, *host_start = spec, *host_end;

	if (spec[0] == '[') {
		host_end = strchr(spec, ']');
		if (!host_end || host_end[1] != ':')
			return -EINVAL;
		host_start = spec + 1;
		colon = host_end + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			return -EINVAL; /* no port, or a bare IPv6 address without brackets */
		host_end = colon;
	}
	if (colon[1] == '\0')
		return -EINVAL;
	if (tcp_copy(host, host_len, host_start, (size_t)(host_end - host_start)) < 0)
		return -ENAMETOOLONG;
	return tcp_copy(port, port_len, colon + 1, strlen(colon + 1));
}

static int tcp_gai_errno(int gai)
{
	switch (gai) {
	case EAI_NONAME:
	case EAI_SERVICE:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_FAMILY:
		return -ENXIO;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EINVAL;
	}
}

static int tcp_set_blocking(int fd, bool blocking)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return -errno;
	return 0;
}

static void tcp_nodelay(int fd)
{
	int one = 1;

	/* Best effort: latency, not correctness. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Wait for fd to be writable (connected or failed) until deadline_ms, or for cancel_fd
 * (if >= 0) to be readable. Returns 0, -ETIMEDOUT, -ECANCELED or -errno.
 */
static int tcp_wait_connected(int fd, int cancel_fd, int64_t deadline_ms)
{
	if (cancel_fd < 0)
		return fd_poll(fd, POLLOUT, fd_remaining_ms(deadline_ms));
	for (;;) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLOUT },
				       { .fd = cancel_fd, .events = POLLIN } };
		int n = poll(p, 2, fd_remaining_ms(deadline_ms));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (p[1].revents)
			return -ECANCELED;
		if (n == 0)
			return -ETIMEDOUT;
		return 0;
	}
}

/* One non-blocking connect attempt bounded by deadline_ms. Returns 0 or -errno. */
static int tcp_connect_one(int fd, const struct addrinfo *ai, int cancel_fd, int64_t deadline_ms)
{
	socklen_t len = sizeof(int);
	int rc, soerr = 0;

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR)
		return -errno;
	rc = tcp_wait_connected(fd, cancel_fd, deadline_ms);
	if (rc < 0)
		return rc;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return soerr ? -soerr : 0;
}

int tcp_connect(int *out_fd, const char *host, const char *port, int timeout_ms)
{
	return tcp_connect_cancel(out_fd, host, port, timeout_ms, -1);
}

int tcp_connect_cancel(int *out_fd, const char *host, const char *port, int timeout_ms,
		       int cancel_fd)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_ADDRCONFIG };
	int64_t deadline = fd_deadline_ms(timeout_ms);
	struct addrinfo *res, *ai;
	int rc, gai, fd = -1;

	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0)
		return tcp_gai_errno(gai);
	rc = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			rc = -errno;
			continue;
		}
		rc = tcp_connect_one(fd, ai, cancel_fd, deadline);
		if (rc == 0)
			rc = tcp_set_blocking(fd, true);
		if (rc == 0)
			break;
		close(fd);
		fd = -1;
		if (rc == -ETIMEDOUT || rc == -ECANCELED)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	tcp_nodelay(fd);
	*out_fd = fd;
	return 0;
}

int tcp_listen(int *out_fd, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	int rc, gai, fd = -1, one = 1, zero = 0;

	if (host && (host[0] == '\0' || strcmp(host, "*") == 0))
		host = NULL;
	gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0)
		return tcp_gai_errno(gai);
	/* For the wildcard, prefer the IPv6 socket that also takes IPv4. */
	rc = -EADDRNOTAVAIL;
	for (int pass = 0; pass < 2 && fd < 0; pass++) {
		for (ai = res; ai; ai = ai->ai_next) {
			if (!host && (pass == 0) != (ai->ai_family == AF_INET6))
				continue;
			if (host && pass == 1)
				break;
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				    ai->ai_protocol);
			if (fd < 0) {
				rc = -errno;
				continue;
			}
			(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (ai->ai_family == AF_INET6 && !host)
				(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0)
				break;
			rc = -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return rc;
	*out_fd = fd;
	return 0;
}

int tcp_local_port(int fd, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return -EAFNOSUPPORT;
	return 0;
}

int tcp_accept(int *out_fd, int listen_fd, int timeout_ms)
{
	int64_t deadline = fd_deadline_ms(timeout_ms);
	int fd, rc;

	for (;;) {
		rc = fd_poll(listen_fd, POLLIN, fd_remaining_ms(deadline));
		if (rc < 0)
			return rc;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		/* A connection that went away between poll and accept: wait again. */
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
			return -errno;
	}
	tcp_nodelay(fd);
	*out_fd = fd;
	return 0;
}

int tcp_stream_connect(struct stream **out, const char *host, const char *port, int timeout_ms)
{
	int fd, rc;

	rc = tcp_connect(&fd, host, port, timeout_ms);
	if (rc < 0)
		return rc;
	rc = fd_stream_open(out, fd, FD_STREAM_OWN, timeout_ms);
	if (rc < 0)
		close(fd);
	return rc;
}

int tcp_stream_accept_one(struct stream **out, const char *host, const char *port, int timeout_ms)
{
	int lfd, fd, rc;

	rc = tcp_listen(&lfd, host, port);
	if (rc < 0)
		return rc;
	rc = tcp_accept(&fd, lfd, timeout_ms);
	close(lfd);
	if (rc < 0)
		return rc;
	rc = fd_stream_open(out, fd, FD_STREAM_OWN, timeout_ms);
	if (rc < 0)
		close(fd);
	return rc;
}
