/* Pass `fuse-norm`: layer normalization fusions.
 *
 * Patterns (root last):
 *   layernorm:   the decomposed form of the opset-14 exporters
 *                  m = ReduceMean(x, [-1]); d = Sub(x, m);
 *                  v = ReduceMean(Pow(d, 2), [-1]);
 *                  y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)
 *                (Add/Mul operands in either order), and
 *                LayerNormalization(x, gamma, beta?) over the last axis
 *                -> KlnLayerNorm(x, gamma, beta) {epsilon}
 *   skip_layernorm: KlnLayerNorm(Add(a, b)) with a and b of equal shape
 *                -> KlnSkipLayerNorm(a, b, gamma, beta) {epsilon}; when the
 *                sum has other users it becomes output 1.
 *
 * requires: shapes inferred (dims are compared).
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* Reduction over the last axis only, keepdims=1. */
static bool last_axis_mean(const Graph *g, NodeId n, ValId x)
{
	const Node *nd = IR_NODE(g, n);
	if (nd->in[0] != x || ir_attr_int(g, n, "keepdims", 1) != 1)
		return false;
	int rank = IR_VAL(g, x)->rank;
	int64_t axes[IR_MAX_RANK];
	return rank >= 1 && m_reduce_axes(g, n, rank, axes, IR_MAX_RANK) == 1 && axes[0] == rank - 1;
}

/* gamma/beta: f32 vectors of the hidden size. */
static bool hidden_vec(const Graph *g, ValId v, ValId x)
{
	const Value *a = IR_VAL(g, v), *b = IR_VAL(g, x);
	return a->dtype == DT_F32 && a->rank == 1 && b->rank >= 1 && a->dims[0] == b->dims[b->rank - 1];
}

/* Splits binary node n into (the input produced by `op`, the other one). */
static bool split_bin(const Graph *g, NodeId n, Op op, NodeId *def, ValId *other)
{
	const Node *nd = IR_NODE(g, n);
	for (int k = 0; k < 2; k++) {
		NodeId d = m_def(g, nd->in[k], op);
		if (d >= 0) {
			*def = d;
			*other = nd->in[1 - k];
			return true;
		}
	}
	return false;
}

static bool match_ln_decomposed(const Graph *g, NodeId root, Match *m)
{
	NodeId mul, div, sub, mean, sqrt_, addeps, var, pow_;
	ValId beta, gamma, x;
	double two, eps;
	if (!split_bin(g, root, OP_Mul, &mul, &beta) || !split_bin(g, mul, OP_Div, &div, &gamma))
		return false;
	const Node *dv = IR_NODE(g, div);
	if ((sub = m_def(g, dv->in[0], OP_Sub)) < 0 || (sqrt_ = m_def(g, dv->in[1], OP_Sqrt)) < 0)
		return false;
	const Node *sb = IR_NODE(g, sub);
	x = sb->in[0];
	if ((mean = m_def(g, sb->in[1], OP_ReduceMean)) < 0 || !last_axis_mean(g, mean, x))
		return false;
	ValId d = sb->out[0];
	if ((addeps = m_def(g, IR_NODE(g, sqrt_)->in[0], OP_Add)) < 0 ||
	    !split_bin(g, addeps, OP_ReduceMean, &var, &(ValId){0}))
		return false;
	if (!m_const_scalar(g, m_other(g, addeps, IR_NODE(g, var)->out[0]), &eps))
		return false;
	if ((pow_ = m_def(g, IR_NODE(g, var)->in[0], OP_Pow)) < 0 || !last_axis_mean(g, var, IR_NODE(g, var)->in[0]))
		return false;
	const Node *pw = IR_NODE(g, pow_);
	if (pw->in[0] != d || !m_const_scalar(g, pw->in[1], &two) || two != 2.0)
		return false;
	if (IR_VAL(g, x)->dtype != DT_F32 || !hidden_vec(g, gamma, x) || !hidden_vec(g, beta, x))
		return false;
	NodeId all[] = {root, mul, div, sub, mean, sqrt_, addeps, var, pow_};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		m_add(m, all[i]);
	if (!m_closed(g, m, IR_NODE(g, root)->out[0]))
		return false;
	m->v[0] = x;
	m->v[1] = gamma;
	m->v[2] = beta;
	m->v[3] = IR_NODE(g, root)->out[0];
	m->f[0] = eps;
	return true;
}

static bool match_ln_op(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	ValId x = n->in[0];
	int rank = IR_VAL(g, x)->rank;
	int64_t axis = ir_attr_int(g, root, "axis", -1);
	if (rank < 1 || (axis != -1 && axis != rank - 1) || IR_VAL(g, x)->dtype != DT_F32)
		return false;
	for (int k = 1; k < n->nout; k++)
		if (n->out[k] >= 0 && m_nuses(g, n->out[k]) > 0)
			return false;   /* mean / inv-std outputs used */
	if (!hidden_vec(g, n->in[1], x))
		return false;
	if (n->nin > 2 && n->in[2] >= 0 && !hidden_vec(g, n->in[2], x))
		return false;
	/* without B the rewrite makes a zero bias: it needs a static width */
	if ((n->nin < 3 || n->in[2] < 0) && !ir_dim_is_const(g, IR_VAL(g, n->in[1])->dims[0], NULL))
		return false;
	m_add(m, root);
	m->v[0] = x;
	m->v[1] = n->in[1];
	m->v[2] = n->nin > 2 ? n->in[2] : -1;
	m->v[3] = n->out[0];
	m->f[0] = ir_attr_float(g, root, "epsilon", 1e-5f);
	return true;
}

static void rewrite_ln(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	ValId beta = m->v[2];
	if (beta < 0) {
		/* LayerNormalization without B: zeros (static width, see the match) */
		int64_t h = 0;
		ir_dim_is_const(g, IR_VAL(g, m->v[1])->dims[0], &h);
		float *z = calloc((size_t)(h ? h : 1), sizeof *z);
		if (!z)
			abort();
		beta = rw_const(g, "ln_zero_bias", DT_F32, 1, &h, z, (size_t)h * 4);
		free(z);
	}
	ValId in[3] = {m->v[0], m->v[1], beta};
	const char *name = IR_NODE(g, m->root)->name;
	NodeId n = rw_replace(g, OP_KlnLayerNorm, name, 3, in, m->v[3]);
	ir_attr_set_float(g, n, "epsilon", (float)m->f[0]);
	rw_erase_match(g, m);
}

static bool match_skip(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	NodeId add = m_def(g, n->in[0], OP_Add);
	if (add < 0)
		return false;
	const Node *a = IR_NODE(g, add);
	if (a->in[0] == a->in[1] || !m_same_shape(g, a->in[0], a->in[1]) ||
	    !m_same_shape(g, a->in[0], a->out[0]) || IR_VAL(g, a->in[0])->dtype != DT_F32 ||
	    IR_VAL(g, a->in[1])->dtype != DT_F32)
		return false;
	m_add(m, root);
	m->v[0] = a->in[0];
	m->v[1] = a->in[1];
	m->v[2] = n->in[1];
	m->v[3] = n->in[2];
	m->v[4] = n->out[0];
	m->v[5] = a->out[0];
	m->f[0] = ir_attr_float(g, root, "epsilon", 1e-5f);
	return true;
}

static void rewrite_skip(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	ValId in[4] = {m->v[0], m->v[1], m->v[2], m->v[3]};
	ValId y = m->v[4], sum = m->v[5];
	const char *name = IR_NODE(g, m->root)->name;
	if (m_nuses(g, sum) <= 1) {
		NodeId n = rw_replace(g, OP_KlnSkipLayerNorm, name, 4, in, y);
		ir_attr_set_float(g, n, "epsilon", (float)m->f[0]);
		rw_erase_match(g, m);
		return;
	}
	/* the residual sum has other users: it becomes output 1 */
	const char *names[2] = {IR_VAL(g, y)->name, IR_VAL(g, sum)->name};
	IR_VAL(g, y)->name = ir_arena_strdup(g->arena, "dead.skipln.y");
	IR_VAL(g, sum)->name = ir_arena_strdup(g->arena, "dead.skipln.sum");
	NodeId n = ir_node_new(g, OP_KlnSkipLayerNorm, name, 4, in, 2, names);
	ir_attr_set_float(g, n, "epsilon", (float)m->f[0]);
	ValId olds[2] = {y, sum};
	for (int k = 0; k < 2; k++) {
		ValId o = IR_NODE(g, n)->out[k];
		IR_VAL(g, o)->dtype = DT_F32;
		ir_value_set_shape(g, o, IR_VAL(g, olds[k])->rank, IR_VAL(g, olds[k])->dims);
		ir_replace_all_uses(g, olds[k], o);
	}
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	{"layernorm", OP_Add, match_ln_decomposed, rewrite_ln},
	{"layernorm", OP_LayerNormalization, match_ln_op, rewrite_ln},
	{"skip_layernorm", OP_KlnLayerNorm, match_skip, rewrite_skip},
};

void pass_fuse_norm(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
