/*
 * gemm_lowp_asm.h — the inline-asm scaffolding of the two 6-row ymm int8
 * kernels (gemm_lowp_avxvnni.c, gemm_lowp_avx2.c); each file defines its own
 * step SF_(lo, hi) and loop INT8_LOOP(M) around these.  Internal.
 *
 * Rows i < m accumulate in ymm i (lo) and ymm 6+i (hi); rows 3j..3j+2 of x
 * are read at p_j, p_j + rs, p_j + 2 rs (A_0..A_5).
 */
#ifndef MILES_GEMM_LOWP_ASM_H
#define MILES_GEMM_LOWP_ASM_H

#include <stdint.h>

#define A_0 "(%[p0])"
#define A_1 "(%[p0],%[rs],1)"
#define A_2 "(%[p0],%[rs],2)"
#define A_3 "(%[p1])"
#define A_4 "(%[p1],%[rs],1)"
#define A_5 "(%[p1],%[rs],2)"
#define Z_(r) "vpxor %%xmm" #r ", %%xmm" #r ", %%xmm" #r "\n\t"
#define ZF_(lo, hi) Z_(lo) Z_(hi)
#define TF_(lo, hi) "vmovdqu %%ymm" #lo ", " #lo "*32(%[acc])\n\t" "vmovdqu %%ymm" #hi ", " #hi "*32(%[acc])\n\t"
#define ROW1(F) F(0, 6)
#define ROW2(F) ROW1(F) F(1, 7)
#define ROW3(F) ROW2(F) F(2, 8)
#define ROW4(F) ROW3(F) F(3, 9)
#define ROW5(F) ROW4(F) F(4, 10)
#define ROW6(F) ROW5(F) F(5, 11)

/* The loop's tail: the step's pointer bumps, the branch, the stores of
 * the accumulators, and the asm operands and clobbers (ymm0-15) */
#define LOWP_ASM_TAIL(M, XSTEP)                                                           \
    "add $" #XSTEP ", %[p0]\n\t"                                                          \
    "add $" #XSTEP ", %[p1]\n\t"                                                          \
    "add $64, %[w]\n\t"                                                                  \
    "dec %[k]\n\t"                                                                       \
    "jnz 1b\n\t" ROW##M(TF_)                                                              \
    : [p0] "+r"(p0), [p1] "+r"(p1), [w] "+r"(wp), [k] "+r"(kk)                            \
    : [rs] "r"(rs), [acc] "r"(acc)                                                        \
    : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",      \
      "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc"

/* INT8_LOOP(m) over the kq steps of rows [0, m) of x (row stride x_rs
 * words) and the W panel w, into acc (in scope).  Integer addresses: rows
 * >= m are never read, their pointers may lie past x. */
#define LOWP_RUN_ROWS6(m, x, x_rs, w, kq)                                                 \
    do {                                                                                  \
        const long rs = (long)((x_rs) * sizeof(uint32_t));                                \
        uintptr_t p0 = (uintptr_t)(x), p1 = p0 + 3 * rs;                                  \
        const uint32_t *wp = (w);                                                         \
        long kk = (kq);                                                                   \
        switch (m) {                                                                      \
        case 6: INT8_LOOP(6); break;                                                      \
        case 5: INT8_LOOP(5); break;                                                      \
        case 4: INT8_LOOP(4); break;                                                      \
        case 3: INT8_LOOP(3); break;                                                      \
        case 2: INT8_LOOP(2); break;                                                      \
        default: INT8_LOOP(1); break;                                                     \
        }                                                                                 \
    } while (0)

#endif
