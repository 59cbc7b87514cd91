/* emit_dims.c: symbolic dims as code, and the two functions made of them.
 *
 * A dim (ir_dim_node tree over symbols) is evaluated from the function's
 * symbol array.  All dim code goes into the function's entry block, so
 * every value dominates every use and each DimId is computed once per
 * function (memo).  Division and mod are floor operations, as in ir/dim.c;
 * a zero divisor gives 0 instead of a trap.
 *
 *   void kiln__plan(const int64_t *sym, int64_t *bufsize)      bytes per buffer
 *   void kiln__out_shapes(const int64_t *sym, int64_t *shapes) nout x KILN_MAX_RANK
 */
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "rt.h"

void be_dims_begin(Be *be)
{
	free(be->dmemo);
	be->dmemo = NULL;
	be->ndmemo = 0;
}

static void memo_put(Be *be, DimId d, LLVMValueRef v)
{
	if (d >= be->ndmemo) {
		int32_t n = be->ndmemo ? be->ndmemo : 256;
		while (n <= d)
			n *= 2;
		be->dmemo = realloc(be->dmemo, (size_t)n * sizeof *be->dmemo);
		if (!be->dmemo)
			abort();
		memset(be->dmemo + be->ndmemo, 0, (size_t)(n - be->ndmemo) * sizeof *be->dmemo);
		be->ndmemo = n;
	}
	be->dmemo[d] = v;
}

/* floor(a / b) and a - b*floor(a / b); 0 when b == 0. */
static LLVMValueRef floor_divmod(Be *be, LLVMValueRef a, LLVMValueRef b, bool mod)
{
	LLVMBuilderRef B = be->db;
	LLVMValueRef zero = be_i64(be, 0), one = be_i64(be, 1);
	LLVMValueRef bz = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
	LLVMValueRef bs = LLVMBuildSelect(B, bz, one, b, "");
	LLVMValueRef q = LLVMBuildSDiv(B, a, bs, "");
	LLVMValueRef r = LLVMBuildSRem(B, a, bs, "");
	/* adjust when the remainder is non-zero and its sign differs from b's */
	LLVMValueRef rnz = LLVMBuildICmp(B, LLVMIntNE, r, zero, "");
	LLVMValueRef rneg = LLVMBuildICmp(B, LLVMIntSLT, r, zero, "");
	LLVMValueRef bneg = LLVMBuildICmp(B, LLVMIntSLT, bs, zero, "");
	LLVMValueRef adj = LLVMBuildAnd(B, rnz, LLVMBuildXor(B, rneg, bneg, ""), "");
	LLVMValueRef res = mod ? LLVMBuildSelect(B, adj, LLVMBuildAdd(B, r, bs, ""), r, "")
	                       : LLVMBuildSelect(B, adj, LLVMBuildSub(B, q, one, ""), q, "");
	return LLVMBuildSelect(B, bz, zero, res, "");
}

LLVMValueRef be_dim(Be *be, DimId d)
{
	if (d >= 0 && d < be->ndmemo && be->dmemo[d])
		return be->dmemo[d];
	const DimNode *n = ir_dim_node(be->g, d);
	LLVMBuilderRef B = be->db;
	LLVMValueRef r, a = NULL, b = NULL;
	if (n->kind != DIM_CONST && n->kind != DIM_SYM) {
		a = be_dim(be, n->a);
		b = be_dim(be, n->b);
	}
	switch ((DimKind)n->kind) {
	case DIM_CONST:
		return be_i64(be, n->c);  /* constants need no memo */
	case DIM_SYM: {
		if (be->symmap[n->c] < 0)
			return be_i64(be, 0);  /* unbound: be_map_symbols reported it */
		LLVMValueRef idx = be_i64(be, be->symmap[n->c]);
		LLVMValueRef p = LLVMBuildGEP2(B, be->t_i64, be->symptr, &idx, 1, "");
		r = LLVMBuildLoad2(B, be->t_i64, p, ir_sym_name(be->g, (int)n->c));
		break;
	}
	case DIM_ADD: r = LLVMBuildAdd(B, a, b, ""); break;
	case DIM_MUL: r = LLVMBuildMul(B, a, b, ""); break;
	case DIM_DIV: r = floor_divmod(be, a, b, false); break;
	case DIM_MOD: r = floor_divmod(be, a, b, true); break;
	case DIM_MAX: r = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, a, b, ""), a, b, ""); break;
	case DIM_MIN: r = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, b, ""), a, b, ""); break;
	default: r = be_i64(be, 0); break;
	}
	memo_put(be, d, r);
	return r;
}

LLVMValueRef be_dims_prod(Be *be, ValId v, int from, int to)
{
	const Value *val = IR_VAL(be->g, v);
	int64_t c = 1;
	LLVMValueRef r = NULL;
	for (int d = from; d < to; d++) {
		int64_t k;
		if (ir_dim_is_const(be->g, val->dims[d], &k)) {
			c *= k;
			continue;
		}
		LLVMValueRef x = be_dim(be, val->dims[d]);
		r = r ? LLVMBuildMul(be->db, r, x, "") : x;
	}
	if (!r)
		return be_i64(be, c);
	return c == 1 ? r : LLVMBuildMul(be->db, r, be_i64(be, c), "");
}

LLVMValueRef be_numel(Be *be, ValId v)
{
	return be_dims_prod(be, v, 0, IR_VAL(be->g, v)->rank);
}

LLVMValueRef be_nbytes(Be *be, ValId v)
{
	size_t es = ir_dtype_size(IR_VAL(be->g, v)->dtype);
	return LLVMBuildMul(be->db, be_numel(be, v), be_i64(be, (int64_t)es), "");
}

/* A void function (const int64_t *sym, int64_t *dst) with one block. */
static LLVMValueRef simple_fn(Be *be, const char *name, LLVMValueRef *dst)
{
	LLVMTypeRef ps[2] = {be->t_ptr, be->t_ptr};
	LLVMValueRef fn = LLVMAddFunction(be->mod, name, LLVMFunctionType(be->t_void, ps, 2, 0));
	LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(be->ctx, fn, "entry");
	LLVMPositionBuilderAtEnd(be->db, bb);
	be->fn = fn;
	be->symptr = LLVMGetParam(fn, 0);
	*dst = LLVMGetParam(fn, 1);
	be_dims_begin(be);
	return fn;
}

static void store_i64(Be *be, LLVMValueRef base, int64_t idx, LLVMValueRef v)
{
	LLVMValueRef i = be_i64(be, idx);
	LLVMBuildStore(be->db, v, LLVMBuildGEP2(be->db, be->t_i64, base, &i, 1, ""));
}

void be_emit_plan_fn(Be *be)
{
	LLVMValueRef dst;
	simple_fn(be, "kiln__plan", &dst);
	for (int32_t b = 0; b < be->nbufs; b++)
		store_i64(be, dst, b, be_nbytes(be, be->bufval[b]));
	LLVMBuildRetVoid(be->db);
}

void be_emit_out_shapes_fn(Be *be)
{
	LLVMValueRef dst;
	simple_fn(be, "kiln__out_shapes", &dst);
	Graph *g = be->g;
	for (int k = 0; k < g->noutputs; k++) {
		const Value *val = IR_VAL(g, g->outputs[k]);
		for (int d = 0; d < KILN_MAX_RANK; d++)
			store_i64(be, dst, (int64_t)k * KILN_MAX_RANK + d,
			          d < val->rank ? be_dim(be, val->dims[d]) : be_i64(be, 0));
	}
	LLVMBuildRetVoid(be->db);
}

/* ---- symbols: every one the code reads must be bound by an input dim ----
 * (desc symbols are the bound ones, in ir symbol order) */

static void mark_syms(const Graph *g, DimId d, unsigned char *used)
{
	const DimNode *n = ir_dim_node(g, d);
	if (n->kind == DIM_SYM) {
		used[n->c] = 1;
	} else if (n->kind != DIM_CONST) {
		mark_syms(g, n->a, used);
		mark_syms(g, n->b, used);
	}
}

static void mark_value(const Graph *g, ValId v, unsigned char *used)
{
	const Value *val = IR_VAL(g, v);
	for (int d = 0; d < val->rank; d++)
		mark_syms(g, val->dims[d], used);
}

int32_t be_expr_sym(const Be *be, DimId d)
{
	for (int i = 0; i < be->nexpr; i++)
		if (be->expr_dim[i] == d)
			return be->expr_sym[i];
	return -1;
}

static void map_expr_dims(Be *be)
{
	Graph *g = be->g;
	int max = g->ninputs * IR_MAX_RANK + 1;
	be->expr_dim = malloc((size_t)max * sizeof *be->expr_dim);
	be->expr_sym = malloc((size_t)max * sizeof *be->expr_sym);
	be->expr_in = malloc((size_t)max * sizeof *be->expr_in);
	be->expr_axis = malloc((size_t)max * sizeof *be->expr_axis);
	if (!be->expr_dim || !be->expr_sym || !be->expr_in || !be->expr_axis)
		abort();
	for (int k = 0; k < g->ninputs; k++) {
		const Value *val = IR_VAL(g, g->inputs[k]);
		for (int d = 0; d < val->rank; d++) {
			const DimNode *dn = ir_dim_node(g, val->dims[d]);
			if (dn->kind == DIM_CONST || dn->kind == DIM_SYM || be_expr_sym(be, val->dims[d]) >= 0)
				continue;
			int i = be->nexpr++;
			be->expr_dim[i] = val->dims[d];
			be->expr_sym[i] = be->nsym++;
			be->expr_in[i] = k;
			be->expr_axis[i] = d;
		}
	}
}

/* if (sym[pseudo] != expr) return rt_error(...) for each expression dim */
void be_emit_expr_checks(Be *be)
{
	Graph *g = be->g;
	for (int i = 0; i < be->nexpr; i++) {
		LLVMValueRef idx = be_i64(be, be->expr_sym[i]);
		LLVMValueRef p = LLVMBuildGEP2(be->db, be->t_i64, be->symptr, &idx, 1, "");
		LLVMValueRef got = LLVMBuildLoad2(be->db, be->t_i64, p, "");
		LLVMValueRef want = be_dim(be, be->expr_dim[i]);
		char s[256];
		ir_dim_str(g, be->expr_dim[i], s, sizeof s);
		const Value *iv = IR_VAL(g, g->inputs[be->expr_in[i]]);
		LLVMValueRef args[5] = {be_cstr(be, iv->name ? iv->name : "?"),
		                        be_i32(be, be->expr_axis[i]), want, be_cstr(be, s), got};
		be_error_if(be, LLVMBuildICmp(be->b, LLVMIntNE, got, want, ""),
		            "input '%s' dim %d: expected %lld (%s), got %lld", args, 5);
	}
}

int be_map_symbols(Be *be)
{
	Graph *g = be->g;
	int ns = ir_nsyms(g);
	unsigned char *used = calloc((size_t)ns + 1, 1), *bound = calloc((size_t)ns + 1, 1);
	if (!used || !bound)
		abort();
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (n->dead)
			continue;
		for (int k = 0; k < n->nin; k++)
			if (n->in[k] >= 0)
				mark_value(g, n->in[k], used);
		for (int k = 0; k < n->nout; k++)
			if (n->out[k] >= 0 && IR_VAL(g, n->out[k])->rank > 0)
				mark_value(g, n->out[k], used);
	}
	for (int k = 0; k < g->noutputs; k++)
		mark_value(g, g->outputs[k], used);
	for (int k = 0; k < g->ninputs; k++) {
		const Value *val = IR_VAL(g, g->inputs[k]);
		for (int d = 0; d < val->rank; d++) {
			const DimNode *dn = ir_dim_node(g, val->dims[d]);
			if (dn->kind == DIM_SYM)
				bound[dn->c] = 1;
			else
				mark_syms(g, val->dims[d], used);
		}
	}
	int rc = 0;
	be->symmap = malloc(((size_t)ns + 1) * sizeof *be->symmap);
	if (!be->symmap)
		abort();
	be->nsym = 0;
	for (int s = 0; s < ns; s++)
		be->symmap[s] = bound[s] ? be->nsym++ : -1;
	map_expr_dims(be);
	for (int s = 0; s < ns && !rc; s++)
		if (used[s] && !bound[s])
			rc = diag_fail(be->diag, "symbol '%s' is not bound by any graph input dim "
			               "(it cannot be computed at run time)", ir_sym_name(g, s));
	free(used);
	free(bound);
	return rc;
}
