/* Building and checking packs: records back to back, a trailer of entries, a trailing SHA-256. */
#include "snapshot/pack.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/codec_priv.h"
#include "transport/crc32c.h"

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

void pack_entry_encode(const struct pack_entry *e, uint8_t *out)
{
	struct enc c = enc_init(out, PACK_ENTRY_BYTES);

	enc_bytes(&c, e->id.b, BLOB_ID_BYTES);
	enc_u64(&c, e->offset);
	enc_u32(&c, e->stored_bytes);
	enc_u32(&c, e->raw_bytes);
	enc_u32(&c, e->crc);
	enc_u8(&c, e->type);
	enc_u8(&c, e->flags);
	enc_u16(&c, 0);
}

int pack_entry_decode(const uint8_t *p, struct pack_entry *e, uint64_t data_end,
		      const char **why)
{
	struct dec d = dec_init(p, PACK_ENTRY_BYTES);
	uint16_t rsvd = 0;

	dec_bytes(&d, e->id.b, BLOB_ID_BYTES);
	dec_u64(&d, &e->offset);
	dec_u32(&d, &e->stored_bytes);
	dec_u32(&d, &e->raw_bytes);
	dec_u32(&d, &e->crc);
	dec_u8(&d, &e->type);
	dec_u8(&d, &e->flags);
	dec_u16(&d, &rsvd);
	if (e->type == 0 || e->type >= BLOB_T_END)
		return fail(why, "unknown blob type", -EBADMSG);
	if (e->flags & ~PACK_BLOB_F_KNOWN)
		return fail(why, "unknown blob flags", -EBADMSG);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if (e->raw_bytes > BLOB_RAW_MAX_BYTES)
		return fail(why, "blob raw length over the limit", -EBADMSG);
	if ((e->flags & PACK_BLOB_F_ZSTD) ? (e->stored_bytes == 0 ||
					     e->stored_bytes >= e->raw_bytes)
					  : e->stored_bytes != e->raw_bytes)
		return fail(why, "blob stored length inconsistent with its raw length", -EBADMSG);
	if (e->offset < PACK_HEADER_BYTES ||
	    !range_ok(e->offset, PACK_RECORD_HEADER_BYTES + (uint64_t)e->stored_bytes, data_end))
		return fail(why, "blob record outside the pack", -EBADMSG);
	return 0;
}

int pack_record_check(const uint8_t *rec, size_t rec_len, const struct pack_entry *e,
		      const uint8_t **payload, const char **why)
{
	struct dec d = dec_init(rec, rec_len);
	uint8_t type = 0, flags = 0;
	uint16_t rsvd = 0;
	uint32_t raw = 0, stored = 0, crc = 0;

	if (rec_len != PACK_RECORD_HEADER_BYTES + (size_t)e->stored_bytes)
		return fail(why, "truncated blob record", -EPROTO);
	dec_u8(&d, &type);
	dec_u8(&d, &flags);
	dec_u16(&d, &rsvd);
	dec_u32(&d, &raw);
	dec_u32(&d, &stored);
	dec_u32(&d, &crc);
	if (type != e->type || flags != e->flags || rsvd != 0 || raw != e->raw_bytes ||
	    stored != e->stored_bytes || crc != e->crc)
		return fail(why, "blob record header does not match its entry", -EBADMSG);
	if (crc32c(0, rec + PACK_RECORD_HEADER_BYTES, stored) != crc)
		return fail(why, "blob checksum (crc32c) mismatch", -EBADMSG);
	*payload = rec + PACK_RECORD_HEADER_BYTES;
	return 0;
}

int pack_decode(const uint8_t *buf, size_t len, struct pack_entry **entries, uint32_t *n,
		const char **why)
{
	struct dec d = dec_init(buf, len);
	uint16_t version = 0, flags = 0;
	uint32_t trailer_len = 0, rsvd = 0, count = 0;
	uint64_t trailer_off, next;
	struct pack_entry *es = NULL;
	uint8_t sum[32];
	int rc;

	if (len < PACK_HEADER_BYTES)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, PACK_MAGIC, 4) != 0)
		return fail(why, "bad magic: not a pack", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version != PACK_FORMAT_VERSION)
		return fail(why, "unsupported pack format version", -EPROTONOSUPPORT);
	if (flags != 0)
		return fail(why, "unsupported pack flags", -EPROTONOSUPPORT);
	if (len > PACK_MAX_BYTES)
		return fail(why, "pack larger than the limit", -EMSGSIZE);
	if (len < PACK_MIN_BYTES)
		return fail(why, "truncated: no room for trailer and tail", -EPROTO);
	sha256_buf(buf, len - 32, sum);
	if (memcmp(sum, buf + len - 32, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);

	d = dec_init(buf, len);
	d.off = len - PACK_TAIL_BYTES;
	dec_u32(&d, &trailer_len);
	dec_u32(&d, &rsvd);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if (trailer_len < PACK_TRAILER_HEAD_BYTES ||
	    !range_ok(PACK_HEADER_BYTES, trailer_len, len - PACK_TAIL_BYTES))
		return fail(why, "trailer length outside the pack", -EBADMSG);
	trailer_off = len - PACK_TAIL_BYTES - trailer_len;
	d.off = (size_t)trailer_off;
	dec_u32(&d, &count);
	dec_u32(&d, &rsvd);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if ((uint64_t)count * PACK_ENTRY_BYTES != trailer_len - PACK_TRAILER_HEAD_BYTES)
		return fail(why, "trailer entry count does not match its length", -EBADMSG);
	if (count) {
		es = malloc((size_t)count * sizeof(*es));
		if (!es)
			return -ENOMEM;
	}
	next = PACK_HEADER_BYTES;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *payload;

		rc = pack_entry_decode(dec_take(&d, PACK_ENTRY_BYTES), &es[i], trailer_off, why);
		if (rc < 0)
			goto err_free;
		if (es[i].offset != next) {
			rc = fail(why, "blob records not contiguous", -EBADMSG);
			goto err_free;
		}
		rc = pack_record_check(buf + es[i].offset,
				       PACK_RECORD_HEADER_BYTES + (size_t)es[i].stored_bytes,
				       &es[i], &payload, why);
		if (rc < 0)
			goto err_free;
		next = es[i].offset + PACK_RECORD_HEADER_BYTES + es[i].stored_bytes;
	}
	if (next != trailer_off) {
		rc = fail(why, "bytes between the last record and the trailer", -EBADMSG);
		goto err_free;
	}
	*entries = es;
	*n = count;
	return 0;
err_free:
	free(es);
	return rc;
}

void pack_builder_init(struct pack_builder *pb)
{
	memset(pb, 0, sizeof(*pb));
}

static int builder_grow(struct pack_builder *pb, size_t need)
{
	size_t cap = pb->cap ? pb->cap : (1u << 20);
	uint8_t *p;

	if (need <= pb->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	p = realloc(pb->buf, cap);
	if (!p)
		return -ENOMEM;
	pb->buf = p;
	pb->cap = cap;
	return 0;
}

int pack_builder_begin(struct pack_builder *pb)
{
	int rc = builder_grow(pb, PACK_HEADER_BYTES);
	struct enc e;

	if (rc < 0)
		return rc;
	e = enc_init(pb->buf, PACK_HEADER_BYTES);
	enc_bytes(&e, PACK_MAGIC, 4);
	enc_u16(&e, PACK_FORMAT_VERSION);
	enc_u16(&e, 0);
	pb->len = PACK_HEADER_BYTES;
	pb->n = 0;
	return 0;
}

int pack_builder_reserve(struct pack_builder *pb, size_t max_payload, uint8_t **payload)
{
	/* Room for this record plus the trailer as it would be with it and the tail. */
	uint64_t need = (uint64_t)pb->len + PACK_RECORD_HEADER_BYTES + max_payload +
			PACK_TRAILER_HEAD_BYTES + (uint64_t)(pb->n + 1) * PACK_ENTRY_BYTES +
			PACK_TAIL_BYTES;
	int rc;

	if (need > PACK_MAX_BYTES)
		return -EMSGSIZE;
	rc = builder_grow(pb, (size_t)need);
	if (rc < 0)
		return rc;
	if (pb->n == pb->entries_cap) {
		uint32_t cap = pb->entries_cap ? pb->entries_cap * 2 : 256;
		struct pack_entry *es = realloc(pb->entries, (size_t)cap * sizeof(*es));

		if (!es)
			return -ENOMEM;
		pb->entries = es;
		pb->entries_cap = cap;
	}
	*payload = pb->buf + pb->len + PACK_RECORD_HEADER_BYTES;
	return 0;
}

void pack_builder_commit(struct pack_builder *pb, const struct blob_id *id, uint8_t type,
			 uint8_t flags, uint32_t raw_bytes, uint32_t stored_bytes,
			 struct pack_entry *out)
{
	struct pack_entry *e = &pb->entries[pb->n++];
	struct enc c = enc_init(pb->buf + pb->len, PACK_RECORD_HEADER_BYTES);

	e->id = *id;
	e->offset = pb->len;
	e->stored_bytes = stored_bytes;
	e->raw_bytes = raw_bytes;
	e->crc = crc32c(0, pb->buf + pb->len + PACK_RECORD_HEADER_BYTES, stored_bytes);
	e->type = type;
	e->flags = flags;
	enc_u8(&c, type);
	enc_u8(&c, flags);
	enc_u16(&c, 0);
	enc_u32(&c, raw_bytes);
	enc_u32(&c, stored_bytes);
	enc_u32(&c, e->crc);
	pb->len += PACK_RECORD_HEADER_BYTES + (size_t)stored_bytes;
	if (out)
		*out = *e;
}

int pack_builder_finish(struct pack_builder *pb, struct blob_id *pack_id)
{
	size_t trailer_len = PACK_TRAILER_HEAD_BYTES + (size_t)pb->n * PACK_ENTRY_BYTES;
	struct enc e;
	int rc;

	if (pb->n == 0)
		return -EINVAL;
	rc = builder_grow(pb, pb->len + trailer_len + PACK_TAIL_BYTES);
	if (rc < 0)
		return rc;
	e = enc_init(pb->buf + pb->len, trailer_len + PACK_TAIL_BYTES);
	enc_u32(&e, pb->n);
	enc_u32(&e, 0);
	for (uint32_t i = 0; i < pb->n; i++)
		pack_entry_encode(&pb->entries[i], enc_take(&e, PACK_ENTRY_BYTES));
	enc_u32(&e, (uint32_t)trailer_len);
	enc_u32(&e, 0);
	pb->len += trailer_len + 8;
	sha256_buf(pb->buf, pb->len, enc_take(&e, 32));
	pb->len += 32;
	sha256_buf(pb->buf, pb->len, pack_id->b);
	return 0;
}

void pack_builder_free(struct pack_builder *pb)
{
	free(pb->buf);
	free(pb->entries);
	pack_builder_init(pb);
}

void pack_name(const struct blob_id *pack_id, char out[PACK_NAME_BYTES])
{
	char hex[BLOB_ID_HEX_BYTES];

	blob_id_hex(pack_id, hex);
	snprintf(out, PACK_NAME_BYTES, "data/%.2s/%s", hex, hex);
}
