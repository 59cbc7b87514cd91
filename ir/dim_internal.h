/* Private to ir/: lifetime of a graph's symbolic-dim table (ir/dim.c).
 * graph.c creates it in ir_graph_new and frees it in ir_graph_free. */
#ifndef KILN_DIM_INTERNAL_H
#define KILN_DIM_INTERNAL_H

#include <stdint.h>

struct DimTab;

struct DimTab *ir_dimtab_new(void);
void ir_dimtab_free(struct DimTab *);

/* Bound on the depth of d's tree view (ir_dim_node), which recursive
 * walks of a dim (printing, evaluation, code generation) descend: shape
 * inference refuses dims deeper than IR_DIM_MAX_DEPTH (ir/shape.c). */
#define IR_DIM_MAX_DEPTH 256
struct Graph;
int ir_dim_depth(const struct Graph *g, int32_t d);

#endif
