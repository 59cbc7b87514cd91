/* ir_verify: accepts well-formed graphs (golden texts included) and
 * refuses, with a message naming the node, undefined inputs, wrong arity,
 * bool/non-bool mismatches, use before definition, broadcast and MatMul
 * shape errors, and broken bookkeeping. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static Graph *parse_ok(const char *text)
{
	Diag d = { 0 };
	Graph *g = ir_parse(text, "v.kir", &d);
	if (!g)
		fail_msg("parse failed: %s\n%s", d.msg, text);
	return g;
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
	const char *names[] = { "basic", "attrs", "consts", "canon" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/tests/golden/%s.kir", KILN_SOURCE_DIR, names[i]);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		static char buf[1 << 16];
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		buf[n] = 0;
		fclose(f);
		Graph *g = parse_ok(buf);
		verify_ok(g);
		ir_graph_free(g);
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
	verify_fails(g, "node '/encoder/Add_3' (Add): input 1 '%stray' is not defined before use");
	/* an input value that is not among the graph inputs */
	ValId fake = ir_value_new(g, "fake", V_INPUT, DT_F32);
	ir_set_input(g, n, 1, fake);
	verify_fails(g, "input 1 '%fake' is not a graph input");
	ir_set_input(g, n, 1, x);
	verify_ok(g);
	/* graph output never defined */
	g->outputs[0] = stray;
	verify_fails(g, "graph output 0 '%stray' is not defined");
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
	           "node 'lt' (Less): output 0 '%y' is f32, expected bool");
	text_fails("graph @g(%x: f32[2]) {\n  %y = Not(%x) : bool[2] @\"not\"\n  return %y\n}\n",
	           "node 'not' (Not): input 0 '%x' is f32, expected bool");
	text_fails("graph @g(%x: f32[2], %b: bool[2]) {\n  %y = And(%b, %x) : bool[2] @\"and\"\n  return %y\n}\n",
	           "input 1 '%x' is f32, expected bool");
	text_fails("graph @g(%x: f32[2], %c: i64[2]) {\n  %y = Where(%c, %x, %x) : f32[2] @\"w\"\n  return %y\n}\n",
	           "node 'w' (Where): input 0 '%c' is i64, expected bool");
	text_fails("graph @g(%x: f32[2], %c: i64[2]) {\n  %y = Add(%x, %c) : f32[2] @\"mix\"\n  return %y\n}\n",
	           "input 0 '%x' is f32 but input 1 '%c' is i64");
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
	verify_fails(g, "node 'second' (Neg): input 0 '%first:0' is not defined before use");
	/* toposort repairs it */
	ir_toposort(g);
	assert_int_equal(g->order[0], a);
	verify_ok(g);
	/* an input produced by an erased node */
	ir_node_erase(g, a);
	verify_fails(g, "node 'second' (Neg): input 0 '%first:0' is produced by an erased node");
	ir_graph_free(g);

	/* a node that is live but missing from the order, and a duplicate */
	g = ir_graph_new("o");
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
	           "node 'bc' (Add): inputs 0 '%x' and 1 '%y' do not broadcast: dim 3 vs 4 (axis -1)");
	text_fails("graph @g(%c: bool[5], %x: f32[2, 1], %y: f32[3]) {\n"
	           "  %z = Where(%c, %x, %y) : ? @\"wb\"\n  return %z\n}\n",
	           "inputs 0 '%c' and 2 '%y' do not broadcast: dim 5 vs 3");
	text_fails("graph @g(%x: f32[b, 3], %y: f32[4, 5]) {\n  %z = MatMul(%x, %y) : ? @\"mm\"\n  return %z\n}\n",
	           "node 'mm' (MatMul): inner dims differ: '%x' has 3, '%y' has 4");
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
	verify_fails(g, "value name '%x' is defined twice");
	ir_graph_free(g);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
