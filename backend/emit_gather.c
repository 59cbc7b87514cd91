/* emit_gather.c: Gather as inline loops (the embedding lookup).
 *
 * Data of any dtype of 1, 2, 4 or 8 bytes, i32 or i64 indices, any axis.
 * The data is viewed as [outer, n, inner] around the axis, the output as
 * [outer, nind, inner].  First every index is checked (in [-n, n),
 * negative ones wrap once): an out-of-range one returns rt_error with the
 * kernel's message, "node 'LOC' (Gather): index I out of range [0, N)",
 * before any data moves.  Then per (outer, index) one row of inner
 * elements is copied (a unit-stride loop). */
#include "be.h"

typedef struct Ga {
	ValId x, ind, y;
	int axis;
	LLVMTypeRef ety, ity;      /* element types of data and indices */
	LLVMValueRef xp, ip, yp;
	LLVMValueRef outer, n, inner, nind;
} Ga;

static bool eligible(Be *be, NodeId id, Ga *ga)
{
	const Node *n = IR_NODE(be->g, id);
	if (n->op != OP_Gather || n->nin < 2 || n->nout != 1 || n->in[0] < 0 || n->in[1] < 0)
		return false;
	ga->x = n->in[0];
	ga->ind = n->in[1];
	ga->y = n->out[0];
	const Value *xv = IR_VAL(be->g, ga->x), *iv = IR_VAL(be->g, ga->ind), *yv = IR_VAL(be->g, ga->y);
	if (!be_has_storage(be, ga->y) || xv->rank < 1 || iv->rank < 0 || yv->dtype != xv->dtype ||
	    yv->rank != xv->rank - 1 + iv->rank)
		return false;
	if (iv->dtype != DT_I64 && iv->dtype != DT_I32)
		return false;
	ga->ety = be_copy_type(be, xv->dtype);
	ga->ity = iv->dtype == DT_I64 ? be->t_i64 : be->t_i32;
	int64_t axis = ir_attr_int(be->g, id, "axis", 0);
	if (!ga->ety || axis < -xv->rank || axis >= xv->rank)
		return false;        /* the kernel path reports a bad axis */
	ga->axis = (int)(axis < 0 ? axis + xv->rank : axis);
	return true;
}

/* Whether the output dims are data[:axis] ++ indices ++ data[axis+1:]. */
static bool dims_proven(const Be *be, const Ga *ga)
{
	const Value *xv = IR_VAL(be->g, ga->x), *iv = IR_VAL(be->g, ga->ind), *yv = IR_VAL(be->g, ga->y);
	for (int d = 0; d < yv->rank; d++) {
		DimId want = d < ga->axis ? xv->dims[d]
		           : d < ga->axis + iv->rank ? iv->dims[d - ga->axis]
		           : xv->dims[d - iv->rank + 1];
		if (yv->dims[d] != want)
			return false;
	}
	return true;
}

/* Index k, sign-extended to i64. */
static LLVMValueRef load_index(Be *be, const Ga *ga, LLVMValueRef k)
{
	LLVMValueRef p = LLVMBuildGEP2(be->b, ga->ity, ga->ip, &k, 1, "");
	LLVMValueRef v = LLVMBuildLoad2(be->b, ga->ity, p, "idx");
	return ga->ity == be->t_i64 ? v : LLVMBuildSExt(be->b, v, be->t_i64, "");
}

/* Appends pre, then name (cut to fit before end - 64, '%' doubled for
 * the format), then a quote; the new end (NUL-terminated). */
static char *put_name(char *p, const char *end, const char *pre, const char *name)
{
	p += sprintf(p, "%s", pre);
	for (const char *c = name; *c && p < end - 64; c++) {
		if (*c == '%')
			*p++ = '%';
		*p++ = *c;
	}
	*p++ = '\'';
	*p = 0;
	return p;
}

static void emit_checks(Be *be, const Ga *ga, const char *loc)
{
	LLVMBuilderRef B = be->b;
	BeLoop l;
	LLVMValueRef v = load_index(be, ga, be_loop_begin(be, &l, ga->nind));
	LLVMValueRef lo = LLVMBuildICmp(B, LLVMIntSLT, v, LLVMBuildNeg(B, ga->n, ""), "");
	LLVMValueRef hi = LLVMBuildICmp(B, LLVMIntSGE, v, ga->n, "");
	LLVMValueRef args[3] = {be_cstr(be, loc), v, ga->n};
	/* indices that are a graph input (token ids) are named, as the kernel
	 * names them; '%' in the name doubled for the format */
	char fmt[1200], *p = fmt;
	const char *name = NULL;
	for (int i = 0; i < be->g->ninputs; i++)
		if (be->g->inputs[i] == ga->ind)
			name = IR_VAL(be->g, ga->ind)->name;
	p += sprintf(p, "node '%%s' (Gather): index %%lld");
	if (name)
		p = put_name(p, fmt + sizeof fmt, " of '", name);
	p += sprintf(p, " out of range [0, %%lld)");
	/* and the table, a constant (the word embedding), as the kernel does */
	const Value *xv = IR_VAL(be->g, ga->x);
	if (be->voff[ga->x] >= 0 && xv->nbytes && xv->name && xv->name[0])
		put_name(p, fmt + sizeof fmt, " of table '", xv->name);
	be_error_if(be, LLVMBuildOr(B, lo, hi, ""), fmt, args, 3);
	be_loop_end(be, &l);
}

static void emit_rows(Be *be, const Ga *ga)
{
	LLVMBuilderRef B = be->b;
	LLVMValueRef zero = be_i64(be, 0), one = be_i64(be, 1);
	BeLoop lo, lk;
	LLVMValueRef o = be_loop_begin(be, &lo, ga->outer);
	LLVMValueRef k = be_loop_begin(be, &lk, ga->nind);
	LLVMValueRef v = load_index(be, ga, k);
	v = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, v, zero, ""),
	                    LLVMBuildAdd(B, v, ga->n, ""), v, "");
	LLVMValueRef srow = LLVMBuildAdd(B, LLVMBuildMul(B, o, ga->n, ""), v, "");
	LLVMValueRef drow = LLVMBuildAdd(B, LLVMBuildMul(B, o, ga->nind, ""), k, "");
	LLVMValueRef soff = LLVMBuildMul(B, srow, ga->inner, "");
	LLVMValueRef doff = LLVMBuildMul(B, drow, ga->inner, "");
	LLVMValueRef src = LLVMBuildGEP2(B, ga->ety, ga->xp, &soff, 1, "");
	LLVMValueRef dst = LLVMBuildGEP2(B, ga->ety, ga->yp, &doff, 1, "");
	be_copy_nest(be, ga->ety, 1, &ga->inner, src, &one, dst, &one);
	be_loop_end(be, &lk);
	be_loop_end(be, &lo);
}

int be_emit_gather(Be *be, NodeId id)
{
	Ga ga = {0};
	if (!eligible(be, id, &ga))
		return 0;
	char lb[64];
	const char *loc = be_node_loc(be, id, lb, sizeof lb);
	const Value *xv = IR_VAL(be->g, ga.x);
	ga.outer = be_dims_prod(be, ga.x, 0, ga.axis);
	ga.n = be_dim(be, xv->dims[ga.axis]);
	ga.inner = be_dims_prod(be, ga.x, ga.axis + 1, xv->rank);
	ga.nind = be_numel(be, ga.ind);
	if (!dims_proven(be, &ga)) {
		LLVMValueRef want = LLVMBuildMul(be->b, LLVMBuildMul(be->b, ga.outer, ga.nind, ""),
		                                 ga.inner, "");
		be_check_eq(be, loc, OP_Gather, "output elements", be_numel(be, ga.y), want);
	}
	ga.xp = be_val_ptr(be, ga.x);
	ga.ip = be_val_ptr(be, ga.ind);
	ga.yp = be_val_ptr(be, ga.y);
	emit_checks(be, &ga, loc);
	emit_rows(be, &ga);
	return 1;
}
