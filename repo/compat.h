/* The repository objects' compatibility rule, as the readers state it in their errors. */
#ifndef REPO_COMPAT_H
#define REPO_COMPAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/byteorder.h"

/*
 * The rule (repo/README.md, "Compatibility"): a reader accepts every earlier format
 * version of the config, packs, indexes and manifests, and refuses a newer one with one
 * line that names the versions and says "upgrade godwit". Version 0 is invalid.
 *
 * COMPAT_NEWER(what, newest) is that line as a static reason, for the decoders whose
 * errors are static strings: what is the object ("pack"), newest its FORMAT_VERSION
 * macro (a plain integer literal, so that it can be spelled into the string).
 */
#define COMPAT_STR_RAW(x) #x
#define COMPAT_STR(x) COMPAT_STR_RAW(x)
#define COMPAT_NEWER(what, newest)                                                        \
	what " format version is newer than " COMPAT_STR(newest) ", the newest this godwit " \
	     "reads: upgrade godwit"

/*
 * The format version in the header every repository object starts with (magic 4 bytes,
 * then version u16 little-endian), for a caller that names it in a message (buf, len).
 * Returns 0 (invalid) for a buffer too short to hold one.
 */
static inline unsigned compat_object_version(const uint8_t *buf, size_t len)
{
	return len >= 6 ? le16_decode(buf + 4) : 0;
}

#endif
