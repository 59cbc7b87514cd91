/* The pass manager: every pass kiln has, and the -O0/-O1/-O2 pipelines,
 * listed top to bottom in this one file.
 *
 * A pass is `void pass_X(Graph *g, PassCtx *pc)`; its contract (requires /
 * preserves / breaks) is the comment on top of its file and, in one line,
 * the `doc` below.  Between passes the manager prints the IR on request
 * (--print-before, --print-after, --print-after-all) and runs the verifier
 * with --verify-each and always in debug builds (NDEBUG not defined). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass_internal.h"

typedef struct PassDef {
	const char *name;
	PassFn fn;
	const char *doc;
	const char *const *group;  /* a fixpoint group: these passes, repeated */
} PassDef;

/* The fusion passes, run as one fixpoint: repeated while any pattern fired
 * (so a fusion that makes another one possible is followed by it), at most
 * FUSION_ROUNDS times. */
#define FUSION_ROUNDS 4
static const char *const fusion_group[] = {
	"fuse-norm", "fuse-gelu", "fuse-attention", "fuse-gemm", "fuse-qkv", "fuse-embed", "fuse-qgemm", NULL};

static const PassDef passes[] = {
	{"shapes", pass_shapes,
	 "re-infer dtypes, shapes and symbolic content; requires a verified graph", NULL},
	{"assume-dims", pass_assume_dims,
	 "a head split keeping Shape(x)'s dims of a broadcast extent max(a, dims) assumes them "
	 "(checked when a run starts)", NULL},
	{"cleanup", pass_cleanup,
	 "drop Identity and inference Dropout; keeps graph output names", NULL},
	{"fold", pass_fold,
	 "constant-fold nodes on constants and shape arithmetic with static symbolic content", NULL},
	{"canon-reshape", pass_canon_reshape,
	 "Reshape/Expand with computed shapes get constant shapes (0 = copy dim, -1 = rest) from inferred dims", NULL},
	{"einsum", pass_canon_einsum,
	 "two-operand Einsum -> Transpose + MatMul (+ Reshape) where the letters allow", NULL},
	{"dce", pass_dce, "remove nodes whose outputs are unused", NULL},
	{"cse", pass_cse, "merge equal constants and equal nodes on equal inputs", NULL},
	{"fuse-norm", pass_fuse_norm,
	 "LayerNorm (decomposed or LayerNormalization) -> KlnLayerNorm; RMSNorm -> KlnRMSNorm; residual Add + LayerNorm -> KlnSkipLayerNorm", NULL},
	{"fuse-gelu", pass_fuse_gelu, "GELU (erf, tanh, sigmoid forms, Gelu op) and QuickGELU -> KlnGelu", NULL},
	{"fuse-gemm", pass_fuse_gemm,
	 "MatMul + bias Add (+ KlnGelu) -> KlnGemm; requires fuse-gelu for bias_gelu", NULL},
	{"fuse-attention", pass_fuse_attention,
	 "head split, scaled QK^T, mask, Softmax, .V, head merge -> KlnAttention", NULL},
	{"mask-names", pass_mask_names,
	 "KlnAttention mask_from/bias_from: the graph input its mask is computed from, for run-time messages", NULL},
	{"fuse-qkv", pass_fuse_qkv,
	 "Q/K/V KlnGemm on one input -> one packed KlnGemm feeding KlnAttention; requires fuse-attention", NULL},
	{"fuse-embed", pass_fuse_embed,
	 "word/position/token-type Gathers + Adds + KlnLayerNorm -> KlnEmbedLayerNorm; requires fuse-norm", NULL},
	{"fusions", NULL,
	 "the fuse-* passes in -O2 order, repeated while a pattern fired (at most 4 rounds)", fusion_group},
	{"fuse-qgemm", pass_fuse_qgemm,
	 "DynamicQuantizeLinear + MatMulInteger + Cast + scale Muls (int8 weights, symmetric) -> KlnGemmQ per tensor", NULL},
	{"quantize", pass_quantize,
	 "KlnGemm with constant W -> KlnGemmQ (int8 weights per column, activations per row); --quantize=int8 runs it last", NULL},
	{"pack-tokens", pass_pack_tokens,
	 "row-wise ops and attentions masked by one graph input run on the real tokens only "
	 "(KlnPackTokens/KlnUnpackTokens); --remove-padding runs it last; requires the fusions", NULL},
	{"fpmath-bf16", pass_fpmath_bf16,
	 "KlnAttention fpmath 1: Q K^T and P V on bf16 operands, f32 sums; --fpmath=bf16 runs it last, and --quantize=int8 without --fpmath where the target has AVX512_BF16", NULL},
};
#define NPASSES ((int)(sizeof passes / sizeof passes[0]))

/* The pipelines. */
static const char *const pipeline_o0[] = {"dce", NULL};
static const char *const pipeline_o1[] = {
	"cleanup", "fold", "einsum", "canon-reshape", "dce", "cse", "fold", "dce", NULL};
static const char *const pipeline_o2[] = {
	"cleanup", "fold", "einsum", "canon-reshape", "dce", "cse", "fold", "dce",
	"assume-dims", "fusions", "cse", "dce", "mask-names", NULL};

/* The fusion patterns (patterns.def). */
typedef struct PatternDef {
	const char *name, *pass, *roots, *doc;
} PatternDef;

static const PatternDef pattern_defs[] = {
#define PATTERN(name, pass, roots, doc) {#name, pass, roots, doc},
#include "patterns.def"
#undef PATTERN
};
#define NPATTERNS ((int)(sizeof pattern_defs / sizeof pattern_defs[0]))

int pass_pattern_count(void)
{
	return NPATTERNS;
}

const char *pass_pattern_name(int i)
{
	return i >= 0 && i < NPATTERNS ? pattern_defs[i].name : NULL;
}

int pass_pattern_lookup(const char *s, size_t len)
{
	for (int i = 0; i < NPATTERNS; i++)
		if (strlen(pattern_defs[i].name) == len && !strncmp(pattern_defs[i].name, s, len))
			return i;
	return -1;
}

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
	int id = pass_pattern_lookup(name, strlen(name));
	assert(id >= 0);   /* every pattern is in patterns.def */
	if (!s || id < 0)
		return;
	name = pattern_defs[id].name;
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

int pass_check_patterns(const char *option, const char *list, Diag *diag)
{
	if (!list)
		return 0;
	for (const char *p = list; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len && pass_pattern_lookup(p, len) < 0)
			return diag_fail(diag, "%s: unknown pattern '%.*s' (see kiln dump --list-passes)",
			                 option, (int)len, p);
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

static int fusion_total(const PassStats *s)
{
	int t = 0;
	for (int i = 0; s && i < s->nfusions; i++)
		t += s->fusion_count[i];
	return t;
}

static int run_one(Graph *g, const PassDef *p, const PassOptions *o, PassCtx *pc, Diag *diag)
{
	if (p->group) {
		/* a fixpoint: the group again while any pattern fired */
		if (o->print_before && !strcmp(o->print_before, p->name))
			dump(o, g, "before", p->name, -1, NULL, NULL);
		int nodes0 = live_nodes(g);
		PassStats g0 = {0};
		if (pc->stats)
			g0 = *pc->stats;
		for (int round = 0; round < FUSION_ROUNDS; round++) {
			int before = fusion_total(pc->stats);
			pc->round = round;
			for (int i = 0; p->group[i]; i++)
				if (run_one(g, find_pass(p->group[i], strlen(p->group[i])), o, pc, diag))
					return -1;
			if (fusion_total(pc->stats) == before)
				break;
		}
		pc->round = 0;
		if (o->print_after && !strcmp(o->print_after, p->name))
			dump(o, g, "after", p->name, nodes0, &g0, pc->stats);
		return 0;
	}
	if (pc->round == 0 && o->print_before && !strcmp(o->print_before, p->name))
		dump(o, g, "before", p->name, -1, NULL, NULL);
	int before = live_nodes(g);
	PassStats s0 = {0};
	if (pc->stats)
		s0 = *pc->stats;
	p->fn(g, pc);
	if (pc->failed)
		return -1;
	/* in the fixpoint's later rounds only a pass that fired is printed */
	bool quiet = pc->round > 0 && fusion_total(pc->stats) == fusion_total(&s0);
	if (!quiet && (o->print_after_all || (o->print_after && !strcmp(o->print_after, p->name))))
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

/* --explain=PATTERN, after the pipeline: the pattern's pass once more, only
 * matching (fuse_run's dry mode), so every candidate root left says why it
 * did not fuse.  The roots that fused said so when they fired. */
static void explain_rest(Graph *g, const PassOptions *o, PassCtx *pc)
{
	int id = pass_pattern_lookup(o->explain, strlen(o->explain));
	if (id < 0)
		return;
	FILE *f = o->dump ? o->dump : stdout;
	if (pass_pattern_disabled(pc, o->explain))
		fprintf(f, "explain %s: disabled by --disable-pattern (the reasons below are what it "
		           "would have found)\n", o->explain);
	const PassDef *p = find_pass(pattern_defs[id].pass, strlen(pattern_defs[id].pass));
	assert(p && p->fn);
	PassCtx dry = *pc;
	dry.dry = true;
	p->fn(g, &dry);
	/* nothing fused and no candidate left: say so (not as "explain NAME: ",
	 * the prefix of the one line per root that scripts count); for the
	 * fusions' patterns, which fuse_run explains (pack-tokens explains
	 * itself) */
	bool fusion = false;
	for (int i = 0; fusion_group[i]; i++)
		fusion |= !strcmp(fusion_group[i], pattern_defs[id].pass);
	if (fusion && dry.nexplained == 0)
		fprintf(f, "explain %s - no candidate root (%s) in the graph\n", o->explain,
		        pattern_defs[id].roots);
	fflush(f);
}

static int run_pipeline(Graph *g, const PassOptions *o, PassCtx *pc, Diag *diag)
{
	if (pass_check_patterns("--disable-pattern", o->disabled_patterns, diag))
		return -1;
	if (o->explain && pass_pattern_lookup(o->explain, strlen(o->explain)) < 0)
		return diag_fail(diag, "--explain: unknown pattern '%s' (see kiln dump --list-passes)",
		                 o->explain);
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
			if (len && run_one(g, find_pass(p, len), o, pc, diag))
				return -1;
			if (!e)
				break;
			p = e + 1;
		}
	} else {
		const char *const *pl = o->opt_level <= 0 ? pipeline_o0 :
		                        o->opt_level == 1 ? pipeline_o1 : pipeline_o2;
		for (int i = 0; pl[i]; i++)
			if (run_one(g, find_pass(pl[i], strlen(pl[i])), o, pc, diag))
				return -1;
	}
	if (o->quantize_int8 && run_one(g, find_pass("quantize", 8), o, pc, diag))
		return -1;
	if (o->remove_padding && run_one(g, find_pass("pack-tokens", 11), o, pc, diag))
		return -1;
	if (o->fpmath_bf16 && run_one(g, find_pass("fpmath-bf16", 11), o, pc, diag))
		return -1;
	if (o->explain)
		explain_rest(g, o, pc);
	return 0;
}

int pass_run_pipeline(Graph *g, const PassOptions *opt, PassStats *stats, Diag *diag)
{
	PassOptions dflt = {.opt_level = 2};
	const PassOptions *o = opt ? opt : &dflt;
	PassStats local = {0};
	PassCtx pc = {.opt = o, .stats = stats ? stats : &local, .diag = diag};
	int rc = run_pipeline(g, o, &pc, diag);
	free(pc.made);   /* --explain's record of the pattern's own results */
	return rc;
}

static void print_list(FILE *f, const char *title, const char *const *names)
{
	fprintf(f, "%s", title);
	for (int i = 0; names[i]; i++)
		fprintf(f, " %s", names[i]);
	fprintf(f, "\n");
}

void pass_list(FILE *f)
{
	for (int i = 0; i < NPASSES; i++)
		fprintf(f, "%-16s %s\n", passes[i].name, passes[i].doc);
	fprintf(f, "\n");
	print_list(f, "-O0:", pipeline_o0);
	print_list(f, "-O1:", pipeline_o1);
	print_list(f, "-O2:", pipeline_o2);
	print_list(f, "fusions:", fusion_group);
	fprintf(f, "\nfusion patterns (--disable-pattern=NAME, --explain=NAME; pass, root ops):\n");
	for (int i = 0; i < NPATTERNS; i++)
		fprintf(f, "%-16s %s (%s, root %s)\n", pattern_defs[i].name, pattern_defs[i].doc,
		        pattern_defs[i].pass, pattern_defs[i].roots);
}
