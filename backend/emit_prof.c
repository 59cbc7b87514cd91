/* emit_prof.c: the profiler's side of generated code (runtime/profile.c).
 *
 * In a chunk, around the call of node k's function:
 *
 *   if (f->prof) rt_prof_begin(f, k);
 *   rc = kiln__node_N(f, loc, ...);
 *   if (f->prof) { dims = the dims of k's operands for this run; rt_prof_end(f, k, dims); }
 *
 * f->prof is loaded once per chunk, so profiling off costs a predictable
 * branch per node; the dims are computed inside the profiling branch only
 * (a memo of their own: nothing of it runs when off).  The descriptor's
 * node table (rt_node_info per live node, in the same order) names each
 * node and its operands and says how to count its floating-point
 * operations. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "rt.h"

/* The value of operand j of n (inputs, then outputs), -1 when absent. */
static ValId opnd(const Node *n, int j)
{
	return j < n->nin ? n->in[j] : n->out[j - n->nin];
}

static int32_t opnd_rank(const Be *be, ValId v)
{
	return v >= 0 ? IR_VAL(be->g, v)->rank : 0;
}

/* The dims rt_prof_end gets for node id: the sum of its operands' ranks. */
static int32_t node_ndims(const Be *be, NodeId id)
{
	const Node *n = IR_NODE(be->g, id);
	int32_t nd = 0;
	for (int j = 0; j < n->nin + n->nout; j++)
		nd += opnd_rank(be, opnd(n, j));
	return nd;
}

void be_prof_chunk(Be *be)
{
	Graph *g = be->g;
	int32_t maxd = 0;
	for (int i = 0; i < g->norder; i++) {
		if (IR_NODE(g, g->order[i])->dead)
			continue;
		int32_t nd = node_ndims(be, g->order[i]);
		maxd = nd > maxd ? nd : maxd;
	}
	LLVMValueRef idx = be_i64(be, offsetof(kiln_frame, prof) / sizeof(void *));
	LLVMValueRef p = LLVMBuildGEP2(be->db, be->t_ptr, be->frame, &idx, 1, "");
	be->prof = LLVMBuildLoad2(be->db, be->t_ptr, p, "prof");
	be->prof_dims = maxd ? LLVMBuildArrayAlloca(be->db, be->t_i64, be_i32(be, maxd), "pdims")
	                     : LLVMConstNull(be->t_ptr);
}

/* if (f->prof) { then-block }: returns the then-block (the builder is
 * left in it), *cont the block after. */
static LLVMBasicBlockRef if_prof(Be *be, LLVMBasicBlockRef *cont)
{
	LLVMBasicBlockRef on = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "prof");
	*cont = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "cont");
	LLVMValueRef set = LLVMBuildICmp(be->b, LLVMIntNE, be->prof, LLVMConstNull(be->t_ptr), "");
	LLVMBuildCondBr(be->b, set, on, *cont);
	LLVMPositionBuilderAtEnd(be->b, on);
	return on;
}

void be_prof_before(Be *be, int32_t k)
{
	LLVMBasicBlockRef cont;
	if_prof(be, &cont);
	LLVMTypeRef pt[2] = {be->t_ptr, be->t_i32};
	LLVMTypeRef fty = LLVMFunctionType(be->t_void, pt, 2, 0);
	LLVMValueRef args[2] = {be->frame, be_i32(be, k)};
	LLVMBuildCall2(be->b, fty, be_declare(be, "rt_prof_begin", fty), args, 2, "");
	LLVMBuildBr(be->b, cont);
	LLVMPositionBuilderAtEnd(be->b, cont);
}

void be_prof_after(Be *be, NodeId id, int32_t k)
{
	const Node *n = IR_NODE(be->g, id);
	LLVMBasicBlockRef cont, on = if_prof(be, &cont);
	/* the dims in this block, with a memo of its own (be_dim builds at
	 * be->db: moved here, then back to the chunk's entry block) */
	LLVMBasicBlockRef entry = LLVMGetInsertBlock(be->db);
	LLVMValueRef *memo = be->dmemo;
	int32_t nmemo = be->ndmemo;
	be->dmemo = NULL;
	be->ndmemo = 0;
	LLVMPositionBuilderAtEnd(be->db, on);
	int32_t off = 0;
	for (int j = 0; j < n->nin + n->nout; j++) {
		ValId v = opnd(n, j);
		for (int d = 0; d < opnd_rank(be, v); d++, off++) {
			LLVMValueRef ix = be_i64(be, off);
			LLVMValueRef p = LLVMBuildGEP2(be->db, be->t_i64, be->prof_dims, &ix, 1, "");
			LLVMBuildStore(be->db, be_dim(be, IR_VAL(be->g, v)->dims[d]), p);
		}
	}
	free(be->dmemo);
	be->dmemo = memo;
	be->ndmemo = nmemo;
	LLVMPositionBuilderAtEnd(be->db, entry);
	/* the stores and be_dim's code are at the end of `on`, where be->b is */
	LLVMPositionBuilderAtEnd(be->b, on);
	LLVMTypeRef pt[3] = {be->t_ptr, be->t_i32, be->t_ptr};
	LLVMTypeRef fty = LLVMFunctionType(be->t_void, pt, 3, 0);
	LLVMValueRef args[3] = {be->frame, be_i32(be, k), off ? be->prof_dims : LLVMConstNull(be->t_ptr)};
	LLVMBuildCall2(be->b, fty, be_declare(be, "rt_prof_end", fty), args, 3, "");
	LLVMBuildBr(be->b, cont);
	LLVMPositionBuilderAtEnd(be->b, cont);
}

/* ---- the node table ---- */

/* How node id's floating-point operations are counted (rt_node_info):
 * numel(output 0) * dim(input *in, axis *axis) * *mul / *div. */
static void flop_rule(const Be *be, NodeId id, int32_t *in, int32_t *axis, int64_t *mul,
                      int64_t *div)
{
	const Graph *g = be->g;
	const Node *n = IR_NODE(g, id);
	*in = 0, *axis = 0, *mul = 0, *div = 1;
	if (n->nin < 2 || n->nout < 1 || n->in[0] < 0 || n->out[0] < 0)
		return;
	int32_t ra = IR_VAL(g, n->in[0])->rank;
	switch (n->op) {
	case OP_KlnGemm: case OP_MatMul:   /* A [..., M, K] (or [K]) */
		*axis = ra - 1;
		*mul = ra >= 1 ? 2 : 0;
		break;
	case OP_Gemm:                      /* A [M, K], or [K, M] when transA */
		*axis = ir_attr_int(g, id, "transA", 0) ? 0 : 1;
		*mul = ra == 2 ? 2 : 0;
		break;
	case OP_KlnAttention: {            /* Sk from K [B, Sk, *] ([Sk, B, *] for layout 1) */
		int64_t d = ir_attr_int(g, id, "head_size", 0), dv = ir_attr_int(g, id, "v_head_size", 0);
		*in = 1;
		*axis = ir_attr_int(g, id, "layout", 0) ? 0 : 1;
		/* output [B, Sq, H * Dv]: 2 * B * H * Sq * Sk * (D + Dv); packed
		 * (cu_seqlens, --remove-padding): the work is H * sum of squared
		 * lengths, data the shapes do not hold (T x T overcounts it 6x on
		 * lengths 16..128), so not counted */
		bool packed = n->nin > 5 && n->in[5] >= 0;
		*mul = d > 0 && dv > 0 && !packed && IR_VAL(g, n->in[1])->rank == 3 ? 2 * (d + dv) : 0;
		*div = dv > 0 ? dv : 1;
		break;
	}
	default:
		break;
	}
}

/* A private constant array of i64 (interned), null when empty. */
static LLVMValueRef i64_array(Be *be, const int64_t *v, int n)
{
	if (n == 0)
		return LLVMConstNull(be->t_ptr);
	size_t bytes = (size_t)n * sizeof *v;
	unsigned char *key = malloc(bytes + 1);
	if (!key)
		abort();
	key[0] = 'p';   /* apart from emit.c's 'i' arrays: a different global type is fine too */
	memcpy(key + 1, v, bytes);
	LLVMValueRef g = be_tab_get(&be->tab, key, bytes + 1);
	if (!g) {
		LLVMValueRef *cv = malloc((size_t)n * sizeof *cv);
		if (!cv)
			abort();
		for (int i = 0; i < n; i++)
			cv[i] = be_i64(be, v[i]);
		LLVMValueRef init = LLVMConstArray2(be->t_i64, cv, (uint64_t)n);
		free(cv);
		g = LLVMAddGlobal(be->mod, LLVMTypeOf(init), ".prof_opnd");
		LLVMSetInitializer(g, init);
		LLVMSetGlobalConstant(g, 1);
		LLVMSetLinkage(g, LLVMPrivateLinkage);
		LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
		be_tab_put(&be->tab, key, bytes + 1, g);
	}
	free(key);
	return g;
}

/* A private constant array of n string pointers; null when n == 0 (for
 * rt_node_info.fused_from: the ONNX names a fused node absorbed). */
static LLVMValueRef names_array(Be *be, const char *const *names, int n)
{
	if (n <= 0)
		return LLVMConstNull(be->t_ptr);
	LLVMValueRef *a = malloc((size_t)n * sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < n; i++)
		a[i] = be_cstr(be, names[i] ? names[i] : "");
	LLVMValueRef init = LLVMConstArray2(be->t_ptr, a, (uint64_t)n);
	free(a);
	LLVMValueRef g = LLVMAddGlobal(be->mod, LLVMTypeOf(init), ".prof_from");
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	return g;
}

static LLVMValueRef node_info(Be *be, LLVMTypeRef t_ni, NodeId id)
{
	const Node *n = IR_NODE(be->g, id);
	int np = n->nin + n->nout;
	int64_t *od = malloc((size_t)(2 * np + 1) * sizeof *od);
	if (!od)
		abort();
	for (int j = 0; j < np; j++) {
		ValId v = opnd(n, j);
		od[2 * j] = v >= 0 ? IR_VAL(be->g, v)->dtype : 0;
		od[2 * j + 1] = opnd_rank(be, v);
	}
	int32_t fin, fax;
	int64_t fmul, fdiv;
	flop_rule(be, id, &fin, &fax, &fmul, &fdiv);
	char lb[64];
	LLVMValueRef f[12] = {
		be_cstr(be, ir_opname(n->op)),
		be_cstr(be, be_node_loc(be, id, lb, sizeof lb)),
		names_array(be, n->from, n->nfrom), be_i32(be, n->nfrom > 0 ? n->nfrom : 0),
		be_i32(be, n->nin), be_i32(be, n->nout),
		i64_array(be, od, 2 * np),
		be_i32(be, node_ndims(be, id)),
		be_i32(be, fin), be_i32(be, fax),
		be_i64(be, fmul), be_i64(be, fdiv),
	};
	free(od);
	return LLVMConstNamedStruct(t_ni, f, 12);
}

LLVMValueRef be_prof_nodes(Be *be, int32_t *count)
{
	Graph *g = be->g;
	LLVMTypeRef P = be->t_ptr, I = be->t_i32, L = be->t_i64;
	LLVMTypeRef t_ni = LLVMStructCreateNamed(be->ctx, "rt_node_info");
	LLVMTypeRef fields[12] = {P, P, P, I, I, I, P, I, I, I, L, L};
	LLVMStructSetBody(t_ni, fields, 12, 0);
	LLVMValueRef *a = malloc(((size_t)g->norder + 1) * sizeof *a);
	if (!a)
		abort();
	int32_t n = 0;
	for (int i = 0; i < g->norder; i++)
		if (!IR_NODE(g, g->order[i])->dead)
			a[n++] = node_info(be, t_ni, g->order[i]);
	*count = n;
	LLVMValueRef r = LLVMConstNull(be->t_ptr);
	if (n) {
		LLVMValueRef init = LLVMConstArray2(t_ni, a, (uint64_t)n);
		r = LLVMAddGlobal(be->mod, LLVMTypeOf(init), ".prof_nodes");
		LLVMSetInitializer(r, init);
		LLVMSetGlobalConstant(r, 1);
		LLVMSetLinkage(r, LLVMPrivateLinkage);
	}
	free(a);
	return r;
}
