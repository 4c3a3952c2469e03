/* The body of adam.c for one element type, included twice (float, double).
 * Before including: T (element type), SQRT (its sqrt), FN(name) (adds the _f32/_f64 suffix). */

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
static inline __attribute__((always_inline)) void
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

#define PE_ADAM_CASE(S, W, A)                                                                   \
    case (S) * 6 + (W) * 2 + (A):                                                               \
        FN(span)(p, m, v, vmax, g, n, k, S, W, A);                                              \
        break;

/* The 12 variants, compiled once per vector width (see simd.h). */
#define PE_ADAM_RUN(NAME, ATTR)                                                                 \
    ATTR static void NAME(T *p, T *m, T *v, T *vmax, const T *g, size_t n,                      \
                          const FN(consts) *k, int mode) {                                      \
        switch (mode) {                                                                         \
            PE_ADAM_CASE(0, 0, 0) PE_ADAM_CASE(0, 0, 1) PE_ADAM_CASE(0, 1, 0)                   \
            PE_ADAM_CASE(0, 1, 1) PE_ADAM_CASE(0, 2, 0) PE_ADAM_CASE(0, 2, 1)                   \
            PE_ADAM_CASE(1, 0, 0) PE_ADAM_CASE(1, 0, 1) PE_ADAM_CASE(1, 1, 0)                   \
            PE_ADAM_CASE(1, 1, 1) PE_ADAM_CASE(1, 2, 0) PE_ADAM_CASE(1, 2, 1)                   \
        default:                                                                                \
            break;                                                                              \
        }                                                                                       \
    }

PE_ADAM_RUN(FN(run_base), )
#if PE_X86_DISPATCH
PE_ADAM_RUN(FN(run_avx2), PE_TARGET_AVX2)
PE_ADAM_RUN(FN(run_avx512), PE_TARGET_AVX512)
#endif

static void FN(run)(T *p, T *m, T *v, T *vmax, const T *g, size_t n, const FN(consts) *k,
                    int mode) {
#if PE_X86_DISPATCH
    int level = pe_simd_level();
    if (level == PE_SIMD_AVX512) {
        FN(run_avx512)(p, m, v, vmax, g, n, k, mode);
        return;
    }
    if (level == PE_SIMD_AVX2) {
        FN(run_avx2)(p, m, v, vmax, g, n, k, mode);
        return;
    }
#endif
    FN(run_base)(p, m, v, vmax, g, n, k, mode);
}
#undef PE_ADAM_RUN
#undef PE_ADAM_CASE

/* Rows [r0, r1) of the dense update, skipping frozen rows; runs of unfrozen rows go in one span. */
static void FN(dense_rows)(T *P, T *M, T *V, T *Vmax, const T *G, const uint8_t *frozen,
                           size_t r0, size_t r1, size_t dim, const FN(consts) *k, int mode) {
    size_t r = r0;
    while (r < r1) {
        while (r < r1 && frozen[r]) r++;
        size_t s = r;
        while (r < r1 && !frozen[r]) r++;
        if (r > s) {
            size_t off = s * dim;
            FN(run)(P + off, M + off, V + off, Vmax ? Vmax + off : NULL, G + off, (r - s) * dim,
                    k, mode);
        }
    }
}

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
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        size_t t = 0, nth = 1;
#ifdef _OPENMP
        t = (size_t)omp_get_thread_num();
        nth = (size_t)omp_get_num_threads();
#endif
        if (frozen) {
            FN(dense_rows)(P, M, V, Vmax, G, frozen, nrows * t / nth, nrows * (t + 1) / nth, dim,
                           &k, mode);
        } else {
            /* split at multiples of 16 elements so every thread starts on a vector boundary */
            size_t lo = t == 0 ? 0 : (n / nth * t + n % nth * t / nth) & ~(size_t)15;
            size_t hi = t + 1 == nth ? n : (n / nth * (t + 1) + n % nth * (t + 1) / nth) & ~(size_t)15;
            if (hi > lo)
                FN(run)(P + lo, M + lo, V + lo, Vmax ? Vmax + lo : NULL, G + lo, hi - lo, &k, mode);
        }
    }
    return PE_OK;
}

int FN(pe_adam_rows)(T *P, T *M, T *V, T *Vmax, int64_t *row_step, const T *G,
                     const int64_t *rows, size_t n_list, const uint8_t *frozen, size_t nrows,
                     size_t dim, const pe_adam_opts *o) {
    (void)nrows;
    if (!row_step && o->step < 1) return PE_ERR_VALUE;
    const FN(consts) k0 = FN(make_consts)(o, row_step ? 1 : o->step);
    const int mode = adam_mode(o, Vmax != NULL);
    const size_t row_bytes = dim * sizeof(T);
    /* prefetch the head of each row (the hardware prefetcher follows the rest of a long row) */
    const size_t pf_bytes = row_bytes < 256 ? row_bytes : 256;
    int nt = pe_threads_for(pe_mul_size(pe_mul_size(n_list, dim), 7 * sizeof(T)), n_list);
    (void)nt; /* unused in a serial build */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        size_t t = 0, nth = 1;
#ifdef _OPENMP
        t = (size_t)omp_get_thread_num();
        nth = (size_t)omp_get_num_threads();
#endif
        size_t lo = n_list * t / nth, hi = n_list * (t + 1) / nth;
#define PE_ADAM_PREFETCH(q)                                                                     \
    if ((q) + PE_PREFETCH_DIST < hi) {                                                          \
        size_t pf = (size_t)rows[(q) + PE_PREFETCH_DIST] * dim;                                 \
        for (size_t b = 0; b < pf_bytes; b += 64) {                                             \
            PE_PREFETCH_W((const char *)(P + pf) + b);                                          \
            PE_PREFETCH_W((const char *)(M + pf) + b);                                          \
            PE_PREFETCH_W((const char *)(V + pf) + b);                                          \
            PE_PREFETCH_R((const char *)(G + pf) + b);                                          \
        }                                                                                       \
    }
        for (size_t i = lo; i < hi; i++) {
            PE_ADAM_PREFETCH(i)
            size_t r = (size_t)rows[i];
            if (frozen && frozen[r]) continue;
            FN(consts) k = k0;
            size_t len = 1;
            if (row_step) {
                k = FN(make_consts)(o, ++row_step[r]);
            } else {
                /* consecutive unfrozen rows (frequent ids are small and sorted) share one span */
                while (i + len < hi && (size_t)rows[i + len] == r + len &&
                       !(frozen && frozen[r + len])) {
                    PE_ADAM_PREFETCH(i + len)
                    len++;
                }
            }
            size_t off = r * dim;
            FN(run)(P + off, M + off, V + off, Vmax ? Vmax + off : NULL, G + off, len * dim, &k,
                    mode);
            i += len - 1;
        }
#undef PE_ADAM_PREFETCH
    }
    return PE_OK;
}
