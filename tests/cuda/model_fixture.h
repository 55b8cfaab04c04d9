/*
 * model_fixture.h — what the model-level CUDA programs share: MUST (a libmiles
 * call that must succeed), max_abs_diff, and one PyTorch golden fixture
 * (tests/fixtures/golden_*.safetensors, the ones tests/test_golden.c uses)
 * loaded as a batch, its loss and optimizer settings, its configuration and
 * a CPU model with its initial weights.
 *
 * Used by tests/cuda/test_cuda_model.cu (on a GPU, in the SIMT emulator and on
 * the host-emulated kernels), tests/cuda/test_cuda_model_emu.cpp and (MUST
 * only) bench/bench_cuda_model.cu.  One translation unit per program includes
 * it (static functions).  The including file includes miles.h and
 * ../golden_config.h (extern "C") first.
 */
#ifndef MILES_MODEL_FIXTURE_H
#define MILES_MODEL_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

/* a libmiles call that must succeed: else the status and message, exit 1 */
#define MUST(expr)                                                                       \
    do {                                                                                 \
        int _s = (expr);                                                                 \
        if (_s != MILES_OK) {                                                            \
            fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #expr,           \
                    miles_status_name(_s), miles_last_error());                          \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

#ifndef MILES_FIXTURE_MUST_ONLY

/* the larger of two errors; a NaN on either side is kept (fmax drops it) */
static inline double max_err(double m, double d) { return isnan(m) || isnan(d) ? NAN : d > m ? d : m; }

static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* a fixture tensor's index and element count; exit 1 when it is missing */
static int fixture_tensor(MilesSafetensors *st, const char *name, size_t *n) {
    int i = miles_safetensors_find(st, name);
    if (i < 0) {
        fprintf(stderr, "fixture tensor %s missing\n", name);
        exit(1);
    }
    MUST(miles_safetensors_info(st, i, NULL, NULL, NULL, n));
    return i;
}

static std::vector<float> get_f32(MilesSafetensors *st, const char *name) {
    size_t n = 0;
    int i = fixture_tensor(st, name, &n);
    std::vector<float> v(n ? n : 1);
    MUST(miles_safetensors_read_f32(st, i, v.data(), n));
    v.resize(n);
    return v;
}

static std::vector<int32_t> get_i32(MilesSafetensors *st, const char *name) {
    size_t n = 0;
    int i = fixture_tensor(st, name, &n);
    std::vector<int32_t> v(n ? n : 1);
    MUST(miles_safetensors_read_i32(st, i, v.data(), n));
    v.resize(n);
    return v;
}

typedef struct {
    const char *path;
    MilesSafetensors *st;
    MilesConfig cfg; /* set by the test (fixture_config) */
    std::vector<int32_t> ids, tt, mask, labels;
    std::vector<int32_t> cids, ctt, cmask; /* the batch cut to T-4 tokens */
    std::vector<float> feats, vel;
    MilesBatch batch, cut; /* full, and cut to T-4 tokens (arena reuse) */
    MilesLossConfig loss;
    float optim[8];
} Fixture;

/* The configuration the fixture was made from (tests/golden_config.h). */
static MilesConfig fixture_config(Fixture *f, int zero_dropout) {
    std::vector<int32_t> arch = get_i32(f->st, "meta.arch"), bert = get_i32(f->st, "meta.bert");
    MilesConfig c;
    MUST(golden_config(&c, arch.data(), bert.data(), zero_dropout));
    return c;
}

static void load_fixture(Fixture *f, const char *path) {
    f->path = path;
    int s = miles_safetensors_open(&f->st, path);
    if (s != MILES_OK) {
        fprintf(stderr, "%s: %s (run from the repository root)\n", path, miles_last_error());
        exit(1);
    }
    f->ids = get_i32(f->st, "input_ids");
    f->tt = get_i32(f->st, "token_type_ids");
    f->mask = get_i32(f->st, "attention_mask");
    f->labels = get_i32(f->st, "labels");
    f->feats = get_f32(f->st, "features");
    f->vel = get_f32(f->st, "velocity_target");
    const int B = (int)f->labels.size(), T = (int)(f->ids.size() / f->labels.size()), Tc = T - 4;
    memset(&f->batch, 0, sizeof f->batch);
    f->batch.B = B;
    f->batch.T = T;
    f->batch.input_ids = f->ids.data();
    f->batch.token_type_ids = f->tt.data();
    f->batch.attention_mask = f->mask.data();
    f->batch.features = f->feats.data();
    f->batch.labels = f->labels.data();
    f->batch.velocity = f->vel.data();
    for (int r = 0; r < B; r++)
        for (int t = 0; t < Tc; t++) {
            f->cids.push_back(f->ids[r * T + t]);
            f->ctt.push_back(f->tt[r * T + t]);
            f->cmask.push_back(f->mask[r * T + t]);
        }
    f->cut = f->batch;
    f->cut.T = Tc;
    f->cut.input_ids = f->cids.data();
    f->cut.token_type_ids = f->ctt.data();
    f->cut.attention_mask = f->cmask.data();
    std::vector<float> cw = get_f32(f->st, "class_weight"), lw = get_f32(f->st, "loss_weights");
    f->loss.class_weight[0] = cw[0];
    f->loss.class_weight[1] = cw[1];
    f->loss.w_cls = lw[0];
    f->loss.w_reg = lw[1];
    std::vector<float> o = get_f32(f->st, "meta.optim");
    for (int i = 0; i < 8; i++) f->optim[i] = o[i];
}

/* CPU model (the specification) with the fixture's initial weights, its
 * loss, and dropout key 1234 on the given stream. */
static MilesModel *cpu_model(Fixture *f, const MilesConfig *c, int dropout_stream) {
    MilesModel *m = NULL;
    MUST(miles_model_build(&m, c));
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        MUST(miles_model_tensor(m, t, &ti));
        int i = miles_safetensors_find(f->st, ti.name);
        if (i < 0) {
            fprintf(stderr, "%s: no weight %s\n", f->path, ti.name);
            exit(1);
        }
        MUST(miles_safetensors_read_f32(f->st, i, ti.data, ti.numel));
    }
    miles_model_set_loss(m, &f->loss);
    miles_model_set_dropout_key(m, 1234, dropout_stream);
    return m;
}

#endif /* MILES_FIXTURE_MUST_ONLY */
#endif
