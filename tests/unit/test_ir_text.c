/* Textual IR: golden files (tests/golden/NAME.kir parsed and printed must
 * equal NAME.expected, and print/parse/print is the identity), round trips
 * of programmatically built graphs, exact float round trips, the dot
 * output, and parser refusals (each bad text gives "file:line:col: ...").
 * With ../shared present, every shared model is imported, shape-inferred
 * and must survive print -> parse -> print and verify. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "onnx_import.h"
#include "test_files.h"

/* parse -> print, then checks print(parse(print)) is the same text. */
static char *roundtrip(const char *text, const char *name)
{
	Diag d = { 0 };
	Graph *g = ir_parse(text, name, &d);
	if (!g)
		fail_msg("%s: parse failed: %s", name, d.msg);
	char *out = ir_print_str(g);
	ir_graph_free(g);
	Graph *g2 = ir_parse(out, name, &d);
	if (!g2)
		fail_msg("%s: reparse failed: %s\n%s", name, d.msg, out);
	char *out2 = ir_print_str(g2);
	ir_graph_free(g2);
	if (strcmp(out, out2))
		fail_msg("%s: print/parse/print differs:\n%s---\n%s", name, out, out2);
	free(out2);
	return out;
}

static void test_golden(void **state)
{
	(void)state;
	const char *dir = KILN_SOURCE_DIR "/tests/golden";
	DIR *dd = opendir(dir);
	assert_non_null(dd);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		size_t len = strlen(e->d_name);
		if (len < 5 || strcmp(e->d_name + len - 4, ".kir"))
			continue;
		char in[1024], ex[1024];
		snprintf(in, sizeof in, "%s/%s", dir, e->d_name);
		snprintf(ex, sizeof ex, "%s/%.*s.expected", dir, (int)(len - 4), e->d_name);
		char *text = test_read_file(in, NULL), *want = test_read_file(ex, NULL);
		assert_non_null(text);
		if (!want)
			fail_msg("%s has no .expected file", in);
		char *got = roundtrip(text, e->d_name);
		if (strcmp(got, want))
			fail_msg("%s: printed text differs from %s:\n%s", in, ex, got);
		free(got);
		free(text);
		free(want);
		n++;
	}
	closedir(dd);
	assert_true(n >= 4);
}

/* Builds a graph through the API and checks the text and its round trip. */
static void test_built_graph(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("built");
	g->opset = 17;
	DimId dims[2] = { ir_dim_sym(g, "batch"), ir_dim_const(g, 64) };
	ValId x = ir_input_new(g, "x", DT_F32, 2, dims);
	float w[64 * 64];
	for (int i = 0; i < 64 * 64; i++)
		w[i] = (float)i * 0.5f;
	int64_t wd[2] = { 64, 64 };
	ValId wv = ir_const_new(g, "w", DT_F32, 2, wd, w, sizeof w, false);
	ValId one = ir_const_scalar_f32(g, "onnx::one", 1.0f);
	ValId unused = ir_const_scalar_i64(g, "unused", 7);
	(void)unused;
	ValId in[2] = { x, wv };
	NodeId mm = ir_node_new(g, OP_MatMul, "/MatMul", 2, in, 1, NULL);
	ValId mmo = IR_NODE(g, mm)->out[0];
	IR_VAL(g, mmo)->dtype = DT_F32;
	ir_value_set_shape(g, mmo, 2, dims);
	ValId in2[2] = { mmo, one };
	NodeId add = ir_node_new(g, OP_Add, NULL, 2, in2, 1, NULL);
	ir_attr_set_float(g, add, "f", 0.1f);
	g->outputs = ir_arena_alloc(g->arena, sizeof(ValId), 4);
	g->outputs[0] = IR_NODE(g, add)->out[0];
	g->noutputs = 1;

	char *text = ir_print_str(g);
	char hashline[128];
	snprintf(hashline, sizeof hashline, "  %%w = const f32[64, 64] #hash<%016llx>\n",
	         (unsigned long long)IR_VAL(g, wv)->hash);
	assert_non_null(strstr(text, hashline));
	assert_non_null(strstr(text, "%\"onnx::one\" = const f32[] dense<[1.0]>\n"));
	assert_null(strstr(text, "unused"));      /* unreferenced constants are not printed */
	assert_non_null(strstr(text, "%\"/MatMul:0\" = MatMul(%x, %w) : f32[batch, 64] @\"/MatMul\"\n"));
	assert_non_null(strstr(text, "{f = 0.100000001} : ?\n"));
	assert_non_null(strstr(text, "graph @built(%x: f32[batch, 64]) opset 17 {\n"));
	char *again = roundtrip(text, "built");
	assert_string_equal(text, again);

	/* the elided constant parses back without data, hash kept */
	Diag d = { 0 };
	Graph *g2 = ir_parse(text, "built", &d);
	assert_non_null(g2);
	ValId w2 = ir_value_find(g2, "w");
	assert_true(w2 >= 0);
	assert_int_equal(IR_VAL(g2, w2)->kind, V_CONST);
	assert_null(IR_VAL(g2, w2)->data);
	assert_true(IR_VAL(g2, w2)->hash == IR_VAL(g, wv)->hash);
	assert_int_equal(IR_VAL(g2, w2)->nbytes, sizeof w);
	ir_graph_free(g2);

	FILE *f = fopen("/dev/null", "w");
	ir_print_dot(f, g);
	fclose(f);
	free(text);
	free(again);
	ir_graph_free(g);
}

/* Symbols named like ONNX dim_params that are not expressions
 * ("batch-size", with ',', ']', quotes, control bytes) print quoted and
 * parse back to the same names. */
static void test_symbol_names(void **state)
{
	(void)state;
	static const char *names[] = { "batch-size", "a,b]", "q\"\\x", "\x1b[2J\r\n", "(", "N/A" };
	Graph *g = ir_graph_new("syms");
	g->opset = 17;
	DimId dims[6];
	for (int i = 0; i < 6; i++)
		dims[i] = ir_dim_sym(g, names[i]);
	dims[5] = ir_dim_add(g, ir_dim_mul(g, ir_dim_const(g, 2), dims[5]), dims[0]);
	ValId x = ir_input_new(g, "x", DT_F32, 6, dims);
	NodeId n = ir_node_new(g, OP_Neg, "neg\x1b[2J\r", 1, &x, 1, NULL);
	ValId y = IR_NODE(g, n)->out[0];
	IR_VAL(g, y)->dtype = DT_F32;
	ir_value_set_shape(g, y, 6, dims);
	g->outputs = ir_arena_alloc(g->arena, sizeof(ValId), 4);
	g->outputs[0] = y;
	g->noutputs = 1;
	char *text = ir_print_str(g);
	assert_non_null(strstr(text, "f32[\"batch-size\", \"a,b]\", \"q\\\"\\\\x\", "
	                             "\"\\x1b[2J\\x0d\\x0a\", \"(\", 2*\"N/A\" + \"batch-size\"]"));
	char *again = roundtrip(text, "syms");
	assert_string_equal(text, again);
	Diag d = { 0 };
	Graph *g2 = ir_parse(text, "syms", &d);
	if (!g2)
		fail_msg("%s", d.msg);
	for (int i = 0; i < 6; i++)
		assert_true(ir_sym_lookup(g2, names[i]) >= 0);
	assert_int_equal(ir_nsyms(g2), 6);
	ir_graph_free(g2);
	/* the text IR and the dot output hold no raw control byte */
	char *dot = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&dot, &len);
	assert_non_null(f);
	ir_print_dot(f, g);
	fclose(f);
	assert_non_null(strstr(dot, "neg\\\\x1b[2J\\\\x0d"));
	for (const char *t[] = { text, dot }, **p = t; p < t + 2; p++)
		for (const char *c = *p; *c; c++)
			if ((unsigned char)*c == 0x7f || ((unsigned char)*c < 0x20 && *c != '\n'))
				fail_msg("raw control byte 0x%02x in %s", *c, p == t ? "text" : "dot");
	free(dot);
	free(text);
	free(again);
	ir_graph_free(g);
}

/* Every f32 bit pattern class survives print -> parse exactly. */
static void test_float_exact(void **state)
{
	(void)state;
	float vals[] = { 0.1f, 1.0f / 3.0f, 1e-45f, 3.4028235e38f, -0.0f, 1.17549435e-38f,
	                 16777217.0f, 2.5f, -123456.789f, 1e-5f, INFINITY, -INFINITY };
	int n = (int)(sizeof vals / sizeof vals[0]);
	Graph *g = ir_graph_new("f");
	int64_t dim = n;
	ValId c = ir_const_new(g, "c", DT_F32, 1, &dim, vals, sizeof vals, false);
	NodeId id = ir_node_new(g, OP_Identity, "i", 1, &c, 1, NULL);
	ir_attr_set_floats(g, id, "fs", n, vals);
	ir_attr_set_float(g, id, "nan", NAN);
	g->outputs = ir_arena_alloc(g->arena, sizeof(ValId), 4);
	g->outputs[0] = IR_NODE(g, id)->out[0];
	g->noutputs = 1;
	/* 12 elements: <= IR_PRINT_INLINE, so printed in full */
	char *text = ir_print_str(g);
	Diag d = { 0 };
	Graph *g2 = ir_parse(text, "f", &d);
	if (!g2)
		fail_msg("%s\n%s", d.msg, text);
	ValId c2 = ir_value_find(g2, "c");
	assert_non_null(IR_VAL(g2, c2)->data);
	assert_memory_equal(IR_VAL(g2, c2)->data, vals, sizeof vals);
	assert_true(IR_VAL(g2, c2)->hash == IR_VAL(g, c)->hash);
	NodeId id2 = g2->order[0];
	int cnt;
	const float *fs = ir_attr_floats(g2, id2, "fs", &cnt);
	assert_int_equal(cnt, n);
	assert_memory_equal(fs, vals, sizeof vals);
	assert_true(isnan(ir_attr_float(g2, id2, "nan", 0)));
	free(text);
	ir_graph_free(g);
	ir_graph_free(g2);
}

/* Small integer constants get their symbolic content; the parser keeps it. */
static void test_parse_sval(void **state)
{
	(void)state;
	const char *t = "graph @g() {\n  %c = const i64[3] dense<[2, -1, 64]>\n"
	                "  %s = Shape(%c) : i64[1]\n  return %s\n}\n";
	Diag d = { 0 };
	Graph *g = ir_parse(t, "sv", &d);
	assert_non_null(g);
	const Value *v = IR_VAL(g, ir_value_find(g, "c"));
	assert_int_equal(v->nsval, 3);
	int64_t e;
	assert_true(ir_dim_is_const(g, v->sval[1], &e));
	assert_int_equal(e, -1);
	assert_int_equal(ir_value_numel_const(g, ir_value_find(g, "c")), 3);
	ir_graph_free(g);
}

static void test_dot(void **state)
{
	(void)state;
	const char *t = "graph @g(%x: f32[2]) {\n  %y = KlnGelu(%x) : f32[2] @\"fused\"\n"
	                "  %z = Relu(%y) : f32[2] @\"prim\"\n  return %z\n}\n";
	Diag d = { 0 };
	Graph *g = ir_parse(t, "dot", &d);
	assert_non_null(g);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ir_print_dot(f, g);
	fclose(f);
	assert_non_null(strstr(buf, "digraph"));
	assert_non_null(strstr(buf, "label=\"KlnGelu\\nfused\""));
	assert_non_null(strstr(buf, "fillcolor"));
	/* the primitive op is not filled */
	const char *relu = strstr(buf, "label=\"Relu\\nprim\"");
	assert_non_null(relu);
	const char *line = relu, *eol = strchr(relu, '\n');
	while (line > buf && line[-1] != '\n')
		line--;
	char one[256];
	snprintf(one, sizeof one, "%.*s", (int)(eol - line), line);
	assert_null(strstr(one, "filled"));
	assert_non_null(strstr(buf, "[label=\"f32[2]\"]"));
	free(buf);
	ir_graph_free(g);
}

/* Each bad text: NULL, a diag "file:line:col: ..." containing `want`. */
static void refuse(const char *text, const char *want_loc, const char *want)
{
	Diag d = { 0 };
	Graph *g = ir_parse(text, "bad.kir", &d);
	if (g) {
		ir_graph_free(g);
		fail_msg("accepted bad text:\n%s", text);
	}
	assert_true(d.failed);
	if (strncmp(d.msg, want_loc, strlen(want_loc)) || !strstr(d.msg, want))
		fail_msg("for text:\n%s\nwant '%s...%s', got: %s", text, want_loc, want, d.msg);
}

#define HDR "graph @g(%x: f32[2]) {\n"

static void test_refusals(void **state)
{
	(void)state;
	refuse("", "bad.kir:1:1:", "expected 'graph'");
	refuse("graph", "bad.kir:1:6:", "expected '@'");
	refuse("graph @g(%x: f32[2]", "bad.kir:1:20:", "expected ','");
	refuse("graph @g(%x: f33[2]) {\n}\n", "bad.kir:1:14:", "unknown dtype 'f33'");
	refuse(HDR "  %y = Frobnicate(%x) : f32[2]\n  return %y\n}\n", "bad.kir:2:8:", "unknown op 'Frobnicate'");
	refuse(HDR "  %y = Relu(%q) : f32[2]\n  return %y\n}\n", "bad.kir:2:13:", "undefined value %q");
	refuse(HDR "  %y = Relu(%x) : f32[2]\n  return %nope\n}\n", "bad.kir:3:10:", "undefined value %nope");
	refuse(HDR "  %x = Relu(%x) : f32[2]\n  return %x\n}\n", "bad.kir:2:3:", "defined twice");
	refuse(HDR "  %y = Relu(%x) : f32[2]\n", "bad.kir:3:1:", "unexpected end of text");
	refuse(HDR "  %y = Relu(%x", "bad.kir:2:15:", "expected ','");
	refuse(HDR "  %y = Relu(%x) : f32[2\n", "bad.kir:2:24:", "unterminated shape");
	refuse(HDR "  %y = Relu(%x) : f32[2]\n  return %y\n", "bad.kir:4:1:", "expected '}'");
	refuse(HDR "  %y = Relu(%x) : f32[2]\n  return %y\n}\n}\n", "bad.kir:5:1:", "text after the end");
	refuse(HDR "  %y = Relu(%x) : f32[2] @\"unterminated\n  return %y\n}\n", "bad.kir:2:27:", "unterminated string");
	refuse(HDR "  %y = Relu(%x) {a = } : f32[2]\n  return %y\n}\n", "bad.kir:2:22:", "expected an attribute value");
	refuse(HDR "  %y = Relu(%x) {a = 1, a = 2} : f32[2]\n  return %y\n}\n", "bad.kir:2:25:", "given twice");
	refuse(HDR "  %y = Relu(%x) {a = 1x} : f32[2]\n  return %y\n}\n", "bad.kir:2:22:", "bad integer '1x'");
	refuse(HDR "  %y = Relu(%x) : f32[2], f32[2]\n  return %y\n}\n", "bad.kir:2:27:", "more types than results");
	refuse(HDR "  %c = const i64[3] dense<[1, 2]>\n  return %c\n}\n", "bad.kir:2:3:", "has 2 elements, its type says 3");
	refuse(HDR "  %c = const i8[1] dense<[300]>\n  return %c\n}\n", "bad.kir:2:27:", "out of range for i8");
	refuse(HDR "  %c = const i64[1] dense<[1.5]>\n  return %c\n}\n", "bad.kir:2:28:", "bad i64 '1.5'");
	refuse(HDR "  %c = const bool[1] dense<[maybe]>\n  return %c\n}\n", "bad.kir:2:29:", "bad bool");
	refuse(HDR "  %c = const f32[n] dense<[1.0]>\n  return %c\n}\n", "bad.kir:2:14:", "not a constant");
	refuse(HDR "  %c = const f32[1] #hash<123>\n  return %c\n}\n", "bad.kir:2:27:", "16 hex digits");
	refuse(HDR "  %c = const ? dense<[1]>\n  return %c\n}\n", "bad.kir:2:14:", "needs a dtype and a shape");
	refuse(HDR "  %y = Relu(%x) : f32[1, 2, 3, 4, 5, 6, 7, 8, 9]\n  return %y\n}\n", "bad.kir:2:47:", "rank exceeds");
	refuse(HDR "  %y = Relu(%x) : f32[a + ]\n  return %y\n}\n", "bad.kir:2:23:", "bad dim 'a +'");
	refuse(HDR "  %y = Relu(%x) : f32[2] extra\n  return %y\n}\n", "bad.kir:2:26:", "expected end of line");
	refuse(HDR "  %y = Relu(%x) : f32[2]\n  return %y %y\n}\n", "bad.kir:3:13:", "expected end of line");
	refuse(HDR "  %a, %a = Split(%x) : f32[1], f32[1]\n  return %a\n}\n", "bad.kir:2:7:", "defined twice");
	refuse(HDR "  %y = Relu(%x) : f32[2] @\"bad\\q\"\n  return %y\n}\n", "bad.kir:2:31:", "bad escape");
	refuse("graph @g(%x: f32[2]) opset -3 {\n  return %x\n}\n", "bad.kir:1:28:", "bad opset");
}

/* `#` comments (kiln dump may note absorbed ONNX nodes that way) are
 * skipped, `#hash<` is not one; several graphs: ir_parse refuses them at
 * the second, ir_parse_ex picks one and reports where each node and value
 * was written. */
/* A '?' dim of a graph input gets a symbol of its own (name_dK, as the ONNX
 * importer names a dim with neither value nor param); inference and the
 * verifier refuse an unknown dim that reaches them through the API.  A '?'
 * input dim once crashed shape inference (fuzz_ir). */
static void test_unknown_dims(void **state)
{
	(void)state;
	Diag d = { 0 };
	Graph *g = ir_parse("graph @g(%a: f32[?, 4], %b: f32[n, 4]) {\n"
	                    "  %y = Add(%a, %b) : f32[?, 4]\n  return %y\n}\n", "q.kir", &d);
	assert_non_null(g);
	assert_int_equal(ir_verify(g, &d), 0);
	assert_int_equal(ir_infer_shapes(g, &d), 0);
	char *text = ir_print_str(g);
	if (!strstr(text, "%a: f32[a_d0, 4]") || !strstr(text, "f32[max(a_d0, n), 4]"))
		fail_msg("want a_d0 for the '?' dim, got:\n%s", text);
	free(text);
	g->vals[g->inputs[0]].dims[0] = -1;
	Diag dv = { 0 };
	assert_int_not_equal(ir_verify(g, &dv), 0);
	if (!strstr(dv.msg, "graph input 'a' has an unknown dim (axis 0)"))
		fail_msg("verify: %s", dv.msg);
	Diag di = { 0 };
	assert_int_not_equal(ir_infer_shapes(g, &di), 0);
	if (!strstr(di.msg, "input 'a' has an unknown dim (axis 0)"))
		fail_msg("infer: %s", di.msg);
	ir_graph_free(g);
}

static void test_comments_graphs_positions(void **state)
{
	(void)state;
	const char *one =
		"# a comment line\n"
		"graph @g(%x: f32[2]) {  # after the header\n"
		"  %w = const f32[2] #hash<0123456789abcdef>  # after a constant\n"
		"  %y = Add(%x, %w) : f32[2] @\"add\"  # absorbed: /a, /b\n"
		"  return %y # end\n"
		"}\n";
	Diag d = { 0 };
	Graph *g = ir_parse(one, "c.ir", &d);
	if (!g)
		fail_msg("%s", d.msg);
	ValId w = ir_value_find(g, "w");
	assert_true(w >= 0);
	assert_true(g->vals[w].hash == 0x0123456789abcdefull);
	assert_null(g->vals[w].data);
	ir_graph_free(g);

	const char *two =
		"// ----- IR after a -----\n"
		"graph @g(%x: f32[2]) {\n"
		"  %y = Relu(%x) : f32[2]\n"
		"  return %y\n"
		"}\n"
		"// ----- IR after b -----\n"
		"graph @h(%x: f32[2]) {\n"
		"  %c = const f32[2] dense<[1.0, 2.0]>\n"
		"  %y = Relu(%x) : f32[2]\n"
		"    %z = Add(%y, %c) : f32[2]\n"
		"  return %z\n"
		"}\n";
	refuse(two, "bad.kir:7:1:", "a second graph: the text holds 2");
	IrParseOpts po = { .graph = 2, .want_pos = true };
	g = ir_parse_ex(two, "two.ir", &po, &d);
	if (!g)
		fail_msg("%s", d.msg);
	assert_int_equal(po.ngraphs, 2);
	assert_string_equal(g->name, "h");
	ValId c = ir_value_find(g, "c"), z = ir_value_find(g, "z"), x = ir_value_find(g, "x");
	assert_true(c >= 0 && z >= 0 && x >= 0 && z < po.nval_pos);
	assert_int_equal(po.val_pos[x].line, 7);
	assert_int_equal(po.val_pos[x].col, 10);
	assert_int_equal(po.val_pos[c].line, 8);
	assert_int_equal(po.val_pos[c].col, 3);
	assert_int_equal(po.val_pos[z].line, 10);   /* a node's result: at its type */
	assert_int_equal(po.val_pos[z].col, 24);
	NodeId add = g->vals[z].def;
	assert_true(add >= 0 && add < po.nnode_pos);
	assert_int_equal(po.node_pos[add].line, 10);
	assert_int_equal(po.node_pos[add].col, 5);
	free(po.node_pos);
	free(po.val_pos);
	ir_graph_free(g);
	po = (IrParseOpts){ .graph = 1 };
	g = ir_parse_ex(two, "two.ir", &po, &d);
	if (!g)
		fail_msg("%s", d.msg);
	assert_string_equal(g->name, "g");
	assert_null(po.val_pos);
	ir_graph_free(g);
	/* a graph number the text does not have; a graph cut short by the next */
	po = (IrParseOpts){ .graph = 3 };
	diag_clear(&d);
	assert_null(ir_parse_ex(two, "two.ir", &po, &d));
	assert_non_null(strstr(d.msg, "no graph 3: the text holds 2"));
	const char *cut = "graph @g(%x: f32[2]) {\n  %y = Relu(%x) : f32[2]\ngraph @h() {\n  return\n}\n";
	po = (IrParseOpts){ .graph = 1 };
	diag_clear(&d);
	assert_null(ir_parse_ex(cut, "cut.ir", &po, &d));
	assert_non_null(strstr(d.msg, "cut.ir:3:1: the next graph begins"));
}

/* Every prefix of valid texts fails cleanly (no crash, no leak under ASan),
 * and so do texts with one byte changed. */
static void test_truncations(void **state)
{
	(void)state;
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/golden/attrs.kir", KILN_SOURCE_DIR);
	char *text = test_read_file(path, NULL);
	assert_non_null(text);
	size_t n = strlen(text);
	char *buf = malloc(n + 1);
	assert_non_null(buf);
	int accepted = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(buf, text, i);
		buf[i] = 0;
		Diag d = { 0 };
		Graph *g = ir_parse(buf, "trunc", &d);
		if (g) {
			accepted++;
			ir_graph_free(g);
		} else {
			assert_true(d.failed);
			assert_non_null(strstr(d.msg, "trunc:"));
		}
	}
	/* only the text missing its final newline may be accepted */
	assert_true(accepted <= 1);
	const char junk[] = { '%', '"', '[', ']', '(', ')', ',', '=', '\n', '\\', '@', '#', '<', '?', 'x', '0' };
	unsigned seed = 12345;
	for (int iter = 0; iter < 1500; iter++) {
		memcpy(buf, text, n + 1);
		seed = seed * 1103515245u + 12345u;
		size_t pos = (seed >> 8) % n;
		seed = seed * 1103515245u + 12345u;
		buf[pos] = junk[(seed >> 8) % sizeof junk];
		Diag d = { 0 };
		Graph *g = ir_parse(buf, "mut", &d);
		if (g) {
			char *s = ir_print_str(g);   /* what was accepted prints */
			free(s);
			ir_graph_free(g);
		} else {
			assert_true(d.failed);
		}
	}
	free(buf);
	free(text);
}

/* Real graphs (../shared/models/NAME/model.onnx): print/parse/print is the
 * identity and the parsed graph verifies.  Skipped without ../shared. */
static void test_shared_models(void **state)
{
	(void)state;
	const char *dir = KILN_SOURCE_DIR "/../shared/models";
	DIR *dd = opendir(dir);
	if (!dd) {
		skip();
		return;
	}
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dd))) {
		if (e->d_name[0] == '.')
			continue;
		char path[1024];
		snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fclose(f);
		Diag d = { 0 };
		Graph *g = onnx_load_file(path, &d);
		if (!g)
			fail_msg("%s", d.msg);
		if (ir_infer_shapes(g, &d))
			fail_msg("%s", d.msg);
		char *text = ir_print_str(g);
		char *again = roundtrip(text, path);
		assert_string_equal(text, again);
		Graph *g2 = ir_parse(text, path, &d);
		assert_non_null(g2);
		if (ir_verify(g2, &d))
			fail_msg("%s", d.msg);
		ir_graph_free(g2);
		free(text);
		free(again);
		ir_graph_free(g);
		n++;
	}
	closedir(dd);
	assert_true(n > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_built_graph),
		cmocka_unit_test(test_symbol_names),
		cmocka_unit_test(test_float_exact),
		cmocka_unit_test(test_parse_sval),
		cmocka_unit_test(test_dot),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_unknown_dims),
		cmocka_unit_test(test_comments_graphs_positions),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_shared_models),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
