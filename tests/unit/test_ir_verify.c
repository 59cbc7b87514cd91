/* ir_verify: accepts well-formed graphs (golden texts included) and
 * refuses, with a message naming the node, undefined inputs, wrong arity,
 * bool/non-bool mismatches, use before definition, broadcast and MatMul
 * shape errors, broken bookkeeping, and what the op schema (ir/ops.def)
 * does not allow: unknown, missing, mistyped and unimplemented attribute
 * values, dtypes an op does not run on, training-mode Dropout.  The
 * schema table itself is complete and consistent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "schema.h"
#include "test_files.h"

static Graph *parse_ok(const char *text)
{
	Diag d = { 0 };
	Graph *g = ir_parse(text, "v.kir", &d);
	if (!g)
		fail_msg("parse failed: %s\n%s", d.msg, text);
	return g;
}

/* tests/golden/NAME.kir (malloc'd) */
static char *golden(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/golden/%s.kir", KILN_SOURCE_DIR, name);
	char *text = test_read_file(path, NULL);
	if (!text)
		fail_msg("cannot read %s", path);
	return text;
}

static void verify_ok(const Graph *g)
{
	Diag d = { 0 };
	if (ir_verify(g, &d))
		fail_msg("verify failed: %s", d.msg);
	assert_false(d.failed);
}

static void verify_fails(const Graph *g, const char *want)
{
	Diag d = { 0 };
	assert_int_equal(ir_verify(g, &d), -1);
	assert_true(d.failed);
	if (!strstr(d.msg, want))
		fail_msg("want '%s' in: %s", want, d.msg);
}

/* Parses text (which must parse) and checks the verifier's refusal. */
static void text_fails(const char *text, const char *want)
{
	Graph *g = parse_ok(text);
	verify_fails(g, want);
	ir_graph_free(g);
}

static void test_accepts(void **state)
{
	(void)state;
	/* (attrs.kir, canon.kir and consts.kir exercise the printer and the
	 * parser with attributes no op has and a Concat of every dtype: see
	 * test_schema_goldens) */
	const char *names[] = { "basic" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *text = golden(names[i]);
		Graph *g = parse_ok(text);
		verify_ok(g);
		ir_graph_free(g);
		free(text);
	}
	/* bool plumbing that is right */
	Graph *g = parse_ok("graph @g(%a: f32[2, 3], %b: f32[3]) {\n"
	                    "  %c = Less(%a, %b) : bool[2, 3] @\"less\"\n"
	                    "  %n = Not(%c) : bool[2, 3] @\"not\"\n"
	                    "  %o = Or(%c, %n) : bool[2, 3] @\"or\"\n"
	                    "  %w = Where(%o, %a, %b) : f32[2, 3] @\"where\"\n"
	                    "  %m = MatMul(%w, %b) : f32[2] @\"mm\"\n"
	                    "  return %m\n}\n");
	verify_ok(g);
	ir_graph_free(g);
}

static void test_undefined_input(void **state)
{
	(void)state;
	/* a V_NODE value produced by no node in the order */
	Graph *g = ir_graph_new("u");
	DimId d2 = ir_dim_const(g, 2);
	ValId x = ir_input_new(g, "x", DT_F32, 1, &d2);
	ValId stray = ir_value_new(g, "stray", V_NODE, DT_F32);
	ValId in[2] = { x, stray };
	NodeId n = ir_node_new(g, OP_Add, "/encoder/Add_3", 2, in, 1, NULL);
	g->outputs = ir_arena_alloc(g->arena, sizeof(ValId), 4);
	g->outputs[0] = IR_NODE(g, n)->out[0];
	g->noutputs = 1;
	verify_fails(g, "node '/encoder/Add_3' (Add): input 1 'stray' is not defined before use");
	/* an input value that is not among the graph inputs */
	ValId fake = ir_value_new(g, "fake", V_INPUT, DT_F32);
	ir_set_input(g, n, 1, fake);
	verify_fails(g, "input 1 'fake' is not a graph input");
	ir_set_input(g, n, 1, x);
	verify_ok(g);
	/* graph output never defined */
	g->outputs[0] = stray;
	verify_fails(g, "graph output 0 'stray' is not defined");
	ir_graph_free(g);
}

static void test_arity(void **state)
{
	(void)state;
	text_fails("graph @g(%x: f32[2]) {\n  %y = Add(%x) : f32[2] @\"add1\"\n  return %y\n}\n",
	           "node 'add1' (Add): has 1 inputs, expects 2");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Relu(%x, %x) : f32[2] @\"r\"\n  return %y\n}\n",
	           "node 'r' (Relu): has 2 inputs, expects 1");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Slice(%x, %x) : ? @\"s\"\n  return %y\n}\n",
	           "has 2 inputs, expects 3 to 5");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Concat() : ? @\"c\"\n  return %y\n}\n",
	           "has 0 inputs, expects at least 1");
	text_fails("graph @g(%x: f32[2]) {\n  %a, %b = Relu(%x) : ?, ? @\"r2\"\n  return %a\n}\n",
	           "node 'r2' (Relu): has 2 outputs, expects 1");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Add(%x, _) : f32[2] @\"a\"\n  return %y\n}\n",
	           "required input 1 is absent");
	/* optional inputs may be absent; variadic takes many */
	Graph *g = parse_ok("graph @g(%x: f32[2]) {\n  %y = Clip(%x, _, _) : f32[2] @\"clip\"\n"
	                    "  %z = Sum(%y, %y, %y, %y, %y) : f32[2]\n  return %z\n}\n");
	verify_ok(g);
	ir_graph_free(g);
}

static void test_bool_mismatch(void **state)
{
	(void)state;
	text_fails("graph @g(%x: f32[2]) {\n  %y = Less(%x, %x) : f32[2] @\"lt\"\n  return %y\n}\n",
	           "node 'lt' (Less): output 0 'y' is f32, expected bool");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Not(%x) : bool[2] @\"not\"\n  return %y\n}\n",
	           "node 'not' (Not): input 0 'x' is f32, expected bool");
	text_fails("graph @g(%x: f32[2], %b: bool[2]) {\n  %y = And(%b, %x) : bool[2] @\"and\"\n  return %y\n}\n",
	           "input 1 'x' is f32, expected bool");
	text_fails("graph @g(%x: f32[2], %c: i64[2]) {\n  %y = Where(%c, %x, %x) : f32[2] @\"w\"\n  return %y\n}\n",
	           "node 'w' (Where): input 0 'c' is i64, expected bool");
	text_fails("graph @g(%x: f32[2], %c: i64[2]) {\n  %y = Add(%x, %c) : f32[2] @\"mix\"\n  return %y\n}\n",
	           "input 0 'x' is f32 but input 1 'c' is i64");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Mul(%x, %x) : i32[2] @\"m\"\n  return %y\n}\n",
	           "output is i32 but the inputs are f32");
	/* Pow may mix base and exponent types */
	Graph *g = parse_ok("graph @g(%x: f32[2], %e: i64[]) {\n  %y = Pow(%x, %e) : f32[2]\n  return %y\n}\n");
	verify_ok(g);
	ir_graph_free(g);
}

static void test_use_before_def(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("ubd");
	DimId d2 = ir_dim_const(g, 2);
	ValId x = ir_input_new(g, "x", DT_F32, 1, &d2);
	NodeId a = ir_node_new(g, OP_Relu, "first", 1, &x, 1, NULL);
	ValId ao = IR_NODE(g, a)->out[0];
	NodeId b = ir_node_new(g, OP_Neg, "second", 1, &ao, 1, NULL);
	g->outputs = ir_arena_alloc(g->arena, sizeof(ValId), 4);
	g->outputs[0] = IR_NODE(g, b)->out[0];
	g->noutputs = 1;
	verify_ok(g);
	/* swap the order: the use comes first */
	g->order[0] = b;
	g->order[1] = a;
	verify_fails(g, "node 'second' (Neg): input 0 'first:0' is not defined before use");
	/* toposort repairs it */
	ir_toposort(g);
	assert_int_equal(g->order[0], a);
	verify_ok(g);
	/* an input produced by an erased node */
	ir_node_erase(g, a);
	verify_fails(g, "node 'second' (Neg): input 0 'first:0' is produced by an erased node");
	ir_graph_free(g);

	/* a node that is live but missing from the order, and a duplicate */
	g = ir_graph_new("o");
	d2 = ir_dim_const(g, 2);    /* dims belong to their graph */
	x = ir_input_new(g, "x", DT_F32, 1, &d2);
	a = ir_node_new(g, OP_Relu, "r", 1, &x, 1, NULL);
	g->norder = 0;
	verify_fails(g, "node 'r' (Relu): is live but not in the node order");
	g->order[0] = a;
	g->norder = 1;
	verify_ok(g);
	ir_graph_free(g);
}

static void test_shapes(void **state)
{
	(void)state;
	text_fails("graph @g(%x: f32[2, 3], %y: f32[4]) {\n  %z = Add(%x, %y) : ? @\"bc\"\n  return %z\n}\n",
	           "node 'bc' (Add): inputs 0 'x' and 1 'y' do not broadcast: dim 3 vs 4 (axis -1)");
	text_fails("graph @g(%c: bool[5], %x: f32[2, 1], %y: f32[3]) {\n"
	           "  %z = Where(%c, %x, %y) : ? @\"wb\"\n  return %z\n}\n",
	           "inputs 0 'c' and 2 'y' do not broadcast: dim 5 vs 3");
	text_fails("graph @g(%x: f32[b, 3], %y: f32[4, 5]) {\n  %z = MatMul(%x, %y) : ? @\"mm\"\n  return %z\n}\n",
	           "node 'mm' (MatMul): inner dims differ: 'x' has 3, 'y' has 4");
	/* symbolic or 1 dims are not errors */
	Graph *g = parse_ok("graph @g(%x: f32[b, 1, 3], %y: f32[s, 1], %w: f32[k, 7]) {\n"
	                    "  %z = Add(%x, %y) : ? @\"ok\"\n"
	                    "  %m = MatMul(%x, %w) : ?\n  return %z, %m\n}\n");
	verify_ok(g);
	ir_graph_free(g);
}

static void test_bookkeeping(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("bk");
	DimId d2 = ir_dim_const(g, 2);
	ValId x = ir_input_new(g, "x", DT_F32, 1, &d2);
	NodeId a = ir_node_new(g, OP_Relu, "r", 1, &x, 1, NULL);
	verify_ok(g);
	/* bypassing ir_set_input leaves the use lists stale */
	ValId y = ir_input_new(g, "y", DT_F32, 1, &d2);
	IR_NODE(g, a)->in[0] = y;
	verify_fails(g, "use list out of sync");
	IR_NODE(g, a)->in[0] = x;
	verify_ok(g);
	/* duplicate value names */
	NodeId b = ir_node_new(g, OP_Relu, "r2", 1, &x, 1, (const char *[]){ "x" });
	(void)b;
	verify_fails(g, "value name 'x' is defined twice");
	ir_graph_free(g);
}


/* One node `%y = OP(%x...) {ATTRS} : TYPE` over inputs of type XTYPE. */
static void node_fails(const char *xtype, const char *call, const char *ytype, const char *want)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "graph @g(%%x: %s, %%z: %s) {\n  %%y = %s : %s @\"n1\"\n  return %%y\n}\n",
	         xtype, xtype, call, ytype);
	text_fails(buf, want);
}

static void node_ok(const char *xtype, const char *call, const char *ytype)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "graph @g(%%x: %s, %%z: %s) {\n  %%y = %s : %s @\"n1\"\n  return %%y\n}\n",
	         xtype, xtype, call, ytype);
	Graph *g = parse_ok(buf);
	verify_ok(g);
	ir_graph_free(g);
}

static void test_schema_attrs(void **state)
{
	(void)state;
	/* unknown attributes */
	node_fails("f32[2]", "Relu(%x) {bogus = 5}", "f32[2]",
	           "node 'n1' (Relu): unknown attribute 'bogus'");
	node_fails("f32[2, 3]", "Softmax(%x) {axis = -1, beta = 2.0}", "f32[2, 3]",
	           "node 'n1' (Softmax): unknown attribute 'beta'");
	/* wrong kinds */
	node_fails("f32[2, 3]", "Softmax(%x) {axis = \"abc\"}", "f32[2, 3]",
	           "node 'n1' (Softmax): attribute 'axis' is of type string, must be int");
	node_fails("f32[2, 3]", "Transpose(%x) {perm = [1.5, 0.2]}", "f32[3, 2]",
	           "node 'n1' (Transpose): attribute 'perm' is of type floats, must be ints");
	node_fails("f32[2]", "LeakyRelu(%x) {alpha = \"x\"}", "f32[2]",
	           "attribute 'alpha' is of type string, must be float");
	/* values kiln does not implement */
	node_fails("f32[2]", "Gelu(%x) {approximate = \"fast\"}", "f32[2]",
	           "node 'n1' (Gelu): attribute 'approximate' is \"fast\"; kiln implements none|tanh");
	node_fails("f32[2, 3]", "Gemm(%x, %z) {transB = 2}", "f32[2, 2]",
	           "node 'n1' (Gemm): attribute 'transB' is 2; kiln implements 0 to 1");
	node_fails("f32[2, 3]", "LayerNormalization(%x, %z) {stash_type = 11}", "f32[2, 3]",
	           "attribute 'stash_type' is 11; kiln implements only 1");
	node_fails("f32[2]", "Cast(%x) {to = 8}", "string[2]", "attribute 'to' is 8, not a dtype kiln has");
	node_fails("f32[2]", "Mod(%x, %z) {fmod = 3}", "f32[2]", "attribute 'fmod' is 3");
	/* required ones */
	node_fails("f32[2]", "Cast(%x)", "i64[2]", "node 'n1' (Cast): required attribute 'to' is missing");
	node_fails("f32[2]", "Concat(%x, %z)", "f32[4]", "node 'n1' (Concat): required attribute 'axis' is missing");
	node_fails("f32[2, 4]", "KlnAttention(%x, %x, %x) {num_heads = 2, head_size = 2, scale = 0.5, "
	           "mask_filter = 0.0}", "f32[2, 4]", "required attribute 'v_head_size' is missing");
	/* fine: defaults, legacy forms, every attribute of the op */
	node_ok("f32[2, 3]", "Softmax(%x)", "f32[2, 3]");
	node_ok("f32[2, 3]", "ReduceSum(%x) {axes = [1], keepdims = 0}", "f32[2]");
	node_ok("f32[2]", "Cast(%x) {to = 7, saturate = 1}", "i64[2]");
	node_ok("f32[2, 3]", "Gemm(%x, %z) {alpha = 2.0, beta = 0.5, transA = 0, transB = 1}", "f32[2, 2]");
	node_ok("f32[2]", "Gelu(%x) {approximate = \"tanh\"}", "f32[2]");
	node_ok("f32[2]", "Dropout(%x) {seed = 3, ratio = 0.1}", "f32[2]");
}

/* The printer's golden files hold what no op allows; the verifier says so. */
static void golden_fails(const char *name, const char *want)
{
	char *text = golden(name);
	text_fails(text, want);
	free(text);
}

static void test_schema_goldens(void **state)
{
	(void)state;
	golden_fails("attrs", "node 'cs' (ConstantOfShape): input 0 'ln' (input) is f32");
	golden_fails("consts", "node 'cat' (Concat): input 1 'bf' is bf16 but input 0 'f16' is f16");
	golden_fails("canon", "node #1 (Mul): unknown attribute 'alpha'");
}

static void test_schema_dtypes(void **state)
{
	(void)state;
	node_fails("f16[2]", "Sqrt(%x)", "f16[2]",
	           "node 'n1' (Sqrt): input 0 'x' (X) is f16; kiln's Sqrt runs on f32|f64");
	node_fails("f16[2, 2]", "MatMul(%x, %z)", "f16[2, 2]",
	           "node 'n1' (MatMul): input 0 'x' (A) is f16; kiln's MatMul runs on f32|f64|i32|i64");
	node_fails("bf16[2]", "Add(%x, %z)", "bf16[2]", "input 0 'x' (A) is bf16");
	node_fails("f64[2, 3]", "LayerNormalization(%x, %z)", "f64[2, 3]", "input 0 'x' (X) is f64");
	node_fails("f32[2]", "Cast(%x) {to = 7}", "string[2]", "output 0 'y' (output) is string");
	node_fails("f32[2]", "IsNaN(%x)", "f32[2]", "output 0 'y' (Y) is f32; kiln's IsNaN runs on bool");
	/* one type variable, two dtypes */
	text_fails("graph @g(%x: f32[2], %i: i64[2]) {\n  %y = Clip(%x, %i, _) : f32[2] @\"c\"\n"
	           "  return %y\n}\n", "node 'c' (Clip): input 1 'i' is i64 but input 0 'x' is f32");
	/* what kernels do run on */
	node_ok("i32[2, 2]", "MatMul(%x, %z)", "i32[2, 2]");
	node_ok("f16[2]", "Add(%x, %z)", "f16[2]");
	node_ok("bf16[2, 3]", "Transpose(%x)", "bf16[3, 2]");
	node_ok("f64[2]", "Sqrt(%x)", "f64[2]");
	node_ok("u8[2]", "Cast(%x) {to = 16}", "bf16[2]");
	text_fails("graph @g(%x: f32[2], %i: i32[2]) {\n  %y = Gather(%x, %i) : f32[2] @\"g\"\n"
	           "  %s = Shape(%x) : i32[1] @\"sh\"\n  return %y\n}\n",
	           "node 'sh' (Shape): output 0 's' (shape) is i32; kiln's Shape runs on i64");
}

static void test_schema_dropout(void **state)
{
	(void)state;
	const char *fmt = "graph @g(%%x: f32[2]%s) {\n%s  %%y = Dropout(%%x, _, %s) : f32[2] @\"drop\"\n"
	                  "  return %%y\n}\n";
	char buf[512];
	snprintf(buf, sizeof buf, fmt, "", "  %t = const bool[] dense<[true]>\n", "%t");
	text_fails(buf, "node 'drop' (Dropout): input 2 't' (training_mode) must be absent or a constant false");
	snprintf(buf, sizeof buf, fmt, ", %t: bool[]", "", "%t");
	text_fails(buf, "input 2 't' (training_mode) must be absent or a constant false");
	snprintf(buf, sizeof buf, fmt, "", "  %t = const bool[] dense<[false]>\n", "%t");
	Graph *g = parse_ok(buf);
	verify_ok(g);
	ir_graph_free(g);
	snprintf(buf, sizeof buf, fmt, "", "", "_");
	g = parse_ok(buf);
	verify_ok(g);
	ir_graph_free(g);
	/* training with a constant ratio of 0 drops nothing: allowed */
	const char *zero = "graph @g(%x: f32[2]) {\n  %r = const f32[] dense<[0.0]>\n"
	                   "  %t = const bool[] dense<[true]>\n"
	                   "  %y, %m = Dropout(%x, %r, %t) : f32[2], bool[2] @\"drop\"\n  return %y, %m\n}\n";
	g = parse_ok(zero);
	verify_ok(g);
	ir_graph_free(g);
	char nz[512];
	snprintf(nz, sizeof nz, "%s", zero);
	char *p = strstr(nz, "[0.0]");
	assert_non_null(p);
	memcpy(p, "[0.5]", 5);
	text_fails(nz, "node 'drop' (Dropout): input 2 't' (training_mode) must be absent");
}

/* Every op of ops.def has a schema whose arity is the op info's, and the
 * table is consistent (ir_schema_check); fused ops' attributes have
 * runtime slots. */
static void test_schema_table(void **state)
{
	(void)state;
	Diag d = { 0 };
	if (ir_schema_check(&d))
		fail_msg("%s", d.msg);
	for (int op = 0; op < OP_COUNT; op++) {
		const IrOpSchema *s = ir_schema((Op)op);
		const OpInfo *oi = &ir_opinfo[op];
		assert_non_null(s);
		if (!s->name || strcmp(s->name, oi->name))
			fail_msg("op %s has no schema", oi->name);
		int req = 0, var = 0;
		for (int i = 0; i < s->nin; i++) {
			req += s->in[i].kind == IO_REQ || s->in[i].kind == IO_VAR;
			var += s->in[i].kind == IO_VAR;
		}
		assert_int_equal(req, oi->min_in);
		assert_int_equal(var ? -1 : s->nin, oi->max_in);
		for (int i = 0; i < s->nattrs; i++)
			assert_ptr_equal(ir_schema_attr((Op)op, s->attrs[i].name), &s->attrs[i]);
	}
	assert_null(ir_schema(OP_COUNT));
	assert_null(ir_schema_attr(OP_Relu, "alpha"));
	assert_non_null(ir_schema_attr(OP_LeakyRelu, "alpha"));
	bool isf = false;
	assert_true(ir_fused_slot(OP_KlnAttention, "scale", &isf) >= 0);
	assert_true(isf);
	assert_int_equal(ir_fused_slot(OP_KlnAttention, "bogus", &isf), -1);
	assert_int_equal(ir_fused_slot(OP_Gemm, "alpha", &isf), -1);
	char buf[128];
	ir_typeset_str(TS_FLT, buf, sizeof buf);
	assert_string_equal(buf, "f32|f64");
	ir_typeset_str(0, buf, sizeof buf);
	assert_string_equal(buf, "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_undefined_input),
		cmocka_unit_test(test_arity),
		cmocka_unit_test(test_bool_mismatch),
		cmocka_unit_test(test_use_before_def),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_bookkeeping),
		cmocka_unit_test(test_schema_attrs),
		cmocka_unit_test(test_schema_dtypes),
		cmocka_unit_test(test_schema_goldens),
		cmocka_unit_test(test_schema_dropout),
		cmocka_unit_test(test_schema_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
