/* A seeded open-addressing hash table from blob id to pack location. */
#include "repo/blob_table_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/byteorder.h"

int blob_table_init(struct blob_table *t)
{
	memset(t, 0, sizeof(*t));
	if (getrandom(&t->seed, sizeof(t->seed), 0) != sizeof(t->seed))
		return -EIO;
	return 0;
}

void blob_table_free(struct blob_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->cap = t->n = 0;
}

static size_t slot_of(const struct blob_table *t, const struct blob_id *id)
{
	uint64_t h = le64_decode(id->b) ^ le64_decode(id->b + 8) ^ t->seed;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return (size_t)h & (t->cap - 1);
}

struct blob_loc *blob_table_find_mut(struct blob_table *t, const struct blob_id *id)
{
	if (t->cap == 0)
		return NULL;
	for (size_t i = slot_of(t, id);; i = (i + 1) & (t->cap - 1)) {
		struct blob_loc *s = &t->slots[i];

		if (!s->used)
			return NULL;
		if (blob_id_eq(&s->id, id))
			return s;
	}
}

const struct blob_loc *blob_table_find(const struct blob_table *t, const struct blob_id *id)
{
	/* The lookup writes nothing: sharing the probe loop with the writable variant is safe. */
	return blob_table_find_mut((struct blob_table *)t, id);
}

static void table_place(struct blob_table *t, const struct blob_loc *loc)
{
	size_t i = slot_of(t, &loc->id);

	while (t->slots[i].used)
		i = (i + 1) & (t->cap - 1);
	t->slots[i] = *loc;
	t->slots[i].used = 1;
	t->n++;
}

static int table_grow(struct blob_table *t)
{
	struct blob_table bigger = *t;

	bigger.cap = t->cap ? t->cap * 2 : 1024;
	bigger.n = 0;
	bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
	if (!bigger.slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i].used)
			table_place(&bigger, &t->slots[i]);
	free(t->slots);
	*t = bigger;
	return 0;
}

int blob_table_add(struct blob_table *t, const struct blob_loc *loc)
{
	if (blob_table_find(t, &loc->id))
		return 0;
	if ((t->n + 1) * 10 > t->cap * 7) {
		int rc = table_grow(t);

		if (rc < 0)
			return rc;
	}
	table_place(t, loc);
	return 1;
}

int blob_table_set(struct blob_table *t, const struct blob_loc *loc)
{
	struct blob_loc *s = blob_table_find_mut(t, &loc->id);

	if (s) {
		*s = *loc;
		s->used = 1;
		return 0;
	}
	return blob_table_add(t, loc) < 0 ? -ENOMEM : 0;
}

const struct blob_loc *blob_table_next(const struct blob_table *t, size_t *pos)
{
	while (*pos < t->cap) {
		const struct blob_loc *s = &t->slots[(*pos)++];

		if (s->used)
			return s;
	}
	return NULL;
}

int copy_set_init(struct copy_set *s)
{
	int rc = blob_table_init(&s->ids);

	if (rc == 0)
		rc = blob_table_init(&s->keys);
	return rc;
}

void copy_set_free(struct copy_set *s)
{
	blob_table_free(&s->ids);
	blob_table_free(&s->keys);
}

static void copy_key(const struct blob_id *pack, const struct blob_id *blob, struct blob_id *out)
{
	uint8_t both[2 * BLOB_ID_BYTES];

	memcpy(both, pack->b, BLOB_ID_BYTES);
	memcpy(both + BLOB_ID_BYTES, blob->b, BLOB_ID_BYTES);
	sha256_buf(both, sizeof(both), out->b);
}

int copy_set_add(struct copy_set *s, const struct blob_id *pack, const struct blob_id *blob)
{
	struct blob_loc k = { .id = *blob };

	if (blob_table_add(&s->ids, &k) < 0)
		return -ENOMEM;
	copy_key(pack, blob, &k.id);
	return blob_table_add(&s->keys, &k) < 0 ? -ENOMEM : 0;
}

bool copy_set_has(const struct copy_set *s, const struct blob_id *pack, const struct blob_id *blob)
{
	struct blob_id key;

	if (!blob_table_find(&s->ids, blob))
		return false;
	copy_key(pack, blob, &key);
	return blob_table_find(&s->keys, &key) != NULL;
}
