#ifndef PE_BAG_H
#define PE_BAG_H
#include "common.h"

/* EmbeddingBag (torch.nn.functional.embedding_bag): reduce the rows of each bag.
 * Bag b holds the positions j in [off[b], off[b+1]); positions whose id is padding_idx are left
 * out of the reduction and of the mean's count (padding_idx < 0: none); an empty bag gives 0. */
enum { PE_BAG_SUM = 0, PE_BAG_MEAN = 1, PE_BAG_MAX = 2 };

/* Forward.
 *   out (nb, dim)   W (num_rows, dim)   ids (n,) checked in range   off (nb + 1,) checked:
 *   off[0] = 0, nondecreasing, off[nb] <= n   psw (n,) or NULL (SUM only: weights each row)
 *   argmax (nb, dim) or NULL (MAX only): the id whose value won each element (the first on
 *   ties), -1 where the bag is empty
 * SUM / MEAN add the rows in order of j in T (as torch's CPU kernel), MEAN then multiplies by
 * T(1 / count). Parallel over bags; any thread count gives the same bits. */
int pe_bag_forward_f32(float *out, int64_t *argmax, const float *W, const int64_t *ids,
                       const int64_t *off, const float *psw, size_t nb, size_t dim, int mode,
                       int64_t padding_idx);
int pe_bag_forward_f64(double *out, int64_t *argmax, const double *W, const int64_t *ids,
                       const int64_t *off, const double *psw, size_t nb, size_t dim, int mode,
                       int64_t padding_idx);

/* Backward into the table's gradient.
 *   SUM / MEAN: grad[ids[j], :] += dout[b(j), :] * s_j  (s_j = 1, psw[j], or T(1 / count(b)))
 *   MAX:        grad[argmax[b, k], k] += dout[b, k]     (argmax from the forward, -1 skipped)
 *   grad (num_rows, dim)   mark / touched / n_touched: the Table's touched-row list (rows that
 *   receive gradient are appended once)   dout (nb, dim)   other arguments as the forward
 * Every element's contributions are added in order of j (of b for MAX), as np.add.at, so the
 * result is bitwise identical for every thread count: threads own column ranges. */
int pe_bag_backward_f32(float *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                        const int64_t *ids, const int64_t *off, const float *dout,
                        const float *psw, const int64_t *argmax, size_t nb, size_t dim,
                        int mode, int64_t padding_idx);
int pe_bag_backward_f64(double *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                        const int64_t *ids, const int64_t *off, const double *dout,
                        const double *psw, const int64_t *argmax, size_t nb, size_t dim,
                        int mode, int64_t padding_idx);

/* Gradient of a SUM bag with respect to its per-sample weights (serial):
 *   gpsw[j] = <dout[b(j), :], W[ids[j], :]>  (0 for padding positions), accumulated in double.
 *   gpsw (n,), zero for positions outside every bag. */
int pe_bag_psw_grad_f32(float *gpsw, const float *W, const int64_t *ids, const int64_t *off,
                        const float *dout, size_t n, size_t nb, size_t dim, int64_t padding_idx);
int pe_bag_psw_grad_f64(double *gpsw, const double *W, const int64_t *ids, const int64_t *off,
                        const double *dout, size_t n, size_t nb, size_t dim, int64_t padding_idx);

/* A float16 / bfloat16 table (W: its 16-bit elements, each widened exactly as it is read): the
 * forward and the per-sample-weight gradient in float, the bits of the _f32 kernels on the
 * widened table. Its gradient is float32: pe_bag_backward_f32 serves it. */
int pe_bag_forward_f16(float *out, int64_t *argmax, const uint16_t *W, const int64_t *ids,
                       const int64_t *off, const float *psw, size_t nb, size_t dim, int mode,
                       int64_t padding_idx);
int pe_bag_psw_grad_f16(float *gpsw, const uint16_t *W, const int64_t *ids, const int64_t *off,
                        const float *dout, size_t n, size_t nb, size_t dim, int64_t padding_idx);
int pe_bag_forward_bf16(float *out, int64_t *argmax, const uint16_t *W, const int64_t *ids,
                        const int64_t *off, const float *psw, size_t nb, size_t dim, int mode,
                        int64_t padding_idx);
int pe_bag_psw_grad_bf16(float *gpsw, const uint16_t *W, const int64_t *ids, const int64_t *off,
                         const float *dout, size_t n, size_t nb, size_t dim, int64_t padding_idx);

#endif
