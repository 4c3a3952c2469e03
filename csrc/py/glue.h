/* The one way a glue function calls a kernel (issue 10 §4), after convert.h has turned every
 * argument into a checked, private or exact array with the GIL held:
 *   pe_out_or_pool   the `out=` argument checked (exact, disjoint from every input) or a new array
 *   pe_refuse_overlap / pe_check_disjoint   the one overlap rule: arrays a kernel writes must not
 *                    share memory with anything it reads; we raise ValueError naming both (never
 *                    copy silently: a caller passing out= wants that very buffer written)
 *   pe_copy_if_overlaps   for buffers the caller does not choose (a table's grad or weight): an
 *                    input that overlaps one is read from a copy, as NumPy does
 *   PE_BY_DTYPE      the float32 / float64 kernel of an op, picked by dtype in one place
 *   PE_NOGIL_ABOVE   the GIL released around the kernel when it moves more than PE_NOGIL_MIN_BYTES
 *   PE_LOCKED        (table.h) the kernel under a table's lock, GIL released
 * then pe_kernel_result: the result, or the exception for a kernel's error code. */
#ifndef PE_GLUE_H
#define PE_GLUE_H

#include "convert.h"
#include "kernels/common.h"

/* Release the GIL around pure C work of at least this many bytes. 64 KiB is about 5 us of work at
 * memory speed, some 20x what releasing and retaking an uncontended GIL costs (0.1-0.3 us), so no
 * call pays more than a few percent for it; below it a call keeps the GIL, and so never waits a
 * switch interval (5 ms) to get it back from a busy Python thread for a microsecond of work.
 * NumPy's NPY_BEGIN_THREADS_THRESHOLDED makes the same trade at 500 elements. */
#define PE_NOGIL_MIN_BYTES ((size_t)1 << 16)

/* Run the statement(s) without the GIL when `nbytes` > PE_NOGIL_MIN_BYTES, with it otherwise. */
#define PE_NOGIL_ABOVE(nbytes, ...)                                                              \
    do {                                                                                         \
        if ((size_t)(nbytes) > PE_NOGIL_MIN_BYTES) {                                             \
            Py_BEGIN_ALLOW_THREADS __VA_ARGS__;                                                  \
            Py_END_ALLOW_THREADS                                                                 \
        } else {                                                                                 \
            __VA_ARGS__;                                                                         \
        }                                                                                        \
    } while (0)

/* fn_f64(args) for float64 tables and arrays, fn_f32(args) otherwise: the per-op kernel pair, as
 * bottleneck's reducer picks a kernel by dtype. Pass data pointers as void * (C converts them to
 * float * / double * at the call) and scalars as double (converted to float for _f32). */
#define PE_BY_DTYPE(typenum, fn, ...)                                                           \
    ((typenum) == NPY_FLOAT64 ? fn##_f64(__VA_ARGS__) : fn##_f32(__VA_ARGS__))

/* A named extent of memory: what a kernel reads or writes. */
typedef struct {
    const char *name;
    const void *data;
    size_t nbytes;
} pe_span;

static inline pe_span pe_span_of(const char *name, PyArrayObject *a) {
    pe_span s = {name, a ? PyArray_DATA(a) : NULL, a ? (size_t)PyArray_NBYTES(a) : 0};
    return s;
}

/* ValueError "A overlaps B (they share memory)" when `a` overlaps any of `others`. 0 or -1. */
int pe_refuse_overlap(const pe_span *a, const pe_span *others, int n);

/* No two of the n spans may overlap (arrays that are all written, as an optimizer's). 0 or -1. */
int pe_check_disjoint(const pe_span *spans, int n);

/* *arr (C-contiguous) replaced by a private copy when it overlaps [buf, buf + nb). 0 or -1. */
int pe_copy_if_overlaps(PyArrayObject **arr, const void *buf, size_t nb);

/* The `out=` argument (checked exactly as pe_check_out, and refused when it overlaps one of the
 * `inputs`), or when out_obj is NULL or None a new array (large ones recycled through pool.h: a
 * training loop asks for the same shape every step). New reference, or NULL with an exception. */
PyObject *pe_out_or_pool(PyObject *out_obj, int typenum, int ndim, const npy_intp *shape,
                         const pe_span *inputs, int n_inputs);

/* Py_XDECREF of each argument (PyObject * or PyArrayObject *, NULL allowed): the release at the
 * end of a glue function in one line, PE_RELEASE(ids, pos, out). */
static inline void pe_release(void *const *objs, size_t n) {
    for (size_t i = 0; i < n; i++) Py_XDECREF((PyObject *)objs[i]);
}
#define PE_RELEASE(...)                                                                          \
    pe_release((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))

/* A METH_VARARGS | METH_KEYWORDS entry of a method table. */
#define PE_KW_METHOD(name, fn, doc)                                                              \
    { name, (PyCFunction)(void (*)(void))(fn), METH_VARARGS | METH_KEYWORDS, doc }

/* The end of every glue function: `out` (a new reference, handed on) when the kernel returned
 * PE_OK, else NULL with the exception for its code (out released). */
PyObject *pe_kernel_result(int rc, const char *what, PyObject *out);

/* A private C-contiguous copy of an exact array (pe_check_exact's rules): for ids of a dtype the
 * caller already fixed (sgns tokens, alias tables) that a kernel reads without the GIL. */
int pe_private_exact(PyObject *obj, const char *name, int typenum, int ndim, const npy_intp *shape,
                     const char *why, PyArrayObject **out);

#endif
