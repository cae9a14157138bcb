/* The control API: one JSON request per line on a UNIX socket, one JSON reply per line. */
#include "cli/api.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "util/clock.h"

/*
 * Slots for connections. When all are taken, a newcomer replaces the connection that has
 * been quiet longest (never one waiting for a slow command), so idle clients cannot lock
 * everyone out; a quiet one is also closed after API_IDLE_MS.
 */
#define API_MAX_CLIENTS 16
#define API_IDLE_MS 60000
#define API_LINE_MAX 4096
#define API_REPLY_MAX 32768
#define API_MAX_PEER_GROUPS 256

/*
 * One connection. Its output is bounded: while a reply waits to be sent (the client does
 * not read), nothing more is read from it, so its own writes block in its kernel, never
 * the API thread. Fields are the API thread's, except done, which a slow command's
 * thread sets under the server's lock.
 */
struct api_client {
	int fd; /* -1 when the slot is free */
	unsigned gen;     /* bumped when the slot is reused: a late slow reply is dropped */
	bool busy;        /* a slow command of this client runs */
	char *done;       /* its reply, handed over under mu */
	uint64_t last_ms; /* last request or reply */
	size_t used;
	char buf[API_LINE_MAX];
	size_t out_len, out_off;
	char out[API_REPLY_MAX + 1];
};

struct api_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int stop[2]; /* api_server_stop writes to stop[1] */
	int done[2]; /* a slow command's thread writes to done[1] when its reply is ready */
	pthread_t thread;
	const struct api_cmd *cmds;
	void *ctx;
	struct api_access acc;
	uid_t uid;
	/* Under mu: slow commands running, and the references that keep s alive. */
	pthread_mutex_t mu;
	pthread_cond_t idle;
	unsigned slow_running;
	unsigned refs; /* the API itself, plus one per slow command thread */
	struct api_client client[API_MAX_CLIENTS];
};

int api_access_group(struct api_access *acc, const char *name, char *err, size_t errlen)
{
	char buf[16384];
	struct group gr, *res = NULL;
	char *end;
	unsigned long num = strtoul(name, &end, 10);

	if (name[0] >= '0' && name[0] <= '9' && !*end && num <= UINT_MAX) {
		acc->gid = (gid_t)num;
		acc->has_group = true;
		snprintf(acc->group, sizeof(acc->group), "%s", name);
		return 0;
	}
	if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res) {
		snprintf(err, errlen, "--api-group '%s' is not a group on this host: name one "
			 "from /etc/group (e.g. the operators' group)", name);
		return -ENOENT;
	}
	acc->gid = gr.gr_gid;
	acc->has_group = true;
	snprintf(acc->group, sizeof(acc->group), "%s", name);
	return 0;
}

static void api_error(char *reply, size_t len, const char *msg)
{
	char q[512];

	json_quote(q, sizeof(q), msg);
	snprintf(reply, len, "{\"ok\":false,\"error\":%s}", q);
}

static const struct api_cmd *api_find(struct api_server *s, const char *line, size_t len,
				      struct json_obj *req, char *reply, size_t rlen)
{
	char err[128], msg[256];
	const char *cmd;

	if (json_parse_obj(line, len, req, err, sizeof(err)) < 0) {
		snprintf(msg, sizeof(msg), "request is %s: send {\"cmd\":\"status\"}", err);
		api_error(reply, rlen, msg);
		return NULL;
	}
	cmd = json_get_str(req, "cmd");
	if (!cmd) {
		api_error(reply, rlen, "request has no \"cmd\" string: send {\"cmd\":\"status\"}");
		return NULL;
	}
	for (const struct api_cmd *c = s->cmds; c->name; c++)
		if (strcmp(c->name, cmd) == 0)
			return c;
	size_t off = (size_t)snprintf(msg, sizeof(msg), "unknown command '%.64s': try", cmd);

	for (const struct api_cmd *c = s->cmds; c->name && off < sizeof(msg); c++)
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, " %s", c->name);
	api_error(reply, rlen, msg);
	return NULL;
}

static void server_unref(struct api_server *s)
{
	bool last;

	pthread_mutex_lock(&s->mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->mu);
	if (!last)
		return;
	close(s->done[0]);
	close(s->done[1]);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

struct slow_job {
	struct api_server *s;
	const struct api_cmd *cmd;
	unsigned slot, gen;
	struct json_obj req;
};

static void *slow_thread(void *arg)
{
	struct slow_job *j = arg;
	struct api_server *s = j->s;
	char *reply = malloc(API_REPLY_MAX);

	pthread_setname_np(pthread_self(), "api-slow");
	if (reply) {
		reply[0] = '\0';
		j->cmd->fn(s->ctx, &j->req, reply, API_REPLY_MAX);
	}
	pthread_mutex_lock(&s->mu);
	if (s->client[j->slot].gen == j->gen && s->client[j->slot].fd >= 0) {
		s->client[j->slot].done = reply;
		reply = NULL;
	}
	s->slow_running--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	free(reply);
	while (write(s->done[1], "r", 1) < 0 && errno == EINTR)
		;
	free(j);
	server_unref(s);
	return NULL;
}

static void client_close(struct api_server *s, struct api_client *c)
{
	pthread_mutex_lock(&s->mu);
	close(c->fd);
	c->fd = -1;
	c->gen++;
	c->busy = false;
	free(c->done);
	c->done = NULL;
	pthread_mutex_unlock(&s->mu);
	c->used = 0;
	c->out_len = c->out_off = 0;
}

/* Queue reply (a JSON object) with its newline as c's pending output. */
static void client_queue(struct api_client *c, const char *reply)
{
	size_t n = strnlen(reply, API_REPLY_MAX - 1);

	memcpy(c->out, reply, n);
	c->out[n] = '\n';
	c->out_len = n + 1;
	c->out_off = 0;
}

/* Send what c's socket takes now. Returns false if the connection is dead. */
static bool client_flush(struct api_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		c->out_off += (size_t)n;
	}
	c->out_len = c->out_off = 0;
	return true;
}

/* Start one request line: quick ones are answered at once, slow ones on a thread. */
static void client_request(struct api_server *s, unsigned slot, const char *line, size_t len)
{
	struct api_client *c = &s->client[slot];
	struct slow_job *j = malloc(sizeof(*j));
	char *reply = malloc(API_REPLY_MAX);
	pthread_t tid;

	if (!j || !reply) {
		client_queue(c, "{\"ok\":false,\"error\":\"out of memory\"}");
		goto out;
	}
	reply[0] = '\0';
	j->cmd = api_find(s, line, len, &j->req, reply, API_REPLY_MAX);
	if (!j->cmd) {
		client_queue(c, reply);
		goto out;
	}
	if (!j->cmd->slow) {
		j->cmd->fn(s->ctx, &j->req, reply, API_REPLY_MAX);
		client_queue(c, reply);
		goto out;
	}
	j->s = s;
	j->slot = slot;
	j->gen = c->gen;
	pthread_mutex_lock(&s->mu);
	s->refs++;
	s->slow_running++;
	c->busy = true;
	pthread_mutex_unlock(&s->mu);
	if (pthread_create(&tid, NULL, slow_thread, j) != 0) {
		pthread_mutex_lock(&s->mu);
		s->refs--;
		s->slow_running--;
		c->busy = false;
		pthread_mutex_unlock(&s->mu);
		client_queue(c, "{\"ok\":false,\"error\":\"cannot start a thread for the command: "
			     "try again\"}");
		goto out;
	}
	pthread_detach(tid);
	j = NULL;
out:
	free(j);
	free(reply);
}

/* Answer complete lines until a reply waits or a slow command runs. */
static void client_work(struct api_server *s, unsigned slot)
{
	struct api_client *c = &s->client[slot];
	char *nl;

	while (c->fd >= 0 && !c->busy && !c->out_len &&
	       (nl = memchr(c->buf, '\n', c->used)) != NULL) {
		size_t line_len = (size_t)(nl - c->buf);

		c->last_ms = clock_now_ms();
		client_request(s, slot, c->buf, line_len);
		memmove(c->buf, nl + 1, c->used - line_len - 1);
		c->used -= line_len + 1;
		if (!client_flush(c)) {
			client_close(s, c);
			return;
		}
	}
	if (c->fd >= 0 && !c->busy && !c->out_len && c->used == sizeof(c->buf)) {
		client_queue(c, "{\"ok\":false,\"error\":\"request line longer than 4096 bytes\"}");
		client_flush(c);
		client_close(s, c);
	}
}

/* Read what is there into c's line buffer. */
static void client_read(struct api_server *s, unsigned slot)
{
	struct api_client *c = &s->client[slot];
	ssize_t n = recv(c->fd, c->buf + c->used, sizeof(c->buf) - c->used, MSG_DONTWAIT);

	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		client_close(s, c);
		return;
	}
	c->used += (size_t)n;
	client_work(s, slot);
}

/* Is the peer of fd root, our user, or in the allowed group? why says who it was if not. */
static bool peer_allowed(struct api_server *s, int fd, char *why, size_t len)
{
	struct ucred uc;
	socklen_t sl = sizeof(uc);
	gid_t groups[API_MAX_PEER_GROUPS];
	socklen_t gl = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) < 0) {
		snprintf(why, len, "a peer whose credentials are unknown (%s)", strerror(errno));
		return false;
	}
	if (uc.uid == 0 || uc.uid == s->uid)
		return true;
	if (s->acc.has_group) {
		if (uc.gid == s->acc.gid)
			return true;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) == 0) {
			for (size_t i = 0; i < gl / sizeof(gid_t); i++)
				if (groups[i] == s->acc.gid)
					return true;
		}
	}
	snprintf(why, len, "uid %u gid %u (pid %d): not root, not uid %u%s%s", (unsigned)uc.uid,
		 (unsigned)uc.gid, (int)uc.pid, (unsigned)s->uid,
		 s->acc.has_group ? ", not in group " : "", s->acc.has_group ? s->acc.group : "");
	return false;
}

static void api_accept(struct api_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int slot = -1;
	uint64_t oldest = UINT64_MAX;
	char why[200];

	if (fd < 0)
		return;
	if (!peer_allowed(s, fd, why, sizeof(why))) {
		cli_error("api: refused a connection to %s from %s", s->path, why);
		close(fd);
		return;
	}
	for (int i = 0; i < API_MAX_CLIENTS; i++) {
		if (s->client[i].fd < 0) {
			slot = i;
			break;
		}
	}
	if (slot < 0) {
		/* Full: make room by closing the connection quiet for longest. */
		for (int i = 0; i < API_MAX_CLIENTS; i++) {
			if (!s->client[i].busy && s->client[i].last_ms < oldest) {
				oldest = s->client[i].last_ms;
				slot = i;
			}
		}
		if (slot < 0) {
			static const char full[] = "{\"ok\":false,\"error\":\"too many API commands "
						   "running: try again when one is done\"}\n";

			/* Best effort: it is closed either way. */
			ssize_t sent = send(fd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

			(void)sent;
			close(fd);
			return;
		}
		client_close(s, &s->client[slot]);
	}
	s->client[slot].fd = fd;
	s->client[slot].used = 0;
	s->client[slot].out_len = s->client[slot].out_off = 0;
	s->client[slot].last_ms = clock_now_ms();
}

/* Take the replies slow commands finished, and close connections quiet too long. */
static void api_housekeeping(struct api_server *s)
{
	uint64_t now = clock_now_ms();

	for (unsigned i = 0; i < API_MAX_CLIENTS; i++) {
		struct api_client *c = &s->client[i];
		char *done;

		if (c->fd < 0)
			continue;
		pthread_mutex_lock(&s->mu);
		done = c->done;
		c->done = NULL;
		if (done)
			c->busy = false;
		pthread_mutex_unlock(&s->mu);
		if (done) {
			client_queue(c, done);
			free(done);
			c->last_ms = now;
			if (!client_flush(c)) {
				client_close(s, c);
				continue;
			}
			client_work(s, i);
			continue;
		}
		if (!c->busy && now - c->last_ms > API_IDLE_MS)
			client_close(s, c);
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;

	pthread_setname_np(pthread_self(), "api");
	for (;;) {
		struct pollfd pfd[3 + API_MAX_CLIENTS];
		unsigned idx[API_MAX_CLIENTS];
		nfds_t n = 0;
		char drain[64];

		pfd[n++] = (struct pollfd){ .fd = s->stop[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->done[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		for (unsigned i = 0; i < API_MAX_CLIENTS; i++) {
			struct api_client *c = &s->client[i];
			short ev;

			if (c->fd < 0)
				continue;
			/* Read only while nothing waits to go out and no slow command runs. */
			ev = c->out_len ? POLLOUT : c->busy ? 0 : POLLIN;
			idx[n - 3] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd, .events = ev };
		}
		if (poll(pfd, n, 1000) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents) {
			ssize_t got = read(s->done[0], drain, sizeof(drain));

			(void)got; /* only a wake-up: api_housekeeping looks at every slot */
		}
		if (pfd[2].revents & POLLIN)
			api_accept(s);
		for (nfds_t i = 3; i < n; i++) {
			struct api_client *c = &s->client[idx[i - 3]];

			if (!pfd[i].revents || c->fd != pfd[i].fd)
				continue;
			if (pfd[i].revents & (POLLERR | POLLNVAL)) {
				client_close(s, c);
			} else if (c->out_len) {
				if (!client_flush(c))
					client_close(s, c);
				else if (!c->out_len)
					client_work(s, idx[i - 3]);
			} else {
				client_read(s, idx[i - 3]);
			}
		}
		api_housekeeping(s);
	}
	return NULL;
}

/* Is a live process listening on path? */
static bool socket_in_use(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
	close(fd);
	return live;
}

/*
 * Bind s->listen_fd at path with its final owner group and mode before anyone can reach
 * it: under a private directory beside path (mode 0700), then renamed into place. The
 * umask never decides who may connect.
 */
static int api_bind_private(struct api_server *s, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un tmp = { .sun_family = AF_UNIX };
	char dir[sizeof(tmp.sun_path)];
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) : 0;
	int rc;

	if (dlen + sizeof("/.gw-api.XXXXXX/s") > sizeof(dir)) {
		snprintf(err, errlen, "API socket path %s is too long: use a shorter path", path);
		return -ENAMETOOLONG;
	}
	snprintf(dir, sizeof(dir), "%.*s%s.gw-api.XXXXXX", (int)dlen, slash ? path : "",
		 slash ? "/" : "");
	if (slash && dlen == 0)
		snprintf(dir, sizeof(dir), "/.gw-api.XXXXXX");
	if (!mkdtemp(dir)) {
		rc = -errno;
		snprintf(err, errlen, "API socket %s: cannot make a private directory beside it: "
			 "%s", path, strerror(-rc));
		return rc;
	}
	memcpy(tmp.sun_path, dir, strlen(dir));
	memcpy(tmp.sun_path + strlen(dir), "/s", 3); /* fits: checked against dir above */
	if (bind(s->listen_fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "API socket %s: bind: %s", path, strerror(-rc));
		goto out_dir;
	}
	if (s->acc.has_group && chown(tmp.sun_path, (uid_t)-1, s->acc.gid) < 0) {
		rc = -errno;
		snprintf(err, errlen, "API socket %s: cannot give it to group %s: %s (this user "
			 "must be in that group)", path, s->acc.group, strerror(-rc));
		goto out_sock;
	}
	if (chmod(tmp.sun_path, s->acc.has_group ? 0660 : 0600) < 0 ||
	    rename(tmp.sun_path, path) < 0) {
		rc = -errno;
		snprintf(err, errlen, "API socket %s: %s", path, strerror(-rc));
		goto out_sock;
	}
	rmdir(dir);
	return 0;
out_sock:
	unlink(tmp.sun_path);
out_dir:
	rmdir(dir);
	return rc;
}

int api_server_start(struct api_server **out, const char *path, const struct api_access *acc,
		     const struct api_cmd *cmds, void *ctx, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct api_server *s;
	struct stat st;
	int rc;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "API socket path %s is longer than %zu bytes: use a shorter "
			 "path", path, sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "API socket path %s exists and is not a socket: "
				 "remove it or choose another --api path", path);
			return -EEXIST;
		}
		if (socket_in_use(&addr)) {
			snprintf(err, errlen, "API socket %s is in use by another godwit: "
				 "choose another --api path", path);
			return -EADDRINUSE;
		}
		unlink(path); /* stale: its process is gone */
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	memcpy(s->path, path, strlen(path) + 1);
	s->cmds = cmds;
	s->ctx = ctx;
	s->uid = geteuid();
	s->refs = 1;
	if (acc)
		s->acc = *acc;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->idle, NULL);
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		s->client[i].fd = -1;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	rc = api_bind_private(s, path, err, errlen);
	if (rc < 0)
		goto err_close;
	if (listen(s->listen_fd, 16) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (pipe2(s->stop, O_CLOEXEC) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (pipe2(s->done, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err_stop;
	}
	rc = -pthread_create(&s->thread, NULL, api_thread, s);
	if (rc < 0)
		goto err_done;
	*out = s;
	return 0;
err_done:
	close(s->done[0]);
	close(s->done[1]);
err_stop:
	close(s->stop[0]);
	close(s->stop[1]);
err_unlink:
	unlink(path);
err_close:
	close(s->listen_fd);
err_free:
	if (!err[0])
		snprintf(err, errlen, "API socket %s: %s", path, strerror(-rc));
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return rc;
}

bool api_server_stop(struct api_server *s, int wait_ms)
{
	struct timespec until;
	bool idle;

	if (!s)
		return true;
	while (write(s->stop[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	for (int i = 0; i < API_MAX_CLIENTS; i++) {
		if (s->client[i].fd >= 0)
			client_close(s, &s->client[i]);
	}
	close(s->listen_fd);
	unlink(s->path);
	close(s->stop[0]);
	close(s->stop[1]);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->mu);
	while (s->slow_running &&
	       pthread_cond_timedwait(&s->idle, &s->mu, &until) != ETIMEDOUT)
		;
	idle = s->slow_running == 0;
	pthread_mutex_unlock(&s->mu);
	server_unref(s);
	return idle;
}
