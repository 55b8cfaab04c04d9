/*
 * backend_cuda.cpp — the CUDA backend (libmiles/backend_internal.h) over the
 * whole-model driver of model_cuda.h.  Built as its own shared object,
 * libmiles_cuda.so (`make cuda`), with the libmiles internals it needs linked
 * in from libmiles.a and hidden, exporting only miles_backend_cuda_entry;
 * libmiles loads it with dlopen when a CUDA device is asked for
 * (libmiles/backend.c).  The same file built against the SIMT emulator
 * (tests/sim) is build/sim/libmiles_cuda_sim.so (`make backend-sim-test`).
 *
 * Plain host C++: it calls only the CUDA runtime API (device queries) and
 * model_cuda.h, so the host compiler builds it.
 */
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "backend_internal.h"
}
#include "model_cuda.h"
#include "dist_nccl.h"

namespace {

struct CudaState {
    MilesCudaModel *cm;
    MilesNccl *nccl;               /* data parallelism (dist_attach) */
    MilesAdamWConfig adamw;
    int with_optimizer;
    int device;
};

thread_local char g_why[512];

/* One line naming why this process cannot run device `index` at `precision`
 * (NULL: it can).  The order is the order in which things are needed. */
const char *cuda_probe(int index, MilesPrecision precision, int training) {
    int drv = 0, rt = 0;
    cudaRuntimeGetVersion(&rt);
    cudaError_t e = cudaDriverGetVersion(&drv);
    if (e != cudaSuccess || drv == 0) {
        cudaGetLastError();
        snprintf(g_why, sizeof g_why, "no CUDA driver (libcuda.so.1 not found or not loadable; libmiles_cuda.so needs "
                 "a driver for CUDA %d.%d)", rt / 1000, rt % 1000 / 10);
        return g_why;
    }
    if (drv < rt) {
        snprintf(g_why, sizeof g_why, "CUDA driver too old for this runtime: the driver supports CUDA %d.%d, "
                 "libmiles_cuda.so was built with CUDA %d.%d (update the driver)",
                 drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        return g_why;
    }
    int n = 0;
    e = cudaGetDeviceCount(&n);
    if (e == cudaErrorInsufficientDriver) {
        cudaGetLastError();
        snprintf(g_why, sizeof g_why, "CUDA driver too old for this runtime (%s)", cudaGetErrorString(e));
        return g_why;
    }
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        snprintf(g_why, sizeof g_why, "no CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return g_why;
    }
    if (index < 0 || index >= n) {
        snprintf(g_why, sizeof g_why, "no CUDA device %d (this machine has %d: cuda:0..cuda:%d)", index, n, n - 1);
        return g_why;
    }
    if (precision == MILES_PRECISION_INT8) {
        snprintf(g_why, sizeof g_why, "precision int8 is a CPU inference precision (CUDA: fp32, tf32, fp16, bf16)");
        return g_why;
    }
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
        cudaGetLastError();
        snprintf(g_why, sizeof g_why, "cannot query CUDA device %d", index);
        return g_why;
    }
    if ((precision == MILES_PRECISION_BF16 || precision == MILES_PRECISION_TF32) && prop.major < 8) {
        snprintf(g_why, sizeof g_why, "precision %s needs compute capability >= 8.0; %s is sm_%d%d",
                 precision == MILES_PRECISION_BF16 ? "bf16" : "tf32", prop.name, prop.major, prop.minor);
        return g_why;
    }
    (void)training;
    return NULL;
}

int cuda_build(void **state, const MilesBackendBuild *b) {
    *state = NULL;
    if (!b || !b->host) return miles_set_error(MILES_EINVAL, "cuda backend: no host model");
    const char *why = cuda_probe(b->device_index, b->precision, b->with_optimizer);
    if (why) return miles_set_error(MILES_EUNSUPPORTED, "%s", why);
    if (cudaSetDevice(b->device_index) != cudaSuccess) {
        cudaGetLastError();
        return miles_set_error(MILES_EUNSUPPORTED, "cannot select CUDA device %d", b->device_index);
    }
    CudaState *s = (CudaState *)calloc(1, sizeof *s);
    if (!s) return miles_set_error(MILES_ENOMEM, "cuda backend: out of memory");
    s->device = b->device_index;
    s->with_optimizer = b->with_optimizer;
    s->adamw = b->adamw;
    int rc = miles_cuda_model_build(&s->cm, b->host, (int)b->precision);
    if (rc != MILES_OK) {
        free(s);
        return rc;
    }
    *state = s;
    return MILES_OK;
}

void cuda_free(void *state) {
    CudaState *s = (CudaState *)state;
    if (!s) return;
    if (s->nccl) miles_cuda_model_sync(s->cm); /* nothing queued may outlive the communicator */
    miles_nccl_free(s->nccl);
    miles_cuda_model_free(s->cm);
    free(s);
}

CudaState *S(void *state) { return (CudaState *)state; }

int cuda_set_loss(void *st, const MilesLossConfig *loss) { return miles_cuda_model_set_loss(S(st)->cm, loss); }
void cuda_set_dropout_key(void *st, uint64_t seed, uint64_t step) {
    miles_cuda_model_set_dropout_key(S(st)->cm, seed, step);
}
int cuda_zero_grad(void *st) { return miles_cuda_model_zero_grad(S(st)->cm); }
int cuda_forward(void *st, const MilesBatch *b, int training, float *logits, float *velocity, float *loss) {
    return miles_cuda_model_forward(S(st)->cm, b, training, logits, velocity, loss);
}
int cuda_backward(void *st, float loss_scale) { return miles_cuda_model_backward(S(st)->cm, loss_scale); }
int cuda_clip(void *st, float max_norm, float *norm) {
    return miles_cuda_model_clip_grad_norm(S(st)->cm, max_norm, norm);
}
int cuda_adamw_step(void *st, float lr, int *skipped) {
    CudaState *s = S(st);
    if (!s->with_optimizer) return miles_set_error(MILES_EINVAL, "cuda backend: built without an optimizer");
    return miles_cuda_model_adamw_step(s->cm, lr, &s->adamw, skipped);
}
float cuda_loss_scale(void *st) { return miles_cuda_model_loss_scale(S(st)->cm); }
int cuda_read_params(void *st, MilesModel *dst) { return miles_cuda_model_download_params(S(st)->cm, dst); }
int cuda_write_params(void *st, const MilesModel *src) { return miles_cuda_model_upload_params(S(st)->cm, src); }
int cuda_read_optim(void *st, float *m, float *v, int64_t *t) {
    return miles_cuda_model_get_adamw_state(S(st)->cm, m, v, t);
}
int cuda_write_optim(void *st, const float *m, const float *v, int64_t t) {
    return miles_cuda_model_set_adamw_state(S(st)->cm, m, v, t);
}
int cuda_read_scaler(void *st, float *scale, int32_t *growth_tracker) {
    return miles_cuda_model_get_loss_scaler_state(S(st)->cm, scale, growth_tracker);
}
int cuda_write_scaler(void *st, float scale, int32_t growth_tracker) {
    return miles_cuda_model_set_loss_scaler_state(S(st)->cm, scale, growth_tracker);
}
int cuda_add_loss(void *st, float divisor) { return miles_cuda_model_add_loss(S(st)->cm, divisor); }
int cuda_read_stats(void *st, MilesBackendStats *out) {
    MilesCudaStats cs;
    int rc = miles_cuda_model_read_stats(S(st)->cm, &cs);
    if (rc != MILES_OK) return rc;
    out->loss_sum = cs.loss_sum;
    out->grad_norm = cs.grad_norm;
    out->loss_scale = cs.loss_scale;
    out->skipped = cs.skipped;
    out->steps = cs.steps;
    return MILES_OK;
}
#ifdef SIMT_H
/* the SIMT emulator (tests/sim) counts the synchronizations of its runtime */
long cuda_host_syncs(const char **last) {
    if (last) *last = simt_host_sync_last();
    return simt_host_syncs();
}
#else
long cuda_host_syncs(const char **last) {
    if (last) *last = "";
    return -1;
}
#endif
int cuda_forward_embeds(void *st, const MilesBatch *b, const float *word_emb, float *logits, float *velocity) {
    return miles_cuda_model_forward_embeds(S(st)->cm, b, word_emb, logits, velocity);
}
int cuda_backward_inputs(void *st, const float *dlogits, const float *dvelocity, float *dword, float *dfeatures) {
    return miles_cuda_model_backward_inputs(S(st)->cm, dlogits, dvelocity, dword, dfeatures);
}
int cuda_reserve(void *st, int max_batch, int max_len) {
    return miles_cuda_model_reserve(S(st)->cm, max_batch, max_len);
}
const char *cuda_last_error(void) { return miles_last_error(); }

/* Data parallelism: NCCL over the ranks, buckets reduced as the backward
 * finishes them (dist_nccl.h). */
int cuda_dist_attach(void *st, MilesDist *d, size_t bucket_bytes) {
    CudaState *s = S(st);
    if (s->nccl) return miles_set_error(MILES_EINVAL, "cuda backend: already attached to a data-parallel group");
    int rc = miles_nccl_init_on(&s->nccl, d, s->device); /* collective; agreed */
    if (rc != MILES_OK) return rc;
    return miles_nccl_set_grads(s->nccl, miles_cuda_model_device_grads(s->cm), miles_cuda_model_num_params(s->cm),
                                miles_nccl_bucket_floats(bucket_bytes));
}
struct CUstream_st *cuda_stream_of(CudaState *s) { return (struct CUstream_st *)miles_cuda_model_stream(s->cm); }
int cuda_grads_ready(void *ctx, size_t offset) {
    CudaState *s = (CudaState *)ctx;
    return miles_nccl_grads_ready(s->nccl, offset, cuda_stream_of(s));
}
int cuda_dist_backward(void *st, float loss_scale) {
    CudaState *s = S(st);
    if (!s->nccl) return miles_set_error(MILES_EINVAL, "cuda backend: dist_backward without dist_attach");
    return miles_cuda_model_backward_hooked(s->cm, loss_scale, cuda_grads_ready, s);
}
int cuda_dist_finish(void *st) {
    CudaState *s = S(st);
    if (!s->nccl) return miles_set_error(MILES_EINVAL, "cuda backend: dist_finish without dist_attach");
    /* a rank without rows this step reduces zeros (the 16-bit path defers them) */
    int rc = miles_cuda_model_materialize_grads(s->cm);
    if (rc != MILES_OK) return rc;
    return miles_nccl_step_end(s->nccl, miles_cuda_model_device_found_inf(s->cm), cuda_stream_of(s));
}

MilesBackendOps make_ops() {
    MilesBackendOps o;
    memset(&o, 0, sizeof o);
    o.abi = MILES_BACKEND_ABI;
    o.name = "cuda";
    o.probe = cuda_probe;
    o.build = cuda_build;
    o.free = cuda_free;
    o.set_loss = cuda_set_loss;
    o.set_dropout_key = cuda_set_dropout_key;
    o.zero_grad = cuda_zero_grad;
    o.forward = cuda_forward;
    o.backward = cuda_backward;
    o.clip = cuda_clip;
    o.adamw_step = cuda_adamw_step;
    o.loss_scale = cuda_loss_scale;
    o.read_params = cuda_read_params;
    o.write_params = cuda_write_params;
    o.read_optim = cuda_read_optim;
    o.write_optim = cuda_write_optim;
    o.read_scaler = cuda_read_scaler;
    o.write_scaler = cuda_write_scaler;
    o.last_error = cuda_last_error;
    o.dist_attach = cuda_dist_attach;
    o.dist_backward = cuda_dist_backward;
    o.dist_finish = cuda_dist_finish;
    o.add_loss = cuda_add_loss;
    o.read_stats = cuda_read_stats;
    o.host_syncs = cuda_host_syncs;
    o.forward_embeds = cuda_forward_embeds;
    o.backward_inputs = cuda_backward_inputs;
    o.reserve = cuda_reserve;
    return o;
}

const MilesBackendOps g_ops = make_ops();

} // namespace

extern "C" __attribute__((visibility("default"))) const MilesBackendOps *miles_backend_cuda_entry(int abi) {
    return abi == MILES_BACKEND_ABI ? &g_ops : nullptr;
}
