/* plan.c: where every value of the graph lives at run time.
 *
 *   graph inputs      f->in[k]
 *   constants         f->weights + voff[v]   (one blob, 64-byte aligned pieces)
 *   graph outputs     f->out[k]              (node outputs written in place; an
 *                                             output that is an input, a constant
 *                                             or a repeat is copied at the end)
 *   everything else   f->arena + f->bufoff[b], liveness [def op, last use]
 *
 * Op indices are positions in g->order; the runtime packs buffers whose
 * liveness intervals do not intersect into the same arena bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be.h"

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

static int plan_node(Be *be, int32_t i, bool *wused)
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
			wused[v] = true;
		if (be->vbuf[v] >= 0)
			be->buf_last[be->vbuf[v]] = i;
	}
	for (int k = 0; k < n->nout; k++) {
		ValId v = n->out[k];
		if (v < 0 || unused_output(be, v))
			continue;
		if (check_value(be, id, v, "output"))
			return -1;
		if (be->vout[v] < 0)
			new_buffer(be, v, i);
	}
	return 0;
}

static int layout_weights(Be *be, const bool *wused)
{
	Graph *g = be->g;
	size_t total = 0;
	for (ValId v = 0; v < g->nvals; v++) {
		if (!wused[v])
			continue;
		const Value *val = IR_VAL(g, v);
		if (!val->data && val->nbytes)
			return diag_fail(be->diag, "constant '%s' has no data (elided in text IR)",
			                 val->name ? val->name : "?");
		be->voff[v] = (int64_t)total;
		total += (val->nbytes + BE_WALIGN - 1) / BE_WALIGN * BE_WALIGN;
	}
	be->blob_bytes = total;
	be->blob = xcalloc(total, 1);
	for (ValId v = 0; v < g->nvals; v++)
		if (wused[v] && IR_VAL(g, v)->nbytes)
			memcpy(be->blob + be->voff[v], IR_VAL(g, v)->data, IR_VAL(g, v)->nbytes);
	return 0;
}

int be_plan(Be *be)
{
	Graph *g = be->g;
	int32_t nv = g->nvals;
	be->vbuf = xcalloc(nv, sizeof *be->vbuf);
	be->vout = xcalloc(nv, sizeof *be->vout);
	be->vin = xcalloc(nv, sizeof *be->vin);
	be->voff = xcalloc(nv, sizeof *be->voff);
	be->nodeidx = xcalloc(g->nnodes, sizeof *be->nodeidx);
	be->bufval = xcalloc(nv, sizeof *be->bufval);
	be->buf_first = xcalloc(nv, sizeof *be->buf_first);
	be->buf_last = xcalloc(nv, sizeof *be->buf_last);
	be->outcopy = xcalloc(g->noutputs, sizeof *be->outcopy);
	fill32(be->vbuf, nv, -1);
	fill32(be->vout, nv, -1);
	fill32(be->vin, nv, -1);
	fill32(be->nodeidx, g->nnodes, -1);
	for (ValId v = 0; v < nv; v++)
		be->voff[v] = -1;
	for (int k = g->ninputs - 1; k >= 0; k--)
		be->vin[g->inputs[k]] = k;
	bool *wused = xcalloc(nv, sizeof *wused);
	for (int k = 0; k < g->noutputs; k++) {
		ValId v = g->outputs[k];
		const Value *val = IR_VAL(g, v);
		if (val->rank < 0 || val->rank > IR_MAX_RANK || ir_dtype_size(val->dtype) == 0) {
			free(wused);
			return diag_fail(be->diag, "graph output '%s' has unknown rank or unsupported dtype",
			                 val->name ? val->name : "?");
		}
		if (val->kind == V_NODE && be->vout[v] < 0) {
			be->vout[v] = k;
		} else {
			be->outcopy[k] = true;
			if (val->kind == V_CONST)
				wused[v] = true;
		}
	}
	int rc = 0;
	for (int32_t i = 0; i < g->norder && !rc; i++)
		if (!IR_NODE(g, g->order[i])->dead)
			rc = plan_node(be, i, wused);
	if (!rc)
		rc = layout_weights(be, wused);
	free(wused);
	return rc;
}

void be_plan_free(Be *be)
{
	free(be->vbuf);
	free(be->vout);
	free(be->vin);
	free(be->voff);
	free(be->nodeidx);
	free(be->bufval);
	free(be->buf_first);
	free(be->buf_last);
	free(be->outcopy);
	free(be->blob);
}
