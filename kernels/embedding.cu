/*
 * embedding.cu — BERT embeddings: out = wte[id] + wpe[t] + wtt[tt].
 *
 * Backward: the position table is reduced deterministically (thread per
 * (t, c) summing over b in order, the CPU's order); the word and token-type
 * tables are scatter-adds with atomicAdd, because repeated ids ([CLS], [PAD],
 * common words, type 0 everywhere) have no fixed owner without a sort.  Their
 * fp32 summation order therefore differs from the CPU's (rounding level).
 */
#include "common.cuh"

__global__ void embedding_forward_kernel(float *out, const int32_t *ids, const int32_t *tt,
                                         const float *wte, const float *wpe, const float *wtt,
                                         int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * T * C) {
        size_t bt = i / C, c = i % C;
        size_t t = bt % T;
        size_t y = tt ? (size_t)tt[bt] : 0;
        out[i] = wte[(size_t)ids[bt] * C + c] + wpe[t * C + c] + wtt[y * C + c];
    }
}

/* dwpe[t,c] += sum_b dout[b,t,c] */
__global__ void embedding_backward_pos_kernel(float *dwpe, const float *dout, int B, int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)T * C) {
        float acc = 0.0f;
        for (int b = 0; b < B; b++) acc += dout[(size_t)b * T * C + i];
        dwpe[i] += acc;
    }
}

__global__ void embedding_backward_scatter_kernel(float *dwte, float *dwtt, const float *dout,
                                                  const int32_t *ids, const int32_t *tt, int B,
                                                  int T, int C) {
    MILES_GRID_STRIDE(i, (size_t)B * T * C) {
        size_t bt = i / C, c = i % C;
        float d = dout[i];
        if (dwte) atomicAdd(dwte + (size_t)ids[bt] * C + c, d);
        if (dwtt) atomicAdd(dwtt + (size_t)(tt ? tt[bt] : 0) * C + c, d);
    }
}

extern "C" int embedding_forward_cuda(float *out, const int32_t *ids, const int32_t *tt,
                                      const float *wte, const float *wpe, const float *wtt,
                                      int B, int T, int C, miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(B >= 0 && T >= 0 && C >= 0, "embedding_forward_cuda: bad shape B=%d T=%d C=%d", B, T, C);
    size_t n = (size_t)B * T * C;
    if (n == 0) return MILES_OK;
    MILES_LAUNCH(embedding_forward_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, miles_stream(stream), out, ids,
                 tt, wte, wpe, wtt, B, T, C);
    return MILES_OK;
}

extern "C" int embedding_backward_cuda(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                       const int32_t *ids, const int32_t *tt, int B, int T, int C,
                                       miles_cuda_stream stream) {
    MILES_CUDA_REQUIRE(B >= 0 && T >= 0 && C >= 0, "embedding_backward_cuda: bad shape B=%d T=%d C=%d", B, T, C);
    size_t n = (size_t)B * T * C;
    if (n == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    if (dwpe) {
        MILES_LAUNCH(embedding_backward_pos_kernel, miles_grid((size_t)T * C), MILES_CUDA_THREADS, 0, s, dwpe,
                     dout, B, T, C);
    }
    if (dwte || dwtt) {
        MILES_LAUNCH(embedding_backward_scatter_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, s, dwte, dwtt, dout,
                     ids, tt, B, T, C);
    }
    return MILES_OK;
}
