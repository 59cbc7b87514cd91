/* The rewriter used by fusions and canonicalizations, and the driver of the
 * fusion-pattern tables (fuse_run).  Every mutation goes through the IR's
 * use-list keeping primitives (ir_node_new, ir_set_input,
 * ir_replace_all_uses, ir_node_erase). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

NodeId rw_replace(Graph *g, Op op, const char *name, int nin, const ValId *in, ValId old)
{
	/* the new value inherits the old name (graph outputs keep their names,
	 * dumps stay readable); the old one, about to die, is renamed */
	const char *nm = IR_VAL(g, old)->name;
	size_t len = strlen(nm) + 8;
	char *buf = malloc(len);
	if (!buf)
		abort();
	snprintf(buf, len, "%s.old", nm);
	IR_VAL(g, old)->name = ir_arena_strdup(g->arena, buf);
	free(buf);
	NodeId n = ir_node_new(g, op, name, nin, in, 1, &nm);
	ValId nv = IR_NODE(g, n)->out[0];
	Value *ov = IR_VAL(g, old), *v = IR_VAL(g, nv);
	v->dtype = ov->dtype;
	ir_value_set_shape(g, nv, ov->rank, ov->dims);
	ir_replace_all_uses(g, old, nv);
	return n;
}

void rw_erase_match(Graph *g, const Match *m)
{
	for (int i = 0; i < m->nnodes; i++)
		ir_node_erase(g, m->nodes[i]);
}

ValId rw_const(Graph *g, const char *base, DType t, int rank, const int64_t *dims,
               const void *data, size_t nbytes)
{
	/* ir_value_new does not uniquify explicit names; the graph's own name
	 * set does, so the name depends on this graph only (not on what ran
	 * before in the process) */
	return ir_const_new(g, ir_unique_name(g, base), t, rank, dims, data, nbytes, false);
}

/* Adds the ONNX node names behind node n (its own `from` list when it is a
 * fused node itself, else its name) to names[*cnt..), without duplicates. */
static void from_names(const Graph *g, NodeId n, const char **names, int *cnt, int max)
{
	const Node *nd = IR_NODE(g, n);
	const char *own = nd->name;
	int k = nd->nfrom > 0 ? nd->nfrom : 1;
	for (int i = 0; i < k; i++) {
		const char *s = nd->nfrom > 0 ? nd->from[i] : own;
		if (!s || !*s)
			continue;
		bool dup = false;
		for (int j = 0; j < *cnt && !dup; j++)
			dup = !strcmp(names[j], s);
		if (!dup && *cnt < max)
			names[(*cnt)++] = s;
	}
}

/* Nodes [lo, hi) without a `from` list of their own get the names m absorbed. */
static void set_from(Graph *g, const Match *m, NodeId lo, NodeId hi)
{
	enum { MAXFROM = 256 };
	const char *names[MAXFROM];
	int cnt = 0;
	for (int i = 0; i < m->nnodes; i++)
		from_names(g, m->nodes[i], names, &cnt, MAXFROM);
	if (!cnt)
		return;
	/* the strings live in the graph's arena already: share them */
	const char **arr = ir_arena_alloc(g->arena, (size_t)cnt * sizeof *arr, _Alignof(const char *));
	memcpy(arr, names, (size_t)cnt * sizeof *arr);
	for (NodeId n = lo; n < hi; n++) {
		if (IR_NODE(g, n)->nfrom)
			continue;   /* the rewrite said it itself (rw_from_nodes) */
		IR_NODE(g, n)->from = arr;
		IR_NODE(g, n)->nfrom = cnt;
	}
}

void rw_record_from(Graph *g, const Match *m, NodeId first_new)
{
	set_from(g, m, first_new, g->nnodes);
}

void rw_from_nodes(Graph *g, NodeId n, const NodeId *src, int nsrc)
{
	Match m;
	m.nnodes = 0;
	for (int i = 0; i < nsrc; i++)
		m_add(&m, src[i]);
	IR_NODE(g, n)->nfrom = 0;
	set_from(g, &m, n, n + 1);
}

static const char *node_name(const Graph *g, NodeId n)
{
	return IR_NODE(g, n)->name ? IR_NODE(g, n)->name : "";
}

/* --explain names this pattern. */
static bool explaining(const PassCtx *pc, const Pattern *pat)
{
	return pc->opt && pc->opt->explain && !strcmp(pc->opt->explain, pat->name);
}

/* Was root made by a rewrite of the explained pattern (PassCtx.made)? */
static bool made_by_pattern(const PassCtx *pc, NodeId root)
{
	for (int i = 0; i < pc->nmade; i++)
		if (pc->made[i] == root)
			return true;
	return false;
}

/* Records the nodes of the pattern's root op among those its rewrite made
 * (first_new on): they are its results, not candidates. */
static void note_made(const Graph *g, PassCtx *pc, const Pattern *pat, NodeId first_new)
{
	for (NodeId n = first_new; n < g->nnodes; n++) {
		if (IR_NODE(g, n)->op != pat->root)
			continue;
		if (pc->nmade == pc->capmade) {
			int cap = pc->capmade ? 2 * pc->capmade : 16;
			NodeId *p = realloc(pc->made, (size_t)cap * sizeof *p);
			if (!p)
				abort();
			pc->made = p;
			pc->capmade = cap;
		}
		pc->made[pc->nmade++] = n;
	}
}

/* --explain=PATTERN: one line per candidate root of that pattern.  ok: the
 * root fused (into the nodes from first_new on) or, in dry mode, would.  A
 * root the pattern made itself (fused in an earlier round, said then) is no
 * candidate: each root gets one line. */
static void explain(const Graph *g, PassCtx *pc, const Pattern *pat, NodeId root,
                    const Match *m, bool ok, NodeId first_new)
{
	if (!explaining(pc, pat) || (!ok && (m->done || made_by_pattern(pc, root))))
		return;
	pc->nexplained++;
	FILE *f = pc->opt->dump ? pc->opt->dump : stdout;
	fprintf(f, "explain %s: %s '%s': ", pat->name, ir_opname(IR_NODE(g, root)->op),
	        node_name(g, root));
	if (ok && pc->dry)
		fprintf(f, "would fuse (%d nodes; the pattern did not run)\n", m->nnodes);
	else if (ok && first_new < g->nnodes) {
		/* name the fused op, not a helper node the rewrite built before it
		 * (an attention's bias Unsqueeze) */
		NodeId n = first_new;
		for (NodeId i = first_new; i < g->nnodes; i++)
			if (ir_opinfo[IR_NODE(g, i)->op].kind == K_FUSED) {
				n = i;
				break;
			}
		fprintf(f, "fused as %s '%s' (%d nodes)\n", ir_opname(IR_NODE(g, n)->op),
		        node_name(g, n), m->nnodes);
	}
	else if (ok)
		fprintf(f, "fused (%d nodes)\n", m->nnodes);
	else if (m->why[0] && m->why_node >= 0)
		fprintf(f, "not fused: at %s '%s': %s\n", ir_opname(IR_NODE(g, m->why_node)->op),
		        node_name(g, m->why_node), m->why);
	else
		fprintf(f, "not fused: %s\n", m->why[0] ? m->why : "(the matcher gave no reason)");
}

int fuse_run(Graph *g, PassCtx *pc, const Pattern *pats, int npats)
{
	int total = 0;
	for (int p = 0; p < npats; p++) {
		const Pattern *pat = &pats[p];
		assert(pass_pattern_lookup(pat->name, strlen(pat->name)) >= 0);
		if (pc->dry ? !explaining(pc, pat) : pass_pattern_disabled(pc, pat->name))
			continue;
		/* g->order may grow (new nodes are appended) and move */
		for (int32_t i = 0; i < g->norder; i++) {
			NodeId id = g->order[i];
			if (IR_NODE(g, id)->dead || IR_NODE(g, id)->op != pat->root)
				continue;
			/* the pattern's typed match, zeroed, its Match first */
			union {
				Match m;
				unsigned char bytes[M_MATCH_BYTES];
			} buf;
			assert(pat->size >= sizeof(Match) && pat->size <= sizeof buf);
			memset(&buf, 0, pat->size);
			Match *m = &buf.m;
			m->root = id;
			m->why_node = -1;
			if (!pat->match(g, id, m)) {
				/* the reasons come from the dry run after the pipeline,
				 * over what is left in the end */
				if (pc->dry)
					explain(g, pc, pat, id, m, false, g->nnodes);
				continue;
			}
			if (pc->dry) {
				explain(g, pc, pat, id, m, true, g->nnodes);
				continue;
			}
			NodeId first_new = g->nnodes;
			pat->rewrite(g, m, pc);
			rw_record_from(g, m, first_new);
			explain(g, pc, pat, id, m, true, first_new);
			if (explaining(pc, pat))
				note_made(g, pc, pat, first_new);
			pass_count(pc, pat->name);
			total++;
		}
		if (!pc->dry) {
			ir_dce(g);
			ir_toposort(g);
		}
	}
	return total;
}
