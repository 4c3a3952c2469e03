/* The body of gradnorm.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines. */
#include "gradnorm.h"

#include <math.h>
#include <stdlib.h>

#ifndef PE_GRADNORM_TMPL_ONCE /* the type-independent part, defined once */
#define PE_GRADNORM_TMPL_ONCE

#define BLOCK 4096 /* elements per partial when a whole array is reduced */

/* kind: 0 squares, 1 abs, 2 max abs, 3 pow */
static int norm_kind(double p) {
    if (isinf(p)) return 2;
    if (p == 2.0) return 0;
    if (p == 1.0) return 1;
    return 3;
}

#endif /* PE_GRADNORM_TMPL_ONCE */

static double FN(partial)(const T *x, size_t n, int kind, double p) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t j = 0, n8 = n & ~(size_t)7;
    if (kind == 0) {
        for (; j < n8; j += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)x[j + l] * (double)x[j + l];
        for (; j < n; j++) acc[0] += (double)x[j] * (double)x[j];
    } else if (kind == 1) {
        for (; j < n8; j += 8)
            for (int l = 0; l < 8; l++) acc[l] += fabs((double)x[j + l]);
        for (; j < n; j++) acc[0] += fabs((double)x[j]);
    } else if (kind == 2) {
        for (; j < n; j++) {
            double a = fabs((double)x[j]);
            if (a > acc[0] || a != a) acc[0] = a;
        }
        return acc[0];
    } else {
        for (; j < n; j++) acc[0] += pow(fabs((double)x[j]), p);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

int FN(pe_grad_norm)(double *out, const T *G, const int64_t *rows, size_t n_list, size_t nrows,
                     size_t dim, double p) {
    const int kind = norm_kind(p);
    size_t total = rows ? pe_mul_size(n_list, dim) : pe_mul_size(nrows, dim);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    size_t nparts = rows ? n_list : (total + BLOCK - 1) / BLOCK;
    double *part = (double *)malloc((nparts ? nparts : 1) * sizeof(double));
    if (!part) return PE_ERR_NOMEM;
    int nt = pe_threads_for(pe_mul_size(total, sizeof(T)), nparts); (void)nt;
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t i = 0; i < nparts; i++) {
        if (rows) {
            if (i + PE_PREFETCH_DIST < nparts)
                PE_PREFETCH_R(G + (size_t)rows[i + PE_PREFETCH_DIST] * dim);
            part[i] = FN(partial)(G + (size_t)rows[i] * dim, dim, kind, p);
        } else {
            size_t s = i * BLOCK, e = s + BLOCK < total ? s + BLOCK : total;
            part[i] = FN(partial)(G + s, e - s, kind, p);
        }
    }
    double acc = 0.0;
    for (size_t i = 0; i < nparts; i++) {
        if (kind == 2) {
            if (part[i] > acc || part[i] != part[i]) acc = part[i];
        } else {
            acc += part[i];
        }
    }
    free(part);
    *out = acc;
    return PE_OK;
}

int FN(pe_scale_rows)(T *G, const int64_t *rows, size_t n_list, size_t nrows, size_t dim, T coef) {
    size_t total = rows ? pe_mul_size(n_list, dim) : pe_mul_size(nrows, dim);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    size_t nparts = rows ? n_list : (total + BLOCK - 1) / BLOCK;
    int nt = pe_threads_for(pe_mul_size(total, 2 * sizeof(T)), nparts); (void)nt;
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t i = 0; i < nparts; i++) {
        T *restrict x;
        size_t len;
        if (rows) {
            x = G + (size_t)rows[i] * dim;
            len = dim;
        } else {
            size_t s = i * BLOCK;
            x = G + s;
            len = s + BLOCK < total ? BLOCK : total - s;
        }
        for (size_t j = 0; j < len; j++) x[j] *= coef;
    }
    return PE_OK;
}
