/*
 * libcurl, loaded when the first S3 client is made rather than when godwit starts.
 *
 * Debian's libcurl pulls in some twenty libraries (GnuTLS, Kerberos, LDAP, SSH, RTMP...)
 * whose loading and constructors cost a VMM that never talks to S3 about 3.5 MiB of
 * resident memory. Only transport/s3*.c call libcurl, through the names below, which this
 * header maps onto a table that curl_dl_load fills from libcurl.so.4.
 */
#ifndef TRANSPORT_CURL_DL_H
#define TRANSPORT_CURL_DL_H

#include <stddef.h>

/* The plain function declarations: curl.h's type-checking macros would hide the names. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

struct curl_dl {
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	CURLcode (*easy_perform)(CURL *h);
	void (*easy_reset)(CURL *h);
	void (*easy_cleanup)(CURL *h);
	CURLSH *(*share_init)(void);
	CURLSHcode (*share_setopt)(CURLSH *sh, CURLSHoption opt, ...);
	CURLSHcode (*share_cleanup)(CURLSH *sh);
	struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
	void (*slist_free_all)(struct curl_slist *l);
};

extern struct curl_dl gw_curl;

/*
 * Load libcurl once (err, errlen); thread-safe, cheap after the first call. Returns 0, or
 * -ENOENT with a one-line reason (library not installed, a symbol missing) in err.
 */
int curl_dl_load(char *err, size_t errlen);

#ifndef CURL_DL_IMPL
/* curl.h's own three-argument forms of these, replaced by the table's. */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#undef curl_share_setopt
#define curl_global_init gw_curl.global_init
#define curl_global_cleanup gw_curl.global_cleanup
#define curl_easy_init gw_curl.easy_init
#define curl_easy_setopt gw_curl.easy_setopt
#define curl_easy_getinfo gw_curl.easy_getinfo
#define curl_easy_perform gw_curl.easy_perform
#define curl_easy_reset gw_curl.easy_reset
#define curl_easy_cleanup gw_curl.easy_cleanup
#define curl_share_init gw_curl.share_init
#define curl_share_setopt gw_curl.share_setopt
#define curl_share_cleanup gw_curl.share_cleanup
#define curl_slist_append gw_curl.slist_append
#define curl_slist_free_all gw_curl.slist_free_all
#endif

#endif
