/*
 * dist.c — synchronous data parallelism over MPI (docs/distributed.md).
 *
 * The public half is a thin, error-returning layer over MPI (init, rank/size,
 * in-place all-reduce, broadcast, status agreement, abort).  The trainer half
 * (train_internal.h) moves the model between ranks: broadcast of parameters,
 * AdamW moments and the training state from rank 0, the gradient all-reduce,
 * a thread-count-independent gradient-norm clip and ZeRO-1 sharded AdamW.
 *
 * Built without MILES_HAVE_MPI, every handle has one rank and every collective
 * is a no-op, so the trainer has one code path.
 *
 * Errors: the communicator uses MPI_ERRORS_RETURN, so a failed collective (a
 * peer died, the network broke) becomes a MILES_EIO naming the call and the
 * rank instead of an abort inside MPI; the caller then returns it and the tool
 * ends the job with miles_dist_abort().  mpirun itself also reports a rank that
 * died ("mpirun noticed that process rank 1 ... exited on signal 9").
 */
#include "internal.h"
#include "train_internal.h"

#include <limits.h>
#include <math.h>

#ifdef MILES_HAVE_MPI
#include <mpi.h>
#endif

struct MilesDist {
    int rank, size, local_rank, local_size;
    int owns_mpi; /* miles_dist_init called MPI_Init_thread */
#ifdef MILES_HAVE_MPI
    int use_mpi;  /* 0: a 1-rank handle that never touches MPI */
    MPI_Comm comm;
#endif
};

int miles_dist_available(void) {
#ifdef MILES_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

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

static MilesDist *single(void) {
    MilesDist *d = miles_calloc(1, sizeof *d);
    if (d) {
        d->size = d->local_size = 1;
    }
    return d;
}

#ifdef MILES_HAVE_MPI
static int mpi_fail(const MilesDist *d, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = 0;
    return miles_error(MILES_EIO, "rank %d of %d: %s failed: %s (did another rank die?)", d->rank, d->size, what,
                       msg);
}
#define MPI_CHECK(d, call, what) do { int _rc = (call); if (_rc != MPI_SUCCESS) return mpi_fail((d), _rc, (what)); } while (0)
#endif

int miles_dist_init(MilesDist **out, int *argc, char ***argv) {
    if (!out) return miles_error(MILES_EINVAL, "miles_dist_init: out is NULL");
    *out = NULL;
    int launched = miles_dist_launched_size();
#ifdef MILES_HAVE_MPI
    int inited = 0;
    MPI_Initialized(&inited);
    if (!launched && !inited) {
        *out = single();
        return *out ? MILES_OK : MILES_ENOMEM;
    }
    MilesDist *d = miles_calloc(1, sizeof *d);
    if (!d) return MILES_ENOMEM;
    d->use_mpi = 1;
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            free(d);
            return miles_error(MILES_EIO, "MPI_Init_thread failed (error %d); is the MPI runtime installed?", rc);
        }
        d->owns_mpi = 1;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(d->comm, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(d->comm, &d->size);
    MPI_Comm node = MPI_COMM_NULL;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(node, &d->local_rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(node, &d->local_size);
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
    if (rc != MPI_SUCCESS) {
        int s = mpi_fail(d, rc, "setting up the communicator");
        miles_dist_finalize(d);
        return s;
    }
    if (launched > 1 && d->size != launched) {
        /* e.g. srun --mpi=none: N copies that each think they are alone would
         * all train and write the same checkpoints */
        int s = miles_error(MILES_EINVAL, "the launcher started %d processes but MPI sees %d; with Slurm use "
                                          "srun --mpi=pmix (see docs/distributed.md)", launched, d->size);
        miles_dist_finalize(d);
        return s;
    }
    *out = d;
    return MILES_OK;
#else
    (void)argc;
    (void)argv;
    if (launched > 1)
        return miles_error(MILES_EUNSUPPORTED,
                           "started as one of %d MPI ranks, but this libmiles was built without MPI: "
                           "install libopenmpi-dev and rebuild (see docs/distributed.md)", launched);
    *out = single();
    return *out ? MILES_OK : MILES_ENOMEM;
#endif
}

void miles_dist_finalize(MilesDist *d) {
    if (!d) return;
#ifdef MILES_HAVE_MPI
    if (d->use_mpi) {
        if (d->comm != MPI_COMM_NULL && d->comm != 0) MPI_Comm_free(&d->comm);
        int fin = 0;
        MPI_Finalized(&fin);
        if (d->owns_mpi && !fin) MPI_Finalize();
    }
#endif
    free(d);
}

int miles_dist_rank(const MilesDist *d) { return d ? d->rank : 0; }
int miles_dist_size(const MilesDist *d) { return d ? d->size : 1; }
int miles_dist_local_rank(const MilesDist *d) { return d ? d->local_rank : 0; }
int miles_dist_local_size(const MilesDist *d) { return d ? d->local_size : 1; }

#ifdef MILES_HAVE_MPI
#define ACTIVE(d) ((d) && (d)->use_mpi && (d)->size > 1)
#else
#define ACTIVE(d) 0
#endif

int miles_dist_allreduce_f32(MilesDist *d, float *buf, size_t n) {
    if (!ACTIVE(d)) return MILES_OK;
#ifdef MILES_HAVE_MPI
    for (size_t i = 0; i < n; i += INT_MAX) {
        int c = (int)(n - i < (size_t)INT_MAX ? n - i : (size_t)INT_MAX);
        MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, buf + i, c, MPI_FLOAT, MPI_SUM, d->comm), "MPI_Allreduce");
    }
#else
    (void)buf; (void)n;
#endif
    return MILES_OK;
}

int miles_dist_allreduce_f64(MilesDist *d, double *buf, size_t n) {
    if (!ACTIVE(d)) return MILES_OK;
#ifdef MILES_HAVE_MPI
    for (size_t i = 0; i < n; i += INT_MAX) {
        int c = (int)(n - i < (size_t)INT_MAX ? n - i : (size_t)INT_MAX);
        MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, buf + i, c, MPI_DOUBLE, MPI_SUM, d->comm), "MPI_Allreduce");
    }
#else
    (void)buf; (void)n;
#endif
    return MILES_OK;
}

int miles_dist_bcast(MilesDist *d, void *buf, size_t bytes, int root) {
    if (!ACTIVE(d)) return MILES_OK;
#ifdef MILES_HAVE_MPI
    if (root < 0 || root >= d->size) return miles_error(MILES_EINVAL, "bcast: root %d out of range", root);
    char *p = buf;
    for (size_t i = 0; i < bytes; i += INT_MAX) {
        int c = (int)(bytes - i < (size_t)INT_MAX ? bytes - i : (size_t)INT_MAX);
        MPI_CHECK(d, MPI_Bcast(p + i, c, MPI_BYTE, root, d->comm), "MPI_Bcast");
    }
#else
    (void)buf; (void)bytes; (void)root;
#endif
    return MILES_OK;
}

int miles_dist_barrier(MilesDist *d) {
    if (!ACTIVE(d)) return MILES_OK;
#ifdef MILES_HAVE_MPI
    MPI_CHECK(d, MPI_Barrier(d->comm), "MPI_Barrier");
#endif
    return MILES_OK;
}

int miles_dist_agree(MilesDist *d, int status) {
    if (!ACTIVE(d)) return status;
#ifdef MILES_HAVE_MPI
    /* [first failed rank, worst status] by MIN, the number of failed ranks by SUM */
    int a[2] = {status != MILES_OK ? d->rank : INT_MAX, status};
    int nfail = status != MILES_OK;
    MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, a, 2, MPI_INT, MPI_MIN, d->comm), "MPI_Allreduce (status agreement)");
    MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, &nfail, 1, MPI_INT, MPI_SUM, d->comm), "MPI_Allreduce (status agreement)");
    if (status != MILES_OK) return status; /* keep this rank's own message */
    if (nfail > 0)
        return miles_error(a[1], "stopping: %d rank(s) failed, the first being rank %d (see its message)", nfail,
                           a[0]);
#endif
    return MILES_OK;
}

void miles_dist_abort(MilesDist *d, int code) {
#ifdef MILES_HAVE_MPI
    if (d && d->use_mpi) MPI_Abort(d->comm, code ? code : 1);
#else
    (void)d; (void)code;
#endif
}

/* ------------------------------------------------------------- trainer side */

void *miles_dist_comm(MilesDist *d) {
#ifdef MILES_HAVE_MPI
    if (ACTIVE(d)) return &d->comm;
#else
    (void)d;
#endif
    return NULL;
}

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
