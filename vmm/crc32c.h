/* CRC32C (Castagnoli) for the VMM's own formats: state blobs and disk change-log sidecars. */
#ifndef VMM_CRC32C_H
#define VMM_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc with len bytes of buf and return the new value (crc, buf, len). Start with
 * crc = 0; chaining calls over consecutive pieces equals one call over their
 * concatenation. vmm_crc32c(0, "123456789", 9) == 0xe3069283. A table, one byte per step
 * (hundreds of MB/s): vmm/ checksums kilobytes, and depends on no other module.
 */
uint32_t vmm_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
