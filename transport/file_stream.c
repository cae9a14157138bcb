/* File streams: an atomically published writer (name.partial, fsync, rename) and a reader. */
#include "transport/file_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_STREAM_BUF_BYTES (256u * 1024)
#define FILE_STREAM_SUFFIX ".partial"

struct file_writer {
	struct stream base;
	int fd;
	char *path;    /* the final name */
	char *partial; /* path + ".partial" */
	bool renamed;  /* the partial file is now path: nothing left to unlink */
	size_t len;    /* bytes buffered in buf */
	uint8_t buf[FILE_STREAM_BUF_BYTES];
};

struct file_reader {
	struct stream base;
	int fd;
	size_t pos, len; /* unread bytes are buf[pos, len) */
	uint8_t buf[FILE_STREAM_BUF_BYTES];
};

static int file_write_full(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_writer_drain(struct file_writer *w)
{
	int rc = file_write_full(w->fd, w->buf, w->len);

	w->len = 0;
	return rc;
}

static int file_writer_write(struct stream *s, const void *buf, size_t len)
{
	struct file_writer *w = STREAM_CONTAINER(s, struct file_writer, base);
	int rc;

	if (len <= sizeof(w->buf) - w->len) {
		memcpy(w->buf + w->len, buf, len);
		w->len += len;
		return 0;
	}
	rc = file_writer_drain(w);
	if (rc < 0)
		return rc;
	if (len >= sizeof(w->buf))
		return file_write_full(w->fd, buf, len);
	memcpy(w->buf, buf, len);
	w->len = len;
	return 0;
}

static int file_writer_flush(struct stream *s)
{
	return file_writer_drain(STREAM_CONTAINER(s, struct file_writer, base));
}

/* fsync the directory holding path, so the rename itself is durable. */
static int file_fsync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	int fd, rc = 0;

	if (!slash) {
		strcpy(dir, ".");
	} else if (slash == path) {
		strcpy(dir, "/");
	} else {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Steps of a commit: drain, fsync, close, rename, fsync the directory. */
static int file_writer_publish(struct file_writer *w)
{
	int rc;

	rc = file_writer_drain(w);
	if (rc < 0)
		return rc;
	if (fsync(w->fd) < 0)
		return -errno;
	rc = close(w->fd);
	w->fd = -1;
	if (rc < 0)
		return -errno;
	if (rename(w->partial, w->path) < 0)
		return -errno;
	w->renamed = true;
	return file_fsync_dir(w->path);
}

static int file_writer_close(struct stream *s, bool commit)
{
	struct file_writer *w = STREAM_CONTAINER(s, struct file_writer, base);
	int rc = 0;

	if (commit)
		rc = file_writer_publish(w);
	if (w->fd >= 0)
		close(w->fd);
	if (!w->renamed)
		unlink(w->partial);
	free(w->partial);
	free(w->path);
	free(w);
	return rc;
}

static const struct stream_ops file_writer_ops = {
	.write = file_writer_write,
	.flush = file_writer_flush,
	.close = file_writer_close,
};

int file_stream_create(struct stream **out, const char *path, mode_t mode)
{
	struct file_writer *w;
	size_t n = strlen(path);
	int rc;

	if (n == 0)
		return -EINVAL;
	if (n + sizeof(FILE_STREAM_SUFFIX) > PATH_MAX)
		return -ENAMETOOLONG;
	w = malloc(sizeof(*w));
	if (!w)
		return -ENOMEM;
	stream_init(&w->base, &file_writer_ops);
	w->len = 0;
	w->renamed = false;
	w->path = strdup(path);
	w->partial = malloc(n + sizeof(FILE_STREAM_SUFFIX));
	if (!w->path || !w->partial) {
		rc = -ENOMEM;
		goto err_free;
	}
	memcpy(w->partial, path, n);
	memcpy(w->partial + n, FILE_STREAM_SUFFIX, sizeof(FILE_STREAM_SUFFIX));
	w->fd = open(w->partial, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
	if (w->fd < 0) {
		rc = -errno;
		goto err_free;
	}
	*out = &w->base;
	return 0;
err_free:
	free(w->partial);
	free(w->path);
	free(w);
	return rc;
}

static int file_reader_read(struct stream *s, void *buf, size_t len)
{
	struct file_reader *r = STREAM_CONTAINER(s, struct file_reader, base);
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n;

		if (r->pos < r->len) {
			size_t take = r->len - r->pos;

			if (take > len - got)
				take = len - got;
			memcpy(p + got, r->buf + r->pos, take);
			r->pos += take;
			got += take;
			continue;
		}
		/* Large requests bypass the buffer; small ones refill it. */
		if (len - got >= sizeof(r->buf))
			n = read(r->fd, p + got, len - got);
		else
			n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return got ? -EPROTO : -ENODATA;
		if (len - got >= sizeof(r->buf)) {
			got += (size_t)n;
		} else {
			r->pos = 0;
			r->len = (size_t)n;
		}
	}
	return 0;
}

static int file_reader_close(struct stream *s, bool commit)
{
	struct file_reader *r = STREAM_CONTAINER(s, struct file_reader, base);

	(void)commit;
	close(r->fd);
	free(r);
	return 0;
}

static const struct stream_ops file_reader_ops = {
	.read = file_reader_read,
	.close = file_reader_close,
};

int file_stream_open(struct stream **out, const char *path)
{
	struct file_reader *r;
	int rc;

	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	stream_init(&r->base, &file_reader_ops);
	r->pos = 0;
	r->len = 0;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		free(r);
		return rc;
	}
	*out = &r->base;
	return 0;
}
