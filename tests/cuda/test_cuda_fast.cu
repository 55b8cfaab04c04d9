/*
 * test_cuda_fast.cu — the kernels of the 16-bit path (fp16/bf16 storage,
 * fp32 math; kernels/fast.cuh, fused_ln.cu, fused_ew.cu, flash_attn.cu, the
 * cuBLASLt GEMMs of gemm.cu, the segmented embedding backward, the fused
 * optimizer) against their CPU twins (libmiles/ops.c, ops_attention.c,
 * dropout.c, optim.c's AdamW), at ragged sizes, in fp16 and bf16.
 *
 * The CPU reference gets the same 16-bit inputs (converted exactly to fp32)
 * and computes in fp32; its result is rounded to the 16-bit type where the
 * kernel stores 16 bits.  Tolerances (each check prints its max error):
 *   16-bit outputs of one fp32 computation (LayerNorm, GELU, casts, linear
 *     with bias): at most 1 ulp of the 16-bit type from the CPU value rounded
 *     (the fp32 values differ in summation order only), or within 1e-5 of
 *     the output's scale (near zero the 16-bit grid is finer than that);
 *     printed as ulps
 *   fp32 outputs (dres, statistics, parameter gradients, norms, AdamW)  1e-5
 *     scaled (|gpu - cpu| / max(1, max|cpu|)), like test_cuda_ops
 *   fused attention (P rounded to 16 bits before P V, as every flash kernel
 *     does): forward bf16 1e-2 / fp16 2e-3, backward bf16 3e-2 / fp16 5e-3,
 *     scaled; dropout masks equal the CPU's (a different mask moves the
 *     output by O(p) and fails these), masked keys' dk/dv exactly 0
 *   the m16n8k16 MMA against a double-precision product                 1e-5
 * Dropout masks are bit-identical: res of the fused residual kernel is
 * compared exactly.
 *
 * Usage: test_cuda_fast [--quick] [--only SECTION,...]   (sections: mma, gemm,
 * layernorm, ew, attention, embedding, optimizer; exit 0 with "no CUDA
 * device" without a GPU).  Runs in the SIMT emulator in every make check (sm_90: the MMA is one
 * emulated instruction; SIMT_CC=70: the portable shuffle MMA and no bf16).
 */
#include "fast.cuh"
#include "op_test.h"

extern "C" {
#include "miles.h"
#include "model_internal.h" /* the dropout tensor ids */
}

static int g_dts[2] = {MILES_CUDA_F16, MILES_CUDA_BF16};
static const char *dt_name(int dt) { return dt == MILES_CUDA_BF16 ? "bf16" : "fp16"; }
static int dt_ok(int dt) { return dt == MILES_CUDA_F16 || g_cc >= 80; }

/* host 16-bit helpers (the reference conversions of op_test.h) */
static uint16_t h_of(float x, int dt) { return dt == MILES_CUDA_BF16 ? ref_f32_to_bf16(x) : ref_f32_to_f16(x); }
static float f_of(uint16_t h, int dt) { return dt == MILES_CUDA_BF16 ? ref_bf16_to_f32(h) : ref_f16_to_f32(h); }
static std::vector<uint16_t> to_h(const std::vector<float> &x, int dt) {
    std::vector<uint16_t> h(x.size());
    for (size_t i = 0; i < x.size(); i++) h[i] = h_of(x[i], dt);
    return h;
}
static std::vector<float> to_f(const std::vector<uint16_t> &h, int dt) {
    std::vector<float> x(h.size());
    for (size_t i = 0; i < h.size(); i++) x[i] = f_of(h[i], dt);
    return x;
}
/* x rounded to the 16-bit type, as floats */
static std::vector<float> rounded(const std::vector<float> &x, int dt) { return to_f(to_h(x, dt), dt); }

/* distance in representable 16-bit values (same sign: pattern distance) */
static long ulp_dist(uint16_t a, uint16_t b) {
    long ia = (a & 0x8000) ? -(long)(a & 0x7fff) : (long)(a & 0x7fff);
    long ib = (b & 0x8000) ? -(long)(b & 0x7fff) : (long)(b & 0x7fff);
    return labs(ia - ib);
}

/* 16-bit GPU output vs the CPU's fp32 result rounded: every element within
 * max_ulps of it, or within 1e-5 of the output's scale (near zero, where the
 * 16-bit grid is finer than fp32 rounding of a larger intermediate) */
static void check_h(const char *name, const std::vector<uint16_t> &gpu, const std::vector<float> &cpu, int dt,
                    long max_ulps) {
    double max_abs = 0, max_ref = 0;
    for (size_t i = 0; i < cpu.size(); i++)
        if (fabs(cpu[i]) > max_ref) max_ref = fabs(cpu[i]);
    const double floor_abs = 1e-5 * (max_ref > 1 ? max_ref : 1);
    long worst = 0, nbad = 0;
    size_t wi = 0;
    for (size_t i = 0; i < cpu.size(); i++) {
        double d = fabs((double)f_of(gpu[i], dt) - (double)cpu[i]);
        long u = ulp_dist(gpu[i], h_of(cpu[i], dt));
        if (isnan(cpu[i]) != isnan(f_of(gpu[i], dt))) u = 1L << 20, d = INFINITY;
        if (d > max_abs) max_abs = d;
        if (d <= floor_abs && u > max_ulps) continue; /* below the absolute floor */
        if (u > worst) worst = u, wi = i;
        nbad += u > max_ulps;
    }
    int ok = worst <= max_ulps;
    g_checks++;
    if (!ok) g_fail++;
    double scaled = max_abs / (max_ref > 1 ? max_ref : 1);
    SIM_RECORD(name, scaled, 1.0, ok);
    printf("%-4s %-44s max %ld ulp (tol %ld), %ld over, max_abs %.3e scaled %.3e\n", ok ? "ok" : "FAIL", name, worst,
           max_ulps, nbad, max_abs, scaled);
    if (!ok) printf("     worst element %zu: gpu %.9g cpu %.9g\n", wi, f_of(gpu[wi], dt), cpu[wi]);
}

/* ------------------------------------------------------------------ MMA */

/* one warp: fragments loaded with the PTX ISA's per-lane formulas (written
 * out here independently of kernels/fast.cuh), D = A B + C stored back */
template <int DT>
__global__ void mma_probe_kernel(float *D, const uint16_t *A, const uint16_t *Bm, const float *Cm) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    uint32_t a[4], b[2];
    float c[4];
    for (int r = 0; r < 4; r++) {
        const int row = g + 8 * (r & 1), col = 2 * t + 8 * (r >> 1);
        a[r] = (uint32_t)A[row * 16 + col] | ((uint32_t)A[row * 16 + col + 1] << 16);
    }
    for (int r = 0; r < 2; r++) {
        const int k = 2 * t + 8 * r;
        b[r] = (uint32_t)Bm[k * 8 + g] | ((uint32_t)Bm[(k + 1) * 8 + g] << 16);
    }
    for (int i = 0; i < 4; i++) c[i] = Cm[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)];
    miles_mma16816<DT>(c, a, b);
    for (int i = 0; i < 4; i++) D[(g + 8 * (i >> 1)) * 8 + 2 * t + (i & 1)] = c[i];
}

static void mma_case(int dt, const char *what) {
    auto A = rounded(rnd_vec(256, -2, 2), dt), B = rounded(rnd_vec(128, -2, 2), dt), C = rnd_vec(128);
    std::vector<float> ref(128);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 8; j++) {
            double s = C[i * 8 + j];
            for (int k = 0; k < 16; k++) s += (double)A[i * 16 + k] * B[k * 8 + j];
            ref[i * 8 + j] = (float)s;
        }
    Dev<uint16_t> dA(to_h(A, dt)), dB(to_h(B, dt));
    Dev<float> dC(C), dD(128);
    if (dt == MILES_CUDA_BF16)
        MILES_KERNEL_CALL(mma_probe_kernel<MILES_CUDA_BF16>, 1, 32, 0, g_stream, dD.p, dA.p, dB.p, dC.p);
    else
        MILES_KERNEL_CALL(mma_probe_kernel<MILES_CUDA_F16>, 1, 32, 0, g_stream, dD.p, dA.p, dB.p, dC.p);
    CUDA_CHECK(cudaGetLastError());
    char name[96];
    snprintf(name, sizeof name, "mma m16n8k16 %s (%s)", dt_name(dt), what);
    check(name, dD.down().data(), ref.data(), 128, 1e-5);
}

static void test_mma(void) {
    for (int dt : g_dts)
        if (dt_ok(dt)) mma_case(dt, g_cc >= 80 ? "tensor-core instruction" : "portable shuffles");
#ifdef SIMT_EMULATOR
    if (g_cc >= 80) { /* the sm_70 path of the same kernel, in the same run */
        simt_set_compute_capability(70);
        for (int dt : g_dts) mma_case(dt, "portable shuffles, emulated sm_70");
        simt_set_compute_capability(g_cc);
    }
#endif
}

/* ------------------------------------------------------- GEMMs (Lt) */

static void test_gemm_h(void) {
    const int N = 37, C = 40, OC = 72;
    for (int dt : g_dts) {
        if (!dt_ok(dt)) continue;
        auto X = rounded(rnd_vec((size_t)N * C), dt), W = rounded(rnd_vec((size_t)OC * C), dt),
             b = rounded(rnd_vec(OC), dt);
        Dev<uint16_t> dX(to_h(X, dt)), dW(to_h(W, dt)), db(to_h(b, dt)), dY((size_t)N * OC);
        std::vector<float> Y((size_t)N * OC);
        linear_forward(Y.data(), X.data(), W.data(), b.data(), N, C, OC);
        char name[96];
        for (int fallback = 0; fallback < 2; fallback++) {
            if (fallback) setenv("MILES_CUDA_LT_NO_EPILOGUE", "1", 1);
            /* a different K per pass: a new plan */
            const int K = fallback ? C - 8 : C;
            std::vector<float> Yk((size_t)N * OC);
            if (fallback) {
                std::vector<float> Xk((size_t)N * K), Wk((size_t)OC * K);
                for (int i = 0; i < N; i++)
                    for (int k = 0; k < K; k++) Xk[(size_t)i * K + k] = X[(size_t)i * C + k];
                for (int o = 0; o < OC; o++)
                    for (int k = 0; k < K; k++) Wk[(size_t)o * K + k] = W[(size_t)o * C + k];
                linear_forward(Yk.data(), Xk.data(), Wk.data(), b.data(), N, K, OC);
            } else {
                Yk = Y;
            }
            /* X[:, :K] with row stride C, W[:, :K] with row stride C */
            OPOK(miles_gemm_lt_cuda(0, 1, N, OC, K, 1.0f, dX.p, C, dW.p, C, 0.0f, NULL, OC, dY.p, OC, dt, dt, db.p,
                                    STREAM));
            int epi = miles_cuda_lt_uses_epilogue(N, OC, K, dt);
            snprintf(name, sizeof name, "gemm_lt %s + bias (%s)", dt_name(dt),
                     epi == 1 ? "BIAS epilogue" : epi == 0 ? "fallback: bias fill, beta 1" : "?");
            check_h(name, dY.down(), Yk, dt, 1);
            check_true(fallback ? "gemm_lt bias fallback taken when refused" : "gemm_lt BIAS epilogue accepted",
                       epi == (fallback ? 0 : 1), "");
            if (fallback) unsetenv("MILES_CUDA_LT_NO_EPILOGUE");
        }
        /* fp32 D = X W^T + C, C another buffer */
        auto Cm = rnd_vec((size_t)N * OC);
        Dev<float> dCm(Cm), dD((size_t)N * OC);
        std::vector<float> ref = Cm;
        miles_gemm(0, 1, N, OC, C, 1.0f, X.data(), C, W.data(), C, 1.0f, ref.data(), OC);
        OPOK(miles_gemm_lt_cuda(0, 1, N, OC, C, 1.0f, dX.p, C, dW.p, C, 1.0f, dCm.p, OC, dD.p, OC, dt,
                                MILES_CUDA_F32, NULL, STREAM));
        snprintf(name, sizeof name, "gemm_lt %s -> fp32, D = AB + C", dt_name(dt));
        check(name, dD.down().data(), ref.data(), ref.size(), 1e-5);
        /* fp32 bias epilogue */
        auto bf = rnd_vec(OC);
        Dev<float> dbf(bf);
        std::vector<float> Yf((size_t)N * OC);
        linear_forward(Yf.data(), X.data(), W.data(), bf.data(), N, C, OC);
        OPOK(miles_gemm_lt_cuda(0, 1, N, OC, C, 1.0f, dX.p, C, dW.p, C, 0.0f, NULL, OC, dD.p, OC, dt, MILES_CUDA_F32,
                                dbf.p, STREAM));
        snprintf(name, sizeof name, "gemm_lt %s -> fp32 + fp32 bias", dt_name(dt));
        check(name, dD.down().data(), Yf.data(), Yf.size(), 1e-5);

        /* the fused-QKV weight gradient: 3 batches, dW_i (+)= dY[:, iH:(i+1)H]^T X,
         * X shared (stride 0), the dW_i (H^2 + H) apart like q.w, k.w, v.w */
        const int H = 24, NB = 3;
        const long long gap = (long long)H * H + H;
        auto dYq = rounded(rnd_vec((size_t)N * 3 * H), dt), Xq = rounded(rnd_vec((size_t)N * H), dt);
        auto G0 = rnd_vec((size_t)(NB - 1) * gap + (size_t)H * H);
        std::vector<float> G = G0;
        for (int i = 0; i < NB; i++)
            miles_gemm(1, 0, H, H, N, 1.0f, dYq.data() + i * H, 3 * H, Xq.data(), H, 1.0f, G.data() + i * gap, H);
        Dev<uint16_t> ddYq(to_h(dYq, dt)), dXq(to_h(Xq, dt));
        Dev<float> dG(G0);
        OPOK(miles_gemm_h_cuda(1, 0, H, H, N, 1.0f, ddYq.p, 3 * H, H, dXq.p, H, 0, 1.0f, dG.p, H, gap, NB, dt,
                               MILES_CUDA_F32, STREAM));
        snprintf(name, sizeof name, "gemm_h %s strided batch (B stride 0) -> fp32", dt_name(dt));
        check(name, dG.down().data(), G.data(), G.size(), 1e-5);
    }
}

/* ------------------------------------------------------------ LayerNorm */

static void ln_case(int dt, int N, int C, float p) {
    const float eps = 1e-12f;
    char name[128];
    MilesDropoutKey key = {p, 0xfeedULL, 77, MILES_DROPID_LAYER(1, MILES_DROPSITE_ATTN_OUT)};
    auto x = rounded(rnd_vec((size_t)N * C, -2, 2), dt), proj = rounded(rnd_vec((size_t)N * C, -2, 2), dt);
    auto w = rnd_vec(C, 0.5f, 1.5f), b = rnd_vec(C);
    /* CPU: res = x + dropout(proj), rounded; out = LayerNorm(res) */
    std::vector<float> dp((size_t)N * C), res((size_t)N * C), out((size_t)N * C), mean(N), rstd(N);
    dropout_forward(dp.data(), proj.data(), dp.size(), key);
    residual_forward(res.data(), x.data(), dp.data(), res.size());
    res = rounded(res, dt);
    layernorm_forward(out.data(), mean.data(), rstd.data(), res.data(), w.data(), b.data(), N, C, eps);
    Dev<uint16_t> dx(to_h(x, dt)), dproj(to_h(proj, dt)), dres((size_t)N * C), dout((size_t)N * C);
    Dev<float> dw(w), db(b), dmean(N), drstd(N);
    OPOK(residual_ln_forward_cuda(dres.p, dout.p, dmean.p, drstd.p, dx.p, dproj.p, dw.p, db.p, N, C, eps, key, NULL,
                                  dt, STREAM));
    auto gres = to_f(dres.down(), dt);
    snprintf(name, sizeof name, "residual_ln_fwd %s N%d C%d p%.1f res (masks)", dt_name(dt), N, C, p);
    check(name, gres.data(), res.data(), res.size(), 0, 1);
    snprintf(name, sizeof name, "residual_ln_fwd %s N%d C%d p%.1f out", dt_name(dt), N, C, p);
    check_h(name, dout.down(), out, dt, 1);
    snprintf(name, sizeof name, "residual_ln_fwd %s C%d mean, rstd", dt_name(dt), C);
    auto gm = dmean.down(), gr = drstd.down();
    std::vector<float> both(gm), bothc(mean);
    both.insert(both.end(), gr.begin(), gr.end());
    bothc.insert(bothc.end(), rstd.begin(), rstd.end());
    check(name, both.data(), bothc.data(), both.size(), 1e-5);

    /* backward: dres = LN backward (GPU statistics, as in training);
     * dproj = dropout backward; parameter gradients accumulated */
    auto g = rnd_vec((size_t)N * C);
    std::vector<float> dres_c((size_t)N * C, 0.0f), dproj_c((size_t)N * C, 0.0f);
    auto gw = rnd_vec(C), gb = rnd_vec(C), gbias = rnd_vec(C);
    std::vector<float> gw0 = gw, gb0 = gb, gbias0 = gbias;
    layernorm_backward(dres_c.data(), gw.data(), gb.data(), g.data(), res.data(), w.data(), gm.data(), gr.data(), N, C);
    dropout_backward(dproj_c.data(), dres_c.data(), dproj_c.size(), key);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) gbias[c] += dproj_c[(size_t)n * C + c];
    Dev<float> dg(g), ddres((size_t)N * C), dgw(gw0), dgb(gb0), dgbias(gbias0), ws(ln_backward_workspace(N, C));
    Dev<uint16_t> ddproj((size_t)N * C);
    OPOK(ln_backward_cuda(ddres.p, ddproj.p, dgw.p, dgb.p, dgbias.p, 1, dg.p, dres.p, dw.p, dmean.p, drstd.p, N, C,
                          key, NULL, ws.p, ws.n, dt, STREAM));
    snprintf(name, sizeof name, "ln_backward %s N%d C%d p%.1f dres", dt_name(dt), N, C, p);
    check(name, ddres.down().data(), dres_c.data(), dres_c.size(), 1e-5);
    snprintf(name, sizeof name, "ln_backward %s N%d C%d p%.1f dproj", dt_name(dt), N, C, p);
    check_h(name, ddproj.down(), dproj_c, dt, 1);
    snprintf(name, sizeof name, "ln_backward %s C%d dw (+=)", dt_name(dt), C);
    check(name, dgw.down().data(), gw.data(), C, 1e-5);
    snprintf(name, sizeof name, "ln_backward %s C%d db (+=)", dt_name(dt), C);
    check(name, dgb.down().data(), gb.data(), C, 1e-5);
    snprintf(name, sizeof name, "ln_backward %s C%d dbias = sum dproj (+=)", dt_name(dt), C);
    check(name, dgbias.down().data(), gbias.data(), C, 1e-5);
}

static void emb_case(int dt, int B, int T, int C, float p) {
    const int V = 41, P = T + 3, TV = 2, N = B * T;
    const float eps = 1e-12f;
    char name[128];
    MilesDropoutKey key = {p, 0xabcULL, 3, MILES_DROPID_EMB};
    std::vector<int32_t> ids(N), tt(N);
    for (int i = 0; i < N; i++) ids[i] = (int32_t)(rnd_u64() % V), tt[i] = (int32_t)(rnd_u64() % TV);
    auto wte = rnd_vec((size_t)V * C), wpe = rnd_vec((size_t)P * C), wtt = rnd_vec((size_t)TV * C);
    auto w = rnd_vec(C, 0.5f, 1.5f), b = rnd_vec(C);
    std::vector<float> sum((size_t)N * C), ln((size_t)N * C), out((size_t)N * C), mean(N), rstd(N);
    embedding_forward(sum.data(), ids.data(), tt.data(), wte.data(), wpe.data(), wtt.data(), B, T, C);
    layernorm_forward(ln.data(), mean.data(), rstd.data(), sum.data(), w.data(), b.data(), N, C, eps);
    dropout_forward(out.data(), ln.data(), out.size(), key);
    Dev<int32_t> dids(ids), dtt(tt);
    Dev<float> dwte(wte), dwpe(wpe), dwtt(wtt), dw(w), db(b), dmean(N), drstd(N);
    Dev<uint16_t> dout((size_t)N * C);
    OPOK(emb_ln_forward_cuda(dout.p, dmean.p, drstd.p, dids.p, dtt.p, dwte.p, dwpe.p, dwtt.p, dw.p, db.p, B, T, C, eps,
                             key, NULL, dt, STREAM));
    snprintf(name, sizeof name, "emb_ln_fwd %s B%d T%d C%d p%.1f", dt_name(dt), B, T, C, p);
    check_h(name, dout.down(), out, dt, 1);
    auto gm = dmean.down(), gr = drstd.down();
    snprintf(name, sizeof name, "emb_ln_fwd %s C%d rstd", dt_name(dt), C);
    check(name, gr.data(), rstd.data(), N, 1e-5);

    auto g = rnd_vec((size_t)N * C), gw = rnd_vec(C), gb = rnd_vec(C);
    std::vector<float> gw0 = gw, gb0 = gb, dln((size_t)N * C, 0.0f), demb((size_t)N * C, 0.0f);
    dropout_backward(dln.data(), g.data(), dln.size(), key);
    layernorm_backward(demb.data(), gw.data(), gb.data(), dln.data(), sum.data(), w.data(), gm.data(), gr.data(), N, C);
    Dev<float> dg(g), ddemb((size_t)N * C), dgw(gw0), dgb(gb0), ws(ln_backward_workspace(N, C));
    OPOK(emb_ln_backward_cuda(ddemb.p, dgw.p, dgb.p, 1, dg.p, dids.p, dtt.p, dwte.p, dwpe.p, dwtt.p, dw.p, dmean.p,
                              drstd.p, B, T, C, key, NULL, ws.p, ws.n, STREAM));
    snprintf(name, sizeof name, "emb_ln_backward C%d p%.1f demb", C, p);
    check(name, ddemb.down().data(), demb.data(), demb.size(), 1e-5);
    snprintf(name, sizeof name, "emb_ln_backward C%d dw, db (+=)", C);
    auto a = dgw.down(), bb = dgb.down();
    a.insert(a.end(), bb.begin(), bb.end());
    gw.insert(gw.end(), gb.begin(), gb.end());
    check(name, a.data(), gw.data(), a.size(), 1e-5);
}

static void test_layernorm(void) {
    /* C 40: one chunk per lane, most lanes idle; 264: a partial last chunk */
    ln_case(MILES_CUDA_F16, 37, 40, 0.1f);
    ln_case(MILES_CUDA_F16, 37, 264, 0.0f);
    if (dt_ok(MILES_CUDA_BF16)) {
        ln_case(MILES_CUDA_BF16, 37, 264, 0.1f);
        ln_case(MILES_CUDA_BF16, 13, 40, 0.0f);
    }
    { /* widths that are not a multiple of 8: refused with a message (the model uses fp32 activations) */
        Dev<uint16_t> a(36 * 5), b2(36 * 5), c2(36 * 5), d2(36 * 5);
        Dev<float> w(36), bb(36), m(5), r(5);
        MilesDropoutKey k0 = {0.0f, 1, 1, 1};
        int st = residual_ln_forward_cuda(a.p, b2.p, m.p, r.p, c2.p, d2.p, w.p, bb.p, 5, 36, 1e-12f, k0, NULL,
                                          MILES_CUDA_F16, STREAM);
        check_true("residual_ln_forward: C 36 refused (multiple of 8 needed)",
                   st == MILES_EUNSUPPORTED && strstr(miles_last_error(), "multiple of 8"), miles_last_error());
    }
    emb_case(MILES_CUDA_F16, 3, 11, 40, 0.1f);
    if (dt_ok(MILES_CUDA_BF16)) emb_case(MILES_CUDA_BF16, 5, 7, 264, 0.1f);
    if (!g_quick) ln_case(MILES_CUDA_F16, 301, 1024, 0.1f);
}

/* -------------------------------------------------- GELU, column sums */

static void test_elementwise(void) {
    char name[128];
    for (int dt : g_dts) {
        if (!dt_ok(dt)) continue;
        for (int C : {36, 136}) { /* 36: the scalar path of the GELU kernels */
            const int N = 37;
            const size_t n = (size_t)N * C;
            auto x = rounded(rnd_vec(n, -4, 4), dt);
            std::vector<float> y(n);
            gelu_forward(y.data(), x.data(), n);
            Dev<uint16_t> dx(to_h(x, dt)), dy(n);
            OPOK(gelu_forward_h_cuda(dy.p, dx.p, n - (C == 36 ? 3 : 0), dt, STREAM)); /* n - 3: the scalar path */
            if (C == 36) y.resize(n - 3);
            snprintf(name, sizeof name, "gelu_forward_h %s n%zu", dt_name(dt), y.size());
            auto gy = dy.down();
            gy.resize(y.size());
            check_h(name, gy, y, dt, 1);

            /* backward in place + the bias gradient */
            auto dout = rounded(rnd_vec(n), dt);
            std::vector<float> dinp(n, 0.0f);
            gelu_backward(dinp.data(), x.data(), dout.data(), n);
            auto gb = rnd_vec(C);
            std::vector<float> gb0 = gb;
            for (int r = 0; r < N; r++)
                for (int c = 0; c < C; c++) gb[c] += dinp[(size_t)r * C + c];
            Dev<uint16_t> dd(to_h(dout, dt));
            Dev<float> dgb(gb0), ws(colsum_workspace(N, C));
            Dev<int32_t> ovf(1);
            CUDA_CHECK(cudaMemset(ovf.p, 0, sizeof(int32_t)));
            OPOK(gelu_backward_h_cuda(dd.p, dgb.p, 1, dx.p, N, C, ws.p, ws.n, ovf.p, dt, STREAM));
            snprintf(name, sizeof name, "gelu_backward_h %s N%d C%d", dt_name(dt), N, C);
            check_h(name, dd.down(), dinp, dt, 1);
            snprintf(name, sizeof name, "gelu_backward_h %s C%d dbias (+=)", dt_name(dt), C);
            check(name, dgb.down().data(), gb.data(), C, 1e-5);
            int clean = ovf.down()[0] == 0;
            /* one dout at 65504 (what a clamping GEMM would leave): flagged */
            std::vector<uint16_t> hd = to_h(dout, dt);
            hd[n / 2] = h_of(dt == MILES_CUDA_BF16 ? 70000.0f : 65504.0f, dt);
            dd.up(hd);
            OPOK(gelu_backward_h_cuda(dd.p, NULL, 0, dx.p, N, C, ws.p, ws.n, ovf.p, dt, STREAM));
            snprintf(name, sizeof name, "gelu_backward_h %s C%d overflow flag", dt_name(dt), C);
            check_true(name, clean && ovf.down()[0] == 1, clean ? "65504 flagged" : "false positive");
        }
        /* column sums through the segment mapping (the fused QKV bias) */
        const int N = 45, H = 24, C = 3 * H;
        const long long gap = (long long)H * H + H;
        auto X = rounded(rnd_vec((size_t)N * C), dt);
        auto out0 = rnd_vec((size_t)2 * gap + H);
        std::vector<float> out = out0;
        for (int c = 0; c < C; c++) {
            float s = 0;
            for (int r = 0; r < N; r++) s += X[(size_t)r * C + c];
            out[(size_t)(c / H) * gap + c % H] = s; /* written (accumulate 0) */
        }
        Dev<uint16_t> dX(to_h(X, dt));
        Dev<float> dout(out0), ws(colsum_workspace(N, C));
        OPOK(colsum_h_cuda(dout.p, H, gap, 0, dX.p, N, C, ws.p, ws.n, dt, STREAM));
        snprintf(name, sizeof name, "colsum_h %s N%d C%d (3 segments, written)", dt_name(dt), N, C);
        check(name, dout.down().data(), out.data(), out.size(), 1e-5);

        /* pooling of the 16-bit hidden state, fp32 out */
        const int B = 5, T = 7, Cp = 33;
        auto hid = rounded(rnd_vec((size_t)B * T * Cp), dt);
        std::vector<int32_t> mask((size_t)B * T);
        for (int bb = 0; bb < B; bb++)
            for (int t = 0; t < T; t++) mask[(size_t)bb * T + t] = bb == 2 ? 0 : t < 1 + bb % T;
        std::vector<float> pc((size_t)B * Cp), pm((size_t)B * Cp);
        cls_pool_forward(pc.data(), hid.data(), B, T, Cp);
        mean_pool_forward(pm.data(), hid.data(), mask.data(), B, T, Cp);
        Dev<uint16_t> dh(to_h(hid, dt));
        Dev<int32_t> dm(mask);
        Dev<float> dp((size_t)B * Cp);
        OPOK(pool_forward_h_cuda(dp.p, dh.p, dm.p, B, T, Cp, 0, dt, STREAM));
        snprintf(name, sizeof name, "pool_forward_h %s cls", dt_name(dt));
        check(name, dp.down().data(), pc.data(), pc.size(), 0, 1);
        OPOK(pool_forward_h_cuda(dp.p, dh.p, dm.p, B, T, Cp, 1, dt, STREAM));
        snprintf(name, sizeof name, "pool_forward_h %s mean (row without tokens)", dt_name(dt));
        check(name, dp.down().data(), pm.data(), pm.size(), 1e-6);
    }
    /* dropout with the (seed, step) read from the device (what a graph replays) */
    {
        const size_t n = 1001;
        MilesDropoutKey key = {0.2f, 0x1234ULL, 99, 0x10000u};
        auto in = rnd_vec(n), g = rnd_vec(n);
        std::vector<float> out(n), din(n, 0.0f);
        dropout_forward(out.data(), in.data(), n, key);
        dropout_backward(din.data(), g.data(), n, key);
        std::vector<uint64_t> rng = {key.seed, key.step};
        Dev<uint64_t> drng(rng);
        MilesDropoutKey stale = key;
        stale.seed = 1, stale.step = 2; /* must not be used */
        Dev<float> din_(in), dout_(n), dg(g), ddin(n);
        CUDA_CHECK(cudaMemset(ddin.p, 0, n * sizeof(float)));
        OPOK(dropout_forward_rng_cuda(dout_.p, din_.p, n, stale, drng.p, STREAM));
        OPOK(dropout_backward_rng_cuda(ddin.p, dg.p, n, stale, drng.p, STREAM));
        check("dropout_forward_rng (seed, step on the device)", dout_.down().data(), out.data(), n, 0, 1);
        check("dropout_backward_rng (seed, step on the device)", ddin.down().data(), din.data(), n, 0, 1);
    }
    /* device scalars */
    auto x = rnd_vec(1001);
    std::vector<float> s = {0.5f, 8.0f}, ref(x);
    for (auto &v : ref) v *= 4.0f;
    Dev<float> dx(x), ds(s);
    OPOK(scale_device_cuda(dx.p, x.size(), ds.p, ds.p + 1, STREAM));
    check("scale_device x *= s1 * s2", dx.down().data(), ref.data(), ref.size(), 0, 1);
    /* the fp32 bias fill (the fallback of an fp32-output GEMM) */
    const int M = 9, Nc = 13, ld = 16;
    auto D = rnd_vec((size_t)M * ld), bias = rnd_vec(Nc);
    std::vector<float> Dr = D;
    for (int r = 0; r < M; r++)
        for (int c = 0; c < Nc; c++) Dr[(size_t)r * ld + c] = bias[c];
    Dev<float> dD(D), db(bias);
    OPOK(miles_bias_fill_cuda(dD.p, ld, db.p, M, Nc, MILES_CUDA_F32, STREAM));
    check("bias_fill fp32 (ldd > N)", dD.down().data(), Dr.data(), Dr.size(), 0, 1);
}

/* ------------------------------------------------------------ attention */

static void flash_case(int dt, int B, int T, int C, int NH, float p) {
    const size_t BTC = (size_t)B * T * C, BHTT = (size_t)B * NH * T * T, N = (size_t)B * T;
    char name[160];
    auto q = rounded(rnd_vec(BTC, -2, 2), dt), k = rounded(rnd_vec(BTC, -2, 2), dt), v = rounded(rnd_vec(BTC), dt);
    auto dout = rounded(rnd_vec(BTC), dt);
    std::vector<int32_t> mask((size_t)B * T);
    for (int b = 0; b < B; b++) {
        int len = b == 1 ? 0 : 1 + (int)(rnd_u64() % T); /* batch row 1: no real token */
        if (b == 0) len = T;
        for (int t = 0; t < T; t++) mask[(size_t)b * T + t] = t < len;
    }
    if (B > 2) mask[(size_t)2 * T + T / 2] = 0, mask[(size_t)2 * T] = 1; /* a hole */
    MilesDropoutKey key = {p, 0x0123456789abcdefULL, 5000000000ULL, MILES_DROPID_LAYER(3, MILES_DROPSITE_ATTN_PROBS)};
    std::vector<float> out(BTC), att(BHTT), attd(BHTT), scratch(BHTT);
    attention_forward(out.data(), att.data(), p > 0 ? attd.data() : NULL, q.data(), k.data(), v.data(), mask.data(),
                      B, T, C, NH, key);
    /* the GPU reads q, k, v from one fused [N, 3C] buffer */
    std::vector<float> qkv(N * 3 * C);
    for (size_t r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            qkv[r * 3 * C + c] = q[r * C + c];
            qkv[r * 3 * C + C + c] = k[r * C + c];
            qkv[r * 3 * C + 2 * C + c] = v[r * C + c];
        }
    Dev<uint16_t> dqkv(to_h(qkv, dt)), dctx(N * C), ddo(to_h(dout, dt)), dgrad(N * 3 * C);
    Dev<int32_t> dmask(mask);
    Dev<float> dlse((size_t)B * NH * T), dsum((size_t)B * NH * T);
    const uint16_t *Q = dqkv.p, *K = dqkv.p + C, *Vp = dqkv.p + 2 * C;
    OPOK(flash_attention_forward_cuda(dctx.p, C, dlse.p, Q, K, Vp, 3 * C, dmask.p, B, T, C, NH, key, NULL, dt, STREAM));
    const double tf = dt == MILES_CUDA_BF16 ? 1e-2 : 2e-3, tb = dt == MILES_CUDA_BF16 ? 3e-2 : 5e-3;
    snprintf(name, sizeof name, "flash_fwd %s B%d T%d hs%d p%.2f out", dt_name(dt), B, T, C / NH, p);
    auto gout = to_f(dctx.down(), dt);
    check(name, gout.data(), out.data(), BTC, tf);

    std::vector<float> gq(BTC, 0.0f), gk(BTC, 0.0f), gv(BTC, 0.0f);
    attention_backward(gq.data(), gk.data(), gv.data(), scratch.data(), dout.data(), att.data(),
                       p > 0 ? attd.data() : NULL, q.data(), k.data(), v.data(), B, T, C, NH, key);
    uint16_t *G = dgrad.p;
    OPOK(flash_attention_backward_cuda(G, G + C, G + 2 * C, 3 * C, dsum.p, ddo.p, C, dctx.p, C, dlse.p, Q, K, Vp,
                                       3 * C, dmask.p, B, T, C, NH, key, NULL, NULL, dt, STREAM));
    auto grad = to_f(dgrad.down(), dt);
    std::vector<float> rq(BTC), rk(BTC), rv(BTC);
    size_t masked_nonzero = 0;
    for (size_t r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            rq[r * C + c] = grad[r * 3 * C + c];
            rk[r * C + c] = grad[r * 3 * C + C + c];
            rv[r * C + c] = grad[r * 3 * C + 2 * C + c];
            if (!mask[r] && (rk[r * C + c] != 0.0f || rv[r * C + c] != 0.0f)) masked_nonzero++;
        }
    const char *nm[3] = {"dq", "dk", "dv"};
    const std::vector<float> *gg[3] = {&rq, &rk, &rv}, *cc[3] = {&gq, &gk, &gv};
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "flash_bwd %s B%d T%d hs%d p%.2f %s", dt_name(dt), B, T, C / NH, p, nm[i]);
        check(name, gg[i]->data(), cc[i]->data(), BTC, tb);
    }
    snprintf(name, sizeof name, "flash_bwd %s B%d T%d masked keys: dk = dv = 0", dt_name(dt), B, T);
    char msg[64];
    snprintf(msg, sizeof msg, "%zu non-zero", masked_nonzero);
    check_true(name, masked_nonzero == 0, msg);
}

static void test_attention(void) {
    flash_case(MILES_CUDA_F16, 3, 37, 64, 4, 0.0f);        /* hs 16 -> D 32, one tile */
    flash_case(MILES_CUDA_F16, 3, 37, 64, 4, 0.1f);        /* + dropout */
    if (dt_ok(MILES_CUDA_BF16)) {
        flash_case(MILES_CUDA_BF16, 3, 37, 64, 4, 0.1f);
        flash_case(MILES_CUDA_BF16, 2, 77, 48, 2, 0.25f);  /* hs 24, two tiles, online softmax */
    } else {
        flash_case(MILES_CUDA_F16, 2, 77, 48, 2, 0.25f);
    }
    flash_case(MILES_CUDA_F16, 2, 20, 40, 2, 0.0f);        /* hs 20: scalar tile loads */
    flash_case(MILES_CUDA_F16, 1, 9, 128, 2, 0.1f);        /* hs 64 -> D 64 */
    if (!g_quick) {
        flash_case(MILES_CUDA_F16, 4, 128, 384, 6, 0.1f);  /* hs 64 */
        if (dt_ok(MILES_CUDA_BF16)) flash_case(MILES_CUDA_BF16, 2, 200, 256, 4, 0.1f);
    }
}

/* ----------------------------------------------------------- embeddings */

static void test_embedding_seg(void) {
    const int B = 5, T = 23, C = 72, V = 41, P = 30, TV = 2, N = B * T;
    std::vector<int32_t> ids(N), tt(N);
    for (int i = 0; i < N; i++) {
        ids[i] = (int32_t)(rnd_u64() % 3 == 0 ? 0 : rnd_u64() % V); /* id 0 ~40 times: 2 segments */
        tt[i] = (int32_t)(rnd_u64() % 5 == 0); /* type 0 ~90 times: 3 segments */
    }
    std::vector<int32_t> pos(2 * N), row(MILES_EMB_SEG_MAX(N)), beg(MILES_EMB_SEG_MAX(N) + 1),
        multi(MILES_EMB_SEG_MAX(N)), mrow(MILES_EMB_MULTI_MAX(N, TV)), mbeg(mrow.size()), mend(mrow.size()), counts(2),
        slot(V, -1), uniq(N), cnt(N + TV + 1);
    MilesEmbSegments sg = {pos.data(), row.data(), beg.data(), multi.data(), mrow.data(), mbeg.data(), mend.data(),
                           counts.data(), 0};
    miles_emb_segments_build(&sg, ids.data(), tt.data(), N, V, TV, slot.data(), uniq.data(), cnt.data());
    int slot_ok = 1;
    for (int s : slot) slot_ok &= s == -1;
    char msg[128];
    snprintf(msg, sizeof msg, "%d segments, %d rows with several, %d partial slots (max %d)", counts[0], counts[1],
             sg.slots, MILES_EMB_SLOTS_MAX(N));
    check_true("emb segments: bounds, scratch restored", counts[0] <= MILES_EMB_SEG_MAX(N) && counts[1] >= 2 &&
               sg.slots <= MILES_EMB_SLOTS_MAX(N) && slot_ok && beg[counts[0]] == 2 * N, msg);
    auto dout = rnd_vec((size_t)N * C), gte = rnd_vec((size_t)V * C), gpe = rnd_vec((size_t)P * C),
         gtt = rnd_vec((size_t)TV * C);
    Dev<float> ddout(dout), dgte(gte), dgpe(gpe), dgtt(gtt), ws((size_t)(sg.slots + 1) * C);
    embedding_backward(gte.data(), gpe.data(), gtt.data(), dout.data(), ids.data(), tt.data(), B, T, C);
    Dev<int32_t> dpos(pos), drow(row), dbeg(beg), dmulti(multi), dmrow(mrow), dmbeg(mbeg), dmend(mend), dcounts(counts);
    OPOK(embedding_backward_seg_cuda(dgte.p, dgpe.p, dgtt.p, V, ddout.p, dcounts.p, drow.p, dbeg.p, dmulti.p, dmrow.p,
                                     dmbeg.p, dmend.p, dpos.p, MILES_EMB_SEG_MAX(N), MILES_EMB_MULTI_MAX(N, TV), B, T,
                                     C, ws.p, STREAM));
    check("embedding_backward_seg dwte (segments)", dgte.down().data(), gte.data(), gte.size(), 1e-5);
    check("embedding_backward_seg dwpe", dgpe.down().data(), gpe.data(), gpe.size(), 1e-5);
    check("embedding_backward_seg dwtt (3 segments of type 0)", dgtt.down().data(), gtt.data(), gtt.size(), 1e-5);
}

/* ------------------------------------------------------------ optimizer */

static void ref_adamw_step(std::vector<float> &P, const std::vector<float> &G, std::vector<float> &M,
                           std::vector<float> &V, size_t off, size_t n, int decay, MilesCudaAdamW hp, float coef) {
    const double b1 = hp.beta1, b2 = hp.beta2;
    const double bc1 = 1.0 - pow(b1, (double)hp.step), bc2 = 1.0 - pow(b2, (double)hp.step);
    const float step_size = (float)((double)hp.lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float dm = decay ? (float)(1.0 - (double)hp.lr * (double)hp.weight_decay) : 1.0f;
    for (size_t i = off; i < off + n; i++) {
        float g = G[i] * coef;
        float p = P[i] * dm;
        float mi = M[i] * (float)b1 + (float)(1.0 - b1) * g;
        float vi = V[i] * (float)b2 + (float)(1.0 - b2) * (g * g);
        M[i] = mi;
        V[i] = vi;
        P[i] = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + hp.eps));
    }
}

/* the reference's hyper-parameters for one chunk: its group lr, rounded as
 * the CPU's miles_adamw_group_lr (the scale is per tensor, not per step) */
static MilesCudaAdamW group_hp(MilesCudaAdamW hp, const MilesCudaChunk &c) {
    hp.lr = c.lr_scale == 1.0 ? hp.lr : (float)((double)hp.lr * c.lr_scale);
    return hp;
}

static void test_optimizer(void) {
    const int dt = MILES_CUDA_F16;
    /* three tensors; chunks of 4096 (several per tensor); tensors 0 and 2 have a 16-bit copy */
    const size_t sizes[3] = {5003, 12000, 3011};
    const int decays[3] = {1, 0, 1};
    const int64_t halves[3] = {7, -1, 5010};
    /* parameter groups: tensor 1 a head (head lr 5x), tensor 2 a decayed encoder layer */
    const double lr_scales[3] = {1.0, 5.0, 0.729};
    std::vector<MilesCudaChunk> ch;
    size_t n = 0;
    for (int t = 0; t < 3; t++) {
        for (size_t o = 0; o < sizes[t]; o += 4096) {
            MilesCudaChunk c;
            c.off = (int64_t)(n + o);
            c.n = (int32_t)(sizes[t] - o < 4096 ? sizes[t] - o : 4096);
            c.half = halves[t] < 0 ? -1 : halves[t] + (int64_t)o;
            c.decay = decays[t];
            c.lr_scale = lr_scales[t];
            ch.push_back(c);
        }
        n += sizes[t];
    }
    auto P = rnd_vec(n), G = rnd_vec(n, -3, 3);
    std::vector<float> M(n, 0.0f), V(n, 0.0f);
    const float scale = 1024.0f, max_norm = 1.0f;
    for (auto &g : G) g *= scale; /* loss-scaled gradients */
    Dev<float> dP(P), dG(G), dM(M), dV(V), dws(MILES_CUDA_PREP_WORKSPACE), dlr(1);
    Dev<uint16_t> dhalf(5010 + 3011);
    Dev<MilesCudaChunk> dch(ch);
    Dev<MilesCudaOptState> dst(1);
    Dev<MilesLossScalerState> dsc(1);
    CUDA_CHECK(cudaMemset(dst.p, 0, sizeof(MilesCudaOptState)));
    OPOK(loss_scaler_init_cuda(dsc.p, scale, STREAM));
    MilesCudaAdamW hp = {2e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    for (int t = 1; t <= 3; t++) {
        OPOK(grad_prepare_cuda(dst.p, dsc.p, dG.p, n, max_norm, dws.p, STREAM));
        MilesCudaOptState st = dst.down()[0];
        double ss = 0;
        for (size_t i = 0; i < n; i++) ss += (double)(G[i] / scale) * (double)(G[i] / scale);
        float norm = (float)sqrt(ss), coef = (1.0f / scale) * (max_norm / (norm + 1e-6f));
        char name[96];
        snprintf(name, sizeof name, "grad_prepare step %d: norm (unscaled), coef", t);
        float got[2] = {st.norm, st.coef}, want[2] = {norm, coef};
        check(name, got, want, 2, 1e-6);
        hp.step = t;
        for (size_t c = 0; c < ch.size(); c++)
            ref_adamw_step(P, G, M, V, (size_t)ch[c].off, (size_t)ch[c].n, ch[c].decay, group_hp(hp, ch[c]), st.coef);
        OPOK(adamw_fused_cuda(dP.p, dG.p, dM.p, dV.p, dhalf.p, dt, dch.p, (int)ch.size(), hp, NULL, dst.p, STREAM));
    }
    check("adamw_fused x3 params (g * coef, clipped + unscaled, 3 lr groups)", dP.down().data(), P.data(), n, 1e-6);
    check("adamw_fused x3 exp_avg", dM.down().data(), M.data(), n, 1e-6);
    check("adamw_fused x3 exp_avg_sq", dV.down().data(), V.data(), n, 1e-6);
    auto hh = dhalf.down();
    std::vector<uint16_t> hv(hh.begin() + 7, hh.begin() + 7 + 5003), hv2(hh.begin() + 5010, hh.end());
    std::vector<float> p0(P.begin(), P.begin() + 5003), p2(P.begin() + 17003, P.end());
    check_h("adamw_fused 16-bit copy of tensor 0", hv, p0, dt, 0);
    check_h("adamw_fused 16-bit copy of tensor 2", hv2, p2, dt, 0);
    MilesCudaOptState st = dst.down()[0];
    check_true("adamw_fused device step counter", st.step == 3 && st.last_skipped == 0, "3 steps taken");

    /* an Inf gradient: found, the step changes nothing, the counter stays */
    std::vector<float> Gbad = G;
    Gbad[n - 5] = INFINITY;
    dG.up(Gbad);
    auto Pbefore = dP.down();
    OPOK(grad_prepare_cuda(dst.p, dsc.p, dG.p, n, max_norm, dws.p, STREAM));
    hp.step = 4;
    OPOK(adamw_fused_cuda(dP.p, dG.p, dM.p, dV.p, dhalf.p, dt, dch.p, (int)ch.size(), hp, NULL, dst.p, STREAM));
    st = dst.down()[0];
    MilesLossScalerState sc = dsc.down()[0];
    check("adamw_fused skipped on Inf (params unchanged)", dP.down().data(), Pbefore.data(), n, 0, 1);
    check_true("grad_prepare Inf: skipped, counter 3, scaler found_inf",
               st.step == 3 && st.last_skipped == 1 && st.found_inf == 0 && sc.found_inf == 1, "");
    OPOK(loss_scaler_update_cuda(dsc.p, 2.0f, 0.5f, 2000, STREAM));

    /* the learning rate from device memory, no clipping, no scaler */
    dG.up(G);
    std::vector<float> lr = {5e-4f};
    dlr.up(lr);
    OPOK(grad_prepare_cuda(dst.p, NULL, dG.p, n, 0.0f, dws.p, STREAM));
    hp.step = 4;
    hp.lr = 5e-4f;
    for (size_t c = 0; c < ch.size(); c++)
        ref_adamw_step(P, G, M, V, (size_t)ch[c].off, (size_t)ch[c].n, ch[c].decay, group_hp(hp, ch[c]), 1.0f);
    hp.lr = -1.0f; /* must come from lr_dev */
    OPOK(adamw_fused_cuda(dP.p, dG.p, dM.p, dV.p, dhalf.p, dt, dch.p, (int)ch.size(), hp, dlr.p, dst.p, STREAM));
    check("adamw_fused lr on the device, coef 1", dP.down().data(), P.data(), n, 1e-6);

    /* the initial 16-bit copy */
    if (dt_ok(MILES_CUDA_BF16)) {
        OPOK(params_to_half_cuda(dhalf.p, dP.p, dch.p, (int)ch.size(), MILES_CUDA_BF16, STREAM));
        hh = dhalf.down();
        std::vector<uint16_t> b0(hh.begin() + 7, hh.begin() + 7 + 5003);
        std::vector<float> q0(P.begin(), P.begin() + 5003);
        check_h("params_to_half bf16", b0, q0, MILES_CUDA_BF16, 0);
    }
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv) {
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) g_quick = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    }
    const int st = op_test_open_device("16-bit op tests");
    if (st >= 0) return st;
    const struct {
        const char *name;
        void (*fn)(void);
    } sections[] = {{"mma", test_mma},           {"gemm", test_gemm_h},         {"layernorm", test_layernorm},
                    {"ew", test_elementwise},    {"attention", test_attention}, {"embedding", test_embedding_seg},
                    {"optimizer", test_optimizer}};
    int ran = 0;
    for (auto &sec : sections) { /* --only a,b,... */
        int on = !only;
        if (only) {
            std::string list = std::string(",") + only + ",";
            on = list.find(std::string(",") + sec.name + ",") != std::string::npos;
        }
        if (on) sec.fn(), ran++;
    }
    if (!ran) {
        printf("FAIL --only %s: no such section\n", only);
        g_fail++;
    }
    return op_test_finish();
}
