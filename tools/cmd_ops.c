/* kiln ops: print the op schema (ir/ops.def): every op's inputs and
 * outputs, the dtypes kiln runs it on, its attributes with their types,
 * defaults and the values kiln implements; then the com.microsoft ops the
 * frontend imports (frontend/onnx_contrib.def) with what each becomes; as
 * text or JSON. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "onnx_import.h"
#include "schema.h"

#define CONTRIB_DOMAIN "com.microsoft"

static const char help[] =
	"usage: kiln ops [OP...] [--json]\n"
	"\n"
	"Prints the schema of kiln's IR ops (all, or the ones named): inputs and\n"
	"outputs (name? optional, name... variadic) with their type variables, the\n"
	"dtypes of each type variable, the attributes with type, default and the\n"
	"values kiln implements.  Anything else is refused at compile time.\n"
	"Then ONNX Runtime's com.microsoft ops that kiln imports (name (refused):\n"
	"an input or output kiln refuses when present) and the ops each becomes;\n"
	"name one as com.microsoft.NAME (or NAME, when kiln's IR has no such op).\n"
	"  --json                   one JSON object {\"ops\": [...], \"contrib_ops\": [...]}\n";

/* The ONNX since-versions of the op, from the frontend's import table
 * (frontend/onnx_versions.def): "1 (drop_consumed), 6, 13": a version in
 * the IR form as is, or with the named upgrade the importer applies (or
 * "unsupported"); both formats print it (text: an "onnx" line, JSON:
 * "onnx_versions"), NULL (a fused op) prints nothing / null. */
static const struct { const char *op, *rows; } versions[] = {
#define V(ver, act) #ver ":" #act " "
#define OPV(op, ...) { #op, __VA_ARGS__ },
#include "onnx_versions.def"
#undef OPV
#undef V
};

static const char *onnx_versions(const Op op)
{
	static char buf[1024];
	for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
		if (strcmp(versions[i].op, ir_opname(op)))
			continue;
		size_t n = 0;
		buf[0] = 0;
		for (const char *p = versions[i].rows; *p && n < sizeof buf - 64;) {
			int ver = 0, len = 0;
			char act[48];
			if (sscanf(p, "%d:%47s%n", &ver, act, &len) != 2)
				break;
			n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", n ? ", " : "", ver);
			if (strcmp(act, "same"))
				n += (size_t)snprintf(buf + n, sizeof buf - n, " (%s)", act);
			p += len;
			while (*p == ' ')
				p++;
		}
		return buf;
	}
	return NULL;
}

static const char *const kind_names[] = { "unary", "binary", "variadic", "reduce", "shape",
                                          "other", "fused" };
static const char *const tv_names[IR_NTYPEVARS] = { "T", "T1", "T2", "T3" };

/* ---- text ------------------------------------------------------------------- */

static void print_ios(const char *what, const IrIoSchema *io, int n)
{
	printf("  %-8s", what);
	for (int i = 0; i < n; i++)
		printf("%s%s%s: %s%s", i ? ", " : "", io[i].name,
		       io[i].kind == IO_OPT || io[i].kind == IO_OFF ? "?" :
		       io[i].kind == IO_VAR ? "..." : io[i].kind == ONNX_IO_REFUSED ? " (refused)" : "",
		       tv_names[io[i].tv], io[i].kind == IO_OFF ? " (absent or constant false)" : "");
	printf("\n");
}

static void print_check(const IrAttrSchema *a)
{
	switch (a->check) {
	case AC_RANGE:
		if (a->lo == a->hi)
			printf(", only %lld", (long long)a->lo);
		else
			printf(", %lld to %lld", (long long)a->lo, (long long)a->hi);
		break;
	case AC_ONEOF: printf(", one of %s", a->oneof); break;
	case AC_DTYPE: printf(", a dtype"); break;
	default: break;
	}
}

/* One op: IR ops have a kind and maybe ONNX versions; contrib ops a domain
 * and what they become (NULL for the others). */
static void print_text(const IrOpSchema *s, const char *kind, const char *domain,
                       const char *versions, const char *becomes)
{
	if (domain)
		printf("%s.%s (%s)\n", domain, s->name, kind);
	else
		printf("%s (%s)\n", s->name, kind);
	print_ios("inputs", s->in, s->nin);
	print_ios("outputs", s->out, s->nout);
	for (int t = 0; t < IR_NTYPEVARS; t++) {
		char set[200];
		if (!s->types[t])
			continue;
		ir_typeset_str(s->types[t], set, sizeof set);
		printf("  %-8s%s\n", tv_names[t], set);
	}
	for (int i = 0; i < s->nattrs; i++) {
		const IrAttrSchema *a = &s->attrs[i];
		printf("  %-8s%s: %s", i ? "" : "attrs", a->name, ir_attr_kind_name((AttrKind)a->kind));
		if (a->required)
			printf(", required");
		else if (a->dflt)
			printf(" = %s", a->dflt);
		print_check(a);
		if (a->legacy)
			printf(" (legacy form)");
		printf("\n");
	}
	if (versions)
		printf("  %-8s%s\n", "onnx", versions);
	if (becomes)
		printf("  %-8s%s\n", "becomes", becomes);
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_ios(const IrIoSchema *io, int n)
{
	printf("[");
	for (int i = 0; i < n; i++) {
		printf("%s{\"name\": ", i ? ", " : "");
		cli_json_str(io[i].name);
		printf(", \"type\": \"%s\", \"optional\": %s, \"variadic\": %s, \"constant_false\": %s",
		       tv_names[io[i].tv],
		       io[i].kind == IO_OPT || io[i].kind == IO_OFF || io[i].kind == ONNX_IO_REFUSED ? "true" : "false",
		       io[i].kind == IO_VAR ? "true" : "false", io[i].kind == IO_OFF ? "true" : "false");
		if (io[i].kind == ONNX_IO_REFUSED)
			printf(", \"refused\": true");
		printf("}");
	}
	printf("]");
}

static void json_types(IrTypeSet s)
{
	char set[200];
	ir_typeset_str(s, set, sizeof set);
	printf("[");
	for (char *p = set, *e; p; p = e ? e + 1 : NULL) {
		e = strchr(p, '|');
		printf("%s\"%.*s\"", p == set ? "" : ", ", e ? (int)(e - p) : (int)strlen(p), p);
	}
	printf("]");
}

static void json_attr(const IrAttrSchema *a)
{
	printf("{\"name\": ");
	cli_json_str(a->name);
	printf(", \"type\": \"%s\", \"required\": %s, \"default\": ",
	       ir_attr_kind_name((AttrKind)a->kind), a->required ? "true" : "false");
	if (a->dflt)
		cli_json_str(a->dflt);
	else
		printf("null");
	printf(", \"legacy\": %s", a->legacy ? "true" : "false");
	if (a->check == AC_RANGE)
		printf(", \"range\": [%lld, %lld]", (long long)a->lo, (long long)a->hi);
	else if (a->check == AC_ONEOF) {
		printf(", \"one_of\": [");
		for (const char *p = a->oneof, *e; p; p = e ? e + 1 : NULL) {
			e = strchr(p, '|');
			printf("%s\"%.*s\"", p == a->oneof ? "" : ", ", e ? (int)(e - p) : (int)strlen(p), p);
		}
		printf("]");
	} else if (a->check == AC_DTYPE)
		printf(", \"dtype\": true");
	printf("}");
}

/* As print_text; a contrib op has "domain" and "becomes" and no
 * "onnx_versions". */
static void print_json(const IrOpSchema *s, const char *kind, const char *domain,
                       const char *versions, const char *becomes, bool first)
{
	printf("%s\n  {\"name\": ", first ? "" : ",");
	cli_json_str(s->name);
	if (domain) {
		printf(", \"domain\": ");
		cli_json_str(domain);
	}
	printf(", \"kind\": \"%s\", \"inputs\": ", kind);
	json_ios(s->in, s->nin);
	printf(", \"outputs\": ");
	json_ios(s->out, s->nout);
	printf(", \"types\": {");
	for (int t = 0, n = 0; t < IR_NTYPEVARS; t++)
		if (s->types[t]) {
			printf("%s\"%s\": ", n++ ? ", " : "", tv_names[t]);
			json_types(s->types[t]);
		}
	printf("}, \"attributes\": [");
	for (int i = 0; i < s->nattrs; i++) {
		printf("%s", i ? ", " : "");
		json_attr(&s->attrs[i]);
	}
	printf("]");
	if (domain) {
		printf(", \"becomes\": ");
		cli_json_str(becomes ? becomes : "");
	} else {
		printf(", \"onnx_versions\": ");
		if (versions)
			cli_json_str(versions);
		else
			printf("null");
	}
	printf("}");
}

/* The contrib op named name (NAME or com.microsoft.NAME), -1 if none. */
static int contrib_lookup(const char *name)
{
	const char *pre = CONTRIB_DOMAIN ".";
	if (!strncmp(name, pre, strlen(pre)))
		name += strlen(pre);
	const IrOpSchema *s;
	for (int i = 0; (s = onnx_contrib_schema(i, NULL)); i++)
		if (!strcmp(s->name, name))
			return i;
	return -1;
}

/* ---- command --------------------------------------------------------------- */

#define MAX_CONTRIB 64

int cmd_ops(int argc, char **argv)
{
	if (cli_has_help(argc, argv)) {
		fputs(help, stdout);
		return EXIT_OK;
	}
	bool json = false, want[OP_COUNT] = {0}, want_c[MAX_CONTRIB] = {0}, any = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (argv[i][0] == '-') {
			cli_error("ops: unknown option '%s' (see kiln ops --help)", argv[i]);
			return EXIT_USAGE;
		} else {
			/* an IR op by its name; a contrib op by com.microsoft.NAME, or by
			 * NAME when the IR has no op of that name */
			bool dom = !strncmp(argv[i], CONTRIB_DOMAIN ".", strlen(CONTRIB_DOMAIN "."));
			int op = dom ? -1 : ir_op_lookup(argv[i]), c = op < 0 ? contrib_lookup(argv[i]) : -1;
			if (op < 0 && (c < 0 || c >= MAX_CONTRIB)) {
				cli_error("ops: unknown op '%s' (kiln ops lists them)", argv[i]);
				return EXIT_USAGE;
			}
			if (op >= 0)
				want[op] = true;
			else
				want_c[c] = true;
			any = true;
		}
	}
	if (json)
		printf("{\"ops\": [");
	for (int op = 0, n = 0; op < OP_COUNT; op++) {
		if (any && !want[op])
			continue;
		const char *kind = kind_names[ir_opinfo[op].kind], *v = onnx_versions((Op)op);
		if (json)
			print_json(ir_schema((Op)op), kind, NULL, v, NULL, !n);
		else
			print_text(ir_schema((Op)op), kind, NULL, v, NULL);
		n++;
	}
	if (json)
		printf("\n], \"contrib_ops\": [");
	const IrOpSchema *s;
	const char *becomes = NULL;
	for (int i = 0, n = 0; (s = onnx_contrib_schema(i, &becomes)); i++) {
		if (any && (i >= MAX_CONTRIB || !want_c[i]))
			continue;
		if (json)
			print_json(s, "contrib", CONTRIB_DOMAIN, NULL, becomes, !n);
		else
			print_text(s, "contrib", CONTRIB_DOMAIN, NULL, becomes);
		n++;
	}
	if (json)
		printf("\n]}\n");
	return EXIT_OK;
}
