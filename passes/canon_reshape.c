/* Pass `canon-reshape`: computed reshape targets become constants.
 *
 * A Reshape whose shape input is computed (Shape/Gather/Concat chains over
 * symbolic dims) gets a constant shape built from the inferred dims:
 * a static dim as itself, a dim equal to the input's dim at the same
 * position as 0 (copy; allowzero is set to 0), and at most one other dim
 * as -1.  An Expand whose shape is computed gets 1 where the output dim
 * equals the (broadcast-aligned) input dim and the static value elsewhere.
 * The chains that computed the old shapes die (DCE); head splits then read
 * as Reshape(x, [0, 0, 4, 16]).
 *
 * requires: shapes inferred.
 * preserves: shapes and semantics (the constants encode the inferred dims).
 * breaks: nothing. */
#include "pass_internal.h"

static void canon_reshape(Graph *g, NodeId id)
{
	const Node *n = IR_NODE(g, id);
	if (n->nin < 2 || m_is_const(g, n->in[1]))
		return;
	const Value *in = IR_VAL(g, n->in[0]), *out = IR_VAL(g, n->out[0]);
	if (in->rank < 0 || out->rank < 0)
		return;
	int64_t s[IR_MAX_RANK];
	int nneg = 0;
	for (int k = 0; k < out->rank; k++) {
		int64_t c;
		if (ir_dim_is_const(g, out->dims[k], &c)) {
			if (c == 0)
				return;   /* a literal 0 would need allowzero */
			s[k] = c;
		} else if (k < in->rank && out->dims[k] == in->dims[k]) {
			s[k] = 0;
		} else {
			s[k] = -1;
			nneg++;
		}
	}
	if (nneg > 1)
		return;
	int64_t r = out->rank;
	ValId c = rw_const(g, "shape", DT_I64, 1, &r, s, (size_t)r * 8);
	ir_set_input(g, id, 1, c);
	ir_attr_set_int(g, id, "allowzero", 0);
}

static void canon_expand(Graph *g, NodeId id)
{
	const Node *n = IR_NODE(g, id);
	if (m_is_const(g, n->in[1]))
		return;
	const Value *in = IR_VAL(g, n->in[0]), *out = IR_VAL(g, n->out[0]);
	const Value *sh = IR_VAL(g, n->in[1]);
	int64_t len;
	if (in->rank < 0 || out->rank < in->rank || sh->rank != 1 ||
	    !ir_dim_is_const(g, sh->dims[0], &len) || len != out->rank)
		return;
	int64_t s[IR_MAX_RANK];
	for (int k = 0; k < out->rank; k++) {
		int ki = k - (out->rank - in->rank);
		int64_t c;
		if (ki >= 0 && out->dims[k] == in->dims[ki])
			s[k] = 1;
		else if (ir_dim_is_const(g, out->dims[k], &c))
			s[k] = c;
		else
			return;
	}
	int64_t r = out->rank;
	ValId c = rw_const(g, "shape", DT_I64, 1, &r, s, (size_t)r * 8);
	ir_set_input(g, id, 1, c);
}

void pass_canon_reshape(Graph *g, PassCtx *pc)
{
	(void)pc;
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		if (IR_NODE(g, id)->dead)
			continue;
		if (IR_NODE(g, id)->op == OP_Reshape)
			canon_reshape(g, id);
		else if (IR_NODE(g, id)->op == OP_Expand)
			canon_expand(g, id);
	}
	ir_dce(g);
}
