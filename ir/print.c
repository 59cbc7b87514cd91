/* The textual IR: printing (ir_print, ir_print_str) and Graphviz output
 * (ir_print_dot).  parse.c reads the same text back, so that
 * print(parse(print(g))) == print(g) byte for byte.
 *
 * Example:
 *
 *   graph @bert(%input_ids: i64[batch, sequence], %mask: f32[batch, sequence]) opset 17 {
 *     %w = const f32[64, 64] #hash<9c0f3a51e2d4b8c7>
 *     %c = const i64[2] dense<[0, -1]>
 *     %y = Add(%x, %w) : f32[batch, sequence, 64] @"/embeddings/Add"
 *     %a, %b = Split(%x, %s) {axis = 2} : f32[batch, 8], f32[batch, 8] @"split_0"
 *     return %y
 *   }
 *
 * Grammar (whitespace between tokens is free except that every statement
 * is on its own line; `//`, and `#` unless it begins `#hash<`, start a
 * comment running to the end of the line).  A text may hold several graphs,
 * each beginning on a line whose first word is `graph` (kiln dump
 * --print-after-all prints one per pass, under `// ----- IR after P`
 * comment headers); ir_parse_ex reads the one asked for:
 *
 *   graph    := 'graph' '@' name '(' [input {',' input}] ')' ['opset' INT] '{' NL
 *               {stmt NL} 'return' [ref {',' ref}] NL '}'
 *   input    := '%' name ':' type
 *   stmt     := const | node | assume
 *   assume   := 'assume' '[' dim ',' dim ']' '@' STRING
 *               (a dim equality a pass assumed, checked when a run starts,
 *               and the node that relied on it: ir/unify.c; printed first)
 *   const    := '%' name '=' 'const' type (dense | '#hash<' HEX16 '>')
 *   node     := [results '='] OPNAME '(' [operand {',' operand}] ')'
 *               [attrs] [':' type {',' type}] ['@' STRING]
 *   results  := '%' name {',' '%' name}
 *   operand  := ref | '_'                   (`_`: absent optional input)
 *   ref      := '%' name
 *   name     := IDENT | STRING              (IDENT: [A-Za-z0-9_.]+ ; other
 *                                            names are quoted, "onnx::Add_12")
 *   type     := '?'                         (dtype and rank unknown)
 *             | dtype '?'                   (rank unknown)
 *             | (dtype | '?') '[' [dim {',' dim}] ']'
 *   dtype    := f32 f16 bf16 f64 i8 i16 i32 i64 u8 u16 u32 u64 bool string
 *   dim      := text up to the next , or ] outside parentheses and quotes, in the
 *               form of ir_dim_str / ir_dim_parse (64, batch, s25 + s41,
 *               batch*16, a quoted symbol "batch-size"); '?' for a dim
 *               that is not set
 *   attrs    := '{' attr {',' attr} '}'
 *   attr     := IDENT '=' aval
 *   aval     := INT | FLOAT | STRING | '[' INT {',' INT} ']'
 *             | '[' FLOAT {',' FLOAT} ']' | '[' STRING {',' STRING} ']'
 *             | 'ints[]' | 'floats[]' | 'strings[]'     (empty lists)
 *             | 'dense<' dtype '[' [INT {',' INT}] ']' elems '>'
 *   dense    := 'dense<' elems '>'
 *   elems    := '[' [elem {',' elem}] ']'   (row-major, flat)
 *   elem     := INT | FLOAT | 'true' | 'false'
 *
 * Numbers: an INT has no '.', 'e', "inf" or "nan"; a FLOAT always has one
 * of them (1.0, 1e-05, -inf, nan), printed with %.9g (f32, f16, bf16) or
 * %.17g (f64) so they round-trip exactly.  STRING is double-quoted with
 * C escapes (\" \\ \n \t \r \xHH).
 *
 * Constants are printed first, in value order, and only those the body or
 * the outputs reference; constants of at most IR_PRINT_INLINE elements are
 * printed in full (dense), larger ones (and constants without data, as
 * parsed from #hash) as their 64-bit content hash (ir_hash_bytes).  Symbolic content
 * (Value.sval) is not printed: shape inference derives it.  The location
 * @"..." is the source ONNX node name.  A node a fusion created ends with a
 * comment naming the ONNX nodes it replaced, `// from: a, "/l0/Mul_1"`
 * (Node.from, names quoted as above); the parser reads it back.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* ---- small helpers ------------------------------------------------------ */

static bool is_plain_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.')
			return false;
	return true;
}

static void print_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\x%02x", c);
			else
				fputc(c, f);
		}
	}
	fputc('"', f);
}

static void print_name(FILE *f, const char *s)
{
	if (!s)
		s = "";
	if (is_plain_name(s))
		fputs(s, f);
	else
		print_string(f, s);
}

static void print_ref(FILE *f, const Graph *g, ValId v)
{
	if (v < 0 || v >= g->nvals) {
		fputc('_', f);
		return;
	}
	fputc('%', f);
	print_name(f, g->vals[v].name);
}

/* Floats always carry a '.', 'e', "inf" or "nan" so they read back as floats. */
static void print_double(FILE *f, double x, int prec)
{
	if (isnan(x)) {
		fputs("nan", f);
		return;
	}
	if (isinf(x)) {
		fputs(x < 0 ? "-inf" : "inf", f);
		return;
	}
	char buf[64];
	snprintf(buf, sizeof buf, "%.*g", prec, x);
	fputs(buf, f);
	if (!strpbrk(buf, ".e"))
		fputs(".0", f);
}

static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
	float v;
	if (exp == 0)
		v = ldexpf((float)man, -24);
	else if (exp == 31)
		v = man ? NAN : INFINITY;
	else
		v = ldexpf((float)(man | 0x400), (int)exp - 25);
	return sign ? -v : v;
}

static float bf16_to_float(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float v;
	memcpy(&v, &u, 4);
	return v;
}

/* Prints element i of a row-major buffer of dtype t. */
static void print_elem(FILE *f, DType t, const void *data, int64_t i)
{
	const unsigned char *p = (const unsigned char *)data + (size_t)i * ir_dtype_size(t);
	union { float f; double d; int8_t i8; int16_t i16; int32_t i32; int64_t i64;
	        uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64; } u;
	memcpy(&u, p, ir_dtype_size(t));
	switch (t) {
	case DT_F32: print_double(f, u.f, 9); break;
	case DT_F64: print_double(f, u.d, 17); break;
	case DT_F16: print_double(f, half_to_float(u.u16), 9); break;
	case DT_BF16: print_double(f, bf16_to_float(u.u16), 9); break;
	case DT_I8: fprintf(f, "%d", u.i8); break;
	case DT_I16: fprintf(f, "%d", u.i16); break;
	case DT_I32: fprintf(f, "%d", u.i32); break;
	case DT_I64: fprintf(f, "%lld", (long long)u.i64); break;
	case DT_U8: fprintf(f, "%u", u.u8); break;
	case DT_U16: fprintf(f, "%u", u.u16); break;
	case DT_U32: fprintf(f, "%u", u.u32); break;
	case DT_U64: fprintf(f, "%llu", (unsigned long long)u.u64); break;
	case DT_BOOL: fputs(u.u8 ? "true" : "false", f); break;
	default: fputc('?', f); break;
	}
}

static void print_elems(FILE *f, DType t, const void *data, int64_t n)
{
	fputc('[', f);
	for (int64_t i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		print_elem(f, t, data, i);
	}
	fputc(']', f);
}

static void print_dim(FILE *f, const Graph *g, DimId d)
{
	if (d < 0) {
		fputc('?', f);
		return;
	}
	char buf[256];
	int n = ir_dim_str(g, d, buf, sizeof buf);
	if (n < 0) {
		fputc('?', f);
	} else if ((size_t)n < sizeof buf) {
		fputs(buf, f);
	} else {
		char *big = malloc((size_t)n + 1);
		if (!big)
			abort();
		ir_dim_str(g, d, big, (size_t)n + 1);
		fputs(big, f);
		free(big);
	}
}

static void print_type(FILE *f, const Graph *g, const Value *v)
{
	bool dt = v->dtype != DT_UNDEF;
	if (!dt && v->rank < 0) {
		fputc('?', f);
		return;
	}
	fputs(dt ? ir_dtype_name(v->dtype) : "?", f);
	if (v->rank < 0) {
		fputc('?', f);
		return;
	}
	fputc('[', f);
	for (int i = 0; i < v->rank; i++) {
		if (i)
			fputs(", ", f);
		print_dim(f, g, v->dims[i]);
	}
	fputc(']', f);
}

/* ---- attributes ----------------------------------------------------------- */

static void print_attr(FILE *f, const Attr *a)
{
	print_name(f, a->name);
	fputs(" = ", f);
	switch (a->kind) {
	case A_INT:
		fprintf(f, "%lld", (long long)a->u.i);
		break;
	case A_FLOAT:
		print_double(f, a->u.f, 9);
		break;
	case A_STRING:
		print_string(f, a->u.s ? a->u.s : "");
		break;
	case A_INTS:
		if (!a->n) {
			fputs("ints[]", f);
			break;
		}
		fputc('[', f);
		for (int i = 0; i < a->n; i++)
			fprintf(f, "%s%lld", i ? ", " : "", (long long)a->u.ints[i]);
		fputc(']', f);
		break;
	case A_FLOATS:
		if (!a->n) {
			fputs("floats[]", f);
			break;
		}
		fputc('[', f);
		for (int i = 0; i < a->n; i++) {
			if (i)
				fputs(", ", f);
			print_double(f, a->u.floats[i], 9);
		}
		fputc(']', f);
		break;
	case A_STRINGS:
		if (!a->n) {
			fputs("strings[]", f);
			break;
		}
		fputc('[', f);
		for (int i = 0; i < a->n; i++) {
			if (i)
				fputs(", ", f);
			print_string(f, a->u.strs[i] ? a->u.strs[i] : "");
		}
		fputc(']', f);
		break;
	case A_TENSOR: {
		const TensorLit *t = a->u.t;
		fprintf(f, "dense<%s[", ir_dtype_name(t->dtype));
		int64_t numel = 1;
		for (int i = 0; i < t->rank; i++) {
			fprintf(f, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
			numel *= t->dims[i];
		}
		fputs("] ", f);
		size_t es = ir_dtype_size(t->dtype);
		if (!es || !t->data)
			numel = 0;
		else if ((size_t)numel * es > t->nbytes)
			numel = (int64_t)(t->nbytes / es);   /* malformed: print what is there */
		print_elems(f, t->dtype, t->data, numel);
		fputc('>', f);
		break;
	}
	default:
		fputs("?", f);
	}
}

/* ---- graph ---------------------------------------------------------------- */

static void print_const(FILE *f, const Graph *g, ValId id)
{
	const Value *v = &g->vals[id];
	fputs("  ", f);
	print_ref(f, g, id);
	fputs(" = const ", f);
	print_type(f, g, v);
	int64_t numel = ir_value_numel_const(g, id);
	size_t es = ir_dtype_size(v->dtype);
	if (v->data && es && numel >= 0 && numel <= IR_PRINT_INLINE &&
	    (size_t)numel * es <= v->nbytes) {
		fputs(" dense<", f);
		print_elems(f, v->dtype, v->data, numel);
		fputs(">\n", f);
	} else {
		fprintf(f, " #hash<%016llx>\n", (unsigned long long)v->hash);
	}
}

static void print_node(FILE *f, const Graph *g, const Node *n)
{
	fputs("  ", f);
	for (int k = 0; k < n->nout; k++) {
		if (k)
			fputs(", ", f);
		print_ref(f, g, n->out[k]);
	}
	if (n->nout)
		fputs(" = ", f);
	fprintf(f, "%s(", ir_opname(n->op));
	for (int i = 0; i < n->nin; i++) {
		if (i)
			fputs(", ", f);
		print_ref(f, g, n->in[i]);
	}
	fputc(')', f);
	if (n->nattrs) {
		fputs(" {", f);
		for (int i = 0; i < n->nattrs; i++) {
			if (i)
				fputs(", ", f);
			print_attr(f, &n->attrs[i]);
		}
		fputc('}', f);
	}
	if (n->nout) {
		fputs(" : ", f);
		for (int k = 0; k < n->nout; k++) {
			if (k)
				fputs(", ", f);
			print_type(f, g, &g->vals[n->out[k]]);
		}
	}
	if (n->name) {
		fputs(" @", f);
		print_string(f, n->name);
	}
	/* a fused node: the ONNX nodes it replaced, as a comment (ir/parse.c
	 * reads it back into Node.from: a dump reads back as the same graph) */
	for (int i = 0; i < n->nfrom; i++) {
		fputs(i ? ", " : "  // from: ", f);
		print_name(f, n->from[i]);
	}
	fputc('\n', f);
}

/* Constants referenced by a live node or a graph output. */
static bool *used_consts(const Graph *g)
{
	bool *used = calloc((size_t)g->nvals + 1, 1);
	if (!used)
		abort();
	for (int32_t i = 0; i < g->norder; i++) {
		const Node *n = &g->nodes[g->order[i]];
		if (n->dead)
			continue;
		for (int j = 0; j < n->nin; j++)
			if (n->in[j] >= 0 && n->in[j] < g->nvals)
				used[n->in[j]] = true;
	}
	for (int32_t i = 0; i < g->noutputs; i++)
		if (g->outputs[i] >= 0 && g->outputs[i] < g->nvals)
			used[g->outputs[i]] = true;
	return used;
}

void ir_print(FILE *f, const Graph *g)
{
	fputs("graph @", f);
	print_name(f, g->name ? g->name : "main");
	fputc('(', f);
	for (int32_t i = 0; i < g->ninputs; i++) {
		if (i)
			fputs(", ", f);
		print_ref(f, g, g->inputs[i]);
		fputs(": ", f);
		if (g->inputs[i] >= 0 && g->inputs[i] < g->nvals)
			print_type(f, g, &g->vals[g->inputs[i]]);
		else
			fputc('?', f);
	}
	fputc(')', f);
	if (g->opset)
		fprintf(f, " opset %lld", (long long)g->opset);
	fputs(" {\n", f);
	for (int32_t i = 0; i < g->nassumes; i++) {
		fputs("  assume [", f);
		print_dim(f, g, g->assumes[i].a);
		fputs(", ", f);
		print_dim(f, g, g->assumes[i].b);
		fputs("] @", f);
		print_string(f, g->assumes[i].node);
		fputc('\n', f);
	}
	bool *used = used_consts(g);
	for (ValId v = 0; v < g->nvals; v++)
		if (used[v] && g->vals[v].kind == V_CONST)
			print_const(f, g, v);
	free(used);
	for (int32_t i = 0; i < g->norder; i++) {
		const Node *n = &g->nodes[g->order[i]];
		if (!n->dead)
			print_node(f, g, n);
	}
	fputs("  return", f);
	for (int32_t i = 0; i < g->noutputs; i++) {
		fputs(i ? ", " : " ", f);
		print_ref(f, g, g->outputs[i]);
	}
	fputs("\n}\n", f);
}

char *ir_print_str(const Graph *g)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	ir_print(f, g);
	fclose(f);
	return buf;
}

/* ---- Graphviz ------------------------------------------------------------- */

/* A DOT string: quotes and backslashes escaped, newlines as \n, other
 * control bytes as the text \xHH (escaped for DOT), never raw. */
static void dot_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fputc('\\', f);
		if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\\\x%02x", c);
		else
			fputc(c, f);
	}
}

static void dot_type(FILE *f, const Graph *g, ValId v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return;
	print_type(m, g, &g->vals[v]);
	fclose(m);
	dot_escape(f, buf);
	free(buf);
}

/* One box per node (fused ops filled), an ellipse per graph input, a
 * small note per constant, edges labelled with the value's type. */
void ir_print_dot(FILE *f, const Graph *g)
{
	fputs("digraph \"", f);
	dot_escape(f, g->name);
	fputs("\" {\n  node [fontname=\"monospace\", fontsize=10];\n"
	      "  edge [fontname=\"monospace\", fontsize=8];\n", f);
	for (int32_t i = 0; i < g->ninputs; i++) {
		ValId v = g->inputs[i];
		if (v < 0 || v >= g->nvals)
			continue;
		fprintf(f, "  v%d [shape=ellipse, label=\"", v);
		dot_escape(f, g->vals[v].name);
		fputs("\"];\n", f);
	}
	bool *used = used_consts(g);
	for (ValId v = 0; v < g->nvals; v++) {
		if (!used[v] || g->vals[v].kind != V_CONST)
			continue;
		fprintf(f, "  v%d [shape=note, fontsize=8, label=\"", v);
		dot_escape(f, g->vals[v].name);
		fputs("\"];\n", f);
	}
	free(used);
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		const Node *n = &g->nodes[id];
		if (n->dead)
			continue;
		bool fused = ir_opinfo[n->op].kind == K_FUSED;
		fprintf(f, "  n%d [shape=box%s, label=\"%s\\n", id,
		        fused ? ", style=filled, fillcolor=\"#f4a261\"" : "", ir_opname(n->op));
		dot_escape(f, n->name ? n->name : "");
		fputs("\"];\n", f);
		for (int j = 0; j < n->nin; j++) {
			ValId v = n->in[j];
			if (v < 0 || v >= g->nvals)
				continue;
			const Value *val = &g->vals[v];
			if (val->kind == V_NODE && val->def >= 0)
				fprintf(f, "  n%d -> n%d [label=\"", val->def, id);
			else
				fprintf(f, "  v%d -> n%d [label=\"", v, id);
			dot_type(f, g, v);
			fputs("\"];\n", f);
		}
	}
	for (int32_t i = 0; i < g->noutputs; i++) {
		ValId v = g->outputs[i];
		if (v < 0 || v >= g->nvals)
			continue;
		fprintf(f, "  out%d [shape=doubleoctagon, label=\"", i);
		dot_escape(f, g->vals[v].name);
		fputs("\"];\n", f);
		const Value *val = &g->vals[v];
		if (val->kind == V_NODE && val->def >= 0)
			fprintf(f, "  n%d -> out%d [label=\"", val->def, i);
		else
			fprintf(f, "  v%d -> out%d [label=\"", v, i);
		dot_type(f, g, v);
		fputs("\"];\n", f);
	}
	fputs("}\n", f);
}
