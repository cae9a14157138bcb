/* A growing, bounded, always NUL-terminated byte buffer for the S3 client and the SigV4 signer. */
#include "transport/s3_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void s3_buf_init(struct s3_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

int s3_buf_reserve(struct s3_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > b->limit - b->len)
		return -EFBIG;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	if (!b->data)
		p[0] = '\0';
	b->data = p;
	b->cap = cap;
	return 0;
}

int s3_buf_add(struct s3_buf *b, const void *p, size_t n)
{
	int rc = s3_buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int s3_buf_puts(struct s3_buf *b, const char *s)
{
	return s3_buf_add(b, s, strlen(s));
}

int s3_buf_printf(struct s3_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	rc = s3_buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *s3_buf_str(const struct s3_buf *b)
{
	return b->data ? b->data : "";
}

char *s3_buf_steal(struct s3_buf *b)
{
	char *p;

	if (!b->data && s3_buf_reserve(b, 0) < 0)
		return NULL;
	p = b->data;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

void s3_buf_free(struct s3_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
