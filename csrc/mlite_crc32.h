/*
 * mlite_crc32: CRC-32 as zlib computes it (IEEE 802.3, reflected polynomial
 * 0xEDB88320, initial and final XOR 0xFFFFFFFF), so mlite_crc32(0, p, n) equals
 * Python's zlib.crc32(bytes(p[:n])). Slice-by-8 tables: eight bytes per step.
 * Used where a record is framed in C (the one-row insert path); plain C99.
 */
#ifndef MLITE_CRC32_H
#define MLITE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32 (start from 0) over n more bytes. */
uint32_t mlite_crc32(uint32_t crc, const uint8_t *data, size_t n);

/* The checksum stored on disk (docs/format.md#checksums): CRC-32 rotated right by
 * 15 bits plus 0xA282EAD8, as leveldb masks its CRCs. */
uint32_t mlite_masked_crc32(const uint8_t *data, size_t n);

#endif
