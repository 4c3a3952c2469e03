/* Adagrad (torch.optim.Adagrad) and row-wise Adagrad (FBGEMM's EXACT_ROWWISE_ADAGRAD): one fused
 * pass per element or per row (see adagrad.h).
 *
 * Adagrad moves 20 bytes per float32 parameter (read p, g, s; write p, s); row-wise Adagrad 16
 * (its one accumulator per row is noise), which is why recommendation tables use it: the state
 * costs 4 bytes a row instead of a second table. Formulas: Duchi, Hazan & Singer 2011; the
 * row-wise variant as FBGEMM defines it (fbgemm_gpu/codegen/genscript/optimizers.py,
 * rowwise_adagrad(), the CPU update split_weight_update_cpu, which we follow).
 */
#include "adagrad.h"

#define PE_TMPL "adagrad_tmpl.h"
#include "float_types.h"
