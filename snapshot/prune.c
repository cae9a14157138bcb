/* Prune: restic's retention rules over snapshot summaries, forget, and mark-and-sweep of whole packs. */
#include "snapshot/prune.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snapshot/backend.h"
#include "snapshot/blob_table_priv.h"
#include "snapshot/index_file.h"
#include "snapshot/pack.h"
#include "snapshot/repo.h"
#include "snapshot/repo_priv.h"

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
	repo_errf(err, errlen, "prune: %s %s/%s: %s", what, be->location, name,
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
		repo_errf(err, errlen, "prune: out of memory");
		goto out;
	}
	rc = prune_decide(p, s, n, vm_name, why);
	if (rc < 0) {
		repo_errf(err, errlen, "prune: %s", rc == -EINVAL
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
};

struct sweep_index {
	char name[BACKEND_NAME_MAX + 1];
	struct index_file ix;
	bool has_dead;
};

struct sweep {
	struct repo *r;
	struct blob_table live;  /* referenced blob ids */
	struct blob_table slots; /* pack id -> index into packs (blob_loc.pack) */
	struct sweep_pack *packs;
	size_t npacks, packs_cap;
	struct sweep_index *idx;
	size_t nidx, idx_cap;
	uint64_t data_objects;
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
		repo_errf(w->err, w->errlen, "prune: %s: nothing was deleted, since what it "
			  "references is unknown: run 'godwit images verify'", err);
		return rc == -ENOMEM ? rc : -EBADMSG;
	}
	rc = manifest_foreach_ref(&m, mark_ref, w);
	manifest_free(&m);
	if (rc < 0)
		repo_errf(w->err, w->errlen, "prune: out of memory marking %s", id);
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
	w->packs[w->npacks++] = (struct sweep_pack){ .id = p->pack_id, .bytes = p->pack_bytes };
	return 0;
}

static int index_one(void *arg, const char *name, uint64_t bytes)
{
	struct sweep *w = arg;
	struct sweep_index *e;
	const char *why = "";
	uint8_t *buf;
	size_t len;
	int rc;

	(void)bytes;
	rc = backend_get_all(w->r->be, name, INDEX_MAX_BYTES, &buf, &len);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0 && rc != -EMSGSIZE) {
		backend_fail(w->r->be, rc, w->err, w->errlen, "read", name);
		return rc;
	}
	if (w->nidx == w->idx_cap) {
		size_t cap = w->idx_cap ? 2 * w->idx_cap : 16;
		struct sweep_index *v = realloc(w->idx, cap * sizeof(*v));

		if (!v) {
			free(rc == 0 ? buf : NULL);
			return -ENOMEM;
		}
		w->idx = v;
		w->idx_cap = cap;
	}
	e = &w->idx[w->nidx];
	memset(e, 0, sizeof(*e));
	if (rc == 0) {
		rc = index_file_decode(buf, len, w->r->crypto, &e->ix, &why);
		free(buf);
	} else {
		why = "larger than the limit";
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		/* Its packs are unknown, so they stay: none of them is in w->packs. */
		report(w->fn, w->arg, "note: index %s cannot be read (%s): its packs are kept",
		       name, why);
		return 0;
	}
	snprintf(e->name, sizeof(e->name), "%s", name);
	w->nidx++;
	for (uint32_t i = 0; i < e->ix.npacks; i++) {
		const struct index_pack *p = &e->ix.packs[i];
		size_t s;

		rc = pack_slot(w, p, &s);
		if (rc < 0)
			return rc;
		for (uint32_t j = 0; j < p->nblobs; j++) {
			if (blob_table_find(&w->live, &p->entries[j].id)) {
				w->packs[s].live++;
			} else {
				w->packs[s].dead++;
				w->packs[s].dead_stored += p->entries[j].stored_bytes;
			}
		}
	}
	return 0;
}

static int count_data(void *arg, const char *name, uint64_t bytes)
{
	struct sweep *w = arg;

	(void)name;
	(void)bytes;
	w->data_objects++;
	return 0;
}

static bool pack_dead(const struct sweep *w, const struct blob_id *id)
{
	const struct blob_loc *f = blob_table_find(&w->slots, id);

	return f && w->packs[f->pack].live == 0;
}

/* Write index file e again without its dead packs (w, e, dry_run, st). */
static int rewrite_index(struct sweep *w, struct sweep_index *e, bool dry_run,
			 struct prune_stats *st)
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
		repo_errf(w->err, w->errlen, "prune: encode a new index: %s", strerror(-rc));
		return rc;
	}
	index_file_name(buf, len, name);
	report(w->fn, w->arg, "%s %s (%u packs of %s)", dry_run ? "would write" : "write", name,
	       e->ix.npacks, e->name);
	if (!dry_run) {
		rc = backend_put(w->r->be, name, buf, len);
		if (rc == -EEXIST)
			rc = 0;
		if (rc < 0)
			backend_fail(w->r->be, rc, w->err, w->errlen, "write", name);
	}
	free(buf);
	if (rc == 0)
		st->indexes_written++;
	return rc;
}

static void sweep_free(struct sweep *w)
{
	for (size_t i = 0; i < w->nidx; i++)
		index_file_free(&w->idx[i].ix);
	free(w->idx);
	free(w->packs);
	blob_table_free(&w->live);
	blob_table_free(&w->slots);
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

int prune_sweep(struct repo *r, bool dry_run, prune_report_fn fn, void *arg,
		struct prune_stats *st, char *err, size_t errlen)
{
	struct sweep w = { .r = r, .fn = fn, .arg = arg, .err = err, .errlen = errlen };
	int rc;

	if (errlen)
		err[0] = '\0';
	rc = blob_table_init(&w.live);
	if (rc == 0)
		rc = blob_table_init(&w.slots);
	if (rc < 0) {
		repo_errf(err, errlen, "prune: %s", strerror(-rc));
		goto out;
	}
	/* 1. Mark. */
	rc = backend_list(r->be, SNAP_PREFIX_NAME, mark_one, &w);
	if (rc < 0) {
		if (rc != -EBADMSG && rc != -ENOMEM)
			backend_fail(r->be, rc, err, errlen, "list", SNAP_PREFIX_NAME);
		goto out;
	}
	/* 2. Which packs are dead. */
	rc = backend_list(r->be, "index/", index_one, &w);
	if (rc == 0)
		rc = backend_list(r->be, "data/", count_data, &w);
	if (rc < 0) {
		if (err[0] == '\0')
			backend_fail(r->be, rc, err, errlen, "list", "index/ and data/");
		goto out;
	}
	st->packs_total = w.npacks;
	st->packs_unindexed = w.data_objects > w.npacks ? w.data_objects - w.npacks : 0;
	for (size_t i = 0; i < w.npacks; i++) {
		if (w.packs[i].live == 0)
			continue;
		if (w.packs[i].dead) {
			st->packs_partial++;
			st->bytes_partial_dead += w.packs[i].dead_stored;
		}
	}
	for (size_t i = 0; i < w.nidx; i++)
		for (uint32_t j = 0; j < w.idx[i].ix.npacks; j++)
			w.idx[i].has_dead |= pack_dead(&w, &w.idx[i].ix.packs[j].pack_id);
	/* 3. New index files, then the old ones go, then the dead packs. */
	for (size_t i = 0; i < w.nidx; i++) {
		if (!w.idx[i].has_dead)
			continue;
		rc = rewrite_index(&w, &w.idx[i], dry_run, st);
		if (rc < 0)
			goto out;
	}
	for (size_t i = 0; i < w.nidx; i++) {
		if (!w.idx[i].has_dead)
			continue;
		report(fn, arg, "%s %s", dry_run ? "would delete" : "delete", w.idx[i].name);
		st->indexes_removed++;
		if (dry_run)
			continue;
		rc = backend_remove(r->be, w.idx[i].name);
		if (rc < 0 && rc != -ENOENT) {
			backend_fail(r->be, rc, err, errlen, "delete", w.idx[i].name);
			goto out;
		}
		rc = 0;
	}
	for (size_t i = 0; i < w.npacks; i++) {
		char name[PACK_NAME_BYTES];

		if (w.packs[i].live)
			continue;
		pack_name(&w.packs[i].id, name);
		report(fn, arg, "%s %s (%.1f MiB, %" PRIu64 " unreferenced blobs)",
		       dry_run ? "would delete" : "delete", name, mib(w.packs[i].bytes),
		       w.packs[i].dead);
		st->packs_removed++;
		st->bytes_removed += w.packs[i].bytes;
		if (dry_run)
			continue;
		rc = backend_remove(r->be, name);
		if (rc < 0 && rc != -ENOENT) {
			backend_fail(r->be, rc, err, errlen, "delete", name);
			goto out;
		}
		rc = 0;
	}
	if (st->packs_partial)
		report(fn, arg, "note: %" PRIu64 " packs hold %.1f MiB of unreferenced blobs beside "
		       "live ones and are kept whole (repacking is future work)", st->packs_partial,
		       mib(st->bytes_partial_dead));
	if (st->packs_unindexed)
		report(fn, arg, "note: %" PRIu64 " packs are in no index file (an interrupted "
		       "snapshot's, or one in progress): kept", st->packs_unindexed);
out:
	sweep_free(&w);
	return rc;
}
