/* Word-vector file parsing (see parse.h for shapes and promises; the writer is format.c).
 *
 * The number reader matches np.float32(s) / float(s) bit for bit:
 *   - Clinger's fast path (W. D. Clinger, "How to read floating point numbers accurately",
 *     PLDI 1990): a decimal w * 10^e with w <= 2^53 and |e| <= 22 is exactly w and 10^|e| as
 *     doubles, so one IEEE multiplication or division gives the correctly rounded double;
 *   - everything else (more digits, big exponents, inf/nan) goes to strtod in the "C" locale,
 *     correctly rounded on glibc;
 *   - float32 is then (float)double, the double rounding NumPy and gensim do.
 */
#define _GNU_SOURCE
#include "parse.h"

#include <float.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------
 * the "C" locale, so that a user's setlocale(LC_NUMERIC, "de_DE") changes nothing */
#ifdef PE_HAVE_LOCALE_T
static locale_t g_c_locale = (locale_t)0;
static pthread_once_t g_c_locale_once = PTHREAD_ONCE_INIT;
static void init_c_locale(void) { g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }
locale_t pe_c_locale(void) {
    pthread_once(&g_c_locale_once, init_c_locale);
    return g_c_locale;
}
#endif

static double strtod_c(const char *s, char **end) {
#ifdef PE_HAVE_LOCALE_T
    locale_t loc = pe_c_locale();
    if (loc != (locale_t)0) return strtod_l(s, end, loc);
#endif
    return strtod(s, end);
}

/* ---------------------------------------------------------------------------------------------
 * numbers */

static inline int is_sep(char c) { return c == ' ' || c == '\t' || c == '\r'; }
static inline int is_digit(char c) { return (unsigned)(c - '0') < 10u; }

const double pe_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                             1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                             1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The token [p, te) through strtod; the whole token must be consumed. Python's float() (which
 * gensim's loader calls through np.float32) takes no hex and no "nan(...)", so neither do we, and
 * it takes single underscores between digits ("1_000.5", PEP 515), so we drop those. Non-ASCII
 * digits, which float() also reads, are left to the glue (csrc/py/parse.c). */
static int slow_number(const char *p, const char *te, double *out) {
    char tmp[128];
    size_t n = (size_t)(te - p), k = 0;
    if (n == 0 || n >= sizeof tmp) return -1;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == 'x' || c == 'X' || c == '(' || c == '\0') return -1;
        if (c == '_') {
            if (i == 0 || i + 1 == n || !is_digit(p[i - 1]) || !is_digit(p[i + 1])) return -1;
            continue;
        }
        tmp[k++] = c;
    }
    tmp[k] = '\0';
    char *end = NULL;
    double v = strtod_c(tmp, &end);
    if (end != tmp + k) return -1;
    *out = v;
    return 0;
}

/* Parse the number at p (p < end, not a separator). Returns the end of the token, or NULL if
 * the token [p, next separator) is not a number. */
static inline const char *parse_number(const char *p, const char *end, double *out) {
    const char *s = p;
    int neg = 0;
    if (*p == '-' || *p == '+') {
        neg = *p == '-';
        p++;
    }
    uint64_t w = 0;
    int nd = 0, exp10 = 0, ndigits = 0, slow = 0;
    while (p < end && is_digit(*p)) {
        if (nd < 19) {
            w = w * 10 + (uint64_t)(*p - '0');
            if (w) nd++;
        } else {
            slow = 1;
        }
        ndigits++;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) {
            if (nd < 19) {
                w = w * 10 + (uint64_t)(*p - '0');
                if (w) nd++;
                exp10--;
            } else {
                slow = 1;
            }
            ndigits++;
            p++;
        }
    }
    if (ndigits == 0) slow = 1; /* inf, nan, or garbage */
    if (!slow && p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0, edigits = 0;
        if (p < end && (*p == '-' || *p == '+')) {
            eneg = *p == '-';
            p++;
        }
        while (p < end && is_digit(*p)) {
            if (edigits < 6) e = e * 10 + (*p - '0');
            edigits++;
            p++;
        }
        if (edigits == 0 || edigits >= 6) slow = 1;
        exp10 += eneg ? -e : e;
    }
    if (!slow && p < end && !is_sep(*p)) slow = 1;
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
    slow = 1; /* x87 extended precision would round twice: Clinger's path is not exact there */
#endif
    if (!slow) {
        if (w == 0) {
            *out = neg ? -0.0 : 0.0;
            return p;
        }
        if (w <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
            double v = (double)w;
            v = exp10 < 0 ? v / pe_pow10[-exp10] : v * pe_pow10[exp10];
            *out = neg ? -v : v;
            return p;
        }
    }
    const char *te = s;
    while (te < end && !is_sep(*te)) te++;
    if (slow_number(s, te, out) != 0) return NULL;
    return te;
}

const char *pe_parse_number(const char *p, const char *end, double *out) {
    return parse_number(p, end, out);
}

static inline void store(float *o32, double *o64, size_t k, double v) {
    if (o32) o32[k] = (float)v;
    else o64[k] = v;
}

/* The last d fields of the line as numbers, everything before them (trimmed) as the word. */
static int parse_line_backward(float *o32, double *o64, int64_t *wend, const char *buf,
                               int64_t start, int64_t end, size_t d) {
    const char *ls = buf + start, *p = buf + end;
    while (p > ls && is_sep(p[-1])) p--;
    for (size_t k = d; k-- > 0;) {
        const char *te = p;
        while (p > ls && !is_sep(p[-1])) p--;
        if (p == te) return -1;
        double v;
        if (parse_number(p, te, &v) != te) return -1;
        store(o32, o64, k, v);
        while (p > ls && is_sep(p[-1])) p--;
    }
    if (p == ls) return -1;
    *wend = (int64_t)(p - buf);
    return 0;
}

/* One line "word v1 ... vd" (see parse.h). 0, or a PE_PARSE_* kind with *e filled. */
static int parse_line(float *o32, double *o64, int64_t *wend, const char *buf, int64_t start,
                      int64_t end, size_t d, pe_parse_error *e) {
    const char *p = buf + start, *le = buf + end;
    /* the word ends at the first ' ' (gensim's split(" ")) or '\t' (tab-separated files; a
     * word with a tab inside still comes out whole through the backward pass below) */
    const char *sp = p;
    while (sp < le && *sp != ' ' && *sp != '\t') sp++;
    *wend = (int64_t)(sp - buf);
    p = sp;
    size_t k = 0;
    for (;;) {
        while (p < le && is_sep(*p)) p++;
        if (p >= le) break;
        if (k == d) {
            size_t extra = 0;
            const char *at = p;
            while (p < le) {
                while (p < le && !is_sep(*p)) p++;
                extra++;
                while (p < le && is_sep(*p)) p++;
            }
            e->kind = PE_PARSE_MANY_VALUES;
            e->field = (int64_t)d;
            e->found = (int64_t)(d + extra);
            e->offset = (int64_t)(at - buf);
            return e->kind;
        }
        double v;
        const char *q = parse_number(p, le, &v);
        if (!q) {
            if (d > 0 && parse_line_backward(o32, o64, wend, buf, start, end, d) == 0) return 0;
            e->kind = PE_PARSE_BAD_NUMBER;
            e->field = (int64_t)k;
            e->found = (int64_t)k;
            e->offset = (int64_t)(p - buf);
            return e->kind;
        }
        store(o32, o64, k, v);
        k++;
        p = q;
    }
    if (k < d) {
        e->kind = PE_PARSE_FEW_VALUES;
        e->field = (int64_t)k;
        e->found = (int64_t)k;
        e->offset = (int64_t)(le - buf);
        return e->kind;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * lines */

int pe_index_lines(int64_t *starts, int64_t *ends, const char *buf, size_t len, size_t max_rows,
                   size_t *nrows, size_t *consumed) {
    size_t pos = 0, n = 0;
    while (n < max_rows && pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - buf) : len;
        size_t next = nl ? e + 1 : len;
        int blank = 1;
        for (size_t i = pos; i < e; i++) {
            if (!is_sep(buf[i])) {
                blank = 0;
                break;
            }
        }
        if (!blank) {
            if (starts) {
                starts[n] = (int64_t)pos;
                ends[n] = (int64_t)e;
            }
            n++;
        }
        pos = next;
    }
    *nrows = n;
    *consumed = pos;
    return PE_OK;
}

static int parse_text(float *o32, double *o64, int64_t *word_end, const char *buf,
                      const int64_t *starts, const int64_t *ends, size_t n, size_t d,
                      pe_parse_error *err) {
    if (n == 0) return PE_OK;
    int64_t first_bad = (int64_t)n;
    size_t bytes = (size_t)(ends[n - 1] - starts[0]);
    int nt = pe_threads_for(bytes, n / 64 + 1);
    (void)nt;
    PE_OMP(omp parallel for num_threads(nt) schedule(dynamic, 512) reduction(min : first_bad) if (nt > 1))
    for (int64_t i = 0; i < (int64_t)n; i++) {
        if (first_bad <= i) continue; /* this thread already failed earlier */
        pe_parse_error e;
        if (parse_line(o32 ? o32 + (size_t)i * d : NULL, o64 ? o64 + (size_t)i * d : NULL,
                       word_end + i, buf, starts[i], ends[i], d, &e) != 0)
            first_bad = i;
    }
    if (first_bad < (int64_t)n) {
        size_t i = (size_t)first_bad;
        memset(err, 0, sizeof *err);
        parse_line(o32 ? o32 + i * d : NULL, o64 ? o64 + i * d : NULL, word_end + i, buf,
                   starts[i], ends[i], d, err);
        err->row = first_bad;
        return PE_ERR_PARSE;
    }
    return PE_OK;
}

int pe_parse_text_f32(float *out, int64_t *word_end, const char *buf, const int64_t *starts,
                      const int64_t *ends, size_t n, size_t d, pe_parse_error *err) {
    return parse_text(out, NULL, word_end, buf, starts, ends, n, d, err);
}

int pe_parse_text_f64(double *out, int64_t *word_end, const char *buf, const int64_t *starts,
                      const int64_t *ends, size_t n, size_t d, pe_parse_error *err) {
    return parse_text(NULL, out, word_end, buf, starts, ends, n, d, err);
}

/* ---------------------------------------------------------------------------------------------
 * word2vec binary */

static inline float load_f32le(const char *p) {
    uint32_t u = (uint32_t)(unsigned char)p[0] | (uint32_t)(unsigned char)p[1] << 8 |
                 (uint32_t)(unsigned char)p[2] << 16 | (uint32_t)(unsigned char)p[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int parse_binary(float *o32, double *o64, int64_t *ws, int64_t *we, const char *buf,
                        size_t len, size_t n, size_t d, size_t *consumed, pe_parse_error *err) {
    size_t pos = 0, rec = pe_mul_size(d, 4);
    if (rec == SIZE_MAX) return PE_ERR_OVERFLOW;
    for (size_t i = 0; i < n; i++) {
        /* the C tool writes '\n' after each vector, gensim does not: skip it when present */
        while (pos < len && buf[pos] == '\n') pos++;
        const char *sp = pos < len ? memchr(buf + pos, ' ', len - pos) : NULL;
        size_t vs = sp ? (size_t)(sp - buf) + 1 : 0;
        if (!sp || len - vs < rec) {
            memset(err, 0, sizeof *err);
            err->row = (int64_t)i;
            err->kind = PE_PARSE_TRUNCATED;
            err->found = sp ? (int64_t)((len - vs) / 4) : 0;
            err->offset = (int64_t)pos;
            *consumed = pos;
            return PE_ERR_PARSE;
        }
        ws[i] = (int64_t)pos;
        we[i] = (int64_t)(sp - buf);
        const char *src = buf + vs;
        if (o32) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            memcpy(o32 + i * d, src, rec);
#else
            for (size_t j = 0; j < d; j++) o32[i * d + j] = load_f32le(src + 4 * j);
#endif
        } else {
            for (size_t j = 0; j < d; j++) o64[i * d + j] = (double)load_f32le(src + 4 * j);
        }
        pos = vs + rec;
    }
    *consumed = pos;
    return PE_OK;
}

int pe_parse_binary_f32(float *out, int64_t *word_start, int64_t *word_end, const char *buf,
                        size_t len, size_t n, size_t d, size_t *consumed, pe_parse_error *err) {
    return parse_binary(out, NULL, word_start, word_end, buf, len, n, d, consumed, err);
}

int pe_parse_binary_f64(double *out, int64_t *word_start, int64_t *word_end, const char *buf,
                        size_t len, size_t n, size_t d, size_t *consumed, pe_parse_error *err) {
    return parse_binary(NULL, out, word_start, word_end, buf, len, n, d, consumed, err);
}

void pe_join_words(char *dst, const char *buf, const int64_t *starts, const int64_t *ends,
                   size_t n) {
    for (size_t i = 0; i < n; i++) {
        size_t l = (size_t)(ends[i] - starts[i]);
        memcpy(dst, buf + starts[i], l);
        dst += l;
        if (i + 1 < n) *dst++ = '\n';
    }
}
