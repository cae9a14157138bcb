/* The S3 backend: repository objects as keys under s3://BUCKET/PREFIX, over transport/s3.h. */
#include "repo/backend.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport/s3.h"

/*
 * Write-once on S3. put sends HEAD, then PUT with If-None-Match: *. S3 (since 2024),
 * MinIO and moto 5 refuse the PUT with 412 when the key exists, which makes put atomic
 * and write-once. Servers that ignore the header leave a window:
 *   1. writer A: HEAD name -> 404
 *   2. writer B: HEAD name -> 404
 *   3. A: PUT name (complete)
 *   4. B: PUT name (complete): replaces A's object, and both see success.
 * This costs nothing for the repository: packs and index files are named by the hash of
 * their content, so A and B wrote the same bytes; snapshot ids and lock names carry 32
 * random bits (snapshots) or 64 (locks) and do not collide. The HEAD also saves the
 * upload of a pack another writer stored already.
 */

/*
 * Write-behind for packs. A put under "data/" (a pack: content-addressed, and named by no
 * index file yet, so nobody reads it) is copied and queued, and up to S3B_WORKERS threads
 * upload the queue while the caller goes on compressing the next pack; at most
 * S3B_QUEUE_BYTES wait (a put blocks for room). Every other operation (a put of any
 * other name, get, stat, list, remove) first waits until the queue is empty and every
 * upload is done, and fails with the first upload error if one failed (sticky). So the
 * repository's order holds: repo_flush puts the index file after its packs, and that put
 * returns only once they are durable; a failed pack fails the index put, and no index or
 * manifest ever names a pack that is not stored. What changes is only when a pack put
 * reports its error: at the next barrier instead of at once.
 *
 * Read-ahead for restores. Restores read a pack's blobs in the order they were written,
 * one 64 KiB range at a time; each GET to S3 costs a round trip. Reads of one object at
 * increasing offsets grow a window (S3B_RA_MIN, four times larger each time, up to
 * S3B_RA_MAX), fetched in one GET and served from memory; S3B_RA_SLOTS objects are
 * followed at once (a restore reads the packs of several snapshots in turn). While the
 * caller works through a window, one prefetch thread already fetches the next one of the
 * same object (a blob straddling the two is pieced together), so the network and the
 * caller's decompressing and hashing overlap. Objects are immutable, so a window stays
 * valid; put and remove of a name drop its window anyway.
 *
 * Threads: the caller's thread owns everything but the queue, which mu guards (workers
 * take jobs, post results); the client is thread-safe.
 */
#define S3B_WORKERS 3
#define S3B_QUEUE_BYTES ((size_t)128 << 20)
#define S3B_RA_SLOTS 8
#define S3B_RA_MIN ((size_t)512 << 10)
#define S3B_RA_MAX ((size_t)8 << 20)
/* The retry budget of the first request, unless the caller chose one: see backend_s3_open. */
#define S3B_PROBE_BUDGET_MS 15000u

struct s3b_job {
	struct s3b_job *next;
	bool taken; /* a worker uploads it */
	char key[S3_KEY_MAX + 1];
	uint8_t *data;
	size_t len;
};

struct s3b_window {
	char name[BACKEND_NAME_MAX + 1]; /* "" when free */
	uint64_t size;                   /* the object's size, from HEAD */
	uint64_t off;                    /* what buf holds: [off, off + len) */
	uint8_t *buf;
	size_t len, cap;
	uint64_t next;                   /* where a sequential reader reads next */
	size_t grow;                     /* the next window's size */
	uint64_t used;                   /* LRU clock */
};

/* The one read-ahead fetch that runs in the background: idle, running, or done. */
enum s3b_pf_state { S3B_PF_IDLE = 0, S3B_PF_RUNNING, S3B_PF_DONE };

struct s3b_prefetch {
	enum s3b_pf_state state;         /* under mu */
	char name[BACKEND_NAME_MAX + 1]; /* set by the caller while idle */
	char key[S3_KEY_MAX + 1];
	uint64_t off;
	size_t len;
	uint8_t *buf;                    /* the thread fills it while running */
	size_t cap;
	int rc;                          /* under mu, once done */
	bool started, stop;              /* the thread; stop under mu */
	pthread_t thread;
	pthread_cond_t cv;               /* state changes, with mu */
};

struct backend_s3 {
	struct backend base;
	struct s3_client *c;
	char *url;    /* "s3://bucket/prefix", for messages */
	char *prefix; /* "prefix/" or "" */
	size_t prefix_len;

	pthread_mutex_t mu;
	pthread_cond_t work, done; /* a job queued or stopping; a job finished */
	struct s3b_job *head, *tail; /* under mu: queued and in flight, oldest first */
	size_t queued_bytes;         /* under mu: queued and in flight */
	unsigned busy;               /* under mu: jobs in flight */
	int upload_err;              /* under mu: the first failure, sticky */
	bool stopping;               /* under mu */
	pthread_t workers[S3B_WORKERS];
	unsigned nworkers;           /* caller's thread */

	struct s3b_window ra[S3B_RA_SLOTS]; /* caller's thread */
	uint64_t ra_clock;
	struct s3b_prefetch pf;
};

static struct backend_s3 *s3b_of(struct backend *b)
{
	return (struct backend_s3 *)(void *)b;
}

/* The key of name (s, name, key): names are at most BACKEND_NAME_MAX, prefixes checked at open. */
static void s3b_key(const struct backend_s3 *s, const char *name, char key[S3_KEY_MAX + 1])
{
	snprintf(key, S3_KEY_MAX + 1, "%s%s", s->prefix, name);
}

/* HEAD, then PUT If-None-Match (s, key, data, len): -EEXIST when stored already. */
static int s3b_put_now(struct backend_s3 *s, const char *key, const void *data, size_t len)
{
	uint64_t size;
	int rc;

	rc = s3_head(s->c, key, &size);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	return s3_put_ex(s->c, key, data, len, S3_PUT_IF_ABSENT);
}

static void *s3b_worker(void *arg)
{
	struct backend_s3 *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		struct s3b_job *j, **pp;
		int rc;

		for (;;) {
			for (j = s->head; j && j->taken; j = j->next)
				;
			if (j || s->stopping)
				break;
			pthread_cond_wait(&s->work, &s->mu);
		}
		if (!j)
			break;
		j->taken = true;
		s->busy++;
		rc = s->upload_err;
		pthread_mutex_unlock(&s->mu);
		if (rc == 0) {
			/* The caller's HEAD found nothing; If-None-Match covers the rest. */
			rc = s3_put_ex(s->c, j->key, j->data, j->len, S3_PUT_IF_ABSENT);
			if (rc == -EEXIST)
				rc = 0; /* the same bytes: packs are named by their content */
		}
		pthread_mutex_lock(&s->mu);
		if (rc < 0 && s->upload_err == 0)
			s->upload_err = rc;
		for (pp = &s->head; *pp != j; pp = &(*pp)->next)
			;
		*pp = j->next;
		if (s->tail == j) {
			s->tail = NULL;
			for (struct s3b_job *t = s->head; t; t = t->next)
				s->tail = t;
		}
		s->busy--;
		s->queued_bytes -= j->len;
		free(j->data);
		free(j);
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Wait until no upload is queued or running (s). Returns the sticky upload error or 0. */
static int s3b_barrier(struct backend_s3 *s)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	while (s->head || s->busy)
		pthread_cond_wait(&s->done, &s->mu);
	rc = s->upload_err;
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* Queue a pack (s, key, data, len), starting the workers on first use. */
static int s3b_put_later(struct backend_s3 *s, const char *key, const void *data, size_t len)
{
	struct s3b_job *j = calloc(1, sizeof(*j));
	int rc;

	if (!j)
		return -ENOMEM;
	j->data = malloc(len ? len : 1);
	if (!j->data) {
		free(j);
		return -ENOMEM;
	}
	memcpy(j->data, data, len);
	j->len = len;
	snprintf(j->key, sizeof(j->key), "%s", key);
	pthread_mutex_lock(&s->mu);
	while (s->nworkers < S3B_WORKERS) {
		if (pthread_create(&s->workers[s->nworkers], NULL, s3b_worker, s) != 0)
			break;
		s->nworkers++;
	}
	while (s->queued_bytes && s->queued_bytes + len > S3B_QUEUE_BYTES && !s->upload_err)
		pthread_cond_wait(&s->done, &s->mu);
	rc = s->upload_err;
	if (rc == 0 && s->nworkers == 0)
		rc = -EAGAIN;
	for (struct s3b_job *t = s->head; rc == 0 && t; t = t->next)
		if (!strcmp(t->key, key))
			rc = -EEXIST; /* being written: write-once holds for queued puts too */
	if (rc == 0) {
		if (s->tail)
			s->tail->next = j;
		else
			s->head = j;
		s->tail = j;
		s->queued_bytes += len;
		pthread_cond_signal(&s->work);
	}
	pthread_mutex_unlock(&s->mu);
	if (rc < 0) {
		free(j->data);
		free(j);
	}
	return rc;
}

/* Forget the read-ahead window of name (s, name). */
static void s3b_ra_drop(struct backend_s3 *s, const char *name)
{
	for (unsigned i = 0; i < S3B_RA_SLOTS; i++)
		if (!strcmp(s->ra[i].name, name))
			s->ra[i].name[0] = '\0';
}

static int s3b_put(struct backend *b, const char *name, const void *data, size_t len)
{
	struct backend_s3 *s = s3b_of(b);
	char key[S3_KEY_MAX + 1];
	int rc;

	s3b_key(s, name, key);
	s3b_ra_drop(s, name);
	if (!strncmp(name, "data/", 5)) {
		uint64_t size;

		/*
		 * Queued or uploading here: write-once holds for queued puts too. Checked before
		 * the HEAD: puts come from this one thread, so a pack queued earlier is either
		 * still in the queue now, or uploaded and visible to the HEAD below (checking in
		 * the other order, an upload finishing between the two was missed).
		 */
		pthread_mutex_lock(&s->mu);
		for (struct s3b_job *t = s->head; t; t = t->next) {
			if (!strcmp(t->key, key)) {
				pthread_mutex_unlock(&s->mu);
				return -EEXIST;
			}
		}
		pthread_mutex_unlock(&s->mu);
		/* Stored already (another writer, an earlier run): say so now, as the contract asks. */
		rc = s3_head(s->c, key, &size);
		if (rc == 0)
			return -EEXIST;
		if (rc != -ENOENT)
			return rc;
		return s3b_put_later(s, key, data, len);
	}
	rc = s3b_barrier(s);
	if (rc < 0)
		return rc;
	return s3b_put_now(s, key, data, len);
}

static void *s3b_pf_thread(void *arg)
{
	struct backend_s3 *s = arg;
	struct s3b_prefetch *pf = &s->pf;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		int rc;

		while (pf->state != S3B_PF_RUNNING && !pf->stop)
			pthread_cond_wait(&pf->cv, &s->mu);
		if (pf->state != S3B_PF_RUNNING)
			break;
		pthread_mutex_unlock(&s->mu);
			rc = s3_get_range(s->c, pf->key, pf->off, pf->len, pf->buf);
		pthread_mutex_lock(&s->mu);
		pf->rc = rc;
		pf->state = S3B_PF_DONE;
		pthread_cond_broadcast(&pf->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Start fetching the window after w's (s, w, key) unless a fetch is running already. */
static void s3b_pf_start(struct backend_s3 *s, const struct s3b_window *w, const char *key)
{
	struct s3b_prefetch *pf = &s->pf;
	uint64_t off = w->off + w->len;
	size_t len = w->grow;

	if (off >= w->size)
		return;
	if (len > w->size - off)
		len = (size_t)(w->size - off);
	pthread_mutex_lock(&s->mu);
	if (pf->state == S3B_PF_RUNNING)
		goto out;
	if (!pf->started) {
		if (pthread_create(&pf->thread, NULL, s3b_pf_thread, s) != 0)
			goto out;
		pf->started = true;
	}
	if (len > pf->cap) {
		uint8_t *nb = realloc(pf->buf, len);

		if (!nb)
			goto out;
		pf->buf = nb;
		pf->cap = len;
	}
	snprintf(pf->name, sizeof(pf->name), "%s", w->name);
	snprintf(pf->key, sizeof(pf->key), "%s", key);
	pf->off = off;
	pf->len = len;
	pf->state = S3B_PF_RUNNING;
	pthread_cond_broadcast(&pf->cv);
out:
	pthread_mutex_unlock(&s->mu);
}

/*
 * Serve [off, off + len) into out from the prefetched window when it is w's next one
 * and holds the range, or its part past w's end (a blob that straddles two windows)
 * (s, w, off, len, out): waits for the fetch if still running, then makes the
 * prefetched window w's. Returns true when served.
 */
static bool s3b_pf_take(struct backend_s3 *s, struct s3b_window *w, uint64_t off, size_t len,
			uint8_t *out)
{
	struct s3b_prefetch *pf = &s->pf;
	uint64_t end = off + len;
	size_t head = 0;
	bool took = false;

	pthread_mutex_lock(&s->mu);
	if (pf->state == S3B_PF_IDLE || strcmp(pf->name, w->name) != 0 || end > pf->off + pf->len)
		goto out;
	if (off < pf->off) {
		/* Straddling: the head must be in w, right before the prefetched window. */
		if (pf->off != w->off + w->len || off < w->off)
			goto out;
		head = (size_t)(pf->off - off);
	}
	while (pf->state == S3B_PF_RUNNING)
		pthread_cond_wait(&pf->cv, &s->mu);
	if (pf->rc == 0) {
		uint8_t *b = w->buf;
		size_t cap = w->cap;

		if (head)
			memcpy(out, w->buf + (off - w->off), head);
		memcpy(out + head, pf->buf + (off + head - pf->off), len - head);
		w->buf = pf->buf;
		w->cap = pf->cap;
		w->off = pf->off;
		w->len = pf->len;
		pf->buf = b;
		pf->cap = cap;
		took = true;
	}
	pf->state = S3B_PF_IDLE;
out:
	pthread_mutex_unlock(&s->mu);
	return took;
}

/*
 * Serve [off, off + len) of name from a read-ahead window, fetching a new one when the
 * reads are sequential (s, name, key, off, buf, len). Returns 0, 1 when the caller should
 * read directly (no window applies), or an error.
 */
static int s3b_ra_get(struct backend_s3 *s, const char *name, const char *key, uint64_t off,
		      void *buf, size_t len)
{
	struct s3b_window *w = NULL, *victim = NULL;
	size_t want;
	int rc;

	for (unsigned i = 0; i < S3B_RA_SLOTS; i++) {
		if (!strcmp(s->ra[i].name, name))
			w = &s->ra[i];
		if (victim && !victim->name[0])
			continue; /* a free slot beats any other */
		if (!victim || !s->ra[i].name[0] || s->ra[i].used < victim->used)
			victim = &s->ra[i];
	}
	if (w && off >= w->off && off - w->off <= w->len && len <= w->len - (off - w->off)) {
		memcpy(buf, w->buf + (off - w->off), len);
		w->next = off + len;
		w->used = ++s->ra_clock;
		return 0;
	}
	/*
	 * A jump forward by less than a window (blobs a later snapshot superseded, or that
	 * live in another pack, left behind) is still a forward scan; a jump back or far
	 * ahead starts small again.
	 */
	if (w && (off < w->next || off - w->next > w->grow))
		w->grow = S3B_RA_MIN;
	if (!w) {
		w = victim;
		memset(w->name, 0, sizeof(w->name));
		rc = s3_head(s->c, key, &w->size);
		if (rc < 0)
			return rc;
		snprintf(w->name, sizeof(w->name), "%s", name);
		w->len = 0;
		w->grow = S3B_RA_MIN;
	}
	w->used = ++s->ra_clock;
	if (off > w->size || len > w->size - off)
		return -EPROTO;
	if (w->len && s3b_pf_take(s, w, off, len, buf)) {
		w->next = off + len;
		if (w->grow < S3B_RA_MAX)
			w->grow *= 4;
		s3b_pf_start(s, w, key);
		return 0;
	}
	want = w->grow > len ? w->grow : len;
	if (want > w->size - off)
		want = (size_t)(w->size - off);
	if (want > w->cap) {
		uint8_t *nb = realloc(w->buf, want);

		if (!nb)
			return 1;
		w->buf = nb;
		w->cap = want;
	}
	w->len = 0;
	rc = s3_get_range(s->c, key, off, want, w->buf);
	if (rc < 0) {
		w->name[0] = '\0';
		return rc == -ERANGE ? -EPROTO : rc;
	}
	w->off = off;
	w->len = want;
	w->next = off + len;
	if (w->grow < S3B_RA_MAX)
		w->grow *= 4;
	memcpy(buf, w->buf, len);
	if (w->grow >= 4 * S3B_RA_MIN)
		s3b_pf_start(s, w, key); /* clearly sequential: fetch ahead */
	return 0;
}

static int s3b_get(struct backend *b, const char *name, uint64_t off, void *buf, size_t len)
{
	struct backend_s3 *s = s3b_of(b);
	char key[S3_KEY_MAX + 1];
	uint64_t size;
	int rc;

	rc = s3b_barrier(s);
	if (rc < 0)
		return rc;
	s3b_key(s, name, key);
	if (len == 0) {
		/* S3 has no empty range: check the object and the offset instead. */
		rc = s3_head(s->c, key, &size);
		return rc < 0 ? rc : off > size ? -EPROTO : 0;
	}
	rc = s3b_ra_get(s, name, key, off, buf, len);
	if (rc <= 0)
		return rc;
	rc = s3_get_range(s->c, key, off, len, buf);
	return rc == -ERANGE ? -EPROTO : rc;
}

static int s3b_get_all(struct backend *b, const char *name, size_t max_bytes, uint8_t **data,
		       size_t *len)
{
	struct backend_s3 *s = s3b_of(b);
	char key[S3_KEY_MAX + 1];
	void *out;
	int rc;

	rc = s3b_barrier(s);
	if (rc < 0)
		return rc;
	s3b_key(s, name, key);
	rc = s3_get(s->c, key, max_bytes, &out, len);
	if (rc == -EFBIG)
		return -EMSGSIZE;
	if (rc < 0)
		return rc;
	*data = out;
	return 0;
}

static int s3b_stat(struct backend *b, const char *name, uint64_t *bytes)
{
	struct backend_s3 *s = s3b_of(b);
	char key[S3_KEY_MAX + 1];
	int rc = s3b_barrier(s);

	if (rc < 0)
		return rc;
	s3b_key(s, name, key);
	return s3_head(s->c, key, bytes);
}

struct s3b_list_ctx {
	const struct backend_s3 *s;
	backend_list_fn fn;
	backend_aged_fn aged;
	void *arg;
	time_t now;
};

/* Hand the caller names relative to the prefix; skip keys that are no object name of ours. */
static int s3b_list_one(void *arg, const char *key, uint64_t size, int64_t mtime)
{
	struct s3b_list_ctx *l = arg;
	const char *name = key + l->s->prefix_len;

	if (strncmp(key, l->s->prefix, l->s->prefix_len) != 0 || !backend_name_ok(name))
		return 0;
	if (l->aged)
		return l->aged(l->arg, name, size,
			       mtime < 0 ? -1 : mtime >= l->now ? 0 : l->now - mtime);
	return l->fn(l->arg, name, size);
}

static int s3b_list_ex(struct backend_s3 *s, const char *prefix, struct s3b_list_ctx *l)
{
	char key[S3_KEY_MAX + 1];
	int rc = s3b_barrier(s);

	if (rc < 0)
		return rc;
	s3b_key(s, prefix, key);
	l->now = time(NULL);
	return s3_list_ex(s->c, key, s3b_list_one, l);
}

static int s3b_list(struct backend *b, const char *prefix, backend_list_fn fn, void *arg)
{
	struct s3b_list_ctx l = { .s = s3b_of(b), .fn = fn, .arg = arg };

	return s3b_list_ex(s3b_of(b), prefix, &l);
}

/* LastModified as S3 keeps it, against this host's clock: hosts must agree (NTP). */
static int s3b_list_aged(struct backend *b, const char *prefix, backend_aged_fn fn, void *arg)
{
	struct s3b_list_ctx l = { .s = s3b_of(b), .aged = fn, .arg = arg };

	return s3b_list_ex(s3b_of(b), prefix, &l);
}

static int s3b_remove(struct backend *b, const char *name)
{
	struct backend_s3 *s = s3b_of(b);
	char key[S3_KEY_MAX + 1];
	int rc = s3b_barrier(s);

	if (rc < 0)
		return rc;
	s3b_ra_drop(s, name);
	s3b_key(s, name, key);
	return s3_delete(s->c, key);
}

static size_t s3b_error(struct backend *b, char *buf, size_t len)
{
	return s3_client_error(s3b_of(b)->c, buf, len);
}

/* Finish the uploads, stop the workers, free the windows (s). */
static void s3b_stop(struct backend_s3 *s)
{
	s3b_barrier(s);
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->nworkers; i++)
		pthread_join(s->workers[i], NULL);
	s->nworkers = 0;
	pthread_mutex_lock(&s->mu);
	s->pf.stop = true;
	pthread_cond_broadcast(&s->pf.cv);
	pthread_mutex_unlock(&s->mu);
	if (s->pf.started)
		pthread_join(s->pf.thread, NULL);
	free(s->pf.buf);
	pthread_cond_destroy(&s->pf.cv);
	for (unsigned i = 0; i < S3B_RA_SLOTS; i++)
		free(s->ra[i].buf);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
}

static void s3b_close(struct backend *b)
{
	struct backend_s3 *s = s3b_of(b);

	s3b_stop(s);
	s3_client_destroy(s->c);
	free(s->url);
	free(s->prefix);
	free(s);
}

static const struct backend_ops s3b_ops = {
	.put = s3b_put,
	.get = s3b_get,
	.get_all = s3b_get_all,
	.stat = s3b_stat,
	.list = s3b_list,
	.list_aged = s3b_list_aged,
	.remove = s3b_remove,
	.close = s3b_close,
	.error = s3b_error,
};

int backend_s3_stats(struct backend *b, struct s3_stats *out)
{
	if (!b || b->ops != &s3b_ops)
		return -EINVAL;
	s3_client_stats(s3b_of(b)->c, out);
	return 0;
}

/*
 * Split "s3://BUCKET[/PREFIX][/]" (url, cfg, s, err, errlen): the bucket into cfg, the
 * prefix (with a '/' appended) into s.
 */
static int s3b_parse(const char *url, struct s3_config *cfg, struct backend_s3 *s, char *err,
		     size_t errlen)
{
	const char *bucket = url + 5, *slash = strchr(bucket, '/');
	size_t blen = slash ? (size_t)(slash - bucket) : strlen(bucket), plen;
	char prefix[BACKEND_NAME_MAX + 1];

	if (blen == 0 || blen >= sizeof(cfg->bucket)) {
		snprintf(err, errlen, "%s: name a bucket: s3://BUCKET/PREFIX", url);
		return -EINVAL;
	}
	memcpy(cfg->bucket, bucket, blen);
	cfg->bucket[blen] = '\0';
	plen = slash ? strlen(slash + 1) : 0;
	if (plen && slash[plen] == '/')
		plen--; /* one trailing '/' is allowed */
	if (plen) {
		if (plen >= sizeof(prefix)) {
			snprintf(err, errlen, "%s: the prefix is longer than %d bytes", url,
				 BACKEND_NAME_MAX);
			return -EINVAL;
		}
		memcpy(prefix, slash + 1, plen);
		prefix[plen] = '\0';
		if (!backend_name_ok(prefix)) {
			snprintf(err, errlen, "%s: the prefix must be '/'-separated names of "
				 "[A-Za-z0-9._-]", url);
			return -EINVAL;
		}
	}
	s->prefix = malloc(plen + 2);
	if (!s->prefix)
		return -ENOMEM;
	if (plen) {
		memcpy(s->prefix, slash + 1, plen);
		s->prefix[plen++] = '/';
	}
	s->prefix[plen] = '\0';
	s->prefix_len = plen;
	return 0;
}

/*
 * Read "config" once (s, flags, err, errlen), so the usual mistakes fail here with the
 * client's message; with BACKEND_S3_CREATE_BUCKET a missing bucket is made.
 */
static int s3b_probe(struct backend_s3 *s, unsigned flags, char *err, size_t errlen)
{
	char key[S3_KEY_MAX + 1], msg[S3_ERROR_MAX];
	size_t len;
	void *buf;
	int rc;

	s3b_key(s, "config", key);
	rc = s3_get(s->c, key, 4096, &buf, &len);
	if (rc == 0)
		free(buf);
	if (rc == 0 || rc == -ENOENT || rc == -EFBIG)
		return 0;
	if (rc == -ENXIO && (flags & BACKEND_S3_CREATE_BUCKET)) {
		rc = s3_bucket_create(s->c);
		if (rc == 0)
			return 0;
	}
	s3_client_error(s->c, msg, sizeof(msg));
	snprintf(err, errlen, "%s: %s", s->url, msg[0] ? msg : strerror(-rc));
	return rc;
}

int backend_s3_open(struct backend **out, const char *url, const struct backend_s3_opts *o,
		    unsigned flags, char *err, size_t errlen)
{
	const char *endpoint = o ? o->endpoint : NULL;
	struct s3_config *cfg;
	struct backend_s3 *s;
	char msg[512] = "";
	int rc;

	if (!backend_location_is_s3(url)) {
		snprintf(err, errlen, "%s: not an s3:// URL", url);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	cfg = malloc(sizeof(*cfg)); /* about 6 KiB: not on the stack */
	if (!s || !cfg) {
		rc = -ENOMEM;
		goto err_free;
	}
	s3_config_init(cfg);
	s->url = strdup(url);
	if (!s->url) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = s3b_parse(url, cfg, s, err, errlen);
	if (rc < 0)
		goto err_free;
	rc = s3_config_from_env(cfg, NULL, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", url, msg);
		goto err_free;
	}
	if (endpoint && endpoint[0]) {
		if (strlen(endpoint) >= sizeof(cfg->endpoint)) {
			snprintf(err, errlen, "%s: the endpoint URL is too long", url);
			rc = -EINVAL;
			goto err_free;
		}
		snprintf(cfg->endpoint, sizeof(cfg->endpoint), "%s", endpoint);
	}
	if (o && o->retry_s >= 0)
		cfg->retry_budget_ms = (unsigned)(o->retry_s > 86400 ? 86400 : o->retry_s) * 1000;
	if (o) {
		cfg->log = o->note;
		cfg->log_arg = o->note_arg;
		cfg->cancel = o->cancel;
	}
	rc = s3_client_create(&s->c, cfg, msg, sizeof(msg));
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", url, msg);
		goto err_free;
	}
	s->base.ops = &s3b_ops;
	s->base.location = s->url;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	pthread_cond_init(&s->pf.cv, NULL);
	/*
	 * A wrong endpoint or a server that is down when we start look the same: the probe
	 * waits a little (unless the caller chose a budget), so a typo fails in seconds; from
	 * then on an outage is waited out for the whole budget.
	 */
	if (!o || o->retry_s < 0)
		s3_client_set_retry_budget(s->c, cfg->retry_budget_ms < S3B_PROBE_BUDGET_MS
						 ? cfg->retry_budget_ms : S3B_PROBE_BUDGET_MS);
	rc = s3b_probe(s, flags, err, errlen);
	if (rc < 0) {
		s3b_stop(s);
		goto err_client;
	}
	s3_client_set_retry_budget(s->c, cfg->retry_budget_ms);
	explicit_bzero(cfg, sizeof(*cfg));
	free(cfg);
	*out = &s->base;
	return 0;
err_client:
	s3_client_destroy(s->c);
err_free:
	if (s) {
		free(s->url);
		free(s->prefix);
	}
	free(s);
	if (cfg)
		explicit_bzero(cfg, sizeof(*cfg));
	free(cfg);
	return rc;
}
