/* ir_index_bound (ir/index_bound.c): the rows of the table an integer
 * value indexes -- Gather on axis 0, the three id inputs of
 * KlnEmbedLayerNorm, through Casts and no-op views up to four deep, the
 * smallest table over all uses -- and 0 where no table is known (another
 * axis, the value as Gather's data, a table with a symbolic first dim,
 * views nested too deep, no use at all). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* The graph of text (parsed, shapes inferred) */
static Graph *graph(const char *text)
{
	Diag d = {0};
	Graph *g = ir_parse(text, "index_bound.ir", &d);
	if (!g)
		fail_msg("parse: %s\n%s", d.msg, text);
	if (ir_infer_shapes(g, &d))
		fail_msg("shapes: %s\n%s", d.msg, text);
	return g;
}

/* ir_index_bound of the graph input named name */
static int64_t bound_of(const Graph *g, const char *name)
{
	ValId v = ir_value_find(g, name);
	assert_true(v >= 0);
	return ir_index_bound(g, v);
}

static void test_gather(void **state)
{
	(void)state;
	Graph *g = graph(
		"graph @g(%ids: i64[batch, seq], %j: i64[3], %k: i32[3], %x: i64[4, 2], %w: f32[v, 2]) opset 17 {\n"
		"  %t = const f32[8, 2] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]>\n"
		"  %u = const f32[5, 2] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]>\n"
		"  %i = const i64[2] dense<[0, 1]>\n"
		"  %a = Gather(%t, %ids) {axis = 0}\n"
		"  %b = Gather(%t, %j) {axis = 0}\n"
		"  %c = Gather(%u, %j) {axis = 0}\n"
		"  %d = Gather(%t, %k) {axis = 1}\n"
		"  %e = Gather(%x, %i) {axis = 0}\n"
		"  %f = Gather(%w, %j) {axis = 0}\n"
		"  return %a, %b, %c, %d, %e, %f\n"
		"}\n");
	assert_int_equal(bound_of(g, "ids"), 8);
	assert_int_equal(bound_of(g, "j"), 5);     /* the smaller table of two */
	assert_int_equal(bound_of(g, "k"), 0);     /* axis 1 indexes columns */
	assert_int_equal(bound_of(g, "x"), 0);     /* the table, not the ids */
	assert_int_equal(bound_of(g, "i"), 4);     /* a constant index: x has 4 rows */
	assert_int_equal(bound_of(g, "w"), 0);
	ir_graph_free(g);
}

/* through a Cast and reshapes; a symbolic table first dim is no bound */
static void test_views(void **state)
{
	(void)state;
	Graph *g = graph(
		"graph @g(%ids: i64[2, 3], %w: f32[v, 2], %vi: i64[6]) opset 17 {\n"
		"  %t = const f32[7, 2] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]>\n"
		"  %s = const i64[1] dense<[6]>\n"
		"  %a0 = const i64[1] dense<[0]>\n"
		"  %c = Cast(%ids) {to = 6}\n"
		"  %r = Reshape(%c, %s)\n"
		"  %q = Unsqueeze(%r, %a0)\n"
		"  %y = Gather(%t, %q) {axis = 0}\n"
		"  %z = Gather(%w, %vi) {axis = 0}\n"
		"  return %y, %z\n"
		"}\n");
	assert_int_equal(bound_of(g, "ids"), 7);
	assert_int_equal(bound_of(g, "c"), 7);
	assert_int_equal(bound_of(g, "s"), 0);     /* Reshape's shape input is no id */
	assert_int_equal(bound_of(g, "vi"), 0);
	ir_graph_free(g);
}

/* four views are followed, a fifth is not */
static void test_depth(void **state)
{
	(void)state;
	Graph *g = graph(
		"graph @g(%ids: i64[3], %far: i64[3]) opset 17 {\n"
		"  %t = const f32[9, 1] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]>\n"
		"  %a1 = Identity(%ids)\n"
		"  %a2 = Identity(%a1)\n"
		"  %a3 = Identity(%a2)\n"
		"  %a4 = Identity(%a3)\n"
		"  %y = Gather(%t, %a4) {axis = 0}\n"
		"  %b1 = Identity(%far)\n"
		"  %b2 = Identity(%b1)\n"
		"  %b3 = Identity(%b2)\n"
		"  %b4 = Identity(%b3)\n"
		"  %b5 = Identity(%b4)\n"
		"  %z = Gather(%t, %b5) {axis = 0}\n"
		"  return %y, %z\n"
		"}\n");
	assert_int_equal(bound_of(g, "ids"), 9);
	assert_int_equal(bound_of(g, "far"), 0);
	assert_int_equal(bound_of(g, "b1"), 9);
	ir_graph_free(g);
}

/* KlnEmbedLayerNorm(ids, word, gamma, beta, token types, their table,
 * position ids, position table): each id input bounded by its own table */
static void test_embed_layernorm(void **state)
{
	(void)state;
	Graph *g = graph(
		"graph @g(%ids: i64[b, s], %tt: i64[b, s], %pos_ids: i64[1, s]) opset 17 {\n"
		"  %word = const f32[8, 2] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0]>\n"
		"  %ttab = const f32[2, 2] dense<[0.1, 0.2, 0.3, 0.4]>\n"
		"  %pos = const f32[4, 2] dense<[0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]>\n"
		"  %gamma = const f32[2] dense<[1.0, 2.0]>\n"
		"  %beta = const f32[2] dense<[0.0, 1.0]>\n"
		"  %y = KlnEmbedLayerNorm(%ids, %word, %gamma, %beta, %tt, %ttab, %pos_ids, %pos) {epsilon = 1e-12}\n"
		"  return %y\n"
		"}\n");
	assert_int_equal(bound_of(g, "ids"), 8);
	assert_int_equal(bound_of(g, "tt"), 2);
	assert_int_equal(bound_of(g, "pos_ids"), 4);
	assert_int_equal(bound_of(g, "gamma"), 0);
	ir_graph_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gather),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_embed_layernorm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
