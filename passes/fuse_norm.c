/* Pass `fuse-norm`: layer normalization fusions.
 *
 * Patterns (root last):
 *   layernorm:   the decomposed form of the opset-14 exporters
 *                  m = ReduceMean(x, [-1]); d = Sub(x, m);
 *                  v = ReduceMean(Pow(d, 2), [-1]);
 *                  y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)
 *                (Add/Mul operands in either order, no-op Identity/Cast/
 *                Reshape skipped), and
 *                LayerNormalization(x, gamma, beta?) over the last axis
 *                -> KlnLayerNorm(x, gamma, beta) {epsilon}
 *                and the decomposed form without beta (root: the Mul by
 *                gamma, when no Add of a bias vector follows it; the
 *                width static) -> KlnLayerNorm(x, gamma, zeros) (exact:
 *                y + 0 is y).  Without beta the decomposed Div would
 *                otherwise be an RMSNorm of x - mean (rmsnorm's unweighted
 *                form), so this row runs before rmsnorm.
 *   rmsnorm:     x * 1/sqrt(mean(x^2) + eps) * w over the last axis: the square
 *                as Pow(x, 2) or x * x, the inverse as Reciprocal(Sqrt),
 *                Div(1, Sqrt), Pow(.., -0.5), or x / Sqrt(..); w an f32 vector
 *                -> KlnRMSNorm(x, w) {epsilon}  (T5, LLaMA)
 *                and without the weight (root: that Mul or Div), where the
 *                weighted form does not take it
 *                -> KlnRMSNorm(x, [1.0]) {epsilon}: a constant weight of
 *                one element, 1, broadcast over the row by the kernel (exact:
 *                y * 1 is y; x's last dim may be symbolic)
 *   skip_layernorm: KlnLayerNorm(Add(a, b)) with a and b of equal shape
 *                -> KlnSkipLayerNorm(a, b, gamma, beta) {epsilon}; when the
 *                sum has other users it becomes output 1.  A row bias (an
 *                f32 vector of the last dim) in the sum, added after the
 *                residual ((a + b) + bias) or before it ((a + bias) + b, a
 *                not a MatMul's or a Gather's: fuse-gemm or fuse-embed takes
 *                those), Adds in either order, becomes the bias input:
 *                -> KlnSkipLayerNorm(a, b, gamma, beta, bias); the kernel
 *                adds (a + b) + bias, which may round differently from the
 *                graph's order.
 *   skip_rmsnorm: KlnRMSNorm(Add(a, b), w) with a and b of equal shape (the
 *                residual Add before a LLaMA/SmolLM RMSNorm)
 *                -> KlnRMSNorm(a, w, b) {epsilon}; when the sum has other
 *                users (the next residual) it becomes output 1.
 *
 * requires: shapes inferred (dims are compared).
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

/* layernorm: y = LayerNorm(x) * gamma + beta */
typedef struct LnMatch {
	Match m;
	ValId x;        /* the normalized input */
	ValId gamma;    /* scale, f32 [H] */
	ValId beta;     /* bias, f32 [H]; -1: none (LayerNormalization without B) */
	ValId y;        /* the result, taken over by the KlnLayerNorm */
	double eps;     /* epsilon */
} LnMatch;

/* skip_layernorm: y = KlnLayerNorm(sum = a + b, gamma, beta); also
 * skip_rmsnorm: y = KlnRMSNorm(sum = a + b, gamma) (no beta, no bias) */
typedef struct SkipMatch {
	Match m;
	ValId a, b;     /* the residual sum's operands (same shape) */
	ValId gamma;    /* the KlnLayerNorm's scale */
	ValId beta;     /* and bias */
	ValId bias;     /* a row bias [H] in the sum (a + b + bias); -1: none */
	ValId y;        /* the KlnLayerNorm's result */
	ValId sum;      /* a + b: output 1 of the fused op when it has other users */
	double eps;     /* epsilon */
} SkipMatch;

/* rmsnorm: y = x / sqrt(mean(x^2) + eps) * w */
typedef struct RmsMatch {
	Match m;
	ValId x;        /* the normalized input */
	ValId w;        /* the weight, f32 [H]; -1: none (a weight of one 1 is made) */
	ValId y;        /* the result, taken over by the KlnRMSNorm */
	double eps;     /* epsilon */
} RmsMatch;

/* ReduceMean node n of x over the last axis only, keepdims=1; else the reason. */
static bool last_axis_mean(const Graph *g, NodeId n, ValId x, Match *m)
{
	const Node *nd = IR_NODE(g, n);
	if (m_unwrap(g, nd->in[0], NULL) != x)
		return m_fail(g, m, n, "averages '%s', not x '%s'", IR_VAL(g, nd->in[0])->name,
		              IR_VAL(g, x)->name);
	if (ir_attr_int(g, n, "keepdims", 1) != 1)
		return m_fail(g, m, n, "keepdims is 0");
	int rank = IR_VAL(g, x)->rank;
	int64_t axes[IR_MAX_RANK];
	int na = rank >= 1 ? m_reduce_axes(g, n, rank, axes, IR_MAX_RANK) : -1;
	if (na < 0)
		return m_fail(g, m, n, "the axes are not constant");
	if (na == 1 && axes[0] != rank - 1)
		return m_fail(g, m, n, "reduces axis %lld, not the last axis %d", (long long)axes[0], rank - 1);
	if (na != 1)
		return m_fail(g, m, n, "reduces %d axes, not only the last axis %d", na, rank - 1);
	m_add(m, n);
	return true;
}

/* gamma/beta: f32 vectors of the hidden size. */
static bool hidden_vec(const Graph *g, ValId v, ValId x)
{
	const Value *a = IR_VAL(g, v), *b = IR_VAL(g, x);
	return a->dtype == DT_F32 && a->rank == 1 && b->rank >= 1 && a->dims[0] == b->dims[b->rank - 1];
}

/* Add node n is (mean + eps), either order: the ReduceMean node and eps. */
static NodeId plus_eps(const Graph *g, NodeId n, Match *m, double *eps)
{
	NodeId mean;
	ValId e;
	if (!m_split(g, n, OP_ReduceMean, m, &mean, &e))
		return m_fail(g, m, n, "neither operand is a ReduceMean"), -1;
	if (!m_const_scalar(g, e, eps))
		return m_fail(g, m, n, "epsilon '%s' is not a constant scalar", IR_VAL(g, e)->name), -1;
	m_add(m, n);
	return mean;
}

/* mul = normalized * gamma, either order, normalized (x - mean) / sqrt(var + eps)
 * or (x - mean) * Reciprocal(sqrt(var + eps)): *gamma, the Sub and the Sqrt. */
static bool ln_normalized(const Graph *g, NodeId mul, Match *m, ValId *gamma, NodeId *sub, NodeId *sqrt_)
{
	NodeId div, inner, rec;
	ValId other;
	if (m_split(g, mul, OP_Div, m, &div, gamma)) {
		m_add(m, div);
		const Node *dv = IR_NODE(g, div);
		if ((*sub = m_def_u(g, dv->in[0], OP_Sub, m)) < 0)
			return m_fail(g, m, div, "the numerator is not a Sub x - mean");
		if ((*sqrt_ = m_def_u(g, dv->in[1], OP_Sqrt, m)) < 0)
			return m_fail(g, m, div, "the denominator is not a Sqrt");
		return true;
	}
	if (!m_split(g, mul, OP_Mul, m, &inner, gamma))
		return m_fail(g, m, mul, "neither operand is a Div (x - mean) / sqrt(var + eps) "
		              "or a Mul (x - mean) * 1/sqrt(var + eps)");
	m_add(m, inner);
	if (!m_split(g, inner, OP_Reciprocal, m, &rec, &other))
		return m_fail(g, m, inner, "neither operand is a Reciprocal 1/sqrt(var + eps)");
	m_add(m, rec);
	if ((*sub = m_def_u(g, other, OP_Sub, m)) < 0)
		return m_fail(g, m, inner, "the other operand is not a Sub x - mean");
	if ((*sqrt_ = m_def_u(g, IR_NODE(g, rec)->in[0], OP_Sqrt, m)) < 0)
		return m_fail(g, m, rec, "the Reciprocal's input is not a Sqrt");
	return true;
}

/* ReduceMean var averages (x - mean)^2 of d: Pow(d, 2) or Mul(d, d). */
static bool ln_squares(const Graph *g, NodeId var, ValId d, Match *m)
{
	ValId s = IR_NODE(g, var)->in[0];
	NodeId n;
	double two;
	if ((n = m_def_u(g, s, OP_Mul, m)) >= 0) {
		const Node *mn = IR_NODE(g, n);
		if (m_unwrap(g, mn->in[0], m) != d || m_unwrap(g, mn->in[1], m) != d)
			return m_fail(g, m, n, "the Mul does not square the centered x '%s'", IR_VAL(g, d)->name);
		m_add(m, n);
		return true;
	}
	if ((n = m_def_u(g, s, OP_Pow, m)) < 0)
		return m_fail(g, m, var, "the variance does not average (x - mean)^2 (a Pow 2 or a Mul by itself)");
	const Node *pw = IR_NODE(g, n);
	if (m_unwrap(g, pw->in[0], m) != d)
		return m_fail(g, m, n, "squares '%s', not the centered x '%s'", IR_VAL(g, pw->in[0])->name,
		              IR_VAL(g, d)->name);
	if (!m_const_scalar(g, pw->in[1], &two) || two != 2.0)
		return m_fail(g, m, n, "the exponent is not the constant 2");
	m_add(m, n);
	return true;
}

/* Mul node mul is normalized(x) * gamma of the decomposed form (the match
 * so far in m): *x, *gamma, *eps, the nodes into m; else the reason. */
static bool ln_scaled(const Graph *g, NodeId mul, Match *m, ValId *xp, ValId *gammap, double *epsp)
{
	NodeId sub = -1, mean, sqrt_ = -1, addeps, var;
	ValId gamma, x;
	double eps;
	m_add(m, mul);
	if (!ln_normalized(g, mul, m, &gamma, &sub, &sqrt_))
		return false;
	m_add(m, sub);
	m_add(m, sqrt_);
	const Node *sb = IR_NODE(g, sub);
	x = m_unwrap(g, sb->in[0], NULL);
	if ((mean = m_def_u(g, sb->in[1], OP_ReduceMean, m)) < 0)
		return m_fail(g, m, sub, "the subtrahend is not a ReduceMean of x");
	if (!last_axis_mean(g, mean, x, m))
		return false;
	ValId d = sb->out[0];
	if ((addeps = m_def_u(g, IR_NODE(g, sqrt_)->in[0], OP_Add, m)) < 0)
		return m_fail(g, m, sqrt_, "the Sqrt's input is not an Add var + eps");
	if ((var = plus_eps(g, addeps, m, &eps)) < 0)
		return false;
	if (!ln_squares(g, var, d, m))
		return false;
	if (!last_axis_mean(g, var, m_unwrap(g, IR_NODE(g, var)->in[0], NULL), m))
		return false;
	if (IR_VAL(g, x)->dtype != DT_F32)
		return m_fail(g, m, mul, "x is %s, KlnLayerNorm runs on f32", ir_dtype_name(IR_VAL(g, x)->dtype));
	*xp = x;
	*gammap = gamma;
	*epsp = eps;
	return true;
}

static bool match_ln_decomposed(const Graph *g, NodeId root, Match *m)
{
	NodeId mul;
	ValId beta, gamma, x;
	double eps;
	m_add(m, root);
	if (!m_split(g, root, OP_Mul, m, &mul, &beta))
		return m_fail(g, m, root, "neither operand is a Mul (normalized * gamma)");
	if (!ln_scaled(g, mul, m, &x, &gamma, &eps))
		return false;
	if (!hidden_vec(g, gamma, x) || !hidden_vec(g, beta, x))
		return m_fail(g, m, root, "gamma '%s' and beta '%s' must be f32 vectors of x's last dim",
		              IR_VAL(g, gamma)->name, IR_VAL(g, beta)->name);
	if (!m_closed(g, m, IR_NODE(g, root)->out[0]))
		return m_fail(g, m, root, "a value inside the LayerNorm is used outside it");
	LnMatch *lm = M_AS(LnMatch, m);
	lm->x = x;
	lm->gamma = gamma;
	lm->beta = beta;
	lm->y = IR_NODE(g, root)->out[0];
	lm->eps = eps;
	return true;
}

/* The single user of v if it is an Add of v and an f32 vector of v's last
 * dim (a LayerNorm's beta: the decomposed pattern takes that Add), else -1. */
static NodeId beta_user(const Graph *g, ValId v)
{
	if (m_nuses(g, v) != 1 || ir_is_output(g, v))
		return -1;
	NodeId u = IR_VAL(g, v)->uses[0].node;
	const Node *un = IR_NODE(g, u);
	if (un->op != OP_Add || un->nin != 2)
		return -1;
	ValId other = un->in[0] == v ? un->in[1] : un->in[0];
	return hidden_vec(g, other, v) ? u : -1;
}

/* The decomposed form without beta: root = normalized(x) * gamma, its
 * result not added to a bias vector (the pattern's Add root takes that;
 * it runs first, this is for what it left) -> KlnLayerNorm with zero beta. */
static bool match_ln_nobias(const Graph *g, NodeId root, Match *m)
{
	ValId gamma, x, y = IR_NODE(g, root)->out[0];
	double eps;
	NodeId add = beta_user(g, y);
	if (add >= 0)
		return m_fail(g, m, add, "the bias Add after it is the LayerNorm's root");
	if (!ln_scaled(g, root, m, &x, &gamma, &eps))
		return false;
	if (!hidden_vec(g, gamma, x))
		return m_fail(g, m, root, "gamma '%s' must be an f32 vector of x's last dim",
		              IR_VAL(g, gamma)->name);
	/* the rewrite makes a zero bias: it needs a static width */
	if (!ir_dim_is_const(g, IR_VAL(g, gamma)->dims[0], NULL))
		return m_fail(g, m, root, "no bias and the width is not static");
	if (!m_closed(g, m, y))
		return m_fail(g, m, root, "a value inside the LayerNorm is used outside it");
	LnMatch *lm = M_AS(LnMatch, m);
	lm->x = x;
	lm->gamma = gamma;
	lm->beta = -1;
	lm->y = y;
	lm->eps = eps;
	return true;
}

static bool match_ln_op(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	ValId x = n->in[0];
	int rank = IR_VAL(g, x)->rank;
	int64_t axis = ir_attr_int(g, root, "axis", -1);
	if (rank < 1 || (axis != -1 && axis != rank - 1))
		return m_fail(g, m, root, "axis %lld is not the last axis of x (rank %d)", (long long)axis, rank);
	if (IR_VAL(g, x)->dtype != DT_F32)
		return m_fail(g, m, root, "x is %s, KlnLayerNorm runs on f32", ir_dtype_name(IR_VAL(g, x)->dtype));
	for (int k = 1; k < n->nout; k++)
		if (n->out[k] >= 0 && m_nuses(g, n->out[k]) > 0)
			return m_fail(g, m, root, "its mean / inverse std output %d is used", k);
	if (!hidden_vec(g, n->in[1], x))
		return m_fail(g, m, root, "scale is not an f32 vector of x's last dim");
	if (n->nin > 2 && n->in[2] >= 0 && !hidden_vec(g, n->in[2], x))
		return m_fail(g, m, root, "B is not an f32 vector of x's last dim");
	/* without B the rewrite makes a zero bias: it needs a static width */
	if ((n->nin < 3 || n->in[2] < 0) && !ir_dim_is_const(g, IR_VAL(g, n->in[1])->dims[0], NULL))
		return m_fail(g, m, root, "no B and the width is not static");
	m_add(m, root);
	LnMatch *lm = M_AS(LnMatch, m);
	lm->x = x;
	lm->gamma = n->in[1];
	lm->beta = n->nin > 2 ? n->in[2] : -1;
	lm->y = n->out[0];
	lm->eps = ir_attr_float(g, root, "epsilon", 1e-5f);
	return true;
}

static void rewrite_ln(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const LnMatch *lm = M_AS_CONST(LnMatch, m);
	ValId beta = lm->beta;
	if (beta < 0) {
		/* LayerNormalization without B: zeros (static width, see the match) */
		int64_t h = 0;
		ir_dim_is_const(g, IR_VAL(g, lm->gamma)->dims[0], &h);
		float *z = calloc((size_t)(h ? h : 1), sizeof *z);
		if (!z)
			abort();
		beta = rw_const(g, "ln_zero_bias", DT_F32, 1, &h, z, (size_t)h * 4);
		free(z);
	}
	ValId in[3] = {lm->x, lm->gamma, beta};
	const char *name = IR_NODE(g, m->root)->name;
	NodeId n = rw_replace(g, OP_KlnLayerNorm, name, 3, in, lm->y);
	ir_attr_set_float(g, n, "epsilon", (float)lm->eps);
	rw_erase_match(g, m);
}

/* Add node n adds two values of its own shape (f32, not a value to itself). */
static bool full_add(const Graph *g, NodeId n, Match *m)
{
	const Node *a = IR_NODE(g, n);
	if (a->in[0] == a->in[1])
		return m_fail(g, m, n, "adds a value to itself");
	if (!m_same_shape(g, a->in[0], a->in[1]) || !m_same_shape(g, a->in[0], a->out[0]))
		return m_fail(g, m, n, "the operands do not have the sum's shape (a broadcast Add)");
	if (IR_VAL(g, a->in[0])->dtype != DT_F32 || IR_VAL(g, a->in[1])->dtype != DT_F32)
		return m_fail(g, m, n, "the operands are not f32");
	return true;
}

/* sum = (a + b) + bias, either order at both Adds, with a + b used only
 * there: the inner Add's operands go to sm.  Otherwise the reason. */
static bool skip_then_bias(const Graph *g, NodeId add, SkipMatch *sm, Match *m)
{
	const Node *a = IR_NODE(g, add);
	for (int k = 0; k < 2; k++) {
		ValId bias = a->in[1 - k];
		if (!hidden_vec(g, bias, a->out[0]))
			continue;
		NodeId in = m_def(g, a->in[k], OP_Add);
		if (in < 0)
			return m_fail(g, m, add, "adds the bias '%s' to '%s', which is not an Add (the residual sum)",
			              IR_VAL(g, bias)->name, IR_VAL(g, a->in[k])->name);
		if (!m_same_shape(g, a->in[k], a->out[0]))
			return m_fail(g, m, in, "the residual sum does not have the LayerNorm input's shape");
		if (!full_add(g, in, m))
			return false;
		if (m_nuses(g, a->in[k]) != 1)
			return m_fail(g, m, in, "the residual sum before the bias '%s' has other users",
			              IR_VAL(g, bias)->name);
		sm->a = IR_NODE(g, in)->in[0];
		sm->b = IR_NODE(g, in)->in[1];
		sm->bias = bias;
		m_add(m, in);
		return true;
	}
	return m_fail(g, m, add, "the operands do not have the sum's shape and neither is a bias "
	              "(an f32 vector of the last dim): '%s', '%s'", IR_VAL(g, a->in[0])->name,
	              IR_VAL(g, a->in[1])->name);
}

/* sum = (x + bias) + skip, either order: when x + bias is used only there and
 * x is not a MatMul's (fuse-gemm takes that bias) nor a Gather's (an
 * embedding: fuse-embed takes the sum), the bias moves into the fused op:
 * *a = x, *bias, that Add into m.  (The kernel adds x + skip + bias.) */
static bool bias_then_skip(const Graph *g, ValId *a, ValId *bias, Match *m)
{
	NodeId in = m_def(g, *a, OP_Add);
	if (in < 0 || m_nuses(g, *a) != 1)
		return false;
	const Node *n = IR_NODE(g, in);
	for (int k = 0; k < 2; k++) {
		if (hidden_vec(g, n->in[1 - k], *a) && m_same_shape(g, n->in[k], *a) &&
		    IR_VAL(g, n->in[k])->dtype == DT_F32 && m_def(g, n->in[k], OP_MatMul) < 0 &&
		    m_def(g, n->in[k], OP_Gather) < 0) {
			*bias = n->in[1 - k];
			*a = n->in[k];
			m_add(m, in);
			return true;
		}
	}
	return false;
}

static bool match_skip(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	SkipMatch *sm = M_AS(SkipMatch, m);
	NodeId add = m_def(g, n->in[0], OP_Add);
	if (add < 0)
		return m_fail(g, m, root, "its input is not an Add (the residual sum)");
	const Node *a = IR_NODE(g, add);
	sm->bias = -1;
	if (m_same_shape(g, a->in[0], a->in[1])) {
		if (!full_add(g, add, m))
			return false;
		sm->a = a->in[0];
		sm->b = a->in[1];
		if (!bias_then_skip(g, &sm->a, &sm->bias, m))
			bias_then_skip(g, &sm->b, &sm->bias, m);
	} else if (!skip_then_bias(g, add, sm, m)) {
		return false;
	}
	m_add(m, add);
	m_add(m, root);
	sm->gamma = n->in[1];
	sm->beta = n->in[2];
	sm->y = n->out[0];
	sm->sum = a->out[0];
	sm->eps = ir_attr_float(g, root, "epsilon", 1e-5f);
	return true;
}

/* A fused norm `op` on in[0..nin) taking over y, and over the residual sum
 * as output 1 when the sum has other users. */
static void skip_node(Graph *g, Op op, const char *name, int nin, const ValId *in, ValId y, ValId sum,
                      double eps)
{
	if (m_nuses(g, sum) <= 1) {
		NodeId n = rw_replace(g, op, name, nin, in, y);
		ir_attr_set_float(g, n, "epsilon", (float)eps);
		return;
	}
	const char *names[2] = {IR_VAL(g, y)->name, IR_VAL(g, sum)->name};
	IR_VAL(g, y)->name = ir_arena_strdup(g->arena, "dead.skipln.y");
	IR_VAL(g, sum)->name = ir_arena_strdup(g->arena, "dead.skipln.sum");
	NodeId n = ir_node_new(g, op, name, nin, in, 2, names);
	ir_attr_set_float(g, n, "epsilon", (float)eps);
	ValId olds[2] = {y, sum};
	for (int k = 0; k < 2; k++) {
		ValId o = IR_NODE(g, n)->out[k];
		IR_VAL(g, o)->dtype = DT_F32;
		ir_value_set_shape(g, o, IR_VAL(g, olds[k])->rank, IR_VAL(g, olds[k])->dims);
		ir_replace_all_uses(g, olds[k], o);
	}
}

static void rewrite_skip(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const SkipMatch *sm = M_AS_CONST(SkipMatch, m);
	ValId in[5] = {sm->a, sm->b, sm->gamma, sm->beta, sm->bias};
	skip_node(g, OP_KlnSkipLayerNorm, IR_NODE(g, m->root)->name, sm->bias >= 0 ? 5 : 4, in, sm->y,
	          sm->sum, sm->eps);
	rw_erase_match(g, m);
}

/* ---- rmsnorm ------------------------------------------------------------ */

/* v is the mean square of x: ReduceMean(Pow(x, 2) | Mul(x, x)) over the
 * last axis with keepdims; the ReduceMean node is given. */
static bool mean_square(const Graph *g, NodeId mean, ValId x, Match *m)
{
	ValId sq = IR_NODE(g, mean)->in[0];
	NodeId d = m_def_u(g, sq, OP_Pow, m);
	double two;
	if (d >= 0) {
		if (m_unwrap(g, IR_NODE(g, d)->in[0], NULL) != x)
			return m_fail(g, m, d, "squares '%s', not x '%s'", IR_VAL(g, IR_NODE(g, d)->in[0])->name,
			              IR_VAL(g, x)->name);
		if (!m_const_scalar(g, IR_NODE(g, d)->in[1], &two) || two != 2.0)
			return m_fail(g, m, d, "the exponent is not the constant 2");
	} else if ((d = m_def_u(g, sq, OP_Mul, m)) >= 0) {
		if (m_unwrap(g, IR_NODE(g, d)->in[0], NULL) != x || m_unwrap(g, IR_NODE(g, d)->in[1], NULL) != x)
			return m_fail(g, m, d, "is not x * x for x '%s'", IR_VAL(g, x)->name);
	} else {
		return m_fail(g, m, mean, "averages neither Pow(x, 2) nor x * x");
	}
	m_add(m, d);
	return last_axis_mean(g, mean, m_unwrap(g, sq, NULL), m) ||
	       m_fail(g, m, mean, "not over the last axis");
}

/* v is sqrt(mean(x^2) + eps) (inv false) or its reciprocal (inv true:
 * Reciprocal(Sqrt), Div(1, Sqrt), Pow(mean + eps, -0.5)); *eps. */
static bool rms_of(const Graph *g, ValId v, ValId x, bool inv, Match *m, double *eps)
{
	NodeId d, s = -1, add = -1;
	double k;
	if (!inv) {
		if ((s = m_def_u(g, v, OP_Sqrt, m)) < 0)
			return m_fail(g, m, m->root, "the divisor '%s' is not a Sqrt", IR_VAL(g, v)->name);
	} else if ((d = m_def_u(g, v, OP_Reciprocal, m)) >= 0) {
		m_add(m, d);
		if ((s = m_def_u(g, IR_NODE(g, d)->in[0], OP_Sqrt, m)) < 0)
			return m_fail(g, m, d, "the input of Reciprocal is not a Sqrt");
	} else if ((d = m_def_u(g, v, OP_Div, m)) >= 0) {
		m_add(m, d);
		if (!m_const_scalar(g, IR_NODE(g, d)->in[0], &k) || k != 1.0)
			return m_fail(g, m, d, "is not 1 / Sqrt(..)");
		if ((s = m_def_u(g, IR_NODE(g, d)->in[1], OP_Sqrt, m)) < 0)
			return m_fail(g, m, d, "the divisor is not a Sqrt");
	} else if ((d = m_def_u(g, v, OP_Pow, m)) >= 0) {
		m_add(m, d);
		if (!m_const_scalar(g, IR_NODE(g, d)->in[1], &k) || k != -0.5)
			return m_fail(g, m, d, "the exponent is not the constant -0.5");
		if ((add = m_def_u(g, IR_NODE(g, d)->in[0], OP_Add, m)) < 0)
			return m_fail(g, m, d, "the base is not an Add mean + eps");
	} else {
		return m_fail(g, m, m->root, "'%s' is not 1/sqrt(..) (Reciprocal, Div 1 by, Pow -0.5)",
		              IR_VAL(g, v)->name);
	}
	if (s >= 0) {
		m_add(m, s);
		if ((add = m_def_u(g, IR_NODE(g, s)->in[0], OP_Add, m)) < 0)
			return m_fail(g, m, s, "the Sqrt's input is not an Add mean + eps");
	}
	NodeId mean = plus_eps(g, add, m, eps);
	return mean >= 0 && mean_square(g, mean, x, m);
}

/* v is x / rms(x) or x * (1 / rms(x)), operands in either order: *x, *eps. */
static bool rms_normed(const Graph *g, ValId v, Match *m, ValId *x, double *eps)
{
	NodeId d = m_def_u(g, v, OP_Div, m);
	if (d >= 0) {
		m_add(m, d);
		*x = m_unwrap(g, IR_NODE(g, d)->in[0], NULL);
		return rms_of(g, IR_NODE(g, d)->in[1], *x, false, m, eps);
	}
	if ((d = m_def_u(g, v, OP_Mul, m)) < 0)
		return m_fail(g, m, m->root, "'%s' is neither x / rms(x) nor x * (1 / rms(x))",
		              IR_VAL(g, v)->name);
	m_add(m, d);
	const Node *nd = IR_NODE(g, d);
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		/* the factor that is a Reciprocal/Div/Pow is 1/rms; the other is x */
		ValId r = nd->in[1 - k];
		if (m_def_u(g, r, OP_Reciprocal, NULL) < 0 && m_def_u(g, r, OP_Div, NULL) < 0 &&
		    m_def_u(g, r, OP_Pow, NULL) < 0)
			continue;
		m->nnodes = save;
		*x = m_unwrap(g, nd->in[k], NULL);
		return rms_of(g, r, *x, true, m, eps);
	}
	return m_fail(g, m, d, "neither factor is 1/sqrt(..) (Reciprocal, Div 1 by, Pow -0.5)");
}

/* Mul root has the weighted form's shape with normed(x) its input k: a
 * Div or Mul times an f32 vector of its last dim. */
static bool weighted_at(const Graph *g, NodeId root, int k)
{
	const Node *r = IR_NODE(g, root);
	NodeId d = m_def_u(g, r->in[k], OP_Div, NULL);
	if (d < 0)
		d = m_def_u(g, r->in[k], OP_Mul, NULL);
	return d >= 0 && hidden_vec(g, r->in[1 - k], m_unwrap(g, r->in[k], NULL));
}

/* root = normed * w (either order), w an f32 vector of x's last dim. */
static bool match_rms(const Graph *g, NodeId root, Match *m)
{
	const Node *r = IR_NODE(g, root);
	m_add(m, root);
	int save = m->nnodes, k;
	ValId x = -1;
	double eps = 0;
	for (k = 0; k < 2; k++) {
		if (!weighted_at(g, root, k))
			continue;
		m->nnodes = save;
		if (rms_normed(g, r->in[k], m, &x, &eps))
			break;
	}
	if (k == 2)
		return m_fail(g, m, root, "not normed(x) * w with normed(x) a Mul or Div and w an f32 "
		              "vector of x's last dim");
	ValId w = r->in[1 - k];
	if (IR_VAL(g, x)->dtype != DT_F32 || !hidden_vec(g, w, x))
		return m_fail(g, m, root, "x must be f32 and the weight '%s' an f32 vector of x's last dim",
		              IR_VAL(g, w)->name);
	if (!m_closed(g, m, r->out[0]))
		return m_fail(g, m, root, "a value inside the RMSNorm is used outside it");
	RmsMatch *rm = M_AS(RmsMatch, m);
	rm->x = x;
	rm->w = w;
	rm->y = r->out[0];
	rm->eps = eps;
	return true;
}

/* The single user of y behind no-op wrappers (Cast, Identity, ...) if it is
 * a Mul, else -1. */
static NodeId weight_user(const Graph *g, ValId y)
{
	ValId v = y;
	for (int depth = 0; depth < 8 && m_nuses(g, v) == 1 && !ir_is_output(g, v); depth++) {
		NodeId u = IR_VAL(g, v)->uses[0].node;
		if (IR_NODE(g, u)->op == OP_Mul)
			return u;
		if (IR_NODE(g, u)->nout < 1 || m_unwrap(g, IR_NODE(g, u)->out[0], NULL) != y)
			return -1;
		v = IR_NODE(g, u)->out[0];
	}
	return -1;
}

/* root = x / rms(x) or x * (1 / rms(x)), unless its one user is the
 * weighted form (that Mul's match takes it, whichever is visited first). */
static bool match_rms_unweighted(const Graph *g, NodeId root, Match *m)
{
	ValId y = IR_NODE(g, root)->out[0], x = -1;
	double eps = 0;
	NodeId user = weight_user(g, y);
	if (user >= 0) {
		RmsMatch t;
		memset(&t, 0, sizeof t);
		t.m.root = user;
		t.m.why_node = -1;
		if (match_rms(g, user, &t.m))
			return m_fail(g, m, user, "the weighted form takes it (weight '%s')",
			              IR_VAL(g, t.w)->name);
	}
	const Node *r = IR_NODE(g, root);
	double c;
	if (r->op == OP_Div && m_const_scalar(g, r->in[0], &c))
		return m_fail(g, m, root, "divides the constant %g: an inverse 1/rms(x), not x/rms(x) (its user "
		              "is the candidate)", c);
	if (!rms_normed(g, y, m, &x, &eps))
		return false;
	const Value *xv = IR_VAL(g, x);
	if (xv->dtype != DT_F32)
		return m_fail(g, m, root, "x is %s, KlnRMSNorm runs on f32", ir_dtype_name(xv->dtype));
	if (xv->rank < 1)
		return m_fail(g, m, root, "x is a scalar");
	if (!m_closed(g, m, y))
		return m_fail(g, m, root, "a value inside the RMSNorm is used outside it");
	RmsMatch *rm = M_AS(RmsMatch, m);
	rm->x = x;
	rm->w = -1;
	rm->y = y;
	rm->eps = eps;
	return true;
}

/* A Mul is the weighted form's root when it has its shape, else it may be
 * an unweighted x * (1 / rms(x)): one line for each in --explain. */
static bool match_rms_mul(const Graph *g, NodeId root, Match *m)
{
	if (weighted_at(g, root, 0) || weighted_at(g, root, 1))
		return match_rms(g, root, m);
	return match_rms_unweighted(g, root, m);
}

static void rewrite_rms(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const RmsMatch *rm = M_AS_CONST(RmsMatch, m);
	ValId in[2] = {rm->x, rm->w};
	if (in[1] < 0) {
		/* without a weight: a weight of one element, 1, which the kernel
		 * broadcasts over the row (y * 1 is y exactly; any width, static
		 * or not) */
		static const float one = 1.0f;
		int64_t n1 = 1;
		in[1] = rw_const(g, "rms_unit_weight", DT_F32, 1, &n1, &one, sizeof one);
	}
	NodeId n = rw_replace(g, OP_KlnRMSNorm, IR_NODE(g, m->root)->name, 2, in, rm->y);
	ir_attr_set_float(g, n, "epsilon", (float)rm->eps);
	rw_erase_match(g, m);
}

/* skip_rmsnorm: KlnRMSNorm(Add(a, b), w) with a and b of the sum's shape. */
static bool match_skip_rms(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	if (n->nin > 2 && n->in[2] >= 0)
		return m_fail(g, m, root, "has a skip input already");
	NodeId add = m_def(g, n->in[0], OP_Add);
	if (add < 0)
		return m_fail(g, m, root, "its input '%s' is not an Add (the residual sum)", IR_VAL(g, n->in[0])->name);
	if (!full_add(g, add, m))
		return false;
	m_add(m, add);
	m_add(m, root);
	SkipMatch *sm = M_AS(SkipMatch, m);
	sm->a = IR_NODE(g, add)->in[0];
	sm->b = IR_NODE(g, add)->in[1];
	sm->gamma = n->in[1];
	sm->beta = sm->bias = -1;
	sm->y = n->out[0];
	sm->sum = n->in[0];
	sm->eps = ir_attr_float(g, root, "epsilon", 1e-6f);
	return true;
}

static void rewrite_skip_rms(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const SkipMatch *sm = M_AS_CONST(SkipMatch, m);
	ValId in[3] = {sm->a, sm->gamma, sm->b};
	skip_node(g, OP_KlnRMSNorm, IR_NODE(g, m->root)->name, 3, in, sm->y, sm->sum, sm->eps);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("layernorm", OP_Add, LnMatch, match_ln_decomposed, rewrite_ln),
	PATTERN_ROW("layernorm", OP_LayerNormalization, LnMatch, match_ln_op, rewrite_ln),
	/* after the Add-rooted row: a Mul left over has no beta */
	PATTERN_ROW("layernorm", OP_Mul, LnMatch, match_ln_nobias, rewrite_ln),
	PATTERN_ROW("rmsnorm", OP_Mul, RmsMatch, match_rms_mul, rewrite_rms),
	PATTERN_ROW("rmsnorm", OP_Div, RmsMatch, match_rms_unweighted, rewrite_rms),
	PATTERN_ROW("skip_layernorm", OP_KlnLayerNorm, SkipMatch, match_skip, rewrite_skip),
	PATTERN_ROW("skip_rmsnorm", OP_KlnRMSNorm, SkipMatch, match_skip_rms, rewrite_skip_rms),
};

void pass_fuse_norm(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
