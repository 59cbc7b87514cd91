/* Pass `fuse-embed`: the embedding sum and its LayerNorm as one op.
 *
 * Pattern `embed_layernorm` (root: KlnLayerNorm or KlnSkipLayerNorm whose
 * residual-sum output is unused):
 *   LN(Gather(word, ids) + Gather(pos, pos_ids) [+ Gather(seg, seg_ids)])
 *   (the sum in any association and order; 2 or 3 gathers)
 *   -> KlnEmbedLayerNorm(ids, word, gamma, beta, pos_ids, pos, seg_ids?, seg?) {epsilon}
 * Every table is an f32 [rows, H] and every Gather has axis 0; ids is the
 * [B, S] index of the output; the other indices broadcast to [B, S] (rank 1
 * [S] or rank 2).  The kernel checks every index against its table.
 *
 * requires: fuse-norm before it.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include "pass_internal.h"

/* Collects the addends of the single-use Add tree under v. */
static int addends(const Graph *g, ValId v, bool top, ValId *out, int max, int cnt, Match *m)
{
	NodeId a = m_def(g, v, OP_Add);
	if (a >= 0 && (top || m_nuses(g, v) == 1)) {
		m_add(m, a);
		for (int k = 0; k < 2 && cnt >= 0; k++)
			cnt = addends(g, IR_NODE(g, a)->in[k], false, out, max, cnt, m);
		return cnt;
	}
	if (cnt < 0 || cnt >= max)
		return -1;
	out[cnt++] = v;
	return cnt;
}

static bool match_embed(const Graph *g, NodeId root, Match *m)
{
	const Node *ln = IR_NODE(g, root);
	bool skip = ln->op == OP_KlnSkipLayerNorm;
	if (skip && (ln->nin > 4 || (ln->nout > 1 && m_nuses(g, ln->out[1]) > 0)))
		return false;
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
	if (nt < 2 || nt > 3)
		return false;
	const Value *y = IR_VAL(g, ln->out[0]);
	if (y->rank != 3)
		return false;
	int word = -1;
	for (int k = 0; k < nt; k++) {
		NodeId gt = m_def(g, terms[k], OP_Gather);
		if (gt < 0 || m_nuses(g, terms[k]) != 1 || ir_attr_int(g, gt, "axis", 0) != 0)
			return false;
		const Node *gn = IR_NODE(g, gt);
		const Value *tab = IR_VAL(g, gn->in[0]), *ix = IR_VAL(g, gn->in[1]);
		if (tab->dtype != DT_F32 || tab->rank != 2 || tab->dims[1] != y->dims[2] ||
		    !ir_dtype_is_int(ix->dtype) || ix->rank < 1 || ix->rank > 2)
			return false;
		/* indices broadcast against [B, S]: the Adds required equal-or-1 at
		 * run time, the kernel checks the same */
		if (word < 0 && ix->rank == 2 && ix->dims[0] == y->dims[0] && ix->dims[1] == y->dims[1])
			word = k;
		m_add(m, gt);
		m->v[8 + 2 * k] = gn->in[1];
		m->v[9 + 2 * k] = gn->in[0];
	}
	if (word < 0 || !m_closed(g, m, ln->out[0]))
		return false;
	/* inputs in op order: ids, word, gamma, beta, then the other two pairs */
	int slot = 4;
	for (int i = 0; i < 8; i++)
		m->v[i] = -1;
	m->v[0] = m->v[8 + 2 * word];
	m->v[1] = m->v[9 + 2 * word];
	m->v[2] = ln->in[skip ? 2 : 1];
	m->v[3] = ln->in[skip ? 3 : 2];
	for (int k = 0; k < nt; k++) {
		if (k == word)
			continue;
		m->v[slot] = m->v[8 + 2 * k];
		m->v[slot + 1] = m->v[9 + 2 * k];
		slot += 2;
	}
	m->i[0] = slot;
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

static const Pattern patterns[] = {
	{"embed_layernorm", OP_KlnLayerNorm, match_embed, rewrite_embed},
	{"embed_layernorm", OP_KlnSkipLayerNorm, match_embed, rewrite_embed},
};

void pass_fuse_embed(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
