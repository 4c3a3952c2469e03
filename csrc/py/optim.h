/* Optimizer functions of pyembed._core (optim.c): array-based Adam / SGD steps and the pieces of
 * clip_grad_norm_. The Python layer (pyembed/optim.py) owns the state arrays and calls these. */
#ifndef PE_OPTIM_GLUE_H
#define PE_OPTIM_GLUE_H

#include "convert.h"

extern PyMethodDef pe_optim_functions[];

#endif
