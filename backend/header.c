/* header.c: OUT.h, a typed C entry point for a compiled model.
 *
 *   int N_run(kiln_context *c, const int64_t *input_ids, ..., int64_t batch,
 *             int64_t sequence, float *last_hidden_state, ...);
 *
 * One pointer per input (const) and per output (caller-provided buffer of
 * the size the comment gives), one int64_t per symbol an input binds.  It
 * is a static inline wrapper over kiln_run, so it needs only kiln.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be.h"

#define MAXID 128

typedef struct Names {
	char (*s)[MAXID];
	int n;
} Names;

/* Names a parameter must not take: C keywords (C11, C23, GNU), names the
 * body uses, object-like macros of the headers it includes and of GNU modes. */
static bool is_taken(const char *s)
{
	static const char *kw[] = {"auto", "break", "case", "char", "const", "continue", "default",
		"do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int",
		"long", "register", "restrict", "return", "short", "signed", "sizeof", "static",
		"struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while",
		"bool", "true", "false", "nullptr", "alignas", "alignof", "static_assert",
		"thread_local", "typeof", "typeof_unqual", "constexpr", "asm", "linux", "unix",
		"i386", "c", "memset", "NULL", NULL};
	for (int i = 0; kw[i]; i++)
		if (!strcmp(s, kw[i]))
			return true;
	size_t n = strlen(s);
	if (n >= 2 && !strcmp(s + n - 2, "_t"))   /* int64_t, size_t, ... */
		return true;
	bool upper = true;                     /* INT64_MAX, SIZE_MAX, INT8_C, ... */
	for (const char *p = s; *p && upper; p++)
		upper = (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_';
	static const char *sfx[] = {"_MAX", "_MIN", "_C", "_WIDTH", NULL};
	for (int i = 0; upper && sfx[i]; i++) {
		size_t k = strlen(sfx[i]);
		if (n >= k && !strcmp(s + n - k, sfx[i]))
			return true;
	}
	return false;
}

static bool is_alnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool starts_kiln(const char *s)
{
	for (int i = 0; i < 4; i++)
		if ((s[i] | 0x20) != "kiln"[i])
			return false;
	return true;
}

/* A C identifier from name, unique among the names given so far: ASCII
 * letters, digits and '_' (anything else becomes '_'), prefixed with 'x'
 * when it would start with a digit or '_' (reserved) or with "kiln" (kiln.h's
 * names), suffixed with '_' when it is a keyword or a name the header needs,
 * "_2", "_3", ... when an earlier name took it.  fallback stands for a
 * name with no ASCII letter or digit ("модель", "", "?"). */
static const char *ident(Names *nm, const char *name, const char *fallback)
{
	char buf[MAXID - 12];
	size_t j = 0;
	bool any = false;   /* any ASCII letter or digit to keep */
	for (const char *p = name ? name : ""; *p && !any; p++)
		any = is_alnum_ascii(*p);
	if (!any)
		name = fallback;
	if (!(is_alnum_ascii(name[0]) && (name[0] < '0' || name[0] > '9')) ||
	    starts_kiln(name))
		buf[j++] = 'x';
	for (const char *p = name; *p && j < sizeof buf - 2; p++)
		buf[j++] = is_alnum_ascii(*p) ? *p : '_';
	buf[j] = 0;
	if (is_taken(buf))
		strcat(buf, "_");
	char *dst = nm->s[nm->n];
	snprintf(dst, MAXID, "%s", buf);
	for (int k = 2;; k++) {
		bool clash = false;
		for (int i = 0; i < nm->n && !clash; i++)
			clash = !strcmp(nm->s[i], dst);
		if (!clash)
			break;
		snprintf(dst, MAXID, "%s_%d", buf, k);
	}
	return nm->s[nm->n++];
}

/* Text from a model or a path inside a comment: printable ASCII only, at
 * most 160 bytes; anything else, '\', and a '*', '/' or '?' that could
 * make "*" "/", "/" "*" or a trigraph with its neighbours (or with the
 * comment text around it) as \xHH. */
static void comment_text(FILE *f, const char *s)
{
	char prev = 0;
	size_t i;
	if (!s)
		s = "?";
	for (i = 0; s[i] && i < 160; i++) {
		unsigned char c = (unsigned char)s[i];
		char next = s[i + 1];
		bool esc = c < 0x20 || c > 0x7e || c == '\\' ||
		           (c == '*' && (!prev || prev == '/' || !next || next == '/')) ||
		           (c == '/' && (!prev || prev == '*' || !next || next == '*')) ||
		           (c == '?' && (!prev || prev == '?' || !next || next == '?'));
		if (esc) {
			fprintf(f, "\\x%02x", c);
			prev = 'x';
		} else {
			fputc(c, f);
			prev = (char)c;
		}
	}
	if (s[i])
		fputs("...", f);
}

static const char *ctype(DType t)
{
	switch (t) {
	case DT_F32: return "float";
	case DT_F64: return "double";
	case DT_I64: return "int64_t";
	case DT_I32: return "int32_t";
	case DT_I16: return "int16_t";
	case DT_I8: return "int8_t";
	case DT_U64: return "uint64_t";
	case DT_U32: return "uint32_t";
	case DT_U16: case DT_F16: case DT_BF16: return "uint16_t";
	default: return "uint8_t";   /* u8, bool */
	}
}

/* The dim as a C expression over the symbol parameters. */
static void dim_c(const Graph *g, DimId d, const int *symparam, const Names *nm, FILE *f)
{
	const DimNode *n = ir_dim_node(g, d);
	static const char *ops[] = {[DIM_ADD] = " + ", [DIM_MUL] = " * ", [DIM_DIV] = " / ",
	                            [DIM_MOD] = " % "};
	switch ((DimKind)n->kind) {
	case DIM_CONST: fprintf(f, "%lld", (long long)n->c); return;
	case DIM_SYM:
		if (symparam[n->c] >= 0)
			fputs(nm->s[symparam[n->c]], f);
		else
			fputs("0 /* unbound */", f);
		return;
	case DIM_MAX: case DIM_MIN:
		fprintf(f, "kiln_%s_(", n->kind == DIM_MAX ? "max" : "min");
		dim_c(g, n->a, symparam, nm, f);
		fputs(", ", f);
		dim_c(g, n->b, symparam, nm, f);
		fputs(")", f);
		return;
	default:
		fputc('(', f);
		dim_c(g, n->a, symparam, nm, f);
		fputs(ops[n->kind], f);
		dim_c(g, n->b, symparam, nm, f);
		fputc(')', f);
		return;
	}
}

static void shape_comment(const Graph *g, ValId v, FILE *f)
{
	const Value *val = IR_VAL(g, v);
	fputs(" *   ", f);
	comment_text(f, val->name);
	fprintf(f, ": %s [", ir_dtype_name(val->dtype));
	for (int d = 0; d < val->rank; d++) {
		char s[256];
		ir_dim_str(g, val->dims[d], s, sizeof s);
		fputs(d ? ", " : "", f);
		comment_text(f, s);
	}
	fputs("]\n", f);
}

/* Sets tensor `arr[k]` of value v with data expression `data`. */
static void fill_tensor(const Graph *g, ValId v, const char *arr, int k, const char *data,
                        const int *symparam, const Names *nm, FILE *f)
{
	const Value *val = IR_VAL(g, v);
	fprintf(f, "\t%s[%d].dtype = (kiln_dtype)%d;\n\t%s[%d].rank = %d;\n", arr, k, val->dtype,
	        arr, k, val->rank);
	for (int d = 0; d < val->rank; d++) {
		fprintf(f, "\t%s[%d].shape[%d] = ", arr, k, d);
		dim_c(g, val->dims[d], symparam, nm, f);
		fputs(";\n", f);
	}
	fprintf(f, "\t%s[%d].data = (void *)%s;\n\t%s[%d].nbytes = (size_t)%zu", arr, k, data, arr, k,
	        ir_dtype_size(val->dtype));
	for (int d = 0; d < val->rank; d++)
		fprintf(f, " * (size_t)%s[%d].shape[%d]", arr, k, d);
	fputs(";\n", f);
}

/* sym's value in a "sym=name,..." list into out; false if not listed */
static bool renamed(const char *list, const char *sym, char *out, size_t n)
{
	size_t sl = strlen(sym);
	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, sym, sl) && p[sl] == '=') {
			snprintf(out, n, "%.*s", (int)strcspn(p + sl + 1, ","), p + sl + 1);
			return true;
		}
	return false;
}

static bool is_dynamo_sym(const char *s)
{
	if (s[0] != 's' || !s[1])
		return false;
	for (s++; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool has_word(const char *name, const char *w)
{
	char low[256];
	size_t i = 0;
	for (; name[i] && i < sizeof low - 1; i++)
		low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
	low[i] = 0;
	return strstr(low, w) != NULL;
}

/* A C parameter name for symbol sym, first seen as dim d of input `in`:
 * --dim-name's if given; for the dynamo exporter's s41, what the input
 * tells (token inputs [batch, sequence], region features [batch, regions,
 * width]), else INPUT_dimD; other symbols keep their names. */
static void sym_param_name(const Be *be, const char *sym, const Value *in, int d, char *out, size_t n)
{
	if (renamed(be->opt->dim_names, sym, out, n))
		return;
	if (!is_dynamo_sym(sym)) {
		snprintf(out, n, "%s", sym);
		return;
	}
	const char *name = in->name ? in->name : "in";
	bool tokens = has_word(name, "ids") || has_word(name, "mask") || has_word(name, "token") ||
	              has_word(name, "position");
	bool regions = has_word(name, "feat") || has_word(name, "box") || has_word(name, "visual") ||
	               has_word(name, "region") || has_word(name, "pos");
	if (d == 0 && (tokens || regions))
		snprintf(out, n, "batch");
	else if (d == 1 && tokens && in->rank == 2)
		snprintf(out, n, "sequence");
	else if (d == 1 && regions && in->rank == 3)
		snprintf(out, n, "regions");
	else
		snprintf(out, n, "%s_dim%d", name, d);
}

static void write_body(Be *be, FILE *f, Names *nm, const char *mname)
{
	Graph *g = be->g;
	int ns = ir_nsyms(g);
	int *symparam = malloc(((size_t)ns + 1) * sizeof *symparam);
	int *inparam = malloc(((size_t)g->ninputs + 1) * sizeof *inparam);
	int *outparam = malloc(((size_t)g->noutputs + 1) * sizeof *outparam);
	if (!symparam || !inparam || !outparam)
		abort();
	for (int s = 0; s < ns; s++)
		symparam[s] = -1;
	for (int k = 0; k < g->ninputs; k++) {
		inparam[k] = nm->n;
		ident(nm, IR_VAL(g, g->inputs[k])->name, "in");
	}
	for (int k = 0; k < g->ninputs; k++) {
		const Value *val = IR_VAL(g, g->inputs[k]);
		for (int d = 0; d < val->rank; d++) {
			const DimNode *dn = ir_dim_node(g, val->dims[d]);
			if (dn->kind == DIM_SYM && symparam[dn->c] < 0) {
				char pn[MAXID];
				sym_param_name(be, ir_sym_name(g, (int)dn->c), val, d, pn, sizeof pn);
				symparam[dn->c] = nm->n;
				ident(nm, pn, "dim");
			}
		}
	}
	for (int k = 0; k < g->noutputs; k++) {
		outparam[k] = nm->n;
		ident(nm, IR_VAL(g, g->outputs[k])->name, "out");
	}
	fputs("/* Inputs (row-major, dense):\n", f);
	for (int k = 0; k < g->ninputs; k++)
		shape_comment(g, g->inputs[k], f);
	fputs(" * Outputs (caller buffers of exactly these shapes):\n", f);
	for (int k = 0; k < g->noutputs; k++)
		shape_comment(g, g->outputs[k], f);
	fputs(" * Returns kiln_run's status; the message is kiln_last_error(c). */\n", f);
	fprintf(f, "static inline int %s_run(kiln_context *c", mname);
	for (int k = 0; k < g->ninputs; k++)
		fprintf(f, ",\n\t\tconst %s *%s", ctype(IR_VAL(g, g->inputs[k])->dtype), nm->s[inparam[k]]);
	for (int s = 0; s < ns; s++)
		if (symparam[s] >= 0)
			fprintf(f, ",\n\t\tint64_t %s", nm->s[symparam[s]]);
	for (int k = 0; k < g->noutputs; k++)
		fprintf(f, ",\n\t\t%s *%s", ctype(IR_VAL(g, g->outputs[k])->dtype), nm->s[outparam[k]]);
	fprintf(f, ")\n{\n\tkiln_tensor kiln_in[%d], kiln_out[%d];\n", g->ninputs + 1, g->noutputs + 1);
	fputs("\tmemset(kiln_in, 0, sizeof kiln_in);\n\tmemset(kiln_out, 0, sizeof kiln_out);\n", f);
	for (int k = 0; k < g->ninputs; k++)
		fill_tensor(g, g->inputs[k], "kiln_in", k, nm->s[inparam[k]], symparam, nm, f);
	for (int k = 0; k < g->noutputs; k++)
		fill_tensor(g, g->outputs[k], "kiln_out", k, nm->s[outparam[k]], symparam, nm, f);
	for (int s = 0; s < ns; s++)
		if (symparam[s] >= 0)
			fprintf(f, "\t(void)%s;\n", nm->s[symparam[s]]);
	fprintf(f, "\treturn kiln_run(c, kiln_in, %d, kiln_out, %d);\n}\n", g->ninputs, g->noutputs);
	free(symparam);
	free(inparam);
	free(outparam);
}

/* The entry point's prefix: --name as given (refused if the header would
 * have to change it), else OUT's base name up to its last '.' as an
 * identifier, so two models in one program never share names. */
static int model_name(Be *be, Names *nm, char *out, size_t n)
{
	const char *path = be->opt->out, *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	char stem[MAXID];
	const char *dot = strrchr(base, '.');
	size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
	snprintf(stem, sizeof stem, "%.*s", (int)(len < sizeof stem ? len : sizeof stem - 1), base);
	const char *want = be->opt->name ? be->opt->name : stem;
	snprintf(out, n, "%s", ident(nm, want, "model"));
	if (be->opt->name && strcmp(out, be->opt->name))
		return diag_fail(be->diag, "--name=%s cannot be used in the C header (a reserved or keyword name; it would become '%s')",
		                 be->opt->name, out);
	return 0;
}

int be_write_header(Be *be, const char *path)
{
	Graph *g = be->g;
	Names nm;
	nm.s = calloc((size_t)g->ninputs + g->noutputs + ir_nsyms(g) + 2, sizeof *nm.s);
	if (!nm.s)
		abort();
	nm.n = 0;
	char mname[MAXID];
	if (model_name(be, &nm, mname, sizeof mname)) {
		free(nm.s);
		return -1;
	}
	FILE *f = fopen(path, "w");
	if (!f) {
		free(nm.s);
		return diag_fail(be->diag, "cannot write %s: %s", path, strerror(errno));
	}
	const char *so = strrchr(be->opt->out, '/');
	so = so ? so + 1 : be->opt->out;
	/* names from the model and paths go into comments through comment_text only */
	fputs("/* ", f);
	comment_text(f, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
	fputs(": typed entry point of the kiln model '", f);
	comment_text(f, g->name ? g->name : "model");
	fputs("' (", f);
	comment_text(f, so);
	fputs("), generated by kiln.\n * Load the model with kiln_model_load(\"", f);
	comment_text(f, so);
	fprintf(f, "\") and create a context\n"
	        " * (kiln.h, link with libkiln), then call %s_run. */\n", mname);
	fprintf(f, "#ifndef KILN_MODEL_%s_H\n#define KILN_MODEL_%s_H\n\n", mname, mname);
	fputs("#include <stdint.h>\n#include <string.h>\n#include \"kiln.h\"\n\n", f);
	fputs("#ifndef KILN_MINMAX_\n#define KILN_MINMAX_\n"
	      "static inline int64_t kiln_max_(int64_t a, int64_t b) { return a > b ? a : b; }\n"
	      "static inline int64_t kiln_min_(int64_t a, int64_t b) { return a < b ? a : b; }\n"
	      "#endif\n\n", f);
	write_body(be, f, &nm, mname);
	fputs("\n#endif\n", f);
	free(nm.s);
	if (fclose(f) != 0)
		return diag_fail(be->diag, "cannot write %s: %s", path, strerror(errno));
	return 0;
}
