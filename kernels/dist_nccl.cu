/*
 * dist_nccl.cu — NCCL all-reduce for data-parallel training (dist_nccl.h).
 * Compiled and linked in CI (nvcc; NCCL is dlopened at run time, so nothing
 * links -lnccl); run on a multi-GPU machine, and in the SIMT emulator with
 * mpirun (its NCCL shim).
 */
#include <cuda_runtime.h>
#include <nccl.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "internal.h"
}
#include "dist_nccl.h"

#define NCCL_EVENTS 64 /* ring of events for bucket hand-offs (created once) */

/* ---------------------------------------------------------------- loading
 * The NCCL entry points used here, resolved once.  A real build dlopens
 * $MILES_NCCL_LIBRARY or libnccl.so.2; the emulator's build (its nccl.h
 * defines SIMT_NCCL_H) takes its linked shim unless $MILES_NCCL_LIBRARY is set,
 * which is how the tests reach the "NCCL missing" path. */
namespace {
struct NcclApi {
    ncclResult_t (*GetVersion)(int *);
    ncclResult_t (*GetUniqueId)(ncclUniqueId *);
    ncclResult_t (*CommInitRank)(ncclComm_t *, int, ncclUniqueId, int);
    ncclResult_t (*CommDestroy)(ncclComm_t);
    const char *(*GetErrorString)(ncclResult_t);
    ncclResult_t (*AllReduce)(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t);
    ncclResult_t (*Broadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
};
NcclApi g_nccl;
int g_nccl_state = 0; /* 0 not tried, 1 loaded, -1 failed */
char g_nccl_why[600];
}

extern "C" int miles_nccl_load(void) {
    if (g_nccl_state == 1) return MILES_OK;
    if (g_nccl_state == -1) return miles_error(MILES_EUNSUPPORTED, "%s", g_nccl_why);
    const char *want = getenv("MILES_NCCL_LIBRARY");
    if (want && !*want) want = NULL;
#ifdef SIMT_NCCL_H
    if (!want) {
        g_nccl.GetVersion = ncclGetVersion;
        g_nccl.GetUniqueId = ncclGetUniqueId;
        g_nccl.CommInitRank = ncclCommInitRank;
        g_nccl.CommDestroy = ncclCommDestroy;
        g_nccl.GetErrorString = ncclGetErrorString;
        g_nccl.AllReduce = ncclAllReduce;
        g_nccl.Broadcast = ncclBroadcast;
        g_nccl_state = 1;
        return MILES_OK;
    }
#endif
    const char *name = want ? want : "libnccl.so.2";
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(g_nccl_why, sizeof g_nccl_why, "NCCL not found: cannot load %s (%s); data-parallel training on GPUs "
                 "needs NCCL 2 (the CUDA toolkit's libnccl.so.2 or set MILES_NCCL_LIBRARY to its path)", name,
                 e ? e : "dlopen failed");
        g_nccl_state = -1;
        return miles_error(MILES_EUNSUPPORTED, "%s", g_nccl_why);
    }
    struct { const char *sym; void **slot; } tab[] = {
        {"ncclGetVersion", (void **)&g_nccl.GetVersion},     {"ncclGetUniqueId", (void **)&g_nccl.GetUniqueId},
        {"ncclCommInitRank", (void **)&g_nccl.CommInitRank}, {"ncclCommDestroy", (void **)&g_nccl.CommDestroy},
        {"ncclGetErrorString", (void **)&g_nccl.GetErrorString}, {"ncclAllReduce", (void **)&g_nccl.AllReduce},
        {"ncclBroadcast", (void **)&g_nccl.Broadcast},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        *tab[i].slot = dlsym(h, tab[i].sym);
        if (!*tab[i].slot) {
            snprintf(g_nccl_why, sizeof g_nccl_why, "%s is not an NCCL 2 library (no %s)", name, tab[i].sym);
            dlclose(h);
            g_nccl_state = -1;
            return miles_error(MILES_EUNSUPPORTED, "%s", g_nccl_why);
        }
    }
    int v = 0;
    if (g_nccl.GetVersion(&v) != ncclSuccess || v < 20000) {
        snprintf(g_nccl_why, sizeof g_nccl_why, "%s: NCCL version %d is too old (need 2.x)", name, v);
        dlclose(h);
        g_nccl_state = -1;
        return miles_error(MILES_EUNSUPPORTED, "%s", g_nccl_why);
    }
    g_nccl_state = 1; /* kept loaded for the life of the process */
    return MILES_OK;
}

/* ---------------------------------------------------------------- buckets */

extern "C" size_t miles_nccl_bucket_count(size_t n, size_t bucket) {
    if (bucket == 0) bucket = 1;
    return (n + bucket - 1) / bucket;
}

extern "C" size_t miles_nccl_bucket_floats(size_t bucket_bytes) {
    if (bucket_bytes == 0) {
        double mb = 25.0; /* PyTorch DDP's bucket_cap_mb */
        const char *e = getenv("MILES_NCCL_BUCKET_MB");
        if (e && *e) {
            char *end = NULL;
            double v = strtod(e, &end);
            if (end != e && v > 0 && v < 1e6) mb = v;
        }
        bucket_bytes = (size_t)(mb * 1024.0 * 1024.0);
    }
    size_t f = bucket_bytes / sizeof(float);
    return f ? f : 1;
}

struct MilesNccl {
    ncclComm_t comm;
    cudaStream_t stream;          /* the communicator's stream */
    cudaEvent_t ev[NCCL_EVENTS];  /* compute -> comm hand-offs */
    cudaEvent_t done;             /* comm -> compute */
    int next_ev;
    int device, rank, size;
    /* bucketed gradient reduction (miles_nccl_set_grads) */
    float *grads;
    size_t n, bucket, nbuckets;
    size_t next_hi;               /* buckets [0, next_hi) not queued yet this step (in bucket units) */
    int64_t overlapped, at_end, steps;
    int stats_stale;              /* the counters are the last ended step's */
};

static int cuda_fail(cudaError_t e, int line, const char *what) {
    return miles_error(e == cudaErrorMemoryAllocation ? MILES_ENOMEM
                       : e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ? MILES_EUNSUPPORTED
                       : MILES_EINTERNAL,
                       "dist_nccl.cu:%d: %s: %s", line, what, cudaGetErrorString(e));
}
static int nccl_fail(ncclResult_t r, int line, const char *what) {
    return miles_error(r == ncclSystemError || r == ncclRemoteError ? MILES_EIO : MILES_EINTERNAL,
                       "dist_nccl.cu:%d: %s: %s (did another rank die?)", line, what,
                       g_nccl.GetErrorString ? g_nccl.GetErrorString(r) : "NCCL error");
}
#define CU_TRY(x) do { cudaError_t _e = (x); if (_e != cudaSuccess) return cuda_fail(_e, __LINE__, #x); } while (0)
#define NC_TRY(x) do { ncclResult_t _r = (x); if (_r != ncclSuccess) return nccl_fail(_r, __LINE__, #x); } while (0)

/* Everything before the unique id's broadcast that can fail on one rank
 * alone (device, NCCL library): the caller agrees on its result first, so
 * every rank takes part in the same collectives. */
static int init_local(MilesNccl *c, MilesDist *d, int device) {
    int ndev = 0;
    cudaError_t e = cudaGetDeviceCount(&ndev);
    if (e != cudaSuccess || ndev == 0)
        return miles_error(MILES_EUNSUPPORTED, "rank %d: no CUDA device for NCCL (%s)", c->rank,
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    /* one GPU per local rank; more local ranks than GPUs would share a device,
     * which NCCL refuses: say so instead (a given device: the caller mapped
     * the ranks) */
    if (device < 0 && miles_dist_local_size(d) > ndev)
        return miles_error(MILES_EUNSUPPORTED, "%d ranks on this node but only %d GPU(s): start one rank per GPU",
                           miles_dist_local_size(d), ndev);
    MILES_TRY(miles_nccl_load());
    if (device >= ndev)
        return miles_error(MILES_EUNSUPPORTED, "rank %d: no CUDA device %d (%d device(s))", c->rank, device, ndev);
    c->device = device >= 0 ? device : miles_dist_local_rank(d) % ndev;
    CU_TRY(cudaSetDevice(c->device));
    return MILES_OK;
}

static int init_on(MilesNccl *c, MilesDist *d, int device) {
    int s = miles_dist_agree(d, init_local(c, d, device));
    if (s != MILES_OK) return s;
    /* the unique id travels over MPI */
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    if (c->rank == 0) {
        ncclResult_t r = g_nccl.GetUniqueId(&id);
        if (r != ncclSuccess) s = nccl_fail(r, __LINE__, "ncclGetUniqueId");
    }
    s = miles_dist_agree(d, s);
    if (s == MILES_OK) s = miles_dist_bcast(d, &id, sizeof id, 0);
    if (s != MILES_OK) return s;
    NC_TRY(g_nccl.CommInitRank(&c->comm, c->size, id, c->rank));
    CU_TRY(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    for (int i = 0; i < NCCL_EVENTS; i++) CU_TRY(cudaEventCreateWithFlags(&c->ev[i], cudaEventDisableTiming));
    CU_TRY(cudaEventCreateWithFlags(&c->done, cudaEventDisableTiming));
    return MILES_OK;
}

extern "C" int miles_nccl_init(MilesNccl **out, MilesDist *d) { return miles_nccl_init_on(out, d, -1); }

extern "C" int miles_nccl_init_on(MilesNccl **out, MilesDist *d, int device) {
    *out = NULL;
    MilesNccl *c = (MilesNccl *)miles_calloc(1, sizeof *c);
    if (!c) return MILES_ENOMEM;
    c->rank = miles_dist_rank(d);
    c->size = miles_dist_size(d);
    /* every rank must learn whether every other one got a GPU and a communicator */
    int s = miles_dist_agree(d, init_on(c, d, device));
    if (s != MILES_OK) {
        miles_nccl_free(c);
        return s;
    }
    *out = c;
    return MILES_OK;
}

extern "C" void miles_nccl_free(MilesNccl *c) {
    if (!c) return;
    if (c->comm) g_nccl.CommDestroy(c->comm);
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
    NC_TRY(g_nccl.AllReduce(dev, dev, n, ncclFloat32, ncclSum, c->comm, (cudaStream_t)stream));
    return MILES_OK;
}

extern "C" int miles_nccl_bcast(MilesNccl *c, void *dev, size_t bytes, int root, struct CUstream_st *stream) {
    if (!c || (bytes && !dev)) return miles_error(MILES_EINVAL, "miles_nccl_bcast: NULL argument");
    if (c->size == 1 || bytes == 0) return MILES_OK;
    NC_TRY(g_nccl.Broadcast(dev, dev, bytes, ncclUint8, root, c->comm, (cudaStream_t)stream));
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
    NC_TRY(g_nccl.AllReduce(dev, dev, n, ncclFloat32, ncclSum, c->comm, c->stream));
    return MILES_OK;
}

extern "C" int miles_nccl_wait(MilesNccl *c, struct CUstream_st *compute) {
    if (!c) return miles_error(MILES_EINVAL, "miles_nccl_wait: NULL argument");
    if (c->size == 1) return MILES_OK;
    CU_TRY(cudaEventRecord(c->done, c->stream));
    CU_TRY(cudaStreamWaitEvent((cudaStream_t)compute, c->done, 0));
    return MILES_OK;
}

/* ---------------------------------------------------------------- bucketed steps */

extern "C" int miles_nccl_set_grads(MilesNccl *c, float *dev, size_t n, size_t bucket) {
    if (!c || (n && !dev) || bucket == 0) return miles_error(MILES_EINVAL, "miles_nccl_set_grads: bad argument");
    c->grads = dev;
    c->n = n;
    c->bucket = bucket;
    c->nbuckets = miles_nccl_bucket_count(n, bucket);
    c->next_hi = c->nbuckets;
    c->overlapped = c->at_end = 0;
    return MILES_OK;
}

extern "C" void miles_nccl_step_begin(MilesNccl *c) {
    if (!c) return;
    c->next_hi = c->nbuckets;
    c->overlapped = c->at_end = c->stats_stale = 0;
}

/* queue buckets [first, next_hi) last first, behind one event on compute */
static int queue_buckets(MilesNccl *c, size_t first, struct CUstream_st *compute) {
    if (first >= c->next_hi) return MILES_OK;
    if (c->size > 1) {
        cudaEvent_t ev = c->ev[c->next_ev];
        c->next_ev = (c->next_ev + 1) % NCCL_EVENTS;
        CU_TRY(cudaEventRecord(ev, (cudaStream_t)compute));
        CU_TRY(cudaStreamWaitEvent(c->stream, ev, 0));
    }
    while (c->next_hi > first) {
        const size_t b = --c->next_hi;
        const size_t lo = b * c->bucket, len = (b + 1 == c->nbuckets) ? c->n - lo : c->bucket;
        if (c->size > 1) NC_TRY(g_nccl.AllReduce(c->grads + lo, c->grads + lo, len, ncclFloat32, ncclSum, c->comm, c->stream));
    }
    return MILES_OK;
}

extern "C" int miles_nccl_grads_ready(MilesNccl *c, size_t offset, struct CUstream_st *compute) {
    if (!c || !c->grads) return miles_error(MILES_EINVAL, "miles_nccl_grads_ready: no gradient block bound");
    if (offset > c->n) offset = c->n;
    /* the first bucket that lies entirely inside [offset, n) */
    const size_t first = (offset + c->bucket - 1) / c->bucket;
    if (c->stats_stale) c->overlapped = c->at_end = c->stats_stale = 0;
    const size_t before = c->next_hi;
    MILES_TRY(queue_buckets(c, first, compute));
    if (offset > 0) c->overlapped += (int64_t)(before - c->next_hi);
    return MILES_OK;
}

extern "C" int miles_nccl_step_end(MilesNccl *c, int32_t *found_inf, struct CUstream_st *compute) {
    if (!c || !c->grads) return miles_error(MILES_EINVAL, "miles_nccl_step_end: no gradient block bound");
    if (c->stats_stale) c->overlapped = c->at_end = c->stats_stale = 0;
    const size_t before = c->next_hi;
    MILES_TRY(queue_buckets(c, 0, compute));
    c->at_end = (int64_t)before;
    c->steps++;
    c->next_hi = c->nbuckets; /* the next step starts with nothing queued */
    c->stats_stale = 1;
    if (c->size == 1) return MILES_OK;
    if (found_inf) {
        /* after the backward's overflow checks (compute), before clip reads it */
        cudaEvent_t ev = c->ev[c->next_ev];
        c->next_ev = (c->next_ev + 1) % NCCL_EVENTS;
        CU_TRY(cudaEventRecord(ev, (cudaStream_t)compute));
        CU_TRY(cudaStreamWaitEvent(c->stream, ev, 0));
        NC_TRY(g_nccl.AllReduce(found_inf, found_inf, 1, ncclInt32, ncclMax, c->comm, c->stream));
    }
    return miles_nccl_wait(c, compute);
}

extern "C" void miles_nccl_stats(const MilesNccl *c, int64_t out[4]) {
    out[0] = c ? (int64_t)c->nbuckets : 0;
    out[1] = c ? c->overlapped : 0;
    out[2] = c ? c->at_end : 0;
    out[3] = c ? c->steps : 0;
}
