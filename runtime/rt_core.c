/* rt_core.c: the context of a compiled model: input validation and symbol
 * binding, arena planning (greedy first-fit over buffer lifetimes), output
 * buffers, weights (weights.c), then the call
 * of the generated run function.  The exported entry table is in entry.c,
 * so that kernels (and their tests) link without a model descriptor. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rt_internal.h"

static _Thread_local char create_err[RT_ERR_MAX];

const char *rt_create_error(void)
{
	return create_err;
}

static void vformat(char *buf, const char *fmt, va_list ap)
{
	vsnprintf(buf, RT_ERR_MAX, fmt, ap);
	for (char *p = buf; *p; p++)      /* one line */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

int rt_context_errorf(kiln_context *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(c->err, fmt, ap);
	va_end(ap);
	return -1;
}

static void create_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void create_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vformat(create_err, fmt, ap);
	va_end(ap);
}

/* Kernels may report from pool workers at once: one writer at a time (the
 * error path only, so one process-wide lock is fine). */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

int rt_error(kiln_frame *f, const char *fmt, ...)
{
	static _Thread_local char orphan[RT_ERR_MAX];
	char *buf = f && f->ctx ? f->ctx->err : orphan;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&err_lock);
	vformat(buf, fmt, ap);
	pthread_mutex_unlock(&err_lock);
	va_end(ap);
	return 1;
}

/* ---- create / free ------------------------------------------------------ */

static void *zalloc(size_t n, size_t sz)
{
	return calloc(n ? n : 1, sz);
}

kiln_context *rt_context_create(const rt_model_desc *d, const char *so_path, int nthreads)
{
	create_err[0] = 0;
	if (!d || d->abi_version != RT_ABI_VERSION) {
		create_fail("model ABI version %d, runtime expects %d", d ? d->abi_version : -1,
		            RT_ABI_VERSION);
		return NULL;
	}
	if (d->nin < 0 || d->nout < 0 || d->nsym < 0 || d->nbuf < 0 || d->ndyn < 0 ||
	    d->ndyn_sym < 0 || d->ndyn_sym > d->nsym) {
		create_fail("model '%s': corrupt descriptor", d->name ? d->name : "?");
		return NULL;
	}
	kiln_context *c = calloc(1, sizeof *c);
	if (!c) {
		create_fail("out of memory");
		return NULL;
	}
	c->d = d;
	size_t ns = (size_t)d->nsym, nb = (size_t)d->nbuf, no = (size_t)d->nout;
	c->sym = zalloc(ns, sizeof *c->sym);
	c->plan_sym = zalloc(ns, sizeof *c->plan_sym);
	c->sym_src = zalloc(ns, sizeof *c->sym_src);
	c->bufsize = zalloc(nb, sizeof *c->bufsize);
	c->bufoff = zalloc(nb, sizeof *c->bufoff);
	c->order = zalloc(nb, sizeof *c->order);
	c->iv = zalloc(2 * nb, sizeof *c->iv);
	c->out_shapes = zalloc(no * KILN_MAX_RANK, sizeof *c->out_shapes);
	c->owned = zalloc(no, sizeof *c->owned);
	c->owned_cap = zalloc(no, sizeof *c->owned_cap);
	c->out_nbytes = zalloc(no, sizeof *c->out_nbytes);
	c->out_ptr = zalloc(no, sizeof *c->out_ptr);
	c->in_ptr = zalloc((size_t)d->nin, sizeof *c->in_ptr);
	c->dyn = zalloc((size_t)d->ndyn, sizeof *c->dyn);
	c->dyn_cap = zalloc((size_t)d->ndyn, sizeof *c->dyn_cap);
	if (!c->sym || !c->plan_sym || !c->sym_src || !c->bufsize || !c->bufoff || !c->order ||
	    !c->iv || !c->out_shapes || !c->owned || !c->owned_cap || !c->out_ptr || !c->in_ptr ||
	    !c->out_nbytes ||
	    !c->dyn || !c->dyn_cap) {
		create_fail("out of memory");
		rt_context_free(c);
		return NULL;
	}
	if (rt_weights_acquire(c, so_path, create_err, sizeof create_err)) {
		rt_context_free(c);
		return NULL;
	}
	c->pool = rt_pool_create(nthreads);
	if (!c->pool) {
		create_fail("cannot create thread pool");
		rt_context_free(c);
		return NULL;
	}
	c->nthreads = rt_pool_size(c->pool);
	return c;
}

void rt_context_free(kiln_context *c)
{
	if (!c)
		return;
	rt_pool_free(c->pool);
	rt_prof_free(c->prof);
	rt_weights_release(c);
	for (int i = 0; c->owned && i < c->d->nout; i++)
		free(c->owned[i]);
	for (int i = 0; c->dyn && i < c->d->ndyn; i++)
		free(c->dyn[i]);
	free(c->dyn); free(c->dyn_cap);
	free(c->arena);
	free(c->sym); free(c->plan_sym); free(c->sym_src);
	free(c->bufsize); free(c->bufoff); free(c->order); free(c->iv);
	free(c->out_shapes); free(c->owned); free(c->owned_cap);
	free(c->out_nbytes);
	free(c->out_ptr); free(c->in_ptr);
	free(c);
}

const char *rt_context_error(const kiln_context *c)
{
	return c ? c->err : "no context";
}

size_t rt_context_arena_bytes(const kiln_context *c)
{
	return c ? c->arena_used : 0;
}

/* ---- inputs ------------------------------------------------------------- */

static const char *sym_name(const rt_model_desc *d, int s)
{
	return d->sym_names && d->sym_names[s] ? d->sym_names[s] : "?";
}

static int check_dim(kiln_context *c, int i, int k, int64_t got)
{
	const rt_model_desc *d = c->d;
	const char *name = d->inputs[i].name;
	rt_dim rd = d->in_dims[(size_t)i * KILN_MAX_RANK + k];
	if (rd.sym == RT_DIM_EXPR)
		return 0;
	if (rd.sym < 0) {
		if (got != rd.c)
			return rt_context_errorf(c, "input '%s' dim %d: expected %lld, got %lld",
			                         name, k, (long long)rd.c, (long long)got);
		return 0;
	}
	if (rd.sym >= d->nsym)
		return rt_context_errorf(c, "input '%s' dim %d: corrupt descriptor", name, k);
	int s = rd.sym;
	if (c->sym_src[s] < 0) {
		c->sym[s] = got;
		c->sym_src[s] = i * KILN_MAX_RANK + k;
		return 0;
	}
	if (c->sym[s] != got) {
		int si = c->sym_src[s] / KILN_MAX_RANK;
		return rt_context_errorf(c, "input '%s' dim %d: expected %lld (%s, from '%s'), got %lld",
		                         name, k, (long long)c->sym[s], sym_name(d, s),
		                         d->inputs[si].name, (long long)got);
	}
	return 0;
}

static const _Alignas(64) unsigned char empty_input[64];

static int check_inputs(kiln_context *c, const kiln_tensor *in, int nin)
{
	const rt_model_desc *d = c->d;
	if (nin != d->nin)
		return rt_context_errorf(c, "model '%s' takes %d inputs, got %d",
		                         d->name ? d->name : "?", d->nin, nin);
	if (nin > 0 && !in)
		return rt_context_errorf(c, "inputs: NULL array");
	for (int s = 0; s < d->nsym; s++)
		c->sym_src[s] = -1;
	for (int i = 0; i < nin; i++) {
		const kiln_io_info *io = &d->inputs[i];
		const kiln_tensor *t = &in[i];
		if ((int)t->dtype != (int)io->dtype)
			return rt_context_errorf(c, "input '%s': dtype %s, expected %s", io->name,
			                         rt_dtype_name(t->dtype), rt_dtype_name(io->dtype));
		if (t->rank != io->rank)
			return rt_context_errorf(c, "input '%s': rank %d, expected %d", io->name,
			                         t->rank, io->rank);
		int64_t n = 1;
		for (int k = 0; k < t->rank; k++) {
			if (t->shape[k] < 0)
				return rt_context_errorf(c, "input '%s' dim %d: negative size %lld",
				                         io->name, k, (long long)t->shape[k]);
			if (t->shape[k] > 0 && n > INT64_MAX / 16 / t->shape[k])
				return rt_context_errorf(c, "input '%s': shape too large", io->name);
			n *= t->shape[k];
		}
		size_t need = (size_t)n * rt_dtype_size(t->dtype);
		if (t->nbytes != need)
			return rt_context_errorf(c, "input '%s': nbytes %zu, shape needs %zu",
			                         io->name, t->nbytes, need);
		if (need && !t->data)
			return rt_context_errorf(c, "input '%s': data is NULL", io->name);
		for (int k = 0; k < t->rank; k++)
			if (check_dim(c, i, k, t->shape[k]))
				return -1;
		/* an empty input may come with data NULL (the Python package
		 * passes None): kernels see a valid pointer, never read */
		c->in_ptr[i] = t->data ? t->data : (void *)empty_input;
	}
	for (int s = 0; s < d->nsym - d->ndyn_sym; s++)
		if (c->sym_src[s] < 0)
			return rt_context_errorf(c, "symbol '%s' is not bound by any input dim",
			                         sym_name(d, s));
	return 0;
}

/* The arena: *bytes of them, on 2 MB pages where the kernel gives them
 * (THP in "madvise" mode) once it spans one.  A model's activations are
 * read in rows far apart (an attention head's Q, K and V rows of a [B*S,
 * 3 * hidden] tensor, 9 KB apart in BERT-base); on 4 KB pages a BERT-base
 * b8 arena is ~4600 pages, past the second-level TLB.  *bytes grows to
 * what was allocated. */
static void *arena_alloc(size_t *bytes)
{
	void *p = NULL;
#if defined(MADV_HUGEPAGE)
	const size_t huge = (size_t)2 << 20;
	if (*bytes >= huge && *bytes <= SIZE_MAX - huge) {
		size_t n = (*bytes + huge - 1) / huge * huge;
		if (posix_memalign(&p, huge, n))
			return NULL;
		madvise(p, n, MADV_HUGEPAGE);   /* advice: without it, 4 KB pages */
		*bytes = n;
		return p;
	}
#endif
	return posix_memalign(&p, RT_ALIGN, *bytes) ? NULL : p;
}


/* ---- planning ----------------------------------------------------------- */

/* The arena plan for the symbols the inputs bound (the data-dependent
 * ones, bound during the run, decide no arena buffer). */
static int plan(kiln_context *c)
{
	const rt_model_desc *d = c->d;
	size_t nin_sym = (size_t)(d->nsym - d->ndyn_sym);
	if (c->planned && (nin_sym == 0 || !memcmp(c->sym, c->plan_sym, nin_sym * sizeof *c->sym)))
		return 0;
	c->planned = false;
	kiln_frame f = {.sym = c->sym, .ctx = c};
	if (d->plan(c->sym, c->bufsize, &f)) {
		if (!c->err[0])
			rt_context_errorf(c, "model '%s': planning failed", d->name ? d->name : "?");
		return -1;
	}
	for (int b = 0; b < d->nbuf; b++)
		if (c->bufsize[b] < 0 || c->bufsize[b] > INT64_MAX - RT_ALIGN)
			return rt_context_errorf(c, "planned buffer %d has size %lld", b,
			                         (long long)c->bufsize[b]);
	int64_t total = rt_arena_assign(c->d->nbuf, c->bufsize, c->d->buf_first, c->d->buf_last, RT_ALIGN,
	                                c->bufoff, c->order, c->iv);
	if (total < 0 || (uint64_t)total > SIZE_MAX)
		return rt_context_errorf(c, "model '%s': the arena size overflows 64 bits",
		                         d->name ? d->name : "?");
	if ((size_t)total > c->arena_cap) {
		free(c->arena);
		c->arena = NULL;
		c->arena_cap = 0;
		size_t cap = (size_t)total;
		void *p = arena_alloc(&cap);
		if (!p)
			return rt_context_errorf(c, "cannot allocate arena of %lld bytes", (long long)total);
		c->arena = p;
		c->arena_cap = cap;
	}
	c->arena_used = (size_t)total;
	if (d->nout > 0 && d->ndyn_sym == 0)   /* else rt_dyn_outputs, after the run */
		d->out_shapes(c->sym, c->out_shapes);
	memcpy(c->plan_sym, c->sym, (size_t)d->nsym * sizeof *c->sym);
	c->planned = true;
	return 0;
}

/* The graph input whose buffer data is, for kernels' messages (NULL: none,
 * an intermediate tensor). */
const char *rt_input_name(const kiln_frame *f, const void *data)
{
	const kiln_context *c = f->ctx;
	for (int i = 0; c && c->d && c->in_ptr && data && i < c->d->nin; i++)
		if (c->in_ptr[i] == data && data != (const void *)empty_input)
			return c->d->inputs[i].name;
	return NULL;
}

const char *rt_input_name_at(const kiln_frame *f, int k)
{
	const kiln_context *c = f->ctx;
	return c && c->d && k >= 0 && k < c->d->nin ? c->d->inputs[k].name : NULL;
}

const char *rt_const_name(const kiln_frame *f, const void *data)
{
	const kiln_context *c = f->ctx;
	if (!c || !c->d || !data || !c->d->nweight_names)
		return NULL;
	const rt_model_desc *d = c->d;
	uintptr_t p = (uintptr_t)data, hot = (uintptr_t)f->weights, cold = (uintptr_t)f->weights_cold;
	uint64_t off;
	if (f->weights && p >= hot && p - hot < d->weights_hot_bytes)
		off = p - hot;
	else if (f->weights_cold && p >= cold && p - cold < d->weights_bytes - d->weights_hot_bytes)
		off = d->weights_hot_bytes + (p - cold);
	else
		return NULL;
	int32_t lo = 0, hi = d->nweight_names;      /* the first entry at or past off */
	while (lo < hi) {
		int32_t mid = lo + (hi - lo) / 2;
		if (d->weight_names[mid].offset < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < d->nweight_names && d->weight_names[lo].offset == off ? d->weight_names[lo].name
	                                                                  : NULL;
}

const char *rt_in_desc(const kiln_frame *f, const rt_t *t, int k, char *buf, size_t n)
{
	const char *name = rt_input_name(f, t->data);
	if (!name)
		name = rt_const_name(f, t->data);
	if (name)
		snprintf(buf, n, "'%s'", name);
	else
		snprintf(buf, n, "input %d", k);
	return buf;
}

const char *rt_in_desc_from(const kiln_frame *f, const rt_t *t, int k, int64_t from, char *buf,
                            size_t n)
{
	const char *src = rt_input_name(f, t->data) ? NULL : rt_input_name_at(f, (int)from - 1);
	if (!src)
		return rt_in_desc(f, t, k, buf, n);
	snprintf(buf, n, "computed from '%s'", src);
	return buf;
}

/* ---- outputs ------------------------------------------------------------ */

static bool overlap(const void *a, size_t na, const void *b, size_t nb)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
	return na && nb && x < y + nb && y < x + na;
}

/* The run writes every output while it reads the inputs: an output buffer
 * that overlaps an input (a caller's buffer, or last run's context-owned
 * output passed back as an input) or another output would give wrong
 * values, so it is refused. */
static int check_overlaps(kiln_context *c)
{
	const rt_model_desc *d = c->d;
	for (int o = 0; o < d->nout; o++) {
		size_t n = c->out_nbytes[o];
		for (int i = 0; c->user_in && i < d->nin; i++)
			if (overlap(c->out_ptr[o], n, c->user_in[i].data, c->user_in[i].nbytes))
				return rt_context_errorf(c, "output '%s': its buffer%s overlaps input '%s' "
				                         "(outputs are written while inputs are read)",
				                         d->outputs[o].name, c->out_ptr[o] == c->owned[o] ?
				                         " (context-owned, from the last run)" : "",
				                         d->inputs[i].name);
		for (int p = 0; p < o; p++)
			if (overlap(c->out_ptr[o], n, c->out_ptr[p], c->out_nbytes[p]))
				return rt_context_errorf(c, "output '%s': its buffer overlaps output '%s'",
				                         d->outputs[o].name, d->outputs[p].name);
	}
	return 0;
}

static int bind_outputs(kiln_context *c, kiln_tensor *out, int nout)
{
	const rt_model_desc *d = c->d;
	if (nout != d->nout)
		return rt_context_errorf(c, "model '%s' has %d outputs, got %d",
		                         d->name ? d->name : "?", d->nout, nout);
	if (nout > 0 && !out)
		return rt_context_errorf(c, "outputs: NULL array");
	for (int o = 0; o < nout; o++) {
		const kiln_io_info *io = &d->outputs[o];
		const int64_t *sh = &c->out_shapes[(size_t)o * KILN_MAX_RANK];
		int64_t n = 1, bytes;
		for (int k = 0; k < io->rank; k++) {
			if (sh[k] < 0)
				return rt_context_errorf(c, "output '%s' dim %d: negative size %lld",
				                         io->name, k, (long long)sh[k]);
			if (!rt_ck_mul(n, sh[k], &n))
				return rt_context_errorf(c, "output '%s': element count overflows 64 bits",
				                         io->name);
		}
		if (!rt_ck_mul(n, (int64_t)rt_dtype_size(io->dtype), &bytes) || (uint64_t)bytes > SIZE_MAX)
			return rt_context_errorf(c, "output '%s': byte size overflows", io->name);
		size_t need = (size_t)bytes;
		c->out_nbytes[o] = need;     /* checked once, for check_overlaps and out[] */
		/* NULL, or the buffer this context handed out last time (a caller
		 * reusing its output array), means context-owned */
		bool owned = !out[o].data || out[o].data == c->owned[o];
		if (owned) {
			size_t want = need < RT_ALIGN ? RT_ALIGN : need;
			if (c->owned_cap[o] < want) {
				void *p = NULL;
				if (posix_memalign(&p, RT_ALIGN, want))
					return rt_context_errorf(c, "output '%s': cannot allocate %zu bytes",
					                         io->name, need);
				free(c->owned[o]);
				c->owned[o] = p;
				c->owned_cap[o] = want;
			}
			c->out_ptr[o] = c->owned[o];
		} else {
			if (out[o].nbytes < need)
				return rt_context_errorf(c, "output '%s': buffer of %zu bytes, needs %zu",
				                         io->name, out[o].nbytes, need);
			c->out_ptr[o] = out[o].data;
		}
	}
	if (check_overlaps(c))
		return -1;
	for (int o = 0; o < nout; o++) {
		const kiln_io_info *io = &d->outputs[o];
		const int64_t *sh = &c->out_shapes[(size_t)o * KILN_MAX_RANK];
		out[o].dtype = io->dtype;
		out[o].rank = io->rank;
		for (int k = 0; k < KILN_MAX_RANK; k++)
			out[o].shape[k] = k < io->rank ? sh[k] : 0;
		out[o].data = c->out_ptr[o];
		out[o].nbytes = c->out_nbytes[o];
	}
	return 0;
}

/* ---- data-dependent shapes (rt.h) --------------------------------------- */

int rt_dyn_alloc(kiln_frame *f, int32_t slot, int64_t bytes)
{
	kiln_context *c = f->ctx;
	if (slot < 0 || slot >= c->d->ndyn || bytes < 0 || (uint64_t)bytes > SIZE_MAX - RT_ALIGN)
		return rt_error(f, "model '%s': corrupt data-dependent buffer %d", c->d->name ? c->d->name : "?",
		                (int)slot);
	size_t want = bytes < RT_ALIGN ? RT_ALIGN : (size_t)bytes;
	if (c->dyn_cap[slot] >= want)
		return 0;
	void *p = NULL;
	if (posix_memalign(&p, RT_ALIGN, want))
		return rt_error(f, "cannot allocate %lld bytes for a data-dependent tensor", (long long)bytes);
	free(c->dyn[slot]);
	c->dyn[slot] = p;
	c->dyn_cap[slot] = want;
	return 0;
}

int rt_dyn_outputs(kiln_frame *f)
{
	kiln_context *c = f->ctx;
	if (c->d->nout > 0)
		c->d->out_shapes(c->sym, c->out_shapes);
	return bind_outputs(c, c->user_out, c->user_nout) ? 1 : 0;
}

static int run(kiln_context *c, const kiln_tensor *in, int nin, kiln_tensor *out, int nout,
               struct rt_prof *prof)
{
	c->user_in = NULL;
	if (check_inputs(c, in, nin) || plan(c))
		return -1;
	c->user_in = in;
	if (c->d->ndyn_sym > 0) {   /* outputs bound by rt_dyn_outputs during the run */
		if (nout != c->d->nout || (nout > 0 && !out))
			return bind_outputs(c, out, nout);    /* the same messages */
		c->user_out = out;
		c->user_nout = nout;
	} else if (bind_outputs(c, out, nout)) {
		return -1;
	}
	kiln_frame f = {
		.in = c->in_ptr, .out = c->out_ptr, .arena = c->arena, .bufoff = c->bufoff,
		.sym = c->sym, .weights = c->weights, .pool = c->pool, .ctx = c,
		.weights_cold = c->weights_cold, .dyn = c->dyn, .prof = prof,
	};
	if (c->d->run(&f)) {
		if (!c->err[0])
			rt_context_errorf(c, "model '%s': run failed", c->d->name ? c->d->name : "?");
		return -1;
	}
	return 0;
}

int rt_context_run(kiln_context *c, const kiln_tensor *in, int nin, kiln_tensor *out, int nout)
{
	if (!c)
		return -1;
	c->err[0] = 0;
	struct rt_prof *prof = c->profiling ? c->prof : NULL;
	int64_t t0 = 0;
	if (prof) {
		t0 = rt_prof_now();
		rt_prof_run_begin(prof);
	}
	int rc = run(c, in, nin, out, nout, prof);
	if (prof)
		rt_prof_run_end(prof, t0);
	return rc;
}
