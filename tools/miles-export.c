/*
 * miles-export — export a Miles checkpoint for other runtimes.
 *
 *   miles-export --checkpoint run/best.safetensors --format hf --out export/hf
 *   miles-export --checkpoint run/best.safetensors --format onnx --out export/miles.onnx
 *   miles-export --checkpoint run/best.safetensors --selftest-dump --inputs in.safetensors --out out.safetensors
 *
 * Formats and the round-trip checks against transformers / onnxruntime:
 * docs/export.md.
 */
#include "miles.h"
#include "tool_common.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-export --checkpoint FILE --format hf|onnx --out PATH [options]\n"
"       miles-export --checkpoint FILE --selftest-dump --inputs FILE --out FILE\n"
"  --checkpoint FILE   a checkpoint written by miles-train (best/last.safetensors)\n"
"  --format hf         HF directory: config.json, model.safetensors, vocab.txt,\n"
"                      tokenizer_config.json, miles_head.py (loads with transformers)\n"
"  --format onnx       one ONNX model (opset 17): inputs input_ids, attention_mask,\n"
"                      token_type_ids [B,T] int64, features [B,18] float; outputs\n"
"                      logits [B,2], viral_prob [B], velocity [B]\n"
"  --out PATH          output directory (hf) or file (onnx); written atomically\n"
"  --vocab DIR         tokenizer directory or vocab.txt (default: the checkpoint's\n"
"                      \"vocab_dir\"); its hash must match the checkpoint's\n"
"  --force             replace an existing output (a previous HF export / a file)\n"
"  --pooled-only       onnx: the last layer on the [CLS] rows alone (pooler/cls pooling;\n"
"                      same outputs, less work; as Miles' own inference engine)\n"
"  --selftest-dump     run Miles' own forward pass on --inputs (safetensors with\n"
"                      input_ids, attention_mask, [token_type_ids] as I64/I32 [B,T]\n"
"                      and features F32 [B,F]) and write logits [B,2], viral_prob [B],\n"
"                      velocity [B], pooled [B,H] (text vector) and last_hidden [B,T,H]\n"
"                      (F32) to --out (used by tests/export_roundtrip.py)\n"
"  --threads N         OpenMP/BLAS threads\n"
"  -h, --help\n");
}

/* Read an integer [B,T] input tensor, or NULL (with *present = 0) if absent. */
static int read_ids(const MilesSafetensors *st, const char *name, int required, int *B, int *T, int32_t **out) {
    *out = NULL;
    int i = miles_safetensors_find(st, name);
    if (i < 0) {
        if (!required) return 0;
        fprintf(stderr, "miles-export: inputs: tensor \"%s\" missing\n", name);
        return 1;
    }
    int nd;
    int64_t sh[8];
    size_t n;
    if (miles_safetensors_info(st, i, NULL, &nd, sh, &n) != MILES_OK || nd != 2) {
        fprintf(stderr, "miles-export: inputs: \"%s\" must be 2-D [B,T]\n", name);
        return 1;
    }
    if (*B == 0) { *B = (int)sh[0]; *T = (int)sh[1]; }
    if (sh[0] != *B || sh[1] != *T) {
        fprintf(stderr, "miles-export: inputs: \"%s\" has shape [%lld,%lld], expected [%d,%d]\n", name,
                (long long)sh[0], (long long)sh[1], *B, *T);
        return 1;
    }
    *out = malloc(n * sizeof(int32_t) + 1);
    if (!*out) { fprintf(stderr, "miles-export: out of memory\n"); return 1; }
    int s = miles_safetensors_read_i32(st, i, *out, n);
    if (s != MILES_OK) return tool_fail("miles-export", s);
    return 0;
}

static int selftest_dump(const char *ckpt, const char *inputs, const char *out) {
    MilesModel *m = NULL;
    int s = miles_checkpoint_load_model(&m, ckpt);
    if (s != MILES_OK) return tool_fail("miles-export", s);
    MilesSafetensors *st = NULL;
    s = miles_safetensors_open(&st, inputs);
    if (s != MILES_OK) { miles_model_free(m); return tool_fail("miles-export", s); }
    int B = 0, T = 0, rc = 1;
    int32_t *ids = NULL, *mask = NULL, *tt = NULL;
    float *feat = NULL, *logits = NULL, *vel = NULL, *prob = NULL;
    const int F = miles_model_config(m)->num_features;
    if (read_ids(st, "input_ids", 1, &B, &T, &ids) || read_ids(st, "attention_mask", 1, &B, &T, &mask) ||
        read_ids(st, "token_type_ids", 0, &B, &T, &tt))
        goto done;
    int fi = miles_safetensors_find(st, "features");
    int nd;
    int64_t sh[8];
    size_t n;
    if (fi < 0 || miles_safetensors_info(st, fi, NULL, &nd, sh, &n) != MILES_OK || nd != 2 || sh[0] != B ||
        sh[1] != F) {
        fprintf(stderr, "miles-export: inputs: \"features\" must be F32 [%d,%d]\n", B, F);
        goto done;
    }
    feat = malloc(n * sizeof(float));
    logits = malloc((size_t)B * 2 * sizeof(float));
    vel = malloc((size_t)B * sizeof(float));
    prob = malloc((size_t)B * sizeof(float));
    if (!feat || !logits || !vel || !prob) { fprintf(stderr, "miles-export: out of memory\n"); goto done; }
    s = miles_safetensors_read_f32(st, fi, feat, n);
    MilesBatch b = {B, T, ids, tt, mask, feat, NULL, NULL};
    if (s == MILES_OK) s = miles_model_forward(m, &b, 0, logits, vel, NULL);
    if (s != MILES_OK) { rc = tool_fail("miles-export", s); goto done; }
    for (int r = 0; r < B; r++) {
        /* softmax P(class 1), as the predictor computes it */
        float a = logits[2 * r], c = logits[2 * r + 1], mx = a > c ? a : c;
        float ea = expf(a - mx), ec = expf(c - mx);
        prob[r] = ec / (ea + ec);
    }
    MilesSafetensorsWriter *w = NULL;
    const int H = miles_model_config(m)->hidden_size;
    int64_t s2[2] = {B, 2}, s1[1] = {B}, sp[2] = {B, H}, sh3[3] = {B, T, H};
    s = miles_safetensors_writer_open(&w, out);
    if (s == MILES_OK) s = miles_safetensors_writer_add(w, "logits", MILES_DT_F32, 2, s2, logits);
    if (s == MILES_OK) s = miles_safetensors_writer_add(w, "viral_prob", MILES_DT_F32, 1, s1, prob);
    if (s == MILES_OK) s = miles_safetensors_writer_add(w, "velocity", MILES_DT_F32, 1, s1, vel);
    /* encoder outputs too, for a layer-level comparison with transformers.BertModel */
    if (s == MILES_OK) s = miles_safetensors_writer_add(w, "pooled", MILES_DT_F32, 2, sp, miles_model_pooled(m));
    if (s == MILES_OK)
        s = miles_safetensors_writer_add(w, "last_hidden", MILES_DT_F32, 3, sh3, miles_model_last_hidden(m));
    if (s == MILES_OK) s = miles_safetensors_writer_finish(w);
    else miles_safetensors_writer_abort(w);
    rc = s == MILES_OK ? 0 : tool_fail("miles-export", s);
    if (rc == 0) printf("miles-export: wrote %s (B=%d, T=%d)\n", out, B, T);
done:
    free(ids); free(mask); free(tt); free(feat); free(logits); free(vel); free(prob);
    miles_safetensors_close(st);
    miles_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    tool_init(argv);
    const char *ckpt = NULL, *format = NULL, *out = NULL, *vocab = NULL, *inputs = NULL;
    int force = 0, dump = 0, threads = 0, pooled_only = 0;
    static const struct option lo[] = {
        {"checkpoint", 1, 0, 'c'}, {"format", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"vocab", 1, 0, 'v'},
        {"force", 0, 0, 'F'}, {"selftest-dump", 0, 0, 'D'}, {"inputs", 1, 0, 'i'},
        {"threads", 1, 0, 't'}, {"pooled-only", 0, 0, 'P'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'c': ckpt = optarg; break;
        case 'f': format = optarg; break;
        case 'o': out = optarg; break;
        case 'v': vocab = optarg; break;
        case 'F': force = 1; break;
        case 'P': pooled_only = 1; break;
        case 'D': dump = 1; break;
        case 'i': inputs = optarg; break;
        case 't': if (tool_parse_int(optarg, "--threads", 1, 4096, &threads)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "miles-export: unexpected argument \"%s\"\n", argv[optind]); return 2; }
    if (!ckpt || !out) { usage(stderr); return 2; }
    /* --overwrite replaces an earlier export, never the checkpoint or the inputs it reads */
    if (tool_refuse_clobber("miles-export", "--out", out, "checkpoint", ckpt) ||
        tool_refuse_clobber("miles-export", "--out", out, "--inputs file", inputs) ||
        tool_refuse_clobber("miles-export", "--out", out, "--vocab", vocab))
        return 2;
    tool_set_threads(threads);
    if (dump) {
        if (!inputs) { fprintf(stderr, "miles-export: --selftest-dump needs --inputs FILE\n"); return 2; }
        return selftest_dump(ckpt, inputs, out);
    }
    if (!format) { fprintf(stderr, "miles-export: --format hf|onnx is required\n"); return 2; }
    MilesExportOptions opt;
    miles_export_options_default(&opt);
    opt.vocab_dir = vocab;
    opt.overwrite = force;
    opt.pooled_only = pooled_only;
    int s;
    if (!strcmp(format, "hf")) s = miles_export_hf(ckpt, out, &opt);
    else if (!strcmp(format, "onnx")) s = miles_export_onnx(ckpt, out, &opt);
    else { fprintf(stderr, "miles-export: --format must be hf or onnx, got \"%s\"\n", format); return 2; }
    if (s != MILES_OK) return tool_fail("miles-export", s);
    printf("miles-export: wrote %s (%s)\n", out, format);
    return 0;
}
