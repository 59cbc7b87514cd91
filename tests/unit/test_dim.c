/* Symbolic dims (ir/dim.c): canonical equality, exact division, opaque
 * atoms, min/max folding, print/parse round trips, eval, tree view,
 * garbage input to the parser, ONNX dim_params that are names ("batch-size")
 * and the quoted form such symbols print in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ir.h"

static Graph *G;

static int setup(void **st)
{
	G = ir_graph_new("dims");
	return G ? 0 : -1;
}

static int teardown(void **st)
{
	ir_graph_free(G);
	return 0;
}

static DimId S(const char *n) { return ir_dim_sym(G, n); }
static DimId C(int64_t c) { return ir_dim_const(G, c); }

static DimId P(const char *s)
{
	Diag d = { 0 };
	DimId r = ir_dim_parse(G, s, &d);
	if (r < 0)
		fail_msg("parse '%s': %s", s, d.msg);
	return r;
}

static const char *str(DimId d)
{
	static char buf[8][256];
	static int k;
	char *b = buf[k++ & 7];
	ir_dim_str(G, d, b, 256);
	return b;
}

static void test_constants(void **st)
{
	assert_int_equal(ir_dim_add(G, C(3), C(4)), C(7));
	assert_int_equal(ir_dim_mul(G, C(3), C(4)), C(12));
	assert_int_equal(ir_dim_div(G, C(7), C(2)), C(3));
	assert_int_equal(ir_dim_div(G, C(-7), C(2)), C(-4));   /* floor */
	assert_int_equal(ir_dim_mod(G, C(-7), C(2)), C(1));
	assert_int_equal(ir_dim_max(G, C(3), C(9)), C(9));
	assert_int_equal(ir_dim_min(G, C(3), C(9)), C(3));
	int64_t c = 0;
	assert_true(ir_dim_is_const(G, C(42), &c));
	assert_int_equal(c, 42);
	assert_false(ir_dim_is_const(G, S("batch"), NULL));
	assert_string_equal(str(C(-5)), "-5");
}

static void test_canonical(void **st)
{
	DimId a = S("s25"), b = S("s41");
	assert_int_equal(ir_dim_add(G, a, b), ir_dim_add(G, b, a));
	assert_int_equal(ir_dim_mul(G, a, b), ir_dim_mul(G, b, a));
	/* (a+b)*(a-b) == a*a - b*b */
	DimId l = ir_dim_mul(G, ir_dim_add(G, a, b), ir_dim_sub(G, a, b));
	DimId r = ir_dim_sub(G, ir_dim_mul(G, a, a), ir_dim_mul(G, b, b));
	assert_int_equal(l, r);
	assert_int_equal(ir_dim_sub(G, a, a), C(0));
	assert_int_equal(ir_dim_add(G, ir_dim_sub(G, a, C(1)), C(1)), a);
	assert_int_equal(ir_dim_mul(G, a, C(1)), a);
	assert_int_equal(ir_dim_mul(G, a, C(0)), C(0));
	assert_int_not_equal(ir_dim_add(G, a, b), ir_dim_mul(G, a, b));
	assert_string_equal(str(ir_dim_add(G, b, a)), "s25 + s41");
	DimId bs = ir_dim_mul(G, ir_dim_mul(G, C(64), S("sequence")), S("batch"));
	assert_string_equal(str(bs), "64*batch*sequence");
	assert_string_equal(str(ir_dim_sub(G, a, C(1))), "s25 - 1");
	assert_string_equal(str(ir_dim_sub(G, C(1), a)), "-s25 + 1");
	assert_string_equal(str(ir_dim_mul(G, a, a)), "s25*s25");
}

static void test_division(void **st)
{
	DimId b = S("b"), s = S("s");
	DimId num = ir_dim_mul(G, ir_dim_mul(G, b, s), C(64));
	DimId den = ir_dim_mul(G, ir_dim_mul(G, b, s), C(4));
	assert_int_equal(ir_dim_div(G, num, den), C(16));
	/* (b*(s25+s41)*768)/(12*b) == 64*(s25+s41) */
	DimId sum = ir_dim_add(G, S("s25"), S("s41"));
	DimId n2 = ir_dim_mul(G, ir_dim_mul(G, b, sum), C(768));
	DimId q = ir_dim_div(G, n2, ir_dim_mul(G, C(12), b));
	assert_int_equal(q, ir_dim_mul(G, C(64), sum));
	assert_string_equal(str(q), "64*s25 + 64*s41");
	/* by a polynomial */
	assert_int_equal(ir_dim_div(G, n2, sum), ir_dim_mul(G, b, C(768)));
	/* (s*s - 1) / (s - 1) == s + 1 */
	DimId sq = ir_dim_sub(G, ir_dim_mul(G, s, s), C(1));
	assert_int_equal(ir_dim_div(G, sq, ir_dim_sub(G, s, C(1))), ir_dim_add(G, s, C(1)));
	/* not exact: opaque atom, common content cancelled */
	DimId h = ir_dim_div(G, s, C(2));
	assert_int_equal(ir_dim_node(G, h)->kind, DIM_DIV);
	assert_int_equal(ir_dim_div(G, ir_dim_mul(G, s, C(4)), C(8)), h);
	assert_int_equal(ir_dim_div(G, h, C(3)), ir_dim_div(G, s, C(6)));
	assert_string_equal(str(h), "s//2");
	assert_int_equal(ir_dim_mod(G, ir_dim_mul(G, s, C(6)), C(3)), C(0));
	assert_int_equal(ir_dim_node(G, ir_dim_mod(G, s, C(3)))->kind, DIM_MOD);
	/* atoms take part in polynomials */
	DimId t = ir_dim_mul(G, h, C(2));
	assert_string_equal(str(t), "2*(s//2)");
	assert_int_equal(ir_dim_div(G, t, h), C(2));
}

static void test_minmax(void **st)
{
	DimId s = S("s"), t = S("t");
	assert_int_equal(ir_dim_max(G, s, s), s);
	assert_int_equal(ir_dim_max(G, s, C(0)), s);            /* dims >= 0 */
	assert_int_equal(ir_dim_min(G, s, C(0)), C(0));
	assert_int_equal(ir_dim_max(G, s, ir_dim_add(G, s, C(1))), ir_dim_add(G, s, C(1)));
	assert_int_equal(ir_dim_min(G, s, C(INT64_MAX)), s);
	assert_int_equal(ir_dim_max(G, s, C(INT64_MIN)), s);
	/* s - 1 may be negative: max(s - 1, 0) stays */
	DimId m = ir_dim_max(G, ir_dim_sub(G, s, C(1)), C(0));
	assert_int_equal(ir_dim_node(G, m)->kind, DIM_MAX);
	/* max(1, s) is not s (s may be 0) */
	assert_int_equal(ir_dim_node(G, ir_dim_max(G, C(1), s))->kind, DIM_MAX);
	/* commutative, absorption */
	assert_int_equal(ir_dim_max(G, s, t), ir_dim_max(G, t, s));
	assert_int_equal(ir_dim_max(G, s, ir_dim_min(G, s, C(512))), s);
	assert_int_equal(ir_dim_min(G, s, ir_dim_max(G, s, t)), s);
	assert_string_equal(str(ir_dim_min(G, t, s)), "min(s, t)");
}

/* The unknown dim (-1, a '?' of the text IR) in arithmetic gives the
 * unknown dim back: once a heap read before the table (fuzz_ir). */
static void test_unknown_operand(void **st)
{
	DimId s = S("s"), u = -1, big = 1 << 30;
	DimId (*f[])(Graph *, DimId, DimId) = { ir_dim_add, ir_dim_sub, ir_dim_mul, ir_dim_div,
	                                         ir_dim_mod, ir_dim_max, ir_dim_min };
	for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
		assert_int_equal(f[i](G, s, u), -1);
		assert_int_equal(f[i](G, u, s), -1);
		assert_int_equal(f[i](G, C(3), u), -1);
		assert_int_equal(f[i](G, u, u), -1);
		assert_int_equal(f[i](G, s, big), -1);
	}
	assert_false(ir_dim_is_const(G, u, NULL));
	assert_null(ir_dim_node(G, u));
}

static void roundtrip(const char *in, const char *want)
{
	DimId d = P(in);
	const char *out = str(d);
	if (want)
		assert_string_equal(out, want);
	char again[256];
	strcpy(again, out);
	DimId e = P(again);
	assert_int_equal(d, e);
	assert_string_equal(str(e), again);
}

static void test_parse_print(void **st)
{
	roundtrip("s25 + s41", "s25 + s41");
	roundtrip("s41 + s25", "s25 + s41");
	roundtrip("2*s41", "2*s41");
	roundtrip("s0*s1", "s0*s1");
	roundtrip("(s2 + 1)//2", "(s2 + 1)//2");
	roundtrip("s2 % 3", "s2%3");
	roundtrip("max(s1, s2) + 1", "max(s1, s2) + 1");
	roundtrip("min(3, 5)", "3");
	roundtrip("batch*sequence*64", "64*batch*sequence");
	roundtrip("-(a//2) + 4*(b//3)*c", NULL);
	roundtrip("x.y_1 - 2*x.y_1", "-x.y_1");
	roundtrip("  7 ", "7");
	roundtrip("(a + 1)*(a - 1)", "a*a - 1");
	roundtrip("3*((s + 1)//2) - s%4*2", NULL);
	/* python precedence: 2*s//3 == (2*s)//3 */
	assert_int_equal(P("2*s//3"), ir_dim_div(G, ir_dim_mul(G, C(2), S("s")), C(3)));
	assert_int_equal(P("-a//2"), ir_dim_div(G, ir_dim_mul(G, C(-1), S("a")), C(2)));
}

static void test_garbage(void **st)
{
	const char *bad[] = { "", "+", "s +", "(s", "s)", "s / 2", "max(s)", "max(s, t", "3 $ 4",
	                      "99999999999999999999", "1s", "s**2", "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((s))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))", "--------------------------------------------------------------------------------1" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		Diag d = { 0 };
		assert_int_equal(ir_dim_parse(G, bad[i], &d), -1);
		assert_true(d.failed);
		assert_non_null(strstr(d.msg, "dim '"));
	}
	Diag d = { 0 };
	assert_int_equal(ir_dim_parse(G, NULL, &d), -1);
}

/* ONNX dim_params are names unless they read as an expression: hyphenated
 * and other free-form names are one symbol of exactly that name. */
static void test_param_names(void **st)
{
	const char *names[] = { "batch-size", "seq-len", "a.b", "N/A", "seq len", "x-1",
	                        "s0-1", "b -1", "1abc-2", "50%!", "\"q\"", "a\\b", "über-dim",
	                        "\x1b[2J\r\n", "a,b]", "Max(s0, s1)", "s1 +* )", "(s0",
	                        "99999999999999999999", "s0 / 2", "-", "\"x\" + 1" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		Diag d = { 0 };
		DimId x = ir_dim_parse_param(G, names[i], &d);
		if (x < 0)
			fail_msg("'%s' refused: %s", names[i], d.msg);
		const DimNode *n = ir_dim_node(G, x);
		assert_int_equal(n->kind, DIM_SYM);
		assert_string_equal(ir_sym_name(G, (int)n->c), names[i]);
	}
	/* no symbol was made of the parts */
	assert_int_equal(ir_sym_lookup(G, "seq"), -1);
	assert_int_equal(ir_sym_lookup(G, "len"), -1);
	assert_int_equal(ir_sym_lookup(G, "N"), -1);
	assert_int_equal(ir_sym_lookup(G, "Max"), -1);
	assert_int_equal(ir_sym_lookup(G, "x"), -1);
	/* the exporters' expressions still are expressions */
	Diag d = { 0 };
	assert_int_equal(ir_dim_parse_param(G, "s25 + s41", &d), ir_dim_add(G, S("s41"), S("s25")));
	assert_int_equal(ir_dim_parse_param(G, "2*s41", &d), ir_dim_mul(G, C(2), S("s41")));
	assert_int_equal(ir_dim_parse_param(G, "s0//2", &d), ir_dim_div(G, S("s0"), C(2)));
	assert_int_equal(ir_dim_parse_param(G, "s0 - 1", &d), ir_dim_sub(G, S("s0"), C(1)));
	assert_int_equal(ir_dim_parse_param(G, "-s0 + s1%3", &d),
	                 ir_dim_add(G, ir_dim_mul(G, C(-1), S("s0")), ir_dim_mod(G, S("s1"), C(3))));
	assert_int_equal(ir_dim_parse_param(G, "batch", &d), S("batch"));
	assert_int_equal(ir_dim_parse_param(G, "64", &d), C(64));
	assert_false(d.failed);
	assert_int_equal(ir_dim_parse_param(G, NULL, &d), -1);
}

/* Symbols that are not plain names print quoted and parse back. */
static void test_quoted_roundtrip(void **st)
{
	const char *names[] = { "batch-size", "N/A", "", "1abc", "a\"b\\c", "\x1b[2J\r\n\x7f",
	                        "über", "a,b]", "max", "x y" };
	const char *want[] = { "\"batch-size\"", "\"N/A\"", "\"\"", "\"1abc\"", "\"a\\\"b\\\\c\"",
	                       "\"\\x1b[2J\\x0d\\x0a\\x7f\"", "\"über\"", "\"a,b]\"", "max",
	                       "\"x y\"" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		DimId x = S(names[i]);
		assert_string_equal(str(x), want[i]);
		assert_int_equal(P(str(x)), x);
		DimId e = ir_dim_add(G, ir_dim_mul(G, C(2), x), ir_dim_div(G, x, C(3)));
		assert_int_equal(P(str(e)), e);
	}
	assert_int_equal(P("\"batch-size\" * 4"), ir_dim_mul(G, S("batch-size"), C(4)));
	assert_int_equal(P("\"b\\x41\""), S("bA"));
	const char *bad[] = { "\"open", "\"bad\\q\"", "\"nul\\x00\"", "\"x\\x4\"", "\"a\"\"b\"" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		Diag d = { 0 };
		assert_int_equal(ir_dim_parse(G, bad[i], &d), -1);
		assert_true(d.failed);
	}
}

static void test_eval_and_tree(void **st)
{
	DimId d = P("3*((s + 1)//2) - s%4*2 + max(s, t)*t");
	int64_t v[64] = { 0 };
	int s = ir_sym_lookup(G, "s"), t = ir_sym_lookup(G, "t");
	assert_true(s >= 0 && t >= 0);
	assert_string_equal(ir_sym_name(G, s), "s");
	assert_true(ir_nsyms(G) > t && ir_nsyms(G) > s);
	assert_int_equal(ir_sym_lookup(G, "nope"), -1);
	v[s] = 7;
	v[t] = 5;
	assert_int_equal(ir_dim_eval(G, d, v), 3 * 4 - 3 * 2 + 7 * 5);
	/* the tree view evaluates to the same number */
	const DimNode *n = ir_dim_node(G, d);
	assert_int_equal(n->kind, DIM_ADD);
	assert_int_equal(ir_dim_eval(G, n->a, v) + ir_dim_eval(G, n->b, v), ir_dim_eval(G, d, v));
	DimId p = P("64*batch*sequence");
	n = ir_dim_node(G, p);
	assert_int_equal(n->kind, DIM_MUL);
	assert_int_equal(n->b, S("sequence"));
	const DimNode *m = ir_dim_node(G, n->a);
	assert_int_equal(m->kind, DIM_MUL);
	assert_int_equal(ir_dim_node(G, m->a)->kind, DIM_CONST);
	assert_int_equal(ir_dim_node(G, m->a)->c, 64);
	assert_int_equal(m->b, S("batch"));
	assert_int_equal(ir_dim_node(G, S("batch"))->kind, DIM_SYM);
	assert_null(ir_dim_node(G, -1));
	assert_null(ir_dim_node(G, 1 << 30));
	/* division by zero evaluates to 0 rather than trapping */
	assert_int_equal(ir_dim_eval(G, P("s//(t - 5)"), v), 0);
}

static void test_str_truncates(void **st)
{
	char b[6];
	DimId d = P("abcdef + 1");
	assert_int_equal(ir_dim_str(G, d, b, sizeof b), 10);
	assert_string_equal(b, "abcde");
	assert_int_equal(ir_dim_str(G, d, NULL, 0), 10);
}

/* Random expressions: the canonical form must evaluate like the operations
 * that built it (floor division, non-negative symbols) and survive a
 * print/parse round trip.  Deterministic (own LCG). */
static uint64_t rng = 12345;
static int rnd(int n)
{
	rng = rng * 6364136223846793005ull + 1442695040888963407ull;
	return (int)((rng >> 33) % (uint64_t)n);
}

static int64_t VALS[3][3] = { { 0, 3, 7 }, { 5, 1, 2 }, { 8, 6, 4 } };

static int64_t fdiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static DimId gen(int depth, int64_t val[3], bool *ok)
{
	int k = depth <= 0 ? rnd(2) : rnd(8);
	if (k == 0) {
		int64_t c = rnd(7) - 2;
		for (int i = 0; i < 3; i++)
			val[i] = c;
		return C(c);
	}
	if (k == 1) {
		const char *names[3] = { "r0", "r1", "r2" };
		int s = rnd(3);
		for (int i = 0; i < 3; i++)
			val[i] = VALS[i][s];
		return S(names[s]);
	}
	int64_t va[3], vb[3];
	DimId a = gen(depth - 1, va, ok), b = gen(depth - 1, vb, ok);
	for (int i = 0; i < 3; i++) {
		if (va[i] > 100000 || va[i] < -100000 || vb[i] > 100000 || vb[i] < -100000)
			*ok = false;
		switch (k) {
		case 2: val[i] = va[i] + vb[i]; break;
		case 3: val[i] = va[i] - vb[i]; break;
		case 4: val[i] = va[i] * vb[i]; break;
		case 5: if (!vb[i]) *ok = false; val[i] = vb[i] ? fdiv(va[i], vb[i]) : 0; break;
		case 6: val[i] = va[i] > vb[i] ? va[i] : vb[i]; break;
		default: val[i] = va[i] < vb[i] ? va[i] : vb[i]; break;
		}
	}
	switch (k) {
	case 2: return ir_dim_add(G, a, b);
	case 3: return ir_dim_sub(G, a, b);
	case 4: return ir_dim_mul(G, a, b);
	case 5: return ir_dim_div(G, a, b);
	case 6: return ir_dim_max(G, a, b);
	default: return ir_dim_min(G, a, b);
	}
}

static void test_random_expressions(void **st)
{
	/* symbol ids follow interning order: intern r0, r1, r2 first */
	int64_t sv[3][64] = { { 0 } };
	const char *names[3] = { "r0", "r1", "r2" };
	for (int s = 0; s < 3; s++) {
		S(names[s]);
		for (int i = 0; i < 3; i++)
			sv[i][ir_sym_lookup(G, names[s])] = VALS[i][s];
	}
	int checked = 0;
	for (int it = 0; it < 20000; it++) {
		int64_t val[3];
		bool ok = true;
		DimId d = gen(rnd(4), val, &ok);
		if (!ok)
			continue;
		for (int i = 0; i < 3; i++)
			if (ir_dim_eval(G, d, sv[i]) != val[i])
				fail_msg("'%s' evaluates to %lld, expected %lld", str(d), (long long)ir_dim_eval(G, d, sv[i]),
				         (long long)val[i]);
		char buf[4096];
		if (ir_dim_str(G, d, buf, sizeof buf) >= (int)sizeof buf)
			continue;
		assert_int_equal(P(buf), d);
		checked++;
	}
	assert_true(checked > 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants),
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_division),
		cmocka_unit_test(test_minmax),
		cmocka_unit_test(test_unknown_operand),
		cmocka_unit_test(test_parse_print),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_param_names),
		cmocka_unit_test(test_quoted_roundtrip),
		cmocka_unit_test(test_eval_and_tree),
		cmocka_unit_test(test_str_truncates),
		cmocka_unit_test(test_random_expressions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
