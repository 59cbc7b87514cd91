/* Pass `pack-tokens` (kiln compile --remove-padding): padding-free batches.
 *
 * When the KlnAttentions of a graph take their key-padding mask from one
 * graph input M [B, S] (through Casts), the row-wise ops on [B, S, *]
 * tensors around them -- KlnGemm, KlnGemmQ (per row), KlnLayerNorm,
 * KlnSkipLayerNorm, KlnRMSNorm, KlnGelu, f32 unary ops, Add/Sub/Mul/Div of
 * such tensors (or with operands the same for every row) and the
 * attentions themselves -- run on the real tokens only:
 *
 *   x [B,S,H] --KlnPackTokens(x, M)--> [1,T,H] ... region ... [1,T,H]
 *             --KlnUnpackTokens(., cu_seqlens, M)--> [B,S,H]
 *
 * T, the number of ones of M, is a data-dependent extent ("M.tokens[0]")
 * that the first pack binds at run time (runtime/kernels_pack.c checks M:
 * 0/1, each row's ones first, else a one-line error naming the pack node,
 * whose name names M); every packed tensor is [1, T, *], so the row-wise
 * kernels run unchanged on T rows.  The attentions get cu_seqlens (the
 * first pack's second output) instead of the mask: each sequence attends
 * over its own tokens.  Values the region hands to anything else (graph
 * outputs, a Gather of [CLS], a Reshape) are unpacked, with zeros at the
 * padded positions; they keep their names.  Further entries into the
 * region (other [B,S,*] inputs) are packed with the first pack's offsets.
 *
 * Pass-time conditions (else nothing is packed and the pass says why: a
 * warning on stderr, --explain=pack_tokens for every attention): an
 * attention's mask comes from a rank-2 graph input (the first such
 * attention's mask is the one packed; attentions under another mask stay
 * as they are), its mask_filter is at most -1000 (padded keys get
 * probability 0), it has no bias, layout 0.
 *
 * requires: shapes inferred; the fusions before it (it packs fused ops).
 * preserves: graph output names, values at real positions (up to the
 *            rounding of GEMMs over fewer rows).
 * breaks: outputs at padded positions (zeros; the unpacked model gives the
 *         reference's values there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

#define PT_MAX_FILTER (-1000.0)

typedef struct Pk {
	Graph *g;
	PassCtx *pc;
	ValId M;                 /* the mask, a graph input [B, S] */
	DimId B, S;
	bool *region;            /* per node (ids below nnodes0) */
	int32_t nnodes0;
	ValId *packed;           /* per value (ids below nvals0): its packed form, or -1 */
	int32_t nvals0;
	ValId cu;                /* the first pack's offsets */
} Pk;

static bool explaining(const PassCtx *pc)
{
	return pc->opt && pc->opt->explain && !strcmp(pc->opt->explain, "pack_tokens");
}

static FILE *out_file(const PassCtx *pc)
{
	return pc->opt && pc->opt->dump ? pc->opt->dump : stdout;
}

static const char *nname(const Graph *g, NodeId n)
{
	return IR_NODE(g, n)->name ? IR_NODE(g, n)->name : "";
}

static const char *vname(const Graph *g, ValId v)
{
	return IR_VAL(g, v)->name ? IR_VAL(g, v)->name : "?";
}

/* The graph input behind v (through no-op wrappers and Casts: a 0/1 mask
 * is 0/1 in every dtype), or -1. */
static ValId mask_input(const Graph *g, ValId v)
{
	for (int k = 0; k < 16 && v >= 0; k++) {
		v = m_unwrap(g, v, NULL);
		if (IR_VAL(g, v)->kind == V_INPUT)
			return IR_VAL(g, v)->rank == 2 ? v : -1;
		NodeId c = m_def(g, v, OP_Cast);
		if (c < 0)
			return -1;
		v = IR_NODE(g, c)->in[0];
	}
	return -1;
}

/* An attention whose mask comes from a graph input, with what packing
 * needs; -1 and *why otherwise, else the mask input. */
static ValId attention_mask(const Graph *g, NodeId id, const char **why)
{
	const Node *n = IR_NODE(g, id);
	if (n->nin < 5 || n->in[4] < 0)
		return *why = "it has no key-padding mask", -1;
	ValId m = mask_input(g, n->in[4]);
	if (m < 0)
		return *why = "its mask does not come from a rank-2 graph input (through Casts)", -1;
	if (n->in[3] >= 0)
		return *why = "it has an additive bias", -1;
	if (n->nin > 5 && n->in[5] >= 0)
		return *why = "it is packed already", -1;
	if (ir_attr_int(g, id, "layout", 0) != 0)
		return *why = "it is time-major (layout 1)", -1;
	if (ir_attr_float(g, id, "mask_filter", 0) > PT_MAX_FILTER)
		return *why = "its mask_filter is above -1000 (padded keys would keep some weight)", -1;
	return m;
}

/* An f32 [B, S, *] tensor. */
static bool is_row(const Pk *p, ValId v)
{
	const Value *val = v >= 0 ? IR_VAL(p->g, v) : NULL;
	return val && val->dtype == DT_F32 && val->rank == 3 && val->dims[0] == p->B &&
	       val->dims[1] == p->S;
}

/* The same for every row: rank <= 1, or every dim but the last 1. */
static bool row_invariant(const Pk *p, ValId v)
{
	const Value *val = IR_VAL(p->g, v);
	if (val->rank < 0)
		return false;
	for (int d = 0; d + 1 < val->rank; d++)
		if (!m_dim_is(p->g, val->dims[d], 1))
			return false;
	return true;
}

/* Input k of node n is one of its rows (packed with it). */
static bool row_input(const Pk *p, const Node *n, int k)
{
	switch (n->op) {
	case OP_KlnSkipLayerNorm: return k <= 1;
	case OP_KlnRMSNorm: return k == 0 || k == 2;   /* x, skip */
	case OP_KlnAttention: return k <= 2;
	case OP_Add: case OP_Sub: case OP_Mul: case OP_Div: return is_row(p, n->in[k]);
	default: return k == 0;
	}
}

/* Node id computes each row of its outputs from the same row of its row
 * inputs only. */
static bool row_wise(const Pk *p, NodeId id)
{
	const Graph *g = p->g;
	const Node *n = IR_NODE(g, id);
	for (int k = 0; k < n->nout; k++)
		if (n->out[k] >= 0 && (IR_VAL(g, n->out[k])->nuses > 0 || ir_is_output(g, n->out[k])) &&
		    !is_row(p, n->out[k]))
			return false;
	switch (n->op) {
	case OP_KlnRMSNorm:
		return is_row(p, n->in[0]) && (n->nin < 3 || n->in[2] < 0 || is_row(p, n->in[2]));
	case OP_KlnGemmQ:
		if (ir_attr_int(g, id, "per_tensor", 0))
			return false;   /* one scale over all rows */
		/* fall through */
	case OP_KlnGemm: case OP_KlnLayerNorm: case OP_KlnGelu:
		return is_row(p, n->in[0]);
	case OP_KlnSkipLayerNorm:
		return is_row(p, n->in[0]) && is_row(p, n->in[1]);
	case OP_KlnAttention: {
		const char *why;
		return attention_mask(g, id, &why) == p->M && is_row(p, n->in[0]) && is_row(p, n->in[1]) &&
		       is_row(p, n->in[2]);
	}
	case OP_Add: case OP_Sub: case OP_Mul: case OP_Div:
		for (int k = 0; k < 2; k++)
			if (!is_row(p, n->in[k]) && !row_invariant(p, n->in[k]))
				return false;
		return is_row(p, n->in[0]) || is_row(p, n->in[1]);
	default:
		return ir_opinfo[n->op].kind == K_UNARY && n->op != OP_Cast && is_row(p, n->in[0]);
	}
}

static const char *unique(Graph *g, const char *base, const char *suffix)
{
	char buf[512];
	snprintf(buf, sizeof buf, "%.400s%s", base, suffix);
	return ir_unique_name(g, buf);
}

/* The packed form of boundary value x (made once). */
static ValId pack(Pk *p, ValId x)
{
	if (x < p->nvals0 && p->packed[x] >= 0)
		return p->packed[x];
	Graph *g = p->g;
	char name[512];
	snprintf(name, sizeof name, "remove_padding(%.400s)", vname(g, p->M));
	const char *outs[2] = {unique(g, vname(g, x), ".packed"), NULL};
	NodeId n;
	if (p->cu < 0) {
		outs[1] = unique(g, vname(g, p->M), ".cu_seqlens");
		ValId in[2] = {x, p->M};
		n = ir_node_new(g, OP_KlnPackTokens, name, 2, in, 2, outs);
		p->cu = IR_NODE(g, n)->out[1];
	} else {
		ValId in[3] = {x, p->M, p->cu};
		n = ir_node_new(g, OP_KlnPackTokens, name, 3, in, 1, outs);
	}
	ValId y = IR_NODE(g, n)->out[0];
	if (x < p->nvals0)
		p->packed[x] = y;
	return y;
}

/* Region outputs read outside the region (or graph outputs): an unpack
 * takes over the name and those uses. */
static void unpack(Pk *p, ValId v)
{
	Graph *g = p->g;
	const char *name = vname(g, v);
	IR_VAL(g, v)->name = unique(g, name, ".packed");
	ValId in[3] = {v, p->cu, p->M};
	char nn[512];
	snprintf(nn, sizeof nn, "remove_padding(%.400s)/unpack", vname(g, p->M));
	NodeId u = ir_node_new(g, OP_KlnUnpackTokens, nn, 3, in, 1, &name);
	ValId y = IR_NODE(g, u)->out[0];
	int nu = IR_VAL(g, v)->nuses;
	Use *uses = malloc(sizeof(Use) * (size_t)(nu + 1));
	if (!uses)
		abort();
	memcpy(uses, IR_VAL(g, v)->uses, sizeof(Use) * (size_t)nu);
	for (int i = 0; i < nu; i++)
		if (uses[i].node != u && (uses[i].node >= p->nnodes0 || !p->region[uses[i].node]))
			ir_set_input(g, uses[i].node, uses[i].idx, y);
	free(uses);
	for (int k = 0; k < g->noutputs; k++)
		if (g->outputs[k] == v)
			g->outputs[k] = y;
	ir_outputs_changed(g);
}

/* The attention on packed tokens: cu_seqlens instead of the mask. */
static void pack_attention(Pk *p, NodeId id)
{
	Graph *g = p->g;
	const Node *a = IR_NODE(g, id);
	ValId in[6] = {a->in[0], a->in[1], a->in[2], -1, -1, p->cu};
	NodeId na = rw_replace(g, OP_KlnAttention, a->name, 6, in, a->out[0]);
	const Node *old = IR_NODE(g, id);
	for (int i = 0; i < old->nattrs; i++) {
		const Attr *at = &IR_NODE(g, id)->attrs[i];
		if (at->kind == A_INT)
			ir_attr_set_int(g, na, at->name, at->u.i);
		else if (at->kind == A_FLOAT)
			ir_attr_set_float(g, na, at->name, at->u.f);
	}
	IR_NODE(g, na)->from = IR_NODE(g, id)->from;
	IR_NODE(g, na)->nfrom = IR_NODE(g, id)->nfrom;
	ir_node_erase(g, id);
}

/* Why nothing is packed: the warning, and the explanation. */
static void nothing(const Pk *p, const char *why)
{
	const Graph *g = p->g;
	if (explaining(p->pc))
		fprintf(out_file(p->pc), "explain pack_tokens: nothing packed: %s\n", why);
	if (!p->pc->dry)
		fprintf(stderr, "kiln: %s%swarning: --remove-padding packed nothing: %s\n",
		        g->file ? g->file : "", g->file ? ": " : "", why);
}

/* The mask of the attentions (one graph input), or -1 after saying why. */
static ValId find_mask(Pk *p)
{
	Graph *g = p->g;
	ValId M = -1;
	int cand = 0;
	for (int i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		const Node *n = IR_NODE(g, id);
		if (n->dead || n->op != OP_KlnAttention)
			continue;
		cand++;
		const char *w = NULL;
		ValId m = attention_mask(g, id, &w);
		if (m < 0) {
			if (explaining(p->pc))
				fprintf(out_file(p->pc), "explain pack_tokens: KlnAttention '%s': not packed: %s\n",
				        nname(g, id), w);
			continue;
		}
		if (M >= 0 && m != M) {
			/* one mask per graph: the first attention's (the others run as they are) */
			if (explaining(p->pc))
				fprintf(out_file(p->pc), "explain pack_tokens: KlnAttention '%s': not packed: its "
				        "mask is '%s', the packed one '%s'\n", nname(g, id), vname(g, m), vname(g, M));
			continue;
		}
		M = m;
	}
	if (M < 0)
		nothing(p, cand ? "no KlnAttention takes a key-padding mask from a graph input (see "
		               "--explain=pack_tokens)" : "the graph has no fused attention (KlnAttention)");
	return M;
}

static void rewrite(Pk *p)
{
	Graph *g = p->g;
	int32_t norder = g->norder;
	NodeId *order = malloc(sizeof(NodeId) * (size_t)(norder + 1));
	if (!order)
		abort();
	memcpy(order, g->order, sizeof(NodeId) * (size_t)norder);
	/* entries: row inputs from outside the region, packed (the first
	 * pack makes the offsets) */
	for (int i = 0; i < norder; i++) {
		NodeId id = order[i];
		if (!p->region[id])
			continue;
		for (int k = 0; k < IR_NODE(g, id)->nin; k++) {
			ValId x = IR_NODE(g, id)->in[k];
			if (x < 0 || !row_input(p, IR_NODE(g, id), k))
				continue;
			NodeId d = IR_VAL(g, x)->kind == V_NODE ? IR_VAL(g, x)->def : -1;
			if (d < 0 || d >= p->nnodes0 || !p->region[d])
				ir_set_input(g, id, k, pack(p, x));
		}
	}
	/* exits: region outputs used outside it, or graph outputs */
	for (int i = 0; i < norder; i++) {
		NodeId id = order[i];
		if (!p->region[id])
			continue;
		for (int k = 0; k < IR_NODE(g, id)->nout; k++) {
			ValId v = IR_NODE(g, id)->out[k];
			if (v < 0)
				continue;
			bool out = ir_is_output(g, v);
			const Value *val = IR_VAL(g, v);
			for (int u = 0; u < val->nuses && !out; u++)
				out = val->uses[u].node >= p->nnodes0 || !p->region[val->uses[u].node];
			if (out)
				unpack(p, v);
		}
	}
	for (int i = 0; i < norder; i++)
		if (p->region[order[i]] && IR_NODE(g, order[i])->op == OP_KlnAttention)
			pack_attention(p, order[i]);
	free(order);
}

void pass_pack_tokens(Graph *g, PassCtx *pc)
{
	Pk p = {.g = g, .pc = pc, .cu = -1, .nnodes0 = g->nnodes, .nvals0 = g->nvals};
	if (pc->dry && pc->opt && pc->opt->remove_padding)
		return;   /* the dry run of --explain after the pass: it explained already */
	for (int i = 0; i < g->norder; i++)
		if (!IR_NODE(g, g->order[i])->dead && IR_NODE(g, g->order[i])->op == OP_KlnPackTokens)
			return;   /* packed already */
	if (pass_pattern_disabled(pc, "pack_tokens") && !pc->dry) {
		fprintf(stderr, "kiln: warning: --remove-padding packed nothing: pattern pack_tokens is "
		        "disabled\n");
		return;
	}
	p.M = find_mask(&p);
	if (p.M < 0)
		return;
	const Value *m = IR_VAL(g, p.M);
	p.B = m->dims[0];
	p.S = m->dims[1];
	p.region = calloc((size_t)g->nnodes + 1, sizeof(bool));
	p.packed = malloc(sizeof(ValId) * ((size_t)g->nvals + 1));
	if (!p.region || !p.packed)
		abort();
	for (int32_t v = 0; v < g->nvals; v++)
		p.packed[v] = -1;
	int nregion = 0, natt = 0;
	for (int i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		if (!IR_NODE(g, id)->dead && row_wise(&p, id)) {
			p.region[id] = true;
			nregion++;
			natt += IR_NODE(g, id)->op == OP_KlnAttention;
		}
	}
	if (!natt) {
		nothing(&p, "the attentions' inputs are not [batch, seq, *] tensors of the mask's shape");
	} else if (pc->dry) {
		if (explaining(pc))
			fprintf(out_file(pc), "explain pack_tokens: would pack %d ops (%d attentions) on the "
			        "real tokens of mask '%s'\n", nregion, natt, vname(g, p.M));
	} else {
		rewrite(&p);
		ir_toposort(g);
		ir_dce(g);
		Diag d = {0};
		if (ir_infer_shapes(g, &d))
			pass_fail(pc, "pack-tokens: %s", d.msg);
		for (int i = 0; i < nregion; i++)
			pass_count(pc, "pack_tokens");
		if (explaining(pc))
			fprintf(out_file(pc), "explain pack_tokens: packed %d ops (%d attentions) on the real "
			        "tokens of mask '%s'\n", nregion, natt, vname(g, p.M));
	}
	free(p.region);
	free(p.packed);
}
