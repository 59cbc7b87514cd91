/* Pass `quantize` (kiln compile --quantize=int8): every fused GEMM with
 * constant weights runs in int8.
 *
 *   KlnGemm(A, W, bias?) {act}  ->  KlnGemmQ(A, Wq, scale, wsum, bias?) {act}
 *
 * W (f32 [K, N], a constant, K <= 65536) is quantized here, per output
 * column and symmetric, into the int8 panels of runtime/gemm_int8.h
 * (rt_q8_quantize_weights_bits: the one definition the runtime's tests use
 * too), with its per-column scales and column sums; 8-bit ([-127, 127]),
 * or with --quantize-weight-bits=7 7-bit ([-64, 64], attribute wbits 7:
 * what AVX2's fast u8 x s8 kernel needs to stay exact, as ONNX Runtime's
 * reduce_range); the runtime quantizes A per
 * row (uint8, asymmetric) on every call and sums the products exactly in
 * int32.  Everything else -- attention and its softmax, layer norms,
 * residual adds, GELUs outside a GEMM -- stays fp32.  KlnGemms whose W is
 * not a constant (none come from kiln's fusions) are left as they are, and
 * so, with a warning naming the node and the weights, are those whose W
 * holds a NaN or an infinity: no scale quantizes it, and in fp32 the GEMM
 * gives what the model says.
 *
 * requires: shapes inferred; the fusions before it (it rewrites KlnGemm only,
 *           so at -O0 it changes nothing).
 * preserves: shapes, graph output names.
 * breaks: nothing; the old weights die (dce). */
#include <stdlib.h>

#include "pass_internal.h"
#include "../runtime/gemm_int8.h"

/* W of gemm n as an f32 [K, N] constant with data, else NULL */
static const Value *const_weights(const Graph *g, const Node *n, int64_t *K, int64_t *N)
{
	const Value *w = IR_VAL(g, n->in[1]);
	if (w->kind != V_CONST || !w->data || w->dtype != DT_F32 || w->rank != 2)
		return NULL;
	if (!ir_dim_is_const(g, w->dims[0], K) || !ir_dim_is_const(g, w->dims[1], N))
		return NULL;
	if (*K < 1 || *K > RT_Q8_KMAX || *N < 1 || w->nbytes != (size_t)(*K * *N) * sizeof(float))
		return NULL;
	return w;
}

/* W (n values) holds a NaN or an infinity */
static bool nonfinite(const float *w, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (!(w[i] - w[i] == 0))
			return true;
	return false;
}

static void quantize_gemm(Graph *g, NodeId id, PassCtx *pc)
{
	const Node *n = IR_NODE(g, id);
	int64_t K, N;
	const Value *w = const_weights(g, n, &K, &N);
	if (!w)
		return;
	if (nonfinite(w->data, K * N)) {
		/* (names from a model: escaped, one line) */
		char nn[256], wn[256];
		diag_escape(nn, sizeof nn, n->name ? n->name : "");
		diag_escape(wn, sizeof wn, w->name ? w->name : "");
		if (!pc->dry)
			fprintf(stderr, "kiln: %s%swarning: --quantize=int8 left KlnGemm '%s' in fp32: its "
			        "weights '%s' hold a NaN or an infinity\n",
			        g->file ? g->file : "", g->file ? ": " : "", nn, wn);
		return;
	}
	size_t pb = (size_t)rt_q8_panel_bytes(K, N);
	int8_t *wq = malloc(pb);
	float *scale = malloc((size_t)N * sizeof(float));
	int32_t *wsum = malloc((size_t)N * sizeof(int32_t));
	if (!wq || !scale || !wsum)
		abort();
	int bits = pc->opt->quantize_wbits == 7 ? 7 : 8;
	rt_q8_quantize_weights_bits(w->data, K, N, bits, wq, scale, wsum);
	const char *base = IR_VAL(g, n->in[1])->name;
	int64_t wd[3] = {rt_q8_panels(N), rt_q8_quads(K), 64};
	ValId in[5] = {n->in[0], rw_const(g, base, DT_I8, 3, wd, wq, pb),
	               rw_const(g, base, DT_F32, 1, &N, scale, (size_t)N * sizeof(float)),
	               rw_const(g, base, DT_I32, 1, &N, wsum, (size_t)N * sizeof(int32_t)), -1};
	free(wq);
	free(scale);
	free(wsum);
	n = IR_NODE(g, id);
	int nin = 4;
	if (n->nin > 2 && n->in[2] >= 0)
		in[nin++] = n->in[2];
	const Attr *act = ir_attr_get(g, id, "act");
	int64_t a = act ? act->u.i : 0;
	NodeId q = rw_replace(g, OP_KlnGemmQ, n->name, nin, in, n->out[0]);
	ir_attr_set_int(g, q, "act", a);
	if (bits == 7)
		ir_attr_set_int(g, q, "wbits", 7);
	ir_node_erase(g, id);
	pass_count(pc, "quantize_int8");
}

void pass_quantize(Graph *g, PassCtx *pc)
{
	if (pass_pattern_disabled(pc, "quantize_int8"))
		return;
	/* the GEMMs first: the rewrites add and erase nodes */
	NodeId *gemms = malloc(sizeof(NodeId) * (size_t)(g->norder + 1));
	if (!gemms)
		abort();
	int32_t n = 0;
	for (int32_t i = 0; i < g->norder; i++)
		if (!IR_NODE(g, g->order[i])->dead && IR_NODE(g, g->order[i])->op == OP_KlnGemm)
			gemms[n++] = g->order[i];
	for (int32_t i = 0; i < n; i++)
		quantize_gemm(g, gemms[i], pc);
	free(gemms);
	ir_toposort(g);
	ir_dce(g);
}
