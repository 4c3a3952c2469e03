/* The body of gather.c for one element type: float, double (float_types.h), and float16 /
 * bfloat16 rows renormalised in float (half_types.h).
 * Before including: T (the element type), S, LD and ST (the stored type, its load, and the store
 * of a T: a rounding to nearest even for half rows), FN(name) (adds the _f32 / _f64 / _f16 / _bf16
 * suffix).
 * Uses only the headers below and what this header defines. */
#include "gather.h"
#include "sort.h"

#include <math.h>
#include <stdlib.h>

int FN(pe_renorm)(S *W, const int64_t *ids, size_t n, size_t dim, int64_t num_rows, double max_norm,
                  double norm_type) {
    size_t *perm = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));
    size_t m = 0, nseg = 0;
    int rc = PE_ERR_NOMEM;
    if (perm && seg) rc = pe_group_ids(perm, seg, &m, &nseg, ids, n, num_rows, -1);
    if (rc == PE_OK) {
        for (size_t k = 0; k < nseg; k++) {
            S *row = W + (size_t)ids[perm[seg[k]]] * dim;
            double norm = 0.0;
            if (isinf(norm_type)) {
                for (size_t j = 0; j < dim; j++) {
                    double a = fabs((double)LD(row[j]));
                    if (a > norm) norm = a;
                }
            } else if (norm_type == 2.0) {
                for (size_t j = 0; j < dim; j++) norm += (double)LD(row[j]) * (double)LD(row[j]);
                norm = sqrt(norm);
            } else if (norm_type == 1.0) {
                for (size_t j = 0; j < dim; j++) norm += fabs((double)LD(row[j]));
            } else {
                for (size_t j = 0; j < dim; j++) norm += pow(fabs((double)LD(row[j])), norm_type);
                norm = pow(norm, 1.0 / norm_type);
            }
            if (norm > max_norm) {
                T scale = (T)(max_norm / (norm + 1e-7));
                for (size_t j = 0; j < dim; j++) row[j] = ST(LD(row[j]) * scale);
            }
        }
    }
    free(perm);
    free(seg);
    return rc;
}
