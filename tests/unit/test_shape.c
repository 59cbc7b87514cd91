/* Shape inference (ir/shape*.c) on small graphs built with the graph API:
 * symbolic shape chains (Shape -> Gather -> Unsqueeze -> Concat -> Reshape),
 * Reshape -1, broadcasting with symbols, Slice bounds, Range, Einsum,
 * Expand, the legacy exporter's Where/Equal expand pattern, other layout
 * ops, and refusals naming the node; the checked size arithmetic
 * (ir/checked.h, ir_dim_eval_checked) and the size limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "checked.h"
#include "ir.h"

static Graph *G;

static int setup(void **st)
{
	G = ir_graph_new("shapes");
	return G ? 0 : -1;
}

static int teardown(void **st)
{
	ir_graph_free(G);
	G = NULL;
	return 0;
}

static DimId P(const char *s)
{
	Diag d = { 0 };
	DimId r = ir_dim_parse(G, s, &d);
	assert_true(r >= 0);
	return r;
}

/* An input with dims given as dim strings: in("x", DT_F32, "batch", "sequence", "64", NULL) */
static ValId in(const char *name, DType t, ...)
{
	DimId d[IR_MAX_RANK];
	int r = 0;
	va_list ap;
	va_start(ap, t);
	for (const char *s; (s = va_arg(ap, const char *));)
		d[r++] = P(s);
	va_end(ap);
	return ir_input_new(G, name, t, r, d);
}

static ValId ints(const char *name, int n, const int64_t *v)
{
	int64_t dim = n;
	return ir_const_new(G, name, DT_I64, 1, &dim, v, sizeof(int64_t) * (size_t)n, false);
}

static ValId scalar(int64_t v)
{
	return ir_const_scalar_i64(G, NULL, v);
}

static NodeId node(Op op, const char *name, int nin, ...)
{
	ValId v[16];
	va_list ap;
	va_start(ap, nin);
	for (int i = 0; i < nin; i++)
		v[i] = va_arg(ap, ValId);
	va_end(ap);
	return ir_node_new(G, op, name, nin, v, 1, NULL);
}

static ValId out(NodeId n)
{
	return IR_NODE(G, n)->out[0];
}

static ValId op1(Op op, ValId a) { return out(node(op, NULL, 1, a)); }
static ValId op2(Op op, ValId a, ValId b) { return out(node(op, NULL, 2, a, b)); }

/* "[batch, sequence, 4, 16]" */
static const char *shape_str(ValId v)
{
	static char buf[4][512];
	static int k;
	char *b = buf[k++ & 3];
	const Value *x = IR_VAL(G, v);
	int n = snprintf(b, 512, "%s[", ir_dtype_name(x->dtype) ? ir_dtype_name(x->dtype) : "?");
	for (int i = 0; i < x->rank; i++) {
		n += snprintf(b + n, 512 - (size_t)n, "%s", i ? ", " : "");
		n += ir_dim_str(G, x->dims[i], b + n, 512 - (size_t)n);
	}
	snprintf(b + n, 512 - (size_t)n, "]");
	return b;
}

static void infer_ok(void)
{
	Diag d = { 0 };
	int rc = ir_infer_shapes(G, &d);
	if (rc)
		fail_msg("inference failed: %s", d.msg);
}

static void infer_fails(const char *want1, const char *want2)
{
	Diag d = { 0 };
	assert_int_equal(ir_infer_shapes(G, &d), -1);
	assert_true(d.failed);
	if (!strstr(d.msg, want1) || (want2 && !strstr(d.msg, want2)))
		fail_msg("message '%s' lacks '%s' / '%s'", d.msg, want1, want2 ? want2 : "");
}

static void test_head_split_chain(void **st)
{
	ValId x = in("x", DT_F32, "batch", "sequence", "64", NULL);
	ValId s = op1(OP_Shape, x);
	ValId b = op2(OP_Gather, s, scalar(0));
	ValId q = op2(OP_Gather, s, scalar(1));
	int64_t zero = 0, four = 4, sixteen = 16;
	ValId ub = op2(OP_Unsqueeze, b, ints("ax0", 1, &zero));
	ValId uq = op2(OP_Unsqueeze, q, ints("ax1", 1, &zero));
	ValId shp = out(node(OP_Concat, "cat", 4, ub, uq, ints("h", 1, &four), ints("d", 1, &sixteen)));
	ir_attr_set_int(G, IR_VAL(G, shp)->def, "axis", 0);
	ValId r = out(node(OP_Reshape, "split_heads", 2, x, shp));
	int64_t perm[4] = { 0, 2, 1, 3 };
	NodeId tn = node(OP_Transpose, "t", 1, r);
	ir_attr_set_ints(G, tn, "perm", 4, perm);
	infer_ok();
	assert_string_equal(shape_str(s), "i64[3]");
	assert_int_equal(IR_VAL(G, s)->nsval, 3);
	assert_int_equal(IR_VAL(G, s)->sval[1], P("sequence"));
	assert_string_equal(shape_str(b), "i64[]");
	assert_int_equal(IR_VAL(G, b)->sval[0], P("batch"));
	assert_string_equal(shape_str(shp), "i64[4]");
	assert_string_equal(shape_str(r), "f32[batch, sequence, 4, 16]");
	assert_string_equal(shape_str(out(tn)), "f32[batch, 4, sequence, 16]");
}

static void test_reshape_minus_one(void **st)
{
	ValId x = in("x", DT_F32, "batch", "sequence", "64", NULL);
	int64_t a[4] = { 0, 0, 4, -1 }, b[2] = { -1, 64 }, c[1] = { -1 }, d[3] = { 0, -1, 16 };
	ValId r1 = op2(OP_Reshape, x, ints("a", 4, a));
	ValId r2 = op2(OP_Reshape, x, ints("b", 2, b));
	ValId r3 = op2(OP_Reshape, x, ints("c", 1, c));
	ValId r4 = op2(OP_Reshape, r2, ints("d", 3, d));
	ValId r5 = op2(OP_Reshape, r4, ints("b2", 2, b));   /* back: exact division */
	infer_ok();
	assert_string_equal(shape_str(r1), "f32[batch, sequence, 4, 16]");
	assert_string_equal(shape_str(r2), "f32[batch*sequence, 64]");
	assert_string_equal(shape_str(r3), "f32[64*batch*sequence]");
	assert_string_equal(shape_str(r4), "f32[batch*sequence, 4, 16]");
	assert_string_equal(shape_str(r5), "f32[batch*sequence, 64]");
}

static void test_broadcast_symbols(void **st)
{
	ValId a = in("a", DT_F32, "batch", "1", "sequence", NULL);
	ValId b = in("b", DT_F32, "sequence", NULL);
	ValId c = in("c", DT_F32, "s18", "s41", NULL);
	ValId d = in("d", DT_F32, "s43", "s41", NULL);
	ValId e = in("e", DT_F32, "3", "n", NULL);
	ValId m = in("m", DT_BOOL, "batch", "1", "1", NULL);
	ValId ab = op2(OP_Add, a, b);
	ValId cd = op2(OP_Mul, c, d);
	ValId ec = op2(OP_Sub, e, in("f", DT_F32, "k", "1", NULL));
	ValId w = out(node(OP_Where, "w", 3, m, a, b));
	ValId eq = op2(OP_Less, a, b);
	ValId mx = out(node(OP_Max, "mx", 3, a, b, in("g", DT_F32, "1", "7", "1", NULL)));
	infer_ok();
	assert_string_equal(shape_str(ab), "f32[batch, 1, sequence]");
	assert_string_equal(shape_str(cd), "f32[max(s18, s43), s41]");
	assert_string_equal(shape_str(ec), "f32[3, n]");
	assert_string_equal(shape_str(w), "f32[batch, 1, sequence]");
	assert_string_equal(shape_str(eq), "bool[batch, 1, sequence]");
	assert_string_equal(shape_str(mx), "f32[batch, 7, sequence]");
}

static ValId slice(ValId x, int64_t s, int64_t e, int64_t ax, int64_t step)
{
	return out(node(OP_Slice, NULL, 5, x, ints("s", 1, &s), ints("e", 1, &e), ints("ax", 1, &ax),
	                ints("st", 1, &step)));
}

static void test_slice(void **st)
{
	ValId x = in("x", DT_F32, "batch", "sequence", "64", NULL);
	ValId k = in("k", DT_F32, "10", NULL);
	ValId a = slice(x, 0, INT64_MAX, 1, 1);
	ValId b = slice(x, 1, INT64_MAX, 1, 1);
	ValId c = slice(x, 0, 16, 2, 1);
	ValId d = slice(k, -3, INT64_MAX, 0, 1);
	ValId e = slice(k, -1, INT64_MIN, 0, -1);
	ValId f = slice(k, 1, 1000, 0, 2);
	ValId g = slice(k, 8, 2, 0, 1);
	ValId h = slice(x, 0, 128, 1, 1);
	ValId i = slice(k, 20, -100, 0, -3);
	/* symbolic end from Shape: x[:, :seq] == x */
	ValId sq = op2(OP_Gather, op1(OP_Shape, x), scalar(1));
	int64_t z = 0, one = 1;
	ValId us = op2(OP_Unsqueeze, sq, ints("z", 1, &z));
	ValId j = out(node(OP_Slice, NULL, 4, x, ints("s0", 1, &z), us, ints("a1", 1, &one)));
	infer_ok();
	assert_string_equal(shape_str(a), "f32[batch, sequence, 64]");
	assert_string_equal(shape_str(b), "f32[batch, max(0, sequence - 1), 64]");
	assert_string_equal(shape_str(c), "f32[batch, sequence, 16]");
	assert_string_equal(shape_str(d), "f32[3]");
	assert_string_equal(shape_str(e), "f32[10]");
	assert_string_equal(shape_str(f), "f32[5]");
	assert_string_equal(shape_str(g), "f32[0]");
	assert_string_equal(shape_str(h), "f32[batch, min(128, sequence), 64]");
	assert_string_equal(shape_str(i), "f32[4]");   /* 9, 6, 3, 0 */
	assert_string_equal(shape_str(j), "f32[batch, sequence, 64]");
	/* eval agrees with ONNX for sequence = 1 and 0 */
	int64_t v[16] = { 0 };
	v[ir_sym_lookup(G, "sequence")] = 1;
	assert_int_equal(ir_dim_eval(G, IR_VAL(G, b)->dims[1], v), 0);
	v[ir_sym_lookup(G, "sequence")] = 300;
	assert_int_equal(ir_dim_eval(G, IR_VAL(G, h)->dims[1], v), 128);
}

static void test_slice_of_shape(void **st)
{
	ValId x = in("x", DT_F32, "batch", "sequence", "64", NULL);
	ValId s = slice(op1(OP_Shape, x), -2, INT64_MAX, 0, 1);
	ValId sz = op1(OP_Size, x);
	infer_ok();
	assert_string_equal(shape_str(s), "i64[2]");
	assert_int_equal(IR_VAL(G, s)->nsval, 2);
	assert_int_equal(IR_VAL(G, s)->sval[0], P("sequence"));
	assert_int_equal(IR_VAL(G, s)->sval[1], P("64"));
	assert_string_equal(shape_str(sz), "i64[]");
	assert_int_equal(IR_VAL(G, sz)->sval[0], P("64*batch*sequence"));
}

static void test_range_from_shape(void **st)
{
	ValId x = in("x", DT_I64, "batch", "sequence", NULL);
	ValId q = op2(OP_Gather, op1(OP_Shape, x), scalar(1));
	ValId r = out(node(OP_Range, "pos", 3, scalar(0), q, scalar(1)));
	ValId r2 = out(node(OP_Range, "odd", 3, scalar(1), q, scalar(2)));
	ValId r3 = out(node(OP_Range, "k", 3, scalar(5), scalar(-1), scalar(-2)));
	infer_ok();
	assert_string_equal(shape_str(r), "i64[sequence]");
	assert_string_equal(shape_str(r2), "i64[sequence//2]");
	assert_string_equal(shape_str(r3), "i64[3]");
	assert_int_equal(IR_VAL(G, r3)->nsval, 3);
	assert_int_equal(IR_VAL(G, r3)->sval[2], P("1"));
}

static void test_einsum(void **st)
{
	ValId a = in("a", DT_F32, "batch", "sequence", "4", "16", NULL);
	ValId b = in("b", DT_F32, "batch", "kv", "4", "16", NULL);
	NodeId n = node(OP_Einsum, "scores", 2, a, b);
	ir_attr_set_str(G, n, "equation", "bind,bjnd->bnij");
	NodeId m = node(OP_Einsum, "implicit", 2, a, b);
	ir_attr_set_str(G, m, "equation", "bind,bjnd");
	NodeId el = node(OP_Einsum, "ell", 2, a, in("v", DT_F32, "16", NULL));
	ir_attr_set_str(G, el, "equation", "...d,d->...");
	NodeId bad = node(OP_Einsum, "bad", 2, a, b);
	ir_attr_set_str(G, bad, "equation", "bind,bjnd->bnix");
	Diag d = { 0 };
	assert_int_equal(ir_infer_node(G, n, &d), 0);
	assert_int_equal(ir_infer_node(G, m, &d), 0);
	assert_string_equal(shape_str(out(n)), "f32[batch, 4, sequence, kv]");
	assert_string_equal(shape_str(out(m)), "f32[sequence, kv]");
	assert_int_equal(ir_infer_node(G, el, &d), 0);
	assert_string_equal(shape_str(out(el)), "f32[batch, sequence, 4]");
	assert_int_equal(ir_infer_node(G, bad, &d), -1);
	assert_non_null(strstr(d.msg, "node 'bad' (Einsum)"));
}

static void test_expand(void **st)
{
	ValId x = in("x", DT_F32, "1", "1", "sequence", NULL);
	ValId ids = in("ids", DT_I64, "batch", "sequence", NULL);
	ValId b = op2(OP_Gather, op1(OP_Shape, ids), scalar(0));
	int64_t z = 0, one = 1;
	ValId ub = op2(OP_Unsqueeze, b, ints("z", 1, &z));
	NodeId cat = node(OP_Concat, "cat", 3, ub, ints("o1", 1, &one), ints("o2", 1, &one));
	ir_attr_set_int(G, cat, "axis", 0);
	ValId e = op2(OP_Expand, x, out(cat));
	/* the legacy exporter's pattern: Where(Equal(shape, -1), ones, shape) */
	ValId shp = out(cat);
	ValId four = ints("four", 1, (int64_t[]){ 3 });
	NodeId cos = node(OP_ConstantOfShape, "cos", 1, four);
	TensorLit one_t = { .dtype = DT_I64, .rank = 1, .dims = { 1 }, .data = &one, .nbytes = 8 };
	ir_attr_set_tensor(G, cos, "value", &one_t);
	ValId neg = op2(OP_Mul, out(cos), scalar(-1));
	ValId eq = op2(OP_Equal, shp, neg);
	ValId w = out(node(OP_Where, "w", 3, eq, out(cos), shp));
	ValId e2 = op2(OP_Expand, x, w);
	infer_ok();
	assert_string_equal(shape_str(e), "f32[batch, 1, sequence]");
	assert_string_equal(shape_str(eq), "bool[3]");
	assert_int_equal(IR_VAL(G, eq)->nsval, 3);
	assert_string_equal(shape_str(e2), "f32[batch, 1, sequence]");
}

/* Abs keeps symbolic content: torch's dynamo exporter writes Expand
 * shapes as Abs(Cast([1, -1, 1])) and [batch, sequence] as Abs of shape
 * values; the Expand must come out static, not data-dependent. */
static void test_abs_sval(void **st)
{
	ValId x = in("x", DT_F32, "1", "4", "1", NULL);
	ValId ids = in("ids", DT_I64, "batch", "sequence", NULL);
	ValId a = op1(OP_Abs, ints("s", 3, (int64_t[]){ 1, -1, 1 }));
	ValId e = op2(OP_Expand, x, a);
	ValId sa = op1(OP_Abs, op1(OP_Shape, ids));
	ValId e2 = op2(OP_Expand, x, op1(OP_Abs, op1(OP_Neg, ints("n", 3, (int64_t[]){ 2, -4, 3 }))));
	ValId f = op2(OP_Sub, op1(OP_Shape, ids), ints("one", 2, (int64_t[]){ 1, 1 }));
	ValId af = op1(OP_Abs, f);   /* sequence - 1 may be negative: not known */
	infer_ok();
	assert_int_equal(IR_VAL(G, a)->nsval, 3);
	assert_int_equal(IR_VAL(G, a)->sval[1], P("1"));
	assert_string_equal(shape_str(e), "f32[1, 4, 1]");
	assert_int_equal(IR_VAL(G, sa)->nsval, 2);
	assert_int_equal(IR_VAL(G, sa)->sval[0], P("batch"));
	assert_int_equal(IR_VAL(G, sa)->sval[1], P("sequence"));
	assert_string_equal(shape_str(e2), "f32[2, 4, 3]");
	assert_null(IR_VAL(G, af)->sval);
}

static void test_layout_ops(void **st)
{
	ValId x = in("x", DT_F32, "batch", "sequence", "64", NULL);
	ValId w = in("w", DT_F32, "64", "256", NULL);
	int64_t ax1 = 1;
	ValId u = op2(OP_Unsqueeze, x, ints("a", 1, &ax1));
	ValId sq = op2(OP_Squeeze, u, ints("b", 1, &ax1));
	ValId mm = op2(OP_MatMul, x, w);
	ValId mv = op2(OP_MatMul, x, in("v", DT_F32, "64", NULL));
	NodeId gm = node(OP_Gemm, "gemm", 2, in("p", DT_F32, "n", "64", NULL), w);
	NodeId gt = node(OP_Gemm, "gemmt", 2, in("p2", DT_F32, "n", "256", NULL), w);
	ir_attr_set_int(G, gt, "transB", 1);
	ValId fl = op1(OP_Flatten, x);
	ValId rm = op1(OP_ReduceMean, x);
	NodeId r2 = node(OP_ReduceSum, "rs", 2, x, ints("ax", 1, (int64_t[]){ -1 }));
	ir_attr_set_int(G, r2, "keepdims", 0);
	NodeId am = node(OP_ArgMax, "am", 1, x);
	ir_attr_set_int(G, am, "axis", 2);
	ValId ln_s = in("ln_s", DT_F32, "64", NULL);
	NodeId ln = ir_node_new(G, OP_LayerNormalization, "ln", 2, (ValId[]){ x, ln_s }, 3, NULL);
	NodeId sp = ir_node_new(G, OP_Split, "sp", 1, (ValId[]){ w }, 2, NULL);
	ir_attr_set_int(G, sp, "axis", 1);
	NodeId cast = node(OP_Cast, "c", 1, x);
	ir_attr_set_int(G, cast, "to", DT_I32);
	NodeId dr = ir_node_new(G, OP_Dropout, "dr", 1, (ValId[]){ x }, 2, NULL);
	ValId g = op2(OP_Gather, in("emb", DT_F32, "1024", "64", NULL), in("ids", DT_I64, "batch", "sequence", NULL));
	ValId cs = op2(OP_Concat, x, x);
	infer_ok();
	assert_string_equal(shape_str(u), "f32[batch, 1, sequence, 64]");
	assert_string_equal(shape_str(sq), "f32[batch, sequence, 64]");
	assert_string_equal(shape_str(mm), "f32[batch, sequence, 256]");
	assert_string_equal(shape_str(mv), "f32[batch, sequence]");
	assert_string_equal(shape_str(out(gm)), "f32[n, 256]");
	assert_string_equal(shape_str(out(gt)), "f32[n, 64]");
	assert_string_equal(shape_str(fl), "f32[batch, 64*sequence]");
	assert_string_equal(shape_str(rm), "f32[1, 1, 1]");
	assert_string_equal(shape_str(out(r2)), "f32[batch, sequence]");
	assert_string_equal(shape_str(out(am)), "i64[batch, sequence, 1]");
	assert_string_equal(shape_str(IR_NODE(G, ln)->out[0]), "f32[batch, sequence, 64]");
	assert_string_equal(shape_str(IR_NODE(G, ln)->out[1]), "f32[batch, sequence, 1]");
	assert_string_equal(shape_str(IR_NODE(G, sp)->out[1]), "f32[64, 128]");
	assert_string_equal(shape_str(out(cast)), "i32[batch, sequence, 64]");
	assert_string_equal(shape_str(IR_NODE(G, dr)->out[1]), "bool[batch, sequence, 64]");
	assert_string_equal(shape_str(g), "f32[batch, sequence, 64]");
	assert_string_equal(shape_str(cs), "f32[2*batch, sequence, 64]");
}

static void test_refuse_add_mismatch(void **st)
{
	ValId a = in("a", DT_F32, "batch", "3", NULL);
	ValId b = in("b", DT_F32, "4", NULL);
	node(OP_Add, "/enc/Add_7", 2, a, b);
	infer_fails("node '/enc/Add_7' (Add)", "broadcast");
}

static void test_refuse_matmul_inner(void **st)
{
	ValId a = in("a", DT_F32, "batch", "64", NULL);
	ValId b = in("b", DT_F32, "32", "16", NULL);
	node(OP_MatMul, "mm", 2, a, b);
	infer_fails("node 'mm' (MatMul)", "inner dims");
}

/* A shape input known only at run time: the rank from its static length,
 * each extent a data-dependent symbol named after the output; the same
 * symbols when inference runs again.  A shape of symbolic length (rank
 * unknown) is refused. */
static void test_runtime_shape(void **st)
{
	ValId x = in("x", DT_F32, "batch", "64", NULL);
	ValId s = in("target", DT_I64, "2", NULL);
	ValId r = out(node(OP_Reshape, "rs", 2, x, s));
	ValId y = op2(OP_Add, r, in("b", DT_F32, "1", "64", NULL));
	infer_ok();
	const Value *v = IR_VAL(G, r);
	assert_int_equal(v->rank, 2);
	for (int d = 0; d < 2; d++) {
		const DimNode *dn = ir_dim_node(G, v->dims[d]);
		assert_int_equal(dn->kind, DIM_SYM);
		assert_true(ir_sym_is_dyn(G, (int)dn->c));
	}
	assert_false(ir_sym_is_dyn(G, ir_sym_lookup(G, "batch")));
	/* broadcasting against a static dim keeps the static one */
	assert_true(ir_dim_has_dyn(G, IR_VAL(G, y)->dims[0]));
	assert_false(ir_dim_has_dyn(G, IR_VAL(G, y)->dims[1]));
	DimId d0 = v->dims[0];
	int nsyms = ir_nsyms(G);
	infer_ok();
	assert_int_equal(IR_VAL(G, r)->dims[0], d0);
	assert_int_equal(ir_nsyms(G), nsyms);
}

static void test_refuse_runtime_rank(void **st)
{
	ValId x = in("x", DT_F32, "batch", "64", NULL);
	ValId s = in("target", DT_I64, "k", NULL);
	node(OP_Reshape, "rs", 2, x, s);
	infer_fails("node 'rs' (Reshape)", "rank is unknown");
}

/* A user symbol of the same name stays the user's. */
static void test_runtime_shape_name_clash(void **st)
{
	DimId u = ir_dim_sym(G, "y[0]");
	ValId x = ir_input_new(G, "x", DT_F32, 1, &u);
	ValId s = in("target", DT_I64, "1", NULL);
	NodeId n = ir_node_new(G, OP_Reshape, "rs", 2, (ValId[]){x, s}, 1, (const char *[]){"y"});
	infer_ok();
	const DimNode *dn = ir_dim_node(G, IR_VAL(G, IR_NODE(G, n)->out[0])->dims[0]);
	assert_true(ir_sym_is_dyn(G, (int)dn->c));
	assert_string_equal(ir_sym_name(G, (int)dn->c), "y[0]'");
	assert_false(ir_sym_is_dyn(G, ir_sym_lookup(G, "y[0]")));
}

static void test_refuse_reshape_count(void **st)
{
	ValId x = in("x", DT_F32, "6", "4", NULL);
	int64_t t[2] = { 5, -1 };
	node(OP_Reshape, "rs", 2, x, ints("t", 2, t));
	infer_fails("node 'rs' (Reshape)", "24");
}

static void test_slice_runtime_start(void **st)
{
	ValId x = in("x", DT_F32, "10", "3", NULL);
	ValId s = in("start", DT_I64, "1", NULL);
	int64_t e = 5;
	ValId y = out(node(OP_Slice, "sl", 3, x, s, ints("e", 1, &e)));
	infer_ok();
	assert_int_equal(IR_VAL(G, y)->rank, 2);
	assert_true(ir_dim_has_dyn(G, IR_VAL(G, y)->dims[0]));
}

/* ---- sizes: ir/checked.h and the size limit ---- */

static void test_checked_helpers(void **st)
{
	int64_t r, bound, numel;
	assert_true(ck_mul_i64(1LL << 31, 1LL << 31, &r));
	assert_true(r == 1LL << 62);
	assert_false(ck_mul_i64(1LL << 32, 1LL << 32, &r));
	assert_false(ck_mul_i64(-(1LL << 32), 1LL << 32, &r));
	assert_true(ck_mul_i64(INT64_MIN, 1, &r) && r == INT64_MIN);
	assert_false(ck_mul_i64(INT64_MIN, -1, &r));
	assert_true(ck_add_i64(INT64_MAX - 1, 1, &r) && r == INT64_MAX);
	assert_false(ck_add_i64(INT64_MAX, 1, &r));
	assert_false(ck_add_i64(INT64_MIN, -1, &r));
	/* 65536^4 = 2^64: the product wraps to 0 unchecked */
	int64_t four[4] = { 65536, 65536, 65536, 65536 };
	assert_false(ck_dims(4, four, &bound, &numel));
	assert_true(ck_dims(3, four, &bound, &numel) && numel == 1LL << 48);
	/* zero dims count as 1 in the bound (every partial product fits) */
	int64_t z[3] = { 1LL << 40, 0, 1LL << 20 };
	assert_true(ck_dims(3, z, &bound, &numel) && numel == 0 && bound == 1LL << 60);
	int64_t zbig[3] = { 1LL << 40, 0, 1LL << 30 };
	assert_false(ck_dims(3, zbig, &bound, &numel));
	int64_t neg[2] = { 4, -1 };
	assert_false(ck_dims(2, neg, &bound, &numel));
	/* the limit: default 64 GiB, or the given one */
	int64_t d16g[2] = { 1LL << 16, 1LL << 16 };   /* 2^32 f32: 16 GiB */
	assert_true(ck_tensor_fits(2, d16g, 4, 0, &r) && r == 1LL << 34);
	assert_false(ck_tensor_fits(2, d16g, 4, 1LL << 30, &r));
	assert_true(ck_tensor_fits(2, d16g, 4, 1LL << 34, &r));
	assert_false(ck_tensor_fits(2, d16g, 32, 0, &r));           /* 128 GiB */
	assert_false(ck_tensor_fits(2, d16g, INT64_MAX / 2, INT64_MAX, &r));
	assert_true(ck_tensor_fits(0, NULL, 8, 0, &r) && r == 8);  /* a scalar */
}

static void test_dim_eval_checked(void **st)
{
	DimId n4 = P("n*n*n*n"), sum = P("n*n*n + n");
	int s = ir_sym_lookup(G, "n");
	assert_true(s >= 0);
	int64_t v[1] = { 3 }, r;
	assert_true(ir_dim_eval_checked(G, n4, v, &r) && r == 81);
	v[0] = 65536;
	assert_false(ir_dim_eval_checked(G, n4, v, &r));
	assert_int_equal(ir_dim_eval(G, n4, v), 0);      /* what a wrapped count looks like */
	assert_true(ir_dim_eval_checked(G, sum, v, &r) && r == (1LL << 48) + 65536);
	v[0] = 3037000500;                                /* > sqrt(2^63) */
	assert_false(ir_dim_eval_checked(G, P("n*n"), v, &r));
}

static void test_refuse_static_expand(void **st)
{
	ValId x = in("x", DT_F32, "1", NULL);
	int64_t t[2] = { 1LL << 32, 1LL << 32 };
	node(OP_Expand, "ex", 2, x, ints("t", 2, t));
	infer_fails("node 'ex' (Expand): output", "[4294967296, 4294967296]");
}

static void test_refuse_constant_of_shape(void **st)
{
	int64_t t[2] = { 1LL << 31, 1LL << 31 };
	node(OP_ConstantOfShape, "fill", 1, ints("t", 2, t));
	infer_fails("node 'fill' (ConstantOfShape)", "over the limit");
}

static void test_refuse_range(void **st)
{
	node(OP_Range, "rg", 3, scalar(0), scalar(1LL << 62), scalar(1));
	infer_fails("node 'rg' (Range)", "[4611686018427387904]");
}

/* Shape arithmetic over constants that would wrap to a small size. */
static void test_refuse_wrapping_dims(void **st)
{
	node(OP_Range, "rg", 3, scalar(INT64_MIN + 1), scalar(INT64_MAX), scalar(1LL << 62));
	infer_fails("node 'rg' (Range)", "overflows 64 bits");
}

/* ceil((limit - start) / delta) without wrapping: INT64_MAX / 2^62 -> 2 */
static void test_range_near_int64_max(void **st)
{
	ValId r = out(node(OP_Range, "rg", 3, scalar(0), scalar(INT64_MAX), scalar(1LL << 62)));
	infer_ok();
	assert_string_equal(shape_str(r), "i64[2]");
}

static void test_refuse_wrapping_tile(void **st)
{
	ValId x = in("x", DT_F32, "4", NULL);
	int64_t r = 1LL << 62;                     /* 4 * 2^62 wraps to 0 */
	node(OP_Tile, "tl", 2, x, ints("r", 1, &r));
	infer_fails("node 'tl' (Tile)", "overflows 64 bits");
}

/* Graph.max_tensor_bytes: static dims (and the static part of symbolic
 * shapes) against it; symbolic dims alone are checked at run time. */
static void test_size_limit(void **st)
{
	G->max_tensor_bytes = 1024;
	ValId a = in("a", DT_F32, "16", "16", NULL);      /* 1024 bytes: fits */
	op2(OP_Add, a, a);
	ValId b = in("b", DT_F32, "batch", "sequence", "256", NULL);
	op2(OP_Add, b, b);
	infer_ok();
	ValId c = in("c", DT_F32, "batch", "257", NULL);   /* 1028 bytes per batch row */
	node(OP_Add, "add_c", 2, c, c);
	infer_fails("graph input 'c'", "1024 bytes");
}

static void test_size_limit_node(void **st)
{
	G->max_tensor_bytes = 1024;
	ValId a = in("a", DT_F32, "batch", "16", NULL);
	int64_t t[2] = { 17, 16 };
	node(OP_Expand, "big", 2, op1(OP_Identity, a), ints("t", 2, t));
	infer_fails("node 'big' (Expand): output", "over the limit of 1024 bytes");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_head_split_chain),
		T(test_reshape_minus_one),
		T(test_broadcast_symbols),
		T(test_slice),
		T(test_slice_of_shape),
		T(test_range_from_shape),
		T(test_einsum),
		T(test_expand),
		T(test_abs_sval),
		T(test_layout_ops),
		T(test_refuse_add_mismatch),
		T(test_refuse_matmul_inner),
		T(test_runtime_shape),
		T(test_refuse_runtime_rank),
		T(test_runtime_shape_name_clash),
		T(test_refuse_reshape_count),
		T(test_slice_runtime_start),
		T(test_checked_helpers),
		T(test_dim_eval_checked),
		T(test_refuse_static_expand),
		T(test_refuse_constant_of_shape),
		T(test_refuse_range),
		T(test_refuse_wrapping_dims),
		T(test_refuse_wrapping_tile),
		T(test_range_near_int64_max),
		T(test_size_limit),
		T(test_size_limit_node),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
