/* rt.h: the ABI between code kiln generates and the runtime linked into
 * every compiled model.  Nothing here is public API (see kiln.h); the
 * backend (backend/) emits LLVM IR that matches these declarations exactly,
 * so a change here is a change there.
 *
 * A compiled .so holds:
 *   - generated code: kiln__run, kiln__plan, kiln__out_shapes (below), and
 *     the descriptor `kiln__desc` (rt_model_desc);
 *   - the weights, embedded (symbol kiln__weights, 64-byte aligned) or in
 *     OUT.weights beside it (mapped at load);
 *   - this runtime (libkiln_rt.a, -fPIC): the kiln_* API of kiln.h is
 *     reached through the one exported symbol `kiln_entry` (rt_entry), so
 *     two models loaded in one process never clash.
 *
 * The run of a model:
 *   1. rt binds symbols (batch, sequence, s41, ...) from the input shapes
 *      using desc->in_dims; a mismatch (wrong rank, dtype, contradicting
 *      dims) is an error naming the input and dim;
 *   2. if the symbol values changed since the last run: kiln__plan checks
 *      the sizes of every tensor (overflow, size limit: an rt_error naming
 *      the node) and computes
 *      the byte size of every arena buffer, rt assigns offsets (greedy,
 *      liveness from desc->buf_first/buf_last, 64-byte aligned), grows the
 *      arena; kiln__out_shapes computes the output shapes;
 *   3. kiln__run(frame) executes every op; it returns 0, or non-zero after
 *      a kernel called rt_error (then the error is the context's).
 * No allocation happens in steps 1-3 when shapes repeat.
 *
 * Data-dependent shapes (desc->ndyn_sym > 0: an extent comes from a
 * tensor's values, e.g. a Reshape whose shape is a graph input).  The
 * last ndyn_sym desc symbols are bound during the run, not by input dims:
 * before a node that defines such extents, kiln__run calls the op's shape
 * function rt_shape_<Op> (kernel signature; it reads its inputs' values,
 * checks them and writes the output dims), stores each new extent in
 * f->sym and checks the others against the planned dims.  Values whose
 * dims mention such a symbol are not in the arena: each has a slot
 * f->dyn[k] that rt_dyn_alloc grows (kept across runs) before the node
 * that writes it.  Graph outputs are then all copied at the end: kiln__run
 * calls rt_dyn_outputs (output shapes from the bound symbols, output
 * buffers) before the copies.  Models without such shapes do none of it.
 */
#ifndef KILN_RT_H
#define KILN_RT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kiln.h"

#define RT_ABI_VERSION 4

/* The panel layout of a GEMM weight matrix W [K, N] (f32), as the backend
 * stores the W of every KlnGemm (then its ia[1] == RT_GEMM_PANEL) and as
 * the runtime's GEMM micro-kernels read it: ceil(N / P) panels of P
 * columns, one after the other; panel q holds, for k = 0 .. K-1, the P
 * values W[k, q*P .. q*P+P-1] (zeros past column N).  So any K range of a
 * panel is contiguous, whatever block size the runtime picks.  P = 48 is
 * the AVX-512 micro-kernel's width, a multiple of the AVX2 one's (16). */
#define RT_GEMM_PANEL 48

static inline int64_t rt_gemm_panel_floats(int64_t K, int64_t N)
{
	return K * ((N + RT_GEMM_PANEL - 1) / RT_GEMM_PANEL * RT_GEMM_PANEL);
}

/* W (row-major [K, N], any alignment) into dst (rt_gemm_panel_floats). */
static inline void rt_gemm_pack_panels(const void *W, int64_t K, int64_t N, float *dst)
{
	const char *w = (const char *)W;
	for (int64_t q = 0; q < N; q += RT_GEMM_PANEL) {
		int64_t cols = N - q < RT_GEMM_PANEL ? N - q : RT_GEMM_PANEL;
		for (int64_t k = 0; k < K; k++, dst += RT_GEMM_PANEL) {
			memcpy(dst, w + (size_t)(k * N + q) * sizeof(float), (size_t)cols * sizeof(float));
			memset(dst + cols, 0, (size_t)(RT_GEMM_PANEL - cols) * sizeof(float));
		}
	}
}

/* A 64-bit content hash of the weights blob, computed by the compiler
 * (rt_model_desc.weights_hash) and again when a model loads its external
 * weights file, so another model's file of the same size is refused.  Four
 * independent lanes of multiply-xorshift over 8-byte words: fast enough to
 * hash a BERT's weights in a small fraction of their load time.  Feed it
 * pieces whose sizes are multiples of 32 bytes, except the last. */
typedef struct rt_hash { uint64_t h[4]; uint64_t n; } rt_hash;

static inline void rt_hash_init(rt_hash *s)
{
	for (int k = 0; k < 4; k++)
		s->h[k] = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
	s->n = 0;
}

static inline uint64_t rt_hash_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 31);
}

static inline void rt_hash_add(rt_hash *s, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t i = 0;
	for (; i + 32 <= n; i += 32)
		for (int k = 0; k < 4; k++) {
			uint64_t w;
			memcpy(&w, p + i + 8 * k, 8);
			s->h[k] = rt_hash_mix(s->h[k], w);
		}
	for (; i < n; i++)
		s->h[0] = rt_hash_mix(s->h[0], p[i] | 0x100u);
	s->n += n;
}

static inline uint64_t rt_hash_end(const rt_hash *s)
{
	uint64_t h = s->n;
	for (int k = 0; k < 4; k++)
		h = rt_hash_mix(h, s->h[k]);
	return h;
}

/* The bf16 panel layout (kiln compile --fpmath=bf16; then the KlnGemm's
 * ia[2] == RT_GEMM_W_BF16): the same panels of P columns, but each holds,
 * for each pair p = 0 .. ceil(K/2)-1 of rows and each of its P columns c,
 * the two bf16 values W[2p, c], W[2p+1, c] (in that order; zeros past K
 * and N): the pairs AVX512_BF16's vdpbf16ps multiplies.  Rounded to
 * nearest even; NaN stays NaN. */
#define RT_GEMM_W_F32 0
#define RT_GEMM_W_BF16 1

static inline int64_t rt_gemm_panel_bf16s(int64_t K, int64_t N)
{
	return (K + 1) / 2 * 2 * ((N + RT_GEMM_PANEL - 1) / RT_GEMM_PANEL * RT_GEMM_PANEL);
}

static inline uint16_t rt_f32_to_bf16(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 0x40);          /* quiet NaN */
	return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* W (row-major [K, N] f32, any alignment) into dst (rt_gemm_panel_bf16s). */
static inline void rt_gemm_pack_panels_bf16(const void *W, int64_t K, int64_t N, uint16_t *dst)
{
	const char *w = (const char *)W;
	for (int64_t q = 0; q < N; q += RT_GEMM_PANEL)
		for (int64_t k = 0; k < K; k += 2)
			for (int64_t c = q; c < q + RT_GEMM_PANEL; c++, dst += 2)
				for (int64_t h = 0; h < 2; h++) {
					float v = 0.0f;
					if (c < N && k + h < K)
						memcpy(&v, w + (size_t)((k + h) * N + c) * sizeof(float), sizeof v);
					dst[h] = rt_f32_to_bf16(v);
				}
}

struct rt_pool;
struct rt_prof;
struct kiln_context;

/* One tensor as kernels see it: dense, row-major. */
typedef struct rt_t {
	void *data;
	int32_t dtype;                 /* kiln_dtype */
	int32_t rank;
	int64_t dims[KILN_MAX_RANK];
} rt_t;

typedef struct kiln_frame {
	const void *const *in;         /* input data, model order */
	void *const *out;              /* output buffers, model order */
	char *arena;                   /* planned arena base (64-byte aligned) */
	const int64_t *bufoff;         /* byte offset of each planned buffer */
	const int64_t *sym;            /* symbol values, desc order */
	const char *weights;           /* base of the weights blob */
	struct rt_pool *pool;          /* the context's threads */
	struct kiln_context *ctx;      /* for rt_error */
	const char *weights_cold;      /* the blob from desc->weights_hot_bytes on */
	void **dyn;                    /* data-dependent buffers (desc->ndyn slots) */
	struct rt_prof *prof;          /* NULL unless the context is profiling */
} kiln_frame;

/* Per input dim: a constant (sym < 0, value in c), a symbol to bind or
 * check (sym >= 0), or an expression checked by kiln__run (sym == RT_DIM_EXPR). */
#define RT_DIM_EXPR (-2)
typedef struct rt_dim { int32_t sym; int64_t c; } rt_dim;

typedef struct rt_model_desc {
	int32_t abi_version;           /* RT_ABI_VERSION */
	const char *name;
	int32_t nin, nout, nsym, nbuf;
	const kiln_io_info *inputs, *outputs;
	const rt_dim *in_dims;         /* nin * KILN_MAX_RANK, row per input */
	const char *const *sym_names;
	const int32_t *buf_first, *buf_last;   /* liveness: op index range */
	const char *weights_file;      /* NULL when embedded, else file name beside the .so */
	uint64_t weights_bytes;
	const char *weights;           /* embedded blob (NULL when external) */
	/* generated functions */
	/* bytes per buffer, after checking every size the run computes (no
	 * 64-bit overflow, within the size limit); 0, or rt_error(f, ...) */
	int (*plan)(const int64_t *sym, int64_t *bufsize, kiln_frame *f);
	void (*out_shapes)(const int64_t *sym, int64_t *shapes);        /* nout * KILN_MAX_RANK */
	int (*run)(kiln_frame *f);
	/* The blob's first weights_hot_bytes are read by kernels as a whole
	 * (the runtime copies them into memory of its own); the rest, from
	 * that offset (a multiple of RT_WEIGHTS_COLD_ALIGN) on, are tables
	 * only looked up by row (embeddings), reached through
	 * f->weights_cold and left in the file: only rows a run reads become
	 * resident. */
	uint64_t weights_hot_bytes;
	/* The CPU the code was generated for (LLVM's name; "generic" for another
	 * triple without --target-cpu) and the features of cpu_features.def it
	 * may use, comma-separated ("" when unknown: a named CPU other than the
	 * x86-64 levels): kiln_model_load refuses a CPU that lacks one. */
	const char *target_cpu;
	const char *cpu_features;
	uint64_t weights_hash;         /* rt_hash of the weights blob */
	const char *kiln_version;      /* of the compiler that made the model */
	const char *target_triple;
	int32_t fpmath;                /* 0 fp32, 1 bf16 (kiln compile --fpmath) */
	int32_t ndyn_sym;              /* the last ndyn_sym symbols are bound by nodes */
	int32_t ndyn;                  /* slots of data-dependent buffers */
	/* The live nodes in execution order, for the profiler (profile.c):
	 * node i of kiln__run calls rt_prof_begin(f, i) and rt_prof_end(f, i,
	 * dims) around its function when f->prof is set. */
	int32_t nnodes;
	const struct rt_node_info *nodes;
	/* Per input: the rows of the embedding table its integer values index
	 * (ids must be below it), 0 when unknown (kiln_model_input_index_bound). */
	const int64_t *in_index_bound;
	/* The constants' names (initializers, or the names the compiler gave
	 * the constants it made), by offset in the weights blob, ascending, so
	 * that a kernel's message names a table (rt_in_desc) as it names a
	 * graph input. */
	int32_t nweight_names;
	const struct rt_weight_name *weight_names;
} rt_model_desc;

typedef struct rt_weight_name {
	uint64_t offset;               /* in the blob (hot and cold parts alike) */
	const char *name;
} rt_weight_name;

/* What the profiler knows of a node.  Its operands are its nin inputs and
 * nout outputs; opnd holds per operand its dtype (0: an absent optional
 * input) and rank; the dims rt_prof_end gets are those of every operand
 * in order (ndims = the sum of the ranks).  GEMMs and attention count
 * floating-point operations as
 *   numel(output 0) * dim(input flop_in, axis flop_axis) * flop_mul / flop_div
 * (a GEMM: 2 * M * N * K; attention: 2 * B * H * Sq * Sk * (D + Dv));
 * flop_mul 0: not counted. */
typedef struct rt_node_info {
	const char *op;                /* "KlnGemm", "Add" */
	const char *name;              /* the node's name, or "Op#id" */
	const char *const *fused_from; /* the ONNX nodes a fused op absorbed, nfused of them */
	int32_t nfused;
	int32_t nin, nout;
	const int64_t *opnd;           /* (nin + nout) x {dtype, rank} */
	int32_t ndims;
	int32_t flop_in, flop_axis;
	int64_t flop_mul, flop_div;
} rt_node_info;

/* The profiler's hooks in generated code (runtime/profile.c), called only
 * when f->prof is set. */
void rt_prof_begin(kiln_frame *f, int32_t node);
void rt_prof_end(kiln_frame *f, int32_t node, const int64_t *dims);

#define RT_WEIGHTS_COLD_ALIGN 65536    /* any page size */

/* What `kiln_entry` returns: the API of kiln.h for this model. */
typedef struct rt_entry {
	int32_t abi_version;
	const rt_model_desc *desc;
	kiln_context *(*context_create)(const rt_model_desc *d, const char *so_path, int nthreads);
	void (*context_free)(kiln_context *c);
	int (*run)(kiln_context *c, const kiln_tensor *in, int nin, kiln_tensor *out, int nout);
	const char *(*last_error)(const kiln_context *c);
	size_t (*arena_bytes)(const kiln_context *c);
	/* added: why the last context_create on this thread returned NULL */
	const char *(*create_error)(void);
} rt_entry;

/* The one symbol a compiled model exports (runtime/entry.c).  The .so must
 * pull it out of libkiln_rt.a: link with -Wl,-u,kiln_entry (or
 * --whole-archive). */
const rt_entry *kiln_entry(void);

/* Entry points added after ABI version 3, exported beside kiln_entry (the
 * same object of the archive) as kiln_entry_ext: a model made before them
 * lacks the symbol, and the loader then reports the feature missing
 * instead of refusing the model; an older loader ignores it.  size is
 * sizeof(rt_entry_ext) of the model's runtime: later fields are appended,
 * and the loader uses only those below size. */
typedef struct rt_entry_ext {
	uint32_t size;
	/* the profiler (profile.c; kiln.h kiln_context_profile_*) */
	int (*profile_start)(kiln_context *c);
	int (*profile_stop)(kiln_context *c);
	size_t (*profile_count)(const kiln_context *c);
	/* fills the first evsize bytes of *ev (a kiln_profile_event) */
	int (*profile_event)(const kiln_context *c, size_t i, kiln_profile_event *ev, size_t evsize);
	int (*profile_write)(kiln_context *c, const char *path);
} rt_entry_ext;

const rt_entry_ext *kiln_entry_ext(void);

/* Report an error from a kernel (formats into the context); returns 1. */
int rt_error(kiln_frame *f, const char *fmt, ...);

/* Data-dependent shapes (see the top): grow slot k of f->dyn to bytes
 * (the generated code checked the size); 0 or rt_error. */
int rt_dyn_alloc(kiln_frame *f, int32_t slot, int64_t bytes);
/* After the last node: the output shapes from the bound symbols, then the
 * caller's output buffers (as kiln_run binds them); 0 or rt_error. */
int rt_dyn_outputs(kiln_frame *f);

/* Run fn over [0, n) on the context's threads: n is cut into contiguous
 * chunks [begin, end) (fixed by n and the thread count) that the threads,
 * the calling one included, take as they come free; returns when all are
 * done.  Nested calls run serially.  p may be NULL (serial). */
void rt_parallel_for(struct rt_pool *p, int64_t n,
                     void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/* ---- kernels --------------------------------------------------------------
 * Every op the backend does not emit as inline loops is one call:
 *
 *   int rt_op_<Name>(kiln_frame *f, const char *loc,
 *                    const rt_t *in, int32_t nin, rt_t *out, int32_t nout,
 *                    const int64_t *ia, int32_t nia, const float *fa, int32_t nfa);
 *
 * loc is the source node name for messages.  in[k].data == NULL for an
 * absent optional input.  Output data and dims are set by the generated
 * code (dims from shape inference, evaluated for this run); kernels write
 * the output data only.  ia/fa carry the op's attributes, normalized by the
 * backend (negative axes made positive, defaults filled in), in the order
 * documented for each op in runtime/kernels.c.  Returns 0 or rt_error(...).
 */
typedef int (*rt_kernel_fn)(kiln_frame *f, const char *loc, const rt_t *in, int32_t nin,
                            rt_t *out, int32_t nout, const int64_t *ia, int32_t nia,
                            const float *fa, int32_t nfa);

/* The attribute slots of the fused ops (runtime/fused_attrs.def): a fused
 * op's kernel reads ia[RT_IA_<Op>_<name>], fa[RT_FA_<Op>_<name>]; the
 * backend passes RT_NIA_<Op> ints and RT_NFA_<Op> floats. */
enum {
#define FUSED_OP(op) RT_IA_##op##_BEGIN_ = -1,
#define FUSED_I(op, name) RT_IA_##op##_##name,
#define FUSED_B(op, name) RT_IA_##op##_##name,
#define FUSED_F(op, name)
#define FUSED_END(op) RT_NIA_##op,
#include "fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_B
#undef FUSED_F
#undef FUSED_END
};
enum {
#define FUSED_OP(op) RT_FA_##op##_BEGIN_ = -1,
#define FUSED_I(op, name)
#define FUSED_B(op, name)
#define FUSED_F(op, name) RT_FA_##op##_##name,
#define FUSED_END(op) RT_NFA_##op,
#include "fused_attrs.def"
#undef FUSED_OP
#undef FUSED_I
#undef FUSED_B
#undef FUSED_F
#undef FUSED_END
};

/* The shape function of an op whose output extents come from input
 * values (kernels_shape.c): the kernel signature; out[k].dtype and .rank
 * are set, it writes out[k].dims (data is NULL) after checking the values
 * (an rt_error naming the node on a bad one).  ia: Reshape [allowzero],
 * Split and OneHot [axis] (normalized), Reduce* [keepdims,
 * noop_with_empty_axes]. */
#define RT_SHAPE(name) \
	int rt_shape_##name(kiln_frame *f, const char *loc, const rt_t *in, int32_t nin, \
	                    rt_t *out, int32_t nout, const int64_t *ia, int32_t nia, \
	                    const float *fa, int32_t nfa)

#define RT_KERNEL(name) \
	int rt_op_##name(kiln_frame *f, const char *loc, const rt_t *in, int32_t nin, \
	                 rt_t *out, int32_t nout, const int64_t *ia, int32_t nia, \
	                 const float *fa, int32_t nfa)

#endif
