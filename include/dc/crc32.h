/* crc32.h: CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib and
 * PNG) for the model file, so every header and section carries a checksum a
 * reader verifies before trusting a single length inside it. */
#ifndef DC_CRC32_H
#define DC_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0; dc_crc32(0, "123456789", 9) = 0xCBF43926. */
uint32_t dc_crc32(uint32_t crc, const void *data, size_t n);

#endif
