/*
 * explain.c — integrated gradients (IG) through the model's own backward.
 *
 * For one example with inputs x = (word-embedding vectors e[T,H], standardized
 * features f[F]) and a baseline x' = (e', f'), IG attributes
 *     a_i = (x_i - x'_i) * integral_0^1 d target / d x_i (x' + alpha (x - x')) d alpha
 * and, the path being straight, sum_i a_i = target(x) - target(x')
 * ("completeness") up to the quadrature error, which is reported per row.
 *
 * Every path point of every example is one row of an ordinary model batch:
 * miles_model_forward_embeds with the interpolated word vectors and features,
 * then miles_model_backward_from_outputs (input gradients only) from
 * d target / d outputs.  Rows are laid out example-major (row = b * E + k for
 * path point k) and processed in order in chunks of max_tokens / T rows, so the
 * weighted gradient sums are accumulated in a fixed order (deterministic).
 *
 * Baselines (docs/explain.md): tokens move from the [PAD] embedding (or zero)
 * to their own; [CLS], [SEP] and padding keep their embedding (attribution 0);
 * position and token-type embeddings are never interpolated.  Features move
 * from 0 (the training mean after standardization) or a given vector.
 */

#include "model_internal.h"
#include "backend_internal.h"

#include <math.h>

void miles_explain_config_default(MilesExplainConfig *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->steps = 32;
    cfg->rule = MILES_IG_GAUSS_LEGENDRE;
    cfg->target = MILES_EXPLAIN_VIRAL_PROB;
    cfg->token_baseline = MILES_BASELINE_PAD;
    cfg->pad_id = 0;
    cfg->cls_id = 101;
    cfg->sep_id = 102;
    cfg->feature_baseline = NULL;
    cfg->max_tokens = 2048;
}

void miles_explanation_free(MilesExplanation *e) {
    if (!e) return;
    free(e->tokens);
    free(e->features);
    free(e->f_input);
    free(e->f_baseline);
    free(e->completeness_error);
    free(e);
}

/* ------------------------------------------------------------ quadrature */

/* Gauss-Legendre nodes/weights on [0,1] (n >= 1), ascending: Newton on P_n
 * from the Tricomi initial guesses, in double (|error| ~ 1e-15 for n <= 4096). */
static void gauss_legendre01(int n, double *x, double *w) {
    for (int i = 0; i < n; i++) {
        double z = cos(M_PI * (i + 0.75) / (n + 0.5)), dp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p0 = 1.0, p1 = z;
            for (int k = 2; k <= n; k++) {
                double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
                p0 = p1;
                p1 = p2;
            }
            dp = n * (z * p1 - p0) / (z * z - 1.0);
            double dz = p1 / dp;
            z -= dz;
            if (fabs(dz) < 1e-16) break;
        }
        /* recompute P_n' at the converged node for the weight */
        double p0 = 1.0, p1 = z;
        for (int k = 2; k <= n; k++) {
            double p2 = ((2.0 * k - 1.0) * z * p1 - (k - 1.0) * p0) / k;
            p0 = p1;
            p1 = p2;
        }
        dp = n * (z * p1 - p0) / (z * z - 1.0);
        x[i] = 0.5 * (1.0 - z); /* z descends from near 1: alpha ascends */
        w[i] = 1.0 / ((1.0 - z * z) * dp * dp); /* 2/((1-z^2) P'^2), halved for [0,1] */
    }
}

/* Path points alpha[E] and weights wt[E] (E = evals per example).  Index 0 is
 * alpha = 0 and index E-1 is alpha = 1 in both rules (f(x') and f(x)); for
 * Gauss-Legendre those two carry weight 0. */
static int path_points(const MilesExplainConfig *cfg, double **alpha, double **wt, int *E) {
    int n = cfg->steps;
    int e = cfg->rule == MILES_IG_TRAPEZOID ? n + 1 : n + 2;
    double *a = miles_calloc((size_t)e, sizeof *a), *w = miles_calloc((size_t)e, sizeof *w);
    if (!a || !w) {
        free(a);
        free(w);
        return MILES_ENOMEM;
    }
    if (cfg->rule == MILES_IG_TRAPEZOID) {
        for (int k = 0; k <= n; k++) {
            a[k] = (double)k / n;
            w[k] = (k == 0 || k == n) ? 0.5 / n : 1.0 / n;
        }
    } else {
        gauss_legendre01(n, a + 1, w + 1);
        a[0] = 0.0;
        a[e - 1] = 1.0;
    }
    *alpha = a;
    *wt = w;
    *E = e;
    return MILES_OK;
}

/* ------------------------------------------------------------ validation */

static int check_config(const MilesModel *m, const MilesExplainConfig *cfg) {
    const MilesConfig *c = &m->cfg;
    if (cfg->steps < 1 || cfg->steps > 4096)
        return miles_error(MILES_EINVAL, "explain: steps = %d must be in [1, 4096]", cfg->steps);
    if (cfg->rule != MILES_IG_GAUSS_LEGENDRE && cfg->rule != MILES_IG_TRAPEZOID)
        return miles_error(MILES_EINVAL, "explain: unknown integration rule %d", cfg->rule);
    if (cfg->target < MILES_EXPLAIN_VIRAL_PROB || cfg->target > MILES_EXPLAIN_VELOCITY)
        return miles_error(MILES_EINVAL, "explain: unknown target %d", cfg->target);
    if (cfg->token_baseline != MILES_BASELINE_PAD && cfg->token_baseline != MILES_BASELINE_ZERO)
        return miles_error(MILES_EINVAL, "explain: unknown token baseline %d", cfg->token_baseline);
    if (cfg->token_baseline == MILES_BASELINE_PAD && (cfg->pad_id < 0 || cfg->pad_id >= c->vocab_size))
        return miles_error(MILES_ERANGE, "explain: [PAD] baseline needs pad_id in [0, %d), got %d",
                           c->vocab_size, cfg->pad_id);
    const int32_t ids[3] = {cfg->pad_id, cfg->cls_id, cfg->sep_id};
    const char *names[3] = {"pad_id", "cls_id", "sep_id"};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= c->vocab_size)
            return miles_error(MILES_ERANGE, "explain: %s = %d out of range [-1, %d)", names[i], ids[i],
                               c->vocab_size);
    if (cfg->max_tokens < 1)
        return miles_error(MILES_EINVAL, "explain: max_tokens = %d must be >= 1", cfg->max_tokens);
    if (cfg->feature_baseline)
        for (int j = 0; j < c->num_features; j++)
            if (!isfinite(cfg->feature_baseline[j]))
                return miles_error(MILES_ENAN, "explain: feature baseline %d (%s) is not finite", j,
                                   c->num_features == MILES_NUM_FEATURES ? miles_feature_names[j] : "?");
    return MILES_OK;
}

/* ------------------------------------------------------------------ IG */

typedef struct {
    int R;                      /* rows per chunk */
    int32_t *ids, *tt, *mask;   /* [R,T] */
    float *emb, *dword;         /* [R,T,H] */
    float *feat, *dfeat;        /* [R,F] */
    float *logits, *vel;        /* [R,2] [R] */
    float *dlogits, *dvel;      /* [R,2] [R] */
} Chunk;

static void chunk_free(Chunk *c) {
    free(c->ids);
    free(c->tt);
    free(c->mask);
    free(c->emb);
    free(c->dword);
    free(c->feat);
    free(c->dfeat);
    free(c->logits);
    free(c->vel);
    free(c->dlogits);
    free(c->dvel);
}

static int chunk_alloc(Chunk *c, int R, int T, int H, int F) {
    memset(c, 0, sizeof *c);
    c->R = R;
    size_t RT = (size_t)R * T;
    c->ids = miles_malloc(RT * sizeof(int32_t));
    c->tt = miles_malloc(RT * sizeof(int32_t));
    c->mask = miles_malloc(RT * sizeof(int32_t));
    c->emb = miles_malloc(RT * H * sizeof(float));
    c->dword = miles_malloc(RT * H * sizeof(float));
    c->feat = miles_malloc((size_t)R * F * sizeof(float));
    c->dfeat = miles_malloc((size_t)R * F * sizeof(float));
    c->logits = miles_malloc((size_t)R * 2 * sizeof(float));
    c->vel = miles_malloc((size_t)R * sizeof(float));
    c->dlogits = miles_malloc((size_t)R * 2 * sizeof(float));
    c->dvel = miles_malloc((size_t)R * sizeof(float));
    if (!c->ids || !c->tt || !c->mask || !c->emb || !c->dword || !c->feat || !c->dfeat || !c->logits ||
        !c->vel || !c->dlogits || !c->dvel) {
        chunk_free(c);
        return miles_error(MILES_ENOMEM, "explain: cannot allocate buffers for %d path rows of %d tokens",
                           R, T);
    }
    return MILES_OK;
}

/* Is token (b,t) held fixed on the path? */
static inline int fixed_token(const MilesBatch *b, size_t i, const MilesExplainConfig *cfg) {
    int32_t id = b->input_ids[i];
    return b->attention_mask[i] == 0 || id == cfg->cls_id || id == cfg->sep_id;
}

/* Target value and its gradient w.r.t. (logits, velocity) for one row. */
static double target_of(int target, const float *logits, float vel, float *dl, float *dv) {
    dl[0] = dl[1] = 0.0f;
    *dv = 0.0f;
    switch (target) {
    case MILES_EXPLAIN_VIRAL_PROB: {
        double z = (double)logits[1] - (double)logits[0];
        double p = 1.0 / (1.0 + exp(-z)); /* softmax(logits)[1] */
        double d = p * (1.0 - p);
        dl[0] = (float)-d;
        dl[1] = (float)d;
        return p;
    }
    case MILES_EXPLAIN_VIRAL_LOGIT:
        dl[0] = -1.0f;
        dl[1] = 1.0f;
        return (double)logits[1] - (double)logits[0];
    default:
        *dv = 1.0f;
        return vel;
    }
}

int miles_explain_ig(MilesModel *m, const MilesBatch *batch, const MilesExplainConfig *cfg_in,
                     MilesExplanation **out) {
    return miles_explain_ig_on(m, NULL, NULL, batch, cfg_in, out);
}

/* The forward and backward of a path chunk: the host model, or a backend
 * state (the CUDA model: the same arithmetic on the device). */
static int chunk_forward(MilesModel *m, const MilesBackendOps *ops, void *state, const MilesBatch *b,
                         const float *emb, float *logits, float *vel) {
    if (!ops) return miles_model_forward_embeds(m, b, emb, 0, logits, vel, NULL);
    return miles_backend_status(ops, ops->forward_embeds(state, b, emb, logits, vel));
}

static int chunk_backward(MilesModel *m, const MilesBackendOps *ops, void *state, const float *dlogits,
                          const float *dvel, float *dword, float *dfeat) {
    if (!ops) {
        MILES_TRY(miles_model_backward_from_outputs(m, dlogits, dvel, 0));
        return miles_model_input_grads(m, dword, dfeat);
    }
    return miles_backend_status(ops, ops->backward_inputs(state, dlogits, dvel, dword, dfeat));
}

static int explain_ig(MilesModel *m, const MilesBackendOps *ops, void *state, const MilesBatch *batch,
                      const MilesExplainConfig *cfg_in, MilesExplanation **out);

int miles_explain_ig_on(MilesModel *m, const MilesBackendOps *ops, void *state, const MilesBatch *batch,
                        const MilesExplainConfig *cfg_in, MilesExplanation **out) {
    /* the targets read only the pooled rows: the host model's last layer
     * on the [CLS] rows alone (the same input gradients, less work) */
    int prev = !ops && m ? miles_model_set_pooled_only(m, 1) : 0;
    int s = explain_ig(m, ops, state, batch, cfg_in, out);
    if (!ops && m) miles_model_set_pooled_only(m, prev);
    return s;
}

static int explain_ig(MilesModel *m, const MilesBackendOps *ops, void *state, const MilesBatch *batch,
                      const MilesExplainConfig *cfg_in, MilesExplanation **out) {
    if (!out) return miles_error(MILES_EINVAL, "miles_explain_ig: out is NULL");
    *out = NULL;
    if (!m) return miles_error(MILES_EINVAL, "miles_explain_ig: model is NULL");
    if (ops && (!ops->forward_embeds || !ops->backward_inputs))
        return miles_error(MILES_EUNSUPPORTED, "explanations: the %s backend has no input gradients", ops->name);
    MilesExplainConfig cfg;
    if (cfg_in) cfg = *cfg_in;
    else miles_explain_config_default(&cfg);
    MILES_TRY(check_config(m, &cfg));
    if (!batch) return miles_error(MILES_EINVAL, "miles_explain_ig: batch is NULL");
    MilesBatch xb = *batch; /* labels/targets play no part */
    xb.labels = NULL;
    xb.velocity = NULL;
    MILES_TRY(miles_model_validate_batch(m, &xb));

    const MilesConfig *c = &m->cfg;
    const int B = xb.B, T = xb.T, H = c->hidden_size, F = c->num_features;
    const size_t TH = (size_t)T * H;
    const float *wte = m->P.wte;
    const float *pad_row = cfg.token_baseline == MILES_BASELINE_PAD ? wte + (size_t)cfg.pad_id * H : NULL;

    double *alpha = NULL, *wt = NULL;
    int E = 0;
    MILES_TRY(path_points(&cfg, &alpha, &wt, &E));
    const int64_t rows = (int64_t)B * E;
    int R = cfg.max_tokens / T;
    if (R < 1) R = 1;
    if (R > rows) R = (int)rows;

    int status = MILES_OK;
    Chunk ch;
    MilesExplanation *ex = miles_calloc(1, sizeof *ex);
    double *acc_w = miles_calloc((size_t)B * TH, sizeof(double)); /* sum_k w_k dword */
    double *acc_f = miles_calloc((size_t)B * F, sizeof(double));
    float *fbase = miles_malloc((size_t)F * sizeof(float));
    int have_chunk = 0;
    if (!ex || !acc_w || !acc_f || !fbase) {
        status = miles_error(MILES_ENOMEM, "explain: cannot allocate accumulators for B=%d T=%d", B, T);
        goto done;
    }
    ex->B = B;
    ex->T = T;
    ex->F = F;
    ex->target = cfg.target;
    ex->rule = cfg.rule;
    ex->steps = cfg.steps;
    ex->evals = E;
    ex->tokens = miles_calloc((size_t)B * T, sizeof(float));
    ex->features = miles_calloc((size_t)B * F, sizeof(float));
    ex->f_input = miles_calloc((size_t)B, sizeof(double));
    ex->f_baseline = miles_calloc((size_t)B, sizeof(double));
    ex->completeness_error = miles_calloc((size_t)B, sizeof(double));
    if (!ex->tokens || !ex->features || !ex->f_input || !ex->f_baseline || !ex->completeness_error) {
        status = miles_error(MILES_ENOMEM, "explain: cannot allocate the result for B=%d T=%d", B, T);
        goto done;
    }
    for (int j = 0; j < F; j++) fbase[j] = cfg.feature_baseline ? cfg.feature_baseline[j] : 0.0f;
    status = chunk_alloc(&ch, R, T, H, F);
    if (status != MILES_OK) goto done;
    have_chunk = 1;

    for (int64_t r0 = 0; r0 < rows; r0 += R) {
        const int n = (int)(rows - r0 < R ? rows - r0 : R);
        /* build the path rows r0 .. r0+n-1 */
#pragma omp parallel for schedule(static) if ((double)n * TH > 65536.0)
        for (int i = 0; i < n; i++) {
            const int64_t r = r0 + i;
            const int b = (int)(r / E), k = (int)(r % E);
            const float a = (float)alpha[k];
            const size_t src = (size_t)b * T;
            memcpy(ch.ids + (size_t)i * T, xb.input_ids + src, T * sizeof(int32_t));
            if (xb.token_type_ids) memcpy(ch.tt + (size_t)i * T, xb.token_type_ids + src, T * sizeof(int32_t));
            else memset(ch.tt + (size_t)i * T, 0, T * sizeof(int32_t));
            memcpy(ch.mask + (size_t)i * T, xb.attention_mask + src, T * sizeof(int32_t));
            for (int t = 0; t < T; t++) {
                const float *e = wte + (size_t)xb.input_ids[src + t] * H;
                float *o = ch.emb + ((size_t)i * T + t) * H;
                if (fixed_token(&xb, src + t, &cfg)) {
                    memcpy(o, e, H * sizeof(float));
                } else if (pad_row) {
                    for (int h = 0; h < H; h++) o[h] = pad_row[h] + a * (e[h] - pad_row[h]);
                } else {
                    for (int h = 0; h < H; h++) o[h] = a * e[h];
                }
            }
            const float *fx = xb.features + (size_t)b * F;
            for (int j = 0; j < F; j++) ch.feat[(size_t)i * F + j] = fbase[j] + a * (fx[j] - fbase[j]);
        }
        MilesBatch pb;
        memset(&pb, 0, sizeof pb);
        pb.B = n;
        pb.T = T;
        pb.input_ids = ch.ids;
        pb.token_type_ids = ch.tt;
        pb.attention_mask = ch.mask;
        pb.features = ch.feat;
        status = chunk_forward(m, ops, state, &pb, ch.emb, ch.logits, ch.vel);
        if (status != MILES_OK) goto done;
        for (int i = 0; i < n; i++) {
            const int64_t r = r0 + i;
            const int b = (int)(r / E), k = (int)(r % E);
            double f = target_of(cfg.target, ch.logits + 2 * i, ch.vel[i], ch.dlogits + 2 * i, ch.dvel + i);
            if (!isfinite(f)) {
                status = miles_error(MILES_ENAN, "explain: row %d: the target is not finite at alpha %.4f", b,
                                     alpha[k]);
                goto done;
            }
            if (k == 0) ex->f_baseline[b] = f;
            if (k == E - 1) ex->f_input[b] = f;
        }
        status = chunk_backward(m, ops, state, ch.dlogits, ch.dvel, ch.dword, ch.dfeat);
        if (status != MILES_OK) goto done;
        /* acc[b] += w_k * grad, in row order for every element (fixed order) */
#pragma omp parallel for schedule(static) if ((double)n * TH > 65536.0)
        for (size_t j = 0; j < TH; j++)
            for (int i = 0; i < n; i++) {
                const int64_t r = r0 + i;
                const int b = (int)(r / E), k = (int)(r % E);
                if (wt[k] != 0.0) acc_w[(size_t)b * TH + j] += wt[k] * ch.dword[(size_t)i * TH + j];
            }
        for (int i = 0; i < n; i++) {
            const int64_t r = r0 + i;
            const int b = (int)(r / E), k = (int)(r % E);
            if (wt[k] == 0.0) continue;
            for (int j = 0; j < F; j++) acc_f[(size_t)b * F + j] += wt[k] * ch.dfeat[(size_t)i * F + j];
        }
    }

    /* attributions = (x - x') . average gradient */
    for (int b = 0; b < B; b++) {
        double total = 0.0;
        for (int t = 0; t < T; t++) {
            const size_t i = (size_t)b * T + t;
            double s = 0.0;
            if (!fixed_token(&xb, i, &cfg)) {
                const float *e = wte + (size_t)xb.input_ids[i] * H;
                const double *g = acc_w + i * H;
                for (int h = 0; h < H; h++) s += ((double)e[h] - (pad_row ? pad_row[h] : 0.0f)) * g[h];
            }
            ex->tokens[i] = (float)s;
            total += s;
        }
        for (int j = 0; j < F; j++) {
            double s = ((double)xb.features[(size_t)b * F + j] - fbase[j]) * acc_f[(size_t)b * F + j];
            ex->features[(size_t)b * F + j] = (float)s;
            total += s;
        }
        ex->completeness_error[b] = total - (ex->f_input[b] - ex->f_baseline[b]);
    }

done:
    if (have_chunk) chunk_free(&ch);
    free(alpha);
    free(wt);
    free(acc_w);
    free(acc_f);
    free(fbase);
    if (status != MILES_OK) {
        miles_explanation_free(ex);
        return status;
    }
    *out = ex;
    return MILES_OK;
}

/* ----------------------------------------------------------------- words */

void miles_explain_words_free(MilesExplainWord *words, int n_words) {
    if (!words) return;
    for (int i = 0; i < n_words; i++) free(words[i].text);
    free(words);
}

int miles_explain_words(const char *const *pieces, const float *attr, int n, MilesExplainWord **words,
                        int *n_words) {
    if (!words || !n_words) return miles_error(MILES_EINVAL, "miles_explain_words: output is NULL");
    *words = NULL;
    *n_words = 0;
    if (n < 0 || (n > 0 && (!pieces || !attr)))
        return miles_error(MILES_EINVAL, "miles_explain_words: bad arguments (n = %d)", n);
    MilesExplainWord *w = miles_calloc((size_t)(n > 0 ? n : 1), sizeof *w);
    if (!w) return MILES_ENOMEM;
    int nw = 0, open = 0; /* open: the last word may take "##" continuations */
    for (int i = 0; i < n; i++) {
        const char *p = pieces[i];
        if (!p) {
            open = 0;
            continue;
        }
        if (!isfinite(attr[i])) {
            miles_explain_words_free(w, nw);
            return miles_error(MILES_ENAN, "miles_explain_words: attribution %d is not finite", i);
        }
        int cont = open && p[0] == '#' && p[1] == '#';
        const char *txt = (p[0] == '#' && p[1] == '#' && p[2]) ? p + 2 : p;
        if (cont) {
            MilesExplainWord *x = &w[nw - 1];
            size_t a = strlen(x->text), l = strlen(txt);
            char *s = realloc(x->text, a + l + 1);
            if (!s) {
                miles_explain_words_free(w, nw);
                return miles_error(MILES_ENOMEM, "miles_explain_words: out of memory");
            }
            memcpy(s + a, txt, l + 1);
            x->text = s;
            x->attribution += attr[i];
            x->count++;
        } else {
            size_t l = strlen(txt);
            char *s = miles_malloc(l + 1);
            if (!s) {
                miles_explain_words_free(w, nw);
                return MILES_ENOMEM;
            }
            memcpy(s, txt, l + 1);
            w[nw].text = s;
            w[nw].attribution = attr[i];
            w[nw].first = i;
            w[nw].count = 1;
            nw++;
            open = 1;
        }
    }
    *words = w;
    *n_words = nw;
    return MILES_OK;
}
