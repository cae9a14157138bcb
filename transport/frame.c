/* Record framing over a byte stream: typed, length-prefixed, CRC32C-checked records. */
#include "transport/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/byteorder.h"
#include "util/crc32c.h"

struct frame_stream {
	struct stream base;
	struct stream *lower;
	uint64_t records;       /* caller records written or read so far */
	uint64_t payload_bytes; /* their payload total */
	uint16_t hflags;        /* stream header flags: FRAME_F_NO_CRC or 0 */
	/* Reader only: a header already read whose payload is still pending. */
	bool pending;
	bool header_given;      /* frame_read_header returned it: only parts may follow */
	uint16_t type, flags;
	uint32_t len, crc;
	uint32_t left;          /* payload bytes of the pending record not read yet */
	uint32_t run_crc;       /* CRC over the header and the payload read so far */
	uint8_t hdr[FRAME_HEADER_BYTES];
};

static const struct stream_ops frame_writer_ops;
static const struct stream_ops frame_reader_ops;

static struct frame_stream *frame_of(struct stream *s)
{
	return STREAM_CONTAINER(s, struct frame_stream, base);
}

static int frame_no_bytes_write(struct stream *s, const void *buf, size_t len)
{
	(void)s, (void)buf, (void)len;
	return -EOPNOTSUPP;
}

static int frame_no_bytes_read(struct stream *s, void *buf, size_t len)
{
	(void)s, (void)buf, (void)len;
	return -EOPNOTSUPP;
}

static void frame_encode_header(uint8_t *h, uint16_t type, uint16_t flags, uint32_t len)
{
	le32_encode(h, FRAME_SYNC);
	le16_encode(h + 4, type);
	le16_encode(h + 6, flags);
	le32_encode(h + 8, len);
}

/* Header, payload pieces, then one check of the sticky error below. */
static int frame_emit(struct frame_stream *f, uint16_t type, uint16_t flags,
		      const struct iovec *iov, int iovcnt, size_t len)
{
	uint8_t h[FRAME_HEADER_BYTES];
	uint32_t crc;
	int rc;

	frame_encode_header(h, type, flags, (uint32_t)len);
	crc = 0;
	if (!(f->hflags & FRAME_F_NO_CRC)) {
		crc = crc32c(0, h, 12);
		for (int i = 0; i < iovcnt; i++)
			crc = crc32c(crc, iov[i].iov_base, iov[i].iov_len);
	}
	le32_encode(h + 12, crc);
	stream_write_all(f->lower, h, sizeof(h));
	for (int i = 0; i < iovcnt; i++)
		stream_write_all(f->lower, iov[i].iov_base, iov[i].iov_len);
	rc = stream_error(f->lower);
	if (rc < 0)
		f->base.err = rc;
	return rc;
}

int frame_writev(struct stream *s, uint16_t type, uint16_t flags, const struct iovec *iov,
		 int iovcnt)
{
	struct frame_stream *f = frame_of(s);
	size_t len = 0;
	int rc;

	if (s->ops != &frame_writer_ops)
		return -EINVAL;
	if (s->err)
		return s->err;
	if (type < FRAME_T_USER_MIN || type > FRAME_T_USER_MAX || iovcnt < 0)
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > FRAME_MAX_PAYLOAD - len)
			return -EMSGSIZE;
		len += iov[i].iov_len;
	}
	rc = frame_emit(f, type, flags, iov, iovcnt, len);
	if (rc < 0)
		return rc;
	f->records++;
	f->payload_bytes += len;
	s->bytes_written += len;
	return 0;
}

int frame_write(struct stream *s, uint16_t type, uint16_t flags, const void *payload, size_t len)
{
	struct iovec iov = { .iov_base = (void *)payload, .iov_len = len };

	return frame_writev(s, type, flags, &iov, 1);
}

static int frame_writer_flush(struct stream *s)
{
	return stream_flush(frame_of(s)->lower);
}

static int frame_writer_close(struct stream *s, bool commit)
{
	struct frame_stream *f = frame_of(s);
	uint8_t end[FRAME_END_PAYLOAD_BYTES];
	struct iovec iov = { .iov_base = end, .iov_len = sizeof(end) };
	int rc = 0, rc2;

	if (commit) {
		le64_encode(end, f->records);
		le64_encode(end + 8, f->payload_bytes);
		rc = frame_emit(f, FRAME_T_END, 0, &iov, 1, sizeof(end));
	}
	rc2 = stream_close(f->lower, commit && rc == 0);
	free(f);
	return rc < 0 ? rc : rc2;
}

/* Framing changes the bytes, not the connection: ask the stream below (both directions). */
static int frame_stats(struct stream *s, struct stream_stats *out)
{
	return stream_stats(frame_of(s)->lower, out);
}

static const struct stream_ops frame_writer_ops = {
	.write = frame_no_bytes_write,
	.read = frame_no_bytes_read,
	.flush = frame_writer_flush,
	.close = frame_writer_close,
	.stats = frame_stats,
};

int frame_writer_open(struct stream **out, struct stream *lower)
{
	return frame_writer_open_flags(out, lower, 0);
}

int frame_writer_open_flags(struct stream **out, struct stream *lower, uint16_t flags)
{
	uint8_t h[FRAME_STREAM_HEADER_BYTES];
	struct frame_stream *f;
	int rc;

	if (flags & ~FRAME_F_NO_CRC)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	stream_init(&f->base, &frame_writer_ops);
	f->lower = lower;
	f->hflags = flags;
	memcpy(h, FRAME_MAGIC, 4);
	le16_encode(h + 4, FRAME_FORMAT_VERSION);
	le16_encode(h + 6, flags);
	rc = stream_write_all(lower, h, sizeof(h));
	if (rc < 0) {
		free(f);
		return rc;
	}
	*out = &f->base;
	return 0;
}

/* Map a lower read result inside a structure: any end there is truncation. */
static int frame_cut(int rc)
{
	return rc == -ENODATA ? -EPROTO : rc;
}

/* Read and check the next header; leaves it pending. Returns 0 or a sticky error. */
static int frame_next_header(struct frame_stream *f)
{
	uint8_t *h = f->hdr;
	int rc;

	rc = stream_read_all(f->lower, h, FRAME_HEADER_BYTES);
	if (rc < 0)
		return frame_cut(rc);
	if (le32_decode(h) != FRAME_SYNC)
		return -ENOMSG;
	f->type = le16_decode(h + 4);
	f->flags = le16_decode(h + 6);
	f->len = le32_decode(h + 8);
	f->crc = le32_decode(h + 12);
	if (f->type == FRAME_T_INVALID || (f->type > FRAME_T_USER_MAX && f->type != FRAME_T_END))
		return -EBADMSG;
	if (f->len > FRAME_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (f->type == FRAME_T_END && f->len != FRAME_END_PAYLOAD_BYTES)
		return -EBADMSG;
	if ((f->hflags & FRAME_F_NO_CRC) && f->crc != 0)
		return -EBADMSG;
	f->pending = true;
	f->header_given = false;
	f->left = f->len;
	f->run_crc = crc32c(0, h, 12);
	return 0;
}

/* Read n bytes of the pending payload into buf; the last piece checks the CRC. */
static int frame_payload_part(struct frame_stream *f, void *buf, size_t n)
{
	int rc;

	rc = stream_read_all(f->lower, buf, n);
	if (rc < 0)
		return frame_cut(rc);
	f->left -= (uint32_t)n;
	if (!(f->hflags & FRAME_F_NO_CRC)) {
		f->run_crc = crc32c(f->run_crc, buf, n);
		if (f->left == 0 && f->run_crc != f->crc)
			return -EBADMSG;
	}
	if (f->left == 0)
		f->pending = false;
	return 0;
}

/* Read the pending payload into buf (len bytes) and check its CRC. */
static int frame_payload(struct frame_stream *f, void *buf)
{
	return frame_payload_part(f, buf, f->left);
}

static int frame_end(struct frame_stream *f)
{
	uint8_t end[FRAME_END_PAYLOAD_BYTES];
	int rc;

	rc = frame_payload(f, end);
	if (rc < 0)
		return rc;
	if (le64_decode(end) != f->records || le64_decode(end + 8) != f->payload_bytes)
		return -EBADMSG;
	rc = stream_expect_end(f->lower);
	if (rc < 0)
		return rc;
	f->base.eof = true;
	return -ENODATA;
}

/* Make the next header pending, handling the end record. 0, -ENODATA or sticky error. */
static int frame_prepare(struct frame_stream *f)
{
	int rc;

	if (f->base.ops != &frame_reader_ops)
		return -EINVAL;
	if (f->base.err)
		return f->base.err;
	if (f->base.eof)
		return -ENODATA;
	if (!f->pending) {
		rc = frame_next_header(f);
		if (rc == 0 && f->type == FRAME_T_END)
			rc = frame_end(f);
		if (rc < 0) {
			if (rc != -ENODATA)
				f->base.err = rc;
			return rc;
		}
	}
	return 0;
}

static int frame_consume(struct frame_stream *f, uint16_t *type, uint16_t *flags, void *buf,
			 size_t *len)
{
	int rc;

	if (f->header_given)
		return -EINVAL;
	rc = frame_payload(f, buf);

	if (rc < 0) {
		f->base.err = rc;
		return rc;
	}
	*type = f->type;
	if (flags)
		*flags = f->flags;
	*len = f->len;
	f->records++;
	f->payload_bytes += f->len;
	f->base.bytes_read += f->len;
	return 0;
}

int frame_read(struct stream *s, uint16_t *type, uint16_t *flags, void *buf, size_t cap,
	       size_t *len)
{
	struct frame_stream *f = frame_of(s);
	int rc;

	rc = frame_prepare(f);
	if (rc < 0)
		return rc;
	if (f->header_given)
		return -EINVAL;
	if (f->len > cap) {
		*len = f->len;
		return -ENOBUFS;
	}
	return frame_consume(f, type, flags, buf, len);
}

int frame_read_header(struct stream *s, uint16_t *type, uint16_t *flags, size_t *len)
{
	struct frame_stream *f = frame_of(s);
	int rc;

	if (f->base.ops == &frame_reader_ops && f->header_given)
		return -EINVAL;
	rc = frame_prepare(f);
	if (rc < 0)
		return rc;
	*type = f->type;
	if (flags)
		*flags = f->flags;
	*len = f->len;
	f->header_given = true;
	f->records++;
	f->payload_bytes += f->len;
	f->base.bytes_read += f->len;
	if (f->len == 0) {
		f->pending = false;
		f->header_given = false;
		if (!(f->hflags & FRAME_F_NO_CRC) && f->run_crc != f->crc) {
			f->base.err = -EBADMSG;
			return -EBADMSG;
		}
	}
	return 0;
}

int frame_read_part(struct stream *s, void *buf, size_t n)
{
	struct frame_stream *f = frame_of(s);
	int rc;

	if (s->ops != &frame_reader_ops)
		return -EINVAL;
	if (s->err)
		return s->err;
	if (n == 0)
		return 0; /* also after frame_read_header of an empty record */
	if (!f->header_given || n > f->left)
		return -EINVAL;
	rc = frame_payload_part(f, buf, n);
	if (rc < 0) {
		s->err = rc;
		return rc;
	}
	if (f->left == 0)
		f->header_given = false;
	return 0;
}

int frame_read_alloc(struct stream *s, uint16_t *type, uint16_t *flags, void **buf, size_t *len)
{
	struct frame_stream *f = frame_of(s);
	void *p;
	int rc;

	rc = frame_prepare(f);
	if (rc < 0)
		return rc;
	if (f->header_given)
		return -EINVAL;
	p = malloc(f->len ? f->len : 1);
	if (!p)
		return -ENOMEM;
	rc = frame_consume(f, type, flags, p, len);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*buf = p;
	return 0;
}

static int frame_reader_close(struct stream *s, bool commit)
{
	struct frame_stream *f = frame_of(s);
	int rc = stream_close(f->lower, commit);

	free(f);
	return rc;
}

static const struct stream_ops frame_reader_ops = {
	.write = frame_no_bytes_write,
	.read = frame_no_bytes_read,
	.close = frame_reader_close,
	.stats = frame_stats,
};

int frame_reader_open(struct stream **out, struct stream *lower)
{
	return frame_reader_open_flags(out, lower, 0);
}

int frame_reader_open_flags(struct stream **out, struct stream *lower, uint16_t allowed)
{
	uint8_t h[FRAME_STREAM_HEADER_BYTES];
	struct frame_stream *f;
	uint16_t hflags;
	int rc;

	rc = stream_read_all(lower, h, sizeof(h));
	if (rc < 0)
		return frame_cut(rc);
	if (memcmp(h, FRAME_MAGIC, 4) != 0)
		return -ENOMSG;
	hflags = le16_decode(h + 6);
	if (le16_decode(h + 4) != FRAME_FORMAT_VERSION || (hflags & ~(allowed & FRAME_F_NO_CRC)))
		return -EPROTONOSUPPORT;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	stream_init(&f->base, &frame_reader_ops);
	f->lower = lower;
	f->hflags = hflags;
	*out = &f->base;
	return 0;
}
