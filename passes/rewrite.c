/* The rewriter used by fusions and canonicalizations, and the driver of the
 * fusion-pattern tables (fuse_run).  Every mutation goes through the IR's
 * use-list keeping primitives (ir_node_new, ir_set_input,
 * ir_replace_all_uses, ir_node_erase). */
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
	/* ir_value_new does not uniquify explicit names: derive a fresh one */
	static unsigned counter;
	size_t len = strlen(base) + 24;
	char *buf = malloc(len);
	if (!buf)
		abort();
	do
		snprintf(buf, len, "%s.c%u", base, counter++);
	while (ir_value_find(g, buf) >= 0);
	ValId v = ir_const_new(g, buf, t, rank, dims, data, nbytes, false);
	free(buf);
	return v;
}

/* --explain=PATTERN: one line per candidate root of that pattern. */
static void explain(const Graph *g, const PassCtx *pc, const Pattern *pat, NodeId root,
                    const Match *m, bool ok)
{
	if (!pc->opt || !pc->opt->explain || strcmp(pc->opt->explain, pat->name) != 0)
		return;
	FILE *f = pc->opt->dump ? pc->opt->dump : stdout;
	const Node *r = IR_NODE(g, root);
	fprintf(f, "explain %s: %s '%s': ", pat->name, ir_opname(r->op), r->name ? r->name : "");
	if (ok)
		fprintf(f, "fused (%d nodes)\n", m->nnodes);
	else if (m->why[0] && m->why_node >= 0)
		fprintf(f, "not fused: at %s '%s': %s\n", ir_opname(IR_NODE(g, m->why_node)->op),
		        IR_NODE(g, m->why_node)->name ? IR_NODE(g, m->why_node)->name : "", m->why);
	else
		fprintf(f, "not fused: %s\n", m->why[0] ? m->why : "(the matcher gave no reason)");
}

int fuse_run(Graph *g, PassCtx *pc, const Pattern *pats, int npats)
{
	int total = 0;
	for (int p = 0; p < npats; p++) {
		const Pattern *pat = &pats[p];
		if (pass_pattern_disabled(pc, pat->name))
			continue;
		/* g->order may grow (new nodes are appended) and move */
		for (int32_t i = 0; i < g->norder; i++) {
			NodeId id = g->order[i];
			if (IR_NODE(g, id)->dead || IR_NODE(g, id)->op != pat->root)
				continue;
			Match m;
			memset(&m, 0, sizeof m);
			m.root = id;
			m.why_node = -1;
			if (!pat->match(g, id, &m)) {
				explain(g, pc, pat, id, &m, false);
				continue;
			}
			explain(g, pc, pat, id, &m, true);
			pat->rewrite(g, &m, pc);
			pass_count(pc, pat->name);
			total++;
		}
		ir_dce(g);
		ir_toposort(g);
	}
	return total;
}
