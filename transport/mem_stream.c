/* In-memory streams: a growable buffer sink and a reader over a caller's buffer. */
#include "transport/mem_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/range.h"

struct mem_writer {
	struct stream base;
	struct mem_buf *dst;
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max_bytes;
};

struct mem_reader {
	struct stream base;
	const uint8_t *data;
	size_t len;
	size_t pos;
};

static int mem_writer_write(struct stream *s, const void *buf, size_t len)
{
	struct mem_writer *w = STREAM_CONTAINER(s, struct mem_writer, base);
	size_t need, cap;
	uint8_t *p;

	if (!range_ok(w->len, len, w->max_bytes))
		return -EFBIG;
	need = w->len + len;
	if (need > w->cap) {
		cap = w->cap ? w->cap : 4096;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		if (cap > w->max_bytes)
			cap = w->max_bytes;
		p = realloc(w->data, cap);
		if (!p)
			return -ENOMEM;
		w->data = p;
		w->cap = cap;
	}
	memcpy(w->data + w->len, buf, len);
	w->len = need;
	return 0;
}

static int mem_writer_close(struct stream *s, bool commit)
{
	struct mem_writer *w = STREAM_CONTAINER(s, struct mem_writer, base);

	if (commit) {
		w->dst->data = w->data;
		w->dst->len = w->len;
	} else {
		free(w->data);
	}
	free(w);
	return 0;
}

static const struct stream_ops mem_writer_ops = {
	.write = mem_writer_write,
	.close = mem_writer_close,
};

int mem_stream_writer(struct stream **out, struct mem_buf *dst, size_t max_bytes)
{
	struct mem_writer *w;

	dst->data = NULL;
	dst->len = 0;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	stream_init(&w->base, &mem_writer_ops);
	w->dst = dst;
	w->max_bytes = max_bytes;
	*out = &w->base;
	return 0;
}

const uint8_t *mem_stream_peek(struct stream *s, size_t *len)
{
	struct mem_writer *w = STREAM_CONTAINER(s, struct mem_writer, base);

	if (s->ops != &mem_writer_ops) {
		*len = 0;
		return NULL;
	}
	*len = w->len;
	return w->data;
}

static int mem_reader_read(struct stream *s, void *buf, size_t len)
{
	struct mem_reader *r = STREAM_CONTAINER(s, struct mem_reader, base);
	size_t left = r->len - r->pos;

	if (left == 0)
		return -ENODATA;
	if (len > left) {
		memcpy(buf, r->data + r->pos, left);
		r->pos = r->len;
		return -EPROTO;
	}
	memcpy(buf, r->data + r->pos, len);
	r->pos += len;
	return 0;
}

static int mem_reader_close(struct stream *s, bool commit)
{
	(void)commit;
	free(STREAM_CONTAINER(s, struct mem_reader, base));
	return 0;
}

static const struct stream_ops mem_reader_ops = {
	.read = mem_reader_read,
	.close = mem_reader_close,
};

int mem_stream_reader(struct stream **out, const void *buf, size_t len)
{
	struct mem_reader *r;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	stream_init(&r->base, &mem_reader_ops);
	r->data = buf;
	r->len = len;
	*out = &r->base;
	return 0;
}
