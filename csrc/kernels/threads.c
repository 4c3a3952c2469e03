/* Thread policy and aligned buffers shared by every kernel (see common.h). */
#include "common.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

static atomic_int g_num_threads = 0; /* 0: not yet read from the environment */
static int g_forked_child = 0;
static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;

static void pe_after_fork_child(void) { g_forked_child = 1; }
static void pe_register_fork_handler(void) { pthread_atfork(NULL, NULL, pe_after_fork_child); }

int pe_forked_child(void) {
    pthread_once(&g_fork_once, pe_register_fork_handler);
    return g_forked_child;
}

static int pe_default_threads(void) {
    const char *env = getenv("PYEMBED_NUM_THREADS");
    if (env && *env) {
        char *end = NULL;
        long v = strtol(env, &end, 10);
        if (end != env && *end == '\0' && v >= 1 && v <= 4096) return (int)v;
    }
#ifdef _OPENMP
    {
        int n = omp_get_max_threads();
        return n >= 1 ? n : 1;
    }
#else
    return 1;
#endif
}

/* g_num_threads is read by kernels running without the GIL while another Python thread may set
 * it: relaxed atomics (any value read is one that was set; no ordering is needed). */
int pe_get_num_threads(void) {
    int n = atomic_load_explicit(&g_num_threads, memory_order_relaxed);
    if (n == 0) {
        n = pe_default_threads();
        atomic_store_explicit(&g_num_threads, n, memory_order_relaxed);
    }
    return pe_forked_child() ? 1 : n;
}

void pe_set_num_threads(int n) {
    (void)pe_get_num_threads(); /* registers the fork handler */
    atomic_store_explicit(&g_num_threads, n >= 1 ? n : 1, memory_order_relaxed);
}

int pe_have_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int pe_threads_for(size_t work_bytes, size_t max_items) {
    int nt = pe_get_num_threads();
    if (nt <= 1 || work_bytes < PE_PAR_MIN_BYTES) return 1;
    /* one thread per PE_PAR_MIN_BYTES of work at most: small jobs on many cores lose */
    size_t by_work = work_bytes / PE_PAR_MIN_BYTES;
    if ((size_t)nt > by_work) nt = (int)(by_work > 0 ? by_work : 1);
    if (max_items > 0 && (size_t)nt > max_items) nt = (int)max_items;
    return nt >= 1 ? nt : 1;
}

#define PE_HUGEPAGE_MIN_BYTES ((size_t)4 << 20)

static void *aligned_calloc(size_t nbytes, int huge_pages) {
    /* calloc + manual alignment keeps calloc's lazily-zeroed pages for large buffers; the
     * original pointer is stored just before the aligned block. */
    (void)huge_pages; /* no advice off Linux */
    if (nbytes > SIZE_MAX - 64 - sizeof(void *)) return NULL;
    size_t total = nbytes + 64 + sizeof(void *);
    void *raw = calloc(1, total);
    if (!raw) return NULL;
    uintptr_t start = (uintptr_t)raw + sizeof(void *);
    uintptr_t aligned = (start + 63u) & ~(uintptr_t)63u;
    ((void **)aligned)[-1] = raw;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* Tables are read and written at random rows: with 4 KiB pages every row of a large table is
     * a TLB miss, and the page walk costs more than the row (bags: 1.8 -> 1.2 ms on 100000 x 64).
     * Ask for transparent huge pages on the 2 MiB-aligned interior before anything touches the
     * memory (NumPy does the same for arrays >= 4 MiB). Only a hint: failures are ignored. */
    if (huge_pages && nbytes >= PE_HUGEPAGE_MIN_BYTES) {
        const uintptr_t huge = (uintptr_t)1 << 21;
        uintptr_t a = (aligned + huge - 1) & ~(huge - 1), e = (aligned + nbytes) & ~(huge - 1);
        if (e > a) (void)madvise((void *)a, (size_t)(e - a), MADV_HUGEPAGE);
    }
#endif
    return (void *)aligned;
}

void *pe_aligned_calloc(size_t nbytes) { return aligned_calloc(nbytes, 1); }

void *pe_aligned_calloc_small_pages(size_t nbytes) { return aligned_calloc(nbytes, 0); }

void pe_aligned_free(void *p) {
    if (p) free(((void **)p)[-1]);
}

/* Last-level cache size in bytes: glibc's sysconf, else sysfs, else 0 (unknown). */
static size_t pe_llc_bytes(void) {
    long v = 0;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v <= 0) v = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
#if defined(__linux__)
    if (v <= 0) {
        for (int idx = 3; idx >= 2 && v <= 0; idx--) {
            char path[64], buf[32];
            snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", idx);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            if (fgets(buf, sizeof buf, f)) {
                char *end = NULL;
                long k = strtol(buf, &end, 10);
                if (end != buf && k > 0) v = (*end == 'M') ? k << 20 : (*end == 'K') ? k << 10 : k;
            }
            fclose(f);
        }
    }
#endif
    return v > 0 ? (size_t)v : 0;
}

static size_t g_stream_min = 0; /* 0: not yet decided */

size_t pe_llc_size(void) {
    static size_t llc = (size_t)-1;
    if (llc == (size_t)-1) llc = pe_llc_bytes();
    return llc;
}

size_t pe_stream_min_bytes(void) {
    if (g_stream_min == 0) {
        const char *env = getenv("PYEMBED_STREAM_MIN_BYTES");
        size_t v = 0;
        if (env && *env >= '0' && *env <= '9') { /* digits only: no sign, no spaces */
            char *end = NULL;
            unsigned long long x = strtoull(env, &end, 10);
            const unsigned long long cap = (unsigned long long)(SIZE_MAX / 4); /* x GRAD_FACTOR */
            if (*end == '\0') v = x == 0 ? 1 : x > cap ? (size_t)cap : (size_t)x;
        }
        if (v == 0) {
            /* a sixteenth of the last-level cache, at least 4 MiB. The LLC is shared with the
             * other cores (and, in a VM, other tenants): on a 480 MiB L3 a 24 MiB gather output
             * was faster through the cache and a 32 MiB one streamed, once other work ran in
             * between (alone in a loop, everything up to ~100 MiB stayed cached); on a 48 MiB L3,
             * 4 MiB was the measured best. */
            size_t llc = pe_llc_size();
            v = llc / 16 > ((size_t)4 << 20) ? llc / 16 : ((size_t)4 << 20);
        }
        g_stream_min = v;
    }
    return g_stream_min;
}

void pe_set_stream_min_bytes(size_t n) { g_stream_min = n ? n : 1; }
