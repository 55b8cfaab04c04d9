/*
 * dist_zero1.c — ZeRO stage 1: AdamW moments sharded across data-parallel ranks.
 *
 * Plain data parallelism keeps the full AdamW moments (2 x 4 bytes per
 * parameter) on every rank.  Here rank r owns the contiguous range
 * [n*r/N, n*(r+1)/N) of the parameter block and keeps moments only for it:
 * 8n/N bytes instead of 8n (docs/distributed.md has the numbers).  A step:
 *   1. MPI_Reduce_scatter: rank r receives the summed gradients of its range
 *      (half the traffic of an all-reduce);
 *   2. global gradient norm = sqrt(all-reduce of the ranks' sums of squares),
 *      clip as torch.nn.utils.clip_grad_norm_;
 *   3. AdamW on the range with miles_adamw_update_range, the vectorized
 *      update of miles_adamw_step (optim.c, same bits), per-tensor decay groups;
 *   4. MPI_Allgatherv of the parameter ranges (the other half of the traffic).
 * Checkpoints stay the one-process format: rank 0 gathers the moments into a
 * full MilesAdamW for the write, and scatters them back after a load, so a run
 * can be resumed with or without ZeRO-1 and with any N.
 */
#include "optim_internal.h"
#include "internal.h"
#include "train_internal.h"
#include "dist_internal.h"

#include <limits.h>
#include <math.h>


typedef struct {
    size_t begin, end; /* [begin,end) of the parameter block, within this rank's range */
    int decay;
    double scale;      /* the tensor's lr multiplier (miles_adamw_lr_scale, as optim.c) */
} Segment;

struct MilesZero1 {
    MilesDist *dist;
    MilesModel *model;
    MilesAdamWConfig cfg;
    int rank, size;
    size_t n, lo, hi;        /* block size; this rank's range */
    int *counts, *displs;    /* [size] ranges, in floats (each < INT_MAX) */
    float *m, *v, *g;        /* [hi-lo] moments and reduced gradients */
    Segment *seg;
    int nseg;
    int64_t t;
};

int miles_zero1_build(MilesZero1 **out, MilesDist *d, MilesModel *m, const MilesAdamWConfig *cfg) {
    *out = NULL;
    MILES_TRY(miles_adamw_check_groups(cfg));
    if (!d || !d->ops || d->size < 2) return miles_error(MILES_EINVAL, "ZeRO-1 needs more than one MPI rank");
    float *P;
    size_t n;
    MILES_TRY(miles_dist_model_block(m, 0, &P, &n));
    int size = miles_dist_size(d), rank = miles_dist_rank(d);
    if (n / (size_t)size + 1 > (size_t)INT_MAX)
        return miles_error(MILES_EUNSUPPORTED, "ZeRO-1: %zu parameters over %d ranks exceed MPI's int counts", n, size);
    MilesZero1 *z = miles_calloc(1, sizeof *z);
    if (!z) return MILES_ENOMEM;
    z->dist = d;
    z->model = m;
    z->cfg = *cfg;
    z->rank = rank;
    z->size = size;
    z->n = n;
    z->counts = miles_calloc((size_t)size, sizeof(int));
    z->displs = miles_calloc((size_t)size, sizeof(int));
    int nt = miles_model_num_tensors(m);
    z->seg = miles_calloc((size_t)nt + 1, sizeof(Segment));
    if (!z->counts || !z->displs || !z->seg) { miles_zero1_free(z); return MILES_ENOMEM; }
    if (n > (size_t)INT_MAX) {
        miles_zero1_free(z);
        return miles_error(MILES_EUNSUPPORTED, "ZeRO-1: more than INT_MAX parameters (displacements are ints)");
    }
    for (int r = 0; r < size; r++) {
        size_t a = n * (size_t)r / (size_t)size, b = n * (size_t)(r + 1) / (size_t)size;
        z->displs[r] = (int)a;
        z->counts[r] = (int)(b - a);
    }
    z->lo = (size_t)z->displs[rank];
    z->hi = z->lo + (size_t)z->counts[rank];
    size_t k = z->hi - z->lo;
    z->m = miles_aligned_alloc((k ? k : 1) * sizeof(float));
    z->v = miles_aligned_alloc((k ? k : 1) * sizeof(float));
    z->g = miles_aligned_alloc((k ? k : 1) * sizeof(float));
    if (!z->m || !z->v || !z->g) { miles_zero1_free(z); return MILES_ENOMEM; }
    /* the decay groups of the tensors that overlap this rank's range */
    size_t off = 0;
    for (int i = 0; i < nt; i++) {
        MilesTensorInfo ti;
        int s = miles_model_tensor(m, i, &ti);
        if (s != MILES_OK) { miles_zero1_free(z); return s; }
        size_t a = off > z->lo ? off : z->lo, b = off + ti.numel < z->hi ? off + ti.numel : z->hi;
        if (a < b)
            z->seg[z->nseg++] = (Segment){a, b, cfg->decay_all || ti.decay,
                                          miles_adamw_lr_scale(cfg, ti.name, miles_model_config(m)->num_hidden_layers)};
        off += ti.numel;
    }
    *out = z;
    return MILES_OK;
}

void miles_zero1_free(MilesZero1 *z) {
    if (!z) return;
    free(z->counts); free(z->displs); free(z->seg);
    free(z->m); free(z->v); free(z->g);
    free(z);
}

int miles_zero1_step(MilesZero1 *z, float lr, float max_norm, float *grad_norm) {
    if (!(lr >= 0.0f) || !isfinite(lr))
        return miles_error(MILES_EINVAL, "adamw: learning rate %g is invalid", (double)lr);
    float *P, *G;
    size_t n;
    MILES_TRY(miles_dist_model_block(z->model, 0, &P, &n));
    MILES_TRY(miles_dist_model_block(z->model, 1, &G, &n));
    const MilesDistOps *ops = z->dist->ops;
    const size_t k = z->hi - z->lo;
    MILES_TRY(ops->reduce_scatter_f32(z->dist, G, z->g, z->counts));
    /* global norm: this range's sum of squares in fixed blocks, then summed over ranks */
    double ss = miles_sum_squares(z->g, k);
    MILES_TRY(ops->allreduce(z->dist, &ss, 1, MILES_DIST_F64, MILES_DIST_SUM));
    float total = (float)sqrt(ss);
    miles_clip_apply(z->g, k, total, max_norm);
    if (grad_norm) *grad_norm = total;

    /* miles_adamw_step's arithmetic (torch 1.13 _single_tensor_adamw) on [lo,hi) */
    ++z->t;
    float *M = z->m - z->lo, *V = z->v - z->lo, *Gs = z->g - z->lo; /* indexed by block position */
    for (int si = 0; si < z->nseg; si++) {
        const Segment sg = z->seg[si];
        MilesAdamWScalars sc;
        miles_adamw_scalars(&z->cfg, z->t, miles_adamw_group_lr(lr, sg.scale), &sc);
        const float dm = sg.decay ? sc.decay_mul : 1.0f;
        /* the vectorized update of optim.c (same bits per element as
         * miles_adamw_update, so ZeRO-1 keeps the one-process bits), in
         * chunks of 4096 as miles_adamw_step: element-wise, any split
         * gives the same bits */
        const size_t CH = 4096, len = sg.end - sg.begin, nch = (len + CH - 1) / CH;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < nch; c++) {
            const size_t i0 = sg.begin + c * CH, nc = len - c * CH < CH ? len - c * CH : CH;
            miles_adamw_update_range(P + i0, M + i0, V + i0, Gs + i0, nc, dm, &sc);
        }
    }
    MILES_TRY(ops->allgatherv_f32(z->dist, P, z->counts, z->displs));
    return MILES_OK;
}

int miles_zero1_gather(MilesZero1 *z, MilesAdamW **full) {
    MilesAdamW *o = NULL;
    int s = MILES_OK;
    if (z->rank == 0) s = miles_adamw_build(&o, z->model, &z->cfg);
    s = miles_dist_agree(z->dist, s);
    if (s != MILES_OK) { miles_adamw_free(o); return s; }
    const MilesDistOps *ops = z->dist->ops;
    const int k = z->counts[z->rank];
    s = ops->gatherv_f32(z->dist, z->m, k, o ? miles_adamw_m(o) : NULL, z->counts, z->displs, 0);
    if (s == MILES_OK) s = ops->gatherv_f32(z->dist, z->v, k, o ? miles_adamw_v(o) : NULL, z->counts, z->displs, 0);
    if (s != MILES_OK) { miles_adamw_free(o); return s; }
    if (o) {
        miles_adamw_set_steps(o, z->t);
        *full = o;
    }
    return MILES_OK;
}

int miles_zero1_scatter(MilesZero1 *z, MilesAdamW *full) {
    const MilesDistOps *ops = z->dist->ops;
    const int k = z->counts[z->rank];
    int64_t t = full ? miles_adamw_steps(full) : 0;
    MILES_TRY(ops->scatterv_f32(z->dist, full ? miles_adamw_m(full) : NULL, z->counts, z->displs, z->m, k, 0));
    MILES_TRY(ops->scatterv_f32(z->dist, full ? miles_adamw_v(full) : NULL, z->counts, z->displs, z->v, k, 0));
    MILES_TRY(ops->bcast(z->dist, &t, sizeof t, 0));
    z->t = t;
    return MILES_OK;
}
