/* Serial console of the test guest: a polled 8250 UART and a bounded printf for one-line reports. */
#include "console.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw.h"

#define CONSOLE_LSR (CONSOLE_PORT + 5)
#define CONSOLE_LSR_THRE 0x20
#define CONSOLE_LINE_MAX 256

/* An output buffer that silently stops at its end, so no format can write past it. */
struct console_buf {
	char text[CONSOLE_LINE_MAX];
	size_t len;
};

void console_write(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		/* Each poll is a VM exit; a bounded wait keeps a wedged UART from hanging the guest. */
		for (int spin = 0; spin < 100000; spin++) {
			if (inb(CONSOLE_LSR) & CONSOLE_LSR_THRE)
				break;
		}
		outb(CONSOLE_PORT, (uint8_t)s[i]);
	}
}

static void buf_putc(struct console_buf *b, char c)
{
	if (b->len < sizeof(b->text))
		b->text[b->len++] = c;
}

static void buf_number(struct console_buf *b, uint64_t v, unsigned base, bool neg,
		       unsigned width, char pad)
{
	char digits[24];
	unsigned n = 0;

	do {
		digits[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		digits[n++] = '-';
	while (width > n) {
		buf_putc(b, pad);
		width--;
	}
	while (n)
		buf_putc(b, digits[--n]);
}

static void buf_vformat(struct console_buf *b, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		unsigned width = 0, longs = 0;
		int precision = -1;
		char pad = ' ';

		if (*fmt != '%') {
			buf_putc(b, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0') {
			pad = '0';
			fmt++;
		}
		while (*fmt >= '0' && *fmt <= '9' && width < 64)
			width = width * 10 + (unsigned)(*fmt++ - '0');
		if (fmt[0] == '.' && fmt[1] == '*') {
			precision = va_arg(ap, int);
			fmt += 2;
		}
		while (*fmt == 'l' || *fmt == 'z') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 'd': {
			int64_t v = longs ? va_arg(ap, long) : va_arg(ap, int);
			uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

			buf_number(b, mag, 10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			uint64_t v = longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);

			buf_number(b, v, *fmt == 'u' ? 10 : 16, false, width, pad);
			break;
		}
		case 'c':
			buf_putc(b, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);

			while (*s && precision-- != 0)
				buf_putc(b, *s++);
			break;
		}
		case '%':
			buf_putc(b, '%');
			break;
		default:
			/* An unknown conversion is a bug in this guest; show it rather than guess. */
			buf_putc(b, '?');
			if (!*fmt)
				return;
			break;
		}
	}
}

void console_vprintf(const char *fmt, va_list ap)
{
	struct console_buf b;

	b.len = 0;
	buf_vformat(&b, fmt, ap);
	console_write(b.text, b.len);
}

void console_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
}
