/* ip= and the test /init's network services: TCP line echo, sink and source, UDP echo. */
/*
 * With ip=ADDR[/PREFIX] (repeatable: the i-th configures eth<i>; /24 by default), /init
 * brings the interfaces up and serves, between heartbeats:
 *
 *   TCP 7   line echo: each line comes back as "<seq> <line>", seq counting from 1 per
 *           connection
 *   TCP 9   sink: reads until the client shuts down its side, then answers
 *           "<bytes> <crc32, 8 hex>" and closes
 *   TCP 19  source: reads "<bytes> <seed>\n", sends that many bytes of the pattern (byte
 *           i is byte i % 8, little-endian, of splitmix64(seed ^ (i / 8))) and closes
 *   UDP 7   echo, each datagram as it came
 *
 * The heartbeat line gains " conn=<TCP connections accepted> udp=<datagrams echoed>".
 * Prints "NET eth<i> ip=<a.b.c.d>/<prefix> status=0" per interface, or status=<errno>.
 */
#include "guest.h"

#define NET_CONNS_MAX 8
#define NET_LINE_MAX 4096
#define NET_OUT_BYTES 65536
#define NET_IO_BYTES (256 * 1024)
#define NET_UDP_BURST 64

enum { PORT_ECHO = 7, PORT_SINK = 9, PORT_SOURCE = 19 };
enum conn_kind {
	CONN_FREE = 0,
	CONN_ECHO,
	CONN_SINK,
	CONN_SOURCE_REQ, /* a source connection still reading its request line */
	CONN_SOURCE,     /* ... sending */
};

struct conn {
	enum conn_kind kind;
	int fd;
	int done;                      /* answered (sink) or all sent (source): close once flushed */
	uint64_t seq;                  /* echo: lines answered */
	uint64_t bytes;                /* sink: received; source: to send */
	uint32_t crc;                  /* sink */
	uint64_t seed, pos;            /* source */
	size_t in_len;                 /* echo: partial line; source: request bytes */
	size_t out_len, out_off;       /* bytes queued for the client */
	char in[NET_LINE_MAX];
	char out[NET_OUT_BYTES];
};

static struct {
	int up;
	int listen[3];
	int udp;
	uint64_t accepted, udp_echoed;
	struct conn conn[NET_CONNS_MAX];
	uint8_t io[NET_IO_BYTES];
} net;

static uint16_t htons16(uint16_t v)
{
	return (uint16_t)(v << 8 | v >> 8);
}

static uint32_t htonl32(uint32_t v)
{
	return (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24);
}

/* "A.B.C.D[/P]" into a host-order address and prefix; 0 on success. */
static int parse_ip(const char *s, uint32_t *addr, uint64_t *prefix)
{
	uint32_t a = 0;

	for (int i = 0; i < 4; i++) {
		uint64_t part;

		if (parse_u64(&s, i < 3 ? '.' : '/', &part) || part > 255)
			return -1;
		a = a << 8 | (uint32_t)part;
	}
	*prefix = 24;
	if (*s && (parse_u64(&s, 0, prefix) || *prefix < 1 || *prefix > 30))
		return -1;
	*addr = a;
	return 0;
}

static void sin_make(struct sockaddr_in_raw *sin, uint32_t addr, uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->family = AF_INET;
	sin->port = htons16(port);
	sin->addr = htonl32(addr);
}

/* Address, netmask and IFF_UP for eth<i> through the classic ioctls. */
static long if_configure(int i, uint32_t addr, uint64_t prefix)
{
	struct ifreq_raw ifr;
	long s = sys3(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc;

	if (s < 0)
		return s;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.name, "eth", 3);
	ifr.name[3] = (char)('0' + i);
	sin_make(&ifr.u.sin, addr, 0);
	rc = sys3(SYS_ioctl, s, SIOCSIFADDR, &ifr);
	if (rc == 0) {
		sin_make(&ifr.u.sin, (uint32_t)(0xffffffffULL << (32 - prefix)), 0);
		rc = sys3(SYS_ioctl, s, SIOCSIFNETMASK, &ifr);
	}
	if (rc == 0)
		rc = sys3(SYS_ioctl, s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.u.flags |= IFF_UP;
		rc = sys3(SYS_ioctl, s, SIOCSIFFLAGS, &ifr);
	}
	sys1(SYS_close, s);
	return rc;
}

static int sock_open(int type, uint16_t port)
{
	struct sockaddr_in_raw sin;
	int one = 1;
	long s = sys3(SYS_socket, AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	sys5(SYS_setsockopt, s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sin_make(&sin, 0, port);
	if (sys3(SYS_bind, s, &sin, sizeof(sin)) < 0 ||
	    (type == SOCK_STREAM && sys2(SYS_listen, s, 16) < 0)) {
		sys1(SYS_close, s);
		return -1;
	}
	return (int)s;
}

void net_setup(const struct params *p)
{
	static const uint16_t ports[3] = { PORT_ECHO, PORT_SINK, PORT_SOURCE };
	struct line l = { .len = 0 };

	for (int i = 0; i < p->nip; i++) {
		uint32_t addr;
		uint64_t prefix;
		long rc = parse_ip(p->ip[i], &addr, &prefix) ? -22 : if_configure(i, addr, prefix);

		put_str(&l, "NET eth");
		put_u64(&l, (uint64_t)i);
		put_str(&l, " ip=");
		put_str(&l, p->ip[i]);
		put_str(&l, " status=");
		put_u64(&l, (uint64_t)-rc);
		line_emit(&l);
		net.up |= rc == 0;
	}
	if (!net.up)
		return;
	for (int i = 0; i < 3; i++)
		net.listen[i] = sock_open(SOCK_STREAM, ports[i]);
	net.udp = sock_open(SOCK_DGRAM, PORT_ECHO);
}

static void conn_close(struct conn *c)
{
	sys1(SYS_close, c->fd);
	c->kind = CONN_FREE;
}

/* Send what is queued; 0 when all of it went, 1 when the socket is full, -1 on error. */
static int conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		long n = sys4(SYS_sendto, c->fd, c->out + c->out_off, c->out_len - c->out_off,
			      MSG_NOSIGNAL);

		if (n == -EAGAIN)
			return 1;
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	return 0;
}

static void out_put(struct conn *c, const char *s, size_t n)
{
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
}

/* Answer every complete line in c->in that fits the output buffer (a full buffer of
 * NET_LINE_MAX bytes without a newline counts as a line). */
static void echo_lines(struct conn *c)
{
	size_t start = 0;

	for (size_t i = 0; i < c->in_len; i++) {
		struct line num = { .len = 0 };
		size_t len;

		if (c->in[i] != '\n' && !(i == NET_LINE_MAX - 1 && start == 0))
			continue;
		len = i + 1 - start;
		put_u64(&num, c->seq + 1);
		if (c->out_len + num.len + 1 + len + 1 > NET_OUT_BYTES)
			break; /* the client is not reading: wait until it does */
		c->seq++;
		out_put(c, num.buf, num.len);
		out_put(c, " ", 1);
		out_put(c, c->in + start, len);
		if (c->in[i] != '\n')
			out_put(c, "\n", 1);
		start = i + 1;
	}
	memcpy(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
}

/* The next piece of the source pattern into the output buffer. */
static void source_fill(struct conn *c)
{
	size_t n = c->bytes - c->pos < NET_OUT_BYTES ? (size_t)(c->bytes - c->pos) : NET_OUT_BYTES;

	for (size_t k = 0; k < n; k++) {
		uint64_t i = c->pos + k;

		c->out[k] = (char)(splitmix64(c->seed ^ (i / 8)) >> (8 * (i % 8)));
	}
	c->pos += n;
	c->out_len = n;
	c->out_off = 0;
	c->done = c->pos == c->bytes;
}

/* "<bytes> <seed>\n" in c->in: 1 when parsed (the connection becomes a source), 0 when
 * incomplete, -1 when malformed. */
static int source_request(struct conn *c)
{
	const char *s = c->in;

	for (size_t i = 0; i < c->in_len; i++) {
		if (c->in[i] != '\n')
			continue;
		c->in[i] = 0;
		if (parse_u64(&s, ' ', &c->bytes) || parse_u64(&s, 0, &c->seed))
			return -1;
		c->kind = CONN_SOURCE;
		c->done = c->bytes == 0;
		return 1;
	}
	return c->in_len == NET_LINE_MAX ? -1 : 0;
}

/* Read what the client sent: returns 1 to go on, 0 when it would block, -1 to close. */
static int conn_read(struct conn *c)
{
	long n;

	if (c->kind == CONN_SINK) {
		n = sys4(SYS_recvfrom, c->fd, net.io, NET_IO_BYTES, 0);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return n == -EINTR ? 1 : -1;
		if (n == 0) {
			struct line l = { .len = 0 };

			put_u64(&l, c->bytes);
			put_str(&l, " ");
			put_hex(&l, c->crc, 8);
			put_str(&l, "\n");
			out_put(c, l.buf, l.len);
			c->done = 1;
			return 0;
		}
		c->bytes += (uint64_t)n;
		c->crc = crc32_ieee(c->crc, net.io, (size_t)n);
		return 1;
	}
	if (c->in_len == NET_LINE_MAX)
		return 0; /* echo: waiting for room to answer */
	n = sys4(SYS_recvfrom, c->fd, c->in + c->in_len, NET_LINE_MAX - c->in_len, 0);
	if (n == -EAGAIN)
		return 0;
	if (n <= 0)
		return n == -EINTR ? 1 : -1;
	c->in_len += (size_t)n;
	if (c->kind == CONN_SOURCE_REQ)
		return source_request(c) < 0 ? -1 : 1;
	echo_lines(c);
	return 1;
}

/* Work on one connection after poll said it is ready, until it would block. */
static void conn_serve(struct conn *c)
{
	for (;;) {
		int rc = conn_flush(c);

		if (rc < 0) {
			conn_close(c);
			return;
		}
		if (rc > 0)
			return; /* the client's window is full: poll for POLLOUT */
		if (c->done) {
			conn_close(c);
			return;
		}
		if (c->kind == CONN_SOURCE) {
			source_fill(c);
			continue;
		}
		if (c->kind == CONN_ECHO)
			echo_lines(c); /* lines held back while the output was full */
		rc = conn_read(c);
		if (rc < 0) {
			conn_close(c);
			return;
		}
		if (rc == 0 && !c->out_len && !c->done)
			return;
	}
}

static void net_accept(int which)
{
	static const enum conn_kind kinds[3] = { CONN_ECHO, CONN_SINK, CONN_SOURCE_REQ };

	for (int i = 0; i < NET_CONNS_MAX; i++) {
		struct conn *c = &net.conn[i];
		long fd;

		if (c->kind != CONN_FREE)
			continue;
		fd = sys4(SYS_accept4, net.listen[which], 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		memset(c, 0, offsetof(struct conn, in));
		c->fd = (int)fd;
		c->kind = kinds[which];
		net.accepted++;
	}
}

static void udp_echo(void)
{
	for (int i = 0; i < NET_UDP_BURST; i++) {
		struct sockaddr_in_raw from;
		int fromlen = sizeof(from);
		long n = sys6(SYS_recvfrom, net.udp, (long)net.io, 65536, 0, (long)&from, (long)&fromlen);

		if (n < 0)
			return;
		sys6(SYS_sendto, net.udp, (long)net.io, n, 0, (long)&from, fromlen);
		net.udp_echoed++;
	}
}

void net_wait(uint64_t until_ns)
{
	enum { ROLE_LISTEN = 0, ROLE_UDP = 3, ROLE_CONN = 4 };
	struct pollfd_raw fds[4 + NET_CONNS_MAX];
	int role[4 + NET_CONNS_MAX], nfds = 0, free_slot = 0;

	if (!net.up) {
		sleep_until(until_ns);
		return;
	}
	for (int i = 0; i < NET_CONNS_MAX; i++)
		free_slot |= net.conn[i].kind == CONN_FREE;
	for (int i = 0; i < 3; i++) {
		if (net.listen[i] < 0 || !free_slot)
			continue;
		role[nfds] = ROLE_LISTEN + i;
		fds[nfds++] = (struct pollfd_raw){ .fd = net.listen[i], .events = POLLIN };
	}
	if (net.udp >= 0) {
		role[nfds] = ROLE_UDP;
		fds[nfds++] = (struct pollfd_raw){ .fd = net.udp, .events = POLLIN };
	}
	for (int i = 0; i < NET_CONNS_MAX; i++) {
		const struct conn *c = &net.conn[i];

		if (c->kind == CONN_FREE)
			continue;
		role[nfds] = ROLE_CONN + i;
		fds[nfds++] = (struct pollfd_raw){
			.fd = c->fd, .events = (short)(c->out_len ? POLLOUT : POLLIN),
		};
	}
	for (;;) {
		uint64_t now = now_ns();
		struct timespec_raw ts;
		long n;

		if (now >= until_ns)
			return;
		ts.tv_sec = (int64_t)((until_ns - now) / 1000000000ULL);
		ts.tv_nsec = (int64_t)((until_ns - now) % 1000000000ULL);
		n = sys5(SYS_ppoll, fds, nfds, &ts, 0, 0);
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return;
		break;
	}
	for (int i = 0; i < nfds; i++) {
		if (!fds[i].revents)
			continue;
		if (role[i] == ROLE_UDP)
			udp_echo();
		else if (role[i] < ROLE_UDP)
			net_accept(role[i] - ROLE_LISTEN);
		else if (net.conn[role[i] - ROLE_CONN].kind != CONN_FREE)
			conn_serve(&net.conn[role[i] - ROLE_CONN]);
	}
}

void net_hb_append(struct line *l)
{
	if (!net.up)
		return;
	put_str(l, " conn=");
	put_u64(l, net.accepted);
	put_str(l, " udp=");
	put_u64(l, net.udp_echoed);
}
