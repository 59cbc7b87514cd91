/* index_bound.c: how far an integer value may range when it indexes a
 * table -- the rows of the embedding table it selects from.  The backend
 * records it per integer graph input (rt_model_desc.in_index_bound), so
 * that kiln bench and kiln_model_input_index_bound can draw token ids
 * below it. */
#include "ir.h"

/* follow a value through this many no-op views and Casts at most */
#define MAX_DEPTH 4

static bool is_view(Op op)
{
	return op == OP_Cast || op == OP_Reshape || op == OP_Unsqueeze || op == OP_Squeeze ||
	       op == OP_Flatten || op == OP_Identity;
}

/* The table that use u of a value indexes rows of, or -1: a Gather on
 * axis 0 (the value its indices), or a KlnEmbedLayerNorm (the value one of
 * its id inputs: ids -> word table, token types -> their table, position
 * ids -> position table). */
static ValId indexed_table(const Graph *g, const Use *u)
{
	const Node *n = IR_NODE(g, u->node);
	if (n->op == OP_Gather && u->idx == 1 && ir_attr_int(g, u->node, "axis", 0) == 0)
		return n->in[0];
	if (n->op == OP_KlnEmbedLayerNorm && (u->idx == 0 || u->idx == 4 || u->idx == 6))
		return u->idx + 1 < n->nin ? n->in[u->idx == 0 ? 1 : u->idx + 1] : -1;
	return -1;
}

static int64_t bound(const Graph *g, ValId v, int depth)
{
	int64_t best = 0;
	const Value *val = IR_VAL(g, v);
	for (int32_t i = 0; i < val->nuses; i++) {
		const Use *u = &val->uses[i];
		const Node *n = IR_NODE(g, u->node);
		int64_t b = 0;
		if (n->dead)
			continue;
		ValId table = indexed_table(g, u);
		if (table >= 0) {
			const Value *t = IR_VAL(g, table);
			int64_t rows;
			if (t->rank >= 1 && ir_dim_is_const(g, t->dims[0], &rows) && rows > 0)
				b = rows;
		} else if (depth < MAX_DEPTH && is_view(n->op) && u->idx == 0 && n->nout > 0 &&
		           n->out[0] >= 0) {
			b = bound(g, n->out[0], depth + 1);
		}
		if (b > 0 && (best == 0 || b < best))
			best = b;
	}
	return best;
}

int64_t ir_index_bound(const Graph *g, ValId v)
{
	return bound(g, v, 0);
}
