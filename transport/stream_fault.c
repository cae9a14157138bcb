/* A fault-injecting layer for tests: fails writes, cuts reads short, fails flush or close on cue. */
#include "transport/stream_fault.h"

#include <errno.h>
#include <stdlib.h>

struct fault_stream {
	struct stream base;
	struct stream *lower;
	struct fault_spec spec;
	uint64_t written; /* bytes passed down */
	uint64_t read;    /* bytes passed up */
};

static int fault_write(struct stream *s, const void *buf, size_t len)
{
	struct fault_stream *f = STREAM_CONTAINER(s, struct fault_stream, base);
	uint64_t room = f->spec.write_fail_after - f->written;
	int rc;

	if (f->written >= f->spec.write_fail_after)
		return -f->spec.write_errno;
	if (len > room) {
		rc = stream_write_all(f->lower, buf, (size_t)room);
		f->written += room;
		return rc < 0 ? rc : -f->spec.write_errno;
	}
	rc = stream_write_all(f->lower, buf, len);
	if (rc == 0)
		f->written += len;
	return rc;
}

static int fault_read(struct stream *s, void *buf, size_t len)
{
	struct fault_stream *f = STREAM_CONTAINER(s, struct fault_stream, base);
	uint64_t limit = f->spec.read_eof_after;
	int cut = -EPROTO, at_limit = -ENODATA;
	uint8_t *p = buf;
	size_t want = len, got = 0;
	int rc;

	if (f->spec.read_fail_after < limit) {
		limit = f->spec.read_fail_after;
		cut = at_limit = -f->spec.read_errno;
	}
	if (f->read >= limit)
		return at_limit;
	if (want > limit - f->read)
		want = (size_t)(limit - f->read);
	while (got < want) {
		size_t n = want - got;

		if (f->spec.read_chunk_bytes && n > f->spec.read_chunk_bytes)
			n = f->spec.read_chunk_bytes;
		rc = stream_read_all(f->lower, p + got, n);
		if (rc == -ENODATA && got)
			rc = -EPROTO;
		if (rc < 0)
			return rc;
		got += n;
		f->read += n;
	}
	return want < len ? cut : 0;
}

static int fault_flush(struct stream *s)
{
	struct fault_stream *f = STREAM_CONTAINER(s, struct fault_stream, base);

	if (f->spec.flush_errno)
		return -f->spec.flush_errno;
	return stream_flush(f->lower);
}

static int fault_close(struct stream *s, bool commit)
{
	struct fault_stream *f = STREAM_CONTAINER(s, struct fault_stream, base);
	int rc;

	if (f->spec.close_errno)
		commit = false;
	rc = stream_close(f->lower, commit);
	if (f->spec.close_errno)
		rc = -f->spec.close_errno;
	free(f);
	return rc;
}

static const struct stream_ops fault_ops = {
	.write = fault_write,
	.read = fault_read,
	.flush = fault_flush,
	.close = fault_close,
};

int fault_stream_open(struct stream **out, struct stream *lower, const struct fault_spec *spec)
{
	struct fault_stream *f;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	stream_init(&f->base, &fault_ops);
	f->lower = lower;
	f->spec = *spec;
	*out = &f->base;
	return 0;
}
