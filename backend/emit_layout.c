/* emit_layout.c: layout ops as inline copy loops.
 *
 * Lowered, for any dtype of 1, 2, 4 or 8 bytes (copied as integers of that
 * size): Transpose (a loop nest over the output, input strides permuted),
 * Expand (broadcast strides, as the elementwise ops), Concat and Split (one
 * 2-D strided copy [outer, row] per input or output at its offset along the
 * axis), Slice with constant starts/ends/axes/steps (strided copy from the
 * first element), and Reshape Flatten Squeeze Unsqueeze Identity (one
 * llvm.memcpy; nothing when input and output share storage).
 *
 * Every loop nest runs over the destination's dims with the innermost loop
 * over its last dim, contiguous in the destination.  Dims the kernel would
 * check at run time are checked here too when shape inference did not
 * prove them equal (same DimId): an rt_error naming the node. */
#include <string.h>

#include "be.h"

LLVMTypeRef be_copy_type(Be *be, DType dt)
{
	switch (ir_dtype_size(dt)) {
	case 1: return be->t_i8;
	case 2: return LLVMInt16TypeInContext(be->ctx);
	case 4: return be->t_i32;
	case 8: return be->t_i64;
	default: return NULL;
	}
}

void be_dense_strides(Be *be, ValId v, LLVMValueRef *st)
{
	const Value *val = IR_VAL(be->g, v);
	LLVMValueRef s = be_i64(be, 1);
	for (int d = val->rank - 1; d >= 0; d--) {
		st[d] = s;
		s = LLVMBuildMul(be->b, s, be_dim(be, val->dims[d]), "");
	}
}

static void copy_level(Be *be, LLVMTypeRef ety, int d, int rank, const LLVMValueRef *dims,
                       LLVMValueRef src, const LLVMValueRef *sst, LLVMValueRef so,
                       LLVMValueRef dst, const LLVMValueRef *dst_st, LLVMValueRef dof)
{
	LLVMBuilderRef B = be->b;
	if (d == rank) {
		LLVMValueRef x = LLVMBuildLoad2(B, ety, LLVMBuildGEP2(B, ety, src, &so, 1, ""), "");
		LLVMBuildStore(B, x, LLVMBuildGEP2(B, ety, dst, &dof, 1, ""));
		return;
	}
	BeLoop l;
	LLVMValueRef i = be_loop_begin(be, &l, dims[d]);
	copy_level(be, ety, d + 1, rank, dims,
	           src, sst, LLVMBuildAdd(B, so, LLVMBuildMul(B, i, sst[d], ""), ""),
	           dst, dst_st, LLVMBuildAdd(B, dof, LLVMBuildMul(B, i, dst_st[d], ""), ""));
	be_loop_end(be, &l);
}

void be_copy_nest(Be *be, LLVMTypeRef ety, int rank, const LLVMValueRef *dims,
                  LLVMValueRef src, const LLVMValueRef *src_st,
                  LLVMValueRef dst, const LLVMValueRef *dst_st)
{
	copy_level(be, ety, 0, rank, dims, src, src_st, be_i64(be, 0), dst, dst_st, be_i64(be, 0));
}

/* p + off elements of ety */
static LLVMValueRef elem_ptr(Be *be, LLVMTypeRef ety, LLVMValueRef p, LLVMValueRef off)
{
	return LLVMBuildGEP2(be->b, ety, p, &off, 1, "");
}

static void dims_of(Be *be, ValId v, LLVMValueRef *dims)
{
	const Value *val = IR_VAL(be->g, v);
	for (int d = 0; d < val->rank; d++)
		dims[d] = be_dim(be, val->dims[d]);
}

/* a == b checked at run time unless the DimIds are the same. */
static void check_dim(Be *be, const char *loc, Op op, const char *what, DimId a, DimId b)
{
	if (a != b)
		be_check_eq(be, loc, op, what, be_dim(be, a), be_dim(be, b));
}

/* ---- Reshape & co ---- */

static int emit_same_data(Be *be, const Node *n, const char *loc)
{
	ValId x = n->in[0], y = n->out[0];
	be_check_eq(be, loc, n->op, "output elements", be_numel(be, y), be_numel(be, x));
	bool shared = be->vbuf[y] >= 0 && be->vbuf[y] == be->vbuf[x] && be->vout[y] < 0;
	if (!shared)
		LLVMBuildMemCpy(be->b, be_val_ptr(be, y), 1, be_val_ptr(be, x), 1, be_nbytes(be, y));
	return 1;
}

/* ---- Transpose ---- */

static int emit_transpose(Be *be, NodeId id, const Node *n, const char *loc, LLVMTypeRef ety)
{
	ValId x = n->in[0], y = n->out[0];
	const Value *xv = IR_VAL(be->g, x), *yv = IR_VAL(be->g, y);
	if (yv->rank != xv->rank)
		return 0;
	BeAttrs at = {0};
	if (be_node_attrs(be, id, &at)) {
		be_attrs_free(&at);
		return -1;
	}
	LLVMValueRef xst[IR_MAX_RANK], sst[IR_MAX_RANK], dst[IR_MAX_RANK], dims[IR_MAX_RANK];
	be_dense_strides(be, x, xst);
	be_dense_strides(be, y, dst);
	dims_of(be, y, dims);
	for (int d = 0; d < yv->rank; d++) {
		int p = (int)at.ia[d];
		check_dim(be, loc, n->op, "output dim", yv->dims[d], xv->dims[p]);
		sst[d] = xst[p];
	}
	be_attrs_free(&at);
	be_copy_nest(be, ety, yv->rank, dims, be_val_ptr(be, x), sst, be_val_ptr(be, y), dst);
	return 1;
}

/* ---- Expand ---- */

static int emit_expand(Be *be, const Node *n, const char *loc, LLVMTypeRef ety)
{
	ValId x = n->in[0], y = n->out[0];
	const Value *yv = IR_VAL(be->g, y);
	if (IR_VAL(be->g, x)->rank > yv->rank)
		return 0;
	LLVMValueRef sst[IR_MAX_RANK], dst[IR_MAX_RANK], dims[IR_MAX_RANK];
	be_bcast_strides(be, x, y, loc, n->op, 0, sst);
	be_dense_strides(be, y, dst);
	dims_of(be, y, dims);
	be_copy_nest(be, ety, yv->rank, dims, be_val_ptr(be, x), sst, be_val_ptr(be, y), dst);
	return 1;
}

/* ---- Concat, Split: [outer, dims[axis] * inner] pieces of the whole ---- */

typedef struct Pieces {
	ValId whole;               /* Concat's output, Split's input */
	const ValId *part;         /* Concat's inputs, Split's outputs */
	int nparts;
	int axis;
} Pieces;

static bool pieces_ok(const Be *be, const Pieces *p)
{
	const Value *w = IR_VAL(be->g, p->whole);
	for (int k = 0; k < p->nparts; k++) {
		if (p->part[k] < 0)
			return false;
		const Value *v = IR_VAL(be->g, p->part[k]);
		if (v->dtype != w->dtype || v->rank != w->rank)
			return false;
	}
	return w->rank > 0 && p->axis >= 0 && p->axis < w->rank;
}

/* Checks the dims, then per part: concat copies the part into the whole,
 * split copies the whole's slice into the part. */
static void emit_pieces(Be *be, const Pieces *p, bool concat, Op op, const char *loc,
                        LLVMTypeRef ety)
{
	const Value *w = IR_VAL(be->g, p->whole);
	int ax = p->axis;
	LLVMValueRef total = be_i64(be, 0);
	for (int k = 0; k < p->nparts; k++) {
		const Value *v = IR_VAL(be->g, p->part[k]);
		for (int d = 0; d < w->rank; d++)
			if (d != ax)
				check_dim(be, loc, op, concat ? "input dim" : "output dim", v->dims[d],
				          w->dims[d]);
		total = LLVMBuildAdd(be->b, total, be_dim(be, v->dims[ax]), "");
	}
	be_check_eq(be, loc, op, concat ? "inputs sum along the axis to" : "outputs sum along the axis to",
	            total, be_dim(be, w->dims[ax]));
	LLVMValueRef outer = be_dims_prod(be, p->whole, 0, ax);
	LLVMValueRef inner = be_dims_prod(be, p->whole, ax + 1, w->rank);
	LLVMValueRef wrow = LLVMBuildMul(be->b, be_dim(be, w->dims[ax]), inner, "");
	LLVMValueRef wptr = be_val_ptr(be, p->whole), at = be_i64(be, 0), one = be_i64(be, 1);
	for (int k = 0; k < p->nparts; k++) {
		ValId v = p->part[k];
		LLVMValueRef row = LLVMBuildMul(be->b, be_dim(be, IR_VAL(be->g, v)->dims[ax]), inner, "");
		if (be_has_storage(be, v)) {
			LLVMValueRef dims[2] = {outer, row};
			LLVMValueRef pst[2] = {row, one}, wst[2] = {wrow, one};
			LLVMValueRef wp = elem_ptr(be, ety, wptr, at), pp = be_val_ptr(be, v);
			if (concat)
				be_copy_nest(be, ety, 2, dims, pp, pst, wp, wst);
			else
				be_copy_nest(be, ety, 2, dims, wp, wst, pp, pst);
		}
		at = LLVMBuildAdd(be->b, at, row, "");
	}
}

static int emit_concat_split(Be *be, NodeId id, const Node *n, const char *loc, LLVMTypeRef ety)
{
	bool concat = n->op == OP_Concat;
	Pieces p = {.whole = concat ? n->out[0] : n->in[0], .part = concat ? n->in : n->out,
	            .nparts = concat ? n->nin : n->nout};
	int rank = IR_VAL(be->g, p.whole)->rank;
	int64_t axis = ir_attr_int(be->g, id, "axis", 0);
	if (axis < -rank || axis >= rank)
		return 0;           /* the kernel path reports it */
	p.axis = (int)(axis < 0 ? axis + rank : axis);
	/* a loop per piece: hundreds of them cost LLVM time quadratic in
	 * their number (induction variable analysis); the kernel loops */
	if (p.nparts > 32 || !pieces_ok(be, &p))
		return 0;
	emit_pieces(be, &p, concat, n->op, loc, ety);
	return 1;
}

/* ---- Slice with constant starts, ends, axes, steps ---- */

/* Integer elements of a constant i32/i64 tensor; -1 if it is not one. */
static int const_ints(const Be *be, ValId v, int64_t *dst, int max)
{
	if (v < 0)
		return -1;
	const Value *val = IR_VAL(be->g, v);
	if (val->kind != V_CONST || !val->data || (val->dtype != DT_I64 && val->dtype != DT_I32))
		return -1;
	int cnt = (int)(val->nbytes / ir_dtype_size(val->dtype));
	if (cnt > max)
		return -1;
	for (int i = 0; i < cnt; i++) {
		if (val->dtype == DT_I64) {
			memcpy(&dst[i], (const char *)val->data + 8 * i, 8);
		} else {
			int32_t x;
			memcpy(&x, (const char *)val->data + 4 * i, 4);
			dst[i] = x;
		}
	}
	return cnt;
}

static LLVMValueRef clamp(Be *be, LLVMValueRef v, LLVMValueRef lo, LLVMValueRef hi)
{
	LLVMBuilderRef B = be->b;
	v = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, v, lo, ""), lo, v, "");
	return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, v, hi, ""), hi, v, "");
}

/* Start and length along one axis of dim n (the kernel's arithmetic). */
static void slice_axis(Be *be, LLVMValueRef n, int64_t s, int64_t e, int64_t k,
                       LLVMValueRef *start, LLVMValueRef *len)
{
	LLVMBuilderRef B = be->b;
	LLVMValueRef zero = be_i64(be, 0), one = be_i64(be, 1);
	LLVMValueRef sv = s < 0 ? LLVMBuildAdd(B, be_i64(be, s), n, "") : be_i64(be, s);
	LLVMValueRef ev = e < 0 ? LLVMBuildAdd(B, be_i64(be, e), n, "") : be_i64(be, e);
	LLVMValueRef lo, hi, span;
	if (k > 0) {
		sv = clamp(be, sv, zero, n);
		ev = clamp(be, ev, zero, n);
		lo = sv;
		hi = ev;
	} else {
		LLVMValueRef nm1 = LLVMBuildSub(B, n, one, "");
		sv = clamp(be, sv, zero, nm1);
		ev = clamp(be, ev, be_i64(be, -1), nm1);
		lo = ev;
		hi = sv;
		k = -k;
	}
	/* hi > lo ? (hi - lo - 1) / k + 1 : 0 */
	span = LLVMBuildSub(B, LLVMBuildSub(B, hi, lo, ""), one, "");
	LLVMValueRef l = LLVMBuildAdd(B, LLVMBuildSDiv(B, span, be_i64(be, k), ""), one, "");
	*len = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, hi, lo, ""), l, zero, "");
	*start = sv;
}

static int emit_slice(Be *be, const Node *n, const char *loc, LLVMTypeRef ety)
{
	ValId x = n->in[0], y = n->out[0];
	const Value *xv = IR_VAL(be->g, x), *yv = IR_VAL(be->g, y);
	int r = xv->rank;
	int64_t starts[IR_MAX_RANK], ends[IR_MAX_RANK], axes[IR_MAX_RANK], steps[IR_MAX_RANK];
	if (n->nin < 3 || yv->rank != r)
		return 0;
	int cnt = const_ints(be, n->in[1], starts, r);
	if (cnt < 0 || const_ints(be, n->in[2], ends, r) != cnt)
		return 0;
	for (int i = 0; i < cnt; i++) {
		axes[i] = i;
		steps[i] = 1;
	}
	if (n->nin > 3 && n->in[3] >= 0 && const_ints(be, n->in[3], axes, r) != cnt)
		return 0;
	if (n->nin > 4 && n->in[4] >= 0 && const_ints(be, n->in[4], steps, r) != cnt)
		return 0;
	int64_t step[IR_MAX_RANK];
	int which[IR_MAX_RANK];
	for (int d = 0; d < r; d++) {
		step[d] = 1;
		which[d] = -1;
	}
	for (int i = 0; i < cnt; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
		if (a < 0 || a >= r || which[a] >= 0 || steps[i] == 0)
			return 0;   /* the kernel reports it */
		which[a] = i;
		step[a] = steps[i] == INT64_MIN ? -INT64_MAX : steps[i];
	}
	LLVMValueRef xst[IR_MAX_RANK], sst[IR_MAX_RANK], dst[IR_MAX_RANK], dims[IR_MAX_RANK];
	be_dense_strides(be, x, xst);
	be_dense_strides(be, y, dst);
	dims_of(be, y, dims);
	LLVMValueRef off = be_i64(be, 0);
	for (int d = 0; d < r; d++) {
		LLVMValueRef n_d = be_dim(be, xv->dims[d]), start = be_i64(be, 0), len = n_d;
		if (which[d] >= 0)
			slice_axis(be, n_d, starts[which[d]], ends[which[d]], step[d], &start, &len);
		be_check_eq(be, loc, n->op, "output dim", dims[d], len);
		/* start may be past the end only when some length is 0: then
		 * nothing is read */
		off = LLVMBuildAdd(be->b, off, LLVMBuildMul(be->b, start, xst[d], ""), "");
		sst[d] = LLVMBuildMul(be->b, be_i64(be, step[d]), xst[d], "");
	}
	LLVMValueRef src = elem_ptr(be, ety, be_val_ptr(be, x), off);
	be_copy_nest(be, ety, r, dims, src, sst, be_val_ptr(be, y), dst);
	return 1;
}

int be_emit_layout(Be *be, NodeId id)
{
	const Node *n = IR_NODE(be->g, id);
	switch (n->op) {
	case OP_Reshape: case OP_Flatten: case OP_Squeeze: case OP_Unsqueeze: case OP_Identity:
	case OP_Transpose: case OP_Expand: case OP_Slice: case OP_Concat: case OP_Split:
		break;
	default:
		return 0;
	}
	if (n->nin < 1 || n->nout < 1 || n->in[0] < 0 || n->out[0] < 0)
		return 0;
	/* Split: every output present; the others: the one output with storage */
	for (int k = 0; k < n->nout; k++)
		if (n->out[k] < 0 || (n->op != OP_Split && k > 0))
			return 0;
	if (n->op != OP_Split && !be_has_storage(be, n->out[0]))
		return 0;
	const Value *xv = IR_VAL(be->g, n->in[0]), *yv = IR_VAL(be->g, n->out[0]);
	LLVMTypeRef ety = be_copy_type(be, xv->dtype);
	if (!ety || xv->dtype != yv->dtype || xv->rank < 0 || yv->rank < 0)
		return 0;
	char lb[64];
	const char *loc = be_node_loc(be, id, lb, sizeof lb);
	switch (n->op) {
	case OP_Transpose: return emit_transpose(be, id, n, loc, ety);
	case OP_Expand: return emit_expand(be, n, loc, ety);
	case OP_Slice: return emit_slice(be, n, loc, ety);
	case OP_Concat: case OP_Split: return emit_concat_split(be, id, n, loc, ety);
	default: return emit_same_data(be, n, loc);
	}
}
