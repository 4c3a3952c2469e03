/* SGD with momentum / dampening / Nesterov / weight decay in one fused pass (see sgd.h).
 * torch's single-tensor SGD makes two passes with momentum (buffer, then parameter); here the
 * parameter and the buffer are updated in the same loop: 20 bytes per float32 element instead of 24.
 */
#include "sgd.h"

#define PE_TMPL "sgd_tmpl.h"
#include "float_types.h"
