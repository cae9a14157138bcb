/*
 * A shared library loaded on first use, its functions looked up by name into the
 * caller's function pointers. godwit links libcurl and librsync this way: a VMM that never
 * talks to S3 or diffs a disk does not pay their (and their dependencies') resident memory.
 */
#ifndef TRANSPORT_LAZY_LIB_H
#define TRANSPORT_LAZY_LIB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct lazy_lib {
	const char *soname;         /* "libcurl.so.4" */
	const char *package;        /* the Debian package that ships it, for the error */
	const char *what;           /* what needs it: "S3" */
	const char *const *names;   /* symbol names, n of them ... */
	void **const *slots;        /* ... and where each one's address goes */
	size_t n;
	pthread_mutex_t lock;       /* PTHREAD_MUTEX_INITIALIZER */
	bool tried;
	char error[300];
};

/*
 * Load l once (thread-safe; later calls return the first outcome at once). Returns 0,
 * or -ENOENT with a one-line reason naming the library and the package to install.
 */
int lazy_lib_load(struct lazy_lib *l, char *err, size_t errlen);

#endif
