/* CRC-32 (zlib's) by slice-by-8; see mlite_crc32.h. */
#include "mlite_crc32.h"

static uint32_t mlite_crc_table[8][256];
static int mlite_crc_ready = 0;

/* Fills the tables once. Racing first calls write the same values, so no lock is needed. */
static void mlite_crc_init(void)
{
    uint32_t i, k, c;
    for (i = 0; i < 256; i++) {
        c = i;
        for (k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        mlite_crc_table[0][i] = c;
    }
    for (i = 0; i < 256; i++)
        for (k = 1; k < 8; k++)
            mlite_crc_table[k][i] =
                mlite_crc_table[0][mlite_crc_table[k - 1][i] & 0xFF] ^ (mlite_crc_table[k - 1][i] >> 8);
    mlite_crc_ready = 1;
}

uint32_t mlite_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    uint32_t c = ~crc;
    if (!mlite_crc_ready)
        mlite_crc_init();
    while (n >= 8) {
        /* Byte-wise loads keep this independent of host byte order. */
        const uint32_t lo = c ^ ((uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                                 (uint32_t)data[3] << 24);
        const uint32_t hi = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 |
                            (uint32_t)data[7] << 24;
        c = mlite_crc_table[7][lo & 0xFF] ^ mlite_crc_table[6][(lo >> 8) & 0xFF] ^
            mlite_crc_table[5][(lo >> 16) & 0xFF] ^ mlite_crc_table[4][lo >> 24] ^
            mlite_crc_table[3][hi & 0xFF] ^ mlite_crc_table[2][(hi >> 8) & 0xFF] ^
            mlite_crc_table[1][(hi >> 16) & 0xFF] ^ mlite_crc_table[0][hi >> 24];
        data += 8;
        n -= 8;
    }
    while (n--)
        c = mlite_crc_table[0][(c ^ *data++) & 0xFF] ^ (c >> 8);
    return ~c;
}

uint32_t mlite_masked_crc32(const uint8_t *data, size_t n)
{
    const uint32_t crc = mlite_crc32(0, data, n);
    return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}
