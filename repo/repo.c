/* Opening and creating repositories: location, the config and its key, and loading every index. */
#include "repo/repo.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "repo/repo_priv.h"
#include "repo/pack.h"

/*
 * The directory a location names: "DIR" or "file://DIR"; an "s3://BUCKET/PREFIX" URL is
 * kept whole, for messages and for backend_s3_open (backend.h).
 */
static int location_dir(const char *location, const char **dir, char *err, size_t errlen)
{
	if (backend_location_is_s3(location)) {
		*dir = location;
		return 0;
	}
	if (strncmp(location, "file://", 7) == 0)
		location += 7;
	if (location[0] == '\0') {
		err_set(err, errlen, "empty repository location");
		return -EINVAL;
	}
	*dir = location;
	return 0;
}

int repo_init_keyed(const char *location, uint32_t chunk_bytes, uint32_t pack_target_bytes,
		    const struct repo_key *key, char *err, size_t errlen)
{
	static const char *const dirs[] = { "data", "index", "snapshots", "locks" };
	uint8_t buf[REPO_CONFIG_BYTES];
	struct repo_config cfg;
	struct backend *be;
	const char *dir;
	uint64_t size;
	int rc;

	rc = location_dir(location, &dir, err, errlen);
	if (rc < 0)
		return rc;
	rc = repo_config_make(&cfg, chunk_bytes, pack_target_bytes, key);
	if (rc == 0)
		rc = repo_config_encode(&cfg, key, buf);
	if (rc < 0) {
		err_set(err, errlen, rc == -EINVAL
			? "chunk size must be a power of two in [4 KiB, 16 MiB] and pack size in [1 MiB, 256 MiB]"
			: "no randomness or key derivation for the repository");
		return rc;
	}
	if (backend_location_is_s3(dir)) {
		/* S3 has no directories; a missing bucket is made. */
		rc = backend_s3_open(&be, dir, NULL, BACKEND_S3_CREATE_BUCKET, err, errlen);
		if (rc < 0)
			return rc;
		goto put_config;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		err_set(err, errlen, "create %s: %s", dir, strerror(-rc));
		return rc;
	}
	rc = backend_dir_open(&be, dir);
	if (rc < 0) {
		err_set(err, errlen, "open %s: %s", dir, strerror(-rc));
		return rc;
	}
	rc = backend_stat(be, "config", &size);
	if (rc == 0) {
		err_set(err, errlen, "%s is already a godwit repository", dir);
		rc = -EEXIST;
		goto out;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			err_set(err, errlen, "create %s: %s", path, strerror(-rc));
			goto out;
		}
	}
put_config:
	rc = backend_put(be, "config", buf, sizeof(buf));
	if (rc == -EEXIST)
		err_set(err, errlen, "%s is already a godwit repository", dir);
	else if (rc < 0)
		err_set(err, errlen, "write %s/config: %s", dir, strerror(-rc));
out:
	backend_close(be);
	return rc;
}

int repo_init(const char *location, uint32_t chunk_bytes, uint32_t pack_target_bytes,
	      char *err, size_t errlen)
{
	return repo_init_keyed(location, chunk_bytes, pack_target_bytes, NULL, err, errlen);
}

/* The slot of pack id, adding one if new (r, id, bytes, slot). */
static int repo_pack_slot(struct repo *r, const struct blob_id *id, uint64_t bytes,
			  uint32_t *slot)
{
	const struct blob_loc *found = blob_table_find(&r->pack_slots, id);
	int rc;

	if (found) {
		*slot = found->pack;
		return 0;
	}
	rc = repo_pack_slot_new(r, slot);
	if (rc < 0)
		return rc;
	rc = repo_pack_slot_publish(r, *slot, id, bytes);
	if (rc < 0)
		r->npacks--;
	return rc;
}

/* Add every entry of a decoded or just-written index to the tables (r, ix). */
static int repo_index_add(struct repo *r, const struct index_file *ix)
{
	for (uint32_t i = 0; i < ix->npacks; i++) {
		const struct index_pack *p = &ix->packs[i];
		uint32_t slot;
		int rc = repo_pack_slot(r, &p->pack_id, p->pack_bytes, &slot);

		if (rc < 0)
			return rc;
		for (uint32_t j = 0; j < p->nblobs; j++) {
			const struct pack_entry *e = &p->entries[j];
			struct blob_loc loc = {
				.id = e->id,
				.pack = slot,
				.offset = (uint32_t)e->offset,
				.stored_bytes = e->stored_bytes,
				.raw_bytes = e->raw_bytes,
				.crc = e->crc,
				.type = e->type,
				.flags = e->flags,
			};

			rc = blob_table_add(&r->blobs, &loc);
			if (rc == 0 && blob_table_find(&r->blobs, &e->id)->pack != slot)
				rc = blob_table_add(&r->dups, &loc);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}

void repo_prefer_dup(struct repo *r, struct blob_loc *primary)
{
	struct blob_loc *dup = blob_table_find_mut(&r->dups, &primary->id), tmp;

	if (!dup || dup->damaged || r->packs[dup->pack].absent)
		return;
	tmp = *primary;
	*primary = *dup;
	*dup = tmp;
}

static int repo_note_bad(struct repo *r, const char *name, int rc, const char *why)
{
	struct repo_bad_index *b = realloc(r->bad, (r->nbad + 1) * sizeof(*b));

	if (!b)
		return -ENOMEM;
	r->bad = b;
	b = &r->bad[r->nbad++];
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->rc = rc;
	b->why = why;
	return 0;
}

struct name_list {
	char **names;
	size_t n, cap;
};

static int name_list_add(void *arg, const char *name, uint64_t bytes)
{
	struct name_list *l = arg;

	(void)bytes;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **p = realloc(l->names, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->names = p;
		l->cap = cap;
	}
	l->names[l->n] = strdup(name);
	if (!l->names[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

static void name_list_free(struct name_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	free(l->names);
}

int repo_index_object_read(struct backend *be, struct repo_crypto *c, const char *name,
			   struct index_file *ix, int *bad, const char **why)
{
	char expect[INDEX_NAME_BYTES], dname[REPO_DAMAGED_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	*bad = 0;
	*why = "";
	rc = backend_get_all(be, name, INDEX_MAX_BYTES, &buf, &len);
	if (rc == -EMSGSIZE) {
		*bad = rc;
		*why = "larger than the limit";
		return 1;
	}
	if (rc < 0)
		return rc;
	index_file_name(buf, len, expect);
	repo_damaged_name(buf, len, dname);
	rc = index_file_decode(buf, len, c, ix, why);
	free(buf);
	if (rc == 0 && strcmp(expect, name) != 0 && strcmp(dname, name) != 0) {
		/* The content checked first, so a damaged file reports as damaged, not misnamed. */
		index_file_free(ix);
		rc = -EBADMSG;
		*why = "name does not match the content hash";
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		*bad = rc;
		return 1;
	}
	return 0;
}

/*
 * repo_index_object_read for repo_open (r, name, ix): a decode failure is remembered for
 * repo_verify and returns 1; an object removed since the list, 2.
 */
static int repo_read_indexlike(struct repo *r, const char *name, struct index_file *ix)
{
	const char *why;
	int bad, rc = repo_index_object_read(r->be, r->crypto, name, ix, &bad, &why);

	if (rc == -ENOENT)
		return 2; /* removed by a prune since the list */
	if (rc == 1) {
		rc = repo_note_bad(r, name, bad, why);
		return rc < 0 ? rc : 1;
	}
	return rc;
}

/* Load one index file (r, name): a decode failure is remembered, not returned. */
static int repo_load_index(struct repo *r, const char *name)
{
	struct index_file ix;
	int rc = repo_read_indexlike(r, name, &ix);

	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = repo_index_add(r, &ix);
	index_file_free(&ix);
	return rc;
}

/* Mark the copies a list of damaged blobs names (r, ix): only where the index has that copy. */
static void repo_apply_damaged(struct repo *r, const struct index_file *ix)
{
	for (uint32_t i = 0; i < ix->npacks; i++) {
		const struct index_pack *p = &ix->packs[i];

		for (uint32_t j = 0; j < p->nblobs; j++) {
			struct blob_loc *loc = blob_table_find_mut(&r->blobs, &p->entries[j].id);
			struct blob_loc *dup = blob_table_find_mut(&r->dups, &p->entries[j].id);

			if (dup && !dup->damaged && blob_id_eq(&r->packs[dup->pack].id, &p->pack_id))
				dup->damaged = 1;
			if (loc && !loc->damaged && blob_id_eq(&r->packs[loc->pack].id, &p->pack_id)) {
				loc->damaged = 1;
				r->ndamaged++;
				repo_prefer_dup(r, loc);
			}
		}
	}
}

/* Every list of damaged blobs (verify, a restore or a backup found them; r). */
static int repo_load_damaged(struct repo *r)
{
	struct name_list l = { 0 };
	int rc = backend_list(r->be, REPO_DAMAGED_PREFIX, name_list_add, &l);

	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		struct index_file ix;

		rc = repo_read_indexlike(r, l.names[i], &ix);
		if (rc == 0) {
			repo_apply_damaged(r, &ix);
			index_file_free(&ix);
		}
		rc = rc < 0 ? rc : 0;
	}
	name_list_free(&l);
	return rc;
}

void repo_damaged_name(const uint8_t *buf, size_t len, char out[REPO_DAMAGED_NAME_BYTES])
{
	uint8_t sum[32];

	sha256_buf(buf, len, sum);
	memcpy(out, REPO_DAMAGED_PREFIX, sizeof(REPO_DAMAGED_PREFIX) - 1);
	hex_encode(sum, sizeof(sum), out + sizeof(REPO_DAMAGED_PREFIX) - 1);
}

struct pack_lister {
	struct blob_table *t;
	void (*notes)(void *arg, const char *name);
	void *arg;
};

static int pack_list_one(void *arg, const char *name, uint64_t bytes, int64_t age_s)
{
	struct pack_lister *l = arg;
	const char *hex = strrchr(name, '/');
	struct blob_loc loc = { 0 };

	hex = hex ? hex + 1 : name;
	if (strlen(name) != PACK_NAME_BYTES - 1 || blob_id_from_hex(&loc.id, hex) < 0 ||
	    strncmp(name + 5, hex, 2) != 0) {
		if (l->notes)
			l->notes(l->arg, name);
		return 0;
	}
	loc.offset = bytes > PACK_MAX_BYTES ? UINT32_MAX : (uint32_t)bytes;
	if (age_s < 0)
		loc.pack = UINT32_MAX;
	else
		loc.pack = age_s >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)age_s;
	return blob_table_add(l->t, &loc) < 0 ? -ENOMEM : 0;
}

int repo_list_packs(struct backend *be, struct blob_table *t,
		    void (*notes)(void *arg, const char *name), void *arg)
{
	struct pack_lister l = { t, notes, arg };

	return backend_list_aged(be, "data/", pack_list_one, &l);
}

uint64_t repo_packs_mark(struct repo *r, const struct blob_table *listed)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < r->npacks; s++) {
		const struct blob_loc *l;

		if (blob_id_is_zero(&r->packs[s].id))
			continue; /* being built, or failed to write */
		l = blob_table_find(listed, &r->packs[s].id);
		r->packs[s].absent = !l || l->offset != r->packs[s].bytes;
		n += r->packs[s].absent;
	}
	if (n && r->dups.n) {
		const struct blob_loc *d;
		size_t pos = 0;

		while ((d = blob_table_next(&r->dups, &pos))) {
			struct blob_loc *primary = blob_table_find_mut(&r->blobs, &d->id);

			if (primary && r->packs[primary->pack].absent)
				repo_prefer_dup(r, primary);
		}
	}
	r->nabsent = n;
	return n;
}

int repo_packs_check(struct repo *r, uint64_t *nabsent)
{
	struct blob_table listed;
	uint64_t n;
	int rc = blob_table_init(&listed);

	if (rc == 0)
		rc = repo_list_packs(r->be, &listed, NULL, NULL);
	if (rc == 0) {
		n = repo_packs_mark(r, &listed);
		if (nabsent)
			*nabsent = n;
	}
	blob_table_free(&listed);
	return rc;
}

/*
 * Check key against the encrypted config in buf and derive the repository's keys (r,
 * dir, buf, len, key, err, errlen); key NULL, or a key for a plaintext repository, is
 * refused.
 */
static int repo_load_keys(struct repo *r, const char *dir, const uint8_t *buf, size_t len,
			  const struct repo_key *key, char *err, size_t errlen)
{
	const char *why = "";
	int rc;

	if (r->cfg.encryption == REPO_ENC_NONE) {
		if (!key)
			return 0;
		err_set(err, errlen,
			"repository %s is not encrypted (made with --insecure-no-encryption): drop --key-file",
			dir);
		return -EINVAL;
	}
	if (!key) {
		err_set(err, errlen,
			"repository %s is encrypted: pass --key-file FILE, the key file 'godwit repo init' wrote",
			dir);
		return -ENOKEY;
	}
	rc = repo_config_authenticate(buf, len, &r->cfg, key, &why);
	if (rc == -EKEYREJECTED)
		err_set(err, errlen,
			"wrong key for repository %s: --key-file names another repository's key", dir);
	else if (rc == -EBADMSG)
		err_set(err, errlen, "%s/config: %s", dir, why);
	else if (rc < 0)
		err_set(err, errlen, "%s/config: %s: %s", dir, why, strerror(-rc));
	if (rc < 0)
		return rc;
	rc = repo_crypto_new(&r->crypto, key, r->cfg.key_salt);
	if (rc < 0)
		err_set(err, errlen, "derive the keys of %s: %s", dir, strerror(-rc));
	return rc;
}

static int repo_load_config(struct repo *r, const char *dir, const struct repo_key *key,
			    char *err, size_t errlen)
{
	const char *why = "";
	uint8_t *buf;
	size_t len;
	int rc;

	rc = backend_get_all(r->be, "config", 4096, &buf, &len);
	if (rc == -ENOENT) {
		err_set(err, errlen,
			"not a godwit repository: no config in %s: create one with 'godwit repo init' or name another --repo",
			dir);
		return rc;
	}
	if (rc == -EMSGSIZE) {
		err_set(err, errlen, "not a godwit repository: %s/config is too large", dir);
		return -EBADMSG;
	}
	if (rc < 0) {
		err_set(err, errlen, "read %s/config: %s", dir, strerror(-rc));
		return rc;
	}
	rc = repo_config_decode(buf, len, &r->cfg, &why);
	if (rc < 0)
		err_set(err, errlen, "%s/config: %s", dir, why);
	else
		rc = repo_load_keys(r, dir, buf, len, key, err, errlen);
	free(buf);
	return rc;
}

int repo_open_keyed(struct repo **out, const char *location, const struct repo_key *key,
		    char *err, size_t errlen)
{
	return repo_open_ex(out, location, NULL, key, err, errlen);
}

int repo_open_ex(struct repo **out, const char *location, const struct backend_s3_opts *s3,
		 const struct repo_key *key, char *err, size_t errlen)
{
	struct name_list idx = { 0 };
	struct repo *r;
	const char *dir;
	int rc;

	rc = location_dir(location, &dir, err, errlen);
	if (rc < 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->zstd_level = 1;
	pack_builder_init(&r->pb);
	r->location = strdup(dir);
	r->cctx = ZSTD_createCCtx();
	r->dctx = ZSTD_createDCtx();
	if (!r->location || !r->cctx || !r->dctx) {
		rc = -ENOMEM;
		goto err_free;
	}
	rc = blob_table_init(&r->blobs);
	if (rc == 0)
		rc = blob_table_init(&r->pack_slots);
	if (rc == 0)
		rc = blob_table_init(&r->dups);
	if (rc < 0)
		goto err_free;
	if (backend_location_is_s3(dir)) {
		rc = backend_s3_open(&r->be, dir, s3, 0, err, errlen);
		if (rc < 0)
			goto err_free;
	} else {
		rc = backend_dir_open(&r->be, dir);
	}
	if (rc == -ENOENT || rc == -ENOTDIR) {
		err_set(err, errlen,
			"not a godwit repository: no config in %s: create one with 'godwit repo init' or name another --repo",
			dir);
		goto err_free;
	}
	if (rc < 0) {
		err_set(err, errlen, "open %s: %s", dir, strerror(-rc));
		goto err_free;
	}
	rc = repo_load_config(r, dir, key, err, errlen);
	if (rc < 0)
		goto err_free;
	rc = backend_list(r->be, "index/", name_list_add, &idx);
	for (size_t i = 0; rc == 0 && i < idx.n; i++)
		rc = repo_load_index(r, idx.names[i]);
	name_list_free(&idx);
	if (rc == 0)
		rc = repo_load_damaged(r);
	if (rc < 0) {
		err_set(err, errlen, "read the index of %s: %s", dir, strerror(-rc));
		goto err_free;
	}
	*out = r;
	return 0;
err_free:
	repo_close(r);
	return rc;
}

int repo_open(struct repo **out, const char *location, char *err, size_t errlen)
{
	return repo_open_keyed(out, location, NULL, err, errlen);
}

void repo_close(struct repo *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->nunindexed; i++)
		free(r->unindexed[i].entries);
	free(r->unindexed);
	pack_builder_free(&r->pb);
	blob_table_free(&r->blobs);
	blob_table_free(&r->dups);
	blob_table_free(&r->pack_slots);
	free(r->packs);
	free(r->rec_buf);
	free(r->plain_buf);
	free(r->bad);
	free(r->found);
	repo_crypto_free(r->crypto);
	ZSTD_freeCCtx(r->cctx);
	ZSTD_freeDCtx(r->dctx);
	backend_close(r->be);
	free(r->location);
	free(r);
}

const struct repo_config *repo_config_of(const struct repo *r)
{
	return &r->cfg;
}

const char *repo_location(const struct repo *r)
{
	return r->location;
}

struct backend *repo_backend(struct repo *r)
{
	return r->be;
}

void repo_stats_get(const struct repo *r, struct repo_stats *out)
{
	*out = r->stats;
}

int repo_pack_slot_new(struct repo *r, uint32_t *slot)
{
	struct blob_id zero = { { 0 } };

	if (r->npacks == r->packs_cap) {
		uint32_t cap = r->packs_cap ? r->packs_cap * 2 : 64;
		struct repo_pack *p = realloc(r->packs, (size_t)cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		r->packs = p;
		r->packs_cap = cap;
	}
	r->packs[r->npacks] = (struct repo_pack){ .id = zero };
	*slot = r->npacks++;
	return 0;
}

int repo_pack_slot_publish(struct repo *r, uint32_t slot, const struct blob_id *id,
			   uint64_t bytes)
{
	struct blob_loc loc = { .id = *id, .pack = slot };
	int rc = blob_table_add(&r->pack_slots, &loc);

	if (rc < 0)
		return rc;
	r->packs[slot].id = *id;
	r->packs[slot].bytes = bytes;
	return 0;
}
