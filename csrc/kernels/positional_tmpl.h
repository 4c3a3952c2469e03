/* The body of positional.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines. */
#include "positional.h"
#include "stream.h"
#include "simd.h"

#include <math.h>

/* Emit `rows` consecutive rows from the state z = (sin, cos) pairs, stepping it after each row.
 * np pairs are written (np = dim / 2); an odd dim's last column is sin of frequency np
 * (extra_sin) or 0. The interleaved layout is then a plain double -> T conversion of z.
 * With `stage` (an aligned scratch row) each row is built there and streamed out. */
static inline PE_ALWAYS_INLINE void
FN(sin_rows_body)(T *restrict out, size_t rows, size_t dim, int halves, int extra_sin,
                  double *restrict z, const double *restrict sd, const double *restrict cd,
                  T *restrict stage) {
    const size_t np = dim / 2, nf = np + ((dim & 1) && extra_sin);
    for (size_t r = 0; r < rows; r++) {
        T *restrict o = stage ? stage : out + r * dim;
        if (halves) {
            T *restrict oc = o + np;
            for (size_t i = 0; i < np; i++) {
                o[i] = (T)z[2 * i];
                oc[i] = (T)z[2 * i + 1];
            }
        } else {
            for (size_t k = 0; k < 2 * np; k++) o[k] = (T)z[k];
        }
        if (dim & 1) o[dim - 1] = extra_sin ? (T)z[2 * np] : (T)0;
        if (stage) pe_stream_copy(out + r * dim, stage, dim * sizeof(T));
        for (size_t i = 0; i < nf; i++) {
            double si = z[2 * i], ci = z[2 * i + 1];
            z[2 * i] = si * cd[i] + ci * sd[i];
            z[2 * i + 1] = ci * cd[i] - si * sd[i];
        }
    }
    if (stage) PE_SFENCE(); /* each thread orders its own streamed stores */
}

#define LV_NAME(s) FN(sin_rows##s)
#define LV_BODY FN(sin_rows_body)
#define LV_PARAMS (T *restrict out, size_t rows, size_t dim, int halves, int extra_sin, \
    double *restrict z, const double *restrict sd, const double *restrict cd, T *restrict stage)
#define LV_ARGS (out, rows, dim, halves, extra_sin, z, sd, cd, stage)
#include "simd_levels.h"


int FN(pe_sinusoidal)(T *out, int64_t start, size_t n, size_t dim, double base, int layout_halves,
                      int exponent) {
    if (!(base > 0.0) || !isfinite(base) || (exponent != PE_EXP_2I_D && exponent != PE_EXP_HALF))
        return PE_ERR_VALUE;
    if (n == 0 || dim == 0) return PE_OK;
    if (pe_mul_size(n, dim) == SIZE_MAX) return PE_ERR_OVERFLOW;
    const int extra_sin = exponent == PE_EXP_2I_D;
    const size_t nf = dim / 2 + ((dim & 1) && extra_sin);
    const int64_t end = start + (int64_t)n;
    const int64_t b0 = pe_angle_block_start(start);
    const size_t nblocks = (size_t)((end - 1 - b0) / PE_ANGLE_BLOCK) + 1;
    int nt = pe_threads_for(pe_mul_size(n, dim) * sizeof(T), nblocks);
    /* w, sd, cd, then per thread z (2 nf) */
    const size_t ld = nf + 8 - nf % 8; /* keeps every array 64-byte aligned */
    const size_t row_bytes = dim * sizeof(T);
    const int stream = PE_HAVE_STREAM && n * row_bytes >= pe_stream_min_bytes() &&
                       row_bytes % 16 == 0 && (uintptr_t)out % 16 == 0;
    /* per thread: z (2 ld doubles) and a stage row (dim T, rounded to 64 bytes) */
    const size_t per_thread = 2 * ld + (stream ? (row_bytes + 63) / 64 * 8 : 0);
    double *buf = (double *)pe_aligned_calloc(
        pe_mul_size(3 * ld + pe_mul_size((size_t)nt, per_thread), sizeof(double)));
    if (!buf) return PE_ERR_NOMEM;
    double *w = buf, *sd = buf + ld, *cd = buf + 2 * ld;
    pe_angle_freqs(w, sd, cd, nf, dim, base, exponent);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (size_t k = 0; k < nblocks; k++) {
        double *z = buf + 3 * ld + pe_team(NULL) * per_thread;
        int64_t lo = b0 + (int64_t)k * PE_ANGLE_BLOCK, hi = lo + PE_ANGLE_BLOCK;
        if (lo < start) lo = start;
        if (hi > end) hi = end;
        pe_angle_seek(z, w, sd, cd, nf, lo);
        FN(sin_rows)(out + (size_t)(lo - start) * dim, (size_t)(hi - lo), dim, layout_halves,
             extra_sin, z, sd, cd, stream ? (T *)(z + 2 * ld) : NULL);
    }
    pe_aligned_free(buf);
    return PE_OK;
}
