/* The one formatter for the (err, errlen) reason buffers that failing calls fill. */
#ifndef UTIL_ERR_H
#define UTIL_ERR_H

#include <stddef.h>

/*
 * printf a one-line reason into err (err, errlen, fmt, ...), truncated to errlen. err may
 * be NULL or errlen 0: then nothing is written, so callers pass theirs through unchecked.
 */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
