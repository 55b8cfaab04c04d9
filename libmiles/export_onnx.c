/*
 * export_onnx.c — Miles checkpoint -> one ONNX model (opset 17, IR version 8).
 *
 * The graph is the inference forward of libmiles/model_forward.c written with
 * standard ONNX ops (docs/export.md lists them):
 *   embeddings  Gather(word) + Gather(type) + Gather(position, Range(0,T)) -> LayerNormalization
 *   layer       Gemm q/k/v on [B*T,H] -> Reshape [B,T,NH,hs] -> Transpose -> MatMul * 1/sqrt(hs)
 *               + (1-mask)*finfo.min -> Softmax -> * any(mask) (a row without real tokens
 *               attends to nothing, as in Miles) -> MatMul V -> Gemm out + residual -> LN ->
 *               Gemm -> exact GELU 0.5*x*(1+erf(x/sqrt2)) -> Gemm + residual -> LN
 *   pooling     pooler tanh(Gemm(h_CLS)) | h_CLS | masked mean (sum / max(count,1e-9))
 *   head        (Gemm, Relu)* numeric -> Concat -> (Gemm, Relu)* fusion -> Gemm classifier
 *               / Gemm regressor (+ Sigmoid); viral_prob = Softmax(logits)[:,1]
 * Dropout is the identity at inference and does not appear.  Weights are float
 * initializers under their checkpoint names, raw little-endian bytes
 * referenced straight from the model (no copy); the protobuf is streamed to a
 * temp file beside the target and renamed into place.
 */
#include "internal.h"
#include "train_internal.h" /* miles_ckpt_check_scaler */
#include "onnx.pb-c.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#define ONNX_OPSET 17
#define ONNX_IR 8

/* --------------------------------------------------------- graph builder */

typedef struct {
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    void **pool;                  /* every allocation, freed at the end */
    size_t n_pool, cap_pool;
    int counter;
    int oom;
} G;

static void *g_keep(G *g, void *p) {
    if (!p) { g->oom = 1; return NULL; }
    if (g->n_pool == g->cap_pool) {
        size_t nc = g->cap_pool ? g->cap_pool * 2 : 256;
        void **np = realloc(g->pool, nc * sizeof *np);
        if (!np) { free(p); g->oom = 1; return NULL; }
        g->pool = np;
        g->cap_pool = nc;
    }
    g->pool[g->n_pool++] = p;
    return p;
}
static void *g_alloc(G *g, size_t n) { return g_keep(g, calloc(1, n ? n : 1)); }
static char *g_str(G *g, const char *s) { return g_keep(g, strdup(s)); }

static void g_free(G *g) {
    for (size_t i = 0; i < g->n_pool; i++) free(g->pool[i]);
    free(g->pool);
    free(g->nodes);
    free(g->inits);
    memset(g, 0, sizeof *g);
}

static int g_push(void ***arr, size_t *n, size_t *cap, void *x) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        void **na = realloc(*arr, nc * sizeof *na);
        if (!na) return -1;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = x;
    return 0;
}

/* Add a node with n_in inputs (NULL-safe: an OOM marks g->oom) and one output,
 * named `out` or, when out is NULL, "<op>_<counter>".  Returns the node. */
static Onnx__NodeProto *g_node(G *g, const char *op, const char *out, int n_in, const char *const *in) {
    Onnx__NodeProto *nd = g_alloc(g, sizeof *nd);
    if (!nd) return NULL;
    onnx__node_proto__init(nd);
    char name[96];
    snprintf(name, sizeof name, "%s_%d", op, g->counter++);
    nd->op_type = g_str(g, op);
    nd->name = g_str(g, name);
    nd->n_input = (size_t)n_in;
    nd->input = g_alloc(g, sizeof(char *) * (size_t)(n_in ? n_in : 1));
    for (int i = 0; nd->input && i < n_in; i++) nd->input[i] = g_str(g, in[i]);
    nd->n_output = 1;
    nd->output = g_alloc(g, sizeof(char *));
    if (nd->output) nd->output[0] = g_str(g, out ? out : name);
    if (g->oom || g_push((void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, nd)) {
        g->oom = 1;
        return NULL;
    }
    return nd;
}

static const char *out_of(Onnx__NodeProto *nd) { return nd && nd->output ? nd->output[0] : "?"; }

static Onnx__AttributeProto *g_attr(G *g, Onnx__NodeProto *nd, const char *name) {
    if (!nd) return NULL;
    Onnx__AttributeProto *a = g_alloc(g, sizeof *a);
    Onnx__AttributeProto **na = g_alloc(g, sizeof(*na) * (nd->n_attribute + 1));
    if (!a || !na) return NULL;
    onnx__attribute_proto__init(a);
    a->name = g_str(g, name);
    if (nd->n_attribute) memcpy(na, nd->attribute, sizeof(*na) * nd->n_attribute);
    na[nd->n_attribute++] = a;
    nd->attribute = na;   /* the old array stays in the pool */
    return a;
}
static void attr_i(G *g, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = g_attr(g, nd, name);
    if (!a) return;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = v;
}
static void attr_f(G *g, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = g_attr(g, nd, name);
    if (!a) return;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->has_f = 1;
    a->f = v;
}
static void attr_ints(G *g, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = g_attr(g, nd, name);
    if (!a) return;
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)n;
    a->ints = g_alloc(g, sizeof(int64_t) * (size_t)n);
    if (a->ints) memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

/* Initializer named `name` with raw little-endian bytes (referenced, not copied). */
static const char *g_init(G *g, const char *name, int dtype, int ndim, const int64_t *dims, const void *data,
                          size_t nbytes) {
    Onnx__TensorProto *t = g_alloc(g, sizeof *t);
    if (!t) return name;
    onnx__tensor_proto__init(t);
    t->name = g_str(g, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = g_alloc(g, sizeof(int64_t) * (size_t)(ndim ? ndim : 1));
    if (t->dims && ndim) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = (uint8_t *)data;
    if (g_push((void ***)&g->inits, &g->n_inits, &g->cap_inits, t)) g->oom = 1;
    return t->name ? t->name : name;
}

/* Small constants (copied into the pool). ndim 0 = scalar. */
static const char *c_i64(G *g, int n, const int64_t *v, int scalar) {
    char name[64];
    snprintf(name, sizeof name, "const_i64_%d", g->counter++);
    int64_t *d = g_alloc(g, sizeof(int64_t) * (size_t)n);
    if (!d) return "?";
    memcpy(d, v, sizeof(int64_t) * (size_t)n);
    int64_t dim = n;
    return g_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, scalar ? 0 : 1, &dim, d, sizeof(int64_t) * (size_t)n);
}
static const char *c_i64s(G *g, int64_t v) { return c_i64(g, 1, &v, 1); }
static const char *c_f32s(G *g, float v) {
    char name[64];
    snprintf(name, sizeof name, "const_f32_%d", g->counter++);
    float *d = g_alloc(g, sizeof(float));
    if (!d) return "?";
    *d = v;
    return g_init(g, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0, NULL, d, sizeof(float));
}

#define IN(...) ((const char *const[]){__VA_ARGS__})
#define NIN(...) ((int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))
/* op(G, "Add", a, b) -> output name */
#define OP(op, ...) out_of(g_node(g, op, NULL, NIN(__VA_ARGS__), IN(__VA_ARGS__)))
#define OPN(op, out, ...) g_node(g, op, out, NIN(__VA_ARGS__), IN(__VA_ARGS__))

/* Model parameter as an initializer (name = checkpoint name). */
static const char *param(G *g, const MilesModel *m, const char *name) {
    int i = miles_model_find_tensor(m, name);
    MilesTensorInfo ti;
    if (i < 0 || miles_model_tensor(m, i, &ti) != MILES_OK) {
        g->oom = 2;   /* a bug: the graph asked for a tensor the model lacks */
        return "?";
    }
    return g_init(g, ti.name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ti.ndim, ti.shape, ti.data,
                  ti.numel * sizeof(float));
}

/* y = x @ W^T + b on a 2-D x, W [out,in] as stored. */
static const char *gemm(G *g, const MilesModel *m, const char *x, const char *prefix, const char *out) {
    char wn[128], bn[128];
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    snprintf(bn, sizeof bn, "%s.bias", prefix);
    const char *w = param(g, m, wn), *b = param(g, m, bn);
    Onnx__NodeProto *nd = OPN("Gemm", out, x, w, b);
    attr_i(g, nd, "transB", 1);
    return out_of(nd);
}

static const char *layernorm(G *g, const MilesModel *m, const char *x, const char *prefix, float eps) {
    char wn[128], bn[128];
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    snprintf(bn, sizeof bn, "%s.bias", prefix);
    const char *w = param(g, m, wn), *b = param(g, m, bn);
    Onnx__NodeProto *nd = OPN("LayerNormalization", NULL, x, w, b);
    attr_i(g, nd, "axis", -1);
    attr_f(g, nd, "epsilon", eps);
    return out_of(nd);
}

static const char *transpose(G *g, const char *x, const int64_t perm[4]) {
    Onnx__NodeProto *nd = OPN("Transpose", NULL, x);
    attr_ints(g, nd, "perm", 4, perm);
    return out_of(nd);
}

/* (Gemm, Relu)* over `n` layers named "<prefix>.<i>". */
static const char *mlp(G *g, const MilesModel *m, const char *x, const char *prefix, int n) {
    char p[64];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s.%d", prefix, i);
        x = OP("Relu", gemm(g, m, x, p, NULL));
    }
    return x;
}

static void build_graph(G *g, const MilesModel *m, int pooled_only) {
    const MilesConfig *c = miles_model_config(m);
    /* the last layer on the [CLS] rows alone: what the pooled vector reads */
    const int cls_last = pooled_only && c->pooling != MILES_POOL_MEAN && c->num_hidden_layers > 0;
    const int H = c->hidden_size, NH = c->num_attention_heads, hs = H / NH;
    const float eps = c->layer_norm_eps;

    /* embeddings: word + type + position, then LayerNorm; rows flattened to [B*T,H] */
    const char *w = OP("Gather", param(g, m, "bert.embeddings.word_embeddings.weight"), "input_ids");
    const char *tt = OP("Gather", param(g, m, "bert.embeddings.token_type_embeddings.weight"), "token_type_ids");
    const char *shape_bt = OP("Shape", "input_ids");                         /* [2] = (B, T) */
    const char *T = OP("Gather", shape_bt, c_i64s(g, 1));                    /* scalar T */
    const char *pos = OP("Range", c_i64s(g, 0), T, c_i64s(g, 1));            /* [T] */
    const char *pe = OP("Gather", param(g, m, "bert.embeddings.position_embeddings.weight"), pos);
    const char *emb = OP("Add", OP("Add", w, pe), tt);                       /* [B,T,H] */
    emb = layernorm(g, m, emb, "bert.embeddings.LayerNorm", eps);
    const int64_t flat[2] = {-1, H};
    const char *flat_shape = c_i64(g, 2, flat, 0);
    const char *x = OP("Reshape", emb, flat_shape);                          /* [B*T,H] */

    /* attention masks: additive [B,1,1,T] and the per-row "has a real token" factor */
    Onnx__NodeProto *cast = OPN("Cast", NULL, "attention_mask");
    attr_i(g, cast, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    const char *maskf = out_of(cast);                                        /* [B,T] */
    const int64_t ax12[2] = {1, 2}, ax1[1] = {1}, ax23[2] = {2, 3}, ax2[1] = {2};
    const char *neg = OP("Mul", OP("Sub", c_f32s(g, 1.0f), maskf), c_f32s(g, -3.4028234663852886e38f));
    const char *mask_add = OP("Unsqueeze", neg, c_i64(g, 2, ax12, 0));       /* [B,1,1,T] */
    Onnx__NodeProto *rmax = OPN("ReduceMax", NULL, maskf);
    attr_ints(g, rmax, "axes", 1, ax1);
    attr_i(g, rmax, "keepdims", 1);
    const char *anyreal = OP("Unsqueeze", out_of(rmax), c_i64(g, 2, ax23, 0)); /* [B,1,1,1] */
    const int64_t heads[2] = {NH, hs};
    Onnx__NodeProto *s4 = OPN("Concat", NULL, shape_bt, c_i64(g, 2, heads, 0));
    attr_i(g, s4, "axis", 0);
    const char *shape4 = out_of(s4);                                         /* (B,T,NH,hs) */
    const char *scale = c_f32s(g, 1.0f / sqrtf((float)hs));
    const int64_t p_bhtd[4] = {0, 2, 1, 3}, p_bhdt[4] = {0, 2, 3, 1};

    const int64_t hid[1] = {H};
    Onnx__NodeProto *s3 = OPN("Concat", NULL, shape_bt, c_i64(g, 1, hid, 0));
    attr_i(g, s3, "axis", 0);
    const char *shape3 = out_of(s3);                                         /* (B,T,H) */

    char pre[96], nm[160];
    for (int l = 0; l < c->num_hidden_layers; l++) {
        snprintf(pre, sizeof pre, "bert.encoder.layer.%d", l);
#define NAME(suffix) (snprintf(nm, sizeof nm, "%s.%s", pre, suffix), nm)
        /* the last layer with cls_last: q, the attention and the rest for
         * each sequence's row 0 (xq [B,H]); k, v for every token */
        const int cls = cls_last && l == c->num_hidden_layers - 1;
        const char *xq = x, *qshape = shape4;
        if (cls) {
            Onnx__NodeProto *gx = OPN("Gather", NULL, OP("Reshape", x, shape3), c_i64s(g, 0));
            attr_i(g, gx, "axis", 1);
            const int64_t q1[4] = {-1, 1, NH, hs};
            xq = out_of(gx);
            qshape = c_i64(g, 4, q1, 0);
        }
        const char *q = transpose(g, OP("Reshape", gemm(g, m, xq, NAME("attention.self.query"), NULL), qshape), p_bhtd);
        const char *k = transpose(g, OP("Reshape", gemm(g, m, x, NAME("attention.self.key"), NULL), shape4), p_bhdt);
        const char *v = transpose(g, OP("Reshape", gemm(g, m, x, NAME("attention.self.value"), NULL), shape4), p_bhtd);
        const char *sc = OP("Add", OP("Mul", OP("MatMul", q, k), scale), mask_add); /* [B,NH,T or 1,T] */
        Onnx__NodeProto *sm = OPN("Softmax", NULL, sc);
        attr_i(g, sm, "axis", -1);
        const char *probs = OP("Mul", out_of(sm), anyreal);
        const char *ctx = transpose(g, OP("MatMul", probs, v), p_bhtd);         /* [B,T or 1,NH,hs] */
        ctx = OP("Reshape", ctx, flat_shape);                                   /* [B*T or B,H] */
        const char *r1 = OP("Add", gemm(g, m, ctx, NAME("attention.output.dense"), NULL), xq);
        const char *ln1 = layernorm(g, m, r1, NAME("attention.output.LayerNorm"), eps);
        const char *inter = gemm(g, m, ln1, NAME("intermediate.dense"), NULL);
        /* exact GELU, as gelu_forward: 0.5 * x * (1 + erf(x / sqrt 2)) */
        const char *erf = OP("Erf", OP("Mul", inter, c_f32s(g, 0.70710678118654752f)));
        const char *gelu = OP("Mul", OP("Mul", inter, OP("Add", erf, c_f32s(g, 1.0f))), c_f32s(g, 0.5f));
        const char *r2 = OP("Add", gemm(g, m, gelu, NAME("output.dense"), NULL), ln1);
        x = layernorm(g, m, r2, NAME("output.LayerNorm"), eps);               /* cls: [B,H], the [CLS] rows */
#undef NAME
    }
    /* named intermediates (not graph outputs): tests/export_roundtrip.py exposes them */
    const char *h3 = cls_last ? NULL : out_of(OPN("Reshape", "last_hidden_state", x, shape3)); /* [B,T,H] */

    const char *text;
    if (cls_last) { /* x: the [CLS] rows [B,H] */
        text = c->pooling == MILES_POOL_POOLER ? out_of(OPN("Tanh", "pooled", gemm(g, m, x, "bert.pooler.dense", NULL)))
                                               : out_of(OPN("Identity", "pooled", x));
    } else if (c->pooling == MILES_POOL_MEAN) {
        const char *m3 = OP("Unsqueeze", maskf, c_i64(g, 1, ax2, 0));        /* [B,T,1] */
        Onnx__NodeProto *sum = OPN("ReduceSum", NULL, OP("Mul", h3, m3), c_i64(g, 1, ax1, 0));
        attr_i(g, sum, "keepdims", 0);                                       /* [B,H] */
        Onnx__NodeProto *cnt = OPN("ReduceSum", NULL, maskf, c_i64(g, 1, ax1, 0));
        attr_i(g, cnt, "keepdims", 1);                                       /* [B,1] */
        const char *inv = OP("Reciprocal", OP("Max", out_of(cnt), c_f32s(g, 1e-9f)));
        text = out_of(OPN("Mul", "pooled", out_of(sum), inv));
    } else {
        Onnx__NodeProto *cls = OPN("Gather", c->pooling == MILES_POOL_CLS ? "pooled" : NULL, h3, c_i64s(g, 0));
        attr_i(g, cls, "axis", 1);                                           /* [B,H] */
        text = out_of(cls);
        if (c->pooling == MILES_POOL_POOLER)
            text = out_of(OPN("Tanh", "pooled", gemm(g, m, text, "bert.pooler.dense", NULL)));
    }

    const char *num = mlp(g, m, "features", "numeric_mlp", c->n_numeric);
    Onnx__NodeProto *cat = OPN("Concat", NULL, text, num);
    attr_i(g, cat, "axis", 1);
    const char *f = mlp(g, m, out_of(cat), "fusion", c->n_fusion);

    const char *logits = gemm(g, m, f, "classifier", "logits");
    Onnx__NodeProto *ps = OPN("Softmax", NULL, logits);
    attr_i(g, ps, "axis", 1);
    Onnx__NodeProto *vp = OPN("Gather", "viral_prob", out_of(ps), c_i64s(g, 1));
    attr_i(g, vp, "axis", 1);
    const char *vel = gemm(g, m, f, "regressor", NULL);                      /* [B,1] */
    if (c->velocity_activation == MILES_VEL_SIGMOID) vel = OP("Sigmoid", vel);
    OPN("Squeeze", "velocity", vel, c_i64(g, 1, ax1, 0));
}

/* ------------------------------------------------------------ value infos */

static Onnx__ValueInfoProto *value_info(G *g, const char *name, int elem, int ndim, const char *const *dims) {
    Onnx__ValueInfoProto *vi = g_alloc(g, sizeof *vi);
    Onnx__TypeProto *tp = g_alloc(g, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = g_alloc(g, sizeof *tt);
    Onnx__TensorShapeProto *sh = g_alloc(g, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = g_alloc(g, sizeof(*dd) * (size_t)ndim);
    if (!vi || !tp || !tt || !sh || !dd) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        dd[i] = g_alloc(g, sizeof **dd);
        if (!dd[i]) return NULL;
        onnx__tensor_shape_proto__dimension__init(dd[i]);
        char *end;
        long v = strtol(dims[i], &end, 10);
        if (*end == '\0') {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[i]->dim_value = v;
        } else {
            dd[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dd[i]->dim_param = g_str(g, dims[i]);
        }
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = dd;
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->name = g_str(g, name);
    vi->type = tp;
    return vi;
}

static Onnx__StringStringEntryProto *kv(G *g, const char *k, const char *v) {
    Onnx__StringStringEntryProto *e = g_alloc(g, sizeof *e);
    if (!e) return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = g_str(g, k);
    e->value = g_str(g, v ? v : "");
    return e;
}

/* ------------------------------------------------------------ streaming write */

typedef struct {
    ProtobufCBuffer base;
    FILE *fp;
    int err;
} FileBuf;

static void filebuf_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    FileBuf *fb = (FileBuf *)b;
    if (!fb->err && len && fwrite(data, 1, len, fb->fp) != len) fb->err = errno ? errno : EIO;
}

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

int miles_export_onnx(const char *checkpoint, const char *out_path, const MilesExportOptions *opt) {
    if (!checkpoint || !out_path || !*out_path)
        return miles_error(MILES_EINVAL, "miles_export_onnx: checkpoint and out_path are required");
    if (!host_is_little_endian())
        return miles_error(MILES_EUNSUPPORTED, "ONNX export: raw_data must be little-endian; big-endian hosts are not supported");
    struct stat sb;
    if (stat(out_path, &sb) == 0) {
        if (!(opt && opt->overwrite))
            return miles_error(MILES_EINVAL, "%s already exists (pass overwrite / --force to replace it)", out_path);
        if (!S_ISREG(sb.st_mode)) return miles_error(MILES_EINVAL, "%s exists and is not a regular file", out_path);
    }
    MilesCheckpoint *ck = NULL;
    MILES_TRY(miles_checkpoint_open(&ck, checkpoint));
    MilesModel *m = NULL;
    int s = miles_checkpoint_model(ck, &m);
    if (s == MILES_OK) s = miles_ckpt_check_scaler(ck);
    MilesPlatt cal;   /* copied as stored: refused here as the predictor refuses it */
    int has_cal;
    if (s == MILES_OK) s = miles_checkpoint_calibration(ck, &cal, &has_cal);
    if (s != MILES_OK) { miles_model_free(m); miles_checkpoint_close(ck); return s; }

    G g;
    memset(&g, 0, sizeof g);
    build_graph(&g, m, opt && opt->pooled_only);

    static const char *const bt[2] = {"batch", "sequence"};
    char fdim[16], *cj = NULL;
    snprintf(fdim, sizeof fdim, "%d", miles_model_config(m)->num_features);
    const char *bf[2] = {"batch", fdim};
    const char *b2[2] = {"batch", "2"};
    Onnx__ValueInfoProto *ins[4] = {
        value_info(&g, "input_ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt),
        value_info(&g, "attention_mask", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt),
        value_info(&g, "token_type_ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt),
        value_info(&g, "features", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, bf)};
    Onnx__ValueInfoProto *outs[3] = {
        value_info(&g, "logits", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, b2),
        value_info(&g, "viral_prob", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, bt),
        value_info(&g, "velocity", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, bt)};

    s = miles_config_to_json(miles_model_config(m), &cj);
    if (s == MILES_OK) g_keep(&g, cj);
    const char *keys[] = {"miles_format", "miles_config", "data", "decision_threshold", "tokenizer_hash",
                          "text_clean", "train_config", "feature_names", "calibration", "data_split"};
    enum { NKV = sizeof keys / sizeof keys[0] };
    char names[1024] = "";
    for (int i = 0; i < MILES_NUM_FEATURES; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? "," : "", miles_feature_names[i]);
    const char *vals[NKV] = {"miles-onnx-1", cj, miles_checkpoint_meta(ck, MILES_META_SCALER),
                             miles_checkpoint_meta(ck, MILES_META_THRESHOLD),
                             miles_checkpoint_meta(ck, MILES_META_TOKENIZER_HASH),
                             miles_checkpoint_meta(ck, MILES_META_TEXT_CLEAN),
                             miles_checkpoint_meta(ck, MILES_META_TRAIN_CONFIG), names,
                             /* the graph's viral_prob is the model's own; a calibrated
                              * checkpoint's Platt map travels beside it (docs/export.md) */
                             miles_checkpoint_meta(ck, MILES_META_CALIBRATION), miles_ckpt_data_split(ck)};
    Onnx__StringStringEntryProto *props[NKV];
    size_t nprops = 0;
    for (int i = 0; i < NKV; i++)
        if (vals[i]) props[nprops++] = kv(&g, keys[i], vals[i]);

    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = ONNX_OPSET;
    Onnx__OperatorSetIdProto *opsets[1] = {&opset};
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "miles";
    graph.n_node = g.n_nodes;
    graph.node = g.nodes;
    graph.n_initializer = g.n_inits;
    graph.initializer = g.inits;
    graph.n_input = 4;
    graph.input = ins;
    graph.n_output = 3;
    graph.output = outs;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = ONNX_IR;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "miles";
    model.producer_version = MILES_VERSION_STRING;
    model.doc_string = "Miles viral-video model: BERT title encoder + 18 engagement features -> "
                       "logits [B,2], viral_prob [B], velocity [B] (docs/export.md)";
    model.graph = &graph;
    model.n_metadata_props = nprops;
    model.metadata_props = props;

    int bad = g.oom;
    for (int i = 0; i < 4; i++) bad |= ins[i] == NULL;
    for (int i = 0; i < 3; i++) bad |= outs[i] == NULL;
    for (size_t i = 0; i < nprops; i++) bad |= props[i] == NULL;
    if (s == MILES_OK && bad)
        s = g.oom == 2 ? miles_error(MILES_EINTERNAL, "ONNX export: a model tensor the graph needs is missing")
                       : miles_error(MILES_ENOMEM, "ONNX export: out of memory building the graph");

    if (s == MILES_OK) {
        MilesAtomicFile af;
        s = miles_atomic_open(&af, out_path);
        if (s == MILES_OK) {
            FileBuf fb = {{filebuf_append}, af.fp, 0};
            errno = 0;
            onnx__model_proto__pack_to_buffer(&model, &fb.base);
            if (fb.err) {
                miles_atomic_abort(&af);
                s = miles_error(MILES_EIO, "%s: write failed: %s", out_path, strerror(fb.err));
            } else {
                s = miles_atomic_commit(&af);
            }
        }
    }
    g_free(&g);
    miles_checkpoint_close(ck);
    miles_model_free(m);
    if (s != MILES_OK) return miles_error_prefix(s, "ONNX export %s", out_path);
    return MILES_OK;
}
