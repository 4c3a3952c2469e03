/* The body of topk.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines. */
#include "topk.h"

#include <math.h>
#include <stdlib.h>

#ifndef PE_TOPK_TMPL_ONCE /* the type-independent part, defined once */
#define PE_TOPK_TMPL_ONCE

/* "a is worse than b": a smaller score, or the same score at a larger index. NaN is the
 * worst of all (keys are mapped so that NaN never compares). */
#define PE_WORSE(va, ia, vb, ib) ((va) < (vb) || ((va) == (vb) && (ia) > (ib)))

#endif /* PE_TOPK_TMPL_ONCE */

/* exchange heap entries a and b (value and index) */
static inline void FN(swap)(T *v, int64_t *ix, size_t a, size_t b) {
    T tv = v[a];
    v[a] = v[b];
    v[b] = tv;
    int64_t ti = ix[a];
    ix[a] = ix[b];
    ix[b] = ti;
}

static void FN(sift_down)(T *v, int64_t *ix, size_t k, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && PE_WORSE(v[l], ix[l], v[m], ix[m])) m = l;
        if (r < k && PE_WORSE(v[r], ix[r], v[m], ix[m])) m = r;
        if (m == i) return;
        FN(swap)(v, ix, i, m);
        i = m;
    }
}

static void FN(topk_row)(int64_t *oi, T *ov, const T *s, const T *scale, size_t n, size_t k, T *hv,
                         int64_t *hi) {
    /* heap keys: NaN -> -inf (last); the NaN itself is restored in the output */
    size_t h = 0;
    for (size_t j = 0; j < n; j++) {
        T x = scale ? s[j] / scale[j] : s[j];
        if (isnan(x)) x = -(T)INFINITY;
        if (h < k) {
            /* sift up */
            size_t c = h++;
            hv[c] = x;
            hi[c] = (int64_t)j;
            while (c > 0) {
                size_t p = (c - 1) / 2;
                if (!PE_WORSE(hv[c], hi[c], hv[p], hi[p])) break;
                FN(swap)(hv, hi, c, p);
                c = p;
            }
        } else if (x > hv[0]) { /* equal scores keep the earlier column */
            hv[0] = x;
            hi[0] = (int64_t)j;
            FN(sift_down)(hv, hi, k, 0);
        }
    }
    /* pop worst-first into the back of the output: best first */
    for (size_t r = k; r-- > 0;) {
        oi[r] = hi[0];
        T x = scale ? s[hi[0]] / scale[hi[0]] : s[hi[0]];
        ov[r] = x;
        hv[0] = hv[r];
        hi[0] = hi[r];
        FN(sift_down)(hv, hi, r, 0);
    }
}

int FN(pe_topk)(int64_t *out_idx, T *out_val, const T *scores, size_t stride, const T *scale,
                size_t rows, size_t n, size_t k) {
    if (k > n || stride < n) return PE_ERR_VALUE;
    if (k == 0 || rows == 0) return PE_OK;
    int nt = pe_threads_for(pe_mul_size(rows, n) * sizeof(T), rows);
    int bad = 0;
    (void)nt;
    PE_OMP(omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(| : bad) if (nt > 1))
    for (int64_t r = 0; r < (int64_t)rows; r++) {
        T *hv = (T *)malloc(k * sizeof(T));
        int64_t *hi = (int64_t *)malloc(k * sizeof(int64_t));
        if (!hv || !hi) {
            bad = 1;
        } else {
            FN(topk_row)(out_idx + (size_t)r * k, out_val + (size_t)r * k,
                           scores + (size_t)r * stride, scale, n, k, hv, hi);
        }
        free(hv);
        free(hi);
    }
    return bad ? PE_ERR_NOMEM : PE_OK;
}
