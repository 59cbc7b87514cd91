/* Pass `fuse-attention`: multi-head attention as one KlnAttention.
 *
 * Pattern `attention` (root: the Softmax), self- and cross-attention alike:
 *
 *   Qh = Transpose(Q4, [0,2,1,3])   Q4 = Reshape(Q, [B, Sq, H, D]) or any [B, Sq, H, D]
 *        (* cq)?
 *   Kt = Transpose(K4, [0,2,3,1])   or Transpose(Transpose(K4, [0,2,1,3]), [0,1,3,2])
 *        (* ck)?
 *   Vh = Transpose(V4, [0,2,1,3])
 *   S  = MatMul(Qh, Kt) under any chain of Mul/Div by constant scalars and
 *        Add/Sub of bias terms: S' = c * S + sum_t coef_t * term_t
 *   P  = Softmax(S', last axis)
 *        (Where(IsNaN(P), 0, P))?                               SDPA guard
 *   O  = Reshape(Transpose(MatMul(P, Vh), [0,2,1,3]), [B, Sq, H*Dv])
 *   -> KlnAttention(Q, K, V, bias?, mask?) {num_heads H, head_size D, v_head_size Dv,
 *      q_offset 0, k_offset 0, v_offset 0, nan_guard, layout 0, scale = c*cq*ck,
 *      mask_filter}
 *
 * Time-major attention (XLNet, layout 1): Q4, K4, V4 are [S, B, H, D]
 * with the perms [1,2,0,3] / [1,2,3,0], and the result Transpose(.,
 * [2,0,1,3]) is [Sq, B, H, Dv] (reshaped back after the fused op unless
 * a Reshape to [Sq, B, H*Dv] follows).  A 4-D Q/K/V not produced by a
 * Reshape from 3-D is viewed as 3-D by a new Reshape.
 *
 * The bias terms must broadcast to [B, H, Sq, Sk].  One term of
 * coefficient 1 is passed as is, except the two padding-mask constructions
 * recognized below, which become the key-padding mask input with
 * mask_filter c: the legacy (1 - mask) * c over a [B, Sk] mask
 * (key_padding) and transformers' masking utilities Where(pad && true...,
 * 0, c) (masking_utils), whose padding term pad[b, k] is read from the
 * mask by Gather(Flatten(mask), b*S + k) in the TorchScript exports and by
 * GatherND(mask, (b, k)) in the dynamo export.  Several terms (XLNet's position scores inside
 * the scale, its mask outside) are summed with their coefficients into one
 * bias by new nodes: c*S + (c*t1 - t2) equals (S + t1)*c - t2 up to
 * rounding (exactly for power-of-two scales).
 *
 * Other exporters' forms:
 *   - heads-first Q, K, V: any f32 [B, H, S, D] (K^T any [B, H, D, S]) that
 *     is not a head-split Transpose, e.g. K, V = Concat(past, new) of a KV
 *     cache (Sq != Sk) or 4-D graph inputs: transposed to [B, S, H, D] and
 *     viewed 3-D by new nodes;
 *   - grouped-query attention: K, V repeated by repeat_kv (Unsqueeze at 2,
 *     Expand or Tile, Reshape; or a Tile along the sequence, Reshape) or one
 *     head broadcast by MatMul: kv_num_heads (Q head h reads K/V head
 *     h / (H / Hkv)); tiled along the heads (Tile(X, [1, r, 1, 1]), Concat(X,
 *     X) on axis 1, Unsqueeze at 1 + Expand or Tile + Reshape: head h % Hkv,
 *     tile_heads): kv_num_heads with kv_tiled; K and V must agree;
 *   - a constant scale on Q or K before its head split (absorb_side_scale);
 *   - K^T through a 3-D [B*H, S, D] view unfolded again (SDPA: the same
 *     analysis, fold_side) and key-major scores
 *     Transpose(MatMul(Kh, Q^T), [0,1,3,2]) (Einsum aecd,abcd->acbe);
 *   - causal masks, proved by attn_mask.c from their construction (Range
 *     iotas compared, Trilu of a filled matrix, the causal block sliced
 *     from a constant lower-triangular buffer (GPT-2's `bias`), Where/Cast/
 *     arithmetic with constants), with the edge k <= q + Sk - Sq against
 *     the scores' dims:
 *     Where(causal, S, fill) below every bias term -> causal 2, an additive
 *     causal term (alone or added to another term) -> causal 1; the mask is
 *     not materialized.  Any other mask stays an additive bias input;
 *   - Where masks that are not causal (where_mask): a constant condition
 *     keeping every score is dropped; a [B, 1, 1, Sk] condition (DistilBERT's
 *     Where(Expand(Reshape(Equal(mask, 0))), min, S)) becomes the key-padding
 *     mask; transformers' And(causal, padding) with a -inf fill the causal
 *     flag plus the key-padding mask (also as the additive Where(m, 0, -inf));
 *     any other condition the bias Where(c, F, 0) (so is a padding condition
 *     the kernel's mask cannot take, e.g. at layout 1: as [B, 1, 1, Sk],
 *     also when only its [B, Sk] source is known) for fills that absorb
 *     the scores (-inf, <= -2^110); a padding condition with any other
 *     fill (masked_fill(-1e9), -1e4, -65504) the key-padding mask in replace
 *     mode (mask_replace: the masked score becomes the fill, after scale,
 *     bias and causal fill), with nothing added above it and a causal
 *     Where above it only of the same fill (where_replace); a padding
 *     condition with a batch symbol of its own (own_batch) expanded to Q's
 *     batch; the mask repeated on the probabilities, Where(c, 0, P), with a
 *     -inf fill the NaN guard (zero_probs);
 *   - heads folded into the batch (match_attention_3d, fold_side): 3-D
 *     [B*H, S, D] views, batch-first (BART, Whisper: Reshape of the
 *     [B, H, S, D] heads) or time-major (fairseq: Transpose(1,0,2) of
 *     [S, B*H, D]), 3-D scores reshaped to 4-D around masked_fill(-inf or
 *     the float minimum: for finite scores the same as adding it) or an
 *     added bias, Softmax on axis 2, the context unfolded back -> layout 0
 *     or 1 as the heads were laid out.
 * Every failure point records its reason with m_fail (--explain=attention).
 *
 * Every intermediate from the scores to the head merge must be used only
 * inside the pattern (the head splits may be shared).  Dims are read from
 * shape inference, not from the Reshape shape inputs, so whatever computes
 * those (Shape/Gather/Concat chains, constants) does not matter.
 *
 * requires: shapes inferred.
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "attn_mask.h"
#include "pass_internal.h"

static const int64_t P0213[4] = {0, 2, 1, 3};
static const int64_t P0231[4] = {0, 2, 3, 1};
static const int64_t P0132[4] = {0, 1, 3, 2};

/* Strips Mul-by-constant-scalar nodes from v, multiplying *scale. */
static ValId strip_scale(const Graph *g, ValId v, double *scale, Match *m)
{
	for (;;) {
		double c;
		NodeId n = m_def(g, v, OP_Mul);
		if (n >= 0) {
			const Node *nd = IR_NODE(g, n);
			if (m_const_scalar(g, nd->in[1], &c)) {
				*scale *= c;
				m_add(m, n);
				v = nd->in[0];
				continue;
			}
			if (m_const_scalar(g, nd->in[0], &c)) {
				*scale *= c;
				m_add(m, n);
				v = nd->in[1];
				continue;
			}
			return v;
		}
		n = m_def(g, v, OP_Div);
		if (n >= 0 && m_const_scalar(g, IR_NODE(g, n)->in[1], &c) && c != 0) {
			*scale /= c;
			m_add(m, n);
			v = IR_NODE(g, n)->in[0];
			continue;
		}
		return v;
	}
}

/* Reshape node r splits heads: [B, S, H*D] -> [B, S, H, D] with H, D static. */
static bool head_split(const Graph *g, NodeId r, int64_t *h, int64_t *d)
{
	const Node *n = IR_NODE(g, r);
	const Value *in = IR_VAL(g, n->in[0]), *out = IR_VAL(g, n->out[0]);
	int64_t hd;
	if (in->rank != 3 || out->rank != 4 || in->dtype != DT_F32)
		return false;
	if (in->dims[0] != out->dims[0] || in->dims[1] != out->dims[1])
		return false;
	if (!ir_dim_is_const(g, out->dims[2], h) || !ir_dim_is_const(g, out->dims[3], d) ||
	    !ir_dim_is_const(g, in->dims[2], &hd) || hd != *h * *d || *h <= 0 || *d <= 0)
		return false;
	return true;
}

/* One of Q, K, V: the value the kernel reads, its heads, its layout. */
typedef struct Side {
	ValId x;        /* [B, S, H*D] (layout 0) or [S, B, H*D] (layout 1) */
	bool reshape;   /* x is the 4-D [.., .., H, D] tensor: the rewrite views it as 3-D */
	int64_t h, d;
	int layout;
	int perm;       /* x is heads-first: 1 [B, H, S, D], 2 [B, H, D, S] (K^T); the
	                 * rewrite transposes it to [B, S, H, D] first */
	DimId b, s;     /* batch and sequence length */
	bool repeated;  /* x's h heads are repeated up to Q's: see repeat_kv, tile_heads */
	bool tiled;     /* ... as a whole (head h is x's head h % h), not head by head */
} Side;

/* rep when v [B, H, S, D] = Reshape(Tile(X, [1, 1, rep, 1])) with X [B,
 * Hkv, S, D] and H = Hkv * rep (a repeat_kv written as a Tile along the
 * sequence): Tile's [B, Hkv, rep * S, D] is [B, Hkv, rep, S, D] in flat
 * order, so head h of v is head h / rep of X, as after an Expand.  Reads
 * the repeats from the dims (only axis 2 grows, by H / Hkv); 0 if not. */
static int64_t tile_seq_rep(const Graph *g, const Value *X, const Value *T, const Value *V)
{
	int64_t hkv, h;
	if (X->rank != 4 || T->rank != 4 || V->rank != 4 || T->dims[0] != X->dims[0] ||
	    T->dims[1] != X->dims[1] || T->dims[3] != X->dims[3] || V->dims[0] != X->dims[0] ||
	    V->dims[2] != X->dims[2] || V->dims[3] != X->dims[3] ||
	    !ir_dim_is_const(g, X->dims[1], &hkv) || !ir_dim_is_const(g, V->dims[1], &h) ||
	    hkv <= 0 || h % hkv)
		return 0;
	Graph *mg = (Graph *)g;   /* interning rep * S only */
	return T->dims[2] == ir_dim_mul(mg, X->dims[2], ir_dim_const(mg, h / hkv)) ? h / hkv : 0;
}

/* v [B, H, S, D] = Reshape(R(Unsqueeze(X, 2))) with X [B, Hkv, S, D] and R
 * an Expand or a Tile to [B, Hkv, rep, S, D] (transformers' repeat_kv for
 * grouped-query attention, and the exporters that write it with Tile), or
 * Reshape(Tile(X)) along the sequence (tile_seq_rep): head h of v is head
 * h / rep of X, as the kernel reads kv_num_heads.  Returns X or -1.  A
 * Tile along the heads (head h is head h % Hkv: torch's Tensor.repeat) is
 * not this: see tile_heads. */
static ValId repeat_kv(const Graph *g, ValId v)
{
	NodeId r = m_def(g, v, OP_Reshape);
	ValId rin = r >= 0 ? IR_NODE(g, r)->in[0] : -1;
	NodeId e = r >= 0 ? m_def(g, rin, OP_Expand) : -1;
	if (e < 0 && r >= 0)
		e = m_def(g, rin, OP_Tile);
	if (e >= 0 && IR_NODE(g, e)->op == OP_Tile && IR_VAL(g, rin)->rank == 4)
		return tile_seq_rep(g, IR_VAL(g, IR_NODE(g, e)->in[0]), IR_VAL(g, rin), IR_VAL(g, v))
		               ? IR_NODE(g, e)->in[0] : -1;
	NodeId u = e >= 0 ? m_def(g, IR_NODE(g, e)->in[0], OP_Unsqueeze) : -1;
	if (u < 0)
		return -1;
	ValId x = IR_NODE(g, u)->in[0];
	const Value *X = IR_VAL(g, x), *U = IR_VAL(g, IR_NODE(g, u)->out[0]);
	const Value *E = IR_VAL(g, IR_NODE(g, e)->out[0]), *V = IR_VAL(g, v);
	int64_t hkv, rp, h;
	if (X->rank != 4 || U->rank != 5 || E->rank != 5 || V->rank != 4)
		return -1;
	if (U->dims[0] != X->dims[0] || U->dims[1] != X->dims[1] || !m_dim_is(g, U->dims[2], 1) ||
	    U->dims[3] != X->dims[2] || U->dims[4] != X->dims[3])
		return -1;
	/* E's dims: only the unit axis 2 grew (for a Tile, every other repeat is 1) */
	if (E->dims[0] != X->dims[0] || E->dims[1] != X->dims[1] || E->dims[3] != X->dims[2] ||
	    E->dims[4] != X->dims[3] || !ir_dim_is_const(g, E->dims[2], &rp))
		return -1;
	if (V->dims[0] != X->dims[0] || V->dims[2] != X->dims[2] || V->dims[3] != X->dims[3] ||
	    !ir_dim_is_const(g, X->dims[1], &hkv) || !ir_dim_is_const(g, V->dims[1], &h) ||
	    h != hkv * rp)
		return -1;
	return x;
}

/* v [B, H, S, D] is X [B, Hkv, S, D] tiled along the heads (head h of v
 * is head h % Hkv of X: torch's Tensor.repeat, the kernel's kv_tiled):
 * Tile(X, [1, H / Hkv, 1, 1]); Reshape(Expand or Tile(Unsqueeze(X, 1)) to
 * [B, H / Hkv, Hkv, S, D]); Concat(X, X, ..., axis 1).  Read from the dims
 * (only the heads axis grows, to a static multiple); -1 if not. */
static ValId tile_heads(const Graph *g, ValId v)
{
	const Value *V = IR_VAL(g, v);
	int64_t h, hkv;
	if (V->rank != 4 || !ir_dim_is_const(g, V->dims[1], &h))
		return -1;
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0)
		return -1;
	const Node *nd = IR_NODE(g, n);
	ValId x = -1;
	if (nd->op == OP_Tile) {
		x = nd->in[0];
	} else if (nd->op == OP_Concat) {
		int64_t axis = ir_attr_int(g, n, "axis", 0);
		if (axis != 1 && axis != -3)
			return -1;
		for (int i = 1; i < nd->nin; i++)
			if (nd->in[i] != nd->in[0])
				return -1;
		x = nd->in[0];
	} else if (nd->op == OP_Reshape) {
		/* [B, r, Hkv, S, D] -> [B, r*Hkv, S, D] of Unsqueeze(X, 1) grown on axis 1 */
		ValId e = nd->in[0];
		NodeId en = m_def(g, e, OP_Expand);
		if (en < 0)
			en = m_def(g, e, OP_Tile);
		NodeId u = en >= 0 ? m_def(g, IR_NODE(g, en)->in[0], OP_Unsqueeze) : -1;
		if (u < 0)
			return -1;
		x = IR_NODE(g, u)->in[0];
		const Value *X = IR_VAL(g, x), *U = IR_VAL(g, IR_NODE(g, u)->out[0]), *E = IR_VAL(g, e);
		int64_t r;
		if (X->rank != 4 || U->rank != 5 || E->rank != 5 || !m_dim_is(g, U->dims[1], 1) ||
		    U->dims[0] != X->dims[0] || U->dims[2] != X->dims[1] || U->dims[3] != X->dims[2] ||
		    U->dims[4] != X->dims[3] || E->dims[0] != X->dims[0] || E->dims[2] != X->dims[1] ||
		    E->dims[3] != X->dims[2] || E->dims[4] != X->dims[3] ||
		    !ir_dim_is_const(g, E->dims[1], &r) || !ir_dim_is_const(g, X->dims[1], &hkv) ||
		    r * hkv != h)
			return -1;
	} else {
		return -1;
	}
	const Value *X = IR_VAL(g, x);
	if (X->rank != 4 || X->dims[0] != V->dims[0] || X->dims[2] != V->dims[2] ||
	    X->dims[3] != V->dims[3] || !ir_dim_is_const(g, X->dims[1], &hkv) || hkv <= 0 ||
	    h <= hkv || h % hkv)
		return -1;
	return x;
}

static const int64_t P0312[4] = {0, 3, 1, 2};

/* v is already heads-first, [B, H, S, D] (or [B, H, D, S] when kt: a
 * pre-transposed K), as decoders with a KV cache (Concat(past, new) along
 * S) and SDPA-style exports hand it to Q K^T: any f32 rank-4 tensor with
 * static H and D is that, whatever computed it. */
static bool heads_first(const Graph *g, ValId v, bool kt, Side *sd, const char *what, NodeId at,
                        Match *m)
{
	ValId xr = kt ? -1 : repeat_kv(g, v);
	bool tiled = false;
	if (xr < 0 && !kt && (xr = tile_heads(g, v)) >= 0)
		tiled = true;
	if (xr >= 0) {
		if (!heads_first(g, xr, false, sd, what, at, m))
			return false;
		/* repeats of repeats compose (h / r1 / r2, h % (r2 Hkv) % Hkv), mixed ones not */
		if (sd->repeated && sd->tiled != tiled)
			return m_fail(g, m, m_def(g, v, OP_COUNT) >= 0 ? m_def(g, v, OP_COUNT) : at,
			              "%s path: '%s' repeats the heads both head by head and as a whole",
			              what, IR_VAL(g, v)->name);
		sd->repeated = true;
		sd->tiled = tiled;
		return true;
	}
	const Value *V = IR_VAL(g, v);
	NodeId src = m_def(g, v, OP_COUNT) >= 0 ? m_def(g, v, OP_COUNT) : at;
	if (V->rank != 4 || V->dtype != DT_F32)
		return m_fail(g, m, src, "%s path: '%s' is neither a Transpose of split heads nor f32 "
		              "[B, H, S, D] (%s of rank %d)", what, V->name, ir_dtype_name(V->dtype),
		              V->rank);
	bool hs = ir_dim_is_const(g, V->dims[1], &sd->h);
	bool ds = ir_dim_is_const(g, V->dims[kt ? 2 : 3], &sd->d);
	if (!hs || !ds) {
		/* KlnAttention splits Q, K, V into heads at num_heads, head_size:
		 * compile-time numbers.  Symbolic ones (every dim a graph input's
		 * own symbol, nothing that fixes them: no head-split Reshape, no
		 * weight) cannot be those. */
		char hb[64], db[64], what_sym[200];
		ir_dim_str(g, V->dims[1], hb, sizeof hb);
		ir_dim_str(g, V->dims[kt ? 2 : 3], db, sizeof db);
		if (!hs && !ds)
			snprintf(what_sym, sizeof what_sym, "heads '%s' and head size '%s' are", hb, db);
		else if (!hs)
			snprintf(what_sym, sizeof what_sym, "heads '%s' are", hb);
		else
			snprintf(what_sym, sizeof what_sym, "head size '%s' is", db);
		return m_fail(g, m, src, "%s path: '%s' [B, H, %s]: %s symbolic, fixed by no head split "
		              "or weight (needed at compile time)", what, V->name, kt ? "D, S" : "S, D",
		              what_sym);
	}
	if (sd->h <= 0 || sd->d <= 0)
		return m_fail(g, m, src, "%s path: '%s' is heads-first [B, H, %s] with %lld heads of "
		              "%lld", what, V->name, kt ? "D, S" : "S, D", (long long)sd->h,
		              (long long)sd->d);
	sd->x = v;
	sd->reshape = true;
	sd->layout = 0;
	sd->perm = kt ? 2 : 1;
	sd->b = V->dims[0];
	sd->s = V->dims[kt ? 3 : 2];
	return true;
}

/* v = Transpose(T, perm) with T [B, S, H, D] (perm b) or [S, B, H, D]
 * (perm t, XLNet's time-major layout).  The split nodes are not part of
 * the match: they are pure layout, may be shared with another attention
 * (LXMERT's cross layers reuse one module both ways), and die by DCE when
 * nothing else reads them. */
static bool split_path(const Graph *g, ValId v, const int64_t *pb, const int64_t *pt, Side *sd,
                       const char *what, bool kt, NodeId at, Match *m)
{
	NodeId t = m_def(g, v, OP_Transpose);
	memset(sd, 0, sizeof *sd);
	if (t < 0)
		return heads_first(g, v, kt, sd, what, at, m);
	int layout = m_perm_is(g, t, pb, 4) ? 0 : pt && m_perm_is(g, t, pt, 4) ? 1 : -1;
	if (layout < 0)
		return m_fail(g, m, t, "%s path: the Transpose's perm is not [%d,%d,%d,%d]%s", what,
		              (int)pb[0], (int)pb[1], (int)pb[2], (int)pb[3],
		              pt ? " (or its time-major form)" : "");
	ValId tv = IR_NODE(g, t)->in[0];
	const Value *T = IR_VAL(g, tv);
	NodeId r = m_def(g, tv, OP_Reshape);
	if (layout == 0 && r >= 0 && head_split(g, r, &sd->h, &sd->d)) {
		ValId x = IR_NODE(g, r)->in[0];
		*sd = (Side){x, false, sd->h, sd->d, 0, 0, IR_VAL(g, x)->dims[0], IR_VAL(g, x)->dims[1], false, false};
		return true;
	}
	NodeId src = r >= 0 ? r : t;
	if (T->rank != 4 || T->dtype != DT_F32)
		return m_fail(g, m, src, "%s path: %s '%s' is not a head split: %s of rank %d, not f32 "
		              "[B, S, H, D]", what, r >= 0 ? "Reshape" : "value", T->name,
		              ir_dtype_name(T->dtype), T->rank);
	if (!ir_dim_is_const(g, T->dims[2], &sd->h) || !ir_dim_is_const(g, T->dims[3], &sd->d) ||
	    sd->h <= 0 || sd->d <= 0)
		return m_fail(g, m, src, "%s path: %s '%s' is not a head split: the heads or head size "
		              "(dims 2, 3) are not static", what, r >= 0 ? "Reshape" : "value", T->name);
	sd->layout = layout;
	sd->x = tv;
	sd->reshape = true;
	sd->b = T->dims[layout];
	sd->s = T->dims[1 - layout];
	if (r >= 0) {
		/* T = Reshape(X) with X already [.., .., H*D] */
		const Value *X = IR_VAL(g, IR_NODE(g, r)->in[0]);
		if (X->rank == 3 && X->dims[0] == T->dims[0] && X->dims[1] == T->dims[1] &&
		    m_dim_is(g, X->dims[2], sd->h * sd->d)) {
			sd->x = IR_NODE(g, r)->in[0];
			sd->reshape = false;
		}
	}
	return true;
}

static const int64_t P1203[4] = {1, 2, 0, 3};
static const int64_t P1230[4] = {1, 2, 3, 0};
static const int64_t P2013[4] = {2, 0, 1, 3};

/* Forgets the reason of a failed alternative before the next one. */
static void why_clear(Match *m)
{
	m->why[0] = 0;
	m->why_node = -1;
}

static bool fold_side(const Graph *g, ValId v, bool kt, double *scale, Side *sd,
                      const char *what, NodeId at, Match *m);

/* v [B, H, D, S] = Reshape(u) with u a 3-D K^T view [B*H, D, S] whose
 * heads fold_side finds (SDPA exports transpose K over a 3-D [B*H, S, D]
 * view and unfold it again): K^T of those heads when v unfolds them in
 * their order.  0 when v is not that (the reason is forgotten: K^T is then
 * read as any heads-first [B, H, D, S]). */
static bool kt_unfold(const Graph *g, ValId v, double *scale, Side *sd, const char *what,
                      NodeId at, Match *m)
{
	NodeId r = m_def(g, v, OP_Reshape);
	ValId u = r >= 0 ? IR_NODE(g, r)->in[0] : -1;
	const Value *V = IR_VAL(g, v);
	int nn = m->nnodes;
	double sc = *scale;
	if (u < 0 || IR_VAL(g, u)->rank != 3 || V->rank != 4)
		return false;
	if (fold_side(g, u, true, &sc, sd, what, at, m) && V->dims[0] == sd->b &&
	    m_dim_is(g, V->dims[1], sd->h) && m_dim_is(g, V->dims[2], sd->d) && V->dims[3] == sd->s) {
		if (m->nnodes > nn)
			m_add(m, r);   /* it reads nodes the match absorbs (a scale inside the views) */
		*scale = sc;
		return true;
	}
	m->nnodes = nn;   /* the scales it stripped on the way */
	why_clear(m);
	return false;
}

/* K transposed for QK^T, in its spellings (`what` names the side: Q when
 * the scores are computed transposed, see match_scores); constant factors
 * inside a 3-D view multiply *scale. */
static bool key_path(const Graph *g, ValId v, double *scale, Side *sd, const char *what,
                     NodeId at, Match *m)
{
	if (kt_unfold(g, v, scale, sd, what, at, m))
		return true;
	NodeId t = m_def(g, v, OP_Transpose);
	if (t >= 0 && m_perm_is(g, t, P0132, 4))
		return split_path(g, IR_NODE(g, t)->in[0], P0213, P1203, sd, what, false, at, m);
	return split_path(g, v, P0231, P1230, sd, what, true, at, m);
}

/* Batch and sequence dims of a side's tensor. */
static DimId side_b(const Graph *g, const Side *s)
{
	(void)g;
	return s->b;
}

static DimId side_s(const Graph *g, const Side *s)
{
	(void)g;
	return s->s;
}

/* Can value b (rank <= 4) broadcast to the scores' dims s[4]?  Dims that
 * are not provably equal or 1 (symbolic expressions) are accepted: the
 * Add it replaces required equal-or-1 at run time, and so does the
 * kernel (it checks and reports). */
static bool bcast_fits(const Graph *g, ValId b, const DimId *s)
{
	const Value *v = IR_VAL(g, b);
	if (v->rank < 0 || v->rank > 4)
		return false;
	for (int k = 0; k < v->rank; k++) {
		DimId bd = v->dims[k], sd = s[4 - v->rank + k];
		int64_t cb, cs;
		if (bd == sd || m_dim_is(g, bd, 1))
			continue;
		if (ir_dim_is_const(g, bd, &cb) && ir_dim_is_const(g, sd, &cs))
			return false;
	}
	return true;
}

static bool bias_fits(const Graph *g, ValId b, const DimId *s)
{
	return IR_VAL(g, b)->dtype == DT_F32 && bcast_fits(g, b, s);
}

/* The legacy exporters' padding mask: bias = (1 - Cast<f32>(U(mask))) * c
 * where U only inserts the unit dims of [B, 1, 1, Sk] into mask [B, Sk]
 * (Unsqueeze/Reshape keep the element order).  The kernel then reads the
 * key-padding mask itself: scores + (1 - mask[b, k]) * c, bit for bit the
 * same numbers. */
static bool key_padding(const Graph *g, ValId bias, const DimId *kd, ValId *mask, double *filter)
{
	const Value *bv = IR_VAL(g, bias);
	if (bv->rank != 4 || bv->dims[0] != kd[0] || !m_dim_is(g, bv->dims[1], 1) ||
	    !m_dim_is(g, bv->dims[2], 1) || bv->dims[3] != kd[1])
		return false;
	NodeId mul = m_def(g, bias, OP_Mul);
	if (mul < 0)
		return false;
	const Node *mn = IR_NODE(g, mul);
	int ci = m_const_scalar(g, mn->in[1], filter) ? 1 : m_const_scalar(g, mn->in[0], filter) ? 0 : -1;
	if (ci < 0)
		return false;
	if (!isfinite(*filter))
		return false;   /* 0 * inf is NaN in the graph, 0 in the kernel */
	NodeId sub = m_def(g, mn->in[1 - ci], OP_Sub);
	double one;
	if (sub < 0 || !m_const_scalar(g, IR_NODE(g, sub)->in[0], &one) || one != 1.0)
		return false;
	ValId z = IR_NODE(g, sub)->in[1];
	NodeId cast = m_def(g, z, OP_Cast);
	if (cast >= 0) {
		if (ir_attr_int(g, cast, "to", 0) != DT_F32)
			return false;
		z = IR_NODE(g, cast)->in[0];
	}
	for (NodeId u; (u = m_def(g, z, OP_Unsqueeze)) >= 0 || (u = m_def(g, z, OP_Reshape)) >= 0;)
		z = IR_NODE(g, u)->in[0];
	const Value *zv = IR_VAL(g, z);
	DType t = zv->dtype;
	if (zv->rank != 2 || zv->dims[0] != kd[0] || zv->dims[1] != kd[1])
		return false;
	if (t != DT_F32 && t != DT_BOOL && !ir_dtype_is_int(t))
		return false;
	if (cast < 0 && t != DT_F32)
		return false;
	*mask = z;
	return true;
}

/* ---- transformers' masking utilities -------------------------------------
 * bias = Where(E, 0, c) with E[b, 0, q, k] = pad[b, k] && (terms that are
 * always true), where pad[b, k] = Flatten(Mb)[b*S + k] is gathered with an
 * index built from Ranges: the opset-14/17 exports of BERT-family models
 * (sdpa_mask with a padding function).  Every step is checked, so the
 * bias equals (1 - Mb[b, k]) * c exactly and Mb becomes the key-padding
 * mask. */

/* v = Unsqueeze*(Range(0, n, 1)) of rank 4 whose only non-unit dim is
 * `axis` (so v at index i along it is i). */
static bool iota_along(const Graph *g, ValId v, int axis)
{
	const Value *vv = IR_VAL(g, v);
	if (vv->rank != 4)
		return false;
	for (int k = 0; k < 4; k++)
		if (k != axis && !m_dim_is(g, vv->dims[k], 1))
			return false;
	NodeId u;
	while ((u = m_def(g, v, OP_Unsqueeze)) >= 0)
		v = IR_NODE(g, u)->in[0];
	NodeId r = m_def(g, v, OP_Range);
	double start, delta;
	if (r < 0 || !m_const_scalar(g, IR_NODE(g, r)->in[0], &start) || start != 0 ||
	    !m_const_scalar(g, IR_NODE(g, r)->in[2], &delta) || delta != 1)
		return false;
	return IR_VAL(g, v)->rank == 1 && IR_VAL(g, v)->dims[0] == vv->dims[axis];
}

/* v is true everywhere: constants, ConstantOfShape(true), Range >= c <= 0,
 * and Ands and bool Casts of those. */
static bool always_true(const Graph *g, ValId v, int depth)
{
	double x;
	if (depth > 8)
		return false;
	if (m_const_scalar(g, v, &x))
		return x != 0;
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0)
		return false;
	const Node *nd = IR_NODE(g, n);
	switch (nd->op) {
	case OP_Cast:
		return ir_attr_int(g, n, "to", 0) == DT_BOOL && always_true(g, nd->in[0], depth + 1);
	case OP_And:
		return always_true(g, nd->in[0], depth + 1) && always_true(g, nd->in[1], depth + 1);
	case OP_ConstantOfShape: {
		const Attr *a = ir_attr_get(g, n, "value");
		return a && a->kind == A_TENSOR && a->u.t->dtype == DT_BOOL && a->u.t->nbytes >= 1 &&
		       ((const char *)a->u.t->data)[0] != 0;
	}
	case OP_GreaterOrEqual: {
		const Value *r = IR_VAL(g, nd->in[0]);
		if (!m_const_scalar(g, nd->in[1], &x) || x > 0 || r->rank != 4)
			return false;
		for (int axis = 0; axis < 4; axis++)
			if (iota_along(g, nd->in[0], axis))
				return true;
		return false;
	}
	default:
		return false;
	}
}

/* v [B, 1, 1, S] holds its index along `axis` (0 or 3) everywhere:
 * Expand(iota along axis) without broadcasting that axis, or the iota. */
static bool iota_bcast(const Graph *g, ValId v, int axis)
{
	const Value *vv = IR_VAL(g, v);
	NodeId e = m_def(g, v, OP_Expand);
	if (e >= 0) {
		ValId y = IR_NODE(g, e)->in[0];
		const Value *yv = IR_VAL(g, y);
		if (vv->rank == 4 && yv->rank == 4 && yv->dims[axis] == vv->dims[axis] &&
		    iota_along(g, y, axis))
			return true;
	}
	return iota_along(g, v, axis);
}

/* c = v with a unit dim appended (Unsqueeze(v, -1) or a Reshape that only
 * does that: same flat order, same leading dims). */
static bool unit_last(const Graph *g, ValId c, ValId *v)
{
	NodeId n = m_def(g, c, OP_Unsqueeze);
	if (n < 0)
		n = m_def(g, c, OP_Reshape);
	if (n < 0)
		return false;
	ValId x = IR_NODE(g, n)->in[0];
	const Value *cv = IR_VAL(g, c), *xv = IR_VAL(g, x);
	if (cv->rank != xv->rank + 1 || !m_dim_is(g, cv->dims[cv->rank - 1], 1))
		return false;
	for (int k = 0; k < xv->rank; k++)
		if (cv->dims[k] != xv->dims[k])
			return false;
	*v = x;
	return true;
}

/* The dynamo exporter's padding term: p [B, 1, 1, Sk] = GatherND(Mb,
 * Concat(Unsqueeze(Expand(b_iota)), Unsqueeze(Expand(k_iota)), axis -1)),
 * batch_dims 0, so p[b, 0, 0, k] = Mb[b, k].  Mb is bool [B', Sk]; its
 * batch may be a symbol of its own (s43 against s18): GatherND needs
 * B' >= B and reads the first B rows, the kernel needs B' == B and says
 * so at run time, so they compute the same wherever B' == B. */
static bool gathernd_term(const Graph *g, NodeId ga, ValId p, const DimId *kd, ValId *mask)
{
	const Node *gn = IR_NODE(g, ga);
	const Value *pv = IR_VAL(g, p);
	if (ir_attr_int(g, ga, "batch_dims", 0) != 0)
		return false;
	ValId mb = gn->in[0], idx = gn->in[1];
	const Value *mv = IR_VAL(g, mb), *iv = IR_VAL(g, idx), *ov = IR_VAL(g, gn->out[0]);
	if (mv->rank != 2 || mv->dtype != DT_BOOL || mv->dims[1] != kd[1])
		return false;
	int64_t rb, kb;
	if (mv->dims[0] != kd[0] && ir_dim_is_const(g, mv->dims[0], &rb) &&
	    ir_dim_is_const(g, kd[0], &kb))
		return false;   /* statically different batches: leave GatherND to decide */
	if (ov->rank != 4 || iv->rank != 5 || !m_dim_is(g, iv->dims[4], 2))
		return false;
	for (int d = 0; d < 4; d++)
		if (ov->dims[d] != pv->dims[d] || iv->dims[d] != pv->dims[d])
			return false;
	NodeId cat = m_def(g, idx, OP_Concat);
	int64_t axis = cat >= 0 ? ir_attr_int(g, cat, "axis", 0) : 0;
	if (cat < 0 || IR_NODE(g, cat)->nin != 2 || (axis != -1 && axis != 4))
		return false;
	ValId bi, ki;
	if (!unit_last(g, IR_NODE(g, cat)->in[0], &bi) || !unit_last(g, IR_NODE(g, cat)->in[1], &ki))
		return false;
	if (!iota_bcast(g, bi, 0) || !iota_bcast(g, ki, 3))
		return false;
	*mask = mb;
	return true;
}

/* p[b, 0, 0, k] = Mb[b, k]: Reshape*(Gather(Flatten(Mb), kv + b * S)), or
 * the GatherND form above. */
static bool padding_term(const Graph *g, ValId p, const DimId *kd, ValId *mask)
{
	const Value *pv = IR_VAL(g, p);
	NodeId n;
	if ((n = m_def(g, p, OP_Cast)) >= 0) {
		if (ir_attr_int(g, n, "to", 0) != DT_BOOL)
			return false;
		p = IR_NODE(g, n)->in[0];
	}
	if (pv->rank != 4 || pv->dims[0] != kd[0] || !m_dim_is(g, pv->dims[1], 1) ||
	    !m_dim_is(g, pv->dims[2], 1) || pv->dims[3] != kd[1])
		return false;
	if ((n = m_def(g, p, OP_GatherND)) >= 0)
		return gathernd_term(g, n, p, kd, mask);
	while ((n = m_def(g, p, OP_Reshape)) >= 0)
		p = IR_NODE(g, n)->in[0];   /* reshapes keep the flat order */
	NodeId ga = m_def(g, p, OP_Gather);
	if (ga < 0 || ir_attr_int(g, ga, "axis", 0) != 0)
		return false;
	ValId f = IR_NODE(g, ga)->in[0], idx = IR_NODE(g, ga)->in[1];
	NodeId fl = m_def(g, f, OP_Flatten);
	const Value *fv = IR_VAL(g, f), *iv = IR_VAL(g, idx);
	if (fl < 0 || fv->rank != 2 || !m_dim_is(g, fv->dims[1], 1))
		return false;
	ValId mb = IR_NODE(g, fl)->in[0];
	const Value *mv = IR_VAL(g, mb);
	if (mv->rank != 2 || mv->dtype != DT_BOOL || mv->dims[0] != kd[0] ||
	    mv->dims[1] != kd[1])
		return false;
	/* idx [B, 1, 1, S] = kv_iota + b_iota * S */
	if (iv->rank != 4 || iv->dims[0] != kd[0] || !m_dim_is(g, iv->dims[1], 1) ||
	    !m_dim_is(g, iv->dims[2], 1) || iv->dims[3] != kd[1])
		return false;
	NodeId add = m_def(g, idx, OP_Add);
	if (add < 0)
		return false;
	for (int t = 0; t < 2; t++) {
		ValId kk = IR_NODE(g, add)->in[t], bs = IR_NODE(g, add)->in[1 - t];
		NodeId mul = m_def(g, bs, OP_Mul);
		if (!iota_along(g, kk, 3) || mul < 0)
			continue;
		for (int u = 0; u < 2; u++) {
			ValId bi = IR_NODE(g, mul)->in[u], sv = IR_NODE(g, mul)->in[1 - u];
			const Value *svv = IR_VAL(g, sv);
			if (!iota_along(g, bi, 0) || !svv->sval || svv->nsval != 1 ||
			    svv->sval[0] != mv->dims[1])
				continue;
			*mask = mb;
			return true;
		}
	}
	return false;
}

static bool masking_utils(const Graph *g, ValId bias, const DimId *kd, ValId *mask, double *filter)
{
	NodeId w = m_def(g, bias, OP_Where);
	double zero;
	if (w < 0 || !m_const_scalar(g, IR_NODE(g, w)->in[1], &zero) || zero != 0 ||
	    !m_const_scalar(g, IR_NODE(g, w)->in[2], filter) || isnan(*filter))
		return false;
	ValId e = IR_NODE(g, w)->in[0];
	NodeId n;
	for (;;) {
		if ((n = m_def(g, e, OP_Expand)) >= 0 && m_same_shape(g, e, IR_NODE(g, n)->in[0]))
			e = IR_NODE(g, n)->in[0];
		else if ((n = m_def(g, e, OP_Cast)) >= 0 && ir_attr_int(g, n, "to", 0) == DT_BOOL &&
		         IR_VAL(g, IR_NODE(g, n)->in[0])->dtype == DT_BOOL)
			e = IR_NODE(g, n)->in[0];
		else
			break;
	}
	NodeId a = m_def(g, e, OP_And);
	if (a < 0)
		return false;
	for (int t = 0; t < 2; t++)
		if (always_true(g, IR_NODE(g, a)->in[t], 0) &&
		    padding_term(g, IR_NODE(g, a)->in[1 - t], kd, mask))
			return true;
	return false;
}

/* The scores plus the bias terms have the scores' shape, except where a
 * symbolic bias dim makes it max(...) (the exporter gave the mask its own
 * batch symbol): a run where that dim is neither 1 nor the scores' is an
 * error in the kernel, every other run computes the same.  (A causal
 * Where's condition is passed as a term too: see where_keeps_scores.) */
static bool bias_keeps_shape(const Graph *g, ValId sum, ValId scores, const ValId *terms, int nt)
{
	const Value *a = IR_VAL(g, sum), *s = IR_VAL(g, scores);
	if (a->rank != 4 || s->rank != 4)
		return false;
	for (int k = 0; k < 4; k++) {
		if (a->dims[k] == s->dims[k])
			continue;
		bool sym = false;
		for (int t = 0; t < nt; t++) {
			const Value *b = IR_VAL(g, terms[t]);
			int kb = k - (4 - b->rank);
			sym |= kb >= 0 && !ir_dim_is_const(g, b->dims[kb], NULL);
		}
		if (!sym)
			return false;
	}
	return true;
}

#define M_MAXTERMS 4

/* The attention pattern's match (the rewrite reads it all). */
typedef struct AttnMatch {
	Match m;
	ValId q, k, v;         /* Q, K, V as the kernel reads them (see view3d, perm) */
	bool view3d[3];        /* Q, K, V need a new Reshape to [.., .., heads*size] */
	int perm[3];           /* Q, K, V heads-first (Side.perm): transposed first */
	ValId out;             /* the value the fused op replaces */
	bool out4d;            /* out is the time-major [Sq, B, H, Dv]: reshaped back */
	ValId scores;          /* the raw Q K^T MatMul's result (for the bias checks) */
	bool swapped;          /* the scores are Transpose(MatMul(Kh, Q^T)) (key-major) */
	DimId kb, ks;          /* K's batch and key length, for V's check */
	int nterms;            /* additive bias terms on the scores: */
	ValId term[M_MAXTERMS];    /* each term, */
	double coef[M_MAXTERMS];   /* added with this coefficient */
	ValId bias;            /* the bias input: the one term of coefficient 1, or -1 */
	ValId mask;            /* the key-padding mask input, or -1 */
	double mask_filter;    /* what a padded key adds to its score */
	double scale;          /* the product of every constant scale on Q K^T */
	int causal;            /* 0 none, 1 an additive causal term, 2 a causal Where */
	double causal_fill;    /* what the causal mask puts past the diagonal */
	ValId causal_cond;     /* causal 2: the Where's condition (see where_keeps_scores) */
	ValId wcond;           /* a Where mask (where_mask) added as the bias Where(wcond, wfill, 0), or -1 */
	double wfill;
	bool wcond_keep;       /* wcond true keeps the score (Where(c, X, F)), else masks it */
	bool wcond_bk;         /* wcond is a [B, Sk] padding source: read as [B, 1, 1, Sk] */
	ValId wpad;            /* a Where's key-padding condition [B, 1, 1, Sk] (where_mask), or -1 */
	bool wpad_keep;        /* wpad true keeps the key (Where(c, X, F)), else masks it */
	ValId wpad4;           /* wpad's [B, 1, 1, Sk] condition (wpad may be its [B, Sk] source) */
	bool wown;             /* its batch is a symbol of its own (own_batch) */
	double wpad_fill;      /* what a masked key's score becomes */
	bool wreplace;         /* wpad's fill is finite: the kernel replaces (mask_replace), last */
	int rep_nt;            /* wreplace: bias terms below its Where (more: one was added above) */
	int rep_causal;        /* wreplace: the causal mode below it */
	ValId rep_wcond;       /* wreplace: the bias Where below it */
	ValId tm_mask;         /* the bool mask of a time-major masked_fill, or -1 */
	double tm_fill;        /* its fill */
	int64_t heads;         /* Q's heads (num_heads) */
	int64_t kv_heads;      /* K's and V's heads (kv_num_heads when fewer) */
	bool kv_tiled;         /* Q head h reads K/V head h % kv_heads (else h / (heads / kv_heads)) */
	int64_t head_size;     /* Q's and K's head size */
	int64_t v_head_size;   /* V's head size */
	bool nan_guard;        /* the probabilities pass Where(IsNaN(p), 0, p) */
	NodeId mwhere;         /* the last mask Where matched (where_mask, causal_where), or -1 */
	NodeId pwhere;         /* the probabilities pass Where(c, 0, p) (zero_probs), or -1 */
	int layout;            /* 0 batch-major [B, S, ..], 1 time-major [S, B, ..] */
} AttnMatch;

/* The query and key lengths of scores s (rank 4, [.., Sq, Sk]). */
static bool self_scores(const Graph *g, ValId s, DimId *sq, DimId *sk)
{
	const Value *v = IR_VAL(g, s);
	if (v->rank != 4)
		return false;
	*sq = v->dims[2];
	*sk = v->dims[3];
	return true;
}

/* term, added with coefficient coef to the scores at s, is an additive
 * causal bias: 0 up to the diagonal, one number past it.  Records causal
 * mode 1 with causal_fill coef * that number. */
static bool causal_term(const Graph *g, ValId s, ValId term, double coef, AttnMatch *am)
{
	DimId sq, sk;
	QkStep st;
	if (am->causal != 0 || !self_scores(g, s, &sq, &sk) || !bias_fits(g, term, IR_VAL(g, s)->dims) ||
	    !attn_qk_step(g, term, sq, sk, &st, NULL))
		return false;
	double fill = coef == 1.0 ? st.hi : (double)((float)st.hi * (float)coef);
	if (!attn_qk_causal_edge(g, &st, sq, sk) || st.lo != 0 || isnan(fill))
		return false;
	am->causal = 1;
	am->causal_fill = fill;
	return true;
}

/* A bias term that is an Add of an additive causal bias and another
 * term (the decoders' combined causal + padding mask): the causal part
 * becomes the flag, the other the term.  The Add is not matched (the
 * combined mask may be shared by every layer); -1 if not that form. */
static ValId split_causal(const Graph *g, ValId s, ValId term, double coef, AttnMatch *am)
{
	NodeId a = m_def(g, term, OP_Add);
	if (a < 0 || am->causal != 0)
		return -1;
	for (int k = 0; k < 2; k++) {
		ValId other = IR_NODE(g, a)->in[1 - k];
		if (bias_fits(g, other, IR_VAL(g, s)->dims) &&
		    causal_term(g, s, IR_NODE(g, a)->in[k], coef, am))
			return other;
	}
	return -1;
}

static NodeId scores_walk(const Graph *g, ValId x, double coef, AttnMatch *am, int depth);

/* Could scores_walk reach a MatMul from x (through the ops it walks, at
 * most depth of them)?  When not (a padding bias), the other operand's
 * reason is the one --explain shows.  *budget bounds the nodes visited;
 * out of budget the answer is yes. */
static bool may_reach_matmul(const Graph *g, ValId x, int depth, int *budget)
{
	NodeId n = m_def(g, x, OP_COUNT);
	if (n < 0 || depth < 0)
		return false;
	if (--*budget < 0)
		return true;
	const Node *nd = IR_NODE(g, n);
	switch (nd->op) {
	case OP_MatMul:
		return true;
	case OP_Transpose:
	case OP_Mul:
	case OP_Div:
	case OP_Add:
	case OP_Sub:
	case OP_Where:
		for (int k = 0; k < nd->nin; k++)
			if (nd->in[k] >= 0 && may_reach_matmul(g, nd->in[k], depth - 1, budget))
				return true;
		return false;
	default:
		return false;
	}
}

/* The Where's result has the scores' dims, except where shape inference
 * could only write max(score dim, condition dim) for a query or key axis
 * of a condition attn_qk_step proved [.., Sq, Sk] wherever the graph runs
 * (a sliced causal buffer's lengths are clamped expressions). */
static bool where_keeps_scores(const Graph *g, NodeId n, int xi)
{
	const Node *nd = IR_NODE(g, n);
	const Value *o = IR_VAL(g, nd->out[0]), *c = IR_VAL(g, nd->in[0]), *sv = IR_VAL(g, nd->in[xi]);
	Graph *mg = (Graph *)g;   /* interning max(...) only */
	if (sv->rank != 4 || o->rank != 4 || c->rank > 4)
		return false;
	for (int a = 0; a < 4; a++) {
		int ca = a - (4 - c->rank);
		DimId sd = sv->dims[a], cd = ca >= 0 ? c->dims[ca] : -1;
		if (o->dims[a] != sd && !(a >= 2 && cd >= 0 && (o->dims[a] == ir_dim_max(mg, sd, cd) ||
		                                                 o->dims[a] == ir_dim_max(mg, cd, sd))))
			return false;
	}
	return true;
}

/* Where(causal, X, fill) or Where(not causal, fill, X) around scores X
 * that carry no bias terms yet (the kernel sets the scaled score to the
 * fill, then adds bias and mask): causal mode 2, causal_fill coef * fill. */
static NodeId causal_where(const Graph *g, NodeId n, double coef, AttnMatch *am, int depth)
{
	Match *m = &am->m;
	const Node *nd = IR_NODE(g, n);
	DimId sq, sk;
	QkStep st;
	double fill;
	const char *why = NULL;
	if (am->causal != 0)
		return m_fail(g, m, n, "a second causal mask"), -1;
	if (!self_scores(g, nd->out[0], &sq, &sk))
		return m_fail(g, m, n, "Where around the scores: not of rank 4"), -1;
	int xi = attn_filled(g, nd->in[2], &fill) ? 1 : attn_filled(g, nd->in[1], &fill) ? 2 : 0;
	if (!xi)
		return m_fail(g, m, n, "Where around the scores: neither branch is a constant fill"), -1;
	bool same = m_same_shape(g, nd->out[0], nd->in[xi]);
	if (!same && !self_scores(g, nd->in[xi], &sq, &sk))
		return m_fail(g, m, n, "Where around the scores: the condition broadcasts the scores"), -1;
	if (!attn_qk_step(g, nd->in[0], sq, sk, &st, &why))
		return m_fail(g, m, n, "Where around the scores: the condition is not a causal mask: %s",
		              why ? why : "?"), -1;
	if (!same && !where_keeps_scores(g, n, xi))
		return m_fail(g, m, n, "Where around the scores: the condition broadcasts the scores"), -1;
	/* the scores are kept exactly where k - q <= Sk - Sq */
	if (!attn_qk_causal_edge(g, &st, sq, sk) || st.lo != (xi == 1) || st.hi != (xi != 1))
		return m_fail(g, m, n, "Where around the scores: the condition keeps k - q <= %lld%s%s, "
		              "not the causal k <= q + (key length - query length)", (long long)st.t,
		              st.ts >= 0 ? " + a length" : "", st.lo == (xi == 1) ? "" : " negated"), -1;
	int nt = am->nterms;
	ValId wc = am->wcond, wp = am->wpad;
	m_add(m, n);
	NodeId r = scores_walk(g, nd->in[xi], coef, am, depth + 1);
	if (r < 0)
		return -1;
	if (am->nterms != nt)
		return m_fail(g, m, n, "Where around the scores: a bias is added before the causal "
		              "Where"), -1;
	double cf = coef == 1.0 ? fill : (double)((float)fill * (float)coef);
	/* the kernel would add it past the edge too; a replacing one of the
	 * same fill sets what the causal Where sets */
	if (am->wcond != wc || (am->wpad != wp && !(am->wreplace && (float)am->wpad_fill == (float)cf)))
		return m_fail(g, m, n, "Where around the scores: a mask Where below the causal "
		              "Where%s", am->wreplace && am->wpad != wp ? " of another fill" : ""), -1;
	am->causal = 2;
	am->causal_fill = cf;
	am->causal_cond = nd->in[0];
	am->mwhere = n;
	return r;
}

/* ---- Where masks that are not causal ------------------------------------
 * Where(c, F, X) or Where(c, X, F) around scores X, F one number, c not a
 * causal mask (attn_qk_step fails on it).  Each case keeps the graph's
 * numbers:
 *   - c a constant that keeps every score: the Where is X;
 *   - c [B, 1, 1, Sk] behind Expands (a padding mask, e.g. DistilBERT's
 *     Expand(Reshape(Equal(mask, 0)))): the kernel's key-padding mask
 *     (wpad; the rewrite makes it a bool [B, Sk]) with mask_filter coef*F;
 *   - any other c broadcasting to the scores: the additive bias
 *     Where(c, coef*F, 0) (wcond).
 * The kernel adds coef*F to a masked score where the graph replaces it,
 * except for a padding condition whose fill does not absorb the scores,
 * which the kernel replaces (where_replace).
 * That is the same number when F absorbs every finite score and bias
 * (attn_fill_absorbs: -inf, or F <= -2^110, so score + F rounds to F), also in
 * rows where every key is masked (all F: uniform probabilities, or NaN for
 * -inf, both ways).  Any other fill is refused unless it replaces: with
 * -10000 a fully masked row is uniform in the graph but softmax(scores)
 * when added.  Bias
 * terms below the Where (the graph replaces score + bias, the kernel adds F
 * to it) are absorbed the same way; a causal mask below whose fill F does
 * not absorb is refused. */
static NodeId causal_where(const Graph *g, NodeId n, double coef, AttnMatch *am, int depth);

/* Where(c, ..) of scores x has x's shape but for the batch: max(B, Bc) of
 * the condition c's own batch symbol Bc (a mask input declared with a
 * batch of its own).  Wherever the graph runs without broadcasting the
 * scores, Bc is B or 1: the key-padding mask expanded to [B, Sk] (where_pad)
 * gives the same numbers; elsewhere the kernel refuses the mask. */
static bool own_batch(const Graph *g, ValId out, ValId x, ValId c)
{
	const Value *o = IR_VAL(g, out), *xv = IR_VAL(g, x), *cv = IR_VAL(g, c);
	Graph *mg = (Graph *)g;   /* interning max(...) only */
	if (o->rank != 4 || xv->rank != 4 || cv->rank != 4 || ir_dim_is_const(g, cv->dims[0], NULL))
		return false;
	for (int a = 1; a < 4; a++)
		if (o->dims[a] != xv->dims[a])
			return false;
	return o->dims[0] == ir_dim_max(mg, xv->dims[0], cv->dims[0]) ||
	       o->dims[0] == ir_dim_max(mg, cv->dims[0], xv->dims[0]);
}

/* A key-padding Where whose fill f does not absorb the scores: the
 * kernel's mask in replace mode (mask_replace), which sets a masked key's
 * score to f after the scale, every bias and the causal fill: exact for
 * whatever is below this Where.  What is added above it (a bias, an
 * additive causal mask, a bias Where) is refused once the whole walk is
 * known (replace_above); a causal Where above needs the same fill. */
static NodeId where_replace(NodeId n, NodeId r, double f, bool keep, ValId src, ValId pc,
                            bool ob, AttnMatch *am)
{
	am->wpad = src;
	am->wpad_keep = keep;
	am->wpad_fill = f;
	am->wpad4 = pc;
	am->wown = ob;
	am->wreplace = true;
	am->rep_nt = am->nterms;
	am->rep_causal = am->causal;
	am->rep_wcond = am->wcond;
	am->mwhere = n;
	return r;
}

/* What was matched above a replacing mask Where (where_replace), or NULL
 * when nothing the kernel would add after the replacement. */
static const char *replace_above(const AttnMatch *am)
{
	if (am->nterms > am->rep_nt)
		return "a bias is added above it (the kernel replaces a masked key's score last)";
	if (am->wcond != am->rep_wcond)
		return "a mask Where that is no key-padding mask is above it";
	if (am->causal != am->rep_causal && am->causal == 1)
		return "an additive causal mask is added above it";
	if (am->causal != am->rep_causal && (float)am->causal_fill != (float)am->wpad_fill)
		return "a causal Where of another fill is above it";
	return NULL;
}

static NodeId where_mask(const Graph *g, NodeId n, double coef, AttnMatch *am, int depth)
{
	Match *m = &am->m;
	const Node *nd = IR_NODE(g, n);
	double fill, cv;
	int xi = attn_filled(g, nd->in[2], &fill) ? 1 : attn_filled(g, nd->in[1], &fill) ? 2 : 0;
	if (!xi)
		return m_fail(g, m, n, "Where around the scores: neither branch is a constant fill"), -1;
	ValId x = nd->in[xi], c = nd->in[0];
	const Value *xv = IR_VAL(g, x);
	if (xv->rank != 4 || IR_VAL(g, c)->dtype != DT_BOOL)
		return m_fail(g, m, n, "Where around the scores: not of rank 4 with a bool condition"), -1;
	QkStep st;
	const char *why = NULL;
	if (!m_const_scalar(g, c, &cv) &&
	    attn_qk_step(g, c, xv->dims[2], xv->dims[3], &st, &why))
		return causal_where(g, n, coef, am, depth);
	bool cst = m_const_scalar(g, c, &cv);
	const char *notc = cst ? "a constant masking every score" : why ? why : "?";
	DimId sd[4];
	memcpy(sd, xv->dims, sizeof sd);
	bool ob = !m_same_shape(g, nd->out[0], x);
	if (ob && !own_batch(g, nd->out[0], x, c))
		return m_fail(g, m, n, "Where around the scores: the condition is not a causal mask: %s; "
		              "as a mask it broadcasts the scores", notc), -1;
	if (ob)
		sd[0] = IR_VAL(g, c)->dims[0];   /* the mask's own batch */
	if (cst && (cv != 0) == (xi == 1)) {
		m_add(m, n);   /* keeps every score */
		return scores_walk(g, x, coef, am, depth + 1);
	}
	double f = coef == 1.0 ? fill : (double)((float)fill * (float)coef);
	bool replace = !attn_fill_absorbs(f);
	if (isnan(f))
		return m_fail(g, m, n, "Where around the scores: its fill is NaN"), -1;
	ValId pc = attn_cond_peel(g, c, NULL), src;
	bool pad = am->wpad < 0 && attn_pad_shaped(g, pc, sd, &src);
	if (replace && !pad)
		return m_fail(g, m, n, "Where around the scores: not causal (%s); its fill %g replaces "
		              "scores: only a [batch, 1, 1, keys] padding condition can", notc, f), -1;
	if (ob && !pad)
		return m_fail(g, m, n, "Where around the scores: the condition has a batch of its own "
		              "and is not a [batch, 1, 1, keys] padding mask: it broadcasts the "
		              "scores"), -1;
	if (!pad && am->wcond >= 0)
		return m_fail(g, m, n, "Where around the scores: a third mask"), -1;
	if (!bcast_fits(g, pc, xv->dims))
		return m_fail(g, m, n, "Where around the scores: the condition does not broadcast to "
		              "the scores"), -1;
	int cmode = am->causal, nt = am->nterms;
	ValId wc0 = am->wcond, wp0 = am->wpad;
	m_add(m, n);
	attn_cond_peel(g, c, m);
	NodeId r = scores_walk(g, x, coef, am, depth + 1);
	if (r < 0)
		return -1;
	if (pad && am->wpad != wp0 && (replace || am->wcond >= 0))
		return m_fail(g, m, n, "Where around the scores: a second key-padding mask Where below "
		              "this one (the kernel takes one)"), -1;
	if (!pad && am->wcond != wc0)
		return m_fail(g, m, n, "Where around the scores: a second mask Where below this one "
		              "that is no key-padding mask"), -1;
	if (replace)
		return where_replace(n, r, f, xi == 1, src, pc, ob, am);
	if (pad && am->wpad != wp0)
		pad = false;   /* the key mask is the lower one's: this one the bias Where(pc, F, 0) */
	/* below the Where, a bias or mask of its own (say (1 - m) * finfo.min)
	 * plus the kernel's f is -inf where the graph's Where gives f: a row
	 * with every key masked would differ (uniform over its keys in the graph) */
	if (f != -INFINITY && am->nterms != nt)
		return m_fail(g, m, n, "Where around the scores: a bias is added below the mask Where "
		              "of fill %g (the kernel adds both: a masked score could become -inf)", f), -1;
	if (f != -INFINITY && ((am->wcond != wc0 && (float)(am->wfill + f) != (float)f) ||
	                       (am->wpad != wp0 && (float)(am->wpad_fill + f) != (float)f)))
		return m_fail(g, m, n, "Where around the scores: a mask Where below whose fill the "
		              "fill %g does not absorb", f), -1;
	if (am->causal != cmode && f != -INFINITY &&
	    (!isfinite(am->causal_fill) || (float)(am->causal_fill + f) != (float)f))
		return m_fail(g, m, n, "Where around the scores: a causal mask below with fill %g, which "
		              "the mask's fill %g does not absorb", am->causal_fill, f), -1;
	if (xi == 1 && f == -INFINITY && am->causal == 0 && am->wpad < 0 &&
	    attn_causal_and_pad(g, c, xv->dims, &src)) {
		am->causal = 2;   /* the kernel sets -inf past the edge, then adds the pad */
		am->causal_fill = -INFINITY;
		am->causal_cond = c;
		am->wpad = src;
		am->wpad_keep = true;
		am->wpad_fill = f;
	} else if (pad) {
		am->wpad = src;
		am->wpad_keep = xi == 1;
		am->wpad_fill = f;
		am->wpad4 = pc;
		am->wown = ob;
	} else {
		am->wcond = pc;
		am->wfill = f;
		am->wcond_keep = xi == 1;
	}
	am->mwhere = n;
	return r;
}

/* Walks the score expression from x down to the Q K^T MatMul through
 * Mul/Div by constant scalars (scaling the coefficient) and Add/Sub (the
 * other operand is a bias term with the current coefficient). */
static NodeId scores_walk(const Graph *g, ValId x, double coef, AttnMatch *am, int depth)
{
	Match *m = &am->m;
	NodeId n = m_def(g, x, OP_COUNT);
	if (n < 0)
		return m_fail(g, m, m->root, "scores: '%s' is a graph input or constant, not Q K^T",
		              IR_VAL(g, x)->name), -1;
	if (depth > 8)
		return m_fail(g, m, n, "scores: more than 8 scale/bias steps above the MatMul"), -1;
	const Node *nd = IR_NODE(g, n);
	double c;
	int save = m->nnodes, nt = am->nterms;
	int cmode = am->causal;
	double cfill = am->causal_fill;
	ValId wcond = am->wcond, wpad = am->wpad, wpad4 = am->wpad4;
	bool wown = am->wown, wrep = am->wreplace;
	NodeId mwhere = am->mwhere;
	switch (nd->op) {
	case OP_MatMul:
		am->scale = coef;
		return n;
	case OP_Transpose: {
		/* (K Q^T)^T: the key-major scores of Einsum exports (aecd,abcd->acbe
		 * becomes Transpose(MatMul(Kh, Q^T), [0,1,3,2])) */
		NodeId mm = m_def(g, nd->in[0], OP_MatMul);
		if (!m_perm_is(g, n, P0132, 4) || mm < 0)
			return m_fail(g, m, n, "scores: a Transpose that is not [0,1,3,2] of a MatMul"), -1;
		m_add(m, n);
		am->swapped = true;
		am->scores = nd->out[0];   /* the scores [B, H, Sq, Sk], for the bias check */
		am->scale = coef;
		return mm;
	}
	case OP_Mul:
		for (int k = 0; k < 2; k++)
			if (m_const_scalar(g, nd->in[1 - k], &c) && ir_value_numel_const(g, nd->in[1 - k]) == 1) {
				m_add(m, n);
				return scores_walk(g, nd->in[k], coef * c, am, depth + 1);
			}
		return m_fail(g, m, n, "scores: Mul by something that is not a constant scalar"), -1;
	case OP_Div:
		if (!m_const_scalar(g, nd->in[1], &c) || c == 0 || ir_value_numel_const(g, nd->in[1]) != 1)
			return m_fail(g, m, n, "scores: Div by something that is not a non-zero constant "
			              "scalar"), -1;
		m_add(m, n);
		return scores_walk(g, nd->in[0], coef / c, am, depth + 1);
	case OP_Add:
	case OP_Sub:
		for (int k = 0; k < (nd->op == OP_Add ? 2 : 1); k++) {
			int budget = 64;
			if (k == 1 && !may_reach_matmul(g, nd->in[1], 10, &budget))
				break;          /* in[1] is not the scores: keep in[0]'s reason */
			if (k == 1)
				why_clear(m);
			m->nnodes = save;
			am->nterms = nt;
			am->causal = cmode;
			am->causal_fill = cfill;
			am->wcond = wcond;
			am->wpad = wpad;
			am->wpad4 = wpad4;
			am->wown = wown;
			am->wreplace = wrep;
			am->mwhere = mwhere;
			m_add(m, n);
			NodeId r = scores_walk(g, nd->in[k], coef, am, depth + 1);
			if (r >= 0 && am->nterms >= M_MAXTERMS)
				m_fail(g, m, n, "scores: more than %d bias terms", M_MAXTERMS);
			if (r < 0 || am->nterms >= M_MAXTERMS)
				continue;
			double tc = nd->op == OP_Sub ? -coef : coef;
			ValId term = nd->in[1 - k];
			if (causal_term(g, nd->out[0], term, tc, am))
				return r;   /* the kernel's causal flag, no term */
			ValId rest = split_causal(g, nd->out[0], term, tc, am);
			int t = am->nterms++;
			am->term[t] = rest >= 0 ? rest : term;
			am->coef[t] = tc;
			return r;
		}
		m->nnodes = save;
		am->nterms = nt;
		am->causal = cmode;
		am->causal_fill = cfill;
		am->wcond = wcond;
		am->wpad = wpad;
		am->wpad4 = wpad4;
		am->wown = wown;
		am->wreplace = wrep;
		am->mwhere = mwhere;
		return -1;
	case OP_Where:
		return where_mask(g, n, coef, am, depth);
	default:
		return m_fail(g, m, n, "scores: %s is not MatMul(Q, K^T) under constant scales, bias "
		              "terms and a causal Where", ir_opname(nd->op)), -1;
	}
}

static void absorb_side_scale(const Graph *g, ValId top, Side *sd, double *scale, Match *m);

/* S: MatMul(Qh, Kt) scaled, with bias terms. */
static bool match_scores(const Graph *g, ValId s, AttnMatch *am)
{
	Match *m = &am->m;
	am->nterms = 0;
	am->swapped = false;
	NodeId mm = scores_walk(g, s, 1.0, am, 0);
	if (mm < 0)
		return false;
	why_clear(m);   /* reasons of alternatives tried on the way */
	const Node *mn = IR_NODE(g, mm);
	double scale = am->scale;
	bool swapped = am->swapped;   /* MatMul(Kh, Q^T), transposed */
	ValId qh = strip_scale(g, mn->in[swapped], &scale, m);
	ValId kt = strip_scale(g, mn->in[!swapped], &scale, m);
	Side q, k;
	if (!swapped && (!split_path(g, qh, P0213, P1203, &q, "Q", false, mm, m) ||
	                 !key_path(g, kt, &scale, &k, "K", mm, m)))
		return false;
	if (swapped && (!key_path(g, qh, &scale, &q, "Q (key-major scores)", mm, m) ||
	                !split_path(g, kt, P0213, P1203, &k, "K (key-major scores)", false, mm, m)))
		return false;
	/* K may have fewer heads: repeated up to Q's, or one broadcast by MatMul */
	if (q.d != k.d || q.h % k.h || (k.h != q.h && k.h != 1 && !k.repeated) || q.repeated)
		return m_fail(g, m, mm, "Q has %lld heads of %lld, K %lld heads of %lld%s",
		              (long long)q.h, (long long)q.d, (long long)k.h, (long long)k.d,
		              k.h != q.h ? " (neither repeated to Q's nor one)" : "");
	if (q.layout != k.layout || side_b(g, &q) != side_b(g, &k))
		return m_fail(g, m, mm, "Q and K differ in layout or batch");
	absorb_side_scale(g, qh, &q, &scale, m);   /* a scale before the head splits */
	absorb_side_scale(g, kt, &k, &scale, m);
	m_add(m, mm);
	am->q = q.x;
	am->k = k.x;
	am->view3d[0] = q.reshape;
	am->view3d[1] = k.reshape;
	am->perm[0] = q.perm;
	am->perm[1] = k.perm;
	am->kb = k.b;   /* DimIds, for V's check */
	am->ks = k.s;
	am->kv_heads = k.h;   /* K/V heads */
	am->kv_tiled = k.tiled;
	am->heads = q.h;
	am->head_size = q.d;
	am->layout = q.layout;
	am->scale = scale;
	if (!swapped)
		am->scores = mn->out[0];   /* raw scores, for the bias check */
	return true;
}

/* p's one use is Where(c, 0, p) or Where(c, p, 0) of its shape (the mask
 * applied again to the probabilities, experimental-experiment's conformer
 * attention): matched into am->pwhere, checked by zero_probs once the
 * masks are known. */
static ValId match_zero_probs(const Graph *g, ValId p, AttnMatch *am)
{
	NodeId w = IR_VAL(g, p)->uses[0].node;
	const Node *wn = IR_NODE(g, w);
	double zero;
	if (wn->op != OP_Where || wn->in[0] == p || IR_VAL(g, wn->in[0])->dtype != DT_BOOL ||
	    !m_same_shape(g, wn->out[0], p))
		return p;
	int pi = wn->in[2] == p ? 2 : 1;
	if (wn->in[pi] != p || !m_const_scalar(g, wn->in[3 - pi], &zero) || zero != 0)
		return p;
	m_add(&am->m, w);
	am->pwhere = w;
	return wn->out[0];
}

/* After the softmax: optional NaN guard or zero_probs Where; the value
 * P . V reads. */
static ValId match_guard(const Graph *g, ValId p, AttnMatch *am)
{
	Match *m = &am->m;
	const Value *pv = IR_VAL(g, p);
	am->nan_guard = false;
	if (pv->nuses == 1 && !ir_is_output(g, p))
		return match_zero_probs(g, p, am);
	if (pv->nuses != 2)
		return p;
	NodeId isn = -1, wh = -1;
	for (int u = 0; u < 2; u++) {
		NodeId c = pv->uses[u].node;
		if (IR_NODE(g, c)->op == OP_IsNaN)
			isn = c;
		else if (IR_NODE(g, c)->op == OP_Where)
			wh = c;
	}
	double zero;
	if (isn < 0 || wh < 0)
		return -1;
	const Node *w = IR_NODE(g, wh);
	if (w->in[0] != IR_NODE(g, isn)->out[0] || w->in[2] != p ||
	    !m_const_scalar(g, w->in[1], &zero) || zero != 0)
		return -1;
	m_add(m, isn);
	m_add(m, wh);
	am->nan_guard = true;
	return w->out[0];
}

/* The head merge after P . V: Transpose then Reshape to [B, Sq, H*Dv]
 * (layout 0), or Transpose to [Sq, B, H, Dv] (layout 1), optionally
 * followed by a Reshape to [Sq, B, H*Dv]. */
static bool match_merge(const Graph *g, ValId c, int64_t dv, AttnMatch *am)
{
	Match *m = &am->m;
	const Value *cv = IR_VAL(g, c);
	if (cv->nuses != 1 || ir_is_output(g, c))
		return false;
	NodeId t = cv->uses[0].node;
	int layout = am->layout;
	if (IR_NODE(g, t)->op != OP_Transpose || !m_perm_is(g, t, layout ? P2013 : P0213, 4))
		return false;
	m_add(m, t);
	ValId tv = IR_NODE(g, t)->out[0];
	const Value *tvv = IR_VAL(g, tv), *qv = IR_VAL(g, am->q);
	NodeId r = IR_VAL(g, tv)->nuses == 1 && !ir_is_output(g, tv) ? IR_VAL(g, tv)->uses[0].node : -1;
	if (r < 0 || IR_NODE(g, r)->op != OP_Reshape || IR_NODE(g, r)->in[0] != tv) {
		if (!layout)
			return false;
		/* time-major 4-D result: the rewrite reshapes back */
		am->out = tv;
		am->out4d = true;
		return true;
	}
	const Value *ov = IR_VAL(g, IR_NODE(g, r)->out[0]);
	/* dims as the context's, or as Q's (what the fused op produces) when a
	 * broadcast bias made the context's max(...) */
	if (ov->rank != 3 || (ov->dims[0] != tvv->dims[0] && ov->dims[0] != qv->dims[0]) ||
	    (ov->dims[1] != tvv->dims[1] && ov->dims[1] != qv->dims[1]) ||
	    !m_dim_is(g, ov->dims[2], am->heads * dv))
		return false;
	m_add(m, r);
	am->out = IR_NODE(g, r)->out[0];
	am->out4d = false;
	return true;
}

/* ---- heads folded into the batch: 3-D views ------------------------------
 * Exporters that run attention as batched 3-D MatMuls fold the heads into
 * the batch: row b*N + n of a 3-D [B*N, S, D] value is head n of batch b.
 * Two constructions give that order (fold_side checks them on the dims):
 *   batch-first (BART, Whisper, SDPA): Reshape(X4, [B*N, S, D]) with X4
 *     [B, N, S, D] any head split split_path reads (Transpose(0,2,1,3) of
 *     [B, S, N, D], XLNet's time-major Transpose(1,2,0,3) of [S, B, N, D],
 *     a heads-first value such as Concat(past, new));
 *   time-major (fairseq): Transpose(Reshape(X [S, B, N*D], [S, B*N, D]),
 *     [1, 0, 2]).
 * K^T is the view transposed, [B*N, D, S]: Transpose(view, [0, 2, 1]), a
 * fold of a 4-D K^T [B, N, D, S] (key_path), or the time-major
 * Transpose(.., [1, 2, 0]).  Q K^T, the mask on the scores viewed
 * [B, N, Sq, Sk] (mask_3d), Softmax over the keys, P V, and the context
 * unfolded back (merge_3d) make a KlnAttention on the sides' values:
 * layout 0 or 1 as their heads are laid out; a constant factor on Q or K
 * before its head split joins the scale (absorb_side_scale). */

static const int64_t P102[3] = {1, 0, 2};
static const int64_t P021[3] = {0, 2, 1};
static const int64_t P120[3] = {1, 2, 0};

/* t = Transpose(Reshape(X [S, B, N*D], [S, B*N, D]), P102 or P120): the
 * time-major fold of X's heads (layout 1). */
static bool fold_time_major(const Graph *g, NodeId t, Side *sd, const char *what, Match *m)
{
	NodeId r = m_def(g, IR_NODE(g, t)->in[0], OP_Reshape);
	if (r < 0)
		return m_fail(g, m, t, "%s path (time-major 3-D): the Transpose does not read a Reshape",
		              what);
	ValId x = IR_NODE(g, r)->in[0];
	const Value *X = IR_VAL(g, x), *R = IR_VAL(g, IR_NODE(g, r)->out[0]);
	int64_t hd, d;
	if (X->rank != 3 || R->rank != 3 || X->dtype != DT_F32 || R->dims[0] != X->dims[0] ||
	    !ir_dim_is_const(g, X->dims[2], &hd) || !ir_dim_is_const(g, R->dims[2], &d) || d <= 0 ||
	    hd % d)
		return m_fail(g, m, r, "%s path (time-major 3-D): Reshape '%s' is not [S, B, H*D] -> "
		              "[S, B*H, D] with static H*D and D", what, R->name);
	sd->h = hd / d;
	sd->d = d;
	if (R->dims[1] != ir_dim_mul((Graph *)g, X->dims[1], ir_dim_const((Graph *)g, sd->h)))
		return m_fail(g, m, r, "%s path (time-major 3-D): Reshape '%s': dim 1 is not batch * "
		              "%lld heads", what, R->name, (long long)sd->h);
	sd->x = x;
	sd->layout = 1;
	sd->b = X->dims[1];
	sd->s = X->dims[0];
	return true;
}

/* v, a 3-D value, is heads folded into the batch as above ([B*N, D, S]
 * when kt): the Side of the value they come from.  Constant factors
 * between the views multiply *scale (NULL: none may be there, for V). */
static bool fold_side(const Graph *g, ValId v, bool kt, double *scale, Side *sd,
                      const char *what, NodeId at, Match *m)
{
	NodeId t = m_def(g, v, OP_Transpose), tkt = -1;
	memset(sd, 0, sizeof *sd);
	if (kt && t >= 0 && m_perm_is(g, t, P021, 3)) {   /* K^T: the K view transposed */
		kt = false;
		tkt = t;
		v = IR_NODE(g, t)->in[0];
		ValId u = scale ? strip_scale(g, v, scale, m) : v;
		if (u != v)
			m_add(m, tkt);   /* it reads a scale the match absorbs: absorbed too */
		v = u;
		t = m_def(g, v, OP_Transpose);
	}
	if (t >= 0 && m_perm_is(g, t, kt ? P120 : P102, 3))
		return fold_time_major(g, t, sd, what, m);
	NodeId r = m_def(g, v, OP_Reshape);
	if (r < 0)
		return m_fail(g, m, t >= 0 ? t : at, "%s path (3-D heads): '%s' is neither a Reshape "
		              "folding [B, N, %s] into [B*N, %s] nor the time-major Transpose(%s) of "
		              "[S, B*N, D]", what, IR_VAL(g, v)->name, kt ? "D, S" : "S, D",
		              kt ? "D, S" : "S, D", kt ? "1,2,0" : "1,0,2");
	ValId x4 = IR_NODE(g, r)->in[0];
	const Value *X = IR_VAL(g, x4), *V = IR_VAL(g, v);
	int64_t n;
	if (X->rank != 4 || V->rank != 3 || V->dims[0] != ir_dim_mul((Graph *)g, X->dims[0], X->dims[1]) ||
	    V->dims[1] != X->dims[2] || V->dims[2] != X->dims[3])
		return m_fail(g, m, r, "%s path (3-D heads): Reshape '%s' is not [B, N, %s] -> [B*N, %s] "
		              "(dims 0, 1 folded in order, the last two kept)", what, V->name,
		              kt ? "D, S" : "S, D", kt ? "D, S" : "S, D");
	if (!ir_dim_is_const(g, X->dims[1], &n))
		return m_fail(g, m, r, "%s path (3-D heads): Reshape '%s' folds dim 1 of '%s' into the "
		              "batch, which is not a static head count", what, V->name, X->name);
	ValId x4s = scale ? strip_scale(g, x4, scale, m) : x4;
	if (x4s != x4) {   /* the views above the absorbed scale are absorbed too */
		m_add(m, r);
		m_add(m, tkt);
		x4 = x4s;
	}
	if (!(kt ? key_path(g, x4, scale ? scale : &(double){1.0}, sd, what, at, m)
	         : split_path(g, x4, P0213, P1203, sd, what, false, at, m)))
		return false;
	if (sd->repeated)
		return m_fail(g, m, r, "%s path (3-D heads): repeated (grouped-query) heads folded into "
		              "the batch are not supported", what);
	if (sd->h != n)
		return m_fail(g, m, r, "%s path (3-D heads): Reshape '%s' folds %lld heads into the "
		              "batch, but '%s' holds %lld", what, V->name, (long long)n, X->name,
		              (long long)sd->h);
	if (sd->b != X->dims[0])
		return m_fail(g, m, r, "%s path (3-D heads): Reshape '%s' folds dim 0 of '%s' as the "
		              "batch, but that is not the batch of its heads", what, V->name, X->name);
	return true;
}

/* The fairseq masks between the 3-D scores and the Softmax: Reshape to
 * [B, H, Sq, Sk], Where(mask, fill, scores) (masked_fill: mask true where
 * padded) or scores + bias, Reshape back.  Returns the 3-D scores below
 * (-1 with the reason recorded when x is not such a view);
 * the Where's condition goes to tm_mask, its fill to tm_fill, an additive
 * bias to the terms (one). */
static ValId mask_3d(const Graph *g, ValId x, int64_t h, const char *what, AttnMatch *am)
{
	Match *m = &am->m;
	NodeId r2 = m_def(g, x, OP_Reshape);
	if (r2 < 0 || IR_VAL(g, IR_NODE(g, r2)->in[0])->rank != 4)
		return m_fail(g, m, m_def(g, x, OP_COUNT), "%s scores: '%s' masks or biases the 3-D "
		              "scores [B*H, Sq, Sk] themselves, not their [B, H, Sq, Sk] view between "
		              "two Reshapes", what, IR_VAL(g, x)->name), -1;
	ValId w4 = IR_NODE(g, r2)->in[0];
	const Value *W4 = IR_VAL(g, w4), *X = IR_VAL(g, x);
	if (W4->dims[2] != X->dims[1] || W4->dims[3] != X->dims[2] || !m_dim_is(g, W4->dims[1], h) ||
	    X->dims[0] != ir_dim_mul((Graph *)g, W4->dims[0], W4->dims[1]))
		return m_fail(g, m, r2, "%s scores: Reshape '%s' is not [B*H, Sq, Sk] from "
		              "[B, H, Sq, Sk]", what, X->name), -1;
	NodeId n = m_def(g, w4, OP_COUNT);
	if (n < 0)
		return m_fail(g, m, r2, "%s scores: the 4-D view is an input", what), -1;
	const Node *nd = IR_NODE(g, n);
	ValId s4 = -1;
	double fill;
	if (nd->op == OP_Where && IR_VAL(g, nd->in[0])->dtype == DT_BOOL &&
	    attn_filled(g, nd->in[1], &fill) && m_same_shape(g, nd->in[2], w4)) {
		/* masked_fill(mask, fill): for finite scores the same as adding
		 * fill where the mask is set when fill is -inf or so large that
		 * score + fill rounds to it */
		if (!(fill == -INFINITY || fill <= -0x1p110))
			return m_fail(g, m, n, "%s scores: masked_fill with %g, not -inf or the "
			              "float minimum (that replacement is not an additive bias)", what, fill), -1;
		if (!bcast_fits(g, nd->in[0], W4->dims))
			return m_fail(g, m, n, "%s scores: the mask does not broadcast to the "
			              "scores", what), -1;
		am->tm_mask = nd->in[0];
		am->tm_fill = fill;
		s4 = nd->in[2];
	} else if (nd->op == OP_Add) {
		for (int k = 0; k < 2 && s4 < 0; k++)
			if (m_def(g, nd->in[k], OP_Reshape) >= 0 && bias_fits(g, nd->in[1 - k], W4->dims) &&
			    m_same_shape(g, nd->in[k], w4)) {
				s4 = nd->in[k];
				am->term[0] = nd->in[1 - k];
				am->nterms = 1;
				am->coef[0] = 1.0;
			}
	}
	NodeId r1 = s4 >= 0 ? m_def(g, s4, OP_Reshape) : -1;
	if (r1 < 0 || !m_same_shape(g, IR_NODE(g, r1)->in[0], x))
		return m_fail(g, m, n, "%s scores: between the two Reshapes is not a "
		              "masked_fill or an Add of a bias on the 4-D view", what), -1;
	m_add(m, r2);
	m_add(m, n);
	m_add(m, r1);
	return IR_NODE(g, r1)->in[0];
}

/* The 3-D context c [B*N, Sq, Dv] merged back to the heads' layout: a
 * Reshape unfolding it to [B, N, Sq, Dv], then match_merge's Transpose (+
 * Reshape); or, time-major, Transpose(1, 0, 2) to [Sq, B*N, Dv] and a
 * Reshape to [Sq, B, N*Dv]. */
static bool merge_3d(const Graph *g, ValId c, const Side *q, int64_t dv, AttnMatch *am)
{
	Match *m = &am->m;
	const Value *C = IR_VAL(g, c);
	NodeId u = C->nuses == 1 && !ir_is_output(g, c) ? C->uses[0].node : -1;
	const Node *un = u >= 0 ? IR_NODE(g, u) : NULL;
	if (!un || un->in[0] != c || (un->op != OP_Reshape && un->op != OP_Transpose))
		return m_fail(g, m, u >= 0 ? u : m->root, "the 3-D context '%s' is not unfolded by one "
		              "Reshape or Transpose", C->name);
	ValId uv = un->out[0];
	const Value *U = IR_VAL(g, uv);
	if (un->op == OP_Reshape) {
		if (U->rank != 4 || U->dims[0] != q->b || !m_dim_is(g, U->dims[1], q->h) ||
		    U->dims[2] != C->dims[1] || U->dims[3] != C->dims[2])
			return m_fail(g, m, u, "the 3-D context: Reshape '%s' is not [B*N, Sq, Dv] -> "
			              "[B, N, Sq, Dv] with Q's batch and %lld heads", U->name,
			              (long long)q->h);
		m_add(m, u);
		if (!match_merge(g, uv, dv, am))
			return m_fail(g, m, u, "the context '%s' is not merged back by Transpose(%s) + "
			              "Reshape to %s, used once", U->name, q->layout ? "2,0,1,3" : "0,2,1,3",
			              q->layout ? "[Sq, B, N*Dv]" : "[B, Sq, N*Dv]");
		return true;
	}
	/* time-major: Transpose(1, 0, 2), Reshape to [Sq, B, N*Dv] */
	if (!m_perm_is(g, u, P102, 3) || q->layout != 1)
		return m_fail(g, m, u, "the 3-D context is transposed but not by Transpose(1,0,2) of "
		              "time-major heads");
	NodeId r = U->nuses == 1 && !ir_is_output(g, uv) ? U->uses[0].node : -1;
	const Value *ov = r >= 0 ? IR_VAL(g, IR_NODE(g, r)->out[0]) : NULL;
	if (r < 0 || IR_NODE(g, r)->op != OP_Reshape || ov->rank != 3 || ov->dims[0] != q->s ||
	    ov->dims[1] != q->b || !m_dim_is(g, ov->dims[2], q->h * dv))
		return m_fail(g, m, u, "the context is not merged back to [Sq, B, H*Dv] by a Reshape");
	m_add(m, u);
	m_add(m, r);
	am->out = IR_NODE(g, r)->out[0];
	am->out4d = false;
	return true;
}

/* A side (Q or K) reads Mul(y, c), c a constant scalar, through single-use
 * views (Reshape, Transpose) down to top, the value the scores read: the
 * exporters' q_proj(x) * scaling before the head split, 4-D or folded
 * into 3-D, and SDPA's 1/sqrt(sqrt(d)) on Q and on K.  The kernel reads y
 * and scales the scores by c instead (what the views compute on y times
 * c), so the Mul and the views join the match and the projection can be
 * packed with the others. */
static void absorb_side_scale(const Graph *g, ValId top, Side *sd, double *scale, Match *m)
{
	NodeId chain[6];
	int n = 0;
	double c;
	if (sd->reshape || sd->perm || sd->repeated)
		return;
	for (ValId v = top; v != sd->x; v = IR_NODE(g, chain[n - 1])->in[0]) {
		NodeId d = m_def(g, v, OP_COUNT);
		if (d < 0 || n == 6 || m_nuses(g, v) != 1 || ir_is_output(g, v) ||
		    (IR_NODE(g, d)->op != OP_Reshape && IR_NODE(g, d)->op != OP_Transpose))
			return;
		chain[n++] = d;
	}
	NodeId mul = m_def(g, sd->x, OP_Mul);
	if (mul < 0 || m_nuses(g, sd->x) != 1 || ir_is_output(g, sd->x))
		return;
	const Node *mn = IR_NODE(g, mul);
	int ci = m_const_scalar(g, mn->in[1], &c) ? 1 : m_const_scalar(g, mn->in[0], &c) ? 0 : -1;
	if (ci < 0 || !m_same_shape(g, mn->in[1 - ci], sd->x))
		return;
	*scale *= c;
	sd->x = mn->in[1 - ci];
	m_add(m, mul);
	for (int i = 0; i < n; i++)
		m_add(m, chain[i]);
}

/* Attention on heads folded into the batch (see above): 3-D scores,
 * Softmax on axis 2. */
static bool match_attention_3d(const Graph *g, NodeId root, Match *m)
{
	AttnMatch *am = M_AS(AttnMatch, m);
	const Node *sm = IR_NODE(g, root);
	ValId x = sm->in[0];
	m_add(m, root);
	am->nterms = 0;
	/* the heads from the MatMul first: the mask check needs H */
	ValId y = x;
	for (NodeId r; (r = m_def(g, y, OP_Reshape)) >= 0 || (r = m_def(g, y, OP_Where)) >= 0 ||
	               (r = m_def(g, y, OP_Add)) >= 0;)
		y = IR_NODE(g, r)->op == OP_Where ? IR_NODE(g, r)->in[2] : IR_NODE(g, r)->in[0];
	double scale = 1.0;
	ValId sv = strip_scale(g, y, &scale, m);
	NodeId mm = m_def(g, sv, OP_MatMul);
	if (mm < 0)
		return m_fail(g, m, root, "3-D scores: no MatMul(Q, K^T) under the mask");
	const Node *mn = IR_NODE(g, mm);
	Side q, k, v;
	ValId qh = strip_scale(g, mn->in[0], &scale, m);
	ValId kt = strip_scale(g, mn->in[1], &scale, m);
	if (!fold_side(g, qh, false, &scale, &q, "Q", mm, m) ||
	    !fold_side(g, kt, true, &scale, &k, "K", mm, m))
		return false;
	why_clear(m);   /* reasons of alternatives tried on the way */
	absorb_side_scale(g, qh, &q, &scale, m);
	absorb_side_scale(g, kt, &k, &scale, m);
	if (q.h != k.h || q.d != k.d || q.b != k.b || q.layout != k.layout)
		return m_fail(g, m, mm, "Q has %lld heads of %lld, K %lld heads of %lld, or another "
		              "batch or layout", (long long)q.h, (long long)q.d, (long long)k.h,
		              (long long)k.d);
	if (x != y && mask_3d(g, x, q.h, q.layout ? "time-major 3-D" : "3-D", am) != y)
		return false;
	m_add(m, mm);
	const Value *pv = IR_VAL(g, sm->out[0]);
	if (pv->nuses != 1 || ir_is_output(g, sm->out[0]))
		return m_fail(g, m, root, "the probabilities are used %d times or are a graph output",
		              m_nuses(g, sm->out[0]));
	NodeId mv = pv->uses[0].node;
	const Node *mvn = IR_NODE(g, mv);
	if (mvn->op != OP_MatMul || mvn->in[0] != sm->out[0])
		return m_fail(g, m, mv, "the probabilities are not the left operand of a MatMul by V");
	if (!fold_side(g, mvn->in[1], false, NULL, &v, "V", mv, m))
		return false;
	why_clear(m);
	if (v.h != q.h || v.s != k.s || v.b != k.b || v.layout != k.layout)
		return m_fail(g, m, mv, "V's heads, key length, batch or layout are not K's");
	m_add(m, mv);
	am->q = q.x;   /* merge_3d -> match_merge reads Q's dims */
	am->heads = q.h;
	am->layout = q.layout;
	if (!merge_3d(g, mvn->out[0], &q, v.d, am))
		return false;
	const Side *sides[3] = {&q, &k, &v};
	for (int i = 0; i < 3; i++) {
		am->view3d[i] = sides[i]->reshape;
		am->perm[i] = sides[i]->perm;
	}
	am->k = k.x;
	am->v = v.x;
	am->kb = k.b;
	am->ks = k.s;
	am->bias = am->nterms ? am->term[0] : -1;
	am->mask = -1;
	am->kv_heads = q.h;
	am->head_size = q.d;
	am->v_head_size = v.d;
	am->scale = scale;
	am->mask_filter = 0;
	if (!m_closed(g, m, am->out))
		return m_fail(g, m, root, "a value between the scores and the head merge is used "
		              "outside the attention");
	return true;
}

/* bias = Where(And(causal, padding), 0, -inf) (causal_and_pad): SDPA's
 * boolean mask of transformers' masking_utils as exported. */
static bool where_causal_pad(const Graph *g, ValId bias, const DimId *sd, ValId *pad)
{
	NodeId w = m_def(g, bias, OP_Where);
	double zero, f;
	return w >= 0 && m_const_scalar(g, IR_NODE(g, w)->in[1], &zero) && zero == 0 &&
	       m_const_scalar(g, IR_NODE(g, w)->in[2], &f) && f == -INFINITY &&
	       IR_VAL(g, IR_NODE(g, w)->in[0])->dtype == DT_BOOL &&
	       attn_causal_and_pad(g, IR_NODE(g, w)->in[0], sd, pad);
}

/* The key-padding condition of a Where (where_mask) is the kernel's mask:
 * [B, Sk] (or [B, 1, 1, Sk]) of K's batch and length, layout 0. */
static bool where_pad_fits(const Graph *g, const AttnMatch *am, const DimId *kd)
{
	const Value *c = IR_VAL(g, am->wpad);
	return am->layout == 0 && (c->dims[0] == kd[0] || am->wown) &&
	       c->dims[c->rank - 1] == kd[1];
}

/* v is finite wherever the graph inputs are: a graph input, a constant
 * with finite data, or computed from such by ops that cannot make a finite
 * number infinite or NaN (short of overflow).  *budget bounds the nodes. */
static bool finite_value(const Graph *g, ValId v, int *budget)
{
	const Value *vv = IR_VAL(g, v);
	double f;
	if (--*budget < 0)
		return false;
	if (!ir_dtype_is_float(vv->dtype))
		return true;
	if (m_is_const(g, v)) {
		if (vv->dtype != DT_F32 || !vv->data)
			return false;
		for (size_t k = 0; k + 4 <= vv->nbytes; k += 4) {
			float x;
			memcpy(&x, (const char *)vv->data + k, 4);
			if (!isfinite(x))
				return false;
		}
		return true;
	}
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0)
		return true;
	const Node *nd = IR_NODE(g, n);
	switch (nd->op) {
	case OP_ConstantOfShape:
		return attn_filled(g, v, &f) && isfinite(f);
	case OP_Add: case OP_Sub: case OP_Mul: case OP_Neg: case OP_Where: case OP_Cast:
	case OP_Reshape: case OP_Unsqueeze: case OP_Squeeze: case OP_Expand: case OP_Transpose:
	case OP_Slice: case OP_Gather: case OP_Concat: case OP_Identity: case OP_Tile:
		for (int k = 0; k < nd->nin; k++)
			if (nd->in[k] >= 0 && !finite_value(g, nd->in[k], budget))
				return false;
		return true;
	default:
		return false;
	}
}

/* The zero_probs Where(c, 0, P) (am->pwhere) is the kernel's NaN guard when
 * c is the condition of the mask Where nearest the Softmax, its fill is
 * -inf, the zeros go exactly where it masks, and nothing else can put -inf
 * in a row: no other mask Where, the other masks fill finite numbers, the
 * bias terms are finite (finite_value).  Then, for finite scores, a row
 * holds -inf only where c masks: a row with a key kept has probability
 * exactly 0 at the masked ones (the Where changes nothing), a row with every
 * key masked is NaN, which the Where and the guard both make 0.  NULL, or
 * the reason not. */
static const char *zero_probs(const Graph *g, const AttnMatch *am)
{
	const Node *pw = IR_NODE(g, am->pwhere);
	if (am->mwhere < 0)
		return "no mask Where on the scores that it repeats";
	const Node *mw = IR_NODE(g, am->mwhere);
	double f;
	bool masks_true = !attn_filled(g, mw->in[2], &f);   /* Where(c, F, X) */
	if (pw->in[0] != mw->in[0])
		return "its condition is not the mask Where's";
	if (masks_true != (pw->in[2] == IR_NODE(g, am->m.root)->out[0]))
		return "it zeroes where the mask Where keeps the score";
	bool own_c = am->causal == 2 && am->causal_cond == mw->in[0];
	if (own_c ? am->wcond >= 0 : (am->wcond >= 0) + (am->wpad >= 0) != 1)
		return "another mask Where on the scores";
	double fill = own_c ? am->causal_fill : am->wcond >= 0 ? am->wfill : am->wpad_fill;
	if (fill != -INFINITY)
		return "the mask Where's fill is not -inf (a row with every key masked is uniform, "
		       "not NaN, and the Where makes it 0)";
	if ((!own_c && am->causal != 0 && !isfinite(am->causal_fill)) ||
	    (am->mask >= 0 && !isfinite(am->mask_filter)))
		return "another mask fills -inf too";
	for (int t = 0; t < am->nterms; t++) {
		int budget = 64;
		if (!finite_value(g, am->term[t], &budget))
			return "a bias term may hold -inf";
	}
	return NULL;
}

static bool match_attention_core(const Graph *g, NodeId root, Match *m)
{
	AttnMatch *am = M_AS(AttnMatch, m);
	am->tm_mask = am->bias = am->mask = am->causal_cond = -1;   /* fuse_run zeroed the rest */
	am->wcond = am->wpad = am->mwhere = am->pwhere = am->wpad4 = -1;
	const Node *sm = IR_NODE(g, root);
	ValId x = sm->in[0];
	const Value *xv = IR_VAL(g, x);
	int64_t axis = ir_attr_int(g, root, "axis", g->opset >= 13 ? -1 : 1);
	if (xv->rank == 3 && xv->dtype == DT_F32 && (axis == -1 || axis == 2))
		return match_attention_3d(g, root, m);
	if (xv->rank != 4 || xv->dtype != DT_F32)
		return m_fail(g, m, root, "the scores are %s of rank %d, not f32 of rank 4",
		              ir_dtype_name(xv->dtype), xv->rank);
	if (axis != -1 && axis != 3)
		return m_fail(g, m, root, "Softmax over axis %lld, not the key axis 3", (long long)axis);
	m_add(m, root);
	if (!match_scores(g, x, am))
		return false;
	int nt = am->nterms;
	for (int t = 0; t < nt; t++)
		if (!bias_fits(g, am->term[t], IR_VAL(g, am->scores)->dims))
			return m_fail(g, m, root, "bias '%s' is not f32 of rank <= 4 broadcasting to the "
			              "scores", IR_VAL(g, am->term[t])->name);
	/* the dims the scores may have taken from the terms or the causal condition */
	ValId wide[M_MAXTERMS + 2];
	memcpy(wide, am->term, sizeof am->term);
	int nw = nt;
	if (am->causal == 2)
		wide[nw++] = am->causal_cond;
	if (am->wown)
		wide[nw++] = am->wpad4;
	if (!bias_keeps_shape(g, x, am->scores, wide, nw))
		return m_fail(g, m, root, "the bias terms broadcast the scores to a larger shape");
	am->bias = nt == 1 && am->coef[0] == 1.0 ? am->term[0] : -1;
	ValId p = match_guard(g, sm->out[0], am);
	if (p < 0)
		return m_fail(g, m, root, "the probabilities have two uses that are not the "
		              "Where(IsNaN(p), 0, p) guard");
	const Value *pv = IR_VAL(g, p);
	if (pv->nuses != 1 || ir_is_output(g, p))
		return m_fail(g, m, root, "the probabilities '%s' are used %d times or are a graph "
		              "output", pv->name, m_nuses(g, p));
	NodeId mv = pv->uses[0].node;
	const Node *mvn = IR_NODE(g, mv);
	Side v;
	if (mvn->op != OP_MatMul || mvn->in[0] != p)
		return m_fail(g, m, mv, "the probabilities are not the left operand of a MatMul by V");
	if (!split_path(g, mvn->in[1], P0213, P1203, &v, "V", false, mv, m))
		return false;
	if (v.h != am->kv_heads || v.layout != am->layout)
		return m_fail(g, m, mv, "V has %lld heads (layout %d), K %lld (layout %d)",
		              (long long)v.h, v.layout, (long long)am->kv_heads, am->layout);
	if (side_s(g, &v) != am->ks || side_b(g, &v) != am->kb)
		return m_fail(g, m, mv, "V's key length or batch is not K's");
	if (am->kv_heads > 1 && am->kv_heads < am->heads && v.tiled != am->kv_tiled)
		return m_fail(g, m, mv, "K's %lld heads are repeated %s, V's %s: Q head h would read "
		              "K head %s but V head %s", (long long)am->kv_heads,
		              am->kv_tiled ? "as a whole (tiled)" : "head by head",
		              v.tiled ? "as a whole (tiled)" : "head by head",
		              am->kv_tiled ? "h % kv" : "h / rep", v.tiled ? "h % kv" : "h / rep");
	am->v = v.x;
	am->view3d[2] = v.reshape;
	am->perm[2] = v.perm;
	am->v_head_size = v.d;
	m_add(m, mv);
	if (!match_merge(g, mvn->out[0], v.d, am))
		return m_fail(g, m, mv, "the context '%s' is not merged back by Transpose(0,2,1,3) + "
		              "Reshape to [B, S, H*Dv] (or the time-major Transpose(2,0,1,3)), used "
		              "once", IR_VAL(g, mvn->out[0])->name);
	am->mask = -1;
	am->mask_filter = 0;
	ValId mask;
	double filter;
	DimId kd[2] = {am->kb, am->ks};   /* K's batch and key length, whatever its layout */
	ValId pad;
	if (am->bias >= 0 && am->layout == 0 && am->wpad < 0 && am->causal == 0 &&
	    where_causal_pad(g, am->bias, IR_VAL(g, am->scores)->dims, &pad)) {
		am->bias = -1;    /* the one term: causal flag and key-padding mask, both -inf */
		am->nterms = 0;
		am->causal = 1;
		am->causal_fill = -INFINITY;
		am->wpad = pad;
		am->wpad_keep = true;
		am->wpad_fill = -INFINITY;
	}
	const char *rwhy = am->wreplace ? replace_above(am) : NULL;
	if (rwhy)
		return m_fail(g, m, am->mwhere, "Where around the scores of fill %g (it replaces the "
		              "masked scores): %s", am->wpad_fill, rwhy);
	if (am->wreplace && !where_pad_fits(g, am, kd))
		return m_fail(g, m, am->mwhere, "Where around the scores of fill %g (it replaces the "
		              "masked scores): '%s' is not a key-padding mask of K's batch and length at "
		              "layout 0, the only one the kernel replaces by", am->wpad_fill,
		              IR_VAL(g, am->wpad)->name);
	if (am->wpad >= 0 && !where_pad_fits(g, am, kd)) {
		/* not the kernel's [B, Sk] mask: the bias Where(c, F, 0) instead */
		if (am->wcond >= 0)
			return m_fail(g, m, root, "two mask Wheres, and '%s' is not a key-padding mask of "
			              "K's batch and length", IR_VAL(g, am->wpad)->name);
		am->wcond = am->wpad4 >= 0 ? am->wpad4 : am->wpad;
		/* a [B, Sk] source (And(causal, pad) keeps no [B, 1, 1, Sk] view of
		 * it) would broadcast as [Sq, Sk]: the rewrite unsqueezes it */
		am->wcond_bk = IR_VAL(g, am->wcond)->rank == 2;
		am->wcond_keep = am->wpad_keep;
		am->wfill = am->wpad_fill;
		am->wpad = -1;
	}
	if (am->wpad >= 0)
		am->mask_filter = am->wpad_fill;
	if (am->bias >= 0 && am->layout == 0 && am->wpad < 0 &&
	    (key_padding(g, am->bias, kd, &mask, &filter) ||
	     masking_utils(g, am->bias, kd, &mask, &filter))) {
		am->bias = -1;
		am->nterms = 0;   /* the mask replaces the one bias term */
		am->mask = mask;
		am->mask_filter = filter;
	}
	const char *why = am->pwhere >= 0 ? zero_probs(g, am) : NULL;
	if (why)
		return m_fail(g, m, am->pwhere, "the probabilities pass Where(c, 0, p): %s", why);
	if (am->pwhere >= 0)
		am->nan_guard = true;
	if (!m_closed(g, m, am->out))
		return m_fail(g, m, root, "a value between the scores and the head merge is used "
		              "outside the attention (or %d nodes overflow the match)", M_MAXNODES);
	return true;
}

/* The Q K^T MatMul below scores v, through Where (either branch), Add, Sub,
 * Mul, Div: rank-4 operands, or -1.  *depth bounds the nodes visited. */
static NodeId scores_matmul(const Graph *g, ValId v, int *depth)
{
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0 || --*depth < 0)
		return -1;
	const Node *nd = IR_NODE(g, n);
	if (nd->op == OP_MatMul)
		return IR_VAL(g, nd->in[0])->rank == 4 && IR_VAL(g, nd->in[1])->rank == 4 ? n : -1;
	if (nd->op != OP_Where && nd->op != OP_Add && nd->op != OP_Sub && nd->op != OP_Mul &&
	    nd->op != OP_Div)
		return -1;
	for (int k = nd->op == OP_Where; k < nd->nin; k++) {
		NodeId mm = nd->in[k] >= 0 ? scores_matmul(g, nd->in[k], depth) : -1;
		if (mm >= 0)
			return mm;
	}
	return -1;
}

/* After a failed match: when Q's or K's heads come from a Reshape whose
 * shape is not a constant and whose head count shape inference could not
 * fix (the shape a graph input, as in experimental-experiment's
 * attention_pattern_1), that is the reason, whatever condition failed
 * first: KlnAttention needs the head count at compile time. */
static void heads_unknown(const Graph *g, NodeId root, Match *m)
{
	int depth = 16;
	NodeId mm = scores_matmul(g, IR_NODE(g, root)->in[0], &depth);
	for (int k = 0; mm >= 0 && k < 2; k++) {
		ValId v = IR_NODE(g, mm)->in[k];
		double c;
		for (int hop = 0; hop < 4; hop++) {   /* constant scales, Transposes */
			NodeId n = m_def(g, v, OP_COUNT);
			const Node *nd = n >= 0 ? IR_NODE(g, n) : NULL;
			if (nd && nd->op == OP_Transpose)
				v = nd->in[0];
			else if (nd && (nd->op == OP_Mul || nd->op == OP_Div) &&
			         m_const_scalar(g, nd->in[1], &c))
				v = nd->in[0];
			else
				break;
		}
		NodeId r = m_def(g, v, OP_Reshape);
		if (r < 0)
			continue;
		const Node *rn = IR_NODE(g, r);
		const Value *R = IR_VAL(g, rn->out[0]);
		if (R->rank != 4 || m_is_const(g, rn->in[1]) || ir_dim_is_const(g, R->dims[2], NULL))
			continue;
		why_clear(m);
		m_fail(g, m, r, "%s path: the head split's shape '%s' is not a constant: the head "
		       "count is unknown at compile time", k ? "K" : "Q", IR_VAL(g, rn->in[1])->name);
		return;
	}
}

static bool match_attention(const Graph *g, NodeId root, Match *m)
{
	if (match_attention_core(g, root, m))
		return true;
	if (!m->done)
		heads_unknown(g, root, m);
	return false;
}

/* A new node with its output inferred (the rewrite only builds valid ones). */
static ValId new_node(Graph *g, Op op, const char *name, int nin, const ValId *in)
{
	NodeId n = ir_node_new(g, op, name, nin, in, 1, NULL);
	Diag d = {0};
	int rc = ir_infer_node(g, n, &d);
	assert(rc == 0);
	(void)rc;
	return IR_NODE(g, n)->out[0];
}

static ValId reshape_to(Graph *g, const char *name, ValId x, int r, const int64_t *shape)
{
	int64_t n = r;
	ValId c = rw_const(g, "shape", DT_I64, 1, &n, shape, (size_t)r * 8);
	ValId in[2] = {x, c};
	return new_node(g, OP_Reshape, name, 2, in);
}

/* bias = sum of coef_t * term_t */
static ValId build_bias(Graph *g, const char *name, const Match *m)
{
	const AttnMatch *am = M_AS_CONST(AttnMatch, m);
	ValId sum = -1;
	for (int t = 0; t < am->nterms; t++) {
		ValId v = am->term[t];
		double c = am->coef[t];
		if (c != 1.0) {
			ValId cv = rw_const(g, "bias_coef", DT_F32, 0, NULL, &(float){(float)c}, 4);
			ValId in[2] = {v, cv};
			v = new_node(g, OP_Mul, name, 2, in);
		}
		if (sum < 0) {
			sum = v;
		} else {
			ValId in[2] = {sum, v};
			sum = new_node(g, OP_Add, name, 2, in);
		}
	}
	return sum;
}

/* The bias of a Where mask: bias + Where(c, F, 0) (or Where(c, 0, F) when c
 * keeps the score); a [B, Sk] c (wcond_bk) as Unsqueeze(c, [1, 2]). */
static ValId where_bias(Graph *g, const char *name, const AttnMatch *am, ValId bias)
{
	float fz[2] = {(float)am->wfill, 0.0f};
	ValId f = rw_const(g, "mask_fill", DT_F32, 0, NULL, &fz[0], 4);
	ValId z = rw_const(g, "mask_zero", DT_F32, 0, NULL, &fz[1], 4);
	ValId c = am->wcond;
	if (am->wcond_bk) {
		int64_t two = 2, ax[2] = {1, 2};
		ValId in[2] = {c, rw_const(g, "pad_axes", DT_I64, 1, &two, ax, sizeof ax)};
		c = new_node(g, OP_Unsqueeze, name, 2, in);
	}
	ValId w[3] = {c, am->wcond_keep ? z : f, am->wcond_keep ? f : z};
	ValId v = new_node(g, OP_Where, name, 3, w);
	if (bias < 0)
		return v;
	ValId a[2] = {bias, v};
	return new_node(g, OP_Add, name, 2, a);
}

/* The kernel's key-padding mask of a Where's [B, 1, 1, Sk] condition: bool
 * [B, Sk], true where the key is kept.  Not(Equal(M, 0)) is Cast(M, bool)
 * for every number (NaN included), which --remove-padding can trace to M. */
static ValId where_pad(Graph *g, const char *name, const AttnMatch *am)
{
	ValId c = am->wpad;
	bool keep = am->wpad_keep;
	NodeId nn = m_def(g, c, OP_Not);
	if (!keep && nn >= 0) {   /* masked where Not(x): kept where x */
		c = IR_NODE(g, nn)->in[0];
		keep = true;
	}
	NodeId eq = m_def(g, c, OP_Equal);
	double z;
	for (int k = 0; eq >= 0 && !keep && k < 2; k++) {
		ValId x = IR_NODE(g, eq)->in[k];
		if (!m_const_scalar(g, IR_NODE(g, eq)->in[1 - k], &z) || z != 0 ||
		    !m_same_shape(g, x, c) || IR_VAL(g, x)->dtype == DT_BOOL)
			continue;
		NodeId n = ir_node_new(g, OP_Cast, name, 1, &x, 1, NULL);
		ir_attr_set_int(g, n, "to", DT_BOOL);
		Diag d = {0};
		int rc = ir_infer_node(g, n, &d);
		assert(rc == 0);
		(void)rc;
		c = IR_NODE(g, n)->out[0];
		keep = true;
	}
	if (IR_VAL(g, c)->rank == 4) {
		int64_t two = 2, ax[2] = {1, 2};
		ValId in[2] = {c, rw_const(g, "pad_axes", DT_I64, 1, &two, ax, sizeof ax)};
		c = new_node(g, OP_Squeeze, name, 2, in);
	}
	if (!keep)
		c = new_node(g, OP_Not, name, 1, &c);
	if (am->wown) {   /* [Bm, Sk] to [B, Sk]: Expand(c, Concat(Shape(Q)[0:1], [1])) */
		NodeId sh = ir_node_new(g, OP_Shape, name, 1, &am->q, 1, NULL);
		ir_attr_set_int(g, sh, "start", 0);
		ir_attr_set_int(g, sh, "end", 1);
		Diag d = {0};
		int rc = ir_infer_node(g, sh, &d);
		assert(rc == 0);
		(void)rc;
		int64_t one = 1, ones[1] = {1};
		ValId cat[2] = {IR_NODE(g, sh)->out[0], rw_const(g, "pad_one", DT_I64, 1, &one, ones, 8)};
		NodeId cn = ir_node_new(g, OP_Concat, name, 2, cat, 1, NULL);
		ir_attr_set_int(g, cn, "axis", 0);
		rc = ir_infer_node(g, cn, &d);
		assert(rc == 0);
		ValId ex[2] = {c, IR_NODE(g, cn)->out[0]};
		c = new_node(g, OP_Expand, name, 2, ex);
	}
	return c;
}

static void rewrite_attention(Graph *g, const Match *m, PassCtx *pc)
{
	const AttnMatch *am = M_AS_CONST(AttnMatch, m);
	(void)pc;
	const char *name = IR_NODE(g, m->root)->name;
	ValId in[5] = {am->q, am->k, am->v, am->bias, am->mask};
	int64_t hkv = am->kv_heads;
	int64_t hd[3] = {am->heads * am->head_size, hkv * am->head_size, hkv * am->v_head_size};
	for (int k = 0; k < 3; k++) {
		int perm = am->perm[k];   /* heads-first: to [B, S, H, D] */
		if (perm) {
			NodeId t = ir_node_new(g, OP_Transpose, name, 1, &in[k], 1, NULL);
			ir_attr_set_ints(g, t, "perm", 4, perm == 1 ? P0213 : P0312);
			Diag d = {0};
			int rc = ir_infer_node(g, t, &d);
			assert(rc == 0);
			(void)rc;
			in[k] = IR_NODE(g, t)->out[0];
		}
		if (am->view3d[k])
			in[k] = reshape_to(g, name, in[k], 3, (int64_t[3]){0, 0, hd[k]});
	}
	if (in[3] < 0 && am->nterms > 0)
		in[3] = build_bias(g, name, m);
	if (am->wcond >= 0)
		in[3] = where_bias(g, name, am, in[3]);
	if (am->wpad >= 0)
		in[4] = where_pad(g, name, am);
	if (am->tm_mask >= 0) {
		/* time-major 3-D: masked_fill(mask, fill) as the bias Where(mask, fill, 0) */
		float fz[2] = {(float)am->tm_fill, 0.0f};
		ValId w[3] = {am->tm_mask, rw_const(g, "mask_fill", DT_F32, 0, NULL, &fz[0], 4),
		              rw_const(g, "mask_zero", DT_F32, 0, NULL, &fz[1], 4)};
		in[3] = new_node(g, OP_Where, name, 3, w);
	}
	int nin = in[4] >= 0 ? 5 : in[3] >= 0 ? 4 : 3;
	NodeId n;
	if (am->out4d) {
		/* 4-D time-major result: attention, then back to [Sq, B, H, Dv] */
		n = ir_node_new(g, OP_KlnAttention, name, nin, in, 1, NULL);
	} else {
		n = rw_replace(g, OP_KlnAttention, name, nin, in, am->out);
	}
	ir_attr_set_int(g, n, "num_heads", am->heads);
	ir_attr_set_int(g, n, "head_size", am->head_size);
	ir_attr_set_int(g, n, "v_head_size", am->v_head_size);
	ir_attr_set_int(g, n, "q_offset", 0);
	ir_attr_set_int(g, n, "k_offset", 0);
	ir_attr_set_int(g, n, "v_offset", 0);
	ir_attr_set_int(g, n, "nan_guard", am->nan_guard);
	ir_attr_set_int(g, n, "layout", am->layout);
	ir_attr_set_float(g, n, "scale", (float)am->scale);
	ir_attr_set_float(g, n, "mask_filter", (float)am->mask_filter);
	if (am->wreplace)
		ir_attr_set_int(g, n, "mask_replace", 1);
	if (hkv != am->heads)
		ir_attr_set_int(g, n, "kv_num_heads", hkv);
	if (hkv != am->heads && hkv > 1 && am->kv_tiled)
		ir_attr_set_int(g, n, "kv_tiled", 1);
	if (am->causal != 0) {
		ir_attr_set_int(g, n, "causal", am->causal);
		ir_attr_set_float(g, n, "causal_fill", (float)am->causal_fill);
	}
	if (am->out4d) {
		Diag d = {0};
		int rc = ir_infer_node(g, n, &d);
		assert(rc == 0);
		(void)rc;
		int64_t shape[4] = {0, 0, am->heads, am->v_head_size};
		int64_t four = 4;
		ValId c = rw_const(g, "shape", DT_I64, 1, &four, shape, 32);
		ValId rin[2] = {IR_NODE(g, n)->out[0], c};
		rw_replace(g, OP_Reshape, name, 2, rin, am->out);
	}
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("attention", OP_Softmax, AttnMatch, match_attention, rewrite_attention),
};

void pass_fuse_attention(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}

/* The graph input v is computed from through a chain of one-operand steps
 * (Cast, Unsqueeze, Reshape, Expand, Not; Sub, Mul, Where, Equal with
 * constants; at most 16), or -1: the run-time messages of the fused
 * attention name attention_mask rather than "input 4". */
static int input_origin(const Graph *g, ValId v)
{
	for (int step = 0; step < 16 && v >= 0; step++) {
		const Value *x = IR_VAL(g, v);
		if (x->kind == V_INPUT) {   /* not the input itself: the runtime knows that one */
			for (int k = 0; k < g->ninputs && step > 0; k++)
				if (g->inputs[k] == v)
					return k;
			return -1;
		}
		if (x->kind != V_NODE || x->def < 0)
			return -1;
		const Node *n = IR_NODE(g, x->def);
		bool layout = n->op == OP_Unsqueeze || n->op == OP_Reshape || n->op == OP_Squeeze ||
		              n->op == OP_Expand || n->op == OP_Cast || n->op == OP_Transpose;
		uint8_t kind = ir_opinfo[n->op].kind;
		if (!layout && kind != K_UNARY && kind != K_BINARY && n->op != OP_Where)
			return -1;
		ValId next = -1;
		int cand = 0;
		for (int k = 0; k < (layout ? 1 : n->nin); k++) {
			ValId u = n->in[k];
			if (u < 0 || IR_VAL(g, u)->kind == V_CONST)
				continue;
			next = u;
			cand++;
		}
		if (cand != 1)
			return -1;
		v = next;
	}
	return -1;
}

/* Sets mask_from / bias_from of the KlnAttention n (see ir/ops.def). */
static void mask_origin(Graph *g, NodeId n)
{
	const Node *a = IR_NODE(g, n);
	int mk = a->nin > 4 && a->in[4] >= 0 ? input_origin(g, a->in[4]) : -1;
	int bk = a->nin > 3 && a->in[3] >= 0 ? input_origin(g, a->in[3]) : -1;
	if (mk >= 0)
		ir_attr_set_int(g, n, "mask_from", mk + 1);
	if (bk >= 0)
		ir_attr_set_int(g, n, "bias_from", bk + 1);
}

/* Pass `mask-names`: every KlnAttention's mask_from / bias_from, so that
 * its run-time messages name the graph input its mask comes from.  Run
 * after the fusions (fuse-qkv and pack-tokens copy the attributes).
 *
 * requires: nothing.  preserves: everything but those attributes.
 * breaks: nothing. */
void pass_mask_names(Graph *g, PassCtx *pc)
{
	(void)pc;
	for (int i = 0; i < g->norder; i++)
		if (!IR_NODE(g, g->order[i])->dead && IR_NODE(g, g->order[i])->op == OP_KlnAttention)
			mask_origin(g, g->order[i]);
}
