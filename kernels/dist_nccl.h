/*
 * dist_nccl.h — NCCL gradient all-reduce for data-parallel training on GPUs
 * (kernels/dist_nccl.cu; docs/distributed.md).  Plain C header.
 *
 * One GPU per rank: the device is local_rank % device_count.  Rank 0 creates
 * the NCCL unique id and miles_dist_bcast() (MPI) sends it to every rank, then
 * ncclCommInitRank builds the communicator; after that all gradient traffic is
 * NCCL (NVLink / InfiniBand / sockets), MPI only carries control messages.
 *
 * Overlap with backward: the backward pass produces gradients from the last
 * layer to the first.  A trainer calls miles_nccl_bucket_ready() as soon as a
 * bucket (e.g. one encoder layer's gradient range) is final; the reduction is
 * queued on the communicator's own stream behind an event recorded on the
 * compute stream, so it runs while backward continues with earlier layers.
 * miles_nccl_wait() makes the compute stream wait for every queued reduction
 * before clipping and the optimizer step.  Nothing here synchronizes the host.
 *
 * Training (the CUDA backend's data parallelism, kernels/backend_cuda.cpp)
 * uses the bucketed form: miles_nccl_set_grads() binds the gradient block and
 * cuts it into fixed buckets (boundaries at multiples of the bucket size,
 * anchored at 0: a pure function of (n, bucket), the same on every rank and at
 * every step, so every element is always summed by the same collective call);
 * the backward calls miles_nccl_grads_ready(offset) whenever [offset, n) is
 * final and the buckets inside it are queued, last first; miles_nccl_step_end()
 * queues what is left (a rank that had no rows), takes the max of the fp16
 * overflow flag over the ranks (so every rank skips the same steps), and makes
 * the compute stream wait.
 *
 * NCCL is loaded at run time (dlopen of $MILES_NCCL_LIBRARY, else
 * libnccl.so.2), so libmiles_cuda.so loads and trains on one GPU where NCCL is
 * not installed; data parallelism then fails with one line naming the library.
 * The SIMT emulator's build uses its NCCL shim unless $MILES_NCCL_LIBRARY is set.
 */
#ifndef MILES_DIST_NCCL_H
#define MILES_DIST_NCCL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "miles.h"

struct CUstream_st;
typedef struct MilesNccl MilesNccl;

/* Collective over the ranks of d: select this rank's GPU and build the NCCL
 * communicator.  MILES_EUNSUPPORTED when there is no GPU for this rank. */
int miles_nccl_init(MilesNccl **out, MilesDist *d);
/* The same on a given device (-1: local_rank % device count), e.g. the one a
 * model was built on. */
int miles_nccl_init_on(MilesNccl **out, MilesDist *d, int device);
void miles_nccl_free(MilesNccl *c);
int miles_nccl_device(const MilesNccl *c);
/* In-place sum of n floats of device memory over all ranks, on `stream`. */
int miles_nccl_allreduce_f32(MilesNccl *c, float *dev, size_t n, struct CUstream_st *stream);
/* Broadcast `bytes` bytes of device memory from rank `root`, on `stream`. */
int miles_nccl_bcast(MilesNccl *c, void *dev, size_t bytes, int root, struct CUstream_st *stream);
/* Overlapped reduction: dev[0..n) is final on `compute`; sum it over the ranks
 * on the communicator's stream. */
int miles_nccl_bucket_ready(MilesNccl *c, float *dev, size_t n, struct CUstream_st *compute);
/* Make `compute` wait for every reduction queued so far. */
int miles_nccl_wait(MilesNccl *c, struct CUstream_st *compute);

/* Load NCCL (idempotent): MILES_EUNSUPPORTED with one line when it is missing. */
int miles_nccl_load(void);
/* Buckets of `bucket` floats over [0, n): their number (0 for n = 0), and
 * the floats per bucket a size in bytes gives (0: $MILES_NCCL_BUCKET_MB,
 * default 25 MB as PyTorch DDP; at least 1). */
size_t miles_nccl_bucket_count(size_t n, size_t bucket);
size_t miles_nccl_bucket_floats(size_t bucket_bytes);
/* Bind the gradient block dev [n] (device) cut into buckets of `bucket` floats. */
int miles_nccl_set_grads(MilesNccl *c, float *dev, size_t n, size_t bucket);
/* A new step: no bucket queued yet. */
void miles_nccl_step_begin(MilesNccl *c);
/* dev[offset, n) is final on `compute`: queue every not yet queued bucket
 * that lies inside it, the last first (one event on `compute`). */
int miles_nccl_grads_ready(MilesNccl *c, size_t offset, struct CUstream_st *compute);
/* Queue the buckets still left, reduce found_inf (device int32, max over the
 * ranks; NULL: none), make `compute` wait for all of it. */
int miles_nccl_step_end(MilesNccl *c, int32_t *found_inf, struct CUstream_st *compute);
/* Counters: [0] buckets, [1] of the last step queued by grads_ready with
 * offset > 0 (while the backward still ran), [2] queued by step_end,
 * [3] steps ended. */
void miles_nccl_stats(const MilesNccl *c, int64_t out[4]);

#ifdef __cplusplus
}
#endif
#endif
