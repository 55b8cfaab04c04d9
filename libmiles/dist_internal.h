/*
 * dist_internal.h — the data-parallel handle and the transport it runs on.
 *
 * libmiles itself contains no MPI: a MilesDist is a rank/size plus a small
 * table of collectives (MilesDistOps).  dist.c gives one process (no table);
 * libmiles-mpi (mpi/dist_mpi.c, public header miles_mpi.h) fills the table
 * with MPI calls.  Everything above (dist.c's helpers, ZeRO-1, the trainer)
 * calls the table, so programs that do not use MPI never link it.  Not
 * installed; the MPI component is built from this tree.
 */
#ifndef MILES_DIST_INTERNAL_H
#define MILES_DIST_INTERNAL_H

#include <stddef.h>

#include "miles.h"

enum { MILES_DIST_F32 = 0, MILES_DIST_F64 = 1, MILES_DIST_I32 = 2 };
enum { MILES_DIST_SUM = 0, MILES_DIST_MIN = 1 };

/* Collectives over all ranks.  Every call returns a MILES_* status (errors
 * name the call and the rank; the transport never aborts on its own). */
typedef struct MilesDistOps {
    /* in place: buf[n] of type MILES_DIST_* reduced with op over the ranks */
    int (*allreduce)(MilesDist *d, void *buf, size_t n, int type, int op);
    int (*bcast)(MilesDist *d, void *buf, size_t bytes, int root);
    int (*barrier)(MilesDist *d);
    /* ZeRO-1: counts/displs in floats, one per rank (each < INT_MAX) */
    int (*reduce_scatter_f32)(MilesDist *d, const float *send, float *recv, const int *counts);
    int (*allgatherv_f32)(MilesDist *d, float *buf, const int *counts, const int *displs); /* in place */
    int (*gatherv_f32)(MilesDist *d, const float *send, int count, float *recv, const int *counts, const int *displs,
                       int root);
    int (*scatterv_f32)(MilesDist *d, const float *send, const int *counts, const int *displs, float *recv, int count,
                        int root);
    void (*abort)(MilesDist *d, int code);
    void (*finalize)(MilesDist *d);   /* releases impl (not d) */
} MilesDistOps;

struct MilesDist {
    int rank, size, local_rank, local_size;
    const MilesDistOps *ops;          /* NULL: one process */
    void *impl;                       /* the transport's state */
};

#endif
