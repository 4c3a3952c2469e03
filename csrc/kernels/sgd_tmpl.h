/* The body of sgd.c for one element type (see adam_tmpl.h for the pattern). */
#include "sgd.h"
#include "inbwd.h"
#include "optim_loop.h"
#include "simd.h"

#ifndef PE_SGD_TMPL_ONCE /* the type-independent part, defined once */
#define PE_SGD_TMPL_ONCE
/* weight decay x {no momentum, first step, later step} x nesterov (nesterov needs momentum) */
static int sgd_mode(const pe_sgd_opts *o, int has_buf) {
    int wd = o->weight_decay != 0.0;
    int mom = has_buf ? (o->first ? 1 : 2) : 0;
    int nest = has_buf && o->nesterov;
    return wd * 6 + mom * 2 + nest;
}
#endif /* PE_SGD_TMPL_ONCE */

typedef struct {
    T wd, mom, damp1, nlr, sign;
} FN(sconsts);

static FN(sconsts) FN(make_sconsts)(const pe_sgd_opts *o) {
    FN(sconsts) k;
    k.wd = (T)o->weight_decay;
    k.mom = (T)o->momentum;
    k.damp1 = (T)(1.0 - o->dampening);
    k.nlr = (T)(-o->lr);
    k.sign = o->maximize ? (T)-1 : (T)1;
    return k;
}

/* WD (0/1), MOM (0 none, 1 first step, 2 later steps), NEST (0/1): compile-time constants. */
static inline PE_ALWAYS_INLINE void
FN(sspan)(T *restrict p, T *restrict b, const T *restrict g, size_t n, const FN(sconsts) *kp,
          const int WD, const int MOM, const int NEST) {
    const FN(sconsts) k = *kp;
    for (size_t j = 0; j < n; j++) {
        T gj = g[j] * k.sign;
        T pj = p[j];
        if (WD) gj = gj + k.wd * pj;
        if (MOM) {
            T bj = MOM == 1 ? gj : b[j] * k.mom + k.damp1 * gj;
            b[j] = bj;
            gj = NEST ? gj + k.mom * bj : bj;
        }
        p[j] = pj + k.nlr * gj;
    }
}

/* The 10 variants (sgd_mode's numbering), each a branch-free loop. */
#define PE_SGD_CASE(W, M, N) \
    case (W) * 6 + (M) * 2 + (N): FN(sspan)(p, b, g, n, k, W, M, N); break;
static inline PE_ALWAYS_INLINE void FN(srun_body)(T *p, T *b, const T *g, size_t n,
                                                  const FN(sconsts) *k, int mode) {
    switch (mode) {
        PE_SGD_CASE(0, 0, 0) PE_SGD_CASE(0, 1, 0) PE_SGD_CASE(0, 1, 1) PE_SGD_CASE(0, 2, 0)
        PE_SGD_CASE(0, 2, 1) PE_SGD_CASE(1, 0, 0) PE_SGD_CASE(1, 1, 0) PE_SGD_CASE(1, 1, 1)
        PE_SGD_CASE(1, 2, 0) PE_SGD_CASE(1, 2, 1)
    default:
        break;
    }
}
#undef PE_SGD_CASE

/* FN(srun): FN(srun_body) for each vector level (simd_levels.h) */
#define LV_NAME(s) FN(srun##s)
#define LV_BODY FN(srun_body)
#define LV_PARAMS (T *p, T *b, const T *g, size_t n, const FN(sconsts) *k, int mode)
#define LV_ARGS (p, b, g, n, k, mode)
#include "simd_levels.h"

int FN(pe_sgd)(T *P, T *B, const T *G, const uint8_t *frozen, size_t nrows, size_t dim,
               const pe_sgd_opts *o) {
    size_t n = pe_mul_size(nrows, dim);
    if (n == SIZE_MAX) return PE_ERR_OVERFLOW;
    const FN(sconsts) k = FN(make_sconsts)(o);
    const int mode = sgd_mode(o, B != NULL);
    int nt = pe_threads_for(pe_mul_size(n, (B ? 5 : 3) * sizeof(T)),
                            frozen ? nrows : (n + 63) / 64);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        pe_dense_walk w = pe_dense_walk_init(frozen, nrows, dim, t, nth);
        for (size_t off, len; pe_dense_next(&w, &off, &len);)
            FN(srun)(P + off, B ? B + off : NULL, G + off, len, &k, mode);
    }
    return PE_OK;
}

int FN(pe_sgd_rows)(T *P, T *B, const T *G, int compact, const int64_t *rows, size_t n_list,
                    const uint8_t *frozen, size_t nrows, size_t dim, const pe_sgd_opts *o) {
    (void)nrows;
    const FN(sconsts) k = FN(make_sconsts)(o);
    const int mode = sgd_mode(o, B != NULL);
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), (B ? 5 : 3) * sizeof(T)), n_list);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        pe_rows_walk w = {.rows = rows, .frozen = frozen, .at = n_list * t / nth,
                          .hi = n_list * (t + 1) / nth, .merge = 1, .row_bytes = dim * sizeof(T),
                          .w = {P, B}, .nw = B ? 2 : 1, .g = G, .compact = compact};
        for (size_t r, len; pe_rows_next(&w, &r, &len);) {
            size_t off = r * dim;
            FN(srun)(P + off, B ? B + off : NULL, G + pe_rows_goff(&w, r, dim), len * dim, &k,
                     mode);
        }
    }
    return PE_OK;
}

/* In the backward (inbwd.h): the row update and its context. */
typedef struct {
    T *P, *B;
    size_t dim;
    FN(sconsts) k;
    int mode;
} FN(sbwd_ctx);

static void FN(sbwd_row)(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const FN(sbwd_ctx) *x = (const FN(sbwd_ctx) *)c;
    void *const arrays[] = {x->P, x->B};
    const pe_bwd_pf f = pe_bwd_pf_init(arrays, 2, next, x->dim, sizeof(T));
    const size_t dim = x->dim, off = (size_t)row * dim, ch = PE_BWD_CHUNK / sizeof(T);
    for (size_t c0 = 0; c0 < dim; c0 += ch) {
        const size_t n = dim - c0 < ch ? dim - c0 : ch, o = off + c0;
        pe_bwd_part(&f, next, c0, c0 + n);
        FN(srun)(x->P + o, x->B ? x->B + o : NULL, (const T *)g + c0, n, &x->k, x->mode);
    }
}

int FN(pe_sgd_bwd)(T *P, T *B, const pe_bwd_batch *b, const pe_sgd_opts *o, size_t *n_rows) {
    FN(sbwd_ctx) x = {P, B, b->dim, FN(make_sconsts)(o), sgd_mode(o, B != NULL)};
    return FN(pe_inbwd)(FN(sbwd_row), &x, b, n_rows);
}

#ifndef PE_SGD_HALF_ONCE /* float16 / bfloat16 tables: the float32 instance's span, widened rows */
#define PE_SGD_HALF_ONCE

/* Row `row` of W (and of B): widened in chunks, updated by the float32 span, narrowed back.
 * In the backward (next not NULL) each chunk is a part of inbwd.h's: g summed a chunk at a time. */
static void pe_sgd_half_row(uint16_t *W, float *B, const float *g, int64_t row, size_t dim,
                            const sconsts_f32 *k, int mode, const pe_half_round *h,
                            const pe_bwd_next *next) {
    const size_t off = (size_t)row * dim;
    const uint64_t key = h->mode == PE_ROUND_STOCHASTIC ? pe_sr_key(h->seed, h->step, (uint64_t)row)
                                                        : 0;
    pe_bwd_pf f = {.nw = 0};
    if (next) {
        pe_bwd_pf_add(&f, W, dim, sizeof *W, next);
        pe_bwd_pf_add(&f, B, dim, sizeof *B, next);
    }
    float buf[PE_HALF_CHUNK];
    for (size_t c = 0; c < dim; c += PE_HALF_CHUNK) {
        const size_t n = dim - c < PE_HALF_CHUNK ? dim - c : PE_HALF_CHUNK;
        if (next) pe_bwd_part(&f, next, c, c + n);
        pe_widen_row(buf, W + off + c, n, h->kind);
        srun_f32(buf, B ? B + off + c : NULL, g + c, n, k, mode);
        pe_narrow_span(W + off + c, buf, n, h, key, c);
    }
}

int pe_sgd_half_rows(uint16_t *W, float *B, const float *G, int compact, const int64_t *rows,
                     size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                     const pe_sgd_opts *o, const pe_half_round *h) {
    if (!rows) n_list = nrows;
    const sconsts_f32 k = make_sconsts_f32(o);
    const int mode = sgd_mode(o, B != NULL);
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), B ? 14 : 6), n_list);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel for num_threads(nt) if (nt > 1) schedule(static))
    for (size_t i = 0; i < n_list; i++) {
        const int64_t r = rows ? rows[i] : (int64_t)i;
        if (frozen && frozen[r]) continue;
        pe_sgd_half_row(W, B, G + (compact ? i : (size_t)r) * dim, r, dim, &k, mode, h, NULL);
    }
    return PE_OK;
}

typedef struct {
    uint16_t *W;
    float *B;
    size_t dim;
    sconsts_f32 k;
    int mode;
    const pe_half_round *h;
} pe_sgd_half_ctx;

static void pe_sgd_half_bwd_row(void *c, int64_t row, void *g, const pe_bwd_next *next) {
    const pe_sgd_half_ctx *x = (const pe_sgd_half_ctx *)c;
    pe_sgd_half_row(x->W, x->B, (const float *)g, row, x->dim, &x->k, x->mode, x->h, next);
}

int pe_sgd_half_bwd(uint16_t *W, float *B, const pe_bwd_batch *b, const pe_sgd_opts *o,
                    const pe_half_round *h, size_t *n_rows) {
    pe_sgd_half_ctx x = {W, B, b->dim, make_sconsts_f32(o), sgd_mode(o, B != NULL), h};
    return pe_inbwd_f32(pe_sgd_half_bwd_row, &x, b, n_rows);
}
#endif /* PE_SGD_HALF_ONCE */
