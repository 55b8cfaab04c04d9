/*
 * dropout.cu — dropout forward/backward with the CPU's counter-based masks
 * (kernels/philox.cuh, libmiles/dropout.c "RNG CONTRACT"): one thread per
 * block of 4 elements, one Philox call per thread, exactly like the CPU.
 */
#include "fast.cuh" /* miles_drop_resolve */

template <bool ACCUMULATE>
__global__ void dropout_kernel(float *out, const float *inp, size_t n, MilesDropDev drop, const uint64_t *rng) {
    const MilesDropDev d = miles_drop_resolve(drop, rng);
    size_t nblk = (n + 3) / 4;
    MILES_GRID_STRIDE(blk, nblk) {
        float u[4];
        miles_dropout_uniform4_dev(u, d.seed, d.step, d.tensor_id, blk);
        size_t i0 = blk * 4;
        for (int l = 0; l < 4 && i0 + l < n; l++) {
            float v = miles_dropout_apply(d, u[l] >= d.p, inp[i0 + l]);
            if (ACCUMULATE)
                out[i0 + l] += v;
            else
                out[i0 + l] = v;
        }
    }
}

__global__ void add_kernel(float *out, const float *inp, size_t n) {
    MILES_GRID_STRIDE(i, n) out[i] += inp[i];
}

extern "C" int dropout_forward_cuda(float *out, const float *inp, size_t n, MilesDropoutKey key,
                                    miles_cuda_stream stream) {
    return dropout_forward_rng_cuda(out, inp, n, key, NULL, stream);
}

extern "C" int dropout_backward_cuda(float *dinp, const float *dout, size_t n, MilesDropoutKey key,
                                     miles_cuda_stream stream) {
    return dropout_backward_rng_cuda(dinp, dout, n, key, NULL, stream);
}

extern "C" int dropout_forward_rng_cuda(float *out, const float *inp, size_t n, MilesDropoutKey key,
                                        const uint64_t *rng, miles_cuda_stream stream) {
    if (n == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    if (!(key.p > 0.0f)) { /* p <= 0 (or NaN): identity, as the CPU */
        if (out != inp) MILES_CUDA_TRY(cudaMemcpyAsync(out, inp, n * sizeof(float),
                                                       cudaMemcpyDeviceToDevice, s));
        return MILES_OK;
    }
    if (key.p >= 1.0f) {
        MILES_CUDA_TRY(cudaMemsetAsync(out, 0, n * sizeof(float), s));
        return MILES_OK;
    }
    MILES_LAUNCH(dropout_kernel<false>, miles_grid((n + 3) / 4), MILES_CUDA_THREADS, 0, s, out, inp, n,
                 miles_drop_dev(key), rng);
    return MILES_OK;
}

extern "C" int dropout_backward_rng_cuda(float *dinp, const float *dout, size_t n, MilesDropoutKey key,
                                         const uint64_t *rng, miles_cuda_stream stream) {
    if (!dinp || n == 0) return MILES_OK;
    cudaStream_t s = miles_stream(stream);
    if (!(key.p > 0.0f)) {
        MILES_LAUNCH(add_kernel, miles_grid(n), MILES_CUDA_THREADS, 0, s, dinp, dout, n);
        return MILES_OK;
    }
    if (key.p >= 1.0f) return MILES_OK; /* every element dropped: zero gradient */
    MILES_LAUNCH(dropout_kernel<true>, miles_grid((n + 3) / 4), MILES_CUDA_THREADS, 0, s, dinp, dout, n,
                 miles_drop_dev(key), rng);
    return MILES_OK;
}
