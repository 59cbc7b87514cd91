/* Shape inference of kiln's fused ops (created by passes/, run by
 * runtime/kernels_fused.c; the op contracts are documented there too):
 *
 *   KlnGemm(A[..., K], W[K, N], bias[N]?)            -> [..., N]   f32
 *   KlnGemmQ(A[..., K], W i8 [ceil(N/16), ceil(K/4), 64], scale[N], wsum i32 [N],
 *            bias[N]?)                               -> [..., N]   f32
 *   KlnLayerNorm(x[..., H], gamma[H], beta[H])         -> like x
 *   KlnSkipLayerNorm(x, skip, gamma, beta, bias?)       -> like x (and the sum, like x)
 *   KlnAttention(Q[B,Sq,*], K[B,Sk,*], V[B,Sk,*], bias?, mask?)
 *                                                     -> [B, Sq, num_heads*v_head_size]
 *                (K, V hold kv_num_heads heads when it is set)
 *                (layout 1: every tensor time-major, [Sq, B, *] ...)
 *   KlnEmbedLayerNorm(ids[B,S], word[V,H], gamma, beta, pos_ids?, pos[P,H]?,
 *                     seg_ids?, seg[T,H]?)             -> [B, S, H] (and the sum;
 *                     [B, S] the broadcast of the indices)
 *   KlnGelu(x)                                         -> like x
 *   KlnRMSNorm(x[..., H], gamma[H] or [1], skip?)      -> like x (and the sum x + skip, like x)
 *   KlnPackTokens(x[B,S,H], mask[B,S], cu_seqlens_in[B+1]?)
 *                                                     -> [1, T, H], cu_seqlens i32 [B+1]
 *                (T: the symbol "MASK.tokens[0]", bound at run time by the
 *                first pack of that mask; every pack of it shares it)
 *   KlnUnpackTokens(x[1,T,H], cu_seqlens[B+1], mask[B,S]) -> [B, S, H]
 */
#include <stdio.h>
#include <string.h>

#include "shape_fused.h"
#include "shape_internal.h"

static int need_f32(Sh *s, int i, const Value **v)
{
	if (ir_shp_need(s, i, v))
		return -1;
	if ((*v)->dtype != DT_F32)
		return ir_shp_fail(s, "input '%s' must be f32", ir_shp_inname(s, i));
	return 0;
}

/* Input i (if present) is rank 1 of length h. */
static int need_vec(Sh *s, int i, DimId h, const char *what)
{
	const Value *v;
	if (need_f32(s, i, &v))
		return -1;
	if (v->rank != 1)
		return ir_shp_fail(s, "%s '%s' must have rank 1", what, ir_shp_inname(s, i));
	DimId u;
	return ir_shp_unify(s, v->dims[0], h, &u, what);
}

static int gemm(Sh *s)
{
	const Value *a, *w;
	if (need_f32(s, 0, &a) || need_f32(s, 1, &w))
		return -1;
	if (a->rank < 1 || w->rank != 2)
		return ir_shp_fail(s, "A must have rank >= 1 and W rank 2");
	DimId k;
	if (ir_shp_unify(s, a->dims[a->rank - 1], w->dims[0], &k, "inner dimension"))
		return -1;
	if (ir_shp_in(s, 2) && need_vec(s, 2, w->dims[1], "bias"))
		return -1;
	DimId d[IR_MAX_RANK];
	memcpy(d, a->dims, sizeof d);
	d[a->rank - 1] = w->dims[1];
	ir_shp_out(s, 0, DT_F32, a->rank, d);
	return 0;
}

/* The int8 panels of runtime/gemm_int8.h: K and N constant, and W's dims
 * those of their panels. */
static int gemm_q(Sh *s)
{
	const Value *a, *w, *sc, *ws;
	if (need_f32(s, 0, &a) || ir_shp_need(s, 1, &w) || need_f32(s, 2, &sc) ||
	    ir_shp_need(s, 3, &ws))
		return -1;
	if (w->dtype != DT_I8 || ws->dtype != DT_I32)
		return ir_shp_fail(s, "W must be i8 and wsum i32");
	int64_t K, N, d0, d1, d2;
	if (a->rank < 1 || w->rank != 3 || sc->rank != 1 || ws->rank != 1)
		return ir_shp_fail(s, "A must have rank >= 1, W rank 3, scale and wsum rank 1");
	if (!ir_dim_is_const(s->g, a->dims[a->rank - 1], &K) || !ir_dim_is_const(s->g, sc->dims[0], &N))
		return ir_shp_fail(s, "A's last dim and scale's length must be constants");
	if (!ir_dim_is_const(s->g, w->dims[0], &d0) || !ir_dim_is_const(s->g, w->dims[1], &d1) ||
	    !ir_dim_is_const(s->g, w->dims[2], &d2) || d0 != (N + 15) / 16 || d1 != (K + 3) / 4 ||
	    d2 != 64)
		return ir_shp_fail(s, "W must be the int8 panels of a [%lld, %lld] matrix: [%lld, %lld, 64]",
		                   (long long)K, (long long)N, (long long)((N + 15) / 16),
		                   (long long)((K + 3) / 4));
	DimId u;
	if (ir_shp_unify(s, ws->dims[0], sc->dims[0], &u, "wsum"))
		return -1;
	if (ir_shp_in(s, 4) && need_vec(s, 4, sc->dims[0], "bias"))
		return -1;
	DimId d[IR_MAX_RANK];
	memcpy(d, a->dims, sizeof d);
	d[a->rank - 1] = sc->dims[0];
	ir_shp_out(s, 0, DT_F32, a->rank, d);
	return 0;
}

/* Input i has x's shape (dims unified). */
static int need_like(Sh *s, int i, const Value *x, const char *what)
{
	const Value *k;
	if (need_f32(s, i, &k))
		return -1;
	if (k->rank != x->rank)
		return ir_shp_fail(s, "%s must have the shape of the input", what);
	for (int d = 0; d < x->rank; d++) {
		DimId u;
		if (ir_shp_unify(s, x->dims[d], k->dims[d], &u, what))
			return -1;
	}
	return 0;
}

static int layernorm(Sh *s, int nx)
{
	const Value *x;
	if (need_f32(s, 0, &x))
		return -1;
	if (x->rank < 1)
		return ir_shp_fail(s, "input must have rank >= 1");
	DimId h = x->dims[x->rank - 1];
	if (nx == 2) {
		if (need_like(s, 1, x, "skip"))
			return -1;
		if (ir_shp_in(s, 4) && need_vec(s, 4, h, "bias"))
			return -1;
	}
	if (need_vec(s, nx, h, "gamma") || need_vec(s, nx + 1, h, "beta"))
		return -1;
	ir_shp_out(s, 0, DT_F32, x->rank, x->dims);
	ir_shp_out(s, 1, DT_F32, x->rank, x->dims);
	return 0;
}

static int rmsnorm(Sh *s)
{
	const Value *x;
	if (need_f32(s, 0, &x))
		return -1;
	if (x->rank < 1)
		return ir_shp_fail(s, "x must have rank >= 1");
	/* gamma [H], or one element that the kernel broadcasts over the row
	 * (fuse-norm's weight of 1 for an unweighted RMSNorm of any width) */
	const Value *gm;
	if (need_f32(s, 1, &gm))
		return -1;
	int64_t ng = 0;
	bool one = gm->rank == 1 && ir_dim_is_const(s->g, gm->dims[0], &ng) && ng == 1;
	if (!one && need_vec(s, 1, x->dims[x->rank - 1], "gamma"))
		return -1;
	if (ir_shp_in(s, 2) && need_like(s, 2, x, "skip"))
		return -1;
	ir_shp_out(s, 0, DT_F32, x->rank, x->dims);
	ir_shp_out(s, 1, DT_F32, x->rank, x->dims);
	return 0;
}

static int attention(Sh *s)
{
	const Value *q, *k, *v;
	if (need_f32(s, 0, &q) || need_f32(s, 1, &k) || need_f32(s, 2, &v))
		return -1;
	if (q->rank != 3 || k->rank != 3 || v->rank != 3)
		return ir_shp_fail(s, "Q, K and V must have rank 3 [batch, seq, hidden]");
	Graph *g = s->g;
	NodeId n = s->id;
	int64_t h = ir_attr_int(g, n, "num_heads", 0), d = ir_attr_int(g, n, "head_size", 0);
	int64_t dv = ir_attr_int(g, n, "v_head_size", d);
	int64_t qo = ir_attr_int(g, n, "q_offset", 0), ko = ir_attr_int(g, n, "k_offset", 0);
	int64_t vo = ir_attr_int(g, n, "v_offset", 0);
	int64_t hkv = ir_attr_int(g, n, "kv_num_heads", 0);
	if (h <= 0 || d <= 0 || dv <= 0 || qo < 0 || ko < 0 || vo < 0)
		return ir_shp_fail(s, "num_heads, head_size, v_head_size must be > 0, offsets >= 0");
	hkv = hkv ? hkv : h;
	if (hkv < 0 || h % hkv)
		return ir_shp_fail(s, "kv_num_heads %lld does not divide num_heads %lld", (long long)hkv,
		                   (long long)h);
	int64_t c;
	const Value *in[3] = {q, k, v};
	int64_t need[3] = {qo + h * d, ko + hkv * d, vo + hkv * dv};
	for (int i = 0; i < 3; i++)
		if (ir_dim_is_const(g, in[i]->dims[2], &c) && c < need[i])
			return ir_shp_fail(s, "input '%s': last dim %lld < %lld", ir_shp_inname(s, i),
			                   (long long)c, (long long)need[i]);
	/* layout 0: [batch, seq, hidden]; 1: [seq, batch, hidden] (time-major) */
	int64_t lay = ir_attr_int(g, n, "layout", 0);
	if (lay != 0 && lay != 1)
		return ir_shp_fail(s, "layout must be 0 or 1");
	int bi = (int)lay, si = 1 - (int)lay;
	DimId b, sk;
	if (ir_shp_unify(s, q->dims[bi], k->dims[bi], &b, "batch") ||
	    ir_shp_unify(s, b, v->dims[bi], &b, "batch") ||
	    ir_shp_unify(s, k->dims[si], v->dims[si], &sk, "key sequence"))
		return -1;
	const Value *bias = ir_shp_in(s, 3);
	if (bias && (bias->rank < 0 || bias->rank > 4 || !ir_dtype_is_float(bias->dtype)))
		return ir_shp_fail(s, "bias '%s' must be float of rank <= 4", ir_shp_inname(s, 3));
	const Value *mask = ir_shp_in(s, 4);
	if (mask && mask->rank != 2)
		return ir_shp_fail(s, "key padding mask '%s' must be [batch, key_seq]", ir_shp_inname(s, 4));
	const Value *cu = ir_shp_in(s, 5);
	if (cu && (cu->dtype != DT_I32 || cu->rank != 1 || mask || bias || lay != 0))
		return ir_shp_fail(s, "cu_seqlens '%s' must be i32 [batch + 1], with no mask, no bias, layout 0",
		                   ir_shp_inname(s, 5));
	DimId od[3] = {q->dims[0], q->dims[1], ir_dim_const(g, h * dv)};   /* either layout */
	ir_shp_out(s, 0, DT_F32, 3, od);
	return 0;
}

static int embed(Sh *s)
{
	const Value *ids, *w;
	if (ir_shp_need(s, 0, &ids) || need_f32(s, 1, &w))
		return -1;
	if (!ir_dtype_is_int(ids->dtype) || ids->rank != 2 || w->rank != 2)
		return ir_shp_fail(s, "ids must be integer [batch, seq] and the table [vocab, hidden]");
	DimId h = w->dims[1];
	if (need_vec(s, 2, h, "gamma") || need_vec(s, 3, h, "beta"))
		return -1;
	for (int t = 5; t <= 7; t += 2) {
		const Value *e = ir_shp_in(s, t);
		if (!e)
			continue;
		DimId u;
		if (need_f32(s, t, &e) || e->rank != 2 || ir_shp_unify(s, e->dims[1], h, &u, "table width"))
			return e && e->rank != 2 ? ir_shp_fail(s, "table '%s' must have rank 2", ir_shp_inname(s, t)) : -1;
		const Value *ix = ir_shp_in(s, t - 1);
		if (!ix || !ir_dtype_is_int(ix->dtype) || ix->rank < 1 || ix->rank > 2)
			return ir_shp_fail(s, "index input %d must be integer of rank 1 or 2", t - 1);
	}
	/* [B, S]: the broadcast of the ids and the other indices (rank 1: [S]),
	 * as the Adds of the embedding sum made it */
	DimId bs[2] = {ids->dims[0], ids->dims[1]};
	for (int t = 4; t <= 6; t += 2) {
		const Value *ix = ir_shp_in(s, t);
		if (!ix || ix->rank < 1 || ix->rank > 2)
			continue;
		int r;
		DimId b2[2];
		if (ir_shp_bcast(s, 2, bs, ix->rank, ix->dims, &r, b2))
			return -1;
		bs[0] = b2[0];
		bs[1] = b2[1];
	}
	DimId od[3] = {bs[0], bs[1], h};
	ir_shp_out(s, 0, DT_F32, 3, od);
	ir_shp_out(s, 1, DT_F32, 3, od);
	return 0;
}

/* The token count of a mask: one data-dependent symbol per mask, so every
 * pack of it (and every packed tensor) has the same extent. */
static DimId tokens_dim(Sh *s, const Value *mask)
{
	char base[256];
	snprintf(base, sizeof base, "%.240s.tokens", mask->name ? mask->name : "mask");
	return ir_dim_dyn(s->g, base, 0);
}

static bool m_dim_one(const Graph *g, DimId d)
{
	int64_t c;
	return ir_dim_is_const(g, d, &c) && c == 1;
}

static int need_mask(Sh *s, int i, const Value **m)
{
	if (ir_shp_need(s, i, m))
		return -1;
	if ((*m)->rank != 2)
		return ir_shp_fail(s, "mask '%s' must have rank 2 [batch, seq]", ir_shp_inname(s, i));
	return 0;
}

static int need_cu(Sh *s, int i, DimId b)
{
	const Value *cu;
	if (ir_shp_need(s, i, &cu))
		return -1;
	if (cu->dtype != DT_I32 || cu->rank != 1)
		return ir_shp_fail(s, "cu_seqlens '%s' must be i32 of rank 1", ir_shp_inname(s, i));
	DimId u;
	return ir_shp_unify(s, cu->dims[0], ir_dim_add(s->g, b, ir_dim_const(s->g, 1)), &u, "cu_seqlens");
}

static int pack_tokens(Sh *s)
{
	const Value *x, *m;
	if (need_f32(s, 0, &x) || need_mask(s, 1, &m))
		return -1;
	if (x->rank != 3)
		return ir_shp_fail(s, "x must have rank 3 [batch, seq, hidden]");
	DimId b, sq;
	if (ir_shp_unify(s, x->dims[0], m->dims[0], &b, "batch") ||
	    ir_shp_unify(s, x->dims[1], m->dims[1], &sq, "sequence"))
		return -1;
	if (ir_shp_in(s, 2) && need_cu(s, 2, m->dims[0]))
		return -1;
	DimId od[3] = {ir_dim_const(s->g, 1), tokens_dim(s, m), x->dims[2]};
	ir_shp_out(s, 0, DT_F32, 3, od);
	DimId cd = ir_dim_add(s->g, m->dims[0], ir_dim_const(s->g, 1));
	ir_shp_out(s, 1, DT_I32, 1, &cd);
	return 0;
}

static int unpack_tokens(Sh *s)
{
	const Value *x, *m;
	if (need_f32(s, 0, &x) || need_mask(s, 2, &m) || need_cu(s, 1, m->dims[0]))
		return -1;
	if (x->rank != 3 || !m_dim_one(s->g, x->dims[0]))
		return ir_shp_fail(s, "x must be packed tokens [1, tokens, hidden]");
	DimId od[3] = {m->dims[0], m->dims[1], x->dims[2]};
	ir_shp_out(s, 0, DT_F32, 3, od);
	return 0;
}

int ir_infer_fused(Graph *g, NodeId n, Diag *diag)
{
	Sh s = {g, n, diag};
	const Value *x;
	switch (IR_NODE(g, n)->op) {
	case OP_KlnGemm: return gemm(&s);
	case OP_KlnGemmQ: return gemm_q(&s);
	case OP_KlnLayerNorm: return layernorm(&s, 1);
	case OP_KlnSkipLayerNorm: return layernorm(&s, 2);
	case OP_KlnAttention: return attention(&s);
	case OP_KlnPackTokens: return pack_tokens(&s);
	case OP_KlnUnpackTokens: return unpack_tokens(&s);
	case OP_KlnEmbedLayerNorm: return embed(&s);
	case OP_KlnGelu:
		if (need_f32(&s, 0, &x))
			return -1;
		ir_shp_out(&s, 0, DT_F32, x->rank, x->dims);
		return 0;
	case OP_KlnRMSNorm: return rmsnorm(&s);
	default:
		return ir_shp_fail(&s, "not a fused op");
	}
}
