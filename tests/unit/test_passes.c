/* The pass manager: pipelines per -O level, --passes, unknown names,
 * --disable-pattern, --print-before/--print-after/--print-after-all (to a
 * FILE), statistics, pass_list; fusion on a small BERT-like layer built in
 * text IR, with and without patterns disabled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ir.h"
#include "passes.h"

/* One encoder layer: attention (with the legacy padding bias), output
 * projection, residual + LayerNorm (decomposed), FFN with erf GELU,
 * residual + LayerNormalization. */
static const char *layer =
	"graph @layer(%x: f32[batch, seq, 4], %mask: i64[batch, seq]) opset 14 {\n"
	"  %w = const f32[4, 4] dense<[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6]>\n"
	"  %b = const f32[4] dense<[0.1, -0.1, 0.2, -0.2]>\n"
	"  %g = const f32[4] dense<[1.0, 1.0, 1.0, 1.0]>\n"
	"  %split = const i64[4] dense<[0, 0, 2, 2]>\n"
	"  %merge = const i64[3] dense<[0, 0, 4]>\n"
	"  %half = const f32[] dense<[0.5]>\n"
	"  %one = const f32[] dense<[1.0]>\n"
	"  %two = const f32[] dense<[2.0]>\n"
	"  %sq2 = const f32[] dense<[1.41421354]>\n"
	"  %eps = const f32[] dense<[1e-12]>\n"
	"  %big = const f32[] dense<[-10000.0]>\n"
	"  %a1 = const i64[1] dense<[1]>\n"
	"  %a2 = const i64[1] dense<[2]>\n"
	"  %m1 = Unsqueeze(%mask, %a1)\n"
	"  %m2 = Unsqueeze(%m1, %a2)\n"
	"  %mf = Cast(%m2) {to = 1}\n"
	"  %inv = Sub(%one, %mf)\n"
	"  %bias = Mul(%inv, %big)\n"
	"  %qm = MatMul(%x, %w)\n"
	"  %q = Add(%b, %qm)\n"
	"  %km = MatMul(%x, %w)\n"
	"  %k = Add(%b, %km)\n"
	"  %vm = MatMul(%x, %w)\n"
	"  %v = Add(%b, %vm)\n"
	"  %qr = Reshape(%q, %split)\n"
	"  %qt = Transpose(%qr) {perm = [0, 2, 1, 3]}\n"
	"  %kr = Reshape(%k, %split)\n"
	"  %kt = Transpose(%kr) {perm = [0, 2, 3, 1]}\n"
	"  %vr = Reshape(%v, %split)\n"
	"  %vt = Transpose(%vr) {perm = [0, 2, 1, 3]}\n"
	"  %s = MatMul(%qt, %kt)\n"
	"  %ss = Div(%s, %two)\n"
	"  %sb = Add(%ss, %bias)\n"
	"  %p = Softmax(%sb) {axis = -1}\n"
	"  %c = MatMul(%p, %vt)\n"
	"  %ct = Transpose(%c) {perm = [0, 2, 1, 3]}\n"
	"  %ctx = Reshape(%ct, %merge)\n"
	"  %om = MatMul(%ctx, %w)\n"
	"  %o = Add(%om, %b)\n"
	"  %r = Add(%o, %x)\n"
	"  %mu = ReduceMean(%r) {axes = [-1]}\n"
	"  %d = Sub(%r, %mu)\n"
	"  %d2 = Pow(%d, %two)\n"
	"  %var = ReduceMean(%d2) {axes = [-1]}\n"
	"  %ve = Add(%var, %eps)\n"
	"  %sd = Sqrt(%ve)\n"
	"  %nrm = Div(%d, %sd)\n"
	"  %sc = Mul(%nrm, %g)\n"
	"  %h = Add(%sc, %b)\n"
	"  %fm = MatMul(%h, %w)\n"
	"  %f = Add(%fm, %b)\n"
	"  %fd = Div(%f, %sq2)\n"
	"  %fe = Erf(%fd)\n"
	"  %fa = Add(%fe, %one)\n"
	"  %fx = Mul(%f, %fa)\n"
	"  %gl = Mul(%fx, %half)\n"
	"  %f2m = MatMul(%gl, %w)\n"
	"  %f2 = Add(%f2m, %b)\n"
	"  %r2 = Add(%f2, %h)\n"
	"  %y = LayerNormalization(%r2, %g, %b) {axis = -1, epsilon = 1e-12}\n"
	"  return %y\n"
	"}\n";

static Graph *load(void)
{
	Diag d = {0};
	Graph *g = ir_parse(layer, "layer.ir", &d);
	if (!g || ir_infer_shapes(g, &d) || ir_verify(g, &d))
		fail_msg("%s", d.msg);
	return g;
}

static int count_op(const Graph *g, Op op)
{
	int n = 0;
	for (int32_t i = 0; i < g->norder; i++)
		n += !IR_NODE(g, g->order[i])->dead && IR_NODE(g, g->order[i])->op == op;
	return n;
}

static int fusions(const PassStats *s, const char *name)
{
	for (int i = 0; i < s->nfusions; i++)
		if (!strcmp(s->fusion_name[i], name))
			return s->fusion_count[i];
	return 0;
}

static void test_o2_fuses_layer(void **state)
{
	(void)state;
	Graph *g = load();
	PassOptions o = {.opt_level = 2, .verify_each = true};
	PassStats st = {0};
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, &o, &st, &d), 0);
	assert_int_equal(count_op(g, OP_KlnAttention), 1);
	assert_int_equal(count_op(g, OP_KlnSkipLayerNorm), 2);
	assert_int_equal(count_op(g, OP_Softmax), 0);
	assert_int_equal(count_op(g, OP_ReduceMean), 0);
	assert_int_equal(count_op(g, OP_Erf), 0);
	assert_int_equal(count_op(g, OP_MatMul), 0);
	assert_int_equal(count_op(g, OP_LayerNormalization), 0);
	/* Q, K and V had the same weights: CSE made them one projection, so
	 * there is nothing left to pack */
	assert_int_equal(fusions(&st, "attention"), 1);
	assert_int_equal(fusions(&st, "layernorm"), 2);
	assert_int_equal(fusions(&st, "skip_layernorm"), 2);
	assert_int_equal(fusions(&st, "gelu"), 1);
	assert_int_equal(fusions(&st, "bias_gelu"), 1);
	assert_int_equal(ir_verify(g, &d), 0);
	ir_graph_free(g);
}

static void test_o1_and_o0_do_not_fuse(void **state)
{
	(void)state;
	for (int lvl = 0; lvl <= 1; lvl++) {
		Graph *g = load();
		PassOptions o = {.opt_level = lvl};
		PassStats st = {0};
		Diag d = {0};
		assert_int_equal(pass_run_pipeline(g, &o, &st, &d), 0);
		assert_int_equal(st.nfusions, 0);
		assert_int_equal(count_op(g, OP_Softmax), 1);
		assert_int_equal(count_op(g, OP_ReduceMean), 2);
		ir_graph_free(g);
	}
}

static void test_disable_pattern(void **state)
{
	(void)state;
	Graph *g = load();
	PassOptions o = {.opt_level = 2, .disabled_patterns = "attention,gelu"};
	PassStats st = {0};
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, &o, &st, &d), 0);
	assert_int_equal(fusions(&st, "attention"), 0);
	assert_int_equal(fusions(&st, "gelu"), 0);
	assert_int_equal(fusions(&st, "layernorm"), 2);
	assert_int_equal(count_op(g, OP_Softmax), 1);
	assert_int_equal(count_op(g, OP_Erf), 1);
	assert_int_equal(count_op(g, OP_KlnGelu), 0);
	ir_graph_free(g);
}

static void test_bad_names(void **state)
{
	(void)state;
	Graph *g = load();
	Diag d = {0};
	PassOptions o = {.passes = "cleanup,no-such-pass"};
	assert_int_not_equal(pass_run_pipeline(g, &o, NULL, &d), 0);
	assert_non_null(strstr(d.msg, "no-such-pass"));
	/* nothing ran */
	Diag d2 = {0};
	PassOptions o2 = {.disabled_patterns = "attention,bogus"};
	assert_int_not_equal(pass_run_pipeline(g, &o2, NULL, &d2), 0);
	assert_non_null(strstr(d2.msg, "bogus"));
	Diag d3 = {0};
	PassOptions o3 = {.opt_level = 2, .print_after = "fuse-everything"};
	assert_int_not_equal(pass_run_pipeline(g, &o3, NULL, &d3), 0);
	assert_non_null(strstr(d3.msg, "fuse-everything"));
	assert_int_equal(count_op(g, OP_Softmax), 1);
	ir_graph_free(g);
}

static char *run_dump(PassOptions *o)
{
	Graph *g = load();
	FILE *f = tmpfile();
	assert_non_null(f);
	o->dump = f;
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, o, NULL, &d), 0);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	ir_graph_free(g);
	return s;
}

static void test_prints(void **state)
{
	(void)state;
	PassOptions o = {.passes = "fuse-norm,fuse-gelu", .print_before = "fuse-norm",
	                 .print_after = "fuse-gelu"};
	char *s = run_dump(&o);
	char *a = strstr(s, "// ----- IR before fuse-norm");
	char *b = strstr(s, "// ----- IR after fuse-gelu");
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a < b);
	assert_non_null(strstr(a, "ReduceMean("));        /* before: decomposed */
	assert_non_null(strstr(b, "KlnGelu("));
	assert_null(strstr(b, "ReduceMean("));
	assert_non_null(strstr(b, "gelu x1"));
	free(s);
	PassOptions all = {.opt_level = 2, .print_after_all = true};
	s = run_dump(&all);
	assert_non_null(strstr(s, "// ----- IR as imported"));
	assert_non_null(strstr(s, "// ----- IR after fuse-attention"));
	assert_non_null(strstr(s, "attention x1"));
	assert_non_null(strstr(s, "// ----- IR after dce"));
	free(s);
}

static void test_pass_list(void **state)
{
	(void)state;
	FILE *f = tmpfile();
	pass_list(f);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	const char *names[] = {"cleanup", "fold", "canon-reshape", "einsum", "dce", "cse",
	                       "fuse-norm", "fuse-gelu", "fuse-gemm", "fuse-attention", "fuse-qkv",
	                       "fuse-embed", "-O0:", "-O1:", "-O2:", "embed_layernorm"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (!strstr(s, names[i]))
			fail_msg("pass_list lacks %s", names[i]);
	free(s);
}

/* A text-IR case of tests/passes, parsed and shape-inferred. */
static Graph *load_case(const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/passes/%s", KILN_SOURCE_DIR, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char text[1 << 16];
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = 0;
	Diag d = {0};
	Graph *g = ir_parse(text, path, &d);
	assert_non_null(g);
	assert_int_equal(ir_infer_shapes(g, &d), 0);
	return g;
}

static char *fused_text(const char *name, const char *passes)
{
	Graph *g = load_case(name);
	PassOptions o = {.passes = passes, .verify_each = true};
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, &o, NULL, &d), 0);
	char *s = ir_print_str(g);
	ir_graph_free(g);
	return s;
}

/* Values the rewriter creates are named from the graph alone: the same
 * graph fused twice in one process prints the same (a global counter gave
 * qkv_weight.c0, then .c1). */
static void test_deterministic_names(void **state)
{
	(void)state;
	const char *p = "fuse-gemm,fuse-attention,fuse-qkv,dce";
	char *a = fused_text("qkv_self.ir", p);
	char *b = fused_text("ln_op_nobias.ir", "fuse-norm");
	char *c = fused_text("qkv_self.ir", p);
	char *d = fused_text("ln_op_nobias.ir", "fuse-norm");
	assert_string_equal(a, c);
	assert_string_equal(b, d);
	assert_non_null(strstr(a, "%qkv_weight = const"));
	assert_non_null(strstr(b, "%ln_zero_bias = const"));
	free(a);
	free(b);
	free(c);
	free(d);
}

/* Fused nodes name the ONNX nodes they replaced in a trailing comment,
 * which the parser reads back: the dump reads back as the same graph,
 * comment included. */
static void test_from_comment_reads_back(void **state)
{
	(void)state;
	char *a = fused_text("quick_gelu.ir", "fuse-gelu");
	assert_non_null(strstr(a, "@\"qg/mul\"  // from: \"qg/mul\", \"qg/sig\", \"qg/scale\"\n"));
	Diag d = {0};
	Graph *g = ir_parse(a, "dump", &d);
	if (!g)
		fail_msg("the dump does not parse: %s", d.msg);
	char *b = ir_print_str(g);
	assert_int_equal(IR_NODE(g, g->order[0])->nfrom, 3);
	assert_string_equal(a, b);
	ir_graph_free(g);
	free(a);
	free(b);
}

/* The pattern registry: every name is accepted by --disable-pattern and
 * --explain and listed; an unknown one is refused naming it. */
static void test_pattern_registry(void **state)
{
	(void)state;
	int n = pass_pattern_count();
	assert_true(n >= 12);
	FILE *f = tmpfile();
	pass_list(f);
	long len = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	for (int i = 0; i < n; i++) {
		const char *nm = pass_pattern_name(i);
		Diag d = {0};
		assert_int_equal(pass_check_patterns("--disable-pattern", nm, &d), 0);
		assert_int_equal(pass_pattern_lookup(nm, strlen(nm)), i);
		char line[80];
		snprintf(line, sizeof line, "\n%s ", nm);
		if (!strstr(s, line))
			fail_msg("pass_list lacks pattern %s", nm);
	}
	assert_null(pass_pattern_name(n));
	Diag d = {0};
	assert_int_equal(pass_check_patterns("--explain", "gelu,quick_gelu,nope", &d), -1);
	assert_non_null(strstr(d.msg, "--explain: unknown pattern 'nope'"));
	free(s);
}

/* --explain: the fused roots as they fire, the ones left with the node and
 * the condition that failed (here layernorm on the layer, and on gelu
 * disabled: what it would have found). */
static void test_explain(void **state)
{
	(void)state;
	PassOptions o = {.opt_level = 2, .explain = "layernorm"};
	char *s = run_dump(&o);
	assert_non_null(strstr(s, "explain layernorm: Add '"));
	assert_non_null(strstr(s, "fused as KlnLayerNorm"));
	free(s);
	PassOptions o2 = {.opt_level = 2, .explain = "gelu", .disabled_patterns = "gelu"};
	s = run_dump(&o2);
	assert_non_null(strstr(s, "explain gelu: disabled by --disable-pattern"));
	assert_non_null(strstr(s, "would fuse"));
	assert_non_null(strstr(s, "not fused: at "));
	free(s);
	Graph *g = load();
	Diag d = {0};
	PassOptions bad = {.opt_level = 2, .explain = "gelux"};
	assert_int_equal(pass_run_pipeline(g, &bad, NULL, &d), -1);
	assert_non_null(strstr(d.msg, "gelux"));
	ir_graph_free(g);
}

/* --explain=PATTERN on a tests/passes case at -O2: what it printed. */
static char *explain_case(const char *name, const char *pattern)
{
	Graph *g = load_case(name);
	FILE *f = tmpfile();
	assert_non_null(f);
	PassOptions o = {.opt_level = 2, .explain = pattern, .dump = f};
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, &o, NULL, &d), 0);
	long n = ftell(f);
	rewind(f);
	char *s = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	ir_graph_free(g);
	return s;
}

static int count(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
		n++;
	return n;
}

/* --explain prints one line per root: a KlnRMSNorm that skip_rmsnorm made
 * in one round of the fixpoint is a KlnRMSNorm again (its root op) in the
 * next and in the dry run after the pipeline, and says nothing more than
 * "fused as"; so for qkv's KlnAttention.  A KlnAttention packed as written
 * (nonzero offsets) is a candidate left, and says why; a graph without any
 * candidate says that. */
static void test_explain_once(void **state)
{
	(void)state;
	char *s = explain_case("rmsnorm_skip.ir", "skip_rmsnorm");
	if (count(s, "explain skip_rmsnorm: ") != 2 || count(s, "fused as KlnRMSNorm") != 2)
		fail_msg("expected two 'fused as' lines and nothing else:\n%s", s);
	free(s);
	s = explain_case("qkv_nobias.ir", "qkv");
	if (count(s, "explain qkv: ") != 1 || count(s, "fused as KlnGemm") != 1)
		fail_msg("expected one 'fused as' line:\n%s", s);
	free(s);
	s = explain_case("qkv_packed.ir", "qkv");
	if (count(s, "explain qkv: ") != 1 ||
	    !strstr(s, "not fused: at KlnAttention 'att': Q/K/V already packed (nonzero offsets"))
		fail_msg("expected one 'already packed' line:\n%s", s);
	free(s);
	/* no KlnAttention at all: one note, no per-root line */
	s = explain_case("rmsnorm.ir", "qkv");
	if (count(s, "explain qkv: ") != 0 ||
	    !strstr(s, "explain qkv - no candidate root (KlnAttention) in the graph\n"))
		fail_msg("expected the no-candidate note:\n%s", s);
	free(s);
	s = explain_case("attention_cross.ir", "qkv");
	if (count(s, "explain qkv: ") != 1 ||
	    !strstr(s, "K projection 'r' is not a KlnGemm (a graph input or constant)"))
		fail_msg("expected the cross attention's K input named:\n%s", s);
	free(s);
}

/* The fusion passes run as a fixpoint: -O2 and --passes=fusions give the
 * same graph, and a second run of the group finds nothing more. */
static void test_fusion_fixpoint(void **state)
{
	(void)state;
	Graph *g = load(), *h = load();
	PassOptions o = {.opt_level = 2};
	PassStats st = {0}, st2 = {0};
	Diag d = {0};
	assert_int_equal(pass_run_pipeline(g, &o, &st, &d), 0);
	PassOptions p = {.passes = "cleanup,fold,einsum,canon-reshape,dce,cse,fold,dce,fusions,cse,dce"};
	assert_int_equal(pass_run_pipeline(h, &p, &st2, &d), 0);
	char *a = ir_print_str(g), *b = ir_print_str(h);
	assert_string_equal(a, b);
	free(a);
	free(b);
	PassOptions again = {.passes = "fusions"};
	PassStats st3 = {0};
	assert_int_equal(pass_run_pipeline(g, &again, &st3, &d), 0);
	assert_int_equal(st3.nfusions, 0);
	ir_graph_free(g);
	ir_graph_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_o2_fuses_layer),
		cmocka_unit_test(test_o1_and_o0_do_not_fuse),
		cmocka_unit_test(test_disable_pattern),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_prints),
		cmocka_unit_test(test_pass_list),
		cmocka_unit_test(test_deterministic_names),
		cmocka_unit_test(test_from_comment_reads_back),
		cmocka_unit_test(test_pattern_registry),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_explain_once),
		cmocka_unit_test(test_fusion_fixpoint),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
