/* word2vec (skip-gram or CBOW, negative sampling and/or hierarchical softmax), fused (see sgns.h
 * for the shapes and the promises).
 *
 * Why one kernel: a (center, context) pair moves 1 + negative rows of D floats and does ~6 D
 * multiply-adds; a batch glue of lookup + scatter-add + optimizer in separate passes would move
 * every row three times and allocate per batch (measured: ~6x slower per pair with pyembed's own
 * lookup/backward kernels and NumPy einsum, before generating the pairs). Here every row is
 * touched once per pair, in cache.
 *
 * The loop itself is sgns_loop.h, instantiated below once per 8-lane vector type.
 */
#include "sgns.h"
#include "simd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two instances of the inner loop (sgns_loop.h), with one 8-lane vector type each:
 * baseline, a pair of 4-lane vectors (SSE2 on x86-64, NEON on aarch64: a 32-byte GCC vector
 * lowered to those spills through the stack and runs 5x slower); and on x86-64 a native 8-lane
 * vector in an AVX2 clone, picked at run time from simd.h's level (AVX-512 would change the lane
 * count, hence the sums' order). The lanes do the same operations in the same order and there
 * is no FMA (-ffp-contract=off, no "fma" target), so both give the same bits. */
typedef float v4f __attribute__((vector_size(16)));
typedef float v4f_u __attribute__((vector_size(16), aligned(4), may_alias));
typedef struct {
    v4f lo, hi;
} v4x2;

static inline PE_ALWAYS_INLINE v4x2 p_ld(const float *p) {
    v4x2 r = {*(const v4f_u *)(const void *)p, *(const v4f_u *)(const void *)(p + 4)};
    return r;
}
static inline PE_ALWAYS_INLINE void p_st(float *p, v4x2 v) {
    *(v4f_u *)(void *)p = v.lo;
    *(v4f_u *)(void *)(p + 4) = v.hi;
}
static inline PE_ALWAYS_INLINE v4x2 p_add(v4x2 a, v4x2 b) {
    v4x2 r = {a.lo + b.lo, a.hi + b.hi};
    return r;
}
static inline PE_ALWAYS_INLINE v4x2 p_mul(v4x2 a, v4x2 b) {
    v4x2 r = {a.lo * b.lo, a.hi * b.hi};
    return r;
}
static inline PE_ALWAYS_INLINE v4x2 p_splat(float x) {
    v4x2 r = {{x, x, x, x}, {x, x, x, x}};
    return r;
}
static inline PE_ALWAYS_INLINE float p_hsum(v4x2 v) {
    return ((v.lo[0] + v.lo[1]) + (v.lo[2] + v.lo[3])) + ((v.hi[0] + v.hi[1]) + (v.hi[2] + v.hi[3]));
}

#define VT v4x2
#define V_LD(p) p_ld(p)
#define V_ST(p, v) p_st((p), (v))
#define V_ADD(a, b) p_add((a), (b))
#define V_MUL(a, b) p_mul((a), (b))
#define V_SPLAT(x) p_splat(x)
#define V_ZERO p_splat(0.0f)
#define V_HSUM(v) p_hsum(v)
#define VNAME(x) x##_base
#define V_TARGET
#include "sgns_loop.h"
#undef VT
#undef V_LD
#undef V_ST
#undef V_ADD
#undef V_MUL
#undef V_SPLAT
#undef V_ZERO
#undef V_HSUM
#undef VNAME
#undef V_TARGET

#if PE_X86_DISPATCH
typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_u __attribute__((vector_size(32), aligned(4), may_alias));
#define VT v8f
#define V_LD(p) (*(const v8f_u *)(const void *)(p))
#define V_ST(p, v) (*(v8f_u *)(void *)(p) = (v))
#define V_ADD(a, b) ((a) + (b))
#define V_MUL(a, b) ((a) * (b))
#define V_SPLAT(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define V_ZERO ((v8f){0})
#define V_HSUM(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
#define VNAME(x) x##_avx2
#define V_TARGET PE_TARGET_AVX2
#include "sgns_loop.h"
#endif

/* first sentence whose start is >= pos, in bounds[0..S] */
static size_t sentence_at(const int64_t *bounds, size_t S, int64_t pos) {
    size_t lo = 0, hi = S;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < pos) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int pe_w2v_train_f32(float *syn0, float *syn1, const pe_hs_tree *tree, pe_sgns_stats *stats,
                     const int32_t *tokens, const int64_t *bounds, size_t n_sentences,
                     const double *keep_prob, const uint64_t *alias, size_t vocab, size_t dim,
                     const pe_w2v_opts *o) {
    memset(stats, 0, sizeof *stats);
    if (o->window < 1 || o->negative < 0 || o->negative > MAX_NEGATIVE || vocab == 0)
        return PE_ERR_VALUE;
    if (n_sentences == 0) return PE_OK;
    const int64_t first = bounds[0], last = bounds[n_sentences];
    size_t maxlen = 0;
    for (size_t s = 0; s < n_sentences; s++) {
        size_t len = (size_t)(bounds[s + 1] - bounds[s]);
        if (len > maxlen) maxlen = len;
    }
    /* libgomp's thread pool does not survive fork(): a forked child trains on one thread even
     * when the caller asks for more */
    int nt = o->nthreads > 1 && !pe_forked_child() ? o->nthreads : 1;
    if ((size_t)nt > n_sentences) nt = (int)n_sentences;
#ifndef _OPENMP
    nt = 1;
#endif
    /* per thread: kept ids, kept positions, two D-float accumulators, each 64-byte aligned */
    size_t per = pe_mul_size(maxlen, sizeof(int32_t) + sizeof(int64_t));
    size_t vecs = pe_mul_size(dim, 2 * sizeof(float));
    if (per == SIZE_MAX || per > SIZE_MAX / 4 || vecs > SIZE_MAX / 4) return PE_ERR_OVERFLOW;
    per = (per + vecs + 4 * 64) & ~(size_t)63;
    char *scratch = (char *)pe_aligned_calloc(pe_mul_size(per, (size_t)nt));
    pe_sgns_stats *part = (pe_sgns_stats *)calloc((size_t)nt, sizeof(pe_sgns_stats));
    exp_tables *tab = (exp_tables *)malloc(sizeof(exp_tables));
    if (!scratch || !part || !tab) {
        pe_aligned_free(scratch);
        free(part);
        free(tab);
        return PE_ERR_NOMEM;
    }
    build_tables(tab);
    sgns_args a = {
        .syn0 = syn0, .syn1 = syn1, .tree = tree, .sg = o->sg != 0, .cbow_mean = o->cbow_mean != 0,
        .use_ns = tree == NULL || o->negative > 0, .tokens = tokens, .keep_prob = keep_prob,
        .alias = alias, .tab = tab, .vocab = vocab, .dim = dim, .window = o->window,
        .negative = o->negative, .alpha_begin = o->alpha_begin,
        .alpha_slope = last - first > 1
                           ? (o->alpha_end - o->alpha_begin) / (double)(last - first - 1) : 0.0,
        .first = first, .seed = o->seed, .counter_base = o->counter_base,
    };
    const int use_avx2 = pe_simd_level() >= PE_SIMD_AVX2;
    (void)use_avx2; /* no AVX2 clone off x86-64 */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        /* thread t takes the sentences starting in its share of the tokens */
        int64_t total = last - first;
        size_t s0 = sentence_at(bounds, n_sentences, first + (int64_t)((double)total * t / nth));
        size_t s1 = t == nth - 1 ? n_sentences
                                 : sentence_at(bounds, n_sentences,
                                               first + (int64_t)((double)total * (t + 1) / nth));
        char *base = scratch + t * per;
        int64_t *kpos = (int64_t *)base;
        int32_t *kid = (int32_t *)(base + ((maxlen * sizeof(int64_t) + 63) & ~(size_t)63));
        float *acc = (float *)((char *)kid + ((maxlen * sizeof(int32_t) + 63) & ~(size_t)63));
        float *neu1 = (float *)((char *)acc + ((dim * sizeof(float) + 63) & ~(size_t)63));
        if (s0 < s1) {
#if PE_X86_DISPATCH
            if (use_avx2) sgns_range_avx2(&a, bounds, s0, s1, kid, kpos, acc, neu1, &part[t]);
            else
#endif
                sgns_range_base(&a, bounds, s0, s1, kid, kpos, acc, neu1, &part[t]);
        }
    }
    for (int t = 0; t < nt; t++) { /* in thread order: the sums do not depend on timing */
        stats->loss += part[t].loss;
        stats->pairs += part[t].pairs;
        stats->words += part[t].words;
    }
    pe_aligned_free(scratch);
    free(part);
    free(tab);
    return PE_OK;
}

int pe_alias_build(uint64_t *table, const double *weights, size_t n) {
    if (n == 0 || n >= ((size_t)1 << 31)) return PE_ERR_VALUE;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i])) return PE_ERR_VALUE;
        sum += weights[i];
    }
    if (!(sum > 0.0) || !isfinite(sum)) return PE_ERR_VALUE;
    double *p = (double *)malloc(n * sizeof(double));
    uint32_t *small = (uint32_t *)malloc(n * sizeof(uint32_t));
    uint32_t *large = (uint32_t *)malloc(n * sizeof(uint32_t));
    if (!p || !small || !large) {
        free(p);
        free(small);
        free(large);
        return PE_ERR_NOMEM;
    }
    size_t ns = 0, nl = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = weights[i] * ((double)n / sum);
        if (p[i] < 1.0) small[ns++] = (uint32_t)i;
        else large[nl++] = (uint32_t)i;
    }
    /* Vose (1991): pair each under-full column with an over-full one */
    while (ns > 0 && nl > 0) {
        uint32_t s = small[--ns], l = large[nl - 1];
        double thr = p[s] * 4294967296.0;
        table[s] = ((uint64_t)(thr < 4294967295.0 ? (uint32_t)thr : 4294967295u) << 32) | l;
        p[l] = (p[l] + p[s]) - 1.0;
        if (p[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    /* what is left is full up to rounding: always itself */
    while (nl > 0) {
        uint32_t l = large[--nl];
        table[l] = ((uint64_t)4294967295u << 32) | l;
    }
    while (ns > 0) {
        uint32_t s = small[--ns];
        table[s] = ((uint64_t)4294967295u << 32) | s;
    }
    free(p);
    free(small);
    free(large);
    return PE_OK;
}

int64_t pe_sgns_find_bad_token(const int32_t *tokens, size_t n, size_t vocab) {
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (size_t)tokens[i] >= vocab) return (int64_t)i;
    return -1;
}

int64_t pe_sgns_find_bad_bound(const int64_t *bounds, size_t n, int64_t n_tokens) {
    for (size_t i = 0; i < n; i++) {
        if (bounds[i] < 0 || bounds[i] > n_tokens) return (int64_t)i;
        if (i > 0 && bounds[i] < bounds[i - 1]) return (int64_t)i;
    }
    return -1;
}

int64_t pe_hs_find_bad(const int32_t *points, const uint8_t *codes, size_t P,
                       const int64_t *offsets, size_t vocab) {
    for (size_t k = 0; k <= vocab; k++)
        if (offsets[k] < 0 || (uint64_t)offsets[k] > P || (k > 0 && offsets[k] < offsets[k - 1]))
            return (int64_t)k;
    for (size_t i = 0; i < P; i++)
        if (points[i] < 0 || (size_t)points[i] + 1 >= vocab || codes[i] > 1)
            return (int64_t)(vocab + 1 + i);
    return -1;
}

int64_t pe_alias_find_bad(const uint64_t *table, size_t n) {
    for (size_t i = 0; i < n; i++)
        if ((uint32_t)table[i] >= n) return (int64_t)i;
    return -1;
}
