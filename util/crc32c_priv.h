/* CRC32C internals exposed for tests: the portable path, so both paths can be compared. */
#ifndef UTIL_CRC32C_PRIV_H
#define UTIL_CRC32C_PRIV_H

#include <stddef.h>
#include <stdint.h>

/* crc32c() computed with the byte table only, whatever the CPU (crc, buf, len). */
uint32_t crc32c_portable(uint32_t crc, const void *buf, size_t len);

#endif
