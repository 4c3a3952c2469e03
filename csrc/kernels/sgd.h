#ifndef PE_SGD_H
#define PE_SGD_H
#include "common.h"
#include "inbwd.h"
#include "half.h"

/* SGD with momentum, dampening, Nesterov, L2 weight decay and maximize: one fused pass.
 *
 * Shapes (T = float or double):
 *   P, B, G   (nrows, dim)  parameter, momentum buffer (NULL when momentum == 0), gradient
 *   frozen    (nrows,) uint8 or NULL: rows with frozen[r] != 0 stay bit-for-bit unchanged
 *   rows      (n_list,) strictly increasing row ids in [0, nrows) (the rows variant)
 *
 * Per element, in T arithmetic, exactly torch.optim.SGD's order
 * (https://pytorch.org/docs/stable/generated/torch.optim.SGD.html):
 *   g = maximize ? -g : g;   g = g + wd * p                    (when weight_decay != 0)
 *   b = first ? g : b*momentum + (1 - dampening)*g             (when momentum != 0)
 *   g = nesterov ? g + momentum*b : b
 *   p = p + (-lr) * g
 * Elementwise, so bitwise identical for every thread count. Returns PE_OK. */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    int nesterov, maximize;
    int first; /* the buffer's first step: b = g (torch clones the gradient) */
} pe_sgd_opts;

int pe_sgd_f32(float *P, float *B, const float *G, const uint8_t *frozen, size_t nrows,
               size_t dim, const pe_sgd_opts *o);
int pe_sgd_f64(double *P, double *B, const double *G, const uint8_t *frozen, size_t nrows,
               size_t dim, const pe_sgd_opts *o);

/* Only rows[0 .. n_list), prefetched PE_PREFETCH_DIST ahead; compact as in pe_adam_rows. */
int pe_sgd_rows_f32(float *P, float *B, const float *G, int compact, const int64_t *rows,
                    size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                    const pe_sgd_opts *o);
int pe_sgd_rows_f64(double *P, double *B, const double *G, int compact, const int64_t *rows,
                    size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                    const pe_sgd_opts *o);

/* In the backward (inbwd.h), as pe_adam_bwd. */
int pe_sgd_bwd_f32(float *P, float *B, const pe_bwd_batch *b, const pe_sgd_opts *o,
                   size_t *n_rows);
int pe_sgd_bwd_f64(double *P, double *B, const pe_bwd_batch *b, const pe_sgd_opts *o,
                   size_t *n_rows);

/* float16 / bfloat16 tables (W (nrows, dim) of h->kind; B and G float32): each row widened, updated
 * by the float32 arithmetic above and rounded back as h says (half.h). rows NULL: every row. */
int pe_sgd_half_rows(uint16_t *W, float *B, const float *G, int compact, const int64_t *rows,
                     size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                     const pe_sgd_opts *o, const pe_half_round *h);
int pe_sgd_half_bwd(uint16_t *W, float *B, const pe_bwd_batch *b, const pe_sgd_opts *o,
                    const pe_half_round *h, size_t *n_rows);

#endif
