/* --explain=attention: for every Softmax, "fused" or the first condition
 * that failed, naming the node (PassOptions.explain, printed by fuse_run
 * from the reasons fuse_attention.c records with m_fail).  Graphs: a
 * deliberately broken K head split, head splits by shapes that are graph
 * inputs, the causal near misses of
 * tests/passes, and the causal forms that fuse (GPT-2's causal buffer and
 * its near miss too). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir.h"
#include "passes.h"

static const char *broken_split =
	"graph @att(%q: f32[batch, seq, 4], %k: f32[batch, seq, kw], %v: f32[batch, seq, 4])"
	" opset 14 {\n"
	"  %split = const i64[4] dense<[0, 0, 2, 2]>\n"
	"  %merge = const i64[3] dense<[0, 0, 4]>\n"
	"  %half = const f32[] dense<[0.5]>\n"
	"  %qr = Reshape(%q, %split)\n"
	"  %qt = Transpose(%qr) {perm = [0, 2, 1, 3]}\n"
	"  %ksplit = const i64[4] dense<[0, 0, 2, -1]>\n"
	"  %kr = Reshape(%k, %ksplit)\n"
	"  %kt = Transpose(%kr) {perm = [0, 2, 3, 1]}\n"
	"  %vr = Reshape(%v, %split)\n"
	"  %vt = Transpose(%vr) {perm = [0, 2, 1, 3]}\n"
	"  %s = MatMul(%qt, %kt)\n"
	"  %ss = Mul(%s, %half)\n"
	"  %p = Softmax(%ss) {axis = -1}\n"
	"  %c = MatMul(%p, %vt)\n"
	"  %ct = Transpose(%c) {perm = [0, 2, 1, 3]}\n"
	"  %y = Reshape(%ct, %merge)\n"
	"  return %y\n"
	"}\n";

/* experimental-experiment's attention_pattern_1_std in small: the head
 * splits' shapes are graph inputs (the head count unknown), and the mask
 * condition has a batch of its own, which the matcher meets first. */
static const char *shape_inputs =
	"graph @att(%x: f32[batch, seq, 4], %qs: i64[4], %ks: i64[4], %vs: i64[4],"
	" %c: bool[mb, 1, seq, seq]) opset 18 {\n"
	"  %qr = Reshape(%x, %qs)\n"
	"  %qt = Transpose(%qr) {perm = [0, 2, 1, 3]}\n"
	"  %kr = Reshape(%x, %ks)\n"
	"  %kt = Transpose(%kr) {perm = [0, 2, 3, 1]}\n"
	"  %vr = Reshape(%x, %vs)\n"
	"  %vt = Transpose(%vr) {perm = [0, 2, 1, 3]}\n"
	"  %s = MatMul(%qt, %kt)\n"
	"  %eighth = const f32[] dense<[0.125]>\n"
	"  %ss = Mul(%s, %eighth)\n"
	"  %fill = const f32[] dense<[-3.0e38]>\n"
	"  %w = Where(%c, %fill, %ss)\n"
	"  %p = Softmax(%w) {axis = -1}\n"
	"  %o = MatMul(%p, %vt)\n"
	"  %ot = Transpose(%o) {perm = [0, 2, 1, 3]}\n"
	"  %merge = const i64[3] dense<[0, 0, 4]>\n"
	"  %y = Reshape(%ot, %merge)\n"
	"  return %y\n"
	"}\n";

/* Runs fuse-attention with --explain=attention on text; returns what it
 * printed (malloc'd). */
static char *explain(const char *text, const char *path)
{
	Diag d = {0};
	Graph *g = ir_parse(text, path, &d);
	if (!g || ir_infer_shapes(g, &d))
		fail_msg("%s: %s", path, d.msg);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	PassOptions o = {.passes = "fuse-attention,dce", .explain = "attention", .dump = f};
	if (pass_run_pipeline(g, &o, NULL, &d))
		fail_msg("%s: %s", path, d.msg);
	fclose(f);
	ir_graph_free(g);
	printf("%s", buf);
	return buf;
}

static char *read_case(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/passes/%s", KILN_SOURCE_DIR, name);
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static char text[65536];
	size_t n = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[n] = 0;
	return explain(text, path);
}

static void expect(const char *out, const char *want)
{
	if (!strstr(out, want))
		fail_msg("expected '%s' in:\n%s", want, out);
}

static void test_broken_head_split(void **state)
{
	(void)state;
	char *out = explain(broken_split, "broken_split");
	expect(out, "explain attention: Softmax '");
	expect(out, "not fused: at Reshape '");
	expect(out, "K path: Reshape 'kr' is not a head split: the heads or head size (dims 2, 3) "
	            "are not static");
	free(out);
}

/* The head splits' shapes are graph inputs: the reason is the unknown head
 * count (the Q split, named), not the mask the matcher met first. */
static void test_head_split_shape_input(void **state)
{
	(void)state;
	char *out = explain(shape_inputs, "shape_inputs");
	expect(out, "not fused: at Reshape '");
	expect(out, "Q path: the head split's shape 'qs' is not a constant: the head count is "
	            "unknown at compile time");
	if (strstr(out, "batch of its own") || strstr(out, "at Where"))
		fail_msg("the reason blames the mask:\n%s", out);
	free(out);
}

/* Heads-first inputs with symbolic heads and head size: the reason names
 * them; K/V repeated differently: the reason names both mappings */
static void test_head_layout_near_misses(void **state)
{
	(void)state;
	char *out = read_case("attention_symbolic_heads_nearmiss.ir");
	expect(out, "not fused: at MatMul '");
	expect(out, "Q path: 'query' [B, H, S, D]: heads 'bq' and head size 'dq' are symbolic, fixed "
	            "by no head split or weight");
	free(out);
	out = read_case("attention_gqa_tile_nearmiss.ir");
	expect(out, "K's 2 heads are repeated as a whole (tiled), V's head "
	            "by head: Q head h would read K head h % kv but V head h / rep");
	free(out);
}

static void test_causal_near_misses(void **state)
{
	(void)state;
	char *out = read_case("attention_causal_nearmiss_where.ir");
	expect(out, "not fused: at Where '");
	expect(out, "Where around the scores: the condition keeps k - q <= 1, not the causal k <= q");
	expect(out, "Where around the scores: the condition keeps k - q <= 0 negated, not the "
	            "causal k <= q");
	free(out);
}

static void test_causal_forms_fuse(void **state)
{
	(void)state;
	const char *names[] = {"attention_causal_where.ir", "attention_causal_additive.ir",
	                       "attention_causal_trilu.ir", "attention_causal_nearmiss_trilu.ir"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *out = read_case(names[i]);
		expect(out, "explain attention: Softmax '");
		expect(out, "': fused as KlnAttention '");
		if (strstr(out, "not fused"))
			fail_msg("%s: not fused", names[i]);
		free(out);
	}
}

/* GPT-2's sliced causal buffer: fused (the first new node is the
 * Transpose of the heads-first K), and the near miss with one entry above
 * the diagonal names the Where and the failing check. */
static void test_causal_buffer(void **state)
{
	(void)state;
	char *out = read_case("attention_causal_buffer.ir");
	expect(out, "': fused as ");
	if (strstr(out, "not fused"))
		fail_msg("attention_causal_buffer.ir: not fused");
	free(out);
	out = read_case("attention_causal_buffer_nearmiss.ir");
	expect(out, "not fused: at Where '");
	expect(out, "Where around the scores: the condition is not a causal mask: the sliced buffer "
	            "is not a band (lower-triangular): an entry differs");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_broken_head_split),
		cmocka_unit_test(test_head_split_shape_input),
		cmocka_unit_test(test_head_layout_near_misses),
		cmocka_unit_test(test_causal_near_misses),
		cmocka_unit_test(test_causal_forms_fuse),
		cmocka_unit_test(test_causal_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
