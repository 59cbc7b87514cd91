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

/* Pass `assume-dims`: ir_assume_head_split_dims (ir/unify.c): a head split
 * that keeps the leading dims of a broadcast extent max(a, e) as e (a
 * dynamo export whose inputs have symbols of their own) assumes the
 * extent is e, checked at the start of every run.  Then Shape() of either
 * side folds alike, and the head count is a constant again: when it
 * assumed something it runs canon-reshape, so the head splits get the
 * constant shapes fuse-attention reads.
 *
 * requires: a graph with inferred shapes.
 * preserves: graph output names; re-infers shapes when it assumed.
 * breaks: nothing. */
void pass_assume_dims(Graph *g, PassCtx *pc)
{
	Diag d = {0};
	int n = ir_assume_head_split_dims(g, &d);
	if (n < 0)
		pass_fail(pc, "%s", d.msg);
	else if (n > 0)
		pass_canon_reshape(g, pc);
}
