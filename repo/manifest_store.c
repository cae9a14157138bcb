/* Snapshots in a repository: publish a manifest last, load one by id or "latest", list them by time. */
#include "repo/manifest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "repo/repo_priv.h"

#define SNAP_PREFIX "snapshots/"
#define SNAP_NAME_BYTES (sizeof(SNAP_PREFIX) + SNAP_ID_LEN)
#define MANIFEST_OBJECT_MAX (MANIFEST_HEADER_BYTES + MANIFEST_BODY_MAX_BYTES + \
			     (MANIFEST_BODY_MAX_BYTES >> 7) + (1u << 20) + MANIFEST_TAIL_BYTES)

struct ref_check {
	struct repo *r;
	uint64_t referenced;
	char *err;
	size_t errlen;
};

static int ref_check_one(void *arg, const struct snap_ref *ref)
{
	struct ref_check *c = arg;
	const struct blob_loc *loc = blob_table_find(&c->r->blobs, ref->id);
	char hex[BLOB_ID_HEX_BYTES], what[64];

	if (loc && repo_blob_known(c->r, ref->id) &&
	    (ref->bytes == 0 || loc->raw_bytes == ref->bytes)) {
		c->referenced += loc->raw_bytes;
		return 0;
	}
	blob_id_hex(ref->id, hex);
	snap_ref_describe(ref, what, sizeof(what));
	if (!loc) {
		err_set(c->err, c->errlen, "blob %s (%s) is not in the repository", hex, what);
		return -ENOENT;
	}
	if (!repo_blob_known(c->r, ref->id)) {
		char pack[BLOB_ID_HEX_BYTES];

		/* Never publish a snapshot built on lost data (repo_packs_check, damaged/). */
		blob_id_hex(&c->r->packs[loc->pack].id, pack);
		err_set(c->err, c->errlen, "blob %s (%s) is %s pack %.16s: the snapshot would "
			"not restore", hex, what, loc->damaged ? "damaged in" : "in the missing",
			pack);
		return -ENOENT;
	}
	err_set(c->err, c->errlen, "blob %s (%s) holds %u bytes, the chunk %llu", hex, what,
		loc->raw_bytes, (unsigned long long)ref->bytes);
	return -EINVAL;
}

int snap_publish(struct repo *r, struct snap_manifest *m, char *err, size_t errlen)
{
	struct ref_check check = { .r = r, .err = err, .errlen = errlen };
	char name[SNAP_NAME_BYTES];
	const char *why = "";
	uint8_t *buf;
	size_t len;
	int rc;

	if (m->created_ns == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		m->created_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	if (m->id[0] == '\0') {
		rc = snap_id_make(m->created_ns, m->id);
		if (rc < 0) {
			err_set(err, errlen, "make a snapshot id: %s", strerror(-rc));
			return rc;
		}
	}
	rc = manifest_check(m, &why);
	if (rc < 0) {
		err_set(err, errlen, "snapshot %s: %s", m->id, why);
		return rc;
	}
	/* 1. Packs and index durable, so the manifest can only name stored blobs. */
	rc = repo_flush(r);
	if (rc < 0) {
		err_set(err, errlen, "write packs and index to %s: %s", r->location, strerror(-rc));
		return rc;
	}
	/* 2. Every reference resolves, with the length the map says. */
	rc = manifest_foreach_ref(m, ref_check_one, &check);
	if (rc < 0)
		return rc;
	m->stats.bytes_referenced = check.referenced;
	/* 3. The manifest, atomically: from here on the snapshot exists. */
	rc = manifest_encode(m, r->crypto, &buf, &len);
	if (rc < 0) {
		err_set(err, errlen, "encode snapshot %s: %s", m->id, strerror(-rc));
		return rc;
	}
	snprintf(name, sizeof(name), SNAP_PREFIX "%s", m->id);
	rc = backend_put(r->be, name, buf, len);
	free(buf);
	if (rc == -EEXIST)
		err_set(err, errlen, "snapshot %s exists already in %s", m->id, r->location);
	else if (rc < 0)
		err_set(err, errlen, "write %s/%s: %s", r->location, name, strerror(-rc));
	return rc;
}

/* Read and decode one manifest by id (r, id, out, why); -ENOENT when absent. */
static int snap_read(struct repo *r, const char *id, struct snap_manifest *out, const char **why)
{
	char name[SNAP_NAME_BYTES];
	uint8_t *buf;
	size_t len;
	int rc;

	snprintf(name, sizeof(name), SNAP_PREFIX "%s", id);
	rc = backend_get_all(r->be, name, MANIFEST_OBJECT_MAX, &buf, &len);
	if (rc == -EMSGSIZE && why)
		*why = "manifest larger than the limit";
	if (rc < 0)
		return rc;
	rc = manifest_decode(buf, len, r->crypto, out, why);
	free(buf);
	if (rc == 0 && strcmp(out->id, id) != 0) {
		manifest_free(out);
		if (why)
			*why = "the manifest names another snapshot id";
		return -EBADMSG;
	}
	return rc;
}

int snap_load(struct repo *r, const char *id, struct snap_manifest *out, char *err,
	      size_t errlen)
{
	char latest[SNAP_ID_BYTES];
	const char *why = "";
	int rc;

	if (strcmp(id, "latest") == 0) {
		rc = snap_resolve_latest(r, NULL, latest, err, errlen);
		if (rc < 0)
			return rc;
		id = latest;
	}
	if (!snap_id_valid(id)) {
		err_set(err, errlen,
			"'%.64s' is not a snapshot id: ids look like 20250101T120000Z-1a2b3c4d, or use 'latest'",
			id);
		return -EINVAL;
	}
	rc = snap_read(r, id, out, &why);
	if (rc == -ENOENT)
		err_set(err, errlen,
			"no snapshot %s in %s: 'godwit snapshot list' shows the ids", id,
			r->location);
	else if (rc == -ENOMEM)
		err_set(err, errlen, "snapshot %s: out of memory", id);
	else if (rc < 0 && (rc == -EPROTO || rc == -ENOMSG || rc == -EPROTONOSUPPORT ||
			    rc == -EBADMSG || rc == -EMSGSIZE || rc == -ENOKEY))
		err_set(err, errlen, "snapshot %s: %s", id, why);
	else if (rc < 0)
		err_set(err, errlen, "read snapshot %s: %s", id, strerror(-rc));
	return rc;
}

struct summary_list {
	struct repo *r;
	struct snap_summary *items;
	size_t n, cap, nbad;
	/* The newest manifest that did not decode, by id (ids sort by creation time). */
	char bad_id[SNAP_ID_BYTES];
	const char *bad_why;
};

static int summary_add(void *arg, const char *name, uint64_t bytes)
{
	struct summary_list *l = arg;
	const char *id = name + sizeof(SNAP_PREFIX) - 1;
	struct snap_manifest m;
	struct snap_summary *s;
	const char *why = "";
	int rc;

	(void)bytes;
	if (!snap_id_valid(id)) {
		l->nbad++;
		return 0;
	}
	rc = snap_read(l->r, id, &m, &why);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		if (rc == -ENOENT)
			return 0; /* removed since the list: not a problem */
		l->nbad++;
		if (strcmp(id, l->bad_id) > 0) {
			snprintf(l->bad_id, sizeof(l->bad_id), "%s", id);
			l->bad_why = why[0] ? why : strerror(-rc);
		}
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;

		s = realloc(l->items, cap * sizeof(*s));
		if (!s) {
			manifest_free(&m);
			return -ENOMEM;
		}
		l->items = s;
		l->cap = cap;
	}
	s = &l->items[l->n++];
	memset(s, 0, sizeof(*s));
	memcpy(s->id, m.id, sizeof(s->id));
	memcpy(s->parent, m.parent, sizeof(s->parent));
	memcpy(s->vm_name, m.vm_name, sizeof(s->vm_name));
	s->created_ns = m.created_ns;
	s->ram_bytes = m.ram_bytes;
	s->disk_bytes = m.disk_bytes;
	s->stats = m.stats;
	manifest_free(&m);
	return 0;
}

static int summary_cmp(const void *a, const void *b)
{
	const struct snap_summary *x = a, *y = b;

	if (x->created_ns != y->created_ns)
		return x->created_ns < y->created_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

int snap_list(struct repo *r, struct snap_summary **out, size_t *n, size_t *nbad)
{
	struct summary_list l = { .r = r };
	int rc;

	rc = backend_list(r->be, SNAP_PREFIX, summary_add, &l);
	if (rc < 0) {
		free(l.items);
		return rc;
	}
	if (l.n)
		qsort(l.items, l.n, sizeof(*l.items), summary_cmp);
	*out = l.items;
	*n = l.n;
	if (nbad)
		*nbad = l.nbad;
	return 0;
}

/* "2026-12-07 16:22:45 UTC" (ns, out, len). */
static void utc_text(uint64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "?");
}

int snap_resolve_latest(struct repo *r, const char *vm_name, char out[SNAP_ID_BYTES],
			char *err, size_t errlen)
{
	struct summary_list l = { .r = r };
	const struct snap_summary *newest = NULL;
	char when[40], of[SNAP_NAME_MAX + 16] = "";
	int rc;

	rc = backend_list(r->be, SNAP_PREFIX, summary_add, &l);
	if (rc < 0) {
		err_set(err, errlen, "list the snapshots in %s: %s", r->location, strerror(-rc));
		goto out;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct snap_summary *c = &l.items[i];

		if (vm_name && strcmp(c->vm_name, vm_name) != 0)
			continue;
		if (!newest || summary_cmp(c, newest) > 0)
			newest = c;
	}
	if (vm_name)
		snprintf(of, sizeof(of), " of VM '%s'", vm_name);
	/*
	 * A damaged manifest as new as the newest intact one (ids begin with the creation
	 * second) may be the real newest: whose VM it was cannot be read either. Restoring an
	 * older snapshot without a word would hide a broken backup, so say which is which.
	 */
	if (l.bad_id[0] && (!newest || strncmp(l.bad_id, newest->id, SNAP_ID_TIME_LEN) >= 0)) {
		if (newest) {
			utc_text(newest->created_ns, when, sizeof(when));
			err_set(err, errlen, "the newest snapshot in %s, %s, is damaged (%s)%s: "
				"nothing is restored in its place without asking; the newest intact "
				"one%s is %s (VM %s, taken %s): pass --snapshot %s", r->location,
				l.bad_id, l.bad_why, vm_name ? " and may be that VM's" : "", of,
				newest->id, newest->vm_name, when, newest->id);
		} else {
			err_set(err, errlen, "the newest snapshot in %s, %s, is damaged (%s), and no "
				"intact one%s is left: run 'godwit images verify'", r->location,
				l.bad_id, l.bad_why, of);
		}
		rc = -EBADMSG;
		goto out;
	}
	if (!newest) {
		err_set(err, errlen, vm_name ? "no snapshot of VM '%s' in %s: 'godwit images list' "
			"shows the names" : "no snapshots in %s%s", vm_name ? vm_name : r->location,
			vm_name ? r->location : "");
		rc = -ENOENT;
		goto out;
	}
	memcpy(out, newest->id, SNAP_ID_BYTES);
out:
	free(l.items);
	return rc;
}

int snap_find_latest(struct repo *r, const char *vm_name, char out[SNAP_ID_BYTES])
{
	struct snap_summary *s;
	size_t n;
	int rc = snap_list(r, &s, &n, NULL);

	if (rc < 0)
		return rc;
	rc = -ENOENT;
	for (size_t i = n; i-- > 0;) {
		if (vm_name && strcmp(s[i].vm_name, vm_name) != 0)
			continue;
		memcpy(out, s[i].id, SNAP_ID_BYTES);
		rc = 0;
		break;
	}
	free(s);
	return rc;
}
