/* Pass `cleanup`: removes ops that only forward a value.
 *
 *   Identity(x)            -> x
 *   Dropout(x) (inference) -> x   when its mask output is unused and
 *                                 training_mode is absent or constant false
 *
 * requires: nothing.
 * preserves: shapes, graph output names (a forwarding node whose output is
 *            a graph output is kept, so the output keeps its name).
 * breaks: nothing. */
#include "pass_internal.h"

static bool removable(const Graph *g, const Node *n)
{
	if (n->nin < 1 || n->in[0] < 0 || ir_is_output(g, n->out[0]))
		return false;
	if (n->op == OP_Identity)
		return true;
	if (n->op != OP_Dropout)
		return false;
	if (n->nout > 1 && m_nuses(g, n->out[1]) > 0)
		return false;
	if (n->nin > 2 && n->in[2] >= 0) {
		double t;
		if (!m_const_scalar(g, n->in[2], &t) || t != 0)
			return false;
	}
	return true;
}

void pass_cleanup(Graph *g, PassCtx *pc)
{
	(void)pc;
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		Node *n = IR_NODE(g, id);
		if (n->dead || !removable(g, n))
			continue;
		ir_replace_all_uses(g, n->out[0], n->in[0]);
		ir_node_erase(g, id);
	}
	ir_dce(g);
}
