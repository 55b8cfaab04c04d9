/*
 * util.c — the small algorithms shared by every module (internal.h): the
 * seeded shuffle, a stable sort with a context argument, a shape's text.
 */
#include "internal.h"

#include <stdio.h>

int miles_days_in_month(int64_t y, int m) {
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dm[m - 1] + (m == 2 && leap);
}

uint64_t miles_rand_below(uint64_t *state, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = miles_splitmix64(state); while (x >= lim);
    return x % n;
}

void miles_shuffle(void *base, size_t n, size_t size, uint64_t *state) {
    unsigned char *a = base, tmp[16];
    if (size > sizeof tmp) return;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)miles_rand_below(state, (uint64_t)i + 1);
        memcpy(tmp, a + i * size, size);
        memcpy(a + i * size, a + j * size, size);
        memcpy(a + j * size, tmp, size);
    }
}

/* Bottom-up merge sort: runs of width w are merged from src into dst, and the
 * buffers swap roles until one run covers everything. */
int miles_sort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx) {
    if (n < 2) return MILES_OK;
    unsigned char *buf = miles_malloc(n * size);
    if (!buf) return MILES_ENOMEM;
    unsigned char *src = base, *dst = buf;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                /* <= keeps equal elements in their input order (stable) */
                if (cmp(src + i * size, src + j * size, ctx) <= 0) memcpy(dst + k++ * size, src + i++ * size, size);
                else memcpy(dst + k++ * size, src + j++ * size, size);
            }
            memcpy(dst + k * size, src + i * size, (mid - i) * size);
            k += mid - i;
            memcpy(dst + k * size, src + j * size, (hi - j) * size);
        }
        unsigned char *t = src; src = dst; dst = t;
    }
    if (src != base) memcpy(base, src, n * size);
    free(buf);
    return MILES_OK;
}

void miles_shape_str(char *out, size_t cap, int ndim, const int64_t *shape) {
    if (!cap) return;
    size_t n = 0;
    out[0] = '\0';
    n += (size_t)snprintf(out + n, cap - n, "[");
    for (int k = 0; k < ndim && n < cap; k++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", k ? "," : "", (long long)shape[k]);
    if (n < cap) snprintf(out + n, cap - n, "]");
}
