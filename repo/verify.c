/* repo_verify: indexes, packs (names, sizes and, on request, every byte), then every manifest's references. */
#include "repo/verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repo/manifest.h"
#include "repo/prune.h"
#include "repo/repo_priv.h"
#include "util/range.h"

#define VERIFY_LINES_PER_SNAPSHOT 10

enum pack_state {
	PACK_OK = 0,
	PACK_MISSING,
	PACK_DAMAGED,
};

struct verify {
	struct repo *r;
	bool read_data;
	bool mark;
	repo_verify_fn fn;
	void *arg;
	struct repo_verify_result res;
	uint8_t *pack_state;        /* per slot, enum pack_state */
	struct blob_table listed;   /* packs in data/: id -> size (in offset) */
	struct blob_table bad;      /* blobs found damaged while reading packs */
	const struct blob_loc **by_slot; /* index entries grouped by pack slot */
	size_t *slot_start;         /* by_slot[slot_start[s], slot_start[s + 1]) */
	uint8_t *dst;               /* BLOB_RAW_MAX_BYTES for decompressing (read_data) */
	struct blob_id *found;      /* damaged copies the index uses, to mark */
	size_t nfound, found_cap;
	struct repo_copy *healed;   /* marked copies that read back whole, to unmark */
	size_t nhealed, healed_cap;
};

static void report(struct verify *v, enum repo_verify_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct verify *v, enum repo_verify_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (level == REPO_VERIFY_PROBLEM)
		v->res.problems++;
	else
		v->res.notes++;
	if (!v->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->fn(v->arg, level, line);
}

static const char *after_slash(const char *name)
{
	const char *s = strrchr(name, '/');

	return s ? s + 1 : name;
}

static int count_one(void *arg, const char *name, uint64_t bytes)
{
	(void)name, (void)bytes;
	(*(uint64_t *)arg)++;
	return 0;
}

static void not_a_pack(void *arg, const char *name)
{
	report(arg, REPO_VERIFY_NOTE, "%s: not a pack name (ignored)", name);
}

/* Group the index entries by pack slot (a counting sort over the blob table). */
static int group_by_slot(struct verify *v)
{
	struct repo *r = v->r;
	const struct blob_loc *loc;
	size_t pos = 0, *fill;

	v->slot_start = calloc(r->npacks + 1, sizeof(*v->slot_start));
	v->by_slot = malloc((r->blobs.n ? r->blobs.n : 1) * sizeof(*v->by_slot));
	fill = calloc(r->npacks + 1, sizeof(*fill));
	if (!v->slot_start || !v->by_slot || !fill) {
		free(fill);
		return -ENOMEM;
	}
	while ((loc = blob_table_next(&r->blobs, &pos)))
		v->slot_start[loc->pack + 1]++;
	for (uint32_t s = 0; s < r->npacks; s++)
		v->slot_start[s + 1] += v->slot_start[s];
	memcpy(fill, v->slot_start, (r->npacks + 1) * sizeof(*fill));
	pos = 0;
	while ((loc = blob_table_next(&r->blobs, &pos)))
		v->by_slot[fill[loc->pack]++] = loc;
	free(fill);
	return 0;
}

/*
 * A blob of pack slot s that does not read back (v, s, hex, id, why). The copy the index
 * uses, unmarked, is news: a PROBLEM, remembered for marking and for the snapshots'
 * check. A copy marked already, or one the index does not use (another copy serves, or
 * no snapshot can name it), is only a NOTE. Returns 0 or -ENOMEM.
 */
static int blob_damaged(struct verify *v, uint32_t s, const char *hex, const struct blob_id *id,
			const char *why)
{
	const struct blob_loc *loc = blob_table_find(&v->r->blobs, id);
	struct blob_loc bad = { .id = *id, .pack = s };
	char bhex[BLOB_ID_HEX_BYTES];

	blob_id_hex(id, bhex);
	if (!loc || loc->pack != s || loc->damaged) {
		report(v, REPO_VERIFY_NOTE, "pack %s: blob %s: %s (%s: no snapshot reads this "
		       "copy; prune removes the pack once its other blobs are unreferenced)", hex,
		       bhex, why, loc && loc->pack == s ? "marked damaged" : "not the indexed copy");
		return 0;
	}
	report(v, REPO_VERIFY_PROBLEM, "pack %s: blob %s: %s", hex, bhex, why);
	if (blob_table_add(&v->bad, &bad) < 0)
		return -ENOMEM;
	if (v->nfound == v->found_cap) {
		size_t cap = v->found_cap ? 2 * v->found_cap : 64;
		struct blob_id *f = realloc(v->found, cap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		v->found = f;
		v->found_cap = cap;
	}
	v->found[v->nfound++] = *id;
	return 0;
}

/*
 * A blob of pack slot s read back whole (v, s, id): if its copy there is marked damaged
 * (a pack put back from elsewhere), the mark goes. Returns 0 or -ENOMEM.
 */
static int blob_whole(struct verify *v, uint32_t s, const struct blob_id *id)
{
	struct blob_loc *loc = blob_table_find_mut(&v->r->blobs, id);
	struct blob_loc *dup = blob_table_find_mut(&v->r->dups, id);
	struct blob_loc *copy = loc && loc->pack == s ? loc : dup && dup->pack == s ? dup : NULL;

	if (!copy || !copy->damaged)
		return 0;
	if (v->nhealed == v->healed_cap) {
		size_t cap = v->healed_cap ? 2 * v->healed_cap : 16;
		struct repo_copy *h = realloc(v->healed, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		v->healed = h;
		v->healed_cap = cap;
	}
	v->healed[v->nhealed++] = (struct repo_copy){ .pack = v->r->packs[s].id, .blob = *id };
	copy->damaged = 0; /* for the snapshots' check below, with the mark */
	return 0;
}

/* How many copies in pack slot s are marked damaged and not used (v, s). */
static uint64_t marked_in(const struct verify *v, uint32_t s)
{
	const struct blob_loc *d;
	size_t pos = 0;
	uint64_t n = 0;

	while ((d = blob_table_next(&v->r->dups, &pos)))
		n += d->pack == s && d->damaged;
	return n;
}

/*
 * The pack in buf failed as a whole: check each blob the index places in it on its own
 * (v, s, hex, buf, len). Returns the number found damaged, or -ENOMEM.
 */
static int verify_pack_entries(struct verify *v, uint32_t s, const char *hex, const uint8_t *buf,
			       size_t len)
{
	int bad = 0;

	for (size_t k = v->slot_start[s]; k < v->slot_start[s + 1]; k++) {
		const struct blob_loc *loc = v->by_slot[k];
		struct pack_entry e = {
			.id = loc->id, .offset = loc->offset, .stored_bytes = loc->stored_bytes,
			.raw_bytes = loc->raw_bytes, .crc = loc->crc, .type = loc->type,
			.flags = loc->flags,
		};
		uint64_t rec_len = pack_record_bytes(&e);
		const uint8_t *payload;
		const char *why = "the pack is shorter than its index entry";
		int rc = -EPROTO;

		if (range_ok(loc->offset, rec_len, len))
			rc = pack_record_check(buf + loc->offset, (size_t)rec_len, &e, &payload, &why);
		if (rc == 0)
			rc = repo_blob_decode(v->r, loc, payload, v->dst, &why);
		if (rc == -ENOMEM)
			return rc;
		v->res.blobs_read++;
		if (rc == 0) {
			if (blob_whole(v, s, &loc->id) < 0)
				return -ENOMEM;
			continue;
		}
		bad++;
		if (blob_damaged(v, s, hex, &loc->id, rc == -EBADMSG || rc == -EPROTO ? why
										     : strerror(-rc)) < 0)
			return -ENOMEM;
	}
	return bad;
}

/* Read pack slot s whole and check every byte of it (v, s, name, hex). */
static int verify_pack_data(struct verify *v, uint32_t s, const char *name, const char *hex)
{
	struct repo *r = v->r;
	struct pack_entry *es = NULL;
	struct blob_table trailer;
	const char *why = "";
	uint8_t *buf, *dst = NULL, sum[32];
	size_t len;
	uint32_t n = 0;
	int rc;

	rc = backend_get_all(r->be, name, PACK_MAX_BYTES, &buf, &len);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		report(v, REPO_VERIFY_PROBLEM, "pack %s: read: %s", hex, strerror(-rc));
		v->pack_state[s] = PACK_DAMAGED;
		return 0;
	}
	v->res.bytes_read += len;
	if (!v->dst)
		v->dst = malloc(BLOB_RAW_MAX_BYTES);
	if (!v->dst) {
		rc = -ENOMEM;
		goto out;
	}
	rc = pack_decode(buf, len, r->crypto, &es, &n, &why);
	if (rc == -ENOMEM)
		goto out;
	if (rc < 0) {
		const char *pack_why = why;
		uint64_t before = v->res.problems, known = marked_in(v, s);

		/* Which blobs the damage took: the rest of the pack still serves. */
		rc = verify_pack_entries(v, s, hex, buf, len);
		if (rc < 0)
			goto out;
		if (rc > 0 || known)
			report(v, v->res.problems == before ? REPO_VERIFY_NOTE : REPO_VERIFY_PROBLEM,
			       "pack %s: %s (the damaged blobs %s)", hex, pack_why,
			       v->res.problems == before ? "are marked: no snapshot reads them"
							 : "are named");
		else
			report(v, REPO_VERIFY_PROBLEM, "pack %s: %s (every blob the index places in "
			       "it reads back; its trailer, which 'images repair' needs, is damaged)",
			       hex, pack_why);
		rc = 0;
		goto out;
	}
	sha256_buf(buf, len, sum);
	if (memcmp(sum, r->packs[s].id.b, 32) != 0) {
		report(v, REPO_VERIFY_PROBLEM, "pack %s: content does not match its name", hex);
		v->pack_state[s] = PACK_DAMAGED;
	}
	rc = blob_table_init(&trailer);
	if (rc < 0)
		goto out;
	dst = v->dst;
	/* Every blob in the pack: decompress and re-hash. */
	for (uint32_t i = 0; i < n; i++) {
		struct blob_loc loc = {
			.id = es[i].id, .pack = s, .offset = (uint32_t)es[i].offset,
			.stored_bytes = es[i].stored_bytes, .raw_bytes = es[i].raw_bytes,
			.crc = es[i].crc, .type = es[i].type, .flags = es[i].flags,
		};

		if (blob_table_add(&trailer, &loc) < 0) {
			rc = -ENOMEM;
			goto out_table;
		}
		rc = repo_blob_decode(r, &loc, buf + pack_payload_offset(&es[i]), dst, &why);
		if (rc == -ENOMEM)
			goto out_table;
		v->res.blobs_read++;
		if (rc == 0 ? blob_whole(v, s, &es[i].id) < 0
			    : blob_damaged(v, s, hex, &es[i].id,
					   rc == -EBADMSG ? why : strerror(-rc)) < 0) {
			rc = -ENOMEM;
			goto out_table;
		}
	}
	rc = 0;
	/* Every index entry for this pack must describe a blob the trailer has. */
	for (size_t k = v->slot_start[s]; k < v->slot_start[s + 1]; k++) {
		const struct blob_loc *want = v->by_slot[k];
		const struct blob_loc *got = blob_table_find(&trailer, &want->id);

		if (got && got->offset == want->offset && got->stored_bytes == want->stored_bytes &&
		    got->raw_bytes == want->raw_bytes && got->crc == want->crc &&
		    got->flags == want->flags && got->type == want->type)
			continue;
		rc = blob_damaged(v, s, hex, &want->id, got ? "the index entry does not match the pack"
							    : "in the index but not in the pack");
		if (rc < 0)
			break;
	}
out_table:
	blob_table_free(&trailer);
out:
	free(es);
	free(buf);
	return rc;
}

/* "3 h", "2 days": an age for a person (age_s, out, len). */
static void age_text(int64_t age_s, char *out, size_t len)
{
	if (age_s < 0)
		snprintf(out, len, "of unknown age");
	else if (age_s < 3600)
		snprintf(out, len, "%lld min old", (long long)(age_s / 60));
	else if (age_s < 2 * 86400)
		snprintf(out, len, "%lld h old", (long long)(age_s / 3600));
	else
		snprintf(out, len, "%lld days old", (long long)(age_s / 86400));
}

/*
 * What prune will do with garbage of age age_s (v, age_s, out, len): the same rule as
 * prune_sweep's, so the hint and the prune agree.
 */
static void prune_hint(const struct verify *v, int64_t age_s, char *out, size_t len)
{
	char age[32];

	age_text(age_s, age, sizeof(age));
	if (v->r->nbad)
		snprintf(out, len, "%s; an index is damaged, so prune keeps it: 'godwit images "
			 "repair' indexes it if it is whole", age);
	else if (age_s >= PRUNE_GRACE_DEFAULT_S)
		snprintf(out, len, "%s: the next prune removes it unless a snapshot needs its "
			 "blobs ('godwit images repair' indexes it then)", age);
	else
		snprintf(out, len, "%s: a snapshot in progress, or an interrupted one; prune "
			 "removes it once it is %u h old unless a snapshot needs its blobs ('godwit "
			 "images repair' indexes it then)", age, PRUNE_GRACE_DEFAULT_S / 3600);
}

static int leftover_note(void *arg, const char *name, uint64_t bytes, int64_t age_s)
{
	struct verify *v = arg;
	char hint[256];

	(void)bytes;
	prune_hint(v, age_s, hint, sizeof(hint));
	report(v, REPO_VERIFY_NOTE, "%s: left by an interrupted write, %s", name, hint);
	return 0;
}

static int verify_packs(struct verify *v)
{
	struct repo *r = v->r;
	const struct blob_loc *loc;
	size_t pos = 0;
	int rc;

	for (uint32_t s = 0; s < r->npacks; s++) {
		const struct blob_loc *l;
		char hex[BLOB_ID_HEX_BYTES], name[PACK_NAME_BYTES];
		uint64_t nblobs = v->slot_start[s + 1] - v->slot_start[s];

		if (blob_id_is_zero(&r->packs[s].id))
			continue; /* being built: not written yet */
		v->res.packs++;
		blob_id_hex(&r->packs[s].id, hex);
		pack_name(&r->packs[s].id, name);
		l = blob_table_find(&v->listed, &r->packs[s].id);
		if (!l) {
			report(v, REPO_VERIFY_PROBLEM, "pack %s: missing (the index lists %llu blobs in it)",
			       hex, (unsigned long long)nblobs);
			v->pack_state[s] = PACK_MISSING;
			continue;
		}
		if (l->offset != r->packs[s].bytes) {
			report(v, REPO_VERIFY_PROBLEM, "pack %s: size %s%u, the index says %llu", hex,
			       l->offset == UINT32_MAX ? "over " : "",
			       l->offset == UINT32_MAX ? PACK_MAX_BYTES : l->offset,
			       (unsigned long long)r->packs[s].bytes);
			v->pack_state[s] = PACK_DAMAGED;
			continue;
		}
		if (v->read_data) {
			rc = verify_pack_data(v, s, name, hex);
			if (rc < 0)
				return rc;
		}
	}
	while ((loc = blob_table_next(&v->listed, &pos))) {
		char hex[BLOB_ID_HEX_BYTES], hint[256];

		if (blob_table_find(&r->pack_slots, &loc->id))
			continue;
		blob_id_hex(&loc->id, hex);
		prune_hint(v, loc->pack == UINT32_MAX ? -1 : (int64_t)loc->pack, hint, sizeof(hint));
		report(v, REPO_VERIFY_NOTE, "pack %s: in no index, %s", hex, hint);
	}
	return backend_leftovers(r->be, 0, false, leftover_note, v);
}

struct snap_check {
	struct verify *v;
	const char *id;
	uint64_t missing, wrong_size, damaged;
};

static int snap_check_ref(void *arg, const struct snap_ref *ref)
{
	struct snap_check *c = arg;
	struct verify *v = c->v;
	const struct blob_loc *loc = blob_table_find(&v->r->blobs, ref->id);
	char hex[BLOB_ID_HEX_BYTES], what[64];

	if (loc && (ref->bytes == 0 || loc->raw_bytes == ref->bytes)) {
		if (v->pack_state[loc->pack] != PACK_OK || loc->damaged ||
		    blob_table_find(&v->bad, ref->id))
			c->damaged++;
		return 0;
	}
	blob_id_hex(ref->id, hex);
	snap_ref_describe(ref, what, sizeof(what));
	if (!loc) {
		if (++c->missing <= VERIFY_LINES_PER_SNAPSHOT)
			report(v, REPO_VERIFY_PROBLEM, "snapshot %s: blob %s (%s) missing from the index",
			       c->id, hex, what);
		return 0;
	}
	if (++c->wrong_size <= VERIFY_LINES_PER_SNAPSHOT)
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: blob %s (%s) holds %u bytes, expected %llu",
		       c->id, hex, what, loc->raw_bytes, (unsigned long long)ref->bytes);
	return 0;
}

static int verify_snapshot(void *arg, const char *name, uint64_t bytes)
{
	struct verify *v = arg;
	const char *id = after_slash(name);
	struct snap_manifest m;
	struct snap_check c = { .v = v, .id = id };
	const char *why = "";
	uint8_t *buf;
	size_t len;
	int rc;

	(void)bytes;
	v->res.snapshots++;
	if (!snap_id_valid(id) || strlen(name) != strlen("snapshots/") + SNAP_ID_LEN) {
		report(v, REPO_VERIFY_PROBLEM, "%s: not a snapshot name", name);
		return 0;
	}
	rc = backend_get_all(v->r->be, name, (size_t)MANIFEST_BODY_MAX_BYTES * 2, &buf, &len);
	if (rc == -ENOENT)
		return 0; /* removed since the listing */
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: read: %s", id, strerror(-rc));
		return 0;
	}
	rc = manifest_decode(buf, len, v->r->crypto, &m, &why);
	free(buf);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: %s", id, why);
		return 0;
	}
	if (strcmp(m.id, id) != 0)
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: the manifest names snapshot %s", id, m.id);
	manifest_foreach_ref(&m, snap_check_ref, &c);
	/* Past the first few, one summary line; every blob still counts as a problem. */
	if (c.missing > VERIFY_LINES_PER_SNAPSHOT) {
		uint64_t more = c.missing - VERIFY_LINES_PER_SNAPSHOT;

		v->res.problems += more - 1;
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: %llu more blobs missing from the index",
		       id, (unsigned long long)more);
	}
	if (c.wrong_size > VERIFY_LINES_PER_SNAPSHOT) {
		uint64_t more = c.wrong_size - VERIFY_LINES_PER_SNAPSHOT;

		v->res.problems += more - 1;
		report(v, REPO_VERIFY_PROBLEM, "snapshot %s: %llu more blobs of the wrong length", id,
		       (unsigned long long)more);
	}
	if (c.damaged)
		report(v, REPO_VERIFY_PROBLEM,
		       "snapshot %s: %llu referenced blobs are in missing or damaged packs (the next "
		       "backup of VM %s stores again what the VM still holds)", id,
		       (unsigned long long)c.damaged, m.vm_name);
	manifest_free(&m);
	return 0;
}

/* Mark what was found damaged, so the next backup stores it again (v). */
static void verify_mark(struct verify *v)
{
	char err[512] = "";
	uint64_t marked = 0;
	int rc;

	if (v->mark && v->nhealed) {
		rc = repo_unmark_damaged(v->r, v->healed, v->nhealed, &marked, err, sizeof(err));
		if (rc < 0)
			report(v, REPO_VERIFY_PROBLEM, "could not lift the marks of blobs that read "
			       "back whole: %s", err);
		else if (marked)
			report(v, REPO_VERIFY_NOTE, "%llu blobs marked damaged read back whole now: "
			       "their marks are lifted", (unsigned long long)marked);
	}
	if (!v->mark || !v->nfound)
		return;
	rc = repo_mark_damaged(v->r, v->found, v->nfound, &marked, err, sizeof(err));
	if (rc < 0) {
		report(v, REPO_VERIFY_PROBLEM, "could not mark the damaged blobs: %s", err);
		return;
	}
	v->res.blobs_marked = marked;
	if (marked)
		report(v, REPO_VERIFY_NOTE, "%llu damaged blobs marked: the next backup of their VMs "
		       "stores them again, which heals every snapshot naming the same content",
		       (unsigned long long)marked);
}

int repo_verify(struct repo *r, unsigned flags, repo_verify_fn fn, void *arg,
		struct repo_verify_result *out)
{
	struct verify v = { .r = r, .read_data = flags & REPO_VERIFY_READ_DATA,
			    .mark = flags & REPO_VERIFY_MARK, .fn = fn, .arg = arg };
	int rc;

	rc = blob_table_init(&v.listed);
	if (rc == 0)
		rc = blob_table_init(&v.bad);
	if (rc < 0)
		return rc;
	v.pack_state = calloc(r->npacks + 1, 1);
	if (!v.pack_state) {
		rc = -ENOMEM;
		goto out;
	}
	/* The listing first: a copy of a blob in a pack that exists is the one checked. */
	rc = repo_list_packs(r->be, &v.listed, not_a_pack, &v);
	if (rc < 0)
		goto out;
	repo_packs_mark(r, &v.listed);
	rc = group_by_slot(&v);
	if (rc < 0)
		goto out;
	v.res.blobs = r->blobs.n;

	rc = backend_list(r->be, "index/", count_one, &v.res.indexes);
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < r->nbad; i++) {
		bool listed = !strncmp(r->bad[i].name, REPO_DAMAGED_PREFIX,
				       sizeof(REPO_DAMAGED_PREFIX) - 1);

		report(&v, REPO_VERIFY_PROBLEM, "%s %s: %s%s", listed ? "damaged-blob list" : "index",
		       after_slash(r->bad[i].name),
		       r->bad[i].why ? r->bad[i].why : strerror(-r->bad[i].rc),
		       listed ? "" : " ('godwit images repair' rebuilds the index from the packs)");
	}
	rc = verify_packs(&v);
	if (rc < 0)
		goto out;
	rc = backend_list(r->be, "snapshots/", verify_snapshot, &v);
	if (rc < 0)
		goto out;
	verify_mark(&v);
	if (out)
		*out = v.res;
out:
	free(v.healed);
	free(v.found);
	free(v.dst);
	free(v.pack_state);
	free(v.by_slot);
	free(v.slot_start);
	blob_table_free(&v.listed);
	blob_table_free(&v.bad);
	return rc;
}
