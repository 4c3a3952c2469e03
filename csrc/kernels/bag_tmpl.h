/* The body of bag.c for one element type, included for float, double (float_types.h) and the
 * forward of float16 / bfloat16 tables (half_types.h).
 * Before including: T (the element type), S and LD (the stored type of W and its load),
 * FN(name) (adds the _f32 / _f64 / _f16 / _bf16 suffix).
 * Uses only the headers below and what this header defines. */
#include "bag.h"
#include "simd.h"

#include <string.h>

#ifndef PE_BAG_TMPL_ONCE /* the type-independent part, defined once */
#define PE_BAG_TMPL_ONCE

/* Rows are read at random, so every line of a row PE_PREFETCH_DIST positions ahead is prefetched
 * into every cache level (PE_PREFETCH_T0; with the NTA hint of PE_PREFETCH_R the forward ran
 * 2-5x slower): a bag of short rows issues few loads per id and its misses would otherwise not
 * overlap. A forward pass over one column block prefetches only that block's lines of the row. */

/* Columns summed per pass in a local accumulator the compiler keeps in registers (256 bytes:
 * 4 zmm / 8 ymm), instead of a load-add-store on the output row for every id, whose
 * store-to-load forwarding chain made the sum ~3x slower than torch's FBGEMM kernel. */
#define CB_BYTES 256

/* Columns per thread in the backward: whole cache lines, so threads never share one. */
#define COLS_ALIGN 16

/* Prefetch bytes b0 .. b1 of row `id` (row_bytes long) of M, a line at a time, into every level;
 * for writing with `write`. */
static inline void bag_prefetch(const void *M, int64_t id, size_t row_bytes, size_t b0, size_t b1,
                                int write) {
    const char *row = (const char *)M + (size_t)id * row_bytes;
    for (size_t b = b0; b < b1; b += 64) {
        if (write) PE_PREFETCH_W_T0(row + b);
        else PE_PREFETCH_T0(row + b);
    }
}

/* First bag b whose start off[b] >= pos (nb when none): a binary search over the offsets. */
static size_t bag_first_at(const int64_t *off, size_t nb, size_t pos) {
    size_t lo = 0, hi = nb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((size_t)off[mid] < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

#endif /* PE_BAG_TMPL_ONCE */

/* sum (weighted when psw) of columns c0 .. c0 + CB of the rows of positions lo .. hi */
static inline size_t FN(sum_block)(T *restrict o, const S *restrict W, const int64_t *restrict ids,
                                   const T *restrict psw, size_t lo, size_t hi, size_t dim,
                                   size_t c0, int64_t pad, size_t n) {
    enum { CB = CB_BYTES / sizeof(T) };
    T acc[CB];
    size_t count = 0;
    for (size_t k = 0; k < CB; k++) acc[k] = 0;
    for (size_t j = lo; j < hi; j++) {
        if (j + PE_PREFETCH_DIST < n) { /* this block's lines of the row ahead: unrolled */
            const char *pf = (const char *)(W + (size_t)ids[j + PE_PREFETCH_DIST] * dim + c0);
            for (size_t k = 0; k < CB_BYTES; k += 64) PE_PREFETCH_T0(pf + k);
        }
        int64_t id = ids[j];
        if (id == pad) continue;
        const S *restrict w = W + (size_t)id * dim + c0;
        if (psw) {
            const T s = psw[j];
            for (size_t k = 0; k < CB; k++) acc[k] += LD(w[k]) * s;
        } else {
            for (size_t k = 0; k < CB; k++) acc[k] += LD(w[k]);
        }
        count++;
    }
    for (size_t k = 0; k < CB; k++) o[c0 + k] = acc[k];
    return count;
}

static inline PE_ALWAYS_INLINE void
FN(bags_body)(T *restrict out, int64_t *restrict argmax, const S *restrict W,
              const int64_t *restrict ids, const int64_t *restrict off, const T *restrict psw,
              size_t b0, size_t b1, size_t dim, int mode, int64_t pad) {
    enum { CB = CB_BYTES / sizeof(T) };
    const size_t n = (size_t)off[b1]; /* prefetch across bag ends, up to this thread's end */
    const size_t full = dim / CB * CB;
    for (size_t b = b0; b < b1; b++) {
        T *restrict o = out + b * dim;
        int64_t *restrict am = argmax ? argmax + b * dim : NULL;
        size_t lo = (size_t)off[b], hi = (size_t)off[b + 1], count = 0;
        if (mode != PE_BAG_MAX) {
            /* whole blocks in registers, each pass prefetching its part of the rows ahead */
            for (size_t c0 = 0; c0 < full; c0 += CB)
                count = FN(sum_block)(o, W, ids, psw, lo, hi, dim, c0, pad, n);
            if (full < dim) { /* the last partial block, through the output row */
                memset(o + full, 0, (dim - full) * sizeof(T));
                count = 0;
                for (size_t j = lo; j < hi; j++) {
                    if (j + PE_PREFETCH_DIST < n)
                        bag_prefetch(W, ids[j + PE_PREFETCH_DIST], dim * sizeof(S),
                                     full * sizeof(S), dim * sizeof(S), 0);
                    int64_t id = ids[j];
                    if (id == pad) continue;
                    const S *restrict w = W + (size_t)id * dim;
                    if (psw) {
                        const T s = psw[j];
                        for (size_t k = full; k < dim; k++) o[k] += LD(w[k]) * s;
                    } else {
                        for (size_t k = full; k < dim; k++) o[k] += LD(w[k]);
                    }
                    count++;
                }
            }
            if (mode == PE_BAG_MEAN && count > 1) {
                const T s = (T)(1.0 / (double)count);
                for (size_t k = 0; k < dim; k++) o[k] *= s;
            }
            continue;
        }
        memset(o, 0, dim * sizeof(T));
        for (size_t k = 0; k < dim; k++) am[k] = -1;
        for (size_t j = lo; j < hi; j++) {
            if (j + PE_PREFETCH_DIST < n)
                bag_prefetch(W, ids[j + PE_PREFETCH_DIST], dim * sizeof(S), 0, dim * sizeof(S), 0);
            int64_t id = ids[j];
            if (id == pad) continue;
            const S *restrict w = W + (size_t)id * dim;
            if (count == 0) {
                for (size_t k = 0; k < dim; k++) {
                    o[k] = LD(w[k]);
                    am[k] = id;
                }
            } else {
                for (size_t k = 0; k < dim; k++) {
                    const T x = LD(w[k]);
                    int gt = x > o[k];
                    o[k] = gt ? x : o[k];
                    am[k] = gt ? id : am[k];
                }
            }
            count++;
        }
    }
}

#define LV_NAME(s) FN(bags##s)
#define LV_BODY FN(bags_body)
#define LV_PARAMS (T *restrict out, int64_t *restrict argmax, const S *restrict W, \
    const int64_t *restrict ids, const int64_t *restrict off, const T *restrict psw, size_t b0, \
    size_t b1, size_t dim, int mode, int64_t pad)
#define LV_ARGS (out, argmax, W, ids, off, psw, b0, b1, dim, mode, pad)
#include "simd_levels.h"


int FN(pe_bag_forward)(T *out, int64_t *argmax, const S *W, const int64_t *ids, const int64_t *off,
                       const T *psw, size_t nb, size_t dim, int mode, int64_t padding_idx) {
    if (mode != PE_BAG_SUM && mode != PE_BAG_MEAN && mode != PE_BAG_MAX) return PE_ERR_VALUE;
    if (mode == PE_BAG_MAX && !argmax) return PE_ERR_VALUE;
    if (mode != PE_BAG_MAX) argmax = NULL;
    if (mode != PE_BAG_SUM) psw = NULL;
    if (nb == 0) return PE_OK;
    size_t n = (size_t)off[nb];
    size_t work = pe_mul_size(pe_mul_size(n + nb, dim), sizeof(S));
    int nt = pe_threads_for(work, nb);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        /* equal shares of positions, cut at bag boundaries (bags vary in length) */
        size_t nth, t = pe_team(&nth);
        size_t b0 = t == 0 ? 0 : bag_first_at(off, nb, n * t / nth);
        size_t b1 = t == nth - 1 ? nb : bag_first_at(off, nb, n * (t + 1) / nth);
        FN(bags)(out, argmax, W, ids, off, psw, b0, b1, dim, mode, padding_idx);
    }
    return PE_OK;
}

#ifndef PE_HALF_TMPL /* a half table's gradient is float32: the _f32 backward serves it */
static inline PE_ALWAYS_INLINE void
FN(cols_body)(T *restrict grad, const int64_t *restrict ids, const int64_t *restrict off,
              const T *restrict dout, const T *restrict psw, const int64_t *restrict argmax,
              size_t nb, size_t dim, int mode, int64_t pad, size_t c0, size_t c1) {
    const size_t n = (size_t)off[nb];
    for (size_t b = 0; b < nb; b++) {
        const T *restrict d = dout + b * dim;
        if (mode == PE_BAG_MAX) {
            const int64_t *restrict am = argmax + b * dim;
            for (size_t k = c0; k < c1; k++)
                if (am[k] >= 0) grad[(size_t)am[k] * dim + k] += d[k];
            continue;
        }
        size_t lo = (size_t)off[b], hi = (size_t)off[b + 1];
        T s = (T)1;
        if (mode == PE_BAG_MEAN) {
            size_t count = 0;
            for (size_t j = lo; j < hi; j++) count += ids[j] != pad;
            if (count == 0) continue;
            s = (T)(1.0 / (double)count);
        }
        for (size_t j = lo; j < hi; j++) {
            if (j + PE_PREFETCH_DIST < n)
                bag_prefetch(grad, ids[j + PE_PREFETCH_DIST], dim * sizeof(T), c0 * sizeof(T),
                             c1 * sizeof(T), 1);
            int64_t id = ids[j];
            if (id == pad) continue;
            T *restrict g = grad + (size_t)id * dim;
            if (psw) {
                const T sj = psw[j];
                for (size_t k = c0; k < c1; k++) g[k] += d[k] * sj;
            } else if (mode == PE_BAG_MEAN) {
                for (size_t k = c0; k < c1; k++) g[k] += d[k] * s;
            } else {
                for (size_t k = c0; k < c1; k++) g[k] += d[k];
            }
        }
    }
}

#define LV_NAME(s) FN(cols##s)
#define LV_BODY FN(cols_body)
#define LV_PARAMS (T *restrict grad, const int64_t *restrict ids, const int64_t *restrict off, \
    const T *restrict dout, const T *restrict psw, const int64_t *restrict argmax, size_t nb, \
    size_t dim, int mode, int64_t pad, size_t c0, size_t c1)
#define LV_ARGS (grad, ids, off, dout, psw, argmax, nb, dim, mode, pad, c0, c1)
#include "simd_levels.h"


int FN(pe_bag_backward)(T *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                        const int64_t *ids, const int64_t *off, const T *dout, const T *psw,
                        const int64_t *argmax, size_t nb, size_t dim, int mode,
                        int64_t padding_idx) {
    if (mode != PE_BAG_SUM && mode != PE_BAG_MEAN && mode != PE_BAG_MAX) return PE_ERR_VALUE;
    if (mode == PE_BAG_MAX && !argmax) return PE_ERR_VALUE;
    if (mode != PE_BAG_SUM) psw = NULL;
    if (nb == 0 || dim == 0) return PE_OK;
    /* the touched list first (serial, cheap), in order of first appearance */
    const pe_touched tr = {mark, touched, n_touched};
    if (mode == PE_BAG_MAX) {
        for (size_t e = 0; e < nb * dim; e++)
            if (argmax[e] >= 0) pe_touch(&tr, argmax[e]);
    } else {
        for (size_t j = 0; j < (size_t)off[nb]; j++)
            if (ids[j] != padding_idx) pe_touch(&tr, ids[j]);
    }
    size_t n = (size_t)off[nb];
    size_t nchunks = (dim + COLS_ALIGN - 1) / COLS_ALIGN;
    size_t work = pe_mul_size(pe_mul_size(mode == PE_BAG_MAX ? nb : n + nb, dim), 2 * sizeof(T));
    int nt = pe_threads_for(work, nchunks);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        size_t c0 = nchunks * t / nth * COLS_ALIGN;
        size_t c1 = nchunks * (t + 1) / nth * COLS_ALIGN;
        if (c1 > dim) c1 = dim;
        FN(cols)(grad, ids, off, dout, psw, argmax, nb, dim, mode, padding_idx, c0, c1);
    }
    return PE_OK;
}

#endif /* PE_HALF_TMPL */

int FN(pe_bag_psw_grad)(T *gpsw, const S *W, const int64_t *ids, const int64_t *off, const T *dout,
                        size_t n, size_t nb, size_t dim, int64_t padding_idx) {
    memset(gpsw, 0, n * sizeof(T));
    for (size_t b = 0; b < nb; b++) {
        const T *d = dout + b * dim;
        for (size_t j = (size_t)off[b]; j < (size_t)off[b + 1]; j++) {
            if (ids[j] == padding_idx) continue;
            const S *w = W + (size_t)ids[j] * dim;
            double acc = 0.0;
            for (size_t k = 0; k < dim; k++) acc += (double)d[k] * (double)LD(w[k]);
            gpsw[j] = (T)acc;
        }
    }
    return PE_OK;
}
