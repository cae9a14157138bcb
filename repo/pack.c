/* Building and checking packs, plaintext or sealed: records, a trailer of entries, a SHA-256. */
#include "repo/pack.h"
#include "repo/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/codec_priv.h"
#include "util/crc32c.h"

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

/* AAD of the sealed trailer and tail: the pack header and a 4-byte tag. */
#define PACK_META_AAD_BYTES (PACK_HEADER_BYTES + 4)

static void meta_aad(const uint8_t *header, const char tag[4], uint8_t out[PACK_META_AAD_BYTES])
{
	memcpy(out, header, PACK_HEADER_BYTES);
	memcpy(out + PACK_HEADER_BYTES, tag, 4);
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

uint64_t pack_record_bytes(const struct pack_entry *e)
{
	return (e->flags & PACK_BLOB_F_AEAD ? 0 : PACK_RECORD_HEADER_BYTES) + (uint64_t)e->stored_bytes;
}

uint64_t pack_payload_offset(const struct pack_entry *e)
{
	return e->offset + pack_record_bytes(e) - e->stored_bytes;
}

uint64_t pack_data_end_bound(uint64_t pack_bytes, bool aead)
{
	uint64_t after = aead ? REPO_SEAL_OVERHEAD + PACK_TRAILER_HEAD_BYTES + PACK_ENTRY_BYTES +
				PACK_AEAD_TAIL_BYTES
			      : PACK_TRAILER_HEAD_BYTES + PACK_ENTRY_BYTES + PACK_TAIL_BYTES;

	return pack_bytes > after ? pack_bytes - after : 0;
}

int pack_entry_decode(const uint8_t *p, struct pack_entry *e, uint64_t data_end,
		      const char **why)
{
	struct dec d = dec_init(p, PACK_ENTRY_BYTES);
	uint16_t rsvd = 0;
	uint64_t payload;

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
	if ((e->flags & PACK_BLOB_F_AEAD) && e->stored_bytes < REPO_SEAL_OVERHEAD)
		return fail(why, "sealed blob shorter than its nonce and tag", -EBADMSG);
	payload = e->stored_bytes - (e->flags & PACK_BLOB_F_AEAD ? REPO_SEAL_OVERHEAD : 0);
	if ((e->flags & PACK_BLOB_F_ZSTD) ? (payload == 0 || payload >= e->raw_bytes ||
					     e->raw_bytes > zstd_raw_bound(payload))
					  : payload != e->raw_bytes)
		return fail(why, "blob stored length inconsistent with its raw length", -EBADMSG);
	if (e->offset < PACK_HEADER_BYTES || !range_ok(e->offset, pack_record_bytes(e), data_end))
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

	if (rec_len != pack_record_bytes(e))
		return fail(why, "truncated blob record", -EPROTO);
	if (e->flags & PACK_BLOB_F_AEAD) {
		/* No header to compare: the sealed trailer or index entry is the only truth. */
		if (crc32c(0, rec, rec_len) != e->crc)
			return fail(why, "blob checksum (crc32c) mismatch", -EBADMSG);
		*payload = rec;
		return 0;
	}
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

void pack_blob_aad(const struct pack_entry *e, uint8_t out[PACK_BLOB_AAD_BYTES])
{
	struct enc c = enc_init(out, PACK_BLOB_AAD_BYTES);

	enc_bytes(&c, e->id.b, BLOB_ID_BYTES);
	enc_u8(&c, e->type);
	enc_u8(&c, e->flags);
	enc_u16(&c, 0);
	enc_u32(&c, e->raw_bytes);
}

int pack_blob_unseal(struct repo_crypto *c, const struct pack_entry *e, const uint8_t *sealed,
		     uint8_t *out)
{
	uint8_t aad[PACK_BLOB_AAD_BYTES];

	if (!(e->flags & PACK_BLOB_F_AEAD))
		return -EBADMSG;
	pack_blob_aad(e, aad);
	return repo_crypto_open(c, REPO_SEAL_DATA, aad, sizeof(aad), sealed, e->stored_bytes, out);
}

/*
 * Decode count trailer entries from d and check them against the pack (d, count, buf,
 * trailer_off, aead, entries, why): every record inside the data area, contiguous from
 * the header to the trailer, with the pack's AEAD flag, and matching its record.
 */
static int decode_entries(struct dec *d, uint32_t count, const uint8_t *buf, uint64_t trailer_off,
			  bool aead, struct pack_entry **entries, const char **why)
{
	struct pack_entry *es = NULL;
	uint64_t next = PACK_HEADER_BYTES;
	int rc;

	if (count) {
		es = malloc((size_t)count * sizeof(*es));
		if (!es)
			return -ENOMEM;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *payload;

		rc = pack_entry_decode(dec_take(d, PACK_ENTRY_BYTES), &es[i], trailer_off, why);
		if (rc < 0)
			goto err_free;
		if (!(es[i].flags & PACK_BLOB_F_AEAD) != !aead) {
			rc = fail(why, "blob sealing does not match its pack", -EBADMSG);
			goto err_free;
		}
		if (es[i].offset != next) {
			rc = fail(why, "blob records not contiguous", -EBADMSG);
			goto err_free;
		}
		rc = pack_record_check(buf + es[i].offset, (size_t)pack_record_bytes(&es[i]), &es[i],
				       &payload, why);
		if (rc < 0)
			goto err_free;
		next = es[i].offset + pack_record_bytes(&es[i]);
	}
	if (next != trailer_off) {
		rc = fail(why, "bytes between the last record and the trailer", -EBADMSG);
		goto err_free;
	}
	*entries = es;
	return 0;
err_free:
	free(es);
	return rc;
}

/* The sealed form after the checksum: open tail and trailer, then decode (see pack_decode). */
static int decode_sealed(const uint8_t *buf, size_t len, struct repo_crypto *c,
			 struct pack_entry **entries, uint32_t *n, const char **why)
{
	uint8_t aad[PACK_META_AAD_BYTES], tail[8], *plain;
	uint32_t trailer_len, rsvd, count = 0;
	uint64_t trailer_off, tail_off = len - PACK_AEAD_TAIL_BYTES;
	struct dec d;
	int rc;

	meta_aad(buf, "TAIL", aad);
	rc = repo_crypto_open(c, REPO_SEAL_META, aad, sizeof(aad), buf + tail_off,
			      PACK_SEALED_TAIL_BYTES, tail);
	if (rc < 0)
		return fail(why, "tail authentication failed: the pack was altered", rc);
	trailer_len = le32_decode(tail);
	rsvd = le32_decode(tail + 4);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if (trailer_len < REPO_SEAL_OVERHEAD + PACK_TRAILER_HEAD_BYTES ||
	    !range_ok(PACK_HEADER_BYTES, trailer_len, tail_off))
		return fail(why, "trailer length outside the pack", -EBADMSG);
	trailer_off = tail_off - trailer_len;
	plain = malloc(trailer_len - REPO_SEAL_OVERHEAD);
	if (!plain)
		return -ENOMEM;
	meta_aad(buf, "TRLR", aad);
	rc = repo_crypto_open(c, REPO_SEAL_META, aad, sizeof(aad), buf + trailer_off, trailer_len,
			      plain);
	if (rc < 0) {
		rc = fail(why, "trailer authentication failed: the pack was altered", rc);
		goto out;
	}
	d = dec_init(plain, trailer_len - REPO_SEAL_OVERHEAD);
	dec_u32(&d, &count);
	dec_u32(&d, &rsvd);
	if (rsvd) {
		rc = fail(why, "reserved field not zero", -EBADMSG);
		goto out;
	}
	if ((uint64_t)count * PACK_ENTRY_BYTES != dec_left(&d)) {
		rc = fail(why, "trailer entry count does not match its length", -EBADMSG);
		goto out;
	}
	rc = decode_entries(&d, count, buf, trailer_off, true, entries, why);
	if (rc == 0)
		*n = count;
out:
	free(plain);
	return rc;
}

int pack_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		struct pack_entry **entries, uint32_t *n, const char **why)
{
	struct dec d = dec_init(buf, len);
	uint16_t version = 0, flags = 0;
	uint32_t trailer_len = 0, rsvd = 0, count = 0;
	uint64_t trailer_off;
	uint8_t sum[32];
	bool aead;
	int rc;

	if (len < PACK_HEADER_BYTES)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, PACK_MAGIC, 4) != 0)
		return fail(why, "bad magic: not a pack", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version == 0)
		return fail(why, "pack format version 0 is invalid", -EBADMSG);
	if (version > PACK_FORMAT_VERSION)
		return fail(why, compat_newer("pack", version, PACK_FORMAT_VERSION),
			    -EPROTONOSUPPORT);
	if (flags & ~PACK_F_AEAD)
		return fail(why, "pack flags this godwit does not know: upgrade godwit", -EPROTONOSUPPORT);
	aead = flags & PACK_F_AEAD;
	if (aead && !c)
		return fail(why, "sealed pack: the repository key is needed", -ENOKEY);
	if (!aead && c)
		return fail(why, "plaintext pack in an encrypted repository", -EBADMSG);
	if (len > PACK_MAX_BYTES)
		return fail(why, "pack larger than the limit", -EMSGSIZE);
	if (len < (aead ? PACK_AEAD_MIN_BYTES : PACK_MIN_BYTES))
		return fail(why, "truncated: no room for trailer and tail", -EPROTO);
	sha256_buf(buf, len - 32, sum);
	if (memcmp(sum, buf + len - 32, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);
	*entries = NULL;
	*n = 0;
	if (aead)
		return decode_sealed(buf, len, c, entries, n, why);

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
	d.len = len - PACK_TAIL_BYTES;
	dec_u32(&d, &count);
	dec_u32(&d, &rsvd);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if ((uint64_t)count * PACK_ENTRY_BYTES != trailer_len - PACK_TRAILER_HEAD_BYTES)
		return fail(why, "trailer entry count does not match its length", -EBADMSG);
	rc = decode_entries(&d, count, buf, trailer_off, false, entries, why);
	if (rc == 0)
		*n = count;
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

int pack_builder_begin(struct pack_builder *pb, struct repo_crypto *c)
{
	int rc = builder_grow(pb, PACK_HEADER_BYTES);
	struct enc e;

	if (rc < 0)
		return rc;
	e = enc_init(pb->buf, PACK_HEADER_BYTES);
	enc_bytes(&e, PACK_MAGIC, 4);
	enc_u16(&e, PACK_FORMAT_VERSION);
	enc_u16(&e, c ? PACK_F_AEAD : 0);
	pb->len = PACK_HEADER_BYTES;
	pb->n = 0;
	pb->crypto = c;
	return 0;
}

int pack_builder_reserve(struct pack_builder *pb, size_t max_payload, uint8_t **payload)
{
	/* Room for this record plus the trailer as it would be with it and the tail. */
	uint64_t need = (uint64_t)pb->len + max_payload + PACK_TRAILER_HEAD_BYTES +
			(uint64_t)(pb->n + 1) * PACK_ENTRY_BYTES;
	size_t before; /* bytes of the record before its payload */
	int rc;

	if (pb->crypto) {
		before = REPO_SEAL_NONCE_BYTES;
		need += REPO_SEAL_OVERHEAD + REPO_SEAL_OVERHEAD + PACK_AEAD_TAIL_BYTES;
	} else {
		before = PACK_RECORD_HEADER_BYTES;
		need += PACK_RECORD_HEADER_BYTES + PACK_TAIL_BYTES;
	}
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
	*payload = pb->buf + pb->len + before;
	return 0;
}

int pack_builder_commit(struct pack_builder *pb, const struct blob_id *id, uint8_t type,
			uint8_t flags, uint32_t raw_bytes, uint32_t payload_bytes,
			struct pack_entry *out)
{
	struct pack_entry *e = &pb->entries[pb->n];
	uint8_t *rec = pb->buf + pb->len;

	e->id = *id;
	e->offset = pb->len;
	e->raw_bytes = raw_bytes;
	e->type = type;
	if (pb->crypto) {
		uint8_t aad[PACK_BLOB_AAD_BYTES];
		int rc;

		e->flags = flags | PACK_BLOB_F_AEAD;
		e->stored_bytes = payload_bytes + REPO_SEAL_OVERHEAD;
		pack_blob_aad(e, aad);
		rc = repo_crypto_seal(pb->crypto, REPO_SEAL_DATA, aad, sizeof(aad),
				      rec + REPO_SEAL_NONCE_BYTES, payload_bytes, rec);
		if (rc < 0)
			return rc;
		e->crc = crc32c(0, rec, e->stored_bytes);
	} else {
		struct enc c = enc_init(rec, PACK_RECORD_HEADER_BYTES);

		e->flags = flags;
		e->stored_bytes = payload_bytes;
		e->crc = crc32c(0, rec + PACK_RECORD_HEADER_BYTES, payload_bytes);
		enc_u8(&c, type);
		enc_u8(&c, e->flags);
		enc_u16(&c, 0);
		enc_u32(&c, raw_bytes);
		enc_u32(&c, payload_bytes);
		enc_u32(&c, e->crc);
	}
	pb->len += (size_t)pack_record_bytes(e);
	pb->n++;
	if (out)
		*out = *e;
	return 0;
}

/* The sealed form's trailer and tail (pb, trailer_len = the plaintext trailer's bytes). */
static int builder_finish_sealed(struct pack_builder *pb, size_t trailer_len)
{
	size_t sealed_len = trailer_len + REPO_SEAL_OVERHEAD;
	uint8_t aad[PACK_META_AAD_BYTES], tail[8], *t = pb->buf + pb->len;
	struct enc e;
	int rc;

	/* The plaintext trailer is encoded where its ciphertext goes and sealed in place. */
	e = enc_init(t + REPO_SEAL_NONCE_BYTES, trailer_len);
	enc_u32(&e, pb->n);
	enc_u32(&e, 0);
	for (uint32_t i = 0; i < pb->n; i++)
		pack_entry_encode(&pb->entries[i], enc_take(&e, PACK_ENTRY_BYTES));
	meta_aad(pb->buf, "TRLR", aad);
	rc = repo_crypto_seal(pb->crypto, REPO_SEAL_META, aad, sizeof(aad),
			      t + REPO_SEAL_NONCE_BYTES, trailer_len, t);
	if (rc < 0)
		return rc;
	pb->len += sealed_len;
	le32_encode(tail, (uint32_t)sealed_len);
	le32_encode(tail + 4, 0);
	meta_aad(pb->buf, "TAIL", aad);
	rc = repo_crypto_seal(pb->crypto, REPO_SEAL_META, aad, sizeof(aad), tail, sizeof(tail),
			      pb->buf + pb->len);
	if (rc < 0)
		return rc;
	pb->len += PACK_SEALED_TAIL_BYTES;
	return 0;
}

int pack_builder_finish(struct pack_builder *pb, struct blob_id *pack_id)
{
	size_t trailer_len = PACK_TRAILER_HEAD_BYTES + (size_t)pb->n * PACK_ENTRY_BYTES;
	struct enc e;
	int rc;

	if (pb->n == 0)
		return -EINVAL;
	rc = builder_grow(pb, pb->len + trailer_len + REPO_SEAL_OVERHEAD + PACK_AEAD_TAIL_BYTES);
	if (rc < 0)
		return rc;
	if (pb->crypto) {
		rc = builder_finish_sealed(pb, trailer_len);
		if (rc < 0)
			return rc;
	} else {
		e = enc_init(pb->buf + pb->len, trailer_len + PACK_TAIL_BYTES - 32);
		enc_u32(&e, pb->n);
		enc_u32(&e, 0);
		for (uint32_t i = 0; i < pb->n; i++)
			pack_entry_encode(&pb->entries[i], enc_take(&e, PACK_ENTRY_BYTES));
		enc_u32(&e, (uint32_t)trailer_len);
		enc_u32(&e, 0);
		pb->len += trailer_len + 8;
	}
	sha256_buf(pb->buf, pb->len, pb->buf + pb->len);
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
