/* Pass `fuse-qgemm`: the dynamic int8 form ONNX tools write (onnxruntime's
 * quantize_dynamic, shared/tools/quantize_dynamic.py) on kiln's int8 GEMM.
 *
 * Pattern qgemm (root: the last Mul):
 *   (xq, xs, xzp) = DynamicQuantizeLinear(x)
 *   Mul(Cast<float>(MatMulInteger(xq, Wq, xzp, Wzp?)), Mul(xs, Wscale))
 *     -> KlnGemmQ(x, Wq's panels, Wscale per column, Wq's column sums)
 *        {act 0, per_tensor 1, wbits 7 when every |Wq| <= 64}
 * with Wq a constant i8 [K, N] (K <= 65536), Wzp absent or a constant of
 * zeros (symmetric weights), Wscale a constant f32 scalar or [N] (Muls in
 * either operand order).  Exact: KlnGemmQ quantizes x per tensor as
 * DynamicQuantizeLinear does, sums (xq - xzp) Wq in int32 and multiplies
 * by xs * Wscale[n] as the graph does, so the outputs are the same bits.
 * The DynamicQuantizeLinear may feed other MatMulIntegers (onnxruntime
 * shares one per input); it dies with its last use.
 *
 * requires: shapes inferred.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <stdlib.h>

#include "pass_internal.h"
#include "../runtime/gemm_int8.h"

/* qgemm: y = dequantized MatMulInteger(quantize(x), wq) */
typedef struct QgemmMatch {
	Match m;
	ValId x;        /* the DynamicQuantizeLinear's f32 input */
	ValId wq;       /* the i8 weight [K, N], a constant */
	ValId wscale;   /* its scale: an f32 constant scalar or [N] */
	ValId y;        /* the result, taken over by the KlnGemmQ */
	int64_t k, n;   /* wq's dims */
} QgemmMatch;

/* v is an f32 constant scalar or [n]: its data, else NULL */
static const float *scale_vec(const Graph *g, ValId v, int64_t n, bool *scalar)
{
	const Value *s = IR_VAL(g, v);
	if (!m_is_const(g, v) || s->dtype != DT_F32)
		return NULL;
	*scalar = s->nbytes == sizeof(float);
	return *scalar || s->nbytes == (size_t)n * sizeof(float) ? s->data : NULL;
}

static bool zeros(const Graph *g, ValId v, int64_t n)
{
	if (v < 0)
		return true;
	const Value *z = IR_VAL(g, v);
	if (!m_is_const(g, v) || z->dtype != DT_I8 || (z->nbytes != 1 && z->nbytes != (size_t)n))
		return false;
	for (size_t i = 0; i < z->nbytes; i++)
		if (((const int8_t *)z->data)[i])
			return false;
	return true;
}

static bool match_qgemm(const Graph *g, NodeId root, Match *m)
{
	const Node *r = IR_NODE(g, root);
	for (int k = 0; k < 2; k++) {
		NodeId cast = m_def(g, r->in[k], OP_Cast), sm = m_def(g, r->in[1 - k], OP_Mul);
		if (cast < 0 || sm < 0 || ir_attr_int(g, cast, "to", 0) != DT_F32)
			continue;
		if (m_nuses(g, r->in[k]) != 1 || m_nuses(g, r->in[1 - k]) != 1)
			continue;
		NodeId mmi = m_def(g, IR_NODE(g, cast)->in[0], OP_MatMulInteger);
		if (mmi < 0 || m_nuses(g, IR_NODE(g, cast)->in[0]) != 1)
			continue;
		const Node *mi = IR_NODE(g, mmi);
		NodeId dq = m_def(g, mi->in[0], OP_DynamicQuantizeLinear);
		if (dq < 0 || mi->nin < 3 || mi->in[2] != IR_NODE(g, dq)->out[2])
			continue;
		const Value *w = IR_VAL(g, mi->in[1]);
		int64_t K, N;
		if (!m_is_const(g, mi->in[1]) || w->dtype != DT_I8 || w->rank != 2 ||
		    !ir_dim_is_const(g, w->dims[0], &K) || !ir_dim_is_const(g, w->dims[1], &N) ||
		    K < 1 || K > RT_Q8_KMAX || N < 1 || !zeros(g, mi->nin > 3 ? mi->in[3] : -1, N))
			continue;
		ValId xs = IR_NODE(g, dq)->out[1], ws = m_other(g, sm, xs);
		bool scalar;
		if (ws < 0 || !scale_vec(g, ws, N, &scalar))
			continue;
		m_add(m, root);
		m_add(m, cast);
		m_add(m, mmi);
		m_add(m, sm);
		QgemmMatch *qm = M_AS(QgemmMatch, m);
		qm->x = IR_NODE(g, dq)->in[0];
		qm->wq = mi->in[1];
		qm->wscale = ws;
		qm->y = r->out[0];
		qm->k = K;
		qm->n = N;
		return true;
	}
	return false;
}

static void rewrite_qgemm(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const QgemmMatch *qm = M_AS_CONST(QgemmMatch, m);
	int64_t K = qm->k, N = qm->n;
	bool scalar = false;
	const float *ws = scale_vec(g, qm->wscale, N, &scalar);
	size_t pb = (size_t)rt_q8_panel_bytes(K, N);
	int8_t *wp = malloc(pb);
	float *sc = malloc((size_t)N * sizeof(float));
	int32_t *sum = malloc((size_t)N * sizeof(int32_t));
	if (!wp || !sc || !sum)
		abort();
	rt_q8_pack(IR_VAL(g, qm->wq)->data, K, N, wp, sum);
	for (int64_t n = 0; n < N; n++)
		sc[n] = ws[scalar ? 0 : n];
	const char *base = IR_VAL(g, qm->wq)->name;
	int64_t wd[3] = {rt_q8_panels(N), rt_q8_quads(K), 64};
	ValId in[4] = {qm->x, rw_const(g, base, DT_I8, 3, wd, wp, pb),
	               rw_const(g, base, DT_F32, 1, &N, sc, (size_t)N * sizeof(float)),
	               rw_const(g, base, DT_I32, 1, &N, sum, (size_t)N * sizeof(int32_t))};
	free(wp);
	free(sc);
	free(sum);
	NodeId q = rw_replace(g, OP_KlnGemmQ, IR_NODE(g, m->root)->name, 4, in, qm->y);
	ir_attr_set_int(g, q, "act", 0);
	ir_attr_set_int(g, q, "per_tensor", 1);
	if (rt_q8_wbits(IR_VAL(g, qm->wq)->data, K * N) == 7)   /* e.g. reduce_range's weights */
		ir_attr_set_int(g, q, "wbits", 7);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("qgemm", OP_Mul, QgemmMatch, match_qgemm, rewrite_qgemm),
};

void pass_fuse_qgemm(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, 1);
}
