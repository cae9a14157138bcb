/* Driving librsync's job API over file descriptors and streams, with rs_result mapped to -errno. */
#include "repo/rsync_delta.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo/rsync_dl.h"
#include "util/byteorder.h"
#include "util/err.h"

#define RSD_IO_BYTES (256u << 10)

static int rsd_errno(rs_result r)
{
	switch (r) {
	case RS_DONE:
		return 0;
	case RS_MEM_ERROR:
		return -ENOMEM;
	case RS_INPUT_ENDED:
		return -EPROTO;
	case RS_BAD_MAGIC:
		return -ENOMSG;
	case RS_UNIMPLEMENTED:
		return -ENOTSUP;
	case RS_CORRUPT:
		return -EBADMSG;
	case RS_PARAM_ERROR:
	case RS_SYNTAX_ERROR:
		return -EINVAL;
	case RS_INTERNAL_ERROR:
		return -ENOTRECOVERABLE;
	case RS_IO_ERROR:
	default:
		return -EIO;
	}
}

int rsd_sig_parse(const uint8_t *sig, size_t len, struct rsd_sig_info *out)
{
	struct rsd_sig_info i;

	if (len < RSD_SIG_HEADER_BYTES)
		return -EPROTO;
	i.magic = be32_decode(sig);
	i.block_bytes = be32_decode(sig + 4);
	i.strong_bytes = be32_decode(sig + 8);
	if (i.magic == RS_MD4_SIG_MAGIC || i.magic == RS_RK_MD4_SIG_MAGIC)
		return -EPROTONOSUPPORT;
	if (i.magic != RS_BLAKE2_SIG_MAGIC && i.magic != RS_RK_BLAKE2_SIG_MAGIC)
		return -ENOMSG;
	if (i.block_bytes < RSD_SIG_BLOCK_BYTES_MIN || i.block_bytes > RSD_SIG_BLOCK_BYTES_MAX ||
	    i.strong_bytes == 0 || i.strong_bytes > RS_MAX_STRONG_SUM_LENGTH)
		return -EBADMSG;
	if ((len - RSD_SIG_HEADER_BYTES) % (4 + i.strong_bytes) != 0)
		return -EBADMSG;
	i.nblocks = (len - RSD_SIG_HEADER_BYTES) / (4 + i.strong_bytes);
	*out = i;
	return 0;
}

/* Where a job's input comes from: a file range, or memory. */
struct rsd_source {
	int fd;        /* -1 for memory */
	uint64_t off;  /* next byte to read */
	uint64_t end;  /* UINT64_MAX: to the end of the file, which is then not an error */
	const uint8_t *mem;
	size_t mem_len;
};

/* Where a job's output goes. */
struct rsd_sink {
	int (*write)(struct rsd_sink *k, const uint8_t *p, size_t n);
	struct stream *stream; /* for sink_stream */
	int fd;                /* for sink_fd */
	uint64_t off;
	uint8_t *buf;          /* for sink_mem */
	size_t len, cap;
};

static int sink_stream(struct rsd_sink *k, const uint8_t *p, size_t n)
{
	return stream_write_all(k->stream, p, n);
}

static int sink_fd(struct rsd_sink *k, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = pwrite(k->fd, p, n, (off_t)k->off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		k->off += (uint64_t)w;
	}
	return 0;
}

static int sink_mem(struct rsd_sink *k, const uint8_t *p, size_t n)
{
	if (n > k->cap - k->len) {
		size_t cap = k->cap ? k->cap : 4096;
		uint8_t *b;

		while (n > cap - k->len)
			cap *= 2;
		b = realloc(k->buf, cap);
		if (!b)
			return -ENOMEM;
		k->buf = b;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, p, n);
	k->len += n;
	return 0;
}

/* Fill up to cap bytes at dst from src; *n = 0 at the end. */
static int source_read(struct rsd_source *src, uint8_t *dst, size_t cap, size_t *n)
{
	if (src->fd < 0) {
		size_t take = src->mem_len - (size_t)src->off;

		if (take > cap)
			take = cap;
		memcpy(dst, src->mem + src->off, take);
		src->off += take;
		*n = take;
		return 0;
	}
	if (src->off >= src->end) {
		*n = 0;
		return 0;
	}
	if (cap > src->end - src->off)
		cap = (size_t)(src->end - src->off);
	for (;;) {
		ssize_t got = pread(src->fd, dst, cap, (off_t)src->off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0 && src->end != UINT64_MAX)
			return -EPROTO; /* the file is shorter than the caller said */
		src->off += (uint64_t)got;
		*n = (size_t)got;
		return 0;
	}
}

/*
 * Run job to completion (job, src, sink, what, io_err, err, errlen): feed input in
 * RSD_IO_BYTES pieces, keeping what the job has not consumed yet, and hand every output
 * buffer to the sink. io_err (may be NULL) is where a copy callback parks the errno
 * behind an RS_IO_ERROR.
 */
static int rsd_run(rs_job_t *job, struct rsd_source *src, struct rsd_sink *sink,
		   const char *what, const int *io_err, char *err, size_t errlen)
{
	uint8_t *in = malloc(RSD_IO_BYTES), *out = malloc(RSD_IO_BYTES);
	rs_buffers_t b = { 0 };
	bool eof = false;
	unsigned idle = 0;
	int rc = 0;

	if (!in || !out) {
		rc = -ENOMEM;
		goto out;
	}
	b.next_in = (char *)in;
	for (;;) {
		rs_result r;
		size_t before_in, produced;

		/* Refill: move the unconsumed tail to the front, then read after it. */
		if (!eof && b.avail_in < RSD_IO_BYTES / 2) {
			size_t got = 0;

			if (b.avail_in)
				memmove(in, b.next_in, b.avail_in);
			b.next_in = (char *)in;
			rc = source_read(src, in + b.avail_in, RSD_IO_BYTES - b.avail_in, &got);
			if (rc < 0) {
				err_set(err, errlen, "librsync %s: read input: %s", what, strerror(-rc));
				goto out;
			}
			b.avail_in += got;
			eof = got == 0;
		}
		b.eof_in = eof;
		b.next_out = (char *)out;
		b.avail_out = RSD_IO_BYTES;
		before_in = b.avail_in;
		r = rs_job_iter(job, &b);
		produced = RSD_IO_BYTES - b.avail_out;
		if (produced) {
			rc = sink->write(sink, out, produced);
			if (rc < 0) {
				err_set(err, errlen, "librsync %s: write output: %s", what, strerror(-rc));
				goto out;
			}
		}
		if (r == RS_DONE)
			break;
		if (r != RS_BLOCKED) {
			rc = rsd_errno(r);
			if (r == RS_IO_ERROR && io_err && *io_err)
				rc = *io_err;
			err_set(err, errlen, "librsync %s: %s%s", what, rs_strerror(r),
				r == RS_INPUT_ENDED ? " (truncated input)" : "");
			goto out;
		}
		/* Blocked with all input given and nothing moving: the job cannot finish. */
		idle = (eof && produced == 0 && b.avail_in == before_in) ? idle + 1 : 0;
		if (idle > 2) {
			rc = -EPROTO;
			err_set(err, errlen, "librsync %s: input ended before the job finished", what);
			goto out;
		}
	}
out:
	free(in);
	free(out);
	return rc;
}

int rsd_signature(int fd, uint64_t bytes, uint32_t block_bytes, uint8_t **sig,
		  size_t *sig_len, char *err, size_t errlen)
{
	struct rsd_source src = { .fd = fd, .end = bytes };
	struct rsd_sink sink = { .write = sink_mem };
	uint64_t nblocks;
	rs_job_t *job;
	int rc;

	if (rsync_dl_load(err, errlen) < 0)
		return -ENOENT;
	if (block_bytes == 0)
		block_bytes = RSD_BLOCK_BYTES;
	if (block_bytes < RSD_SIG_BLOCK_BYTES_MIN || block_bytes > RSD_SIG_BLOCK_BYTES_MAX ||
	    bytes == UINT64_MAX) {
		err_set(err, errlen, "librsync signature: block size or length out of range");
		return -EINVAL;
	}
	/* The exact size is known: allocate it once. */
	nblocks = bytes / block_bytes + (bytes % block_bytes != 0);
	sink.cap = RSD_SIG_HEADER_BYTES + (size_t)nblocks * (4 + RSD_STRONG_BYTES);
	sink.buf = malloc(sink.cap);
	if (!sink.buf)
		return -ENOMEM;
	job = rs_sig_begin(block_bytes, RSD_STRONG_BYTES, RS_RK_BLAKE2_SIG_MAGIC);
	if (!job) {
		free(sink.buf);
		err_set(err, errlen, "librsync signature: cannot start a job");
		return -ENOMEM;
	}
	rc = rsd_run(job, &src, &sink, "signature", NULL, err, errlen);
	rs_job_free(job);
	if (rc < 0) {
		free(sink.buf);
		return rc;
	}
	*sig = sink.buf;
	*sig_len = sink.len;
	return 0;
}

int rsd_signature_update(uint8_t *sig, size_t sig_len, int fd, uint64_t bytes,
			 const uint64_t *bitmap, char *err, size_t errlen)
{
	const size_t entry = 4 + RSD_STRONG_BYTES;
	struct rsd_sig_info i;
	int rc = rsd_sig_parse(sig, sig_len, &i);

	if (rsync_dl_load(err, errlen) < 0)
		return -ENOENT;
	if (rc < 0)
		return rc;
	if (i.magic != RS_RK_BLAKE2_SIG_MAGIC || i.strong_bytes != RSD_STRONG_BYTES ||
	    i.nblocks != bytes / i.block_bytes + (bytes % i.block_bytes != 0)) {
		err_set(err, errlen, "librsync signature: the old one does not fit the image");
		return -EINVAL;
	}
	for (uint64_t b = 0; b < i.nblocks; b++) {
		uint64_t off = b * i.block_bytes;
		struct rsd_source src = { .fd = fd, .off = off,
					  .end = bytes - off < i.block_bytes ? bytes : off + i.block_bytes };
		struct rsd_sink sink = { .write = sink_mem };
		rs_job_t *job;

		if (!(bitmap[b / 64] >> (b % 64) & 1))
			continue;
		job = rs_sig_begin(i.block_bytes, RSD_STRONG_BYTES, RS_RK_BLAKE2_SIG_MAGIC);
		if (!job) {
			err_set(err, errlen, "librsync signature: cannot start a job");
			return -ENOMEM;
		}
		rc = rsd_run(job, &src, &sink, "signature", NULL, err, errlen);
		rs_job_free(job);
		if (rc == 0 && sink.len != RSD_SIG_HEADER_BYTES + entry) {
			/* One block gives one entry: anything else is a librsync surprise. */
			err_set(err, errlen, "librsync signature: unexpected length for one block");
			rc = -EIO;
		}
		if (rc == 0)
			memcpy(sig + RSD_SIG_HEADER_BYTES + b * entry, sink.buf + RSD_SIG_HEADER_BYTES,
			       entry);
		free(sink.buf);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Load a signature into librsync's in-memory form and index it (sig, len, out). */
static int rsd_sig_load(const uint8_t *sig, size_t len, rs_signature_t **out, char *err,
			size_t errlen)
{
	struct rsd_source src = { .fd = -1, .mem = sig, .mem_len = len };
	struct rsd_sink sink = { .write = sink_mem };
	struct rsd_sig_info info;
	rs_signature_t *sums = NULL;
	rs_job_t *job;
	rs_result r;
	int rc;

	rc = rsd_sig_parse(sig, len, &info);
	if (rc < 0) {
		err_set(err, errlen, "librsync delta: %s",
			rc == -EPROTONOSUPPORT ? "MD4 signatures are not accepted"
						: "not a valid BLAKE2 signature");
		return rc;
	}
	job = rs_loadsig_begin(&sums);
	if (!job)
		return -ENOMEM;
	rc = rsd_run(job, &src, &sink, "load signature", NULL, err, errlen);
	rs_job_free(job);
	free(sink.buf);
	if (rc < 0) {
		if (sums)
			rs_free_sumset(sums);
		return rc;
	}
	r = rs_build_hash_table(sums);
	if (r != RS_DONE) {
		rs_free_sumset(sums);
		err_set(err, errlen, "librsync delta: index the signature: %s", rs_strerror(r));
		return rsd_errno(r);
	}
	*out = sums;
	return 0;
}

int rsd_delta(const uint8_t *sig, size_t sig_len, int new_fd, uint64_t bytes,
	      struct stream *out, char *err, size_t errlen)
{
	struct rsd_source src = { .fd = new_fd, .end = bytes };
	struct rsd_sink sink = { .write = sink_stream, .stream = out };
	rs_signature_t *sums = NULL;
	rs_job_t *job;
	int rc;

	if (rsync_dl_load(err, errlen) < 0)
		return -ENOENT;
	if (bytes == UINT64_MAX)
		return -EINVAL;
	rc = rsd_sig_load(sig, sig_len, &sums, err, errlen);
	if (rc < 0)
		return rc;
	job = rs_delta_begin(sums);
	if (!job) {
		rs_free_sumset(sums);
		return -ENOMEM;
	}
	rc = rsd_run(job, &src, &sink, "delta", NULL, err, errlen);
	rs_job_free(job);
	rs_free_sumset(sums);
	return rc;
}

/* The patch job's view of the basis file: pread at any offset the delta asks for. */
struct rsd_basis {
	int fd;
	int err; /* the errno behind an RS_IO_ERROR */
};

static rs_result rsd_copy_cb(void *arg, rs_long_t pos, size_t *len, void **buf)
{
	struct rsd_basis *b = arg;
	ssize_t n;

	if (pos < 0)
		return RS_CORRUPT;
	do
		n = pread(b->fd, *buf, *len, (off_t)pos);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		b->err = -errno;
		return RS_IO_ERROR;
	}
	if (n == 0)
		return RS_INPUT_ENDED; /* the delta copies from past the basis end */
	*len = (size_t)n;
	return RS_DONE;
}

int rsd_patch(int basis_fd, int delta_fd, int out_fd, uint64_t *out_bytes, char *err,
	      size_t errlen)
{
	struct rsd_source src = { .fd = delta_fd, .end = UINT64_MAX };
	struct rsd_sink sink = { .write = sink_fd, .fd = out_fd };
	struct rsd_basis basis = { .fd = basis_fd };
	rs_job_t *job;
	int rc;

	if (rsync_dl_load(err, errlen) < 0)
		return -ENOENT;
	job = rs_patch_begin(rsd_copy_cb, &basis);
	if (!job)
		return -ENOMEM;
	rc = rsd_run(job, &src, &sink, "patch", &basis.err, err, errlen);
	rs_job_free(job);
	if (rc < 0)
		return rc;
	if (ftruncate(out_fd, (off_t)sink.off) < 0) {
		rc = -errno;
		err_set(err, errlen, "librsync patch: truncate the output: %s", strerror(-rc));
		return rc;
	}
	if (out_bytes)
		*out_bytes = sink.off;
	return 0;
}

int rsd_sig_compare(const uint8_t *old_sig, size_t old_len, const uint8_t *new_sig,
		    size_t new_len, uint64_t *bitmap, uint64_t *nchanged)
{
	struct rsd_sig_info a, b;
	uint64_t changed = 0;
	size_t entry;
	int rc;

	rc = rsd_sig_parse(old_sig, old_len, &a);
	if (rc == 0)
		rc = rsd_sig_parse(new_sig, new_len, &b);
	if (rc < 0)
		return rc;
	if (a.magic != b.magic || a.block_bytes != b.block_bytes ||
	    a.strong_bytes != b.strong_bytes || a.strong_bytes < RSD_STRONG_BYTES)
		return -EINVAL;
	entry = 4 + a.strong_bytes;
	for (uint64_t i = 0; i < b.nblocks; i++) {
		const uint8_t *nb = new_sig + RSD_SIG_HEADER_BYTES + i * entry;

		if (i < a.nblocks &&
		    memcmp(old_sig + RSD_SIG_HEADER_BYTES + i * entry, nb, entry) == 0)
			continue;
		bitmap[i / 64] |= 1ull << (i % 64);
		changed++;
	}
	if (nchanged)
		*nchanged = changed;
	return 0;
}

int rsd_changed_blocks(const uint8_t *old_sig, size_t old_len, int fd, uint64_t bytes,
		       uint64_t *bitmap, uint64_t *nchanged, uint8_t **new_sig, size_t *new_len,
		       char *err, size_t errlen)
{
	struct rsd_sig_info info;
	uint8_t *sig;
	size_t len;
	int rc;

	rc = rsd_sig_parse(old_sig, old_len, &info);
	if (rc < 0) {
		err_set(err, errlen, "librsync: the previous disk signature is not valid");
		return rc;
	}
	rc = rsd_signature(fd, bytes, info.block_bytes, &sig, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = rsd_sig_compare(old_sig, old_len, sig, len, bitmap, nchanged);
	if (rc < 0) {
		err_set(err, errlen, "librsync: the previous disk signature uses other parameters");
		free(sig);
		return rc;
	}
	*new_sig = sig;
	*new_len = len;
	return 0;
}
