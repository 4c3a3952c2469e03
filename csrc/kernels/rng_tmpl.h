/* The body of rng.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines. */
#include "rng.h"

#include <math.h>

#ifndef PE_RNG_TMPL_ONCE /* the type-independent part, defined once */
#define PE_RNG_TMPL_ONCE

#define TWO_PI 6.283185307179586476925286766559

#endif /* PE_RNG_TMPL_ONCE */

void FN(pe_fill_normal)(T *out, size_t n, uint64_t seed, double mean, double std) {
    size_t pairs = (n + 1) / 2;
    int nt = pe_threads_for(pe_mul_size(n, 64), pairs);
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t k = 0; k < pairs; k++) {
        /* u1 in (0, 1] so log(u1) is finite */
        double u1 = 1.0 - pe_u01(pe_hash64(seed, 2 * (uint64_t)k));
        double u2 = pe_u01(pe_hash64(seed, 2 * (uint64_t)k + 1));
        double r = sqrt(-2.0 * log(u1));
        out[2 * k] = (T)(mean + std * (r * cos(TWO_PI * u2)));
        if (2 * k + 1 < n) out[2 * k + 1] = (T)(mean + std * (r * sin(TWO_PI * u2)));
    }
    (void)nt;
}

void FN(pe_fill_uniform)(T *out, size_t n, uint64_t seed, double lo, double hi) {
    int nt = pe_threads_for(pe_mul_size(n, 16), n);
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t i = 0; i < n; i++) {
        T v = (T)(lo + (hi - lo) * pe_u01(pe_hash64(seed, (uint64_t)i)));
        out[i] = v < (T)hi ? v : (T)lo; /* rounding to T must not reach hi */
    }
    (void)nt;
}

/* Element (k, c) is element g = (first + k*step) * dim + c of the flat fill: the normal pair
 * (g & ~1, g | 1) is recomputed per element (cos for even g, sin for odd), which costs twice the
 * flat fill's transcendental work; it runs once, at initialisation. normal: N(a, b^2), else
 * U[a, b). */
static void FN(fill_rows)(T *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                          uint64_t seed, int normal, double a, double b) {
    size_t n = pe_mul_size(rows, dim);
    int nt = pe_threads_for(pe_mul_size(n, normal ? 128 : 16), rows);
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t k = 0; k < rows; k++) {
        T *out_k = out + k * dim;
        uint64_t g0 = (first + (uint64_t)k * step) * (uint64_t)dim;
        for (size_t c = 0; c < dim; c++) {
            uint64_t g = g0 + c, pair = g >> 1;
            if (normal) {
                double u1 = 1.0 - pe_u01(pe_hash64(seed, 2 * pair));
                double u2 = pe_u01(pe_hash64(seed, 2 * pair + 1));
                double r = sqrt(-2.0 * log(u1));
                out_k[c] = (T)(a + b * (r * ((g & 1) ? sin(TWO_PI * u2) : cos(TWO_PI * u2))));
            } else {
                T v = (T)(a + (b - a) * pe_u01(pe_hash64(seed, g)));
                out_k[c] = v < (T)b ? v : (T)a; /* as pe_fill_uniform */
            }
        }
    }
    (void)nt;
}

void FN(pe_fill_normal_rows)(T *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                            uint64_t seed, double mean, double std) {
    FN(fill_rows)(out, rows, dim, first, step, seed, 1, mean, std);
}

void FN(pe_fill_uniform_rows)(T *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                             uint64_t seed, double lo, double hi) {
    FN(fill_rows)(out, rows, dim, first, step, seed, 0, lo, hi);
}
