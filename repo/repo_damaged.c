/* Damaged blobs: the lists under damaged/ that withdraw copies nobody can read, written and lifted. */
#include "repo/repo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/repo_priv.h"

/* Add loc's entry to the pack group of ix for its pack, making one if needed (r, ix, loc). */
static int damaged_add(struct repo *r, struct index_file *ix, const struct blob_loc *loc)
{
	const struct repo_pack *p = &r->packs[loc->pack];
	struct index_pack *g = NULL;
	struct pack_entry *e;

	for (uint32_t i = 0; i < ix->npacks && !g; i++)
		if (blob_id_eq(&ix->packs[i].pack_id, &p->id))
			g = &ix->packs[i];
	if (!g) {
		g = realloc(ix->packs, (ix->npacks + 1) * sizeof(*g));
		if (!g)
			return -ENOMEM;
		ix->packs = g;
		g = &ix->packs[ix->npacks++];
		*g = (struct index_pack){ .pack_id = p->id, .pack_bytes = p->bytes };
	}
	e = realloc(g->entries, (g->nblobs + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	g->entries = e;
	repo_loc_entry(loc, &g->entries[g->nblobs++]);
	return 0;
}

int repo_mark_damaged(struct repo *r, const struct blob_id *ids, size_t n, uint64_t *marked,
		      char *err, size_t errlen)
{
	struct index_file ix = { 0 };
	char name[REPO_DAMAGED_NAME_BYTES];
	struct blob_loc **take;
	uint8_t *buf = NULL;
	size_t len, count = 0;
	int rc;

	if (marked)
		*marked = 0;
	take = calloc(n ? n : 1, sizeof(*take));
	if (!take)
		return -ENOMEM;
	/* The current copy of each id, once: a copy marked, absent or not written is left. */
	for (size_t i = 0; i < n; i++) {
		struct blob_loc *loc = blob_table_find_mut(&r->blobs, &ids[i]);
		bool seen = false;

		if (!loc || loc->damaged || r->packs[loc->pack].absent ||
		    blob_id_is_zero(&r->packs[loc->pack].id))
			continue;
		for (size_t k = 0; k < count && !seen; k++)
			seen = take[k] == loc;
		if (!seen)
			take[count++] = loc;
	}
	rc = 0;
	for (size_t i = 0; rc == 0 && i < count; i++)
		rc = damaged_add(r, &ix, take[i]);
	if (rc == 0 && count) {
		rc = index_file_encode(&ix, r->crypto, &buf, &len);
		if (rc < 0)
			err_set(err, errlen, "encode a list of damaged blobs: %s", strerror(-rc));
	}
	if (rc == 0 && count) {
		repo_damaged_name(buf, len, name);
		rc = backend_put(r->be, name, buf, len);
		if (rc == -EEXIST)
			rc = 0; /* the same list, written before */
		if (rc < 0) {
			char msg[256];

			backend_error(r->be, msg, sizeof(msg));
			err_set(err, errlen, "write %s/%s: %s", r->location, name,
				msg[0] ? msg : strerror(-rc));
		}
	}
	/* Only a durable list counts: then this repo leaves the copies out too. */
	for (size_t i = 0; rc == 0 && i < count; i++) {
		take[i]->damaged = 1;
		r->ndamaged++;
		repo_prefer_dup(r, take[i]);
	}
	if (rc == 0 && marked)
		*marked = count;
	for (uint32_t i = 0; i < ix.npacks; i++)
		free(ix.packs[i].entries);
	free(ix.packs);
	free(buf);
	free(take);
	return rc;
}

static bool copy_listed(const struct repo_copy *copies, size_t n, const struct blob_id *pack,
			const struct blob_id *blob)
{
	for (size_t i = 0; i < n; i++)
		if (blob_id_eq(&copies[i].pack, pack) && blob_id_eq(&copies[i].blob, blob))
			return true;
	return false;
}

struct unmark_ctx {
	struct repo *r;
	const struct repo_copy *copies;
	size_t n;
	uint64_t unmarked;
	char *err;
	size_t errlen;
};

/* Write list name again without the copies that read back (arg, name, bytes). */
static int unmark_list(void *arg, const char *name, uint64_t bytes)
{
	struct unmark_ctx *u = arg;
	struct index_file ix, keep = { 0 };
	char newname[REPO_DAMAGED_NAME_BYTES];
	const char *why = "";
	uint8_t *buf;
	size_t len;
	uint64_t dropped = 0;
	int rc;

	(void)bytes;
	rc = backend_get_all(u->r->be, name, INDEX_MAX_BYTES, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = index_file_decode(buf, len, u->r->crypto, &ix, &why);
	free(buf);
	if (rc < 0)
		return rc == -ENOMEM ? rc : 0; /* repo_verify reports it */
	keep.packs = calloc(ix.npacks, sizeof(*keep.packs));
	if (!keep.packs) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < ix.npacks; i++) {
		struct index_pack *k = &keep.packs[keep.npacks];

		*k = ix.packs[i];
		k->nblobs = 0;
		k->entries = malloc(ix.packs[i].nblobs * sizeof(*k->entries));
		if (!k->entries) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t j = 0; j < ix.packs[i].nblobs; j++) {
			if (copy_listed(u->copies, u->n, &ix.packs[i].pack_id, &ix.packs[i].entries[j].id))
				dropped++;
			else
				k->entries[k->nblobs++] = ix.packs[i].entries[j];
		}
		if (k->nblobs)
			keep.npacks++;
		else
			free(k->entries);
	}
	if (!dropped)
		goto out;
	if (keep.npacks) {
		rc = index_file_encode(&keep, u->r->crypto, &buf, &len);
		if (rc < 0)
			goto out;
		repo_damaged_name(buf, len, newname);
		rc = backend_put(u->r->be, newname, buf, len);
		free(buf);
		if (rc == -EEXIST)
			rc = 0;
		if (rc < 0)
			goto out;
	}
	rc = backend_remove(u->r->be, name);
	if (rc == -ENOENT)
		rc = 0;
	if (rc == 0)
		u->unmarked += dropped;
out:
	for (uint32_t i = 0; i < keep.npacks; i++)
		free(keep.packs[i].entries);
	free(keep.packs);
	index_file_free(&ix);
	if (rc < 0)
		err_set(u->err, u->errlen, "rewrite %s/%s: %s", u->r->location, name,
			strerror(-rc));
	return rc;
}

int repo_unmark_damaged(struct repo *r, const struct repo_copy *copies, size_t n,
			uint64_t *unmarked, char *err, size_t errlen)
{
	struct unmark_ctx u = { .r = r, .copies = copies, .n = n, .err = err, .errlen = errlen };
	int rc = n ? backend_list(r->be, REPO_DAMAGED_PREFIX, unmark_list, &u) : 0;

	if (rc < 0 && err && errlen && !err[0])
		err_set(err, errlen, "list %s/%s: %s", r->location, REPO_DAMAGED_PREFIX,
			strerror(-rc));
	if (unmarked)
		*unmarked = u.unmarked;
	return rc;
}

void repo_found_add(struct repo *r, const struct blob_id *id)
{
	for (size_t i = 0; i < r->nfound; i++)
		if (blob_id_eq(&r->found[i], id))
			return;
	if (r->nfound == r->found_cap) {
		size_t cap = r->found_cap ? 2 * r->found_cap : 8;
		struct blob_id *f = realloc(r->found, cap * sizeof(*f));

		if (!f)
			return;
		r->found = f;
		r->found_cap = cap;
	}
	r->found[r->nfound++] = *id;
}

int repo_mark_found(struct repo *r, uint64_t *marked, char *err, size_t errlen)
{
	int rc;

	if (marked)
		*marked = 0;
	if (r->nfound == 0)
		return 0;
	rc = repo_mark_damaged(r, r->found, r->nfound, marked, err, errlen);
	if (rc == 0)
		r->nfound = 0;
	return rc;
}
