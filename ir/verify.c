/* The IR verifier: structural and type consistency of a graph.
 *
 * Checks, in g->order:
 *   - every live node is in the order exactly once, dead ones are skipped;
 *   - arity per ir_opinfo; the first min_in inputs are present;
 *   - every input is a graph input, a constant, or an output of a live node
 *     earlier in the order (use before definition is an error);
 *   - outputs point back at their node, no value is defined twice (by id
 *     or by name), graph outputs are defined;
 *   - use lists match the live nodes' inputs;
 *   - dtypes, where known: same-type operands of elementwise ops,
 *     comparisons give bool, And/Or/Xor/Not take and give bool, Where's
 *     condition is bool;
 *   - the op's schema (ops.def, schema.h): no unknown attributes, each of
 *     its kind and with a value kiln implements, required ones present;
 *     input and output dtypes among those the op runs on, the same where
 *     the schema's type variable is the same; inputs that must be absent
 *     or constant false are (Dropout's training_mode);
 *   - shapes, where ranks are known: broadcast-compatible operands of
 *     elementwise ops where dims are constant, MatMul inner dims equal when
 *     both are constant.
 * The first problem is reported as "[file: ]node 'NAME' (Op): message",
 * values named as the model names them (no % sigil, see vname). */
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "schema.h"

typedef struct Ver {
	const Graph *g;
	Diag *d;
	const char *file;
	NodeId *where;    /* the node of the first problem (ir_verify_where) */
} Ver;

static const char *prefix(const Ver *v)
{
	return v->file ? v->file : "";
}

static const char *sep(const Ver *v)
{
	return v->file ? ": " : "";
}

/* A value's name in an error: as the model wrote it (an ONNX tensor name
 * is what its user knows), without the text IR's % sigil; every message
 * below quotes it as '%s'. */
static const char *vname(const Graph *g, ValId v)
{
	return v >= 0 && v < g->nvals && g->vals[v].name ? g->vals[v].name : "?";
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int node_fail(const Ver *v, NodeId id, const char *fmt, ...)
{
	char msg[700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	const Node *n = &v->g->nodes[id];
	if (v->where && (!v->d || !v->d->failed) && *v->where < 0)
		*v->where = id;
	if (n->name)
		return diag_fail(v->d, "%s%snode '%s' (%s): %s", prefix(v), sep(v), n->name,
		                 ir_opname(n->op), msg);
	return diag_fail(v->d, "%s%snode #%d (%s): %s", prefix(v), sep(v), id, ir_opname(n->op), msg);
}

/* ---- arity and definitions ------------------------------------------------ */

static int check_arity(const Ver *v, NodeId id)
{
	const Node *n = &v->g->nodes[id];
	const OpInfo *oi = &ir_opinfo[n->op];
	if (n->nin < oi->min_in || (oi->max_in >= 0 && n->nin > oi->max_in)) {
		if (oi->max_in < 0)
			return node_fail(v, id, "has %d inputs, expects at least %d", n->nin, oi->min_in);
		if (oi->min_in == oi->max_in)
			return node_fail(v, id, "has %d inputs, expects %d", n->nin, oi->min_in);
		return node_fail(v, id, "has %d inputs, expects %d to %d", n->nin, oi->min_in, oi->max_in);
	}
	if (n->nout < oi->min_out || (oi->max_out >= 0 && n->nout > oi->max_out)) {
		if (oi->max_out < 0)
			return node_fail(v, id, "has %d outputs, expects at least %d", n->nout, oi->min_out);
		if (oi->min_out == oi->max_out)
			return node_fail(v, id, "has %d outputs, expects %d", n->nout, oi->min_out);
		return node_fail(v, id, "has %d outputs, expects %d to %d", n->nout, oi->min_out, oi->max_out);
	}
	for (int i = 0; i < oi->min_in && i < n->nin; i++)
		if (n->in[i] < 0)
			return node_fail(v, id, "required input %d is absent", i);
	return 0;
}

static int check_inputs_defined(const Ver *v, NodeId id, const bool *defined)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	for (int i = 0; i < n->nin; i++) {
		ValId x = n->in[i];
		if (x < -1 || x >= g->nvals)
			return node_fail(v, id, "input %d is not a value (id %d)", i, x);
		if (x < 0 || defined[x])
			continue;
		const Value *val = &g->vals[x];
		if (val->kind == V_NODE && val->def >= 0 && val->def < g->nnodes && g->nodes[val->def].dead)
			return node_fail(v, id, "input %d '%s' is produced by an erased node", i, vname(g, x));
		if (val->kind == V_INPUT)
			return node_fail(v, id, "input %d '%s' is not a graph input", i, vname(g, x));
		return node_fail(v, id, "input %d '%s' is not defined before use", i, vname(g, x));
	}
	return 0;
}

static int check_outputs(const Ver *v, NodeId id, bool *defined)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	for (int k = 0; k < n->nout; k++) {
		ValId x = n->out[k];
		if (x < 0 || x >= g->nvals)
			return node_fail(v, id, "output %d is not a value (id %d)", k, x);
		const Value *val = &g->vals[x];
		if (defined[x])
			return node_fail(v, id, "output %d '%s' is defined twice", k, vname(g, x));
		if (val->kind != V_NODE || val->def != id || val->def_idx != k)
			return node_fail(v, id, "output %d '%s' does not point back at its node", k, vname(g, x));
		defined[x] = true;
	}
	return 0;
}

/* ---- dtypes ------------------------------------------------------------------ */

static DType dt(const Graph *g, ValId x)
{
	return x >= 0 ? g->vals[x].dtype : DT_UNDEF;
}

static bool is_cmp(Op op)
{
	return op == OP_Equal || op == OP_Less || op == OP_LessOrEqual || op == OP_Greater ||
	       op == OP_GreaterOrEqual;
}

static bool is_logic(Op op)
{
	return op == OP_And || op == OP_Or || op == OP_Xor;
}

static int want_bool(const Ver *v, NodeId id, ValId x, const char *what, int idx)
{
	DType t = dt(v->g, x);
	if (t != DT_UNDEF && t != DT_BOOL)
		return node_fail(v, id, "%s %d '%s' is %s, expected bool", what, idx, vname(v->g, x),
		                 ir_dtype_name(t));
	return 0;
}

static int same_dtype(const Ver *v, NodeId id, int i, int j)
{
	const Node *n = &v->g->nodes[id];
	DType a = dt(v->g, n->in[i]), b = dt(v->g, n->in[j]);
	if (a != DT_UNDEF && b != DT_UNDEF && a != b)
		return node_fail(v, id, "input %d '%s' is %s but input %d '%s' is %s", i,
		                 vname(v->g, n->in[i]), ir_dtype_name(a), j, vname(v->g, n->in[j]),
		                 ir_dtype_name(b));
	return 0;
}

static int check_dtypes(const Ver *v, NodeId id)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	Op op = n->op;
	const OpInfo *oi = &ir_opinfo[op];
	if (op == OP_Not || is_logic(op)) {
		for (int i = 0; i < n->nin; i++)
			if (want_bool(v, id, n->in[i], "input", i))
				return -1;
		return want_bool(v, id, n->out[0], "output", 0);
	}
	if (is_cmp(op)) {
		if (same_dtype(v, id, 0, 1))
			return -1;
		return want_bool(v, id, n->out[0], "output", 0);
	}
	if (op == OP_Where) {
		if (want_bool(v, id, n->in[0], "input", 0) || same_dtype(v, id, 1, 2))
			return -1;
		DType a = dt(g, n->in[1]), o = dt(g, n->out[0]);
		if (a != DT_UNDEF && o != DT_UNDEF && a != o)
			return node_fail(v, id, "output is %s but the selected inputs are %s",
			                 ir_dtype_name(o), ir_dtype_name(a));
		return 0;
	}
	/* arithmetic elementwise: operands and result share a dtype (Pow may mix) */
	if ((oi->kind == K_BINARY && op != OP_Pow) || oi->kind == K_VARIADIC) {
		for (int i = 1; i < n->nin; i++)
			if (same_dtype(v, id, 0, i))
				return -1;
		DType a = dt(g, n->in[0]), o = dt(g, n->out[0]);
		if (a != DT_UNDEF && o != DT_UNDEF && a != o)
			return node_fail(v, id, "output is %s but the inputs are %s", ir_dtype_name(o),
			                 ir_dtype_name(a));
	}
	return 0;
}

/* ---- the op schema (ops.def) ------------------------------------------------------ */

/* Every attribute is one the op has, of its kind, with a value kiln
 * implements; required ones are present. */
static int check_attrs(const Ver *v, NodeId id)
{
	const Node *n = &v->g->nodes[id];
	const IrOpSchema *s = ir_schema(n->op);
	for (int i = 0; i < n->nattrs; i++) {
		const Attr *a = &n->attrs[i];
		const IrAttrSchema *as = ir_schema_attr(n->op, a->name);
		char why[300];
		if (!as)
			return node_fail(v, id, "unknown attribute '%s' (see kiln ops %s)", a->name ? a->name : "?",
			                 ir_opname(n->op));
		if (ir_schema_attr_ok(as, a, why, sizeof why))
			return node_fail(v, id, "attribute '%s' %s", a->name, why);
	}
	for (int i = 0; i < s->nattrs; i++)
		if (s->attrs[i].required && !ir_attr_get(v->g, id, s->attrs[i].name))
			return node_fail(v, id, "required attribute '%s' is missing", s->attrs[i].name);
	return 0;
}

/* The schema entry of input or output k (the variadic one repeats). */
static const IrIoSchema *io_at(const IrIoSchema *io, int cnt, int k)
{
	return k < cnt ? &io[k] : &io[cnt - 1];
}

/* Is the constant all zero bytes (false, 0, +0.0)? */
static bool const_zero(const Value *x)
{
	if (x->kind != V_CONST || !x->data)
		return false;
	for (size_t b = 0; b < x->nbytes; b++)
		if (((const unsigned char *)x->data)[b])
			return false;
	return true;
}

/* Training-mode Dropout with a constant ratio of 0 drops nothing: the
 * output is the input and the mask all true, as in inference. */
static bool dropout_keeps_all(const Graph *g, const Node *n)
{
	return n->op == OP_Dropout && n->nin > 1 && n->in[1] >= 0 && const_zero(&g->vals[n->in[1]]);
}

/* The first value seen of each type variable of a node. */
typedef struct TvFirst {
	DType t;
	const char *what;
	int k;
	ValId x;
} TvFirst;

/* One input or output against its schema entry: a dtype of its type
 * variable's set, the same dtype as the first value of that variable. */
static int check_io_dtype(const Ver *v, NodeId id, const IrIoSchema *io, const char *what, int k,
                          ValId x, TvFirst *first)
{
	const Graph *g = v->g;
	const IrOpSchema *s = ir_schema(g->nodes[id].op);
	DType t = dt(g, x);
	if (t == DT_UNDEF)
		return 0;
	if (!(s->types[io->tv] & TS_(t))) {
		char set[160];
		ir_typeset_str(s->types[io->tv], set, sizeof set);
		return node_fail(v, id, "%s %d '%s' (%s) is %s; kiln's %s runs on %s", what, k,
		                 vname(g, x), io->name, ir_dtype_name(t), ir_opname(g->nodes[id].op), set);
	}
	TvFirst *f = &first[io->tv];
	if (f->t == DT_UNDEF)
		*f = (TvFirst){ t, what, k, x };
	else if (f->t != t)
		return node_fail(v, id, "%s %d '%s' is %s but %s %d '%s' is %s (the same type)", what,
		                 k, vname(g, x), ir_dtype_name(t), f->what, f->k, vname(g, f->x),
		                 ir_dtype_name(f->t));
	return 0;
}

/* Inputs and outputs: dtypes the op runs on, and inputs that must be
 * absent or constant zero (what kiln does not implement otherwise). */
static int check_ios(const Ver *v, NodeId id)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	const IrOpSchema *s = ir_schema(n->op);
	TvFirst first[IR_NTYPEVARS] = {{DT_UNDEF, NULL, 0, -1}};
	for (int k = 0; k < n->nin; k++) {
		const IrIoSchema *io = io_at(s->in, s->nin, k);
		ValId x = n->in[k];
		if (x < 0)
			continue;
		if (io->kind == IO_OFF && !const_zero(&g->vals[x]) && !dropout_keeps_all(g, n))
			return node_fail(v, id, "input %d '%s' (%s) must be absent or a constant false: "
			                 "kiln does not implement the other case", k, vname(g, x), io->name);
		if (check_io_dtype(v, id, io, "input", k, x, first))
			return -1;
	}
	for (int k = 0; k < n->nout; k++)
		if (n->out[k] >= 0 &&
		    check_io_dtype(v, id, io_at(s->out, s->nout, k), "output", k, n->out[k], first))
			return -1;
	return 0;
}

/* ---- shapes --------------------------------------------------------------------- */

static bool cdim(const Graph *g, DimId d, int64_t *c)
{
	return d >= 0 && ir_dim_is_const(g, d, c);
}

/* Operands broadcast (numpy rules) where both dims are constant. */
static int check_broadcast(const Ver *v, NodeId id)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	int maxr = 0;
	for (int i = 0; i < n->nin; i++) {
		ValId x = n->in[i];
		if (x < 0 || g->vals[x].rank < 0)
			return 0;     /* unknown rank: nothing to check */
		if (g->vals[x].rank > maxr)
			maxr = g->vals[x].rank;
	}
	for (int ax = 1; ax <= maxr; ax++) {
		int64_t want = 1;
		int from = -1;
		for (int i = 0; i < n->nin; i++) {
			const Value *x = &g->vals[n->in[i]];
			int64_t c;
			if (x->rank < ax || !cdim(g, x->dims[x->rank - ax], &c) || c == 1)
				continue;
			if (from >= 0 && c != want)
				return node_fail(v, id, "inputs %d '%s' and %d '%s' do not broadcast: "
				                 "dim %lld vs %lld (axis -%d)", from, vname(g, n->in[from]), i,
				                 vname(g, n->in[i]), (long long)want, (long long)c, ax);
			want = c;
			from = i;
		}
	}
	return 0;
}

static int check_matmul(const Ver *v, NodeId id)
{
	const Graph *g = v->g;
	const Node *n = &g->nodes[id];
	const Value *a = &g->vals[n->in[0]], *b = &g->vals[n->in[1]];
	if (a->rank < 0 || b->rank < 0)
		return 0;
	if (a->rank == 0 || b->rank == 0)
		return node_fail(v, id, "MatMul operand is a scalar");
	DimId ka = a->dims[a->rank - 1], kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
	int64_t ca, cb;
	if (cdim(g, ka, &ca) && cdim(g, kb, &cb) && ca != cb)
		return node_fail(v, id, "inner dims differ: '%s' has %lld, '%s' has %lld",
		                 vname(g, n->in[0]), (long long)ca, vname(g, n->in[1]), (long long)cb);
	return 0;
}

static int check_shapes(const Ver *v, NodeId id)
{
	const Node *n = &v->g->nodes[id];
	uint8_t kind = ir_opinfo[n->op].kind;
	if (kind == K_BINARY || kind == K_VARIADIC || n->op == OP_Where)
		return check_broadcast(v, id);
	if (n->op == OP_MatMul)
		return check_matmul(v, id);
	return 0;
}

/* ---- use lists and names -------------------------------------------------------- */

static int check_uses(const Ver *v)
{
	const Graph *g = v->g;
	int32_t *cnt = calloc((size_t)g->nvals + 1, sizeof *cnt);
	if (!cnt)
		abort();
	int rc = 0;
	for (NodeId id = 0; id < g->nnodes && !rc; id++) {
		const Node *n = &g->nodes[id];
		if (n->dead)
			continue;
		for (int i = 0; i < n->nin; i++)
			if (n->in[i] >= 0)
				cnt[n->in[i]]++;
	}
	for (ValId x = 0; x < g->nvals && !rc; x++) {
		const Value *val = &g->vals[x];
		bool ok = val->nuses == cnt[x];
		for (int32_t u = 0; ok && u < val->nuses; u++) {
			Use us = val->uses[u];
			ok = us.node >= 0 && us.node < g->nnodes && !g->nodes[us.node].dead &&
			     us.idx >= 0 && us.idx < g->nodes[us.node].nin && g->nodes[us.node].in[us.idx] == x;
		}
		if (!ok)
			rc = diag_fail(v->d, "%s%svalue '%s': use list out of sync (%d uses listed, %d live)",
			               prefix(v), sep(v), vname(g, x), val->nuses, cnt[x]);
	}
	free(cnt);
	return rc;
}

static uint32_t hstr(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Names of graph inputs, used constants and live node outputs are unique
 * (the text form relies on it). */
static int check_names(const Ver *v, const bool *defined)
{
	const Graph *g = v->g;
	uint32_t cap = 64;
	while (cap < (uint32_t)g->nvals * 2)
		cap *= 2;
	ValId *tab = malloc(cap * sizeof *tab);
	if (!tab)
		abort();
	for (uint32_t i = 0; i < cap; i++)
		tab[i] = -1;
	int rc = 0;
	for (ValId x = 0; x < g->nvals && !rc; x++) {
		if (!defined[x] || !g->vals[x].name)
			continue;
		uint32_t i = hstr(g->vals[x].name) & (cap - 1);
		for (; tab[i] >= 0; i = (i + 1) & (cap - 1))
			if (!strcmp(g->vals[tab[i]].name, g->vals[x].name)) {
				rc = diag_fail(v->d, "%s%svalue name '%s' is defined twice", prefix(v), sep(v),
				               g->vals[x].name);
				break;
			}
		tab[i] = x;
	}
	free(tab);
	return rc;
}

/* ---- driver ------------------------------------------------------------------------- */

static int check_order(const Ver *v)
{
	const Graph *g = v->g;
	uint8_t *seen = calloc((size_t)g->nnodes + 1, 1);
	if (!seen)
		abort();
	int rc = 0;
	for (int32_t i = 0; i < g->norder && !rc; i++) {
		NodeId id = g->order[i];
		if (id < 0 || id >= g->nnodes)
			rc = diag_fail(v->d, "%s%sorder entry %d is not a node (id %d)", prefix(v), sep(v), i, id);
		else if (seen[id]++)
			rc = node_fail(v, id, "appears twice in the node order");
		else if ((int)g->nodes[id].op < 0 || g->nodes[id].op >= OP_COUNT)
			rc = diag_fail(v->d, "%s%snode #%d has a bad op (%d)", prefix(v), sep(v), id, g->nodes[id].op);
	}
	for (NodeId id = 0; id < g->nnodes && !rc; id++)
		if (!g->nodes[id].dead && !seen[id])
			rc = node_fail(v, id, "is live but not in the node order");
	free(seen);
	return rc;
}

int ir_verify(const Graph *g, Diag *diag)
{
	return ir_verify_where(g, diag, NULL);
}

int ir_verify_where(const Graph *g, Diag *diag, NodeId *where)
{
	Ver v = { g, diag, g->file, where };
	if (where)
		*where = -1;
	if (check_order(&v))
		return -1;
	bool *defined = calloc((size_t)g->nvals + 1, sizeof *defined);
	if (!defined)
		abort();
	int rc = 0;
	for (int32_t i = 0; i < g->ninputs && !rc; i++) {
		ValId x = g->inputs[i];
		if (x < 0 || x >= g->nvals || g->vals[x].kind != V_INPUT)
			rc = diag_fail(diag, "%s%sgraph input %d is not an input value", prefix(&v), sep(&v), i);
		else if (defined[x])
			rc = diag_fail(diag, "%s%sgraph input '%s' is listed twice", prefix(&v), sep(&v), vname(g, x));
		else
			defined[x] = true;
		for (int k = 0; !rc && k < g->vals[x].rank && k < IR_MAX_RANK; k++)
			if (!ir_dim_node(g, g->vals[x].dims[k]))
				rc = diag_fail(diag, "%s%sgraph input '%s' has an unknown dim (axis %d)", prefix(&v),
				               sep(&v), vname(g, x), k);
	}
	/* constants are defined everywhere; only referenced ones count for names */
	bool *consts = calloc((size_t)g->nvals + 1, sizeof *consts);
	if (!consts)
		abort();
	for (ValId x = 0; x < g->nvals; x++)
		if (g->vals[x].kind == V_CONST)
			consts[x] = defined[x] = true;
	for (int32_t i = 0; i < g->norder && !rc; i++) {
		NodeId id = g->order[i];
		if (g->nodes[id].dead)
			continue;
		rc = check_arity(&v, id);
		if (!rc)
			rc = check_inputs_defined(&v, id, defined);
		if (!rc)
			rc = check_outputs(&v, id, defined);
		if (!rc)
			rc = check_attrs(&v, id);
		if (!rc)
			rc = check_dtypes(&v, id);
		if (!rc)
			rc = check_ios(&v, id);
		if (!rc)
			rc = check_shapes(&v, id);
	}
	for (int32_t i = 0; i < g->noutputs && !rc; i++) {
		ValId x = g->outputs[i];
		if (x < 0 || x >= g->nvals || !defined[x])
			rc = diag_fail(diag, "%s%sgraph output %d '%s' is not defined", prefix(&v), sep(&v), i,
			               vname(g, x));
	}
	if (!rc)
		rc = check_uses(&v);
	if (!rc) {
		/* unreferenced constants may share names (they are not printed) */
		for (ValId x = 0; x < g->nvals; x++)
			if (consts[x] && g->vals[x].nuses == 0)
				defined[x] = false;
		for (int32_t i = 0; i < g->noutputs; i++)
			defined[g->outputs[i]] = true;
		rc = check_names(&v, defined);
	}
	free(consts);
	free(defined);
	return rc;
}
