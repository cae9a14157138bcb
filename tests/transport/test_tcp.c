/* Tests for TCP endpoints: address parsing, refusal, timeouts, IPv4 and IPv6 round trips. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "transport/tcp.h"
#include "util/clock.h"

TestSuite(tcp, .timeout = 30);

Test(tcp, split_hostport_handles_names_v4_v6_and_empty_hosts)
{
	char h[64], p[16];

	cr_assert_eq(tcp_split_hostport("example.com:7000", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "example.com");
	cr_assert_str_eq(p, "7000");
	cr_assert_eq(tcp_split_hostport("10.0.0.1:1", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "10.0.0.1");
	cr_assert_eq(tcp_split_hostport("[::1]:443", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "::1");
	cr_assert_str_eq(p, "443");
	cr_assert_eq(tcp_split_hostport(":9", h, sizeof(h), p, sizeof(p)), 0);
	cr_assert_str_eq(h, "");
	cr_assert_eq(tcp_split_hostport("host", h, sizeof(h), p, sizeof(p)), -EINVAL);
	cr_assert_eq(tcp_split_hostport("host:", h, sizeof(h), p, sizeof(p)), -EINVAL);
	cr_assert_eq(tcp_split_hostport("::1:80", h, sizeof(h), p, sizeof(p)), -EINVAL);
	cr_assert_eq(tcp_split_hostport("[::1:80", h, sizeof(h), p, sizeof(p)), -EINVAL);
	cr_assert_eq(tcp_split_hostport("averyveryverylonghostname:1", h, 8, p, sizeof(p)),
		     -ENAMETOOLONG);
}

/* A port that was just free: listen on 0, note it, close. */
static void free_port(char *port, size_t len)
{
	uint16_t p;
	int fd;

	cr_assert_eq(tcp_listen(&fd, "127.0.0.1", "0"), 0);
	cr_assert_eq(tcp_local_port(fd, &p), 0);
	close(fd);
	snprintf(port, len, "%u", p);
}

Test(tcp, connect_to_a_closed_port_is_econnrefused)
{
	char port[16];
	int fd;

	free_port(port, sizeof(port));
	cr_assert_eq(tcp_connect(&fd, "127.0.0.1", port, 2000), -ECONNREFUSED);
}

Test(tcp, unknown_service_is_enxio)
{
	int fd;

	cr_assert_eq(tcp_connect(&fd, "127.0.0.1", "no-such-service-gw", 1000), -ENXIO);
}

Test(tcp, accept_times_out_with_etimedout)
{
	long t0;
	int lfd, fd;

	cr_assert_eq(tcp_listen(&lfd, "127.0.0.1", "0"), 0);
	t0 = (long)clock_now_ms();
	cr_assert_eq(tcp_accept(&fd, lfd, 150), -ETIMEDOUT);
	cr_assert_geq((long)clock_now_ms() - t0, 140);
	close(lfd);
}

Test(tcp, connect_times_out_when_syns_are_dropped)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int lfd, fds[8], n = 0, rc = 0;
	char port[16];
	long t0 = 0;

	/* A listener that never accepts, with a backlog of 0: once its queue is full the
	 * kernel drops further SYNs and connect can only time out. */
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(lfd >= 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(lfd, 0), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	while (n < 8) {
		t0 = (long)clock_now_ms();
		rc = tcp_connect(&fds[n], "127.0.0.1", port, 300);
		if (rc < 0)
			break;
		n++;
	}
	cr_assert_eq(rc, -ETIMEDOUT, "rc %d after %d connections", rc, n);
	cr_assert_geq((long)clock_now_ms() - t0, 290);
	while (n--)
		close(fds[n]);
	close(lfd);
}

struct acceptor {
	const char *host, *port;
	struct stream *s;
	int rc;
	char got[6];
};

static void *accept_and_echo(void *arg)
{
	struct acceptor *a = arg;

	a->rc = tcp_stream_accept_one(&a->s, a->host, a->port, 5000);
	if (a->rc < 0)
		return NULL;
	a->rc = stream_read_all(a->s, a->got, 5);
	if (a->rc == 0)
		a->rc = stream_write_all(a->s, a->got, 5);
	if (a->rc == 0)
		a->rc = stream_close(a->s, true);
	else
		stream_close(a->s, false);
	return NULL;
}

static void round_trip(const char *listen_host, const char *connect_host)
{
	struct acceptor a = { .host = listen_host };
	struct test_thread th;
	struct stream *s;
	char port[16], buf[6];
	int rc = -1;

	free_port(port, sizeof(port));
	a.port = port;
	thread_start(&th, accept_and_echo, &a);
	for (int i = 0; i < 100 && rc < 0; i++) {
		rc = tcp_stream_connect(&s, connect_host, port, 2000);
		if (rc == -ECONNREFUSED)
			usleep(10000); /* the acceptor is not listening yet */
	}
	cr_assert_eq(rc, 0, "connect: %s", strerror(-rc));
	cr_assert_eq(stream_write_all(s, "ping!", 5), 0);
	cr_assert_eq(stream_flush(s), 0);
	cr_assert_eq(stream_read_all(s, buf, 5), 0);
	cr_assert_eq(memcmp(buf, "ping!", 5), 0);
	cr_assert_eq(stream_read_all(s, buf, 1), -ENODATA);
	cr_assert_eq(stream_close(s, true), 0);
	thread_join(&th);
	cr_assert_eq(a.rc, 0);
}

Test(tcp, ipv4_round_trip_over_loopback)
{
	round_trip("127.0.0.1", "127.0.0.1");
}

Test(tcp, ipv6_round_trip_over_loopback)
{
	int fd;

	if (tcp_listen(&fd, "::1", "0") < 0)
		cr_skip_test("no IPv6 loopback here");
	close(fd);
	round_trip("::1", "::1");
}

Test(tcp, wildcard_listener_accepts_ipv4)
{
	round_trip(NULL, "127.0.0.1");
}

Test(tcp, sockets_have_nodelay)
{
	int a, b, v = 0;
	socklen_t len = sizeof(v);

	tcp_pair(&a, &b);
	cr_assert_eq(getsockopt(a, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	cr_assert_neq(v, 0);
	cr_assert_eq(getsockopt(b, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
	cr_assert_neq(v, 0);
	close(a);
	close(b);
}
