/* Private to ir/: lifetime of a graph's symbolic-dim table (ir/dim.c).
 * graph.c creates it in ir_graph_new and frees it in ir_graph_free. */
#ifndef KILN_DIM_INTERNAL_H
#define KILN_DIM_INTERNAL_H

struct DimTab;

struct DimTab *ir_dimtab_new(void);
void ir_dimtab_free(struct DimTab *);

#endif
