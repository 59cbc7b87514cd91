/* kiln compile: ONNX model -> shared object (or .o/.ll/.s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "kiln.h"
#include "synth.h"

static const char help[] =
	"usage: kiln compile MODEL.onnx -o OUT.so [options]\n"
	"       kiln compile X.ir --weights-from=MODEL.onnx -o OUT.so [options]\n"
	"\n"
	"Compiles MODEL.onnx to a shared object that runs it natively for any batch\n"
	"and sequence length; also writes OUT.h, a typed entry point.  X.ir: the text\n"
	"IR kiln dump prints (after any pass, maybe edited), verified, then the -O\n"
	"pipeline runs on it (-O0: compile it as written).\n"
	"  -o OUT                   output file\n"
	"  --weights-from=MODEL.onnx  (X.ir) the model the IR was dumped from: its\n"
	"                           constants printed as #hash<...> are taken from it,\n"
	"                           by name, or by content among those kiln's passes\n"
	"                           derive from it\n"
	"  --graph=N                (X.ir) the Nth graph of a dump that holds several\n"
	"  -O0 | -O1 | -O2          pass pipeline (default -O2)\n"
	"  --emit=so|obj|llvm|asm   what to write (default so)\n"
	"  --runtime-lib=PATH       the libkiln_rt.a to link (default: $KILN_RUNTIME_LIB, else\n"
	"                           the one installed beside kiln, else the build tree's)\n"
	"  --dim-name=SYM=NAME,...  OUT.h's parameter names for symbolic dims (default:\n"
	"                           the exporters' names; dynamo's s41 named from the\n"
	"                           inputs: batch, sequence, regions, INPUT_dimD)\n"
	"  --name=NAME              OUT.h's entry point NAME_run and include guard\n"
	"                           (default: OUT's base name as a C identifier)\n"
	"  --target-cpu=NAME        CPU to generate code for (default: this machine's)\n"
	"  --target-triple=TRIPLE   target triple (default: this machine's)\n"
	"  --weights=embed|external embed weights in OUT (default) or write OUT.weights\n"
	"  --fpmath=fp32|bf16       GEMM and attention precision (default fp32).  bf16:\n"
	"                           KlnGemm weights stored in bf16 and the activations\n"
	"                           they multiply rounded to bf16, KlnAttention's Q K^T\n"
	"                           and P V on bf16 operands, fp32 sums; needs\n"
	"                           AVX512_BF16 for speed (other CPUs run it correctly,\n"
	"                           slower)\n"
	"  --quantize=int8|none     int8: every fused GEMM (KlnGemm) gets int8 weights,\n"
	"                           per output column, symmetric; its activations are\n"
	"                           quantized per row (uint8) at run time, the products\n"
	"                           summed exactly in int32 (VNNI, AVX2 or portable\n"
	"                           kernels, chosen at run time); softmax, layer norms\n"
	"                           and residuals stay fp32; the attentions' two\n"
	"                           products take bf16 operands where the target has\n"
	"                           AVX512_BF16 (as --fpmath=bf16's), unless --fpmath\n"
	"                           is given (--fpmath=fp32: fp32 attention) (default none)\n"
	"  --quantize-weight-bits=8|7  int8's weights: 8 bits ([-127, 127], default) or\n"
	"                           7 ([-64, 64], as ONNX Runtime's reduce_range): lets\n"
	"                           CPUs without VNNI (AVX2) run the u8 x s8 kernel,\n"
	"                           about twice as fast, still exact\n"
	"  --remove-padding         padding-free batches: where the fused attentions take\n"
	"                           their key-padding mask from one graph input M [B, S],\n"
	"                           the GEMMs, layer norms, GELUs, residual adds and\n"
	"                           attentions on [B, S, *] run on M's real tokens only\n"
	"                           (pass pack-tokens); M must be 0/1 with each row's\n"
	"                           ones first (right padding), else the run fails; the\n"
	"                           outputs are zero at padded positions\n"
	"  --max-tensor-bytes=N     size limit of one tensor in bytes (suffix K, M, G, T;\n"
	"                           default 64G): static shapes over it are refused, the\n"
	"                           compiled code refuses larger run-time shapes\n"
	"  --max-node-operands=N    most inputs + outputs of one node (default 256): a node\n"
	"                           over it is refused (LLVM's time grows with its square)\n"
	"  --stats                  print statistics; the last line is one JSON object:\n"
	"                           ops_in, ops_out, fusions, compile_ms, arena_bytes,\n"
	"                           fpmath, int8_gemms (arena at batch 1, sequence 128, 36 regions,\n"
	"                           computed from the memory plan: the model is not run)\n"
	"  --passes=, --print-before=, --print-after=, --print-after-all,\n"
	"  --disable-pattern=, --explain=, --verify-each   as for kiln dump\n";

/* {"Op": count, ...}; nconst: ONNX Constant nodes, which the IR has as constants */
static void print_counts(const int *counts, int nconst)
{
	int first = 1;
	putchar('{');
	if (nconst) {
		printf("\"Constant\": %d", nconst);
		first = 0;
	}
	for (int op = 0; op < OP_COUNT; op++)
		if (counts[op]) {
			printf("%s\"%s\": %d", first ? "" : ", ", ir_opname((Op)op), counts[op]);
			first = 0;
		}
	putchar('}');
}

/* The symbol values --stats measures the arena at: each symbol an input dim
 * binds gets the value synth_inputs (kiln bench) gives it at batch 1,
 * sequence 128, 36 regions.  The backend computes the arena from its plan
 * (BeStats.arena_bytes): the model is never run.  calloc'd, per ir symbol. */
int64_t *cli_stats_syms(const Graph *g)
{
	int ns = ir_nsyms(g);
	int64_t *v = calloc((size_t)ns + 1, sizeof *v);
	bool *set = calloc((size_t)ns + 1, sizeof *set);
	if (!v || !set) {
		free(v);
		free(set);
		return NULL;
	}
	for (int k = 0; k < g->ninputs; k++) {
		const Value *val = IR_VAL(g, g->inputs[k]);
		for (int d = 0; d < val->rank; d++) {
			const DimNode *n = ir_dim_node(g, val->dims[d]);
			if (n->kind != DIM_SYM || set[n->c])
				continue;
			v[n->c] = synth_dim(val->name ? val->name : "", val->dtype, d, 1, 128, 36);
			set[n->c] = true;
		}
	}
	free(set);
	return v;
}

/* --stats "attention_fpmath": what the fused attentions' two products run
 * on (pass fpmath-bf16 sets their fpmath attribute: --fpmath=bf16, or
 * --quantize=int8 where the target has AVX512_BF16), null without one */
static const char *attention_fpmath(const Graph *g)
{
	int natt = 0, nbf16 = 0;
	for (int i = 0; i < g->norder; i++) {
		const Node *n = IR_NODE(g, g->order[i]);
		if (n->dead || n->op != OP_KlnAttention)
			continue;
		natt++;
		nbf16 += ir_attr_int(g, g->order[i], "fpmath", 0) == 1;
	}
	return !natt ? "null" : nbf16 == natt ? "\"bf16\"" : nbf16 ? "\"mixed\"" : "\"fp32\"";
}

void cli_print_stats(const Graph *g, const int *ops_in, const PassStats *ps, double ms,
                     long long arena, const BeStats *bs, BeFpmath fpmath)
{
	int ops_out[OP_COUNT] = {0};
	for (int i = 0; i < g->norder; i++)
		if (!IR_NODE(g, g->order[i])->dead)
			ops_out[IR_NODE(g, g->order[i])->op]++;
	printf("weights: %lld bytes, arena buffers: %d, codegen %.0f ms, link %.0f ms\n",
	       (long long)bs->weights_bytes, bs->nbufs, bs->codegen_ms, bs->link_ms);
	printf("{\"ops_in\": ");
	print_counts(ops_in, g->nconst_nodes);
	printf(", \"ops_out\": ");
	print_counts(ops_out, 0);
	printf(", \"fusions\": {");
	for (int i = 0; i < ps->nfusions; i++)
		printf("%s\"%s\": %d", i ? ", " : "", ps->fusion_name[i], ps->fusion_count[i]);
	int nq = 0;
	for (int i = 0; i < ps->nfusions; i++)
		if (!strcmp(ps->fusion_name[i], "quantize_int8"))
			nq = ps->fusion_count[i];
	printf("}, \"compile_ms\": %.1f, \"arena_bytes\": %lld, \"fpmath\": \"%s\", \"attention_fpmath\": %s, "
	       "\"int8_gemms\": %d}\n",
	       ms, arena, fpmath == BE_FPMATH_BF16 ? "bf16" : "fp32", attention_fpmath(g), nq);
}

/* The same file: the same path, or the same inode (links, ./x, ../d/x). */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	if (!strcmp(a, b))
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Refuses an output (OUT, or the OUT.h / OUT.weights written beside a .so,
 * named as be_side_path names them) that is the model itself. */
static int check_outputs(const char *model, const CompileOpts *o)
{
	if (o->weights_from && check_outputs(o->weights_from, &(CompileOpts){.be = o->be}))
		return -1;
	const char *out = o->be.out;
	size_t n = strlen(out);
	if (n > 3 && !strcmp(out + n - 3, ".so"))
		n -= 3;
	char side[2][4200];
	snprintf(side[0], sizeof side[0], "%.*s.h", (int)n, out);
	snprintf(side[1], sizeof side[1], "%.*s.weights", (int)n, out);
	bool so = o->be.emit == BE_EMIT_SO;
	const char *outs[3] = {out, so ? side[0] : NULL,
	                       so && o->be.weights_external ? side[1] : NULL};
	for (int i = 0; i < 3; i++)
		if (outs[i] && same_file(model, outs[i])) {
			cli_error("compile: output %s is the model %s itself (choose another -o)",
			          outs[i], model);
			return -1;
		}
	return 0;
}

int cmd_compile(int argc, char **argv)
{
	CompileOpts o;
	const char *model;
	int r = cli_parse_model_cmd(argc, argv, "compile", help, true, &o, &model);
	if (r)
		return r < 0 ? EXIT_USAGE : EXIT_OK;
	if (!model || !o.be.out) {
		cli_error("compile: need MODEL.onnx and -o OUT (see kiln compile --help)");
		return EXIT_USAGE;
	}
	if (o.graph == CLI_GRAPH_ALL) {
		cli_error("compile: --graph=all is for kiln dump; compile takes one graph (--graph=N)");
		return EXIT_USAGE;
	}
	if (check_outputs(model, &o))
		return EXIT_USAGE;
	double t0 = cli_now_ms();
	int ops_in[OP_COUNT];
	PassStats ps = {0};
	Graph *g = cli_load_and_optimize(model, &o, &ps, ops_in);
	if (!g)
		return EXIT_BAD_INPUT;
	BeStats bs = {0};
	Diag d = {0};
	int64_t *syms = o.stats ? cli_stats_syms(g) : NULL;
	o.be.arena_syms = syms;
	int rc = be_compile(g, &o.be, &bs, &d);
	free(syms);
	if (rc) {
		cli_fail(model, d.msg);
		ir_graph_free(g);
		return EXIT_BAD_INPUT;
	}
	double ms = cli_now_ms() - t0;
	if (o.stats)
		cli_print_stats(g, ops_in, &ps, ms, (long long)bs.arena_bytes, &bs, o.be.fpmath);
	ir_graph_free(g);
	return EXIT_OK;
}
