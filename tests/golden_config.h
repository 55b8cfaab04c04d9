/*
 * golden_config.h — the model configuration of a golden fixture
 * (tests/gen_golden.py): the preset's structure ("miles" when the fixture has
 * a numeric MLP, else "seed-notebook") at the fixture's BERT sizes and MLP
 * widths.  One definition for the CPU tests (test_golden, test_infer) and the
 * CUDA ones (test_cuda_model on a device, the emulator, the SIMT emulator),
 * so that they all build the model the fixture was made from.
 *
 *   arch (meta.arch, 12 int32): pooling, velocity activation, n_numeric,
 *        n_fusion, numeric widths [4..7], fusion widths [8..11]
 *   bert (meta.bert, 7 int32): vocab, hidden, layers, heads, intermediate,
 *        max positions, type vocab
 *
 * Returns MILES_OK or the failing call's status (miles_last_error() says why).
 * Header-only (static inline): C and C++ (nvcc, the emulators) include it.
 */
#ifndef MILES_TEST_GOLDEN_CONFIG_H
#define MILES_TEST_GOLDEN_CONFIG_H

#include <stdint.h>

#include "miles.h"

/* the six fixtures (preset x pooling), for `static const char *const X[] = {GOLDEN_FIXTURES};` */
#define GOLDEN_FIXTURES                                                                             \
    "tests/fixtures/golden_miles_pooler.safetensors", "tests/fixtures/golden_miles_cls.safetensors", \
        "tests/fixtures/golden_miles_mean.safetensors",                                             \
        "tests/fixtures/golden_seed-notebook_pooler.safetensors",                                   \
        "tests/fixtures/golden_seed-notebook_cls.safetensors",                                      \
        "tests/fixtures/golden_seed-notebook_mean.safetensors"

static inline int golden_config(MilesConfig *c, const int32_t *arch, const int32_t *bert, int zero_dropout) {
    int s = miles_config_preset(c, arch[2] > 0 ? "miles" : "seed-notebook", "tiny");
    if (s != MILES_OK) return s;
    c->vocab_size = bert[0];
    c->hidden_size = bert[1];
    c->num_hidden_layers = bert[2];
    c->num_attention_heads = bert[3];
    c->intermediate_size = bert[4];
    c->max_position_embeddings = bert[5];
    c->type_vocab_size = bert[6];
    c->pooling = arch[0];
    for (int i = 0; i < c->n_numeric; i++) c->numeric_widths[i] = arch[4 + i];
    for (int i = 0; i < c->n_fusion; i++) c->fusion_widths[i] = arch[8 + i];
    if (zero_dropout) { /* for comparisons against a dropout-free reference */
        c->hidden_dropout_prob = c->attention_probs_dropout_prob = c->text_dropout = 0.0f;
        for (int i = 0; i < MILES_MAX_MLP; i++) c->numeric_dropouts[i] = c->fusion_dropouts[i] = 0.0f;
    }
    return miles_config_validate(c);
}

#endif
