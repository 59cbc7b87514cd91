/* Text IR as the input of kiln compile and kiln dump: the IR that
 * `kiln dump` prints (after any pass), perhaps edited, compiled back.
 *
 * Constants that the dump elides (`#hash<...>`) come from the ONNX model
 * the IR was dumped from (--weights-from=MODEL.onnx): by name, when the
 * model has a tensor of that name with the IR's dtype, shape and content
 * hash; otherwise (constants the passes made: folded shapes, transposed
 * Gemm weights, packed QKV weights, ...) by content hash among the
 * constants kiln's -O2 pipeline derives from that model.  The hash is the
 * printed one, so nothing is taken that the IR does not name.
 *
 * Then, before any pass: the verifier on the graph as written (its declared
 * types included), shape inference, the declared types against the
 * inferred ones (see check_declared), and the verifier again.  Every error is one line
 * "FILE:LINE:COL: message" at the statement (or type) it is about. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "onnx_import.h"

typedef struct IrInput {
	const char *path;
	Graph *g;
	IrParseOpts po;
} IrInput;

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);
	return n > m && !strcmp(s + n - m, suf);
}

/* Does the text start (after blanks and comment lines) with `graph`? */
static bool looks_like_ir(const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
			i++;
		if (i < n && (s[i] == '#' || (s[i] == '/' && i + 1 < n && s[i + 1] == '/'))) {
			while (i < n && s[i] != '\n')
				i++;
			continue;
		}
		return n - i >= 6 && !memcmp(s + i, "graph", 5) && (s[i + 5] == ' ' || s[i + 5] == '@');
	}
}

bool cli_is_text_ir(const char *path)
{
	if (has_suffix(path, ".ir") || has_suffix(path, ".kir"))
		return true;
	if (has_suffix(path, ".onnx"))
		return false;
	void *buf;
	size_t len;
	Diag d = {0};
	if (onnx_read_file(path, &buf, &len, &d))
		return false;    /* the ONNX loader will say what is wrong with it */
	bool ir = looks_like_ir(buf, len);
	free(buf);
	return ir;
}

/* "FILE:LINE:COL: msg" at pos (or "FILE: msg" when the text did not write it). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void ir_error(const IrInput *in, IrTextPos pos, const char *fmt, ...)
{
	char msg[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (pos.line > 0)
		cli_error("%s:%d:%d: %s", in->path, pos.line, pos.col, msg);
	else
		cli_error("%s: %s", in->path, msg);
}

static IrTextPos val_pos(const IrInput *in, ValId v)
{
	IrTextPos none = {0, 0};
	return v >= 0 && v < in->po.nval_pos ? in->po.val_pos[v] : none;
}

static IrTextPos node_pos(const IrInput *in, NodeId n)
{
	IrTextPos none = {0, 0};
	return n >= 0 && n < in->po.nnode_pos ? in->po.node_pos[n] : none;
}

/* ---- elided constants ------------------------------------------------------ */

/* "f32[64, 192]" of a constant of g. */
static void type_str(DType t, int rank, const int64_t *dims, char *buf, size_t n)
{
	size_t k = (size_t)snprintf(buf, n, "%s[", ir_dtype_name(t));
	for (int i = 0; i < rank && k < n; i++)
		k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

static bool const_dims(const Graph *g, ValId v, int64_t *dims)
{
	const Value *x = IR_VAL(g, v);
	for (int i = 0; i < x->rank; i++)
		if (!ir_dim_is_const(g, x->dims[i], &dims[i]))
			return false;
	return true;
}

static bool same_type(DType t, int rank, const int64_t *dims, DType t2, int rank2,
                      const int64_t *dims2)
{
	return t == t2 && rank == rank2 && !memcmp(dims, dims2, (size_t)rank * sizeof *dims);
}

/* Gives elided constant v of g the data (borrowed: the weights outlive g),
 * and the symbolic content ir_const_new gives small integer constants. */
static void fill_const(Graph *g, ValId v, const void *data)
{
	IR_VAL(g, v)->data = data;
	ir_const_derive_sval(g, v);
}

typedef struct Derived { uint64_t hash; ValId v; } Derived;

static int cmp_hash(const void *a, const void *b)
{
	uint64_t x = ((const Derived *)a)->hash, y = ((const Derived *)b)->hash;
	return x < y ? -1 : x > y;
}

/* The constants kiln's -O2 pipeline makes from the weights' model (w),
 * sorted by hash (malloc'd, count in *n); NULL when the pipeline fails. */
static Derived *derive_consts(Graph *w, int32_t *n, Diag *d)
{
	PassOptions po = {.opt_level = 2};
	if (ir_infer_shapes(w, d) || ir_verify(w, d) || pass_run_pipeline(w, &po, NULL, d))
		return NULL;
	Derived *dv = malloc(((size_t)w->nvals + 1) * sizeof *dv);
	if (!dv)
		abort();
	*n = 0;
	for (ValId v = 0; v < w->nvals; v++)
		if (w->vals[v].kind == V_CONST && w->vals[v].data)
			dv[(*n)++] = (Derived){w->vals[v].hash, v};
	qsort(dv, (size_t)*n, sizeof *dv, cmp_hash);
	return dv;
}

/* A derived constant with this hash, dtype and shape, or -1. */
static ValId find_derived(const Graph *w, const Derived *dv, int32_t n, uint64_t h, DType t,
                          int rank, const int64_t *dims, size_t nbytes)
{
	int32_t lo = 0, hi = n;
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		if (dv[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < n && dv[lo].hash == h; lo++) {
		int64_t d2[IR_MAX_RANK];
		const Value *x = &w->vals[dv[lo].v];
		if (x->nbytes == nbytes && const_dims(w, dv[lo].v, d2) &&
		    same_type(t, rank, dims, x->dtype, x->rank, d2))
			return dv[lo].v;
	}
	return -1;
}

/* Why the tensor of the same name in the model does not do (for the error
 * when no derived constant does either). */
static void name_mismatch(const OnnxWeight *w, const char *ir_type, uint64_t h, const char *model,
                          char *why, size_t n)
{
	char wt[160];
	type_str(w->dtype, w->rank, w->dims, wt, sizeof wt);
	if (strcmp(wt, ir_type))
		snprintf(why, n, "tensor '%s' of %s is %s, the IR says %s", w->name, model, wt, ir_type);
	else
		snprintf(why, n, "tensor '%s' of %s has other content (#hash<%016llx>, the IR says "
		         "#hash<%016llx>): the IR is from another model", w->name, model,
		         (unsigned long long)w->hash, (unsigned long long)h);
}

/* The one-line error for elided constant v found neither by name nor by
 * content; why: the name's mismatch or ""; failed: the passes' error. */
static void missing_const(const IrInput *in, ValId v, const char *type, const char *why,
                          const char *model, const char *failed)
{
	const Value *x = IR_VAL(in->g, v);
	unsigned long long h = (unsigned long long)x->hash;
	if (failed)
		ir_error(in, val_pos(in, v), "constant %%%s (%s #hash<%016llx>): not found by name in "
		         "%s%s%s, and kiln's passes failed on that model: %s", x->name, type, h, model,
		         why[0] ? ": " : "", why, failed);
	else if (why[0])
		ir_error(in, val_pos(in, v), "constant %%%s (%s #hash<%016llx>): %s, and kiln's -O2 "
		         "passes derive no constant of that content from it", x->name, type, h, why);
	else
		ir_error(in, val_pos(in, v), "constant %%%s (%s #hash<%016llx>): %s has no tensor of "
		         "that name, and kiln's -O2 passes derive no constant of that content from it; "
		         "write its data with dense<[...]>", x->name, type, h, model);
}

static void close_weights(void *ws)
{
	onnx_weights_close(ws);
}

static int resolve_consts(IrInput *in, const CompileOpts *o)
{
	Graph *g = in->g;
	ValId first = -1;
	for (ValId v = 0; v < g->nvals && first < 0; v++)
		if (g->vals[v].kind == V_CONST && !g->vals[v].data)
			first = v;
	if (first < 0)
		return 0;
	if (!o->weights_from) {
		ir_error(in, val_pos(in, first), "constant %%%s is elided (#hash<%016llx>): name the "
		         "model the IR was dumped from with --weights-from=MODEL.onnx, or write its "
		         "data with dense<[...]>", g->vals[first].name,
		         (unsigned long long)g->vals[first].hash);
		return -1;
	}
	Diag d = {0};
	OnnxWeights *ws = onnx_weights_open(o->weights_from, &d);
	if (!ws) {
		cli_error("%s", d.msg);
		return -1;
	}
	/* the weights live as long as the graph that borrows them */
	g->release = close_weights;
	g->release_arg = ws;
	Derived *derived = NULL;
	int32_t nderived = 0;
	bool derive_failed = false;
	int rc = 0;
	for (ValId v = first; v < g->nvals && !rc; v++) {
		Value *x = IR_VAL(g, v);
		if (x->kind != V_CONST || x->data)
			continue;
		int64_t dims[IR_MAX_RANK];
		char it[160], why[600] = "";
		if (!const_dims(g, v, dims))
			continue;    /* the parser refuses such constants */
		type_str(x->dtype, x->rank, dims, it, sizeof it);
		OnnxWeight w;
		if (onnx_weights_find(ws, x->name, &w)) {
			if (w.hash == x->hash && w.nbytes == x->nbytes &&
			    same_type(x->dtype, x->rank, dims, w.dtype, w.rank, w.dims)) {
				fill_const(g, v, w.data);
				continue;
			}
			name_mismatch(&w, it, x->hash, o->weights_from, why, sizeof why);
		}
		if (!derived && !derive_failed) {
			derived = derive_consts(onnx_weights_graph(ws), &nderived, &d);
			derive_failed = !derived;
		}
		ValId dv = derived ? find_derived(onnx_weights_graph(ws), derived, nderived, x->hash,
		                                  x->dtype, x->rank, dims, x->nbytes) : -1;
		if (dv >= 0) {
			fill_const(g, v, onnx_weights_graph(ws)->vals[dv].data);
			continue;
		}
		missing_const(in, v, it, why, o->weights_from, derive_failed ? d.msg : NULL);
		rc = -1;
	}
	free(derived);
	return rc;
}

/* ---- checks before any pass ----------------------------------------------- */

typedef struct Declared { DType dtype; int8_t rank; DimId dims[IR_MAX_RANK]; } Declared;

/* The verifier, its message placed at the node it names. */
static int verify_at(IrInput *in, const char *when)
{
	Graph *g = in->g;
	Diag d = {0};
	NodeId where;
	const char *file = g->file;
	g->file = NULL;    /* the message gets FILE:LINE:COL instead */
	int rc = ir_verify_where(g, &d, &where);
	g->file = file;
	if (rc)
		ir_error(in, node_pos(in, where), "%s%s", when, d.msg);
	return rc;
}

/* Shape inference; on failure the node is found by inferring again node by
 * node (what comes before it succeeds again, the same way). */
static int infer_at(IrInput *in)
{
	Graph *g = in->g;
	Diag d = {0};
	const char *file = g->file;
	g->file = NULL;
	int rc = ir_infer_shapes(g, &d);
	NodeId where = -1;
	for (int32_t i = 0; rc && i < g->norder && where < 0; i++) {
		Diag d2 = {0};
		if (!IR_NODE(g, g->order[i])->dead && ir_infer_node(g, g->order[i], &d2))
			where = g->order[i];
	}
	g->file = file;
	if (rc)
		ir_error(in, node_pos(in, where), "%s", d.msg);
	return rc;
}

static void decl_str(const Graph *g, DType t, int rank, const DimId *dims, char *buf, size_t n)
{
	if (rank < 0) {
		snprintf(buf, n, "%s?", t == DT_UNDEF ? "?" : ir_dtype_name(t));
		return;
	}
	size_t k = (size_t)snprintf(buf, n, "%s[", t == DT_UNDEF ? "?" : ir_dtype_name(t));
	for (int i = 0; i < rank && k < n; i++) {
		k += (size_t)snprintf(buf + k, n - k, "%s", i ? ", " : "");
		if (k < n) {
			int m = dims[i] < 0 ? snprintf(buf + k, n - k, "?") : ir_dim_str(g, dims[i], buf + k, n - k);
			k += m > 0 ? (size_t)m : 0;
		}
	}
	if (k < n)
		snprintf(buf + k, n - k, "]");
}

/* A declared type that contradicts the inferred one where both are static
 * is refused (an edit of a dtype, a rank or a constant dim is not ignored).
 * Symbolic dims are the inferred ones: a dump may declare a dim the passes
 * knew more about than the printed ops say (a Reshape whose shape became
 * "copy dim 0" is declared [s0, ...] but means [max(s0, s2), ...]); the
 * printed ops' meaning is what compiles. */
static bool dim_contradicts(const Graph *g, DimId declared, DimId inferred)
{
	int64_t a, b;
	return declared >= 0 && inferred >= 0 && ir_dim_is_const(g, declared, &a) &&
	       ir_dim_is_const(g, inferred, &b) && a != b;
}

static int check_declared(IrInput *in, const Declared *decl)
{
	Graph *g = in->g;
	for (ValId v = 0; v < g->nvals; v++) {
		const Declared *dc = &decl[v];
		const Value *x = IR_VAL(g, v);
		if (x->kind != V_NODE || x->def < 0 || IR_NODE(g, x->def)->dead)
			continue;
		bool bad = dc->dtype != DT_UNDEF && dc->dtype != x->dtype;
		if (dc->rank >= 0) {
			bad |= dc->rank != x->rank;
			for (int i = 0; !bad && i < dc->rank; i++)
				bad = dim_contradicts(g, dc->dims[i], x->dims[i]);
		}
		if (!bad)
			continue;
		char want[300], got[300];
		decl_str(g, dc->dtype, dc->rank, dc->dims, want, sizeof want);
		decl_str(g, x->dtype, x->rank, x->dims, got, sizeof got);
		const Node *n = IR_NODE(g, x->def);
		ir_error(in, val_pos(in, v), "%%%s is declared %s, but node '%s' (%s) gives %s",
		         x->name, want, n->name ? n->name : "?", ir_opname(n->op), got);
		return -1;
	}
	return 0;
}

static int check_graph(IrInput *in)
{
	Graph *g = in->g;
	Declared *decl = malloc(((size_t)g->nvals + 1) * sizeof *decl);
	if (!decl)
		abort();
	for (ValId v = 0; v < g->nvals; v++) {
		decl[v].dtype = g->vals[v].dtype;
		decl[v].rank = g->vals[v].rank;
		memcpy(decl[v].dims, g->vals[v].dims, sizeof decl[v].dims);
	}
	int rc = verify_at(in, "") || infer_at(in) || check_declared(in, decl) ||
	         verify_at(in, "after shape inference: ");
	free(decl);
	return rc ? -1 : 0;
}

Graph *cli_load_text_ir(const char *path, CompileOpts *o)
{
	IrInput in = {.path = path, .po = {.graph = o->graph, .want_pos = true}};
	void *buf;
	size_t len;
	Diag d = {0};
	if (onnx_read_file(path, &buf, &len, &d)) {
		cli_error("%s", d.msg);
		return NULL;
	}
	const char *nul = memchr(buf, 0, len);
	if (nul) {
		cli_error("%s: a NUL byte at offset %zu: not a text IR", path, (size_t)(nul - (char *)buf));
		free(buf);
		return NULL;
	}
	char *text = realloc(buf, len + 1);
	if (!text)
		abort();
	text[len] = 0;
	in.g = ir_parse_ex(text, path, &in.po, &d);
	o->ngraphs = in.po.ngraphs;
	free(text);
	if (!in.g) {
		cli_error("%s", d.msg);
		return NULL;
	}
	in.g->max_tensor_bytes = o->max_tensor_bytes;
	int rc = resolve_consts(&in, o) || check_graph(&in);
	free(in.po.node_pos);
	free(in.po.val_pos);
	if (rc) {
		ir_graph_free(in.g);
		return NULL;
	}
	return in.g;
}
