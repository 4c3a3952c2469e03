/* The body of adam.c for one element type, included by float_types.h once per type: T (the
 * element type) and FN(name) (adds the _f32 / _f64 suffix); the rest comes from the headers below.
 * Which thread updates which spans (threads, frozen rows, rows lists) is optim_loop.h's. */
#include "adam.h"
#include "inbwd.h"
#include "optim_loop.h"
#include "simd.h"

#include <math.h>

#ifndef PE_ADAM_TMPL_ONCE /* the type-independent part, defined once */
#define PE_ADAM_TMPL_ONCE

/* The 12 loop variants: form (Adam / SparseAdam) x weight decay (none / L2 / decoupled) x
 * amsgrad. */
static int adam_mode(const pe_adam_opts *o, int amsgrad) {
    int wd = o->weight_decay != 0.0 ? (o->decoupled ? 2 : 1) : 0;
    return (o->sparse_form ? 6 : 0) + wd * 2 + (amsgrad ? 1 : 0);
}

/* sqrtf for float (vectorised; correctly rounded, like sqrt) */
#define SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

#endif /* PE_ADAM_TMPL_ONCE */

typedef struct {
    T b1, c1, b2, c2, eps, wd, decay, nss, bc2s, sign;
} FN(consts);

/* The step's scalars, in double once per step (per row with row_step), then rounded to T. */
static FN(consts) FN(make_consts)(const pe_adam_opts *o, int64_t t) {
    double bc1 = 1.0 - pow(o->beta1, (double)t);
    double bc2 = 1.0 - pow(o->beta2, (double)t);
    FN(consts) k;
    k.b1 = (T)o->beta1;
    k.c1 = (T)(1.0 - o->beta1);
    k.b2 = (T)o->beta2;
    k.c2 = (T)(1.0 - o->beta2);
    k.eps = (T)o->eps;
    k.wd = (T)o->weight_decay;
    k.decay = (T)(1.0 - o->lr * o->weight_decay);
    k.bc2s = (T)sqrt(bc2);
    k.nss = o->sparse_form ? (T)(-(o->lr * sqrt(bc2) / bc1)) : (T)(-(o->lr / bc1));
    k.sign = o->maximize ? (T)-1 : (T)1;
    return k;
}

/* One contiguous span of n elements. SPARSE, WD (0 none, 1 L2, 2 decoupled) and AMS are
 * compile-time constants at every call site, so each of the 12 variants is a branch-free loop
 * that the compiler vectorises (sqrt included, thanks to -fno-math-errno). */
static inline PE_ALWAYS_INLINE void
FN(span)(T *restrict p, T *restrict m, T *restrict v, T *restrict vmax, const T *restrict g,
         size_t n, const FN(consts) *kp, const int SPARSE, const int WD, const int AMS) {
    const FN(consts) k = *kp;
    for (size_t j = 0; j < n; j++) {
        T gj = g[j] * k.sign; /* maximize: an exact sign flip */
        T pj = p[j];
        if (WD == 1) gj = gj + k.wd * pj;  /* L2 (Adam): g += wd * p */
        if (WD == 2) pj = pj * k.decay;    /* decoupled (AdamW): p *= 1 - lr * wd */
        T mj, vj;
        if (SPARSE) { /* torch SparseAdam: old += (1 - b) * (new - old) */
            mj = m[j] + (gj - m[j]) * k.c1;
            vj = v[j] + (gj * gj - v[j]) * k.c2;
        } else {
            mj = k.b1 * m[j] + k.c1 * gj;
            vj = k.b2 * v[j] + (k.c2 * gj) * gj;
        }
        m[j] = mj;
        v[j] = vj;
        if (AMS) {
            T mx = vmax[j] > vj ? vmax[j] : vj;
            vmax[j] = mx;
            vj = mx;
        }
        if (SPARSE)
            p[j] = pj + (mj / (SQRT(vj) + k.eps)) * k.nss;
        else
            p[j] = pj + (k.nss * mj) / (SQRT(vj) / k.bc2s + k.eps);
    }
}

/* The 12 variants (adam_mode's numbering), each a branch-free loop. */
#define PE_ADAM_CASE(S, W, A) \
    case (S) * 6 + (W) * 2 + (A): FN(span)(p, m, v, vmax, g, n, k, S, W, A); break;
static inline PE_ALWAYS_INLINE void FN(run_body)(T *p, T *m, T *v, T *vmax, const T *g, size_t n,
                                                 const FN(consts) *k, int mode) {
    switch (mode) {
        PE_ADAM_CASE(0, 0, 0) PE_ADAM_CASE(0, 0, 1) PE_ADAM_CASE(0, 1, 0)
        PE_ADAM_CASE(0, 1, 1) PE_ADAM_CASE(0, 2, 0) PE_ADAM_CASE(0, 2, 1)
        PE_ADAM_CASE(1, 0, 0) PE_ADAM_CASE(1, 0, 1) PE_ADAM_CASE(1, 1, 0)
        PE_ADAM_CASE(1, 1, 1) PE_ADAM_CASE(1, 2, 0) PE_ADAM_CASE(1, 2, 1)
    default:
        break;
    }
}
#undef PE_ADAM_CASE

/* FN(run): FN(run_body) for each vector level (simd_levels.h) */
#define LV_NAME(s) FN(run##s)
#define LV_BODY FN(run_body)
#define LV_PARAMS (T *p, T *m, T *v, T *vmax, const T *g, size_t n, const FN(consts) *k, int mode)
#define LV_ARGS (p, m, v, vmax, g, n, k, mode)
#include "simd_levels.h"

int FN(pe_adam)(T *P, T *M, T *V, T *Vmax, const T *G, const uint8_t *frozen, size_t nrows,
                size_t dim, const pe_adam_opts *o) {
    if (o->step < 1) return PE_ERR_VALUE;
    size_t n = pe_mul_size(nrows, dim);
    if (n == SIZE_MAX) return PE_ERR_OVERFLOW;
    const FN(consts) k = FN(make_consts)(o, o->step);
    const int mode = adam_mode(o, Vmax != NULL);
    /* 7 arrays of T move per element (read p, g, m, v; write p, m, v) */
    int nt = pe_threads_for(pe_mul_size(n, 7 * sizeof(T)), frozen ? nrows : (n + 63) / 64);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        pe_dense_walk w = pe_dense_walk_init(frozen, nrows, dim, t, nth);
        for (size_t off, len; pe_dense_next(&w, &off, &len);)
            FN(run)(P + off, M + off, V + off, Vmax ? Vmax + off : NULL, G + off, len, &k, mode);
    }
    return PE_OK;
}

int FN(pe_adam_rows)(T *P, T *M, T *V, T *Vmax, int64_t *row_step, const T *G, int compact,
                     const int64_t *rows, size_t n_list, const uint8_t *frozen, size_t nrows,
                     size_t dim, const pe_adam_opts *o) {
    (void)nrows;
    if (!row_step && o->step < 1) return PE_ERR_VALUE;
    const FN(consts) k0 = FN(make_consts)(o, row_step ? 1 : o->step);
    const int mode = adam_mode(o, Vmax != NULL);
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), 7 * sizeof(T)), n_list);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        /* with row_step each row has its own constants, so rows are never merged into a span */
        pe_rows_walk w = {.rows = rows, .frozen = frozen, .at = n_list * t / nth,
                          .hi = n_list * (t + 1) / nth, .merge = !row_step,
                          .row_bytes = dim * sizeof(T), .w = {P, M, V}, .nw = 3, .g = G,
                          .compact = compact};
        for (size_t r, len; pe_rows_next(&w, &r, &len);) {
            const FN(consts) k = row_step ? FN(make_consts)(o, ++row_step[r]) : k0;
            size_t off = r * dim;
            FN(run)(P + off, M + off, V + off, Vmax ? Vmax + off : NULL,
                    G + pe_rows_goff(&w, r, dim), len * dim, &k, mode);
        }
    }
    return PE_OK;
}

/* In the backward (inbwd.h): the row update and its context. */
typedef struct {
    __typeof__(&FN(run_base)) run; /* the level's variant, picked once a call */
    T *P, *M, *V, *Vmax;
    int64_t *row_step;
    size_t dim;
    const pe_adam_opts *o;
    FN(consts) k;
    int mode;
} FN(bwd_ctx);

static void FN(bwd_row)(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const FN(bwd_ctx) *x = (const FN(bwd_ctx) *)c;
    void *const arrays[] = {x->P, x->M, x->V, x->Vmax};
    const pe_bwd_pf f = pe_bwd_pf_init(arrays, 4, next, x->dim, sizeof(T));
    const FN(consts) k = x->row_step ? FN(make_consts)(x->o, ++x->row_step[row]) : x->k;
    const size_t dim = x->dim, off = (size_t)row * dim, ch = PE_BWD_CHUNK / sizeof(T);
    for (size_t c0 = 0; c0 < dim; c0 += ch) {
        const size_t n = dim - c0 < ch ? dim - c0 : ch, o = off + c0;
        pe_bwd_part(&f, next, c0, c0 + n);
        x->run(x->P + o, x->M + o, x->V + o, x->Vmax ? x->Vmax + o : NULL, (const T *)g + c0, n,
               &k, x->mode);
    }
}

int FN(pe_adam_bwd)(T *P, T *M, T *V, T *Vmax, int64_t *row_step, const pe_bwd_batch *b,
                    const pe_adam_opts *o, size_t *n_rows) {
    *n_rows = 0;
    if (!row_step && o->step < 1) return PE_ERR_VALUE;
    FN(bwd_ctx) x = {FN(run_pick)(), P, M, V, Vmax, row_step, b->dim, o,
                     FN(make_consts)(o, row_step ? 1 : o->step), adam_mode(o, Vmax != NULL)};
    return FN(pe_inbwd)(FN(bwd_row), &x, b, n_rows);
}

#ifndef PE_ADAM_HALF_ONCE /* float16 / bfloat16 tables: the float32 instance's span, widened rows */
#define PE_ADAM_HALF_ONCE

/* Row `row` of W (M, V, Vmax float32): widened in chunks, updated by the float32 span, narrowed
 * back. Stochastic rounding counts steps with h->step, or with the row's counter `rstep` (> 0).
 * In the backward (next not NULL) each chunk is a part of inbwd.h's: g summed a chunk at a time. */
static void pe_adam_half_row(uint16_t *W, float *M, float *V, float *Vmax, const float *g,
                             int64_t row, size_t dim, const consts_f32 *k, int mode,
                             const pe_half_round *h, int64_t rstep, const pe_bwd_next *next) {
    const size_t off = (size_t)row * dim;
    const uint64_t step = rstep > 0 ? (uint64_t)rstep : h->step;
    const uint64_t key = h->mode == PE_ROUND_STOCHASTIC ? pe_sr_key(h->seed, step, (uint64_t)row) : 0;
    pe_bwd_pf f = {.nw = 0};
    if (next) {
        pe_bwd_pf_add(&f, W, dim, sizeof *W, next);
        void *const st[] = {M, V, Vmax};
        for (int a = 0; a < 3; a++) pe_bwd_pf_add(&f, st[a], dim, sizeof(float), next);
    }
    float buf[PE_HALF_CHUNK];
    for (size_t c = 0; c < dim; c += PE_HALF_CHUNK) {
        const size_t n = dim - c < PE_HALF_CHUNK ? dim - c : PE_HALF_CHUNK;
        if (next) pe_bwd_part(&f, next, c, c + n);
        pe_widen_row(buf, W + off + c, n, h->kind);
        run_f32(buf, M + off + c, V + off + c, Vmax ? Vmax + off + c : NULL, g + c, n, k, mode);
        pe_narrow_span(W + off + c, buf, n, h, key, c);
    }
}

int pe_adam_half_rows(uint16_t *W, float *M, float *V, float *Vmax, int64_t *row_step,
                      const float *G, int compact, const int64_t *rows, size_t n_list,
                      const uint8_t *frozen, size_t nrows, size_t dim, const pe_adam_opts *o,
                      const pe_half_round *h) {
    if (!row_step && o->step < 1) return PE_ERR_VALUE;
    if (!rows) n_list = nrows;
    const consts_f32 k0 = make_consts_f32(o, row_step ? 1 : o->step);
    const int mode = adam_mode(o, Vmax != NULL);
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), 24), n_list);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel for num_threads(nt) if (nt > 1) schedule(static))
    for (size_t i = 0; i < n_list; i++) {
        const int64_t r = rows ? rows[i] : (int64_t)i;
        if (frozen && frozen[r]) continue;
        const int64_t rs = row_step ? ++row_step[r] : 0;
        const consts_f32 k = row_step ? make_consts_f32(o, rs) : k0;
        pe_adam_half_row(W, M, V, Vmax, G + (compact ? i : (size_t)r) * dim, r, dim, &k, mode, h,
                         rs, NULL);
    }
    return PE_OK;
}

typedef struct {
    uint16_t *W;
    float *M, *V, *Vmax;
    int64_t *row_step;
    size_t dim;
    const pe_adam_opts *o;
    consts_f32 k;
    int mode;
    const pe_half_round *h;
} pe_adam_half_ctx;

static void pe_adam_half_bwd_row(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const pe_adam_half_ctx *x = (const pe_adam_half_ctx *)c;
    const int64_t rs = x->row_step ? ++x->row_step[row] : 0;
    const consts_f32 k = x->row_step ? make_consts_f32(x->o, rs) : x->k;
    pe_adam_half_row(x->W, x->M, x->V, x->Vmax, (const float *)g, row, x->dim, &k, x->mode, x->h,
                     rs, next);
}

int pe_adam_half_bwd(uint16_t *W, float *M, float *V, float *Vmax, int64_t *row_step,
                     const pe_bwd_batch *b, const pe_adam_opts *o, const pe_half_round *h,
                     size_t *n_rows) {
    *n_rows = 0;
    if (!row_step && o->step < 1) return PE_ERR_VALUE;
    pe_adam_half_ctx x = {W, M, V, Vmax, row_step, b->dim, o,
                          make_consts_f32(o, row_step ? 1 : o->step), adam_mode(o, Vmax != NULL),
                          h};
    return pe_inbwd_f32(pe_adam_half_bwd_row, &x, b, n_rows);
}
#endif /* PE_ADAM_HALF_ONCE */
