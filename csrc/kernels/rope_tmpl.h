/* The body of rope.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines. */
#include "rope.h"
#include "positional.h"
#include "simd.h"

#include <string.h>

#ifndef PE_ROPE_TMPL_ONCE /* the type-independent part, defined once */
#define PE_ROPE_TMPL_ONCE

#define RB 32 /* positions per task: a 32 x 128 double table is 32 KiB */

/* cos / sin rows for positions pos[0 .. m): cs row t = [cos_0 .. cos_{h-1}, sgn sin_0 ..]. */
static void build_table(double *cs, double *z, const int64_t *pos, size_t m, size_t h,
                        const double *w, const double *sd, const double *cd, double sgn) {
    for (size_t t = 0; t < m; t++) {
        int64_t p = pos[t];
        if (t > 0 && p == pos[t - 1]) {
            /* the same position again (heads sharing a decode step): z already holds it */
        } else if (t > 0 && p - 1 == pos[t - 1] &&
                   pe_angle_block_start(p) == pe_angle_block_start(p - 1)) {
            pe_angle_step(z, sd, cd, h); /* the same step the walk from the anchor takes */
        } else {
            pe_angle_seek(z, w, sd, cd, h, p); /* anchor + up to 255 steps */
        }
        double *c = cs + t * 2 * h, *s = c + h;
        for (size_t j = 0; j < h; j++) {
            s[j] = sgn * z[2 * j];
            c[j] = z[2 * j + 1];
        }
    }
}

#endif /* PE_ROPE_TMPL_ONCE */

static inline PE_ALWAYS_INLINE void
FN(apply_body)(T *out, const T *x, const double *restrict cs, size_t m, size_t o0, size_t o1,
               size_t seq, size_t t0, size_t hd, int interleaved, T *restrict stage) {
    const size_t h = hd / 2;
    for (size_t o = o0; o < o1; o++) {
        for (size_t t = 0; t < m; t++) {
            const size_t row = (o * seq + t0 + t) * hd;
            const T *restrict xr = x + row;
            const double *restrict c = cs + t * 2 * h, *restrict s = c + h;
            if (interleaved) {
                for (size_t j = 0; j < h; j++) {
                    double x1 = (double)xr[2 * j], x2 = (double)xr[2 * j + 1];
                    stage[2 * j] = (T)(x1 * c[j] - x2 * s[j]);
                    stage[2 * j + 1] = (T)(x2 * c[j] + x1 * s[j]);
                }
            } else {
                for (size_t j = 0; j < h; j++) {
                    double x1 = (double)xr[j], x2 = (double)xr[j + h];
                    stage[j] = (T)(x1 * c[j] - x2 * s[j]);
                    stage[j + h] = (T)(x2 * c[j] + x1 * s[j]);
                }
            }
            /* through a stage row, so out may be x itself */
            memcpy(out + row, stage, hd * sizeof(T));
        }
    }
}

#define LV_NAME(s) FN(apply##s)
#define LV_BODY FN(apply_body)
#define LV_PARAMS (T *out, const T *x, const double *restrict cs, size_t m, size_t o0, size_t o1, \
    size_t seq, size_t t0, size_t hd, int interleaved, T *restrict stage)
#define LV_ARGS (out, x, cs, m, o0, o1, seq, t0, hd, interleaved, stage)
#include "simd_levels.h"


int FN(pe_rope)(T *out, const T *x, const int64_t *pos, size_t outer, size_t seq, size_t hd,
                double base, int interleaved, int inverse) {
    if (!(base > 0.0) || hd % 2) return PE_ERR_VALUE;
    size_t total = pe_mul_size(pe_mul_size(outer, seq), hd);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (total == 0) return PE_OK;
    const size_t h = hd / 2, nblk = (seq + RB - 1) / RB;
    int nt = pe_threads_for(pe_mul_size(total, 2 * sizeof(T)), pe_mul_size(nblk, outer));
    /* enough chunks of the outer axis that every thread has work when seq is short */
    size_t nch = 1;
    while (nch < outer && nblk * nch < 4 * (size_t)nt) nch *= 2;
    if (nch > outer) nch = outer;
    const size_t ntask = nblk * nch;
    const size_t ld = h + 8 - h % 8;
    /* shared: w, sd, cd; per thread: z (2 ld), table (RB * 2 h), stage row (hd) */
    const size_t per_thread = 2 * ld + RB * 2 * h + hd + 8;
    double *buf = (double *)pe_aligned_calloc(
        pe_mul_size(3 * ld + pe_mul_size((size_t)nt, per_thread), sizeof(double)));
    if (!buf) return PE_ERR_NOMEM;
    double *w = buf, *sd = buf + ld, *cd = buf + 2 * ld;
    pe_angle_freqs(w, sd, cd, h, hd, base, PE_EXP_2I_D);
    const double sgn = inverse ? -1.0 : 1.0;
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t k = 0; k < ntask; k++) {
        double *z = buf + 3 * ld + pe_team(NULL) * per_thread;
        double *cs = z + 2 * ld;
        T *stage = (T *)(cs + RB * 2 * h);
        size_t b = k / nch, ch = k % nch;
        size_t t0 = b * RB, m = seq - t0 < RB ? seq - t0 : RB;
        size_t o0 = outer * ch / nch, o1 = outer * (ch + 1) / nch;
        build_table(cs, z, pos + t0, m, h, w, sd, cd, sgn);
        FN(apply)(out, x, cs, m, o0, o1, seq, t0, hd, interleaved, stage);
    }
    pe_aligned_free(buf);
    return PE_OK;
}
