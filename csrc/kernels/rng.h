#ifndef PE_RNG_H
#define PE_RNG_H
#include "common.h"

/* Counter-based random fills: element i depends only on (seed, i), so a seed gives the same
 * table on every machine and for every thread count.
 *   out (n,)
 * normal: Box-Muller on pairs (2k, 2k+1) of splitmix64 hashes, computed in double.
 * uniform: lo + (hi - lo) * u, u in [0, 1) with 53 random bits. */
void pe_fill_normal_f32(float *out, size_t n, uint64_t seed, double mean, double std);
void pe_fill_normal_f64(double *out, size_t n, uint64_t seed, double mean, double std);
void pe_fill_uniform_f32(float *out, size_t n, uint64_t seed, double lo, double hi);
void pe_fill_uniform_f64(double *out, size_t n, uint64_t seed, double lo, double hi);

/* The same values for a strided set of rows of a bigger (virtual) table: row k of
 *   out (rows, dim)
 * holds row first + k * step of what pe_fill_*(., total_rows * dim, seed, ...) would write, so
 * a table sharded by rows (row r on rank r % P) gets the bits the whole table would have. */
void pe_fill_normal_rows_f32(float *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                             uint64_t seed, double mean, double std);
void pe_fill_normal_rows_f64(double *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                             uint64_t seed, double mean, double std);
void pe_fill_uniform_rows_f32(float *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                              uint64_t seed, double lo, double hi);
void pe_fill_uniform_rows_f64(double *out, size_t rows, size_t dim, uint64_t first, uint64_t step,
                              uint64_t seed, double lo, double hi);

/* splitmix64 of (seed, counter): the generator's one primitive. */
static inline uint64_t pe_hash64(uint64_t seed, uint64_t counter) {
    uint64_t z = seed + (counter + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform double in [0, 1) from 53 bits */
static inline double pe_u01(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

#endif
