/* Prune: restic's retention rules over snapshot summaries, forget, and mark-and-sweep of whole packs. */
#include "repo/prune.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "repo/backend.h"
#include "repo/blob_table_priv.h"
#include "repo/index_file.h"
#include "repo/pack.h"
#include "repo/repo.h"
#include "repo/repo_priv.h"

#define SNAP_PREFIX_NAME "snapshots/"

bool prune_policy_empty(const struct prune_policy *p)
{
	return !p->keep_last && !p->keep_daily && !p->keep_weekly;
}

/* ---- Deciding ----------------------------------------------------------------------- */

struct order_ctx {
	const struct snap_summary *s;
};

/* By VM name, then newest first (created_ns, then id, both descending). */
static int order_cmp(const void *a, const void *b, void *arg)
{
	const struct order_ctx *c = arg;
	const struct snap_summary *x = &c->s[*(const size_t *)a], *y = &c->s[*(const size_t *)b];
	int d = strcmp(x->vm_name, y->vm_name);

	if (d)
		return d;
	if (x->created_ns != y->created_ns)
		return x->created_ns > y->created_ns ? -1 : 1;
	return -strcmp(x->id, y->id);
}

/* The local calendar day and ISO week of t (ns, day, week). */
static void buckets_of(uint64_t ns, long *day, long *week)
{
	time_t t = (time_t)(ns / 1000000000ull);
	struct tm tm;
	char w[16];

	if (!localtime_r(&t, &tm)) {
		*day = *week = -1;
		return;
	}
	*day = (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
	strftime(w, sizeof(w), "%G%V", &tm);
	*week = strtol(w, NULL, 10);
}

struct bucket_rule {
	unsigned left;
	long last;
	uint8_t bit;
};

int prune_decide(const struct prune_policy *p, const struct snap_summary *s, size_t n,
		 const char *vm_name, uint8_t *reasons)
{
	struct order_ctx c = { .s = s };
	size_t *ord, i = 0;

	if (prune_policy_empty(p))
		return -EINVAL;
	if (n == 0)
		return 0;
	ord = malloc(n * sizeof(*ord));
	if (!ord)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		ord[k] = k;
	qsort_r(ord, n, sizeof(*ord), order_cmp, &c);
	while (i < n) {
		const char *vm = s[ord[i]].vm_name;
		struct bucket_rule daily = { p->keep_daily, -1, PRUNE_KEEP_DAILY };
		struct bucket_rule weekly = { p->keep_weekly, -1, PRUNE_KEEP_WEEKLY };
		unsigned last = p->keep_last;

		for (; i < n && !strcmp(s[ord[i]].vm_name, vm); i++) {
			uint8_t *why = &reasons[ord[i]];
			long day, week;

			*why = 0;
			if (vm_name && strcmp(vm, vm_name) != 0) {
				*why = PRUNE_KEEP_OTHER_VM;
				continue;
			}
			if (last) {
				*why |= PRUNE_KEEP_LAST;
				last--;
			}
			buckets_of(s[ord[i]].created_ns, &day, &week);
			if (daily.left && day != daily.last) {
				*why |= daily.bit;
				daily.last = day;
				daily.left--;
			}
			if (weekly.left && week != weekly.last) {
				*why |= weekly.bit;
				weekly.last = week;
				weekly.left--;
			}
		}
	}
	free(ord);
	return 0;
}

/* ---- Forget ------------------------------------------------------------------------- */

static void report(prune_report_fn fn, void *arg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(prune_report_fn fn, void *arg, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(arg, line);
}

static void backend_fail(struct backend *be, int rc, char *err, size_t errlen, const char *what,
			 const char *name)
{
	char msg[512];

	backend_error(be, msg, sizeof(msg));
	err_set(err, errlen, "prune: %s %s/%s: %s", what, be->location, name,
		msg[0] ? msg : strerror(-rc));
}

int prune_forget(struct repo *r, const struct prune_policy *p, const char *vm_name,
		 bool dry_run, prune_report_fn fn, void *arg, struct prune_stats *st, char *err,
		 size_t errlen)
{
	struct snap_summary *s = NULL;
	uint8_t *why = NULL;
	size_t n = 0;
	int rc;

	rc = snap_list(r, &s, &n, NULL);
	if (rc < 0) {
		backend_fail(r->be, rc, err, errlen, "list", SNAP_PREFIX_NAME);
		return rc;
	}
	why = calloc(n ? n : 1, 1);
	if (!why) {
		rc = -ENOMEM;
		err_set(err, errlen, "prune: out of memory");
		goto out;
	}
	rc = prune_decide(p, s, n, vm_name, why);
	if (rc < 0) {
		err_set(err, errlen, "prune: %s", rc == -EINVAL
			? "the policy keeps nothing: pass --keep-last, --keep-daily or --keep-weekly"
			: strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		char name[sizeof(SNAP_PREFIX_NAME) + SNAP_ID_BYTES], t[32];
		time_t sec = (time_t)(s[i].created_ns / 1000000000ull);
		struct tm tm;

		if (why[i] & PRUNE_KEEP_OTHER_VM)
			continue;
		if (why[i]) {
			st->snapshots_kept++;
			continue;
		}
		t[0] = '\0';
		if (localtime_r(&sec, &tm))
			strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S %Z", &tm);
		report(fn, arg, "%s snapshot %s (VM %s, %s)", dry_run ? "would forget" : "forget",
		       s[i].id, s[i].vm_name, t);
		st->snapshots_removed++;
		if (dry_run)
			continue;
		snprintf(name, sizeof(name), SNAP_PREFIX_NAME "%s", s[i].id);
		rc = backend_remove(r->be, name);
		if (rc == -ENOENT)
			rc = 0; /* forgotten by a concurrent prune */
		if (rc < 0) {
			backend_fail(r->be, rc, err, errlen, "delete", name);
			goto out;
		}
	}
out:
	free(why);
	free(s);
	return rc;
}

/* ---- Sweep -------------------------------------------------------------------------- */

/* One pack the index files name. */
struct sweep_pack {
	struct blob_id id;
	uint64_t bytes;
	uint64_t live, dead;     /* blob entries, over every index file listing it */
	uint64_t dead_stored;
	bool missing;            /* not in data/, or there with another size */
};

/* An index file, or a list of damaged blobs (the same format). */
struct sweep_index {
	char name[BACKEND_NAME_MAX + 1];
	struct index_file ix;
	bool has_dead;
};

struct sweep_list {
	struct sweep_index *v;
	size_t n, cap;
};

struct sweep {
	struct repo *r;
	struct blob_table live;    /* referenced blob ids */
	struct blob_table slots;   /* pack id -> index into packs (blob_loc.pack) */
	struct blob_table listed;  /* data/: pack id, size in offset, age in pack */
	struct copy_set marked;    /* the copies the damaged lists mark */
	struct blob_table covered; /* live blobs some kept index pack holds */
	struct sweep_pack *packs;
	size_t npacks, packs_cap;
	struct sweep_list idx;     /* index files */
	struct sweep_list dmg;     /* lists of damaged blobs */
	bool bad_index;            /* an index file did not decode: its packs are unknown */
	uint64_t grace_s;
	bool dry_run;
	struct prune_stats *st;
	prune_report_fn fn;
	void *arg;
	char *err;
	size_t errlen;
	int rc;
};

static int mark_ref(void *arg, const struct snap_ref *ref)
{
	struct sweep *w = arg;
	struct blob_loc loc = { .id = *ref->id };
	int rc = blob_table_add(&w->live, &loc);

	return rc < 0 ? rc : 0;
}

static int mark_one(void *arg, const char *name, uint64_t bytes)
{
	struct sweep *w = arg;
	const char *id = name + sizeof(SNAP_PREFIX_NAME) - 1;
	struct snap_manifest m;
	char err[512];
	int rc;

	(void)bytes;
	if (!snap_id_valid(id)) {
		report(w->fn, w->arg, "note: %s is not a snapshot manifest: ignored", name);
		return 0;
	}
	manifest_init(&m);
	rc = snap_load(w->r, id, &m, err, sizeof(err));
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		err_set(w->err, w->errlen, "prune: %s: nothing was deleted, since what it "
			"references is unknown: run 'godwit images verify'", err);
		return rc == -ENOMEM ? rc : -EBADMSG;
	}
	rc = manifest_foreach_ref(&m, mark_ref, w);
	manifest_free(&m);
	if (rc < 0)
		err_set(w->err, w->errlen, "prune: out of memory marking %s", id);
	return rc;
}

static int pack_slot(struct sweep *w, const struct index_pack *p, size_t *slot)
{
	const struct blob_loc *f = blob_table_find(&w->slots, &p->pack_id);
	struct blob_loc loc = { .id = p->pack_id };
	int rc;

	if (f) {
		*slot = f->pack;
		return 0;
	}
	if (w->npacks == w->packs_cap) {
		size_t cap = w->packs_cap ? 2 * w->packs_cap : 64;
		struct sweep_pack *v = realloc(w->packs, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		w->packs = v;
		w->packs_cap = cap;
	}
	if (w->npacks > UINT32_MAX)
		return -EOVERFLOW;
	loc.pack = (uint32_t)w->npacks;
	rc = blob_table_add(&w->slots, &loc);
	if (rc < 0)
		return rc;
	*slot = w->npacks;
	f = blob_table_find(&w->listed, &p->pack_id);
	w->packs[w->npacks++] = (struct sweep_pack){
		.id = p->pack_id, .bytes = p->pack_bytes,
		.missing = !f || f->offset != p->pack_bytes,
	};
	return 0;
}

/*
 * Read the index-format object name into a new entry of l (w, name, l, what): a
 * decode failure is a note and returns 1; 2 when it is gone; 0 when added; -errno.
 */
static int read_indexlike(struct sweep *w, const char *name, struct sweep_list *l,
			  const char *what)
{
	struct sweep_index *e;
	const char *why;
	int bad, rc;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct sweep_index *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	rc = repo_index_object_read(w->r->be, w->r->crypto, name, &e->ix, &bad, &why);
	if (rc == -ENOENT)
		return 2; /* removed since the list */
	if (rc < 0) {
		if (rc != -ENOMEM)
			backend_fail(w->r->be, rc, w->err, w->errlen, "read", name);
		return rc;
	}
	if (rc == 1) {
		report(w->fn, w->arg, "note: %s %s cannot be read (%s)%s", what, name, why,
		       l == &w->idx ? ": its packs are kept until 'godwit images repair' rebuilds "
				      "the index" : "");
		return 1;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	l->n++;
	return 0;
}

static int damaged_one(void *arg, const char *name, uint64_t bytes)
{
	struct sweep *w = arg;
	const struct sweep_index *e;
	int rc;

	(void)bytes;
	rc = read_indexlike(w, name, &w->dmg, "damaged-blob list");
	if (rc != 0)
		return rc < 0 ? rc : 0;
	e = &w->dmg.v[w->dmg.n - 1];
	for (uint32_t i = 0; i < e->ix.npacks; i++) {
		const struct index_pack *p = &e->ix.packs[i];

		for (uint32_t j = 0; j < p->nblobs; j++)
			if (copy_set_add(&w->marked, &p->pack_id, &p->entries[j].id) < 0)
				return -ENOMEM;
	}
	return 0;
}

static int index_one(void *arg, const char *name, uint64_t bytes)
{
	struct sweep *w = arg;
	struct sweep_index *e;
	int rc;

	(void)bytes;
	rc = read_indexlike(w, name, &w->idx, "index");
	if (rc == 1)
		w->bad_index = true;
	if (rc != 0)
		return rc < 0 ? rc : 0;
	e = &w->idx.v[w->idx.n - 1];
	for (uint32_t i = 0; i < e->ix.npacks; i++) {
		const struct index_pack *p = &e->ix.packs[i];
		size_t s;

		rc = pack_slot(w, p, &s);
		if (rc < 0)
			return rc;
		for (uint32_t j = 0; j < p->nblobs; j++) {
			/* A copy marked damaged serves no snapshot: it does not keep its pack. */
			if (blob_table_find(&w->live, &p->entries[j].id) &&
			    !copy_set_has(&w->marked, &p->pack_id, &p->entries[j].id)) {
				w->packs[s].live++;
			} else {
				w->packs[s].dead++;
				w->packs[s].dead_stored += p->entries[j].stored_bytes;
			}
		}
	}
	return 0;
}

/* A pack the index names goes: no live blob in it, or it no longer exists whole. */
static bool pack_dead(const struct sweep *w, const struct blob_id *id)
{
	const struct blob_loc *f = blob_table_find(&w->slots, id);

	return f && (w->packs[f->pack].live == 0 || w->packs[f->pack].missing);
}

/* Write index file e again without its dead packs (w, e). */
static int rewrite_index(struct sweep *w, struct sweep_index *e)
{
	struct index_file keep = { 0 };
	char name[INDEX_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	keep.packs = malloc((e->ix.npacks ? e->ix.npacks : 1) * sizeof(*keep.packs));
	if (!keep.packs)
		return -ENOMEM;
	for (uint32_t i = 0; i < e->ix.npacks; i++)
		if (!pack_dead(w, &e->ix.packs[i].pack_id))
			keep.packs[keep.npacks++] = e->ix.packs[i];
	if (keep.npacks == 0) {
		free(keep.packs);
		return 0;
	}
	rc = index_file_encode(&keep, w->r->crypto, &buf, &len);
	free(keep.packs);
	if (rc < 0) {
		err_set(w->err, w->errlen, "prune: encode a new index: %s", strerror(-rc));
		return rc;
	}
	index_file_name(buf, len, name);
	report(w->fn, w->arg, "%s %s (%u packs of %s)", w->dry_run ? "would write" : "write", name,
	       e->ix.npacks, e->name);
	if (!w->dry_run) {
		rc = backend_put(w->r->be, name, buf, len);
		if (rc == -EEXIST)
			rc = 0;
		if (rc < 0)
			backend_fail(w->r->be, rc, w->err, w->errlen, "write", name);
	}
	free(buf);
	if (rc == 0)
		w->st->indexes_written++;
	return rc;
}

/* Delete name unless this is a dry run (w, name); a name gone already is fine. */
static int sweep_remove(struct sweep *w, const char *name)
{
	int rc;

	if (w->dry_run)
		return 0;
	rc = backend_remove(w->r->be, name);
	if (rc < 0 && rc != -ENOENT) {
		backend_fail(w->r->be, rc, w->err, w->errlen, "delete", name);
		return rc;
	}
	return 0;
}

static void sweep_list_free(struct sweep_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		index_file_free(&l->v[i].ix);
	free(l->v);
}

static void sweep_free(struct sweep *w)
{
	sweep_list_free(&w->idx);
	sweep_list_free(&w->dmg);
	free(w->packs);
	blob_table_free(&w->live);
	blob_table_free(&w->slots);
	blob_table_free(&w->listed);
	copy_set_free(&w->marked);
	blob_table_free(&w->covered);
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

/* 3. New index files, then the old ones go, then the dead packs (w). */
static int sweep_indexed(struct sweep *w)
{
	int rc;

	for (size_t i = 0; i < w->idx.n; i++) {
		for (uint32_t j = 0; j < w->idx.v[i].ix.npacks; j++)
			w->idx.v[i].has_dead |= pack_dead(w, &w->idx.v[i].ix.packs[j].pack_id);
		if (!w->idx.v[i].has_dead)
			continue;
		rc = rewrite_index(w, &w->idx.v[i]);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < w->idx.n; i++) {
		if (!w->idx.v[i].has_dead)
			continue;
		report(w->fn, w->arg, "%s %s", w->dry_run ? "would delete" : "delete",
		       w->idx.v[i].name);
		w->st->indexes_removed++;
		rc = sweep_remove(w, w->idx.v[i].name);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < w->npacks; i++) {
		const struct sweep_pack *p = &w->packs[i];
		char name[PACK_NAME_BYTES], hex[BLOB_ID_HEX_BYTES];

		if (p->missing) {
			/* Gone already: only its index entries went. Another copy serves, if any. */
			blob_id_hex(&p->id, hex);
			report(w->fn, w->arg, "%s missing pack %s from the index (%" PRIu64 " blobs, %"
			       PRIu64 " of them referenced: 'godwit images verify' names what is lost)",
			       w->dry_run ? "would drop" : "drop", hex, p->live + p->dead, p->live);
			w->st->packs_missing++;
			continue;
		}
		if (p->live)
			continue;
		pack_name(&p->id, name);
		report(w->fn, w->arg, "%s %s (%.1f MiB, %" PRIu64 " unreferenced blobs)",
		       w->dry_run ? "would delete" : "delete", name, mib(p->bytes), p->dead);
		w->st->packs_removed++;
		w->st->bytes_removed += p->bytes;
		rc = sweep_remove(w, name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The live blobs the index keeps a copy of after this sweep (w). */
static int sweep_covered(struct sweep *w)
{
	for (size_t i = 0; i < w->idx.n; i++) {
		const struct index_file *ix = &w->idx.v[i].ix;

		for (uint32_t j = 0; j < ix->npacks; j++) {
			const struct index_pack *p = &ix->packs[j];

			if (pack_dead(w, &p->pack_id))
				continue;
			for (uint32_t k = 0; k < p->nblobs; k++) {
				struct blob_loc loc = { .id = p->entries[k].id };

				if (!blob_table_find(&w->live, &loc.id) ||
				    copy_set_has(&w->marked, &p->pack_id, &loc.id))
					continue;
				if (blob_table_add(&w->covered, &loc) < 0)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/*
 * Whether the unindexed pack name holds a blob a snapshot needs that no index keeps (w,
 * name, bytes, need): then only 'images repair' may decide. A pack that does not decode
 * holds nothing anyone can read. Returns 0 or -errno.
 */
static int unindexed_needed(struct sweep *w, const char *name, bool *need)
{
	struct pack_entry *es = NULL;
	const char *why = "";
	uint8_t *buf;
	size_t len;
	uint32_t n = 0;
	int rc;

	*need = false;
	rc = backend_get_all(w->r->be, name, PACK_MAX_BYTES, &buf, &len);
	if (rc == -ENOENT || rc == -EMSGSIZE)
		return 0;
	if (rc < 0) {
		backend_fail(w->r->be, rc, w->err, w->errlen, "read", name);
		return rc;
	}
	rc = pack_decode(buf, len, w->r->crypto, &es, &n, &why);
	free(buf);
	if (rc == -ENOMEM)
		return rc;
	for (uint32_t i = 0; rc == 0 && i < n && !*need; i++)
		*need = blob_table_find(&w->live, &es[i].id) &&
			!blob_table_find(&w->covered, &es[i].id);
	free(es);
	return 0;
}

/*
 * 4. Packs no index names: a crashed or killed writer's, or, for a writer that took no
 * lock (an older godwit) or lost it, one in progress. Old enough ones go, unless they
 * hold what a snapshot needs and no index keeps (w).
 */
static int sweep_unindexed(struct sweep *w)
{
	const struct blob_loc *l;
	size_t pos = 0;
	uint64_t young = 0, unknown = 0, kept_needed = 0;
	int rc;

	if (w->bad_index) {
		while ((l = blob_table_next(&w->listed, &pos)))
			w->st->packs_unindexed += !blob_table_find(&w->slots, &l->id);
		if (w->st->packs_unindexed)
			report(w->fn, w->arg, "note: %" PRIu64 " packs in no readable index are kept: "
			       "'godwit images repair' rebuilds the index first", w->st->packs_unindexed);
		return 0;
	}
	rc = sweep_covered(w);
	if (rc < 0)
		return rc;
	while ((l = blob_table_next(&w->listed, &pos))) {
		char name[PACK_NAME_BYTES];
		bool need;

		if (blob_table_find(&w->slots, &l->id))
			continue;
		if (l->pack == UINT32_MAX || l->pack < w->grace_s) {
			unknown += l->pack == UINT32_MAX;
			young += l->pack != UINT32_MAX;
			w->st->packs_unindexed++;
			continue;
		}
		pack_name(&l->id, name);
		rc = unindexed_needed(w, name, &need);
		if (rc < 0)
			return rc;
		if (need) {
			kept_needed++;
			w->st->packs_unindexed++;
			continue;
		}
		report(w->fn, w->arg, "%s %s (%.1f MiB, in no index, %u h old)",
		       w->dry_run ? "would delete" : "delete", name, mib(l->offset), l->pack / 3600);
		w->st->packs_removed++;
		w->st->bytes_removed += l->offset;
		rc = sweep_remove(w, name);
		if (rc < 0)
			return rc;
	}
	if (young)
		report(w->fn, w->arg, "note: %" PRIu64 " packs in no index are younger than the grace "
		       "period (%" PRIu64 " h): kept (a snapshot in progress, or an interrupted one)",
		       young, w->grace_s / 3600);
	if (unknown)
		report(w->fn, w->arg, "note: %" PRIu64 " packs in no index are kept: the storage "
		       "does not say how old they are", unknown);
	if (kept_needed)
		report(w->fn, w->arg, "note: %" PRIu64 " packs in no index hold blobs snapshots "
		       "need: kept; 'godwit images repair' indexes them", kept_needed);
	return 0;
}

/* 5. Lists of damaged blobs whose packs are all gone (w). */
static int sweep_damaged_lists(struct sweep *w)
{
	for (size_t i = 0; i < w->dmg.n; i++) {
		const struct index_file *ix = &w->dmg.v[i].ix;
		bool exists = false;
		int rc;

		for (uint32_t j = 0; j < ix->npacks && !exists; j++) {
			const struct blob_id *id = &ix->packs[j].pack_id;
			const struct blob_loc *f = blob_table_find(&w->slots, id);

			exists = blob_table_find(&w->listed, id) &&
				 !(f && (w->packs[f->pack].live == 0 || w->packs[f->pack].missing));
		}
		if (exists)
			continue;
		report(w->fn, w->arg, "%s %s (its packs are gone)", w->dry_run ? "would delete"
									: "delete", w->dmg.v[i].name);
		rc = sweep_remove(w, w->dmg.v[i].name);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int leftover_one(void *arg, const char *name, uint64_t bytes, int64_t age_s)
{
	struct sweep *w = arg;

	report(w->fn, w->arg, "%s %s (%.1f MiB, left by an interrupted write %lld h ago)",
	       w->dry_run ? "would delete" : "delete", name, mib(bytes), (long long)(age_s / 3600));
	w->st->partials_removed++;
	w->st->bytes_removed += bytes;
	return 0;
}

int prune_sweep(struct repo *r, bool dry_run, uint64_t grace_s, prune_report_fn fn, void *arg,
		struct prune_stats *st, char *err, size_t errlen)
{
	struct sweep w = { .r = r, .grace_s = grace_s, .dry_run = dry_run, .st = st, .fn = fn,
			   .arg = arg, .err = err, .errlen = errlen };
	int rc;

	if (errlen)
		err[0] = '\0';
	rc = blob_table_init(&w.live);
	if (rc == 0)
		rc = blob_table_init(&w.slots);
	if (rc == 0)
		rc = blob_table_init(&w.listed);
	if (rc == 0)
		rc = copy_set_init(&w.marked);
	if (rc == 0)
		rc = blob_table_init(&w.covered);
	if (rc < 0) {
		err_set(err, errlen, "prune: %s", strerror(-rc));
		goto out;
	}
	/* 1. Mark. */
	rc = backend_list(r->be, SNAP_PREFIX_NAME, mark_one, &w);
	if (rc < 0) {
		if (rc != -EBADMSG && rc != -ENOMEM)
			backend_fail(r->be, rc, err, errlen, "list", SNAP_PREFIX_NAME);
		goto out;
	}
	/* 2. Which packs exist, which copies are damaged, and which packs are dead. */
	rc = repo_list_packs(r->be, &w.listed, NULL, NULL);
	if (rc == 0)
		rc = backend_list(r->be, REPO_DAMAGED_PREFIX, damaged_one, &w);
	if (rc == 0)
		rc = backend_list(r->be, "index/", index_one, &w);
	if (rc < 0) {
		if (err[0] == '\0')
			backend_fail(r->be, rc, err, errlen, "list", "data/, damaged/ and index/");
		goto out;
	}
	st->packs_total = w.npacks;
	for (size_t i = 0; i < w.npacks; i++) {
		if (w.packs[i].live == 0 || w.packs[i].missing)
			continue;
		if (w.packs[i].dead) {
			st->packs_partial++;
			st->bytes_partial_dead += w.packs[i].dead_stored;
		}
	}
	rc = sweep_indexed(&w);
	if (rc == 0)
		rc = sweep_unindexed(&w);
	if (rc == 0)
		rc = sweep_damaged_lists(&w);
	/* 6. What interrupted writes left. */
	if (rc == 0)
		rc = backend_leftovers(r->be, grace_s, !dry_run, leftover_one, &w);
	if (rc < 0) {
		if (err[0] == '\0')
			backend_fail(r->be, rc, err, errlen, "clean", "leftovers");
		goto out;
	}
	if (st->packs_partial)
		report(fn, arg, "note: %" PRIu64 " packs hold %.1f MiB of unreferenced blobs beside "
		       "live ones and are kept whole (repacking is future work)", st->packs_partial,
		       mib(st->bytes_partial_dead));
out:
	sweep_free(&w);
	return rc;
}
