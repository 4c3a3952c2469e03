/* Glue for the word-vector file kernels (csrc/kernels/parse.c reads, format.c writes): pyembed.io
 * calls these with the bytes of a file (bytes, mmap or any buffer) and gets back the matrix and
 * the words as one '\n'-joined bytes object (decoded and split in one call on the Python side).
 * Errors name the file and line / record. */
#include "glue.h"
#include "kernels/parse.h"
#include "kernels/format.h"
#include "methods.h"

#include <string.h>

/* 1-based line number of byte `pos` in buf, counting from `first_line` at byte `from`. */
static Py_ssize_t line_of(const char *buf, size_t from, size_t pos, Py_ssize_t first_line) {
    Py_ssize_t line = first_line;
    while (from < pos) {
        const char *nl = memchr(buf + from, '\n', pos - from);
        if (!nl) break;
        line++;
        from = (size_t)(nl - buf) + 1;
    }
    return line;
}

/* The token at `off` (up to a separator or 40 bytes) as a str for messages. */
static PyObject *token_at(const char *buf, size_t len, size_t off) {
    size_t e = off;
    while (e < len && e - off < 40 && buf[e] != ' ' && buf[e] != '\t' && buf[e] != '\r' &&
           buf[e] != '\n')
        e++;
    return PyUnicode_DecodeUTF8(buf + off, (Py_ssize_t)(e - off), "backslashreplace");
}

/* Fields after the word on the line [p, e) (for the message about a short line). */
static int64_t count_values(const char *p, const char *e) {
    int64_t fields = 0;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        if (p == e) break;
        fields++;
        while (p < e && *p != ' ' && *p != '\t' && *p != '\r') p++;
    }
    return fields > 0 ? fields - 1 : 0;
}

/* A row count from a header, any int: one past what Py_ssize_t holds is as many as a file can
 * hold (the rows found decide, and a short file is the error, naming file and line), not an
 * OverflowError. -1 (all rows) and other negatives pass through for the caller to judge. */
static int count_converter(PyObject *obj, void *out) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return 0;
    if (overflow > 0 || v > PY_SSIZE_T_MAX) v = PY_SSIZE_T_MAX;
    else if (overflow < 0 || v < -1) v = -2;
    *(Py_ssize_t *)out = (Py_ssize_t)v;
    return 1;
}

/* A dim no vector file can hold (its rows would not fit in an array): ValueError naming the
 * file, never NumPy's "array is too big" or a MemoryError from a claimed size. */
static int check_dim(PyObject *name, Py_ssize_t dim) {
    if (dim < 0 || (size_t)dim > (size_t)PY_SSIZE_T_MAX / 16) {
        PyErr_Format(PyExc_ValueError, "%U: dim %zd is not a vector size a file can hold", name,
                     dim);
        return -1;
    }
    return 0;
}

static int raise_text_error(PyObject *name, const char *buf, size_t len, size_t base,
                            Py_ssize_t first_line, const int64_t *starts, size_t d,
                            const pe_parse_error *e) {
    Py_ssize_t line = line_of(buf, base, (size_t)starts[e->row], first_line);
    if (e->kind == PE_PARSE_BAD_NUMBER) {
        PyObject *tok = token_at(buf, len, (size_t)e->offset);
        if (tok)
            PyErr_Format(PyExc_ValueError, "%U, line %zd: value %zd (%R) is not a number", name,
                         line, (Py_ssize_t)e->field + 1, tok);
        Py_XDECREF(tok);
    } else {
        PyErr_Format(PyExc_ValueError, "%U, line %zd: expected %zd values after the word, found %zd",
                     name, line, (Py_ssize_t)d, (Py_ssize_t)e->found);
    }
    return -1;
}

/* The words buf[starts[i]:ends[i]] joined by '\n' as one bytes object (new reference or NULL). */
static PyObject *join_words(const char *buf, const int64_t *starts, const int64_t *ends, size_t n) {
    size_t total = n ? n - 1 : 0;
    for (size_t i = 0; i < n; i++) total += (size_t)(ends[i] - starts[i]);
    PyObject *blob = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (blob) pe_join_words(PyBytes_AS_STRING(blob), buf, starts, ends, n);
    return blob;
}

/* One row "word v1 ... vd" read with Python's float(), for the numbers the kernel's grammar does
 * not take but gensim's loader (np.float32(str)) does: non-ASCII digits, whitespace float() strips.
 * The word and fields are split as the kernel splits them (parse.h), trying the first field as
 * the word, then all but the last d fields (GloVe's words with spaces). 1 if the row was read, 0
 * if not (no exception set), -1 on another error. */
static int reparse_row(PyArrayObject *out, size_t row, int64_t *wend, const char *buf,
                       int64_t start, int64_t end, size_t d) {
    const char *ls = buf + start, *le = buf + end, *p;
    size_t nf = 0;
    for (p = ls; p < le;) { /* count the fields */
        while (p < le && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        if (p == le) break;
        nf++;
        while (p < le && *p != ' ' && *p != '\t' && *p != '\r') p++;
    }
    if (nf < d + 1) return 0;
    const char *we = ls; /* the word ends at the first ' ' or '\t', or before the last d fields */
    if (nf == d + 1) {
        while (we < le && *we != ' ' && *we != '\t') we++;
    } else {
        size_t k = 0;
        for (p = ls; k < nf - d; k++) {
            while (p < le && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
            while (p < le && *p != ' ' && *p != '\t' && *p != '\r') p++;
        }
        we = p;
    }
    char *dst = (char *)PyArray_DATA(out) + row * d * (size_t)PyArray_ITEMSIZE(out);
    size_t k = 0;
    for (p = we; k < d; k++) {
        while (p < le && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
        const char *ts = p;
        while (p < le && *p != ' ' && *p != '\t' && *p != '\r') p++;
        PyObject *u = PyUnicode_DecodeUTF8(ts, (Py_ssize_t)(p - ts), "strict"), *f = NULL;
        if (u) f = PyFloat_FromString(u);
        Py_XDECREF(u);
        if (!f) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) return -1; /* UnicodeDecodeError too */
            PyErr_Clear();
            return 0;
        }
        double v = PyFloat_AS_DOUBLE(f);
        Py_DECREF(f);
        if (PyArray_TYPE(out) == NPY_FLOAT32) ((float *)dst)[k] = (float)v; /* np.float32(str) */
        else ((double *)dst)[k] = v;
    }
    wend[row] = (int64_t)(we - buf);
    return 1;
}

/* Rows [0, n) into out with the text kernel, in windows of rows so that a row the kernel cannot
 * read (reread by reparse_row) costs a restart of one window, not of the rest of the file.
 * PE_OK, PE_ERR_PARSE with *err (row counted from 0), another kernel code, or -1 with an
 * exception. */
static int parse_rows(PyArrayObject *out, int64_t *wend, const char *buf, const int64_t *starts,
                      const int64_t *ends, size_t n, size_t d, pe_parse_error *err) {
    const size_t window = (size_t)1 << 16;
    size_t from = 0;
    char *o = (char *)PyArray_DATA(out);
    size_t row_bytes = d * (size_t)PyArray_ITEMSIZE(out);
    while (from < n) {
        size_t m = n - from < window ? n - from : window;
        int rc;
        memset(err, 0, sizeof *err);
        PE_NOGIL_ABOVE((size_t)(ends[from + m - 1] - starts[from]),
                       rc = PE_BY_DTYPE(PyArray_TYPE(out), pe_parse_text, (void *)(o + from * row_bytes),
                                        wend + from, buf, starts + from, ends + from, m, d, err));
        if (rc == PE_OK) {
            from += m;
            continue;
        }
        if (rc != PE_ERR_PARSE) return rc;
        size_t r = from + (size_t)err->row;
        err->row = (int64_t)r;
        int got = err->kind == PE_PARSE_BAD_NUMBER
                      ? reparse_row(out, r, wend, buf, starts[r], ends[r], d) : 0;
        if (got <= 0) return got < 0 ? -1 : PE_ERR_PARSE;
        from = r + 1;
    }
    return PE_OK;
}

/* parse_text(buf, offset, dim, max_rows, dtype, name, first_line)
 *   -> (vectors (n, dim), words: bytes, line_starts (n,) int64, end_offset)
 * Reads the non-blank lines of buf[offset:] (at most max_rows; -1: all). */
static PyObject *parse_text(PyObject *Py_UNUSED(mod), PyObject *args) {
    Py_buffer view = {0};
    Py_ssize_t offset, dim, max_rows, first_line;
    PyObject *dtype_obj, *name;
    PyArrayObject *out = NULL;
    PyObject *blob = NULL, *res = NULL, *line_starts = NULL;
    int64_t *starts = NULL, *ends = NULL, *wend = NULL;
    int typenum;
    if (!PyArg_ParseTuple(args, "y*nnO&OUn:parse_text", &view, &offset, &dim, count_converter,
                          &max_rows,
                          &dtype_obj, &name, &first_line))
        return NULL;
    if (pe_parse_float_dtype(dtype_obj, &typenum) < 0) goto fail;
    if (offset < 0 || offset > view.len) {
        PyErr_Format(PyExc_ValueError, "offset %zd outside the buffer (%zd bytes)", offset, view.len);
        goto fail;
    }
    if (check_dim(name, dim) < 0) goto fail;
    const char *buf = (const char *)view.buf;
    size_t len = (size_t)view.len, base = (size_t)offset;
    size_t maxr = max_rows < 0 ? SIZE_MAX : (size_t)max_rows;
    size_t n = 0, consumed = 0, n2 = 0;
    PE_NOGIL_ABOVE(len - base, pe_index_lines(NULL, NULL, buf + base, len - base, maxr, &n, &consumed));
    size_t nalloc = n ? n : 1; /* at most one entry per line of the file */
    starts = PyMem_Malloc(nalloc * sizeof(int64_t));
    ends = PyMem_Malloc(nalloc * sizeof(int64_t));
    wend = PyMem_Malloc(nalloc * sizeof(int64_t));
    if (!starts || !ends || !wend) {
        PyErr_NoMemory();
        goto fail;
    }
    pe_index_lines(starts, ends, buf + base, len - base, n, &n2, &consumed);
    for (size_t i = 0; i < n; i++) { /* offsets relative to buf, not buf + base */
        starts[i] += (int64_t)base;
        ends[i] += (int64_t)base;
    }
    /* Allocate only for the rows the bytes can hold (a header may claim any dim): a line of a
     * word and dim values has at least 2 * dim + 1 bytes. Rows before the first shorter line are
     * parsed (so an earlier bad line is still the one named); that line is then the error. */
    size_t ok = 0, need = (size_t)dim * 2 + 1;
    while (ok < n && (size_t)(ends[ok] - starts[ok]) >= need) ok++;
    npy_intp dims[2] = {(npy_intp)ok, (npy_intp)dim};
    out = (PyArrayObject *)PyArray_EMPTY(2, dims, typenum, 0);
    if (!out) goto fail;
    pe_parse_error err;
    int rc = parse_rows(out, wend, buf, starts, ends, ok, (size_t)dim, &err);
    if (rc == -1) goto fail;
    if (rc == PE_OK && ok < n) {
        rc = PE_ERR_PARSE;
        err.row = (int64_t)ok;
        err.kind = PE_PARSE_FEW_VALUES;
        err.found = count_values(buf + starts[ok], buf + ends[ok]);
    }
    if (rc == PE_ERR_PARSE) {
        raise_text_error(name, buf, len, base, first_line, starts, (size_t)dim, &err);
        goto fail;
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "parse_text");
        goto fail;
    }
    blob = join_words(buf, starts, wend, n);
    if (!blob) goto fail;
    npy_intp sdims[1] = {(npy_intp)n};
    line_starts = PyArray_EMPTY(1, sdims, NPY_INT64, 0);
    if (!line_starts) goto fail;
    if (n) memcpy(PyArray_DATA((PyArrayObject *)line_starts), starts, n * sizeof(int64_t));
    res = Py_BuildValue("NONn", (PyObject *)out, blob, line_starts, (Py_ssize_t)(base + consumed));
    out = NULL;
    line_starts = NULL;
fail:
    PE_RELEASE(out, blob, line_starts);
    PyMem_Free(starts);
    PyMem_Free(ends);
    PyMem_Free(wend);
    PyBuffer_Release(&view);
    return res;
}

/* parse_binary(buf, offset, count, dim, dtype, name) -> (vectors (count, dim), words, end_offset) */
static PyObject *parse_binary(PyObject *Py_UNUSED(mod), PyObject *args) {
    Py_buffer view = {0};
    Py_ssize_t offset, count, dim;
    PyObject *dtype_obj, *name;
    PyArrayObject *out = NULL;
    PyObject *blob = NULL, *res = NULL;
    int64_t *ws = NULL, *we = NULL;
    int typenum;
    if (!PyArg_ParseTuple(args, "y*nO&nOU:parse_binary", &view, &offset, count_converter, &count,
                          &dim, &dtype_obj,
                          &name))
        return NULL;
    if (pe_parse_float_dtype(dtype_obj, &typenum) < 0) goto fail;
    if (offset < 0 || offset > view.len || count < 0 || dim < 0) {
        PyErr_Format(PyExc_ValueError, "bad offset %zd / count %zd / dim %zd for %zd bytes",
                     offset, count, dim, view.len);
        goto fail;
    }
    if (check_dim(name, dim) < 0) goto fail;
    const char *buf = (const char *)view.buf;
    size_t len = (size_t)view.len, base = (size_t)offset;
    /* never allocate for more records than the bytes can hold (a lying header) */
    size_t min_rec = (size_t)dim * 4 + 1;
    size_t cap = (len - base) / min_rec;
    size_t n = (size_t)count < cap ? (size_t)count : cap;
    size_t nalloc = n ? n : 1;
    ws = PyMem_Malloc(nalloc * sizeof(int64_t));
    we = PyMem_Malloc(nalloc * sizeof(int64_t));
    if (!ws || !we) {
        PyErr_NoMemory();
        goto fail;
    }
    npy_intp dims[2] = {(npy_intp)n, (npy_intp)dim};
    out = (PyArrayObject *)PyArray_EMPTY(2, dims, typenum, 0);
    if (!out) goto fail;
    int rc;
    size_t consumed = 0;
    pe_parse_error err;
    memset(&err, 0, sizeof err);
    PE_NOGIL_ABOVE(n * min_rec,
                   rc = PE_BY_DTYPE(typenum, pe_parse_binary, PyArray_DATA(out), ws, we, buf + base,
                                    len - base, n, (size_t)dim, &consumed, &err));
    if (rc == PE_OK && n < (size_t)count) {
        rc = PE_ERR_PARSE;
        err.row = (int64_t)n;
        err.offset = (int64_t)consumed;
    }
    if (rc == PE_ERR_PARSE) {
        PyErr_Format(PyExc_ValueError,
                     "%U, record %zd (byte %zd): the file ends inside the record; the header "
                     "promised %zd vectors of %zd float32 values (truncated file?)",
                     name, (Py_ssize_t)err.row + 1, (Py_ssize_t)(base + (size_t)err.offset), count, dim);
        goto fail;
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "parse_binary");
        goto fail;
    }
    blob = join_words(buf + base, ws, we, n);
    if (!blob) goto fail;
    res = Py_BuildValue("NOn", (PyObject *)out, blob, (Py_ssize_t)(base + consumed));
    out = NULL;
fail:
    PE_RELEASE(out, blob);
    PyMem_Free(ws);
    PyMem_Free(we);
    PyBuffer_Release(&view);
    return res;
}

/* Converts (words, starts, ends, vectors) for the writers: starts/ends int64 (n,), vectors
 * (n, d) float32/float64 (float32 only when need_f32), every word inside the words buffer. */
static int convert_rows(PyObject *starts_obj, PyObject *ends_obj, PyObject *vec_obj,
                        Py_ssize_t words_len, int need_f32, PyArrayObject **starts,
                        PyArrayObject **ends, PyArrayObject **vecs) {
    int t = PyArray_Check(vec_obj) ? PyArray_TYPE((PyArrayObject *)vec_obj) : -1;
    if (t != NPY_FLOAT32 && (need_f32 || t != NPY_FLOAT64)) {
        PyErr_SetString(PyExc_TypeError, need_f32 ? "vectors must be a float32 array"
                                                  : "vectors must be a float32 or float64 array");
        return -1;
    }
    *vecs = (PyArrayObject *)PyArray_FROM_OTF(vec_obj, t, NPY_ARRAY_IN_ARRAY);
    if (!*vecs) return -1;
    if (pe_convert_ids(starts_obj, "starts", -1, starts) < 0) return -1;
    if (pe_convert_ids(ends_obj, "ends", -1, ends) < 0) return -1;
    if (PyArray_NDIM(*vecs) != 2 || PyArray_NDIM(*starts) != 1 || PyArray_NDIM(*ends) != 1 ||
        PyArray_DIM(*starts, 0) != PyArray_DIM(*vecs, 0) ||
        PyArray_DIM(*ends, 0) != PyArray_DIM(*vecs, 0)) {
        PyErr_SetString(PyExc_ValueError, "the writers need starts (n,), ends (n,) and vectors (n, d)");
        return -1;
    }
    npy_intp n = PyArray_DIM(*vecs, 0);
    const int64_t *s = (const int64_t *)PyArray_DATA(*starts), *e = (const int64_t *)PyArray_DATA(*ends);
    for (npy_intp i = 0; i < n; i++) {
        if (s[i] < 0 || e[i] < s[i] || e[i] > (int64_t)words_len) {
            PyErr_Format(PyExc_ValueError, "word %zd: bounds [%lld, %lld) outside the words buffer",
                         (Py_ssize_t)i, (long long)s[i], (long long)e[i]);
            return -1;
        }
    }
    return 0;
}

/* The text rows (see format.h) into a scratch buffer of the kernel's bound, then bytes. */
static PyObject *format_text_rows(const char *words, const int64_t *ws, const int64_t *we,
                                  PyArrayObject *vecs, size_t n, size_t d) {
    size_t bound = pe_format_text_bound(ws, we, n, d), written = 0;
    if (bound == SIZE_MAX) return PyErr_Format(PyExc_OverflowError, "format_text: output too large");
    char *tmp = PyMem_Malloc(bound ? bound : 1);
    if (!tmp) return PyErr_NoMemory();
    int rc;
    PE_NOGIL_ABOVE(bound, rc = PE_BY_DTYPE(PyArray_TYPE(vecs), pe_format_text, tmp, &written, words,
                                           ws, we, PyArray_DATA(vecs), n, d));
    PyObject *res = rc == PE_OK ? PyBytes_FromStringAndSize(tmp, (Py_ssize_t)written) : NULL;
    PyMem_Free(tmp);
    return pe_kernel_result(rc, "format_text", res);
}

/* The binary records straight into the bytes object (their size is known). */
static PyObject *format_binary_rows(const char *words, const int64_t *ws, const int64_t *we,
                                    PyArrayObject *vecs, size_t n, size_t d) {
    size_t rec = pe_mul_size(d, 4), total = 0;
    for (size_t i = 0; i < n; i++) total += (size_t)(we[i] - ws[i]);
    size_t body = pe_mul_size(n, rec + 1);
    if (rec == SIZE_MAX || body == SIZE_MAX || total > (size_t)PY_SSIZE_T_MAX - body)
        return PyErr_Format(PyExc_OverflowError, "format_binary: output too large");
    PyObject *res = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(total + body));
    if (!res) return NULL;
    char *dst = PyBytes_AS_STRING(res);
    PE_NOGIL_ABOVE(total + body, pe_format_binary_f32(dst, words, ws, we,
                                                      (const float *)PyArray_DATA(vecs), n, d));
    return res;
}

/* format_text / format_binary(words: bytes, starts, ends, vectors (n, d)) -> bytes; row i's word
 * is words[starts[i]:ends[i]]. */
static PyObject *format_rows(PyObject *args, int binary) {
    Py_buffer words = {0};
    PyObject *s_obj, *e_obj, *vec_obj, *res = NULL;
    PyArrayObject *starts = NULL, *ends = NULL, *vecs = NULL;
    if (!PyArg_ParseTuple(args, binary ? "y*OOO:format_binary" : "y*OOO:format_text", &words,
                          &s_obj, &e_obj, &vec_obj))
        return NULL;
    if (convert_rows(s_obj, e_obj, vec_obj, words.len, binary, &starts, &ends, &vecs) == 0) {
        size_t n = (size_t)PyArray_DIM(vecs, 0), d = (size_t)PyArray_DIM(vecs, 1);
        const int64_t *ws = (const int64_t *)PyArray_DATA(starts);
        const int64_t *we = (const int64_t *)PyArray_DATA(ends);
        res = (binary ? format_binary_rows : format_text_rows)((const char *)words.buf, ws, we,
                                                               vecs, n, d);
    }
    PE_RELEASE(starts, ends, vecs);
    PyBuffer_Release(&words);
    return res;
}

static PyObject *format_text(PyObject *Py_UNUSED(mod), PyObject *args) { return format_rows(args, 0); }
static PyObject *format_binary(PyObject *Py_UNUSED(mod), PyObject *args) { return format_rows(args, 1); }

PyMethodDef pe_parse_functions[] = {
    {"parse_text", parse_text, METH_VARARGS,
     "parse_text(buf, offset, dim, max_rows, dtype, name, first_line)\n--\n\n"
     "Parse the non-blank lines 'word v1 ... vdim' of buf[offset:] (at most max_rows, -1: all).\n"
     "Returns (vectors, words joined by b'\\n', line start offsets, end offset)."},
    {"parse_binary", parse_binary, METH_VARARGS,
     "parse_binary(buf, offset, count, dim, dtype, name)\n--\n\n"
     "Parse count word2vec binary records of buf[offset:]. Returns (vectors, words, end offset)."},
    {"format_text", format_text, METH_VARARGS,
     "format_text(words, starts, ends, vectors)\n--\n\n"
     "Rows 'word v1 ... vd\\n' with the shortest round-tripping decimals."},
    {"format_binary", format_binary, METH_VARARGS,
     "format_binary(words, starts, ends, vectors)\n--\n\n"
     "word2vec binary records 'word ' + float32 bytes."},
    {NULL, NULL, 0, NULL},
};
