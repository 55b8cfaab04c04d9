/*
 * avx512_internal.h — small AVX-512F helpers shared by the files compiled
 * with -mavx512f (gemm_avx512.c, ops_avx512.c).  Include only from those.
 */
#ifndef MILES_AVX512_INTERNAL_H
#define MILES_AVX512_INTERNAL_H

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

/* 16 x 16 transpose in registers: 2-lane interleaves, then 4-lane, then
 * 128-bit blocks twice (64 shuffles where 16 gathers cost several times
 * more on AMD cores).  r[i] lane j <- r[j] lane i. */
static inline void miles_tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 2; i++)
        for (int q = 0; q < 4; q++) {
            t[8 * i + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0x88);
            t[8 * i + 4 + q] = _mm512_shuffle_f32x4(r[8 * i + q], r[8 * i + 4 + q], 0xDD);
        }
    for (int q = 0; q < 8; q++) {
        r[q] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(t[q], t[8 + q], 0xDD);
    }
}
#endif

#endif
