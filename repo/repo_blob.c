/* Storing and fetching blobs: dedup by id, per-blob zstd and sealing, packs near their target size, checked reads. */
#include "repo/repo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo_priv.h"

int blob_id_compute(const struct repo *r, const void *data, size_t len, struct blob_id *out)
{
	switch (r->cfg.id_algo) {
	case REPO_ID_SHA256:
		sha256_buf(data, len, out->b);
		return 0;
	case REPO_ID_HMAC_SHA256:
		/* repo_open_keyed made the keys: an encrypted repository never opens without. */
		return r->crypto ? repo_crypto_blob_id(r->crypto, data, len, out->b) : -EIO;
	default:
		return -EIO; /* repo_config_decode admits no other algorithm */
	}
}

int blob_id_matches(const struct repo *r, const struct blob_id *id, const void *data,
		    size_t len, bool *same)
{
	const uint8_t *p = data;
	struct blob_id got;
	int rc;

	if (blob_id_is_zero(id)) {
		*same = true;
		for (size_t i = 0; i < len && *same; i++)
			*same = p[i] == 0;
		return 0;
	}
	rc = blob_id_compute(r, data, len, &got);
	*same = rc == 0 && blob_id_eq(&got, id);
	return rc;
}

int repo_set_zstd_level(struct repo *r, int level)
{
	if (level < -7 || level > 19 || level == 0)
		return -EINVAL;
	r->zstd_level = level;
	return 0;
}

/* Write the index file for every pack written since the last one (r). */
static int repo_write_index(struct repo *r)
{
	struct index_file ix;
	char name[INDEX_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	if (r->nunindexed == 0)
		return 0;
	ix.npacks = r->nunindexed;
	ix.packs = calloc(r->nunindexed, sizeof(*ix.packs));
	if (!ix.packs)
		return -ENOMEM;
	for (uint32_t i = 0; i < r->nunindexed; i++) {
		const struct repo_unindexed *u = &r->unindexed[i];

		ix.packs[i].pack_id = r->packs[u->pack].id;
		ix.packs[i].pack_bytes = r->packs[u->pack].bytes;
		ix.packs[i].nblobs = u->n;
		ix.packs[i].entries = u->entries;
	}
	rc = index_file_encode(&ix, r->crypto, &buf, &len);
	free(ix.packs);
	if (rc < 0)
		return rc;
	index_file_name(buf, len, name);
	rc = backend_put(r->be, name, buf, len);
	free(buf);
	if (rc == -EEXIST)
		rc = 0; /* the same bytes: same packs, same entries */
	if (rc < 0)
		return rc;
	for (uint32_t i = 0; i < r->nunindexed; i++)
		free(r->unindexed[i].entries);
	r->nunindexed = 0;
	r->stats.indexes_written++;
	return 0;
}

/* Seal the pack being built, write it and queue its entries for the next index file (r). */
static int repo_write_pack(struct repo *r)
{
	struct repo_unindexed *u;
	struct blob_id pack_id;
	char name[PACK_NAME_BYTES];
	int rc;

	if (!r->building)
		return 0;
	if (r->nunindexed == r->unindexed_cap) {
		uint32_t cap = r->unindexed_cap ? r->unindexed_cap * 2 : 16;

		u = realloc(r->unindexed, (size_t)cap * sizeof(*u));
		if (!u)
			return -ENOMEM;
		r->unindexed = u;
		r->unindexed_cap = cap;
	}
	u = &r->unindexed[r->nunindexed];
	u->entries = malloc((size_t)r->pb.n * sizeof(*u->entries));
	if (!u->entries)
		return -ENOMEM;
	memcpy(u->entries, r->pb.entries, (size_t)r->pb.n * sizeof(*u->entries));
	u->n = r->pb.n;
	u->pack = r->cur_pack;
	rc = pack_builder_finish(&r->pb, &pack_id);
	if (rc < 0)
		goto err_free;
	pack_name(&pack_id, name);
	rc = backend_put(r->be, name, r->pb.buf, r->pb.len);
	u->ours = rc == 0;
	if (rc == -EEXIST)
		rc = 0; /* same id, same bytes: an interrupted earlier run wrote it */
	if (rc < 0)
		goto err_free;
	rc = repo_pack_slot_publish(r, r->cur_pack, &pack_id, r->pb.len);
	if (rc < 0)
		goto err_free;
	r->nunindexed++;
	r->building = false;
	r->stats.packs_written++;
	if (r->nunindexed >= REPO_INDEX_AUTO_PACKS)
		return repo_write_index(r);
	return 0;
err_free:
	free(u->entries);
	return rc;
}

/* Start a pack if none is being built (r). */
static int repo_pack_start(struct repo *r)
{
	int rc;

	if (r->building)
		return 0;
	rc = repo_pack_slot_new(r, &r->cur_pack);
	if (rc < 0)
		return rc;
	rc = pack_builder_begin(&r->pb, r->crypto);
	if (rc < 0) {
		r->npacks--;
		return rc;
	}
	r->building = true;
	return 0;
}

/* Append a blob whose id is new to the pack being built (r, type, data, len, id). */
static int repo_pack_append(struct repo *r, enum blob_type type, const void *data, size_t len,
			    const struct blob_id *id)
{
	struct pack_entry e;
	struct blob_loc loc;
	uint8_t *payload;
	uint8_t flags = 0;
	size_t stored = len;
	int rc;

	/* Close a pack that this blob would push past the target. */
	if (r->building && r->pb.n > 0 &&
	    r->pb.len + (r->crypto ? REPO_SEAL_OVERHEAD : PACK_RECORD_HEADER_BYTES) + len >
		    r->cfg.pack_target_bytes) {
		rc = repo_write_pack(r);
		if (rc < 0)
			return rc;
	}
	rc = repo_pack_start(r);
	if (rc < 0)
		return rc;
	rc = pack_builder_reserve(&r->pb, len, &payload);
	if (rc < 0)
		return rc;
	/* A frame that would not fit in len - 1 bytes does not shrink: store raw. */
	if (len > 1) {
		size_t n = ZSTD_compressCCtx(r->cctx, payload, len - 1, data, len, r->zstd_level);

		if (!ZSTD_isError(n)) {
			stored = n;
			flags = PACK_BLOB_F_ZSTD;
		}
	}
	if (!flags)
		memcpy(payload, data, len);
	rc = pack_builder_commit(&r->pb, id, (uint8_t)type, flags, (uint32_t)len, (uint32_t)stored,
				 &e);
	if (rc < 0)
		return rc;
	loc = (struct blob_loc){
		.id = *id,
		.pack = r->cur_pack,
		.offset = (uint32_t)e.offset,
		.stored_bytes = e.stored_bytes,
		.raw_bytes = e.raw_bytes,
		.crc = e.crc,
		.type = e.type,
		.flags = e.flags,
	};
	rc = blob_table_set(&r->blobs, &loc);
	if (rc < 0)
		return rc;
	r->stats.blobs_new++;
	r->stats.bytes_new_raw += len;
	r->stats.bytes_new_stored += e.stored_bytes;
	return 0;
}

int repo_blob_put(struct repo *r, enum blob_type type, const void *data, size_t len,
		  struct blob_id *id)
{
	int rc;

	if (r->err)
		return r->err;
	if (type < BLOB_T_DATA || type >= BLOB_T_END)
		return -EINVAL;
	if (len > r->cfg.blob_max_bytes)
		return -EMSGSIZE;
	rc = blob_id_compute(r, data, len, id);
	if (rc < 0)
		return rc;
	if (repo_blob_known(r, id)) {
		r->stats.blobs_dedup++;
		r->stats.bytes_dedup_raw += len;
		return 0;
	}
	/* New, or its stored copy was lost or damaged: this copy replaces it. */
	rc = repo_pack_append(r, type, data, len, id);
	if (rc < 0)
		r->err = rc;
	return rc;
}

int repo_chunk_put(struct repo *r, const void *data, size_t len, struct blob_id *id)
{
	if (blob_data_is_zero(data, len)) {
		if (r->err)
			return r->err;
		memset(id, 0, sizeof(*id));
		return 0;
	}
	return repo_blob_put(r, BLOB_T_DATA, data, len, id);
}

int repo_blob_put_split(struct repo *r, enum blob_type type, const void *data, size_t len,
			size_t piece_bytes, struct blob_id **ids, uint32_t *n)
{
	const uint8_t *p = data;
	size_t count;
	struct blob_id *out;
	int rc;

	if (piece_bytes == 0 || piece_bytes > r->cfg.blob_max_bytes)
		return -EINVAL;
	count = len / piece_bytes + (len % piece_bytes != 0);
	if (count > UINT32_MAX)
		return -EMSGSIZE;
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		size_t off = i * piece_bytes;
		size_t take = len - off < piece_bytes ? len - off : piece_bytes;

		rc = repo_blob_put(r, type, p + off, take, &out[i]);
		if (rc < 0) {
			free(out);
			return rc;
		}
	}
	*ids = out;
	*n = (uint32_t)count;
	return 0;
}

void repo_loc_entry(const struct blob_loc *loc, struct pack_entry *e)
{
	*e = (struct pack_entry){
		.id = loc->id,
		.offset = loc->offset,
		.stored_bytes = loc->stored_bytes,
		.raw_bytes = loc->raw_bytes,
		.crc = loc->crc,
		.type = loc->type,
		.flags = loc->flags,
	};
}

bool repo_blob_known(const struct repo *r, const struct blob_id *id)
{
	const struct blob_loc *loc;

	if (blob_id_is_zero(id))
		return true;
	loc = blob_table_find(&r->blobs, id);
	return loc && !loc->damaged && !r->packs[loc->pack].absent;
}

int repo_blob_info(const struct repo *r, const struct blob_id *id, struct repo_blob_info *out)
{
	const struct blob_loc *loc = blob_table_find(&r->blobs, id);

	if (!loc)
		return -ENOENT;
	out->type = loc->type;
	out->flags = loc->flags;
	out->raw_bytes = loc->raw_bytes;
	out->stored_bytes = loc->stored_bytes;
	out->offset = loc->offset;
	out->pack_id = r->packs[loc->pack].id;
	return 0;
}

/* Make room for n bytes in the scratch buffer for opened zstd frames (r, n). */
static int plain_reserve(struct repo *r, size_t n)
{
	uint8_t *p;

	if (n <= r->plain_cap)
		return 0;
	p = realloc(r->plain_buf, n);
	if (!p)
		return -ENOMEM;
	r->plain_buf = p;
	r->plain_cap = n;
	return 0;
}

static int fail(const char **why, const char *reason, int rc)
{
	if (why)
		*why = reason;
	return rc;
}

int repo_blob_decode(struct repo *r, const struct blob_loc *loc, const uint8_t *payload,
		     uint8_t *dst, const char **why)
{
	size_t stored = loc->stored_bytes;
	struct blob_id got;
	int rc;

	if (!(loc->flags & PACK_BLOB_F_AEAD) != !r->crypto) /* decoders keep these apart */
		return fail(why, "blob sealing does not match the repository", -EBADMSG);
	if (loc->flags & PACK_BLOB_F_AEAD) {
		struct pack_entry e;

		/* The tag first: nothing unauthenticated reaches zstd or the caller. */
		repo_loc_entry(loc, &e);
		stored -= REPO_SEAL_OVERHEAD;
		if (loc->flags & PACK_BLOB_F_ZSTD) {
			rc = plain_reserve(r, stored);
			if (rc == 0)
				rc = pack_blob_unseal(r->crypto, &e, payload, r->plain_buf);
			payload = r->plain_buf;
		} else {
			rc = pack_blob_unseal(r->crypto, &e, payload, dst);
			payload = NULL; /* the raw blob is in dst already */
		}
		if (rc == -EBADMSG)
			return fail(why, "authentication failed: the blob was altered or swapped", rc);
		if (rc < 0)
			return rc;
	}
	if (loc->flags & PACK_BLOB_F_ZSTD) {
		unsigned long long content = ZSTD_getFrameContentSize(payload, stored);
		size_t n;

		/* The frame must declare exactly the indexed size; dst bounds the output anyway. */
		if (content != loc->raw_bytes)
			return fail(why, "compressed blob does not declare its raw length", -EBADMSG);
		n = ZSTD_decompressDCtx(r->dctx, dst, loc->raw_bytes, payload, stored);
		if (ZSTD_isError(n) || n != loc->raw_bytes)
			return fail(why, "blob does not decompress", -EBADMSG);
	} else if (payload) {
		memcpy(dst, payload, loc->raw_bytes);
	}
	rc = blob_id_compute(r, dst, loc->raw_bytes, &got);
	if (rc < 0)
		return rc;
	if (!blob_id_eq(&got, &loc->id))
		return fail(why, "content does not match its id", -EBADMSG);
	r->stats.blobs_read++;
	r->stats.bytes_read_raw += loc->raw_bytes;
	return 0;
}

int repo_blob_load(struct repo *r, const struct blob_loc *loc, uint8_t *dst)
{
	struct pack_entry e;
	size_t rec_len;
	const uint8_t *rec, *payload;
	int rc;

	repo_loc_entry(loc, &e);
	rec_len = (size_t)pack_record_bytes(&e);
	if (r->building && loc->pack == r->cur_pack) {
		rec = r->pb.buf + loc->offset; /* not written yet: it is in memory */
	} else if (blob_id_is_zero(&r->packs[loc->pack].id)) {
		return -EIO; /* its pack failed to write (the sticky error says why) */
	} else {
		char name[PACK_NAME_BYTES];

		if (rec_len > r->rec_cap) {
			uint8_t *p = realloc(r->rec_buf, rec_len);

			if (!p)
				return -ENOMEM;
			r->rec_buf = p;
			r->rec_cap = rec_len;
		}
		pack_name(&r->packs[loc->pack].id, name);
		rc = backend_get(r->be, name, loc->offset, r->rec_buf, rec_len);
		if (rc == -ENOENT)
			return -EIO;
		if (rc == -EPROTO)
			repo_found_add(r, &loc->id); /* the pack is shorter than its index says */
		if (rc < 0)
			return rc;
		rec = r->rec_buf;
	}
	rc = pack_record_check(rec, rec_len, &e, &payload, NULL);
	if (rc == 0)
		rc = repo_blob_decode(r, loc, payload, dst, NULL);
	if (rc == -EBADMSG || rc == -EPROTO)
		repo_found_add(r, &loc->id);
	return rc;
}

int repo_blob_get(struct repo *r, const struct blob_id *id, uint8_t **data, size_t *len)
{
	const struct blob_loc *loc = blob_table_find(&r->blobs, id);
	uint8_t *buf;
	int rc;

	if (!loc)
		return -ENOENT;
	buf = malloc(loc->raw_bytes ? loc->raw_bytes : 1);
	if (!buf)
		return -ENOMEM;
	rc = repo_blob_load(r, loc, buf);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*data = buf;
	*len = loc->raw_bytes;
	return 0;
}

int repo_blob_read(struct repo *r, const struct blob_id *id, void *dst, size_t len)
{
	const struct blob_loc *loc;

	if (blob_id_is_zero(id)) {
		memset(dst, 0, len);
		return 0;
	}
	loc = blob_table_find(&r->blobs, id);
	if (!loc)
		return -ENOENT;
	if (loc->raw_bytes != len)
		return -EBADMSG;
	return repo_blob_load(r, loc, dst);
}

int repo_blob_get_concat(struct repo *r, const struct blob_id *ids, uint32_t n,
			 size_t max_bytes, uint8_t **data, size_t *len)
{
	uint64_t total = 0;
	uint8_t *buf;
	size_t off = 0;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		const struct blob_loc *loc = blob_table_find(&r->blobs, &ids[i]);

		if (!loc)
			return -ENOENT;
		total += loc->raw_bytes;
		if (total > max_bytes)
			return -EMSGSIZE;
	}
	buf = malloc(total ? (size_t)total : 1);
	if (!buf)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const struct blob_loc *loc = blob_table_find(&r->blobs, &ids[i]);

		rc = repo_blob_load(r, loc, buf + off);
		if (rc < 0) {
			free(buf);
			return rc;
		}
		off += loc->raw_bytes;
	}
	*data = buf;
	*len = off;
	return 0;
}

int repo_abandon(struct repo *r, uint64_t *removed, uint64_t *bytes)
{
	uint64_t n = 0, b = 0;
	int rc = 0;

	/* Only sealed packs are this writer's alone (random nonces): see repo.h. */
	for (uint32_t i = 0; r->crypto && i < r->nunindexed; i++) {
		const struct repo_pack *p = &r->packs[r->unindexed[i].pack];
		char name[PACK_NAME_BYTES];
		int rc2;

		if (!r->unindexed[i].ours || blob_id_is_zero(&p->id))
			continue;
		pack_name(&p->id, name);
		rc2 = backend_remove(r->be, name);
		if (rc2 < 0 && rc2 != -ENOENT) {
			rc = rc ? rc : rc2;
			continue;
		}
		r->packs[r->unindexed[i].pack].absent = true;
		r->unindexed[i].ours = false;
		n++;
		b += p->bytes;
	}
	if (removed)
		*removed = n;
	if (bytes)
		*bytes = b;
	return rc;
}

int repo_flush(struct repo *r)
{
	int rc;

	if (r->err)
		return r->err;
	rc = repo_write_pack(r);
	if (rc == 0)
		rc = repo_write_index(r);
	if (rc < 0)
		r->err = rc;
	return rc;
}
