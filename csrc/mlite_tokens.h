/*
 * mlite_tokens: the kernels of the "tokens1" block codec (layout: docs/format.md#tokens1).
 *
 * A block holds n ragged rows of int64. Each row is stored as its length L, the
 * length K of the prefix kept before its trailing run of one repeated value, that
 * run's value, and the K kept values; every value is stored as (value - base)
 * in w little-endian bytes, every length in lw bytes. The body is four arrays:
 *
 *     L[n] (lw bytes each)  K[n] (lw)  run[n] (w)  kept[n_kept] (w)
 *
 * With kept_shared set, every kept value is the same and kept[] holds it once
 * (one entry when n_kept > 0, else none): an attention mask keeps a run of ones
 * before its run of zeros, and then costs no byte per value.
 *
 * Python validates arguments and allocates every buffer; these functions only
 * compute. The decoder trusts nothing in the body: mlite_tokens_check validates
 * every length against the body size before any value is read or written, and
 * mlite_tokens_unpack calls it first. Plain C99, no Python.h.
 */
#ifndef MLITE_TOKENS_H
#define MLITE_TOKENS_H

#include <stddef.h>
#include <stdint.h>

/* Status codes; memora_lite/codecs/backend.py maps each to one CodecError message. */
enum {
    MLITE_OK = 0,
    MLITE_E_WIDTH = 1,    /* w or lw is not 1, 2, 4 or 8 */
    MLITE_E_BODY = 2,     /* body length differs from what the header counts imply, or the body
                             changed under the decoder */
    MLITE_E_KEPT = 3,     /* a row keeps more values than it holds (K > L) */
    MLITE_E_ROWS = 4,     /* row lengths do not add up to n_values */
    MLITE_E_KEPT_SUM = 5, /* kept lengths do not add up to n_kept */
    MLITE_E_DENSE = 6,    /* a row's length differs from the requested dense width */
    MLITE_E_OUT = 7,      /* the output buffer does not hold exactly n_values elements */
    MLITE_E_RANGE = 8     /* a stored value does not fit the output element type */
};

/* The builds of the loops that fold a minimum and maximum (split, the row copies of unpack,
 * mlite_ints_narrow): the x86-64 baseline (or the one build elsewhere), and AVX2 on x86-64
 * built with gcc or clang. */
enum { MLITE_ISA_BASELINE = 0, MLITE_ISA_AVX2 = 1 };

/* Whether this build has isa and the CPU runs it. */
int mlite_isa_available(int isa);

/* The build in use: the best available one, unless mlite_isa_select chose another. */
int mlite_isa(void);

/* Use isa from now on, in every thread; 1, or 0 (and no change) when it is not available.
 * For tests and diagnosis: every build computes exactly the same results. */
int mlite_isa_select(int isa);

typedef struct {
    uint64_t n_rows;
    uint64_t n_kept;   /* total kept values, the length of the kept[] array */
    uint64_t n_values; /* total values, the sum of L */
    int64_t base;      /* frame of reference: stored = value - base */
    unsigned w;        /* bytes per stored value: 1, 2, 4 or 8 */
    unsigned lw;       /* bytes per stored length: 1, 2, 4 or 8 */
    int kept_shared;   /* kept[] holds one value that every kept position repeats */
} mlite_tokens_header;

/* What the encoder's first pass learns about the values (all rows together). */
typedef struct {
    uint64_t n_kept;   /* sum of kept[] */
    uint64_t max_len;  /* the longest row's length */
    int64_t min, max;  /* over all values, when any; unsigned types store their bits */
    int any;           /* whether there is any value */
    int kept_same;     /* whether every kept value equals the first (1 when none is kept) */
} mlite_tokens_stats;

/*
 * Encoder, pass 1: kept[i] = length of row i minus its maximal trailing run of
 * equal values (0 for an empty row), and the stats. values holds elements of
 * elem_size bytes (1, 2, 4 or 8), signed when is_signed, in native order;
 * offsets holds n_rows + 1 non-decreasing indexes into them, starting at 0.
 * Returns MLITE_E_WIDTH for another element size, else MLITE_OK.
 */
int mlite_tokens_split(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                       size_t n_rows, int64_t *kept, mlite_tokens_stats *stats);

/*
 * Encoder, pass 2: write the body (mlite_tokens_body_size bytes) for the rows
 * split by mlite_tokens_split. Every value minus h->base must fit in h->w bytes;
 * h->kept_shared may be set only when the split found kept_same.
 */
int mlite_tokens_pack(const void *values, unsigned elem_size, int is_signed, const int64_t *offsets,
                      const int64_t *kept, const mlite_tokens_header *h, uint8_t *body);

/*
 * Body size the header implies: n_rows * (2 * lw + w) + m * w, where m, the
 * length of kept[], is n_kept, or min(n_kept, 1) when kept_shared. Returns 0 and
 * sets *size, or MLITE_E_WIDTH / MLITE_E_BODY (the size overflows 64 bits).
 */
int mlite_tokens_body_size(const mlite_tokens_header *h, uint64_t *size);

/*
 * Validate a body against its header without writing anything: widths, body
 * size, every K <= L, the sums of L and K, and, when width >= 0, that every row
 * holds exactly width values. Conditions are tested in the order of the status
 * codes above, so a body with several faults always yields the same code.
 */
int mlite_tokens_check(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                       int64_t width);

/*
 * Decode a body into out: n_values elements of elem_size bytes (1, 2, 4 or 8),
 * in native byte order, each written as the low elem_size bytes of the value, so
 * signed and unsigned element types both work. Every value must lie in [lo, hi]
 * (the element type's range) else MLITE_E_RANGE. When offsets is not NULL it
 * receives n_rows + 1 row offsets. width as for mlite_tokens_check.
 */
int mlite_tokens_unpack(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                        int64_t width, void *out, size_t out_len, unsigned elem_size, int64_t lo,
                        int64_t hi, int64_t *offsets);

/*
 * Decode rows first .. first + count - 1 into out (as mlite_tokens_unpack), given
 * kept_before, the sum of K over the rows before first (mlite_tokens_index gives
 * it). out must hold exactly those rows' values (else MLITE_E_OUT); offsets, when
 * not NULL, receives count + 1 offsets into out. Checks the body size and bounds
 * every row by the counts it reads, so no argument or body byte makes it read or
 * write out of bounds; a body not yet validated by mlite_tokens_check may decode
 * to garbage values or fail, never overrun.
 */
int mlite_tokens_unpack_rows(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                             uint64_t first, uint64_t count, uint64_t kept_before, int64_t width,
                             void *out, size_t out_len, unsigned elem_size, int64_t lo, int64_t hi,
                             int64_t *offsets);

/*
 * Validate a body (as mlite_tokens_check with no width) and fill the row index:
 * starts[i] = sum of L over rows < i, kept_starts[i] = sum of K over rows < i,
 * n_rows + 1 entries each. Together they let any row range decode on its own.
 * *uniform receives the length every row shares (0 for no rows), or -1.
 */
int mlite_tokens_index(const uint8_t *body, size_t body_len, const mlite_tokens_header *h,
                       int64_t *starts, int64_t *kept_starts, int64_t *uniform);

/*
 * Copy n > 0 ints from src (src_size bytes each: 1, 2, 4 or 8; signed unless
 * src_signed is 0, and then at most 4 bytes) to dst (dst_size bytes each, signed),
 * converted as a C cast converts, and store their smallest and largest value in
 * *lo and *hi: a numpy column's range check and narrowing in one read. On x86-64 the
 * loop is compiled twice, see mlite_isa.
 */
void mlite_ints_narrow(const void *src, unsigned src_size, int src_signed, void *dst, unsigned dst_size,
                       size_t n, int64_t *lo, int64_t *hi);

/* The most threads mlite_ints_narrow_parallel uses, and the source bytes it needs for each
 * (a column under two MiB narrows on the calling thread alone): starting a thread costs tens
 * of microseconds, narrowing 1 MiB a few hundred. */
#define MLITE_NARROW_MAX_THREADS 8
#define MLITE_NARROW_PART_BYTES (1u << 20)

/*
 * mlite_ints_narrow (n > 0) with the work split over up to `threads` threads (the calling
 * thread and threads it starts and joins; one where POSIX threads are missing), no more
 * threads than src holds MLITE_NARROW_PART_BYTES, in parts that start on 64-value boundaries:
 * the same dst, *lo and *hi. One core's loads cannot use all of a machine's memory
 * bandwidth, and a 4,096 x 384 int64 column is 12 MiB of it.
 */
void mlite_ints_narrow_parallel(const void *src, unsigned src_size, int src_signed, void *dst,
                                unsigned dst_size, size_t n, int64_t *lo, int64_t *hi, unsigned threads);

#endif
