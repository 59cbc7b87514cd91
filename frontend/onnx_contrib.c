/* Import of ONNX Runtime's com.microsoft contrib ops (the transformer
 * optimizer's fused ops) onto kiln's fused ops.
 *
 * Each op has a row in onnx_contrib.def: its inputs, outputs, attributes
 * (defaults, the values kiln implements) and dtypes, checked here on every
 * node, then a named rewrite (ms_<name>) creates the IR nodes that compute
 * the op, as the version upgrades of onnx_upgrade.c do for old ONNX forms.
 * A form kiln cannot compute exactly (a KV cache, rotary embeddings, a
 * 4-D mask, ...) is refused with one line naming the node and what it
 * uses. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx_import.h"
#include "onnx_private.h"
#include "schema.h"

/* ---- the table ------------------------------------------------------------ */

/* an input or output kiln refuses when present (N in onnx_contrib.def) */
#define IO_REFUSED ONNX_IO_REFUSED

#define CONTRIB_REWRITES(X) \
	X(skip_layernorm) X(skip_rmsnorm) X(rmsnorm) X(layernorm) X(gelu) X(embed_layernorm) \
	X(attention) X(mha) X(fused_matmul) X(fused_gemm)

enum {
#define X(n) MS_##n,
	CONTRIB_REWRITES(X)
#undef X
};

typedef struct ContribOp {
	IrOpSchema s;
	int rewrite;       /* MS_* */
} ContribOp;

#define TYPES(...) { __VA_ARGS__ }
#define NONE
#define R(n, t) { #n, IO_REQ, IRT_##t },
#define O(n, t) { #n, IO_OPT, IRT_##t },
#define N(n, t) { #n, IO_REFUSED, IRT_##t },
#define ANY AC_ANY, 0, 0, NULL
#define RANGE(lo, hi) AC_RANGE, lo, hi, NULL
#define ONEOF(s) AC_ONEOF, 0, 0, s
#define A(n, k, d, c) { #n, A_##k, false, false, d, c },
#define AR(n, k, c) { #n, A_##k, true, false, NULL, c },
#define LIST(T, ...) (const T[]){ __VA_ARGS__ { 0 } }
#define COUNT(T, ...) (int)(sizeof((const T[]){ __VA_ARGS__ { 0 } }) / sizeof(T) - 1)

static const ContribOp contrib_ops[] = {
#define CX(name, rw, types, ins, outs, attrs) \
	{ { #name, LIST(IrIoSchema, ins), LIST(IrIoSchema, outs), COUNT(IrIoSchema, ins), \
	    COUNT(IrIoSchema, outs), types, LIST(IrAttrSchema, attrs), COUNT(IrAttrSchema, attrs) }, \
	  MS_##rw },
#include "onnx_contrib.def"
#undef CX
};

#undef TYPES
#undef NONE
#undef R
#undef O
#undef N
#undef ANY
#undef RANGE
#undef ONEOF
#undef A
#undef AR
#undef LIST
#undef COUNT

#define NCONTRIB (int)(sizeof contrib_ops / sizeof contrib_ops[0])

static const ContribOp *contrib_find(const char *op_type)
{
	for (int i = 0; op_type && i < NCONTRIB; i++)
		if (!strcmp(contrib_ops[i].s.name, op_type))
			return &contrib_ops[i];
	return NULL;
}

/* What each rewrite makes (kiln ops; the rewrites' comments below say how) */
static const char *const rewrite_doc[] = {
	[MS_skip_layernorm] = "KlnSkipLayerNorm (no beta: zeros; a [S, H] or [1, S, H] skip expanded)",
	[MS_skip_rmsnorm] = "Adds (output 3 their sum), KlnRMSNorm",
	[MS_rmsnorm] = "KlnRMSNorm",
	[MS_layernorm] = "ONNX's LayerNormalization",
	[MS_gelu] = "KlnGelu after an Add of the bias (Gelu, BiasGelu: erf; FastGelu: tanh; "
	            "QuickGelu: approximate 2, another alpha x * Sigmoid(alpha x))",
	[MS_embed_layernorm] = "KlnEmbedLayerNorm (mask_index: Equal, Cast, ReduceSum of the mask)",
	[MS_attention] = "one KlnGemm (input by the packed Q/K/V weights + bias), one KlnAttention "
	                 "over its column blocks",
	[MS_mha] = "Adds of the bias parts, one KlnAttention",
	[MS_fused_matmul] = "Transpose of the last two dims, MatMul, Mul by alpha",
	[MS_fused_gemm] = "ONNX's Gemm, then the activation",
};

const struct IrOpSchema *onnx_contrib_schema(int i, const char **becomes)
{
	if (i < 0 || i >= NCONTRIB)
		return NULL;
	if (becomes)
		*becomes = rewrite_doc[contrib_ops[i].rewrite];
	return &contrib_ops[i].s;
}

bool onnx_contrib_known(const char *op_type)
{
	return contrib_find(op_type) != NULL;
}

bool onnx_contrib_onnx_domain(const char *op_type)
{
	/* ONNX Runtime's contrib ops of the ONNX domain, version 1; its other
	 * one, LayerNormalization, is ONNX's (17) in older opsets */
	return op_type && !strcmp(op_type, "SimplifiedLayerNormalization");
}

/* ---- helpers -------------------------------------------------------------- */

static int fail(const OnnxNode *u, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return diag_fail(u->diag, "%s: %s: %s", u->file, u->where, msg);
}

static const Onnx__AttributeProto *attr_find(const OnnxNode *u, const char *name)
{
	for (size_t i = 0; i < u->nd->n_attribute; i++) {
		const Onnx__AttributeProto *a = u->nd->attribute[i];
		if (a && a->name && !strcmp(a->name, name))
			return a;
	}
	return NULL;
}

/* The attribute's kind (AttrKind), -1 for kinds kiln has not; guessed
 * from the filled field when the type is unset (old exporters). */
static int attr_kind(const Onnx__AttributeProto *a)
{
	int t = a->has_type ? (int)a->type
	      : a->has_f ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
	      : a->has_i ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
	      : a->has_s ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
	      : a->n_ints ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
	      : a->n_floats ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS : -1;
	switch (t) {
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return A_INT;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return A_FLOAT;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: return A_STRING;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return A_INTS;
	case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return A_FLOATS;
	default: return -1;
	}
}

/* Attributes after check_attrs: present ones have the schema's kind. */
static int64_t get_int(const OnnxNode *u, const char *name, int64_t dflt)
{
	const Onnx__AttributeProto *a = attr_find(u, name);
	return a ? a->i : dflt;
}

static float get_float(const OnnxNode *u, const char *name, float dflt)
{
	const Onnx__AttributeProto *a = attr_find(u, name);
	return a ? a->f : dflt;
}

static bool present(const OnnxNode *u, int i)
{
	return i < u->nin && u->in[i] >= 0;
}

static bool out_used(const OnnxNode *u, int i)
{
	return i < u->nout && u->out[i];
}

static ValId in_or(const OnnxNode *u, int i)
{
	return present(u, i) ? u->in[i] : -1;
}

/* The value as shape inference of the graph imported so far knows it. */
static const Value *val(const OnnxNode *u, ValId v)
{
	DType dt;
	int rank;
	onnx_value_type(u, v, &dt, &rank);
	return IR_VAL(u->g, v);
}

/* A node of the rewrite with one output (named out when not NULL): the
 * node's own name when what is NULL (the one that carries its output),
 * else a helper "NODE/WHAT". */
static NodeId node1(const OnnxNode *u, Op op, const char *what, const char *out, int nin,
                    const ValId *in)
{
	char name[400];
	snprintf(name, sizeof name, "%s%s%s", u->name, what ? "/" : "", what ? what : "");
	return ir_node_new(u->g, op, name, nin, in, 1, out ? &out : NULL);
}

static ValId op1(const OnnxNode *u, Op op, const char *what, int nin, const ValId *in)
{
	NodeId n = node1(u, op, what, NULL, nin, in);
	return IR_NODE(u->g, n)->out[0];
}

static ValId op2(const OnnxNode *u, Op op, const char *what, ValId a, ValId b)
{
	ValId in[2] = { a, b };
	return op1(u, op, what, 2, in);
}

static ValId const_i64(const OnnxNode *u, const char *what, int rank, int64_t v)
{
	int64_t one = 1;
	return onnx_node_const(u, what, DT_I64, rank, &one, &v, sizeof v);
}

static ValId const_f32(const OnnxNode *u, const char *what, float v)
{
	return onnx_node_const(u, what, DT_F32, 0, NULL, &v, sizeof v);
}

static ValId const_i32(const OnnxNode *u, const char *what, int32_t v)
{
	return onnx_node_const(u, what, DT_I32, 0, NULL, &v, sizeof v);
}

/* x's dim k as an i64 scalar, computed at run time: helpers WHAT_shape,
 * WHAT_dim. */
static ValId dim_of(const OnnxNode *u, const char *what, ValId x, int k)
{
	char shape[64], dim[64];
	snprintf(shape, sizeof shape, "%s_shape", what);
	snprintf(dim, sizeof dim, "%s_dim", what);
	ValId in[2] = { op1(u, OP_Shape, shape, 1, &x), const_i64(u, dim, 0, k) };
	return op1(u, OP_Gather, dim, 2, in);
}

static ValId cast(const OnnxNode *u, const char *what, ValId v, DType t)
{
	NodeId c = node1(u, OP_Cast, what, NULL, 1, &v);
	ir_attr_set_int(u->g, c, "to", t);
	return IR_NODE(u->g, c)->out[0];
}

/* f32 zeros of v's shape (helpers WHAT_shape, WHAT). */
static ValId zeros_like(const OnnxNode *u, const char *what, ValId v)
{
	char sname[64];
	snprintf(sname, sizeof sname, "%s_shape", what);
	ValId shape = op1(u, OP_Shape, sname, 1, &v);
	return op1(u, OP_ConstantOfShape, what, 1, &shape);
}

/* v broadcast to the shape of like, unless it has it already. */
static ValId expand_like(const OnnxNode *u, const char *what, ValId v, ValId like)
{
	const Value *a = val(u, v), *b = val(u, like);
	bool same = a->rank >= 0 && a->rank == b->rank;
	for (int i = 0; same && i < a->rank; i++)
		same = a->dims[i] == b->dims[i];
	if (same)
		return v;
	char sname[64];
	snprintf(sname, sizeof sname, "%s_shape", what);
	return op2(u, OP_Expand, what, v, op1(u, OP_Shape, sname, 1, &like));
}

/* ---- checks against the table --------------------------------------------- */

static int check_attrs(const OnnxNode *u, const IrOpSchema *s)
{
	for (size_t i = 0; i < u->nd->n_attribute; i++) {
		const Onnx__AttributeProto *a = u->nd->attribute[i];
		if (!a || !a->name)
			return fail(u, "attribute %zu is malformed", i);
		const IrAttrSchema *as = NULL;
		for (int k = 0; k < s->nattrs && !as; k++)
			if (!strcmp(s->attrs[k].name, a->name))
				as = &s->attrs[k];
		if (!as)
			return fail(u, "unknown attribute '%s'", a->name);
		for (size_t k = 0; k < i; k++)
			if (u->nd->attribute[k] && u->nd->attribute[k]->name &&
			    !strcmp(u->nd->attribute[k]->name, a->name))
				return fail(u, "attribute '%s' is given twice", a->name);
		Attr at = { .name = a->name, .kind = (uint8_t)attr_kind(a) };
		if (attr_kind(a) < 0)
			return fail(u, "attribute '%s' is of an unsupported type", a->name);
		char str[64] = "";
		if (at.kind == A_INT)
			at.u.i = a->i;
		if (at.kind == A_STRING) {
			if (a->s.len && a->s.data)
				snprintf(str, sizeof str, "%.*s", (int)a->s.len, (const char *)a->s.data);
			at.u.s = str;
		}
		if (at.kind == A_INTS && a->n_ints && !a->ints)
			return fail(u, "attribute '%s' is malformed", a->name);
		char why[200];
		if (ir_schema_attr_ok(as, &at, why, sizeof why))
			return fail(u, "attribute '%s' %s", a->name, why);
	}
	for (int k = 0; k < s->nattrs; k++)
		if (s->attrs[k].required && !attr_find(u, s->attrs[k].name))
			return fail(u, "attribute '%s' is required", s->attrs[k].name);
	return 0;
}

static int check_ios(const OnnxNode *u, const IrOpSchema *s)
{
	if (u->nin > s->nin)
		return fail(u, "expects at most %d inputs, has %d", s->nin, u->nin);
	if (u->nout > s->nout)
		return fail(u, "expects at most %d outputs, has %d", s->nout, u->nout);
	for (int i = 0; i < s->nin; i++) {
		const IrIoSchema *io = &s->in[i];
		if (io->kind == IO_REQ && !present(u, i))
			return fail(u, "required input %d (%s) is missing", i, io->name);
		if (!present(u, i))
			continue;
		if (io->kind == IO_REFUSED)
			return fail(u, "input %d (%s) is not supported", i, io->name);
		DType dt;
		int rank;
		onnx_value_type(u, u->in[i], &dt, &rank);
		if (dt != DT_UNDEF && !(s->types[io->tv] & TS_(dt))) {
			char ts[128];
			ir_typeset_str(s->types[io->tv], ts, sizeof ts);
			return fail(u, "input %d (%s) is %s; kiln imports %s", i, io->name,
			            ir_dtype_name(dt), ts);
		}
	}
	for (int i = 0; i < s->nout; i++) {
		if (s->out[i].kind == IO_REQ && i == 0 && !out_used(u, i))
			return fail(u, "output 0 (%s) has no name", s->out[i].name);
		if (s->out[i].kind == IO_REFUSED && out_used(u, i))
			return fail(u, "output %d (%s) is not supported (kiln computes it only unused: give it no name)",
			            i, s->out[i].name);
	}
	return 0;
}

/* ---- the rewrites ------------------------------------------------------------ */

/* SkipLayerNormalization: LayerNorm(input + skip (+ bias)) with gamma (and
 * beta: zeros when absent); skip broadcast to the input ([S, H] or
 * [1, S, H] may be given); output 3 the sum. */
static int ms_skip_layernorm(const OnnxNode *u, NodeId *last, ValId *res)
{
	ValId x = u->in[0], gamma = u->in[2];
	ValId in[5] = { x, expand_like(u, "skip", u->in[1], x), gamma,
	                present(u, 3) ? u->in[3] : zeros_like(u, "beta", gamma), in_or(u, 4) };
	const char *outs[2] = { u->out[0], out_used(u, 3) ? u->out[3] : NULL };
	NodeId n = ir_node_new(u->g, OP_KlnSkipLayerNorm, u->name, present(u, 4) ? 5 : 4, in,
	                       outs[1] ? 2 : 1, outs);
	ir_attr_set_float(u->g, n, "epsilon", get_float(u, "epsilon", 1e-12f));
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	if (outs[1])
		res[3] = IR_NODE(u->g, n)->out[1];
	return 0;
}

/* SkipSimplifiedLayerNormalization: RMSNorm(input + skip (+ bias)) *
 * gamma; output 3 the sum. */
static int ms_skip_rmsnorm(const OnnxNode *u, NodeId *last, ValId *res)
{
	ValId x = u->in[0];
	ValId in[2] = { x, expand_like(u, "skip", u->in[1], x) };
	const char *sum_name = out_used(u, 3) ? u->out[3] : NULL;
	NodeId s = node1(u, OP_Add, "sum", present(u, 3) ? NULL : sum_name, 2, in);
	if (present(u, 3)) {
		ValId b[2] = { IR_NODE(u->g, s)->out[0], u->in[3] };
		s = node1(u, OP_Add, "sum_bias", sum_name, 2, b);
	}
	ValId r[2] = { IR_NODE(u->g, s)->out[0], u->in[2] };
	if (sum_name)
		res[3] = r[0];
	NodeId n = node1(u, OP_KlnRMSNorm, NULL, u->out[0], 2, r);
	ir_attr_set_float(u->g, n, "epsilon", get_float(u, "epsilon", 1e-12f));
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	return 0;
}

/* SimplifiedLayerNormalization over the last axis: RMSNorm(X) * scale. */
static int ms_rmsnorm(const OnnxNode *u, NodeId *last, ValId *res)
{
	NodeId n = node1(u, OP_KlnRMSNorm, NULL, u->out[0], 2, u->in);
	ir_attr_set_float(u->g, n, "epsilon", get_float(u, "epsilon", 1e-5f));
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	return 0;
}

/* LayerNormalization of com.microsoft: ONNX's LayerNormalization. */
static int ms_layernorm(const OnnxNode *u, NodeId *last, ValId *res)
{
	(void)res;
	*last = ir_node_new(u->g, OP_LayerNormalization, u->name, u->nin, u->in, u->nout,
	                    (const char **)u->out);
	return onnx_node_attrs(u, *last, NULL);
}

/* Gelu (erf), BiasGelu (erf GELU of A + B), FastGelu (tanh GELU of
 * X (+ bias)), QuickGelu (x sigmoid(alpha x): KlnGelu's form 2 when alpha
 * is its 1.702, else the ops). */
static int ms_gelu(const OnnxNode *u, NodeId *last, ValId *res)
{
	const char *op = u->nd->op_type;
	ValId x = u->in[0];
	int approx = !strcmp(op, "FastGelu") ? 1 : !strcmp(op, "QuickGelu") ? 2 : 0;
	if (u->nin > 1 && present(u, 1))
		x = op2(u, OP_Add, "bias", x, u->in[1]);
	NodeId n;
	float alpha = get_float(u, "alpha", 1.702f);
	if (approx == 2 && alpha != 1.702f) {
		ValId ax = op2(u, OP_Mul, "alpha_x", x, const_f32(u, "alpha", alpha));
		ValId in[2] = { x, op1(u, OP_Sigmoid, "sigmoid", 1, &ax) };
		n = node1(u, OP_Mul, NULL, u->out[0], 2, in);
	} else {
		n = node1(u, OP_KlnGelu, NULL, u->out[0], 1, &x);
		ir_attr_set_int(u->g, n, "approximate", approx);
	}
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	return 0;
}

/* EmbedLayerNormalization: LayerNorm(word[input_ids] + position[position_ids
 * or 0..S-1] (+ segment[segment_ids])); output 1 mask_index, the number of
 * ones in each row of mask (zeros without a mask), output 2 the sum. */
static int ms_embed_layernorm(const OnnxNode *u, NodeId *last, ValId *res)
{
	ValId ids = u->in[0];
	if (present(u, 1) != present(u, 4))
		return fail(u, "segment_ids and segment_embedding must be given together");
	ValId pos_ids = in_or(u, 8);
	if (pos_ids < 0) {
		ValId in[3] = { const_i64(u, "pos_start", 0, 0), dim_of(u, "seq", ids, 1),
		                const_i64(u, "pos_step", 0, 1) };
		pos_ids = op1(u, OP_Range, "positions", 3, in);
	}
	if (out_used(u, 1)) {
		ValId mi;
		if (get_int(u, "mask_index_type", 1) == 0)
			return fail(u, "output 1 (mask_index) is not computed with mask_index_type 0");
		if (present(u, 7)) {
			ValId ones = op2(u, OP_Equal, "mask_ones", u->in[7], const_i32(u, "one", 1));
			ValId in[2] = { cast(u, "mask_i32", ones, DT_I32), const_i64(u, "axes", 1, 1) };
			NodeId r = node1(u, OP_ReduceSum, NULL, u->out[1], 2, in);
			ir_attr_set_int(u->g, r, "keepdims", 0);
			mi = IR_NODE(u->g, r)->out[0];
		} else {
			int32_t zero = 0;
			TensorLit lit = { .dtype = DT_I32, .rank = 1, .dims = { 1 }, .data = &zero,
			                  .nbytes = sizeof zero };
			ValId in[3] = { op1(u, OP_Shape, "ids_shape", 1, &ids),
			                const_i64(u, "batch_start", 1, 0), const_i64(u, "batch_end", 1, 1) };
			ValId b = op1(u, OP_Slice, "batch", 3, in);
			NodeId z = node1(u, OP_ConstantOfShape, NULL, u->out[1], 1, &b);
			ir_attr_set_tensor(u->g, z, "value", &lit);
			mi = IR_NODE(u->g, z)->out[0];
		}
		res[1] = mi;
	}
	ValId in[8] = { ids, u->in[2], u->in[5], u->in[6], pos_ids, u->in[3], in_or(u, 1),
	                in_or(u, 4) };
	const char *outs[2] = { u->out[0], out_used(u, 2) ? u->out[2] : NULL };
	NodeId n = ir_node_new(u->g, OP_KlnEmbedLayerNorm, u->name, present(u, 1) ? 8 : 6, in,
	                       outs[1] ? 2 : 1, outs);
	ir_attr_set_float(u->g, n, "epsilon", get_float(u, "epsilon", 1e-12f));
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	if (outs[1])
		res[2] = IR_NODE(u->g, n)->out[1];
	return 0;
}

/* The mask (input mi: Attention's mask_index, MultiHeadAttention's
 * key_padding_mask) as KlnAttention's key-padding mask (*pad, bool [B, T])
 * or an additive bias (*bias, [B, 1, S, T], added to attention_bias):
 * ONNX Runtime adds mask_filter_value where a key is masked.  q is the
 * query ([B, S, *]), keys the keys ([B, T, *]). */
static int attention_mask(const OnnxNode *u, int mi, ValId q, ValId keys, float filter,
                          ValId *pad, ValId *bias)
{
	ValId m = u->in[mi];
	const char *mname = mi == 4 ? "key_padding_mask" : "mask_index";   /* MHA's, Attention's */
	const Value *mv = val(u, m), *xv = val(u, q);
	switch (mv->rank) {
	case 2:   /* [B, T]: > 0 attends */
		*pad = op2(u, OP_Greater, "mask", m, const_i32(u, "zero", 0));
		return 0;
	case 1: { /* [B]: keys before mask_index[b] attend (right padding) */
		if (xv->rank != 3 || mv->dims[0] != xv->dims[0])
			return fail(u, "input %d (%s) of rank 1 must be [batch] (the end positions; kiln cannot tell it from the other 1-D forms, [2*batch] or [3*batch+2], which it does not support)",
			            mi, mname);
		ValId in[3] = { const_i64(u, "key_start", 0, 0), dim_of(u, "keys", keys, 1),
		                const_i64(u, "key_step", 0, 1) };
		ValId pos = op1(u, OP_Range, "key_positions", 3, in);
		ValId ends = op2(u, OP_Unsqueeze, "ends", cast(u, "ends_i64", m, DT_I64),
		                 const_i64(u, "ends_axes", 1, 1));
		*pad = op2(u, OP_Less, "mask", pos, ends);
		return 0;
	}
	case 3: { /* [B, S, T]: per query, > 0 attends */
		ValId keep = op2(u, OP_Greater, "mask", m, const_i32(u, "zero", 0));
		ValId in[3] = { keep, const_f32(u, "attend", 0.0f), const_f32(u, "filter", filter) };
		ValId add = op1(u, OP_Where, "mask_bias", 3, in);
		add = op2(u, OP_Unsqueeze, "mask_bias4", add, const_i64(u, "mask_axes", 1, 1));
		*bias = *bias >= 0 ? op2(u, OP_Add, "bias_mask", *bias, add) : add;
		return 0;
	}
	case 4:
		return fail(u, "input %d (%s) of rank 4 (Megatron's [batch, 1, max_seq, max_seq]) is not supported",
		            mi, mname);
	default:
		if (mv->rank < 0)
			return fail(u, "input %d (%s): its rank (1, 2 or 3) is not known", mi, mname);
		return fail(u, "input %d (%s) must have rank 1, 2 or 3, not %d", mi, mname, mv->rank);
	}
}

/* The KlnAttention carrying the node's output: in Q, K, V, bias, pad
 * (-1 when absent), heads at column offsets offs of Q, K, V; with
 * unidirectional, mask_filter_value added past the causal edge. */
static NodeId att_node(const OnnxNode *u, const ValId *in, int64_t nh, int64_t d, int64_t dv,
                       const int64_t *offs, float scale, float filter)
{
	Graph *g = u->g;
	NodeId n = node1(u, OP_KlnAttention, NULL, u->out[0], in[4] >= 0 ? 5 : in[3] >= 0 ? 4 : 3, in);
	ir_attr_set_int(g, n, "num_heads", nh);
	ir_attr_set_int(g, n, "head_size", d);
	ir_attr_set_int(g, n, "v_head_size", dv);
	if (offs[0])
		ir_attr_set_int(g, n, "q_offset", offs[0]);
	if (offs[1])
		ir_attr_set_int(g, n, "k_offset", offs[1]);
	if (offs[2])
		ir_attr_set_int(g, n, "v_offset", offs[2]);
	ir_attr_set_float(g, n, "scale", scale);
	ir_attr_set_float(g, n, "mask_filter", filter);
	if (get_int(u, "unidirectional", 0)) {
		ir_attr_set_int(g, n, "causal", 1);
		ir_attr_set_float(g, n, "causal_fill", filter);
	}
	return n;
}

/* Attention: one GEMM of input by the packed Q/K/V weights (+ bias), then
 * multi-head attention over its column blocks: scale * Q K^T +
 * attention_bias + mask (mask_filter_value where masked), unidirectional:
 * mask_filter_value added past the causal edge; softmax; times V. */
static int ms_attention(const OnnxNode *u, NodeId *last, ValId *res)
{
	ValId x = u->in[0], w = u->in[1];
	int64_t nh = get_int(u, "num_heads", 1);
	const Value *wv = val(u, w);
	int64_t wn = -1;
	if (wv->rank != 2)
		return fail(u, "input 1 (weights) must have rank 2 [input_hidden, q+k+v hidden]");
	if (!ir_dim_is_const(u->g, wv->dims[1], &wn))
		wn = -1;
	int64_t hs[3];
	const Onnx__AttributeProto *qkv = attr_find(u, "qkv_hidden_sizes");
	if (qkv) {
		if (qkv->n_ints != 3)
			return fail(u, "attribute 'qkv_hidden_sizes' must have 3 values, has %zu", qkv->n_ints);
		memcpy(hs, qkv->ints, sizeof hs);
	} else {
		if (wn < 0)
			return fail(u, "input 1 (weights): the number of its columns is not known (give qkv_hidden_sizes)");
		if (wn % 3)
			return fail(u, "input 1 (weights) has %lld columns, not 3 blocks of one size for Q, K and V (else qkv_hidden_sizes must say their sizes)",
			            (long long)wn);
		hs[0] = hs[1] = hs[2] = wn / 3;
	}
	for (int i = 0; i < 3; i++)
		if (hs[i] <= 0 || hs[i] > (1 << 30) || hs[i] % nh)
			return fail(u, "hidden size %lld (%c) is not a positive multiple of num_heads %lld (at most 2^30)",
			            (long long)hs[i], "qkv"[i], (long long)nh);
	if (hs[0] != hs[1])
		return fail(u, "qkv_hidden_sizes: Q's %lld and K's %lld differ",
		            (long long)hs[0], (long long)hs[1]);
	if (wn >= 0 && wn != hs[0] + hs[1] + hs[2])
		return fail(u, "input 1 (weights) has %lld columns, qkv_hidden_sizes sum to %lld",
		            (long long)wn, (long long)(hs[0] + hs[1] + hs[2]));
	float filter = get_float(u, "mask_filter_value", -10000.0f);
	float scale = get_float(u, "scale", 0.0f);
	int64_t d = hs[0] / nh;
	if (scale == 0.0f)
		scale = (float)(1.0 / sqrt((double)d));
	ValId pad = -1, bias = in_or(u, 5);
	if (present(u, 3) && attention_mask(u, 3, x, x, filter, &pad, &bias))
		return -1;
	ValId g[3] = { x, w, in_or(u, 2) };
	NodeId gemm = node1(u, OP_KlnGemm, "qkv", NULL, present(u, 2) ? 3 : 2, g);
	ir_attr_set_int(u->g, gemm, "act", 0);
	ValId p = IR_NODE(u->g, gemm)->out[0];
	ValId in[5] = { p, p, p, bias, pad };
	int64_t offs[3] = { 0, hs[0], hs[0] + hs[1] };
	*last = att_node(u, in, nh, d, hs[2] / nh, offs, scale, filter);
	res[0] = IR_NODE(u->g, *last)->out[0];
	return 0;
}

/* MultiHeadAttention with separate query [B, S, D], key [B, L, D] and
 * value [B, L, Dv] (+ bias [D + D + Dv], added to each): as Attention
 * after its GEMM; key_padding_mask as Attention's mask_index; the packed
 * QKV/KV forms, 4-D (cached) key and value and the KV cache are refused. */
static int ms_mha(const OnnxNode *u, NodeId *last, ValId *res)
{
	if (!present(u, 1) || !present(u, 2))
		return fail(u, "the packed QKV form (no key or value input) is not supported");
	ValId q = u->in[0], k = u->in[1], v = u->in[2];
	const Value *qv = val(u, q), *kv = val(u, k), *vv = val(u, v);
	if (qv->rank != 3 || kv->rank != 3 || vv->rank != 3)
		return fail(u, "query, key and value must be [batch, seq, hidden] (packed or 4-D forms are not supported)");
	int64_t nh = get_int(u, "num_heads", 1), dq, dk, dv;
	if (!ir_dim_is_const(u->g, qv->dims[2], &dq) || !ir_dim_is_const(u->g, kv->dims[2], &dk) ||
	    !ir_dim_is_const(u->g, vv->dims[2], &dv))
		return fail(u, "the hidden sizes of query, key and value must be known");
	if (dq != dk || dq % nh || dv % nh)
		return fail(u, "query and key hidden sizes (%lld, %lld) must be equal and they and value's (%lld) multiples of num_heads %lld",
		            (long long)dq, (long long)dk, (long long)dv, (long long)nh);
	if (get_int(u, "unidirectional", 0) && kv->dims[1] != qv->dims[1])
		return fail(u, "unidirectional needs key and query of one sequence length");
	if (present(u, 3)) {   /* bias: Q, K, V parts added */
		ValId qkv[3] = { q, k, v };
		int64_t at[4] = { 0, dq, 2 * dq, 2 * dq + dv };
		static const char *const what[3] = { "q_bias", "k_bias", "v_bias" };
		for (int i = 0; i < 3; i++) {
			char nm[32], lo[32], hi[32];
			snprintf(nm, sizeof nm, "%s_part", what[i]);
			snprintf(lo, sizeof lo, "%s_start", what[i]);
			snprintf(hi, sizeof hi, "%s_end", what[i]);
			ValId in[3] = { u->in[3], const_i64(u, lo, 1, at[i]), const_i64(u, hi, 1, at[i + 1]) };
			qkv[i] = op2(u, OP_Add, what[i], qkv[i], op1(u, OP_Slice, nm, 3, in));
		}
		q = qkv[0], k = qkv[1], v = qkv[2];
	}
	float filter = get_float(u, "mask_filter_value", -10000.0f);
	float scale = get_float(u, "scale", 0.0f);
	if (scale == 0.0f)
		scale = (float)(1.0 / sqrt((double)(dq / nh)));
	ValId pad = -1, bias = in_or(u, 5);
	if (present(u, 4) && attention_mask(u, 4, u->in[0], u->in[1], filter, &pad, &bias))
		return -1;
	ValId in[5] = { q, k, v, bias, pad };
	int64_t offs[3] = { 0, 0, 0 };
	*last = att_node(u, in, nh, dq / nh, dv / nh, offs, scale, filter);
	res[0] = IR_NODE(u->g, *last)->out[0];
	return 0;
}

/* A transposed in its last two dims (helper WHAT). */
static int transpose_last2(const OnnxNode *u, const char *what, ValId *a)
{
	const Value *v = val(u, *a);
	if (v->rank < 2)
		return fail(u, "transposing an input of rank %d (kiln needs its rank, >= 2)", v->rank);
	int64_t perm[IR_MAX_RANK];
	for (int i = 0; i < v->rank; i++)
		perm[i] = i;
	perm[v->rank - 2] = v->rank - 1;
	perm[v->rank - 1] = v->rank - 2;
	NodeId t = node1(u, OP_Transpose, what, NULL, 1, a);
	ir_attr_set_ints(u->g, t, "perm", v->rank, perm);
	*a = IR_NODE(u->g, t)->out[0];
	return 0;
}

/* FusedMatMul: alpha * op(A) @ op(B), op transposing the last two dims
 * where transA / transB say so. */
static int ms_fused_matmul(const OnnxNode *u, NodeId *last, ValId *res)
{
	ValId in[2] = { u->in[0], u->in[1] };
	if ((get_int(u, "transA", 0) && transpose_last2(u, "a_t", &in[0])) ||
	    (get_int(u, "transB", 0) && transpose_last2(u, "b_t", &in[1])))
		return -1;
	float alpha = get_float(u, "alpha", 1.0f);
	NodeId n = node1(u, OP_MatMul, alpha == 1.0f ? NULL : "matmul",
	                 alpha == 1.0f ? u->out[0] : NULL, 2, in);
	if (alpha != 1.0f) {
		ValId m[2] = { IR_NODE(u->g, n)->out[0], const_f32(u, "alpha", alpha) };
		n = node1(u, OP_Mul, NULL, u->out[0], 2, m);
	}
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	return 0;
}

/* FusedGemm: ONNX's Gemm, then the activation (Relu, Tanh, Sigmoid,
 * LeakyRelu with activation_alpha, HardSigmoid with activation_alpha and
 * activation_beta). */
static int ms_fused_gemm(const OnnxNode *u, NodeId *last, ValId *res)
{
	static const struct { const char *name; Op op; } acts[] = {
		{ "Relu", OP_Relu }, { "Tanh", OP_Tanh }, { "Sigmoid", OP_Sigmoid },
		{ "LeakyRelu", OP_LeakyRelu }, { "HardSigmoid", OP_HardSigmoid },
	};
	const Onnx__AttributeProto *a = attr_find(u, "activation");
	Op act = OP_Relu;
	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
		if (strlen(acts[i].name) == a->s.len && !memcmp(acts[i].name, a->s.data, a->s.len))
			act = acts[i].op;
	NodeId g = node1(u, OP_Gemm, "gemm", NULL, u->nin, u->in);
	ir_attr_set_float(u->g, g, "alpha", get_float(u, "alpha", 1.0f));
	ir_attr_set_float(u->g, g, "beta", get_float(u, "beta", 1.0f));
	ir_attr_set_int(u->g, g, "transA", get_int(u, "transA", 0));
	ir_attr_set_int(u->g, g, "transB", get_int(u, "transB", 0));
	NodeId n = node1(u, act, NULL, u->out[0], 1, &IR_NODE(u->g, g)->out[0]);
	if (act == OP_LeakyRelu || act == OP_HardSigmoid) {
		const Onnx__AttributeProto *al = attr_find(u, "activation_alpha");
		const Onnx__AttributeProto *be = attr_find(u, "activation_beta");
		if (al)
			ir_attr_set_float(u->g, n, "alpha", al->f);
		if (be && act == OP_HardSigmoid)
			ir_attr_set_float(u->g, n, "beta", be->f);
	}
	*last = n;
	res[0] = IR_NODE(u->g, n)->out[0];
	return 0;
}

typedef int (*RewriteFn)(const OnnxNode *u, NodeId *last, ValId *res);

static const RewriteFn rewrites[] = {
#define X(n) [MS_##n] = ms_##n,
	CONTRIB_REWRITES(X)
#undef X
};

int onnx_contrib_import(const OnnxNode *u, NodeId *last, ValId *res)
{
	const ContribOp *c = contrib_find(u->nd->op_type);
	if (!c)
		return fail(u, "unsupported op");
	if (check_attrs(u, &c->s) || check_ios(u, &c->s))
		return -1;
	return rewrites[c->rewrite](u, last, res);
}
