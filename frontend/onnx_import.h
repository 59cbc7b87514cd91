/* The ONNX frontend: ModelProto -> IR, and TensorProto .pb files.
 *
 * The loader builds the IR graph only (values, nodes, attributes, constants,
 * graph inputs/outputs with their declared symbolic dims); shape inference
 * is ir_infer_shapes' job.  Constant nodes become constants.  Every error is
 * one line in diag naming the file and the node or tensor. */
#ifndef KILN_ONNX_IMPORT_H
#define KILN_ONNX_IMPORT_H

#include <stddef.h>
#include "ir.h"

/* Loads path (external data relative to its folder, mapped, never outside
 * it).  NULL and diag on error. */
Graph *onnx_load_file(const char *path, Diag *diag);
/* The same from memory; dir is the folder external data is relative to
 * (NULL: external data refused).  name is used in messages. */
Graph *onnx_load_buffer(const void *buf, size_t len, const char *name, const char *dir, Diag *diag);

/* One tensor of an ONNX backend-test data set (input_K.pb / output_K.pb). */
typedef struct PbTensor {
	char *name;          /* malloc'd, may be NULL */
	DType dtype;
	int rank;
	int64_t dims[IR_MAX_RANK];
	void *data;          /* malloc'd, row-major, little-endian */
	size_t nbytes;
} PbTensor;

int pb_tensor_read(const char *path, PbTensor *t, Diag *diag);
int pb_tensor_write(const char *path, const PbTensor *t, Diag *diag);
void pb_tensor_free(PbTensor *t);

#endif
