/* The receiver's gate: accept connections until one source authenticates and says HELLO. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/conn.h"
#include "migrate/dest_priv.h"
#include "transport/frame.h"
#include "transport/stream.h"
#include "transport/zstd_stream.h"
#include "util/clock.h"

/*
 * One connection on its way in. Its thread authenticates and reads the HELLO; everything
 * else is the gate's (the thread that called mig_gate_accept): only it closes fd and the
 * streams, after joining the thread, so a shutdown() for a passed deadline never hits a
 * reused descriptor. finished is set by the slot's thread under gate.mu.
 */
struct gate_slot {
	struct gate *g;
	bool used, finished;
	int fd;
	pthread_t thread;
	uint64_t start_ms;
	bool overdue;
	char peer[INET6_ADDRSTRLEN + 8];
	struct stream *conn, *z; /* conn owns fd once the handshake succeeded */
	struct mig_dest d;       /* in, hello, buf (its own) */
	int rc;
	char err[256];
};

struct gate {
	pthread_mutex_t mu;
	int wake[2]; /* a slot's thread writes here when it finishes */
	const struct mig_dest_params *p;
	void *ctx; /* for p's callbacks */
	struct gate_slot slot[MIG_GATE_MAX];
};

int mig_cidr_parse(const char *s, struct mig_cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	char *end;

	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -EINVAL;
	}
	out->prefix_bits = max;
	if (slash) {
		unsigned long bits;

		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		bits = strtoul(slash + 1, &end, 10);
		if (*end || bits > max)
			return -EINVAL;
		out->prefix_bits = (unsigned)bits;
	}
	return 0;
}

static bool cidr_match(const struct mig_cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->prefix_bits / 8, rest = c->prefix_bits % 8;

	if (c->family != family)
		return false;
	if (memcmp(c->addr, addr, full) != 0)
		return false;
	return !rest || ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* The peer's address as text into s->peer; true if --allow-from lets it in. */
static bool gate_peer(struct gate *g, struct gate_slot *s)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	const uint8_t *a = NULL;
	int family = 0;
	unsigned port = 0;
	char text[INET6_ADDRSTRLEN] = "?";

	if (getpeername(s->fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;

			a = (const uint8_t *)&in->sin_addr;
			family = AF_INET;
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

			a = in6->sin6_addr.s6_addr;
			family = AF_INET6;
			port = ntohs(in6->sin6_port);
			if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
				a += 12; /* an IPv4 source on a dual-stack socket */
				family = AF_INET;
			}
		}
	}
	if (a)
		inet_ntop(family, a, text, sizeof(text));
	snprintf(s->peer, sizeof(s->peer), family == AF_INET6 ? "[%s]:%u" : "%s:%u", text, port);
	if (!g->p->n_allow_from)
		return true;
	for (unsigned i = 0; a && i < g->p->n_allow_from; i++)
		if (cidr_match(&g->p->allow_from[i], family, a))
			return true;
	return false;
}

/* A slot's thread: the handshake, then the first record, which must be a valid HELLO. */
static void *gate_thread(void *arg)
{
	struct gate_slot *s = arg;
	const struct mig_auth *auth = &s->g->p->auth;
	int rc;

	pthread_setname_np(pthread_self(), "mig-gate");
	rc = mig_conn_secure(&s->conn, s->fd, auth, NULL, MIG_GATE_DEADLINE_MS, s->err,
			     sizeof(s->err));
	if (rc == 0) {
		s->d.conn = s->conn;
		rc = zstd_reader_open(&s->z, s->conn);
		if (rc == 0)
			rc = frame_reader_open_flags(&s->d.in, s->z, auth->insecure_plaintext
						     ? 0 : FRAME_F_NO_CRC);
		if (rc < 0)
			snprintf(s->err, sizeof(s->err), "%s", strerror(-rc));
		else
			rc = mig_dest_read_hello(&s->d, s->err, sizeof(s->err));
	}
	pthread_mutex_lock(&s->g->mu);
	s->rc = rc;
	s->finished = true;
	pthread_mutex_unlock(&s->g->mu);
	while (write(s->g->wake[1], "f", 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/* Join a finished (or shut down) slot and free what it holds; keep_winner leaves it whole. */
static void gate_slot_end(struct gate_slot *s, bool keep_winner)
{
	pthread_join(s->thread, NULL);
	s->used = false;
	if (keep_winner)
		return;
	/* The outermost layer owns the ones below it, down to the socket. */
	if (s->d.in)
		stream_close(s->d.in, false);
	else if (s->z)
		stream_close(s->z, false);
	else if (s->conn)
		stream_close(s->conn, false);
	else
		close(s->fd);
	free(s->d.buf);
	memset(&s->d, 0, sizeof(s->d));
	s->conn = s->z = NULL;
}

static void gate_reject(struct gate *g, const char *peer, const char *why)
{
	char line[400];

	if (!g->p->on_reject)
		return;
	snprintf(line, sizeof(line), "turned away %s: %s", peer, why);
	g->p->on_reject(g->ctx, line);
}

/* Start a thread for the connection fd just accepted; false (fd closed) if it cannot. */
static bool gate_start(struct gate *g, int fd)
{
	struct gate_slot *s = NULL;

	for (unsigned i = 0; i < MIG_GATE_MAX && !s; i++)
		if (!g->slot[i].used)
			s = &g->slot[i];
	if (!s) {
		close(fd);
		return false;
	}
	memset(s, 0, sizeof(*s));
	s->g = g;
	s->fd = fd;
	s->d.disk_fd = -1;
	s->start_ms = clock_now_ms();
	if (!gate_peer(g, s)) {
		gate_reject(g, s->peer, "not in --allow-from");
		close(fd);
		return false;
	}
	s->d.buf = malloc(MIG_DEST_BUF_BYTES);
	if (!s->d.buf || pthread_create(&s->thread, NULL, gate_thread, s) != 0) {
		gate_reject(g, s->peer, "out of memory or threads");
		free(s->d.buf);
		close(fd);
		return false;
	}
	s->used = true;
	return true;
}

/*
 * Handle every finished slot and every slot past its deadline (now). Returns the index of
 * a slot with a valid HELLO, or -1.
 */
static int gate_sweep(struct gate *g, uint64_t now)
{
	for (unsigned i = 0; i < MIG_GATE_MAX; i++) {
		struct gate_slot *s = &g->slot[i];
		bool finished;

		if (!s->used)
			continue;
		pthread_mutex_lock(&g->mu);
		finished = s->finished;
		if (!finished && !s->overdue && now - s->start_ms > MIG_GATE_DEADLINE_MS) {
			/* Wakes the thread from any wait; it then finishes with an error. */
			s->overdue = true;
			shutdown(s->fd, SHUT_RDWR);
		}
		pthread_mutex_unlock(&g->mu);
		if (!finished)
			continue;
		if (s->rc == 0)
			return (int)i;
		if (s->overdue) {
			snprintf(s->err, sizeof(s->err), "no authenticated HELLO within %d ms",
				 MIG_GATE_DEADLINE_MS);
		} else if (now - s->start_ms >= MIG_GATE_DEADLINE_MS) {
			/*
			 * The handshake's own timeout (the same deadline) fired before this sweep
			 * saw the slot overdue: the same line, with what the handshake said.
			 */
			char why[160];

			snprintf(why, sizeof(why), "%s", s->err);
			snprintf(s->err, sizeof(s->err), "no authenticated HELLO within %d ms: %s",
				 MIG_GATE_DEADLINE_MS, why);
		}
		gate_reject(g, s->peer, s->err);
		gate_slot_end(s, false);
	}
	return -1;
}

int mig_gate_accept(struct mig_dest *d, const struct mig_dest_params *p, void *ctx,
		    char *err, size_t errlen)
{
	struct gate *g = calloc(1, sizeof(*g));
	uint64_t until = p->accept_timeout_ms > 0 ? clock_now_ms() + (uint64_t)p->accept_timeout_ms
						  : UINT64_MAX;
	int lfd = -1, won = -1, rc;

	if (!g)
		return -ENOMEM;
	g->p = p;
	g->ctx = ctx;
	pthread_mutex_init(&g->mu, NULL);
	if (pipe2(g->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		snprintf(err, errlen, "receive: pipe: %s", strerror(-rc));
		goto out_free;
	}
	rc = mig_conn_listen(&lfd, p->listen, p->on_listen, ctx, err, errlen);
	if (rc < 0)
		goto out_pipe;
	while (won < 0) {
		struct pollfd pfd[2] = {
			{ .fd = g->wake[0], .events = POLLIN },
			{ .fd = lfd, .events = POLLIN },
		};
		unsigned busy = 0;
		uint64_t now = clock_now_ms();
		int wait_ms = 500; /* the deadlines' resolution */
		char drain[64];

		if (now >= until) {
			snprintf(err, errlen, "no source connected to %s within %d s", p->listen,
				 p->accept_timeout_ms / 1000);
			rc = -ETIMEDOUT;
			break;
		}
		if (until - now < (uint64_t)wait_ms)
			wait_ms = (int)(until - now);
		for (unsigned i = 0; i < MIG_GATE_MAX; i++)
			busy += g->slot[i].used;
		/* Full: further connections wait in the listen backlog. */
		if (poll(pfd, busy < MIG_GATE_MAX ? 2 : 1, wait_ms) < 0 && errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen, "receive: poll: %s", strerror(-rc));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			ssize_t got = read(g->wake[0], drain, sizeof(drain));

			(void)got; /* a wake-up only: gate_sweep looks at every slot */
		}
		if (busy < MIG_GATE_MAX && (pfd[1].revents & POLLIN)) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0)
				gate_start(g, fd);
		}
		won = gate_sweep(g, clock_now_ms());
	}
	/* Stop listening: once a source is in, nobody else gets through. */
	close(lfd);
	for (unsigned i = 0; i < MIG_GATE_MAX; i++) {
		struct gate_slot *s = &g->slot[i];

		if (!s->used || (int)i == won)
			continue;
		pthread_mutex_lock(&g->mu);
		if (!s->finished)
			shutdown(s->fd, SHUT_RDWR);
		pthread_mutex_unlock(&g->mu);
		gate_slot_end(s, false);
	}
	if (won >= 0) {
		struct gate_slot *s = &g->slot[won];

		gate_slot_end(s, true);
		free(d->buf);
		d->buf = s->d.buf;
		d->conn = s->conn;
		d->in = s->d.in;
		d->hello = s->d.hello;
		rc = 0;
	}
out_pipe:
	close(g->wake[0]);
	close(g->wake[1]);
out_free:
	pthread_mutex_destroy(&g->mu);
	free(g);
	return rc;
}
