/* The body of layernorm.c for one element type: float, double (float_types.h), and float
 * computed from float16 / bfloat16 token and segment rows (half_types.h).
 * Before including: T (the element type), S and LD (the stored type of W and SG and its exact
 * load), FN(name) (adds the _f32 / _f64 / _f16 / _bf16 suffix). Positions, gamma, beta and every
 * output are T.
 * Uses only the headers below and what this header defines. */
#include "layernorm.h"
#include "simd.h"

#include <math.h>

#ifndef PE_LAYERNORM_TMPL_ONCE
#define PE_LAYERNORM_TMPL_ONCE
/* Row sums run in 32 double lanes, lane l taking the columns j with j % 32 == l, folded in one
 * fixed tree: a single double accumulator is a 4-cycle dependency per element (768 columns ~ 1 us
 * a row), the lanes let the compiler use whole vectors, and the order never changes. 32 lanes are
 * four AVX-512 accumulators (eight AVX2 ones): with 8 lanes each of a row's four sums was one
 * chain of 96 dependent vector adds at BERT's 768 columns, which made the sums most of the
 * backward's time. */
enum { LN_LANES = 32 };

static inline double ln_fold(const double *a) {
    double h[8];
    for (int l = 0; l < 8; l++) h[l] = (a[l] + a[l + 8]) + (a[l + 16] + a[l + 24]);
    return ((h[0] + h[1]) + (h[2] + h[3])) + ((h[4] + h[5]) + (h[6] + h[7]));
}

/* Rows per chunk of the dgamma / dbeta sums: a function of n alone (never of the thread count,
 * so the sums have the same bits for any team). At most 64 chunks (so at most 64 threads share
 * a backward) of at least 64 rows: the chunk sums, 16 * dim bytes each, are zeroed, written and
 * added up once per call, which cost 10% of a 2048-row backward at 16 rows a chunk. */
static inline size_t ln_chunk(size_t n) {
    size_t c = (n + 63) / 64;
    return c < 64 ? 64 : c;
}

/* The P row that row r adds (see layernorm.h). */
static inline size_t ln_p_row(const int64_t *pos, size_t pos_len, size_t r, size_t seq) {
    return pos ? (size_t)pos[r % pos_len] : r % seq;
}
#endif

/* x = (w * scale + s) + p, each operation rounded in T: BertEmbeddings adds the token-type rows
 * to the word rows first, then the positions. A half row is widened exactly first, so the bits
 * are those of the float32 kernel on the widened tables. */
static inline PE_ALWAYS_INLINE void FN(ln_build)(T *restrict x, const S *restrict w,
                                                 const S *restrict s, const T *restrict p,
                                                 size_t dim, T scale) {
    if (s && p)
        for (size_t j = 0; j < dim; j++) x[j] = (LD(w[j]) * scale + LD(s[j])) + p[j];
    else if (s)
        for (size_t j = 0; j < dim; j++) x[j] = LD(w[j]) * scale + LD(s[j]);
    else if (p)
        for (size_t j = 0; j < dim; j++) x[j] = LD(w[j]) * scale + p[j];
    else
        for (size_t j = 0; j < dim; j++) x[j] = LD(w[j]) * scale;
}

/* mean and 1 / sqrt(var + eps) of a row (dim > 0), two passes in double: the second pass sums
 * squared deviations from the exact-enough mean, so no cancellation (E[x^2] - E[x]^2 loses all
 * digits when |mean| >> std, and Welford's update is a division per element). */
static inline PE_ALWAYS_INLINE void FN(ln_stats)(const T *restrict x, size_t dim, double eps,
                                                 double *mean, double *rstd) {
    double a[LN_LANES] = {0}, b[LN_LANES] = {0};
    const size_t full = dim - dim % LN_LANES;
    size_t j = 0;
    for (; j < full; j += LN_LANES)
        for (size_t l = 0; l < LN_LANES; l++) a[l] += (double)x[j + l];
    for (size_t l = 0; j + l < dim; l++) a[l] += (double)x[j + l];
    const double m = ln_fold(a) / (double)dim;
    for (j = 0; j < full; j += LN_LANES)
        for (size_t l = 0; l < LN_LANES; l++) {
            const double d = (double)x[j + l] - m;
            b[l] += d * d;
        }
    for (size_t l = 0; j + l < dim; l++) {
        const double d = (double)x[j + l] - m;
        b[l] += d * d;
    }
    *mean = m;
    *rstd = 1.0 / sqrt(ln_fold(b) / (double)dim + eps);
}

/* The token row two rows ahead, W's row of ids[r + 2] (NULL: none), prefetched a line at a time
 * by the row's last loop (LN_LAST): each row is worked on long enough (several passes) for
 * the lines to arrive in time. The first two lines PE_PREFETCH_DIST ids ahead (the gather's
 * scheme) left the backward waiting on the rest (BERT-base rows, 2048 ids: 2.8 -> 2.1 ms), and a
 * burst of the whole row's prefetches at the start of a row stalled on the fill buffers (23% of
 * the backward's time in the prefetch loop). */
static inline PE_ALWAYS_INLINE const char *FN(ln_ahead)(const S *W, const int64_t *ids, size_t r,
                                                        size_t hi, size_t dim) {
    return r + 2 < hi ? (const char *)(W + (size_t)ids[r + 2] * dim) : NULL;
}

/* for j in [0, dim): BODY, in blocks of one 64-byte line of S, each prefetching that line of pf
 * (a row of dim S; NULL: none); uses the caller's dim and pf */
#define LN_LAST(BODY)                                                                          \
    do {                                                                                       \
        const size_t blk_ = 64 / sizeof(S);                                                    \
        for (size_t j0 = 0; j0 < dim; j0 += blk_) {                                            \
            const size_t j1 = dim - j0 < blk_ ? dim : j0 + blk_;                               \
            if (pf) PE_PREFETCH_T0(pf + j0 * sizeof(S));                                       \
            for (size_t j = j0; j < j1; j++) BODY;                                             \
        }                                                                                      \
    } while (0)

/* Rows lo .. hi of the forward. */
static inline PE_ALWAYS_INLINE void
FN(ln_rows_body)(T *restrict out, const S *restrict W, const int64_t *restrict ids,
                 const T *restrict P, const int64_t *restrict pos, const S *restrict SG,
                 const int64_t *restrict seg, const T *restrict gamma, const T *restrict beta,
                 size_t lo, size_t hi, size_t seq, size_t pos_len, size_t dim, T scale,
                 double eps) {
    for (size_t r = lo; r < hi; r++) {
        const char *pf = FN(ln_ahead)(W, ids, r, hi, dim);
        T *restrict o = out + r * dim;
        FN(ln_build)(o, W + (size_t)ids[r] * dim, SG ? SG + (size_t)seg[r] * dim : NULL,
                     P ? P + ln_p_row(pos, pos_len, r, seq) * dim : NULL, dim, scale);
        if (!gamma) {
            for (size_t k = 0; pf && k < dim * sizeof(S); k += 64) PE_PREFETCH_T0(pf + k);
            continue;
        }
        double mean, rstd;
        FN(ln_stats)(o, dim, eps, &mean, &rstd);
        const T m = (T)mean, rs = (T)rstd;
        LN_LAST(o[j] = (o[j] - m) * rs * gamma[j] + beta[j]);
    }
}

#define LV_NAME(s) FN(ln_rows##s)
#define LV_BODY FN(ln_rows_body)
#define LV_PARAMS (T *restrict out, const S *restrict W, const int64_t *restrict ids, \
    const T *restrict P, const int64_t *restrict pos, const S *restrict SG, \
    const int64_t *restrict seg, const T *restrict gamma, const T *restrict beta, size_t lo, \
    size_t hi, size_t seq, size_t pos_len, size_t dim, T scale, double eps)
#define LV_ARGS (out, W, ids, P, pos, SG, seg, gamma, beta, lo, hi, seq, pos_len, dim, scale, eps)
#include "simd_levels.h"

/* Rows lo .. hi of the backward; their dgamma / dbeta sums go to pg, pb (dim,), in row order. */
static inline PE_ALWAYS_INLINE void
FN(ln_back_body)(T *restrict dx, double *restrict pg, double *restrict pb,
                 const T *restrict dout, const S *restrict W, const int64_t *restrict ids,
                 const T *restrict P, const int64_t *restrict pos, const S *restrict SG,
                 const int64_t *restrict seg, const T *restrict gamma, size_t lo, size_t hi,
                 size_t seq, size_t pos_len, size_t dim, T scale, double eps) {
    const size_t full = dim - dim % LN_LANES;
    for (size_t r = lo; r < hi; r++) {
        const char *pf = FN(ln_ahead)(W, ids, r, hi, dim);
        T *restrict d = dx + r * dim; /* holds x until the last loop overwrites it */
        const T *restrict go = dout + r * dim;
        FN(ln_build)(d, W + (size_t)ids[r] * dim, SG ? SG + (size_t)seg[r] * dim : NULL,
                     P ? P + ln_p_row(pos, pos_len, r, seq) * dim : NULL, dim, scale);
        double mean, rstd;
        FN(ln_stats)(d, dim, eps, &mean, &rstd);
        const T m = (T)mean, rs = (T)rstd;
        /* simple loops over the row (it sits in L1), each of one form the compiler vectorises;
         * one loop mixing the lane sums with the per-column updates stayed scalar (4x slower) */
        for (size_t j = 0; j < dim; j++) {
            const T xh = (d[j] - m) * rs; /* xhat, as the forward's */
            d[j] = xh;
            pg[j] += (double)go[j] * (double)xh;
            pb[j] += (double)go[j];
        }
        double a[LN_LANES] = {0}, b[LN_LANES] = {0}; /* sum of g, sum of g * xhat */
        size_t j = 0;
        for (; j < full; j += LN_LANES)
            for (size_t l = 0; l < LN_LANES; l++) {
                const T gg = go[j + l] * gamma[j + l];
                a[l] += (double)gg;
                b[l] += (double)gg * (double)d[j + l];
            }
        for (size_t l = 0; j + l < dim; l++) {
            const T gg = go[j + l] * gamma[j + l];
            a[l] += (double)gg;
            b[l] += (double)gg * (double)d[j + l];
        }
        const T mg = (T)(ln_fold(a) / (double)dim), mgx = (T)(ln_fold(b) / (double)dim);
        LN_LAST(d[j] = rs * ((go[j] * gamma[j] - mg) - d[j] * mgx));
    }
}

#define LV_NAME(s) FN(ln_back##s)
#define LV_BODY FN(ln_back_body)
#define LV_PARAMS (T *restrict dx, double *restrict pg, double *restrict pb, \
    const T *restrict dout, const S *restrict W, const int64_t *restrict ids, \
    const T *restrict P, const int64_t *restrict pos, const S *restrict SG, \
    const int64_t *restrict seg, const T *restrict gamma, size_t lo, size_t hi, size_t seq, \
    size_t pos_len, size_t dim, T scale, double eps)
#define LV_ARGS (dx, pg, pb, dout, W, ids, P, pos, SG, seg, gamma, lo, hi, seq, pos_len, dim, \
    scale, eps)
#include "simd_levels.h"

int FN(pe_embed_layernorm)(T *out, const S *W, const int64_t *ids, const T *P,
                           const int64_t *pos, const S *SG, const int64_t *seg, const T *gamma,
                           const T *beta, size_t nb, size_t seq, size_t pos_len, size_t dim,
                           T scale, double eps) {
    const size_t n = pe_mul_size(nb, seq);
    const size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(T));
    if (n == SIZE_MAX || total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (n == 0 || dim == 0) return PE_OK;
    if (pos && pos_len != seq && pos_len != n) return PE_ERR_VALUE;
    int nt = pe_threads_for(total * 2, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        FN(ln_rows)(out, W, ids, P, pos, SG, seg, gamma, beta, n * t / nth, n * (t + 1) / nth, seq,
                    pos_len, dim, scale, eps);
    }
    return PE_OK;
}

int FN(pe_embed_layernorm_backward)(T *dx, T *dgamma, T *dbeta, const T *dout, const S *W,
                                    const int64_t *ids, const T *P, const int64_t *pos,
                                    const S *SG, const int64_t *seg, const T *gamma, size_t nb,
                                    size_t seq, size_t pos_len, size_t dim, T scale, double eps) {
    const size_t n = pe_mul_size(nb, seq);
    const size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(T));
    if (n == SIZE_MAX || total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (n == 0 || dim == 0) return PE_OK;
    if (pos && pos_len != seq && pos_len != n) return PE_ERR_VALUE;
    const size_t chunk = ln_chunk(n), nc = (n + chunk - 1) / chunk;
    const size_t part_bytes = pe_mul_size(pe_mul_size(nc, 2 * dim), sizeof(double));
    if (part_bytes == SIZE_MAX) return PE_ERR_OVERFLOW;
    double *part = (double *)pe_aligned_calloc(part_bytes);
    if (!part) return PE_ERR_NOMEM;
    int nt = pe_threads_for(total * 3, nc);
    (void)nt;
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        for (size_t c = nc * t / nth; c < nc * (t + 1) / nth; c++) {
            const size_t lo = c * chunk, hi = lo + chunk < n ? lo + chunk : n;
            double *pg = part + c * 2 * dim;
            FN(ln_back)(dx, pg, pg + dim, dout, W, ids, P, pos, SG, seg, gamma, lo, hi, seq, pos_len,
                        dim, scale, eps);
        }
    }
    for (size_t j = 0; j < dim; j++) {
        double sg = 0.0, sb = 0.0;
        for (size_t c = 0; c < nc; c++) {
            sg += part[c * 2 * dim + j];
            sb += part[c * 2 * dim + dim + j];
        }
        dgamma[j] += (T)sg;
        dbeta[j] += (T)sb;
    }
    pe_aligned_free(part);
    return PE_OK;
}

#undef LN_LAST
