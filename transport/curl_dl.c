/* libcurl loaded on first use: see curl_dl.h. */
#define CURL_DL_IMPL 1
#include "transport/curl_dl.h"

#include "transport/lazy_lib.h"

struct curl_dl gw_curl;

#define SLOT(f) (void **)&gw_curl.f

static const char *const names[] = {
	"curl_global_init", "curl_global_cleanup", "curl_easy_init", "curl_easy_setopt",
	"curl_easy_getinfo", "curl_easy_perform", "curl_easy_reset", "curl_easy_cleanup",
	"curl_share_init", "curl_share_setopt", "curl_share_cleanup",
	"curl_slist_append", "curl_slist_free_all",
};

static void **const slots[] = {
	SLOT(global_init), SLOT(global_cleanup), SLOT(easy_init), SLOT(easy_setopt),
	SLOT(easy_getinfo), SLOT(easy_perform), SLOT(easy_reset), SLOT(easy_cleanup),
	SLOT(share_init), SLOT(share_setopt), SLOT(share_cleanup),
	SLOT(slist_append), SLOT(slist_free_all),
};

_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(slots) / sizeof(slots[0]),
	       "one name per slot");

/* The soname of libcurl 7.16 and later, as Debian's libcurl4 ships it. */
static struct lazy_lib curl_lib = {
	.soname = "libcurl.so.4",
	.package = "libcurl4",
	.what = "S3",
	.names = names,
	.slots = slots,
	.n = sizeof(names) / sizeof(names[0]),
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

int curl_dl_load(char *err, size_t errlen)
{
	return lazy_lib_load(&curl_lib, err, errlen);
}
