/*
 * simt_runtime.cpp — the CUDA runtime half of the SIMT emulator: the
 * emulated device's properties, memory (host memory in a registry of
 * allocations, poisoned with 0xff bytes = NaN on allocation), streams and
 * events, errors.
 *
 * Streams are queues of deferred work.  Nothing enqueued runs before a
 * synchronization that covers it (cudaStreamSynchronize, cudaEventSynchronize,
 * cudaDeviceSynchronize, a synchronous cudaMemcpy/cudaMemset, cudaFree, a
 * device-to-pageable copy), so a host read of a result without the
 * synchronization the GPU would need sees the old bytes.  The legacy default
 * stream keeps its implicit ordering with blocking streams; non-blocking
 * streams (cudaStreamNonBlocking) do not wait for it, as on the GPU.
 * Pageable-memory copies follow the CUDA "API synchronization behavior"
 * rules: host-to-device copies stage the source at the call, device-to-
 * pageable copies wait for the stream; pinned memory is read / written when
 * the copy runs.  SIMT_EAGER=1 runs all work at enqueue time instead.
 */
#include <memory> /* before the emulator headers: they define __noinline__ */

#include "simt_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <execinfo.h>

#include <deque>
#include <map>
#include <vector>

namespace simt {

std::recursive_mutex &device_lock() {
    static std::recursive_mutex m;
    return m;
}

/* ============================================================ config */
static int env_int(const char *name, int def) {
    const char *e = getenv(name);
    return e && *e ? atoi(e) : def;
}

Config &config() {
    static Config c;
    static bool init = false;
    if (!init) {
        init = true;
        c.cc = env_int("SIMT_CC", 90);
        c.devices = env_int("SIMT_DEVICES", 1);
        const char *s = getenv("SIMT_SCHED");
        c.random = !(s && !strcmp(s, "fifo"));
        c.seed = (uint64_t)env_int("SIMT_SEED", 1);
        c.eager = env_int("SIMT_EAGER", 0);
        c.diag_abort = env_int("SIMT_DIAG_ABORT", 0);
        const char *o = getenv("SIMT_CUBLAS_F16_OVERFLOW");
        c.f16_saturate = o && !strcmp(o, "saturate");
    }
    return c;
}

size_t max_shared_optin() {
    switch (config().cc) {
    case 70: return 96 << 10;
    case 75: return 64 << 10;
    case 80: case 87: return 163 << 10;
    case 86: case 89: return 99 << 10;
    default: return config().cc >= 90 ? 227 << 10 : 48 << 10;
    }
}

/* ============================================================ errors */
static cudaError_t g_sticky = cudaSuccess;
static thread_local cudaError_t tl_last = cudaSuccess;

cudaError_t sticky_error() { return g_sticky; }
void set_sticky_error(cudaError_t e) {
    if (g_sticky == cudaSuccess) g_sticky = e;
}
cudaError_t set_last_error(cudaError_t e) {
    if (e != cudaSuccess) tl_last = e;
    return e;
}

/* Entry of most API calls: no device -> cudaErrorNoDevice; a sticky error
 * is returned by everything that follows it. */
#define API_ENTER()                                                                 \
    Guard _guard(device_lock());                                                    \
    do {                                                                            \
        if (config().devices <= 0) return set_last_error(cudaErrorNoDevice);       \
        if (g_sticky != cudaSuccess) return set_last_error(g_sticky);              \
    } while (0)

/* A call a GPU refuses while a stream captures in global mode (allocation,
 * free, synchronization): true, a report, and the capture is invalidated. */
static bool capture_forbids(const char *fn);

/* ============================================================ memory */
struct Alloc {
    size_t size;
    AllocKind kind;
    bool owned; /* allocated here (freed by cudaFree / cudaFreeHost) */
};
static std::map<uintptr_t, Alloc> g_allocs;
static long g_live = 0;
static long g_fail_after = -1; /* failure injection: the n-th next allocation fails */

static std::map<uintptr_t, Alloc>::iterator find_block(const void *p) {
    uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return g_allocs.end();
    --it;
    if (a >= it->first && a < it->first + (it->second.size ? it->second.size : 1)) return it;
    return g_allocs.end();
}

AllocKind find_alloc(const void *p, size_t n) {
    Guard g(device_lock());
    auto it = find_block(p);
    if (it == g_allocs.end()) return A_NONE;
    if ((uintptr_t)p + n > it->first + it->second.size) return A_NONE;
    return it->second.kind;
}

static bool inject_failure() {
    if (g_fail_after < 0) return false;
    if (g_fail_after-- == 0) {
        g_fail_after = -1;
        return true;
    }
    return false;
}

static cudaError_t do_alloc(void **p, size_t n, AllocKind kind, size_t align) {
    if (!p) return set_last_error(cudaErrorInvalidValue);
    *p = nullptr;
    if (n == 0) return cudaSuccess;
    if (inject_failure()) return set_last_error(cudaErrorMemoryAllocation);
    void *m = nullptr;
    if (posix_memalign(&m, align, n) != 0 || !m) return set_last_error(cudaErrorMemoryAllocation);
    memset(m, 0xff, n); /* NaN floats, -1 ints: reads of never-written memory show */
    g_allocs[(uintptr_t)m] = Alloc{n, kind, true};
    g_live++;
    *p = m;
    return cudaSuccess;
}

static cudaError_t do_free(void *p, bool host) {
    if (!p) return cudaSuccess;
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || !it->second.owned ||
        (host ? it->second.kind != A_PINNED : it->second.kind == A_PINNED)) {
        diag("%s(%p): not a pointer returned by %s", host ? "cudaFreeHost" : "cudaFree", p,
             host ? "cudaMallocHost/cudaHostAlloc" : "cudaMalloc/cudaMallocManaged");
        return set_last_error(cudaErrorInvalidValue);
    }
    flush_all(); /* cudaFree synchronizes the device */
    g_allocs.erase(it);
    g_live--;
    free(p);
    return cudaSuccess;
}

/* ========================================================== streams */
struct Op {
    uint64_t seq;
    std::function<void()> fn;
};
struct Graph {
    std::vector<std::function<void()>> ops;
};
struct Stream {
    std::deque<Op> q;
    uint64_t enq = 0, done = 0;
    bool blocking = true, legacy = false, flushing = false;
    int priority = 0;
    Graph *capture = nullptr; /* capturing: work goes here instead of q */
    bool capture_invalid = false;
    int capture_mode = 0;
};
/* streams capturing in cudaStreamCaptureModeGlobal or ThreadLocal: both
 * refuse unsafe calls from the capturing thread, and the emulated programs
 * make their CUDA calls from one thread */
static int g_capturing_global = 0;
static Stream g_legacy_stream, g_per_thread_stream;
static std::vector<Stream *> g_streams; /* created ones, in creation order */

Stream *resolve_stream(cudaStream_t s, cudaError_t *err) {
    *err = cudaSuccess;
    if (!g_legacy_stream.legacy) g_legacy_stream.legacy = true;
    if (s == nullptr || s == cudaStreamLegacy) return &g_legacy_stream;
    if (s == cudaStreamPerThread) return &g_per_thread_stream;
    for (Stream *x : g_streams)
        if ((cudaStream_t)x == s) return x;
    *err = cudaErrorInvalidResourceHandle;
    return nullptr;
}

static void run_until(Stream *s, uint64_t seq) {
    if (s->flushing) {
        if (s->done < seq) diag("stream dependency cycle: a stream waits for work queued behind itself");
        return;
    }
    s->flushing = true;
    while (!s->q.empty() && s->q.front().seq <= seq) {
        Op op = std::move(s->q.front());
        s->q.pop_front();
        /* after a sticky error the context is dead: queued work never runs */
        if (g_sticky == cudaSuccess) op.fn();
        s->done = op.seq;
    }
    s->flushing = false;
}

static bool capture_forbids(const char *fn) {
    if (!g_capturing_global) return false;
    diag("%s while a stream is being captured (global / thread-local mode): not permitted during capture", fn);
    for (Stream *x : g_streams)
        if (x->capture) x->capture_invalid = true;
    return true;
}

void flush(Stream *s) { run_until(s, s->enq); }

static void flush_blocking() {
    flush(&g_per_thread_stream);
    for (Stream *x : g_streams)
        if (x->blocking) flush(x);
}

void flush_all() {
    bool again = true;
    while (again) {
        flush(&g_legacy_stream);
        flush(&g_per_thread_stream);
        for (size_t i = 0; i < g_streams.size(); i++) flush(g_streams[i]);
        again = !g_legacy_stream.q.empty() || !g_per_thread_stream.q.empty();
        for (Stream *x : g_streams) again |= !x->q.empty();
    }
}

void enqueue(Stream *s, std::function<void()> op) {
    if (s->capture) { /* recorded, not run */
        if (!s->capture_invalid) s->capture->ops.push_back(std::move(op));
        return;
    }
    /* the legacy stream waits for the blocking streams and they wait for it */
    if (s->legacy) flush_blocking();
    else if (s->blocking) flush(&g_legacy_stream);
    s->q.push_back(Op{++s->enq, std::move(op)});
    if (config().eager) flush(s);
}

/* =========================================================== events */
struct Event {
    Stream *stream = nullptr;
    uint64_t seq = 0;   /* the record's position in its stream */
    bool recorded = false, timing = true;
    double ms = 0;      /* host time when the record ran */
};
static std::vector<Event *> g_events;

static Event *find_event(cudaEvent_t e) {
    for (Event *x : g_events)
        if ((cudaEvent_t)x == e) return x;
    return nullptr;
}
static double now_ms() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static bool event_done(const Event *e) { return !e->recorded || e->stream->done >= e->seq; }

/* ============================================================ props */
static void fill_props(cudaDeviceProp *p) {
    const int cc = config().cc;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "SIMT emulator (sm_%d)", cc);
    memcpy(p->uuid.bytes, "simt-emulator-00", 16);
    p->totalGlobalMem = (size_t)80 << 30;
    p->sharedMemPerBlock = 48 << 10;
    p->regsPerBlock = 65536;
    p->warpSize = 32;
    p->memPitch = (size_t)1 << 31;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = 1024;
    p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 2147483647;
    p->maxGridSize[1] = 65535;
    p->maxGridSize[2] = 65535;
    p->totalConstMem = 64 << 10;
    p->major = cc / 10;
    p->minor = cc % 10;
    p->multiProcessorCount = cc >= 90 ? 132 : cc == 80 ? 108 : cc == 70 ? 80 : 40;
    p->canMapHostMemory = 1;
    p->concurrentKernels = 1;
    p->asyncEngineCount = 2;
    p->unifiedAddressing = 1;
    p->memoryBusWidth = 5120;
    p->l2CacheSize = cc >= 90 ? 50 << 20 : cc >= 80 ? 40 << 20 : 6 << 20;
    p->maxThreadsPerMultiProcessor = cc == 75 ? 1024 : 2048;
    p->streamPrioritiesSupported = 1;
    p->sharedMemPerMultiprocessor = max_shared_optin() + (1 << 10);
    p->regsPerMultiprocessor = 65536;
    p->managedMemory = 1;
    p->concurrentManagedAccess = 1;
    p->cooperativeLaunch = 1;
    p->sharedMemPerBlockOptin = max_shared_optin();
    p->maxBlocksPerMultiProcessor = cc == 75 ? 16 : 32;
    p->reservedSharedMemPerBlock = cc >= 80 ? 1 << 10 : 0;
    p->memoryPoolsSupported = 1;
    p->clusterLaunch = cc >= 90;
}

/* ======================================================= attributes */
static std::map<const void *, int> g_func_smem;
int max_dynamic_smem(const void *func) {
    auto it = g_func_smem.find(func);
    return it == g_func_smem.end() ? 48 << 10 : it->second;
}

/* =========================================================== launch */
static const char *ptr_what(AllocKind k) {
    return k == A_NONE ? "pageable host memory (not cudaMalloc'ed, not pinned)" : "device memory";
}

void check_arg_pointer(const char *kernel, int index, const void *p) {
    if (!p) return;
    Guard g(device_lock());
    auto it = find_block(p);
    /* one past the end of an allocation is a valid (empty-range) pointer */
    if (it == g_allocs.end()) it = find_block((const char *)p - 1);
    if (it == g_allocs.end())
        diag("launch of %s: argument %d (%p) points to %s: the kernel would fault on a GPU", kernel, index, p,
             ptr_what(A_NONE));
}

cudaError_t enqueue_launch(const LaunchDesc &d) {
    Guard g(device_lock());
    cudaError_t e = config().devices <= 0 ? cudaErrorNoDevice : g_sticky;
    const uint64_t nt = (uint64_t)d.block.x * d.block.y * d.block.z;
    if (e == cudaSuccess) {
        if (!d.block.x || !d.block.y || !d.block.z || nt > 1024 || d.block.x > 1024 || d.block.y > 1024 ||
            d.block.z > 64 || !d.grid.x || !d.grid.y || !d.grid.z || d.grid.x > 2147483647u || d.grid.y > 65535 ||
            d.grid.z > 65535)
            e = cudaErrorInvalidConfiguration;
        else if (d.smem > (size_t)max_dynamic_smem(d.func))
            e = cudaErrorInvalidValue;
    }
    Stream *s = nullptr;
    if (e == cudaSuccess) s = resolve_stream(d.stream, &e);
    if (e != cudaSuccess) {
        if (e == cudaErrorInvalidConfiguration && diag_printing()) {
            fflush(stdout);
            fprintf(stderr, "simt: launch of %s with grid (%u,%u,%u) block (%u,%u,%u): invalid configuration\n",
                    d.name, d.grid.x, d.grid.y, d.grid.z, d.block.x, d.block.y, d.block.z);
        }
        d.destroy(d.ctx);
        return set_last_error(e);
    }
    /* the arguments live as long as the last copy of the work (a graph replays it) */
    std::shared_ptr<void> ctx(d.ctx, d.destroy);
    LaunchDesc c = d;
    enqueue(s, [c, ctx]() { run_grid(c); });
    return cudaSuccess;
}

} // namespace simt

using namespace simt;

/* ================================================== the runtime API */
extern "C" {

cudaError_t cudaGetLastError(void) {
    cudaError_t e = tl_last;
    tl_last = cudaSuccess;
    if (g_sticky != cudaSuccess) return g_sticky;
    return e;
}
cudaError_t cudaPeekAtLastError(void) { return g_sticky != cudaSuccess ? g_sticky : tl_last; }

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define N(x) case x: return #x;
        N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInitializationError)
        N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidPitchValue) N(cudaErrorInvalidSymbol)
        N(cudaErrorInvalidDevicePointer) N(cudaErrorInvalidMemcpyDirection) N(cudaErrorInsufficientDriver)
        N(cudaErrorNoDevice) N(cudaErrorInvalidDevice) N(cudaErrorNoKernelImageForDevice)
        N(cudaErrorUnsupportedPtxVersion) N(cudaErrorInvalidResourceHandle) N(cudaErrorNotReady)
        N(cudaErrorIllegalAddress) N(cudaErrorLaunchOutOfResources) N(cudaErrorLaunchTimeout) N(cudaErrorAssert)
        N(cudaErrorIllegalInstruction) N(cudaErrorLaunchFailure) N(cudaErrorNotSupported)
        N(cudaErrorStreamCaptureUnsupported) N(cudaErrorStreamCaptureInvalidated) N(cudaErrorStreamCaptureUnmatched)
        N(cudaErrorStreamCaptureImplicit) N(cudaErrorCapturedEvent) N(cudaErrorUnknown)
#undef N
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    default: return cudaGetErrorName(e);
    }
}

cudaError_t cudaGetDeviceCount(int *count) {
    Guard g(device_lock());
    if (!count) return set_last_error(cudaErrorInvalidValue);
    *count = config().devices > 0 ? config().devices : 0;
    return config().devices > 0 ? cudaSuccess : set_last_error(cudaErrorNoDevice);
}

static int g_device = 0;
cudaError_t cudaSetDevice(int device) {
    API_ENTER();
    if (device < 0 || device >= config().devices) return set_last_error(cudaErrorInvalidDevice);
    g_device = device;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int *device) {
    API_ENTER();
    if (!device) return set_last_error(cudaErrorInvalidValue);
    *device = g_device;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    API_ENTER();
    if (!prop) return set_last_error(cudaErrorInvalidValue);
    if (device < 0 || device >= config().devices) return set_last_error(cudaErrorInvalidDevice);
    fill_props(prop);
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    API_ENTER();
    if (!value) return set_last_error(cudaErrorInvalidValue);
    if (device < 0 || device >= config().devices) return set_last_error(cudaErrorInvalidDevice);
    cudaDeviceProp p;
    fill_props(&p);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *value = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *value = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *value = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *value = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *value = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrTotalConstantMemory: *value = (int)p.totalConstMem; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMaxRegistersPerBlock: *value = p.regsPerBlock; break;
    case cudaDevAttrClockRate: *value = 1700000; break;
    case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
    case cudaDevAttrPciBusId: *value = 0; break;
    case cudaDevAttrL2CacheSize: *value = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrUnifiedAddressing: *value = 1; break;
    case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrManagedMemory: *value = 1; break;
    case cudaDevAttrConcurrentManagedAccess: *value = 1; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
    case cudaDevAttrMaxBlocksPerMultiprocessor: *value = p.maxBlocksPerMultiProcessor; break;
    default: return set_last_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
/* Host synchronizations (simt_host_syncs): every call that makes the host
 * wait for device work or hands it device data (a real GPU would stall the
 * host there).  Counted whether or not work was pending. */
static long g_host_syncs, g_host_waits;
static const char *g_host_sync_last = "";
static void host_sync(const char *what) {
    g_host_syncs++;
    g_host_sync_last = what;
    /* SIMT_SYNC_TRACE=1: each one with its call stack on stderr (where a
     * "0 host syncs per step" test found one) */
    static int trace = -1;
    if (trace < 0) trace = env_int("SIMT_SYNC_TRACE", 0);
    if (trace) {
        void *pcs[16];
        int n = backtrace(pcs, 16);
        fprintf(stderr, "simt: host sync %ld: %s\n", g_host_syncs, what);
        backtrace_symbols_fd(pcs, n, 2);
    }
}
long simt_host_syncs(void) { return g_host_syncs; }
const char *simt_host_sync_last(void) { return g_host_sync_last; }
long simt_host_waits(void) { return g_host_waits; }

cudaError_t cudaDeviceSynchronize(void) {
    API_ENTER();
    host_sync("cudaDeviceSynchronize");
    if (capture_forbids("cudaDeviceSynchronize")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    flush_all();
    return g_sticky;
}
cudaError_t cudaDeviceReset(void) {
    Guard g(device_lock());
    flush_all();
    g_sticky = cudaSuccess;
    tl_last = cudaSuccess;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
    if (v) *v = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    if (v) *v = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    API_ENTER();
    size_t used = 0;
    for (auto &a : g_allocs)
        if (a.second.kind == A_DEVICE || a.second.kind == A_MANAGED) used += a.second.size;
    size_t total = (size_t)80 << 30;
    if (free_bytes) *free_bytes = total - used;
    if (total_bytes) *total_bytes = total;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t n) {
    API_ENTER();
    if (capture_forbids("cudaMalloc")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    return do_alloc(p, n, A_DEVICE, 256);
}
cudaError_t cudaMallocManaged(void **p, size_t n, unsigned int) {
    API_ENTER();
    return do_alloc(p, n, A_MANAGED, 256);
}
cudaError_t cudaMallocHost(void **p, size_t n) {
    API_ENTER();
    if (capture_forbids("cudaMallocHost")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    return do_alloc(p, n, A_PINNED, 4096);
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned int) {
    API_ENTER();
    return do_alloc(p, n, A_PINNED, 4096);
}
cudaError_t cudaFree(void *p) {
    API_ENTER();
    if (p) host_sync("cudaFree"); /* a real cudaFree waits for the device */
    if (p && capture_forbids("cudaFree")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    return do_free(p, false);
}
cudaError_t cudaFreeHost(void *p) {
    API_ENTER();
    if (p) host_sync("cudaFreeHost");
    return do_free(p, true);
}
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s) {
    API_ENTER();
    cudaError_t e;
    if (!resolve_stream(s, &e)) return set_last_error(e);
    return do_alloc(p, n, A_DEVICE, 256);
}
cudaError_t cudaFreeAsync(void *p, cudaStream_t s) {
    API_ENTER();
    cudaError_t e;
    Stream *st = resolve_stream(s, &e);
    if (!st) return set_last_error(e);
    if (!p) return cudaSuccess;
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != A_DEVICE) return set_last_error(cudaErrorInvalidValue);
    enqueue(st, [p]() {
        g_allocs.erase((uintptr_t)p);
        g_live--;
        free(p);
    });
    return cudaSuccess;
}
cudaError_t cudaHostRegister(void *p, size_t n, unsigned int) {
    API_ENTER();
    if (!p || !n || find_block(p) != g_allocs.end()) return set_last_error(cudaErrorInvalidValue);
    g_allocs[(uintptr_t)p] = Alloc{n, A_REGISTERED, false};
    return cudaSuccess;
}
cudaError_t cudaHostUnregister(void *p) {
    API_ENTER();
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end() || it->second.kind != A_REGISTERED) return set_last_error(cudaErrorInvalidValue);
    flush_all();
    g_allocs.erase(it);
    return cudaSuccess;
}
cudaError_t cudaHostGetDevicePointer(void **d, void *h, unsigned int) {
    API_ENTER();
    auto it = find_block(h);
    if (!d || it == g_allocs.end() || (it->second.kind != A_PINNED && it->second.kind != A_REGISTERED))
        return set_last_error(cudaErrorInvalidValue);
    *d = h;
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *a, const void *p) {
    API_ENTER();
    if (!a) return set_last_error(cudaErrorInvalidValue);
    memset(a, 0, sizeof *a);
    auto it = find_block(p);
    AllocKind k = it == g_allocs.end() ? A_NONE : it->second.kind;
    a->type = k == A_DEVICE ? cudaMemoryTypeDevice
            : k == A_MANAGED ? cudaMemoryTypeManaged
            : k == A_NONE ? cudaMemoryTypeUnregistered : cudaMemoryTypeHost;
    a->device = g_device;
    a->devicePointer = k == A_NONE ? nullptr : (void *)p;
    a->hostPointer = k == A_DEVICE ? nullptr : (void *)p;
    return cudaSuccess;
}

/* ------------------------------------------------------------ copies */
/* The device side of a copy must lie inside one allocation (the GPU would
 * fault); host sides are checked by AddressSanitizer. */
static bool check_side(const char *fn, const char *which, const void *p, size_t n, bool device) {
    if (!n) return true;
    AllocKind k = find_alloc(p, n);
    if (device && k == A_NONE) {
        diag("%s: %s range [%p, +%zu) is not inside one device allocation", fn, which, p, n);
        return false;
    }
    return true;
}

static bool is_device_side(const void *p, enum cudaMemcpyKind kind, bool dst) {
    switch (kind) {
    case cudaMemcpyHostToDevice: return dst;
    case cudaMemcpyDeviceToHost: return !dst;
    case cudaMemcpyDeviceToDevice: return true;
    case cudaMemcpyHostToHost: return false;
    default: {
        AllocKind k = find_alloc(p, 1);
        return k == A_DEVICE || k == A_MANAGED;
    }
    }
}

static cudaError_t copy_common(const char *fn, void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                               cudaStream_t stream, bool async) {
    if (n == 0) return cudaSuccess;
    if (!dst || !src || (int)kind < 0 || (int)kind > 4) return set_last_error(cudaErrorInvalidValue);
    bool ddev = is_device_side(dst, kind, true), sdev = is_device_side(src, kind, false);
    if (!check_side(fn, "destination", dst, n, ddev) || !check_side(fn, "source", src, n, sdev))
        return set_last_error(cudaErrorInvalidValue);
    cudaError_t e;
    Stream *s = resolve_stream(stream, &e);
    if (!s) return set_last_error(e);
    AllocKind dk = find_alloc(dst, n), sk = find_alloc(src, n);
    if (!async && capture_forbids(fn)) return set_last_error(cudaErrorStreamCaptureUnsupported);
    /* an async copy into pinned memory is not a wait (reading it needs one, counted there) */
    if (!async || (!ddev && sdev && dk == A_NONE)) host_sync(async ? "cudaMemcpyAsync(device to pageable host)" : fn);
    if (s->capture && ((!sdev && sk == A_NONE) || (!ddev && dk == A_NONE))) {
        diag("%s: a copy from or to pageable host memory cannot be captured", fn);
        s->capture_invalid = true;
        return set_last_error(cudaErrorStreamCaptureUnsupported);
    }
    if (!async) {
        /* synchronous: the legacy stream and the blocking streams first */
        flush_blocking();
        flush(&g_legacy_stream);
        memmove(dst, src, n);
        return g_sticky;
    }
    if (!sdev && !ddev) { /* host to host: synchronous */
        flush(s);
        memmove(dst, src, n);
        return cudaSuccess;
    }
    if (!ddev && dk == A_NONE) { /* to pageable host memory: returns when done */
        if (s->legacy) flush_blocking();
        flush(s);
        memmove(dst, src, n);
        return g_sticky;
    }
    if (!sdev && sk == A_NONE) { /* from pageable memory: staged now */
        std::vector<unsigned char> staged((const unsigned char *)src, (const unsigned char *)src + n);
        enqueue(s, [dst, staged]() { memcpy(dst, staged.data(), staged.size()); });
        return cudaSuccess;
    }
    enqueue(s, [dst, src, n]() { memmove(dst, src, n); });
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind) {
    API_ENTER();
    return copy_common("cudaMemcpy", dst, src, n, kind, nullptr, false);
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s) {
    API_ENTER();
    return copy_common("cudaMemcpyAsync", dst, src, n, kind, s, true);
}
static cudaError_t copy2d(void *dst, size_t dp, const void *src, size_t sp, size_t w, size_t h,
                          enum cudaMemcpyKind kind, cudaStream_t s, bool async) {
    if (w > dp || w > sp) return set_last_error(cudaErrorInvalidPitchValue);
    for (size_t r = 0; r < h; r++) {
        cudaError_t e = copy_common(async ? "cudaMemcpy2DAsync" : "cudaMemcpy2D", (char *)dst + r * dp,
                                    (const char *)src + r * sp, w, kind, s, async);
        if (e != cudaSuccess) return e;
    }
    return cudaSuccess;
}
cudaError_t cudaMemcpy2D(void *dst, size_t dp, const void *src, size_t sp, size_t w, size_t h,
                         enum cudaMemcpyKind kind) {
    API_ENTER();
    return copy2d(dst, dp, src, sp, w, h, kind, nullptr, false);
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dp, const void *src, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind kind, cudaStream_t s) {
    API_ENTER();
    return copy2d(dst, dp, src, sp, w, h, kind, s, true);
}

static cudaError_t memset_common(void *p, int v, size_t n, cudaStream_t stream, bool async) {
    if (n == 0) return cudaSuccess;
    if (!check_side(async ? "cudaMemsetAsync" : "cudaMemset", "destination", p, n, true))
        return set_last_error(cudaErrorInvalidValue);
    cudaError_t e;
    Stream *s = resolve_stream(stream, &e);
    if (!s) return set_last_error(e);
    if (!async && capture_forbids("cudaMemset")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    if (!async) host_sync("cudaMemset");
    enqueue(s, [p, v, n]() { memset(p, v, n); });
    if (!async) flush(s);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t n) {
    API_ENTER();
    return memset_common(p, v, n, nullptr, false);
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s) {
    API_ENTER();
    return memset_common(p, v, n, s, true);
}

cudaError_t simt_memcpy_symbol(void *symbol, const void *src, size_t n, size_t offset, int to_symbol, int,
                               cudaStream_t) {
    API_ENTER();
    host_sync("cudaMemcpyToSymbol/FromSymbol");
    flush_all();
    if (to_symbol) memcpy((char *)symbol + offset, src, n);
    else memcpy((void *)src, (char *)symbol + offset, n);
    return cudaSuccess;
}

/* ------------------------------------------------------------ streams */
cudaError_t cudaStreamCreateWithPriority(cudaStream_t *ps, unsigned int flags, int priority) {
    API_ENTER();
    if (!ps || (flags & ~1u)) return set_last_error(cudaErrorInvalidValue);
    Stream *s = new Stream;
    s->blocking = !(flags & cudaStreamNonBlocking);
    s->priority = priority;
    g_streams.push_back(s);
    *ps = (cudaStream_t)s;
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *ps, unsigned int flags) {
    return cudaStreamCreateWithPriority(ps, flags, 0);
}
cudaError_t cudaStreamCreate(cudaStream_t *ps) { return cudaStreamCreateWithPriority(ps, 0, 0); }
cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
    if (least) *least = 0;
    if (greatest) *greatest = -5;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t st) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s || s == &g_legacy_stream || s == &g_per_thread_stream) return set_last_error(cudaErrorInvalidResourceHandle);
    flush(s); /* enqueued work completes */
    for (size_t i = 0; i < g_streams.size(); i++)
        if (g_streams[i] == s) g_streams.erase(g_streams.begin() + (long)i);
    for (Event *ev : g_events)
        if (ev->stream == s) ev->stream = &g_legacy_stream, ev->seq = 0;
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t st) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s) return set_last_error(e);
    if (s->capture) {
        diag("cudaStreamSynchronize on a stream that is being captured");
        s->capture_invalid = true;
        return set_last_error(cudaErrorStreamCaptureUnsupported);
    }
    if (capture_forbids("cudaStreamSynchronize")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    host_sync("cudaStreamSynchronize");
    if (s->legacy) flush_blocking();
    flush(s);
    return g_sticky;
}
cudaError_t cudaStreamQuery(cudaStream_t st) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s) return set_last_error(e);
    flush(s); /* a polling loop must make progress */
    return g_sticky;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t st, cudaEvent_t ev, unsigned int) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    Event *x = find_event(ev);
    if (!s || !x) return set_last_error(s ? cudaErrorInvalidResourceHandle : e);
    if (!x->recorded) return cudaSuccess; /* waiting for a never-recorded event is a no-op */
    Stream *src = x->stream;
    uint64_t seq = x->seq; /* the record as of this call */
    enqueue(s, [src, seq]() { run_until(src, seq); });
    return cudaSuccess;
}

/* ------------------------------------------------------------- events */
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *pe, unsigned int flags) {
    API_ENTER();
    if (!pe) return set_last_error(cudaErrorInvalidValue);
    Event *x = new Event;
    x->timing = !(flags & cudaEventDisableTiming);
    g_events.push_back(x);
    *pe = (cudaEvent_t)x;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *pe) { return cudaEventCreateWithFlags(pe, 0); }
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t st) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    Event *x = find_event(ev);
    if (!s || !x) return set_last_error(s ? cudaErrorInvalidResourceHandle : e);
    if (s->capture) { /* capture events are not emulated: Miles records none */
        diag("cudaEventRecord on a capturing stream is not emulated");
        s->capture_invalid = true;
        return set_last_error(cudaErrorStreamCaptureUnsupported);
    }
    enqueue(s, [x]() { x->ms = now_ms(); });
    x->stream = s;
    x->seq = s->enq;
    x->recorded = true;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
    API_ENTER();
    if (capture_forbids("cudaEventSynchronize")) return set_last_error(cudaErrorStreamCaptureUnsupported);
    Event *x = find_event(ev);
    if (!x) return set_last_error(cudaErrorInvalidResourceHandle);
    /* work enqueued after the record keeps the device busy: a bounded wait
     * (e.g. for a staging buffer), not a drain */
    if (x->recorded && x->seq < x->stream->enq) g_host_waits++;
    else host_sync("cudaEventSynchronize");
    if (x->recorded) run_until(x->stream, x->seq);
    return g_sticky;
}
cudaError_t cudaEventQuery(cudaEvent_t ev) {
    API_ENTER();
    Event *x = find_event(ev);
    if (!x) return set_last_error(cudaErrorInvalidResourceHandle);
    if (x->recorded) run_until(x->stream, x->seq);
    return event_done(x) ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    API_ENTER();
    Event *x = find_event(a), *y = find_event(b);
    if (!ms || !x || !y) return set_last_error(cudaErrorInvalidResourceHandle);
    if (!x->timing || !y->timing || !x->recorded || !y->recorded) return set_last_error(cudaErrorInvalidResourceHandle);
    if (!event_done(x) || !event_done(y)) return set_last_error(cudaErrorNotReady);
    *ms = (float)(y->ms - x->ms);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
    API_ENTER();
    for (size_t i = 0; i < g_events.size(); i++)
        if ((cudaEvent_t)g_events[i] == ev) {
            /* a pending record still refers to it: run it first */
            if (g_events[i]->recorded) run_until(g_events[i]->stream, g_events[i]->seq);
            delete g_events[i];
            g_events.erase(g_events.begin() + (long)i);
            return cudaSuccess;
        }
    return set_last_error(cudaErrorInvalidResourceHandle);
}

/* ------------------------------------------------------------ graphs */
struct GraphExec {
    std::vector<std::function<void()>> ops;
};
static std::vector<Graph *> g_graphs;
static std::vector<GraphExec *> g_execs;

cudaError_t cudaStreamBeginCapture(cudaStream_t st, enum cudaStreamCaptureMode mode) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s) return set_last_error(e);
    if (s->legacy || s == &g_per_thread_stream || s->capture) {
        diag("cudaStreamBeginCapture on the legacy stream or a stream already capturing");
        return set_last_error(cudaErrorStreamCaptureUnsupported);
    }
    flush(s); /* earlier work runs before the captured work */
    s->capture = new Graph;
    s->capture_invalid = false;
    s->capture_mode = (int)mode;
    if (mode != cudaStreamCaptureModeRelaxed) g_capturing_global++;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s) return set_last_error(e);
    if (!s->capture) return set_last_error(cudaErrorStreamCaptureUnmatched);
    Graph *gr = s->capture;
    bool bad = s->capture_invalid;
    s->capture = nullptr;
    s->capture_invalid = false;
    if (s->capture_mode != cudaStreamCaptureModeRelaxed) g_capturing_global--;
    if (graph) *graph = nullptr;
    if (bad) {
        delete gr;
        return set_last_error(cudaErrorStreamCaptureInvalidated);
    }
    g_graphs.push_back(gr);
    if (graph) *graph = (cudaGraph_t)gr;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t st, enum cudaStreamCaptureStatus *status) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s || !status) return set_last_error(s ? cudaErrorInvalidValue : e);
    *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture_invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
static Graph *find_graph(cudaGraph_t g) {
    for (Graph *x : g_graphs)
        if ((cudaGraph_t)x == g) return x;
    return nullptr;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    API_ENTER();
    Graph *g = find_graph(graph);
    if (!exec || !g) return set_last_error(cudaErrorInvalidValue);
    GraphExec *x = new GraphExec;
    x->ops = g->ops;
    g_execs.push_back(x);
    *exec = (cudaGraphExec_t)x;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st) {
    API_ENTER();
    cudaError_t e;
    Stream *s = resolve_stream(st, &e);
    if (!s) return set_last_error(e);
    GraphExec *x = nullptr;
    for (GraphExec *y : g_execs)
        if ((cudaGraphExec_t)y == exec) x = y;
    if (!x) return set_last_error(cudaErrorInvalidValue);
    for (auto &op : x->ops) enqueue(s, op);
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    API_ENTER();
    for (size_t i = 0; i < g_execs.size(); i++)
        if ((cudaGraphExec_t)g_execs[i] == exec) {
            flush_all(); /* a launched graph may still be queued */
            delete g_execs[i];
            g_execs.erase(g_execs.begin() + (long)i);
            return cudaSuccess;
        }
    return set_last_error(cudaErrorInvalidValue);
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    API_ENTER();
    for (size_t i = 0; i < g_graphs.size(); i++)
        if ((cudaGraph_t)g_graphs[i] == graph) {
            delete g_graphs[i];
            g_graphs.erase(g_graphs.begin() + (long)i);
            return cudaSuccess;
        }
    return set_last_error(cudaErrorInvalidValue);
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *num) {
    API_ENTER();
    Graph *g = find_graph(graph);
    if (!g || !num) return set_last_error(cudaErrorInvalidValue);
    if (nodes) /* opaque handles: the node's index + 1 */
        for (size_t i = 0; i < *num && i < g->ops.size(); i++) nodes[i] = (cudaGraphNode_t)(uintptr_t)(i + 1);
    *num = g->ops.size();
    return cudaSuccess;
}

/* ------------------------------------------------------ functions */
cudaError_t simt_func_set_attribute(const void *func, enum cudaFuncAttribute attr, int value) {
    API_ENTER();
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > max_shared_optin()) return set_last_error(cudaErrorInvalidValue);
        g_func_smem[func] = value;
    }
    return cudaSuccess;
}
cudaError_t simt_func_get_attributes(cudaFuncAttributes *a, const void *func) {
    API_ENTER();
    if (!a) return set_last_error(cudaErrorInvalidValue);
    memset(a, 0, sizeof *a);
    a->maxThreadsPerBlock = 1024;
    a->numRegs = 32;
    a->ptxVersion = a->binaryVersion = config().cc;
    a->maxDynamicSharedSizeBytes = max_dynamic_smem(func);
    return cudaSuccess;
}

/* ------------------------------------------------------- simt.h API */
void simt_set_compute_capability(int cc) {
    Guard g(device_lock());
    config().cc = cc;
}
int simt_compute_capability(void) { return config().cc; }
long simt_live_allocations(void) {
    Guard g(device_lock());
    return g_live;
}
void simt_inject_alloc_failure(long after) {
    Guard g(device_lock());
    g_fail_after = after;
}
int simt_cublas_f16_saturate(int on) {
    Guard g(device_lock());
    int old = config().f16_saturate;
    config().f16_saturate = on;
    return old;
}

} /* extern "C" */
