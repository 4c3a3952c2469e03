/* Method tables of the positional glue (positional.c: sinusoidal, token + position, rope) and
 * of the bag glue (bag.c); module.c adds them to pyembed._core. */
#ifndef PE_POSITIONAL_GLUE_H
#define PE_POSITIONAL_GLUE_H

#include "convert.h"

extern PyMethodDef pe_positional_functions[];
extern PyMethodDef pe_bag_functions[];

#endif
