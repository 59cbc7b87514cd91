/* Shape inference of the quantization ops (ops.def; kernels:
 * runtime/kernels_quant.c):
 *
 *   DynamicQuantizeLinear(x f32)           -> y u8 like x, y_scale f32 [], y_zero_point u8 []
 *   MatMulInteger(A [..., M, K], B [K, N], a_zero_point? [] | [M], b_zero_point? [] | [N])
 *                                          -> i32 [..., M, N]   (A u8|i8 of rank >= 2, B rank 2)
 *   QuantizeLinear(x f32, y_scale [] | [x.dims[axis]], y_zero_point? like y_scale)
 *                                          -> like x, the zero point's dtype (u8 without one)
 *   DequantizeLinear(x u8|i8|i32, x_scale [] | [x.dims[axis]], x_zero_point? like x_scale)
 *                                          -> f32 like x
 */
#include <string.h>

#include "shape_internal.h"

/* input i is a scalar (rank 0, or rank 1 of one element) or, when per is
 * >= 0, a vector of length per */
static int scalar_or_vec(Sh *s, int i, DimId per, const char *what)
{
	const Value *v;
	if (ir_shp_need(s, i, &v))
		return -1;
	int64_t c;
	if (v->rank == 0 || (v->rank == 1 && ir_dim_is_const(s->g, v->dims[0], &c) && c == 1))
		return 0;
	DimId u;
	if (v->rank == 1 && per >= 0)
		return ir_shp_unify(s, v->dims[0], per, &u, what);
	return ir_shp_fail(s, "%s '%s' must be a scalar%s", what, ir_shp_inname(s, i),
	                   per >= 0 ? " or one value per row/column/axis entry" : "");
}

static int dynamic_q(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	ir_shp_out(s, 0, DT_U8, x->rank, x->dims);
	ir_shp_out(s, 1, DT_F32, 0, NULL);
	ir_shp_out(s, 2, DT_U8, 0, NULL);
	return 0;
}

static int matmul_int(Sh *s)
{
	const Value *a, *b;
	if (ir_shp_need(s, 0, &a) || ir_shp_need(s, 1, &b))
		return -1;
	if (a->rank < 2 || b->rank != 2)
		return ir_shp_fail(s, "A must have rank >= 2 and B rank 2 (got %d and %d)", a->rank,
		                   b->rank);
	DimId k;
	if (ir_shp_unify(s, a->dims[a->rank - 1], b->dims[0], &k, "inner dimension"))
		return -1;
	if (ir_shp_in(s, 2) && scalar_or_vec(s, 2, a->dims[a->rank - 2], "a_zero_point"))
		return -1;
	if (ir_shp_in(s, 3) && scalar_or_vec(s, 3, b->dims[1], "b_zero_point"))
		return -1;
	DimId d[IR_MAX_RANK];
	memcpy(d, a->dims, sizeof d);
	d[a->rank - 1] = b->dims[1];
	ir_shp_out(s, 0, DT_I32, a->rank, d);
	return 0;
}

/* QuantizeLinear (q) and DequantizeLinear */
static int qdq(Sh *s, bool q)
{
	const Value *x, *zp = ir_shp_in(s, 2);
	if (ir_shp_need(s, 0, &x))
		return -1;
	/* axis matters only for a 1-D scale (a scalar one ignores it) */
	const Value *sc;
	if (ir_shp_need(s, 1, &sc))
		return -1;
	int ax = 0;
	DimId per = -1;
	int64_t one;
	bool vec = sc->rank == 1 && !(ir_dim_is_const(s->g, sc->dims[0], &one) && one == 1);
	if (x->rank > 0 && vec) {
		if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", 1), x->rank, &ax))
			return -1;
		per = x->dims[ax];
	}
	if (scalar_or_vec(s, 1, per, q ? "y_scale" : "x_scale"))
		return -1;
	if (zp && scalar_or_vec(s, 2, per, q ? "y_zero_point" : "x_zero_point"))
		return -1;
	if (zp && zp->rank != IR_VAL(s->g, SH_NODE(s)->in[1])->rank)
		return ir_shp_fail(s, "the zero point and the scale must have the same shape");
	if (!q && x->dtype == DT_I32 && zp)
		return ir_shp_fail(s, "an i32 input takes no zero point");
	ir_shp_out(s, 0, q ? (zp ? zp->dtype : DT_U8) : DT_F32, x->rank, x->dims);
	return 0;
}

int ir_shp_quant(Sh *s)
{
	switch (SH_NODE(s)->op) {
	case OP_DynamicQuantizeLinear: return dynamic_q(s);
	case OP_MatMulInteger: return matmul_int(s);
	case OP_QuantizeLinear: return qdq(s, true);
	case OP_DequantizeLinear: return qdq(s, false);
	default: return ir_shp_fail(s, "not a quantization op");
	}
}
