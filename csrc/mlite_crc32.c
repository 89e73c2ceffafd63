/* CRC-32 (zlib's): carry-less multiply folding where the CPU has it, else slice-by-8;
 * see mlite_crc32.h. */
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

/* x86-64 with PCLMULQDQ (Intel since 2010, AMD since 2011): fold 64 bytes per step with
 * carry-less multiplies, then reduce to 32 bits (Barrett). The algorithm and constants are
 * Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction"
 * (Gopal et al., 2009) for the reflected polynomial 0xEDB88320, as in Linux's
 * crc32-pclmul_asm.S and Chromium's zlib crc32_simd.c. 2.3-2.8x zlib 1.2.13's crc32 from
 * Python (benchmarks/test_checksum_speed.py); tests/storage/test_checksum.py compares the
 * two at every length and alignment. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MLITE_CRC_CLMUL 1

/* The running (inverted) CRC c over len bytes, len >= 64 and a multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t mlite_crc32_clmul(uint32_t c, const uint8_t *buf,
                                                                          size_t len)
{
    const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
    const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
    const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
    const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
    const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
    __m128i x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
    __m128i t;
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)c));
    buf += 64;
    len -= 64;
    while (len >= 64) { /* four 128-bit lanes, each folded 512 bits forward */
        __m128i y1 = _mm_clmulepi64_si128(x1, k1k2, 0x00), y2 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
        __m128i y3 = _mm_clmulepi64_si128(x3, k1k2, 0x00), y4 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
        x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
        x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
        x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
        x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
        x1 = _mm_xor_si128(_mm_xor_si128(x1, y1), _mm_loadu_si128((const __m128i *)(buf + 0x00)));
        x2 = _mm_xor_si128(_mm_xor_si128(x2, y2), _mm_loadu_si128((const __m128i *)(buf + 0x10)));
        x3 = _mm_xor_si128(_mm_xor_si128(x3, y3), _mm_loadu_si128((const __m128i *)(buf + 0x20)));
        x4 = _mm_xor_si128(_mm_xor_si128(x4, y4), _mm_loadu_si128((const __m128i *)(buf + 0x30)));
        buf += 64;
        len -= 64;
    }
    /* the four lanes into one, 128 bits at a time */
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), t);
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x3), t);
    t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
    x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x4), t);
    while (len >= 16) {
        t = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11),
                                         _mm_loadu_si128((const __m128i *)buf)), t);
        buf += 16;
        len -= 16;
    }
    /* 128 bits to 64 */
    t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5k0, 0x00), t);
    /* Barrett reduction to 32 bits */
    t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
    x1 = _mm_xor_si128(x1, t);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* -1 until first asked; racing first calls store the same answer. */
static int mlite_has_clmul = -1;
#endif

uint32_t mlite_crc32(uint32_t crc, const uint8_t *data, size_t n)
{
    uint32_t c = ~crc;
#ifdef MLITE_CRC_CLMUL
    if (n >= 64) {
        if (mlite_has_clmul < 0)
            mlite_has_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
        if (mlite_has_clmul) {
            const size_t whole = n & ~(size_t)15;
            c = mlite_crc32_clmul(c, data, whole);
            data += whole;
            n -= whole;
        }
    }
#endif
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
