/* Pass `fuse-gemm`: MatMul with a bias (and a GELU epilogue) as one GEMM.
 *
 * Patterns:
 *   bias_gelu: KlnGelu(Add(MatMul(A, W), b)) -> KlnGemm(A, W, b)
 *              {act = 1 + approximate: 1 erf, 2 tanh, 3 QuickGELU}
 *   gemm:      Add(MatMul(A, W), b)          -> KlnGemm(A, W, b) {act = 0}
 * with A f32 of rank >= 2, W f32 [K, N], b an f32 row bias (Add operands in
 * either order), the MatMul (and Add) used only there; then, over what is
 * left,
 *   gemm_nobias: MatMul(A, W), W a constant -> KlnGemm(A, W) {act = 0}
 *   gemm_onnx:   Gemm(A, B, C?) {alpha 1, beta 1 (or no C)}, B a
 *                constant [K, N] (or [N, K] with transB 1: transposed at
 *                compile time), C absent or a row bias -> KlnGemm(A, W, C?)
 *                (A [K, M] with transA 1: KlnGemm(Transpose(A), W, C?))
 * A row bias adds one row to every row of the product: [N], or [1, .., 1, N]
 * of no higher rank than the product (a constant, copied to an [N]
 * constant, or an Unsqueeze/Reshape of an [N] value, which is taken).  A
 * bias that differs along the rows ([M, N], [B, 1, N] with B > 1) is none:
 * the Add stays (gemm_nobias takes the MatMul).
 * (projections without a bias: W packed at compile time like the others,
 * and fuse-qkv can pack them).
 *
 * requires: shapes inferred; fuse-gelu before it for bias_gelu.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <assert.h>
#include <stdlib.h>

#include "pass_internal.h"

/* gemm, bias_gelu, gemm_nobias: y = act(a @ w + bias) */
typedef struct GemmMatch {
	Match m;
	ValId a;        /* the MatMul's A, f32 of rank >= 2 */
	ValId w;        /* its W, f32 [K, N] */
	ValId bias;     /* f32 [N]; unused by gemm_nobias */
	bool copy;      /* bias is a constant [1, .., N]: the rewrite makes it [N] */
	ValId y;        /* the result, taken over by the KlnGemm */
	int act;        /* KlnGemm act: 0 none, 1 erf GELU, 2 tanh GELU, 3 QuickGELU */
} GemmMatch;

/* gemm_onnx: y = Gemm(a, b, c) {transB} */
typedef struct GemmOnnxMatch {
	Match m;
	ValId a;        /* A, an f32 matrix */
	ValId b;        /* B, a constant f32 matrix */
	ValId c;        /* C, an f32 row bias of the output's columns; -1: none */
	bool copy;      /* c is a constant [1, N]: the rewrite makes it [N] */
	ValId y;        /* the result, taken over by the KlnGemm */
	bool trans_b;   /* B is [N, K]: transposed at compile time */
	bool trans_a;   /* A is [K, M]: a Transpose before the GEMM */
} GemmOnnxMatch;

/* b (f32) is a row bias of the [.., N] product of rank `rank` (N the DimId
 * n): *vec the [N] value to use, *copy when b is a constant [1, .., 1, N]
 * whose data the rewrite copies to an [N] constant (*vec then b).  Else
 * the reason. */
static bool row_bias(const Graph *g, ValId b, DimId n, int rank, NodeId at, Match *m, ValId *vec,
                     bool *copy)
{
	const Value *B = IR_VAL(g, b);
	*vec = b;
	*copy = false;
	if (B->dtype != DT_F32 || B->rank < 1 || B->rank > rank || B->dims[B->rank - 1] != n)
		return m_fail(g, m, at, "the bias '%s' is not a vector of W's columns", B->name);
	for (int k = 0; k < B->rank - 1; k++)
		if (!m_dim_is(g, B->dims[k], 1))
			return m_fail(g, m, at, "the bias '%s' differs along dim %d (not one row for all rows)",
			              B->name, k);
	if (B->rank == 1)
		return true;
	if (m_is_const(g, b)) {
		*copy = true;
		return true;
	}
	/* [N] unsqueezed (or reshaped) to [1, .., N]: the [N] itself */
	NodeId u = m_def(g, b, OP_Unsqueeze);
	if (u < 0)
		u = m_def(g, b, OP_Reshape);
	if (u >= 0) {
		ValId v = IR_NODE(g, u)->in[0];
		if (IR_VAL(g, v)->rank == 1 && IR_VAL(g, v)->dims[0] == n && IR_VAL(g, v)->dtype == DT_F32) {
			*vec = v;
			return true;
		}
	}
	return m_fail(g, m, at, "the bias '%s' [1, .., N] is neither a constant nor an [N] unsqueezed", B->name);
}

/* The [N] constant of a constant row bias b [1, .., 1, N]. */
static ValId bias_vector(Graph *g, ValId b)
{
	const Value *B = IR_VAL(g, b);
	int64_t n = 0;
	ir_dim_is_const(g, B->dims[B->rank - 1], &n);
	return rw_const(g, "gemm_bias", DT_F32, 1, &n, B->data, (size_t)n * sizeof(float));
}

/* Add node `add` is MatMul(A, W) + b as described above (either order). */
static bool match_bias_add(const Graph *g, NodeId add, Match *m)
{
	const Node *a = IR_NODE(g, add);
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		NodeId mm = m_def(g, a->in[k], OP_MatMul);
		ValId b = a->in[1 - k];
		if (mm < 0)
			continue;
		m->nnodes = save;
		if (m_nuses(g, a->in[k]) != 1) {
			m_fail(g, m, mm, "its result has other users than the bias Add");
			continue;
		}
		const Node *mn = IR_NODE(g, mm);
		const Value *A = IR_VAL(g, mn->in[0]), *W = IR_VAL(g, mn->in[1]), *B = IR_VAL(g, b);
		if (A->dtype != DT_F32 || W->dtype != DT_F32 || B->dtype != DT_F32) {
			m_fail(g, m, mm, "A, W and the bias must be f32 (%s, %s, %s)", ir_dtype_name(A->dtype),
			       ir_dtype_name(W->dtype), ir_dtype_name(B->dtype));
			continue;
		}
		if (A->rank < 2 || W->rank != 2) {
			m_fail(g, m, mm, "A has rank %d and W rank %d; a GEMM needs rank >= 2 and 2",
			       A->rank, W->rank);
			continue;
		}
		ValId vec;
		bool copy;
		if (!row_bias(g, b, W->dims[1], IR_VAL(g, a->in[k])->rank, add, m, &vec, &copy))
			continue;
		if (!m_same_shape(g, a->in[k], a->out[0])) {
			m_fail(g, m, add, "the Add broadcasts the product to another shape");
			continue;
		}
		m_add(m, add);
		m_add(m, mm);
		GemmMatch *gm = M_AS(GemmMatch, m);
		gm->a = mn->in[0];
		gm->w = mn->in[1];
		gm->bias = vec;
		gm->copy = copy;
		return true;
	}
	return m_fail(g, m, add, "neither operand is a MatMul");
}

static bool match_gemm(const Graph *g, NodeId root, Match *m)
{
	if (!match_bias_add(g, root, m))
		return false;
	GemmMatch *gm = M_AS(GemmMatch, m);
	gm->y = IR_NODE(g, root)->out[0];
	gm->act = 0;
	return true;
}

static bool match_bias_gelu(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	int64_t approx = ir_attr_int(g, root, "approximate", 0);
	NodeId add = m_def(g, n->in[0], OP_Add);
	if (add < 0)
		return m_fail(g, m, root, "its input is not an Add (MatMul + bias)");
	if (m_nuses(g, n->in[0]) != 1)
		return m_fail(g, m, add, "the biased product has other users than the GELU");
	if (approx < 0 || approx > 2)
		return m_fail(g, m, root, "approximate %lld: the GEMM epilogue has erf, tanh and quick "
		              "GELU only", (long long)approx);
	if (!match_bias_add(g, add, m))
		return false;
	m_add(m, root);
	GemmMatch *gm = M_AS(GemmMatch, m);
	gm->y = n->out[0];
	gm->act = 1 + (int)approx;
	return true;
}

static void rewrite_gemm(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const GemmMatch *gm = M_AS_CONST(GemmMatch, m);
	ValId in[3] = {gm->a, gm->w, gm->copy ? bias_vector(g, gm->bias) : gm->bias};
	NodeId n = rw_replace(g, OP_KlnGemm, IR_NODE(g, m->root)->name, 3, in, gm->y);
	ir_attr_set_int(g, n, "act", gm->act);
	rw_erase_match(g, m);
}

/* MatMul(A, W) with W a constant [K, N] with data and A f32 of rank >= 2 */
static bool match_gemm_nobias(const Graph *g, NodeId root, Match *m)
{
	const Node *mn = IR_NODE(g, root);
	const Value *A = IR_VAL(g, mn->in[0]), *W = IR_VAL(g, mn->in[1]);
	if (A->dtype != DT_F32 || W->dtype != DT_F32)
		return m_fail(g, m, root, "A and W must be f32 (%s, %s)", ir_dtype_name(A->dtype),
		              ir_dtype_name(W->dtype));
	if (A->rank < 2 || W->rank != 2)
		return m_fail(g, m, root, "A has rank %d and W rank %d; a GEMM needs rank >= 2 and 2",
		              A->rank, W->rank);
	if (!m_is_const(g, mn->in[1]))
		return m_fail(g, m, root, "W '%s' is not a constant with data", W->name);
	m_add(m, root);
	GemmMatch *gm = M_AS(GemmMatch, m);
	gm->a = mn->in[0];
	gm->w = mn->in[1];
	gm->bias = -1;
	gm->y = mn->out[0];
	gm->act = 0;
	return true;
}

static void rewrite_gemm_nobias(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const GemmMatch *gm = M_AS_CONST(GemmMatch, m);
	ValId in[2] = {gm->a, gm->w};
	NodeId n = rw_replace(g, OP_KlnGemm, IR_NODE(g, m->root)->name, 2, in, gm->y);
	ir_attr_set_int(g, n, "act", 0);
	rw_erase_match(g, m);
}

/* ONNX Gemm as a KlnGemm */
static bool match_gemm_onnx(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	const Value *A = IR_VAL(g, n->in[0]), *B = IR_VAL(g, n->in[1]);
	ValId c = n->nin > 2 ? n->in[2] : -1;
	if (ir_attr_float(g, root, "alpha", 1.0f) != 1.0f)
		return m_fail(g, m, root, "alpha is %g, not 1", ir_attr_float(g, root, "alpha", 1.0f));
	if (c >= 0 && ir_attr_float(g, root, "beta", 1.0f) != 1.0f)
		return m_fail(g, m, root, "beta is %g, not 1", ir_attr_float(g, root, "beta", 1.0f));
	if (A->dtype != DT_F32 || B->dtype != DT_F32 || A->rank != 2 || B->rank != 2)
		return m_fail(g, m, root, "A and B must be f32 matrices");
	if (!m_is_const(g, n->in[1]))
		return m_fail(g, m, root, "B '%s' is not a constant with data", B->name);
	int tb = (int)ir_attr_int(g, root, "transB", 0);
	GemmOnnxMatch *om = M_AS(GemmOnnxMatch, m);
	if (c >= 0 && !row_bias(g, c, B->dims[tb ? 0 : 1], 2, root, m, &c, &om->copy))
		return false;
	m_add(m, root);
	om->a = n->in[0];
	om->b = n->in[1];
	om->c = c;
	om->y = n->out[0];
	om->trans_b = tb != 0;
	om->trans_a = ir_attr_int(g, root, "transA", 0) != 0;
	return true;
}

static void rewrite_gemm_onnx(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const GemmOnnxMatch *om = M_AS_CONST(GemmOnnxMatch, m);
	ValId in[3] = {om->a, om->b, om->c >= 0 && om->copy ? bias_vector(g, om->c) : om->c};
	if (om->trans_b) {
		/* W = B^T, a new constant (B [N, K] -> W [K, N]) */
		const Value *B = IR_VAL(g, om->b);
		int64_t N, K;
		ir_dim_is_const(g, B->dims[0], &N);
		ir_dim_is_const(g, B->dims[1], &K);
		float *w = malloc((size_t)(N * K) * sizeof(float));
		if (!w)
			abort();
		const float *b = B->data;
		for (int64_t r = 0; r < N; r++)
			for (int64_t k = 0; k < K; k++)
				w[k * N + r] = b[r * K + k];
		int64_t wd[2] = {K, N};
		in[1] = rw_const(g, "gemm_weight_t", DT_F32, 2, wd, w, (size_t)(N * K) * sizeof(float));
		free(w);
	}
	const char *name = IR_NODE(g, m->root)->name;
	if (om->trans_a) {
		/* A [K, M] -> [M, K], a layout copy before the GEMM */
		NodeId t = ir_node_new(g, OP_Transpose, name, 1, &in[0], 1, NULL);
		ir_attr_set_ints(g, t, "perm", 2, (int64_t[2]){1, 0});
		Diag d = {0};
		int rc = ir_infer_node(g, t, &d);
		assert(rc == 0);
		(void)rc;
		in[0] = IR_NODE(g, t)->out[0];
	}
	NodeId n = rw_replace(g, OP_KlnGemm, name, om->c >= 0 ? 3 : 2, in, om->y);
	ir_attr_set_int(g, n, "act", 0);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("gemm_onnx", OP_Gemm, GemmOnnxMatch, match_gemm_onnx, rewrite_gemm_onnx),
	PATTERN_ROW("bias_gelu", OP_KlnGelu, GemmMatch, match_bias_gelu, rewrite_gemm),
	PATTERN_ROW("gemm", OP_Add, GemmMatch, match_gemm, rewrite_gemm),
};

/* after the bias patterns, so a MatMul with a bias keeps it in its GEMM */
static const Pattern nobias[] = {
	PATTERN_ROW("gemm_nobias", OP_MatMul, GemmMatch, match_gemm_nobias, rewrite_gemm_nobias),
};

void pass_fuse_gemm(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
	fuse_run(g, pc, nobias, 1);
}
