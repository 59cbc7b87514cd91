/* Graph construction and rewriting: values, constants, nodes, attributes,
 * use lists, topological order and dead-code elimination.
 *
 * Ownership: vals, nodes, order and each Value's use list are malloc'd
 * growable arrays; names, attributes, constant data and node operand
 * arrays live in the graph's arena.  g->inputs is arena-owned and grown by
 * ir_input_new; g->outputs must be arena-owned too (ir_arena_alloc) if a
 * caller builds it.  ir_graph_free releases everything, including the dim
 * table (ir/dim.c), and calls g->release(g->release_arg) if set.
 *
 * The Graph is the first member of a private GraphImpl that also holds a
 * hash set of value names, used to keep generated names unique. */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "dim_internal.h"

typedef struct GraphImpl {
	Graph g;                   /* must stay first */
	const char **names;        /* open-addressed set of value names */
	int32_t nnames, capnames;
	int32_t gensym;            /* counter for generated names */
	/* ir_is_output's marks: outmark[v] for v < noutmark, built from
	 * g->outputs == outmark_of with noutputs == outmark_count (a new array
	 * or count rebuilds it; a write into the array must call
	 * ir_outputs_changed) */
	bool *outmark;
	int32_t noutmark, outmark_count;
	const ValId *outmark_of;
} GraphImpl;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "kiln: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

/* Grows *arr (element size sz) so that it holds at least need elements. */
static void grow(void **arr, int32_t *cap, int32_t need, size_t sz)
{
	if (need <= *cap)
		return;
	int32_t c = *cap ? *cap : 16;
	while (c < need)
		c *= 2;
	*arr = xrealloc(*arr, (size_t)c * sz);
	*cap = c;
}

/* ---- name set ------------------------------------------------------------ */

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static bool names_has(const GraphImpl *gi, const char *s)
{
	if (!gi->capnames)
		return false;
	uint32_t mask = (uint32_t)gi->capnames - 1;
	for (uint32_t i = (uint32_t)str_hash(s) & mask;; i = (i + 1) & mask) {
		if (!gi->names[i])
			return false;
		if (!strcmp(gi->names[i], s))
			return true;
	}
}

static void names_insert_raw(const char **tab, int32_t cap, const char *s)
{
	uint32_t mask = (uint32_t)cap - 1;
	uint32_t i = (uint32_t)str_hash(s) & mask;
	while (tab[i]) {
		if (!strcmp(tab[i], s))
			return;
		i = (i + 1) & mask;
	}
	tab[i] = s;
}

static void names_add(GraphImpl *gi, const char *s)
{
	if (!s)
		return;
	if ((gi->nnames + 1) * 2 > gi->capnames) {
		int32_t cap = gi->capnames ? gi->capnames * 2 : 64;
		const char **tab = calloc((size_t)cap, sizeof *tab);
		if (!tab)
			abort();
		for (int32_t i = 0; i < gi->capnames; i++)
			if (gi->names[i])
				names_insert_raw(tab, cap, gi->names[i]);
		free(gi->names);
		gi->names = tab;
		gi->capnames = cap;
	}
	names_insert_raw(gi->names, gi->capnames, s);
	gi->nnames++;   /* may overcount duplicates: only makes growth earlier */
}

/* A name not yet used in the graph: base itself if free, else base.N. */
static const char *unique_name(GraphImpl *gi, const char *base)
{
	Arena *a = gi->g.arena;
	if (!names_has(gi, base))
		return ir_arena_strdup(a, base);
	size_t n = strlen(base) + 24;
	char *buf = malloc(n);
	if (!buf)
		abort();
	for (int k = 1;; k++) {
		snprintf(buf, n, "%s.%d", base, k);
		if (!names_has(gi, buf))
			break;
	}
	const char *r = ir_arena_strdup(a, buf);
	free(buf);
	return r;
}

const char *ir_unique_name(Graph *g, const char *base)
{
	return unique_name((GraphImpl *)g, base);
}

/* ---- graph ---------------------------------------------------------------- */

Graph *ir_graph_new(const char *name)
{
	GraphImpl *gi = calloc(1, sizeof *gi);
	if (!gi)
		abort();
	Graph *g = &gi->g;
	g->arena = ir_arena_new();
	g->name = ir_arena_strdup(g->arena, name ? name : "main");
	g->dimtab = ir_dimtab_new();
	return g;
}

void ir_graph_free(Graph *g)
{
	if (!g)
		return;
	GraphImpl *gi = (GraphImpl *)g;
	for (int32_t i = 0; i < g->nvals; i++)
		free(g->vals[i].uses);
	free(g->vals);
	free(g->nodes);
	free(g->order);
	free(gi->names);
	free(gi->outmark);
	free(g->dim_alias);
	if (g->dimtab)
		ir_dimtab_free(g->dimtab);
	if (g->release)
		g->release(g->release_arg);
	ir_arena_free(g->arena);
	free(gi);
}

/* ---- values --------------------------------------------------------------- */

ValId ir_value_new(Graph *g, const char *name, ValKind kind, DType t)
{
	GraphImpl *gi = (GraphImpl *)g;
	grow((void **)&g->vals, &g->capvals, g->nvals + 1, sizeof(Value));
	ValId id = g->nvals++;
	Value *v = &g->vals[id];
	memset(v, 0, sizeof *v);
	if (name) {
		v->name = ir_arena_strdup(g->arena, name);
	} else {
		char buf[32];
		do
			snprintf(buf, sizeof buf, "t%d", gi->gensym++);
		while (names_has(gi, buf));
		v->name = ir_arena_strdup(g->arena, buf);
	}
	names_add(gi, v->name);
	v->kind = (uint8_t)kind;
	v->dtype = t;
	v->rank = -1;
	v->def = -1;
	v->def_idx = -1;
	return id;
}

void ir_value_set_shape(Graph *g, ValId vid, int rank, const DimId *dims)
{
	assert(vid >= 0 && vid < g->nvals);
	assert(rank >= -1 && rank <= IR_MAX_RANK);
	Value *v = &g->vals[vid];
	v->rank = (int8_t)rank;
	memset(v->dims, 0, sizeof v->dims);
	/* graph inputs keep the symbols they bind; other values take the
	 * representatives of assumed-equal dims (ir/unify.c) */
	for (int i = 0; i < rank; i++)
		v->dims[i] = v->kind == V_INPUT ? dims[i] : ir_dim_canon(g, dims[i]);
}

void ir_value_set_sval(Graph *g, ValId vid, int n, const DimId *elems)
{
	assert(vid >= 0 && vid < g->nvals);
	Value *v = &g->vals[vid];
	if (!elems || n < 0) {
		v->sval = NULL;
		v->nsval = 0;
		return;
	}
	/* never NULL for a known (possibly empty) content */
	DimId *s = ir_arena_alloc(g->arena, (size_t)(n ? n : 1) * sizeof(DimId), _Alignof(DimId));
	for (int i = 0; i < n; i++)
		s[i] = ir_dim_canon(g, elems[i]);
	v->sval = s;
	v->nsval = n;
}

ValId ir_input_new(Graph *g, const char *name, DType t, int rank, const DimId *dims)
{
	ValId id = ir_value_new(g, name, V_INPUT, t);
	if (rank >= 0)
		ir_value_set_shape(g, id, rank, dims);
	/* the array (arena-owned: never freed) doubles when full, its room
	 * 4, 8, 16, ... (only here does it grow): a copy per input took 800 MB
	 * for a model of 20,000 inputs */
	int32_t n = g->ninputs;
	if (n == 0 || (n >= 4 && !(n & (n - 1)))) {
		ValId *in = ir_arena_alloc(g->arena, (size_t)(n ? 2 * n : 4) * sizeof(ValId), _Alignof(ValId));
		if (n)
			memcpy(in, g->inputs, (size_t)n * sizeof(ValId));
		g->inputs = in;
	}
	g->inputs[n] = id;
	g->ninputs = n + 1;
	return id;
}

/* Content hash of constants: FNV-1a over 64-bit words in four lanes, then
 * the tail bytes, then the lanes folded.  Word-wise because weights run to
 * hundreds of megabytes (byte-wise FNV took seconds on BERT-base). */
uint64_t ir_hash_bytes(const void *data, size_t n)
{
	const unsigned char *p = data;
	const uint64_t prime = 1099511628211ULL;
	uint64_t h[4] = {1469598103934665603ULL, 0x9e3779b97f4a7c15ULL, 0xc2b2ae3d27d4eb4fULL,
	                 0x165667b19e3779f9ULL};
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int k = 0; k < 4; k++) {
			uint64_t w;
			memcpy(&w, p + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * prime;
		}
	for (; i < n; i++)
		h[0] = (h[0] ^ p[i]) * prime;
	uint64_t r = h[0];
	for (int k = 1; k < 4; k++)
		r = (r ^ (h[k] >> 29) ^ h[k]) * prime;
	return (r ^ n) * prime;
}

ValId ir_const_new(Graph *g, const char *name, DType t, int rank, const int64_t *dims,
                   const void *data, size_t nbytes, bool borrow)
{
	assert(rank >= 0 && rank <= IR_MAX_RANK);
	ValId id = ir_value_new(g, name, V_CONST, t);
	DimId d[IR_MAX_RANK];
	for (int i = 0; i < rank; i++)
		d[i] = ir_dim_const(g, dims[i]);
	ir_value_set_shape(g, id, rank, d);
	Value *v = &g->vals[id];
	v->nbytes = nbytes;
	if (data) {
		if (borrow) {
			v->data = data;
		} else {
			void *p = ir_arena_alloc(g->arena, nbytes, 64);
			if (nbytes)
				memcpy(p, data, nbytes);
			v->data = p;
		}
		v->hash = ir_hash_bytes(data, nbytes);
	}
	ir_const_derive_sval(g, id);   /* for shape arithmetic */
	return id;
}

void ir_const_derive_sval(Graph *g, ValId v)
{
	const Value *x = IR_VAL(g, v);
	int64_t numel = ir_value_numel_const(g, v);
	if (!x->data || (x->dtype != DT_I64 && x->dtype != DT_I32) || numel < 0 || numel > 64 ||
	    (size_t)numel * ir_dtype_size(x->dtype) > x->nbytes)
		return;
	DimId s[64];
	for (int64_t i = 0; i < numel; i++) {
		int64_t e;
		if (x->dtype == DT_I64) {
			memcpy(&e, (const char *)x->data + i * 8, 8);
		} else {
			int32_t e32;
			memcpy(&e32, (const char *)x->data + i * 4, 4);
			e = e32;
		}
		s[i] = ir_dim_const(g, e);
	}
	ir_value_set_sval(g, v, (int)numel, s);
}

ValId ir_const_scalar_i64(Graph *g, const char *name, int64_t v)
{
	return ir_const_new(g, name, DT_I64, 0, NULL, &v, sizeof v, false);
}

ValId ir_const_scalar_f32(Graph *g, const char *name, float v)
{
	return ir_const_new(g, name, DT_F32, 0, NULL, &v, sizeof v, false);
}

int64_t ir_value_numel_const(const Graph *g, ValId vid)
{
	if (vid < 0 || vid >= g->nvals)
		return -1;
	const Value *v = &g->vals[vid];
	if (v->rank < 0)
		return -1;
	int64_t n = 1;
	for (int i = 0; i < v->rank; i++) {
		int64_t c;
		if (!ir_dim_is_const(g, v->dims[i], &c) || c < 0)
			return -1;
		n *= c;
	}
	return n;
}

ValId ir_value_find(const Graph *g, const char *name)
{
	if (!name)
		return -1;
	for (int32_t i = 0; i < g->nvals; i++)
		if (g->vals[i].name && !strcmp(g->vals[i].name, name))
			return i;
	return -1;
}

/* ---- use lists ------------------------------------------------------------ */

static void use_add(Graph *g, ValId vid, NodeId n, int idx)
{
	if (vid < 0)
		return;
	Value *v = &g->vals[vid];
	grow((void **)&v->uses, &v->capuses, v->nuses + 1, sizeof(Use));
	v->uses[v->nuses++] = (Use){ n, idx };
}

static void use_remove(Graph *g, ValId vid, NodeId n, int idx)
{
	if (vid < 0)
		return;
	Value *v = &g->vals[vid];
	for (int32_t i = 0; i < v->nuses; i++) {
		if (v->uses[i].node == n && v->uses[i].idx == idx) {
			/* keep order: passes may rely on uses in insertion order */
			memmove(&v->uses[i], &v->uses[i + 1], (size_t)(v->nuses - i - 1) * sizeof(Use));
			v->nuses--;
			return;
		}
	}
	assert(!"use list out of sync");
}

/* ---- nodes ---------------------------------------------------------------- */

NodeId ir_node_new(Graph *g, Op op, const char *name, int nin, const ValId *in, int nout,
                   const char **outnames)
{
	assert(op >= 0 && op < OP_COUNT);
	assert(nin >= 0 && nout >= 0);
	GraphImpl *gi = (GraphImpl *)g;
	grow((void **)&g->nodes, &g->capnodes, g->nnodes + 1, sizeof(Node));
	NodeId id = g->nnodes++;
	Node *n = &g->nodes[id];
	memset(n, 0, sizeof *n);
	n->op = op;
	n->name = ir_arena_strdup(g->arena, name);
	n->nin = nin;
	n->in = ir_arena_alloc(g->arena, (size_t)(nin ? nin : 1) * sizeof(ValId), _Alignof(ValId));
	n->nout = nout;
	n->out = ir_arena_alloc(g->arena, (size_t)(nout ? nout : 1) * sizeof(ValId), _Alignof(ValId));
	for (int i = 0; i < nin; i++) {
		ValId v = in ? in[i] : -1;
		assert(v >= -1 && v < g->nvals);
		n->in[i] = v;
		use_add(g, v, id, i);
	}
	for (int k = 0; k < nout; k++) {
		const char *oname = outnames ? outnames[k] : NULL;
		ValId v;
		if (oname) {
			v = ir_value_new(g, oname, V_NODE, DT_UNDEF);
		} else if (name && *name) {
			size_t len = strlen(name) + 16;
			char *buf = malloc(len);
			if (!buf)
				abort();
			snprintf(buf, len, "%s:%d", name, k);
			const char *u = unique_name(gi, buf);
			free(buf);
			v = ir_value_new(g, u, V_NODE, DT_UNDEF);
		} else {
			v = ir_value_new(g, NULL, V_NODE, DT_UNDEF);
		}
		n = &g->nodes[id];
		g->vals[v].def = id;
		g->vals[v].def_idx = k;
		n->out[k] = v;
	}
	grow((void **)&g->order, &g->caporder, g->norder + 1, sizeof(NodeId));
	g->order[g->norder++] = id;
	return id;
}

void ir_set_input(Graph *g, NodeId nid, int idx, ValId v)
{
	assert(nid >= 0 && nid < g->nnodes);
	Node *n = &g->nodes[nid];
	assert(idx >= 0 && idx < n->nin);
	assert(v >= -1 && v < g->nvals);
	if (n->in[idx] == v)
		return;
	if (!n->dead) {
		use_remove(g, n->in[idx], nid, idx);
		use_add(g, v, nid, idx);
	}
	n->in[idx] = v;
}

void ir_replace_all_uses(Graph *g, ValId from, ValId to)
{
	assert(from >= 0 && from < g->nvals);
	assert(to >= -1 && to < g->nvals);
	if (from == to)
		return;
	Value *f = &g->vals[from];
	for (int32_t i = 0; i < f->nuses; i++) {
		Use u = f->uses[i];
		g->nodes[u.node].in[u.idx] = to;
		use_add(g, to, u.node, u.idx);
		f = &g->vals[from];   /* use_add may not move vals, but be safe */
	}
	f->nuses = 0;
	if (ir_is_output(g, from)) {
		for (int32_t i = 0; i < g->noutputs; i++)
			if (g->outputs[i] == from)
				g->outputs[i] = to;
		ir_outputs_changed(g);
	}
}

/* A search of the outputs per query took a minute in cse and cleanup for a
 * model of 100,000 outputs; the marks make it O(1) until they change. */
bool ir_is_output(const Graph *g, ValId v)
{
	GraphImpl *gi = (GraphImpl *)(uintptr_t)g;   /* the marks are a cache */
	if (!gi->outmark || gi->outmark_of != g->outputs || gi->outmark_count != g->noutputs ||
	    v >= gi->noutmark) {
		free(gi->outmark);
		gi->noutmark = g->nvals + 1;
		gi->outmark = calloc((size_t)gi->noutmark, sizeof(bool));
		if (!gi->outmark)
			abort();
		for (int32_t i = 0; i < g->noutputs; i++)
			if (g->outputs[i] >= 0 && g->outputs[i] < gi->noutmark)
				gi->outmark[g->outputs[i]] = true;
		gi->outmark_of = g->outputs;
		gi->outmark_count = g->noutputs;
	}
	bool is = v >= 0 && v < gi->noutmark && gi->outmark[v];
#ifndef NDEBUG
	/* debug builds (the sanitizer suite): the marks are the array's, for
	 * graphs small enough to search */
	if (g->noutputs <= 1024) {
		bool found = false;
		for (int32_t i = 0; i < g->noutputs; i++)
			found |= g->outputs[i] == v;
		assert(found == is && "g->outputs written without ir_outputs_changed");
	}
#endif
	return is;
}

void ir_outputs_changed(Graph *g)
{
	GraphImpl *gi = (GraphImpl *)g;
	free(gi->outmark);
	gi->outmark = NULL;
}

void ir_node_erase(Graph *g, NodeId nid)
{
	assert(nid >= 0 && nid < g->nnodes);
	Node *n = &g->nodes[nid];
	if (n->dead)
		return;
	for (int i = 0; i < n->nin; i++)
		use_remove(g, n->in[i], nid, i);
	n->dead = true;
}

/* ---- order ---------------------------------------------------------------- */

/* Binary min-heap of node ids keyed by their position in the old order. */
typedef struct Heap { NodeId *a; int n; const int32_t *key; } Heap;

static void heap_push(Heap *h, NodeId x)
{
	int i = h->n++;
	h->a[i] = x;
	while (i > 0) {
		int p = (i - 1) / 2;
		if (h->key[h->a[p]] <= h->key[h->a[i]])
			break;
		NodeId t = h->a[p]; h->a[p] = h->a[i]; h->a[i] = t;
		i = p;
	}
}

static NodeId heap_pop(Heap *h)
{
	NodeId top = h->a[0];
	h->a[0] = h->a[--h->n];
	int i = 0;
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->key[h->a[l]] < h->key[h->a[m]])
			m = l;
		if (r < h->n && h->key[h->a[r]] < h->key[h->a[m]])
			m = r;
		if (m == i)
			break;
		NodeId t = h->a[m]; h->a[m] = h->a[i]; h->a[i] = t;
		i = m;
	}
	return top;
}

/* Kahn's algorithm; among ready nodes the one earliest in the current
 * order goes first, so an already sorted order is unchanged.  Nodes on a
 * cycle (a bug elsewhere) are appended in their old order so nothing is
 * lost; ir_verify then reports the use before definition. */
void ir_toposort(Graph *g)
{
	int32_t nn = g->nnodes;
	if (!nn) {
		g->norder = 0;
		return;
	}
	int32_t *key = malloc((size_t)nn * sizeof *key);
	int32_t *indeg = calloc((size_t)nn, sizeof *indeg);
	NodeId *heap = malloc((size_t)nn * sizeof *heap);
	NodeId *out = malloc((size_t)nn * sizeof *out);
	bool *placed = calloc((size_t)nn, sizeof *placed);
	if (!key || !indeg || !heap || !out || !placed)
		abort();
	/* key: position in the old order; nodes missing from it go after */
	for (int32_t i = 0; i < nn; i++)
		key[i] = INT32_MAX / 2 + i;
	for (int32_t i = g->norder - 1; i >= 0; i--)
		if (g->order[i] >= 0 && g->order[i] < nn)
			key[g->order[i]] = i;
	for (NodeId id = 0; id < nn; id++) {
		const Node *n = &g->nodes[id];
		if (n->dead)
			continue;
		for (int i = 0; i < n->nin; i++) {
			ValId v = n->in[i];
			if (v >= 0 && g->vals[v].kind == V_NODE && g->vals[v].def >= 0 &&
			    !g->nodes[g->vals[v].def].dead)
				indeg[id]++;
		}
	}
	Heap h = { heap, 0, key };
	for (NodeId id = 0; id < nn; id++)
		if (!g->nodes[id].dead && indeg[id] == 0)
			heap_push(&h, id);
	int32_t nout = 0;
	while (h.n) {
		NodeId id = heap_pop(&h);
		out[nout++] = id;
		placed[id] = true;
		const Node *n = &g->nodes[id];
		for (int k = 0; k < n->nout; k++) {
			const Value *v = &g->vals[n->out[k]];
			for (int32_t u = 0; u < v->nuses; u++) {
				NodeId c = v->uses[u].node;
				if (!g->nodes[c].dead && --indeg[c] == 0)
					heap_push(&h, c);
			}
		}
	}
	/* leftovers: cyclic */
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		if (id >= 0 && id < nn && !g->nodes[id].dead && !placed[id]) {
			placed[id] = true;
			out[nout++] = id;
		}
	}
	for (NodeId id = 0; id < nn; id++)
		if (!g->nodes[id].dead && !placed[id])
			out[nout++] = id;
	grow((void **)&g->order, &g->caporder, nout, sizeof(NodeId));
	memcpy(g->order, out, (size_t)nout * sizeof(NodeId));
	g->norder = nout;
	free(key); free(indeg); free(heap); free(out); free(placed);
}

static bool node_unused(const Graph *g, const Node *n)
{
	for (int k = 0; k < n->nout; k++) {
		ValId v = n->out[k];
		if (g->vals[v].nuses > 0 || ir_is_output(g, v))
			return false;
	}
	return true;
}

/* Walks the order backwards so a chain of dead nodes goes in one sweep;
 * repeats until nothing changes (order may not be topological). */
void ir_dce(Graph *g)
{
	bool changed = true;
	while (changed) {
		changed = false;
		for (int32_t i = g->norder - 1; i >= 0; i--) {
			NodeId id = g->order[i];
			if (g->nodes[id].dead || !node_unused(g, &g->nodes[id]))
				continue;
			ir_node_erase(g, id);
			changed = true;
		}
	}
	/* compact the order */
	int32_t j = 0;
	for (int32_t i = 0; i < g->norder; i++)
		if (!g->nodes[g->order[i]].dead)
			g->order[j++] = g->order[i];
	g->norder = j;
}

/* ---- attributes ----------------------------------------------------------- */

Attr *ir_attr_add(Graph *g, NodeId nid, const char *name, AttrKind kind)
{
	assert(nid >= 0 && nid < g->nnodes && name);
	Node *n = &g->nodes[nid];
	for (int32_t i = 0; i < n->nattrs; i++) {
		if (!strcmp(n->attrs[i].name, name)) {
			Attr *a = &n->attrs[i];
			const char *nm = a->name;
			memset(a, 0, sizeof *a);
			a->name = nm;
			a->kind = (uint8_t)kind;
			return a;
		}
	}
	/* attribute arrays are small: copy into a fresh arena block */
	Attr *na = ir_arena_alloc(g->arena, (size_t)(n->nattrs + 1) * sizeof(Attr), _Alignof(Attr));
	if (n->nattrs)
		memcpy(na, n->attrs, (size_t)n->nattrs * sizeof(Attr));
	n->attrs = na;
	Attr *a = &na[n->nattrs++];
	a->name = ir_arena_strdup(g->arena, name);
	a->kind = (uint8_t)kind;
	return a;
}

void ir_attr_set_int(Graph *g, NodeId n, const char *name, int64_t v)
{
	ir_attr_add(g, n, name, A_INT)->u.i = v;
}

void ir_attr_set_float(Graph *g, NodeId n, const char *name, float v)
{
	ir_attr_add(g, n, name, A_FLOAT)->u.f = v;
}

void ir_attr_set_str(Graph *g, NodeId n, const char *name, const char *s)
{
	ir_attr_add(g, n, name, A_STRING)->u.s = ir_arena_strdup(g->arena, s ? s : "");
}

void ir_attr_set_ints(Graph *g, NodeId n, const char *name, int cnt, const int64_t *v)
{
	int64_t *p = ir_arena_alloc(g->arena, (size_t)(cnt > 0 ? cnt : 1) * sizeof *p, 8);
	if (cnt > 0)
		memcpy(p, v, (size_t)cnt * sizeof *p);
	Attr *a = ir_attr_add(g, n, name, A_INTS);
	a->n = cnt > 0 ? cnt : 0;
	a->u.ints = p;
}

void ir_attr_set_floats(Graph *g, NodeId n, const char *name, int cnt, const float *v)
{
	float *p = ir_arena_alloc(g->arena, (size_t)(cnt > 0 ? cnt : 1) * sizeof *p, 4);
	if (cnt > 0)
		memcpy(p, v, (size_t)cnt * sizeof *p);
	Attr *a = ir_attr_add(g, n, name, A_FLOATS);
	a->n = cnt > 0 ? cnt : 0;
	a->u.floats = p;
}

void ir_attr_set_tensor(Graph *g, NodeId n, const char *name, const TensorLit *t)
{
	TensorLit *c = ir_arena_alloc(g->arena, sizeof *c, _Alignof(TensorLit));
	*c = *t;
	c->data = ir_arena_alloc(g->arena, t->nbytes, 64);
	if (t->nbytes && t->data)
		memcpy(c->data, t->data, t->nbytes);
	ir_attr_add(g, n, name, A_TENSOR)->u.t = c;
}

const Attr *ir_attr_get(const Graph *g, NodeId nid, const char *name)
{
	if (nid < 0 || nid >= g->nnodes || !name)
		return NULL;
	const Node *n = &g->nodes[nid];
	for (int32_t i = 0; i < n->nattrs; i++)
		if (!strcmp(n->attrs[i].name, name))
			return &n->attrs[i];
	return NULL;
}

int64_t ir_attr_int(const Graph *g, NodeId n, const char *name, int64_t dflt)
{
	const Attr *a = ir_attr_get(g, n, name);
	return a && a->kind == A_INT ? a->u.i : dflt;
}

float ir_attr_float(const Graph *g, NodeId n, const char *name, float dflt)
{
	const Attr *a = ir_attr_get(g, n, name);
	if (!a)
		return dflt;
	if (a->kind == A_FLOAT)
		return a->u.f;
	if (a->kind == A_INT)
		return (float)a->u.i;
	return dflt;
}

const char *ir_attr_str(const Graph *g, NodeId n, const char *name, const char *dflt)
{
	const Attr *a = ir_attr_get(g, n, name);
	return a && a->kind == A_STRING ? a->u.s : dflt;
}

const int64_t *ir_attr_ints(const Graph *g, NodeId n, const char *name, int *cnt)
{
	const Attr *a = ir_attr_get(g, n, name);
	if (!a || a->kind != A_INTS)
		return NULL;
	if (cnt)
		*cnt = a->n;
	return a->u.ints;
}

const float *ir_attr_floats(const Graph *g, NodeId n, const char *name, int *cnt)
{
	const Attr *a = ir_attr_get(g, n, name);
	if (!a || a->kind != A_FLOATS)
		return NULL;
	if (cnt)
		*cnt = a->n;
	return a->u.floats;
}
