/* Kernels of the tokens1 block codec; see mlite_tokens.h and docs/format.md#tokens1. */
#include "mlite_tokens.h"

#include <string.h>

/* Byte-wise little-endian access keeps the format independent of host byte order;
 * gcc and clang merge these into single loads and stores on little-endian hosts. */
static inline uint64_t mlite_load_le(const uint8_t *p, unsigned width)
{
    switch (width) {
    case 1:
        return p[0];
    case 2:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8;
    case 4:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
    default:
        return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
               (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
               (uint64_t)p[7] << 56;
    }
}

static inline void mlite_store_le(uint8_t *p, uint64_t v, unsigned width)
{
    unsigned b;
    for (b = 0; b < width; b++)
        p[b] = (uint8_t)(v >> (8 * b));
}

/* Native-order store of the low elem_size bytes; memcpy because numpy buffers
 * need not be aligned for the element type. */
static inline void mlite_store_native(uint8_t *out, uint64_t index, uint64_t v, unsigned elem_size)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    switch (elem_size) {
    case 1:
        u8 = (uint8_t)v;
        memcpy(out + index, &u8, 1);
        break;
    case 2:
        u16 = (uint16_t)v;
        memcpy(out + 2 * index, &u16, 2);
        break;
    case 4:
        u32 = (uint32_t)v;
        memcpy(out + 4 * index, &u32, 4);
        break;
    default:
        memcpy(out + 8 * index, &v, 8);
        break;
    }
}

static int mlite_valid_width(unsigned width)
{
    return width == 1 || width == 2 || width == 4 || width == 8;
}

uint64_t mlite_tokens_split(const int64_t *values, const int64_t *offsets, size_t n_rows,
                            int64_t *kept)
{
    uint64_t total = 0;
    size_t i;
    for (i = 0; i < n_rows; i++) {
        int64_t start = offsets[i], end = offsets[i + 1], j;
        if (end == start) {
            kept[i] = 0;
            continue;
        }
        j = end - 1;
        while (j > start && values[j - 1] == values[end - 1])
            j--;
        kept[i] = j - start;
        total += (uint64_t)(j - start);
    }
    return total;
}

/* Specialised per value width by the constant argument in mlite_tokens_pack. */
static inline void mlite_pack_impl(const int64_t *values, const int64_t *offsets,
                                   const int64_t *kept, const mlite_tokens_header *h, uint8_t *body,
                                   const unsigned w)
{
    const uint64_t n = h->n_rows, base = (uint64_t)h->base;
    const unsigned lw = h->lw;
    uint8_t *lens = body, *keeps = body + n * lw, *runs = keeps + n * lw, *vals = runs + n * w;
    uint64_t i;
    for (i = 0; i < n; i++) {
        const int64_t start = offsets[i], end = offsets[i + 1], k = kept[i];
        int64_t j;
        mlite_store_le(lens + i * lw, (uint64_t)(end - start), lw);
        mlite_store_le(keeps + i * lw, (uint64_t)k, lw);
        mlite_store_le(runs + i * w, end > start ? (uint64_t)values[end - 1] - base : 0, w);
        for (j = 0; j < k; j++)
            mlite_store_le(vals + (uint64_t)j * w, (uint64_t)values[start + j] - base, w);
        vals += (uint64_t)k * w;
    }
}

void mlite_tokens_pack(const int64_t *values, const int64_t *offsets, const int64_t *kept,
                       const mlite_tokens_header *h, uint8_t *body)
{
    switch (h->w) {
    case 1:
        mlite_pack_impl(values, offsets, kept, h, body, 1);
        break;
    case 2:
        mlite_pack_impl(values, offsets, kept, h, body, 2);
        break;
    case 4:
        mlite_pack_impl(values, offsets, kept, h, body, 4);
        break;
    default:
        mlite_pack_impl(values, offsets, kept, h, body, 8);
        break;
    }
}

int mlite_tokens_body_size(const mlite_tokens_header *h, uint64_t *size)
{
    uint64_t per_row, rows_part, kept_part;
    if (!mlite_valid_width(h->w) || !mlite_valid_width(h->lw))
        return MLITE_E_WIDTH;
    per_row = 2 * (uint64_t)h->lw + h->w;
    if (h->n_rows > UINT64_MAX / per_row || h->n_kept > UINT64_MAX / h->w)
        return MLITE_E_BODY;
    rows_part = h->n_rows * per_row;
    kept_part = h->n_kept * h->w;
    if (rows_part > UINT64_MAX - kept_part)
        return MLITE_E_BODY;
    *size = rows_part + kept_part;
    return MLITE_OK;
}

int mlite_tokens_check(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                       int64_t width)
{
    uint64_t size, sum_l = 0, sum_k = 0, i;
    int kept_bad = 0, dense_bad = 0, over_l = 0, over_k = 0;
    int status = mlite_tokens_body_size(h, &size);
    const unsigned lw = h->lw;
    const uint8_t *lens = body, *keeps;
    if (status != MLITE_OK)
        return status;
    if (size != (uint64_t)body_len)
        return MLITE_E_BODY;
    keeps = body + h->n_rows * lw;
    for (i = 0; i < h->n_rows; i++) {
        const uint64_t l = mlite_load_le(lens + i * lw, lw), k = mlite_load_le(keeps + i * lw, lw);
        kept_bad |= k > l;
        dense_bad |= width >= 0 && l != (uint64_t)width;
        over_l |= sum_l > UINT64_MAX - l;
        over_k |= sum_k > UINT64_MAX - k;
        sum_l += l;
        sum_k += k;
    }
    if (kept_bad)
        return MLITE_E_KEPT;
    if (over_l || sum_l != h->n_values)
        return MLITE_E_ROWS;
    if (over_k || sum_k != h->n_kept)
        return MLITE_E_KEPT_SUM;
    if (dense_bad)
        return MLITE_E_DENSE;
    return MLITE_OK;
}

/* Specialised per (value width, element size) by constant arguments. A stored s
 * is in range when s - min_off <= span (unsigned), which lets the kept loop run
 * without a branch; the row is rejected after it is written. */
static inline int mlite_unpack_impl(const uint8_t *body, const mlite_tokens_header *h, uint8_t *out,
                                    uint64_t min_off, uint64_t span, int64_t *offsets,
                                    const unsigned w, const unsigned elem_size)
{
    const uint64_t n = h->n_rows, base = (uint64_t)h->base;
    const unsigned lw = h->lw;
    const uint8_t *lens = body, *keeps = body + n * lw, *runs = keeps + n * lw, *vals = runs + n * w;
    uint64_t i, pos = 0, used = 0;
    if (offsets)
        offsets[0] = 0;
    for (i = 0; i < n; i++) {
        const uint64_t l = mlite_load_le(lens + i * lw, lw), k = mlite_load_le(keeps + i * lw, lw);
        uint64_t j, bad = 0;
        /* Checked already, but the body may be shared memory (an mmap): bound every row
         * by the lengths actually read here, so a concurrent writer cannot cause an overrun. */
        if (k > l || l > h->n_values - pos || k > h->n_kept - used)
            return MLITE_E_BODY;
        for (j = 0; j < k; j++) {
            const uint64_t s = mlite_load_le(vals + j * w, w);
            bad |= (uint64_t)(s - min_off > span);
            mlite_store_native(out, pos + j, base + s, elem_size);
        }
        if (l > k) {
            const uint64_t s = mlite_load_le(runs + i * w, w);
            bad |= (uint64_t)(s - min_off > span);
            for (j = k; j < l; j++)
                mlite_store_native(out, pos + j, base + s, elem_size);
        }
        if (bad)
            return MLITE_E_RANGE;
        vals += k * w;
        used += k;
        pos += l;
        if (offsets)
            offsets[i + 1] = (int64_t)pos;
    }
    return MLITE_OK;
}

#define MLITE_UNPACK_ES(W)                                                                        \
    switch (elem_size) {                                                                          \
    case 1:                                                                                       \
        return mlite_unpack_impl(body, h, (uint8_t *)out, min_off, span, offsets, W, 1);         \
    case 2:                                                                                       \
        return mlite_unpack_impl(body, h, (uint8_t *)out, min_off, span, offsets, W, 2);         \
    case 4:                                                                                       \
        return mlite_unpack_impl(body, h, (uint8_t *)out, min_off, span, offsets, W, 4);         \
    default:                                                                                      \
        return mlite_unpack_impl(body, h, (uint8_t *)out, min_off, span, offsets, W, 8);         \
    }

int mlite_tokens_unpack(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                        int64_t width, void *out, size_t out_len, unsigned elem_size, int64_t lo,
                        int64_t hi, int64_t *offsets)
{
    uint64_t min_off, span;
    int status = mlite_tokens_check(body, body_len, h, width);
    if (status != MLITE_OK)
        return status;
    if ((uint64_t)out_len != h->n_values || !mlite_valid_width(elem_size))
        return MLITE_E_OUT;
    /* value = base + s lies in [lo, hi] exactly when s lies in [min_off, min_off + span]. */
    if (hi < h->base || lo > hi) {
        /* No value fits, so only a block without values decodes; it reads no value. */
        if (h->n_values > 0)
            return MLITE_E_RANGE;
        min_off = span = 0;
    } else {
        min_off = lo > h->base ? (uint64_t)lo - (uint64_t)h->base : 0;
        span = (uint64_t)hi - (uint64_t)h->base - min_off;
    }
    switch (h->w) {
    case 1:
        MLITE_UNPACK_ES(1)
    case 2:
        MLITE_UNPACK_ES(2)
    case 4:
        MLITE_UNPACK_ES(4)
    default:
        MLITE_UNPACK_ES(8)
    }
}
