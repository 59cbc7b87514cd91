/* Pass `dce`: dead-code elimination.
 *
 * requires: nothing.
 * preserves: order of the remaining nodes, shapes.
 * breaks: nothing (removes nodes none of whose outputs is used or is a
 *         graph output; every op in the IR is free of side effects). */
#include "pass_internal.h"

void pass_dce(Graph *g, PassCtx *pc)
{
	(void)pc;
	ir_dce(g);
}
