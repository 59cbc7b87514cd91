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

/* Reads a whole regular file (FIFOs, devices, directories refused without
 * blocking) into a malloc'd buffer (*buf is never NULL on success, even for
 * an empty file).  0 or -1 with diag "PATH: ...". */
int onnx_read_file(const char *path, void **buf, size_t *len, Diag *diag);

/* The weights of an ONNX model by name (kiln compile X.ir --weights-from=):
 * the model loaded as onnx_load_file loads it, its constants (initializers,
 * Constant nodes' outputs, the constants the import's upgrades made)
 * indexed by name.  The tensors stay valid until onnx_weights_close. */
typedef struct OnnxWeights OnnxWeights;
typedef struct OnnxWeight {
	const char *name;
	DType dtype;
	int rank;
	int64_t dims[IR_MAX_RANK];
	const void *data;    /* row-major, little-endian */
	size_t nbytes;
	uint64_t hash;       /* ir_hash_bytes(data, nbytes), as the text IR prints it */
} OnnxWeight;
OnnxWeights *onnx_weights_open(const char *path, Diag *diag);
/* 1 and *w filled when the model has a constant of that name, else 0. */
int onnx_weights_find(const OnnxWeights *ws, const char *name, OnnxWeight *w);
/* The loaded graph, e.g. to derive further constants from it (passes);
 * owned by ws, which must outlive what borrows its constants' data. */
Graph *onnx_weights_graph(OnnxWeights *ws);
void onnx_weights_close(OnnxWeights *ws);

/* The com.microsoft ops kiln imports (frontend/onnx_contrib.def), for
 * `kiln ops`: the i-th op's schema (an input or output whose kind is
 * ONNX_IO_REFUSED is one kiln refuses when present) and, in *becomes, what
 * the import turns it into; NULL past the last. */
#define ONNX_IO_REFUSED 8
struct IrOpSchema;
const struct IrOpSchema *onnx_contrib_schema(int i, const char **becomes);

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
