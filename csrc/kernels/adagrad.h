#ifndef PE_ADAGRAD_H
#define PE_ADAGRAD_H
#include "common.h"
#include "inbwd.h"
#include "half.h"

/* Adagrad (torch.optim.Adagrad, one accumulator per element) and row-wise Adagrad (FBGEMM's
 * EXACT_ROWWISE_ADAGRAD, one accumulator per row), each one fused pass.
 *
 * Shapes (T = float or double, the table's dtype; the state is in T too):
 *   P, G      (nrows, dim)  parameter, gradient; with `compact` G is (n_list, dim) and G[i]
 *                           belongs to rows[i] (a coalesced sparse gradient)
 *   S         Adagrad: (nrows, dim), the running sum of g*g per element
 *             row-wise: (nrows,), the running sum of mean(g*g) over each row
 *   frozen    (nrows,) uint8 or NULL: rows with frozen[r] != 0 stay bit-for-bit unchanged (P, S)
 *   rows      (n_list,) strictly increasing row ids in [0, nrows) (the rows variants)
 *
 * Adagrad, per element in T (https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html,
 * torch/optim/adagrad.py _single_tensor_adagrad):
 *   g = maximize ? -g : g;  g = g + wd*p  (when weight_decay != 0)
 *   s = s + g*g;  std = sqrt(s) + eps
 *   dense form:   p = p + (-lr * g) / std      (torch's addcdiv_(g, std, value=-clr))
 *   sparse form:  p = p + -lr * (g / std)      (torch's sparse-gradient branch: add_(g/std, -clr))
 * lr is the step's decayed rate, torch's clr = lr / (1 + (step - 1) * lr_decay), computed by the
 * caller in double.
 *
 * Row-wise, per row in T (FBGEMM fbgemm_gpu/codegen/genscript/optimizers.py, rowwise_adagrad(),
 * its CPU update split_weight_update_cpu; weight_decay_mode L2 = 1, DECOUPLED = 2):
 *   g' = (maximize ? -g : g) + (L2 ? wd*p : 0)
 *   s = s + sum(g'*g') / dim                  (the sum in double, see adagrad_tmpl.h)
 *   mult = lr / (sqrt(s) + eps)
 *   corr = L2 ? 1 - mult*wd : DECOUPLED ? 1 - lr*wd : 1
 *   p = corr*p - (maximize ? -g : g)*mult     (for every element of the row)
 * maximize has no FBGEMM counterpart (torchrec's RowWiseAdagrad has it): a sign flip of g.
 *
 * Every element (row-wise: every row) is updated by one thread with the same arithmetic, so the
 * result is bitwise identical for every thread count. Returns PE_OK or PE_ERR_OVERFLOW. */
typedef struct {
    double lr, eps, weight_decay;
    int decoupled;   /* row-wise only: FBGEMM's DECOUPLED mode, p *= 1 - lr*wd (else L2) */
    int maximize;    /* ascend instead of descend */
    int sparse_form; /* Adagrad only: torch's sparse-gradient arithmetic (above) */
} pe_adagrad_opts;

/* A step's constants, rounded to T once (pe_adagrad_prepare_*), for the span / row functions. */
typedef struct {
    float lr, nlr, eps, wd, decay, sign;
    int mode;
} pe_adagrad_k_f32;
typedef struct {
    double lr, nlr, eps, wd, decay, sign;
    int mode;
} pe_adagrad_k_f64;

/* The one-span and one-row updates the kernels below are made of, for a caller that walks rows
 * itself (an optimizer applied in the backward): p, s, g point at the span's / row's start. */
void pe_adagrad_prepare_f32(pe_adagrad_k_f32 *k, const pe_adagrad_opts *o, int rowwise);
void pe_adagrad_prepare_f64(pe_adagrad_k_f64 *k, const pe_adagrad_opts *o, int rowwise);
/* Adagrad on n contiguous elements: p, s, g (n,). */
void pe_adagrad_span_f32(float *p, float *s, const float *g, size_t n, const pe_adagrad_k_f32 *k);
void pe_adagrad_span_f64(double *p, double *s, const double *g, size_t n,
                         const pe_adagrad_k_f64 *k);
/* Row-wise Adagrad on one row: p, g (dim,), s its one accumulator. */
void pe_rowwise_adagrad_row_f32(float *p, float *s, const float *g, size_t dim,
                                const pe_adagrad_k_f32 *k);
void pe_rowwise_adagrad_row_f64(double *p, double *s, const double *g, size_t dim,
                                const pe_adagrad_k_f64 *k);

/* Dense: every row (every element when frozen is NULL) of the (nrows, dim) arrays. */
int pe_adagrad_f32(float *P, float *S, const float *G, const uint8_t *frozen, size_t nrows,
                   size_t dim, const pe_adagrad_opts *o);
int pe_adagrad_f64(double *P, double *S, const double *G, const uint8_t *frozen, size_t nrows,
                   size_t dim, const pe_adagrad_opts *o);
int pe_rowwise_adagrad_f32(float *P, float *S, const float *G, const uint8_t *frozen,
                           size_t nrows, size_t dim, const pe_adagrad_opts *o);
int pe_rowwise_adagrad_f64(double *P, double *S, const double *G, const uint8_t *frozen,
                           size_t nrows, size_t dim, const pe_adagrad_opts *o);

/* Rows: only rows[0 .. n_list), prefetched PE_PREFETCH_DIST ahead; G compact or (nrows, dim). */
int pe_adagrad_rows_f32(float *P, float *S, const float *G, int compact, const int64_t *rows,
                        size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                        const pe_adagrad_opts *o);
int pe_adagrad_rows_f64(double *P, double *S, const double *G, int compact, const int64_t *rows,
                        size_t n_list, const uint8_t *frozen, size_t nrows, size_t dim,
                        const pe_adagrad_opts *o);
int pe_rowwise_adagrad_rows_f32(float *P, float *S, const float *G, int compact,
                                const int64_t *rows, size_t n_list, const uint8_t *frozen,
                                size_t nrows, size_t dim, const pe_adagrad_opts *o);
int pe_rowwise_adagrad_rows_f64(double *P, double *S, const double *G, int compact,
                                const int64_t *rows, size_t n_list, const uint8_t *frozen,
                                size_t nrows, size_t dim, const pe_adagrad_opts *o);

/* In the backward (inbwd.h): the rows of batch b (frozen rows: b->frozen) updated as the rows
 * variants above update them with the gradient the scatter-add would have summed: Adagrad, or
 * row-wise Adagrad with rowwise (S of the matching shape); *n_rows: inbwd.h's. */
int pe_adagrad_bwd_f32(float *P, float *S, int rowwise, const pe_bwd_batch *b,
                       const pe_adagrad_opts *o, size_t *n_rows);
int pe_adagrad_bwd_f64(double *P, double *S, int rowwise, const pe_bwd_batch *b,
                       const pe_adagrad_opts *o, size_t *n_rows);

/* float16 / bfloat16 tables (W (nrows, dim) of h->kind; Acc, the state S above, and G float32):
 * each row widened, updated by the float32 arithmetic above (Adagrad, or row-wise with rowwise)
 * and rounded back as h says (half.h). rows NULL: every row (frozen ones excepted). PE_ERR_NOMEM
 * (nothing written) when the row-wise update's per-thread row buffers cannot be allocated. */
int pe_adagrad_half_rows(uint16_t *W, float *Acc, const float *G, int rowwise, int compact,
                         const int64_t *rows, size_t n_list, const uint8_t *frozen, size_t nrows,
                         size_t dim, const pe_adagrad_opts *o, const pe_half_round *h);
int pe_adagrad_half_bwd(uint16_t *W, float *Acc, int rowwise, const pe_bwd_batch *b,
                        const pe_adagrad_opts *o, const pe_half_round *h, size_t *n_rows);

#endif
