/* Pass `fuse-qkv`: one GEMM for the projections feeding an attention.
 *
 * Pattern `qkv` (root: KlnAttention with zero offsets):
 *   self:  Q, K, V = KlnGemm(X, Wq, bq), KlnGemm(X, Wk, bk), KlnGemm(X, Wv, bv)
 *          -> P = KlnGemm(X, [Wq|Wk|Wv], [bq|bk|bv]);
 *             KlnAttention(P, P, P) {q_offset 0, k_offset Nq, v_offset Nq+Nk}
 *   cross: K, V = KlnGemm(Y, Wk, bk), KlnGemm(Y, Wv, bv), Q from elsewhere
 *          -> KV = KlnGemm(Y, [Wk|Wv], [bk|bv]); KlnAttention(Q, KV, KV) {v_offset Nk}
 * The weights and biases must be constants with data (concatenated at
 * compile time; a projection without a bias adds zeros, and none with a
 * bias gives a packed GEMM without one); each projection must feed only
 * the attention; act = 0.
 *
 * requires: fuse-attention and fuse-gemm before it.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* qkv: the Q, K, V projections of a KlnAttention */
typedef struct QkvMatch {
	Match m;
	bool self;      /* Q is a projection of K's and V's input too (else only K, V pack) */
	NodeId proj[3]; /* the Q, K, V KlnGemm nodes (Q: -1 unless self) */
	int64_t n[3];   /* their widths N */
	int64_t k;      /* the common inner dim K of the packed projections */
} QkvMatch;

/* v = KlnGemm(X, W, b?) with constant W [K, N] and b [N], used once: the
 * node, else -1 with *why the reason (and *at the node it concerns). */
static NodeId proj(const Graph *g, ValId v, int64_t *kdim, int64_t *n, const char **why, NodeId *at)
{
	NodeId p = m_def(g, v, OP_KlnGemm);
	*at = p;
	if (p < 0)
		return *why = "is not a KlnGemm", -1;
	if (m_nuses(g, v) != 1)
		return *why = "its result has other users", -1;
	if (ir_attr_int(g, p, "act", 0) != 0)
		return *why = "has a GELU epilogue", -1;
	const Node *nd = IR_NODE(g, p);
	bool bias = nd->nin == 3 && nd->in[2] >= 0;
	if (!m_is_const(g, nd->in[1]) || (bias && !m_is_const(g, nd->in[2])))
		return *why = "W or the bias is not a constant with data", -1;
	const Value *w = IR_VAL(g, nd->in[1]);
	if (!ir_dim_is_const(g, w->dims[0], kdim) || !ir_dim_is_const(g, w->dims[1], n))
		return *why = "W's dims are not static", -1;
	if (w->nbytes < (size_t)(*kdim * *n * 4) || (bias && IR_VAL(g, nd->in[2])->nbytes < (size_t)*n * 4))
		return *why = "W or the bias has less data than its shape", -1;
	return p;
}

static bool match_qkv(const Graph *g, NodeId root, Match *m)
{
	static const char *const names[3] = {"Q", "K", "V"};
	const Node *a = IR_NODE(g, root);
	if (ir_attr_int(g, root, "q_offset", 0) || ir_attr_int(g, root, "k_offset", 0) ||
	    ir_attr_int(g, root, "v_offset", 0))   /* (packed by this pattern: fuse_run says nothing) */
		return m_fail(g, m, root, "Q/K/V already packed (nonzero offsets: at import, or as written)");
	int64_t kd[3], n[3];
	NodeId p[3], at[3];
	const char *why[3] = {NULL, NULL, NULL};
	for (int i = 0; i < 3; i++)
		p[i] = proj(g, a->in[i], &kd[i], &n[i], &why[i], &at[i]);
	for (int i = 1; i < 3; i++) {
		if (p[i] >= 0)
			continue;
		if (at[i] >= 0)
			return m_fail(g, m, at[i], "%s projection '%s' %s", names[i], IR_VAL(g, a->in[i])->name,
			              why[i]);
		/* not a GEMM: say what it is (a head merge, a past Concat, rotary, ...) */
		NodeId d = m_def(g, a->in[i], OP_COUNT);
		return m_fail(g, m, d >= 0 ? d : root, "%s projection '%s' is not a KlnGemm (%s%s)", names[i],
		              IR_VAL(g, a->in[i])->name, d >= 0 ? "it is made by a " : "a graph input or constant",
		              d >= 0 ? ir_opname(IR_NODE(g, d)->op) : "");
	}
	if (kd[1] != kd[2] || IR_NODE(g, p[1])->in[0] != IR_NODE(g, p[2])->in[0])
		return m_fail(g, m, p[2], "K and V are projections of different inputs");
	bool self = p[0] >= 0 && kd[0] == kd[1] && IR_NODE(g, p[0])->in[0] == IR_NODE(g, p[1])->in[0];
	m_add(m, root);
	QkvMatch *qm = M_AS(QkvMatch, m);
	qm->self = self;
	for (int i = 0; i < 3; i++) {
		qm->n[i] = n[i];
		qm->proj[i] = self || i ? p[i] : -1;
		if (self || i)
			m_add(m, p[i]);   /* absorbed: erased with the match */
	}
	qm->k = kd[1];
	return true;
}

/* Concatenates the W (rows of K floats) and b of projections p[0..np). */
static NodeId packed_gemm(Graph *g, const NodeId *p, int np, int64_t kd, const int64_t *n)
{
	int64_t tot = 0;
	for (int i = 0; i < np; i++)
		tot += n[i];
	float *w = malloc((size_t)(kd * tot) * 4), *b = calloc((size_t)tot, 4);
	if (!w || !b)
		abort();
	int64_t col = 0;
	bool anybias = false;
	for (int i = 0; i < np; i++) {
		const Node *nd = IR_NODE(g, p[i]);
		const float *wi = IR_VAL(g, nd->in[1])->data;
		for (int64_t r = 0; r < kd; r++)
			memcpy(w + r * tot + col, wi + r * n[i], (size_t)n[i] * 4);
		if (nd->nin == 3 && nd->in[2] >= 0) {
			memcpy(b + col, IR_VAL(g, nd->in[2])->data, (size_t)n[i] * 4);
			anybias = true;
		}
		col += n[i];
	}
	int64_t wd[2] = {kd, tot};
	const char *base = IR_NODE(g, p[0])->name ? IR_NODE(g, p[0])->name : "qkv";
	ValId wv = rw_const(g, "qkv_weight", DT_F32, 2, wd, w, (size_t)(kd * tot) * 4);
	ValId bv = anybias ? rw_const(g, "qkv_bias", DT_F32, 1, &tot, b, (size_t)tot * 4) : -1;
	free(w);
	free(b);
	ValId in[3] = {IR_NODE(g, p[0])->in[0], wv, bv};
	NodeId q = ir_node_new(g, OP_KlnGemm, base, anybias ? 3 : 2, in, 1, NULL);
	ir_attr_set_int(g, q, "act", 0);
	rw_from_nodes(g, q, p, np);   /* the projections (the attention gets the rest) */
	ValId o = IR_NODE(g, q)->out[0], x = in[0];
	const Value *xv = IR_VAL(g, x);
	DimId d[IR_MAX_RANK];
	memcpy(d, xv->dims, sizeof d);
	d[xv->rank - 1] = ir_dim_const(g, tot);
	IR_VAL(g, o)->dtype = DT_F32;
	ir_value_set_shape(g, o, xv->rank, d);
	return q;
}

static void rewrite_qkv(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const QkvMatch *qm = M_AS_CONST(QkvMatch, m);
	bool self = qm->self;
	NodeId root = m->root;
	const NodeId *p = qm->proj;
	const int64_t *n = qm->n;
	NodeId q = self ? packed_gemm(g, p, 3, qm->k, n) : packed_gemm(g, p + 1, 2, qm->k, n + 1);
	ValId pk = IR_NODE(g, q)->out[0];
	const Node *a = IR_NODE(g, root);
	ValId in[5];
	int nin = a->nin;
	for (int i = 0; i < nin; i++)
		in[i] = a->in[i];
	in[1] = in[2] = pk;
	if (self)
		in[0] = pk;
	NodeId na = rw_replace(g, OP_KlnAttention, a->name, nin, in, a->out[0]);
	/* copy the attributes, then set the offsets */
	const Node *old = IR_NODE(g, root);
	for (int i = 0; i < old->nattrs; i++) {
		const Attr *at = &IR_NODE(g, root)->attrs[i];
		if (at->kind == A_INT)
			ir_attr_set_int(g, na, at->name, at->u.i);
		else if (at->kind == A_FLOAT)
			ir_attr_set_float(g, na, at->name, at->u.f);
	}
	ir_attr_set_int(g, na, "q_offset", 0);
	ir_attr_set_int(g, na, "k_offset", self ? n[0] : 0);
	ir_attr_set_int(g, na, "v_offset", self ? n[0] + n[1] : n[1]);
	rw_erase_match(g, m);   /* the projections too */
}

static const Pattern patterns[] = {
	PATTERN_ROW("qkv", OP_KlnAttention, QkvMatch, match_qkv, rewrite_qkv),
};

void pass_fuse_qkv(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
