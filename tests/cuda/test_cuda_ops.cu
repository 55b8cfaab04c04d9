/*
 * test_cuda_ops.cu — every CUDA op (kernels/) against its CPU reference
 * (libmiles/ops.c, ops_attention.c, dropout.c, gemm.c, and optim.c's AdamW /
 * clipping formulas), on random inputs with awkward sizes (odd, not multiples
 * of 4/32, padding rows, repeated ids).
 *
 * Error measure, printed for every check:
 *   max_abs  = max |gpu - cpu|
 *   scaled   = max_abs / max(1, max |cpu|)   (absolute error for O(1) values,
 *                                             relative to the output's scale
 *                                             for GEMM outputs and sums)
 * A check passes when scaled <= tol.  Tolerances:
 *   fp32 ops                      1e-5  (GEMM-based ones: relative to scale)
 *   dropout masks, casts, pooling 0     (bit-identical required where stated)
 *   TF32 / FP16 GEMM math modes   2e-3  (inputs rounded to 10-11 mantissa bits)
 *   BF16 GEMM math mode           1.5e-2 (8 mantissa bits)
 *   16-bit storage GEMM (gemm_ex) 1e-5 against the CPU GEMM on the same
 *                                 rounded inputs (fp32 accumulation)
 *
 * Usage: test_cuda_ops [--quick] [--only SECTION]   (--quick: smaller sizes,
 * for compute-sanitizer and the emulator; SECTION: gemm, casts, linear,
 * layernorm, embedding, attention, activations, dropout, pooling, losses,
 * optimizer).  Exits 0 when all pass, 1 on any failure, and 0 with "no CUDA
 * device" when there is no GPU (so CPU-only CI can run it).
 *
 * The same program runs in the SIMT emulator (tests/sim, make sim-test): the
 * kernels execute on the CPU, every check is also recorded for the
 * emulator's per-kernel error table, and the run fails on any undefined
 * behaviour the emulator reports or any leaked device allocation.
 */
#include "common.cuh"
#include "model_cuda_internal.h" /* the model's deterministic embedding backward */
#include "philox.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>
#include <vector>

#include "op_test.h"

/* ---------------------------------------------------------------- GEMM */

static void test_gemm(void) {
    const int M = 67, N = 45, K = 129;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
            auto A = rnd_vec((size_t)(ta ? K : M) * lda), B = rnd_vec((size_t)(tb ? N : K) * ldb);
            auto C = rnd_vec((size_t)M * ldc);
            Dev<float> dA(A), dB(B), dC(C);
            float alpha = 0.75f, beta = -0.5f;
            miles_gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
            OPOK(miles_gemm_cuda(ta, tb, M, N, K, alpha, dA.p, lda, dB.p, ldb, beta, dC.p, ldc, STREAM));
            char name[64];
            snprintf(name, sizeof name, "gemm fp32 transA=%d transB=%d", ta, tb);
            check(name, dC.down().data(), C.data(), C.size(), 1e-5);
        }

    /* math modes: same problem, looser tolerances */
    const int modes[3] = {MILES_CUDA_MATH_TF32, MILES_CUDA_MATH_FP16, MILES_CUDA_MATH_BF16};
    const double tols[3] = {2e-3, 2e-3, 1.5e-2};
    const char *names[3] = {"gemm math TF32", "gemm math FP16", "gemm math BF16"};
    auto A = rnd_vec((size_t)M * K), B = rnd_vec((size_t)K * N);
    std::vector<float> C(M * N, 0.0f);
    miles_gemm(0, 0, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
    Dev<float> dA(A), dB(B), dC((size_t)M * N);
    for (int i = 0; i < 3; i++) {
        int old = miles_cuda_set_math(modes[i]);
        if (modes[i] == MILES_CUDA_MATH_BF16 && g_cc < 80) {
            check_true("bf16 math refused below sm80", old == MILES_EUNSUPPORTED, miles_last_error());
            continue;
        }
        if (old < 0) {
            check_true(names[i], 0, miles_last_error());
            continue;
        }
        OPOK(miles_gemm_cuda(0, 0, M, N, K, 1.0f, dA.p, K, dB.p, N, 0.0f, dC.p, N, STREAM));
        miles_cuda_set_math(MILES_CUDA_MATH_FP32);
        check(names[i], dC.down().data(), C.data(), C.size(), tols[i]);
    }

    /* bad leading dimension: an error with a message, not a crash */
    int st = miles_gemm_cuda(0, 0, M, N, K, 1.0f, dA.p, K - 1, dB.p, N, 0.0f, dC.p, N, STREAM);
    check_true("gemm rejects lda < K", st == MILES_EINVAL && strstr(miles_last_error(), "leading"),
               miles_last_error());

    /* strided batched: 3 independent problems */
    const int nb = 3;
    auto Ab = rnd_vec((size_t)nb * M * K), Bb = rnd_vec((size_t)nb * K * N);
    std::vector<float> Cb((size_t)nb * M * N, 0.0f);
    for (int b = 0; b < nb; b++)
        miles_gemm(0, 1, M, N, K, 1.0f, Ab.data() + (size_t)b * M * K, K,
                   Bb.data() + (size_t)b * K * N, K, 0.0f, Cb.data() + (size_t)b * M * N, N);
    Dev<float> dAb(Ab), dBb(Bb), dCb(Cb.size());
    OPOK(miles_gemm_strided_batched_cuda(0, 1, M, N, K, 1.0f, dAb.p, K, (long long)M * K, dBb.p,
                                         K, (long long)K * N, 0.0f, dCb.p, N, (long long)M * N, nb,
                                         STREAM));
    check("gemm strided batched (transB)", dCb.down().data(), Cb.data(), Cb.size(), 1e-5);
}

/* ---------------------------------------------------- casts + gemm_ex */

static void test_casts_and_gemm_ex(void) {
    size_t n = 4099;
    auto x = rnd_vec(n, -70000.0f, 70000.0f);
    const float special[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.0f, 65520.0f, 1e-8f,
                             5.96e-8f, 2.98e-8f, 6.1e-5f, INFINITY, -INFINITY, NAN, 3.0e38f,
                             1.0009765625f /* tie */, 1.00048828125f /* tie, to even */,
                             1.001953125f, 0.33333334f};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) x[i] = special[i];
    for (size_t i = 100; i < 1100; i++) x[i] = rnd_unif(-2.0f, 2.0f); /* normal range */
    Dev<float> dx(x), dback(n);
    Dev<uint16_t> dh(n);

    OPOK(cast_f32_to_f16_cuda(dh.p, dx.p, n, STREAM));
    auto h = dh.down();
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) bad += !((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff)); /* any NaN */
        else bad += h[i] != ref_f32_to_f16(x[i]);
    }
    char msg[128];
    snprintf(msg, sizeof msg, "%zu of %zu bit patterns differ", bad, n);
    check_true("cast f32->f16 bit-exact (RNE, inf, nan)", bad == 0, msg);
    OPOK(cast_f16_to_f32_cuda(dback.p, dh.p, n, STREAM));
    auto back = dback.down();
    std::vector<float> ref(n);
    for (size_t i = 0; i < n; i++) ref[i] = ref_f16_to_f32(h[i]);
    check("cast f16->f32", back.data(), ref.data(), n, 0, 1);

    if (g_cc >= 80) {
        OPOK(cast_f32_to_bf16_cuda(dh.p, dx.p, n, STREAM));
        h = dh.down();
        bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t r = ref_f32_to_bf16(x[i]);
            if (isnan(x[i])) bad += !((h[i] & 0x7f80) == 0x7f80 && (h[i] & 0x7f));
            else bad += h[i] != r;
        }
        snprintf(msg, sizeof msg, "%zu of %zu bit patterns differ", bad, n);
        check_true("cast f32->bf16 bit-exact (RNE, inf, nan)", bad == 0, msg);
        OPOK(cast_bf16_to_f32_cuda(dback.p, dh.p, n, STREAM));
        back = dback.down();
        for (size_t i = 0; i < n; i++) ref[i] = ref_bf16_to_f32(h[i]);
        check("cast bf16->f32", back.data(), ref.data(), n, 0, 1);
    } else {
        int st = cast_f32_to_bf16_cuda(dh.p, dx.p, n, STREAM);
        check_true("bf16 cast refused below sm80", st == MILES_EUNSUPPORTED, miles_last_error());
    }

    /* 16-bit storage GEMM: reference = CPU GEMM on the rounded inputs */
    const int M = 70, N = 33, K = 200;
    for (int type = MILES_CUDA_F16; type <= MILES_CUDA_BF16; type++) {
        if (type == MILES_CUDA_BF16 && g_cc < 80) continue;
        for (int ta = 0; ta < 2; ta++) {
            auto A = rnd_vec((size_t)M * K), B = rnd_vec((size_t)K * N);
            Dev<float> dA(A), dB(B), dC((size_t)M * N);
            Dev<uint16_t> hA(A.size()), hB(B.size());
            if (type == MILES_CUDA_F16) {
                OPOK(cast_f32_to_f16_cuda(hA.p, dA.p, A.size(), STREAM));
                OPOK(cast_f32_to_f16_cuda(hB.p, dB.p, B.size(), STREAM));
                OPOK(cast_f16_to_f32_cuda(dA.p, hA.p, A.size(), STREAM));
                OPOK(cast_f16_to_f32_cuda(dB.p, hB.p, B.size(), STREAM));
            } else {
                OPOK(cast_f32_to_bf16_cuda(hA.p, dA.p, A.size(), STREAM));
                OPOK(cast_f32_to_bf16_cuda(hB.p, dB.p, B.size(), STREAM));
                OPOK(cast_bf16_to_f32_cuda(dA.p, hA.p, A.size(), STREAM));
                OPOK(cast_bf16_to_f32_cuda(dB.p, hB.p, B.size(), STREAM));
            }
            A = dA.down();
            B = dB.down();
            std::vector<float> C((size_t)M * N);
            int lda = ta ? M : K;
            miles_gemm(ta, 1, M, N, K, 1.0f, A.data(), lda, B.data(), K, 0.0f, C.data(), N);
            OPOK(miles_gemm_ex_cuda(ta, 1, M, N, K, 1.0f, hA.p, type, lda, hB.p, type, K, 0.0f,
                                    dC.p, N, STREAM));
            char name[64];
            snprintf(name, sizeof name, "gemm_ex %s storage transA=%d",
                     type == MILES_CUDA_F16 ? "fp16" : "bf16", ta);
            check(name, dC.down().data(), C.data(), C.size(), 1e-5);
        }
    }
}

/* fp16 overflow inside a FAST_16F GEMM must be visible to the loss scaler:
 * as an Inf output when cuBLAS rounds to nearest, through the range check
 * (miles_cuda_set_f16_overflow_flag) when it does not. */
static void f16_overflow_case(const char *what) {
    char name[128], msg[160];
    int inf = miles_cuda_f16_overflow_probe();
    snprintf(name, sizeof name, "fp16 overflow probe (%s)", what);
    check_true(name, inf == 0 || inf == 1, inf == 1 ? "cuBLAS gives Inf" : inf == 0 ? "no Inf: guard on" : miles_last_error());
    const int M = 33, N = 17, K = 70;
    auto A = rnd_vec((size_t)M * K), B = rnd_vec((size_t)K * N);
    A[5 * K + 9] = 2.0e5f; /* beyond fp16 */
    Dev<float> dA(A), dB(B), dC((size_t)M * N);
    Dev<int32_t> flag(1);
    CUDA_CHECK(cudaMemset(flag.p, 0, sizeof(int32_t)));
    miles_cuda_set_f16_overflow_flag(inf == 0 ? flag.p : NULL);
    int old = miles_cuda_set_math(MILES_CUDA_MATH_FP16);
    OPOK(miles_gemm_cuda(0, 0, M, N, K, 1.0f, dA.p, K, dB.p, N, 0.0f, dC.p, N, STREAM));
    miles_cuda_set_math(old);
    miles_cuda_set_f16_overflow_flag(NULL);
    auto C = dC.down();
    size_t nonfinite = 0;
    for (float c : C) nonfinite += !isfinite(c);
    int f = flag.down()[0];
    snprintf(name, sizeof name, "fp16 GEMM input 2e5 seen (%s)", what);
    snprintf(msg, sizeof msg, "%zu non-finite outputs (row 5: %zu expected if Inf), guard flag %d", nonfinite,
             (size_t)N, f);
    check_true(name, inf == 1 ? nonfinite == (size_t)N && f == 0 : f == 1, msg);
}

static void test_f16_guard(void) {
    std::vector<float> ok = {0.0f, 1.0f, -65504.0f, 65519.0f, -1e-30f, 3.0e4f};
    Dev<float> dok(ok);
    Dev<int32_t> flag(1);
    CUDA_CHECK(cudaMemset(flag.p, 0, sizeof(int32_t)));
    OPOK(f16_range_check_cuda(flag.p, dok.p, ok.size(), STREAM));
    int f0 = flag.down()[0];
    int hits = 0;
    const float bad[3] = {65520.0f, -INFINITY, NAN};
    for (float b : bad) {
        std::vector<float> x = ok;
        x[3] = b;
        Dev<float> dx(x);
        CUDA_CHECK(cudaMemset(flag.p, 0, sizeof(int32_t)));
        OPOK(f16_range_check_cuda(flag.p, dx.p, x.size(), STREAM));
        hits += flag.down()[0];
    }
    char msg[96];
    snprintf(msg, sizeof msg, "in range: %d; 65520, -Inf, NaN flagged: %d of 3", f0, hits);
    check_true("f16_range_check (|x| >= 65520 or non-finite)", f0 == 0 && hits == 3, msg);
    f16_overflow_case("this cuBLAS");
#ifdef SIMT_EMULATOR
    /* the emulator's cuBLAS can clamp instead: the guard must then catch it */
    int old = simt_cublas_f16_saturate(1);
    f16_overflow_case("cuBLAS clamping to 65504");
    simt_cublas_f16_saturate(old);
#endif
}

/* -------------------------------------------------------------- linear */

static void test_linear(void) {
    const int N = 4 * 33, C = 96, OC = 80;
    auto inp = rnd_vec((size_t)N * C), w = rnd_vec((size_t)OC * C), b = rnd_vec(OC);
    auto dout = rnd_vec((size_t)N * OC);
    Dev<float> dinp(inp), dw(w), db(b), ddout(dout), dout_dev((size_t)N * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        std::vector<float> out((size_t)N * OC);
        linear_forward(out.data(), inp.data(), w.data(), with_bias ? b.data() : NULL, N, C, OC);
        OPOK(linear_forward_cuda(dout_dev.p, dinp.p, dw.p, with_bias ? db.p : NULL, N, C, OC, STREAM));
        check(with_bias ? "linear_forward (bias)" : "linear_forward (no bias)",
              dout_dev.down().data(), out.data(), out.size(), 1e-5);
    }
    /* backward accumulates: start from non-zero gradients */
    auto gi = rnd_vec((size_t)N * C), gw = rnd_vec((size_t)OC * C), gb = rnd_vec(OC);
    Dev<float> dgi(gi), dgw(gw), dgb(gb);
    linear_backward(gi.data(), gw.data(), gb.data(), dout.data(), inp.data(), w.data(), N, C, OC);
    OPOK(linear_backward_cuda(dgi.p, dgw.p, dgb.p, ddout.p, dinp.p, dw.p, N, C, OC, STREAM));
    check("linear_backward dinp", dgi.down().data(), gi.data(), gi.size(), 1e-5);
    check("linear_backward dw", dgw.down().data(), gw.data(), gw.size(), 1e-5);
    check("linear_backward db", dgb.down().data(), gb.data(), gb.size(), 1e-5);
}

/* ----------------------------------------------------------- layernorm */

static void test_layernorm(void) {
    const int N = g_quick ? 37 : 301, C = 384;
    const float eps = 1e-12f;
    auto inp = rnd_vec((size_t)N * C, -3.0f, 5.0f), w = rnd_vec(C, 0.5f, 1.5f), b = rnd_vec(C);
    auto dout = rnd_vec((size_t)N * C);
    std::vector<float> out((size_t)N * C), mean(N), rstd(N);
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), w.data(), b.data(), N, C, eps);
    Dev<float> dinp(inp), dw(w), db(b), dout_d((size_t)N * C), dmean(N), drstd(N), ddout(dout);
    OPOK(layernorm_forward_cuda(dout_d.p, dmean.p, drstd.p, dinp.p, dw.p, db.p, N, C, eps, STREAM));
    check("layernorm_forward out", dout_d.down().data(), out.data(), out.size(), 1e-5);
    check("layernorm_forward mean", dmean.down().data(), mean.data(), N, 1e-5);
    check("layernorm_forward rstd", drstd.down().data(), rstd.data(), N, 1e-5);

    auto gi = rnd_vec((size_t)N * C), gw = rnd_vec(C), gb = rnd_vec(C);
    Dev<float> dgi(gi), dgw(gw), dgb(gb);
    layernorm_backward(gi.data(), gw.data(), gb.data(), dout.data(), inp.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
    /* the GPU uses its own saved statistics, as in training */
    OPOK(layernorm_backward_cuda(dgi.p, dgw.p, dgb.p, ddout.p, dinp.p, dw.p, dmean.p, drstd.p, N,
                                 C, STREAM));
    check("layernorm_backward dinp", dgi.down().data(), gi.data(), gi.size(), 1e-5);
    check("layernorm_backward dw", dgw.down().data(), gw.data(), C, 1e-5);
    check("layernorm_backward db", dgb.down().data(), gb.data(), C, 1e-5);

    /* fused residual + LayerNorm == residual_forward then layernorm_forward */
    auto a = rnd_vec((size_t)N * C), r2 = rnd_vec((size_t)N * C);
    std::vector<float> res((size_t)N * C);
    residual_forward(res.data(), a.data(), r2.data(), res.size());
    layernorm_forward(out.data(), mean.data(), rstd.data(), res.data(), w.data(), b.data(), N, C, eps);
    Dev<float> da(a), dr2(r2), dres((size_t)N * C);
    OPOK(residual_layernorm_forward_cuda(dres.p, dout_d.p, dmean.p, drstd.p, da.p, dr2.p, dw.p,
                                         db.p, N, C, eps, STREAM));
    check("residual_layernorm_forward res", dres.down().data(), res.data(), res.size(), 0, 1);
    check("residual_layernorm_forward out", dout_d.down().data(), out.data(), out.size(), 1e-5);
    /* backward: da += dx, db += dx (dx = LayerNorm input gradient) */
    auto ga = rnd_vec((size_t)N * C), gr = rnd_vec((size_t)N * C);
    std::vector<float> dx((size_t)N * C, 0.0f);
    gw = rnd_vec(C);
    gb = rnd_vec(C);
    Dev<float> dga(ga), dgr(gr);
    dgw.up(gw);
    dgb.up(gb);
    layernorm_backward(dx.data(), gw.data(), gb.data(), dout.data(), res.data(), w.data(),
                       mean.data(), rstd.data(), N, C);
    residual_backward(ga.data(), gr.data(), dx.data(), dx.size());
    OPOK(residual_layernorm_backward_cuda(dga.p, dgr.p, dgw.p, dgb.p, ddout.p, dres.p, dw.p,
                                          dmean.p, drstd.p, N, C, STREAM));
    check("residual_layernorm_backward da", dga.down().data(), ga.data(), ga.size(), 1e-5);
    check("residual_layernorm_backward db", dgr.down().data(), gr.data(), gr.size(), 1e-5);
    check("residual_layernorm_backward dw", dgw.down().data(), gw.data(), C, 1e-5);
    check("residual_layernorm_backward dbias", dgb.down().data(), gb.data(), C, 1e-5);
}

/* ---------------------------------------------------------- embeddings */

static void test_embedding(void) {
    const int B = 5, T = 23, C = 72, V = 41, P = 30, TV = 2;
    std::vector<int32_t> ids(B * T), tt(B * T);
    for (int i = 0; i < B * T; i++) {
        ids[i] = (int32_t)(rnd_u64() % 7 == 0 ? 0 : rnd_u64() % V); /* many repeats of id 0 */
        tt[i] = (int32_t)(rnd_u64() % TV);
    }
    auto wte = rnd_vec((size_t)V * C), wpe = rnd_vec((size_t)P * C), wtt = rnd_vec((size_t)TV * C);
    auto dout = rnd_vec((size_t)B * T * C);
    Dev<int32_t> dids(ids), dtt(tt);
    Dev<float> dwte(wte), dwpe(wpe), dwtt(wtt), dout_d((size_t)B * T * C), ddout(dout);
    for (int use_tt = 0; use_tt < 2; use_tt++) {
        std::vector<float> out((size_t)B * T * C);
        embedding_forward(out.data(), ids.data(), use_tt ? tt.data() : NULL, wte.data(),
                          wpe.data(), wtt.data(), B, T, C);
        OPOK(embedding_forward_cuda(dout_d.p, dids.p, use_tt ? dtt.p : NULL, dwte.p, dwpe.p,
                                    dwtt.p, B, T, C, STREAM));
        check(use_tt ? "embedding_forward (token types)" : "embedding_forward (tt NULL)",
              dout_d.down().data(), out.data(), out.size(), 0, 1);

        auto gte = rnd_vec((size_t)V * C), gpe = rnd_vec((size_t)P * C), gtt = rnd_vec((size_t)TV * C);
        Dev<float> dgte(gte), dgpe(gpe), dgtt(gtt);
        embedding_backward(gte.data(), gpe.data(), gtt.data(), dout.data(), ids.data(),
                           use_tt ? tt.data() : NULL, B, T, C);
        OPOK(embedding_backward_cuda(dgte.p, dgpe.p, dgtt.p, ddout.p, dids.p,
                                     use_tt ? dtt.p : NULL, B, T, C, STREAM));
        check("embedding_backward dwte (atomics)", dgte.down().data(), gte.data(), gte.size(), 1e-5);
        check("embedding_backward dwpe", dgpe.down().data(), gpe.data(), gpe.size(), 1e-5);
        check("embedding_backward dwtt (atomics)", dgtt.down().data(), gtt.data(), gtt.size(), 1e-5);

        /* the GPU model's deterministic version: per-id token lists (as the
         * driver packs them), summed in token order = the CPU's order */
        std::vector<int32_t> uniq, offs(1, 0), pos, slot(V, -1), cnt;
        for (int i = 0; i < B * T; i++)
            if (slot[ids[i]] < 0) slot[ids[i]] = (int32_t)uniq.size(), uniq.push_back(ids[i]), cnt.push_back(0);
        for (int i = 0; i < B * T; i++) cnt[slot[ids[i]]]++;
        for (size_t u = 0; u < uniq.size(); u++) offs.push_back(offs[u] + cnt[u]);
        pos.assign(B * T, 0);
        std::vector<int32_t> fill(offs.begin(), offs.end() - 1), tt_offs(TV + 1, 0), tt_pos(B * T);
        for (int i = 0; i < B * T; i++) pos[fill[slot[ids[i]]]++] = i;
        std::vector<int32_t> tts(B * T, 0);
        if (use_tt) tts = tt;
        for (int i = 0; i < B * T; i++) tt_offs[tts[i] + 1]++;
        for (int y = 0; y < TV; y++) tt_offs[y + 1] += tt_offs[y];
        std::vector<int32_t> tfill(tt_offs.begin(), tt_offs.end() - 1);
        for (int i = 0; i < B * T; i++) tt_pos[tfill[tts[i]]++] = i;
        Dev<int32_t> du(uniq), doffs(offs), dpos(pos), dtto(tt_offs), dttp(tt_pos);
        gte = rnd_vec((size_t)V * C), gpe = rnd_vec((size_t)P * C), gtt = rnd_vec((size_t)TV * C);
        dgte.up(gte);
        dgpe.up(gpe);
        dgtt.up(gtt);
        embedding_backward(gte.data(), gpe.data(), gtt.data(), dout.data(), ids.data(), use_tt ? tt.data() : NULL,
                           B, T, C);
        int st = miles_cuda_embedding_backward_csr(dgte.p, dgpe.p, dgtt.p, ddout.p, du.p, (int)uniq.size(), doffs.p,
                                                   dpos.p, dtto.p, dttp.p, TV, B, T, C, g_stream);
        if (st != MILES_OK) printf("FAIL miles_cuda_embedding_backward_csr: %s\n", miles_last_error()), g_fail++;
        check("embedding_backward_csr dwte (token order, bitwise)", dgte.down().data(), gte.data(), gte.size(), 0, 1);
        check("embedding_backward_csr dwpe (bitwise)", dgpe.down().data(), gpe.data(), gpe.size(), 0, 1);
        check("embedding_backward_csr dwtt (bitwise)", dgtt.down().data(), gtt.data(), gtt.size(), 0, 1);
    }
}

/* ----------------------------------------------------------- attention */

static void test_attention_case(int B, int T, int C, int NH, float p, int with_attd) {
    size_t BTC = (size_t)B * T * C, BHTT = (size_t)B * NH * T * T;
    auto q = rnd_vec(BTC, -2, 2), k = rnd_vec(BTC, -2, 2), v = rnd_vec(BTC), dout = rnd_vec(BTC);
    std::vector<int32_t> mask((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int len = b == 1 ? 0 : 1 + (int)(rnd_u64() % T); /* batch row 1: no real token */
        for (int t = 0; t < T; t++) mask[(size_t)b * T + t] = t < len;
    }
    MilesDropoutKey key = {p, 0x0123456789abcdefULL, 5000000000ULL, 7};
    std::vector<float> out(BTC), att(BHTT), attd(BHTT), scratch(BHTT);
    float *attd_h = with_attd ? attd.data() : NULL;
    attention_forward(out.data(), att.data(), attd_h, q.data(), k.data(), v.data(), mask.data(), B,
                      T, C, NH, key);
    Dev<float> dq(q), dk(k), dv(v), ddout(dout), dout_d(BTC), datt(BHTT), dattd(BHTT), dscr(BHTT);
    Dev<int32_t> dmask(mask);
    float *attd_d = with_attd ? dattd.p : NULL;
    OPOK(attention_forward_cuda(dout_d.p, datt.p, attd_d, dq.p, dk.p, dv.p, dmask.p, B, T, C, NH,
                                key, STREAM));
    char name[96];
    snprintf(name, sizeof name, "attention_fwd B%d T%d NH%d p%.2f att", B, T, NH, p);
    auto gatt = datt.down();
    check(name, gatt.data(), att.data(), BHTT, 1e-5);
    /* masked keys and key-less rows: exactly 0 */
    size_t nonzero = 0;
    for (int b = 0; b < B; b++)
        for (size_t r = 0; r < (size_t)NH * T; r++)
            for (int j = 0; j < T; j++)
                if (!mask[(size_t)b * T + j] && gatt[((size_t)b * NH * T + r) * T + j] != 0.0f) nonzero++;
    snprintf(name, sizeof name, "attention_fwd B%d NH%d masked probs == 0", B, NH);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu non-zero masked probabilities", nonzero);
    check_true(name, nonzero == 0, msg);
    if (with_attd && p > 0) {
        snprintf(name, sizeof name, "attention_fwd B%d NH%d p%.2f attd", B, NH, p);
        check(name, dattd.down().data(), attd.data(), BHTT, 1e-5);
    }
    snprintf(name, sizeof name, "attention_fwd B%d T%d NH%d p%.2f out", B, T, NH, p);
    check(name, dout_d.down().data(), out.data(), BTC, 1e-5);

    auto gq = rnd_vec(BTC), gk = rnd_vec(BTC), gv = rnd_vec(BTC);
    Dev<float> dgq(gq), dgk(gk), dgv(gv);
    /* the CPU backward gets the CPU's saved att/attd, the GPU its own */
    attention_backward(gq.data(), gk.data(), gv.data(), scratch.data(), dout.data(), att.data(),
                       attd_h, q.data(), k.data(), v.data(), B, T, C, NH, key);
    OPOK(attention_backward_cuda(dgq.p, dgk.p, dgv.p, dscr.p, ddout.p, datt.p, attd_d, dq.p, dk.p,
                                 dv.p, B, T, C, NH, key, STREAM));
    snprintf(name, sizeof name, "attention_bwd B%d T%d NH%d p%.2f dq", B, T, NH, p);
    check(name, dgq.down().data(), gq.data(), BTC, 1e-5);
    snprintf(name, sizeof name, "attention_bwd B%d T%d NH%d p%.2f dk", B, T, NH, p);
    check(name, dgk.down().data(), gk.data(), BTC, 1e-5);
    snprintf(name, sizeof name, "attention_bwd B%d T%d NH%d p%.2f dv", B, T, NH, p);
    check(name, dgv.down().data(), gv.data(), BTC, 1e-5);
}

static void test_attention(void) {
    test_attention_case(3, 37, 48, 4, 0.0f, 0);  /* loop over b, batch over heads */
    test_attention_case(3, 37, 48, 4, 0.1f, 1);  /* + attention dropout */
    test_attention_case(6, 29, 40, 2, 0.25f, 1); /* loop over heads, batch over b */
    if (!g_quick) test_attention_case(4, 128, 384, 12, 0.1f, 1); /* MiniLM shape */
}

/* --------------------------------------------------------- activations */

static void test_activations(void) {
    size_t n = g_quick ? 10007 : 1000003;
    auto x = rnd_vec(n, -8.0f, 8.0f), dout = rnd_vec(n), g0 = rnd_vec(n);
    x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f, x[3] = -0.0f, x[4] = 1e-30f;
    Dev<float> dx(x), ddout(dout), dy(n), dg(n);
    std::vector<float> y(n), g(n);
    struct {
        const char *name;
        void (*f)(float *, const float *, size_t);
        int (*fc)(float *, const float *, size_t, miles_cuda_stream);
        void (*b)(float *, const float *, const float *, size_t);
        int (*bc)(float *, const float *, const float *, size_t, miles_cuda_stream);
        int bwd_uses_input; /* gelu: backward takes the input; others the output */
    } acts[] = {
        {"gelu", gelu_forward, gelu_forward_cuda, gelu_backward, gelu_backward_cuda, 1},
        {"relu", relu_forward, relu_forward_cuda, relu_backward, relu_backward_cuda, 0},
        {"tanh", tanh_forward, tanh_forward_cuda, tanh_backward, tanh_backward_cuda, 0},
        {"sigmoid", sigmoid_forward, sigmoid_forward_cuda, sigmoid_backward, sigmoid_backward_cuda, 0},
    };
    for (auto &a : acts) {
        char name[64];
        a.f(y.data(), x.data(), n);
        OPOK(a.fc(dy.p, dx.p, n, STREAM));
        snprintf(name, sizeof name, "%s_forward", a.name);
        check(name, dy.down().data(), y.data(), n, 1e-5);
        g = g0;
        dg.up(g0);
        a.b(g.data(), a.bwd_uses_input ? x.data() : y.data(), dout.data(), n);
        /* GPU backward from the CPU forward output, to test the op alone */
        Dev<float> ysaved(y);
        OPOK(a.bc(dg.p, a.bwd_uses_input ? dx.p : ysaved.p, ddout.p, n, STREAM));
        snprintf(name, sizeof name, "%s_backward", a.name);
        check(name, dg.down().data(), g.data(), n, 1e-5);
    }
    residual_forward(y.data(), x.data(), dout.data(), n);
    OPOK(residual_forward_cuda(dy.p, dx.p, ddout.p, n, STREAM));
    check("residual_forward", dy.down().data(), y.data(), n, 0, 1);
    g = g0;
    auto g2 = rnd_vec(n);
    Dev<float> dg2(g2);
    dg.up(g0);
    residual_backward(g.data(), g2.data(), dout.data(), n);
    OPOK(residual_backward_cuda(dg.p, dg2.p, ddout.p, n, STREAM));
    check("residual_backward da", dg.down().data(), g.data(), n, 0, 1);
    check("residual_backward db", dg2.down().data(), g2.data(), n, 0, 1);
}

/* ------------------------------------------------------------- dropout */

static void test_dropout(void) {
    size_t n = g_quick ? 10003 : 1000003; /* not a multiple of 4 */
    auto x = rnd_vec(n), dout = rnd_vec(n), g0 = rnd_vec(n);
    x[5] = INFINITY; /* a dropped Inf must give 0, a kept one Inf, as the CPU */
    const float ps[] = {0.1f, 0.5f, 0.0f, 1.0f};
    for (float p : ps) {
        MilesDropoutKey key = {p, 0xfedcba9876543210ULL, (1ULL << 33) + 17, 3};
        std::vector<float> y(n), g = g0;
        dropout_forward(y.data(), x.data(), n, key);
        dropout_backward(g.data(), dout.data(), n, key);
        Dev<float> dx(x), dy(n), dg(g0), ddout(dout);
        OPOK(dropout_forward_cuda(dy.p, dx.p, n, key, STREAM));
        OPOK(dropout_backward_cuda(dg.p, ddout.p, n, key, STREAM));
        char name[64];
        snprintf(name, sizeof name, "dropout_forward p=%.1f (bit-identical)", p);
        check(name, dy.down().data(), y.data(), n, 0, 1);
        snprintf(name, sizeof name, "dropout_backward p=%.1f (bit-identical)", p);
        check(name, dg.down().data(), g.data(), n, 0, 1);
        if (p == 0.1f) {
            /* in place gives the same values; the kept fraction is ~1-p */
            OPOK(dropout_forward_cuda(dx.p, dx.p, n, key, STREAM));
            check("dropout_forward in place", dx.down().data(), y.data(), n, 0, 1);
            size_t kept = 0;
            for (size_t i = 0; i < n; i++) kept += y[i] != 0.0f;
            double frac = (double)kept / n;
            char msg[64];
            snprintf(msg, sizeof msg, "kept fraction %.4f (expect 0.9)", frac);
            check_true("dropout keep rate", fabs(frac - 0.9) < (g_quick ? 0.02 : 0.003), msg);
        }
    }
}

/* ------------------------------------------------------------- pooling */

static void test_pooling(void) {
    const int B = 7, T = 19, C = 50, C2 = 13;
    auto x = rnd_vec((size_t)B * T * C), dpool = rnd_vec((size_t)B * C);
    std::vector<int32_t> mask((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int len = b == 2 ? 0 : 1 + (int)(rnd_u64() % T);
        for (int t = 0; t < T; t++) mask[(size_t)b * T + t] = t < len ? 1 : 0;
    }
    Dev<float> dx(x), ddpool(dpool), dy((size_t)B * C);
    Dev<int32_t> dmask(mask);
    std::vector<float> y((size_t)B * C);

    cls_pool_forward(y.data(), x.data(), B, T, C);
    OPOK(cls_pool_forward_cuda(dy.p, dx.p, B, T, C, STREAM));
    check("cls_pool_forward", dy.down().data(), y.data(), y.size(), 0, 1);
    auto g = rnd_vec((size_t)B * T * C);
    Dev<float> dg(g);
    cls_pool_backward(g.data(), dpool.data(), B, T, C);
    OPOK(cls_pool_backward_cuda(dg.p, ddpool.p, B, T, C, STREAM));
    check("cls_pool_backward", dg.down().data(), g.data(), g.size(), 0, 1);

    for (int use_mask = 0; use_mask < 2; use_mask++) {
        const int32_t *m = use_mask ? mask.data() : NULL;
        mean_pool_forward(y.data(), x.data(), m, B, T, C);
        OPOK(mean_pool_forward_cuda(dy.p, dx.p, use_mask ? dmask.p : NULL, B, T, C, STREAM));
        check(use_mask ? "mean_pool_forward (mask, empty row)" : "mean_pool_forward (no mask)",
              dy.down().data(), y.data(), y.size(), 1e-6);
        g = rnd_vec((size_t)B * T * C);
        dg.up(g);
        mean_pool_backward(g.data(), dpool.data(), m, B, T, C);
        OPOK(mean_pool_backward_cuda(dg.p, ddpool.p, use_mask ? dmask.p : NULL, B, T, C, STREAM));
        check(use_mask ? "mean_pool_backward (mask)" : "mean_pool_backward (no mask)",
              dg.down().data(), g.data(), g.size(), 1e-6);
    }

    auto a = rnd_vec((size_t)B * C), b2 = rnd_vec((size_t)B * C2), dcat = rnd_vec((size_t)B * (C + C2));
    std::vector<float> cat((size_t)B * (C + C2));
    Dev<float> da(a), db(b2), dcat_d(cat.size()), ddcat(dcat);
    concat_forward(cat.data(), a.data(), b2.data(), B, C, C2);
    OPOK(concat_forward_cuda(dcat_d.p, da.p, db.p, B, C, C2, STREAM));
    check("concat_forward", dcat_d.down().data(), cat.data(), cat.size(), 0, 1);
    auto ga = rnd_vec(a.size()), gb = rnd_vec(b2.size());
    Dev<float> dga(ga), dgb(gb);
    concat_backward(ga.data(), gb.data(), dcat.data(), B, C, C2);
    OPOK(concat_backward_cuda(dga.p, dgb.p, ddcat.p, B, C, C2, STREAM));
    check("concat_backward da", dga.down().data(), ga.data(), ga.size(), 0, 1);
    check("concat_backward db", dgb.down().data(), gb.data(), gb.size(), 0, 1);
}

/* -------------------------------------------------------------- losses */

static void test_losses(void) {
    const int Ks[2] = {2, 5};
    for (int K : Ks) {
        const int B = 37;
        auto logits = rnd_vec((size_t)B * K, -6, 6), cw = rnd_vec(K, 0.2f, 3.0f);
        std::vector<int32_t> labels(B);
        for (auto &y : labels) y = (int32_t)(rnd_u64() % K);
        std::vector<float> probs((size_t)B * K);
        float ce = crossentropy_forward(probs.data(), logits.data(), labels.data(), cw.data(), B, K);
        Dev<float> dlog(logits), dcw(cw), dprobs((size_t)B * K), dloss(3);
        Dev<int32_t> dlab(labels);
        OPOK(crossentropy_forward_cuda(dloss.p, dprobs.p, dlog.p, dlab.p, dcw.p, B, K, STREAM));
        char name[64];
        snprintf(name, sizeof name, "crossentropy_forward K=%d loss", K);
        check(name, dloss.down().data(), &ce, 1, 1e-5);
        snprintf(name, sizeof name, "crossentropy_forward K=%d probs", K);
        check(name, dprobs.down().data(), probs.data(), probs.size(), 1e-6);
        auto g = rnd_vec((size_t)B * K);
        Dev<float> dg(g);
        crossentropy_backward(g.data(), probs.data(), labels.data(), cw.data(), B, K, 0.95f);
        OPOK(crossentropy_backward_cuda(dg.p, dprobs.p, dlab.p, dcw.p, B, K, 0.95f, STREAM));
        snprintf(name, sizeof name, "crossentropy_backward K=%d", K);
        check(name, dg.down().data(), g.data(), g.size(), 1e-6);
        /* unweighted (class_weight NULL) */
        float ce0 = crossentropy_forward(probs.data(), logits.data(), labels.data(), NULL, B, K);
        OPOK(crossentropy_forward_cuda(dloss.p, dprobs.p, dlog.p, dlab.p, NULL, B, K, STREAM));
        snprintf(name, sizeof name, "crossentropy_forward K=%d unweighted", K);
        check(name, dloss.down().data(), &ce0, 1, 1e-5);
    }
    /* invalid label: NaN loss, not an out-of-bounds read */
    {
        std::vector<float> logits = {0.1f, 0.2f, 0.3f, 0.4f};
        std::vector<int32_t> labels = {0, 7};
        Dev<float> dlog(logits), dprobs(4), dloss(1);
        Dev<int32_t> dlab(labels);
        OPOK(crossentropy_forward_cuda(dloss.p, dprobs.p, dlog.p, dlab.p, NULL, 2, 2, STREAM));
        float l = dloss.down()[0];
        check_true("crossentropy bad label -> NaN loss", isnan(l), "label 7 with K=2");
    }
    const int B = 53;
    auto pred = rnd_vec(B, 0, 1), target = rnd_vec(B, 0, 1);
    Dev<float> dpred(pred), dtarget(target), dloss(3);
    float mse = mse_forward(pred.data(), target.data(), B);
    OPOK(mse_forward_cuda(dloss.p, dpred.p, dtarget.p, B, STREAM));
    check("mse_forward", dloss.down().data(), &mse, 1, 1e-6);
    auto g = rnd_vec(B);
    Dev<float> dg(g);
    mse_backward(g.data(), pred.data(), target.data(), B, 0.05f);
    OPOK(mse_backward_cuda(dg.p, dpred.p, dtarget.p, B, 0.05f, STREAM));
    check("mse_backward", dg.down().data(), g.data(), B, 1e-6);

    /* fused Miles loss == CPU composition */
    const int K = 2;
    auto logits = rnd_vec((size_t)B * K, -4, 4);
    std::vector<float> cw = {0.6f, 2.5f};
    std::vector<int32_t> labels(B);
    for (auto &y : labels) y = (int32_t)(rnd_u64() % K);
    std::vector<float> probs((size_t)B * K);
    const float wc = 0.95f, wr = 0.05f, scale = 1024.0f;
    float ce = crossentropy_forward(probs.data(), logits.data(), labels.data(), cw.data(), B, K);
    float total[3] = {wc * ce + wr * mse, ce, mse};
    Dev<float> dlog(logits), dcw(cw), dprobs((size_t)B * K);
    Dev<int32_t> dlab(labels);
    OPOK(miles_loss_forward_cuda(dloss.p, dprobs.p, dlog.p, dlab.p, dcw.p, dpred.p, dtarget.p, B, K,
                                 wc, wr, STREAM));
    check("miles_loss_forward {total, ce, mse}", dloss.down().data(), total, 3, 1e-5);
    auto gl = rnd_vec((size_t)B * K), gp = rnd_vec(B);
    Dev<float> dgl(gl), dgp(gp);
    crossentropy_backward(gl.data(), probs.data(), labels.data(), cw.data(), B, K, scale * wc);
    mse_backward(gp.data(), pred.data(), target.data(), B, scale * wr);
    OPOK(miles_loss_backward_cuda(dgl.p, dgp.p, dprobs.p, dlab.p, dcw.p, dpred.p, dtarget.p, B, K,
                                  wc, wr, scale, STREAM));
    check("miles_loss_backward dlogits", dgl.down().data(), gl.data(), gl.size(), 1e-5);
    check("miles_loss_backward dpred", dgp.down().data(), gp.data(), gp.size(), 1e-5);
}

/* ---------------------------------------- norms, AdamW, loss scaler */

/* CPU reference, the loop of miles_adamw_step (libmiles/optim.c) verbatim */
static void ref_adamw(std::vector<float> &P, const std::vector<float> &G, std::vector<float> &M,
                      std::vector<float> &V, const std::vector<uint8_t> &decay, MilesCudaAdamW hp) {
    const double b1 = hp.beta1, b2 = hp.beta2;
    const float fb1 = (float)b1, fb2 = (float)b2;
    const float omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    const double bc1 = 1.0 - pow(b1, (double)hp.step), bc2 = 1.0 - pow(b2, (double)hp.step);
    const float step_size = (float)((double)hp.lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float decay_mul = (float)(1.0 - (double)hp.lr * (double)hp.weight_decay);
    for (size_t i = 0; i < P.size(); i++) {
        float g = G[i];
        float p = P[i] * (decay[i] ? decay_mul : 1.0f);
        float mi = M[i] * fb1 + omb1 * g;
        float vi = V[i] * fb2 + omb2 * (g * g);
        M[i] = mi;
        V[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + hp.eps;
        P[i] = p - step_size * (mi / denom);
    }
}

static void test_optimizer(void) {
    size_t n = g_quick ? 20011 : 3000017;
    auto grad = rnd_vec(n, -0.01f, 0.01f);
    Dev<float> dgrad(grad), dnorm(1), dws(MILES_CUDA_REDUCE_WORKSPACE);

    /* global norm and clipping (miles_clip_grad_norm's arithmetic) */
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) ss += (double)grad[i] * (double)grad[i];
    float total = (float)sqrt(ss);
    OPOK(grad_norm_cuda(dnorm.p, dgrad.p, n, dws.p, STREAM));
    check("grad_norm (two-stage, double)", dnorm.down().data(), &total, 1, 1e-6);
    float max_norm = total * 0.5f;
    std::vector<float> clipped = grad;
    float coef = max_norm / (total + 1e-6f);
    for (auto &g : clipped) g *= coef;
    OPOK(clip_grad_norm_cuda(dgrad.p, n, max_norm, dnorm.p, dws.p, STREAM));
    check("clip_grad_norm grads", dgrad.down().data(), clipped.data(), n, 1e-6);
    check("clip_grad_norm returned norm", dnorm.down().data(), &total, 1, 1e-6);
    dgrad.up(grad);
    OPOK(clip_grad_norm_cuda(dgrad.p, n, total * 2.0f, dnorm.p, dws.p, STREAM));
    check("clip_grad_norm below max: untouched", dgrad.down().data(), grad.data(), n, 0, 1);

    /* non-finite check */
    Dev<int32_t> dfound(1);
    CUDA_CHECK(cudaMemset(dfound.p, 0, sizeof(int32_t)));
    OPOK(nonfinite_check_cuda(dfound.p, dgrad.p, n, STREAM));
    int f0 = dfound.down()[0];
    std::vector<float> bad = grad;
    bad[n - 1] = NAN;
    Dev<float> dbad(bad);
    OPOK(nonfinite_check_cuda(dfound.p, dbad.p, n, STREAM));
    int f1 = dfound.down()[0];
    check_true("nonfinite_check (clean 0, NaN at end 1)", f0 == 0 && f1 == 1, f0 == 0 ? "" : "false positive");

    /* AdamW: 3 steps with a decay mask, against optim.c's loop */
    size_t na = g_quick ? 10007 : 1000003;
    auto P = rnd_vec(na), M0 = std::vector<float>(na, 0.0f), V0 = std::vector<float>(na, 0.0f);
    std::vector<uint8_t> decay(na);
    for (auto &d : decay) d = (uint8_t)(rnd_u64() & 1);
    Dev<float> dP(P), dM(M0), dV(V0), dG(na);
    Dev<uint8_t> ddecay(decay);
    std::vector<float> M = M0, V = V0;
    MilesCudaAdamW hp = {2e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    for (int t = 1; t <= 3; t++) {
        auto G = rnd_vec(na, -0.1f, 0.1f);
        dG.up(G);
        hp.step = t;
        ref_adamw(P, G, M, V, decay, hp);
        OPOK(adamw_step_cuda(dP.p, dG.p, dM.p, dV.p, ddecay.p, na, hp, NULL, NULL, STREAM));
    }
    check("adamw_step x3 params", dP.down().data(), P.data(), na, 1e-6);
    check("adamw_step x3 exp_avg", dM.down().data(), M.data(), na, 1e-6);
    check("adamw_step x3 exp_avg_sq", dV.down().data(), V.data(), na, 1e-6);

    /* AMP step: grads scaled by 65536 -> unscale+check -> AdamW -> update */
    Dev<MilesLossScalerState> dst(1);
    OPOK(loss_scaler_init_cuda(dst.p, 65536.0f, STREAM));
    auto G = rnd_vec(na, -0.1f, 0.1f);
    std::vector<float> Gs(na);
    for (size_t i = 0; i < na; i++) Gs[i] = G[i] * 65536.0f; /* exact: power of two */
    dG.up(Gs);
    OPOK(amp_unscale_check_cuda(dG.p, na, dst.p, STREAM));
    check("amp_unscale_check grads", dG.down().data(), G.data(), na, 0, 1);
    hp.step = 4;
    ref_adamw(P, G, M, V, decay, hp);
    /* device address of the flag (no dereference on the host) */
    int32_t *found = (int32_t *)((char *)dst.p + offsetof(MilesLossScalerState, found_inf));
    OPOK(adamw_step_cuda(dP.p, dG.p, dM.p, dV.p, ddecay.p, na, hp, NULL, found, STREAM));
    OPOK(loss_scaler_update_cuda(dst.p, 2.0f, 0.5f, 2000, STREAM));
    check("adamw_step after clean unscale", dP.down().data(), P.data(), na, 1e-6);
    MilesLossScalerState st = dst.down()[0];
    check_true("scaler after clean step", st.scale == 65536.0f && st.growth_tracker == 1 && !st.found_inf,
               "scale 65536, tracker 1");

    /* overflow step: Inf in the grads -> step skipped, scale halved */
    Gs[na / 2] = INFINITY;
    dG.up(Gs);
    auto Pbefore = dP.down();
    OPOK(amp_unscale_check_cuda(dG.p, na, dst.p, STREAM));
    hp.step = 5;
    OPOK(adamw_step_cuda(dP.p, dG.p, dM.p, dV.p, ddecay.p, na, hp, NULL, found, STREAM));
    st = dst.down()[0];
    check_true("unscale_check flags Inf", st.found_inf == 1, "found_inf set");
    OPOK(loss_scaler_update_cuda(dst.p, 2.0f, 0.5f, 2000, STREAM));
    check("adamw_step skipped on Inf (params unchanged)", dP.down().data(), Pbefore.data(), na, 0, 1);
    st = dst.down()[0];
    check_true("scaler backoff x0.5 on Inf", st.scale == 32768.0f && st.growth_tracker == 0 &&
               !st.found_inf && st.inv_scale == 1.0f / 32768.0f, "scale 32768, tracker 0");

    /* growth: 2000 clean updates double the scale (GradScaler defaults) */
    for (int i = 0; i < 1999; i++) OPOK(loss_scaler_update_cuda(dst.p, 2.0f, 0.5f, 2000, STREAM));
    st = dst.down()[0];
    int ok1999 = st.scale == 32768.0f && st.growth_tracker == 1999;
    OPOK(loss_scaler_update_cuda(dst.p, 2.0f, 0.5f, 2000, STREAM));
    st = dst.down()[0];
    check_true("scaler growth x2 after 2000 clean steps",
               ok1999 && st.scale == 65536.0f && st.growth_tracker == 0, "1999: 32768, 2000: 65536");

    /* grad_scale pointer (unscale/clip folded into AdamW) */
    auto Gh = rnd_vec(na, -0.1f, 0.1f);
    std::vector<float> Gx2(na);
    for (size_t i = 0; i < na; i++) Gx2[i] = Gh[i] * 2.0f;
    dG.up(Gx2);
    std::vector<float> half = {0.5f};
    Dev<float> dhalf(half);
    hp.step = 5;
    ref_adamw(P, Gh, M, V, decay, hp);
    OPOK(adamw_step_cuda(dP.p, dG.p, dM.p, dV.p, ddecay.p, na, hp, dhalf.p, NULL, STREAM));
    check("adamw_step with device grad_scale", dP.down().data(), P.data(), na, 1e-6);
}

/* The trainer's device-side statistics (train_stats.cu): the loss sum
 * rounded as the host rounds it, and the skipped-step count. */
static void test_train_stats(void) {
    Dev<MilesCudaTrainStats> dst(1);
    CUDA_CHECK(cudaMemset(dst.p, 0, sizeof(MilesCudaTrainStats)));
    Dev<float> dl(2);
    double want = 0.0;
    const float wc = 0.95f, wr = 0.05f;
    const int have[4][2] = {{1, 1}, {1, 0}, {0, 1}, {1, 1}};
    for (int i = 0; i < 40; i++) {
        std::vector<float> l = {rnd_unif(0.01f, 3.0f), rnd_unif(0.0f, 0.5f)};
        dl.up(l);
        const int hc = have[i % 4][0], hr = have[i % 4][1];
        const float div = (float)(1 + i % 3);
        OPOK(train_stats_add_loss_cuda(dst.p, dl.p, wc, wr, hc, hr, div, STREAM));
        CUDA_CHECK(cudaStreamSynchronize(g_stream)); /* dl is rewritten next */
        volatile float L = 0.0f, p; /* the host's rounding (no FMA) */
        if (hc) { p = wc * l[0]; L = L + p; }
        if (hr) { p = wr * l[1]; L = L + p; }
        want += (double)(L / div);
    }
    MilesCudaTrainStats got = dst.down()[0];
    char msg[96];
    snprintf(msg, sizeof msg, "sum %.17g vs host %.17g", got.loss_sum, want);
    check_true("train_stats_add_loss == host sum (bitwise)", got.loss_sum == want && got.skipped == 0, msg);
    /* skips: last_skipped of the fused optimizer's state, counted */
    Dev<MilesCudaOptState> dopt(1);
    int skips = 0;
    for (int i = 0; i < 7; i++) {
        MilesCudaOptState o;
        memset(&o, 0, sizeof o);
        o.last_skipped = i % 3 == 1;
        skips += o.last_skipped;
        dopt.up(std::vector<MilesCudaOptState>(1, o));
        OPOK(train_stats_count_skip_cuda(dst.p, dopt.p, STREAM));
        CUDA_CHECK(cudaStreamSynchronize(g_stream));
    }
    got = dst.down()[0];
    snprintf(msg, sizeof msg, "%lld counted, %d planted", (long long)got.skipped, skips);
    check_true("train_stats_count_skip counts skipped steps", got.skipped == skips && got.loss_sum == want, msg);
}

/* ------------------------------------------------- host-only checks */

/* The device Philox code (kernels/philox.cuh, compiled for the host here)
 * against the RNG CONTRACT's known answers and the CPU generator: runs with
 * or without a GPU. */
static void test_philox_host(void) {
    struct { uint32_t c[4], k[2], want[4]; } kat[3] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    int kat_ok = 1;
    for (auto &t : kat) {
        uint32_t c[4] = {t.c[0], t.c[1], t.c[2], t.c[3]};
        miles_philox4x32_dev(c, t.k[0], t.k[1]);
        for (int l = 0; l < 4; l++) kat_ok &= c[l] == t.want[l];
    }
    check_true("philox (device code on host) known answers", kat_ok, "Random123 vectors");

    size_t bad_u = 0, bad_keep = 0;
    const int trials = 200000;
    for (int t = 0; t < trials; t++) {
        uint64_t seed = rnd_u64(), step = t % 3 ? rnd_u64() % 100000 : rnd_u64();
        uint32_t tid = (uint32_t)rnd_u64();
        uint64_t idx = rnd_u64() % (1ULL << 34);
        float u4[4];
        miles_dropout_uniform4_dev(u4, seed, step, tid, idx >> 2);
        float cpu = miles_dropout_uniform(seed, step, tid, idx);
        bad_u += memcmp(&cpu, &u4[idx & 3], sizeof(float)) != 0;
        MilesDropoutKey key = {rnd_unif(0.0f, 1.0f), seed, step, tid};
        MilesDropDev d = miles_drop_dev(key);
        bad_keep += (cpu >= key.p) != miles_dropout_keep(d, idx); /* keep = u >= p, fp32 */
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%zu uniform and %zu keep mismatches in %d draws", bad_u, bad_keep, trials);
    check_true("philox dropout mapping == CPU (host)", bad_u == 0 && bad_keep == 0, msg);
}

/* The test's reference fp16/bf16 conversions against CUDA's own host
 * implementations (cuda_fp16.h / cuda_bf16.h), so a cast failure on the GPU
 * can only mean the kernel is wrong. */
static void test_cast_refs_host(void) {
    size_t bad16 = 0, badbf = 0, n = 0;
    for (int i = 0; i < 300000; i++) {
        float x;
        if (i < 100000) {
            uint32_t u = (uint32_t)rnd_u64(); /* any bit pattern */
            memcpy(&x, &u, 4);
        } else {
            x = rnd_unif(-70000.0f, 70000.0f) * (i % 2 ? 1.0f : 1e-6f);
        }
        n++;
        __half_raw h = __float2half_rn(x);
        __nv_bfloat16_raw b = __float2bfloat16_rn(x);
        if (isnan(x)) {
            bad16 += !((ref_f32_to_f16(x) & 0x7c00) == 0x7c00 && (h.x & 0x7c00) == 0x7c00 && (h.x & 0x3ff));
            badbf += !((b.x & 0x7f80) == 0x7f80 && (b.x & 0x7f));
            continue;
        }
        bad16 += ref_f32_to_f16(x) != h.x;
        badbf += ref_f32_to_bf16(x) != b.x;
        float back = ref_f16_to_f32(h.x);
        bad16 += back != __half2float(__half(h)); /* and the reverse conversion */
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%zu fp16 and %zu bf16 mismatches in %zu values", bad16, badbf, n);
    check_true("reference casts == cuda_fp16/bf16 host code", bad16 == 0 && badbf == 0, msg);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    }
    test_philox_host();
    test_cast_refs_host();
    const int st = op_test_open_device("CUDA op tests");
    if (st >= 0) return st;

    const struct {
        const char *name;
        void (*fn)(void);
    } sections[] = {{"gemm", test_gemm},           {"casts", test_casts_and_gemm_ex},
                    {"f16guard", test_f16_guard},  {"linear", test_linear},
                    {"layernorm", test_layernorm}, {"embedding", test_embedding},
                    {"attention", test_attention}, {"activations", test_activations},
                    {"dropout", test_dropout},     {"pooling", test_pooling},
                    {"losses", test_losses},       {"optimizer", test_optimizer},
                    {"train_stats", test_train_stats}};
    int ran = 0;
    for (auto &sec : sections)
        if (!only || !strcmp(only, sec.name)) sec.fn(), ran++;
    if (!ran) {
        printf("FAIL --only %s: no such section\n", only);
        g_fail++;
    }

    return op_test_finish();
}
