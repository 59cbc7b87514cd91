/* Pass `cse`: common-subexpression elimination.
 *
 * Equal constants (dtype, dims and bytes) are merged first, then nodes in
 * topological order: two live nodes with the same op, the same inputs and
 * equal attributes compute the same values (every IR op is pure), so the
 * later one's uses move to the earlier one and it is erased.
 *
 * requires: g->order topological.
 * preserves: shapes, order of the remaining nodes, graph output names
 *            (a node or constant that is a graph output is never merged away).
 * breaks: nothing. */
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

static uint64_t mix(uint64_t h, uint64_t x)
{
	h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 1099511628211ULL;
}

/* ---- a tiny open-addressed table of ids keyed by a 64-bit hash ---- */
typedef struct Tab { int32_t *ids; uint64_t *keys; uint32_t cap; } Tab;

static void tab_init(Tab *t, int32_t n)
{
	t->cap = 64;
	while (t->cap < (uint32_t)n * 2 + 2)
		t->cap *= 2;
	t->ids = malloc(t->cap * sizeof *t->ids);
	t->keys = malloc(t->cap * sizeof *t->keys);
	if (!t->ids || !t->keys)
		abort();
	for (uint32_t i = 0; i < t->cap; i++)
		t->ids[i] = -1;
}

static void tab_free(Tab *t)
{
	free(t->ids);
	free(t->keys);
}

/* Finds an id with key h for which eq(id) holds, else inserts x; returns
 * the id found or x. */
static int32_t tab_intern(Tab *t, uint64_t h, int32_t x, bool (*eq)(const Graph *, int32_t, int32_t),
                          const Graph *g)
{
	uint32_t mask = t->cap - 1;
	for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
		if (t->ids[i] < 0) {
			t->ids[i] = x;
			t->keys[i] = h;
			return x;
		}
		if (t->keys[i] == h && eq(g, t->ids[i], x))
			return t->ids[i];
	}
}

/* ---- constants ---- */

static uint64_t const_hash(const Value *v)
{
	uint64_t h = mix(v->hash, (uint64_t)v->dtype);
	h = mix(h, (uint64_t)v->rank);
	for (int i = 0; i < v->rank; i++)
		h = mix(h, (uint64_t)v->dims[i]);
	return mix(h, v->nbytes);
}

static bool const_eq(const Graph *g, int32_t a, int32_t b)
{
	const Value *x = IR_VAL(g, a), *y = IR_VAL(g, b);
	return x->dtype == y->dtype && x->nbytes == y->nbytes && m_same_shape(g, a, b) &&
	       (x->data == y->data || !memcmp(x->data, y->data, x->nbytes));
}

static void cse_consts(Graph *g)
{
	Tab t;
	tab_init(&t, g->nvals);
	for (ValId v = 0; v < g->nvals; v++) {
		const Value *val = IR_VAL(g, v);
		if (val->kind != V_CONST || !val->data || val->nuses == 0 || ir_is_output(g, v))
			continue;
		ValId c = tab_intern(&t, const_hash(val), v, const_eq, g);
		if (c != v)
			ir_replace_all_uses(g, v, c);
	}
	tab_free(&t);
}

/* ---- nodes ---- */

static bool attr_eq(const Attr *a, const Attr *b)
{
	if (strcmp(a->name, b->name) || a->kind != b->kind || a->n != b->n)
		return false;
	switch (a->kind) {
	case A_INT: return a->u.i == b->u.i;
	case A_FLOAT: return !memcmp(&a->u.f, &b->u.f, sizeof(float));
	case A_STRING: return !strcmp(a->u.s, b->u.s);
	case A_INTS: return !memcmp(a->u.ints, b->u.ints, (size_t)a->n * sizeof(int64_t));
	case A_FLOATS: return !memcmp(a->u.floats, b->u.floats, (size_t)a->n * sizeof(float));
	case A_STRINGS:
		for (int i = 0; i < a->n; i++)
			if (strcmp(a->u.strs[i], b->u.strs[i]))
				return false;
		return true;
	case A_TENSOR: {
		const TensorLit *x = a->u.t, *y = b->u.t;
		return x->dtype == y->dtype && x->rank == y->rank && x->nbytes == y->nbytes &&
		       !memcmp(x->dims, y->dims, sizeof x->dims) && !memcmp(x->data, y->data, x->nbytes);
	}
	}
	return false;
}

static const Attr *find_attr(const Node *n, const char *name)
{
	for (int i = 0; i < n->nattrs; i++)
		if (!strcmp(n->attrs[i].name, name))
			return &n->attrs[i];
	return NULL;
}

static bool node_eq(const Graph *g, int32_t a, int32_t b)
{
	const Node *x = IR_NODE(g, a), *y = IR_NODE(g, b);
	if (x->op != y->op || x->nin != y->nin || x->nout != y->nout || x->nattrs != y->nattrs)
		return false;
	if (memcmp(x->in, y->in, (size_t)x->nin * sizeof(ValId)))
		return false;
	for (int i = 0; i < x->nattrs; i++) {
		const Attr *o = find_attr(y, x->attrs[i].name);
		if (!o || !attr_eq(&x->attrs[i], o))
			return false;
	}
	return true;
}

static uint64_t node_hash(const Node *n)
{
	uint64_t h = mix((uint64_t)n->op, (uint64_t)n->nin);
	for (int i = 0; i < n->nin; i++)
		h = mix(h, (uint64_t)(uint32_t)n->in[i]);
	return mix(h, (uint64_t)n->nattrs);
}

static void cse_nodes(Graph *g)
{
	Tab t;
	tab_init(&t, g->nnodes);
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		const Node *n = IR_NODE(g, id);
		if (n->dead)
			continue;
		NodeId c = tab_intern(&t, node_hash(n), id, node_eq, g);
		if (c == id)
			continue;
		bool out = false;
		for (int k = 0; k < n->nout; k++)
			out |= ir_is_output(g, n->out[k]);
		if (out)
			continue;
		for (int k = 0; k < n->nout; k++)
			ir_replace_all_uses(g, IR_NODE(g, id)->out[k], IR_NODE(g, c)->out[k]);
		ir_node_erase(g, id);
	}
	tab_free(&t);
}

void pass_cse(Graph *g, PassCtx *pc)
{
	(void)pc;
	cse_consts(g);
	cse_nodes(g);
	ir_dce(g);
}
