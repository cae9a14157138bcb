/* Little-endian encoding and bounds-checked decoding for the VMM's state records. */
#include "vmm/state/state_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vs_enc_init(struct vs_enc *e)
{
	*e = (struct vs_enc){ 0 };
}

void vs_enc_free(struct vs_enc *e)
{
	free(e->buf);
	*e = (struct vs_enc){ 0 };
}

/* Room for n more bytes; sets err and returns NULL if there is none. */
static uint8_t *enc_room(struct vs_enc *e, size_t n)
{
	uint8_t *p;

	if (e->err)
		return NULL;
	if (n > VS_ENC_MAX_BYTES - e->len) {
		e->err = -EFBIG;
		return NULL;
	}
	if (e->len + n > e->cap) {
		size_t cap = e->cap ? e->cap : 4096;

		while (cap < e->len + n)
			cap *= 2;
		p = realloc(e->buf, cap);
		if (!p) {
			e->err = -ENOMEM;
			return NULL;
		}
		e->buf = p;
		e->cap = cap;
	}
	p = e->buf + e->len;
	e->len += n;
	return p;
}

void vs_enc_bytes(struct vs_enc *e, const void *p, size_t n)
{
	uint8_t *dst = enc_room(e, n);

	if (dst && n)
		memcpy(dst, p, n);
}

void vs_enc_u8(struct vs_enc *e, uint8_t v)
{
	vs_enc_bytes(e, &v, 1);
}

void vs_enc_u16(struct vs_enc *e, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };

	vs_enc_bytes(e, b, sizeof(b));
}

void vs_enc_u32(struct vs_enc *e, uint32_t v)
{
	uint8_t b[4];

	le32_encode(b, v);
	vs_enc_bytes(e, b, sizeof(b));
}

void vs_enc_u64(struct vs_enc *e, uint64_t v)
{
	uint8_t b[8];

	le64_encode(b, v);
	vs_enc_bytes(e, b, sizeof(b));
}

void vs_enc_patch_u32(struct vs_enc *e, size_t at, uint32_t v)
{
	if (!e->err && at <= e->len && e->len - at >= 4)
		le32_encode(e->buf + at, v);
}

size_t vs_enc_record_begin(struct vs_enc *e, uint16_t type)
{
	size_t at;

	vs_enc_u16(e, type);
	vs_enc_u16(e, 0);
	at = e->len;
	vs_enc_u32(e, 0);
	return at;
}

void vs_enc_record_end(struct vs_enc *e, size_t at)
{
	if (e->err)
		return;
	if (e->len - at - 4 > UINT32_MAX) {
		e->err = -EFBIG;
		return;
	}
	vs_enc_patch_u32(e, at, (uint32_t)(e->len - at - 4));
}

void vs_io_u8(struct vs_io *io, uint8_t *v)
{
	if (io->e)
		vs_enc_u8(io->e, *v);
	else
		dec_u8(io->d, v);
}

void vs_io_u16(struct vs_io *io, uint16_t *v)
{
	if (io->e)
		vs_enc_u16(io->e, *v);
	else
		dec_u16(io->d, v);
}

void vs_io_u32(struct vs_io *io, uint32_t *v)
{
	if (io->e)
		vs_enc_u32(io->e, *v);
	else
		dec_u32(io->d, v);
}

void vs_io_u64(struct vs_io *io, uint64_t *v)
{
	if (io->e)
		vs_enc_u64(io->e, *v);
	else
		dec_u64(io->d, v);
}

void vs_io_k64(struct vs_io *io, __u64 *v)
{
	uint64_t w;

	if (io->e) {
		vs_enc_u64(io->e, *v);
	} else {
		dec_u64(io->d, &w);
		*v = w;
	}
}

void vs_io_bytes(struct vs_io *io, void *p, size_t n)
{
	if (io->e)
		vs_enc_bytes(io->e, p, n);
	else
		dec_bytes(io->d, p, n);
}
