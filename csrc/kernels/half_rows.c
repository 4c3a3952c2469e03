/* The row loops of float16 / bfloat16 tables (half_rows.h): the widening lookup and the rounding
 * write-back. The per-element work is half.h's; each loop is compiled for every vector level of
 * simd_levels.h (the conversions are integer selects the compiler vectorises; same bits on all).
 * Shapes: W (num_rows, dim) 16-bit; out / src (n, dim) float32; ids / rows (n,). */
#include "half_rows.h"

static inline PE_ALWAYS_INLINE void widen_body(float *restrict out, const uint16_t *restrict W,
                                               const int64_t *restrict ids, size_t lo, size_t hi,
                                               size_t dim, int kind) {
    for (size_t i = lo; i < hi; i++) {
        if (i + PE_PREFETCH_DIST < hi) {
            const char *pf = (const char *)(W + (size_t)ids[i + PE_PREFETCH_DIST] * dim);
            PE_PREFETCH_T0(pf);
            PE_PREFETCH_T0(pf + 64);
        }
        pe_widen_row(out + i * dim, W + (size_t)ids[i] * dim, dim, kind);
    }
}

#define LV_NAME(s) widen##s
#define LV_BODY widen_body
#define LV_PARAMS (float *restrict out, const uint16_t *restrict W, const int64_t *restrict ids, \
    size_t lo, size_t hi, size_t dim, int kind)
#define LV_ARGS (out, W, ids, lo, hi, dim, kind)
#include "simd_levels.h"

static inline PE_ALWAYS_INLINE void narrow_body(uint16_t *restrict W, const float *restrict src,
                                                const int64_t *restrict rows, size_t lo, size_t hi,
                                                size_t dim, int kind, int mode, uint64_t seed,
                                                uint64_t step) {
    for (size_t i = lo; i < hi; i++) {
        const int64_t r = rows ? rows[i] : (int64_t)i;
        pe_narrow_row(W + (size_t)r * dim, src + i * dim, dim, kind, mode, seed, step, r);
    }
}

#define LV_NAME(s) narrow##s
#define LV_BODY narrow_body
#define LV_PARAMS (uint16_t *restrict W, const float *restrict src, const int64_t *restrict rows, \
    size_t lo, size_t hi, size_t dim, int kind, int mode, uint64_t seed, uint64_t step)
#define LV_ARGS (W, src, rows, lo, hi, dim, kind, mode, seed, step)
#include "simd_levels.h"

int pe_gather_widen(float *out, const uint16_t *W, const int64_t *ids, size_t n, size_t dim,
                    int kind) {
    size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(float) + sizeof(uint16_t));
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (kind != PE_HALF_F16 && kind != PE_HALF_BF16) return PE_ERR_VALUE;
    int nt = pe_threads_for(total, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        widen(out, W, ids, n * t / nth, n * (t + 1) / nth, dim, kind);
    }
    return PE_OK;
}

int pe_narrow_rows(uint16_t *W, const float *src, const int64_t *rows, size_t n, size_t dim,
                   int kind, int mode, uint64_t seed, uint64_t step) {
    /* stochastic rounding hashes every element: count it as a few more bytes of work */
    size_t per = mode == PE_ROUND_STOCHASTIC ? 32 : sizeof(float) + sizeof(uint16_t);
    size_t total = pe_mul_size(pe_mul_size(n, dim), per);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if ((kind != PE_HALF_F16 && kind != PE_HALF_BF16) ||
        (mode != PE_ROUND_NEAREST && mode != PE_ROUND_STOCHASTIC))
        return PE_ERR_VALUE;
    int nt = pe_threads_for(total, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        narrow(W, src, rows, n * t / nth, n * (t + 1) / nth, dim, kind, mode, seed, step);
    }
    return PE_OK;
}
