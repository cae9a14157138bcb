/* Little-endian encoding and bounds-checked decoding for the VMM's state records. */
#ifndef VMM_STATE_STATE_CODEC_H
#define VMM_STATE_STATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "util/byteorder.h"
#include "util/dec.h"

/*
 * Every integer in a state blob goes through these functions: written least significant
 * byte first, read back the same way (util/dec.h), never by casting a struct onto the
 * buffer. Both sides keep a sticky error, so a caller emits or parses a whole record and
 * checks once.
 */

/* A growing output buffer. err: 0, -ENOMEM, or -EFBIG past VS_ENC_MAX_BYTES. */
struct vs_enc {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

#define VS_ENC_MAX_BYTES (64u << 20) /* far above any real VM's state; a runaway guard */

void vs_enc_init(struct vs_enc *e);
/* Free the buffer (after a failure; on success the caller takes e->buf). */
void vs_enc_free(struct vs_enc *e);
void vs_enc_bytes(struct vs_enc *e, const void *p, size_t n);
void vs_enc_u8(struct vs_enc *e, uint8_t v);
void vs_enc_u16(struct vs_enc *e, uint16_t v);
void vs_enc_u32(struct vs_enc *e, uint32_t v);
void vs_enc_u64(struct vs_enc *e, uint64_t v);
/* Store v at an offset already written (a length patched in afterwards). */
void vs_enc_patch_u32(struct vs_enc *e, size_t at, uint32_t v);
/* Open a record {type u16, reserved u16, length u32}; returns where its length goes. */
size_t vs_enc_record_begin(struct vs_enc *e, uint16_t type);
/* Close the record opened at at: its length is everything written since. */
void vs_enc_record_end(struct vs_enc *e, size_t at);

/*
 * One description of a structure's wire layout serves both directions: with e set, the
 * vs_io_* calls write *v; with d set, they read into *v. Used for KVM's structures, whose
 * fields need no checking here (KVM validates what it is given).
 */
struct vs_io {
	struct vs_enc *e;
	struct dec *d;
};

void vs_io_u8(struct vs_io *io, uint8_t *v);
void vs_io_u16(struct vs_io *io, uint16_t *v);
void vs_io_u32(struct vs_io *io, uint32_t *v);
void vs_io_u64(struct vs_io *io, uint64_t *v);
/* KVM's __u64 is unsigned long long, a different type from uint64_t (unsigned long). */
void vs_io_k64(struct vs_io *io, __u64 *v);
void vs_io_bytes(struct vs_io *io, void *p, size_t n);

#endif
