/* The checked backend wrappers: object names are validated once, here, before any hook sees them. */
#include "repo/backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define BACKEND_PARTIAL_SUFFIX ".partial"

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

bool backend_name_ok(const char *name)
{
	size_t n = strnlen(name, BACKEND_NAME_MAX + 1), start = 0;
	size_t sfx = sizeof(BACKEND_PARTIAL_SUFFIX) - 1;

	if (n == 0 || n > BACKEND_NAME_MAX)
		return false;
	if (n >= sfx && memcmp(name + n - sfx, BACKEND_PARTIAL_SUFFIX, sfx) == 0)
		return false;
	for (size_t i = 0; i <= n; i++) {
		size_t comp;

		if (i < n && name[i] != '/') {
			if (!name_char_ok(name[i]))
				return false;
			continue;
		}
		comp = i - start;
		if (comp == 0)
			return false; /* leading, trailing or doubled '/' */
		if ((comp == 1 && name[start] == '.') ||
		    (comp == 2 && name[start] == '.' && name[start + 1] == '.'))
			return false;
		start = i + 1;
	}
	return true;
}

/* A list prefix may be empty or end in '/'; otherwise it follows the name rules. */
static bool prefix_ok(const char *prefix)
{
	size_t n = strnlen(prefix, BACKEND_NAME_MAX + 1);
	char tmp[BACKEND_NAME_MAX + 1];

	if (n == 0)
		return true;
	if (n > BACKEND_NAME_MAX)
		return false;
	memcpy(tmp, prefix, n + 1);
	if (tmp[n - 1] == '/')
		tmp[n - 1] = '\0';
	return backend_name_ok(tmp);
}

int backend_put(struct backend *b, const char *name, const void *data, size_t len)
{
	if (!backend_name_ok(name))
		return -EINVAL;
	return b->ops->put(b, name, data, len);
}

int backend_get(struct backend *b, const char *name, uint64_t off, void *buf, size_t len)
{
	if (!backend_name_ok(name))
		return -EINVAL;
	return b->ops->get(b, name, off, buf, len);
}

int backend_get_all(struct backend *b, const char *name, size_t max_bytes, uint8_t **data,
		    size_t *len)
{
	if (!backend_name_ok(name))
		return -EINVAL;
	return b->ops->get_all(b, name, max_bytes, data, len);
}

int backend_stat(struct backend *b, const char *name, uint64_t *bytes)
{
	if (!backend_name_ok(name))
		return -EINVAL;
	return b->ops->stat(b, name, bytes);
}

int backend_list(struct backend *b, const char *prefix, backend_list_fn fn, void *arg)
{
	if (!prefix_ok(prefix))
		return -EINVAL;
	return b->ops->list(b, prefix, fn, arg);
}

struct list_unaged {
	backend_aged_fn fn;
	void *arg;
};

static int list_unaged_one(void *arg, const char *name, uint64_t bytes)
{
	struct list_unaged *l = arg;

	return l->fn(l->arg, name, bytes, -1);
}

int backend_list_aged(struct backend *b, const char *prefix, backend_aged_fn fn, void *arg)
{
	struct list_unaged l = { fn, arg };

	if (!prefix_ok(prefix))
		return -EINVAL;
	if (b->ops->list_aged)
		return b->ops->list_aged(b, prefix, fn, arg);
	return b->ops->list(b, prefix, list_unaged_one, &l);
}

int backend_leftovers(struct backend *b, uint64_t min_age_s, bool remove, backend_aged_fn fn,
		      void *arg)
{
	if (!b->ops->leftovers)
		return 0;
	return b->ops->leftovers(b, min_age_s, remove, fn, arg);
}

int backend_remove(struct backend *b, const char *name)
{
	if (!backend_name_ok(name))
		return -EINVAL;
	return b->ops->remove(b, name);
}

bool backend_location_is_s3(const char *location)
{
	return strncmp(location, "s3://", 5) == 0;
}

int backend_open_location(struct backend **out, const char *location,
			  const struct backend_s3_opts *s3, char *err, size_t errlen)
{
	int rc;

	if (backend_location_is_s3(location))
		return backend_s3_open(out, location, s3, 0, err, errlen);
	if (strncmp(location, "file://", 7) == 0)
		location += 7;
	rc = backend_dir_open(out, location);
	if (rc < 0 && errlen)
		snprintf(err, errlen, "open %s: %s", location, strerror(-rc));
	return rc;
}

size_t backend_error(struct backend *b, char *buf, size_t len)
{
	if (b && b->ops->error)
		return b->ops->error(b, buf, len);
	if (len)
		buf[0] = '\0';
	return 0;
}

void backend_close(struct backend *b)
{
	if (b)
		b->ops->close(b);
}
