/*
 * test_dist_nccl.cu — the NCCL gradient all-reduce across ranks
 * (kernels/dist_nccl.cu).  Run on a GPU machine, one rank per GPU:
 *     mpirun -np 2 build/cuda/test_dist_nccl
 * Each rank fills a device buffer with (rank+1) * (i % 7), reduces it twice
 * (plain and bucketed/overlapped on a compute stream) and checks the sum
 * N(N+1)/2 * (i % 7) exactly (small integers are exact in fp32).
 * Without a GPU it prints a message and exits 0 (CI compiles and links it).
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

extern "C" {
#include "miles.h"
#ifdef MILES_HAVE_MPI
#include "miles_mpi.h"
#endif
}
#include "dist_nccl.h"

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
    miles_nccl_free(c);
    miles_dist_finalize(d);
    return bad ? 1 : 0;
}
