/*
 * dist_nccl.cu — NCCL all-reduce for data-parallel training (dist_nccl.h).
 * Compiled and linked in CI (nvcc + -lnccl); run on a multi-GPU machine.
 */
#include <cuda_runtime.h>
#include <nccl.h>

#include <stdint.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "dist_nccl.h"

#define NCCL_EVENTS 64 /* ring of events for bucket hand-offs (created once) */

struct MilesNccl {
    ncclComm_t comm;
    cudaStream_t stream;          /* the communicator's stream */
    cudaEvent_t ev[NCCL_EVENTS];  /* compute -> comm hand-offs */
    cudaEvent_t done;             /* comm -> compute */
    int next_ev;
    int device, rank, size;
};

static int cuda_fail(cudaError_t e, int line, const char *what) {
    return miles_error(e == cudaErrorMemoryAllocation ? MILES_ENOMEM
                       : e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ? MILES_EUNSUPPORTED
                       : MILES_EINTERNAL,
                       "dist_nccl.cu:%d: %s: %s", line, what, cudaGetErrorString(e));
}
static int nccl_fail(ncclResult_t r, int line, const char *what) {
    return miles_error(r == ncclSystemError || r == ncclRemoteError ? MILES_EIO : MILES_EINTERNAL,
                       "dist_nccl.cu:%d: %s: %s (did another rank die?)", line, what, ncclGetErrorString(r));
}
#define CU_TRY(x) do { cudaError_t _e = (x); if (_e != cudaSuccess) return cuda_fail(_e, __LINE__, #x); } while (0)
#define NC_TRY(x) do { ncclResult_t _r = (x); if (_r != ncclSuccess) return nccl_fail(_r, __LINE__, #x); } while (0)

static int init_on(MilesNccl *c, MilesDist *d) {
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev == 0)
        return miles_error(MILES_EUNSUPPORTED, "rank %d: no CUDA device for NCCL (%s)", c->rank,
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    /* one GPU per local rank; more local ranks than GPUs would share a device,
     * which NCCL refuses: say so instead */
    if (miles_dist_local_size(d) > ndev)
        return miles_error(MILES_EINVAL, "%d ranks on this node but only %d GPU(s): start one rank per GPU",
                           miles_dist_local_size(d), ndev);
    c->device = miles_dist_local_rank(d) % ndev;
    CU_TRY(cudaSetDevice(c->device));
    /* the unique id travels over MPI */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int s = MILES_OK;
    if (c->rank == 0) {
        ncclResult_t r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) s = nccl_fail(r, __LINE__, "ncclGetUniqueId");
    }
    s = miles_dist_agree(d, s);
    if (s == MILES_OK) s = miles_dist_bcast(d, &id, sizeof id, 0);
    if (s != MILES_OK) return s;
    NC_TRY(ncclCommInitRank(&c->comm, c->size, id, c->rank));
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    for (int i = 0; i < NCCL_EVENTS; i++) CU_TRY(cudaEventCreateWithFlags(&c->ev[i], cudaEventDisableTiming));
    CU_TRY(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming));
    return MILES_OK;
}

extern "C" int miles_nccl_init(MilesNccl **out, MilesDist *d) {
    *out = NULL;
    MilesNccl *c = (MilesNccl *)miles_calloc(1, sizeof *c);
    if (!c) return MILES_ENOMEM;
    c->rank = miles_dist_rank(d);
    c->size = miles_dist_size(d);
    /* every rank must learn whether every other one got a GPU and a communicator */
    int s = miles_dist_agree(d, init_on(c, d));
    if (s != MILES_OK) {
        miles_nccl_free(c);
        return s;
    }
    *out = c;
    return MILES_OK;
}

extern "C" void miles_nccl_free(MilesNccl *c) {
    if (!c) return;
    if (c->comm) ncclCommDestroy(c->comm);
    for (int i = 0; i < NCCL_EVENTS; i++)
        if (c->ev[i]) cudaEventDestroy(c->ev[i]);
    if (c->done) cudaEventDestroy(c->done);
    if (c->stream) cudaStreamDestroy(c->stream);
    free(c);
}

extern "C" int miles_nccl_device(const MilesNccl *c) { return c ? c->device : -1; }

extern "C" int miles_nccl_allreduce_f32(MilesNccl *c, float *dev, size_t n, struct CUstream_st *stream) {
    if (!c || (n && !dev)) return miles_error(MILES_EINVAL, "miles_nccl_allreduce_f32: NULL argument");
    if (c->size == 1 || n == 0) return MILES_OK;
    NC_TRY(ncclAllReduce(dev, dev, n, ncclFloat32, ncclSum, c->comm, (cudaStream_t)stream));
    return MILES_OK;
}

extern "C" int miles_nccl_bcast(MilesNccl *c, void *dev, size_t bytes, int root, struct CUstream_st *stream) {
    if (!c || (bytes && !dev)) return miles_error(MILES_EINVAL, "miles_nccl_bcast: NULL argument");
    if (c->size == 1 || bytes == 0) return MILES_OK;
    NC_TRY(ncclBroadcast(dev, dev, bytes, ncclUint8, root, c->comm, (cudaStream_t)stream));
    return MILES_OK;
}

extern "C" int miles_nccl_bucket_ready(MilesNccl *c, float *dev, size_t n, struct CUstream_st *compute) {
    if (!c || (n && !dev)) return miles_error(MILES_EINVAL, "miles_nccl_bucket_ready: NULL argument");
    if (c->size == 1 || n == 0) return MILES_OK;
    cudaEvent_t ev = c->ev[c->next_ev];
    c->next_ev = (c->next_ev + 1) % NCCL_EVENTS;
    /* re-recording an event is safe: the wait below binds to this record */
    CU_TRY(cudaEventRecord(ev, (cudaStream_t)compute));
    CU_TRY(cudaStreamWaitEvent(c->stream, ev, 0));
    NC_TRY(ncclAllReduce(dev, dev, n, ncclFloat32, ncclSum, c->comm, c->stream));
    return MILES_OK;
}

extern "C" int miles_nccl_wait(MilesNccl *c, struct CUstream_st *compute) {
    if (!c) return miles_error(MILES_EINVAL, "miles_nccl_wait: NULL argument");
    if (c->size == 1) return MILES_OK;
    CU_TRY(cudaEventRecord(c->done, c->stream));
    CU_TRY(cudaStreamWaitEvent((cudaStream_t)compute, c->done, 0));
    return MILES_OK;
}
