/* emit_dims.c: symbolic dims as code, and the two functions made of them.
 *
 * A dim (ir_dim_node tree over symbols) is evaluated from the function's
 * symbol array.  All dim code goes into the function's entry block, so
 * every value dominates every use and each DimId is computed once per
 * function (memo).  Division and mod are floor operations, as in ir/dim.c;
 * a zero divisor gives 0 instead of a trap.
 *
 *   int kiln__plan(const int64_t *sym, int64_t *bufsize, kiln_frame *f)
 *                                   checks sizes (below), bytes per buffer
 *   void kiln__out_shapes(const int64_t *sym, int64_t *shapes) nout x KILN_MAX_RANK
 */
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "checked.h"
#include "rt.h"

void be_dims_begin(Be *be)
{
	free(be->dmemo);
	free(be->dovf);
	be->dmemo = NULL;
	be->dovf = NULL;
	be->ndmemo = 0;
}

static void memo_put(Be *be, DimId d, LLVMValueRef v, LLVMValueRef ovf)
{
	if (d >= be->ndmemo) {
		int32_t n = be->ndmemo ? be->ndmemo : 256;
		while (n <= d)
			n *= 2;
		be->dmemo = realloc(be->dmemo, (size_t)n * sizeof *be->dmemo);
		if (!be->dmemo)
			abort();
		memset(be->dmemo + be->ndmemo, 0, (size_t)(n - be->ndmemo) * sizeof *be->dmemo);
		if (be->dcheck) {   /* only kiln__plan's memo has flags (freed after it) */
			be->dovf = realloc(be->dovf, (size_t)n * sizeof *be->dovf);
			if (!be->dovf)
				abort();
			memset(be->dovf + be->ndmemo, 0, (size_t)(n - be->ndmemo) * sizeof *be->dovf);
		}
		be->ndmemo = n;
	}
	be->dmemo[d] = v;
	if (be->dovf)
		be->dovf[d] = ovf;
}

/* a | b over optional i1 flags (NULL: false). */
static LLVMValueRef or_flag(Be *be, LLVMValueRef a, LLVMValueRef b)
{
	if (!a || !b)
		return a ? a : b;
	return LLVMBuildOr(be->db, a, b, "");
}

/* The overflow flag of d in checked mode (NULL: cannot overflow). */
static LLVMValueRef dim_ovf(Be *be, DimId d)
{
	return be->dovf && d >= 0 && d < be->ndmemo ? be->dovf[d] : NULL;
}

/* a op b with llvm.s{add,mul}.with.overflow; *ovf gets the flag. */
static LLVMValueRef arith_ovf(Be *be, const char *name, LLVMValueRef a, LLVMValueRef b,
                              LLVMValueRef *ovf)
{
	LLVMBuilderRef B = be->db;
	unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
	LLVMValueRef fn = LLVMGetIntrinsicDeclaration(be->mod, id, &be->t_i64, 1);
	LLVMTypeRef fty = LLVMIntrinsicGetType(be->ctx, id, &be->t_i64, 1);
	LLVMValueRef args[2] = {a, b};
	LLVMValueRef res = LLVMBuildCall2(B, fty, fn, args, 2, "");
	*ovf = LLVMBuildExtractValue(B, res, 1, "");
	return LLVMBuildExtractValue(B, res, 0, "");
}

/* floor(a / b) and a - b*floor(a / b); 0 when b == 0.  b == -1 is done as
 * a negation (sdiv INT64_MIN by -1 would trap); *ovf, when asked for, is
 * set when that negation overflows. */
static LLVMValueRef floor_divmod(Be *be, LLVMValueRef a, LLVMValueRef b, bool mod, LLVMValueRef *ovf)
{
	LLVMBuilderRef B = be->db;
	LLVMValueRef zero = be_i64(be, 0), one = be_i64(be, 1);
	LLVMValueRef bz = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
	LLVMValueRef bm1 = LLVMBuildICmp(B, LLVMIntEQ, b, be_i64(be, -1), "");
	LLVMValueRef bs = LLVMBuildSelect(B, LLVMBuildOr(B, bz, bm1, ""), one, b, "");
	LLVMValueRef q = LLVMBuildSDiv(B, a, bs, "");
	LLVMValueRef r = LLVMBuildSRem(B, a, bs, "");
	/* adjust when the remainder is non-zero and its sign differs from b's */
	LLVMValueRef rnz = LLVMBuildICmp(B, LLVMIntNE, r, zero, "");
	LLVMValueRef rneg = LLVMBuildICmp(B, LLVMIntSLT, r, zero, "");
	LLVMValueRef bneg = LLVMBuildICmp(B, LLVMIntSLT, bs, zero, "");
	LLVMValueRef adj = LLVMBuildAnd(B, rnz, LLVMBuildXor(B, rneg, bneg, ""), "");
	LLVMValueRef res = mod ? LLVMBuildSelect(B, adj, LLVMBuildAdd(B, r, bs, ""), r, "")
	                       : LLVMBuildSelect(B, adj, LLVMBuildSub(B, q, one, ""), q, "");
	if (!mod)   /* b == -1: q == a, r == 0 (no adjustment): negate */
		res = LLVMBuildSelect(B, bm1, LLVMBuildSub(B, zero, res, ""), res, "");
	if (ovf && !mod)
		*ovf = LLVMBuildAnd(B, bm1, LLVMBuildICmp(B, LLVMIntEQ, a, be_i64(be, INT64_MIN), ""), "");
	return LLVMBuildSelect(B, bz, zero, res, "");
}

LLVMValueRef be_dim(Be *be, DimId d)
{
	if (d >= 0 && d < be->ndmemo && be->dmemo[d])
		return be->dmemo[d];
	const DimNode *n = ir_dim_node(be->g, d);
	LLVMBuilderRef B = be->db;
	LLVMValueRef r, a = NULL, b = NULL, ovf = NULL;
	if (n->kind != DIM_CONST && n->kind != DIM_SYM) {
		a = be_dim(be, n->a);
		b = be_dim(be, n->b);
	}
	bool ck = be->dcheck;
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
	case DIM_ADD:
		r = ck ? arith_ovf(be, "llvm.sadd.with.overflow", a, b, &ovf) : LLVMBuildAdd(B, a, b, "");
		break;
	case DIM_MUL:
		r = ck ? arith_ovf(be, "llvm.smul.with.overflow", a, b, &ovf) : LLVMBuildMul(B, a, b, "");
		break;
	case DIM_DIV: r = floor_divmod(be, a, b, false, ck ? &ovf : NULL); break;
	case DIM_MOD: r = floor_divmod(be, a, b, true, NULL); break;
	case DIM_MAX: r = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, a, b, ""), a, b, ""); break;
	case DIM_MIN: r = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, b, ""), a, b, ""); break;
	default: r = be_i64(be, 0); break;
	}
	if (ck && a)   /* an operand's overflow taints the result */
		ovf = or_flag(be, ovf, or_flag(be, dim_ovf(be, n->a), dim_ovf(be, n->b)));
	memo_put(be, d, r, ck ? ovf : NULL);
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

/* ---- kiln__plan: sizes checked before the run ----------------------------
 * int kiln__plan(const int64_t *sym, int64_t *bufsize, kiln_frame *f)
 *
 * Every value whose dims the run evaluates (inputs and outputs of live
 * nodes, graph inputs and outputs) and that has a symbolic dim is checked
 * with overflow-checked arithmetic, in the rule of ir/checked.h: no dim
 * expression overflows, no dim is negative, and the dims (zeros counted as
 * 1) times the element size fit the size limit.  So every count, stride,
 * byte size and offset kiln__run and the kernels compute from them fits
 * too.  Static values were checked at compile time (ir_check_value_size).
 * A failed check returns rt_error(f, ...) naming the node. */

/* if (cond) return rt_error(f, fmt, args...); continue in a fresh block */
static void plan_fail_if(Be *be, LLVMValueRef frame, LLVMValueRef cond, const char *fmt,
                         LLVMValueRef *args, int nargs)
{
	LLVMBuilderRef B = be->db;
	LLVMBasicBlockRef err = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "too_large");
	LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(be->ctx, be->fn, "ok");
	LLVMBuildCondBr(B, cond, err, ok);
	LLVMPositionBuilderAtEnd(B, err);
	LLVMTypeRef ps[2] = {be->t_ptr, be->t_ptr};
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, ps, 2, 1);
	LLVMValueRef a[8] = {frame, be_cstr(be, fmt)};
	for (int i = 0; i < nargs && i < 6; i++)
		a[2 + i] = args[i];
	LLVMValueRef rc = LLVMBuildCall2(B, fty, be_declare(be, "rt_error", fty), a,
	                                 (unsigned)(2 + (nargs < 6 ? nargs : 6)), "");
	LLVMBuildRet(B, rc);
	LLVMPositionBuilderAtEnd(B, ok);
}

/* "node 'n' (Op): output 'v'" or "input 'v'" */
static void value_desc(Be *be, ValId v, char *buf, size_t n)
{
	const Value *val = IR_VAL(be->g, v);
	char nd[300];
	if (val->kind == V_NODE && val->def >= 0)
		snprintf(buf, n, "%s: output '%s'", be_node_desc(be, val->def, nd, sizeof nd),
		         val->name ? val->name : "?");
	else
		snprintf(buf, n, "input '%s'", val->name ? val->name : "?");
}

/* "[batch, sequence*4]" */
static void shape_desc(const Graph *g, const Value *val, char *buf, size_t n)
{
	size_t len = (size_t)snprintf(buf, n, "[");
	for (int d = 0; d < val->rank && len + 4 < n; d++) {
		if (d)
			len += (size_t)snprintf(buf + len, n - len, ", ");
		len += (size_t)ir_dim_str(g, val->dims[d], buf + len, n - len);
	}
	if (len + 2 < n)
		snprintf(buf + len, n - len, "]");
}

static bool check_seen(Be *be, ValId v, bool only_ovf);

/* Graph inputs (only_ovf): their dims are given; only an expression dim
 * ("s25 + s41") can overflow. */
static void check_value_size(Be *be, LLVMValueRef frame, ValId v, int64_t limit, bool only_ovf)
{
	Graph *g = be->g;
	const Value *val = IR_VAL(g, v);
	int64_t es = (int64_t)ir_dtype_size(val->dtype);
	bool sym = false;
	for (int d = 0; d < val->rank; d++)
		sym = sym || !ir_dim_is_const(g, val->dims[d], NULL);
	if (!sym || es == 0 || val->kind == V_CONST)
		return;
	if (be_value_dyn(be, v) != be->dcheck_dyn)   /* kiln__plan: not those; kiln__alloc: only */
		return;
	if (!be->dcheck_dyn && check_seen(be, v, only_ovf))
		return;
	LLVMBuilderRef B = be->db;
	LLVMTypeRef t_f64 = LLVMDoubleTypeInContext(be->ctx);
	LLVMValueRef ovf = NULL, big = NULL, o, minv = NULL, bound = be_i64(be, 1);
	LLVMValueRef elems = LLVMConstReal(t_f64, 1.0), one = be_i64(be, 1);
	for (int d = 0; d < val->rank; d++) {
		LLVMValueRef x = be_dim(be, val->dims[d]);
		ovf = or_flag(be, ovf, dim_ovf(be, val->dims[d]));
		minv = minv ? LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, x, minv, ""), x, minv, "") : x;
		LLVMValueRef x1 = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSGT, x, one, ""), x, one, "");
		bound = arith_ovf(be, "llvm.smul.with.overflow", bound, x1, &o);
		big = or_flag(be, big, o);
		elems = LLVMBuildFMul(B, elems, LLVMBuildSIToFP(B, x1, t_f64, ""), "");
	}
	LLVMValueRef bytes = arith_ovf(be, "llvm.smul.with.overflow", bound, be_i64(be, es), &o);
	big = or_flag(be, or_flag(be, big, o), LLVMBuildICmp(B, LLVMIntSGT, bytes, be_i64(be, limit), ""));
	char what[700], shape[300];
	/* the data-dependent values (kiln__alloc) depend on input values too */
	const char *given = be->dcheck_dyn ? "for these inputs" : "for these input shapes";
	value_desc(be, v, what, sizeof what);
	shape_desc(g, val, shape, sizeof shape);
	LLVMValueRef w = be_cstr(be, what), sh = be_cstr(be, shape);
	char fmt[300];
	snprintf(fmt, sizeof fmt, "%%s of shape %%s: a dim overflows 64 bits %s", given);
	if (ovf)
		plan_fail_if(be, frame, ovf, fmt, (LLVMValueRef[]){w, sh}, 2);
	if (only_ovf)
		return;
	snprintf(fmt, sizeof fmt, "%%s of shape %%s has a negative dim (%%lld) %s", given);
	plan_fail_if(be, frame, LLVMBuildICmp(B, LLVMIntSLT, minv, be_i64(be, 0), ""), fmt,
	             (LLVMValueRef[]){w, sh, minv}, 3);
	snprintf(fmt, sizeof fmt, "%%s of shape %%s has %%.3g elements of %%lld bytes %s: over "
	         "the limit of %%lld bytes per tensor (kiln compile --max-tensor-bytes)", given);
	plan_fail_if(be, frame, big, fmt,
	             (LLVMValueRef[]){w, sh, elems, be_i64(be, es), be_i64(be, limit)}, 5);
}

/* kiln__plan and kiln__out_shapes do work per value, buffer and output:
 * they call parts of at most PART_ITEMS items each (internal, not inlined,
 * each with its own dim memo), so no function grows with the graph (one
 * function of 12,000 blocks for a 3,000-op chain made LLVM superlinear). */
#define PART_ITEMS 256

/* Whether a check of v's size (kind only_ovf) is the same as one made
 * before: the same element size and dims (DimIds are hash-consed) give the
 * same result, so only the first of them, the first to fail, is kept. */
static bool check_seen(Be *be, ValId v, bool only_ovf)
{
	const Value *val = IR_VAL(be->g, v);
	int64_t key[3 + KILN_MAX_RANK] = {'P', (int64_t)ir_dtype_size(val->dtype) * 2 + only_ovf, val->rank};
	for (int d = 0; d < val->rank && d < KILN_MAX_RANK; d++)
		key[3 + d] = val->dims[d];
	size_t len = (size_t)(3 + (val->rank < KILN_MAX_RANK ? val->rank : KILN_MAX_RANK)) * sizeof *key;
	if (be_tab_get(&be->tab, key, len))
		return true;
	be_tab_put(&be->tab, key, len, be->fn);
	return false;
}

/* The values the run evaluates dims of, each once, in the order of their
 * checks (negative: a graph input, only its expression dims checked). */
static ValId *values_to_check(Be *be, int *nout)
{
	Graph *g = be->g;
	unsigned char *seen = calloc((size_t)g->nvals + 1, 1);
	ValId *vs = malloc(((size_t)g->nvals + 1) * sizeof *vs);
	if (!seen || !vs)
		abort();
	int n = 0;
	for (int k = 0; k < g->ninputs; k++)
		if (!seen[g->inputs[k]]) {
			seen[g->inputs[k]] = 1;
			vs[n++] = -1 - g->inputs[k];
		}
	for (int i = 0; i < g->norder; i++) {
		const Node *nd = IR_NODE(g, g->order[i]);
		if (nd->dead)
			continue;
		for (int k = 0; k < nd->nin + nd->nout; k++) {
			ValId v = k < nd->nin ? nd->in[k] : nd->out[k - nd->nin];
			if (v >= 0 && !seen[v] && IR_VAL(g, v)->rank > 0) {
				seen[v] = 1;
				vs[n++] = v;
			}
		}
	}
	for (int k = 0; k < g->noutputs; k++)
		if (!seen[g->outputs[k]]) {
			seen[g->outputs[k]] = 1;
			vs[n++] = g->outputs[k];
		}
	free(seen);
	*nout = n;
	return vs;
}

/* i32 kiln__plan_K(sym, bufsize, f): items [lo, hi) of checks then buffer
 * sizes; the builder ends in its last block. */
static void no_inline(Be *be, LLVMValueRef fn)
{
	LLVMSetLinkage(fn, LLVMInternalLinkage);
	unsigned kind = LLVMGetEnumAttributeKindForName("noinline", 8);
	LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(be->ctx, kind, 0));
}

static LLVMValueRef plan_part(Be *be, int k, const ValId *vs, int nv, int lo, int hi)
{
	Graph *g = be->g;
	int64_t limit = g->max_tensor_bytes > 0 ? g->max_tensor_bytes : IR_MAX_TENSOR_BYTES;
	LLVMTypeRef ps[3] = {be->t_ptr, be->t_ptr, be->t_ptr};
	char name[40];
	snprintf(name, sizeof name, "kiln__plan_%d", k);
	LLVMValueRef fn = LLVMAddFunction(be->mod, name, LLVMFunctionType(be->t_i32, ps, 3, 0));
	no_inline(be, fn);
	LLVMPositionBuilderAtEnd(be->db, LLVMAppendBasicBlockInContext(be->ctx, fn, "entry"));
	be->fn = fn;
	be->symptr = LLVMGetParam(fn, 0);
	be_dims_begin(be);
	for (int i = lo; i < hi; i++) {
		if (i < nv) {
			ValId v = vs[i] < 0 ? -1 - vs[i] : vs[i];
			check_value_size(be, LLVMGetParam(fn, 2), v, limit, vs[i] < 0);
		} else {
			store_i64(be, LLVMGetParam(fn, 1), i - nv, be_nbytes(be, be->bufval[i - nv]));
		}
	}
	LLVMBuildRet(be->db, be_i32(be, 0));
	return fn;
}

void be_emit_plan_fn(Be *be)
{
	int nv, k = 0;
	ValId *vs = values_to_check(be, &nv);
	int total = nv + be->nbufs;
	LLVMTypeRef ps[3] = {be->t_ptr, be->t_ptr, be->t_ptr};
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, ps, 3, 0);
	LLVMValueRef fn = LLVMAddFunction(be->mod, "kiln__plan", fty);
	LLVMBuilderRef B = be->b;
	LLVMPositionBuilderAtEnd(B, LLVMAppendBasicBlockInContext(be->ctx, fn, "entry"));
	LLVMValueRef args[3] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2)};
	be->dcheck = true;
	for (int lo = 0; lo < total; lo += PART_ITEMS, k++) {
		LLVMValueRef part = plan_part(be, k, vs, nv, lo, lo + PART_ITEMS < total ? lo + PART_ITEMS : total);
		LLVMValueRef rc = LLVMBuildCall2(B, fty, part, args, 3, "");
		LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(be->ctx, fn, "fail");
		LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(be->ctx, fn, "next");
		LLVMBuildCondBr(B, LLVMBuildICmp(B, LLVMIntNE, rc, be_i32(be, 0), ""), bad, next);
		LLVMPositionBuilderAtEnd(B, bad);
		LLVMBuildRet(B, rc);
		LLVMPositionBuilderAtEnd(B, next);
	}
	LLVMBuildRet(B, be_i32(be, 0));
	be->dcheck = false;
	be_dims_begin(be);
	free(vs);
}

/* ---- data-dependent buffers ----------------------------------------------
 * i32 kiln__alloc(f), called before node id: its outputs that live in
 * f->dyn are size-checked as kiln__plan checks the others (the symbols
 * their dims mention are bound by now) and grown by rt_dyn_alloc. */
LLVMValueRef be_emit_dyn_alloc_fn(Be *be, NodeId id)
{
	Graph *g = be->g;
	const Node *n = IR_NODE(g, id);
	LLVMValueRef fn = LLVMAddFunction(be->mod, "kiln__alloc", LLVMFunctionType(be->t_i32, &be->t_ptr, 1, 0));
	LLVMSetLinkage(fn, LLVMInternalLinkage);
	LLVMPositionBuilderAtEnd(be->db, LLVMAppendBasicBlockInContext(be->ctx, fn, "entry"));
	be->fn = fn;
	LLVMValueRef frame = LLVMGetParam(fn, 0), idx = be_i64(be, 4);   /* kiln_frame.sym */
	be->symptr = LLVMBuildLoad2(be->db, be->t_ptr,
	                            LLVMBuildGEP2(be->db, be->t_ptr, frame, &idx, 1, ""), "sym");
	be_dims_begin(be);
	be->dcheck = be->dcheck_dyn = true;
	int64_t limit = g->max_tensor_bytes > 0 ? g->max_tensor_bytes : IR_MAX_TENSOR_BYTES;
	LLVMTypeRef ps[3] = {be->t_ptr, be->t_i32, be->t_i64};
	LLVMTypeRef fty = LLVMFunctionType(be->t_i32, ps, 3, 0);
	for (int k = 0; k < n->nout; k++) {
		ValId v = n->out[k];
		if (v < 0 || be->vdyn[v] < 0)
			continue;
		check_value_size(be, frame, v, limit, false);
		LLVMValueRef a[3] = {frame, be_i32(be, be->vdyn[v]), be_nbytes(be, v)};
		LLVMValueRef rc = LLVMBuildCall2(be->db, fty, be_declare(be, "rt_dyn_alloc", fty), a, 3, "");
		LLVMBasicBlockRef err = LLVMAppendBasicBlockInContext(be->ctx, fn, "fail");
		LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(be->ctx, fn, "ok");
		LLVMBuildCondBr(be->db, LLVMBuildICmp(be->db, LLVMIntNE, rc, be_i32(be, 0), ""), err, ok);
		LLVMPositionBuilderAtEnd(be->db, err);
		LLVMBuildRet(be->db, rc);
		LLVMPositionBuilderAtEnd(be->db, ok);
	}
	LLVMBuildRet(be->db, be_i32(be, 0));
	be->dcheck = be->dcheck_dyn = false;
	be_dims_begin(be);
	return fn;
}

const char *be_shape_fn_name(Op op)
{
	switch (op) {
	case OP_Reshape: return "Reshape";
	case OP_Expand: return "Expand";
	case OP_Tile: return "Tile";
	case OP_Pad: return "Pad";
	case OP_ConstantOfShape: return "ConstantOfShape";
	case OP_Range: return "Range";
	case OP_Slice: return "Slice";
	case OP_Squeeze: return "Squeeze";
	case OP_Unsqueeze: return "Unsqueeze";
	case OP_Split: return "Split";
	case OP_OneHot: return "OneHot";
	case OP_TopK: return "TopK";
	case OP_KlnPackTokens: return "KlnPackTokens";
	case OP_ReduceSum: case OP_ReduceMean: case OP_ReduceMax: case OP_ReduceMin:
	case OP_ReduceProd: case OP_ReduceL2: case OP_ReduceSumSquare:
		return "Reduce";
	default: return NULL;
	}
}

bool be_node_can_bind(const Node *n)
{
	int need = n->op == OP_ConstantOfShape ? 1 : n->op == OP_Range || n->op == OP_Slice ? 3 : 2;
	if (!be_shape_fn_name(n->op))
		return false;
	for (int k = 0; k < need; k++)   /* the inputs its shape function reads */
		if (k >= n->nin || n->in[k] < 0)
			return false;
	return true;
}

/* kiln__out_shapes(sym, shapes) calls parts of PART_ITEMS / 8 outputs. */
void be_emit_out_shapes_fn(Be *be)
{
	Graph *g = be->g;
	LLVMTypeRef ps[2] = {be->t_ptr, be->t_ptr};
	LLVMTypeRef fty = LLVMFunctionType(be->t_void, ps, 2, 0);
	LLVMValueRef fn = LLVMAddFunction(be->mod, "kiln__out_shapes", fty);
	LLVMPositionBuilderAtEnd(be->b, LLVMAppendBasicBlockInContext(be->ctx, fn, "entry"));
	LLVMValueRef args[2] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)};
	int per = PART_ITEMS / 8;
	for (int lo = 0, k = 0; lo < g->noutputs; lo += per, k++) {
		LLVMValueRef dst;
		char name[40];
		snprintf(name, sizeof name, "kiln__out_shapes_%d", k);
		LLVMValueRef part = simple_fn(be, name, &dst);
		no_inline(be, part);
		for (int o = lo; o < g->noutputs && o < lo + per; o++) {
			const Value *val = IR_VAL(g, g->outputs[o]);
			for (int d = 0; d < KILN_MAX_RANK; d++)
				store_i64(be, dst, (int64_t)o * KILN_MAX_RANK + d,
				          d < val->rank ? be_dim(be, val->dims[d]) : be_i64(be, 0));
		}
		LLVMBuildRetVoid(be->db);
		LLVMBuildCall2(be->b, fty, part, args, 2, "");
	}
	LLVMBuildRetVoid(be->b);
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

/* if (a != b) return rt_error(...) for each dim equality the passes
 * assumed (ir/unify.c), before any kernel runs; the message names the
 * graph inputs whose dims the two sides come from */
void be_emit_assume_checks(Be *be)
{
	Graph *g = be->g;
	for (int i = 0; i < g->nassumes; i++) {
		const IrAssume *as = &g->assumes[i];
		LLVMValueRef a = be_dim(be, as->a), b = be_dim(be, as->b);
		char sa[128], sb[128], oa[512];
		ir_dim_str(g, as->a, sa, sizeof sa);
		ir_dim_str(g, as->b, sb, sizeof sb);
		ir_dim_origin_str(g, ir_dim_add(g, as->a, as->b), oa, sizeof oa);
		LLVMValueRef args[6] = {be_cstr(be, sa), a, be_cstr(be, sb), b, be_cstr(be, oa),
		                        be_cstr(be, as->node)};
		be_error_if(be, LLVMBuildICmp(be->b, LLVMIntNE, a, b, ""),
		            "input sizes disagree: %s is %lld but %s is %lld (%s), which node '%s' "
		            "was compiled to assume equal", args, 6);
	}
}

/* Data-dependent symbols: the binder of each is the first live node that
 * has it as an output extent; they follow the other desc symbols. */
static int map_dyn_symbols(Be *be, const unsigned char *used, unsigned char *bound)
{
	Graph *g = be->g;
	int ns = ir_nsyms(g);
	be->binder = malloc(((size_t)ns + 1) * sizeof *be->binder);
	if (!be->binder)
		abort();
	for (int s = 0; s < ns; s++)
		be->binder[s] = -1;
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		for (int k = 0; k < n->nout && !n->dead; k++) {
			const Value *val = n->out[k] >= 0 ? IR_VAL(g, n->out[k]) : NULL;
			for (int d = 0; val && d < val->rank; d++) {
				const DimNode *dn = ir_dim_node(g, val->dims[d]);
				if (dn->kind == DIM_SYM && ir_sym_is_dyn(g, (int)dn->c) && be->binder[dn->c] < 0 &&
				    !bound[dn->c])
					be->binder[dn->c] = g->order[i];
			}
		}
	}
	for (int s = 0; s < ns; s++) {
		NodeId id = be->binder[s];
		if (id < 0)
			continue;
		if (!be_node_can_bind(IR_NODE(g, id))) {
			char nd[300];
			if (!used[s])
				continue;
			return diag_fail(be->diag, "%s: output extent '%s' depends on run-time values, which "
			                 "kiln computes only for the inputs of shape ops",
			                 be_node_desc(be, id, nd, sizeof nd), ir_sym_name(g, s));
		}
		bound[s] = 1;
		be->symmap[s] = be->nsym++;
		be->ndyn_sym++;
	}
	return 0;
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
	rc = map_dyn_symbols(be, used, bound);
	for (int s = 0; s < ns && !rc; s++)
		if (used[s] && !bound[s])
			rc = diag_fail(be->diag, "symbol '%s' is not bound by any graph input dim "
			               "(it cannot be computed at run time)", ir_sym_name(g, s));
	free(used);
	free(bound);
	return rc;
}
