/*
 * test_dist_nccl.cu — the NCCL gradient all-reduce across ranks
 * (kernels/dist_nccl.cu).  Run on a GPU machine, one rank per GPU:
 *     mpirun -np 2 build/cuda/test_dist_nccl
 * Each rank fills a device buffer with (rank+1) * (i % 7), reduces it twice
 * (plain and bucketed/overlapped on a compute stream) and checks the sum
 * N(N+1)/2 * (i % 7) exactly (small integers are exact in fp32).
 * Then the training form (dist_nccl.h, "Training"):
 *   - the bucket plan: counts and sizes, the same on every rank;
 *   - a tiny model's backward with the bucket hook
 *     (miles_cuda_model_backward_hooked -> miles_nccl_grads_ready) on each
 *     rank's own batch: the reduced gradients equal the MPI sum of the ranks'
 *     plain-backward gradients bit for bit (2 ranks: a + b either way), the
 *     hook's offsets fall from the heads to 0, and buckets were queued while
 *     the backward still ran (overlap);
 *   - the fp16 overflow flag: set on the last rank only, after
 *     miles_nccl_step_end every rank sees it and skips the AdamW step.
 * `make sim-test` / `make dp-sim-test` run it on 2 emulated GPUs (mpirun).
 * Without a GPU it prints a message and exits 0 (CI compiles and links it).
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

extern "C" {
#include "miles.h"
#ifdef MILES_HAVE_MPI
#include "miles_mpi.h"
#endif
}
#include "dist_nccl.h"
#include "model_cuda.h"

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "rank %d: FAIL %s:%d: ", rank, __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                               \
            fprintf(stderr, " (%s)\n", miles_last_error());            \
            bad++;                                                      \
            goto done;                                                  \
        }                                                               \
    } while (0)

/* the hook: offsets seen, handed on to the NCCL layer */
struct Hook {
    MilesNccl *c;
    cudaStream_t s;
    size_t off[64];
    int n;
};
static int hook(void *ctx, size_t offset) {
    Hook *h = (Hook *)ctx;
    if (h->n < 64) h->off[h->n++] = offset;
    return miles_nccl_grads_ready(h->c, offset, (struct CUstream_st *)h->s);
}

/* A tiny model without dropout, the same weights on every rank; each rank
 * its own batch (seeded by rank). */
static int model_checks(MilesNccl *c, MilesDist *d, int rank, int size) {
    int bad = 0;
    MilesConfig cfg;
    MilesModel *m = NULL;
    MilesCudaModel *cm = NULL, *c16 = NULL;
    const int B = 3, T = 9;
    int32_t ids[B * T], mask[B * T], lab[B];
    float feat[B * MILES_NUM_FEATURES], vel[B];
    MilesBatch b;
    std::vector<float> want, got;
    size_t n = 0, bucket = 0, nb = 0;
    int64_t st[4];
    Hook h;
    int32_t flag = 0;
    int skipped = -1;
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0.0f, 0.0f};
    uint64_t r = 0x9E3779B97F4A7C15ull * (uint64_t)(rank + 1);
    CHECK(miles_config_preset(&cfg, "miles", "tiny") == MILES_OK, "preset");
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = cfg.text_dropout = 0.0f;
    for (int i = 0; i < MILES_MAX_MLP; i++) cfg.numeric_dropouts[i] = cfg.fusion_dropouts[i] = 0.0f;
    CHECK(miles_model_build(&m, &cfg) == MILES_OK && miles_model_init_random(m, 7, 0.02f) == MILES_OK, "model");
    for (int i = 0; i < B * T; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        int t = i % T, len = 4 + (i / T) * 2;
        ids[i] = t < len ? (int32_t)(1 + (r >> 33) % (uint64_t)(cfg.vocab_size - 1)) : 0;
        mask[i] = t < len;
    }
    for (int i = 0; i < B * MILES_NUM_FEATURES; i++) feat[i] = (float)((i * 7 + rank * 3) % 11) / 5.0f - 1.0f;
    for (int i = 0; i < B; i++) { lab[i] = (i + rank) % 2; vel[i] = 0.1f * (float)(i + 1 + rank); }
    memset(&b, 0, sizeof b);
    b.B = B; b.T = T; b.input_ids = ids; b.attention_mask = mask; b.features = feat; b.labels = lab; b.velocity = vel;

    CHECK(miles_cuda_model_build(&cm, m, MILES_CUDA_PREC_FP32) == MILES_OK, "build");
    n = miles_cuda_model_num_params(cm);
    want.resize(n);
    got.resize(n);
    /* the expectation: plain backward, gradients summed over MPI on the host */
    CHECK(miles_cuda_model_zero_grad(cm) == MILES_OK && miles_cuda_model_forward(cm, &b, 1, NULL, NULL, NULL) == MILES_OK &&
          miles_cuda_model_backward(cm, 1.0f) == MILES_OK && miles_cuda_model_download_grads(cm, want.data()) == MILES_OK,
          "plain backward");
    CHECK(miles_dist_allreduce_f32(d, want.data(), n) == MILES_OK, "MPI sum");
    /* the same through the hook, about 9 buckets */
    bucket = n / 9 + 1;
    nb = miles_nccl_bucket_count(n, bucket);
    CHECK(nb == (n + bucket - 1) / bucket && miles_nccl_bucket_count(0, bucket) == 0 &&
          miles_nccl_bucket_count(bucket, bucket) == 1 && miles_nccl_bucket_count(bucket + 1, bucket) == 2,
          "bucket counts");
    CHECK(miles_nccl_bucket_floats(4096) == 1024 && miles_nccl_bucket_floats(1) == 1, "bucket sizes");
    {
        /* the plan is the same on every rank: rank 0's (n, bucket) to all */
        size_t plan[2] = {n, bucket}, p0[2] = {n, bucket};
        CHECK(miles_dist_bcast(d, p0, sizeof p0, 0) == MILES_OK && p0[0] == plan[0] && p0[1] == plan[1], "plan");
    }
    CHECK(miles_nccl_set_grads(c, miles_cuda_model_device_grads(cm), n, bucket) == MILES_OK, "set_grads");
    memset(&h, 0, sizeof h);
    h.c = c;
    h.s = (cudaStream_t)miles_cuda_model_stream(cm);
    CHECK(miles_cuda_model_zero_grad(cm) == MILES_OK && miles_cuda_model_forward(cm, &b, 1, NULL, NULL, NULL) == MILES_OK &&
          miles_cuda_model_backward_hooked(cm, 1.0f, hook, &h) == MILES_OK, "hooked backward");
    CHECK(miles_nccl_step_end(c, NULL, (struct CUstream_st *)h.s) == MILES_OK, "step_end");
    CHECK(miles_cuda_model_download_grads(cm, got.data()) == MILES_OK, "download");
    {
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += memcmp(&want[i], &got[i], sizeof(float)) != 0;
        miles_nccl_stats(c, st);
        printf("rank %d: hooked backward of %zu gradients in %lld buckets of %zu: %zu differ from the MPI sum; "
               "hook offsets", rank, n, (long long)st[0], bucket, diff);
        for (int i = 0; i < h.n; i++) printf(" %zu", h.off[i]);
        printf("; %lld buckets queued while the backward ran, %lld at its end, %lld by step_end\n",
               (long long)st[1], (long long)(st[0] - st[1] - st[2]), (long long)st[2]);
        CHECK(diff == 0, "reduced gradients differ from the sum");
        CHECK(h.n == cfg.num_hidden_layers + 2 && h.off[h.n - 1] == 0, "hook calls");
        for (int i = 1; i < h.n; i++) CHECK(h.off[i] < h.off[i - 1], "hook offsets not falling");
        CHECK(st[0] == (int64_t)nb && st[1] > 0 && st[2] == 0, "bucket counters");
    }
    /* a rank without rows: step_end alone reduces everything (zeros + the others' gradients) */
    CHECK(miles_cuda_model_zero_grad(cm) == MILES_OK, "zero");
    if (rank == 0) {
        CHECK(miles_cuda_model_forward(cm, &b, 1, NULL, NULL, NULL) == MILES_OK &&
              miles_cuda_model_backward_hooked(cm, 1.0f, hook, &h) == MILES_OK, "rank 0 backward");
    }
    CHECK(miles_cuda_model_materialize_grads(cm) == MILES_OK &&
          miles_nccl_step_end(c, NULL, (struct CUstream_st *)h.s) == MILES_OK, "step_end without backward");
    CHECK(miles_cuda_model_download_grads(cm, got.data()) == MILES_OK, "download");
    miles_nccl_stats(c, st);
    CHECK(rank == 0 || st[2] == (int64_t)nb, "a rank without backward queues every bucket at step_end");
    {
        /* rank 0's gradients alone: what the plain backward of rank 0 gives */
        std::vector<float> mine(n);
        CHECK(miles_cuda_model_zero_grad(cm) == MILES_OK, "zero");
        if (rank == 0)
            CHECK(miles_cuda_model_forward(cm, &b, 1, NULL, NULL, NULL) == MILES_OK &&
                  miles_cuda_model_backward(cm, 1.0f) == MILES_OK, "rank 0 plain");
        CHECK(miles_cuda_model_materialize_grads(cm) == MILES_OK && miles_cuda_model_download_grads(cm, mine.data()) == MILES_OK,
              "download");
        CHECK(miles_dist_bcast(d, mine.data(), n * sizeof(float), 0) == MILES_OK, "bcast");
        size_t diff = 0;
        for (size_t i = 0; i < n; i++) diff += memcmp(&mine[i], &got[i], sizeof(float)) != 0;
        CHECK(diff == 0, "%zu gradients differ from rank 0's alone", diff);
    }

    /* fp16: the overflow flag of one rank reaches every rank, all skip */
    CHECK(miles_cuda_model_build(&c16, m, MILES_CUDA_PREC_FP16) == MILES_OK, "fp16 build");
    CHECK(miles_cuda_model_device_found_inf(c16) != NULL && miles_cuda_model_device_found_inf(cm) == NULL, "flag pointer");
    CHECK(miles_nccl_set_grads(c, miles_cuda_model_device_grads(c16), n, bucket) == MILES_OK, "set_grads 16");
    h.s = (cudaStream_t)miles_cuda_model_stream(c16);
    h.n = 0;
    flag = rank == size - 1;
    CHECK(miles_cuda_model_zero_grad(c16) == MILES_OK && miles_cuda_model_forward(c16, &b, 1, NULL, NULL, NULL) == MILES_OK &&
          miles_cuda_model_backward_hooked(c16, 1.0f, hook, &h) == MILES_OK, "fp16 backward");
    CHECK(cudaMemcpyAsync(miles_cuda_model_device_found_inf(c16), &flag, sizeof flag, cudaMemcpyHostToDevice, h.s) ==
              cudaSuccess && cudaStreamSynchronize(h.s) == cudaSuccess, "plant the flag");
    CHECK(miles_nccl_step_end(c, miles_cuda_model_device_found_inf(c16), (struct CUstream_st *)h.s) == MILES_OK,
          "fp16 step_end");
    CHECK(miles_cuda_model_sync(c16) == MILES_OK &&
          cudaMemcpy(&flag, miles_cuda_model_device_found_inf(c16), sizeof flag, cudaMemcpyDeviceToHost) == cudaSuccess,
          "read the flag");
    CHECK(miles_cuda_model_clip_grad_norm(c16, 1.0f, NULL) == MILES_OK &&
          miles_cuda_model_adamw_step(c16, 1e-3f, &oc, &skipped) == MILES_OK, "fp16 step");
    printf("rank %d: fp16 overflow flag planted on rank %d: this rank sees %d after step_end, AdamW step skipped %d, "
           "loss scale now %g\n", rank, size - 1, flag, skipped, miles_cuda_model_loss_scale(c16));
    CHECK(flag == 1 && skipped == 1, "the overflow flag did not reach this rank");
done:
    miles_cuda_model_free(c16);
    miles_cuda_model_free(cm);
    miles_model_free(m);
    return bad;
}

int main(int argc, char **argv) {
    MilesDist *d = NULL;
#ifdef MILES_HAVE_MPI
    int s = miles_mpi_init(&d, &argc, &argv); /* libmiles-mpi */
#else
    int s = miles_dist_init(&d, &argc, &argv);
#endif
    if (s != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return 1; }
    const int rank = miles_dist_rank(d), size = miles_dist_size(d);
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        if (rank == 0) printf("test_dist_nccl: no CUDA device; skipped\n");
        miles_dist_finalize(d);
        return 0;
    }
    MilesNccl *c = NULL;
    if (miles_nccl_init(&c, d) != MILES_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, miles_last_error());
        miles_dist_abort(d, 1);
        return 1;
    }
    const size_t n = (size_t)1 << 22; /* 16 MB, 4 buckets */
    std::vector<float> h(n);
    for (size_t i = 0; i < n; i++) h[i] = (float)((rank + 1) * (i % 7));
    float *dev = NULL;
    cudaStream_t compute;
    cudaStreamCreate(&compute);
    cudaMalloc(&dev, n * sizeof(float));
    int bad = 0;
    for (int mode = 0; mode < 2; mode++) {
        cudaMemcpy(dev, h.data(), n * sizeof(float), cudaMemcpyHostToDevice);
        int s = MILES_OK;
        if (mode == 0) s = miles_nccl_allreduce_f32(c, dev, n, compute);
        else
            for (int b = 3; b >= 0 && s == MILES_OK; b--) /* last layer first, as backward */
                s = miles_nccl_bucket_ready(c, dev + b * (n / 4), n / 4, compute);
        if (s == MILES_OK) s = miles_nccl_wait(c, compute);
        if (s != MILES_OK) { fprintf(stderr, "rank %d: %s\n", rank, miles_last_error()); bad++; break; }
        cudaStreamSynchronize(compute);
        std::vector<float> out(n);
        cudaMemcpy(out.data(), dev, n * sizeof(float), cudaMemcpyDeviceToHost);
        const float k = (float)size * (size + 1) / 2;
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) wrong += out[i] != k * (float)(i % 7);
        printf("rank %d (GPU %d): %s all-reduce of %zu floats over %d ranks: %zu wrong\n", rank,
               miles_nccl_device(c), mode ? "bucketed" : "plain", n, size, wrong);
        bad += wrong != 0;
    }
    cudaFree(dev);
    cudaStreamDestroy(compute);
    if (size > 1) bad += model_checks(c, d, rank, size);
    miles_nccl_free(c);
    miles_dist_finalize(d);
    return bad ? 1 : 0;
}
