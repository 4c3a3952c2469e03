/* Sinusoidal position tables (Vaswani et al. 2017, "Attention Is All You Need", section 3.5):
 *     PE[p, 2i] = sin(p / base^(2i/dim)),   PE[p, 2i+1] = cos(p / base^(2i/dim))
 * and the shared anchored angle walk (see positional.h) that rope.c uses too.
 *
 * Shapes: out (n, dim); positions start .. start + n - 1.
 * Why not sin/cos per element: the float32 formula (NumPy, torch) rounds the angle p * w to
 * float32 first, which at p = 2^20 is off by up to ~0.06 rad; float64 libm per element is exact
 * but ~20 ns per pair. The walk costs 4 multiplies and 2 adds per pair in double, vectorised
 * across frequencies, and re-anchors every PE_ANGLE_BLOCK positions.
 */
#include "positional.h"

#include <math.h>

void pe_angle_freqs(double *w, double *sd, double *cd, size_t nf, size_t dim, double base,
                    int exponent) {
    size_t h = dim / 2;
    double denom = exponent == PE_EXP_HALF ? (double)(h > 1 ? h - 1 : 1) : (double)dim;
    for (size_t i = 0; i < nf; i++) {
        /* pow, not exp(-e log b): the latter's rounding of e log b costs ~10 ulp in w, which a
         * position of 2^30 would turn into ~1e-6 rad */
        double e = exponent == PE_EXP_HALF ? (double)i / denom : (double)(2 * i) / denom;
        w[i] = pow(base, -e);
        sd[i] = sin(w[i]);
        cd[i] = cos(w[i]);
    }
}

void pe_angle_step(double *restrict z, const double *restrict sd, const double *restrict cd,
                   size_t nf) {
    /* sin(a + w) = sin a cos w + cos a sin w;  cos(a + w) = cos a cos w - sin a sin w */
    for (size_t i = 0; i < nf; i++) {
        double si = z[2 * i], ci = z[2 * i + 1];
        z[2 * i] = si * cd[i] + ci * sd[i];
        z[2 * i + 1] = ci * cd[i] - si * sd[i];
    }
}

void pe_angle_seek(double *restrict z, const double *restrict w, const double *restrict sd,
                   const double *restrict cd, size_t nf, int64_t p) {
    int64_t a = pe_angle_block_start(p);
    double da = (double)a;
    for (size_t i = 0; i < nf; i++) {
        double x = da * w[i];
        z[2 * i] = sin(x);
        z[2 * i + 1] = cos(x);
    }
    for (int64_t k = a; k < p; k++) pe_angle_step(z, sd, cd, nf);
}

#define PE_TMPL "positional_tmpl.h"
#include "float_types.h"
