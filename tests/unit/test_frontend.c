/* Tests of the ONNX loader: ModelProtos built in C with protobuf-c, packed
 * and loaded with onnx_load_buffer / onnx_load_file.  Covers every tensor
 * storage form, Constant forms, attribute kinds, symbolic input dims,
 * external data, and the refusals (each message must name the file and the
 * node or tensor). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "onnx_import.h"
#include "onnx_private.h"
#include "onnx.pb-c.h"

/* ---- a tiny ModelProto builder (every allocation tracked, freed at once) */

static void *allocs[8192];
static int nallocs;

static void *tmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	assert_non_null(p);
	assert_true(nallocs < 8192);
	allocs[nallocs++] = p;
	return p;
}

static void free_all(void)
{
	while (nallocs)
		free(allocs[--nallocs]);
}

static char *S(const char *s)
{
	char *p = tmalloc(strlen(s) + 1);
	strcpy(p, s);
	return p;
}

#define CAP 64
#define PUSH(arr, n, x) do { if (!(arr)) (arr) = tmalloc(CAP * sizeof *(arr)); assert_true((n) < CAP); (arr)[(n)++] = (x); } while (0)

typedef struct MB {
	Onnx__ModelProto m;
	Onnx__GraphProto g;
	Onnx__OperatorSetIdProto os;
} MB;

static MB *mb_new(int64_t opset)
{
	MB *b = tmalloc(sizeof *b);
	Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
	Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
	Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	b->m = m;
	b->g = g;
	b->os = os;
	b->m.has_ir_version = 1;
	b->m.ir_version = 8;
	b->m.graph = &b->g;
	b->g.name = S("testgraph");
	b->os.domain = S("");
	b->os.has_version = 1;
	b->os.version = opset;
	PUSH(b->m.opset_import, b->m.n_opset_import, &b->os);
	return b;
}

static Onnx__TensorProto *tensor(const char *name, int dt, int rank, const int64_t *dims)
{
	Onnx__TensorProto *t = tmalloc(sizeof *t);
	Onnx__TensorProto init = ONNX__TENSOR_PROTO__INIT;
	*t = init;
	t->name = name ? S(name) : NULL;
	t->has_data_type = 1;
	t->data_type = dt;
	t->n_dims = (size_t)rank;
	t->dims = tmalloc(sizeof(int64_t) * (rank ? rank : 1));
	if (rank)
		memcpy(t->dims, dims, sizeof(int64_t) * rank);
	return t;
}

static void set_raw(Onnx__TensorProto *t, const void *data, size_t n)
{
	t->has_raw_data = 1;
	t->raw_data.len = n;
	t->raw_data.data = tmalloc(n);
	memcpy(t->raw_data.data, data, n);
}

static void add_init(MB *b, Onnx__TensorProto *t)
{
	PUSH(b->g.initializer, b->g.n_initializer, t);
}

/* dims: array of strings; a number is dim_value, "" means neither, other
 * text dim_param. */
static Onnx__ValueInfoProto *vinfo(const char *name, int elem, int rank, const char **dims)
{
	Onnx__ValueInfoProto *v = tmalloc(sizeof *v);
	Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
	*v = vi;
	v->name = S(name);
	Onnx__TypeProto *tp = tmalloc(sizeof *tp);
	Onnx__TypeProto tpi = ONNX__TYPE_PROTO__INIT;
	*tp = tpi;
	Onnx__TypeProto__Tensor *tt = tmalloc(sizeof *tt);
	Onnx__TypeProto__Tensor tti = ONNX__TYPE_PROTO__TENSOR__INIT;
	*tt = tti;
	tt->has_elem_type = 1;
	tt->elem_type = elem;
	tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
	tp->tensor_type = tt;
	v->type = tp;
	if (rank >= 0) {
		Onnx__TensorShapeProto *sh = tmalloc(sizeof *sh);
		Onnx__TensorShapeProto shi = ONNX__TENSOR_SHAPE_PROTO__INIT;
		*sh = shi;
		tt->shape = sh;
		for (int k = 0; k < rank; k++) {
			Onnx__TensorShapeProto__Dimension *d = tmalloc(sizeof *d);
			Onnx__TensorShapeProto__Dimension di = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
			*d = di;
			char *end;
			long long x = strtoll(dims[k], &end, 10);
			if (dims[k][0] && !*end) {
				d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
				d->dim_value = x;
			} else if (dims[k][0]) {
				d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
				d->dim_param = S(dims[k]);
			}
			PUSH(sh->dim, sh->n_dim, d);
		}
	}
	return v;
}

static void add_input(MB *b, Onnx__ValueInfoProto *v)
{
	PUSH(b->g.input, b->g.n_input, v);
}

static void add_output(MB *b, const char *name)
{
	Onnx__ValueInfoProto *v = tmalloc(sizeof *v);
	Onnx__ValueInfoProto vi = ONNX__VALUE_INFO_PROTO__INIT;
	*v = vi;
	v->name = S(name);
	PUSH(b->g.output, b->g.n_output, v);
}

/* ins/outs: comma-separated names ("a,,b": empty middle name). */
static void split_into(const char *list, char ***arr, size_t *n)
{
	*n = 0;
	if (!list)
		return;
	const char *p = list;
	for (;;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		char *s = tmalloc(len + 1);
		memcpy(s, p, len);
		PUSH(*arr, *n, s);
		if (!c)
			break;
		p = c + 1;
	}
}

static Onnx__NodeProto *add_node(MB *b, const char *op, const char *name, const char *ins,
                                 const char *outs)
{
	Onnx__NodeProto *n = tmalloc(sizeof *n);
	Onnx__NodeProto ni = ONNX__NODE_PROTO__INIT;
	*n = ni;
	n->op_type = S(op);
	n->name = name ? S(name) : NULL;
	split_into(ins, &n->input, &n->n_input);
	split_into(outs, &n->output, &n->n_output);
	PUSH(b->g.node, b->g.n_node, n);
	return n;
}

static Onnx__AttributeProto *attr(Onnx__NodeProto *n, const char *name, int type)
{
	Onnx__AttributeProto *a = tmalloc(sizeof *a);
	Onnx__AttributeProto ai = ONNX__ATTRIBUTE_PROTO__INIT;
	*a = ai;
	a->name = S(name);
	a->has_type = 1;
	a->type = type;
	PUSH(n->attribute, n->n_attribute, a);
	return a;
}

static uint8_t *pack(MB *b, size_t *len)
{
	*len = onnx__model_proto__get_packed_size(&b->m);
	uint8_t *buf = tmalloc(*len);
	onnx__model_proto__pack(&b->m, buf);
	return buf;
}

static Graph *load(MB *b, Diag *d)
{
	size_t len;
	uint8_t *buf = pack(b, &len);
	diag_clear(d);
	return onnx_load_buffer(buf, len, "t.onnx", NULL, d);
}

/* Loading must fail and the message must contain every given fragment. */
static void expect_fail(MB *b, ...)
{
	Diag d;
	Graph *g = load(b, &d);
	if (g)
		ir_graph_free(g);
	assert_null(g);
	assert_true(d.failed);
	if (getenv("KILN_TEST_VERBOSE"))
		printf("  msg: %s\n", d.msg);
	assert_non_null(strstr(d.msg, "t.onnx: "));
	assert_null(strchr(d.msg, '\n'));
	va_list ap;
	va_start(ap, b);
	for (const char *frag; (frag = va_arg(ap, const char *));) {
		if (!strstr(d.msg, frag))
			fail_msg("message '%s' lacks '%s'", d.msg, frag);
	}
	va_end(ap);
}

static const int64_t D4x4[2] = { 4, 4 };
static const int64_t D4[1] = { 4 };
static const int64_t D3[1] = { 3 };

/* x[batch,4] @ W[4,4] + B[4] -> y */
static MB *mm_model(void)
{
	MB *b = mb_new(17);
	const char *dims[] = { "batch", "4" };
	add_input(b, vinfo("x", 1, 2, dims));
	float w[16];
	for (int i = 0; i < 16; i++)
		w[i] = (float)i;
	Onnx__TensorProto *W = tensor("W", 1, 2, D4x4);
	set_raw(W, w, sizeof w);
	add_init(b, W);
	Onnx__TensorProto *B = tensor("B", 1, 1, D4);
	B->n_float_data = 4;
	B->float_data = tmalloc(4 * sizeof(float));
	for (int i = 0; i < 4; i++)
		B->float_data[i] = 0.5f * (float)i;
	add_init(b, B);
	add_node(b, "MatMul", "mm", "x,W", "xw");
	add_node(b, "Add", "add", "xw,B", "y");
	add_output(b, "y");
	return b;
}

static void test_basic(void **state)
{
	Diag d;
	Graph *g = load(mm_model(), &d);
	if (!g)
		fail_msg("%s", d.msg);
	assert_string_equal(g->file, "t.onnx");
	assert_string_equal(g->name, "testgraph");
	assert_int_equal(g->opset, 17);
	assert_int_equal(g->ninputs, 1);
	assert_string_equal(IR_VAL(g, g->inputs[0])->name, "x");
	assert_int_equal(IR_VAL(g, g->inputs[0])->dtype, DT_F32);
	assert_int_equal(g->noutputs, 1);
	assert_string_equal(IR_VAL(g, g->outputs[0])->name, "y");
	assert_int_equal(g->norder, 2);
	Node *mm = IR_NODE(g, g->order[0]);
	assert_int_equal(mm->op, OP_MatMul);
	assert_string_equal(mm->name, "mm");
	assert_int_equal(mm->nin, 2);
	assert_int_equal(mm->in[0], g->inputs[0]);
	ValId W = ir_value_find(g, "W");
	assert_int_equal(mm->in[1], W);
	assert_int_equal(IR_VAL(g, W)->kind, V_CONST);
	assert_int_equal(IR_VAL(g, W)->nbytes, 64);
	assert_int_equal(IR_VAL(g, W)->rank, 2);
	assert_true(((const float *)IR_VAL(g, W)->data)[15] == 15.0f);
	ValId B = ir_value_find(g, "B");
	assert_true(((const float *)IR_VAL(g, B)->data)[3] == 1.5f);
	Node *add = IR_NODE(g, g->order[1]);
	assert_int_equal(add->op, OP_Add);
	assert_int_equal(add->in[0], mm->out[0]);
	assert_int_equal(add->out[0], g->outputs[0]);
	ir_graph_free(g);
	free_all();
}

/* One initializer per storage form; graph output = all of them. */
static void test_storage_forms(void **state)
{
	MB *b = mb_new(14);
	struct { const char *name; int dt; } i32forms[] = {
		{ "i32", 6 }, { "i16", 5 }, { "i8", 3 }, { "u8", 2 }, { "u16", 4 },
		{ "bool", 9 }, { "f16", 10 }, { "bf16", 16 },
	};
	int32_t vals[3] = { -2, 1, 0x3c00 };
	for (int k = 0; k < 8; k++) {
		Onnx__TensorProto *t = tensor(i32forms[k].name, i32forms[k].dt, 1, D3);
		t->n_int32_data = 3;
		t->int32_data = tmalloc(sizeof vals);
		memcpy(t->int32_data, vals, sizeof vals);
		add_init(b, t);
		add_output(b, i32forms[k].name);
	}
	Onnx__TensorProto *t = tensor("i64", 7, 1, D3);
	t->n_int64_data = 3;
	t->int64_data = tmalloc(3 * 8);
	t->int64_data[0] = -5; t->int64_data[1] = INT64_MAX; t->int64_data[2] = 7;
	add_init(b, t);
	t = tensor("f64", 11, 1, D3);
	t->n_double_data = 3;
	t->double_data = tmalloc(3 * 8);
	t->double_data[0] = 0.25; t->double_data[1] = -1e300; t->double_data[2] = 3;
	add_init(b, t);
	t = tensor("u64", 13, 1, D3);
	t->n_uint64_data = 3;
	t->uint64_data = tmalloc(3 * 8);
	t->uint64_data[0] = UINT64_MAX; t->uint64_data[1] = 1; t->uint64_data[2] = 2;
	add_init(b, t);
	t = tensor("u32", 12, 1, D3);
	t->n_uint64_data = 3;
	t->uint64_data = tmalloc(3 * 8);
	t->uint64_data[0] = 0xffffffffu; t->uint64_data[1] = 1; t->uint64_data[2] = 2;
	add_init(b, t);
	int64_t raw64[2] = { 11, -12 };
	int64_t d2 = 2;
	t = tensor("raw_i64", 7, 1, &d2);
	set_raw(t, raw64, sizeof raw64);
	add_init(b, t);
	t = tensor("scalar", 1, 0, NULL);
	t->n_float_data = 1;
	t->float_data = tmalloc(4);
	t->float_data[0] = 2.5f;
	add_init(b, t);
	int64_t d0[2] = { 0, 3 };
	t = tensor("empty", 1, 2, d0);   /* no data at all: fine, 0 elements */
	add_init(b, t);
	add_output(b, "i64");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const Value *v;
	v = IR_VAL(g, ir_value_find(g, "i32"));
	assert_int_equal(v->nbytes, 12);
	assert_int_equal(((const int32_t *)v->data)[0], -2);
	v = IR_VAL(g, ir_value_find(g, "i16"));
	assert_int_equal(v->nbytes, 6);
	assert_int_equal(((const int16_t *)v->data)[0], -2);
	assert_int_equal(((const int16_t *)v->data)[2], 0x3c00);
	v = IR_VAL(g, ir_value_find(g, "i8"));
	assert_int_equal(v->nbytes, 3);
	assert_int_equal(((const int8_t *)v->data)[0], -2);
	assert_int_equal(((const int8_t *)v->data)[1], 1);
	v = IR_VAL(g, ir_value_find(g, "u8"));
	assert_int_equal(((const uint8_t *)v->data)[0], 0xfe);
	v = IR_VAL(g, ir_value_find(g, "u16"));
	assert_int_equal(((const uint16_t *)v->data)[0], 0xfffe);
	v = IR_VAL(g, ir_value_find(g, "bool"));
	assert_int_equal(v->nbytes, 3);
	assert_int_equal(((const uint8_t *)v->data)[0], 1);
	assert_int_equal(((const uint8_t *)v->data)[1], 1);
	assert_int_equal(((const uint8_t *)v->data)[2], 1);
	v = IR_VAL(g, ir_value_find(g, "f16"));
	assert_int_equal(v->dtype, DT_F16);
	assert_int_equal(v->nbytes, 6);
	assert_int_equal(((const uint16_t *)v->data)[2], 0x3c00);
	v = IR_VAL(g, ir_value_find(g, "bf16"));
	assert_int_equal(v->dtype, DT_BF16);
	assert_int_equal(((const uint16_t *)v->data)[1], 1);
	v = IR_VAL(g, ir_value_find(g, "i64"));
	assert_int_equal(((const int64_t *)v->data)[1], INT64_MAX);
	v = IR_VAL(g, ir_value_find(g, "f64"));
	assert_true(((const double *)v->data)[1] == -1e300);
	v = IR_VAL(g, ir_value_find(g, "u64"));
	assert_true(((const uint64_t *)v->data)[0] == UINT64_MAX);
	v = IR_VAL(g, ir_value_find(g, "u32"));
	assert_int_equal(v->nbytes, 12);
	assert_true(((const uint32_t *)v->data)[0] == 0xffffffffu);
	v = IR_VAL(g, ir_value_find(g, "raw_i64"));
	assert_int_equal(((const int64_t *)v->data)[1], -12);
	v = IR_VAL(g, ir_value_find(g, "scalar"));
	assert_int_equal(v->rank, 0);
	assert_true(*(const float *)v->data == 2.5f);
	v = IR_VAL(g, ir_value_find(g, "empty"));
	assert_int_equal(v->nbytes, 0);
	assert_int_equal(v->rank, 2);
	assert_non_null(v->data);
	ir_graph_free(g);
	free_all();
}

static void test_constant_forms(void **state)
{
	MB *b = mb_new(13);
	Onnx__NodeProto *n = add_node(b, "Constant", "c_t", NULL, "ct");
	Onnx__AttributeProto *a = attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	a->t = tensor(NULL, 7, 1, D3);
	a->t->n_int64_data = 3;
	a->t->int64_data = tmalloc(24);
	a->t->int64_data[2] = 42;
	n = add_node(b, "Constant", "c_f", NULL, "cf");
	a = attr(n, "value_float", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1;
	a->f = 1.25f;
	n = add_node(b, "Constant", "c_fs", NULL, "cfs");
	a = attr(n, "value_floats", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
	a->n_floats = 2;
	a->floats = tmalloc(8);
	a->floats[1] = -3.0f;
	n = add_node(b, "Constant", "c_i", NULL, "ci");
	a = attr(n, "value_int", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1;
	a->i = -9;
	n = add_node(b, "Constant", "c_is", NULL, "cis");
	a = attr(n, "value_ints", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = 4;
	a->ints = tmalloc(32);
	a->ints[3] = 77;
	add_node(b, "Reshape", "r", "cfs,cis", "y");
	add_output(b, "y");
	add_output(b, "ct");
	add_output(b, "cf");
	add_output(b, "ci");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	assert_int_equal(g->norder, 1);   /* Constants are not nodes */
	const Value *v = IR_VAL(g, ir_value_find(g, "ct"));
	assert_int_equal(v->kind, V_CONST);
	assert_int_equal(v->dtype, DT_I64);
	assert_int_equal(((const int64_t *)v->data)[2], 42);
	v = IR_VAL(g, ir_value_find(g, "cf"));
	assert_int_equal(v->dtype, DT_F32);
	assert_int_equal(v->rank, 0);
	assert_true(*(const float *)v->data == 1.25f);
	v = IR_VAL(g, ir_value_find(g, "cfs"));
	assert_int_equal(v->rank, 1);
	assert_int_equal(v->nbytes, 8);
	assert_true(((const float *)v->data)[1] == -3.0f);
	v = IR_VAL(g, ir_value_find(g, "ci"));
	assert_int_equal(v->dtype, DT_I64);
	assert_int_equal(*(const int64_t *)v->data, -9);
	v = IR_VAL(g, ir_value_find(g, "cis"));
	assert_int_equal(v->nbytes, 32);
	assert_int_equal(((const int64_t *)v->data)[3], 77);
	Node *r = IR_NODE(g, g->order[0]);
	assert_int_equal(r->in[1], ir_value_find(g, "cis"));
	ir_graph_free(g);
	free_all();

	b = mb_new(13);
	n = add_node(b, "Constant", "c_s", NULL, "cs");
	a = attr(n, "value_string", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	a->has_s = 1;
	a->s.data = (uint8_t *)S("hi");
	a->s.len = 2;
	add_output(b, "cs");
	expect_fail(b, "node 'c_s' (Constant)", "string", NULL);
	free_all();
}

static void test_attributes(void **state)
{
	MB *b = mb_new(17);
	const char *dims[] = { "2", "3" };
	add_input(b, vinfo("x", 1, 2, dims));
	Onnx__NodeProto *n = add_node(b, "Transpose", "tr", "x", "y");
	Onnx__AttributeProto *a;
	a = attr(n, "i", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = -7;
	a = attr(n, "f", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1; a->f = 0.5f;
	a = attr(n, "s", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
	a->has_s = 1; a->s.data = (uint8_t *)S("tanh"); a->s.len = 4;
	a = attr(n, "perm", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = 2; a->ints = tmalloc(16); a->ints[0] = 1; a->ints[1] = 0;
	a = attr(n, "fs", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
	a->n_floats = 3; a->floats = tmalloc(12); a->floats[2] = 9.0f;
	a = attr(n, "ss", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
	a->n_strings = 2; a->strings = tmalloc(2 * sizeof(ProtobufCBinaryData));
	a->strings[0].data = (uint8_t *)S("ab"); a->strings[0].len = 2;
	a->strings[1].data = (uint8_t *)S("xyz"); a->strings[1].len = 3;
	a = attr(n, "t", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	int64_t one = 1;
	a->t = tensor("", 1, 1, &one);
	float fv = 6.5f;
	set_raw(a->t, &fv, 4);
	a = attr(n, "untyped", 0);   /* old exports leave type unset */
	a->has_type = 0; a->has_i = 1; a->i = 3;
	add_output(b, "y");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	NodeId id = g->order[0];
	assert_int_equal(ir_attr_int(g, id, "i", 0), -7);
	assert_true(ir_attr_float(g, id, "f", 0) == 0.5f);
	assert_string_equal(ir_attr_str(g, id, "s", ""), "tanh");
	int cnt;
	const int64_t *perm = ir_attr_ints(g, id, "perm", &cnt);
	assert_int_equal(cnt, 2);
	assert_int_equal(perm[0], 1);
	const float *fs = ir_attr_floats(g, id, "fs", &cnt);
	assert_int_equal(cnt, 3);
	assert_true(fs[2] == 9.0f);
	const Attr *ss = ir_attr_get(g, id, "ss");
	assert_non_null(ss);
	assert_int_equal(ss->kind, A_STRINGS);
	assert_int_equal(ss->n, 2);
	assert_string_equal(ss->u.strs[1], "xyz");
	const Attr *t = ir_attr_get(g, id, "t");
	assert_non_null(t);
	assert_int_equal(t->kind, A_TENSOR);
	assert_int_equal(t->u.t->dtype, DT_F32);
	assert_int_equal(t->u.t->rank, 1);
	assert_true(*(const float *)t->u.t->data == 6.5f);
	assert_int_equal(ir_attr_int(g, id, "untyped", 0), 3);
	ir_graph_free(g);
	free_all();

	/* a GRAPH attribute is refused naming the node and attribute */
	b = mb_new(17);
	add_input(b, vinfo("c", 9, 0, NULL));
	n = add_node(b, "Identity", "withgraph", "c", "y");
	a = attr(n, "then_branch", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
	Onnx__GraphProto *sub = tmalloc(sizeof *sub);
	Onnx__GraphProto gi = ONNX__GRAPH_PROTO__INIT;
	*sub = gi;
	a->g = sub;
	add_output(b, "y");
	expect_fail(b, "node 'withgraph' (Identity)", "then_branch", NULL);
	free_all();
}

static void dimstr(Graph *g, DimId d, char *buf)
{
	ir_dim_str(g, d, buf, 64);
}

static void test_symbolic_dims(void **state)
{
	MB *b = mb_new(20);
	const char *dims[] = { "batch", "s25 + s41", "", "64" };
	add_input(b, vinfo("x", 1, 4, dims));
	add_input(b, vinfo("noshape", 7, -1, NULL));
	add_node(b, "Identity", NULL, "x", "y");
	add_output(b, "y");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const Value *x = IR_VAL(g, g->inputs[0]);
	assert_int_equal(x->rank, 4);
	char buf[64];
	dimstr(g, x->dims[0], buf);
	assert_string_equal(buf, "batch");
	assert_int_equal(x->dims[1], ir_dim_add(g, ir_dim_sym(g, "s41"), ir_dim_sym(g, "s25")));
	dimstr(g, x->dims[2], buf);
	assert_string_equal(buf, "x_d2");
	int64_t c = 0;
	assert_true(ir_dim_is_const(g, x->dims[3], &c));
	assert_int_equal(c, 64);
	assert_int_equal(IR_VAL(g, g->inputs[1])->rank, -1);
	/* empty node name: OpType_<index> */
	assert_string_equal(IR_NODE(g, g->order[0])->name, "Identity_0");
	ir_graph_free(g);
	free_all();

	b = mb_new(20);
	const char *neg[] = { "-3" };
	add_input(b, vinfo("x", 1, 1, neg));
	add_output(b, "x");
	expect_fail(b, "graph input 'x'", "negative", NULL);
	free_all();

	/* a dim_param that is not an expression is a name, whatever it holds */
	b = mb_new(20);
	const char *named[] = { "s1 +* )", "batch-size" };
	add_input(b, vinfo("xb", 1, 2, named));
	add_output(b, "xb");
	g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	x = IR_VAL(g, g->inputs[0]);
	for (int k = 0; k < 2; k++) {
		const DimNode *dn = ir_dim_node(g, x->dims[k]);
		assert_int_equal(dn->kind, DIM_SYM);
		assert_string_equal(ir_sym_name(g, (int)dn->c), named[k]);
	}
	ir_graph_free(g);
	free_all();
}

static void test_input_initializer(void **state)
{
	MB *b = mm_model();
	const char *wd[] = { "4", "4" };
	add_input(b, vinfo("W", 1, 2, wd));   /* old exports list W as input too */
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	assert_int_equal(g->ninputs, 1);
	ValId W = ir_value_find(g, "W");
	assert_int_equal(IR_VAL(g, W)->kind, V_CONST);
	assert_int_equal(IR_NODE(g, g->order[0])->in[1], W);
	ir_graph_free(g);
	free_all();
}

static void test_optional_and_generated(void **state)
{
	MB *b = mb_new(13);
	const char *dims[] = { "4" };
	add_input(b, vinfo("x", 1, 1, dims));
	add_input(b, vinfo("hi", 1, 0, NULL));
	add_node(b, "Clip", "clip", "x,,hi", "y");
	add_node(b, "Dropout", "drop", "y,,", "z,");
	add_node(b, "Split", "split", "z", ",b");
	add_output(b, "b");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	Node *clip = IR_NODE(g, g->order[0]);
	assert_int_equal(clip->nin, 3);
	assert_int_equal(clip->in[1], -1);
	assert_int_equal(clip->in[2], g->inputs[1]);
	Node *drop = IR_NODE(g, g->order[1]);
	assert_int_equal(drop->nin, 1);   /* trailing empty inputs dropped */
	assert_int_equal(drop->nout, 1);
	Node *split = IR_NODE(g, g->order[2]);
	assert_int_equal(split->nout, 2);
	assert_non_null(IR_VAL(g, split->out[0])->name);
	assert_true(IR_VAL(g, split->out[0])->name[0] != 0);
	assert_int_equal(split->out[1], g->outputs[0]);
	ir_graph_free(g);
	free_all();
}

/* ---- refusals ----------------------------------------------------------- */

static void test_refuse_bytes(void **state)
{
	Diag d;
	diag_clear(&d);
	assert_null(onnx_load_buffer("", 0, "t.onnx", NULL, &d));
	assert_non_null(strstr(d.msg, "t.onnx: not an ONNX model"));
	uint8_t rnd[512];
	uint32_t s = 12345;
	for (size_t i = 0; i < sizeof rnd; i++) {
		s = s * 1103515245u + 12345u;
		rnd[i] = (uint8_t)(s >> 16);
	}
	diag_clear(&d);
	assert_null(onnx_load_buffer(rnd, sizeof rnd, "t.onnx", NULL, &d));
	assert_non_null(strstr(d.msg, "t.onnx: not an ONNX model"));
	/* truncated: every prefix must be refused or load cleanly, never crash */
	size_t len;
	uint8_t *buf = pack(mm_model(), &len);
	int refused = 0;
	for (size_t k = 0; k < len; k++) {
		diag_clear(&d);
		Graph *g = onnx_load_buffer(buf, k, "t.onnx", NULL, &d);
		if (g)
			ir_graph_free(g);
		else {
			refused++;
			assert_non_null(strstr(d.msg, "t.onnx: "));
		}
	}
	assert_true(refused > (int)len / 2);
	diag_clear(&d);
	assert_null(onnx_load_buffer(buf, len / 2, "t.onnx", NULL, &d));
	assert_non_null(strstr(d.msg, "t.onnx: not an ONNX model ("));
	/* a model without a graph */
	MB *b = mb_new(17);
	b->m.graph = NULL;
	expect_fail(b, "no graph", NULL);
	free_all();
}

static void test_refuse_opset(void **state)
{
	MB *b = mm_model();
	b->os.version = 0;
	expect_fail(b, "opset version 0 of the default domain is not supported (kiln knows 1-21)", NULL);
	b->os.version = 22;
	expect_fail(b, "opset version 22", NULL);
	b->m.n_opset_import = 0;
	expect_fail(b, "opset", NULL);
	free_all();

	b = mm_model();
	Onnx__NodeProto *n = add_node(b, "Inverse", "fmm", "x,W", "q");
	n->domain = S("com.microsoft");
	expect_fail(b, "t.onnx: unsupported ops: com.microsoft.Inverse x1 (node 'fmm')", NULL);
	free_all();
}

static void test_refuse_nodes(void **state)
{
	MB *b = mm_model();
	add_node(b, "FrobnicateX", "frob", "y", "q");
	expect_fail(b, "t.onnx: unsupported ops: FrobnicateX (opset 17) x1 (node 'frob')", NULL);
	free_all();

	b = mm_model();
	add_node(b, "KlnGelu", "kg", "y", "q");   /* kiln's own ops are not ONNX */
	expect_fail(b, "unsupported ops: KlnGelu (opset 17) x1 (node 'kg')", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Add", "add2", "y,foo", "q");
	expect_fail(b, "node 'add2' (Add): input 'foo' is not defined", NULL);
	free_all();

	/* a cycle: one line naming a node on it */
	b = mb_new(17);
	const char *dims[] = { "4" };
	add_input(b, vinfo("x", 1, 1, dims));
	add_node(b, "Add", "c1", "x,c", "a");
	add_node(b, "Neg", "c2", "a", "b");
	add_node(b, "Neg", "c3", "b", "c");
	add_output(b, "b");
	expect_fail(b, "t.onnx: node 'c", "is on a cycle", NULL);
	free_all();
	b = mb_new(17);
	add_input(b, vinfo("x", 1, 1, dims));
	add_node(b, "Add", "self", "x,a", "a");
	add_output(b, "a");
	expect_fail(b, "t.onnx: node 'self' (Add) is on a cycle", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Gather", "g3", "y,W,B", "q");
	expect_fail(b, "node 'g3' (Gather): expects 2 inputs, has 3", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Slice", "sl", "y", "q");
	expect_fail(b, "node 'sl' (Slice): expects 3 to 5 inputs, has 1", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Add", "a2", "y,,B", "q");
	expect_fail(b, "node 'a2' (Add): expects 2 inputs, has 3", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Add", "a3", ",B", "q");
	expect_fail(b, "node 'a3' (Add)", "empty", NULL);
	free_all();

	b = mm_model();
	add_node(b, "Neg", "redef", "y", "xw");
	expect_fail(b, "node 'redef' (Neg)", "'xw'", NULL);
	free_all();

	b = mm_model();
	const char *xd[] = { "4" };
	add_input(b, vinfo("x", 1, 1, xd));
	expect_fail(b, "graph input 'x' is listed twice", NULL);
	free_all();

	b = mm_model();
	add_output(b, "nothere");
	expect_fail(b, "graph output 'nothere' is not defined", NULL);
	free_all();
}

static void test_refuse_tensors(void **state)
{
	MB *b = mm_model();
	Onnx__TensorProto *W = b->g.initializer[0];
	W->raw_data.len = 12;
	expect_fail(b, "t.onnx: initializer 'W': raw_data has 12 bytes, dims [4, 4] of f32 need 64", NULL);
	W->raw_data.data = tmalloc(68);
	W->raw_data.len = 68;
	expect_fail(b, "initializer 'W': raw_data has 68 bytes", NULL);
	free_all();

	b = mm_model();
	b->g.initializer[1]->n_float_data = 3;
	expect_fail(b, "initializer 'B': float_data has 3 elements, dims [4] of f32 need 4", NULL);
	free_all();

	b = mm_model();
	Onnx__TensorProto *s = tensor("str", 8, 1, D3);
	add_init(b, s);
	expect_fail(b, "initializer 'str'", "string", NULL);
	free_all();

	b = mm_model();
	add_init(b, tensor("cplx", 14, 1, D3));
	expect_fail(b, "initializer 'cplx'", "complex", NULL);
	free_all();

	b = mm_model();
	int64_t negd[2] = { 2, -1 };
	add_init(b, tensor("neg", 1, 2, negd));
	expect_fail(b, "initializer 'neg'", "negative", NULL);
	free_all();

	b = mm_model();
	int64_t huge[3] = { INT64_MAX, INT64_MAX, 4 };
	add_init(b, tensor("huge", 1, 3, huge));
	expect_fail(b, "initializer 'huge'", "too large", NULL);
	free_all();

	b = mm_model();
	Onnx__TensorProto *dup = tensor("B", 1, 1, D4);
	dup->n_float_data = 4;
	dup->float_data = tmalloc(16);
	add_init(b, dup);
	expect_fail(b, "'B'", "twice", NULL);
	free_all();

	/* Constant whose tensor is short */
	b = mm_model();
	Onnx__NodeProto *n = add_node(b, "Constant", "cshort", NULL, "cs");
	Onnx__AttributeProto *a = attr(n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
	a->t = tensor("", 7, 1, D3);
	a->t->n_int64_data = 1;
	a->t->int64_data = tmalloc(8);
	expect_fail(b, "node 'cshort' (Constant)", "int64_data has 1 elements", NULL);
	free_all();
}

/* ---- external data ------------------------------------------------------ */

static char tmpdir[256];

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* The mm model with W stored externally at location/offset. */
static MB *ext_model(const char *location, const char *offset)
{
	MB *b = mm_model();
	Onnx__TensorProto *W = b->g.initializer[0];
	W->has_raw_data = 0;
	W->has_data_location = 1;
	W->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
	const char *kv[3][2] = { { "location", location }, { "offset", offset }, { "length", "64" } };
	for (int i = 0; i < 3; i++) {
		if (!kv[i][1])
			continue;
		Onnx__StringStringEntryProto *e = tmalloc(sizeof *e);
		Onnx__StringStringEntryProto ei = ONNX__STRING_STRING_ENTRY_PROTO__INIT;
		*e = ei;
		e->key = S(kv[i][0]);
		e->value = S(kv[i][1]);
		PUSH(W->external_data, W->n_external_data, e);
	}
	return b;
}

/* Writes the model into tmpdir/name and loads it with onnx_load_file. */
static Graph *load_file_model(MB *b, const char *name, Diag *d, char *path, size_t pn)
{
	size_t len;
	uint8_t *buf = pack(b, &len);
	snprintf(path, pn, "%s/%s", tmpdir, name);
	write_file(path, buf, len);
	diag_clear(d);
	return onnx_load_file(path, d);
}

static void expect_file_fail(MB *b, const char *frag1, const char *frag2)
{
	char path[512];
	Diag d;
	Graph *g = load_file_model(b, "model.onnx", &d, path, sizeof path);
	if (g)
		ir_graph_free(g);
	assert_null(g);
	if (getenv("KILN_TEST_VERBOSE"))
		printf("  msg: %s\n", d.msg);
	if (!strstr(d.msg, path) || !strstr(d.msg, "initializer 'W'") || !strstr(d.msg, frag1) ||
	    (frag2 && !strstr(d.msg, frag2)))
		fail_msg("unexpected message: %s", d.msg);
}

static int setup_tmp(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln_fe_XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char p[512];
	snprintf(p, sizeof p, "%s/sub", tmpdir);
	mkdir(p, 0755);
	float w[32];
	for (int i = 0; i < 32; i++)
		w[i] = (float)(100 + i);
	snprintf(p, sizeof p, "%s/weights.bin", tmpdir);
	write_file(p, w, sizeof w);
	snprintf(p, sizeof p, "%s/sub/w2.bin", tmpdir);
	write_file(p, w, sizeof w);
	/* a file outside the model's folder, and a symlink to it inside */
	snprintf(p, sizeof p, "%s_outside.bin", tmpdir);
	write_file(p, w, sizeof w);
	char link[512];
	snprintf(link, sizeof link, "%s/sub/escape.bin", tmpdir);
	assert_int_equal(symlink(p, link), 0);
	return 0;
}

static int teardown_tmp(void **state)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s_outside.bin'", tmpdir, tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- versions, upgrades, order ------------------------------------------ */

static int act_at(const char *op, int64_t opset, int64_t *since)
{
	int64_t s = -1;
	int a = onnx_op_version(op, opset, &s);
	if (since)
		*since = s;
	return a;
}

static void test_version_table(void **state)
{
	/* every op of kiln that ONNX has, and Constant, has rows */
	for (int op = 0; op < OP_COUNT; op++)
		if (ir_opinfo[op].kind != K_FUSED && onnx_op_nversions(op) == 0)
			fail_msg("op %s has no row in onnx_versions.def", ir_opname((Op)op));
	assert_true(onnx_op_nversions(OP_COUNT) > 0);   /* Constant */
	int64_t since;
	assert_int_equal(act_at("Clip", 6, &since), UA_clip_v6);
	assert_int_equal(since, 6);
	assert_int_equal(act_at("Clip", 10, &since), UA_clip_v6);
	assert_int_equal(act_at("Clip", 11, &since), UA_same);
	assert_int_equal(since, 11);
	assert_int_equal(act_at("Unsqueeze", 12, NULL), UA_unsqueeze_v1);
	assert_int_equal(act_at("Unsqueeze", 13, NULL), UA_same);
	assert_int_equal(act_at("ReduceSum", 12, NULL), UA_reduce_axes_attr);
	assert_int_equal(act_at("ReduceSum", 13, NULL), UA_same);
	assert_int_equal(act_at("ReduceMean", 17, NULL), UA_reduce_axes_attr);
	assert_int_equal(act_at("ReduceMean", 18, NULL), UA_same);
	assert_int_equal(act_at("Softmax", 12, NULL), UA_softmax_v1);
	assert_int_equal(act_at("Softmax", 13, NULL), UA_same);
	assert_int_equal(act_at("Add", 6, NULL), UA_broadcast_v1);
	assert_int_equal(act_at("Add", 7, NULL), UA_same);
	assert_int_equal(act_at("Abs", 5, NULL), UA_drop_consumed);
	assert_int_equal(act_at("Not", 1, NULL), UA_same);
	assert_int_equal(act_at("Tile", 5, NULL), UA_unsupported);
	assert_int_equal(act_at("Tile", 6, NULL), UA_same);
	assert_int_equal(act_at("Pad", 1, NULL), UA_unsupported);
	assert_int_equal(act_at("Pad", 10, &since), UA_pad_v2);
	assert_int_equal(since, 2);
	assert_int_equal(act_at("Pad", 11, NULL), UA_same);
	assert_int_equal(act_at("Pad", 19, &since), UA_same);
	assert_int_equal(since, 19);
	assert_int_equal(act_at("TopK", 9, NULL), UA_topk_v1);
	assert_int_equal(act_at("TopK", 10, NULL), UA_same);
	assert_int_equal(act_at("ScatterND", 18, &since), UA_same);
	assert_int_equal(since, 18);
	assert_int_equal(act_at("Split", 18, &since), UA_same);
	assert_int_equal(since, 18);
	assert_int_equal(act_at("Cast", 21, &since), UA_same);
	assert_int_equal(since, 21);
	/* before an op's first version: its first row */
	assert_int_equal(act_at("LayerNormalization", 11, &since), UA_same);
	assert_int_equal(since, 17);
	assert_int_equal(act_at("Conv", 13, NULL), -1);
	assert_int_equal(act_at("KlnGemm", 13, NULL), -1);
	/* an ONNX op that only an upgrade imports, at every version */
	assert_int_equal(act_at("CastLike", 15, &since), UA_castlike);
	assert_int_equal(act_at("CastLike", 21, &since), UA_castlike);
	assert_int_equal(since, 21);
	assert_string_equal(onnx_action_name(UA_clip_v6), "clip_v6");
}

/* The node of g whose first output is named out. */
static const Node *producer(Graph *g, const char *out)
{
	ValId v = ir_value_find(g, out);
	assert_true(v >= 0);
	assert_true(IR_VAL(g, v)->def >= 0);
	return IR_NODE(g, IR_VAL(g, v)->def);
}

static const int64_t *const_i64(Graph *g, ValId v, int n)
{
	assert_true(v >= 0);
	assert_int_equal(IR_VAL(g, v)->kind, V_CONST);
	assert_int_equal(IR_VAL(g, v)->dtype, DT_I64);
	assert_int_equal(IR_VAL(g, v)->nbytes, (size_t)n * 8);
	return IR_VAL(g, v)->data;
}

static Onnx__AttributeProto *attr_ints(Onnx__NodeProto *n, const char *name, int cnt,
                                       const int64_t *v)
{
	Onnx__AttributeProto *a = attr(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
	a->n_ints = (size_t)cnt;
	a->ints = tmalloc(sizeof(int64_t) * (cnt ? cnt : 1));
	memcpy(a->ints, v, sizeof(int64_t) * cnt);
	return a;
}

static void test_upgrades(void **state)
{
	MB *b = mb_new(10);
	const char *dims[] = { "2", "3", "4" };
	add_input(b, vinfo("x", 1, 3, dims));
	Onnx__NodeProto *n = add_node(b, "Clip", "clip", "x", "c");
	Onnx__AttributeProto *a = attr(n, "min", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1; a->f = -0.5f;
	a = attr(n, "max", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1; a->f = 0.25f;
	static const int64_t ax12[2] = { 1, 2 }, ax0[1] = { 0 };
	attr_ints(add_node(b, "Unsqueeze", "unsq", "c", "u"), "axes", 2, ax12);
	attr_ints(add_node(b, "Squeeze", "sq", "u", "s"), "axes", 2, ax12);
	attr_ints(add_node(b, "ReduceSum", "rs", "s", "r"), "axes", 1, ax0);
	add_node(b, "Softmax", "sm", "x", "y");      /* axis 1 of rank 3: coerced to 2-D */
	a = attr(add_node(b, "Softmax", "sm2", "x", "y2"), "axis",
	         ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = 2;                      /* the last axis: the new form */
	attr_ints(add_node(b, "Split", "sp", "x", "p0,p1"), "split", 2, (const int64_t[]){ 1, 3 });
	a = attr(b->g.node[b->g.n_node - 1], "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = 2;
	add_output(b, "r");
	add_output(b, "y");
	add_output(b, "y2");
	add_output(b, "p1");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const Node *clip = producer(g, "c");
	assert_int_equal(clip->op, OP_Clip);
	assert_int_equal(clip->nin, 3);
	assert_null(ir_attr_get(g, (NodeId)(clip - g->nodes), "min"));
	assert_true(*(const float *)IR_VAL(g, clip->in[1])->data == -0.5f);
	assert_true(*(const float *)IR_VAL(g, clip->in[2])->data == 0.25f);
	const Node *unsq = producer(g, "u");
	assert_int_equal(unsq->nin, 2);
	assert_int_equal(const_i64(g, unsq->in[1], 2)[1], 2);
	assert_null(ir_attr_get(g, (NodeId)(unsq - g->nodes), "axes"));
	assert_int_equal(producer(g, "s")->nin, 2);
	const Node *rs = producer(g, "r");
	assert_int_equal(rs->nin, 2);
	assert_int_equal(const_i64(g, rs->in[1], 1)[0], 0);
	/* Softmax-1 at axis 1 of a rank-3 input: Reshape(Softmax(Flatten)) */
	const Node *y = producer(g, "y");
	assert_int_equal(y->op, OP_Reshape);
	const Node *sm = IR_NODE(g, IR_VAL(g, y->in[0])->def);
	assert_int_equal(sm->op, OP_Softmax);
	assert_int_equal(ir_attr_int(g, (NodeId)(sm - g->nodes), "axis", 0), -1);
	const Node *fl = IR_NODE(g, IR_VAL(g, sm->in[0])->def);
	assert_int_equal(fl->op, OP_Flatten);
	assert_int_equal(ir_attr_int(g, (NodeId)(fl - g->nodes), "axis", 0), 1);
	const Node *y2 = producer(g, "y2");
	assert_int_equal(y2->op, OP_Softmax);
	assert_int_equal(y2->in[0], g->inputs[0]);
	const Node *sp = producer(g, "p1");
	assert_int_equal(sp->op, OP_Split);
	assert_int_equal(sp->nin, 2);
	assert_int_equal(const_i64(g, sp->in[1], 2)[1], 3);
	assert_int_equal(ir_attr_int(g, (NodeId)(sp - g->nodes), "axis", 0), 2);
	ir_graph_free(g);
	free_all();

	/* legacy broadcasting: B[3] at axis 1 of A[2,3,4] gets a trailing 1;
	 * consumed_inputs (opset 1-5) is dropped */
	b = mb_new(5);
	add_input(b, vinfo("x", 1, 3, dims));
	add_input(b, vinfo("v", 1, 1, (const char *[]){ "3" }));
	n = add_node(b, "Add", "add", "x,v", "z");
	a = attr(n, "broadcast", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = 1;
	a = attr(n, "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = 1;
	attr_ints(add_node(b, "Relu", "relu", "z", "w"), "consumed_inputs", 1, ax0);
	add_output(b, "w");
	g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const Node *add = producer(g, "z");
	assert_int_equal(add->op, OP_Add);
	assert_int_equal(add->nattrs, 0);
	const Node *bu = IR_NODE(g, IR_VAL(g, add->in[1])->def);
	assert_int_equal(bu->op, OP_Unsqueeze);
	assert_int_equal(bu->in[0], g->inputs[1]);
	assert_int_equal(const_i64(g, bu->in[1], 1)[0], 1);
	assert_int_equal(producer(g, "w")->nattrs, 0);
	ir_graph_free(g);
	free_all();

	/* Clip-6 of an f64 input: the f32 bounds are cast to f64; Softmax-11
	 * of an input of unknown rank: the general (Flatten) form */
	b = mb_new(10);
	add_input(b, vinfo("x", 11, 3, dims));
	add_input(b, vinfo("r", 1, -1, NULL));
	a = attr(add_node(b, "Clip", "clip", "x", "c"), "max",
	         ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1; a->f = 2.0f;
	a = attr(add_node(b, "Softmax", "sm", "r", "y"), "axis",
	         ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = -1;
	add_output(b, "y");
	add_output(b, "c");
	g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	clip = producer(g, "c");
	assert_int_equal(clip->nin, 3);
	assert_int_equal(clip->in[1], -1);
	const Node *cast = IR_NODE(g, IR_VAL(g, clip->in[2])->def);
	assert_int_equal(cast->op, OP_Cast);
	assert_int_equal(ir_attr_int(g, (NodeId)(cast - g->nodes), "to", 0), DT_F64);
	assert_int_equal(producer(g, "y")->op, OP_Reshape);
	ir_graph_free(g);
	free_all();

	/* an Unsqueeze-11 without axes is refused naming the node */
	b = mb_new(11);
	add_input(b, vinfo("x", 1, 3, dims));
	add_node(b, "Unsqueeze", "nox", "x", "u");
	add_output(b, "u");
	expect_fail(b, "node 'nox' (Unsqueeze)", "no attribute 'axes'", NULL);
	free_all();
}

/* Nodes out of order are sorted; a sorted graph keeps its order. */
/* CastLike: a Cast to input 1's dtype (an initializer's, a graph input's,
 * a node output's as inference knows it); the target's values are not
 * read, and a missing target is refused in one line. */
static void test_castlike(void **state)
{
	MB *b = mb_new(15);
	const char *dims[] = { "2", "3" };
	add_input(b, vinfo("x", 1, 2, dims));          /* f32 */
	add_input(b, vinfo("h", 10, 2, dims));         /* f16 */
	Onnx__TensorProto *t = tensor("like64", 7, 1, D3);
	set_raw(t, (int64_t[]){ 1, 2, 3 }, 24);
	add_init(b, t);
	add_node(b, "CastLike", "cl", "x,like64", "y");
	add_node(b, "CastLike", "cl2", "y,h", "z");
	add_node(b, "Shape", "shp", "x", "s");
	Onnx__AttributeProto *a = attr(add_node(b, "CastLike", "cl3", "x,s", "w"), "saturate",
	                               ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
	a->has_i = 1; a->i = 0;
	add_output(b, "z");
	add_output(b, "w");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const char *outs[] = { "y", "z", "w" };
	const int64_t want[] = { DT_I64, DT_F16, DT_I64 };
	for (int i = 0; i < 3; i++) {
		const Node *c = producer(g, outs[i]);
		assert_int_equal(c->op, OP_Cast);
		assert_int_equal(c->nin, 1);
		assert_int_equal(ir_attr_int(g, (NodeId)(c - g->nodes), "to", -1), want[i]);
	}
	assert_int_equal(ir_attr_int(g, (NodeId)(producer(g, "w") - g->nodes), "saturate", 1), 0);
	ir_graph_free(g);
	free_all();

	b = mb_new(15);
	add_input(b, vinfo("x", 1, 2, dims));
	add_node(b, "CastLike", "bad", "x", "y");
	add_output(b, "y");
	expect_fail(b, "node 'bad' (CastLike)", "expects 2 inputs, has 1", NULL);
}

/* com.microsoft ops (onnx_contrib.c): an output past a skipped one lands on
 * the right IR value, the rewrite's ops and attributes, the ONNX-domain
 * SimplifiedLayerNormalization, the refusals' wording. */
static void test_contrib(void **state)
{
	const char *dims[] = { "batch", "4" };
	MB *b = mb_new(17);
	add_input(b, vinfo("x", 1, 2, dims));
	add_input(b, vinfo("s", 1, 2, dims));
	Onnx__TensorProto *G = tensor("G", 1, 1, D4);
	set_raw(G, (float[]){ 1, 2, 3, 4 }, 16);
	add_init(b, G);
	Onnx__NodeProto *n = add_node(b, "SkipLayerNormalization", "sln", "x,s,G", "y,,,sum");
	n->domain = S("com.microsoft");
	add_node(b, "SimplifiedLayerNormalization", "rms", "sum,G", "r");
	n = add_node(b, "QuickGelu", "qg", "r", "q");
	n->domain = S("com.microsoft");
	Onnx__AttributeProto *a = attr(n, "alpha", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
	a->has_f = 1; a->f = 1.5f;
	add_output(b, "y");
	add_output(b, "sum");
	add_output(b, "q");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	const Node *ln = producer(g, "y");
	assert_int_equal(ln->op, OP_KlnSkipLayerNorm);
	assert_int_equal(ln->nin, 4);                  /* beta made: zeros */
	assert_int_equal(ln->nout, 2);
	assert_int_equal(ln->out[1], ir_value_find(g, "sum"));
	assert_true(ir_attr_float(g, (NodeId)(ln - g->nodes), "epsilon", 0) == 1e-12f);
	assert_int_equal(producer(g, "r")->op, OP_KlnRMSNorm);
	const Node *q = producer(g, "q");            /* another alpha: x * Sigmoid(alpha x) */
	assert_int_equal(q->op, OP_Mul);
	assert_int_equal(IR_NODE(g, IR_VAL(g, q->in[1])->def)->op, OP_Sigmoid);
	ir_graph_free(g);
	free_all();

	b = mm_model();
	n = add_node(b, "SkipLayerNormalization", "sln", "y,y,B", "z,mean");
	n->domain = S("com.microsoft");
	expect_fail(b, "t.onnx: node 'sln' (com.microsoft.SkipLayerNormalization): output 1 (mean) is not supported", NULL);
	free_all();
	b = mm_model();
	n = add_node(b, "Attention", "att", "y,W", "z");
	n->domain = S("com.microsoft");
	expect_fail(b, "node 'att' (com.microsoft.Attention): attribute 'num_heads' is required", NULL);
	free_all();
	b = mm_model();
	Onnx__OperatorSetIdProto *os = tmalloc(sizeof *os);
	Onnx__OperatorSetIdProto osi = ONNX__OPERATOR_SET_ID_PROTO__INIT;
	*os = osi;
	os->domain = S("com.microsoft");
	os->has_version = 1;
	os->version = 2;
	PUSH(b->m.opset_import, b->m.n_opset_import, os);
	expect_fail(b, "opset version 2 of domain com.microsoft is not supported", NULL);
	free_all();
}

static void test_unsorted(void **state)
{
	MB *b = mb_new(17);
	const char *dims[] = { "4" };
	add_input(b, vinfo("x", 1, 1, dims));
	add_node(b, "Neg", "n3", "c", "d");
	add_node(b, "Add", "n2", "a,b", "c");
	add_node(b, "Neg", "n1b", "x", "b");
	add_node(b, "Neg", "n1a", "x", "a");
	add_node(b, "Neg", "lone", "x", "e");
	add_output(b, "d");
	add_output(b, "e");
	Diag d;
	Graph *g = load(b, &d);
	if (!g)
		fail_msg("%s", d.msg);
	/* depth first from each node in file order, producers first */
	static const char *const want[] = { "n1a", "n1b", "n2", "n3", "lone" };
	assert_int_equal(g->norder, 5);
	for (int i = 0; i < 5; i++)
		assert_string_equal(IR_NODE(g, g->order[i])->name, want[i]);
	assert_int_equal(ir_verify(g, &d), 0);
	ir_graph_free(g);
	free_all();
}

/* Every unsupported op in one line, with counts, in order of appearance. */
static void test_unsupported_all(void **state)
{
	MB *b = mm_model();
	add_node(b, "Conv", "c1", "y,W", "q1");
	add_node(b, "Conv", "c2", "q1,W", "q2");
	Onnx__NodeProto *n = add_node(b, "Inverse", "fmm", "x,W", "q3");
	n->domain = S("com.microsoft");
	add_node(b, "LSTM", NULL, "q2", "q4");
	add_node(b, "Conv", "c3", "q2,W", "q5");
	expect_fail(b, "t.onnx: unsupported ops: Conv (opset 17) x3 (first node 'c1'), "
	               "com.microsoft.Inverse x1 (node 'fmm'), LSTM (opset 17) x1", NULL);
	free_all();
	/* many long-named ones: the line is cut with a count, never overflows */
	b = mm_model();
	for (int i = 0; i < 60; i++) {
		char op[120];
		snprintf(op, sizeof op, "Unknown%03d_%0100d", i, 0);
		add_node(b, op, NULL, "y", NULL);
	}
	expect_fail(b, "t.onnx: unsupported ops: Unknown000_", "more ops)", NULL);
	free_all();
	/* an op kiln has, in a version it refuses */
	b = mb_new(5);
	const char *dims[] = { "4" };
	add_input(b, vinfo("x", 1, 1, dims));
	add_node(b, "Tile", "t1", "x,x,x", "y");
	add_output(b, "y");
	expect_fail(b, "unsupported ops: Tile (opset 5) x1 (node 't1')", NULL);
	free_all();
}

static void test_external_ok(void **state)
{
	char path[512];
	Diag d;
	Graph *g = load_file_model(ext_model("weights.bin", "64"), "model.onnx", &d, path, sizeof path);
	if (!g)
		fail_msg("%s", d.msg);
	assert_string_equal(g->file, path);
	const Value *W = IR_VAL(g, ir_value_find(g, "W"));
	assert_int_equal(W->nbytes, 64);
	assert_true(((const float *)W->data)[0] == 116.0f);
	assert_true(((const float *)W->data)[15] == 131.0f);
	ir_graph_free(g);
	/* subfolder, no offset (0) */
	g = load_file_model(ext_model("sub/w2.bin", NULL), "model.onnx", &d, path, sizeof path);
	if (!g)
		fail_msg("%s", d.msg);
	W = IR_VAL(g, ir_value_find(g, "W"));
	assert_true(((const float *)W->data)[1] == 101.0f);
	ir_graph_free(g);
	/* "sub/../weights.bin" stays inside: allowed */
	g = load_file_model(ext_model("sub/../weights.bin", "0"), "model.onnx", &d, path, sizeof path);
	if (!g)
		fail_msg("%s", d.msg);
	ir_graph_free(g);
	free_all();
}

static void test_external_refused(void **state)
{
	expect_file_fail(ext_model("nothere.bin", "0"), "'nothere.bin'", "not found");
	expect_file_fail(ext_model("/etc/passwd", "0"), "'/etc/passwd'", "absolute");
	char rel[64];
	snprintf(rel, sizeof rel, "../%s_outside.bin", strrchr(tmpdir, '/') + 1);
	expect_file_fail(ext_model(rel, "0"), rel, "leaves the model's folder");
	expect_file_fail(ext_model("sub/escape.bin", "0"), "'sub/escape.bin'", "leaves the model's folder");
	expect_file_fail(ext_model("weights.bin", "100"), "'weights.bin'", "beyond the end");
	expect_file_fail(ext_model("weights.bin", "-4"), "'weights.bin'", "offset");
	expect_file_fail(ext_model("sub", "0"), "'sub'", "not a regular file");
	/* from memory (no folder): refused */
	MB *b = ext_model("weights.bin", "0");
	expect_fail(b, "initializer 'W'", "external data", NULL);
	free_all();
}

static void test_missing_file(void **state)
{
	Diag d;
	diag_clear(&d);
	assert_null(onnx_load_file("/nonexistent/dir/m.onnx", &d));
	assert_non_null(strstr(d.msg, "/nonexistent/dir/m.onnx: "));
	char p[512];
	snprintf(p, sizeof p, "%s/empty.onnx", tmpdir);
	write_file(p, "", 0);
	diag_clear(&d);
	assert_null(onnx_load_file(p, &d));
	assert_non_null(strstr(d.msg, p));
	assert_non_null(strstr(d.msg, "not an ONNX model"));
	diag_clear(&d);
	assert_null(onnx_load_file(tmpdir, &d));
	assert_non_null(strstr(d.msg, tmpdir));
	diag_clear(&d);
	assert_null(onnx_load_file("/dev/zero", &d));
	assert_non_null(strstr(d.msg, "/dev/zero: "));
}

/* onnx_weights_*: a model's constants by name (kiln compile X.ir
 * --weights-from), initializers in either storage form, with dtype, dims,
 * data and the content hash the text IR prints. */
static void test_weights_by_name(void **state)
{
	(void)state;
	MB *b = mm_model();
	size_t len;
	uint8_t *buf = pack(b, &len);
	char p[512];
	snprintf(p, sizeof p, "%s/weights.onnx", tmpdir);
	write_file(p, buf, len);
	Diag d;
	diag_clear(&d);
	OnnxWeights *ws = onnx_weights_open(p, &d);
	if (!ws)
		fail_msg("%s", d.msg);
	OnnxWeight w;
	assert_int_equal(onnx_weights_find(ws, "W", &w), 1);
	assert_string_equal(w.name, "W");
	assert_int_equal(w.dtype, DT_F32);
	assert_int_equal(w.rank, 2);
	assert_true(w.dims[0] == 4 && w.dims[1] == 4);
	assert_int_equal(w.nbytes, 64);
	assert_true(((const float *)w.data)[5] == 5.0f);
	assert_true(w.hash == ir_hash_bytes(w.data, 64));
	assert_int_equal(onnx_weights_find(ws, "B", &w), 1);   /* float_data storage */
	assert_int_equal(w.rank, 1);
	assert_true(((const float *)w.data)[3] == 1.5f);
	assert_int_equal(onnx_weights_find(ws, "x", &w), 0);   /* an input, not a constant */
	assert_int_equal(onnx_weights_find(ws, "xw", &w), 0);  /* a node's output */
	assert_int_equal(onnx_weights_find(ws, "w", &w), 0);
	assert_non_null(onnx_weights_graph(ws));
	onnx_weights_close(ws);
	diag_clear(&d);
	assert_null(onnx_weights_open("/nonexistent/dir/m.onnx", &d));
	assert_non_null(strstr(d.msg, "/nonexistent/dir/m.onnx: "));
	free_all();
}

/* ---- raw protobuf wire data, built back to front (pb_guard tests) ---- */

typedef struct Wire {
	uint8_t *buf;
	size_t cap, start;   /* the message is buf[start, cap) */
} Wire;

static void w_init(Wire *w, size_t cap)
{
	w->buf = malloc(cap);
	assert_non_null(w->buf);
	w->cap = w->start = cap;
}

static void w_bytes(Wire *w, const void *p, size_t n)
{
	assert_true(w->start >= n);
	w->start -= n;
	memcpy(w->buf + w->start, p, n);
}

static void w_varint(Wire *w, uint64_t v)
{
	uint8_t b[10];
	int n = 0;
	do {
		b[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	w_bytes(w, b, (size_t)n);
}

static size_t w_len(const Wire *w)
{
	return w->cap - w->start;
}

/* Everything from mark to the end becomes field f (length-delimited). */
static void w_wrap(Wire *w, size_t mark_len, unsigned f)
{
	w_varint(w, w_len(w) - mark_len);
	w_varint(w, (uint64_t)f << 3 | 2);
}

/* A length-delimited field f holding bytes p[0, n), prepended. */
static void w_field(Wire *w, unsigned f, const void *p, size_t n)
{
	w_bytes(w, p, n);
	w_varint(w, n);
	w_varint(w, (uint64_t)f << 3 | 2);
}

static void w_int(Wire *w, unsigned f, uint64_t v)
{
	w_varint(w, v);
	w_varint(w, (uint64_t)f << 3);
}

/* The rest of a ModelProto around a GraphProto already in w (from mark):
 * graph (7), opset_import (8) {version (2) = 17}, ir_version (1) = 8. */
static void w_model(Wire *w, size_t mark)
{
	w_wrap(w, mark, 7);
	size_t m2 = w_len(w);
	w_int(w, 2, 17);
	w_wrap(w, m2, 8);
	w_int(w, 1, 8);
}

static Graph *load_wire(Wire *w, Diag *d)
{
	diag_clear(d);
	return onnx_load_buffer(w->buf + w->start, w_len(w), "t.onnx", NULL, d);
}

/* A graph input whose type is `levels` sequences deep:
 * ValueInfoProto.type -> TypeProto.sequence_type -> Sequence.elem_type ->
 * TypeProto ... -> tensor_type {elem_type = 1}. */
static void deep_type_model(Wire *w, int levels)
{
	w_init(w, 256 + (size_t)levels * 8);
	w_int(w, 1, 1);                          /* Tensor.elem_type */
	w_wrap(w, 0, 1);                         /* TypeProto.tensor_type */
	for (int i = 0; i < levels; i++) {
		w_wrap(w, 0, 1);                 /* Sequence.elem_type */
		w_wrap(w, 0, 4);                 /* TypeProto.sequence_type */
	}
	w_wrap(w, 0, 2);                         /* ValueInfoProto.type */
	w_field(w, 1, "x", 1);                   /* ValueInfoProto.name */
	w_wrap(w, 0, 11);                        /* GraphProto.input */
	w_model(w, 0);
}

/* protobuf-c unpacks recursively without a limit: nesting beyond
 * PB_MAX_DEPTH (64) is refused by the pre-scan, before the stack
 * overflows (5,000 nested TypeProtos, 10,000 nested subgraphs). */
static void test_refuse_deep_nesting(void **state)
{
	Diag d;
	Wire w;
	/* 30 levels: innermost message at depth 64, passes the scan (and is
	 * then refused for its sequence type, not for its depth) */
	deep_type_model(&w, 30);
	Graph *g = load_wire(&w, &d);
	if (g)
		ir_graph_free(g);
	else
		assert_null(strstr(d.msg, "nesting"));
	free(w.buf);
	deep_type_model(&w, 31);
	assert_null(load_wire(&w, &d));
	assert_string_equal(d.msg, "t.onnx: protobuf nesting deeper than 64 levels");
	free(w.buf);
	deep_type_model(&w, 5000);
	assert_null(load_wire(&w, &d));
	assert_string_equal(d.msg, "t.onnx: protobuf nesting deeper than 64 levels");
	free(w.buf);

	/* NodeProto.attribute -> AttributeProto.g -> GraphProto.node -> ... */
	w_init(&w, 10000 * 32 + 256);
	w_field(&w, 4, "Identity", 8);           /* NodeProto.op_type */
	for (int i = 0; i < 10000; i++) {
		w_wrap(&w, 0, 1);                /* GraphProto.node */
		w_wrap(&w, 0, 6);                /* AttributeProto.g */
		w_int(&w, 20, 5);                /* AttributeProto.type = GRAPH */
		w_field(&w, 1, "body", 4);       /* AttributeProto.name */
		w_wrap(&w, 0, 5);                /* NodeProto.attribute */
		w_field(&w, 4, "Identity", 8);
	}
	w_wrap(&w, 0, 1);                        /* GraphProto.node */
	w_model(&w, 0);
	assert_null(load_wire(&w, &d));
	assert_string_equal(d.msg, "t.onnx: protobuf nesting deeper than 64 levels");
	free(w.buf);
}

/* protobuf-c would cut a string at a NUL byte (a name binding to its
 * prefix): refused, naming the field. */
static void test_refuse_nul_strings(void **state)
{
	Diag d;
	Wire w;
	w_init(&w, 256);
	w_field(&w, 4, "Relu", 4);               /* NodeProto.op_type */
	w_field(&w, 3, "mm\0evil", 7);           /* NodeProto.name */
	w_field(&w, 2, "y", 1);                  /* NodeProto.output */
	w_field(&w, 1, "x", 1);                  /* NodeProto.input */
	w_wrap(&w, 0, 1);                        /* GraphProto.node */
	w_model(&w, 0);
	assert_null(load_wire(&w, &d));
	assert_string_equal(d.msg, "t.onnx: NodeProto.name 'mm\\x00evil' has an embedded NUL byte");
	free(w.buf);
	/* a top-level string field too */
	w_init(&w, 64);
	w_field(&w, 2, "kiln\0", 5);             /* ModelProto.producer_name */
	assert_null(load_wire(&w, &d));
	assert_non_null(strstr(d.msg, "t.onnx: ModelProto.producer_name"));
	free(w.buf);
	/* in a .pb tensor file: TensorProto.name */
	w_init(&w, 64);
	float one = 1.0f;
	w_field(&w, 9, &one, 4);                 /* raw_data */
	w_field(&w, 8, "in\0put", 6);            /* name */
	w_int(&w, 2, 1);                         /* data_type */
	w_int(&w, 1, 1);                         /* dims */
	char p[512];
	snprintf(p, sizeof p, "%s/nul.pb", tmpdir);
	write_file(p, w.buf + w.start, w_len(&w));
	free(w.buf);
	PbTensor t;
	diag_clear(&d);
	assert_int_not_equal(pb_tensor_read(p, &t, &d), 0);
	assert_non_null(strstr(d.msg, "nul.pb: TensorProto.name 'in\\x00put'"));
}

/* Malformed wire data: refused by the scan with the byte it stopped at. */
static void test_refuse_malformed_wire(void **state)
{
	static const struct { const char *bytes; size_t n; const char *frag; } cases[] = {
		{ "\x3a\x7f", 2, "runs past its end" },        /* graph, 127 bytes, none there */
		{ "\x08\xff", 2, "truncated varint" },          /* ir_version, cut varint */
		{ "\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, "truncated varint" },
		{ "\x0b", 1, "wire type 3" },                   /* a group */
		{ "\x3a\x02\x0a\x05", 4, "runs past its end" }, /* inner length past the outer */
		{ "\x00", 1, "field number 0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		Diag d;
		diag_clear(&d);
		assert_null(onnx_load_buffer(cases[i].bytes, cases[i].n, "t.onnx", NULL, &d));
		assert_non_null(strstr(d.msg, "t.onnx: not an ONNX model (malformed protobuf: "));
		if (!strstr(d.msg, cases[i].frag))
			fail_msg("case %zu: '%s' lacks '%s'", i, d.msg, cases[i].frag);
	}
}

/* A FIFO as the model, its external data or a .pb: refused at once (it
 * used to block in open() forever). */
static void test_refuse_fifo(void **state)
{
	char p[512];
	Diag d;
	snprintf(p, sizeof p, "%s/fifo.onnx", tmpdir);
	unlink(p);
	assert_int_equal(mkfifo(p, 0600), 0);
	diag_clear(&d);
	assert_null(onnx_load_file(p, &d));
	assert_non_null(strstr(d.msg, "fifo.onnx: is a FIFO, not a regular file"));
	PbTensor t;
	diag_clear(&d);
	assert_int_not_equal(pb_tensor_read(p, &t, &d), 0);
	assert_non_null(strstr(d.msg, "is a FIFO"));
	diag_clear(&d);
	memset(&t, 0, sizeof t);
	float one = 1.0f;
	t.dtype = DT_F32;
	t.data = &one;
	t.nbytes = sizeof one;
	assert_int_not_equal(pb_tensor_write(p, &t, &d), 0);   /* no reader: not blocked */
	assert_non_null(strstr(d.msg, "fifo.onnx: cannot write"));
	unlink(p);
}

/* The shared real exports load (skipped when ../shared is absent). */
static void test_shared_models(void **state)
{
	const char *names[] = { "albert-legacy14", "bert-cls-legacy17", "bert-dynamo",
		"bert-legacy14", "bert-legacy17", "bert-qa-legacy14", "bert-sdpa-legacy17",
		"distilbert-legacy14", "lxmert-legacy14", "roberta-legacy14",
		"unicoder-vl-legacy14", "visualbert-legacy14" };
	int loaded = 0;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char p[512];
		snprintf(p, sizeof p, "%s/../shared/models/%s/model.onnx", KILN_SOURCE_DIR, names[i]);
		if (access(p, R_OK))
			continue;
		Diag d;
		diag_clear(&d);
		Graph *g = onnx_load_file(p, &d);
		if (!g)
			fail_msg("%s", d.msg);
		assert_true(g->norder > 50);
		assert_true(g->ninputs >= 2);
		assert_true(g->noutputs >= 1);
		assert_true(g->opset == 14 || g->opset == 17 || g->opset == 20);
		ir_graph_free(g);
		loaded++;
	}
	if (!loaded)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_storage_forms),
		cmocka_unit_test(test_constant_forms),
		cmocka_unit_test(test_attributes),
		cmocka_unit_test(test_symbolic_dims),
		cmocka_unit_test(test_input_initializer),
		cmocka_unit_test(test_optional_and_generated),
		cmocka_unit_test(test_refuse_bytes),
		cmocka_unit_test(test_refuse_opset),
		cmocka_unit_test(test_refuse_nodes),
		cmocka_unit_test(test_refuse_tensors),
		cmocka_unit_test(test_version_table),
		cmocka_unit_test(test_castlike),
		cmocka_unit_test(test_upgrades),
		cmocka_unit_test(test_contrib),
		cmocka_unit_test(test_unsorted),
		cmocka_unit_test(test_unsupported_all),
		cmocka_unit_test(test_external_ok),
		cmocka_unit_test(test_external_refused),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_weights_by_name),
		cmocka_unit_test(test_refuse_deep_nesting),
		cmocka_unit_test(test_refuse_nul_strings),
		cmocka_unit_test(test_refuse_malformed_wire),
		cmocka_unit_test(test_refuse_fifo),
		cmocka_unit_test(test_shared_models),
	};
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
