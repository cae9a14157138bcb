/* The generic stream wrappers: sticky errors, EOF latching and byte counters around the ops table. */
#include "transport/stream.h"

#include <errno.h>
#include <string.h>

void stream_init(struct stream *s, const struct stream_ops *ops)
{
	s->ops = ops;
	s->err = 0;
	s->eof = false;
	s->bytes_written = 0;
	s->bytes_read = 0;
}

int stream_write_all(struct stream *s, const void *buf, size_t len)
{
	int rc;

	if (s->err)
		return s->err;
	if (len == 0)
		return 0;
	rc = s->ops->write ? s->ops->write(s, buf, len) : -EBADF;
	if (rc < 0) {
		s->err = rc;
		return rc;
	}
	s->bytes_written += len;
	return 0;
}

int stream_read_all(struct stream *s, void *buf, size_t len)
{
	int rc;

	if (s->err)
		return s->err;
	if (len == 0)
		return 0;
	if (s->eof)
		return -ENODATA;
	rc = s->ops->read ? s->ops->read(s, buf, len) : -EBADF;
	if (rc == -ENODATA) {
		s->eof = true;
		return rc;
	}
	if (rc < 0) {
		s->err = rc;
		return rc;
	}
	s->bytes_read += len;
	return 0;
}

int stream_expect_end(struct stream *s)
{
	uint8_t extra;
	int rc = stream_read_all(s, &extra, 1);

	if (rc == -ENODATA)
		return 0;
	if (rc == 0) {
		s->err = -EBADMSG;
		return -EBADMSG;
	}
	return rc;
}

int stream_stats(struct stream *s, struct stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s->ops->stats)
		return -ENOTSUP;
	return s->ops->stats(s, out);
}

int stream_flush(struct stream *s)
{
	int rc;

	if (s->err)
		return s->err;
	if (!s->ops->flush)
		return 0;
	rc = s->ops->flush(s);
	if (rc < 0)
		s->err = rc;
	return rc;
}

int stream_close(struct stream *s, bool commit)
{
	int err, rc;

	if (!s)
		return 0;
	err = s->err;
	rc = s->ops->close(s, commit && err == 0);
	return err ? err : rc;
}
