/* The pass manager: every pass kiln has, and the -O0/-O1/-O2 pipelines,
 * listed top to bottom in this one file.
 *
 * A pass is `void pass_X(Graph *g, PassCtx *pc)`; its contract (requires /
 * preserves / breaks) is the comment on top of its file and, in one line,
 * the `doc` below.  Between passes the manager prints the IR on request
 * (--print-before, --print-after, --print-after-all) and runs the verifier
 * with --verify-each and always in debug builds (NDEBUG not defined). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pass_internal.h"

typedef struct PassDef {
	const char *name;
	PassFn fn;
	const char *doc;
} PassDef;

static const PassDef passes[] = {
	{"shapes", pass_shapes,
	 "re-infer dtypes, shapes and symbolic content; requires a verified graph"},
	{"cleanup", pass_cleanup,
	 "drop Identity and inference Dropout; keeps graph output names"},
	{"fold", pass_fold,
	 "constant-fold nodes on constants and shape arithmetic with static symbolic content"},
	{"canon-reshape", pass_canon_reshape,
	 "Reshape/Expand with computed shapes get constant shapes (0 = copy dim, -1 = rest) from inferred dims"},
	{"einsum", pass_canon_einsum,
	 "two-operand Einsum -> Transpose + MatMul (+ Reshape) where the letters allow"},
	{"dce", pass_dce, "remove nodes whose outputs are unused"},
	{"cse", pass_cse, "merge equal constants and equal nodes on equal inputs"},
	{"fuse-norm", pass_fuse_norm,
	 "LayerNorm (decomposed or LayerNormalization) -> KlnLayerNorm; residual Add + it -> KlnSkipLayerNorm"},
	{"fuse-gelu", pass_fuse_gelu, "GELU (erf, tanh forms, Gelu op) -> KlnGelu"},
	{"fuse-gemm", pass_fuse_gemm,
	 "MatMul + bias Add (+ KlnGelu) -> KlnGemm; requires fuse-gelu for bias_gelu"},
	{"fuse-attention", pass_fuse_attention,
	 "head split, scaled QK^T, mask, Softmax, .V, head merge -> KlnAttention"},
	{"fuse-qkv", pass_fuse_qkv,
	 "Q/K/V KlnGemm on one input -> one packed KlnGemm feeding KlnAttention; requires fuse-attention"},
	{"fuse-embed", pass_fuse_embed,
	 "word/position/token-type Gathers + Adds + KlnLayerNorm -> KlnEmbedLayerNorm; requires fuse-norm"},
	{"fuse-qgemm", pass_fuse_qgemm,
	 "DynamicQuantizeLinear + MatMulInteger + Cast + scale Muls (int8 weights, symmetric) -> KlnGemmQ per tensor"},
	{"quantize", pass_quantize,
	 "KlnGemm with constant W -> KlnGemmQ (int8 weights per column, activations per row); --quantize=int8 runs it last"},
};
#define NPASSES ((int)(sizeof passes / sizeof passes[0]))

/* The pipelines. */
static const char *const pipeline_o0[] = {"dce", NULL};
static const char *const pipeline_o1[] = {
	"cleanup", "fold", "einsum", "canon-reshape", "dce", "cse", "fold", "dce", NULL};
static const char *const pipeline_o2[] = {
	"cleanup", "fold", "einsum", "canon-reshape", "dce", "cse", "fold", "dce",
	"fuse-norm", "fuse-gelu", "fuse-attention", "fuse-gemm", "fuse-qkv", "fuse-embed",
	"fuse-qgemm", "cse", "dce", NULL};

/* ---- context helpers ---------------------------------------------------- */

void pass_fail(PassCtx *pc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!pc->failed)
		diag_vfail(pc->diag, fmt, ap);
	va_end(ap);
	pc->failed = 1;
}

void pass_count(PassCtx *pc, const char *name)
{
	PassStats *s = pc->stats;
	if (!s)
		return;
	for (int i = 0; i < s->nfusions; i++) {
		if (!strcmp(s->fusion_name[i], name)) {
			s->fusion_count[i]++;
			return;
		}
	}
	if (s->nfusions < PASS_MAX_FUSIONS) {
		s->fusion_name[s->nfusions] = name;
		s->fusion_count[s->nfusions++] = 1;
	}
}

/* Is `name` an element of the comma-separated `list`? */
static bool in_list(const char *list, const char *name)
{
	if (!list || !name)
		return false;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

bool pass_pattern_disabled(const PassCtx *pc, const char *name)
{
	return pc->opt && in_list(pc->opt->disabled_patterns, name);
}

static const PassDef *find_pass(const char *name, size_t len)
{
	for (int i = 0; i < NPASSES; i++)
		if (strlen(passes[i].name) == len && !strncmp(passes[i].name, name, len))
			return &passes[i];
	return NULL;
}

/* The known fusion-pattern names, for checking --disable-pattern. */
static const char *const pattern_names[] = {
	"layernorm", "skip_layernorm", "gelu", "gemm", "gemm_nobias", "gemm_onnx", "bias_gelu", "attention", "qkv",
	"embed_layernorm", "qgemm", NULL};

static int check_patterns(const char *list, Diag *diag)
{
	if (!list)
		return 0;
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		bool ok = len == 0;
		for (int i = 0; pattern_names[i] && !ok; i++)
			ok = strlen(pattern_names[i]) == len && !strncmp(pattern_names[i], p, len);
		if (!ok)
			return diag_fail(diag, "--disable-pattern: unknown pattern '%.*s'", (int)len, p);
		if (!e)
			break;
		p = e + 1;
	}
	return 0;
}

/* ---- running ------------------------------------------------------------- */

static int live_nodes(const Graph *g)
{
	int n = 0;
	for (int32_t i = 0; i < g->norder; i++)
		n += !IR_NODE(g, g->order[i])->dead;
	return n;
}

/* Prints the IR under a header saying where we are; after a pass, also how
 * the node count changed and which fusions fired in it. */
static void dump(const PassOptions *o, Graph *g, const char *when, const char *pass, int before,
                 const PassStats *s0, const PassStats *s1)
{
	FILE *f = o->dump ? o->dump : stdout;
	fprintf(f, "// ----- IR %s %s", when, pass);
	if (before >= 0) {
		fprintf(f, " (nodes %d -> %d", before, live_nodes(g));
		for (int i = 0; s1 && i < s1->nfusions; i++) {
			int was = 0;
			for (int k = 0; s0 && k < s0->nfusions; k++)
				if (!strcmp(s0->fusion_name[k], s1->fusion_name[i]))
					was = s0->fusion_count[k];
			if (s1->fusion_count[i] > was)
				fprintf(f, ", %s x%d", s1->fusion_name[i], s1->fusion_count[i] - was);
		}
		fprintf(f, ")");
	}
	fprintf(f, " -----\n");
	ir_print(f, g);
	fflush(f);
}

static int run_one(Graph *g, const PassDef *p, const PassOptions *o, PassCtx *pc, Diag *diag)
{
	if (o->print_before && !strcmp(o->print_before, p->name))
		dump(o, g, "before", p->name, -1, NULL, NULL);
	int before = live_nodes(g);
	PassStats s0 = {0};
	if (pc->stats)
		s0 = *pc->stats;
	p->fn(g, pc);
	if (pc->failed)
		return -1;
	if (o->print_after_all || (o->print_after && !strcmp(o->print_after, p->name)))
		dump(o, g, "after", p->name, before, &s0, pc->stats);
	bool verify = o->verify_each;
#ifndef NDEBUG
	verify = true;
#endif
	if (verify) {
		Diag d = {0};
		if (ir_verify(g, &d))
			return diag_fail(diag, "verifier failed after pass '%s': %s", p->name, d.msg);
	}
	return 0;
}

int pass_run_pipeline(Graph *g, const PassOptions *opt, PassStats *stats, Diag *diag)
{
	PassOptions dflt = {.opt_level = 2};
	const PassOptions *o = opt ? opt : &dflt;
	PassStats local = {0};
	PassCtx pc = {.opt = o, .stats = stats ? stats : &local, .diag = diag};
	if (check_patterns(o->disabled_patterns, diag))
		return -1;
	const char *names[] = {o->print_before, o->print_after};
	for (int i = 0; i < 2; i++)
		if (names[i] && !find_pass(names[i], strlen(names[i])))
			return diag_fail(diag, "unknown pass '%s' (see kiln dump --list-passes)", names[i]);
	if (o->print_after_all)
		dump(o, g, "as imported", "(before any pass)", -1, NULL, NULL);
	if (o->passes) {
		/* validate the whole list before running anything */
		for (const char *p = o->passes; *p;) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			if (len && !find_pass(p, len))
				return diag_fail(diag, "--passes: unknown pass '%.*s'", (int)len, p);
			if (!e)
				break;
			p = e + 1;
		}
		for (const char *p = o->passes; *p;) {
			const char *e = strchr(p, ',');
			size_t len = e ? (size_t)(e - p) : strlen(p);
			if (len && run_one(g, find_pass(p, len), o, &pc, diag))
				return -1;
			if (!e)
				break;
			p = e + 1;
		}
	} else {
		const char *const *pl = o->opt_level <= 0 ? pipeline_o0 :
		                        o->opt_level == 1 ? pipeline_o1 : pipeline_o2;
		for (int i = 0; pl[i]; i++)
			if (run_one(g, find_pass(pl[i], strlen(pl[i])), o, &pc, diag))
				return -1;
	}
	if (o->quantize_int8 && run_one(g, find_pass("quantize", 8), o, &pc, diag))
		return -1;
	return 0;
}

void pass_list(FILE *f)
{
	for (int i = 0; i < NPASSES; i++)
		fprintf(f, "%-16s %s\n", passes[i].name, passes[i].doc);
	fprintf(f, "\n-O0:");
	for (int i = 0; pipeline_o0[i]; i++)
		fprintf(f, " %s", pipeline_o0[i]);
	fprintf(f, "\n-O1:");
	for (int i = 0; pipeline_o1[i]; i++)
		fprintf(f, " %s", pipeline_o1[i]);
	fprintf(f, "\n-O2:");
	for (int i = 0; pipeline_o2[i]; i++)
		fprintf(f, " %s", pipeline_o2[i]);
	fprintf(f, "\nfusion patterns (--disable-pattern):");
	for (int i = 0; pattern_names[i]; i++)
		fprintf(f, " %s", pattern_names[i]);
	fprintf(f, "\n");
}
