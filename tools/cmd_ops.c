/* kiln ops: print the op schema (ir/ops.def): every op's inputs and
 * outputs, the dtypes kiln runs it on, its attributes with their types,
 * defaults and the values kiln implements; as text or JSON. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "schema.h"

static const char help[] =
	"usage: kiln ops [OP...] [--json]\n"
	"\n"
	"Prints the schema of kiln's IR ops (all, or the ones named): inputs and\n"
	"outputs (name? optional, name... variadic) with their type variables, the\n"
	"dtypes of each type variable, the attributes with type, default and the\n"
	"values kiln implements.  Anything else is refused at compile time.\n"
	"  --json                   one JSON object {\"ops\": [...]}\n";

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
		       io[i].kind == IO_VAR ? "..." : "",
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

static void print_text(Op op)
{
	const IrOpSchema *s = ir_schema(op);
	printf("%s (%s)\n", s->name, kind_names[ir_opinfo[op].kind]);
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
	const char *v = onnx_versions(op);
	if (v)
		printf("  %-8s%s\n", "onnx", v);
}

/* ---- JSON ------------------------------------------------------------------- */

static void json_ios(const IrIoSchema *io, int n)
{
	printf("[");
	for (int i = 0; i < n; i++) {
		printf("%s{\"name\": ", i ? ", " : "");
		cli_json_str(io[i].name);
		printf(", \"type\": \"%s\", \"optional\": %s, \"variadic\": %s, \"constant_false\": %s}",
		       tv_names[io[i].tv], io[i].kind == IO_OPT || io[i].kind == IO_OFF ? "true" : "false",
		       io[i].kind == IO_VAR ? "true" : "false", io[i].kind == IO_OFF ? "true" : "false");
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

static void print_json(Op op, bool first)
{
	const IrOpSchema *s = ir_schema(op);
	printf("%s\n  {\"name\": ", first ? "" : ",");
	cli_json_str(s->name);
	printf(", \"kind\": \"%s\", \"inputs\": ", kind_names[ir_opinfo[op].kind]);
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
	printf("], \"onnx_versions\": ");
	const char *v = onnx_versions(op);
	if (v)
		cli_json_str(v);
	else
		printf("null");
	printf("}");
}

/* ---- command --------------------------------------------------------------- */

int cmd_ops(int argc, char **argv)
{
	if (cli_has_help(argc, argv)) {
		fputs(help, stdout);
		return EXIT_OK;
	}
	bool json = false, want[OP_COUNT] = {0}, any = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (argv[i][0] == '-') {
			cli_error("ops: unknown option '%s' (see kiln ops --help)", argv[i]);
			return EXIT_USAGE;
		} else {
			int op = ir_op_lookup(argv[i]);
			if (op < 0) {
				cli_error("ops: unknown op '%s' (kiln ops lists them)", argv[i]);
				return EXIT_USAGE;
			}
			want[op] = any = true;
		}
	}
	if (json)
		printf("{\"ops\": [");
	for (int op = 0, n = 0; op < OP_COUNT; op++) {
		if (any && !want[op])
			continue;
		if (json)
			print_json((Op)op, !n);
		else
			print_text((Op)op);
		n++;
	}
	if (json)
		printf("\n]}\n");
	return EXIT_OK;
}
