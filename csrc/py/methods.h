/* The method table each glue file exports; module.c adds them all to pyembed._core. */
#ifndef PE_METHODS_H
#define PE_METHODS_H

#include <Python.h>

extern PyMethodDef pe_table_functions[];      /* table_memory.c: unpickling */
extern PyMethodDef pe_pool_functions[];       /* pool.c: release_memory */
extern PyMethodDef pe_parse_functions[];      /* parse.c: word-vector files */
extern PyMethodDef pe_topk_functions[];       /* topk.c */
extern PyMethodDef pe_sgns_functions[];       /* sgns.c: word2vec training */
extern PyMethodDef pe_optim_functions[];      /* optim.c: Adam, SGD, Adagrads */
extern PyMethodDef pe_gradnorm_functions[];   /* gradnorm.c: gradient norms and scaling */
extern PyMethodDef pe_positional_functions[]; /* positional.c: sinusoidal, token + position, rope */
extern PyMethodDef pe_bag_functions[];        /* bag.c: EmbeddingBag */
extern PyMethodDef pe_half_functions[];       /* half.c: rounding into float16 / bfloat16 tables */
extern PyMethodDef pe_layernorm_functions[];  /* layernorm.c: token + segment + position, LayerNorm */

#endif
