/* The word2vec glue's method table (csrc/py/sgns.c), added to the module in module.c. */
#ifndef PE_GLUE_SGNS_H
#define PE_GLUE_SGNS_H
#include <Python.h>
extern PyMethodDef pe_sgns_functions[];
#endif
