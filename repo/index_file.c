/* Encoding and checking index files: blob entries grouped by pack, maybe sealed, then a SHA-256. */
#include "repo/index_file.h"
#include "repo/compat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/codec_priv.h"

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

int index_file_encode(const struct index_file *ix, struct repo_crypto *c, uint8_t **out,
		      size_t *len)
{
	uint64_t body_len = INDEX_BODY_HEAD_BYTES, total;
	size_t body_off = INDEX_PREFIX_BYTES + (c ? REPO_SEAL_NONCE_BYTES : 0);
	uint8_t *buf;
	struct enc e;
	int rc;

	if (ix->npacks == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < ix->npacks; i++) {
		if (ix->packs[i].nblobs == 0)
			return -EINVAL;
		for (uint32_t j = 0; j < ix->packs[i].nblobs; j++)
			if (!(ix->packs[i].entries[j].flags & PACK_BLOB_F_AEAD) != !c)
				return -EINVAL;
		body_len += INDEX_PACK_HEADER_BYTES + (uint64_t)ix->packs[i].nblobs * PACK_ENTRY_BYTES;
	}
	total = INDEX_PREFIX_BYTES + body_len + (c ? REPO_SEAL_OVERHEAD : 0) + INDEX_TAIL_BYTES;
	if (total > INDEX_MAX_BYTES)
		return -EMSGSIZE;
	buf = malloc((size_t)total);
	if (!buf)
		return -ENOMEM;
	e = enc_init(buf, INDEX_PREFIX_BYTES);
	enc_bytes(&e, INDEX_MAGIC, 4);
	enc_u16(&e, INDEX_FORMAT_VERSION);
	enc_u16(&e, c ? INDEX_F_AEAD : 0);
	e = enc_init(buf + body_off, (size_t)body_len);
	enc_u32(&e, ix->npacks);
	enc_u32(&e, 0);
	for (uint32_t i = 0; i < ix->npacks; i++) {
		const struct index_pack *p = &ix->packs[i];

		enc_bytes(&e, p->pack_id.b, BLOB_ID_BYTES);
		enc_u64(&e, p->pack_bytes);
		enc_u32(&e, p->nblobs);
		enc_u32(&e, 0);
		for (uint32_t j = 0; j < p->nblobs; j++)
			pack_entry_encode(&p->entries[j], enc_take(&e, PACK_ENTRY_BYTES));
	}
	assert(e.off == body_len);
	if (c) {
		rc = repo_crypto_seal(c, REPO_SEAL_META, buf, INDEX_PREFIX_BYTES, buf + body_off,
				      (size_t)body_len, buf + INDEX_PREFIX_BYTES);
		if (rc < 0) {
			free(buf);
			return rc;
		}
	}
	sha256_buf(buf, (size_t)total - INDEX_TAIL_BYTES, buf + total - INDEX_TAIL_BYTES);
	*out = buf;
	*len = (size_t)total;
	return 0;
}

/* Decode a plaintext body: the body head and the pack groups (body, len, aead, out, why). */
static int decode_body(const uint8_t *body, size_t len, bool aead, struct index_file *out,
		       const char **why)
{
	struct dec d = dec_init(body, len);
	uint32_t npacks = 0, rsvd = 0;
	uint64_t nentries = 0;
	struct index_pack *packs;
	struct pack_entry *entries = NULL;
	int rc;

	if (!dec_u32(&d, &npacks) || !dec_u32(&d, &rsvd))
		return fail(why, "truncated", -EPROTO);
	if (rsvd)
		return fail(why, "reserved field not zero", -EBADMSG);
	if (npacks == 0)
		return fail(why, "no packs", -EBADMSG);

	/* First pass: check the counts against the length before allocating anything. */
	{
		struct dec w = d;

		for (uint32_t i = 0; i < npacks; i++) {
			const uint8_t *h = dec_take(&w, INDEX_PACK_HEADER_BYTES);
			uint32_t nb;

			if (!h)
				return fail(why, "pack count exceeds the index length", -EBADMSG);
			nb = le32_decode(h + 40);
			if (nb == 0)
				return fail(why, "pack without blobs", -EBADMSG);
			if (!dec_take(&w, (uint64_t)nb * PACK_ENTRY_BYTES))
				return fail(why, "blob count exceeds the index length", -EBADMSG);
			nentries += nb;
		}
		if (dec_left(&w) != 0)
			return fail(why, "trailing bytes before the checksum", -EBADMSG);
	}
	packs = calloc(npacks, sizeof(*packs));
	entries = malloc((size_t)nentries * sizeof(*entries));
	if (!packs || !entries) {
		rc = -ENOMEM;
		goto err_free;
	}
	nentries = 0;
	for (uint32_t i = 0; i < npacks; i++) {
		struct index_pack *p = &packs[i];
		uint64_t data_end;

		dec_bytes(&d, p->pack_id.b, BLOB_ID_BYTES);
		dec_u64(&d, &p->pack_bytes);
		dec_u32(&d, &p->nblobs);
		dec_u32(&d, &rsvd);
		if (rsvd) {
			rc = fail(why, "reserved field not zero", -EBADMSG);
			goto err_free;
		}
		data_end = pack_data_end_bound(p->pack_bytes, aead);
		if (data_end < PACK_HEADER_BYTES || p->pack_bytes > PACK_MAX_BYTES) {
			rc = fail(why, "pack size out of range", -EBADMSG);
			goto err_free;
		}
		p->entries = entries + nentries;
		for (uint32_t j = 0; j < p->nblobs; j++) {
			rc = pack_entry_decode(dec_take(&d, PACK_ENTRY_BYTES), &p->entries[j],
					       data_end, why);
			if (rc < 0)
				goto err_free;
			if (!(p->entries[j].flags & PACK_BLOB_F_AEAD) != !aead) {
				rc = fail(why, "blob sealing does not match the index", -EBADMSG);
				goto err_free;
			}
		}
		nentries += p->nblobs;
	}
	out->npacks = npacks;
	out->packs = packs;
	return 0;
err_free:
	free(entries);
	free(packs);
	return rc;
}

int index_file_decode(const uint8_t *buf, size_t len, struct repo_crypto *c,
		      struct index_file *out, const char **why)
{
	struct dec d = dec_init(buf, len);
	uint16_t version = 0, flags = 0;
	const uint8_t *sealed;
	uint8_t sum[32], *body;
	size_t sealed_len;
	bool aead;
	int rc;

	if (len < 8)
		return fail(why, "truncated header", -EPROTO);
	if (memcmp(buf, INDEX_MAGIC, 4) != 0)
		return fail(why, "bad magic: not an index file", -ENOMSG);
	dec_take(&d, 4);
	dec_u16(&d, &version);
	dec_u16(&d, &flags);
	if (version == 0)
		return fail(why, "index format version 0 is invalid", -EBADMSG);
	if (version > INDEX_FORMAT_VERSION)
		return fail(why, compat_newer("index", version, INDEX_FORMAT_VERSION),
			    -EPROTONOSUPPORT);
	if (flags & ~INDEX_F_AEAD)
		return fail(why, "index flags this godwit does not know: upgrade godwit", -EPROTONOSUPPORT);
	aead = flags & INDEX_F_AEAD;
	if (aead && !c)
		return fail(why, "sealed index: the repository key is needed", -ENOKEY);
	if (!aead && c)
		return fail(why, "plaintext index in an encrypted repository", -EBADMSG);
	if (len > INDEX_MAX_BYTES)
		return fail(why, "index larger than the limit", -EMSGSIZE);
	if (len < INDEX_HEADER_BYTES + INDEX_TAIL_BYTES + (aead ? REPO_SEAL_OVERHEAD : 0))
		return fail(why, "truncated", -EPROTO);
	sha256_buf(buf, len - INDEX_TAIL_BYTES, sum);
	if (memcmp(sum, buf + len - INDEX_TAIL_BYTES, 32) != 0)
		return fail(why, "checksum mismatch", -EBADMSG);
	sealed = buf + INDEX_PREFIX_BYTES;
	sealed_len = len - INDEX_PREFIX_BYTES - INDEX_TAIL_BYTES;
	if (!aead)
		return decode_body(sealed, sealed_len, false, out, why);
	body = malloc(sealed_len - REPO_SEAL_OVERHEAD);
	if (!body)
		return -ENOMEM;
	rc = repo_crypto_open(c, REPO_SEAL_META, buf, INDEX_PREFIX_BYTES, sealed, sealed_len, body);
	if (rc < 0)
		rc = fail(why, "authentication failed: the index was altered", rc);
	else
		rc = decode_body(body, sealed_len - REPO_SEAL_OVERHEAD, true, out, why);
	free(body);
	return rc;
}

void index_file_free(struct index_file *ix)
{
	if (ix->packs && ix->npacks)
		free(ix->packs[0].entries); /* decode allocates all entries in one array */
	free(ix->packs);
	ix->packs = NULL;
	ix->npacks = 0;
}

void index_file_name(const uint8_t *buf, size_t len, char out[INDEX_NAME_BYTES])
{
	uint8_t sum[32];
	char hex[65];

	sha256_buf(buf, len, sum);
	hex_encode(sum, 32, hex);
	snprintf(out, INDEX_NAME_BYTES, "index/%s", hex);
}
