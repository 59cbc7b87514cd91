/* Pass `einsum`: two-operand Einsum as Transpose + MatMul (+ Reshape).
 *
 * For an explicit equation "A,B->O" (letters only, no repeated letter in
 * a term, no ellipsis) every letter is
 *   batch: in A, B and O      K: in A and B only (contracted)
 *   M:     in A and O only    N: in B and O only
 * (a letter in one input only and not in O, i.e. a plain sum, is left to
 * the Einsum kernel).  Then
 *   A' = Transpose(A -> [batch, M, K]), B' = Transpose(B -> [batch, K, N]),
 *   several K letters are merged by a Reshape (static sizes), several N
 *   letters likewise (and split again after the product), several M letters
 *   only when there is no batch letter (MatMul broadcasts them),
 *   Y = MatMul(A', B') and a Transpose to O's order.
 * XLNet's projections (ibh,hnd->ibnd), scores (ibnd,jbnd->bnij) and
 * context (bnij,jbnd->ibnd) all take this form.  Without a K letter the
 * product is an outer one: Mul of [batch, M, 1..] and [batch, 1.., N]
 * (XLNet's sinusoid i,d->id).
 *
 * Two rewrites around it give the fusions their usual forms (Keras
 * MultiHeadAttention through tf2onnx):
 *   - bias of a head split: Add(Einsum(x, W) "abc,cde->abde", b [H, D]),
 *     the Einsum used only there, b a constant whose shape is exactly the
 *     dims of the N letters, which end O in order: b is added as a vector
 *     [H*D] before the Reshape that splits N, i.e. Reshape(Add(MatMul(x,
 *     W'), b'), [.., H, D]); fuse-gemm makes that a biased KlnGemm and
 *     fuse-attention sees an ordinary head split (fuse-qkv packs Q, K, V);
 *   - a constant scalar factor of an operand, Einsum(Mul(q, c), k) with
 *     the Mul used only there, is applied after the operand's Transpose
 *     (the same products, in another order of the elements), where
 *     fuse-attention takes the scale of Q or K into its own.
 *
 * requires: shapes inferred.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <string.h>

#include "pass_internal.h"

typedef struct Eq {
	char t[3][IR_MAX_RANK + 1];   /* A, B, O */
	int n[3];
} Eq;

static bool parse_eq(const char *s, Eq *e)
{
	int k = 0;
	memset(e, 0, sizeof *e);
	for (; *s; s++) {
		char c = *s;
		if (c == ' ')
			continue;
		if (c == ',' && k == 0) {
			k = 1;
		} else if (c == '-' && k == 1 && s[1] == '>') {
			k = 2;
			s++;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
			if (e->n[k] >= IR_MAX_RANK || strchr(e->t[k], c))
				return false;
			e->t[k][e->n[k]++] = c;
		} else {
			return false;
		}
	}
	return k == 2;
}

/* New node with inference of its output; -1 (and nothing left) on failure. */
static NodeId node(Graph *g, Op op, const char *name, int nin, const ValId *in)
{
	NodeId n = ir_node_new(g, op, name, nin, in, 1, NULL);
	Diag d = {0};
	if (ir_infer_node(g, n, &d)) {
		ir_node_erase(g, n);
		return -1;
	}
	return n;
}

static ValId transpose(Graph *g, const char *name, ValId x, const char *from, const char *to,
                       int n)
{
	int64_t perm[IR_MAX_RANK];
	bool id = true;
	for (int i = 0; i < n; i++) {
		perm[i] = strchr(from, to[i]) - from;
		id &= perm[i] == i;
	}
	if (id)
		return x;
	NodeId t = node(g, OP_Transpose, name, 1, &x);
	if (t < 0)
		return -1;
	ir_attr_set_ints(g, t, "perm", n, perm);
	Diag d = {0};
	if (ir_infer_node(g, t, &d))
		return -1;
	return IR_NODE(g, t)->out[0];
}

/* Reshape x with a constant shape. */
static ValId reshape(Graph *g, const char *name, ValId x, const int64_t *shape, int n)
{
	int64_t r = n;
	ValId c = rw_const(g, "einsum_shape", DT_I64, 1, &r, shape, (size_t)n * 8);
	ValId in[2] = {x, c};
	NodeId t = node(g, OP_Reshape, name, 2, in);
	return t < 0 ? -1 : IR_NODE(g, t)->out[0];
}

/* Product of the static dims of letters `ls` in term t of value v; -1 if any is symbolic. */
static int64_t group_size(const Graph *g, ValId v, const char *t, const char *ls, int n)
{
	int64_t p = 1, c;
	for (int i = 0; i < n; i++) {
		if (!ir_dim_is_const(g, IR_VAL(g, v)->dims[strchr(t, ls[i]) - t], &c))
			return -1;
		p *= c;
	}
	return p;
}

/* The last node y takes over the Einsum's output (and its name). */
static void take_over(Graph *g, NodeId id, ValId y)
{
	ValId out = IR_NODE(g, id)->out[0];
	if (!m_same_shape(g, y, out) || IR_VAL(g, y)->dtype != IR_VAL(g, out)->dtype)
		return;   /* leftovers die in DCE */
	const char *oname = IR_VAL(g, out)->name;
	IR_VAL(g, out)->name = ir_arena_strdup(g->arena, "einsum.dead");
	IR_VAL(g, y)->name = oname;
	ir_replace_all_uses(g, out, y);
	ir_node_erase(g, id);
}

/* Unsqueeze x at axes [from, from + n). */
static ValId unsqueeze(Graph *g, const char *name, ValId x, int from, int n)
{
	if (n == 0)
		return x;
	int64_t ax[IR_MAX_RANK], cnt = n;
	for (int i = 0; i < n; i++)
		ax[i] = from + i;
	ValId c = rw_const(g, "einsum_axes", DT_I64, 1, &cnt, ax, (size_t)n * 8);
	ValId in[2] = {x, c};
	NodeId t = node(g, OP_Unsqueeze, name, 2, in);
	return t < 0 ? -1 : IR_NODE(g, t)->out[0];
}

/* No contracted letter: an outer product, Mul of [batch, M, 1..] and
 * [batch, 1.., N] (the sinusoid i,d->id of XLNet's positions). */
static void outer(Graph *g, NodeId id, const Eq *e, const char *bat, int nb, const char *M,
                  int nm, const char *N, int nn)
{
	const Node *nd = IR_NODE(g, id);
	const char *name = nd->name;
	ValId a = nd->in[0], b = nd->in[1];
	char ta[17], tb[17], ty[17];
	snprintf(ta, sizeof ta, "%s%s", bat, M);
	snprintf(tb, sizeof tb, "%s%s", bat, N);
	snprintf(ty, sizeof ty, "%s%s%s", bat, M, N);
	ValId a1 = transpose(g, name, a, e->t[0], ta, e->n[0]);
	ValId b1 = transpose(g, name, b, e->t[1], tb, e->n[1]);
	if (a1 < 0 || b1 < 0)
		return;
	a1 = unsqueeze(g, name, a1, nb + nm, nn);
	b1 = unsqueeze(g, name, b1, nb, nm);
	if (a1 < 0 || b1 < 0)
		return;
	ValId in[2] = {a1, b1};
	NodeId mul = node(g, OP_Mul, name, 2, in);
	if (mul < 0)
		return;
	ValId y = transpose(g, name, IR_NODE(g, mul)->out[0], ty, e->t[2], e->n[2]);
	if (y >= 0)
		take_over(g, id, y);
}

/* v = Mul(x, c), c a constant f32 scalar of one element, the Mul used only
 * by the Einsum and not broadcasting x: x and *c; else v and *c = -1. */
static ValId peel_scale(const Graph *g, ValId v, ValId *c)
{
	*c = -1;
	NodeId n = m_def(g, v, OP_Mul);
	double s;
	if (n < 0 || m_nuses(g, v) != 1)
		return v;
	const Node *nd = IR_NODE(g, n);
	for (int k = 0; k < 2; k++) {
		ValId x = nd->in[k], f = nd->in[1 - k];
		if (m_const_scalar(g, f, &s) && ir_value_numel_const(g, f) == 1 &&
		    IR_VAL(g, f)->dtype == DT_F32 && m_same_shape(g, x, v)) {
			*c = f;
			return x;
		}
	}
	return v;
}

/* x * c (c from peel_scale), or x when c is -1. */
static ValId rescale(Graph *g, const char *name, ValId x, ValId c)
{
	if (x < 0 || c < 0)
		return x;
	ValId in[2] = {x, c};
	NodeId n = node(g, OP_Mul, name, 2, in);
	return n < 0 ? -1 : IR_NODE(g, n)->out[0];
}

/* The Einsum's only user is Add(out, b) (either order) with b a constant
 * f32 whose shape is exactly the dims of the nn N letters, which end the
 * output in order, and the Add broadcasts nothing: the Add, *b = b;
 * else -1. */
static NodeId split_bias(const Graph *g, NodeId id, const Eq *e, const char *N, int nn, ValId *b)
{
	ValId out = IR_NODE(g, id)->out[0];
	if (m_nuses(g, out) != 1 || strcmp(e->t[2] + e->n[2] - nn, N))
		return -1;
	NodeId add = IR_VAL(g, out)->uses[0].node;
	const Node *an = IR_NODE(g, add);
	if (an->op != OP_Add || an->nin != 2 || !m_same_shape(g, out, an->out[0]))
		return -1;
	*b = m_other(g, add, out);
	const Value *bv = *b >= 0 ? IR_VAL(g, *b) : NULL;
	if (!bv || *b == out || !m_is_const(g, *b) || bv->dtype != DT_F32 || bv->rank != nn)
		return -1;
	const Value *ov = IR_VAL(g, out);
	for (int i = 0; i < nn; i++)
		if (bv->dims[i] != ov->dims[ov->rank - nn + i])
			return -1;
	return add;
}

/* b (from split_bias) as a vector of its elements, added to y. */
static ValId add_bias(Graph *g, const char *name, ValId y, ValId b, int64_t ns)
{
	const Value *bv = IR_VAL(g, b);
	if (bv->nbytes < (size_t)ns * 4)
		return -1;
	ValId c = rw_const(g, bv->name, DT_F32, 1, &ns, bv->data, (size_t)ns * 4);
	ValId in[2] = {y, c};
	NodeId n = node(g, OP_Add, name, 2, in);
	return n < 0 ? -1 : IR_NODE(g, n)->out[0];
}

static void canon(Graph *g, NodeId id)
{
	const Node *nd = IR_NODE(g, id);
	Eq e;
	const char *eq = ir_attr_str(g, id, "equation", NULL);
	if (nd->nin != 2 || !eq || !parse_eq(eq, &e))
		return;
	ValId a = nd->in[0], b = nd->in[1], out = nd->out[0];
	const Value *av = IR_VAL(g, a), *bv = IR_VAL(g, b);
	if (av->rank != e.n[0] || bv->rank != e.n[1] || av->dtype != DT_F32 || bv->dtype != DT_F32 ||
	    IR_VAL(g, out)->rank != e.n[2])
		return;
	char bat[9] = "", M[9] = "", K[9] = "", N[9] = "";
	int nb = 0, nm = 0, nk = 0, nn = 0;
	for (int i = 0; i < e.n[0]; i++) {
		char c = e.t[0][i];
		bool inb = strchr(e.t[1], c), ino = strchr(e.t[2], c);
		if (inb && ino)
			bat[nb++] = c;
		else if (inb)
			K[nk++] = c;
		else if (ino)
			M[nm++] = c;
		else
			return;   /* summed in A only */
	}
	for (int i = 0; i < e.n[1]; i++) {
		char c = e.t[1][i];
		if (strchr(e.t[0], c))
			continue;
		if (!strchr(e.t[2], c))
			return;
		N[nn++] = c;
	}
	for (int i = 0; i < e.n[2]; i++)
		if (!strchr(e.t[0], e.t[2][i]) && !strchr(e.t[1], e.t[2][i]))
			return;
	/* batch letters must have equal dims in A and B */
	for (int i = 0; i < nb; i++)
		if (av->dims[strchr(e.t[0], bat[i]) - e.t[0]] != bv->dims[strchr(e.t[1], bat[i]) - e.t[1]])
			return;
	for (int i = 0; i < nk; i++)
		if (av->dims[strchr(e.t[0], K[i]) - e.t[0]] != bv->dims[strchr(e.t[1], K[i]) - e.t[1]])
			return;
	if (nk == 0) {
		outer(g, id, &e, bat, nb, M, nm, N, nn);
		return;
	}
	int64_t ks = nk > 1 ? group_size(g, a, e.t[0], K, nk) : 0;
	int64_t ns = nn > 1 ? group_size(g, b, e.t[1], N, nn) : 0;
	if (nm == 0 || nn == 0 || ks < 0 || ns < 0 || (nm > 1 && nb > 0))
		return;
	const char *name = nd->name;
	ValId bias = -1;
	NodeId add = nn > 1 ? split_bias(g, id, &e, N, nn, &bias) : -1;
	ValId ca, cb;
	a = peel_scale(g, a, &ca);
	b = peel_scale(g, b, &cb);
	/* A' = [batch, M, K], B' = [batch, K, N] */
	char ta[17], tb[17], ty[17];
	snprintf(ta, sizeof ta, "%s%s%s", bat, M, K);
	snprintf(tb, sizeof tb, "%s%s%s", bat, K, N);
	ValId a1 = rescale(g, name, transpose(g, name, a, e.t[0], ta, e.n[0]), ca);
	ValId b1 = rescale(g, name, transpose(g, name, b, e.t[1], tb, e.n[1]), cb);
	if (a1 < 0 || b1 < 0)
		return;
	int64_t sh[IR_MAX_RANK];
	if (nk > 1) {
		int r = 0;
		for (int i = 0; i < nb + nm; i++)
			sh[r++] = 0;
		sh[r++] = ks;
		a1 = reshape(g, name, a1, sh, r);
	}
	if (nk > 1 || nn > 1) {
		/* [batch, K, N] -> [batch, K*, N*]: 0 copies a dim at the same
		 * position; a single N letter moves when K letters merged: -1 */
		int r = 0;
		for (int i = 0; i < nb; i++)
			sh[r++] = 0;
		sh[r++] = nk > 1 ? ks : 0;
		sh[r++] = nn > 1 ? ns : nk == 1 ? 0 : -1;
		b1 = reshape(g, name, b1, sh, r);
	}
	if (a1 < 0 || b1 < 0)
		return;
	ValId in[2] = {a1, b1};
	NodeId mm = node(g, OP_MatMul, name, 2, in);
	if (mm < 0)
		return;
	ValId y = IR_NODE(g, mm)->out[0];
	if (add >= 0)
		y = add_bias(g, name, y, bias, ns);
	if (y < 0)
		return;
	if (nn > 1) {
		/* split N again: leading dims copied */
		int r = 0, ry = IR_VAL(g, y)->rank;
		for (int i = 0; i < ry - 1; i++)
			sh[r++] = 0;
		for (int i = 0; i < nn; i++) {
			/* not bv: the nodes made since may have moved the value array */
			int64_t c;
			ir_dim_is_const(g, IR_VAL(g, b)->dims[strchr(e.t[1], N[i]) - e.t[1]], &c);
			sh[r++] = c;
		}
		y = reshape(g, name, y, sh, r);
		if (y < 0)
			return;
	}
	snprintf(ty, sizeof ty, "%s%s%s", bat, M, N);
	y = transpose(g, name, y, ty, e.t[2], e.n[2]);
	if (y >= 0)
		take_over(g, add >= 0 ? add : id, y);   /* the bias Add's result */
}

void pass_canon_einsum(Graph *g, PassCtx *pc)
{
	(void)pc;
	int32_t n = g->norder;
	for (int32_t i = 0; i < n; i++) {
		NodeId id = g->order[i];
		if (!IR_NODE(g, id)->dead && IR_NODE(g, id)->op == OP_Einsum)
			canon(g, id);
	}
	ir_dce(g);
	ir_toposort(g);
}
