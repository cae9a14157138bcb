/* Repair: rebuild the index from the self-describing packs, then name the snapshots no pack completes. */
#include "repo/repair.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/index_file.h"
#include "repo/manifest.h"
#include "repo/pack.h"
#include "repo/repo_priv.h"

/* An index file that decodes, and whether it names a pack that is gone. */
struct rp_index {
	char name[BACKEND_NAME_MAX + 1];
	struct index_file ix;
	bool rewrite;
};

struct repair {
	struct repo *r;
	bool dry_run;
	bool forget_damaged;
	prune_report_fn fn;
	void *arg;
	struct repair_stats *st;
	char *err;
	size_t errlen;
	struct blob_table listed;  /* data/: pack id, size in offset */
	struct blob_table covered; /* packs a readable index names that exist */
	struct blob_table missing; /* packs a readable index names that are gone */
	struct blob_table held;    /* blobs some kept copy holds: raw length in raw_bytes */
	struct copy_set marked;    /* copies the damaged/ lists mark */
	struct rp_index *good;
	size_t ngood, good_cap;
	char **bad;                /* index files that do not decode */
	size_t nbad, bad_cap;
	struct index_pack *found;  /* packs indexed again from their trailer */
	size_t nfound, found_cap;
};

static void say(struct repair *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct repair *w, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!w->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	w->fn(w->arg, line);
}

static int fail(struct repair *w, int rc, const char *what, const char *name)
{
	char msg[512];

	backend_error(w->r->be, msg, sizeof(msg));
	err_set(w->err, w->errlen, "repair: %s %s/%s: %s", what, w->r->location, name,
		msg[0] ? msg : strerror(-rc));
	return rc;
}

/* Grow an array by one element (v, n, cap, size). Returns the new element or NULL. */
static void *grow(void **v, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		void *p = realloc(*v, c * size);

		if (!p)
			return NULL;
		*v = p;
		*cap = c;
	}
	return (uint8_t *)*v + (*n)++ * size;
}

static bool exists_whole(const struct repair *w, const struct index_pack *p)
{
	const struct blob_loc *l = blob_table_find(&w->listed, &p->pack_id);

	return l && l->offset == p->pack_bytes;
}

/* 1. Each index file: kept, to be rewritten without packs that are gone, or bad. */
static int index_one(void *arg, const char *name, uint64_t bytes)
{
	struct repair *w = arg;
	struct rp_index *e;
	const char *why;
	int bad, rc;

	(void)bytes;
	e = grow((void **)&w->good, &w->ngood, &w->good_cap, sizeof(*e));
	if (!e)
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	rc = repo_index_object_read(w->r->be, w->r->crypto, name, &e->ix, &bad, &why);
	if (rc != 0)
		w->ngood--;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc == -ENOMEM ? rc : fail(w, rc, "read", name);
	if (rc == 1) {
		char **b = grow((void **)&w->bad, &w->nbad, &w->bad_cap, sizeof(*b));

		if (!b || !(*b = strdup(name)))
			return -ENOMEM;
		w->st->indexes_bad++;
		say(w, "index %s does not decode (%s): %s", name, why,
		    w->dry_run ? "would be replaced" : "replaced");
		return 0;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	for (uint32_t i = 0; i < e->ix.npacks; i++) {
		const struct index_pack *p = &e->ix.packs[i];
		struct blob_loc k = { .id = p->pack_id };

		if (exists_whole(w, p)) {
			if (blob_table_add(&w->covered, &k) < 0)
				return -ENOMEM;
			continue;
		}
		e->rewrite = true;
		rc = blob_table_add(&w->missing, &k);
		if (rc < 0)
			return -ENOMEM;
		if (rc == 1) {
			char hex[BLOB_ID_HEX_BYTES];

			blob_id_hex(&p->pack_id, hex);
			w->st->packs_missing++;
			say(w, "pack %s is gone (or not whole): %s the index (%u blobs)", hex,
			    w->dry_run ? "would leave" : "leaves", p->nblobs);
		}
	}
	return 0;
}

static int damaged_one(void *arg, const char *name, uint64_t bytes)
{
	struct repair *w = arg;
	struct index_file ix;
	const char *why;
	int bad, rc;

	(void)bytes;
	rc = repo_index_object_read(w->r->be, w->r->crypto, name, &ix, &bad, &why);
	if (rc == -ENOENT || rc == 1)
		return 0;
	if (rc < 0)
		return rc == -ENOMEM ? rc : fail(w, rc, "read", name);
	for (uint32_t i = 0; rc == 0 && i < ix.npacks; i++)
		for (uint32_t j = 0; rc == 0 && j < ix.packs[i].nblobs; j++)
			rc = copy_set_add(&w->marked, &ix.packs[i].pack_id, &ix.packs[i].entries[j].id);
	index_file_free(&ix);
	return rc;
}

/* 2. A pack in no readable index: indexed again from its own trailer (w, l). */
static int recover_pack(struct repair *w, const struct blob_loc *l)
{
	char name[PACK_NAME_BYTES], hex[BLOB_ID_HEX_BYTES];
	struct pack_entry *es = NULL;
	struct index_pack *p;
	const char *why = "";
	uint8_t *buf, sum[32];
	size_t len;
	uint32_t n = 0;
	int rc;

	pack_name(&l->id, name);
	blob_id_hex(&l->id, hex);
	rc = backend_get_all(w->r->be, name, PACK_MAX_BYTES, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc == -EMSGSIZE) {
		why = "larger than a pack can be";
	} else if (rc < 0) {
		return fail(w, rc, "read", name);
	} else {
		rc = pack_decode(buf, len, w->r->crypto, &es, &n, &why);
		sha256_buf(buf, len, sum);
		free(buf);
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0 && memcmp(sum, l->id.b, sizeof(sum)) != 0) {
			rc = -EBADMSG;
			why = "its content does not match its name";
		}
		if (rc == 0 && n == 0) {
			rc = -EBADMSG;
			why = "it holds no blob";
		}
	}
	if (rc < 0) {
		free(es);
		w->st->packs_unreadable++;
		say(w, "pack %s is in no readable index and does not decode (%s): left alone", hex,
		    why);
		return 0;
	}
	p = grow((void **)&w->found, &w->nfound, &w->found_cap, sizeof(*p));
	if (!p) {
		free(es);
		return -ENOMEM;
	}
	*p = (struct index_pack){ .pack_id = l->id, .pack_bytes = len, .nblobs = n, .entries = es };
	w->st->packs_recovered++;
	say(w, "pack %s is in no readable index: %s from its trailer (%" PRIu32 " blobs)", hex,
	    w->dry_run ? "would be indexed again" : "indexed again", n);
	return 0;
}

/* Write one index file of the given packs (w, packs, n, what). */
static int write_index(struct repair *w, struct index_pack *packs, uint32_t n, const char *what)
{
	struct index_file ix = { .npacks = n, .packs = packs };
	char name[INDEX_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	rc = index_file_encode(&ix, w->r->crypto, &buf, &len);
	if (rc < 0) {
		err_set(w->err, w->errlen, "repair: encode an index: %s", strerror(-rc));
		return rc;
	}
	index_file_name(buf, len, name);
	say(w, "%s %s (%" PRIu32 " packs%s)", w->dry_run ? "would write" : "write", name, n, what);
	if (!w->dry_run) {
		rc = backend_put(w->r->be, name, buf, len);
		if (rc == -EEXIST)
			rc = 0;
		if (rc < 0)
			fail(w, rc, "write", name);
	}
	free(buf);
	if (rc == 0)
		w->st->indexes_written++;
	return rc;
}

static int remove_index(struct repair *w, const char *name)
{
	int rc = 0;

	say(w, "%s %s", w->dry_run ? "would delete" : "delete", name);
	if (!w->dry_run) {
		rc = backend_remove(w->r->be, name);
		if (rc == -ENOENT)
			rc = 0;
		if (rc < 0)
			return fail(w, rc, "delete", name);
	}
	w->st->indexes_removed++;
	return rc;
}

/* 3. New index files first, then the replaced ones go (w). */
static int repair_write(struct repair *w)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < w->nfound; i += REPO_INDEX_AUTO_PACKS) {
		size_t n = w->nfound - i < REPO_INDEX_AUTO_PACKS ? w->nfound - i
								 : REPO_INDEX_AUTO_PACKS;

		rc = write_index(w, w->found + i, (uint32_t)n, " indexed again from their trailers");
	}
	for (size_t i = 0; rc == 0 && i < w->ngood; i++) {
		struct rp_index *e = &w->good[i];
		struct index_pack *keep;
		uint32_t n = 0;

		if (!e->rewrite)
			continue;
		keep = malloc((e->ix.npacks ? e->ix.npacks : 1) * sizeof(*keep));
		if (!keep)
			return -ENOMEM;
		for (uint32_t j = 0; j < e->ix.npacks; j++)
			if (exists_whole(w, &e->ix.packs[j]))
				keep[n++] = e->ix.packs[j];
		if (n)
			rc = write_index(w, keep, n, " of an index without the packs that are gone");
		free(keep);
	}
	for (size_t i = 0; rc == 0 && i < w->ngood; i++)
		if (w->good[i].rewrite)
			rc = remove_index(w, w->good[i].name);
	for (size_t i = 0; rc == 0 && i < w->nbad; i++)
		rc = remove_index(w, w->bad[i]);
	return rc;
}

/* The blobs the repaired index holds whole: kept and recovered copies not marked (w). */
static int hold_group(struct repair *w, const struct index_pack *p)
{
	for (uint32_t j = 0; j < p->nblobs; j++) {
		const struct pack_entry *e = &p->entries[j];
		struct blob_loc loc = { .id = e->id, .raw_bytes = e->raw_bytes };

		if (copy_set_has(&w->marked, &p->pack_id, &e->id))
			continue;
		if (blob_table_add(&w->held, &loc) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int repair_held(struct repair *w)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < w->ngood; i++)
		for (uint32_t j = 0; rc == 0 && j < w->good[i].ix.npacks; j++)
			if (exists_whole(w, &w->good[i].ix.packs[j]))
				rc = hold_group(w, &w->good[i].ix.packs[j]);
	for (size_t i = 0; rc == 0 && i < w->nfound; i++)
		rc = hold_group(w, &w->found[i]);
	return rc;
}

struct rp_snap {
	struct repair *w;
	uint64_t missing;
	char first[64];
};

static int snap_ref_one(void *arg, const struct snap_ref *ref)
{
	struct rp_snap *c = arg;
	const struct blob_loc *loc = blob_table_find(&c->w->held, ref->id);

	if (loc && (ref->bytes == 0 || loc->raw_bytes == ref->bytes))
		return 0;
	if (c->missing++ == 0)
		snap_ref_describe(ref, c->first, sizeof(c->first));
	return 0;
}

/* 4. Each snapshot against the repaired index. */
static int snap_one(void *arg, const char *name, uint64_t bytes)
{
	struct repair *w = arg;
	const char *id = name + sizeof("snapshots/") - 1;
	struct rp_snap c = { .w = w };
	struct snap_manifest m;
	char err[512], when[40];
	time_t t;
	struct tm tm;
	int rc;

	(void)bytes;
	if (!snap_id_valid(id))
		return 0;
	manifest_init(&m);
	rc = snap_load(w->r, id, &m, err, sizeof(err));
	if (rc == -ENOENT)
		return 0;
	if (rc == -ENOMEM)
		return rc;
	w->st->snapshots++;
	if (rc < 0) {
		w->st->snapshots_unreadable++;
		if (!w->forget_damaged) {
			say(w, "%s: it cannot be restored, and a prune stops at it ('images repair "
			    "--forget-damaged' deletes it)", err);
			return 0;
		}
		say(w, "%s: %s", err, w->dry_run ? "would be forgotten" : "forgotten");
		if (!w->dry_run) {
			rc = backend_remove(w->r->be, name);
			if (rc < 0 && rc != -ENOENT)
				return fail(w, rc, "delete", name);
		}
		w->st->snapshots_forgotten++;
		return 0;
	}
	rc = manifest_foreach_ref(&m, snap_ref_one, &c);
	if (rc == 0 && c.missing) {
		t = (time_t)(m.created_ns / 1000000000u);
		if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
			snprintf(when, sizeof(when), "?");
		w->st->snapshots_incomplete++;
		w->st->blobs_missing += c.missing;
		say(w, "snapshot %s (VM %s, taken %s) names %" PRIu64 " blobs no pack holds whole "
		    "(the first: %s): it cannot be restored whole; while VM %s runs, its next "
		    "backup stores again what the VM still holds", m.id, m.vm_name, when,
		    c.missing, c.first, m.vm_name);
	}
	manifest_free(&m);
	return rc;
}

static void repair_free(struct repair *w)
{
	for (size_t i = 0; i < w->ngood; i++)
		index_file_free(&w->good[i].ix);
	free(w->good);
	for (size_t i = 0; i < w->nbad; i++)
		free(w->bad[i]);
	free(w->bad);
	for (size_t i = 0; i < w->nfound; i++)
		free(w->found[i].entries);
	free(w->found);
	blob_table_free(&w->listed);
	blob_table_free(&w->covered);
	blob_table_free(&w->missing);
	blob_table_free(&w->held);
	copy_set_free(&w->marked);
}

int repo_repair(struct repo *r, const struct repair_opts *o, prune_report_fn fn, void *arg,
		struct repair_stats *st, char *err, size_t errlen)
{
	struct repair w = { .r = r, .dry_run = o->dry_run, .forget_damaged = o->forget_damaged,
			    .fn = fn, .arg = arg, .st = st, .err = err, .errlen = errlen };
	const struct blob_loc *l;
	size_t pos = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	if (errlen)
		err[0] = '\0';
	rc = blob_table_init(&w.listed);
	if (rc == 0)
		rc = blob_table_init(&w.covered);
	if (rc == 0)
		rc = blob_table_init(&w.missing);
	if (rc == 0)
		rc = blob_table_init(&w.held);
	if (rc == 0)
		rc = copy_set_init(&w.marked);
	if (rc == 0) {
		rc = repo_list_packs(r->be, &w.listed, NULL, NULL);
		if (rc < 0)
			fail(&w, rc, "list", "data/");
	}
	if (rc == 0)
		rc = backend_list(r->be, "index/", index_one, &w);
	if (rc == 0)
		rc = backend_list(r->be, REPO_DAMAGED_PREFIX, damaged_one, &w);
	while (rc == 0 && (l = blob_table_next(&w.listed, &pos))) {
		st->packs++;
		if (!blob_table_find(&w.covered, &l->id))
			rc = recover_pack(&w, l);
	}
	if (rc == 0)
		rc = repair_write(&w);
	if (rc == 0)
		rc = repair_held(&w);
	if (rc == 0)
		rc = backend_list(r->be, "snapshots/", snap_one, &w);
	if (rc < 0 && errlen && !err[0])
		err_set(err, errlen, "repair %s: %s", r->location, strerror(-rc));
	repair_free(&w);
	return rc;
}
