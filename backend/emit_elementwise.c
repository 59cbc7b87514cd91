/* emit_elementwise.c: f32 elementwise ops as inline loops (in the node's function, emit.c).
 *
 * Lowered: Add Sub Mul Div (binary), Relu Exp Tanh Sqrt Erf Neg Abs Sigmoid
 * (unary), Where (bool condition), Pow with a constant scalar exponent 2 or
 * 0.5; all f32.  Anything else, or another dtype, goes to the kernel.
 *
 * Broadcasting (numpy): inputs are right-aligned with the output; per
 * output dim each input has an element stride, 0 where it is broadcast.
 * When shape inference proved the input dim equal to the output dim, or
 * constant 1, the stride is known at compile time; otherwise the code
 * checks at run time that the input dim equals the output dim or is 1
 * (rt_error naming the node otherwise) and selects the stride.  The loop
 * nest runs over the output dims, innermost dim contiguous in the output
 * (stride 0 or 1 in each input), so LLVM vectorizes it. */
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "be.h"

#define EW_MAXIN 3

typedef struct Ew {
	NodeId id;
	Op op;
	int nin;                              /* data inputs (Where: 3) */
	ValId in[EW_MAXIN], out;
	int rank;                             /* output rank */
	LLVMValueRef odim[IR_MAX_RANK];       /* output dims */
	LLVMValueRef stride[EW_MAXIN][IR_MAX_RANK];
	LLVMValueRef ptr[EW_MAXIN], optr;
	LLVMTypeRef ety[EW_MAXIN];            /* element types of the inputs */
	float pow_exp;
} Ew;

static bool is_f32(const Be *be, ValId v)
{
	return v >= 0 && IR_VAL(be->g, v)->dtype == DT_F32 && IR_VAL(be->g, v)->rank >= 0;
}

/* Pow's exponent: a constant f32 scalar (any rank, one element) 2 or 0.5. */
static bool pow_exponent(const Be *be, ValId v, float *e)
{
	const Value *val = IR_VAL(be->g, v);
	if (val->kind != V_CONST || val->dtype != DT_F32 || !val->data || val->nbytes != sizeof(float))
		return false;
	memcpy(e, val->data, sizeof *e);
	return *e == 2.0f || *e == 0.5f;
}

static bool eligible(const Be *be, NodeId id, Ew *ew)
{
	const Node *n = IR_NODE(be->g, id);
	memset(ew, 0, sizeof *ew);
	ew->id = id;
	ew->op = n->op;
	if (n->nout != 1 || !is_f32(be, n->out[0]))
		return false;
	ew->out = n->out[0];
	ew->rank = IR_VAL(be->g, ew->out)->rank;
	switch (n->op) {
	case OP_Add: case OP_Sub: case OP_Mul: case OP_Div:
		ew->nin = 2;
		break;
	case OP_Relu: case OP_Exp: case OP_Tanh: case OP_Sqrt: case OP_Erf: case OP_Neg:
	case OP_Abs: case OP_Sigmoid:
		ew->nin = 1;
		break;
	case OP_Pow:
		if (n->nin != 2 || n->in[1] < 0 || !pow_exponent(be, n->in[1], &ew->pow_exp))
			return false;
		ew->nin = 1;
		break;
	case OP_Where:
		if (n->nin != 3 || n->in[0] < 0 || IR_VAL(be->g, n->in[0])->dtype != DT_BOOL)
			return false;
		ew->nin = 3;
		break;
	default:
		return false;
	}
	if (n->nin < ew->nin)
		return false;
	for (int k = 0; k < ew->nin; k++) {
		ValId v = n->in[k];
		bool cond = n->op == OP_Where && k == 0;
		if (v < 0 || (!cond && !is_f32(be, v)) || IR_VAL(be->g, v)->rank > ew->rank)
			return false;
		ew->in[k] = v;
	}
	return true;
}

/* What a message says of operand v beyond its index: " 'x'" for a graph
 * input or a named constant, " (rows of 'emb.pos')" for a Gather from a
 * named constant (an embedding lookup: a sequence longer than the
 * position table fails here at -O0), else "". */
static const char *operand_desc(const Be *be, ValId v, char *buf, size_t n)
{
	const Value *val = IR_VAL(be->g, v);
	const Node *d = val->def >= 0 ? IR_NODE(be->g, val->def) : NULL;
	const Value *tab = d && d->op == OP_Gather && d->nin > 0 && d->in[0] >= 0
	                   ? IR_VAL(be->g, d->in[0]) : NULL;
	buf[0] = 0;
	if (val->kind != V_NODE && val->name && val->name[0])
		snprintf(buf, n, " '%s'", val->name);
	else if (tab && tab->kind == V_CONST && tab->name && tab->name[0])
		snprintf(buf, n, " (rows of '%s')", tab->name);
	return buf;
}

void be_bcast_strides(Be *be, ValId in, ValId out, const char *loc, Op op, int k,
                      LLVMValueRef *stride)
{
	const Value *iv = IR_VAL(be->g, in);
	const Value *ov = IR_VAL(be->g, out);
	int rank = ov->rank, off = rank - iv->rank;
	LLVMValueRef cs = be_i64(be, 1), zero = be_i64(be, 0), one = be_i64(be, 1);
	for (int d = rank - 1; d >= 0; d--) {
		int j = d - off;
		if (j < 0) {
			stride[d] = zero;
			continue;
		}
		int64_t c;
		LLVMValueRef idim = be_dim(be, iv->dims[j]), odim = be_dim(be, ov->dims[d]);
		if (iv->dims[j] == ov->dims[d]) {
			stride[d] = cs;
		} else if (ir_dim_is_const(be->g, iv->dims[j], &c) && c == 1) {
			stride[d] = zero;
		} else {
			LLVMValueRef eq = LLVMBuildICmp(be->b, LLVMIntEQ, idim, odim, "");
			LLVMValueRef is1 = LLVMBuildICmp(be->b, LLVMIntEQ, idim, one, "");
			LLVMValueRef bad = LLVMBuildNot(be->b, LLVMBuildOr(be->b, eq, is1, ""), "");
			char desc[300];
			LLVMValueRef args[6] = {be_cstr(be, loc), be_cstr(be, ir_opname(op)),
			                        be_i32(be, k), be_cstr(be, operand_desc(be, in, desc, sizeof desc)),
			                        idim, odim};
			be_error_if(be, bad, "node '%s' (%s): input %d%s dim %lld does not broadcast "
			            "to output dim %lld", args, 6);
			stride[d] = LLVMBuildSelect(be->b, is1, zero, cs, "");
		}
		cs = LLVMBuildMul(be->b, cs, idim, "");
	}
}

static LLVMValueRef call_f32(Be *be, const char *name, LLVMValueRef x, bool intrinsic)
{
	LLVMTypeRef fty = LLVMFunctionType(be->t_f32, &be->t_f32, 1, 0);
	LLVMValueRef fn;
	if (intrinsic) {
		unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
		fn = LLVMGetIntrinsicDeclaration(be->mod, id, &be->t_f32, 1);
	} else {
		fn = be_declare(be, name, fty);
	}
	return LLVMBuildCall2(be->b, fty, fn, &x, 1, "");
}

/* The op on loaded elements x[0..nin). */
static LLVMValueRef apply(Be *be, const Ew *ew, LLVMValueRef *x)
{
	LLVMBuilderRef B = be->b;
	LLVMValueRef zero = LLVMConstReal(be->t_f32, 0.0), one = LLVMConstReal(be->t_f32, 1.0);
	switch (ew->op) {
	case OP_Add: return LLVMBuildFAdd(B, x[0], x[1], "");
	case OP_Sub: return LLVMBuildFSub(B, x[0], x[1], "");
	case OP_Mul: return LLVMBuildFMul(B, x[0], x[1], "");
	case OP_Div: return LLVMBuildFDiv(B, x[0], x[1], "");
	case OP_Relu:
		/* unordered or greater: NaN stays NaN, as in the kernel */
		return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealUGT, x[0], zero, ""), x[0], zero, "");
	case OP_Exp: return call_f32(be, "llvm.exp.f32", x[0], true);
	case OP_Sqrt: return call_f32(be, "llvm.sqrt.f32", x[0], true);
	case OP_Abs: return call_f32(be, "llvm.fabs.f32", x[0], true);
	case OP_Tanh: return call_f32(be, "tanhf", x[0], false);
	case OP_Erf: return call_f32(be, "erff", x[0], false);
	case OP_Neg: return LLVMBuildFNeg(B, x[0], "");
	case OP_Sigmoid: {
		LLVMValueRef e = call_f32(be, "llvm.exp.f32", LLVMBuildFNeg(B, x[0], ""), true);
		return LLVMBuildFDiv(B, one, LLVMBuildFAdd(B, one, e, ""), "");
	}
	case OP_Pow:
		return ew->pow_exp == 2.0f ? LLVMBuildFMul(B, x[0], x[0], "")
		                           : call_f32(be, "llvm.sqrt.f32", x[0], true);
	case OP_Where: {
		LLVMValueRef c = LLVMBuildICmp(B, LLVMIntNE, x[0], LLVMConstInt(be->t_i8, 0, 0), "");
		return LLVMBuildSelect(B, c, x[1], x[2], "");
	}
	default: return zero;
	}
}

/* Innermost work: out[obase] = op(in_k[ibase_k]). */
static void emit_element(Be *be, const Ew *ew, LLVMValueRef obase, LLVMValueRef *ibase)
{
	LLVMValueRef x[EW_MAXIN];
	for (int k = 0; k < ew->nin; k++) {
		LLVMValueRef p = LLVMBuildGEP2(be->b, ew->ety[k], ew->ptr[k], &ibase[k], 1, "");
		x[k] = LLVMBuildLoad2(be->b, ew->ety[k], p, "");
	}
	LLVMValueRef r = apply(be, ew, x);
	LLVMBuildStore(be->b, r, LLVMBuildGEP2(be->b, be->t_f32, ew->optr, &obase, 1, ""));
}

LLVMValueRef be_loop_begin(Be *be, BeLoop *l, LLVMValueRef n)
{
	LLVMBuilderRef B = be->b;
	l->pre = LLVMGetInsertBlock(B);
	l->head = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "loop.head");
	l->body = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "loop.body");
	l->exit = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "loop.exit");
	LLVMBuildBr(B, l->head);
	LLVMPositionBuilderAtEnd(B, l->head);
	l->i = LLVMBuildPhi(B, be->t_i64, "i");
	l->closed = be->loops_closed;
	l->n = n;
	LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntSLT, l->i, n, ""), l->body, l->exit);
	LLVMPositionBuilderAtEnd(B, l->body);
	return l->i;
}

/* A fresh loop ID !{self, !{"llvm.loop.unroll.disable"}} (the self-
 * reference makes it distinct), with !{"llvm.loop.interleave.count", 4}
 * when interleave. */
static LLVMValueRef no_unroll(Be *be, bool interleave)
{
	static const char what[] = "llvm.loop.unroll.disable", ic[] = "llvm.loop.interleave.count";
	LLVMMetadataRef self = LLVMTemporaryMDNode(be->ctx, NULL, 0);
	LLVMMetadataRef str = LLVMMDStringInContext2(be->ctx, what, sizeof what - 1);
	LLVMMetadataRef icops[2] = {LLVMMDStringInContext2(be->ctx, ic, sizeof ic - 1),
	                            LLVMValueAsMetadata(be_i32(be, 4))};
	LLVMMetadataRef ops[3] = {self, LLVMMDNodeInContext2(be->ctx, &str, 1),
	                          LLVMMDNodeInContext2(be->ctx, icops, 2)};
	LLVMMetadataRef id = LLVMMDNodeInContext2(be->ctx, ops, interleave ? 3 : 2);
	LLVMMetadataReplaceAllUsesWith(self, id);   /* frees the temporary */
	return LLVMMetadataAsValue(be->ctx, id);
}

/* LLVM may not unroll a loop that holds another loop, nor an innermost one
 * of more than BE_UNROLL_MAX iterations known at compile time.  The
 * emitters' trip counts are often static, and LLVM fully unrolled nests
 * level by level, or an inner loop of 32 and then vectorized the loop
 * around it with 32 interleaved accesses: the code grew with the tensor (a
 * Transpose of [2, 2, 128, 32] became ~20,000 lines of IR and a second of
 * compile time).  A long static innermost loop still vectorizes, and is
 * interleaved 4 times (what LLVM chose by itself for such copies); a short
 * one may be unrolled, so that the loop around it vectorizes (elementwise
 * ops on [n, 8]); one of a run-time length is left to LLVM (it cannot
 * unroll it fully). */
#define BE_UNROLL_MAX 16

void be_loop_end(Be *be, BeLoop *l)
{
	LLVMBuilderRef B = be->b;
	LLVMValueRef next = LLVMBuildAdd(B, l->i, be_i64(be, 1), "");
	LLVMBasicBlockRef latch = LLVMGetInsertBlock(B);
	LLVMValueRef back = LLVMBuildBr(B, l->head);
	bool innermost = be->loops_closed == l->closed, fixed = LLVMIsAConstantInt(l->n);
	bool long_fixed = fixed && LLVMConstIntGetSExtValue(l->n) > BE_UNROLL_MAX;
	if (!innermost || long_fixed)
		LLVMSetMetadata(back, LLVMGetMDKindIDInContext(be->ctx, "llvm.loop", 9),
		                no_unroll(be, innermost));
	be->loops_closed++;
	LLVMValueRef iv[2] = {be_i64(be, 0), next};
	LLVMBasicBlockRef ib[2] = {l->pre, latch};
	LLVMAddIncoming(l->i, iv, ib, 2);
	LLVMPositionBuilderAtEnd(B, l->exit);
}

/* Loop over output dim d with the running offsets of the enclosing dims. */
static void emit_loop(Be *be, const Ew *ew, int d, LLVMValueRef obase, LLVMValueRef *ibase)
{
	if (d == ew->rank) {
		emit_element(be, ew, obase, ibase);
		return;
	}
	LLVMBuilderRef B = be->b;
	/* dense output: its index is obase * odim[d] + i */
	LLVMValueRef ob = LLVMBuildMul(B, obase, ew->odim[d], "");
	BeLoop l;
	LLVMValueRef i = be_loop_begin(be, &l, ew->odim[d]);
	LLVMValueRef inner[EW_MAXIN];
	for (int k = 0; k < ew->nin; k++)
		inner[k] = LLVMBuildAdd(B, ibase[k], LLVMBuildMul(B, i, ew->stride[k][d], ""), "");
	emit_loop(be, ew, d + 1, LLVMBuildAdd(B, ob, i, ""), inner);
	be_loop_end(be, &l);
}

int be_emit_elementwise(Be *be, NodeId id)
{
	Ew ew;
	if (!eligible(be, id, &ew))
		return 0;
	char lb[64];
	const char *loc = be_node_loc(be, id, lb, sizeof lb);
	const Value *ov = IR_VAL(be->g, ew.out);
	for (int d = 0; d < ew.rank; d++)
		ew.odim[d] = be_dim(be, ov->dims[d]);
	for (int k = 0; k < ew.nin; k++) {
		be_bcast_strides(be, ew.in[k], ew.out, loc, ew.op, k, ew.stride[k]);
		ew.ety[k] = (ew.op == OP_Where && k == 0) ? be->t_i8 : be->t_f32;
	}
	for (int k = 0; k < ew.nin; k++)
		ew.ptr[k] = be_val_ptr(be, ew.in[k]);
	ew.optr = be_val_ptr(be, ew.out);
	LLVMValueRef zero[EW_MAXIN] = {be_i64(be, 0), be_i64(be, 0), be_i64(be, 0)};
	emit_loop(be, &ew, 0, be_i64(be, 0), zero);
	return 1;
}
