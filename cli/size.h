/* Byte sizes as people type them on a command line. */
#ifndef CLI_SIZE_H
#define CLI_SIZE_H

#include <stdint.h>

/*
 * Parse s ("512M", "1G", "1073741824": bytes unless suffixed K/M/G/T, base 1024; "MiB"
 * and "MB" read as "M") into *out. Returns 0, -EINVAL for anything else, or -ERANGE
 * when the value does not fit 64 bits.
 */
int cli_parse_size(const char *s, uint64_t *out);

#endif
