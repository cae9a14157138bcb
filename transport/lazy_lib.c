/* Loading a shared library on first use: see lazy_lib.h. */
#include "transport/lazy_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

static void lazy_lib_open(struct lazy_lib *l)
{
	void *lib = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);

	if (!lib) {
		snprintf(l->error, sizeof(l->error), "%s needs %s, which cannot be loaded (%s): "
			 "install it with 'apt-get install %s'", l->what, l->soname, dlerror(),
			 l->package);
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		void *p = dlsym(lib, l->names[i]);

		if (!p) {
			snprintf(l->error, sizeof(l->error), "%s has no symbol %s: reinstall %s",
				 l->soname, l->names[i], l->package);
			for (size_t j = 0; j < i; j++)
				*l->slots[j] = NULL;
			dlclose(lib);
			return;
		}
		*l->slots[i] = p;
	}
	/* Kept loaded for the life of the process. */
}

int lazy_lib_load(struct lazy_lib *l, char *err, size_t errlen)
{
	pthread_mutex_lock(&l->lock);
	if (!l->tried) {
		lazy_lib_open(l);
		l->tried = true;
	}
	pthread_mutex_unlock(&l->lock);
	if (l->error[0]) {
		if (err && errlen)
			snprintf(err, errlen, "%s", l->error);
		return -ENOENT;
	}
	return 0;
}
