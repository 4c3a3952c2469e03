/* Output-buffer cache (see pool.h). Buffers of at least POOL_MIN_BYTES are cached, at most
 * POOL_SLOTS of them and POOL_MAX_BYTES in all; a request takes the smallest cached buffer that
 * fits and is at most twice its size. PYEMBED_POOL=0 turns the cache off. */
#include "pool.h"
#include "methods.h"
#include "kernels/common.h"

#include <stdlib.h>

#define POOL_MIN_BYTES ((size_t)1 << 20)
#define POOL_MAX_BYTES ((size_t)1 << 30)
#define POOL_SLOTS 8

static void *g_buf[POOL_SLOTS];
static size_t g_cap[POOL_SLOTS];
static size_t g_total;
static int g_enabled = -1;

static int pool_enabled(void) {
    if (g_enabled < 0) {
        const char *e = getenv("PYEMBED_POOL");
        g_enabled = !(e && e[0] == '0');
    }
    return g_enabled;
}

static void *pool_take(size_t nbytes, size_t *cap) {
    int best = -1;
    for (int i = 0; i < POOL_SLOTS; i++) {
        if (g_buf[i] && g_cap[i] >= nbytes && g_cap[i] / 2 <= nbytes &&
            (best < 0 || g_cap[i] < g_cap[best]))
            best = i;
    }
    if (best >= 0) {
        void *p = g_buf[best];
        *cap = g_cap[best];
        g_total -= g_cap[best];
        g_buf[best] = NULL;
        g_cap[best] = 0;
        return p;
    }
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes) != 0) return NULL;
    *cap = nbytes;
    return p;
}

static void pool_give(void *p, size_t cap) {
    if (g_total + cap <= POOL_MAX_BYTES) {
        for (int i = 0; i < POOL_SLOTS; i++) {
            if (!g_buf[i]) {
                g_buf[i] = p;
                g_cap[i] = cap;
                g_total += cap;
                return;
            }
        }
    }
    free(p);
}

static void capsule_destructor(PyObject *cap) {
    void *p = PyCapsule_GetPointer(cap, "pyembed.buffer");
    size_t c = (size_t)(uintptr_t)PyCapsule_GetContext(cap);
    if (p) pool_give(p, c);
}

PyObject *pe_pool_empty(int nd, const npy_intp *shape, int typenum) {
    PyArray_Descr *d = PyArray_DescrFromType(typenum);
    if (!d) return NULL;
    size_t nbytes = (size_t)PyDataType_ELSIZE(d);
    for (int i = 0; i < nd; i++) nbytes = pe_mul_size(nbytes, (size_t)shape[i]);
    if (nbytes < POOL_MIN_BYTES || nbytes == SIZE_MAX || !pool_enabled()) {
        Py_DECREF(d);
        return PyArray_Empty(nd, (npy_intp *)shape, PyArray_DescrFromType(typenum), 0);
    }
    size_t cap = 0;
    void *buf = pool_take(nbytes, &cap);
    if (!buf) {
        Py_DECREF(d);
        return PyErr_NoMemory();
    }
    PyObject *owner = PyCapsule_New(buf, "pyembed.buffer", capsule_destructor);
    if (!owner) {
        pool_give(buf, cap);
        Py_DECREF(d);
        return NULL;
    }
    if (PyCapsule_SetContext(owner, (void *)(uintptr_t)cap) < 0) {
        Py_DECREF(owner); /* destructor gives the buffer back */
        Py_DECREF(d);
        return NULL;
    }
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, d, nd, (npy_intp *)shape, NULL, buf,
                                         NPY_ARRAY_CARRAY, NULL); /* steals d */
    if (!arr) {
        Py_DECREF(owner);
        return NULL;
    }
    if (PyArray_SetBaseObject((PyArrayObject *)arr, owner) < 0) { /* steals owner */
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

static PyObject *release_memory(PyObject *Py_UNUSED(mod), PyObject *noargs) {
    (void)noargs;
    size_t freed = g_total;
    for (int i = 0; i < POOL_SLOTS; i++) {
        free(g_buf[i]);
        g_buf[i] = NULL;
        g_cap[i] = 0;
    }
    g_total = 0;
    return PyLong_FromSize_t(freed);
}

PyMethodDef pe_pool_functions[] = {
    {"release_memory", release_memory, METH_NOARGS,
     "release_memory()\n--\n\nFree the cached output buffers; returns the bytes freed."},
    {NULL, NULL, 0, NULL},
};
