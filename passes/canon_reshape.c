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
 * Also: Gather(Shape(x), k) with a constant k reads dim k of x; when a graph
 * input has that same (symbolic) dim, it reads it from the input instead,
 * so x (an activation) is not kept alive, nor fusions blocked, by the
 * Shape use.
 *
 * requires: shapes inferred.
 * preserves: shapes and semantics (the constants encode the inferred dims).
 * breaks: nothing. */
#include <stdio.h>

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

/* The Shape(inp) node of graph input inp: an existing one or a new one. */
static ValId input_shape(Graph *g, ValId inp)
{
	const Value *v = IR_VAL(g, inp);
	for (int32_t u = 0; u < v->nuses; u++) {
		NodeId c = v->uses[u].node;
		const Node *n = IR_NODE(g, c);
		if (!n->dead && n->op == OP_Shape && n->nattrs == 0)
			return n->out[0];
	}
	char name[64];
	snprintf(name, sizeof name, "shape_of_input_%d", inp);
	NodeId s = ir_node_new(g, OP_Shape, name, 1, &inp, 1, NULL);
	ValId o = IR_NODE(g, s)->out[0];
	int rank = IR_VAL(g, inp)->rank;
	DimId d = ir_dim_const(g, rank);
	IR_VAL(g, o)->dtype = DT_I64;
	ir_value_set_shape(g, o, 1, &d);
	ir_value_set_sval(g, o, rank, IR_VAL(g, inp)->dims);
	return o;
}

static void canon_shape_gather(Graph *g, NodeId id)
{
	const Node *n = IR_NODE(g, id);
	NodeId sh = m_def(g, n->in[0], OP_Shape);
	double k;
	if (sh < 0 || IR_NODE(g, sh)->nattrs != 0 || ir_attr_int(g, id, "axis", 0) != 0 ||
	    !m_const_scalar(g, n->in[1], &k) || ir_value_numel_const(g, n->in[1]) != 1)
		return;
	ValId x = IR_NODE(g, sh)->in[0];
	const Value *xv = IR_VAL(g, x);
	int64_t ki = (int64_t)k < 0 ? (int64_t)k + xv->rank : (int64_t)k;
	if (xv->kind == V_INPUT || xv->rank < 0 || ki < 0 || ki >= xv->rank)
		return;
	DimId d = xv->dims[ki];
	for (int32_t i = 0; i < g->ninputs; i++) {
		const Value *iv = IR_VAL(g, g->inputs[i]);
		for (int p = 0; p < iv->rank; p++) {
			if (iv->dims[p] != d)
				continue;
			ValId s = input_shape(g, g->inputs[i]);
			const Value *iw = IR_VAL(g, IR_NODE(g, id)->in[1]);
			int64_t dims[IR_MAX_RANK] = {0}, pv = p;
			for (int r = 0; r < iw->rank; r++)
				dims[r] = 1;
			ValId c = rw_const(g, "dim_index", DT_I64, iw->rank, dims, &pv, 8);
			ir_set_input(g, id, 0, s);
			ir_set_input(g, id, 1, c);
			return;
		}
	}
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
		else if (IR_NODE(g, id)->op == OP_Gather)
			canon_shape_gather(g, id);
	}
	ir_dce(g);
	ir_toposort(g);
}
