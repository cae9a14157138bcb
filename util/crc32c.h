/* CRC32C (Castagnoli): frame records, the VMM's state blobs and disk-log sidecars. */
#ifndef UTIL_CRC32C_H
#define UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc with len bytes of buf and return the new value (crc, buf, len). Start with
 * crc = 0; chaining calls over consecutive pieces equals one call over their
 * concatenation, like zlib's crc32(). crc32c(0, "123456789", 9) == 0xe3069283. Uses the
 * SSE4.2 crc32 instruction when the CPU has it (several GB/s), a table otherwise.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
