/*
 * test_dist_logic.c — dist.c's decisions, without MPI: a simulated second
 * rank (a MilesDistOps table whose collectives combine this process's buffer
 * with values the test sets for the peer) checks how ranks agree on a
 * failure (who failed, which status, whose message), how a replica whose
 * parameters drifted is found (FNV-1a of the parameter bytes, computed here
 * independently), and which launcher variables give the job size.
 * test_dist runs the real thing with mpirun; there a failing rank is hard to
 * stage, and a mutant that counted failures wrongly passed it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"
#include "dist_internal.h"
#include "helpers.h"
#include "train_internal.h"   /* miles_dist_check_same_params */

/* ------------------------------------------------------- a simulated peer */

typedef struct {
    int32_t i32[4][4];  /* the peer's contributions to the int32 all-reduces, in call order */
    double f64[4][4];   /* ... to the double ones */
    int ni, nf;         /* all-reduces of each type done */
    uint64_t root_h;    /* what rank 0 broadcasts (8 bytes) when we are not the root */
    int calls;
} Peer;

static int peer_allreduce(MilesDist *d, void *buf, size_t n, int type, int op) {
    Peer *p = d->impl;
    p->calls++;
    assert_true(n <= 4);
    const int32_t *pi = type == MILES_DIST_I32 ? p->i32[p->ni++] : NULL;
    const double *pf = type == MILES_DIST_F64 ? p->f64[p->nf++] : NULL;
    if (!pi && !pf) fail_msg("unexpected all-reduce type %d", type);
    for (size_t i = 0; i < n; i++) {
        if (pi) {
            int32_t *b = buf;
            b[i] = op == MILES_DIST_SUM ? b[i] + pi[i] : (b[i] < pi[i] ? b[i] : pi[i]);
        } else {
            double *b = buf;
            b[i] = op == MILES_DIST_SUM ? b[i] + pf[i] : (b[i] < pf[i] ? b[i] : pf[i]);
        }
    }
    return MILES_OK;
}

static int peer_bcast(MilesDist *d, void *buf, size_t bytes, int root) {
    Peer *p = d->impl;
    p->calls++;
    if (root != d->rank) {
        assert_int_equal(bytes, sizeof p->root_h);
        memcpy(buf, &p->root_h, bytes);
    }
    return MILES_OK;
}

static const MilesDistOps PEER_OPS = {.allreduce = peer_allreduce, .bcast = peer_bcast};

static MilesDist two_ranks(int rank, Peer *p) {
    MilesDist d = {.rank = rank, .size = 2, .local_rank = rank, .local_size = 2, .ops = &PEER_OPS, .impl = p};
    return d;
}

/* ------------------------------------------------------------------ tests */

static void test_agree(void **state) {
    (void)state;
    Peer p;
    /* the peer is rank 1; its contribution to [first failed rank (MIN), worst status (MIN)] and to the count (SUM) */
    const struct { int mine, peer_status, want; const char *msg; } cases[] = {
        {MILES_OK, MILES_OK, MILES_OK, NULL},
        {MILES_OK, MILES_ENAN, MILES_ENAN, "stopping: 1 rank(s) failed, the first being rank 1 (see its message)"},
        {MILES_OK, MILES_EIO, MILES_EIO, "stopping: 1 rank(s) failed, the first being rank 1"},
        {MILES_ENAN, MILES_OK, MILES_ENAN, "my own message"},      /* a failed rank keeps its message */
        {MILES_EIO, MILES_ENAN, MILES_EIO, "my own message"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memset(&p, 0, sizeof p);
        int peer_failed = cases[i].peer_status != MILES_OK;
        p.i32[0][0] = peer_failed ? 1 : INT_MAX;   /* [first failed rank, worst status] by MIN */
        p.i32[0][1] = cases[i].peer_status;
        p.i32[1][0] = peer_failed;                 /* failed ranks by SUM */
        MilesDist d = two_ranks(0, &p);
        if (cases[i].mine != MILES_OK) miles_set_error(cases[i].mine, "my own message");
        else miles_clear_error();
        int s = miles_dist_agree(&d, cases[i].mine);
        if (s != cases[i].want)
            fail_msg("case %zu: %s, want %s (%s)", i, miles_status_name(s), miles_status_name(cases[i].want),
                     miles_last_error());
        if (cases[i].msg && !strstr(miles_last_error(), cases[i].msg))
            fail_msg("case %zu: message \"%s\" lacks \"%s\"", i, miles_last_error(), cases[i].msg);
        assert_int_equal(p.calls, 2);
    }
    /* one process: the status as it is, no collective */
    MilesDist one = {.rank = 0, .size = 1, .ops = &PEER_OPS, .impl = &p};
    p.calls = 0;
    assert_int_equal(miles_dist_agree(&one, MILES_ENAN), MILES_ENAN);
    assert_int_equal(miles_dist_agree(NULL, MILES_OK), MILES_OK);
    assert_int_equal(p.calls, 0);
}

static void test_same_params(void **state) {
    (void)state;
    MilesConfig c;
    assert_int_equal(miles_config_preset(&c, "miles", "tiny"), MILES_OK);
    MilesModel *m = NULL;
    assert_int_equal(miles_model_build(&m, &c), MILES_OK);
    assert_int_equal(miles_model_init_random(m, 5, 0.02f), MILES_OK);
    /* FNV-1a of the parameter bytes, from the standard offset basis (TEST_FNV_BASIS is another) */
    const uint64_t h = test_hash_params(0xcbf29ce484222325ull, m);
    Peer p;
    /* rank 1: rank 0's hash arrives by broadcast; the mismatches are summed */
    memset(&p, 0, sizeof p);
    p.root_h = h;
    MilesDist d = two_ranks(1, &p);
    assert_int_equal(miles_dist_check_same_params(&d, m, 40), MILES_OK);
    memset(&p, 0, sizeof p);
    p.root_h = h ^ 1;   /* rank 0 holds other parameters */
    assert_int_equal(miles_dist_check_same_params(&d, m, 40), MILES_EINTERNAL);
    assert_non_null(strstr(miles_last_error(), "step 40: the parameters of 1 rank(s) differ from rank 0's"));
    /* rank 0: equal to itself; the peer reports its mismatch through the sum */
    memset(&p, 0, sizeof p);
    d = two_ranks(0, &p);
    assert_int_equal(miles_dist_check_same_params(&d, m, 41), MILES_OK);
    memset(&p, 0, sizeof p);
    p.f64[0][0] = 1;
    assert_int_equal(miles_dist_check_same_params(&d, m, 41), MILES_EINTERNAL);
    assert_non_null(strstr(miles_last_error(), "step 41: the parameters of 1 rank(s)"));
    /* one flipped bit anywhere is a mismatch: the last byte of the last tensor */
    MilesTensorInfo ti;
    miles_model_tensor(m, miles_model_num_tensors(m) - 1, &ti);
    ((unsigned char *)ti.data)[ti.numel * sizeof(float) - 1] ^= 1;
    memset(&p, 0, sizeof p);
    p.root_h = h;
    d = two_ranks(1, &p);
    assert_int_equal(miles_dist_check_same_params(&d, m, 42), MILES_EINTERNAL);
    miles_model_free(m);
}

/* The job size from the launcher's environment (OpenMPI, MPICH/PMI, MVAPICH, srun, PMIx). */
static void test_launched_size(void **state) {
    (void)state;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                       "SLURM_STEP_NUM_TASKS", "PMIX_RANK"};
    char *saved[5];
    for (int i = 0; i < 5; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    assert_int_equal(miles_dist_launched_size(), 0);
    const struct { int var; const char *val; int want; } cases[] = {
        {0, "4", 4}, {1, "3", 3}, {2, "2", 2}, {3, "8", 8}, {3, "1", 1},
        {0, "0", 0}, {0, "-2", 0}, {0, "4x", 0}, {0, "", 0}, {0, "2147483648", 0}, {0, "2147483647", INT_MAX},
        {4, "0", 1},   /* PMIx without a size variable: one process until MPI_Init says more */
        {4, "-1", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        setenv(vars[cases[i].var], cases[i].val, 1);
        int got = miles_dist_launched_size();
        unsetenv(vars[cases[i].var]);
        if (got != cases[i].want) fail_msg("%s=%s: %d, want %d", vars[cases[i].var], cases[i].val, got, cases[i].want);
    }
    /* the first variable that holds a size wins; an unusable one is skipped */
    setenv("OMPI_COMM_WORLD_SIZE", "0", 1);
    setenv("PMI_SIZE", "3", 1);
    assert_int_equal(miles_dist_launched_size(), 3);
    setenv("OMPI_COMM_WORLD_SIZE", "junk", 1);
    setenv("PMI_SIZE", "6", 1);
    setenv("SLURM_STEP_NUM_TASKS", "9", 1);
    assert_int_equal(miles_dist_launched_size(), 6);
    /* started as one of 6 ranks, a program without MPI is refused */
    MilesDist *d = (MilesDist *)0x1;
    assert_int_equal(miles_dist_init(&d, NULL, NULL), MILES_EUNSUPPORTED);
    assert_null(d);
    assert_non_null(strstr(miles_last_error(), "started as one of 6 MPI ranks"));
    for (int i = 0; i < 5; i++) {
        if (saved[i]) setenv(vars[i], saved[i], 1);
        else unsetenv(vars[i]);
        free(saved[i]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agree),
        cmocka_unit_test(test_same_params),
        cmocka_unit_test(test_launched_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
