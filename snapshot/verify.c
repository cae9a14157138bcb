/* repo_verify: indexes, packs (names, sizes and, on request, every byte), then every manifest's references. */
#include "snapshot/verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot/manifest.h"
#include "snapshot/repo_priv.h"

#define VERIFY_LINES_PER_SNAPSHOT 10

enum pack_state {
	PACK_OK = 0,
	PACK_MISSING,
	PACK_DAMAGED,
};

struct verify {
	struct repo *r;
	bool read_data;
	repo_verify_fn fn;
	void *arg;
	struct repo_verify_result res;
	uint8_t *pack_state;        /* per slot, enum pack_state */
	struct blob_table listed;   /* packs in data/: id -> size (in offset) */
	struct blob_table bad;      /* blobs found damaged while reading packs */
	const struct blob_loc **by_slot; /* index entries grouped by pack slot */
	size_t *slot_start;         /* by_slot[slot_start[s], slot_start[s + 1]) */
	uint8_t *dst;               /* BLOB_RAW_MAX_BYTES for decompressing (read_data) */
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

/* Remember each object under data/ that is named like a pack. */
static int listed_add(void *arg, const char *name, uint64_t bytes)
{
	struct verify *v = arg;
	const char *hex = after_slash(name);
	struct blob_loc loc = { 0 };

	if (strlen(name) != PACK_NAME_BYTES - 1 || blob_id_from_hex(&loc.id, hex) < 0 ||
	    strncmp(name + 5, hex, 2) != 0) {
		report(v, REPO_VERIFY_NOTE, "%s: not a pack name (ignored)", name);
		return 0;
	}
	loc.offset = bytes > PACK_MAX_BYTES ? UINT32_MAX : (uint32_t)bytes;
	return blob_table_add(&v->listed, &loc) < 0 ? -ENOMEM : 0;
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
	rc = pack_decode(buf, len, r->crypto, &es, &n, &why);
	if (rc == -ENOMEM)
		goto out;
	if (rc < 0) {
		report(v, REPO_VERIFY_PROBLEM, "pack %s: %s", hex, why);
		v->pack_state[s] = PACK_DAMAGED;
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
	if (!v->dst)
		v->dst = malloc(BLOB_RAW_MAX_BYTES);
	dst = v->dst;
	if (!dst) {
		rc = -ENOMEM;
		goto out_table;
	}
	/* Every blob in the pack: decompress and re-hash. */
	for (uint32_t i = 0; i < n; i++) {
		struct blob_loc loc = {
			.id = es[i].id, .pack = s, .offset = (uint32_t)es[i].offset,
			.stored_bytes = es[i].stored_bytes, .raw_bytes = es[i].raw_bytes,
			.crc = es[i].crc, .type = es[i].type, .flags = es[i].flags,
		};
		char bhex[BLOB_ID_HEX_BYTES];

		if (blob_table_add(&trailer, &loc) < 0) {
			rc = -ENOMEM;
			goto out_table;
		}
		rc = repo_blob_decode(r, &loc, buf + pack_payload_offset(&es[i]), dst, &why);
		if (rc == -ENOMEM)
			goto out_table;
		v->res.blobs_read++;
		if (rc < 0) {
			blob_id_hex(&es[i].id, bhex);
			report(v, REPO_VERIFY_PROBLEM, "pack %s: blob %s: %s", hex, bhex,
			       rc == -EBADMSG ? why : strerror(-rc));
			if (blob_table_add(&v->bad, &loc) < 0) {
				rc = -ENOMEM;
				goto out_table;
			}
		}
	}
	rc = 0;
	/* Every index entry for this pack must describe a blob the trailer has. */
	for (size_t k = v->slot_start[s]; k < v->slot_start[s + 1]; k++) {
		const struct blob_loc *want = v->by_slot[k];
		const struct blob_loc *got = blob_table_find(&trailer, &want->id);
		char bhex[BLOB_ID_HEX_BYTES];

		if (got && got->offset == want->offset && got->stored_bytes == want->stored_bytes &&
		    got->raw_bytes == want->raw_bytes && got->crc == want->crc &&
		    got->flags == want->flags && got->type == want->type)
			continue;
		blob_id_hex(&want->id, bhex);
		report(v, REPO_VERIFY_PROBLEM, "pack %s: blob %s: %s", hex, bhex,
		       got ? "the index entry does not match the pack" : "in the index but not in the pack");
		if (blob_table_add(&v->bad, want) < 0) {
			rc = -ENOMEM;
			break;
		}
	}
out_table:
	blob_table_free(&trailer);
out:
	free(es);
	free(buf);
	return rc;
}

static int verify_packs(struct verify *v)
{
	struct repo *r = v->r;
	const struct blob_loc *loc;
	size_t pos = 0;
	int rc;

	rc = backend_list(r->be, "data/", listed_add, v);
	if (rc < 0)
		return rc;
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
		char hex[BLOB_ID_HEX_BYTES];

		if (blob_table_find(&r->pack_slots, &loc->id))
			continue;
		blob_id_hex(&loc->id, hex);
		report(v, REPO_VERIFY_NOTE,
		       "pack %s: not in any index (left by an interrupted write; prune removes it)", hex);
	}
	return 0;
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
		if (v->pack_state[loc->pack] != PACK_OK || blob_table_find(&v->bad, ref->id))
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
		       "snapshot %s: %llu referenced blobs are in missing or damaged packs", id,
		       (unsigned long long)c.damaged);
	manifest_free(&m);
	return 0;
}

int repo_verify(struct repo *r, bool read_data, repo_verify_fn fn, void *arg,
		struct repo_verify_result *out)
{
	struct verify v = { .r = r, .read_data = read_data, .fn = fn, .arg = arg };
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
	rc = group_by_slot(&v);
	if (rc < 0)
		goto out;
	v.res.blobs = r->blobs.n;

	rc = backend_list(r->be, "index/", count_one, &v.res.indexes);
	if (rc < 0)
		goto out;
	for (uint32_t i = 0; i < r->nbad; i++)
		report(&v, REPO_VERIFY_PROBLEM, "index %s: %s", after_slash(r->bad[i].name),
		       r->bad[i].why ? r->bad[i].why : strerror(-r->bad[i].rc));
	rc = verify_packs(&v);
	if (rc < 0)
		goto out;
	rc = backend_list(r->be, "snapshots/", verify_snapshot, &v);
	if (rc < 0)
		goto out;
	if (out)
		*out = v.res;
out:
	free(v.dst);
	free(v.pack_state);
	free(v.by_slot);
	free(v.slot_start);
	blob_table_free(&v.listed);
	blob_table_free(&v.bad);
	return rc;
}
