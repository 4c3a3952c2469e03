/* Argument conversion and checks shared by the glue files. Every function returns 0 on success
 * and -1 with a Python exception set. */
#ifndef PE_CONVERT_H
#define PE_CONVERT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NO_IMPORT_ARRAY
#define PY_ARRAY_UNIQUE_SYMBOL pyembed_ARRAY_API
#include <numpy/arrayobject.h>

#include <stdint.h>

/* ids of any integer dtype, shape, strides, or a (nested) list -> a private C-contiguous int64
 * copy (never the caller's memory: another thread may rewrite that while a kernel runs without
 * the GIL). Every value must lie in [0, num_rows) (IndexError naming the value as read and its
 * position otherwise); pass num_rows < 0 to skip the range check (offsets, positions: the caller
 * checks the copy). bool and non-integer dtypes -> TypeError. */
int pe_convert_ids(PyObject *obj, const char *name, int64_t num_rows, PyArrayObject **out);

/* The position term of the input stage for ids of shape `shape` (`nd` dims): `pos_obj` None
 * (*pos NULL; then `pid_obj` must be None too), else cast to `typenum` into *pos, of shape
 * (seq, dim) when `pid_obj` is None (the rows start .. start + seq), else any (rows, dim) table
 * with *pid Hugging Face's position_ids: a private checked copy as pe_convert_ids (each value in
 * [0, rows)), of the ids' shape (one position per token: packed rows) or of shape (seq,) (shared
 * by every sequence), *pid_len its number of values. ValueError naming both shapes otherwise. */
int pe_convert_positions(PyObject *pos_obj, PyObject *pid_obj, int typenum, npy_intp dim, int nd,
                         const npy_intp *shape, PyArrayObject **pos, PyArrayObject **pid,
                         size_t *pid_len);

/* A real-valued array cast to `typenum` (same_kind casting), C-contiguous. Complex, object,
 * string -> TypeError. */
int pe_convert_float(PyObject *obj, const char *name, int typenum, PyArrayObject **out);

/* An `out=` argument must be exact: an ndarray, C-contiguous, writeable, aligned, of `typenum`
 * and shape `shape` — we raise rather than copy silently. */
int pe_check_out(PyObject *out, const char *name, int typenum, int ndim, const npy_intp *shape);

/* An array of exactly `typenum` (native order), C-contiguous and aligned, with `ndim` dims;
 * shape entries < 0 are free; writeable when `writeable`. `why` names the call in messages. */
int pe_check_exact(PyObject *obj, const char *name, int typenum, int ndim, const npy_intp *shape,
                   int writeable, const char *why);

/* "(3, 4)" for error messages; returns a new str or NULL. */
PyObject *pe_shape_str(int ndim, const npy_intp *shape);

/* Raise ValueError "NAME has shape (a, b) but WHY needs shape (c, d)" (WHY NULL: "this call").
 * Always returns -1. */
int pe_shape_error(const char *name, int ndim, const npy_intp *shape, int endim,
                   const npy_intp *eshape, const char *why);

/* Raise the exception for a kernel error code (MemoryError, OverflowError, ...). Returns -1. */
int pe_raise_kernel_error(int rc, const char *what);

/* padding_idx as torch takes it: None -> *out = -1 (no padding row); a negative value counts
 * from the end; anything outside [-rows, rows) -> ValueError. The one owner of this check. */
int pe_parse_padding_idx(PyObject *obj, int64_t rows, int64_t *out);

/* shape = ids.shape + (dim,) (the rows of a lookup); returns its ndim, or -1 with ValueError when
 * ids has NPY_MAXDIMS dimensions already. */
int pe_row_shape(PyArrayObject *ids, const char *name, npy_intp dim, npy_intp *shape);

/* float32 / float64 typenum from a dtype-like object (np.float32, "float64", np.dtype(...)). */
int pe_parse_float_dtype(PyObject *obj, int *typenum);

#endif
