/* Pass `fuse-embed`: the embedding sum and its LayerNorm as one op.
 *
 * Pattern `embed_layernorm` (root: KlnLayerNorm or KlnSkipLayerNorm whose
 * residual-sum output is unused):
 *   LN(Gather(word, ids) + Gather(pos, pos_ids) [+ Gather(seg, seg_ids)])
 *   (the sum in any association and order; 2 or 3 gathers)
 *   -> KlnEmbedLayerNorm(ids, word, gamma, beta, pos_ids, pos, seg_ids?, seg?) {epsilon}
 * and over a concatenation (VisualBERT: text and visual embeddings joined
 * along the sequence before the LayerNorm):
 *   KlnLayerNorm(Concat(..., text sum, ..., axis < last))
 *   -> Concat(..., KlnEmbedLayerNorm(text gathers), ..., KlnLayerNorm(other part), ...)
 * (KlnSkipLayerNorm(a, b) for another part that is a single-use Add(a, b))
 * Every table is an f32 [rows, H] and every Gather has axis 0; ids is the
 * [B, S] index of the output; the other indices broadcast to [B, S] (rank 1
 * [S] or rank 2).  The kernel checks every index against its table.
 *
 * requires: fuse-norm before it.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <assert.h>

#include "pass_internal.h"

/* Collects the addends of the single-use Add tree under v.  A tree of at
 * most max leaves is at most max - 1 Adds deep: deeper is no match, and
 * the bound keeps a chain of 300,000 Adds from overflowing the stack. */
static int addends_at(const Graph *g, ValId v, bool top, ValId *out, int max, int cnt, Match *m,
                      int depth)
{
	NodeId a = m_def(g, v, OP_Add);
	if (a >= 0 && (top || m_nuses(g, v) == 1)) {
		if (depth >= max)
			return -1;
		m_add(m, a);
		for (int k = 0; k < 2 && cnt >= 0; k++)
			cnt = addends_at(g, IR_NODE(g, a)->in[k], false, out, max, cnt, m, depth + 1);
		return cnt;
	}
	if (cnt < 0 || cnt >= max)
		return -1;
	out[cnt++] = v;
	return cnt;
}

static int addends(const Graph *g, ValId v, bool top, ValId *out, int max, int cnt, Match *m)
{
	return addends_at(g, v, top, out, max, cnt, m, 0);
}

/* The embedding sum: terms are 2 or 3 single-use Gathers (axis 0) of f32
 * [rows, H] tables into the sum y [B, S, H], one of them indexed by [B, S]
 * ids (the word gather).  Fills m->v[0], v[1] (ids, word) and v[4..] (the
 * other index/table pairs, in term order), m->i[0] the input count; gamma
 * and beta (v[2], v[3]) are the caller's. */
static bool embed_gathers(const Graph *g, const ValId *terms, int nt, const Value *y, Match *m)
{
	if (nt < 2 || nt > 3)
		return m_fail(g, m, m->root, "the sum has %d terms, an embedding sum 2 or 3 Gathers", nt);
	if (y->rank != 3)
		return m_fail(g, m, m->root, "the output has rank %d, not 3 ([B, S, H])", y->rank);
	int word = -1;
	ValId ix_of[3], tab_of[3];
	for (int k = 0; k < nt; k++) {
		NodeId gt = m_def(g, terms[k], OP_Gather);
		if (gt < 0)
			return m_fail(g, m, m->root, "term '%s' is not a Gather", IR_VAL(g, terms[k])->name);
		if (m_nuses(g, terms[k]) != 1)
			return m_fail(g, m, gt, "its result has other users");
		if (ir_attr_int(g, gt, "axis", 0) != 0)
			return m_fail(g, m, gt, "axis is not 0");
		const Node *gn = IR_NODE(g, gt);
		const Value *tab = IR_VAL(g, gn->in[0]), *ix = IR_VAL(g, gn->in[1]);
		if (tab->dtype != DT_F32 || tab->rank != 2 || tab->dims[1] != y->dims[2])
			return m_fail(g, m, gt, "the table is not an f32 [rows, H] matrix");
		if (!ir_dtype_is_int(ix->dtype) || ix->rank < 1 || ix->rank > 2)
			return m_fail(g, m, gt, "the indices are not integers of rank 1 or 2");
		/* indices broadcast against [B, S]: the Adds required equal-or-1 at
		 * run time, the kernel checks the same */
		if (word < 0 && ix->rank == 2 && ix->dims[0] == y->dims[0] && ix->dims[1] == y->dims[1])
			word = k;
		m_add(m, gt);
		ix_of[k] = gn->in[1];
		tab_of[k] = gn->in[0];
	}
	if (word < 0)
		return m_fail(g, m, m->root, "no Gather is indexed by [B, S] ids (the word embedding)");
	/* inputs in op order: ids, word, gamma, beta, then the other two pairs */
	for (int i = 0; i < 8; i++)
		m->v[i] = -1;
	m->v[0] = ix_of[word];
	m->v[1] = tab_of[word];
	int slot = 4;
	for (int k = 0; k < nt; k++) {
		if (k == word)
			continue;
		m->v[slot] = ix_of[k];
		m->v[slot + 1] = tab_of[k];
		slot += 2;
	}
	m->i[0] = slot;
	return true;
}

static bool match_embed(const Graph *g, NodeId root, Match *m)
{
	const Node *ln = IR_NODE(g, root);
	bool skip = ln->op == OP_KlnSkipLayerNorm;
	if (skip && ln->nin > 4)
		return m_fail(g, m, root, "has a bias input");
	if (skip && ln->nout > 1 && m_nuses(g, ln->out[1]) > 0)
		return m_fail(g, m, root, "its residual sum output is used");
	ValId terms[4];
	int nt;
	m_add(m, root);
	if (skip) {
		nt = addends(g, ln->in[0], false, terms, 4, 0, m);
		if (nt > 0)
			nt = addends(g, ln->in[1], false, terms, 4, nt, m);
	} else {
		nt = addends(g, ln->in[0], true, terms, 4, 0, m);
	}
	if (!embed_gathers(g, terms, nt, IR_VAL(g, ln->out[0]), m))
		return false;
	if (!m_closed(g, m, ln->out[0]))
		return m_fail(g, m, root, "a value of the embedding sum is used outside it");
	m->v[2] = ln->in[skip ? 2 : 1];
	m->v[3] = ln->in[skip ? 3 : 2];
	m->f[0] = ir_attr_float(g, root, "epsilon", 1e-12f);
	m->v[12] = ln->out[0];
	return true;
}

static void rewrite_embed(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	NodeId n = rw_replace(g, OP_KlnEmbedLayerNorm, IR_NODE(g, m->root)->name, (int)m->i[0], m->v,
	                      m->v[12]);
	ir_attr_set_float(g, n, "epsilon", (float)m->f[0]);
	rw_erase_match(g, m);
}

/* ---- embed_layernorm over a concatenation ---------------------------------
 * LN(Concat(parts, axis)) with axis not the normalized (last) one is
 * Concat(LN(part) for each part, axis): LayerNorm works row by row, and
 * the kernels compute every row alike (the same ln_row).  VisualBERT
 * concatenates its text embedding sum with the visual one before the
 * LayerNorm; the first part that is an embedding sum becomes a
 * KlnEmbedLayerNorm, every other part gets its own KlnLayerNorm (or
 * KlnSkipLayerNorm when it is an Add of two same-shaped tensors).
 * Match slots as above, plus i[1] the fused part, i[2] the axis, i[3] the
 * parts taken as skip sums (bits). */
#define EMB_MAXPARTS 8

static bool match_embed_concat(const Graph *g, NodeId root, Match *m)
{
	const Node *ln = IR_NODE(g, root);
	ValId x = ln->in[0];
	NodeId c = m_def(g, x, OP_Concat);
	const Value *xv = IR_VAL(g, x);
	if (c < 0)
		return m_fail(g, m, root, "its input is not a Concat (the concatenated form)");
	if (m_nuses(g, x) != 1 || xv->rank != 3)
		return m_fail(g, m, c, "the Concat has other users or is not of rank 3");
	const Node *cn = IR_NODE(g, c);
	int64_t axis = ir_attr_int(g, c, "axis", 0);
	if (axis < 0)
		axis += xv->rank;
	if (axis < 0 || axis >= xv->rank - 1)
		return m_fail(g, m, c, "concatenates along the normalized (last) axis");
	if (cn->nin < 2 || cn->nin > EMB_MAXPARTS)
		return m_fail(g, m, c, "has %d parts (2 to %d)", cn->nin, EMB_MAXPARTS);
	m_add(m, root);
	m_add(m, c);
	for (int p = 0; p < cn->nin; p++) {
		Match t = *m;
		ValId terms[4];
		int nt = addends(g, cn->in[p], false, terms, 4, 0, &t);
		if (nt < 2 || !embed_gathers(g, terms, nt, IR_VAL(g, cn->in[p]), &t) ||
		    !m_closed(g, &t, ln->out[0]))
			continue;
		t.why[0] = 0;
		*m = t;
		/* another part that is a single-use Add of two tensors of its shape
		 * becomes a KlnSkipLayerNorm (bit i of i[3]), as fuse-norm would have */
		m->i[3] = 0;
		for (int q = 0; q < cn->nin; q++) {
			ValId pq = cn->in[q];
			NodeId a = m_def(g, pq, OP_Add);
			if (q == p || a < 0 || m_nuses(g, pq) != 1 || m_is_output(g, pq) ||
			    !m_same_shape(g, IR_NODE(g, a)->in[0], pq) ||
			    !m_same_shape(g, IR_NODE(g, a)->in[1], pq))
				continue;
			m_add(m, a);
			m->i[3] |= 1 << q;
		}
		m->v[2] = ln->in[1];
		m->v[3] = ln->in[2];
		m->f[0] = ir_attr_float(g, root, "epsilon", 1e-12f);
		m->v[12] = ln->out[0];
		m->v[13] = x;
		m->i[1] = p;
		m->i[2] = axis;
		return true;
	}
	return m_fail(g, m, c, "no part is an embedding sum of 2 or 3 Gathers");
}

/* A new fused node with attribute epsilon and its output inferred. */
static ValId normed(Graph *g, Op op, const char *name, int nin, const ValId *in, float eps)
{
	NodeId n = ir_node_new(g, op, name, nin, in, 1, NULL);
	ir_attr_set_float(g, n, "epsilon", eps);
	Diag d = {0};
	int rc = ir_infer_node(g, n, &d);
	assert(rc == 0);
	(void)rc;
	return IR_NODE(g, n)->out[0];
}

static void rewrite_embed_concat(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const char *name = IR_NODE(g, m->root)->name;
	NodeId c = m_def(g, m->v[13], OP_Concat);
	ValId parts[EMB_MAXPARTS];
	int np = IR_NODE(g, c)->nin;
	for (int p = 0; p < np; p++)
		parts[p] = IR_NODE(g, c)->in[p];
	float eps = (float)m->f[0];
	for (int p = 0; p < np; p++) {
		if (p == m->i[1]) {
			parts[p] = normed(g, OP_KlnEmbedLayerNorm, name, (int)m->i[0], m->v, eps);
		} else if (m->i[3] & (1 << p)) {
			const Node *a = IR_NODE(g, m_def(g, parts[p], OP_Add));
			ValId in[4] = {a->in[0], a->in[1], m->v[2], m->v[3]};
			parts[p] = normed(g, OP_KlnSkipLayerNorm, name, 4, in, eps);
		} else {
			ValId in[3] = {parts[p], m->v[2], m->v[3]};
			parts[p] = normed(g, OP_KlnLayerNorm, name, 3, in, eps);
		}
	}
	NodeId n = rw_replace(g, OP_Concat, name, np, parts, m->v[12]);
	ir_attr_set_int(g, n, "axis", m->i[2]);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("embed_layernorm", OP_KlnLayerNorm, Match, match_embed, rewrite_embed),
	PATTERN_ROW("embed_layernorm", OP_KlnSkipLayerNorm, Match, match_embed, rewrite_embed),
	PATTERN_ROW("embed_layernorm", OP_KlnLayerNorm, Match, match_embed_concat, rewrite_embed_concat),
};

void pass_fuse_embed(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
