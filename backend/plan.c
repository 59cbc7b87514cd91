/* plan.c: where every value of the graph lives at run time.
 *
 *   graph inputs      f->in[k]
 *   constants         f->weights + voff[v]   (one blob, 64-byte aligned pieces)
 *   GEMM weights      f->weights + vpoff[v]  (the W of a KlnGemm: stored in the
 *                                             panel layout of rt.h, RT_GEMM_PANEL
 *                                             columns per panel, so the runtime
 *                                             never packs it; in rt.h's bf16 panel
 *                                             layout (pairs of rows, half the
 *                                             bytes) when opt->fpmath is
 *                                             BE_FPMATH_BF16; voff[v] too (f32,
 *                                             as is) only if something else
 *                                             reads it)
 *   lookup tables     f->weights_cold + voff[v] - blob_hot  (constants only ever
 *                                             gathered from: embeddings; the blob's
 *                                             tail from blob_hot on, which the
 *                                             runtime leaves in the file, so only
 *                                             the rows a run reads are resident)
 *   graph outputs     f->out[k]              (node outputs written in place; an
 *                                             output that is an input, a constant
 *                                             or a repeat is copied at the end)
 *   everything else   f->arena + f->bufoff[b], liveness [def op, last use]
 *   data-dependent    f->dyn[vdyn[v]]        (dims that mention a symbol bound
 *                                             during the run: rt.h; then every
 *                                             graph output is copied at the end)
 *
 * Op indices are positions in g->order; the runtime packs buffers whose
 * liveness intervals do not intersect into the same arena bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "checked.h"
#include "rt.h"
#include "rt_arena.h"

const char *be_node_desc(const Be *be, NodeId id, char *buf, size_t len)
{
	const Node *n = IR_NODE(be->g, id);
	snprintf(buf, len, "node '%s' (%s)", n->name ? n->name : "?", ir_opname(n->op));
	return buf;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) {
		fprintf(stderr, "kiln: out of memory\n");
		abort();
	}
	return p;
}

static void fill32(int32_t *a, int32_t n, int32_t v)
{
	for (int32_t i = 0; i < n; i++)
		a[i] = v;
}

/* A new arena buffer for value v, defined by the op at position i. */
static void new_buffer(Be *be, ValId v, int32_t i)
{
	int32_t b = be->nbufs++;
	be->bufval[b] = v;
	be->buf_first[b] = i;
	be->buf_last[b] = i;
	be->vbuf[v] = b;
}

bool be_value_dyn(const Be *be, ValId v)
{
	const Value *val = IR_VAL(be->g, v);
	for (int d = 0; d < val->rank; d++)
		if (ir_dim_has_dyn(be->g, val->dims[d]))
			return true;
	return false;
}

static int check_value(Be *be, NodeId id, ValId v, const char *what)
{
	Graph *g = be->g;
	const Value *val = IR_VAL(g, v);
	char nd[300];
	if (val->rank < 0 || val->rank > IR_MAX_RANK)
		return diag_fail(be->diag, "%s: %s '%s' has unknown rank (run shape inference)",
		                 be_node_desc(be, id, nd, sizeof nd), what, val->name ? val->name : "?");
	if (ir_dtype_size(val->dtype) == 0)
		return diag_fail(be->diag, "%s: %s '%s' has unsupported dtype %s",
		                 be_node_desc(be, id, nd, sizeof nd), what, val->name ? val->name : "?",
		                 ir_dtype_name(val->dtype));
	return 0;
}

/* An output nobody reads (Dropout's mask, LayerNormalization's mean) with
 * no shape gets no storage: the kernel sees data == NULL. */
static bool unused_output(const Be *be, ValId v)
{
	const Value *val = IR_VAL(be->g, v);
	return val->nuses == 0 && be->vout[v] < 0 && val->rank < 0;
}

/* How a constant is read: as is, as GEMM panels, only by row lookups. */
enum { W_RAW = 1, W_PANEL = 2, W_TABLE = 4 };

/* Input k of node n is a table rows are gathered from. */
static bool table_operand(const Node *n, int k)
{
	return (n->op == OP_Gather && k == 0) ||
	       (n->op == OP_KlnEmbedLayerNorm && (k == 1 || k == 5 || k == 7));
}

/* Input k of node n is a weight matrix the runtime's GEMM reads packed. */
static bool panel_operand(const Graph *g, const Node *n, int k)
{
	if (n->op != OP_KlnGemm || k != 1)
		return false;
	const Value *w = IR_VAL(g, n->in[1]);
	return w->kind == V_CONST && w->dtype == DT_F32 && w->rank == 2 &&
	       ir_dim_is_const(g, w->dims[0], NULL) && ir_dim_is_const(g, w->dims[1], NULL);
}

static int plan_node(Be *be, int32_t i, unsigned char *wuse)
{
	Graph *g = be->g;
	NodeId id = g->order[i];
	Node *n = IR_NODE(g, id);
	be->nodeidx[id] = i;
	for (int k = 0; k < n->nin; k++) {
		ValId v = n->in[k];
		if (v < 0)
			continue;
		if (check_value(be, id, v, "input"))
			return -1;
		if (IR_VAL(g, v)->kind == V_CONST)
			wuse[v] |= panel_operand(g, n, k) ? W_PANEL : table_operand(n, k) ? W_TABLE : W_RAW;
		if (be->vbuf[v] >= 0)
			be->buf_last[be->vbuf[v]] = i;
	}
	for (int k = 0; k < n->nout; k++) {
		ValId v = n->out[k];
		if (v < 0 || unused_output(be, v))
			continue;
		if (check_value(be, id, v, "output"))
			return -1;
		if (be->vout[v] >= 0)
			continue;
		if (be_value_dyn(be, v))
			be->vdyn[v] = be->ndyn++;
		else
			new_buffer(be, v, i);
	}
	return 0;
}

static size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* K and N of a constant matrix [K, N]. */
static void mat_dims(const Graph *g, ValId v, int64_t *K, int64_t *N)
{
	const Value *val = IR_VAL(g, v);
	if (!ir_dim_is_const(g, val->dims[0], K) || !ir_dim_is_const(g, val->dims[1], N))
		*K = *N = 0;     /* not a panel operand: see panel_operand */
}

/* Bytes of the panel-packed copy of the constant matrix v (f32 or bf16). */
static size_t panel_bytes(const Be *be, ValId v)
{
	int64_t K, N;
	mat_dims(be->g, v, &K, &N);
	if (be->opt->fpmath == BE_FPMATH_BF16)
		return (size_t)rt_gemm_panel_bf16s(K, N) * sizeof(uint16_t);
	return (size_t)rt_gemm_panel_floats(K, N) * sizeof(float);
}

/* Writes the panel-packed copy of the constant matrix v at dst. */
static void pack_panels(const Be *be, ValId v, unsigned char *dst)
{
	int64_t K, N;
	mat_dims(be->g, v, &K, &N);
	if (be->opt->fpmath == BE_FPMATH_BF16)
		rt_gemm_pack_panels_bf16(IR_VAL(be->g, v)->data, K, N, (uint16_t *)(void *)dst);
	else
		rt_gemm_pack_panels(IR_VAL(be->g, v)->data, K, N, (float *)(void *)dst);
}

/* Hot constants first, then (from blob_hot, RT_WEIGHTS_COLD_ALIGN aligned
 * when there are any) the lookup-only tables. */
static int layout_weights(Be *be, const unsigned char *wuse)
{
	Graph *g = be->g;
	size_t total = 0;
	for (int cold = 0; cold < 2; cold++) {
		if (cold)
			be->blob_hot = total;
		for (ValId v = 0; v < g->nvals; v++) {
			if (!wuse[v] || (wuse[v] == W_TABLE) != cold)
				continue;
			if (cold && total == be->blob_hot)      /* the first table */
				be->blob_hot = total = round_up(total, RT_WEIGHTS_COLD_ALIGN);
			const Value *val = IR_VAL(g, v);
			if (!val->data && val->nbytes)
				return diag_fail(be->diag, "constant '%s' has no data (elided in text IR)",
				                 val->name ? val->name : "?");
			if (wuse[v] & (W_RAW | W_TABLE)) {
				be->voff[v] = (int64_t)total;
				total += round_up(val->nbytes, BE_WALIGN);
			}
			if (wuse[v] & W_PANEL) {
				be->vpoff[v] = (int64_t)total;
				total += round_up(panel_bytes(be, v), BE_WALIGN);
			}
		}
	}
	be->blob_bytes = total;
	be->blob = xcalloc(total, 1);
	for (ValId v = 0; v < g->nvals; v++) {
		const Value *val = IR_VAL(g, v);
		if (!val->nbytes)
			continue;
		if (be->voff[v] >= 0)
			memcpy(be->blob + be->voff[v], val->data, val->nbytes);
		if (be->vpoff[v] >= 0)
			pack_panels(be, v, be->blob + be->vpoff[v]);
	}
	return 0;
}

/* Data-dependent values whose lifetimes [def, last use] do not meet share
 * a f->dyn slot (first fit, in order of definition): a slot grows to its
 * largest occupant (kiln__alloc, before the node that writes one), and
 * nothing else in it is live then.  Graph outputs live to the end (they are
 * copied after the last op).  Without this a packed BERT (--remove-padding)
 * would hold every layer's activations at once. */
static void share_dyn_slots(Be *be)
{
	Graph *g = be->g;
	if (be->ndyn < 2)
		return;
	int32_t *last = xcalloc(g->nvals, sizeof *last), *slot_last = xcalloc(be->ndyn, sizeof *slot_last);
	fill32(last, g->nvals, -1);
	for (int32_t i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		for (int k = 0; k < n->nin && !n->dead; k++)
			if (n->in[k] >= 0 && be->vdyn[n->in[k]] >= 0)
				last[n->in[k]] = i;
	}
	for (int k = 0; k < g->noutputs; k++)
		last[g->outputs[k]] = g->norder;
	int32_t nslots = 0;
	for (int32_t i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		for (int k = 0; k < n->nout && !n->dead; k++) {
			ValId v = n->out[k];
			if (v < 0 || be->vdyn[v] < 0)
				continue;
			int32_t end = last[v] > i ? last[v] : i, s = 0;
			while (s < nslots && slot_last[s] >= i)
				s++;
			if (s == nslots)
				nslots++;
			slot_last[s] = end;
			be->vdyn[v] = s;
		}
	}
	be->ndyn = nslots;
	free(last);
	free(slot_last);
}

int be_plan(Be *be)
{
	Graph *g = be->g;
	int32_t nv = g->nvals;
	be->vbuf = xcalloc(nv, sizeof *be->vbuf);
	be->vout = xcalloc(nv, sizeof *be->vout);
	be->vin = xcalloc(nv, sizeof *be->vin);
	be->voff = xcalloc(nv, sizeof *be->voff);
	be->vpoff = xcalloc(nv, sizeof *be->vpoff);
	be->nodeidx = xcalloc(g->nnodes, sizeof *be->nodeidx);
	be->bufval = xcalloc(nv, sizeof *be->bufval);
	be->buf_first = xcalloc(nv, sizeof *be->buf_first);
	be->buf_last = xcalloc(nv, sizeof *be->buf_last);
	be->outcopy = xcalloc(g->noutputs, sizeof *be->outcopy);
	be->vdyn = xcalloc(nv, sizeof *be->vdyn);
	fill32(be->vdyn, nv, -1);
	fill32(be->vbuf, nv, -1);
	fill32(be->vout, nv, -1);
	fill32(be->vin, nv, -1);
	fill32(be->nodeidx, g->nnodes, -1);
	for (ValId v = 0; v < nv; v++)
		be->voff[v] = be->vpoff[v] = -1;
	for (int k = g->ninputs - 1; k >= 0; k--)
		be->vin[g->inputs[k]] = k;
	unsigned char *wuse = xcalloc(nv, sizeof *wuse);
	for (int32_t i = 0; i < g->norder && !be->dynamic; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		for (int k = 0; k < n->nout && !n->dead; k++)
			if (n->out[k] >= 0 && IR_VAL(g, n->out[k])->rank > 0 && be_value_dyn(be, n->out[k]))
				be->dynamic = true;
	}
	for (int k = 0; k < g->noutputs; k++) {
		ValId v = g->outputs[k];
		const Value *val = IR_VAL(g, v);
		if (val->rank < 0 || val->rank > IR_MAX_RANK || ir_dtype_size(val->dtype) == 0) {
			free(wuse);
			return diag_fail(be->diag, "graph output '%s' has unknown rank or unsupported dtype",
			                 val->name ? val->name : "?");
		}
		if (val->kind == V_NODE && be->vout[v] < 0 && !be->dynamic) {
			be->vout[v] = k;
		} else {
			be->outcopy[k] = true;
			if (val->kind == V_CONST)
				wuse[v] |= W_RAW;
		}
	}
	int rc = 0;
	for (int32_t i = 0; i < g->norder && !rc; i++)
		if (!IR_NODE(g, g->order[i])->dead)
			rc = plan_node(be, i, wuse);
	for (int k = 0; k < g->noutputs && be->dynamic; k++)   /* copied after the last op */
		if (be->vbuf[g->outputs[k]] >= 0)
			be->buf_last[be->vbuf[g->outputs[k]]] = g->norder;
	if (!rc)
		share_dyn_slots(be);
	if (!rc)
		rc = layout_weights(be, wuse);
	free(wuse);
	return rc;
}

void be_plan_free(Be *be)
{
	free(be->vbuf);
	free(be->vout);
	free(be->vin);
	free(be->voff);
	free(be->vpoff);
	free(be->nodeidx);
	free(be->bufval);
	free(be->buf_first);
	free(be->buf_last);
	free(be->outcopy);
	free(be->vdyn);
	free(be->binder);
	free(be->blob);
}

/* ---- the arena at given symbol values (kiln compile --stats) -------------
 * The runtime's packing (runtime/rt_arena.h, the same code), computed here
 * from the plan so that --stats never runs the model. */

/* Bytes of buffer b's value at symvals; -1 if out of range. */
static int64_t buf_bytes(const Be *be, int32_t b, const int64_t *symvals)
{
	const Graph *g = be->g;
	const Value *val = IR_VAL(g, be->bufval[b]);
	int64_t dims[IR_MAX_RANK], bytes;
	for (int d = 0; d < val->rank; d++)
		if (!ir_dim_eval_checked(g, val->dims[d], symvals, &dims[d]))
			return -1;
	if (!ck_tensor_fits(val->rank, dims, (int64_t)ir_dtype_size(val->dtype), g->max_tensor_bytes,
	                    &bytes))
		return -1;
	return bytes;
}

int64_t be_plan_arena(const Be *be, const int64_t *symvals)
{
	int32_t nb = be->nbufs;
	int64_t *size = xcalloc((size_t)nb, sizeof *size), *off = xcalloc((size_t)nb, sizeof *off);
	int64_t *iv = xcalloc(2 * (size_t)nb, sizeof *iv), total = 0;
	rt_arena_item *ord = xcalloc((size_t)nb, sizeof *ord);
	for (int32_t b = 0; b < nb && total >= 0; b++)
		if ((size[b] = buf_bytes(be, b, symvals)) < 0)
			total = -1;
	if (total >= 0)
		total = rt_arena_assign(nb, size, be->buf_first, be->buf_last, RT_ARENA_ALIGN, off, ord, iv);
	free(size);
	free(off);
	free(iv);
	free(ord);
	return total;
}
