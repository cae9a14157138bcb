/* A zstd compression layer: streaming compression on write, bounded decompression on read. */
#include "transport/zstd_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_getFrameProgression: exported by every 1.4+ */
#include <zstd.h>

#include "util/byteorder.h"

#define ZSTD_STREAM_OUT_BYTES (256u * 1024)

_Static_assert(ZSTD_STREAM_OUT_BYTES <= ZSTD_STREAM_MAX_CHUNK, "writer chunks fit the reader");

struct zstd_writer {
	struct stream base;
	struct stream *lower;
	ZSTD_CCtx *cctx;
	size_t out_len; /* compressed bytes waiting in out[4, 4 + out_len) */
	/* Adaptive mode (see the header). */
	bool adaptive;
	bool raw;             /* sending RAW chunks now */
	uint64_t raw_left;    /* RAW bytes to send before the next probe */
	uint64_t skip;        /* the length of the next RAW stretch */
	uint64_t win_in;      /* zstd's consumed and produced counts when the window began */
	uint64_t win_out;
	struct zstd_stream_counts cnt;
	uint8_t out[4 + ZSTD_STREAM_OUT_BYTES]; /* room for the chunk word in front */
};

struct zstd_reader {
	struct stream base;
	struct stream *lower;
	ZSTD_DCtx *dctx;
	ZSTD_inBuffer in;  /* the current chunk, in[pos, size) not yet decoded */
	bool raw_ok;       /* the header allows RAW chunks */
	uint32_t raw_left; /* bytes of the current RAW chunk not read yet */
	bool drained;      /* zstd holds no output for the input it had: with none new, a
			    * call would make no progress (zstd fails after 16 such calls,
			    * and RAW chunks can come many times that in a row) */
	bool last_seen;    /* the LAST chunk was read */
	bool frame_done;   /* zstd reported the end of a frame and nothing followed */
	uint8_t *chunk;
	size_t chunk_cap;
};

bool zstd_stream_workers_supported(void)
{
	ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers);

	return !ZSTD_isError(b.error) && b.upperBound > 0;
}

/* Send the buffered compressed bytes down as one chunk. */
static int zstd_emit(struct zstd_writer *w)
{
	int rc;

	if (w->out_len == 0)
		return 0;
	le32_encode(w->out, (uint32_t)w->out_len);
	rc = stream_write_all(w->lower, w->out, 4 + w->out_len);
	w->cnt.zstd_out_bytes += w->out_len;
	w->out_len = 0;
	return rc;
}

/*
 * Feed len bytes with the given end directive until zstd has consumed them all and, for
 * flush and end, has nothing left to give; full output buffers go down as chunks.
 */
static int zstd_pump(struct zstd_writer *w, const void *buf, size_t len, ZSTD_EndDirective op)
{
	ZSTD_inBuffer in = { buf, len, 0 };
	size_t left;
	int rc;

	for (;;) {
		ZSTD_outBuffer out = { w->out + 4, ZSTD_STREAM_OUT_BYTES, w->out_len };

		left = ZSTD_compressStream2(w->cctx, &out, &in, op);
		if (ZSTD_isError(left))
			return -EIO;
		w->out_len = out.pos;
		if (out.pos == out.size) {
			rc = zstd_emit(w);
			if (rc < 0)
				return rc;
			continue;
		}
		if (op == ZSTD_e_continue ? in.pos == in.size : left == 0)
			return 0;
	}
}

/* Start a measuring window at zstd's current counts. */
static void zstd_window_start(struct zstd_writer *w)
{
	ZSTD_frameProgression fp = ZSTD_getFrameProgression(w->cctx);

	w->win_in = fp.consumed;
	w->win_out = fp.produced;
}

/* Send len bytes as RAW chunks, from buf itself: the zstd bytes before them are flushed. */
static int zstd_write_raw(struct zstd_writer *w, const uint8_t *buf, size_t len)
{
	uint8_t word[4];
	int rc;

	while (len) {
		size_t n = len < ZSTD_STREAM_MAX_CHUNK ? len : ZSTD_STREAM_MAX_CHUNK;

		le32_encode(word, ZSTD_STREAM_CHUNK_RAW | (uint32_t)n);
		rc = stream_write_all(w->lower, word, sizeof(word));
		if (rc == 0)
			rc = stream_write_all(w->lower, buf, n);
		if (rc < 0)
			return rc;
		w->cnt.raw_bytes += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Adaptive write: RAW while a stretch lasts, then compress a probe window and judge it;
 * a window that did not pay ends in a flush (so the RAW chunks after it stay in order)
 * and starts a longer RAW stretch.
 */
static int zstd_write_adaptive(struct zstd_writer *w, const uint8_t *buf, size_t len)
{
	int rc;

	while (len) {
		ZSTD_frameProgression fp;
		size_t n;

		if (w->raw) {
			n = len < w->raw_left ? len : (size_t)w->raw_left;
			rc = zstd_write_raw(w, buf, n);
			if (rc < 0)
				return rc;
			w->raw_left -= n;
			if (w->raw_left == 0) {
				w->raw = false;
				zstd_window_start(w);
			}
			buf += n;
			len -= n;
			continue;
		}
		n = len < ZSTD_STREAM_PROBE_BYTES ? len : ZSTD_STREAM_PROBE_BYTES;
		rc = zstd_pump(w, buf, n, ZSTD_e_continue);
		if (rc < 0)
			return rc;
		buf += n;
		len -= n;
		fp = ZSTD_getFrameProgression(w->cctx);
		if (fp.consumed - w->win_in < ZSTD_STREAM_PROBE_BYTES)
			continue;
		if ((fp.produced - w->win_out) * 100 <
		    (fp.consumed - w->win_in) * ZSTD_STREAM_PAYS_PCT) {
			w->skip = ZSTD_STREAM_SKIP_MIN; /* it pays: keep compressing */
			zstd_window_start(w);
			continue;
		}
		rc = zstd_pump(w, NULL, 0, ZSTD_e_flush);
		if (rc == 0)
			rc = zstd_emit(w);
		if (rc < 0)
			return rc;
		w->raw = true;
		w->raw_left = w->skip;
		w->skip = w->skip * 2 > ZSTD_STREAM_SKIP_MAX ? ZSTD_STREAM_SKIP_MAX : w->skip * 2;
	}
	return 0;
}

static int zstd_writer_write(struct stream *s, const void *buf, size_t len)
{
	struct zstd_writer *w = STREAM_CONTAINER(s, struct zstd_writer, base);

	w->cnt.in_bytes += len;
	if (w->adaptive)
		return zstd_write_adaptive(w, buf, len);
	return zstd_pump(w, buf, len, ZSTD_e_continue);
}

void zstd_writer_counts(struct stream *s, struct zstd_stream_counts *c)
{
	*c = STREAM_CONTAINER(s, struct zstd_writer, base)->cnt;
}

static int zstd_writer_flush(struct stream *s)
{
	struct zstd_writer *w = STREAM_CONTAINER(s, struct zstd_writer, base);
	int rc;

	rc = zstd_pump(w, NULL, 0, ZSTD_e_flush);
	if (rc == 0)
		rc = zstd_emit(w);
	if (rc == 0)
		rc = stream_flush(w->lower);
	return rc;
}

static int zstd_writer_close(struct stream *s, bool commit)
{
	struct zstd_writer *w = STREAM_CONTAINER(s, struct zstd_writer, base);
	uint8_t last[4];
	int rc = 0, rc2;

	if (commit) {
		rc = zstd_pump(w, NULL, 0, ZSTD_e_end);
		if (rc == 0)
			rc = zstd_emit(w);
		le32_encode(last, ZSTD_STREAM_CHUNK_LAST);
		if (rc == 0)
			rc = stream_write_all(w->lower, last, sizeof(last));
	}
	rc2 = stream_close(w->lower, commit && rc == 0);
	ZSTD_freeCCtx(w->cctx);
	free(w);
	return rc < 0 ? rc : rc2;
}

/* Compression changes the bytes, not the connection: ask the stream below. */
static int zstd_writer_stats(struct stream *s, struct stream_stats *out)
{
	return stream_stats(STREAM_CONTAINER(s, struct zstd_writer, base)->lower, out);
}

static const struct stream_ops zstd_writer_ops = {
	.write = zstd_writer_write,
	.flush = zstd_writer_flush,
	.close = zstd_writer_close,
	.stats = zstd_writer_stats,
};

static int zstd_writer_setup(ZSTD_CCtx *cctx, const struct zstd_stream_opts *opts)
{
	int level = opts && opts->level ? opts->level : ZSTD_STREAM_LEVEL_DEFAULT;
	int workers = opts && !opts->raw_only ? opts->workers : 0;

	if (level < ZSTD_minCLevel() || level > ZSTD_STREAM_LEVEL_MAX || workers < 0)
		return -EINVAL;
	if (workers > 0 && !zstd_stream_workers_supported())
		return -ENOTSUP;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag,
						opts && opts->no_checksum ? 0 : 1)))
		return -EINVAL;
	if (workers > 0 && ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers)))
		return -ENOTSUP;
	return 0;
}

int zstd_writer_open(struct stream **out, struct stream *lower, const struct zstd_stream_opts *opts)
{
	uint8_t h[ZSTD_STREAM_HEADER_BYTES];
	struct zstd_writer *w;
	int rc;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	stream_init(&w->base, &zstd_writer_ops);
	w->lower = lower;
	w->adaptive = opts && (opts->adaptive || opts->raw_only);
	w->skip = ZSTD_STREAM_SKIP_MIN;
	if (opts && opts->raw_only) {
		w->raw = true; /* a stretch that never ends */
		w->raw_left = UINT64_MAX;
	}
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = zstd_writer_setup(w->cctx, opts);
	if (rc < 0)
		goto err_cctx;
	memcpy(h, ZSTD_STREAM_MAGIC, 4);
	le16_encode(h + 4, ZSTD_STREAM_FORMAT_VERSION);
	le16_encode(h + 6, w->adaptive ? ZSTD_STREAM_F_RAW : 0);
	rc = stream_write_all(lower, h, sizeof(h));
	if (rc < 0)
		goto err_cctx;
	*out = &w->base;
	return 0;
err_cctx:
	ZSTD_freeCCtx(w->cctx);
err_free:
	free(w);
	return rc;
}

/* Read the next chunk into r->in. 0, or -EPROTO / -EBADMSG / -EMSGSIZE / lower's error. */
static int zstd_next_chunk(struct zstd_reader *r)
{
	uint8_t word[4];
	uint32_t v, len;
	int rc;

	rc = stream_read_all(r->lower, word, sizeof(word));
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	v = le32_decode(word);
	len = v & ~ZSTD_STREAM_CHUNK_LAST;
	if (v == ZSTD_STREAM_CHUNK_LAST) {
		r->last_seen = true;
		return stream_expect_end(r->lower);
	}
	if (v == 0 || (v & ZSTD_STREAM_CHUNK_LAST))
		return -EBADMSG;
	if ((v & ZSTD_STREAM_CHUNK_RAW) && r->raw_ok) {
		len = v & ~ZSTD_STREAM_CHUNK_RAW;
		if (len == 0)
			return -EBADMSG;
		if (len > ZSTD_STREAM_MAX_CHUNK)
			return -EMSGSIZE;
		r->raw_left = len;
		return 0;
	}
	if (len > ZSTD_STREAM_MAX_CHUNK)
		return -EMSGSIZE;
	if (len > r->chunk_cap) {
		uint8_t *p = realloc(r->chunk, len);

		if (!p)
			return -ENOMEM;
		r->chunk = p;
		r->chunk_cap = len;
	}
	rc = stream_read_all(r->lower, r->chunk, len);
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	r->in = (ZSTD_inBuffer){ r->chunk, len, 0 };
	return 0;
}

static int zstd_reader_read(struct stream *s, void *buf, size_t len)
{
	struct zstd_reader *r = STREAM_CONTAINER(s, struct zstd_reader, base);
	ZSTD_outBuffer out = { buf, len, 0 };
	bool progress = true;
	size_t ret;
	int rc;

	for (;;) {
		/* A RAW chunk goes from the stream below straight into buf. */
		if (r->raw_left) {
			size_t n = out.size - out.pos < r->raw_left ? out.size - out.pos : r->raw_left;

			rc = stream_read_all(r->lower, (uint8_t *)buf + out.pos, n);
			if (rc < 0)
				return rc == -ENODATA ? -EPROTO : rc;
			r->raw_left -= (uint32_t)n;
			out.pos += n;
			if (out.pos == out.size)
				return 0;
			continue;
		}
		/* Decode what we hold; zstd may also have output left from earlier input. */
		if (!r->last_seen && !(r->drained && r->in.pos == r->in.size)) {
			size_t out_before = out.pos, in_before = r->in.pos;

			ret = ZSTD_decompressStream(r->dctx, &out, &r->in);
			if (ZSTD_isError(ret))
				return -EBADMSG;
			/* 0 means a frame ended; a later call without progress says nothing. */
			progress = out.pos != out_before || r->in.pos != in_before;
			if (ret == 0)
				r->frame_done = true;
			else if (progress)
				r->frame_done = false;
			r->drained = out.pos < out.size;
		}
		if (out.pos == out.size)
			return 0;
		/* zstd stops at a frame's end with input left: go on decoding it. */
		if (r->in.pos < r->in.size) {
			if (!progress)
				return -EBADMSG; /* cannot happen; never spin */
			continue;
		}
		/* Output not full and input used up: zstd needs the next chunk. */
		if (r->last_seen) {
			if (!r->frame_done)
				return -EPROTO;
			return out.pos ? -EPROTO : -ENODATA;
		}
		rc = zstd_next_chunk(r);
		if (rc < 0)
			return rc;
	}
}

static int zstd_reader_close(struct stream *s, bool commit)
{
	struct zstd_reader *r = STREAM_CONTAINER(s, struct zstd_reader, base);
	int rc = stream_close(r->lower, commit);

	ZSTD_freeDCtx(r->dctx);
	free(r->chunk);
	free(r);
	return rc;
}

static int zstd_reader_stats(struct stream *s, struct stream_stats *out)
{
	return stream_stats(STREAM_CONTAINER(s, struct zstd_reader, base)->lower, out);
}

static const struct stream_ops zstd_reader_ops = {
	.read = zstd_reader_read,
	.close = zstd_reader_close,
	.stats = zstd_reader_stats,
};

int zstd_reader_open(struct stream **out, struct stream *lower)
{
	uint8_t h[ZSTD_STREAM_HEADER_BYTES];
	struct zstd_reader *r;
	int rc;

	rc = stream_read_all(lower, h, sizeof(h));
	if (rc < 0)
		return rc == -ENODATA ? -EPROTO : rc;
	if (memcmp(h, ZSTD_STREAM_MAGIC, 4) != 0)
		return -ENOMSG;
	if (le16_decode(h + 4) != ZSTD_STREAM_FORMAT_VERSION ||
	    (le16_decode(h + 6) & ~ZSTD_STREAM_F_RAW))
		return -EPROTONOSUPPORT;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	stream_init(&r->base, &zstd_reader_ops);
	r->lower = lower;
	r->raw_ok = le16_decode(h + 6) & ZSTD_STREAM_F_RAW;
	r->dctx = ZSTD_createDCtx();
	if (!r->dctx) {
		free(r);
		return -ENOMEM;
	}
	if (ZSTD_isError(ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax,
						ZSTD_STREAM_WINDOW_LOG_MAX))) {
		ZSTD_freeDCtx(r->dctx);
		free(r);
		return -EINVAL;
	}
	*out = &r->base;
	return 0;
}
