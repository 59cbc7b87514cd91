/* The weights of an ONNX model by name, for text IR whose large constants
 * are printed as #hash<...> (kiln compile X.ir --weights-from=MODEL.onnx).
 * The model is loaded as for compiling it (so Constant nodes and the
 * constants of op upgrades are there under the names kiln dump prints) and
 * its constants are indexed by name in an open-addressing table. */
#include <stdlib.h>
#include <string.h>

#include "onnx_import.h"

struct OnnxWeights {
	Graph *g;
	ValId *tab;      /* -1: empty; capacity a power of two */
	uint32_t cap;
};

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

OnnxWeights *onnx_weights_open(const char *path, Diag *diag)
{
	Graph *g = onnx_load_file(path, diag);
	if (!g)
		return NULL;
	OnnxWeights *ws = calloc(1, sizeof *ws);
	uint32_t cap = 64;
	while (cap < (uint32_t)g->nvals * 2u + 2u)
		cap *= 2;
	ValId *tab = ws ? malloc(cap * sizeof *tab) : NULL;
	if (!tab) {
		free(ws);
		ir_graph_free(g);
		diag_fail(diag, "%s: out of memory", path);
		return NULL;
	}
	for (uint32_t i = 0; i < cap; i++)
		tab[i] = -1;
	for (ValId v = 0; v < g->nvals; v++) {
		const Value *x = &g->vals[v];
		if (x->kind != V_CONST || !x->data || !x->name)
			continue;
		uint32_t i = hash_name(x->name) & (cap - 1);
		while (tab[i] >= 0 && strcmp(g->vals[tab[i]].name, x->name))
			i = (i + 1) & (cap - 1);
		if (tab[i] < 0)     /* the first of a name wins (names are unique in ONNX) */
			tab[i] = v;
	}
	ws->g = g;
	ws->tab = tab;
	ws->cap = cap;
	return ws;
}

int onnx_weights_find(const OnnxWeights *ws, const char *name, OnnxWeight *w)
{
	const Graph *g = ws->g;
	for (uint32_t i = hash_name(name) & (ws->cap - 1); ws->tab[i] >= 0; i = (i + 1) & (ws->cap - 1)) {
		const Value *x = &g->vals[ws->tab[i]];
		if (strcmp(x->name, name))
			continue;
		w->name = x->name;
		w->dtype = x->dtype;
		w->rank = x->rank;
		for (int k = 0; k < x->rank; k++)
			if (!ir_dim_is_const(g, x->dims[k], &w->dims[k]))
				return 0;    /* constants have constant dims; be safe */
		w->data = x->data;
		w->nbytes = x->nbytes;
		w->hash = x->hash;
		return 1;
	}
	return 0;
}

Graph *onnx_weights_graph(OnnxWeights *ws)
{
	return ws->g;
}

void onnx_weights_close(OnnxWeights *ws)
{
	if (!ws)
		return;
	ir_graph_free(ws->g);
	free(ws->tab);
	free(ws);
}
