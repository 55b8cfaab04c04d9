/*
 * simt_core.cpp — the SIMT emulator's execution engine: fibers (one per
 * thread of the running block), the scheduler, barriers, warp collectives,
 * diagnostics and the per-kernel bookkeeping.  See simt_device.h for the
 * execution model and docs/gpu.md for what it proves.
 *
 * Fibers switch with a 16-instruction context switch on x86-64 (callee-saved
 * registers), with the AddressSanitizer fiber
 * annotations so ASan follows the stacks; elsewhere with ucontext.
 */
#include "simt_internal.h"
#include "cuda_bf16.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

__thread uint3 threadIdx;
__thread uint3 blockIdx;
__thread uint3 blockDim;
__thread uint3 gridDim;

namespace simt {

/* ===================================================== context switch */
#if defined(__x86_64__)
extern "C" void simt_ctx_swap(void **save_sp, void *load_sp);
extern "C" void simt_ctx_entry(void);
/* Saves the callee-saved registers of the running context on its stack,
 * stores its stack pointer, loads the other one and returns into it.  A new
 * context "returns" into simt_ctx_entry, which calls fn(arg) from r13/r12
 * with a 16-byte aligned stack.  The x87/SSE control words (rounding mode,
 * FTZ) are not switched: every fiber runs with the process's (kernels never
 * change them), and ldmxcsr would cost as much as the rest of the switch. */
asm(R"(
    .text
    .globl simt_ctx_swap
    .type simt_ctx_swap, @function
simt_ctx_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size simt_ctx_swap, .-simt_ctx_swap
    .globl simt_ctx_entry
    .type simt_ctx_entry, @function
simt_ctx_entry:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size simt_ctx_entry, .-simt_ctx_entry
)");

struct Ctx {
    void *sp;
};

static void ctx_init(Ctx *c, char *lo, size_t size, void (*fn)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)(lo + size)) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = (void *)simt_ctx_entry; /* popped by ret: the stack is then 16-aligned */
    *--sp = nullptr;                /* rbp: ends frame-pointer backtraces */
    *--sp = nullptr;                /* rbx */
    *--sp = arg;                    /* r12 */
    *--sp = (void *)fn;             /* r13 */
    *--sp = nullptr;                /* r14 */
    *--sp = nullptr;                /* r15 */
    c->sp = sp;
}
static inline void ctx_switch(Ctx *from, Ctx *to) { simt_ctx_swap(&from->sp, to->sp); }
#else
#include <ucontext.h>
struct Ctx {
    ucontext_t uc;
};
static void ctx_tramp(unsigned lo, unsigned hi, unsigned flo, unsigned fhi) {
    void *arg = (void *)(((uintptr_t)hi << 32) | lo);
    void (*fn)(void *) = (void (*)(void *))(((uintptr_t)fhi << 32) | flo);
    fn(arg);
    abort();
}
static void ctx_init(Ctx *c, char *lo, size_t size, void (*fn)(void *), void *arg) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    uintptr_t a = (uintptr_t)arg, f = (uintptr_t)fn;
    makecontext(&c->uc, (void (*)())ctx_tramp, 4, (unsigned)a, (unsigned)(a >> 32), (unsigned)f,
                (unsigned)(f >> 32));
}
static inline void ctx_switch(Ctx *from, Ctx *to) { swapcontext(&from->uc, &to->uc); }
#endif

/* ======================================================= fiber stacks */
struct Stack {
    char *lo;
    size_t size;
};
static std::vector<Stack> g_stacks; /* guarded by the device lock */

static size_t stack_bytes() {
    static size_t n = 0;
    if (!n) {
        const char *e = getenv("SIMT_STACK_KB");
#ifdef SIMT_ASAN
        n = 256 << 10; /* instrumented frames are larger */
#else
        n = 64 << 10;
#endif
        if (e && atoi(e) >= 16) n = (size_t)atoi(e) << 10;
    }
    return n;
}

/* Stacks are mapped once, lazily touched, with a guard page below each so an
 * overflow faults instead of corrupting the neighbour. */
static void ensure_stacks(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), sz = stack_bytes();
    while (g_stacks.size() < n) {
        char *m = (char *)mmap(nullptr, sz + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                               -1, 0);
        if (m == MAP_FAILED) {
            fprintf(stderr, "simt: cannot map a fiber stack (%zu bytes)\n", sz);
            abort();
        }
        mprotect(m, page, PROT_NONE);
        g_stacks.push_back(Stack{m + page, sz});
    }
}

/* ============================================================ state */
enum { S_READY, S_BAR, S_WARP, S_DONE };

struct SThread {
    Ctx ctx;
    int state;
    uint3 tid;
    int lin, warp, lane;
    Stack stack;
    int bar_result;
    /* warp collective in flight */
    int w_kind, w_size, w_arg, w_width, w_pred;
    unsigned w_mask;
    uint64_t w_val, w_result;
    const char *w_site;
};

struct SWarp {
    unsigned live;    /* lanes that exist and have not exited */
    unsigned pending; /* lanes waiting in a collective */
};

struct KStat {
    long launches = 0, blocks = 0, threads = 0, barriers = 0, warp_ops = 0, atomics = 0;
};

struct Exec {
    const LaunchDesc *d;
    KStat *stat;
    std::vector<SThread> th;
    std::vector<SWarp> warps;
    int nthreads, live;
    /* barrier */
    int bar_arrived, bar_kind, bar_count, bar_and, bar_or;
    const char *bar_site;
    /* scheduling */
    std::deque<int> ready;
    uint64_t rng;
    Ctx sched;
    SThread *cur;
    bool failed;
    int diag_shown; /* per launch, for repeated reports */
    char *dyn_smem;
    size_t dyn_size;
    const void *sched_bottom;
    size_t sched_size;
};

static thread_local Exec *tl_exec = nullptr;
static std::map<std::string, KStat> g_kstats;
/* kernels that ran since the last check that followed a kernel: every check
 * up to the next kernel launch reads their outputs */
static std::vector<std::string> g_dirty;
static bool g_checked = false;
static long g_diag = 0, g_diag_printed = 0;
static int g_diag_print = 1;
static uint64_t g_launch_counter = 0;

static inline uint64_t next_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ====================================================== diagnostics */
bool diag_printing() { return g_diag_print != 0; }

void diag(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    __atomic_add_fetch(&g_diag, 1, __ATOMIC_RELAXED);
    long n = g_diag_print ? ++g_diag_printed : 0;
    Exec *E = tl_exec;
    if (n >= 1 && n <= 20) {
        fflush(stdout); /* keep the report between whole lines of test output */
        if (E && E->cur)
            fprintf(stderr, "simt: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s\n", E->d->name, blockIdx.x,
                    blockIdx.y, blockIdx.z, E->cur->tid.x, E->cur->tid.y, E->cur->tid.z, msg);
        else if (E)
            fprintf(stderr, "simt: kernel %s, block (%u,%u,%u): %s\n", E->d->name, blockIdx.x, blockIdx.y,
                    blockIdx.z, msg);
        else
            fprintf(stderr, "simt: %s\n", msg);
        if (n == 20) fprintf(stderr, "simt: further diagnostics are counted, not printed\n");
    }
    if (config().diag_abort) abort();
}

/* ======================================================== scheduling */
static void fiber_main(void *arg);

/* The next runnable thread (removed from the ready list), nullptr if none:
 * a seeded random pick, or the oldest with SIMT_SCHED=fifo. */
static SThread *pick_ready(Exec *E) {
    if (E->ready.empty()) return nullptr;
    int idx;
    if (config().random) {
        size_t j = (size_t)(next_rand(&E->rng) % E->ready.size());
        idx = E->ready[j];
        E->ready[j] = E->ready.back();
        E->ready.pop_back();
    } else {
        idx = E->ready.front();
        E->ready.pop_front();
    }
    return &E->th[idx];
}

/* Leave the running context `from` for thread `to` (nullptr: the scheduler,
 * which handles completion and deadlock).  Threads hand over directly to
 * each other, one switch per hand-over.  `dying`: `from` never resumes (ASan
 * then releases its fake stack).  Not instrumented: a dying thread's frame
 * here never returns, and its redzones would stay poisoned under the frames
 * of the next thread to use that stack. */
#ifdef SIMT_ASAN
__attribute__((no_sanitize_address))
#endif
static void switch_to(Exec *E, Ctx *from, SThread *to, bool dying) {
    const void *bottom;
    size_t size;
    Ctx *target;
    if (to) {
        E->cur = to;
        threadIdx = to->tid;
        bottom = to->stack.lo;
        size = to->stack.size;
        target = &to->ctx;
    } else {
        E->cur = nullptr;
        bottom = E->sched_bottom;
        size = E->sched_size;
        target = &E->sched;
    }
#ifdef SIMT_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(dying ? nullptr : &fake, bottom, size);
#else
    (void)bottom, (void)size, (void)dying;
#endif
    ctx_switch(from, target);
#ifdef SIMT_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

/* Called on a fiber that has just waited or made itself ready: run the next
 * thread until this one is picked again. */
static void yield(Exec *E, SThread *t) {
    SThread *n = E->failed ? nullptr : pick_ready(E);
    if (n == t) return; /* picked itself: go on without a switch */
    switch_to(E, &t->ctx, n, false);
}

static void make_ready(Exec *E, SThread *t) {
    t->state = S_READY;
    E->ready.push_back(t->lin);
}

static void bar_check_release(Exec *E) {
    if (E->bar_arrived == 0 || E->bar_arrived != E->live) return;
    int r = E->bar_kind == B_COUNT ? E->bar_count : E->bar_kind == B_AND ? E->bar_and : E->bar_kind == B_OR ? E->bar_or : 0;
    for (SThread &t : E->th)
        if (t.state == S_BAR) {
            t.bar_result = r;
            make_ready(E, &t);
        }
    E->bar_arrived = 0;
}

static const char *kind_name(int k) {
    static const char *n[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync", "__any_sync",
                              "__all_sync", "__ballot_sync", "__syncwarp", "__match_any_sync", "__match_all_sync",
                              "__reduce_add_sync", "__reduce_min_sync", "__reduce_max_sync", "__reduce_and_sync",
                              "__reduce_or_sync", "__reduce_xor_sync", "mma.sync.m16n8k16.f16",
                              "mma.sync.m16n8k16.bf16"};
    return k >= 0 && k < (int)(sizeof n / sizeof *n) ? n[k] : "?";
}

static uint64_t size_mask(int size) { return size >= 8 ? ~0ULL : ((1ULL << (8 * size)) - 1); }

/* One lane's operands of an emulated mma.sync (on its fiber's stack while it
 * waits in the collective). */
struct MmaFrag {
    uint32_t a[4], b[2];
    float c[4];
};

static inline float half_bits(uint32_t h, bool bf16) { return bf16 ? bf16_to_f32((uint16_t)h) : f16_to_f32((uint16_t)h); }

/* mma.m16n8k16 with the PTX fragment layouts (g = lane/4, t = lane%4):
 * A: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..];
 * B: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g];  C/D: c0,c1 = C[g][2t,2t+1], c2,c3 = C[g+8][2t,2t+1];
 * the lower index in the low 16 bits.  All 32 lanes must take part. */
static void mma_complete(Exec *E, int wi, unsigned need, SThread **lane, bool bf16) {
    if (need != 0xffffffffu) {
        SThread *saved = E->cur;
        E->cur = lane[__builtin_ctz(need)];
        diag("mma.sync at %s with lanes 0x%08x of warp %d: all 32 lanes must execute it (undefined behaviour)",
             E->cur->w_site, need, wi);
        E->cur = saved;
    }
    if (config().cc < 80) {
        SThread *saved = E->cur;
        E->cur = lane[__builtin_ctz(need)];
        diag("mma.sync.m16n8k16 at %s needs sm_80 (the emulated device is sm_%d)", E->cur->w_site, config().cc);
        E->cur = saved;
    }
    float A[16][16] = {}, B[16][8] = {};
    for (int l = 0; l < 32; l++) {
        if (!lane[l]) continue;
        const MmaFrag *f = (const MmaFrag *)(uintptr_t)lane[l]->w_val;
        const int g = l >> 2, t = l & 3;
        for (int h = 0; h < 2; h++) {
            A[g][2 * t + h] = half_bits(f->a[0] >> (16 * h) & 0xffffu, bf16);
            A[g + 8][2 * t + h] = half_bits(f->a[1] >> (16 * h) & 0xffffu, bf16);
            A[g][2 * t + 8 + h] = half_bits(f->a[2] >> (16 * h) & 0xffffu, bf16);
            A[g + 8][2 * t + 8 + h] = half_bits(f->a[3] >> (16 * h) & 0xffffu, bf16);
            B[2 * t + h][g] = half_bits(f->b[0] >> (16 * h) & 0xffffu, bf16);
            B[2 * t + 8 + h][g] = half_bits(f->b[1] >> (16 * h) & 0xffffu, bf16);
        }
    }
    for (int l = 0; l < 32; l++) {
        if (!lane[l]) continue;
        MmaFrag *f = (MmaFrag *)(uintptr_t)lane[l]->w_val;
        const int g = l >> 2, t = l & 3;
        for (int i = 0; i < 4; i++) {
            const int r = g + 8 * (i >> 1), c = 2 * t + (i & 1);
            float acc = f->c[i];
            for (int k = 0; k < 16; k++) acc = fmaf(A[r][k], B[k][c], acc);
            f->c[i] = acc;
        }
        lane[l]->w_result = 0;
    }
}

/* Completes the collective of the lanes in `mask` when every non-exited lane
 * of the mask is waiting in one. */
static void warp_try_complete(Exec *E, int wi, unsigned mask) {
    SWarp &w = E->warps[wi];
    unsigned need = mask & w.live;
    if (!need || (need & ~w.pending)) return;
    SThread *lane[32] = {nullptr};
    for (int l = 0; l < 32; l++)
        if (need & (1u << l)) lane[l] = &E->th[wi * 32 + l];
    int first = __builtin_ctz(need);
    SThread *f = lane[first];
    const int kind = f->w_kind;
    for (int l = 0; l < 32; l++) {
        SThread *p = lane[l];
        if (!p) continue;
        if (p->w_kind != kind || p->w_mask != f->w_mask) {
            SThread *saved = E->cur;
            E->cur = p;
            diag("lanes %d and %d of warp %d meet in one warp collective with different intrinsics or masks (%s "
                 "mask 0x%08x at %s, %s mask 0x%08x at %s): undefined behaviour",
                 first, l, wi, kind_name(kind), f->w_mask, f->w_site, kind_name(p->w_kind), p->w_mask, p->w_site);
            E->cur = saved;
            break;
        }
    }
    if (kind == W_MMA_F16 || kind == W_MMA_BF16) {
        mma_complete(E, wi, need, lane, kind == W_MMA_BF16);
        for (int l = 0; l < 32; l++)
            if (lane[l]) make_ready(E, lane[l]);
        w.pending &= ~need;
        return;
    }
    uint64_t any = 0, all = 1, ballot = 0;
    for (int l = 0; l < 32; l++)
        if (lane[l]) {
            int b = lane[l]->w_val != 0;
            any |= b;
            all &= b;
            ballot |= (uint64_t)b << l;
        }
    for (int l = 0; l < 32; l++) {
        SThread *p = lane[l];
        if (!p) continue;
        uint64_t r = 0;
        int width = p->w_width, seg = l & ~(width - 1), src = l;
        switch (p->w_kind) {
        case W_SHFL_IDX: src = seg + (p->w_arg & (width - 1)); break;
        case W_SHFL_UP: src = (l - seg) < p->w_arg || p->w_arg < 0 ? l : l - p->w_arg; break;
        case W_SHFL_DOWN: src = p->w_arg < 0 || (l - seg) + p->w_arg >= width ? l : l + p->w_arg; break;
        case W_SHFL_XOR: src = l ^ p->w_arg; if (src < 0 || src >= seg + width) src = l; break;
        default: break;
        }
        switch (p->w_kind) {
        case W_SHFL_IDX:
        case W_SHFL_UP:
        case W_SHFL_DOWN:
        case W_SHFL_XOR:
            if (src >= 0 && src < 32 && lane[src]) {
                r = lane[src]->w_val;
            } else {
                r = ~0ULL & size_mask(p->w_size);
                SThread *saved = E->cur;
                E->cur = p;
                diag("%s at %s (mask 0x%08x) reads lane %d, which %s: the value is undefined on the GPU",
                     kind_name(p->w_kind), p->w_site, p->w_mask, src,
                     !(w.live >> src & 1) ? "has exited or does not exist (partial warp)"
                                          : "is not taking part (not in the mask)");
                E->cur = saved;
            }
            break;
        case W_ANY: r = any; break;
        case W_ALL: r = all; break;
        case W_BALLOT: r = ballot; break;
        case W_SYNCWARP: r = 0; break;
        case W_MATCH_ANY:
            for (int q = 0; q < 32; q++)
                if (lane[q] && ((lane[q]->w_val ^ p->w_val) & size_mask(p->w_size)) == 0) r |= 1ULL << q;
            break;
        case W_MATCH_ALL: {
            int same = 1;
            for (int q = 0; q < 32; q++)
                if (lane[q] && ((lane[q]->w_val ^ p->w_val) & size_mask(p->w_size)) != 0) same = 0;
            r = same ? need : 0;
            p->w_pred = same;
            break;
        }
        default: { /* __reduce_*_sync over 32-bit values */
            int sgn = p->w_arg;
            uint32_t acc = 0;
            bool init = false;
            for (int q = 0; q < 32; q++) {
                if (!lane[q]) continue;
                uint32_t v = (uint32_t)lane[q]->w_val;
                if (!init) {
                    acc = v;
                    init = true;
                    continue;
                }
                switch (p->w_kind) {
                case W_REDUCE_ADD: acc += v; break;
                case W_REDUCE_AND: acc &= v; break;
                case W_REDUCE_OR: acc |= v; break;
                case W_REDUCE_XOR: acc ^= v; break;
                case W_REDUCE_MIN: acc = sgn ? ((int32_t)v < (int32_t)acc ? v : acc) : (v < acc ? v : acc); break;
                case W_REDUCE_MAX: acc = sgn ? ((int32_t)v > (int32_t)acc ? v : acc) : (v > acc ? v : acc); break;
                }
            }
            r = acc;
        }
        }
        p->w_result = r;
    }
    for (int l = 0; l < 32; l++)
        if (lane[l]) make_ready(E, lane[l]);
    w.pending &= ~need;
}

static void thread_exit(Exec *E, SThread *t) {
    t->state = S_DONE;
    E->live--;
    SWarp &w = E->warps[t->warp];
    w.live &= ~(1u << t->lane);
    bar_check_release(E);
    /* collectives that were waiting for this lane */
    for (int l = 0; l < 32; l++)
        if (w.pending & (1u << l)) warp_try_complete(E, t->warp, E->th[t->warp * 32 + l].w_mask);
    switch_to(E, &t->ctx, E->failed ? nullptr : pick_ready(E), true);
    abort(); /* never resumed */
}

static void fiber_main(void *arg) {
    SThread *t = (SThread *)arg;
    Exec *E = tl_exec;
#ifdef SIMT_ASAN
    /* the first fiber of a launch is entered from the scheduler: its stack
     * bounds are what the fibers switch back to */
    const void *from_bottom = nullptr;
    size_t from_size = 0;
    __sanitizer_finish_switch_fiber(nullptr, &from_bottom, &from_size);
    if (!E->sched_bottom) E->sched_bottom = from_bottom, E->sched_size = from_size;
    /* the previous thread on this stack ended inside calls that never
     * returned: clear what its frames left poisoned below this one */
    char *frame = (char *)__builtin_frame_address(0);
    if (frame - 8192 > t->stack.lo) __asan_unpoison_memory_region(frame - 8192, 8192);
#endif
    E->d->run(E->d->ctx);
    thread_exit(E, t);
}

static void report_deadlock(Exec *E) {
    int nbar = 0, nwarp = 0;
    const SThread *ew = nullptr;
    for (const SThread &t : E->th) {
        if (t.state == S_BAR) nbar++;
        if (t.state == S_WARP) {
            nwarp++;
            if (!ew) ew = &t;
        }
    }
    char w[400] = "";
    if (ew)
        snprintf(w, sizeof w, "; e.g. thread (%u,%u,%u) in %s at %s with mask 0x%08x waits for lanes 0x%08x",
                 ew->tid.x, ew->tid.y, ew->tid.z, kind_name(ew->w_kind), ew->w_site, ew->w_mask,
                 ew->w_mask & E->warps[ew->warp].live & ~E->warps[ew->warp].pending);
    diag("deadlock: %d thread(s) wait at __syncthreads (%s) and %d in warp collectives, no thread can run%s "
         "(a barrier or collective not reached by every thread it names)",
         nbar, nbar ? E->bar_site : "-", nwarp, w);
    E->failed = true;
}

static void run_block(Exec *E) {
    const int n = E->nthreads;
    const unsigned bx = E->d->block.x, by = E->d->block.y;
    E->live = n;
    E->bar_arrived = 0;
    E->ready.clear();
    for (size_t i = 0; i < E->warps.size(); i++) {
        int lanes = n - (int)i * 32;
        E->warps[i].live = lanes >= 32 ? 0xffffffffu : ((1u << lanes) - 1);
        E->warps[i].pending = 0;
    }
    for (int i = 0; i < n; i++) {
        SThread &t = E->th[i];
        t.lin = i;
        t.warp = i / 32;
        t.lane = i % 32;
        t.tid = uint3{(unsigned)i % bx, ((unsigned)i / bx) % by, (unsigned)i / (bx * by)};
        t.stack = g_stacks[i];
        ctx_init(&t.ctx, t.stack.lo, t.stack.size, fiber_main, &t);
        make_ready(E, &t);
    }
    if (E->dyn_smem && E->dyn_size) memset(E->dyn_smem, 0xff, E->dyn_size);
    /* the threads hand over among themselves and come back here when none
     * is runnable: all done, a deadlock, or a failed launch */
    while (E->live > 0 && !E->failed) {
        SThread *n = pick_ready(E);
        if (!n) {
            report_deadlock(E);
            break;
        }
        switch_to(E, &E->sched, n, false);
    }
    if (E->failed) {
#ifdef SIMT_ASAN
        /* abandoned fibers leave poisoned frames behind */
        for (int i = 0; i < n; i++)
            if (E->th[i].state != S_DONE) __asan_unpoison_memory_region(E->th[i].stack.lo, E->th[i].stack.size);
#endif
    }
}

void run_grid(const LaunchDesc &d) {
    if (tl_exec) {
        diag("kernel %s launched while kernel %s runs (no dynamic parallelism in the emulator)", d.name,
             tl_exec->d->name);
        return;
    }
    Exec E;
    E.d = &d;
    E.stat = &g_kstats[d.name];
    E.nthreads = (int)(d.block.x * d.block.y * d.block.z);
    E.th.resize(E.nthreads);
    E.warps.resize((E.nthreads + 31) / 32);
    E.cur = nullptr;
    E.failed = false;
    E.diag_shown = 0;
    E.rng = (config().seed + 1) * 0x9E3779B97F4A7C15ULL ^ (++g_launch_counter * 0xBF58476D1CE4E5B9ULL);
    if (!E.rng) E.rng = 1;
    E.dyn_size = d.smem;
    E.dyn_smem = (char *)malloc(d.smem ? d.smem : 1);
    E.sched_bottom = nullptr;
    E.sched_size = 0;
    ensure_stacks((size_t)E.nthreads);
    blockDim = uint3{d.block.x, d.block.y, d.block.z};
    gridDim = uint3{d.grid.x, d.grid.y, d.grid.z};
    const uint64_t nblocks = (uint64_t)d.grid.x * d.grid.y * d.grid.z;
    std::vector<uint32_t> order;
    if (config().random && nblocks > 1) {
        order.resize(nblocks);
        for (uint64_t i = 0; i < nblocks; i++) order[i] = (uint32_t)i;
        for (uint64_t i = nblocks - 1; i > 0; i--) std::swap(order[i], order[next_rand(&E.rng) % (i + 1)]);
    }
    tl_exec = &E;
    E.stat->launches++;
    for (uint64_t k = 0; k < nblocks && !E.failed; k++) {
        uint64_t b = order.empty() ? k : order[k];
        blockIdx = uint3{(unsigned)(b % d.grid.x), (unsigned)((b / d.grid.x) % d.grid.y),
                         (unsigned)(b / ((uint64_t)d.grid.x * d.grid.y))};
        run_block(&E);
        E.stat->blocks++;
        E.stat->threads += E.nthreads;
    }
    tl_exec = nullptr;
    free(E.dyn_smem);
    note_kernel_run(d.name);
    if (E.failed) set_sticky_error(cudaErrorLaunchFailure);
}

/* ================================================ device entry points */
static Exec *current(const char *what) {
    Exec *E = tl_exec;
    if (!E || !E->cur) {
        diag("%s called outside a kernel", what);
        return nullptr;
    }
    return E;
}

void syncthreads(const char *site) { (void)syncthreads_op(B_SYNC, 0, site); }

int syncthreads_op(int kind, int pred, const char *site) {
    Exec *E = current("__syncthreads");
    if (!E) return 0;
    SThread *t = E->cur;
    E->stat->barriers++;
    if (E->bar_arrived == 0) {
        E->bar_site = site;
        E->bar_kind = kind;
        E->bar_count = 0;
        E->bar_and = 1;
        E->bar_or = 0;
    } else if ((E->bar_site != site && strcmp(E->bar_site, site)) || E->bar_kind != kind) {
        if (E->diag_shown++ < 3)
            diag("threads meet at different barriers (%s and %s): a __syncthreads in divergent code is undefined "
                 "behaviour",
                 E->bar_site, site);
    }
    E->bar_arrived++;
    E->bar_count += pred;
    E->bar_and &= pred;
    E->bar_or |= pred;
    t->state = S_BAR;
    bar_check_release(E);
    yield(E, t);
    return t->bar_result;
}

uint64_t warp_op(int kind, unsigned mask, uint64_t bits, int size, int arg, int width, const char *site,
                 int *pred_out) {
    Exec *E = current(kind_name(kind));
    if (!E) return 0;
    SThread *t = E->cur;
    E->stat->warp_ops++;
    unsigned bit = 1u << t->lane;
    if (!(mask & bit)) {
        diag("%s at %s: the calling lane %d is not in its mask 0x%08x (undefined behaviour)", kind_name(kind), site,
             t->lane, mask);
        mask |= bit;
    }
    if (width < 1 || width > 32 || (width & (width - 1))) {
        diag("%s at %s: width %d is not a power of two in [1, 32]", kind_name(kind), site, width);
        width = 32;
    }
    t->w_kind = kind;
    t->w_mask = mask;
    t->w_val = bits & size_mask(size);
    t->w_size = size;
    t->w_arg = arg;
    t->w_width = width;
    t->w_site = site;
    t->w_pred = 0;
    t->state = S_WARP;
    E->warps[t->warp].pending |= bit;
    warp_try_complete(E, t->warp, mask);
    yield(E, t);
    if (pred_out) *pred_out = t->w_pred;
    return t->w_result;
}

void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2], int bf16, const char *site) {
    MmaFrag f;
    memcpy(f.a, a, sizeof f.a);
    memcpy(f.b, b, sizeof f.b);
    memcpy(f.c, c, sizeof f.c);
    (void)warp_op(bf16 ? W_MMA_BF16 : W_MMA_F16, 0xffffffffu, (uint64_t)(uintptr_t)&f, 8, 0, 32, site);
    memcpy(c, f.c, sizeof f.c);
}

unsigned activemask() {
    Exec *E = current("__activemask");
    return E ? E->warps[E->cur->warp].live : 0;
}

void *dynamic_shared() {
    Exec *E = current("dynamic shared memory");
    return E ? E->dyn_smem : nullptr;
}

void trap(const char *site) {
    Exec *E = current("__trap");
    if (!E) abort();
    diag("__trap() at %s: the launch fails", site);
    E->failed = true;
    thread_exit(E, E->cur);
}

long long clock_tick() {
    static long long t = 0;
    return t += 16;
}

void count_atomic() {
    if (tl_exec) tl_exec->stat->atomics++;
}

/* ==================================================== bookkeeping */
void note_kernel_run(const char *name) {
    if (g_checked) {
        g_dirty.clear();
        g_checked = false;
    }
    for (const std::string &s : g_dirty)
        if (s == name) return;
    g_dirty.push_back(name);
}

} // namespace simt

using namespace simt;

extern "C" long simt_diagnostics(void) { return __atomic_load_n(&g_diag, __ATOMIC_RELAXED); }
extern "C" int simt_print_diagnostics(int on) {
    int old = g_diag_print;
    g_diag_print = on;
    return old;
}

extern "C" int simt_kernels_launched(void) {
    Guard g(device_lock());
    return (int)g_kstats.size();
}

extern "C" long simt_kernel_launches(const char *name) {
    Guard g(device_lock());
    auto it = g_kstats.find(name);
    return it == g_kstats.end() ? 0 : it->second.launches;
}

static FILE *record_file() {
    static FILE *f = nullptr;
    static bool tried = false;
    if (!tried) {
        tried = true;
        const char *p = getenv("SIMT_RECORD");
        if (p && *p) {
            f = fopen(p, "a");
            if (!f) fprintf(stderr, "simt: cannot append to SIMT_RECORD=%s\n", p);
        }
    }
    return f;
}

static void write_record(const std::string &k, const char *check, double err, double tol, int pass) {
    FILE *f = record_file();
    if (!f) return;
    const KStat &s = g_kstats[k];
    /* kernel, program, check, err, tol, pass, launches, barriers, warp ops, atomics */
    fprintf(f, "%s\t%s\t%s\t%.6e\t%.3e\t%d\t%ld\t%ld\t%ld\t%ld\n", k.c_str(), program_invocation_short_name, check,
            err, tol, pass, s.launches, s.barriers, s.warp_ops, s.atomics);
    fflush(f);
}

extern "C" void simt_check_record(const char *check, double err, double tol, int pass) {
    Guard g(device_lock());
    flush_all(); /* what the check read has run */
    for (const std::string &k : g_dirty) write_record(k, check, err, tol, pass);
    g_checked = true;
}

/* kernels that ran after the last check: recorded as unchecked */
static void record_unchecked(void) {
    if (!g_checked)
        for (const std::string &k : g_dirty) write_record(k, "(no check after it)", NAN, 0, 0);
    g_dirty.clear();
    if (g_diag_printed)
        fprintf(stderr, "simt: %ld diagnostic(s) in this run (see above)\n", simt_diagnostics());
}
static int g_atexit = (atexit(record_unchecked), 0);
