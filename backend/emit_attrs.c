/* emit_attrs.c: a node's attributes as the ia/fa arrays of its kernel call,
 * in the order /work/notes/kernel_abi.md (runtime/kernels.c) documents:
 * ONNX defaults filled in, negative axes made positive with the input's
 * rank, Reduce axes taken from the attribute or from the constant axes
 * input; fused ops' attributes in the named slots of
 * runtime/fused_attrs.def.  Bad attribute values are compile errors naming
 * the node. */
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "rt.h"
#include "schema.h"

static void push_i(BeAttrs *a, int64_t v)
{
	if (a->nia == a->capia) {
		a->capia = a->capia ? 2 * a->capia : 16;
		a->ia = realloc(a->ia, (size_t)a->capia * sizeof *a->ia);
		if (!a->ia)
			abort();
	}
	a->ia[a->nia++] = v;
}

static void push_f(BeAttrs *a, float v)
{
	if (a->nfa == a->capfa) {
		a->capfa = a->capfa ? 2 * a->capfa : 8;
		a->fa = realloc(a->fa, (size_t)a->capfa * sizeof *a->fa);
		if (!a->fa)
			abort();
	}
	a->fa[a->nfa++] = v;
}

void be_attrs_free(BeAttrs *a)
{
	free(a->ia);
	free(a->fa);
	memset(a, 0, sizeof *a);
}

static int fail(Be *be, NodeId n, const char *msg, int64_t v)
{
	char nd[300];
	return diag_fail(be->diag, "%s: %s (%lld)", be_node_desc(be, n, nd, sizeof nd), msg, (long long)v);
}

/* axis in [-rank, rank) -> [0, rank) */
static int norm_axis(Be *be, NodeId n, int64_t axis, int rank, int64_t *out)
{
	if (axis < -rank || axis >= rank || rank == 0)
		return fail(be, n, "axis out of range for the input's rank", axis);
	*out = axis < 0 ? axis + rank : axis;
	return 0;
}

static int in_rank(Be *be, NodeId n, int k)
{
	const Node *nd = IR_NODE(be->g, n);
	return k < nd->nin && nd->in[k] >= 0 ? IR_VAL(be->g, nd->in[k])->rank : 0;
}

static int push_axis(Be *be, NodeId n, BeAttrs *a, const char *name, int64_t dflt, int rank)
{
	int64_t ax = 0;
	if (norm_axis(be, n, ir_attr_int(be->g, n, name, dflt), rank, &ax))
		return -1;
	push_i(a, ax);
	return 0;
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

/* Integer elements of a constant (axes inputs); -1 if not a constant. */
static int const_ints(Be *be, ValId v, int64_t *dst, int max)
{
	const Value *val = IR_VAL(be->g, v);
	if (val->kind != V_CONST || !val->data)
		return -1;
	size_t es = ir_dtype_size(val->dtype);
	if ((val->dtype != DT_I64 && val->dtype != DT_I32) || es == 0)
		return -1;
	int cnt = (int)(val->nbytes / es);
	if (cnt > max)
		return -1;
	for (int i = 0; i < cnt; i++)
		dst[i] = val->dtype == DT_I64 ? ((const int64_t *)val->data)[i]
		                               : ((const int32_t *)val->data)[i];
	return cnt;
}

/* ia = [keepdims, naxes, axes...]; [keepdims, -1, noop_with_empty_axes]
 * when the axes input is computed at run time */
static int reduce_attrs(Be *be, NodeId n, BeAttrs *a)
{
	const Node *nd = IR_NODE(be->g, n);
	int rank = in_rank(be, n, 0), cnt = 0;
	int64_t axes[IR_MAX_RANK];
	const int64_t *at = ir_attr_ints(be->g, n, "axes", &cnt);
	if (at) {
		if (cnt > rank)
			return fail(be, n, "more axes than the input's rank", cnt);
		memcpy(axes, at, (size_t)cnt * sizeof *axes);
	} else if (nd->nin > 1 && nd->in[1] >= 0) {
		cnt = const_ints(be, nd->in[1], axes, rank);
		if (cnt < 0 && IR_VAL(be->g, nd->in[1])->kind != V_CONST) {
			/* axes known at run time only: the kernel reads in[1] */
			push_i(a, ir_attr_int(be->g, n, "keepdims", 1));
			push_i(a, -1);
			push_i(a, ir_attr_int(be->g, n, "noop_with_empty_axes", 0));
			return 0;
		}
		if (cnt < 0) {
			char d[300];
			return diag_fail(be->diag, "%s: axes input must be a constant int tensor of at most rank elements",
			                 be_node_desc(be, n, d, sizeof d));
		}
	}
	if (cnt == 0 && !ir_attr_int(be->g, n, "noop_with_empty_axes", 0))
		for (cnt = 0; cnt < rank; cnt++)
			axes[cnt] = cnt;
	for (int i = 0; i < cnt; i++)
		if (norm_axis(be, n, axes[i], rank, &axes[i]))
			return -1;
	qsort(axes, (size_t)cnt, sizeof *axes, cmp_i64);
	for (int i = 1; i < cnt; i++)
		if (axes[i] == axes[i - 1])
			return fail(be, n, "repeated axis", axes[i]);
	push_i(a, ir_attr_int(be->g, n, "keepdims", 1));
	push_i(a, cnt);
	for (int i = 0; i < cnt; i++)
		push_i(a, axes[i]);
	return 0;
}

static int shape_attrs(Be *be, NodeId n, BeAttrs *a)
{
	int64_t r = in_rank(be, n, 0);
	int64_t s = ir_attr_int(be->g, n, "start", 0), e = ir_attr_int(be->g, n, "end", r);
	s = s < 0 ? s + r : s;
	e = e < 0 ? e + r : e;
	s = s < 0 ? 0 : s > r ? r : s;
	e = e < 0 ? 0 : e > r ? r : e;
	push_i(a, s);
	push_i(a, e < s ? s : e);
	return 0;
}

static int transpose_attrs(Be *be, NodeId n, BeAttrs *a)
{
	int r = in_rank(be, n, 0), cnt = 0;
	const int64_t *perm = ir_attr_ints(be->g, n, "perm", &cnt);
	if (!perm) {
		for (int i = 0; i < r; i++)
			push_i(a, r - 1 - i);
		return 0;
	}
	if (cnt != r)
		return fail(be, n, "perm length differs from the input's rank", cnt);
	unsigned seen = 0;
	for (int i = 0; i < cnt; i++) {
		int64_t p = 0;
		if (norm_axis(be, n, perm[i], r, &p))
			return -1;
		if (seen & (1u << p))
			return fail(be, n, "perm repeats an axis", p);
		seen |= 1u << p;
		push_i(a, p);
	}
	return 0;
}

/* ConstantOfShape: value as ia[0] and fa[0] (default float 0). */
static int cos_attrs(Be *be, NodeId n, BeAttrs *a)
{
	const Attr *at = ir_attr_get(be->g, n, "value");
	int64_t iv = 0;
	double fv = 0;
	if (at && at->kind == A_TENSOR && at->u.t && at->u.t->data && at->u.t->nbytes) {
		const TensorLit *t = at->u.t;
		const void *p = t->data;
		switch (t->dtype) {
		case DT_F32: fv = *(const float *)p; iv = (int64_t)fv; break;
		case DT_F64: fv = *(const double *)p; iv = (int64_t)fv; break;
		case DT_I64: iv = *(const int64_t *)p; fv = (double)iv; break;
		case DT_I32: iv = *(const int32_t *)p; fv = (double)iv; break;
		case DT_I8: iv = *(const int8_t *)p; fv = (double)iv; break;
		case DT_U8: case DT_BOOL: iv = *(const uint8_t *)p; fv = (double)iv; break;
		default: return fail(be, n, "unsupported dtype of the value attribute", t->dtype);
		}
	}
	push_i(a, iv);
	push_f(a, (float)fv);
	return 0;
}

static int softmax_attrs(Be *be, NodeId n, BeAttrs *a)
{
	int r = in_rank(be, n, 0);
	int64_t dflt = be->g->opset && be->g->opset < 13 ? 1 : -1, ax = 0;
	if (norm_axis(be, n, ir_attr_int(be->g, n, "axis", dflt), r, &ax))
		return -1;
	/* before opset 13 the input is coerced to 2-D at axis: the same only
	 * when axis is the last one */
	if (be->g->opset && be->g->opset < 13 && ax != r - 1)
		return fail(be, n, "opset < 13 softmax over several axes is not supported; axis", ax);
	push_i(a, ax);
	return 0;
}

/* The IR and the runtime number dtypes alike (ONNX's numbers) and agree on
 * the maximum rank: the backend passes both through unchanged. */
_Static_assert(IR_MAX_RANK == KILN_MAX_RANK, "ir.h and kiln.h disagree on the maximum rank");
#define SAME_DT(t) ((int)DT_##t == (int)KILN_##t)
_Static_assert(SAME_DT(F32) && SAME_DT(U8) && SAME_DT(I8) && SAME_DT(U16) && SAME_DT(I16) &&
               SAME_DT(I32) && SAME_DT(I64) && SAME_DT(BOOL) && SAME_DT(F16) && SAME_DT(F64) &&
               SAME_DT(U32) && SAME_DT(U64) && SAME_DT(BF16),
               "ir.h and kiln.h number dtypes differently");
#undef SAME_DT

/* The slot counts of a fused op (runtime/fused_attrs.def). */
static bool fused_slots(Op op, int *ni, int *nf)
{
	switch (op) {
#define FUSED_OP(o) case OP_##o: *ni = RT_NIA_##o; *nf = RT_NFA_##o; return true;
#define FUSED_I(o, name)
#define FUSED_B(o, name)
#define FUSED_F(o, name)
#define FUSED_END(o)
#include "fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_B
#undef FUSED_F
#undef FUSED_END
	default: return false;
	}
}

/* Fused ops: each int and float attribute into its named slot
 * (ia[RT_IA_<Op>_<name>], fa[RT_FA_<Op>_<name>]), the schema's default
 * when the node lacks it.  The verifier has checked kinds and ranges and
 * that required ones are present. */
static int fused_attrs(Be *be, NodeId n, BeAttrs *a)
{
	const Node *nd = IR_NODE(be->g, n);
	const IrOpSchema *s = ir_schema(nd->op);
	int ni = 0, nf = 0;
	if (!s || !fused_slots(nd->op, &ni, &nf))
		return fail(be, n, "fused op without attribute slots", nd->op);
	for (int i = 0; i < ni; i++)
		push_i(a, 0);
	for (int i = 0; i < nf; i++)
		push_f(a, 0.0f);
	for (int i = 0; i < s->nattrs; i++) {
		const IrAttrSchema *as = &s->attrs[i];
		bool isf = false;
		int slot = ir_fused_slot(nd->op, as->name, &isf);
		if (slot < 0 || slot >= (isf ? nf : ni))
			continue;
		const Attr *at = ir_attr_get(be->g, n, as->name);
		if (!at && !as->dflt) {
			char d[300];
			return diag_fail(be->diag, "%s: attribute '%s' is missing",
			                 be_node_desc(be, n, d, sizeof d), as->name);
		}
		if (isf)
			a->fa[slot] = at && at->kind == A_FLOAT ? at->u.f : strtof(as->dflt, NULL);
		else
			a->ia[slot] = at && at->kind == A_INT ? at->u.i : strtoll(as->dflt, NULL, 10);
	}
	return 0;
}

int be_node_attrs(Be *be, NodeId n, BeAttrs *a)
{
	Graph *g = be->g;
	const Node *nd = IR_NODE(g, n);
	int r0 = in_rank(be, n, 0);
	if (ir_opinfo[nd->op].kind == K_FUSED) {
		if (fused_attrs(be, n, a))
			return -1;
		if (nd->op == OP_KlnGemm) {
			/* the backend's slots: W's storage, RT_GEMM_PANEL or 0
			 * (row-major); W's type, RT_GEMM_W_BF16 when plan.c stored its
			 * panels in bf16 (every panel W under --fpmath=bf16), else
			 * RT_GEMM_W_F32 */
			bool panel = be->vpoff[nd->in[1]] >= 0;
			a->ia[RT_IA_KlnGemm_panel] = panel ? RT_GEMM_PANEL : 0;
			a->ia[RT_IA_KlnGemm_wtype] =
				panel && be->opt->fpmath == BE_FPMATH_BF16 ? RT_GEMM_W_BF16 : RT_GEMM_W_F32;
		}
		return 0;
	}
	switch (nd->op) {
	case OP_LeakyRelu: push_f(a, ir_attr_float(g, n, "alpha", 0.01f)); return 0;
	case OP_Elu: push_f(a, ir_attr_float(g, n, "alpha", 1.0f)); return 0;
	case OP_HardSigmoid:
		push_f(a, ir_attr_float(g, n, "alpha", 0.2f));
		push_f(a, ir_attr_float(g, n, "beta", 0.5f));
		return 0;
	case OP_Gelu: {
		const char *s = ir_attr_str(g, n, "approximate", "none");
		if (strcmp(s, "none") && strcmp(s, "tanh"))
			return fail(be, n, "approximate must be none or tanh", 0);
		push_i(a, !strcmp(s, "tanh"));
		return 0;
	}
	case OP_IsInf:
		push_i(a, ir_attr_int(g, n, "detect_negative", 1));
		push_i(a, ir_attr_int(g, n, "detect_positive", 1));
		return 0;
	case OP_Mod: push_i(a, ir_attr_int(g, n, "fmod", 0)); return 0;
	case OP_ScatterND: {   /* runtime/kernels_gather.c's order */
		static const char *const reds[] = { "none", "add", "mul", "max", "min" };
		const char *m = ir_attr_str(g, n, "reduction", "none");
		for (int k = 0; k < 5; k++)
			if (!strcmp(m, reds[k])) {
				push_i(a, k);
				return 0;
			}
		return fail(be, n, "reduction must be none, add, mul, max or min", 0);
	}
	case OP_Pad: {
		int m = be_pad_mode(g, n);
		if (m < 0)
			return fail(be, n, "mode must be constant, reflect, edge or wrap", 0);
		push_i(a, m);
		return 0;
	}
	case OP_ReduceMean: case OP_ReduceSum: case OP_ReduceMax: case OP_ReduceMin:
	case OP_ReduceProd: case OP_ReduceL2: case OP_ReduceSumSquare:
		return reduce_attrs(be, n, a);
	case OP_ArgMax: case OP_ArgMin:
		if (push_axis(be, n, a, "axis", 0, r0))
			return -1;
		push_i(a, ir_attr_int(g, n, "keepdims", 1));
		push_i(a, ir_attr_int(g, n, "select_last_index", 0));
		return 0;
	case OP_CumSum:
		push_i(a, ir_attr_int(g, n, "exclusive", 0));
		push_i(a, ir_attr_int(g, n, "reverse", 0));
		return 0;
	case OP_Softmax: case OP_LogSoftmax: return softmax_attrs(be, n, a);
	case OP_LayerNormalization:
		if (push_axis(be, n, a, "axis", -1, r0))
			return -1;
		push_f(a, ir_attr_float(g, n, "epsilon", 1e-5f));
		return 0;
	case OP_Gemm:
		push_i(a, ir_attr_int(g, n, "transA", 0));
		push_i(a, ir_attr_int(g, n, "transB", 0));
		push_f(a, ir_attr_float(g, n, "alpha", 1.0f));
		push_f(a, ir_attr_float(g, n, "beta", 1.0f));
		return 0;
	case OP_Einsum: {
		const char *eq = ir_attr_str(g, n, "equation", NULL);
		if (!eq)
			return fail(be, n, "missing equation attribute", 0);
		for (const char *p = eq; *p; p++)
			push_i(a, (unsigned char)*p);
		return 0;
	}
	case OP_Shape: return shape_attrs(be, n, a);
	case OP_Transpose: return transpose_attrs(be, n, a);
	case OP_Concat: case OP_Gather: case OP_GatherElements:
		return push_axis(be, n, a, "axis", 0, r0);
	case OP_Split: return push_axis(be, n, a, "axis", 0, r0);
	case OP_GatherND: push_i(a, ir_attr_int(g, n, "batch_dims", 0)); return 0;
	case OP_ConstantOfShape: return cos_attrs(be, n, a);
	case OP_EyeLike: push_i(a, ir_attr_int(g, n, "k", 0)); return 0;
	case OP_OneHot: return push_axis(be, n, a, "axis", -1, r0 + 1);
	case OP_TopK:
		if (push_axis(be, n, a, "axis", -1, r0))
			return -1;
		push_i(a, ir_attr_int(g, n, "largest", 1));
		push_i(a, ir_attr_int(g, n, "sorted", 1));
		return 0;
	case OP_Trilu: push_i(a, ir_attr_int(g, n, "upper", 1)); return 0;
	case OP_QuantizeLinear: case OP_DequantizeLinear: {
		/* [axis]; out of range only with a scalar scale (shape inference
		 * checked the rest), which ignores it */
		int64_t ax = ir_attr_int(g, n, "axis", 1);
		push_i(a, ax >= -r0 && ax < r0 ? (ax < 0 ? ax + r0 : ax) : 0);
		return 0;
	}
	default: return 0;
	}
}

/* Pad's mode as runtime/kernels_shape.c numbers it: 0 constant, 1 reflect,
 * 2 edge, 3 wrap; -1 for another. */
int be_pad_mode(const Graph *g, NodeId n)
{
	static const char *const modes[] = { "constant", "reflect", "edge", "wrap" };
	const char *m = ir_attr_str(g, n, "mode", "constant");
	for (int k = 0; k < 4; k++)
		if (!strcmp(m, modes[k]))
			return k;
	return -1;
}

/* Ops with a kernel in the runtime (runtime/kernels_*.c): all of them. */
bool be_has_kernel(Op op)
{
	return op < OP_COUNT;
}
