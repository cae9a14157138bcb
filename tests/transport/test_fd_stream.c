/* Tests for fd streams: exact reads over dribbled input, buffering, EOF, timeouts, ownership. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/fd_stream.h"
#include "transport/frame.h"
#include "transport/mem_stream.h"
#include "transport/zstd_stream.h"

static int sv[2] = { -1, -1 };

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
}

TestSuite(fd_stream, .init = setup, .fini = teardown, .timeout = 30);

struct dribble {
	int fd;
	const uint8_t *buf;
	size_t len;
	size_t step;
};

static void *dribble_writer(void *arg)
{
	struct dribble *d = arg;

	for (size_t off = 0; off < d->len; off += d->step) {
		size_t n = d->len - off < d->step ? d->len - off : d->step;

		if (write(d->fd, d->buf + off, n) != (ssize_t)n)
			break;
		if (off % 997 == 0)
			usleep(100);
	}
	close(d->fd);
	return NULL;
}

Test(fd_stream, exact_reads_survive_input_arriving_in_dribbles)
{
	uint8_t data[20000], back[20000];
	struct dribble d = { sv[1], data, sizeof(data), 7 };
	struct test_thread th;
	struct stream *s;

	fill_random(data, sizeof(data), 5);
	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 5000), 0);
	thread_start(&th, dribble_writer, &d);
	cr_assert_eq(stream_read_all(s, back, 3), 0);
	cr_assert_eq(stream_read_all(s, back + 3, 15000), 0);
	cr_assert_eq(stream_read_all(s, back + 15003, sizeof(data) - 15003), 0);
	cr_assert_eq(memcmp(back, data, sizeof(data)), 0);
	cr_assert_eq(stream_read_all(s, back, 1), -ENODATA, "peer closed on a boundary");
	thread_join(&th);
	sv[1] = -1;
	cr_assert_eq(stream_close(s, false), 0);
}

Test(fd_stream, writes_are_buffered_until_flush)
{
	struct pollfd p = { .fd = sv[1], .events = POLLIN };
	struct stream *s;
	char buf[8];

	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 0), 0);
	cr_assert_eq(stream_write_all(s, "hello", 5), 0);
	cr_assert_eq(poll(&p, 1, 50), 0, "nothing sent before flush");
	cr_assert_eq(stream_flush(s), 0);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	cr_assert_eq(stream_write_all(s, "bye", 3), 0);
	cr_assert_eq(stream_close(s, true), 0, "a committing close flushes");
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 3);
}

struct writer_job {
	struct stream *s;
	const uint8_t *data;
	size_t len;
	int rc;
};

/* Small, large, small: the order must hold across the buffer bypass. */
static void *small_large_small(void *arg)
{
	struct writer_job *j = arg;

	stream_write_all(j->s, j->data, 100);
	stream_write_all(j->s, j->data + 100, j->len - 200);
	stream_write_all(j->s, j->data + j->len - 100, 100);
	j->rc = stream_close(j->s, true);
	return NULL;
}

Test(fd_stream, large_writes_bypass_the_buffer_in_order)
{
	static uint8_t data[300000], back[300000];
	struct writer_job j = { .data = data, .len = sizeof(data) };
	struct test_thread th;
	struct stream *r;

	fill_random(data, sizeof(data), 9);
	cr_assert_eq(fd_stream_open(&j.s, sv[0], 0, 5000), 0);
	cr_assert_eq(fd_stream_open(&r, sv[1], 0, 5000), 0);
	thread_start(&th, small_large_small, &j);
	cr_assert_eq(stream_read_all(r, back, sizeof(back)), 0);
	thread_join(&th);
	cr_assert_eq(j.rc, 0);
	cr_assert_eq(memcmp(back, data, sizeof(data)), 0);
	cr_assert_eq(stream_close(r, false), 0);
}

Test(fd_stream, peer_hangup_inside_a_request_is_eproto)
{
	struct stream *s;
	char buf[8];

	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 5000), 0);
	write_fd_all(sv[1], "abc", 3);
	close(sv[1]);
	sv[1] = -1;
	cr_assert_eq(stream_read_all(s, buf, 5), -EPROTO);
	cr_assert_eq(stream_close(s, false), -EPROTO);
}

Test(fd_stream, silent_peer_times_out)
{
	struct stream *s;
	char buf[8];

	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 100), 0);
	cr_assert_eq(stream_read_all(s, buf, 1), -ETIMEDOUT);
	cr_assert_eq(stream_close(s, false), -ETIMEDOUT);
}

Test(fd_stream, writing_to_a_vanished_peer_is_epipe_not_sigpipe)
{
	static uint8_t data[1 << 20];
	struct stream *s;
	int rc;

	close(sv[1]);
	sv[1] = -1;
	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 0), 0);
	rc = stream_write_all(s, data, sizeof(data));
	cr_assert(rc == -EPIPE || rc == -ECONNRESET, "rc %d", rc);
	cr_assert_eq(stream_close(s, true), rc);
}

Test(fd_stream, committing_close_of_a_borrowed_socket_signals_the_end)
{
	struct stream *s;
	char buf[8];

	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 0), 0);
	cr_assert_eq(stream_write_all(s, "end", 3), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 3);
	cr_assert_eq(read(sv[1], buf, sizeof(buf)), 0, "EOF although sv[0] is still open");
	cr_assert_neq(fcntl(sv[0], F_GETFD), -1);
}

Test(fd_stream, owned_fd_is_closed_and_borrowed_fd_is_not)
{
	struct stream *s;
	int fd = dup(sv[0]);

	cr_assert_eq(fd_stream_open(&s, fd, FD_STREAM_OWN, 0), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "owned fd closed");
	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 0), 0);
	cr_assert_eq(stream_close(s, true), 0);
	cr_assert_neq(fcntl(sv[0], F_GETFD), -1, "borrowed fd still open");
}

Test(fd_stream, pipes_work_as_well_as_sockets)
{
	struct stream *w, *r;
	int p[2];
	char buf[6];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(fd_stream_open(&w, p[1], FD_STREAM_OWN, 1000), 0);
	cr_assert_eq(fd_stream_open(&r, p[0], FD_STREAM_OWN, 1000), 0);
	cr_assert_eq(stream_write_all(w, "pipe!", 5), 0);
	cr_assert_eq(stream_close(w, true), 0);
	cr_assert_eq(stream_read_all(r, buf, 5), 0);
	cr_assert_eq(memcmp(buf, "pipe!", 5), 0);
	cr_assert_eq(stream_read_all(r, buf, 1), -ENODATA);
	cr_assert_eq(stream_close(r, false), 0);
}

/* Read exactly len bytes from fd (fd, buf, len), as the peer of a stream under test. */
static void read_fd_all(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		cr_assert_gt(n, 0, "the peer read %zd after %zu of %zu bytes", n, got, len);
		got += (size_t)n;
	}
}

Test(fd_stream, stats_report_what_tcp_sent)
{
	static uint8_t data[64 << 10], back[sizeof(data)];
	struct stream_stats st;
	struct stream *s;
	int a, b;

	tcp_pair(&a, &b);
	fill_random(data, sizeof(data), 21);
	cr_assert_eq(fd_stream_open(&s, a, FD_STREAM_OWN, 5000), 0);
	cr_assert_eq(stream_write_all(s, data, sizeof(data)), 0);
	cr_assert_eq(stream_flush(s), 0);
	/* Once the peer holds every byte, TCP has sent them all at least once. */
	read_fd_all(b, back, sizeof(back));
	cr_assert_eq(stream_stats(s, &st), 0);
	cr_assert_geq(st.bytes_sent, sizeof(data), "bytes_sent %llu",
		      (unsigned long long)st.bytes_sent);
	cr_assert_eq(stream_close(s, true), 0);
	close(b);
}

Test(fd_stream, stats_pass_through_zstd_and_frame_to_the_socket)
{
	static uint8_t data[64 << 10], back[sizeof(data)];
	struct zstd_stream_opts zo = { .level = 1, .raw_only = true, .no_checksum = true };
	struct stream_stats top, bottom;
	struct stream *fd_s, *z, *f;
	int a, b, flags;
	ssize_t n;

	tcp_pair(&a, &b);
	fill_random(data, sizeof(data), 22);
	cr_assert_eq(fd_stream_open(&fd_s, a, FD_STREAM_OWN, 5000), 0);
	cr_assert_eq(zstd_writer_open(&z, fd_s, &zo), 0);
	cr_assert_eq(frame_writer_open(&f, z), 0);
	cr_assert_eq(frame_write(f, FRAME_T_USER_MIN, 0, data, sizeof(data)), 0);
	cr_assert_eq(stream_flush(f), 0);
	/* Drain what the layers put on the socket: more than the payload, framed. */
	read_fd_all(b, back, sizeof(data));
	flags = fcntl(b, F_GETFL);
	cr_assert_eq(fcntl(b, F_SETFL, flags | O_NONBLOCK), 0);
	while ((n = read(b, back, sizeof(back))) > 0)
		;
	cr_assert_eq(stream_stats(f, &top), 0);
	cr_assert_eq(stream_stats(fd_s, &bottom), 0);
	cr_assert_eq(top.bytes_sent, bottom.bytes_sent, "the top sees the socket's count");
	cr_assert_geq(top.bytes_sent, sizeof(data));
	cr_assert_eq(stream_close(f, false), 0);
	close(b);
}

Test(fd_stream, stats_are_enotsup_without_a_tcp_socket)
{
	struct stream_stats st = { .bytes_sent = 1, .rtt_ns = 2, .retransmits = 3 };
	struct mem_buf mb = { 0 };
	struct stream *s;
	int p[2];

	/* A Unix socket is a socket, but TCP_INFO is TCP's. */
	cr_assert_eq(fd_stream_open(&s, sv[0], 0, 0), 0);
	cr_assert_lt(stream_stats(s, &st), 0);
	stream_close(s, false);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(fd_stream_open(&s, p[1], FD_STREAM_OWN, 0), 0);
	cr_assert_eq(stream_stats(s, &st), -ENOTSUP);
	cr_assert_eq(st.bytes_sent + st.rtt_ns + st.retransmits, 0, "zeroed on failure");
	stream_close(s, false);
	close(p[0]);
	cr_assert_eq(mem_stream_writer(&s, &mb, 0), 0);
	cr_assert_eq(stream_stats(s, &st), -ENOTSUP, "memory has no connection");
	stream_close(s, false);
	free(mb.data);
}
