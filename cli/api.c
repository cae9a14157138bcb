/* The control API: one JSON request per line on a UNIX socket, one JSON reply per line. */
#include "cli/api.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define API_MAX_CLIENTS 8
#define API_LINE_MAX 4096
#define API_REPLY_MAX 32768

struct api_client {
	int fd; /* -1 when the slot is free */
	size_t used;
	char buf[API_LINE_MAX];
};

/* Everything here is owned by the API thread once it runs, except wake[1]. */
struct api_server {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int listen_fd;
	int wake[2]; /* api_server_stop writes to wake[1] */
	pthread_t thread;
	const struct api_cmd *cmds;
	void *ctx;
	struct api_client client[API_MAX_CLIENTS];
};

static void api_send(int fd, const char *reply)
{
	size_t len = strlen(reply), off = 0;

	while (off < len) {
		ssize_t n = send(fd, reply + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
	send(fd, "\n", 1, MSG_NOSIGNAL);
}

static void api_error(char *reply, size_t len, const char *msg)
{
	char q[512];

	json_quote(q, sizeof(q), msg);
	snprintf(reply, len, "{\"ok\":false,\"error\":%s}", q);
}

static void api_dispatch(struct api_server *s, const char *line, size_t len, char *reply,
			 size_t rlen)
{
	struct json_obj req;
	char err[128], msg[256];
	const char *cmd;

	if (json_parse_obj(line, len, &req, err, sizeof(err)) < 0) {
		snprintf(msg, sizeof(msg), "request is %s: send {\"cmd\":\"status\"}", err);
		api_error(reply, rlen, msg);
		return;
	}
	cmd = json_get_str(&req, "cmd");
	if (!cmd) {
		api_error(reply, rlen, "request has no \"cmd\" string: send {\"cmd\":\"status\"}");
		return;
	}
	for (const struct api_cmd *c = s->cmds; c->name; c++) {
		if (strcmp(c->name, cmd) == 0) {
			c->fn(s->ctx, &req, reply, rlen);
			return;
		}
	}
	size_t off = (size_t)snprintf(msg, sizeof(msg), "unknown command '%.64s': try", cmd);

	for (const struct api_cmd *c = s->cmds; c->name && off < sizeof(msg); c++)
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, " %s", c->name);
	api_error(reply, rlen, msg);
}

static void client_close(struct api_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->used = 0;
}

/* Read what is there and answer every complete line. */
static void client_serve(struct api_server *s, struct api_client *c)
{
	char reply[API_REPLY_MAX];
	ssize_t n = recv(c->fd, c->buf + c->used, sizeof(c->buf) - c->used, 0);
	char *nl;

	if (n <= 0) {
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			return;
		client_close(c);
		return;
	}
	c->used += (size_t)n;
	while ((nl = memchr(c->buf, '\n', c->used)) != NULL) {
		size_t line_len = (size_t)(nl - c->buf);

		api_dispatch(s, c->buf, line_len, reply, sizeof(reply));
		api_send(c->fd, reply);
		memmove(c->buf, nl + 1, c->used - line_len - 1);
		c->used -= line_len + 1;
	}
	if (c->used == sizeof(c->buf)) {
		api_error(reply, sizeof(reply), "request line longer than 4096 bytes");
		api_send(c->fd, reply);
		client_close(c);
	}
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;

	pthread_setname_np(pthread_self(), "api");
	for (;;) {
		struct pollfd pfd[2 + API_MAX_CLIENTS];
		int idx[API_MAX_CLIENTS];
		nfds_t n = 0;

		pfd[n++] = (struct pollfd){ .fd = s->wake[0], .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = s->listen_fd, .events = POLLIN };
		for (int i = 0; i < API_MAX_CLIENTS; i++) {
			if (s->client[i].fd >= 0) {
				idx[n - 2] = i;
				pfd[n++] = (struct pollfd){ .fd = s->client[i].fd, .events = POLLIN };
			}
		}
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN) {
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0) {
				int slot = -1;

				for (int i = 0; i < API_MAX_CLIENTS; i++) {
					if (s->client[i].fd < 0) {
						slot = i;
						break;
					}
				}
				if (slot < 0) {
					api_send(fd, "{\"ok\":false,\"error\":\"too many API "
						 "connections: close one\"}");
					close(fd);
				} else {
					s->client[slot].fd = fd;
					s->client[slot].used = 0;
				}
			}
		}
		for (nfds_t i = 2; i < n; i++) {
			if (pfd[i].revents)
				client_serve(s, &s->client[idx[i - 2]]);
		}
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

int api_server_start(struct api_server **out, const char *path, const struct api_cmd *cmds,
		     void *ctx, char *err, size_t errlen)
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
	for (int i = 0; i < API_MAX_CLIENTS; i++)
		s->client[i].fd = -1;
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "API socket %s: bind: %s", path, strerror(-rc));
		goto err_close;
	}
	if (listen(s->listen_fd, 8) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	if (pipe2(s->wake, O_CLOEXEC) < 0) {
		rc = -errno;
		goto err_unlink;
	}
	rc = -pthread_create(&s->thread, NULL, api_thread, s);
	if (rc < 0)
		goto err_pipe;
	*out = s;
	return 0;
err_pipe:
	close(s->wake[0]);
	close(s->wake[1]);
err_unlink:
	unlink(path);
	if (!err[0])
		snprintf(err, errlen, "API socket %s: %s", path, strerror(-rc));
err_close:
	close(s->listen_fd);
err_free:
	if (!err[0])
		snprintf(err, errlen, "API socket %s: %s", path, strerror(-rc));
	free(s);
	return rc;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	while (write(s->wake[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	for (int i = 0; i < API_MAX_CLIENTS; i++) {
		if (s->client[i].fd >= 0)
			close(s->client[i].fd);
	}
	close(s->listen_fd);
	unlink(s->path);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
}
