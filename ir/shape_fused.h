/* Shape inference of kiln's fused ops (K_FUSED in ops.def).  ir_infer_node
 * calls it for those; the passes that create fused ops own its rules. */
#ifndef KILN_SHAPE_FUSED_H
#define KILN_SHAPE_FUSED_H

#include "ir.h"

/* 0, or -1 with diag naming the node. */
int ir_infer_fused(Graph *g, NodeId n, Diag *diag);

#endif
