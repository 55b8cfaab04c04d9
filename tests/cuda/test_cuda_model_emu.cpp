/*
 * test_cuda_model_emu.cpp — kernels/model_cuda.cu's host logic, run WITHOUT
 * a GPU: model_cuda.cu is compiled with -DMILES_CUDA_HOST_EMULATION (see
 * kernels/cuda_emu.h) and every *_cuda op is implemented with the CPU
 * reference op of the same name (tests/cuda/cuda_emu_ops.cpp) (the kernels' semantics as documented in
 * kernels/cuda_ops.h).  The GPU driver then must reproduce the CPU model
 * BITWISE: it calls the same ops in the same order on the same data.  What it
 * checks is the driver itself (arena and scratch layouts and their growth,
 * the batch packing and the per-id embedding token lists, the backward buffer
 * rotation, the loss composition, dropout keys, AdamW plumbing and decay
 * mask, clipping, the fp16 loss-scaler flow with a skipped step, download /
 * upload, error paths, no leaks, no read of unwritten memory: emulated
 * allocations are filled with NaN).  It says nothing about the kernels:
 * tests/cuda/test_cuda_ops.cu and test_cuda_model.cu check those on a GPU.
 *
 * Checks (max errors printed): forward/grads of the 6 golden fixtures (eval,
 * train with the preset dropouts, train p=0) vs the CPU: 0 (bitwise); 20
 * AdamW steps with dropout, clipping, T alternating 16/12: weights vs the CPU
 * <= 1e-6 (the CPU's clipping norm is an OpenMP reduction: its order depends
 * on the thread count), losses likewise; fp16 mode (loss scale 65536 is a
 * power of two: scaling is exact) follows the same trajectory; an injected
 * Inf skips the step and halves the scale; emulated memory is all freed.
 */
#include "cuda_emu.h"

extern "C" {
#include "miles.h"
#include "../golden_config.h"
#include "model_internal.h"
}
#include "model_cuda.h"
#include "model_fixture.h" /* MUST, max_abs_diff, Fixture, load_fixture, cpu_model */

#include <math.h>
#include <string>
#include <vector>

/* --------------------------------------------------------------- tests */

static int g_fail = 0, g_checks = 0;

static void report(const char *name, double err, double tol) {
    int ok = err <= tol;
    g_checks++;
    if (!ok) g_fail++;
    printf("%-4s %-62s max_err %.3e  tol %.1e\n", ok ? "ok" : "FAIL", name, err, tol);
}
static void check_true(const char *name, int cond, const char *detail) {
    g_checks++;
    if (!cond) g_fail++;
    printf("%-4s %-62s %s\n", cond ? "ok" : "FAIL", name, detail);
}

static const char *const FIXTURES[] = {GOLDEN_FIXTURES};

/* forward on both + (optionally) backward; returns the max abs difference */
static double fwd_bwd_diff(MilesModel *m, MilesCudaModel *cm, const MilesBatch *b, int training, int backward) {
    const int B = b->B, T = b->T, H = m->cfg.hidden_size;
    std::vector<float> cl(B * 2), cv(B), gl(B * 2), gv(B), gp((size_t)B * H), gh((size_t)B * T * H);
    float closs, gloss;
    MUST(miles_model_forward(m, b, training, cl.data(), cv.data(), &closs));
    MUST(miles_cuda_model_forward(cm, b, training, gl.data(), gv.data(), &gloss));
    MUST(miles_cuda_model_download_pooled(cm, gp.data()));
    MUST(miles_cuda_model_download_last_hidden(cm, gh.data()));
    double e = max_err(max_err(max_abs_diff(cl.data(), gl.data(), B * 2), max_abs_diff(cv.data(), gv.data(), B)),
                    max_err(fabs((double)closs - gloss),
                         max_err(max_abs_diff(gp.data(), miles_model_pooled(m), (size_t)B * H),
                              max_abs_diff(gh.data(), miles_model_last_hidden(m), (size_t)B * T * H))));
    if (backward) {
        miles_model_zero_grad(m);
        MUST(miles_model_backward(m, 1.0f));
        MUST(miles_cuda_model_zero_grad(cm));
        MUST(miles_cuda_model_backward(cm, 1.0f));
        std::vector<float> g(m->nparams);
        MUST(miles_cuda_model_download_grads(cm, g.data()));
        e = max_err(e, max_abs_diff(g.data(), m->grads, m->nparams));
    }
    return e;
}

static void test_fixture(Fixture *f) {
    char name[200];
    const char *base = strrchr(f->path, '/') + 1;
    MilesConfig c = fixture_config(f, 0);
    MilesModel *m = cpu_model(f, &c, 3);
    MilesCudaModel *cm = NULL;
    MUST(miles_cuda_model_build(&cm, m, MILES_CUDA_PREC_FP32));
    miles_cuda_model_set_dropout_key(cm, 1234, 3);
    double e = fwd_bwd_diff(m, cm, &f->cut, 0, 0); /* small first: the arena grows below */
    e = max_err(e, fwd_bwd_diff(m, cm, &f->batch, 0, 0));
    snprintf(name, sizeof name, "%s eval (T 12 then 16)", base);
    report(name, e, 0.0);
    e = fwd_bwd_diff(m, cm, &f->batch, 1, 1);
    e = max_err(e, fwd_bwd_diff(m, cm, &f->cut, 1, 1));
    snprintf(name, sizeof name, "%s train+dropout fwd+grads", base);
    report(name, e, 0.0);
    miles_cuda_model_free(cm);
    miles_model_free(m);
    c = fixture_config(f, 1);
    m = cpu_model(f, &c, 3);
    MUST(miles_cuda_model_build(&cm, m, MILES_CUDA_PREC_FP32));
    e = fwd_bwd_diff(m, cm, &f->batch, 1, 1);
    snprintf(name, sizeof name, "%s train p=0 fwd+grads", base);
    report(name, e, 0.0);
    miles_cuda_model_free(cm);
    miles_model_free(m);
}

/* 20 steps on both; compare losses, norms and the final weights and moments */
static void test_steps(Fixture *f, int prec, int decay_all) {
    MilesConfig c = fixture_config(f, 0);
    MilesModel *m = cpu_model(f, &c, 3), *m0 = cpu_model(f, &c, 3);
    MilesCudaModel *cm = NULL;
    MUST(miles_cuda_model_build(&cm, m0, prec));
    MilesAdamWConfig oc = {f->optim[0], f->optim[1], f->optim[2], f->optim[3], f->optim[4], decay_all, 0.0f, 0.0f};
    MilesAdamW *o = NULL;
    MUST(miles_adamw_build(&o, m, &oc));
    double el = 0, en = 0, lsum = 0;
    int skipped = 0;
    float last_norm = 0;
    for (int s = 0; s < 20; s++) {
        const MilesBatch *b = (s & 1) ? &f->cut : &f->batch;
        float lr = (float)(f->optim[0] * miles_lr_lambda(MILES_SCHED_COSINE, s, 2, 20));
        float lc, lg, nc, ng;
        miles_model_set_dropout_key(m, 77, s);
        miles_cuda_model_set_dropout_key(cm, 77, s);
        miles_model_zero_grad(m);
        MUST(miles_cuda_model_zero_grad(cm));
        MUST(miles_model_forward(m, b, 1, NULL, NULL, &lc));
        MUST(miles_cuda_model_forward(cm, b, 1, NULL, NULL, NULL));
        MUST(miles_cuda_model_last_loss(cm, &lg));
        MUST(miles_cuda_model_add_loss(cm, 2.0f)); /* the deferred sum (read below) */
        lsum += (double)(lg / 2.0f);
        MUST(miles_model_backward(m, 1.0f));
        MUST(miles_cuda_model_backward(cm, 1.0f));
        nc = miles_clip_grad_norm(m, f->optim[5]);
        MUST(miles_cuda_model_clip_grad_norm(cm, f->optim[5], &ng));
        MUST(miles_adamw_step(o, lr));
        int sk = 0;
        MUST(miles_cuda_model_adamw_step(cm, lr, &oc, &sk));
        skipped += sk;
        last_norm = ng;
        el = max_err(el, fabs((double)lc - lg) / fabs(lc));
        en = max_err(en, fabs((double)nc - ng) / fabs(nc));
    }
    std::vector<float> mv(m->nparams), vv(m->nparams);
    int64_t t = 0;
    MUST(miles_cuda_model_get_adamw_state(cm, mv.data(), vv.data(), &t));
    MilesModel *back = cpu_model(f, &c, 3);
    MUST(miles_cuda_model_download_params(cm, back));
    double ew = max_abs_diff(back->params, m->params, m->nparams);
    double em = max_err(max_abs_diff(mv.data(), miles_adamw_m(o), m->nparams),
                     max_abs_diff(vv.data(), miles_adamw_v(o), m->nparams));
    char name[200];
    const char *p = miles_cuda_precision_name(prec);
    snprintf(name, sizeof name, "%s 20 steps%s: loss / norm rel err", p, decay_all ? " decay_all" : "");
    report(name, fmax(el, en), 1e-6);
    snprintf(name, sizeof name, "%s 20 steps%s: weights, moments abs err", p, decay_all ? " decay_all" : "");
    report(name, fmax(ew, em), 1e-6);
    char d[120];
    snprintf(d, sizeof d, "t %lld, %d skipped", (long long)t, skipped);
    check_true("step count 20, none skipped", t == 20 && skipped == 0, d);
    /* the trainer's deferred statistics: the same loss bits summed on the
     * device, the last norm, the counters */
    MilesCudaStats cs;
    MUST(miles_cuda_model_read_stats(cm, &cs));
    snprintf(d, sizeof d, "sum %.17g vs %.17g, norm %g vs %g, steps %lld, skipped %lld", cs.loss_sum, lsum,
             cs.grad_norm, last_norm, (long long)cs.steps, (long long)cs.skipped);
    check_true("read_stats: loss sum, last norm, counters", cs.loss_sum == lsum && cs.grad_norm == last_norm &&
               cs.steps == 20 && cs.skipped == 0 && cs.loss_scale == miles_cuda_model_loss_scale(cm), d);
    MUST(miles_cuda_model_read_stats(cm, &cs));
    check_true("read_stats: the sum restarts after a read", cs.loss_sum == 0.0, "");
    miles_adamw_free(o);
    miles_model_free(back);
    miles_model_free(m);
    miles_model_free(m0);
    miles_cuda_model_free(cm);
}

static void test_scaler(Fixture *f) {
    MilesConfig c = fixture_config(f, 0);
    MilesModel *m = cpu_model(f, &c, 3);
    MilesCudaModel *cm = NULL;
    MUST(miles_cuda_model_build(&cm, m, MILES_CUDA_PREC_FP16));
    MUST(miles_cuda_model_set_loss_scaler(cm, 65536.0f, 2.0f, 0.5f, 3));
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0.0f, 0.0f};
    const size_t n = miles_cuda_model_num_params(cm);
    std::vector<float> before(n);
    const float expect[8] = {65536, 65536, 131072, 65536, 65536, 65536, 131072, 131072};
    int ok = 1, inj = 0;
    char d[200] = "";
    for (int s = 0; s < 8; s++) {
        MUST(miles_cuda_model_zero_grad(cm));
        MUST(miles_cuda_model_forward(cm, &f->batch, 1, NULL, NULL, NULL));
        MUST(miles_cuda_model_backward(cm, 1.0f));
        if (s == 3) {
            miles_cuda_model_device_grads(cm)[n / 3] = -INFINITY;
            memcpy(before.data(), miles_cuda_model_device_params(cm), n * sizeof(float));
        }
        int sk = 0;
        int64_t t0 = miles_cuda_model_adamw_steps(cm);
        MUST(miles_cuda_model_adamw_step(cm, 1e-3f, &oc, &sk));
        if (s == 3)
            inj = sk && !memcmp(before.data(), miles_cuda_model_device_params(cm), n * sizeof(float)) &&
                  miles_cuda_model_adamw_steps(cm) == t0;
        else if (sk || miles_cuda_model_adamw_steps(cm) != t0 + 1)
            ok = 0;
        if (miles_cuda_model_loss_scale(cm) != expect[s]) ok = 0;
        snprintf(d + strlen(d), sizeof d - strlen(d), "%g ", miles_cuda_model_loss_scale(cm));
    }
    check_true("fp16 injected -Inf: step skipped, weights and t unchanged", inj, "");
    check_true("fp16 scale sequence (interval 3, x2 / x0.5)", ok, d);
    MilesCudaStats cs;
    MUST(miles_cuda_model_read_stats(cm, &cs));
    snprintf(d, sizeof d, "steps %lld, skipped %lld, scale %g", (long long)cs.steps, (long long)cs.skipped,
             cs.loss_scale);
    check_true("read_stats after the fp16 run: 7 steps, 1 skipped, scale", cs.steps == 7 && cs.skipped == 1 &&
               cs.loss_scale == expect[7], d);
    MUST(miles_cuda_model_forward(cm, &f->batch, 1, NULL, NULL, NULL));
    check_true("backward on unscaled grads refused", miles_cuda_model_backward(cm, 1.0f) == MILES_EINVAL,
               miles_last_error());
    /* errors: same status and message as the CPU */
    std::vector<float> feats = f->feats;
    feats[3] = NAN;
    MilesBatch b = f->batch;
    b.features = feats.data();
    int sc = miles_model_forward(m, &b, 0, NULL, NULL, NULL);
    std::string cmsg = miles_last_error();
    int sg = miles_cuda_model_forward(cm, &b, 0, NULL, NULL, NULL);
    check_true("NaN feature: same status and message as the CPU",
               sc == MILES_ENAN && sg == sc && cmsg == miles_last_error(), miles_last_error());
    check_true("backward after a failed forward refused", miles_cuda_model_backward(cm, 1.0f) == MILES_EINVAL,
               miles_last_error());
    MilesConfig c2 = c;
    c2.num_hidden_layers += 1;
    MilesModel *m2 = NULL;
    MUST(miles_model_build(&m2, &c2));
    check_true("download into a different model refused",
               miles_cuda_model_download_params(cm, m2) == MILES_ESHAPE, miles_last_error());
    miles_model_free(m2);
    miles_cuda_model_free(cm);
    miles_model_free(m);
}

/* Explanations' hooks: a forward from given word vectors and the backward to
 * them (and to the features), against the CPU's forward_embeds /
 * backward_from_outputs / input_grads. */
static void test_input_grads(Fixture *f) {
    MilesConfig c = fixture_config(f, 0);
    MilesModel *m = cpu_model(f, &c, 3);
    MilesCudaModel *cm = NULL;
    MUST(miles_cuda_model_build(&cm, m, MILES_CUDA_PREC_FP32));
    MilesBatch b = f->batch;
    b.labels = NULL; /* none needed */
    b.velocity = NULL;
    const int B = b.B, T = b.T, H = c.hidden_size, F = c.num_features;
    const size_t N = (size_t)B * T;
    std::vector<float> words(N * H), lc(2 * B), lg(2 * B), vc(B), vg(B);
    const float *wte = NULL;
    MilesTensorInfo ti;
    MUST(miles_model_tensor(m, miles_model_find_tensor(m, "bert.embeddings.word_embeddings.weight"), &ti));
    wte = ti.data;
    for (size_t i = 0; i < N; i++) /* a path point: 0.375 of each token's vector */
        for (int h = 0; h < H; h++) words[i * H + h] = 0.375f * wte[(size_t)b.input_ids[i] * H + h];
    MUST(miles_model_forward_embeds(m, &b, words.data(), 0, lc.data(), vc.data(), NULL));
    MUST(miles_cuda_model_forward_embeds(cm, &b, words.data(), lg.data(), vg.data()));
    double ef = max_err(max_abs_diff(lc.data(), lg.data(), 2 * B), max_abs_diff(vc.data(), vg.data(), B));
    std::vector<float> dl(2 * B), dv(B), dwc(N * H), dwg(N * H), dfc((size_t)B * F), dfg((size_t)B * F);
    for (int i = 0; i < 2 * B; i++) dl[i] = (i & 1) ? 0.75f : -0.5f;
    for (int i = 0; i < B; i++) dv[i] = 0.25f * (float)(i + 1);
    MUST(miles_model_backward_from_outputs(m, dl.data(), dv.data(), 0));
    MUST(miles_model_input_grads(m, dwc.data(), dfc.data()));
    MUST(miles_cuda_model_backward_inputs(cm, dl.data(), dv.data(), dwg.data(), dfg.data()));
    double eg = max_err(max_abs_diff(dwc.data(), dwg.data(), N * H), max_abs_diff(dfc.data(), dfg.data(), (size_t)B * F));
    char name[200];
    snprintf(name, sizeof name, "%s forward from given word vectors", f->path);
    report(name, ef, 1e-6);
    snprintf(name, sizeof name, "%s backward to word vectors and features", f->path);
    report(name, eg, 1e-6);
    double mag = 0;
    for (size_t i = 0; i < (size_t)B * F; i++) mag = max_err(mag, fabs(dfc[i]));
    check_true("feature gradients are not all zero", mag > 0, "");
    miles_cuda_model_free(cm);
    miles_model_free(m);
}

int main(void) {
    printf("host emulation of kernels/model_cuda.cu (CPU ops in place of the kernels)\n");
    for (int i = 0; i < 6; i++) {
        Fixture f;
        load_fixture(&f, FIXTURES[i]);
        test_fixture(&f);
        if (i == 0 || i == 5) {
            test_steps(&f, MILES_CUDA_PREC_FP32, 0);
            test_steps(&f, MILES_CUDA_PREC_FP16, 0);
            test_steps(&f, MILES_CUDA_PREC_FP32, 1);
        }
        if (i == 0) test_scaler(&f);
        test_input_grads(&f);
        miles_safetensors_close(f.st);
    }
    char d[64];
    snprintf(d, sizeof d, "%ld live", g_emu_live_allocs);
    check_true("every emulated allocation freed", g_emu_live_allocs == 0, d);
    printf("%d checks, %d failed\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
