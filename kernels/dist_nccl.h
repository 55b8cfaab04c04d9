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
 */
#ifndef MILES_DIST_NCCL_H
#define MILES_DIST_NCCL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "miles.h"

struct CUstream_st;
typedef struct MilesNccl MilesNccl;

/* Collective over the ranks of d: select this rank's GPU and build the NCCL
 * communicator.  MILES_EUNSUPPORTED when there is no GPU for this rank. */
int miles_nccl_init(MilesNccl **out, MilesDist *d);
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

#ifdef __cplusplus
}
#endif
#endif
