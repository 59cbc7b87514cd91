/* Graph building and rewriting: arena, values and constants (hash, sval,
 * alignment, borrow), generated names, use lists under ir_node_new /
 * ir_set_input / ir_replace_all_uses / ir_node_erase, attributes,
 * ir_toposort (stable Kahn) and ir_dce, dtype and op tables, and the
 * release callback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Does value v list the use (n, idx)? */
static bool has_use(const Graph *g, ValId v, NodeId n, int idx)
{
	const Value *val = IR_VAL(g, v);
	for (int i = 0; i < val->nuses; i++)
		if (val->uses[i].node == n && val->uses[i].idx == idx)
			return true;
	return false;
}

static void set_outputs(Graph *g, int n, const ValId *v)
{
	g->outputs = ir_arena_alloc(g->arena, (size_t)n * sizeof(ValId), 4);
	memcpy(g->outputs, v, (size_t)n * sizeof(ValId));
	g->noutputs = n;
}

static void test_tables(void **state)
{
	(void)state;
	assert_string_equal(ir_opname(OP_Add), "Add");
	assert_string_equal(ir_opname(OP_KlnAttention), "KlnAttention");
	assert_int_equal(ir_op_lookup("LayerNormalization"), OP_LayerNormalization);
	assert_int_equal(ir_op_lookup("Nope"), -1);
	assert_int_equal(ir_op_lookup(NULL), -1);
	for (int op = 0; op < OP_COUNT; op++)
		assert_int_equal(ir_op_lookup(ir_opname((Op)op)), op);
	assert_int_equal(ir_opinfo[OP_Split].max_out, -1);
	assert_int_equal(ir_opinfo[OP_KlnGelu].kind, K_FUSED);
	DType all[] = { DT_F32, DT_U8, DT_I8, DT_U16, DT_I16, DT_I32, DT_I64, DT_STRING, DT_BOOL,
	                DT_F16, DT_F64, DT_U32, DT_U64, DT_BF16 };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		assert_int_equal(ir_dtype_lookup(ir_dtype_name(all[i])), all[i]);
	assert_string_equal(ir_dtype_name(DT_F32), "f32");
	assert_string_equal(ir_dtype_name(DT_BOOL), "bool");
	assert_int_equal(ir_dtype_lookup("f33"), -1);
	assert_int_equal(ir_dtype_size(DT_I64), 8);
	assert_int_equal(ir_dtype_size(DT_BF16), 2);
	assert_int_equal(ir_dtype_size(DT_BOOL), 1);
	assert_int_equal(ir_dtype_size((DType)99), 0);
	assert_true(ir_dtype_is_float(DT_F16) && ir_dtype_is_float(DT_BF16));
	assert_false(ir_dtype_is_float(DT_I32));
	assert_true(ir_dtype_is_int(DT_U64) && ir_dtype_is_int(DT_I8));
	assert_false(ir_dtype_is_int(DT_BOOL));
	assert_false(ir_dtype_is_int(DT_F32));
}

static void test_arena(void **state)
{
	(void)state;
	Arena *a = ir_arena_new();
	for (int i = 0; i < 5000; i++) {
		size_t n = (size_t)(i * 37 % 3000) + 1;
		unsigned char *p = ir_arena_alloc(a, n, i % 2 ? 64 : 8);
		assert_int_equal((uintptr_t)p % (i % 2 ? 64 : 8), 0);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(p[k], 0);      /* zeroed */
		memset(p, 0xab, n);
	}
	unsigned char *big = ir_arena_alloc(a, 1 << 20, 64);
	assert_int_equal((uintptr_t)big % 64, 0);
	big[(1 << 20) - 1] = 1;
	char *s = ir_arena_strdup(a, "hello");
	assert_string_equal(s, "hello");
	assert_null(ir_arena_strdup(a, NULL));
	ir_arena_free(a);
}

static void test_values(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("v");
	assert_string_equal(g->name, "v");
	DimId dims[2] = { ir_dim_sym(g, "batch"), ir_dim_const(g, 4) };
	ValId x = ir_input_new(g, "x", DT_F32, 2, dims);
	assert_int_equal(g->ninputs, 1);
	assert_int_equal(g->inputs[0], x);
	assert_int_equal(IR_VAL(g, x)->kind, V_INPUT);
	assert_int_equal(IR_VAL(g, x)->rank, 2);
	assert_int_equal(IR_VAL(g, x)->def, -1);
	assert_int_equal(ir_value_numel_const(g, x), -1);     /* batch is symbolic */

	int64_t data[3] = { 5, -1, 7 };
	int64_t d1 = 3;
	ValId c = ir_const_new(g, "c", DT_I64, 1, &d1, data, sizeof data, false);
	const Value *cv = IR_VAL(g, c);
	assert_int_equal(cv->kind, V_CONST);
	assert_ptr_not_equal(cv->data, data);                 /* copied */
	assert_int_equal((uintptr_t)cv->data % 64, 0);
	assert_memory_equal(cv->data, data, sizeof data);
	assert_int_equal(cv->nbytes, sizeof data);
	assert_int_equal(ir_value_numel_const(g, c), 3);
	/* the content hash: the same bytes hash alike, one changed byte differs */
	assert_true(cv->hash == ir_hash_bytes(data, sizeof data));
	int64_t other[3] = { 5, -1, 8 };
	assert_true(ir_hash_bytes(other, sizeof other) != cv->hash);
	char big[100], big2[100];
	for (int i = 0; i < 100; i++)
		big[i] = big2[i] = (char)i;
	big2[37] ^= 1;
	assert_true(ir_hash_bytes(big, 100) != ir_hash_bytes(big2, 100));
	/* small integer constants carry their content as dims */
	assert_int_equal(cv->nsval, 3);
	int64_t e;
	assert_true(ir_dim_is_const(g, cv->sval[1], &e));
	assert_int_equal(e, -1);
	/* i32 too, but not floats nor big tensors */
	int32_t d32[2] = { 3, 4 };
	int64_t two = 2;
	ValId c32 = ir_const_new(g, NULL, DT_I32, 1, &two, d32, sizeof d32, false);
	assert_int_equal(IR_VAL(g, c32)->nsval, 2);
	ValId cf = ir_const_scalar_f32(g, "f", 1.5f);
	assert_null(IR_VAL(g, cf)->sval);
	assert_int_equal(IR_VAL(g, cf)->rank, 0);
	assert_int_equal(ir_value_numel_const(g, cf), 1);
	static int64_t many[65];
	int64_t n65 = 65;
	ValId cbig = ir_const_new(g, "many", DT_I64, 1, &n65, many, sizeof many, true);
	assert_ptr_equal(IR_VAL(g, cbig)->data, many);       /* borrowed */
	assert_null(IR_VAL(g, cbig)->sval);
	ValId s = ir_const_scalar_i64(g, "s", 42);
	assert_int_equal(IR_VAL(g, s)->nsval, 1);
	assert_true(ir_dim_is_const(g, IR_VAL(g, s)->sval[0], &e));
	assert_int_equal(e, 42);
	/* generated names are unique; lookup by name */
	assert_non_null(IR_VAL(g, c32)->name);
	ValId t1 = ir_value_new(g, NULL, V_NODE, DT_F32);
	ValId t2 = ir_value_new(g, NULL, V_NODE, DT_F32);
	assert_string_not_equal(IR_VAL(g, t1)->name, IR_VAL(g, t2)->name);
	assert_int_equal(ir_value_find(g, "c"), c);
	assert_int_equal(ir_value_find(g, "nope"), -1);
	/* shape and sval setters */
	ir_value_set_shape(g, t1, 1, &dims[1]);
	assert_int_equal(ir_value_numel_const(g, t1), 4);
	ir_value_set_shape(g, t1, -1, NULL);
	assert_int_equal(ir_value_numel_const(g, t1), -1);
	ir_value_set_sval(g, t1, 0, dims);
	assert_non_null(IR_VAL(g, t1)->sval);                 /* known, empty */
	assert_int_equal(IR_VAL(g, t1)->nsval, 0);
	ir_value_set_sval(g, t1, 0, NULL);
	assert_null(IR_VAL(g, t1)->sval);
	ir_graph_free(g);
}

static void test_node_names(void **state)
{
	(void)state;
	Graph *g = ir_graph_new(NULL);
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	NodeId a = ir_node_new(g, OP_Split, "/split", 1, &x, 2, NULL);
	assert_string_equal(IR_VAL(g, IR_NODE(g, a)->out[0])->name, "/split:0");
	assert_string_equal(IR_VAL(g, IR_NODE(g, a)->out[1])->name, "/split:1");
	/* same node name again: outputs still unique */
	NodeId b = ir_node_new(g, OP_Split, "/split", 1, &x, 2, NULL);
	const char *n0 = IR_VAL(g, IR_NODE(g, b)->out[0])->name;
	assert_string_not_equal(n0, "/split:0");
	assert_int_equal(ir_value_find(g, n0), IR_NODE(g, b)->out[0]);
	/* unnamed node; explicit names; "t<id>" collisions avoided */
	ValId tname = ir_value_new(g, "t0", V_NODE, DT_F32);
	(void)tname;
	NodeId c = ir_node_new(g, OP_Relu, NULL, 1, &x, 1, NULL);
	assert_string_not_equal(IR_VAL(g, IR_NODE(g, c)->out[0])->name, "t0");
	const char *names[1] = { "mine" };
	NodeId d = ir_node_new(g, OP_Relu, "r", 1, &x, 1, names);
	assert_string_equal(IR_VAL(g, IR_NODE(g, d)->out[0])->name, "mine");
	/* output bookkeeping */
	ValId o = IR_NODE(g, d)->out[0];
	assert_int_equal(IR_VAL(g, o)->def, d);
	assert_int_equal(IR_VAL(g, o)->def_idx, 0);
	assert_int_equal(IR_VAL(g, o)->kind, V_NODE);
	assert_int_equal(IR_VAL(g, o)->dtype, DT_UNDEF);
	assert_int_equal(IR_VAL(g, o)->rank, -1);
	assert_int_equal(g->norder, 4);
	assert_int_equal(g->order[3], d);
	ir_graph_free(g);
}

static void test_use_lists(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("u");
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	ValId y = ir_input_new(g, "y", DT_F32, -1, NULL);
	ValId in[2] = { x, x };
	NodeId a = ir_node_new(g, OP_Add, "a", 2, in, 1, NULL);
	assert_int_equal(IR_VAL(g, x)->nuses, 2);
	assert_true(has_use(g, x, a, 0) && has_use(g, x, a, 1));
	ValId ao = IR_NODE(g, a)->out[0];
	ValId in2[3] = { ao, -1, y };
	NodeId cl = ir_node_new(g, OP_Clip, "clip", 3, in2, 1, NULL);
	assert_int_equal(IR_VAL(g, y)->nuses, 1);
	assert_true(has_use(g, ao, cl, 0));

	/* set_input moves the use */
	ir_set_input(g, a, 1, y);
	assert_int_equal(IR_VAL(g, x)->nuses, 1);
	assert_true(has_use(g, x, a, 0));
	assert_false(has_use(g, x, a, 1));
	assert_true(has_use(g, y, a, 1));
	assert_int_equal(IR_NODE(g, a)->in[1], y);
	/* to and from absent */
	ir_set_input(g, cl, 2, -1);
	assert_int_equal(IR_VAL(g, y)->nuses, 1);
	ir_set_input(g, cl, 1, x);
	assert_true(has_use(g, x, cl, 1));

	/* replace_all_uses rewrites nodes and graph outputs */
	ValId co = IR_NODE(g, cl)->out[0];
	ValId outs[2] = { co, x };
	set_outputs(g, 2, outs);
	NodeId r = ir_node_new(g, OP_Relu, "r", 1, &x, 1, NULL);
	ir_replace_all_uses(g, x, y);
	assert_int_equal(IR_VAL(g, x)->nuses, 0);
	assert_int_equal(IR_NODE(g, a)->in[0], y);
	assert_int_equal(IR_NODE(g, cl)->in[1], y);
	assert_int_equal(IR_NODE(g, r)->in[0], y);
	assert_int_equal(g->outputs[1], y);
	assert_int_equal(g->outputs[0], co);
	assert_int_equal(IR_VAL(g, y)->nuses, 4);   /* a.0, a.1, clip.1, r.0 */
	assert_true(has_use(g, y, a, 0) && has_use(g, y, a, 1) && has_use(g, y, cl, 1) && has_use(g, y, r, 0));

	/* erase drops the node's uses */
	ir_node_erase(g, a);
	assert_true(IR_NODE(g, a)->dead);
	assert_int_equal(IR_VAL(g, y)->nuses, 2);
	assert_false(has_use(g, y, a, 0));
	ir_node_erase(g, a);      /* idempotent */
	assert_int_equal(IR_VAL(g, y)->nuses, 2);
	ir_graph_free(g);
}

static void test_toposort(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("t");
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	/* a: Relu(x); b: Neg(x); c: Add(a, b); d: Exp(x) -- already sorted */
	NodeId a = ir_node_new(g, OP_Relu, "a", 1, &x, 1, NULL);
	NodeId b = ir_node_new(g, OP_Neg, "b", 1, &x, 1, NULL);
	ValId ab[2] = { IR_NODE(g, a)->out[0], IR_NODE(g, b)->out[0] };
	NodeId c = ir_node_new(g, OP_Add, "c", 2, ab, 1, NULL);
	NodeId d = ir_node_new(g, OP_Exp, "d", 1, &x, 1, NULL);
	ir_toposort(g);
	NodeId want1[4] = { a, b, c, d };
	assert_int_equal(g->norder, 4);
	assert_memory_equal(g->order, want1, sizeof want1);   /* stable: unchanged */

	/* rewire a to consume d's output: d must move before a, the rest keep order */
	ir_set_input(g, a, 0, IR_NODE(g, d)->out[0]);
	ir_toposort(g);
	NodeId want2[4] = { b, d, a, c };
	assert_memory_equal(g->order, want2, sizeof want2);

	/* reversed order is repaired */
	NodeId rev[4] = { c, a, d, b };
	memcpy(g->order, rev, sizeof rev);
	ir_toposort(g);
	/* ready at first: d (pos 2) and b (pos 3); d goes first, which frees a (pos 1) */
	NodeId want3[4] = { d, a, b, c };
	assert_memory_equal(g->order, want3, sizeof want3);

	/* dead nodes leave the order */
	ir_node_erase(g, c);
	ir_toposort(g);
	assert_int_equal(g->norder, 3);
	for (int i = 0; i < g->norder; i++)
		assert_int_not_equal(g->order[i], c);
	ir_graph_free(g);
}

static void test_dce(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("d");
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	/* chain a -> b -> c unused; e used by output; f feeds e */
	NodeId a = ir_node_new(g, OP_Relu, "a", 1, &x, 1, NULL);
	NodeId b = ir_node_new(g, OP_Neg, "b", 1, &IR_NODE(g, a)->out[0], 1, NULL);
	NodeId c = ir_node_new(g, OP_Exp, "c", 1, &IR_NODE(g, b)->out[0], 1, NULL);
	NodeId f = ir_node_new(g, OP_Sqrt, "f", 1, &x, 1, NULL);
	NodeId e = ir_node_new(g, OP_Abs, "e", 1, &IR_NODE(g, f)->out[0], 1, NULL);
	/* a two-output node with only its second output used */
	NodeId s = ir_node_new(g, OP_Split, "s", 1, &x, 2, NULL);
	ValId outs[2] = { IR_NODE(g, e)->out[0], IR_NODE(g, s)->out[1] };
	set_outputs(g, 2, outs);
	ir_dce(g);
	assert_true(IR_NODE(g, a)->dead && IR_NODE(g, b)->dead && IR_NODE(g, c)->dead);
	assert_false(IR_NODE(g, e)->dead || IR_NODE(g, f)->dead || IR_NODE(g, s)->dead);
	assert_int_equal(g->norder, 3);
	assert_int_equal(g->order[0], f);
	assert_int_equal(g->order[1], e);
	assert_int_equal(g->order[2], s);
	assert_int_equal(IR_VAL(g, x)->nuses, 2);            /* f and s */
	Diag d = { 0 };
	if (ir_verify(g, &d))
		fail_msg("%s", d.msg);
	/* after replacing the output, the old producers go */
	ir_replace_all_uses(g, IR_NODE(g, e)->out[0], x);
	ir_dce(g);
	assert_true(IR_NODE(g, e)->dead && IR_NODE(g, f)->dead);
	assert_int_equal(g->norder, 1);
	ir_graph_free(g);
}

static void test_attrs(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("a");
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	NodeId n = ir_node_new(g, OP_Transpose, "t", 1, &x, 1, NULL);
	int64_t perm[3] = { 0, 2, 1 };
	float fs[2] = { 0.5f, -1.0f };
	ir_attr_set_ints(g, n, "perm", 3, perm);
	ir_attr_set_int(g, n, "axis", -1);
	ir_attr_set_float(g, n, "eps", 1e-5f);
	ir_attr_set_str(g, n, "mode", "tanh");
	ir_attr_set_floats(g, n, "fs", 2, fs);
	perm[0] = 9;     /* copied, not aliased */
	int cnt = 0;
	const int64_t *p = ir_attr_ints(g, n, "perm", &cnt);
	assert_int_equal(cnt, 3);
	assert_int_equal(p[0], 0);
	assert_int_equal(p[2], 1);
	assert_int_equal(ir_attr_int(g, n, "axis", 0), -1);
	assert_int_equal(ir_attr_int(g, n, "missing", 7), 7);
	assert_int_equal(ir_attr_int(g, n, "mode", 7), 7);    /* wrong kind: default */
	assert_true(ir_attr_float(g, n, "eps", 0) == 1e-5f);
	assert_true(ir_attr_float(g, n, "axis", 0) == -1.0f);  /* int widens */
	assert_string_equal(ir_attr_str(g, n, "mode", NULL), "tanh");
	assert_null(ir_attr_str(g, n, "nope", NULL));
	assert_non_null(ir_attr_floats(g, n, "fs", &cnt));
	assert_int_equal(cnt, 2);
	assert_null(ir_attr_ints(g, n, "fs", &cnt));
	/* setting again replaces, count unchanged */
	assert_int_equal(IR_NODE(g, n)->nattrs, 5);
	ir_attr_set_int(g, n, "axis", 2);
	assert_int_equal(IR_NODE(g, n)->nattrs, 5);
	assert_int_equal(ir_attr_int(g, n, "axis", 0), 2);
	/* tensor literal is deep-copied */
	float val = 3.0f;
	TensorLit t = { .dtype = DT_F32, .rank = 1, .dims = { 1 }, .data = &val, .nbytes = 4 };
	ir_attr_set_tensor(g, n, "value", &t);
	val = 0;
	const Attr *a = ir_attr_get(g, n, "value");
	assert_non_null(a);
	assert_int_equal(a->kind, A_TENSOR);
	assert_true(*(float *)a->u.t->data == 3.0f);
	assert_null(ir_attr_get(g, n, "zzz"));
	ir_graph_free(g);
}

static int released;
static void on_release(void *arg)
{
	released += *(int *)arg;
}

static void test_release(void **state)
{
	(void)state;
	Graph *g = ir_graph_new("r");
	static int five = 5;
	g->release = on_release;
	g->release_arg = &five;
	/* grow everything past its first capacity */
	ValId x = ir_input_new(g, "x", DT_F32, -1, NULL);
	ValId prev = x;
	for (int i = 0; i < 1000; i++) {
		NodeId n = ir_node_new(g, OP_LeakyRelu, NULL, 1, &prev, 1, NULL);
		ir_attr_set_float(g, n, "alpha", (float)i);
		prev = IR_NODE(g, n)->out[0];
	}
	for (int i = 0; i < 100; i++) {
		NodeId n = ir_node_new(g, OP_Neg, NULL, 1, &x, 1, NULL);
		(void)n;
	}
	assert_int_equal(IR_VAL(g, x)->nuses, 101);
	set_outputs(g, 1, &prev);
	Diag d = { 0 };
	if (ir_verify(g, &d))
		fail_msg("%s", d.msg);
	ir_dce(g);
	assert_int_equal(g->norder, 1000);
	ir_graph_free(g);
	assert_int_equal(released, 5);
	ir_graph_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_node_names),
		cmocka_unit_test(test_use_lists),
		cmocka_unit_test(test_toposort),
		cmocka_unit_test(test_dce),
		cmocka_unit_test(test_attrs),
		cmocka_unit_test(test_release),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
