/* A client of a running VM's control API: one request line out, one reply line back. */
#include "cli/api_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int api_client_open(struct api_client *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int rc;

	c->fd = -1;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		snprintf(err, errlen, "API socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot reach the VM's API at %s: %s (is 'godwit run --api "
			 "%s' running?)", path, strerror(-rc), path);
		close(c->fd);
		c->fd = -1;
		return rc;
	}
	return 0;
}

int api_client_call(struct api_client *c, const char *req, char *reply, size_t cap, char *err,
		    size_t errlen)
{
	size_t len = strlen(req), off = 0, got = 0;

	while (off <= len) {
		const char *p = off < len ? req + off : "\n";
		size_t n = off < len ? len - off : 1;
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto broken;
		off += (size_t)w;
	}
	while (got + 1 < cap) {
		ssize_t r = recv(c->fd, reply + got, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto broken;
		if (reply[got] == '\n') {
			reply[got] = '\0';
			return 0;
		}
		got++;
	}
	snprintf(err, errlen, "reply from %s is longer than %zu bytes", c->path, cap);
	return -EMSGSIZE;
broken:
	snprintf(err, errlen, "the VM's API at %s closed the connection", c->path);
	return -EPIPE;
}

void api_client_close(struct api_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
