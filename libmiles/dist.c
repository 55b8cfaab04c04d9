/*
 * dist.c — synchronous data parallelism (docs/distributed.md), without MPI.
 *
 * The public half: the handle (rank, size, node-local rank/size) and
 * error-returning collectives (all-reduce, broadcast, status agreement,
 * abort) that call the handle's transport (dist_internal.h).  This file has
 * no transport: miles_dist_init gives one process, and every collective on a
 * one-process handle is a no-op, so the trainer has one code path.  The MPI
 * transport is libmiles-mpi (mpi/dist_mpi.c: miles_mpi_init), a separate
 * library, so that programs which do not use MPI do not link it.
 *
 * The trainer half (train_internal.h) moves the model between ranks:
 * broadcast of parameters, AdamW moments and the training state from rank 0,
 * the gradient all-reduce, a replica check; ZeRO-1 is dist_zero1.c.
 */
#include "internal.h"
#include "train_internal.h"
#include "dist_internal.h"

#include <limits.h>
#include <math.h>

static int env_int(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return -1;
    char *end;
    long x = strtol(v, &end, 10);
    return (*end || x < 0 || x > INT_MAX) ? -1 : (int)x;
}

int miles_dist_launched_size(void) {
    /* OpenMPI's mpirun; MPICH / Intel MPI (PMI); MVAPICH; srun (any --mpi plugin) */
    static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                            "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof size_vars / sizeof *size_vars; i++) {
        int n = env_int(size_vars[i]);
        if (n > 0) return n;
    }
    /* a PMIx launcher without the variables above: the size is known after MPI_Init */
    if (env_int("PMIX_RANK") >= 0) return 1;
    return 0;
}

int miles_dist_init(MilesDist **out, int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (!out) return miles_error(MILES_EINVAL, "miles_dist_init: out is NULL");
    *out = NULL;
    int launched = miles_dist_launched_size();
    if (launched > 1)
        return miles_error(MILES_EUNSUPPORTED,
                           "started as one of %d MPI ranks, but this program joins no MPI job: link libmiles-mpi "
                           "(pkg-config miles-mpi) and call miles_mpi_init (see docs/distributed.md)", launched);
    MilesDist *d = miles_calloc(1, sizeof *d);
    if (!d) return MILES_ENOMEM;
    d->size = d->local_size = 1;
    *out = d;
    return MILES_OK;
}

void miles_dist_finalize(MilesDist *d) {
    if (!d) return;
    if (d->ops) d->ops->finalize(d);
    free(d);
}

int miles_dist_rank(const MilesDist *d) { return d ? d->rank : 0; }
int miles_dist_size(const MilesDist *d) { return d ? d->size : 1; }
int miles_dist_local_rank(const MilesDist *d) { return d ? d->local_rank : 0; }
int miles_dist_local_size(const MilesDist *d) { return d ? d->local_size : 1; }

#define ACTIVE(d) ((d) && (d)->ops && (d)->size > 1)

int miles_dist_allreduce_f32(MilesDist *d, float *buf, size_t n) {
    return ACTIVE(d) ? d->ops->allreduce(d, buf, n, MILES_DIST_F32, MILES_DIST_SUM) : MILES_OK;
}

int miles_dist_allreduce_f64(MilesDist *d, double *buf, size_t n) {
    return ACTIVE(d) ? d->ops->allreduce(d, buf, n, MILES_DIST_F64, MILES_DIST_SUM) : MILES_OK;
}

int miles_dist_bcast(MilesDist *d, void *buf, size_t bytes, int root) {
    if (!ACTIVE(d)) return MILES_OK;
    if (root < 0 || root >= d->size) return miles_error(MILES_EINVAL, "bcast: root %d out of range", root);
    return d->ops->bcast(d, buf, bytes, root);
}

int miles_dist_barrier(MilesDist *d) { return ACTIVE(d) ? d->ops->barrier(d) : MILES_OK; }

int miles_dist_agree(MilesDist *d, int status) {
    if (!ACTIVE(d)) return status;
    /* [first failed rank, worst status] by MIN, the number of failed ranks by SUM */
    int32_t a[2] = {status != MILES_OK ? d->rank : INT_MAX, status};
    int32_t nfail = status != MILES_OK;
    int s = d->ops->allreduce(d, a, 2, MILES_DIST_I32, MILES_DIST_MIN);
    if (s == MILES_OK) s = d->ops->allreduce(d, &nfail, 1, MILES_DIST_I32, MILES_DIST_SUM);
    if (s != MILES_OK) return s;
    if (status != MILES_OK) return status; /* keep this rank's own message */
    if (nfail > 0)
        return miles_error(a[1], "stopping: %d rank(s) failed, the first being rank %d (see its message)", (int)nfail,
                           (int)a[0]);
    return MILES_OK;
}

void miles_dist_abort(MilesDist *d, int code) {
    if (d && d->ops) d->ops->abort(d, code ? code : 1);
}

/* ------------------------------------------------------------- trainer side */

/* Parameters and gradients are each one block in tensor order (model_internal.h
 * says so; checked here through the public API so the trainer never moves a
 * wrong range).  which: 0 parameters, 1 gradients. */
int miles_dist_model_block(const MilesModel *m, int which, float **base, size_t *n) {
    MilesTensorInfo ti;
    *base = NULL;
    *n = miles_model_num_params(m);
    MILES_TRY(miles_model_tensor(m, 0, &ti));
    float *b = which ? ti.grad : ti.data;
    size_t off = 0;
    for (int i = 0; i < miles_model_num_tensors(m); i++) {
        MILES_TRY(miles_model_tensor(m, i, &ti));
        if ((which ? ti.grad : ti.data) != b + off)
            return miles_error(MILES_EINTERNAL, "dist: %s of tensor \"%s\" are not contiguous with the others",
                               which ? "gradients" : "parameters", ti.name);
        off += ti.numel;
    }
    if (off != *n) return miles_error(MILES_EINTERNAL, "dist: tensor sizes do not add up to the parameter count");
    *base = b;
    return MILES_OK;
}

int miles_dist_sync_train(MilesDist *d, MilesModel *m, MilesAdamW *opt, MilesTrainState *st) {
    if (!ACTIVE(d)) return MILES_OK;
    float *p;
    size_t n;
    MILES_TRY(miles_dist_model_block(m, 0, &p, &n));
    MILES_TRY(miles_dist_bcast(d, p, n * sizeof(float), 0));
    if (opt) {
        int64_t t = miles_adamw_steps(opt);
        MILES_TRY(miles_dist_bcast(d, miles_adamw_m(opt), n * sizeof(float), 0));
        MILES_TRY(miles_dist_bcast(d, miles_adamw_v(opt), n * sizeof(float), 0));
        MILES_TRY(miles_dist_bcast(d, &t, sizeof t, 0));
        miles_adamw_set_steps(opt, t);
    }
    if (st) MILES_TRY(miles_dist_bcast(d, st, sizeof *st, 0));
    return MILES_OK;
}

int miles_dist_reduce_grads(MilesDist *d, MilesModel *m) {
    if (!ACTIVE(d)) return MILES_OK;
    float *g;
    size_t n;
    MILES_TRY(miles_dist_model_block(m, 1, &g, &n));
    return miles_dist_allreduce_f32(d, g, n);
}

/* FNV-1a 64 of the parameter bytes: ranks compare it at checkpoints. */
static uint64_t param_hash(const float *p, size_t n) {
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n * sizeof(float); i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

int miles_dist_check_same_params(MilesDist *d, const MilesModel *m, int64_t step) {
    if (!ACTIVE(d)) return MILES_OK;
    float *p;
    size_t n;
    MILES_TRY(miles_dist_model_block(m, 0, &p, &n));
    uint64_t h = param_hash(p, n), h0 = h;
    MILES_TRY(miles_dist_bcast(d, &h0, sizeof h0, 0));
    double nbad = h != h0;
    MILES_TRY(miles_dist_allreduce_f64(d, &nbad, 1));
    if (nbad > 0)
        return miles_error(MILES_EINTERNAL, "step %lld: the parameters of %d rank(s) differ from rank 0's "
                                            "(the gradient all-reduce was not bit-identical on every rank)",
                           (long long)step, (int)nbad);
    return MILES_OK;
}
