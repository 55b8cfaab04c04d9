/*
 * onnx_ref.h — a small ONNX interpreter for the tests.
 *
 * Runs the graphs miles_export_onnx writes (opset 17: the 25 operators it
 * emits) with plain loops and double accumulators, so that CI checks what an
 * exported graph computes, not only its structure, without onnxruntime.  It
 * follows the ONNX operator specification (shapes included: a Range needs
 * scalars, a Gather with a scalar index drops the axis), and refuses what it
 * does not implement rather than guessing.  test_export checks it against the
 * onnxruntime outputs recorded in tests/fixtures/export_io.safetensors.
 */
#ifndef MILES_ONNX_REF_H
#define MILES_ONNX_REF_H

#include <stddef.h>
#include <stdint.h>

#define ONNX_REF_MAXDIM 8

typedef struct {
    int dtype;                       /* ONNX TensorProto data type: 1 float, 7 int64 */
    int ndim;                        /* 0: a scalar */
    int64_t dims[ONNX_REF_MAXDIM];
    size_t n;                        /* elements */
    float *f;                        /* dtype 1 */
    int64_t *i;                      /* dtype 7 */
} OnnxRefTensor;

/* Runs the ONNX model in `path` on the named inputs and copies the named
 * values out (graph outputs or any node's output, e.g. an intermediate).
 * Returns 0, or -1 with a message naming the node and why in err. */
int onnx_ref_run(const char *path, size_t n_in, const char *const *in_names, const OnnxRefTensor *in, size_t n_out,
                 const char *const *out_names, OnnxRefTensor *out, char *err, size_t errsz);

/* A tensor over caller data (not owned: do not free it). */
OnnxRefTensor onnx_ref_view_f32(float *data, int ndim, const int64_t *dims);
/* A new int64 tensor holding the int32 values (owned: onnx_ref_free). */
OnnxRefTensor onnx_ref_i64_from_i32(const int32_t *data, int ndim, const int64_t *dims);
void onnx_ref_free(OnnxRefTensor *t);

#endif
