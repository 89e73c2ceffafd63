/* Kernels of the tokens1 block codec; see mlite_tokens.h and docs/format.md#tokens1. */
#include "mlite_tokens.h"

#include <string.h>
#if !defined(_WIN32)
#include <pthread.h>
#define MLITE_HAVE_PTHREADS 1
#endif

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

static int mlite_valid_width(unsigned width)
{
    return width == 1 || width == 2 || width == 4 || width == 8;
}

/* The loops below fold a minimum and maximum as they go, and vectorize well only with
 * AVX2: SSE2 has no 64-bit compare (the baseline build narrows int64 to int16 1.5x slower),
 * and no signed 8-bit or unsigned 16-bit minimum or maximum, whose emulation chains each
 * vector step to the last. So on x86-64 each of them is compiled twice, for AVX2 and for the
 * baseline, and the build in use is picked at run time (mlite_isa): the CPU's best at first
 * use, or the one mlite_isa_select names, so that the tests run both. That takes gcc or
 * clang (not clang-cl, whose CPU check needs a runtime library not linked here); elsewhere
 * only the baseline exists. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(_MSC_VER)
#define MLITE_HAVE_AVX2 1
#define MLITE_TARGET_AVX2 __attribute__((target("avx2")))
#endif
#define MLITE_TARGET_BASE

/* -1 until first asked; racing first calls store the same answer. */
static int mlite_isa_in_use = -1;

int mlite_isa_available(int isa)
{
#ifdef MLITE_HAVE_AVX2
    if (isa == MLITE_ISA_AVX2)
        return __builtin_cpu_supports("avx2") != 0;
#endif
    return isa == MLITE_ISA_BASELINE;
}

int mlite_isa(void)
{
    if (mlite_isa_in_use < 0)
        mlite_isa_in_use = mlite_isa_available(MLITE_ISA_AVX2) ? MLITE_ISA_AVX2 : MLITE_ISA_BASELINE;
    return mlite_isa_in_use;
}

int mlite_isa_select(int isa)
{
    if (!mlite_isa_available(isa))
        return 0;
    mlite_isa_in_use = isa;
    return 1;
}

/* The encoder reads values of any integer type: one copy of each pass per type T, made by
 * macro, each a plain typed loop. Value i of row r is values[offsets[r] + i].
 *
 * split reads a row forward once for its minimum and maximum (a vectorized pass, which also
 * brings the row into cache), then finds its trailing run scanning back 8 bytes at a time
 * against the run's value repeated: a SQuAD row's ~215 padding values take ~54 compares. */
#define MLITE_SPLIT_FN(NAME, T, TARGET)                                                           \
    TARGET static uint64_t NAME(const T *values, const int64_t *offsets, size_t n_rows,            \
                                int64_t *kept, mlite_tokens_stats *stats)                         \
    {                                                                                             \
        enum { PER_WORD = 8 / sizeof(T) };                                                        \
        uint64_t total = 0, max_len = 0, word, pattern;                                           \
        T lo = 0, hi = 0, shared = 0, repeated[PER_WORD];                                         \
        int any = 0, same = 1;                                                                    \
        size_t i;                                                                                 \
        for (i = 0; i < n_rows; i++) {                                                            \
            const int64_t start = offsets[i], end = offsets[i + 1];                               \
            int64_t j, m;                                                                         \
            T last;                                                                               \
            if ((uint64_t)(end - start) > max_len)                                                \
                max_len = (uint64_t)(end - start);                                                \
            if (end == start) {                                                                   \
                kept[i] = 0;                                                                      \
                continue;                                                                         \
            }                                                                                     \
            last = values[end - 1];                                                               \
            if (!any) {                                                                           \
                lo = hi = last;                                                                   \
                any = 1;                                                                          \
            }                                                                                     \
            for (m = start; m < end; m++) {                                                       \
                lo = values[m] < lo ? values[m] : lo;                                             \
                hi = values[m] > hi ? values[m] : hi;                                             \
            }                                                                                     \
            for (m = 0; m < PER_WORD; m++)                                                        \
                repeated[m] = last;                                                               \
            memcpy(&pattern, repeated, 8);                                                        \
            j = end - 1;                                                                          \
            while (j - start >= PER_WORD) {                                                       \
                memcpy(&word, values + j - PER_WORD, 8);                                          \
                if (word != pattern)                                                              \
                    break;                                                                        \
                j -= PER_WORD;                                                                    \
            }                                                                                     \
            while (j > start && values[j - 1] == last)                                            \
                j--;                                                                              \
            kept[i] = j - start;                                                                  \
            total += (uint64_t)(j - start);                                                       \
            if (same && j > start) {                                                              \
                if (total == (uint64_t)(j - start)) /* the first row that keeps any */           \
                    shared = values[start];                                                       \
                for (m = start; m < j; m++)                                                       \
                    same &= values[m] == shared;                                                  \
            }                                                                                     \
        }                                                                                         \
        stats->kept_same = same;                                                                  \
        stats->any = any;                                                                         \
        stats->min = (int64_t)lo;                                                                 \
        stats->max = (int64_t)hi;                                                                 \
        stats->max_len = max_len;                                                                 \
        return total;                                                                             \
    }

/* Pack values of type T at constant stored width W: stored = value - base (mod 2^64). */
#define MLITE_PACK_FN(NAME, T, W)                                                                 \
    static void NAME(const T *values, const int64_t *offsets, const int64_t *kept,                \
                     const mlite_tokens_header *h, uint8_t *body)                                 \
    {                                                                                             \
        const uint64_t n = h->n_rows, base = (uint64_t)h->base;                                   \
        const unsigned lw = h->lw;                                                                \
        uint8_t *lens = body, *keeps = body + n * lw, *runs = keeps + n * lw, *vals = runs + n * W; \
        uint8_t *const shared = vals; /* the one kept value, when h->kept_shared */               \
        uint64_t i;                                                                               \
        for (i = 0; i < n; i++) {                                                                 \
            const int64_t start = offsets[i], end = offsets[i + 1], k = kept[i];                  \
            int64_t j;                                                                            \
            mlite_store_le(lens + i * lw, (uint64_t)(end - start), lw);                           \
            mlite_store_le(keeps + i * lw, (uint64_t)k, lw);                                      \
            mlite_store_le(runs + i * W, end > start ? (uint64_t)(int64_t)values[end - 1] - base : 0, \
                           W);                                                                    \
            if (h->kept_shared && k) {                                                            \
                if (vals == shared)                                                               \
                    mlite_store_le(vals, (uint64_t)(int64_t)values[start] - base, W);             \
                vals = shared + W;                                                                \
                continue;                                                                         \
            }                                                                                     \
            for (j = 0; j < k; j++)                                                               \
                mlite_store_le(vals + (uint64_t)j * W, (uint64_t)(int64_t)values[start + j] - base, W); \
            vals += (uint64_t)k * W;                                                              \
        }                                                                                         \
    }

#ifdef MLITE_HAVE_AVX2
#define MLITE_SPLIT_AVX2(S, T) MLITE_SPLIT_FN(mlite_split_avx2_##S, T, MLITE_TARGET_AVX2)
#else
#define MLITE_SPLIT_AVX2(S, T)
#endif

#define MLITE_ENCODER(S, T)                                                                       \
    MLITE_SPLIT_FN(mlite_split_base_##S, T, MLITE_TARGET_BASE)                                    \
    MLITE_SPLIT_AVX2(S, T)                                                                        \
    MLITE_PACK_FN(mlite_pack_##S##_1, T, 1)                                                       \
    MLITE_PACK_FN(mlite_pack_##S##_2, T, 2)                                                       \
    MLITE_PACK_FN(mlite_pack_##S##_4, T, 4)                                                       \
    MLITE_PACK_FN(mlite_pack_##S##_8, T, 8)                                                       \
    static void mlite_pack_##S(const T *values, const int64_t *offsets, const int64_t *kept,      \
                               const mlite_tokens_header *h, uint8_t *body)                       \
    {                                                                                             \
        switch (h->w) {                                                                           \
        case 1:                                                                                   \
            mlite_pack_##S##_1(values, offsets, kept, h, body);                                   \
            break;                                                                                \
        case 2:                                                                                   \
            mlite_pack_##S##_2(values, offsets, kept, h, body);                                   \
            break;                                                                                \
        case 4:                                                                                   \
            mlite_pack_##S##_4(values, offsets, kept, h, body);                                   \
            break;                                                                                \
        default:                                                                                  \
            mlite_pack_##S##_8(values, offsets, kept, h, body);                                   \
            break;                                                                                \
        }                                                                                         \
    }

MLITE_ENCODER(i8, int8_t)
MLITE_ENCODER(i16, int16_t)
MLITE_ENCODER(i32, int32_t)
MLITE_ENCODER(i64, int64_t)
MLITE_ENCODER(u8, uint8_t)
MLITE_ENCODER(u16, uint16_t)
MLITE_ENCODER(u32, uint32_t)
MLITE_ENCODER(u64, uint64_t)

/* Calls FN##_<type suffix>(ARGS) for the element type (elem_size, is_signed); 0 if none. */
#define MLITE_BY_TYPE(RESULT, FN, ARGS_T)                                                         \
    switch (elem_size * 2 + (is_signed != 0)) {                                                   \
    case 3:                                                                                       \
        RESULT FN##_i8 ARGS_T(int8_t);                                                            \
        break;                                                                                    \
    case 5:                                                                                       \
        RESULT FN##_i16 ARGS_T(int16_t);                                                          \
        break;                                                                                    \
    case 9:                                                                                       \
        RESULT FN##_i32 ARGS_T(int32_t);                                                          \
        break;                                                                                    \
    case 17:                                                                                      \
        RESULT FN##_i64 ARGS_T(int64_t);                                                          \
        break;                                                                                    \
    case 2:                                                                                       \
        RESULT FN##_u8 ARGS_T(uint8_t);                                                           \
        break;                                                                                    \
    case 4:                                                                                       \
        RESULT FN##_u16 ARGS_T(uint16_t);                                                         \
        break;                                                                                    \
    case 8:                                                                                       \
        RESULT FN##_u32 ARGS_T(uint32_t);                                                         \
        break;                                                                                    \
    case 16:                                                                                      \
        RESULT FN##_u64 ARGS_T(uint64_t);                                                         \
        break;                                                                                    \
    default:                                                                                      \
        return MLITE_E_WIDTH;                                                                     \
    }

#define MLITE_SPLIT_ARGS(T) ((const T *)values, offsets, n_rows, kept, stats)
#define MLITE_PACK_ARGS(T) ((const T *)values, offsets, kept, h, body)

int mlite_tokens_split(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                       size_t n_rows, int64_t *kept, mlite_tokens_stats *stats)
{
#ifdef MLITE_HAVE_AVX2
    if (mlite_isa() == MLITE_ISA_AVX2) {
        MLITE_BY_TYPE(stats->n_kept =, mlite_split_avx2, MLITE_SPLIT_ARGS)
        return MLITE_OK;
    }
#endif
    MLITE_BY_TYPE(stats->n_kept =, mlite_split_base, MLITE_SPLIT_ARGS)
    return MLITE_OK;
}

int mlite_tokens_pack(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                      const int64_t *kept, const mlite_tokens_header *h, uint8_t *body)
{
    MLITE_BY_TYPE(, mlite_pack, MLITE_PACK_ARGS)
    return MLITE_OK;
}

int mlite_tokens_body_size(const mlite_tokens_header *h, uint64_t *size)
{
    uint64_t per_row, kept_len, rows_part, kept_part;
    if (!mlite_valid_width(h->w) || !mlite_valid_width(h->lw))
        return MLITE_E_WIDTH;
    per_row = 2 * (uint64_t)h->lw + h->w;
    kept_len = h->kept_shared ? (h->n_kept > 0) : h->n_kept;
    if (h->n_rows > UINT64_MAX / per_row || kept_len > UINT64_MAX / h->w)
        return MLITE_E_BODY;
    rows_part = h->n_rows * per_row;
    kept_part = kept_len * h->w;
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

/* Little-endian to host order for the typed loops below (the identity on little-endian hosts). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define MLITE_LE8(x) (x)
#define MLITE_LE16(x) __builtin_bswap16(x)
#define MLITE_LE32(x) __builtin_bswap32(x)
#define MLITE_LE64(x) __builtin_bswap64(x)
#else
#define MLITE_LE8(x) (x)
#define MLITE_LE16(x) (x)
#define MLITE_LE32(x) (x)
#define MLITE_LE64(x) (x)
#endif

/* Decoding one row: copy its k kept values (stored type ST, little-endian) to k native
 * elements of the output's unsigned type OT, adding base, while folding the stored
 * minimum and maximum into *lo / *hi; then fill the trailing run. One function per
 * (ST, OT) pair, written as plain typed loops so the compiler vectorises them; memcpy
 * because neither buffer need be aligned. OT arithmetic wraps exactly as the low
 * bytes of the 64-bit sum would. */
typedef void (*mlite_copy_fn)(const uint8_t *src, uint8_t *dst, uint64_t k, uint64_t base,
                              uint64_t *lo, uint64_t *hi);
typedef void (*mlite_fill_fn)(uint8_t *dst, uint64_t count, uint64_t value);

#define MLITE_COPY(NAME, ST, OT, LE, TARGET)                                                      \
    TARGET static void NAME(const uint8_t *src, uint8_t *dst, uint64_t k, uint64_t base,          \
                            uint64_t *lo, uint64_t *hi)                                           \
    {                                                                                             \
        const OT b = (OT)base;                                                                    \
        ST mn = (ST)~(ST)0, mx = 0;                                                               \
        uint64_t j;                                                                               \
        for (j = 0; j < k; j++) {                                                                 \
            ST s;                                                                                 \
            OT o;                                                                                 \
            memcpy(&s, src + j * sizeof(ST), sizeof(ST));                                         \
            s = LE(s);                                                                            \
            mn = s < mn ? s : mn;                                                                 \
            mx = s > mx ? s : mx;                                                                 \
            o = (OT)(b + (OT)s);                                                                  \
            memcpy(dst + j * sizeof(OT), &o, sizeof(OT));                                         \
        }                                                                                         \
        if (k) {                                                                                  \
            *lo = mn < *lo ? mn : *lo;                                                            \
            *hi = mx > *hi ? mx : *hi;                                                            \
        }                                                                                         \
    }

#define MLITE_FILL(NAME, OT)                                                                      \
    static void NAME(uint8_t *dst, uint64_t count, uint64_t value)                                \
    {                                                                                             \
        const OT o = (OT)value;                                                                   \
        uint64_t j;                                                                               \
        for (j = 0; j < count; j++)                                                               \
            memcpy(dst + j * sizeof(OT), &o, sizeof(OT));                                         \
    }

#define MLITE_COPY_ROW(ISA, TARGET, S, ST, LE)                                                    \
    MLITE_COPY(mlite_copy_##ISA##_##S##_1, ST, uint8_t, LE, TARGET)                               \
    MLITE_COPY(mlite_copy_##ISA##_##S##_2, ST, uint16_t, LE, TARGET)                              \
    MLITE_COPY(mlite_copy_##ISA##_##S##_4, ST, uint32_t, LE, TARGET)                              \
    MLITE_COPY(mlite_copy_##ISA##_##S##_8, ST, uint64_t, LE, TARGET)

/* Every (stored width, output width) copy of one build, and their table by width slot. */
#define MLITE_COPIES(ISA, TARGET)                                                                 \
    MLITE_COPY_ROW(ISA, TARGET, 1, uint8_t, MLITE_LE8)                                            \
    MLITE_COPY_ROW(ISA, TARGET, 2, uint16_t, MLITE_LE16)                                          \
    MLITE_COPY_ROW(ISA, TARGET, 4, uint32_t, MLITE_LE32)                                          \
    MLITE_COPY_ROW(ISA, TARGET, 8, uint64_t, MLITE_LE64)                                          \
    static const mlite_copy_fn mlite_copy_##ISA[4][4] = {                                         \
        {mlite_copy_##ISA##_1_1, mlite_copy_##ISA##_1_2, mlite_copy_##ISA##_1_4, mlite_copy_##ISA##_1_8}, \
        {mlite_copy_##ISA##_2_1, mlite_copy_##ISA##_2_2, mlite_copy_##ISA##_2_4, mlite_copy_##ISA##_2_8}, \
        {mlite_copy_##ISA##_4_1, mlite_copy_##ISA##_4_2, mlite_copy_##ISA##_4_4, mlite_copy_##ISA##_4_8}, \
        {mlite_copy_##ISA##_8_1, mlite_copy_##ISA##_8_2, mlite_copy_##ISA##_8_4, mlite_copy_##ISA##_8_8}, \
    };

MLITE_COPIES(base, MLITE_TARGET_BASE)
#ifdef MLITE_HAVE_AVX2
MLITE_COPIES(avx2, MLITE_TARGET_AVX2)
#endif
MLITE_FILL(mlite_fill_1, uint8_t)
MLITE_FILL(mlite_fill_2, uint16_t)
MLITE_FILL(mlite_fill_4, uint32_t)
MLITE_FILL(mlite_fill_8, uint64_t)

static unsigned mlite_width_slot(unsigned width)
{
    return width == 1 ? 0 : width == 2 ? 1 : width == 4 ? 2 : 3;
}

/* The copies of the build in use. */
static const mlite_copy_fn (*mlite_copy_fns(void))[4]
{
#ifdef MLITE_HAVE_AVX2
    if (mlite_isa() == MLITE_ISA_AVX2)
        return mlite_copy_avx2;
#endif
    return mlite_copy_base;
}

static const mlite_fill_fn mlite_fill_fns[4] = {mlite_fill_1, mlite_fill_2, mlite_fill_4,
                                                mlite_fill_8};

int mlite_tokens_unpack_rows(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                             uint64_t first, uint64_t count, uint64_t kept_before, int64_t width,
                             void *out, size_t out_len, unsigned elem_size, int64_t lo, int64_t hi,
                             int64_t *offsets)
{
    uint64_t size, min_off = 0, span = 0, i, pos = 0, used = kept_before;
    const int none_fit = hi < h->base || lo > hi;
    const uint64_t n = h->n_rows, base = (uint64_t)h->base;
    const unsigned w = h->w, lw = h->lw;
    const uint8_t *lens, *keeps, *runs, *vals;
    uint8_t *dest = (uint8_t *)out;
    mlite_copy_fn copy;
    mlite_fill_fn fill;
    int status = mlite_tokens_body_size(h, &size);
    if (status != MLITE_OK)
        return status;
    if (size != (uint64_t)body_len || first > n || count > n - first || kept_before > h->n_kept)
        return MLITE_E_BODY;
    if (!mlite_valid_width(elem_size))
        return MLITE_E_OUT;
    /* value = base + s lies in [lo, hi] exactly when s lies in [min_off, min_off + span]. */
    if (!none_fit) { /* else no value fits: any row holding a value fails the range test */
        min_off = lo > h->base ? (uint64_t)lo - (uint64_t)h->base : 0;
        span = (uint64_t)hi - (uint64_t)h->base - min_off;
    }
    copy = mlite_copy_fns()[mlite_width_slot(w)][mlite_width_slot(elem_size)];
    fill = mlite_fill_fns[mlite_width_slot(elem_size)];
    lens = body;
    keeps = body + n * lw;
    runs = keeps + n * lw;
    vals = runs + n * w + (h->kept_shared ? 0 : kept_before * w);
    if (offsets)
        offsets[0] = 0;
    /* Every row is bounded by the counts read here, whatever the body holds: it may be
     * shared memory that changed since it was checked. A row is written, then judged. */
    for (i = first; i < first + count; i++) {
        const uint64_t l = mlite_load_le(lens + i * lw, lw), k = mlite_load_le(keeps + i * lw, lw);
        uint64_t lo_s = UINT64_MAX, hi_s = 0;
        if (k > l || k > h->n_kept - used)
            return MLITE_E_BODY;
        if (width >= 0 && l != (uint64_t)width)
            return MLITE_E_DENSE;
        if (l > out_len - pos)
            return MLITE_E_OUT;
        if (h->kept_shared) {
            if (k) { /* the one stored value, repeated: a fill, not a copy */
                const uint64_t s = mlite_load_le(vals, w);
                lo_s = hi_s = s;
                fill(dest + pos * elem_size, k, base + s);
            }
        } else {
            copy(vals, dest + pos * elem_size, k, base, &lo_s, &hi_s);
            vals += k * w;
        }
        if (l > k) {
            const uint64_t s = mlite_load_le(runs + i * w, w);
            lo_s = s < lo_s ? s : lo_s;
            hi_s = s > hi_s ? s : hi_s;
            fill(dest + (pos + k) * elem_size, l - k, base + s);
        }
        if (l && (none_fit || lo_s < min_off || hi_s - min_off > span))
            return MLITE_E_RANGE;
        used += k;
        pos += l;
        if (offsets)
            offsets[i - first + 1] = (int64_t)pos;
    }
    return pos == out_len ? MLITE_OK : MLITE_E_OUT;
}

int mlite_tokens_unpack(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                        int64_t width, void *out, size_t out_len, unsigned elem_size, int64_t lo,
                        int64_t hi, int64_t *offsets)
{
    int status = mlite_tokens_check(body, body_len, h, width);
    if (status != MLITE_OK)
        return status;
    if ((uint64_t)out_len != h->n_values || !mlite_valid_width(elem_size))
        return MLITE_E_OUT;
    return mlite_tokens_unpack_rows(body, body_len, h, 0, h->n_rows, 0, width, out, out_len, elem_size,
                                    lo, hi, offsets);
}

int mlite_tokens_index(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                       int64_t *starts, int64_t *kept_starts, int64_t *uniform)
{
    const unsigned lw = h->lw;
    uint64_t i, sum_l = 0, sum_k = 0, first = h->n_rows ? mlite_load_le(body, lw) : 0;
    int same = 1;
    int status = mlite_tokens_check(body, body_len, h, -1);
    if (status != MLITE_OK)
        return status;
    starts[0] = kept_starts[0] = 0;
    for (i = 0; i < h->n_rows; i++) {
        const uint64_t l = mlite_load_le(body + i * lw, lw);
        same &= l == first;
        sum_l += l;
        sum_k += mlite_load_le(body + (h->n_rows + i) * lw, lw);
        starts[i + 1] = (int64_t)sum_l;
        kept_starts[i + 1] = (int64_t)sum_k;
    }
    /* check bounded every length by the body size, so first fits int64 */
    *uniform = same ? (int64_t)first : -1;
    return MLITE_OK;
}


/* --- mlite_ints_narrow ---------------------------------------------------------------------- */

#define MLITE_NARROW_LOOP(S, D)                                    \
    do {                                                           \
        const S *s_ = (const S *)src;                              \
        D *d_ = (D *)dst;                                          \
        int64_t low_ = (int64_t)s_[0], high_ = (int64_t)s_[0];     \
        for (size_t i_ = 0; i_ < n; i_++) {                        \
            int64_t v_ = (int64_t)s_[i_];                          \
            low_ = v_ < low_ ? v_ : low_;                          \
            high_ = v_ > high_ ? v_ : high_;                       \
            d_[i_] = (D)v_;                                        \
        }                                                          \
        *lo = low_;                                                \
        *hi = high_;                                               \
    } while (0)

#define MLITE_NARROW_FROM(S)                                       \
    do {                                                           \
        switch (dst_size) {                                        \
        case 1: MLITE_NARROW_LOOP(S, int8_t); break;               \
        case 2: MLITE_NARROW_LOOP(S, int16_t); break;              \
        case 4: MLITE_NARROW_LOOP(S, int32_t); break;              \
        default: MLITE_NARROW_LOOP(S, int64_t); break;             \
        }                                                          \
    } while (0)

/* The body of both builds: inlined into each, so each compiles it for its own target. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline void mlite_narrow_body(const void *src, unsigned src_size, int src_signed, void *dst,
                                     unsigned dst_size, size_t n, int64_t *lo, int64_t *hi)
{
    if (src_signed) {
        switch (src_size) {
        case 1: MLITE_NARROW_FROM(int8_t); break;
        case 2: MLITE_NARROW_FROM(int16_t); break;
        case 4: MLITE_NARROW_FROM(int32_t); break;
        default: MLITE_NARROW_FROM(int64_t); break;
        }
    } else {
        switch (src_size) {
        case 1: MLITE_NARROW_FROM(uint8_t); break;
        case 2: MLITE_NARROW_FROM(uint16_t); break;
        default: MLITE_NARROW_FROM(uint32_t); break;
        }
    }
}

#define MLITE_NARROW_FN(NAME, TARGET)                                                             \
    TARGET static void NAME(const void *src, unsigned src_size, int src_signed, void *dst,        \
                            unsigned dst_size, size_t n, int64_t *lo, int64_t *hi)                \
    {                                                                                             \
        mlite_narrow_body(src, src_size, src_signed, dst, dst_size, n, lo, hi);                   \
    }

MLITE_NARROW_FN(mlite_narrow_base, MLITE_TARGET_BASE)
#ifdef MLITE_HAVE_AVX2
MLITE_NARROW_FN(mlite_narrow_avx2, MLITE_TARGET_AVX2)
#endif

void mlite_ints_narrow(const void *src, unsigned src_size, int src_signed, void *dst, unsigned dst_size,
                       size_t n, int64_t *lo, int64_t *hi)
{
#ifdef MLITE_HAVE_AVX2
    if (mlite_isa() == MLITE_ISA_AVX2) {
        mlite_narrow_avx2(src, src_size, src_signed, dst, dst_size, n, lo, hi);
        return;
    }
#endif
    mlite_narrow_base(src, src_size, src_signed, dst, dst_size, n, lo, hi);
}

/* --- mlite_ints_narrow_parallel ------------------------------------------------------------- */

/* One thread's share of a narrowing: parts start on 64-element boundaries, so no two threads
 * write the same cache line of dst. */
typedef struct {
    const char *src;
    char *dst;
    size_t n;
    int64_t lo, hi;
    unsigned src_size, dst_size;
    int src_signed;
} mlite_narrow_part;

static void *mlite_narrow_part_run(void *arg)
{
    mlite_narrow_part *part = (mlite_narrow_part *)arg;
    mlite_ints_narrow(part->src, part->src_size, part->src_signed, part->dst, part->dst_size, part->n,
                      &part->lo, &part->hi);
    return NULL;
}

void mlite_ints_narrow_parallel(const void *src, unsigned src_size, int src_signed, void *dst,
                                unsigned dst_size, size_t n, int64_t *lo, int64_t *hi, unsigned threads)
{
    mlite_narrow_part parts[MLITE_NARROW_MAX_THREADS];
    size_t count = threads < 1 ? 1 : threads > MLITE_NARROW_MAX_THREADS ? MLITE_NARROW_MAX_THREADS : threads;
    size_t by_size = n * src_size / MLITE_NARROW_PART_BYTES, step, first = 0, k;
    if (count > by_size)
        count = by_size < 1 ? 1 : by_size;
    step = ((n + count - 1) / count + 63) / 64 * 64;
    (void)mlite_isa(); /* pick the build once, here, rather than in each thread at once */
    for (k = 0; k < count && first < n; k++, first += step) {
        parts[k].src = (const char *)src + first * src_size;
        parts[k].dst = (char *)dst + first * dst_size;
        parts[k].n = n - first < step ? n - first : step;
        parts[k].src_size = src_size;
        parts[k].dst_size = dst_size;
        parts[k].src_signed = src_signed;
    }
    count = k;
#ifdef MLITE_HAVE_PTHREADS
    {
        pthread_t ids[MLITE_NARROW_MAX_THREADS];
        int started[MLITE_NARROW_MAX_THREADS] = {0};
        for (k = 1; k < count; k++)
            started[k] = pthread_create(&ids[k], NULL, mlite_narrow_part_run, &parts[k]) == 0;
        mlite_narrow_part_run(&parts[0]);
        /* A thread that could not start (resource limits) leaves its part to this one. */
        for (k = 1; k < count; k++) {
            if (started[k])
                pthread_join(ids[k], NULL);
            else
                mlite_narrow_part_run(&parts[k]);
        }
    }
#else
    for (k = 0; k < count; k++)
        mlite_narrow_part_run(&parts[k]);
#endif
    *lo = parts[0].lo;
    *hi = parts[0].hi;
    for (k = 1; k < count; k++) {
        *lo = parts[k].lo < *lo ? parts[k].lo : *lo;
        *hi = parts[k].hi > *hi ? parts[k].hi : *hi;
    }
}
