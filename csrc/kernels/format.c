/* Word-vector file writing (see format.h for shapes and promises).
 *
 * Each value is the shortest decimal that the reader in parse.c turns back into the same bits:
 * float32 by a printf-free search over 1..9 digits where the value scales exactly (Clinger's
 * range, the reader's fast path), else by trying "%.{p}g" for growing p. printf runs under
 * parse.c's "C" locale (pe_c_locale), so a user's setlocale(LC_NUMERIC, ...) cannot change the
 * decimal point.
 */
#include "format.h"
#include "parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * text output */

#define PE_MAX_NUM_CHARS 32 /* "-1.2345678901234567e-308" is 24; plus the separator */

size_t pe_format_text_bound(const int64_t *wstart, const int64_t *wend, size_t n, size_t d) {
    size_t total = 0, per_row = pe_mul_size(d, PE_MAX_NUM_CHARS);
    if (per_row == SIZE_MAX || per_row > SIZE_MAX / 2) return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        size_t row = (size_t)(wend[i] - wstart[i]) + per_row + 1;
        if (total > SIZE_MAX - row) return SIZE_MAX;
        total += row;
    }
    return total;
}

/* Digits c (no trailing zeros, nd of them) times 10^(X - nd + 1), %g style: positional for
 * -4 <= X < 16 (as NumPy prints float32), else d.ddde[+-]XX. */
static int write_decimal(char *o, int neg, uint64_t c, int X) {
    char dig[24];
    int nd = 0;
    while (c >= 10 && c % 10 == 0) c /= 10;
    char rev[24];
    do {
        rev[nd++] = (char)('0' + (int)(c % 10));
        c /= 10;
    } while (c);
    for (int i = 0; i < nd; i++) dig[i] = rev[nd - 1 - i];
    char *p = o;
    if (neg) *p++ = '-';
    if (X >= -4 && X < 16) {
        if (X < 0) {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -X - 1; i++) *p++ = '0';
            memcpy(p, dig, (size_t)nd);
            p += nd;
        } else if (X >= nd - 1) {
            memcpy(p, dig, (size_t)nd);
            p += nd;
            for (int i = 0; i < X - nd + 1; i++) *p++ = '0';
        } else {
            memcpy(p, dig, (size_t)X + 1);
            p += X + 1;
            *p++ = '.';
            memcpy(p, dig + X + 1, (size_t)(nd - X - 1));
            p += nd - X - 1;
        }
    } else {
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, dig + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100) *p++ = (char)('0' + ax / 100);
        *p++ = (char)('0' + (ax / 10) % 10);
        *p++ = (char)('0' + ax % 10);
    }
    return (int)(p - o);
}

/* double of c * 10^e, exactly rounded (Clinger: c <= 2^53, |e| <= 22); 0 if out of range. */
static inline int exact_scaled(uint64_t c, int e, double *out) {
    if (c > ((uint64_t)1 << 53) || e < -22 || e > 22) return 0;
    *out = e < 0 ? (double)c / pe_pow10[-e] : (double)c * pe_pow10[e];
    return 1;
}

/* Shortest float32 decimal without printf: for p = 1..9 digits, c = round(|f| * 10^(p-1-E)),
 * kept when c * 10^(E-p+1) reads back (as np.float32(str) does) to f. The product may round
 * the wrong way near a half, which only costs a digit: every candidate is checked. Returns 0
 * when |f| is outside the exactly-scalable range (the caller then uses printf). */
static int format_f32_fast(char *o, float f) {
    double a = fabs((double)f);
    if (!(a >= 1e-13 && a < 1e21)) return 0;
    int E = (int)floor(log10(a));
    double c9;
    int k = 8 - E;
    if (k < -22 || k > 22) return 0;
    c9 = nearbyint(k < 0 ? a / pe_pow10[-k] : a * pe_pow10[k]);
    if (c9 >= 1e9) E++;
    else if (c9 < 1e8) E--;
    for (int p = 1; p <= 9; p++) {
        k = p - 1 - E;
        if (k < -22 || k > 22) return 0;
        double cd = nearbyint(k < 0 ? a / pe_pow10[-k] : a * pe_pow10[k]);
        uint64_t c = (uint64_t)cd;
        int X = E;
        if (c >= (uint64_t)pe_pow10[p]) { /* rounded up to the next power of ten */
            c /= 10;
            X++;
        }
        if (c == 0) continue;
        double back;
        if (!exact_scaled(c, X - p + 1, &back)) return 0;
        if ((float)back == (float)a) return write_decimal(o, signbit(f) != 0, c, X);
    }
    return 0;
}

/* Shortest "%.{p}g" that reads back (through pe_parse_number) to the same bits. */
static int format_value(char *o, double v, int is64) {
    if (!is64 && v != 0.0 && isfinite(v)) {
        int k = format_f32_fast(o, (float)v);
        if (k > 0) return k;
    }
    if (isnan(v)) {
        memcpy(o, "nan", 3);
        return 3;
    }
    if (isinf(v)) {
        if (v < 0) {
            memcpy(o, "-inf", 4);
            return 4;
        }
        memcpy(o, "inf", 3);
        return 3;
    }
    char tmp[48];
    int k = 0, p0 = is64 ? 15 : 6, p1 = is64 ? 17 : 9;
    for (int p = p0; p <= p1; p++) {
        k = snprintf(tmp, sizeof tmp, "%.*g", p, v);
        if (k <= 0 || k >= (int)sizeof tmp) return -1;
        double back;
        if (pe_parse_number(tmp, tmp + k, &back) != tmp + k) continue;
        int same;
        if (is64) {
            same = memcmp(&back, &v, sizeof v) == 0;
        } else {
            float a = (float)back, b = (float)v; /* compare bits: -0.0 == 0.0 as floats */
            same = memcmp(&a, &b, sizeof a) == 0;
        }
        if (same) break;
    }
    memcpy(o, tmp, (size_t)k);
    return k;
}

static int format_text(char *dst, size_t *written, const char *words, const int64_t *wstart,
                       const int64_t *wend, const float *v32, const double *v64, size_t n,
                       size_t d) {
    *written = 0;
    if (n == 0) return PE_OK;
    size_t *off = (size_t *)malloc(n * sizeof(size_t));
    size_t *used = (size_t *)malloc(n * sizeof(size_t));
    int rc = PE_OK;
    if (!off || !used) {
        rc = PE_ERR_NOMEM;
        goto fail;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        off[i] = total;
        total += (size_t)(wend[i] - wstart[i]) + d * PE_MAX_NUM_CHARS + 1;
    }
    int bad = 0;
    int nt = pe_threads_for(pe_mul_size(n, d) * 64, n);
    (void)nt;
    PE_OMP(omp parallel num_threads(nt) if (nt > 1) reduction(| : bad))
    {
#ifdef PE_HAVE_LOCALE_T
        locale_t loc = pe_c_locale(), old = (locale_t)0;
        if (loc != (locale_t)0) old = uselocale(loc);
#endif
        PE_OMP(omp for schedule(dynamic, 64))
        for (int64_t ii = 0; ii < (int64_t)n; ii++) {
            size_t i = (size_t)ii;
            char *o = dst + off[i];
            size_t wl = (size_t)(wend[i] - wstart[i]);
            memcpy(o, words + wstart[i], wl);
            o += wl;
            for (size_t j = 0; j < d; j++) {
                *o++ = ' ';
                int k = format_value(o, v32 ? (double)v32[i * d + j] : v64[i * d + j], v64 != NULL);
                if (k < 0) {
                    bad = 1;
                    k = 0;
                }
                o += k;
            }
            *o++ = '\n';
            used[i] = (size_t)(o - (dst + off[i]));
        }
#ifdef PE_HAVE_LOCALE_T
        if (loc != (locale_t)0) uselocale(old);
#endif
    }
    if (bad) {
        rc = PE_ERR_VALUE;
        goto fail;
    }
    /* close the gaps between the rows' slots */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w != off[i]) memmove(dst + w, dst + off[i], used[i]);
        w += used[i];
    }
    *written = w;
fail:
    free(off);
    free(used);
    return rc;
}

int pe_format_text_f32(char *dst, size_t *written, const char *words, const int64_t *wstart,
                       const int64_t *wend, const float *vecs, size_t n, size_t d) {
    return format_text(dst, written, words, wstart, wend, vecs, NULL, n, d);
}

int pe_format_text_f64(char *dst, size_t *written, const char *words, const int64_t *wstart,
                       const int64_t *wend, const double *vecs, size_t n, size_t d) {
    return format_text(dst, written, words, wstart, wend, NULL, vecs, n, d);
}

void pe_format_binary_f32(char *dst, const char *words, const int64_t *wstart, const int64_t *wend,
                          const float *vecs, size_t n, size_t d) {
    /* row i starts after the words and vectors of the rows before it */
    size_t rec = 4 * d, pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t wl = (size_t)(wend[i] - wstart[i]);
        char *o = dst + pos;
        memcpy(o, words + wstart[i], wl);
        o[wl] = ' ';
        o += wl + 1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(o, vecs + i * d, rec);
#else
        for (size_t j = 0; j < d; j++) {
            uint32_t u;
            memcpy(&u, vecs + i * d + j, 4);
            for (int b = 0; b < 4; b++) o[4 * j + (size_t)b] = (char)(u >> (8 * b));
        }
#endif
        pos += wl + 1 + rec;
    }
}
