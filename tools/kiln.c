/* kiln: the command-line tool.  Dispatches to one command per file
 * (cmd_dump.c, cmd_compile.c, cmd_run.c) and holds what they share. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "kiln.h"
#include "onnx_import.h"

static const char usage[] =
	"usage: kiln <command> [options]\n"
	"\n"
	"commands:\n"
	"  dump MODEL.onnx      print kiln's IR of a model (after the pass pipeline)\n"
	"  compile MODEL.onnx -o OUT.so\n"
	"                       compile a model to a shared object (and OUT.h); also\n"
	"                       X.ir --weights-from=MODEL.onnx: the IR kiln dump printed\n"
	"  run OUT.so --inputs DIR --outputs DIR\n"
	"                       run a compiled model on input_K.pb files\n"
	"  check MODEL_DIR      compile MODEL_DIR/model.onnx, run every test_data_set_N,\n"
	"                       compare with its output_K.pb\n"
	"  bench OUT.so --batch B --seq S\n"
	"                       time a compiled model on synthesized inputs\n"
	"  ops [OP...] [--json] print the op schema: inputs, dtypes, attributes\n"
	"  info OUT.so          what a compiled model is: version, target, weights, inputs\n"
	"\n"
	"  kiln <command> --help   options of one command\n"
	"  kiln --version\n";

/* One line on stderr.  Messages carry names from models and from the
 * run-time library (which escapes nothing): diag_escape keeps control
 * bytes (ESC sequences, CR, newlines) away from the terminal. */
void cli_error(const char *fmt, ...)
{
	char raw[4096], line[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	diag_escape(line, sizeof line, raw);
	fprintf(stderr, "kiln: %s\n", line);
}

int cli_parse_int(const char *name, const char *s, long long lo, long long hi, long long *v)
{
	char *end;
	errno = 0;
	/* strtoll skips blanks and takes '+': only digits with an optional '-' here */
	bool digits = s[0] == '-' ? isdigit((unsigned char)s[1]) : isdigit((unsigned char)s[0]);
	long long x = digits ? strtoll(s, &end, 10) : 0;
	if (!digits || *end || errno == ERANGE || x < lo || x > hi) {
		cli_error("%s needs an integer from %lld to %lld, not '%s'", name, lo, hi, s);
		return -1;
	}
	*v = x;
	return 0;
}

int cli_parse_nonneg(const char *name, const char *s, double *v)
{
	char *end;
	errno = 0;
	bool start = isdigit((unsigned char)s[0]) || (s[0] == '.' && isdigit((unsigned char)s[1]));
	double x = start ? strtod(s, &end) : 0;
	if (!start || *end || errno == ERANGE || !isfinite(x) || x < 0) {
		cli_error("%s needs a finite number >= 0, not '%s'", name, s);
		return -1;
	}
	*v = x;
	return 0;
}

int cli_positional(const char *cmd, const char *arg, const char **pos)
{
	if (arg[0] == '-' || *pos) {
		cli_error("%s: unexpected argument '%s' (see kiln %s --help)", cmd, arg, cmd);
		return -1;
	}
	*pos = arg;
	return 0;
}

size_t cli_dtype_size(int dtype)
{
	switch (dtype) {
	case KILN_F64: case KILN_I64: case KILN_U64: return 8;
	case KILN_F32: case KILN_I32: case KILN_U32: return 4;
	case KILN_F16: case KILN_BF16: case KILN_I16: case KILN_U16: return 2;
	default: return 1;
	}
}

double cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void cli_json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		int u = diag_utf8_len((const char *)p);
		if (u) {                       /* a valid UTF-8 character */
			fwrite(p, 1, (size_t)u, stdout);
			p += u - 1;
		} else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
			printf("\\u%04x", *++p);     /* a C1 control */
		} else if (*p >= 0x80) {
			fputs("\\ufffd", stdout);   /* not UTF-8: the JSON stays valid */
		} else if (*p == '"' || *p == '\\') {
			printf("\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			printf("\\u%04x", *p);
		} else {
			putchar(*p);
		}
	}
	putchar('"');
}

void cli_put_esc(const char *s)
{
	s = s ? s : "?";
	size_t n = strlen(s);
	char small[256], *buf = n < sizeof small / 4 ? small : malloc(4 * n + 1);
	if (!buf) {   /* out of memory: a marker, never the raw bytes */
		fputs("(name)", stdout);
		return;
	}
	diag_escape(buf, buf == small ? sizeof small : 4 * n + 1, s);
	fputs(buf, stdout);
	if (buf != small)
		free(buf);
}

bool cli_has_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
	return false;
}

void cli_compile_opts_init(CompileOpts *o)
{
	memset(o, 0, sizeof *o);
	o->passes.opt_level = 2;
	o->be.emit = BE_EMIT_SO;
	o->be.opt_level = 3;
	o->format = "text";
}

/* "--name=value": the value, or NULL if arg is not that option. */
static const char *optval(const char *arg, const char *name)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) == 0 && arg[n] == '=')
		return arg + n + 1;
	return NULL;
}

/* "N", "NK", "NM", "NG", "NT" (powers of 1024) > 0; false when malformed. */
static bool parse_bytes(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	default: break;
	}
	if (errno || end == v || *end || n <= 0 || n > (INT64_MAX >> shift))
		return false;
	*out = (int64_t)n << shift;
	return true;
}

int cli_parse_compile_opt(CompileOpts *o, const char *a)
{
	const char *v;
	if (!strcmp(a, "-O0") || !strcmp(a, "-O1") || !strcmp(a, "-O2")) {
		o->passes.opt_level = a[2] - '0';
	} else if ((v = optval(a, "--passes"))) {
		o->passes.passes = v;
	} else if ((v = optval(a, "--print-before"))) {
		o->passes.print_before = v;
	} else if ((v = optval(a, "--print-after"))) {
		o->passes.print_after = v;
	} else if (!strcmp(a, "--print-after-all")) {
		o->passes.print_after_all = true;
	} else if (!strcmp(a, "--verify-each")) {
		o->passes.verify_each = true;
	} else if ((v = optval(a, "--disable-pattern")) || (v = optval(a, "--explain"))) {
		/* pattern names (passes/patterns.def): an unknown one is bad usage */
		bool explain = !strncmp(a, "--explain", 9);
		Diag d = {0};
		if (!v[0] || (explain && strchr(v, ',')) ||
		    pass_check_patterns(explain ? "--explain" : "--disable-pattern", v, &d))
			return cli_error("%s", d.msg[0] ? d.msg : explain ? "--explain takes one pattern name "
			                 "(see kiln dump --list-passes)" : "--disable-pattern needs a name"), -1;
		if (explain)
			o->passes.explain = v;
		else
			o->passes.disabled_patterns = v;
	} else if ((v = optval(a, "--max-tensor-bytes"))) {
		if (!parse_bytes(v, &o->max_tensor_bytes))
			return cli_error("--max-tensor-bytes must be a positive byte count (suffix K, M, G "
			                 "or T for powers of 1024), not '%s'", v), -1;
	} else if ((v = optval(a, "--max-node-operands"))) {
		long long k;
		if (cli_parse_int("--max-node-operands", v, 1, 1 << 20, &k))
			return -1;
		o->be.max_node_operands = (int)k;
	} else if ((v = optval(a, "--weights-from"))) {
		if (!v[0])
			return cli_error("--weights-from needs a path"), -1;
		o->weights_from = v;
	} else if ((v = optval(a, "--graph"))) {
		/* a number (strtol's blanks and '+' refused), or all */
		char *end = NULL;
		errno = 0;
		long long k = isdigit((unsigned char)v[0]) ? strtoll(v, &end, 10) : CLI_GRAPH_ALL;
		if (end ? *end || errno == ERANGE || k < 1 || k > 1000000 : strcmp(v, "all"))
			return cli_error("--graph needs a graph number from 1 to 1000000, or all, not '%s'", v), -1;
		o->graph = (int)k;
	} else if (!strcmp(a, "--stats")) {
		o->stats = true;
	} else if ((v = optval(a, "--format"))) {
		if (strcmp(v, "text") && strcmp(v, "dot"))
			return cli_error("--format must be text or dot, not '%s'", v), -1;
		o->format = v;
	} else if ((v = optval(a, "--emit"))) {
		static const char *names[] = {"so", "obj", "llvm", "asm"};
		int k;
		for (k = 0; k < 4 && strcmp(v, names[k]); k++)
			;
		if (k == 4)
			return cli_error("--emit must be so, obj, llvm or asm, not '%s'", v), -1;
		o->be.emit = (BeEmit)k;
	} else if ((v = optval(a, "--dim-name"))) {
		/* SYM=NAME[,SYM=NAME...], NAME a C identifier */
		for (const char *p = v; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ',')) {
			size_t n = strcspn(p, ","), eq = strcspn(p, "=");
			bool ok = eq > 0 && eq + 1 < n && isalpha((unsigned char)p[eq + 1]);
			for (size_t k = eq + 1; ok && k < n; k++)
				ok = isalnum((unsigned char)p[k]) || p[k] == '_';
			if (!ok)
				return cli_error("--dim-name takes SYM=NAME[,SYM=NAME...] with NAME a C identifier, not '%s'", v), -1;
		}
		o->be.dim_names = v;
	} else if ((v = optval(a, "--runtime-lib"))) {
		if (!v[0])
			return cli_error("--runtime-lib needs a path"), -1;
		o->be.runtime_lib = v;
	} else if ((v = optval(a, "--name"))) {
		bool ok = isalpha((unsigned char)v[0]) && strlen(v) < 64;
		for (const char *p = v; ok && *p; p++)
			ok = isalnum((unsigned char)*p) || *p == '_';
		if (!ok)
			return cli_error("--name must be a C identifier starting with a letter (letters, digits, '_'; at most 63), not '%s'", v), -1;
		o->be.name = v;
	} else if ((v = optval(a, "--target-cpu"))) {
		o->be.target_cpu = v;
	} else if ((v = optval(a, "--target-triple"))) {
		o->be.target_triple = v;
	} else if ((v = optval(a, "--weights"))) {
		if (strcmp(v, "embed") && strcmp(v, "external"))
			return cli_error("--weights must be embed or external, not '%s'", v), -1;
		o->be.weights_external = !strcmp(v, "external");
	} else if ((v = optval(a, "--fpmath"))) {
		if (strcmp(v, "fp32") && strcmp(v, "bf16"))
			return cli_error("--fpmath must be fp32 or bf16, not '%s'", v), -1;
		o->be.fpmath = !strcmp(v, "bf16") ? BE_FPMATH_BF16 : BE_FPMATH_F32;
		o->passes.fpmath_bf16 = o->be.fpmath == BE_FPMATH_BF16;
		o->fpmath_given = true;
	} else if ((v = optval(a, "--quantize"))) {
		if (strcmp(v, "int8") && strcmp(v, "none"))
			return cli_error("--quantize must be int8 or none, not '%s'", v), -1;
		o->passes.quantize_int8 = !strcmp(v, "int8");
	} else if ((v = optval(a, "--quantize-weight-bits"))) {
		if (strcmp(v, "7") && strcmp(v, "8"))
			return cli_error("--quantize-weight-bits must be 7 or 8, not '%s'", v), -1;
		o->passes.quantize_wbits = v[0] - '0';
	} else if (!strcmp(a, "--remove-padding")) {
		o->passes.remove_padding = true;
	} else {
		return 0;
	}
	return 1;
}

void cli_compile_opts_finish(CompileOpts *o)
{
	if (o->passes.quantize_int8 && !o->fpmath_given &&
	    be_target_has_feature(&o->be, "avx512bf16"))
		o->passes.fpmath_bf16 = true;
}

int cli_parse_model_cmd(int argc, char **argv, const char *cmd, const char *help, bool want_out,
                        CompileOpts *o, const char **model)
{
	cli_compile_opts_init(o);
	*model = NULL;
	if (cli_has_help(argc, argv)) {
		fputs(help, stdout);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		int r = cli_parse_compile_opt(o, argv[i]);
		if (r < 0)
			return -1;
		if (r)
			continue;
		if (want_out && !strcmp(argv[i], "-o") && i + 1 < argc) {
			o->be.out = argv[++i];
		} else if (cli_positional(cmd, argv[i], model)) {
			return -1;
		}
	}
	if ((o->weights_from || o->graph) && *model && !cli_is_text_ir(*model)) {
		cli_error("%s: %s is for text IR input (X.ir), and %s is not one", cmd,
		          o->weights_from ? "--weights-from" : "--graph", *model);
		return -1;
	}
	if (o->passes.quantize_wbits && !o->passes.quantize_int8) {
		cli_error("%s: --quantize-weight-bits needs --quantize=int8", cmd);
		return -1;
	}
	cli_compile_opts_finish(o);
	return want_out ? cli_check_target_cpu(o) : 0;
}

void cli_block_start(const char *fmt, ...)
{
	char name[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	fputs("// ===== ", stdout);
	cli_put_esc(name);
	fputs(" =====\n", stdout);
	fflush(stdout);
}

int cli_check_target_cpu(const CompileOpts *o)
{
	Diag d = {0};
	int r = be_check_target_cpu(o->be.target_triple, o->be.target_cpu, stdout, &d);
	if (r < 0)
		cli_error("%s", d.msg);
	return r;
}

static void count_ops(const Graph *g, int *counts)
{
	memset(counts, 0, sizeof(int) * OP_COUNT);
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (!n->dead)
			counts[n->op]++;
	}
}

void cli_fail(const char *path, const char *msg)
{
	if (!strncmp(msg, path, strlen(path)))
		cli_error("%s", msg);   /* the message names the file already */
	else
		cli_error("%s: %s", path, msg);
}

Graph *cli_load_and_optimize(const char *path, CompileOpts *o, PassStats *ps, int *ops_in)
{
	Diag d = {0};
	bool text = cli_is_text_ir(path);
	/* text IR comes back verified and shape-inferred */
	Graph *g = text ? cli_load_text_ir(path, o) : onnx_load_file(path, &d);
	if (!g) {
		if (!text)
			cli_error("%s", d.msg);
		return NULL;
	}
	if (ops_in)
		count_ops(g, ops_in);
	g->max_tensor_bytes = o->max_tensor_bytes;
	if ((!text && (ir_infer_shapes(g, &d) || ir_verify(g, &d))) ||
	    pass_run_pipeline(g, &o->passes, ps, &d)) {
		cli_fail(path, d.msg);
		ir_graph_free(g);
		return NULL;
	}
	return g;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
		{"dump", cmd_dump}, {"compile", cmd_compile}, {"run", cmd_run},
		{"check", cmd_check}, {"bench", cmd_bench}, {"info", cmd_info},
		{"ops", cmd_ops},
	};
	if (argc < 2) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(usage, stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("kiln %s (commit %s, LLVM %s)\n", KILN_VERSION, KILN_GIT_COMMIT, KILN_LLVM_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try kiln --help)", argv[1]);
	return EXIT_USAGE;
}
