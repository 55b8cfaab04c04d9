/*
 * miles_mpi.h — libmiles-mpi, the MPI transport of libmiles' data
 * parallelism (docs/distributed.md).  A separate library, so that programs
 * which do not train on several processes never link MPI:
 *
 *   cc prog.c $(pkg-config --cflags --libs miles-mpi)
 *
 * Everything else (miles_dist_rank, miles_dist_allreduce_f32, training with
 * cfg->dist, ...) is in miles.h and works on the handle this returns.
 */
#ifndef MILES_MPI_H
#define MILES_MPI_H

#include "miles.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Join the job: MPI_Init_thread (FUNNELED) when launched by an MPI launcher
 * and MPI is not yet initialized (or use the MPI the program initialized),
 * else a one-process handle without touching MPI.  MPI errors are returned
 * (MPI_ERRORS_RETURN), never fatal.  A launcher that started N processes that
 * MPI does not join into one job (srun --mpi=none): MILES_EINVAL.  Release
 * with miles_dist_finalize (MPI_Finalize if this call initialized MPI). */
MILES_API int miles_mpi_init(MilesDist **out, int *argc, char ***argv);

#ifdef __cplusplus
}
#endif
#endif
