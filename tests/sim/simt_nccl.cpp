/*
 * simt_nccl.cpp — NCCL shim of the SIMT emulator.  One rank: collectives
 * are copies.  Several ranks (each an MPI process under mpirun, one emulated
 * GPU each): the collective is enqueued on its stream and, when the stream
 * runs, becomes the MPI collective of the same semantics on MPI_COMM_WORLD
 * (which must hold exactly the communicator's ranks, in order).  Reductions
 * of fp16/bf16 gather the inputs and reduce in float in rank order, then
 * round once.  Device buffers are checked against the allocation registry.
 */
#include "simt_internal.h"

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "nccl.h"

#include <string.h>
#include <unistd.h>

#include <vector>

#ifdef MILES_HAVE_MPI
#include <mpi.h>
#endif

using namespace simt;

struct ncclComm {
    int nranks, rank;
};

static size_t dt_size(ncclDataType_t t) {
    switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    default: return 8;
    }
}

static double get(const void *p, ncclDataType_t t, size_t i) {
    switch (t) {
    case ncclInt8: return ((const int8_t *)p)[i];
    case ncclUint8: return ((const uint8_t *)p)[i];
    case ncclInt32: return ((const int32_t *)p)[i];
    case ncclUint32: return ((const uint32_t *)p)[i];
    case ncclInt64: return (double)((const int64_t *)p)[i];
    case ncclUint64: return (double)((const uint64_t *)p)[i];
    case ncclFloat16: return f16_to_f32(((const uint16_t *)p)[i]);
    case ncclBfloat16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case ncclFloat32: return ((const float *)p)[i];
    default: return ((const double *)p)[i];
    }
}
static void put(void *p, ncclDataType_t t, size_t i, double v) {
    switch (t) {
    case ncclFloat16: ((uint16_t *)p)[i] = f32_to_f16((float)v, RN); break;
    case ncclBfloat16: ((uint16_t *)p)[i] = f32_to_bf16((float)v, RN); break;
    default: break;
    }
}

/* combine rank-ordered contributions of element i (the 16-bit types) */
static double combine(double acc, double v, ncclRedOp_t op) {
    switch (op) {
    case ncclProd: return (float)(acc * v);
    case ncclMax: return acc > v ? acc : v;
    case ncclMin: return acc < v ? acc : v;
    default: return (float)(acc + v);
    }
}

#ifdef MILES_HAVE_MPI
static MPI_Datatype mpi_type(ncclDataType_t t) {
    switch (t) {
    case ncclInt8: return MPI_INT8_T;
    case ncclUint8: return MPI_UINT8_T;
    case ncclInt32: return MPI_INT32_T;
    case ncclUint32: return MPI_UINT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint64: return MPI_UINT64_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL; /* 16-bit floats: gathered */
    }
}
static MPI_Op mpi_op(ncclRedOp_t op) {
    switch (op) {
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    case ncclMin: return MPI_MIN;
    default: return MPI_SUM;
    }
}
#endif

/* recv[i] = op over ranks of send[i], count elements (in place allowed) */
static void allreduce_now(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                          const ncclComm *c) {
    const size_t es = dt_size(t);
    if (c->nranks == 1) {
        if (send != recv) memmove(recv, send, count * es);
    } else {
#ifdef MILES_HAVE_MPI
        if (mpi_type(t) != MPI_DATATYPE_NULL) {
            MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, mpi_type(t), mpi_op(op),
                          MPI_COMM_WORLD);
        } else {
            std::vector<unsigned char> all(count * es * c->nranks);
            MPI_Allgather(send, (int)(count * es), MPI_BYTE, all.data(), (int)(count * es), MPI_BYTE, MPI_COMM_WORLD);
            for (size_t i = 0; i < count; i++) {
                double acc = get(all.data(), t, i);
                for (int r = 1; r < c->nranks; r++) acc = combine(acc, get(all.data() + r * count * es, t, i), op);
                put(recv, t, i, acc);
            }
        }
#endif
    }
    if (op == ncclAvg) /* sum / nranks */
        for (size_t i = 0; i < count; i++) {
            double v = get(recv, t, i) / c->nranks;
            if (t == ncclFloat32) ((float *)recv)[i] = (float)v;
            else if (t == ncclFloat64) ((double *)recv)[i] = v;
            else if (t == ncclFloat16 || t == ncclBfloat16) put(recv, t, i, v);
        }
}

static ncclResult_t check_buf(const char *fn, const void *p, size_t bytes) {
    if (bytes && (!p || find_alloc(p, bytes) == A_NONE)) {
        diag("%s: buffer %p of %zu bytes is not device memory", fn, p, bytes);
        return ncclInvalidArgument;
    }
    return ncclSuccess;
}

static ncclResult_t enqueue_on(cudaStream_t stream, std::function<void()> op) {
    Guard g(device_lock());
    cudaError_t e;
    Stream *s = resolve_stream(stream, &e);
    if (!s) return ncclInvalidArgument;
    if (sticky_error() != cudaSuccess) return ncclUnhandledCudaError;
    enqueue(s, [op]() {
        note_kernel_run("(NCCL)");
        op();
    });
    return ncclSuccess;
}

extern "C" {

ncclResult_t ncclGetVersion(int *v) {
    if (!v) return ncclInvalidArgument;
    *v = NCCL_MAJOR * 10000 + NCCL_MINOR * 100;
    return ncclSuccess;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    if (!id) return ncclInvalidArgument;
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "simt-nccl pid %d", (int)getpid());
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    if (!comm || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    if (strncmp(id.internal, "simt-nccl", 9) != 0) return ncclInvalidArgument;
    if (nranks > 1) {
#ifdef MILES_HAVE_MPI
        int init = 0, size = 0, me = -1;
        MPI_Initialized(&init);
        if (init) {
            MPI_Comm_size(MPI_COMM_WORLD, &size);
            MPI_Comm_rank(MPI_COMM_WORLD, &me);
        }
        if (!init || size != nranks || me != rank) {
            diag("ncclCommInitRank: the emulator's NCCL needs MPI_COMM_WORLD of %d ranks with this process as rank %d",
                 nranks, rank);
            return ncclInvalidUsage;
        }
#else
        diag("ncclCommInitRank: %d ranks need an MPI build of the emulator", nranks);
        return ncclInvalidUsage;
#endif
    }
    *comm = new ncclComm{nranks, rank};
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    delete comm;
    return ncclSuccess;
}
ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    if (!comm || !count) return ncclInvalidArgument;
    *count = comm->nranks;
    return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    if (!comm || !rank) return ncclInvalidArgument;
    *rank = comm->rank;
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error";
    case ncclSystemError: return "unhandled system error";
    case ncclInternalError: return "internal error";
    case ncclInvalidArgument: return "invalid argument";
    case ncclInvalidUsage: return "invalid usage";
    case ncclRemoteError: return "remote process exited or there was a network error";
    default: return "unknown result code";
    }
}
ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    if (!comm || (int)t < 0 || (int)t > ncclBfloat16 || (int)op < 0 || (int)op >= ncclNumOps) return ncclInvalidArgument;
    const size_t bytes = count * dt_size(t);
    if (check_buf("ncclAllReduce", send, bytes) || check_buf("ncclAllReduce", recv, bytes)) return ncclInvalidArgument;
    ncclComm c = *comm;
    return enqueue_on(stream, [=]() { allreduce_now(send, recv, count, t, op, &c); });
}

ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t t, int root, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm || root < 0 || root >= comm->nranks) return ncclInvalidArgument;
    const size_t bytes = count * dt_size(t);
    if ((comm->rank == root && check_buf("ncclBroadcast", send, bytes)) || check_buf("ncclBroadcast", recv, bytes))
        return ncclInvalidArgument;
    ncclComm c = *comm;
    return enqueue_on(stream, [=]() {
        if (c.rank == root && send != recv) memmove(recv, send, bytes);
#ifdef MILES_HAVE_MPI
        if (c.nranks > 1) MPI_Bcast(recv, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
#endif
    });
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t t, ncclComm_t comm,
                           cudaStream_t stream) {
    if (!comm) return ncclInvalidArgument;
    const size_t bytes = count * dt_size(t);
    if (check_buf("ncclAllGather", send, bytes) || check_buf("ncclAllGather", recv, bytes * comm->nranks))
        return ncclInvalidArgument;
    ncclComm c = *comm;
    return enqueue_on(stream, [=]() {
        if (c.nranks == 1) {
            memmove(recv, send, bytes);
            return;
        }
#ifdef MILES_HAVE_MPI
        std::vector<unsigned char> tmp((const unsigned char *)send, (const unsigned char *)send + bytes);
        MPI_Allgather(tmp.data(), (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
#endif
    });
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
    if (!comm) return ncclInvalidArgument;
    const size_t bytes = count * dt_size(t);
    if (check_buf("ncclReduceScatter", send, bytes * comm->nranks) || check_buf("ncclReduceScatter", recv, bytes))
        return ncclInvalidArgument;
    ncclComm c = *comm;
    return enqueue_on(stream, [=]() {
        std::vector<unsigned char> all((const unsigned char *)send, (const unsigned char *)send + bytes * c.nranks);
        allreduce_now(all.data(), all.data(), count * c.nranks, t, op, &c);
        memmove(recv, all.data() + bytes * c.rank, bytes);
    });
}

} /* extern "C" */
