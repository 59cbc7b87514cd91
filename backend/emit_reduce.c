/* emit_reduce.c: f32 reductions over trailing axes and Softmax over the
 * last axis as inline loops (in the node's function, emit.c).
 *
 * ReduceSum, ReduceMean, ReduceMax, ReduceMin (keepdims 0 or 1) whose
 * reduced axes are the last k of the input: the input is [rows, n], one
 * output per row.  Softmax (f32) over the last axis: per row the maximum,
 * exp(x - max) stored and summed, then scaled by 1/sum (a row of -inf gives
 * max 0, as the kernel).  Other axes, other dtypes: the kernel.
 *
 * So that LLVM vectorizes the row loops, sums are f32 adds marked
 * reassociable (the vector of partial sums is at least as accurate as the
 * serial f32 sum), max/min are llvm.maximum/minimum (NaN propagates, as
 * the kernel), and exp is a polynomial in IR (Cephes' expf: 2^n times a
 * degree-6 polynomial on [-ln2/2, ln2/2], about 1 ulp; 0 below -87.3) instead of a libm
 * call, which would stop vectorization. */
#include <math.h>
#include <string.h>

#include "be.h"

/* A phi in the loop's header: init from before the loop. */
static LLVMValueRef loop_phi(Be *be, const BeLoop *l, LLVMTypeRef ty, LLVMValueRef init)
{
	LLVMBasicBlockRef here = LLVMGetInsertBlock(be->b);
	LLVMPositionBuilderBefore(be->b, l->i);
	LLVMValueRef phi = LLVMBuildPhi(be->b, ty, "acc");
	LLVMBasicBlockRef pre = l->pre;
	LLVMAddIncoming(phi, &init, &pre, 1);
	LLVMPositionBuilderAtEnd(be->b, here);
	return phi;
}

/* The phi's value for the next iteration: call before be_loop_end. */
static void loop_phi_next(Be *be, LLVMValueRef phi, LLVMValueRef next)
{
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(be->b);
	LLVMAddIncoming(phi, &next, &latch, 1);
}

static LLVMValueRef f32c(Be *be, double v)
{
	return LLVMConstReal(be->t_f32, v);
}

static LLVMValueRef intrinsic2(Be *be, const char *name, LLVMValueRef a, LLVMValueRef b)
{
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(be->mod, id, &be->t_f32, 1);
	LLVMTypeRef ps[2] = {be->t_f32, be->t_f32};
	LLVMValueRef args[2] = {a, b};
	return LLVMBuildCall2(be->b, LLVMFunctionType(be->t_f32, ps, 2, 0), fn, args, 2, "");
}

static LLVMValueRef floor_f32(Be *be, LLVMValueRef x)
{
	unsigned id = LLVMLookupIntrinsicID("llvm.floor", 10);
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(be->mod, id, &be->t_f32, 1);
	return LLVMBuildCall2(be->b, LLVMFunctionType(be->t_f32, &be->t_f32, 1, 0), fn, &x, 1, "");
}

static LLVMValueRef fadd_reassoc(Be *be, LLVMValueRef a, LLVMValueRef b)
{
	LLVMValueRef r = LLVMBuildFAdd(be->b, a, b, "");
	LLVMSetFastMathFlags(r, LLVMFastMathAllowReassoc);
	return r;
}

/* expf(x) without a call (Cephes). */
static LLVMValueRef exp_f32(Be *be, LLVMValueRef x)
{
	LLVMBuilderRef B = be->b;
	/* below lo the result is 0 (exp(-inf) == 0 exactly; true results there
	 * are below 1.2e-38); lo keeps 2^fx normal */
	LLVMValueRef lo = f32c(be, -87.3), hi = f32c(be, 88.3762626647949);
	LLVMValueRef tiny = LLVMBuildFCmp(B, LLVMRealOLT, x, lo, "");
	x = LLVMBuildSelect(B, tiny, lo, x, "");
	x = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, x, hi, ""), hi, x, "");
	LLVMValueRef fx = floor_f32(be, LLVMBuildFAdd(B, LLVMBuildFMul(B, x, f32c(be, 1.44269504088896341), ""),
	                                              f32c(be, 0.5), ""));
	x = LLVMBuildFSub(B, x, LLVMBuildFMul(B, fx, f32c(be, 0.693359375), ""), "");
	x = LLVMBuildFSub(B, x, LLVMBuildFMul(B, fx, f32c(be, -2.12194440e-4), ""), "");
	static const double c[6] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
	                            4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1};
	LLVMValueRef y = f32c(be, c[0]);
	for (int k = 1; k < 6; k++)
		y = LLVMBuildFAdd(B, LLVMBuildFMul(B, y, x, ""), f32c(be, c[k]), "");
	y = LLVMBuildFMul(B, y, LLVMBuildFMul(B, x, x, ""), "");
	y = LLVMBuildFAdd(B, LLVMBuildFAdd(B, y, x, ""), f32c(be, 1.0), "");
	/* 2^fx from the exponent bits; fx in [-126, 128] (128: inf); a NaN
	 * input has a NaN polynomial (freeze: fptosi of NaN is poison) */
	LLVMValueRef n = LLVMBuildFreeze(B, LLVMBuildFPToSI(B, fx, be->t_i32, ""), "");
	n = LLVMBuildShl(B, LLVMBuildAdd(B, n, be_i32(be, 127), ""), be_i32(be, 23), "");
	y = LLVMBuildFMul(B, y, LLVMBuildBitCast(B, n, be->t_f32, ""), "");
	return LLVMBuildSelect(B, tiny, f32c(be, 0.0), y, "");
}

/* ---- the row loops ---- */

typedef struct Rows {
	LLVMValueRef xp, yp;       /* f32 data */
	LLVMValueRef rows, n;
} Rows;

static LLVMValueRef load_at(Be *be, LLVMValueRef p, LLVMValueRef i)
{
	return LLVMBuildLoad2(be->b, be->t_f32, LLVMBuildGEP2(be->b, be->t_f32, p, &i, 1, ""), "");
}

static void store_at(Be *be, LLVMValueRef v, LLVMValueRef p, LLVMValueRef i)
{
	LLVMBuildStore(be->b, v, LLVMBuildGEP2(be->b, be->t_f32, p, &i, 1, ""));
}

/* acc = fold(op, x[base .. base+n)) */
static LLVMValueRef fold_row(Be *be, Op op, LLVMValueRef x, LLVMValueRef base, LLVMValueRef n)
{
	double init = op == OP_ReduceMax ? -INFINITY : op == OP_ReduceMin ? INFINITY : 0.0;
	BeLoop l;
	LLVMValueRef j = be_loop_begin(be, &l, n);
	LLVMValueRef acc = loop_phi(be, &l, be->t_f32, f32c(be, init));
	LLVMValueRef v = load_at(be, x, LLVMBuildAdd(be->b, base, j, ""));
	LLVMValueRef next = op == OP_ReduceMax ? intrinsic2(be, "llvm.maximum", acc, v)
	                  : op == OP_ReduceMin ? intrinsic2(be, "llvm.minimum", acc, v)
	                  : fadd_reassoc(be, acc, v);
	loop_phi_next(be, acc, next);
	be_loop_end(be, &l);
	return acc;
}

static void emit_reduce_rows(Be *be, Op op, const Rows *r)
{
	BeLoop l;
	LLVMValueRef i = be_loop_begin(be, &l, r->rows);
	LLVMValueRef acc = fold_row(be, op, r->xp, LLVMBuildMul(be->b, i, r->n, ""), r->n);
	if (op == OP_ReduceMean)
		acc = LLVMBuildFDiv(be->b, acc, LLVMBuildSIToFP(be->b, r->n, be->t_f32, ""), "");
	store_at(be, acc, r->yp, i);
	be_loop_end(be, &l);
}

static void emit_softmax_rows(Be *be, const Rows *r)
{
	LLVMBuilderRef B = be->b;
	BeLoop l, le, ls;
	LLVMValueRef i = be_loop_begin(be, &l, r->rows);
	LLVMValueRef base = LLVMBuildMul(B, i, r->n, "");
	LLVMValueRef mx = fold_row(be, OP_ReduceMax, r->xp, base, r->n);
	LLVMValueRef isinf = LLVMBuildFCmp(B, LLVMRealOEQ, mx, f32c(be, -INFINITY), "");
	mx = LLVMBuildSelect(B, isinf, f32c(be, 0.0), mx, "");
	/* y = exp(x - mx), sum += y */
	LLVMValueRef j = be_loop_begin(be, &le, r->n);
	LLVMValueRef sum = loop_phi(be, &le, be->t_f32, f32c(be, 0.0));
	LLVMValueRef at = LLVMBuildAdd(B, base, j, "");
	LLVMValueRef e = exp_f32(be, LLVMBuildFSub(B, load_at(be, r->xp, at), mx, ""));
	store_at(be, e, r->yp, at);
	loop_phi_next(be, sum, fadd_reassoc(be, sum, e));
	be_loop_end(be, &le);
	/* y *= 1 / sum */
	LLVMValueRef inv = LLVMBuildFDiv(B, f32c(be, 1.0), sum, "");
	j = be_loop_begin(be, &ls, r->n);
	at = LLVMBuildAdd(B, base, j, "");
	store_at(be, LLVMBuildFMul(B, load_at(be, r->yp, at), inv, ""), r->yp, at);
	be_loop_end(be, &ls);
	be_loop_end(be, &l);
}

/* ---- eligibility ---- */

static bool is_f32(const Be *be, ValId v)
{
	return v >= 0 && IR_VAL(be->g, v)->dtype == DT_F32 && IR_VAL(be->g, v)->rank >= 0;
}

/* Whether y's dims are x's first `keep` dims, each followed by nothing
 * (keepdims 0) or the rest as 1s (keepdims 1). */
static bool out_dims_proven(const Be *be, ValId x, ValId y, int keep)
{
	const Value *xv = IR_VAL(be->g, x), *yv = IR_VAL(be->g, y);
	for (int d = 0; d < yv->rank; d++) {
		int64_t c;
		if (d < keep ? yv->dims[d] != xv->dims[d] : !ir_dim_is_const(be->g, yv->dims[d], &c) || c != 1)
			return false;
	}
	return true;
}

/* Reduced axes (from the attributes) are the last k of the input: k, or 0
 * when not eligible, -1 on a bad attribute. */
static int trailing_axes(Be *be, NodeId id, int rank)
{
	BeAttrs at = {0};
	if (be_node_attrs(be, id, &at)) {
		be_attrs_free(&at);
		return -1;
	}
	int k = at.nia >= 2 ? (int)at.ia[1] : 0;
	if (k < 0)
		k = 0;   /* axes given at run time: the kernel reads them */
	for (int i = 0; i < k; i++)
		if (at.ia[2 + i] != rank - k + i)
			k = 0;
	be_attrs_free(&at);
	return k;
}

int be_emit_reduce(Be *be, NodeId id)
{
	const Node *n = IR_NODE(be->g, id);
	bool softmax = n->op == OP_Softmax;
	if (n->op != OP_ReduceSum && n->op != OP_ReduceMean && n->op != OP_ReduceMax &&
	    n->op != OP_ReduceMin && !softmax)
		return 0;
	if (n->nin < 1 || n->nout != 1 || !is_f32(be, n->in[0]) || !is_f32(be, n->out[0]) ||
	    !be_has_storage(be, n->out[0]))
		return 0;
	ValId x = n->in[0], y = n->out[0];
	const Value *xv = IR_VAL(be->g, x);
	int rank = xv->rank, k;
	if (rank < 1)
		return 0;
	if (softmax) {
		BeAttrs at = {0};
		int rc = be_node_attrs(be, id, &at);
		k = !rc && at.nia == 1 && at.ia[0] == rank - 1 ? 1 : rc ? -1 : 0;
		be_attrs_free(&at);
	} else {
		k = trailing_axes(be, id, rank);
	}
	if (k <= 0)
		return k;
	char lb[64];
	const char *loc = be_node_loc(be, id, lb, sizeof lb);
	Rows r = {.rows = be_dims_prod(be, x, 0, rank - k), .n = be_dims_prod(be, x, rank - k, rank)};
	if (softmax) {
		if (IR_VAL(be->g, y)->rank != rank || !out_dims_proven(be, x, y, rank))
			be_check_eq(be, loc, n->op, "output elements", be_numel(be, y), be_numel(be, x));
	} else if (!out_dims_proven(be, x, y, rank - k)) {
		be_check_eq(be, loc, n->op, "output elements", be_numel(be, y), r.rows);
	}
	r.xp = be_val_ptr(be, x);
	r.yp = be_val_ptr(be, y);
	if (softmax)
		emit_softmax_rows(be, &r);
	else
		emit_reduce_rows(be, n->op, &r);
	return 1;
}
