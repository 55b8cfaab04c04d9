/*
 * bench_cuda_model.cu — the Miles model on one GPU (kernels/model_cuda*.cu):
 * bert-base encoder + the "miles" preset heads, random weights, full-length
 * batches.  The cases of issue 15's table:
 *
 *   train    B 32 T 128 and B 64 T 32 (a real title's length): one step =
 *            miles_cuda_model_train_step (zero_grad, forward with dropout,
 *            backward, clip 1.0, AdamW); on the 16-bit path that is one CUDA
 *            graph launch per step after the warm-up.  seq/s and MFU.
 *   memory   device memory held after training B 32 T 128: everything the
 *            model allocated (weights, gradients, AdamW moments, 16-bit copy,
 *            activations, backward buffers) + the cuBLAS workspace, and the
 *            cudaMemGetInfo difference (the context excluded)
 *   latency  B 1, T 32 and T 128 inference (forward, logits copied back):
 *            median ms
 *   infer    B 256 T 32 inference throughput: seq/s
 *
 * One JSON line per (precision, case) on stdout; bench/bench_model_torch_cuda.py
 * prints the same fields for PyTorch, bench/run_gpu_bench.sh compares them.
 *
 * FLOPs: the model's matmul FLOPs, 2 per multiply-add: per token and layer
 * 2(4H^2 + 2HI) + 4TH (QK^T and attention x V), plus the pooler and the heads
 * per sequence; a training step counts 3x the forward (PyTorch's and
 * Megatron's MFU convention).  Two MFUs: against the dense peak of the data
 * sheet (table below: H100/H200 SXM 989 bf16/fp16, 495 tf32, 67 fp32 TFLOP/s)
 * and against gemm_tflops, an 8192^3 GEMM measured here in the same precision
 * (fp16/bf16: 16-bit storage, fp32 accumulation, as the 16-bit path's GEMMs).
 *
 * Usage: bench_cuda_model [--quick] [--precisions bf16,fp32,tf32,fp16]
 *                         [--steps N] [--fast -1|0|1] [--graphs 0|1]
 */
#include "common.cuh"

extern "C" {
#include "miles.h"
}
#include "model_cuda.h"

#include <math.h>
#include <time.h>
#include <algorithm>
#include <string>
#include <vector>

#define MILES_FIXTURE_MUST_ONLY
#include "../tests/cuda/model_fixture.h" /* MUST */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Peak dense TFLOP/s by GPU and precision (vendor data sheets); 0 = unknown. */
static double table_peak(const char *name, int cc, int prec) {
    int pcie = strstr(name, "PCIe") != NULL;
    int h100 = strstr(name, "H100") != NULL || strstr(name, "H200") != NULL || strstr(name, "H800") != NULL;
    int a100 = strstr(name, "A100") != NULL || strstr(name, "A800") != NULL;
    if (cc == 90 && h100) {
        const double sxm[4] = {66.9, 494.7, 989.4, 989.4}, pc[4] = {51.2, 378.0, 756.0, 756.0};
        return pcie ? pc[prec] : sxm[prec];
    }
    if (cc == 80 && a100) {
        const double a[4] = {19.5, 156.0, 312.0, 312.0};
        return a[prec];
    }
    return 0.0;
}

/* Measured: an n^3 GEMM in the precision (random data, median of 5). */
static double gemm_tflops(int prec, int quick) {
    const int n = quick ? 2048 : 8192;
    const size_t nn = (size_t)n * n;
    const int half = prec == MILES_CUDA_PREC_FP16 || prec == MILES_CUDA_PREC_BF16;
    const int dt = prec == MILES_CUDA_PREC_BF16 ? MILES_CUDA_BF16 : MILES_CUDA_F16;
    float *a, *b, *c;
    CUDA_CHECK(cudaMalloc(&a, nn * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&b, nn * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&c, nn * sizeof(float)));
    { /* random data: zeros run faster than real data on some GPUs */
        std::vector<float> h(nn);
        uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (auto &v : h) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            v = (float)((x >> 40) * (1.0 / 16777216.0)) - 0.5f;
        }
        CUDA_CHECK(cudaMemcpy(a, h.data(), nn * sizeof(float), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(b, h.data(), nn * sizeof(float), cudaMemcpyHostToDevice));
    }
    uint16_t *ha = (uint16_t *)c, *hb = (uint16_t *)c + nn; /* 16-bit copies in c's space */
    float *hc = b;
    if (half) {
        MUST(dt == MILES_CUDA_BF16 ? cast_f32_to_bf16_cuda(ha, a, nn, NULL) : cast_f32_to_f16_cuda(ha, a, nn, NULL));
        MUST(dt == MILES_CUDA_BF16 ? cast_f32_to_bf16_cuda(hb, a, nn, NULL) : cast_f32_to_f16_cuda(hb, a, nn, NULL));
    }
    int old = miles_cuda_set_math(prec);
    MUST(old < 0 ? old : MILES_OK);
    std::vector<double> t;
    for (int i = 0; i < 6; i++) {
        CUDA_CHECK(cudaDeviceSynchronize());
        double t0 = now_s();
        if (half) MUST(miles_gemm_h_cuda(0, 1, n, n, n, 1.0f, ha, n, 0, hb, n, 0, 0.0f, hc, n, 0, 1, dt, MILES_CUDA_F32, NULL));
        else MUST(miles_gemm_cuda(0, 1, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, NULL));
        CUDA_CHECK(cudaDeviceSynchronize());
        if (i) t.push_back(now_s() - t0);
    }
    miles_cuda_set_math(old < 0 ? MILES_CUDA_MATH_FP32 : old);
    cudaFree(a);
    cudaFree(b);
    cudaFree(c);
    std::sort(t.begin(), t.end());
    return 2.0 * n * (double)n * n / t[t.size() / 2] / 1e12;
}

static double forward_flops(const MilesConfig *c, int B, int T) {
    const double H = c->hidden_size, I = c->intermediate_size, L = c->num_hidden_layers;
    double per_tok = L * (2.0 * (4 * H * H + 2 * H * I) + 4.0 * T * H);
    double per_seq = 2.0 * H * H; /* pooler */
    int in = c->num_features;
    for (int i = 0; i < c->n_numeric; i++) per_seq += 2.0 * in * c->numeric_widths[i], in = c->numeric_widths[i];
    int w = c->hidden_size + (c->n_numeric ? c->numeric_widths[c->n_numeric - 1] : c->num_features);
    for (int i = 0; i < c->n_fusion; i++) per_seq += 2.0 * w * c->fusion_widths[i], w = c->fusion_widths[i];
    per_seq += 2.0 * w * 3;
    return per_tok * B * T + per_seq * B;
}

/* A full-length batch with random ids (no padding), features, labels, targets. */
typedef struct {
    std::vector<int32_t> ids, mask, labels;
    std::vector<float> feats, vel;
    MilesBatch b;
} Batch;

static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static float rndf(void) { return (float)((rnd() >> 40) * (1.0 / 16777216.0)); }

static void make_batch(Batch *x, const MilesConfig *c, int B, int T) {
    x->ids.resize((size_t)B * T);
    x->mask.assign((size_t)B * T, 1);
    x->labels.resize(B);
    x->feats.resize((size_t)B * c->num_features);
    x->vel.resize(B);
    for (int r = 0; r < B; r++) {
        for (int t = 0; t < T; t++)
            x->ids[(size_t)r * T + t] = t == 0 ? 101 : t == T - 1 ? 102 : 1000 + (int)(rnd() % (c->vocab_size - 1000));
        x->labels[r] = (int)(rnd() & 1);
        x->vel[r] = rndf();
    }
    for (auto &f : x->feats) f = 2.0f * rndf() - 1.0f;
    memset(&x->b, 0, sizeof x->b);
    x->b.B = B;
    x->b.T = T;
    x->b.input_ids = x->ids.data();
    x->b.attention_mask = x->mask.data();
    x->b.features = x->feats.data();
    x->b.labels = x->labels.data();
    x->b.velocity = x->vel.data();
}

static std::string g_gpu, g_mode;
static int g_cc = 0;

static void emit(const char *prec, const char *kase, int B, int T, int iters, double ms, double seq_s, double tflops,
                 double peak, double gemm, const char *extra = "") {
    printf("{\"impl\":\"miles-cuda\",\"gpu\":\"%s\",\"cc\":%d,\"precision\":\"%s\",\"mode\":\"%s\",\"case\":\"%s\","
           "\"B\":%d,\"T\":%d,\"iters\":%d,\"ms\":%.4f,\"seq_per_s\":%.1f,\"tflops\":%.2f,\"peak_tflops\":%.1f,"
           "\"mfu\":%.4f,\"gemm_tflops\":%.1f,\"mfu_gemm\":%.4f%s}\n",
           g_gpu.c_str(), g_cc, prec, g_mode.c_str(), kase, B, T, iters, ms, seq_s, tflops, peak,
           peak > 0 ? tflops / peak : 0.0, gemm, gemm > 0 ? tflops / gemm : 0.0, extra);
    fflush(stdout);
}

static void bench_train(MilesCudaModel *cm, const MilesConfig *c, int B, int T, int steps, const char *prec,
                        double peak, double gemm) {
    Batch x;
    make_batch(&x, c, B, T);
    MilesAdamWConfig oc = {1e-5f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0.0f, 0.0f};
    const int warm = 3; /* the 16-bit path captures its graph at the 2nd step */
    double t0 = 0;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm) {
            MUST(miles_cuda_model_sync(cm));
            t0 = now_s();
        }
        miles_cuda_model_set_dropout_key(cm, 42, (uint64_t)s);
        MUST(miles_cuda_model_train_step(cm, &x.b, 1.0f, 1.0f, 1e-5f, &oc, NULL, NULL, NULL));
    }
    MUST(miles_cuda_model_sync(cm));
    double dt = now_s() - t0;
    float loss;
    MUST(miles_cuda_model_last_loss(cm, &loss));
    if (!isfinite(loss)) fprintf(stderr, "warning: %s train B%d T%d: loss is %g\n", prec, B, T, loss);
    double tfl = 3.0 * forward_flops(c, B, T) * steps / dt / 1e12;
    long launches = 0;
    int graphs = miles_cuda_model_graphs(cm, &launches, NULL);
    char extra[96];
    snprintf(extra, sizeof extra, ",\"graphs\":%d,\"graph_launches\":%ld,\"loss\":%.4f", graphs, launches, loss);
    emit(prec, "train", B, T, steps, 1e3 * dt / steps, B * steps / dt, tfl, peak, gemm, extra);
}

static void bench_latency(MilesCudaModel *cm, const MilesConfig *c, int T, int iters, const char *prec, double peak,
                          double gemm) {
    Batch x;
    make_batch(&x, c, 1, T);
    x.b.labels = NULL;
    x.b.velocity = NULL;
    float logits[2];
    std::vector<double> ms;
    for (int i = 0; i < iters + 3; i++) {
        double t0 = now_s();
        MUST(miles_cuda_model_forward(cm, &x.b, 0, logits, NULL, NULL));
        if (i >= 3) ms.push_back(1e3 * (now_s() - t0));
    }
    std::sort(ms.begin(), ms.end());
    double med = ms[ms.size() / 2];
    double tfl = forward_flops(c, 1, T) / (med * 1e-3) / 1e12;
    char extra[64];
    snprintf(extra, sizeof extra, ",\"p90_ms\":%.4f", ms[(ms.size() * 9) / 10]);
    emit(prec, "latency", 1, T, iters, med, 1e3 / med, tfl, peak, gemm, extra);
}

static void bench_infer(MilesCudaModel *cm, const MilesConfig *c, int B, int T, int iters, const char *prec,
                        double peak, double gemm) {
    Batch x;
    make_batch(&x, c, B, T);
    x.b.labels = NULL;
    x.b.velocity = NULL;
    std::vector<float> logits((size_t)B * 2);
    for (int i = 0; i < 3; i++) MUST(miles_cuda_model_forward(cm, &x.b, 0, logits.data(), NULL, NULL));
    double t0 = now_s();
    for (int i = 0; i < iters; i++) MUST(miles_cuda_model_forward(cm, &x.b, 0, NULL, NULL, NULL));
    MUST(miles_cuda_model_forward(cm, &x.b, 0, logits.data(), NULL, NULL)); /* + the copy back */
    double dt = now_s() - t0;
    double tfl = forward_flops(c, B, T) * (iters + 1) / dt / 1e12;
    emit(prec, "infer", B, T, iters + 1, 1e3 * dt / (iters + 1), B * (iters + 1) / dt, tfl, peak, gemm);
}

int main(int argc, char **argv) {
    int quick = 0, steps = 20, fast = -1, graphs = -1;
    std::string precs = "bf16,fp16,tf32,fp32";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1, steps = 3;
        else if (!strcmp(argv[i], "--precisions") && i + 1 < argc) precs = argv[++i];
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fast") && i + 1 < argc) fast = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--graphs") && i + 1 < argc) graphs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--precisions bf16,fp16,tf32,fp32] [--steps N] [--fast -1|0|1]"
                    " [--graphs 0|1]\n", argv[0]);
            return 2;
        }
    }
    if (miles_cuda_device_count() <= 0) {
        printf("no CUDA device: nothing to benchmark\n");
        return miles_cuda_no_device_exit(0);
    }
    MUST(miles_cuda_init(0));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    g_gpu = prop.name;
    g_cc = miles_cuda_compute_capability();

    MilesConfig c;
    MUST(miles_config_preset(&c, "miles", quick ? "minilm-l6" : "bert-base"));
    MilesModel *m = NULL;
    MUST(miles_model_build(&m, &c));
    MUST(miles_model_init_random(m, 1, 0.02f));
    fprintf(stderr, "bench_cuda_model: %s (sm_%d), %s config, %zu parameters\n", g_gpu.c_str(), g_cc,
            quick ? "minilm-l6" : "bert-base", miles_model_num_params(m));

    size_t p0 = 0;
    while (p0 <= precs.size()) {
        size_t p1 = precs.find(',', p0);
        if (p1 == std::string::npos) p1 = precs.size();
        std::string name = precs.substr(p0, p1 - p0);
        p0 = p1 + 1;
        if (name.empty()) continue;
        int prec = miles_cuda_precision_parse(name.c_str());
        MUST(prec < 0 ? prec : MILES_OK);
        if (prec == MILES_CUDA_PREC_BF16 && g_cc < 80) {
            fprintf(stderr, "skipping bf16: sm_%d < sm_80\n", g_cc);
            continue;
        }
        double peak = table_peak(g_gpu.c_str(), g_cc, prec);
        double gemm = gemm_tflops(prec, quick);
        size_t free0 = 0, free1 = 0, total = 0;
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemGetInfo(&free0, &total));
        MilesCudaOptions o;
        o.fast = (prec == MILES_CUDA_PREC_FP16 || prec == MILES_CUDA_PREC_BF16) ? fast : -1;
        o.graphs = graphs;
        MilesCudaModel *cm = NULL;
        MUST(miles_cuda_model_build_ex(&cm, m, prec, &o));
        g_mode = miles_cuda_model_is_fast(cm) ? "16-bit" : "fp32-activations";
        bench_train(cm, &c, 32, 128, steps, name.c_str(), peak, gemm);
        /* memory after the largest training step */
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaMemGetInfo(&free1, &total));
        char extra[160];
        const size_t held = miles_cuda_model_device_bytes(cm) + (32u << 20); /* + the cuBLAS workspace */
        snprintf(extra, sizeof extra, ",\"mem_bytes\":%zu,\"mem_used_bytes\":%zu", held,
                 free0 > free1 ? free0 - free1 : (size_t)0);
        emit(name.c_str(), "memory", 32, 128, 0, 0.0, 0.0, 0.0, peak, gemm, extra);
        bench_train(cm, &c, 64, 32, steps, name.c_str(), peak, gemm);
        bench_latency(cm, &c, 32, quick ? 5 : 50, name.c_str(), peak, gemm);
        bench_latency(cm, &c, 128, quick ? 5 : 50, name.c_str(), peak, gemm);
        bench_infer(cm, &c, 256, 32, quick ? 3 : 20, name.c_str(), peak, gemm);
        fprintf(stderr, "  %s (%s): %.2f GB of device memory held by the model\n", name.c_str(), g_mode.c_str(),
                miles_cuda_model_device_bytes(cm) / 1e9);
        miles_cuda_model_free(cm);
    }
    miles_model_free(m);
    miles_cuda_shutdown();
    return 0;
}
