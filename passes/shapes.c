/* Pass `shapes`: re-runs shape inference over the whole graph.
 *
 * requires: a graph the verifier accepts.
 * preserves: everything structural; refreshes dtype, rank, dims and the
 *            symbolic content (sval) of every node output.
 * breaks: nothing. */
#include "pass_internal.h"

void pass_shapes(Graph *g, PassCtx *pc)
{
	Diag d = {0};
	if (ir_infer_shapes(g, &d))
		pass_fail(pc, "%s", d.msg);
}
