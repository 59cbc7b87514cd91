/* be.h: declarations private to the LLVM backend (the files of backend/).
 *
 * be_compile (emit.c) runs: plan (plan.c: buffers, liveness, weights
 * layout) -> module (emit.c: kiln__run, its chunks and one function per
 * node, emit_fn.c: sharing identical node functions, kiln__desc, emit_dims.c: dim
 * expressions, kiln__plan, kiln__out_shapes, emit_attrs.c: kernel
 * attributes, emit_elementwise.c emit_layout.c emit_gather.c emit_reduce.c:
 * inline loops) -> codegen and link
 * (link.c) -> OUT.h (header.c). */
#ifndef KILN_BE_H
#define KILN_BE_H

#include <stdbool.h>
#include <stdint.h>

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "backend.h"
#include "ir.h"

#define BE_WALIGN 64

typedef struct BeTab BeTab;   /* emit_fn.c: byte strings -> LLVM values */

typedef struct Be {
	Graph *g;
	const BeOptions *opt;
	Diag *diag;

	/* ---- plan (plan.c) ---- */
	int32_t *vbuf;        /* per value: arena buffer, or -1 */
	int32_t *vout;        /* per value: graph output written directly, or -1 */
	int32_t *vin;         /* per value: graph input index, or -1 */
	int64_t *voff;        /* per value: offset in the weights blob, or -1 */
	int64_t *vpoff;       /* per value: offset of its panel-packed copy (rt.h), or -1 */
	int32_t *nodeidx;     /* per node: position in g->order */
	int32_t nbufs;
	ValId *bufval;        /* per buffer: its value */
	int32_t *buf_first, *buf_last;
	bool *outcopy;        /* per graph output: copied at the end of kiln__run */
	int32_t *symmap;      /* per ir symbol: index in the desc's symbols, or -1 */
	int32_t nsym;         /* desc symbols: those a graph input dim binds, then
	                       * one per distinct expression input dim (below) */
	/* Input dims that are expressions ("s25 + s41"): the runtime binds each
	 * as a pseudo-symbol named by the expression; kiln__run compares it
	 * with the expression evaluated from the real symbols. */
	int32_t nexpr;
	DimId *expr_dim;
	int32_t *expr_sym, *expr_in, *expr_axis;   /* desc symbol, first input and dim */
	/* Data-dependent shapes (rt.h): values whose dims mention a symbol
	 * ir_dim_dyn made live in f->dyn slots, not in the arena; each such
	 * symbol is bound by the first node with it as an output extent (its
	 * binder), and is a desc symbol after the input-bound ones. */
	bool dynamic;         /* the graph has any: every graph output is copied */
	int32_t *vdyn;        /* per value: its f->dyn slot, or -1 */
	int32_t ndyn;
	NodeId *binder;       /* per ir symbol: the node that binds it, or -1 */
	int32_t ndyn_sym;
	unsigned char *blob;  /* the weights, 64-byte aligned pieces */
	size_t blob_bytes;
	size_t blob_hot;      /* bytes before the lookup tables (plan.c) */

	/* ---- LLVM (emit*.c) ---- */
	LLVMContextRef ctx;
	LLVMModuleRef mod;
	LLVMBuilderRef b;     /* the current instruction stream */
	LLVMBuilderRef db;    /* entry block: dim values, allocas */
	LLVMTypeRef t_i1, t_i8, t_i32, t_i64, t_f32, t_ptr, t_void;
	LLVMTypeRef t_rt, t_kernel;
	LLVMValueRef g_weights;      /* @kiln__weights */
	bool weights_defined;        /* defined in the module (else external) */

	/* per generated function */
	LLVMValueRef fn, frame, symptr;
	LLVMValueRef weights_base;   /* f->weights, arena, bufoff, in, out (loaded in entry) */
	LLVMValueRef weights_cold;   /* f->weights_cold */
	LLVMValueRef arena, bufoff, inptrs, outptrs, dynptrs;
	LLVMValueRef rt_in, rt_out;  /* alloca'd rt_t arrays */
	int32_t max_in, max_out;
	LLVMValueRef *dmemo;         /* per DimId */
	LLVMValueRef *dovf;          /* kiln__plan only (else NULL): per DimId, i1 "overflowed" or NULL */
	int32_t ndmemo;
	bool dcheck;                 /* checked mode (kiln__plan): be_dim tracks overflow */
	bool dcheck_dyn;             /* kiln__alloc: checks data-dependent values (not kiln__plan) */
	int32_t nstr;                /* private string counter */

	/* the node function being built (emit.c), op_node -1 when none: its
	 * inputs' and outputs' data pointers are the parameters op_params
	 * (nin inputs, then the outputs), its name for messages (op_loc) the
	 * parameter op_loc_param */
	NodeId op_node;
	const char *op_loc;
	LLVMValueRef op_loc_param;
	LLVMValueRef *op_params;
	BeTab *tab;                  /* interned strings, arrays, node functions */

	/* the profiler's hooks (emit_prof.c): in the current chunk, f->prof and
	 * the array of the dims rt_prof_end gets; the next node's index */
	LLVMValueRef prof, prof_dims;
	int32_t prof_next;

	int32_t loops_closed;        /* be_loop_end calls so far: nests are not unrolled */
} Be;

/* plan.c */
int be_plan(Be *be);
void be_plan_free(Be *be);
/* The arena the runtime would plan (rt_core.c's packing) with these ir
 * symbol values, from the plan alone; -1 when a size overflows or is over
 * the size limit. */
int64_t be_plan_arena(const Be *be, const int64_t *symvals);
/* Whether v's dims mention a data-dependent symbol. */
bool be_value_dyn(const Be *be, ValId v);
/* "node 'name' (Op)" for messages; a static buffer per call site is fine */
const char *be_node_desc(const Be *be, NodeId n, char *buf, size_t len);

/* emit_dims.c */
void be_dims_begin(Be *be);                  /* reset the memo for a new function */
LLVMValueRef be_dim(Be *be, DimId d);        /* i64, built in the entry block */
LLVMValueRef be_numel(Be *be, ValId v);      /* i64 elements */
/* i64 product of v's dims [from, to) (1 when empty), built in the entry block */
LLVMValueRef be_dims_prod(Be *be, ValId v, int from, int to);
LLVMValueRef be_nbytes(Be *be, ValId v);     /* i64 bytes */
int32_t be_expr_sym(const Be *be, DimId d);  /* pseudo-symbol of an input dim expression */
void be_emit_expr_checks(Be *be);            /* in kiln__run, before the first op */
void be_emit_assume_checks(Be *be);          /* the dim equalities passes assumed (ir/unify.c), after it */
/* kiln__plan: the byte size of every buffer, after checking (overflow-
 * checked arithmetic) every dim, element count and byte size the run uses
 * against the size limit; returns rt_error naming the node when one fails. */
void be_emit_plan_fn(Be *be);
void be_emit_out_shapes_fn(Be *be);          /* kiln__out_shapes */
/* i32 kiln__alloc(f): the checked sizes of node id's outputs that live in
 * f->dyn slots, each grown by rt_dyn_alloc (the caller saves and restores
 * the function state around it). */
LLVMValueRef be_emit_dyn_alloc_fn(Be *be, NodeId id);
/* The ops that can bind data-dependent extents, and their shape
 * function's name (rt_shape_<name>); NULL if none. */
const char *be_shape_fn_name(Op op);
/* Whether node n can bind data-dependent extents: its op has a shape
 * function and the inputs it reads are there. */
bool be_node_can_bind(const Node *n);
/* Maps the symbols input dims bind to desc indices (the runtime requires
 * each desc symbol to be bound); a symbol code needs but no input binds
 * is an error. */
int be_map_symbols(Be *be);

/* emit.c helpers shared with the op emitters */
LLVMValueRef be_cstr(Be *be, const char *s);               /* private constant string */
LLVMValueRef be_i32(Be *be, int64_t v);
LLVMValueRef be_i64(Be *be, int64_t v);
LLVMValueRef be_val_ptr(Be *be, ValId v);                  /* data pointer of a value */
LLVMValueRef be_declare(Be *be, const char *name, LLVMTypeRef fnty);
/* Branch to a new block if cond is true, calling rt_error(f, fmt, args)
 * and returning its result there; continue in a fresh block. */
void be_error_if(Be *be, LLVMValueRef cond, const char *fmt, LLVMValueRef *args, int nargs);

/* emit_fn.c */
LLVMValueRef be_tab_get(BeTab **t, const void *key, size_t len);   /* NULL if absent */
void be_tab_put(BeTab **t, const void *key, size_t len, LLVMValueRef val);
void be_tab_free(BeTab **t);
/* fn (no uses yet), or an earlier function of the same structure, in
 * which case fn is deleted and *shared set. */
LLVMValueRef be_fn_share(Be *be, LLVMValueRef fn, bool *shared);

/* emit_attrs.c: attributes of a kernel call; -1 and diag on bad input. */
typedef struct BeAttrs {
	int64_t *ia; int32_t nia, capia;
	float *fa; int32_t nfa, capfa;
} BeAttrs;
int be_node_attrs(Be *be, NodeId n, BeAttrs *a);
void be_attrs_free(BeAttrs *a);
bool be_has_kernel(Op op);
int be_pad_mode(const Graph *g, NodeId n);

/* Inline op emitters: each returns 1 if it emitted the node as loops, 0 if
 * the node is not eligible (emit.c then calls the kernel), -1 on error. */
int be_emit_elementwise(Be *be, NodeId n);   /* emit_elementwise.c: f32 elementwise */
int be_emit_layout(Be *be, NodeId n);        /* emit_layout.c: copies, any dtype */
int be_emit_gather(Be *be, NodeId n);        /* emit_gather.c: Gather */
int be_emit_reduce(Be *be, NodeId n);        /* emit_reduce.c: f32 trailing reductions, Softmax */

/* emit_elementwise.c: shared loop machinery.
 * for (i = 0; i < n; i++) { body }: be_loop_begin leaves the builder in the
 * body and returns i; be_loop_end closes the body (builder after the loop). */
typedef struct BeLoop {
	LLVMBasicBlockRef pre, head, body, exit;
	LLVMValueRef i, n;
	int32_t closed;              /* be->loops_closed when it began */
} BeLoop;
LLVMValueRef be_loop_begin(Be *be, BeLoop *l, LLVMValueRef n);
void be_loop_end(Be *be, BeLoop *l);
/* Element strides of input in over out's dims (numpy broadcasting: 0 where
 * in is broadcast); dims not proven compatible at compile time are checked
 * at run time (rt_error naming the node, op and input k). */
void be_bcast_strides(Be *be, ValId in, ValId out, const char *loc, Op op, int k,
                      LLVMValueRef *stride);

/* emit_layout.c: copy helpers. */
/* dst[sum_d i_d * dst_st[d]] = src[sum_d i_d * src_st[d]] for i < dims
 * (element strides, i64 values; ety the element type); innermost loop over
 * the last dim. */
void be_copy_nest(Be *be, LLVMTypeRef ety, int rank, const LLVMValueRef *dims,
                  LLVMValueRef src, const LLVMValueRef *src_st,
                  LLVMValueRef dst, const LLVMValueRef *dst_st);
/* Integer type of an element of dtype dt (copies by size), NULL if none. */
LLVMTypeRef be_copy_type(Be *be, DType dt);
/* Dense row-major element strides of v's dims. */
void be_dense_strides(Be *be, ValId v, LLVMValueRef *st);

/* emit.c */
/* The node name for messages ("Op#id" when it has none). */
const char *be_node_loc(const Be *be, NodeId id, char *buf, size_t len);
/* If a != b at run time: rt_error "node 'loc' (op): what a, expected b". */
void be_check_eq(Be *be, const char *loc, Op op, const char *what, LLVMValueRef a, LLVMValueRef b);
/* Whether a value has storage (a node output nobody reads may have none). */
bool be_has_storage(const Be *be, ValId v);

/* emit_prof.c: the profiler (runtime/profile.c).  Node k of kiln__run
 * (the k-th live node of g->order) is wrapped as
 *   if (f->prof) rt_prof_begin(f, k);  call;  if (f->prof) rt_prof_end(f, k, dims)
 * with the dims of its operands evaluated in the profiling branch only. */
void be_prof_chunk(Be *be);                    /* a chunk's entry: f->prof, the dims array */
void be_prof_before(Be *be, int32_t k);
void be_prof_after(Be *be, NodeId id, int32_t k);
/* The descriptor's node table (rt_node_info x live nodes); *n its length. */
LLVMValueRef be_prof_nodes(Be *be, int32_t *n);

/* emit_desc.c */
void be_emit_weights_global(Be *be);
void be_emit_desc(Be *be);
/* Side files: OUT without a trailing ".so", plus ext (".h", ".weights");
 * -1 when it does not fit in len (be_path's message, diag may be NULL). */
int be_side_path(const char *out, const char *ext, char *buf, size_t len, Diag *diag);
/* link.c: the output paths' buffers, and the one checked way to build a
 * path into buf: -1 with the one-line "START...END: path too long (N
 * bytes, limit M)" in diag (when not NULL) if it does not fit. */
#define BE_PATH_MAX 4096
int be_path(Diag *diag, char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* link.c: --target-triple normalized, or this machine's (NULL); free with
 * LLVMDisposeMessage */
char *be_triple(const char *target_triple);

/* link.c */
int be_codegen(Be *be, BeStats *stats);
/* elf_weights.c */
/* Whether be_write_weights_obj works on this host (ELF64 LE x86_64/aarch64). */
bool be_weights_obj_native(void);
/* Writes path: a relocatable object for x86_64 (for aarch64 if aarch64)
 * whose section .lrodata.kiln_weights (align 64, large on x86_64) holds the
 * n bytes of blob under the hidden symbol kiln__weights. */
int be_write_weights_obj(const char *path, const void *blob, size_t n, bool aarch64, Diag *diag);
/* header.c */
int be_write_header(Be *be, const char *path);

double be_now_ms(void);

#endif
