/*
 * example.c — a program linking the installed libmiles through pkg-config:
 *
 *   cc example.c $(pkg-config --cflags --libs miles) -o example && ./example
 *
 * Builds a small random "miles" model, scores two titles' worth of token ids
 * and engagement features, and takes one training step.  Every call returns a
 * status; miles_last_error() says what went wrong.
 */
#include <miles.h>
#include <stdio.h>

#define CHECK(x) do { int _s = (x); if (_s != MILES_OK) { \
    fprintf(stderr, "%s failed: %s (%s)\n", #x, miles_last_error(), miles_status_name(_s)); return 1; } } while (0)

int main(void) {
    printf("libmiles %s\n", miles_version());
    MilesConfig cfg;
    CHECK(miles_config_preset(&cfg, "miles", "tiny"));
    MilesModel *m = NULL;
    CHECK(miles_model_build(&m, &cfg));
    CHECK(miles_model_init_random(m, 42, 0.02f));
    printf("model: preset %s, %zu parameters\n", cfg.preset, miles_model_num_params(m));

    /* two examples of 6 tokens: [CLS] w w w [SEP] [PAD] */
    int32_t ids[12] = {2, 10, 11, 12, 3, 0, 2, 20, 21, 3, 0, 0};
    int32_t mask[12] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0};
    float feats[2 * MILES_NUM_FEATURES] = {0};
    for (int i = 0; i < MILES_NUM_FEATURES; i++) feats[i] = 0.1f * i, feats[MILES_NUM_FEATURES + i] = -0.1f * i;
    int32_t labels[2] = {1, 0};
    float vel[2] = {0.8f, 0.1f};
    MilesBatch b = {.B = 2, .T = 6, .input_ids = ids, .attention_mask = mask,
                    .features = feats, .labels = labels, .velocity = vel};

    float logits[4], velocity[2], loss;
    CHECK(miles_model_forward(m, &b, 0, logits, velocity, &loss));
    printf("before: loss %.5f  logits [%.4f %.4f] [%.4f %.4f]\n", loss, logits[0], logits[1], logits[2], logits[3]);

    MilesAdamWConfig oc = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
    MilesAdamW *opt = NULL;
    CHECK(miles_adamw_build(&opt, m, &oc));
    for (int step = 0; step < 5; step++) {
        miles_model_zero_grad(m);
        CHECK(miles_model_forward(m, &b, 1, NULL, NULL, &loss));
        CHECK(miles_model_backward(m, 1.0f));
        miles_clip_grad_norm(m, 1.0f);
        CHECK(miles_adamw_step(opt, 1e-3f));
    }
    CHECK(miles_model_forward(m, &b, 0, logits, velocity, &loss));
    printf("after 5 steps: loss %.5f\n", loss);

    /* errors are values, not crashes: T above max positions */
    b.T = 100000;
    int s = miles_model_forward(m, &b, 0, logits, velocity, &loss);
    printf("bad batch -> %s: %s\n", miles_status_name(s), miles_last_error());

    miles_adamw_free(opt);
    miles_model_free(m);
    return s == MILES_OK; /* the bad batch must have been refused */
}
