#ifndef PE_ADAM_H
#define PE_ADAM_H
#include "common.h"
#include "inbwd.h"
#include "half.h"

/* Adam / AdamW / amsgrad / maximize / torch SparseAdam in one fused pass per element.
 *
 * Shapes (T = float or double, the table's dtype; moments are in T too):
 *   P, M, V, Vmax, G   (nrows, dim)  parameter, first moment, second moment, running max of V
 *                      (amsgrad; NULL = no amsgrad), gradient
 *   frozen             (nrows,) uint8 or NULL: rows with frozen[r] != 0 are left bit-for-bit
 *                      unchanged (P, M, V, Vmax and row_step)
 *   rows               (n_list,) strictly increasing row ids in [0, nrows) (the rows variant)
 *   row_step           (nrows,) int64 or NULL: per-row step counters (rows variant only); each
 *                      listed row's counter is incremented and used for its bias corrections
 *
 * Per element, in T arithmetic (https://pytorch.org/docs/stable/generated/torch.optim.Adam.html):
 *   g = maximize ? -g : g
 *   g += wd * p            (L2, Adam)          |  p *= 1 - lr * wd   (decoupled, AdamW)
 *   Adam form:    m = b1*m + (1-b1)*g;  v = b2*v + ((1-b2)*g)*g;  vhat = amsgrad ? max(vmax, v) : v
 *                 p = p + (-lr/bc1 * m) / (sqrt(vhat)/sqrt(bc2) + eps)
 *   Sparse form:  m = m + (g - m)*(1-b1);  v = v + (g*g - v)*(1-b2)     (torch SparseAdam's order)
 *                 p = p + (m / (sqrt(vhat) + eps)) * -(lr*sqrt(bc2)/bc1)
 * with bc1 = 1 - b1^t, bc2 = 1 - b2^t computed in double once per step (once per row with
 * row_step), never per element.
 *
 * Every element is independent, so the result is bitwise identical for every thread count.
 * Returns PE_OK or PE_ERR_VALUE (step < 1 with no row_step). */
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;    /* t >= 1, the step being taken (ignored when row_step is given) */
    int decoupled;   /* AdamW: p *= 1 - lr*wd instead of g += wd*p */
    int maximize;    /* ascend instead of descend */
    int sparse_form; /* torch.optim.SparseAdam's arithmetic (eps before bias correction) */
} pe_adam_opts;

/* Dense: every row (or every element when frozen is NULL) of the (nrows, dim) arrays. */
int pe_adam_f32(float *P, float *M, float *V, float *Vmax, const float *G, const uint8_t *frozen,
                size_t nrows, size_t dim, const pe_adam_opts *o);
int pe_adam_f64(double *P, double *M, double *V, double *Vmax, const double *G,
                const uint8_t *frozen, size_t nrows, size_t dim, const pe_adam_opts *o);

/* Rows: only rows[0 .. n_list) (lazy Adam / SparseAdam); rows prefetched PE_PREFETCH_DIST ahead.
 * compact = 0: G is (nrows, dim) as P; compact = 1: G is (n_list, dim), G[i] the gradient of
 * rows[i] (a sparse gradient: Embedding(sparse=True)). */
int pe_adam_rows_f32(float *P, float *M, float *V, float *Vmax, int64_t *row_step, const float *G,
                     int compact, const int64_t *rows, size_t n_list, const uint8_t *frozen,
                     size_t nrows, size_t dim, const pe_adam_opts *o);
int pe_adam_rows_f64(double *P, double *M, double *V, double *Vmax, int64_t *row_step,
                     const double *G, int compact, const int64_t *rows, size_t n_list,
                     const uint8_t *frozen, size_t nrows, size_t dim, const pe_adam_opts *o);

/* In the backward (inbwd.h): the rows of batch b (frozen rows: b->frozen) updated as
 * pe_adam_rows would update them with the gradient the scatter-add would have summed. o->step
 * (or row_step) as in pe_adam_rows; *n_rows: inbwd.h's. */
int pe_adam_bwd_f32(float *P, float *M, float *V, float *Vmax, int64_t *row_step,
                    const pe_bwd_batch *b, const pe_adam_opts *o, size_t *n_rows);
int pe_adam_bwd_f64(double *P, double *M, double *V, double *Vmax, int64_t *row_step,
                    const pe_bwd_batch *b, const pe_adam_opts *o, size_t *n_rows);

/* float16 / bfloat16 tables (W (nrows, dim) of h->kind; M, V, Vmax, G float32): each row
 * widened, updated by the float32 arithmetic above and rounded back as h says (half.h); with
 * row_step, stochastic rounding counts the row's step instead of h->step. rows NULL: every row. */
int pe_adam_half_rows(uint16_t *W, float *M, float *V, float *Vmax, int64_t *row_step,
                      const float *G, int compact, const int64_t *rows, size_t n_list,
                      const uint8_t *frozen, size_t nrows, size_t dim, const pe_adam_opts *o,
                      const pe_half_round *h);
int pe_adam_half_bwd(uint16_t *W, float *M, float *V, float *Vmax, int64_t *row_step,
                     const pe_bwd_batch *b, const pe_adam_opts *o, const pe_half_round *h,
                     size_t *n_rows);

#endif
