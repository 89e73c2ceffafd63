/*
 * mlite_crc32: CRC-32 as zlib computes it (IEEE 802.3, reflected polynomial
 * 0xEDB88320, initial and final XOR 0xFFFFFFFF), so mlite_crc32(0, p, n) equals
 * Python's zlib.crc32(bytes(p[:n])). On x86-64 CPUs with PCLMULQDQ (checked at run
 * time) buffers of 64 bytes or more fold 64 bytes per step with carry-less multiplies;
 * otherwise, and for the last bytes, slice-by-8 tables. Used for every stored checksum:
 * records framed in C (the one-row insert path) and, through memora_lite.storage._checksum,
 * all others. C99 plus the x86 intrinsics behind their run-time check.
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
