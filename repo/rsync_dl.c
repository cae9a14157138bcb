/* librsync loaded on first use: see rsync_dl.h. */
#define RSYNC_DL_IMPL 1
#include "repo/rsync_dl.h"

#include "transport/lazy_lib.h"

struct rsync_dl gw_rsync;

#define SLOT(f) (void **)&gw_rsync.f

static const char *const names[] = {
	"rs_job_iter", "rs_job_free", "rs_strerror", "rs_sig_begin", "rs_loadsig_begin",
	"rs_build_hash_table", "rs_free_sumset", "rs_delta_begin", "rs_patch_begin",
};

static void **const slots[] = {
	SLOT(job_iter), SLOT(job_free), SLOT(strerror), SLOT(sig_begin), SLOT(loadsig_begin),
	SLOT(build_hash_table), SLOT(free_sumset), SLOT(delta_begin), SLOT(patch_begin),
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(slots) / sizeof(slots[0]),
	       "one name per slot");

static struct lazy_lib rsync_lib = {
	.soname = "librsync.so.2",
	.package = "librsync2",
	.what = "disk deltas (librsync)",
	.names = names,
	.slots = slots,
	.n = sizeof(names) / sizeof(names[0]),
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

int rsync_dl_load(char *err, size_t errlen)
{
	return lazy_lib_load(&rsync_lib, err, errlen);
}
