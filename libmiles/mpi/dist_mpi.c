/*
 * dist_mpi.c — libmiles-mpi: the MPI transport of MilesDist (dist_internal.h)
 * and miles_mpi_init (miles_mpi.h).  Built into its own library: libmiles has
 * no MPI.  Only the public API of libmiles is used here (it links against
 * libmiles.so, whose internals are hidden).
 *
 * Errors: the communicator uses MPI_ERRORS_RETURN, so a failed collective (a
 * peer died, the network broke) becomes a MILES_EIO naming the call and the
 * rank instead of an abort inside MPI; the caller returns it and the tool ends
 * the job with miles_dist_abort().  mpirun itself also reports a rank that
 * died ("mpirun noticed that process rank 1 ... exited on signal 9").
 */
#include "miles_mpi.h"
#include "dist_internal.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    MPI_Comm comm;
    int owns_mpi; /* miles_mpi_init called MPI_Init_thread */
} MpiState;

static MPI_Comm comm_of(const MilesDist *d) { return ((const MpiState *)d->impl)->comm; }

static int mpi_fail(const MilesDist *d, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = snprintf(msg, sizeof msg, "MPI error %d", rc);
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING] = 0;
    return miles_set_error(MILES_EIO, "rank %d of %d: %s failed: %s (did another rank die?)", d->rank, d->size,
                           what, msg);
}
#define MPI_CHECK(d, call, what) do { int _rc = (call); if (_rc != MPI_SUCCESS) return mpi_fail((d), _rc, (what)); } while (0)

static int t_allreduce(MilesDist *d, void *buf, size_t n, int type, int op) {
    MPI_Datatype dt = type == MILES_DIST_F32 ? MPI_FLOAT : type == MILES_DIST_F64 ? MPI_DOUBLE : MPI_INT32_T;
    size_t esz = type == MILES_DIST_F32 ? 4 : type == MILES_DIST_F64 ? 8 : 4;
    char *p = buf;
    for (size_t i = 0; i < n; i += INT_MAX) {
        int c = (int)(n - i < (size_t)INT_MAX ? n - i : (size_t)INT_MAX);
        MPI_CHECK(d, MPI_Allreduce(MPI_IN_PLACE, p + i * esz, c, dt, op == MILES_DIST_MIN ? MPI_MIN : MPI_SUM,
                                   comm_of(d)), "MPI_Allreduce");
    }
    return MILES_OK;
}

static int t_bcast(MilesDist *d, void *buf, size_t bytes, int root) {
    char *p = buf;
    for (size_t i = 0; i < bytes; i += INT_MAX) {
        int c = (int)(bytes - i < (size_t)INT_MAX ? bytes - i : (size_t)INT_MAX);
        MPI_CHECK(d, MPI_Bcast(p + i, c, MPI_BYTE, root, comm_of(d)), "MPI_Bcast");
    }
    return MILES_OK;
}

static int t_barrier(MilesDist *d) {
    MPI_CHECK(d, MPI_Barrier(comm_of(d)), "MPI_Barrier");
    return MILES_OK;
}

static int t_reduce_scatter(MilesDist *d, const float *send, float *recv, const int *counts) {
    MPI_CHECK(d, MPI_Reduce_scatter(send, recv, counts, MPI_FLOAT, MPI_SUM, comm_of(d)), "MPI_Reduce_scatter (ZeRO-1)");
    return MILES_OK;
}

static int t_allgatherv(MilesDist *d, float *buf, const int *counts, const int *displs) {
    MPI_CHECK(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT, comm_of(d)),
              "MPI_Allgatherv (ZeRO-1 parameters)");
    return MILES_OK;
}

static int t_gatherv(MilesDist *d, const float *send, int count, float *recv, const int *counts, const int *displs,
                     int root) {
    MPI_CHECK(d, MPI_Gatherv(send, count, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, root, comm_of(d)),
              "MPI_Gatherv (ZeRO-1 moments)");
    return MILES_OK;
}

static int t_scatterv(MilesDist *d, const float *send, const int *counts, const int *displs, float *recv, int count,
                      int root) {
    MPI_CHECK(d, MPI_Scatterv(send, counts, displs, MPI_FLOAT, recv, count, MPI_FLOAT, root, comm_of(d)),
              "MPI_Scatterv (ZeRO-1 moments)");
    return MILES_OK;
}

static void t_abort(MilesDist *d, int code) { MPI_Abort(comm_of(d), code); }

static void t_finalize(MilesDist *d) {
    MpiState *m = d->impl;
    if (!m) return;
    if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
    int fin = 0;
    MPI_Finalized(&fin);
    if (m->owns_mpi && !fin) MPI_Finalize();
    free(m);
    d->impl = NULL;
}

static const MilesDistOps mpi_ops = {
    .allreduce = t_allreduce,
    .bcast = t_bcast,
    .barrier = t_barrier,
    .reduce_scatter_f32 = t_reduce_scatter,
    .allgatherv_f32 = t_allgatherv,
    .gatherv_f32 = t_gatherv,
    .scatterv_f32 = t_scatterv,
    .abort = t_abort,
    .finalize = t_finalize,
};

int miles_mpi_init(MilesDist **out, int *argc, char ***argv) {
    if (!out) return miles_set_error(MILES_EINVAL, "miles_mpi_init: out is NULL");
    *out = NULL;
    int launched = miles_dist_launched_size(), inited = 0;
    MPI_Initialized(&inited);
    if (!launched && !inited) return miles_dist_init(out, argc, argv); /* started by hand: one process */
    MilesDist *d = calloc(1, sizeof *d);
    MpiState *m = calloc(1, sizeof *m);
    if (!d || !m) { free(d); free(m); return miles_set_error(MILES_ENOMEM, "out of memory"); }
    m->comm = MPI_COMM_NULL;
    d->ops = &mpi_ops;
    d->impl = m;
    d->size = d->local_size = 1;
    if (!inited) {
        int provided = 0;
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            free(m);
            free(d);
            return miles_set_error(MILES_EIO, "MPI_Init_thread failed (error %d); is the MPI runtime installed?", rc);
        }
        m->owns_mpi = 1;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(m->comm, &d->rank);
    if (rc == MPI_SUCCESS) rc = MPI_Comm_size(m->comm, &d->size);
    MPI_Comm node = MPI_COMM_NULL;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(m->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
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
        int s = miles_set_error(MILES_EINVAL, "the launcher started %d processes but MPI sees %d; with Slurm use "
                                              "srun --mpi=pmix (see docs/distributed.md)", launched, d->size);
        miles_dist_finalize(d);
        return s;
    }
    *out = d;
    return MILES_OK;
}
