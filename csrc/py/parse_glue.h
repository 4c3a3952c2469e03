/* Module functions of csrc/py/parse.c (word-vector files). */
#ifndef PE_PARSE_GLUE_H
#define PE_PARSE_GLUE_H

#include <Python.h>

extern PyMethodDef pe_parse_functions[];

#endif
