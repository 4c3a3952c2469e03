/* Module functions of csrc/py/topk.c. */
#ifndef PE_TOPK_GLUE_H
#define PE_TOPK_GLUE_H

#include <Python.h>

extern PyMethodDef pe_topk_functions[];

#endif
