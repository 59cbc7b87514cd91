/* rt_internal.h: declarations private to the runtime (the runtime's .c
 * files and its unit tests).  Not part of the ABI with generated code (rt.h)
 * nor of the public API (kiln.h). */
#ifndef KILN_RT_INTERNAL_H
#define KILN_RT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt.h"
#include "rt_arena.h"

#define RT_ALIGN RT_ARENA_ALIGN
#define RT_ERR_MAX 512

/* Overflow-checked size arithmetic: true when *r = a op b fits int64.
 * The compiler's are ir/checked.h's ck_*; the runtime includes nothing of
 * the compiler, so these two are a deliberate copy. */
static inline bool rt_ck_mul(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static inline bool rt_ck_add(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

/* One context: everything a run needs, allocated at creation or grown on
 * re-plan; a steady-state run allocates nothing. */
struct kiln_context {
	const rt_model_desc *d;
	struct rt_pool *pool;
	int nthreads;
	char err[RT_ERR_MAX];

	/* weights (weights.c): shared by the model's contexts */
	const char *weights, *weights_cold;
	bool holds_weights;

	/* symbols of this run, and of the last plan */
	int64_t *sym, *plan_sym;
	int32_t *sym_src;          /* input*KILN_MAX_RANK+dim that bound each symbol, -1 */
	bool planned;

	/* arena plan */
	int64_t *bufsize, *bufoff;
	rt_arena_item *order;      /* scratch: buffers by size (rt_arena.h) */
	int64_t *iv;               /* scratch: 2 * nbuf intervals */
	char *arena;
	size_t arena_cap, arena_used;

	/* outputs */
	int64_t *out_shapes;       /* nout * KILN_MAX_RANK */
	void **owned;              /* context-owned output buffers */
	size_t *owned_cap;
	size_t *out_nbytes;        /* each output's bytes, checked by bind_outputs */
	void **out_ptr;            /* frame.out */
	const void **in_ptr;       /* frame.in */

	/* data-dependent shapes (rt.h): buffers grown per slot, the caller's
	 * outputs until rt_dyn_outputs binds them */
	void **dyn;
	size_t *dyn_cap;
	kiln_tensor *user_out;
	int user_nout;
	const kiln_tensor *user_in;   /* this run's inputs (checked), for bind_outputs */
	/* the profiler (profile.c): allocated by the first profile start */
	struct rt_prof *prof;
	bool profiling;
};

/* ---- weights (weights.c) ---- */
/* Sets c->weights; -1 with a one-line message in err. */
int rt_weights_acquire(kiln_context *c, const char *so_path, char *err, size_t errlen);
void rt_weights_release(kiln_context *c);   /* also when acquire failed or never ran */

/* ---- thread pool (pool.c) ---- */
struct rt_pool *rt_pool_create(int nthreads);     /* nthreads total, caller included; 0: online CPUs */
void rt_pool_free(struct rt_pool *p);
int rt_pool_size(const struct rt_pool *p);        /* 1 for NULL */
/* rt_parallel_for cuts n items on T threads into this many equal chunks */
int rt_pool_chunks(int64_t n, int T);

/* rt_parallel_for when n * cost (rough ns of work) makes it worth waking
 * the workers, else fn(arg, 0, n) on the calling thread. */
void rt_par(kiln_frame *f, int64_t n, int64_t cost,
            void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/* The pool threads record their share of each job in p (NULL: not). */
void rt_pool_set_prof(struct rt_pool *p, struct rt_prof *prof);

/* ---- profiler (profile.c) ---- */
int64_t rt_prof_now(void);                        /* CLOCK_MONOTONIC ns */
void rt_prof_job(struct rt_prof *p, int thread, int64_t t0, int64_t t1);
void rt_prof_run_begin(struct rt_prof *p);
void rt_prof_run_end(struct rt_prof *p, int64_t t0);
void rt_prof_free(struct rt_prof *p);
int rt_profile_start(kiln_context *c);
int rt_profile_stop(kiln_context *c);
size_t rt_profile_count(const kiln_context *c);
int rt_profile_event(const kiln_context *c, size_t i, kiln_profile_event *ev, size_t evsize);
int rt_profile_write(kiln_context *c, const char *path);

/* y = x * sigmoid(1.702 x) over n floats (KlnGelu approximate 2; kernels_norm.c) */
void rt_quick_gelu(kiln_frame *f, const float *x, float *y, int64_t n);
/* KlnRMSNorm's row path (kernels_norm.c), for tests: 0 scalar C, 1 AVX2 + FMA,
 * 2 AVX-512, 3 NEON, -1 the CPU's best (the default).  -1 when the CPU
 * cannot run it (nothing changes).  Set it between runs, not during one. */
int rt_rms_path_use(int path);

/* ---- context (rt_core.c) ---- */
kiln_context *rt_context_create(const rt_model_desc *d, const char *so_path, int nthreads);
void rt_context_free(kiln_context *c);
int rt_context_run(kiln_context *c, const kiln_tensor *in, int nin, kiln_tensor *out, int nout);
const char *rt_context_error(const kiln_context *c);
size_t rt_context_arena_bytes(const kiln_context *c);
const char *rt_create_error(void);                /* thread-local, last failed create */
int rt_context_errorf(kiln_context *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The graph input whose buffer data is (its ONNX name), NULL for an
 * intermediate tensor: kernels name the tensor the user fed (rt_core.c). */
const char *rt_input_name(const kiln_frame *f, const void *data);
const char *rt_input_name_at(const kiln_frame *f, int k);   /* graph input k's name, NULL if none */
/* The constant whose data starts at data (rt_model_desc.weight_names), NULL
 * for anything else. */
const char *rt_const_name(const kiln_frame *f, const void *data);
/* "'NAME'" of the graph input or the constant t is, else "input K" (k), into buf. */
const char *rt_in_desc(const kiln_frame *f, const rt_t *t, int k, char *buf, size_t n);
/* The same for a tensor the compiler traced to graph input from - 1 (0:
 * none): "computed from 'attention_mask'" when t is not an input itself. */
const char *rt_in_desc_from(const kiln_frame *f, const rt_t *t, int k, int64_t from, char *buf,
                            size_t n);

/* ---- kernel helpers (kernels_util.c) ---- */
size_t rt_dtype_size(int32_t dt);                 /* 0: unknown */
const char *rt_dtype_name(int32_t dt);
int64_t rt_numel(const rt_t *t);
bool rt_is_float(int32_t dt);                      /* f32, f64, f16, bf16 */
/* Element i of a tensor of dtype dt, converted (0 for unknown dtypes). */
int64_t rt_get_i64(const void *p, int32_t dt, int64_t i);
double rt_get_f64(const void *p, int32_t dt, int64_t i);
void rt_set_f64(void *p, int32_t dt, int64_t i, double v);
float rt_f16_to_f32(uint16_t h);
uint16_t rt_f32_to_f16(float f);
float rt_bf16_to_f32(uint16_t h);

/* Element strides of in over out's rank (0 where in is broadcast), numpy
 * rules; rt_error naming op and input k on a contradiction. */
int rt_bcast_strides(kiln_frame *f, const char *loc, const char *op, int k,
                     const rt_t *in, const rt_t *out, int64_t *strides);
/* Copy a strided view (element strides, may be 0 or negative) into a
 * dense row-major dst of the given dims. */
void rt_strided_copy(kiln_frame *f, size_t esize, int rank, const int64_t *dims,
                     const void *src, const int64_t *sstride, void *dst);
/* Reduce* with axes given at run time (ia = [keepdims, -1, noop]): the
 * kernel's ia [keepdims, naxes, axes...] from in[1]'s values, checked
 * (kernels_shape.c); 0 or rt_error. */
int rt_reduce_axes(kiln_frame *f, const char *loc, const char *op, const rt_t *in, int32_t nin,
                   const int64_t *ia, int64_t *out, int32_t *nout);
/* Unsupported dtype for an op: formats and returns rt_error. */
int rt_bad_dtype(kiln_frame *f, const char *loc, const char *op, int32_t dt);
/* Elementwise broadcasting driver for up to 3 inputs: calls inner over rows
 * with per-input element strides 0 or 1 (after collapsing dims). */
typedef void (*rt_inner_fn)(const void *const *p, const int64_t *s, void *o, int64_t n,
                            const void *aux);
int rt_elementwise(kiln_frame *f, const char *loc, const char *op,
                   const rt_t *const *ins, int nins, rt_t *out, rt_inner_fn inner,
                   const void *aux);

#endif
