/* The checked decoder: bounds through range_ok, a sticky -EBADMSG, zeros on failure. */
#include "util/dec.h"

#include <errno.h>
#include <string.h>

#include "util/byteorder.h"
#include "util/range.h"

struct dec dec_init(const void *p, size_t len)
{
	struct dec d = { .p = p, .len = len };

	return d;
}

const uint8_t *dec_take(struct dec *d, uint64_t n)
{
	const uint8_t *q;

	if (d->err)
		return NULL;
	if (!range_ok(d->off, n, d->len)) {
		d->err = -EBADMSG;
		return NULL;
	}
	q = d->p + d->off;
	d->off += (size_t)n;
	return q;
}

bool dec_u8(struct dec *d, uint8_t *v)
{
	const uint8_t *q = dec_take(d, 1);

	*v = q ? q[0] : 0;
	return q != NULL;
}

bool dec_u16(struct dec *d, uint16_t *v)
{
	const uint8_t *q = dec_take(d, 2);

	*v = q ? le16_decode(q) : 0;
	return q != NULL;
}

bool dec_u32(struct dec *d, uint32_t *v)
{
	const uint8_t *q = dec_take(d, 4);

	*v = q ? le32_decode(q) : 0;
	return q != NULL;
}

bool dec_u64(struct dec *d, uint64_t *v)
{
	const uint8_t *q = dec_take(d, 8);

	*v = q ? le64_decode(q) : 0;
	return q != NULL;
}

bool dec_bytes(struct dec *d, void *out, size_t n)
{
	const uint8_t *q = dec_take(d, n);

	if (q) {
		if (n)
			memcpy(out, q, n);
	} else {
		memset(out, 0, n);
	}
	return q != NULL;
}

size_t dec_left(const struct dec *d)
{
	return d->err ? 0 : d->len - d->off;
}

bool dec_done(const struct dec *d)
{
	return !d->err && d->off == d->len;
}
