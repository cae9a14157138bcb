/* Streams over an existing connected file descriptor: a socket, pipe or terminal. */
#include "transport/fd_stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_sent */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "transport/fd_priv.h"
#include "util/clock.h"

#define FD_STREAM_BUF_BYTES (64u * 1024)

struct fd_stream {
	struct stream base;
	int fd;
	unsigned flags;
	int timeout_ms;
	bool is_socket;
	size_t rpos, rlen; /* unread bytes are rbuf[rpos, rlen) */
	size_t wlen;       /* unsent bytes are wbuf[0, wlen) */
	uint8_t rbuf[FD_STREAM_BUF_BYTES];
	uint8_t wbuf[FD_STREAM_BUF_BYTES];
};

int64_t fd_deadline_ms(int timeout_ms)
{
	return timeout_ms > 0 ? (int64_t)clock_now_ms() + timeout_ms : -1;
}

int fd_remaining_ms(int64_t deadline_ms)
{
	int64_t left;

	if (deadline_ms < 0)
		return -1;
	left = deadline_ms - (int64_t)clock_now_ms();
	return left > 0 ? (int)left : 0;
}

int fd_poll(int fd, short events, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? (int64_t)clock_now_ms() + timeout_ms : -1;
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	for (;;) {
		n = poll(&p, 1, fd_remaining_ms(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

void fd_discard_input(int fd)
{
	uint8_t junk[4096];

	/* Bounded: a peer still streaming at us must not keep us here. */
	for (int i = 0; i < 256; i++)
		if (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) <= 0)
			break;
}

/* One read of up to len bytes: the count (0 at EOF) or -errno. */
static ssize_t fd_read_some(struct fd_stream *f, void *buf, size_t len)
{
	ssize_t n;
	int rc;

	for (;;) {
		if (f->timeout_ms > 0) {
			rc = fd_poll(f->fd, POLLIN, f->timeout_ms);
			if (rc < 0)
				return rc;
		}
		n = f->is_socket ? recv(f->fd, buf, len, 0) : read(f->fd, buf, len);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = fd_poll(f->fd, POLLIN, f->timeout_ms > 0 ? f->timeout_ms : -1);
		if (rc < 0)
			return rc;
	}
}

static int fd_write_full(struct fd_stream *f, const uint8_t *p, size_t len)
{
	ssize_t n;
	int rc;

	while (len) {
		if (f->timeout_ms > 0) {
			rc = fd_poll(f->fd, POLLOUT, f->timeout_ms);
			if (rc < 0)
				return rc;
		}
		if (f->is_socket)
			n = send(f->fd, p, len, MSG_NOSIGNAL | (f->timeout_ms > 0 ? MSG_DONTWAIT : 0));
		else
			n = write(f->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			rc = fd_poll(f->fd, POLLOUT, f->timeout_ms > 0 ? f->timeout_ms : -1);
			if (rc < 0)
				return rc;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fd_stream_drain(struct fd_stream *f)
{
	int rc = fd_write_full(f, f->wbuf, f->wlen);

	f->wlen = 0;
	return rc;
}

static int fd_stream_write(struct stream *s, const void *buf, size_t len)
{
	struct fd_stream *f = STREAM_CONTAINER(s, struct fd_stream, base);
	int rc;

	if (len <= sizeof(f->wbuf) - f->wlen) {
		memcpy(f->wbuf + f->wlen, buf, len);
		f->wlen += len;
		return 0;
	}
	rc = fd_stream_drain(f);
	if (rc < 0)
		return rc;
	if (len >= sizeof(f->wbuf))
		return fd_write_full(f, buf, len);
	memcpy(f->wbuf, buf, len);
	f->wlen = len;
	return 0;
}

static int fd_stream_read(struct stream *s, void *buf, size_t len)
{
	struct fd_stream *f = STREAM_CONTAINER(s, struct fd_stream, base);
	uint8_t *p = buf;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (f->rpos < f->rlen) {
			size_t take = f->rlen - f->rpos;

			if (take > len - got)
				take = len - got;
			memcpy(p + got, f->rbuf + f->rpos, take);
			f->rpos += take;
			got += take;
			continue;
		}
		/* Large requests bypass the buffer; small ones refill it. */
		if (len - got >= sizeof(f->rbuf)) {
			n = fd_read_some(f, p + got, len - got);
			if (n > 0)
				got += (size_t)n;
		} else {
			n = fd_read_some(f, f->rbuf, sizeof(f->rbuf));
			if (n > 0) {
				f->rpos = 0;
				f->rlen = (size_t)n;
			}
		}
		if (n < 0)
			return (int)n;
		if (n == 0)
			return got ? -EPROTO : -ENODATA;
	}
	return 0;
}

static int fd_stream_flush(struct stream *s)
{
	return fd_stream_drain(STREAM_CONTAINER(s, struct fd_stream, base));
}

static int fd_stream_close(struct stream *s, bool commit)
{
	struct fd_stream *f = STREAM_CONTAINER(s, struct fd_stream, base);
	int rc = 0;

	if (commit) {
		rc = fd_stream_drain(f);
		/* End our direction so the peer reads a clean end even if fd stays open. */
		if (rc == 0 && f->is_socket && shutdown(f->fd, SHUT_WR) < 0 && errno != ENOTCONN)
			rc = -errno;
	}
	if (f->flags & FD_STREAM_OWN) {
		if (f->is_socket)
			fd_discard_input(f->fd);
		close(f->fd);
	}
	free(f);
	return rc;
}

int fd_tcp_stats(int fd, struct stream_stats *out)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	out->bytes_sent = ti.tcpi_bytes_sent;
	out->rtt_ns = (uint64_t)ti.tcpi_rtt * 1000u;
	out->retransmits = ti.tcpi_total_retrans;
	return 0;
}

static int fd_stream_stats(struct stream *s, struct stream_stats *out)
{
	struct fd_stream *f = STREAM_CONTAINER(s, struct fd_stream, base);

	return f->is_socket ? fd_tcp_stats(f->fd, out) : -ENOTSUP;
}

static const struct stream_ops fd_stream_ops = {
	.write = fd_stream_write,
	.read = fd_stream_read,
	.flush = fd_stream_flush,
	.close = fd_stream_close,
	.stats = fd_stream_stats,
};

int fd_stream_open(struct stream **out, int fd, unsigned flags, int timeout_ms)
{
	struct fd_stream *f;
	struct stat st;

	if (fd < 0)
		return -EBADF;
	f = malloc(sizeof(*f));
	if (!f)
		return -ENOMEM;
	stream_init(&f->base, &fd_stream_ops);
	f->fd = fd;
	f->flags = flags;
	f->timeout_ms = timeout_ms;
	f->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	f->rpos = 0;
	f->rlen = 0;
	f->wlen = 0;
	*out = &f->base;
	return 0;
}
