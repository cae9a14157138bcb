/* Serial console of the test guest: a polled 8250 at 0x3f8 and a small printf. */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

#define CONSOLE_PORT 0x3f8

/* Writes len bytes to the UART as given, each once the transmit holding register is empty. */
void console_write(const char *s, size_t len);

/*
 * Formats one line into a bounded buffer and writes it. Supports %s (and %.*s) %c %d %u %x
 * with an optional 0 flag, width and l/z length; the output is cut at 256 bytes. Works at CPL 0
 * (the trap handler) and CPL 3.
 */
void console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* console_printf with a va_list, for wrappers such as guest_panic. */
void console_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
