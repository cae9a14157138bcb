/* --verify: digests of pages and disk blocks (SHA-256, truncated), on several threads. */
#include "migrate/verify.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/byteorder.h"

struct digest_job {
	const uint8_t *base;
	uint64_t first, n;
	const uint64_t *populated;
	uint64_t *out;
	int rc;
};

static bool all_zero(const uint8_t *p, size_t len)
{
	const uint64_t *w = (const uint64_t *)(const void *)p;

	for (size_t i = 0; i < len / 8; i++)
		if (w[i])
			return false;
	for (size_t i = len / 8 * 8; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * SHA-256 of p, its first MIG_DIGEST_BYTES into *d; 0 for an all-zero p, never 0
 * otherwise. Returns 0, or -EIO if OpenSSL fails (then nothing may be compared).
 */
static int digest_one(EVP_MD_CTX *ctx, EVP_MD *md_sha, const uint8_t *p, size_t len,
		      uint64_t *d)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (all_zero(p, len)) {
		*d = 0;
		return 0;
	}
	if (!EVP_DigestInit_ex2(ctx, md_sha, NULL) || !EVP_DigestUpdate(ctx, p, len) ||
	    !EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen < MIG_DIGEST_BYTES)
		return -EIO;
	*d = le64_decode(md);
	if (*d == 0)
		*d = 1;
	return 0;
}

/* SHA-256 fetched once per caller: an implicit fetch at every init costs a lookup. */
static int digest_begin(EVP_MD_CTX **ctx, EVP_MD **md)
{
	*ctx = EVP_MD_CTX_new();
	*md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (*ctx && *md)
		return 0;
	EVP_MD_free(*md);
	EVP_MD_CTX_free(*ctx);
	return -ENOMEM;
}

static void digest_end(EVP_MD_CTX *ctx, EVP_MD *md)
{
	EVP_MD_free(md);
	EVP_MD_CTX_free(ctx);
}

int mig_digest_block(const uint8_t *p, size_t len, uint64_t *out)
{
	EVP_MD_CTX *ctx;
	EVP_MD *md;
	int rc = digest_begin(&ctx, &md);

	if (rc < 0)
		return rc;
	rc = digest_one(ctx, md, p, len, out);
	digest_end(ctx, md);
	return rc;
}

static void *digest_thread(void *arg)
{
	struct digest_job *j = arg;
	EVP_MD_CTX *ctx;
	EVP_MD *md;

	j->rc = digest_begin(&ctx, &md);
	if (j->rc < 0)
		return NULL;
	for (uint64_t k = 0; k < j->n && j->rc == 0; k++) {
		uint64_t pg = j->first + k;

		if (j->populated && !((j->populated[pg / 64] >> (pg % 64)) & 1))
			j->out[k] = 0;
		else
			j->rc = digest_one(ctx, md, j->base + pg * MIG_PAGE_BYTES, MIG_PAGE_BYTES,
					   &j->out[k]);
	}
	digest_end(ctx, md);
	return NULL;
}

int mig_digest_pages(const uint8_t *base, uint64_t first, uint64_t n,
		     const uint64_t *populated, uint64_t *out)
{
	struct digest_job job[MIG_VERIFY_THREADS];
	pthread_t tid[MIG_VERIFY_THREADS];
	bool started[MIG_VERIFY_THREADS] = { false };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nthreads = ncpu < 1 ? 1 : ncpu > MIG_VERIFY_THREADS ? MIG_VERIFY_THREADS
								     : (unsigned)ncpu;
	uint64_t per;
	int rc = 0;

	/* A thread costs more than it saves below a few hundred pages. */
	if (n < 1024)
		nthreads = 1;
	per = (n + nthreads - 1) / nthreads;
	for (unsigned t = 0; t < nthreads; t++) {
		uint64_t at = (uint64_t)t * per;

		job[t] = (struct digest_job){
			.base = base, .first = first + at, .n = at < n ? (n - at < per ? n - at : per) : 0,
			.populated = populated, .out = out + (at < n ? at : 0), .rc = 0,
		};
		/* The last slice runs here; the others on threads (inline if none starts). */
		if (t + 1 < nthreads && pthread_create(&tid[t], NULL, digest_thread, &job[t]) == 0)
			started[t] = true;
		else
			digest_thread(&job[t]);
	}
	for (unsigned t = 0; t < nthreads; t++) {
		if (started[t])
			pthread_join(tid[t], NULL);
		if (job[t].rc < 0)
			rc = job[t].rc;
	}
	return rc;
}
