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
 * Static positions: a static-shape export slices its position-id buffer to
 * [1, S] with constants, and fold turns the Slice and then the position
 * Gather into one constant term P [1, S, H] (or [S, H], or [B, S, H] with
 * every batch slice the same, from ids arange(S) in every row).  That term
 * is the position embedding of the default positions 0..S-1: it becomes a
 * table [S, H] (P's first slice) indexed by arange(S) (exact: row s of the
 * sum gets P[s]).  A constant whose batch slices differ stays a plain Add.
 * Where the sum's dims are max() of the ids' symbols and another index's
 * (inputs of a dynamo export, each with symbols of its own), the fused op
 * broadcasts the indices as the Adds did: its [B, S] is the sum's, and
 * input_ids of batch 1 with token_type_ids of batch 2 is batch 2 as at -O0.
 *
 * requires: fuse-norm before it.
 * preserves: graph output names; shapes, but for that narrowing.
 * breaks: nothing. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* embed_layernorm: y = LN(Gather(word, ids) + the other gathers), or a
 * Concat with such a sum as one part (the concat_* fields) */
typedef struct EmbedMatch {
	Match m;
	ValId ids;        /* the [B, S] indices of the word table */
	ValId word;       /* the word table, f32 [rows, H] */
	ValId gamma;      /* the LayerNorm's scale */
	ValId beta;       /* and bias */
	ValId ix[2];      /* the indices of the other gathers, in term order */
	ValId tab[2];     /* and their tables */
	int cterm;        /* the other term k that is a constant position term
	                   * (ix[k], tab[k] made by the rewrite from pterm); -1 none */
	ValId pterm;      /* that constant [1, S, H], [S, H] or [B, S, H] */
	int nother;       /* how many other gathers (1 or 2) */
	ValId y;          /* the LayerNorm's result, taken over */
	double eps;       /* epsilon */
	ValId concat_x;   /* concatenated form: the Concat's result (the LN's input) */
	int concat_part;  /* the part that is the embedding sum */
	int concat_axis;  /* the Concat's axis (normalized) */
	int concat_skip;  /* the parts taken as skip sums (bit q: part q) */
} EmbedMatch;

/* The constant position term P as table [S, H] (its first slice) and
 * index arange(S) [S]: *ix, *tab. */
static void position_inputs(Graph *g, ValId p, ValId *ix, ValId *tab)
{
	const Value *P = IR_VAL(g, p);
	int64_t s = 0, h = 0;
	ir_dim_is_const(g, P->dims[P->rank - 2], &s);
	ir_dim_is_const(g, P->dims[P->rank - 1], &h);
	int64_t td[2] = {s, h};
	*tab = rw_const(g, "embed_positions", DT_F32, 2, td, P->data, (size_t)(s * h) * sizeof(float));
	int64_t *ar = malloc((size_t)(s ? s : 1) * sizeof *ar);
	if (!ar)
		abort();
	for (int64_t i = 0; i < s; i++)
		ar[i] = i;
	*ix = rw_const(g, "embed_position_ids", DT_I64, 1, &s, ar, (size_t)s * sizeof *ar);
	free(ar);
}

/* The KlnEmbedLayerNorm inputs in op order: ids, word, gamma, beta, then
 * the other index/table pairs (a constant position term's made here);
 * returns the count. */
static int embed_inputs(Graph *g, const EmbedMatch *em, ValId *in)
{
	in[0] = em->ids;
	in[1] = em->word;
	in[2] = em->gamma;
	in[3] = em->beta;
	for (int k = 0; k < em->nother; k++) {
		in[4 + 2 * k] = em->ix[k];
		in[5 + 2 * k] = em->tab[k];
		if (k == em->cterm)
			position_inputs(g, em->pterm, &in[4 + 2 * k], &in[5 + 2 * k]);
	}
	return 4 + 2 * em->nother;
}

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

/* v is a constant position term of the sum y [B, S, H]: f32 [1, S, H],
 * [S, H], or [B, S, H] whose B slices are equal (bytes), S and H y's. */
static bool position_const(const Graph *g, ValId v, const Value *y)
{
	const Value *p = IR_VAL(g, v);
	if (!m_is_const(g, v) || p->dtype != DT_F32 || p->rank < 2 || p->rank > 3 ||
	    p->dims[p->rank - 1] != y->dims[2] || p->dims[p->rank - 2] != y->dims[1])
		return false;
	int64_t b = 1, s = 0, h = 0;
	/* B slices: the sum's batch itself (a symbolic batch would broadcast
	 * against B at run time, which the fused op would not check) */
	if (p->rank == 3 && (!ir_dim_is_const(g, p->dims[0], &b) || (b != 1 && p->dims[0] != y->dims[0])))
		return false;
	if (!ir_dim_is_const(g, p->dims[p->rank - 2], &s) || !ir_dim_is_const(g, p->dims[p->rank - 1], &h))
		return false;
	size_t row = (size_t)(s * h) * sizeof(float);
	if (p->nbytes < (size_t)b * row)
		return false;
	for (int64_t k = 1; k < b; k++)
		if (memcmp((const char *)p->data + k * row, p->data, row))
			return false;
	return true;
}

/* The embedding sum: terms are 2 or 3 single-use Gathers (axis 0) of f32
 * [rows, H] tables into the sum y [B, S, H], one of them indexed by [B, S]
 * ids (the word gather).  Fills ids, word and the other index/table pairs
 * of the EmbedMatch m; gamma and beta are the caller's. */
static bool embed_gathers(const Graph *g, const ValId *terms, int nt, const Value *y, Match *m)
{
	if (nt < 2 || nt > 3)
		return m_fail(g, m, m->root, "the sum has %d terms, an embedding sum 2 or 3 Gathers", nt);
	if (y->rank != 3)
		return m_fail(g, m, m->root, "the output has rank %d, not 3 ([B, S, H])", y->rank);
	int word = -1, cterm = -1, any2 = -1;
	ValId ix_of[3], tab_of[3];
	for (int k = 0; k < nt; k++) {
		NodeId gt = m_def(g, terms[k], OP_Gather);
		if (gt < 0 && cterm < 0 && position_const(g, terms[k], y)) {
			cterm = k;      /* a folded position Gather (see the top) */
			ix_of[k] = tab_of[k] = -1;
			continue;
		}
		if (gt < 0)
			return m_fail(g, m, m->root, "term '%s' is not a Gather (nor a constant position "
			              "term [1, S, H])", IR_VAL(g, terms[k])->name);
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
		 * run time, the kernel checks the same.  The word ids may be one of
		 * several inputs whose own symbols the sum's dims are the max() of:
		 * the fused op's output is that broadcast too (ir/shape_fused.c) */
		if (word < 0 && ix->rank == 2 && ir_dim_covers(g, y->dims[0], ix->dims[0]) &&
		    ir_dim_covers(g, y->dims[1], ix->dims[1]))
			word = k;
		if (any2 < 0 && ix->rank == 2)
			any2 = k;
		m_add(m, gt);
		ix_of[k] = gn->in[1];
		tab_of[k] = gn->in[0];
	}
	/* the kernel broadcasts every index to the sum's [B, S] as the Adds
	 * did, so any [B, S]-like index may come first (the ids of the sum's
	 * own dims preferred) */
	if (word < 0)
		word = any2;
	if (word < 0)
		return m_fail(g, m, m->root, "no Gather is indexed by [B, S] ids (the word embedding)");
	EmbedMatch *em = M_AS(EmbedMatch, m);
	em->ids = ix_of[word];
	em->word = tab_of[word];
	em->nother = 0;
	em->cterm = -1;
	em->pterm = -1;
	for (int k = 0; k < nt; k++) {
		if (k == word)
			continue;
		if (k == cterm) {
			em->cterm = em->nother;
			em->pterm = terms[k];
		}
		em->ix[em->nother] = ix_of[k];
		em->tab[em->nother] = tab_of[k];
		em->nother++;
	}
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
	EmbedMatch *em = M_AS(EmbedMatch, m);
	em->gamma = ln->in[skip ? 2 : 1];
	em->beta = ln->in[skip ? 3 : 2];
	em->eps = ir_attr_float(g, root, "epsilon", 1e-12f);
	em->y = ln->out[0];
	return true;
}

static void rewrite_embed(Graph *g, const Match *m, PassCtx *pc)
{
	const EmbedMatch *em = M_AS_CONST(EmbedMatch, m);
	ValId in[8];
	int nin = embed_inputs(g, em, in);
	NodeId n = rw_replace(g, OP_KlnEmbedLayerNorm, IR_NODE(g, m->root)->name, nin, in, em->y);
	ir_attr_set_float(g, n, "epsilon", (float)em->eps);
	rw_erase_match(g, m);
	(void)pc;
}

/* ---- embed_layernorm over a concatenation ---------------------------------
 * LN(Concat(parts, axis)) with axis not the normalized (last) one is
 * Concat(LN(part) for each part, axis): LayerNorm works row by row, and
 * the kernels compute every row alike (the same ln_row).  VisualBERT
 * concatenates its text embedding sum with the visual one before the
 * LayerNorm; the first part that is an embedding sum becomes a
 * KlnEmbedLayerNorm, every other part gets its own KlnLayerNorm (or
 * KlnSkipLayerNorm when it is an Add of two same-shaped tensors).
 * The EmbedMatch's concat_* fields say which part is fused, the axis and
 * the parts taken as skip sums. */
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
	EmbedMatch *em = M_AS(EmbedMatch, m);
	for (int p = 0; p < cn->nin; p++) {
		EmbedMatch t = *em;
		ValId terms[4];
		int nt = addends(g, cn->in[p], false, terms, 4, 0, &t.m);
		if (nt < 2 || !embed_gathers(g, terms, nt, IR_VAL(g, cn->in[p]), &t.m) ||
		    !m_closed(g, &t.m, ln->out[0]))
			continue;
		t.m.why[0] = 0;
		*em = t;
		/* another part that is a single-use Add of two tensors of its shape
		 * becomes a KlnSkipLayerNorm (bit q of concat_skip), as fuse-norm would have */
		em->concat_skip = 0;
		for (int q = 0; q < cn->nin; q++) {
			ValId pq = cn->in[q];
			NodeId a = m_def(g, pq, OP_Add);
			if (q == p || a < 0 || m_nuses(g, pq) != 1 || ir_is_output(g, pq) ||
			    !m_same_shape(g, IR_NODE(g, a)->in[0], pq) ||
			    !m_same_shape(g, IR_NODE(g, a)->in[1], pq))
				continue;
			m_add(m, a);
			em->concat_skip |= 1 << q;
		}
		em->gamma = ln->in[1];
		em->beta = ln->in[2];
		em->eps = ir_attr_float(g, root, "epsilon", 1e-12f);
		em->y = ln->out[0];
		em->concat_x = x;
		em->concat_part = p;
		em->concat_axis = (int)axis;
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
	const EmbedMatch *em = M_AS_CONST(EmbedMatch, m);
	const char *name = IR_NODE(g, m->root)->name;
	NodeId c = m_def(g, em->concat_x, OP_Concat);
	ValId parts[EMB_MAXPARTS];
	int np = IR_NODE(g, c)->nin;
	for (int p = 0; p < np; p++)
		parts[p] = IR_NODE(g, c)->in[p];
	float eps = (float)em->eps;
	for (int p = 0; p < np; p++) {
		if (p == em->concat_part) {
			ValId in[8];
			int nin = embed_inputs(g, em, in);
			parts[p] = normed(g, OP_KlnEmbedLayerNorm, name, nin, in, eps);
		} else if (em->concat_skip & (1 << p)) {
			const Node *a = IR_NODE(g, m_def(g, parts[p], OP_Add));
			ValId in[4] = {a->in[0], a->in[1], em->gamma, em->beta};
			parts[p] = normed(g, OP_KlnSkipLayerNorm, name, 4, in, eps);
		} else {
			ValId in[3] = {parts[p], em->gamma, em->beta};
			parts[p] = normed(g, OP_KlnLayerNorm, name, 3, in, eps);
		}
	}
	NodeId n = rw_replace(g, OP_Concat, name, np, parts, em->y);
	ir_attr_set_int(g, n, "axis", em->concat_axis);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("embed_layernorm", OP_KlnLayerNorm, EmbedMatch, match_embed, rewrite_embed),
	PATTERN_ROW("embed_layernorm", OP_KlnSkipLayerNorm, EmbedMatch, match_embed, rewrite_embed),
	PATTERN_ROW("embed_layernorm", OP_KlnLayerNorm, EmbedMatch, match_embed_concat, rewrite_embed_concat),
};

void pass_fuse_embed(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
