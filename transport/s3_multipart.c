/* S3 multipart upload: create, parts in parallel on a few threads, complete, or abort on any failure. */
#include "transport/s3_priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * One upload. The calling thread and up to parallelism - 1 helpers take part numbers
 * from next and each send one part at a time on its own easy handle:
 *
 *   1. POST key?uploads                      -> UploadId
 *   2. PUT  key?partNumber=N&uploadId=ID     -> ETag of part N     (in parallel)
 *   3. POST key?uploadId=ID  <Part>s         -> the object appears
 *   on failure in 2 or 3:  DELETE key?uploadId=ID  (abort: S3 frees the parts)
 *
 * When a part fails for good, it sets cancel: the other threads take no new part, their
 * transfers in flight stop at the next progress callback, and no retries start.
 *
 * Ownership: data, key, part_size, nparts and upload_id are written before the helpers
 * start and only read after. lock guards next, err and errmsg. Each etags[i] is written
 * by the one thread that sent part i and read after the join.
 */
struct mp {
	struct s3_client *c;
	const char *key;
	const uint8_t *data;
	size_t len;
	size_t part_size;
	size_t nparts;
	char upload_id[S3_UPLOAD_ID_MAX + 1];
	char (*etags)[S3_ETAG_MAX];
	pthread_mutex_t lock;
	size_t next;
	int err;
	char errmsg[S3_ERROR_MAX];
	atomic_bool cancel;
};

static void mp_failed(struct mp *m, int rc)
{
	pthread_mutex_lock(&m->lock);
	if (!m->err) {
		m->err = rc;
		s3_client_error(m->c, m->errmsg, sizeof(m->errmsg));
	}
	pthread_mutex_unlock(&m->lock);
	atomic_store(&m->cancel, true);
}

static void *part_worker(void *arg)
{
	struct mp *m = arg;

	for (;;) {
		struct s3_req r = { 0 };
		char part[24];
		struct sigv4_param q[2] = { { "partNumber", part }, { "uploadId", m->upload_id } };
		size_t i, off, n;
		int rc;

		pthread_mutex_lock(&m->lock);
		if (m->err || m->next >= m->nparts) {
			pthread_mutex_unlock(&m->lock);
			break;
		}
		i = m->next++;
		pthread_mutex_unlock(&m->lock);
		off = i * m->part_size;
		n = m->len - off < m->part_size ? m->len - off : m->part_size;
		snprintf(part, sizeof(part), "%zu", i + 1);
		r.op = "put part";
		r.method = "PUT";
		r.key = m->key;
		r.query = q;
		r.query_count = 2;
		r.body = m->data + off;
		r.body_len = n;
		r.send_body = true;
		r.content_type = "application/octet-stream";
		r.cancel = &m->cancel;
		rc = s3_request(m->c, &r);
		if (rc == 0 && !r.etag[0])
			rc = s3_fail(m->c, -EBADMSG, "s3: put part %zu of s3://%s/%.300s: the answer "
				     "has no valid ETag", i + 1, m->c->cfg.bucket, m->key);
		if (rc == -ECANCELED)
			break; /* a sibling failed and reports */
		if (rc < 0) {
			mp_failed(m, rc);
			break;
		}
		memcpy(m->etags[i], r.etag, sizeof(r.etag));
	}
	return NULL;
}

static int mp_create(struct mp *m)
{
	struct sigv4_param q[1] = { { "uploads", "" } };
	struct s3_req r = { 0 };
	struct s3_buf b;
	const char *t;
	char root[48];
	size_t tn;
	int rc, n;

	s3_buf_init(&b, S3_XML_MAX);
	r.op = "start multipart upload";
	r.method = "POST";
	r.key = m->key;
	r.query = q;
	r.query_count = 1;
	r.body = "";
	r.send_body = true;
	r.content_type = "application/octet-stream"; /* becomes the object's type */
	r.out_buf = &b;
	rc = s3_request(m->c, &r);
	if (rc == 0) {
		if (s3_xml_root(s3_buf_str(&b), b.len, root, sizeof(root)) < 0 ||
		    strcmp(root, "InitiateMultipartUploadResult") != 0 ||
		    !s3_xml_find(b.data, b.len, "UploadId", &t, &tn) ||
		    (n = s3_xml_decode(m->upload_id, sizeof(m->upload_id), t, tn)) <= 0)
			rc = -EBADMSG;
		for (const char *p = m->upload_id; rc == 0 && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				rc = -EBADMSG;
		if (rc < 0)
			s3_fail(m->c, rc, "s3: start multipart upload s3://%s/%.300s: the answer has no "
				"valid UploadId", m->c->cfg.bucket, m->key);
	}
	s3_buf_free(&b);
	return rc;
}

static int mp_complete(struct mp *m, unsigned flags)
{
	struct sigv4_param q[1] = { { "uploadId", m->upload_id } };
	struct s3_req r = { 0 };
	struct s3_buf body, out;
	int rc;

	s3_buf_init(&body, (size_t)1 << 24);
	s3_buf_init(&out, S3_XML_MAX);
	rc = s3_buf_puts(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/"
			 "2006-03-01/\">");
	for (size_t i = 0; i < m->nparts && rc == 0; i++) {
		rc = s3_buf_printf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		if (rc == 0)
			rc = s3_xml_escape(&body, m->etags[i]);
		if (rc == 0)
			rc = s3_buf_puts(&body, "</ETag></Part>");
	}
	if (rc == 0)
		rc = s3_buf_puts(&body, "</CompleteMultipartUpload>");
	if (rc < 0) {
		s3_buf_free(&body);
		return s3_fail(m->c, rc, "s3: complete multipart upload: out of memory");
	}
	r.op = "complete multipart upload";
	r.method = "POST";
	r.key = m->key;
	r.query = q;
	r.query_count = 1;
	r.body = body.data;
	r.body_len = body.len;
	r.send_body = true;
	r.content_type = "application/xml";
	r.if_none_match = (flags & S3_PUT_IF_ABSENT) ? "*" : NULL;
	r.body_may_hold_error = true;
	r.out_buf = &out;
	rc = s3_request(m->c, &r);
	if (rc == -ENOENT && strcmp(r.err_code, "NoSuchUpload") == 0) {
		/*
		 * A retry after a lost answer finds the upload already completed. The object
		 * is there if it has our size; keys are content-addressed, so that is ours.
		 */
		uint64_t size;

		if (s3_head(m->c, m->key, &size) == 0 && size == m->len)
			rc = 0;
		else
			s3_fail(m->c, -ENOENT, "s3: complete multipart upload s3://%s/%.300s: the upload "
				"vanished (NoSuchUpload): was it aborted by a lifecycle rule?",
				m->c->cfg.bucket, m->key);
	}
	s3_buf_free(&body);
	s3_buf_free(&out);
	return rc;
}

/* Abort after a failure (m); keeps the original message and says how the abort went. */
static void mp_abort(struct mp *m)
{
	struct sigv4_param q[1] = { { "uploadId", m->upload_id } };
	struct s3_req r = { 0 };
	char abort_msg[S3_ERROR_MAX];
	int rc;

	r.op = "abort multipart upload";
	r.method = "DELETE";
	r.key = m->key;
	r.query = q;
	r.query_count = 1;
	s3_stat_add(m->c, &m->c->stats.aborts, 1);
	rc = s3_request(m->c, &r);
	if (rc == -ENOENT)
		rc = 0; /* already gone */
	if (rc == 0) {
		s3_fail(m->c, m->err, "%s; the multipart upload was aborted", m->errmsg);
		return;
	}
	s3_stat_add(m->c, &m->c->stats.aborts_failed, 1);
	s3_client_error(m->c, abort_msg, sizeof(abort_msg));
	s3_fail(m->c, m->err, "%.280s; aborting upload %.60s failed too (%s): a bucket lifecycle "
		"rule AbortIncompleteMultipartUpload removes its parts", m->errmsg, m->upload_id,
		strerror(-rc));
}

int s3_multipart_put(struct s3_client *c, const char *key, const void *data, size_t len,
		     unsigned flags)
{
	struct mp *m;
	pthread_t th[64];
	size_t nthreads, started = 0;
	int rc;

	m = calloc(1, sizeof(*m));
	if (!m)
		return s3_fail(c, -ENOMEM, "s3: put: out of memory");
	m->c = c;
	m->key = key;
	m->data = data;
	m->len = len;
	m->part_size = c->cfg.part_size;
	if ((len + m->part_size - 1) / m->part_size > S3_PARTS_MAX) {
		/* Grow parts to whole MiB so the object fits in S3's 10000 parts. */
		size_t mib = (size_t)1 << 20;

		m->part_size = ((len + S3_PARTS_MAX - 1) / S3_PARTS_MAX + mib - 1) / mib * mib;
	}
	m->nparts = (len + m->part_size - 1) / m->part_size;
	m->etags = calloc(m->nparts, sizeof(*m->etags));
	if (!m->etags) {
		free(m);
		return s3_fail(c, -ENOMEM, "s3: put: out of memory");
	}
	pthread_mutex_init(&m->lock, NULL);
	atomic_init(&m->cancel, false);

	rc = mp_create(m);
	if (rc < 0)
		goto out;
	s3_stat_add(c, &c->stats.multipart_uploads, 1);
	nthreads = c->cfg.parallelism < m->nparts ? c->cfg.parallelism : m->nparts;
	/* Helpers that fail to start leave their share to the rest; this thread works too. */
	for (size_t i = 1; i < nthreads; i++)
		if (pthread_create(&th[started], NULL, part_worker, m) == 0)
			started++;
	part_worker(m);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	rc = m->err;
	if (rc == 0) {
		rc = mp_complete(m, flags);
		if (rc < 0) {
			m->err = rc;
			s3_client_error(c, m->errmsg, sizeof(m->errmsg));
		}
	}
	if (rc < 0)
		mp_abort(m);
out:
	pthread_mutex_destroy(&m->lock);
	free(m->etags);
	free(m);
	return rc;
}
