/* Shape inference: the driver, the helpers shared by the op families
 * (shape_layout.c, shape_slice.c, shape_math.c, shape_einsum.c) and the
 * elementwise ops.
 *
 * Every output gets a dtype, a rank and symbolic dims; small integer
 * tensors computed from shapes also get their symbolic content (Value.sval)
 * so that Shape -> Gather -> Concat -> Reshape chains resolve to dims.
 *
 * Broadcasting of two dims: equal DimIds stay; a constant 1 takes the
 * other; a constant c != 1 against a symbol gives c (the symbol must be 1
 * or c); two different constants are an error; two different symbolic dims
 * give max(a, b), which is right whenever the model is (each is 1 or the
 * other) -- the backend checks equal-or-1 at run time. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "checked.h"
#include "ir.h"
#include "dim_internal.h"
#include "shape_internal.h"
#include "shape_fused.h"

/* ---- helpers ------------------------------------------------------------- */

static bool sval_dtype(DType t);

int ir_shp_fail(Sh *s, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const Node *n = SH_NODE(s);
	const char *file = s->g->file ? s->g->file : NULL;
	return diag_fail(s->diag, "%s%snode '%s' (%s): %s", file ? file : "", file ? ": " : "",
	                 n->name ? n->name : "?", ir_opname(n->op), msg);
}

const Value *ir_shp_in(Sh *s, int i)
{
	const Node *n = SH_NODE(s);
	if (i < 0 || i >= n->nin || n->in[i] < 0 || n->in[i] >= s->g->nvals)
		return NULL;
	return IR_VAL(s->g, n->in[i]);
}

const char *ir_shp_inname(Sh *s, int i)
{
	const Value *v = ir_shp_in(s, i);
	return v && v->name ? v->name : "?";
}

int ir_shp_need(Sh *s, int i, const Value **v)
{
	const Value *x = ir_shp_in(s, i);
	if (!x)
		return ir_shp_fail(s, "input %d is missing", i);
	if (x->rank < 0 || x->dtype == DT_UNDEF)
		return ir_shp_fail(s, "input '%s' has no inferred shape", x->name ? x->name : "?");
	for (int k = 0; k < x->rank && k < IR_MAX_RANK; k++)
		if (!ir_dim_node(s->g, x->dims[k]))
			return ir_shp_fail(s, "input '%s' has an unknown dim (axis %d)", x->name ? x->name : "?", k);
	*v = x;
	return 0;
}

void ir_shp_out(Sh *s, int i, DType t, int rank, const DimId *dims)
{
	const Node *n = SH_NODE(s);
	if (i >= n->nout || n->out[i] < 0)
		return;
	IR_VAL(s->g, n->out[i])->dtype = t;
	ir_value_set_shape(s->g, n->out[i], rank, dims);
}

void ir_shp_sval(Sh *s, int i, int n, const DimId *e)
{
	const Node *nd = SH_NODE(s);
	if (i >= nd->nout || nd->out[i] < 0 || n > SH_MAX_SVAL)
		return;
	ir_value_set_sval(s->g, nd->out[i], n, e);
}

DimId ir_shp_dyn(Sh *s, int i, int k)
{
	const Node *n = SH_NODE(s);
	const Value *o = i < n->nout && n->out[i] >= 0 ? IR_VAL(s->g, n->out[i]) : NULL;
	char base[256];
	if (o && o->name)
		snprintf(base, sizeof base, "%s", o->name);
	else
		snprintf(base, sizeof base, "%s#%d", n->name ? n->name : "?", i);
	return ir_dim_dyn(s->g, base, k);
}

void ir_shp_dyn_out(Sh *s, int i, DType t, int rank)
{
	DimId d[IR_MAX_RANK];
	for (int k = 0; k < rank; k++)
		d[k] = ir_shp_dyn(s, i, k);
	ir_shp_out(s, i, t, rank, d);
}

int ir_shp_len(Sh *s, int i, const char *what, int max)
{
	const Value *v;
	int64_t n = 1;
	if (ir_shp_need(s, i, &v))
		return -1;
	if (v->rank > 1 || (v->rank == 1 && !ir_dim_is_const(s->g, v->dims[0], &n)))
		return ir_shp_fail(s, "%s input '%s' is computed at run time and its length is not a "
		                   "constant: the output's rank is unknown", what, ir_shp_inname(s, i));
	if (n > max)
		return ir_shp_fail(s, "%s input '%s' has %lld elements, at most %d", what,
		                   ir_shp_inname(s, i), (long long)n, max);
	return (int)n;
}

bool ir_shp_const_shape(Sh *s, const Value *v, int64_t *numel)
{
	int64_t n = 1;
	for (int i = 0; i < v->rank; i++) {
		int64_t c;
		if (!ir_dim_is_const(s->g, v->dims[i], &c) || c < 0 || !ck_mul_i64(n, c, &n) ||
		    n > (1 << 30))
			return false;
	}
	*numel = n;
	return true;
}

int ir_shp_getsval(Sh *s, int i, DimId *out, int max)
{
	const Value *v = ir_shp_in(s, i);
	if (!v || v->rank < 0)
		return -1;
	int64_t numel;
	if (!ir_shp_const_shape(s, v, &numel) || numel > max)
		return -1;
	if (v->sval && v->nsval == numel) {
		memcpy(out, v->sval, sizeof(DimId) * (size_t)numel);
		return (int)numel;
	}
	if (v->kind != V_CONST || !v->data)
		return -1;
	size_t es = ir_dtype_size(v->dtype);
	if (!sval_dtype(v->dtype) || es == 0 || v->nbytes < es * (size_t)numel)
		return -1;
	for (int64_t k = 0; k < numel; k++) {
		const unsigned char *p = (const unsigned char *)v->data + k * (int64_t)es;
		int64_t e = 0;
		double f = 0;
		switch (v->dtype) {
		case DT_F32: { float x; memcpy(&x, p, 4); f = x; goto flt; }
		case DT_F64: memcpy(&f, p, 8);
		flt:
			/* only integral values are dims */
			if (!(f >= -9e15 && f <= 9e15) || f != (double)(int64_t)f)
				return -1;
			e = (int64_t)f;
			break;
		case DT_I64: case DT_U64: memcpy(&e, p, 8); break;
		case DT_I32: { int32_t x; memcpy(&x, p, 4); e = x; break; }
		case DT_U32: { uint32_t x; memcpy(&x, p, 4); e = x; break; }
		case DT_I16: { int16_t x; memcpy(&x, p, 2); e = x; break; }
		case DT_U16: { uint16_t x; memcpy(&x, p, 2); e = x; break; }
		case DT_I8: e = (int8_t)p[0]; break;
		default: e = p[0]; break;
		}
		out[k] = ir_dim_const(s->g, e);
	}
	return (int)numel;
}

int ir_shp_ints(Sh *s, int i, int64_t *out, int max, const char *what)
{
	DimId e[SH_MAX_SVAL];
	int n = ir_shp_getsval(s, i, e, max < SH_MAX_SVAL ? max : SH_MAX_SVAL);
	if (n < 0)
		return ir_shp_fail(s, "%s input '%s' is not a known constant (its content decides the output shape)",
		                   what, ir_shp_inname(s, i));
	for (int k = 0; k < n; k++)
		if (!ir_dim_is_const(s->g, e[k], &out[k]))
			return ir_shp_fail(s, "%s input '%s' is symbolic; a constant is needed", what,
			                   ir_shp_inname(s, i));
	return n;
}

int ir_shp_axis(Sh *s, int64_t a, int rank, int *out)
{
	if (a < -rank || a >= rank)
		return ir_shp_fail(s, "axis %lld out of range for rank %d", (long long)a, rank);
	*out = (int)(a < 0 ? a + rank : a);
	return 0;
}

char *ir_shp_dimstr(Sh *s, DimId d, char *buf, size_t n)
{
	ir_dim_str(s->g, d, buf, n);
	return buf;
}

int ir_shp_unify(Sh *s, DimId a, DimId b, DimId *out, const char *what)
{
	int64_t ca, cb;
	bool ka = ir_dim_is_const(s->g, a, &ca), kb = ir_dim_is_const(s->g, b, &cb);
	if (ka && kb && ca != cb)
		return ir_shp_fail(s, "%s: dims %lld and %lld differ", what, (long long)ca, (long long)cb);
	/* prefer a constant: the symbolic one must equal it */
	*out = (!ka && kb) ? b : a;
	return 0;
}

static DimId bcast_dim(Sh *s, DimId x, DimId y, bool *bad)
{
	int64_t cx, cy;
	bool kx = ir_dim_is_const(s->g, x, &cx), ky = ir_dim_is_const(s->g, y, &cy);
	if (x == y || (ky && cy == 1))
		return x;
	if (kx && cx == 1)
		return y;
	if (kx && ky) {
		*bad = true;
		return x;
	}
	if (kx)
		return x;
	if (ky)
		return y;
	return ir_dim_max(s->g, x, y);
}

int ir_shp_bcast(Sh *s, int ra, const DimId *a, int rb, const DimId *b, int *rout, DimId *out)
{
	int r = ra > rb ? ra : rb;
	for (int i = 0; i < r; i++) {
		int ia = i - (r - ra), ib = i - (r - rb);
		bool bad = false;
		if (ia < 0)
			out[i] = b[ib];
		else if (ib < 0)
			out[i] = a[ia];
		else
			out[i] = bcast_dim(s, a[ia], b[ib], &bad);
		if (bad) {
			char x[64], y[64];
			return ir_shp_fail(s, "cannot broadcast dim %s with %s (axis %d of the result)",
			                   ir_shp_dimstr(s, a[ia], x, sizeof x), ir_shp_dimstr(s, b[ib], y, sizeof y), i);
		}
	}
	*rout = r;
	return 0;
}

DimId ir_shp_numel(Sh *s, const Value *v)
{
	DimId n = ir_dim_const(s->g, 1);
	for (int i = 0; i < v->rank; i++)
		n = ir_dim_mul(s->g, n, v->dims[i]);
	return n;
}

/* ---- symbolic content of elementwise ops -------------------------------- */

/* Tensors whose symbolic content we track: integers and bools, and floats
 * holding integral values (exporters compute lengths in float too, as in
 * Range(Cast<float>(seq), ...)). */
static bool sval_dtype(DType t)
{
	return ir_dtype_is_int(t) || t == DT_BOOL || t == DT_F32 || t == DT_F64;
}

/* Flat index into an input of shape (rin, din) broadcast to (r, dout). */
static int64_t bcast_index(int r, const int64_t *dout, int rin, const int64_t *din, int64_t flat)
{
	int64_t idx = 0, stride = 1;
	for (int i = r - 1; i >= 0; i--) {
		int64_t coord = flat % dout[i];
		flat /= dout[i];
		int j = i - (r - rin);
		if (j >= 0) {
			if (din[j] != 1)
				idx += coord * stride;
			stride *= din[j];
		}
	}
	return idx;
}

static bool const_dims(Sh *s, int r, const DimId *d, int64_t *out, int64_t *numel)
{
	int64_t n = 1;
	for (int i = 0; i < r; i++) {
		if (!ir_dim_is_const(s->g, d[i], &out[i]) || out[i] < 0 || !ck_mul_i64(n, out[i], &n) ||
		    n > SH_MAX_SVAL)
			return false;
	}
	*numel = n;
	return true;
}

/* Combines the svals of inputs [0, nin) elementwise into output 0 of shape
 * (r, dims).  op returns -1 when an element is not symbolically known. */
typedef DimId (*SvalOp)(Sh *s, const DimId *args, int nargs);

static void sval_elementwise(Sh *s, int nin, int r, const DimId *dims, SvalOp op)
{
	int64_t dout[IR_MAX_RANK], numel;
	if (nin > 3 || !const_dims(s, r, dims, dout, &numel))
		return;
	DimId sv[3][SH_MAX_SVAL], res[SH_MAX_SVAL];
	int64_t din[3][IR_MAX_RANK];
	int rin[3];
	for (int k = 0; k < nin; k++) {
		const Value *v = ir_shp_in(s, k);
		int64_t n;
		if (!v || !sval_dtype(v->dtype) || !const_dims(s, v->rank, v->dims, din[k], &n))
			return;
		if (ir_shp_getsval(s, k, sv[k], SH_MAX_SVAL) < 0)
			return;
		rin[k] = v->rank;
	}
	for (int64_t f = 0; f < numel; f++) {
		DimId args[3];
		for (int k = 0; k < nin; k++)
			args[k] = sv[k][bcast_index(r, dout, rin[k], din[k], f)];
		res[f] = op(s, args, nin);
		if (res[f] < 0)
			return;
	}
	ir_shp_sval(s, 0, (int)numel, res);
}

/* Is x provably >= 0 for all symbol values? */
static bool provably_nonneg(Sh *s, DimId x)
{
	return ir_dim_max(s->g, x, ir_dim_const(s->g, 0)) == x;
}

/* Provable order of a and b: 'a' > b, '<', '=', or 0 when unknown;
 * also 'g' (a >= b) and 'l' (a <= b) when only that much is known. */
static int order(Sh *s, DimId a, DimId b)
{
	Graph *g = s->g;
	if (a == b)
		return '=';
	DimId one = ir_dim_const(g, 1);
	if (provably_nonneg(s, ir_dim_sub(g, ir_dim_sub(g, a, b), one)))
		return '>';
	if (provably_nonneg(s, ir_dim_sub(g, ir_dim_sub(g, b, a), one)))
		return '<';
	if (provably_nonneg(s, ir_dim_sub(g, a, b)))
		return 'g';
	if (provably_nonneg(s, ir_dim_sub(g, b, a)))
		return 'l';
	return 0;
}

/* Comparison and logic ops on elements: a constant 0/1, or -1 if unknown. */
static DimId cmp_result(Sh *s, DimId x, DimId y)
{
	int64_t a, b;
	Op op = SH_NODE(s)->op;
	bool ka = ir_dim_is_const(s->g, x, &a), kb = ir_dim_is_const(s->g, y, &b);
	int o = order(s, x, y), r = -1;
	switch (op) {
	case OP_And: case OP_Or: case OP_Xor:
		if (!ka || !kb)
			return -1;
		r = op == OP_And ? (a && b) : op == OP_Or ? (a || b) : (!a != !b);
		break;
	case OP_Equal:
		r = o == '=' ? 1 : (o == '<' || o == '>') ? 0 : -1;
		break;
	case OP_Less:
		r = o == '<' ? 1 : (o == '>' || o == '=' || o == 'g') ? 0 : -1;
		break;
	case OP_LessOrEqual:
		r = (o == '<' || o == '=' || o == 'l') ? 1 : o == '>' ? 0 : -1;
		break;
	case OP_Greater:
		r = o == '>' ? 1 : (o == '<' || o == '=' || o == 'l') ? 0 : -1;
		break;
	case OP_GreaterOrEqual:
		r = (o == '>' || o == '=' || o == 'g') ? 1 : o == '<' ? 0 : -1;
		break;
	default:
		return -1;
	}
	return r < 0 ? -1 : ir_dim_const(s->g, r);
}

static DimId sv_op(Sh *s, const DimId *x, int n)
{
	Graph *g = s->g;
	int64_t a, c;
	switch (SH_NODE(s)->op) {
	case OP_Add: case OP_Sum: {
		DimId r = x[0];
		for (int i = 1; i < n; i++)
			r = ir_dim_add(g, r, x[i]);
		return r;
	}
	case OP_Sub: return ir_dim_sub(g, x[0], x[1]);
	case OP_Mul: return ir_dim_mul(g, x[0], x[1]);
	case OP_Div: {
		int64_t b;
		bool flt = ir_dtype_is_float(ir_shp_in(s, 0)->dtype);
		if (ir_dim_is_const(g, x[0], &a) && ir_dim_is_const(g, x[1], &b)) {
			if (b == 0 || (b == -1 && a == INT64_MIN) || (flt && a % b))
				return -1;
			return ir_dim_const(g, a / b);   /* ONNX truncates */
		}
		/* symbolic: floor (dims are non-negative); floats only when exact */
		if (flt && ir_dim_mod(g, x[0], x[1]) != ir_dim_const(g, 0))
			return -1;
		return ir_dim_div(g, x[0], x[1]);
	}
	case OP_Mod:
		if (ir_attr_int(g, s->id, "fmod", 0) || ir_dtype_is_float(ir_shp_in(s, 0)->dtype))
			return -1;
		return ir_dim_mod(g, x[0], x[1]);
	case OP_Max: case OP_Min: {
		DimId r = x[0];
		for (int i = 1; i < n; i++)
			r = SH_NODE(s)->op == OP_Max ? ir_dim_max(g, r, x[i]) : ir_dim_min(g, r, x[i]);
		return r;
	}
	case OP_Neg: return ir_dim_mul(g, x[0], ir_dim_const(g, -1));
	case OP_Abs:   /* the dynamo exporter's Expand(x, Abs([1, -1, 1])) */
		if (ir_dim_is_const(g, x[0], &a))
			return a == INT64_MIN ? -1 : ir_dim_const(g, a < 0 ? -a : a);
		return provably_nonneg(s, x[0]) ? x[0] : -1;
	case OP_Identity: return x[0];
	case OP_Cast:
		if (ir_attr_int(g, s->id, "to", 0) == DT_BOOL)
			return ir_dim_is_const(g, x[0], &a) ? ir_dim_const(g, a != 0) : -1;
		return x[0];
	case OP_Not: return ir_dim_is_const(g, x[0], &a) ? ir_dim_const(g, !a) : -1;
	case OP_Where:
		return ir_dim_is_const(g, x[0], &c) ? (c ? x[1] : x[2]) : -1;
	default:
		return cmp_result(s, x[0], x[1]);
	}
}

/* ---- elementwise ops ----------------------------------------------------- */

static bool is_bool_op(Op op)
{
	switch (op) {
	case OP_Equal: case OP_Less: case OP_LessOrEqual: case OP_Greater: case OP_GreaterOrEqual:
	case OP_And: case OP_Or: case OP_Xor: case OP_Not: case OP_IsNaN: case OP_IsInf:
		return true;
	default:
		return false;
	}
}

static int infer_unary(Sh *s, Op op)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	DType t = x->dtype;
	if (is_bool_op(op))
		t = DT_BOOL;
	if (op == OP_Cast) {
		int64_t to = ir_attr_int(s->g, s->id, "to", 0);
		if (!ir_dtype_name((DType)to) || ir_dtype_size((DType)to) == 0)
			return ir_shp_fail(s, "Cast to unsupported dtype %lld", (long long)to);
		t = (DType)to;
	}
	ir_shp_out(s, 0, t, x->rank, x->dims);
	if (op == OP_Identity || op == OP_Neg || op == OP_Abs || op == OP_Not ||
	    (op == OP_Cast && sval_dtype(t)))
		sval_elementwise(s, 1, x->rank, x->dims, sv_op);
	return 0;
}

/* Broadcast inputs [0, n) into (r, dims); checks equal dtypes from `from`. */
static int bcast_inputs(Sh *s, int n, int from, int *r, DimId *dims)
{
	const Value *v;
	if (ir_shp_need(s, 0, &v))
		return -1;
	*r = v->rank;
	memcpy(dims, v->dims, sizeof(DimId) * (size_t)v->rank);
	const Value *ref = ir_shp_in(s, from > 0 ? from - 1 : 0);
	if (!ref)
		return ir_shp_fail(s, "input %d is missing", from - 1);
	DType t = ref->dtype;
	for (int i = 1; i < n; i++) {
		if (ir_shp_need(s, i, &v))
			return -1;
		if (i >= from && v->dtype != t)
			return ir_shp_fail(s, "input '%s' is %s but input '%s' is %s", ir_shp_inname(s, from - 1),
			                   ir_dtype_name(t), ir_shp_inname(s, i), ir_dtype_name(v->dtype));
		DimId tmp[IR_MAX_RANK];
		if (v->rank > IR_MAX_RANK || ir_shp_bcast(s, *r, dims, v->rank, v->dims, r, tmp))
			return -1;
		memcpy(dims, tmp, sizeof(DimId) * (size_t)*r);
	}
	return 0;
}

static int infer_nary(Sh *s, Op op)
{
	int n = SH_NODE(s)->nin, r;
	DimId dims[IR_MAX_RANK];
	if (n < 1)
		return ir_shp_fail(s, "no inputs");
	bool same_types = op != OP_Pow;
	if (bcast_inputs(s, n, same_types ? 1 : n, &r, dims))
		return -1;
	DType t = ir_shp_in(s, 0)->dtype;
	if (is_bool_op(op))
		t = DT_BOOL;
	ir_shp_out(s, 0, t, r, dims);
	if (op != OP_Pow && op != OP_Mean)
		sval_elementwise(s, n, r, dims, sv_op);
	return 0;
}

static int infer_where(Sh *s)
{
	const Value *c;
	int r;
	DimId dims[IR_MAX_RANK];
	if (ir_shp_need(s, 0, &c))
		return -1;
	if (c->dtype != DT_BOOL)
		return ir_shp_fail(s, "condition '%s' is %s, not bool", ir_shp_inname(s, 0), ir_dtype_name(c->dtype));
	if (bcast_inputs(s, 3, 2, &r, dims))
		return -1;
	ir_shp_out(s, 0, ir_shp_in(s, 1)->dtype, r, dims);
	sval_elementwise(s, 3, r, dims, sv_op);
	return 0;
}

int ir_shp_elementwise(Sh *s)
{
	Op op = SH_NODE(s)->op;
	const Value *x;
	switch (op) {
	case OP_Where:
		return infer_where(s);
	case OP_Clip:
		if (ir_shp_need(s, 0, &x))
			return -1;
		ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
		return 0;
	case OP_Dropout:
		if (ir_shp_need(s, 0, &x))
			return -1;
		ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
		ir_shp_out(s, 1, DT_BOOL, x->rank, x->dims);
		return 0;
	default:
		break;
	}
	switch (ir_opinfo[op].kind) {
	case K_UNARY:
		return infer_unary(s, op);
	case K_BINARY:
	case K_VARIADIC:
		return infer_nary(s, op);
	default:
		return ir_shp_fail(s, "not an elementwise op");
	}
}

/* ---- sizes ----------------------------------------------------------------
 * Every tensor must fit the size limit (ir/checked.h): its constant dims
 * are checked here, at compile time; symbolic ones are checked by the
 * generated code when their values are known (backend/emit_dims.c). */

/* "[4294967296, 4294967296]" (symbolic dims by name) into buf. */
static void shape_str(const Graph *g, const Value *v, char *buf, size_t n)
{
	size_t len = 0;
	buf[0] = 0;
	for (int i = 0; i < v->rank && len + 2 < n; i++) {
		len += (size_t)snprintf(buf + len, n - len, "%s", i ? ", " : "[");
		if (len < n)
			len += (size_t)ir_dim_str(g, v->dims[i], buf + len, n - len);
	}
	if (len + 2 < n)
		snprintf(buf + len, n - len, "%s", v->rank ? "]" : "[]");
}

int ir_check_value_size(const Graph *g, ValId id, const char *what, char *msg, size_t n)
{
	const Value *v = IR_VAL(g, id);
	size_t es = ir_dtype_size(v->dtype);
	if (v->rank <= 0 || es == 0)
		return 0;
	int64_t dims[IR_MAX_RANK], bytes;
	double elems = 1;
	bool sym = false;
	for (int i = 0; i < v->rank && i < IR_MAX_RANK; i++) {
		if (!ir_dim_is_const(g, v->dims[i], &dims[i])) {
			dims[i] = 1;
			sym = true;
		}
		elems *= (double)(dims[i] ? dims[i] : 1);
	}
	int64_t limit = g->max_tensor_bytes > 0 ? g->max_tensor_bytes : IR_MAX_TENSOR_BYTES;
	if (ck_tensor_fits(v->rank, dims, (int64_t)es, limit, &bytes))
		return 0;
	char sh[256];
	shape_str(g, v, sh, sizeof sh);
	for (int i = 0; i < v->rank; i++)
		if (dims[i] < 0) {
			snprintf(msg, n, "%s '%s' has shape %s: dim %d is negative", what,
			         v->name ? v->name : "?", sh, i);
			return -1;
		}
	snprintf(msg, n, "%s '%s' has shape %s: %.3g elements of %zu bytes%s, over the limit of "
	         "%lld bytes per tensor (--max-tensor-bytes)", what, v->name ? v->name : "?", sh,
	         elems, es, sym ? " in its static dims alone" : "", (long long)limit);
	return -1;
}

static int check_sizes(Sh *s)
{
	const Node *n = SH_NODE(s);
	char msg[600];
	for (int i = 0; i < n->nout; i++)
		if (n->out[i] >= 0 && ir_check_value_size(s->g, n->out[i], "output", msg, sizeof msg))
			return ir_shp_fail(s, "%s", msg);
	return 0;
}

/* ---- driver -------------------------------------------------------------- */

static int infer_node(Graph *g, NodeId id, Diag *diag);

/* A dim nested deeper than IR_DIM_MAX_DEPTH (a long chain of shape ops
 * over a symbolic dim) would make every recursive walk of it deep and
 * printing it quadratic: refused at the node that made it. */
static int check_depth(Graph *g, NodeId id, Diag *diag)
{
	Sh s = { g, id, diag };
	const Node *n = IR_NODE(g, id);
	for (int i = 0; i < n->nout; i++) {
		if (n->out[i] < 0)
			continue;
		const Value *v = IR_VAL(g, n->out[i]);
		int rank = v->rank > 0 ? v->rank : 0;
		for (int k = 0; k < rank + v->nsval; k++) {
			DimId d = k < rank ? v->dims[k] : v->sval[k - rank];
			if (ir_dim_depth(g, d) > IR_DIM_MAX_DEPTH)
				return ir_shp_fail(&s, "output '%s': symbolic dim nests deeper than %d levels",
				                   v->name ? v->name : "?", IR_DIM_MAX_DEPTH);
		}
	}
	return 0;
}

int ir_infer_node(Graph *g, NodeId id, Diag *diag)
{
	Sh s = { g, id, diag };
	if (infer_node(g, id, diag) || check_depth(g, id, diag))
		return -1;
	return check_sizes(&s);
}

static int infer_node(Graph *g, NodeId id, Diag *diag)
{
	Sh s = { g, id, diag };
	Node *n = IR_NODE(g, id);
	if (n->op < 0 || n->op >= OP_COUNT)
		return diag_fail(diag, "node '%s': bad op", n->name ? n->name : "?");
	const OpInfo *oi = &ir_opinfo[n->op];
	if (n->nin < oi->min_in || (oi->max_in >= 0 && n->nin > oi->max_in) || n->nout < oi->min_out ||
	    (oi->max_out >= 0 && n->nout > oi->max_out))
		return ir_shp_fail(&s, "%d inputs and %d outputs: wrong arity", n->nin, n->nout);
	for (int i = 0; i < n->nout; i++)
		if (n->out[i] >= 0)
			ir_value_set_sval(g, n->out[i], 0, NULL);
	switch (oi->kind) {
	case K_FUSED:
		return ir_infer_fused(g, id, diag);
	case K_SHAPE:
		return ir_shp_layout(&s);
	case K_REDUCE:
		return ir_shp_math(&s);
	case K_OTHER:
		switch (n->op) {
		case OP_Where: case OP_Clip: case OP_Dropout:
			return ir_shp_elementwise(&s);
		case OP_DynamicQuantizeLinear: case OP_MatMulInteger: case OP_QuantizeLinear:
		case OP_DequantizeLinear:
			return ir_shp_quant(&s);
		default:
			return ir_shp_math(&s);
		}
	default:
		return ir_shp_elementwise(&s);
	}
}

int ir_infer_shapes(Graph *g, Diag *diag)
{
	for (int i = 0; i < g->ninputs; i++) {
		const Value *v = IR_VAL(g, g->inputs[i]);
		if (v->rank < 0 || v->dtype == DT_UNDEF)
			return diag_fail(diag, "%s%sgraph input '%s' has no declared dtype and shape",
			                 g->file ? g->file : "", g->file ? ": " : "", v->name ? v->name : "?");
		for (int k = 0; k < v->rank; k++)
			if (ir_dim_depth(g, v->dims[k]) > IR_DIM_MAX_DEPTH)
				return diag_fail(diag, "%s%sgraph input '%s': dim %d nests deeper than %d levels",
				                 g->file ? g->file : "", g->file ? ": " : "",
				                 v->name ? v->name : "?", k, IR_DIM_MAX_DEPTH);
		char msg[600];
		if (ir_check_value_size(g, g->inputs[i], "graph input", msg, sizeof msg))
			return diag_fail(diag, "%s%s%s", g->file ? g->file : "", g->file ? ": " : "", msg);
	}
	for (int i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		if (IR_NODE(g, id)->dead)
			continue;
		if (ir_infer_node(g, id, diag))
			return -1;
	}
	return 0;
}
