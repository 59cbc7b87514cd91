/* Shape inference of reductions, normalizations and linear algebra:
 * Reduce*, ArgMax/ArgMin, CumSum, Softmax, LogSoftmax, LayerNormalization,
 * MatMul (numpy batched, 1-D operands), Gemm.  Einsum is in shape_einsum.c. */
#include <string.h>

#include "checked.h"
#include "ir.h"
#include "shape_internal.h"

static int infer_reduce(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int64_t ax[SH_MAX_SVAL];
	int n = -1;
	DimId e[SH_MAX_SVAL];
	bool keep = ir_attr_int(s->g, s->id, "keepdims", 1) != 0;
	if (ir_shp_in(s, 1) && ir_shp_getsval(s, 1, e, SH_MAX_SVAL) < 0) {
		/* data-dependent axes (distinct: checked at run time) */
		if ((n = ir_shp_len(s, 1, "axes", IR_MAX_RANK)) < 0)
			return -1;
		if (n > x->rank)
			return ir_shp_fail(s, "%d axes for rank %d", n, x->rank);
		if (n > 0) {
			ir_shp_dyn_out(s, 0, x->dtype, keep ? x->rank : x->rank - n);
			return 0;
		}
	} else if (ir_shp_in(s, 1)) {
		if ((n = ir_shp_ints(s, 1, ax, SH_MAX_SVAL, "axes")) < 0)
			return -1;
	} else {
		int cnt = 0;
		const int64_t *a = ir_attr_ints(s->g, s->id, "axes", &cnt);
		if (a) {
			if (cnt > SH_MAX_SVAL)
				return ir_shp_fail(s, "too many axes");
			memcpy(ax, a, sizeof(int64_t) * (size_t)cnt);
			n = cnt;
		}
	}
	bool noop = ir_attr_int(s->g, s->id, "noop_with_empty_axes", 0) != 0;
	bool red[IR_MAX_RANK] = { 0 };
	if (n <= 0) {
		if (noop) {
			ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
			return 0;
		}
		for (int i = 0; i < x->rank; i++)
			red[i] = true;
	}
	for (int i = 0; i < n; i++) {
		int a;
		if (ir_shp_axis(s, ax[i], x->rank, &a))
			return -1;
		red[a] = true;
	}
	DimId out[IR_MAX_RANK];
	int r = 0;
	for (int i = 0; i < x->rank; i++) {
		if (!red[i])
			out[r++] = x->dims[i];
		else if (keep)
			out[r++] = ir_dim_const(s->g, 1);
	}
	ir_shp_out(s, 0, x->dtype, r, out);
	/* content: product or sum of a shape vector */
	Op op = SH_NODE(s)->op;
	DimId v[SH_MAX_SVAL];
	int k;
	if ((op == OP_ReduceProd || op == OP_ReduceSum) && x->rank == 1 && red[0] &&
	    (k = ir_shp_getsval(s, 0, v, SH_MAX_SVAL)) >= 0) {
		DimId acc = ir_dim_const(s->g, op == OP_ReduceProd);
		for (int i = 0; i < k; i++)
			acc = op == OP_ReduceProd ? ir_dim_mul(s->g, acc, v[i]) : ir_dim_add(s->g, acc, v[i]);
		ir_shp_sval(s, 0, 1, &acc);
	}
	return 0;
}

static int infer_argmax(Sh *s)
{
	const Value *x;
	int a;
	if (ir_shp_need(s, 0, &x) || ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", 0), x->rank, &a))
		return -1;
	bool keep = ir_attr_int(s->g, s->id, "keepdims", 1) != 0;
	DimId out[IR_MAX_RANK];
	int r = 0;
	for (int i = 0; i < x->rank; i++) {
		if (i != a)
			out[r++] = x->dims[i];
		else if (keep)
			out[r++] = ir_dim_const(s->g, 1);
	}
	ir_shp_out(s, 0, DT_I64, r, out);
	return 0;
}

/* Softmax/LogSoftmax/CumSum: same shape; the axis must be valid. */
static int infer_same(Sh *s, bool has_axis)
{
	const Value *x;
	int a;
	if (ir_shp_need(s, 0, &x))
		return -1;
	if (has_axis && x->rank > 0 && ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", -1), x->rank, &a))
		return -1;
	ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
	return 0;
}

/* CumSum: the axis input, when it is a known constant, must be in range
 * (else the run fails on every input). */
static int infer_cumsum(Sh *s)
{
	const Value *x;
	DimId e[1];
	int64_t a;
	int ax;
	if (ir_shp_need(s, 0, &x))
		return -1;
	if (x->rank > 0 && ir_shp_in(s, 1) && ir_shp_getsval(s, 1, e, 1) == 1 &&
	    ir_dim_is_const(s->g, e[0], &a) && ir_shp_axis(s, a, x->rank, &ax))
		return -1;
	return infer_same(s, false);
}

/* LayerNormalization's scale (input 1) and bias (2) hold one element or
 * one per normalized element (dims axis..); checked when both counts are
 * static, as the kernel checks them at run time. */
static int ln_param_size(Sh *s, const Value *x, int a)
{
	int64_t n = 1, d;
	for (int i = a; i < x->rank; i++) {
		if (!ir_dim_is_const(s->g, x->dims[i], &d) || d < 0 || !ck_mul_i64(n, d, &n))
			return 0;
	}
	for (int k = 1; k <= 2; k++) {
		const Value *p = ir_shp_in(s, k);
		int64_t m;
		if (p && p->rank >= 0 && ir_shp_const_shape(s, p, &m) && m != n && m != 1)
			return ir_shp_fail(s, "%s '%s' has %lld elements, the normalized dims %lld",
			                   k == 1 ? "scale" : "bias", ir_shp_inname(s, k), (long long)m,
			                   (long long)n);
	}
	return 0;
}

static int infer_layernorm(Sh *s)
{
	const Value *x, *sc;
	int a;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &sc))
		return -1;
	if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", -1), x->rank, &a) ||
	    ln_param_size(s, x, a))
		return -1;
	ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
	/* Mean and InvStdDev: the leading dims, ones from axis on */
	DimId st[IR_MAX_RANK];
	for (int i = 0; i < x->rank; i++)
		st[i] = i < a ? x->dims[i] : ir_dim_const(s->g, 1);
	DType t = (DType)ir_attr_int(s->g, s->id, "stash_type", DT_F32);
	ir_shp_out(s, 1, t, x->rank, st);
	ir_shp_out(s, 2, t, x->rank, st);
	return 0;
}

static int infer_matmul(Sh *s)
{
	const Value *x, *y;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &y))
		return -1;
	if (x->rank < 1 || y->rank < 1)
		return ir_shp_fail(s, "scalar operand");
	if (x->dtype != y->dtype)
		return ir_shp_fail(s, "operands are %s and %s", ir_dtype_name(x->dtype), ir_dtype_name(y->dtype));
	DimId one = ir_dim_const(s->g, 1);
	DimId a[IR_MAX_RANK + 1], b[IR_MAX_RANK + 1];
	int ra = x->rank, rb = y->rank;
	memcpy(a, x->dims, sizeof(DimId) * (size_t)ra);
	memcpy(b, y->dims, sizeof(DimId) * (size_t)rb);
	bool va = ra == 1, vb = rb == 1;
	if (va) {   /* [k] -> [1, k] */
		a[1] = a[0];
		a[0] = one;
		ra = 2;
	}
	if (vb) {   /* [k] -> [k, 1] */
		b[1] = one;
		rb = 2;
	}
	DimId k;
	char p[64], q[64];
	int64_t ka, kb;
	if (ir_dim_is_const(s->g, a[ra - 1], &ka) && ir_dim_is_const(s->g, b[rb - 2], &kb) && ka != kb)
		return ir_shp_fail(s, "inner dims differ: %s vs %s", ir_shp_dimstr(s, a[ra - 1], p, sizeof p),
		                   ir_shp_dimstr(s, b[rb - 2], q, sizeof q));
	if (ir_shp_unify(s, a[ra - 1], b[rb - 2], &k, "inner dims"))
		return -1;
	DimId out[IR_MAX_RANK + 2];
	int r;
	if (ir_shp_bcast(s, ra - 2, a, rb - 2, b, &r, out))
		return -1;
	if (!va)
		out[r++] = a[ra - 2];
	if (!vb)
		out[r++] = b[rb - 1];
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	ir_shp_out(s, 0, x->dtype, r, out);
	return 0;
}

static int infer_gemm(Sh *s)
{
	const Value *x, *y;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &y))
		return -1;
	if (x->rank != 2 || y->rank != 2)
		return ir_shp_fail(s, "operands of rank %d and %d, need 2", x->rank, y->rank);
	bool ta = ir_attr_int(s->g, s->id, "transA", 0) != 0, tb = ir_attr_int(s->g, s->id, "transB", 0) != 0;
	DimId m = x->dims[ta ? 1 : 0], ka = x->dims[ta ? 0 : 1];
	DimId kb = y->dims[tb ? 1 : 0], n = y->dims[tb ? 0 : 1], k;
	if (ir_shp_unify(s, ka, kb, &k, "inner dims"))
		return -1;
	DimId out[2] = { m, n };
	const Value *c = ir_shp_in(s, 2);
	if (c && c->rank >= 0) {   /* C must broadcast to [M, N] */
		DimId tmp[IR_MAX_RANK];
		int r;
		if (c->rank > 2 || ir_shp_bcast(s, 2, out, c->rank, c->dims, &r, tmp))
			return c->rank > 2 ? ir_shp_fail(s, "C of rank %d", c->rank) : -1;
	}
	ir_shp_out(s, 0, x->dtype, 2, out);
	return 0;
}

int ir_shp_math(Sh *s)
{
	switch (SH_NODE(s)->op) {
	case OP_ReduceMean: case OP_ReduceSum: case OP_ReduceMax: case OP_ReduceMin: case OP_ReduceProd:
	case OP_ReduceL2: case OP_ReduceSumSquare:
		return infer_reduce(s);
	case OP_ArgMax: case OP_ArgMin:
		return infer_argmax(s);
	case OP_CumSum:
		return infer_cumsum(s);
	case OP_Softmax: case OP_LogSoftmax:
		return infer_same(s, true);
	case OP_LayerNormalization:
		return infer_layernorm(s);
	case OP_MatMul:
		return infer_matmul(s);
	case OP_Gemm:
		return infer_gemm(s);
	case OP_Einsum:
		return ir_shp_einsum(s);
	default:
		return ir_shp_fail(s, "no shape rule");
	}
}
