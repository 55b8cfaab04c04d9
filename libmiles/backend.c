/*
 * backend.c — which device/precision combinations this libmiles can run
 * (miles.h, "devices and precisions"), and the backends behind them
 * (backend_internal.h): the CPU reference, and the CUDA backend, a separate
 * shared object (libmiles_cuda.so) loaded with dlopen the first time a CUDA
 * device is asked for, so that one libmiles and one set of tools work on
 * machines with and without CUDA.
 *
 * Where libmiles_cuda.so is looked for, in order: $MILES_CUDA_BACKEND (a
 * path), beside the object holding libmiles (libmiles.so, or a program
 * linked with libmiles.a), in ../lib and .. from there (an installed prefix,
 * the build tree), then the dynamic loader's path.  Every refusal is one line naming which of: backend not
 * built, library not found, not a backend of this ABI, no driver, driver too
 * old for the runtime, no device (or too few), precision not supported.
 */
#include <dlfcn.h>
#include <pthread.h>

#include "backend_internal.h"
#include "internal.h"
#include "gemm_lowp.h"

#ifndef MILES_CUDA_BUILT
#define MILES_CUDA_BUILT 0 /* set by the Makefile when nvcc was found */
#endif

/* ---------------------------------------------------------------- loading */

static pthread_mutex_t g_load_mu = PTHREAD_MUTEX_INITIALIZER;
static const MilesBackendOps *g_cuda;   /* loaded table (kept for the process) */
static char g_cuda_path[4096];
static char g_load_err[1024];           /* why loading failed (retried on the next ask) */

static void *try_open(const char *path, char *why, size_t cap) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        /* keep the first reason that is not "no such file": a found but broken object matters more */
        if (!why[0] || strstr(why, "No such file")) snprintf(why, cap, "%.900s", e ? e : path);
    }
    return h;
}

static int load_cuda(const MilesBackendOps **out) {
    pthread_mutex_lock(&g_load_mu);
    const char *want = getenv("MILES_CUDA_BACKEND");
    /* loaded once per process; a different $MILES_CUDA_BACKEND is looked up again */
    if (g_cuda && (!want || !*want || !strcmp(want, g_cuda_path))) {
        *out = g_cuda;
        pthread_mutex_unlock(&g_load_mu);
        return MILES_OK;
    }
    char why[1024] = "", path[4096];
    void *h = NULL;
    const char *env = want;
    if (env && *env) {
        h = try_open(env, why, sizeof why);
        snprintf(path, sizeof path, "%s", env);
    } else {
        Dl_info info;
        char dir[4096] = "";
        if (dladdr((void *)&miles_backend_find, &info) && info.dli_fname) {
            snprintf(dir, sizeof dir, "%s", info.dli_fname);
            char *slash = strrchr(dir, '/');
            if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
        }
        /* beside it; prefix/bin -> prefix/lib; build/bin -> build/ (the build tree) */
        const char *rel[] = {"/libmiles_cuda.so", "/../lib/libmiles_cuda.so", "/../libmiles_cuda.so"};
        for (int i = 0; i < 3 && !h && dir[0]; i++) {
            snprintf(path, sizeof path, "%s%s", dir, rel[i]);
            h = try_open(path, why, sizeof why);
        }
        if (!h) {
            snprintf(path, sizeof path, "libmiles_cuda.so");
            h = try_open(path, why, sizeof why);
        }
    }
    int s = MILES_OK;
    if (!h) {
        if (!MILES_CUDA_BUILT && !(env && *env))
            snprintf(g_load_err, sizeof g_load_err,
                     "CUDA backend not built: this libmiles was built without nvcc, so there is no libmiles_cuda.so "
                     "(build it with `make cuda` where nvcc exists; %.800s)", why);
        else
            snprintf(g_load_err, sizeof g_load_err,
                     "CUDA backend library not found: cannot load libmiles_cuda.so (%.800s); set MILES_CUDA_BACKEND to "
                     "its path or install it beside libmiles.so", why);
        s = MILES_EUNSUPPORTED;
    } else {
        MilesBackendEntry entry = (MilesBackendEntry)(uintptr_t)dlsym(h, MILES_BACKEND_CUDA_ENTRY);
        const MilesBackendOps *ops = entry ? entry(MILES_BACKEND_ABI) : NULL;
        if (!ops || ops->abi != MILES_BACKEND_ABI) {
            snprintf(g_load_err, sizeof g_load_err,
                     "CUDA backend library %.700s is not a Miles CUDA backend of this version (%s; backend ABI %d wanted)",
                     path, entry ? "ABI differs" : "no " MILES_BACKEND_CUDA_ENTRY, MILES_BACKEND_ABI);
            dlclose(h);
            s = MILES_EUNSUPPORTED;
        } else {
            g_cuda = ops; /* never closed: its state objects may outlive any caller */
            snprintf(g_cuda_path, sizeof g_cuda_path, "%s", path);
            *out = ops;
        }
    }
    char msg[1100];
    snprintf(msg, sizeof msg, "%s", g_load_err);
    pthread_mutex_unlock(&g_load_mu);
    return s == MILES_OK ? s : miles_error(s, "%s", msg);
}

/* ---------------------------------------------------------------- checks */

/* The CPU trains in fp32 (the reference); CPU inference (model_infer.c) also
 * runs bf16 and int8 where the CPU has the instructions (gemm_lowp.h). */
static int check_cpu(const char *device, MilesPrecision precision, int training) {
    if (precision == MILES_PRECISION_FP32) return MILES_OK;
    if (training)
        return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: the CPU trains in fp32 only",
                           miles_precision_name(precision));
    if (precision == MILES_PRECISION_BF16 || precision == MILES_PRECISION_INT8) {
        const char *why = NULL;
        MilesGemmPrecision gp = precision == MILES_PRECISION_BF16 ? MILES_GEMM_BF16 : MILES_GEMM_INT8;
        if (!miles_gemm_lowp_available(gp, &why))
            return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: %s", miles_precision_name(precision),
                               why ? why : "this CPU lacks the instructions");
        return MILES_OK;
    }
    return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: CPU inference runs fp32, bf16 or int8 only",
                       miles_precision_name(precision));
}

int miles_backend_find(const char *device, MilesPrecision precision, int training, const MilesBackendOps **ops,
                       int *index) {
    int is_cuda = 0, idx = 0;
    MILES_TRY(miles_device_parse(device, &is_cuda, &idx));
    if ((int)precision < MILES_PRECISION_FP32 || (int)precision > MILES_PRECISION_INT8)
        return miles_error(MILES_EINVAL, "precision %d is not a MilesPrecision", (int)precision);
    if (index) *index = idx;
    if (!is_cuda) {
        MILES_TRY(check_cpu(device, precision, training));
        if (ops) *ops = &miles_backend_cpu;
        return MILES_OK;
    }
    const MilesBackendOps *cu = NULL;
    int s = load_cuda(&cu);
    if (s != MILES_OK) return miles_error_prefix(s, "device '%s'", device);
    const char *why = cu->probe(idx, precision, training);
    if (why) return miles_error(MILES_EUNSUPPORTED, "device '%s': %s", device, why);
    if (ops) *ops = cu;
    return MILES_OK;
}

int miles_backend_check(const char *device, MilesPrecision precision, int training) {
    return miles_backend_find(device, precision, training, NULL, NULL);
}

int miles_device_check(const char *device, MilesPrecision precision, int training) {
    return miles_backend_find(device, precision, training, NULL, NULL);
}

/* ---------------------------------------------------------------- states */

int miles_backend_status(const MilesBackendOps *ops, int s) {
    if (s != MILES_OK && ops && ops != &miles_backend_cpu && ops->last_error)
        return miles_error(s, "%s: %s", ops->name, ops->last_error());
    return s;
}

int miles_backend_open(MilesBackend *be, const char *device, MilesPrecision precision, MilesModel *host,
                       const MilesAdamWConfig *adamw) {
    memset(be, 0, sizeof *be);
    const MilesBackendOps *ops = NULL;
    int idx = 0;
    MILES_TRY(miles_backend_find(device, precision, adamw != NULL, &ops, &idx));
    MilesBackendBuild b;
    memset(&b, 0, sizeof b);
    b.host = host;
    b.precision = precision;
    b.device_index = idx;
    b.with_optimizer = adamw != NULL;
    if (adamw) b.adamw = *adamw;
    MILES_TRY(miles_backend_status(ops, ops->build(&be->state, &b)));
    be->ops = ops;
    return MILES_OK;
}

void miles_backend_close(MilesBackend *be) {
    if (be && be->ops) be->ops->free(be->state);
    if (be) memset(be, 0, sizeof *be);
}
