#ifndef PE_GRADNORM_H
#define PE_GRADNORM_H
#include "common.h"

/* The pieces of clip_grad_norm_ over the touched rows of a gradient.
 *
 * Shapes: G (nrows, dim); rows (n_list,) ids in [0, nrows), or NULL for all of G.
 *
 * pe_grad_norm_*: *out = sum |g|^p over the selected elements (p = 2: squares, p = 1: |g|,
 * other finite p > 0 via pow), or max |g| when p is +inf, accumulated in double. Partial sums
 * per row (per block of 4096 elements when rows is NULL) with a fixed order inside, added
 * serially at the end: bitwise identical for every thread count. PE_OK or PE_ERR_NOMEM.
 *
 * pe_scale_rows_*: g *= coef over the selected elements. */
int pe_grad_norm_f32(double *out, const float *G, const int64_t *rows, size_t n_list,
                     size_t nrows, size_t dim, double p);
int pe_grad_norm_f64(double *out, const double *G, const int64_t *rows, size_t n_list,
                     size_t nrows, size_t dim, double p);

int pe_scale_rows_f32(float *G, const int64_t *rows, size_t n_list, size_t nrows, size_t dim,
                      float coef);
int pe_scale_rows_f64(double *G, const int64_t *rows, size_t n_list, size_t nrows, size_t dim,
                      double coef);

#endif
