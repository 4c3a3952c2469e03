/* Stable radix grouping of ids (see sort.h). Used by scatter-add, renorm and the touched list.
 *
 * Why radix and not a vocabulary-sized count: a count array of num_rows entries would make a
 * backward over 8k ids into a 128k-row table cost 128k, which DESIGN.md forbids. LSD passes of
 * 11 bits cost O(n) each and a 2^17-row table needs two.
 */
#include "sort.h"

#include <stdlib.h>
#include <string.h>

#define RADIX_BITS 11
#define RADIX_SIZE (1u << RADIX_BITS)

static int bits_for(int64_t bound) {
    int b = 0;
    uint64_t v = bound > 0 ? (uint64_t)(bound - 1) : 0;
    while (v) {
        b++;
        v >>= 1;
    }
    return b;
}

/* perm[0..m) holds positions; sort them stably by key[perm[i]] using tmp (m,) as scratch. */
static void radix_by_key(size_t *perm, size_t *tmp, size_t m, const int64_t *key, int bits,
                         size_t *hist) {
    size_t *src = perm, *dst = tmp;
    int passes = 0;
    for (int shift = 0; shift < bits; shift += RADIX_BITS) {
        memset(hist, 0, RADIX_SIZE * sizeof(size_t));
        for (size_t i = 0; i < m; i++) hist[((uint64_t)key[src[i]] >> shift) & (RADIX_SIZE - 1)]++;
        size_t sum = 0;
        for (size_t b = 0; b < RADIX_SIZE; b++) {
            size_t c = hist[b];
            hist[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < m; i++) {
            size_t p = src[i];
            dst[hist[((uint64_t)key[p] >> shift) & (RADIX_SIZE - 1)]++] = p;
        }
        size_t *t = src;
        src = dst;
        dst = t;
        passes++;
    }
    if (passes & 1) memcpy(perm, tmp, m * sizeof(size_t));
}

int pe_group_ids(size_t *perm, size_t *seg, size_t *m_out, size_t *nseg_out,
                 const int64_t *ids, size_t n, int64_t num_rows, int64_t skip) {
    size_t *tmp = NULL, *hist = NULL;
    int bits = bits_for(num_rows);
    if (n > 1 && bits > 0) {
        tmp = (size_t *)malloc(n * sizeof(size_t));
        hist = (size_t *)malloc(RADIX_SIZE * sizeof(size_t));
        if (!tmp || !hist) {
            free(tmp);
            free(hist);
            return PE_ERR_NOMEM;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != skip) perm[m++] = i;
    if (m > 1 && bits > 0) radix_by_key(perm, tmp, m, ids, bits, hist);
    size_t nseg = 0;
    for (size_t i = 0; i < m; i++) {
        if (i == 0 || ids[perm[i]] != ids[perm[i - 1]]) seg[nseg++] = i;
    }
    seg[nseg] = m;
    *m_out = m;
    *nseg_out = nseg;
    free(tmp);
    free(hist);
    return PE_OK;
}

int pe_sort_rows(int64_t *vals, size_t n, int64_t bound) {
    if (n < 2) return PE_OK;
    size_t *perm = (size_t *)malloc(n * sizeof(size_t));
    size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));
    int64_t *out = (int64_t *)malloc(n * sizeof(int64_t));
    int rc = PE_ERR_NOMEM;
    if (perm && seg && out) {
        size_t m, nseg;
        rc = pe_group_ids(perm, seg, &m, &nseg, vals, n, bound, -1);
        if (rc == PE_OK) {
            for (size_t i = 0; i < m; i++) out[i] = vals[perm[i]];
            memcpy(vals, out, m * sizeof(int64_t));
        }
    }
    free(perm);
    free(seg);
    free(out);
    return rc;
}
