/* kiln's tensor IR.
 *
 * A Graph owns everything: values, nodes, attributes, symbolic dims and
 * constant data live in arrays and an arena that ir_graph_free releases in
 * one call.  Operands are small integer handles (ValId, NodeId, DimId) into
 * the graph's arrays, so passes never hold dangling pointers across growth.
 *
 * The IR knows neither ONNX nor LLVM.  Primitive ops follow ONNX semantics
 * (see ops.def); fused ops are kiln's own.
 *
 * Errors that input can cause are returned as values (Diag); asserts are
 * for internal bugs only.
 */
#ifndef KILN_IR_H
#define KILN_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

#include "diag.h"

typedef struct Graph Graph;
typedef int32_t ValId;   /* index into Graph.vals, -1 = none (absent optional input) */
typedef int32_t NodeId;  /* index into Graph.nodes, -1 = none */
typedef int32_t DimId;   /* handle of a hash-consed symbolic dim expression */

#define IR_MAX_RANK 8

/* ---- ops ---------------------------------------------------------------- */

enum OpKind { K_UNARY, K_BINARY, K_VARIADIC, K_REDUCE, K_SHAPE, K_OTHER, K_FUSED };

typedef enum Op {
#define X(name, ...) OP_##name,
#include "ops.def"
#undef X
	OP_COUNT
} Op;

typedef struct OpInfo {
	const char *name;
	int8_t min_in, max_in, min_out, max_out; /* max -1: variadic */
	uint8_t kind;                            /* enum OpKind */
} OpInfo;

extern const OpInfo ir_opinfo[OP_COUNT];
const char *ir_opname(Op op);
int ir_op_lookup(const char *name);      /* -1 if unknown */

/* ---- dtypes ------------------------------------------------------------- */
/* Numbered as ONNX's TensorProto.DataType so the frontend and the runtime's
 * .pb reader share them without a table. */
typedef enum DType {
	DT_UNDEF = 0,
	DT_F32 = 1, DT_U8 = 2, DT_I8 = 3, DT_U16 = 4, DT_I16 = 5,
	DT_I32 = 6, DT_I64 = 7, DT_STRING = 8, DT_BOOL = 9, DT_F16 = 10,
	DT_F64 = 11, DT_U32 = 12, DT_U64 = 13, DT_BF16 = 16,
} DType;

const char *ir_dtype_name(DType t);      /* "f32", "i64", "bool", ... */
int ir_dtype_lookup(const char *name);   /* inverse, -1 if unknown */
size_t ir_dtype_size(DType t);           /* bytes per element, 0 if unsupported */
bool ir_dtype_is_float(DType t);
bool ir_dtype_is_int(DType t);           /* signed or unsigned integers (not bool) */

/* ---- symbolic dims ------------------------------------------------------
 * A dim is an integer expression over named symbols (batch, sequence, s41)
 * kept in a canonical form, so two equal expressions have the same DimId
 * (s25 + s41 == s41 + s25; (b*s*64)/(b*s*4) == 16).  Non-polynomial terms
 * (floor division that is not exact, mod, max, min) are opaque atoms. */

DimId ir_dim_const(Graph *g, int64_t c);
DimId ir_dim_sym(Graph *g, const char *name);   /* interns the name */
DimId ir_dim_add(Graph *g, DimId a, DimId b);
DimId ir_dim_sub(Graph *g, DimId a, DimId b);
DimId ir_dim_mul(Graph *g, DimId a, DimId b);
DimId ir_dim_div(Graph *g, DimId a, DimId b);   /* floor division; exact when it can be */
DimId ir_dim_mod(Graph *g, DimId a, DimId b);
DimId ir_dim_max(Graph *g, DimId a, DimId b);
DimId ir_dim_min(Graph *g, DimId a, DimId b);
bool ir_dim_is_const(const Graph *g, DimId d, int64_t *c);  /* c may be NULL */
/* Writes a readable form ("s25 + s41", "batch*16", "64"); returns its length.
 * A symbol whose name is not [A-Za-z_][A-Za-z0-9_.]* is quoted: "batch-size". */
int ir_dim_str(const Graph *g, DimId d, char *buf, size_t n);
/* Parses the same form (also the ONNX dim_param strings of the dynamo
 * exporter).  Returns -1 and fills diag on a syntax error. */
DimId ir_dim_parse(Graph *g, const char *s, Diag *diag);
/* An ONNX dim_param: a name, not an expression, unless the whole string
 * parses as one (without quotes, a binary '-' spaced as the exporters print
 * it): "s25 + s41", "2*s41", "s0//2", "s0 - 1" are expressions; "batch-size",
 * "N/A", "seq len", "Max(s0, s1)" are symbols of exactly that name. */
DimId ir_dim_parse_param(Graph *g, const char *s, Diag *diag);
/* Evaluate with symbol values indexed by symbol id (see ir_sym_*). */
int64_t ir_dim_eval(const Graph *g, DimId d, const int64_t *symvals);   /* wraps on overflow */
/* The same with overflow-checked arithmetic: false when a step overflows. */
bool ir_dim_eval_checked(const Graph *g, DimId d, const int64_t *symvals, int64_t *out);
int ir_nsyms(const Graph *g);
/* A data-dependent symbol: an extent that shape inference cannot know
 * because it comes from a tensor's values at run time (a Reshape's shape
 * fed as a graph input).  Named "base[k]" (base: the output's name, k: its
 * axis), the same symbol each time it is asked for; the node that defines
 * the output binds it at run time (backend/emit_dyn.c). */
DimId ir_dim_dyn(Graph *g, const char *base, int k);
bool ir_sym_is_dyn(const Graph *g, int sym);
bool ir_dim_has_dyn(const Graph *g, DimId d);      /* mentions a data-dependent symbol */
const char *ir_sym_name(const Graph *g, int sym);
int ir_sym_lookup(const Graph *g, const char *name); /* -1 if none */

/* Expression tree view, for backends that emit code evaluating a dim.
 * The canonical form is exposed as a tree of these nodes. */
typedef enum DimKind { DIM_CONST, DIM_SYM, DIM_ADD, DIM_MUL, DIM_DIV, DIM_MOD, DIM_MAX, DIM_MIN } DimKind;
typedef struct DimNode {
	uint8_t kind;    /* DimKind */
	int64_t c;       /* DIM_CONST: value; DIM_SYM: symbol id */
	DimId a, b;      /* operands of binary kinds */
} DimNode;
const DimNode *ir_dim_node(const Graph *g, DimId d);
/* Whether extent y is x or a max() with x among its operands (nested at
 * most 8 deep): the sum of tensors whose dims are symbols of their own (a
 * dynamo export's s18 and s45) is max(s18, s45) long. */
bool ir_dim_covers(const Graph *g, DimId y, DimId x);

/* ---- assumed dim equalities (unify.c) ------------------------------------
 * A pass may assume that two dims are equal where the graph's semantics
 * leave it open (the extent of a broadcast, max(s0, s4), is the s4 that a
 * later head split takes from Shape(token_type_ids)).  The assumption is
 * recorded with the node that relied on it, the two dims become one class
 * of a union-find, and ir_value_set_shape / ir_value_set_sval write every
 * dim (graph inputs excepted: they bind the symbols) with the class
 * representatives, so Shape() of either side folds alike.  Soundness rule:
 * every assumption is checked at the start of a run, before any kernel
 * (backend: kiln__run's entry, with the graph inputs that carry its
 * symbols named), so a run that breaks it is a one-line error, never a
 * wrong answer or a buffer sized for the wrong extent; an assumption may
 * only mention symbols the graph inputs bind (no data-dependent ones). */
typedef struct IrAssume {
	DimId a, b;          /* a == b */
	const char *node;    /* the node that relied on it (arena-owned) */
} IrAssume;
/* Records a == b (b, the simpler, becomes the representative); false when
 * it cannot be assumed: already equal, or a data-dependent symbol. */
bool ir_dim_assume_eq(Graph *g, DimId a, DimId b, const char *node);
/* d with every class replaced by its representative (d when there is none). */
DimId ir_dim_canon(Graph *g, DimId d);
/* Writes which graph inputs' dims d's symbols come from ("s18: 'input_ids'
 * dim 0, s50: 'token_type_ids' dim 0"); returns the length. */
int ir_dim_origin_str(const Graph *g, DimId d, char *buf, size_t n);
/* The head-split rule: a Reshape whose input's leading dim i is a broadcast
 * extent max(..., e, ...) and whose target shape keeps e at i (a dynamo
 * export that splits heads with Shape(token_type_ids) after adding
 * input_ids' and token_type_ids' embeddings, each input with symbols of
 * its own) assumes the extent is e.  Re-infers the shapes when it assumed
 * something; returns how many, or -1 with diag. */
int ir_assume_head_split_dims(Graph *g, Diag *diag);

/* ---- attributes --------------------------------------------------------- */

typedef enum AttrKind { A_INT, A_FLOAT, A_STRING, A_INTS, A_FLOATS, A_STRINGS, A_TENSOR } AttrKind;

/* A small literal tensor (ConstantOfShape's value, fused-op parameters). */
typedef struct TensorLit {
	DType dtype;
	int rank;
	int64_t dims[IR_MAX_RANK];
	void *data;          /* arena-owned, little-endian, row-major */
	size_t nbytes;
} TensorLit;

typedef struct Attr {
	const char *name;    /* arena-owned */
	uint8_t kind;        /* AttrKind */
	int32_t n;           /* element count for list kinds */
	union {
		int64_t i;
		float f;
		const char *s;
		int64_t *ints;
		float *floats;
		const char **strs;
		TensorLit *t;
	} u;
} Attr;

/* ---- values ------------------------------------------------------------- */

typedef enum ValKind { V_NODE, V_INPUT, V_CONST } ValKind;

typedef struct Use { NodeId node; int32_t idx; } Use;

typedef struct Value {
	const char *name;     /* arena-owned; the ONNX tensor name where there is one */
	uint8_t kind;         /* ValKind */
	DType dtype;
	int8_t rank;          /* -1 = unknown (before shape inference) */
	DimId dims[IR_MAX_RANK];
	NodeId def;           /* producing node for V_NODE, else -1 */
	int32_t def_idx;      /* output index in def */
	/* constants */
	const void *data;     /* V_CONST: row-major bytes; NULL when elided (text IR) */
	size_t nbytes;
	uint64_t hash;        /* V_CONST: content hash (ir_hash_bytes) for printing/CSE */
	/* symbolic content: for small integer tensors whose elements are known
	 * as dims (shape arithmetic), one DimId per element; NULL otherwise. */
	DimId *sval;
	int32_t nsval;
	/* use list, kept right by ir_set_input and the rewriter */
	Use *uses;
	int32_t nuses, capuses;
} Value;

/* ---- nodes -------------------------------------------------------------- */

typedef struct Node {
	Op op;
	bool dead;            /* erased; skipped by iteration */
	const char *name;     /* location: the source ONNX node name (arena-owned) */
	ValId *in;  int32_t nin;
	ValId *out; int32_t nout;
	Attr *attrs; int32_t nattrs;
	/* fused nodes: the ONNX node names of the nodes they replaced (the
	 * rewriter fills it; kiln dump prints it as a comment `// from: a, b`) */
	const char **from; int32_t nfrom;
} Node;

/* ---- graph -------------------------------------------------------------- */

typedef struct Arena Arena;
struct DimTab;

typedef struct Graph {
	Arena *arena;
	const char *name;         /* graph name */
	const char *file;         /* source file, for diagnostics (may be NULL) */
	int64_t opset;            /* default-domain opset version */
	int32_t nconst_nodes;     /* ONNX Constant nodes the frontend made constants (statistics) */
	int64_t max_tensor_bytes; /* size limit of one tensor, 0: IR_MAX_TENSOR_BYTES (ir/checked.h) */
	Value *vals;   int32_t nvals,  capvals;
	Node *nodes;   int32_t nnodes, capnodes;
	NodeId *order; int32_t norder, caporder;   /* live nodes, topological */
	ValId *inputs;  int32_t ninputs;
	ValId *outputs; int32_t noutputs;
	struct DimTab *dimtab;    /* symbolic dims and symbols (ir/dim.c) */
	/* dim equalities the compiler assumed (ir/unify.c): each is checked
	 * when a run starts, and every dim is written with the representative
	 * of its class (dim_alias, malloc'd, by DimId: -1 = its own) */
	struct IrAssume *assumes; int32_t nassumes, capassumes;
	DimId *dim_alias; int32_t ndim_alias;
	void (*release)(void *); void *release_arg;  /* e.g. unmap external data */
} Graph;

/* arena.c */
Arena *ir_arena_new(void);
void *ir_arena_alloc(Arena *a, size_t n, size_t align);   /* zeroed; aborts on OOM */
char *ir_arena_strdup(Arena *a, const char *s);
void ir_arena_free(Arena *a);

/* graph.c */
Graph *ir_graph_new(const char *name);
void ir_graph_free(Graph *g);
ValId ir_value_new(Graph *g, const char *name, ValKind kind, DType t);
ValId ir_input_new(Graph *g, const char *name, DType t, int rank, const DimId *dims);
/* A constant.  data is copied into the arena unless borrow is true (then it
 * must outlive the graph: mapped external data). */
ValId ir_const_new(Graph *g, const char *name, DType t, int rank, const int64_t *dims,
                   const void *data, size_t nbytes, bool borrow);
uint64_t ir_hash_bytes(const void *data, size_t n);   /* 64-bit content hash */
ValId ir_const_scalar_i64(Graph *g, const char *name, int64_t v);
ValId ir_const_scalar_f32(Graph *g, const char *name, float v);
void ir_value_set_shape(Graph *g, ValId v, int rank, const DimId *dims);
void ir_value_set_sval(Graph *g, ValId v, int n, const DimId *elems);
/* The symbolic content of constant v from its data when v is a small integer
 * constant (i64/i32, at most 64 elements); ir_const_new does it, and so
 * must whoever gives a constant its data later. */
void ir_const_derive_sval(Graph *g, ValId v);
int64_t ir_value_numel_const(const Graph *g, ValId v);   /* -1 unless static */
ValId ir_value_find(const Graph *g, const char *name);    /* -1 if none (linear) */
/* A value name not used in g: base if free, else base.1, base.2, ...
 * (arena-owned; depends only on g's names, so the same graph gets the same). */
const char *ir_unique_name(Graph *g, const char *base);

/* Appends a node at the end of g->order.  Outputs are created fresh with
 * the given names (NULL: generated) and dtype DT_UNDEF, rank -1. */
NodeId ir_node_new(Graph *g, Op op, const char *name, int nin, const ValId *in, int nout,
                   const char **outnames);
void ir_set_input(Graph *g, NodeId n, int idx, ValId v);     /* keeps use lists */
void ir_replace_all_uses(Graph *g, ValId from, ValId to);    /* graph outputs too */
/* v is one of g->outputs (O(1): marks cached per graph).  A new g->outputs
 * array or count is noticed; a write into the array must be followed by
 * ir_outputs_changed(g). */
bool ir_is_output(const Graph *g, ValId v);
void ir_outputs_changed(Graph *g);
void ir_node_erase(Graph *g, NodeId n);                      /* drops its uses */
void ir_toposort(Graph *g);    /* rebuild g->order after rewrites (stable) */
void ir_dce(Graph *g);         /* erase nodes whose outputs are unused */

void ir_attr_set_int(Graph *g, NodeId n, const char *name, int64_t v);
void ir_attr_set_float(Graph *g, NodeId n, const char *name, float v);
void ir_attr_set_str(Graph *g, NodeId n, const char *name, const char *s);
void ir_attr_set_ints(Graph *g, NodeId n, const char *name, int cnt, const int64_t *v);
void ir_attr_set_floats(Graph *g, NodeId n, const char *name, int cnt, const float *v);
void ir_attr_set_tensor(Graph *g, NodeId n, const char *name, const TensorLit *t);
Attr *ir_attr_add(Graph *g, NodeId n, const char *name, AttrKind kind); /* raw */
const Attr *ir_attr_get(const Graph *g, NodeId n, const char *name);    /* NULL if absent */
int64_t ir_attr_int(const Graph *g, NodeId n, const char *name, int64_t dflt);
float ir_attr_float(const Graph *g, NodeId n, const char *name, float dflt);
const char *ir_attr_str(const Graph *g, NodeId n, const char *name, const char *dflt);
const int64_t *ir_attr_ints(const Graph *g, NodeId n, const char *name, int *cnt); /* NULL if absent */
const float *ir_attr_floats(const Graph *g, NodeId n, const char *name, int *cnt);

#define IR_NODE(g, id) (&(g)->nodes[(id)])
#define IR_VAL(g, id) (&(g)->vals[(id)])
/* Iterate live nodes in order:
 *   for (int i = 0; i < g->norder; i++) { Node *n = IR_NODE(g, g->order[i]); if (n->dead) continue; ... } */

/* ---- printing, parsing, checking --------------------------------------- */

/* print.c: the textual IR (see docs in print.c).  Constants of at most
 * IR_PRINT_INLINE elements are printed in full, larger ones as a hash. */
#define IR_PRINT_INLINE 16
void ir_print(FILE *f, const Graph *g);
char *ir_print_str(const Graph *g);         /* malloc'd */
void ir_print_dot(FILE *f, const Graph *g); /* Graphviz */
/* parse.c: the same format back; NULL and diag on error ("<name>:line:col: ..").
 * `//` and `#` (except `#hash<`) start comments to the end of the line.  A
 * text may hold several graphs (kiln dump --print-after-all): ir_parse
 * refuses that, ir_parse_ex picks one. */
Graph *ir_parse(const char *text, const char *filename, Diag *diag);
/* Where a parsed node or value was written: 1-based line and column, 0 0
 * for what the text did not write. */
typedef struct IrTextPos { int32_t line, col; } IrTextPos;
typedef struct IrParseOpts {
	int graph;               /* in: which graph of the text, 1-based; 0: it must hold one */
	bool want_pos;           /* in: fill node_pos and val_pos */
	int ngraphs;             /* out: graphs in the text */
	IrTextPos *node_pos;     /* out: malloc'd (caller frees), by NodeId; nnode_pos entries */
	IrTextPos *val_pos;      /* out: malloc'd (caller frees), by ValId; nval_pos entries */
	int32_t nnode_pos, nval_pos;
} IrParseOpts;
Graph *ir_parse_ex(const char *text, const char *filename, IrParseOpts *opts, Diag *diag);

/* verify.c: use-before-def, arity, dtypes and shapes consistent.  0 or -1. */
int ir_verify(const Graph *g, Diag *diag);
/* The same; *where is the node of the problem, -1 when it is no node's. */
int ir_verify_where(const Graph *g, Diag *diag, NodeId *where);

/* shape.c: infer dtype, rank and symbolic dims of every node output, and the
 * symbolic content (sval) of shape arithmetic.  0 or -1 with the node named. */
int ir_infer_shapes(Graph *g, Diag *diag);
int ir_infer_node(Graph *g, NodeId n, Diag *diag);
/* Size check of one value (ir/checked.h: its constant dims, symbolic ones
 * counted as 1, against g->max_tensor_bytes): 0, or -1 with msg ("what 'v'
 * has shape [..]: ..."). ir_infer_node applies it to every output. */
int ir_check_value_size(const Graph *g, ValId v, const char *what, char *msg, size_t n);

/* index_bound.c: the rows of the table integer value v indexes (a Gather
 * on axis 0 of a table with a constant first dim, or a table of
 * KlnEmbedLayerNorm), followed through up to four no-op views and Casts;
 * the smallest over all its uses, 0 when none is known.  Ids must be below
 * it (kiln_model_input_index_bound). */
int64_t ir_index_bound(const Graph *g, ValId v);

#endif
