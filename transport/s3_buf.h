/* A growing, bounded, always NUL-terminated byte buffer for the S3 client and the SigV4 signer. */
#ifndef TRANSPORT_S3_BUF_H
#define TRANSPORT_S3_BUF_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Private to transport/s3*.c and sigv4.c. The buffer owns data; data is NULL until the
 * first append and always NUL-terminated after it (the terminator is not counted in len).
 * Appending past limit fails with -EFBIG and leaves the contents unchanged, so a response
 * body from an untrusted server can never grow without bound.
 */
struct s3_buf {
	char *data;
	size_t len;
	size_t cap;   /* allocated bytes, including room for the terminator */
	size_t limit; /* the most len may reach */
};

/* An empty buffer that will hold at most limit bytes (b, limit). */
void s3_buf_init(struct s3_buf *b, size_t limit);

/* Make room for len + extra bytes and the terminator (b, extra). Returns 0, -EFBIG, -ENOMEM. */
int s3_buf_reserve(struct s3_buf *b, size_t extra);

/* Append n bytes (b, p, n). Returns 0, -EFBIG or -ENOMEM. */
int s3_buf_add(struct s3_buf *b, const void *p, size_t n);

/* Append a C string (b, s). Returns as s3_buf_add. */
int s3_buf_puts(struct s3_buf *b, const char *s);

/* Append printf-formatted text (b, fmt, ...). Returns as s3_buf_add, or -EINVAL. */
int s3_buf_printf(struct s3_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The contents as a C string: "" when nothing was appended. */
const char *s3_buf_str(const struct s3_buf *b);

/* Hand the allocation to the caller (b); b becomes empty. Never NULL unless out of memory. */
char *s3_buf_steal(struct s3_buf *b);

/* Free the contents (b); b becomes empty and can be reused. */
void s3_buf_free(struct s3_buf *b);

#endif
