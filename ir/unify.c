/* Assumed dim equalities: a union-find over DimIds (see ir.h).
 *
 * dim_alias[d] is the parent of d in its class (-1: d is a root, the
 * representative).  The representative of a new class is the shallower
 * dim (a symbol rather than a max() of symbols), so rewriting a dim with
 * representatives never makes it deeper than the dims it was built from.
 * Every assumption stays in g->assumes, checked at the start of each run
 * (backend/emit_dims.c be_emit_assume_checks). */
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "dim_internal.h"

static DimId find(const Graph *g, DimId d)
{
	while (d >= 0 && d < g->ndim_alias && g->dim_alias[d] >= 0)
		d = g->dim_alias[d];
	return d;
}

static DimId canon_at(Graph *g, DimId d, int depth)
{
	d = find(g, d);
	const DimNode *n = ir_dim_node(g, d);
	if (!n || n->kind == DIM_CONST || n->kind == DIM_SYM || depth > IR_DIM_MAX_DEPTH)
		return d;
	DimKind kind = (DimKind)n->kind;
	DimId a0 = n->a, b0 = n->b;   /* n may move when a dim is interned */
	DimId a = canon_at(g, a0, depth + 1), b = canon_at(g, b0, depth + 1);
	if (a == a0 && b == b0)
		return d;
	DimId r;
	switch (kind) {
	case DIM_ADD: r = ir_dim_add(g, a, b); break;
	case DIM_MUL: r = ir_dim_mul(g, a, b); break;
	case DIM_DIV: r = ir_dim_div(g, a, b); break;
	case DIM_MOD: r = ir_dim_mod(g, a, b); break;
	case DIM_MAX: r = ir_dim_max(g, a, b); break;
	default: r = ir_dim_min(g, a, b); break;
	}
	return r == d ? d : canon_at(g, r, depth + 1);
}

DimId ir_dim_canon(Graph *g, DimId d)
{
	if (!g->nassumes || d < 0)
		return d;
	return canon_at(g, d, 0);
}

bool ir_dim_assume_eq(Graph *g, DimId a, DimId b, const char *node)
{
	DimId ca = ir_dim_canon(g, a), cb = ir_dim_canon(g, b);
	if (ca == cb || ir_dim_has_dyn(g, a) || ir_dim_has_dyn(g, b))
		return false;
	if (ir_dim_depth(g, ca) < ir_dim_depth(g, cb)) {   /* the shallower represents */
		DimId t = ca;
		ca = cb;
		cb = t;
	}
	if (ca >= g->ndim_alias) {
		int32_t n = g->ndim_alias ? g->ndim_alias : 64;
		while (n <= ca)
			n *= 2;
		DimId *p = realloc(g->dim_alias, (size_t)n * sizeof *p);
		if (!p)
			abort();
		for (int32_t i = g->ndim_alias; i < n; i++)
			p[i] = -1;
		g->dim_alias = p;
		g->ndim_alias = n;
	}
	g->dim_alias[ca] = cb;
	if (g->nassumes == g->capassumes) {
		int32_t cap = g->capassumes ? 2 * g->capassumes : 8;
		IrAssume *p = ir_arena_alloc(g->arena, (size_t)cap * sizeof *p, _Alignof(IrAssume));
		if (g->nassumes)
			memcpy(p, g->assumes, (size_t)g->nassumes * sizeof *p);
		g->assumes = p;
		g->capassumes = cap;
	}
	/* the dims as they were written: the check evaluates both sides from
	 * the bound symbols, whatever the classes say */
	g->assumes[g->nassumes++] = (IrAssume){a, b, ir_arena_strdup(g->arena, node ? node : "?")};
	return true;
}

static void syms_of(const Graph *g, DimId d, unsigned char *seen, int depth)
{
	const DimNode *n = ir_dim_node(g, d);
	if (!n || depth > IR_DIM_MAX_DEPTH)
		return;
	if (n->kind == DIM_SYM)
		seen[n->c] = 1;
	else if (n->kind != DIM_CONST) {
		syms_of(g, n->a, seen, depth + 1);
		syms_of(g, n->b, seen, depth + 1);
	}
}

int ir_dim_origin_str(const Graph *g, DimId d, char *buf, size_t n)
{
	int ns = ir_nsyms(g), len = 0;
	unsigned char *seen = calloc((size_t)ns + 1, 1);
	if (!seen)
		abort();
	syms_of(g, d, seen, 0);
	if (n)
		buf[0] = 0;
	for (int s = 0; s < ns; s++) {
		if (!seen[s])
			continue;
		const char *in = NULL;
		int axis = -1;
		for (int k = 0; k < g->ninputs && !in; k++) {
			const Value *v = IR_VAL(g, g->inputs[k]);
			for (int a = 0; a < v->rank && !in; a++) {
				const DimNode *dn = ir_dim_node(g, v->dims[a]);
				if (dn->kind == DIM_SYM && dn->c == s) {
					in = v->name ? v->name : "?";
					axis = a;
				}
			}
		}
		size_t at = (size_t)len < n ? (size_t)len : n;
		int w = in ? snprintf(buf + at, n - at, "%s%s: '%s' dim %d", len ? ", " : "",
		                      ir_sym_name(g, s), in, axis)
		           : snprintf(buf + at, n - at, "%s%s", len ? ", " : "", ir_sym_name(g, s));
		if (w > 0)
			len += w;
	}
	free(seen);
	return len;
}

/* The rule, for one Reshape: its leading target dims, as long as each is
 * the input's dim or one operand of the input's broadcast extent there.
 * The assumption max(a, e) == e holds in every run ONNX allows in which
 * the Reshape keeps the leading dims: a head split [B, S, H] -> [B, S,
 * -1, dh] whose B and S came from Shape(token_type_ids) (the embeddings'
 * Add broadcast input_ids [a, .] to it); in the BERT graphs any other run
 * fails later anyway (the head merge's MatMul with the [H, H] weight needs
 * the same B and S).  A run where it does not hold is refused at its
 * start (see ir.h), so the rule can refuse a run, never compute one
 * wrongly; it stops at the first dim that is neither (a regrouping). */
static int assume_reshape(Graph *g, const Node *n)
{
	const Value *x = IR_VAL(g, n->in[0]), *t = n->nin > 1 && n->in[1] >= 0 ? IR_VAL(g, n->in[1]) : NULL;
	if (!t || !t->sval || x->rank < 1)
		return 0;
	int cnt = 0, m = x->rank < t->nsval ? x->rank : t->nsval;
	for (int i = 0; i < m; i++) {
		DimId xd = x->dims[i], e = t->sval[i];
		if (xd == e)
			continue;
		if (ir_dim_is_const(g, e, NULL) || !ir_dim_covers(g, xd, e))
			break;
		cnt += ir_dim_assume_eq(g, xd, e, n->name);
	}
	return cnt;
}

int ir_assume_head_split_dims(Graph *g, Diag *diag)
{
	int cnt = 0;
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (!n->dead && n->op == OP_Reshape && n->nin >= 1 && n->in[0] >= 0)
			cnt += assume_reshape(g, n);
	}
	if (cnt && ir_infer_shapes(g, diag))
		return -1;
	return cnt;
}
