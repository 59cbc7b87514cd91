/* emit.c: be_compile, and the module's main function kiln__run.
 *
 * kiln__run(kiln_frame *f) checks the input dims that are expressions,
 * calls the chunks kiln__chunk_0..K in order, then the functions that
 * copy the graph outputs that are not written in place (kiln__outputs*,
 * 32 outputs each); the first non-zero status is returned.  A chunk calls, for at most CHUNK_NODES live nodes of g->order,
 * the node's function i32 kiln__node_N(f, loc, data pointers of its inputs
 * and outputs) (pointers from the plan, computed in the chunk).  A node's
 * function is either inline loops, or a call of its kernel
 * rt_op_<Op>(f, loc, in, nin, out, nout, ia, nia, fa, nfa) with the rt_t
 * arrays of its inputs and outputs filled (dims evaluated from f->sym).
 * Nodes whose functions come out identical share one (emit_fn.c), so
 * LLVM's work grows with the distinct nodes, and no function grows with
 * the graph: compile time is linear in the ops.  Inline (everything else,
 * and other dtypes, call the kernel):
 *   emit_elementwise.c  f32 Add Sub Mul Div Relu Exp Tanh Sqrt Erf Neg Abs
 *                       Sigmoid Where Pow(2, 0.5), numpy broadcasting;
 *   emit_layout.c       Transpose Expand Concat Split Slice (constant
 *                       starts/ends/axes/steps) Reshape Flatten Squeeze
 *                       Unsqueeze Identity, any dtype of 1/2/4/8 bytes;
 *   emit_gather.c       Gather (any axis, i32/i64 indices, bounds-checked);
 *   emit_reduce.c       f32 ReduceSum/Mean/Max/Min over trailing axes,
 *                       f32 Softmax over the last axis. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "be.h"
#include "rt.h"

double be_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

LLVMValueRef be_i32(Be *be, int64_t v)
{
	return LLVMConstInt(be->t_i32, (unsigned long long)v, 1);
}

LLVMValueRef be_i64(Be *be, int64_t v)
{
	return LLVMConstInt(be->t_i64, (unsigned long long)v, 1);
}

/* Strings are interned (one global per content), so the functions of two
 * nodes refer to the same ones; in a node function the node's name is its
 * parameter (same content at run time). */
LLVMValueRef be_cstr(Be *be, const char *s)
{
	if (be->op_loc_param && strcmp(s, be->op_loc) == 0)
		return be->op_loc_param;
	size_t len = strlen(s);
	char *key = malloc(len + 1);
	if (!key)
		abort();
	key[0] = 's';
	memcpy(key + 1, s, len);
	LLVMValueRef g = be_tab_get(&be->tab, key, len + 1);
	if (!g) {
		char name[32];
		snprintf(name, sizeof name, ".str.%d", be->nstr++);
		LLVMValueRef init = LLVMConstStringInContext2(be->ctx, s, len, 0);
		g = LLVMAddGlobal(be->mod, LLVMTypeOf(init), name);
		LLVMSetInitializer(g, init);
		LLVMSetGlobalConstant(g, 1);
		LLVMSetLinkage(g, LLVMPrivateLinkage);
		LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
		LLVMSetAlignment(g, 1);
		be_tab_put(&be->tab, key, len + 1, g);
	}
	free(key);
	return g;
}

LLVMValueRef be_declare(Be *be, const char *name, LLVMTypeRef fnty)
{
	LLVMValueRef f = LLVMGetNamedFunction(be->mod, name);
	return f ? f : LLVMAddFunction(be->mod, name, fnty);
}

/* Element i of a pointer array (f->in, f->out), loaded in the current block. */
static LLVMValueRef load_ptr_elem(Be *be, LLVMValueRef base, int64_t i)
{
	LLVMValueRef idx = be_i64(be, i);
	LLVMValueRef p = LLVMBuildGEP2(be->b, be->t_ptr, base, &idx, 1, "");
	return LLVMBuildLoad2(be->b, be->t_ptr, p, "");
}

/* Byte off of the weights blob: f->weights, or f->weights_cold from
 * blob_hot on (plan.c). */
static LLVMValueRef weight_ptr(Be *be, int64_t off)
{
	bool cold = off >= (int64_t)be->blob_hot;
	LLVMValueRef o = be_i64(be, cold ? off - (int64_t)be->blob_hot : off);
	return LLVMBuildGEP2(be->b, be->t_i8, cold ? be->weights_cold : be->weights_base, &o, 1, "");
}

LLVMValueRef be_val_ptr(Be *be, ValId v)
{
	if (be->op_node >= 0) {
		/* in the node's function: a parameter */
		const Node *n = IR_NODE(be->g, be->op_node);
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] == v)
				return be->op_params[k];
		for (int k = 0; k < n->nout; k++)
			if (n->out[k] == v)
				return be->op_params[n->nin + k];
	}
	const Value *val = IR_VAL(be->g, v);
	if (be->vin[v] >= 0 && val->kind == V_INPUT)
		return load_ptr_elem(be, be->inptrs, be->vin[v]);
	if (val->kind == V_CONST)
		return weight_ptr(be, be->voff[v]);
	if (be->vout[v] >= 0)
		return load_ptr_elem(be, be->outptrs, be->vout[v]);
	if (be->vdyn[v] >= 0)   /* after the node's kiln__alloc: loaded where used */
		return load_ptr_elem(be, be->dynptrs, be->vdyn[v]);
	if (be->vbuf[v] >= 0) {
		LLVMValueRef idx = be_i64(be, be->vbuf[v]);
		LLVMValueRef po = LLVMBuildGEP2(be->b, be->t_i64, be->bufoff, &idx, 1, "");
		LLVMValueRef off = LLVMBuildLoad2(be->b, be->t_i64, po, "");
		return LLVMBuildGEP2(be->b, be->t_i8, be->arena, &off, 1, "");
	}
	return LLVMConstNull(be->t_ptr);
}

/* Continue in a new block; returns it. */
static LLVMBasicBlockRef new_block(Be *be, const char *name)
{
	return LLVMAppendBasicBlockInContext(be->ctx, be->fn, name);
}

/* if (rc != 0) return rc; */
static void return_if_nonzero(Be *be, LLVMValueRef rc)
{
	LLVMBasicBlockRef fail = new_block(be, "fail"), ok = new_block(be, "ok");
	LLVMBuildCondBr(be->b, LLVMBuildICmp(be->b, LLVMIntNE, rc, be_i32(be, 0), ""), fail, ok);
	LLVMPositionBuilderAtEnd(be->b, fail);
	LLVMBuildRet(be->b, rc);
	LLVMPositionBuilderAtEnd(be->b, ok);
}

void be_error_if(Be *be, LLVMValueRef cond, const char *fmt, LLVMValueRef *args, int nargs)
{
	LLVMBasicBlockRef err = new_block(be, "err"), ok = new_block(be, "ok");
	LLVMBuildCondBr(be->b, cond, err, ok);
	LLVMPositionBuilderAtEnd(be->b, err);
	LLVMTypeRef ps[2] = {be->t_ptr, be->t_ptr};
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, ps, 2, 1);
	LLVMValueRef a[8];
	a[0] = be->frame;
	a[1] = be_cstr(be, fmt);
	for (int i = 0; i < nargs && i < 6; i++)
		a[2 + i] = args[i];
	LLVMValueRef rc = LLVMBuildCall2(be->b, fty, be_declare(be, "rt_error", fty), a,
	                                 (unsigned)(2 + (nargs < 6 ? nargs : 6)), "");
	LLVMBuildRet(be->b, rc);
	LLVMPositionBuilderAtEnd(be->b, ok);
}

void be_check_eq(Be *be, const char *loc, Op op, const char *what, LLVMValueRef a, LLVMValueRef b)
{
	if (a == b)
		return;
	LLVMValueRef args[5] = {be_cstr(be, loc), be_cstr(be, ir_opname(op)), be_cstr(be, what), a, b};
	be_error_if(be, LLVMBuildICmp(be->b, LLVMIntNE, a, b, ""),
	            "node '%s' (%s): %s %lld, expected %lld", args, 5);
}

bool be_has_storage(const Be *be, ValId v)
{
	return v >= 0 && (IR_VAL(be->g, v)->kind != V_NODE || be->vbuf[v] >= 0 || be->vout[v] >= 0 ||
	                  be->vdyn[v] >= 0);
}

/* Stores one rt_t: data (be_val_ptr, or data when not NULL), dtype, rank,
 * dims. */
static void fill_rt(Be *be, LLVMValueRef arr, int k, ValId v, LLVMValueRef data)
{
	LLVMBuilderRef B = be->b;
	LLVMValueRef idx = be_i64(be, k);
	LLVMValueRef t = LLVMBuildGEP2(B, be->t_rt, arr, &idx, 1, "");
	if (!be_has_storage(be, v)) {
		/* absent optional input or output without storage */
		LLVMBuildStore(B, LLVMConstNull(be->t_ptr), LLVMBuildStructGEP2(B, be->t_rt, t, 0, ""));
		LLVMBuildStore(B, be_i32(be, 0), LLVMBuildStructGEP2(B, be->t_rt, t, 1, ""));
		LLVMBuildStore(B, be_i32(be, 0), LLVMBuildStructGEP2(B, be->t_rt, t, 2, ""));
		return;
	}
	const Value *val = IR_VAL(be->g, v);
	LLVMBuildStore(B, data ? data : be_val_ptr(be, v), LLVMBuildStructGEP2(B, be->t_rt, t, 0, ""));
	LLVMBuildStore(B, be_i32(be, val->dtype), LLVMBuildStructGEP2(B, be->t_rt, t, 1, ""));
	LLVMBuildStore(B, be_i32(be, val->rank), LLVMBuildStructGEP2(B, be->t_rt, t, 2, ""));
	LLVMValueRef dims = LLVMBuildStructGEP2(B, be->t_rt, t, 3, "");
	for (int d = 0; d < val->rank; d++) {
		LLVMValueRef ix[2] = {be_i64(be, 0), be_i64(be, d)};
		LLVMValueRef p = LLVMBuildGEP2(B, LLVMArrayType2(be->t_i64, KILN_MAX_RANK), dims, ix, 2, "");
		LLVMBuildStore(B, be_dim(be, val->dims[d]), p);
	}
}

static LLVMValueRef new_const_array(Be *be, LLVMTypeRef ety, const void *vals, int n, bool isf);

/* A private constant array of ia or fa values (interned); null when empty. */
static LLVMValueRef const_array(Be *be, LLVMTypeRef ety, const void *vals, int n, bool isf)
{
	if (n == 0)
		return LLVMConstNull(be->t_ptr);
	size_t bytes = (size_t)n * (isf ? sizeof(float) : sizeof(int64_t));
	unsigned char *key = malloc(bytes + 1);
	if (!key)
		abort();
	key[0] = isf ? 'f' : 'i';
	memcpy(key + 1, vals, bytes);
	LLVMValueRef g = be_tab_get(&be->tab, key, bytes + 1);
	if (!g) {
		g = new_const_array(be, ety, vals, n, isf);
		be_tab_put(&be->tab, key, bytes + 1, g);
	}
	free(key);
	return g;
}

static LLVMValueRef new_const_array(Be *be, LLVMTypeRef ety, const void *vals, int n, bool isf)
{
	LLVMValueRef *cv = malloc((size_t)n * sizeof *cv);
	if (!cv)
		abort();
	for (int i = 0; i < n; i++)
		cv[i] = isf ? LLVMConstReal(ety, ((const float *)vals)[i])
		            : LLVMConstInt(ety, (unsigned long long)((const int64_t *)vals)[i], 1);
	LLVMValueRef init = LLVMConstArray2(ety, cv, (uint64_t)n);
	free(cv);
	LLVMValueRef g = LLVMAddGlobal(be->mod, LLVMTypeOf(init), ".attrs");
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
	return g;
}

const char *be_node_loc(const Be *be, NodeId id, char *buf, size_t len)
{
	const Node *n = IR_NODE(be->g, id);
	if (n->name && n->name[0])
		return n->name;
	snprintf(buf, len, "%s#%d", ir_opname(n->op), (int)id);
	return buf;
}

static int emit_kernel_call(Be *be, NodeId id)
{
	const Node *n = IR_NODE(be->g, id);
	char nd[300];
	if (!be_has_kernel(n->op))
		return diag_fail(be->diag, "%s: not supported by the backend",
		                 be_node_desc(be, id, nd, sizeof nd));
	BeAttrs at = {0};
	if (be_node_attrs(be, id, &at)) {
		be_attrs_free(&at);
		return -1;
	}
	/* in the node's function: the data pointers are its parameters */
	for (int k = 0; k < n->nin; k++)
		fill_rt(be, be->rt_in, k, n->in[k], be->op_params[k]);
	for (int k = 0; k < n->nout; k++)
		fill_rt(be, be->rt_out, k, n->out[k], be->op_params[n->nin + k]);
	char kname[64], lb[64];
	snprintf(kname, sizeof kname, "rt_op_%s", ir_opname(n->op));
	LLVMValueRef args[10] = {
		be->frame, be_cstr(be, be_node_loc(be, id, lb, sizeof lb)),
		be->rt_in, be_i32(be, n->nin), be->rt_out, be_i32(be, n->nout),
		const_array(be, be->t_i64, at.ia, at.nia, false), be_i32(be, at.nia),
		const_array(be, be->t_f32, at.fa, at.nfa, true), be_i32(be, at.nfa),
	};
	be_attrs_free(&at);
	LLVMValueRef rc = LLVMBuildCall2(be->b, be->t_kernel, be_declare(be, kname, be->t_kernel),
	                                 args, 10, "");
	return_if_nonzero(be, rc);
	return 0;
}

/* The node as inline loops: 1 if emitted, 0 for the kernel, -1 on error. */
static int emit_inline(Be *be, NodeId id)
{
	int (*const emitters[])(Be *, NodeId) = {be_emit_elementwise, be_emit_layout,
	                                         be_emit_gather, be_emit_reduce};
	for (size_t k = 0; k < sizeof emitters / sizeof *emitters; k++) {
		int r = emitters[k](be, id);
		if (r)
			return r;
	}
	return 0;
}

/* The copies of outputs [*k, ...) that are not written in place, at most
 * COPY_OUTPUTS of them; *k moves past them. */
#define COPY_OUTPUTS 32

static void emit_output_copies(Be *be, int *k)
{
	Graph *g = be->g;
	for (int ncopy = 0; *k < g->noutputs && ncopy < COPY_OUTPUTS; (*k)++) {
		if (!be->outcopy[*k])
			continue;
		ValId v = g->outputs[*k];
		LLVMValueRef src = be_val_ptr(be, v);
		if (IR_VAL(g, v)->kind == V_NODE && be->vout[v] >= 0 && be->vout[v] != *k)
			src = load_ptr_elem(be, be->outptrs, be->vout[v]);
		LLVMValueRef dst = load_ptr_elem(be, be->outptrs, *k);
		LLVMBuildMemCpy(be->b, dst, 1, src, 1, be_nbytes(be, v));
		ncopy++;
	}
}

/* Loads the frame fields kiln__run uses, in the entry block. */
static void load_frame(Be *be)
{
	LLVMValueRef *dst[8] = {&be->inptrs, &be->outptrs, &be->arena, &be->bufoff, &be->symptr,
	                        &be->weights_base, &be->weights_cold, &be->dynptrs};
	static const char *names[8] = {"in", "out", "arena", "bufoff", "sym", "weights",
	                               "weights_cold", "dyn"};
	static const int field[8] = {0, 1, 2, 3, 4, 5, 8, 9};   /* kiln_frame, all pointers */
	for (int i = 0; i < 8; i++) {
		LLVMValueRef idx = be_i64(be, field[i]);
		LLVMValueRef p = LLVMBuildGEP2(be->db, be->t_ptr, be->frame, &idx, 1, "");
		*dst[i] = LLVMBuildLoad2(be->db, be->t_ptr, p, names[i]);
	}
}

/* Starts a function of type fty whose first parameter is the frame: the
 * frame fields in its entry block, a fresh dim memo, the rt_t arrays of
 * kernel calls; the builder in its body.  Internal functions stay out of
 * line (inlined, LLVM would optimize one huge function again: its cost
 * grows faster than linearly).  Returns the entry block (end_fn closes it). */
static LLVMBasicBlockRef begin_fn(Be *be, const char *name, LLVMTypeRef fty, bool internal)
{
	be->fn = LLVMAddFunction(be->mod, name, fty);
	if (internal) {
		LLVMSetLinkage(be->fn, LLVMInternalLinkage);
		unsigned kind = LLVMGetEnumAttributeKindForName("noinline", 8);
		LLVMAddAttributeAtIndex(be->fn, LLVMAttributeFunctionIndex,
		                        LLVMCreateEnumAttribute(be->ctx, kind, 0));
	}
	be->frame = LLVMGetParam(be->fn, 0);
	LLVMBasicBlockRef entry = new_block(be, "entry"), body = new_block(be, "body");
	LLVMPositionBuilderAtEnd(be->db, entry);
	LLVMPositionBuilderAtEnd(be->b, body);
	be_dims_begin(be);
	load_frame(be);
	be->rt_in = LLVMBuildArrayAlloca(be->db, be->t_rt, be_i32(be, be->max_in), "in");
	be->rt_out = LLVMBuildArrayAlloca(be->db, be->t_rt, be_i32(be, be->max_out), "out");
	return entry;
}

/* return 0 at the end of the body; the entry block branches to the body. */
static void end_fn(Be *be, LLVMBasicBlockRef entry)
{
	LLVMBuildRet(be->b, be_i32(be, 0));
	LLVMPositionBuilderAtEnd(be->db, entry);
	LLVMBuildBr(be->db, LLVMGetNextBasicBlock(entry));
}

/* The per-function state of Be, kept while a node function is built. */
typedef struct FnState {
	LLVMValueRef fn, frame, symptr, weights_base, weights_cold, arena, bufoff, inptrs, outptrs, dynptrs;
	LLVMValueRef rt_in, rt_out, *dmemo;
	int32_t ndmemo;
	LLVMBasicBlockRef entry, cur;
} FnState;

static void fn_save(Be *be, FnState *s)
{
	*s = (FnState){be->fn, be->frame, be->symptr, be->weights_base, be->weights_cold,
	               be->arena, be->bufoff, be->inptrs, be->outptrs, be->dynptrs, be->rt_in, be->rt_out,
	               be->dmemo, be->ndmemo, LLVMGetInsertBlock(be->db), LLVMGetInsertBlock(be->b)};
	be->dmemo = NULL;   /* the node function's own memo */
	be->ndmemo = 0;
}

static void fn_restore(Be *be, const FnState *s)
{
	free(be->dmemo);
	be->fn = s->fn, be->frame = s->frame, be->symptr = s->symptr;
	be->weights_base = s->weights_base, be->weights_cold = s->weights_cold;
	be->arena = s->arena, be->bufoff = s->bufoff, be->inptrs = s->inptrs, be->outptrs = s->outptrs;
	be->dynptrs = s->dynptrs;
	be->rt_in = s->rt_in, be->rt_out = s->rt_out, be->dmemo = s->dmemo, be->ndmemo = s->ndmemo;
	LLVMPositionBuilderAtEnd(be->db, s->entry);
	LLVMPositionBuilderAtEnd(be->b, s->cur);
}

/* The data pointer passed for operand k of node n (inputs, then outputs). */
static LLVMValueRef node_arg(Be *be, const Node *n, int k)
{
	ValId v = k < n->nin ? n->in[k] : n->out[k - n->nin];
	if (!be_has_storage(be, v))
		return LLVMConstNull(be->t_ptr);
	/* a KlnGemm's W is read in the panel layout (plan.c, rt.h) */
	if (n->op == OP_KlnGemm && k == 1 && be->vpoff[v] >= 0)
		return weight_ptr(be, be->vpoff[v]);
	return be_val_ptr(be, v);
}

/* A node of more than ARGV_OPERANDS operands gets its data pointers in an
 * array (i32 kiln__node_K(f, loc, ptr *argv)): a call of hundreds of
 * arguments, stored one by one on the stack, costs LLVM's instruction
 * selection time quadratic in their number (store merging). */
#define ARGV_OPERANDS 16

/* be->op_params from the parameters of the node's function (or its argv). */
static void load_params(Be *be, int np)
{
	if (np <= ARGV_OPERANDS) {
		for (int k = 0; k < np; k++)
			be->op_params[k] = LLVMGetParam(be->fn, (unsigned)(2 + k));
		return;
	}
	LLVMValueRef argv = LLVMGetParam(be->fn, 2);
	for (int k = 0; k < np; k++) {
		LLVMValueRef idx = be_i64(be, k);
		be->op_params[k] = LLVMBuildLoad2(be->db, be->t_ptr, LLVMBuildGEP2(be->db, be->t_ptr, argv, &idx, 1, ""), "");
	}
}

/* The body of node id's function: inline loops or the kernel call.
 * 0, or -1 on error. */
static int emit_node_body(Be *be, NodeId id, int np)
{
	load_params(be, np);
	be->op_node = id;
	be->op_loc_param = LLVMGetParam(be->fn, 1);
	int r = emit_inline(be, id);
	if (r == 0)
		r = emit_kernel_call(be, id) ? -1 : 1;
	be->op_node = -1;
	be->op_loc_param = NULL;
	return r < 0 ? -1 : 0;
}

/* ---- data-dependent shapes (rt.h) ----------------------------------------
 * Before a node that binds data-dependent symbols, the chunk calls
 * i32 kiln__bind(f, loc, the node's data pointers): the op's shape function
 * rt_shape_<Op> computes the output dims from the input values; each dim
 * that is a symbol this node binds is stored in f->sym, every other one
 * must equal the dim the code was compiled with.  Then kiln__alloc (the
 * node's outputs in f->dyn slots, emit_dims.c), then the node itself:
 * their entry blocks read f->sym after the binding. */

/* ia of a shape function (rt.h RT_SHAPE). */
static int shape_fn_attrs(Be *be, NodeId id, int64_t *ia)
{
	const Graph *g = be->g;
	const Node *n = IR_NODE(g, id);
	int r = n->op == OP_OneHot ? IR_VAL(g, n->out[0])->rank : IR_VAL(g, n->in[0])->rank;
	int64_t ax;
	switch (n->op) {
	case OP_Reshape:
		ia[0] = ir_attr_int(g, id, "allowzero", 0);
		return 1;
	case OP_Split: case OP_OneHot:
		ax = ir_attr_int(g, id, "axis", n->op == OP_Split ? 0 : -1);
		ia[0] = ax < 0 ? ax + r : ax;
		return 1;
	case OP_ReduceSum: case OP_ReduceMean: case OP_ReduceMax: case OP_ReduceMin:
	case OP_ReduceProd: case OP_ReduceL2: case OP_ReduceSumSquare:
		ia[0] = ir_attr_int(g, id, "keepdims", 1);
		ia[1] = ir_attr_int(g, id, "noop_with_empty_axes", 0);
		return 2;
	case OP_Pad:
		ia[0] = be_pad_mode(g, id);
		return 1;
	case OP_TopK:
		ax = ir_attr_int(g, id, "axis", -1);
		ia[0] = ax < 0 ? ax + r : ax;
		return 1;
	default:
		return 0;
	}
}

/* Whether node id runs its shape function first: it binds a symbol, or an
 * output has a data-dependent symbol made for it (named "out[k]") that
 * another node bound (two values of one name): then the values must agree
 * with it.  Extents computed from the inputs' dims need no call. */
static bool binds_symbols(const Be *be, NodeId id)
{
	const Graph *g = be->g;
	const Node *n = IR_NODE(g, id);
	if (!be_node_can_bind(n))
		return false;
	for (int k = 0; k < n->nout; k++) {
		const Value *val = n->out[k] >= 0 ? IR_VAL(g, n->out[k]) : NULL;
		size_t len = val && val->name ? strlen(val->name) : 0;
		for (int d = 0; val && d < val->rank; d++) {
			const DimNode *dn = ir_dim_node(g, val->dims[d]);
			if (dn->kind != DIM_SYM || !ir_sym_is_dyn(g, (int)dn->c))
				continue;
			const char *sn = ir_sym_name(g, (int)dn->c);
			if (be->binder[dn->c] == id || (len && !strncmp(sn, val->name, len) && sn[len] == '['))
				return true;
		}
	}
	return false;
}

static void emit_bind_body(Be *be, NodeId id, int np)
{
	const Graph *g = be->g;
	const Node *n = IR_NODE(g, id);
	LLVMBuilderRef B = be->b;
	load_params(be, np);
	be->op_node = id;
	be->op_loc_param = LLVMGetParam(be->fn, 1);
	for (int k = 0; k < n->nin; k++)
		fill_rt(be, be->rt_in, k, n->in[k], be->op_params[k]);
	for (int k = 0; k < n->nout; k++) {
		const Value *val = n->out[k] >= 0 ? IR_VAL(g, n->out[k]) : NULL;
		LLVMValueRef idx = be_i64(be, k);
		LLVMValueRef t = LLVMBuildGEP2(B, be->t_rt, be->rt_out, &idx, 1, "");
		LLVMBuildStore(B, LLVMConstNull(be->t_ptr), LLVMBuildStructGEP2(B, be->t_rt, t, 0, ""));
		LLVMBuildStore(B, be_i32(be, val ? val->dtype : 0), LLVMBuildStructGEP2(B, be->t_rt, t, 1, ""));
		LLVMBuildStore(B, be_i32(be, val ? val->rank : 0), LLVMBuildStructGEP2(B, be->t_rt, t, 2, ""));
	}
	int64_t ia[4];
	int nia = shape_fn_attrs(be, id, ia);
	char fname[64], lb[64];
	snprintf(fname, sizeof fname, "rt_shape_%s", be_shape_fn_name(n->op));
	const char *loc = be_node_loc(be, id, lb, sizeof lb);
	LLVMValueRef args[10] = {
		be->frame, be_cstr(be, loc), be->rt_in, be_i32(be, n->nin), be->rt_out, be_i32(be, n->nout),
		const_array(be, be->t_i64, ia, nia, false), be_i32(be, nia), LLVMConstNull(be->t_ptr),
		be_i32(be, 0),
	};
	return_if_nonzero(be, LLVMBuildCall2(B, be->t_kernel, be_declare(be, fname, be->t_kernel), args, 10, ""));
	for (int k = 0; k < n->nout; k++) {
		const Value *val = n->out[k] >= 0 ? IR_VAL(g, n->out[k]) : NULL;
		for (int d = 0; val && d < val->rank; d++) {
			LLVMValueRef ix[4] = {be_i64(be, k), be_i32(be, 3), be_i64(be, 0), be_i64(be, d)};
			LLVMTypeRef at = LLVMArrayType2(be->t_i64, KILN_MAX_RANK);
			LLVMValueRef t = LLVMBuildGEP2(B, be->t_rt, be->rt_out, ix, 1, "");
			LLVMValueRef p = LLVMBuildGEP2(B, at, LLVMBuildStructGEP2(B, be->t_rt, t, 3, ""), ix + 2, 2, "");
			LLVMValueRef got = LLVMBuildLoad2(B, be->t_i64, p, "");
			const DimNode *dn = ir_dim_node(g, val->dims[d]);
			if (dn->kind == DIM_SYM && be->binder[dn->c] == id) {
				LLVMValueRef si = be_i64(be, be->symmap[dn->c]);
				LLVMBuildStore(B, got, LLVMBuildGEP2(B, be->t_i64, be->symptr, &si, 1, ""));
				continue;
			}
			char what[300];
			snprintf(what, sizeof what, "output '%s' dim %d from the input values is",
			         val->name ? val->name : "?", d);
			be_check_eq(be, loc, n->op, what, got, be_dim(be, val->dims[d]));
		}
	}
	be->op_node = -1;
	be->op_loc_param = NULL;
}

/* In the current chunk, before node id: kiln__bind (when it binds
 * symbols) and kiln__alloc (when it has outputs in f->dyn slots). */
static void emit_dyn_steps(Be *be, NodeId id, LLVMTypeRef fty, LLVMValueRef *args, int np, int nargs)
{
	const Node *n = IR_NODE(be->g, id);
	FnState st;
	if (binds_symbols(be, id)) {
		fn_save(be, &st);
		LLVMBasicBlockRef entry = begin_fn(be, "kiln__bind", fty, true);
		emit_bind_body(be, id, np);
		LLVMValueRef fn = be->fn;
		end_fn(be, entry);
		fn_restore(be, &st);
		return_if_nonzero(be, LLVMBuildCall2(be->b, fty, fn, args, (unsigned)nargs, ""));
	}
	bool alloc = false;
	for (int k = 0; k < n->nout; k++)
		alloc = alloc || (n->out[k] >= 0 && be->vdyn[n->out[k]] >= 0);
	if (!alloc)
		return;
	fn_save(be, &st);
	LLVMValueRef fn = be_emit_dyn_alloc_fn(be, id);
	fn_restore(be, &st);
	LLVMTypeRef aty = LLVMFunctionType(be->t_i32, &be->t_ptr, 1, 0);
	return_if_nonzero(be, LLVMBuildCall2(be->b, aty, fn, &be->frame, 1, ""));
}

/* args[2..] of node n's call: its data pointers, or, with argv, argv
 * filled with them. */
static void node_args(Be *be, const Node *n, LLVMValueRef *args, LLVMValueRef argv)
{
	int np = n->nin + n->nout;
	for (int k = 0; k < np; k++) {
		LLVMValueRef p = node_arg(be, n, k);
		if (!argv) {
			args[2 + k] = p;
			continue;
		}
		LLVMValueRef idx = be_i64(be, k);
		LLVMBuildStore(be->b, p, LLVMBuildGEP2(be->b, be->t_ptr, argv, &idx, 1, ""));
	}
	if (argv)
		args[2] = argv;
}

/* Node id in the current chunk: i32 kiln__node_K(f, loc, data pointers of
 * its inputs and outputs) built (or an identical one reused: emit_fn.c),
 * then called; a non-zero status is returned. */
static int emit_node(Be *be, NodeId id, int *nfns)
{
	const Node *n = IR_NODE(be->g, id);
	int np = n->nin + n->nout;
	LLVMTypeRef *pt = malloc((size_t)(np + 2) * sizeof *pt);
	LLVMValueRef *args = malloc((size_t)(np + 2) * sizeof *args);
	be->op_params = malloc((size_t)(np + 1) * sizeof *be->op_params);
	if (!pt || !args || !be->op_params)
		abort();
	for (int k = 0; k < np + 2; k++)
		pt[k] = be->t_ptr;
	int nargs = np <= ARGV_OPERANDS ? np + 2 : 3;
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, pt, (unsigned)nargs, 0);
	/* argv: an array in the chunk's frame, filled before each call */
	LLVMValueRef argv = nargs == 3 ? LLVMBuildArrayAlloca(be->db, be->t_ptr, be_i32(be, np), "argv") : NULL;
	char lb[64];
	be->op_loc = be_node_loc(be, id, lb, sizeof lb);
	FnState st;
	fn_save(be, &st);
	LLVMBasicBlockRef entry = begin_fn(be, "kiln__node", fty, true);
	int rc = emit_node_body(be, id, np);
	LLVMValueRef fn = be->fn;
	if (!rc)
		end_fn(be, entry);
	fn_restore(be, &st);
	free(be->op_params);
	be->op_params = NULL;
	if (!rc) {
		bool shared;
		fn = be_fn_share(be, fn, &shared);
		if (!shared) {
			char name[32];
			snprintf(name, sizeof name, "kiln__node_%d", (*nfns)++);
			LLVMSetValueName2(fn, name, strlen(name));
		}
		args[0] = be->frame;
		args[1] = be_cstr(be, be->op_loc);
		node_args(be, n, args, argv);
		if (be->dynamic) {   /* then the pointers again: f->dyn may have grown */
			be->op_params = malloc((size_t)(np + 1) * sizeof *be->op_params);
			if (!be->op_params)
				abort();
			emit_dyn_steps(be, id, fty, args, np, nargs);
			free(be->op_params);
			be->op_params = NULL;
			node_args(be, n, args, argv);
		}
		int32_t pk = be->prof_next++;   /* the profiler's hooks (emit_prof.c) */
		be_prof_before(be, pk);
		LLVMValueRef rc = LLVMBuildCall2(be->b, fty, fn, args, (unsigned)nargs, "");
		be_prof_after(be, id, pk);
		return_if_nonzero(be, rc);
	}
	be->op_loc = NULL;
	free(pt);
	free(args);
	return rc;
}

/* A chunk holds the calls of at most this many node functions, and stops
 * after the node that brings its operands (data pointers passed) to
 * CHUNK_OPERANDS: kiln__run stays small, and no function of the module
 * grows with the model (nodes of thousands of inputs too). */
#define CHUNK_NODES 128
#define CHUNK_OPERANDS 2048

/* Emits live nodes of g->order from *pos on into a new chunk function. */
static LLVMValueRef emit_chunk(Be *be, int k, int *pos, int *nfns)
{
	Graph *g = be->g;
	char name[32];
	snprintf(name, sizeof name, "kiln__chunk_%d", k);
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, &be->t_ptr, 1, 0);
	LLVMBasicBlockRef entry = begin_fn(be, name, fty, true);
	LLVMValueRef fn = be->fn;
	be_prof_chunk(be);
	for (int nodes = 0, ops = 0; *pos < g->norder && nodes < CHUNK_NODES && ops < CHUNK_OPERANDS;) {
		NodeId id = g->order[(*pos)++];
		const Node *n = IR_NODE(g, id);
		if (n->dead)
			continue;
		if (emit_node(be, id, nfns))
			return NULL;
		nodes++;
		ops += n->nin + n->nout;
	}
	end_fn(be, entry);
	return fn;
}

/* kiln__run(f): the input expression checks, then each chunk in order
 * (its first non-zero status returned), then the output copies.  The
 * chunks are built first; kiln__run last. */
static int emit_run_fn(Be *be)
{
	Graph *g = be->g;
	be->max_in = 1;
	be->max_out = 1;
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (n->dead)
			continue;
		be->max_in = n->nin > be->max_in ? n->nin : be->max_in;
		be->max_out = n->nout > be->max_out ? n->nout : be->max_out;
	}
	int nchunks = 0, cap = 16, pos = 0, nfns = 0;
	LLVMValueRef *chunks = malloc((size_t)cap * sizeof *chunks);
	if (!chunks)
		abort();
	for (;;) {
		while (pos < g->norder && IR_NODE(g, g->order[pos])->dead)
			pos++;   /* no chunk of dead nodes only */
		if (pos == g->norder)
			break;
		if (nchunks == cap) {
			cap *= 2;
			chunks = realloc(chunks, (size_t)cap * sizeof *chunks);
			if (!chunks)
				abort();
		}
		chunks[nchunks] = emit_chunk(be, nchunks, &pos, &nfns);
		if (!chunks[nchunks++]) {
			free(chunks);
			return -1;
		}
	}
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, &be->t_ptr, 1, 0);
	/* the output copies, in functions of their own (of at most
	 * COPY_OUTPUTS each: a graph of thousands of outputs); with
	 * data-dependent symbols they read, called once those are bound */
	int ncopies = 0;
	for (int k = 0; k < g->noutputs;) {
		while (k < g->noutputs && !be->outcopy[k])
			k++;
		if (k == g->noutputs)
			break;
		if (nchunks + ncopies == cap) {
			cap *= 2;
			chunks = realloc(chunks, (size_t)cap * sizeof *chunks);
			if (!chunks)
				abort();
		}
		LLVMBasicBlockRef entry = begin_fn(be, "kiln__outputs", fty, true);
		chunks[nchunks + ncopies++] = be->fn;
		emit_output_copies(be, &k);
		end_fn(be, entry);
	}
	LLVMBasicBlockRef entry = begin_fn(be, "kiln__run", fty, false);
	be_emit_expr_checks(be);
	be_emit_assume_checks(be);
	for (int k = 0; k < nchunks; k++)
		return_if_nonzero(be, LLVMBuildCall2(be->b, fty, chunks[k], &be->frame, 1, ""));
	if (be->dynamic) {
		LLVMValueRef outs = be_declare(be, "rt_dyn_outputs", fty);
		return_if_nonzero(be, LLVMBuildCall2(be->b, fty, outs, &be->frame, 1, ""));
	}
	for (int k = nchunks; k < nchunks + ncopies; k++)
		return_if_nonzero(be, LLVMBuildCall2(be->b, fty, chunks[k], &be->frame, 1, ""));
	free(chunks);
	end_fn(be, entry);
	return 0;
}

static void make_types(Be *be)
{
	LLVMContextRef c = be->ctx;
	be->t_i1 = LLVMInt1TypeInContext(c);
	be->t_i8 = LLVMInt8TypeInContext(c);
	be->t_i32 = LLVMInt32TypeInContext(c);
	be->t_i64 = LLVMInt64TypeInContext(c);
	be->t_f32 = LLVMFloatTypeInContext(c);
	be->t_ptr = LLVMPointerTypeInContext(c, 0);
	be->t_void = LLVMVoidTypeInContext(c);
	be->t_rt = LLVMStructCreateNamed(c, "rt_t");
	LLVMTypeRef rtf[4] = {be->t_ptr, be->t_i32, be->t_i32, LLVMArrayType2(be->t_i64, KILN_MAX_RANK)};
	LLVMStructSetBody(be->t_rt, rtf, 4, 0);
	LLVMTypeRef kp[10] = {be->t_ptr, be->t_ptr, be->t_ptr, be->t_i32, be->t_ptr, be->t_i32,
	                      be->t_ptr, be->t_i32, be->t_ptr, be->t_i32};
	be->t_kernel = LLVMFunctionType(be->t_i32, kp, 10, 0);
}

static int build_module(Be *be)
{
	be->ctx = LLVMContextCreate();
	char modname[256];
	snprintf(modname, sizeof modname, "%s", be->g->name ? be->g->name : "model");
	be->mod = LLVMModuleCreateWithNameInContext(modname, be->ctx);
	be->b = LLVMCreateBuilderInContext(be->ctx);
	be->db = LLVMCreateBuilderInContext(be->ctx);
	make_types(be);
	be_emit_weights_global(be);
	be_emit_plan_fn(be);
	be_emit_out_shapes_fn(be);
	if (emit_run_fn(be))
		return -1;
	be_emit_desc(be);
	return 0;
}

static void free_module(Be *be)
{
	if (be->b)
		LLVMDisposeBuilder(be->b);
	if (be->db)
		LLVMDisposeBuilder(be->db);
	if (be->mod)
		LLVMDisposeModule(be->mod);
	if (be->ctx)
		LLVMContextDispose(be->ctx);
	free(be->dmemo);
	be_tab_free(&be->tab);
	free(be->symmap);
	free(be->expr_dim);
	free(be->expr_sym);
	free(be->expr_in);
	free(be->expr_axis);
}

/* Refuses a live node with more operands than opt->max_node_operands. */
static int check_node_operands(const Be *be)
{
	const Graph *g = be->g;
	int limit = be->opt->max_node_operands > 0 ? be->opt->max_node_operands : BE_MAX_NODE_OPERANDS;
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (n->dead || n->nin + n->nout <= limit)
			continue;
		char nd[300];
		return diag_fail(be->diag, "%s has %d inputs and outputs, over the limit of %d per node "
		                 "(kiln compile --max-node-operands=N raises it; compile time grows with "
		                 "its square)", be_node_desc(be, g->order[i], nd, sizeof nd),
		                 n->nin + n->nout, limit);
	}
	return 0;
}

int be_compile(Graph *g, const BeOptions *opt, BeStats *stats, Diag *diag)
{
	BeStats dummy;
	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof *stats);
	if (!opt || !opt->out)
		return diag_fail(diag, "backend: no output path");
	Be be = {.g = g, .opt = opt, .diag = diag, .op_node = -1};
	double t0 = be_now_ms();
	int rc = check_node_operands(&be);
	if (!rc)
		rc = be_plan(&be);
	if (!rc)
		rc = be_map_symbols(&be);
	if (!rc)
		rc = build_module(&be);
	stats->weights_bytes = (int64_t)be.blob_bytes;
	stats->nbufs = be.nbufs;
	stats->arena_bytes = !rc && opt->arena_syms ? be_plan_arena(&be, opt->arena_syms) : -1;
	if (!rc)
		rc = be_codegen(&be, stats);
	if (!rc && opt->emit == BE_EMIT_SO) {
		char hpath[BE_PATH_MAX];
		rc = be_side_path(opt->out, ".h", hpath, sizeof hpath, be.diag);
		if (!rc)
			rc = be_write_header(&be, hpath);
	}
	stats->codegen_ms = be_now_ms() - t0 - stats->link_ms;
	free_module(&be);
	be_plan_free(&be);
	return rc;
}
