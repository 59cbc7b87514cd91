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
/* onnx_read_file: see onnx_import.h */
/* Deepest message nesting pb_guard accepts (real ONNX models need < 20). */
#define PB_MAX_DEPTH 64
/* Counts pb_guard bounds before protobuf-c allocates one struct per element:
 * X(MSG, FIELD_NUMBER, FIELD, OWNER, UP, LIMIT, WHAT): occurrences of field
 * FIELD_NUMBER of message MSG, counted per OWNER message UP levels above it
 * (0: per MSG itself), at most LIMIT.  Far above real exports (BERT-large:
 * ~10^4 nodes; the biggest LLM exports ~10^5 initializers). */
#define PB_LIMITS(X) \
	X(graph_proto, 1,  node,        graph_proto, 0, 1000000, "nodes in one graph") \
	X(graph_proto, 5,  initializer, graph_proto, 0, 1000000, "initializers in one graph") \
	X(graph_proto, 15, sparse_initializer, graph_proto, 0, 1000000, "sparse initializers in one graph") \
	X(graph_proto, 11, input,       graph_proto, 0, 1000000, "graph inputs") \
	X(graph_proto, 12, output,      graph_proto, 0, 1000000, "graph outputs") \
	X(graph_proto, 13, value_info,  graph_proto, 0, 4000000, "value_info entries in one graph") \
	X(node_proto,  1,  input,       node_proto,  0, 100000,  "inputs of one node") \
	X(node_proto,  2,  output,      node_proto,  0, 100000,  "outputs of one node") \
	X(node_proto,  5,  attribute,   node_proto,  0, 10000,   "attributes of one node") \
	X(node_proto,  1,  input,       graph_proto, 1, 4000000, "node inputs in one graph") \
	X(node_proto,  2,  output,      graph_proto, 1, 4000000, "node outputs in one graph") \
	X(function_proto, 7, node,      function_proto, 0, 1000000, "nodes in one function") \
	X(model_proto, 25, functions,   model_proto, 0, 10000,   "functions") \
	X(model_proto, 8,  opset_import, model_proto, 0, 10000,  "opset imports")
/* Bounded, non-recursive scan of protobuf wire data against the message
 * descriptor root, before protobuf-c unpacks it (pb_guard.c): refuses
 * nesting deeper than PB_MAX_DEPTH, more elements than PB_LIMITS allows,
 * string fields with a NUL byte, and malformed wire data.  kind names what the bytes should be ("ONNX model").
 * 0 or -1 with diag "FILE: ...". */
int pb_guard(const void *buf, size_t len, const ProtobufCMessageDescriptor *root,
             const char *file, const char *kind, Diag *diag);
/* "[4, 4]" */
void onnx_dims_str(const int64_t *dims, int rank, char *buf, size_t n);

/* ---- versioned import (onnx_upgrade.c, table in onnx_versions.def) -----
 *
 * kiln's IR form of each ONNX op is its newest ONNX form.  A node of an
 * older version is either the same, or rewritten at import by a named
 * upgrade into IR nodes of the new form, or refused. */

#define ONNX_UPGRADES(X) \
	X(drop_consumed) X(broadcast_v1) X(cast_v1) X(clip_v6) X(dropout_v1) \
	X(dropout_v7) X(dropout_v10) X(gemm_v1) X(reshape_v1) X(squeeze_v1) \
	X(unsqueeze_v1) X(concat_v1) X(split_v1) X(split_v2) X(slice_v1) \
	X(softmax_v1) X(reduce_axes_attr) X(castlike) X(pad_v2) \
	X(topk_v1)

typedef enum OnnxAction {
	UA_same, UA_unsupported,
#define X(n) UA_##n,
	ONNX_UPGRADES(X)
#undef X
	UA_COUNT
} OnnxAction;

/* The row of a default-domain op_type at opset: its action, and in *since
 * its since-version.  -1 if op_type is not one of kiln's ops (nor
 * Constant, nor an ONNX op that an upgrade imports as one: CastLike). */
int onnx_op_version(const char *op_type, int64_t opset, int64_t *since);
const char *onnx_action_name(int act);
/* Number of rows of op (an Op, or OP_COUNT for Constant); for tests. */
int onnx_op_nversions(int op);

typedef struct Loader Loader;

/* An ONNX node being imported, as an upgrade sees it. */
typedef struct OnnxNode {
	Loader *L;
	Graph *g;
	Diag *diag;
	const char *file, *where;   /* for messages: "t.onnx", "node 'n' (Op)" */
	const char *name;           /* node name (generated when empty) */
	const Onnx__NodeProto *nd;
	int op;                     /* Op */
	int64_t since;              /* since-version of its row */
	int nin, nout;              /* trailing empty names dropped */
	const ValId *in;            /* resolved inputs, -1 for an empty name */
	const char *const *out;     /* output names, NULL for an empty one */
} OnnxNode;

/* Runs upgrade act on u: creates the IR nodes of the new form; *last is
 * the node whose outputs are the ONNX node's (named u->out).  0 or -1 with
 * diag naming the file and node. */
int onnx_upgrade(int act, const OnnxNode *u, NodeId *last);

/* com.microsoft ops (onnx_contrib.c, table in onnx_contrib.def): is
 * op_type one kiln imports; and its import, as onnx_upgrade, but the IR
 * value of ONNX output i goes to res[i] (res has u->nout entries, -1 on
 * entry; an output left -1 is *last's output i). */
bool onnx_contrib_known(const char *op_type);
/* Is op_type one that ONNX Runtime registers in the ONNX domain (its
 * SimplifiedLayerNormalization), imported as the com.microsoft op? */
bool onnx_contrib_onnx_domain(const char *op_type);
int onnx_contrib_import(const OnnxNode *u, NodeId *last, ValId *res);

/* onnx_load.c, for the upgrades: */
/* Copies the node's attributes to IR node n, except those named in skip
 * (NULL-terminated, may be NULL). */
int onnx_node_attrs(const OnnxNode *u, NodeId n, const char *const *skip);
/* dtype and rank of v as far as shape inference of the graph imported so
 * far tells (DT_UNDEF, -1 when unknown).  Infers lazily: nothing runs for
 * models that never ask. */
void onnx_value_type(const OnnxNode *u, ValId v, DType *dt, int *rank);
/* A constant named after the node ("<node>.<what>"). */
ValId onnx_node_const(const OnnxNode *u, const char *what, DType t, int rank,
                      const int64_t *dims, const void *data, size_t nbytes);

#endif
