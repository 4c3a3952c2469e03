/* The body of adagrad.c for one element type (see adam_tmpl.h for the pattern). */
#include "adagrad.h"
#include "inbwd.h"
#include "optim_loop.h"
#include "simd.h"

#include <math.h>

#ifndef PE_ADAGRAD_TMPL_ONCE /* the type-independent part, defined once */
#define PE_ADAGRAD_TMPL_ONCE
/* Adagrad: form (dense / sparse) x L2 decay; row-wise: decay none / L2 / decoupled. */
static int adagrad_mode(const pe_adagrad_opts *o, int rowwise) {
    int wd = o->weight_decay != 0.0;
    if (rowwise) return wd ? (o->decoupled ? 2 : 1) : 0;
    return (o->sparse_form ? 2 : 0) + wd;
}
#define SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
/* Lanes of the row-wise sum of squares: partial sums in double, one per lane, added in a fixed
 * tree at the end, so the compiler vectorises the loop (a single running sum is a chain it may
 * not reorder) and the bits depend on dim only. */
#define PE_RW_LANES 16
#endif /* PE_ADAGRAD_TMPL_ONCE */

void FN(pe_adagrad_prepare)(FN(pe_adagrad_k) *k, const pe_adagrad_opts *o, int rowwise) {
    k->lr = (T)o->lr;
    k->nlr = (T)(-o->lr);
    k->eps = (T)o->eps;
    k->wd = (T)o->weight_decay;
    /* FBGEMM: correction = 1.0 - learning_rate * weight_decay, the product in the float type */
    k->decay = (T)(1.0 - (double)(k->lr * k->wd));
    k->sign = o->maximize ? (T)-1 : (T)1;
    k->mode = adagrad_mode(o, rowwise);
}

/* ---- Adagrad: one span of n elements; SPARSE and WD are compile-time constants ------------- */
static inline PE_ALWAYS_INLINE void
FN(aspan)(T *restrict p, T *restrict s, const T *restrict g, size_t n, const FN(pe_adagrad_k) *kp,
          const int SPARSE, const int WD) {
    const FN(pe_adagrad_k) k = *kp;
    for (size_t j = 0; j < n; j++) {
        T gj = g[j] * k.sign; /* maximize: an exact sign flip */
        T pj = p[j];
        if (WD) gj = gj + k.wd * pj; /* torch: grad.add(param, alpha=weight_decay) */
        T sj = s[j] + gj * gj;
        s[j] = sj;
        T std = SQRT(sj) + k.eps;
        if (SPARSE)
            p[j] = pj + k.nlr * (gj / std);
        else
            p[j] = pj + (k.nlr * gj) / std;
    }
}

static inline PE_ALWAYS_INLINE void FN(arun_body)(T *p, T *s, const T *g, size_t n,
                                                  const FN(pe_adagrad_k) *k) {
    switch (k->mode) {
    case 0: FN(aspan)(p, s, g, n, k, 0, 0); break;
    case 1: FN(aspan)(p, s, g, n, k, 0, 1); break;
    case 2: FN(aspan)(p, s, g, n, k, 1, 0); break;
    case 3: FN(aspan)(p, s, g, n, k, 1, 1); break;
    default: break;
    }
}

/* FN(arun): FN(arun_body) for each vector level (simd_levels.h) */
#define LV_NAME(s) FN(arun##s)
#define LV_BODY FN(arun_body)
#define LV_PARAMS (T *p, T *s, const T *g, size_t n, const FN(pe_adagrad_k) *k)
#define LV_ARGS (p, s, g, n, k)
#include "simd_levels.h"

void FN(pe_adagrad_span)(T *p, T *s, const T *g, size_t n, const FN(pe_adagrad_k) *k) {
    FN(arun)(p, s, g, n, k);
}

/* ---- Row-wise Adagrad: one row; WD (0 none, 1 L2, 2 decoupled) a compile-time constant ------ */
static inline PE_ALWAYS_INLINE void
FN(rwrow)(T *restrict p, T *restrict s, const T *restrict g, size_t dim,
          const FN(pe_adagrad_k) *kp, const int WD) {
    const FN(pe_adagrad_k) k = *kp;
    /* FBGEMM sums the squares in float one after the other (its GPU kernel in a warp's tree
     * order): the formula is the same, the order of that sum is ours, in double (for a float32
     * row that is the exact sum of the squares to within one rounding of the mean) */
    double acc[PE_RW_LANES] = {0};
    size_t j = 0;
    for (; j + PE_RW_LANES <= dim; j += PE_RW_LANES)
        for (size_t l = 0; l < PE_RW_LANES; l++) {
            T gj = g[j + l] * k.sign;
            if (WD == 1) gj = gj + k.wd * p[j + l]; /* FBGEMM: grad += weight_decay * w (L2) */
            acc[l] += (double)gj * (double)gj;
        }
    for (size_t l = 0; j + l < dim; l++) {
        T gj = g[j + l] * k.sign;
        if (WD == 1) gj = gj + k.wd * p[j + l];
        acc[l] += (double)gj * (double)gj;
    }
    for (size_t w = PE_RW_LANES / 2; w > 0; w /= 2)
        for (size_t l = 0; l < w; l++) acc[l] += acc[l + w];
    const T sn = *s + (T)(acc[0] / (double)dim); /* g_avg_square, then the running sum */
    *s = sn;
    const T mult = k.lr / (SQRT(sn) + k.eps);
    /* the corrections exactly as FBGEMM writes them: 1.0 (double) minus a product in T */
    const T corr = WD == 1 ? (T)(1.0 - (double)(mult * k.wd)) : WD == 2 ? k.decay : (T)1;
    for (j = 0; j < dim; j++) p[j] = corr * p[j] - (g[j] * k.sign) * mult;
}

static inline PE_ALWAYS_INLINE void FN(rwrun_body)(T *p, T *s, const T *g, size_t dim,
                                                   const FN(pe_adagrad_k) *k) {
    switch (k->mode) {
    case 0: FN(rwrow)(p, s, g, dim, k, 0); break;
    case 1: FN(rwrow)(p, s, g, dim, k, 1); break;
    case 2: FN(rwrow)(p, s, g, dim, k, 2); break;
    default: break;
    }
}

/* FN(rwrun): FN(rwrun_body) for each vector level (simd_levels.h), and its exported name */
#define LV_ARGS (p, s, g, dim, k)
#define LV_PARAMS (T *p, T *s, const T *g, size_t dim, const FN(pe_adagrad_k) *k)
#define LV_BODY FN(rwrun_body)
#define LV_NAME(s) FN(rwrun##s)
#include "simd_levels.h"
void FN(pe_rowwise_adagrad_row)(T *p, T *s, const T *g, size_t dim, const FN(pe_adagrad_k) *k) {
    FN(rwrun)(p, s, g, dim, k);
}

/* ---- the walks ------------------------------------------------------------------------------ */

/* This thread's share of a dense update (optim_loop.h), called inside the parallel region. */
static void FN(adagrad_dense_share)(T *P, T *Acc, const T *G, const uint8_t *frozen, size_t nrows,
                                    size_t dim, const FN(pe_adagrad_k) *k) {
    size_t nth, t = pe_team(&nth);
    pe_dense_walk w = pe_dense_walk_init(frozen, nrows, dim, t, nth);
    for (size_t off, len; pe_dense_next(&w, &off, &len);)
        FN(arun)(P + off, Acc + off, G + off, len, k);
}

int FN(pe_adagrad)(T *P, T *Acc, const T *G, const uint8_t *frozen, size_t nrows, size_t dim,
                   const pe_adagrad_opts *o) {
    size_t n = pe_mul_size(nrows, dim);
    if (n == SIZE_MAX) return PE_ERR_OVERFLOW;
    FN(pe_adagrad_k) k;
    FN(pe_adagrad_prepare)(&k, o, 0);
    /* 5 arrays of T move per element (read p, g, s; write p, s) */
    int nt = pe_threads_for(pe_mul_size(n, 5 * sizeof(T)), frozen ? nrows : (n + 63) / 64);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    FN(adagrad_dense_share)(P, Acc, G, frozen, nrows, dim, &k);
    return PE_OK;
}

int FN(pe_rowwise_adagrad)(T *P, T *Acc, const T *G, const uint8_t *frozen, size_t nrows,
                           size_t dim, const pe_adagrad_opts *o) {
    size_t n = pe_mul_size(nrows, dim);
    if (n == SIZE_MAX) return PE_ERR_OVERFLOW;
    FN(pe_adagrad_k) k;
    FN(pe_adagrad_prepare)(&k, o, 1);
    int nt = pe_threads_for(pe_mul_size(n, 3 * sizeof(T)), nrows);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        for (size_t r = nrows * t / nth, hi = nrows * (t + 1) / nth; r < hi; r++)
            if (!(frozen && frozen[r])) FN(rwrun)(P + r * dim, Acc + r, G + r * dim, dim, &k);
    }
    return PE_OK;
}

/* The rows walk of both: a thread's share of the list, runs of consecutive rows as one span.
 * A compact G is read in list order (the walk's position, w.at - len, is the span's first
 * entry), which the hardware prefetcher follows: the walk's explicit prefetch, made for a G
 * indexed by row, is pointed at P instead (a second prefetch of the same line costs nothing). */
static int FN(adagrad_rows_walk)(T *P, T *Acc, const T *G, int compact, const int64_t *rows,
                                 size_t n_list, const uint8_t *frozen, size_t dim,
                                 const pe_adagrad_opts *o, int rowwise) {
    FN(pe_adagrad_k) k;
    FN(pe_adagrad_prepare)(&k, o, rowwise);
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), (rowwise ? 3 : 5) * sizeof(T)),
                            n_list);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        /* row-wise Acc is one value a row, so the walk's per-row prefetch would miss it */
        pe_rows_walk w = {.rows = rows, .frozen = frozen, .at = n_list * t / nth,
                          .hi = n_list * (t + 1) / nth, .merge = 1, .row_bytes = dim * sizeof(T),
                          .w = {P, Acc}, .nw = rowwise ? 1 : 2, .g = compact ? (const void *)P : G};
        for (size_t r, len; pe_rows_next(&w, &r, &len);) {
            const T *g = G + (compact ? w.at - len : r) * dim;
            if (!rowwise) {
                FN(arun)(P + r * dim, Acc + r * dim, g, len * dim, &k);
                continue;
            }
            for (size_t q = 0; q < len; q++)
                FN(rwrun)(P + (r + q) * dim, Acc + r + q, g + q * dim, dim, &k);
        }
    }
    return PE_OK;
}

int FN(pe_adagrad_rows)(T *P, T *Acc, const T *G, int compact, const int64_t *rows, size_t n_list,
                        const uint8_t *frozen, size_t nrows, size_t dim, const pe_adagrad_opts *o) {
    (void)nrows;
    return FN(adagrad_rows_walk)(P, Acc, G, compact, rows, n_list, frozen, dim, o, 0);
}

int FN(pe_rowwise_adagrad_rows)(T *P, T *Acc, const T *G, int compact, const int64_t *rows,
                                size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                                const pe_adagrad_opts *o) {
    (void)nrows;
    return FN(adagrad_rows_walk)(P, Acc, G, compact, rows, n_list, frozen, dim, o, 1);
}

/* In the backward (inbwd.h): the row update and its context. */
typedef struct {
    T *P, *Acc;
    size_t dim;
    int rowwise;
    FN(pe_adagrad_k) k;
} FN(bwd_ctx);

static void FN(bwd_row)(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const FN(bwd_ctx) *x = (const FN(bwd_ctx) *)c;
    size_t off = (size_t)row * x->dim;
    if (x->rowwise) { /* one accumulator a row, and the row's sum of squares comes first */
        void *const arrays[] = {x->P};
        const pe_bwd_pf f = pe_bwd_pf_init(arrays, 1, next, x->dim, sizeof(T));
        pe_bwd_parts_all(&f, next, x->dim, sizeof(T));
        FN(rwrun)(x->P + off, x->Acc + row, (const T *)g, x->dim, &x->k);
        return;
    }
    void *const arrays[] = {x->P, x->Acc};
    const pe_bwd_pf f = pe_bwd_pf_init(arrays, 2, next, x->dim, sizeof(T));
    const size_t dim = x->dim, ch = PE_BWD_CHUNK / sizeof(T);
    for (size_t c0 = 0; c0 < dim; c0 += ch) {
        const size_t n = dim - c0 < ch ? dim - c0 : ch;
        pe_bwd_part(&f, next, c0, c0 + n);
        FN(arun)(x->P + off + c0, x->Acc + off + c0, (const T *)g + c0, n, &x->k);
    }
}

int FN(pe_adagrad_bwd)(T *P, T *Acc, int rowwise, const pe_bwd_batch *b, const pe_adagrad_opts *o,
                       size_t *n_rows) {
    FN(bwd_ctx) x = {P, Acc, b->dim, rowwise, {0}};
    FN(pe_adagrad_prepare)(&x.k, o, rowwise);
    return FN(pe_inbwd)(FN(bwd_row), &x, b, n_rows);
}

#ifndef PE_ADAGRAD_HALF_ONCE /* float16 / bfloat16 tables: the float32 instance on widened rows */
#define PE_ADAGRAD_HALF_ONCE

/* One update's view of a half table. Adagrad widens PE_HALF_CHUNK elements at a time on the
 * stack (elementwise arithmetic: the chunks give the bits of the whole row); row-wise Adagrad
 * needs the row's mean square before it writes an element, and with L2 decay that reads the
 * weight, so it widens the whole row into a float32 buffer of the calling thread -- `nbuf` of
 * them, `stride` floats apart, and one more, the spare (below) -- and runs the float32 row
 * function on it: too big for the stack at large dims. */
typedef struct {
    uint16_t *W;
    float *Acc;
    size_t dim;
    int rowwise;
    pe_adagrad_k_f32 k;
    const pe_half_round *h;
    float *bufs;
    size_t stride, nbuf;
} pe_adagrad_half_ctx;

/* Row `row` of W (its accumulator(s) in Acc): widened, updated as a float32 row, narrowed back.
 * buf: a thread's dim-long row buffer (row-wise only). In the backward (next not NULL) g is
 * summed as inbwd.h's parts: a widening chunk at a time (Adagrad), or whole (row-wise). */
static void pe_adagrad_half_row(const pe_adagrad_half_ctx *x, int64_t row, const float *g,
                                float *buf, const pe_bwd_next *next) {
    const pe_half_round *h = x->h;
    const size_t dim = x->dim, off = (size_t)row * dim;
    const uint64_t key = h->mode == PE_ROUND_STOCHASTIC ? pe_sr_key(h->seed, h->step, (uint64_t)row)
                                                        : 0;
    pe_bwd_pf f = {.nw = 0};
    if (next) {
        pe_bwd_pf_add(&f, x->W, dim, sizeof *x->W, next);
        if (!x->rowwise) pe_bwd_pf_add(&f, x->Acc, dim, sizeof *x->Acc, next);
    }
    if (x->rowwise) {
        if (next) pe_bwd_parts_all(&f, next, dim, sizeof(float));
        pe_widen_row(buf, x->W + off, dim, h->kind);
        rwrun_f32(buf, x->Acc + row, g, dim, &x->k);
        pe_narrow_span(x->W + off, buf, dim, h, key, 0);
        return;
    }
    float chunk[PE_HALF_CHUNK];
    for (size_t c = 0; c < dim; c += PE_HALF_CHUNK) {
        const size_t n = dim - c < PE_HALF_CHUNK ? dim - c : PE_HALF_CHUNK;
        if (next) pe_bwd_part(&f, next, c, c + n);
        pe_widen_row(chunk, x->W + off + c, n, h->kind);
        arun_f32(chunk, x->Acc + off + c, g + c, n, &x->k);
        pe_narrow_span(x->W + off + c, chunk, n, h, key, c);
    }
}

/* The context of a step over dim-long rows, with (row-wise) nbuf + 1 row buffers; PE_ERR_NOMEM
 * when they cannot be allocated (free with pe_adagrad_half_done). */
static int pe_adagrad_half_init(pe_adagrad_half_ctx *x, uint16_t *W, float *Acc, int rowwise,
                                size_t dim, size_t nbuf, const pe_adagrad_opts *o,
                                const pe_half_round *h) {
    memset(x, 0, sizeof *x);
    x->W = W;
    x->Acc = Acc;
    x->dim = dim;
    x->rowwise = rowwise;
    x->h = h;
    pe_adagrad_prepare_f32(&x->k, o, rowwise);
    if (!rowwise) return PE_OK;
    x->stride = (dim + 15) / 16 * 16; /* whole cache lines: no two threads share one */
    x->nbuf = nbuf;
    x->bufs = (float *)pe_aligned_calloc(
        pe_mul_size(pe_mul_size(x->stride ? x->stride : 16, nbuf + 1), sizeof(float)));
    return x->bufs ? PE_OK : PE_ERR_NOMEM;
}

static void pe_adagrad_half_done(pe_adagrad_half_ctx *x) { pe_aligned_free(x->bufs); }

/* The row buffer of the calling thread (NULL for Adagrad, which needs none). */
static float *pe_adagrad_half_buf(const pe_adagrad_half_ctx *x, size_t t) {
    return x->bufs ? x->bufs + t * x->stride : NULL;
}

int pe_adagrad_half_rows(uint16_t *W, float *Acc, const float *G, int rowwise, int compact,
                         const int64_t *rows, size_t n_list, const uint8_t *frozen, size_t nrows,
                         size_t dim, const pe_adagrad_opts *o, const pe_half_round *h) {
    if (!rows) n_list = nrows;
    /* bytes per element: the weight read and written (2 + 2), g; Adagrad's sum read and written */
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), rowwise ? 8 : 16), n_list);
    pe_adagrad_half_ctx x;
    if (pe_adagrad_half_init(&x, W, Acc, rowwise, dim, (size_t)nt, o, h) != PE_OK)
        return PE_ERR_NOMEM;
    PE_OMP(omp parallel for num_threads(nt) if (nt > 1) schedule(static))
    for (size_t i = 0; i < n_list; i++) {
        const int64_t r = rows ? rows[i] : (int64_t)i;
        if (frozen && frozen[r]) continue;
        pe_adagrad_half_row(&x, r, G + (compact ? i : (size_t)r) * dim,
                            pe_adagrad_half_buf(&x, pe_team(NULL)), NULL);
    }
    pe_adagrad_half_done(&x);
    return PE_OK;
}

static void pe_adagrad_half_bwd_row(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const pe_adagrad_half_ctx *x = (const pe_adagrad_half_ctx *)c;
    const size_t t = pe_team(NULL);
    if (!x->rowwise || t < x->nbuf) {
        pe_adagrad_half_row(x, row, (const float *)g, pe_adagrad_half_buf(x, t), next);
        return;
    }
    /* the driver sized its team after we counted the threads: a set_num_threads() from another
     * Python thread in between can make it larger. Such threads share the spare buffer. */
    PE_OMP(omp critical(pe_adagrad_half_spare))
    pe_adagrad_half_row(x, row, (const float *)g, pe_adagrad_half_buf(x, x->nbuf), next);
}

int pe_adagrad_half_bwd(uint16_t *W, float *Acc, int rowwise, const pe_bwd_batch *b,
                        const pe_adagrad_opts *o, const pe_half_round *h, size_t *n_rows) {
    *n_rows = 0;
    pe_adagrad_half_ctx x;
    /* the driver's team, not the thread count: with set_num_threads(4096) a batch of two rows
     * allocated 4097 row buffers (a MemoryError where the team of one needs one) */
    int rc = pe_adagrad_half_init(&x, W, Acc, rowwise, b->dim,
                                  (size_t)pe_inbwd_threads(b, sizeof(float)), o, h);
    if (rc == PE_OK) rc = pe_inbwd_f32(pe_adagrad_half_bwd_row, &x, b, n_rows);
    pe_adagrad_half_done(&x);
    return rc;
}
#endif /* PE_ADAGRAD_HALF_ONCE */
