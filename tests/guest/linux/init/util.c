/* Freestanding helpers of the test /init: strings, console lines, numbers, the clock. */
#include "guest.h"

/* The compiler may emit calls to these even in freestanding code. */
void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;

	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

size_t str_len(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int str_prefix(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

void put_str(struct line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = *s++;
}

void put_u64(struct line *l, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = tmp[--n];
}

void put_hex(struct line *l, uint64_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";

	while (digits-- && l->len < sizeof(l->buf) - 1)
		l->buf[l->len++] = hex[(v >> (digits * 4)) & 0xf];
}

void line_emit(struct line *l)
{
	size_t off = 0;

	l->buf[l->len++] = '\n';
	while (off < l->len) {
		long rc = sys3(SYS_write, 1, l->buf + off, l->len - off);

		if (rc == -EINTR)
			continue;
		if (rc <= 0)
			break;
		off += (size_t)rc;
	}
	l->len = 0;
}

void say(const char *s)
{
	struct line l = { .len = 0 };

	put_str(&l, s);
	line_emit(&l);
}

uint32_t crc32_ieee(uint32_t crc, const uint8_t *p, size_t n)
{
	static uint32_t table[256];

	if (!table[1]) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320U ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

uint64_t now_ns(void)
{
	struct timespec_raw ts;

	sys2(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Parses a decimal or 0x-prefixed number ending at a NUL or `stop`; returns 0 on success. */
int parse_u64(const char **sp, char stop, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	int base = 10, digits = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			break;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (!digits || (*s && *s != stop))
		return -1;
	*out = v;
	*sp = *s ? s + 1 : s;
	return 0;
}
