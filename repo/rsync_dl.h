/*
 * librsync, loaded when a disk is first diffed or patched (transport/lazy_lib.h): Debian's
 * librsync brings libb2 and libgomp, whose constructors cost every VMM resident memory.
 * Only repo/rsync_delta.c calls librsync, through the names below.
 */
#ifndef REPO_RSYNC_DL_H
#define REPO_RSYNC_DL_H

#include <stddef.h>
#include <stdio.h>
#include <librsync.h>

struct rsync_dl {
	rs_result (*job_iter)(rs_job_t *job, rs_buffers_t *buffers);
	rs_result (*job_free)(rs_job_t *job);
	char const *(*strerror)(rs_result r);
	rs_job_t *(*sig_begin)(size_t block_len, size_t strong_len, rs_magic_number sig_magic);
	rs_job_t *(*loadsig_begin)(rs_signature_t **sums);
	rs_result (*build_hash_table)(rs_signature_t *sums);
	void (*free_sumset)(rs_signature_t *sums);
	rs_job_t *(*delta_begin)(rs_signature_t *sums);
	rs_job_t *(*patch_begin)(rs_copy_cb *copy_cb, void *copy_arg);
};

extern struct rsync_dl gw_rsync;

/* Load librsync once (err, errlen): 0, or -ENOENT with a one-line reason in err. */
int rsync_dl_load(char *err, size_t errlen);

#ifndef RSYNC_DL_IMPL
#define rs_job_iter gw_rsync.job_iter
#define rs_job_free gw_rsync.job_free
#define rs_strerror gw_rsync.strerror
#define rs_sig_begin gw_rsync.sig_begin
#define rs_loadsig_begin gw_rsync.loadsig_begin
#define rs_build_hash_table gw_rsync.build_hash_table
#define rs_free_sumset gw_rsync.free_sumset
#define rs_delta_begin gw_rsync.delta_begin
#define rs_patch_begin gw_rsync.patch_begin
#endif

#endif
