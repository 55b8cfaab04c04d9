/*
 * onnx_ref.c — the tests' ONNX interpreter (see onnx_ref.h).
 *
 * Every value of the graph is kept by name until the end (the test models
 * are small).  Each operator is written from the ONNX operator
 * specification (opset 17), not from export_onnx.c: numpy broadcasting for
 * the elementwise ops, Gather's output shape data[:axis] + indices +
 * data[axis+1:], Reshape's 0 (copy) and -1 (infer), reductions with their
 * keepdims, Gemm's unidirectional broadcast of C.  Sums and the softmax /
 * layer-norm statistics are accumulated in double.
 */
#include "onnx_ref.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#define F32 ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
#define I64 ONNX__TENSOR_PROTO__DATA_TYPE__INT64

typedef struct {
    const char *name;
    OnnxRefTensor t;
    int owned;
} Value;

typedef struct {
    Value *v;
    size_t n, cap;
    const Onnx__NodeProto *node;   /* the node being run, for messages */
    char *err;
    size_t errsz;
} Env;

static int fail(Env *e, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (e->node) snprintf(e->err, e->errsz, "node %s (%s): %s", e->node->name ? e->node->name : "?",
                          e->node->op_type, msg);
    else snprintf(e->err, e->errsz, "%s", msg);
    return -1;
}

void onnx_ref_free(OnnxRefTensor *t) {
    free(t->f);
    free(t->i);
    t->f = NULL;
    t->i = NULL;
}

static size_t count(int nd, const int64_t *d) {
    size_t n = 1;
    for (int k = 0; k < nd; k++) n *= (size_t)d[k];
    return n;
}

/* a new tensor of that type and shape, zeroed; -1 on a bad shape or no memory */
static int t_new(Env *e, OnnxRefTensor *t, int dtype, int nd, const int64_t *d) {
    memset(t, 0, sizeof *t);
    if (nd < 0 || nd > ONNX_REF_MAXDIM) return fail(e, "rank %d", nd);
    for (int k = 0; k < nd; k++)
        if (d[k] < 0) return fail(e, "negative dimension %lld", (long long)d[k]);
    t->dtype = dtype;
    t->ndim = nd;
    if (nd) memcpy(t->dims, d, sizeof(int64_t) * (size_t)nd);
    t->n = count(nd, d);
    if (dtype == F32) t->f = calloc(t->n ? t->n : 1, sizeof(float));
    else if (dtype == I64) t->i = calloc(t->n ? t->n : 1, sizeof(int64_t));
    else return fail(e, "data type %d not implemented", dtype);
    if (!t->f && !t->i) return fail(e, "out of memory");
    return 0;
}

/* type, rank, dims and count; no data yet */
static OnnxRefTensor header(int dtype, int ndim, const int64_t *dims) {
    OnnxRefTensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.ndim = ndim;
    memcpy(t.dims, dims, sizeof(int64_t) * (size_t)ndim);
    t.n = count(ndim, dims);
    return t;
}

OnnxRefTensor onnx_ref_view_f32(float *data, int ndim, const int64_t *dims) {
    OnnxRefTensor t = header(F32, ndim, dims);
    t.f = data;
    return t;
}

OnnxRefTensor onnx_ref_i64_from_i32(const int32_t *data, int ndim, const int64_t *dims) {
    OnnxRefTensor t = header(I64, ndim, dims);
    t.i = malloc((t.n ? t.n : 1) * sizeof(int64_t));
    if (t.i)
        for (size_t k = 0; k < t.n; k++) t.i[k] = data[k];
    return t;
}

static double get(const OnnxRefTensor *t, size_t k) { return t->dtype == F32 ? t->f[k] : (double)t->i[k]; }
static void put(OnnxRefTensor *t, size_t k, double v) {
    if (t->dtype == F32) t->f[k] = (float)v;
    else t->i[k] = (int64_t)v;
}

/* ------------------------------------------------------------ the value table */

static const Value *lookup(const Env *e, const char *name) {
    for (size_t k = e->n; k-- > 0;)
        if (!strcmp(e->v[k].name, name)) return &e->v[k];
    return NULL;
}

static int bind(Env *e, const char *name, OnnxRefTensor t, int owned) {
    if (lookup(e, name)) {
        if (owned) onnx_ref_free(&t);
        return fail(e, "value %s is defined twice", name);
    }
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 64;
        Value *v = realloc(e->v, cap * sizeof *v);
        if (!v) {
            if (owned) onnx_ref_free(&t);
            return fail(e, "out of memory");
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (Value){name, t, owned};
    return 0;
}

/* initializer -> tensor (raw little-endian bytes, or the typed repeated fields) */
static int from_proto(Env *e, const Onnx__TensorProto *p, OnnxRefTensor *t) {
    if (p->n_dims > ONNX_REF_MAXDIM) return fail(e, "initializer %s: rank %zu", p->name, p->n_dims);
    if (t_new(e, t, p->data_type, (int)p->n_dims, p->dims)) return -1;
    size_t esz = p->data_type == F32 ? sizeof(float) : sizeof(int64_t);
    void *dst = p->data_type == F32 ? (void *)t->f : (void *)t->i;
    if (p->has_raw_data) {
        if (p->raw_data.len != t->n * esz) {
            onnx_ref_free(t);
            return fail(e, "initializer %s: %zu raw bytes for %zu elements", p->name, p->raw_data.len, t->n);
        }
        memcpy(dst, p->raw_data.data, p->raw_data.len);
    } else if (p->data_type == F32 && p->n_float_data == t->n) {
        memcpy(dst, p->float_data, t->n * esz);
    } else if (p->data_type == I64 && p->n_int64_data == t->n) {
        memcpy(dst, p->int64_data, t->n * esz);
    } else {
        onnx_ref_free(t);
        return fail(e, "initializer %s: no data for its %zu elements", p->name, t->n);
    }
    return 0;
}

/* ------------------------------------------------------------ attributes */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t k = 0; k < nd->n_attribute; k++)
        if (!strcmp(nd->attribute[k]->name, name)) return nd->attribute[k];
    return NULL;
}
static int64_t attr_int(const Onnx__NodeProto *nd, const char *name, int64_t dflt) {
    const Onnx__AttributeProto *a = attr(nd, name);
    return a ? a->i : dflt;
}
static float attr_float(const Onnx__NodeProto *nd, const char *name, float dflt) {
    const Onnx__AttributeProto *a = attr(nd, name);
    return a ? a->f : dflt;
}

/* axis in [-r, r) -> [0, r) */
static int norm_axis(Env *e, int64_t axis, int r, int *out) {
    *out = 0;
    if (axis < -r || axis >= r) return fail(e, "axis %lld out of range for rank %d", (long long)axis, r);
    *out = (int)(axis < 0 ? axis + r : axis);
    return 0;
}

/* ------------------------------------------------------------ broadcasting */

/* numpy broadcast of a and b -> out rank and dims */
static int bcast_shape(Env *e, const OnnxRefTensor *a, const OnnxRefTensor *b, int *nd, int64_t *d) {
    *nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < *nd; k++) {
        int ka = k - (*nd - a->ndim), kb = k - (*nd - b->ndim);
        int64_t da = ka >= 0 ? a->dims[ka] : 1, db = kb >= 0 ? b->dims[kb] : 1;
        if (da != db && da != 1 && db != 1)
            return fail(e, "shapes do not broadcast: dimension %d is %lld and %lld", k, (long long)da, (long long)db);
        d[k] = da == 1 ? db : da;
    }
    return 0;
}

/* strides of x read as an out of rank nd (0 along broadcast dimensions) */
static void bcast_strides(const OnnxRefTensor *x, int nd, int64_t *st) {
    int64_t s = 1;
    for (int k = nd - 1; k >= 0; k--) {
        int kx = k - (nd - x->ndim);
        if (kx < 0) {
            st[k] = 0;
            continue;
        }
        st[k] = x->dims[kx] == 1 ? 0 : s;
        s *= x->dims[kx];
    }
}

/* next multi-index over dims d; returns 0 after the last */
static int next_index(int nd, const int64_t *d, int64_t *idx) {
    for (int k = nd - 1; k >= 0; k--) {
        if (++idx[k] < d[k]) return 1;
        idx[k] = 0;
    }
    return 0;
}

static size_t offset(int nd, const int64_t *idx, const int64_t *st) {
    size_t o = 0;
    for (int k = 0; k < nd; k++) o += (size_t)(idx[k] * st[k]);
    return o;
}

/* ------------------------------------------------------------ operators */

static int op_binary(Env *e, const char *op, const OnnxRefTensor *a, const OnnxRefTensor *b, OnnxRefTensor *y) {
    if (a->dtype != b->dtype) return fail(e, "input types differ (%d, %d)", a->dtype, b->dtype);
    int nd;
    int64_t d[ONNX_REF_MAXDIM], sa[ONNX_REF_MAXDIM], sb[ONNX_REF_MAXDIM], idx[ONNX_REF_MAXDIM] = {0};
    if (bcast_shape(e, a, b, &nd, d) || t_new(e, y, a->dtype, nd, d)) return -1;
    bcast_strides(a, nd, sa);
    bcast_strides(b, nd, sb);
    if (!y->n) return 0;
    const int add = !strcmp(op, "Add"), sub = !strcmp(op, "Sub"), mul = !strcmp(op, "Mul");
    size_t k = 0;
    do {
        /* in double, rounded once to the output type: fp32's own result
         * (a product of two floats is exact in double, and so is a sum
         * unless their magnitudes lie 2^29 apart) */
        double x1 = get(a, offset(nd, idx, sa)), x2 = get(b, offset(nd, idx, sb));
        put(y, k++, add ? x1 + x2 : sub ? x1 - x2 : mul ? x1 * x2 : (x1 > x2 ? x1 : x2));
    } while (next_index(nd, d, idx));
    return 0;
}

static int op_unary(Env *e, const char *op, const OnnxRefTensor *x, OnnxRefTensor *y) {
    if (x->dtype != F32) return fail(e, "float input expected");
    if (t_new(e, y, F32, x->ndim, x->dims)) return -1;
    for (size_t k = 0; k < x->n; k++) {
        double v = x->f[k];
        if (!strcmp(op, "Erf")) v = erf(v);
        else if (!strcmp(op, "Tanh")) v = tanh(v);
        else if (!strcmp(op, "Relu")) v = v > 0 ? v : 0;
        else if (!strcmp(op, "Sigmoid")) v = 1 / (1 + exp(-v));
        else if (!strcmp(op, "Reciprocal")) v = 1 / v;
        y->f[k] = (float)v;
    }
    return 0;
}

static int op_gather(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *x, const OnnxRefTensor *ix,
                     OnnxRefTensor *y) {
    int axis;
    if (ix->dtype != I64) return fail(e, "indices must be int64");
    if (norm_axis(e, attr_int(nd, "axis", 0), x->ndim, &axis)) return -1;
    int r = x->ndim - 1 + ix->ndim;
    if (r > ONNX_REF_MAXDIM) return fail(e, "output rank %d", r);
    int64_t d[ONNX_REF_MAXDIM];
    int k = 0;
    for (int a = 0; a < axis; a++) d[k++] = x->dims[a];
    for (int a = 0; a < ix->ndim; a++) d[k++] = ix->dims[a];
    for (int a = axis + 1; a < x->ndim; a++) d[k++] = x->dims[a];
    if (t_new(e, y, x->dtype, r, d)) return -1;
    size_t outer = count(axis, x->dims), inner = count(x->ndim - axis - 1, x->dims + axis + 1);
    int64_t K = x->dims[axis];
    size_t o = 0;
    for (size_t a = 0; a < outer; a++)
        for (size_t j = 0; j < ix->n; j++) {
            int64_t i = ix->i[j];
            if (i < -K || i >= K) return fail(e, "index %lld out of range [-%lld, %lld)", (long long)i, (long long)K,
                                              (long long)K);
            if (i < 0) i += K;
            for (size_t c = 0; c < inner; c++, o++) put(y, o, get(x, (a * (size_t)K + (size_t)i) * inner + c));
        }
    return 0;
}

static int op_reshape(Env *e, const OnnxRefTensor *x, const OnnxRefTensor *s, OnnxRefTensor *y) {
    if (s->dtype != I64 || s->ndim != 1) return fail(e, "shape must be a 1-D int64 tensor");
    if (s->n > ONNX_REF_MAXDIM) return fail(e, "output rank %zu", s->n);
    int64_t d[ONNX_REF_MAXDIM];
    int infer = -1;
    size_t known = 1;
    for (size_t k = 0; k < s->n; k++) {
        d[k] = s->i[k];
        if (d[k] == 0) {   /* allowzero = 0: copy the input's dimension */
            if ((int)k >= x->ndim) return fail(e, "shape[%zu] = 0 beyond the input's rank", k);
            d[k] = x->dims[k];
        }
        if (d[k] == -1) {
            if (infer >= 0) return fail(e, "two -1 in the shape");
            infer = (int)k;
        } else if (d[k] < 0) {
            return fail(e, "shape[%zu] = %lld", k, (long long)d[k]);
        } else {
            known *= (size_t)d[k];
        }
    }
    if (infer >= 0) {
        if (!known || x->n % known) return fail(e, "cannot infer -1: %zu elements, %zu known", x->n, known);
        d[infer] = (int64_t)(x->n / known);
        known *= (size_t)d[infer];
    }
    if (known != x->n) return fail(e, "%zu elements reshaped to %zu", x->n, known);
    if (t_new(e, y, x->dtype, (int)s->n, d)) return -1;
    for (size_t k = 0; k < x->n; k++) put(y, k, get(x, k));
    return 0;
}

/* axes from a 1-D int64 tensor, normalized to rank r and checked unique */
static int axes_of(Env *e, const int64_t *v, size_t n, int r, int *mark) {
    for (int k = 0; k < r; k++) mark[k] = 0;
    for (size_t k = 0; k < n; k++) {
        int a;
        if (norm_axis(e, v[k], r, &a)) return -1;
        if (mark[a]) return fail(e, "axis %d repeated", a);
        mark[a] = 1;
    }
    return 0;
}

static int op_unsqueeze(Env *e, const OnnxRefTensor *x, const OnnxRefTensor *ax, OnnxRefTensor *y) {
    if (ax->dtype != I64 || ax->ndim != 1) return fail(e, "axes must be a 1-D int64 tensor");
    int r = x->ndim + (int)ax->n, mark[ONNX_REF_MAXDIM];
    if (r > ONNX_REF_MAXDIM) return fail(e, "output rank %d", r);
    if (axes_of(e, ax->i, ax->n, r, mark)) return -1;
    int64_t d[ONNX_REF_MAXDIM];
    for (int k = 0, j = 0; k < r; k++) d[k] = mark[k] ? 1 : x->dims[j++];
    if (t_new(e, y, x->dtype, r, d)) return -1;
    for (size_t k = 0; k < x->n; k++) put(y, k, get(x, k));
    return 0;
}

static int op_squeeze(Env *e, const OnnxRefTensor *x, const OnnxRefTensor *ax, OnnxRefTensor *y) {
    int mark[ONNX_REF_MAXDIM];
    if (ax) {
        if (ax->dtype != I64 || ax->ndim != 1) return fail(e, "axes must be a 1-D int64 tensor");
        if (axes_of(e, ax->i, ax->n, x->ndim, mark)) return -1;
    } else {
        for (int k = 0; k < x->ndim; k++) mark[k] = x->dims[k] == 1;
    }
    int64_t d[ONNX_REF_MAXDIM];
    int r = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (mark[k] && x->dims[k] != 1) return fail(e, "cannot squeeze dimension %d of size %lld", k,
                                                    (long long)x->dims[k]);
        if (!mark[k]) d[r++] = x->dims[k];
    }
    if (t_new(e, y, x->dtype, r, d)) return -1;
    for (size_t k = 0; k < x->n; k++) put(y, k, get(x, k));
    return 0;
}

/* ReduceMax / ReduceSum over the marked axes (none marked: all of them) */
static int op_reduce(Env *e, int is_max, const OnnxRefTensor *x, int *mark, int any, int keepdims, OnnxRefTensor *y) {
    if (x->dtype != F32) return fail(e, "float input expected");
    if (!any)
        for (int k = 0; k < x->ndim; k++) mark[k] = 1;
    int64_t d[ONNX_REF_MAXDIM], dk[ONNX_REF_MAXDIM], st[ONNX_REF_MAXDIM], idx[ONNX_REF_MAXDIM] = {0};
    int r = 0;
    for (int k = 0; k < x->ndim; k++) {
        dk[k] = mark[k] ? 1 : x->dims[k];
        if (!mark[k] || keepdims) d[r++] = dk[k];
    }
    if (t_new(e, y, F32, r, d)) return -1;
    /* output offset of an input index: strides of the keepdims shape, 0 on reduced axes */
    int64_t s = 1;
    for (int k = x->ndim - 1; k >= 0; k--) {
        st[k] = mark[k] ? 0 : s;
        s *= dk[k];
    }
    double *acc = malloc((y->n ? y->n : 1) * sizeof(double));
    if (!acc) return fail(e, "out of memory");
    for (size_t k = 0; k < y->n; k++) acc[k] = is_max ? -INFINITY : 0;
    if (x->n) {
        size_t k = 0;
        do {
            size_t o = offset(x->ndim, idx, st);
            double v = x->f[k++];
            acc[o] = is_max ? (v > acc[o] ? v : acc[o]) : acc[o] + v;
        } while (next_index(x->ndim, x->dims, idx));
    }
    for (size_t k = 0; k < y->n; k++) y->f[k] = (float)acc[k];
    free(acc);
    return 0;
}

static int op_concat(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *const *xs, size_t n, OnnxRefTensor *y) {
    int axis;
    if (norm_axis(e, attr_int(nd, "axis", 0), xs[0]->ndim, &axis)) return -1;
    int64_t d[ONNX_REF_MAXDIM];
    memcpy(d, xs[0]->dims, sizeof(int64_t) * (size_t)xs[0]->ndim);
    d[axis] = 0;
    for (size_t j = 0; j < n; j++) {
        if (xs[j]->ndim != xs[0]->ndim || xs[j]->dtype != xs[0]->dtype) return fail(e, "input %zu: rank or type", j);
        for (int k = 0; k < xs[0]->ndim; k++)
            if (k != axis && xs[j]->dims[k] != xs[0]->dims[k]) return fail(e, "input %zu: dimension %d differs", j, k);
        d[axis] += xs[j]->dims[axis];
    }
    if (t_new(e, y, xs[0]->dtype, xs[0]->ndim, d)) return -1;
    size_t outer = count(axis, d), o = 0;
    for (size_t a = 0; a < outer; a++)
        for (size_t j = 0; j < n; j++) {
            size_t chunk = count(xs[j]->ndim - axis, xs[j]->dims + axis);
            for (size_t c = 0; c < chunk; c++) put(y, o++, get(xs[j], a * chunk + c));
        }
    return 0;
}

static int op_transpose(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *x, OnnxRefTensor *y) {
    const Onnx__AttributeProto *a = attr(nd, "perm");
    int r = x->ndim, perm[ONNX_REF_MAXDIM], seen[ONNX_REF_MAXDIM] = {0};
    if (a && a->n_ints != (size_t)r) return fail(e, "perm has %zu entries for rank %d", a->n_ints, r);
    for (int k = 0; k < r; k++) {
        int64_t p = a ? a->ints[k] : r - 1 - k;
        if (p < 0 || p >= r || seen[p]) return fail(e, "perm is not a permutation");
        seen[p] = 1;
        perm[k] = (int)p;
    }
    int64_t d[ONNX_REF_MAXDIM], xs[ONNX_REF_MAXDIM], st[ONNX_REF_MAXDIM], idx[ONNX_REF_MAXDIM] = {0};
    int64_t s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int k = 0; k < r; k++) {
        d[k] = x->dims[perm[k]];
        st[k] = xs[perm[k]];
    }
    if (t_new(e, y, x->dtype, r, d)) return -1;
    if (!y->n) return 0;
    size_t k = 0;
    do put(y, k++, get(x, offset(r, idx, st)));
    while (next_index(r, d, idx));
    return 0;
}

/* MatMul of rank >= 2 operands with numpy-broadcast batch dimensions */
static int op_matmul(Env *e, const OnnxRefTensor *a, const OnnxRefTensor *b, OnnxRefTensor *y) {
    if (a->dtype != F32 || b->dtype != F32) return fail(e, "float inputs expected");
    if (a->ndim < 2 || b->ndim < 2) return fail(e, "1-D operands not implemented");
    int64_t M = a->dims[a->ndim - 2], K = a->dims[a->ndim - 1], N = b->dims[b->ndim - 1];
    if (b->dims[b->ndim - 2] != K) return fail(e, "inner dimensions %lld and %lld", (long long)K,
                                               (long long)b->dims[b->ndim - 2]);
    OnnxRefTensor ab = *a, bb = *b;   /* the batch parts, for broadcasting */
    ab.ndim -= 2;
    bb.ndim -= 2;
    int nb;
    int64_t d[ONNX_REF_MAXDIM], sa[ONNX_REF_MAXDIM], sb[ONNX_REF_MAXDIM], idx[ONNX_REF_MAXDIM] = {0};
    if (bcast_shape(e, &ab, &bb, &nb, d)) return -1;
    bcast_strides(&ab, nb, sa);
    bcast_strides(&bb, nb, sb);
    d[nb] = M;
    d[nb + 1] = N;
    if (t_new(e, y, F32, nb + 2, d)) return -1;
    size_t o = 0;
    do {
        const float *A = a->f + offset(nb, idx, sa) * (size_t)(M * K);
        const float *B = b->f + offset(nb, idx, sb) * (size_t)(K * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += (double)A[i * K + k] * B[k * N + j];
                y->f[o++] = (float)s;
            }
    } while (next_index(nb, d, idx));
    return 0;
}

static int op_gemm(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *a, const OnnxRefTensor *b,
                   const OnnxRefTensor *c, OnnxRefTensor *y) {
    if (a->ndim != 2 || b->ndim != 2) return fail(e, "A and B must be 2-D");
    int ta = (int)attr_int(nd, "transA", 0), tb = (int)attr_int(nd, "transB", 0);
    double alpha = attr_float(nd, "alpha", 1.0f), beta = attr_float(nd, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb) return fail(e, "inner dimensions %lld and %lld", (long long)K, (long long)Kb);
    int64_t d[2] = {M, N}, sc[ONNX_REF_MAXDIM] = {0};
    if (c) {   /* C broadcasts to [M, N], never the other way */
        OnnxRefTensor mn;
        memset(&mn, 0, sizeof mn);
        mn.ndim = 2;
        mn.dims[0] = M;
        mn.dims[1] = N;
        int r;
        int64_t dd[ONNX_REF_MAXDIM];
        if (c->ndim > 2 || bcast_shape(e, c, &mn, &r, dd) || dd[0] != M || dd[1] != N)
            return fail(e, "C does not broadcast to [%lld, %lld]", (long long)M, (long long)N);
        bcast_strides(c, 2, sc);
    }
    if (t_new(e, y, F32, 2, d)) return -1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)a->f[ta ? k * M + i : i * K + k] * b->f[tb ? j * K + k : k * N + j];
            s *= alpha;
            if (c) s += beta * c->f[i * sc[0] + j * sc[1]];
            y->f[i * N + j] = (float)s;
        }
    return 0;
}

static int op_softmax(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *x, OnnxRefTensor *y) {
    int axis;
    if (x->dtype != F32) return fail(e, "float input expected");
    if (norm_axis(e, attr_int(nd, "axis", -1), x->ndim, &axis) || t_new(e, y, F32, x->ndim, x->dims)) return -1;
    size_t outer = count(axis, x->dims), K = (size_t)x->dims[axis], inner = count(x->ndim - axis - 1, x->dims + axis + 1);
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            const float *p = x->f + a * K * inner + c;
            double mx = -INFINITY, s = 0;
            for (size_t k = 0; k < K; k++) mx = p[k * inner] > mx ? p[k * inner] : mx;
            for (size_t k = 0; k < K; k++) s += exp((double)p[k * inner] - mx);
            for (size_t k = 0; k < K; k++)
                y->f[a * K * inner + c + k * inner] = (float)(exp((double)p[k * inner] - mx) / s);
        }
    return 0;
}

static int op_layernorm(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *x, const OnnxRefTensor *sc,
                        const OnnxRefTensor *b, OnnxRefTensor *y) {
    int axis;
    if (x->dtype != F32) return fail(e, "float input expected");
    if (norm_axis(e, attr_int(nd, "axis", -1), x->ndim, &axis)) return -1;
    double eps = attr_float(nd, "epsilon", 1e-5f);
    size_t rows = count(axis, x->dims), H = count(x->ndim - axis, x->dims + axis);
    /* Scale and B as the normalized shape (x.shape[axis:]); nothing else is implemented */
    if (sc->n != H || (b && b->n != H)) return fail(e, "Scale / B of %zu elements for a normalized size %zu", sc->n, H);
    if (t_new(e, y, F32, x->ndim, x->dims)) return -1;
    for (size_t r = 0; r < rows; r++) {
        const float *p = x->f + r * H;
        double mean = 0, var = 0;
        for (size_t k = 0; k < H; k++) mean += p[k];
        mean /= (double)H;
        for (size_t k = 0; k < H; k++) var += (p[k] - mean) * (p[k] - mean);
        var /= (double)H;
        double inv = 1 / sqrt(var + eps);
        for (size_t k = 0; k < H; k++) y->f[r * H + k] = (float)((p[k] - mean) * inv * sc->f[k] + (b ? b->f[k] : 0));
    }
    return 0;
}

static int op_range(Env *e, const OnnxRefTensor *s, const OnnxRefTensor *l, const OnnxRefTensor *dl, OnnxRefTensor *y) {
    if (s->ndim || l->ndim || dl->ndim) return fail(e, "start, limit and delta must be scalars");
    if (s->dtype != I64 || l->dtype != I64 || dl->dtype != I64) return fail(e, "int64 only");
    int64_t d = dl->i[0];
    if (!d) return fail(e, "delta 0");
    double nf = ceil((double)(l->i[0] - s->i[0]) / (double)d);
    int64_t n = nf > 0 ? (int64_t)nf : 0;
    if (t_new(e, y, I64, 1, &n)) return -1;
    for (int64_t k = 0; k < n; k++) y->i[k] = s->i[0] + k * d;
    return 0;
}

static int op_cast(Env *e, const Onnx__NodeProto *nd, const OnnxRefTensor *x, OnnxRefTensor *y) {
    int to = (int)attr_int(nd, "to", 0);
    if (t_new(e, y, to, x->ndim, x->dims)) return -1;
    for (size_t k = 0; k < x->n; k++) put(y, k, get(x, k));
    return 0;
}

/* ------------------------------------------------------------ the graph */

static const OnnxRefTensor *input(Env *e, const Onnx__NodeProto *nd, size_t k, int optional) {
    if (k >= nd->n_input || !nd->input[k][0]) {
        if (!optional) fail(e, "input %zu missing", k);
        return NULL;
    }
    const Value *v = lookup(e, nd->input[k]);
    if (!v) fail(e, "input %s is not defined before the node", nd->input[k]);
    return v ? &v->t : NULL;
}

static int run_node(Env *e, const Onnx__NodeProto *nd) {
    const char *op = nd->op_type;
    e->node = nd;
    if (nd->n_output != 1) return fail(e, "%zu outputs (one implemented)", nd->n_output);
    if (nd->domain && nd->domain[0]) return fail(e, "domain %s", nd->domain);
    const OnnxRefTensor *x = input(e, nd, 0, 0);
    if (!x) return -1;
    OnnxRefTensor y;
    memset(&y, 0, sizeof y);
    int rc;
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Max")) {
        const OnnxRefTensor *b = input(e, nd, 1, 0);
        if (nd->n_input != 2) return fail(e, "%zu inputs (two implemented)", nd->n_input);
        rc = b ? op_binary(e, op, x, b, &y) : -1;
    } else if (!strcmp(op, "Erf") || !strcmp(op, "Tanh") || !strcmp(op, "Relu") || !strcmp(op, "Sigmoid") ||
               !strcmp(op, "Reciprocal")) {
        rc = op_unary(e, op, x, &y);
    } else if (!strcmp(op, "Identity")) {
        rc = t_new(e, &y, x->dtype, x->ndim, x->dims);
        for (size_t k = 0; !rc && k < x->n; k++) put(&y, k, get(x, k));
    } else if (!strcmp(op, "Shape")) {
        int64_t n = x->ndim;
        rc = t_new(e, &y, I64, 1, &n);
        for (int k = 0; !rc && k < x->ndim; k++) y.i[k] = x->dims[k];
    } else if (!strcmp(op, "Gather")) {
        const OnnxRefTensor *ix = input(e, nd, 1, 0);
        rc = ix ? op_gather(e, nd, x, ix, &y) : -1;
    } else if (!strcmp(op, "Reshape")) {
        const OnnxRefTensor *s = input(e, nd, 1, 0);
        if (attr_int(nd, "allowzero", 0)) return fail(e, "allowzero not implemented");
        rc = s ? op_reshape(e, x, s, &y) : -1;
    } else if (!strcmp(op, "Unsqueeze")) {
        const OnnxRefTensor *ax = input(e, nd, 1, 0);
        rc = ax ? op_unsqueeze(e, x, ax, &y) : -1;
    } else if (!strcmp(op, "Squeeze")) {
        rc = op_squeeze(e, x, input(e, nd, 1, 1), &y);
    } else if (!strcmp(op, "ReduceMax") || !strcmp(op, "ReduceSum")) {
        /* opset 17: ReduceMax's axes are an attribute, ReduceSum's an input */
        int mark[ONNX_REF_MAXDIM] = {0}, any = 0, is_max = !strcmp(op, "ReduceMax");
        const Onnx__AttributeProto *a = attr(nd, "axes");
        const OnnxRefTensor *ax = is_max ? NULL : input(e, nd, 1, 1);
        if (!is_max && a) return fail(e, "axes as an attribute (an input since opset 13)");
        if (!is_max && attr_int(nd, "noop_with_empty_axes", 0)) return fail(e, "noop_with_empty_axes not implemented");
        if (a) {
            any = a->n_ints > 0;
            if (axes_of(e, a->ints, a->n_ints, x->ndim, mark)) return -1;
        } else if (ax) {
            if (ax->dtype != I64 || ax->ndim != 1) return fail(e, "axes must be a 1-D int64 tensor");
            any = ax->n > 0;
            if (axes_of(e, ax->i, ax->n, x->ndim, mark)) return -1;
        }
        rc = op_reduce(e, is_max, x, mark, any, (int)attr_int(nd, "keepdims", 1), &y);
    } else if (!strcmp(op, "Concat")) {
        const OnnxRefTensor *xs[16];
        if (nd->n_input > 16) return fail(e, "%zu inputs", nd->n_input);
        for (size_t k = 0; k < nd->n_input; k++)
            if (!(xs[k] = input(e, nd, k, 0))) return -1;
        rc = op_concat(e, nd, xs, nd->n_input, &y);
    } else if (!strcmp(op, "Transpose")) {
        rc = op_transpose(e, nd, x, &y);
    } else if (!strcmp(op, "MatMul")) {
        const OnnxRefTensor *b = input(e, nd, 1, 0);
        rc = b ? op_matmul(e, x, b, &y) : -1;
    } else if (!strcmp(op, "Gemm")) {
        const OnnxRefTensor *b = input(e, nd, 1, 0);
        rc = b ? op_gemm(e, nd, x, b, input(e, nd, 2, 1), &y) : -1;
    } else if (!strcmp(op, "Softmax")) {
        rc = op_softmax(e, nd, x, &y);
    } else if (!strcmp(op, "LayerNormalization")) {
        const OnnxRefTensor *sc = input(e, nd, 1, 0);
        if (attr_int(nd, "stash_type", 1) != 1) return fail(e, "stash_type other than float");
        rc = sc ? op_layernorm(e, nd, x, sc, input(e, nd, 2, 1), &y) : -1;
    } else if (!strcmp(op, "Range")) {
        const OnnxRefTensor *l = input(e, nd, 1, 0), *d = input(e, nd, 2, 0);
        rc = l && d ? op_range(e, x, l, d, &y) : -1;
    } else if (!strcmp(op, "Cast")) {
        rc = op_cast(e, nd, x, &y);
    } else {
        return fail(e, "operator not implemented");
    }
    if (rc) {
        onnx_ref_free(&y);
        return -1;
    }
    return bind(e, nd->output[0], y, 1);
}

static int copy_out(Env *e, const char *name, OnnxRefTensor *out) {
    const Value *v = lookup(e, name);
    if (!v) return fail(e, "no value named %s", name);
    if (t_new(e, out, v->t.dtype, v->t.ndim, v->t.dims)) return -1;
    for (size_t k = 0; k < v->t.n; k++) put(out, k, get(&v->t, k));
    return 0;
}

int onnx_ref_run(const char *path, size_t n_in, const char *const *in_names, const OnnxRefTensor *in, size_t n_out,
                 const char *const *out_names, OnnxRefTensor *out, char *err, size_t errsz) {
    Env e = {NULL, 0, 0, NULL, err, errsz};
    err[0] = '\0';
    for (size_t k = 0; k < n_out; k++) memset(&out[k], 0, sizeof out[k]);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(&e, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
    size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
    Onnx__ModelProto *mp = got == (size_t)len ? onnx__model_proto__unpack(NULL, got, buf) : NULL;
    int rc = 0;
    if (!mp || !mp->graph) {
        rc = fail(&e, "%s: not an ONNX model", path);
        goto done;
    }
    const Onnx__GraphProto *g = mp->graph;
    for (size_t k = 0; k < mp->n_opset_import; k++)
        if ((!mp->opset_import[k]->domain || !mp->opset_import[k]->domain[0]) && mp->opset_import[k]->version != 17) {
            rc = fail(&e, "opset %lld (17 implemented)", (long long)mp->opset_import[k]->version);
            goto done;
        }
    /* the graph's inputs must all be given, with their declared element type and rank */
    for (size_t k = 0; !rc && k < g->n_input; k++) {
        const Onnx__ValueInfoProto *vi = g->input[k];
        size_t j = 0;
        while (j < n_in && strcmp(in_names[j], vi->name)) j++;
        if (j == n_in) {
            rc = fail(&e, "graph input %s not given", vi->name);
            break;
        }
        const Onnx__TypeProto__Tensor *tt = vi->type ? vi->type->tensor_type : NULL;
        if (tt && (tt->elem_type != in[j].dtype || (tt->shape && tt->shape->n_dim != (size_t)in[j].ndim))) {
            rc = fail(&e, "graph input %s: type %d rank %d given, %d rank %zu declared", vi->name, in[j].dtype,
                      in[j].ndim, tt->elem_type, tt->shape ? tt->shape->n_dim : 0);
            break;
        }
        rc = bind(&e, vi->name, in[j], 0);
    }
    for (size_t k = 0; !rc && k < g->n_initializer; k++) {
        OnnxRefTensor t;
        rc = from_proto(&e, g->initializer[k], &t) || bind(&e, g->initializer[k]->name, t, 1);
    }
    for (size_t k = 0; !rc && k < g->n_node; k++) rc = run_node(&e, g->node[k]);
    e.node = NULL;
    for (size_t k = 0; !rc && k < n_out; k++) rc = copy_out(&e, out_names[k], &out[k]);
done:
    if (rc)
        for (size_t k = 0; k < n_out; k++) onnx_ref_free(&out[k]);
    for (size_t k = 0; k < e.n; k++)
        if (e.v[k].owned) onnx_ref_free(&e.v[k].t);
    free(e.v);
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    return rc ? -1 : 0;
}
