/* emit_desc.c: the data half of the module: @kiln__weights and the model
 * descriptor @kiln__desc (rt_model_desc of runtime/rt.h, field by field).
 *
 * Weights: in a .so with embedded weights the blob is written by link.c
 * (elf_weights.c: weights.o, or .incbin elsewhere) and only declared here;
 * for .o/.ll/.s it is a constant in the module; with external weights
 * there is no symbol (desc->weights NULL, desc->weights_file names the
 * side file). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/TargetMachine.h>

#include "be.h"
#include "rt.h"

/* Side files: OUT without a trailing ".so", plus ext (".h", ".weights"). */
int be_side_path(const char *out, const char *ext, char *buf, size_t len, Diag *diag)
{
	size_t n = strlen(out);
	if (n > 3 && !strcmp(out + n - 3, ".so"))
		n -= 3;
	return be_path(diag, buf, len, "%.*s%s", (int)n, out, ext);
}

void be_emit_weights_global(Be *be)
{
	be->g_weights = NULL;
	be->weights_defined = false;
	if (be->opt->weights_external)
		return;
	if (be->opt->emit == BE_EMIT_SO && be->blob_bytes > 0) {
		/* defined by weights.S (link.c) */
		be->g_weights = LLVMAddGlobal(be->mod, LLVMArrayType2(be->t_i8, 0), "kiln__weights");
		LLVMSetVisibility(be->g_weights, LLVMHiddenVisibility);
		LLVMSetAlignment(be->g_weights, BE_WALIGN);
		LLVMSetGlobalConstant(be->g_weights, 1);
		return;
	}
	LLVMValueRef init = be->blob_bytes
		? LLVMConstStringInContext2(be->ctx, (const char *)be->blob, be->blob_bytes, 1)
		: LLVMConstNull(LLVMArrayType2(be->t_i8, 1));
	be->g_weights = LLVMAddGlobal(be->mod, LLVMTypeOf(init), "kiln__weights");
	LLVMSetInitializer(be->g_weights, init);
	LLVMSetGlobalConstant(be->g_weights, 1);
	LLVMSetVisibility(be->g_weights, LLVMHiddenVisibility);
	LLVMSetAlignment(be->g_weights, BE_WALIGN);
	be->weights_defined = true;
}

static LLVMValueRef null_ptr(Be *be)
{
	return LLVMConstNull(be->t_ptr);
}

/* A private constant global of type [n x ety] holding vals; null if n == 0. */
static LLVMValueRef const_global(Be *be, LLVMTypeRef ety, LLVMValueRef *vals, int n, const char *name)
{
	if (n == 0)
		return null_ptr(be);
	LLVMValueRef init = LLVMConstArray2(ety, vals, (uint64_t)n);
	LLVMValueRef g = LLVMAddGlobal(be->mod, LLVMTypeOf(init), name);
	LLVMSetInitializer(g, init);
	LLVMSetGlobalConstant(g, 1);
	LLVMSetLinkage(g, LLVMPrivateLinkage);
	return g;
}

/* per graph input: ir_index_bound of the integer ones, 0 for the others */
static LLVMValueRef index_bounds(Be *be)
{
	Graph *g = be->g;
	LLVMValueRef *a = calloc((size_t)g->ninputs + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < g->ninputs; i++) {
		const Value *val = IR_VAL(g, g->inputs[i]);
		bool integer = val->dtype == DT_I64 || val->dtype == DT_I32;
		a[i] = be_i64(be, integer ? ir_index_bound(g, g->inputs[i]) : 0);
	}
	LLVMValueRef r = const_global(be, be->t_i64, a, g->ninputs, ".index_bound");
	free(a);
	return r;
}

static LLVMValueRef io_info(Be *be, LLVMTypeRef t_io, ValId v)
{
	Graph *g = be->g;
	const Value *val = IR_VAL(g, v);
	LLVMValueRef dims[IR_MAX_RANK];
	for (int d = 0; d < val->rank; d++) {
		char s[256];
		ir_dim_str(g, val->dims[d], s, sizeof s);
		dims[d] = be_cstr(be, s);
	}
	LLVMValueRef f[4] = {
		be_cstr(be, val->name ? val->name : ""), be_i32(be, val->dtype), be_i32(be, val->rank),
		const_global(be, be->t_ptr, dims, val->rank, ".iodims"),
	};
	return LLVMConstNamedStruct(t_io, f, 4);
}

static LLVMValueRef io_array(Be *be, LLVMTypeRef t_io, const ValId *vals, int n, const char *name)
{
	LLVMValueRef *a = calloc((size_t)n + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < n; i++)
		a[i] = io_info(be, t_io, vals[i]);
	LLVMValueRef g = const_global(be, t_io, a, n, name);
	free(a);
	return g;
}

/* nin rows of KILN_MAX_RANK rt_dim: constant, symbol, or an expression's
 * pseudo-symbol (never RT_DIM_EXPR: the frame does not carry input shapes,
 * so kiln__run gets the actual dim through the runtime's binding). */
static LLVMValueRef in_dims(Be *be, LLVMTypeRef t_dim)
{
	Graph *g = be->g;
	int n = g->ninputs * KILN_MAX_RANK;
	LLVMValueRef *a = calloc((size_t)n + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < g->ninputs; i++) {
		const Value *val = IR_VAL(g, g->inputs[i]);
		for (int d = 0; d < KILN_MAX_RANK; d++) {
			int64_t sym = -1, c = 0;
			if (d < val->rank) {
				const DimNode *dn = ir_dim_node(g, val->dims[d]);
				if (dn->kind == DIM_CONST)
					c = dn->c;
				else if (dn->kind == DIM_SYM)
					sym = be->symmap[dn->c];
				else   /* bound as a pseudo-symbol, checked by kiln__run */
					sym = be_expr_sym(be, val->dims[d]);
			}
			LLVMValueRef f[2] = {be_i32(be, sym), be_i64(be, c)};
			a[i * KILN_MAX_RANK + d] = LLVMConstNamedStruct(t_dim, f, 2);
		}
	}
	LLVMValueRef r = const_global(be, t_dim, a, n, ".in_dims");
	free(a);
	return r;
}

static LLVMValueRef i32_array(Be *be, const int32_t *v, int n, const char *name)
{
	LLVMValueRef *a = calloc((size_t)n + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < n; i++)
		a[i] = be_i32(be, v[i]);
	LLVMValueRef r = const_global(be, be->t_i32, a, n, name);
	free(a);
	return r;
}

static LLVMValueRef sym_names(Be *be)
{
	int n = be->nsym;
	LLVMValueRef *a = calloc((size_t)n + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < ir_nsyms(be->g); i++)
		if (be->symmap[i] >= 0)
			a[be->symmap[i]] = be_cstr(be, ir_sym_name(be->g, i));
	for (int i = 0; i < be->nexpr; i++) {
		char s[256];
		ir_dim_str(be->g, be->expr_dim[i], s, sizeof s);
		a[be->expr_sym[i]] = be_cstr(be, s);
	}
	LLVMValueRef r = const_global(be, be->t_ptr, a, n, ".sym_names");
	free(a);
	return r;
}

typedef struct WName { int64_t off; ValId v; } WName;

static int wname_cmp(const void *a, const void *b)
{
	int64_t x = ((const WName *)a)->off, y = ((const WName *)b)->off;
	return (x > y) - (x < y);
}

/* rt_weight_name of every named constant with bytes in the blob, by offset
 * ascending (kernels' messages name tables with it); *count of them. */
static LLVMValueRef weight_names(Be *be, LLVMTypeRef t_wn, int32_t *count)
{
	Graph *g = be->g;
	WName *w = calloc((size_t)g->nvals + 1, sizeof *w);
	if (!w)
		abort();
	int n = 0;
	for (ValId v = 0; v < g->nvals; v++) {
		const Value *val = IR_VAL(g, v);
		if (be->voff[v] >= 0 && val->nbytes && val->name && val->name[0])
			w[n++] = (WName){ be->voff[v], v };
	}
	qsort(w, (size_t)n, sizeof *w, wname_cmp);
	LLVMValueRef *a = calloc((size_t)n + 1, sizeof *a);
	if (!a)
		abort();
	for (int i = 0; i < n; i++) {
		LLVMValueRef f[2] = {be_i64(be, w[i].off), be_cstr(be, IR_VAL(g, w[i].v)->name)};
		a[i] = LLVMConstNamedStruct(t_wn, f, 2);
	}
	LLVMValueRef r = const_global(be, t_wn, a, n, ".weight_names");
	free(a);
	free(w);
	*count = n;
	return r;
}

/* The features of cpu_features.def in an LLVM feature string ("+avx2,-avx512f,..."):
 * the enabled ones, comma-separated, into out. */
static void checkable_features(const char *llvm, char *out, size_t n)
{
	static const char *const known[] = {
#define X(name) name,
#include "cpu_features.def"
#undef X
	};
	size_t len = 0;
	out[0] = 0;
	for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
		size_t kl = strlen(known[k]);
		for (const char *p = llvm; (p = strstr(p, known[k])); p += kl) {
			bool whole = p > llvm && p[-1] == '+' && (p[kl] == ',' || p[kl] == 0);
			if (whole && len + kl + 2 < n) {
				len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : "", known[k]);
				break;
			}
		}
	}
}

/* What the model records of its target (see rt_model_desc): this machine's
 * CPU and features by default; the x86-64 levels' features from the psABI;
 * another named CPU or triple: its name, features unknown (""). */
static void target_features(const BeOptions *o, char *cpu, size_t ncpu, char *feat, size_t nfeat)
{
	static const char *const levels[][2] = {
		{"x86-64", ""},
		{"x86-64-v2", "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt"},
		{"x86-64-v3", "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+avx2,+fma,+bmi,+bmi2"},
		{"x86-64-v4", "+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+avx2,+fma,+bmi,+bmi2,"
		              "+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl"},
	};
	feat[0] = 0;
	if (!o->target_cpu && !o->target_triple) {
		char *name = LLVMGetHostCPUName(), *f = LLVMGetHostCPUFeatures();
		snprintf(cpu, ncpu, "%s", name);
		checkable_features(f, feat, nfeat);
		LLVMDisposeMessage(name);
		LLVMDisposeMessage(f);
		return;
	}
	snprintf(cpu, ncpu, "%s", o->target_cpu ? o->target_cpu : "generic");
	if (o->target_triple && strncmp(o->target_triple, "x86_64", 6))
		return;
	for (size_t k = 0; o->target_cpu && k < sizeof levels / sizeof levels[0]; k++)
		if (!strcmp(o->target_cpu, levels[k][0]))
			checkable_features(levels[k][1], feat, nfeat);
}

bool be_target_has_feature(const BeOptions *o, const char *name)
{
	char cpu[128], feat[1024];
	target_features(o, cpu, sizeof cpu, feat, sizeof feat);
	size_t n = strlen(name);
	for (const char *p = feat; (p = strstr(p, name)); p += n)
		if ((p == feat || p[-1] == ',') && (p[n] == ',' || p[n] == 0))
			return true;
	return false;
}

void be_emit_desc(Be *be)
{
	Graph *g = be->g;
	LLVMContextRef c = be->ctx;
	LLVMTypeRef t_io = LLVMStructCreateNamed(c, "kiln_io_info");
	LLVMTypeRef iof[4] = {be->t_ptr, be->t_i32, be->t_i32, be->t_ptr};
	LLVMStructSetBody(t_io, iof, 4, 0);
	LLVMTypeRef t_dim = LLVMStructCreateNamed(c, "rt_dim");
	LLVMTypeRef dimf[2] = {be->t_i32, be->t_i64};
	LLVMStructSetBody(t_dim, dimf, 2, 0);
	LLVMTypeRef t_desc = LLVMStructCreateNamed(c, "rt_model_desc");
	LLVMTypeRef P = be->t_ptr, I = be->t_i32;
	LLVMTypeRef df[32] = {I, P, I, I, I, I, P, P, P, P, P, P, P, be->t_i64, P, P, P, P,
	                      be->t_i64, P, P, be->t_i64, P, P, I, I, I, I, P, P, I, P};
	LLVMStructSetBody(t_desc, df, 32, 0);
	LLVMTypeRef t_wn = LLVMStructCreateNamed(c, "rt_weight_name");
	LLVMTypeRef wnf[2] = {be->t_i64, P};
	LLVMStructSetBody(t_wn, wnf, 2, 0);
	int32_t nwn;
	LLVMValueRef wnames = weight_names(be, t_wn, &nwn);
	int32_t nnodes;
	LLVMValueRef nodes = be_prof_nodes(be, &nnodes);
	char *triple = be_triple(be->opt->target_triple);
	rt_hash wh;
	rt_hash_init(&wh);
	rt_hash_add(&wh, be->blob, be->blob_bytes);
	char cpu[128], feat[1024];
	target_features(be->opt, cpu, sizeof cpu, feat, sizeof feat);

	char wfile[BE_PATH_MAX];
	LLVMValueRef wf = null_ptr(be);
	if (be->opt->weights_external) {
		be_side_path(be->opt->out, ".weights", wfile, sizeof wfile, NULL);   /* checked by be_codegen */
		const char *base = strrchr(wfile, '/');
		wf = be_cstr(be, base ? base + 1 : wfile);
	}
	LLVMValueRef f[32] = {
		be_i32(be, RT_ABI_VERSION),
		be_cstr(be, g->name ? g->name : "model"),
		be_i32(be, g->ninputs), be_i32(be, g->noutputs), be_i32(be, be->nsym), be_i32(be, be->nbufs),
		io_array(be, t_io, g->inputs, g->ninputs, ".inputs"),
		io_array(be, t_io, g->outputs, g->noutputs, ".outputs"),
		in_dims(be, t_dim),
		sym_names(be),
		i32_array(be, be->buf_first, be->nbufs, ".buf_first"),
		i32_array(be, be->buf_last, be->nbufs, ".buf_last"),
		wf,
		be_i64(be, (int64_t)be->blob_bytes),
		be->g_weights ? be->g_weights : null_ptr(be),
		LLVMGetNamedFunction(be->mod, "kiln__plan"),
		LLVMGetNamedFunction(be->mod, "kiln__out_shapes"),
		LLVMGetNamedFunction(be->mod, "kiln__run"),
		be_i64(be, (int64_t)be->blob_hot),
		be_cstr(be, cpu),
		be_cstr(be, feat),
		be_i64(be, (int64_t)rt_hash_end(&wh)),
		be_cstr(be, KILN_VERSION),
		be_cstr(be, triple),
		be_i32(be, be->opt->fpmath == BE_FPMATH_BF16),
		be_i32(be, be->ndyn_sym),
		be_i32(be, be->ndyn),
		be_i32(be, nnodes),
		nodes,
		index_bounds(be),
		be_i32(be, nwn),
		wnames,
	};
	LLVMDisposeMessage(triple);
	LLVMValueRef desc = LLVMAddGlobal(be->mod, t_desc, "kiln__desc");
	LLVMSetInitializer(desc, LLVMConstNamedStruct(t_desc, f, 32));
	LLVMSetGlobalConstant(desc, 1);
}
