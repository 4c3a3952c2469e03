/* Shared by every kernel: error codes, the thread policy, aligned buffers.
 *
 * Kernels are pure C11 (no Python.h). They return PE_OK or a negative PE_ERR_* code and never
 * print, exit or assert on user input; the glue in csrc/py/ turns codes into exceptions.
 */
#ifndef PE_COMMON_H
#define PE_COMMON_H

#include <stddef.h>
#include <stdint.h>

enum {
    PE_OK = 0,
    PE_ERR_INDEX = -1,    /* an id outside [0, num_rows) */
    PE_ERR_NOMEM = -2,    /* an allocation failed */
    PE_ERR_VALUE = -3,    /* a bad argument the glue should have caught */
    PE_ERR_OVERFLOW = -4, /* a size that does not fit */
    PE_ERR_PARSE = -5,    /* malformed text (parse.c) */
};

/* Below this many bytes of work a kernel stays serial: starting a team costs a few microseconds,
 * which is more than copying 256 KiB. */
#define PE_PAR_MIN_BYTES ((size_t)1 << 18)

/* Threads: PYEMBED_NUM_THREADS, else OMP_NUM_THREADS / the cores OpenMP sees, else 1. After
 * os.fork() the child runs serial (libgomp's pool does not survive fork and would hang);
 * pe_forked_child() says whether this process is such a child (the one fork handler, threads.c). */
int pe_get_num_threads(void);
void pe_set_num_threads(int n);
int pe_have_openmp(void);
int pe_forked_child(void);
/* Threads to use for `work_bytes` of work, at most `max_items` (one item each at least). */
int pe_threads_for(size_t work_bytes, size_t max_items);

/* 64-byte aligned, zero-filled buffer (calloc underneath, so large buffers are zero pages that
 * cost nothing until touched; from 4 MiB on, advised for transparent huge pages on Linux).
 * NULL on failure or overflow. Free with pe_aligned_free. */
void *pe_aligned_calloc(size_t nbytes);
/* The same without the huge-page advice: for a buffer whose rows are touched sparsely and must
 * cost memory by the rows touched (the gradient of a memory-mapped table), since one touched
 * byte of a huge page makes 2 MiB resident. */
void *pe_aligned_calloc_small_pages(size_t nbytes);
void pe_aligned_free(void *p);

/* Outputs of at least this many bytes are written with non-temporal (streaming) stores, which skip
 * the read-for-ownership of each line but leave nothing in cache: worth it only past what the
 * last-level cache keeps. Default max(4 MiB, LLC / 16); PYEMBED_STREAM_MIN_BYTES overrides it.
 * Gradient rows, which zero_grad and the optimizer read again soon, stream only from
 * PE_STREAM_GRAD_FACTOR times this. pe_llc_size(): the last-level cache in bytes (0 if unknown). */
#define PE_STREAM_GRAD_FACTOR 4
size_t pe_stream_min_bytes(void);
void pe_set_stream_min_bytes(size_t n);
size_t pe_llc_size(void);

/* a*b, or SIZE_MAX when it overflows */
static inline size_t pe_mul_size(size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) return SIZE_MAX;
    return a * b;
}

/* PE_PREFETCH_R/W: a hint for data used once (locality 0); PE_PREFETCH_T1/W_T1: into L2 and
 * below, for whole rows fetched one row ahead (too big for L1); PE_PREFETCH_T0/W_T0: into every
 * cache level, for rows read at random from a table the cache may hold (measured: with locality 0 a
 * bag loop of 256-byte rows ran 4-5x slower on a 480 MiB L3, cached gathers 1.5x on a 48 MiB one). */
#if defined(__GNUC__)
#define PE_PREFETCH_R(p) __builtin_prefetch((const void *)(p), 0, 0)
#define PE_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 0)
#define PE_PREFETCH_T0(p) __builtin_prefetch((const void *)(p), 0, 3)
#define PE_PREFETCH_W_T0(p) __builtin_prefetch((const void *)(p), 1, 3)
#define PE_PREFETCH_W_T1(p) __builtin_prefetch((const void *)(p), 1, 2)
#define PE_PREFETCH_T1(p) __builtin_prefetch((const void *)(p), 0, 2)
#define PE_LIKELY(x) __builtin_expect(!!(x), 1)
#define PE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define PE_PREFETCH_R(p) ((void)0)
#define PE_PREFETCH_W(p) ((void)0)
#define PE_PREFETCH_T0(p) ((void)0)
#define PE_PREFETCH_W_T0(p) ((void)0)
#define PE_PREFETCH_W_T1(p) ((void)0)
#define PE_PREFETCH_T1(p) ((void)0)
#define PE_LIKELY(x) (x)
#define PE_UNLIKELY(x) (x)
#endif

/* An OpenMP pragma that vanishes (without -Wunknown-pragmas noise) in a serial build:
 *   PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1)) */
#ifdef _OPENMP
#define PE_OMP(x) _Pragma(#x)
#else
#define PE_OMP(x)
#endif

/* How far ahead the row loops (gather, scatter, bags, fused positions, lazy updates, norms)
 * prefetch rows: in ids or positions, not bytes. */
#define PE_PREFETCH_DIST 16

/* The one way a kernel learns who it is inside `PE_OMP(omp parallel ...)`: this thread's index,
 * and the team's size in *nth unless nth is NULL (0 and 1 in a serial build or outside a
 * parallel region). Shares are cut from the team's real size, never from the size asked for. */
#ifdef _OPENMP
#include <omp.h>
#endif
static inline size_t pe_team(size_t *nth) {
#ifdef _OPENMP
    if (nth) *nth = (size_t)omp_get_num_threads();
    return (size_t)omp_get_thread_num();
#else
    if (nth) *nth = 1;
    return 0;
#endif
}

/* The rows a Table's backward wrote since its last zero_grad (zero_grad clears only those):
 * mark (num_rows,) is 1 exactly for the rows in rows[0 .. *n); rows has room for num_rows. */
typedef struct {
    uint8_t *mark;
    int64_t *rows;
    size_t *n;
} pe_touched;

/* Add row r to the list unless it is there already. */
static inline void pe_touch(const pe_touched *t, int64_t r) {
    if (!t->mark[r]) {
        t->mark[r] = 1;
        t->rows[(*t->n)++] = r;
    }
}

#endif
