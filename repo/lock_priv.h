/* Private to repo/lock*.c: what a lock object holds, and its encoding and name (lock_object.c). */
#ifndef REPO_LOCK_PRIV_H
#define REPO_LOCK_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repo/lock.h"

#define LOCK_TAG_HEX 32
#define LOCK_NONCE_HEX 16
#define LOCK_NAME_BYTES 96
#define LOCK_HOST_MAX 256
#define LOCK_BOOT_ID_MAX 64
#define LOCK_DEFAULT_HEARTBEAT_S 60
#define LOCK_DEFAULT_STALE_S 600

/* What one lock object says, plus what its name says. */
struct lock_info {
	enum repo_lock_kind kind;
	char tag[LOCK_TAG_HEX + 1]; /* "-" for prune */
	char vm[256];               /* "-" unless a plaintext repository's backup */
	char host[LOCK_HOST_MAX];
	char boot_id[LOCK_BOOT_ID_MAX];
	int64_t pid;
	uint64_t pid_start;
	uint64_t started_ns;
	uint64_t heartbeat_ns;
	char nonce[LOCK_NONCE_HEX + 1];
	bool future; /* a later format version: never stale, always a conflict */
	char display[256]; /* ours only: the VM name for messages, never written */
};

/* The kind's name in objects and messages ("backup", "prune", ...) (k: a valid kind). */
const char *lock_kind_name(enum repo_lock_kind k);

/* Whether objects of kind k carry the VM tag (backup and snapshot locks). */
bool lock_kind_tagged(enum repo_lock_kind k);

/*
 * Write i as a lock object's text into out (i, out, len): version 1 for the kinds it
 * knew, else version 2. Returns its length, or -EMSGSIZE when it does not fit.
 */
int lock_encode(const struct lock_info *i, char *out, size_t len);

/*
 * Decode a lock object (buf, len, out); untrusted, at most LOCK_OBJECT_MAX bytes.
 * Returns 0; 1 for a later version (out->future); -EBADMSG when it is not a lock object
 * of ours.
 */
int lock_decode(const uint8_t *buf, size_t len, struct lock_info *out);

/* "locks/KIND-[TAG-]NONCE-SEQ" of info at seq (i, seq, out). */
void lock_object_name(const struct lock_info *i, uint32_t seq, char out[LOCK_NAME_BYTES]);

/* The nonce in a lock object's name (name, nonce); false for names that are not ours. */
bool lock_name_nonce(const char *name, char nonce[LOCK_NONCE_HEX + 1]);

#endif
