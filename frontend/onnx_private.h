/* Frontend-private: decoding of ONNX TensorProto contents, shared by the
 * model loader (initializers, Constant nodes, tensor attributes) and the
 * .pb reader.  Not part of the frontend's public interface. */
#ifndef KILN_ONNX_PRIVATE_H
#define KILN_ONNX_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"
#include "onnx.pb-c.h"

/* A decoded TensorProto: header (dtype, dims) and, for tensors whose data
 * lives in the proto, the row-major little-endian bytes. */
typedef struct OnnxData {
	DType dtype;
	int rank;
	int64_t dims[IR_MAX_RANK];
	size_t numel, nbytes;
	bool external;       /* data_location EXTERNAL: data not filled in */
	const void *data;    /* points into the proto or into owned */
	void *owned;         /* malloc'd conversion buffer, or NULL */
} OnnxData;

/* Checks dtype, rank and dims (negative, overflow) and fills the header.
 * what names the tensor in messages ("initializer 'W'"); file names the
 * file.  0 or -1 with diag "FILE: WHAT: ...". */
int onnx_tensor_header(const Onnx__TensorProto *t, const char *file, const char *what,
                       OnnxData *o, Diag *diag);
/* onnx_tensor_header plus the data of a tensor stored in the proto, in any
 * storage form (raw_data or the typed fields).  External tensors are
 * returned with external=true and data NULL. */
int onnx_tensor_decode(const Onnx__TensorProto *t, const char *file, const char *what,
                       OnnxData *o, Diag *diag);
void onnx_data_free(OnnxData *o);
/* Reads a whole file into a malloc'd buffer (*buf is never NULL on
 * success, even for an empty file).  0 or -1 with diag "PATH: ...". */
int onnx_read_file(const char *path, void **buf, size_t *len, Diag *diag);
/* Deepest message nesting pb_guard accepts (real ONNX models need < 20). */
#define PB_MAX_DEPTH 64
/* Bounded, non-recursive scan of protobuf wire data against the message
 * descriptor root, before protobuf-c unpacks it (pb_guard.c): refuses
 * nesting deeper than PB_MAX_DEPTH, string fields with a NUL byte, and
 * malformed wire data.  kind names what the bytes should be ("ONNX model").
 * 0 or -1 with diag "FILE: ...". */
int pb_guard(const void *buf, size_t len, const ProtobufCMessageDescriptor *root,
             const char *file, const char *kind, Diag *diag);
/* "[4, 4]" */
void onnx_dims_str(const int64_t *dims, int rank, char *buf, size_t n);

#endif
